"""Every chapter has the same shape: it opens with "In this chapter", ends its argument with "Takeaways", and closes
with exercises whose solutions sit behind a toggle (and run, so nbval checks what they print)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


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


CODE_WIDTH = 76  # characters of the book's code font that the 1280 px page's column holds (the browser check's)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_line_is_wider_than_the_column(path):
    """A reader sees every code line whole: none scrolls sideways (cells removed from the page are exempt)."""
    wide = [(i, line) for i, c in enumerate(_cells(path))
            if c["cell_type"] == "code" and "remove-cell" not in c["metadata"].get("tags", [])
            for line in _text(c).splitlines() if len(line) > CODE_WIDTH]
    assert not wide, (f"{path.name}: {len(wide)} code lines over {CODE_WIDTH} characters, first in cell {wide[0][0]}: "
                      f"{wide[0][1]!r}; run ruff format --line-length {CODE_WIDTH} --isolated on it and split long "
                      "strings")
