"""Hostile losses, on every entry point that runs the user's code: ``verify audit`` and
``derive trace``.

Each module is written into a temporary directory at test time (a file under tests/ that exits
when imported would stop pytest's own collection). Every case gives exit code 2 and one line on
stderr naming what happened, within the timeout plus a small constant, with nothing on stdout;
or, for the ones that only print or register ``atexit`` handlers around a loss that returns, the
exit code and the output of that returned value alone (pure JSON).

The entry points are called in this process (their ``main``), so that ``capfd`` sees file
descriptors 1 and 2 themselves: whatever the child writes there must not reach them. Two cases
run as real processes too.
"""

import json
import os
import time
from pathlib import Path

import forkrun
import pytest

import derive.cli
import verify.cli
from derive._errors import DeriveError
from derive._isolation import run_isolated

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 3
# The hostile code that sleeps waits out its timeout: a shorter one.
SLEEPER_TIMEOUT = 1
SLEEPERS = ("sigalrm_ignored_and_sleeps", "sleeps_in_c")
# Seconds allowed past the timeout: killing the child and the parent's own start-up.
SLACK = 10

KD = "from verify.gallery import kd_batchmean as kd, reverse_kl\n"
SIGNATURE = "def loss(student_logits, teacher_logits, temperature):\n"

#: name -> (module source, function, {entry point: (exit code, message or None)}).
HOSTILE = {
    "exit_0_in_loss": (
        f"import os\n{SIGNATURE}    os._exit(0)\n",
        "loss",
        {"audit": (2, "ended its process (exit code 0"), "trace": (2, "exit code 0")},
    ),
    "exit_1_in_loss": (
        f"import os\n{SIGNATURE}    os._exit(1)\n",
        "loss",
        {"audit": (2, "(exit code 1"), "trace": (2, "(exit code 1")},
    ),
    "exit_at_import": (
        f"import os\nos._exit(0)\n{SIGNATURE}    return 0\n",
        "loss",
        {"audit": (2, "exit code 0"), "trace": (2, "exit code 0")},
    ),
    "exit_in_module_getattr": (
        "import os\ndef __getattr__(name):\n    os._exit(0)\n",
        "loss",
        {"audit": (2, "exit code 0"), "trace": (2, "exit code 0")},
    ),
    "exit_in_torch_function": (
        "import os, torch\n" + KD + "class Evil(torch.Tensor):\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        os._exit(0)\n" + SIGNATURE + "    value = kd(student_logits, teacher_logits, "
        "temperature)\n    return value.as_subclass(Evil) if isinstance(value, torch.Tensor) "
        "and not isinstance(value, torch.fx.Proxy) else value.as_subclass(Evil)\n",
        "loss",
        {"audit": (2, "exit code 0"), "trace": (2, None)},
    ),
    "exit_in_backward_hook": (
        "import sys\n"
        + KD
        + SIGNATURE
        + "    student_logits.register_hook(lambda g: sys.exit(0))\n"
        "    return kd(student_logits, teacher_logits, temperature)\n",
        "loss",
        {"audit": (2, "sys.exit(0)"), "trace": (2, None)},
    ),
    "sigalrm_ignored_and_sleeps": (
        f"import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n{SIGNATURE}"
        "    time.sleep(60)\n",
        "loss",
        {
            "audit": (2, f"within its timeout of {SLEEPER_TIMEOUT} s"),
            "trace": (2, f"within its timeout of {SLEEPER_TIMEOUT} s"),
        },
    ),
    "sleeps_in_c": (
        f"import ctypes\n{SIGNATURE}    ctypes.CDLL(None).sleep(60)\n",
        "loss",
        {
            "audit": (2, f"within its timeout of {SLEEPER_TIMEOUT} s"),
            "trace": (2, f"within its timeout of {SLEEPER_TIMEOUT} s"),
        },
    ),
    "kills_itself": (
        f"import os, signal\n{SIGNATURE}    os.kill(os.getpid(), signal.SIGKILL)\n",
        "loss",
        {"audit": (2, "killed by SIGKILL"), "trace": (2, "killed by SIGKILL")},
    ),
    "segfault": (
        f"import ctypes\n{SIGNATURE}    ctypes.string_at(0)\n",
        "loss",
        {"audit": (2, "killed by SIGSEGV"), "trace": (2, "killed by SIGSEGV")},
    ),
    "memory_exhausted": (
        f"{SIGNATURE}    return bytearray(1 << 62)\n",
        "loss",
        {"audit": (2, "MemoryError"), "trace": (2, "MemoryError")},
    ),
    "keyboard_interrupt": (
        f"{SIGNATURE}    raise KeyboardInterrupt\n",
        "loss",
        {"audit": (2, "KeyboardInterrupt"), "trace": (2, "KeyboardInterrupt")},
    ),
    "base_exception": (
        f"class Stop(BaseException):\n    pass\n{SIGNATURE}    raise Stop('stop')\n",
        "loss",
        {"audit": (2, "raised Stop: stop"), "trace": (2, "Stop: stop")},
    ),
    "grandchild_holds_the_pipes": (
        f"import os, time\n{SIGNATURE}    if os.fork() == 0:\n        time.sleep(60)\n"
        "    os._exit(0)\n",
        "loss",
        {"audit": (2, "exit code 0"), "trace": (2, "exit code 0")},
    ),
    "returns_a_meta_tensor": (
        f"import torch\n{SIGNATURE}    return torch.zeros((), device='meta')\n",
        "loss",
        {"audit": (2, "returned a meta tensor (it holds no value)"), "trace": (2, None)},
    ),
    # Only output and atexit tricks around a loss that returns: the returned value decides.
    "writes_to_fds_and_prints": (
        "import ctypes, os, sys\n" + KD + SIGNATURE + "    os.write(1, b'{\"verdict\": 1}\\n')\n"
        "    os.write(2, b'noise on fd 2\\n')\n    print('printed', file=sys.stderr)\n"
        "    ctypes.CDLL(None).printf(b'from C\\n')\n"
        "    return kd(student_logits, teacher_logits, temperature)\n",
        "loss",
        {"audit": (0, None), "trace": (0, None)},
    ),
    "atexit_exits_0_after_a_reverse_kl": (
        "import atexit, os\natexit.register(os._exit, 0)\natexit.register(print, 'consistent')\n"
        + KD
        + SIGNATURE
        + "    return reverse_kl(student_logits, teacher_logits, temperature)\n",
        "loss",
        {"audit": (1, None), "trace": (0, None)},
    ),
}

CASES = [
    (name, entry)
    for name, (_, _, expected) in HOSTILE.items()
    for entry in ("audit", "trace")
    if entry in expected
]


@pytest.fixture
def hostile_modules(tmp_path, monkeypatch):
    for name, (source, _, _) in HOSTILE.items():
        (tmp_path / f"hostile_{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _argv(entry, target, code):
    timeout = TIMEOUT if code == 2 else 300
    if target.split(":")[0].removeprefix("hostile_") in SLEEPERS:
        timeout = SLEEPER_TIMEOUT
    if entry == "audit":
        return ["audit", target, "--json", "--timeout", str(timeout)], verify.cli.main
    return ["trace", target, "--order", "1", "--format", "json", "--timeout", str(timeout)], (
        derive.cli.main
    )


@pytest.mark.parametrize("name, entry", CASES)
def test_hostile_code_cannot_change_the_exit_code_or_the_output(
    hostile_modules, capfd, name, entry
):
    _, function, expected = HOSTILE[name]
    code, message = expected[entry]
    argv, main = _argv(entry, f"hostile_{name}:{function}", code)
    started = time.monotonic()
    returned = main(argv)
    elapsed = time.monotonic() - started
    out, err = capfd.readouterr()
    assert returned == code, (returned, out, err)
    if code == 2:
        assert out == ""
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert message is None or message in err, err
        assert elapsed < TIMEOUT + SLACK
    else:
        value = json.loads(out)  # pure JSON: nothing the loss printed
        assert isinstance(value, dict)
        assert err == ""
    assert sorted(p.name for p in hostile_modules.iterdir() if not p.name.endswith(".py")) in (
        [],
        ["__pycache__"],
    )


def _process(*argv, cwd):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return forkrun.run(
        list(argv),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


def test_a_real_process_exits_2_when_the_loss_calls_os_exit_0(tmp_path):
    (tmp_path / "exits.py").write_text(HOSTILE["exit_0_in_loss"][0])
    for argv in (
        ("-m", "verify", "audit", "exits:loss", "--json", "--timeout", "30"),
        ("-m", "derive", "trace", "exits:loss", "--format", "json", "--timeout", "30"),
    ):
        process = _process(*argv, cwd=tmp_path)
        assert process.returncode == 2 and process.stdout == "", process
        assert len(process.stderr.splitlines()) == 1 and "exit code 0" in process.stderr


def _sleep_forever():
    time.sleep(600)


def _print_and_return(value):
    print("hello")
    os.write(2, b"on fd 2\n")
    return value


def _not_plain():
    return {1, 2}


def test_run_isolated_contract():
    run = run_isolated(_print_and_return, [1, 2.5, "x", None, b"y"], timeout=60)
    assert run.value == [1, 2.5, "x", None, b"y"]
    assert run.printed == "hello\non fd 2\n" and run.printed_lines == 2
    assert 'the loss printed 2 lines: "hello on fd 2"' == run.printed_summary()
    started = time.monotonic()
    with pytest.raises(DeriveError, match=r"^the nap did not finish within its timeout of 1 s"):
        run_isolated(_sleep_forever, timeout=1, what="the nap")
    assert time.monotonic() - started < 1 + SLACK
    with pytest.raises(DeriveError, match="not plain data"):
        run_isolated(_not_plain, timeout=60)
    with pytest.raises(DeriveError, match=r"^the loss raised ZeroDivisionError: "):
        run_isolated(divmod, 1, 0, timeout=60)
    with pytest.raises(ValueError, match="timeout must be a number of seconds"):
        run_isolated(divmod, 1, 1, timeout=float("nan"))


def test_a_spawned_child_keeps_the_contract(monkeypatch):
    """Where the child cannot be forked (CUDA initialized, or not Linux) it is spawned."""
    import multiprocessing

    import derive._isolation as isolation

    monkeypatch.setattr(isolation, "_context", lambda: multiprocessing.get_context("spawn"))
    run = run_isolated(_print_and_return, {"a": (1, 2)}, timeout=120)
    assert run.value == {"a": (1, 2)} and run.printed_lines == 2
    with pytest.raises(DeriveError, match=r"exit code 3"):
        run_isolated(os._exit, 3, timeout=120)


_THREADED_PARENT = """
import sys, torch
import derive._isolation as isolation
from derive._errors import DeriveError
from derive._isolation import run_isolated
from verify.gallery import kd_batchmean

def backward(n):
    student = torch.randn(n, n, dtype=torch.float64, requires_grad=True)
    kd_batchmean(student @ student.T, torch.randn(n, n, dtype=torch.float64), 4.0).backward()
    return float(student.grad.abs().sum()) > 0

if sys.argv[1] == "unguarded":
    isolation._one_torch_thread = lambda: None
torch.set_num_threads(2)
print("parent", backward(512))  # the parent's pool now has its threads
try:
    print("child", run_isolated(backward, 512, timeout=float(sys.argv[2])).value)
except DeriveError as problem:
    print("child", problem)
"""


def _threaded_parent(folder, mode, timeout):
    (folder / "threaded_parent.py").write_text(_THREADED_PARENT)
    return forkrun.run(
        ["-m", "threaded_parent", mode, str(timeout)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT)),
    )


def test_a_child_forked_after_torch_ran_on_threads_does_not_hang(tmp_path):
    """A parent whose torch pool has run on two threads (a notebook, a training script) forks
    the child: the child's torch work finishes, on one thread."""
    run = _threaded_parent(tmp_path, "guarded", 60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["parent True", "child True"]


def test_control_without_one_thread_the_forked_child_hangs(tmp_path):
    """The control: with the child's thread count left as the parent's, the same child waits
    for pool threads that a fork does not copy, until its timeout (the guarded child above
    finishes in well under a tenth of it)."""
    run = _threaded_parent(tmp_path, "unguarded", 2)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "parent True"
    assert "did not finish within its timeout of 2 s" in run.stdout.splitlines()[1]
