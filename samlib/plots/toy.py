"""Figures of the toy chapter: the data, the learned hard feature, probe error and phantom ratios vs rho."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
import torch

from ..toy.data import ToyData
from ..toy.model import HEAD, features, select_runs
from ..toy.results import lr_factors
from .style import COLORS, shared_legend

__all__ = ["turns_colors", "rho_positions", "plot_toy_data", "plot_hard_feature", "plot_decision_plane",
           "plot_probe_vs_rho", "plot_phantom_ratio", "plot_training_curves"]

CLASS_COLORS = {1.0: sns.color_palette("colorblind")[4], -1.0: sns.color_palette("colorblind")[7]}


def turns_colors(turns) -> dict:
    """One colour per complexity, light (loose spiral) to dark (tight spiral)."""
    turns = sorted(set(turns))
    return dict(zip(turns, sns.color_palette("crest", len(turns))))


def plot_toy_data(axes, datasets: list[ToyData], max_points: int = 600) -> None:
    """axes[0]: the easy input per class; axes[1:]: the hard input (spirals), one panel per dataset."""
    d = datasets[0]
    for label, name in ((1.0, "$y=+1$"), (-1.0, "$y=-1$")):
        axes[0].hist(d.x_easy[d.y == label, 0].numpy(), bins=30, color=CLASS_COLORS[label], alpha=0.8, label=name)
    axes[0].set(xlabel="easy input $x_{easy}$", ylabel="count", title="easy feature")
    shared_legend(axes[0].figure, [axes[0]], ncol=2)  # the classes' colours, below the panels: off the bars
    for ax, d in zip(axes[1:], datasets):
        for label, name in ((1.0, "$y=+1$"), (-1.0, "$y=-1$")):
            pts = d.x_hard[d.y == label][:max_points // 2].numpy()
            ax.scatter(pts[:, 0], pts[:, 1], s=4, color=CLASS_COLORS[label], label=name)
        ax.set(xlabel="$x_{hard,1}$", ylabel="$x_{hard,2}$", aspect="equal", xlim=(-1.2, 1.2), ylim=(-1.2, 1.2),
               title=f"hard feature, {d.turns:g} turns")


@torch.no_grad()
def plot_hard_feature(ax, params: dict, run: int, data: ToyData, n: int = 200, title: str | None = None) -> None:
    """The learned hard feature Phi_hard over the hard input's plane, centred at its median on ``data``
    (red above, blue below; black line: the median level, where a threshold on Phi_hard would cut),
    with the training points on top."""
    grid = torch.linspace(-1.2, 1.2, n)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    p = select_runs(params, run)
    phi = features(p, torch.zeros(1, len(plane), 1), plane[None])[0, :, 1].reshape(n, n)
    centre = features(p, data.x_easy[None], data.x_hard[None])[0, :, 1].median()
    z = (phi - centre).numpy()
    limit = max(abs(z).max(), 1e-12)
    ax.pcolormesh(grid.numpy(), grid.numpy(), z, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="auto", alpha=0.6)
    ax.contour(grid.numpy(), grid.numpy(), z, levels=[0.0], colors="k", linewidths=1)
    for label in (1.0, -1.0):
        pts = data.x_hard[data.y == label][:300].numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=3, color=CLASS_COLORS[label])
    ax.set(xlabel="$x_{hard,1}$", ylabel="$x_{hard,2}$", aspect="equal", xlim=(-1.2, 1.2), ylim=(-1.2, 1.2),
           title=title)


@torch.no_grad()
def plot_decision_plane(ax, params: dict, run: int, data: ToyData, title: str | None = None,
                        max_points: int = 600) -> None:
    """The classifier of run ``run`` in the plane of its two inputs as it reads them: the easy input
    ``x_easy`` (horizontal) against the hard branch's share of the logit, v_hard Phi_hard(x_hard) (vertical).
    The shading is the predicted class, the black curve the decision boundary v_easy Phi_easy(x_easy) +
    v_hard Phi_hard(x_hard) = 0, and the points ``data`` (decorrelated) coloured by their hard label."""
    p = select_runs(params, run)
    v = p[HEAD][0]
    phi = features(p, data.x_easy[None], data.x_hard[None])[0]
    hard_part = (v[1] * phi[:, 1]).numpy()
    low, high = float(hard_part.min()), float(hard_part.max())
    pad = 0.1 * max(high - low, 1e-6)
    line = torch.linspace(float(data.x_easy.min()) - 0.1, float(data.x_easy.max()) + 0.1, 400, dtype=phi.dtype)
    easy_part = (v[0] * features(p, line[None, :, None], torch.zeros(1, len(line), 2, dtype=phi.dtype))[0, :, 0])
    boundary = (-easy_part).numpy()
    grid_h = torch.linspace(low - pad, high + pad, 200, dtype=phi.dtype)
    sign = torch.sign(easy_part[None, :] + grid_h[:, None]).numpy()
    ax.pcolormesh(line.numpy(), grid_h.numpy(), sign, cmap="RdBu_r", vmin=-3, vmax=3, shading="auto")
    ax.plot(line.numpy(), boundary, color="k", lw=1.2)
    for label, name in ((1.0, "hard label $+1$"), (-1.0, "hard label $-1$")):
        keep = (data.y_hard == label).nonzero()[:, 0][:max_points // 2]
        ax.scatter(data.x_easy[keep, 0].numpy(), hard_part[keep.numpy()], s=4, color=CLASS_COLORS[label],
                   label=name)
    ax.set(xlabel="easy input $x_{easy}$", ylabel=r"hard part of the logit, $v_{hard}\,\Phi_{hard}$",
           ylim=(low - pad, high + pad), xlim=(float(line[0]), float(line[-1])), title=title)


def rho_positions(ax, rhos) -> dict:
    """Evenly spaced x positions for the sorted radii (SGD's 0 first), with their tick labels set on ``ax``: a dict
    {rho: x}, so that panels over radii as far apart as 0.01 and 3 read as a row of equal steps."""
    rhos = sorted(rhos)
    ax.set_xticks(range(len(rhos)), ["0\n(SGD)" if r == 0 else f"{r:g}" for r in rhos])
    return {r: i for i, r in enumerate(rhos)}


def plot_probe_vs_rho(ax, summary: pd.DataFrame, optimizer: str, controls: pd.DataFrame | None = None,
                      value_label: str = "hard-feature probe error", legend: bool = True) -> None:
    """Median (line) and interquartile range over seeds (band) of the probe error vs rho, one curve per
    complexity. ``summary``: :func:`samlib.toy.results.summarize` rows for SGD (rho = 0) and ``optimizer``.
    ``controls``: the same for the hard-feature-only control (one dashed line per complexity, its median).
    ``legend``: the axes' own legend (off where one figure legend serves several panels, below them)."""
    rows = summary[summary.optimizer.isin(["SGD", optimizer])].sort_values("rho")
    pos = rho_positions(ax, rows.rho.unique())
    colors = turns_colors(rows.turns)
    for turns, g in rows.groupby("turns"):
        x = g.rho.map(pos).to_numpy()
        ax.plot(x, g["median"], marker="o", color=colors[turns], label=f"{turns:g} turns")
        ax.fill_between(x, g["q25"], g["q75"], color=colors[turns], alpha=0.15)
        if controls is not None:
            c = controls[controls.turns == turns]["median"]
            if len(c):
                ax.axhline(float(c.iloc[0]), color=colors[turns], ls="--", lw=1)
    ax.set(xlabel=rf"$\rho$ ({optimizer})", ylabel=value_label, title=optimizer, ylim=(-0.02, 0.55))
    if controls is not None:
        ax.plot([], [], color="0.4", ls="--", lw=1, label="hard-only control")
    if legend:
        ax.legend(fontsize="small")


def plot_phantom_ratio(axes, ratios: pd.DataFrame) -> None:
    """LSAM, one colour per complexity, median over seeds of :func:`samlib.toy.results.phantom_ratios`.
    axes[0]: the phantom ratio v~_hard / v~_easy (solid) and the real ratio |v_hard| / |v_easy| (dotted)
    vs rho; axes[1]: their quotient, how much more the update weighs the hard feature than the real head."""
    rows = ratios[ratios.optimizer.isin(["SGD", "LSAM"]) & ~ratios.hard_only]
    pos = rho_positions(axes[0], rows.rho.unique())
    rho_positions(axes[1], rows.rho.unique())
    colors = turns_colors(rows.turns)
    medians = rows.groupby(["turns", "rho"])[["phantom_ratio", "real_ratio"]].median().reset_index()
    for turns, g in medians.groupby("turns"):
        x = g.rho.map(pos).to_numpy()
        axes[0].plot(x, g.phantom_ratio, marker="o", color=colors[turns], label=f"phantom, {turns:g} turns")
        axes[0].plot(x, g.real_ratio, marker=".", ls=":", color=colors[turns], label=f"real, {turns:g} turns")
        axes[1].plot(x, g.phantom_ratio / g.real_ratio, marker="o", color=colors[turns], label=f"{turns:g} turns")
    for ax in axes:
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xlabel(r"$\rho$ (LSAM)")
    axes[0].set_yscale("symlog", linthresh=0.1)
    axes[0].set(ylabel="hard / easy last-layer weight", title="phantom and real ratios")
    axes[1].axhline(1, color="0.3", lw=0.8, ls="--")
    axes[1].set(ylabel="phantom ratio / real ratio", title="how much the update favours the hard feature")
    axes[0].legend(fontsize="small", ncol=2)
    axes[1].legend(fontsize="small")


def plot_training_curves(axes, result, runs: list[int], labels: list[str], legend: bool = True) -> None:
    """axes[0]: training loss over steps; axes[1]: |v_easy| and |v_hard| over steps (solid and dashed),
    for the runs ``runs`` of a sweep; both on log-scaled steps, to show the first few hundred. ``legend``: one
    legend for both panels, below them (off where the caller draws one for more panels)."""
    h = result.history
    steps = h["steps"].numpy()
    palette = [COLORS["SGD"], COLORS["LSAM"], COLORS["SAM"], COLORS["phantom"]]
    for color, i, label in zip(palette, runs, labels):
        axes[0].plot(steps + 1, h["loss"][:, i].clamp_min(1e-12).numpy(), color=color, label=label)
        axes[1].plot(steps + 1, h["v"][:, i, 0].abs().numpy(), color=color, label=rf"$|v_{{easy}}|$, {label}")
        axes[1].plot(steps + 1, h["v"][:, i, 1].abs().numpy(), color=color, ls="--",
                     label=rf"$|v_{{hard}}|$, {label}")
    axes[0].set(xlabel="step (log scale)", ylabel="training loss (mini-batch)", xscale="log", yscale="log",
                title="training loss")
    axes[1].set(xlabel="step (log scale)", ylabel="last-layer weight", xscale="log", title="the head $v$")
    if legend:
        shared_legend(axes[0].figure, axes, ncol=3)


def plot_lr_factors(ax, result, run: int, title: str, legend: bool = True) -> None:
    """LSAM's learning-rate scaling of run ``run`` over steps: |v~_k / v_k| for the easy and the hard feature
    (the phantom weight over the real one; 1 = no scaling, SGD), on log-log axes. ``legend``: the axes' own
    legend (off where one figure legend serves several panels)."""
    steps = result.history["steps"].numpy() + 1
    factors = lr_factors(result, run).clamp_min(1e-12)
    for k, (name, color) in enumerate((("easy", COLORS["SGD"]), ("hard", COLORS["LSAM"]))):
        ax.plot(steps, factors[:, k].numpy(), color=color, label=rf"$|\tilde v_{{{name}}} / v_{{{name}}}|$")
    ax.axhline(1, color="0.5", ls="--", lw=1, label="1 (no scaling, SGD)")
    ax.set(xlabel="step (log scale)", ylabel="phantom / real weight (log scale)", xscale="log", yscale="log",
           title=title)
    if legend:
        ax.legend(fontsize="small")


def plot_trajectories(axes, columns: dict, metrics=("hard_error", "easy_error")) -> None:
    """Probe errors along training, one column per entry of ``columns`` ({title: (frame, turns)}, the frame of
    :func:`samlib.toy.regimes.trajectories` and the complexity to draw) and one row per metric of ``metrics``
    (``axes`` (rows, columns)): for SGD and each optimizer at its radius, the median over seeds as a line and the
    quartiles as a band, on symmetric-log steps (step 0 is the initialisation). One legend below the figure."""
    colors = {"SGD": COLORS["SGD"], "LSAM": COLORS["LSAM"], "SAM": COLORS["SAM"]}
    names = {"hard_error": "hard", "easy_error": "easy"}
    for j, (title, (frame, turns)) in enumerate(columns.items()):
        for row, metric in enumerate(metrics):
            ax = axes[row, j]
            for (optimizer, _), part in frame.xs(turns, level="turns").groupby(level=["optimizer", "rho"]):
                steps = part.index.get_level_values("step").to_numpy()
                ax.fill_between(steps, part[(metric, "q25")], part[(metric, "q75")], color=colors[optimizer],
                                alpha=0.18, lw=0)
                ax.plot(steps, part[(metric, "median")], color=colors[optimizer], lw=1.8,
                        label=f"{optimizer} (median, quartiles)")
            ax.set_xscale("symlog", linthresh=20)
            ax.set(xlabel="step", ylim=(-0.02, 0.55))
            if j == 0:
                ax.set_ylabel(f"{names.get(metric, metric)}-probe error")
            if row == 0:
                ax.set_title(title)
    shared_legend(axes[0, 0].figure, axes.flat, ncol=3)
