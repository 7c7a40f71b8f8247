"""The book's optimizers by name: what each perturbs and keeps, the one place every trainer reads it from, and the
one check of a run's (optimizer, rho) that every run kind uses.

The toy sweep (:class:`samlib.toy.sweep.Run`), the noise-memorization runs (:class:`samlib.memorization.data.Run`)
and the real-image runs (:class:`samlib.experiments.runs.RunSpec`) each accept a subset of these names, and each
asks this module what a name does (:func:`perturbs_all`, :func:`phantom_parts`, :func:`effect_of`), not the name.

An LSAM ablation has one name of record, the optimizer's ("IW-only", "LR-only": what tables print and CSVs store).
Its two other spellings are derived here, from :data:`REGISTRY`: the effect it keeps (``keeps``, the ``effect`` of
:class:`samlib.optim.AblatedLSAM` and :data:`EFFECTS`), and the pair of flags that say which of LSAM's two parts
are taken at the phantom head (:func:`phantom_parts`, the ``phantom_weights``/``phantom_chain`` of
:func:`samlib.decompose.ablation_loss` and the toy sweep's parts).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from .sam import check_rho

__all__ = ["PERTURBS", "EFFECTS", "OptimizerInfo", "REGISTRY", "OPTIMIZERS", "ABLATIONS", "perturbs_all",
           "phantom_parts", "effect_of", "ablation_keeping", "check_run", "run_label"]

PERTURBS = ("nothing", "head", "all")  # what an optimizer's ascent moves: no weight, the last layer, every weight
EFFECTS = ("importance_weighting", "lr_scaling")
"""LSAM's two effects (see :mod:`samlib.decompose`), in the order of :func:`phantom_parts`' flags: the importance
weights taken at the phantom head, and the phantom head in the chain rule."""


@dataclass(frozen=True)
class OptimizerInfo:
    """What an optimizer perturbs (one of :data:`PERTURBS`) and, for an LSAM ablation, the one effect of
    :data:`EFFECTS` it keeps (``None``: every effect its perturbation has)."""

    name: str
    perturbs: str
    keeps: str | None = None

    def __post_init__(self):
        checks.choice("perturbs", self.perturbs, PERTURBS, f"what {self.name} perturbs")
        checks.optional(checks.choice, "keeps", self.keeps, EFFECTS, "or None for every effect")
        if self.keeps is not None and self.perturbs != "head":
            raise ValueError(f"{self.name} keeps {self.keeps!r} but perturbs {self.perturbs!r}: an ablation keeps "
                             "one of LSAM's effects, so it perturbs 'head'")


REGISTRY = {info.name: info for info in (
    OptimizerInfo("SGD", "nothing"),
    OptimizerInfo("SAM", "all"),
    OptimizerInfo("LSAM", "head"),
    OptimizerInfo("IW-only", "head", keeps="importance_weighting"),
    OptimizerInfo("LR-only", "head", keeps="lr_scaling"),
)}
OPTIMIZERS = tuple(REGISTRY)
ABLATIONS = tuple(name for name, info in REGISTRY.items() if info.keeps is not None)  # ("IW-only", "LR-only")


def _info(name: str) -> OptimizerInfo:
    checks.choice("optimizer", name, OPTIMIZERS)
    return REGISTRY[name]


def perturbs_all(name: str) -> bool:
    """Whether optimizer ``name``'s ascent moves every weight (SAM), not the head alone or nothing."""
    return _info(name).perturbs == "all"


def phantom_parts(name: str) -> tuple[bool, bool]:
    """Which of LSAM's two parts optimizer ``name`` takes at the phantom head: (the importance weights, the head in
    the chain rule). SGD (False, False), LSAM (True, True), IW-only (True, False), LR-only (False, True). SAM,
    which perturbs every weight, has no such split: a ``ValueError``."""
    info = _info(name)
    if info.perturbs == "all":
        raise ValueError(f"{name} perturbs every weight, so its update has no head-only parts: phantom_parts takes "
                         f"one of {', '.join(n for n in OPTIMIZERS if not perturbs_all(n))}")
    return tuple(info.perturbs == "head" and info.keeps in (None, effect) for effect in EFFECTS)


def effect_of(name: str) -> str:
    """The effect that the ablation ``name`` keeps: ``effect_of("IW-only") == "importance_weighting"``."""
    checks.choice("optimizer", name, ABLATIONS, "an ablation of LSAM")
    return REGISTRY[name].keeps


def ablation_keeping(effect: str) -> str:
    """The ablation that keeps ``effect``: ``ablation_keeping("lr_scaling") == "LR-only"``."""
    checks.choice("effect", effect, EFFECTS, "the effect that is kept; for both use LSAM")
    return next(name for name in ABLATIONS if REGISTRY[name].keeps == effect)


def check_run(optimizer, rho, allowed: tuple[str, ...] = OPTIMIZERS) -> float:
    """Check a run's optimizer name (one of ``allowed``) and radius: an optimizer that perturbs nothing (SGD) takes
    rho = 0, every other one a rho > 0. Returns rho as a float; raises a ``ValueError``/``TypeError`` that names
    the fix."""
    checks.choice("optimizer", optimizer, allowed)
    rho = check_rho(rho)
    plain = [name for name in allowed if REGISTRY[name].perturbs == "nothing"]
    if (optimizer in plain) != (rho == 0):
        takes_zero = f"{', '.join(plain)} takes rho=0, and " if plain else ""
        others = ", ".join(name for name in allowed if name not in plain)
        raise ValueError(f"got {optimizer} with rho={rho}: {takes_zero}{others} a rho > 0")
    return rho


def run_label(optimizer: str, rho: float) -> str:
    """'SGD', 'SAM ρ=0.05', 'LSAM ρ=0.1': how tables and figures name an (optimizer, rho) pair (an optimizer that
    perturbs nothing has no radius to show)."""
    plain = optimizer in REGISTRY and REGISTRY[optimizer].perturbs == "nothing"
    return optimizer if plain else f"{optimizer} ρ={rho:g}"
