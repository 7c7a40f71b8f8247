"""The HTML book's bridges to a chapter's code: glue (numbers quoted in the prose), claims (sentences about those
numbers, checked when the chapter runs) and tables."""
from __future__ import annotations

import hashlib

__all__ = ["glue", "claim", "ClaimError", "plain_number", "readable", "cell_text", "show", "Table"]


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


class ClaimError(AssertionError):
    """A chapter's sentence about its numbers no longer holds for the numbers it computed."""


def claim(key: str, holds, text: str) -> None:
    """A sentence that states a direction, a comparison or an order about computed numbers ("rises with ρ",
    "falls below 1"), checked when the chapter runs: when ``holds`` is true, ``text`` is glued under ``key`` for the
    prose (``{glue:text}`key```), and nothing is returned (a cell that ends with a claim prints nothing); when it
    is false, the chapter stops with a :class:`ClaimError` that
    quotes the sentence, so that a moved number fails the run instead of leaving false prose."""
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"key: expected a glue name made of letters, digits and underscores, got {key!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text: expected the sentence the prose shows, got {text!r}")
    import numpy as np

    if not isinstance(holds, (bool, np.bool_)):  # numpy's bool is fine, a number is not
        raise TypeError(f"holds: expected True or False (the condition the sentence states), got {holds!r}")
    if not holds:
        raise ClaimError(f"the claim {key!r} does not hold for this run's numbers: {text!r}. The numbers moved: "
                         "rewrite the sentence (and its condition) to say what they show now")
    glue(key, text)


def readable(label):
    """A column, index or level name as a reader reads it: ``worst_group_acc`` -> ``worst group acc``; a float label
    as its shortest form (0.5, not 0.500000); anything else unchanged."""
    if isinstance(label, str):
        return label.replace("_", " ")
    if isinstance(label, float):
        return f"{label:g}"
    if isinstance(label, tuple):
        return tuple(readable(part) for part in label)
    return label


def cell_text(value, digits: int, na_rep: str = "–") -> str:
    """One table cell: floats with ``digits`` decimals and never a negative zero ("-0.000" reads 0.000), ints as
    ints, booleans as yes / no, missing values as ``na_rep``."""
    import math

    value = plain_number(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return na_rep
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    return str(value)


class Table:
    """A data frame shown as an HTML table in the book (and Jupyter) and as aligned text elsewhere.

    Designed for reading: floats get ``digits`` decimals and never a negative zero, ints stay ints, booleans read
    yes / no, missing values read ``na_rep``, and snake_case headers and float labels (ρ = 0.500000) read as words
    and short numbers (:func:`readable`). ``title`` becomes the table's caption. The HTML's element ids derive from
    the title and columns, so re-running a chapter writes the same output (nbval compares it).
    """

    def __init__(self, frame, title: str | None = None, digits: int = 3, index: bool = True, na_rep: str = "–"):
        import pandas as pd

        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame: expected a pandas DataFrame or Series, got {type(frame).__name__}; "
                            "pass the table to show")
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
            raise ValueError(f"digits: expected an int >= 0, got {digits!r}; pass e.g. digits=3")
        self.frame, self.title, self.digits, self.index, self.na_rep = frame, title, digits, index, na_rep

    def shown(self):
        """The frame as the reader sees it: every cell as its text, readable headers and labels."""
        each_cell = self.frame.map if hasattr(self.frame, "map") else self.frame.applymap  # pandas < 2.1: applymap
        frame = each_cell(lambda v: cell_text(v, self.digits, self.na_rep))
        frame = frame.rename(columns=readable, index=readable)
        frame.columns = frame.columns.set_names([readable(n) for n in frame.columns.names])
        frame.index = frame.index.set_names([readable(n) for n in frame.index.names])
        return frame

    def __repr__(self) -> str:
        body = self.shown().to_string(index=self.index)
        return f"{self.title}\n{body}" if self.title else body

    def text_columns(self) -> list[bool]:
        """Per column: does it hold text (labels, "0.33 (20/20): reproduced") rather than numbers? Text may wrap
        between its words in the HTML book; a number never wraps."""
        import pandas as pd

        return [not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
                for dtype in self.frame.dtypes]

    def _repr_html_(self) -> str:
        import pandas as pd

        shown = self.shown()
        styler = shown.style
        wrap = ["wrap" if text else "" for text in self.text_columns()]
        styler.set_td_classes(pd.DataFrame([wrap] * len(shown), index=shown.index, columns=shown.columns))
        styler.set_uuid(hashlib.sha1(f"{self.title}|{list(self.frame.columns)}".encode()).hexdigest()[:10])
        styler.set_table_attributes('class="samlib-table"')
        styler.set_table_styles(TABLE_STYLES)
        if self.title:
            styler.set_caption(self.title)
        if not self.index:
            styler.hide(axis="index")
        return styler.to_html()


# The table's look in Jupyter and Colab: small type, headers that wrap, numbers that do not. The HTML book's
# own CSS (_static/outputs.css) narrows it further and lets every cell wrap, so that a table fits its column.
TABLE_STYLES = [
    {"selector": "", "props": "font-size: 0.85em; border-collapse: collapse; margin-bottom: 0.5em;"},
    {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold; padding: 0.3em 0;"},
    {"selector": "th", "props": "white-space: normal; padding: 0.2em 0.5em; text-align: right;"},
    {"selector": "td", "props": "white-space: nowrap; padding: 0.2em 0.5em; text-align: right;"},
]


def show(frame, title: str | None = None, digits: int = 3, index: bool = True, na_rep: str = "–",
         split: bool = False) -> None:
    """Display ``frame`` as a :class:`Table` (an HTML table in the book, aligned text in a terminal).
    ``split``: one table per value of the columns' top level (a wide side-by-side table, e.g. tuning and
    held-out seeds), each titled "``title``: value", so that each fits the book's column."""
    from IPython.display import display

    if not split:
        display(Table(frame, title, digits, index, na_rep))
        return
    if frame.columns.nlevels < 2:
        raise ValueError(f"split: needs columns with two or more levels, got {list(frame.columns)[:4]}; "
                         "pass split=False")
    for top in frame.columns.unique(level=0):
        display(Table(frame[top], f"{title}: {top}" if title else str(top), digits, index, na_rep))
