r"""The per-step measurements of :class:`~verify.monitor.KDMonitor`, batched over the examples.

For a batch of student logits :math:`z` and teacher logits :math:`v` (rows ``[M, N]``) at
temperature :math:`T`, :func:`measure_batch` computes, with a few batched passes over the
detached logits in their own dtype:

* the **logit-mean gap** :math:`\langle z\rangle - \langle v\rangle` per example, absolute and
  relative to the logits' spread :math:`R = \max(\mathrm{range}(z), \mathrm{range}(v))`,
  against its round-off floor (:func:`gap_floor`); it is the size of the regularizer
  :math:`-\tfrac12(\langle z\rangle - \langle v\rangle)^2` of [infinite-temperature];
* :math:`T` against the **convergence radius** :math:`R/\pi` of the batch
  ([convergence-radius], :math:`R` the larger range of the two logit vectors) and the
  certified bound on the gradient's remainder after its first term at the batch's worst
  example (:func:`derive.bounds.uniform_remainder_bound`, which needs only :math:`R` and
  :math:`T`);
* the **cosines** between KD's logit gradient :math:`T(q - p)` and the centred
  logits-matching gradient :math:`G_0 = [(z - v) - (\langle z\rangle - \langle v\rangle)]/N`
  (its :math:`T\to\infty` limit, [infinite-temperature]), and the perceptron update
  :math:`e_a - e_b` (its :math:`T\to 0` limit divided by :math:`T`,
  [low-temperature-perceptron]; ties: the mean over the tied classes), each over the whole
  batch (the gradients flattened).

Examples
========

>>> import torch
>>> teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.3, -0.2]], dtype=torch.float64)
>>> measures = measure_batch(teacher.flip(-1), teacher, 100.0)
>>> measures.gap_floor_ratio < 1, round(measures.cosine_logits_matching, 6)
(True, 1.0)
>>> round(measure_batch(teacher.flip(-1), teacher, 0.01).cosine_perceptron, 6)
1.0
>>> round(measures.temperature_over_radius, 1)      # R = 3: T / (R / pi)
104.7
"""

import math
from dataclasses import dataclass

import torch

from derive.bounds import uniform_remainder_bound

from .._errors import check_argument
from ..tolerances import rounding_bound

__all__ = ["BatchMeasures", "flatten_logits", "gap_floor", "measure_batch", "perceptron_update"]

#: Roundings on the chain of one logit mean, besides the head's dot product (``features``
#: roundings) and the class sum (``classes``): the bias addition and the division by N.
MEAN_CHAIN_OPERATIONS = 2


@dataclass(frozen=True)
class BatchMeasures:
    """What :func:`measure_batch` measured on one batch (``None`` where undefined)."""

    examples: int
    classes: int
    gap_median: float
    gap_max: float
    gap_relative_median: float
    gap_relative_max: float
    gap_floor_ratio: float
    radius_temperature: float
    temperature_over_radius: float | None
    inside_radius: float
    remainder_bound: float | None
    remainder_bound_relative: float | None
    cosine_logits_matching: float | None
    cosine_perceptron: float | None


def flatten_logits(student, teacher, mask=None):
    """Rows ``[M, N]`` of detached logits from ``[B, N]`` or ``[B, L, N]`` tensors (no copy
    unless ``mask``, ``[B]`` or ``[B, L]`` bool, keeps only some rows)."""
    check_argument(
        isinstance(student, torch.Tensor) and isinstance(teacher, torch.Tensor),
        "student and teacher logits must be torch tensors, got {} and {}",
        type(student).__name__,
        type(teacher).__name__,
    )
    check_argument(
        student.shape == teacher.shape and student.dim() in (2, 3) and student.shape[-1] >= 2,
        "student and teacher logits must have the same shape [B, N] or [B, L, N] with N >= 2, "
        "got {} and {}",
        tuple(student.shape),
        tuple(teacher.shape),
    )
    check_argument(
        student.dtype.is_floating_point and teacher.dtype.is_floating_point,
        "logits must be floating point, got {} and {}",
        student.dtype,
        teacher.dtype,
    )
    classes = student.shape[-1]
    z = student.detach().reshape(-1, classes)
    v = teacher.detach().reshape(-1, classes)
    if mask is not None:
        check_argument(
            isinstance(mask, torch.Tensor) and tuple(mask.shape) == tuple(student.shape[:-1]),
            "mask must be a tensor of shape {} (the logits' shape without N), got {}",
            tuple(student.shape[:-1]),
            tuple(getattr(mask, "shape", ())) or type(mask).__name__,
        )
        keep = mask.detach().reshape(-1).to(device=z.device, dtype=torch.bool)
        z, v = z[keep], v[keep]
    check_argument(z.shape[0] >= 1, "the mask keeps no example; at least one is needed")
    if z.dtype != v.dtype:
        common = torch.promote_types(z.dtype, v.dtype)
        z, v = z.to(common), v.to(common)
    return z, v


def gap_floor(magnitude, *, dtype, classes, features=0):
    r"""Round-off floor of :math:`|\langle z\rangle - \langle v\rangle|` for logits that were
    computed in ``dtype`` by heads whose means are equal in exact arithmetic; ``magnitude`` is
    :math:`\max_i|z_i| + \max_i|v_i|` (a float or a tensor of one per example).

    Each mean is a dot product of ``features`` terms plus a bias (``features + 1`` roundings),
    the class sum (``classes - 1``) and the division (1), then the difference (1):
    ``features + classes + 2`` roundings of quantities as large as the logits. The floor is
    :math:`\varepsilon\,(F + N + 2)\,(\max_i|z_i| + \max_i|v_i|)`; a head whose summands
    cancel far below the logits' size needs ``features`` raised accordingly.

    >>> import torch
    >>> gap_floor(2.0, dtype=torch.float32, classes=10, features=16)   # eps * 28 * 2
    6.67572021484375e-06
    """
    operations = features + classes + MEAN_CHAIN_OPERATIONS
    return rounding_bound(dtype=dtype, operations=operations, magnitude=magnitude)


def perceptron_update(student, teacher):
    r"""The limit of KD's logit gradient divided by :math:`T` as :math:`T\to 0`:
    :math:`e_a - e_b`, :math:`a = \arg\max z`, :math:`b = \arg\max v`, a tie replaced by the
    mean over the tied classes ([low-temperature-perceptron]).

    >>> import torch
    >>> perceptron_update(torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([[0.0, 2.0, 2.0]]))
    tensor([[ 1.0000, -0.5000, -0.5000]])
    """
    top_student = (student == student.amax(dim=-1, keepdim=True)).to(student.dtype)
    top_teacher = (teacher == teacher.amax(dim=-1, keepdim=True)).to(teacher.dtype)
    return top_student / top_student.sum(-1, keepdim=True) - top_teacher / top_teacher.sum(
        -1, keepdim=True
    )


def _workspace_buffer(workspace, shape, like):
    """A ``[*shape]`` tensor of ``like``'s dtype and device: the one kept in ``workspace`` (a
    dict the caller keeps between steps) when it fits, else a new one, kept there. Large
    temporaries freed and allocated again at every step cost the page faults of fresh memory,
    several times the arithmetic on them."""
    key = (tuple(shape), like.dtype, like.device)
    if workspace is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    if workspace.get("key") != key:
        workspace["key"] = key
        workspace["buffer"] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return workspace["buffer"]


def _top_indicator(logits, high, out):
    """``out`` = 1.0 where a row of ``logits`` reaches its maximum ``high``, else 0.0 (one pass,
    written in place)."""
    return torch.eq(logits, high[:, None], out=out)


def measure_batch(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float,
    *,
    mask: "torch.Tensor | None" = None,
    dtype: "torch.dtype | None" = None,
    features: int = 0,
    summand_sizes: tuple = (None, None),
    workspace: "dict | None" = None,
) -> BatchMeasures:
    """Measure one batch; ``dtype`` is the type the logits were computed in (for the floors;
    default: the student logits' own), ``features`` the head's input width (see
    :func:`gap_floor`), ``summand_sizes`` optional bounds per example (the logits' shape
    without N) on the size of the summands of the student's and the teacher's logits (from
    :class:`~verify.monitor.head.HeadMagnitude`), used where larger than the logits. Returns a
    :class:`BatchMeasures`. ``workspace``: a dict kept between calls, where the ``[5, M, N]``
    work buffer is kept (:class:`~verify.monitor.KDMonitor` keeps one).

    About 20 elementwise operations on ``[M, N]`` arrays in the logits' own dtype (no indexed
    reduction: the argmax is an indicator of each row's maximum, ties included) and one
    conversion of all the scalars to Python floats."""
    check_argument(
        isinstance(temperature, (int, float))
        and not isinstance(temperature, bool)
        and math.isfinite(temperature)
        and temperature > 0,
        "T must be a finite number > 0, got {!r}",
        temperature,
    )
    temperature = float(temperature)
    with torch.no_grad():
        z, v = flatten_logits(student, teacher, mask)
        if dtype is None:
            dtype = z.dtype
        examples, classes = z.shape
        # Class sums in the logits' dtype: their pairwise rounding is inside the floor's N.
        # From here on the vectors of one value per example are float64: the difference of
        # two float32 (or bfloat16) sums is exact there, so the measured gap carries only the
        # roundings its floor counts. The [M, N] passes below stay in the logits' dtype (the
        # cosines have no floor to meet).
        sum_z, sum_v = z.sum(-1).double(), v.sum(-1).double()
        high_z, high_v = z.amax(-1), v.amax(-1)
        low_z, low_v = z.amin(-1), v.amin(-1)
        check_argument(
            bool(torch.isfinite(sum_z + sum_v).all()),
            "logits must be finite (no NaN or inf)",
        )
        gap = (sum_z - sum_v) / classes
        absolute = gap.abs()
        ranges = torch.maximum(high_z - low_z, high_v - low_v).double()
        relative = torch.where(ranges > 0, absolute / ranges, torch.zeros_like(absolute))
        relative = torch.where((ranges == 0) & (absolute > 0), math.inf, relative)
        sizes = []
        for size, high, low in zip(summand_sizes, (high_z, high_v), (low_z, low_v)):
            largest = torch.maximum(high.abs(), low.abs()).double()
            if size is not None:
                size = size.reshape(-1).to(device=largest.device, dtype=torch.float64)
                if mask is not None:
                    size = size[mask.reshape(-1).to(device=size.device, dtype=torch.bool)]
                largest = torch.maximum(largest, size)
            sizes.append(largest)
        magnitude = sizes[0] + sizes[1]
        floor = gap_floor(magnitude, dtype=dtype, classes=classes, features=features)
        floor_ratio = torch.where(floor > 0, absolute / floor, absolute * math.inf)
        floor_ratio = floor_ratio.nan_to_num(nan=0.0, posinf=math.inf)

        # Three [M, N] gradients in one buffer, in the logits' dtype: KD's up to the factor T
        # (cosines do not see it), centred logits matching up to the factor 1/N, and the
        # perceptron update e_a - e_b (ties: the mean over the tied classes); two scratch rows.
        work = _workspace_buffer(workspace, (5, examples, classes), z)
        buffer = work[:3]
        kd, centred, update, scaled, top_teacher = work.unbind(0)
        torch.softmax(torch.div(z, temperature, out=scaled), -1, out=kd)
        torch.softmax(torch.div(v, temperature, out=scaled), -1, out=top_teacher)
        kd.sub_(top_teacher)
        torch.sub(z, v, out=centred).sub_(gap.to(z.dtype)[:, None])
        _top_indicator(v, high_v, top_teacher)
        _top_indicator(z, high_z, update)
        count_z, count_v = update.sum(-1), top_teacher.sum(-1)
        if bool(((count_z > 1) | (count_v > 1)).any()):
            update.div_(count_z[:, None])
            top_teacher.div_(count_v[:, None])
        update.sub_(top_teacher)
        flat = buffer.view(3, -1)
        norms = torch.linalg.vector_norm(flat, dim=1)
        products = torch.mv(flat[1:], flat[0])  # <centred, kd>, <update, kd>
        worst = ranges.argmax()
        leading = torch.linalg.vector_norm(centred[worst])
        inside = (temperature * math.pi > ranges).double().mean()
        # Every scalar of the record in one conversion (one device sync).
        (
            gap_median,
            gap_max,
            relative_median,
            relative_max,
            floor_ratio_max,
            logit_range,
            inside_radius,
            kd_norm,
            centred_norm,
            update_norm,
            dot_matching,
            dot_perceptron,
            leading,
        ) = torch.cat(
            [
                torch.stack(
                    [
                        absolute.median(),
                        absolute.max(),
                        relative.median(),
                        relative.max(),
                        floor_ratio.max(),
                        ranges[worst],
                        inside,
                    ]
                ),
                torch.cat([norms, products, leading[None]]).double(),
            ]
        ).tolist()
        radius = logit_range / math.pi
        cosine_matching = (
            dot_matching / (kd_norm * centred_norm) if kd_norm * centred_norm > 0 else None
        )
        cosine_perceptron = (
            dot_perceptron / (kd_norm * update_norm) if kd_norm * update_norm > 0 else None
        )
        bound = uniform_remainder_bound(logit_range, temperature, 1, quantity="gradient")
        relative_bound = None
        if bound is not None:
            bound = bound / math.sqrt(classes)  # the function bounds sqrt(N) times the norm
            leading /= classes
            relative_bound = bound / leading if leading > 0 else None
        return BatchMeasures(
            examples=examples,
            classes=classes,
            gap_median=gap_median,
            gap_max=gap_max,
            gap_relative_median=relative_median,
            gap_relative_max=relative_max,
            gap_floor_ratio=floor_ratio_max,
            radius_temperature=radius,
            temperature_over_radius=temperature / radius if radius > 0 else None,
            inside_radius=inside_radius,
            remainder_bound=bound,
            remainder_bound_relative=relative_bound,
            cosine_logits_matching=cosine_matching,
            cosine_perceptron=cosine_perceptron,
        )
