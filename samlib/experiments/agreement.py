"""A chapter's live networks against the shipped study's runs of the same seed.

A network trained in float32 ends a few last bits apart under another CPU's kernels or thread count, and some
trainings carry that difference far: the Waterbirds stand-in's small CNN ends on another trajectory, with a
worst-group accuracy that moves by a tenth. So the image chapters take their tables and verdicts from the shipped
studies, train one seed live, print its raw digits in a cell that nbval does not compare, and check it here
against the study's run of the same seed: each metric within a stated tolerance, chosen from measurements under
several kernel paths to hold on any CPU, and tight enough that a broken optimizer fails it (CONTRIBUTING.md's
"Why the outputs hold on any CPU").

* :func:`compare_with_study`: live against shipped, metric by metric, one row per run;
* :func:`side_by_side`: that comparison as a table to read, one column per run;
* :func:`agreement_line`: the checked sentence a chapter prints.
"""
from __future__ import annotations

import pandas as pd

from .. import checks
from ..optim.registry import run_label

__all__ = ["KEYS", "compare_with_study", "side_by_side", "agreement_line"]

KEYS = ["optimizer", "rho", "seed"]  # what makes a live run and a study row the same run


def compare_with_study(live: pd.DataFrame, study: pd.DataFrame, tolerances: dict[str, float]) -> pd.DataFrame:
    """Each run of ``live`` (one row per run, with :data:`KEYS` and the metrics) against the row of ``study`` with
    the same optimizer, radius and seed. ``tolerances``: ``{metric: largest allowed |live - study|}``.

    Returns one row per live run, indexed by its label ('SAM ρ=0.05'), with columns (metric, 'this page'),
    (metric, 'study'), (metric, 'difference') for each metric, and ('all', 'agrees'): every difference within its
    tolerance. A live run that the study lacks, or that it holds twice, is an error."""
    if not isinstance(tolerances, dict) or not tolerances:
        raise ValueError(f"tolerances: expected a non-empty {{metric: tolerance}} dict, got {tolerances!r}")
    for metric, tolerance in tolerances.items():
        checks.real(f"tolerances[{metric!r}]", tolerance, low=0, low_open=True, hint="e.g. 0.01")
    for name, frame in (("live", live), ("study", study)):
        missing = [c for c in [*KEYS, *tolerances] if c not in frame]
        if missing:
            raise KeyError(f"{name} has no column(s) {missing}; it has {list(frame.columns)}")
    if study.duplicated(KEYS).any():
        raise ValueError("study holds a run twice (same optimizer, rho and seed): pass one seed set of one bed")
    shipped = study.set_index(KEYS)
    rows, labels = {}, []
    for run in live.itertuples(index=False):
        key = tuple(getattr(run, k) for k in KEYS)
        if key not in shipped.index:
            raise KeyError(f"the study has no run {dict(zip(KEYS, key))}: compare only the seeds and radii it ran")
        labels.append(run_label(key[0], key[1]))
        for metric in tolerances:
            mine, theirs = float(getattr(run, metric)), float(shipped.loc[key, metric])
            rows.setdefault((metric, "this page"), []).append(mine)
            rows.setdefault((metric, "study"), []).append(theirs)
            rows.setdefault((metric, "difference"), []).append(abs(mine - theirs))
    table = pd.DataFrame(rows, index=pd.Index(labels, name="run"))
    within = [table[(metric, "difference")] <= tolerance for metric, tolerance in tolerances.items()]
    table[("all", "agrees")] = pd.concat(within, axis=1).all(axis=1)
    return table


def side_by_side(comparison: pd.DataFrame) -> pd.DataFrame:
    """``comparison`` (:func:`compare_with_study`) to read: one column per run, and for each metric a row for this
    page, the study and their difference."""
    shown = comparison[[column for column in comparison.columns if column[0] != "all"]].T
    shown.index = pd.MultiIndex.from_tuples([(metric.replace("_", " "), kind) for metric, kind in shown.index],
                                            names=["metric", ""])
    return shown


def agreement_line(comparison: pd.DataFrame, tolerances: dict[str, float]) -> str:
    """The checked sentence of a chapter: whether every live run agrees with the study within ``tolerances``
    (the same dict that made ``comparison``), and, where one does not, which metric of which run is off. It
    reads the same on every CPU as long as the training does what it did when the study ran."""
    bounds = ", ".join(f"{metric.replace('_', ' ')} within {tolerance:g}" for metric, tolerance in tolerances.items())
    runs = ", ".join(comparison.index)
    if comparison[("all", "agrees")].all():
        return f"this page's {runs} agree with the shipped study's runs of the same seed ({bounds}): yes"
    off = [f"{label}: {metric.replace('_', ' ')} {row[(metric, 'this page')]:.4f} vs {row[(metric, 'study')]:.4f}"
           for label, row in comparison.iterrows() for metric, tolerance in tolerances.items()
           if not row[(metric, "difference")] <= tolerance]
    return f"this page's {runs} agree with the shipped study's runs of the same seed ({bounds}): NO ({'; '.join(off)})"
