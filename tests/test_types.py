"""The public API type-checks: mypy, configured in pyproject.toml ([tool.mypy]), finds nothing."""

import importlib.util
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _mypy(*arguments, cwd=ROOT, env=None):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (the [test] extra installs it)")
    return subprocess.run(
        [sys.executable, "-m", "mypy", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def _configured_files():
    """The ``files`` list of [tool.mypy] (read as text: tomllib is Python 3.11+)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text[text.index("[tool.mypy]") :]
    block = re.search(r"^files = \[(.*?)\]", section, re.M | re.S).group(1)
    return re.findall(r'"([^"]+)"', block)


def test_the_public_api_type_checks():
    files = _configured_files()
    run = _mypy()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1000:]
    # every configured file was checked, none skipped
    assert f"Success: no issues found in {len(files)} source files" in run.stdout, run.stdout


def test_mypy_reports_a_planted_misuse_of_the_api(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from derive import expand\n"
        "from derive.bounds import radius_temperature\n"
        'terms = expand("loss", order="three").terms\n'
        "radius: str = radius_temperature([0.0, 1.0], [0.0, 2.0])\n"
    )
    env = dict(os.environ, MYPYPATH=str(ROOT))
    run = _mypy(
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / "cache"),
        str(planted),
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'planted.py:3: error: Argument "order" to "expand" has incompatible type' in run.stdout
    assert "planted.py:4: error: Incompatible types in assignment" in run.stdout
    assert "Found 2 errors in 1 file" in run.stdout, run.stdout


@pytest.mark.parametrize("package", ["derive", "verify"])
def test_every_module_exporting_the_public_api_is_checked(package):
    module = pytest.importorskip(package)
    files = set(_configured_files())
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            continue  # constants and registries: typed where they are defined
        defined_in = value.__module__
        if defined_in.split(".")[0] not in ("derive", "verify"):
            continue  # sympy symbols and the like
        stem = defined_in.replace(".", "/")
        assert {f"{stem}.py", f"{stem}/__init__.py"} & files, (
            f"{package}.{name} is defined in {defined_in}, which mypy does not check"
        )
