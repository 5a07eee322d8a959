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

from ..notation import ClassMean, N, OtherMean, class_total, epsilon, v_g, v_i, z_g, z_i
from ._registry import Parameter, objective
from .divergences import half_variance, kd_loss
from .softmax import labelled_expectation, labelled_normalizer

__all__ = [
    "labelled_kd_loss",
    "labelled_half_variance",
    "hard_label_cross_entropy",
    "ce_mixture_loss",
    "tckd",
    "nckd",
    "label_probability",
    "labelled_kl",
    "tckd_loss",
    "nckd_loss",
    "dkd_loss",
]


def labelled_kd_loss():
    r""":math:`T^2\,\mathrm{KL}(p\,\|\,q)` with the label apart:
    :math:`T^2[\sum_j p_j\,\epsilon(v_j - z_j) - \log D_v + \log D_z]`,
    :math:`D_x = \sum_j e^{\epsilon x_j}`."""
    divergence = (
        labelled_expectation(False, epsilon * (v_i - z_i))
        - log(labelled_normalizer(False))
        + log(labelled_normalizer(True))
    )
    return divergence / epsilon**2


def labelled_half_variance(difference):
    r""":math:`\frac12\mathrm{Var}(x)` over all classes, with the label apart."""
    mean = class_total(difference, labelled=True) / N
    return class_total((difference - mean) ** 2, labelled=True) / (2 * N)


def hard_label_cross_entropy():
    r""":math:`\mathrm{CE}(y, \mathrm{softmax}(z)) = -\log\mathrm{softmax}(z)_g
    = -z_g + \log N + \log\langle e^{z}\rangle`, at temperature 1 (no :math:`1/T` in it)."""
    return -z_g + log(N) + log(ClassMean(exp(z_i)))


@objective(
    "ce-mixture",
    "Hard-label CE mixed with KD: alpha CE(y, softmax(z)) + (1 - alpha) L_KD",
    definition=r"\alpha\,\mathrm{CE}\left(y, \mathrm{softmax}(z)\right) + (1-\alpha)\,"
    r"T^2\,\mathrm{KL}(p\,\|\,q)",
    family="mixture",
    labelled=True,
    parameters=[
        Parameter(
            "alpha", "weight of the hard-label cross-entropy (at temperature 1)", low=0, high=1
        )
    ],
    reference="Hinton, Vinyals, Dean (2015), arXiv:1503.02531",
    limit=lambda alpha: alpha * hard_label_cross_entropy() + (1 - alpha) * half_variance(z_i - v_i),
    max_order=24,
    diagnosis="the hard-label cross-entropy is mixed in; its weight alpha is the loss's, not KD's",
)
def ce_mixture_loss(alpha):
    r""":math:`\alpha\,\mathrm{CE}(y, \mathrm{softmax}(z)) + (1 - \alpha) T^2\,\mathrm{KL}(p\|q)`,
    the hard label ``y`` being class ``g``. The cross-entropy is at temperature 1, so it is the
    same at every order; KD brings the rest."""
    return alpha * hard_label_cross_entropy() + (1 - alpha) * kd_loss()


# -- Decoupled KD (Zhao et al., CVPR 2022) ---------------------------------------------------


def _other_normalizer(logits):
    r""":math:`S_x = \langle e^{\epsilon x}\rangle_{\neg g}`: the other classes' exponential
    mean."""
    return OtherMean(exp(epsilon * logits))


def _full_normalizer(logits, label_logit):
    r""":math:`D_x = e^{\epsilon x_g} + (N-1) S_x = \sum_j e^{\epsilon x_j}`."""
    return exp(epsilon * label_logit) + (N - 1) * _other_normalizer(logits)


def tckd():
    r"""The target-class part :math:`\mathrm{KL}(b^p\,\|\,b^q)`, :math:`b = (p_g, 1 - p_g)`,
    without :math:`T^2`:
    :math:`p_g \log\frac{p_g}{q_g} + (1 - p_g)\log\frac{1 - p_g}{1 - q_g}` with
    :math:`p_g/q_g = e^{\epsilon(v_g - z_g)} D_z/D_v` and
    :math:`(1 - p_g)/(1 - q_g) = (S_v/D_v)(D_z/S_z)` (the factors :math:`N - 1` cancel)."""
    teacher_total, student_total = _full_normalizer(v_i, v_g), _full_normalizer(z_i, z_g)
    label_probability = exp(epsilon * v_g) / teacher_total
    log_normalizers = log(student_total) - log(teacher_total)
    label_part = label_probability * (epsilon * (v_g - z_g) + log_normalizers)
    rest = (N - 1) * _other_normalizer(v_i) / teacher_total
    rest_part = rest * (log(_other_normalizer(v_i)) - log(_other_normalizer(z_i)) + log_normalizers)
    return label_part + rest_part


def nckd():
    r"""The non-target part :math:`\mathrm{KL}(\hat p\,\|\,\hat q)` over the classes other than
    the label, :math:`\hat p_j = e^{\epsilon v_j}/((N-1) S_v)`, without :math:`T^2`:
    :math:`\langle e^{\epsilon v}(\epsilon(v - z) - \log S_v + \log S_z)\rangle_{\neg g}/S_v`."""
    teacher, student = _other_normalizer(v_i), _other_normalizer(z_i)
    return (
        OtherMean(exp(epsilon * v_i) * (epsilon * (v_i - z_i) - log(teacher) + log(student)))
        / teacher
    )


def label_probability():
    r""":math:`p_g`, the teacher's probability of the label."""
    return exp(epsilon * v_g) / _full_normalizer(v_i, v_g)


def labelled_kl():
    r""":math:`\mathrm{KL}(p\,\|\,q)` written with the label apart and the others averaged:
    :math:`\epsilon\sum_j p_j (v_j - z_j) - \log D_v + \log D_z`."""
    teacher_total, student_total = _full_normalizer(v_i, v_g), _full_normalizer(z_i, z_g)
    mean_difference = (
        exp(epsilon * v_g) * (v_g - z_g) + (N - 1) * OtherMean(exp(epsilon * v_i) * (v_i - z_i))
    ) / teacher_total
    return epsilon * mean_difference - log(teacher_total) + log(student_total)


def _tckd_limit():
    # (d_g - <d>)^2 / (2 (N - 1)) with <d> over every class: (N - 1)(d_g - <d>_{not g})^2/(2 N^2).
    d_label, d_others = z_g - v_g, OtherMean(z_i - v_i)
    return (N - 1) * (d_label - d_others) ** 2 / (2 * N**2)


def _nckd_limit():
    d = z_i - v_i
    return (OtherMean(d**2) - OtherMean(d) ** 2) / 2


_DKD = "Zhao et al., Decoupled Knowledge Distillation, CVPR 2022, arXiv:2203.08679"


@objective(
    "dkd-tckd",
    "DKD's target-class part, T^2 KL(b^p || b^q), b = (p_g, 1 - p_g)",
    definition=r"T^2\,\mathrm{KL}(b^p\,\|\,b^q),\ b^p = (p_g, 1 - p_g)",
    family="target-aware",
    labelled=True,
    reference=_DKD,
    limit=lambda: _tckd_limit(),
    max_order=12,
    limit_statement="dkd-limit",
    diagnosis=(
        "DKD's target-class term alone (a KL between the binary label/other distributions); "
        "for KD compute F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), "
        "reduction='batchmean') * T**2"
    ),
)
def tckd_loss():
    r""":math:`T^2\,\mathrm{TCKD}` (:func:`tckd`)."""
    return tckd() / epsilon**2


@objective(
    "dkd-nckd",
    "DKD's non-target part, T^2 KL(p^ || q^) over the classes other than g",
    definition=r"T^2\,\mathrm{KL}(\hat p\,\|\,\hat q),\ \hat p_j = \frac{p_j}{1 - p_g}\ (j \ne g)",
    family="target-aware",
    labelled=True,
    reference=_DKD,
    limit=lambda: _nckd_limit(),
    max_order=16,
    limit_statement="dkd-limit",
    diagnosis=(
        "DKD's non-target term alone (a KL over the classes other than the label); for KD "
        "compute F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), "
        "reduction='batchmean') * T**2"
    ),
)
def nckd_loss():
    r""":math:`T^2\,\mathrm{NCKD}` (:func:`nckd`)."""
    return nckd() / epsilon**2


@objective(
    "dkd",
    "Decoupled KD: alpha T^2 TCKD + beta T^2 NCKD",
    definition=r"\alpha\,T^2\,\mathrm{TCKD} + \beta\,T^2\,\mathrm{NCKD}",
    family="target-aware",
    labelled=True,
    reference=_DKD,
    parameters=[
        Parameter("alpha", "weight of the target-class part", default=1),
        Parameter("beta", "weight of the non-target part", default=8),
    ],
    limit=lambda alpha, beta: alpha * _tckd_limit() + beta * _nckd_limit(),
    max_order=12,
    limit_statement="dkd-limit",
    diagnosis=(
        "Decoupled KD: the target and non-target terms are weighted separately (alpha, beta);"
        " for KD compute F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), "
        "reduction='batchmean') * T**2"
    ),
)
def dkd_loss(alpha, beta):
    r""":math:`\alpha T^2\,\mathrm{TCKD} + \beta T^2\,\mathrm{NCKD}` (defaults 1 and 8, the
    paper's)."""
    return (alpha * tckd() + beta * nckd()) / epsilon**2
