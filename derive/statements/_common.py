"""What the proofs share: terms of any objective, the derivative of a term as the objective's
coordinates require, and the class sum of a gradient (with or without a label)."""

from sympy import QQ

from ..expansion import expand
from ..notation import (
    ClassMean,
    N,
    OtherMean,
    at_label,
    class_sum,
    is_class_constant,
    sigma_z,
    z_g,
    z_i,
    zh_i,
)
from ..objectives import OBJECTIVES
from ..series import Algebra

__all__ = ["terms", "leading", "gradient_sum", "term_gradient", "objective_names"]


def objective_names():
    """Every registered objective, in registry order."""
    return list(OBJECTIVES)


def terms(quantity, order, objective="kl", **parameters):
    """The symbolic-N terms (sympy): expressions, or ``{"g": ..., "i": ...}`` for a labelled
    gradient."""
    return [
        term.expr
        for term in expand(
            quantity, order=order, objective=objective, parameters=parameters or None
        ).terms
    ]


def leading(quantity, objective="kl", **parameters):
    return terms(quantity, 1, objective, **parameters)[0]


def gradient_sum(gradient):
    r""":math:`\sum_j G_j` over every class of a gradient given by components: ``N <G>`` for a
    generic ``G_i``; with a label, :math:`G_g + \sum_{j \ne g} G_j`, the other classes summed
    as :math:`(N-1)\langle G\rangle_{\neg g}` when the objective averages over them, else as
    :math:`N\langle G\rangle - G|_{i = g}`."""
    if not isinstance(gradient, dict):
        return class_sum(gradient)
    label_part, other = gradient["g"], gradient["i"]
    if other.has(OtherMean):
        return label_part + (N - 1) * OtherMean(other)
    return label_part + N * ClassMean(other) - at_label(other)


def term_gradient(objective, loss_term):
    """The gradient w.r.t. the logits of a loss term of ``objective``, as the objective's
    coordinates require (components like :meth:`derive.objectives.Objective.gradient`),
    differentiated in the expansion engine (the same rules as sympy's, generator by
    generator: fast for large terms)."""
    definition = OBJECTIVES[objective]
    algebra = Algebra()
    loss = algebra.element(loss_term)
    if definition.coordinates == "standardized":
        coordinate = algebra.derivative(loss, zh_i)
        zh = algebra.element(zh_i)
        projected = algebra.add(
            algebra.add(coordinate, algebra.scale(algebra.mean(coordinate), QQ(-1))),
            algebra.scale(algebra.mul(zh, algebra.mean(algebra.mul(coordinate, zh))), QQ(-1)),
        )
        chain = algebra.add(
            algebra.mul(projected, algebra.element(1 / sigma_z)),
            algebra.mul(algebra.derivative(loss, sigma_z), algebra.element(zh_i / N)),
        )
        return algebra.to_expr(chain)
    if definition.labelled:
        through_means = algebra.derivative(loss, z_i, frozen=(OtherMean,))
        at_g = algebra.substitute(
            through_means, lambda x: None if is_class_constant(x) else at_label(x)
        )
        label_part = algebra.add(algebra.derivative(loss, z_g), at_g)
        return {
            "g": algebra.to_expr(label_part),
            "i": algebra.to_expr(algebra.derivative(loss, z_i)),
        }
    return algebra.to_expr(algebra.derivative(loss, z_i))
