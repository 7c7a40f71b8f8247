"""The book's figures: the shared style (:mod:`~samlib.plots.style`) and one module of figures per chapter.

Every chapter calls :func:`use_book_style` (through :func:`samlib.setup`) and draws with the
same colours. Chapter figures live in submodules (``samlib.plots.landscape``, ``samlib.plots.toy``,
...); the landscape chapter's are re-exported here for ``from samlib import plots; plots.plot_paths(...)``.
The interactive explorers are in :mod:`samlib.plots.widgets`.
"""
from __future__ import annotations

from .landscape import draw_loss_contours, plot_paths, plot_sam_objective, plot_step_anatomy, plot_valley_sharpness
from .style import COLORS, rho_colors, shared_legend, use_book_style

__all__ = ["COLORS", "use_book_style", "rho_colors", "shared_legend", "draw_loss_contours",
           "plot_step_anatomy", "plot_paths", "plot_valley_sharpness", "plot_sam_objective"]
