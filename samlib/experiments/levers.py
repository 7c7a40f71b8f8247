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

from .. import checks
from ..checkpoint import write_text_atomic
from . import cifar_mnist, runs, waterbirds

__all__ = ["CHAPTERS", "LEVERS", "CURVES", "results_path", "run_lever", "run_curves", "load_levers"]

CHAPTERS = {"cifar_mnist": cifar_mnist, "waterbirds": waterbirds}  # each: preset, load_sets, build_model, evaluate
CM, WB = cifar_mnist.STAND_IN, waterbirds.BOOK  # the beds the chapters ran on when these levers were run
LEVERS = {  # chapter: {lever: (preset with one change, runs {optimizer: radii}, seeds)}
    "cifar_mnist": {
        "no BatchNorm": (replace(CM, batchnorm=False), {"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1, 0.5)}, (0,)),
        "agreement 0.9, y follows the clothing half": (replace(CM, agreement=0.9, follows="bottom"), CM.optimizers,
                                                       (0,)),
        "pair t-shirt/top vs shirt": (replace(CM, pair=("t-shirt/top", "shirt")), CM.optimizers, (0,)),
        "wider CNN (32, 64, 128)": (replace(CM, widths=(32, 64, 128)), CM.optimizers, (0,)),
        "30 epochs": (replace(CM, train=replace(CM.train, epochs=30)), CM.optimizers, (0,)),
        "finer ρ grid": (CM, {"SGD": (0.0,), "SAM": (0.01, 0.02, 0.1), "LSAM": (0.05, 0.2, 1.0)}, (0,)),
        "LSAM ρ 0.2 (best of the grid), 3 seeds": (CM, {"SGD": (0.0,), "LSAM": (0.2,)}, (0, 1, 2)),
    },
    "waterbirds": {
        "no BatchNorm": (replace(WB, batchnorm=False), WB.optimizers, (0,)),
        "4,000 training images, 5 seeds": (replace(WB, n_train=4000), WB.optimizers, (0, 1, 2, 3, 4)),
    },
}
CURVES = {  # chapter: (preset, runs, seed): probes and Gini after every epoch of one run per optimizer
    "cifar_mnist": (replace(CM, train=replace(CM.train, epochs=16)), CM.optimizers, 0),
}
COLUMNS = {"cifar_mnist": ["hard_probe", "easy_probe", "test_acc"],
           "waterbirds": ["worst_group_acc", "avg_acc", "core_probe"]}


def run_lever(chapter: str, name: str, config, optimizers: dict, seeds, checkpoints: Path | None) -> pd.DataFrame:
    module = CHAPTERS[chapter]
    sets = module.load_sets(config)
    build = lambda: module.build_model(config, sets)  # noqa: E731
    evaluate = lambda model, spec: module.evaluate(model, sets, config.gini_rho)  # noqa: E731
    folder = None if checkpoints is None else checkpoints / chapter / name.replace(" ", "_").replace("/", "-")
    study = runs.run_study(build, sets.train.images, sets.train.y, runs.specs(optimizers, seeds), config.train,
                           evaluate, checkpoint_dir=folder)
    return study.frame.assign(lever=name)


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


def results_path(chapter: str, curves: bool = False) -> Path:
    """Where the lever (or, with ``curves``, the per-epoch) results of ``chapter`` live."""
    if chapter not in (CURVES if curves else LEVERS):
        raise ValueError(f"unknown chapter {chapter!r}: use one of {sorted(CURVES if curves else LEVERS)}")
    return Path(__file__).parent / "levers_data" / f"{chapter}{'_curves' if curves else ''}.csv"


def load_levers(chapter: str, curves: bool = False) -> pd.DataFrame:
    """The lever runs of ``chapter`` as written by this module's command line: one row per run (with ``curves``:
    per run and epoch)."""
    path = results_path(chapter, curves)
    if not path.is_file():
        flag = " --curves" if curves else ""
        raise FileNotFoundError(f"no lever results at {path}: run python -m samlib.experiments.levers {chapter}{flag}")
    return pd.read_csv(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.experiments.levers", description=__doc__.splitlines()[0])
    parser.add_argument("chapter", choices=sorted(LEVERS))
    parser.add_argument("--curves", action="store_true", help="per-epoch curves instead of the levers")
    parser.add_argument("--checkpoints", type=Path, default=None, help="folder for per-run checkpoints (resume)")
    args = parser.parse_args(argv)
    if args.curves and args.chapter not in CURVES:
        parser.error(f"--curves exists for {', '.join(sorted(CURVES))} only, not {args.chapter}: drop --curves to "
                     f"run {args.chapter}'s levers")
    if args.curves and args.checkpoints is not None:
        parser.error("--curves keeps no checkpoints (each of its runs is short): drop --checkpoints")
    if args.checkpoints is not None:
        try:
            checks.path("--checkpoints", args.checkpoints, "folder")
        except (TypeError, ValueError) as e:
            parser.error(str(e))
    from .. import setup

    setup()
    start = time.time()
    if args.curves:
        out = write_text_atomic(run_curves(args.chapter).round(4).to_csv(index=False), results_path(args.chapter, True))
        print(f"wrote {out} in {time.time() - start:.0f} s")
        return
    frame = pd.concat([run_lever(args.chapter, name, *lever, args.checkpoints)
                       for name, lever in LEVERS[args.chapter].items()])
    out = results_path(args.chapter)
    columns = ["lever", "optimizer", "rho", "label", "seed", *COLUMNS[args.chapter], "train_loss", "gini_real",
               "gini_phantom"]
    write_text_atomic(frame[columns].round(4).to_csv(index=False), out)
    print(f"wrote {out} ({len(frame)} runs) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
