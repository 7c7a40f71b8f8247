"""Learning-rate scaling on a real network: the half of LSAM's mechanism that carries the toy's gain, measured along
the directions of feature space that read each image half.

A network of features Phi and a linear head V; LSAM's phantom head is V~ = V + eps. The gradient that reaches the
features along a direction u is scaled by :func:`samlib.decompose.lr_scaling_along` (V~u against Vu, centred over
the classes). The directions are the **easy and the hard probe's weight vectors** (fit on the network's features of
the decorrelated probe set), so the two factors say how much the phantom head slows or speeds the learning of what
reads each half. In the toy, the same definition gives the per-feature factors v~_k / v_k.

The cluttered CIFAR-MNIST bed (:data:`~samlib.experiments.cifar_mnist.CLUTTERED`): SGD and LSAM at the chapter's
radius on the test-bed study's tuning and held-out seeds, and on 20 seeds no other study used (``new``, 220-239: the
seeds of the verdict), the factors read after the epochs of :data:`EPOCHS` (the median over :data:`BATCHES`
training batches of 128). For SGD they are those of the phantom head LSAM would take from SGD's weights.

    python -m samlib.experiments.lr_scaling run [--seed-sets tuning held-out new] [--optimizers SGD LSAM]

writes ``testbeds_data/lr_scaling.csv`` beside this module, one row per run and read epoch, each run's rows as soon
as it ends (atomically, under a lock); runs already in the file are skipped, so a stopped study loses at most the
run in progress (a minute or two: the reads follow the epochs as they are trained, so a run is not resumed midway).
A run took 41-50 s on one thread of a 2-core machine with the other core free, and 70-100 s beside other jobs: the
60 runs (10 per seed set of five, 40 for the new seeds) take under an hour.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import torch

from .. import checks
from ..decompose import lr_scaling_along, phantom_head
from ..probe import extract_features
from ..protocol import ShippedRows, refuse_repeats, select
from . import cifar_mnist, runs, testbeds

__all__ = ["PRESET", "RHO", "EPOCHS", "BATCHES", "OPTIMIZERS", "SEED_SETS", "COLUMNS", "probe_directions",
           "lr_factors", "factors", "ROWS", "load_lr_scaling", "run_seed", "by_epoch", "paired", "main"]

PRESET = cifar_mnist.CLUTTERED
RHO = 0.1  # the cluttered bed's LSAM radius, chosen on its tuning seeds
EPOCHS = (1, 2, 3, 5, 10, 15, 20)
BATCHES = 8
OPTIMIZERS = {"SGD": (0.0,), "LSAM": (RHO,)}
# The third set, 220-239, is used by no other study (the replication's seeds are 200-219): the verdict's seeds.
SEED_SETS = {"tuning": testbeds.TUNING_SEEDS, "held-out": testbeds.HELD_OUT_SEEDS, "new": tuple(range(220, 240))}
COLUMNS = ["seed_set", "optimizer", "rho", "seed", "epoch", "easy_factor", "hard_factor", "easy_probe", "hard_probe",
           "train_loss", "train_acc"]


def probe_directions(model: torch.nn.Module, sets: cifar_mnist.DominoSets) -> tuple[torch.Tensor, dict]:
    """The unit directions of ``model``'s feature space that read the easy (top) and the hard (bottom) half: the
    weight vectors of the linear probes fit on ``sets.probe_train`` (2, D), and the probes' test accuracies."""
    features = (extract_features(model, s.images) for s in (sets.probe_train, sets.probe_test))
    directions, accuracies = [], {}
    for half, probe in cifar_mnist.half_probes(*features, sets).items():
        direction = torch.as_tensor(probe.direction, dtype=torch.float64)
        directions.append(direction / direction.norm())
        accuracies[f"{half}_probe"] = probe.test_accuracy
    return torch.stack(directions), accuracies


def lr_factors(model: torch.nn.Module, images: torch.Tensor, y: torch.Tensor, directions: torch.Tensor,
               rho: float = RHO, batches: int = BATCHES, batch_size: int = 128, seed: int = 0) -> torch.Tensor:
    """The learning-rate scaling of a features-and-head ``model`` (its head an ``nn.Linear``, trained with
    cross-entropy) along each row of ``directions`` (K, D): the median over ``batches`` batches of ``batch_size``
    training ``images`` with classes ``y`` (drawn with ``seed``) of the factor of LSAM's phantom head at radius
    ``rho`` (:func:`samlib.decompose.lr_scaling_along`). (K,)"""
    checks.positive_int("batches", batches, "e.g. 8")
    checks.positive_int("batch_size", batch_size, "e.g. 128")
    if batches * batch_size > len(images):
        raise ValueError(f"batches * batch_size = {batches * batch_size} is more than the {len(images)} images: "
                         "pass fewer or smaller batches")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    head = tuple(t.detach().cpu().double() for t in (model.head.weight, model.head.bias))
    per_batch = []
    for b in range(batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        features = extract_features(model, images[idx]).double()
        phantom = phantom_head(features, y[idx], head, rho, "cross_entropy")
        per_batch.append(lr_scaling_along(head, phantom, directions, "cross_entropy"))
    return torch.stack(per_batch).median(0).values


def factors(model: torch.nn.Module, sets: cifar_mnist.DominoSets, rho: float = RHO, batches: int = BATCHES,
            batch_size: int = 128, seed: int = 0) -> dict:
    """The bed's reading of :func:`lr_factors`: along ``model``'s easy and hard probe directions
    (:func:`probe_directions`), on its training dominoes; with the probes' accuracies."""
    directions, accuracies = probe_directions(model, sets)
    median = lr_factors(model, sets.train.images, sets.train.y, directions, rho, batches, batch_size, seed)
    return {"easy_factor": median[0].item(), "hard_factor": median[1].item(), **accuracies}


ROWS = ShippedRows("learning-rate scaling study", Path(__file__).parent / "testbeds_data" / "lr_scaling.csv",
                   "python -m samlib.experiments.lr_scaling run", tuple(COLUMNS), 6,
                   lambda frame: frame.sort_values(["seed_set", "seed", "optimizer", "epoch"], kind="stable"))
"""The rows, one per run and read epoch: ``testbeds_data/lr_scaling.csv`` beside this module."""
load_lr_scaling = ROWS.load


def run_seed(spec: runs.RunSpec, sets: cifar_mnist.DominoSets) -> pd.DataFrame:
    """Train ``spec`` on the bed from scratch, reading :func:`factors` after every epoch of :data:`EPOCHS`: one row
    per read."""
    epoch = iter(range(1, PRESET.train.epochs + 1))

    def measure(model):
        done = next(epoch)
        empty = dict.fromkeys(["easy_factor", "hard_factor", "easy_probe", "hard_probe"], math.nan)
        return factors(model, sets, seed=done) if done in EPOCHS else empty

    _, history = runs.train_run(lambda: cifar_mnist.build_model(PRESET, sets), sets.train.images, sets.train.y, spec,
                                PRESET.train, progress=False, evaluate_each_epoch=measure)
    rows = history.to_frame().assign(epoch=range(1, len(history) + 1))
    return rows[rows.epoch.isin(EPOCHS)].assign(optimizer=spec.optimizer, rho=spec.rho, seed=spec.seed)


def by_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """Per seed set, optimizer and read epoch: the median and quartiles over seeds of the easy and the hard factor,
    and the median of each run's ratio hard / easy (above 1: the hard half's learning is slowed less)."""
    frame = frame.assign(relative=frame.hard_factor / frame.easy_factor)
    stats = {"median": "median", "q25": lambda v: v.quantile(0.25), "q75": lambda v: v.quantile(0.75)}
    out = frame.groupby(["seed_set", "optimizer", "epoch"])[["easy_factor", "hard_factor", "relative"]].agg(
        list(stats.values()))
    return out.set_axis(pd.MultiIndex.from_product([["easy_factor", "hard_factor", "relative"], list(stats)]),
                        axis=1)


def paired(frame: pd.DataFrame, optimizer: str = "LSAM", seed_set: str = "held-out"):
    """Per run of ``optimizer`` on ``seed_set`` (sorted by seed), the median over its read epochs of the hard and
    of the easy factor: the pairs the book's statistic compares (the toy's phantom ratio is a median over training
    too)."""
    rows = select(frame, optimizer=optimizer, seed_set=seed_set)
    medians = rows.groupby("seed")[["hard_factor", "easy_factor"]].median().sort_index()
    return medians.hard_factor.to_numpy(), medians.easy_factor.to_numpy()


def _todo(seed_sets, optimizers=tuple(OPTIMIZERS)) -> list[tuple[str, runs.RunSpec]]:
    done = ROWS.done(("optimizer", "seed"))
    chosen = {name: OPTIMIZERS[name] for name in optimizers}
    return [(name, spec) for name in seed_sets for spec in runs.specs(chosen, SEED_SETS[name])
            if (spec.optimizer, spec.seed) not in done]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.experiments.lr_scaling",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--seed-sets", nargs="+", choices=list(SEED_SETS), default=list(SEED_SETS),
                        help="the seed sets to run (default: all)")
    parser.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS),
                        help="the optimizers to run (default: both)")
    args = parser.parse_args(argv)
    refuse_repeats(parser, seed_sets=args.seed_sets, optimizers=args.optimizers)
    from .. import setup

    setup()
    sets = cifar_mnist.load_sets(PRESET)
    for seed_set, spec in _todo(args.seed_sets, args.optimizers):
        start = time.time()
        path = ROWS.replace(run_seed(spec, sets).assign(seed_set=seed_set))
        print(f"{seed_set} {spec.name}: {time.time() - start:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
