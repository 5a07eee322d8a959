"""Every statement is a test: its symbolic proof must come out as the registry expects,
and a planted violation must make the proof fail."""

import pathlib

import pytest
import sympy

import derive
from derive import STATEMENTS, N, ClassMean, v_i, z_i
from derive import statements as statements_module

THEORY_IDS = ["zero-mean-gradient", "mean-preservation", "equal-mean", "infinite-temperature",
              "hinton-zero-mean", "equal-mean-suffices", "expansion"]


@pytest.mark.parametrize("statement_id", list(STATEMENTS))
def test_each_proof_comes_out_as_expected(statement_id):
    statement = STATEMENTS[statement_id]
    result = statement.prove(order=4)
    assert result.as_expected, str(result)
    if statement.expected == "holds":
        assert all(residual == 0 for residual in result.residuals.values())
    else:
        assert result.residual != 0


def test_registry_has_every_theory_id_and_refutations_name_their_parent():
    assert [i for i in STATEMENTS if "/" not in i] == THEORY_IDS
    for statement_id, statement in STATEMENTS.items():
        assert (statement.expected == "refuted") == ("/" in statement_id)
        assert statement.numeric_check.startswith("verify.checks:check_")
        if "/" in statement_id:
            assert statement_id.split("/")[0] in THEORY_IDS


def test_theory_file_ids_are_the_registry_ids():
    theory = pathlib.Path(__file__).resolve().parents[2] / "shared" / "THEORY.md"
    if not theory.exists():
        pytest.skip(f"{theory} is not beside this checkout")
    import re
    ids = re.findall(r"\*\*\[([a-z-]+)\]\*\*", theory.read_text())
    assert ids == THEORY_IDS


def test_zero_mean_gradient_holds_at_every_order_up_to_eight():
    result = STATEMENTS["zero-mean-gradient"].prove(order=8)
    assert sum(name.startswith("sum_i G_") for name in result.residuals) == 8
    assert result.verdict == "holds"


def test_adaptive_refutations_give_the_exact_mean_change():
    # One Adam step at z = 0, v = (1, 0, 0), T = 1: signs of g are (-, +, +), so the mean row
    # weight moves by -eta * (1/3) * (-1 + 1 + 1) = -eta/3.
    eta = statements_module.learning_rate
    assert STATEMENTS["mean-preservation/adam"].prove().residual == -eta / 3


# -- negative controls: planted violations make the proofs fail ----------------------------

def test_infinite_temperature_proof_fails_without_the_regularizer(monkeypatch):
    real = statements_module.leading_pieces
    monkeypatch.setattr(statements_module, "leading_pieces",
                        lambda q: {**real(q), "regularizer": 0})
    result = STATEMENTS["infinite-temperature"].prove(order=1)
    assert result.verdict == "refuted"
    residual = result.residuals["L_0 - (L_LM + regularizer)"]
    assert sympy.expand(residual + (ClassMean(z_i) - ClassMean(v_i)) ** 2 / 2) == 0


def test_hinton_proof_fails_when_only_one_mean_is_zero():
    proof = statements_module._with_means({ClassMean(z_i): 0})
    result = derive.Statement("planted", "planted", "", "holds", proof).prove(order=1)
    assert result.verdict == "refuted"


def test_zero_mean_proof_catches_a_gradient_with_a_constant_added(monkeypatch):
    real_terms = statements_module._terms

    def planted(quantity, order):
        terms = real_terms(quantity, order)
        return terms[:-1] + [terms[-1] + ClassMean(z_i) / N] if quantity == "gradient" else terms

    monkeypatch.setattr(statements_module, "_terms", planted)
    result = STATEMENTS["zero-mean-gradient"].prove(order=2)
    assert result.verdict == "refuted"
    assert result.residuals["sum_i G_1,i"] == ClassMean(z_i)


def test_expansion_proof_catches_an_inconsistent_loss_term(monkeypatch):
    real_terms = statements_module._terms

    def planted(quantity, order):
        terms = real_terms(quantity, order)
        return [terms[0] + ClassMean(z_i**2 * v_i)] + terms[1:] if quantity == "loss" else terms

    monkeypatch.setattr(statements_module, "_terms", planted)
    result = STATEMENTS["expansion"].prove(order=2)
    assert result.verdict == "refuted"
    assert "G_0 - dL_0/dz_i" in {k for k, r in result.residuals.items() if r != 0}


def test_mean_preservation_proof_catches_a_per_class_rescaled_step(monkeypatch):
    real_step = statements_module._sgd_step

    # A per-class rescale: step_i multiplied by (1 + v_i), which has nonzero class mean weight.
    def rescaled(*, nesterov):
        weight, buffer = real_step(nesterov=nesterov)
        step = (derive.notation.w_i - weight)
        return derive.notation.w_i - step * (1 + v_i), buffer

    monkeypatch.setattr(statements_module, "_sgd_step", rescaled)
    assert STATEMENTS["mean-preservation"].prove().verdict == "refuted"


def test_shift_invariance_proof_catches_a_loss_with_a_logit_penalty(monkeypatch):
    real = statements_module._shift_invariant_losses
    monkeypatch.setattr(statements_module, "_shift_invariant_losses",
                        lambda: {**real(), "kd + mean logit": real()["kd"] + ClassMean(z_i)})
    result = STATEMENTS["zero-mean-gradient"].prove(order=1)
    assert result.residuals["sum_i dL/dz_i, kd + mean logit"] == 1


def test_prove_rejects_a_bad_order():
    with pytest.raises(derive.DeriveError, match="order must be an integer >= 1, got -1"):
        STATEMENTS["expansion"].prove(order=-1)
