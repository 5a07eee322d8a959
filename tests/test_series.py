"""The engine's power-series arithmetic, against sympy.series on expressions without class
means (where sympy.series is fast), and its class-mean rule on a known cumulant series; each
branch of the engine (T and 1/T, inverses and exact roots of class constants, binary powering,
symbolic exponents, exp and log of constant terms, partial fractions in 1/(N - 1)) against
sympy.series or coefficients worked out by hand, its refusals, and the polynomial algebra
against sympy's own arithmetic."""

import pytest
import sympy
from sympy import Rational, exp, log, sqrt

from derive import ClassMean, DeriveError, N, epsilon, moment, power_series, v_i, z_i
from derive.notation import AmariAlpha, FDerivative, OtherMean, T, f_derivative, z_g
from derive.series import Algebra, Series, series_of

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
    base = E + E**2 * Z if exponent < 0 else 1 / E + Z
    s = series_of(base**exponent, precision=precision)
    assert s.precision >= precision
    ours = sum(s.algebra.to_expr(s[k]) * E**k for k in range(-abs(exponent), precision))
    reference = sympy.series(base**exponent, E, 0, precision).removeO()
    assert sympy.expand(ours - reference) == 0


# -- every branch of the engine against sympy.series -----------------------------------------------


def reference(expr, order):
    """sympy.series's coefficients of epsilon**0 .. epsilon**(order - 1)."""
    expanded = sympy.expand(sympy.series(expr.subs(T, 1 / E), E, 0, order).removeO())
    return [expanded.coeff(E, k) for k in range(order)]


def assert_matches(expr, order=4):
    ours = power_series(expr, order=order)
    assert len(ours) == order
    for k, (a, b) in enumerate(zip(ours, reference(expr, order))):
        assert sympy.simplify(a - b) == 0, (k, a, b)


@pytest.mark.parametrize(
    "expr",
    [
        T * (exp(Z / T) - 1),  # T and 1/T
        1 / (N + E * Z),  # a class constant inverted
        3 / (2 * N**2 - E * Z + E**2 * V),  # its square, and a rational factor
        sqrt(4 * N**2 + E * Z),  # an exact root of a class constant
        (9 + E * Z) ** Rational(-1, 2),  # a negative fractional power
        E**2 / (E + E**2 * Z),  # a reciprocal with valuation 1
        sqrt(E**2 + E**3 * Z) / E,  # a root with valuation 2
        (1 + E * Z) ** 5,  # binary powering, odd exponent
        (1 + E * Z) ** 4,  # and even
        (2 + E * Z) ** -3,  # a negative integer power
        N**E,  # a symbolic exponent
        (2 + E * Z) ** (E * V),  # a symbolic exponent with a base
        exp(1 + E * Z),  # exp of a constant term
        exp(2 - E * Z + E**2 * V),
        log(2 + E * Z),  # log of an integer constant
        log(Rational(2, 3) + E * Z),  # log of a rational constant
        log(N + E * Z),  # log of a class constant
        log(1 / N + E * Z),  # of an inverse: -log(N)
        log(N**2 / 4 + E * V),
        log(1 + E * Z) * (1 + E * V) - E * Z * V,
        E**2 / (exp(E) - 1 - E),  # a base whose leading term is late
        (2 * (exp(E) - 1 - E)) ** Rational(-1, 2) * E,
        N / (N - 1) * (1 + E * Z),  # partial fractions in 1/(N - 1)
        (1 + E * Z) / (N * (N - 1) ** 2) + E * N**2 / (N - 1),
        (E * Z + E**2 * V) * (E * V - E**3) * (1 + E),  # products with several valuations
    ],
)
def test_each_branch_matches_sympy_series_with_t_and_one_over_t(expr):
    assert_matches(expr, order=4)


def test_a_base_that_vanishes_past_the_requested_order_is_looked_ahead():
    base = exp(E) - sum(E**k / sympy.factorial(k) for k in range(6))  # E**6/720 + ...
    assert power_series(E**6 / base, order=2) == [720, -Rational(720, 7)]


@pytest.mark.parametrize("exponent", [Rational(-3, 2), Rational(-1, 2), Rational(1, 2), -1, 3])
def test_a_power_is_known_to_the_requested_precision(exponent):
    base = E**2 + E**3 * Z  # E**2 (1 + E z)
    shift = int(2 * exponent)
    for precision in (1, 2, 4):
        s = series_of(base**exponent, precision=precision)
        assert s.precision >= precision, (exponent, precision)
        assert s.valuation == min(shift, s.precision)
        if precision <= shift:
            continue
        expected = reference((1 + E * Z) ** exponent, precision - shift)
        for k in range(shift, precision):
            assert sympy.expand(s.algebra.to_expr(s[k]) - expected[k - shift]) == 0


def test_a_squared_reciprocal_whose_pole_cancels_in_a_sum():
    expr = 1 / (E + E**2 * Z) ** 2 - 1 / E**2 + 2 * Z / E  # 3 z**2 - 4 z**3 eps + 5 z**4 eps**2
    assert power_series(expr, order=3) == [3 * Z**2, -4 * Z**3, 5 * Z**4]


@pytest.mark.parametrize("exponent", [Rational(-3, 2), Rational(-1, 2), -1])
def test_a_power_of_a_base_known_only_to_the_requested_precision(exponent):
    # 2 (exp(eps) - 1 - eps) = eps**2 (1 + eps/3 + ...) is known exactly as far as it is asked
    # for, so the power must ask it for the terms that the leading eps**2 costs.
    base = 2 * (exp(E) - 1 - E)
    for precision in (1, 2, 3):
        s = series_of(base**exponent, precision=precision)
        assert s.precision >= precision, (exponent, precision)


# -- class means and the f generator ---------------------------------------------------------------


def test_class_means_of_coefficients():
    # mean of (N eps z + eps^2 z v + 3): constants factor out of the mean.
    assert power_series(ClassMean(N * E * Z + E**2 * Z * V + 3), order=3) == [
        3,
        N * moment(1, 0),
        moment(1, 1),
    ]
    terms = power_series(OtherMean(E * Z**2 + E**2 * z_g * Z), order=3)
    assert terms == [0, OtherMean(Z**2), z_g * OtherMean(Z)]
    # A mean of a mean, and a relation the notation applies: <<z>> = <z>.
    assert power_series(ClassMean(E * ClassMean(Z) * Z), order=2) == [0, moment(1, 0) ** 2]


def test_means_that_the_notation_evaluates_are_not_generators():
    from derive.notation import zh_i

    # <exp(eps zh)> = 1 + eps <zh> + eps**2 <zh**2>/2 + ... with <zh> = 0 and <zh**2> = 1: the
    # moments are met inside the expansion, where the notation's relations must apply.
    s = series_of(ClassMean(exp(E * zh_i)) - 1, precision=3)
    assert s.valuation == 2 and s[2] == s.algebra.constant(Rational(1, 2))
    assert power_series(ClassMean(exp(E * zh_i)), order=3) == [1, 0, Rational(1, 2)]


def test_the_f_generator_is_expanded_at_one():
    order = 4
    f = [0] + [f_derivative(k) for k in range(1, order + 2)]
    terms = power_series(FDerivative(0, 1 + E * Z), order=order)
    assert [sympy.expand(t) for t in terms] == [0, f[1] * Z, f[2] * Z**2 / 2, f[3] * Z**3 / 6]
    terms = power_series(FDerivative(1, 1 + E * Z - E**2 * V), order=3)
    assert [sympy.expand(t) for t in terms] == [
        f[1],
        f[2] * Z,
        sympy.expand(-f[2] * V + f[3] * Z**2 / 2),
    ]


def test_a_concrete_f_generator_matches_its_formula():
    alpha = Rational(1, 3)
    t = sympy.Symbol("t", positive=True)
    formula = AmariAlpha.formula(t, alpha)
    expr = formula.subs(t, 1 + E * Z + E**2 * V)
    ours = power_series(AmariAlpha(0, 1 + E * Z + E**2 * V, alpha), order=4)
    for a, b in zip(ours, reference(expr, 4)):
        assert sympy.simplify(a - b) == 0


# -- what cannot be expanded is refused ------------------------------------------------------------


def test_a_base_that_vanishes_for_too_long_is_refused():
    base = exp(E) - sum(E**k / sympy.factorial(k) for k in range(20))  # E**20/20! + ...
    with pytest.raises(DeriveError):
        power_series(E**20 / base, order=2)


@pytest.mark.parametrize(
    "expr",
    [
        1 / E,
        T,
        exp(T),
        log(E * Z),
        log(-1 + E * Z),
        log(Z + E),
        1 / (Z + E),
        (E + E**2 * Z) ** Rational(1, 3),
        sqrt(2 + E * Z),
        sqrt(Z + E),
        FDerivative(0, 2 + E * Z),
        FDerivative(Rational(1, 2), 1 + E * Z),
        sympy.Function("g")(E),
        sympy.Float(0.5) * E,
    ],
)
def test_what_cannot_be_expanded_is_refused(expr):
    with pytest.raises(DeriveError):
        power_series(expr, order=3)


@pytest.mark.parametrize("bad", [True, 1.5, "eps", None])
def test_only_sympy_expressions_and_integers(bad):
    with pytest.raises(DeriveError):
        power_series(bad, order=2)
    assert power_series(3, order=2) == [3, 0]


# -- Series: precision, truncation and its own arithmetic ------------------------------------------


def test_series_precision_and_truncation():
    s = series_of(1 / (1 - E * Z), precision=3)
    assert s.precision == 3 and s.valuation == 0
    assert series_of(E**2 * (1 + E), precision=5).valuation == 2
    assert series_of(E**2 + E, precision=5).precision == float("inf")
    t = s.truncate(2)
    assert t.precision == 2 and sorted(t.coefficients) == [0, 1]
    assert series_of(E**3 * Z, precision=2).valuation == 3  # a polynomial: exact
    assert series_of(exp(E**3 * Z), precision=2).valuation == 0
    # A product knows as much as its least-known factor allows.
    p = series_of(E**2, precision=5) * series_of(1 / (1 - E), precision=3)
    assert p.precision == 5
    q = series_of(1 / (1 - E), precision=3) * series_of(1 / (1 - E * Z), precision=4)
    assert q.precision == 3


def test_series_arithmetic_directly():
    A = Algebra()
    one, z = A.one, A.element(Z)
    s = Series(A, {0: one, 1: z}, 4)
    assert s[5] == {} and s.valuation == 0
    r = s.reciprocal(4)
    assert [A.to_expr(r[k]) for k in range(4)] == [1, -Z, Z**2, -(Z**3)]
    e = Series(A, {1: z}, 4).exp(4)
    assert [sympy.expand(A.to_expr(e[k])) for k in range(4)] == [1, Z, Z**2 / 2, Z**3 / 6]
    lg = s.log(4)
    assert [sympy.expand(A.to_expr(lg[k])) for k in range(4)] == [0, Z, -(Z**2) / 2, Z**3 / 3]
    p = s.power(Rational(1, 2), 4)
    assert [sympy.expand(A.to_expr(p[k])) for k in range(4)] == [1, Z / 2, -(Z**2) / 8, Z**3 / 16]
    with pytest.raises(DeriveError):
        Series(A, {-1: one}, 3).exp(3)
    with pytest.raises(DeriveError):
        Series(A, {}, 3).reciprocal(3)
    constant = Series(A, {0: one}, 3).taylor_at_one(0, 3, lambda m: m + 1)  # f(1) = 1 here
    assert constant.coefficients == {0: one}
    with pytest.raises(DeriveError):
        Series(A, {0: A.element(Rational(2))}, 3).taylor_at_one(0, 3, lambda m: 1)


def test_series_power_zero_and_log_precision():
    A = Algebra()
    s = Series(A, {0: A.one, 1: A.element(Z)}, 3)
    assert s.power(0, 5).coefficients == {0: A.one}
    assert s.log(6).precision == 3  # no more than the argument knows
    assert s.exp(6).precision == 3
    assert s.reciprocal(6).precision == 3


# -- the polynomial algebra, against sympy's arithmetic --------------------------------------------


def algebra_and_elements():
    A = Algebra()
    x = A.element(Z + 2 * V - 1)
    y = A.element(N * Z**2 - V / 3)
    return A, x, y


def test_algebra_arithmetic_matches_sympy():
    A, x, y = algebra_and_elements()
    X, Y = Z + 2 * V - 1, N * Z**2 - V / 3
    check = lambda poly, expr: sympy.expand(A.to_expr(poly) - expr) == 0  # noqa: E731
    assert check(A.add(x, y), X + Y) and check(A.add(y, x), X + Y)
    assert check(A.add(x, A.scale(x, -1)), 0) and A.add(x, A.scale(x, -1)) == {}
    assert check(A.mul(x, y), X * Y) and check(A.mul(y, x), X * Y)
    assert check(A.mul(A.element(Z), y), Z * Y)
    assert A.mul(x, {}) == {} and A.mul({}, x) == {}
    assert check(A.scale(y, Rational(3, 2)), Rational(3, 2) * Y) and A.scale(y, 0) == {}
    for n in range(5):
        assert check(A.power(x, n), X**n)
    out = A.accumulate({}, x, y, Rational(-2))
    assert check(A.normalize(out), -2 * X * Y)
    (monomial,) = A.mul(A.element(Z**3), A.element(V**2))
    assert A.exponents(monomial) == {A.slots[Z]: 3, A.slots[V]: 2}


def test_inverse_and_root_of_class_constants():
    A = Algebra()
    value = A.element(3 * N**2 * z_g)
    inverse = A.inverse(value)
    assert sympy.simplify(A.to_expr(inverse) - 1 / (3 * N**2 * z_g)) == 0
    assert A.to_expr(A.mul(value, inverse)) == 1
    assert not A.invertible(A.element(Z)) and not A.invertible(A.element(N + 1))
    with pytest.raises(DeriveError):
        A.inverse(A.element(Z))
    assert sympy.simplify(A.to_expr(A.root(A.element(4 * N**2), Rational(1, 2))) - 2 * N) == 0
    assert sympy.simplify(A.to_expr(A.root(A.element(N**2 / 9), Rational(-1, 2))) - 3 / N) == 0
    assert A.root(A.element(2 * N**2), Rational(1, 2)) is None  # sqrt(2) is not rational
    assert A.root(A.element(4 * N), Rational(1, 2)) is None  # nor N**(1/2) a monomial
    assert A.root(A.element(N + 1), Rational(1, 2)) is None
    # 1/(N - 1) inverts to the polynomial N - 1.
    m = A.element(1 / (N - 1) ** 2)
    assert sympy.expand(A.to_expr(A.inverse(m)) - (N - 1) ** 2) == 0


def test_partial_fractions_are_canonical():
    A = Algebra()
    lhs = A.element(N / (N - 1))
    rhs = A.element(1 + 1 / (N - 1))
    assert lhs == rhs
    assert A.element(1 / (N * (N - 1))) == A.element(1 / (N - 1) - 1 / N)
    assert A.element(N**2 / (N - 1) ** 2) == A.element(1 + 2 / (N - 1) + 1 / (N - 1) ** 2)
    assert A.mul(A.element(N), A.element(1 / N)) == A.one


def test_log_of_monomials():
    A = Algebra()
    assert A.log_of_monomial(A.element(Z + 1)) is None
    assert A.log_of_monomial(A.element(-N)) is None
    assert A.log_of_monomial(A.one) == {}
    value = A.to_expr(A.log_of_monomial(A.element(Rational(4, 9) * N**3 / z_g**2)))
    assert sympy.expand(value - (log(4) - log(9) + 3 * log(N) - 2 * log(z_g))) == 0


def test_derivative_and_substitute_match_sympy():
    A = Algebra()
    expr = Z**2 * exp(Z) * N + V * Z - ClassMean(Z**2) * Z
    poly = A.element(expr)
    for symbol in (Z, V):
        derivative = A.to_expr(A.derivative(poly, symbol))
        expected = N * (2 * Z * exp(Z) + Z**2 * exp(Z)) if symbol == Z else Z
        if symbol == Z:
            expected += V - ClassMean(Z**2) - 2 * Z**2 / N
        assert sympy.expand(derivative - expected) == 0, symbol
    frozen = A.to_expr(A.derivative(poly, Z, frozen=(ClassMean,)))
    assert sympy.expand(frozen - (N * (2 * Z + Z**2) * exp(Z) + V - ClassMean(Z**2))) == 0
    swapped = A.substitute(poly, lambda x: 2 * V if x == Z else None)
    # Only the generator z_i itself is replaced (exp(z_i) and the mean are generators too).
    expected = N * (2 * V) ** 2 * exp(Z) + V * 2 * V - ClassMean(Z**2) * 2 * V
    assert sympy.expand(A.to_expr(swapped) - expected) == 0


def test_inverses_and_partial_fractions_of_a_later_generator():
    # N is not the first generator here: its masks and units are shifted.
    A = Algebra()
    A.element(Z * z_g)
    assert A.mul(A.element(N), A.element(1 / N)) == A.one
    assert A.mul(A.element(N**3), A.element(1 / N**2)) == A.element(N)
    assert A.mul(A.element(N), A.element(1 / N**3)) == A.element(1 / N**2)
    assert A.element(N / (N - 1)) == A.element(1 + 1 / (N - 1))
    assert A.element(N**2 / (N - 1)) == A.element(N + 1 + 1 / (N - 1))
    assert A.element(1 / (N * (N - 1))) == A.element(1 / (N - 1) - 1 / N)


def test_a_product_that_cancels_in_partial_fractions_leaves_no_zero_terms():
    A = Algebra()
    assert A.mul(A.element(N - 1), A.element(1 / (N - 1))) == A.one
    assert A.mul(A.element(N**2 - 1), A.element(1 / (N - 1))) == A.element(N + 1)


def test_the_inverse_of_a_power_of_one_over_n_minus_one_is_a_polynomial_in_n():
    A = Algebra()
    assert A.inverse(A.element(1 / (N - 1))) == A.element(N - 1)
    assert A.inverse(A.element(3 / (N - 1) ** 2)) == A.element((N**2 - 2 * N + 1) / 3)


def test_an_exact_rational_root_in_a_coefficient_is_taken():
    A = Algebra()
    root = sympy.Pow(4 * N**2 * z_g**4, Rational(1, 2), evaluate=False)
    assert A.element(root) == A.element(2 * N * z_g**2)
    inverse_root = sympy.Pow(N**2 / 9, Rational(-1, 2), evaluate=False)
    assert A.element(inverse_root) == A.element(3 / N)
