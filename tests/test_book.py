"""Values glued into the prose are plain, rounded Python numbers."""
import re

import numpy as np
import pytest
import torch

from samlib import book
from samlib.book import plain_number


def test_plain_number_unwraps_and_rounds_numpy_and_torch_scalars():
    assert repr(plain_number(np.float64(2.5261), 2)) == "2.53"
    assert repr(plain_number(torch.tensor(0.123456, dtype=torch.float64), 3)) == "0.123"
    assert repr(plain_number(np.int64(7))) == "7"
    assert plain_number("text") == "text"


def _frame():
    import pandas as pd

    return pd.DataFrame({"runs": [5, 3], "hard probe": [0.81234, np.nan]}, index=["SGD", "SAM"])


def test_table_text_keeps_counts_as_ints_and_rounds_floats():
    from samlib.book import Table

    text = repr(Table(_frame(), "Table 9. Counts", digits=2))
    assert text.splitlines()[0] == "Table 9. Counts"
    assert "5" in text and "5.0" not in text and "0.81" in text and "0.812" not in text and "–" in text


def test_table_html_is_a_captioned_table_with_stable_ids():
    from samlib.book import Table

    html = Table(_frame(), "Table 9. Counts")._repr_html_()
    assert "<table" in html and "<caption>Table 9. Counts</caption>" in html
    assert ">5<" in html and ">0.812<" in html and ">–<" in html
    assert html == Table(_frame(), "Table 9. Counts")._repr_html_()      # re-running writes the same output
    assert "row_heading" not in Table(_frame(), index=False)._repr_html_()


def test_table_cells_and_headers_read_as_words_and_short_numbers():
    import pandas as pd

    from samlib.book import Table, cell_text, readable

    assert [cell_text(v, 3) for v in (-0.0001, -0.0, 0.0004, -0.0126, np.float64(-0.0002))] == \
        ["0.000", "0.000", "0.000", "-0.013", "0.000"]
    assert [cell_text(v, 2) for v in (True, np.bool_(False), 7, np.int64(3), None, np.nan, "SAM")] == \
        ["yes", "no", "7", "3", "–", "–", "SAM"]
    assert readable("worst_group_acc") == "worst group acc" and readable(0.5) == "0.5" and readable(2) == 2
    frame = pd.DataFrame({"beats_sgd": [True, False], "median_gain": [-0.00004, 0.0126]},
                         index=pd.Index([0.5, 1.0], name="rho_value"))
    html = Table(frame, digits=3)._repr_html_()
    assert "beats sgd" in html and "median gain" in html and "rho value" in html
    assert ">yes<" in html and ">no<" in html and ">0.000<" in html and "-0.000" not in html and ">0.013<" in html
    assert ">0.5<" in html and "0.500000" not in html and "True" not in html and "beats_sgd" not in html
    text = repr(Table(frame, digits=3))
    assert "beats sgd" in text and "yes" in text and "-0.000" not in text
    mixed = pd.DataFrame({"runs": [5], "verdict": ["small but consistent"], "gain": [0.01]})
    assert Table(mixed).text_columns() == [False, True, False]
    cells = re.findall(r'<td [^>]*class="([^"]*)"[^>]*>([^<]*)</td>', Table(mixed)._repr_html_())
    assert [(text, "wrap" in classes.split()) for classes, text in cells] == \
        [("5", False), ("small but consistent", True), ("0.010", False)]  # only text may wrap in the book


def test_table_refuses_what_is_not_a_frame_and_bad_digits():
    import pytest

    from samlib.book import Table

    with pytest.raises(TypeError, match="frame"):
        Table([[1, 2]])
    with pytest.raises(ValueError, match="digits"):
        Table(_frame(), digits=-1)


def test_references_are_labelled_by_author_and_year_as_the_text_cites_them():
    import importlib.util
    from pathlib import Path

    pybtex = pytest.importorskip("pybtex.database", reason="the book's toolchain (jupyter-book) brings pybtex; "
                                 ".ci/check_colab_stack's environment has samlib's dependencies only")
    parse_file = pybtex.parse_file

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("author_year_labels", root / "book/_ext/author_year_labels.py")
    labels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(labels)
    entries = parse_file(root / "book/references.bib").entries
    got = {key: labels.author_year_label(entry) for key, entry in entries.items()}
    assert got["springer2024sam"] == "Springer et al., 2024"
    assert got["andriushchenko2022understanding"] == "Andriushchenko and Flammarion, 2022"
    assert len(set(got.values())) == len(got)              # no two entries share a label
    config = (root / "_config.yml").read_text()
    assert "bibtex_default_style: author_year" in config and "bibtex_reference_style: author_year" in config


def test_show_splits_a_side_by_side_table_into_one_table_per_group(monkeypatch):
    import pandas as pd
    import pytest
    from IPython import display

    from samlib import book

    shown = []
    monkeypatch.setattr(display, "display", shown.append)
    columns = pd.MultiIndex.from_product([["tuning", "held-out"], ["median", "wins"]])
    frame = pd.DataFrame([[0.1, 3, 0.2, 4]], columns=columns, index=["LSAM"])
    book.show(frame, "Lever", split=True)
    assert [t.title for t in shown] == ["Lever: tuning", "Lever: held-out"]
    assert list(shown[1].frame.columns) == ["median", "wins"] and shown[1].frame.iloc[0, 1] == 4
    with pytest.raises(ValueError, match="split"):
        book.show(_frame(), split=True)


def test_a_claim_that_holds_is_glued_and_one_that_does_not_stops_the_chapter(monkeypatch):
    glued = {}
    monkeypatch.setattr(book, "glue", lambda key, value, digits=None: glued.update({key: value}))
    ratios = np.array([0.8, 0.9, 1.3])
    assert book.claim("ratio_rises", bool(np.all(np.diff(ratios) > 0)), "the ratio rises with ρ") is None  # no output
    assert glued == {"ratio_rises": "the ratio rises with ρ"}
    book.claim("numpy_bool", np.all(ratios > 0), "every ratio is positive")
    with pytest.raises(book.ClaimError, match="'quotient_below_one' does not hold.*falls below 1"):
        book.claim("quotient_below_one", bool(ratios[-1] < 1), "the quotient falls below 1")
    assert "quotient_below_one" not in glued


@pytest.mark.parametrize("key, holds, text, error", [
    ("a key", True, "text", ValueError), ("", True, "text", ValueError), ("k", True, " ", ValueError),
    ("k", 1, "text", TypeError), ("k", None, "text", TypeError), ("k", "yes", "text", TypeError),
])
def test_bad_claims_are_refused(key, holds, text, error):
    with pytest.raises(error):
        book.claim(key, holds, text)


def test_each_page_script_is_kept_once_in_its_first_place():
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("unique_scripts", root / "book/_ext/unique_scripts.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    config = dict(body='const THEBE_JS_URL = "x"')
    scripts = [SimpleNamespace(filename="a.js", attributes={}), SimpleNamespace(filename=None, attributes=config),
               SimpleNamespace(filename="", attributes=dict(config)), SimpleNamespace(filename="a.js", attributes={}),
               SimpleNamespace(filename="a.js", attributes={"async": "async"}), "b.js", "b.js"]
    kept = ext.unique_scripts(scripts)
    assert kept == [scripts[0], scripts[1], scripts[4], "b.js"]
    context = {"script_files": scripts}
    ext.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == kept
