r"""Loading the user's loss and running it contained.

The audit runs code it does not control: importing a module, calling the loss, and its
backward pass. :class:`Sandbox` runs each piece so that

* anything it raises, ``SystemExit``, ``KeyboardInterrupt`` and every other
  ``BaseException`` included, becomes one :class:`~verify.VerifyError` naming the function, the
  exception and the call (the CLI prints it as one line and exits 2);
* it stops at a deadline (``--timeout``): in the main thread an interval timer interrupts a
  call that runs past it; elsewhere the deadline is checked between calls;
* what it prints (``print``, warnings) is captured instead of reaching stdout or stderr, so
  that ``--json`` output stays pure JSON; :attr:`Sandbox.printed_lines` counts it.

:func:`inspect_signature` reads which optional arguments the loss takes: a fourth argument
``target`` (class indices) and a keyword ``mask`` (real tokens of a sequence).

Examples
========

>>> sandbox = Sandbox("demo", timeout=10.0)
>>> sandbox.call(lambda: print("hello") or 3, context="(a demo)")
3
>>> sandbox.printed_lines
1
>>> sandbox.call(lambda: exit(0), context="(a demo)")
Traceback (most recent call last):
...
verify._errors.VerifyError: demo called sys.exit(0) (a demo): a loss must return its value, not exit
>>> inspect_signature(lambda student, teacher, T, target, mask=None: 0)
Signature(target='positional', mask=True)
"""

import contextlib
import inspect
import io
import signal
import threading
import time
from dataclasses import dataclass

from derive._targets import check_target, resolve_target

from .._errors import VerifyError
from .result import one_line

__all__ = ["Sandbox", "Signature", "inspect_signature", "load_target", "describe_function"]


class _Timeout(BaseException):
    """Raised by the interval timer inside the user's code (a BaseException, so that an
    ``except Exception`` in that code does not swallow it)."""


class Sandbox:
    """Runs the user's code with its exceptions, output and running time contained.

    ``name`` is how messages call the code (``module:function``); ``timeout`` the seconds the
    whole audit may take, counted from construction.
    """

    def __init__(self, name, *, timeout, exit_hint=": a loss must return its value, not exit"):
        self.name, self.timeout, self.exit_hint = name, float(timeout), exit_hint
        self.deadline = time.monotonic() + self.timeout
        self.output = io.StringIO()

    @property
    def printed_lines(self):
        """Lines the contained code printed (captured, never shown)."""
        text = self.output.getvalue()
        return text.count("\n") + (1 if text and not text.endswith("\n") else 0)

    def remaining(self):
        return self.deadline - time.monotonic()

    def check_time(self):
        """Raise :class:`VerifyError` once the deadline has passed."""
        if self.remaining() <= 0:
            raise VerifyError(self._timeout_message())

    def _timeout_message(self):
        return (
            f"the audit of {self.name} did not finish within its timeout of "
            f"{self.timeout:g} s (the loss is too slow, or hangs); raise --timeout, or audit "
            f"a smaller shape (--classes, --batch-size)"
        )

    def call(self, function, *args, context="", **kwargs):
        """``function(*args, **kwargs)``, contained; ``context`` ends every message."""
        self.check_time()
        try:
            with (
                _alarm(self.remaining()),
                contextlib.redirect_stdout(self.output),
                contextlib.redirect_stderr(self.output),
            ):
                return function(*args, **kwargs)
        except _Timeout:
            raise VerifyError(self._timeout_message()) from None
        except SystemExit as error:
            raise VerifyError(
                f"{self.name} called sys.exit({error.code!r}) {context}{self.exit_hint}"
            ) from None
        except KeyboardInterrupt:
            raise VerifyError(
                f"{self.name} was interrupted (KeyboardInterrupt) {context}"
            ) from None
        except BaseException as error:  # the user's code: report it, never a traceback
            raise VerifyError(
                f"{self.name} raised {type(error).__name__}: {one_line(error)} {context}"
            ) from error


@contextlib.contextmanager
def _alarm(seconds):
    """Raise :class:`_Timeout` in the main thread after ``seconds`` (a no-op elsewhere)."""
    usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Signature:
    """The optional arguments a loss takes: ``target`` (``"positional"``, its fourth argument;
    ``"keyword"``; or ``None``) and the keyword ``mask``."""

    target: str | None = None
    mask: bool = False


def inspect_signature(fn):
    """:class:`Signature` of ``fn``; a callable without a readable signature takes neither."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return Signature()
    positional = [
        p for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    keywords = {
        p.name for p in parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    target = None
    if (
        len(positional) >= 4
        and positional[3].name != "mask"
        and (positional[3].name == "target" or positional[3].default is inspect.Parameter.empty)
    ):
        target = "positional"
    elif "target" in keywords:
        target = "keyword"
    return Signature(target=target, mask="mask" in keywords)


def describe_function(fn):
    """``module:qualified.name`` of a function, or its repr."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{module}:{name}" if module and name else repr(fn)


def load_target(target, *, timeout=None):
    """The callable named by ``"MODULE:FUNCTION"`` (``FUNCTION`` may be dotted, ``Class.method``),
    imported in this process (``verify audit`` imports it only in the loss's own process,
    :mod:`.isolated`); the lookup is the one loader, :func:`derive._targets.resolve_target`.

    Importing runs the module's code: it is contained like the loss (``timeout`` seconds, no
    output, every exception one :class:`~verify.VerifyError`).

    Examples
    ========

    >>> load_target("verify.gallery:kd_batchmean").__name__
    'kd_batchmean'
    >>> load_target("verify.gallery")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    verify._errors.VerifyError: target must be MODULE:FUNCTION (e.g. verify.gallery:kd_batchmean),
    got 'verify.gallery'
    """
    check_target(target, error=VerifyError)
    module_name = target.partition(":")[0]
    sandbox = Sandbox(f"module {module_name!r}", timeout=timeout or 3600.0, exit_hint="")
    try:
        return sandbox.call(resolve_target, target, error=_Refused, context="when imported")
    except VerifyError as error:
        if isinstance(error.__cause__, _Refused):
            raise VerifyError(str(error.__cause__)) from None
        raise VerifyError(
            f"cannot import module {module_name!r} of target {target!r}: {error}"
        ) from None


class _Refused(Exception):
    """:func:`~derive._targets.resolve_target`'s refusal, told apart from the deadline."""
