"""The expansion's public surface against independent references: a gradient term is the
derivative of the separately expanded loss term, the label's component is where the label is,
the leading term is the sum of the theory's named pieces. Written to kill the mutants that the
broader tests of tests/test_expansion.py leave alive (docs/mutation-testing.md)."""

import dataclasses
import json

import pytest
import sympy

from derive import DeriveError, expand
from derive.expansion import QUANTITIES, Expansion, Term, leading_pieces
from derive.notation import N, epsilon, v_i, z_i
from derive.objectives import OBJECTIVES


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


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_the_leading_term_is_the_sum_of_the_named_pieces(quantity):
    term = expand(quantity, order=1).terms[0]
    pieces = leading_pieces(quantity)
    assert set(pieces) == {"logits-matching", "regularizer"}
    assert sympy.expand(term.symbolic - sum(pieces.values())) == 0


def test_leading_pieces_of_the_loss_are_the_theorys():
    pieces = leading_pieces("loss")
    from derive.notation import ClassMean

    regularizer = -((ClassMean(z_i) - ClassMean(v_i)) ** 2) / 2
    assert sympy.expand(pieces["regularizer"] - regularizer) == 0
    gradient = leading_pieces("gradient")
    assert sympy.expand(gradient["logits-matching"] - (z_i - v_i) / N) == 0


def test_json_and_parameters():
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
def test_bad_input_is_refused(call):
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


def test_terms_and_expansions_are_immutable():
    expansion = expand("loss", order=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        expansion.order = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        expansion.terms[0].power = 1


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
