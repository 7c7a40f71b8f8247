"""The package's shape: a light ``import samlib``, an optim that stands alone, a small top level."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMLIB = Path(__file__).resolve().parents[1] / "samlib"
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
    assert names <= {"__future__", "math", "numbers", "collections"}, names


def test_the_top_level_holds_at_most_eleven_modules():
    modules = sorted(p.name for p in SAMLIB.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 11, modules


def test_the_ascent_is_written_once():
    """rho * g / ||g|| lives in samlib/optim/ascent.py: no other module divides a radius by a norm."""
    radius_over_norm = re.compile(r"\b(rho|tau)\w*\s*/\s*\(?\s*\w*norm")
    for path in SAMLIB.rglob("*.py"):
        if path.parent.name == "optim":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if radius_over_norm.search(line.split("#")[0]):
                pytest.fail(f"{path.relative_to(SAMLIB)}:{number} divides a radius by a norm: use samlib.optim.ascent")
