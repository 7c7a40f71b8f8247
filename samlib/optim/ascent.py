"""The SAM ascent, written once: every optimizer, sweep and decomposition of the book calls :func:`ascent`.

For gradients g_t of the perturbed tensors t (one norm over all of them),

    eps_t = r g_t / (||g|| + eps)      with ||g||^2 = sum_t ||g_t||^2,

where the radius r is ``rho``, or ``rho * ||w||`` over the perturbed weights (``relative=True``, the
toy chapter's scale-free radius). ASAM (``adaptive``, Kwon et al., 2021) takes eps_t = r w_t^2 g_t / || |w| g ||.
**The zero-gradient rule**: where ||g|| = 0 the step is zero (never NaN), whatever ``eps``.

With ``runs=True`` every tensor carries a leading run dimension R, each run has its own norm, its own
radius (``rho`` of shape (R,)) and its own choice of perturbed tensors (``perturbed`` entries of shape (R,),
1 where that run perturbs the tensor): the batched sweeps of the toy and noise-memorization chapters.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from .. import checks

__all__ = ["ascent"]


def _per_run_square_sum(t: Tensor, runs: bool) -> Tensor:
    """sum of t^2, per run (R,) if ``runs`` else a scalar, accumulated in at least float32."""
    t = t.to(torch.promote_types(t.dtype, torch.float32))
    return t.pow(2).flatten(1 if runs else 0).sum(-1)


def _each(value, count: int, name: str) -> list:
    """``value`` for each of ``count`` tensors: a list of that length is taken as it is."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name} has {len(value)} entries but there are {count} gradients: give one per tensor")
        return list(value)
    return [value] * count


def _broadcast(scale: Tensor, like: Tensor, runs: bool) -> Tensor:
    scale = scale.to(like.device, like.dtype)
    return scale.view(-1, *[1] * (like.ndim - 1)) if runs else scale


def ascent(grads: Sequence[Tensor], rho, *, perturbed=True, params: Sequence[Tensor] | None = None,
           adaptive=False, relative: bool = False, runs: bool = False, eps: float = 0.0) -> list[Tensor]:
    """The ascent step eps_t of every tensor (see the module docstring); returns one tensor like each grad.

    grads: tensors, each (R, ...) with ``runs=True``. rho: a float, a (R,) tensor (one radius per run),
    or a list with one float per tensor (SAM's parameter groups). perturbed: True, or per tensor True/False
    or a (R,) 0/1 tensor; unperturbed tensors get a zero step and stay out of the norm. params: the weights
    (needed by ``adaptive`` and ``relative``). adaptive: bool or one per tensor. eps: added to the norm.
    """
    grads = list(grads)
    if not grads:
        raise ValueError("ascent got no gradients: pass at least one tensor")
    if (adaptive is not False or relative) and params is None:
        raise ValueError("adaptive and relative ascents need the weights: pass params=[...] matching grads")
    weights = list(params) if params is not None else [None] * len(grads)
    masks = _each(perturbed, len(grads), "perturbed")
    flags = _each(adaptive, len(grads), "adaptive")
    radii = _each(rho, len(grads), "rho")
    for r in {r for r in radii if isinstance(r, numbers.Number)}:  # a (R,) tensor of radii is the caller's to check
        checks.real("rho", r, low=0, hint="the radius of the ascent step, e.g. rho=0.05")
    scaled = [g * w.abs() if a else g for g, w, a in zip(grads, weights, flags)]
    device = grads[0].device
    norm = torch.sqrt(sum(m * _per_run_square_sum(s, runs).to(device) for s, m in zip(scaled, masks)))
    if relative:
        size = torch.sqrt(sum(m * _per_run_square_sum(w, runs).to(device) for w, m in zip(weights, masks)))
        radii = [r * size for r in radii]
    steps = []
    for g, w, a, m, r in zip(grads, weights, flags, masks, radii):
        scale = torch.where(norm > 0, r / (norm + eps), torch.zeros_like(norm)) * m
        steps.append((w.square() * g if a else g) * _broadcast(scale, g, runs))
    return steps
