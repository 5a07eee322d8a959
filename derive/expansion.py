r"""Expansions of a distillation objective and its gradient in :math:`1/T`.

:func:`expand` is the public entry point: term ``k`` is the coefficient of :math:`T^{-k}`,
for ``k = 0 .. order-1``, of the loss :math:`L = \sum_k T^{-k} L_k` or of its gradient
w.r.t. the student logits, :math:`\partial L/\partial z_i = \sum_k T^{-k} G_{k,i}`.

With a symbolic number of classes (``classes=None``) a term is a polynomial in
``z_i, v_i, 1/N``, class moments and the objective's parameters (see
:mod:`derive.notation`); a gradient term is the one expression for the generic class ``i``
(for an objective with a label, two: the label's component ``"g"`` and a generic other
class's, ``"i"``). With ``classes=n`` the same terms are written in the explicit symbols
``z1..zn, v1..vn``, a gradient term being the list of its ``n`` components (the label is
class 1). The concrete form is *obtained from* the symbolic one, never expanded again.

Examples
========

>>> expansion = expand("gradient", order=1)
>>> expansion.terms[0].expr
-v_i/N + z_i/N + mean(v_i)/N - mean(z_i)/N
>>> expand("loss", order=1, classes=2).terms[0].text  # doctest: +NORMALIZE_WHITESPACE
'((z1**2 + z2**2)/2)/2 - ((z1*v1 + z2*v2)/2) + ((v1**2 + v2**2)/2)/2 - ((z1 + z2)/2)**2/2
 + ((z1 + z2)/2)*((v1 + v2)/2) - ((v1 + v2)/2)**2/2'
>>> expand("loss", order=1, objective="jsd", parameters={"beta": "1/4"}).terms[0].readable
'3*⟨z**2⟩/32 - 3*⟨z*v⟩/16 + 3*⟨v**2⟩/32 - 3*⟨z⟩**2/32 + 3*⟨z⟩*⟨v⟩/16 - 3*⟨v⟩**2/32'
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._errors import check_argument, check_choice, check_classes, check_order
from .notation import concrete
from .objectives import (
    OBJECTIVES,
    logits_matching_gradient,
    logits_matching_loss,
    regularizer_gradient,
    regularizer_loss,
)
from .polynomial import Polynomial
from .series import Algebra, series_of

__all__ = ["QUANTITIES", "Term", "Expansion", "expand", "leading_pieces"]

#: What can be expanded.
QUANTITIES = ("loss", "gradient")


#: What a term prints as: one string, ``{component: string}`` for a labelled gradient with
#: symbolic N, or one string per class for a gradient with explicit classes.
Printed = str | dict[str, str] | list[str]


@dataclass(frozen=True)
class Term:
    """The coefficient of :math:`T^{-power}` of ``quantity``.

    ``components`` holds the symbolic-N term as :class:`~derive.polynomial.Polynomial`s, by
    name: ``"loss"``; or, for a gradient, ``"i"`` (a generic class), and ``"g"`` (the label)
    first for an objective with a label. :attr:`symbolic` is the sympy expression (a dict
    ``{"g": ..., "i": ...}`` for a labelled gradient). With ``classes=n``, :attr:`expr` is the
    term in ``z1..zn, v1..vn``: an expression for the loss, a tuple of ``n`` expressions
    (component ``c`` is the derivative in ``z_c``) for the gradient.
    """

    power: int
    components: tuple
    quantity: str = "loss"
    classes: int | None = None

    @property
    def labelled(self) -> bool:
        return len(self.components) == 2

    def _polynomial(self, name=None):
        return dict(self.components)[name or self.components[-1][0]]

    @property
    def symbolic(self) -> Any:
        if self.labelled:
            return {name: polynomial.expr for name, polynomial in self.components}
        return self.components[0][1].expr

    def _for_class(self, component):
        """The component that applies to explicit class ``component`` (the label is class 1)."""
        return self._polynomial("g" if self.labelled and component == 1 else None)

    @property
    def expr(self) -> Any:
        if self.classes is None:
            return self.symbolic
        if self.quantity == "loss":
            return concrete(self._polynomial().expr, classes=self.classes)
        return tuple(
            concrete(self._for_class(c).expr, classes=self.classes, component=c)
            for c in range(1, self.classes + 1)
        )

    def _printed(self, symbolic, explicit):
        if self.classes is None:
            if self.labelled:
                return {name: symbolic(polynomial) for name, polynomial in self.components}
            return symbolic(self.components[0][1])
        if self.quantity == "loss":
            return explicit(self._polynomial(), 1)
        return [explicit(self._for_class(c), c) for c in range(1, self.classes + 1)]

    @property
    def latex(self) -> Printed:
        """LaTeX: the pinned term order for symbolic N; for concrete N, the symbolic term's
        order with each mean written out as its explicit sum."""
        return self._printed(
            Polynomial.latex, lambda p, c: p.concrete_latex(classes=self.classes, component=c)
        )

    @property
    def text(self) -> Printed:
        """Plain text that :func:`derive.parse` (symbolic N) or ``sympy.sympify`` (in
        ``z1..zn, v1..vn``) reads back."""
        return self._printed(
            Polynomial.text, lambda p, c: p.concrete_text(classes=self.classes, component=c)
        )

    @property
    def readable(self) -> Printed:
        """Text for people, class means written ``⟨...⟩`` (symbolic N)."""
        return self._printed(
            lambda p: p.text(readable=True),
            lambda p, c: p.concrete_text(classes=self.classes, component=c),
        )

    def to_json(self) -> dict[str, Any]:
        return {"power": self.power, "expr": self.text, "latex": self.latex}


@dataclass(frozen=True)
class Expansion:
    """The first ``order`` terms of ``quantity`` of ``objective`` with ``parameters``, for
    ``classes`` classes (``None``: symbolic N)."""

    objective: str
    quantity: str
    order: int
    classes: int | None
    terms: tuple[Term, ...]
    parameters: tuple = ()

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (see README, CLI contract)."""
        return {
            "objective": self.objective,
            "quantity": self.quantity,
            "classes": "N" if self.classes is None else self.classes,
            "order": self.order,
            "parameters": {name: str(value) for name, value in self.parameters},
            "terms": [term.to_json() for term in self.terms],
        }


@lru_cache(maxsize=64)
def _symbolic_terms(objective, resolved, quantity, order):
    """``[(name, [Polynomial per power])]`` per component, sharing one algebra."""
    definition = OBJECTIVES[objective]
    values = dict(resolved)
    parts = (
        {"loss": definition.loss(**values)} if quantity == "loss" else definition.gradient(**values)
    )
    algebra = Algebra()
    components = []
    for name, expr in parts.items():
        series = series_of(expr, precision=order, algebra=algebra)
        check_argument(
            series.valuation >= 0,
            "the {} of {} has a pole of order {} at T = infinity: it has no expansion in 1/T",
            quantity,
            objective,
            -series.valuation,
        )
        check_argument(
            series.precision >= order,
            "internal: expansion reached precision {} < {}",
            series.precision,
            order,
        )
        components.append((name, [series[k] for k in range(order)]))
    return algebra, components


def expand(
    quantity: str = "loss",
    *,
    order: int,
    classes: int | None = None,
    objective: str = "kl",
    parameters: dict[str, Any] | None = None,
    progress: Callable[[str], object] | None = None,
) -> Expansion:
    r"""Expand ``quantity`` of ``objective`` in :math:`1/T` to ``order`` terms.

    Parameters
    ==========

    quantity : "loss" or "gradient"
        The loss, or its gradient w.r.t. the student logits.
    order : int >= 1
        Number of terms, the powers :math:`T^0 .. T^{-(order-1)}`.
    classes : None or int >= 2
        ``None`` for a symbolic number of classes ``N``; else explicit classes.
    objective : str
        A key of :data:`derive.objectives.OBJECTIVES` (``"kl"`` is knowledge distillation).
    parameters : dict, optional
        The objective's parameters by name: rationals (``"3/10"``, ``Fraction``, ``int``) or
        symbol names; the rest take their defaults (a symbol, for most).
    progress : callable, optional
        Called with a message before each component is expanded (the CLI shows it on a
        terminal).

    Examples
    ========

    >>> expand("loss", order=0)
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: order must be an integer >= 1, got 0
    >>> expand("loss", order=1000)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: order must be at most 24 for kl (about a minute on 2 cores; ask for
    fewer terms), got 1000
    """
    check_choice(quantity, QUANTITIES, name="quantity")
    check_argument(
        isinstance(objective, str) and objective in OBJECTIVES,
        "objective must be one of {}, got {!r}",
        ", ".join(OBJECTIVES),
        objective,
    )
    definition = OBJECTIVES[objective]
    check_order(
        order,
        maximum=definition.max_order,
        why=f" for {objective} (about a minute on 2 cores; ask for fewer terms)",
    )
    check_classes(classes)
    check_argument(
        parameters is None or isinstance(parameters, dict),
        "parameters must be a dict of name -> value, got {!r}",
        parameters,
    )
    resolved = definition.resolve(parameters)
    if progress is not None:
        progress(f"expanding the {quantity} of {objective} to {order} terms ...")
    algebra, components = _symbolic_terms(objective, resolved, quantity, order)
    if progress is not None:
        progress("")
    terms = tuple(
        Term(
            k,
            tuple(
                (name, Polynomial(algebra, coefficients[k])) for name, coefficients in components
            ),
            quantity,
            classes,
        )
        for k in range(order)
    )
    return Expansion(objective, quantity, order, classes, terms, resolved)


def leading_pieces(quantity: str) -> dict[str, Any]:
    r"""The named pieces of the :math:`T^0` term of KD (Chen et al.), as the theory states them.

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
