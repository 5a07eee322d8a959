r"""Example distillation losses, written as users and papers do, with what the audit says.

Every function takes ``(student_logits, teacher_logits, temperature)``, logits ``[B, N]``
(``[B, L, N]`` for the token losses, which also take ``mask``; DKD also takes ``target``), and
returns a scalar tensor. :data:`EXAMPLES` maps each name to a :class:`GalleryExample`: the
function, the audit options it is audited with (a declared objective, a shape), the verdict
and causes (codes of :data:`verify.audit.CAUSES`) the audit must give it, and what it must
identify it as (objective, parameters, weight). The tests audit every entry;
``python -m verify audit verify.gallery:NAME`` shows one.

* Correct: :func:`kd_batchmean`; :func:`kd_soft_cross_entropy`, the soft-target
  cross-entropy form (its value grows like :math:`T^2 \log N`, its gradient is KD's);
  :func:`kd_with_loss_weight`, KD kept at weight :math:`1 - \alpha`, declared with ``--weight``;
  :func:`reverse_kl`, declared with ``--expect reverse-kl``.
* Other objectives, identified: :func:`kd_swapped_kl_div` (reverse KL by accident),
  :func:`gkd_generalized_jsd` (GKD's JSD_β), :func:`distillm_skew_kl` (DistiLLM's skew KL),
  :func:`dkd` (Decoupled KD, Zhao et al. 2022), :func:`kd_logit_standardization` (Sun et al.
  2024), :func:`kd_student_unsoftened` (a hot teacher by accident).
* Known objectives with known defects: :func:`dist_inter_class` (DIST's eps),
  :func:`kl_div_on_probabilities`, :func:`kl_div_log_target_on_probabilities`,
  :func:`kd_teacher_unsoftened`, :func:`kd_top_k_teacher`.
* Leading-order pitfalls: :func:`kd_missing_t_squared`, :func:`kd_mean_reduction`,
  :func:`kd_sum_reduction`, :func:`kd_t_squared_one_path`, :func:`kd_capped_t_squared`,
  :func:`kd_detached_student`, :func:`sigmoid_bce_distillation`, :func:`mse_on_probabilities`,
  :func:`logits_matching_uncentred`, :func:`logits_matching_centred`.
* Token sequences (``[B, L, N]``, padded): :func:`token_kd` (the mean over real tokens),
  :func:`token_kd_per_sequence`, :func:`token_kd_over_batch`, :func:`token_kd_sum`,
  :func:`token_kd_unmasked`.

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
>>> EXAMPLES["kd_sum_reduction"].expected_weight(classes=10, batch_size=16)
16.0
>>> EXAMPLES["dkd"].objective, EXAMPLES["dkd"].parameters
('dkd', (('alpha', 1.0), ('beta', 8.0)))
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "GalleryExample",
    "EXAMPLES",
    "kd_batchmean",
    "kd_soft_cross_entropy",
    "kd_with_loss_weight",
    "reverse_kl",
    "kd_swapped_kl_div",
    "gkd_generalized_jsd",
    "distillm_skew_kl",
    "dkd",
    "kd_logit_standardization",
    "kd_student_unsoftened",
    "dist_inter_class",
    "kl_div_on_probabilities",
    "kl_div_log_target_on_probabilities",
    "kd_teacher_unsoftened",
    "kd_top_k_teacher",
    "kd_missing_t_squared",
    "kd_mean_reduction",
    "kd_sum_reduction",
    "kd_t_squared_one_path",
    "kd_capped_t_squared",
    "kd_detached_student",
    "sigmoid_bce_distillation",
    "mse_on_probabilities",
    "logits_matching_uncentred",
    "logits_matching_centred",
    "token_kd",
    "token_kd_per_sequence",
    "token_kd_over_batch",
    "token_kd_sum",
    "token_kd_unmasked",
]


# --------------------------------------------------------------------------------------------
# Correct


def kd_batchmean(student_logits, teacher_logits, temperature):
    r"""The reference: :math:`T^2\,\mathrm{KL}(p\,\|\,q)`, averaged over the batch."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    divergence = F.kl_div(
        student_log_probabilities, teacher_log_probabilities, reduction="batchmean", log_target=True
    )
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
    return temperature**2 * F.kl_div(
        student_log_probabilities, teacher_probabilities, reduction="mean"
    )


def kd_sum_reduction(student_logits, teacher_logits, temperature):
    """``reduction='sum'`` adds over the batch: the gradient is ``B`` times too large."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        student_log_probabilities, teacher_probabilities, reduction="sum"
    )


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
    return (
        min(temperature, 1000.0) ** 2
        / temperature**2
        * kd_batchmean(student_logits, teacher_logits, temperature)
    )


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
    elementwise = F.binary_cross_entropy_with_logits(
        student_logits / temperature, teacher_probabilities, reduction="none"
    )
    return temperature**2 * elementwise.sum(-1).mean()


def mse_on_probabilities(student_logits, teacher_logits, temperature):
    r"""Mean squared error between the softened probabilities (``F.mse_loss``, 'mean').

    Shift invariant (it depends on the logits only through softmax), but at high temperature
    its gradient is :math:`\frac{2}{N^2 T^2}` times KD's: no ``T**2`` factor, and a scale of
    :math:`2/N^2`.
    """
    return F.mse_loss(
        F.softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
    )


def logits_matching_uncentred(student_logits, teacher_logits, temperature):
    r""":math:`\frac{1}{2N}\|z - v\|^2` averaged over the batch, ignoring ``temperature``.

    Not shift invariant, and its gradient :math:`\frac{1}{BN}(z - v)` keeps the mean gap
    :math:`\langle z\rangle - \langle v\rangle` that KD's limit subtracts ([infinite-temperature]):
    its projection on KD's limit has scale exactly 1, its cosine is below 1.
    """
    return 0.5 * ((student_logits - teacher_logits) ** 2).mean(-1).mean()


def logits_matching_centred(student_logits, teacher_logits, temperature):
    r""":math:`\frac12\mathrm{Var}(z - v)` averaged over the batch: KD's :math:`T \to \infty` limit.

    It agrees with KD to leading order ([hinton-zero-mean], [equal-mean-suffices]), but its
    gradient does not depend on ``temperature``: it lacks KD's :math:`1/T` terms, so the audit
    does not call it KD.
    """
    difference = student_logits - teacher_logits
    centred = difference - difference.mean(-1, keepdim=True)
    return 0.5 * (centred**2).mean(-1).mean()


# --------------------------------------------------------------------------------------------
# Correct when declared: a loss weight, an intended reverse KL


def kd_with_loss_weight(student_logits, teacher_logits, temperature, alpha=0.5):
    r""":math:`(1 - \alpha)\,T^2\,\mathrm{KL}(p\,\|\,q)`: KD kept at the weight it has in a
    hard-label mixture. Consistent when declared, ``--weight 0.5``; without it the audit names
    the constant factor."""
    return (1 - alpha) * kd_batchmean(student_logits, teacher_logits, temperature)


def reverse_kl(student_logits, teacher_logits, temperature):
    r"""Reverse KL, :math:`T^2\,\mathrm{KL}(q\,\|\,p)`, the mode-seeking direction (MiniLLM, Gu
    et al. 2024), written on purpose: consistent with ``--expect reverse-kl``."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    divergence = (
        student_log_probabilities.exp() * (student_log_probabilities - teacher_log_probabilities)
    ).sum(-1)
    return temperature**2 * divergence.mean()


# --------------------------------------------------------------------------------------------
# Other objectives, as their papers' code writes them


def kd_swapped_kl_div(student_logits, teacher_logits, temperature):
    r"""``F.kl_div`` with its arguments swapped: ``F.kl_div(input, target)`` computes
    :math:`\mathrm{KL}(\mathrm{target}\,\|\,e^{\mathrm{input}})`, so this is reverse KL,
    :math:`T^2\,\mathrm{KL}(q\,\|\,p)`. It agrees with KD at leading order and differs at
    :math:`1/T`."""
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    student_probabilities = F.softmax(student_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        teacher_log_probabilities, student_probabilities, reduction="batchmean"
    )


def gkd_generalized_jsd(student_logits, teacher_logits, temperature, beta=0.3):
    r"""GKD's generalized Jensen-Shannon divergence (Agarwal et al. 2024; TRL's
    ``generalized_jsd_loss``): the mixture
    :math:`\log m = \mathrm{logsumexp}(\log q + \log(1-\beta), \log p + \log\beta)`, then
    :math:`\beta\,\mathrm{KL}(p\|m) + (1-\beta)\,\mathrm{KL}(q\|m)`, here summed over the
    classes, averaged over the batch and scaled by :math:`T^2` like KD."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    beta = torch.tensor(beta, dtype=student_log_probabilities.dtype)
    mixture_log_probabilities = torch.logsumexp(
        torch.stack(
            [
                student_log_probabilities + torch.log(1 - beta),
                teacher_log_probabilities + torch.log(beta),
            ]
        ),
        dim=0,
    )
    kl_teacher = F.kl_div(
        mixture_log_probabilities, teacher_log_probabilities, reduction="none", log_target=True
    )
    kl_student = F.kl_div(
        mixture_log_probabilities, student_log_probabilities, reduction="none", log_target=True
    )
    jsd = beta * kl_teacher + (1 - beta) * kl_student
    return temperature**2 * jsd.sum(-1).mean()


def distillm_skew_kl(student_logits, teacher_logits, temperature, lam=0.1):
    r"""DistiLLM's skew KL (Ko et al. 2024, ``skewed_forward_kl``): the cross-entropy of the
    teacher against the mixture :math:`\lambda p + (1-\lambda) q`, i.e.
    :math:`\mathrm{KL}(p\,\|\,\lambda p + (1 - \lambda) q)` up to a constant, with
    :math:`\lambda = 0.1`, softened at ``T`` and scaled by :math:`T^2`."""
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    student_probabilities = F.softmax(student_logits / temperature, dim=-1)
    mixed_probabilities = lam * teacher_probabilities + (1 - lam) * student_probabilities
    mixed_log_probabilities = torch.log(mixed_probabilities)
    per_example = -(teacher_probabilities * mixed_log_probabilities).sum(-1)
    return temperature**2 * per_example.mean()


def _gt_mask(logits, target):
    return torch.zeros_like(logits).scatter_(1, target.reshape(-1).unsqueeze(1), 1).bool()


def _other_mask(logits, target):
    return torch.ones_like(logits).scatter_(1, target.reshape(-1).unsqueeze(1), 0).bool()


def _cat_mask(t, mask1, mask2):
    return torch.cat(
        [(t * mask1).sum(dim=1, keepdim=True), (t * mask2).sum(1, keepdim=True)], dim=1
    )


def dkd(student_logits, teacher_logits, temperature, target, alpha=1.0, beta=8.0):
    r"""Decoupled KD (Zhao et al., CVPR 2022), as its reference code (mdistiller) computes it:
    the target-class part TCKD on the binary distributions :math:`(p_g, 1 - p_g)` and the
    non-target part NCKD on the other classes (the label pushed out by
    ``- 1000 * gt_mask``), each ``F.kl_div(..., reduction='sum') * T**2 / B`` (the code's
    ``size_average=False``), weighted :math:`\alpha = 1`, :math:`\beta = 8`."""
    gt_mask = _gt_mask(student_logits, target)
    other_mask = _other_mask(student_logits, target)
    pred_student = F.softmax(student_logits / temperature, dim=1)
    pred_teacher = F.softmax(teacher_logits / temperature, dim=1)
    pred_student = _cat_mask(pred_student, gt_mask, other_mask)
    pred_teacher = _cat_mask(pred_teacher, gt_mask, other_mask)
    log_pred_student = torch.log(pred_student)
    tckd_loss = (
        F.kl_div(log_pred_student, pred_teacher, reduction="sum")
        * (temperature**2)
        / target.shape[0]
    )
    pred_teacher_part2 = F.softmax(teacher_logits / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(student_logits / temperature - 1000.0 * gt_mask, dim=1)
    nckd_loss = (
        F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction="sum")
        * (temperature**2)
        / target.shape[0]
    )
    return alpha * tckd_loss + beta * nckd_loss


def _normalize(logit):
    mean = logit.mean(dim=-1, keepdim=True)
    stdv = logit.std(dim=-1, keepdim=True)
    return (logit - mean) / (1e-7 + stdv)


def kd_logit_standardization(student_logits, teacher_logits, temperature):
    r"""KD on standardized logits (Sun et al., CVPR 2024, ``logit_stand``): both logits
    centred and divided by ``torch.std`` (the unbiased one, ``N - 1``) plus ``1e-7`` before the
    softmax at ``T``; KL summed over classes, averaged over the batch, times :math:`T^2`."""
    logits_student = _normalize(student_logits)
    logits_teacher = _normalize(teacher_logits)
    log_pred_student = F.log_softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)
    loss_kd = F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean()
    return loss_kd * temperature**2


def kd_student_unsoftened(student_logits, teacher_logits, temperature):
    r"""The temperature applied to the teacher only: the student's softmax stays at 1, so this
    is the registered ``hot-teacher`` objective (:math:`T_s = 1`) times :math:`T^2`, and the
    gradient grows like :math:`T^2`."""
    student_log_probabilities = F.log_softmax(student_logits, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        student_log_probabilities, teacher_probabilities, reduction="batchmean"
    )


# --------------------------------------------------------------------------------------------
# Known objectives with known defects


def _cosine_similarity(a, b, eps=1e-8):
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def _pearson_correlation(a, b, eps=1e-8):
    return _cosine_similarity(a - a.mean(1).unsqueeze(1), b - b.mean(1).unsqueeze(1), eps)


def dist_inter_class(student_logits, teacher_logits, temperature):
    r"""DIST's inter-class relation (Huang et al., NeurIPS 2022), as its code computes it:
    :math:`T^2\,[1 - \mathrm{pearson}(\mathrm{softmax}(z/T), \mathrm{softmax}(v/T))]` averaged over
    the batch, the correlation's denominator :math:`\|a\|\|b\| + 10^{-8}`. The centred softmaxes'
    norms fall like :math:`1/T`, so past some temperature the eps dominates the denominator."""
    y_s = (student_logits / temperature).softmax(dim=1)
    y_t = (teacher_logits / temperature).softmax(dim=1)
    return temperature**2 * (1 - _pearson_correlation(y_s, y_t).mean())


def kl_div_on_probabilities(student_logits, teacher_logits, temperature):
    """``F.kl_div`` given the student's probabilities where it expects log-probabilities."""
    student_probabilities = F.softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        student_probabilities, teacher_probabilities, reduction="batchmean"
    )


def kl_div_log_target_on_probabilities(student_logits, teacher_logits, temperature):
    """``log_target=True`` with the teacher's probabilities (not log-probabilities) as target."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        student_log_probabilities, teacher_probabilities, reduction="batchmean", log_target=True
    )


def kd_teacher_unsoftened(student_logits, teacher_logits, temperature):
    """The temperature applied to the student only: the teacher's softmax stays at 1."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits, dim=-1)
    return temperature**2 * F.kl_div(
        student_log_probabilities, teacher_probabilities, reduction="batchmean"
    )


def kd_top_k_teacher(student_logits, teacher_logits, temperature, k=5):
    """The teacher kept on its top ``k`` classes (a sparse teacher, as stored for LLM
    distillation), its softmax renormalized there, the other classes masked out."""
    values, indices = teacher_logits.topk(k, dim=-1)
    sparse = torch.full_like(teacher_logits, float("-inf")).scatter(-1, indices, values)
    teacher_probabilities = F.softmax(sparse / temperature, dim=-1)
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    per_class = torch.where(
        teacher_probabilities > 0,
        teacher_probabilities * (torch.log(teacher_probabilities) - student_log_probabilities),
        torch.zeros_like(teacher_probabilities),
    )
    return temperature**2 * per_class.sum(-1).mean()


# --------------------------------------------------------------------------------------------
# Token sequences: logits [B, L, N], mask [B, L] (True for real tokens)


def _token_kd(student_logits, teacher_logits, temperature):
    """KD per token, ``[B, L]``."""
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        student_log_probabilities, teacher_log_probabilities, reduction="none", log_target=True
    ).sum(-1)


def token_kd(student_logits, teacher_logits, temperature, mask):
    """KD per token, averaged over the real tokens: the reference for sequences."""
    per_token = _token_kd(student_logits, teacher_logits, temperature) * mask
    return per_token.sum() / mask.sum()


def token_kd_per_sequence(student_logits, teacher_logits, temperature, mask):
    """KD averaged over each sequence's real tokens, then over the batch."""
    per_token = _token_kd(student_logits, teacher_logits, temperature) * mask
    return (per_token.sum(-1) / mask.sum(-1)).mean()


def token_kd_over_batch(student_logits, teacher_logits, temperature, mask):
    """KD summed over the real tokens and divided by the batch size ("batchmean" on tokens)."""
    per_token = _token_kd(student_logits, teacher_logits, temperature) * mask
    return per_token.sum() / student_logits.shape[0]


def token_kd_sum(student_logits, teacher_logits, temperature, mask):
    """KD summed over the real tokens, not normalized."""
    return (_token_kd(student_logits, teacher_logits, temperature) * mask).sum()


def token_kd_unmasked(student_logits, teacher_logits, temperature):
    """KD over every position, padding included: it takes no mask, and flattens the tokens
    into ``F.kl_div(..., reduction='batchmean')``."""
    classes = student_logits.shape[-1]
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher_logits / temperature, dim=-1)
    return temperature**2 * F.kl_div(
        student_log_probabilities.reshape(-1, classes),
        teacher_probabilities.reshape(-1, classes),
        reduction="batchmean",
    )


# --------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class GalleryExample:
    """One gallery loss and what :func:`verify.audit` must say about it.

    Parameters
    ==========

    function : callable
        The loss.
    verdict : str
        ``"consistent"`` or ``"inconsistent"``, under ``options``.
    causes : tuple of str
        The codes of :data:`verify.audit.CAUSES` the audit must name, in its order.
    objective : str
        What the audit must identify the loss as: a name of :data:`derive.OBJECTIVES`, or
        ``"unknown"``.
    parameters : tuple
        ``((name, value), ...)``: the fitted parameters (numbers within 5 %), or a known
        defect's parameter.
    weight : float, callable or None
        The identified weight (within 2 %); a callable takes ``classes=`` and ``batch_size=``.
    options : tuple
        ``((keyword, value), ...)`` for :func:`verify.audit.audit`: a declaration
        (``expect``, ``weight``), a shape (``batch_size``, ``sequence_length``, ``mask``).
    defect : str or None
        The known defect the audit must name.
    normalization : str or None
        For token sequences, the normalization the audit must name.
    shift_invariant, temperature_exponent, limit_scale, limit_cosine_is_one
        The leading-order measurements (``None`` where not checked); ``limit_scale`` takes
        ``classes=`` and ``batch_size=``.
    """

    function: Callable
    verdict: str
    causes: tuple
    objective: str = "kl"
    parameters: tuple = ()
    weight: object = 1.0
    options: tuple = ()
    defect: str | None = None
    normalization: str | None = None
    shift_invariant: bool = True
    temperature_exponent: float | None = None
    limit_scale: Callable | None = None
    limit_cosine_is_one: bool | None = None

    @property
    def name(self):
        return self.function.__name__

    @property
    def target(self):
        """``MODULE:FUNCTION``, for the command line."""
        return f"{__name__}:{self.name}"

    def expected_weight(self, *, classes, batch_size):
        """The weight the audit must identify, at this shape (``None``: not checked)."""
        if callable(self.weight):
            return self.weight(classes=classes, batch_size=batch_size)
        return self.weight


def _one(*, classes, batch_size):
    return 1.0


def _examples(*entries):
    return {entry.name: entry for entry in entries}


_SEQUENCES = (("batch_size", 4), ("sequence_length", 6), ("mask", True))
_OTHER = ("other-objective",)


#: Every gallery loss by name, with the audit's expected findings.
EXAMPLES = _examples(
    # correct
    GalleryExample(
        kd_batchmean,
        "consistent",
        (),
        temperature_exponent=0.0,
        limit_scale=_one,
        limit_cosine_is_one=True,
    ),
    GalleryExample(
        kd_soft_cross_entropy,
        "consistent",
        (),
        temperature_exponent=0.0,
        limit_scale=_one,
        limit_cosine_is_one=True,
    ),
    GalleryExample(kd_with_loss_weight, "consistent", (), weight=0.5, options=(("weight", 0.5),)),
    GalleryExample(reverse_kl, "consistent", (), "reverse-kl", options=(("expect", "reverse-kl"),)),
    # other objectives
    GalleryExample(
        kd_swapped_kl_div,
        "inconsistent",
        ("swapped-kl-arguments",),
        "reverse-kl",
        temperature_exponent=0.0,
        limit_scale=_one,
        limit_cosine_is_one=True,
    ),
    GalleryExample(gkd_generalized_jsd, "inconsistent", _OTHER, "jsd", (("beta", 0.3),)),
    GalleryExample(distillm_skew_kl, "inconsistent", _OTHER, "skew-kl", (("alpha", 0.1),)),
    GalleryExample(dkd, "inconsistent", _OTHER, "dkd", (("alpha", 1.0), ("beta", 8.0))),
    GalleryExample(
        kd_logit_standardization, "inconsistent", _OTHER, "standardized-kl", (("std", "unbiased"),)
    ),
    GalleryExample(
        kd_student_unsoftened,
        "inconsistent",
        ("one-sided-temperature",),
        "hot-teacher",
        (("student_temperature", 1.0),),
        temperature_exponent=2.0,
    ),
    # known defects
    GalleryExample(
        dist_inter_class,
        "inconsistent",
        ("eps-denominator", "temperature-power"),
        "dist",
        (("eps", 1e-8),),
        defect="eps-denominator",
    ),
    GalleryExample(
        kl_div_on_probabilities,
        "inconsistent",
        ("kl-div-probabilities",),
        defect="kl-div-probabilities",
    ),
    GalleryExample(
        kl_div_log_target_on_probabilities,
        "inconsistent",
        ("log-target-probabilities",),
        defect="log-target-probabilities",
    ),
    GalleryExample(
        kd_teacher_unsoftened,
        "inconsistent",
        ("one-sided-temperature",),
        defect="one-sided-temperature",
    ),
    GalleryExample(
        kd_top_k_teacher,
        "inconsistent",
        ("top-k-teacher",),
        "kl",
        (("k", 5),),
        defect="top-k-teacher",
    ),
    # leading-order pitfalls
    GalleryExample(
        kd_missing_t_squared,
        "inconsistent",
        ("missing-temperature-factor",),
        temperature_exponent=-2.0,
        limit_scale=_one,
        limit_cosine_is_one=True,
    ),
    GalleryExample(
        kd_mean_reduction,
        "inconsistent",
        ("mean-reduction",),
        weight=lambda *, classes, batch_size: 1.0 / classes,
        temperature_exponent=0.0,
        limit_scale=lambda *, classes, batch_size: 1.0 / classes,
        limit_cosine_is_one=True,
    ),
    GalleryExample(
        kd_sum_reduction,
        "inconsistent",
        ("sum-reduction",),
        weight=lambda *, classes, batch_size: float(batch_size),
        temperature_exponent=0.0,
        limit_scale=lambda *, classes, batch_size: float(batch_size),
        limit_cosine_is_one=True,
    ),
    GalleryExample(
        kd_t_squared_one_path,
        "inconsistent",
        ("tensor-temperature-path",),
        temperature_exponent=0.0,
        limit_scale=_one,
        limit_cosine_is_one=True,
    ),
    GalleryExample(kd_capped_t_squared, "inconsistent", ("not-a-power-law",)),
    GalleryExample(kd_detached_student, "inconsistent", ("no-gradient",), "unknown", (), None),
    GalleryExample(
        sigmoid_bce_distillation,
        "inconsistent",
        ("not-shift-invariant", "uncentred-limit"),
        "unknown",
        (),
        None,
        shift_invariant=False,
        temperature_exponent=0.0,
        limit_scale=lambda *, classes, batch_size: classes / 4.0,
        limit_cosine_is_one=False,
    ),
    GalleryExample(
        mse_on_probabilities,
        "inconsistent",
        ("missing-temperature-factor", "constant-factor"),
        "unknown",
        (),
        None,
        temperature_exponent=-2.0,
        limit_scale=lambda *, classes, batch_size: 2.0 / classes**2,
        limit_cosine_is_one=True,
    ),
    GalleryExample(
        logits_matching_uncentred,
        "inconsistent",
        ("not-shift-invariant", "other-objective", "temperature-ignored"),
        "logits-matching",
        (),
        1.0,
        shift_invariant=False,
        temperature_exponent=0.0,
        limit_scale=_one,
        limit_cosine_is_one=False,
    ),
    GalleryExample(
        logits_matching_centred,
        "inconsistent",
        ("other-objective", "temperature-ignored"),
        "centred-logits-matching",
        (),
        1.0,
        temperature_exponent=0.0,
        limit_scale=_one,
        limit_cosine_is_one=True,
    ),
    # token sequences
    GalleryExample(token_kd, "consistent", (), options=_SEQUENCES, normalization="token-mean"),
    GalleryExample(
        token_kd_per_sequence,
        "inconsistent",
        ("sequence-mean",),
        options=_SEQUENCES,
        normalization="sequence-mean",
    ),
    GalleryExample(
        token_kd_over_batch,
        "inconsistent",
        ("batch-normalized",),
        weight=None,
        options=_SEQUENCES,
        normalization="batch-normalized",
    ),
    GalleryExample(
        token_kd_sum,
        "inconsistent",
        ("token-sum",),
        weight=None,
        options=_SEQUENCES,
        normalization="token-sum",
    ),
    GalleryExample(
        token_kd_unmasked,
        "inconsistent",
        ("padding-included", "position-mean"),
        weight=None,
        options=_SEQUENCES,
        normalization="position-mean",
    ),
)
