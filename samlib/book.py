"""Glue for the HTML book: numbers computed in a chapter, quoted in its prose."""
from __future__ import annotations

__all__ = ["glue"]


def glue(name: str, value, digits: int | None = None) -> None:
    """Store ``value`` (rounded to ``digits``) for the prose's ``{glue:text}`name``` roles.

    Uses ``myst_nb.glue`` when Jupyter Book's tooling is installed and does nothing
    otherwise (e.g. in Colab), so chapters run everywhere.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, round(value, digits) if digits is not None else value, display=False)
