"""One SAM (or two-pass LSAM) step at paper scale: under DDP and with mixed precision (``torch.amp``).

    scaler = torch.amp.GradScaler("cuda")
    def compute_loss():                       # the forward only: sam_step runs both backward passes
        with torch.autocast("cuda", dtype=torch.float16):
            return F.cross_entropy(model(x), y)
    loss = sam_step(optimizer, compute_loss, model=model, scaler=scaler)

* ``model`` may be DDP-wrapped; ``ascent_gradient`` then chooses what the ascent perturbs with (see
  :mod:`samlib.optim.distributed`): ``"per_device"`` (default) or ``"synchronized"``. The descent gradient is
  all-reduced once, by DDP.
* With ``scaler`` (a ``torch.amp.GradScaler``) both backward passes are scaled, the gradients are unscaled
  before the ascent norm and before the update, and a step whose gradients hold an inf or NaN (in either pass,
  on any process) skips the ascent and the update: the weights stay exactly as they were, and the scaler
  backs off (``scaler.update()`` is called here, once per step).
* Without DDP and scaler it is ``optimizer.step(closure)`` bit for bit, BatchNorm policy included.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from .distributed import agree_on, ascent_pass, check_ascent_gradient
from .sam import SAM

__all__ = ["sam_step"]


def _check_scaler(scaler) -> None:
    if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
        raise TypeError(f"scaler must be a torch.amp.GradScaler (or None), got {type(scaler).__name__}: "
                        "e.g. scaler=torch.amp.GradScaler('cuda')")


def _backward(loss, scaler, which: str) -> None:
    """Backward of the loss that ``compute_loss`` returned (its ``which`` call), scaled by ``scaler`` if any."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"compute_loss's {which} call returned {type(loss).__name__} {loss!r}: it must run the "
                        "forward pass and return the loss tensor (sam_step runs backward), "
                        "e.g. lambda: loss_fn(model(x), y)")
    if loss.numel() != 1:
        raise ValueError(f"compute_loss's {which} call returned a tensor of shape {tuple(loss.shape)}, not a scalar "
                         "loss: reduce the batch to one number (reduction='mean', not 'none')")
    (loss if scaler is None else scaler.scale(loss)).backward()


def _grads(optimizer: SAM) -> list[Tensor]:
    return [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]


def _finite(grads: list[Tensor]) -> bool:
    """Whether every gradient is free of inf and NaN (one device synchronisation)."""
    return bool(torch.stack([g.isfinite().all() for g in grads]).all()) if grads else True


def _unscaled_ascent_gradients_finite(optimizer: SAM, scaler, model, ascent_gradient) -> bool:
    """Unscale the first pass's gradients; whether they are finite on every process. When they are not, the
    scaler records an overflow on every process alike (so their scales stay equal)."""
    grads = _grads(optimizer)
    finite = agree_on(_finite(grads), model, ascent_gradient)
    if not finite:
        for g in grads:
            g.fill_(float("inf"))
    scaler.unscale_(optimizer)
    return finite


def sam_step(optimizer: SAM, compute_loss: Callable[[], Tensor], *, model: nn.Module | None = None,
             ascent_gradient: str | None = None, scaler: torch.amp.GradScaler | None = None) -> Tensor:
    """One SAM step of ``optimizer`` (a :class:`~samlib.optim.SAM` or LSAM) on the batch that ``compute_loss``
    (no arguments; forward only, returns the scalar loss) evaluates; see the module docstring.

    model: the model ``compute_loss`` runs (DDP-wrapped or not; default ``optimizer.model``), whose BatchNorm
    statistics move in the first pass only. Returns the loss at the real weights (detached).
    """
    if not isinstance(optimizer, SAM):
        raise TypeError(f"sam_step takes a samlib SAM or LSAM optimizer, got {type(optimizer).__name__}: for a "
                        "plain optimizer run backward() and optimizer.step() yourself")
    if not callable(compute_loss):
        raise TypeError(f"compute_loss must be callable, got {type(compute_loss).__name__}: pass a function of no "
                        "arguments that runs the forward pass and returns the loss, e.g. lambda: loss_fn(model(x), y)")
    model = optimizer.model if model is None else model
    ascent_gradient = check_ascent_gradient(ascent_gradient, model)
    _check_scaler(scaler)
    loss = optimizer.two_pass_step(partial(_first_pass, compute_loss, model, ascent_gradient, scaler),
                                   lambda: _backward(compute_loss(), scaler, "second"), model=model,
                                   **_overflow_checks(optimizer, scaler, model, ascent_gradient))
    if scaler is not None:
        scaler.update()  # once per step, taken or skipped
    return loss.detach()


def _first_pass(compute_loss: Callable[[], Tensor], model, ascent_gradient, scaler) -> Tensor:
    """The forward and backward at the real weights, whose gradient the ascent perturbs with (under DDP the
    process's own or the all-reduced one, as ``ascent_gradient`` says)."""
    with ascent_pass(model, ascent_gradient):
        loss = compute_loss()
        _backward(loss, scaler, "first")
    return loss


def _overflow_checks(optimizer: SAM, scaler, model, ascent_gradient) -> dict:
    """With a ``scaler``, the ``ascend`` and ``descend`` of :meth:`SAM.two_pass_step`: each unscales its pass's
    gradients and skips the step if they overflowed. Without one, none."""
    if scaler is None:
        return {}
    return dict(ascend=lambda: _unscaled_ascent_gradients_finite(optimizer, scaler, model, ascent_gradient),
                descend=lambda: _unscaled_descent_gradients_finite(optimizer, scaler))


def _unscaled_descent_gradients_finite(optimizer: SAM, scaler) -> bool:
    """Unscale the second pass's gradients (a second record: the scaler backs off if this pass overflowed); whether
    they are finite. They are the all-reduced ones under DDP, so every process decides alike."""
    scaler.unscale_(optimizer.base_optimizer)
    return _finite(_grads(optimizer))
