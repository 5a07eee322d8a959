"""The normal form in which proofs compare residuals with 0: :func:`canonical`.

It first asks the expansion engine (:class:`derive.series.Algebra`), whose normal form decides
most residuals fast, then falls back on sympy: means linearised, their arguments in one normal
form, logarithms of products split, then cancelled.

Examples
========

>>> from derive.notation import ClassMean, z_i, v_i
>>> canonical(ClassMean(z_i + v_i) - ClassMean(z_i) - ClassMean(v_i))
0
"""

from typing import Any

import sympy

from ._errors import DeriveError
from .notation import _Mean
from .series import Algebra

__all__ = ["canonical"]


def canonical(expr: Any) -> Any:
    """A normal form for residuals: means linearised, their arguments in one normal form,
    logarithms of products split, then cancelled. Equal expressions give equal results;
    a residual that is zero comes out as exactly ``0``."""

    def normal_mean(node):
        return node.func(sympy.factor(sympy.cancel(sympy.expand(node.args[0]))))

    expr = sympy.sympify(expr)
    if _engine_says_zero(expr):
        return sympy.Integer(0)
    expr = sympy.expand(expr)
    expr = expr.replace(lambda node: isinstance(node, _Mean), normal_mean)
    expr = sympy.expand_log(sympy.expand(expr), force=True)
    return sympy.cancel(sympy.expand(expr))


def _engine_says_zero(expr):
    """True if the expansion engine's normal form of ``expr`` is 0: a fast, sound test (its
    generators are treated as independent, so it can miss a zero, never invent one)."""
    try:
        return not Algebra().element(expr)
    except (DeriveError, RecursionError):
        return False
