r"""The losses the checks train with, written directly in torch (independent of :mod:`derive`).

Every function takes logits of shape ``[..., N]`` and returns one value per example, shape
``[...]``; ``temperature`` is a number or a tensor of shape ``[...]`` (one per example).

* :func:`kd_loss`, :math:`L_{KD} = T^2\,\mathrm{KL}(p\,\|\,q)` with :math:`q = \mathrm{softmax}(z/T)`,
  :math:`p = \mathrm{softmax}(v/T)`, and its shift invariant relatives (:func:`hard_cross_entropy`,
  :func:`soft_cross_entropy`, :func:`label_smoothing_cross_entropy`, :func:`kd_mixture`);
* :func:`logits_matching_loss`, :math:`L_{LM} = \frac{1}{2N}\|z - v\|^2`, and
  :func:`infinite_temperature_limit`, :math:`L_{LM} - \frac12(\langle z\rangle - \langle v\rangle)^2`;
* the control :func:`sigmoid_bce_distillation_loss`, which is not shift invariant.

:class:`Objective` wraps one of them with what the tolerances need to know about it.

Examples
========

>>> import torch
>>> student = torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64)
>>> teacher = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
>>> float(logits_matching_loss(student, teacher))
0.25
>>> limit = infinite_temperature_limit(student, teacher)
>>> kd = kd_loss(student, teacher, temperature=1e4)
>>> bool(abs(kd - limit) < 1e-3)
True
"""

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "kd_loss", "hard_cross_entropy", "soft_cross_entropy", "label_smoothing_cross_entropy",
    "kd_mixture", "logits_matching_loss", "infinite_temperature_limit",
    "sigmoid_bce_distillation_loss", "DistillationProblem", "Objective", "OBJECTIVES",
    "CONTROL_OBJECTIVES",
]


def _per_example(temperature, like):
    """``temperature`` as a tensor broadcastable against ``[..., N]`` (one value per example)."""
    temperature = torch.as_tensor(temperature, dtype=like.dtype, device=like.device)
    return temperature.unsqueeze(-1) if temperature.ndim else temperature


def kd_loss(student_logits, teacher_logits, *, temperature):
    r""":math:`T^2\,\mathrm{KL}(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/T))` per example."""
    temperature = _per_example(temperature, student_logits)
    student_log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probabilities = F.log_softmax(teacher_logits / temperature, dim=-1)
    divergence = F.kl_div(student_log_probabilities, teacher_log_probabilities,
                          reduction="none", log_target=True).sum(-1)
    return temperature.squeeze(-1) ** 2 * divergence


def soft_cross_entropy(student_logits, targets, *, temperature=1.0):
    r""":math:`-\sum_i t_i \log \mathrm{softmax}(z/T)_i` per example, for soft targets ``t``."""
    temperature = _per_example(temperature, student_logits)
    return -(targets * F.log_softmax(student_logits / temperature, dim=-1)).sum(-1)


def hard_cross_entropy(student_logits, labels, *, temperature=1.0):
    r""":math:`-\log \mathrm{softmax}(z/T)_y` per example, for integer labels ``y``."""
    temperature = _per_example(temperature, student_logits)
    log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    return -log_probabilities.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def label_smoothing_cross_entropy(student_logits, labels, *, smoothing, temperature=1.0):
    r"""Cross-entropy against :math:`(1 - s)\,e_y + s/N` per example."""
    classes = student_logits.shape[-1]
    one_hot = F.one_hot(labels, classes).to(student_logits.dtype)
    targets = (1 - smoothing) * one_hot + smoothing / classes
    return soft_cross_entropy(student_logits, targets, temperature=temperature)


def kd_mixture(student_logits, teacher_logits, labels, *, temperature, weight):
    r""":math:`\alpha\,\mathrm{CE}(z, y) + (1 - \alpha)\,L_{KD}(z, v; T)`, ``weight`` being
    :math:`\alpha`."""
    return (weight * hard_cross_entropy(student_logits, labels)
            + (1 - weight) * kd_loss(student_logits, teacher_logits, temperature=temperature))


def logits_matching_loss(student_logits, teacher_logits):
    r""":math:`L_{LM} = \frac{1}{2N}\|z - v\|^2` per example."""
    return 0.5 * ((student_logits - teacher_logits) ** 2).mean(-1)


def infinite_temperature_limit(student_logits, teacher_logits):
    r""":math:`L_{LM} - \frac12(\langle z\rangle - \langle v\rangle)^2 = \frac12\mathrm{Var}(z - v)`,
    the :math:`T \to \infty` limit of :func:`kd_loss` ([infinite-temperature])."""
    mean_gap = student_logits.mean(-1) - teacher_logits.mean(-1)
    return logits_matching_loss(student_logits, teacher_logits) - 0.5 * mean_gap**2


def sigmoid_bce_distillation_loss(student_logits, teacher_logits, *, temperature):
    r""":math:`T^2 \sum_i \mathrm{BCE}(\sigma(z_i/T), \sigma(v_i/T))`: per-class sigmoids, not
    shift invariant (a control for [zero-mean-gradient])."""
    temperature = _per_example(temperature, student_logits)
    targets = torch.sigmoid(teacher_logits / temperature)
    elementwise = F.binary_cross_entropy_with_logits(student_logits / temperature, targets,
                                                     reduction="none")
    return temperature.squeeze(-1) ** 2 * elementwise.sum(-1)


@dataclass(frozen=True)
class DistillationProblem:
    """A batch of distillation inputs: logits ``[B, N]``, labels ``[B]``, soft targets ``[B, N]``,
    temperatures ``[B]``."""

    student: torch.Tensor
    teacher: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    temperature: torch.Tensor

    @property
    def classes(self):
        return self.student.shape[-1]

    def with_student(self, student):
        """The same problem with other student logits (for instance leaves that need grad)."""
        return DistillationProblem(student, self.teacher, self.labels, self.targets,
                                   self.temperature)

    def describe(self, index=0, *, digits=4, limit=8):
        """One example of the batch, in words (vectors cut after ``limit`` entries)."""
        def vector(tensor):
            values = [f"{float(x):.{digits}g}" for x in tensor[index][:limit]]
            return "[" + ", ".join(values) + (", ...]" if self.classes > limit else "]")
        return (f"T={float(self.temperature[index]):.{digits}g}, {self.classes} classes, "
                f"student {vector(self.student)}, teacher {vector(self.teacher)}")


@dataclass(frozen=True)
class Objective:
    r"""A loss of a :class:`DistillationProblem`, with what its tolerance needs.

    ``gradient_magnitude(problem)`` is :math:`\sum_i m_i` per example, the summed size of the
    intermediates of its logit gradient (see :func:`verify.tolerances.class_sum_tolerance`);
    ``argument_magnitude(problem)`` the largest softmax (or sigmoid) argument size involved.
    """

    name: str
    shift_invariant: bool
    function: Callable
    gradient_magnitude: Callable
    argument_magnitude: Callable
    uses_labels: bool = False

    def __call__(self, problem):
        return self.function(problem)

    def __repr__(self):
        return f"Objective({self.name!r})"


def _max_abs(tensor):
    return tensor.abs().amax(-1)


def _arguments(problem, temperature):
    return (_max_abs(problem.student) + _max_abs(problem.teacher)) / temperature


def _two_over(temperature):
    return lambda problem: 2.0 / (problem.temperature if temperature is None else temperature)


_MIXTURE_WEIGHT = 0.3
_SMOOTHING = 0.1

#: The shift invariant objectives of [zero-mean-gradient], by name (L_KD first: searches for
#: counterexamples shrink towards the first).
OBJECTIVES = {
    "kd": Objective(
        "kd", True,
        lambda p: kd_loss(p.student, p.teacher, temperature=p.temperature),
        lambda p: 2.0 * p.temperature, lambda p: _arguments(p, p.temperature)),
    "hard-ce": Objective(
        "hard-ce", True,
        lambda p: hard_cross_entropy(p.student, p.labels, temperature=p.temperature),
        _two_over(None), lambda p: _arguments(p, p.temperature), uses_labels=True),
    "soft-ce": Objective(
        "soft-ce", True,
        lambda p: soft_cross_entropy(p.student, p.targets, temperature=p.temperature),
        _two_over(None), lambda p: _arguments(p, p.temperature)),
    "kd-mixture": Objective(
        "kd-mixture", True,
        lambda p: kd_mixture(p.student, p.teacher, p.labels, temperature=p.temperature,
                             weight=_MIXTURE_WEIGHT),
        lambda p: 2.0 * (_MIXTURE_WEIGHT + (1 - _MIXTURE_WEIGHT) * p.temperature),
        lambda p: _arguments(p, torch.clamp(p.temperature, max=1.0)), uses_labels=True),
    "label-smoothing": Objective(
        "label-smoothing", True,
        lambda p: label_smoothing_cross_entropy(p.student, p.labels, smoothing=_SMOOTHING,
                                                temperature=p.temperature),
        _two_over(None), lambda p: _arguments(p, p.temperature), uses_labels=True),
}

#: The controls that are not shift invariant: [zero-mean-gradient] must fail for them.
CONTROL_OBJECTIVES = {
    "sigmoid-bce": Objective(
        "sigmoid-bce", False,
        lambda p: sigmoid_bce_distillation_loss(p.student, p.teacher, temperature=p.temperature),
        lambda p: 2.0 * p.temperature * p.classes, lambda p: _arguments(p, p.temperature)),
    "logits-matching": Objective(
        "logits-matching", False,
        lambda p: logits_matching_loss(p.student, p.teacher),
        lambda p: (p.student.abs() + p.teacher.abs()).mean(-1) + 0 * p.temperature,
        lambda p: 0 * p.temperature),
}
