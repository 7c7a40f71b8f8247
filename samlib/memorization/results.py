"""Reading a grid of noise-memorization runs: SAM - SGD differences per cell, and on how many seeds SAM is lower.

Every function takes the table of :meth:`samlib.memorization.train.Result.table` (one row per run).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .data import DataSetting

__all__ = ["signal_to_noise", "compare_optimizers", "first_below"]

CELL = ["n", "mu_norm"]


def signal_to_noise(n, mu_norm, setting: DataSetting):
    """The quantity that separates benign from harmful overfitting for SGD: n‖μ‖⁴ / (d σ_p⁴)."""
    return n * mu_norm**4 / (setting.d * setting.sigma_p**4)


def compare_optimizers(table: pd.DataFrame, metric: str = "test_error") -> pd.DataFrame:
    """One row per (n, ‖μ‖): SGD's and SAM's mean ``metric`` over seeds, the mean paired difference SAM - SGD
    (same data and initialization), the paired ``wins`` (SAM lower) and ``losses`` (SAM higher) over the ``seeds``,
    and ``every_seed``: "SAM lower" or "SGD lower" where one is lower on every seed, else "mixed" (a tie counts as
    neither). A cell's seeds are too few for the book's statistic; :mod:`samlib.memorization.study` pools cells.

    The table must hold one SAM radius; filter it first when it holds several.
    """
    if table.loc[table.optimizer == "SAM", "tau"].nunique() > 1:
        raise ValueError("the table holds several SAM radii: select one, e.g. table[table.tau.isin([0, 0.5])]")
    paired = table.pivot_table(index=[*CELL, "seed"], columns="optimizer", values=metric)
    if paired.isna().any().any() or set(paired.columns) != {"SGD", "SAM"}:
        raise ValueError("every (n, mu_norm, seed) needs exactly one SGD run and one SAM run")
    paired["difference"] = paired["SAM"] - paired["SGD"]
    paired["win"], paired["loss"] = paired.difference < 0, paired.difference > 0
    cells = paired.groupby(level=CELL).agg(SGD=("SGD", "mean"), SAM=("SAM", "mean"), difference=("difference", "mean"),
                                           wins=("win", "sum"), losses=("loss", "sum"), seeds=("win", "size"))
    cells["every_seed"] = np.where(cells.wins == cells.seeds, "SAM lower",
                                   np.where(cells.losses == cells.seeds, "SGD lower", "mixed"))
    return cells


def first_below(loss: torch.Tensor, threshold: float) -> torch.Tensor:
    """Index of the first logged epoch whose training loss is below ``threshold``, per run, or -1:
    loss (T, R) -> (R,) long. On an every-epoch log this is where the stopping rule stops."""
    below = loss < threshold
    first = below.to(torch.long).argmax(dim=0)
    return torch.where(below.any(dim=0), first, -1)
