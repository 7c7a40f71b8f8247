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

from .. import scale
from .sweep import BOOK_SETTINGS, Run, ToySettings, grid

__all__ = ["ToyPreset", "TOY_BOOK", "TOY_PAPER", "toy_preset",
           "MechanismPreset", "MECHANISM_BOOK", "MECHANISM_PAPER", "mechanism_preset"]


@dataclass(frozen=True)
class ToyPreset:
    """The toy chapter's sweeps (the book's choices; the papers publish no toy settings): SGD and LSAM
    over ``lsam_rhos``, SAM over ``sam_rhos``, the hard-only control, LSAM with a relative radius over
    ``relative_rhos``, and the 'loose' section (a weaker easy feature, ``loose_easy_scale``, on simpler
    spirals); the figures show the run with ``show_turns`` and ``show_seed``."""

    settings: ToySettings = BOOK_SETTINGS
    turns: tuple[float, ...] = (0.5, 0.75, 1.0)
    seeds: tuple[int, ...] = tuple(range(5))
    lsam_rhos: tuple[float, ...] = (0.1, 0.3, 0.5, 1.0, 2.0, 4.0)
    sam_rhos: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)
    relative_rhos: tuple[float, ...] = (0.1, 0.25, 0.5)  # LSAM with the radius rho * ||v||
    loose_easy_scale: float = 0.5
    loose_turns: tuple[float, ...] = (0.25, 0.375, 0.5)
    loose_seeds: tuple[int, ...] = tuple(range(20))
    loose_lsam_rhos: tuple[float, ...] = (0.5, 1.0)
    loose_sam_rhos: tuple[float, ...] = (0.1,)
    show_turns: float = 0.75
    show_seed: int = 0

    @property
    def relative_settings(self) -> ToySettings:
        """``settings`` with the relative radius (``relative_rho=True``)."""
        return replace(self.settings, relative_rho=True)

    @property
    def loose_settings(self) -> ToySettings:
        """``settings`` with the loose section's weaker easy feature."""
        return replace(self.settings, easy_scale=self.loose_easy_scale)

    def main_runs(self) -> list[Run]:
        """SGD and LSAM over ``lsam_rhos``, every complexity and seed."""
        return grid({"SGD": [0.0], "LSAM": self.lsam_rhos}, self.turns, self.seeds)

    def sam_runs(self) -> list[Run]:
        """SAM over ``sam_rhos``, every complexity and seed."""
        return grid({"SAM": self.sam_rhos}, self.turns, self.seeds)

    def control_runs(self) -> list[Run]:
        """SGD on the hard input alone, every complexity and seed."""
        return [Run("SGD", 0.0, t, s, hard_only=True) for t in self.turns for s in self.seeds]

    def relative_runs(self) -> list[Run]:
        """SGD and LSAM over ``relative_rhos`` (train them with :attr:`relative_settings`)."""
        return grid({"SGD": [0.0], "LSAM": self.relative_rhos}, self.turns, self.seeds)

    def loose_runs(self, sam: bool = False) -> list[Run]:
        """The loose section's SGD and LSAM runs, or with ``sam`` its SAM runs (train them with
        :attr:`loose_settings`)."""
        rhos = {"SAM": self.loose_sam_rhos} if sam else {"SGD": [0.0], "LSAM": self.loose_lsam_rhos}
        return grid(rhos, self.loose_turns, self.loose_seeds)


TOY_BOOK = ToyPreset()
TOY_PAPER = replace(TOY_BOOK, seeds=tuple(range(20)), loose_seeds=tuple(range(50)))


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

    def runs(self) -> list[Run]:
        """SGD, and LSAM, IW-only and LR-only over ``rhos``, every complexity and seed (one sweep)."""
        return grid({"SGD": [0.0], **{opt: self.rhos for opt in ("LSAM", "IW-only", "LR-only")}},
                    self.turns, self.seeds)


MECHANISM_BOOK = MechanismPreset()
MECHANISM_PAPER = replace(MECHANISM_BOOK, seeds=tuple(range(20)))


def mechanism_preset() -> MechanismPreset:
    """:data:`MECHANISM_BOOK` at book scale, :data:`MECHANISM_PAPER` at paper scale."""
    return scale.choose(book=MECHANISM_BOOK, paper=MECHANISM_PAPER)
