"""The package's shape: a light ``import samlib``, an optim that stands alone, a small top level; and the
book's notebook cells that nbval does not compare."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMLIB = ROOT / "samlib"
HEAVY = ("matplotlib", "seaborn", "pandas", "sklearn", "ipywidgets")


@pytest.mark.parametrize("statement", ["import samlib", "from samlib import SAM, LSAM", "import samlib.optim"])
def test_import_loads_no_plotting_or_data_frame_library(statement):
    code = f"import sys; {statement}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{statement!r} imported {out.strip()}"


def _samlib_imports(path: Path) -> set[str]:
    """The samlib modules that ``path`` imports, as absolute dotted names (relative imports resolved)."""
    package = ".".join(path.relative_to(SAMLIB.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("samlib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            if base.startswith("samlib"):
                found |= {f"{base}.{a.name}" if not node.module else base for a in node.names}
    return found


def test_optim_imports_nothing_else_from_samlib_but_the_argument_checks():
    for path in (SAMLIB / "optim").glob("*.py"):
        others = {m for m in _samlib_imports(path) if not m.startswith("samlib.optim") and m != "samlib.checks"}
        assert not others, f"{path.name} imports {sorted(others)}: optim must stand alone (samlib.checks aside)"


def test_the_argument_checks_import_only_the_standard_library():
    tree = ast.parse((SAMLIB / "checks.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"__future__", "math", "numbers", "collections", "os", "pathlib"}, names  # all standard


def test_the_top_level_holds_at_most_twelve_modules():
    """The shared core and the book-wide pages' code (``glance``, which reads every chapter family's study)."""
    modules = sorted(p.name for p in SAMLIB.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 12, modules


def test_the_ascent_is_written_once():
    """rho * g / ||g|| lives in samlib/optim/ascent.py: no other module divides a radius by a norm."""
    radius_over_norm = re.compile(r"\b(rho|tau)\w*\s*/\s*\(?\s*\w*norm")
    for path in SAMLIB.rglob("*.py"):
        if path.parent.name == "optim":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if radius_over_norm.search(line.split("#")[0]):
                pytest.fail(f"{path.relative_to(SAMLIB)}:{number} divides a radius by a norm: use samlib.optim.ascent")


UNCHECKED_OUTPUTS = {  # (chapter, cell id): why nbval may not compare that cell's output with the committed one
    ("cifar_mnist.ipynb", "c1a7e001"): "float32 training on this page, checked against the shipped study by the next "
                                       "cell (samlib.experiments.agreement)",
    ("waterbirds.ipynb", "b1d5e001"): "float32 training on this page, checked against the shipped study by the next "
                                      "cell (samlib.experiments.agreement)",
    ("mechanism.ipynb", "1c50eb93"): "the toy's chaotic radii (samlib.toy.results.CHAOTIC_FROM)",
    ("noise_memorization.ipynb", "6dae03e8"): "progress bars and its wall-clock time",
    ("noise_memorization.ipynb", "3f462550"): "a progress bar",
    ("noise_memorization.ipynb", "85073d04"): "progress bars",
    ("noise_memorization.ipynb", "957554d0"): "progress bars and its wall-clock time",
    ("sam_in_one_picture.ipynb", "8cb51a00"): "a live widget",
    ("toy.ipynb", "46ee7187"): "progress bars",
    ("toy.ipynb", "1364d059"): "the toy's chaotic radii",
    ("toy.ipynb", "2a8067be"): "the toy's chaotic radii",
    ("toy.ipynb", "b3f097b6"): "the toy's chaotic radii",
    ("toy.ipynb", "ff1806be"): "the toy's chaotic radii",
    ("toy.ipynb", "bdf25200"): "a live widget",
}


def test_only_the_listed_cells_escape_the_notebook_check():
    """A cell tagged nbval-ignore-output is executed but its output is not compared: each one is listed above with
    its reason, so that the list cannot grow unnoticed."""
    tagged = set()
    for path in sorted(ROOT.glob("book/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
                tagged.add((path.name, cell["id"]))
    assert tagged == set(UNCHECKED_OUTPUTS)


def test_each_live_training_cell_is_followed_by_its_checked_agreement_line():
    """The image chapters' float32 training is not compared digit for digit, so the next code cell must check it
    against the shipped study (and stay checked itself)."""
    live = [key for key, why in UNCHECKED_OUTPUTS.items() if why.startswith("float32 training")]
    assert {chapter for chapter, _ in live} == {"cifar_mnist.ipynb", "waterbirds.ipynb"}
    for chapter, cell_id in live:
        cells = [c for c in json.loads((ROOT / "book" / chapter).read_text())["cells"] if c["cell_type"] == "code"]
        at = next(i for i, c in enumerate(cells) if c["id"] == cell_id)
        following = cells[at + 1]
        assert "agreement.agreement_line(" in "".join(following["source"]), (chapter, cell_id)
        assert "nbval-ignore-output" not in following.get("metadata", {}).get("tags", []), (chapter, cell_id)
