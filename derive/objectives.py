r"""Distillation objectives as exact sympy expressions, ready for the expansion engine.

An objective is a *definition*: an expression in :math:`\epsilon = 1/T`, the per-class logits
``z_i, v_i``, ``1/N`` and class means. :mod:`derive.series` expands any of them; nothing here
knows about series. Adding an objective means adding one :class:`Objective` to
:data:`OBJECTIVES`.

Softmax-weighted sums are written with class means, which keeps ``N`` out of the definitions:
:math:`\sum_i p_i f_i = \langle e^{\epsilon v} f\rangle / \langle e^{\epsilon v}\rangle` for
:math:`p = \mathrm{softmax}(v/T)`.

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["kl"].title
'Knowledge distillation, T^2 KL(p || q)'
"""

from dataclasses import dataclass

import sympy
from sympy import exp, log

from .notation import N, ClassMean, epsilon, v_i, z_i

__all__ = [
    "Objective", "OBJECTIVES", "softmax", "log_softmax", "softmax_expectation",
    "kd_loss", "kd_cross_entropy_loss", "reverse_kd_loss", "jensen_shannon_loss",
    "kd_gradient_closed_form", "logits_matching_loss",
    "logits_matching_gradient", "regularizer_loss", "regularizer_gradient",
    "sigmoid_distillation_loss",
]


def softmax(logits):
    r""":math:`\mathrm{softmax}(x/T)_i = e^{\epsilon x_i} / (N \langle e^{\epsilon x}\rangle)`."""
    return exp(epsilon * logits) / (N * ClassMean(exp(epsilon * logits)))


def log_softmax(logits):
    r""":math:`\log \mathrm{softmax}(x/T)_i = \epsilon x_i - \log\langle e^{\epsilon x}\rangle - \log N`."""
    return epsilon * logits - log(ClassMean(exp(epsilon * logits))) - log(N)


def softmax_expectation(logits, per_class):
    r""":math:`\sum_i \mathrm{softmax}(x/T)_i f_i`, written as a ratio of class means."""
    weight = exp(epsilon * logits)
    return ClassMean(weight * per_class) / ClassMean(weight)


def kd_loss():
    r""":math:`L_{KD} = T^2\,\mathrm{KL}(p\,\|\,q)`, :math:`p = \mathrm{softmax}(v/T)`, :math:`q = \mathrm{softmax}(z/T)`."""
    return softmax_expectation(v_i, log_softmax(v_i) - log_softmax(z_i)) / epsilon**2


def kd_cross_entropy_loss():
    r"""The soft-target cross-entropy form :math:`-T^2 \sum_i p_i \log q_i`.

    It differs from :func:`kd_loss` by :math:`T^2 H(p)`, which does not depend on ``z``, so the
    gradients agree. Its value grows like :math:`T^2 \log N`: it has no expansion in 1/T.
    """
    return -softmax_expectation(v_i, log_softmax(z_i)) / epsilon**2


def reverse_kd_loss():
    r""":math:`T^2\,\mathrm{KL}(q\,\|\,p)`, the reverse (mode-seeking) direction."""
    return softmax_expectation(z_i, log_softmax(z_i) - log_softmax(v_i)) / epsilon**2


def jensen_shannon_loss():
    r""":math:`T^2\,\mathrm{JS}(p, q) = \frac{T^2}{2}[\mathrm{KL}(p\|m) + \mathrm{KL}(q\|m)]`, :math:`m = (p+q)/2`.

    Written with the ratio :math:`r_i = q_i/p_i`, so every logarithm starts at 1:
    :math:`\log(p_i/m_i) = -\log\frac{1+r_i}{2}`.
    """
    ratio = exp(epsilon * (z_i - v_i)) * ClassMean(exp(epsilon * v_i)) / ClassMean(exp(epsilon * z_i))
    teacher_side = softmax_expectation(v_i, -log((1 + ratio) / 2))
    student_side = softmax_expectation(z_i, -log((1 + 1 / ratio) / 2))
    return (teacher_side + student_side) / (2 * epsilon**2)


def kd_gradient_closed_form():
    r""":math:`\partial L_{KD}/\partial z_i = T(q_i - p_i)` (THEORY.md), written out independently."""
    return (softmax(z_i) - softmax(v_i)) / epsilon


def logits_matching_loss():
    r""":math:`L_{LM} = \frac{1}{2N}\|z - v\|^2 = \frac12\langle (z - v)^2\rangle`."""
    return ClassMean((z_i - v_i) ** 2) / 2


def logits_matching_gradient():
    r""":math:`\partial L_{LM}/\partial z_i = \frac1N (z_i - v_i)`: the logits-matching part of :math:`G_0`."""
    return (z_i - v_i) / N


def regularizer_loss():
    r"""The extra regularization of Chen et al.: :math:`-\frac12(\langle z\rangle - \langle v\rangle)^2`."""
    return -(ClassMean(z_i) - ClassMean(v_i)) ** 2 / 2


def regularizer_gradient():
    r"""Its gradient, :math:`-\frac1N(\langle z\rangle - \langle v\rangle)`: the regularizer part of :math:`G_0`."""
    return -(ClassMean(z_i) - ClassMean(v_i)) / N


def sigmoid_distillation_loss():
    r"""Sigmoid/BCE distillation, :math:`T^2 \sum_i \mathrm{BCE}(\sigma(z_i/T), \sigma(v_i/T))`: not shift invariant."""
    student, teacher = 1 / (1 + exp(-epsilon * z_i)), 1 / (1 + exp(-epsilon * v_i))
    per_class = -(teacher * log(student) + (1 - teacher) * log(1 - student))
    return N * ClassMean(per_class) / epsilon**2


@dataclass(frozen=True)
class Objective:
    """A distillation objective: a name, a title, and its exact loss as a sympy expression."""

    name: str
    title: str
    loss: sympy.Expr

    @property
    def gradient(self):
        r"""The exact gradient w.r.t. the student logit :math:`z_i` (class means differentiated
        by :math:`\partial\langle f\rangle/\partial z_i = \frac1N \partial f/\partial z_i`)."""
        return self.loss.diff(z_i)


#: The objectives the expansion engine knows, by the name the CLI and JSON use.
OBJECTIVES = {
    objective.name: objective
    for objective in (
        Objective("kl", "Knowledge distillation, T^2 KL(p || q)", kd_loss()),
        Objective("reverse-kl", "Reverse KL distillation, T^2 KL(q || p)", reverse_kd_loss()),
        Objective("js", "Jensen-Shannon distillation, T^2 JS(p, q)", jensen_shannon_loss()),
    )
}
