"""The package as a user installs it: the console scripts, ``__version__``, ``py.typed``, every
subpackage in the wheel, and the extras (``derive`` alone runs without torch, hypothesis and
matplotlib; ``[verify]`` adds them; ``[test]`` pulls in everything the tests import)."""

import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import derive
import verify

# The standard library reads TOML from Python 3.11 on; on 3.10 these tests skip.
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENVIRONMENT = dict(os.environ, PYTHONPATH=str(ROOT))
VERIFY_ONLY = ("torch", "hypothesis", "matplotlib")


def test_both_packages_export_the_one_version():
    from derive._version import __version__

    assert derive.__version__ == verify.__version__ == __version__
    assert PROJECT["dynamic"] == ["version"]
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["dynamic"]["version"] == {"attr": "derive._version.__version__"}
    try:
        installed = importlib.metadata.version("kd-theorems")
    except importlib.metadata.PackageNotFoundError:
        return
    assert installed == __version__


def test_the_console_scripts_are_the_cli_mains():
    assert PROJECT["scripts"] == {"kd-derive": "derive.cli:main", "kd-verify": "verify.cli:main"}
    for target in PROJECT["scripts"].values():
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name)), target


def _as_console_script(name, *arguments):
    """What pip's wrapper for ``name`` does: ``sys.exit(main())`` with ``sys.argv``."""
    module, function = PROJECT["scripts"][name].split(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        cwd=ROOT,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_kd_derive_prints_what_python_m_derive_prints():
    script = _as_console_script("kd-derive", "objectives", "--json")
    module = subprocess.run(
        [sys.executable, "-m", "derive", "objectives", "--json"],
        cwd=ROOT,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert script.returncode == module.returncode == 0, script.stderr
    assert script.stdout == module.stdout and '"kl"' in script.stdout


def test_kd_verify_exits_2_on_bad_input_like_python_m_verify():
    script = _as_console_script("kd-verify", "check", "--examples", "0")
    assert script.returncode == 2
    assert (
        script.stderr.strip()
        .splitlines()[-1]
        .endswith("argument --examples: must be an integer in 1..65536, got '0'")
    )


def test_the_extras_split_verify_from_derive():
    core = {requirement.split(">")[0] for requirement in PROJECT["dependencies"]}
    assert core == {"sympy", "mpmath", "numpy", "python-flint"}
    extras = PROJECT["optional-dependencies"]
    assert {r.split(">")[0] for r in extras["verify"]} == set(VERIFY_ONLY)
    assert any(
        extra.startswith("kd-theorems[") and "verify" in extra[12:-1].split(",")
        for extra in extras["test"]
    )
    assert "pytest>=7" in extras["test"]
    assert "kd-theorems[verify]" in extras["notebooks"]


_BLOCKER = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    attempts = []
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            Blocked.attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
sys.meta_path.insert(0, Blocked())
"""


def test_derive_runs_without_the_verify_extra():
    # derive runs where torch, hypothesis and matplotlib cannot be imported, and does not even
    # attempt an import that it would catch. Statically, import-linter's contracts (every
    # import statement of derive, function-level ones included; tests/test_layers.py) forbid
    # them short of tracing; here, at run time, a proof from each statement module, a limit,
    # a bound and the CLI. test_meta checks import and expand with torch installed.
    code = _BLOCKER.format(blocked=VERIFY_ONLY) + (
        "import derive\n"
        "from derive.bounds import CertifiedExpansion\n"
        "from derive.cli import main\n"
        "from derive.statements import STATEMENTS\n"
        "assert derive.expand('gradient', order=2).terms\n"
        "assert CertifiedExpansion([0.0, 1.0], [0.0, 0.0]).remainder_bound(8.0, order=2) > 0\n"
        "modules = {}\n"
        "for s in STATEMENTS.values():\n"
        "    modules.setdefault(s.proof.__module__, s)\n"
        "assert len(modules) >= 6, sorted(modules)\n"
        "assert all(s.prove(order=1).as_expected for s in modules.values())\n"
        "assert derive.limit('kl', temperature='0')\n"
        "assert main(['expand', '--quantity', 'loss', '--order', '1']) == 0\n"
        "assert Blocked.attempts == [], Blocked.attempts\n"
        "try:\n"
        "    derive.trace('verify.gallery:kd_mean_reduction')\n"
        "except derive.DeriveError as error:\n"
        "    print('refused:', error)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "refused: tracing needs torch: pip install 'kd-theorems[verify]'" in run.stdout


def test_the_blocker_blocks():
    code = _BLOCKER.format(blocked=VERIFY_ONLY) + "import verify\n"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENVIRONMENT, capture_output=True, text=True
    )
    assert run.returncode != 0 and "(blocked)" in run.stderr
    # ... and records even an import that is caught.
    code = _BLOCKER.format(blocked=VERIFY_ONLY) + (
        "try:\n    import torch\nexcept ImportError:\n    pass\nprint(Blocked.attempts)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENVIRONMENT, capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.strip() == "['torch']", run.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    if shutil.which("pip") is None and importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed")
    source = tmp_path_factory.mktemp("source")
    for name in ("derive", "verify"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode != 0 and "No module named" in run.stderr:
        pytest.skip(f"cannot build without isolation here: {run.stderr.strip()[-200:]}")
    assert run.returncode == 0, run.stderr
    (path,) = out.glob("kd_theorems-*.whl")
    return zipfile.ZipFile(path)


def _packages(root):
    return {
        str(path.parent.relative_to(ROOT))
        for path in (ROOT / root).rglob("__init__.py")
        if "__pycache__" not in path.parts
    }


def test_the_wheel_ships_every_subpackage_py_typed_and_the_scripts(wheel):
    names = set(wheel.namelist())
    for package in _packages("derive") | _packages("verify"):
        assert f"{package}/__init__.py" in names, package
    assert {"derive/py.typed", "verify/py.typed"} <= names
    metadata_dir = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    entry_points = wheel.read(f"{metadata_dir}/entry_points.txt").decode()
    assert "kd-derive = derive.cli:main" in entry_points
    assert "kd-verify = verify.cli:main" in entry_points
    metadata = wheel.read(f"{metadata_dir}/METADATA").decode()
    assert f"Version: {derive.__version__}" in metadata
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for name in VERIFY_ONLY:
        mine = [
            line
            for line in requirements
            if re.split(r"[<>=!~;\[ ]", line.split(maxsplit=1)[1])[0] == name
        ]
        assert mine and all('extra == "verify"' in line for line in mine), (name, mine)
