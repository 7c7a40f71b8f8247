"""The book's figure style: one theme and one set of colours for every chapter.

SGD blue, SAM orange, LSAM green, the phantom red; :func:`rho_colors` is the ramp for rho sweeps.

Legibility: the HTML book shows a figure scaled to its text column, about ``PAGE_COLUMN_PX`` wide. A
figure at most ``MAX_FIGURE_WIDTH`` inches wide keeps its tick labels at ``TICK_PT`` points at least
:func:`tick_px_on_page` pixels tall there (10 or more); the chapters' figures stay within that width.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

__all__ = ["COLORS", "use_book_style", "rho_colors", "shared_legend", "MAX_FIGURE_WIDTH", "tick_px_on_page"]

_palette = sns.color_palette("colorblind")
COLORS = {"SGD": _palette[0], "SAM": _palette[1], "LSAM": _palette[2], "phantom": _palette[3]}

FONT_SCALE = 1.15          # seaborn's notebook context, scaled: tick labels 11 pt -> 12.65 pt
TICK_PT = 11 * FONT_SCALE
MAX_FIGURE_WIDTH = 10.0    # inches
PAGE_COLUMN_PX = 700       # the text column of the HTML book (sphinx-book-theme) in a 1280-px window


def tick_px_on_page(width_in: float = MAX_FIGURE_WIDTH, column_px: float = PAGE_COLUMN_PX) -> float:
    """Height in screen pixels of a tick label of a ``width_in``-inch figure scaled to ``column_px``
    (the dpi cancels: the PNG is width_in * dpi pixels wide and its text TICK_PT * dpi / 72 tall)."""
    return TICK_PT / 72 * column_px / width_in


def use_book_style() -> None:
    """Seaborn's white grid, notebook context (fonts scaled by ``FONT_SCALE``), colourblind palette;
    crisp inline figures; and :func:`samlib.plots.layout.check_when_drawn` on every new figure."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind", font_scale=FONT_SCALE)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titleweight": "bold",
                         "legend.frameon": True, "legend.framealpha": 0.9,
                         # every new figure is checked when drawn: legends off the data, no overprinted text
                         "figure.hooks": ["samlib.plots.layout:check_when_drawn"]})


def rho_colors(rhos) -> dict:
    """One colour per rho: SGD's blue for 0, a light-to-dark orange ramp for the others."""
    positive = sorted(r for r in rhos if r > 0)
    ramp = sns.color_palette("Oranges", len(positive) + 2)[2:]
    return {0: COLORS["SGD"], **dict(zip(positive, ramp))} if 0 in rhos else dict(zip(positive, ramp))


def shared_legend(fig, axes, ncol: int = 6) -> None:
    """One legend below a constrained-layout figure with every distinct label of ``axes``."""
    seen: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncol=ncol)
