r"""The losses the checks train with, written directly in torch (independent of :mod:`derive`).

Every function takes logits of shape ``[..., N]`` and returns one value per example, shape
``[...]``; ``temperature`` is a number or a tensor of shape ``[...]`` (one per example).

* :data:`TWINS`: one torch *twin* of every objective of :data:`derive.OBJECTIVES`, under the
  same name, registered where it is written (:func:`twin`). The twins are the check: they
  share no code with the sympy definitions their terms come from.
* :func:`kd_loss`, :math:`L_{KD} = T^2\,\mathrm{KL}(p\,\|\,q)`, and the other shift invariant
  losses the zero-mean checks use (:func:`hard_cross_entropy`, :func:`soft_cross_entropy`,
  :func:`label_smoothing_cross_entropy`);
* :func:`logits_matching_loss`, :math:`L_{LM} = \frac{1}{2N}\|z - v\|^2`, and
  :func:`infinite_temperature_limit`,
  :math:`L_{LM} - \frac12(\langle z\rangle - \langle v\rangle)^2`;
* the control :func:`sigmoid_bce_distillation_loss`, which is not shift invariant.

:class:`Loss` wraps one of them with what the tolerances need to know about it: the size of
the intermediates of its logit gradient, which :func:`probed_magnitudes` measures for any loss
that sees the student through :func:`student_log_softmax`.

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
>>> sorted(TWINS) == sorted(__import__("derive").OBJECTIVES)
True
"""

import contextlib
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import torch
import torch.nn.functional as F

from derive import OBJECTIVES

__all__ = [
    "kd_loss",
    "hard_cross_entropy",
    "soft_cross_entropy",
    "label_smoothing_cross_entropy",
    "kd_mixture",
    "logits_matching_loss",
    "infinite_temperature_limit",
    "sigmoid_bce_distillation_loss",
    "DistillationProblem",
    "Loss",
    "LOSSES",
    "CONTROL_LOSSES",
    "Twin",
    "TWINS",
    "twin",
    "student_log_softmax",
    "probed_magnitudes",
    "HELLINGER",
]


def _per_example(temperature, like):
    """``temperature`` as a tensor broadcastable against ``[..., N]`` (one value per example)."""
    temperature = torch.as_tensor(temperature, dtype=like.dtype, device=like.device)
    return temperature.unsqueeze(-1) if temperature.ndim else temperature


# -- the student's softmax, where the magnitudes of a gradient are measured -------------------


class _Probe:
    """What one :func:`probed_magnitudes` call records: the student's log-softmax results (with
    their temperature and chain factor), and the chain factors of the standardized logits, held
    by identity, never patched onto the tensors."""

    def __init__(self):
        self.records = []
        self.chain_factors = []  # (tensor, factor)

    def chain_factor(self, tensor):
        return next((factor for held, factor in self.chain_factors if held is tensor), None)


#: The probe of the :func:`probed_magnitudes` call in progress in this context (``None``
#: outside one): set for the duration of the call and reset after, so nothing survives it.
_ACTIVE_PROBE = contextvars.ContextVar("verify_losses_probe", default=None)


def student_log_softmax(student_logits, temperature):
    r""":math:`\log\mathrm{softmax}(z/T)`, the one place a shift invariant loss sees the student.

    Inside :func:`probed_magnitudes` the result is recorded (with its temperature), so that the
    gradient w.r.t. it, :math:`w`, can be read: the intermediates of
    :math:`\partial L/\partial z_i = (w_i - q_i\sum_j w_j)/T` have size
    :math:`(\sum_i |w_i| + |\sum_i w_i|)/T`.
    """
    temperature = _per_example(temperature, student_logits)
    result = F.log_softmax(student_logits / temperature, dim=-1)
    probe = _ACTIVE_PROBE.get()
    if probe is not None:
        probe.records.append((result, temperature, probe.chain_factor(student_logits)))
    return result


def standardized(logits, *, unbiased):
    r""":math:`(x - \langle x\rangle)/s`, ``s`` the population or the unbiased standard deviation.

    Inside :func:`probed_magnitudes` the result carries the factor by which the chain rule
    through the standardization can grow the gradient's intermediates,
    :math:`(1 + \max_i \hat x_i^2)/s`, for the student's log-softmax to apply."""
    centred = logits - logits.mean(-1, keepdim=True)
    spread = centred.pow(2).sum(-1, keepdim=True) / (logits.shape[-1] - (1 if unbiased else 0))
    result = centred / spread.sqrt()
    probe = _ACTIVE_PROBE.get()
    if probe is not None:
        factor = (1 + result.detach().pow(2).amax(-1)) / spread.detach().sqrt().squeeze(-1)
        probe.chain_factors.append((result, factor))
    return result


@contextlib.contextmanager
def _probe():
    probe = _Probe()
    token = _ACTIVE_PROBE.set(probe)
    try:
        yield probe.records
    finally:
        _ACTIVE_PROBE.reset(token)


def probed_magnitudes(function, student, *rest):
    r"""``(gradient_magnitude, argument_magnitude)`` per example of ``function(student, *rest)``
    (a per-example loss): the summed size of the intermediates of its logit gradient,
    :math:`\sum_{\text{probes}} (\sum_i |w_i| + |\sum_i w_i|)/T`, and the largest softmax
    argument :math:`\max_i |z_i|/T`, for :func:`verify.tolerances.class_sum_tolerance`."""
    leaf = student.detach().requires_grad_(True)
    with torch.enable_grad(), _probe() as probes:
        loss = function(leaf, *rest)
        probes = [probe for probe in probes if probe[0].requires_grad]
        if not probes:
            return None
        gradients = torch.autograd.grad(
            loss.sum(), [result for result, _, _ in probes], allow_unused=True
        )
    magnitude = torch.zeros(student.shape[:-1], dtype=student.dtype, device=student.device)
    argument = torch.zeros_like(magnitude)
    largest = student.detach().abs().amax(-1)
    for (_, temperature, factor), w in zip(probes, gradients):
        if w is not None:
            scale = temperature.squeeze(-1).expand(magnitude.shape)
            size = (w.abs().sum(-1) + w.sum(-1).abs()) / scale
            magnitude = magnitude + (size if factor is None else size * factor)
            argument = torch.maximum(argument, largest / scale)
    return magnitude.detach(), argument.detach()


# -- the shift invariant losses of the zero-mean checks -------------------------------------


def kd_loss(student_logits, teacher_logits, *, temperature):
    r""":math:`T^2\,\mathrm{KL}(\mathrm{softmax}(v/T)\,\|\,\mathrm{softmax}(z/T))` per example."""
    student_log_probabilities = student_log_softmax(student_logits, temperature)
    teacher_log_probabilities = _teacher_log_softmax(teacher_logits, temperature)
    divergence = F.kl_div(
        student_log_probabilities, teacher_log_probabilities, reduction="none", log_target=True
    ).sum(-1)
    return _squared(temperature, student_logits) * divergence


def soft_cross_entropy(student_logits, targets, *, temperature=1.0):
    r""":math:`-\sum_i t_i \log \mathrm{softmax}(z/T)_i` per example, for soft targets ``t``."""
    return -(targets * student_log_softmax(student_logits, temperature)).sum(-1)


def hard_cross_entropy(student_logits, labels, *, temperature=1.0):
    r""":math:`-\log \mathrm{softmax}(z/T)_y` per example, for integer labels ``y``."""
    log_probabilities = student_log_softmax(student_logits, temperature)
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
    return weight * hard_cross_entropy(student_logits, labels) + (1 - weight) * kd_loss(
        student_logits, teacher_logits, temperature=temperature
    )


def logits_matching_loss(student_logits, teacher_logits):
    r""":math:`L_{LM} = \frac{1}{2N}\|z - v\|^2` per example."""
    return 0.5 * ((student_logits - teacher_logits) ** 2).mean(-1)


def infinite_temperature_limit(student_logits, teacher_logits):
    r""":math:`L_{LM} - \frac12(\langle z\rangle - \langle v\rangle)^2
    = \frac12\mathrm{Var}(z - v)`,
    the :math:`T \to \infty` limit of :func:`kd_loss` ([infinite-temperature])."""
    mean_gap = student_logits.mean(-1) - teacher_logits.mean(-1)
    return logits_matching_loss(student_logits, teacher_logits) - 0.5 * mean_gap**2


def sigmoid_bce_distillation_loss(student_logits, teacher_logits, *, temperature):
    r""":math:`T^2 \sum_i \mathrm{BCE}(\sigma(z_i/T), \sigma(v_i/T))`: per-class sigmoids, not
    shift invariant (a control for [zero-mean-gradient])."""
    temperature = _per_example(temperature, student_logits)
    targets = torch.sigmoid(teacher_logits / temperature)
    elementwise = F.binary_cross_entropy_with_logits(
        student_logits / temperature, targets, reduction="none"
    )
    return temperature.squeeze(-1) ** 2 * elementwise.sum(-1)


# -- twins of derive's objectives ----------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """The torch twin of one objective of :data:`derive.OBJECTIVES`.

    ``function(student, teacher, temperature, labels, **parameters)`` returns the loss per
    example; ``parameters`` are the values the checks use (exact rationals, as text, so that
    :func:`derive.expand` gets the very same ones); ``substitution`` maps symbols the terms keep
    (the generic ``f``'s derivatives) to values, for the generic f-divergence.
    """

    name: str
    function: Callable
    parameters: tuple = ()
    substitution: tuple = ()
    scaled: bool = True

    def __call__(self, student, teacher, temperature, labels=None):
        return self.function(
            student,
            teacher,
            temperature,
            labels,
            **{key: _number(value) for key, value in self.parameters},
        )

    @property
    def derive_parameters(self):
        """The parameters as :func:`derive.expand` takes them."""
        return dict(self.parameters)

    def with_parameters(self, **parameters):
        """The same twin at other parameter values (a choice such as ``std="population"``)."""
        values = dict(self.parameters)
        values.update(parameters)
        return Twin(self.name, self.function, tuple(values.items()), self.substitution, self.scaled)

    @property
    def label(self):
        """``"name"``, or ``"name (key=value)"`` for a categorical choice."""
        choices = [f"{k}={v}" for k, v in self.parameters if not _is_number(v)]
        return self.name + (f" ({', '.join(choices)})" if choices else "")


def _is_number(value):
    try:
        Fraction(str(value))
    except ValueError:
        return False
    return True


def _number(value):
    return float(Fraction(str(value))) if _is_number(value) else value


#: Every objective's twin, by the name :data:`derive.OBJECTIVES` gives it.
TWINS: dict[str, Twin] = {}


def twin(name, *, scaled=True, **parameters):
    """Register the decorated torch function as the twin of objective ``name``, checked at
    ``parameters`` (exact values, e.g. ``beta="3/10"``)."""

    def register(function):
        TWINS[name] = Twin(name, function, tuple(parameters.items()), scaled=scaled)
        return function

    return register


def _teacher_log_softmax(teacher_logits, temperature):
    return F.log_softmax(teacher_logits / _per_example(temperature, teacher_logits), dim=-1)


def _divergence(log_first, log_second):
    """:math:`\\mathrm{KL}(a\\|b) = \\sum a (\\log a - \\log b)` from log-probabilities."""
    return (log_first.exp() * (log_first - log_second)).sum(-1)


def _squared(temperature, like):
    return _per_example(temperature, like).squeeze(-1) ** 2


@twin("kl")
def _kl_twin(student, teacher, temperature, labels):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    return _squared(temperature, student) * _divergence(log_p, log_q)


@twin("reverse-kl")
def _reverse_kl_twin(student, teacher, temperature, labels):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    return _squared(temperature, student) * _divergence(log_q, log_p)


def _log_mixture(log_p, log_q, weight):
    """:math:`\\log(w p + (1 - w) q)`, stably."""
    if weight == 0:
        return log_q
    if weight == 1:
        return log_p
    weight = torch.as_tensor(weight, dtype=log_p.dtype, device=log_p.device)
    return torch.logsumexp(
        torch.stack([log_p + torch.log(weight), log_q + torch.log1p(-weight)]), dim=0
    )


def _jsd_value(student, teacher, temperature, beta):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    log_m = _log_mixture(log_p, log_q, beta)
    terms = torch.zeros_like(log_q[..., 0])
    if beta:
        terms = terms + beta * _divergence(log_p, log_m)
    if 1 - beta:
        terms = terms + (1 - beta) * _divergence(log_q, log_m)
    return _squared(temperature, student) * terms


@twin("js")
def _js_twin(student, teacher, temperature, labels):
    return _jsd_value(student, teacher, temperature, 0.5)


@twin("jsd", beta="3/10")
def _jsd_twin(student, teacher, temperature, labels, *, beta):
    return _jsd_value(student, teacher, temperature, beta)


@twin("skew-kl", alpha="1/5")
def _skew_kl_twin(student, teacher, temperature, labels, *, alpha):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    return _squared(temperature, student) * _divergence(log_p, _log_mixture(log_p, log_q, alpha))


@twin("skew-reverse-kl", alpha="1/3")
def _skew_reverse_kl_twin(student, teacher, temperature, labels, *, alpha):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    return _squared(temperature, student) * _divergence(
        log_q, _log_mixture(log_p, log_q, 1 - alpha)
    )


@twin("alpha-divergence", alpha="1/2")
def _alpha_divergence_twin(student, teacher, temperature, labels, *, alpha):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    # sum_i p^a q^(1-a) - 1, with the sum's deviation from 1 kept exact: expm1 of the
    # log-sum-exp of a log p + (1 - a) log q.
    overlap = torch.logsumexp(alpha * log_p + (1 - alpha) * log_q, dim=-1)
    return _squared(temperature, student) * torch.expm1(overlap) / (alpha * (alpha - 1))


#: The generator of the squared Hellinger distance, the member the generic f-divergence is
#: checked with: f(t) = (sqrt(t) - 1)^2, whose derivatives at 1 are f''(1) = 1/2 and
#: f^(k)(1) = 2 (1/2)(-1/2)...(3/2 - k) for k >= 2.
HELLINGER = {"f1": Fraction(0)}
_coefficient = Fraction(1, 2)
for _k in range(2, 40):
    _coefficient *= Fraction(3, 2) - _k
    HELLINGER[f"f{_k}"] = -2 * _coefficient
del _coefficient, _k


@twin("f-divergence")
def _f_divergence_twin(student, teacher, temperature, labels):
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    # D_f with f(t) = (sqrt t - 1)^2: sum_i (sqrt p_i - sqrt q_i)^2 = 2 - 2 sum sqrt(p q).
    overlap = torch.logsumexp((log_p + log_q) / 2, dim=-1)
    return _squared(temperature, student) * -2 * torch.expm1(overlap)


TWINS["f-divergence"] = Twin(
    "f-divergence", _f_divergence_twin, substitution=tuple(HELLINGER.items())
)


@twin("two-temperature", r="2")
def _two_temperature_twin(student, teacher, temperature, labels, *, r):
    log_q = student_log_softmax(student, temperature * r)
    log_p = _teacher_log_softmax(teacher, temperature)
    return _squared(temperature, student) * _divergence(log_p, log_q)


@twin("hot-teacher", scaled=False, student_temperature="3/2")
def _hot_teacher_twin(student, teacher, temperature, labels, *, student_temperature):
    log_q = student_log_softmax(student, torch.full_like(student[..., 0], student_temperature))
    log_p = _teacher_log_softmax(teacher, temperature)
    return _divergence(log_p, log_q)


@twin("ce-mixture", alpha="3/10")
def _ce_mixture_twin(student, teacher, temperature, labels, *, alpha):
    cross_entropy = (
        -student_log_softmax(student, torch.ones_like(student[..., 0]))
        .gather(-1, labels.unsqueeze(-1))
        .squeeze(-1)
    )
    return alpha * cross_entropy + (1 - alpha) * _kl_twin(student, teacher, temperature, labels)


def _others(values, labels):
    """The columns other than the label's: ``[..., N - 1]``."""
    keep = ~F.one_hot(labels, values.shape[-1]).bool()
    return values[keep].view(*values.shape[:-1], values.shape[-1] - 1)


def _at_label(values, labels):
    return values.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def _tckd(student, teacher, temperature, labels):
    """KL(b^p || b^q), b = (p_g, 1 - p_g), from log-probabilities (without T^2)."""
    log_q = student_log_softmax(student, temperature)
    log_p = _teacher_log_softmax(teacher, temperature)
    log_p_label, log_q_label = _at_label(log_p, labels), _at_label(log_q, labels)
    log_p_rest = torch.logsumexp(_others(log_p, labels), dim=-1)
    log_q_rest = torch.logsumexp(_others(log_q, labels), dim=-1)
    return log_p_label.exp() * (log_p_label - log_q_label) + log_p_rest.exp() * (
        log_p_rest - log_q_rest
    )


def _nckd(student, teacher, temperature, labels):
    """KL(p^ || q^) over the classes other than the label (without T^2)."""
    log_q = student_log_softmax(_others(student, labels), temperature)
    log_p = _teacher_log_softmax(_others(teacher, labels), temperature)
    return _divergence(log_p, log_q)


@twin("dkd-tckd")
def _tckd_twin(student, teacher, temperature, labels):
    return _squared(temperature, student) * _tckd(student, teacher, temperature, labels)


@twin("dkd-nckd")
def _nckd_twin(student, teacher, temperature, labels):
    return _squared(temperature, student) * _nckd(student, teacher, temperature, labels)


@twin("dkd", alpha="1", beta="8")
def _dkd_twin(student, teacher, temperature, labels, *, alpha, beta):
    return _squared(temperature, student) * (
        alpha * _tckd(student, teacher, temperature, labels)
        + beta * _nckd(student, teacher, temperature, labels)
    )


@twin("standardized-kl", std="unbiased")
def _standardized_kl_twin(student, teacher, temperature, labels, *, std):
    unbiased = std == "unbiased"
    return _kl_twin(
        standardized(student, unbiased=unbiased),
        standardized(teacher, unbiased=unbiased),
        temperature,
        labels,
    )


@twin("dist", scaled=False)
def _dist_twin(student, teacher, temperature, labels):
    q = student_log_softmax(student, temperature).exp()
    p = _teacher_log_softmax(teacher, temperature).exp()
    q, p = q - q.mean(-1, keepdim=True), p - p.mean(-1, keepdim=True)
    correlation = (q * p).sum(-1) / ((q * q).sum(-1) * (p * p).sum(-1)).sqrt()
    return 1 - correlation


@twin("logits-matching", scaled=False)
def _logits_matching_twin(student, teacher, temperature, labels):
    return logits_matching_loss(student, teacher)


@twin("centred-logits-matching", scaled=False)
def _centred_logits_matching_twin(student, teacher, temperature, labels):
    return infinite_temperature_limit(student, teacher)


# -- problems, and losses with what their tolerance needs ----------------------------------


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
    def classes(self) -> int:
        return self.student.shape[-1]

    def with_student(self, student: torch.Tensor) -> "DistillationProblem":
        """The same problem with other student logits (for instance leaves that need grad)."""
        return DistillationProblem(
            student, self.teacher, self.labels, self.targets, self.temperature
        )

    def describe(self, index: int = 0, *, digits: int = 4, limit: int = 8) -> str:
        """One example of the batch, in words (vectors cut after ``limit`` entries)."""

        def vector(tensor):
            values = [f"{float(x):.{digits}g}" for x in tensor[index][:limit]]
            return "[" + ", ".join(values) + (", ...]" if self.classes > limit else "]")

        return (
            f"T={float(self.temperature[index]):.{digits}g}, {self.classes} classes, "
            f"student {vector(self.student)}, teacher {vector(self.teacher)}"
        )


@dataclass(frozen=True)
class Loss:
    r"""A loss of a :class:`DistillationProblem`, with what its tolerance needs.

    ``gradient_magnitude(problem)`` is :math:`\sum_i m_i` per example, the summed size of the
    intermediates of its logit gradient (see :func:`verify.tolerances.class_sum_tolerance`);
    ``argument_magnitude(problem)`` the largest softmax (or sigmoid) argument size involved.
    Both default to what :func:`probed_magnitudes` measures.
    """

    name: str
    shift_invariant: bool
    function: Callable[..., Any]
    gradient_magnitude: Callable[..., Any] | None = field(default=None, repr=False)
    argument_magnitude: Callable[..., Any] | None = field(default=None, repr=False)
    uses_labels: bool = False
    #: ``defined(problem)`` -> bool per example: where the loss is defined (standardized logits
    #: need logits that are not all equal); ``None``: everywhere.
    domain: Callable[..., Any] | None = field(default=None, repr=False)

    def __call__(self, problem: DistillationProblem) -> torch.Tensor:
        return self.function(problem)

    def defined(self, problem: DistillationProblem) -> torch.Tensor:
        """Where the loss is defined, per example."""
        if self.domain is None:
            return torch.ones(
                problem.student.shape[:-1], dtype=torch.bool, device=problem.student.device
            )
        return self.domain(problem)

    def magnitudes(self, problem: DistillationProblem) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gradient magnitude, argument magnitude)`` per example."""
        if self.gradient_magnitude is not None:
            # the two magnitudes are given together
            argument_magnitude = cast(Callable[..., Any], self.argument_magnitude)
            return self.gradient_magnitude(problem), argument_magnitude(problem)
        measured = probed_magnitudes(
            lambda student: self.function(problem.with_student(student)), problem.student
        )
        if measured is None:
            raise ValueError(f"{self.name}: no student log-softmax to measure")
        return measured

    def __repr__(self):
        return f"Loss({self.name!r})"


def _max_abs(tensor):
    return tensor.abs().amax(-1)


def _arguments(problem, temperature):
    return (_max_abs(problem.student) + _max_abs(problem.teacher)) / temperature


def _twin_loss(entry):
    return Loss(
        entry.label,
        True,
        lambda p: entry(p.student, p.teacher, p.temperature, p.labels),
        uses_labels=_definition(entry.name).labelled,
        domain=_spread_out if _definition(entry.name).coordinates == "standardized" else None,
    )


def _spread_out(problem):
    """Logits that are not all equal, for student and teacher: where standardized logits (and
    a correlation of softmaxes) are defined."""

    def spread(logits):
        return (logits.amax(-1) - logits.amin(-1)) > 0

    return spread(problem.student.detach()) & spread(problem.teacher.detach())


def _definition(name):
    """The objective a twin stands for: whether it needs the label (``labelled``) and whether
    it is defined only for logits that are not all equal (``coordinates="standardized"``)
    are read from its registration, not from a list kept here."""
    return OBJECTIVES[name]


_SMOOTHING = 0.1

#: The shift invariant losses of [zero-mean-gradient], by name: every softmax twin (KD
#: first: searches for counterexamples shrink towards the first) and the cross-entropies.
LOSSES: dict[str, Loss] = {
    "kl": _twin_loss(TWINS["kl"]),
    "hard-ce": Loss(
        "hard-ce",
        True,
        lambda p: hard_cross_entropy(p.student, p.labels, temperature=p.temperature),
        uses_labels=True,
    ),
    "soft-ce": Loss(
        "soft-ce",
        True,
        lambda p: soft_cross_entropy(p.student, p.targets, temperature=p.temperature),
    ),
    "label-smoothing": Loss(
        "label-smoothing",
        True,
        lambda p: label_smoothing_cross_entropy(
            p.student, p.labels, smoothing=_SMOOTHING, temperature=p.temperature
        ),
        uses_labels=True,
    ),
    **{
        name: _twin_loss(entry)
        for name, entry in TWINS.items()
        # Softmax losses only: logits matching sees the logits (its raw form is a control).
        if name != "kl" and OBJECTIVES[name].family != "matching"
    },
    "standardized-kl (std=population)": _twin_loss(
        TWINS["standardized-kl"].with_parameters(std="population")
    ),
}

#: The controls that are not shift invariant: [zero-mean-gradient] must fail for them.
CONTROL_LOSSES = {
    "sigmoid-bce": Loss(
        "sigmoid-bce",
        False,
        lambda p: sigmoid_bce_distillation_loss(p.student, p.teacher, temperature=p.temperature),
        lambda p: 2.0 * p.temperature * p.classes,
        lambda p: _arguments(p, p.temperature),
    ),
    "logits-matching": Loss(
        "logits-matching",
        False,
        lambda p: logits_matching_loss(p.student, p.teacher),
        lambda p: (p.student.abs() + p.teacher.abs()).mean(-1) + 0 * p.temperature,
        lambda p: 0 * p.temperature,
    ),
}
