"""The book's figures: the shared style (:mod:`~samlib.plots.style`) and one module of figures per chapter.

* :mod:`~samlib.plots.style`: the book's theme and colours, and its legibility rule;
* :mod:`~samlib.plots.layout`: the check every drawn figure passes: legends off the data, no overprinted text,
  legible type;
* :mod:`~samlib.plots.landscape`: the figures of "SAM in one picture" (re-exported here);
* :mod:`~samlib.plots.toy`: the toy chapters' figures;
* :mod:`~samlib.plots.mechanism`: the mechanism chapter's figures;
* :mod:`~samlib.plots.memorization`: the noise-memorization chapter's figures;
* :mod:`~samlib.plots.real_data`: the real-image chapters' figures (CIFAR-MNIST, Waterbirds, the test beds);
* :mod:`~samlib.plots.glance`: the figure of "Results at a glance";
* :mod:`~samlib.plots.widgets`: the interactive explorers for Jupyter and Colab, and their static frames.

Every chapter calls :func:`use_book_style` (through :func:`samlib.setup`) and draws with the same colours. The
landscape chapter's figures are re-exported here for ``from samlib import plots; plots.plot_paths(...)``.
"""
from __future__ import annotations

from .landscape import draw_loss_contours, plot_paths, plot_sam_objective, plot_step_anatomy, plot_valley_sharpness
from .style import COLORS, rho_colors, shared_legend, use_book_style

__all__ = ["COLORS", "use_book_style", "rho_colors", "shared_legend", "draw_loss_contours",
           "plot_step_anatomy", "plot_paths", "plot_valley_sharpness", "plot_sam_objective"]
