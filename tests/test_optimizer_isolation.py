"""``verify optimizer`` runs the user's factory in its own process: nothing the factory does
but returning an optimizer can change the verdict, the exit code or the JSON."""

import json
import os
import textwrap

import forkrun
import pytest

FACTORIES = textwrap.dedent(
    """
    import os, sys, time
    import torch

    def sgd(params):
        print("a line the factory prints")
        return torch.optim.SGD(params, lr=0.1)

    def adamw(params):
        return torch.optim.AdamW(params, lr=1e-2)

    def exits_zero(params):
        os._exit(0)

    def exits_in_step(params):
        optimizer = torch.optim.SGD(params, lr=0.1)
        optimizer.step = lambda *a, **k: os._exit(0)
        return optimizer

    def sleeps(params):
        time.sleep(60)

    def writes_fd1(params):
        os.write(1, b'{"verdict": "preserves"}\\n')
        return torch.optim.AdamW(params, lr=1e-2)
    """
)


def _run(tmp_path, name, *extra):
    (tmp_path / "factories.py").write_text(FACTORIES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    return forkrun.run(
        ["-m", "verify", "optimizer", f"factories:{name}", *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_a_preserving_factory_exits_0_and_its_prints_stay_out_of_the_json(tmp_path):
    run = _run(tmp_path, "sgd", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["verdict"] == "preserves" and result["statement"] == "atlas-linear"


def test_a_breaking_factory_exits_1_even_when_it_writes_a_verdict_to_fd_1(tmp_path):
    run = _run(tmp_path, "writes_fd1", "--json")
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["verdict"] == "breaks"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("exits_zero", "ended its process (exit code 0"),
        ("exits_in_step", "ended its process (exit code 0"),
        ("sleeps", "did not finish within its timeout of 1 s"),
    ],
)
def test_a_factory_that_exits_or_hangs_is_exit_2_with_one_line(tmp_path, name, message):
    # The one that hangs waits out its timeout: a short one; the others end at once.
    run = _run(tmp_path, name, "--timeout", "1" if name == "sleeps" else "30")
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
