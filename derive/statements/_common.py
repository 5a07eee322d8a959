"""What the proofs share: terms of any objective, the derivative of a term as the objective's
coordinates require, and the class sum of a gradient (with or without a label)."""

from ..expansion import expand
from ..notation import N, ClassMean, OtherMean, at_label, class_sum, z_i
from ..objectives import OBJECTIVES
from ..objectives._registry import label_derivative, standardized_chain_rule

__all__ = ["terms", "leading", "gradient_sum", "term_gradient", "objective_names"]


def objective_names():
    """Every registered objective, in registry order."""
    return list(OBJECTIVES)


def terms(quantity, order, objective="kl", **parameters):
    """The symbolic-N terms (sympy): expressions, or ``{"g": ..., "i": ...}`` for a labelled
    gradient."""
    return [term.expr for term in expand(quantity, order=order, objective=objective,
                                         parameters=parameters or None).terms]


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
    coordinates require (components like :meth:`derive.objectives.Objective.gradient`)."""
    definition = OBJECTIVES[objective]
    if definition.coordinates == "standardized":
        return standardized_chain_rule(loss_term)
    if definition.labelled:
        return {"g": label_derivative(loss_term), "i": loss_term.diff(z_i)}
    return loss_term.diff(z_i)

