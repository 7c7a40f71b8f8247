"""A 2-D loss surface to watch SAM at work: real point, phantom point, step and path.

The surface is the loss of the smallest two-layer network, f(x) = w2 * w1 * x, fitting the
single example (x, y) = (1, 1) with the squared loss:

    L(w) = 1/2 * (w1 * w2 - 1)**2

Its minima form a valley, the hyperbola w1 * w2 = 1, whose sharpness (the top Hessian
eigenvalue there, w1**2 + w2**2) is lowest at the *balanced* points (1, 1) and (-1, -1).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from . import checks
from .optim import SAM
from .optim.sam import check_rho

__all__ = ["product_loss", "Path", "sam_path", "sharpness", "grid_points", "valley_points", "sam_objective",
           "first_step_table", "endpoints_table", "valley_minimum"]

Loss2D = Callable[[Tensor], Tensor]


def product_loss(w: Tensor) -> Tensor:
    """L(w) = (w1 * w2 - 1)**2 / 2 for w of shape (..., 2); returns shape (...)."""
    if w.shape[-1] != 2:
        raise ValueError(f"w must have a last dimension of 2 (w1, w2), got shape {tuple(w.shape)}")
    return 0.5 * (w[..., 0] * w[..., 1] - 1) ** 2


@dataclass(frozen=True)
class Path:
    """The run of one optimizer: ``points`` (T+1, 2) real weights, ``phantoms`` (T, 2) the weights
    where each step's gradient was taken (equal to the real ones when rho = 0), ``losses`` (T+1,)."""
    rho: float
    lr: float
    points: Tensor
    phantoms: Tensor
    losses: Tensor

    @property
    def end(self) -> Tensor:
        return self.points[-1]


def sam_path(loss: Loss2D, start, rho: float, lr: float, steps: int) -> Path:
    """Run ``samlib.SAM`` around plain gradient descent (lr) for ``steps`` steps from ``start``
    (float64), recording real and phantom points. ``rho=0`` is gradient descent."""
    checks.function("loss", loss, "a function of the weights w (2,), e.g. samlib.landscape.product_loss")
    steps = checks.non_negative_int("steps", steps, "pass the number of SAM steps, e.g. steps=20")
    checks.real("lr", lr, low=0, low_open=True)
    check_rho(rho)
    _finite_point("start", start)
    w = torch.nn.Parameter(torch.as_tensor(start, dtype=torch.float64).clone())
    opt = SAM([w], torch.optim.SGD, rho=rho, lr=lr)
    points, phantoms = [w.detach().clone()], []
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        opt.first_step(zero_grad=True)
        phantoms.append(w.detach().clone())
        loss(w).backward()
        opt.second_step()
        points.append(w.detach().clone())
    points = torch.stack(points)
    phantoms = torch.stack(phantoms) if phantoms else points[:0]
    return Path(rho, lr, points, phantoms, loss(points).detach())


def _finite_point(name: str, value, shape: tuple | None = None) -> Tensor:
    """``value`` as a float64 tensor of finite numbers (of ``shape`` if given), else an error naming it."""
    try:
        point = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a point, a sequence or tensor of numbers such as [1.0, 2.0], got "
                        f"{type(value).__name__} {value!r:.60}") from None
    if point.ndim == 0 or point.numel() == 0 or (shape is not None and tuple(point.shape) != shape):
        raise ValueError(f"{name} must be a point of shape {shape or '(d,)'}, got shape {tuple(point.shape)}")
    if not bool(torch.isfinite(point).all()):
        raise ValueError(f"{name} must hold finite numbers, got {point.tolist()}: a NaN or infinite point has no "
                         "meaningful loss, gradient or path")
    return point


def sharpness(loss: Loss2D, w: Tensor) -> float:
    """Top eigenvalue of the Hessian of ``loss`` at ``w`` (2,)."""
    checks.function("loss", loss, "a function of the weights w")
    if not isinstance(w, Tensor):
        raise TypeError(f"w must be a tensor of weights, got {type(w).__name__}")
    _finite_point("w", w.detach())
    hessian = torch.autograd.functional.hessian(loss, w.detach().to(torch.float64))
    return torch.linalg.eigvalsh(hessian)[-1].item()


def grid_points(xs: Tensor, ys: Tensor) -> Tensor:
    """The grid ``xs`` (nx,) by ``ys`` (ny,) as points (ny, nx, 2), rows along y."""
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


def valley_points(ts: Tensor) -> Tensor:
    """Points (t, 1/t) of the valley of :func:`product_loss`, (T,) -> (T, 2)."""
    if not isinstance(ts, Tensor):
        raise TypeError(f"ts must be a tensor of valley positions t, got {type(ts).__name__}")
    if not bool((torch.isfinite(ts) & (ts != 0)).all()):
        raise ValueError("ts must hold finite, non-zero positions t (the valley point is (t, 1/t))")
    return torch.stack([ts, 1 / ts], dim=-1)


def sam_objective(loss: Loss2D, points: Tensor, rho: float, directions: int = 360) -> Tensor:
    """SAM's objective max_{||e|| <= rho} L(w + e) at ``points`` (..., 2) -> (...).

    The max is taken over ``directions`` points of the circle of radius rho, which is exact
    up to the angular resolution when L has no local maximum inside the disk (true for
    :func:`product_loss`, whose only interior critical points are minima and a saddle).
    """
    check_rho(rho)
    checks.positive_int("directions", directions, "the number of points on the circle, e.g. 360")
    if not isinstance(points, Tensor) or points.ndim == 0 or points.shape[-1] != 2:
        raise ValueError(f"points must be a tensor (..., 2) of weights, got "
                         f"{tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("points must hold finite weights, got NaN or infinite ones")
    if rho == 0:
        return loss(points)
    angles = torch.linspace(0, 2 * torch.pi, directions + 1, dtype=points.dtype)[:-1]
    circle = rho * torch.stack([angles.cos(), angles.sin()], dim=-1)  # (K, 2)
    return loss(points[..., None, :] + circle).amax(dim=-1)


def first_step_table(loss: Loss2D, paths: list[Path]) -> pd.DataFrame:
    """For one-step paths from the same point: phantom point, loss there, and the step, one row per rho."""
    rows = []
    for p in paths:
        step = p.points[1] - p.points[0]
        rows.append({"rho": p.rho, "phantom w1": p.phantoms[0, 0].item(), "phantom w2": p.phantoms[0, 1].item(),
                     "L(phantom)": loss(p.phantoms[0]).item(), "step w1": step[0].item(),
                     "step w2": step[1].item(), "step length": step.norm().item()})
    return pd.DataFrame(rows).set_index("rho").round(4)


def endpoints_table(loss: Loss2D, paths: list[Path], last: int = 50) -> pd.DataFrame:
    """Where each run ended: weights, balance w1/w2, loss (0 below 1e-10), sharpness, and the
    range of w1 over the ``last`` steps (0 for a run that has settled)."""
    rows = []
    for p in paths:
        final_loss = p.losses[-1].item()
        rows.append({"rho": p.rho, "w1": p.end[0].item(), "w2": p.end[1].item(),
                     "w1/w2": (p.end[0] / p.end[1]).item(),
                     "loss": float(f"{final_loss:.2e}") if final_loss >= 1e-10 else 0.0,
                     "sharpness": sharpness(loss, p.end),
                     f"w1 range, last {last} steps": (p.points[-last:, 0].max() - p.points[-last:, 0].min()).item()})
    return pd.DataFrame(rows).set_index("rho").round({"w1": 3, "w2": 3, "w1/w2": 2, "sharpness": 3,
                                                      f"w1 range, last {last} steps": 3})


def valley_minimum(loss: Loss2D, rho: float, ts: Tensor | None = None) -> tuple[float, float]:
    """Where along the valley (t, 1/t) SAM's objective is lowest: (t, objective there)."""
    check_rho(rho)
    ts = torch.linspace(0.3, 3.0, 2701, dtype=torch.float64) if ts is None else ts
    values = sam_objective(loss, valley_points(ts), rho)
    return ts[values.argmin()].item(), values.min().item()
