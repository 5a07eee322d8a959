r"""The low-temperature transseries of a registered objective at concrete logits, derived from
its definition.

At logits whose differences are multiples of a unit :math:`\delta` (the greatest common
divisor of every exponent's coefficient), every :math:`e^{c/T}` in the objective (written for
concrete N with :func:`derive.concrete`) becomes :math:`u^{-c/\delta}`,
:math:`u = e^{-\delta/T}`; :func:`~derive.lowtemp.useries.expand_in_u` expands the rest in
:math:`u` with :math:`\epsilon = 1/T` held in the coefficients, and
:math:`\log u = -\delta/T` turns the result into

.. math::

    Q(T) = P_0(T) + \sum_{g > 0} P_g(T)\, e^{-g/T},

:math:`P_g` polynomials in :math:`T` and :math:`1/T`. The :math:`T \to 0` limit of
:math:`Q/T^k` exists iff no negative gap :math:`g` carries a nonzero coefficient and
:math:`P_0` has no power of :math:`T` below :math:`k`; the first exponential correction is the
smallest gap with a nonzero :math:`P_g`. Nothing about the limits is assumed here: the
closed forms of :mod:`derive.lowtemp.limits` are proved against this.

Examples
========

>>> series = transseries("kl", "loss", [0, -1, -2], [-1, 0, -3])
>>> series.leading_power, series.leading
(1, 1)
>>> series.first_gap
1
"""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache, reduce
from math import gcd
from typing import Any

import sympy

from .._errors import DeriveError, check_argument
from ..notation import ClassMean, N, concrete, epsilon, logit_symbols, sigma_v, sigma_z, vh_i, zh_i
from ..objectives import OBJECTIVES
from .useries import expand_in_u, is_zero

__all__ = ["Transseries", "transseries", "TEMPERATURE", "U"]

#: The temperature, in the polynomial coefficients of the transseries.
TEMPERATURE = sympy.Symbol("T", positive=True)
#: :math:`u = e^{-\delta/T}`.
U = sympy.Symbol("u", positive=True)


@dataclass(frozen=True)
class Transseries:
    r""":math:`Q(T) = \sum_g P_g(T) e^{-g/T}` at concrete logits: ``terms`` maps each gap
    :math:`g` (a sympy Rational, ascending, exact below ``known``) to :math:`P_g(T)`."""

    objective: str
    quantity: str
    component: int
    student: tuple
    teacher: tuple
    unit: sympy.Rational
    terms: dict[Any, Any]
    known: sympy.Rational

    @property
    def exists(self) -> bool:
        """No nonzero coefficient at a negative gap (the quantity does not blow up like
        :math:`e^{c/T}`)."""
        return all(gap >= 0 for gap in self.terms)

    @property
    def polynomial_part(self) -> Any:
        """:math:`P_0(T)`, the part without an exponential."""
        return self.terms.get(sympy.Integer(0), sympy.Integer(0))

    @property
    def leading_power(self):
        """The lowest power of :math:`T` in :math:`P_0`, or ``None`` if :math:`P_0 = 0`."""
        powers = _powers(self.polynomial_part)
        return min(powers) if powers else None

    @property
    def leading(self) -> Any:
        r"""The coefficient of :math:`T^k` in :math:`P_0`, k the leading power (0 if none)."""
        powers = _powers(self.polynomial_part)
        return powers[min(powers)] if powers else sympy.Integer(0)

    def coefficient(self, power: int) -> Any:
        """The coefficient of :math:`T^{power}` in :math:`P_0`."""
        return _powers(self.polynomial_part).get(power, sympy.Integer(0))

    @property
    def first_gap(self):
        """The smallest positive gap with a nonzero coefficient (``None`` if none is known)."""
        gaps = [gap for gap in self.terms if gap > 0]
        return min(gaps) if gaps else None

    def corrections(self, count: int = 2) -> list[tuple[Any, Any]]:
        """``[(gap, P_gap(T))]``, the first ``count`` exponential corrections."""
        return [(gap, P) for gap, P in self.terms.items() if gap > 0][:count]


def _powers(polynomial):
    """``{k: coefficient of T^k}`` of a Laurent polynomial in T."""
    polynomial = sympy.expand(sympy.expand_log(polynomial, force=True))
    if polynomial == 0:
        return {}
    found = {}
    for term in sympy.Add.make_args(polynomial):
        coefficient, power = term.as_coeff_exponent(TEMPERATURE)
        check_argument(
            not coefficient.has(TEMPERATURE), "not a Laurent polynomial in T: {}", polynomial
        )
        found[int(power)] = found.get(int(power), 0) + coefficient
    return {k: c for k, c in sorted(found.items()) if not is_zero(c)}


@lru_cache(maxsize=256)
def _concrete_definition(objective, quantity, classes, component, values):
    """The objective (or its gradient component) for ``classes`` explicit classes, in the
    logits ``z1..zN, v1..vN`` (standardized objectives: in their standardized coordinates,
    with both standard deviations set to 1; the chain rule to the raw logits is exact and
    T-free)."""
    definition = OBJECTIVES[objective]
    loss = definition.loss(**dict(values))
    student, teacher = logit_symbols(classes)
    if definition.coordinates == "standardized":
        columns = list(zip(student, teacher))

        def rewrite(node):
            if isinstance(node, ClassMean):
                arg = rewrite(node.args[0])
                return sympy.Add(*[arg.xreplace({zh_i: z, vh_i: v}) for z, v in columns]) / classes
            if not node.args:
                return node
            return node.func(*[rewrite(a) for a in node.args])

        expr = rewrite(loss).xreplace({N: classes, sigma_z: 1, sigma_v: 1})
    else:
        expr = concrete(loss, classes=classes)
    if quantity == "gradient":
        expr = expr.diff(student[component - 1])
    elif quantity == "temperature":
        # dQ/dT = -epsilon^2 dQ/d(epsilon), epsilon = 1/T.
        expr = -(epsilon**2) * expr.diff(epsilon)
    return expr, student, teacher


def _unit(coefficients):
    fractions = [Fraction(int(c.p), int(c.q)) for c in coefficients if c != 0]
    if not fractions:
        return sympy.Integer(1)
    denominator = reduce(lambda a, b: a * b // gcd(a, b), [f.denominator for f in fractions])
    numerator = reduce(gcd, [abs(f.numerator) * (denominator // f.denominator) for f in fractions])
    return sympy.Rational(numerator, denominator)


def transseries(
    objective: str,
    quantity: str,
    student: Sequence[Any],
    teacher: Sequence[Any],
    *,
    parameters: dict[str, Any] | None = None,
    component: int = 1,
    cutoff: Any = None,
) -> Transseries:
    r"""The transseries of ``objective``'s ``quantity`` (``"loss"``; ``"gradient"``: its
    derivative in the student logit ``component``, 1-based; ``"temperature"``: its derivative
    in :math:`T`) at the rational logits
    ``student``, ``teacher`` (for a labelled objective the label is class 1; standardized
    objectives take standardized coordinates). Parameters must be concrete rationals.

    ``cutoff`` bounds the gaps kept (default: twice the largest logit spread, plus 2).
    """
    check_argument(objective in OBJECTIVES, "unknown objective {!r}", objective)
    check_argument(
        quantity in ("loss", "gradient", "temperature"),
        "quantity must be loss, gradient or temperature, got {!r}",
        quantity,
    )
    student = tuple(sympy.Rational(x) for x in student)
    teacher = tuple(sympy.Rational(x) for x in teacher)
    check_argument(
        len(student) == len(teacher) >= 2, "student and teacher need the same N >= 2 logits"
    )
    values = tuple(sorted((parameters or {}).items()))
    return _transseries(objective, quantity, student, teacher, values, component, cutoff)


@lru_cache(maxsize=512)
def _transseries(objective, quantity, student, teacher, values, component, cutoff):
    classes = len(student)
    expr, z, v = _concrete_definition(objective, quantity, classes, component, values)
    expr = expr.xreplace({**dict(zip(z, student)), **dict(zip(v, teacher))})
    exponentials = [e for e in expr.atoms(sympy.exp) if e.has(epsilon)]
    rates = {}
    for e in exponentials:
        rate = sympy.nsimplify(sympy.expand(e.args[0] / epsilon))
        check_argument(
            rate.is_Rational and not rate.has(epsilon),
            "{}: exponent {} is not a rational multiple of 1/T",
            objective,
            e.args[0],
        )
        rates[e] = rate
    unit = _unit(rates.values())
    expr = expr.xreplace({e: U ** (-rate / unit) for e, rate in rates.items()})
    spread = max(max(student) - min(student), max(teacher) - min(teacher), unit)
    if cutoff is None:
        cutoff = 2 * spread + 2
    series = expand_in_u(expr, U, unit=unit, cutoff=Fraction(str(sympy.Rational(cutoff) / unit)))
    terms = {}
    for power, coefficient in series.terms.items():
        if is_zero(coefficient):
            continue
        gap = sympy.Rational(power.numerator, power.denominator) * unit
        terms[gap] = sympy.expand(coefficient.subs(epsilon, 1 / TEMPERATURE))
    known = sympy.Rational(series.known.numerator, series.known.denominator) * unit
    if not terms and known <= 0:
        raise DeriveError(f"{objective}: nothing known below u^0; raise the cutoff")
    return Transseries(objective, quantity, component, student, teacher, unit, terms, known)
