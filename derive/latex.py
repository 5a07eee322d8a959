r"""LaTeX for derived terms and for any expression of the notation, with a pinned,
reader-friendly order.

* :func:`term_latex` prints a term (a polynomial in ``z_i, v_i``, ``1/N``, class moments and
  parameters) in the pinned order of :mod:`derive.polynomial`: a common :math:`1/N` in front,
  ``z`` before ``v``, moments by decreasing degree, terms in decreasing lexicographic order.
* :func:`expression_latex` prints anything else (definitions, statements) with sympy's LaTeX
  printer, except that the terms of every sum come in the same generator order, so a
  difference reads :math:`z_i - v_i` and :math:`\langle z\rangle - \langle v\rangle`.

Printing never changes the mathematics: class means print their argument as it is, with the
dummy index dropped (:class:`derive.notation.ClassMean`).

Examples
========

>>> from derive.notation import ClassMean, N, z_i, v_i
>>> print(term_latex((z_i - v_i - ClassMean(z_i) + ClassMean(v_i)) / N))
\frac{1}{N} \left(z_{i} - v_{i} - \left\langle z \right\rangle + \left\langle v \right\rangle\right)
>>> expression_latex(ClassMean((z_i - v_i) ** 2) / 2)
'\\frac{\\left\\langle \\left(z - v\\right)^{2} \\right\\rangle}{2}'
"""

from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter

from .notation import SYMBOL_LATEX
from .polynomial import Polynomial, generator_rank, join_terms

__all__ = ["ReaderLatexPrinter", "term_latex", "term_latex_parts", "join_terms", "expression_latex"]


def _term_rank(term):
    """Sort key of one term of a sum: its highest-ranked generator (a per-class symbol, the
    label, a mean, a parameter), then sympy's own order; numbers last."""
    ranks = [generator_rank(atom) for atom in _generators(term)]
    return (0, min(ranks)) if ranks else (1,)


def _generators(term):
    from .notation import _Mean

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
        return sorted(terms, key=lambda term: (_term_rank(term), default.get(term, 0)))


def expression_latex(expr: Any) -> str:
    """LaTeX of any expression of the notation, sums in the pinned order."""
    return ReaderLatexPrinter().doprint(sympy.sympify(expr))


def term_latex_parts(expr):
    r"""``(prefix, [signed terms])`` of a polynomial term, in the pinned order.

    ``prefix`` is ``'\frac{1}{N}'`` when a common :math:`1/N` was pulled out, else ``''``.
    Each term is a string starting with ``'+ '`` or ``'- '``.
    """
    polynomial = expr if isinstance(expr, Polynomial) else Polynomial.from_expr(expr)
    return polynomial.latex_parts()


def term_latex(expr: Any) -> str:
    """LaTeX of one symbolic-N term, with the pinned term order (see module docstring)."""
    polynomial = expr if isinstance(expr, Polynomial) else Polynomial.from_expr(expr)
    return polynomial.latex()
