"""The expansion, checked against computations that share no code with the engine:
a direct ``sympy.series`` of the explicit N-class function, and mpmath Taylor coefficients
of the exact KL computed in high precision."""

import random

import mpmath
import pytest
import sympy

import derive
from derive import DeriveError, expand, logit_symbols

EPS = sympy.Symbol("e", positive=True)


def _logits(classes, seed):
    rng = random.Random(seed)
    draw = lambda: sympy.Rational(rng.randint(-30, 30), rng.randint(1, 9))  # noqa: E731
    return [draw() for _ in range(classes)], [draw() for _ in range(classes)]


def _at(expr, classes, student, teacher):
    zs, vs = logit_symbols(classes)
    return sympy.expand(expr.subs(dict(zip(zs, student))).subs(dict(zip(vs, teacher))))


@pytest.mark.parametrize("classes", [2, 3, 4])
def test_gradient_terms_match_a_direct_sympy_series(classes):
    order = 4
    student, teacher = _logits(classes, seed=classes)
    exp_z = [sympy.exp(EPS * z) for z in student]
    exp_v = [sympy.exp(EPS * v) for v in teacher]
    expansion = expand("gradient", order=order, classes=classes)
    for i in range(classes):
        exact = (exp_z[i] / sum(exp_z) - exp_v[i] / sum(exp_v)) / EPS  # T (q_i - p_i)
        direct = sympy.series(exact, EPS, 0, order).removeO()
        for term in expansion.terms:
            derived = _at(term.expr[i], classes, student, teacher)
            assert sympy.simplify(direct.coeff(EPS, term.power) - derived) == 0, (i, term.power)


@pytest.fixture(autouse=True)
def fifty_digits():
    with mpmath.workdps(50):
        yield


def _mp(values):
    return [mpmath.mpf(value.p) / value.q for value in values]


def _kl_taylor(student, teacher, degree):
    """Taylor coefficients in eps of KL(p||q) (no T^2 factor), in the working precision."""

    def kl(eps):
        ez = [mpmath.exp(eps * z) for z in student]
        ev = [mpmath.exp(eps * v) for v in teacher]
        p = [e / mpmath.fsum(ev) for e in ev]
        q = [e / mpmath.fsum(ez) for e in ez]
        return mpmath.fsum(pi * mpmath.log(pi / qi) for pi, qi in zip(p, q))

    return mpmath.taylor(kl, 0, degree)


@pytest.mark.parametrize("classes, order", [(2, 5), (3, 6), (5, 8)])
def test_loss_terms_match_high_precision_taylor_coefficients(classes, order):
    student, teacher = _logits(classes, seed=10 + classes)
    reference = _kl_taylor(_mp(student), _mp(teacher), order + 1)
    for term in expand("loss", order=order, classes=classes).terms:
        derived = _at(term.expr, classes, student, teacher)
        # L_KD = eps^-2 KL: the T^-k term is the eps^(k+2) Taylor coefficient of KL.
        expected = reference[term.power + 2]
        scale = max(1, abs(expected))
        assert abs(mpmath.mpf(sympy.N(derived, 40)) - expected) < 1e-25 * scale, term.power


def test_gradient_terms_match_high_precision_taylor_coefficients_at_order_8():
    classes, order = 5, 8
    student, teacher = _logits(classes, seed=7)
    zf, vf = _mp(student), _mp(teacher)

    def scaled_gradient(eps, i):  # eps * dL/dz_i = q_i - p_i
        ez = [mpmath.exp(eps * z) for z in zf]
        ev = [mpmath.exp(eps * v) for v in vf]
        return ez[i] / mpmath.fsum(ez) - ev[i] / mpmath.fsum(ev)

    expansion = expand("gradient", order=order, classes=classes)
    for i in range(classes):
        reference = mpmath.taylor(lambda e, i=i: scaled_gradient(e, i), 0, order)
        for term in expansion.terms:
            derived = mpmath.mpf(sympy.N(_at(term.expr[i], classes, student, teacher), 40))
            assert abs(derived - reference[term.power + 1]) < 1e-25 * max(
                1, abs(reference[term.power + 1])
            )


def test_symbolic_terms_are_polynomials_in_moments_without_exponentials():
    for quantity in derive.QUANTITIES:
        for term in expand(quantity, order=5).terms:
            assert not term.expr.has(sympy.exp, sympy.log, derive.epsilon)
            assert term.expr.free_symbols <= {derive.N, derive.z_i, derive.v_i}


def test_other_objectives_use_the_same_engine_and_agree_to_leading_order():
    # KL, reverse KL and 4 x Jensen-Shannon all start with Var(z - v)/2 (second-order
    # divergences agree); they differ from T^-1 on.
    kl = expand("loss", order=2).terms
    reverse = expand("loss", order=2, objective="reverse-kl").terms
    js = expand("loss", order=2, objective="js").terms
    assert sympy.expand(kl[0].expr - reverse[0].expr) == 0
    assert sympy.expand(kl[0].expr - 4 * js[0].expr) == 0
    assert sympy.expand(kl[1].expr - reverse[1].expr) != 0


def test_reverse_kl_matches_high_precision_taylor_coefficients():
    classes, order = 3, 4
    student, teacher = _logits(classes, seed=3)
    reference = _kl_taylor(_mp(teacher), _mp(student), order + 1)  # KL(q||p): swap roles
    for term in expand("loss", order=order, classes=classes, objective="reverse-kl").terms:
        derived = mpmath.mpf(sympy.N(_at(term.expr, classes, student, teacher), 40))
        assert abs(derived - reference[term.power + 2]) < 1e-25 * max(
            1, abs(reference[term.power + 2])
        )


def test_concrete_json_strings_parse_in_explicit_symbols():
    classes = 3
    data = expand("gradient", order=2, classes=classes).to_json()
    allowed = {f"z{c}" for c in range(1, classes + 1)} | {f"v{c}" for c in range(1, classes + 1)}
    assert data["classes"] == classes and data["objective"] == "kl"
    for term in data["terms"]:
        assert len(term["expr"]) == classes
        for text in term["expr"]:
            assert {symbol.name for symbol in sympy.sympify(text).free_symbols} <= allowed


def test_symbolic_json_strings_parse_back_in_the_documented_notation():
    for term in expand("loss", order=3).to_json()["terms"]:
        assert (
            sympy.expand(
                derive.parse(term["expr"]) - expand("loss", order=3).terms[term["power"]].expr
            )
            == 0
        )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: expand("loss", order=0), "order must be an integer >= 1, got 0"),
        (lambda: expand("loss", order=2.5), "order must be an integer >= 1, got 2.5"),
        (lambda: expand("loss", order=True), "order must be an integer >= 1, got True"),
        (lambda: expand("loss", order=2, classes=1), "classes must be an integer >= 2"),
        (
            lambda: expand("hessian", order=2),
            "quantity must be one of loss, gradient, got 'hessian'",
        ),
        (
            lambda: expand("loss", order=2, objective="no-such-objective"),
            "objective must be one of",
        ),
        (lambda: derive.power_series(derive.z_i / derive.epsilon, order=2), "pole of order 1"),
        (
            lambda: derive.power_series(sympy.sin(derive.epsilon), order=2),
            "cannot expand sin(epsilon)",
        ),
        (
            lambda: derive.power_series(sympy.log(derive.epsilon), order=2),
            "its expansion has log(T) terms",
        ),
        (
            lambda: derive.power_series(sympy.log(derive.z_i + derive.epsilon), order=2),
            "log needs a leading coefficient that is one product of class constants, got z_i",
        ),
        (lambda: derive.power_series(None, order=2), "power_series needs a sympy expression"),
    ],
)
def test_bad_input_raises_the_package_error(call, message):
    with pytest.raises(DeriveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_the_reference_comparison_catches_a_planted_wrong_term():
    # Negative control: the high-precision comparison above rejects a term off by a small moment.
    classes = 3
    student, teacher = _logits(classes, seed=13)
    reference = _kl_taylor(_mp(student), _mp(teacher), 4)
    zs, vs = logit_symbols(classes)
    term = expand("loss", order=2, classes=classes).terms[1].expr
    planted = term + sum(z**3 for z in zs) / (1000 * classes)
    for wrong in (planted, expand("loss", order=3, classes=classes).terms[2].expr):
        derived = mpmath.mpf(sympy.N(_at(wrong, classes, student, teacher), 40))
        assert abs(derived - reference[3]) > 1e-6
