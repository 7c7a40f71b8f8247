"""The book's figure style: one theme and one set of colours for every chapter.

SGD blue, SAM orange, LSAM green, the phantom red; :func:`rho_colors` is the ramp for rho sweeps.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

__all__ = ["COLORS", "use_book_style", "rho_colors", "shared_legend"]

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
