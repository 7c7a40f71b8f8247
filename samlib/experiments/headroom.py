"""Headroom before comparison: can a test bed show a better-learned hard feature at all?

Before SGD and SAM are compared on the probe of a hard feature, four numbers say how much room the probe has:

* ``pixels``: a linear probe on the raw pixels, no network;
* ``random init`` (the **floor**): the probe on the untrained network's features;
* ``hard only`` (the **ceiling**): the probe on the same network trained on the hard feature alone (the halves
  drawn independently, the label that of the hard half), as the toy chapter's control does;
* ``SGD``: the probe after SGD on the redundant training data, where either half gives the label.

Where ceiling - floor is small (below :data:`MIN_GAP`), training cannot make the hard feature much more
readable than random features already make it, and no optimizer can show a gain. :func:`headroom_table` gives
the medians over seeds and the verdict.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["MIN_GAP", "STAGES", "headroom_table"]

MIN_GAP = 0.15  # the headroom threshold: ceiling - floor of the hard probe's accuracy, medians over seeds
STAGES = ("pixels", "random init", "hard only", "SGD")  # the labels of the rows headroom_table reads


def headroom_table(frame: pd.DataFrame, metric: str = "hard_probe", by: Sequence[str] = ("bed",)) -> pd.DataFrame:
    """One row per test bed (the ``by`` columns of ``frame``) from rows labelled by :data:`STAGES` (``label``
    column; any other rows are ignored): the median ``metric`` of each stage over its seeds, ``gap`` = ceiling
    - floor, ``SGD share`` = (SGD - floor) / gap (0: SGD learned nothing about the hard half, 1: all the
    ceiling allows), the seed count, ``ceiling fit`` (the median training accuracy of the hard-only runs, where
    ``frame`` has ``train_acc``) and ``headroom`` (gap >= :data:`MIN_GAP`)."""
    by = list(by)
    missing = [c for c in [*by, "label", "seed", metric] if c not in frame]
    if missing:
        raise ValueError(f"frame lacks the column(s) {missing}: pass rows with {[*by, 'label', 'seed', metric]}")
    rows = frame[frame.label.isin(STAGES)]
    absent = sorted(set(STAGES) - set(rows.label))
    if absent:
        raise ValueError(f"frame has no rows labelled {absent}: headroom needs all of {list(STAGES)}")
    medians = rows.pivot_table(index=by, columns="label", values=metric, aggfunc="median", sort=False)
    table = medians[list(STAGES)].copy()
    table["gap"] = table["hard only"] - table["random init"]
    table["SGD share"] = (table["SGD"] - table["random init"]) / table["gap"]
    hard_only = rows[rows.label == "hard only"]
    table["seeds"] = hard_only.groupby(by).seed.nunique()
    if "train_acc" in rows:
        table["ceiling fit"] = hard_only.groupby(by).train_acc.median()
    table["headroom"] = table["gap"] >= MIN_GAP
    return table

