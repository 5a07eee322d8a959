"""``python -m verify``: the command line, one subcommand per job.

``python -m verify check [--device auto|cpu|cuda] [--dtype float64|float32] [--examples N]
[--seed S] [--json] [--thorough]`` runs the numeric check of every statement in
:data:`derive.STATEMENTS` and prints a table (statement, expected, verdict, worst error,
tolerance, examples, device), then the counterexamples and findings; ``--json`` prints
``{"device", "dtype", "seed", "results": [{"id", "expected", "verdict", "examples",
"worst_error", "tolerance", "counterexample"}, ...]}`` instead. The exit code is 0 iff every
verdict equals its expectation, else 1. The same seed gives the same output.

Bad input exits with code 2 and one line on stderr that names the bad value and what is
allowed, without a traceback, whether argparse or the library finds it.

Subcommands register in :data:`SUBCOMMANDS` (name -> ``(help, add_arguments, run)``);
``run(arguments)`` returns the exit code: ``check``, ``audit`` and ``figures``.

Examples
========

>>> main(["check", "--examples", "0"])
2
"""

import argparse
import os
import re
import sys

import torch

from derive import DeriveError
from derive._json import dumps as _json_dumps

from . import audit, regime, registry
from ._errors import MAX_EXAMPLES, MAX_SEED, VerifyError
from .atlas import command as optimizer_command
from .devices import DEVICES, DTYPES, dtype_name, resolve_device, resolve_dtype
from .figures import write_figures
from .monitor import report as monitor_report

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

_PROG = "python -m verify"


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _integer(minimum, maximum):
    """An argparse type: plain decimal digits in ``minimum..maximum`` (no '1_0', no '1e3')."""

    def parse(text):
        value = int(text) if re.fullmatch(r"[+-]?[0-9]{1,30}", text.strip()) else None
        if value is None or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be an integer in {minimum}..{maximum}, got {text!r}"
            )
        return value

    return parse


_examples = _integer(1, MAX_EXAMPLES)
_seed = _integer(0, MAX_SEED)


# -- check -------------------------------------------------------------------------------------


def _add_check_arguments(parser):
    parser.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="where to run: auto (CUDA if present), cpu or cuda (default auto)",
    )
    parser.add_argument(
        "--dtype",
        default="float64",
        choices=tuple(DTYPES),
        help="floating point type (default float64)",
    )
    parser.add_argument(
        "--examples",
        type=_examples,
        default=None,
        metavar="N",
        help=f"random cases per check, at most {MAX_EXAMPLES} (default: each check's own)",
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, metavar="S", help="seed of every random draw (default 0)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--thorough",
        action="store_true",
        help="16x the examples and a 16x longer counterexample search (sized for a GPU)",
    )


def _format_number(value):
    return "-" if value != value or value in (float("inf"),) else f"{value:.2e}"


def _table(rows, headers):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def _report(results, device, dtype, seed):
    headers = ("statement", "expected", "verdict", "worst error", "tolerance", "examples", "device")
    rows = [
        (
            r.id,
            r.expected,
            _verdict_cell(r),
            _format_number(r.worst_error),
            _format_number(r.tolerance),
            r.examples,
            r.device,
        )
        for r in results
    ]
    failed = [r.id for r in results if not r.as_expected]
    lines = [
        f"verify check: dtype {dtype_name(dtype)}, device {device}, seed {seed}",
        "",
        _table(rows, headers),
        "",
    ]
    partial = [r for r in results if not r.resolved]
    if partial:
        lines.append("Sub-claims round-off left untested (* in the table):")
        lines += [f"  {r.id}: {'; '.join(r.unresolved)}" for r in partial]
        lines.append("")
    counterexamples = [r for r in results if r.counterexample]
    if counterexamples:
        lines.append("Counterexamples (hypothesis-shrunk):")
        lines += [f"  {r.id}: {r.counterexample}" for r in counterexamples]
        lines.append("")
    findings = [r for r in results if r.notes]
    if findings:
        lines.append("Findings:")
        for r in findings:
            lines.append(f"  {r.id}:")
            lines += [f"    {note}" for note in r.notes]
        lines.append("")
    lines.append(
        f"{len(results) - len(failed)} of {len(results)} verdicts as expected"
        + (f"; unexpected: {', '.join(failed)}" if failed else "")
    )
    return "\n".join(lines)


def _verdict_cell(result):
    """The verdict, ``*`` when some sub-claims were not tested, ``(!)`` when unexpected."""
    cell = result.verdict + ("*" if not result.resolved else "")
    return cell if result.as_expected else f"{cell} (!)"


def _progress(total):
    """A progress line on stderr when it is a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None
    done = []

    def report(result):
        done.append(result)
        print(
            f"\r{len(done)}/{total} checked ({result.id})\033[K",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if len(done) == total:
            print("\r\033[K", end="", file=sys.stderr, flush=True)

    return report


def _run_check(arguments):
    device = resolve_device(arguments.device)
    dtype = resolve_dtype(arguments.dtype)
    results = registry.run_checks(
        device=device,
        dtype=dtype,
        examples=arguments.examples,
        seed=arguments.seed,
        thorough=arguments.thorough,
        on_result=_progress(len(registry.statements())),
    )
    if arguments.json:
        print(
            _json_dumps(
                {
                    "device": str(device),
                    "dtype": dtype_name(dtype),
                    "seed": arguments.seed,
                    "results": [r.to_json() for r in results],
                },
                indent=2,
            )
        )
    else:
        print(_report(results, device, dtype, arguments.seed))
    return 0 if all(r.as_expected for r in results) else 1


def _add_audit_arguments(parser):
    audit.add_arguments(parser)


def _run_audit(arguments):
    return audit.run(arguments)


def _add_figures_arguments(parser):
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory for the PNG files (created if missing)",
    )
    parser.add_argument("--seed", type=_seed, default=0, help=f"seed in 0..{MAX_SEED} (default 0)")


def _run_figures(arguments):
    for path in write_figures(arguments.out, seed=arguments.seed):
        print(f"wrote {path}")
    return 0


def _add_regime_arguments(parser):
    regime.add_arguments(parser)


def _run_regime(arguments):
    return regime.run(arguments)


def _add_monitor_report_arguments(parser):
    monitor_report.add_arguments(parser)


def _run_monitor_report(arguments):
    return monitor_report.run(arguments)


def _add_optimizer_arguments(parser):
    optimizer_command.add_arguments(parser)


def _run_optimizer(arguments):
    return optimizer_command.run(arguments)


#: Subcommands: name -> (help, add_arguments(parser), run(arguments) -> exit code).
SUBCOMMANDS = {
    "check": (
        "check every statement of the registry (docs/theory.md) numerically",
        _add_check_arguments,
        _run_check,
    ),
    "audit": (
        "identify a distillation loss MODULE:FUNCTION and check it against its declared objective",
        _add_audit_arguments,
        _run_audit,
    ),
    "figures": (
        "write the figures of notebooks 03 and 04 as PNG",
        _add_figures_arguments,
        _run_figures,
    ),
    "regime": (
        "how far KD's gradient is from logits matching at each T, for your logits",
        _add_regime_arguments,
        _run_regime,
    ),
    "monitor-report": (
        "when and why the premise of logits matching broke in a KDMonitor log",
        _add_monitor_report_arguments,
        _run_monitor_report,
    ),
    "optimizer": (
        "does your optimizer MODULE:FACTORY keep the head's class means (KD = logits matching)?",
        _add_optimizer_arguments,
        _run_optimizer,
    ),
}


def build_parser():
    """The argument parser, one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = _ArgumentParser(
        prog=_PROG,
        description="Numeric verification of the theory of "
        "knowledge distillation at high temperature.",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser
    )
    subparsers.required = True
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def _threads_for_this_machine():
    """torch's pool sized to the CPUs this process may use: torch counts the machine's cores,
    which in a container can be many more than it is allowed to run on."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    if torch.get_num_threads() > available:
        torch.set_num_threads(available)


def main(argv=None):
    """Run the command line; returns the exit code (usage errors exit through argparse)."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code
    _threads_for_this_machine()
    try:
        return arguments.run(arguments)
    except (VerifyError, DeriveError) as error:
        print(
            f"{_PROG} {arguments.command}: error: {' '.join(str(error).split())}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print(f"{_PROG} {arguments.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output to a closed pipe (| head): end quietly; point stdout at devnull for the
        # interpreter's final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
