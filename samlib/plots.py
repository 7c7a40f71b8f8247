"""The book's figure style and the figures of the landscape chapter.

Every chapter calls :func:`use_book_style` (through :func:`samlib.setup`) and draws with the
same colours: SGD blue, SAM orange, LSAM green, and the ``rho_colors`` ramp for rho sweeps.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from .landscape import Loss2D, Path, loss_grid, sam_objective, sharpness

__all__ = ["COLORS", "use_book_style", "rho_colors", "draw_loss_contours", "plot_step_anatomy",
           "plot_paths", "plot_valley_sharpness", "plot_sam_objective"]

_palette = sns.color_palette("colorblind")
COLORS = {"SGD": _palette[0], "SAM": _palette[1], "LSAM": _palette[2], "phantom": _palette[3]}


def use_book_style() -> None:
    """Seaborn's white grid, notebook context, colourblind palette; crisp inline figures."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titleweight": "semibold",
                         "legend.frameon": True, "legend.framealpha": 0.9})


def rho_colors(rhos) -> dict:
    """One colour per rho: SGD's blue for 0, a light-to-dark orange ramp for the others."""
    positive = sorted(r for r in rhos if r > 0)
    ramp = sns.color_palette("Oranges", len(positive) + 2)[2:]
    return {0: COLORS["SGD"], **dict(zip(positive, ramp))} if 0 in rhos else dict(zip(positive, ramp))


def draw_loss_contours(ax, loss: Loss2D, lim=(-0.5, 3.0), n: int = 300, valley: bool = True) -> None:
    """Filled log-spaced contours of ``loss`` on the square ``lim`` x ``lim``, and the valley w1*w2=1."""
    xs = torch.linspace(*lim, n, dtype=torch.float64)
    z = loss_grid(loss, xs, xs).numpy()
    levels = np.geomspace(1e-3, max(z.max(), 1e-2), 14)
    ax.contourf(xs, xs, z, levels=levels, cmap="Blues_r", norm=plt.matplotlib.colors.LogNorm(), alpha=0.75)
    if valley:
        t = np.linspace(1 / lim[1], lim[1], 200)
        ax.plot(t, 1 / t, color="0.25", lw=1, ls="--", label="minima: $w_1 w_2 = 1$")
    ax.set(xlim=lim, ylim=lim, xlabel="$w_1$ (first layer)", ylabel="$w_2$ (second layer)", aspect="equal")


def _arrow(ax, start, delta, color, label=None, **kw):
    ax.annotate("", xy=start + delta, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=2, shrinkA=0, shrinkB=0, **kw))
    if label:
        ax.plot([], [], color=color, lw=2, label=label)


def plot_step_anatomy(ax, loss: Loss2D, sgd: Path, sam: Path, lim=(0.0, 2.6)) -> None:
    """One step from the same point: the ascent to the phantom point, and SGD's and SAM's steps."""
    draw_loss_contours(ax, loss, lim)
    w, phantom = sgd.points[0].numpy(), sam.phantoms[0].numpy()
    ax.add_patch(plt.Circle(w, sam.rho, fill=False, ls=":", color="0.3", label=rf"$\|\epsilon\| \leq \rho = {sam.rho}$"))
    _arrow(ax, w, phantom - w, COLORS["phantom"], r"ascent $\epsilon = \rho\, g / \|g\|$", ls="--")
    _arrow(ax, w, (sgd.points[1] - sgd.points[0]).numpy(), COLORS["SGD"], r"SGD step $-\eta \nabla L(w)$")
    _arrow(ax, w, (sam.points[1] - sam.points[0]).numpy(), COLORS["SAM"], r"SAM step $-\eta \nabla L(\tilde w)$")
    ax.scatter(*w, color="k", zorder=5, label="real point $w$")
    ax.scatter(*phantom, color=COLORS["phantom"], marker="D", zorder=5, label=r"phantom point $\tilde w = w + \epsilon$")
    ax.set_title(rf"$\rho = {sam.rho}$")


def plot_paths(ax, loss: Loss2D, paths: list[Path], lim=(-0.5, 3.0)) -> None:
    """Paths of gradient descent (rho = 0) and SAM (rho > 0) from one start, on the loss contours."""
    draw_loss_contours(ax, loss, lim)
    colors = rho_colors([p.rho for p in paths])
    for p in paths:
        name = "GD" if p.rho == 0 else rf"SAM, $\rho={p.rho}$"
        pts = p.points.numpy()
        ax.plot(pts[:, 0], pts[:, 1], color=colors[p.rho], lw=2, label=name)
        ax.scatter(*pts[-1], color=colors[p.rho], edgecolor="k", zorder=5, s=50)
    ax.scatter(*paths[0].points[0].numpy(), marker="*", s=180, color="k", zorder=6, label="start")
    ax.legend(loc="upper right", fontsize="small")


def plot_valley_sharpness(ax, loss: Loss2D, paths: list[Path], lim=(0.3, 3.0)) -> None:
    """Sharpness along the valley (w1, 1/w1) and where each run ended."""
    t = torch.linspace(*lim, 200, dtype=torch.float64)
    ax.plot(t, t**2 + 1 / t**2, color="0.25", lw=1.5, label=r"valley: $w_1^2 + 1/w_1^2$")
    colors = rho_colors([p.rho for p in paths])
    for p in paths:
        ax.scatter(p.end[0].item(), sharpness(loss, p.end), color=colors[p.rho], edgecolor="k", s=60, zorder=5,
                   label="GD" if p.rho == 0 else rf"SAM, $\rho={p.rho}$")
    ax.set(xlabel="$w_1$ at the end of training", ylabel="sharpness (top Hessian eigenvalue)", yscale="log")
    ax.legend(fontsize="small")


def plot_sam_objective(axes, loss: Loss2D, rhos, lim=(-0.5, 3.0), n: int = 240) -> None:
    """SAM's objective max over the rho-ball, one panel per rho, on a shared colour scale."""
    xs = torch.linspace(*lim, n, dtype=torch.float64)
    surfaces = [sam_objective(loss, xs, xs, rho).numpy() for rho in rhos]
    norm = plt.matplotlib.colors.LogNorm(1e-3, max(s.max() for s in surfaces))
    for ax, rho, z in zip(axes, rhos, surfaces):
        mesh = ax.pcolormesh(xs, xs, np.maximum(z, 1e-3), cmap="Blues_r", norm=norm, shading="auto")
        iy, ix = np.unravel_index(z.argmin(), z.shape)
        ax.scatter(xs[ix], xs[iy], marker="x", color=COLORS["SAM"], s=80, lw=2.5, label="lowest point")
        ax.set(xlim=lim, ylim=lim, aspect="equal", xlabel="$w_1$", title=rf"$\rho = {rho}$" if rho else r"$L(w)$ ($\rho = 0$)")
    axes[0].set_ylabel("$w_2$")
    axes[0].legend(loc="upper right", fontsize="small")
    plt.colorbar(mesh, ax=list(axes), label=r"$\max_{\|\epsilon\| \leq \rho} L(w + \epsilon)$", shrink=0.8)
