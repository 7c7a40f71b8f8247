"""Figures of the chapter "SAM in one picture": a two-parameter loss, its valley and SAM's paths."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..landscape import Loss2D, Path, grid_points, sam_objective, sharpness, valley_points
from .style import COLORS, rho_colors

__all__ = ["draw_loss_contours", "plot_step_anatomy", "plot_paths", "plot_valley_sharpness", "plot_sam_objective"]


def draw_loss_contours(ax, loss: Loss2D, xlim=(-0.5, 3.0), ylim=None, n: int = 300) -> None:
    """Filled log-spaced contours of ``loss`` on ``xlim`` x ``ylim`` (default: square), and the valley w1*w2=1."""
    ylim = ylim or xlim
    xs, ys = (torch.linspace(*lim, n, dtype=torch.float64) for lim in (xlim, ylim))
    z = np.maximum(loss(grid_points(xs, ys)).numpy(), 1e-4)
    xs, ys = xs.numpy(), ys.numpy()
    levels = np.geomspace(1e-4, max(z.max(), 1e-2), 15)
    ax.contourf(xs, ys, z, levels=levels, cmap="Blues_r", norm=plt.matplotlib.colors.LogNorm(), alpha=0.75)
    t = np.linspace(0.05, 20, 2000)
    ax.plot(t, 1 / t, color="0.25", lw=1, ls="--", label="minima: $w_1 w_2 = 1$")
    ax.set(xlim=xlim, ylim=ylim, xlabel="$w_1$ (first layer)", ylabel="$w_2$ (second layer)", aspect="equal")


def _arrow(ax, start, delta, color, label=None, **kw):
    ax.annotate("", xy=start + delta, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=2, shrinkA=0, shrinkB=0, **kw))
    if label:
        ax.plot([], [], color=color, lw=2, label=label)


def plot_step_anatomy(ax, loss: Loss2D, sgd: Path, sam: Path, xlim=(1.2, 3.0), ylim=(-0.4, 1.1)) -> None:
    """One step from the same point: the ascent to the phantom point, and SGD's and SAM's steps."""
    draw_loss_contours(ax, loss, xlim, ylim)
    w, phantom = sgd.points[0].numpy(), sam.phantoms[0].numpy()
    ax.add_patch(plt.Circle(w, sam.rho, fill=False, ls=":", color="0.3"))
    _arrow(ax, w, phantom - w, COLORS["phantom"], r"ascent $\epsilon = \rho\, g / \|g\|$", ls="--")
    _arrow(ax, w, (sgd.points[1] - sgd.points[0]).numpy(), COLORS["SGD"], r"SGD step $-\eta \nabla L(w)$")
    _arrow(ax, w, (sam.points[1] - sam.points[0]).numpy(), COLORS["SAM"], r"SAM step $-\eta \nabla L(\tilde w)$")
    ax.scatter(*w, color="k", zorder=5, label="real point $w$")
    ax.scatter(*phantom, color=COLORS["phantom"], marker="D", zorder=5,
               label=r"phantom point $\tilde w = w + \epsilon$")
    ax.set_title(rf"$\rho = {sam.rho}$ (dotted: the $\rho$-ball)")


def plot_paths(ax, loss: Loss2D, paths: list[Path], lim=(-0.5, 3.0), legend: bool = True,
               sam_label: str | None = None) -> None:
    """Paths of gradient descent (rho = 0) and SAM (rho > 0) from one start, on the loss contours. ``legend``:
    draw the axes' legend (off where one figure legend serves several panels); ``sam_label``: one label for every
    SAM path instead of "SAM, rho=..." (when a panel's title gives rho)."""
    draw_loss_contours(ax, loss, lim)
    colors = rho_colors([p.rho for p in paths])
    for p in paths:
        name = "GD" if p.rho == 0 else sam_label or rf"SAM, $\rho={p.rho}$"
        pts = p.points.numpy()
        ax.plot(pts[:, 0], pts[:, 1], color=colors[p.rho], lw=2, label=name)
        ax.scatter(*pts[-1], color=colors[p.rho], edgecolor="k", zorder=5, s=50)
    ax.scatter(*paths[0].points[0].numpy(), marker="*", s=180, color="k", zorder=6, label="start")
    if legend:
        ax.legend(loc="upper right", fontsize="small")


def plot_valley_sharpness(ax, loss: Loss2D, paths: list[Path], lim=(0.3, 3.0)) -> None:
    """Sharpness along the valley (w1, 1/w1) and where each run ended."""
    t = np.linspace(*lim, 200)
    ax.plot(t, t**2 + 1 / t**2, color="0.25", lw=1.5, label=r"valley: $w_1^2 + 1/w_1^2$")
    colors = rho_colors([p.rho for p in paths])
    for p in paths:
        ax.scatter(p.end[0].item(), sharpness(loss, p.end), color=colors[p.rho], edgecolor="k", s=60, zorder=5,
                   label="GD" if p.rho == 0 else rf"SAM, $\rho={p.rho}$")
    ax.set(xlabel="$w_1$ at the end of training", ylabel="sharpness (top Hessian eigenvalue)")
    ax.legend(fontsize="small")


def plot_sam_objective(axes, loss: Loss2D, rho: float, valley_rhos, lim=(-0.5, 3.0), n: int = 240) -> None:
    """Three panels: L(w); SAM's objective max over the rho-ball with its lowest point; and that
    objective along the valley (t, 1/t) for each of ``valley_rhos``."""
    xs = torch.linspace(*lim, n, dtype=torch.float64)
    points = grid_points(xs, xs)
    surfaces = [loss(points).numpy(), sam_objective(loss, points, rho).numpy()]
    xs = xs.numpy()
    norm = plt.matplotlib.colors.LogNorm(1e-3, max(s.max() for s in surfaces))
    for ax, z, title in zip(axes, surfaces, [r"$L(w)$", "SAM objective\n" + rf"$\rho = {rho}$"]):
        mesh = ax.pcolormesh(xs, xs, np.maximum(z, 1e-3), cmap="Blues_r", norm=norm, shading="auto")
        ax.set(xlim=lim, ylim=lim, aspect="equal", xlabel="$w_1$", ylabel="$w_2$", title=title)
    iy, ix = np.unravel_index(surfaces[1].argmin(), surfaces[1].shape)
    axes[1].scatter(xs[ix], xs[iy], marker="x", color=COLORS["SAM"], s=90, lw=3, label="lowest point")
    axes[1].legend(loc="upper right", fontsize="small")
    plt.colorbar(mesh, ax=list(axes[:2]), label=r"$\max_{\|\epsilon\| \leq \rho} L(w + \epsilon)$", shrink=0.85)
    ts = torch.linspace(0.35, 3.0, 300, dtype=torch.float64)
    colors = rho_colors(valley_rhos)
    for r in valley_rhos:
        axes[2].plot(ts.numpy(), sam_objective(loss, valley_points(ts), r).numpy(), color=colors[r],
                     label=r"$L$ ($\rho = 0$)" if r == 0 else rf"$\rho = {r}$")
    axes[2].set(xlabel="$t$, along the valley $w = (t, 1/t)$", ylabel="SAM objective on the valley",
                title="along the valley of minima")
    axes[2].legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3)
