r"""Knowledge distillation's companions: its cross-entropy form, its gradient in closed form,
logits matching and the regularizer of Chen et al., and the sigmoid/BCE control. These are
definitions the proofs use; the registered objectives are in the family modules.

Examples
========

>>> logits_matching_gradient()
(-v_i + z_i)/N
"""

from sympy import exp, log

from ..notation import ClassMean, N, epsilon, v_i, z_i
from .softmax import log_softmax, softmax, softmax_expectation

__all__ = [
    "kd_cross_entropy_loss",
    "kd_gradient_closed_form",
    "logits_matching_loss",
    "logits_matching_gradient",
    "regularizer_loss",
    "regularizer_gradient",
    "sigmoid_distillation_loss",
]


def kd_cross_entropy_loss():
    r"""The soft-target cross-entropy form :math:`-T^2 \sum_i p_i \log q_i`.

    It differs from :math:`L_{KD}` by :math:`T^2 H(p)`, which does not depend on ``z``, so the
    gradients agree. Its value grows like :math:`T^2 \log N`: it has no expansion in 1/T.
    """
    return -softmax_expectation(v_i, log_softmax(z_i)) / epsilon**2


def kd_gradient_closed_form():
    r""":math:`\partial L_{KD}/\partial z_i = T(q_i - p_i)`, written out independently."""
    return (softmax(z_i) - softmax(v_i)) / epsilon


def logits_matching_loss():
    r""":math:`L_{LM} = \frac{1}{2N}\|z - v\|^2 = \frac12\langle (z - v)^2\rangle`."""
    return ClassMean((z_i - v_i) ** 2) / 2


def logits_matching_gradient():
    r""":math:`\partial L_{LM}/\partial z_i = \frac1N (z_i - v_i)`: the logits-matching part of
    :math:`G_0`."""
    return (z_i - v_i) / N


def regularizer_loss():
    r"""The extra regularization of Chen et al.:
    :math:`-\frac12(\langle z\rangle - \langle v\rangle)^2`."""
    return -((ClassMean(z_i) - ClassMean(v_i)) ** 2) / 2


def regularizer_gradient():
    r"""Its gradient, :math:`-\frac1N(\langle z\rangle - \langle v\rangle)`: the regularizer part
    of :math:`G_0`."""
    return -(ClassMean(z_i) - ClassMean(v_i)) / N


def sigmoid_distillation_loss():
    r"""Sigmoid/BCE distillation, :math:`T^2 \sum_i \mathrm{BCE}(\sigma(z_i/T), \sigma(v_i/T))`:
    not shift invariant."""
    student, teacher = 1 / (1 + exp(-epsilon * z_i)), 1 / (1 + exp(-epsilon * v_i))
    per_class = -(teacher * log(student) + (1 - teacher) * log(1 - student))
    return N * ClassMean(per_class) / epsilon**2
