"""``python -m derive``: expand, list objectives, prove and report from the command line.

Bad input ends with one line on stderr naming the bad value and what is allowed, and exit
code 2; never a traceback, never a half-written file. Sizes are checked before any work
(:data:`derive.limits`). Output to a closed pipe (``| head``) ends quietly.
"""

import argparse
import os
import re
import sys

from ._errors import MAX_CLASSES, MAX_ORDER, MAX_PROOF_ORDER, DeriveError
from ._json import dumps as _json_dumps
from ._progress import TerminalProgress
from .bounds import certified_bounds, check_bound_size, load_logits
from .calls import parse_call
from .expansion import QUANTITIES, expand, leading_pieces
from .lowtemp import limit
from .notation import readable
from .objectives import FAMILIES, OBJECTIVES
from .report import check_output_path, write_report
from .statements import STATEMENTS
from .tracing import DEFAULT_ORDER, MAX_TRACE_ORDER  # torch-free until a trace runs
from .tracing.isolated import trace_in_child_process

__all__ = ["main", "SUBCOMMANDS"]

FORMATS = ("text", "latex", "json")


def _integer(minimum, what, maximum=None):
    def parse(text):
        value = int(text) if re.fullmatch(r"[+-]?[0-9]{1,18}", text.strip()) else None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bounds} ({what}), got {text!r}")
        return value

    return parse


def _parameter(text):
    key, separator, value = text.partition("=")
    if (
        not separator
        or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip())
        or not value.strip()
    ):
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE (e.g. beta=3/10), got {text!r}")
    return key.strip(), value.strip()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _add_expand(parser):
    parser.add_argument("--quantity", choices=QUANTITIES, required=True)
    parser.add_argument("--order", type=_integer(1, "number of terms"), required=True)
    parser.add_argument(
        "--classes", type=_integer(2, "number of classes; omit for symbolic N", MAX_CLASSES)
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument(
        "--objective",
        choices=tuple(OBJECTIVES),
        default="kl",
        metavar="NAME",
        help="one of: " + ", ".join(OBJECTIVES),
    )
    parser.add_argument(
        "--param",
        type=_parameter,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the objective: a rational (3/10) or a symbol name; repeat for several",
    )


def _add_objectives(parser):
    parser.add_argument("--json", action="store_true")


def _add_prove(parser):
    parser.add_argument("--order", type=_integer(1, "number of terms", MAX_PROOF_ORDER), default=4)
    parser.add_argument("--json", action="store_true")


def _add_report(parser):
    parser.add_argument("--order", type=_integer(1, "number of terms", MAX_PROOF_ORDER), default=4)
    parser.add_argument("--out", required=True, metavar="FILE.tex")


def _add_trace(parser):
    parser.add_argument(
        "target",
        metavar="MODULE:FUNCTION",
        help="a loss fn(student_logits, teacher_logits, T) written with PyTorch",
    )
    parser.add_argument(
        "--order", type=_integer(1, "number of terms", MAX_TRACE_ORDER), default=DEFAULT_ORDER
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="stop the trace (it runs in its own process) after this many seconds, in "
        "(0, 86400] (default 300)",
    )
    parser.add_argument(
        "--call",
        default=None,
        metavar="EXPR",
        help="how to call the loss: a call expression over fn, student, teacher, T and "
        "literals, never evaluated as Python, e.g. 'fn(student, teacher, beta=0.5, "
        "temperature=T)' (default: recognised from the signature)",
    )


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be a number of seconds in (0, 86400], got {text!r}")
    return value


def _run_trace(args):
    if args.call is not None:
        parse_call(args.call)  # refused here, before anything is imported
    report = trace_in_child_process(
        args.target, order=args.order, format=args.format, timeout=args.timeout, call=args.call
    )
    if report.printed_lines and args.format == "text":
        return report.text + f"\nnote: {_printed(report)}", 0
    return report.text, 0


def _printed(report):
    lines = report.printed_lines
    first = " ".join(report.printed.split())[:80]
    return (
        f"the loss printed {lines} line{'s' if lines != 1 else ''} while traced (captured, not "
        f'part of this report): "{first}"'
    )


def _expand_text(expansion):
    classes = "N (symbolic)" if expansion.classes is None else str(expansion.classes)
    definition = OBJECTIVES[expansion.objective]
    parameters = ", ".join(f"{name} = {value}" for name, value in expansion.parameters)
    lines = [
        f"{definition.title}: {expansion.quantity}, {expansion.order} term(s), classes = "
        f"{classes}" + (f", {parameters}" if parameters else "")
    ]
    if expansion.classes is None:
        lines.append(
            "notation: ⟨f⟩ = (1/N) sum_j f(z_j, v_j), the class mean; z_i, v_i = logits "
            "of class i"
            + (
                "; label g: z_g, v_g, ⟨f⟩_¬g = mean over the other classes"
                if definition.labelled
                else ""
            )
        )
    name = "L" if expansion.quantity == "loss" else "G"
    for term in expansion.terms:
        lines.append(f"T^-{term.power}: {name}_{term.power} =")
        text = term.readable
        if isinstance(text, list):
            lines += [f"    [{c}] {component}" for c, component in enumerate(text, start=1)]
        elif isinstance(text, dict):
            lines += [
                f"    [{'label g' if c == 'g' else 'other i'}] {component}"
                for c, component in text.items()
            ]
        else:
            lines.append(f"    {text}")
    if expansion.objective == "kl":
        lines.append(f"named pieces of {name}_0 (T -> infinity), in the notation above:")
        for piece, expr in leading_pieces(expansion.quantity).items():
            lines.append(f"    {piece}: {readable(expr)}")
    return "\n".join(lines)


def _expand_latex(expansion):
    name = "L_{%d}" if expansion.quantity == "loss" else "G_{%d}"
    lines = []
    for term in expansion.terms:
        latex = term.latex
        if isinstance(latex, list):
            lines += [f"{name % term.power}[{c}] = {text}" for c, text in enumerate(latex, start=1)]
        elif isinstance(latex, dict):
            lines += [f"{name % term.power}[{c}] = {text}" for c, text in latex.items()]
        else:
            lines.append(f"{name % term.power} = {latex}")
    return "\n".join(lines)


def _run_expand(args):
    expansion = expand(
        args.quantity,
        order=args.order,
        classes=args.classes,
        objective=args.objective,
        parameters=_parameters(args.param),
        progress=_progress(),
    )
    if args.format == "json":
        return _json_dumps(expansion.to_json(), indent=1), 0
    return (_expand_latex(expansion) if args.format == "latex" else _expand_text(expansion)), 0


def _parameters(pairs):
    values = {}
    for key, value in pairs:
        if key in values:
            raise DeriveError(f"--param {key} is given twice ({values[key]} and {value})")
        values[key] = value
    return values


def _progress():
    """A progress callback writing to stderr when it is a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None

    def report(message):
        print(f"\r{message}\033[K", end="", file=sys.stderr, flush=True)

    return report


def _run_objectives(args):
    if args.json:
        return _json_dumps({"objectives": [o.to_json() for o in OBJECTIVES.values()]}, indent=1), 0
    lines = []
    for family, title in FAMILIES.items():
        members = [o for o in OBJECTIVES.values() if o.family == family]
        if not members:
            continue
        lines.append(f"{title}:")
        for objective in members:
            lines.append(f"  {objective.name:<18} {objective.title}")
            for parameter in objective.parameters:
                default = "" if parameter.default is None else f"; default {parameter.default}"
                lines.append(
                    f"  {'':<18}   --param {parameter.name}=...: {parameter.allowed}{default}"
                )
    return "\n".join(lines), 0


def _run_prove(args):
    results = [s.prove(order=args.order) for s in STATEMENTS.values()]
    code = 0 if all(r.as_expected for r in results) else 1
    if args.json:
        return _json_dumps(
            {
                "order": args.order,
                "results": [
                    {
                        "id": r.statement_id,
                        "expected": r.expected,
                        "verdict": r.verdict,
                        "residuals": {k: str(v) for k, v in r.residuals.items()},
                    }
                    for r in results
                ],
            },
            indent=1,
        ), code
    return "\n".join(str(r) for r in results), code


def _run_report(args):
    check_output_path(args.out)
    path = write_report(args.out, order=args.order)
    return f"wrote {path}", 0


def _positive_number(what):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0 ({what}), got {text!r}")
        return value

    return parse


def _add_bound(parser):
    parser.add_argument(
        "--teacher", required=True, metavar="FILE.npy", help="teacher logits, a .npy array [B, N]"
    )
    parser.add_argument(
        "--student", required=True, metavar="FILE.npy", help="student logits, a .npy array [B, N]"
    )
    parser.add_argument(
        "--temperature", type=_positive_number("the temperature T"), required=True, metavar="T"
    )
    parser.add_argument(
        "--order", type=_integer(1, "number of terms kept", MAX_ORDER), required=True, metavar="K"
    )
    parser.add_argument("--json", action="store_true")


def _run_bound(args):
    teacher = load_logits(args.teacher, option="--teacher")
    student = load_logits(args.student, option="--student")
    if (len(student), len(student[0])) != (len(teacher), len(teacher[0])):
        raise DeriveError(
            f"--student and --teacher must have the same shape [B, N], got "
            f"[{len(student)}, {len(student[0])}] and [{len(teacher)}, "
            f"{len(teacher[0])}]"
        )
    check_bound_size(len(student), len(student[0]))
    progress = TerminalProgress("python -m derive bound")
    try:
        results = certified_bounds(
            student, teacher, args.temperature, args.order, progress=progress
        )
    finally:
        progress.close()
    if args.json:
        return _json_dumps(
            {
                "temperature": args.temperature,
                "order": args.order,
                "examples": [r.to_json() for r in results],
            },
            indent=1,
        ), 0

    def number(value):
        return "-" if value is None else f"{value:.3e}"

    lines = [
        f"certified remainders after {args.order} term(s) at T = {args.temperature:g}, "
        f"valid for every T' >= T (- : T <= R/pi, outside the proven radius)",
        f"{'example':>7}  {'R/pi':>10}  {'converges':>9}  {'|loss rem.| <=':>14}  "
        f"{'||grad rem.|| <=':>16}",
    ]
    for index, r in enumerate(results):
        lines.append(
            f"{index:>7}  {r.radius_temperature:>10.4g}  {str(r.converges):>9}  "
            f"{number(r.loss_remainder_bound):>14}  "
            f"{number(r.gradient_remainder_bound):>16}"
        )
    return "\n".join(lines), 0


def _add_limit(parser):
    parser.add_argument("--temperature", choices=("0", "inf"), required=True)
    parser.add_argument(
        "--objective",
        choices=tuple(OBJECTIVES),
        required=True,
        metavar="NAME",
        help="one of: " + ", ".join(OBJECTIVES),
    )
    parser.add_argument("--quantity", choices=QUANTITIES, default="loss")
    parser.add_argument(
        "--param", type=_parameter, action="append", default=[], metavar="KEY=VALUE"
    )
    parser.add_argument("--json", action="store_true")


def _run_limit(args):
    result = limit(
        args.objective,
        temperature=args.temperature,
        quantity=args.quantity,
        parameters=_parameters(args.param),
    )
    return (_json_dumps(result.to_json(), indent=1) if args.json else result.to_text()), 0


#: Subcommands: name -> (help, add_arguments(parser), run(args) -> (text, exit code)).
SUBCOMMANDS = {
    "expand": ("the expansion of an objective's loss or gradient in 1/T", _add_expand, _run_expand),
    "objectives": (
        "list every objective: name, title, parameters",
        _add_objectives,
        _run_objectives,
    ),
    "prove": ("run every symbolic proof; exit 1 if any is not as expected", _add_prove, _run_prove),
    "report": ("write the LaTeX derivation report", _add_report, _run_report),
    "trace": (
        "trace a PyTorch loss into the engine: its expansion in 1/T beside KD's, and its "
        "exact relation to the registry's objectives",
        _add_trace,
        _run_trace,
    ),
    "bound": (
        "certified bounds on the remainder after K terms, for your logits at T",
        _add_bound,
        _run_bound,
    ),
    "limit": (
        "an objective's limit at T -> 0 (max-plus) or T -> infinity (the T^0 term)",
        _add_limit,
        _run_limit,
    ),
}


def _parser():
    parser = _Parser(prog="python -m derive", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv=None):
    """Entry point; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:
        return stop.code
    try:
        text, code = args.run(args)
    except DeriveError as error:
        print(f"python -m derive: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m derive: interrupted", file=sys.stderr)
        return 130
    return _emit(text, code)


def _emit(text, code):
    """Print ``text``; a closed pipe (``| head``) ends quietly with the exit code."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that this is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return code
    return code
