"""The toy of the balanced-learning chapters: one easy and one hard feature that both predict the label.

* **easy** input, 1-D: ``x_easy = easy_scale * y_easy * u`` with ``u ~ U[margin, 1]``, linearly
  separable with margin ``easy_scale * margin``;
* **hard** input, 2-D: two interleaved spirals. A point at radius ``r ~ U[0.1, 1]`` sits at angle
  ``2 pi turns r`` (plus ``pi`` for class -1), with Gaussian noise of std ``noise``. ``turns`` is the
  complexity knob: more turns wind the two arms tighter around each other.

In **training** data both inputs carry the same label (redundant features). In **decorrelated**
data, used to probe a learned representation, the easy and hard labels are drawn independently.
These formulas are the book's choice; the paper does not publish its toy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import checks

__all__ = ["ToyData", "make_toy", "spiral", "easy_line"]


@dataclass(frozen=True)
class ToyData:
    """``x_easy`` (N, 1), ``x_hard`` (N, 2), ``y`` (N,) the training label, and the labels each input
    encodes, ``y_easy`` and ``y_hard`` (N,), all in {-1, +1} (equal to ``y`` unless decorrelated)."""

    x_easy: Tensor
    x_hard: Tensor
    y: Tensor
    y_easy: Tensor
    y_hard: Tensor
    turns: float

    def __len__(self) -> int:
        return len(self.y)

    def without_easy(self) -> "ToyData":
        """The same points with the easy input set to 0: the hard-feature-only control."""
        return ToyData(torch.zeros_like(self.x_easy), self.x_hard, self.y, self.y_easy, self.y_hard, self.turns)


def _check_count(n, name: str = "n") -> int:
    return checks.positive_int(name, n, f"pass the number of points, e.g. {name}=1000")


def _check_labels(y: Tensor) -> Tensor:
    if y.ndim != 1 or not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(f"labels must be a 1-D tensor of -1/+1 values, got shape {tuple(y.shape)}")
    return y


def spiral(y: Tensor, turns: float, noise: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """Points (N, 2) on two interleaved spirals: arm +1 for ``y = +1``, arm -1 (rotated by pi) for -1.

    ``turns`` (> 0) is how many full revolutions an arm makes from radius 0.1 to radius 1."""
    checks.real("turns (the spiral's complexity)", turns, low=0, low_open=True, hint="the book uses 0.25 to 1.5")
    checks.real("noise (a standard deviation)", noise, low=0)
    y = _check_labels(y)
    r = 0.1 + 0.9 * torch.rand(len(y), generator=generator, dtype=torch.float64)
    angle = 2 * math.pi * turns * r + math.pi * (y < 0)
    points = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    return points + noise * torch.randn(len(y), 2, generator=generator, dtype=torch.float64)


def easy_line(y: Tensor, scale: float = 1.0, margin: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """Points (N, 1) ``scale * y * u`` with ``u ~ U[margin, 1]``: separable by 0 with margin ``scale * margin``."""
    checks.real("easy_scale", scale, low=0, low_open=True)
    checks.real("margin", margin, low=0, high=1, high_open=True)
    y = _check_labels(y)
    u = margin + (1 - margin) * torch.rand(len(y), generator=generator, dtype=torch.float64)
    return (scale * y * u).unsqueeze(1)


def _labels(n: int, generator: torch.Generator) -> Tensor:
    return torch.randint(0, 2, (n,), generator=generator, dtype=torch.float64) * 2 - 1


def make_toy(n: int, turns: float, *, seed: int, decorrelated: bool = False, easy_scale: float = 1.0,
             margin: float = 0.2, noise: float = 0.05, dtype: torch.dtype = torch.float32) -> ToyData:
    """``n`` toy points of complexity ``turns``, reproducible from ``seed`` (its own generator; the
    global RNG is untouched). ``decorrelated=True`` draws the easy and hard labels independently
    (``y`` is then the hard label)."""
    n = _check_count(n)
    checks.strict_bool("decorrelated", decorrelated)
    checks.choice("dtype", dtype, (torch.float32, torch.float64))
    g = torch.Generator().manual_seed(checks.seed("seed", seed))
    y_hard = _labels(n, g)
    y_easy = _labels(n, g) if decorrelated else y_hard
    x_easy = easy_line(y_easy, easy_scale, margin, g)
    x_hard = spiral(y_hard, turns, noise, g)
    return ToyData(x_easy.to(dtype), x_hard.to(dtype), y_hard.to(dtype), y_easy.to(dtype), y_hard.to(dtype),
                   float(turns))
