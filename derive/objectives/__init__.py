r"""Distillation objectives as exact sympy expressions, ready for the expansion engine.

An objective is a *definition*: an expression in :math:`\epsilon = 1/T`, the per-class logits
``z_i, v_i``, ``1/N`` and class means, possibly with parameters. :mod:`derive.series` expands
any of them; nothing here knows about series. Each is registered where it is defined
(:func:`objective`), in one registry, :data:`OBJECTIVES`, by the name the CLI, the JSON, the
proofs and :mod:`verify` use.

Families: :mod:`~derive.objectives.divergences` (KL, reverse KL, JS, JSD_β, skew KL, Amari's
alpha, the generic f-divergence), :mod:`~derive.objectives.temperature` (two temperatures, a
hot teacher), :mod:`~derive.objectives.target_aware` (hard-label mixtures, Decoupled KD),
:mod:`~derive.objectives.normalized` (logit standardization, DIST),
:mod:`~derive.objectives.matching` (logits matching and its centred form).

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["kl"].title
'Knowledge distillation, T^2 KL(p || q)'
>>> OBJECTIVES["jsd"].resolve({"beta": "3/10"})
(('beta', 3/10),)
>>> OBJECTIVES["jsd"].resolve({"beta": "2"})  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
derive._errors.DeriveError: parameter beta of objective jsd must be a rational in [0, 1] (e.g. 3/10)
or a symbol name, got 2
"""

# The import order is the registration order, which the CLI and the docs list.
# isort: off
from ._registry import (
    FAMILIES,
    OBJECTIVES,
    Objective,
    Parameter,
    objective,
    objectives_proved_by,
    parameter_symbols,
)
from .softmax import log_softmax, softmax, softmax_expectation
from .kd import (
    kd_cross_entropy_loss,
    kd_gradient_closed_form,
    logits_matching_gradient,
    logits_matching_loss,
    regularizer_gradient,
    regularizer_loss,
    sigmoid_distillation_loss,
)
from .divergences import (
    alpha_divergence_loss,
    f_divergence_loss,
    half_variance,
    jensen_shannon_loss,
    jsd_loss,
    kd_loss,
    reverse_kd_loss,
    skew_kl_loss,
    skew_reverse_kl_loss,
)
from .temperature import hot_teacher_loss, two_temperature_loss
from .target_aware import ce_mixture_loss, dkd_loss, nckd_loss, tckd_loss
from .normalized import dist_loss, standardized_kl_loss
# isort: on

__all__ = [
    "FAMILIES",
    "OBJECTIVES",
    "Objective",
    "Parameter",
    "objective",
    "parameter_symbols",
    "objectives_proved_by",
    "softmax",
    "log_softmax",
    "softmax_expectation",
    "kd_loss",
    "kd_cross_entropy_loss",
    "reverse_kd_loss",
    "jensen_shannon_loss",
    "kd_gradient_closed_form",
    "logits_matching_loss",
    "logits_matching_gradient",
    "regularizer_loss",
    "regularizer_gradient",
    "sigmoid_distillation_loss",
    "half_variance",
    "f_divergence_loss",
    "jsd_loss",
    "skew_kl_loss",
    "skew_reverse_kl_loss",
    "alpha_divergence_loss",
    "two_temperature_loss",
    "hot_teacher_loss",
    "ce_mixture_loss",
    "tckd_loss",
    "nckd_loss",
    "dkd_loss",
    "standardized_kl_loss",
    "dist_loss",
]

# Registered last: logits matching, the T -> infinity end the other families tend to.
from .matching import centred_logits_matching_objective, logits_matching_objective

__all__ += ["logits_matching_objective", "centred_logits_matching_objective"]
