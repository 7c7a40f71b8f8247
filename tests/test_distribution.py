"""The project as a reader meets it: the README lists every module, and the distribution name installs this project."""
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "sam-features"  # pyproject's [project] name; "samlib" on PyPI is an unrelated project


def _repository_rows() -> dict[str, str]:
    """The README's Repository table: first cell (a path) -> the rest of the row."""
    section = ROOT.joinpath("README.md").read_text().split("## Repository", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|", 1)]
        if line.startswith("| `") and len(cells) == 2:
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_the_readme_names_every_module_in_its_package_row():
    rows = _repository_rows()
    missing = []
    for path in sorted((ROOT / "samlib").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        package = path.parent.relative_to(ROOT).as_posix() + "/"
        if f"`{path.stem}`" not in rows.get(package, ""):
            missing.append(f"{path.relative_to(ROOT)} (row {package!r})")
    assert not missing, f"README.md's Repository table does not name: {missing}"


def test_pyproject_names_the_distribution_and_the_readme_installs_it():
    assert re.search(rf'^name = "{DISTRIBUTION}"', ROOT.joinpath("pyproject.toml").read_text(), re.M)
    readme = ROOT.joinpath("README.md").read_text()
    assert f'"{DISTRIBUTION}[data]' in readme and f'"{DISTRIBUTION}[paper] @ git+' in readme


def test_installing_the_distribution_name_installs_this_project(tmp_path):
    """A wheel built from this checkout, installed by its name into a fresh venv (no index, no dependencies)."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels,
                    ROOT], check=True, capture_output=True)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--find-links", wheels,
                    DISTRIBUTION], check=True, capture_output=True)
    code = ("import importlib.metadata as m, importlib.util as u; d = m.distribution('sam-features'); "
            "print(d.metadata['Name'], [f for f in d.files if f.name == 'ascent.py'][0], u.find_spec('samlib').origin)")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert out.startswith("sam-features samlib/optim/ascent.py") and str(tmp_path / "venv") in out
