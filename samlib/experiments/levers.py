"""The levers of the real-image chapters' first beds, which their notebooks do not re-run: each setting is the bed's
preset (``cifar_mnist.STAND_IN``, ``waterbirds.BOOK``) with one thing changed. The CIFAR-MNIST chapter has since
moved to a bed with headroom (``cifar_mnist.CLUTTERED``), whose levers are ``samlib.experiments.testbeds``'.

    python -m samlib.experiments.levers cifar_mnist|waterbirds [--checkpoints DIR]
    python -m samlib.experiments.levers cifar_mnist --curves

Writes ``levers_data/<chapter>.csv`` (one row per run; with ``--curves``, ``<chapter>_curves.csv``, one row per
run and epoch) beside this module, atomically; the files ship with samlib, so the chapters print them in Colab
too, and :func:`load_levers` reads them. About 9 minutes per chapter on 2 CPU
threads; with ``--checkpoints`` an interrupted study resumes where it stopped. ``--curves`` for a chapter that has
none, ``--curves`` with ``--checkpoints`` (the curves keep none) and a checkpoint folder that is a file are refused
with argparse's usage line.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..protocol import Lever, ShippedRows, checkpoints_option, every_row, run_lever
from . import cifar_mnist, runs, waterbirds

__all__ = ["LEVERS", "CURVES", "COLUMNS", "ROWS", "CURVE_ROWS", "train_lever", "run_curves", "load_levers"]

CM, WB = cifar_mnist.STAND_IN, waterbirds.BOOK  # the beds the chapters ran on when these levers were run


def _lever(name: str, preset, optimizers: dict, seeds=(0,)) -> tuple[str, Lever]:
    """A lever of the first beds: its name says what changed; every run of ``optimizers`` on ``seeds``."""
    return name, Lever(name, preset, optimizers, seeds=seeds)


LEVERS = {  # chapter: {name: Lever}
    "cifar_mnist": dict([
        _lever("no BatchNorm", replace(CM, batchnorm=False), {"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1, 0.5)}),
        _lever("agreement 0.9, y follows the clothing half", replace(CM, agreement=0.9, follows="bottom"),
               CM.optimizers),
        _lever("pair t-shirt/top vs shirt", replace(CM, pair=("t-shirt/top", "shirt")), CM.optimizers),
        _lever("wider CNN (32, 64, 128)", replace(CM, widths=(32, 64, 128)), CM.optimizers),
        _lever("30 epochs", replace(CM, train=replace(CM.train, epochs=30)), CM.optimizers),
        _lever("finer ρ grid", CM, {"SGD": (0.0,), "SAM": (0.01, 0.02, 0.1), "LSAM": (0.05, 0.2, 1.0)}),
        _lever("LSAM ρ 0.2 (best of the grid), 3 seeds", CM, {"SGD": (0.0,), "LSAM": (0.2,)}, (0, 1, 2)),
    ]),
    "waterbirds": dict([
        _lever("no BatchNorm", replace(WB, batchnorm=False), WB.optimizers),
        _lever("4,000 training images, 5 seeds", replace(WB, n_train=4000), WB.optimizers, (0, 1, 2, 3, 4)),
    ]),
}
CURVES = {  # chapter: (preset, runs, seed): probes and Gini after every epoch of one run per optimizer
    "cifar_mnist": (replace(CM, train=replace(CM.train, epochs=16)), CM.optimizers, 0),
}
COLUMNS = {"cifar_mnist": ["hard_probe", "easy_probe", "test_acc"],
           "waterbirds": ["worst_group_acc", "avg_acc", "core_probe"]}
_FOLDER = Path(__file__).parent / "levers_data"
_COMMAND = "python -m samlib.experiments.levers"
ROWS = {chapter: ShippedRows(f"{chapter} levers", _FOLDER / f"{chapter}.csv", f"{_COMMAND} {chapter}",
                             ("lever", "optimizer", "rho", "label", "seed", *columns, "train_loss", "gini_real",
                              "gini_phantom"), 4)
        for chapter, columns in COLUMNS.items()}
"""Each chapter's lever runs, one row per run: ``levers_data/<chapter>.csv`` beside this module."""
CURVE_ROWS = {chapter: ShippedRows(f"{chapter} curves", _FOLDER / f"{chapter}_curves.csv",
                                   f"{_COMMAND} {chapter} --curves", decimals=4) for chapter in CURVES}
"""The per-epoch runs, one row per run and epoch: ``levers_data/<chapter>_curves.csv``."""


def train_lever(lever: Lever, radii: dict, seed_set: str, seeds, checkpoint: Path | None) -> pd.DataFrame:
    """The trainer of :func:`samlib.protocol.run_lever`: every run of ``radii`` on ``seeds`` on the lever's bed,
    evaluated by its chapter (:func:`samlib.experiments.cifar_mnist.evaluate`,
    :func:`samlib.experiments.waterbirds.evaluate`), resumable from the folder ``checkpoint``."""
    config = lever.settings
    sets = config.bed.load_sets(config)
    build = lambda: config.bed.build_model(config, sets)  # noqa: E731
    evaluate = lambda model, spec: config.bed.evaluate(model, sets, config.gini_rho)  # noqa: E731
    return runs.run_study(build, sets.train.images, sets.train.y, runs.specs(radii, seeds), config.train, evaluate,
                          checkpoint_dir=checkpoint).frame


def run_curves(chapter: str) -> pd.DataFrame:
    """One run per optimizer of :data:`CURVES`, evaluated after every epoch: one row per (run, epoch)."""
    config, optimizers, seed = CURVES[chapter]
    sets = cifar_mnist.load_sets(config)
    evaluate = lambda model: cifar_mnist.evaluate(model, sets, config.gini_rho)  # noqa: E731
    frames = []
    for spec in runs.specs(optimizers, (seed,)):
        _, history = runs.train_run(lambda: cifar_mnist.build_model(config, sets),
                                    sets.train.images, sets.train.y, spec, config.train, evaluate_each_epoch=evaluate)
        frames.append(history.to_frame().assign(optimizer=spec.optimizer, rho=spec.rho, label=spec.label, seed=seed))
    return pd.concat(frames)


def _rows(chapter: str, curves: bool = False) -> ShippedRows:
    table = CURVE_ROWS if curves else ROWS
    if chapter not in table:
        raise ValueError(f"unknown chapter {chapter!r}: use one of {sorted(table)}")
    return table[chapter]


def load_levers(chapter: str, curves: bool = False) -> pd.DataFrame:
    """The lever runs of ``chapter`` as written by this module's command line: one row per run (with ``curves``:
    per run and epoch)."""
    return _rows(chapter, curves).load()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.experiments.levers", description=__doc__.splitlines()[0])
    parser.add_argument("chapter", choices=sorted(LEVERS))
    parser.add_argument("--curves", action="store_true", help="per-epoch curves instead of the levers")
    checkpoints_option(parser)
    args = parser.parse_args(argv)
    if args.curves and args.chapter not in CURVES:
        parser.error(f"--curves exists for {', '.join(sorted(CURVES))} only, not {args.chapter}: drop --curves to "
                     f"run {args.chapter}'s levers")
    if args.curves and args.checkpoints is not None:
        parser.error("--curves keeps no checkpoints (each of its runs is short): drop --checkpoints")
    from .. import setup

    setup()
    start = time.time()
    if args.curves:
        out = CURVE_ROWS[args.chapter].replace(run_curves(args.chapter), every_row)
        print(f"wrote {out} in {time.time() - start:.0f} s")
        return
    folder = None if args.checkpoints is None else args.checkpoints / args.chapter
    frame = pd.concat([run_lever(name, lever, train_lever, {"tuning": lever.seeds}, checkpoints=folder)
                       for name, lever in LEVERS[args.chapter].items()])
    out = ROWS[args.chapter].replace(frame, every_row)
    print(f"wrote {out} ({len(frame)} runs) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
