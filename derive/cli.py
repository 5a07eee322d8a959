"""``python -m derive``: expand, prove and report from the command line.

Bad input ends with one line on stderr naming the bad value and what is allowed, and exit
code 2; never a traceback, never a half-written file.
"""

import argparse
import json
import re
import sys

from ._errors import DeriveError
from .expansion import QUANTITIES, expand, leading_pieces
from .notation import readable
from .objectives import OBJECTIVES
from .statements import STATEMENTS

__all__ = ["main"]

FORMATS = ("text", "latex", "json")


def _integer(minimum, what):
    def parse(text):
        value = int(text) if re.fullmatch(r"[+-]?[0-9]+", text.strip()) else None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum} ({what}), got {text!r}")
        return value
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser():
    parser = _Parser(prog="python -m derive", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ex = commands.add_parser("expand", help="the expansion of the loss or its gradient in 1/T")
    ex.add_argument("--quantity", choices=QUANTITIES, required=True)
    ex.add_argument("--order", type=_integer(1, "number of terms"), required=True)
    ex.add_argument("--classes", type=_integer(2, "number of classes; omit for symbolic N"))
    ex.add_argument("--format", choices=FORMATS, default="text")
    ex.add_argument("--objective", choices=tuple(OBJECTIVES), default="kl")

    pr = commands.add_parser("prove", help="run every symbolic proof; exit 1 if any is not as expected")
    pr.add_argument("--order", type=_integer(1, "number of terms"), default=4)
    pr.add_argument("--json", action="store_true")

    rp = commands.add_parser("report", help="write the LaTeX derivation report")
    rp.add_argument("--order", type=_integer(1, "number of terms"), default=4)
    rp.add_argument("--out", required=True, metavar="FILE.tex")
    return parser


def _expand_text(expansion):
    classes = "N (symbolic)" if expansion.classes is None else str(expansion.classes)
    lines = [f"{OBJECTIVES[expansion.objective].title}: {expansion.quantity}, "
             f"{expansion.order} term(s), classes = {classes}"]
    if expansion.classes is None:
        lines.append("notation: ⟨f⟩ = (1/N) sum_j f(z_j, v_j), the class mean; z_i, v_i = logits "
                     "of class i")
    name = "L" if expansion.quantity == "loss" else "G"
    for term in expansion.terms:
        lines.append(f"T^-{term.power}: {name}_{term.power} =")
        if isinstance(term.expr, tuple):
            lines += [f"    [{c}] {component}" for c, component in enumerate(term.expr, start=1)]
        else:
            lines.append(f"    {readable(term.expr) if expansion.classes is None else term.expr}")
    if expansion.objective == "kl":
        lines.append(f"named pieces of {name}_0 (T -> infinity), in the notation above:")
        for piece, expr in leading_pieces(expansion.quantity).items():
            lines.append(f"    {piece}: {readable(expr)}")
    return "\n".join(lines)


def _expand_latex(expansion):
    name = "L_{%d}" if expansion.quantity == "loss" else "G_{%d}"
    lines = []
    for term in expansion.terms:
        if isinstance(term.latex, list):
            lines += [f"{name % term.power}[{c}] = {text}" for c, text in enumerate(term.latex, start=1)]
        else:
            lines.append(f"{name % term.power} = {term.latex}")
    return "\n".join(lines)


def _run(args):
    if args.command == "expand":
        expansion = expand(args.quantity, order=args.order, classes=args.classes,
                           objective=args.objective)
        if args.format == "json":
            return json.dumps(expansion.to_json(), indent=1), 0
        return (_expand_latex(expansion) if args.format == "latex" else _expand_text(expansion)), 0
    if args.command == "prove":
        results = [s.prove(order=args.order) for s in STATEMENTS.values()]
        code = 0 if all(r.as_expected for r in results) else 1
        if args.json:
            return json.dumps({"order": args.order, "results": [
                {"id": r.statement_id, "expected": r.expected, "verdict": r.verdict,
                 "residuals": {k: str(v) for k, v in r.residuals.items()}} for r in results]},
                indent=1), code
        return "\n".join(str(r) for r in results), code
    from .report import write_report
    path = write_report(args.out, order=args.order)
    return f"wrote {path}", 0


def main(argv=None):
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        text, code = _run(args)
    except DeriveError as error:
        print(f"python -m derive: error: {error}", file=sys.stderr)
        return 2
    print(text)
    return code
