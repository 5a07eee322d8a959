r"""Reading back the LaTeX that :mod:`derive` prints: the check that printing never changes the
mathematics.

:func:`parse_latex` reads the LaTeX of :func:`derive.term_latex`, :func:`derive.expression_latex`
and ``sympy.latex`` of the notation (class means ``\left\langle f \right\rangle`` with the
index dropped inside, ``\left\langle f \right\rangle_{\neg g}``, ``\frac``, powers, ``e^{x}``,
``\log``, ``\sqrt``, the notation's symbols and the objectives' parameters) into a sympy
expression. It is a recursive-descent parser of that subset, not a general LaTeX reader;
anything else raises :class:`~derive.DeriveError`.

Examples
========

>>> from derive import expand, parse_latex
>>> term = expand("gradient", order=2).terms[1]
>>> import sympy
>>> sympy.expand(parse_latex(term.latex) - term.expr)
0
>>> parse_latex(r"\frac{1}{N} \left(z_{i} - \left\langle z \right\rangle\right)")
(z_i - mean(z_i))/N
"""

import re
from typing import Any

import sympy

from ._errors import DeriveError, check_argument
from .notation import (
    BARE_SYMBOLS,
    PER_CLASS,
    AmariAlpha,
    ClassMean,
    FDerivative,
    N,
    OtherMean,
    T,
    dampening,
    epsilon,
    f_derivative,
    hidden,
    learning_rate,
    momentum,
    sigma_v,
    sigma_z,
    teacher_hidden,
    v_g,
    v_i,
    vh_i,
    weight_decay,
    z_g,
    z_i,
    zh_i,
)
from .objectives import parameter_symbols

__all__ = ["parse_latex"]

_TOKEN = re.compile(r"\\[A-Za-z]+|\\[,;!: ]|[0-9]+(?:\.[0-9]+)?|[A-Za-z]|[{}()\[\]^_+\-*/=|]|\S")
_SPACES = {r"\,", r"\;", r"\!", r"\:", r"\ ", r"\quad", r"\qquad", r"\displaystyle", r"\textstyle"}
_GREEK = {
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "eta",
    "lambda",
    "mu",
    "tau",
    "sigma",
    "rho",
    "kappa",
    "theta",
    "xi",
    "nu",
}


class _Parser:
    def __init__(self, text):
        self.tokens = [t for t in _TOKEN.findall(text) if t not in _SPACES]
        self.position = 0
        self.inside_mean = 0

    # -- tokens -----------------------------------------------------------------------------
    def peek(self, offset=0):
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, expected=None):
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise DeriveError(
                f"parse_latex: expected {expected or 'more input'}, got "
                f"{token!r} at token {self.position + 1}"
            )
        self.position += 1
        return token

    def accept(self, token):
        if self.peek() == token:
            self.position += 1
            return True
        return False

    # -- grammar ------------------------------------------------------------------------------
    def expression(self, stop=()):
        terms = []
        sign = 1
        if self.peek() in ("+", "-"):
            sign = -1 if self.take() == "-" else 1
        terms.append(sign * self.product(stop))
        while self.peek() in ("+", "-"):
            sign = -1 if self.take() == "-" else 1
            terms.append(sign * self.product(stop))
        return sympy.Add(*terms)

    def product(self, stop):
        factors = [self.power()]
        while (
            self.peek() is not None
            and self.peek() not in ("+", "-", "}", ")", "]")
            and self.peek() not in stop
            and not self._closing()
        ):
            if self.accept(r"\cdot") or self.accept("*"):
                continue
            factors.append(self.power())
        return sympy.Mul(*factors)

    def _closing(self):
        return self.peek() == r"\right"

    def power(self):
        base = self.atom()
        while self.peek() == "^":
            self.take("^")
            exponent = self.group_or_atom()
            base = base**exponent
        return base

    def group(self):
        self.take("{")
        value = self.expression(stop=("}",))
        self.take("}")
        return value

    def group_or_atom(self):
        if self.peek() == "{":
            return self.group()
        token = self.take()
        if token.isdigit():
            return sympy.Integer(token)
        return self._symbol(token)

    def atom(self):
        token = self.peek()
        if token is None:
            raise DeriveError("parse_latex: unexpected end of input")
        if re.fullmatch(r"[0-9]+", token):
            self.take()
            return sympy.Integer(token)
        if token == "{":
            return self.group()
        if token == "(":
            self.take("(")
            value = self.expression(stop=(")",))
            self.take(")")
            return value
        if token == r"\left":
            return self.left()
        if token == r"\frac":
            self.take()
            numerator = self.group()
            denominator = self.group()
            return numerator / denominator
        if token == r"\sqrt":
            self.take()
            index = 2
            if self.accept("["):
                index = self.expression(stop=("]",))
                self.take("]")
            return self.group() ** (sympy.Integer(1) / index)
        if token == r"\log" or token == r"\ln":
            self.take()
            if self.peek() == "{":
                return sympy.log(self.group())
            return sympy.log(self.power())
        if token == "e" and self.peek(1) == "^":
            self.take()
            self.take("^")
            return sympy.exp(self.group_or_atom())
        if token == "f" and self._calls_generator():
            return self.generator()
        if token == r"\hat":
            self.take()
            self.take("{")
            letter = self.take()
            self.take("}")
            name = {"z": "zh", "v": "vh"}[letter] if letter in "zv" else None
            check_argument(
                name is not None, "parse_latex: \\hat{{{}}} is not in the notation", letter
            )
            if self.accept("_"):
                self._subscript()
                return {"zh": zh_i, "vh": vh_i}[name]
            return self._bare(r"\hat{%s}" % letter)
        return self._symbol(self.take())

    def left(self):
        self.take(r"\left")
        opening = self.take()
        if opening == r"\langle":
            self.inside_mean += 1
            argument = self.expression(stop=(r"\right",))
            self.inside_mean -= 1
            self.take(r"\right")
            self.take(r"\rangle")
            if self.peek() == "_" and self.peek(1) == "{" and self.peek(2) == r"\neg":
                self.take("_")
                self.take("{")
                self.take(r"\neg")
                self.take("g")
                self.take("}")
                return OtherMean(argument)
            return ClassMean(argument)
        check_argument(opening in ("(", "["), "parse_latex: \\left{} is not supported", opening)
        closing = ")" if opening == "(" else "]"
        value = self.expression(stop=(r"\right",))
        self.take(r"\right")
        self.take(closing)
        return value

    def _calls_generator(self):
        """``f`` followed (after an optional subscript and derivative order) by an argument."""
        offset = 1
        for marker in ("_", "^"):
            if self.peek(offset) == marker:
                offset += 1
                if self.peek(offset) == "{":
                    depth = 0
                    while self.peek(offset) is not None:
                        depth += {"{": 1, "}": -1}.get(self.peek(offset), 0)
                        offset += 1
                        if depth == 0:
                            break
                else:
                    offset += 1
        return self.peek(offset) == r"\left"

    def generator(self):
        """``f\\left(t\\right)``, ``f^{(n)}\\left(t\\right)``, ``f_{\\alpha}...``."""
        self.take("f")
        parameters = []
        order = 0
        if self.accept("_"):
            parameters.append(self.group_or_atom())
        if self.accept("^"):
            self.take("{")
            self.take("(")
            order = int(self.take())
            self.take(")")
            self.take("}")
        argument = self.left()
        if parameters:
            return AmariAlpha(order, argument, *parameters)
        return FDerivative(order, argument)

    def _subscript(self):
        if self.accept("{"):
            parts = []
            while self.peek() != "}":
                parts.append(self.take())
            self.take("}")
            return "".join(p.lstrip("\\") for p in parts)
        return self.take().lstrip("\\")

    def _symbol(self, token):
        if token.startswith("\\") and token[1:] in _GREEK:
            name = token[1:]
        elif re.fullmatch(r"[A-Za-z]", token):
            name = token
        else:
            raise DeriveError(f"parse_latex: {token!r} is not part of the notation")
        if self.peek() == "_":
            self.take("_")
            name = f"{name}_{self._subscript()}"
        elif self.inside_mean and name in ("z", "v"):
            return self._bare(name)
        return self._named(name)

    def _bare(self, name):
        check_argument(
            self.inside_mean > 0, "parse_latex: {} without an index outside a mean", name
        )
        return BARE_SYMBOLS[name]

    def _named(self, name):
        known = {
            "N": N,
            "T": T,
            "epsilon": epsilon,
            "z_g": z_g,
            "v_g": v_g,
            "z_i": z_i,
            "v_i": v_i,
            "sigma_z": sigma_z,
            "sigma_v": sigma_v,
        }
        known.update({s.name: s for s in PER_CLASS})
        if name in known:
            return known[name]
        match = re.fullmatch(r"f_([0-9]+)", name)
        if match:
            return f_derivative(int(match.group(1)))
        parameters = parameter_symbols()
        candidate = name.replace("_", "") if name not in parameters else name
        for key in (name, candidate, name.replace("_{", "_").replace("}", "")):
            if key in parameters:
                return parameters[key]
        proof_symbols = {
            s.name: s
            for s in (learning_rate, momentum, dampening, weight_decay, hidden, teacher_hidden)
        }
        if name in proof_symbols:
            return proof_symbols[name]
        raise DeriveError(f"parse_latex: unknown symbol {name!r}")


#: The deepest nesting of braces and parentheses read (derive's own output nests far less; a
#: deeper text would exhaust Python's recursion).
MAX_LATEX_DEPTH = 100


def _nesting_depth(text):
    depth = deepest = 0
    for character in text:
        if character in "{(":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "})":
            depth -= 1
    return deepest


def parse_latex(text: str) -> Any:
    """A sympy expression from LaTeX printed by :mod:`derive` (see the module docstring).

    Text nested deeper than :data:`MAX_LATEX_DEPTH` braces or parentheses is refused.

    >>> parse_latex("\\frac{1}{" * 101 + "N" + "}" * 101)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: parse_latex: the text nests 101 braces or parentheses ...
    """
    check_argument(isinstance(text, str) and text.strip(), "parse_latex needs a nonempty string")
    depth = _nesting_depth(text)
    check_argument(
        depth <= MAX_LATEX_DEPTH,
        "parse_latex: the text nests {} braces or parentheses deep; at most {}",
        depth,
        MAX_LATEX_DEPTH,
    )
    parser = _Parser(text)
    try:
        value = parser.expression()
    except RecursionError:
        raise DeriveError("parse_latex: the text is nested too deeply to read") from None
    check_argument(
        parser.peek() is None,
        "parse_latex: unexpected {!r} at token {}",
        parser.peek(),
        parser.position + 1,
    )
    return value
