r"""[convergence-radius] and [radius-tight-two-classes] against numerics.

Both take the *claimed* radius as a function of the logits, :math:`\pi/R` by default
(:func:`claimed_radius`), so that a planted wrong radius can be fed in (the negative
controls plant one 10 % too large, and for the tight statement also 10 % too small).

[convergence-radius] (:func:`run_radius_check`), on drawn logits (2 to 200 classes, scales
0.1 to 10) and on the logits where the argument is tight (two classes, an even split, a
uniform teacher):

* **half-plane**: on the circle :math:`|\epsilon| = (1 - 2^{-10})\,r` of the claimed radius
  :math:`r`, at 256 angles (:math:`\pm\pi/2` among them), the real part of each centred class
  sum :math:`\sum_j e^{\epsilon \tilde x_j}`, relative to :math:`\sum_j |e^{\epsilon\tilde
  x_j}|`, must be positive; float64, tolerance a rounding bound
  (:func:`~verify.tolerances.rounding_bound`, ``N + 4`` roundings of magnitude 1);
* **certified bounds**: :meth:`derive.bounds.CertifiedExpansion.remainder_bound` must bound the
  remainders measured with autograd, :math:`|L_{KD}(T) - \sum_{k<K} T^{-k}L_k|` and
  :math:`\|\nabla L_{KD}(T) - \sum_{k<K} T^{-k}G_k\|_2` (derive's terms through
  :class:`~verify.symbolic.SymbolicFunction`), at temperatures from 1.05 times the claimed
  radius temperature up to :math:`10^6`, :math:`K = 1, 2, 3`; the tolerance is the rounding
  bound of the measured remainder (softmax chain and terms, by their magnitudes). Below the
  float64 floor this only says that the bound is not below the round-off; the bounds are
  checked against high-precision mpmath references in the test suite.

[radius-tight-two-classes] (:func:`run_tight_check`), for :math:`N = 2`, a uniform teacher
:math:`v = (c', c')` and :math:`z = (c, c + R)` (or reversed), drawn :math:`R, c, c'`:

* autograd's :math:`L_{KD}(T)` equals :math:`T^2\log\cosh(R/2T)` (rounding tolerance);
* :mod:`derive.bounds`' ball-arithmetic coefficients :math:`L_k`, :math:`k < 40`, contain the
  closed form :func:`derive.statements.radius.two_class_coefficient` (evaluated with mpmath);
* at :math:`T = (1 \pm 0.03)\,T_r`, :math:`T_r` the claimed radius temperature, the terms
  :math:`|L_k| T^{-k}` (closed form, 50 digits) must shrink from :math:`k = 100` to
  :math:`k = 400` inside and grow outside: their ratio is about :math:`(T_r/T)^{300}/4`,
  :math:`e^{\pm 9}/4` here, so the verdict does not depend on a tolerance.

Examples
========

>>> result = CHECKS_HERE["radius-tight-two-classes"](examples=2, search_examples=5)
>>> result.verdict, result.as_expected
('holds', True)
"""

import math
from functools import lru_cache

import mpmath
import torch
from hypothesis import strategies as st

import derive
from derive.bounds import CertifiedExpansion

from ..losses import kd_loss
from ..search import find_counterexample
from ..strategies import logit_vectors
from ..symbolic import SymbolicFunction, gradient_values
from ..tolerances import SOFTMAX_CHAIN_OPERATIONS, machine_epsilon, rounding_bound
from ._common import CheckContext, Counterexample, conclude, numeric_check, vector

__all__ = [
    "claimed_radius",
    "tight_logits",
    "half_plane_margins",
    "certified_remainders",
    "run_radius_check",
    "run_tight_check",
    "CHECKS_HERE",
]

#: The circle of the half-plane test, relative to the claimed radius.
CIRCLE = 1 - 2.0**-10
#: Angles sampled on the circle (a multiple of 4, so that +-pi/2 are among them).
ANGLES = 256
#: Terms kept in the certified-bound comparison.
ORDERS = (1, 2, 3)
#: Temperatures of that comparison, as multiples of the claimed radius temperature (capped
#: at 1e6).
TEMPERATURE_FACTORS = (1.05, 3.0, 1e3)
#: The tight check: relative distance from the radius, and the orders whose terms are compared.
TIGHT_MARGIN = 0.03
TIGHT_ORDERS = (100, 400)
#: Coefficients compared with the closed form.
TIGHT_COEFFICIENTS = 40


def claimed_radius(student, teacher):
    r"""The radius the statement claims: :math:`\pi/R`, :math:`R = \max(\mathrm{range}(z),
    \mathrm{range}(v))` (``inf`` when both are constant)."""
    spread = max(max(student) - min(student), max(teacher) - min(teacher))
    return math.inf if spread == 0 else math.pi / spread


def tight_logits(logit_range):
    """The logits where the half-plane argument is tight: two classes one range apart (with a
    uniform teacher, and with both ranges equal), and an even split of four classes."""
    r = float(logit_range)
    return [([0.0, r], [0.0, 0.0]), ([0.0, r], [r, 0.0]), ([0.0, 0.0, r, r], [r, 0.0, r, 0.0])]


def half_plane_margins(student, teacher, radius, *, dtype=torch.float64):
    r"""``(margin, tolerance)``: the smallest :math:`\mathrm{Re}\sum_j e^{\epsilon\tilde x_j} /
    \sum_j |e^{\epsilon\tilde x_j}|` over :data:`ANGLES` points of the circle
    :math:`|\epsilon| = ` :data:`CIRCLE` ``* radius`` and over :math:`x = z, v`, and its
    rounding tolerance.

    >>> margin, tolerance = half_plane_margins([0.0, 1.0], [0.0, 0.0], math.pi)
    >>> 0 < margin < 2e-3, tolerance < 1e-14
    (True, True)
    """
    angles = torch.arange(ANGLES, dtype=dtype) * (2 * math.pi / ANGLES)
    rho = CIRCLE * radius
    epsilon = torch.polar(torch.full_like(angles, rho), angles)
    smallest = math.inf
    for values in (student, teacher):
        logits = torch.tensor(values, dtype=dtype)
        centred = logits - (logits.max() + logits.min()) / 2
        terms = torch.exp(epsilon[:, None] * centred[None, :].to(epsilon.dtype))
        ratio = terms.sum(-1).real / terms.abs().sum(-1)
        smallest = min(smallest, float(ratio.min()))
    tolerance = rounding_bound(dtype=dtype, operations=len(student) + 4, magnitude=1.0)
    return smallest, tolerance


@lru_cache(maxsize=None)
def _terms(quantity, order):
    return tuple(term.expr for term in derive.expand(quantity, order=order).terms)


def _measured(student, teacher, temperature, order, dtype, device="cpu"):
    """``(loss remainder, gradient remainder norm, loss tolerance, gradient tolerance)``
    measured with autograd in ``dtype`` on ``device``."""
    z = torch.tensor([student], dtype=dtype, device=device, requires_grad=True)
    v = torch.tensor([teacher], dtype=dtype, device=device)
    loss = kd_loss(z, v, temperature=temperature)
    (gradient,) = torch.autograd.grad(loss.sum(), z)
    z = z.detach()
    classes = z.shape[-1]
    loss_value = loss.detach().view(())
    gradient_value = gradient.view(-1)
    # Roundings of the measured loss and gradient: the softmax chain and its class sums, of
    # magnitude T**2 sum_i p_i (|log p_i| + |log q_i|) and T (q_i + p_i).
    operations = (
        2.0 * classes
        + 2.0 * float((z.abs().max() + v.abs().max()) / temperature)
        + SOFTMAX_CHAIN_OPERATIONS
    )
    log_q = torch.log_softmax(z / temperature, -1)
    log_p = torch.log_softmax(v / temperature, -1)
    loss_magnitude = temperature**2 * float((log_p.exp() * (log_p.abs() + log_q.abs())).sum())
    gradient_magnitude = temperature * (log_q.exp() + log_p.exp()).view(-1)
    loss_tolerance = rounding_bound(dtype=dtype, operations=operations, magnitude=loss_magnitude)
    gradient_tolerance = rounding_bound(
        dtype=dtype, operations=operations, magnitude=gradient_magnitude
    )
    for k, (loss_term, gradient_term) in enumerate(
        zip(_terms("loss", order), _terms("gradient", order))
    ):
        scale = temperature**-k
        function = SymbolicFunction(loss_term)
        loss_value = loss_value - scale * function(z, v).view(())
        loss_tolerance += scale * rounding_bound(
            dtype=dtype,
            operations=function.operations + 2 * classes,
            magnitude=float(function.magnitude(z, v).max()),
        )
        gradient_value = gradient_value - scale * gradient_values(gradient_term, z, v).view(-1)
        gradient_function = SymbolicFunction(gradient_term)
        gradient_tolerance = gradient_tolerance + scale * rounding_bound(
            dtype=dtype,
            operations=gradient_function.operations + 2 * classes,
            magnitude=gradient_function.magnitude(z, v).expand_as(z).reshape(-1),
        )
    return (
        abs(float(loss_value)),
        float(gradient_value.norm()),
        loss_tolerance,
        float(torch.as_tensor(gradient_tolerance).norm()),
    )


def certified_remainders(
    student, teacher, radius, *, dtype=torch.float64, device="cpu", orders=ORDERS
):
    """``[(description, error, tolerance), ...]``: for each temperature (multiples of the
    radius temperature ``1/radius``) and order, the amount by which the measured remainder
    exceeds the certified bound (0 when it does not), with the rounding tolerance. A
    temperature the claim puts inside the radius but where derive certifies nothing counts as
    an infinite excess."""
    expansion = CertifiedExpansion(student, teacher)
    results = []
    radius_temperature = 1 / radius if math.isfinite(radius) else 0.0
    for factor in TEMPERATURE_FACTORS:
        temperature = min(1e6, max(factor * radius_temperature, 1e-3))
        for order in orders:
            measured = _measured(student, teacher, temperature, order, dtype, device)
            for quantity, value, tolerance in (
                ("loss", measured[0], measured[2]),
                ("gradient", measured[1], measured[3]),
            ):
                bound = expansion.remainder_bound(temperature, order, quantity=quantity)
                excess = math.inf if bound is None else max(0.0, value - bound)
                results.append(
                    (
                        f"{quantity} remainder after {order} term(s) at "
                        f"T={temperature:.4g}: measured {value:.3g}, certified "
                        f"{'none' if bound is None else format(bound, '.3g')}",
                        excess,
                        tolerance,
                    )
                )
    return results


def _drawn_logits(context):
    generator = context.generator(offset=17)
    cases = []
    for _ in range(context.examples):
        classes = int(
            round(
                math.exp(
                    float(torch.rand((), generator=generator, dtype=torch.float64)) * math.log(200)
                )
            )
        )
        classes = max(2, classes)
        scale = 10 ** (2 * float(torch.rand((), generator=generator, dtype=torch.float64)) - 1)
        student = torch.randn(classes, generator=generator, dtype=torch.float64) * scale
        teacher = torch.randn(classes, generator=generator, dtype=torch.float64) * scale
        cases.append((student.tolist(), teacher.tolist()))
    return cases


def _radius_failures(student, teacher, radius_of, context, *, bounds=True):
    """``[(description, error, tolerance)]`` of one pair of logit vectors."""
    radius = radius_of(student, teacher)
    failures = []
    if math.isfinite(radius):
        margin, tolerance = half_plane_margins(student, teacher, radius, dtype=context.dtype)
        failures.append(
            (
                f"on |eps| = {CIRCLE:.4f} x the claimed radius {radius:.4g} a class "
                f"sum has relative real part {margin:.3g} (must be > 0)",
                max(0.0, -margin),
                tolerance,
            )
        )
    if bounds:
        failures += certified_remainders(
            student, teacher, radius, dtype=context.dtype, device=context.device
        )
    return failures


@st.composite
def _small_pairs(draw):
    classes = draw(st.integers(2, 5))
    student = draw(logit_vectors(min_size=classes, max_size=classes, min_value=-3, max_value=3))
    teacher = draw(logit_vectors(min_size=classes, max_size=classes, min_value=-3, max_value=3))
    return student, teacher


def _first_violation(failures):
    for description, error, tolerance in failures:
        if error > tolerance:
            return description, error, tolerance
    return None


def run_radius_check(statement_id, context, *, radius_of=claimed_radius):
    """[convergence-radius] with the claimed radius ``radius_of(student, teacher)``."""
    cases = _drawn_logits(context) + tight_logits(2.0)
    errors, tolerances = [], []
    for student, teacher in cases:
        for _, error, tolerance in _radius_failures(student, teacher, radius_of, context):
            errors.append(error)
            tolerances.append(tolerance)

    def search():
        found = find_counterexample(
            _small_pairs(),
            lambda pair: (
                _first_violation(_radius_failures(*pair, radius_of, context, bounds=False))
                is not None
            ),
            seed=context.seed,
            max_examples=context.search_examples,
        )
        if found is None:
            return None
        description, error, tolerance = _first_violation(
            _radius_failures(*found, radius_of, context, bounds=False)
        )
        return Counterexample(
            f"student {vector(found[0])}, teacher {vector(found[1])}: {description}",
            error,
            tolerance,
        )

    classes = sorted({len(student) for student, _ in cases})
    return conclude(
        statement_id,
        context,
        errors=errors,
        tolerances=tolerances,
        examples=len(cases),
        search=search,
        setup=[
            f"{len(cases)} pairs of logit vectors ({context.examples} drawn, "
            f"{len(cases) - context.examples} where the argument is tight), "
            f"classes {classes[0]}..{classes[-1]}; half-plane test at "
            f"{ANGLES} angles; certified bounds at T = "
            f"{', '.join(f'{f:g}' for f in TEMPERATURE_FACTORS)} x R/pi, "
            f"K = {', '.join(map(str, ORDERS))}"
        ],
    )


# -- [radius-tight-two-classes] -------------------------------------------------------------


def _closed_form_term(power, logit_range):
    """:math:`|L_k|` of the uniform-teacher family, with mpmath (current precision)."""
    if power % 2:
        return mpmath.mpf(0)
    n = power // 2 + 1
    return (
        (1 - mpmath.mpf(4) ** -n)
        * mpmath.zeta(2 * n)
        * mpmath.mpf(logit_range) ** (2 * n)
        / (n * mpmath.pi ** (2 * n))
    )


def _tight_failures(logit_range, offsets, radius_of, context, *, coefficients=True):
    """``[(description, error, tolerance)]`` for :math:`z = (c, c + R)`, :math:`v = (c', c')`."""
    student = [offsets[0], offsets[0] + logit_range]
    teacher = [offsets[1], offsets[1]]
    # The range the floats really have (offsets[0] + logit_range is rounded).
    with mpmath.workdps(60):
        logit_range = mpmath.mpf(student[1]) - mpmath.mpf(student[0])
    radius = radius_of(student, teacher)
    radius_temperature = 1 / radius
    failures = []
    with mpmath.workdps(50):
        for sign, word in ((1, "inside"), (-1, "outside")):
            temperature = mpmath.mpf(radius_temperature) * (1 + sign * TIGHT_MARGIN)
            low, high = (_closed_form_term(k, logit_range) * temperature**-k for k in TIGHT_ORDERS)
            growth = float(mpmath.log(high / low))
            # Inside the claimed radius the terms must shrink, outside they must grow.
            failures.append(
                (
                    f"R={float(logit_range):.4g}: the terms |L_k| T^-k at T = "
                    f"{float(temperature):.4g} ({word} the claimed radius temperature "
                    f"{radius_temperature:.4g}) change by a factor e^{growth:.3g} "
                    f"from k={TIGHT_ORDERS[0]} to k={TIGHT_ORDERS[1]}",
                    max(0.0, sign * growth),
                    0.0,
                )
            )
    dtype = context.dtype
    for factor in (1.1, 10.0):
        temperature = factor * float(logit_range) / math.pi
        z = torch.tensor([student], dtype=dtype, device=context.device)
        v = torch.tensor([teacher], dtype=dtype, device=context.device)
        measured = float(kd_loss(z, v, temperature=temperature))
        with mpmath.workdps(30):
            exact = float(
                temperature**2
                * mpmath.log(mpmath.cosh(logit_range / (2 * mpmath.mpf(temperature))))
            )
        operations = (
            4.0
            + 2.0 * float((z.abs().max() + v.abs().max()) / temperature)
            + SOFTMAX_CHAIN_OPERATIONS
        )
        magnitude = temperature**2 * (2 * float(logit_range) / temperature + 2 * math.log(2) + 1)
        failures.append(
            (
                f"R={float(logit_range):.4g}: autograd's L_KD(T={temperature:.4g}) = "
                f"{measured:.8g}, T^2 log cosh(R/2T) = {exact:.8g}",
                abs(measured - exact),
                rounding_bound(dtype=dtype, operations=operations, magnitude=magnitude)
                + machine_epsilon(torch.float64) * 4 * abs(exact),
            )
        )
    if coefficients:
        balls = CertifiedExpansion(student, teacher).coefficients("loss", TIGHT_COEFFICIENTS)
        with mpmath.workdps(40):
            for k, ball in enumerate(balls):
                closed = _closed_form_term(k, logit_range) * (-1 if (k // 2) % 2 else 1)
                mantissa, exponent = ball.mid().man_exp()
                distance = abs(float(mpmath.ldexp(int(mantissa), int(exponent)) - closed))
                tolerance = float(ball.rad()) + 2.0**-100 * float(abs(closed))
                failures.append(
                    (
                        f"R={float(logit_range):.4g}: L_{k} in ball arithmetic "
                        f"{float(ball.mid()):.6g} against the closed form "
                        f"{float(closed):.6g}",
                        distance,
                        tolerance,
                    )
                )
    return failures


def run_tight_check(statement_id, context, *, radius_of=claimed_radius):
    """[radius-tight-two-classes] with the claimed radius ``radius_of(student, teacher)``."""
    generator = context.generator(offset=29)
    errors, tolerances = [], []
    ranges = []
    for _ in range(context.examples):
        logit_range = 10 ** (
            3 * float(torch.rand((), generator=generator, dtype=torch.float64)) - 1
        )
        offsets = (4 * torch.randn(2, generator=generator, dtype=torch.float64)).tolist()
        ranges.append(logit_range)
        for _, error, tolerance in _tight_failures(logit_range, offsets, radius_of, context):
            errors.append(error)
            tolerances.append(tolerance)

    quarter = st.integers(1, 40).map(lambda k: k / 4)

    def fails(case):
        return _first_violation(
            _tight_failures(case[0], case[1], radius_of, context, coefficients=False)
        )

    def search():
        cases = st.tuples(quarter, st.tuples(quarter, quarter))
        found = find_counterexample(
            cases,
            lambda case: fails(case) is not None,
            seed=context.seed,
            max_examples=context.search_examples,
        )
        if found is None:
            return None
        description, error, tolerance = fails(found)
        return Counterexample(
            f"student [{found[1][0]}, {found[1][0] + found[0]}], teacher "
            f"[{found[1][1]}, {found[1][1]}]: {description}",
            error,
            tolerance,
        )

    return conclude(
        statement_id,
        context,
        errors=errors,
        tolerances=tolerances,
        examples=len(ranges),
        search=search,
        setup=[
            f"{len(ranges)} two-class uniform-teacher logits, R in "
            f"[{min(ranges):.3g}, {max(ranges):.3g}]; terms compared at "
            f"k = {TIGHT_ORDERS[0]} and {TIGHT_ORDERS[1]}, T = (1 +- "
            f"{TIGHT_MARGIN}) x the claimed radius temperature; "
            f"{TIGHT_COEFFICIENTS} coefficients against the closed form"
        ],
    )


@numeric_check("convergence-radius")
def check_convergence_radius(
    *, device="cpu", dtype=torch.float64, examples=4, seed=0, search_examples=None
):
    """[convergence-radius] on ``examples`` drawn pairs of logit vectors and three tight ones."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_radius_check("convergence-radius", context)


@numeric_check("radius-tight-two-classes")
def check_radius_tight_two_classes(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """[radius-tight-two-classes] on ``examples`` drawn ranges and offsets."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_tight_check("radius-tight-two-classes", context)


#: The checks of this module, by statement id.
CHECKS_HERE = {
    "convergence-radius": check_convergence_radius,
    "radius-tight-two-classes": check_radius_tight_two_classes,
}
