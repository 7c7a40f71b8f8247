"""The image chapters' effects on seeds nobody had used: SGD, SAM and LSAM at radii chosen before, on many new seeds.

Each replication is a bed's preset, the runs chosen on earlier seeds (:data:`REPLICATIONS`) and a block of seeds
that no study of the book had touched (from 200 on). The cluttered CIFAR-MNIST bed runs its chosen radii (SAM 0.05,
LSAM 0.1, chosen on the test-bed study's tuning seeds) on 20 new seeds, the first five of them also evaluated after
5, 10 and 15 of the 20 epochs (each run continued from its checkpoint, so the 20-epoch row is the same run).
Waterbirds with 4,000 training images runs the radii of its first five seeds (SAM 0.1, LSAM 0.3) on 10 new seeds.

    python -m samlib.experiments.replication run [--replications NAME ...] [--checkpoints DIR]

writes ``testbeds_data/replication.csv`` beside this module: one row per run and evaluation (``epochs``; the last
is the preset's), in the test-bed study's columns. Every run's rows are written atomically as soon as it ends, so
a stopped study loses at most the run in progress (none with ``--checkpoints``, which keeps every run's checkpoint);
runs already in the file are skipped. About 70 CPU minutes for the cluttered bed on one thread.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..protocol import ShippedRows, run_parts, select, slug
from . import cifar_mnist, runs, testbeds, waterbirds

__all__ = ["Replication", "REPLICATIONS", "COLUMNS", "load_replication", "final_rows", "paired",
           "run_replication", "ROWS"]


@dataclass(frozen=True)
class Replication:
    """A bed's ``preset``, its chosen ``optimizers`` (``{'SGD': (0.0,), 'SAM': (rho,), ...}``), the new ``seeds``,
    and the epoch counts (``stages``, below the preset's) after which the first ``staged_seeds`` seeds are also
    evaluated."""

    preset: cifar_mnist.CifarMnistPreset | waterbirds.WaterbirdsPreset
    optimizers: dict
    seeds: tuple
    stages: tuple = ()
    staged_seeds: int = 0


REPLICATIONS = {
    "cluttered CIFAR-MNIST": Replication(cifar_mnist.CLUTTERED, {"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1,)},
                                         tuple(range(200, 220)), stages=(5, 10, 15), staged_seeds=5),
    "Waterbirds, 4,000 images": Replication(replace(waterbirds.BOOK, n_train=4000), waterbirds.BOOK.optimizers,
                                            tuple(range(200, 210))),
}
COLUMNS = ["replication", "optimizer", "rho", "label", "seed", "epochs", *testbeds.COLUMNS[7:]]


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    order = {name: i for i, name in enumerate(REPLICATIONS)}
    return frame.sort_values(["replication", "seed", "optimizer", "epochs"],
                             key=lambda c: c.map(order) if c.name == "replication" else c, kind="stable")


ROWS = ShippedRows("replication rows", Path(__file__).parent / "testbeds_data" / "replication.csv",
                   "python -m samlib.experiments.replication run", tuple(COLUMNS), 6, _in_order)
"""The replications' rows, one per run and evaluation: ``testbeds_data/replication.csv`` beside this module."""
load_replication = ROWS.load


def final_rows(name: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of replication ``name`` at the end of training (the preset's epochs), one per run."""
    frame = ROWS.load() if frame is None else frame
    if name not in REPLICATIONS:
        raise ValueError(f"unknown replication {name!r}: use one of {list(REPLICATIONS)}")
    epochs = REPLICATIONS[name].preset.train.epochs
    return select(frame, replication=name, epochs=epochs)


def paired(name: str, optimizer: str, metric: str = "hard_probe", frame: pd.DataFrame | None = None):
    """``optimizer``'s ``metric`` at its replicated radius and SGD's, paired by seed (the seeds both have), and the
    run's median final training error: ``(run, sgd, train_error)``."""
    rows = final_rows(name, frame)
    mine = rows[rows.optimizer == optimizer].set_index("seed").sort_index()
    if mine.empty:
        raise ValueError(f"replication {name!r} has no {optimizer} rows: use one of {sorted(set(rows.optimizer))}")
    sgd = rows[rows.optimizer == "SGD"].set_index("seed")[metric]
    mine = mine[mine.index.isin(sgd.index)]
    return mine[metric].to_numpy(), sgd[mine.index].to_numpy(), float(1 - mine.train_acc.median())


def _train(name: str, replication: Replication, spec: runs.RunSpec, sets, checkpoints: Path | None) -> pd.DataFrame:
    """One run of ``replication``: its rows at every stage (for the staged seeds) and at the end."""
    folder = None if checkpoints is None else checkpoints / slug(name)
    staged = spec.seed in replication.seeds[:replication.staged_seeds]
    return testbeds.staged_runs(replication.preset, {spec.optimizer: (spec.rho,)}, (spec.seed,),
                                replication.stages if staged else (), folder, sets)[1]


def run_replication(name: str, checkpoints: Path | None = None) -> int:
    """Train every run of replication ``name`` that the shipped file lacks, writing its rows as it ends. Returns
    the number of runs trained."""
    replication = REPLICATIONS[name]
    done = {(optimizer, round(rho, 6), seed) for run, optimizer, rho, seed
            in ROWS.done(("replication", "optimizer", "rho", "seed")) if run == name}
    todo = [spec for spec in runs.specs(replication.optimizers, replication.seeds)
            if (spec.optimizer, round(spec.rho, 6), spec.seed) not in done]
    if not todo:
        return 0
    sets = replication.preset.bed.load_sets(replication.preset)
    for spec in todo:
        start = time.time()
        ROWS.replace(_train(name, replication, spec, sets, checkpoints).assign(replication=name))
        print(f"{name}: {spec.name} in {time.time() - start:.0f} s", flush=True)
    return len(todo)


def main(argv=None) -> None:
    run_parts(argv, "python -m samlib.experiments.replication", __doc__.splitlines()[0], "replications",
              REPLICATIONS, lambda name, folder: f"{run_replication(name, folder)} runs", ROWS.path)


if __name__ == "__main__":
    main()
