"""LSAM: SAM whose ascent perturbs only the last linear layer (Springer et al., 2024).

For a model ``head(features(x))`` with a linear ``head`` (weights v), one LSAM step is

    g_v  = grad_v L(theta, v)
    v~   = v + rho * g_v / ||g_v||            (phantom head; theta is not perturbed)
    (theta, v) <- base_update((theta, v), grad_(theta, v) L(theta, v~))

Two ways to compute it, with the same result:

* generic, any model, two full passes: ``SAM(lsam_param_groups(model.parameters(), head), ...)``,
  or ``LSAM(...).step(closure)``;
* fast, ``LSAM(...).fast_step(features, loss_fn)``: since the backbone is not perturbed its
  features are the same at v and at v~, so one backbone forward suffices: the head gradient
  on detached features gives eps, the head at v~ on the same (attached) features gives the
  loss whose single backward yields every gradient. Its cost is an SGD step plus O(head).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from .ascent import ascent
from .distributed import refuse_under_distributed
from .sam import SAM

__all__ = ["LSAM", "lsam_param_groups", "check_head"]


def check_head(head) -> None:
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"LSAM perturbs a linear last layer, but head is {type(head).__name__}; pass the final nn.Linear "
            "of the model (e.g. model.fc or model.head), or use SAM with your own perturb=False groups"
        )


def lsam_param_groups(params: Iterable, head: nn.Linear) -> list[dict]:
    """Split ``params`` (tensors or group dicts) so that only ``head``'s weights are perturbed.

    Returns parameter groups for :class:`~samlib.optim.SAM`: the non-head part of each group
    with ``perturb=False``, the head part with ``perturb=True``; empty parts are dropped.
    """
    check_head(head)
    head_ids = {id(p) for p in head.parameters()}
    groups = list(params)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    found, split = set(), []
    for group in groups:
        members = list(group["params"])
        found |= {id(p) for p in members} & head_ids
        options = {k: v for k, v in group.items() if k != "params"}
        for perturb in (False, True):
            part = [p for p in members if (id(p) in head_ids) == perturb]
            if part:
                split.append({**options, "params": part, "perturb": perturb})
    if found != head_ids:
        raise ValueError("the head's parameters are not all among params: pass all of model.parameters(), "
                         "head included")
    return split


class LSAM(SAM):
    """Last-layer SAM: SAM whose ascent perturbs only ``head``, an ``nn.Linear``.

    ``LSAM(model.parameters(), torch.optim.SGD, head=model.head, rho=0.1, lr=0.05)``.
    Every parameter is updated; only the head is perturbed (``relative=True``: by ``rho * ||head||``, the norm
    of the head's weight and bias). Use ``fast_step`` (one backbone
    pass) when the features are at hand, or the inherited two-pass ``step(closure)`` /
    ``first_step`` / ``second_step`` for any model.
    """

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], head: nn.Linear,
                 rho: float = 0.05, adaptive: bool = False, *, relative: bool = False, eps: float = 1e-12,
                 model: nn.Module | None = None, **base_kwargs):
        if checks.strict_bool("adaptive", adaptive):
            raise ValueError("LSAM's ascent is the plain (non-adaptive) one, so it takes adaptive=False only; for an "
                             "adaptive last-layer ascent use SAM(lsam_param_groups(params, head), base_optimizer, "
                             "adaptive=True)")
        super().__init__(lsam_param_groups(params, head), base_optimizer, rho=rho, adaptive=False,
                         relative=relative, eps=eps, model=model, **base_kwargs)
        self.head = head

    def fast_step(self, features: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """One LSAM step from one backbone pass.

        features: (B, D) backbone output, attached to the graph (features that do not require grad are refused
        when the backbone has trainable parameters: they would never be trained); loss_fn: head outputs (B, C)
        -> scalar. Zeroes the gradients itself. Returns the loss and head outputs at the real weights (detached).
        """
        loss, outputs, _, phantom = self._phantom_head(features, loss_fn)
        self.zero_grad()
        with torch.enable_grad():
            loss_fn(F.linear(features, *phantom)).backward()
        self._base_step()
        return loss, outputs

    def _phantom_head(self, features: Tensor, loss_fn: Callable[[Tensor], Tensor]):
        """The loss and outputs at the real head (detached), the head's weights [weight, (bias)] and the
        phantom ones [weight + eps, (bias + eps)], from features (B, D) of one backbone pass."""
        refuse_under_distributed(f"{type(self).__name__}.fast_step")
        name = f"{type(self).__name__}.fast_step"
        if not isinstance(features, Tensor):
            raise TypeError(f"{name} takes the backbone's features, a (batch, {self.head.in_features}) tensor, got "
                            f"{type(features).__name__}: does the backbone return a tuple? pass its feature tensor")
        checks.function(f"{name}'s loss_fn", loss_fn, "head outputs -> scalar loss, e.g. "
                        "lambda out: F.cross_entropy(out, y)")
        if features.ndim != 2 or features.shape[1] != self.head.in_features:
            raise ValueError(f"features must have shape (batch, {self.head.in_features}), got {tuple(features.shape)}")
        if not features.is_floating_point():
            raise TypeError(f"features are {features.dtype}, but a linear head reads floating-point features: pass "
                            f"the backbone's output (e.g. features.to({self.head.weight.dtype}))")
        if not features.requires_grad and self._backbone_trains():
            raise ValueError(f"{name} got features that do not require grad (computed under torch.no_grad(), or "
                             "detached), while the backbone has trainable parameters: the backbone would never be "
                             "trained. Compute the features with gradients (model.features(x) outside no_grad), or "
                             "freeze the backbone (requires_grad_(False)) if only the head should learn")
        weights = [self.head.weight] + ([self.head.bias] if self.head.bias is not None else [])
        group = next(g for g in self.param_groups if g["perturb"])
        with torch.enable_grad():
            outputs = self.head(features.detach())
            loss = loss_fn(outputs)
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                shown = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
                raise ValueError(f"{name}'s loss_fn returned {shown}, not a scalar loss: reduce the batch to one "
                                 "number, e.g. F.cross_entropy(out, y) (reduction='mean', not 'none')")
            grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            steps = ascent(grads, group["rho"], params=weights, relative=self.relative, eps=self.eps)
        return loss.detach(), outputs.detach(), weights, [w + e for w, e in zip(weights, steps)]

    def _backbone_trains(self) -> bool:
        """Whether a parameter outside the head (a ``perturb=False`` group) requires grad."""
        return any(p.requires_grad for g in self.param_groups if not g["perturb"] for p in g["params"])
