"""The noise-memorization chapter's preset: what ``book/noise_memorization.ipynb`` trains, at each scale.

:class:`MemorizationPreset`, :data:`BOOK` (CPU minutes), :data:`PAPER` (a finer and larger grid, more
seeds and test points, for the GPU) and :func:`preset`, which picks one by :mod:`samlib.scale` as
:func:`samlib.experiments.cifar_mnist.preset` does.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import checks, scale
from .data import DataSetting, Run, grid_runs
from .train import Training

__all__ = ["MemorizationPreset", "BOOK", "PAPER", "preset"]


@dataclass(frozen=True)
class MemorizationPreset:
    """The chapter's runs. The values are the book's choices: Chen et al. (2023) do not publish the
    settings of their runs. The map: every n in ``ns`` and ‖μ‖ in ``mu_norms``, each seed, SGD and SAM
    at radius ``tau`` (with ``by_n``: trained one batch per n, to fit in memory); the training curves of
    ``curve_cell`` (n, ‖μ‖); the runs without the stopping rule at ``stop_cells``; and SAM at the radii
    ``radii`` for the sizes ``radius_ns``."""

    setting: DataSetting = DataSetting(d=1000, sigma_p=1.0, p=0.1, n_test=2000)
    training: Training = Training(width=20, init_std=0.01, lr=1.0, batch_size=10, max_epochs=100, stop_loss=0.05,
                                  log_every=None)
    tau: float = 0.5
    ns: tuple[int, ...] = (20, 40, 80, 160)
    mu_norms: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
    seeds: tuple[int, ...] = tuple(range(3))
    by_n: bool = False
    curve_cell: tuple[int, float] = (40, 2.0)
    stop_cells: tuple[tuple[int, float], ...] = ((40, 4.0), (40, 6.0))
    radii: tuple[float, ...] = (0.1, 0.2, 1.0)
    radius_ns: tuple[int, ...] = (20, 160)

    def __post_init__(self):
        if not isinstance(self.setting, DataSetting) or not isinstance(self.training, Training):
            raise TypeError("setting must be a samlib.memorization DataSetting and training a Training, got "
                            f"{type(self.setting).__name__} and {type(self.training).__name__}")
        if not isinstance(self.seeds, tuple) or not self.seeds:
            raise TypeError(f"seeds must be a non-empty tuple of seeds, e.g. (0, 1, 2), got {self.seeds!r}")
        for seed in self.seeds:
            checks.seed("seed", seed)
        checks.strict_bool("by_n", self.by_n)

    def grid_runs(self) -> list[Run]:
        """The map: every n, ‖μ‖ and seed, with SGD and SAM at ``tau``."""
        return grid_runs(self.ns, self.mu_norms, self.seeds, taus=[0.0, self.tau])

    def cell_runs(self, cell: tuple[int, float]) -> list[Run]:
        """SGD and SAM at ``tau`` for every seed of one cell (n, ‖μ‖): ``curve_cell`` or a stop cell."""
        return [Run(*cell, seed, tau) for seed in self.seeds for tau in (0.0, self.tau)]

    def radius_runs(self) -> list[Run]:
        """SAM at every radius of ``radii`` for the sizes ``radius_ns``, every ‖μ‖ and seed."""
        return grid_runs(self.radius_ns, self.mu_norms, self.seeds, taus=self.radii)


BOOK = MemorizationPreset()
PAPER = replace(BOOK, setting=replace(BOOK.setting, n_test=10_000), ns=(10, 20, 40, 80, 160, 320),
                mu_norms=tuple(0.25 * k for k in range(2, 25)), seeds=tuple(range(10)), by_n=True)


def preset() -> MemorizationPreset:
    """:data:`BOOK` at book scale, :data:`PAPER` at paper scale (:func:`samlib.scale.choose`)."""
    return scale.choose(book=BOOK, paper=PAPER)
