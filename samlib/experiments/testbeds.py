"""Test beds with headroom: the study behind the "Headroom first" chapter (``book/testbeds.ipynb``).

Each test bed is a domino preset (:class:`samlib.experiments.cifar_mnist.CifarMnistPreset`) or a Waterbirds one
(:class:`samlib.experiments.waterbirds.WaterbirdsPreset`, whose hard feature is the object and whose probes are
refit on the group-balanced validation set). For each, the study measures the headroom of the hard feature's
probe (:mod:`samlib.experiments.headroom`) and then, where the bed has radii, compares SGD, SAM and LSAM:

1. **tuning seeds** (:data:`TUNING_SEEDS`): the floor, the hard-only ceiling and every radius of the bed's grid;
2. the radius of SAM and of LSAM with the best median hard probe on the tuning seeds (:func:`best_radii`);
3. **held-out seeds** (:data:`HELD_OUT_SEEDS`), first used after step 2: SGD and the two chosen runs;
4. the **levers** of the bed (:class:`samlib.protocol.Lever`: the bed's preset with one change), each as in steps
   1-3 (:func:`samlib.protocol.run_lever`): on the tuning seeds SGD and the lever's radii (by default SAM and
   LSAM at the bed's chosen radii), then on the held-out seeds SGD and the one run with the best tuning median
   (:func:`best_run`). A lever with ``stages`` also evaluates every run after each of those epoch counts (the run
   continued from its checkpoint).

    python -m samlib.experiments.testbeds run [--beds NAME ...] [--levers NAME ...] [--checkpoints DIR]

writes ``testbeds_data/testbeds.csv`` beside this module (one row per run; the stages go to ``stages.csv``),
atomically after each bed and lever; with ``--checkpoints`` an interrupted study resumes where it stopped. With
``--levers`` only those levers are (re)run, from the bed's radii in the shipped file. The files ship with samlib,
so the chapter prints them in Colab too; :func:`load_study` reads them. About three hours on 2 CPU threads.
A lever that none of the chosen beds has, a bed or lever named twice, and a checkpoint folder that is a file are
refused with argparse's usage line before anything trains.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from .. import results
from ..checkpoint import write_bytes_atomic
from ..optim.registry import run_label
from ..protocol import Lever, ShippedRows, checkpoints_option, refuse_repeats, run_lever, select, slug
from . import cifar_mnist, runs, waterbirds
from .cifar_mnist import CifarMnistPreset
from .runs import TrainConfig

__all__ = ["Bed", "BEDS", "TUNING_SEEDS", "HELD_OUT_SEEDS", "SEED_SETS", "COLUMNS", "headroom_runs", "grid_runs",
           "best_radii", "best_run", "lever_radii", "staged_runs", "train_levers", "run_bed", "rerun_levers",
           "meaningful_gain", "comparison", "lever_summary", "paired_gains", "ROWS", "STAGES", "load_study",
           "STAGE_COLUMNS", "WATERBIRDS_COLUMNS", "ROOM_SHARE", "COMPARISON_COLUMNS", "BED_LABELS"]

TUNING_SEEDS = (0, 1, 2, 3, 4)
HELD_OUT_SEEDS = (100, 101, 102, 103, 104)
SEED_SETS = {"tuning": TUNING_SEEDS, "held out": HELD_OUT_SEEDS}
_SHARED_COLUMNS = ["bed", "lever", "seed_set", "label", "optimizer", "rho", "seed", "hard_probe", "easy_probe",
                   "test_acc", "train_acc", "train_loss", "gini_real", "gini_phantom", "worst_group_acc"]
WATERBIRDS_COLUMNS = list(waterbirds.MORE_COLUMNS)  # the Waterbirds beds' own (samlib.experiments.waterbirds.metrics)
COLUMNS = [*_SHARED_COLUMNS, *WATERBIRDS_COLUMNS]
STAGE_COLUMNS = [*_SHARED_COLUMNS[:7], "epochs", *_SHARED_COLUMNS[7:]]  # the stages are the dominoes' levers
ROOM_SHARE = 0.25  # a meaningful gain on a bed: this share of its room (the ceiling minus SGD's median)
COMPARISON_COLUMNS = ["median", "median gain", "low", "high", "wins", "seeds", "p", "verdict"]


@dataclass(frozen=True)
class Bed:
    """A test bed: its preset (dominoes or Waterbirds), what it is in words, the radii to tune (``{'SAM': (...),
    'LSAM': (...)}``; empty: headroom only), whether the chosen radii are re-run on the held-out seeds, and its
    levers (``{name: Lever}``, dominoes only)."""

    preset: CifarMnistPreset | waterbirds.WaterbirdsPreset
    description: str
    radii: dict = field(default_factory=dict)
    held_out: bool = False
    levers: dict = field(default_factory=dict)


_PAPER_NET = dict(model="paper_cnn", n_train=3000, n_probe=1000, train=TrainConfig(epochs=20))
_CLUTTERED_CM = cifar_mnist.CLUTTERED
_FMNIST_MNIST = CifarMnistPreset(data="fmnist_mnist", **_PAPER_NET)
_GRID = {"SAM": (0.05, 0.2), "LSAM": (0.1, 0.3, 1.0)}
_VARIED_BIRDS = replace(waterbirds.BOOK, object_sizes=(8, 20), object_contrast=(0.3, 1.0), agreement=1.0)


def _levers(preset: CifarMnistPreset) -> dict:
    def train(**change) -> CifarMnistPreset:
        return replace(preset, train=replace(preset.train, **change))

    return {
        "weight decay 5e-3": Lever("bounds the margins, so that SAM's phantom loss stays alive after the easy "
                                   "feature fits", train(weight_decay=5e-3)),
        "relative radius": Lever("the radius is ρ‖w‖ over the perturbed weights (the toy chapter's fix for a window "
                                 "that closes as they grow)", train(relative_rho=True),
                                 {"SAM": (0.005, 0.02), "LSAM": (0.1, 0.4)}),
        "40 epochs": Lever("twice as long, probed after 5, 10, 20 and 40 epochs", train(epochs=40),
                           stages=(5, 10, 20)),
        "batch size 32": Lever("a quarter of the batch (m-sharpness: SAM's ascent is taken per batch, so smaller "
                               "batches make it more local), 4x the steps", train(batch_size=32)),
    }


BEDS = {
    "cluttered CIFAR-MNIST": Bed(_CLUTTERED_CM, "MNIST 0/1 over trouser/dress at random scale and place on textures, "
                                                "the paper's network", _GRID, True, _levers(_CLUTTERED_CM)),
    "CIFAR-MNIST stand-in": Bed(cifar_mnist.STAND_IN, "the CIFAR-MNIST chapter's first bed: MNIST 0/1 over "
                                                      "pullover/coat, the book's SmallCNN"),
    "FMNIST-MNIST": Bed(_FMNIST_MNIST, "MNIST 0-4 over Fashion-MNIST 0-4 (5 classes), the paper's network"),
    "Waterbirds stand-in": Bed(waterbirds.BOOK, "the Waterbirds chapter's bed: tops vs footwear on land or water "
                                                "photos, the book's SmallCNN; hard: the object, easy: the background",
                               {opt: radii for opt, radii in waterbirds.BOOK.optimizers.items() if opt != "SGD"}, True),
    "varied-object Waterbirds": Bed(_VARIED_BIRDS, "the Waterbirds stand-in with tops vs footwear at a random size "
                                                   "(8-20 px) and contrast (0.3-1), and a background that always "
                                                   "agrees with the object in training; the book's SmallCNN",
                                    {"SAM": (0.02, 0.1), "LSAM": (0.05, 0.3)}, True),
}

BED_LABELS = {
    "cluttered CIFAR-MNIST": "MNIST over cluttered FMNIST (our CIFAR-MNIST)",
    "CIFAR-MNIST stand-in": "MNIST over centred FMNIST (first stand-in)",
    "FMNIST-MNIST": "FMNIST-MNIST",
    "Waterbirds stand-in": "Waterbirds stand-in",
    "varied-object Waterbirds": "varied-object Waterbirds",
}
"""What a table or a figure calls each bed: what the bed is made of (none holds a CIFAR image). The keys of
:data:`BEDS` stay the shipped studies' names."""


def _metrics(preset, sets, train):
    """A network's row: the bed's :func:`metrics <samlib.experiments.cifar_mnist.metrics>` and its accuracy on
    ``train`` (the set it was trained on)."""
    def evaluate(model, spec) -> dict:
        accuracy = float((runs.predict(model, train.images) == train.y).double().mean())
        return {**preset.bed.metrics(model, sets, preset), "train_acc": accuracy}
    return evaluate


def _study(preset, sets, train, run_specs, folder: Path | None) -> pd.DataFrame:
    """Every run of ``run_specs`` trained on ``train`` (resumable from ``folder``), one row each."""
    build = lambda: preset.bed.build_model(preset, sets)  # noqa: E731
    return runs.run_study(build, train.images, train.y, run_specs, preset.train, _metrics(preset, sets, train),
                          checkpoint_dir=folder, progress=False).frame


def headroom_runs(preset, seeds=TUNING_SEEDS, checkpoints: Path | None = None, sets=None) -> pd.DataFrame:
    """The headroom stages of ``preset`` (:data:`samlib.experiments.headroom.STAGES`) in the shared columns: the
    pixel probe (one row, seed 0), the untrained network and the hard-only control for each seed, SGD on the
    training set for each seed. ``sets``: ``preset``'s sets, when already loaded. On Waterbirds ``hard_probe`` is
    the core (object) probe and ``easy_probe`` the background probe (both refit on the validation set); its control
    trains on a set whose background agrees with the object in half the images."""
    bed = preset.bed
    sets = bed.load_sets(preset) if sets is None else sets
    pixels = bed.pixel_probes(sets)
    build = lambda: bed.build_model(preset, sets)  # noqa: E731
    rows = [pd.DataFrame([{"label": "pixels", "optimizer": "pixels", "rho": 0.0, "seed": 0, **pixels}]),
            runs.evaluate_untrained(build, seeds, _metrics(preset, sets, sets.train))]
    sgd = runs.specs({"SGD": (0.0,)}, seeds)
    hard_only = _study(preset, sets, bed.hard_only_set(preset), sgd, _folder(checkpoints, "hard_only"))
    rows.append(hard_only.assign(label="hard only", optimizer="hard only"))
    rows.append(_study(preset, sets, sets.train, sgd, _folder(checkpoints, "runs")))
    return pd.concat(rows, ignore_index=True)


def grid_runs(preset, optimizers: dict, seeds, checkpoints: Path | None = None, sets=None) -> pd.DataFrame:
    """``preset``'s training set with every (optimizer, radius) of ``optimizers`` for every seed. ``sets``:
    ``preset``'s sets, when already loaded (they depend on its data fields only, not on its training)."""
    sets = preset.bed.load_sets(preset) if sets is None else sets
    return _study(preset, sets, sets.train, runs.specs(optimizers, seeds), _folder(checkpoints, "runs"))


def _folder(checkpoints: Path | None, name: str) -> Path | None:
    return None if checkpoints is None else Path(checkpoints) / name


def best_radii(frame: pd.DataFrame, metric: str = "hard_probe") -> dict:
    """``{'SAM': rho, 'LSAM': rho}``: for each optimizer of ``frame`` but SGD, the radius with the highest median
    ``metric`` over seeds (the smaller radius on a tie)."""
    medians = frame[frame.optimizer.isin(("SAM", "LSAM"))].groupby(["optimizer", "rho"])[metric].median()
    return {opt: float(group.sort_index().idxmax()[1]) for opt, group in medians.groupby(level="optimizer")}


def best_run(frame: pd.DataFrame, metric: str = "hard_probe") -> tuple[str, float]:
    """The (optimizer, rho) of ``frame`` with the highest median ``metric``: SAM or LSAM, each at its best radius
    (:func:`best_radii`), SAM on a tie."""
    radii = best_radii(frame, metric)
    medians = {opt: frame[(frame.optimizer == opt) & (frame.rho == rho)][metric].median() for opt, rho in radii.items()}
    best = max(sorted(medians), key=lambda opt: (medians[opt], opt == "SAM"))
    return best, radii[best]


def lever_radii(lever: Lever, chosen: dict) -> dict:
    """What ``lever`` trains on the tuning seeds: SGD and the lever's radii, or (without them) SAM and LSAM at the
    bed's ``chosen`` radii (``{'SAM': rho, 'LSAM': rho}``)."""
    radii = lever.radii if lever.radii is not None else {opt: (rho,) for opt, rho in chosen.items()}
    return {"SGD": (0.0,), **radii}


def staged_runs(preset, optimizers: dict, seeds, stages=(), checkpoints: Path | None = None,
                sets=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`grid_runs` trained to each epoch count of ``stages`` and then to ``preset``'s, every run continuing
    from its checkpoint at the stage before (in a temporary folder without ``checkpoints``). With stages, each
    keeps its own checkpoints (``stage_<epochs>``), so that an interrupted study resumes at any stage. Returns the
    rows at the end and the rows of every stage, the end included, with an ``epochs`` column."""
    counts = (*stages, preset.train.epochs)
    if list(counts) != sorted(set(counts)):
        raise ValueError(f"stages={stages} must increase and stay below the preset's {preset.train.epochs} epochs")
    frames = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) if checkpoints is None else checkpoints
        folders = [folder] if not stages else [folder / f"stage_{epochs}" for epochs in counts]
        for i, (epochs, here) in enumerate(zip(counts, folders)):
            if i:
                _continue_from(folders[i - 1], here, runs.specs(optimizers, seeds))
            staged = replace(preset, train=replace(preset.train, epochs=epochs))
            frames.append(grid_runs(staged, optimizers, seeds, here, sets).assign(epochs=epochs))
    return frames[-1].drop(columns="epochs"), pd.concat(frames, ignore_index=True)


def _continue_from(before: Path, here: Path, run_specs) -> None:
    """Start each run of ``here`` (a stage's checkpoint folder) from its checkpoint in ``before`` (the stage
    before), unless it has one already."""
    (here / "runs").mkdir(parents=True, exist_ok=True)
    for spec in run_specs:
        source, target = before / "runs" / f"{spec.name}.pt", here / "runs" / f"{spec.name}.pt"
        if not target.exists():
            write_bytes_atomic(source.read_bytes(), target)


def _staged(sets) -> Callable:
    """The trainer of :func:`samlib.protocol.run_lever` for a lever of a bed whose sets are ``sets``: every run of
    ``radii`` trained with the lever's stages (:func:`staged_runs`), its rows at every stage with ``epochs``."""
    def train(lever: Lever, radii: dict, seed_set: str, seeds, checkpoint: Path | None) -> pd.DataFrame:
        return staged_runs(lever.settings, radii, seeds, lever.stages, checkpoint, sets)[1]
    return train


def _best_with_sgd(rows: pd.DataFrame) -> dict:
    """What a lever trains on the held-out seeds: SGD and the :func:`best_run` of its tuning ``rows``' end."""
    optimizer, rho = best_run(_at_end(rows))
    return {"SGD": (0.0,), optimizer: (rho,)}


def _at_end(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of every run's last stage, without ``epochs``."""
    return rows[rows.epochs == rows.epochs.max()].drop(columns="epochs")


def train_levers(name: str, levers, chosen: dict, checkpoints: Path | None = None,
                 sets=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of each of ``levers`` (names) of bed ``name``, whose chosen radii are ``chosen``: on the tuning
    seeds :func:`lever_radii`, on the held-out seeds SGD and the :func:`best_run` of the tuning rows
    (:func:`samlib.protocol.run_lever`). Returns one row per run (with ``lever`` and ``seed_set``) and the rows of
    every stage (:func:`staged_runs`)."""
    bed = BEDS[name]
    sets = bed.preset.bed.load_sets(bed.preset) if sets is None else sets  # once: levers change the training only
    frames = []
    for lever_name in levers:
        lever = replace(bed.levers[lever_name], radii=lever_radii(bed.levers[lever_name], chosen))
        frames.append(run_lever(lever_name, lever, _staged(sets), SEED_SETS, _best_with_sgd,
                                _folder(checkpoints, slug(name))))
    stages = pd.concat(frames, ignore_index=True).assign(bed=name) if frames else pd.DataFrame(columns=STAGE_COLUMNS)
    ends = stages[stages.epochs == stages.lever.map(lambda n: bed.levers[n].settings.train.epochs)]
    return ends.drop(columns="epochs").reindex(columns=COLUMNS), stages.reindex(columns=STAGE_COLUMNS)


def _grid(sets) -> Callable:
    """The trainer of :func:`samlib.protocol.run_lever` for a bed itself: :func:`grid_runs` of ``radii``."""
    def train(lever: Lever, radii: dict, seed_set: str, seeds, checkpoint: Path | None) -> pd.DataFrame:
        return grid_runs(lever.settings, radii, seeds, checkpoint, sets)
    return train


def _chosen_with_sgd(rows: pd.DataFrame) -> dict:
    """What a bed trains on the held-out seeds: SGD, and SAM and LSAM at the radii its tuning ``rows`` chose."""
    return {"SGD": (0.0,), **{optimizer: (rho,) for optimizer, rho in best_radii(rows).items()}}


def run_bed(name: str, checkpoints: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of test bed ``name`` (see the module's docstring): one row per run with :data:`COLUMNS`, and
    the stage rows of its levers with :data:`STAGE_COLUMNS`."""
    bed, folder = BEDS[name], _folder(checkpoints, slug(name))
    sets = bed.preset.bed.load_sets(bed.preset)
    frames = [headroom_runs(bed.preset, SEED_SETS["tuning"], folder, sets).assign(lever="bed", seed_set="tuning")]
    stages = pd.DataFrame(columns=STAGE_COLUMNS)
    if bed.radii:
        seed_sets = SEED_SETS if bed.held_out else {"tuning": SEED_SETS["tuning"]}
        rows = run_lever("bed", Lever(bed.description, bed.preset, bed.radii), _grid(sets), seed_sets,
                         _chosen_with_sgd, folder)
        frames.append(rows)
        chosen = best_radii(select(rows, seed_set="tuning"))
        levers, stages = train_levers(name, list(bed.levers), chosen, checkpoints, sets)
        frames.append(levers)
    return pd.concat(frames, ignore_index=True).assign(bed=name).reindex(columns=COLUMNS), stages


def rerun_levers(name: str, levers, checkpoints: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`train_levers` for each of ``levers`` (names) of bed ``name``, with the radii that :func:`best_radii`
    chooses from the bed's tuning rows in the shipped study. The rows as :func:`run_bed` gives them."""
    bed, study = BEDS[name], load_study()
    unknown = [lever for lever in levers if lever not in bed.levers]
    if unknown:
        raise ValueError(f"bed {name!r} has no lever(s) {unknown}: its levers are {list(bed.levers)}")
    grid = study[(study.bed == name) & (study.lever == "bed") & (study.seed_set == "tuning")]  # may be empty
    if not grid.optimizer.isin(("SAM", "LSAM")).any():
        raise ValueError(f"the shipped study has no tuning runs of bed {name!r}: run the whole bed first "
                         f"(python -m samlib.experiments.testbeds run --beds {name!r})")
    return train_levers(name, levers, best_radii(grid), checkpoints)


def meaningful_gain(study: pd.DataFrame, bed: str, metric: str = "hard_probe") -> float:
    """What counts as a meaningful gain on ``bed`` (fixed before its held-out seeds were read): :data:`ROOM_SHARE`
    of its room on the tuning seeds, the hard-only ceiling (1 for an accuracy such as the worst group's) minus SGD's
    median."""
    rows = select(study, bed=bed, lever="bed", seed_set="tuning")
    sgd = select(rows, optimizer="SGD")[metric].median()
    ceiling = select(rows, optimizer="hard only")[metric].median() if metric == "hard_probe" else 1.0
    if not (ceiling > sgd):
        raise ValueError(f"bed {bed!r} has no room in {metric} on its tuning seeds (SGD {sgd}, ceiling {ceiling})")
    return ROOM_SHARE * (ceiling - sgd)


def comparison(rows: pd.DataFrame, metric: str = "hard_probe", meaningful: float | None = None) -> pd.DataFrame:
    """Each run label of ``rows`` (one seed set) against its same-seed SGD runs, by the book's one statistic
    (:func:`samlib.results.paired_comparison`): the run's ``median`` of ``metric``, the ``median gain`` (the median
    paired difference) with its distribution-free 95% interval (``low``, ``high``; NaN with five seeds or fewer),
    the ``wins`` over SGD, the ``seeds``, the sign test's ``p`` and, given the bed's ``meaningful`` gain
    (:func:`meaningful_gain`), the ``verdict``."""
    out = {}
    for optimizer, rho in rows[rows.optimizer != "SGD"][["optimizer", "rho"]].drop_duplicates().itertuples(index=False):
        effect = results.paired_comparison(rows, optimizer, rho, metric)
        out[optimizer, rho] = {"median": select(rows, optimizer=optimizer, rho=rho)[metric].median(),
                               "median gain": effect.median, "low": effect.low, "high": effect.high,
                               "wins": effect.wins, "seeds": effect.n, "p": effect.p_value,
                               "verdict": None if meaningful is None else results.verdict(effect, meaningful)}
    table = pd.DataFrame.from_dict(out, orient="index")  # keyed by (optimizer, rho); labels only for display
    order = [label for label in results.label_order(rows) if label != "SGD"]
    table = table.set_axis([run_label(*key) for key in table.index]).rename_axis("label").loc[order]
    return table if meaningful is not None else table.drop(columns="verdict")


def lever_summary(study: pd.DataFrame, bed: str, metric: str = "hard_probe") -> pd.DataFrame:
    """One row per (lever, run) of ``bed`` that has held-out seeds: the bed's chosen SAM and LSAM (lever "none"),
    then each lever's best run. Columns (seed set, value) for the tuning and the held-out seeds: SGD's median and
    the run's, the median paired gain with its interval, the wins, the seeds and the verdict (:func:`comparison`)."""
    rows, keys = [], []
    meaningful = meaningful_gain(study, bed, metric)
    for lever in ("bed", *BEDS[bed].levers):
        part = study[(study.bed == bed) & (study.lever == lever) & study.optimizer.isin(("SGD", "SAM", "LSAM"))]
        tables = {name: comparison(select(part, seed_set=name), metric, meaningful) for name in SEED_SETS}
        for label in tables["held out"].index:
            row = {}
            for name, table in tables.items():
                cells = table.loc[label]
                values = {"SGD": select(part, seed_set=name, optimizer="SGD")[metric].median(),
                          "median": cells["median"], "median gain": cells["median gain"], "low": cells["low"],
                          "high": cells["high"], "wins": int(cells["wins"]), "seeds": int(cells["seeds"]),
                          "verdict": cells["verdict"]}
                row.update({(name, key): value for key, value in values.items()})
            rows.append(row)
            keys.append(("none" if lever == "bed" else lever, label))
    table = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(keys, names=["lever", "run"]))
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["seeds", None])
    return table


def paired_gains(study: pd.DataFrame, bed: str, metric: str = "hard_probe") -> pd.DataFrame:
    """For every (lever, run) of :func:`lever_summary`: one row per seed (tuning and held out) with ``gain``, the
    run's ``metric`` minus that of the SGD run with the same seed and lever."""
    rows = []
    for lever, run in lever_summary(study, bed, metric).index:
        part = select(study, bed=bed, lever="bed" if lever == "none" else lever)
        for seed_set, sets in part.groupby("seed_set", sort=False):
            sgd = sets[sets.optimizer == "SGD"].set_index("seed")[metric]
            mine = sets[sets.label == run].set_index("seed")[metric]
            rows += [{"lever": lever, "run": run, "seed_set": seed_set, "seed": seed, "gain": value - sgd[seed]}
                     for seed, value in mine.items()]
    return pd.DataFrame(rows)


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows by bed (:data:`BEDS` order), then lever (the bed's rows, then its levers in order); stable."""
    beds = {bed: i for i, bed in enumerate(BEDS)}
    levers = {(bed, lever): i + 1 for bed, b in BEDS.items() for i, lever in enumerate(b.levers)}
    rank = [(beds.get(b, len(beds)), 0 if lever == "bed" else levers.get((b, lever), len(levers) + 1))
            for b, lever in zip(frame.bed, frame.lever)]
    return frame.iloc[sorted(range(len(frame)), key=rank.__getitem__)]


_FOLDER = Path(__file__).parent / "testbeds_data"
_COMMAND = "python -m samlib.experiments.testbeds run"
ROWS = ShippedRows("test-bed study", _FOLDER / "testbeds.csv", _COMMAND, tuple(COLUMNS), 6, _in_order)
"""The study's rows, one per run: ``testbeds_data/testbeds.csv`` beside this module."""
STAGES = ShippedRows("test-bed study's stages", _FOLDER / "stages.csv", _COMMAND, tuple(STAGE_COLUMNS), 6, _in_order)
"""Its levers' rows at every stage, one per lever run and stage: ``testbeds_data/stages.csv``."""


def load_study(stages: bool = False) -> pd.DataFrame:
    """The shipped rows: one per run, or (``stages``) one per lever run and stage."""
    return (STAGES if stages else ROWS).load()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.experiments.testbeds", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--beds", nargs="+", choices=sorted(BEDS), default=list(BEDS),
                        help="the test beds to (re)run; the others keep their rows")
    parser.add_argument("--levers", nargs="+", choices=sorted({n for b in BEDS.values() for n in b.levers}),
                        help="rerun only these levers of the beds that have them; the other rows are kept")
    checkpoints_option(parser)
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    from .. import setup

    setup()
    for name in args.beds:
        levers = [None] if args.levers is None else [n for n in args.levers if n in BEDS[name].levers]
        for lever in levers:
            start = time.time()
            frame, stages = (run_bed(name, args.checkpoints) if lever is None
                             else rerun_levers(name, [lever], args.checkpoints))
            _write_merged(frame, stages, name, lever)
            print(f"{name}{'' if lever is None else ', ' + lever}: {len(frame)} runs in {time.time() - start:.0f} s "
                  f"-> {ROWS.path}", flush=True)


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """What argparse's choices cannot check: names given twice, levers the chosen beds lack."""
    refuse_repeats(parser, beds=args.beds, levers=args.levers)
    for lever in args.levers or []:
        owners = [name for name in args.beds if lever in BEDS[name].levers]
        if not owners:
            beds = [name for name, bed in BEDS.items() if lever in bed.levers]
            parser.error(f"lever {lever!r} is not a lever of the chosen bed(s) {args.beds}: it belongs to {beds}; "
                         f"add --beds {' '.join(repr(b) for b in beds)}")


def _write_merged(frame: pd.DataFrame, stages: pd.DataFrame, bed: str, lever: str | None) -> None:
    """Write ``frame`` and ``stages`` over the files' rows of ``bed`` (only those of ``lever`` unless it is None),
    keeping every other row, in :data:`BEDS` and lever order (:meth:`samlib.protocol.ShippedRows.replace`)."""
    def drop(kept: pd.DataFrame):
        return (kept.bed == bed) & (True if lever is None else kept.lever == lever)

    for rows, shipped in ((frame, ROWS), (stages, STAGES)):
        shipped.replace(rows, drop)


if __name__ == "__main__":
    main()
