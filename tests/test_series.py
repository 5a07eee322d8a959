"""The engine's power-series arithmetic, against sympy.series on expressions without class
means (where sympy.series is fast), and its class-mean rule on a known cumulant series."""

import pytest
import sympy
from sympy import Rational, exp, log, sqrt

from derive import ClassMean, N, epsilon, moment, power_series, v_i, z_i

E, Z, V = epsilon, z_i, v_i


@pytest.mark.parametrize(
    "expr",
    [
        exp(E * Z) * (1 + E * V) ** 3,
        1 / (2 - E * Z + E**2 * V),
        sqrt(1 + E * Z),
        (1 + E * Z) ** Rational(-3, 2),
        log(1 + E * Z + E**2 * V**2),
        log(exp(E * Z) + E * V),
        (exp(E * Z) - 1 - E * Z) / E**2,  # a pole cancelled by the numerator
        exp(E * (Z - V)) / (1 + exp(E * Z)) ** 2,
        Z / N + E * V / N**2,
    ],
)
def test_matches_sympy_series(expr):
    order = 5
    reference = sympy.series(expr, E, 0, order).removeO()
    for k, coefficient in enumerate(power_series(expr, order=order)):
        assert sympy.simplify(coefficient - reference.coeff(E, k)) == 0, k


def test_log_of_a_class_mean_gives_the_cumulants():
    # log <exp(eps z)> is the cumulant generating function of the class-uniform distribution.
    m1, m2, m3 = moment(1, 0), moment(2, 0), moment(3, 0)
    terms = power_series(log(ClassMean(exp(E * Z))), order=4)
    assert [sympy.expand(t) for t in terms] == [
        0,
        m1,
        (m2 - m1**2) / 2,
        sympy.expand((m3 - 3 * m2 * m1 + 2 * m1**3) / 6),
    ]


def test_order_is_independent_of_the_class_count():
    # Nothing in a term refers to a particular N: moments and 1/N only.
    terms = power_series(log(ClassMean(exp(E * Z))) / N, order=6)
    assert all(t.free_symbols <= {N, Z, V} for t in terms)


@pytest.mark.parametrize("exponent", [-2, -3, -4, 2, 3])
@pytest.mark.parametrize("precision", [1, 2, 4])
def test_integer_powers_of_a_base_with_a_zero_or_a_pole_keep_the_requested_precision(
    exponent, precision
):
    """x**n multiplies n factors: with x = eps (1 + eps z) (for n < 0) or x = (1 + eps z)/eps
    (for n > 0) each product costs the factor's valuation, and every term up to the requested
    precision must still be right (against sympy.series)."""
    from derive.series import series_of

    base = E + E**2 * Z if exponent < 0 else 1 / E + Z
    s = series_of(base**exponent, precision=precision)
    assert s.precision >= precision
    ours = sum(s.algebra.to_expr(s[k]) * E**k for k in range(-abs(exponent), precision))
    reference = sympy.series(base**exponent, E, 0, precision).removeO()
    assert sympy.expand(ours - reference) == 0
