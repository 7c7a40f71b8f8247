"""LSAM with one of its two effects switched off: the ablations of Springer et al. (2024).

LSAM's feature update is -(1/N) sum_i G~_i^T V~ grad Phi(x_i): logit gradients G~ taken at the phantom
head V~ (*importance weighting*) and the phantom head in the chain rule (*learning-rate scaling*), see
:mod:`samlib.decompose`. Each ablation keeps one:

* ``effect="importance_weighting"`` (the optimizer "IW-only"): G~ (at V~) with the real head V in the chain rule;
* ``effect="lr_scaling"`` (the optimizer "LR-only"): G (at V) with the phantom head V~ in the chain rule.

The effects' names and which part each takes at the phantom head come from :mod:`samlib.optim.registry`
(:data:`~samlib.optim.registry.EFFECTS`, :func:`~samlib.optim.registry.phantom_parts`).

The head's own update is -(1/N) sum_i G_i Phi(x_i)^T with the same G as the features get (so the
importance-weighting ablation moves the head as LSAM does, the LR-scaling one as SGD does).
The phantom head is LSAM's (same radius, same norm over weight and bias).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from .lsam import LSAM
from .registry import EFFECTS, ablation_keeping, phantom_parts

__all__ = ["EFFECTS", "AblatedLSAM", "recombined_loss"]


def recombined_loss(features: Tensor, chain_weight: Tensor, head: tuple[Tensor, Tensor | None],
                    output_grads: Tensor) -> Tensor:
    """A scalar whose gradient is sum_i output_grads_i^T chain_weight grad Phi(x_i) for the feature parameters
    and sum_i output_grads_i Phi(x_i)^T (bias: sum_i output_grads_i) for the head (weight, bias).
    features (..., N, D) attached; chain_weight and head weight (..., C, D); bias (..., 1, C) or (C,);
    output_grads (..., N, C), dL/dz of a mean loss, held fixed. Leading dimensions index independent models."""
    weight, bias = head
    head_path = features.detach() @ weight.transpose(-1, -2) + (0 if bias is None else bias)
    return (output_grads.detach() * (features @ chain_weight.detach().transpose(-1, -2) + head_path)).sum()


class AblatedLSAM(LSAM):
    """``AblatedLSAM(model.parameters(), torch.optim.SGD, head=model.head, rho=0.5, effect="lr_scaling", lr=0.05)``.

    Only the one-pass ``fast_step(features, loss_fn)`` exists (``samlib.train.train_step`` calls it); the
    two-pass ``step``/``first_step`` of SAM would be plain LSAM and are refused.
    """

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], head: nn.Linear, rho: float = 0.05, *,
                 effect: str, eps: float = 1e-12, model: nn.Module | None = None, **base_kwargs):
        checks.choice("effect", effect, EFFECTS, "the effect that is kept; for both use samlib.optim.LSAM")
        super().__init__(params, base_optimizer, head, rho, eps=eps, model=model, **base_kwargs)
        self.effect = effect
        self.parts = phantom_parts(ablation_keeping(effect))  # (weights at V~, V~ in the chain rule)

    def fast_step(self, features: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """One ablated step. features: (B, D) attached; loss_fn: outputs (B, C) -> mean loss (any mean loss:
        its gradient with respect to the outputs gives the logit gradients). Returns loss and outputs at the
        real weights (detached)."""
        loss, outputs, real, phantom = self._phantom_head(features, loss_fn)
        weighting, chain = (phantom if at_phantom else real for at_phantom in self.parts)
        with torch.enable_grad():
            z = F.linear(features.detach(), *weighting).detach().requires_grad_(True)
            output_grads = torch.autograd.grad(loss_fn(z), z)[0]
        self.zero_grad()
        with torch.enable_grad():
            recombined_loss(features, chain[0], (real[0], real[1] if len(real) == 2 else None), output_grads).backward()
        self._base_step()
        return loss, outputs

    def first_step(self, zero_grad: bool = False) -> None:
        raise RuntimeError(f"AblatedLSAM ({self.effect}) needs the features: call "
                           "fast_step(model.features(x), loss_fn), or samlib.train.train_step on a FeaturesAndHead")

    def step(self, closure=None):
        self.first_step()
