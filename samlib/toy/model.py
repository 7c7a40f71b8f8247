"""Many two-branch toy models at once, with stacked parameters.

One model is f(x) = v_easy * Phi_easy(x_easy) + v_hard * Phi_hard(x_hard), the paper's form
f(x) = sum_k v_k Phi_k(x) with one scalar feature per branch:

* Phi_easy: MLP 1 -> H -> 1 (ReLU), on the easy input;
* Phi_hard: MLP 2 -> H -> H -> 1 (ReLU), on the hard input;
* v = (v_easy, v_hard): the linear last layer, without bias.

R models are held as one dict of tensors whose first dimension is the run, so a whole sweep is
a few batched matrix products per step. Run r's parameters are ``{k: p[r] for k, p in params.items()}``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import checks
from ..models import FeaturesAndHead

__all__ = ["HEAD", "init_params", "features", "logits", "select_runs", "TwoBranchFeatures", "to_module"]

HEAD = "v"
_SHAPES = {  # name: (shape without the run dimension, fan-in for the init scale)
    "easy.w1": (lambda h: (1, h), 1), "easy.b1": (lambda h: (1, h), 1),
    "easy.w2": (lambda h: (h, 1), "h"), "easy.b2": (lambda h: (1, 1), "h"),
    "hard.w1": (lambda h: (2, h), 2), "hard.b1": (lambda h: (1, h), 2),
    "hard.w2": (lambda h: (h, h), "h"), "hard.b2": (lambda h: (1, h), "h"),
    "hard.w3": (lambda h: (h, 1), "h"), "hard.b3": (lambda h: (1, 1), "h"),
    HEAD: (lambda h: (2,), 2),
}


def init_params(seeds: list[int], hidden: int = 64, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """One model per seed, each drawn from its own generator (equal seeds give equal models):
    every weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as ``torch.nn.Linear`` does.
    Returns {name: (R, ...)} with R = len(seeds)."""
    checks.positive_int("hidden", hidden, "the width of each branch, e.g. hidden=32")
    if len(seeds) == 0:
        raise ValueError("seeds is empty: pass one seed per model to create")
    runs = []
    for seed in seeds:
        g = torch.Generator().manual_seed(checks.seed("seed", seed))
        run = {}
        for name, (shape, fan_in) in _SHAPES.items():
            bound = 1 / math.sqrt(hidden if fan_in == "h" else fan_in)
            run[name] = (2 * torch.rand(shape(hidden), generator=g, dtype=torch.float64) - 1) * bound
        runs.append(run)
    return {name: torch.stack([run[name] for run in runs]).to(dtype) for name in _SHAPES}


def _mlp(x: Tensor, params: dict[str, Tensor], branch: str, layers: int) -> Tensor:
    for i in range(1, layers + 1):
        x = torch.baddbmm(params[f"{branch}.b{i}"], x, params[f"{branch}.w{i}"])
        if i < layers:
            x = torch.relu(x)
    return x


def features(params: dict[str, Tensor], x_easy: Tensor, x_hard: Tensor) -> Tensor:
    """The representation (Phi_easy, Phi_hard) of every run: x_easy (R, N, 1), x_hard (R, N, 2) -> (R, N, 2)."""
    if x_easy.ndim != 3 or x_easy.shape[-1] != 1 or x_hard.ndim != 3 or x_hard.shape[-1] != 2:
        raise ValueError(f"expected x_easy (R, N, 1) and x_hard (R, N, 2), got {tuple(x_easy.shape)} and "
                         f"{tuple(x_hard.shape)}")
    dtype = params[HEAD].dtype  # inputs follow the parameters (float32 data, float64 runs)
    return torch.cat([_mlp(x_easy.to(dtype), params, "easy", 2), _mlp(x_hard.to(dtype), params, "hard", 3)], dim=-1)


def logits(params: dict[str, Tensor], x_easy: Tensor, x_hard: Tensor) -> Tensor:
    """f(x) = v . Phi(x) for every run: (R, N)."""
    return torch.einsum("rnk,rk->rn", features(params, x_easy, x_hard), params[HEAD])


def select_runs(params: dict[str, Tensor], index) -> dict[str, Tensor]:
    """The parameters of a subset of runs (``index``: an int, a slice or a list of run indices)."""
    if isinstance(index, int):
        index = [index]
    return {name: p[index] for name, p in params.items()}


class TwoBranchFeatures(nn.Module):
    """(Phi_easy, Phi_hard) of inputs x = [x_easy, x_hard] (N, 3) -> (N, 2), as ``nn.Module`` branches."""

    def __init__(self, easy: nn.Sequential, hard: nn.Sequential):
        super().__init__()
        self.easy, self.hard = easy, hard

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.easy(x[:, :1]), self.hard(x[:, 1:])], dim=1)


def _linear(weight: Tensor, bias: Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[0], weight.shape[1], bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight.T)
        if bias is not None:
            layer.bias.copy_(bias.reshape(-1))
    return layer


def to_module(params: dict[str, Tensor], run: int) -> FeaturesAndHead:
    """Run ``run`` of a stack as an ordinary ``FeaturesAndHead`` (a copy): input [x_easy, x_hard] (N, 3),
    features (N, 2), head ``nn.Linear(2, 1, bias=False)``, output the logit (N, 1). For the optimizers of
    ``samlib.optim``, probes and the phantom decomposition."""
    p = {k: v[run].detach() for k, v in params.items()}
    easy = nn.Sequential(_linear(p["easy.w1"], p["easy.b1"]), nn.ReLU(), _linear(p["easy.w2"], p["easy.b2"]))
    hard = nn.Sequential(_linear(p["hard.w1"], p["hard.b1"]), nn.ReLU(), _linear(p["hard.w2"], p["hard.b2"]),
                         nn.ReLU(), _linear(p["hard.w3"], p["hard.b3"]))
    return FeaturesAndHead(TwoBranchFeatures(easy, hard), _linear(p[HEAD].reshape(2, 1), None))
