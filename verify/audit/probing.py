r"""The audit's inputs, temperatures and gradients.

:func:`draw_inputs` draws seeded student and teacher logits, ``[B, N]`` or ``[B, L, N]``:
standard normal plus a normal offset of scale 3 per row (per token), so that
:math:`\langle z\rangle \ne \langle v\rangle` by several units and an uncentred objective's limit is
visibly wrong. A token sequence gets a padding mask when asked (random lengths, the first
sequence full), and labels are random classes when the loss takes a ``target``, else the
teacher's argmax. :class:`Probe` calls the loss through a :class:`~.loading.Sandbox`, one
autograd call per temperature over the whole batch, and returns the gradient w.r.t. the
student logits in float64 on the CPU.

Temperatures: the *fit* grid :func:`fit_temperatures` (``1e2..1e4`` in float64; in float32
:math:`\varepsilon^{-1/2}/100..\varepsilon^{-1/2}`, where the round-off of :math:`T(q - p)`,
relative :math:`\varepsilon T`, stays below :math:`\sqrt\varepsilon`) carries the exponent and the
limit; the *identification* grid :func:`identification_temperatures`, from :math:`4r` to
:math:`64r` (:math:`r` the largest centred logit), is where the terms :math:`T^{-1}` to
:math:`T^{-4}` of the expansion are large enough to tell objectives apart, while the fifth term
left out is below :math:`10^{-6}` of the gradient.

Examples
========

>>> inputs = draw_inputs((2, 3), seed=0, dtype=torch.float64, mask=False, random_labels=False)
>>> tuple(inputs.student.shape), inputs.label_source
((2, 3), 'teacher-argmax')
>>> inputs = draw_inputs((3, 4, 5), seed=0, dtype=torch.float64, mask=True, random_labels=True)
>>> inputs.mask.sum(-1).tolist(), inputs.rows(inputs.student).shape[0] == int(inputs.mask.sum())
([4, 3, 1], True)
"""

import math
from dataclasses import dataclass

import torch

from .._errors import VerifyError, check_argument
from ..devices import dtype_name
from ..tolerances import RESOLUTION_FACTOR, class_sum_tolerance, machine_epsilon
from .result import _number

__all__ = [
    "Inputs",
    "draw_inputs",
    "fit_temperatures",
    "identification_temperatures",
    "MODERATE_TEMPERATURES",
    "Probe",
    "RoundingModel",
]

# Scale of the per-row offsets added to the logits (the logits themselves are standard normal).
_OFFSET_SCALE = 3.0
#: Temperatures where only shift invariance (and T-independence) is checked: moderate ones,
#: where a shift invariant loss's class sum cancels least.
MODERATE_TEMPERATURES = (1.0, 4.0)
# Points of each high-temperature grid (log-spaced).
_GRID_POINTS = 9
# Largest temperature of the fit grid in any dtype (float64 reaches it).
_HIGHEST_TEMPERATURE = 1e4
# The identification grid spans [4 r, 64 r]: the ratio of successive terms is about r/T.
_IDENTIFICATION_RANGE = (4.0, 64.0)


@dataclass(frozen=True)
class Inputs:
    """Logits as the loss sees them (``dtype``, CPU), the padding mask ``[B, L]`` (``None``
    for ``[B, N]`` logits or an unmasked sequence), labels ``[B]`` or ``[B, L]``, and where the
    labels come from (``"random"``: passed as ``target``; ``"teacher-argmax"``)."""

    student: torch.Tensor
    teacher: torch.Tensor
    mask: torch.Tensor | None
    labels: torch.Tensor
    label_source: str

    @property
    def sequence(self):
        return self.student.ndim == 3

    @property
    def real(self):
        """Which rows (examples, or tokens flattened) are real, ``[R_all]`` bool."""
        if self.mask is not None:
            return self.mask.reshape(-1)
        return torch.ones(self.student.shape[:-1].numel(), dtype=torch.bool)

    def rows(self, tensor):
        """``tensor`` ``[..., N]`` as float64 rows ``[R, N]``, the real ones only."""
        flat = tensor.reshape(-1, tensor.shape[-1]).to(torch.float64)
        return flat[self.real]

    def padded_rows(self, tensor):
        flat = tensor.reshape(-1, tensor.shape[-1]).to(torch.float64)
        return flat[~self.real]

    @property
    def row_labels(self):
        return self.labels.reshape(-1)[self.real]

    @property
    def lengths(self):
        """Real tokens per sequence, ``[B]`` (``None`` for ``[B, N]`` logits)."""
        if not self.sequence:
            return None
        if self.mask is None:
            return torch.full((self.student.shape[0],), self.student.shape[1])
        return self.mask.sum(-1)


def draw_inputs(shape, *, seed, dtype, mask, random_labels):
    """Seeded logits of ``shape`` (``(B, N)`` or ``(B, L, N)``), drawn in float64 on the CPU
    from one generator and then rounded to ``dtype`` (the same seed gives the same logits
    everywhere), with a mask if ``mask`` and a sequence, and labels."""
    generator = torch.Generator().manual_seed(seed)
    rows = shape[:-1]

    def draw():
        logits = torch.randn(*shape, generator=generator, dtype=torch.float64)
        offsets = torch.randn(*rows, 1, generator=generator, dtype=torch.float64)
        return (logits + _OFFSET_SCALE * offsets).to(dtype)

    student = draw()
    teacher = draw()
    padding = None
    if mask and len(shape) == 3:
        batch, length = shape[0], shape[1]
        lengths = torch.randint(1, length + 1, (batch,), generator=generator)
        lengths[0] = length
        if length > 1 and bool((lengths == length).all()):
            lengths[-1] = (length + 1) // 2
        padding = torch.arange(length)[None, :] < lengths[:, None]
    if random_labels:
        labels = torch.randint(0, shape[-1], rows, generator=generator)
        source = "random"
    else:
        labels = teacher.argmax(-1)
        source = "teacher-argmax"
    return Inputs(student, teacher, padding, labels, source)


def fit_temperatures(dtype):
    """The fit grid: 9 temperatures log-spaced over two decades, ending where the dtype's
    round-off of the gradient reaches :math:`\\sqrt\\varepsilon`."""
    highest = min(_HIGHEST_TEMPERATURE, machine_epsilon(dtype) ** -0.5)
    return _logspace(highest / 100.0, highest)


def identification_temperatures(student_rows, teacher_rows):
    """The identification grid: 9 temperatures from :math:`4r` to :math:`64r`, :math:`r` the
    largest centred logit (at least 1)."""
    centred = torch.cat(
        [
            student_rows - student_rows.mean(-1, keepdim=True),
            teacher_rows - teacher_rows.mean(-1, keepdim=True),
        ]
    )
    scale = max(1.0, float(centred.abs().amax()))
    low, high = _IDENTIFICATION_RANGE
    return _logspace(low * scale, high * scale)


def _logspace(low, high):
    return tuple(
        float(t)
        for t in torch.logspace(
            math.log10(low), math.log10(high), _GRID_POINTS, dtype=torch.float64
        )
    )


class Probe:
    """Calls the audited loss and returns its gradient w.r.t. the student logits.

    ``signature`` (:class:`~.loading.Signature`) says whether the loss takes ``target`` and
    ``mask``; ``sandbox`` runs every call of the user's code.
    """

    def __init__(self, fn, inputs, *, device, signature, sandbox, progress=None):
        self.fn, self.inputs, self.signature, self.sandbox = fn, inputs, signature, sandbox
        self.student = inputs.student.to(device)
        self.teacher = inputs.teacher.to(device)
        self.labels = inputs.labels.to(device)
        self.mask = None
        if inputs.sequence and signature.mask:
            self.mask = (
                inputs.mask
                if inputs.mask is not None
                else torch.ones(inputs.student.shape[:2], dtype=torch.bool)
            ).to(device)
        self.has_gradient = True
        self.progress = progress
        self.calls = 0
        self.call_spec = None

    def use_call(self, spec, *, labels_mask=False):
        """Call the loss through ``spec`` (a :class:`derive.calls.CallSpec`; ``None``: the
        default call); ``labels_mask`` passes Hugging Face labels (the labels, -100 at padded
        positions) where the mask goes."""
        self.call_spec = spec
        if labels_mask and self.mask is not None:
            self.mask = torch.where(self.mask, self.labels, torch.full_like(self.labels, -100))

    @property
    def name(self):
        return self.sandbox.name

    def _arguments(self, student, teacher, temperature, labels=None):
        arguments, keywords = [student, teacher, temperature], {}
        labels = self.labels if labels is None else labels
        if self.signature.target == "positional":
            arguments.append(labels)
        elif self.signature.target == "keyword":
            keywords["target"] = labels
        if self.mask is not None:
            keywords["mask"] = self.mask
        return arguments, keywords

    def call(self, temperature, shown, *, student=None, teacher=None, labels=None):
        """The loss and its gradient at ``T`` (``None`` without a gradient)."""
        student = (self.student if student is None else student).detach().clone()
        student.requires_grad_(True)
        teacher = (self.teacher if teacher is None else teacher).detach().clone()
        context = (
            f"(called with student and teacher logits of shape {tuple(student.shape)} "
            f"({dtype_name(student.dtype)}) and T={shown})"
        )
        if self.call_spec is not None:  # say which call, so that --call can change it
            context = f"(called as {self.call_spec.describe()}" + context[len("(called") :]
        arguments, keywords = self._arguments(student, teacher, temperature, labels)
        self.calls += 1
        if self.progress is not None:
            self.progress(f"calling the loss at T={shown}")
        if self.call_spec is not None:
            arguments = (self.fn,)
            keywords = dict(
                student=student,
                teacher=teacher,
                T=temperature,
                target=self.labels if labels is None else labels,
                mask=self.mask,
            )
            value = self.sandbox.call(
                self.call_spec.invoke, *arguments, context=context, **keywords
            )
        else:
            value = self.sandbox.call(self.fn, *arguments, context=context, **keywords)
        check_argument(
            isinstance(value, torch.Tensor),
            "{} returned {}, expected a scalar torch.Tensor {}; keep the loss a "
            "tensor (no .item() or float())",
            self.name,
            type(value).__name__,
            context,
        )
        check_argument(
            value.ndim == 0,
            "{} returned a tensor of shape {}, expected a scalar (0-d) tensor {}; "
            "reduce it over the batch, e.g. with reduction='batchmean'",
            self.name,
            tuple(value.shape),
            context,
        )
        check_argument(
            not value.is_meta and value.layout == torch.strided and not value.is_quantized,
            "{} returned a {} tensor{} {}, expected a dense scalar tensor with a value",
            self.name,
            "meta" if value.is_meta else str(value.layout).removeprefix("torch."),
            " (it holds no value)" if value.is_meta else "",
            context,
        )
        check_argument(
            value.is_floating_point(),
            "{} returned a tensor of dtype {}, expected a floating point scalar {}",
            self.name,
            value.dtype,
            context,
        )
        if not bool(torch.isfinite(value)):
            raise VerifyError(
                f"{self.name} returned {float(value.detach())} {context}; the loss must be finite"
            )
        if not value.requires_grad:
            return None
        (gradient,) = self.sandbox.call(
            torch.autograd.grad,
            value,
            student,
            allow_unused=True,
            context=f"in its backward pass {context}",
        )
        return gradient

    def gradient(self, temperature, **logits):
        """The gradient at a Python float ``T``, float64 on the CPU (zeros if detached)."""
        gradient = self.call(temperature, _number(temperature), **logits)
        if gradient is None:
            self.has_gradient = False
            return torch.zeros(self.student.shape, dtype=torch.float64)
        check_argument(
            bool(torch.isfinite(gradient).all()),
            "the gradient of {} w.r.t. the student logits is not finite at T={}",
            self.name,
            _number(temperature),
        )
        return gradient.detach().to("cpu", torch.float64)

    def permuted_gradient(self, temperature, permutation):
        """The gradient with the classes permuted (logits and labels alike), permuted back: for
        a loss that treats the classes alike it differs from :meth:`gradient` by round-off
        only, a measurement of it."""
        inverse = torch.argsort(permutation)
        gradient = self.gradient(
            temperature,
            student=self.student[..., permutation],
            teacher=self.teacher[..., permutation],
            labels=inverse.to(self.labels.device)[self.labels],
        )
        return gradient[..., inverse]

    def tensor_gradient(self, temperature):
        """The gradient with ``T`` passed as a 0-d tensor, or ``None`` if ``fn`` cannot take one
        (a timeout still stops the audit)."""
        tensor = torch.tensor(temperature, dtype=self.student.dtype, device=self.student.device)
        try:
            gradient = self.call(tensor, _number(temperature) + " as a 0-d tensor")
        except VerifyError:
            self.sandbox.check_time()
            return None
        if gradient is None or not bool(torch.isfinite(gradient).all()):
            return None
        return gradient.detach().to("cpu", torch.float64)


class RoundingModel:
    r"""Rounding bounds for the gradient rows of the audited logits.

    A model and a measurement, the larger is used. The model is a KD-like gradient
    :math:`c\,T(q - p)`: per row and temperature its intermediates are
    :math:`c\,T\sum_i(q_i + p_i) = 2cT` while its size is :math:`c\,T\sum_i |q_i - p_i|`; their
    ratio :math:`2/\sum_i|q_i - p_i|` turns a measured gradient into the magnitude that
    :func:`verify.tolerances.class_sum_tolerance` needs. Objectives whose gradient cancels more
    (DKD's target-class part is made of the label's :math:`q_g - p_g` alone) exceed it, so
    ``noise`` (``{T: [R]}``) is the round-off actually measured: the L1 distance between the
    gradient and the gradient with the classes permuted and permuted back, which agree exactly
    for a loss that treats the classes alike (the largest over the rows, one row's sample can be
    exact by chance); it counts times :data:`~verify.tolerances.RESOLUTION_FACTOR`.
    """

    def __init__(self, student, teacher, *, dtype, noise=None):
        self.student, self.teacher, self.dtype = student, teacher, dtype
        self.classes = student.shape[-1]
        self.largest = student.abs().amax(-1) + teacher.abs().amax(-1)  # [R]
        self.noise = noise or {}

    def row_tolerance(self, gradient, temperature):
        r"""The rounding bound on :math:`\sum_i g_{ri}` (and on a row's total error), ``[R]``."""
        student_probabilities = torch.softmax(self.student / temperature, dim=-1)
        teacher_probabilities = torch.softmax(self.teacher / temperature, dim=-1)
        gap = (student_probabilities - teacher_probabilities).abs().sum(-1)
        gap = torch.clamp(gap, min=torch.finfo(torch.float64).tiny)
        intermediates = gradient.abs().sum(-1) * 2.0 / gap
        bound = class_sum_tolerance(
            dtype=self.dtype,
            classes=self.classes,
            argument_magnitude=self.largest / temperature,
            gradient_magnitude=intermediates,
        )
        measured = self.noise.get(temperature)
        return bound if measured is None else torch.maximum(bound, RESOLUTION_FACTOR * measured)

    def relative(self, gradients, temperatures):
        """Per temperature, the rounding bound of the rows ``[K, R, N]`` relative to their
        norm: ``[K]``."""
        values = []
        for gradient, temperature in zip(gradients, temperatures):
            norm = float(gradient.norm())
            bound = float(self.row_tolerance(gradient, temperature).norm())
            values.append(bound / norm if norm > 0 else math.inf)
        return torch.tensor(values, dtype=torch.float64)
