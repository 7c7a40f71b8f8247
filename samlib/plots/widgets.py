"""Interactive explorers for Jupyter and Colab (``ipywidgets``); the HTML book shows static figures."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..landscape import Loss2D, sam_path
from .landscape import plot_paths, plot_valley_sharpness
from .style import shared_legend

__all__ = ["rho_explorer", "rho_explorer_frames", "toy_explorer", "toy_explorer_frames", "draw_toy_run"]


def rho_explorer(loss: Loss2D, start, lr: float = 0.05, max_steps: int = 1000):
    """Sliders for rho and the number of steps and a *Draw* button that draws GD's and SAM's
    paths and end-point sharpness. Drawing waits for the button: each redraw reruns both
    optimizers, and nothing is computed while the notebook merely executes."""
    from ipywidgets import FloatSlider, IntSlider, interact_manual

    def draw(rho: float, steps: int):
        paths = [sam_path(loss, start, 0.0, lr, steps), sam_path(loss, start, round(rho, 3), lr, steps)]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
        plot_paths(axes[0], loss, paths)
        plot_valley_sharpness(axes[1], loss, paths)
        plt.show()

    explorer = interact_manual.options(manual_name="Draw")
    return explorer(draw, rho=FloatSlider(value=0.2, min=0.0, max=0.6, step=0.01, description="ρ"),
                    steps=IntSlider(value=400, min=0, max=max_steps, step=50, description="steps"))


def _toy_run_panel(ax, optimizer: str, rho: float, turns: float, settings, seed: int = 0):
    """Train one toy run and draw its hard branch (Phi_hard over the plane) on ``ax``, with both probe errors
    in the title. Returns the run's probe-error row."""
    from ..toy.results import probe_errors
    from ..toy.sweep import Run, train_sweep, training_data
    from .toy import plot_hard_feature

    run = Run(optimizer, 0.0 if optimizer == "SGD" else rho, turns, seed)
    result = train_sweep([run], settings, progress=False)
    errors = probe_errors(result).iloc[0]
    plot_hard_feature(ax, result.params, 0, training_data([run], settings)[0],
                      title=f"{optimizer} rho={run.rho:g}, {turns:g} turns\nhard probe error "
                            f"{errors.hard_error:.3f}\neasy probe error {errors.easy_error:.3f}")
    return errors


def draw_toy_run(optimizer: str, rho: float, turns: float, settings, seed: int = 0):
    """Train one toy run and draw what its hard branch learned (Phi_hard over the plane) with its
    hard- and easy-feature probe errors in the title. Returns the run's probe-error row."""
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    errors = _toy_run_panel(ax, optimizer, rho, turns, settings, seed)
    plt.show()
    return errors


def toy_explorer_frames(axes, settings, runs):
    """The toy explorer's picture for fixed choices, for the static book: one panel per ``(optimizer, rho,
    turns)`` of ``runs`` on ``axes``. Returns the probe-error rows (a DataFrame, one row per run)."""
    import pandas as pd

    return pd.DataFrame([_toy_run_panel(ax, *run, settings) for ax, run in zip(axes, runs)])


def rho_explorer_frames(axes, loss: Loss2D, start, lr: float, rhos, steps) -> None:
    """The rho explorer's left panel for fixed choices, for the static book: ``axes[i, j]`` shows GD and SAM
    with ``rhos[j]`` after ``steps[i]`` steps (``axes``: an array of shape (len(steps), len(rhos)))."""
    for row, n in zip(axes, steps):
        for ax, rho in zip(row, rhos):
            plot_paths(ax, loss, [sam_path(loss, start, 0.0, lr, n), sam_path(loss, start, rho, lr, n)],
                       legend=False, sam_label=r"SAM ($\rho$ in the title)")
            ax.set_title(rf"$\rho = {rho:g}$, {n} steps")
    shared_legend(axes.flat[0].figure, list(axes.flat), ncol=4)


def toy_explorer(settings, turns=(0.5, 0.75, 1.0)):
    """Pick the optimizer, rho and the spiral's complexity, press *Train*: one toy run is trained with
    ``settings`` (a :class:`samlib.toy.sweep.ToySettings`) and its hard feature and probe errors drawn."""
    from ipywidgets import Dropdown, FloatSlider, interact_manual

    explorer = interact_manual.options(manual_name="Train")
    return explorer(lambda optimizer, rho, turns: draw_toy_run(optimizer, rho, turns, settings),
                    optimizer=Dropdown(options=["SGD", "LSAM", "SAM"], value="LSAM", description="optimizer"),
                    rho=FloatSlider(value=1.0, min=0.05, max=4.0, step=0.05, description="ρ"),
                    turns=Dropdown(options=list(turns), value=turns[0], description="turns"))
