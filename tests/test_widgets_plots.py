"""The chapter's figures and the explorer draw without error (Agg backend, no display)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from samlib import plots  # noqa: E402
from samlib.landscape import endpoints_table, first_step_table, product_loss, sam_path  # noqa: E402
from samlib.plots.widgets import rho_explorer  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_explorer_draws_on_demand():
    draw = rho_explorer(product_loss, (2.5, 0.1), lr=0.05)
    before = len(plt.get_fignums())
    draw(rho=0.2, steps=20)
    assert len(plt.get_fignums()) == before + 1


def test_chapter_figures_and_tables():
    steps = [sam_path(product_loss, (2.2, 0.2), rho, 0.25, 1) for rho in (0.0, 0.2)]
    fig, axes = plt.subplots(1, 3, layout="constrained")
    plots.plot_step_anatomy(axes[0], product_loss, steps[0], steps[1])
    plots.plot_paths(axes[1], product_loss, steps)
    plots.plot_valley_sharpness(axes[2], product_loss, steps)
    plots.shared_legend(fig, axes)
    fig, axes = plt.subplots(1, 3, layout="constrained")
    plots.plot_sam_objective(axes, product_loss, 0.2, [0.0, 0.2], n=20)
    table = first_step_table(product_loss, steps)
    assert list(table.index) == [0.0, 0.2] and table.loc[0.2, "step length"] > table.loc[0.0, "step length"]
    ends = endpoints_table(product_loss, steps, last=2)
    assert ends.loc[0.0, "w1 range, last 2 steps"] > 0
    assert plots.rho_colors([0, 0.1])[0] == plots.COLORS["SGD"]
