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

import torch
from torch import Tensor

from .optim import SAM

__all__ = ["product_loss", "Path", "sam_path", "sharpness", "loss_grid", "sam_objective"]

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
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
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


def sharpness(loss: Loss2D, w: Tensor) -> float:
    """Top eigenvalue of the Hessian of ``loss`` at ``w`` (2,)."""
    hessian = torch.autograd.functional.hessian(loss, w.detach().to(torch.float64))
    return torch.linalg.eigvalsh(hessian)[-1].item()


def loss_grid(loss: Loss2D, xs: Tensor, ys: Tensor) -> Tensor:
    """``loss`` on the grid ``xs`` (nx,) by ``ys`` (ny,); returns (ny, nx), rows along y."""
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return loss(grid)


def sam_objective(loss: Loss2D, xs: Tensor, ys: Tensor, rho: float, directions: int = 360) -> Tensor:
    """SAM's objective max_{||e|| <= rho} L(w + e) on a grid (ny, nx), taking the max over
    ``directions`` points of the circle of radius rho (exact when L has no interior local
    maximum in the disk, as for :func:`product_loss`). ``rho=0`` gives ``loss_grid``."""
    if rho == 0:
        return loss_grid(loss, xs, ys)
    angles = torch.linspace(0, 2 * torch.pi, directions + 1, dtype=xs.dtype)[:-1]
    circle = rho * torch.stack([angles.cos(), angles.sin()], dim=-1)            # (K, 2)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)           # (ny, nx, 2)
    return loss(grid[..., None, :] + circle).amax(dim=-1)
