"""Linear probes: how well a frozen representation encodes a label.

Fit a logistic regression on features of one split and report its accuracy on another.
Used by every chapter to measure a feature's quality (lower probe error = better learned).

Two solvers (:data:`SOLVERS`). ``"lbfgs"``, the default that the shipped studies and the toy chapters were
made with, stops at a gradient of 1e-4 in the features' own dtype: on the image chapters' many, nearly
separable features that point depends on the rounding of NumPy's BLAS kernels (a test image or two flips
between OpenBLAS's AVX-512 and Haswell kernels). ``"newton-cholesky"`` solves the same problem to its optimum
in float64, so its accuracy is a property of the features alone, the same under every BLAS kernel: the
Waterbirds chapter uses it. Its cost grows with the cube of the feature count (minutes a probe on the paper
network's 3,584 features on 2 CPU cores).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from . import checks

__all__ = ["SOLVERS", "ProbeResult", "extract_features", "linear_probe"]

SOLVERS = ("lbfgs", "newton-cholesky")  # the default first; see the module docstring


@dataclass(frozen=True)
class ProbeResult:
    """A probe's accuracy on its train and test splits and, for two classes, ``direction``: its weight vector in
    the features' own coordinates (D,), the direction of feature space that reads the label (the standardisation
    undone: coefficient / scale); None for more classes."""

    train_accuracy: float
    test_accuracy: float
    direction: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def test_error(self) -> float:
        return 1.0 - self.test_accuracy


@torch.no_grad()
def extract_features(model: nn.Module, inputs: Tensor, batch_size: int = 512) -> Tensor:
    """``model.features`` of ``inputs`` (N, ...) -> (N, D) on the CPU, in eval mode (the mode is restored)."""
    if not hasattr(model, "features"):
        raise TypeError(f"{type(model).__name__} has no .features: wrap it in samlib.models.FeaturesAndHead")
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor (N, ...), got {type(inputs).__name__}")
    batch_size = checks.positive_int("batch_size", batch_size, "the number of inputs per forward pass, e.g. 512")
    if inputs.ndim == 0 or len(inputs) == 0:
        raise ValueError(f"inputs hold no examples (shape {tuple(inputs.shape)}): extract features of at least one")
    was_training = model.training
    model.eval()
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else inputs.device
    try:
        chunks = [model.features(inputs[i:i + batch_size].to(device)).cpu() for i in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks)


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _classifier(solver: str, C: float) -> LogisticRegression:
    if solver == "lbfgs":  # stops early, at a point that depends on the BLAS kernel's rounding
        return LogisticRegression(C=C, max_iter=2000)
    return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-8, max_iter=100)


def linear_probe(train_features, train_labels, test_features, test_labels, *, C: float = 1.0,
                 solver: str = "lbfgs") -> ProbeResult:
    """Standardise the features, fit an L2-regularised logistic regression (strength 1/C) on the
    train split, and return its accuracy on both splits. Features (N, D); labels (N,) of any
    discrete values (binary or multiclass). ``solver``: one of :data:`SOLVERS` (``"newton-cholesky"``:
    in float64, to the optimum, independent of the BLAS kernel). Deterministic."""
    solver = checks.choice("solver", solver, SOLVERS, "'newton-cholesky' solves to the optimum, BLAS-independent")
    C = checks.real("C", C, low=0, low_open=True, hint="C is the inverse regularisation strength, e.g. C=1.0")
    xs = [_as_numpy(a) for a in (train_features, test_features)]
    ys = [_as_numpy(a) for a in (train_labels, test_labels)]
    for x, y, split in zip(xs, ys, ("train", "test")):
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{split} features must be (N, D) and labels (N,), got {x.shape} and {y.shape}")
        if len(x) == 0 or x.shape[1] == 0:
            raise ValueError(f"{split} features hold no {'examples' if len(x) == 0 else 'columns'} (shape "
                             f"{x.shape}): a probe needs at least one example with at least one feature")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{split} features must be numbers, got dtype {x.dtype}")
        if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise ValueError(f"{split} labels must be discrete classes (integers or names), got continuous values "
                             f"such as {y[~(np.isfinite(y) & (y == np.round(y)))][:3].tolist()}")
        if not np.isfinite(x).all():
            raise ValueError(f"{split} features contain NaN or infinite values: the network diverged?")
    if xs[0].shape[1] != xs[1].shape[1]:
        raise ValueError(f"train and test features differ in width: {xs[0].shape[1]} vs {xs[1].shape[1]}")
    if len(np.unique(ys[0])) < 2:
        raise ValueError("the probe's train labels hold a single class: a probe needs at least two")
    if solver == "newton-cholesky":
        xs = [x.astype(np.float64) for x in xs]
    probe = make_pipeline(StandardScaler(), _classifier(solver, C))
    probe.fit(xs[0], ys[0])
    scaler, classifier = probe[0], probe[-1]
    direction = classifier.coef_[0] / scaler.scale_ if classifier.coef_.shape[0] == 1 else None
    return ProbeResult(float(probe.score(xs[0], ys[0])), float(probe.score(xs[1], ys[1])), direction)
