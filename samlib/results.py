"""Tables over seeds, shared by every chapter: mean ± sd and median tables, and the book's one statistic with its
verdicts (:func:`paired_effect_of`, :func:`paired_comparison`, :func:`verdict`): the median paired effect with a
distribution-free interval, the paired wins and an exact sign test; :func:`paired_effect` reads it by group (the
toy's complexities).

Every function takes a frame with one row per run and the columns ``optimizer``, ``rho`` and ``seed``
(plus the metrics; ``label`` is added where missing, from :func:`samlib.optim.registry.run_label`).
Results are keyed by (optimizer, rho); labels are for display only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import checks
from .optim.registry import OPTIMIZERS, run_label

__all__ = ["mean_sd", "label_order", "run_row", "run_column", "seed_table", "median_table", "paired_effect",
           "LEVEL", "MIN_SEEDS", "VERDICTS", "sign_test", "median_interval", "PairedEffect", "paired_effect_of",
           "paired_comparison", "verdict", "describe"]


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """'0.720 ± 0.020', or the mean alone when the sd is undefined (one seed)."""
    return f"{mean:.{digits}f}" if pd.isna(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    if "label" in frame:
        return frame
    return frame.assign(label=[run_label(o, r) for o, r in zip(frame.optimizer, frame.rho)])


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise KeyError(f"no column(s) {missing} in the rows; they have {list(frame.columns)}")


def label_order(frame: pd.DataFrame) -> list[str]:
    """The distinct labels: references such as 'random init' first, then SGD, SAM, LSAM and the ablations,
    each by increasing rho."""
    runs = _with_labels(frame).drop_duplicates("label")
    rank = {opt: i + 1 for i, opt in enumerate(OPTIMIZERS)}
    return [r.label for r in sorted(runs.itertuples(), key=lambda r: (rank.get(r.optimizer, 0), r.rho))]


def _run_key(table_labels, optimizer: str, rho: float, where: str) -> str:
    label = run_label(optimizer, rho)
    if label not in table_labels:
        raise KeyError(f"no run ({optimizer!r}, rho={rho:g}) in the table's {where}: it has {list(table_labels)}")
    return label


def run_row(table: pd.DataFrame, optimizer: str, rho: float = 0.0) -> pd.Series:
    """The row of ``table`` for the run (``optimizer``, ``rho``), in a table whose rows are runs (the comparison
    tables): the caller names the run, never its display label."""
    return table.loc[_run_key(table.index, optimizer, rho, "rows")]


def run_column(table: pd.DataFrame, optimizer: str, rho: float = 0.0) -> pd.Series:
    """The column of ``table`` for the run (``optimizer``, ``rho``), in a table whose columns are runs (a per-seed
    pivot)."""
    return table[_run_key(table.columns, optimizer, rho, "columns")]


def seed_table(frame: pd.DataFrame, metrics: str | Sequence[str], *, across: str | None = None,
               digits: int = 3) -> pd.DataFrame:
    """'mean ± sd' over seeds (sample sd).

    Without ``across``: one row per run label (references first, then SGD, SAM, LSAM by rho), one column per
    metric, and the seed count. With ``across`` (e.g. ``"turns"``): one metric, one row per (optimizer, rho),
    one column per value of ``across``.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    _check_columns(frame, metrics + ([across] if across else []))
    frame = _with_labels(frame)
    if across is None:
        grouped = frame.groupby("label")
        order = label_order(frame)
        means, sds = grouped[metrics].mean(), grouped[metrics].std()
        table = pd.DataFrame({m: [mean_sd(means.at[k, m], sds.at[k, m], digits) for k in order] for m in metrics},
                             index=order)
        table["seeds"] = [int(grouped.size()[k]) for k in order]
        return table.rename_axis("optimizer")
    if len(metrics) != 1:
        raise ValueError(f"seed_table across {across!r} takes one metric, got {metrics}")
    stats = frame.groupby(["optimizer", "rho", across])[metrics[0]].agg(["mean", "std"]).reset_index()
    stats["cell"] = [mean_sd(m, s, digits) for m, s in zip(stats["mean"], stats["std"])]
    return _across_table(stats, across)


def _across_table(stats: pd.DataFrame, across: str) -> pd.DataFrame:
    """The ``cell`` column of ``stats`` as one row per (optimizer, rho), in OPTIMIZERS order, one column per
    value of ``across``."""
    table = stats.pivot(index=["optimizer", "rho"], columns=across, values="cell")
    rank = {opt: i for i, opt in enumerate(OPTIMIZERS)}
    table = table.sort_index(key=lambda level: level.map(rank) if level.name == "optimizer" else level)
    table.columns = [f"{v:g} {across}" for v in table.columns]
    return table


def median_table(frame: pd.DataFrame, metric: str, across: str, digits: int = 3) -> pd.DataFrame:
    """'median [q25, q75]' of ``metric`` over seeds: one row per (optimizer, rho), one column per value of
    ``across`` (e.g. ``"turns"``)."""
    _check_columns(frame, [metric, across, "optimizer", "rho"])
    grouped = frame.groupby(["optimizer", "rho", across])[metric]
    stats = pd.concat({"median": grouped.median(), "q25": grouped.quantile(0.25), "q75": grouped.quantile(0.75)},
                      axis=1).reset_index()
    stats["cell"] = [f"{m:.{digits}f} [{a:.{digits}f}, {b:.{digits}f}]"
                     for m, a, b in zip(stats["median"], stats["q25"], stats["q75"])]
    return _across_table(stats, across)


def _paired(frame: pd.DataFrame, optimizer: str, rho: float, value: str, pair_on: str, reference: str):
    """The (reference, optimizer at rho) values of ``frame``, aligned on ``pair_on``: two arrays (n,)."""
    ref = frame[frame.optimizer == reference].set_index(pair_on)[value]
    other = frame[(frame.optimizer == optimizer) & (frame.rho == rho)].set_index(pair_on)[value]
    if ref.empty or other.empty:
        raise ValueError(f"paired_effect needs {reference} runs and {optimizer} runs at rho={rho:g}; the rows hold "
                         f"{sorted(set(zip(frame.optimizer, frame.rho)))}")
    if ref.index.has_duplicates or other.index.has_duplicates or set(ref.index) != set(other.index):
        raise ValueError(f"{optimizer} at rho={rho:g} and {reference} must have one run per {pair_on}, the same "
                         f"{pair_on}s: got {sorted(other.index)} and {sorted(ref.index)}")
    return ref.sort_index().to_numpy(float), other[ref.sort_index().index].to_numpy(float)


# --- The book's one statistic and its verdicts -----------------------------------------------------------------

LEVEL = 0.95  # the confidence of every interval the book prints
MIN_SEEDS = 10  # the fewest held-out seeds on which a verdict other than "too few seeds" is given
VERDICTS = ("reproduced", "small but consistent", "not detected", "opposite", "too few seeds")


def _binomial_tail(n: int, k: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n if k >= 0 else 0.0


def sign_test(wins: int, losses: int) -> float:
    """The exact two-sided sign-test p-value of ``wins`` against ``losses`` (ties already dropped)."""
    wins, losses = checks.non_negative_int("wins", wins), checks.non_negative_int("losses", losses)
    n = wins + losses
    return 1.0 if n == 0 else min(1.0, 2 * _binomial_tail(n, min(wins, losses)))


def median_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """A distribution-free interval for the median of ``values`` (the sign test inverted): the order statistics
    (x_(k), x_(n+1-k)) with the largest k whose coverage 1 - 2 P(Binomial(n, 1/2) <= k - 1) is at least ``level``.
    Returns (low, high, coverage); (NaN, NaN, NaN) when no k reaches ``level``, as for five values or fewer at 95%
    (even five wins in five have a sign-test p of 0.0625)."""
    x = np.sort(np.asarray(values, dtype=float))
    level = checks.real("level", level, low=0, high=1, low_open=True, high_open=True)
    if x.ndim != 1 or not len(x) or np.isnan(x).any():
        raise ValueError(f"values: expected a 1-D array of numbers that are not NaN (finite, or +inf for a ratio over "
                         f"a zero baseline), got {values!r}")
    n, best = len(x), None
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * _binomial_tail(n, k - 1)
        if coverage >= level:
            best = (float(x[k - 1]), float(x[n - k]), coverage)
    return best if best is not None else (math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class PairedEffect:
    """Paired runs compared (same seed, same data): the per-pair effect is ``run - baseline`` (``scale``
    "difference") or ``run / baseline`` ("ratio"), and ``better`` says which way a metric improves.

    ``median`` is the median per-pair effect, ``low``/``high`` its distribution-free ``coverage`` interval
    (:func:`median_interval`), ``wins``/``losses``/``ties`` the pairs in which the run is better / worse / equal,
    ``p_value`` the exact sign test, ``room`` the bed's room (ceiling - SGD) where known and ``share`` = median /
    room. ``too_few``: the seeds are too few for the interval to exclude "no effect" at all."""

    n: int
    median: float
    low: float
    high: float
    coverage: float
    wins: int
    losses: int
    ties: int
    p_value: float
    scale: str = "difference"
    better: str = "higher"
    room: float = math.nan
    share: float = math.nan

    @property
    def null(self) -> float:
        """The value of no effect: 0 for a difference, 1 for a ratio."""
        return 0.0 if self.scale == "difference" else 1.0

    @property
    def too_few(self) -> bool:
        return math.isnan(self.low)

    def toward_better(self, value: float) -> float:
        """``value``'s distance from no effect, positive on the better side."""
        return (value - self.null) * (1 if self.better == "higher" else -1)

    @property
    def best_allowed(self) -> float:
        """The largest effect in the better direction that the interval allows (its better end)."""
        return self.high if self.better == "higher" else self.low


def _ratios(run: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """run / baseline per pair; where the baseline is 0 the ratio is 1 if the run is 0 too, and +inf otherwise (the
    run is worse by any factor), so that the ratios keep the pairs' order around 1 that the sign test reads."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(baseline > 0, run / np.where(baseline > 0, baseline, 1.0), np.where(run > 0, np.inf, 1.0))


def paired_effect_of(run, baseline, *, scale: str = "difference", better: str = "higher", room: float | None = None,
                     level: float = LEVEL) -> PairedEffect:
    """:class:`PairedEffect` of ``run`` against ``baseline``, two arrays (n,) of one metric paired by position."""
    scale = checks.choice("scale", scale, ("difference", "ratio"))
    better = checks.choice("better", better, ("higher", "lower"))
    run, baseline = np.asarray(run, dtype=float), np.asarray(baseline, dtype=float)
    if run.shape != baseline.shape or run.ndim != 1 or not len(run):
        raise ValueError(f"run and baseline: expected two 1-D arrays of the same length (one value per pair), got "
                         f"shapes {run.shape} and {baseline.shape}")
    if scale == "ratio" and not ((baseline >= 0).all() and (run >= 0).all()):
        raise ValueError("scale='ratio' needs a run and a baseline of at least 0 in every pair (an error, a loss); "
                         "use scale='difference'")
    effects = run - baseline if scale == "difference" else _ratios(run, baseline)
    sign = 1 if better == "higher" else -1
    gains = sign * (run - baseline)
    wins, losses = int((gains > 0).sum()), int((gains < 0).sum())
    low, high, coverage = median_interval(effects, level)
    median = float(np.median(effects))
    if room is not None:
        room = checks.real("room", room, low=0, low_open=True, hint="the bed's ceiling minus SGD's median")
    return PairedEffect(len(run), median, low, high, coverage, wins, losses, len(run) - wins - losses,
                        sign_test(wins, losses), scale, better, math.nan if room is None else room,
                        math.nan if room is None or scale != "difference" else median * sign / room)


def paired_comparison(frame: pd.DataFrame, optimizer: str, rho: float, metric: str, *, reference: str = "SGD",
                      pair_on: str = "seed", **options) -> PairedEffect:
    """:func:`paired_effect_of` for ``optimizer`` at ``rho`` against its ``reference`` runs of the same
    ``pair_on`` in ``frame`` (one row per run). ``options``: ``scale``, ``better``, ``room``, ``level``."""
    _check_columns(frame, [metric, pair_on, "optimizer", "rho"])
    ref, other = _paired(frame, optimizer, rho, metric, pair_on, reference)
    return paired_effect_of(other, ref, **options)


def paired_effect(frame: pd.DataFrame, optimizer: str, rho: float, value: str, *, by: Sequence[str] = ("turns",),
                  pair_on: str = "seed", reference: str = "SGD", meaningful: float = 0.5) -> pd.DataFrame:
    """The one statistic by group of ``by`` (the toy's complexities) for an error (lower is better): per group, the two
    medians, the median paired ratio ``optimizer`` at ``rho`` over its ``reference`` twin (same ``pair_on``) with its
    distribution-free interval (``ratio low``, ``ratio high``), the wins (the optimizer below its twin), ties and
    pairs, the sign test's ``p`` and the :func:`verdict` against ``meaningful``, a ratio. One row per group."""
    by = list(by)
    _check_columns(frame, [value, pair_on, *by])
    meaningful = checks.real("meaningful", meaningful, low=0, low_open=True, hint="a ratio below 1, e.g. 0.5")
    rows = []
    for key, group in frame.groupby(by) if by else [((), frame)]:
        ref, other = _paired(group, optimizer, rho, value, pair_on, reference)
        effect = paired_effect_of(other, ref, scale="ratio", better="lower")
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     f"{reference} median": float(np.median(ref)), f"{optimizer} median": float(np.median(other)),
                     "median ratio": effect.median, "ratio low": effect.low, "ratio high": effect.high,
                     "wins": effect.wins, "ties": effect.ties, "pairs": effect.n, "p": effect.p_value,
                     "verdict": verdict(effect, meaningful)})
    return pd.DataFrame(rows).set_index(by) if by else pd.DataFrame(rows)


def verdict(effect: PairedEffect, meaningful: float, min_seeds: int = MIN_SEEDS) -> str:
    """The book's verdict on ``effect`` (one of :data:`VERDICTS`), fixed before any held-out seed is read:

    * "too few seeds": fewer than ``min_seeds`` pairs (the held-out sets need ten);
    * "reproduced": the interval lies on the better side of no effect and the median reaches ``meaningful``, an
      effect in the metric's own units and direction (e.g. a quarter of a bed's room, or a ratio of 0.5);
    * "small but consistent": the interval lies on the better side, the median short of ``meaningful``;
    * "opposite": the interval lies on the worse side;
    * "not detected": the interval holds no effect (its better end, :attr:`PairedEffect.best_allowed`, is the
      largest effect the data allow)."""
    min_seeds = checks.positive_int("min_seeds", min_seeds)
    meaningful = checks.real("meaningful", meaningful, hint="an effect in the metric's units, e.g. 0.04 or 0.5")
    if effect.n < min_seeds or effect.too_few:
        return "too few seeds"
    if min(effect.toward_better(effect.low), effect.toward_better(effect.high)) > 0:
        return "reproduced" if effect.toward_better(effect.median) >= effect.toward_better(meaningful) else \
            "small but consistent"
    if max(effect.toward_better(effect.low), effect.toward_better(effect.high)) < 0:
        return "opposite"
    return "not detected"


def describe(effect: PairedEffect, run: str = "the run", baseline: str = "SGD", digits: int = 3,
             unit: str = "seeds") -> str:
    """One line a chapter can print: the median effect, its interval, the wins, the sign test and the share of
    the room, e.g. 'median +0.013 [+0.003, +0.021] (95% interval), SAM better than SGD on 9 of 10 seeds, sign
    test p = 0.021, 0.08 of the room'. ``unit`` names what was paired: seeds, or pairs of seed and cell."""
    signed = "+" if effect.scale == "difference" else ""
    interval = ("no 95% interval with so few seeds" if effect.too_few else
                f"[{effect.low:{signed}.{digits}f}, {effect.high:{signed}.{digits}f}] "
                f"({effect.coverage:.0%} interval)")
    text = (f"median {effect.median:{signed}.{digits}f} {interval}, {run} better than {baseline} on {effect.wins} "
            f"of {effect.n} {unit}, sign test p = {effect.p_value:.2g}")
    return text + ("" if math.isnan(effect.share) else f", {effect.share:.2f} of the room")
