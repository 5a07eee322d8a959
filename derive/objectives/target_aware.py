r"""Objectives that know the label ``g``: the hard-label cross-entropy mixed into KD, and
Decoupled KD (its target and non-target parts).

They are written with the label's logits ``z_g, v_g`` apart and means over the other
:math:`N - 1` classes (:class:`~derive.notation.OtherMean`); their gradient has a label
component and a generic other-class component. In concrete-N output the label is class 1.

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["ce-mixture"].labelled
True
"""

from sympy import exp, log

from ..notation import N, ClassMean, class_total, epsilon, v_i, z_g, z_i
from ._registry import Parameter, objective
from .divergences import half_variance, kd_loss
from .softmax import labelled_expectation, labelled_normalizer

__all__ = ["labelled_kd_loss", "labelled_half_variance", "hard_label_cross_entropy",
           "ce_mixture_loss"]


def labelled_kd_loss():
    r""":math:`T^2\,\mathrm{KL}(p\,\|\,q)` with the label apart:
    :math:`T^2[\sum_j p_j\,\epsilon(v_j - z_j) - \log D_v + \log D_z]`,
    :math:`D_x = \sum_j e^{\epsilon x_j}`."""
    divergence = (labelled_expectation(False, epsilon * (v_i - z_i))
                  - log(labelled_normalizer(False)) + log(labelled_normalizer(True)))
    return divergence / epsilon**2


def labelled_half_variance(difference):
    r""":math:`\frac12\mathrm{Var}(x)` over all classes, with the label apart."""
    mean = class_total(difference, labelled=True) / N
    return class_total((difference - mean) ** 2, labelled=True) / (2 * N)


def hard_label_cross_entropy():
    r""":math:`\mathrm{CE}(y, \mathrm{softmax}(z)) = -\log\mathrm{softmax}(z)_g
    = -z_g + \log N + \log\langle e^{z}\rangle`, at temperature 1 (no :math:`1/T` in it)."""
    return -z_g + log(N) + log(ClassMean(exp(z_i)))


@objective("ce-mixture", "Hard-label CE mixed with KD: alpha CE(y, softmax(z)) + (1 - alpha) L_KD",
           definition=r"\alpha\,\mathrm{CE}\left(y, \mathrm{softmax}(z)\right) + (1-\alpha)\,"
                      r"T^2\,\mathrm{KL}(p\,\|\,q)",
           family="mixture", labelled=True,
           parameters=[Parameter("alpha", "weight of the hard-label cross-entropy (at "
                                 "temperature 1)", low=0, high=1)],
           reference="Hinton, Vinyals, Dean (2015), arXiv:1503.02531",
           limit=lambda alpha: alpha * hard_label_cross_entropy()
           + (1 - alpha) * half_variance(z_i - v_i), max_order=24)
def ce_mixture_loss(alpha):
    r""":math:`\alpha\,\mathrm{CE}(y, \mathrm{softmax}(z)) + (1 - \alpha) T^2\,\mathrm{KL}(p\|q)`, the
    hard label ``y`` being class ``g``. The cross-entropy is at temperature 1, so it is the
    same at every order; KD brings the rest."""
    return alpha * hard_label_cross_entropy() + (1 - alpha) * kd_loss()
