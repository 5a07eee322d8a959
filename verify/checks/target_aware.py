r"""Decoupled KD's exact identity and two-class collapse, and the scale invariance of KD on
standardized logits, measured on drawn logits, labels and temperatures.

* [dkd-identity]: :math:`|\mathrm{KL}(p\|q) - \mathrm{TCKD} - (1 - p_g)\mathrm{NCKD}|` per example,
  each part computed by the torch twins (:mod:`verify.losses`), against the rounding bound of
  the three sums (:func:`identity_errors`); the refutation drops the weight :math:`1 - p_g`.
* [dkd-binary]: NCKD with two classes, exactly zero to rounding; the refutation takes three.
* [scale-invariance]: :math:`|\sum_i z_i\,\partial L/\partial z_i|` for KD on standardized
  logits (both standard deviations), against :math:`\max_i|z_i|` times the class-sum rounding
  bound of the gradient; the refutation is KD itself.

Each sweeps batches of drawn problems, then a hypothesis search over small explicit ones.
"""

import torch
from hypothesis import strategies as st

from ..losses import TWINS, DistillationProblem, _nckd, _tckd, probed_magnitudes
from ..search import draw_examples, find_counterexample
from ..strategies import distillation_problems, logit_vectors, temperatures
from ..tolerances import class_sum_tolerance, rounding_bound, softmax_gradient_operations
from ._common import CheckContext, Counterexample, conclude, numeric_check, vector, violations

__all__ = ["identity_errors", "nckd_values", "scale_sums"]

_PROBLEMS = 16


def _log_softmaxes(problem):
    column = problem.temperature.unsqueeze(-1)
    return (
        torch.log_softmax(problem.student / column, -1),
        torch.log_softmax(problem.teacher / column, -1),
    )


def identity_errors(problem, *, weighted=True):
    r"""``(errors, tolerances)`` per example:
    :math:`|\mathrm{KL} - \mathrm{TCKD} - w\,\mathrm{NCKD}|`,
    :math:`w = 1 - p_g` (or 1 when not ``weighted``), and the rounding bound of the three sums:
    their intermediates :math:`\sum_i p_i(|\log p_i| + |\log q_i|)` (for the parts, the same
    over two and :math:`N - 1` classes), times the roundings of a softmax chain."""
    log_q, log_p = _log_softmaxes(problem)
    p = log_p.exp()
    kl = (p * (log_p - log_q)).sum(-1)
    target = _tckd(problem.student, problem.teacher, problem.temperature, problem.labels)
    others = _nckd(problem.student, problem.teacher, problem.temperature, problem.labels)
    label_probability = p.gather(-1, problem.labels.unsqueeze(-1)).squeeze(-1)
    weight = (1 - label_probability) if weighted else torch.ones_like(label_probability)
    errors = (kl - target - weight * others).abs()
    magnitude = 3 * (p * (log_p.abs() + log_q.abs())).sum(-1) + others.abs() + target.abs()
    arguments = (
        problem.student.abs().amax(-1) + problem.teacher.abs().amax(-1)
    ) / problem.temperature
    operations = softmax_gradient_operations(classes=problem.classes, argument_magnitude=arguments)
    return errors, rounding_bound(dtype=errors.dtype, operations=operations, magnitude=magnitude)


def nckd_values(problem):
    """``(errors, tolerances)``: :math:`|\\mathrm{NCKD}|` and the rounding of its sum over the
    other classes (a KL of a distribution with itself when only one class is left)."""
    others = _nckd(problem.student, problem.teacher, problem.temperature, problem.labels).abs()
    arguments = (
        problem.student.abs().amax(-1) + problem.teacher.abs().amax(-1)
    ) / problem.temperature
    operations = softmax_gradient_operations(classes=problem.classes, argument_magnitude=arguments)
    return others, rounding_bound(
        dtype=others.dtype, operations=operations, magnitude=1 + arguments
    )


def scale_sums(entry, problem):
    r"""``(errors, tolerances)``: :math:`|\sum_i z_i\,\partial L/\partial z_i|` of a twin, and
    :math:`\max_i|z_i|` times the class-sum rounding bound of its gradient (measured
    magnitudes, :func:`verify.losses.probed_magnitudes`)."""

    def loss(student):
        return entry(student, problem.teacher, problem.temperature, problem.labels)

    leaf = problem.student.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss(leaf).sum(), leaf)
    errors = (problem.student * gradient).sum(-1).abs().detach()
    magnitude, arguments = probed_magnitudes(loss, problem.student)
    tolerance = class_sum_tolerance(
        dtype=errors.dtype,
        classes=problem.classes,
        argument_magnitude=arguments,
        gradient_magnitude=magnitude,
    )
    return errors, problem.student.abs().amax(-1) * tolerance


@st.composite
def _small_problems(draw, *, min_classes, max_classes):
    classes = draw(st.integers(min_classes, max_classes))
    student = draw(logit_vectors(min_size=classes, max_size=classes))
    teacher = draw(logit_vectors(min_size=classes, max_size=classes))
    label = draw(st.integers(0, classes - 1))
    temperature = draw(temperatures(min_value=0.5, max_value=100.0))
    return student, teacher, label, temperature


def _explicit(values, context):
    student, teacher, label, temperature = values
    as_tensor = lambda x: torch.tensor([x], dtype=context.dtype, device=context.device)  # noqa: E731
    teacher_tensor = as_tensor(teacher)
    return DistillationProblem(
        as_tensor(student),
        teacher_tensor,
        torch.tensor([label], device=context.device),
        torch.softmax(teacher_tensor, -1),
        as_tensor(temperature),
    )


def _run(
    statement_id,
    context,
    measure,
    *,
    min_classes=2,
    max_classes=64,
    what,
    defined=lambda problem: torch.ones(problem.student.shape[0], dtype=torch.bool),
):
    """Sweep drawn problems, then search small explicit ones; ``what`` names the measured
    quantity in the counterexample."""
    count = max(1, context.examples // _PROBLEMS)
    problems = draw_examples(
        distillation_problems(
            min_classes=min_classes,
            max_classes=max_classes,
            min_batch_size=count,
            max_batch_size=count,
            max_scale=30.0,
            max_offset=30.0,
            min_temperature=0.5,
            max_temperature=1e3,
            dtype=context.dtype,
            device=context.device,
        ),
        _PROBLEMS,
        seed=context.seed,
    )
    errors, tolerances = [], []
    for problem in problems:
        problem_errors, problem_tolerances = measure(problem)
        keep = defined(problem)
        errors.append(torch.where(keep, problem_errors, torch.zeros_like(problem_errors)))
        tolerances.append(
            torch.where(keep, problem_tolerances, torch.ones_like(problem_tolerances))
        )

    def violated(values):
        problem = _explicit(values, context)
        if not bool(defined(problem).all()):
            return False
        error, tolerance = measure(problem)
        return bool(violations(error[0], tolerance[0]))

    def search():
        found = find_counterexample(
            _small_problems(min_classes=min_classes, max_classes=min(max_classes, 5)),
            violated,
            seed=context.seed,
            max_examples=context.search_examples,
        )
        if found is None:
            return None
        problem = _explicit(found, context)
        error, tolerance = (float(x[0]) for x in measure(problem))
        student, teacher, label, temperature = found
        return Counterexample(
            f"T={temperature:g}, student {vector(student)}, teacher "
            f"{vector(teacher)}, label {label}: {what} {error:.3g} "
            f"(tolerance {tolerance:.2g})",
            error,
            tolerance,
        )

    vectors = sum(problem.student.shape[0] for problem in problems)
    return conclude(
        statement_id,
        context,
        errors=torch.cat(errors),
        tolerances=torch.cat(tolerances),
        search=search,
        examples=vectors,
        notes=[
            f"{vectors} drawn (logits, label, T), classes "
            f"{min(p.classes for p in problems)}..{max(p.classes for p in problems)}"
        ],
    )


def _context(device, dtype, examples, seed, search_examples):
    return CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )


@numeric_check("dkd-identity")
def check_dkd_identity(
    *, device="cpu", dtype=torch.float64, examples=512, seed=0, search_examples=None
):
    """[dkd-identity]: KL = TCKD + (1 - p_g) NCKD on ``examples`` drawn problems."""
    return _run(
        "dkd-identity",
        _context(device, dtype, examples, seed, search_examples),
        identity_errors,
        what="|KL - TCKD - (1 - p_g) NCKD| =",
    )


@numeric_check("dkd-identity/unweighted")
def check_dkd_identity_unweighted(
    *, device="cpu", dtype=torch.float64, examples=256, seed=0, search_examples=None
):
    """Refutes KL = TCKD + NCKD (without the weight 1 - p_g)."""
    return _run(
        "dkd-identity/unweighted",
        _context(device, dtype, examples, seed, search_examples),
        lambda problem: identity_errors(problem, weighted=False),
        min_classes=3,
        what="|KL - TCKD - NCKD| =",
    )


@numeric_check("dkd-binary")
def check_dkd_binary(
    *, device="cpu", dtype=torch.float64, examples=256, seed=0, search_examples=None
):
    """[dkd-binary]: NCKD is zero with two classes."""
    return _run(
        "dkd-binary",
        _context(device, dtype, examples, seed, search_examples),
        nckd_values,
        min_classes=2,
        max_classes=2,
        what="|NCKD| =",
    )


@numeric_check("dkd-binary/three-classes")
def check_dkd_binary_three_classes(
    *, device="cpu", dtype=torch.float64, examples=256, seed=0, search_examples=None
):
    """Refutes "NCKD vanishes" with three classes."""
    return _run(
        "dkd-binary/three-classes",
        _context(device, dtype, examples, seed, search_examples),
        nckd_values,
        min_classes=3,
        max_classes=3,
        what="|NCKD| =",
    )


def _spread_out(problem):
    def spread(logits):
        return (logits.amax(-1) - logits.amin(-1)) > 0

    return spread(problem.student) & spread(problem.teacher)


@numeric_check("scale-invariance")
def check_scale_invariance(
    *, device="cpu", dtype=torch.float64, examples=512, seed=0, search_examples=None
):
    """[scale-invariance]: sum_i z_i dL/dz_i = 0 for KD on standardized logits, both stds."""
    twins = [
        TWINS["standardized-kl"].with_parameters(std=std) for std in ("population", "unbiased")
    ]

    def measure(problem):
        measured = [scale_sums(entry, problem) for entry in twins]
        errors = torch.stack([e for e, _ in measured])
        tolerances = torch.stack([t for _, t in measured])
        worst = (errors / tolerances).argmax(0, keepdim=True)
        return errors.gather(0, worst)[0], tolerances.gather(0, worst)[0]

    return _run(
        "scale-invariance",
        _context(device, dtype, examples, seed, search_examples),
        measure,
        min_classes=3,
        what="|sum_i z_i dL/dz_i| =",
        defined=_spread_out,
    )


@numeric_check("scale-invariance/kd")
def check_scale_invariance_kd(
    *, device="cpu", dtype=torch.float64, examples=256, seed=0, search_examples=None
):
    """Refutes scale invariance for KD on the raw logits."""
    return _run(
        "scale-invariance/kd",
        _context(device, dtype, examples, seed, search_examples),
        lambda problem: scale_sums(TWINS["kl"], problem),
        min_classes=2,
        what="|sum_i z_i dL/dz_i| of KD =",
    )
