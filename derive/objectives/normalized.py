r"""Normalized objectives: KD on standardized logits (logit standardization) and DIST's
correlation of the two softmaxes.

Both are written in the standardized logits :math:`\hat z = (z - \langle z\rangle)/\sigma_z`,
:math:`\hat v` (``zh_i``, ``vh_i``; :math:`\sigma` the population standard deviations
``sigma_z``, ``sigma_v``), whose means obey :math:`\langle\hat z\rangle = 0`,
:math:`\langle\hat z^2\rangle = 1` whatever the logits; so the terms come out in the
correlation :math:`\rho = \langle\hat z\hat v\rangle` and higher standardized moments. The
gradient w.r.t. the logits follows by the chain rule
(:func:`~derive.objectives._registry.standardized_chain_rule`).

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["standardized-kl"].parameters[0].choices
('population', 'unbiased')
"""

import sympy
from sympy import Rational

from ..notation import ClassMean, N, epsilon, sigma_v, sigma_z, vh_i, zh_i
from ._registry import Parameter, objective
from .softmax import log_softmax, softmax, softmax_expectation

__all__ = ["standardized_kl_loss", "dist_loss", "correlation", "unbiased_scale"]


def correlation():
    r""":math:`\rho(z, v) = \langle\hat z\hat v\rangle`, the Pearson correlation over the
    classes."""
    return ClassMean(zh_i * vh_i)


def unbiased_scale():
    r""":math:`\sqrt{(N-1)/N}`: the standardized logits with the unbiased std (``torch.std``'s
    default, :math:`s = \sigma\sqrt{N/(N-1)}`) are this times the population ones."""
    return sympy.sqrt((N - 1) / N)


def _scale(std):
    return 1 if std == "population" else unbiased_scale()


def _standardized_limit(std):
    return _scale(std) ** 2 * (1 - correlation())


@objective(
    "standardized-kl",
    "KD on standardized logits, T^2 KL(softmax(v^/T) || softmax(z^/T))",
    definition=r"T^2\,\mathrm{KL}\left(\mathrm{softmax}(\hat v/T)\,\|\,\mathrm{softmax}(\hat z/T)"
    r"\right),\ \hat z = \frac{z - \langle z\rangle}{\sigma(z)}",
    family="normalized",
    coordinates="standardized",
    parameters=[
        Parameter(
            "std",
            "the standard deviation that standardizes: population "
            "(divide by N) or unbiased (N - 1, torch.std's default)",
            choices=("population", "unbiased"),
            default=None,
        )
    ],
    reference="Sun et al., Logit Standardization in Knowledge Distillation, CVPR 2024, "
    "arXiv:2403.01427",
    limit=_standardized_limit,
    max_order=16,
    limit_statement="standardized-limit",
    diagnosis=(
        "KD on standardized logits (logit standardization): the logits are divided by their "
        "standard deviation before the softmax; for KD drop the standardization"
    ),
)
def standardized_kl_loss(std):
    r""":math:`T^2\,\mathrm{KL}(\mathrm{softmax}(\hat v/T)\,\|\,\mathrm{softmax}(\hat z/T))`, the
    logits standardized with the population std, or with the unbiased one (``torch.std``'s
    default), which scales them by :math:`\sqrt{(N-1)/N}`."""
    scale = _scale(std)
    return (
        softmax_expectation(
            vh_i, log_softmax(vh_i, scale=scale) - log_softmax(zh_i, scale=scale), scale=scale
        )
        / epsilon**2
    )


def _dist_limit():
    return 1 - correlation()


@objective(
    "dist",
    "DIST's inter-class term: 1 - Pearson(softmax(z/T), softmax(v/T))",
    definition=r"1 - \rho\left(\mathrm{softmax}(z/T), \mathrm{softmax}(v/T)\right)",
    family="normalized",
    coordinates="standardized",
    reference="Huang et al., Knowledge Distillation from A Stronger Teacher, NeurIPS "
    "2022, arXiv:2205.10536 (its code also multiplies by T^2)",
    limit=lambda: _dist_limit(),
    max_order=10,
    limit_statement="dist-limit",
    diagnosis="DIST's correlation loss, not a KL divergence",
)
def dist_loss():
    r""":math:`1 - \rho(q, p)`, :math:`\rho` the Pearson correlation over the classes of the
    softmaxes :math:`q = \mathrm{softmax}(z/T)`, :math:`p = \mathrm{softmax}(v/T)`, written in
    standardized logits (a softmax is shift invariant:
    :math:`\mathrm{softmax}(z/T) = \mathrm{softmax}(\sigma_z\hat z/T)`):
    :math:`\rho = (\langle pq\rangle - N^{-2})
    /\sqrt{(\langle p^2\rangle - N^{-2})(\langle q^2\rangle - N^{-2})}`.
    DIST's code multiplies it by :math:`T^2`; this definition does not."""
    student, teacher = softmax(zh_i, scale=sigma_z), softmax(vh_i, scale=sigma_v)
    uniform = Rational(1) / N**2
    covariance = ClassMean(student * teacher) - uniform
    variances = (ClassMean(student**2) - uniform) * (ClassMean(teacher**2) - uniform)
    return 1 - covariance / sympy.sqrt(variances)
