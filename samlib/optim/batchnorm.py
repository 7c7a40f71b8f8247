"""BatchNorm policy for two-pass optimizers: running statistics move once per step.

SAM runs the model twice per step. Left alone, every BatchNorm layer would fold both
batches into its running statistics, the second one taken at the perturbed weights.
Our policy: both passes normalise with their own batch statistics (as in training), and
the running statistics (and ``num_batches_tracked``) keep the values of the first pass.
This is what the original JAX SAM does; it is exact for any momentum, including
``momentum=None`` (the cumulative average), unlike the momentum-0 trick.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["frozen_bn_stats"]


@contextmanager
def frozen_bn_stats(model: nn.Module | None):
    """Inside the block, forward passes of ``model`` leave its norm layers' running statistics unchanged.

    ``model=None`` makes it a no-op. Covers every BatchNorm (and SyncBatchNorm, and
    InstanceNorm with ``track_running_stats``).
    """
    if model is None:
        yield
        return
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be the torch.nn.Module whose norm statistics to freeze (or None), got "
                        f"{type(model).__name__}")
    saved = [
        (buffer, buffer.detach().clone())
        for module in model.modules() if isinstance(module, _NormBase)
        for buffer in module.buffers(recurse=False)
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
