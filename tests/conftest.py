"""Shared pytest configuration: hypothesis profiles, and the ``gpu`` and ``slow`` markers.

Hypothesis profiles (choose with the environment variable ``HYPOTHESIS_PROFILE``):

* ``ci`` (default): derandomized, no deadline, few examples, so that the suite is quick and
  the same on every run;
* ``thorough``: many more examples, for a long run (a GPU machine, say).

``@pytest.mark.gpu`` tests run only when torch sees CUDA; ``@pytest.mark.slow`` tests only
with ``--run-slow``. Both markers are declared in ``pyproject.toml``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=15,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist each worker is one process per core: one torch thread each, so that
    # the workers do not oversubscribe the cores between them.
    import torch

    torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def check_results():
    """Every numeric check once, float64 on the CPU, with reduced sizes (the CLI's defaults are
    larger): shared by the tests of the results and of the CLI's JSON."""
    from verify.registry import run_checks

    return tuple(run_checks(device="cpu", examples=8, seed=1))
