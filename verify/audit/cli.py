r"""``python -m verify audit MODULE:FUNCTION [options]`` (and ``python -m verify.audit``).

Every option is parsed as text and checked, with its documented maximum, before the target is
imported: a bad value is one line on stderr naming it and what is allowed, exit code 2, no
traceback. Exit codes: 0 consistent, 1 inconsistent, 2 bad input or a loss that cannot be
audited (it raises, exits, times out, or returns something other than a finite scalar). With
``--json`` stdout is exactly one JSON object; whatever the loss prints is captured. On a
terminal, progress is shown on stderr and erased.

Examples
========

>>> parser = add_arguments(argparse.ArgumentParser())
>>> options(parser.parse_args(["m:f", "--shape", "4,8,10", "--mask"]))["sequence_length"]
8
>>> options(parser.parse_args(["m:f", "--classes", "1e3"]))
Traceback (most recent call last):
...
verify._errors.VerifyError: --classes must be an integer in [2, 65536], got '1e3'
"""

import argparse
import math
import re
import sys

from derive import DeriveError
from derive._json import dumps as _json_dumps
from derive._numbers import parse_positive, parse_rational
from derive.calls import parse_call

from .._errors import VerifyError, check_argument
from ..devices import DEVICES, DTYPES
from .core import DEFAULT_BATCH_SIZE, DEFAULT_CLASSES, DEFAULT_TIMEOUT, LIMITS, audit, check_options
from .expectation import parse_expectation
from .result import one_line

__all__ = ["add_arguments", "run", "main", "options"]


def add_arguments(parser):
    """Add the audit's arguments to an :class:`argparse.ArgumentParser` (or a subparser)."""
    parser.add_argument(
        "target",
        help="the loss to audit, as MODULE:FUNCTION; it is called as "
        "FUNCTION(student_logits, teacher_logits, T[, target][, mask=mask]) -> "
        "scalar tensor",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--classes",
        default=None,
        help=f"number of classes N, 2..{LIMITS['classes']} (default {DEFAULT_CLASSES})",
    )
    parser.add_argument(
        "--batch-size",
        default=None,
        help=f"batch size B, 2..{LIMITS['batch_size']} (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--shape",
        default=None,
        metavar="B,N|B,L,N",
        help="the logits' shape instead of --batch-size/--classes; B,L,N audits "
        f"token sequences (L 1..{LIMITS['sequence_length']}); at most "
        f"{LIMITS['elements']} elements",
    )
    parser.add_argument(
        "--mask",
        nargs="?",
        const=True,
        default=False,
        metavar="labels",
        help="pad the sequences at random; the loss gets mask=[B, L] (True for "
        "real tokens) if it takes a mask argument; --mask labels passes Hugging Face labels "
        "instead (class indices, -100 at padded positions)",
    )
    parser.add_argument(
        "--call",
        default=None,
        metavar="EXPR",
        help="how to call the loss: a call expression over fn, student, teacher, T, target, "
        "mask and literals, never evaluated as Python, e.g. "
        "'fn(student, teacher, beta=0.5, temperature=T)' (default: recognised from the "
        "signature)",
    )
    parser.add_argument(
        "--power",
        default="0",
        help="the declared power of T multiplying the objective (default 0; -2 for a loss "
        "without the T**2 factor)",
    )
    parser.add_argument(
        "--seed", default="0", help="seed of the random logits, 0..4294967295 (default 0)"
    )
    parser.add_argument(
        "--device", default="cpu", help="one of " + ", ".join(DEVICES) + " (default cpu)"
    )
    parser.add_argument(
        "--dtype", default="float64", help="one of " + ", ".join(DTYPES) + " (default float64)"
    )
    parser.add_argument(
        "--expect",
        default=None,
        metavar="NAME[:k=v,...]",
        help="the objective the loss is meant to be (default kl, Hinton's KD)",
    )
    parser.add_argument(
        "--weight", default="1", help="its weight in the loss, a number > 0 (default 1)"
    )
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="do not trace the loss symbolically (derive trace) beside the numeric audit",
    )
    parser.add_argument(
        "--timeout",
        default=f"{DEFAULT_TIMEOUT:g}",
        help=f"seconds the audit may take, in (0, {LIMITS['timeout']:g}] "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    return parser


def options(arguments):
    """The keyword arguments of :func:`~verify.audit.audit` from parsed ``arguments``, every one
    checked (:class:`~verify.VerifyError` otherwise)."""
    sizes = {}
    if arguments.shape is not None:
        check_argument(
            arguments.classes is None and arguments.batch_size is None,
            "give either --shape or --classes/--batch-size, not both",
        )
        parts = str(arguments.shape).split(",")
        check_argument(
            len(parts) in (2, 3) and all(_digits(p) for p in parts),
            "--shape must be B,N or B,L,N (integers), got {!r}",
            arguments.shape,
        )
        values = [int(p) for p in parts]
        sizes["batch_size"] = _bounded(parts[0], "--shape's B", 2, LIMITS["batch_size"])
        sizes["classes"] = _bounded(parts[-1], "--shape's N", 2, LIMITS["classes"])
        if len(values) == 3:
            sizes["sequence_length"] = _bounded(
                parts[1], "--shape's L", 1, LIMITS["sequence_length"]
            )
    else:
        sizes["classes"] = _bounded(
            arguments.classes, "--classes", 2, LIMITS["classes"], default=DEFAULT_CLASSES
        )
        sizes["batch_size"] = _bounded(
            arguments.batch_size,
            "--batch-size",
            2,
            LIMITS["batch_size"],
            default=DEFAULT_BATCH_SIZE,
        )
    mask = getattr(arguments, "mask", False)
    check_argument(
        mask in (True, False, "labels"),
        "--mask takes nothing or 'labels', got {!r}",
        mask,
    )
    call = getattr(arguments, "call", None)
    if call is not None:
        try:
            parse_call(call)  # refused here, before the target is imported
        except DeriveError as error:
            raise VerifyError(str(error)) from None
    result = dict(
        sizes,
        mask=bool(mask),
        seed=_bounded(arguments.seed, "--seed", 0, LIMITS["seed"] - 1),
        device=arguments.device,
        dtype=arguments.dtype,
        expect=arguments.expect,
        weight=_number(arguments.weight, "--weight", upper=math.inf),
        timeout=_number(arguments.timeout, "--timeout", upper=LIMITS["timeout"]),
        symbolic=not getattr(arguments, "no_trace", False),
    )
    check_argument(
        not result["mask"] or "sequence_length" in result,
        "--mask needs token sequences: give --shape B,L,N",
    )
    check_argument(
        isinstance(result["expect"], (str, type(None)))
        and (result["expect"] is None or result["expect"].strip() != ""),
        "--expect must be NAME[:k=v,...], got {!r}",
        result["expect"],
    )
    check_options(**{k: v for k, v in result.items() if k not in ("expect", "weight", "symbolic")})
    parse_expectation(result["expect"], result["weight"])
    if mask == "labels":
        result["mask"] = "labels"
    if call is not None:
        result["call"] = call
    power = getattr(arguments, "power", "0")
    if power not in ("0", 0, None):
        result["power"] = _power(power)
    return result


def _digits(text):
    """Plain decimal digits (no '1_0', no '1e3'); any length up to 100, checked by bounds."""
    return re.fullmatch(r"\s*[+-]?[0-9]{1,100}\s*", str(text)) is not None


def _bounded(text, name, low, high, default=None):
    if text is None and default is not None:
        return default
    value = int(text) if text is not None and _digits(text) else None
    check_argument(
        value is not None and low <= value <= high,
        "{} must be an integer in [{}, {}], got {!r}",
        name,
        low,
        high,
        text,
    )
    return value


def _number(text, name, *, upper):
    """A finite number in ``(0, upper]``, through the one parser
    (:func:`derive._numbers.parse_positive`)."""
    return parse_positive(str(text), what=name, error=VerifyError, upper=upper)


def _power(text):
    try:
        value = float(parse_rational(str(text), what="--power", error=VerifyError))
    except (VerifyError, OverflowError):
        value = None
    check_argument(
        value is not None and math.isfinite(value) and abs(value) <= 8,
        "--power must be a number in [-8, 8] (e.g. -2), got {!r}",
        text,
    )
    return value


class _Progress:
    """Progress on stderr when it is a terminal: one line, rewritten, erased at the end."""

    def __init__(self, stream):
        self.stream, self.shown = stream, False

    def __call__(self, message):
        self.stream.write(f"\r\033[Kverify audit: {message} ...")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run(arguments):
    """Run the audit for parsed ``arguments``; print the result; return the exit code."""
    stream = sys.stderr
    progress = _Progress(stream) if _is_terminal(stream) else None
    try:
        keywords = options(arguments)
        # The loss is imported and called in its own process only (verify.audit.isolated).
        result = audit(str(arguments.target), progress=progress, **keywords)
    except VerifyError as error:
        if progress is not None:
            progress.close()
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    if progress is not None:
        progress.close()
    print(_json_dumps(result.to_json(), indent=2) if arguments.json else _text(result))
    report = result.symbolic.bug_report if result.symbolic is not None else None
    if report is not None and arguments.json:
        # The text report has it; with --json stdout is JSON only, and the line goes to stderr.
        print(f"verify audit: {report}", file=sys.stderr)
    # The exit code is the numeric verdict's, whatever the trace says (docs/audit.md).
    return 0 if result.consistent else 1


def _text(result):
    """The text report, with a note when the loss printed (captured, never shown)."""
    text = result.to_text()
    lines = result.printed_lines
    if lines:
        text += (
            f"\n  note: the loss printed {lines} line{'s' if lines != 1 else ''} while audited "
            f"(captured in its own process, not shown)"
        )
    return text


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message):
        usage = " ".join(self.format_usage().split()[1:])
        self.exit(2, f"error: {message} (usage: {usage})\n")


def main(argv=None):
    """``python -m verify.audit MODULE:FUNCTION [--json] ...``"""
    parser = add_arguments(
        _OneLineParser(
            prog="python -m verify.audit",
            description="Audit a distillation loss against the high-temperature theory.",
        )
    )
    return run(parser.parse_args(argv))
