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

from .ordering import ReaderLatexPrinter, expression_latex
from .polynomial import Polynomial, join_terms

__all__ = ["ReaderLatexPrinter", "term_latex", "term_latex_parts", "join_terms", "expression_latex"]


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
