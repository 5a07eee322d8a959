r"""The reader behind :func:`derive.parse`: exactly the notation, never ``eval``.

:func:`read` translates text in the notation (``mean(z_i**2*v_i)/N`` and the like) node by node
from its :mod:`ast`; anything else raises :class:`~derive.DeriveError`. The names it knows are
the notation's symbols, ``E``, ``f1, f2, ...`` and whatever ``parameter(name)`` returns: the
caller gives the vocabulary of parameters, so this module needs nothing above the notation.
:func:`derive.parsing.parse` reads with the objectives' parameters, and so does
:func:`derive._numbers.check_symbol_name`, which the objectives' registry calls.

Examples
========

>>> from sympy import Symbol
>>> read("mean(z_i**2*v_i)/N - beta*z_i", parameter={"beta": Symbol("beta")}.get)
-beta*z_i + mean(v_i*z_i**2)/N
>>> read("mean(z_i**2*v_i)/N - beta*z_i", parameter={}.get)
Traceback (most recent call last):
...
derive._errors.DeriveError: parse: unknown name 'beta' at column 22
"""

import ast
import re
from collections.abc import Callable
from typing import Any

import sympy

from ._errors import DeriveError, check_argument
from .notation import (
    PER_CLASS,
    AmariAlpha,
    ClassMean,
    FDerivative,
    N,
    OtherMean,
    T,
    epsilon,
    f_derivative,
    sigma_v,
    sigma_z,
    v_g,
    z_g,
)

__all__ = ["read", "PARSE_MAX_LENGTH", "PARSE_MAX_BITS"]

#: Longest text :func:`derive.parse` reads.
PARSE_MAX_LENGTH = 100_000
#: Largest number (in bits of its numerator or denominator) a power in :func:`derive.parse`
#: computes; a power of a symbol stays symbolic, exact at any size (the engine bounds its
#: exponents).
PARSE_MAX_BITS = 100_000

_FUNCTIONS = {
    "mean": ClassMean,
    "mean_other": OtherMean,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "fd": FDerivative,
    "fd_alpha": AmariAlpha,
}
_CONSTANTS = {"E": sympy.E}


def _known_names():
    names = {
        "N": N,
        "T": T,
        "epsilon": epsilon,
        "z_g": z_g,
        "v_g": v_g,
        "sigma_z": sigma_z,
        "sigma_v": sigma_v,
    }
    names.update({symbol.name: symbol for symbol in PER_CLASS})
    return names


def read(text: str, parameter: Callable[[str], Any]) -> Any:
    """``text`` in the notation as a sympy expression; ``parameter(name)`` is the symbol of a
    parameter called ``name``, or ``None`` (asked only for a name the notation does not know).
    The rules and the messages are :func:`derive.parse`'s."""
    check_argument(isinstance(text, str), "parse needs a string, got {}", type(text).__name__)
    check_argument(text.strip() != "", "parse needs a nonempty string")
    check_argument(
        len(text) <= PARSE_MAX_LENGTH,
        "parse reads at most {} characters, got {}",
        PARSE_MAX_LENGTH,
        len(text),
    )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise DeriveError(
            f"parse: not an expression in the notation ({type(error).__name__})"
        ) from None

    def lookup(name):
        if re.fullmatch(r"f[1-9][0-9]{0,2}", name):
            return f_derivative(int(name[1:]))
        return parameter(name)

    try:
        return _translate(tree.body, _known_names(), lookup)
    except RecursionError:
        raise DeriveError("parse: expression nested too deeply") from None


def _where(node):
    return f"at column {getattr(node, 'col_offset', 0) + 1}"


_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _translate(node, names, parameter):
    if isinstance(node, ast.BinOp):
        left, right = (
            _translate(node.left, names, parameter),
            _translate(node.right, names, parameter),
        )
        if isinstance(node.op, ast.Pow):
            check_argument(
                right.is_Rational and abs(right) <= 10_000,
                "parse: exponents must be rational numbers of size <= 10000, got {} {}",
                right,
                _where(node),
            )
            if left.is_Rational and left != 0:
                size = max(abs(left.p), left.q).bit_length() * abs(right)
                check_argument(
                    size <= PARSE_MAX_BITS,
                    "parse: a power of a number may have at most {} bits (PARSE_MAX_BITS), "
                    "got about {} {}",
                    PARSE_MAX_BITS,
                    int(size),
                    _where(node),
                )
            return left**right
        operation = _BINARY.get(type(node.op))
        check_argument(
            operation is not None,
            "parse: operator {} is not allowed {}; allowed: + - * / **",
            type(node.op).__name__,
            _where(node),
        )
        return operation(left, right)
    if isinstance(node, ast.UnaryOp):
        check_argument(
            isinstance(node.op, (ast.UAdd, ast.USub)),
            "parse: operator {} is not allowed {}",
            type(node.op).__name__,
            _where(node),
        )
        value = _translate(node.operand, names, parameter)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant):
        check_argument(
            isinstance(node.value, int)
            and not isinstance(node.value, bool)
            and len(str(node.value)) <= 1000,
            "parse: only integer literals are allowed (write 1/2, not 0.5), got {!r} {}",
            node.value,
            _where(node),
        )
        return sympy.Integer(node.value)
    if isinstance(node, ast.Name):
        symbol = names.get(node.id) or _CONSTANTS.get(node.id) or parameter(node.id)
        check_argument(symbol is not None, "parse: unknown name {!r} {}", node.id, _where(node))
        return symbol
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        check_argument(
            name in _FUNCTIONS,
            "parse: unknown function {!r} {}; allowed: {}",
            name or ast.unparse(node.func)[:40],
            _where(node),
            ", ".join(_FUNCTIONS),
        )
        check_argument(
            not node.keywords, "parse: keyword arguments are not allowed {}", _where(node)
        )
        arguments = [_translate(arg, names, parameter) for arg in node.args]
        expected = {"fd": 2, "fd_alpha": 3}.get(name, 1)
        check_argument(
            len(arguments) == expected,
            "parse: {} takes {} argument(s), got {} {}",
            name,
            expected,
            len(arguments),
            _where(node),
        )
        return _FUNCTIONS[name](*arguments)
    raise DeriveError(f"parse: {type(node).__name__} is not part of the notation {_where(node)}")
