"""The book's figure style, shared by every chapter, and one module of figures per chapter.

Every chapter calls :func:`use_book_style` (through :func:`samlib.setup`) and draws with the
same colours: SGD blue, SAM orange, LSAM green, and the ``rho_colors`` ramp for rho sweeps.
Chapter figures live in submodules (``samlib.plots.landscape``, ...); the landscape chapter's are
re-exported here for ``from samlib import plots; plots.plot_paths(...)``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

__all__ = ["COLORS", "use_book_style", "rho_colors", "shared_legend", "draw_loss_contours",
           "plot_step_anatomy", "plot_paths", "plot_valley_sharpness", "plot_sam_objective"]

_palette = sns.color_palette("colorblind")
COLORS = {"SGD": _palette[0], "SAM": _palette[1], "LSAM": _palette[2], "phantom": _palette[3]}


def use_book_style() -> None:
    """Seaborn's white grid, notebook context, colourblind palette; crisp inline figures."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titleweight": "bold",
                         "legend.frameon": True, "legend.framealpha": 0.9})


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
    fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncol=ncol, fontsize="small")


from .landscape import (draw_loss_contours, plot_paths, plot_sam_objective, plot_step_anatomy,  # noqa: E402
                        plot_valley_sharpness)
