"""Signal-plus-noise patch data of Chen et al. (2023) and Kou et al. (2023), seeded per run.

Each example has two patches in R^d, in random order: the *signal patch* ŷ·μ and the *noise
patch* ξ ~ N(0, σ_p² (I - μμᵀ/‖μ‖²)), i.e. Gaussian noise orthogonal to μ. The true label ŷ is
±1 with probability 1/2; the observed label y is ŷ flipped with probability p. We take
μ = ‖μ‖·e₁, so "orthogonal to μ" means the first coordinate of ξ is zero.

A :class:`Run` names one training run (n, ‖μ‖, seed, SAM radius τ). Its random numbers come
from independent streams of its seed (``init``, ``train``, ``batches``, ``test``), so the SGD
and SAM runs of a cell share data, initial weights and batch order, every ‖μ‖ of a seed shares
the same noise and labels, and a run gives the same numbers alone or inside a batch of runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import product

import torch
from torch import Tensor

from .. import checks
from ..optim.registry import check_run

__all__ = ["OPTIMIZERS", "DataSetting", "Run", "PatchData", "grid_runs", "generator", "signal_vector",
           "make_patches", "training_data", "held_out_data"]

OPTIMIZERS = ("SGD", "SAM")  # the names of samlib.optim.registry that memorization runs take: tau = 0 and tau > 0


@dataclass(frozen=True)
class DataSetting:
    """What every run of a study shares: dimension ``d``, noise scale ``sigma_p``, flip rate ``p``
    and the number of fresh test points ``n_test``."""
    d: int = 1000
    sigma_p: float = 1.0
    p: float = 0.1
    n_test: int = 2000

    def __post_init__(self):
        checks.int_at_least("d", self.d, 2, "the signal takes one direction and the noise needs at least one more")
        checks.real("sigma_p", self.sigma_p, low=0, low_open=True, hint="the noise patch's standard deviation")
        checks.positive_int("n_test", self.n_test)
        checks.real("p (the label-flip probability)", self.p, low=0, high=0.5, high_open=True, hint="at p >= 0.5 the "
                    "observed labels carry no information about (or invert) the true ones")


@dataclass(frozen=True)
class Run:
    """One training run: ``n`` training points, signal strength ``mu_norm`` = ‖μ‖, ``seed``,
    and SAM's radius ``tau`` (0 is plain SGD)."""
    n: int
    mu_norm: float
    seed: int = 0
    tau: float = 0.0

    def __post_init__(self):
        checks.positive_int("n", self.n, "the number of training points")
        checks.real("mu_norm", self.mu_norm, low=0, hint="the signal strength ‖μ‖")
        checks.seed("seed", self.seed)
        try:
            check_run(self.optimizer, self.tau, OPTIMIZERS)
        except (TypeError, ValueError) as err:
            raise type(err)(f"tau is SAM's radius (rho in the rest of the book): {err}") from None

    @property
    def optimizer(self) -> str:
        """The run's name in :data:`OPTIMIZERS`: SGD at tau = 0, else SAM (which perturbs every weight)."""
        return "SGD" if self.tau == 0 else "SAM"


def grid_runs(ns, mu_norms, seeds, taus=(0.0,)) -> list[Run]:
    """Every combination, ordered n, then ‖μ‖, then seed, then τ."""
    ns, mu_norms, seeds, taus = (checks.items(name, value, "e.g. [20, 40]") for name, value in
                                 (("ns", ns), ("mu_norms", mu_norms), ("seeds", seeds), ("taus", taus)))
    return [Run(n, float(mu), seed, float(tau)) for n, mu, seed, tau in product(ns, mu_norms, seeds, taus)]


@dataclass
class PatchData:
    """Examples of one run: ``x`` (N, 2, d) patches, ``noise`` (N, d) the noise patches ξ,
    ``clean`` (N,) true labels ŷ, ``y`` (N,) observed labels, ``signal_patch`` (N,) 0 or 1."""
    x: Tensor
    noise: Tensor
    clean: Tensor
    y: Tensor
    signal_patch: Tensor


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one named stream of ``seed`` (streams are independent of each other)."""
    checks.seed("seed", seed)
    digest = hashlib.sha256(f"memorization/{stream}/{seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def signal_vector(mu_norm: float, d: int, dtype=torch.float32) -> Tensor:
    """μ = ‖μ‖·e₁: (d,)."""
    mu = torch.zeros(d, dtype=dtype)
    mu[0] = mu_norm
    return mu


def make_patches(n: int, mu_norm: float, setting: DataSetting, gen: torch.Generator,
                 dtype=torch.float32) -> PatchData:
    """``n`` examples drawn from ``gen``: noise first, then labels, flips and patch order."""
    noise = torch.randn(n, setting.d, generator=gen, dtype=dtype) * setting.sigma_p
    noise[:, 0] = 0  # orthogonal to μ = ‖μ‖ e₁
    clean = torch.randint(0, 2, (n,), generator=gen).to(dtype) * 2 - 1
    flipped = torch.rand(n, generator=gen, dtype=torch.float64) < setting.p
    y = torch.where(flipped, -clean, clean)
    signal_patch = torch.randint(0, 2, (n,), generator=gen)
    x = torch.empty(n, 2, setting.d, dtype=dtype)
    rows = torch.arange(n)
    x[rows, signal_patch] = clean[:, None] * signal_vector(mu_norm, setting.d, dtype)
    x[rows, 1 - signal_patch] = noise
    return PatchData(x, noise, clean, y, signal_patch)


def training_data(run: Run, setting: DataSetting, dtype=torch.float32) -> PatchData:
    """The ``run.n`` training examples of ``run`` (the same for SGD and SAM)."""
    return make_patches(run.n, run.mu_norm, setting, generator(run.seed, "train"), dtype)


def held_out_data(seed: int, mu_norm: float, setting: DataSetting, dtype=torch.float32) -> PatchData:
    """``setting.n_test`` fresh examples for every run with this seed and ‖μ‖."""
    return make_patches(setting.n_test, mu_norm, setting, generator(seed, "test"), dtype)
