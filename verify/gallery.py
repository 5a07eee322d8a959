r"""Example KD losses, written the way users write them, each with what :func:`verify.audit` says.

Every function has the audited signature ``fn(student_logits, teacher_logits, temperature)``,
logits of shape ``[B, N]``, and returns a scalar tensor. :data:`EXAMPLES` maps each name to a
:class:`GalleryExample`: the function, the verdict and causes (codes of
:data:`verify.audit.CAUSES`) the audit must give it, and the exponent, limit scale and cosine it
must measure. The tests audit every entry; ``python -m verify audit verify.gallery:NAME`` shows
one.

Correct:

* :func:`kd_batchmean`, :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/T))`
  with ``reduction='batchmean'``;
* :func:`kd_soft_cross_entropy`, the soft-target cross-entropy form: its value grows like
  :math:`T^2 \log N`, its gradient is KD's.

Pitfalls: :func:`kd_missing_t_squared`, :func:`kd_mean_reduction`, :func:`kd_sum_reduction`,
:func:`kd_t_squared_one_path`, :func:`kd_capped_t_squared`, :func:`kd_detached_student`,
:func:`sigmoid_bce_distillation`, :func:`mse_on_probabilities`,
:func:`logits_matching_uncentred`; and :func:`logits_matching_centred`, the
:math:`T \to \infty` limit itself, which the audit accepts with a note.

Examples
========

>>> import torch
>>> student = torch.zeros(2, 3, dtype=torch.float64)
>>> teacher = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
>>> kd, cross_entropy = (float(loss(student, teacher, 1e3))
...                     for loss in (kd_batchmean, kd_soft_cross_entropy))
>>> round(kd, 3), round(cross_entropy / 1e6, 3)   # KD ~ Var(v)/4, CE / T**2 ~ log 3
(0.167, 1.099)
>>> EXAMPLES["kd_mean_reduction"].causes
('mean-reduction',)
>>> EXAMPLES["kd_sum_reduction"].limit_scale(classes=10, batch_size=16)
16.0
"""

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "GalleryExample", "EXAMPLES", "kd_batchmean", "kd_soft_cross_entropy",
    "kd_missing_t_squared", "kd_mean_reduction", "kd_sum_reduction", "kd_t_squared_one_path",
    "kd_capped_t_squared", "kd_detached_student", "sigmoid_bce_distillation",
    "mse_on_probabilities", "logits_matching_uncentred", "logits_matching_centred",
]


# --------------------------------------------------------------------------------------------
# Correct


def kd_batchmean(student_logits, teacher_logits, temperature):
    r"""The reference: :math:`T^2\,\mathrm{KL}(p\,\|\,q)`, averaged over the batch."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    divergence = F.kl_div(student_log_probabilities, teacher_log_probabilities,
                          reduction="batchmean", log_target=True)
    return temperature**2 * divergence


def kd_soft_cross_entropy(student_logits, teacher_logits, temperature):
    r"""The cross-entropy form :math:`-T^2\sum_i p_i\log q_i`, averaged over the batch.

    It differs from :func:`kd_batchmean` by :math:`T^2 H(p)`, which does not depend on the
    student: the value grows like :math:`T^2\log N`, the gradient is the same.
    """
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    cross_entropy = -(teacher_probabilities * student_log_probabilities).sum(-1)
    return temperature**2 * cross_entropy.mean()


# --------------------------------------------------------------------------------------------
# Pitfalls


def kd_missing_t_squared(student_logits, teacher_logits, temperature):
    """KL at temperature ``T`` without the ``T**2`` factor: the gradient fades like ``T**-2``."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(student_log_probabilities, teacher_probabilities, reduction="batchmean")


def kd_mean_reduction(student_logits, teacher_logits, temperature):
    """``reduction='mean'`` averages over the classes too: the gradient is ``N`` times too small.

    (torch warns about it: "'mean' divides the total loss by both the batch size and the
    support size".)
    """
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(student_log_probabilities, teacher_probabilities,
                                     reduction="mean")


def kd_sum_reduction(student_logits, teacher_logits, temperature):
    """``reduction='sum'`` adds over the batch: the gradient is ``B`` times too large."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(student_log_probabilities, teacher_probabilities,
                                     reduction="sum")


def kd_t_squared_one_path(student_logits, teacher_logits, temperature):
    """``T**2`` applied on one code path only: for a configured (Python number) temperature.

    A scheduled or learned temperature arrives as a tensor and silently skips the factor, so
    its gradient fades like ``T**-2``. With a float ``T`` this loss is exactly
    :func:`kd_batchmean`; the audit finds the other path by passing ``T`` as a 0-d tensor.
    """
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    loss = F.kl_div(student_log_probabilities, teacher_probabilities, reduction="batchmean")
    if isinstance(temperature, (int, float)):
        loss = loss * temperature**2
    return loss


def kd_capped_t_squared(student_logits, teacher_logits, temperature):
    """The ``T**2`` factor capped at ``1000**2`` "to keep the loss bounded".

    Above ``T = 1000`` the gradient fades like ``T**-2`` again: it follows no single power of
    ``T`` over the audited range.
    """
    return min(temperature, 1000.0) ** 2 / temperature**2 * kd_batchmean(
        student_logits, teacher_logits, temperature)


def kd_detached_student(student_logits, teacher_logits, temperature):
    """The student's logits detached with the teacher's: no gradient reaches the student."""
    student_logits = student_logits.detach()
    return kd_batchmean(student_logits, teacher_logits.detach(), temperature)


def sigmoid_bce_distillation(student_logits, teacher_logits, temperature):
    r"""Per-class sigmoids and binary cross-entropy, :math:`T^2`-scaled, summed over the classes
    and averaged over the batch.

    Not shift invariant: at high temperature the gradient tends to
    :math:`\frac{1}{4B}(z - v)`, uncentred logits matching, :math:`N/4` times KD's scale.
    """
    teacher_probabilities = torch.sigmoid(teacher_logits / temperature)
    elementwise = F.binary_cross_entropy_with_logits(student_logits / temperature,
                                                     teacher_probabilities, reduction="none")
    return temperature**2 * elementwise.sum(-1).mean()


def mse_on_probabilities(student_logits, teacher_logits, temperature):
    r"""Mean squared error between the softened probabilities (``F.mse_loss``, 'mean').

    Shift invariant (it depends on the logits only through softmax), but at high temperature
    its gradient is :math:`\frac{2}{N^2 T^2}` times KD's: no ``T**2`` factor, and a scale of
    :math:`2/N^2`.
    """
    return F.mse_loss(F.softmax(student_logits / temperature, dim=-1),
                      F.softmax(teacher_logits / temperature, dim=-1))


def logits_matching_uncentred(student_logits, teacher_logits, temperature):
    r""":math:`\frac{1}{2N}\|z - v\|^2` averaged over the batch, ignoring ``temperature``.

    Not shift invariant, and its gradient :math:`\frac{1}{BN}(z - v)` keeps the mean gap
    :math:`\langle z\rangle - \langle v\rangle` that KD's limit subtracts ([infinite-temperature]):
    its projection on KD's limit has scale exactly 1, its cosine is below 1.
    """
    return 0.5 * ((student_logits - teacher_logits) ** 2).mean(-1).mean()


def logits_matching_centred(student_logits, teacher_logits, temperature):
    r""":math:`\frac12\mathrm{Var}(z - v)` averaged over the batch: KD's :math:`T \to \infty` limit.

    The audit checks the high-temperature behaviour, so it accepts this loss, with a note that
    its gradient does not depend on ``temperature`` ([hinton-zero-mean], [equal-mean-suffices]).
    """
    difference = student_logits - teacher_logits
    centred = difference - difference.mean(-1, keepdim=True)
    return 0.5 * (centred**2).mean(-1).mean()


# --------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class GalleryExample:
    """One gallery loss and what :func:`verify.audit` must say about it.

    Parameters
    ==========

    function : callable
        The loss, ``function(student_logits, teacher_logits, temperature)``.
    verdict : str
        ``"consistent"`` or ``"inconsistent"``.
    causes : tuple of str
        The codes of :data:`verify.audit.CAUSES` the audit must name, in its order.
    shift_invariant : bool
    temperature_exponent : float or None
        The exponent ``a`` (``None`` where there is none to measure).
    limit_scale : callable or None
        ``limit_scale(classes=N, batch_size=B)``, the expected ``c``; ``None`` if not defined.
    limit_cosine_is_one : bool or None
        Whether the limit cosine is 1 (``None`` where undefined).
    """

    function: Callable
    verdict: str
    causes: tuple
    shift_invariant: bool
    temperature_exponent: float | None
    limit_scale: Callable | None
    limit_cosine_is_one: bool | None

    @property
    def name(self):
        return self.function.__name__

    @property
    def target(self):
        """``MODULE:FUNCTION``, for the command line."""
        return f"{__name__}:{self.name}"


def _one(*, classes, batch_size):
    return 1.0


def _examples(*entries):
    return {entry.name: entry for entry in entries}


#: Every gallery loss by name, with the audit's expected findings.
EXAMPLES = _examples(
    GalleryExample(kd_batchmean, "consistent", (), True, 0.0, _one, True),
    GalleryExample(kd_soft_cross_entropy, "consistent", (), True, 0.0, _one, True),
    GalleryExample(kd_missing_t_squared, "inconsistent", ("missing-temperature-factor",), True,
                   -2.0, _one, True),
    GalleryExample(kd_mean_reduction, "inconsistent", ("mean-reduction",), True, 0.0,
                   lambda *, classes, batch_size: 1.0 / classes, True),
    GalleryExample(kd_sum_reduction, "inconsistent", ("sum-reduction",), True, 0.0,
                   lambda *, classes, batch_size: float(batch_size), True),
    GalleryExample(kd_t_squared_one_path, "inconsistent", ("tensor-temperature-path",), True,
                   0.0, _one, True),
    GalleryExample(kd_capped_t_squared, "inconsistent", ("not-a-power-law",), True, None, None,
                   None),
    GalleryExample(kd_detached_student, "inconsistent", ("no-gradient",), True, None, None, None),
    GalleryExample(sigmoid_bce_distillation, "inconsistent",
                   ("not-shift-invariant", "uncentred-limit"), False, 0.0,
                   lambda *, classes, batch_size: classes / 4.0, False),
    GalleryExample(mse_on_probabilities, "inconsistent",
                   ("missing-temperature-factor", "constant-factor"), True, -2.0,
                   lambda *, classes, batch_size: 2.0 / classes**2, True),
    GalleryExample(logits_matching_uncentred, "inconsistent",
                   ("not-shift-invariant", "uncentred-limit", "temperature-ignored"), False, 0.0,
                   _one, False),
    GalleryExample(logits_matching_centred, "consistent", ("temperature-ignored",), True, 0.0,
                   _one, True),
)
