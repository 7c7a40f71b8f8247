"""The figure check (samlib.plots.layout) catches a legend on the data, overprinted text and type too small to read,
passes a figure that reads well, and runs on every figure drawn in the book's style."""
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from samlib.plots import layout  # noqa: E402
from samlib.plots.style import use_book_style  # noqa: E402


@pytest.fixture(autouse=True)
def book_style():
    with plt.rc_context():
        use_book_style()
        yield
        plt.close("all")


def _lines(legend_loc):
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.linspace(0, 1, 40)
    ax.plot(x, x, label="rising")
    ax.plot(x, 1 - x, label="falling")
    ax.set(xlabel="step", ylabel="error", title="two runs")
    ax.legend(loc=legend_loc)
    return fig


def test_a_figure_that_reads_well_passes():
    fig = _lines("lower center")  # the two lines cross at the middle, away from the bottom edge's centre
    assert layout.layout_problems(fig) == []


def test_a_legend_on_a_line_is_caught_even_between_its_vertices():
    assert any("falling" in p for p in layout.layout_problems(_lines("upper left")))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [1, 0], label="one segment")  # two vertices, both far from the legend at the centre
    ax.legend(loc="center")
    assert any("one segment" in p for p in layout.layout_problems(fig))


def test_a_legend_on_points_and_bars_is_caught_but_not_on_reference_lines():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([0.05, 0.5], [0.95, 0.5], label="seeds")
    ax.axhline(0.9, color="0.5", ls="--", label="floor")  # a reference line: a legend may sit on it
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    assert [p for p in layout.layout_problems(fig) if "legend" in p] == \
        ["the legend covers data of 'seeds' (1 plotted points) in the axes titled ''"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([0, 1, 2], [1.0, 1.0, 1.0], label="bars")
    ax.legend(loc="center")
    assert any("'bars'" in p for p in layout.layout_problems(fig))


def test_a_figure_legend_over_an_axes_is_caught():
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax in axes:
        ax.plot([0, 1], [0.5, 0.5], label="flat")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center")
    assert layout.layout_problems(fig)


def test_overprinted_titles_and_tick_labels_are_caught():
    fig, axes = plt.subplots(1, 2, figsize=(4, 3))
    axes[0].set_title("a very long title that runs into the next panel's title")
    axes[1].set_title("the next panel")
    assert any("overprint" in p and "title" in p for p in layout.layout_problems(fig))
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.set_xticks(range(10), [f"label {i}" for i in range(10)])
    assert any("overprint" in p and "x tick" in p for p in layout.layout_problems(fig))


def test_type_too_small_for_the_page_is_caught():
    fig, ax = plt.subplots(figsize=(10, 4))  # scaled to the column: 70 screen pixels per inch
    ax.plot([0, 1], [0, 1])
    ax.text(0.8, 0.1, "tiny", fontsize=6)
    problems = layout.layout_problems(fig)
    assert any("'tiny'" in p and "px tall" in p for p in problems)
    assert layout.shown_pixels_per_inch(fig) == pytest.approx(70.0)


def test_the_book_style_checks_every_new_figure_when_drawn(tmp_path):
    assert "samlib.plots.layout:check_when_drawn" in plt.rcParams["figure.hooks"]
    fig = _lines("upper left")
    with pytest.warns(layout.FigureLayoutWarning, match="falling"):
        fig.savefig(tmp_path / "covered.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.savefig(tmp_path / "again.png")  # once per figure
        _lines("lower center").savefig(tmp_path / "fine.png")


def test_a_legend_on_a_label_and_a_label_on_another_panel_are_caught():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.set_xlabel("a long label under the axes")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08))  # its frame lands on the x label
    assert any("a legend covers the axes 0 x label" in p for p in layout.layout_problems(fig))
    fig, axes = plt.subplots(1, 2, figsize=(6, 3), gridspec_kw={"wspace": 0.02})
    axes[1].set_ylabel("a y label that sits on the left panel")
    assert any("the axes 1 y label lies on axes 0" in p for p in layout.layout_problems(fig))


def test_two_panel_legends_that_overlap_each_other_are_caught():
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a label long enough to reach the next panel's legend")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2))
    assert any("a legend covers the axes 0 legend" in p or "a legend covers the axes 1 legend" in p
               for p in layout.layout_problems(fig))
