r"""Running the user's code in a child process that the toolkit starts, owns and can kill.

A ``try``/``except`` cannot contain code that calls ``os._exit``, writes to file descriptor 1,
registers an ``atexit`` handler, ignores ``SIGALRM`` or sleeps inside a C call. So every entry
point that imports or calls the user's code (``verify audit``, ``derive trace``) does it through
:func:`run_isolated`: a toolkit function runs in a child process, its result comes back over a
pipe as plain data that the parent reads with a restricted unpickler and validates, and the
parent's verdict and exit code depend on nothing else.

The contract of :func:`run_isolated`
====================================

``run_isolated(function, *args, timeout, error=DeriveError, what="the loss", **kwargs)``

* ``function`` is a **module-level toolkit function** (picklable by reference), called as
  ``function(*args, **kwargs)`` in the child. It is the function that imports and calls the
  user's code (by ``"MODULE:FUNCTION"``, :func:`derive._targets.resolve_target`), never the
  user's callable itself. ``args``/``kwargs`` must be picklable; ``timeout``, ``error`` and
  ``what`` are :func:`run_isolated`'s own keywords and are not passed on.
* Its **return value must be plain data**: ``None``, ``bool``, ``int``, ``float``, ``str``,
  ``bytes``, and ``tuple``/``list``/``dict`` of these. Tensors travel as bytes (with their
  shape and dtype beside) and are rebuilt by the caller. The parent unpickles the result with no
  global allowed, so a result can never run code in the parent; the caller validates it (shape,
  types, finiteness) before trusting it.
* If ``function`` raises ``error`` (the package's error), the parent raises ``error`` with the
  same one-line message. Any other exception (``SystemExit``, ``KeyboardInterrupt`` and every
  other ``BaseException`` included) becomes ``error("{what} raised {Type}: {message}")``.
* Any other ending raises ``error`` with one line naming it: the child ending without a result
  (``os._exit`` with any code, 0 included; a crash), a signal (its name; ``SIGKILL`` is what the
  kernel sends when memory runs out), the deadline (``timeout`` seconds, enforced by the parent,
  which kills the child's whole process group: no request, no cooperation needed), a result
  that is not plain data or is larger than :data:`MAX_RESULT_BYTES`.
* The child's file descriptors 1 and 2 (``print``, C ``printf``, ``os.write(1, ...)``,
  ``atexit`` output) go to a private file, never to the toolkit's stdout or stderr, and every
  other inherited descriptor but the result pipe is closed;
  :attr:`IsolatedRun.printed` holds its first :data:`MAX_PRINTED_BYTES` bytes (decoded, errors
  replaced), which reports show as "the loss printed ...". Its stdin is ``/dev/null``.
* The child runs in its own session: ``Ctrl-C`` on the terminal reaches the parent only, and the
  parent kills the child's process group whatever happens (grandchildren included), also after a
  valid result. ``atexit`` handlers of the user's code never run (the child leaves with
  ``os._exit`` after sending its result).

On Linux the child is forked (tens of milliseconds, the parent's imports are shared), unless
the parent has initialized CUDA; then, and elsewhere, it is spawned (it imports the toolkit
again, about a second with torch).
``benchmarks/bench_isolation.py`` measures both costs against calling in-process.

Examples
========

>>> run = run_isolated(math.sqrt, 16.0, timeout=60)
>>> run.value
4.0
>>> run_isolated(os._exit, 0, timeout=60, what="the demo")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
derive._errors.DeriveError: the demo ended its process (exit code 0, os._exit or a crash) ...
"""

import contextlib
import faulthandler
import io
import math
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

try:
    import resource
except ImportError:  # Unix only: elsewhere the highest descriptor is guessed (4096)
    resource = None

from ._errors import DeriveError

__all__ = ["run_isolated", "IsolatedRun", "MAX_PRINTED_BYTES", "MAX_RESULT_BYTES"]

#: The most bytes of the child's output kept (the rest is counted, not kept).
MAX_PRINTED_BYTES = 64 * 1024
#: The largest result the parent reads from the pipe (a bigger one is refused, not read).
MAX_RESULT_BYTES = 2**31
# Seconds the parent waits for a child to wind down after sending its result.
_GRACE = 0.5


@dataclass(frozen=True)
class IsolatedRun:
    """What :func:`run_isolated` brought back: ``value`` (plain data, as returned in the child,
    still to be validated by the caller), what the child ``printed`` on fds 1 and 2 (at most
    :data:`MAX_PRINTED_BYTES` bytes, decoded), ``printed_bytes`` (all of it, counted), and
    ``seconds`` from start to result (process start and transfer included)."""

    value: object
    printed: str
    printed_bytes: int
    seconds: float

    @property
    def printed_lines(self):
        """Lines the child printed (of what was kept)."""
        text = self.printed
        return text.count("\n") + (1 if text and not text.endswith("\n") else 0)

    def printed_summary(self, *, what="the loss"):
        """``'the loss printed 2 lines: "hello" ...'``, or ``''`` when nothing was printed."""
        if not self.printed_bytes:
            return ""
        first = " ".join(self.printed.split())[:120]
        lines = self.printed_lines
        return f'{what} printed {lines} line{"s" if lines != 1 else ""}: "{first}"' + (
            " ..." if len(first) < len(" ".join(self.printed.split())) else ""
        )


def _context():
    """Fork on Linux (fast, the imports are shared), unless this process has initialized CUDA,
    which a forked child cannot use; spawn elsewhere."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    torch = sys.modules.get("torch")
    if method == "fork" and torch is not None and torch.cuda.is_initialized():
        method = "spawn"
    return multiprocessing.get_context(method)


def run_isolated(function, *args, timeout, error=DeriveError, what="the loss", **kwargs):
    """Run ``function(*args, **kwargs)`` in a child process; see the module's contract.

    Returns :class:`IsolatedRun`; raises ``error`` (one line) for every other ending.
    """
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)) or not (
        0 < timeout <= 86400 and math.isfinite(timeout)
    ):
        raise error(f"timeout must be a number of seconds in (0, 86400], got {timeout!r}")
    directory = tempfile.mkdtemp(prefix="kd-isolated-")
    output_path = os.path.join(directory, "printed")
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    started = time.monotonic()
    child = context.Process(
        target=_child,
        args=(sender, output_path, function, args, kwargs, error),
        daemon=True,
    )
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        child.start()
        sender.close()
        message = _receive(receiver, child, started + float(timeout))
        seconds = time.monotonic() - started
        if message is _TIMED_OUT:
            _kill(child)
            raise error(
                f"{what} did not finish within its timeout of {float(timeout):g} s "
                f"(it was stopped); raise --timeout, or give it less work"
            )
        if message is None:  # the pipe closed without a result: how did the child end?
            child.join(_GRACE)
            _kill(child)
            child.join(_GRACE)
            raise error(_ending(child.exitcode, what))
        _kill(child, grace=_GRACE)
        printed, printed_bytes = _read_printed(output_path)
        return _interpret(message, error, what, printed, printed_bytes, seconds)
    finally:
        _kill(child)
        receiver.close()
        shutil.rmtree(directory, ignore_errors=True)


_TIMED_OUT = object()


def _receive(receiver, child, deadline):
    """The child's message (bytes), ``None`` if the child ended (or the pipe closed) without
    one, or :data:`_TIMED_OUT`.

    The child's end is watched beside the pipe (``waitpid``), so that a grandchild holding the
    pipe open does not hide the child's death; the message is read in a thread, so that a child
    that sends half a message and stops still meets the deadline (killing it ends the read)."""
    interval = 0.005
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _TIMED_OUT
        if receiver.poll(min(interval, remaining)):
            break
        # Asked of the kernel (waitpid), not read from a pipe a grandchild may hold open.
        if child.exitcode is not None:
            if receiver.poll(_GRACE):  # sent just before it ended
                break
            return None
        interval = min(2 * interval, 0.1)
    box = {}

    def read():
        try:
            box["message"] = receiver.recv_bytes(MAX_RESULT_BYTES)
        except (EOFError, OSError) as problem:
            box["problem"] = problem

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if reader.is_alive():
        _kill(child)
        reader.join(_GRACE)
        return _TIMED_OUT
    if "message" in box:
        return box["message"]
    if isinstance(box.get("problem"), OSError) and "bad message length" in str(box["problem"]):
        return b"too-large"
    return None


def _kill(child, *, grace=0.0):
    """Kill the child's process group (its own session), then the child."""
    if child.pid is None:
        return
    if grace and child.is_alive():
        child.join(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        if child.is_alive():
            child.kill()
        child.join(5.0)


def _ending(code, what):
    if code is None:
        return f"{what} did not end and sent no result (it was stopped)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        cause = {
            "SIGKILL": " (the system kills a process this way when memory runs out)",
            "SIGSEGV": " (a crash in C code)",
            "SIGABRT": " (an abort, often a failed allocation or assertion in C code)",
        }.get(name, "")
        return f"{what} was killed by {name}{cause} before returning a result"
    return (
        f"{what} ended its process (exit code {code}, os._exit or a crash) without returning "
        f"a result"
    )


def _read_printed(path):
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            data = stream.read(MAX_PRINTED_BYTES)
    except OSError:
        return "", 0
    return data.decode("utf-8", errors="replace"), size


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: no global is ever looked up, so nothing runs."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


_PLAIN = (type(None), bool, int, float, str, bytes)


def _is_plain(value, depth=0):
    if depth > 64:
        return False
    if isinstance(value, _PLAIN):
        return type(value) in _PLAIN
    if type(value) in (tuple, list):
        return all(_is_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(
            _is_plain(key, depth + 1) and _is_plain(item, depth + 1) for key, item in value.items()
        )
    return False


def _interpret(message, error, what, printed, printed_bytes, seconds):
    if message == b"too-large":
        raise error(f"{what} sent back a result larger than {MAX_RESULT_BYTES} bytes")
    try:
        decoded = _PlainUnpickler(io.BytesIO(message)).load()
    except Exception as problem:
        raise error(
            f"{what} sent back a result that is not plain data ({' '.join(str(problem).split())})"
        ) from None
    if not (isinstance(decoded, tuple) and len(decoded) == 2 and decoded[0] in _KINDS):
        raise error(f"{what} sent back a result of an unknown form")
    kind, payload = decoded
    if kind == "value":
        if not _is_plain(payload):
            raise error(f"{what} sent back a result that is not plain data")
        return IsolatedRun(payload, printed, printed_bytes, seconds)
    text = " ".join(str(payload).split()) if isinstance(payload, str) else "(no message)"
    if kind == "error":
        raise error(text)
    raise error(f"{what} {text}")


_KINDS = ("value", "error", "raised")


def _highest_descriptor():
    if resource is None:
        return 4096
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return min(soft, 65536) if soft > 0 else 4096
    except (ValueError, OSError):
        return 4096


def _one_torch_thread():
    """A forked child inherits torch's thread pool as the parent left it, without its threads:
    once the parent has run an operation on more than one thread, the child's first parallel
    operation waits for threads that do not exist, for ever. One thread in the child (the
    work is small) never enters the pool. A spawned child imports torch afresh; so does one
    whose parent never imported it (sys.modules is looked at, nothing is imported)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(1)


def _child(sender, output_path, function, args, kwargs, error):
    """The child: own session, fds 1 and 2 to the private file, stdin from /dev/null; run
    ``function``; send one message; leave with ``os._exit`` (no atexit handler runs)."""
    try:
        os.setsid()
    except OSError:
        pass
    output = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.close(null)
    # The parent's sys.stdout may be another object (pytest's capture, a notebook's stream):
    # the child's own are its file descriptors, whatever they were.
    sys.stdin = open(0, closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # No other inherited descriptor (a copy of the parent's stdout, a test runner's capture
    # files) stays open for the user's code to write to: only 0, 1, 2 and the result pipe.
    keep = sender.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, _highest_descriptor())
    if faulthandler.is_enabled():  # its file may have been one of them: our fd 2 now
        faulthandler.enable(file=sys.stderr)
    _one_torch_thread()
    try:
        message = ("value", function(*args, **kwargs))
    except error as problem:
        message = ("error", " ".join(str(problem).split()) or type(problem).__name__)
    except SystemExit as problem:
        message = ("raised", f"called sys.exit({problem.code!r}): it must return, not exit")
    except BaseException as problem:  # the user's code: reported, never a traceback
        text = " ".join(str(problem).split())
        message = ("raised", f"raised {type(problem).__name__}" + (f": {text}" if text else ""))
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    try:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as problem:
        data = pickle.dumps(("raised", f"returned a result that cannot be sent ({problem})"))
    with contextlib.suppress(BaseException):
        sender.send_bytes(data)
    os._exit(0)
