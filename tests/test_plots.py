"""Every figure of :mod:`samlib.plots` draws on tiny inputs (Agg backend, no display): its lines, patches and
labels are there. Tests name what they draw with :func:`draws`; a figure function without a test fails
:func:`test_every_figure_has_a_test`."""
import matplotlib

matplotlib.use("Agg")
import functools
import inspect
import sys
from contextlib import ExitStack
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from samlib.experiments import runs
from samlib.experiments.levers import load_levers
from samlib.landscape import endpoints_table, first_step_table, product_loss, sam_path
from samlib.memorization.data import DataSetting, grid_runs
from samlib.memorization.data import Run as PatchRun
from samlib.memorization.results import compare_optimizers
from samlib.memorization.train import Training, train_runs
from samlib.models import FeaturesAndHead
from samlib.optim.registry import run_label
from samlib.plots import glance, landscape, mechanism, memorization, real_data, style, toy, widgets
from samlib.results import label_order
from samlib.toy.data import make_toy
from samlib.toy.mechanism import gini_table, lr_scaling_over_batches, matched_loss_gini, weight_by_contribution
from samlib.toy.results import phantom_ratios, probe_errors, summarize
from samlib.toy.sweep import Run, ToySettings, grid, train_sweep

MODULES = (glance, landscape, toy, mechanism, memorization, real_data, style, widgets)
COVERED: set[str] = set()  # "module.function" of every figure some test draws
TINY = ToySettings(n=60, hidden=8, steps=20, batch_size=20, log_every=5)
TURNS, SEEDS, RHOS = [0.5, 1.0], [0, 1], [0.5, 1.0]


def _name(function) -> str:
    return f"{function.__module__}.{function.__name__}"


def draws(*functions):
    """Record that the decorated test draws ``functions``; it fails unless it calls each through its module."""
    COVERED.update(_name(f) for f in functions)

    def wrap(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            with ExitStack() as stack:
                spies = [stack.enter_context(mock.patch.object(sys.modules[f.__module__], f.__name__, wraps=f))
                         for f in functions]
                test(*args, **kwargs)
            missed = [f.__name__ for f, spy in zip(functions, spies) if not spy.called]
            assert not missed, f"declared but never drawn: {missed}"
        return run
    return wrap


def _labelled(*axes) -> None:
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel(), f"axis {ax.get_title()!r} lacks an x or y label"


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _new_figure(before: set[int]) -> plt.Figure:
    new = set(plt.get_fignums()) - before
    assert len(new) == 1, f"expected one new figure, got {len(new)}"
    return plt.figure(new.pop())


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sweep():
    """A tiny mechanism-style toy sweep (SGD, LSAM, both ablations, the hard-only control), with snapshots."""
    control = [Run("SGD", 0.0, t, s, hard_only=True) for t in TURNS for s in SEEDS]
    main = grid({"SGD": [0.0], "LSAM": RHOS, "IW-only": RHOS[:1], "LR-only": RHOS[:1]}, TURNS, SEEDS)
    return train_sweep(main + control, TINY, progress=False, snapshots=(5, 10, 15))


@pytest.fixture(scope="module")
def probe_summaries(sweep):
    """(summary of the trained runs, summary of the hard-only control by turns) of the sweep's probe errors."""
    errors = probe_errors(sweep, n_probe=200)
    return summarize(errors[~errors.hard_only]), summarize(errors[errors.hard_only], by=("turns",))


def _index(result, optimizer: str, rho: float, turns: float = TURNS[0], seed: int = 0) -> int:
    return next(i for i, r in enumerate(result.runs)
                if (r.optimizer, r.rho, r.turns, r.seed, r.hard_only) == (optimizer, rho, turns, seed, False))


# --- style and the landscape chapter ------------------------------------------------------------


@draws(landscape.draw_loss_contours)
def test_loss_contours_fill_the_window_and_mark_the_valley():
    fig, ax = plt.subplots()
    landscape.draw_loss_contours(ax, product_loss, (0.0, 2.0), n=40)
    assert len(ax.collections) >= 1 and ax.get_xlim() == (0.0, 2.0) == ax.get_ylim()
    assert [line.get_label() for line in ax.lines] == ["minima: $w_1 w_2 = 1$"]
    _labelled(ax)


@draws(landscape.plot_step_anatomy, landscape.plot_paths, landscape.plot_valley_sharpness,
       landscape.plot_sam_objective)
def test_chapter_figures_and_tables():
    steps = [sam_path(product_loss, (2.2, 0.2), rho, 0.25, 1) for rho in (0.0, 0.2)]
    fig, axes = plt.subplots(1, 3, layout="constrained")
    landscape.plot_step_anatomy(axes[0], product_loss, steps[0], steps[1])
    landscape.plot_paths(axes[1], product_loss, steps)
    landscape.plot_valley_sharpness(axes[2], product_loss, steps)
    style.shared_legend(fig, axes)
    assert any(isinstance(p, plt.Circle) for p in axes[0].patches) and axes[0].get_title()
    assert {"GD", r"SAM, $\rho=0.2$", "start"} <= set(_legend(axes[1]))
    assert len(axes[2].collections) == len(steps)
    assert len(fig.legends) == 1 and "real point $w$" in [t.get_text() for t in fig.legends[0].get_texts()]
    _labelled(*axes)
    fig, axes = plt.subplots(1, 3, layout="constrained")
    landscape.plot_sam_objective(axes, product_loss, 0.2, [0.0, 0.2], n=20)
    assert len(fig.axes) == 4 and len(axes[2].lines) == 2  # a colour bar; one valley curve per radius
    _labelled(*axes)
    table = first_step_table(product_loss, steps)
    assert list(table.index) == [0.0, 0.2] and table.loc[0.2, "step length"] > table.loc[0.0, "step length"]
    ends = endpoints_table(product_loss, steps, last=2)
    assert ends.loc[0.0, "w1 range, last 2 steps"] > 0


def test_book_style_and_colours():
    with plt.rc_context():
        style.use_book_style()
        assert plt.rcParams["axes.titleweight"] == "bold" and plt.rcParams["figure.dpi"] == 110
    assert style.rho_colors([0, 0.1])[0] == style.COLORS["SGD"]
    assert list(style.rho_colors([0.2, 0.1])) == [0.1, 0.2]
    assert len(toy.turns_colors([1.0, 0.5, 1.0])) == 2


def test_tick_labels_stay_legible_at_the_page_width():
    """Tick labels of the widest allowed figure are at least 10 px tall in the book's column, and no figure of
    samlib or of a chapter is wider than that."""
    import json
    import re
    from pathlib import Path

    with plt.rc_context():
        style.use_book_style()
        assert plt.rcParams["xtick.labelsize"] == pytest.approx(style.TICK_PT)
    assert style.tick_px_on_page() >= 10 and style.tick_px_on_page(2 * style.MAX_FIGURE_WIDTH) < 10
    root = Path(__file__).resolve().parents[1]
    sources = {p: p.read_text() for p in (root / "samlib" / "plots").glob("*.py")}
    for notebook in (root / "book").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        sources[notebook] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    widths = {(p.name, float(w)) for p, text in sources.items() for w in re.findall(r"figsize=\(([0-9.]+),", text)}
    assert len(widths) > 10
    assert not {w for w in widths if w[1] > style.MAX_FIGURE_WIDTH}


def test_explorer_draws_on_demand():
    draw = widgets.rho_explorer(product_loss, (2.5, 0.1), lr=0.05)
    before = set(plt.get_fignums())
    draw(rho=0.2, steps=20)
    fig = _new_figure(before)
    assert {"GD", r"SAM, $\rho=0.2$"} <= set(_legend(fig.axes[0]))
    _labelled(fig.axes[1])


@draws(widgets.draw_toy_run)
def test_toy_explorer_trains_and_draws_one_run():
    before = set(plt.get_fignums())
    errors = widgets.draw_toy_run("LSAM", 0.5, 0.5, TINY)
    assert 0 <= errors.hard_error <= 1 and "hard probe error" in _new_figure(before).axes[0].get_title()
    train = widgets.toy_explorer(TINY, turns=(0.5,))
    before = set(plt.get_fignums())
    train("SGD", 0.5, 0.5)
    assert _new_figure(before).axes[0].get_title().startswith("SGD rho=0")


@draws(widgets.rho_explorer_frames)
def test_rho_explorer_frames_show_gd_and_each_rho_at_each_step_count():
    fig, axes = plt.subplots(2, 3, squeeze=False, layout="constrained")
    widgets.rho_explorer_frames(axes, product_loss, (2.5, 0.1), 0.05, rhos=(0.05, 0.2, 0.5), steps=(5, 20))
    assert axes[1, 2].get_title() == r"$\rho = 0.5$, 20 steps"
    assert all(ax.get_legend() is None for ax in axes.flat)  # one legend for the six panels, below them
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count("GD") == 1 and any(label.startswith("SAM") for label in labels)
    plt.close(fig)


@draws(widgets.toy_explorer_frames)
def test_toy_explorer_frames_train_one_run_per_panel():
    fig, axes = plt.subplots(1, 2)
    errors = widgets.toy_explorer_frames(axes, TINY, [("SGD", 0.0, 0.5), ("LSAM", 0.5, 1.0)])
    assert len(errors) == 2 and errors.hard_error.between(0, 1).all()
    assert axes[1].get_title().startswith("LSAM rho=0.5, 1 turns")
    plt.close(fig)


# --- the toy chapter ----------------------------------------------------------------------------


@draws(toy.plot_toy_data)
def test_toy_data_panels():
    fig, axes = plt.subplots(1, 3)
    toy.plot_toy_data(axes, [make_toy(100, t, seed=0) for t in TURNS])
    assert len(axes[0].patches) == 60  # two histograms of 30 bins
    assert [len(ax.collections) for ax in axes[1:]] == [2, 2]
    assert axes[2].get_title() == "hard feature, 1 turns"
    _labelled(*axes)


@draws(toy.plot_hard_feature)
def test_hard_feature_map(sweep):
    fig, ax = plt.subplots()
    i = _index(sweep, "LSAM", 0.5)
    toy.plot_hard_feature(ax, sweep.params, i, make_toy(60, TURNS[0], seed=0), n=30, title="LSAM")
    assert len(ax.collections) >= 4 and ax.get_title() == "LSAM"  # map, median level, two classes
    _labelled(ax)


@draws(toy.plot_decision_plane)
def test_decision_plane(sweep):
    fig, ax = plt.subplots()
    i = _index(sweep, "LSAM", 0.5)
    toy.plot_decision_plane(ax, sweep.params, i, make_toy(60, TURNS[0], seed=0, decorrelated=True), title="LSAM")
    assert len(ax.lines) == 1 and len(ax.collections) == 3  # the boundary; the class shading, the two hard labels
    assert sorted(ax.get_legend_handles_labels()[1]) == ["hard label $+1$", "hard label $-1$"]  # a shared legend's
    assert ax.get_title() == "LSAM"
    _labelled(ax)


@draws(toy.plot_probe_vs_rho)
def test_probe_error_vs_rho(probe_summaries):
    summary, controls = probe_summaries
    fig, ax = plt.subplots()
    toy.plot_probe_vs_rho(ax, summary, "LSAM", controls)
    assert _legend(ax) == ["0.5 turns", "1 turns", "hard-only control"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\n(SGD)", "0.5", "1"]
    assert len(ax.lines) == 2 * len(TURNS) + 1  # a curve and a control line per complexity, the legend's
    _labelled(ax)


@draws(toy.plot_phantom_ratio)
def test_phantom_ratios(sweep):
    fig, axes = plt.subplots(1, 2)
    toy.plot_phantom_ratio(axes, phantom_ratios(sweep))
    assert len(_legend(axes[0])) == 2 * len(TURNS) and len(_legend(axes[1])) == len(TURNS)
    assert axes[0].get_yscale() == "symlog"
    _labelled(*axes)


@draws(toy.plot_training_curves)
def test_training_curves(sweep):
    fig, axes = plt.subplots(1, 2)
    toy.plot_training_curves(axes, sweep, [_index(sweep, "SGD", 0.0), _index(sweep, "LSAM", 0.5)], ["SGD", "LSAM"])
    assert (len(axes[0].lines), len(axes[1].lines)) == (2, 4)
    assert axes[0].get_xscale() == "log" == axes[0].get_yscale()
    _labelled(*axes)


@draws(toy.plot_lr_factors)
def test_lr_factors(sweep):
    fig, ax = plt.subplots()
    toy.plot_lr_factors(ax, sweep, _index(sweep, "LSAM", 0.5), "LSAM")
    assert len(ax.lines) == 3 and ax.get_xscale() == "log" == ax.get_yscale()  # easy, hard and the line at 1
    assert (ax.lines[0].get_ydata() > 0).all()
    _labelled(ax)


@draws(toy.plot_trajectories)
def test_probe_trajectories_draw_a_median_and_a_band_per_optimizer():
    from samlib.toy.regimes import trajectories

    rows = [{"regime": name, "seed_set": "held-out", "read": "trajectory", "optimizer": opt, "rho": rho,
             "turns": 0.75, "seed": seed, "step": step, "hard_error": 0.4 / (1 + step / 100) + 0.01 * seed,
             "easy_error": 0.0}
            for name in ("init 1", "init 0.1") for opt, rho in (("SGD", 0.0), ("LSAM", 0.5), ("SAM", 0.02))
            for seed in range(4) for step in (0, 20, 100, 3000)]
    frame = pd.DataFrame(rows)
    fig, axes = plt.subplots(2, 2, squeeze=False, layout="constrained")
    toy.plot_trajectories(axes, {"α = 1": (trajectories(frame, "init 1"), 0.75),
                                 "init 0.1": (trajectories(frame, "init 0.1"), 0.75)})
    assert [len(ax.lines) for ax in axes.flat] == [3] * 4 and [len(ax.collections) for ax in axes.flat] == [3] * 4
    assert [ax.get_title() for ax in axes[0]] == ["α = 1", "init 0.1"] and axes[0, 0].get_xscale() == "symlog"
    assert list(axes[0, 0].lines[0].get_xdata()) == [0, 20, 100, 3000]
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes.flat)
    _labelled(*axes[:, 0])
    fig, axes = plt.subplots(1, 1, squeeze=False)
    toy.plot_trajectories(axes, {"one": (trajectories(frame, "init 1"), 0.75)}, metrics=("hard_error",))
    assert axes[0, 0].get_ylabel() == "hard-probe error" and len(axes[0, 0].lines) == 3


# --- the mechanism chapter ----------------------------------------------------------------------


@draws(mechanism.plot_schematic)
def test_mechanism_schematic():
    from samlib.toy.mechanism import schematic

    fig, axes = plt.subplots(1, 2, layout="constrained")
    mechanism.plot_schematic(axes, schematic(rho=1.0, n=40))
    assert axes[0].get_legend_handles_labels()[1] == ["real head $v$", "phantom head $\\tilde v$", "ascent $\\epsilon$"]
    assert len(axes[0].texts) == 3 and len(axes[1].collections) == 1  # three arrows; one point per example
    assert axes[1].collections[0].get_offsets().shape == (40, 2)
    _labelled(*axes)


@draws(mechanism.plot_lorenz)
def test_lorenz_curves():
    fig, ax = plt.subplots()
    weights = {"even": torch.ones(50), "skewed": torch.arange(50.0) ** 3}
    mechanism.plot_lorenz(ax, weights, {"even": "k"})
    assert len(ax.lines) == 3 and _legend(ax)[1:] == ["even (Gini 0.00)", "skewed (Gini 0.60)"]
    assert ax.lines[1].get_color() == "k"
    _labelled(ax)


@draws(mechanism.plot_gini_gap)
def test_gini_gap_at_equal_loss(sweep):
    matched = matched_loss_gini(gini_table(sweep, [5, 10, 15, None], runs=[_index(sweep, o, r, t, s)
                                for o, r in (("SGD", 0.0), ("LSAM", 0.5)) for t in TURNS for s in SEEDS]), 0.5)
    assert matched.sgd_same_loss.notna().any()
    fig, axes = plt.subplots(1, len(TURNS), layout="constrained")
    mechanism.plot_gini_gap(axes, matched)
    assert [len(ax.collections) for ax in axes] == [2, 2] and all(ax.xaxis_inverted() for ax in axes)
    assert axes[1].get_title() == "1 turns" and len(fig.legends[0].get_texts()) == 2  # one legend below the panels
    assert axes[0].get_ylabel() and not axes[1].get_ylabel()  # the panels share their y axis: one label
    assert all(ax.get_xlabel() for ax in axes)


@draws(mechanism.plot_lr_scaling)
def test_lr_scaling_boxes(sweep):
    frame = lr_scaling_over_batches(sweep, [_index(sweep, "LSAM", 0.5, t) for t in TURNS], batches=5, batch_size=20)
    fig, ax = plt.subplots()
    mechanism.plot_lr_scaling(ax, frame)
    assert len(ax.patches) >= 2 * len(TURNS) and _legend(ax) == ["easy", "hard"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "1"]
    _labelled(ax)


@draws(mechanism.plot_weight_by_contribution)
def test_weight_by_contribution_heatmaps(sweep):
    i = _index(sweep, "LSAM", 0.5)
    grids = [weight_by_contribution(sweep, i, bins=3, phantom=p) for p in (False, True)]
    fig, axes = plt.subplots(1, 2)
    mechanism.plot_weight_by_contribution(axes, grids, ["real", "phantom"])
    assert [len(ax.images) for ax in axes] == [1, 1] and len(fig.axes) == 3  # and a shared colour bar
    assert [ax.get_title() for ax in axes] == ["real", "phantom"] and len(axes[0].get_xticklabels()) == 3
    _labelled(*axes)


@draws(mechanism.plot_ablation)
def test_ablation_panels(probe_summaries):
    summary, _ = probe_summaries
    fig, axes = plt.subplots(1, len(TURNS))
    mechanism.plot_ablation(axes, summary)
    assert _legend(axes[0]) == ["SGD (median, quartiles)", "IW-only", "LR-only", "LSAM"]
    assert [len(ax.containers) for ax in axes] == [3, 3]  # one error bar per optimizer
    _labelled(*axes)


# --- the noise-memorization chapter -------------------------------------------------------------

SMALL = DataSetting(d=40, sigma_p=1.0, p=0.2, n_test=300)
TRAIN = Training(width=4, batch_size=4, max_epochs=6, stop_loss=0.3, log_every=None)
CELL = (8, 3.0)


@pytest.fixture(scope="module")
def grid_table():
    """One row per run of a tiny grid: n in {8, 16}, ‖μ‖ in {1, 3}, two seeds, τ in {0, 0.5, 1}."""
    return train_runs(grid_runs([8, 16], [1.0, 3.0], SEEDS, taus=[0.0, 0.5, 1.0]), SMALL, TRAIN, progress=False).table()


@pytest.fixture(scope="module")
def traced():
    """The runs of one cell (SGD and SAM, two seeds) without the stopping rule, logged and evaluated every epoch."""
    training = Training(width=4, batch_size=4, max_epochs=6, stop_loss=None, log_every=1, eval_every=1)
    return train_runs([PatchRun(*CELL, s, tau) for s in SEEDS for tau in (0.0, 0.5)], SMALL, training, progress=False)


@draws(memorization.plot_error_maps)
def test_error_maps(grid_table):
    cells = compare_optimizers(grid_table[grid_table.tau.isin([0.0, 0.5])])
    fig, axes = plt.subplots(1, 3)
    memorization.plot_error_maps(axes, cells)
    assert [ax.get_title() for ax in axes[:2]] == ["SGD", "SAM"] and len(fig.axes) == 5  # SGD's and SAM's share one
    assert "-0.00" not in {t.get_text() for t in axes[2].texts}
    assert all(len(ax.texts) == len(cells) for ax in axes)  # a number (or ≈) per cell
    _labelled(*axes)


@draws(memorization.plot_error_vs_snr)
def test_error_vs_signal_to_noise(grid_table):
    fig, ax = plt.subplots()
    memorization.plot_error_vs_snr(ax, grid_table[grid_table.tau.isin([0.0, 0.5])], SMALL)
    assert _legend(ax) == ["SAM, n = 8", "SAM, n = 16", "SGD, n = 8", "SGD, n = 16"]
    assert ax.get_xscale() == "log"
    _labelled(ax)


@draws(memorization.plot_coefficients)
def test_coefficients_over_training(traced):
    fig, axes = plt.subplots(1, 4)
    memorization.plot_coefficients(axes, traced)
    assert _legend(axes[0]) == ["SGD", "SAM"]
    assert _legend(axes[3]) == ["SGD, at $w$", "SAM, at $w$", r"SAM, at $w + \epsilon$"]
    _labelled(*axes)


@draws(memorization.plot_stopping)
def test_stopping_rule(traced, grid_table):
    n, mu = CELL
    fig, ax = plt.subplots()
    memorization.plot_stopping(ax, traced, grid_table[(grid_table.n == n) & (grid_table.mu_norm == mu)])
    assert len(ax.collections) == 3 and len(_legend(ax)) == 3  # a dot per optimizer; two bands, the dots
    _labelled(ax)
    fig, ax = plt.subplots()
    memorization.plot_stopping(ax, traced, grid_table[(grid_table.n == n) & (grid_table.mu_norm == mu)], legend=False)
    assert ax.get_legend() is None  # the caller draws one legend for both panels


@draws(memorization.plot_radius)
def test_radius_panels(grid_table):
    fig, axes = plt.subplots(1, 3)
    memorization.plot_radius(axes, grid_table)
    assert [ax.get_title() for ax in axes] == ["n = 8", "n = 16", "time to fit"]
    assert _legend(axes[0]) == ["SGD", r"SAM, $\tau = 0.5$", r"SAM, $\tau = 1$"] and len(axes[2].lines) == 2
    _labelled(*axes)


# --- the real-image chapters --------------------------------------------------------------------


def _study(metric: str) -> pd.DataFrame:
    """Rows of a fake study: SGD, SAM at two radii and LSAM at two, three seeds, random ``metric``."""
    g = np.random.default_rng(0)
    rows = [{"optimizer": o, "rho": r, "seed": s, "label": run_label(o, r), metric: g.uniform()}
            for o, rhos in (("SGD", [0.0]), ("SAM", [0.05, 0.1]), ("LSAM", [0.5, 1.0])) for r in rhos for s in range(3)]
    return pd.DataFrame(rows)


@draws(real_data.plot_gain_over_training)
def test_gain_over_training_draws_each_seed_and_the_median():
    rows = [{"optimizer": opt, "rho": rho, "label": run_label(opt, rho), "seed": seed, "epochs": epochs,
             "hard_probe": 0.6 + 0.01 * epochs + (0.02 * seed if opt == "SAM" else 0.0)}
            for opt, rho in (("SGD", 0.0), ("SAM", 0.05)) for seed in (1, 2, 3) for epochs in (5, 10, 20)]
    fig, ax = plt.subplots()
    real_data.plot_gain_over_training(ax, pd.DataFrame(rows), "hard_probe", "gain over SGD")
    assert len(ax.lines) == 3 + 1 + 1  # one per seed, the median, no effect
    median = ax.lines[3]
    assert list(median.get_xdata()) == [5, 10, 20] and list(median.get_ydata()) == pytest.approx([0.04] * 3)
    assert ax.get_legend_handles_labels()[1] == ["SAM ρ=0.05, median of 3 seeds"]
    _labelled(ax)


@draws(real_data.plot_images)
def test_image_grid():
    fig, axes = plt.subplots(2, 2)
    real_data.plot_images(axes[0], torch.rand(2, 3, 4, 4), ["a", "b"])
    real_data.plot_images(axes[1], torch.rand(2, 1, 4, 4), ["c", "d"])
    assert [ax.get_title() for ax in axes.flat] == ["a", "b", "c", "d"]
    assert all(len(ax.images) == 1 and not ax.get_xticks().size for ax in axes.flat)


@draws(real_data.plot_seed_results)
def test_seed_results():
    frame = _study("hard_probe")
    fig, ax = plt.subplots()
    real_data.plot_seed_results(ax, frame, "hard_probe", "probe accuracy", reference=0.5, reference_label="untrained")
    assert [t.get_text() for t in ax.get_xticklabels()] == label_order(frame)
    assert len(ax.collections) == 2 * frame.label.nunique() and _legend(ax) == ["one seed", "untrained"]
    assert ax.get_ylabel() == "probe accuracy"


@draws(real_data.plot_seed_sets)
def test_seed_sets_draw_tuning_then_held_out_between_floor_and_ceiling():
    frame = pd.concat([_study("hard_probe").assign(seed_set=seed_set) for seed_set in ("tuning", "held out")])
    fig, axes = plt.subplots(1, 2, layout="constrained")
    real_data.plot_seed_sets(axes, frame, "hard_probe", "probe accuracy", floor=0.2, ceiling=0.9)
    assert [ax.get_title() for ax in axes] == ["tuning seeds", "held-out seeds"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["one seed", "floor (random init)",
                                                                  "ceiling (hard only)"]  # one, below the panels
    for ax in axes:
        assert ax.get_legend() is None
        assert [line.get_ydata()[0] for line in ax.get_lines()[-2:]] == [0.2, 0.9]
        assert ax.get_ylabel() == "probe accuracy" and len(ax.collections) == 2 * frame.label.nunique()


@draws(real_data.plot_metric_vs_rho)
def test_metric_vs_rho():
    fig, ax = plt.subplots()
    real_data.plot_metric_vs_rho(ax, _study("train_loss"), "train_loss", "final training loss")
    assert _legend(ax) == ["SGD (mean, ±1 sd)", "SAM", "LSAM"] and ax.get_xscale() == "log"
    _labelled(ax)


@draws(real_data.plot_gini_vs_rho)
def test_gini_vs_rho():
    fig, ax = plt.subplots()
    real_data.plot_gini_vs_rho(ax, [0.1, 1.0], [0.3, 0.2], 0.4)
    assert len(ax.lines) == 2 and list(ax.lines[1].get_ydata()) == [0.3, 0.2] and ax.get_ylim() == (0, 1)
    _labelled(ax)


def _net(seed: int) -> FeaturesAndHead:
    torch.manual_seed(seed)
    return FeaturesAndHead(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU()), nn.Linear(5, 3))


def _drawn(ax) -> list:
    return [(line.get_label(), line.get_color(), list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines]


@draws(real_data.plot_phantom_weights)
def test_phantom_weights_draws_what_the_chapters_drew():
    images, labels, rho, rhos = torch.randn(40, 3, 2, 2), torch.randint(0, 3, (40,)), 0.5, [0.05, 0.5, 2.0]
    sgd_model, lsam_model = _net(0), _net(1)
    sgd_parts, lsam_parts = (runs.network_decomposition(m, images, labels, rho) for m in (sgd_model, lsam_model))
    by_rho = runs.phantom_gini_by_rho(sgd_model, images, labels, rhos)
    fig, new = plt.subplots(1, 2)
    real_data.plot_phantom_weights(new, sgd_parts, lsam_parts, rho, by_rho)
    fig, old = plt.subplots(1, 2)  # the two chapters' cells before this function
    labels = ["SGD, λ", f"SGD net, λ̃ (ρ={rho:g})", f"LSAM net, λ̃ (ρ={rho:g})"]
    mechanism.plot_lorenz(old[0], dict(zip(labels, (sgd_parts.weights, sgd_parts.phantom_weights,
                                                    lsam_parts.phantom_weights))),
                          dict(zip(labels, (style.COLORS["SGD"], style.COLORS["phantom"], style.COLORS["LSAM"]))))
    real_data.plot_gini_vs_rho(old[1], rhos, [by_rho[r] for r in rhos], by_rho[0.0])
    old[1].set_title("SGD's network", fontsize="small")
    for a, b in zip(new, old):
        assert _drawn(a) == _drawn(b) and _legend(a) == _legend(b) and a.get_title() == b.get_title()
    assert _legend(new[0])[1].startswith("SGD, λ (Gini") and list(new[1].lines[1].get_xdata()) == rhos
    assert new[1].title.get_fontsize() == old[1].title.get_fontsize()
    _labelled(*new)


@draws(real_data.plot_curves)
def test_per_epoch_curves():
    curves = load_levers("cifar_mnist", curves=True)
    fig, axes = plt.subplots(1, 2)
    real_data.plot_curves(axes, curves)
    labels = label_order(curves)
    assert _legend(axes[0]) == labels and (len(axes[0].lines), len(axes[1].lines)) == (len(labels), 2 * len(labels))
    _labelled(*axes)


@draws(real_data.plot_headroom)
def test_headroom_rows_bands_and_markers():
    table = pd.DataFrame({"pixels": [0.6, 0.8], "random init": [0.65, 0.82], "SGD": [0.66, 0.83],
                          "hard only": [0.85, 0.86]}, index=["roomy", "tight"])
    table["gap"] = table["hard only"] - table["random init"]
    fig, ax = plt.subplots(layout="constrained")
    real_data.plot_headroom(ax, table, 0.15)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend, below the rows
    assert set(legend) == {"floor to ceiling ≥ 0.15", "floor to ceiling < 0.15", "pixels", "random init", "SGD",
                           "hard only"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["roomy", "tight"]
    fig, ax = plt.subplots()
    real_data.plot_headroom(ax, table.rename(index={"roomy": "MNIST over cluttered FMNIST (our CIFAR-MNIST)"}), 0.15)
    assert ax.get_yticklabels()[0].get_text() == "MNIST over cluttered\nFMNIST (our CIFAR-MNIST)"  # wrapped
    bands = [line.get_xdata() for line in ax.lines]
    assert [tuple(b) for b in bands] == [(0.65, 0.85), (0.82, 0.86)]  # floor to ceiling, one band per bed
    sgd = [c for c in ax.collections if c.get_label() == "SGD"][0]
    assert tuple(sgd.get_offsets()[0]) == (0.66, 0.0)
    _labelled(ax)


@draws(real_data.plot_paired_gains)
def test_paired_gains_one_row_per_lever_run_and_a_dot_per_seed():
    gains = pd.DataFrame([{"lever": lever, "run": run, "seed_set": seed_set, "seed": seed, "gain": 0.01 * seed}
                          for lever, run in (("none", "SAM ρ=0.05"), ("weight decay", "LSAM ρ=0.1"))
                          for seed_set in ("tuning", "held out") for seed in range(5)])
    fig, ax = plt.subplots()
    real_data.plot_paired_gains(ax, gains)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["none: SAM ρ=0.05", "weight decay: LSAM ρ=0.1"]
    assert _legend(ax) == ["tuning seeds", "median", "held out seeds"]
    dots = {c.get_label(): c.get_offsets() for c in ax.collections}
    assert len(dots["tuning seeds"]) == 10 and len(dots["held out seeds"]) == 10
    assert sorted(dots["median"][:, 0]) == pytest.approx([0.02, 0.02])
    _labelled(ax)


@draws(real_data.plot_stage_curves)
def test_stage_curves_are_medians_per_label_and_seed_set():
    stages = pd.DataFrame([{"label": label, "optimizer": label.split()[0], "rho": rho, "seed_set": seed_set,
                            "seed": seed, "epochs": epochs, "hard_probe": 0.6 + 0.01 * epochs + 0.001 * seed}
                           for label, rho in (("SGD", 0.0), ("LSAM ρ=0.1", 0.1)) for seed_set in ("tuning", "held out")
                           for seed in range(3) for epochs in (5, 10, 20)])
    fig, ax = plt.subplots()
    real_data.plot_stage_curves(ax, stages, "hard_probe", "probe accuracy")
    assert _legend(ax) == ["SGD, tuning", "SGD, held out", "LSAM ρ=0.1, tuning", "LSAM ρ=0.1, held out"]
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [5, 10, 20] and list(line.get_ydata()) == pytest.approx([0.651, 0.701, 0.801])
    assert ax.get_lines()[1].get_linestyle() == "--"
    _labelled(ax)


@draws(glance.plot_glance)
def test_glance_one_row_per_claim_intervals_where_the_seeds_allow_and_the_legend_below_the_axes():
    frame = pd.DataFrame([
        {"claim": "a", "seed_set": "tuning", "median": 0.2, "low": 0.1, "high": 0.4},
        {"claim": "a", "seed_set": "held out", "median": 0.3, "low": 0.1, "high": 0.5},
        {"claim": "b", "seed_set": "tuning", "median": -0.5, "low": np.nan, "high": np.nan},
        {"claim": "b", "seed_set": "held out", "median": 1.2, "low": np.nan, "high": np.nan}])
    fig, ax = plt.subplots()
    glance.plot_glance(ax, frame, {"a": "claim A", "b": "claim B"})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["claim B", "claim A"]  # the first claim on top
    intervals = [line for line in ax.get_lines() if len(line.get_xdata()) == 2 and line.get_linestyle() == "-"
                 and line.get_xdata()[0] != line.get_xdata()[1]]
    assert len(intervals) == 2  # claim a on both seed sets; claim b has none
    assert _legend(ax) == ["tuning seeds", "held-out seeds"]
    assert ax.get_legend().get_bbox_to_anchor().y0 < ax.bbox.y0  # below the axes, away from the data
    assert ax.get_xlabel()
    plt.close(fig)


# --- every figure is drawn by some test ---------------------------------------------------------


def test_every_figure_has_a_test():
    public = {_name(f) for module in MODULES for name, f in inspect.getmembers(module, inspect.isfunction)
              if f.__module__ == module.__name__ and name.startswith(("plot_", "draw_"))}
    assert len(public) > 20 and _name(real_data.plot_phantom_weights) in public
    assert public <= COVERED, f"figures without a test: {sorted(public - COVERED)}"
