r"""Logits matching: the mean squared error on the logits, and its centred form, KD's
:math:`T \to \infty` limit.

Neither depends on the temperature: their expansion in :math:`1/T` is one term. A loss that
divides the logits by :math:`T` before the squared error (textbrewer's ``kd_mse_loss``) is
:math:`T^{-2}` times one of them; the audit reports that power of :math:`T` beside the objective.

* ``logits-matching``, :math:`L_{LM} = \frac12\langle (z - v)^2\rangle = \frac1{2N}\|z - v\|^2`
  (Ba & Caruana's regression on the logits; Kim et al.'s MSE), sees the raw logits: it is
  *not* shift invariant, its gradient :math:`\frac1N(z - v)` does not sum to zero.
* ``centred-logits-matching``, :math:`\frac12\mathrm{Var}(z - v)`, is the limit of KD
  ([infinite-temperature]); it equals ``logits-matching`` when :math:`\langle z\rangle =
  \langle v\rangle` ([equal-mean-suffices]).

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> OBJECTIVES["logits-matching"].loss(), OBJECTIVES["logits-matching"].shift_invariant
(mean((-v_i + z_i)**2)/2, False)
>>> from derive import expand
>>> expand("gradient", order=2, objective="centred-logits-matching").terms[0].expr
-v_i/N + z_i/N + mean(v_i)/N - mean(z_i)/N
"""

from ..notation import ClassMean, v_i, z_i
from ._registry import objective

__all__ = ["logits_matching_objective", "centred_logits_matching_objective"]

_REFERENCE = (
    "Ba & Caruana, Do Deep Nets Really Need to be Deep?, NeurIPS 2014, arXiv:1312.6184; "
    "Kim et al., Comparing Kullback-Leibler Divergence and Mean Squared Error Loss in "
    "Knowledge Distillation, IJCAI 2021, arXiv:2105.08919"
)


def _logits_matching():
    return ClassMean((z_i - v_i) ** 2) / 2


def _centred():
    difference = z_i - v_i
    return ClassMean((difference - ClassMean(difference)) ** 2) / 2


@objective(
    "logits-matching",
    "Logits matching, 1/2 <(z - v)^2> (mean squared error on the logits)",
    definition=r"\tfrac12\left\langle (z - v)^2\right\rangle",
    family="matching",
    reference=_REFERENCE,
    limit=_logits_matching,
    shift_invariant=False,
    diagnosis=(
        "logits matching on the raw logits (an MSE), not KD: it equals KD's T -> infinity limit "
        "only when the student's and the teacher's logit means are equal ([equal-mean-suffices]), "
        "and its gradient does not sum to 0 over the classes"
    ),
)
def logits_matching_objective():
    r""":math:`L_{LM} = \frac12\langle (z - v)^2\rangle`, free of :math:`T`."""
    return _logits_matching()


@objective(
    "centred-logits-matching",
    "Centred logits matching, 1/2 Var(z - v) (KD's T -> infinity limit)",
    definition=r"\tfrac12\mathrm{Var}(z - v)",
    family="matching",
    reference="Chen et al., Exploring the Connection between Knowledge Distillation and "
    "Logits Matching, arXiv:2109.06458 (KD's limit); Hinton et al., arXiv:1503.02531",
    limit=_centred,
    diagnosis=(
        "centred logits matching, 1/2 Var(z - v): KD's T -> infinity limit itself, free of T "
        "([infinite-temperature]); KD at a finite T adds the corrections of its expansion"
    ),
)
def centred_logits_matching_objective():
    r""":math:`\frac12\mathrm{Var}(z - v)
    = L_{LM} - \frac12(\langle z\rangle - \langle v\rangle)^2`, free of :math:`T`."""
    return _centred()
