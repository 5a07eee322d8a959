"""tests/forkrun.py runs ``python -m ...`` in a forked child of a pre-imported server; every
test that uses it relies on the child being indistinguishable from a fresh ``python -m`` in
what the command prints and how it exits. These tests hold it to that against ``subprocess``
itself, on commands of each kind the suite runs, and on probes that print what a careless
fork would get wrong (working directory, path, environment, argv, stdin, buffered output)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import forkrun
import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """\
import os, sys
print("cwd", os.getcwd())
print("path", sys.path[:3])
print("argv", sys.argv)
print("env", os.environ.get("FORKRUN_PROBE"), "HOME" in os.environ)
print("stdin", sys.stdin.read())
print("module loaded before", "forkrun_marker" in sys.modules)
import forkrun_marker
sys.stdout.write("no newline at the end")
os.write(2, b"straight to fd 2\\n")
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def planted(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "forkrun_marker.py").write_text("")
    (tmp_path / "raises.py").write_text("raise ValueError('planted')\n")
    (tmp_path / "sleeps.py").write_text(
        "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n"
    )
    (tmp_path / "exits.py").write_text(
        "import atexit, os\natexit.register(print, 'atexit ran')\nprint('lost')\nos._exit(7)\n"
    )
    return tmp_path


def _both(args, **options):
    fork = forkrun.run(args, **options)
    real = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, **options
    )
    return fork, real


def _environment(*extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *map(str, extra)]))


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "derive", "expand", "--quantity", "gradient", "--order", "2"],
        ["-m", "derive", "no-such-command"],
        ["-m", "verify", "audit", "audit_targets:prints", "--json"],
    ],
    ids=["derive-output", "argparse-error", "loss-prints"],
)
def test_a_command_exits_and_prints_as_in_a_fresh_interpreter(args, tmp_path):
    fork, real = _both(args, cwd=tmp_path, env=_environment(ROOT / "tests"))
    assert (fork.returncode, fork.stdout, fork.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )


@pytest.mark.parametrize("code", [0, 3])
def test_working_directory_path_environment_argv_stdin_and_fds_are_the_commands(planted, code):
    env = dict(_environment(planted), FORKRUN_PROBE="seen")
    fork, real = _both(["-m", "probe", str(code)], cwd=planted, env=env, input="fed")
    assert fork.returncode == real.returncode == code
    assert (fork.stdout, fork.stderr) == (real.stdout, real.stderr)
    assert "env seen True" in fork.stdout and "stdin fed" in fork.stdout
    assert "module loaded before False" in fork.stdout
    assert fork.stdout.endswith("no newline at the end")
    # Control: a second run starts from the server again, not from the first run's imports.
    again = forkrun.run(["-m", "probe", "0"], cwd=planted, env=env)
    assert "module loaded before False" in again.stdout


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_an_uncaught_exception_and_os_exit_are_the_interpreters(planted, unbuffered):
    env = dict(_environment(planted), PYTHONUNBUFFERED=unbuffered)
    fork, real = _both(["-m", "raises"], cwd=planted, env=env)
    assert fork.returncode == real.returncode == 1
    assert fork.stderr.splitlines()[-1] == real.stderr.splitlines()[-1] == "ValueError: planted"
    fork, real = _both(["-m", "exits"], cwd=planted, env=env)
    assert fork.returncode == real.returncode == 7
    # os._exit skips atexit, and the print is lost unless output is unbuffered.
    assert fork.stdout == real.stdout == ("lost\n" if unbuffered else "")


def test_a_timeout_kills_the_command_and_raises_like_subprocess(planted):
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as raised:
        forkrun.run(["-m", "sleeps"], cwd=planted, env=_environment(planted), timeout=1)
    assert time.monotonic() - start < 30
    pid = int(raised.value.output.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_anything_but_a_module_with_captured_text_is_refused():
    with pytest.raises(ValueError, match="runs \\['-m', module"):
        forkrun.run(["-c", "print(1)"])
