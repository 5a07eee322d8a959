r"""The f-divergence family: KL, reverse KL, Jensen–Shannon, JSD_β, skew KL, Amari's alpha, and
the generic :math:`D_f` with :math:`f` left undefined.

Every member is :math:`T^2 D(p, q)` with :math:`p = \mathrm{softmax}(v/T)` (the teacher) and
:math:`q = \mathrm{softmax}(z/T)` (the student). The generic member is
:math:`L_f = T^2 \sum_i q_i f(p_i/q_i)`: since :math:`p_i/q_i = 1 + O(1/T)`, the engine expands
:math:`f` at 1 with its derivatives there as the symbols ``f2, f3, ...`` (``f1`` drops out:
:math:`\sum_i (p_i - q_i) = 0`).

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["jsd"].parameters[0].allowed
'a rational in [0, 1] (e.g. 3/10) or a symbol name'
"""

from sympy import Rational, log

from ..notation import AmariAlpha, ClassMean, FDerivative, epsilon, v_i, z_i
from ._registry import Parameter, objective
from .softmax import log_softmax, ratio, softmax, softmax_expectation

__all__ = [
    "kd_loss",
    "reverse_kd_loss",
    "jensen_shannon_loss",
    "f_divergence_loss",
    "jsd_loss",
    "skew_kl_loss",
    "skew_reverse_kl_loss",
    "alpha_divergence_loss",
    "half_variance",
]


def half_variance(difference):
    r""":math:`\frac12\mathrm{Var}(x) = \frac12\langle (x - \langle x\rangle)^2\rangle` of a
    per-class expression over the classes."""
    return ClassMean((difference - ClassMean(difference)) ** 2) / 2


def _f_limit(second_derivative):
    return lambda **parameters: second_derivative(**parameters) * half_variance(z_i - v_i)


_KL = r"T^2\,\mathrm{KL}(p\,\|\,q) = T^2 \sum_i p_i \log\frac{p_i}{q_i}"


@objective(
    "kl",
    "Knowledge distillation, T^2 KL(p || q)",
    definition=_KL,
    family="f-divergence",
    reference="Hinton, Vinyals, Dean (2015), arXiv:1503.02531",
    limit=_f_limit(lambda: 1),
    max_order=24,
    limit_statement="f-divergence-limit",
    f_derivatives=lambda: (1, -1),
)
def kd_loss():
    r""":math:`L_{KD} = T^2\,\mathrm{KL}(p\,\|\,q)`, :math:`p = \mathrm{softmax}(v/T)`,
    :math:`q = \mathrm{softmax}(z/T)`: the f-divergence of :math:`f(t) = t \log t`."""
    return softmax_expectation(v_i, log_softmax(v_i) - log_softmax(z_i)) / epsilon**2


@objective(
    "reverse-kl",
    "Reverse KL distillation, T^2 KL(q || p)",
    definition=r"T^2\,\mathrm{KL}(q\,\|\,p) = T^2 \sum_i q_i \log\frac{q_i}{p_i}",
    family="f-divergence",
    reference="MiniLLM, Gu et al. (2024), arXiv:2306.08543",
    limit=_f_limit(lambda: 1),
    max_order=24,
    limit_statement="f-divergence-limit",
    f_derivatives=lambda: (1, -2),
    diagnosis=(
        "reverse KL, KL(q || p): F.kl_div(input, target) computes KL(target || exp(input)); "
        "pass the student's log-probabilities first, F.kl_div(F.log_softmax(z / T, -1), "
        "F.softmax(v / T, -1), reduction='batchmean') * T**2"
    ),
)
def reverse_kd_loss():
    r""":math:`T^2\,\mathrm{KL}(q\,\|\,p)`, the reverse (mode-seeking) direction:
    :math:`f(t) = -\log t`."""
    return softmax_expectation(z_i, log_softmax(z_i) - log_softmax(v_i)) / epsilon**2


def _mixture_gradient(beta):
    r"""The gradient of :math:`T^2\,\mathrm{JSD}_\beta` w.r.t. :math:`z_i`, in closed form:
    :math:`\partial/\partial q_i = (1-\beta)\log(q_i/m_i)` (the other terms cancel, since
    :math:`\beta p_i + (1-\beta) q_i = m_i`), through the softmax's Jacobian
    :math:`T\,q_i\,(h_i - \sum_j q_j h_j)`, with :math:`q_i/m_i = 1/(\beta\,p_i/q_i + 1 - \beta)`.
    """
    log_q_over_m = -log(beta * ratio(v_i, z_i) + 1 - beta)
    per_class = (1 - beta) * log_q_over_m
    return softmax(z_i) * (per_class - softmax_expectation(z_i, per_class)) / epsilon


@objective(
    "js",
    "Jensen-Shannon distillation, T^2 JS(p, q)",
    definition=r"\frac{T^2}{2}\left[\mathrm{KL}(p\,\|\,m) + \mathrm{KL}(q\,\|\,m)\right],"
    r"\ m = \tfrac12(p + q)",
    family="f-divergence",
    limit=_f_limit(lambda: Rational(1, 4)),
    max_order=14,
    gradient=lambda: _mixture_gradient(Rational(1, 2)),
    limit_statement="f-divergence-limit",
    f_derivatives=lambda: (Rational(1, 4), Rational(-3, 8)),
    diagnosis=(
        "a Jensen-Shannon divergence; for KD compute F.kl_div(F.log_softmax(z / T, -1), "
        "F.softmax(v / T, -1), reduction='batchmean') * T**2"
    ),
)
def jensen_shannon_loss():
    r""":math:`T^2\,\mathrm{JS}(p, q) = \frac{T^2}{2}[\mathrm{KL}(p\|m) + \mathrm{KL}(q\|m)]`,
    :math:`m = (p+q)/2`: ``jsd`` at :math:`\beta = 1/2`.

    Written with the ratio :math:`r_i = q_i/p_i`, so every logarithm starts at 1:
    :math:`\log(p_i/m_i) = -\log\frac{1+r_i}{2}`.
    """
    student_over_teacher = ratio(z_i, v_i)
    teacher_side = softmax_expectation(v_i, -log((1 + student_over_teacher) / 2))
    student_side = softmax_expectation(z_i, -log((1 + 1 / student_over_teacher) / 2))
    return (teacher_side + student_side) / (2 * epsilon**2)


@objective(
    "f-divergence",
    "Generic f-divergence, T^2 D_f(p || q), f undefined",
    definition=r"T^2 D_f(p\,\|\,q) = T^2 \sum_i q_i\, f\!\left(\frac{p_i}{q_i}\right),"
    r"\ f(1) = 0",
    family="f-divergence",
    reference="Csiszar (1967); Ali and Silvey (1966)",
    limit=_f_limit(lambda: FDerivative.taylor_coefficient(2)),
    max_order=11,
    limit_statement="f-divergence-limit",
    diagnosis=(
        "an f-divergence of the two softmaxes other than KL; for KD compute "
        "F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), reduction='batchmean') * "
        "T**2"
    ),
)
def f_divergence_loss():
    r""":math:`L_f = T^2 \sum_i q_i f(p_i/q_i)` with :math:`f` undefined: its derivatives at 1
    are the symbols ``f1, f2, ...``."""
    return softmax_expectation(z_i, FDerivative(0, ratio(v_i, z_i))) / epsilon**2


_UNIT = dict(low=0, high=1)


@objective(
    "jsd",
    "Generalized Jensen-Shannon divergence JSD_beta (GKD)",
    definition=r"T^2\left[\beta\,\mathrm{KL}(p\,\|\,m) + (1-\beta)\,\mathrm{KL}(q\,\|\,m)\right],"
    r"\ m = \beta p + (1-\beta) q",
    family="f-divergence",
    parameters=[
        Parameter(
            "beta",
            "weight of the teacher in the mixture m = beta p + "
            "(1 - beta) q; beta = 0 and 1 give identically 0",
            **_UNIT,
        )
    ],
    reference="GKD, Agarwal et al. (2024), arXiv:2306.13649",
    limit=_f_limit(lambda beta: beta * (1 - beta)),
    max_order=11,
    gradient=_mixture_gradient,
    limit_statement="jsd-limit",
    f_derivatives=lambda beta: (beta * (1 - beta), -beta * (1 - beta) * (1 + beta)),
    diagnosis=(
        "GKD's generalized JSD_beta, whose mixture m = beta p + (1 - beta) q takes the "
        "student's softmax into the target; for KD compute F.kl_div(F.log_softmax(z / T, -1),"
        " F.softmax(v / T, -1), reduction='batchmean') * T**2"
    ),
)
def jsd_loss(beta):
    r""":math:`T^2\,\mathrm{JSD}_\beta(p, q)
    = T^2[\beta\,\mathrm{KL}(p\|m) + (1-\beta)\,\mathrm{KL}(q\|m)]`,
    :math:`m = \beta p + (1 - \beta) q`: GKD's convention (Agarwal et al. 2024), where
    :math:`\beta` weights the *teacher* :math:`p`. :math:`\beta = 1/2` is Jensen–Shannon;
    :math:`\beta = 0` and :math:`\beta = 1` give :math:`m = q` and :math:`m = p`, and the
    divergence is identically 0 (not forward or reverse KL).
    """
    teacher_side = softmax_expectation(v_i, -log(beta + (1 - beta) * ratio(z_i, v_i)))
    student_side = softmax_expectation(z_i, -log(beta * ratio(v_i, z_i) + 1 - beta))
    return (beta * teacher_side + (1 - beta) * student_side) / epsilon**2


@objective(
    "skew-kl",
    "Skew KL, T^2 KL(p || alpha p + (1 - alpha) q) (DistiLLM)",
    definition=r"T^2\,\mathrm{KL}\left(p\,\|\,\alpha p + (1-\alpha) q\right)",
    family="f-divergence",
    parameters=[
        Parameter(
            "alpha",
            "skew: the share of the teacher p in the second "
            "argument; alpha = 0 is KL(p || q), alpha = 1 is 0",
            **_UNIT,
        )
    ],
    reference="DistiLLM, Ko et al. (2024), arXiv:2402.03898",
    limit=_f_limit(lambda alpha: (1 - alpha) ** 2),
    max_order=11,
    limit_statement="skew-limit",
    f_derivatives=lambda alpha: ((1 - alpha) ** 2, -((1 - alpha) ** 2) * (1 + 2 * alpha)),
    diagnosis=(
        "DistiLLM's skew KL (the student's softmax is mixed into the target); for KD use the "
        "teacher's softmax alone as the target (alpha = 0)"
    ),
)
def skew_kl_loss(alpha):
    r""":math:`T^2\,\mathrm{KL}(p\,\|\,\alpha p + (1 - \alpha) q)`, the skew KL of DistiLLM
    (Ko et al. 2024, its :math:`\mathrm{SKL}^{(\alpha)}`)."""
    return softmax_expectation(v_i, -log(alpha + (1 - alpha) * ratio(z_i, v_i))) / epsilon**2


@objective(
    "skew-reverse-kl",
    "Skew reverse KL, T^2 KL(q || (1 - alpha) p + alpha q) (DistiLLM)",
    definition=r"T^2\,\mathrm{KL}\left(q\,\|\,(1-\alpha) p + \alpha q\right)",
    family="f-divergence",
    parameters=[
        Parameter(
            "alpha",
            "skew: the share of the student q in the second "
            "argument; alpha = 0 is KL(q || p), alpha = 1 is 0",
            **_UNIT,
        )
    ],
    reference="DistiLLM, Ko et al. (2024), arXiv:2402.03898",
    limit=_f_limit(lambda alpha: (1 - alpha) ** 2),
    max_order=11,
    limit_statement="skew-limit",
    f_derivatives=lambda alpha: ((1 - alpha) ** 2, -2 * (1 - alpha) ** 3),
    diagnosis=(
        "DistiLLM's skew reverse KL; for KD use KL(p || q) with the teacher's softmax as the target"
    ),
)
def skew_reverse_kl_loss(alpha):
    r""":math:`T^2\,\mathrm{KL}(q\,\|\,(1 - \alpha) p + \alpha q)`, DistiLLM's skew reverse KL
    (its :math:`\mathrm{SRKL}^{(\alpha)}`)."""
    return softmax_expectation(z_i, -log((1 - alpha) * ratio(v_i, z_i) + alpha)) / epsilon**2


@objective(
    "alpha-divergence",
    "Amari's alpha-divergence, T^2 D_alpha(p || q)",
    definition=r"\frac{T^2}{\alpha(\alpha-1)}\left(\sum_i p_i^{\alpha} q_i^{1-\alpha} - 1\right)",
    family="f-divergence",
    parameters=[
        Parameter(
            "alpha",
            "order; alpha -> 1 is KL(p || q), alpha -> 0 is "
            "KL(q || p) (both excluded: use kl, reverse-kl)",
            excluded=(0, 1),
        )
    ],
    reference="Amari (1985); Cichocki and Amari (2010)",
    limit=_f_limit(lambda alpha: 1),
    max_order=11,
    limit_statement="f-divergence-limit",
    f_derivatives=lambda alpha: (1, alpha - 2),
    diagnosis=(
        "an alpha-divergence of the two softmaxes, not KL(p || q); for KD compute "
        "F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), reduction='batchmean') * "
        "T**2"
    ),
)
def alpha_divergence_loss(alpha):
    r""":math:`\frac{T^2}{\alpha(\alpha-1)}\left(\sum_i p_i^\alpha q_i^{1-\alpha} - 1\right)`, the
    f-divergence of :math:`f_\alpha(t) = (t^\alpha - \alpha t + \alpha - 1)/(\alpha(\alpha-1))`
    (:class:`~derive.notation.AmariAlpha`), so :math:`f''(1) = 1` and
    :math:`f^{(k)}(1) = (\alpha - 2)\cdots(\alpha - k + 1)`: it falls out of the generic
    f-divergence with those derivatives."""
    return softmax_expectation(z_i, AmariAlpha(0, ratio(v_i, z_i), alpha)) / epsilon**2
