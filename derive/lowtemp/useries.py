r"""Truncated series in :math:`u = e^{-\delta/T}` with coefficients polynomial in :math:`1/T`:
the arithmetic of the low-temperature transseries.

At concrete logits whose differences are multiples of a unit :math:`\delta`, every
:math:`e^{c/T}` in a softmax objective is a power :math:`u^{-c/\delta}`. Holding
:math:`\epsilon = 1/T` fixed in the explicit factors and expanding in :math:`u` at 0 gives
:math:`\sum_q c_q(\epsilon)\,u^q`; putting :math:`\log u = -\epsilon\delta` back makes it the
transseries :math:`\sum_q c_q(1/T)\,e^{-q\delta/T}` (powers :math:`q` are rationals, so
Puiseux terms are allowed). :class:`USeries` is such a series, known exactly below an
absolute power ``known``; :func:`expand_in_u` builds one from a sympy expression by recursion
over its tree (sums, products, powers, logarithms, exponentials), which is all a softmax
objective is made of.

Examples
========

>>> import sympy
>>> from derive.notation import epsilon
>>> u = sympy.Symbol("u", positive=True)
>>> s = expand_in_u(sympy.log(1 + u**2) / epsilon, u, unit=1, cutoff=5)
>>> {str(power): coefficient for power, coefficient in s.terms.items()}
{'2': 1/epsilon, '4': -1/(2*epsilon)}
>>> expand_in_u(sympy.log(u), u, unit=3, cutoff=2).terms[0]
-3*epsilon
"""

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import sympy

from .._errors import DeriveError, check_argument
from ..notation import AmariAlpha, FDerivative, epsilon

__all__ = ["USeries", "expand_in_u", "is_zero"]


def is_zero(coefficient):
    """Exact zero test of a coefficient (a sympy expression in :math:`\\epsilon` and constants):
    logarithms of numbers are split into primes first, so ``log(6) - log(2) - log(3)`` is 0.

    The series arithmetic asks about the same few coefficients many times over; the answer is
    remembered per expression (sympy's structural equality: the same tree, not merely an equal
    value), so a repeated question costs a lookup and the test itself is unchanged."""
    return _is_zero(_sympified(coefficient))


def _sympified(value):
    return value if isinstance(value, sympy.Basic) else sympy.sympify(value)


@lru_cache(maxsize=1 << 14)
def _is_zero(coefficient):
    value = _expanded(sympy.expand_log(coefficient, force=True))
    if value == 0:
        return True
    # A nonzero value at one point proves the coefficient nonzero (cheap, and the common case);
    # only what vanishes there goes to simplify.
    sample = value.subs(epsilon, sympy.Rational(7, 3)).evalf(30)
    if sample.is_number and sample.is_comparable and abs(sample) > sympy.Float("1e-20"):
        return False
    return bool(sympy.simplify(value) == 0)


@lru_cache(maxsize=1 << 14)
def _expanded(coefficient):
    """``sympy.expand(coefficient)``, remembered: the arithmetic re-expands the coefficients
    it carries over unchanged at every step."""
    return sympy.expand(coefficient)


def _power(term):
    return term[0]


def _rational(value):
    value = sympy.nsimplify(value) if not isinstance(value, sympy.Rational) else value
    check_argument(
        isinstance(value, sympy.Rational), "a power of u must be rational, got {}", value
    )
    return Fraction(int(value.p), int(value.q))


@dataclass
class USeries:
    r""":math:`\sum_q` ``terms[q]`` :math:`u^q`, exact for every power below ``known``
    (``None``: exact, a finite sum)."""

    terms: dict = field(default_factory=dict)
    known: Fraction | None = None
    cutoff: Fraction = Fraction(8)

    def _clean(self):
        if self.known is None or self.known > self.cutoff:
            self.known = self.cutoff
        terms = {}
        for power, coefficient in sorted(self.terms.items(), key=_power):
            if power >= self.known:
                break
            coefficient = _expanded(_sympified(coefficient))
            if coefficient != 0:
                terms[power] = coefficient
        self.terms = terms
        return self

    def _new(self, terms, known):
        return USeries(terms, known, self.cutoff)._clean()

    def valuation(self):
        """``(power, coefficient)`` of the lowest nonzero term (exact zero test), or
        ``None`` when every known term vanishes."""
        for power, coefficient in sorted(self.terms.items(), key=_power):
            if not is_zero(coefficient):
                return power, coefficient
        return None

    def __add__(self, other):
        terms = dict(self.terms)
        for power, coefficient in other.terms.items():
            terms[power] = terms.get(power, 0) + coefficient
        return self._new(terms, min(self.known, other.known))

    def scale(self, factor):
        return self._new({p: c * factor for p, c in self.terms.items()}, self.known)

    def __mul__(self, other):
        lead_self, lead_other = self._lowest(), other._lowest()
        known = min(self.known + lead_other, other.known + lead_self)
        terms = {}
        for p, a in self.terms.items():
            for q, b in other.terms.items():
                power = p + q
                if power < known:
                    terms[power] = terms.get(power, 0) + a * b
        return self._new(terms, known)

    def _lowest(self):
        found = self.valuation()
        return found[0] if found else self.known

    def _split(self, what):
        """``(v, c, x)`` with ``self = c u^v (1 + x)``, ``x`` of positive valuation."""
        found = self.valuation()
        if found is None:
            raise DeriveError(f"the {what} of a series with no nonzero known term")
        power, coefficient = found
        rest = {p - power: c / coefficient for p, c in self.terms.items() if p > power}
        return power, coefficient, self._new(rest, self.known - power)

    def _compose(self, x, coefficients):
        """``sum_k coefficients(k) x^k`` for ``x`` of positive valuation, to ``x.known``."""
        step = x._lowest()
        if step >= x.known:
            return self._new({Fraction(0): coefficients(0)}, x.known)
        total = self._new({Fraction(0): coefficients(0)}, None)
        power = self._new({Fraction(0): 1}, None)
        k = 1
        while k * step < x.known:
            power = power * x
            total = total + power.scale(coefficients(k))
            k += 1
        total.known = min(total.known, x.known)
        return total._clean()

    def power(self, exponent):
        exponent = sympy.sympify(exponent)
        if exponent.is_Integer and exponent >= 0:
            result = self._new({Fraction(0): 1}, None)
            for _ in range(int(exponent)):
                result = result * self
            return result
        v, c, x = self._split("power")
        shifted = _rational(sympy.Rational(v.numerator, v.denominator) * exponent)
        body = self._compose(x, lambda k: sympy.binomial(exponent, k)).scale(c**exponent)
        terms = {p + shifted: a for p, a in body.terms.items()}
        return USeries(terms, body.known + shifted, self.cutoff)._clean()

    def log(self, unit):
        v, c, x = self._split("logarithm")
        body = self._compose(x, lambda k: 0 if k == 0 else sympy.Rational((-1) ** (k + 1), k))
        constant = sympy.log(c) - sympy.Rational(v.numerator, v.denominator) * epsilon * unit
        return body + self._new({Fraction(0): constant}, None)

    def exp(self):
        constant = self.terms.get(Fraction(0), 0)
        check_argument(
            all(p >= 0 or is_zero(c) for p, c in self.terms.items()),
            "exp of a series with negative powers of u",
        )
        rest = self._new({p: c for p, c in self.terms.items() if p > 0}, self.known)
        return self._compose(rest, lambda k: 1 / sympy.factorial(k)).scale(sympy.exp(constant))


def expand_in_u(expr, u, *, unit, cutoff):
    r"""The :class:`USeries` of ``expr`` (a sympy expression in ``u`` and :math:`\epsilon`),
    exact below :math:`u^{cutoff}`; :math:`\log u = -\epsilon\cdot` ``unit``.

    Generic f-divergence generators (``fd``) have no expansion: their behaviour at 0 and
    infinity is left undefined; Amari's generator is written out first.
    """
    found = _walk(sympy.sympify(expr), u, sympy.sympify(unit), Fraction(cutoff))
    # The expansions of subexpressions are shared between calls: hand out a copy.
    return USeries(dict(found.terms), found.known, found.cutoff)


def _constant(value, cutoff):
    return USeries({Fraction(0): value}, None, cutoff)._clean()


@lru_cache(maxsize=1 << 12)
def _walk(node, u, unit, cutoff):
    """The expansion of one node of the tree. An objective repeats its subexpressions (the
    softmax's normalizer in every probability, the same terms in the loss and in each gradient
    component), so each is expanded once; no operation changes a series it is given, so sharing
    the results is safe."""
    if not node.has(u):
        return _constant(node, cutoff)
    if node == u:
        return USeries({Fraction(1): sympy.Integer(1)}, None, cutoff)._clean()
    if isinstance(node, sympy.Add):
        total = _constant(0, cutoff)
        for arg in node.args:
            total = total + _walk(arg, u, unit, cutoff)
        return total
    if isinstance(node, sympy.Mul):
        product = _constant(1, cutoff)
        for arg in node.args:
            product = product * _walk(arg, u, unit, cutoff)
        return product
    if isinstance(node, sympy.Pow):
        check_argument(not node.exp.has(u), "a power with u in the exponent: {}", node)
        if node.base == u:
            return USeries({_rational(node.exp): sympy.Integer(1)}, None, cutoff)._clean()
        return _walk(node.base, u, unit, cutoff).power(node.exp)
    if isinstance(node, sympy.log):
        return _walk(node.args[0], u, unit, cutoff).log(unit)
    if isinstance(node, sympy.exp):
        return _walk(node.args[0], u, unit, cutoff).exp()
    if isinstance(node, sympy.Abs):
        inner = _walk(node.args[0], u, unit, cutoff)
        found = inner.valuation()
        check_argument(found is not None, "|x| of a series with no nonzero known term")
        sign = sympy.sign(sympy.sympify(found[1]))
        check_argument(
            sign in (1, -1), "|x| of a series whose leading sign is unknown: {}", found[1]
        )
        return inner.scale(sign)
    if isinstance(node, AmariAlpha):
        order, argument, alpha = node.args
        variable = sympy.Dummy("t", positive=True)
        derivative = sympy.diff(AmariAlpha.formula(variable, alpha), variable, int(order))
        return _walk(derivative.subs(variable, argument), u, unit, cutoff)
    if isinstance(node, FDerivative):
        raise DeriveError(
            "the generic f-divergence leaves f undefined, and its low-temperature "
            "behaviour depends on f at 0 and at infinity"
        )
    raise DeriveError(f"no expansion in u for {type(node).__name__}: {node}")
