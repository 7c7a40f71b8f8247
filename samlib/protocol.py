"""The shipped-study protocol, written once: what every precomputed study of the book is made of.

A study compares optimizers on **levers** (:class:`Lever`: a chapter's settings with one change, its radii and, for
the toy, its complexities) over **seed sets**: the *tuning* seeds, on which every setting and radius is chosen,
then the *held-out* seeds, read only after. :func:`run_lever` trains one lever on its seed sets in order, choosing
what the later sets train from the rows of the earlier ones. The rows ship beside their package as a CSV
(:class:`ShippedRows`): one loader that says how to regenerate a missing file, and one atomic replacement of a
study's rows under a file lock, so that processes running other parts of a study keep each other's rows. The command
lines share their checks (:func:`checkpoints_option`, :func:`refuse_repeats`), and every reader of the rows picks
them with one selector (:func:`select`).

The studies are short declarations on top of it: :mod:`samlib.toy.study`, :mod:`samlib.toy.regimes`,
:mod:`samlib.experiments.testbeds`, :mod:`samlib.experiments.levers`, :mod:`samlib.experiments.replication`,
:mod:`samlib.experiments.lr_scaling` and :mod:`samlib.memorization.study`.
"""
from __future__ import annotations

import argparse
import fcntl
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import checks
from .checkpoint import write_text_atomic

__all__ = ["Lever", "run_lever", "slug", "ShippedRows", "every_row", "select", "checkpoints_option", "refuse_repeats",
           "run_parts"]


@dataclass(frozen=True)
class Lever:
    """One lever of a study: ``settings`` (a chapter's, with one change) described in words, the radii trained on
    the tuning seeds (``{'LSAM': (0.5, 1.0), ...}``; None: the bed's chosen ones), and what some studies add: the
    toy's complexities (``turns``) and hard-only control (``hard_only``), an image bed's epoch counts also evaluated
    on the way (``stages``), and fixed ``seeds`` for the levers that are not tuned."""

    description: str
    settings: Any
    radii: Mapping[str, tuple[float, ...]] | None = None
    turns: tuple[float, ...] = ()
    stages: tuple[int, ...] = ()
    seeds: tuple[int, ...] = ()
    hard_only: bool = False

    def __post_init__(self):
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"description must say in words what the lever changes, got {self.description!r}")
        if self.radii is not None:
            if not isinstance(self.radii, Mapping):
                raise TypeError(f"radii must be a dict {{optimizer: (rho, ...)}}, or None for the bed's chosen radii; "
                                f"got {type(self.radii).__name__}")
            for optimizer, rhos in self.radii.items():
                if not isinstance(rhos, tuple):
                    raise TypeError(f"radii[{optimizer!r}] must be a tuple of radii, e.g. (0.5, 1.0); got {rhos!r}")
        for name, example in (("turns", "(0.5, 0.75)"), ("stages", "(5, 10)"), ("seeds", "(0, 1, 2)")):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"{name} must be a tuple, e.g. {example}; got {getattr(self, name)!r}")
        checks.strict_bool("hard_only", self.hard_only)

    @property
    def optimizers(self) -> tuple[str, ...]:
        """The optimizers the lever tunes, in order (SGD, their baseline, is implied)."""
        return tuple(self.radii or ())

    @property
    def rhos(self) -> tuple[float, ...]:
        """Every radius the lever tunes, ascending."""
        return tuple(sorted({rho for radii in (self.radii or {}).values() for rho in radii}))


Train = Callable[[Lever, Any, str, tuple, "Path | None"], pd.DataFrame]


def slug(name: str) -> str:
    """A lever's or a bed's name as a file name: spaces as underscores, slashes as dashes."""
    return name.replace(" ", "_").replace("/", "-")


def run_lever(name: str, lever: Lever, train: Train, seed_sets: Mapping[str, tuple[int, ...]],
              choose: Callable[[pd.DataFrame], Any] | None = None, checkpoints: Path | None = None,
              column: str = "lever") -> pd.DataFrame:
    """Train lever ``name`` on each of ``seed_sets`` in order: ``train(lever, radii, seed_set, seeds, checkpoint)``
    gives the rows of one seed set, trained at ``radii`` (the lever's own on the first set; on every later set what
    ``choose`` made of the rows before, when given) and resumable from ``checkpoint`` (``<checkpoints>/<lever>.<seed
    set>``, a path without suffix; None without ``checkpoints``). Returns the rows with the lever's name (in
    ``column``) and ``seed_set``."""
    if not seed_sets:
        raise ValueError(f"lever {name!r}: seed_sets must name at least one seed set, e.g. {{'tuning': range(20)}}")
    radii, frames = lever.radii, []
    for seed_set, seeds in seed_sets.items():
        checkpoint = None if checkpoints is None else Path(checkpoints) / f"{slug(name)}.{slug(seed_set)}"
        rows = train(lever, radii, seed_set, tuple(seeds), checkpoint)
        frames.append(rows.assign(**{column: name}, seed_set=seed_set))
        if choose is not None:
            radii = choose(rows)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class ShippedRows:
    """A study's rows (``name``, as an error names them), shipped beside its package at ``path``: written by
    ``command`` (named when the file is missing), in ``columns`` (None: as given) rounded to ``decimals`` (None: as
    computed), in the order ``order`` puts them (a function of the frame; None: as written)."""

    name: str
    path: Path
    command: str
    columns: tuple[str, ...] | None = None
    decimals: int | None = None
    order: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self, path: str | Path | None = None) -> pd.DataFrame:
        """The shipped rows, or those of a copy at ``path``."""
        path = self.path if path is None else checks.path("path", path, writable=False)
        if not path.is_file():
            raise FileNotFoundError(f"no {self.name} at {path}: run {self.command}")
        return pd.read_csv(path)

    def done(self, columns) -> set[tuple]:
        """The distinct values of ``columns`` in the shipped rows (nothing when there are none): what a resumed
        study skips."""
        if not self.exists():
            return set()
        return set(self.load()[list(columns)].itertuples(index=False, name=None))

    def replace(self, rows: pd.DataFrame, drop: Callable[[pd.DataFrame], Any] | None = None,
                path: Path | None = None) -> Path:
        """Write ``rows`` in place of the shipped rows that ``drop`` marks (a function of the kept frame giving a
        boolean mask; None: add them), read just before under a lock, atomically. Returns the path."""
        path = self.path if path is None else Path(path)
        with open(Path(tempfile.gettempdir()) / f"samlib-{path.stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            kept = pd.read_csv(path) if path.is_file() else None
            if kept is not None and drop is not None:
                kept = kept[~drop(kept)]
            pieces = [part for part in (kept, rows) if part is not None and len(part)]  # an empty frame: all object
            merged = pd.concat(pieces, ignore_index=True).infer_objects() if pieces else rows
            if self.order is not None:
                merged = self.order(merged)
            if self.columns is not None:
                merged = merged.reindex(columns=list(self.columns))
            if self.decimals is not None:
                merged = merged.round(self.decimals)
            path.parent.mkdir(parents=True, exist_ok=True)
            return write_text_atomic(merged.to_csv(index=False), path)


def every_row(kept: pd.DataFrame) -> pd.Series:
    """The ``drop`` of :meth:`ShippedRows.replace` that replaces the whole file."""
    return pd.Series(True, index=kept.index)


def select(frame: pd.DataFrame, **values) -> pd.DataFrame:
    """The rows of ``frame`` whose every named column holds the value given (a list, tuple or other collection: any
    of its values), e.g. ``select(study, bed="FMNIST-MNIST", lever="bed", seed_set="tuning")``. A column the frame
    lacks, or a value that none of its rows holds (a misspelt seed set would select nothing, silently), is refused
    by name."""
    keep = pd.Series(True, index=frame.index)
    for column, value in values.items():
        if column not in frame.columns:
            raise KeyError(f"select: the rows have no column {column!r}; they have {list(frame.columns)}")
        wanted = [value] if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) else list(value)
        held = set(frame[column].dropna().unique())
        missing = [v for v in wanted if v not in held]
        if missing:
            raise ValueError(f"select: no row has {column}={missing[0]!r}; the column holds {sorted(held, key=str)}")
        keep &= frame[column].isin(wanted)
    return frame[keep]


def _folder(text: str) -> Path:
    try:
        return checks.path("--checkpoints", text, "folder")
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def checkpoints_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--checkpoints DIR`` to ``parser``: a folder for resumable checkpoints, refused with the usage line when
    it is a file."""
    parser.add_argument("--checkpoints", type=_folder, default=None,
                        help="a folder for resumable checkpoints (an interrupted study resumes where it stopped)")


def refuse_repeats(parser: argparse.ArgumentParser, **options) -> None:
    """Refuse, with ``parser``'s usage line, an option's list that names something twice: ``options`` maps each
    option's flag with underscores (``seed_sets`` for ``--seed-sets``) to its list (None: not given)."""
    for option, names in options.items():
        twice = sorted({name for name in names or () if list(names).count(name) > 1})
        if twice:
            parser.error(f"--{option.replace('_', '-')} names {twice} twice")


def run_parts(argv, prog: str, description: str, option: str, parts, run: Callable[[str, Path | None], str],
              path: Path) -> None:
    """The command line of a study made of named parts, run in turn: ``python -m <prog> run [--<option> NAME ...]
    [--checkpoints DIR]`` (default: every part of ``parts``). Each part is ``run(name, checkpoints)``, which says
    what it trained; a part named twice and a checkpoint folder that is a file are refused with the usage line
    before anything trains."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=["run"])
    parser.add_argument(f"--{option}", nargs="+", choices=list(parts), default=list(parts), metavar="NAME",
                        help=f"the {option} to run, of {', '.join(repr(n) for n in parts)} (default: all); the "
                             "others keep their rows")
    checkpoints_option(parser)
    args = parser.parse_args(argv)
    chosen = getattr(args, option.replace("-", "_"))
    refuse_repeats(parser, **{option.replace("-", "_"): chosen})
    from . import setup

    setup()  # the book's seed, threads and kernels (samlib.repro.configure), as the chapters run
    for name in chosen:
        start = time.time()
        trained = run(name, args.checkpoints)
        print(f"{name}: {trained} in {time.time() - start:.0f} s -> {path}", flush=True)
