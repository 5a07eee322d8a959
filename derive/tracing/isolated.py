r"""``derive trace`` with the user's loss in its own process.

:func:`trace_in_child_process` imports and traces the loss in a child process
(:func:`derive._isolation.run_isolated`): the ``torch.fx`` capture and the numeric self-check
call the user's code there only. The child sends back the report's text; this process checks
it (a string; for ``json``, one JSON object with no ``NaN`` or ``Infinity``) and prints nothing
else. A loss that exits (``os._exit`` included), is killed, hangs past the deadline or raises
anything is one :class:`~derive.DeriveError`; what it prints is captured, never mixed into the
report.

Examples
========

>>> run = trace_in_child_process("verify.gallery:kd_batchmean", order=2, format="text", timeout=120)
>>> run.text.splitlines()[0].startswith("traced verify.gallery:kd_batchmean with torch.fx")
True
"""

import json
from dataclasses import dataclass

from .._errors import DeriveError
from .._isolation import run_isolated
from .._json import dumps as _json_dumps
from .._targets import check_target
from ..calls import parse_call
from . import trace

__all__ = ["trace_in_child_process", "TracedReport", "DEFAULT_TRACE_TIMEOUT"]

#: Seconds ``derive trace`` may take by default (``--timeout``).
DEFAULT_TRACE_TIMEOUT = 300.0
FORMATS = ("text", "latex", "json")


@dataclass(frozen=True)
class TracedReport:
    """The report's ``text`` and what the loss printed (``printed``, captured, at most
    :data:`derive._isolation.MAX_PRINTED_BYTES` bytes) while it was traced."""

    text: str
    printed: str
    printed_lines: int


def render(target, *, order, format, call=None):
    """In the child: trace ``target`` (called as the expression ``call``, if given) and render
    the report (plain text out)."""
    result = trace(target, order=order, call=None if call is None else parse_call(call))
    if format == "json":
        return _json_dumps(result.to_json(), indent=1)
    return result.to_latex() if format == "latex" else result.to_text()


def _refuse_constant(name):
    raise ValueError(f"the JSON contains {name}")


def trace_in_child_process(
    target, *, order, format="text", timeout=DEFAULT_TRACE_TIMEOUT, call=None
):
    """The report of ``derive trace`` for ``target``, traced in its own process; ``call`` is a
    call expression (:func:`derive.calls.parse_call`), checked before the child starts."""
    check_target(target)
    if call is not None:
        parse_call(call)
    if format not in FORMATS:
        raise DeriveError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    run = run_isolated(
        render,
        target,
        order=order,
        format=format,
        call=call,
        timeout=timeout,
        error=DeriveError,
        what=f"the trace of {target}",
    )
    text = run.value
    if not isinstance(text, str):
        raise DeriveError(f"the trace of {target} sent back {type(text).__name__}, not a report")
    if format == "json":
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as error:
            raise DeriveError(f"the trace of {target} sent back invalid JSON: {error}") from None
        if not isinstance(value, dict):
            raise DeriveError(f"the trace of {target} sent back JSON that is not an object")
    return TracedReport(text=text, printed=run.printed, printed_lines=run.printed_lines)
