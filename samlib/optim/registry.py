"""The book's optimizers by name, and the one check of a run's (optimizer, rho) that every run kind uses.

The toy sweep (:class:`samlib.toy.sweep.Run`), the noise-memorization runs (:class:`samlib.memorization.data.Run`)
and the real-image runs (:class:`samlib.experiments.runs.RunSpec`) each accept a subset of these names.
"""
from __future__ import annotations

from dataclasses import dataclass

from .sam import check_rho

__all__ = ["OptimizerInfo", "REGISTRY", "OPTIMIZERS", "check_run", "run_label"]


@dataclass(frozen=True)
class OptimizerInfo:
    """What an optimizer perturbs (``"nothing"``, ``"head"`` or ``"all"``) and, for an LSAM ablation,
    the effect it keeps (see :class:`samlib.optim.AblatedLSAM`)."""

    name: str
    perturbs: str
    keeps: str | None = None


REGISTRY = {info.name: info for info in (
    OptimizerInfo("SGD", "nothing"),
    OptimizerInfo("SAM", "all"),
    OptimizerInfo("LSAM", "head"),
    OptimizerInfo("IW-only", "head", keeps="importance_weighting"),
    OptimizerInfo("LR-only", "head", keeps="lr_scaling"),
)}
OPTIMIZERS = tuple(REGISTRY)


def check_run(optimizer, rho, allowed: tuple[str, ...] = OPTIMIZERS) -> float:
    """Check a run's optimizer name (one of ``allowed``) and radius: SGD takes rho = 0, every other optimizer
    a rho > 0. Returns rho as a float; raises a ``ValueError``/``TypeError`` that names the fix."""
    if optimizer not in allowed:
        raise ValueError(f"unknown optimizer {optimizer!r}: the optimizer must be one of {allowed}")
    rho = check_rho(rho)
    if (optimizer == "SGD") != (rho == 0):
        others = ", ".join(name for name in allowed if name != "SGD")
        raise ValueError(f"got {optimizer} with rho={rho}: SGD takes rho=0, and {others} a rho > 0")
    return rho


def run_label(optimizer: str, rho: float) -> str:
    """'SGD', 'SAM ρ=0.05', 'LSAM ρ=0.1': how tables and figures name an (optimizer, rho) pair."""
    return optimizer if optimizer == "SGD" else f"{optimizer} ρ={rho:g}"
