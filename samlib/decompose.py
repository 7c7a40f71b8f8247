"""The phantom-parameter decomposition of an LSAM step (Springer et al., 2024, Sec. 4).

A model splits into features Phi(x) (N, D) and a linear head z = V Phi + b (N, C). With a per-example
loss l(z_i, y_i), the gradient of the mean loss with respect to the feature parameters theta is

    grad_theta L = -(1/N) sum_i G_i^T V grad_theta Phi(x_i),     G_i = -dl/dz_i  (the logit gradient, (C,)).

LSAM evaluates this at the *phantom* head V~ = V + eps (eps = rho g_V / ||g_V||, over weight and bias as
:class:`samlib.optim.LSAM` does), so two things change, and this module separates them:

* **importance weighting**: G_i -> G~_i, computed at V~. Its size, the *importance weight* lambda_i,
  says how much example i drives the update: for the binary logistic loss l = log(1 + e^{-y z}) with
  y in {-1, +1}, lambda_i = sigmoid(-y_i z_i) = -l'(y_i z_i); for the multiclass cross-entropy,
  lambda_i = 1 - p_{y_i}(x_i) = ||G_i||_1 / 2 (our choice of a scalar; it equals the binary one for C = 2);
* **learning-rate scaling**: V -> V~ in the chain rule, so feature k's update is scaled by
  <V~[:, k], V[:, k]> / ||V[:, k]||^2 (= v~_k / v_k for a single output); along any direction of feature
  space, such as a probe's, :func:`lr_scaling_along`.

:func:`ablation_loss` recombines the parts: its gradient is the update of SGD, of LSAM, or of one
effect alone (importance-weighting-only: G~ with the real V; LR-scaling-only: G with the phantom V~).
Inequality of a set of weights: :func:`lorenz_curve`, :func:`gini`; where the weight sits:
:func:`feature_contributions`, :func:`binned_median`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import checks
from .optim.ablation import recombined_loss
from .optim.ascent import ascent
from .optim.lsam import check_head
from .optim.sam import check_rho

__all__ = ["LOSSES", "head_loss", "logit_gradients", "importance_weights", "phantom_head", "lr_scaling",
           "lr_scaling_along", "Decomposition", "decompose", "ablation_loss", "recombined_loss",
           "feature_contributions",
           "lorenz_curve", "gini", "binned_median"]

LOSSES = ("logistic", "cross_entropy")
Head = tuple[Tensor, Tensor | None]  # (weight (C, D), bias (C,) or None)


def _check_targets(outputs: Tensor, y: Tensor, loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if outputs.ndim != 2 or y.shape != outputs.shape[:1]:
        raise ValueError(f"need head outputs (N, C) and targets (N,), got {tuple(outputs.shape)} and {tuple(y.shape)}")
    if loss == "logistic":
        if outputs.shape[1] != 1:
            raise ValueError(f"the logistic loss needs one output per example (a head with 1 output), got "
                             f"{outputs.shape[1]}; for several classes use loss='cross_entropy'")
        if not bool(((y == 1) | (y == -1)).all()):
            raise ValueError("the logistic loss needs labels in {-1, +1}; convert 0/1 labels with 2 * y - 1")
    elif y.dtype.is_floating_point or not bool(((y >= 0) & (y < outputs.shape[1])).all()):
        raise ValueError(f"cross_entropy needs integer class indices in [0, {outputs.shape[1]}), "
                         f"got {y[:5].tolist()}...")


def head_loss(outputs: Tensor, y: Tensor, loss: str) -> Tensor:
    """The mean loss of head outputs (N, C) against targets (N,): logistic (C = 1, y = +-1) or cross-entropy."""
    _check_targets(outputs, y, loss)
    if loss == "logistic":
        return F.softplus(-y * outputs[:, 0]).mean()
    return F.cross_entropy(outputs, y)


def logit_gradients(outputs: Tensor, y: Tensor, loss: str) -> Tensor:
    """G_i = -dl(z_i, y_i)/dz_i, each example's own (not divided by N): (N, C)."""
    _check_targets(outputs, y, loss)
    if loss == "logistic":
        return (y * torch.sigmoid(-y * outputs[:, 0]))[:, None]
    return F.one_hot(y, outputs.shape[1]).to(outputs.dtype) - outputs.softmax(dim=1)


def importance_weights(outputs: Tensor, y: Tensor, loss: str) -> Tensor:
    """lambda_i >= 0, each example's weight in the update: sigmoid(-y z) (logistic) or 1 - p_y (cross-entropy). (N,)"""
    return _weights_of(logit_gradients(outputs, y, loss), loss)


def _weights_of(grads: Tensor, loss: str) -> Tensor:
    return grads.abs().sum(dim=1) / (1 if loss == "logistic" else 2)


def _as_head(head: nn.Linear | Head) -> Head:
    """``head`` as (weight, bias or None): from an ``nn.Linear`` or a (weight, bias) pair; anything else refused."""
    if isinstance(head, nn.Module):
        check_head(head)
        return head.weight, head.bias
    if isinstance(head, Tensor) or not (isinstance(head, (tuple, list)) and len(head) == 2):
        shown = (f"a bare tensor of shape {tuple(head.shape)}" if isinstance(head, Tensor) else
                 f"a {type(head).__name__} of {len(head)}" if isinstance(head, (tuple, list)) else type(head).__name__)
        raise TypeError(f"head must be an nn.Linear or a (weight, bias) pair with bias None for none, got {shown}: "
                        "e.g. head=model.head or head=(weight, None)")
    weight, bias = head
    if not isinstance(weight, Tensor) or not (bias is None or isinstance(bias, Tensor)):
        raise TypeError(f"head must be a (weight, bias) pair of tensors (bias may be None), got "
                        f"({type(weight).__name__}, {type(bias).__name__})")
    if not weight.is_floating_point() or (bias is not None and bias.dtype != weight.dtype):
        raise TypeError(f"the head's weight and bias must be floating point of one dtype, got {weight.dtype} and "
                        f"{None if bias is None else bias.dtype}")
    return weight, bias


def _outputs(features: Tensor, head: Head) -> Tensor:
    return F.linear(features, *head)


def phantom_head(features: Tensor, y: Tensor, head: nn.Linear | Head, rho: float, loss: str) -> Head:
    """LSAM's phantom head V~ = V + rho g / ||g|| (g: the gradient of the mean loss with respect to weight
    and bias, one norm over both), from features (N, D). A zero gradient gives V~ = V. Detached."""
    rho = check_rho(rho)
    real = [t.detach() for t in _as_head(head) if t is not None]
    leaves = [t.clone().requires_grad_(True) for t in real]
    with torch.enable_grad():
        outputs = F.linear(features.detach(), *leaves)
        grads = torch.autograd.grad(head_loss(outputs, y, loss), leaves)
    phantom = [t + e for t, e in zip(real, ascent(grads, rho))]
    return phantom[0], (phantom[1] if len(phantom) == 2 else None)


def lr_scaling(head: Head, phantom: Head) -> Tensor:
    """Per feature k, <V~[:, k], V[:, k]> / ||V[:, k]||^2: v~_k / v_k for one output. (D,)"""
    v, vt = head[0].detach(), phantom[0].detach()
    return (vt * v).sum(0) / v.square().sum(0)


def lr_scaling_along(head: Head, phantom: Head, directions: Tensor, loss: str) -> Tensor:
    """Learning-rate scaling along directions of feature space, the rows u of ``directions`` (K, D): the factor by
    which the phantom head scales the gradient that reaches the features along u, relative to the real head. (K,)

    Backpropagation sends G^T V to the features (G: the logit gradient), whose part along u is G . (V u). With one
    output (``"logistic"``) the factor is (v~ . u) / (v . u), and for u = e_k it is :func:`lr_scaling`'s
    v~_k / v_k. With ``"cross_entropy"`` G sums to 0 over the classes, so a shift of V u common to every class
    sends nothing: V u and V~ u are centred over the classes, and the factor <V~u, Vu> / ||Vu||^2 of the centred
    vectors is exact for two classes, ((v~_1 - v~_0) . u) / ((v_1 - v_0) . u)."""
    checks.choice("loss", loss, LOSSES, "'logistic' for one output, else 'cross_entropy'")
    v, vt = head[0].detach(), phantom[0].detach()
    if not isinstance(directions, Tensor) or directions.ndim != 2 or directions.shape[1] != v.shape[1]:
        shape = tuple(directions.shape) if isinstance(directions, Tensor) else type(directions).__name__
        raise ValueError(f"directions must be a tensor (K, D) with D = {v.shape[1]} (the head's input width), got "
                         f"{shape}: one direction of feature space per row")
    u = directions.to(v.dtype).T
    read, phantom_read = v @ u, vt @ u  # (C, K)
    if loss == "cross_entropy":
        read, phantom_read = read - read.mean(0), phantom_read - phantom_read.mean(0)
    return (phantom_read * read).sum(0) / read.square().sum(0)


@dataclass
class Decomposition:
    """One batch, real and phantom: importance weights ``weights`` lambda and ``phantom_weights`` lambda~ (N,),
    logit gradients ``grads`` G and ``phantom_grads`` G~ (N, C), heads (weight (C, D), bias) and the
    per-feature ``lr_scaling`` (D,); ``features`` (N, D) and ``y`` (N,) are kept for what follows."""

    features: Tensor
    y: Tensor
    loss: str
    head: Head
    phantom_head: Head
    grads: Tensor
    phantom_grads: Tensor

    @property
    def weights(self) -> Tensor:
        return _weights_of(self.grads, self.loss)

    @property
    def phantom_weights(self) -> Tensor:
        return _weights_of(self.phantom_grads, self.loss)

    @property
    def lr_scaling(self) -> Tensor:
        return lr_scaling(self.head, self.phantom_head)

    @property
    def mean_loss(self) -> float:
        """The batch's mean loss at the real head."""
        return head_loss(_outputs(self.features, self.head), self.y, self.loss).item()


@torch.no_grad()
def decompose(features: Tensor, y: Tensor, head: nn.Linear | Head, rho: float, loss: str) -> Decomposition:
    """The decomposition of an LSAM step with radius ``rho`` on one batch of features (N, D) and targets (N,).

    For a :class:`samlib.models.FeaturesAndHead` model: ``decompose(model.features(x), y, model.head, rho, loss)``.
    """
    checks.choice("loss", loss, LOSSES, "'logistic' for one output and labels -1/+1, else 'cross_entropy'")
    check_rho(rho)
    if not isinstance(features, Tensor):
        raise TypeError(f"features must be a torch.Tensor (N, D), got {type(features).__name__}")
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor of targets (N,), got {type(y).__name__}: convert with "
                        "torch.as_tensor")
    if not features.is_floating_point():
        raise TypeError(f"features must be floating point (the backbone's output), got {features.dtype}: pass e.g. "
                        "features.float()")
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(features.shape)}")
    if features.shape[0] == 0:
        raise ValueError("features is empty: pass at least one example")
    if not bool(torch.isfinite(features).all()):
        bad = int((~torch.isfinite(features)).any(dim=1).sum())
        raise ValueError(f"features hold NaN or infinite values in {bad} of {len(features)} rows: a diverged network "
                         "or broken inputs; decompose finite features only")
    real = tuple(t.detach() if t is not None else None for t in _as_head(head))
    if real[0].dtype != features.dtype:
        raise TypeError(f"features are {features.dtype} but the head's weight is {real[0].dtype}: convert one, e.g. "
                        f"features.to({real[0].dtype})")
    if real[0].ndim != 2 or features.shape[1] != real[0].shape[1]:
        raise ValueError(f"features have {features.shape[1]} columns but the head's weight has shape "
                         f"{tuple(real[0].shape)}: pass the head (C, {features.shape[1]}) that reads these features")
    if real[1] is not None and tuple(real[1].shape) != (real[0].shape[0],):
        raise ValueError(f"the head's bias has shape {tuple(real[1].shape)} but its weight {tuple(real[0].shape)}: "
                         f"a bias holds one value per output, shape ({real[0].shape[0]},)")
    phantom = phantom_head(features, y, real, rho, loss)
    features = features.detach()
    return Decomposition(features, y, loss, real, phantom, logit_gradients(_outputs(features, real), y, loss),
                         logit_gradients(_outputs(features, phantom), y, loss))


def ablation_loss(features: Tensor, y: Tensor, head: nn.Linear | Head, phantom: Head, loss: str, *,
                  phantom_weights: bool, phantom_chain: bool) -> Tensor:
    """A scalar whose gradient is the recombined update (features (N, D) attached to the backbone):

    - feature parameters: -(1/N) sum_i G_i^T H grad Phi(x_i), with G at the phantom head if ``phantom_weights``
      (else the real one) and H = V~ if ``phantom_chain`` (else V);
    - head: -(1/N) sum_i G_i Phi(x_i)^T (and -(1/N) sum_i G_i for the bias), with the same G.

    (True, True) is LSAM's gradient (the gradient of the loss at V~); (False, False) is SGD's;
    (True, False) importance weighting only; (False, True) learning-rate scaling only. Its value is not a loss.
    """
    real = _as_head(head)
    with torch.no_grad():
        grads = logit_gradients(_outputs(features.detach(), phantom if phantom_weights else real), y, loss)
    return recombined_loss(features, (phantom if phantom_chain else real)[0], real, -grads / features.shape[0])


def feature_contributions(features: Tensor, y: Tensor, head: nn.Linear | Head, loss: str) -> Tensor:
    """Each feature's share of each example's margin (N, D): y_i v_k Phi_k(x_i) (logistic), or
    (V[y_i, k] - mean_c V[c, k]) Phi_k(x_i) for cross-entropy (the margin of the true logit over the mean logit)."""
    weight = _as_head(head)[0].detach()
    _check_targets(_outputs(features.detach(), (weight, None)), y, loss)
    if loss == "logistic":
        return y[:, None] * weight[0] * features.detach()
    return (weight[y] - weight.mean(0)) * features.detach()


def _weights_array(weights) -> np.ndarray:
    w = np.asarray(weights.detach().cpu() if isinstance(weights, Tensor) else weights, dtype=float)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0 (importance weights are); got "
                         f"min {np.nanmin(w):.3g}, {int((~np.isfinite(w)).sum())} non-finite")
    if w.sum() == 0:
        raise ValueError("all weights are 0: their Lorenz curve and Gini coefficient are undefined")
    return w


def lorenz_curve(weights) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz curve of non-negative weights (n,): x = share of examples (lightest first), y = their share
    of the total weight; both (n + 1,), from (0, 0) to (1, 1). The diagonal means equal weights."""
    w = np.sort(_weights_array(weights))
    return np.linspace(0, 1, w.size + 1), np.concatenate([[0.0], np.cumsum(w) / w.sum()])


def gini(weights) -> float:
    """The Gini coefficient of non-negative weights: 0 when all are equal, (n - 1)/n when one holds everything.
    Twice the area between the diagonal and the Lorenz curve."""
    w = np.sort(_weights_array(weights))
    n = w.size
    return float(((2 * np.arange(1, n + 1) - n - 1) * w).sum() / (n * w.sum()))


def binned_median(x, y, values, bins: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median of ``values`` over a bins x bins grid of (x, y) with quantile edges (equal counts per row/column).
    Returns x edges (bins + 1,), y edges (bins + 1,), medians (bins, bins) (NaN where empty; [i, j] is x bin i,
    y bin j) and counts (bins, bins)."""
    x, y, values = (np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=float) for a in (x, y, values))
    if not x.shape == y.shape == values.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"x, y and values must be non-empty 1-D arrays of one length, got {x.shape}, {y.shape}, "
                         f"{values.shape}")
    checks.positive_int("bins", bins, "the number of bins per axis, e.g. bins=8")
    edges = [np.quantile(a, np.linspace(0, 1, bins + 1)) for a in (x, y)]
    index = [np.clip(np.searchsorted(e, a, side="right") - 1, 0, bins - 1) for e, a in zip(edges, (x, y))]
    medians, counts = np.full((bins, bins), np.nan), np.zeros((bins, bins), dtype=int)
    for i in range(bins):
        for j in range(bins):
            cell = values[(index[0] == i) & (index[1] == j)]
            counts[i, j] = cell.size
            if cell.size:
                medians[i, j] = np.median(cell)
    return edges[0], edges[1], medians, counts
