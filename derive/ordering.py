r"""The pinned order in which terms are printed, and sympy's LaTeX printer in that order.

Generators rank as per-class symbols (``z_i`` before ``v_i``), the label's logits, class means
(moments by decreasing degree, ``z`` before ``v``; the means over the other classes after),
then the rest (:func:`generator_rank`). A term of a sum ranks by its highest-ranked generator
(:func:`term_rank`). :class:`derive.polynomial.Polynomial` prints its terms in this order, and
:class:`ReaderLatexPrinter` prints the terms of every sum in it, so a difference reads
:math:`z_i - v_i` and :math:`\langle z\rangle - \langle v\rangle`.

Printing never changes the mathematics: class means print their argument as it is, with the
dummy index dropped (:class:`derive.notation.ClassMean`).

Examples
========

>>> from derive.notation import ClassMean, z_i, v_i
>>> expression_latex(ClassMean((z_i - v_i) ** 2) / 2)
'\\frac{\\left\\langle \\left(z - v\\right)^{2} \\right\\rangle}{2}'
>>> sorted([v_i, ClassMean(z_i), z_i], key=term_rank)
[z_i, v_i, mean(z_i)]
"""

from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter

from .notation import BARE_SYMBOLS, PER_CLASS, SYMBOL_LATEX, OtherMean, _Mean, v_g, z_g

__all__ = ["generator_rank", "term_rank", "ReaderLatexPrinter", "expression_latex"]

_LABEL = (z_g, v_g)


def generator_rank(expr):
    """Sort key of a generator in the pinned order (see the module docstring)."""
    if expr.is_Symbol and expr.name in BARE_SYMBOLS and expr not in PER_CLASS:
        expr = BARE_SYMBOLS[expr.name]  # a per-class symbol printed inside a mean
    if expr in PER_CLASS:
        return (0, PER_CLASS.index(expr))
    if expr in _LABEL:
        return (1, _LABEL.index(expr))
    if isinstance(expr, _Mean):
        powers = expr.args[0].as_powers_dict()
        degrees = [int(powers.get(symbol, 0)) for symbol in PER_CLASS]
        simple = expr.args[0] == sympy.Mul(*[s**d for s, d in zip(PER_CLASS, degrees)])
        return (
            2,
            0 if simple else 1,
            isinstance(expr, OtherMean),
            -sum(degrees),
            [-d for d in degrees],
            sympy.default_sort_key(expr),
        )
    return (3, sympy.default_sort_key(expr))


def term_rank(term):
    """Sort key of one term of a sum: its highest-ranked generator (a per-class symbol, the
    label, a mean, a parameter), then sympy's own order; numbers last."""
    ranks = [generator_rank(atom) for atom in _generators(term)]
    return (0, min(ranks)) if ranks else (1,)


def _generators(term):
    found = []

    def walk(node):
        if isinstance(node, _Mean) or node.is_Symbol:
            found.append(node)
            return
        for arg in node.args:
            walk(arg)

    walk(term)
    return found


class ReaderLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with sums in the pinned generator order (``z_i - v_i``) and the
    notation's symbol names (``\\hat{z}_{i}``, ``\\sigma_{z}``)."""

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings.setdefault("symbol_names", SYMBOL_LATEX)
        super().__init__(settings)

    def _as_ordered_terms(self, expr, order=None):
        terms = list(sympy.Add.make_args(expr))
        default = {term: k for k, term in enumerate(super()._as_ordered_terms(expr, order=order))}
        return sorted(terms, key=lambda term: (term_rank(term), default.get(term, 0)))


def expression_latex(expr: Any) -> str:
    """LaTeX of any expression of the notation, sums in the pinned order."""
    return ReaderLatexPrinter().doprint(sympy.sympify(expr))
