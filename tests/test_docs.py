"""The documentation as a reader meets it: the README starts with the map, every package's docstring names its
modules, and every address of the repository is the one in ``_config.yml``.

The repository's address is one setting, ``repository: url:`` in ``_config.yml``. Jupyter Book builds the launch
buttons from it (with ``branch`` and ``launch_buttons: colab_url``); the README, ``pyproject.toml`` and every
chapter's Colab cell write it out, and these tests hold them to it.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
MAP_HEADING = "## Repository"
MAP_WITHIN = 80  # the map's heading sits within the README's first lines
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
URL = CONFIG["repository"]["url"].rstrip("/")
OWNER, NAME = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", URL).groups()
PAGES = f"https://{OWNER}.github.io/{NAME}"  # where GitHub Pages serves a project repository's site
GITHUB_REPO = re.compile(r"https?://github\.com/([\w.-]+)/([\w-]+)")
GITHUB_PAGES = re.compile(r"https?://([\w-]+)\.github\.io/([\w-]+)")
COLAB_REPO = re.compile(r"colab\.research\.google\.com/github/([\w.-]+)/([\w-]+)")


def _headings(text: str) -> list[tuple[int, str]]:
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.startswith("## ")]


# ---------------------------------------------------------------------------------------------------------------
# The README starts with the map

def test_the_readme_starts_with_the_two_commands_and_the_map():
    text = README.read_text()
    headings = _headings(text)
    names = [line for _, line in headings]
    assert names[:4] == ["## Two commands (fresh Linux machine, Python 3.11)", MAP_HEADING, "## Where to change what",
                         "## `samlib` in ten lines"], names
    line = dict((h, n) for n, h in headings)[MAP_HEADING]
    assert line < MAP_WITHIN, f"README.md's map ({MAP_HEADING!r}) is on line {line}, not within {MAP_WITHIN}"
    commands = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["bash .ci/book", "bash .ci/test"]


def test_where_to_change_what_names_files_that_exist():
    section = README.read_text().split("## Where to change what", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(bullets) == 5, bullets
    paths = [p for p in re.findall(r"`([\w./<>-]+\.py)`", section) if "/" in p]
    assert paths and all((ROOT / p).is_file() for p in paths), [p for p in paths if not (ROOT / p).is_file()]


def test_the_readme_links_contributing_and_every_map_path_exists():
    text = README.read_text()
    assert "](CONTRIBUTING.md)" in text and (ROOT / "CONTRIBUTING.md").is_file()
    section = text.split(MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    paths = [p for cell in first_cells for p in re.findall(r"`([^`]+)`", cell)]
    assert paths and [p for p in paths if not (ROOT / p).exists()] == []


# ---------------------------------------------------------------------------------------------------------------
# Every package's docstring names its modules

def _packages() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "samlib").rglob("__init__.py"))


def _members(package: Path) -> list[str]:
    """The modules (``*.py`` but ``__init__``) and subpackages of a package."""
    modules = [p.stem for p in package.glob("*.py") if p.name != "__init__.py"]
    packages = [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    return sorted(modules + packages)


def _dotted(package: Path) -> str:
    return ".".join(package.relative_to(ROOT).parts)


def test_every_package_docstring_names_each_of_its_modules():
    """One convention: a ``:mod:`~samlib.package.module``` reference with a line saying what it holds."""
    assert {_dotted(p) for p in _packages()} >= {"samlib", "samlib.optim", "samlib.toy", "samlib.data",
                                                 "samlib.experiments", "samlib.memorization", "samlib.plots"}
    missing = []
    for package in _packages():
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        for member in _members(package):
            name = f"{_dotted(package)}.{member}"
            if not re.search(rf"^\s*\* :mod:`~{re.escape(name)}`: \S", doc, re.M):
                missing.append(f"{package.relative_to(ROOT)}/__init__.py lacks '* :mod:`~{name}`: what it holds'")
        for listed in re.findall(rf"^\s*\* :mod:`~{re.escape(_dotted(package))}\.(\w+)`", doc, re.M):
            if listed not in _members(package):
                missing.append(f"{package.relative_to(ROOT)}/__init__.py lists {listed!r}, which is no module of it")
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------------------------------------------------------
# One repository address: _config.yml's repository url

def _colab_base() -> str:
    """The Colab address of the book's notebooks, as Jupyter Book's launch button builds it from the config."""
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    path = CONFIG["repository"].get("path_to_book", "").strip("/")
    return f"{colab}/github/{OWNER}/{NAME}/blob/{CONFIG['repository']['branch']}" + (f"/{path}" if path else "")


def _check_browser():
    spec = importlib.util.spec_from_file_location("check_browser", ROOT / ".ci" / "check_browser.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_browser", module)
    spec.loader.exec_module(module)
    return module


def _addresses(text: str) -> list[str]:
    """Every address of a GitHub repository, GitHub Pages site or Colab notebook of GitHub in ``text`` that is not
    this repository's."""
    wrong = [m.group() for m in GITHUB_REPO.finditer(text) if m.groups() != (OWNER, NAME)]
    wrong += [m.group() for m in GITHUB_PAGES.finditer(text) if m.groups() != (OWNER, NAME)]
    return wrong + [m.group() for m in COLAB_REPO.finditer(text) if m.groups() != (OWNER, NAME)]


def _cell_sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


def _colab_spec(path: Path) -> str:
    """The pip requirement that the chapter's first cell installs in Colab."""
    found = re.findall(r'"((?:[\w-]+)(?:\[\w+\])? @ git\+[^"]+)"', _cell_sources(path)[0])
    assert len(found) == 1, f"{path.name}: the first cell should name one requirement, found {found}"
    return found[0]


def test_the_launch_buttons_use_the_repository_address():
    repository, launch = CONFIG["repository"], CONFIG["launch_buttons"]
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_repository_button"] is True
    pages = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    on = pages.get("on", pages.get(True))  # YAML 1.1 reads the key 'on' as True
    assert on["push"]["branches"] == [repository["branch"]], "the buttons open the branch that is published"
    assert _check_browser().colab_base(ROOT / "_config.yml") == _colab_base()


def test_pyproject_names_the_repository_and_its_pages():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls == {"Book": PAGES, "Source": URL}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_colab_cell_installs_from_the_repository(path):
    spec = _colab_spec(path)
    assert spec.endswith(f" @ git+{URL}"), f"{path.name} installs {spec!r}, not from {URL}"
    assert _addresses("\n".join(_cell_sources(path))) == []


def test_the_readme_installs_and_links_the_repository():
    text = README.read_text()
    assert f'pip install "sam-features @ git+{URL}"' in text
    assert re.search(rf"The book is at \**{re.escape(PAGES)}\**", text)
    assert f"{_colab_base()}/book/<chapter>.ipynb" in text
    assert [m for m in re.findall(r"git\+(\S+?)[\"`]", text) if m != URL] == []
    assert _addresses(text) == []


def test_the_readme_colab_table_lists_each_chapter_with_its_install():
    section = README.read_text().split("| Chapters | Colab installs |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    chapters = {chapter: spec.strip().strip("`") for names, spec in rows for chapter in re.findall(r"`(\w+)`", names)}
    assert sorted(chapters) == sorted(p.stem for p in NOTEBOOKS)
    assert {p.stem: _colab_spec(p) for p in NOTEBOOKS} == chapters


def test_no_other_file_names_another_repository_address():
    files = [ROOT / "CONTRIBUTING.md", ROOT / "pyproject.toml", ROOT / "environment.yml", ROOT / "_config.yml",
             *sorted((ROOT / "book").glob("*.md")), *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
             *sorted((ROOT / "samlib").rglob("*.py")), *sorted((ROOT / "tests").glob("*.py")),
             *sorted((ROOT / ".ci").iterdir())]
    wrong = {str(p.relative_to(ROOT)): found for p in files if p.is_file() and (found := _addresses(p.read_text()))}
    assert wrong == {}
