"""Interactive explorers for Jupyter and Colab (``ipywidgets``); the HTML book shows static figures."""
from __future__ import annotations

import matplotlib.pyplot as plt

from .landscape import Loss2D, sam_path
from .plots import plot_paths, plot_valley_sharpness

__all__ = ["rho_explorer"]


def rho_explorer(loss: Loss2D, start, lr: float = 0.05, max_steps: int = 1000):
    """Sliders for rho and the number of steps and a *Draw* button that draws GD's and SAM's
    paths and end-point sharpness. Drawing waits for the button: each redraw reruns both
    optimizers, and nothing is computed while the notebook merely executes."""
    from ipywidgets import FloatSlider, IntSlider, interact_manual

    def draw(rho: float, steps: int):
        paths = [sam_path(loss, start, 0.0, lr, steps), sam_path(loss, start, round(rho, 3), lr, steps)]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        plot_paths(axes[0], loss, paths)
        plot_valley_sharpness(axes[1], loss, paths)
        plt.show()

    explorer = interact_manual.options(manual_name="Draw")
    return explorer(draw, rho=FloatSlider(value=0.2, min=0.0, max=0.6, step=0.01, description="ρ"),
                    steps=IntSlider(value=400, min=0, max=max_steps, step=50, description="steps"))
