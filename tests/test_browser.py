"""The browser check of the built book (.ci/check_browser.py) catches what it should, and passes a good page.

Its pure-Python parts (tables printed as text, counts printed as floats, the toc, a notebook's outputs) are tested
as they are. The browser itself reads a tiny Jupyter Book built here into tmp_path with the book's own MathJax
settings: one chapter with math, a glued number, a captioned figure, an HTML table and a widget explorer with its
static figure. The unbroken build must pass every check; each broken copy (a deleted figure file, a glue
placeholder left in the text, MathJax missing, the explorer's static figure gone, a table printed as text, a line
too wide, a script loaded twice, a word wider than its table cell, an equation wider than the column, a
machine's file path in an output) must fail its own check. Without Chromium these tests are skipped with a
message saying how to get it, or fail when CI is set, as the check itself does.
"""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_browser", ROOT / ".ci" / "check_browser.py")
cb = importlib.util.module_from_spec(_spec)
sys.modules["check_browser"] = cb
_spec.loader.exec_module(cb)

PANDAS_DUMP = ("                hard_probe     easy_probe  seeds\n"
               "optimizer" + " " * 39 + "\n"  # pandas pads the index name's line to the table's width
               "SGD          0.770 ± 0.008  0.999 ± 0.002      3\n"
               "SAM ρ=0.05   0.760 ± 0.024  1.000 ± 0.001      3\n")


# ---------------------------------------------------------------------------------------------------------------
# Without a browser

def test_text_tables_finds_pandas_dumps():
    assert len(cb.text_tables(PANDAS_DUMP)) == 1
    one_row = " pixels  random init  hard only   SGD\n  0.805         0.72      0.854 0.764\n"
    assert len(cb.text_tables(one_row)) == 1
    series = "rho\n0.3    3.45\n0.5    3.70\nName: norm, dtype: float64\n"
    assert len(cb.text_tables(series)) == 1


def test_text_tables_leaves_prose_and_key_value_lines():
    prose = ("samlib setup: scale=book, device=cpu, seed=0, threads=2\n"
             "rho = 0.05  lowest at t = 1.000, value 0.0026\n"
             "rho = 0.1   lowest at t = 1.000, value 0.0107\n"
             "      train:  1600 dominoes (1, 56, 28), halves agree on 1.00\n"
             "probe_train:  1000 dominoes (1, 56, 28), halves agree on 0.52\n")
    assert cb.text_tables(prose) == []


def test_float_counts():
    assert cb.float_count_columns(["seeds", "error"], [["5.0", "0.1"], ["20.0", "0.2"]]) == [("seeds", ["5.0", "20.0"])]
    assert cb.float_count_columns(["seeds", "error"], [["5", "0.1"], ["20", "0.2"]]) == []
    # rho 1.0 and 2.0 are values, not counts; an index column to the left does not shift the headers.
    assert cb.float_count_columns(["rho", "wins"], [["idx", "1.0", "3"], ["idx", "2.0", "4"]]) == []
    printed = "   comparisons  wins\nall      120.0  90.0\nlow       73.0  69.0\n"
    head, body = cb._text_table_columns(cb.text_tables(printed)[0])
    assert [name for name, _ in cb.float_count_columns(head, body)] == ["comparisons", "wins"]


def test_toc_pages_reads_the_book_toc():
    pages = cb.toc_pages(ROOT / "_toc.yml")
    assert pages[0].docname == "book/intro" and pages[0].notebook is None
    assert all(p.html == f"{p.docname}.html" for p in pages)
    assert any(p.notebook is not None and p.name == "toy" for p in pages)


def test_toc_pages_walks_parts_and_sections(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n  - caption: A\n    chapters:\n"
                                       "      - file: a/one\n        sections:\n          - file: a/two.md\n")
    assert [p.docname for p in cb.toc_pages(tmp_path / "_toc.yml")] == ["intro", "a/one", "a/two"]


def test_notebook_outputs_counts_what_the_page_shows(tmp_path):
    nb = _notebook([_code("x", [_image()]), _code("t", [_html_table()]),
                    _code("hidden", [_image()], tags=["remove-output"]), _code("w", [_widget()])])
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert cb.notebook_outputs(path) == {"images": 1, "tables": 1}


# ---------------------------------------------------------------------------------------------------------------
# A tiny book, built here

def _png(width=120, height=60) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _image():
    return {"output_type": "display_data", "metadata": {}, "data": {"image/png": _png(), "text/plain": ["<Figure>"]}}


def _html_table():
    html = ("<table><thead><tr><th></th><th>seeds</th><th>error</th></tr></thead><tbody>"
            "<tr><th>SGD</th><td>5</td><td>0.10</td></tr><tr><th>SAM</th><td>5</td><td>0.08</td></tr></tbody></table>")
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": [html], "text/plain": ["table"]}}


def _widget():
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2,
                                                                  "version_minor": 0}, "text/plain": ["w"]}}


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": [text]}


def _glue(name, value):
    return {"output_type": "display_data", "data": {"application/papermill.record/text/plain": value},
            "metadata": {"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}}}


def _code(source, outputs=(), tags=()):
    return {"cell_type": "code", "execution_count": 1, "metadata": {"tags": list(tags)}, "source": source,
            "outputs": list(outputs)}


def _md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def _notebook(cells):
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}}


FIXTURE_CHAPTER = _notebook([
    _md("# A fixture chapter\n\nThe radius is $\\rho = 0.5$ and the answer is {glue:text}`answer`.\n\n"
        "$$\\frac{1}{n}\\sum_i \\lambda_i$$\n"),
    _code("glue('answer', 42)", [_glue("answer", "42")]),
    _code("plot()", [_image()]),
    _md("**Figure 1.** A blue rectangle, with $\\tilde v$ in its caption."),
    _code("table()", [_stream("the runs:\n"), _html_table()]),
    _md("## Explore\n\nIn Jupyter the explorer below redraws Figure 1; here is its static picture."),
    _code("demo_explorer(settings);", [_widget()], tags=["remove-output"]),
    _code("static_explorer_figure()", [_image()], tags=["explorer-static"]),
    _md("**Figure 2.** The explorer, frozen."),
])


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module's checks."""
    found = cb.find_browser()
    if found is None:
        message = f"no Chromium and ChromeDriver for the browser check: {cb.HOW_TO_GET}"
        if cb.browser_required():
            pytest.fail(f"CI is set, so the browser check must run: {message}")
        pytest.skip(message)
    with cb.start_browser(*found) as chrome:
        yield chrome


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory) -> Path:
    """A two-page Jupyter Book with the book's MathJax settings, built with the book's strict command."""
    import yaml

    mathjax = ROOT / "_vendor" / "mathjax"
    if not (mathjax / "tex-mml-chtml.js").is_file():
        pytest.skip("MathJax is not in _vendor/mathjax: run 'bash .ci/setup'")
    book_config = yaml.safe_load((ROOT / "_config.yml").read_text())
    real = book_config["sphinx"]["config"]
    src = tmp_path_factory.mktemp("tiny_book")
    config = {
        "title": "Fixture", "only_build_toc_files": True, "execute": {"execute_notebooks": "off"},
        "parse": {"myst_enable_extensions": ["amsmath", "dollarmath"]},
        "repository": book_config["repository"], "launch_buttons": book_config["launch_buttons"],
        "sphinx": {"local_extensions": {"unique_scripts": str(ROOT / "book" / "_ext")},
                   "config": {"mathjax_path": real["mathjax_path"], "nb_merge_streams": True,
                              "html_extra_path": [str(ROOT / p) for p in real["html_extra_path"]]}},
    }
    (src / "_config.yml").write_text(yaml.safe_dump(config))
    (src / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n")
    (src / "intro.md").write_text("# Fixture\n\nA page with math: $x^2$.\n")
    (src / "chapter.ipynb").write_text(json.dumps(FIXTURE_CHAPTER))
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return src


def _check(book: Path, html: Path, browser, tmp_path) -> list:
    pages = cb.toc_pages(book / "_toc.yml")
    return cb.check_pages(html, pages, tmp_path / "shots", None, colab=cb.colab_base(book / "_config.yml"),
                          log=lambda *a: None, chrome=browser)


def _broken_copy(tiny_book: Path, tmp_path: Path) -> Path:
    html = tmp_path / "html"
    shutil.copytree(tiny_book / "_build" / "html", html)
    return html


def _edit(page: Path, old: str, new: str, count: int = 1):
    text = page.read_text()
    assert old in text, old
    page.write_text(text.replace(old, new, count))


def test_the_unbroken_book_passes(tiny_book, browser, tmp_path):
    failures = _check(tiny_book, tiny_book / "_build" / "html", browser, tmp_path)
    assert failures == [], "\n".join(map(str, failures))
    shots = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert shots == ["chapter.png", "intro.png"]
    from PIL import Image

    assert Image.open(tmp_path / "shots" / "chapter.png").size[0] == cb.WINDOW[0]


def test_a_deleted_figure_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    figures = sorted((html / "_images").glob("*.png"))
    assert figures
    figures[0].unlink()
    failures = _check(tiny_book, html, browser, tmp_path)
    assert any(f.check == "image" and figures[0].name in f.detail for f in failures), failures


def test_a_glue_placeholder_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    _edit(html / "chapter.html", "A blue rectangle", "A blue {glue:text}`missing_key` rectangle")
    failures = _check(tiny_book, html, browser, tmp_path)
    assert [f.check for f in failures] == ["raw-text"], failures
    assert "{glue:text}" in failures[0].detail and failures[0].page == "chapter"


def test_math_without_mathjax_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    shutil.rmtree(html / "mathjax")
    failures = _check(tiny_book, html, browser, tmp_path)
    checks = {f.check for f in failures}
    assert "raw-text" in checks and "js-error" in checks, failures  # raw \( ... \) and the failed script load
    assert any("\\rho" in f.detail for f in failures)


def test_an_explorer_without_its_static_figure_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    # Either marker is enough: without the cell tag, the next figure's caption still names the explorer.
    _edit(html / "chapter.html", "tag_explorer-static", "tag_something-else")
    assert _check(tiny_book, html, browser, tmp_path) == []
    _edit(html / "chapter.html", "The explorer, frozen.", "A second rectangle.")
    failures = _check(tiny_book, html, browser, tmp_path)
    assert [f.check for f in failures] == ["explorer"], failures


def test_a_missing_launch_button_and_output_are_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    page = html / "chapter.html"
    page.write_text(re.sub(r'href="https://colab\.research\.google\.com[^"]*"', 'href="#"', page.read_text()))
    page.write_text(re.sub(r"<table.*?</table>", "", page.read_text(), flags=re.DOTALL))
    failures = _check(tiny_book, html, browser, tmp_path)
    assert {f.check for f in failures} == {"launch-button", "missing-output"}, failures


def test_a_table_printed_as_text_and_a_wide_line_are_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    wide = "x" * 400
    _edit(html / "chapter.html", "the runs:\n", f"the runs:\n{PANDAS_DUMP}{wide}\n")
    failures = _check(tiny_book, html, browser, tmp_path)
    assert {f.check for f in failures} == {"text-table", "overflow"}, failures
    assert any("hard_probe" in f.detail for f in failures if f.check == "text-table")


def test_the_script_skips_loudly_without_a_browser(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cb, "find_browser", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    assert cb.main(["--html", str(tmp_path)]) == 0
    assert "SKIPPED" in capsys.readouterr().err
    monkeypatch.setenv("CI", "true")
    assert cb.main(["--html", str(tmp_path)]) == 2
    assert "FAILED" in capsys.readouterr().err


def test_the_legibility_rule_uses_the_book_style():
    from samlib.plots import style

    with __import__("matplotlib").pyplot.rc_context():
        style.use_book_style()
        dpi = __import__("matplotlib").pyplot.rcParams["savefig.dpi"]
    assert (cb.TICK_PT, cb.FIGURE_DPI) == (pytest.approx(style.TICK_PT), dpi)
    assert cb.tick_px(100, 100) == pytest.approx(style.TICK_PT * dpi / 72)
    assert cb.tick_px(style.PAGE_COLUMN_PX, style.MAX_FIGURE_WIDTH * dpi) >= cb.MIN_TICK_PX


def test_a_figure_shrunk_below_legible_ticks_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    page = html / "chapter.html"
    first = re.search(r'<img alt="[^"]*_images/', page.read_text()).group(0)
    _edit(page, first, first.replace("<img ", '<img style="width: 30px" '))
    failures = _check(tiny_book, html, browser, tmp_path)
    assert [f.check for f in failures] == ["legibility"], failures
    assert "shown 30 of 120 px" in failures[0].detail


def test_a_script_loaded_twice_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    page = html / "chapter.html"
    script = re.search(r'<script src="[^"]*"></script>', page.read_text()).group(0)
    _edit(page, script, script + script)
    failures = _check(tiny_book, html, browser, tmp_path)
    # the second copy may also redeclare the first's constants, which the console reports as an error
    assert "duplicate-script" in {f.check for f in failures} <= {"duplicate-script", "js-error"}, failures


def test_a_word_wider_than_its_table_cell_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    _edit(html / "chapter.html", "<td>0.10</td>",
          '<td style="width: 12px; max-width: 12px; overflow-wrap: anywhere">reproduced</td>')
    failures = _check(tiny_book, html, browser, tmp_path)
    assert [f.check for f in failures] == ["narrow-cell"], failures
    assert "'reproduced'" in failures[0].detail


def test_an_equation_wider_than_the_column_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    long_sum = " + ".join(f"\\lambda_{{{i}}}" for i in range(120))
    _edit(html / "chapter.html", "\\sum_i \\lambda_i", long_sum)
    failures = _check(tiny_book, html, browser, tmp_path)
    assert "overflow" in {f.check for f in failures} and any("display equation" in f.detail for f in failures), failures


def test_a_machine_path_in_an_output_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    _edit(html / "chapter.html", "the runs:", "the runs in /home/runner/data:")
    failures = _check(tiny_book, html, browser, tmp_path)
    assert [f.check for f in failures] == ["local-path"], failures
    assert "/home/runner" in failures[0].detail


def test_a_code_line_wider_than_the_column_is_caught(tiny_book, browser, tmp_path):
    html = _broken_copy(tiny_book, tmp_path)
    page = html / "chapter.html"
    text = page.read_text()
    assert "plot" in text
    page.write_text(text.replace("plot", "plot_" + "x" * 200, 1))
    failures = _check(tiny_book, html, browser, tmp_path)
    assert {f.check for f in failures} == {"code-scroll"}, failures
    assert any("characters" in f.detail for f in failures)
