"""Results at a glance: each claim of the papers that this book tests, what the book measured, and the verdict of
its one statistic (:func:`samlib.results.paired_effect_of`, :func:`samlib.results.verdict`), computed from the
shipped studies, never typed.

* :data:`CLAIMS`: the claims in reading order: the paper's words, where the paper shows it, the runs that test it
  (the radius chosen on the tuning seeds), the metric and its direction, what counts as a meaningful effect;
* :func:`measure`: one claim on one seed set, as a :class:`samlib.results.PairedEffect`, its verdict and how far
  the run fits its training data;
* :func:`glance_table`: one row per claim, the held-out seeds' verdict with the tuning seeds' effect beside it.

"Meaningful" is fixed here, before any held-out seed is read, and it is ours, since the papers' own numbers are
not known to us: for a probe error, half of SGD's (LSAM "halves" it); for the phantom head, a tenth more relative
weight on the hard feature; on an image bed, a quarter of the room between SGD and the bed's ceiling; for Chen et
al.'s claim, a quarter of SGD's clean test error where their theory says SGD memorizes noise.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from . import results
from .protocol import select

__all__ = ["Claim", "CLAIMS", "LABELS", "SEED_SETS", "meaningful_effect", "measure", "glance_table", "effects_frame"]

SEED_SETS = ("tuning", "held out")


@dataclass(frozen=True)
class Claim:
    """One claim: ``pairs(seed_set)`` gives the run's and its baseline's values, paired, and the run's median final
    training error (None where the claim was not run on that seed set); ``meaningful`` is the meaningful effect in
    the metric's units, or a function that computes it from the data (an image bed's share of its room)."""

    key: str
    paper: str
    where: str
    chapter: str
    run: str
    pairs: Callable[[str], tuple[np.ndarray, np.ndarray, float] | None]
    meaningful: float | Callable[[], float]
    scale: str = "difference"
    better: str = "higher"
    baseline: str = "SGD"
    unit: str = "seeds"


# --- the toy (samlib.toy.study) ---------------------------------------------------------------------------------

@cache
def _toy() -> pd.DataFrame:
    from .toy import study

    frame = study.load_study()
    return frame.assign(seed_set=frame.seed_set.replace({"held-out": "held out"}))


def _toy_radius(lever: str, optimizer: str) -> float:
    """The radius with the lowest median hard-probe error on the tuning seeds, averaged over the complexities
    (:func:`samlib.toy.study.best_radii`'s rule)."""
    rows = select(_toy(), lever=lever, seed_set="tuning", optimizer=optimizer)
    return float(rows.groupby(["rho", "turns"]).hard_error.median().groupby("rho").mean().idxmin())


def _toy_pairs(lever: str, optimizer: str, metric: str = "hard_error", baseline: str | None = None):
    """Pairs of one toy lever over every (seed, complexity): ``optimizer`` at its tuned radius against SGD's run
    of the same seed and complexity (or, with ``baseline``, against another column of the same run)."""
    def pairs(seed_set: str):
        rows = select(_toy(), lever=lever, seed_set=seed_set)
        mine = select(rows, optimizer=optimizer, rho=_toy_radius(lever, optimizer))
        mine = mine.set_index(["seed", "turns"]).sort_index()
        if baseline is not None:
            return mine[metric].to_numpy(), mine[baseline].to_numpy(), float(mine.train_error.median())
        sgd = select(rows, optimizer="SGD").set_index(["seed", "turns"])[metric]
        return mine[metric].to_numpy(), sgd[mine.index].to_numpy(), float(mine.train_error.median())
    return pairs


# --- the toy in the theory's regimes (samlib.toy.regimes) ------------------------------------------------------

@cache
def _regimes() -> pd.DataFrame:
    from .toy import regimes

    return regimes.load_regimes()


SMALL_INIT = ("init 0.3", "init 0.1", "init 0.03")
M_SAM = ("ascent per 10", "ascent per 2")


def _regime_pairs(names: str | tuple[str, ...], optimizer: str, read: str = "final"):
    """Pairs of a toy regime over every (seed, complexity) (:func:`samlib.toy.regimes.paired`): ``optimizer`` at
    its radius against SGD at ``read``; of several regimes ``names``, the one chosen on the tuning seeds
    (:func:`samlib.toy.regimes.best_regime`). The tuning seeds are read at the end only (None at another read)."""
    def pairs(seed_set: str):
        from .toy import regimes

        frame = _regimes()
        name = names if isinstance(names, str) else regimes.best_regime(frame, names, optimizer)
        return regimes.paired(frame, name, optimizer, read, "held-out" if seed_set == "held out" else "tuning")
    return pairs


# --- the image beds (samlib.experiments.testbeds) ----------------------------------------------------------------

@cache
def _beds() -> pd.DataFrame:
    from .experiments import testbeds

    return testbeds.load_study()


def _bed_rows(bed: str) -> pd.DataFrame:
    return select(_beds(), bed=bed, lever="bed")


def _bed_radius(bed: str, optimizer: str) -> float:
    from .experiments import testbeds

    return testbeds.best_radii(select(_bed_rows(bed), seed_set="tuning"))[optimizer]


def _bed_pairs(bed: str, optimizer: str, metric: str = "hard_probe"):
    def pairs(seed_set: str):
        rows = select(_bed_rows(bed), seed_set=seed_set)
        mine = select(rows, optimizer=optimizer, rho=_bed_radius(bed, optimizer)).set_index("seed")
        sgd = select(rows, optimizer="SGD").set_index("seed")[metric]
        mine = mine.sort_index()
        return mine[metric].to_numpy(), sgd[mine.index].to_numpy(), float(1 - mine.train_acc.median())
    return pairs


def _lever_pairs(chapter: str, lever: str, optimizer: str, metric: str):
    """Pairs of a lever of the first beds (:mod:`samlib.experiments.levers`), which ran on one seed set only: its
    seeds count as tuning seeds, and it has no held-out ones (``None``)."""
    def pairs(seed_set: str):
        if seed_set != "tuning":
            return None
        from .experiments.levers import load_levers

        rows = select(load_levers(chapter), lever=lever)
        mine = select(rows, optimizer=optimizer).set_index("seed").sort_index()
        sgd = select(rows, optimizer="SGD").set_index("seed")[metric]
        return mine[metric].to_numpy(), sgd[mine.index].to_numpy(), math.nan
    return pairs


def _lever_room(chapter: str, lever: str, metric: str = "worst_group_acc") -> float:
    """A quarter of the room above SGD's median worst-group accuracy in a lever of the first beds."""
    from .experiments.levers import load_levers
    from .experiments.testbeds import ROOM_SHARE

    return ROOM_SHARE * (1.0 - select(load_levers(chapter), lever=lever, optimizer="SGD")[metric].median())


def _replication_pairs(name: str, optimizer: str, metric: str, tuning):
    """A claim re-run on seeds nobody had used (:mod:`samlib.experiments.replication`): its held-out pairs are the
    replication's, its tuning pairs those of the seeds on which its radius was chosen (``tuning``)."""
    def pairs(seed_set: str):
        if seed_set == "tuning":
            return tuning(seed_set)
        from .experiments import replication

        return replication.paired(name, optimizer, metric)
    return pairs


def _lr_scaling_pairs(seed_set: str):
    """LSAM's phantom head on the cluttered bed (:mod:`samlib.experiments.lr_scaling`): per network, its median
    learning-rate factor along the hard probe's direction against the easy probe's. Its held-out pairs are the 20
    networks of seeds no other study used (the measurement's ``new`` seeds)."""
    from .experiments import lr_scaling

    hard, easy = lr_scaling.paired(lr_scaling.load_lr_scaling(), "LSAM", "new" if seed_set == "held out" else "tuning")
    return hard, easy, math.nan


def _room(bed: str, metric: str = "hard_probe") -> float:
    from .experiments import testbeds

    return testbeds.meaningful_gain(_beds(), bed, metric)


# --- noise memorization (samlib.memorization.study) ------------------------------------------------------------

@cache
def _memorization() -> pd.DataFrame:
    from .memorization import study

    return study.load_study()


def _chen_pairs(seed_set: str):
    from .memorization import study

    run, sgd = study.claim_pairs(_memorization(), seed_set)
    return run, sgd, math.nan


def _chen_meaningful() -> float:
    from .memorization import study

    return study.meaningful_gain(_memorization())


CLUTTERED, VARIED, STAND_IN = "cluttered CIFAR-MNIST", "varied-object Waterbirds", "Waterbirds stand-in"
MORE_DATA = "4,000 training images, 5 seeds"
NEW_CLUTTERED, NEW_BIRDS = "cluttered CIFAR-MNIST", "Waterbirds, 4,000 images"  # samlib.experiments.replication
CLAIMS = (
    Claim("toy_lsam", "LSAM learns the toy's hard feature better than SGD", "Fig. 2A", "toy", "LSAM",
          _toy_pairs("baseline", "LSAM"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("toy_sam", "SAM (every layer) learns it better too", "Fig. 2A", "toy", "SAM",
          _toy_pairs("sam", "SAM"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("toy_open_window", "... by much, where the head cannot grow (our construction, the open window)",
          "—", "toy", "LSAM", _toy_pairs("open_window", "LSAM"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("phantom_head", "the phantom head weighs the hard feature more than the real head", "Fig. 2B", "toy",
          "phantom head", _toy_pairs("baseline", "LSAM", "phantom_ratio", baseline="real_ratio"), 1.1, "ratio",
          "higher", baseline="real head", unit="runs"),
    Claim("small_init_lsam", "a small initialisation lets SAM's effect show (alpha chosen on the tuning seeds)",
          "later work", "toy_regimes", "LSAM", _regime_pairs(SMALL_INIT, "LSAM"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("small_init_sam", "... for SAM on every layer", "later work", "toy_regimes", "SAM",
          _regime_pairs(SMALL_INIT, "SAM"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("equal_fit_lsam", "LSAM's features are better when both networks first fit their data", "the paper's "
          "comparison", "toy_regimes", "LSAM", _regime_pairs("init 1", "LSAM", "fit"), 0.5, "ratio", "lower",
          unit="pairs"),
    Claim("equal_fit_sam", "... SAM's too", "the paper's comparison", "toy_regimes", "SAM",
          _regime_pairs("init 1", "SAM", "fit"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("m_sam_lsam", "ascents on a few examples (m-SAM) strengthen the effect (m chosen on the tuning seeds)",
          "later work", "toy_regimes", "LSAM", _regime_pairs(M_SAM, "LSAM"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("m_sam_sam", "... for SAM on every layer", "later work", "toy_regimes", "SAM", _regime_pairs(M_SAM, "SAM"),
          0.5, "ratio", "lower", unit="pairs"),
    Claim("m_sam_fit_lsam", "... and LSAM's, read when both networks first fit their data", "the paper's "
          "comparison", "toy_regimes", "LSAM", _regime_pairs(M_SAM, "LSAM", "fit"), 0.5, "ratio", "lower",
          unit="pairs"),
    Claim("importance_weighting", "importance weighting alone helps the hard feature", "Fig. 3", "mechanism",
          "IW-only", _toy_pairs("ablations", "IW-only"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("lr_scaling", "learning-rate scaling alone helps it", "Fig. 4", "mechanism", "LR-only",
          _toy_pairs("ablations", "LR-only"), 0.5, "ratio", "lower", unit="pairs"),
    Claim("cifar_mnist_sam", "SAM's features read the hard half of CIFAR-MNIST better", "Table 1", "cifar_mnist",
          "SAM", _bed_pairs(CLUTTERED, "SAM"), lambda: _room(CLUTTERED)),
    Claim("cifar_mnist_lsam", "LSAM's features read it better", "Table 1", "cifar_mnist", "LSAM",
          _bed_pairs(CLUTTERED, "LSAM"), lambda: _room(CLUTTERED)),
    Claim("cifar_mnist_sam_new", "... SAM, on 20 seeds nobody had used", "Table 1", "cifar_mnist", "SAM",
          _replication_pairs(NEW_CLUTTERED, "SAM", "hard_probe", _bed_pairs(CLUTTERED, "SAM")),
          lambda: _room(CLUTTERED)),
    Claim("cifar_mnist_lsam_new", "... LSAM, on 20 seeds nobody had used", "Table 1", "cifar_mnist", "LSAM",
          _replication_pairs(NEW_CLUTTERED, "LSAM", "hard_probe", _bed_pairs(CLUTTERED, "LSAM")),
          lambda: _room(CLUTTERED)),
    Claim("lr_scaling_real", "the phantom head slows the easy feature's learning more than the hard one's, on "
          "real images", "—", "cifar_mnist", "hard direction", _lr_scaling_pairs, 1.1, "ratio", "higher",
          baseline="easy direction", unit="networks"),
    Claim("waterbirds_sam", "SAM's features read the Waterbirds object (the core feature) better", "Table 1",
          "waterbirds", "SAM", _bed_pairs(VARIED, "SAM"), lambda: _room(VARIED)),
    Claim("waterbirds_lsam", "LSAM's features read it better", "Table 1", "waterbirds", "LSAM",
          _bed_pairs(VARIED, "LSAM"), lambda: _room(VARIED)),
    Claim("worst_group_sam", "SAM raises Waterbirds' worst-group accuracy", "—", "waterbirds", "SAM",
          _bed_pairs(STAND_IN, "SAM", "worst_group_acc"), lambda: _room(STAND_IN, "worst_group_acc")),
    Claim("worst_group_more_data", "... with 4,000 training images (radius of 5 seeds, 10 new seeds)", "—",
          "waterbirds", "SAM",
          _replication_pairs(NEW_BIRDS, "SAM", "worst_group_acc",
                             _lever_pairs("waterbirds", MORE_DATA, "SAM", "worst_group_acc")),
          lambda: _lever_room("waterbirds", MORE_DATA)),
    Claim("core_more_data", "... and SAM's features read the object better there", "Table 1", "waterbirds", "SAM",
          _replication_pairs(NEW_BIRDS, "SAM", "hard_probe", _lever_pairs("waterbirds", MORE_DATA, "SAM",
                                                                          "core_probe")),
          lambda: _lever_room("waterbirds", MORE_DATA, "core_probe")),
    Claim("noise_memorization", "SAM generalizes where SGD memorizes noise", "Chen et al.'s theorems",
          "noise_memorization", "SAM", _chen_pairs, _chen_meaningful, better="lower", unit="pairs"),
)


LABELS = {"toy_lsam": "toy: LSAM", "toy_sam": "toy: SAM", "toy_open_window": "toy: LSAM, open window",
          "phantom_head": "toy: phantom head",
          "small_init_lsam": "toy, small initialisation: LSAM", "small_init_sam": "toy, small initialisation: SAM",
          "equal_fit_lsam": "toy, at first fit: LSAM", "equal_fit_sam": "toy, at first fit: SAM",
          "m_sam_lsam": "toy, m-SAM: LSAM", "m_sam_sam": "toy, m-SAM: SAM", "m_sam_fit_lsam": "... at first fit: LSAM",
          "importance_weighting": "toy: IW-only", "lr_scaling": "toy: LR-only",
          "cifar_mnist_sam": "MNIST over cluttered FMNIST: SAM",
          "cifar_mnist_lsam": "MNIST over cluttered FMNIST: LSAM",
          "waterbirds_sam": "varied-object Waterbirds: SAM", "waterbirds_lsam": "varied-object Waterbirds: LSAM",
          "cifar_mnist_sam_new": "... 20 new seeds: SAM", "cifar_mnist_lsam_new": "... 20 new seeds: LSAM",
          "lr_scaling_real": "MNIST over cluttered FMNIST: LR scaling",
          "worst_group_sam": "Waterbirds stand-in, worst group: SAM",
          "worst_group_more_data": "... 4,000 images, 10 new seeds", "core_more_data": "... its core probe",
          "noise_memorization": "Chen et al.: noise memorization"}
"""A short name of each claim, for the table's first column and the figure's rows."""


def meaningful_effect(claim: Claim) -> float:
    """What counts as a meaningful effect for ``claim``, in its metric's units (computed where it depends on the
    data)."""
    return claim.meaningful() if callable(claim.meaningful) else claim.meaningful


def measure(claim: Claim, seed_set: str = "held out") -> tuple[results.PairedEffect | None, str, float]:
    """``claim`` on ``seed_set``: its :class:`~samlib.results.PairedEffect` (None where the claim was not run on that
    seed set), its verdict and the run's median final training error."""
    if seed_set not in SEED_SETS:
        raise ValueError(f"seed_set: expected one of {SEED_SETS}, got {seed_set!r}")
    pairs = claim.pairs(seed_set)
    if pairs is None:
        return None, "too few seeds", math.nan
    run, baseline, train_error = pairs
    effect = results.paired_effect_of(run, baseline, scale=claim.scale, better=claim.better)
    return effect, results.verdict(effect, meaningful_effect(claim)), train_error


def _effect_text(effect: results.PairedEffect | None) -> str:
    if effect is None:
        return "not run"
    name = "median difference" if effect.scale == "difference" else "median ratio"
    signed = "+" if effect.scale == "difference" else ""
    interval = "" if effect.too_few else f" [{effect.low:{signed}.3f}, {effect.high:{signed}.3f}]"
    return f"{name} {effect.median:{signed}.3f}{interval}"


def glance_table() -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS`: the held-out seeds' effect with its interval, the wins, the sign test
    and the verdict, the tuning seeds' effect, the run's median training error and what "meaningful" was."""
    rows = []
    for claim in CLAIMS:
        held, verdict, train_error = measure(claim, "held out")
        tuning, _, _ = measure(claim, "tuning")
        meaningful = meaningful_effect(claim)
        rows.append({
            "claim": LABELS[claim.key],
            "paper's claim": f"{claim.paper} ({claim.where})" if claim.where != "—" else claim.paper,
            "held-out seeds": "not run" if held is None else
                              f"{_effect_text(held)}; {claim.run} better on {held.wins} of {held.n} {claim.unit}, "
                              f"p = {held.p_value:.2g}",
            "verdict": verdict,
            "tuning seeds": "not read" if tuning is None else f"{_effect_text(tuning)}; {tuning.wins} of {tuning.n}",
            "meaningful": f"{'ratio' if claim.scale == 'ratio' else 'difference'} "
                          f"{'≤' if claim.better == 'lower' else '≥'} {_signed(meaningful, claim)}",
            "train error": "–" if math.isnan(train_error) else f"{train_error:.3f}",
            "chapter": claim.chapter,
        })
    return pd.DataFrame(rows, index=pd.Index([c.key for c in CLAIMS], name="claim"))


def _signed(value: float, claim: Claim) -> str:
    return f"{value:+.3f}" if claim.scale == "difference" else f"{value:.2f}"


def effects_frame() -> pd.DataFrame:
    """Every claim on both seed sets, in units of its meaningful effect (0: none, 1: meaningful, negative: the
    wrong way): one row per (claim, seed set) with the median and the interval's ends (NaN where the seeds are too
    few for an interval), for the glance figure."""
    rows = []
    for claim in CLAIMS:
        for seed_set in SEED_SETS:
            effect, verdict, _ = measure(claim, seed_set)
            if effect is None:
                continue
            unit = effect.toward_better(meaningful_effect(claim))
            ends = sorted(effect.toward_better(v) / unit for v in (effect.low, effect.high))
            rows.append({"claim": claim.key, "seed_set": seed_set, "median": effect.toward_better(effect.median) / unit,
                         "low": ends[0], "high": ends[1], "n": effect.n, "verdict": verdict})
    return pd.DataFrame(rows)
