r"""[expansion]: derive's terms, turned into torch functions, against autograd.

:func:`derive.expand` gives :math:`L_{KD} = \sum_k T^{-k} L_k` and
:math:`\partial L_{KD}/\partial z = \sum_k T^{-k} G_k` for a symbolic number of classes;
:class:`~verify.symbolic.SymbolicFunction` evaluates the terms on batches of logits. For
hypothesis-drawn logits the check measures

* the remainders :math:`\|\nabla L_{KD}(T) - \sum_{k<K} T^{-k} G_k\|` (autograd gradients) and
  :math:`|L_{KD}(T) - \sum_{k<K} T^{-k} L_k|` for :math:`K = 1..4`, at temperatures from
  :math:`10\times` the logits' spread up to :math:`10^8`, all in one autograd call, and fits
  their log-log slope: it must be :math:`-K` (:func:`~verify.convergence.leading_order`: the
  next even order for two classes) to within :data:`~verify.tolerances.SLOPE_TOLERANCE`;
* that every :math:`G_k` sums to zero over the classes and equals :math:`\partial L_k/\partial z`
  (autograd of the torch form of :math:`L_k`), to within a rounding bound from the terms'
  size (:meth:`~verify.symbolic.SymbolicFunction.magnitude`).

Round-off is measured against a 40-digit :mod:`mpmath` evaluation of the exact
:math:`T(q - p)`, :math:`T^2\,\mathrm{KL}(p\|q)` and of the same terms. Temperatures where it
is not far below the remainder are left out of the fit, and the first where it dominates is
reported as the dtype's floor (:mod:`verify.convergence`). In float64 the first-order gradient
remainder must be resolved in every example; other fits, which the floor can hide (float32
resolves less than a decade of the first order), are reported when they are not.

The terms are polynomials in raw class moments, which cancel catastrophically under a large
common offset of the logits; the logits here are drawn without one (shift invariance is
[zero-mean-gradient]'s business).
"""

import math
from functools import lru_cache

import mpmath
import numpy
import torch
from hypothesis import strategies as st

import derive

from ..convergence import leading_order, measure_convergence
from ..losses import kd_loss
from ..search import draw_examples, find_counterexample
from ..strategies import distillation_problems, logit_vectors
from ..symbolic import SymbolicFunction, evaluate_mpmath
from ..tolerances import SLOPE_TOLERANCE, rounding_bound
from ._common import (
    CheckContext,
    Counterexample,
    conclude,
    numeric_check,
    ratios,
    vector,
    violations,
)
from .temperature import too_slow

__all__ = [
    "ORDERS",
    "expansion_terms",
    "temperature_grid",
    "remainders",
    "term_identities",
    "run_expansion_check",
    "check_expansion",
]

#: Remainders after ``K`` terms are fitted for these ``K``.
ORDERS = (1, 2, 3, 4)
#: Decimal digits of the mpmath reference.
REFERENCE_DIGITS = 40
#: The grid starts this many times the logits' spread above zero, and runs to 1e8.
_START = 10.0
_END = 1e8
_PER_DECADE = 4
#: Slopes are fitted over the last decade of each resolved range: the grid spans many decades,
#: and lower down a small leading coefficient can be swamped by the next order, or cancel
#: against it (hypothesis finds such logits among small explicit ones).
WINDOW_DECADES = 1.0
#: Batches of logits are drawn with this many vectors each, and at most this many batches.
_MAXIMUM_PROBLEMS = 256
_BATCH = 4


_MAX_ORDER = max(ORDERS)


def expansion_terms(order=_MAX_ORDER):
    """``(gradient_terms, loss_terms)``: derive's first ``order`` terms, symbolic N."""
    gradient = [term.expr for term in derive.expand("gradient", order=order).terms]
    loss = [term.expr for term in derive.expand("loss", order=order).terms]
    return gradient, loss


def temperature_grid(student, teacher):
    """Temperatures from :data:`_START` times the logits' spread to :data:`_END`, a quarter
    decade apart."""
    spread = float(
        (student.amax(-1) - student.amin(-1) + teacher.amax(-1) - teacher.amin(-1)).max()
    )
    start = _START * max(1.0, spread)
    count = int(math.floor(_PER_DECADE * math.log10(_END / start))) + 1
    return start * 10.0 ** (numpy.arange(count) / _PER_DECADE)


def _reference(student, teacher, temperatures):
    """Exact gradient ``[K, B, N]`` and loss ``[K, B]`` at ``REFERENCE_DIGITS`` digits."""
    with mpmath.workdps(REFERENCE_DIGITS):
        rows_z = [[mpmath.mpf(float(x)) for x in row] for row in student.cpu().tolist()]
        rows_v = [[mpmath.mpf(float(x)) for x in row] for row in teacher.cpu().tolist()]
        gradients, losses = [], []
        for temperature in temperatures:
            t = mpmath.mpf(float(temperature))
            gradient_rows, loss_row = [], []
            for z, v in zip(rows_z, rows_v):
                log_q = _log_softmax([x / t for x in z])
                log_p = _log_softmax([x / t for x in v])
                q = [mpmath.exp(x) for x in log_q]
                p = [mpmath.exp(x) for x in log_p]
                gradient_rows.append([t * (a - b) for a, b in zip(q, p)])
                divergence = mpmath.fsum(b * (lb - la) for b, lb, la in zip(p, log_p, log_q))
                loss_row.append(t * t * divergence)
            gradients.append(gradient_rows)
            losses.append(loss_row)
    return numpy.array(gradients, dtype=object), numpy.array(losses, dtype=object)


def _log_softmax(values):
    top = max(values)
    total = mpmath.fsum(mpmath.exp(x - top) for x in values)
    return [x - top - mpmath.log(total) for x in values]


def _norms(values):
    """Euclidean norm over all but the first axis of an object array, as floats."""
    return numpy.array(
        [float(mpmath.sqrt(mpmath.fsum(x * x for x in row.ravel()))) for row in values]
    )


def remainders(student, teacher, temperatures, gradient_terms, loss_terms):
    r"""For ``K = 1 .. len(terms)``: the remainders' norms over the batch in the logits' dtype
    (autograd gradients, one autograd call for all temperatures) and their round-off,
    measured against the mpmath reference.

    Returns ``{("gradient" | "loss", K): (measured [T], roundoff [T])}``.
    """
    count, batch = len(temperatures), student.shape[0]
    column = torch.tensor(temperatures, dtype=student.dtype, device=student.device)
    column = column.repeat_interleave(batch)
    leaf = student.repeat(count, 1).detach().requires_grad_(True)
    losses = kd_loss(leaf, teacher.repeat(count, 1), temperature=column)
    (gradients,) = torch.autograd.grad(losses.sum(), leaf)
    gradients = gradients.view(count, batch, -1).detach()
    losses = losses.view(count, batch).detach()

    # The reference uses the temperatures exactly as the dtype holds them.
    held = column.view(count, batch)[:, 0].tolist()
    reference_gradients, reference_losses = _reference(student, teacher, held)
    with mpmath.workdps(REFERENCE_DIGITS):
        inverse = [mpmath.mpf(1) / mpmath.mpf(t) for t in held]
        results = {}
        for quantity, terms, measured, reference in (
            ("gradient", gradient_terms, gradients, reference_gradients),
            ("loss", loss_terms, losses, reference_losses),
        ):
            measured_remainder = measured.clone()
            reference_remainder = reference.copy()
            z, v = student.cpu().tolist(), teacher.cpu().tolist()
            for k, term in enumerate(terms):
                value = _function(term)(student, teacher)
                exact = evaluate_mpmath(term, z, v)
                if quantity == "loss":
                    value, exact = value[..., 0], exact[..., 0]
                scale = column.view(count, batch, *([1] * (value.ndim - 1))) ** -k
                measured_remainder = measured_remainder - scale * value
                powers = numpy.array([x**k for x in inverse], dtype=object)
                reference_remainder = reference_remainder - (
                    powers.reshape(count, *([1] * exact.ndim)) * exact[None]
                )
                order = k + 1
                if order in ORDERS:
                    size = measured_remainder.reshape(count, -1).norm(dim=-1).cpu().numpy()
                    error = _norms(
                        measured_remainder.cpu().double().numpy().astype(object)
                        - reference_remainder
                    )
                    results[quantity, order] = (size, error)
    return results


@lru_cache(maxsize=None)
def _function(term):
    return SymbolicFunction(term)


@lru_cache(maxsize=None)
def _derivative(term):
    return SymbolicFunction(term.diff(derive.z_i))


def term_identities(student, teacher, gradient_terms, loss_terms):
    """``(errors, tolerances, labels)``: per term and example, :math:`|\\sum_i G_{k,i}|` and
    :math:`\\max_i |G_{k,i} - \\partial L_k/\\partial z_i|`, with rounding bounds from the
    terms' magnitude and size (:meth:`~verify.symbolic.SymbolicFunction.magnitude`)."""
    classes = student.shape[-1]
    errors, tolerances, labels = [], [], []
    for k, (gradient_term, loss_term) in enumerate(zip(gradient_terms, loss_terms)):
        gradient = _function(gradient_term)
        value = gradient(student, teacher).expand_as(student)
        magnitude = gradient.magnitude(student, teacher).expand_as(student)
        errors.append(value.sum(-1).abs())
        tolerances.append(
            rounding_bound(
                dtype=student.dtype,
                operations=gradient.operations + 2 * classes,
                magnitude=magnitude.sum(-1),
            )
        )
        labels += [f"sum_i G_{k},i"] * student.shape[0]

        loss = _function(loss_term)
        leaf = student.detach().requires_grad_(True)
        (derivative,) = torch.autograd.grad(loss(leaf, teacher).sum(), leaf)
        symbolic_derivative = _derivative(loss_term)
        operations = (
            loss.operations + symbolic_derivative.operations + gradient.operations + 2 * classes
        )
        bound = magnitude + symbolic_derivative.magnitude(student, teacher).expand_as(student)
        ratio = ratios(
            (value - derivative).abs(),
            rounding_bound(dtype=student.dtype, operations=operations, magnitude=bound),
        )
        worst = ratio.argmax(-1, keepdim=True)
        errors.append((value - derivative).abs().gather(-1, worst).squeeze(-1))
        tolerances.append(
            rounding_bound(dtype=student.dtype, operations=operations, magnitude=bound)
            .gather(-1, worst)
            .squeeze(-1)
        )
        labels += [f"G_{k} - dL_{k}/dz"] * student.shape[0]
    return torch.cat(errors).detach(), torch.cat(tolerances).detach(), labels


def _fits(student, teacher, gradient_terms, loss_terms):
    """Every fit of one batch of logits: ``{(quantity, K): Convergence}``."""
    temperatures = temperature_grid(student, teacher)
    classes = student.shape[-1]
    return {
        key: measure_convergence(
            temperatures,
            size,
            error,
            order=leading_order(classes, key[1]),
            window_decades=WINDOW_DECADES,
        )
        for key, (size, error) in remainders(
            student, teacher, temperatures, gradient_terms, loss_terms
        ).items()
    }


#: Fits that must be resolved in every example, per dtype: in float64 the gradient's first
#: order (docs/theory.md: float64 resolves it to T = 1e6 and beyond). float32's range above
#: round-off can be shorter than the decade a fit needs; it is then reported, not fitted.
REQUIRED = {torch.float64: {("gradient", 1)}}


def _verdict(fits_per_example, dtype):
    """``(violated, errors, tolerances)``: every resolved fit within the slope tolerance, and
    the :data:`REQUIRED` fits resolved in every example."""
    required = REQUIRED.get(dtype, set())
    errors, tolerances, violated = [], [], False
    for fits in fits_per_example:
        for key, fit in fits.items():
            if fit.resolved:
                errors.append(fit.error)
                tolerances.append(SLOPE_TOLERANCE)
                violated |= not fit.passed
            elif key in required:
                errors.append(math.inf)
                tolerances.append(SLOPE_TOLERANCE)
                violated = True
    return violated, errors, tolerances


def _summary(fits_per_example, context):
    """``(notes, unresolved)``: per remainder and expected order, the fitted slopes, how many
    fits round-off allowed and the floors met; and the remainders no example resolved."""
    name = str(context.dtype).replace("torch.", "")
    keys = sorted({(key, fit.order) for fits in fits_per_example for key, fit in fits.items()})
    notes, unresolved = [], []
    for key, order in keys:
        group = [fits[key] for fits in fits_per_example if key in fits and fits[key].order == order]
        resolved = [f for f in group if f.resolved]
        line = (
            f"{key[0]} after {key[1]} term{'s' if key[1] > 1 else ''} "
            f"(slope -{order}{', 2 classes' if order != key[1] else ''}): "
        )
        if resolved:
            slopes = [f.slope for f in resolved]
            line += (
                f"{min(slopes):.3f} .. {max(slopes):.3f} up to T="
                f"{max(f.high for f in resolved):.3g}, "
            )
        line += f"{len(resolved)} of {len(group)} resolved"
        floors = sorted(f.floor for f in group if f.floor is not None)
        line += (
            f"; {name} floor at T={floors[0]:.3g} .. {floors[-1]:.3g}"
            if floors
            else f"; no {name} floor up to T={_END:.0e}"
        )
        notes.append(line)
        if not resolved:
            unresolved.append(line.split(": ", 1)[0])
    return notes, unresolved


@st.composite
def _small_cases(draw):
    classes = draw(st.integers(2, 4))
    return (
        draw(logit_vectors(min_size=classes, max_size=classes, min_value=-2, max_value=2)),
        draw(logit_vectors(min_size=classes, max_size=classes, min_value=-2, max_value=2)),
    )


def _small_failure(case, context, gradient_terms, loss_terms):
    """``(description, error, tolerance)`` of the first failing criterion of one small
    example, or ``None``. A fit fails only if it decays *slower* than its order (a term is
    wrong); a faster decay means the next term happens to vanish at these logits, which the
    statement allows (:func:`~verify.checks.temperature.too_slow`)."""
    student = torch.tensor([case[0]], dtype=context.dtype, device=context.device)
    teacher = torch.tensor([case[1]], dtype=context.dtype, device=context.device)
    errors, tolerances, labels = term_identities(student, teacher, gradient_terms, loss_terms)
    for error, tolerance, label in zip(errors, tolerances, labels):
        if violations(error, tolerance):
            return (
                f"{label} = {float(error):.3g} (tolerance {float(tolerance):.2g})",
                float(error),
                float(tolerance),
            )
    for (quantity, order), fit in _fits(student, teacher, gradient_terms, loss_terms).items():
        if too_slow(fit):
            return (
                f"the {quantity} remainder after {order} term{'s' if order > 1 else ''} has "
                f"slope {fit.slope:.3f} over T in [{fit.low:.3g}, {fit.high:.3g}] "
                f"(expected -{fit.order}, tolerance {SLOPE_TOLERANCE})",
                fit.error,
                SLOPE_TOLERANCE,
            )
    return None


def run_expansion_check(statement_id, context, *, gradient_terms=None, loss_terms=None):
    """Fit the remainders' slopes and check the terms' identities on drawn logits."""
    if gradient_terms is None or loss_terms is None:
        default_gradient, default_loss = expansion_terms()
        gradient_terms = default_gradient if gradient_terms is None else gradient_terms
        loss_terms = default_loss if loss_terms is None else loss_terms
    problems = draw_examples(
        distillation_problems(
            min_classes=2,
            max_classes=32,
            min_batch_size=_BATCH,
            max_batch_size=_BATCH,
            min_scale=0.3,
            max_scale=3.0,
            max_offset=0.0,
            dtype=context.dtype,
            device=context.device,
        ),
        max(1, min(_MAXIMUM_PROBLEMS, context.examples // _BATCH)),
        seed=context.seed,
    )
    fits_per_example, identity_errors, identity_tolerances = [], [], []
    for problem in problems:
        fits_per_example.append(_fits(problem.student, problem.teacher, gradient_terms, loss_terms))
        errors, tolerances, _ = term_identities(
            problem.student, problem.teacher, gradient_terms, loss_terms
        )
        identity_errors.append(errors)
        identity_tolerances.append(tolerances)
    violated, errors, tolerances = _verdict(fits_per_example, context.dtype)
    identity_errors, identity_tolerances = (
        torch.cat(identity_errors),
        torch.cat(identity_tolerances),
    )
    violated |= bool(violations(identity_errors, identity_tolerances).any())
    vectors = sum(problem.student.shape[0] for problem in problems)
    notes, unresolved = _summary(fits_per_example, context)
    setup = [
        f"{vectors} logit vectors, {len(problems)} batches, classes "
        f"{sorted({problem.classes for problem in problems})}; "
        f"sum_i G_k,i = 0 and G_k = dL_k/dz for k < {len(gradient_terms)}"
    ]
    return conclude(
        statement_id,
        context,
        errors=torch.cat(
            [torch.tensor(errors, dtype=torch.float64).view(-1), identity_errors.double().cpu()]
        ),
        tolerances=torch.cat(
            [
                torch.tensor(tolerances, dtype=torch.float64).view(-1),
                identity_tolerances.double().cpu(),
            ]
        ),
        violated=violated,
        examples=vectors,
        search=lambda: _search(gradient_terms, loss_terms, context),
        notes=notes,
        unresolved=unresolved,
        setup=setup,
    )


def _search(gradient_terms, loss_terms, context):
    found = find_counterexample(
        _small_cases(),
        lambda case: _small_failure(case, context, gradient_terms, loss_terms) is not None,
        seed=context.seed,
        max_examples=context.search_examples,
    )
    if found is None:
        return None
    description, error, tolerance = _small_failure(found, context, gradient_terms, loss_terms)
    return Counterexample(
        f"student {vector(found[0])}, teacher {vector(found[1])}: {description}", error, tolerance
    )


@numeric_check("expansion")
def check_expansion(
    *, device="cpu", dtype=torch.float64, examples=16, seed=0, search_examples=None
):
    """[expansion] on ``examples`` logit vectors, derive's terms to order 4."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_expansion_check("expansion", context)
