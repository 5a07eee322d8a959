"""Importing :mod:`derive` and :mod:`verify` changes nothing global; running their checks
changes hypothesis's configuration only for the duration of a call.

A user's own hypothesis suite loads a profile with its own example database and home
directory, then imports both packages and runs the parts of :mod:`verify` that drive hypothesis
(:mod:`verify.search`); its profile, database, home directory and working directory must be
exactly as it left them. The script runs in a fresh interpreter, so nothing imported by this
test session hides an import-time effect.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from verify import losses

_USER_SUITE = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from hypothesis import given, settings, strategies as st
    from hypothesis import configuration
    from hypothesis.database import DirectoryBasedExampleDatabase

    home = Path(sys.argv[1])
    database = DirectoryBasedExampleDatabase(str(home / "user-database"))
    configuration.set_hypothesis_home_dir(str(home / "user-home"))
    settings.register_profile("user", max_examples=7, deadline=1234, database=database)
    settings.load_profile("user")

    def snapshot():
        current = settings.default
        return {
            "profile": settings._current_profile,
            "max_examples": current.max_examples,
            "deadline": str(current.deadline),
            "database is the user's": current.database is database,
            "home": str(getattr(configuration, "__hypothesis_home_directory")),
            "files in the working directory": sorted(os.listdir(".")),
            "files in the user's home": sorted(
                str(p.relative_to(home)) for p in home.rglob("*")
            ),
        }

    before = snapshot()
    import derive, verify, verify.checks, verify.search
    after_import = snapshot()
    from verify.search import draw_examples, find_counterexample
    drawn = draw_examples(st.integers(0, 9), 3, seed=0)
    found = find_counterexample(st.lists(st.integers(0, 9)), lambda xs: sum(xs) >= 10, seed=0)
    after_calls = snapshot()

    seen = []

    @given(st.integers())
    def users_own_test(x):
        seen.append(x)

    users_own_test()
    print(json.dumps({
        "before": before, "after_import": after_import, "after_calls": after_calls,
        "drawn": drawn, "found": found, "user_examples": len(seen),
    }))
    """
)


def test_importing_and_running_the_packages_leaves_the_users_hypothesis_alone(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    environment = dict(os.environ)
    environment.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    completed = subprocess.run(
        [sys.executable, "-c", _USER_SUITE, str(tmp_path)],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    before = report["before"]
    assert before["profile"] == "user" and before["max_examples"] == 7
    assert before["home"].endswith("user-home") and before["database is the user's"]
    assert report["after_import"] == before
    assert report["after_calls"] == before
    assert before["files in the working directory"] == []  # verify wrote no .hypothesis here
    # verify's own searches ran on their own settings, the user's test on the user's.
    assert len(report["drawn"]) == 3 and all(0 <= x <= 9 for x in report["drawn"])
    assert report["found"] == [1, 9]
    assert report["user_examples"] == 7


def test_python_m_derive_runs_only_as_a_program():
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    completed = subprocess.run(
        [sys.executable, "-c", "import derive.__main__"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0 and completed.stdout == "", completed.stderr[-2000:]
    # As a program it runs the CLI (a bad subcommand: exit 2, one line on stderr).
    completed = subprocess.run(
        [sys.executable, "-m", "derive", "no-such-command"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2 and completed.stderr, completed.stderr[-2000:]


def test_probing_keeps_no_state_between_calls_and_patches_no_tensor():
    student = torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.5, -0.5]], dtype=torch.float64)
    teacher = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.1, 0.0]], dtype=torch.float64)
    seen = []

    def loss(student_logits, teacher_logits):
        standard = losses.standardized(student_logits, unbiased=False)
        seen.append(standard)
        return losses.soft_cross_entropy(standard, torch.softmax(teacher_logits, -1))

    first = losses.probed_magnitudes(loss, student, teacher)
    assert losses._ACTIVE_PROBE.get() is None
    assert not hasattr(losses, "_PROBES")
    assert all(not hasattr(tensor, "_chain_factor") for tensor in seen)
    second = losses.probed_magnitudes(loss, student, teacher)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    # Through the standardization the chain factor (1 + max x^2)/s scales the magnitude.
    plain = losses.probed_magnitudes(
        lambda s, t: losses.soft_cross_entropy(s, torch.softmax(t, -1)), student, teacher
    )
    assert not torch.equal(first[0], plain[0])
    # Outside a probe nothing is recorded.
    losses.student_log_softmax(student, 1.0)
    assert losses._ACTIVE_PROBE.get() is None
