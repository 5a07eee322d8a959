r"""Measured orders of convergence in :math:`1/T`, and the round-off floor of a dtype.

A difference :math:`D(T)` that is :math:`O(T^{-k})` has log-log slope :math:`-k`.
:func:`measure_convergence` fits that slope by least squares over the temperatures (or the
last decades of them) where :math:`D` is *resolved*: larger than
:data:`~verify.tolerances.RESOLUTION_FACTOR` times the round-off measured at the same
temperature. From the *floor* on, the first temperature where
round-off makes up half of the measured :math:`D` or more, round-off dominates and the dtype
cannot see the difference any more; the floor is reported, not failed on and not hidden.

Round-off is measured, not modelled, by the caller (against a high-precision reference, or
as the difference between two computations that are equal in exact arithmetic). Because one
sample of it can be small by chance, it is replaced by the envelope
:math:`\max_{T' \le T} r(T')\,T/T'`: the round-off of the computations here,
:math:`T(q - p)` for example, grows at most linearly in :math:`T`.

Examples
========

>>> import numpy
>>> temperatures = numpy.logspace(1, 4, 7)
>>> difference = 3.0 / temperatures
>>> result = measure_convergence(temperatures, difference, 1e-9 * temperatures, order=1)
>>> round(result.slope, 6), result.floor, result.passed
(-1.0, None, True)
>>> noisy = measure_convergence(temperatures, difference, 1e-7 * temperatures, order=1)
>>> noisy.floor, noisy.high, noisy.passed
(10000.0, 1000.0, True)
"""

import math
from dataclasses import dataclass

import numpy

from ._errors import check_argument
from .tolerances import RESOLUTION_FACTOR, SLOPE_TOLERANCE

__all__ = [
    "Convergence",
    "loglog_slope",
    "roundoff_envelope",
    "measure_convergence",
    "leading_order",
]

#: A slope is only fitted over at least this many resolved temperatures ...
MINIMUM_POINTS = 3
#: ... spanning at least this many decades.
MINIMUM_DECADES = 1.0


def loglog_slope(temperatures, values):
    """Least-squares slope of ``log(values)`` against ``log(temperatures)``."""
    x = numpy.log(numpy.asarray(temperatures, dtype=float))
    y = numpy.log(numpy.asarray(values, dtype=float))
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def roundoff_envelope(temperatures, roundoff):
    r"""The envelope :math:`\max_{T' \le T} r(T')\,T/T'` of measured round-off."""
    temperatures = numpy.asarray(temperatures, dtype=float)
    roundoff = numpy.asarray(roundoff, dtype=float)
    envelope = numpy.empty_like(roundoff)
    running = 0.0
    for k, (temperature, value) in enumerate(zip(temperatures, roundoff)):
        if k:
            running *= temperature / temperatures[k - 1]
        running = max(running, value)
        envelope[k] = running
    return envelope


def leading_order(classes, terms):
    r"""The order of the remainder after ``terms`` terms of the expansion in :math:`1/T`.

    ``terms`` itself, except for two classes: then the softmax is a sigmoid of
    :math:`(z_1 - z_2)/T`, and :math:`\sigma(x) - \frac12` is odd, so the gradient
    :math:`T(q - p)` and the loss have only even powers of :math:`1/T`; the remainder's order
    is ``terms`` rounded up to even.

    >>> leading_order(3, 1), leading_order(2, 1), leading_order(2, 2), leading_order(2, 3)
    (1, 2, 2, 4)
    """
    if classes == 2 and terms % 2:
        return terms + 1
    return terms


@dataclass(frozen=True)
class Convergence:
    """A fitted order of convergence.

    ``resolved`` is False when too little was resolved above round-off, or when the fitted
    window has not settled into a power law (its halves' slopes differ by more than
    :data:`~verify.tolerances.SLOPE_TOLERANCE`); ``slope`` is ``nan`` in the first case;
    ``low``/``high`` bound the fitted temperatures; ``floor`` is the first temperature where
    round-off makes up half the measured difference or more (``None`` if never on the grid).
    """

    order: int
    slope: float
    low: float
    high: float
    points: int
    floor: float | None
    resolved: bool

    @property
    def error(self):
        """``|slope + order|``, or ``inf`` if nothing was resolved."""
        return abs(self.slope + self.order) if self.resolved else math.inf

    @property
    def passed(self):
        return self.resolved and self.error <= SLOPE_TOLERANCE

    def describe(self):
        floor = (
            f"round-off dominates from T={self.floor:.3g}" if self.floor else "no floor on the grid"
        )
        if not self.resolved:
            return (
                f"order {self.order}: unresolved ({self.points} temperatures above round-off; "
                f"{floor})"
            )
        return (
            f"order {self.order}: slope {self.slope:.3f} over T in [{self.low:.3g}, "
            f"{self.high:.3g}] ({self.points} temperatures; {floor})"
        )


def measure_convergence(temperatures, differences, roundoff, *, order, window_decades=None):
    """Fit the log-log slope of ``differences`` over the resolved ``temperatures``.

    Parameters
    ==========

    temperatures : increasing sequence of float
    differences : sequence of float
        The measured :math:`D(T) \\ge 0`.
    roundoff : sequence of float
        Round-off measured at each temperature (see the module docstring).
    order : int
        The expected order :math:`k`, slope :math:`-k`.
    window_decades : float, optional
        Fit only the last this many decades of the resolved range (where the expansion is
        most nearly asymptotic); by default all of it.
    """
    temperatures = numpy.asarray(temperatures, dtype=float)
    differences = numpy.asarray(differences, dtype=float)
    check_argument(
        temperatures.shape == differences.shape == numpy.shape(roundoff) and temperatures.ndim == 1,
        "temperatures, differences and roundoff must be 1-d of one length, got {}, {}, {}",
        temperatures.shape,
        differences.shape,
        numpy.shape(roundoff),
    )
    check_argument(
        bool(numpy.all(numpy.diff(temperatures) > 0)),
        "temperatures must increase, got {}",
        temperatures,
    )
    envelope = roundoff_envelope(temperatures, roundoff)
    finite = numpy.isfinite(differences)
    dominated = ~finite | (2 * envelope >= differences)
    floor = float(temperatures[numpy.argmax(dominated)]) if dominated.any() else None
    below_floor = temperatures < floor if floor is not None else numpy.ones_like(finite)
    resolved = (
        below_floor & finite & (differences > RESOLUTION_FACTOR * envelope) & (differences > 0)
    )
    if resolved.any():
        high = float(temperatures[resolved].max())
        if window_decades is not None:
            resolved &= temperatures >= high / 10**window_decades * (1 - 1e-9)
        low = float(temperatures[resolved].min())
    else:
        low = high = math.nan
    points = int(resolved.sum())
    enough = points >= MINIMUM_POINTS and math.log10(high / low) >= MINIMUM_DECADES - 1e-9
    slope = loglog_slope(temperatures[resolved], differences[resolved]) if enough else math.nan
    settled = enough and _settled(temperatures[resolved], differences[resolved])
    return Convergence(order, slope, low, high, points, floor, bool(settled))


def _settled(temperatures, differences):
    """True if the slopes of the window's lower and upper halves (sharing the middle point)
    agree to within :data:`~verify.tolerances.SLOPE_TOLERANCE`: the power law has set in.
    A window still bending towards its asymptote (a small leading coefficient, or one that
    cancels against the next order) is left unresolved rather than misread."""
    middle = len(temperatures) // 2
    lower = loglog_slope(temperatures[: middle + 1], differences[: middle + 1])
    upper = loglog_slope(temperatures[middle:], differences[middle:])
    return abs(lower - upper) <= SLOPE_TOLERANCE
