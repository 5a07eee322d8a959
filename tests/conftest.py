"""Shared pytest configuration: hypothesis profiles, and the ``gpu`` and ``slow`` markers.

Hypothesis profiles (choose with the environment variable ``HYPOTHESIS_PROFILE``):

* ``ci`` (default): derandomized, no deadline, few examples, so that the suite is quick and
  the same on every run;
* ``thorough``: many more examples, for a long run (a GPU machine, say).

``@pytest.mark.gpu`` tests run only when torch sees CUDA; ``@pytest.mark.slow`` tests only
with ``--run-slow``. Both markers are declared in ``pyproject.toml``.
"""

import atexit
import os
import pickle
import sys

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
    # the workers do not oversubscribe the cores between them. The processes the tests start
    # (the CLIs, the notebooks' kernels) inherit the environment and so one thread too: with
    # a pool per core in each, their threads spin waiting for cores the other workers hold.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

    # A worker's results are with the controller once its session ends; tearing down its heap
    # (every sympy expression and torch object the tests made) only makes the controller wait
    # for it, seconds at the end of every run. Exit handlers run last-registered first: those
    # the tests' own imports register still run; only those registered before this file was
    # imported (logging's flush, multiprocessing's, for a worker that has sent its results)
    # are skipped, with the heap's teardown.
    def _exit_without_teardown():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    atexit.register(_exit_without_teardown)


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


#: The files whose tests prove every statement (directly, through the CLI or through the LaTeX
#: report). derive caches the expansions and limits behind the proofs in its process, so with
#: ``--dist loadgroup`` (the README's command) they share one worker and compute those once,
#: not once per worker.
PROVING_EVERY_STATEMENT = (
    "derive/report.py",
    "tests/test_derive_cli.py",
    "tests/test_latex.py",
    "tests/test_statements.py",
)


#: The files whose tests share conftest's ``check_results`` (every numeric check): one worker
#: computes it, and no other waits for it.
CHECKING_EVERY_STATEMENT = ("tests/test_verify_checks.py", "tests/test_verify_cli.py")

#: The longest groups (about 30 to 70 s each on one core), handed out first: a worker that
#: drew one at the end of the run would leave the others idle until it finished.
LONGEST_FIRST = (
    "proofs",
    "checks",
    "tests/test_objectives.py",
    "tests/test_isolation.py",
    "tests/test_audit.py",
    "tests/test_expansion.py",
)


def _group(nodeid):
    """The group of a test: its file, except the proving files and the checking files."""
    path = nodeid.split("::")[0].split("@")[0]
    if path in PROVING_EVERY_STATEMENT:
        return "proofs"
    return "checks" if path in CHECKING_EVERY_STATEMENT else path


def pytest_configure(config):
    # Groups are handed out in the order of the collection (see below), not reordered by
    # their number of tests (which says little about their time here).
    if getattr(config.option, "dist", None) == "loadgroup":
        config.option.loadscopereorder = False


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (the README's command) by :func:`_group`, here rather than with
    ``xdist_group`` marks: pytest-xdist 3.8 puts a mark's group into the node id, which
    pytest 9.2's node ids no longer take, so the marks silently group nothing there."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _group(nodeid)

    return ByGroup(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    import torch

    if getattr(config.option, "loadgroup", False):
        # In a pytest-xdist worker of --dist loadgroup: the longest groups first.
        rank = {group: position for position, group in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(_group(item.nodeid), len(rank)))

    skip_gpu = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)


def once_per_run(tmp_path_factory, name, compute):
    """``compute()`` once for the whole test run, however many pytest-xdist workers need it.

    A session fixture is built once per worker; this shares the first worker's value with the
    others through a pickle in the run's common temporary directory, written under a file
    lock (the pattern pytest-xdist documents), so that they wait for it rather than compute it
    again. Without xdist, or without ``fcntl`` (not on POSIX), it simply computes.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return compute()
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return compute()
    shared = tmp_path_factory.getbasetemp().parent
    stored = shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stored.exists():
            return pickle.loads(stored.read_bytes())
        value = compute()
        partial = shared / f"{name}.pickle.partial"
        partial.write_bytes(pickle.dumps(value))
        partial.replace(stored)
        return value


@pytest.fixture(scope="session")
def check_results(tmp_path_factory):
    """Every numeric check once, float64 on the CPU, with reduced sizes (the CLI's defaults are
    larger: 8 examples, and 20 tried by each counterexample search before it shrinks, where
    the CLI tries 40; at seed 1 the results are the same): shared by the tests of the results
    and of the CLI's JSON, built once per run."""
    from verify.registry import run_checks

    return once_per_run(
        tmp_path_factory,
        "check_results",
        lambda: tuple(run_checks(device="cpu", examples=8, seed=1, search_examples=20)),
    )
