"""Figures of the chapter "SAM stops noise memorization": error maps, the signal-to-noise law,
signal and noise coefficients over training, the stopping rule and the radius."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..memorization.results import signal_to_noise
from .style import COLORS, rho_colors

__all__ = ["plot_error_maps", "plot_error_vs_snr", "plot_coefficients", "plot_stopping", "plot_radius"]

ERROR_MAP = dict(cmap="YlGnBu", vmin=0.0, vmax=0.5)


ANNOTATION_PT = 10.5  # the numbers in the maps' cells: 10 px or more in the book's column, as the tick labels


def _map(cells: pd.DataFrame, column: str) -> pd.DataFrame:
    """A (‖μ‖ descending) x n frame of one column of :func:`compare_optimizers`."""
    return cells[column].unstack("n").sort_index(ascending=False)


def plot_error_maps(axes, cells: pd.DataFrame, label: str = "clean-label test error") -> None:
    """SGD's and SAM's mean test error over (n, ‖μ‖) and their difference SAM - SGD.

    ``cells`` is :func:`~samlib.memorization.results.compare_optimizers`'s frame; cells where neither optimizer is
    lower on every seed are hatched.
    """
    for ax, name in zip(axes[:2], ("SGD", "SAM")):  # one colour scale: its bar beside SAM's map serves both
        sns.heatmap(_map(cells, name), ax=ax, annot=True, fmt=".2f", annot_kws={"size": ANNOTATION_PT},
                    cbar=name == "SAM", cbar_kws={"label": label}, **ERROR_MAP)
        ax.set_title(name)
    diff, mixed = _map(cells, "difference"), _map(cells.assign(mixed=cells.every_seed == "mixed"), "mixed")
    bound = max(0.05, float(np.abs(diff.values).max()))
    text = np.vectorize(lambda v: "0.00" if round(v, 2) == 0 else f"{v:+.2f}")(diff.values)  # no "-0.00"
    sns.heatmap(diff, ax=axes[2], annot=text, fmt="", annot_kws={"size": ANNOTATION_PT}, cmap="RdBu_r",
                vmin=-bound, vmax=bound, cbar_kws={"label": "SAM - SGD (blue: SAM better)"})
    for (i, j), hatched in np.ndenumerate(mixed.values):
        if hatched:
            axes[2].add_patch(plt.Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="0.6", lw=0))
    axes[2].set_title("SAM − SGD")  # the caption says what the hatching means
    for ax in axes:
        ax.set(xlabel="training points $n$", ylabel=r"signal strength $\|\mu\|$")


def plot_error_vs_snr(ax, table: pd.DataFrame, setting, metric: str = "test_error") -> None:
    """Each cell's mean test error against n‖μ‖⁴/(dσ_p⁴), one marker per n, SGD and SAM."""
    cells = table.groupby(["optimizer", "n", "mu_norm"])[metric].mean().reset_index()
    cells["snr"] = signal_to_noise(cells.n, cells.mu_norm, setting)
    markers = dict(zip(sorted(cells.n.unique()), "osD^vP"))
    for (opt, n), part in cells.groupby(["optimizer", "n"]):
        part = part.sort_values("snr")
        ax.plot(part.snr, part[metric], marker=markers[n], color=COLORS[opt], ls="-" if opt == "SAM" else "--",
                alpha=0.85, label=f"{opt}, n = {n}")
    ax.axvline(1.0, color="0.4", lw=1, ls=":")
    ax.set(xscale="log", xlabel=r"$n\|\mu\|^4 / (d\,\sigma_p^4)$", ylabel="clean-label test error")
    ax.legend(fontsize="small", ncol=2)


def _band(ax, epochs, values, color, label):
    """Thin lines per run and a thick mean line where no run is blanked out; values (T, runs)."""
    ax.plot(epochs, values, color=color, lw=0.8, alpha=0.4)
    complete = ~np.isnan(values).any(axis=1)
    ax.plot(epochs[complete], values[complete].mean(axis=1), color=color, lw=2.2, label=label)


def _until_stop(result, rows):
    """Per run, its trace with the epochs after it stopped blanked out: epochs (T,), mask (T, runs)."""
    epochs = np.array(result.trace.epochs)
    return epochs, epochs[:, None] <= result.epochs[rows].numpy()[None, :]


def plot_coefficients(axes, result) -> None:
    """Signal learning, noise memorization, one against the other, and the share of noise neurons
    active at the real and at the phantom weights, over training, for the SGD and SAM runs of a result."""
    signal, noise = result.signal_learning().numpy(), result.noise_memorization().numpy()
    active = result.trace.noise_active.numpy()
    for opt in ("SGD", "SAM"):
        rows = [i for i, run in enumerate(result.runs) if run.optimizer == opt]
        epochs, live = _until_stop(result, rows)
        s, z = np.where(live, signal[:, rows], np.nan), np.where(live, noise[:, rows], np.nan)
        _band(axes[0], epochs, s, COLORS[opt], opt)
        _band(axes[1], epochs, z, COLORS[opt], opt)
        axes[2].plot(z, s, color=COLORS[opt], lw=1.2, alpha=0.8)
        axes[2].plot([], [], color=COLORS[opt], label=opt)
        real, phantom = (np.where(live, active[:, rows, k], np.nan) for k in (0, 1))
        _band(axes[3], epochs, real, COLORS[opt], f"{opt}, at $w$")
        if opt == "SAM":
            _band(axes[3], epochs, phantom, COLORS["phantom"], r"SAM, at $w + \epsilon$")
    axes[0].set(xlabel="epoch", ylabel=r"signal learning $\max_r\, j\langle w_{j,r}, \mu\rangle$")
    axes[1].set(xlabel="epoch", ylabel=r"noise memorization $\max_r \langle w_{y_i,r}, \xi_i\rangle$")
    axes[2].set(xlabel="noise memorization", ylabel="signal learning")
    axes[3].set(xlabel="epoch", ylabel="share of own-class filters\nactive on the noise patch", ylim=(0, 1))
    for ax in axes:
        ax.legend(fontsize="small")


def plot_stopping(ax, free, stopped: pd.DataFrame, legend: bool = True) -> None:
    """Test error over training without the stopping rule (``free``, a Result with ``eval_every``),
    and a dot per run where the rule stopped the same run (``stopped``: its rows of a results table). ``legend``:
    the axes' own legend, below it (off where one figure legend serves several panels)."""
    epochs, errors = np.array(free.trace.epochs), free.trace.test_error[..., 0].numpy()
    evaluated = ~np.isnan(errors).any(axis=1)
    epochs, errors = epochs[evaluated], errors[evaluated]
    keys = stopped.set_index(["n", "mu_norm", "seed", "tau"])
    for opt in ("SGD", "SAM"):
        rows = [i for i, run in enumerate(free.runs) if run.optimizer == opt]
        _band(ax, epochs, errors[:, rows], COLORS[opt], f"{opt}, no stopping rule")
        at_stop = keys.loc[[(r.n, r.mu_norm, r.seed, r.tau) for r in (free.runs[i] for i in rows)]]
        ax.scatter(at_stop.epochs, at_stop.test_error, color=COLORS[opt], edgecolor="k", zorder=5, s=45)
    ax.scatter([], [], color="0.6", edgecolor="k", label="where the stopping rule stops")
    ax.set(xlabel="epoch", ylabel="clean-label test error", ylim=(-0.01, 1.15 * errors[1:].max() + 0.01))
    if legend:
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: off the curves


def plot_radius(axes, table: pd.DataFrame, metric: str = "test_error") -> None:
    """Mean ``metric`` over seeds against ‖μ‖, one line per radius τ (0 is SGD), one panel per n in
    sorted order; the last panel: mean epochs to reach the loss threshold (or the cap) against τ."""
    taus, ns = sorted(table.tau.unique()), sorted(table.n.unique())
    colors = rho_colors(taus)
    means = table.groupby(["n", "tau", "mu_norm"])[metric].mean()
    for ax, n in zip(axes, ns):
        for tau in taus:
            part = means[n][tau]
            ax.plot(part.index, part.values, marker="o", color=colors[tau],
                    label="SGD" if tau == 0 else rf"SAM, $\tau = {tau:g}$")
        ax.set(title=f"n = {n}", xlabel=r"signal strength $\|\mu\|$",
               ylabel="clean-label test error" if metric == "test_error" else metric)
    axes[0].legend(fontsize="small")
    epochs = table.groupby(["n", "tau"]).epochs.mean()
    for n, marker in zip(ns, "os^D"):
        axes[-1].plot(taus, epochs[n].values, marker=marker, color="0.3", label=f"n = {n}")
    axes[-1].set(title="time to fit", xlabel=r"radius $\tau$ (0 is SGD)", ylabel="epochs (mean over cells)")
    axes[-1].legend(fontsize="small")
