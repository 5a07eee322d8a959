r"""Separate temperatures: the student at a fixed multiple of the teacher's temperature, and a
hot teacher against a student at a fixed temperature.

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["hot-teacher"].parameters[0].default
1
"""

from sympy import exp, log

from ..notation import ClassMean, N, epsilon, v_i, z_i
from ._registry import Parameter, objective
from .divergences import half_variance
from .softmax import log_softmax, softmax_expectation

__all__ = ["two_temperature_loss", "hot_teacher_loss", "student_log_softmax"]


@objective(
    "two-temperature",
    "Two temperatures: teacher at T, student at r T",
    definition=r"T^2\,\mathrm{KL}\left(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/(rT))\right)",
    family="temperature",
    parameters=[
        Parameter(
            "r",
            "ratio of the student's temperature to the teacher's (r = 1 is kl)",
            low=0,
            open=("low",),
            positive=True,
        )
    ],
    limit=lambda r: half_variance(z_i / r - v_i),
    max_order=24,
    limit_statement="two-temperature-limit",
    diagnosis=(
        "the student's softmax is taken at another temperature than the teacher's; divide "
        "both logits by the same T"
    ),
)
def two_temperature_loss(r):
    r""":math:`T^2\,\mathrm{KL}(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/(rT)))`: the teacher
    at :math:`T`, the student at :math:`T_s = rT` with a fixed ratio :math:`r`."""
    return softmax_expectation(v_i, log_softmax(v_i) - log_softmax(z_i, scale=1 / r)) / epsilon**2


def student_log_softmax(student_temperature):
    r""":math:`\log\mathrm{softmax}(z/T_s)_i = z_i/T_s - \log\langle e^{z/T_s}\rangle - \log N`,
    exact (no :math:`1/T` in it)."""
    return z_i / student_temperature - log(ClassMean(exp(z_i / student_temperature))) - log(N)


def _hot_teacher_limit(student_temperature):
    # KL(u || q) = -log N - <log q>: cross-entropy against the uniform distribution, minus log N.
    return -log(N) - ClassMean(student_log_softmax(student_temperature))


@objective(
    "hot-teacher",
    "Hot teacher: KL(softmax(v/T) || softmax(z/T_s)), T -> infinity",
    definition=r"\mathrm{KL}\left(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/T_s)\right)",
    family="temperature",
    parameters=[
        Parameter(
            "student_temperature",
            "the student's fixed temperature T_s",
            low=0,
            open=("low",),
            default=1,
            symbol_name="T_s",
            positive=True,
        )
    ],
    limit=_hot_teacher_limit,
    limit_statement="hot-teacher-label-smoothing",
    diagnosis=(
        "the student's logits are not divided by T while the teacher's are; use "
        "F.log_softmax(student_logits / T, dim=-1)"
    ),
)
def hot_teacher_loss(student_temperature):
    r""":math:`\mathrm{KL}(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/T_s))` with the student's
    :math:`T_s` fixed and no :math:`T^2` factor, expanded in the teacher's :math:`1/T`. The
    student's softmax stays exact in the terms (``exp(z_i/T_s)`` and its means)."""
    return softmax_expectation(v_i, log_softmax(v_i) - student_log_softmax(student_temperature))
