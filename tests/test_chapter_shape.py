"""Every chapter has the same shape: it opens with "In this chapter", ends its argument with "Takeaways", and closes
with exercises whose solutions sit behind a toggle (and run, so nbval checks what they print). A chapter is a
notebook at the top level of the book's table of contents; an appendix page (a section under its chapter, such as
the toy's levers) is exempt from the shape, not from the length and code-width rules."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CHAPTERS = [ROOT / f"{entry['file']}.ipynb" for entry in yaml.safe_load((ROOT / "_toc.yml").read_text())["chapters"]
            if (ROOT / f"{entry['file']}.ipynb").is_file()]
MAX_PROSE_WORDS = 3100  # "about 3,000 words of prose" a page: what a reader finishes in one sitting


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def _headings(cells):
    return [line for c in cells if c["cell_type"] == "markdown" for line in _text(c).splitlines()
            if line.startswith("## ")]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 8


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_opens_with_its_question_and_ends_with_takeaways_then_exercises(path):
    cells = _cells(path)
    title = next(c for c in cells if c["cell_type"] == "markdown")
    assert "**In this chapter.**" in _text(title), f"{path.name}: the first text cell says what the chapter asks"
    headings = _headings(cells)
    assert headings[-2:] == ["## Takeaways", "## Exercises"], f"{path.name}: ends with {headings[-2:]}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_each_exercise_has_a_hidden_solution_that_runs(path):
    cells = _cells(path)
    start = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Exercises" in _text(c))
    exercises = [i for i, c in enumerate(cells[start:], start)
                 if c["cell_type"] == "markdown" and re.match(r"\*\*Exercise \d+\.\*\*", _text(c))]
    assert 2 <= len(exercises) <= 3, f"{path.name}: {len(exercises)} exercises"
    for i in exercises:
        solution = cells[i + 1]
        assert solution["cell_type"] == "code", f"{path.name}: exercise at cell {i} has no solution cell after it"
        assert "hide-cell" in solution["metadata"].get("tags", []), f"{path.name}: a solution is not hidden"
        assert "nbval-skip" not in solution["metadata"].get("tags", []), f"{path.name}: a solution is not run"
        assert solution.get("outputs"), f"{path.name}: the solution after cell {i} was not run"


CODE_WIDTH = 74  # characters of the book's code font that the 1280 px page's column holds (the browser check's)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_code_line_is_wider_than_the_column(path):
    """A reader sees every code line whole: none scrolls sideways (cells removed from the page are exempt)."""
    wide = [(i, line) for i, c in enumerate(_cells(path))
            if c["cell_type"] == "code" and "remove-cell" not in c["metadata"].get("tags", [])
            for line in _text(c).splitlines() if len(line) > CODE_WIDTH]
    assert not wide, (f"{path.name}: {len(wide)} code lines over {CODE_WIDTH} characters, first in cell {wide[0][0]}: "
                      f"{wide[0][1]!r}; run ruff format --line-length {CODE_WIDTH} --isolated on it and split long "
                      "strings")


def prose_words(path) -> int:
    """The words of a page's text cells that a reader reads as prose: glued values count as one word; display
    equations, table rows and directive lines do not count, nor tokens without a letter or digit."""
    count = 0
    for cell in _cells(path):
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"\$\$.*?\$\$", "", re.sub(r"\{glue:\w*\}`[^`]*`", "X", _text(cell)), flags=re.DOTALL)
        for line in text.splitlines():
            if not line.startswith(("|", "```", ":class")):
                count += sum(1 for word in line.split() if re.search(r"[A-Za-z0-9]", word))
    return count


def test_prose_words_counts_prose_only(tmp_path):
    page = tmp_path / "page.ipynb"
    page.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": "Two words.\n\n| a | b |\n|---|---|\n\n$$x = 1$$\n"},
        {"cell_type": "markdown", "source": "The ratio is {glue:text}`ratio` here: 3 words."},
        {"cell_type": "code", "source": "print('not prose at all')"}]}))
    assert prose_words(page) == 2 + 7


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_page_is_short_enough_to_finish(path):
    words = prose_words(path)
    assert words <= MAX_PROSE_WORDS, (f"{path.name}: {words} words of prose, more than {MAX_PROSE_WORDS}: move "
                                      "material a reader can skip to an appendix page (a section under the chapter in "
                                      "_toc.yml)")


def test_every_notebook_is_rerun_on_the_other_kernel_paths():
    """.ci/check_kernels names its chapters; a page added to the book must be added there too."""
    script = (ROOT / ".ci" / "check_kernels").read_text()
    named = set()
    for variable in ("IMAGE_CHAPTERS", "FLOAT64_CHAPTERS"):
        named |= set(re.search(rf'^{variable}="([^"]*)"', script, re.MULTILINE).group(1).split())
    assert named == {p.stem for p in NOTEBOOKS}, sorted(named ^ {p.stem for p in NOTEBOOKS})
