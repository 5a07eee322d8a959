"""The engine's power-series arithmetic, against sympy.series on expressions without class
means (where sympy.series is fast), and its class-mean rule on a known cumulant series."""

import pytest
import sympy
from sympy import Rational, exp, log, sqrt

from derive import ClassMean, N, epsilon, moment, power_series, v_i, z_i

E, Z, V = epsilon, z_i, v_i


@pytest.mark.parametrize("expr", [
    exp(E * Z) * (1 + E * V) ** 3,
    1 / (2 - E * Z + E**2 * V),
    sqrt(1 + E * Z),
    (1 + E * Z) ** Rational(-3, 2),
    log(1 + E * Z + E**2 * V**2),
    log(exp(E * Z) + E * V),
    (exp(E * Z) - 1 - E * Z) / E**2,          # a pole cancelled by the numerator
    exp(E * (Z - V)) / (1 + exp(E * Z)) ** 2,
    Z / N + E * V / N**2,
])
def test_matches_sympy_series(expr):
    order = 5
    reference = sympy.series(expr, E, 0, order).removeO()
    for k, coefficient in enumerate(power_series(expr, order=order)):
        assert sympy.simplify(coefficient - reference.coeff(E, k)) == 0, k


def test_log_of_a_class_mean_gives_the_cumulants():
    # log <exp(eps z)> is the cumulant generating function of the class-uniform distribution.
    m1, m2, m3 = moment(1, 0), moment(2, 0), moment(3, 0)
    terms = power_series(log(ClassMean(exp(E * Z))), order=4)
    assert [sympy.expand(t) for t in terms] == [0, m1, (m2 - m1**2) / 2,
                                                sympy.expand((m3 - 3 * m2 * m1 + 2 * m1**3) / 6)]


def test_order_is_independent_of_the_class_count():
    # Nothing in a term refers to a particular N: moments and 1/N only.
    terms = power_series(log(ClassMean(exp(E * Z))) / N, order=6)
    assert all(t.free_symbols <= {N, Z, V} for t in terms)
