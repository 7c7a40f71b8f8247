"""Figures of the real-image chapters (CIFAR-MNIST, Waterbirds, the test beds): example images, the headroom of
each test bed, per-seed results of a study, a metric against rho, the Gini of the phantom weights against rho,
the two-panel phantom-weights figure, and the levers' paired gains and probe curves over training."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from torch import Tensor

from ..decompose import Decomposition
from ..results import label_order
from .layout import REFERENCE
from .mechanism import plot_lorenz
from .style import COLORS, shared_legend

__all__ = ["plot_images", "plot_seed_results", "plot_seed_sets", "plot_metric_vs_rho", "plot_gini_vs_rho",
           "plot_phantom_weights", "plot_curves", "plot_headroom", "plot_paired_gains", "plot_stage_curves",
           "plot_gain_over_training"]


def plot_images(axes, images: Tensor, titles) -> None:
    """One image (C, H, W) in [0, 1] per axis (gray for one channel), titled, without ticks."""
    for ax, image, title in zip(np.ravel(axes), images, titles):
        pixels = image.permute(1, 2, 0).numpy()
        ax.imshow(pixels[..., 0] if pixels.shape[-1] == 1 else pixels, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize="small")
        ax.set(xticks=[], yticks=[])
        ax.grid(False)


def _color(label: str):
    return COLORS[label.split()[0]]


def plot_seed_results(ax, frame: pd.DataFrame, metric: str, ylabel: str, reference: float | None = None,
                      reference_label: str = "") -> None:
    """One column per optimizer label (SGD, SAM, LSAM, each by rho): a dot per seed, a bar for the mean; an
    optional dashed line (e.g. the random-initialisation value)."""
    order = label_order(frame)
    means = frame.groupby("label")[metric].mean()
    for i, label in enumerate(order):
        values = frame[frame.label == label][metric]
        ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, color=_color(label),
                   s=28, zorder=3, label="one seed" if i == 0 else None)
        ax.hlines(means[label], i - 0.25, i + 0.25, color=_color(label), lw=2.5)
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=1, label=reference_label)
    ax.set_xticks(range(len(order)), order)
    ax.set(ylabel=ylabel, xlim=(-0.6, len(order) - 0.4))
    ax.legend(fontsize="small", loc="best")


def plot_seed_sets(axes, frame: pd.DataFrame, metric: str, ylabel: str, floor: float | None = None,
                   ceiling: float | None = None) -> None:
    """:func:`plot_seed_results` for each seed set of ``frame`` (column ``seed_set``), the tuning seeds on
    ``axes[0]`` and the held-out ones on ``axes[1]``, each between the bed's ``floor`` (dashed, random init) and
    ``ceiling`` (dotted, the hard-only network) where they are given."""
    for ax, seed_set in zip(axes, ("tuning", "held out")):
        plot_seed_results(ax, frame[frame.seed_set == seed_set], metric, ylabel, reference=floor,
                          reference_label="floor (random init)")
        if ceiling is not None:
            ax.axhline(ceiling, color="0.4", ls=":", lw=1, label="ceiling (hard only)")
        ax.set_title(f"{seed_set.replace(' ', '-')} seeds")
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.get_legend().remove()
    shared_legend(axes[0].figure, axes, ncol=3)  # one legend below both panels, off the seeds' dots


def plot_metric_vs_rho(ax, frame: pd.DataFrame, metric: str, ylabel: str) -> None:
    """``metric`` against rho (log scale) for SAM and LSAM (one dot per run, line through the means), SGD as a
    band (mean +- sd over its runs)."""
    sgd = frame[frame.optimizer == "SGD"][metric]
    spread = sgd.std() if len(sgd) > 1 else 0.0
    ax.axhspan(sgd.mean() - spread, sgd.mean() + spread, color=COLORS["SGD"], alpha=0.15)
    ax.axhline(sgd.mean(), color=COLORS["SGD"], label=f"SGD (mean{', ±1 sd' if len(sgd) > 1 else ''})")
    for opt in ("SAM", "LSAM"):
        rows = frame[frame.optimizer == opt]
        if rows.empty:
            continue
        ax.scatter(rows.rho, rows[metric], color=COLORS[opt], s=20, alpha=0.6)
        mean = rows.groupby("rho")[metric].mean()
        ax.plot(mean.index, mean.values, marker="o", color=COLORS[opt], label=opt)
    ax.set(xscale="log", xlabel=r"$\rho$ (log scale)", ylabel=ylabel)
    ax.legend(fontsize="small")


def plot_gini_vs_rho(ax, rhos, ginis, real_gini: float) -> None:
    """Gini of the phantom weights of one trained network against rho, with the Gini of its real weights."""
    ax.axhline(real_gini, color=COLORS["SGD"], label=r"$\lambda$ (real head)")
    ax.plot(rhos, ginis, marker="o", color=COLORS["LSAM"], label=r"$\tilde\lambda$ (phantom head)")
    ax.set(xscale="log", xlabel=r"$\rho$ of the phantom head (log scale)", ylabel="Gini of the importance weights",
           ylim=(0, 1))
    ax.legend(fontsize="small")


def plot_phantom_weights(axes, sgd_parts: Decomposition, lsam_parts: Decomposition, rho: float,
                         gini_by_rho: dict) -> None:
    """axes[0]: Lorenz curves of the SGD network's lambda and of the SGD and LSAM networks' lambda~ at ``rho``
    (each part: :func:`samlib.experiments.runs.network_decomposition`, weights (N,)); axes[1]: the SGD network's
    Gini against rho (``gini_by_rho``: :func:`samlib.experiments.runs.phantom_gini_by_rho`, 0.0 the real head)."""
    curves = {"SGD, λ": (sgd_parts.weights, "SGD"),
              f"SGD net, λ̃ (ρ={rho:g})": (sgd_parts.phantom_weights, "phantom"),
              f"LSAM net, λ̃ (ρ={rho:g})": (lsam_parts.phantom_weights, "LSAM")}
    plot_lorenz(axes[0], {label: w for label, (w, _) in curves.items()},
                {label: COLORS[color] for label, (_, color) in curves.items()})
    rhos = sorted(r for r in gini_by_rho if r != 0.0)
    plot_gini_vs_rho(axes[1], rhos, [gini_by_rho[r] for r in rhos], gini_by_rho[0.0])
    axes[1].set_title("SGD's network", fontsize="small")


def plot_curves(axes, frame: pd.DataFrame) -> None:
    """Per-epoch curves of one run per optimizer (``frame``: :func:`samlib.experiments.levers.run_curves` rows).
    axes[0]: hard-half probe accuracy; axes[1]: Gini of lambda (solid) and of lambda~ (dashed)."""
    for label in label_order(frame):
        rows = frame[frame.label == label].sort_values("epoch")
        color = _color(label)
        axes[0].plot(rows.epoch, rows.hard_probe, marker="o", ms=3, color=color, label=label)
        axes[1].plot(rows.epoch, rows.gini_real, color=color, label=f"{label}, λ")
        axes[1].plot(rows.epoch, rows.gini_phantom, color=color, ls="--", label=f"{label}, λ̃")
    axes[0].set(xlabel="epoch", ylabel="probe accuracy, clothing (hard) half")
    axes[1].set(xlabel="epoch", ylabel="Gini of the importance weights", ylim=(0, 1))
    for ax in axes:
        ax.legend(fontsize="small")


HEADROOM_MARKERS = {"pixels": ("s", "0.55"), "random init": ("o", "0.2"), "SGD": ("D", COLORS["SGD"]),
                    "hard only": ("^", COLORS["phantom"])}


LABEL_WIDTH = 24  # characters of a bed's name on one line of plot_headroom's axis


def plot_headroom(ax, table: pd.DataFrame, min_gap: float) -> None:
    """One row per test bed (``table``: :func:`samlib.experiments.headroom.headroom_table`): the pixel probe, the
    floor (random init), SGD and the ceiling (hard only) on the hard feature's probe accuracy, with a band from
    floor to ceiling, green where it is at least ``min_gap`` wide and grey where it is not."""
    seen = set()
    for i, (bed, row) in enumerate(table.iterrows()):
        roomy = bool(row["gap"] >= min_gap)
        band = f"floor to ceiling {'≥' if roomy else '<'} {min_gap:g}"
        ax.plot([row["random init"], row["hard only"]], [i, i], color=COLORS["LSAM"] if roomy else "0.75", lw=8,
                alpha=0.45, solid_capstyle="butt", label=None if band in seen else band)
        seen.add(band)
        for stage, (marker, mcolor) in HEADROOM_MARKERS.items():
            ax.scatter(row[stage], i, marker=marker, color=mcolor, s=46, zorder=3, label=stage if i == 0 else None)
    ax.set_yticks(range(len(table)), [textwrap.fill(str(bed), LABEL_WIDTH) for bed in table.index])  # long names wrap
    ax.invert_yaxis()
    ax.set(xlabel="probe accuracy on the hard feature (median over seeds)", ylabel="test bed")
    # one legend below the axes, off the rows (the figure needs a constrained layout)
    ax.figure.legend(*ax.get_legend_handles_labels(), fontsize="small", loc="outside lower center", ncol=3)


SEED_SET_STYLE = {"tuning": dict(marker="o", ls="-"), "held out": dict(marker="s", ls="--")}


def plot_paired_gains(ax, gains: pd.DataFrame) -> None:
    """One row per (lever, run) of ``gains`` (:func:`samlib.experiments.testbeds.paired_gains`, in its order): a
    dot per seed at the run's metric minus its same-seed SGD run's, circles for the tuning seeds and squares for
    the held-out ones, a tick at each set's median, and a line at 0 (no gain)."""
    rows = list(dict.fromkeys(zip(gains.lever, gains.run)))
    for seed_set, offset in (("tuning", -0.15), ("held out", 0.15)):
        part = gains[gains.seed_set == seed_set]
        y = [rows.index(key) + offset for key in zip(part.lever, part.run)]
        ax.scatter(part.gain, y, marker=SEED_SET_STYLE[seed_set]["marker"], s=24, alpha=0.8, zorder=3,
                   color=COLORS["SAM"] if seed_set == "tuning" else COLORS["LSAM"], label=f"{seed_set} seeds")
        medians = part.groupby(["lever", "run"], sort=False).gain.median()
        ax.scatter(medians.to_numpy(), [rows.index(key) + offset for key in medians.index], marker="|", s=240,
                   color="0.15", zorder=4, label="median" if seed_set == "tuning" else None)
    ax.axvline(0, color="0.4", lw=1, ls=":")
    ax.set_yticks(range(len(rows)), [f"{lever}: {run}" for lever, run in rows])
    ax.invert_yaxis()
    ax.set(xlabel="hard-half probe accuracy minus the same-seed SGD run's", ylabel="lever: run")
    ax.legend(fontsize="small", loc="upper left")


def plot_stage_curves(ax, stages: pd.DataFrame, metric: str, ylabel: str) -> None:
    """The median ``metric`` over seeds against the epoch count (``stages``: stage rows of
    :func:`samlib.experiments.testbeds.staged_runs` with ``seed_set``), one line per run label and seed set:
    solid for the tuning seeds, dashed for the held-out ones."""
    medians = stages.groupby(["seed_set", "label", "epochs"])[metric].median()
    for label in label_order(stages):
        for seed_set, style in SEED_SET_STYLE.items():
            if (seed_set, label) in medians.index.droplevel("epochs"):
                curve = medians.loc[(seed_set, label)].sort_index()
                ax.plot(curve.index, curve.to_numpy(), color=_color(label), ms=4, label=f"{label}, {seed_set}",
                        **style)
    ax.set(xlabel="epochs of training", ylabel=ylabel)
    ax.legend(fontsize="small")


def plot_gain_over_training(ax, stages: pd.DataFrame, metric: str, ylabel: str) -> None:
    """Each run's ``metric`` minus its same-seed SGD run's after every epoch count of ``stages`` (rows with
    optimizer, rho, label, seed and epochs): a thin line per seed, the median over seeds thick, one colour per
    run, and no effect dotted."""
    sgd = stages[stages.optimizer == "SGD"].set_index(["seed", "epochs"])[metric]
    for label in label_order(stages):
        if label == "SGD":
            continue
        rows = stages[stages.label == label].set_index(["seed", "epochs"])[metric]
        gain = (rows - sgd.reindex(rows.index)).unstack("seed").sort_index()
        ax.plot(gain.index, gain.to_numpy(), color=_color(label), lw=0.8, alpha=0.45)
        ax.plot(gain.index, gain.median(axis=1).to_numpy(), color=_color(label), lw=2.5, marker="o",
                label=f"{label}, median of {gain.shape[1]} seeds")
    ax.axhline(0, color="0.4", ls=":", lw=1, gid=REFERENCE)
    ax.set(xlabel="epochs of training", ylabel=ylabel)
