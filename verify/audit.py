r"""Audit a user's knowledge-distillation loss against the high-temperature theory.

``audit(fn)`` takes a loss ``fn(student_logits, teacher_logits, T)``, with logits of shape
``[B, N]`` and a scalar tensor as its value, and judges it from its gradient w.r.t. the
student logits, never from its value (the soft-target cross-entropy form of KD grows with
``T``, its gradient does not). By [infinite-temperature] (THEORY.md), the gradient of the
correct objective, :math:`T^2\,\mathrm{KL}(p\,\|\,q)` averaged over the batch
(``reduction='batchmean'``), tends as :math:`T \to \infty` to the gradient of the batch mean of
:math:`\frac12\mathrm{Var}(z - v)`,

.. math::

    G_b = \frac{1}{BN}\,\big[(z_b - v_b) - (\langle z_b\rangle - \langle v_b\rangle)\big].

The audit measures, on seeded random logits (a row offset each, so that
:math:`\langle z\rangle \ne \langle v\rangle`), with one autograd call per temperature over the
whole batch:

* ``shift_invariant``: [zero-mean-gradient], :math:`|\sum_i g_{bi}|` within the rounding bound
  of :func:`verify.tolerances.class_sum_tolerance` for every row, at moderate temperatures
  (1 and 4) and at every temperature of the fit. The bound is sized for a KD-like gradient
  :math:`c\,T(q - p)`, whose intermediates are :math:`2/\sum_i|q_i - p_i|` times the gradient
  (:math:`q, p` the softmaxes of the audited logits at that temperature).
* ``temperature_exponent`` :math:`a` and ``limit_scale`` :math:`c`: the gradient behaves as
  :math:`c\,T^a\,G`. The exponent is the log-log slope of the projection
  :math:`s(T) = \langle g(T), G\rangle / \langle G, G\rangle` over temperatures from
  :math:`T_{lo}` to :math:`T_{hi} = 100\,T_{lo}` (``1e2..1e4`` in float64; in float32
  :math:`\varepsilon^{-1/2}/100..\varepsilon^{-1/2}`, where the round-off of :math:`T(q - p)`,
  relative :math:`\varepsilon T`, stays below :math:`\sqrt\varepsilon`), by least squares on
  :math:`\log|s| = \log|c| + a \log T + \beta_1 T_{lo}/T + \beta_2 (T_{lo}/T)^2`: the two
  correction columns absorb the first two orders of the expansion. The exponent is rounded to
  the nearest half-integer when within :data:`~verify.tolerances.SLOPE_TOLERANCE` of it and
  the rms residual of the fit is at most ``SLOPE_TOLERANCE`` times the standard deviation of
  :math:`\log T` (the residual a slope error of that size would leave); otherwise the gradient
  is *not a power law* of :math:`T` and the raw slope is reported. If the projection is too
  small to carry a slope (:math:`|\cos(g(T), G)| < 10^{-3}` at some temperature, or a sign
  change), the norm :math:`\|g(T)\|/\|G\|` is fitted instead.
* The limit :math:`g_\infty` of :math:`g(T)/T^a` is extrapolated elementwise by least squares
  on :math:`1, T_{lo}/T, (T_{lo}/T)^2`; then :math:`c = \langle g_\infty, G\rangle/\langle G,G\rangle`
  and ``limit_cosine`` is :math:`\cos(g_\infty, G)`. Both are compared with 1 within
  :math:`(r/T_{lo})^3 + 10\,\rho`: :math:`r` is the largest centred logit, so the first term is
  the size of the first order the extrapolation leaves out, and :math:`\rho` is the rms residual
  of the extrapolation relative to :math:`\|g_\infty\|`, times
  :data:`~verify.tolerances.RESOLUTION_FACTOR`, which carries the round-off actually present.

The ``verdict`` is ``"consistent"`` iff the loss is shift invariant, its gradient is a power law
with :math:`a = 0`, :math:`c = 1` and cosine 1, and passing ``T`` as a 0-d tensor instead of a
Python float gives the same gradient (when ``fn`` accepts a tensor temperature at all). Each
departure gets a plain-English diagnosis naming the likely cause and its fix; the stable codes
of the causes are in :data:`CAUSES` (``AuditResult.causes``).

Examples
========

>>> from verify.gallery import kd_batchmean, kd_missing_t_squared
>>> result = audit(kd_batchmean)
>>> result.verdict, result.temperature_exponent, result.limit_scale, result.limit_cosine
('consistent', 0.0, 1.0, 1.0)
>>> result = audit(kd_missing_t_squared)
>>> result.verdict, result.causes
('inconsistent', ('missing-temperature-factor',))
>>> print(result.diagnoses[0])
gradient scales as T^-2: the T**2 factor is missing; multiply the KL term by T**2
>>> audit(kd_batchmean, classes=1)
Traceback (most recent call last):
...
verify._errors.VerifyError: classes must be an integer >= 2, got 1
"""

import argparse
import importlib
import json
import math
import sys
from dataclasses import dataclass

import torch

from ._errors import VerifyError, check_argument
from .devices import DEVICES, DTYPES, dtype_name, resolve_device, resolve_dtype
from .tolerances import (RESOLUTION_FACTOR, SLOPE_TOLERANCE, class_sum_tolerance,
                         machine_epsilon)

__all__ = ["CAUSES", "VERDICTS", "AuditResult", "audit", "load_target", "add_arguments", "run"]

#: The two verdicts of an audit.
VERDICTS = ("consistent", "inconsistent")

#: Every cause the audit can name (``AuditResult.causes``), with what it means.
CAUSES = {
    "no-gradient": "the loss has no gradient w.r.t. the student logits (detached)",
    "not-shift-invariant": "the gradient does not sum to zero over the classes",
    "not-a-power-law": "the gradient does not scale as one power of T",
    "missing-temperature-factor": "the gradient scales as T^-2: the T**2 factor is missing",
    "temperature-power": "the gradient scales as T^a with a not in {0, -2}",
    "mean-reduction": "limit scale 1/N: reduction='mean' over classes too",
    "sum-reduction": "limit scale B: reduction='sum' over the batch",
    "double-batch-average": "limit scale 1/B: divided by the batch size twice",
    "constant-factor": "limit scale c != 1 with no known cause: an extra constant factor",
    "negated": "the gradient points away from the teacher: the loss is negated",
    "uncentred-limit": "the high-T limit is uncentred logits matching, z - v",
    "wrong-limit": "the high-T limit of the gradient is not KD's",
    "temperature-ignored": "the gradient does not depend on T",
    "tensor-temperature-path": "a tensor T gives another gradient than a float T",
}

#: Defaults of :func:`audit` (and of the CLI).
DEFAULT_CLASSES = 10
DEFAULT_BATCH_SIZE = 16

# Scale of the per-row offsets added to the logits, so <z> != <v> by several units and an
# uncentred objective's limit is visibly not KD's (the logits themselves are standard normal).
_OFFSET_SCALE = 3.0
# Temperatures at which only shift invariance (and T-independence) is checked: moderate ones,
# where a shift invariant loss's class sum cancels least.
_MODERATE_TEMPERATURES = (1.0, 4.0)
# Points of the high-temperature grid (log-spaced over two decades).
_GRID_POINTS = 9
# Below this |cos(g(T), G)| the projection on the limit cannot carry a slope; fit the norm.
_DIRECTION_FLOOR = 1e-3
# Largest temperature of the grid in any dtype (float64 reaches it; see the module docstring).
_HIGHEST_TEMPERATURE = 1e4


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` found about one loss.

    The first eight fields are the JSON contract (:meth:`to_json`); the others say how they
    were measured.

    Parameters
    ==========

    shift_invariant : bool
        Whether every row's gradient sums to zero over the classes within its rounding bound.
    temperature_exponent : float or None
        :math:`a` in :math:`g(T) \\approx c\\,T^a G`, rounded to a half-integer when it is one
        (``None`` without a gradient).
    limit_scale, limit_cosine : float or None
        :math:`c`, and the cosine between :math:`g(T)/T^a` extrapolated to :math:`T = \\infty`
        and :math:`G`; both 1 for a correct KD loss (6 significant digits). ``None`` without a
        gradient, and the scale also when the gradient is not a power law of :math:`T`.
    classes, batch_size : int
        The shape ``[B, N]`` of the audited logits.
    verdict : str
        ``"consistent"`` or ``"inconsistent"``.
    diagnoses : tuple of str
        Plain-English causes and fixes, one per entry of ``causes``.
    causes : tuple of str
        Codes from :data:`CAUSES`.
    """

    shift_invariant: bool
    temperature_exponent: float | None
    limit_scale: float | None
    limit_cosine: float | None
    classes: int
    batch_size: int
    verdict: str
    diagnoses: tuple = ()
    causes: tuple = ()
    shift_worst_error: float = 0.0
    shift_tolerance: float = 0.0
    shift_temperature: float = 1.0
    exponent_fit: float | None = None
    fit_residual: float | None = None
    scale_tolerance: float | None = None
    temperatures: tuple = ()
    tensor_temperature: str = "unsupported"
    function: str = ""
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self):
        check_argument(self.verdict in VERDICTS, "verdict must be one of {}, got {!r}",
                       ", ".join(VERDICTS), self.verdict)

    @property
    def consistent(self):
        """True if the verdict is ``"consistent"``."""
        return self.verdict == "consistent"

    def to_json(self):
        """The fields of the CLI's ``--json`` output (a stable contract)."""
        return {
            "shift_invariant": self.shift_invariant,
            "temperature_exponent": self.temperature_exponent,
            "limit_scale": self.limit_scale,
            "limit_cosine": self.limit_cosine,
            "classes": self.classes,
            "batch_size": self.batch_size,
            "verdict": self.verdict,
            "diagnoses": list(self.diagnoses),
        }

    def to_text(self):
        """A human-readable report, as the CLI prints it without ``--json``."""
        low, high = (self.temperatures[0], self.temperatures[-1]) if self.temperatures else (0, 0)
        exponent = _optional(self.temperature_exponent)
        if self.exponent_fit is not None:
            exponent += f" (fitted {self.exponent_fit:.4g}, residual {self.fit_residual:.2g})"
        lines = [
            f"audit of {self.function}: {self.batch_size} x {self.classes} logits, {self.dtype}, "
            f"{self.device}, seed {self.seed}, T = {_number(low)}..{_number(high)}",
            f"  shift invariant       {'yes' if self.shift_invariant else 'no'} (worst class sum "
            f"{self.shift_worst_error:.2g}, tolerance {self.shift_tolerance:.2g}, at "
            f"T={_number(self.shift_temperature)})",
            f"  temperature exponent  {exponent}",
            f"  limit scale           {_optional(self.limit_scale)}"
            + ("" if self.scale_tolerance is None else f" (tolerance {self.scale_tolerance:.2g})"),
            f"  limit cosine          {_optional(self.limit_cosine)}",
            f"  tensor temperature    {self.tensor_temperature}",
            f"  verdict               {self.verdict}",
        ]
        lines += [f"  - {diagnosis}" for diagnosis in self.diagnoses]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The audit


def audit(fn, *, classes=DEFAULT_CLASSES, batch_size=DEFAULT_BATCH_SIZE, dtype=torch.float64,
          device="cpu", seed=0):
    r"""Audit a KD loss ``fn(student_logits, teacher_logits, T) -> scalar tensor``.

    Parameters
    ==========

    fn : callable
        The loss. It is called with student logits of shape ``[batch_size, classes]`` that
        require grad, teacher logits of the same shape (a fresh copy each call), and ``T`` as a
        Python float (once more as a 0-d tensor, to compare code paths).
    classes : int
        Number of classes ``N >= 2``.
    batch_size : int
        Batch size ``B >= 2`` (with one example 'sum' and 'batchmean' coincide).
    dtype : torch.dtype or str
        ``torch.float64`` (default) or ``torch.float32``; the temperature range follows it.
    device : str or torch.device
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:K"`` or ``"auto"``.
    seed : int
        Seed of the random logits; the same seed gives the same result.

    Returns
    =======

    AuditResult

    Raises
    ======

    VerifyError
        On bad arguments, or when ``fn`` raises, returns something other than a finite scalar
        floating tensor, or has a non-finite gradient; the message names what was wrong.
    """
    check_argument(callable(fn), "fn must be callable as fn(student_logits, teacher_logits, T), "
                   "got {!r}", fn)
    check_argument(_is_integer(classes) and classes >= 2,
                   "classes must be an integer >= 2, got {!r}", classes)
    check_argument(_is_integer(batch_size) and batch_size >= 2,
                   "batch_size must be an integer >= 2 (with one example 'sum' and 'batchmean' "
                   "coincide), got {!r}", batch_size)
    check_argument(_is_integer(seed) and 0 <= seed < 2**63,
                   "seed must be an integer in [0, 2**63), got {!r}", seed)
    dtype = resolve_dtype(dtype)
    device = resolve_device(device)

    student, teacher = _random_logits(classes, batch_size, seed, dtype)
    probe = _Probe(fn, student.to(device), teacher.to(device), name=_describe(fn))
    epsilon = machine_epsilon(dtype)
    highest = min(_HIGHEST_TEMPERATURE, epsilon ** -0.5)
    lowest = highest / 100.0
    grid = tuple(float(t) for t in torch.logspace(math.log10(lowest), math.log10(highest),
                                                  _GRID_POINTS, dtype=torch.float64))
    temperatures = grid + _MODERATE_TEMPERATURES
    gradients = torch.stack([probe.gradient(t) for t in temperatures])   # [K, B, N] float64 cpu

    # Everything below is analysis in float64 on the CPU, of the logits as the loss saw them.
    student, teacher = student.double(), teacher.double()
    limit = _limit_gradient(student, teacher)
    rounding = _RoundingModel(student, teacher, dtype=dtype)
    shift = _shift_invariance(gradients, temperatures, rounding)
    findings = {"shift": shift, "grid": grid}

    no_gradient = not probe.has_gradient or not bool(gradients.abs().amax() > 0)
    if no_gradient:
        findings.update(exponent=None, power_law=False, exponent_fit=None, fit_residual=None,
                        scale=None, cosine=None, scale_tolerance=None, uncentred_cosine=None,
                        ignored=False, tensor=("unsupported", None, None))
    else:
        findings.update(_fit(gradients[:len(grid)], grid, limit, student, teacher))
        findings["ignored"] = _ignores_temperature(gradients, temperatures, rounding)
        findings["tensor"] = _tensor_temperature(
            probe, (gradients[-1], gradients[len(grid) - 1]), (temperatures[-1], grid[-1]),
            rounding)
    causes, diagnoses, verdict = _diagnose(findings, no_gradient=no_gradient, classes=classes,
                                           batch_size=batch_size)
    return AuditResult(
        shift_invariant=shift["invariant"],
        temperature_exponent=findings["exponent"],
        limit_scale=_significant(findings["scale"]) if findings["power_law"] else None,
        limit_cosine=_significant(findings["cosine"]),
        classes=classes, batch_size=batch_size, verdict=verdict,
        diagnoses=tuple(diagnoses), causes=tuple(causes),
        shift_worst_error=shift["error"], shift_tolerance=shift["tolerance"],
        shift_temperature=shift["temperature"],
        exponent_fit=findings["exponent_fit"], fit_residual=findings["fit_residual"],
        scale_tolerance=findings["scale_tolerance"], temperatures=grid,
        tensor_temperature=findings["tensor"][0], function=probe.name,
        dtype=dtype_name(dtype), device=str(device), seed=seed,
    )


def _random_logits(classes, batch_size, seed, dtype):
    """Standard normal logits plus a normal row offset of scale 3, for student and teacher.

    Drawn in float64 on the CPU from one seeded generator, then rounded to ``dtype``: the same
    seed gives the same logits on every device.
    """
    generator = torch.Generator().manual_seed(seed)

    def draw():
        logits = torch.randn(batch_size, classes, generator=generator, dtype=torch.float64)
        offsets = torch.randn(batch_size, 1, generator=generator, dtype=torch.float64)
        return (logits + _OFFSET_SCALE * offsets).to(dtype)

    student = draw()
    return student, draw()


def _limit_gradient(student, teacher):
    r""":math:`G = \frac{1}{BN}[(z - v) - (\langle z\rangle - \langle v\rangle)]`, the gradient of
    the batch mean of :math:`\frac12\mathrm{Var}(z - v)`."""
    difference = student - teacher
    batch_size, classes = student.shape
    return (difference - difference.mean(-1, keepdim=True)) / (batch_size * classes)


class _Probe:
    """Calls the audited loss and returns its gradient w.r.t. the student logits."""

    def __init__(self, fn, student, teacher, *, name):
        self.fn, self.student, self.teacher, self.name = fn, student, teacher, name
        self.has_gradient = True

    def _call(self, temperature, shown):
        student = self.student.detach().clone().requires_grad_(True)
        teacher = self.teacher.detach().clone()
        context = (f"when called with student and teacher logits of shape "
                   f"{tuple(student.shape)} ({dtype_name(student.dtype)}) and T={shown}")
        try:
            value = self.fn(student, teacher, temperature)
        except Exception as error:  # the user's code: report it, never a traceback
            raise VerifyError(f"{self.name} raised {type(error).__name__}: "
                              f"{_one_line(error)} ({context})") from error
        check_argument(isinstance(value, torch.Tensor),
                       "{} returned {}, expected a scalar torch.Tensor ({}); keep the loss a "
                       "tensor (no .item() or float())", self.name, type(value).__name__, context)
        check_argument(value.ndim == 0,
                       "{} returned a tensor of shape {}, expected a scalar (0-d) tensor ({}); "
                       "reduce it over the batch, e.g. with reduction='batchmean'",
                       self.name, tuple(value.shape), context)
        check_argument(value.is_floating_point(),
                       "{} returned a tensor of dtype {}, expected a floating point scalar ({})",
                       self.name, value.dtype, context)
        if not bool(torch.isfinite(value)):
            raise VerifyError(f"{self.name} returned {float(value.detach())} ({context}); the "
                              "loss must be finite")
        if not value.requires_grad:
            return student, None
        try:
            (gradient,) = torch.autograd.grad(value, student, allow_unused=True)
        except RuntimeError as error:
            raise VerifyError(f"the gradient of {self.name} could not be computed "
                              f"({context}): {_one_line(error)}") from error
        return student, gradient

    def gradient(self, temperature):
        """The gradient at a Python float ``T``, as float64 on the CPU (zeros if detached)."""
        student, gradient = self._call(temperature, _number(temperature))
        if gradient is None:
            self.has_gradient = False
            return torch.zeros(student.shape, dtype=torch.float64)
        check_argument(bool(torch.isfinite(gradient).all()),
                       "the gradient of {} w.r.t. the student logits is not finite at T={}",
                       self.name, _number(temperature))
        return gradient.detach().to("cpu", torch.float64)

    def tensor_gradient(self, temperature):
        """The gradient with ``T`` passed as a 0-d tensor, or ``None`` if ``fn`` cannot take one."""
        tensor = torch.tensor(temperature, dtype=self.student.dtype, device=self.student.device)
        try:
            _, gradient = self._call(tensor, _number(temperature) + " as a 0-d tensor")
        except VerifyError:
            return None
        if gradient is None or not bool(torch.isfinite(gradient).all()):
            return None
        return gradient.detach().to("cpu", torch.float64)


class _RoundingModel:
    r"""Rounding bounds for a KD-like gradient :math:`c\,T(q - p)` of the audited logits.

    Per row and temperature, the intermediates of such a gradient are :math:`c\,T\sum_i(q_i + p_i)
    = 2cT` while its size is :math:`c\,T\sum_i |q_i - p_i|`: their ratio
    :math:`2/\sum_i|q_i - p_i|` turns a measured gradient into the magnitude that
    :func:`verify.tolerances.class_sum_tolerance` needs.
    """

    def __init__(self, student, teacher, *, dtype):
        self.student, self.teacher, self.dtype = student, teacher, dtype
        self.classes = student.shape[-1]
        self.largest = student.abs().amax(-1) + teacher.abs().amax(-1)      # [B]

    def row_tolerance(self, gradient, temperature):
        """The rounding bound on :math:`\\sum_i g_{bi}` (and on a row's total error), ``[B]``."""
        student_probabilities = torch.softmax(self.student / temperature, dim=-1)
        teacher_probabilities = torch.softmax(self.teacher / temperature, dim=-1)
        gap = (student_probabilities - teacher_probabilities).abs().sum(-1)
        gap = torch.clamp(gap, min=torch.finfo(torch.float64).tiny)
        intermediates = gradient.abs().sum(-1) * 2.0 / gap
        return class_sum_tolerance(dtype=self.dtype, classes=self.classes,
                                   argument_magnitude=self.largest / temperature,
                                   gradient_magnitude=intermediates)


def _shift_invariance(gradients, temperatures, rounding):
    """[zero-mean-gradient] on every row at every temperature: the worst sum against its bound."""
    worst = {"ratio": -1.0, "error": 0.0, "tolerance": 0.0, "temperature": temperatures[0]}
    for gradient, temperature in zip(gradients, temperatures):
        errors = gradient.sum(-1).abs()
        tolerances = rounding.row_tolerance(gradient, temperature)
        ratios = torch.where(errors > 0, errors / tolerances, torch.zeros_like(errors))
        row = int(ratios.argmax())
        if float(ratios[row]) > worst["ratio"]:
            worst = {"ratio": float(ratios[row]), "error": float(errors[row]),
                     "tolerance": float(tolerances[row]), "temperature": temperature}
    worst["invariant"] = worst["ratio"] <= 1.0
    return worst


def _fit(gradients, grid, limit, student, teacher):
    """Exponent, scale and cosine of the high-temperature gradients ``[K, B, N]``."""
    temperatures = torch.tensor(grid, dtype=torch.float64)
    lowest = grid[0]
    limit_norm = limit.norm()
    norms = gradients.flatten(1).norm(dim=1)
    projections = (gradients * limit).sum((1, 2)) / limit_norm**2
    cosines = projections * limit_norm / torch.where(norms > 0, norms, torch.ones_like(norms))
    aligned = bool((cosines > _DIRECTION_FLOOR).all() or (cosines < -_DIRECTION_FLOOR).all())
    sizes = projections.abs() if aligned else norms / limit_norm

    log_temperatures = temperatures.log()
    corrections = torch.stack([lowest / temperatures, (lowest / temperatures) ** 2], dim=1)
    if bool((sizes > 0).all()):
        design = torch.cat([torch.ones_like(temperatures)[:, None], log_temperatures[:, None],
                            corrections], dim=1)
        targets = sizes.log()[:, None]
        solution = torch.linalg.lstsq(design, targets).solution
        raw = float(solution[1, 0])
        residual = float((design @ solution - targets).pow(2).mean().sqrt())
    else:  # the gradient vanishes at some temperatures only: no power law
        raw, residual = float("nan"), float("inf")
    rounded = round(2.0 * raw) / 2.0 if math.isfinite(raw) else raw
    power_law = (math.isfinite(raw) and abs(raw - rounded) <= SLOPE_TOLERANCE
                 and residual <= SLOPE_TOLERANCE * float(log_temperatures.std()))
    used = rounded if power_law else (raw if math.isfinite(raw) else 0.0)

    # Extrapolate g(T) / T^a to T = infinity, elementwise, with the same correction columns.
    rescaled = (gradients / temperatures[:, None, None] ** used).flatten(1)
    design = torch.cat([torch.ones_like(temperatures)[:, None], corrections], dim=1)
    solution = torch.linalg.lstsq(design, rescaled).solution
    limit_estimate = solution[0].reshape(limit.shape)
    estimate_norm = limit_estimate.norm()
    scale = float((limit_estimate * limit).sum() / limit_norm**2)
    cosine = float((limit_estimate * limit).sum() / (estimate_norm * limit_norm)) \
        if estimate_norm > 0 else None
    difference = student - teacher
    uncentred_cosine = float((limit_estimate * difference).sum()
                             / (estimate_norm * difference.norm())) if estimate_norm > 0 else None
    # rms over the temperatures of the residual's norm, relative to the limit's norm
    relative_residual = float((design @ solution - rescaled).pow(2).sum(1).mean().sqrt()
                              / estimate_norm) if estimate_norm > 0 else float("inf")
    centred = torch.cat([student - student.mean(-1, keepdim=True),
                         teacher - teacher.mean(-1, keepdim=True)])
    truncation = (float(centred.abs().amax()) / lowest) ** 3
    return {
        "exponent": (0.0 + rounded) if power_law else (round(raw, 3) if math.isfinite(raw)
                                                       else None),
        "power_law": power_law,
        "exponent_fit": raw if math.isfinite(raw) else None,
        "fit_residual": residual if math.isfinite(residual) else None,
        "scale": scale,
        "cosine": cosine,
        "uncentred_cosine": uncentred_cosine,
        "scale_tolerance": truncation + RESOLUTION_FACTOR * relative_residual,
    }


def _ignores_temperature(gradients, temperatures, rounding):
    """True if the gradient is the same at every temperature, within the rounding bounds.

    Every gradient is compared with the one at the first moderate temperature. The comparison
    between the moderate temperatures is the sharp one: there the bounds are tight, while at
    high temperature, in float32 with many classes, they can reach the gradient's own size.
    """
    index = len(temperatures) - len(_MODERATE_TEMPERATURES)
    reference, reference_temperature = gradients[index], temperatures[index]
    reference_tolerance = rounding.row_tolerance(reference, reference_temperature)
    for gradient, temperature in zip(gradients, temperatures):
        bound = rounding.row_tolerance(gradient, temperature) + reference_tolerance
        if bool(((gradient - reference).abs().sum(-1) > bound).any()):
            return False
    return True


def _tensor_temperature(probe, references, temperatures, rounding):
    """Compare the gradients at ``T`` given as a 0-d tensor with those at the same float ``T``.

    ``references`` are the float-``T`` gradients at ``temperatures``: the largest moderate one
    (tight rounding bounds) and the largest of the grid. Returns ``(status, temperature,
    exponent)``: ``"same"``; ``"differs"``, with the first temperature where the two paths
    disagree and the power of ``T`` that relates them when there is one; or ``"unsupported"``
    when ``fn`` cannot take a tensor temperature.
    """
    for reference, temperature in zip(references, temperatures):
        gradient = probe.tensor_gradient(temperature)
        if gradient is None:
            return "unsupported", None, None
        bound = rounding.row_tolerance(gradient, temperature) \
            + rounding.row_tolerance(reference, temperature)
        if bool(((gradient - reference).abs().sum(-1) <= bound).all()):
            continue
        reference_size = float(reference.pow(2).sum())
        ratio = float((gradient * reference).sum()) / reference_size if reference_size else 0.0
        if ratio <= 0:
            return "differs", temperature, None
        power = math.log(ratio) / math.log(temperature)
        rounded = round(2.0 * power) / 2.0
        exponent = rounded if abs(power - rounded) <= SLOPE_TOLERANCE and rounded else None
        return "differs", temperature, exponent
    return "same", None, None


# --------------------------------------------------------------------------------------------
# Diagnoses


def _diagnose(findings, *, no_gradient, classes, batch_size):
    """The causes (codes of :data:`CAUSES`), their plain-English diagnoses, and the verdict."""
    found = []

    def add(cause, text):
        found.append((cause, text))

    if no_gradient:
        add("no-gradient", "the loss has no gradient w.r.t. the student logits: it is detached "
            "from them (.detach(), .item(), a numpy round trip or torch.no_grad()); the KD loss "
            "must backpropagate into the student")
        return [c for c, _ in found], [t for _, t in found], "inconsistent"

    shift, low, high = findings["shift"], findings["grid"][0], findings["grid"][-1]
    if not shift["invariant"]:
        add("not-shift-invariant",
            f"sum over classes of the gradient is not zero ({shift['error']:.2g} > tolerance "
            f"{shift['tolerance']:.2g} at T={_number(shift['temperature'])}): the loss is not "
            "shift invariant, so it does not depend on the logits only through softmax (e.g. "
            "sigmoid/BCE on logits, or a penalty on raw logits); use softmax-based KL, "
            "T**2 * KL(softmax(v/T) || softmax(z/T))")

    exponent, scale, cosine = findings["exponent"], findings["scale"], findings["cosine"]
    tolerance = findings["scale_tolerance"]
    if not findings["power_law"]:
        shown = "undefined" if findings["exponent_fit"] is None else \
            f"{findings['exponent_fit']:.3g}, log-log residual {findings['fit_residual']:.2g}"
        add("not-a-power-law",
            f"the gradient does not scale as one power of T over T={_number(low)}..{_number(high)} "
            f"(fitted exponent {shown}): its scaling changes with the temperature, e.g. a factor "
            "applied on some code paths or temperature ranges only; apply the T**2 factor "
            "unconditionally")
    elif exponent == -2:
        add("missing-temperature-factor",
            "gradient scales as T^-2: the T**2 factor is missing; multiply the KL term by T**2")
    elif exponent != 0:
        hint = " (the loss is multiplied by T instead of T**2)" if exponent == -1 else ""
        add("temperature-power",
            f"gradient scales as T^{_number(exponent)}{hint}, but a KD gradient stays O(1) as T "
            f"grows (exponent 0): multiply the loss by T**{_number(-exponent)}")

    direction_ok = cosine is not None and cosine >= 1.0 - tolerance
    opposite = cosine is not None and cosine <= -1.0 + tolerance
    if findings["power_law"] and direction_ok and abs(scale - 1.0) > tolerance:
        known = _known_scales(scale, tolerance, classes=classes, batch_size=batch_size)
        for cause, text in known:
            add(cause, text)
        if not known:
            add("constant-factor",
                f"limit scale {_significant(scale)}: the gradient is {_significant(scale)} times "
                "KD's at high temperature; if this is a deliberate loss weight (e.g. 1 - alpha) "
                "it is harmless, otherwise remove the extra constant factor")
    if findings["power_law"] and opposite:
        add("negated",
            f"the gradient points away from the teacher (limit scale {_significant(scale)}, "
            f"cosine {_significant(cosine)}): the loss is negated, so minimising it pushes the "
            "student away; minimise +T**2 * KL(softmax(v/T) || softmax(z/T))")
    elif findings["power_law"] and not direction_ok:
        uncentred = findings["uncentred_cosine"]
        if uncentred is not None and uncentred >= 1.0 - tolerance:
            add("uncentred-limit",
                f"at high temperature the gradient tends to uncentred logits matching, "
                f"proportional to z - v (cosine {_significant(cosine)} with KD's limit, which "
                "subtracts <z> - <v>): the mean-gap term is missing; centre both logits "
                "(subtract their class means) or use softmax-based KL")
        else:
            shown = "undefined" if cosine is None else _significant(cosine)
            add("wrong-limit",
                f"at high temperature the rescaled gradient does not tend to KD's limit, the "
                f"gradient of the batch mean of 0.5*Var(z - v) (cosine {shown}): this objective "
                "is not KD at high temperature; use T**2 * KL(softmax(v/T) || softmax(z/T))")

    status, where, power = findings["tensor"]
    if status == "differs":
        relation = "" if power is None else f" (by a factor T^{_number(power)})"
        add("tensor-temperature-path",
            f"passing T as a 0-d tensor instead of a Python float changes the gradient at "
            f"T={_number(where)}{relation}: a scaling such as T**2 is applied on one code path "
            "only (e.g. under isinstance(T, float)); apply it on every path")

    consistent = (shift["invariant"] and findings["power_law"] and exponent == 0
                  and abs(scale - 1.0) <= tolerance and direction_ok and status != "differs")
    if findings["ignored"]:
        if consistent:
            add("temperature-ignored",
                "note: the gradient does not depend on T: this loss is the T -> infinity limit "
                "of KD (centred logits matching), consistent with the theory but not KD at a "
                "finite temperature")
        else:
            add("temperature-ignored",
                "the gradient does not depend on T: the loss ignores the temperature (plain "
                "logits matching?); KD compares softmax(z/T) with softmax(v/T)")
    return ([c for c, _ in found], [t for _, t in found],
            "consistent" if consistent else "inconsistent")


def _known_scales(scale, tolerance, *, classes, batch_size):
    """The reduction mistakes whose limit scale matches ``scale``."""
    candidates = [
        (1.0 / classes, "mean-reduction",
         f"limit scale 1/N = {_significant(scale)}: reduction='mean' averages over classes too; "
         "use reduction='batchmean'"),
        (float(batch_size), "sum-reduction",
         f"limit scale B = {_number(scale)}: reduction='sum' adds over the batch; use "
         "reduction='batchmean' (or divide the sum by the batch size)"),
        (1.0 / batch_size, "double-batch-average",
         f"limit scale 1/B = {_significant(scale)}: the loss is divided by the batch size twice "
         "(e.g. reduction='batchmean' and then / batch_size); divide once"),
    ]
    return [(cause, text) for value, cause, text in candidates
            if abs(scale / value - 1.0) <= tolerance]


# --------------------------------------------------------------------------------------------
# Formatting helpers


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _significant(value, digits=6):
    """``value`` to ``digits`` significant digits (what the tolerances resolve), or ``None``."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}") + 0.0


def _optional(value):
    return "n/a" if value is None else f"{value:.6g}"  # 6 digits: what the tolerances resolve


def _number(value):
    """A short form of a number: ``1e4``, ``0.5``, ``-2``."""
    text = f"{float(value):.4g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


def _describe(fn):
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{module}:{name}" if module and name else repr(fn)


# --------------------------------------------------------------------------------------------
# Command line: ``python -m verify audit MODULE:FUNCTION`` (and ``python -m verify.audit``)


def load_target(target):
    """The callable named by ``"MODULE:FUNCTION"`` (``FUNCTION`` may be dotted, ``Class.method``).

    Examples
    ========

    >>> load_target("verify.gallery:kd_batchmean").__name__
    'kd_batchmean'
    >>> load_target("verify.gallery")
    Traceback (most recent call last):
    ...
    verify._errors.VerifyError: target must be MODULE:FUNCTION (e.g. verify.gallery:kd_batchmean), got 'verify.gallery'
    """
    module_name, _, attribute = target.partition(":") if isinstance(target, str) else ("", "", "")
    check_argument(bool(module_name) and bool(attribute) and ":" not in attribute,
                   "target must be MODULE:FUNCTION (e.g. verify.gallery:kd_batchmean), got {!r}",
                   target)
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as error:  # ImportError, or what the module raises on import
        hint = ("; the module runs a script when imported (argparse?): put the loss in a module "
                "that only defines it" if isinstance(error, SystemExit) else "")
        raise VerifyError(f"cannot import module {module_name!r} of target {target!r}: "
                          f"{type(error).__name__}: {_one_line(error)}{hint}") from error
    value = module
    for part in attribute.split("."):
        check_argument(hasattr(value, part), "module {!r} has no attribute {!r} (target {!r})",
                       module_name, attribute, target)
        value = getattr(value, part)
    check_argument(callable(value), "target {!r} is not callable (it is a {})", target,
                   type(value).__name__)
    return value


def add_arguments(parser):
    """Add the audit's arguments to an :class:`argparse.ArgumentParser` (or a subparser).

    Options are parsed as text and validated by :func:`run`, so that a bad value gets one line
    naming it and what is allowed, whatever parser carries them.
    """
    parser.add_argument("target", help="the loss to audit, as MODULE:FUNCTION; it is called as "
                        "FUNCTION(student_logits[B,N], teacher_logits[B,N], T) -> scalar tensor")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--classes", default=str(DEFAULT_CLASSES),
                        help=f"number of classes N >= 2 (default {DEFAULT_CLASSES})")
    parser.add_argument("--batch-size", default=str(DEFAULT_BATCH_SIZE),
                        help=f"batch size B >= 2 (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--seed", default="0", help="seed of the random logits (default 0)")
    parser.add_argument("--device", default="cpu", help="one of " + ", ".join(DEVICES)
                        + " (default cpu)")
    parser.add_argument("--dtype", default="float64", help="one of " + ", ".join(DTYPES)
                        + " (default float64)")
    return parser


def run(args):
    """Run the audit for parsed ``args``; print the result; return the exit code.

    0 consistent, 1 inconsistent, 2 bad input (a target that cannot be imported or called, or
    a bad option), reported as one line on stderr.
    """
    try:
        fn = load_target(args.target)
        result = audit(fn, classes=_integer_option(args.classes, "--classes", minimum=2),
                       batch_size=_integer_option(args.batch_size, "--batch-size", minimum=2),
                       seed=_integer_option(args.seed, "--seed", minimum=0),
                       device=args.device, dtype=args.dtype)
    except VerifyError as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=2) if args.json else result.to_text())
    return 0 if result.consistent else 1


def _integer_option(text, name, *, minimum):
    try:
        value = int(str(text), 10)
    except ValueError:
        value = None
    check_argument(value is not None and value >= minimum,
                   "{} must be an integer >= {}, got {!r}", name, minimum, text)
    return value


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message):
        usage = " ".join(self.format_usage().split()[1:])
        self.exit(2, f"error: {message} (usage: {usage})\n")


def main(argv=None):
    """``python -m verify.audit MODULE:FUNCTION [--json] ...``"""
    parser = add_arguments(_OneLineParser(
        prog="python -m verify.audit",
        description="Audit a KD loss against the high-temperature theory (THEORY.md)."))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
