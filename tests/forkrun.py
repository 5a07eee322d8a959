"""``python -m derive|verify ...`` as a real child process, without paying the interpreter's and
torch's start-up (about 2 s of CPU) in every test that runs a command.

A *fork server* is started once per test process: a plain ``python`` that imports torch,
``derive`` and ``verify`` (what every ``python -m verify`` run imports first) and waits. For
each command it forks a child, which takes the test's working directory, environment, argv and
``sys.path`` (the working directory, then ``PYTHONPATH``, then the interpreter's own entries,
as ``python -m`` builds it), puts fresh files on fds 0, 1 and 2, and runs the module with
``runpy`` as ``python -m`` does. The child is a real process: its exit code, what it writes to
fds 1 and 2, ``os._exit``, signals and its own children are the command's own. What differs
from a fresh interpreter is only what was imported before it started, so tests about start-up
itself (import side effects, a package that must not import torch, console scripts, the
exit code of a traceback-free start) keep using ``subprocess``; tests/test_forkrun.py compares
the two on commands of each kind.

:func:`run` has ``subprocess.run``'s signature and result for the cases the tests use
(``capture_output=True, text=True``; ``cwd``, ``env``, ``input``, ``timeout``).
"""

import atexit
import importlib
import io
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback

__all__ = ["run"]

PRELOADED = ("torch", "derive", "derive.cli", "verify", "verify.cli")


def _child(request, base_path):
    """In the forked child: become the command's process, run it, and exit with its code."""
    os.setpgid(0, 0)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, name, mode in [
        (0, "stdin", os.O_RDONLY),
        (1, "stdout", os.O_WRONLY),
        (2, "stderr", os.O_WRONLY),
    ]:
        opened = os.open(request[name], mode)
        os.dup2(opened, fd)
        os.close(opened)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    # As the interpreter sets them up: PYTHONUNBUFFERED makes stdout and stderr unbuffered.
    unbuffered = bool(request["env"].get("PYTHONUNBUFFERED"))
    buffering = 0 if unbuffered else -1
    sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(
        open(1, "wb", buffering=buffering, closefd=False),
        encoding="utf-8",
        write_through=unbuffered,
    )
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", buffering=buffering, closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=unbuffered,
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    entries = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [os.getcwd(), *entries, *base_path]
    importlib.invalidate_caches()
    sys.argv = [request["module"], *request["argv"]]
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code is None:
            code = 0
        elif isinstance(exit.code, int):
            code = exit.code
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def _serve(preloaded):
    """The server: import ``preloaded``, then for each request line fork a child and report its
    pid and, when it ends, its exit status. A child never returns into the loop."""
    for name in preloaded:
        importlib.import_module(name)
    own = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    base_path = [p for p in sys.path[1:] if p not in own]
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, base_path)
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        replies.write(json.dumps({"returncode": code}).encode() + b"\n")
        replies.flush()


_server = None


def _start():
    global _server
    if _server is not None and _server.poll() is None:
        return _server
    # The packages preloaded are the checkout's, installed or not (as the tests' own
    # subprocesses get them through PYTHONPATH).
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=path)
    _server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), json.dumps(PRELOADED)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
        cwd=root,
    )
    return _server


def _reply(server, deadline):
    """The server's next reply line, or ``None`` at the deadline."""
    fd = server.stdout.fileno()
    line = b""
    while not line.endswith(b"\n"):
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError("the fork server ended")
        line += chunk
    return json.loads(line)


def run(args, *, cwd=None, env=None, input=None, timeout=None, capture_output=True, text=True):
    """``subprocess.run([sys.executable, *args], capture_output=True, text=True, ...)`` for
    ``args = ["-m", module, *argv]``, run in a child of the fork server."""
    if not (capture_output and text and len(args) >= 2 and args[0] == "-m"):
        raise ValueError("forkrun.run runs ['-m', module, ...] with captured text output")
    module, argv = args[1], [str(a) for a in args[2:]]
    server = _start()
    with tempfile.TemporaryDirectory(prefix="forkrun-") as folder:
        paths = {name: os.path.join(folder, name) for name in ("stdin", "stdout", "stderr")}
        with open(paths["stdin"], "w", encoding="utf-8") as handle:
            handle.write(input or "")
        for name in ("stdout", "stderr"):
            open(paths[name], "w").close()
        request = {
            "module": module,
            "argv": argv,
            "cwd": os.path.abspath(cwd if cwd is not None else os.getcwd()),
            "env": dict(os.environ if env is None else env),
            **paths,
        }
        server.stdin.write(json.dumps(request).encode() + b"\n")
        server.stdin.flush()
        pid = _reply(server, None)["pid"]
        deadline = None if timeout is None else time.monotonic() + timeout
        done = _reply(server, deadline)
        if done is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reply(server, None)
        with open(paths["stdout"], encoding="utf-8") as handle:
            out = handle.read()
        with open(paths["stderr"], encoding="utf-8") as handle:
            err = handle.read()
    command = [sys.executable, *args]
    if done is None:
        raise subprocess.TimeoutExpired(command, timeout, output=out, stderr=err)
    return subprocess.CompletedProcess(command, done["returncode"], out, err)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
