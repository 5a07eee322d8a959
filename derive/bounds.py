r"""Certified bounds on the remainder of the expansion in :math:`1/T`, for given logits.

With :math:`\epsilon = 1/T` complex, KD's loss :math:`L(\epsilon) = \epsilon^{-2}\,
\mathrm{KL}(p\,\|\,q)` and its logit gradient :math:`G(\epsilon) = \epsilon^{-1}(q - p)` are
analytic on the disk :math:`|\epsilon| < \pi/R`, :math:`R = \max(\mathrm{range}(z),
\mathrm{range}(v))` ([convergence-radius]): the series :math:`\sum_k T^{-k} L_k` converges for
:math:`T > R/\pi`. Inside, the Cauchy estimate bounds the coefficients,
:math:`|L_k| \le M(\rho)\,\rho^{-k}` with :math:`M(\rho) = \max_{|w| = \rho} |L(w)|`, and so the
remainder after ``K`` terms, for every :math:`\epsilon' \le \epsilon < \rho`:

.. math::

    \Big|L(\epsilon') - \sum_{k<K} \epsilon'^k L_k\Big|
    \le \sum_{k=K}^{K+m-1} |L_k|\,\epsilon^k
        + M(\rho)\,\frac{(\epsilon/\rho)^{K+m}}{1 - \epsilon/\rho}.

:class:`CertifiedExpansion` computes every quantity on the right with ball arithmetic
(python-flint's ``arb``/``acb``): the coefficients :math:`L_k` (and the
norms :math:`\|G_k\|_2`) by power-series arithmetic on the class sums, and :math:`M(\rho)` by
covering the circle :math:`|w| = \rho` with complex balls on which the function is enclosed,
refined where the enclosure is too wide to decide the maximum; it takes the smallest bound
over a few circles and over ``m``. The bound returned for ``T`` therefore holds for ``T`` and
every larger temperature. Outside the disk (:math:`T \le R/\pi`) there is no bound (``None``).

:math:`M(\rho)` is also bounded by a majorant that needs only the range (:func:`circle_factor`)
and the spread of :math:`d = z - v` ([convergence-radius], the uniform bound):

.. math::

    |L(w)| \le \tfrac12\big(C\,\langle\hat d^2\rangle + C^2\langle|\hat d|\rangle^2\big),\qquad
    \|G(w)\|_2 \le (C + C^2)\,\|\hat d\|_2 / N,\qquad
    C = \frac{e^{|\mathrm{Re}\,w| R}}{\cos(|\mathrm{Im}\,w| R/2)},

with :math:`\hat d = d - \langle d\rangle`; the smaller of the covering and the majorant is used.
:func:`uniform_coefficient_bound` and :func:`uniform_remainder_bound` state the majorant for
logits of range at most ``R`` and any ``N`` (``Var(d) <= R**2``).

Examples
========

>>> expansion = CertifiedExpansion([0.0, 1.0, 3.0], [0.5, 0.0, 2.0])
>>> round(expansion.radius_temperature, 4)      # R/pi, R = 3
0.9549
>>> expansion.converges(0.9), expansion.converges(1.0)
(False, True)
>>> expansion.remainder_bound(0.9, order=2) is None
True
>>> bound = expansion.remainder_bound(10.0, order=2)
>>> 0 < bound < 1e-2
True
>>> expansion.threshold_temperature(order=1, tolerance=0.01) > expansion.radius_temperature
True
"""

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import flint

from ._errors import MAX_ORDER, DeriveError, check_argument, check_choice, check_order
from ._logits import read_logits

__all__ = [
    "CertifiedExpansion",
    "ExampleBound",
    "certified_bounds",
    "radius_temperature",
    "circle_factor",
    "uniform_coefficient_bound",
    "uniform_remainder_bound",
    "load_logits",
    "EXTRA_TERMS",
    "CIRCLES",
    "MAX_BOUND_VALUES",
    "MAX_BOUND_CLASSES",
    "MAX_BOUND_EXAMPLES",
]

#: Explicit coefficients beyond the first ``K`` that the bound may use before the Cauchy tail.
EXTRA_TERMS = 24
#: The circles of the Cauchy estimate, as fractions of the radius pi/R (from 1/T = 0.9 pi/R
#: on, one circle halfway between 1/T and pi/R instead).
CIRCLES = (0.5, 0.8, 0.95)
#: Highest degree of the moment polynomials that enclose the class sums on a circle; each
#: circle uses the lowest degree whose remainder, added to every enclosure, is below 2**-64.
_SUM_DEGREE = 48
#: Working precision in bits: coefficients, and the (coarser) circle maxima.
_PRECISION = 128
_CIRCLE_PRECISION = 64
#: Arcs on the upper half circle before refinement, and the most after it.
_START_ARCS = 8
_MAX_ARCS = {"loss": 256, "gradient": 64}
#: Refinement stops once the largest upper bound is within this factor of the largest lower one.
_REFINE_FACTOR = {"loss": 1.25, "gradient": 1.25}
#: The most logit values (B*N per array) the command line accepts (its cost grows with B*N).
MAX_BOUND_VALUES = 1 << 20
#: The most classes of one example (memory and time grow with N: about 2.5 s and 110 MB for
#: N = 4096 on 2 CPU cores; N = 10**6 would need several GB).
MAX_BOUND_CLASSES = 4096
#: The most examples one call bounds (each costs about 0.2 s with 10 classes on 2 CPU cores).
MAX_BOUND_EXAMPLES = 4096
QUANTITIES = ("loss", "gradient")


def _up(value):
    """A float >= every point of the arb ``value`` (``inf`` if it is not finite)."""
    if not value.is_finite():
        return math.inf
    upper = float(value.upper())
    return math.nextafter(upper, math.inf)


def _down(value):
    """A float <= every point of the arb ``value``."""
    if not value.is_finite():
        return -math.inf
    return math.nextafter(float(value.lower()), -math.inf)


def _validated_vector(values, name):
    try:
        vector = [float(x) for x in values]
    except (TypeError, ValueError):
        raise DeriveError(f"{name} logits must be a sequence of numbers, got {values!r}") from None
    check_argument(len(vector) >= 2, "{} logits need at least 2 classes, got {}", name, len(vector))
    bad = next((x for x in vector if not math.isfinite(x)), None)
    check_argument(bad is None, "{} logits must be finite, got {}", name, bad)
    return vector


def _validated_temperature(temperature):
    check_argument(
        isinstance(temperature, numbers.Real)
        and not isinstance(temperature, bool)
        and math.isfinite(temperature)
        and temperature > 0,
        "temperature must be a finite number > 0, got {!r}",
        temperature,
    )
    return float(temperature)


def circle_factor(x):
    r""":math:`C(x) = e^{x}/\cos(x/2)`, an upper bound on :math:`N \max_i |\mathrm{softmax}(w y)_i|`
    for :math:`|w| R = x < \pi` and logits :math:`y` centred in :math:`[-R/2, R/2]` (``inf`` from
    :math:`x \ge \pi` on).

    >>> circle_factor(0.0), round(circle_factor(1.0), 4)
    (1.0, 3.0975)
    """
    check_argument(x >= 0, "x must be >= 0, got {!r}", x)
    if x >= math.pi:
        return math.inf
    return math.exp(x) / math.cos(x / 2)


def _uniform_majorant(x, quantity):
    """The majorant of :math:`|L|/R^2` (loss) or :math:`\\sqrt N\\|G\\|/R` (gradient) on
    :math:`|w| = x/R`."""
    c = circle_factor(x)
    return (c + c * c) / 2 if quantity == "loss" else c + c * c


def _minimize_over_circles(function, low, high=math.pi, points=400):
    """The smallest value of ``function(x)`` over an even grid of ``x`` in ``(low, high)``: an
    upper bound of the infimum (each value is a valid bound; the float evaluation's rounding is
    covered by the caller's factor 1 + 1e-12)."""
    best = math.inf
    for j in range(1, points):
        x = low + (high - low) * j / points
        best = min(best, function(x))
    return best


def uniform_coefficient_bound(power: int, logit_range: float, *, quantity: str = "loss") -> float:
    r"""A bound on term ``power`` of the expansion that depends only on the logits' range.

    For every :math:`N` and all logits with :math:`\max(\mathrm{range}(z), \mathrm{range}(v))
    \le R`:

    .. math::

        |L_k| \le R^{k+2} \min_{0<x<\pi} \frac{C(x) + C(x)^2}{2\,x^k}, \qquad
        \sqrt N\,\|G_k\|_2 \le R^{k+1} \min_{0<x<\pi} \frac{C(x) + C(x)^2}{x^k},

    :math:`C` = :func:`circle_factor` (the minimum is taken over a grid, so the value returned
    is an upper bound of it). The proof is in ``docs/certified-bounds.md``.

    >>> round(uniform_coefficient_bound(0, 1.0), 3)     # |L_0| = Var(z - v)/2 <= 1/2 when R = 1
    1.0
    """
    check_argument(
        isinstance(power, int) and not isinstance(power, bool) and power >= 0,
        "power must be an integer >= 0, got {!r}",
        power,
    )
    check_choice(quantity, QUANTITIES, name="quantity")
    check_argument(
        logit_range >= 0 and math.isfinite(logit_range),
        "logit_range must be a finite number >= 0, got {!r}",
        logit_range,
    )
    if logit_range == 0:
        return 0.0
    shape = _minimize_over_circles(lambda x: _uniform_majorant(x, quantity) / x**power, 0.0)
    if power == 0:
        shape = min(shape, _uniform_majorant(0.0, quantity))
    scale = logit_range ** (power + (2 if quantity == "loss" else 1))
    return math.nextafter(shape * scale * (1 + 1e-12), math.inf)


def _remainder_shape(t, order, quantity, points=400):
    r"""``_minimize_over_circles`` of the remainder's majorant :math:`M(x)\,(t/x)^K/(1 - t/x)`
    on ``(t, pi)``, with :func:`_uniform_majorant` and :func:`circle_factor` inlined: the same
    floating-point operations in the same order (a test compares the two bit for bit), at a
    fraction of the calls (the monitor evaluates it at every step)."""
    best = math.inf
    span = math.pi - t
    for j in range(1, points):
        x = t + span * j / points
        c = math.exp(x) / math.cos(x / 2) if x < math.pi else math.inf
        majorant = (c + c * c) / 2 if quantity == "loss" else c + c * c
        ratio = t / x
        value = majorant * ratio**order / (1 - ratio)
        if value < best:
            best = value
    return best


def uniform_remainder_bound(
    logit_range: float, temperature: float, order: int, *, quantity: str = "loss"
) -> float | None:
    r"""A bound on the remainder after ``order`` terms that depends only on ``R`` and ``T``.

    For every :math:`N`, all logits with range at most :math:`R` and every :math:`T' \ge T >
    R/\pi`, with :math:`t = R/T`:

    .. math::

        \Big|L(T') - \sum_{k<K} T'^{-k} L_k\Big| \le R^2 \min_{t<x<\pi}
        \frac{C(x) + C(x)^2}{2}\,\frac{(t/x)^K}{1 - t/x},

    and :math:`\sqrt N` times the gradient remainder's norm is at most the same with :math:`R`
    in place of :math:`R^2` and without the 1/2. ``None`` when :math:`T \le R/\pi`.

    >>> uniform_remainder_bound(1.0, 0.3, 1) is None
    True
    >>> uniform_remainder_bound(1.0, 100.0, 2) < 1e-3
    True
    """
    check_order(order)
    check_choice(quantity, QUANTITIES, name="quantity")
    temperature = _validated_temperature(temperature)
    check_argument(
        logit_range >= 0 and math.isfinite(logit_range),
        "logit_range must be a finite number >= 0, got {!r}",
        logit_range,
    )
    if logit_range == 0:
        return 0.0
    t = logit_range / temperature
    if t >= math.pi * (1 - 1e-12):
        return None

    shape = _remainder_shape(t, order, quantity)
    scale = logit_range ** (2 if quantity == "loss" else 1)
    return math.nextafter(shape * scale * (1 + 1e-12), math.inf)


@dataclass(frozen=True)
class ExampleBound:
    """The certified bounds for one example (one row of the logits) at one temperature."""

    radius_temperature: float
    converges: bool
    loss_remainder_bound: float | None  # None where the series does not converge
    gradient_remainder_bound: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "radius_temperature": self.radius_temperature,
            "converges": self.converges,
            "loss_remainder_bound": self.loss_remainder_bound,
            "gradient_remainder_bound": self.gradient_remainder_bound,
        }


class CertifiedExpansion:
    r"""The expansion of KD for one pair of logit vectors, with certified remainder bounds.

    Parameters
    ==========

    student, teacher : sequence of float
        The logits :math:`z` and :math:`v` of one example, of one length :math:`N \ge 2`.

    The logits are centred at their midranges (KD is invariant under adding a constant to
    either), exactly, in ball arithmetic. Coefficients and circle maxima are computed on
    demand and cached.
    """

    def __init__(self, student: Sequence[float], teacher: Sequence[float]) -> None:
        z = _validated_vector(student, "student")
        v = _validated_vector(teacher, "teacher")
        check_argument(
            len(z) == len(v),
            "student and teacher logits must have one length, got {} and {}",
            len(z),
            len(v),
        )
        check_argument(
            len(z) <= MAX_BOUND_CLASSES,
            "certified bounds take at most {} classes per example (their cost grows with N), "
            "got {}",
            MAX_BOUND_CLASSES,
            len(z),
        )
        self.classes = len(z)
        self._student, self._teacher = z, v
        exact_z, exact_v = [Fraction(x) for x in z], [Fraction(x) for x in v]
        exact_range = max(max(exact_z) - min(exact_z), max(exact_v) - min(exact_v))
        with flint.ctx.workprec(_PRECISION):
            self._z = _centred(exact_z)
            self._v = _centred(exact_v)
            self._range = _ball(exact_range)
            differences = [a - b for a, b in zip(self._z, self._v)]
            mean = sum(differences, flint.arb(0)) / self.classes
            self._spread = [d - mean for d in differences]
        self.logit_range = _up(self._range)
        self._series: dict[Any, Any] = {}
        self._circles: dict[Any, Any] = {}

    # -- the radius ------------------------------------------------------------------------
    @property
    def radius_temperature(self) -> float:
        r""":math:`R/\pi` (nearest float): the series converges for every larger temperature."""
        with flint.ctx.workprec(_PRECISION):
            return float(self._range / flint.arb.pi())

    def converges(self, temperature: float) -> bool:
        r"""Whether :math:`T > R/\pi`, decided rigorously (``False`` when it cannot be decided)."""
        temperature = _validated_temperature(temperature)
        with flint.ctx.workprec(_PRECISION):
            return bool(flint.arb(temperature) * flint.arb.pi() - self._range > 0)

    # -- coefficients ----------------------------------------------------------------------
    def _sums(self, length):
        """Series of the class sums and of the teacher-weighted sum of v - z, to ``length``."""
        arb_series = flint.arb_series
        key = ("sums", length)
        if key not in self._series:
            z_exponentials = [arb_series([0, x], prec=length).exp() for x in self._z]
            v_exponentials = [arb_series([0, x], prec=length).exp() for x in self._v]
            sum_z = _series_sum(z_exponentials)
            sum_v = _series_sum(v_exponentials)
            weighted = _series_sum(
                [e * (b - a) for e, a, b in zip(v_exponentials, self._z, self._v)]
            )
            self._series[key] = (z_exponentials, v_exponentials, sum_z, sum_v, weighted)
        return self._series[key]

    def coefficients(self, quantity, count):
        r"""Balls (``flint.arb``) enclosing the first ``count`` coefficients: :math:`L_k` for the
        loss, :math:`\|G_k\|_2` for the gradient.

        >>> expansion = CertifiedExpansion([1.0, -1.0], [0.0, 0.0])
        >>> [round(float(c.mid()), 6) for c in expansion.coefficients("loss", 3)]
        [0.5, 0.0, -0.083333]
        """
        check_choice(quantity, QUANTITIES, name="quantity")
        check_argument(
            isinstance(count, int) and 1 <= count <= MAX_ORDER + EXTRA_TERMS,
            "count must be an integer in 1..{}, got {!r}",
            MAX_ORDER + EXTRA_TERMS,
            count,
        )
        key = (quantity, count)
        if key in self._series:
            return self._series[key]
        length = max(count + 2, _SUM_DEGREE + 1)
        cap = flint.ctx.cap
        try:
            flint.ctx.cap = length
            with flint.ctx.workprec(_PRECISION):
                z_exponentials, v_exponentials, sum_z, sum_v, weighted = self._sums(length)
                if quantity == "loss":
                    x = flint.arb_series([0, 1], prec=length)
                    divergence = x * weighted / sum_v - sum_v.log() + sum_z.log()
                    values = divergence.coeffs()
                    values += [flint.arb(0)] * (length - len(values))
                    result = values[2 : count + 2]
                else:
                    result = self._gradient_norms(
                        count, z_exponentials, v_exponentials, sum_z, sum_v
                    )
        finally:
            flint.ctx.cap = cap
        self._series[key] = result
        return result

    def _gradient_norms(self, count, z_exponentials, v_exponentials, sum_z, sum_v):
        arb = flint.arb
        length = count + 1
        flint.ctx.cap = length
        inverse_z, inverse_v = 1 / sum_z, 1 / sum_v
        squares = [arb(0)] * count
        for ez, ev in zip(z_exponentials, v_exponentials):
            difference = (ez * inverse_z - ev * inverse_v).coeffs()
            difference += [arb(0)] * (length - len(difference))
            for k in range(count):
                c = difference[k + 1]
                squares[k] += c * c
        return [_root(s) for s in squares]

    def _coefficient_uppers(self, quantity, count):
        return [_up(abs(c)) for c in self.coefficients(quantity, count)]

    # -- the maximum on a circle -----------------------------------------------------------
    def circle_maximum(self, quantity, rho):
        r"""An upper bound on :math:`\max_{|w| = \rho}` of :math:`|L(w)|` (loss) or
        :math:`\|G(w)\|_2` (gradient), for :math:`0 < \rho < \pi/R`: the smaller of the ball
        covering and the majorant.

        >>> expansion = CertifiedExpansion([1.0, -1.0], [0.0, 0.0])  # L = log cosh(w)/w^2
        >>> 0.522 < expansion.circle_maximum("loss", 0.5) < 1.25 * 0.523    # max at w = i/2
        True
        """
        check_choice(quantity, QUANTITIES, name="quantity")
        key = (quantity, float(rho))
        if key not in self._circles:
            with flint.ctx.workprec(_CIRCLE_PRECISION):
                rho_ball = flint.arb(float(rho))
                check_argument(
                    bool(rho_ball > 0)
                    and (self._range.is_zero() or bool(rho_ball * self._range < flint.arb.pi())),
                    "rho must be in (0, pi/R) = (0, {:.6g}), got {!r}",
                    math.pi / self.logit_range if self.logit_range else math.inf,
                    rho,
                )
                majorant = self._majorant(quantity, rho_ball)
                self._degree = _sum_degree(_up(rho_ball * self._radius_bound() * 1.2))
                covering = self._covering(quantity, rho_ball, majorant)
            self._circles[key] = min(majorant, covering)
        return self._circles[key]

    def _majorant(self, quantity, rho):
        """The majorant on the circle: C from the range, the spread of d from the data."""
        arb = flint.arb
        count = self.classes
        if all(d.is_zero() for d in self._spread):
            return 0.0
        factor = self._circle_factor(rho)
        if quantity == "loss":
            variance = sum((d * d for d in self._spread), arb(0)) / count
            mean_absolute = sum((abs(d) for d in self._spread), arb(0)) / count
            value = (factor * variance + factor * factor * mean_absolute**2) / 2
        else:
            norm = sum((d * d for d in self._spread), arb(0)).sqrt()
            value = (factor + factor * factor) * norm / count
        return _up(value)

    def _circle_factor(self, rho):
        r"""An arb upper bound on :math:`\max_{|w| = \rho} e^{|Re w| R}/\cos(|Im w| R/2)`,
        by covering the quarter circle with balls of angles."""
        arb = flint.arb
        pieces = 64
        best = arb(0)
        half_pi = arb.pi() / 2
        for j in range(pieces):
            angle = half_pi * (2 * j + 1) / (2 * pieces) + arb(0, 1) * half_pi / (2 * pieces)
            real, imaginary = rho * angle.cos(), rho * angle.sin()
            value = (abs(real) * self._range).exp() / (abs(imaginary) * self._range / 2).cos()
            best = arb(max(_up(best), _up(value)))
        return best

    def _arc(self, rho, start, stop):
        """The middle point of the arc ``[start, stop]`` (angles) of the circle ``|w| = rho``,
        a complex ball containing the arc, the arc's largest distance from its middle, and its
        half-width in angle."""
        arb, acb = flint.arb, flint.acb
        middle = arb((start + stop) / 2)
        distance = _up(rho * arb(stop - start) / 2)
        centre = acb(rho * middle.cos(), rho * middle.sin())
        ball = acb(centre.real + arb(0, distance), centre.imag + arb(0, distance))
        return centre, ball, distance, _up(arb(stop - start) / 2)

    def _radius_bound(self):
        """The largest centred logit (at most R/2)."""
        return flint.arb(max(_up(abs(x)) for x in self._z + self._v))

    def _sum_polynomials(self, degree):
        """The moment polynomials (degree < ``degree``) of the class sums, their derivatives,
        and the radius and mass of each sum, which bound the rest of their series."""
        key = ("polynomials", degree)
        if key not in self._series:
            cap = flint.ctx.cap
            try:
                flint.ctx.cap = _SUM_DEGREE + 1
                with flint.ctx.workprec(_PRECISION):
                    _, _, sum_z, sum_v, weighted = self._sums(_SUM_DEGREE + 1)
            finally:
                flint.ctx.cap = cap
            arb = flint.arb
            polynomials = [flint.acb_poly(s.coeffs()[:degree]) for s in (sum_z, sum_v, weighted)]
            derivatives = [p.derivative() for p in polynomials]
            self._series[("second derivatives", degree)] = [p.derivative() for p in derivatives]
            radius_z = arb(max(_up(abs(x)) for x in self._z))
            radius_v = arb(max(_up(abs(x)) for x in self._v))
            weight = sum((abs(b - a) for a, b in zip(self._z, self._v)), arb(0))
            masses = (
                (radius_z, arb(self.classes)),
                (radius_v, arb(self.classes)),
                (radius_v, weight),
            )
            self._series[key] = (polynomials, derivatives, masses)
        return self._series[key]

    def _sums_on(self, ball, *, derivative=False, weighted=True):
        r"""Enclosures on a complex ball of :math:`\sum_j e^{w z_j}`, :math:`\sum_j e^{w v_j}` and
        :math:`\sum_j e^{w v_j}(v_j - z_j)` (centred logits), or of their derivatives in
        :math:`w`: the moment polynomial plus a ball for the rest of the series,
        :math:`\sum_{k \ge n} m\,x^k/k! \le m\,x^n e^x/n!` with :math:`x = r|w|` (derivative:
        :math:`m\,r\,x^{n-1}e^x/(n-1)!`)."""
        arb, acb = flint.arb, flint.acb
        polynomials, derivatives, masses = self._sum_polynomials(self._degree)
        modulus = arb(_up(abs(ball)))
        degree = self._degree - 1 if derivative else self._degree
        factorial = arb(math.factorial(degree))
        values = []
        chosen = derivatives if derivative else polynomials
        for polynomial, (radius, mass) in list(zip(chosen, masses))[: 3 if weighted else 2]:
            x = radius * modulus
            tail = _up(mass * (radius if derivative else 1) * x**degree / factorial * x.exp())
            value = polynomial(ball)
            values.append(acb(value.real + arb(0, tail), value.imag + arb(0, tail)))
        return values

    def _sum_jets(self, ball, length):
        r"""Jets :math:`[S(w), S'(w), S''(w)/2, \dots]` (``length`` <= 3 terms, as
        ``flint.acb_series``) on a complex ball of the three class sums of :meth:`_sums_on`; the
        rest of the series of :math:`S^{(j)}` is at most :math:`m\,r^j x^{n-j}e^x/(n-j)!`."""
        arb, acb = flint.arb, flint.acb
        polynomials, first, masses = self._sum_polynomials(self._degree)
        second = self._series[("second derivatives", self._degree)]
        modulus = arb(_up(abs(ball)))
        jets = []
        for index, (radius, mass) in enumerate(masses):
            x = radius * modulus
            coefficients = []
            for j, family in enumerate((polynomials, first, second)[:length]):
                degree = self._degree - j
                tail = _up(
                    mass
                    * radius**j
                    * x**degree
                    * x.exp()
                    / math.factorial(degree)
                    / math.factorial(j)
                )
                value = family[index](ball) / math.factorial(j)
                coefficients.append(acb(value.real + arb(0, tail), value.imag + arb(0, tail)))
            jets.append(flint.acb_series(coefficients, prec=length))
        return jets

    def _loss_jet(self, ball, length):
        r"""The jet :math:`[L(w), L'(w), L''(w)/2][:\mathrm{length}]` on a complex ball (or a
        point):
        :math:`L = (wA - \log S_v + \log S_z)/w^2`, :math:`A = W/S_v`, by power-series
        arithmetic on the jets of the class sums."""
        cap = flint.ctx.cap
        try:
            flint.ctx.cap = length
            sum_z, sum_v, weighted = self._sum_jets(ball, length)
            w = flint.acb_series([ball, 1], prec=length)
            divergence = w * weighted / sum_v - sum_v.log() + sum_z.log()
            coefficients = (divergence / (w * w)).coeffs()
        except ValueError:
            # A leading coefficient not certainly nonzero (a ball too wide): no enclosure.
            return [flint.acb(0, 0) + flint.acb(flint.arb("nan"))] * length
        finally:
            flint.ctx.cap = cap
        return coefficients + [flint.acb(0)] * (length - len(coefficients))

    def _moments(self, degree):
        r"""The moment matrices :math:`\sum_i z_i^{j+k}`, :math:`\sum_i z_i^j v_i^k`,
        :math:`\sum_i v_i^{j+k}` (:math:`j, k < n`) of the centred logits, ``flint.arb_mat``
        of shape ``[n, n]``: the Gram matrices of the matrices of powers, which make the
        gradient's norm on the circle cost :math:`O(n^2)` instead of :math:`O(N)` per point."""
        key = ("moments", degree)
        if key not in self._series:
            arb = flint.arb
            matrices = []
            for values in (self._z, self._v):
                rows = []
                for x in values:
                    row, power = [arb(1)], arb(1)
                    for _ in range(1, degree):
                        power = power * x
                        row.append(power)
                    rows.append(row)
                matrices.append(flint.arb_mat(rows))
            powers_z, powers_v = matrices
            radii = [arb(max(_up(abs(x)) for x in values)) for values in (self._z, self._v)]
            self._series[key] = (
                powers_z.transpose() * powers_z,
                powers_z.transpose() * powers_v,
                powers_v.transpose() * powers_v,
                radii,
            )
        return self._series[key]

    def _gradient_norms_on(self, points, *, derivative=False):
        r"""Enclosures of :math:`\|G(w)\|_2` (or of :math:`\|G'(w)\|_2`) on each of ``points``
        (complex balls), all at once.

        With :math:`u_k(w) = w^k/k!`, :math:`e^{w x} = \sum_{k<n} x^k u_k(w)` up to at most
        :math:`(r|w|)^n e^{r|w|}/n!` for :math:`|x| \le r`, so :math:`q = e^{wz}/S_z = V_z a`
        with :math:`V_z` the matrix of powers :math:`z_i^k` and :math:`a = u(w)/S_z`;
        :math:`G = (V_z a - V_v b)/w`, and
        :math:`G' = [q\circ(z + \alpha) - p\circ(v + \beta)]/w` with :math:`\alpha = -S_z'/S_z -
        1/w` (likewise :math:`\beta`), where :math:`x e^{wx} = \sum_{k \ge 1} x^k u_{k-1}(w)`.
        :math:`\|V_z a - V_v b\|^2 = a^H V_z^T V_z a - 2\,\mathrm{Re}\,a^H V_z^T V_v b + b^H
        V_v^T V_v b` (:meth:`_moments`). The truncation enters through the triangle
        inequality: :math:`\sqrt N` times the largest error of one class."""
        arb, acb = flint.arb, flint.acb
        degree = self._degree
        gram_zz, gram_zv, gram_vv, radii = self._moments(degree)
        columns = ([], [])
        errors = []
        factorial = [arb(1)]
        for k in range(1, degree + 1):
            factorial.append(factorial[-1] * k)
        root_classes = arb(self.classes).sqrt()
        for ball in points:
            sums = self._sums_on(ball, weighted=False)
            slopes = self._sums_on(ball, derivative=True, weighted=False) if derivative else None
            modulus = arb(_up(abs(ball)))
            scaled = [acb(1)]
            for k in range(1, degree):
                scaled.append(scaled[-1] * ball / k)
            error = arb(0)
            for side in (0, 1):
                inverse = 1 / sums[side]
                x = radii[side] * modulus
                exponential_error = x**degree * x.exp() / factorial[degree]
                if derivative:
                    shift = -slopes[side] * inverse - 1 / ball
                    vector = [
                        inverse * (shift * scaled[k] + (scaled[k - 1] if k else 0))
                        for k in range(degree)
                    ]
                    weighted_error = (
                        radii[side] * x ** (degree - 1) * x.exp() / factorial[degree - 1]
                    )
                    error += abs(inverse) * (weighted_error + abs(shift) * exponential_error)
                else:
                    vector = [inverse * c for c in scaled]
                    error += abs(inverse) * exponential_error
                columns[side].append([c.real for c in vector])
                columns[side].append([c.imag for c in vector])
            errors.append(error * root_classes / modulus)
        first = flint.arb_mat([list(row) for row in zip(*columns[0])])
        second = flint.arb_mat([list(row) for row in zip(*columns[1])])
        products = (gram_zz * first, gram_vv * second, gram_zv * second)
        results = []
        for j, (ball, error) in enumerate(zip(points, errors)):
            square = arb(0)
            for c in (2 * j, 2 * j + 1):
                for k in range(degree):
                    square += (
                        first[k, c] * (products[0][k, c] - 2 * products[2][k, c])
                        + second[k, c] * products[1][k, c]
                    )
            norm = _root(square) / abs(ball)
            results.append(_interval(norm - error, norm + error))
        return results

    def _enclose(self, quantity, arcs):
        r"""``(lower, upper)`` floats bounding the function's modulus (norm) on each arc: the
        value at the arc's middle (a point of the circle, so also a lower bound of the
        maximum) and the mean value form :math:`|f(w)| \le |f(c)| + |w - c|\,
        \sup_{\mathrm{ball}}|f'|`, the derivative enclosed on a ball containing the arc."""
        arb = flint.arb
        if quantity == "loss":
            values = [abs(self._loss_jet(centre, 1)[0]) for centre, *_ in arcs]
            slopes = [abs(self._loss_jet(ball, 2)[1]) for _, ball, *_ in arcs]
        else:
            values = self._gradient_norms_on([centre for centre, *_ in arcs])
            slopes = self._gradient_norms_on([ball for _, ball, *_ in arcs], derivative=True)
        results = []
        for value, slope, (_, _, distance, _) in zip(values, slopes, arcs):
            upper = value + arb(distance) * slope
            lower = max(0.0, _down(value)) if value.is_finite() else 0.0
            results.append((lower, _up(upper) if upper.is_finite() else math.inf))
        return results

    def _covering(self, quantity, rho, majorant):
        """Branch and bound over arcs of the upper half circle (the lower half is its mirror
        image: the coefficients are real): split the arcs whose upper bound exceeds
        ``_REFINE_FACTOR`` times the best value seen, until none does, the budget is spent, or
        the covering cannot beat the majorant."""
        stop = math.nextafter(math.pi, math.inf)
        arcs = [(stop * j / _START_ARCS, stop * (j + 1) / _START_ARCS) for j in range(_START_ARCS)]
        arcs[-1] = (arcs[-1][0], stop)
        bounds = dict(zip(arcs, self._enclose(quantity, [self._arc(rho, *arc) for arc in arcs])))
        limit = _MAX_ARCS[quantity]
        factor = _REFINE_FACTOR[quantity]
        while True:
            lower = max(b[0] for b in bounds.values())
            upper = max(b[1] for b in bounds.values())
            if upper <= factor * lower or lower >= majorant or len(bounds) >= limit:
                break
            wide = sorted(
                (arc for arc, b in bounds.items() if b[1] > factor * lower),
                key=lambda arc: -bounds[arc][1],
            )[: limit - len(bounds)]
            pieces = []
            for arc in wide:
                del bounds[arc]
                middle = (arc[0] + arc[1]) / 2
                pieces += [(arc[0], middle), (middle, arc[1])]
            bounds.update(
                zip(pieces, self._enclose(quantity, [self._arc(rho, *piece) for piece in pieces]))
            )
        return max(b[1] for b in bounds.values())

    # -- the bound -------------------------------------------------------------------------
    def _circle_radii(self, epsilon):
        radius = math.pi / self.logit_range
        if epsilon >= 0.9 * radius:
            return [(epsilon + radius) / 2]
        return [fraction * radius for fraction in CIRCLES if fraction * radius > epsilon]

    def remainder_bound(
        self,
        temperature: float,
        order: int,
        *,
        quantity: str = "loss",
        circles: Sequence[float] | None = None,
    ) -> float | None:
        r"""A certified upper bound on the remainder after ``order`` terms, at ``temperature``
        and every larger one: :math:`|L(T') - \sum_{k<K} T'^{-k}L_k|` (loss) or
        :math:`\|\nabla L(T') - \sum_{k<K} T'^{-k}G_k\|_2` (gradient) for all :math:`T' \ge T`.
        ``None`` unless :math:`T > R/\pi`.

        ``circles`` (fractions of :math:`\pi/R`) replaces the default choice of circles.

        >>> expansion = CertifiedExpansion([0.0, 2.0], [0.0, 0.0])   # L_2 = -1/12, L_3 = 0
        >>> 1 / 12e6 < expansion.remainder_bound(1e3, 2) < 1.001 / 12e6
        True
        """
        order = check_order(order)
        check_choice(quantity, QUANTITIES, name="quantity")
        temperature = _validated_temperature(temperature)
        if self._range.is_zero():
            return 0.0
        if not self.converges(temperature):
            return None
        arb = flint.arb
        with flint.ctx.workprec(_PRECISION):
            epsilon = arb(_up(1 / arb(temperature)))
            uppers = self._coefficient_uppers(quantity, order + EXTRA_TERMS)
            explicit = [arb(0)]
            power = epsilon**order
            for k in range(order, order + EXTRA_TERMS):
                explicit.append(explicit[-1] + arb(uppers[k]) * power)
                power = power * epsilon
            if circles is None:
                radii = self._circle_radii(_up(epsilon))
            else:
                radii = [fraction * math.pi / self.logit_range for fraction in circles]
            best = math.inf
            # Circles from the smallest with |eps|/rho <= 0.8 up, then the closer ones; stop
            # once the bound is within 1 % of the explicit terms alone (no circle can do better
            # than them by more than their ball radii).
            floor = _up(explicit[-1])
            for rho in sorted(radii, key=lambda rho: (rho < 1.25 * _up(epsilon), rho)):
                rho_ball = arb(rho)
                if not bool(epsilon < rho_ball) or not bool(rho_ball * self._range < arb.pi()):
                    continue
                maximum = arb(self.circle_maximum(quantity, rho))
                ratio = epsilon / rho_ball
                for m in range(EXTRA_TERMS + 1):
                    tail = maximum * ratio ** (order + m) / (1 - ratio)
                    best = min(best, _up(explicit[m] + tail))
                if best <= floor * (1 + 1e-2):
                    break
        return best

    def threshold_temperature(
        self, order: int, tolerance: float, *, quantity: str = "loss"
    ) -> float | None:
        r"""The smallest temperature :math:`T_0` (to a relative 1e-6, by bisection) at which the
        certified relative remainder is at most ``tolerance``: for every :math:`T \ge T_0`,

        .. math::

            \frac{|L(T) - \sum_{k<K} T^{-k}L_k|}{|L(T)|} \le
            \frac{B_K(T_0)}{|L_0| - B_1(T_0)} \le \mathrm{tolerance},

        :math:`B_K` = :meth:`remainder_bound` on the fixed circles :data:`CIRCLES` (which makes
        the ratio non-increasing in :math:`T`); likewise with norms for the gradient. ``None``
        if the leading term is 0 (then :math:`L \equiv 0`) or no temperature below 1e15 will do.

        >>> expansion = CertifiedExpansion([0.0, 1.0, 3.0], [0.5, 0.0, 2.0])
        >>> t0 = expansion.threshold_temperature(order=2, tolerance=1e-3)
        >>> expansion.remainder_bound(t0, 2) <= 1e-3 * expansion.coefficients("loss", 1)[0].mid()
        True
        """
        order = check_order(order)
        check_argument(
            isinstance(tolerance, (int, float))
            and not isinstance(tolerance, bool)
            and 0 < tolerance < 1,
            "tolerance must be a number in (0, 1), got {!r}",
            tolerance,
        )
        if self._range.is_zero():
            return None
        leading = _down(abs(self.coefficients(quantity, 1)[0]))
        if not leading > 0:
            return None

        def relative(temperature):
            if not self.converges(temperature):
                return math.inf
            first = self.remainder_bound(temperature, 1, quantity=quantity, circles=CIRCLES)
            if first is None or first >= leading:
                return math.inf
            bound = self.remainder_bound(temperature, order, quantity=quantity, circles=CIRCLES)
            if bound is None or math.isinf(bound):
                return math.inf
            return bound / (leading - first)

        low = self.radius_temperature
        high = max(2 * low, 1e-300)
        while relative(high) > tolerance:
            low, high = high, 2 * high
            if high > 1e15:
                return None
        for _ in range(64):
            if high <= low * (1 + 1e-6):
                break
            middle = math.sqrt(low * high) if low > 0 else high / 2
            if relative(middle) <= tolerance:
                high = middle
            else:
                low = middle
        return high


def _sum_degree(x):
    """The lowest degree n <= _SUM_DEGREE with x**n e**x / n! <= 2**-64 (x = r |w|)."""
    for n in range(8, _SUM_DEGREE):
        if x**n * math.exp(x) / math.factorial(n) <= 2.0**-64:
            return n
    return _SUM_DEGREE


def _ball(value):
    """An arb enclosing the rational ``value`` (exact when it fits the working precision)."""
    return flint.arb(flint.fmpq(value.numerator, value.denominator))


def _centred(values):
    """The rationals ``values`` minus their midrange, as arb balls."""
    middle = (max(values) + min(values)) / 2
    return [_ball(x - middle) for x in values]


def _interval(lower, upper):
    """An arb from a lower to an upper bound (given as arbs), clipped at 0 from below."""
    top = _up(upper)
    bottom = min(max(0.0, _down(lower)) if lower.is_finite() else 0.0, top)
    return flint.arb((bottom + top) / 2, (top - bottom) / 2 * (1 + 2**-40))


def _root(square):
    """An arb enclosing the square root of the nonnegative quantity enclosed by ``square``."""
    if square > 0:
        return square.sqrt()
    top = math.nextafter(math.sqrt(max(0.0, _up(square))), math.inf)
    return flint.arb(top / 2, top / 2)


def _series_sum(series):
    total = series[0]
    for term in series[1:]:
        total = total + term
    return total


def radius_temperature(student: Sequence[float], teacher: Sequence[float]) -> float:
    r""":math:`R/\pi`, :math:`R = \max(\mathrm{range}(z), \mathrm{range}(v))`: the series in
    :math:`1/T` converges for every larger temperature ([convergence-radius]).

    >>> round(radius_temperature([0.0, 3.14159], [0.0, 1.0]), 5)
    1.0
    """
    z = _validated_vector(student, "student")
    v = _validated_vector(teacher, "teacher")
    return max(max(z) - min(z), max(v) - min(v)) / math.pi


def certified_bounds(
    student: Sequence[Sequence[float]],
    teacher: Sequence[Sequence[float]],
    temperature: float,
    order: int,
    *,
    progress: Callable[[int, int], object] | None = None,
) -> list[ExampleBound]:
    r"""Certified remainder bounds for a batch: one :class:`ExampleBound` per row.

    Parameters
    ==========

    student, teacher : sequence of sequences of float, shape ``[B, N]``
    temperature : float > 0
    order : int
        ``K``, the number of terms kept.
    progress : callable, optional
        Called as ``progress(done, total)`` after each example.

    At most :data:`MAX_BOUND_EXAMPLES` examples of at most :data:`MAX_BOUND_CLASSES` classes.

    >>> [bound] = certified_bounds([[0.0, 1.0]], [[0.0, 0.0]], 0.2, 1)
    >>> bound.radius_temperature, bound.converges, bound.loss_remainder_bound
    (0.3183098861837907, False, None)
    """
    temperature = _validated_temperature(temperature)
    order = check_order(order)
    check_argument(
        len(student) == len(teacher) and len(student) >= 1,
        "student and teacher must hold the same number (>= 1) of examples, got {} and {}",
        len(student),
        len(teacher),
    )
    check_argument(
        len(student) <= MAX_BOUND_EXAMPLES,
        "certified bounds take at most {} examples per call (about 0.2 s each), got {}",
        MAX_BOUND_EXAMPLES,
        len(student),
    )
    check_argument(
        progress is None or callable(progress),
        "progress must be None or callable, got {!r}",
        progress,
    )
    results = []
    for index, (z, v) in enumerate(zip(student, teacher)):
        expansion = CertifiedExpansion(z, v)
        converges = expansion.converges(temperature) or expansion._range.is_zero()
        results.append(
            ExampleBound(
                expansion.radius_temperature,
                bool(converges),
                expansion.remainder_bound(temperature, order, quantity="loss")
                if converges
                else None,
                expansion.remainder_bound(temperature, order, quantity="gradient")
                if converges
                else None,
            )
        )
        if progress is not None:
            progress(index + 1, len(student))
    return results


def check_bound_size(examples, classes):
    """Refuse, before any work, more examples or classes than :func:`certified_bounds` takes."""
    check_argument(
        classes <= MAX_BOUND_CLASSES,
        "certified bounds take at most {} classes per example (their cost grows with N), got {}",
        MAX_BOUND_CLASSES,
        classes,
    )
    check_argument(
        examples <= MAX_BOUND_EXAMPLES,
        "certified bounds take at most {} examples per call (about 0.2 s each), got {}",
        MAX_BOUND_EXAMPLES,
        examples,
    )


def load_logits(path, *, option):
    """Read logits ``[B, N]`` (a ``.npy`` array, or a ``.pt`` tensor: torch is imported only
    then) as a list of float64 rows, through the one reader :func:`derive._logits.read_logits`
    (regular files only, header, dtype and size checked before the data is read); any problem
    is a one-line :class:`~derive.DeriveError` naming ``option``."""
    return read_logits(path, option=option, max_values=MAX_BOUND_VALUES).tolist()
