"""The figure of "Results at a glance": every claim's effect with its interval, the tuning and the held-out seeds."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import COLORS

__all__ = ["plot_glance"]

SEED_SET_STYLE = {"tuning": dict(marker="o", mfc="white", offset=-0.17),
                  "held out": dict(marker="s", mfc=None, offset=0.17)}


def plot_glance(ax, frame: pd.DataFrame, labels: dict[str, str]) -> None:
    """One row per claim (``frame``: :func:`samlib.glance.effects_frame`, ``labels``: claim key -> short text), top
    to bottom in ``frame``'s order: the median effect in units of the claim's meaningful effect (0: none, 1:
    meaningful), its interval as a line where the seeds allow one, the tuning seeds (open circle) just above the
    held-out seeds (filled square). The legend sits below the axes, away from the data."""
    claims = list(dict.fromkeys(frame.claim))
    y = {claim: len(claims) - 1 - i for i, claim in enumerate(claims)}
    color = COLORS["SAM"]
    for seed_set, style in SEED_SET_STYLE.items():
        rows = frame[frame.seed_set == seed_set]
        ys = np.array([y[c] for c in rows.claim]) - style["offset"]
        for yy, low, high in zip(ys, rows.low, rows.high):
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low, high], [yy, yy], color=color, lw=2, alpha=0.8, solid_capstyle="butt")
        ax.plot(rows["median"], ys, ls="none", marker=style["marker"], ms=7, color=color,
                mfc=style["mfc"] or color, mew=1.5, label=f"{seed_set.replace(' ', '-')} seeds")
    ax.axvline(0, color="0.3", lw=1)
    ax.axvline(1, color="0.3", lw=1, ls="--")
    ax.set_yticks(range(len(claims)), [labels[c] for c in reversed(claims)])
    ax.set_xlabel("median effect, in units of a meaningful effect (0: none; 1: meaningful)")
    ax.set_ylim(-0.7, len(claims) - 0.3)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize="small", frameon=False)
