"""Meta tests of verify's public surface: names, registry, and what importing pulls in."""

import importlib
import subprocess
import sys

import pytest

import derive
import verify
from verify import checks

MODULES = [
    "verify",
    "verify.checks",
    "verify.strategies",
    "verify.tolerances",
    "verify.devices",
    "verify.results",
    "verify.symbolic",
    "verify.losses",
    "verify.networks",
    "verify.optimizers",
    "verify.convergence",
    "verify.search",
    "verify.registry",
    "verify.cli",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_importable(module_name):
    module = importlib.import_module(module_name)
    assert module.__all__, module_name
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name}"


def test_checks_are_keyed_like_the_registry():
    assert list(checks.CHECKS) == list(derive.STATEMENTS)


def test_every_twin_is_an_objective_and_every_objective_has_a_twin():
    assert sorted(verify.TWINS) == sorted(derive.OBJECTIVES)


@pytest.mark.parametrize("statement_id", list(derive.STATEMENTS))
def test_each_statement_has_one_registered_check(statement_id):
    check = checks.CHECKS[statement_id]
    assert check is verify.resolve_check(statement_id)
    assert derive.STATEMENTS[statement_id].numeric_check == f"verify.CHECKS[{statement_id!r}]"
    assert check.__doc__
    keywords = set(check.__kwdefaults__)
    assert {"device", "dtype", "examples", "seed"} <= keywords
    assert check.__kwdefaults__["device"] == "cpu"
    assert str(check.__kwdefaults__["dtype"]) == "torch.float64"


def test_importing_verify_leaves_plotting_and_notebooks_alone():
    code = (
        "import sys, verify; "
        "print(sorted(m for m in ('matplotlib', 'IPython', 'jupyter', 'nbclient') "
        "if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
