"""Levers of the CIFAR-MNIST chapter that its notebook does not re-run: one seed per setting, each the book
preset (samlib.experiments.cifar_mnist.BOOK) with one thing changed.

    python book/studies/cifar_mnist_levers.py [--checkpoints DIR]

Writes book/studies/cifar_mnist_levers.csv (atomically; one row per run). About 10 minutes on 2 CPU threads.
With --checkpoints an interrupted run resumes where it stopped. The chapter prints the file as it is.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

import samlib
from samlib.checkpoint import write_text_atomic
from samlib.experiments import cifar_mnist, runs

OUT = Path(__file__).with_suffix(".csv")
MAIN = {"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.5,)}
BOOK = cifar_mnist.BOOK
LEVERS = {  # name: (preset with one change, runs)
    "no BatchNorm": (replace(BOOK, batchnorm=False), {"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1, 0.5)}),
    "agreement 0.9, y follows the clothing half": (replace(BOOK, agreement=0.9, follows="bottom"), MAIN),
    "pair t-shirt/top vs shirt": (replace(BOOK, pair=("t-shirt/top", "shirt")), MAIN),
    "wider CNN (32, 64, 128)": (replace(BOOK, widths=(32, 64, 128)), MAIN),
    "3x longer training (30 epochs)": (replace(BOOK, train=replace(BOOK.train, epochs=30)), MAIN),
}


def run_lever(name: str, config, optimizers: dict, checkpoints: Path | None) -> pd.DataFrame:
    sets = cifar_mnist.load_sets(config)
    build = lambda: cifar_mnist.build_model(config, in_channels=sets.train.images.shape[1])  # noqa: E731
    evaluate = lambda model, spec: cifar_mnist.evaluate(model, sets, config.gini_rho)  # noqa: E731
    folder = None if checkpoints is None else checkpoints / name.replace(" ", "_").replace("/", "-")
    study = runs.run_study(build, sets.train.images, sets.train.y, runs.specs(optimizers, (0,)), config.train,
                           evaluate, checkpoint_dir=folder)
    return study.frame.assign(lever=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=None, help="folder for per-run checkpoints (resume)")
    args = parser.parse_args()
    samlib.setup()
    start = time.time()
    frame = pd.concat([run_lever(name, config, optimizers, args.checkpoints)
                       for name, (config, optimizers) in LEVERS.items()])
    columns = ["lever", "label", "seed", "hard_probe", "easy_probe", "test_acc", "train_loss", "gini_real", "gini_phantom"]
    write_text_atomic(frame[columns].round(4).to_csv(index=False), OUT)
    print(f"wrote {OUT} ({len(frame)} runs) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
