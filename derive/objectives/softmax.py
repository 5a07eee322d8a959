r"""Softmaxes written with class means, the bricks of every definition.

Softmax-weighted sums are ratios of class means, which keeps ``N`` out of the definitions:
:math:`\sum_i p_i f_i = \langle e^{\epsilon v} f\rangle / \langle e^{\epsilon v}\rangle` for
:math:`p = \mathrm{softmax}(v/T)`. With a label ``g`` the class sums split into the label and
the others, :math:`\sum_j f_j = f_g + (N-1)\langle f\rangle_{\neg g}`
(:func:`derive.notation.class_total`).

Examples
========

>>> from derive.notation import z_i
>>> softmax(z_i)
exp(epsilon*z_i)/(N*mean(exp(epsilon*z_i)))
"""

from sympy import exp, log

from ..notation import ClassMean, N, class_total, epsilon, v_g, v_i, z_g, z_i

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_expectation",
    "label_softmax",
    "ratio",
    "labelled_expectation",
    "labelled_normalizer",
]


def softmax(logits, *, scale=1):
    r""":math:`\mathrm{softmax}(s\,x/T)_i
    = e^{\epsilon s x_i} / (N \langle e^{\epsilon s x}\rangle)`."""
    return exp(epsilon * scale * logits) / (N * ClassMean(exp(epsilon * scale * logits)))


def log_softmax(logits, *, scale=1):
    r""":math:`\log \mathrm{softmax}(s\,x/T)_i
    = \epsilon s x_i - \log\langle e^{\epsilon s x}\rangle - \log N`."""
    return epsilon * scale * logits - log(ClassMean(exp(epsilon * scale * logits))) - log(N)


def softmax_expectation(logits, per_class, *, scale=1):
    r""":math:`\sum_i \mathrm{softmax}(s\,x/T)_i f_i`, written as a ratio of class means."""
    weight = exp(epsilon * scale * logits)
    return ClassMean(weight * per_class) / ClassMean(weight)


def ratio(numerator_logits, denominator_logits):
    r"""The softmax ratio :math:`\mathrm{softmax}(a/T)_i/\mathrm{softmax}(b/T)_i
    = e^{\epsilon(a_i - b_i)}\langle e^{\epsilon b}\rangle/\langle e^{\epsilon a}\rangle`, which
    starts at 1: the argument an f-divergence's generator is expanded at."""
    return (
        exp(epsilon * (numerator_logits - denominator_logits))
        * ClassMean(exp(epsilon * denominator_logits))
        / ClassMean(exp(epsilon * numerator_logits))
    )


# -- with a label: the label g apart, the others averaged --------------------------------------


def labelled_normalizer(student):
    r""":math:`\sum_j e^{\epsilon x_j}
    = e^{\epsilon x_g} + (N-1)\langle e^{\epsilon x}\rangle_{\neg g}`
    for ``x = z`` (``student``) or ``v``."""
    logits = z_i if student else v_i
    return class_total(exp(epsilon * logits), labelled=True)


def label_softmax(student):
    r"""The softmax at the label, :math:`e^{\epsilon x_g}/\sum_j e^{\epsilon x_j}`."""
    return exp(epsilon * (z_g if student else v_g)) / labelled_normalizer(student)


def labelled_expectation(student, per_class):
    r""":math:`\sum_j \mathrm{softmax}(x/T)_j f_j` with the label apart."""
    logits = z_i if student else v_i
    return class_total(exp(epsilon * logits) * per_class, labelled=True) / labelled_normalizer(
        student
    )
