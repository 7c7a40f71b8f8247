"""Run every chapter's exercises and explorers the way a reader does in Colab, without the rest of the chapter.

For each notebook of book/, the cells to run are the exercise solutions (the code cell after each "**Exercise N.**"
text) and the explorers (cells that call ``*_explorer(`` or ``*_explorer_frames(``). Each needs some of the
chapter's earlier cells: the names it reads come from the last cell before it that defines them, and so on back.
This script slices those cells out of the notebook (read statically, with ``ast``), runs the slice in a fresh
kernel and fails on any error, a failed claim included. A chapter whose slice needs one of its long training cells
runs that cell too, so the slice is what a reader would have to run.

    python .ci/run_exercises.py [book/toy.ipynb ...]

Used by .ci/check_colab_stack in the environment with Colab's versions; it runs in any environment that has
samlib, nbclient and ipykernel.
"""
from __future__ import annotations

import ast
import builtins
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPLORER = re.compile(r"\w+_explorer(_frames)?\(")


def _source(cell) -> str:
    return "".join(cell["source"])


def _python(source: str) -> str:
    """The cell's Python, IPython magics and shell lines dropped."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def defined_and_used(source: str) -> tuple[set[str], set[str]]:
    """The top-level names a cell binds and the names it reads before (or without) binding them."""
    tree = ast.parse(_python(source))
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else used).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound, used - bound - set(dir(builtins))  # a name the cell binds itself is its own (rarely read first)


def targets(cells: list[dict]) -> list[int]:
    """Indices of the exercise solutions and the explorer cells."""
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        before = cells[i - 1] if i else None
        after_exercise = before is not None and before["cell_type"] == "markdown" and re.match(
            r"\*\*Exercise \d+\.\*\*", _source(before))
        if after_exercise or EXPLORER.search(_source(cell)):
            found.append(i)
    return found


def slice_cells(cells: list[dict]) -> list[int]:
    """The code cells the targets need, in notebook order: the setup cell (the one calling samlib.setup()), the
    targets, and for every name a needed cell reads, the last earlier cell that binds it."""
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"
            and "remove-cell" not in c["metadata"].get("tags", [])]
    names = {i: defined_and_used(_source(cells[i])) for i in code}
    setup = [i for i in code if "samlib.setup(" in _source(cells[i])]
    needed, todo = set(), [*setup, *targets(cells)]
    while todo:
        i = todo.pop()
        if i in needed:
            continue
        needed.add(i)
        for name in names[i][1]:
            owners = [j for j in code if j < i and name in names[j][0]]
            if owners:
                todo.append(owners[-1])
    return sorted(needed)


def run(path: Path) -> tuple[int, int, float]:
    import nbformat
    from nbclient import NotebookClient

    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    keep = slice_cells(cells)
    sliced = nbformat.v4.new_notebook(metadata=notebook["metadata"])
    sliced.cells = [nbformat.v4.new_code_cell(_source(cells[i])) for i in keep]
    start = time.perf_counter()
    NotebookClient(sliced, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return len(targets(cells)), len(keep), time.perf_counter() - start


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted((ROOT / "book").glob("*.ipynb"))
    failed = 0
    for path in paths:
        try:
            count, cells, seconds = run(path)
        except Exception as error:  # noqa: BLE001 - report every chapter, then fail
            failed += 1
            print(f"FAIL {path.name}: {type(error).__name__}: {str(error)[-2000:]}", flush=True)
            continue
        print(f"ok   {path.name}: {count} exercises and explorers, {cells} cells, {seconds:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
