"""[equal-mean]'s bias-decay hypothesis: the refutation equal-mean/bias-decay, its derivation
checked against the update rule iterated by hand, its numeric counterexample against the
derived gap, and its negative control (the same setup without weight decay on the biases)."""

import pytest
import sympy
import torch
from sympy import Rational

from derive.normal_form import canonical
from derive.notation import ClassMean, b_i, m_i
from derive.statements import STATEMENTS, core
from verify.checks._common import CheckContext
from verify.checks.bias_decay import (
    SGDWithoutBiasDecay,
    bias_decay_point_gaps,
    check_equal_mean_bias_decay,
    decaying_sgd_optimizers,
    run_bias_decay_check,
)


def test_the_refutation_is_registered_and_refuted_as_expected():
    result = STATEMENTS["equal-mean/bias-decay"].prove()
    assert result.expected == "refuted" and result.verdict == "refuted" and result.as_expected
    steps = sympy.Symbol("t", integer=True, nonnegative=True)
    at_point = list(result.residuals.values())[1]
    expected = (Rational(99, 100) ** steps - 1) / 2
    assert sympy.simplify(at_point - expected) == 0
    assert at_point.subs(steps, 1) == Rational(-1, 200)
    assert at_point.subs(steps, 0) == 0


def _iterated_bias_means(steps, eta, decay, start):
    """PyTorch's plain SGD rule on the bias, b <- b - eta (g + decay b), applied ``steps`` times
    to a generic class and averaged over the classes each time (the gradient's mean is 0)."""
    means = [start]
    for _ in range(steps):
        updated = b_i - eta * (core._kd_logit_gradient() + decay * b_i)
        means.append(canonical(ClassMean(updated)).xreplace({ClassMean(b_i): means[-1]}))
    return means


def test_the_derived_gap_is_the_update_rule_iterated():
    steps, start, gap = core.bias_decay_gap()
    eta, decay = Rational(1, 10), Rational(1, 10)
    iterated = _iterated_bias_means(6, eta, decay, Rational(1, 2))
    for t, mean in enumerate(iterated):
        derived = gap.subs(
            {core.learning_rate: eta, core.weight_decay: decay, start: Rational(1, 2)}
        )
        assert derived.subs(steps, t) == mean - Rational(1, 2)
    # A wrong decay factor is told apart from the derived one.
    assert iterated[2] - Rational(1, 2) != Rational(1, 2) * (Rational(98, 100) ** 2 - 1)


def test_the_step_residuals_of_equal_mean_fail_with_bias_decay_and_nonzero_means():
    residuals = core._equal_mean_step_residuals()
    assert residuals and all(r == 0 for r in residuals.values())
    new_bias, _ = core._sgd_bias_step(core.weight_decay, nesterov=False, first=True)
    kept_means = {ClassMean(m_i): 0}
    moved = canonical(ClassMean(new_bias)).xreplace(kept_means) - ClassMean(b_i)
    assert canonical(moved) != 0


def test_the_numeric_counterexample_is_the_derived_gap():
    gaps, tolerances = bias_decay_point_gaps(steps=20)
    derived = torch.tensor([0.5 * (1 - 0.99**t) for t in range(21)], dtype=torch.float64)
    assert bool(((gaps - derived).abs() <= tolerances).all())
    assert float(gaps[20]) == pytest.approx(0.0910, abs=5e-5)
    # A prediction off by a decay factor 0.98 is far outside the tolerance.
    wrong = torch.tensor([0.5 * (1 - 0.98**t) for t in range(21)], dtype=torch.float64)
    assert bool(((gaps - wrong).abs()[1:] > 1e3 * tolerances[1:]).all())


def _context(examples=4):
    return CheckContext.create(
        device="cpu", dtype=torch.float64, examples=examples, seed=0, search_examples=10
    )


def test_the_check_refutes_with_a_counterexample():
    result = check_equal_mean_bias_decay(examples=4, search_examples=10)
    assert result.verdict == "refuted" and result.as_expected, result
    assert result.worst_error > result.tolerance
    assert "weight_decay" in result.counterexample
    assert "bias means 0.5" in result.counterexample


def test_negative_control_without_weight_decay_on_the_biases_holds():
    optimizers = decaying_sgd_optimizers(factory=SGDWithoutBiasDecay, label="SGDWithoutBiasDecay")
    result = run_bias_decay_check("equal-mean/bias-decay", _context(), optimizers=optimizers)
    assert result.verdict == "holds" and not result.as_expected, result
    assert result.counterexample is None
    assert result.worst_error <= result.tolerance


def test_sgd_without_bias_decay_still_decays_the_weights():
    weight = torch.ones(1, 2, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.ones(1, 2, dtype=torch.float64, requires_grad=True)
    optimizer = SGDWithoutBiasDecay([weight, bias], lr=0.1, weight_decay=0.1)
    (weight.sum() * 0 + bias.sum() * 0).backward()
    optimizer.step()
    assert torch.allclose(weight, torch.full_like(weight, 0.99), rtol=0, atol=1e-15)
    assert torch.equal(bias.detach(), torch.ones_like(bias))
