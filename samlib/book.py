"""Glue for the HTML book: numbers computed in a chapter, quoted in its prose."""
from __future__ import annotations

__all__ = ["glue", "plain_number"]


def plain_number(value, digits: int | None = None):
    """A Python int/float for numpy and torch scalars (whose reprs read ``np.float64(2.5)``),
    rounded to ``digits``; other values are returned unchanged."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if digits is not None and isinstance(value, float):
        value = round(value, digits)
    return value


def glue(name: str, value, digits: int | None = None) -> None:
    """Store ``value`` (as a plain number, rounded to ``digits``) for the prose's
    ``{glue:text}`name``` roles.

    Uses ``myst_nb.glue`` when Jupyter Book's tooling is installed and does nothing
    otherwise (e.g. in Colab), so chapters run everywhere.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, plain_number(value, digits), display=False)
