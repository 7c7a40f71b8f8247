"""A Sphinx extension: the References page labels each entry the way the text cites it, by author and year.

The text cites with sphinxcontrib-bibtex's ``author_year`` reference style ("Springer et al. (2024)"); pybtex's
default bibliography style would label the same entry "[SNR24]". This registers the pybtex formatting style
``author_year`` (``bibtex_default_style`` in ``_config.yml``): pybtex's ``unsrt`` entries, sorted by author and
year, labelled "Springer et al., 2024", "Foret et al., 2021", "Kirichenko and Izmailov, 2022".
"""
from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def author_year_label(entry) -> str:
    """'Last, year', 'Last and Other, year' or 'Last et al., year', as the text's citations read."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [" ".join(p.last_names) for p in people]
    if not last:
        names = entry.fields.get("key", "Anonymous")
    elif len(last) == 1:
        names = last[0]
    elif len(last) == 2:
        names = f"{last[0]} and {last[1]}"
    else:
        names = f"{last[0]} et al."
    return f"{names}, {entry.fields.get('year', 'n.d.')}".replace("{", "").replace("}", "")


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield author_year_label(entry)


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabelStyle
    default_sorting_style = SortingStyle


def setup(app):
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
