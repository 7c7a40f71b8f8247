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


def test_optim_imports_nothing_else_from_samlib():
    for path in (SAMLIB / "optim").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                pytest.fail(f"{path.name} imports from {'.' * node.level}{node.module}: optim must stand alone")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.startswith("samlib") and not n.startswith("samlib.optim") for n in names), path.name


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
