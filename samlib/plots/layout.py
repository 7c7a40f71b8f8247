"""Does a figure read? Legends that cover plotted data, text that overprints other text, and type too small for the
page.

:func:`layout_problems` draws a figure and lists what a reader would stumble on:

- a legend whose box covers a plotted point, or a point of a plotted line (lines are sampled between their vertices,
  so a segment that crosses the box counts), a bar, or another axes' data when the legend sits on the figure;
- two texts that overprint each other (titles, axis labels, tick labels, a figure's title and legend texts), a
  legend whose frame hides a label, or a panel's label that lies on another panel;
- a text whose type, shown in the book's column, is under ``MIN_TEXT_PX`` pixels tall.

Reference lines drawn across the axes (``axhline``, ``axvline``, or any line whose gid is ``"reference"``, such as
a diagonal) and shaded bands are not data here: a legend may sit on them. The book's style
(:func:`samlib.plots.style.use_book_style`) installs :func:`check_when_drawn` for every new figure, so every
chapter figure is checked on its real data each time a chapter runs: a figure that breaks a rule prints a
:class:`FigureLayoutWarning` under itself, which changes the chapter's checked output.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

__all__ = ["FigureLayoutWarning", "layout_problems", "check_when_drawn", "MIN_TEXT_PX", "REFERENCE",
           "shown_pixels_per_inch"]

MIN_TEXT_PX = 10.0     # the smallest type a figure may show in the book's column, in screen pixels (as ticks)
SAMPLES_PER_SEGMENT = 24
REFERENCE = "reference"  # the gid of a line drawn in data coordinates that is a guide, not data (a diagonal)
OVERPRINT_SHARE = 0.1  # two texts overprint when their boxes share more than this share of the smaller box


class FigureLayoutWarning(UserWarning):
    """A figure whose legend covers data, whose texts overprint each other, or whose type is too small."""


def shown_pixels_per_inch(fig, column_px: float | None = None) -> float:
    """Screen pixels per figure inch in the book: the PNG (at ``savefig.dpi``) is shown at its own size, or scaled
    down to the text column when it is wider."""
    import matplotlib.pyplot as plt

    from .style import PAGE_COLUMN_PX

    column_px = PAGE_COLUMN_PX if column_px is None else column_px
    dpi = plt.rcParams["savefig.dpi"]
    dpi = fig.dpi if dpi == "figure" else float(dpi)
    return min(dpi, column_px / fig.get_figwidth())


def _data_points(ax) -> list[tuple[str, np.ndarray]]:
    """Every plotted point of ``ax`` in display coordinates, by artist label: line vertices and points sampled along
    their segments, scatter offsets, and bar corners and centres. Lines drawn in axes coordinates on one side
    (axhline, axvline) are left out."""
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle

    found = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_transform() is not ax.transData or line.get_gid() == REFERENCE:
            continue
        xy = np.column_stack([np.asarray(v, dtype=float) for v in line.get_data()])
        if not len(xy):
            continue
        pts = line.get_transform().transform(xy)
        if len(pts) > 1:
            t = np.linspace(0, 1, SAMPLES_PER_SEGMENT)[:, None, None]
            pts = (pts[:-1] + t * (pts[1:] - pts[:-1])).reshape(-1, 2)
        found.append((line.get_label(), pts[np.isfinite(pts).all(axis=1)]))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible() and len(coll.get_offsets()):
            pts = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
            found.append((coll.get_label(), pts[np.isfinite(pts).all(axis=1)]))
    bar_labels = {id(bar): container.get_label() for container in ax.containers for bar in container
                  if isinstance(bar, Rectangle)}
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible() and patch.get_data_transform() is ax.transData:
            box = patch.get_window_extent()
            if box.width > 0 and box.height > 0:
                corners = np.array([[box.x0, box.y0], [box.x1, box.y1], [box.x0, box.y1], [box.x1, box.y0],
                                    [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]])
                found.append((bar_labels.get(id(patch), patch.get_label()), corners))
    return [(label if not str(label).startswith("_") else "an unlabelled artist", points) for label, points in found]


def _inside(points: np.ndarray, box, clip) -> np.ndarray:
    """The points inside ``box`` (and inside the axes' box ``clip``, where the data is drawn)."""
    x, y = points[:, 0], points[:, 1]
    within = (x > box.x0) & (x < box.x1) & (y > box.y0) & (y < box.y1)
    return within & (x >= clip.x0) & (x <= clip.x1) & (y >= clip.y0) & (y <= clip.y1)


def _legends(fig):
    """(legend, the axes whose data it may cover) for every visible legend of the figure."""
    for ax in fig.axes:
        if (legend := ax.get_legend()) is not None and legend.get_visible():
            yield legend, [ax]
    for legend in fig.legends:
        if legend.get_visible():
            yield legend, list(fig.axes)


def _drawn_ticks(axis, limits):
    """The tick labels of ``axis`` that are drawn: the locator may place ticks outside the view, whose labels
    Matplotlib keeps but never draws."""
    lo, hi = sorted(limits)
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
    return [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
            if lo - slack <= loc <= hi + slack]


def _texts(fig, renderer):
    """Every visible, non-empty text of the figure: (a name for messages, the text, its box on the canvas, the index
    of the axes it labels or None, the legend it belongs to or False)."""
    named = []
    if fig._suptitle is not None:
        named.append(("figure title", fig._suptitle, None, False))
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        where = f"axes {i}"
        named += [(f"{where} title", t, i, False) for t in (ax.title, ax._left_title, ax._right_title)]
        named += [(f"{where} x label", ax.xaxis.label, i, False), (f"{where} y label", ax.yaxis.label, i, False)]
        named += [(f"{where} x tick {t.get_text()!r}", t, i, False) for t in _drawn_ticks(ax.xaxis, ax.get_xlim())]
        named += [(f"{where} y tick {t.get_text()!r}", t, i, False) for t in _drawn_ticks(ax.yaxis, ax.get_ylim())]
        named += [(f"{where} text {t.get_text()[:30]!r}", t, i, False) for t in ax.texts]
        if (legend := ax.get_legend()) is not None:
            named += [(f"{where} legend {t.get_text()!r}", t, i, legend) for t in legend.get_texts()]
    for legend in fig.legends:
        named += [(f"figure legend {t.get_text()!r}", t, None, legend) for t in legend.get_texts()]
    for name, text, owner, legend in named:
        if text.get_visible() and text.get_text().strip():
            yield name, text, text.get_window_extent(renderer), owner, legend


def _shared(box_a, box_b) -> float:
    """The area two boxes share, as a share of the smaller one (0 when they do not meet)."""
    if not (box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0):
        return 0.0
    area = (min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)) * (min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0))
    return max(area, 0.0) / min(box_a.width * box_a.height, box_b.width * box_b.height)


def _parallel_apart(text_a, box_a, text_b, box_b, renderer) -> bool:
    """Two texts turned by the same angle (rotated tick labels) whose lines lie at least a line's height apart:
    their axis-aligned boxes may overlap while their ink does not."""
    angle = text_a.get_rotation()
    if angle % 180 == 0 or angle != text_b.get_rotation():
        return False
    theta = np.deg2rad(angle)
    normal = np.array([-np.sin(theta), np.cos(theta)])
    centres = np.array([[(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2] for b in (box_a, box_b)])
    line = renderer.points_to_pixels(max(text_a.get_fontsize(), text_b.get_fontsize()))
    return abs(float((centres[0] - centres[1]) @ normal)) >= line


def layout_problems(fig, min_text_px: float = MIN_TEXT_PX, renderer=None) -> list[str]:
    """What a reader would stumble on in ``fig`` (an empty list when it reads well). Without ``renderer`` (the one
    that has just drawn it) the figure is drawn first."""
    if renderer is None:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
    problems = []
    for legend, axes in _legends(fig):
        box = legend.get_window_extent(renderer)
        for ax in axes:
            clip = ax.get_window_extent(renderer)
            for label, points in _data_points(ax):
                covered = int(_inside(points, box, clip).sum()) if len(points) else 0
                if covered:
                    problems.append(f"the legend covers data of {label!r} ({covered} plotted points) in the axes "
                                    f"titled {ax.get_title()!r}")
    texts = list(_texts(fig, renderer))
    for (name_a, text_a, box_a, _, _), (name_b, text_b, box_b, _, _) in itertools.combinations(texts, 2):
        if _parallel_apart(text_a, box_a, text_b, box_b, renderer):
            continue
        if _shared(box_a, box_b) > OVERPRINT_SHARE:  # more than a sliver of the boxes' corners
            problems.append(f"texts overprint each other: {name_a} and {name_b}")
    for legend, _ in _legends(fig):  # a legend's frame hides the labels it lies on, another legend's texts included
        box = legend.get_window_extent(renderer)
        for name, _, text_box, _, own in texts:
            if own is not legend and _shared(box, text_box) > OVERPRINT_SHARE:
                problems.append(f"a legend covers the {name}")
    for name, _, text_box, owner, _ in texts:  # a label of one panel lying on another panel's plot
        for j, other in enumerate(fig.axes):
            if j != owner and owner is not None and other.get_visible() and \
                    _shared(other.get_window_extent(renderer), text_box) > OVERPRINT_SHARE:
                problems.append(f"the {name} lies on axes {j}")
    ppi = shown_pixels_per_inch(fig)
    for name, text, *_ in texts:
        if (px := text.get_fontsize() / 72 * ppi) < min_text_px:
            problems.append(f"{name} is {px:.1f} px tall in the book's column ({text.get_fontsize():.1f} pt); "
                            f"the book's minimum is {min_text_px:g} px")
    return problems


def check_when_drawn(fig) -> None:
    """A ``figure.hooks`` entry: after ``fig`` is drawn (as the notebook shows it), warn with every layout problem
    (:class:`FigureLayoutWarning`), once per figure."""
    def on_draw(event):
        if getattr(fig, "_samlib_layout_checked", False):
            return
        fig._samlib_layout_checked = True
        problems = layout_problems(fig, renderer=event.renderer)
        if problems:
            warnings.warn(FigureLayoutWarning("this figure does not read well: " + "; ".join(problems)),
                          stacklevel=2)

    fig.canvas.mpl_connect("draw_event", on_draw)
