"""The levers of the real-image chapters that their notebooks do not re-run: each setting is the chapter's book
preset with one thing changed.

    python -m samlib.experiments.levers cifar_mnist|waterbirds [--checkpoints DIR]

Writes ``levers_data/<chapter>.csv`` beside this module (shipped with samlib, so the chapters can print it in
Colab too) atomically, one row per run; :func:`load_levers` reads it. About 9 minutes per chapter on 2 CPU
threads; with ``--checkpoints`` an interrupted study resumes where it stopped.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..checkpoint import write_text_atomic
from . import cifar_mnist, runs, waterbirds

__all__ = ["LEVERS", "results_path", "run_lever", "load_levers"]

CM, WB = cifar_mnist.BOOK, waterbirds.BOOK
LEVERS = {  # chapter: {lever: (preset with one change, runs {optimizer: radii}, seeds)}
    "cifar_mnist": {
        "no BatchNorm": (replace(CM, batchnorm=False), {"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1, 0.5)}, (0,)),
        "agreement 0.9, y follows the clothing half": (replace(CM, agreement=0.9, follows="bottom"), CM.optimizers, (0,)),
        "pair t-shirt/top vs shirt": (replace(CM, pair=("t-shirt/top", "shirt")), CM.optimizers, (0,)),
        "wider CNN (32, 64, 128)": (replace(CM, widths=(32, 64, 128)), CM.optimizers, (0,)),
        "30 epochs": (replace(CM, train=replace(CM.train, epochs=30)), CM.optimizers, (0,)),
    },
    "waterbirds": {
        "no BatchNorm": (replace(WB, batchnorm=False), WB.optimizers, (0,)),
        "4,000 training images, 5 seeds": (replace(WB, n_train=4000), WB.optimizers, (0, 1, 2, 3, 4)),
    },
}
COLUMNS = {"cifar_mnist": ["hard_probe", "easy_probe", "test_acc"],
           "waterbirds": ["worst_group_acc", "avg_acc", "core_probe"]}


def run_lever(chapter: str, name: str, config, optimizers: dict, seeds, checkpoints: Path | None) -> pd.DataFrame:
    module = cifar_mnist if chapter == "cifar_mnist" else waterbirds
    sets = module.load_sets(config)
    channels = sets.train.images.shape[1]
    build = (lambda: cifar_mnist.build_model(config, channels)) if module is cifar_mnist else (  # noqa: E731
        lambda: waterbirds.build_model(config))
    evaluate = lambda model, spec: module.evaluate(model, sets, config.gini_rho)  # noqa: E731
    folder = None if checkpoints is None else checkpoints / chapter / name.replace(" ", "_").replace("/", "-")
    study = runs.run_study(build, sets.train.images, sets.train.y, runs.specs(optimizers, seeds), config.train,
                           evaluate, checkpoint_dir=folder)
    return study.frame.assign(lever=name)


def results_path(chapter: str) -> Path:
    """Where the lever results of ``chapter`` ('cifar_mnist' or 'waterbirds') live."""
    if chapter not in LEVERS:
        raise ValueError(f"unknown chapter {chapter!r}: use one of {sorted(LEVERS)}")
    return Path(__file__).parent / "levers_data" / f"{chapter}.csv"


def load_levers(chapter: str) -> pd.DataFrame:
    """The lever runs of ``chapter`` as written by this module's command line: one row per run."""
    path = results_path(chapter)
    if not path.is_file():
        raise FileNotFoundError(f"no lever results at {path}: run python -m samlib.experiments.levers {chapter}")
    return pd.read_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", choices=sorted(LEVERS))
    parser.add_argument("--checkpoints", type=Path, default=None, help="folder for per-run checkpoints (resume)")
    args = parser.parse_args()
    from .. import setup

    setup()
    start = time.time()
    frame = pd.concat([run_lever(args.chapter, name, *lever, args.checkpoints)
                       for name, lever in LEVERS[args.chapter].items()])
    out = results_path(args.chapter)
    columns = ["lever", "optimizer", "rho", "label", "seed", *COLUMNS[args.chapter], "train_loss", "gini_real",
               "gini_phantom"]
    write_text_atomic(frame[columns].round(4).to_csv(index=False), out)
    print(f"wrote {out} ({len(frame)} runs) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
