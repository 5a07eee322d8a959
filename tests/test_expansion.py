"""The expansion, checked against computations that share no code with the engine:
a direct ``sympy.series`` of the explicit N-class function, and mpmath Taylor coefficients
of the exact KL computed in high precision; a gradient's components against the derivatives of
the separately expanded loss, the leading term against the theory's named pieces, the record's
JSON, and the refusals (bad arguments, an objective with a pole at infinite temperature)."""

import dataclasses
import json
import random

import mpmath
import pytest
import sympy

import derive
from derive import DeriveError, expand, logit_symbols
from derive.expansion import QUANTITIES, Expansion, Term, leading_pieces
from derive.notation import ClassMean, N, epsilon, v_i, z_i
from derive.objectives import OBJECTIVES

EPS = sympy.Symbol("e", positive=True)


def _logits(classes, seed):
    rng = random.Random(seed)
    draw = lambda: sympy.Rational(rng.randint(-30, 30), rng.randint(1, 9))  # noqa: E731
    return [draw() for _ in range(classes)], [draw() for _ in range(classes)]


def _at(expr, classes, student, teacher):
    zs, vs = logit_symbols(classes)
    return sympy.expand(expr.xreplace({**dict(zip(zs, student)), **dict(zip(vs, teacher))}))


# sympy's series at 4 classes takes a third of this file's time: with --run-slow (.ci/run).
@pytest.mark.parametrize("classes", [2, 3, pytest.param(4, marks=pytest.mark.slow)])
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


# -- a gradient's components: the loss terms' derivatives, the label at class 1 --------------------


def explicit(classes):
    """The explicit logit symbols, built here (real, as the notation documents)."""
    return (
        sympy.symbols(f"z1:{classes + 1}", real=True),
        sympy.symbols(f"v1:{classes + 1}", real=True),
    )


@pytest.mark.parametrize("objective", ["kl", "ce-mixture"])
def test_gradient_terms_are_the_derivatives_of_the_loss_terms(objective):
    classes, order = 3, 3
    z, _ = explicit(classes)
    loss = expand("loss", order=order, classes=classes, objective=objective)
    gradient = expand("gradient", order=order, classes=classes, objective=objective)
    assert len(loss.terms) == len(gradient.terms) == order
    for k in range(order):
        components = gradient.terms[k].expr
        assert isinstance(components, tuple) and len(components) == classes
        for c in range(classes):
            assert sympy.expand(components[c] - sympy.diff(loss.terms[k].expr, z[c])) == 0, (k, c)


def test_the_label_is_class_one_and_its_component_differs():
    gradient = expand("gradient", order=2, objective="ce-mixture", parameters={"alpha": "1/2"})
    term = gradient.terms[0]
    assert term.labelled and [name for name, _ in term.components] == ["g", "i"]
    assert set(term.symbolic) == {"g", "i"} and term.symbolic["g"] != term.symbolic["i"]
    assert set(term.text) == {"g", "i"} and set(term.latex) == {"g", "i"}
    assert set(term.readable) == {"g", "i"}
    concrete = expand(
        "gradient", order=2, classes=3, objective="ce-mixture", parameters={"alpha": "1/2"}
    ).terms[0]
    z, v = explicit(3)
    # With equal logits every class but the label gets the same gradient; the label another.
    same = {**{z[c]: 0 for c in range(3)}, **{v[c]: 0 for c in range(3)}}
    values = [sympy.simplify(e.subs(same)) for e in concrete.expr]
    assert values[1] == values[2] != values[0]
    assert len(concrete.text) == len(concrete.latex) == len(concrete.readable) == 3


def test_an_unlabelled_gradient_has_one_component_for_every_class():
    term = expand("gradient", order=1, objective="kl").terms[0]
    assert not term.labelled and [name for name, _ in term.components] == ["i"]
    assert term.symbolic == term.expr
    assert isinstance(term.text, str) and isinstance(term.latex, str)
    assert isinstance(term.readable, str) and "⟨" in term.readable
    concrete = expand("gradient", order=1, classes=2, objective="kl").terms[0]
    z, v = explicit(2)
    assert sympy.expand(concrete.expr[0] - (z[0] - z[1] - v[0] + v[1]) / 4) == 0
    assert sympy.expand(concrete.expr[1] + concrete.expr[0]) == 0


# -- the leading term and the theory's named pieces ------------------------------------------------


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_the_leading_term_is_the_sum_of_the_named_pieces(quantity):
    term = expand(quantity, order=1).terms[0]
    pieces = leading_pieces(quantity)
    assert set(pieces) == {"logits-matching", "regularizer"}
    assert sympy.expand(term.symbolic - sum(pieces.values())) == 0


def test_leading_pieces_of_the_loss_are_the_theorys():
    pieces = leading_pieces("loss")
    regularizer = -((ClassMean(z_i) - ClassMean(v_i)) ** 2) / 2
    assert sympy.expand(pieces["regularizer"] - regularizer) == 0
    gradient = leading_pieces("gradient")
    assert sympy.expand(gradient["logits-matching"] - (z_i - v_i) / N) == 0


# -- the Expansion record: JSON, progress messages, immutability -----------------------------------


def test_the_json_record_has_the_parameters_and_every_term():
    expansion = expand("loss", order=2, classes=2, objective="jsd", parameters={"beta": "1/4"})
    data = json.loads(json.dumps(expansion.to_json()))
    assert data["objective"] == "jsd" and data["quantity"] == "loss" and data["classes"] == 2
    assert data["order"] == 2 and data["parameters"] == {"beta": "1/4"}
    assert [t["power"] for t in data["terms"]] == [0, 1]
    assert all(set(t) == {"power", "expr", "latex"} for t in data["terms"])
    symbolic = expand("loss", order=1).to_json()
    assert symbolic["classes"] == "N" and symbolic["parameters"] == {}
    assert isinstance(expansion, Expansion) and isinstance(expansion.terms[1], Term)
    assert expansion.terms[1].power == 1 and expansion.terms[0].quantity == "loss"


def test_progress_is_reported_before_and_after():
    messages = []
    expand("gradient", order=2, objective="kl", progress=messages.append)
    assert len(messages) == 2 and "gradient" in messages[0] and "kl" in messages[0]
    assert "2 terms" in messages[0] and messages[1] == ""


def test_terms_and_expansions_are_immutable():
    expansion = expand("loss", order=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        expansion.order = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        expansion.terms[0].power = 1


# -- refusals: bad arguments, poles at infinite temperature ----------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: expand("hessian", order=1),
        lambda: expand("loss", order=1, objective="nope"),
        lambda: expand("loss", order=1, objective=3),
        lambda: expand("loss", order=1, classes=1),
        lambda: expand("loss", order=1, objective="kl", parameters=[("beta", 1)]),
        lambda: expand("loss", order=25),
        lambda: expand("loss", order=12, objective="jsd"),
        lambda: leading_pieces("hessian"),
    ],
)
def test_bad_quantities_objectives_classes_and_orders_are_refused(call):
    with pytest.raises(DeriveError):
        call()


def test_the_maximum_order_is_allowed():
    assert len(expand("loss", order=2, objective="dist").terms) == 2
    with pytest.raises(DeriveError, match="at most 10"):
        expand("loss", order=11, objective="dist")


def test_parameters_must_be_a_dict_even_when_pairs_would_do():
    with pytest.raises(DeriveError, match="parameters must be a dict"):
        expand("loss", order=1, objective="jsd", parameters=[("beta", "1/4")])


class _PoleObjective:
    """An objective whose loss grows like T and whose gradient like T**2."""

    max_order = 4

    def resolve(self, parameters):
        return ()

    def loss(self):
        return z_i / epsilon + v_i

    def gradient(self):
        return {"i": 1 / epsilon**2 + z_i}


@pytest.mark.parametrize("quantity, order", [("loss", 1), ("gradient", 2)])
def test_an_objective_with_a_pole_at_infinite_temperature_is_refused(monkeypatch, quantity, order):
    monkeypatch.setitem(OBJECTIVES, "test-pole", _PoleObjective())
    with pytest.raises(DeriveError, match=f"{quantity} of test-pole has a pole of order {order} "):
        expand(quantity, order=2, objective="test-pole")


class _CancellingPoleObjective(_PoleObjective):
    """A loss whose pole cancels: 1/(eps + eps**2 z)**2 - 1/eps**2 + 2 z/eps
    = 3 z**2 - 4 z**3 eps + 5 z**4 eps**2 + ..."""

    def loss(self):
        return 1 / (epsilon + epsilon**2 * z_i) ** 2 - 1 / epsilon**2 + 2 * z_i / epsilon


def test_an_expansion_is_right_or_refused_never_silently_short(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "test-cancelling-pole", _CancellingPoleObjective())
    try:
        terms = expand("loss", order=3, objective="test-cancelling-pole").terms
    except DeriveError as error:  # the engine may fall short of the precision ...
        assert "precision" in str(error)
        return
    # ... but what it returns must be right.
    expected = [3 * z_i**2, -4 * z_i**3, 5 * z_i**4]
    assert [sympy.expand(t.expr - e) for t, e in zip(terms, expected)] == [0, 0, 0]
