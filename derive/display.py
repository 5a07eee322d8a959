r"""Formulas for notebooks: what a cell displays, and the expression it stands for.

:func:`formula` returns an object that Jupyter displays as LaTeX (``name = ...``) and that
carries the expression it was printed from, in the notation's text form, under the MIME type
:data:`MIME_TYPE`. The notebooks' test reads every displayed formula back
(:func:`derive.parse_latex`) and checks it is that expression: a notebook cannot show a formula
that differs from the engine's.

Examples
========

>>> from derive import ClassMean, z_i
>>> shown = formula("m", ClassMean(z_i) / 2)
>>> shown._repr_mimebundle_()["text/latex"]
'$\\displaystyle m = \\frac{\\left\\langle z \\right\\rangle}{2}$'
"""

from typing import Any

import sympy

from .latex import expression_latex, term_latex

__all__ = ["MIME_TYPE", "formula"]

#: The MIME type under which a displayed formula carries its expression.
MIME_TYPE = "application/vnd.kd-theorems.formula+json"


class _Formula:
    def __init__(self, name, expr, latex):
        self.name, self.expr, self.latex = name, expr, latex

    def _repr_mimebundle_(self, include=None, exclude=None):
        shown = rf"$\displaystyle {self.name} = {self.latex}$"
        return {
            "text/latex": shown,
            "text/plain": f"{self.name} = {self.expr}",
            MIME_TYPE: {"name": self.name, "latex": self.latex, "expr": str(self.expr)},
        }

    def __repr__(self):
        return f"{self.name} = {self.expr}"


def formula(name: str, expr: Any, *, term: bool = False) -> _Formula:
    """``name = expr`` for display; ``term=True`` prints in the pinned order of
    :func:`derive.term_latex` (polynomial terms), else with :func:`derive.expression_latex`."""
    expr = sympy.sympify(expr)
    return _Formula(name, expr, term_latex(expr) if term else expression_latex(expr))
