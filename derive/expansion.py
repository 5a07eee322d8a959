r"""Expansions of a distillation objective and its gradient in :math:`1/T`.

:func:`expand` is the public entry point: term ``k`` is the coefficient of :math:`T^{-k}`,
for ``k = 0 .. order-1``, of the loss :math:`L = \sum_k T^{-k} L_k` or of its gradient
w.r.t. the student logits, :math:`\partial L/\partial z_i = \sum_k T^{-k} G_{k,i}`.

With a symbolic number of classes (``classes=None``) a term is a polynomial in
``z_i, v_i, 1/N`` and class moments (see :mod:`derive.notation`); a gradient term is the one
expression for the generic class ``i``. With ``classes=n`` the same terms are written in the
explicit symbols ``z1..zn, v1..vn``, a gradient term being the list of its ``n`` components.
The concrete form is *obtained from* the symbolic one, never expanded again.

Examples
========

>>> expansion = expand("gradient", order=1)
>>> expansion.terms[0].expr
-v_i/N + z_i/N + mean(v_i)/N - mean(z_i)/N
>>> expand("loss", order=1, classes=2).terms[0].expr
v1**2/4 - v1*z1/2 + v2**2/4 - v2*z2/2 + z1**2/4 + z2**2/4 - (v1/2 + v2/2)**2/2 + (v1/2 + v2/2)*(z1/2 + z2/2) - (z1/2 + z2/2)**2/2
"""

from dataclasses import dataclass
from functools import lru_cache

import sympy

from ._errors import check_choice, check_classes, check_order
from .latex import expression_latex, term_latex
from .notation import concrete, concrete_text
from .objectives import (OBJECTIVES, logits_matching_gradient, logits_matching_loss,
                         regularizer_gradient, regularizer_loss)
from .series import power_series

__all__ = ["QUANTITIES", "Term", "Expansion", "expand", "leading_pieces"]

#: What can be expanded.
QUANTITIES = ("loss", "gradient")


@dataclass(frozen=True)
class Term:
    """The coefficient of :math:`T^{-power}` of ``quantity``.

    ``symbolic`` is the symbolic-N term (for a gradient, the generic component ``i``).
    With ``classes=n``, :attr:`expr` is that term in ``z1..zn, v1..vn``: an expression for the
    loss, a tuple of ``n`` expressions (component ``c`` is the derivative in ``z_c``) for the
    gradient.
    """

    power: int
    symbolic: object
    quantity: str = "loss"
    classes: object = None

    @property
    def expr(self):
        if self.classes is None:
            return self.symbolic
        if self.quantity == "loss":
            return concrete(self.symbolic, classes=self.classes)
        return tuple(concrete(self.symbolic, classes=self.classes, component=c)
                     for c in range(1, self.classes + 1))

    def _printed(self, printer):
        if self.classes is None:
            return printer(self.symbolic)
        if self.quantity == "loss":
            return concrete_text(self.symbolic, classes=self.classes, printer=printer)
        return [concrete_text(self.symbolic, classes=self.classes, component=c, printer=printer)
                for c in range(1, self.classes + 1)]

    @property
    def latex(self):
        """LaTeX: the pinned term order for symbolic N; for concrete N, the symbolic term's
        order with each mean written out as its explicit sum."""
        return self._printed(term_latex if self.classes is None else expression_latex)

    @property
    def text(self):
        """Plain text that ``sympy.sympify`` parses (in ``z1..zn, v1..vn`` for concrete N)."""
        return self._printed(str)

    def to_json(self):
        return {"power": self.power, "expr": self.text, "latex": self.latex}


@dataclass(frozen=True)
class Expansion:
    """The first ``order`` terms of ``quantity`` of ``objective``, for ``classes`` classes
    (``None``: symbolic N)."""

    objective: str
    quantity: str
    order: int
    classes: object
    terms: tuple

    def to_json(self):
        """The stable JSON form (see README, CLI contract)."""
        return {
            "objective": self.objective,
            "quantity": self.quantity,
            "classes": "N" if self.classes is None else self.classes,
            "order": self.order,
            "terms": [term.to_json() for term in self.terms],
        }


@lru_cache(maxsize=None)
def _symbolic_terms(objective, quantity, order):
    definition = OBJECTIVES[objective]
    expr = definition.loss if quantity == "loss" else definition.gradient
    return tuple(power_series(expr, order=order))


def expand(quantity="loss", *, order, classes=None, objective="kl"):
    r"""Expand ``quantity`` of ``objective`` in :math:`1/T` to ``order`` terms.

    Parameters
    ==========

    quantity : "loss" or "gradient"
        The loss :math:`T^2\,\mathrm{KL}(p\|q)` or its gradient w.r.t. the student logits.
    order : int >= 1
        Number of terms, the powers :math:`T^0 .. T^{-(order-1)}`.
    classes : None or int >= 2
        ``None`` for a symbolic number of classes ``N``; else explicit classes.
    objective : str
        A key of :data:`derive.objectives.OBJECTIVES` (``"kl"`` is knowledge distillation).

    Examples
    ========

    >>> expand("loss", order=0)
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: order must be an integer >= 1, got 0
    """
    check_choice(quantity, QUANTITIES, name="quantity")
    check_order(order)
    check_classes(classes)
    check_choice(objective, tuple(OBJECTIVES), name="objective")
    terms = tuple(Term(k, expr, quantity, classes)
                  for k, expr in enumerate(_symbolic_terms(objective, quantity, order)))
    return Expansion(objective, quantity, order, classes, terms)


def leading_pieces(quantity):
    r"""The named pieces of the :math:`T^0` term (Chen et al.), as THEORY.md states them.

    Returns ``{"logits-matching": ..., "regularizer": ...}``; for the loss,
    :math:`L_{LM}` and :math:`-\frac12(\langle z\rangle - \langle v\rangle)^2`; for the gradient,
    :math:`\frac1N(z_i - v_i)` and :math:`-\frac1N(\langle z\rangle - \langle v\rangle)`.

    >>> leading_pieces("gradient")["regularizer"]
    (mean(v_i) - mean(z_i))/N
    """
    check_choice(quantity, QUANTITIES, name="quantity")
    if quantity == "loss":
        return {"logits-matching": logits_matching_loss(), "regularizer": regularizer_loss()}
    return {"logits-matching": logits_matching_gradient(), "regularizer": regularizer_gradient()}
