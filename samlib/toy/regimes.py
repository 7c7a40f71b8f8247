"""The toy where recent theory says SAM's feature effect lives: a small initialisation, probes read along training
and at matched training loss, and ascents on a few examples (m-sharpness).

Each **regime** is the toy chapter's settings (:data:`~samlib.toy.sweep.BOOK_SETTINGS`) with one change: every
initial weight times alpha (:data:`ALPHAS`), or m-SAM, each mini-batch of 50 split into groups of m examples that
take their own ascents (:data:`ASCENT_BATCHES`; ``ToySettings.ascent_batch``). Radii are in units of alpha
(:data:`RHO_UNITS`: LSAM and all-layer SAM), since the perturbation must shrink with the weights it perturbs.

The protocol, per regime:

1. **Tuning** (seeds 0-19): SGD and every radius of LSAM and SAM, probed at the end.
2. **The radius**, per optimizer (:func:`chosen_radii`): among the radii whose median final training error is at
   most :data:`FITS` on every complexity (the network fits its data, the paper's regime), the one with the lowest
   median hard-probe error averaged over the complexities; if none fits, the smallest.
3. **Held out** (seeds 600-639, used by nothing else in the book): SGD and the chosen radii, read at the steps of
   :data:`TRAJECTORY` (the probe trajectories), at the first of :data:`SNAPSHOTS` where the whole training set's
   loss falls below each of :data:`LOSS_LEVELS` and where the training error first reaches 0 (``fit``), and at the
   end.

    python -m samlib.toy.regimes run [--regimes NAME ...] [--checkpoints DIR]

writes ``study_data/regimes.csv`` beside this module, one row per run and read, each seed set of a regime as soon
as it ends (atomically, under a lock); what the file holds already is skipped. About an hour on one thread of a
busy 2-core machine: 8 to 15 minutes a regime with one ascent, 19 and 25 minutes for m-SAM's two.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from .. import checks
from ..protocol import Lever, ShippedRows, run_lever, run_parts, select
from ..results import paired_effect_of
from .results import probe_errors
from .study import lever_table
from .sweep import BOOK_SETTINGS, SweepResult, ToySettings, grid, losses_and_logits, train_sweep, training_data

__all__ = ["REGIMES", "SEED_SETS", "ALPHAS", "ASCENT_BATCHES", "RHO_UNITS", "TURNS", "TUNING_SEEDS", "HELD_OUT_SEEDS",
           "FITS", "LOSS_LEVELS", "SNAPSHOTS", "TRAJECTORY", "READS", "COLUMNS", "ROWS", "load_regimes",
           "train_reads", "run_regime", "chosen_radii", "regime_table", "paired", "best_regime", "matched_table",
           "fitting_effects",
           "ratio_along_training", "trajectories", "main"]

ALPHAS = (1.0, 0.3, 0.1, 0.03)
ASCENT_BATCHES = (10, 2)
RHO_UNITS = {"LSAM": (0.25, 0.5, 1.0, 2.0), "SAM": (0.01, 0.02, 0.05, 0.1)}
"""Each optimizer's radii in units of alpha: the toy chapter's radii (LSAM 0.5 and 1, SAM 0.02 and 0.05) and one
step either side."""
TURNS = (0.5, 0.75, 1.0)
TUNING_SEEDS = tuple(range(20))
HELD_OUT_SEEDS = tuple(range(600, 640))  # read only after the regimes, their radii and the selection rule were fixed
FITS = 0.01
"""The training error at or below which a network fits its data (the paper's regime)."""
LOSS_LEVELS = (0.1, 0.01, 0.001)
SNAPSHOTS = (*range(10, 300, 10), *range(300, 3000, 100))
"""The steps after which a held-out run is read for the matched reads: every 10 steps while the data are being fit
(most runs fit within the first 200), every 100 after."""
TRAJECTORY = (0, 20, 50, 100, 200, 500, 1000, 1500, 2000, 2500, 3000)
"""The steps at which the probe trajectories are read (denser early, where the theory places the effect)."""
READS = ("trajectory", *(f"loss<{level:g}" for level in LOSS_LEVELS), "fit", "final")
COLUMNS = ["regime", "seed_set", "optimizer", "rho", "rho_units", "turns", "seed", "read", "step", "train_loss",
           "train_error", "hard_error", "easy_error"]


def _regime(description: str, settings: ToySettings) -> Lever:
    """A regime: the toy chapter's ``settings`` with one change, described in words, its radii :data:`RHO_UNITS`
    times ``settings.init_scale``, on the complexities :data:`TURNS`."""
    radii = {opt: tuple(round(u * settings.init_scale, 6) for u in units) for opt, units in RHO_UNITS.items()}
    return Lever(description, settings, radii, turns=TURNS)


B = BOOK_SETTINGS
REGIMES = {
    **{f"init {a:g}": _regime(f"every initial weight times {a:g}", replace(B, init_scale=a)) for a in ALPHAS},
    **{f"ascent per {m}": _regime(f"an ascent per group of {m} of the batch's 50 examples (m-SAM)",
                                  replace(B, ascent_batch=m)) for m in ASCENT_BATCHES},
}
SEED_SETS = {"tuning": TUNING_SEEDS, "held-out": HELD_OUT_SEEDS}


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    order = {name: i for i, name in enumerate(REGIMES)}
    return frame.sort_values(["regime", "seed_set"], key=lambda c: c.map(order) if c.name == "regime"
                             else c.map({"tuning": 0, "held-out": 1}), kind="stable")


ROWS = ShippedRows("regimes study", Path(__file__).parent / "study_data" / "regimes.csv",
                   "python -m samlib.toy.regimes run", tuple(COLUMNS), 6, _in_order)
"""The regimes' rows, one per run and read: ``study_data/regimes.csv`` beside this module."""
load_regimes = ROWS.load


@torch.no_grad()
def _fit_curves(result: SweepResult, steps: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every run's loss and error on its whole training set after each of ``steps`` steps: two (S, R) tensors."""
    data = training_data(result.runs, result.settings)
    batch = tuple(torch.stack([getattr(d, k) for d in data]) for k in ("x_easy", "x_hard", "y"))
    losses, errors = [], []
    for step in steps:
        loss, f = losses_and_logits(result.params_at(step), batch, result.settings)
        losses.append(loss)
        errors.append((batch[2] * f <= 0).to(loss.dtype).mean(1))
    return torch.stack(losses), torch.stack(errors)


def _first(below: torch.Tensor, steps: list[int]) -> list[float]:
    """Per run (column of ``below``, (S, R) booleans), the first of ``steps`` where it holds, else NaN."""
    hit = below.any(0)
    first = below.to(torch.int8).argmax(0)
    return [float(steps[i]) if h else math.nan for i, h in zip(first.tolist(), hit.tolist())]


def train_reads(result: SweepResult, trajectory: bool = True) -> pd.DataFrame:
    """The reads of every run of ``result`` (:data:`READS`): its training loss and error on the whole training set
    and its hard and easy probe errors. With ``trajectory`` (the sweep kept the snapshots of
    :data:`SNAPSHOTS` and :data:`TRAJECTORY`), also at the steps of :data:`TRAJECTORY`, at the first snapshot below
    each loss level and at the first with no training error (NaN where a run never gets there); else only at the
    end."""
    total = result.settings.steps
    steps = sorted({0, *result.snapshots, total}) if trajectory else [total]
    loss, error = _fit_curves(result, steps)  # every kept step: the matched reads need them all
    when = {"final": [float(total)] * len(result.runs)}
    if trajectory:
        for level in LOSS_LEVELS:
            when[f"loss<{level:g}"] = _first(loss < level, steps)
        when["fit"] = _first(error == 0, steps)
    wanted = {(read, i): step for read, per_run in when.items() for i, step in enumerate(per_run)}
    if trajectory:
        wanted.update({(f"trajectory {s}", i): float(s) for s in steps if s in TRAJECTORY
                       for i in range(len(result.runs))})
    probes = {}
    for step in sorted({s for s in wanted.values() if not math.isnan(s)}):
        runs = sorted({i for (_, i), s in wanted.items() if s == step})
        rows = probe_errors(result, step=int(step), runs=runs)
        probes.update({(int(step), i): r for i, r in zip(runs, rows[["hard_error", "easy_error"]].itertuples())})
    out = []
    for (read, i), step in wanted.items():
        run, known = result.runs[i], not math.isnan(step)
        at = steps.index(int(step)) if known else None
        out.append({"optimizer": run.optimizer, "rho": run.rho, "turns": run.turns, "seed": run.seed,
                    "read": read.split(" ")[0], "step": step,
                    "train_loss": loss[at, i].item() if known else math.nan,
                    "train_error": error[at, i].item() if known else math.nan,
                    "hard_error": probes[int(step), i].hard_error if known else math.nan,
                    "easy_error": probes[int(step), i].easy_error if known else math.nan})
    return pd.DataFrame(out)


def _sweeps(regime: Lever, radii: dict[str, tuple[float, ...]], seeds) -> list[list]:
    """The runs of a seed set in two sweeps: SGD with LSAM (one pass a step), and SAM (two)."""
    return [grid({"SGD": [0.0], "LSAM": list(radii["LSAM"])}, list(regime.turns), list(seeds)),
            grid({"SAM": list(radii["SAM"])}, list(regime.turns), list(seeds))]


def _train(regime: Lever, radii: dict, seed_set: str, seeds, checkpoint: Path | None, progress=None) -> pd.DataFrame:
    """The trainer of :func:`samlib.protocol.run_lever`: ``regime`` at ``radii`` on ``seeds``, every run read at
    the end (:func:`train_reads`) and, on the held-out seeds, along training too."""
    held_out = seed_set == "held-out"
    kept = sorted({*SNAPSHOTS, *TRAJECTORY})
    snapshots = tuple(s for s in kept if 0 < s < regime.settings.steps) if held_out else ()
    frames = []
    for k, runs in enumerate(_sweeps(regime, radii, seeds)):
        path = None if checkpoint is None else checkpoint.with_name(f"{checkpoint.name}.{k}.pt")
        result = train_sweep(runs, regime.settings, checkpoint=path, progress=progress, snapshots=snapshots)
        frames.append(train_reads(result, trajectory=held_out))
    rows = pd.concat(frames, ignore_index=True)
    return rows.assign(rho_units=rows.rho / regime.settings.init_scale)


def chosen_radii(frame: pd.DataFrame, name: str) -> dict[str, float]:
    """Regime ``name``'s radius per optimizer, chosen on the tuning seeds (the module's rule): among the radii that
    fit (median final training error at most :data:`FITS` on every complexity), the lowest median hard-probe error
    averaged over the complexities; the smallest radius where none fits."""
    table = regime_table(select(frame, regime=name, seed_set="tuning"))
    chosen = {}
    for optimizer in RHO_UNITS:
        part = table.xs(optimizer, level="optimizer")
        by_rho = part.groupby(level="rho")
        fits = by_rho["train error"].max() <= FITS
        errors = by_rho["median"].mean()[fits]
        chosen[optimizer] = float(errors.idxmin()) if len(errors) else float(part.index.get_level_values("rho").min())
    return chosen


def regime_table(frame: pd.DataFrame, read: str = "final") -> pd.DataFrame:
    """Per regime, seed set, optimizer, radius and complexity, the book's one statistic at ``read`` (one of
    :data:`READS` but "trajectory"): :func:`samlib.toy.study.lever_table` of those rows (the regime in the ``lever``
    level). Runs that never reached the read are left out with their SGD twin (``pairs`` counts those kept)."""
    checks.choice("read", read, READS[1:])
    rows = frame[frame.read == read].dropna(subset=["hard_error"]).rename(columns={"regime": "lever"})
    tables = []
    for (lever, seed_set, optimizer, rho), part in rows[rows.optimizer != "SGD"].groupby(
            ["lever", "seed_set", "optimizer", "rho"], sort=False):
        sgd = rows[(rows.lever == lever) & (rows.seed_set == seed_set) & (rows.optimizer == "SGD")]
        pairs = sgd.merge(part[["turns", "seed"]], on=["turns", "seed"])
        tables.append(lever_table(pd.concat([pairs, part.merge(pairs[["turns", "seed"]], on=["turns", "seed"])])))
    return pd.concat(tables).rename_axis(index={"lever": "regime"})


def paired(frame: pd.DataFrame, name: str, optimizer: str, read: str = "final", seed_set: str = "held-out"):
    """Regime ``name``'s pairs over every (seed, complexity) at ``read``: ``optimizer`` at its chosen radius
    (:func:`chosen_radii`) and its SGD twin, both having reached the read; with the optimizer's median training
    error there. None where the seed set has no such read (the tuning seeds are read at the end only)."""
    rows = select(frame, regime=name, seed_set=seed_set, read=read)
    rows = rows.dropna(subset=["hard_error"])
    if rows.empty:
        return None
    rho = chosen_radii(frame, name)[optimizer]
    mine = rows[(rows.optimizer == optimizer) & (rows.rho == rho)].set_index(["seed", "turns"])
    sgd = rows[rows.optimizer == "SGD"].set_index(["seed", "turns"])
    both = mine.index.intersection(sgd.index).sort_values()
    return (mine.loc[both, "hard_error"].to_numpy(), sgd.loc[both, "hard_error"].to_numpy(),
            float(mine.loc[both, "train_error"].median()))


def best_regime(frame: pd.DataFrame, names, optimizer: str) -> str:
    """Of the regimes ``names``, the one whose ``optimizer`` (at its chosen radius) has the lowest median paired
    ratio to SGD on the tuning seeds at the end: the regime a reader would pick before the held-out seeds."""
    def ratio(name):
        run, sgd, _ = paired(frame, name, optimizer, "final", "tuning")
        return paired_effect_of(run, sgd, scale="ratio", better="lower").median
    return min(names, key=ratio)


def matched_table(frame: pd.DataFrame, seed_set: str = "held-out") -> pd.DataFrame:
    """:func:`regime_table` at every matched read (each loss level, ``fit``) and at the end, one block per read."""
    return pd.concat({read: regime_table(frame[frame.seed_set == seed_set], read) for read in READS[1:]},
                     names=["read"])


def fitting_effects(frame: pd.DataFrame) -> pd.DataFrame:
    """Every held-out row of :func:`matched_table` (each regime, optimizer, complexity and read: the matched reads
    and the end) whose optimizer fits its training data there (median training error at most :data:`FITS`): where
    the paper's regime would show the effect, if anywhere."""
    table = matched_table(frame)
    return table[table["train error"] <= FITS]


def ratio_along_training(frame: pd.DataFrame, optimizer: str = "LSAM", seed_set: str = "held-out") -> pd.DataFrame:
    """Per regime (a column), complexity and trajectory step (the index): the median over seeds of ``optimizer``'s
    hard-probe error over its SGD twin's, read at the same step (1 at step 0, where both are the same network)."""
    rows = select(frame, seed_set=seed_set, read="trajectory")
    ratios = {}
    for name, part in rows.groupby("regime", sort=False):
        part = part.set_index(["seed", "turns", "step"])
        mine = part[part.optimizer == optimizer].hard_error
        ratios[name] = (mine / part[part.optimizer == "SGD"].hard_error.reindex(mine.index)).groupby(
            ["turns", "step"]).median()
    return pd.DataFrame(ratios)


def trajectories(frame: pd.DataFrame, name: str, seed_set: str = "held-out") -> pd.DataFrame:
    """Regime ``name``'s probe trajectories: per optimizer, radius, complexity and step, the median and quartiles of
    the hard and the easy probe errors over seeds."""
    rows = select(frame, regime=name, seed_set=seed_set, read="trajectory")
    stats = {"median": "median", "q25": lambda v: v.quantile(0.25), "q75": lambda v: v.quantile(0.75)}
    return rows.groupby(["optimizer", "rho", "turns", "step"])[["hard_error", "easy_error"]].agg(list(stats.values())
                                                                                               ).set_axis(
        pd.MultiIndex.from_product([["hard_error", "easy_error"], list(stats)]), axis=1)


def run_regime(name: str, checkpoints: Path | None = None, progress: bool | None = None) -> list[str]:
    """Train what the shipped file lacks of regime ``name``, one seed set at a time (each written as it ends): the
    tuning seeds, then the held-out seeds at the radii chosen on them. Returns the seed sets trained."""
    regime, done = REGIMES[name], ROWS.done(("regime", "seed_set"))
    train = lambda *args: _train(*args, progress=progress)  # noqa: E731
    trained = []
    for seed_set, seeds in SEED_SETS.items():
        if (name, seed_set) in done:
            continue
        if seed_set != "tuning":
            regime = replace(regime, radii={opt: (rho,) for opt, rho in chosen_radii(ROWS.load(), name).items()})
        ROWS.replace(run_lever(name, regime, train, {seed_set: seeds}, checkpoints=checkpoints, column="regime"),
                     lambda kept, seed_set=seed_set: (kept.regime == name) & (kept.seed_set == seed_set))
        trained.append(seed_set)
    return trained


def main(argv=None) -> None:
    run_parts(argv, "python -m samlib.toy.regimes", __doc__.splitlines()[0], "regimes", REGIMES,
              lambda name, folder: ", ".join(run_regime(name, folder)) or "nothing left", ROWS.path)


if __name__ == "__main__":
    main()
