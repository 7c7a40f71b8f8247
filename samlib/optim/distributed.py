"""SAM's ascent gradient under ``torch.nn.parallel.DistributedDataParallel`` (DDP, e.g. started by ``torchrun``).

Each of the N processes holds a shard of the batch. SAM's two passes then differ in what they all-reduce:

* the **ascent** gradient, by the choice ``ascent_gradient``:

  - ``"per_device"`` (the default): each process perturbs with its own shard's gradient, the m-sharpness of
    Foret et al. (2021) with m = the per-process batch. The first forward *and* backward run inside
    ``model.no_sync()``, so nothing is communicated;
  - ``"synchronized"``: the ascent gradient is all-reduced first (one perturbation for the whole batch, as
    a single process would take on the concatenated batch);

* the **descent** gradient, at the phantom weights: all-reduced exactly once, by DDP's ordinary backward.

Nothing here starts processes or talks to the network: that is ``torch.distributed`` and ``torchrun``.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from .. import checks

__all__ = ["ASCENT_GRADIENTS", "is_ddp", "unwrapped", "world_size", "rank", "check_ascent_gradient", "ascent_pass",
           "agree_on", "refuse_under_distributed"]

ASCENT_GRADIENTS = ("per_device", "synchronized")


def is_ddp(model) -> bool:
    """Whether ``model`` is wrapped in ``torch.nn.parallel.DistributedDataParallel``."""
    return isinstance(model, nn.parallel.DistributedDataParallel)


def unwrapped(model: nn.Module) -> nn.Module:
    """The module a DDP wrapper trains (``model`` itself when it is not DDP-wrapped)."""
    return model.module if is_ddp(model) else model


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank in the default ``torch.distributed`` group (0 when none is initialised)."""
    return torch.distributed.get_rank() if _initialized() else 0


def world_size() -> int:
    """The number of processes of the default ``torch.distributed`` group (1 when none is initialised)."""
    return torch.distributed.get_world_size() if _initialized() else 1


def check_ascent_gradient(ascent_gradient, model) -> str | None:
    """The ascent-gradient mode for ``model``: ``"per_device"`` by default under DDP, ``None`` (a single process,
    nothing to choose) otherwise. Raises a ``ValueError`` that names the fix for an unknown mode, or for a mode
    asked of a model that is not DDP-wrapped."""
    if ascent_gradient is None:
        return "per_device" if is_ddp(model) else None
    checks.choice("ascent_gradient", ascent_gradient, ASCENT_GRADIENTS,
                  "per_device perturbs with each process's shard, synchronized with the all-reduced gradient")
    if not is_ddp(model):
        raise ValueError(f"ascent_gradient={ascent_gradient!r} is for a DistributedDataParallel model, but model is "
                         f"{type(model).__name__}: pass model=DistributedDataParallel(net), or leave "
                         "ascent_gradient=None for a single-process step")
    return ascent_gradient


def ascent_pass(model, ascent_gradient: str | None):
    """The context of SAM's first forward and backward: ``model.no_sync()`` for ``"per_device"``, else none."""
    return model.no_sync() if ascent_gradient == "per_device" else nullcontext()


def agree_on(flag: bool, model, ascent_gradient: str | None) -> bool:
    """``flag`` if it holds on every process: an all-reduce (MIN) of one number when the processes may disagree
    (``"per_device"``, each with its own gradients), ``flag`` itself otherwise."""
    if ascent_gradient != "per_device":
        return flag
    device = next(model.parameters()).device
    value = torch.tensor([int(flag)], device=device)
    torch.distributed.all_reduce(value, torch.distributed.ReduceOp.MIN, group=model.process_group)
    return bool(value.item())


def refuse_under_distributed(what: str) -> None:
    """Raise a ``RuntimeError`` when several ``torch.distributed`` processes run: ``what`` all-reduces nothing,
    so the processes would silently drift apart."""
    if (n := world_size()) > 1:
        raise RuntimeError(
            f"{what} runs the backbone once outside DistributedDataParallel and all-reduces nothing, so the {n} "
            "processes would drift apart; under DDP take the two-pass step: samlib.optim.sam_step(optimizer, "
            "compute_loss, model=ddp_model) (samlib.train.train_step does so for a DDP-wrapped model)")
