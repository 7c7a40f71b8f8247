"""The toy's seed study: the lever table and the held-out seed check, precomputed for the chapters.

Every **lever** (:class:`samlib.protocol.Lever`) is the toy chapter's settings
(:data:`~samlib.toy.sweep.BOOK_SETTINGS`) with one thing changed, trained with SGD and LSAM (IW-only and LR-only for
the ablation rows, SAM for its comparison) on the same seeds. Each is trained twice: on the **tuning** seeds, on
which the book chose its settings and radii, and on the **held-out** seeds, which were used only after every choice
was made. A claim counts if it holds on both.

    python -m samlib.toy.study run [--levers NAME,...] [--checkpoints DIR]
    python -m samlib.toy.study check NAME --rho R --tuning 0:20 --held-out 300:320 [--steps N]

``run`` trains each lever on both seed sets (:func:`samlib.protocol.run_lever` with :func:`train_lever`) and writes
``study_data/levers.csv`` beside this module (one row per run, atomically: :data:`ROWS`); the file ships with
samlib, so the chapters print it in Colab too, and :func:`load_study` reads it. About 40 minutes on 2 CPU threads;
with ``--checkpoints`` an interrupted study resumes where it stopped. ``check`` re-runs one lever on two seed sets
of your choice and prints them side by side (:func:`held_out_check`). Both refuse, with argparse's usage line and
before training, an unknown lever, a lever without LSAM runs to check, a radius the lever does not have, a seed
range that is malformed, empty, negative or overlapping, fewer than :data:`MIN_SEEDS` seeds a set and fewer than
:data:`MIN_STEPS` steps (the statistics they print need more).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .. import checks
from ..optim.registry import ABLATIONS
from ..protocol import Lever, ShippedRows, checkpoints_option, run_lever, select
from ..results import paired_effect
from .presets import OPEN_WINDOW
from .results import final_losses, phantom_ratios, probe_errors, train_errors
from .sweep import BOOK_SETTINGS, Run, ToySettings, grid, train_sweep

__all__ = ["LEVERS", "TURNS", "TUNING_SEEDS", "HELD_OUT_SEEDS", "SEED_SETS", "MEANINGFUL_RATIO", "lever_runs",
           "train_lever", "lever_table", "best_radii", "lever_summary", "ablation_summary", "held_out_check",
           "side_by_side", "ROWS", "load_study", "main"]

TUNING_SEEDS = tuple(range(20))
HELD_OUT_SEEDS = tuple(range(200, 220))  # never looked at before the levers, radii and claims were fixed
MEANINGFUL_RATIO = 0.5
"""What counts as a meaningful effect on the toy, fixed before any held-out seed was read: LSAM's hard-probe error at
most half of its SGD twin's (the median paired ratio), 'LSAM halves SGD's error'. The verdict is the book's one
(:func:`samlib.results.verdict`); the hard-only control, whose median error is at most 0.001, shows that all of
SGD's error could be learned."""


TURNS = (0.5, 0.75, 1.0)  # the chapter's complexities, a lever's unless it says otherwise


def _lever(description: str, settings: ToySettings, rhos: tuple[float, ...], turns: tuple[float, ...] = TURNS,
           optimizers: tuple[str, ...] = ("LSAM",)) -> Lever:
    """A toy lever: ``settings`` trained with SGD and each of ``optimizers`` at every radius of ``rhos``, on every
    complexity of ``turns``."""
    return Lever(description, settings, {optimizer: tuple(rhos) for optimizer in optimizers}, turns=tuple(turns))


def lever_runs(lever: Lever, seeds, radii: dict | None = None) -> list[Run]:
    """SGD and every (optimizer, rho) of ``radii`` (default: the lever's), on every complexity and seed (the
    hard-only control: SGD on the hard input)."""
    if lever.hard_only:
        return [Run("SGD", 0.0, t, s, hard_only=True) for t in lever.turns for s in seeds]
    radii = lever.radii if radii is None else radii
    return grid({"SGD": [0.0], **{opt: list(rhos) for opt, rhos in radii.items()}}, list(lever.turns), list(seeds))


B = BOOK_SETTINGS
_ABLATIONS = ("LSAM", *ABLATIONS)  # LSAM and its two ablations, IW-only and LR-only
LEVERS = {  # name: Lever; the toy chapter prints them in this order
    "baseline": _lever("the chapter's settings", B, (0.5, 1.0)),
    "control": Lever("the hard-only control (SGD, the easy input set to 0)", B, {}, turns=TURNS, hard_only=True),
    "head_weight_decay": _lever("weight decay 0.01 on the head only", replace(B, head_weight_decay=1e-2), (0.5, 1.0)),
    "fixed_head_norm": _lever("a head of fixed norm ||v|| = 0.5", replace(B, head_norm=0.5), (0.45, 0.5, 0.55),
                              turns=(0.5, 0.75, 1.0, 1.25)),
    "fixed_head_norm_1": _lever("a head of fixed norm ||v|| = 1", replace(B, head_norm=1.0), (1.0,),
                                turns=(0.5, 0.75, 1.0, 1.25)),
    "normalized_features": _lever("features scaled to unit RMS over the batch", replace(B, normalize_features=True),
                                  (0.5, 1.0)),
    "squared_hinge": _lever("the squared hinge loss", replace(B, loss="squared_hinge"), (0.5, 1.0)),
    "relative_radius": _lever("the relative radius rho ||v||", replace(B, relative_rho=True), (0.25, 0.5)),
    "relative_radius_head_decay": _lever("the relative radius and head weight decay 0.01",
                                         replace(B, relative_rho=True, head_weight_decay=1e-2), (0.25, 0.5)),
    "longer_window": _lever("10,000 steps instead of 3,000", replace(B, steps=10_000), (0.5, 1.0), turns=(0.5, 0.75)),
    "weaker_easy_feature": _lever("easy scale 0.5 on looser spirals", replace(B, easy_scale=0.5), (0.5, 1.0),
                                  turns=(0.25, 0.375, 0.5)),
    "open_window": _lever("||v|| = 0.5, easy scale 0.5 and learning rate 0.1 together", OPEN_WINDOW,
                          (0.45, 0.5, 0.55), turns=(0.5, 0.75, 1.0, 1.25)),
    "ablations": _lever("the chapter's settings, with the two ablations", B, (1.0,), optimizers=_ABLATIONS),
    "ablations_open_window": _lever("the open window, with the two ablations", OPEN_WINDOW, (0.5,),
                                    turns=(0.75, 1.0, 1.25), optimizers=_ABLATIONS),
    "sam": _lever("all-layer SAM, the chapter's settings (a comparison)", B, (0.02, 0.05), optimizers=("SAM",)),
    "full_batch_small_lr": _lever("full-batch GD, learning rate 0.02, 5,000 steps",
                                  replace(B, batch_size=None, lr=0.02, steps=5000), (1.0,), turns=(0.5, 0.75)),
}
SEED_SETS = {"tuning": TUNING_SEEDS, "held-out": HELD_OUT_SEEDS}
MIN_SEEDS = 2  # a seed set of the check command: the paired wins need two pairs (the interval six, a verdict ten)
MIN_STEPS = 2  # the phantom ratios are medians over the logged steps after the first: step 0 and the last


def train_lever(lever: Lever, radii: dict | None, seed_set: str, seeds, checkpoint: Path | None = None,
                progress: bool | None = None) -> pd.DataFrame:
    """Train ``lever`` at ``radii`` (None: its own) on ``seeds`` (of ``seed_set``, which changes nothing here) in
    one batched sweep, resumable from
    ``checkpoint`` (``.pt`` is added): one row per run, with its probe errors
    (:func:`samlib.toy.results.probe_errors`), its final training loss and error
    (:func:`~samlib.toy.results.train_errors`), its median real and phantom head ratios over training
    (:func:`~samlib.toy.results.phantom_ratios`) and its final head norm. The study's trainer for
    :func:`samlib.protocol.run_lever`."""
    checkpoint = None if checkpoint is None else Path(checkpoint).with_suffix(".pt")
    result = train_sweep(lever_runs(lever, seeds, radii), lever.settings, checkpoint=checkpoint, progress=progress)
    return pd.concat([probe_errors(result).drop(columns="hard_only"), train_errors(result),
                      phantom_ratios(result)[["real_ratio", "phantom_ratio"]], final_losses(result)[["head_norm"]]],
                     axis=1)


def _effects(frame: pd.DataFrame, optimizer: str, rho: float) -> pd.DataFrame:
    pairs = frame[(frame.optimizer == "SGD") | ((frame.optimizer == optimizer) & (frame.rho == rho))]
    out = paired_effect(pairs, optimizer, rho, "hard_error", meaningful=MEANINGFUL_RATIO).rename(
        columns={f"{optimizer} median": "median"})
    out = out.assign(**{"win share": out.wins / out.pairs})
    if "train_error" in pairs:  # does the run still fit its training data? (the study's rows have it)
        fits = pairs.groupby(["optimizer", "turns"]).train_error.median()
        out = out.assign(**{"SGD train error": fits["SGD"], "train error": fits[optimizer]})
    return out


def lever_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per lever, seed set, optimizer, radius and complexity, the book's one statistic
    (:func:`samlib.results.paired_effect`): SGD's and the optimizer's median hard-probe error, the median paired
    ratio with its distribution-free 95% interval, the paired wins, ties and their share, the sign test's ``p``, the
    ``verdict`` against :data:`MEANINGFUL_RATIO` and, where ``frame`` has ``train_error``, SGD's and the optimizer's
    median final training error."""
    rows = []
    keys = frame[frame.optimizer != "SGD"][["lever", "seed_set", "optimizer", "rho"]].drop_duplicates()
    for lever, seed_set, optimizer, rho in keys.itertuples(index=False):
        part = select(frame, lever=lever, seed_set=seed_set)
        effects = _effects(part, optimizer, rho).reset_index()
        rows.append(effects.assign(lever=lever, seed_set=seed_set, optimizer=optimizer, rho=rho))
    table = pd.concat(rows, ignore_index=True)
    return table.set_index(["lever", "seed_set", "optimizer", "rho", "turns"])


def side_by_side(table: pd.DataFrame, lever: str, optimizer: str = "LSAM", rho: float | None = None,
                 columns=("SGD median", "median", "median ratio", "ratio low", "ratio high", "win share",
                          "verdict")) -> pd.DataFrame:
    """One lever's rows of :func:`lever_table`, the tuning seeds beside the held-out seeds: one row per
    (radius, complexity), one column group per seed set."""
    rows = table.xs((lever, optimizer), level=("lever", "optimizer"))
    if rho is not None:
        rows = rows.xs(rho, level="rho", drop_level=False)
    wide = rows[list(columns)].unstack("seed_set")
    order = [s for s in SEED_SETS if s in wide.columns.get_level_values(1)]
    return wide.swaplevel(axis=1).reindex(columns=order, level=0)[order]


def best_radii(table: pd.DataFrame, optimizer: str = "LSAM") -> dict[str, float]:
    """Per lever, the radius of ``optimizer`` whose median error on the *tuning* seeds, averaged over the lever's
    complexities, is lowest: the radius a reader would pick before seeing the held-out seeds."""
    tuning = table.xs(("tuning", optimizer), level=("seed_set", "optimizer"))["median"]
    means = tuning.groupby(level=["lever", "rho"], sort=False).mean()
    return {lever: float(rows.droplevel("lever").idxmin()) for lever, rows in means.groupby(level="lever", sort=False)}


def _ratio_text(row) -> str:
    interval = "" if pd.isna(row["ratio low"]) else f" [{row['ratio low']:.2f}, {row['ratio high']:.2f}]"
    return f"{row['median ratio']:.2f}{interval}"


def lever_summary(table: pd.DataFrame, optimizer: str = "LSAM") -> pd.DataFrame:
    """The lever table to read: per lever (in :data:`LEVERS` order) at its :func:`best_radii` radius and per
    complexity, for each seed set: SGD's median, the optimizer's median, the median paired ratio with its interval,
    the paired wins, the verdict and the optimizer's median final training error, as text."""
    radii = best_radii(table, optimizer)
    rows = []
    for lever, rho in radii.items():
        part = table.xs((lever, optimizer, rho), level=("lever", "optimizer", "rho"))
        for (seed_set, turns), r in part.iterrows():
            rows.append({"lever": LEVERS[lever].description if lever in LEVERS else lever, "rho": rho,
                         "turns": turns, "seeds": seed_set, "SGD": f"{r['SGD median']:.3f}",
                         optimizer: f"{r['median']:.3f}",
                         "ratio [95% interval]": _ratio_text(r),
                         "wins": f"{r.wins}/{r.pairs}", "verdict": r.verdict,
                         f"{optimizer} train error": f"{r['train error']:.3f}" if "train error" in r else "n/a"})
    wide = pd.DataFrame(rows).set_index(["lever", "rho", "turns", "seeds"]).unstack("seeds")
    order = [s for s in SEED_SETS if s in wide.columns.get_level_values(1)]
    wide = wide.swaplevel(axis=1)[order]
    return wide.reindex(pd.unique(pd.Index([r["lever"] for r in rows])), level="lever")


def ablation_summary(table: pd.DataFrame, lever: str) -> pd.DataFrame:
    """An ablation lever's rows of :func:`lever_table` to read: per seed set and complexity, SGD's median and, for
    LSAM and each ablation, one cell of text: the median paired ratio to SGD, the paired wins and the verdict."""
    part = table.xs(lever, level="lever")
    rows = {}
    for (seed_set, optimizer, rho, turns), r in part.iterrows():
        row = rows.setdefault((seed_set, turns), {"SGD median": f"{r['SGD median']:.3f}"})
        row[optimizer] = f"{r['median ratio']:.2f} ({r.wins}/{r.pairs}): {r.verdict}"
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["seeds", "turns"])
    return out.reindex([s for s in SEED_SETS if s in out.index.get_level_values(0)], level=0)


def _disjoint(tuning, held_out) -> tuple[tuple[int, ...], tuple[int, ...]]:
    tuning, held_out = (tuple(checks.seed("seed", s) for s in seeds) for seeds in (tuning, held_out))
    if not tuning or not held_out:
        raise ValueError("tuning and held_out must each hold at least one seed, e.g. range(20) and range(300, 320)")
    common = sorted(set(tuning) & set(held_out))
    if common:
        raise ValueError(f"the tuning and held-out seeds must be disjoint; both hold {common}: pick held-out seeds "
                         "the tuning run never used, e.g. range(300, 320)")
    return tuning, held_out


def held_out_check(lever: Lever, tuning, held_out, name: str = "lever", rho: float | None = None,
                   progress: bool | None = None) -> pd.DataFrame:
    """Train ``lever`` on two disjoint seed sets and return :func:`side_by_side` of the two (LSAM; at ``rho``,
    or every radius of the lever). Both seed sets train in one sweep, so they cost one run."""
    tuning, held_out = _disjoint(tuning, held_out)
    frame = train_lever(lever, None, "tuning", tuning + held_out, progress=progress)
    frame = frame.assign(lever=name, seed_set="tuning")
    frame.loc[frame.seed.isin(held_out), "seed_set"] = "held-out"
    return side_by_side(lever_table(frame), name, rho=rho)


def _in_lever_order(frame: pd.DataFrame) -> pd.DataFrame:
    order = {lever: i for i, lever in enumerate(LEVERS)}
    return frame.sort_values("lever", key=lambda c: c.map(order), kind="stable")


ROWS = ShippedRows("toy study", Path(__file__).parent / "study_data" / "levers.csv", "python -m samlib.toy.study run",
                   order=_in_lever_order)
"""The shipped study: ``study_data/levers.csv`` beside this module, one row per run."""
load_study = ROWS.load


def _seed_range(text: str) -> tuple[int, ...]:
    """START:STOP as the seeds START, ..., STOP - 1: integers, 0 <= START, STOP <= 2**32, at least MIN_SEEDS."""
    start, colon, stop = text.partition(":")
    try:
        start, stop = int(start), int(stop)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP (e.g. 300:320), got {text!r}") from None
    if not colon or start < 0 or stop > checks.SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seeds must lie in [0, 2**32), got {text!r}: pass e.g. 300:320")
    if stop - start < MIN_SEEDS:
        raise argparse.ArgumentTypeError(f"{text!r} holds {max(stop - start, 0)} seed(s), and the check's paired "
                                         f"statistics need at least {MIN_SEEDS}: pass START:STOP with STOP >= "
                                         f"START + {MIN_SEEDS}, e.g. 300:320")
    return tuple(range(start, stop))


def _lever_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in LEVERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown lever(s) {unknown}: use some of {', '.join(LEVERS)}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"lever(s) {twice} listed twice")
    return names


def _checked(parser: argparse.ArgumentParser, args) -> None:
    """What argparse cannot check alone: the lever of ``check``, its radius, the seed sets, the steps."""
    if args.command != "check":
        return
    if args.lever not in LEVERS:
        parser.error(f"unknown lever {args.lever!r}: use one of {', '.join(LEVERS)}")
    lever = LEVERS[args.lever]
    if "LSAM" not in lever.optimizers or lever.hard_only:
        parser.error(f"lever {args.lever} has no LSAM runs to check; pick one of "
                     f"{[n for n, x in LEVERS.items() if 'LSAM' in x.optimizers and not x.hard_only]}")
    if args.rho is not None and args.rho not in lever.rhos:
        parser.error(f"lever {args.lever} has radii {list(lever.rhos)}; got --rho {args.rho:g}")
    common = sorted(set(args.tuning) & set(args.held_out))
    if common:
        parser.error(f"the --tuning and --held-out seeds must be disjoint; both hold {common[:5]}"
                     f"{' ...' if len(common) > 5 else ''}")
    if args.steps is not None and args.steps < MIN_STEPS:
        parser.error(f"--steps {args.steps} is too few: the phantom ratios the check prints are medians over the "
                     f"logged steps after the first, so it needs at least {MIN_STEPS} steps")


def _negative_ranges_joined(argv: list[str]) -> list[str]:
    """``--tuning -3:2`` as ``--tuning=-3:2``, so that argparse hands the range to :func:`_seed_range` (which says
    what is wrong with it) instead of taking it for an option."""
    out = []
    for arg in argv:
        if out and out[-1] in ("--tuning", "--held-out") and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _run(args) -> None:
    for name in list(LEVERS) if args.levers is None else args.levers:
        rows = run_lever(name, LEVERS[name], train_lever, SEED_SETS, checkpoints=args.checkpoints)
        path = ROWS.replace(rows, drop=lambda kept, name=name: kept.lever == name)
        print(f"{name}: {len(rows)} runs written to {path}", flush=True)


def _check(args) -> None:
    lever = LEVERS[args.lever]
    if args.rho is not None:
        lever = replace(lever, radii={optimizer: (args.rho,) for optimizer in lever.optimizers})
    if args.steps is not None:
        lever = replace(lever, settings=replace(lever.settings, steps=args.steps))
    table = held_out_check(lever, args.tuning, args.held_out, args.lever, args.rho)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samlib.toy.study", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the levers on the tuning and held-out seeds; write the study")
    run.add_argument("--levers", type=_lever_names,
                     help=f"comma-separated names (default: all of {', '.join(LEVERS)})")
    checkpoints_option(run)
    check = commands.add_parser("check", help="one lever on two disjoint seed sets, side by side")
    check.add_argument("lever", help=f"one of {', '.join(LEVERS)}")
    check.add_argument("--rho", type=float, help="one LSAM radius of the lever (default: all)")
    check.add_argument("--tuning", type=_seed_range, default=TUNING_SEEDS, help="START:STOP (default 0:20)")
    check.add_argument("--held-out", type=_seed_range, default=tuple(range(300, 320)),
                       help="START:STOP (default 300:320)")
    check.add_argument("--steps", type=int, help="shorter runs, for a quick look (default: the lever's)")
    args = parser.parse_args(_negative_ranges_joined(sys.argv[1:] if argv is None else list(argv)))
    _checked(check, args)
    from .. import setup

    setup()  # the book's seed, threads and kernels (samlib.repro.configure), as the chapters run
    (_run if args.command == "run" else _check)(args)


if __name__ == "__main__":
    main(sys.argv[1:])
