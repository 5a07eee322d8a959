r"""The expansion engine: truncated power series in :math:`\epsilon = 1/T` over class moments.

An objective is an ordinary sympy expression in ``epsilon`` (or ``T``), the per-class
symbols ``z_i, v_i``, ``1/N`` and :class:`~derive.notation.ClassMean`. :func:`power_series`
turns it into the coefficients of :math:`\epsilon^k`, by power-series arithmetic on the
expression tree: sums, products, integer and rational powers, ``exp``, ``log`` and class means.

The cost does not depend on the number of classes. A class mean never becomes ``N``
exponentials: the mean of a coefficient, a polynomial in ``z_i, v_i``, is the same
polynomial with each monomial :math:`z_i^a v_i^b` replaced by the moment
:math:`\langle z^a v^b\rangle`. Coefficients live in the polynomial ring
:math:`\mathbb{Q}[1/N, z_i, v_i, \langle z^a v^b\rangle]` (sympy's sparse ``PolyRing``), which is
far faster than expanding sympy expressions.

Examples
========

>>> from sympy import exp, log
>>> from derive.notation import ClassMean, epsilon, z_i
>>> power_series(log(ClassMean(exp(epsilon*z_i))), order=3)
[0, mean(z_i), -mean(z_i)**2/2 + mean(z_i**2)/2]
"""

import math

import sympy
from sympy import QQ, Symbol
from sympy.polys.rings import PolyRing

from ._errors import DeriveError, check_argument, check_order
from .notation import N, T, ClassMean, epsilon, moment, v_i, z_i

__all__ = ["MomentAlgebra", "Series", "power_series", "series_of"]

INF = math.inf
_INVERSE_N = Symbol("_inverse_N", positive=True)


class _NeedHigherDegree(Exception):
    """Internal: a mean produced a moment beyond the algebra's degree; rebuild bigger."""


class MomentAlgebra:
    r"""The coefficient ring :math:`\mathbb{Q}[1/N, z_i, v_i, \langle z^a v^b\rangle]`, moments
    with :math:`1 \le a+b \le` ``degree``."""

    def __init__(self, degree):
        self.degree = degree
        self.moments = [(a, total - a) for total in range(1, degree + 1) for a in range(total, -1, -1)]
        moment_symbols = [Symbol(f"_m_{a}_{b}") for a, b in self.moments]
        self.ring = PolyRing([_INVERSE_N, z_i, v_i, *moment_symbols], QQ)
        self._moment_slot = {pair: 3 + k for k, pair in enumerate(self.moments)}
        self._to_expr = {_INVERSE_N: 1 / N}
        self._to_expr.update({s: moment(a, b) for s, (a, b) in zip(moment_symbols, self.moments)})
        self.inverse_n, self.z, self.v = self.ring.gens[:3]

    # -- conversions -------------------------------------------------------------------
    def ground(self, value):
        return self.ring.ground_new(QQ.convert(value))

    def to_expr(self, element):
        """A ring element as a sympy expression in ``z_i, v_i, N`` and class means."""
        return element.as_expr().xreplace(self._to_expr)

    def moment_of(self, student_power, teacher_power):
        slot = self._moment_slot.get((student_power, teacher_power))
        if slot is None:
            raise _NeedHigherDegree
        return self.ring.gens[slot]

    def mean(self, element):
        r"""The class mean of a coefficient: :math:`z_i^a v_i^b \mapsto \langle z^a v^b\rangle`."""
        terms = {}
        for monom, coeff in element.terms():
            a, b = monom[1], monom[2]
            new = list(monom)
            new[1] = new[2] = 0
            if a or b:
                slot = self._moment_slot.get((a, b))
                if slot is None:
                    raise _NeedHigherDegree
                new[slot] += 1
            key = tuple(new) if a or b else monom
            terms[key] = terms.get(key, QQ.zero) + coeff
        return self.ring.from_dict({k: c for k, c in terms.items() if c})


class Series:
    r"""A truncated Laurent series :math:`\sum_k c_k \epsilon^k`, exact for powers below ``precision``.

    ``coefficients`` maps a power to a nonzero ring element; ``precision`` is ``inf`` for a
    polynomial in :math:`\epsilon`.
    """

    __slots__ = ("algebra", "coefficients", "precision")

    def __init__(self, algebra, coefficients, precision):
        self.algebra = algebra
        self.precision = precision
        self.coefficients = {k: c for k, c in coefficients.items() if c and k < precision}

    @property
    def valuation(self):
        return min(self.coefficients, default=self.precision)

    def __getitem__(self, power):
        return self.coefficients.get(power, self.algebra.ring.zero)

    def truncate(self, precision):
        return Series(self.algebra, self.coefficients, min(self.precision, precision))

    def __add__(self, other):
        coefficients = dict(self.coefficients)
        for k, c in other.coefficients.items():
            coefficients[k] = coefficients[k] + c if k in coefficients else c
        return Series(self.algebra, coefficients, min(self.precision, other.precision))

    def __mul__(self, other):
        precision = min(self.precision + other.valuation, other.precision + self.valuation)
        coefficients = {}
        for i, a in self.coefficients.items():
            for j, b in other.coefficients.items():
                if i + j < precision:
                    coefficients[i + j] = coefficients[i + j] + a * b if i + j in coefficients else a * b
        return Series(self.algebra, coefficients, precision)

    def scale(self, element):
        return Series(self.algebra, {k: c * element for k, c in self.coefficients.items()}, self.precision)

    def shift(self, power):
        return Series(self.algebra, {k + power: c for k, c in self.coefficients.items()},
                      self.precision + power)

    def map(self, function):
        return Series(self.algebra, {k: function(c) for k, c in self.coefficients.items()}, self.precision)

    # -- transcendental operations, by the usual recurrences --------------------------------
    def _unit_part(self, operation):
        """Split as c * eps**a * (1 + u) with c a nonzero rational, u of valuation >= 1."""
        a = self.valuation
        check_argument(a < self.precision, "cannot take {} of a series that is zero to the "
                       "precision computed", operation)
        leading = self[a]
        check_argument(leading.is_ground, "{} needs a rational leading coefficient, got {}",
                       operation, self.algebra.to_expr(leading))
        return a, leading.LC

    def _recurrence(self, first, length, weight, offset=0):
        """Coefficients ``g_0 = first``, ``g_n = sum_{k=1..n} weight(n, k) * s_{offset+k} * g_{n-k}``
        for ``n < length``: the shape shared by the reciprocal, power and exp recurrences."""
        g = [first]
        for n in range(1, int(length)):
            acc = self.algebra.ring.zero
            for k in range(1, n + 1):
                s = self.coefficients.get(offset + k)
                if s:
                    acc += s * g[n - k] * weight(n, k)
            g.append(acc)
        return g

    def reciprocal(self, precision):
        a, c = self._unit_part("1/x")
        inverse_c = QQ.one / c
        # Relative terms: as many as the series knows, and as the caller needs.
        length = min(self.precision - a, precision + a)
        b = self._recurrence(self.algebra.ground(inverse_c), length, lambda n, k: -inverse_c, offset=a)
        return Series(self.algebra, {n - a: c_n for n, c_n in enumerate(b)},
                      min(self.precision - 2 * a, precision))

    def power(self, exponent, precision):
        """``self**exponent`` for a rational exponent (a fractional one needs a leading 1)."""
        if exponent == int(exponent) and exponent >= 0:
            result = Series(self.algebra, {0: self.algebra.ring.one}, INF)
            base, n = self, int(exponent)
            while n:
                if n & 1:
                    result = (result * base).truncate(precision)
                n >>= 1
                if n:
                    base = (base * base).truncate(precision)
            return result
        if exponent == int(exponent):
            return self.reciprocal(precision).power(-exponent, precision)
        a, c = self._unit_part("a fractional power")
        check_argument(a == 0 and c == 1, "a fractional power needs a series starting at 1, "
                       "got leading term {}*epsilon**{}", c, a)
        alpha = QQ.convert(exponent)
        # J. C. P. Miller's recurrence for f**alpha.
        g = self._recurrence(self.algebra.ring.one, min(self.precision, precision),
                             lambda n, k: ((alpha + 1) * k - n) / n)
        return Series(self.algebra, dict(enumerate(g)), min(self.precision, precision))

    def exp(self, precision):
        check_argument(self.valuation >= 0, "exp of a series with negative powers of epsilon")
        check_argument(not self[0], "exp needs a series vanishing at epsilon = 0, got constant {}",
                       self.algebra.to_expr(self[0]))
        # g = exp(f) solves g' = f' g.
        g = self._recurrence(self.algebra.ring.one, min(self.precision, precision),
                             lambda n, k: QQ(k, n))
        return Series(self.algebra, dict(enumerate(g)), min(self.precision, precision))

    def log(self, precision):
        a, c = self._unit_part("log")
        check_argument(a == 0 and c == 1, "log needs a series starting at 1, got leading term "
                       "{}*epsilon**{}", c, a)
        length = int(min(self.precision, precision))
        l = [self.algebra.ring.zero]
        for n in range(1, length):
            acc = self[n] * n
            for k in range(1, n):
                s = self.coefficients.get(n - k)
                if s and l[k]:
                    acc -= l[k] * s * k
            l.append(acc * (QQ.one / n))
        return Series(self.algebra, dict(enumerate(l)), min(self.precision, precision))


class _Expander:
    """Turns an expression tree into a :class:`Series`, memoised per (node, precision)."""

    def __init__(self, algebra):
        self.algebra = algebra
        self.memo = {}

    def series(self, expr, precision):
        key = (expr, precision)
        if key not in self.memo:
            self.memo[key] = self._series(expr, precision)
        return self.memo[key]

    def _constant(self, element):
        return Series(self.algebra, {0: element}, INF)

    def _series(self, expr, precision):
        A = self.algebra
        if expr == epsilon:
            return Series(A, {1: A.ring.one}, INF)
        if expr == T:
            return Series(A, {-1: A.ring.one}, INF)
        if expr == z_i:
            return self._constant(A.z)
        if expr == v_i:
            return self._constant(A.v)
        if expr.is_Rational:
            return self._constant(A.ground(expr))
        if expr.is_Add:
            total = Series(A, {}, INF)
            for arg in expr.args:
                total = total + self.series(arg, precision)
            return total
        if expr.is_Mul:
            return self._product(expr.args, precision)
        if expr.is_Pow:
            base, exponent = expr.args
            if base == N and exponent.is_Integer and exponent < 0:
                return self._constant(A.inverse_n ** int(-exponent))
            check_argument(exponent.is_Rational, "only rational powers can be expanded, got {}", expr)
            if base in (epsilon, T) and exponent.is_Integer:
                power = int(exponent) * (1 if base == epsilon else -1)
                return Series(A, {power: A.ring.one}, INF)
            return self._power(base, exponent, precision)
        if isinstance(expr, sympy.exp):
            return self.series(expr.args[0], precision).exp(precision)
        if isinstance(expr, sympy.log):
            return self.series(expr.args[0], precision).log(precision)
        if isinstance(expr, ClassMean):
            return self.series(expr.args[0], precision).map(A.mean)
        raise DeriveError(f"cannot expand {expr} in 1/T: supported are rationals, epsilon, T, "
                          f"z_i, v_i, 1/N, +, *, rational powers, exp, log and mean(...)")

    def _power(self, base, exponent, precision):
        inner = self.series(base, precision)
        if exponent.is_Integer and exponent < 0:
            # 1/x loses 2*valuation of precision; ask the base for what that costs.
            a = inner.valuation
            if a < inner.precision and inner.precision - 2 * a < precision:
                inner = self.series(base, precision + 2 * a)
        return inner.power(exponent, precision)

    def _product(self, factors, precision):
        parts = [self.series(f, precision) for f in factors]
        valuations = [p.valuation for p in parts]
        total_valuation = sum(valuations)
        for k, f in enumerate(factors):
            needed = precision - (total_valuation - valuations[k])
            if parts[k].precision < needed:
                parts[k] = self.series(f, needed)
        result = parts[0]
        for p in parts[1:]:
            result = result * p
        return result


def series_of(expr, *, precision, algebra=None):
    """The :class:`Series` of ``expr`` known to ``precision`` (growing the algebra as needed)."""
    degree = algebra.degree if algebra else precision + 4
    while True:
        algebra = algebra or MomentAlgebra(degree)
        try:
            return _Expander(algebra).series(sympy.sympify(expr), precision)
        except _NeedHigherDegree:
            degree, algebra = 2 * degree, None


def power_series(expr, *, order):
    r"""The coefficients of :math:`\epsilon^0 .. \epsilon^{order-1}` of ``expr``, as sympy expressions.

    Raises :class:`~derive.DeriveError` if ``expr`` has negative powers of :math:`\epsilon`.
    """
    check_order(order)
    result = series_of(expr, precision=order)
    check_argument(result.valuation >= 0, "{} has a pole of order {} at T = infinity",
                   expr, -result.valuation)
    check_argument(result.precision >= order, "internal: expansion reached precision {} < {}",
                   result.precision, order)
    return [result.algebra.to_expr(result[k]) for k in range(order)]
