"""The noise-memorization chapter's seed study: the book-scale map on held-out seeds, precomputed.

The chapter's map trains every cell on three seeds, the ones its settings were read from. This study trains the
same map (:data:`~samlib.memorization.presets.BOOK`, SGD and SAM at its radius) on those **tuning** seeds and on
ten **held-out** seeds that nothing in the chapter was chosen on, and ships the rows with samlib, so that the claim
of Chen et al. (2023) gets the book's one statistic (:func:`samlib.results.paired_effect_of`) and a verdict.

    python -m samlib.memorization.study run

writes ``study_data/map.csv`` beside this module, atomically (about two minutes on 2 CPU threads).

**The claim tested** (:func:`claim_pairs`): where the theory says SGD overfits harmfully, n‖μ‖⁴ / (d σ_p⁴) below 1
(:data:`HARMFUL_BELOW`), SAM's clean-label test error is lower than SGD's on the same data and initialization. The
region is fixed by the theory, not by the data. A meaningful effect (:func:`meaningful_gain`) is a quarter of SGD's
median test error in that region on the tuning seeds: the room down to an error of 0, in the book's share.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ..protocol import ShippedRows, every_row
from .data import grid_runs
from .presets import BOOK
from .results import signal_to_noise
from .train import train_table

__all__ = ["TUNING_SEEDS", "HELD_OUT_SEEDS", "SEED_SETS", "HARMFUL_BELOW", "ROOM_SHARE", "run_study", "ROWS",
           "load_study", "claim_pairs", "meaningful_gain", "main"]

TUNING_SEEDS = BOOK.seeds  # the chapter's map: its settings were read from these
HELD_OUT_SEEDS = tuple(range(100, 110))  # first read after the claim, its region and its meaningful gain were fixed
SEED_SETS = {"tuning": TUNING_SEEDS, "held out": HELD_OUT_SEEDS}
HARMFUL_BELOW = 1.0  # n‖μ‖⁴ / (d σ_p⁴) below this: the theory's harmful side for SGD (up to constants)
ROOM_SHARE = 0.25  # a meaningful effect: this share of SGD's median error in the region (the image beds' share)


def run_study(seed_sets: dict[str, tuple[int, ...]] | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Train the book's map (every n and ‖μ‖ of :data:`~samlib.memorization.presets.BOOK`, SGD and SAM at its
    radius) on each seed set of ``seed_sets`` (default :data:`SEED_SETS`): one row per run, with ``seed_set``."""
    seed_sets = SEED_SETS if seed_sets is None else seed_sets
    frames = []
    for name, seeds in seed_sets.items():
        runs = grid_runs(BOOK.ns, BOOK.mu_norms, seeds, taus=[0.0, BOOK.tau])
        table, _ = train_table(runs, BOOK.setting, BOOK.training, by_n=True, progress=progress, desc=name)
        frames.append(table.assign(seed_set=name))
    return pd.concat(frames, ignore_index=True)


ROWS = ShippedRows("noise-memorization study", Path(__file__).parent / "study_data" / "map.csv",
                   "python -m samlib.memorization.study run")
"""The shipped study: ``study_data/map.csv`` beside this module, one row per run."""
load_study = ROWS.load


def _region(frame: pd.DataFrame) -> pd.DataFrame:
    snr = signal_to_noise(frame.n, frame.mu_norm, BOOK.setting)
    return frame[snr < HARMFUL_BELOW]


def claim_pairs(frame: pd.DataFrame, seed_set: str) -> tuple[np.ndarray, np.ndarray]:
    """SAM's and SGD's clean-label test errors, paired by (n, ‖μ‖, seed), in the theory's harmful region on
    ``seed_set``: two arrays (pairs,)."""
    rows = frame[frame.seed_set == seed_set]
    if rows.empty:
        raise ValueError(f"seed_set: expected one of {sorted(frame.seed_set.unique())}, got {seed_set!r}")
    paired = _region(rows).pivot_table(index=["n", "mu_norm", "seed"], columns="optimizer", values="test_error")
    if paired.isna().any().any() or set(paired.columns) != {"SGD", "SAM"}:
        raise ValueError("every (n, mu_norm, seed) of the study needs exactly one SGD run and one SAM run")
    return paired["SAM"].to_numpy(), paired["SGD"].to_numpy()


def meaningful_gain(frame: pd.DataFrame) -> float:
    """What counts as a meaningful effect, fixed on the tuning seeds: :data:`ROOM_SHARE` of SGD's median clean test
    error in the harmful region, as a (negative) difference in error."""
    _, sgd = claim_pairs(frame, "tuning")
    return -ROOM_SHARE * float(np.median(sgd))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.memorization.study", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="train the map on the tuning and held-out seeds; write the study")
    parser.parse_args(argv)
    from .. import setup

    setup()  # the book's seed, threads and kernels (samlib.repro.configure), as the chapter runs
    frame = run_study()
    print(f"{len(frame)} runs written to {ROWS.replace(frame, every_row)}", flush=True)


if __name__ == "__main__":
    main()
