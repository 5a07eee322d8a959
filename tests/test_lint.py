"""The tree is formatted and lint-free by the configuration in pyproject.toml ([tool.ruff])."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff(*arguments):
    if (
        shutil.which("ruff") is None
        and subprocess.run(
            [sys.executable, "-m", "ruff", "--version"], capture_output=True
        ).returncode
    ):
        pytest.skip("ruff is not installed (the [test] extra installs it)")
    return subprocess.run(
        [sys.executable, "-m", "ruff", *arguments], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_finds_nothing():
    run = _ruff("check", "--output-format", "concise", ".")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


def test_the_tree_is_formatted():
    run = _ruff("format", "--check", ".")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


def test_ruff_catches_a_planted_finding(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import os\n")
    run = _ruff("check", "--config", str(ROOT / "pyproject.toml"), str(planted))
    assert run.returncode == 1 and "F401" in run.stdout
