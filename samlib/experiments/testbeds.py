"""Test beds with headroom: the study behind the "Headroom first" chapter (``book/testbeds.ipynb``).

Each test bed is a domino preset (:class:`samlib.experiments.cifar_mnist.CifarMnistPreset`). For each, the study
measures the headroom of the hard half's probe (:mod:`samlib.experiments.headroom`) and then compares SGD, SAM
and LSAM:

1. **tuning seeds** (:data:`TUNING_SEEDS`): the floor, the hard-only ceiling and every radius of the bed's grid;
2. the radius of SAM and of LSAM with the best median hard probe on the tuning seeds (:func:`best_radii`);
3. **held-out seeds** (:data:`HELD_OUT_SEEDS`), first used after step 2: SGD and the two chosen runs;
4. the **lever** of the bed (weight decay), the bed's preset with one change, on the tuning seeds: SGD and the
   better of SAM and LSAM at its chosen radius (:func:`lever_runs`).

    python -m samlib.experiments.testbeds run [--beds NAME ...] [--checkpoints DIR]

writes ``testbeds_data/testbeds.csv`` beside this module (one row per run), atomically after each bed; with
``--checkpoints`` an interrupted study resumes where it stopped. The file ships with samlib, so the chapter prints
it in Colab too; :func:`load_study` reads it. About an hour on 2 CPU threads.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..checkpoint import write_text_atomic
from ..data import pixel_probe_errors
from ..data.clutter import Clutter
from . import cifar_mnist, runs, waterbirds
from .cifar_mnist import CifarMnistPreset
from .runs import TrainConfig

__all__ = ["Bed", "BEDS", "TUNING_SEEDS", "HELD_OUT_SEEDS", "COLUMNS", "headroom_runs", "grid_runs",
           "waterbirds_headroom_runs", "best_radii", "lever_runs", "run_bed", "results_path", "load_study"]

TUNING_SEEDS = (0, 1, 2, 3, 4)
HELD_OUT_SEEDS = (100, 101, 102, 103, 104)
COLUMNS = ["bed", "lever", "seed_set", "label", "optimizer", "rho", "seed", "hard_probe", "easy_probe", "test_acc",
           "train_acc", "train_loss", "gini_real", "gini_phantom"]


@dataclass(frozen=True)
class Bed:
    """A test bed: its preset (dominoes; a Waterbirds preset is measured for headroom only), what it is in words,
    the radii to tune (``{'SAM': (...), 'LSAM': (...)}``; empty: headroom only), whether the chosen radii are
    re-run on the held-out seeds, and its levers (``{name: preset with one change}``)."""

    preset: CifarMnistPreset | waterbirds.WaterbirdsPreset
    description: str
    radii: dict = field(default_factory=dict)
    held_out: bool = False
    levers: dict = field(default_factory=dict)


_PAPER_NET = dict(model="paper_cnn", n_train=3000, n_probe=1000, train=TrainConfig(epochs=20))
_CLUTTERED_CM = CifarMnistPreset(data="offline", pair=("trouser", "dress"), clutter=Clutter(), **_PAPER_NET)
_FMNIST_MNIST = CifarMnistPreset(data="fmnist_mnist", **_PAPER_NET)
_GRID = {"SAM": (0.05, 0.2), "LSAM": (0.1, 0.3, 1.0)}


def _levers(preset: CifarMnistPreset) -> dict:
    return {"weight decay 5e-3": replace(preset, train=replace(preset.train, weight_decay=5e-3))}


BEDS = {
    "cluttered CIFAR-MNIST": Bed(_CLUTTERED_CM, "MNIST 0/1 over trouser/dress at random scale and place on textures, "
                                                "the paper's network", _GRID, True, _levers(_CLUTTERED_CM)),
    "CIFAR-MNIST stand-in": Bed(cifar_mnist.BOOK, "the CIFAR-MNIST chapter's bed: MNIST 0/1 over pullover/coat, "
                                                  "the book's SmallCNN"),
    "FMNIST-MNIST": Bed(_FMNIST_MNIST, "MNIST 0-4 over Fashion-MNIST 0-4 (5 classes), the paper's network"),
    "Waterbirds stand-in": Bed(waterbirds.BOOK, "the Waterbirds chapter's bed: tops vs footwear on land or water "
                                                "photos, the book's SmallCNN; hard: the object, easy: the background"),
}


def _evaluate(preset: CifarMnistPreset, sets, train_images, train_labels):
    def evaluate(model, spec) -> dict:
        accuracy = float((runs.predict(model, train_images) == train_labels).double().mean())
        return {**cifar_mnist.evaluate(model, sets, preset.gini_rho), "train_acc": accuracy}
    return evaluate


def _study(preset, sets, images, labels, run_specs, folder) -> pd.DataFrame:
    build = lambda: cifar_mnist.build_model(preset, sets)  # noqa: E731
    study = runs.run_study(build, images, labels, run_specs, preset.train,
                           _evaluate(preset, sets, images, labels), checkpoint_dir=folder, progress=False)
    return study.frame


def headroom_runs(preset: CifarMnistPreset, seeds=TUNING_SEEDS, checkpoints: Path | None = None,
                  sets: cifar_mnist.DominoSets | None = None) -> pd.DataFrame:
    """The headroom stages of ``preset`` (:data:`samlib.experiments.headroom.STAGES`): the pixel probe (one row,
    seed 0), the untrained network and the hard-only control for each seed, SGD on the training set for each
    seed. ``sets``: ``preset``'s domino sets, when already loaded."""
    sets = cifar_mnist.load_sets(preset) if sets is None else sets
    control = cifar_mnist.hard_only_set(preset)
    pixels = cifar_mnist.pixel_probes(sets)
    rows = [pd.DataFrame([{"label": "pixels", "optimizer": "pixels", "rho": 0.0, "seed": 0, **pixels}])]
    build = lambda: cifar_mnist.build_model(preset, sets)  # noqa: E731
    rows.append(runs.evaluate_untrained(build, seeds, _evaluate(preset, sets, sets.train.images, sets.train.y)))
    folder = None if checkpoints is None else checkpoints / "hard_only"
    hard_only = _study(preset, sets, control.images, control.y, runs.specs({"SGD": (0.0,)}, seeds), folder)
    rows.append(hard_only.assign(label="hard only", optimizer="hard only"))
    sgd_folder = None if checkpoints is None else checkpoints / "runs"
    rows.append(_study(preset, sets, sets.train.images, sets.train.y, runs.specs({"SGD": (0.0,)}, seeds), sgd_folder))
    return pd.concat(rows, ignore_index=True)


def waterbirds_headroom_runs(preset, seeds=TUNING_SEEDS, checkpoints: Path | None = None) -> pd.DataFrame:
    """The headroom stages of a Waterbirds preset, in the dominoes' columns: ``hard_probe`` is the core (object)
    probe, ``easy_probe`` the background probe, ``test_acc`` the average test accuracy. The hard-only control
    trains on a set whose background agrees with the object in half the images (it does not predict it); the
    pixel probe is fit on the validation set's pixels and tested on the test set's."""
    sets = waterbirds.load_sets(preset)
    control = waterbirds.waterbirds_standin("train", preset.n_train, seed=0, agreement=0.5,
                                            image_size=preset.image_size, objects=preset.objects)
    build = lambda: waterbirds.build_model(preset, sets)  # noqa: E731

    def evaluate_on(train):
        def evaluate(model, spec) -> dict:
            scores = waterbirds.evaluate(model, sets, preset.gini_rho)
            accuracy = float((runs.predict(model, train.images) == train.y).double().mean())
            return {"hard_probe": scores["core_probe"], "easy_probe": scores["background_probe"],
                    "test_acc": scores["avg_acc"], "train_acc": accuracy, "gini_real": scores["gini_real"],
                    "gini_phantom": scores["gini_phantom"]}
        return evaluate

    errors = pixel_probe_errors(sets.val, sets.test)
    rows = [pd.DataFrame([{"label": "pixels", "optimizer": "pixels", "rho": 0.0, "seed": 0,
                           "hard_probe": 1 - errors["y"], "easy_probe": 1 - errors["place"]}]),
            runs.evaluate_untrained(build, seeds, evaluate_on(sets.train))]
    for label, train, sub in (("hard only", control, "hard_only"), ("SGD", sets.train, "runs")):
        folder = None if checkpoints is None else checkpoints / sub
        study = runs.run_study(build, train.images, train.y, runs.specs({"SGD": (0.0,)}, seeds), preset.train,
                               evaluate_on(train), checkpoint_dir=folder, progress=False).frame
        rows.append(study.assign(label=label, optimizer=label))
    return pd.concat(rows, ignore_index=True)


def grid_runs(preset: CifarMnistPreset, optimizers: dict, seeds, checkpoints: Path | None = None,
              sets: cifar_mnist.DominoSets | None = None) -> pd.DataFrame:
    """``preset``'s training set with every (optimizer, radius) of ``optimizers`` for every seed. ``sets``:
    ``preset``'s domino sets, when already loaded (they depend on its data fields only, not on its training)."""
    sets = cifar_mnist.load_sets(preset) if sets is None else sets
    folder = None if checkpoints is None else checkpoints / "runs"
    return _study(preset, sets, sets.train.images, sets.train.y, runs.specs(optimizers, seeds), folder)


def best_radii(frame: pd.DataFrame, metric: str = "hard_probe") -> dict:
    """``{'SAM': rho, 'LSAM': rho}``: for each optimizer of ``frame`` but SGD, the radius with the highest median
    ``metric`` over seeds (the smaller radius on a tie)."""
    medians = frame[frame.optimizer.isin(("SAM", "LSAM"))].groupby(["optimizer", "rho"])[metric].median()
    return {opt: float(group.sort_index().idxmax()[1]) for opt, group in medians.groupby(level="optimizer")}


def lever_runs(grid: pd.DataFrame, chosen: dict) -> dict:
    """What each lever trains: SGD and the one optimizer of ``chosen`` (at its radius) whose tuning runs in
    ``grid`` have the higher median ``hard_probe`` (SAM on a tie)."""
    medians = {opt: grid[(grid.optimizer == opt) & (grid.rho == rhos[0])].hard_probe.median()
               for opt, rhos in chosen.items() if opt != "SGD"}
    best = max(sorted(medians), key=lambda opt: (medians[opt], opt == "SAM"))
    return {"SGD": (0.0,), best: chosen[best]}


def run_bed(name: str, checkpoints: Path | None = None) -> pd.DataFrame:
    """Every run of test bed ``name`` (see the module's docstring), one row per run with :data:`COLUMNS`."""
    bed = BEDS[name]
    folder = None if checkpoints is None else checkpoints / name.replace(" ", "_")
    if isinstance(bed.preset, waterbirds.WaterbirdsPreset):
        frame = waterbirds_headroom_runs(bed.preset, TUNING_SEEDS, folder)
        return frame.assign(lever="bed", seed_set="tuning", bed=name)[COLUMNS]
    sets = cifar_mnist.load_sets(bed.preset)  # once: the levers change the training, not the data
    tuning = headroom_runs(bed.preset, TUNING_SEEDS, folder, sets)
    frames = [tuning.assign(lever="bed", seed_set="tuning")]
    if bed.radii:
        grid = grid_runs(bed.preset, bed.radii, TUNING_SEEDS, folder, sets)
        frames.append(grid.assign(lever="bed", seed_set="tuning"))
        chosen = {"SGD": (0.0,), **{opt: (rho,) for opt, rho in best_radii(grid).items()}}
        if bed.held_out:
            held = grid_runs(bed.preset, chosen, HELD_OUT_SEEDS, folder, sets)
            frames.append(held.assign(lever="bed", seed_set="held out"))
        best = lever_runs(grid, chosen)
        for lever, preset in bed.levers.items():
            lever_folder = None if folder is None else folder / lever.replace(" ", "_")
            lever_rows = grid_runs(preset, best, TUNING_SEEDS, lever_folder, sets)
            frames.append(lever_rows.assign(lever=lever, seed_set="tuning"))
    return pd.concat(frames, ignore_index=True).assign(bed=name)[COLUMNS]


def results_path() -> Path:
    """Where the study's rows live (shipped with samlib)."""
    return Path(__file__).parent / "testbeds_data" / "testbeds.csv"


def load_study() -> pd.DataFrame:
    """The study's rows as written by ``python -m samlib.experiments.testbeds run``."""
    path = results_path()
    if not path.is_file():
        raise FileNotFoundError(f"no test-bed study at {path}: run python -m samlib.experiments.testbeds run")
    return pd.read_csv(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--beds", nargs="+", choices=sorted(BEDS), default=list(BEDS),
                        help="the test beds to (re)run; the others keep their rows")
    parser.add_argument("--checkpoints", type=Path, default=None, help="folder for per-run checkpoints (resume)")
    args = parser.parse_args(argv)
    from .. import setup

    setup()
    mine = pd.DataFrame(columns=COLUMNS)
    for name in args.beds:
        start = time.time()
        frame = run_bed(name, args.checkpoints)
        mine = pd.concat([mine[mine.bed != name], frame], ignore_index=True)
        _write_merged(mine)
        print(f"{name}: {len(frame)} runs in {time.time() - start:.0f} s -> {results_path()}", flush=True)


def _write_merged(mine: pd.DataFrame) -> None:
    """Write this process's beds over the file's other beds (read just before, so that two processes running
    different beds keep each other's rows), in :data:`BEDS` order, atomically."""
    path = results_path()
    kept = load_study() if path.is_file() else pd.DataFrame(columns=COLUMNS)
    merged = pd.concat([kept[~kept.bed.isin(set(mine.bed))], mine], ignore_index=True)
    order = {bed: i for i, bed in enumerate(BEDS)}
    merged = merged.sort_values("bed", key=lambda s: s.map(order), kind="stable")
    write_text_atomic(merged[COLUMNS].round(6).to_csv(index=False), path)

if __name__ == "__main__":
    main()
