r"""Token sequences: how a loss over logits ``[B, L, N]`` weighs its tokens.

The reference is the mean over the real tokens: each of the :math:`M = \sum_b L_b` real tokens
(``mask`` True) weighs :math:`1/M`, padded positions nothing. :func:`measure_pattern` reads the
loss's own weights with one extra call: every real token gets the same student and teacher
logits, so that any per-token objective gives every real token the same gradient up to its
weight; the norms of the per-token gradients are the weights, relative to their mean
(padded positions keep random logits). :func:`classify` names the pattern together with the
overall scale :math:`s` the audit measures against the reference (with the pattern divided out):

=====================  =================================  ===================================
name                   weight of a real token             scale :math:`s`
=====================  =================================  ===================================
``token-mean``         :math:`1/M`                        1
``sequence-mean``      :math:`1/(B L_b)`                  1 (pattern :math:`\propto 1/L_b`)
``batch-normalized``   :math:`1/B`                        :math:`M/B`, the mean length
``token-sum``          1                                  :math:`M`
``position-mean``      :math:`1/(BL)`                     :math:`M/(BL)`
=====================  =================================  ===================================

and ``padding-included`` when padded positions get a gradient. The pattern is resolved to
:data:`~verify.tolerances.RESOLUTION_FACTOR` times the rounding of the reductions involved:
:math:`\varepsilon\,(BL + N + 10)` relative.

Examples
========

>>> lengths = torch.tensor([4, 2])
>>> weights = torch.tensor([[1.0] * 4, [1.0, 1.0, 0.0, 0.0]])
>>> padded = torch.tensor([[False] * 4, [False, False, True, True]])
>>> classify(weights, padded, lengths, 3.0, tolerance=1e-9, scale_tolerance=1e-6).name
'batch-normalized'
"""

from dataclasses import dataclass

import torch

from ..tolerances import RESOLUTION_FACTOR, SOFTMAX_CHAIN_OPERATIONS, machine_epsilon

__all__ = ["Normalization", "measure_pattern", "pattern_tolerance", "classify", "SCALES"]

# The temperature of the pattern probe: moderate, where every gradient is far from round-off.
_PATTERN_TEMPERATURE = 4.0


def pattern_tolerance(shape, dtype):
    """Relative resolution of the measured token weights."""
    batch, length, classes = shape
    return (
        RESOLUTION_FACTOR
        * machine_epsilon(dtype)
        * (batch * length + classes + SOFTMAX_CHAIN_OPERATIONS)
    )


def measure_pattern(probe, inputs):
    """``(weights [B, L], padded [B, L] bool)``: the per-token gradient norms with every real
    token equal, relative to their mean over the real tokens (0 where there is no gradient)."""
    real = (
        inputs.mask
        if inputs.mask is not None
        else torch.ones(inputs.student.shape[:2], dtype=torch.bool)
    )
    student, teacher = inputs.student.clone(), inputs.teacher.clone()
    student[real] = inputs.student[0, 0]
    teacher[real] = inputs.teacher[0, 0]
    gradient = probe.gradient(
        _PATTERN_TEMPERATURE,
        student=student.to(probe.student.device),
        teacher=teacher.to(probe.teacher.device),
    )
    norms = gradient.norm(dim=-1)
    mean = norms[real].mean()
    weights = norms / mean if float(mean) > 0 else torch.zeros_like(norms)
    return weights, ~real


@dataclass(frozen=True)
class Normalization:
    """The named normalization (``None`` if none fits), the scale relative to the mean over
    real tokens, whether padding gets a gradient (its largest weight relative to a real
    token's), and the weight pattern of the real tokens relative to their mean."""

    name: str | None
    scale: float
    padding: float
    pattern: torch.Tensor
    lengths: torch.Tensor
    uniform: bool = True
    per_sequence: bool = False

    @property
    def known(self):
        return self.name is not None


#: Scale of each uniform normalization relative to the mean over the real tokens.
SCALES = {
    "token-mean": lambda tokens, batch, positions: 1.0,
    "batch-normalized": lambda tokens, batch, positions: tokens / batch,
    "token-sum": lambda tokens, batch, positions: float(tokens),
    "position-mean": lambda tokens, batch, positions: tokens / positions,
}


def classify(weights, padded, lengths, scale, *, tolerance, scale_tolerance):
    """Name the pattern ``weights`` ``[B, L]`` (padded positions marked in ``padded``) with the
    measured ``scale`` (relative to the declared weight); ``tolerance`` is the resolution of
    the weights, ``scale_tolerance`` that of the scale."""
    batch, length = weights.shape
    real = ~padded
    padding = float(weights[padded].abs().max()) if bool(padded.any()) else 0.0
    pattern = weights[real]
    tokens = int(real.sum())
    sequence_weights = (tokens / (batch * lengths.to(torch.float64)))[:, None].expand(
        batch, length
    )[real]
    uniform = bool(((pattern - 1.0).abs() <= tolerance).all())
    per_sequence = bool(((pattern - sequence_weights).abs() <= tolerance).all())
    name = None
    if uniform:
        for candidate, value in SCALES.items():
            if abs(scale / value(tokens, batch, batch * length) - 1.0) <= scale_tolerance:
                name = candidate
                break
    elif per_sequence and abs(scale - 1.0) <= scale_tolerance:
        name = "sequence-mean"
    return Normalization(
        name,
        scale,
        padding if padding > tolerance else 0.0,
        weights,
        lengths,
        uniform,
        per_sequence,
    )
