r"""The expansion engine: truncated power series in :math:`\epsilon = 1/T` over class moments.

An objective is an ordinary sympy expression in ``epsilon`` (or ``T``), per-class symbols
(``z_i, v_i``, the standardized ``zh_i, vh_i``), class constants (``N``, the label's
``z_g, v_g``, parameters such as ``beta``) and class means. :func:`power_series` turns it
into the coefficients of :math:`\epsilon^k` by power-series arithmetic on the expression tree:
sums, products, integer, rational and symbolic powers, ``exp``, ``log``, class means and the
generator ``f`` of an f-divergence.

The cost does not depend on the number of classes. A class mean never becomes ``N``
exponentials: the mean of a coefficient, a polynomial in the per-class symbols, is the same
polynomial with each per-class monomial :math:`z_i^a v_i^b` replaced by the moment
:math:`\langle z^a v^b\rangle`.

Coefficients are Laurent polynomials with rational coefficients in *generators* that the
:class:`Algebra` creates as it meets them: per-class symbols, class constants and their
inverses, moments, and *atoms*, subexpressions free of :math:`\epsilon` that are not
polynomials (``log(N)``, ``exp(z_i)``, ``sqrt((N-1)/N)``). A monomial is one Python integer,
the exponents packed side by side, so multiplying monomials is adding integers; nothing is
allocated for moments that never occur. A series can be inverted (or its logarithm or a
fractional power taken) when its leading coefficient is one monomial.

Examples
========

>>> from sympy import exp, log
>>> from derive.notation import ClassMean, epsilon, z_i
>>> power_series(log(ClassMean(exp(epsilon*z_i))), order=3)
[0, mean(z_i), -mean(z_i)**2/2 + mean(z_i**2)/2]
"""

import math
from functools import lru_cache, reduce
from operator import or_
from typing import Any

import sympy
from sympy import QQ

from ._errors import DeriveError, check_argument, check_order
from .notation import PER_CLASS, ClassMean, FDerivative, N, T, _Mean, epsilon, is_class_constant
from .packing import BITS as _BITS
from .packing import MASK as _MASK
from .packing import MAX_EXPONENT, check_guard, guard_bit, pack, slot_mask
from .packing import exponents as _exponents

__all__ = ["Algebra", "Series", "power_series", "series_of"]

INF = math.inf
_ONE = QQ.one
_ZERO = QQ.zero
#: How many orders past the requested precision a base is expanded to find its leading term.
_LOOKAHEAD = 12
#: The most terms of one series the engine computes (a request past it raises): far above what
#: any order up to ``MAX_ORDER`` needs, it stops a power of a pole from growing without bound.
MAX_PRECISION = 512


def _check_length(length, operation):
    check_argument(
        length <= MAX_PRECISION,
        "{} would need {} terms of a series, more than the engine's limit of {} (MAX_PRECISION)",
        operation,
        length,
        MAX_PRECISION,
    )


@lru_cache(maxsize=4096)
def _has_epsilon(expr):
    return bool(expr.free_symbols & {epsilon, T})


class Algebra:
    r"""Laurent polynomials over generators created on demand.

    A polynomial is a ``dict`` from a packed monomial (an ``int``, exponent ``e_k`` of
    generator ``k`` in bits ``16k .. 16k + 15``, see :mod:`derive.packing`) to a nonzero
    rational. A class constant ``x`` and its inverse are two generators; products cancel
    ``x^a x^{-b}`` (:meth:`mul`). Every product checks the guard bits: an exponent past
    :data:`~derive.packing.MAX_EXPONENT` raises :class:`~derive.DeriveError`, never wraps.
    """

    def __init__(self):
        self.expressions = []  # slot -> sympy expression of the generator
        self.slots = {}  # sympy expression -> slot
        self.per_class_mask = 0  # bits of the per-class generators
        self.guards = 0  # guard bits of every slot in use
        self._pairs = []  # (slot, inverse slot, mask, inverse mask)
        self._pair_mask = 0  # bits of every generator that has an inverse
        self._inverse = {}  # slot -> inverse slot
        self._moments = {}  # (mean type, per-class monomial) -> polynomial
        self._elements = {}  # sympy expression -> polynomial
        self._reciprocal_n_minus_one = None  # slot of 1/(N - 1), if used
        self._partial_fraction_mask = 0  # bits of N and 1/N, once 1/(N - 1) is in use
        self.one = {0: _ONE}

    # -- generators -----------------------------------------------------------------------
    def generator(self, expr, *, per_class=None):
        """The slot of the generator ``expr`` (created if new)."""
        slot = self.slots.get(expr)
        if slot is None:
            slot = len(self.expressions)
            self.expressions.append(expr)
            self.slots[expr] = slot
            self.guards |= guard_bit(slot)
            if per_class is None:
                per_class = not is_class_constant(expr)
            if per_class:
                self.per_class_mask |= slot_mask(slot)
        return slot

    def is_per_class(self, slot):
        """Whether generator ``slot`` differs between classes (``z_i``, ``exp(z_i)``, ...)."""
        return bool(self.per_class_mask & slot_mask(slot))

    def monomial(self, slot, exponent=1):
        return {pack(slot, exponent): _ONE}

    def _inverse_slot(self, slot):
        inverse = self._inverse.get(slot)
        if inverse is None:
            base = self.expressions[slot]
            inverse = self.generator(1 / base, per_class=self.is_per_class(slot))
            self._inverse[slot], self._inverse[inverse] = inverse, slot
            mask, inverse_mask = slot_mask(slot), slot_mask(inverse)
            self._pairs.append((slot, inverse, mask, inverse_mask))
            self._pair_mask |= mask | inverse_mask
        return inverse

    def exponents(self, monomial):
        """``{slot: exponent}`` of a packed monomial."""
        return _exponents(monomial)

    # -- arithmetic -----------------------------------------------------------------------
    def add(self, a, b):
        if len(a) < len(b):
            a, b = b, a
        out = dict(a)
        for m, c in b.items():
            value = out.get(m)
            if value is None:
                out[m] = c
            else:
                value = value + c
                if value:
                    out[m] = value
                else:
                    del out[m]
        return out

    def scale(self, a, factor):
        """``a`` times a rational."""
        if not factor:
            return {}
        return {m: c * factor for m, c in a.items()}

    def mul(self, a, b):
        if not a or not b:
            return {}
        if len(a) > len(b):
            a, b = b, a
        if len(a) == 1:
            ((ma, ca),) = a.items()
            out = {ma + mb: ca * cb for mb, cb in b.items()}
            if self._pair_mask:
                return self.normalize(out)
            check_guard(reduce(or_, out, 0), self.guards)
            return out
        out = {}
        self.accumulate(out, a, b)
        return self.normalize(out)

    def accumulate(self, out, a, b, factor=None):
        """``out += factor * a * b`` in place, before :meth:`normalize` (zeros may remain)."""
        if len(a) > len(b):
            a, b = b, a
        get = out.get
        zero = _ZERO
        for ma, ca in a.items():
            if factor is not None:
                ca = ca * factor
            for mb, cb in b.items():
                m = ma + mb
                out[m] = get(m, zero) + ca * cb
        return out

    def normalize(self, out):
        """Drop zero coefficients and cancel generators against their inverses (and bring
        :math:`1/(N-1)` to partial fractions), so that equal polynomials have equal forms."""
        out = {m: c for m, c in out.items() if c}
        present = reduce(or_, out, 0)
        check_guard(present, self.guards)
        if self._pair_mask:
            if present & self._pair_mask:
                pairs = [pair for pair in self._pairs if present & pair[2] and present & pair[3]]
                if pairs:
                    out = self._cancel_inverses(out, pairs)
            if self._partial_fraction_mask and present & self._partial_fraction_mask:
                out = self._partial_fractions(out)
        return out

    def _n_slots(self):
        n = self.slots[N]
        return n, self._inverse[n]

    def _partial_fractions(self, poly):
        r"""Rewrite monomials holding :math:`1/(N-1)` together with :math:`N` or :math:`1/N`:
        :math:`N M = M + 1` and :math:`M/N = M - 1/N` for :math:`M = 1/(N-1)`. The result lies in
        the basis :math:`\{N^k\} \cup \{M^j\}` of partial fractions, which is unique."""
        m_slot = self._reciprocal_n_minus_one
        n_slot, inverse_slot = self._n_slots()
        m_shift, n_shift, i_shift = (_BITS * m_slot, _BITS * n_slot, _BITS * inverse_slot)
        m_unit, n_unit, i_unit = 1 << m_shift, 1 << n_shift, 1 << i_shift
        out, work = {}, list(poly.items())
        while work:
            monomial, coefficient = work.pop()
            has_m = (monomial >> m_shift) & _MASK
            if has_m and (monomial >> n_shift) & _MASK:
                # N^a M^b = N^(a-1) M^b + N^(a-1) M^(b-1)
                lowered = monomial - n_unit
                work.append((lowered, coefficient))
                work.append((lowered - m_unit, coefficient))
            elif has_m and (monomial >> i_shift) & _MASK:
                # N^-c M^b = N^-(c-1) M^b - N^-c M^(b-1)
                work.append((monomial - i_unit, coefficient))
                work.append((monomial - m_unit, -coefficient))
            else:
                value = out.get(monomial, _ZERO) + coefficient
                if value:
                    out[monomial] = value
                else:
                    out.pop(monomial, None)
        return out

    def reciprocal_n_minus_one(self, power):
        r""":math:`(N - 1)^{-power}` as a power of the generator :math:`M = 1/(N-1)`."""
        if self._reciprocal_n_minus_one is None:
            self.generator(N, per_class=False)
            self._inverse_slot(self.slots[N])
            self._reciprocal_n_minus_one = self.generator(1 / (N - 1), per_class=False)
            n_slot, inverse_slot = self._n_slots()
            self._partial_fraction_mask = slot_mask(n_slot) | slot_mask(inverse_slot)
            self._pair_mask |= slot_mask(self._reciprocal_n_minus_one)
        return self.monomial(self._reciprocal_n_minus_one, power)

    def _cancel_inverses(self, poly, pairs):
        out = {}
        for m, c in poly.items():
            for slot, inverse, mask, inverse_mask in pairs:
                if m & mask and m & inverse_mask:
                    common = min(
                        (m & mask) >> (_BITS * slot), (m & inverse_mask) >> (_BITS * inverse)
                    )
                    m -= (common << (_BITS * slot)) + (common << (_BITS * inverse))
            value = out.get(m, _ZERO) + c
            if value:
                out[m] = value
            else:
                out.pop(m, None)
        return out

    def power(self, a, exponent):
        if exponent > MAX_EXPONENT and any(a):
            # A nonconstant polynomial's power has a monomial with an exponent >= the power's
            # (n times a vertex of its Newton polytope): refuse before the work.
            raise DeriveError(
                f"exponents must be in 0..{MAX_EXPONENT} (MAX_EXPONENT): a power {exponent} of "
                f"{self.to_expr(a)} needs more"
            )
        result, base = self.one, a
        while exponent:
            if exponent & 1:
                result = self.mul(result, base)
            exponent >>= 1
            if exponent:
                base = self.mul(base, base)
        return result

    # -- monomials: inverses and roots ----------------------------------------------------
    def as_monomial(self, poly):
        """``(coefficient, monomial)`` if ``poly`` is one term, else ``None``."""
        if len(poly) != 1:
            return None
        ((monomial, coefficient),) = poly.items()
        return coefficient, monomial

    def invertible(self, poly):
        """Whether :meth:`inverse` applies: one term whose generators are class constants."""
        term = self.as_monomial(poly)
        return term is not None and not term[1] & self.per_class_mask

    def inverse(self, poly):
        """The inverse of a one-term polynomial in class constants (a factor
        :math:`1/(N-1)` inverts to the polynomial :math:`N - 1`)."""
        check_argument(self.invertible(poly), "internal: cannot invert {}", self.to_expr(poly))
        coefficient, monomial = self.as_monomial(poly)
        result = {0: _ONE / coefficient}
        for slot, exponent in self.exponents(monomial).items():
            if slot == self._reciprocal_n_minus_one:
                n_minus_one = self.add(self.monomial(self.slots[N]), {0: -_ONE})
                result = self.mul(result, self.power(n_minus_one, exponent))
            else:
                result = self.mul(result, self.monomial(self._inverse_slot(slot), exponent))
        return result

    def root(self, poly, exponent):
        """``poly**exponent`` for a one-term ``poly`` and rational ``exponent``, when exact:
        a rational power of the coefficient, integer exponents after scaling; else ``None``."""
        term = self.as_monomial(poly)
        if term is None:
            return None
        coefficient, monomial = term
        value = sympy.Rational(QQ.to_sympy(coefficient)) ** exponent
        if not value.is_Rational:
            return None
        result = {0: QQ.from_sympy(value)}
        for slot, power in self.exponents(monomial).items():
            scaled = power * exponent
            if not scaled.is_Integer:
                return None
            if scaled >= 0:
                result = self.mul(result, self.monomial(slot, int(scaled)))
            else:
                result = self.mul(result, self.inverse(self.monomial(slot, int(-scaled))))
        return result

    # -- derivatives ------------------------------------------------------------------------
    def derivative(self, poly, symbol, *, frozen=()):
        r""":math:`\partial/\partial` ``symbol`` of a polynomial, by the product rule over its
        generators; each generator's own derivative is taken once, by sympy on its expression
        (a class mean by the notation's rule, :math:`\partial\langle f\rangle/\partial z_i =
        \frac1N f'(z_i)`). Generators of the types in ``frozen`` are held constant."""
        out = {}
        for monomial, coefficient in poly.items():
            for slot, exponent in self.exponents(monomial).items():
                if frozen and isinstance(self.expressions[slot], frozen):
                    continue
                change = self._generator_derivative(slot, symbol)
                if change:
                    lowered = monomial - (1 << (_BITS * slot))
                    self.accumulate(out, {lowered: coefficient * exponent}, change)
        return self.normalize(out)

    def _generator_derivative(self, slot, symbol):
        cache = self.__dict__.setdefault("_derivatives", {})
        key = (slot, symbol)
        if key not in cache:
            cache[key] = self.element(sympy.diff(self.expressions[slot], symbol))
        return cache[key]

    def substitute(self, poly, replacement):
        """``poly`` with each generator's expression ``x`` replaced by ``replacement(x)`` (a
        sympy expression, or ``None`` to keep it)."""
        values = {}
        out = {}
        for monomial, coefficient in poly.items():
            term = {0: coefficient}
            for slot, exponent in self.exponents(monomial).items():
                if slot not in values:
                    new = replacement(self.expressions[slot])
                    values[slot] = (
                        self.monomial(slot) if new is None else self.element(sympy.sympify(new))
                    )
                term = self.mul(term, self.power(values[slot], exponent))
            out = self.add(out, term)
        return out

    # -- means ----------------------------------------------------------------------------
    def mean(self, poly, kind=ClassMean):
        r"""The class mean (``kind=ClassMean``) or the mean over the classes other than the
        label (``kind=OtherMean``) of a coefficient: each per-class monomial becomes its
        moment, class constants are factors."""
        groups = {}
        per_class_mask = self.per_class_mask
        for m, c in poly.items():
            per_class = m & per_class_mask
            groups.setdefault(per_class, {})[m ^ per_class] = c
        result = {}
        for per_class, constant in groups.items():
            result = self.add(result, self.mul(self._moment(kind, per_class), constant))
        return result

    def _moment(self, kind, per_class):
        key = (kind, per_class)
        value = self._moments.get(key)
        if value is None:
            if not per_class:
                value = self.one
            else:
                body = self._monomial_expr(per_class)
                mean = kind(body)
                if isinstance(mean, kind) and mean.args[0] == body:
                    value = self.monomial(self.generator(mean, per_class=False))
                else:
                    value = self.element(mean)  # a relation such as <zh**2> = 1
            self._moments[key] = value
        return value

    # -- conversions ----------------------------------------------------------------------
    def _monomial_expr(self, monomial):
        expressions = self.expressions
        return sympy.Mul(
            *[expressions[slot] ** exponent for slot, exponent in self.exponents(monomial).items()]
        )

    def to_expr(self, poly):
        """A polynomial as a sympy expression."""
        return sympy.Add(*[QQ.to_sympy(c) * self._monomial_expr(m) for m, c in poly.items()])

    def constant(self, value):
        value = QQ.convert(value) if not isinstance(value, sympy.Basic) else QQ.from_sympy(value)
        return {0: value} if value else {}

    def element(self, expr):
        """An expression free of :math:`\\epsilon` as a polynomial (atoms where it is not one)."""
        cached = self._elements.get(expr)
        if cached is None:
            cached = self._element(expr)
            self._elements[expr] = cached
        return cached

    def _element(self, expr):
        if expr in self.slots:
            return self.monomial(self.slots[expr])
        if expr.is_Rational:
            return self.constant(expr)
        if expr.is_Symbol:
            return self.monomial(self.generator(expr, per_class=expr in PER_CLASS))
        if expr.is_Add:
            return reduce(self.add, (self.element(arg) for arg in expr.args), {})
        if expr.is_Mul:
            return reduce(self.mul, (self.element(arg) for arg in expr.args), self.one)
        if expr.is_Pow:
            base, exponent = expr.args
            if base == N - 1 and exponent.is_Integer and exponent < 0:
                return self.reciprocal_n_minus_one(int(-exponent))
            if exponent.is_Integer:
                value = self.element(base)
                if exponent >= 0:
                    return self.power(value, int(exponent))
                if self.invertible(value):
                    return self.power(self.inverse(value), int(-exponent))
            elif exponent.is_Rational:
                value = self.root(self.element(base), exponent)
                if value is not None:
                    return value
            return self._atom(expr)
        if isinstance(expr, _Mean):
            return self.mean(self.element(expr.args[0]), type(expr))
        if isinstance(expr, sympy.exp):
            # exp of a sum is the product of the exps: one atom per term keeps atoms canonical.
            factors = [self._atom(sympy.exp(term)) for term in sympy.Add.make_args(expr.args[0])]
            return reduce(self.mul, factors, self.one)
        if isinstance(expr, sympy.log):
            value = self.element(expr.args[0])
            logarithm = self.log_of_monomial(value)
            return logarithm if logarithm is not None else self._atom(expr)
        return self._atom(expr)

    def _atom(self, expr):
        if expr.is_Rational:
            return self.constant(expr)
        if expr.is_Number:
            raise DeriveError(f"cannot expand the number {expr}: coefficients are rational")
        return self.monomial(self.generator(expr))

    def log_of_monomial(self, poly):
        r"""``log`` of a one-term polynomial with a positive coefficient, as atoms
        (:math:`\log(c\,x^a/y^b) = \log c + a\log x - b\log y`); ``None`` otherwise."""
        term = self.as_monomial(poly)
        if term is None or not term[0] > 0:
            return None
        coefficient, monomial = term
        result = {}
        value = sympy.Rational(QQ.to_sympy(coefficient))
        if value != 1:
            result = self.add(result, self._log_atom(value))
        for slot, exponent in self.exponents(monomial).items():
            base, sign = self.expressions[slot], 1
            if base.is_Pow and base.args[1] == -1 and self.slots.get(base.args[0]) is not None:
                base, sign = base.args[0], -1
            result = self.add(result, self.scale(self._log_atom(base), QQ(sign * exponent)))
        return result

    def _log_atom(self, value):
        if value.is_Rational and value.q != 1:
            return self.add(
                self._log_atom(sympy.Integer(value.p)),
                self.scale(self._log_atom(sympy.Integer(value.q)), -_ONE),
            )
        return self._atom(sympy.log(value))


class Series:
    r"""A truncated Laurent series :math:`\sum_k c_k \epsilon^k`, exact for powers below
    ``precision``.

    ``coefficients`` maps a power to a nonzero polynomial of ``algebra``; ``precision`` is
    ``inf`` for a polynomial in :math:`\epsilon`.
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
        return self.coefficients.get(power, {})

    def truncate(self, precision):
        return Series(self.algebra, self.coefficients, min(self.precision, precision))

    def __add__(self, other):
        add = self.algebra.add
        coefficients = dict(self.coefficients)
        for k, c in other.coefficients.items():
            coefficients[k] = add(coefficients[k], c) if k in coefficients else c
        return Series(self.algebra, coefficients, min(self.precision, other.precision))

    def __mul__(self, other):
        accumulate, normalize = self.algebra.accumulate, self.algebra.normalize
        precision = min(self.precision + other.valuation, other.precision + self.valuation)
        coefficients = {}
        for i, a in self.coefficients.items():
            for j, b in other.coefficients.items():
                if i + j < precision:
                    accumulate(coefficients.setdefault(i + j, {}), a, b)
        return Series(self.algebra, {k: normalize(c) for k, c in coefficients.items()}, precision)

    def times(self, poly):
        """Every coefficient times a polynomial."""
        mul = self.algebra.mul
        return Series(
            self.algebra, {k: mul(c, poly) for k, c in self.coefficients.items()}, self.precision
        )

    def map(self, function):
        return Series(
            self.algebra, {k: function(c) for k, c in self.coefficients.items()}, self.precision
        )

    # -- transcendental operations, by the usual recurrences --------------------------------
    def _leading(self, operation):
        """``(a, c)``: the valuation and the leading coefficient, which must be one monomial in
        class constants (so that it can be divided out)."""
        a = self.valuation
        check_argument(
            a < self.precision,
            "cannot take {} of a series that is zero to the precision computed",
            operation,
        )
        leading = self[a]
        check_argument(
            self.algebra.invertible(leading),
            "{} needs a leading coefficient that is one product of class constants, got {}",
            operation,
            self.algebra.to_expr(leading),
        )
        return a, leading

    def _unit(self, a, leading):
        r"""``u`` with ``self = leading * eps**a * (1 + u)``, as the coefficient list of
        :math:`1 + u` (index = relative power)."""
        inverse = self.algebra.inverse(leading)
        mul = self.algebra.mul
        return {k - a: mul(c, inverse) for k, c in self.coefficients.items()}

    def _recurrence(self, unit, first, length, weight):
        """``g_0 = first``, ``g_n = sum_{k=1..n} weight(n, k) * s_k * g_{n-k}`` for ``n < length``,
        ``s`` the relative coefficients ``unit``: the shape shared by the reciprocal, power and
        exp recurrences."""
        accumulate, normalize = self.algebra.accumulate, self.algebra.normalize
        _check_length(length, "a reciprocal, power or exp")
        g = [first]
        for n in range(1, int(length)):
            acc = {}
            for k in range(1, n + 1):
                s = unit.get(k)
                if s and g[n - k]:
                    accumulate(acc, s, g[n - k], weight(n, k))
            g.append(normalize(acc))
        return g

    def reciprocal(self, precision):
        a, leading = self._leading("1/x")
        unit = self._unit(a, leading)
        # Relative terms: as many as the series knows, and as the caller needs.
        length = min(self.precision - a, precision + a)
        b = self._recurrence(unit, self.algebra.one, length, lambda n, k: -_ONE)
        inverse = self.algebra.inverse(leading)
        return Series(
            self.algebra,
            {n - a: self.algebra.mul(c, inverse) for n, c in enumerate(b)},
            min(self.precision - 2 * a, precision),
        )

    def power(self, exponent, precision):
        """``self**exponent`` for a rational exponent (fractional: a leading coefficient whose
        root is exact, and a valuation the exponent keeps integral)."""
        if exponent == int(exponent) and exponent >= 0:
            result = Series(self.algebra, {0: self.algebra.one}, INF)
            base, n = self, int(exponent)
            # A factor with a pole (valuation v < 0) costs each product -v terms: keep them in
            # the intermediate products.
            v = self.valuation if self.valuation < self.precision else 0
            work = precision + max(n - 1, 0) * max(-v, 0)
            _check_length(work - n * min(v, 0), "a power of a series with a pole")
            while n:
                if n & 1:
                    result = (result * base).truncate(work)
                n >>= 1
                if n:
                    base = (base * base).truncate(work)
            return result.truncate(precision)
        if exponent == int(exponent):
            # (1/x)**n: each of the n - 1 products loses the valuation a of x; ask 1/x for it.
            a = self.valuation if self.valuation < self.precision else 0
            more = (-int(exponent) - 1) * max(a, 0)
            return self.reciprocal(precision + more).power(-exponent, precision)
        a, leading = self._leading("a fractional power")
        alpha = sympy.Rational(exponent)
        root = self.algebra.root(leading, alpha)
        shifted = a * alpha
        check_argument(
            root is not None and shifted.is_Integer,
            "a fractional power needs a "
            "leading term with an exact root, got ({})*epsilon**{} to the power {}",
            self.algebra.to_expr(leading),
            a,
            alpha,
        )
        unit = self._unit(a, leading)
        q = QQ.from_sympy(alpha)
        # J. C. P. Miller's recurrence for (1 + u)**alpha.
        length = min(self.precision - a, precision - int(shifted))
        g = self._recurrence(unit, self.algebra.one, length, lambda n, k: ((q + 1) * k - n) / n)
        mul = self.algebra.mul
        return Series(
            self.algebra,
            {n + int(shifted): mul(c, root) for n, c in enumerate(g)},
            min(self.precision - a + int(shifted), precision),
        )

    def exp(self, precision):
        check_argument(self.valuation >= 0, "exp of a series with negative powers of epsilon")
        constant = self[0]
        rest = Series(
            self.algebra, {k: c for k, c in self.coefficients.items() if k}, self.precision
        )
        # g = exp(f) solves g' = f' g; exp of the constant term is an atom.
        g = rest._recurrence(
            rest.coefficients,
            self.algebra.one,
            min(self.precision, precision),
            lambda n, k: QQ(k, n),
        )
        result = Series(self.algebra, dict(enumerate(g)), min(self.precision, precision))
        if constant:
            result = result.times(self.algebra.element(sympy.exp(self.algebra.to_expr(constant))))
        return result

    def log(self, precision):
        a = self.valuation
        check_argument(
            a == 0 or a >= self.precision,
            "log of a series starting at epsilon**{}: its expansion has log(T) terms",
            a,
        )
        _, leading = self._leading("log")
        constant = self.algebra.log_of_monomial(leading)
        check_argument(
            constant is not None,
            "log needs a positive leading coefficient, got {}",
            self.algebra.to_expr(leading),
        )
        unit = self._unit(0, leading)
        scale = self.algebra.scale
        length = int(min(self.precision, precision))
        _check_length(length, "a log")
        accumulate, normalize = self.algebra.accumulate, self.algebra.normalize
        l = [constant]
        for n in range(1, length):
            acc = scale(unit.get(n, {}), QQ(1))
            for k in range(1, n):
                s = unit.get(n - k)
                if s and l[k]:
                    accumulate(acc, l[k], s, QQ(-k, n))
            l.append(normalize(acc))
        return Series(self.algebra, dict(enumerate(l)), min(self.precision, precision))

    def taylor_at_one(self, derivative, precision, coefficient):
        r""":math:`f^{(n)}(s)` for the generator ``f`` of an f-divergence, ``s = 1 + u``:
        :math:`\sum_k f^{(n+k)}(1)\,u^k/k!`, ``coefficient(m)`` being :math:`f^{(m)}(1)`."""
        check_argument(
            self.valuation >= 0 and self[0] == self.algebra.one,
            "f is expanded at 1: its argument must start at 1, got {} + O(epsilon)",
            self.algebra.to_expr(self[0]),
        )
        algebra = self.algebra
        u = Series(algebra, {k: c for k, c in self.coefficients.items() if k}, self.precision)
        result = Series(algebra, {}, INF)
        term = Series(algebra, {0: algebra.one}, INF)
        factorial = 1
        _check_length(min(self.precision, precision), "f at a series")
        for k in range(int(min(self.precision, precision)) + 1):
            value = algebra.element(sympy.sympify(coefficient(derivative + k)))
            if value:
                result = result + term.times(algebra.scale(value, QQ(1, factorial)))
            term = (term * u).truncate(precision)
            factorial *= k + 1
            if term.valuation >= precision:
                break
        return result.truncate(min(self.precision, precision))


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
            return Series(A, {1: A.one}, INF)
        if expr == T:
            return Series(A, {-1: A.one}, INF)
        if not _has_epsilon(expr):
            return self._constant(A.element(expr))
        if expr.is_Add:
            total = Series(A, {}, INF)
            for arg in expr.args:
                total = total + self.series(arg, precision)
            return total
        if expr.is_Mul:
            return self._product(expr.args, precision)
        if expr.is_Pow:
            base, exponent = expr.args
            if base in (epsilon, T) and exponent.is_Integer:
                power = int(exponent) * (1 if base == epsilon else -1)
                return Series(A, {power: A.one}, INF)
            if exponent.is_Rational:
                return self._power(base, exponent, precision)
            # A symbolic exponent: b**e = exp(e log b).
            return self.series(sympy.exp(exponent * sympy.log(base), evaluate=False), precision)
        if isinstance(expr, sympy.exp):
            return self.series(expr.args[0], precision).exp(precision)
        if isinstance(expr, sympy.log):
            return self.series(expr.args[0], precision).log(precision)
        if isinstance(expr, _Mean):
            kind = type(expr)
            return self.series(expr.args[0], precision).map(lambda c: A.mean(c, kind))
        if isinstance(expr, FDerivative):
            order, argument, *parameters = expr.args
            check_argument(
                order.is_Integer and order >= 0, "f^(n) needs an integer n >= 0, got {}", order
            )
            return self.series(argument, precision).taylor_at_one(
                int(order), precision, lambda m: type(expr).taylor_coefficient(m, *parameters)
            )
        raise DeriveError(
            f"cannot expand {expr} in 1/T: supported are rationals, epsilon, T, "
            f"per-class symbols, class constants, +, *, powers, exp, log, f and "
            f"mean(...)"
        )

    def _power(self, base, exponent, precision):
        inner = self.series(base, precision)
        if not (exponent.is_Integer and exponent >= 0):
            # 1/x and roots need the leading term: look further while the base is zero so far.
            looked = precision
            while inner.valuation >= inner.precision and looked < precision + _LOOKAHEAD:
                looked += 2
                inner = self.series(base, looked)
        if exponent.is_Integer and exponent < 0:
            # 1/x loses 2*valuation of precision, and each of the -exponent - 1 products of
            # 1/x with itself one valuation more; ask the base for what that costs.
            a = inner.valuation
            needed = precision + (1 - int(exponent)) * a
            if 0 < a < inner.precision and inner.precision < needed:
                inner = self.series(base, needed)
            elif a <= 0 and a < inner.precision and inner.precision - 2 * a < precision:
                inner = self.series(base, precision + 2 * a)
        elif exponent.is_Integer and exponent > 1 and inner.valuation < 0:
            # A base with a pole: each of the exponent - 1 products loses its order.
            needed = precision - (int(exponent) - 1) * inner.valuation
            if inner.valuation < inner.precision < needed:
                inner = self.series(base, needed)
        elif not exponent.is_Integer:
            a = inner.valuation
            shifted = a * exponent
            if (
                a < inner.precision
                and shifted.is_Integer
                and inner.precision - a + shifted < precision
            ):
                inner = self.series(base, precision + a - int(shifted))
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
    """The :class:`Series` of ``expr`` known to ``precision``."""
    algebra = algebra or Algebra()
    return _Expander(algebra).series(sympy.sympify(expr), precision)


def power_series(expr: Any, *, order: int) -> list[Any]:
    r"""The coefficients of :math:`\epsilon^0 .. \epsilon^{order-1}` of ``expr``, as sympy
    expressions.

    Raises :class:`~derive.DeriveError` if ``expr`` has negative powers of :math:`\epsilon`.
    """
    check_order(order)
    check_argument(
        isinstance(expr, (sympy.Basic, int)) and not isinstance(expr, bool),
        "power_series needs a sympy expression, got {!r}",
        expr,
    )
    result = series_of(expr, precision=order)
    check_argument(
        result.valuation >= 0, "{} has a pole of order {} at T = infinity", expr, -result.valuation
    )
    check_argument(
        result.precision >= order,
        "internal: expansion reached precision {} < {}",
        result.precision,
        order,
    )
    return [result.algebra.to_expr(result[k]) for k in range(order)]
