r"""The low-temperature side of the regime report: how close KD's gradient is to the
perceptron update, and the temperature gradient.

At low temperature KD's logit gradient divided by :math:`T` tends to the perceptron update
:math:`1_A/|A| - 1_B/|B|` ([low-temperature-perceptron]); at high temperature it tends to the
logits-matching gradient :math:`G_0` ([infinite-temperature]). Per temperature,
:func:`axis_measures` gives, per example, the cosine of KD's gradient with each of the two
limits and :math:`\partial L_{KD}/\partial T` (autograd, ``T`` a leaf tensor);
:func:`crossover_temperature` finds where the two cosines' medians cross (log-linear
interpolation): below it KD is closer to the perceptron, above it to logits matching.

Examples
========

>>> import torch
>>> student = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
>>> teacher = torch.tensor([[0.0, 1.0, -1.0]], dtype=torch.float64)
>>> perceptron_updates(student, teacher).tolist()
[[1.0, -1.0, 0.0]]
>>> measures = axis_measures(student, teacher, 0.01)
>>> round(measures["perceptron_cosine"][0], 6)
1.0
>>> crossover_temperature([0.1, 1.0, 10.0], [0.9, 0.5, 0.1], [0.1, 0.5, 0.9])
1.0
"""

import math

import torch

from .losses import kd_loss

__all__ = ["perceptron_updates", "axis_measures", "crossover_temperature", "mark_regimes"]


def perceptron_updates(student, teacher):
    r""":math:`1_A/|A| - 1_B/|B|` per example, ``[B, N]`` (ties: means over the tied classes)."""
    student_top = (student == student.amax(-1, keepdim=True)).to(student.dtype)
    teacher_top = (teacher == teacher.amax(-1, keepdim=True)).to(teacher.dtype)
    return student_top / student_top.sum(-1, keepdim=True) - teacher_top / teacher_top.sum(
        -1, keepdim=True
    )


def _cosines(first, second):
    norms = first.norm(dim=-1) * second.norm(dim=-1)
    inner = (first * second).sum(-1)
    return torch.where(norms > 0, inner / norms, torch.full_like(inner, math.nan))


def axis_measures(student, teacher, temperature, logits_matching=None):
    r"""``{"perceptron_cosine", "logits_matching_cosine", "temperature_gradient"}``: lists over
    the batch (``nan`` where a cosine is undefined: the argmaxes agree, or a zero gradient)."""
    leaf = student.detach().clone().requires_grad_(True)
    # One leaf temperature per example, so that autograd gives each example's dL/dT.
    heat = torch.full(
        (student.shape[0],), float(temperature), dtype=student.dtype, requires_grad=True
    )
    losses = kd_loss(leaf, teacher, temperature=heat)
    gradient, by_temperature = torch.autograd.grad(losses.sum(), (leaf, heat))
    per_example = by_temperature.tolist()
    measures = {
        "perceptron_cosine": _cosines(gradient, perceptron_updates(student, teacher)).tolist(),
        "temperature_gradient": per_example,
    }
    if logits_matching is not None:
        measures["logits_matching_cosine"] = _cosines(gradient, logits_matching).tolist()
    return measures


def crossover_temperature(temperatures, perceptron, logits_matching):
    """The temperature where the median cosines with the perceptron update and with logits
    matching are equal, interpolated linearly in ``log T`` between the first pair of
    temperatures where their difference changes sign; ``None`` if it never does."""
    points = [
        (t, p - m)
        for t, p, m in zip(temperatures, perceptron, logits_matching)
        if p is not None and m is not None and not (math.isnan(p) or math.isnan(m))
    ]
    points.sort()
    for (t0, d0), (t1, d1) in zip(points, points[1:]):
        if d0 == 0:
            return t0
        if d0 * d1 < 0:
            share = d0 / (d0 - d1)
            return math.exp(math.log(t0) + share * (math.log(t1) - math.log(t0)))
    if points and points[-1][1] == 0:
        return points[-1][0]
    return None


def mark_regimes(axes, temperatures, perceptron, logits_matching, crossover):
    """Draw the two cosines on a second y axis and shade the two regimes either side of the
    crossover."""
    other = axes.twinx()
    other.semilogx(temperatures, perceptron, "^-", color="C2", label="cos(grad, perceptron update)")
    other.semilogx(temperatures, logits_matching, "v-", color="C3", label="cos(grad, G_0)")
    other.set_ylabel("cosine (median)")
    other.set_ylim(-1.05, 1.05)
    low, high = min(temperatures), max(temperatures)
    if crossover is not None:
        axes.axvspan(low, crossover, color="C2", alpha=0.08, label="perceptron regime")
        axes.axvspan(crossover, high, color="C3", alpha=0.08, label="logits-matching regime")
        axes.axvline(crossover, color="C2", linestyle="--", label=f"crossover T = {crossover:.3g}")
    other.legend(fontsize=7, loc="lower right")
    return other
