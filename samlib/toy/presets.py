"""The toy chapters' presets: what ``book/toy.ipynb`` and ``book/mechanism.ipynb`` train, at each scale.

* :class:`ToyPreset`, :data:`TOY_BOOK`, :data:`TOY_PAPER` and :func:`toy_preset` (the toy chapter);
* :class:`MechanismPreset`, :data:`MECHANISM_BOOK`, :data:`MECHANISM_PAPER` and :func:`mechanism_preset`
  (the mechanism chapter).

The functions pick the book or the paper preset by :mod:`samlib.scale`, as
:func:`samlib.experiments.cifar_mnist.preset` does. Every value is the book's choice: the papers publish
no settings for a toy like this one. The paper scale only takes more seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import checks, scale
from ..optim.registry import ABLATIONS
from .sweep import BOOK_SETTINGS, Run, ToySettings, grid

__all__ = ["OPEN_WINDOW", "ToyPreset", "TOY_BOOK", "TOY_PAPER", "toy_preset",
           "MechanismPreset", "MECHANISM_BOOK", "MECHANISM_PAPER", "mechanism_preset"]


OPEN_WINDOW = replace(BOOK_SETTINGS, head_norm=0.5, easy_scale=0.5, lr=0.1)
"""The toy chapter's 'open window' (the book's choice, made on the tuning seeds after the single levers of
:mod:`samlib.toy.study`): a head of fixed norm 0.5, a weaker easy feature (scale 0.5) and learning rate 0.1. LSAM
runs it at rho = 0.5, the head's norm."""


@dataclass(frozen=True)
class ToyPreset:
    """The toy chapter's sweeps (the book's choices; the papers publish no toy settings): SGD and LSAM
    over ``lsam_rhos``, SAM over ``sam_rhos`` and the hard-only control on the tuning ``seeds``; the figures
    show the run with ``show_turns`` and ``show_seed``, and the open-window pair (:data:`OPEN_WINDOW`, LSAM at
    ``window_rho``) on ``window_turns``. The levers and the held-out seeds are :mod:`samlib.toy.study`'s."""

    settings: ToySettings = BOOK_SETTINGS
    turns: tuple[float, ...] = (0.5, 0.75, 1.0)
    seeds: tuple[int, ...] = tuple(range(20))
    lsam_rhos: tuple[float, ...] = (0.3, 0.5, 1.0, 2.0)
    sam_rhos: tuple[float, ...] = (0.02, 0.05, 0.1)
    show_turns: float = 0.75
    show_seed: int = 0
    window_settings: ToySettings = OPEN_WINDOW
    window_rho: float = 0.5
    window_turns: float = 1.0

    def __post_init__(self):
        _check_preset(self, ("settings", "window_settings"))

    def main_runs(self) -> list[Run]:
        """SGD and LSAM over ``lsam_rhos``, every complexity and seed."""
        return grid({"SGD": [0.0], "LSAM": self.lsam_rhos}, self.turns, self.seeds)

    def sam_runs(self) -> list[Run]:
        """SAM over ``sam_rhos``, every complexity and seed."""
        return grid({"SAM": self.sam_rhos}, self.turns, self.seeds)

    def control_runs(self) -> list[Run]:
        """SGD on the hard input alone, every complexity and seed."""
        return [Run("SGD", 0.0, t, s, hard_only=True) for t in self.turns for s in self.seeds]

    def window_runs(self) -> list[Run]:
        """The open-window pair shown in the figures: SGD and LSAM at ``window_rho``, ``window_turns``,
        ``show_seed`` (train them with ``window_settings``)."""
        return grid({"SGD": [0.0], "LSAM": [self.window_rho]}, [self.window_turns], [self.show_seed])


def _check_preset(preset, settings: tuple[str, ...]) -> None:
    """The settings are ToySettings, the seeds are seeds (the show seed among them), the turns tuples."""
    for name in settings:
        value = getattr(preset, name)
        if not isinstance(value, ToySettings):
            raise TypeError(f"{name} must be a samlib.toy.sweep.ToySettings, got {type(value).__name__}")
    for name in ("seeds", "turns"):
        if not isinstance(getattr(preset, name), tuple) or not getattr(preset, name):
            raise TypeError(f"{name} must be a non-empty tuple, got {getattr(preset, name)!r}")
    for seed in (*preset.seeds, preset.show_seed):
        checks.seed("seed", seed)


TOY_BOOK = ToyPreset()
TOY_PAPER = replace(TOY_BOOK, seeds=tuple(range(50)))


def toy_preset() -> ToyPreset:
    """:data:`TOY_BOOK` at book scale, :data:`TOY_PAPER` at paper scale (:func:`samlib.scale.choose`)."""
    return scale.choose(book=TOY_BOOK, paper=TOY_PAPER)


@dataclass(frozen=True)
class MechanismPreset:
    """The mechanism chapter's sweep (the book's choices; the papers publish no toy settings): SGD, LSAM
    and the two ablations over ``rhos``, with the parameters kept after each step count in ``snapshots``;
    the chapter reads LSAM at ``lsam_rho``, shows the run with ``show_turns`` and ``show_seed``, matches
    SGD and LSAM snapshots near the training loss ``match_loss``, and measures the learning-rate scaling
    after ``checkpoint_step`` steps."""

    settings: ToySettings = BOOK_SETTINGS
    turns: tuple[float, ...] = (0.5, 0.75, 1.0)
    seeds: tuple[int, ...] = tuple(range(5))
    rhos: tuple[float, ...] = (0.3, 1.0, 2.0)
    snapshots: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 400, 800, 1600)
    lsam_rho: float = 1.0
    show_turns: float = 0.75
    show_seed: int = 0
    match_loss: float = 1e-3
    checkpoint_step: int = 400

    def __post_init__(self):
        _check_preset(self, ("settings",))
        checks.positive_int("checkpoint_step", self.checkpoint_step)
        for step in self.snapshots:
            checks.positive_int("a snapshot step", step)

    def runs(self) -> list[Run]:
        """SGD, and LSAM, IW-only and LR-only over ``rhos``, every complexity and seed (one sweep)."""
        return grid({"SGD": [0.0], **{opt: self.rhos for opt in ("LSAM", *ABLATIONS)}},
                    self.turns, self.seeds)


MECHANISM_BOOK = MechanismPreset()
MECHANISM_PAPER = replace(MECHANISM_BOOK, seeds=tuple(range(20)))


def mechanism_preset() -> MechanismPreset:
    """:data:`MECHANISM_BOOK` at book scale, :data:`MECHANISM_PAPER` at paper scale."""
    return scale.choose(book=MECHANISM_BOOK, paper=MECHANISM_PAPER)
