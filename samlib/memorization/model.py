"""The two-layer patch CNN of Chen et al. (2023), for many runs at once, with SGD and SAM steps.

For one run, with filters w_{j,r} ∈ R^d (class j ∈ {+1, -1}, r = 1..m) shared across the patches
x⁽¹⁾, x⁽²⁾ and a fixed second layer ±1/m,

    f(W, x) = F₊₁(W, x) - F₋₁(W, x),     F_j(W, x) = (1/m) Σ_r Σ_p ReLU(⟨w_{j,r}, x⁽ᵖ⁾⟩),

trained on the logistic loss ℓ(y f) = log(1 + exp(-y f)). Every function here is batched over R
independent runs: weights ``W`` are (R, 2, m, d) with index j = 0 for class +1 and j = 1 for
class -1, inputs ``x`` are (R, N, 2, d). The gradient is written by hand (a batched matrix product
forward and one backward); each run's loss is the mean over its own valid examples, so the runs'
gradients are independent and SAM normalizes each run's gradient by its own norm.

The book reads training through the signal-noise decomposition
w_{j,r} = w⁽⁰⁾_{j,r} + j γ_{j,r} μ/‖μ‖² + Σᵢ ρ_{j,r,i} ξᵢ/‖ξᵢ‖²: :func:`coefficients` logs
⟨w_{j,r}, μ⟩ (signal learning) and ⟨w_{j,r}, ξᵢ⟩ (noise memorization) for every filter.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..optim.ascent import ascent
from .data import Run, generator

__all__ = ["CLASS_SIGNS", "StepResult", "init_weights", "filters_last", "preactivations", "network_output",
           "loss_and_gradient", "sam_perturbation", "optimizer_step", "coefficients", "signal_learning",
           "noise_memorization", "margins", "mean_loss", "error_rate"]

CLASS_SIGNS = (1.0, -1.0)  # second-layer sign of filter group j = 0, 1


def init_weights(runs: list[Run], width: int, init_std: float, d: int, dtype=torch.float32) -> Tensor:
    """w⁽⁰⁾ ~ N(0, σ₀² I) from each run's ``init`` stream (shared by every run of a seed): (R, 2, m, d),
    stored :func:`filters_last`."""
    return filters_last(torch.stack([torch.randn(2, width, d, generator=generator(run.seed, "init"), dtype=dtype)
                                     * init_std for run in runs]))


def filters_last(W: Tensor) -> Tensor:
    """The same weights (R, 2, m, d), stored as (R, d, 2, m) in memory: the layout in which the two
    matrix products of each pass read contiguous memory (several times faster on CPU than (R, 2, m, d))."""
    return W.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)


def preactivations(W: Tensor, x: Tensor) -> Tensor:
    """⟨w_{j,r}, x⁽ᵖ⁾⟩ for every example, patch and filter: W (R, 2, m, d) and x (R, N, P, d),
    or x (N, P, d) shared by all runs -> (R, N, P, 2, m)."""
    R, _, m, d = W.shape
    if x.ndim == 3:
        N, P, _ = x.shape
        pre = x.reshape(N * P, d) @ W.reshape(R * 2 * m, d).T
        return pre.reshape(N, P, R, 2, m).permute(2, 0, 1, 3, 4)
    N, P = x.shape[1:3]
    return torch.bmm(x.reshape(R, N * P, d), W.reshape(R, 2 * m, d).transpose(1, 2)).reshape(R, N, P, 2, m)


def _output(pre: Tensor) -> Tensor:
    per_class = pre.relu().sum(dim=(2, 4)) / pre.shape[-1]  # (R, N, 2): F_{+1}, F_{-1}
    return per_class[..., 0] - per_class[..., 1]


def network_output(W: Tensor, x: Tensor) -> Tensor:
    """f(W, x): (R, N)."""
    return _output(preactivations(W, x))


def loss_and_gradient(W: Tensor, x: Tensor, y: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Each run's mean logistic loss over its valid examples and its gradient.

    W (R, 2, m, d), x (R, N, P, d), y (R, N) in {±1}, valid (R, N) bool (padding is False).
    Returns loss (R,), grad (R, 2, m, d) and the preactivations (R, N, P, 2, m).
    """
    valid = torch.ones_like(y, dtype=torch.bool) if valid is None else valid
    pre = preactivations(W, x)
    margin = y * _output(pre)
    weight = valid.to(W.dtype) / valid.sum(dim=1, keepdim=True).clamp(min=1)
    loss = (F.softplus(-margin) * weight).sum(dim=1)
    dloss_dout = -y * torch.sigmoid(-margin) * weight  # (R, N)
    signs = W.new_tensor(CLASS_SIGNS)[:, None] / W.shape[2]  # ±1/m, (2, 1)
    dloss_dpre = dloss_dout[:, :, None, None, None] * (pre > 0) * signs  # (R, N, P, 2, m)
    R, N, P, d = x.shape
    grad = torch.bmm(x.reshape(R, N * P, d).transpose(1, 2), dloss_dpre.reshape(R, N * P, -1))  # (R, d, 2m)
    return loss, grad.reshape(R, d, 2, -1).permute(0, 2, 3, 1), pre  # (R, 2, m, d), stored filters-last


def sam_perturbation(grad: Tensor, tau: Tensor) -> Tensor:
    """SAM's ascent step ε = τ g / ‖g‖ with each run's own norm over all its weights
    (:func:`samlib.optim.ascent`): grad (R, ...), tau (R,) -> like grad. A zero gradient gives ε = 0."""
    return ascent([grad], tau, runs=True)[0]


@dataclass
class StepResult:
    """What one step saw: the ``loss`` (R,) at the real weights and the preactivations
    (R, N, P, 2, m) at the ``real`` and at the ``phantom`` weights (the same tensor for SGD)."""
    loss: Tensor
    real: Tensor
    phantom: Tensor


def optimizer_step(W: Tensor, x: Tensor, y: Tensor, valid: Tensor | None, lr: float,
                   tau: Tensor | None) -> StepResult:
    """One SGD step (``tau=None``) or SAM step (radii ``tau`` (R,)) on each run's minibatch,
    updating ``W`` (R, 2, m, d) in place.

    SAM: ε = τ g/‖g‖ per run, then W ← W - η ∇L(W + ε): the gradient is taken at the phantom
    weights W + ε and applied at W.
    """
    loss, grad, real = loss_and_gradient(W, x, y, valid)
    if tau is None:
        W.sub_(grad, alpha=lr)
        return StepResult(loss, real, real)
    _, grad, phantom = loss_and_gradient(W + sam_perturbation(grad, tau), x, y, valid)
    W.sub_(grad, alpha=lr)
    return StepResult(loss, real, phantom)


def coefficients(W: Tensor, mu: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """Signal learning ⟨w_{j,r}, μ⟩ (R, 2, m) and noise memorization ⟨w_{j,r}, ξᵢ⟩ (R, 2, m, N).

    W (R, 2, m, d), mu (R, d), noise (R, N, d).
    """
    R, _, m, d = W.shape
    flat = W.reshape(R, 2 * m, d)
    signal = torch.bmm(flat, mu[:, :, None]).reshape(R, 2, m)
    memorized = torch.bmm(flat, noise.transpose(1, 2)).reshape(R, 2, m, -1)
    return signal, memorized


def signal_learning(signal: Tensor) -> Tensor:
    """max_r j⟨w_{j,r}, μ⟩, averaged over the two classes: (..., 2, m) -> (...)."""
    signs = signal.new_tensor(CLASS_SIGNS)[:, None]
    return (signal * signs).amax(dim=-1).mean(dim=-1)


def noise_memorization(noise: Tensor, y: Tensor, valid: Tensor) -> Tensor:
    """max_r ⟨w_{yᵢ,r}, ξᵢ⟩ (filters of example i's own observed class), averaged over valid i.

    noise (..., 2, m, N), y (..., N) in {±1}, valid (..., N) -> (...).
    """
    own = torch.where((y > 0)[..., None, :], noise[..., 0, :, :], noise[..., 1, :, :])  # (..., m, N)
    best = own.amax(dim=-2)
    return (best * valid).sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)


def margins(W: Tensor, x: Tensor, labels: Tensor) -> Tensor:
    """labels·f(W, x): (R, N). x as in :func:`preactivations`, labels (R, N) or (N,)."""
    return labels * network_output(W, x)


def mean_loss(margin: Tensor) -> Tensor:
    """Mean logistic loss log(1 + exp(-margin)) over the last dimension: (R, N) -> (R,)."""
    return F.softplus(-margin).mean(dim=-1)


def error_rate(margin: Tensor) -> Tensor:
    """Fraction of examples with margin <= 0 (a tie at f = 0 counts as an error): (R, N) -> (R,)."""
    return (margin <= 0).to(margin.dtype).mean(dim=-1)
