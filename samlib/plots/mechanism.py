"""Figures of the mechanism chapter: Lorenz curves, Gini over training, LR scaling over batches, where the
importance weight sits, and the ablation."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from ..decompose import gini, lorenz_curve
from ..optim.registry import ABLATIONS
from .layout import REFERENCE
from .style import COLORS, shared_legend
from .toy import rho_positions

__all__ = ["ABLATION_COLORS", "plot_schematic", "plot_lorenz", "plot_gini_gap", "plot_lr_scaling",
           "plot_weight_by_contribution", "plot_ablation"]

_PALETTE = sns.color_palette("colorblind")
ABLATION_COLORS = {"SGD": COLORS["SGD"], "LSAM": COLORS["LSAM"], **dict(zip(ABLATIONS, (_PALETTE[5], _PALETTE[4])))}
"""SGD, LSAM and its ablations (:data:`samlib.optim.registry.ABLATIONS`: IW-only, LR-only), as the mechanism
chapter draws them."""


def plot_schematic(axes, s) -> None:
    """The mechanism before any data (``s``: :func:`samlib.toy.mechanism.schematic`). axes[0]: the real head v,
    the ascent eps and the phantom head v~ in the plane of the head's two weights; axes[1]: every example at its
    signed features (y Phi_easy, y Phi_hard), coloured by how much its importance weight grows at the phantom
    head (lambda~ / lambda)."""
    ax = axes[0]
    tips = {"real head $v$": (s.v, COLORS["SGD"]), "phantom head $\\tilde v$": (s.v_tilde, COLORS["LSAM"])}
    for label, (tip, color) in tips.items():
        ax.annotate("", xy=tip.tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=color, lw=2))
        ax.plot([], [], color=color, lw=2, label=label)
    ax.annotate("", xy=s.v_tilde.tolist(), xytext=s.v.tolist(),
                arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.2, ls="--"))
    ax.plot([], [], color="0.35", lw=1.2, ls="--", label="ascent $\\epsilon$")
    top = 1.3 * float(max(s.v[1], s.v_tilde[1]))
    ax.set(xlabel="easy weight $v_{easy}$", ylabel="hard weight $v_{hard}$", xlim=(0, 1.15 * float(s.v[0])),
           ylim=(0, top), title="the head and its phantom")
    ax = axes[1]
    gain = (s.lam_tilde / s.lam).numpy()
    points = ax.scatter(s.signed_features[:, 0].numpy(), s.signed_features[:, 1].numpy(), c=gain, s=10,
                        cmap="viridis")
    ax.figure.colorbar(points, ax=ax, label=r"weight gain $\tilde\lambda_i / \lambda_i$")
    ax.set(xlabel=r"easy feature $y\,\Phi_{easy}$", ylabel=r"hard feature $y\,\Phi_{hard}$",
           title="which examples gain weight")


def plot_lorenz(ax, weights: dict, colors: dict | None = None) -> None:
    """One Lorenz curve per entry of ``weights`` ({label: weights (n,)}), Gini in the legend, and the diagonal
    (equal weights)."""
    ax.plot([0, 1], [0, 1], color="0.4", ls=":", lw=1, label="equal weights", gid=REFERENCE)
    for label, w in weights.items():
        x, y = lorenz_curve(w)
        ax.plot(x, y, color=(colors or {}).get(label), label=f"{label} (Gini {gini(w):.2f})")
    ax.set(xlabel="share of examples (lightest first)", ylabel="share of total importance weight",
           xlim=(0, 1), ylim=(0, 1), aspect="equal")
    ax.legend(fontsize="small", loc="upper left")


def plot_gini_gap(axes, matched: pd.DataFrame) -> None:
    """One panel per complexity: Gini of LSAM's lambda~ (green) and of its lambda (orange) minus the Gini of SGD's
    lambda at the same training loss, one dot per LSAM snapshot and seed, against that loss (log scale, high to
    low: training runs left to right). Below 0: LSAM's weights are more even. ``matched``:
    :func:`samlib.toy.mechanism.matched_loss_gini`."""
    rows = matched.dropna(subset=["sgd_same_loss"])
    for ax, (turns, g) in zip(axes, rows.groupby("turns")):
        for column, color, label in (("lsam_real", COLORS["phantom"], r"LSAM $\lambda$ (real) $-$ SGD $\lambda$"),
                                     ("lsam_phantom", COLORS["LSAM"],
                                      r"LSAM $\tilde\lambda$ (phantom) $-$ SGD $\lambda$")):
            ax.scatter(g.loss, g[column] - g.sgd_same_loss, s=22, color=color, alpha=0.8, label=label)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set(xscale="log", xlabel="training loss (log scale)", title=f"{turns:g} turns")
        ax.invert_xaxis()
    axes[0].set_ylabel("Gini difference at equal loss")  # the panels share their y axis: one label
    shared_legend(axes[0].figure, axes, ncol=2)


def plot_lr_scaling(ax, frame: pd.DataFrame, ylim=(0, 1.4)) -> None:
    """Distributions over mini-batches of v~_easy / v_easy and v~_hard / v_hard (``frame`` from
    :func:`samlib.toy.mechanism.lr_scaling_over_batches`), one box pair per complexity (whiskers: 5th to 95th
    percentile; batches beyond are not drawn)."""
    long = frame.melt(id_vars=["turns"], value_vars=["easy", "hard"], var_name="feature", value_name="scaling")
    sns.boxplot(long, x="turns", y="scaling", hue="feature", ax=ax, whis=(5, 95), showfliers=False,
                palette={"easy": COLORS["SGD"], "hard": COLORS["SAM"]},
                formatter=lambda t: f"{float(t):g}")
    ax.axhline(1, color="0.3", lw=0.8, ls="--")
    ax.set(xlabel="spiral turns", ylabel=r"LR scaling $\tilde v_k / v_k$", ylim=ylim)
    ax.legend(title="feature $k$", fontsize="small")


def plot_weight_by_contribution(axes, grids: list[dict], titles: list[str]) -> None:
    """Median importance weight per bin of (easy contribution, hard contribution), one heatmap per grid
    (:func:`samlib.toy.mechanism.weight_by_contribution`), on one shared log colour scale."""
    values = np.concatenate([g["median"][np.isfinite(g["median"])] for g in grids])
    norm = LogNorm(vmin=max(values[values > 0].min(), 1e-8), vmax=values.max())
    for ax, grid, title in zip(axes, grids, titles):
        bins = grid["median"].shape[0]
        image = ax.imshow(grid["median"], origin="lower", cmap="viridis", norm=norm, aspect="auto")
        labels = [[f"{e:.2g}" for e in grid[f"{k}_edges"][:-1]] for k in ("easy", "hard")]
        ax.set_yticks(range(bins), labels[0], fontsize="small")
        ax.set_xticks(range(bins), labels[1], fontsize="small", rotation=45)
        ax.set(ylabel=r"easy contribution $y\,v_{easy}\Phi_{easy}$ (bin start)",
               xlabel=r"hard contribution $y\,v_{hard}\Phi_{hard}$ (bin start)", title=title)
        ax.grid(False)
    plt.colorbar(image, ax=axes, label="median importance weight (log scale)")


def plot_ablation(axes, summary: pd.DataFrame) -> None:
    """Hard-feature probe error (median and quartiles over seeds) vs rho for LSAM and its two ablations, SGD as
    a band, one panel per complexity. ``summary``: :func:`samlib.toy.results.summarize` rows."""
    for ax, (turns, g) in zip(axes, summary.groupby("turns")):
        pos = rho_positions(ax, [r for r in g.rho.unique() if r > 0])
        sgd = g[g.optimizer == "SGD"].iloc[0]
        ax.axhspan(sgd["q25"], sgd["q75"], color=COLORS["SGD"], alpha=0.12)
        ax.axhline(sgd["median"], color=COLORS["SGD"], label="SGD (median, quartiles)")
        for k, opt in enumerate((*ABLATIONS, "LSAM")):
            rows = g[g.optimizer == opt].sort_values("rho")
            x = rows.rho.map(pos).to_numpy() + (k - 1) * 0.08
            spread = [(rows["median"] - rows["q25"]).to_numpy(), (rows["q75"] - rows["median"]).to_numpy()]
            ax.errorbar(x, rows["median"], yerr=spread, marker="o", capsize=3, color=ABLATION_COLORS[opt],
                        label=opt)
        ax.set(xlabel=r"$\rho$", ylabel="hard-feature probe error", title=f"{turns:g} turns", ylim=(-0.02, 0.6))
    axes[0].legend(fontsize="small")
