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

import argparse
import fcntl
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from .. import checks
from ..checkpoint import write_text_atomic
from . import cifar_mnist, runs, testbeds, waterbirds

__all__ = ["Replication", "REPLICATIONS", "COLUMNS", "results_path", "load_replication", "final_rows", "paired",
           "run_replication"]


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


def results_path() -> Path:
    """Where the replications' rows live, shipped with samlib."""
    return Path(__file__).parent / "testbeds_data" / "replication.csv"


def load_replication() -> pd.DataFrame:
    """The rows written by ``python -m samlib.experiments.replication run``: one per run and evaluation."""
    if not results_path().is_file():
        raise FileNotFoundError(f"no replication rows at {results_path()}: run "
                                "python -m samlib.experiments.replication run")
    return pd.read_csv(results_path())


def final_rows(name: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of replication ``name`` at the end of training (the preset's epochs), one per run."""
    frame = load_replication() if frame is None else frame
    if name not in REPLICATIONS:
        raise ValueError(f"unknown replication {name!r}: use one of {list(REPLICATIONS)}")
    epochs = REPLICATIONS[name].preset.train.epochs
    return frame[(frame.replication == name) & (frame.epochs == epochs)]


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
    preset, folder = replication.preset, None if checkpoints is None else checkpoints / name.replace(" ", "_")
    one = {spec.optimizer: (spec.rho,)}
    if isinstance(preset, waterbirds.WaterbirdsPreset):
        frame = testbeds.waterbirds_grid_runs(preset, one, (spec.seed,), folder, sets)
        return frame.assign(epochs=preset.train.epochs)
    staged = spec.seed in replication.seeds[:replication.staged_seeds]
    return testbeds.staged_runs(preset, one, (spec.seed,), replication.stages if staged else (), folder, sets)[1]


def run_replication(name: str, checkpoints: Path | None = None) -> int:
    """Train every run of replication ``name`` that the shipped file lacks, writing its rows as it ends. Returns
    the number of runs trained."""
    replication = REPLICATIONS[name]
    done = set()
    if results_path().is_file():
        rows = load_replication()
        rows = rows[rows.replication == name]
        done = set(zip(rows.optimizer, rows.rho.round(6), rows.seed))
    todo = [spec for spec in runs.specs(replication.optimizers, replication.seeds)
            if (spec.optimizer, round(spec.rho, 6), spec.seed) not in done]
    if not todo:
        return 0
    module = waterbirds if isinstance(replication.preset, waterbirds.WaterbirdsPreset) else cifar_mnist
    sets = module.load_sets(replication.preset)
    for spec in todo:
        start = time.time()
        rows = _train(name, replication, spec, sets, checkpoints).assign(replication=name)
        _append(rows.reindex(columns=COLUMNS))
        print(f"{name}: {spec.name} in {time.time() - start:.0f} s", flush=True)
    return len(todo)


def _append(rows: pd.DataFrame) -> None:
    """Add ``rows`` to the shipped file, read just before under a lock (so that two processes running different
    replications keep each other's rows), atomically."""
    with open(Path(tempfile.gettempdir()) / "samlib-replication.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = load_replication() if results_path().is_file() else None
        merged = rows if kept is None else pd.concat([kept, rows], ignore_index=True)
        order = {name: i for i, name in enumerate(REPLICATIONS)}
        merged = merged.sort_values(["replication", "seed", "optimizer", "epochs"],
                                    key=lambda c: c.map(order) if c.name == "replication" else c, kind="stable")
        write_text_atomic(merged.reindex(columns=COLUMNS).round(6).to_csv(index=False), results_path())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.experiments.replication",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--replications", nargs="+", choices=list(REPLICATIONS), default=list(REPLICATIONS),
                        help="the replications to run; the others keep their rows")
    parser.add_argument("--checkpoints", type=Path, default=None, help="folder for per-run checkpoints (resume)")
    args = parser.parse_args(argv)
    twice = sorted({name for name in args.replications if args.replications.count(name) > 1})
    if twice:
        parser.error(f"--replications names {twice} twice")
    if args.checkpoints is not None:
        try:
            checks.path("--checkpoints", args.checkpoints, "folder")
        except (TypeError, ValueError) as e:
            parser.error(str(e))
    from .. import setup

    setup()
    for name in args.replications:
        start = time.time()
        trained = run_replication(name, args.checkpoints)
        print(f"{name}: {trained} runs in {time.time() - start:.0f} s -> {results_path()}", flush=True)


if __name__ == "__main__":
    main()
