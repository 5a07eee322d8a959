"""Negative controls: every check, fed a planted violation, must flag it (and shrink it); every
refutation, fed a statement that holds, must not.

The planted violations: a logit gradient with a constant added, an optimizer that rescales the
gradient's class rows, an initialization whose mean row weight is off by 1e-6/N, a wrong
high-temperature limit, logits matching without the normalization (or the equal-mean
initialization) that makes it KD's limit, and wrong expansion terms.
"""

import pytest
import sympy
import torch
from hypothesis import strategies as st
from planted import PerClassScaledSGD

import derive
from verify.checks._common import CheckContext
from verify.checks.equal_mean import (
    equal_bias_initialization,
    equal_mean_initialization,
    run_equal_mean_check,
)
from verify.checks.expansion import expansion_terms, run_expansion_check
from verify.checks.mean_preservation import run_mean_preservation_check
from verify.checks.temperature import (
    default_initialization,
    run_infinite_temperature_check,
    run_trajectory_check,
    zero_mean_logits_matching,
)
from verify.checks.zero_mean import run_zero_mean_check
from verify.losses import LOSSES, Loss, logits_matching_loss
from verify.optimizers import OptimizerSpec
from verify.strategies import sgd_optimizers


def _context(examples=4, dtype=torch.float64):
    return CheckContext.create(
        device="cpu", dtype=dtype, examples=examples, seed=0, search_examples=25
    )


def _assert_flagged(result, *fragments):
    assert result.verdict == "refuted" and not result.as_expected, result
    assert result.worst_error > result.tolerance
    assert result.counterexample
    for fragment in fragments:
        assert fragment in result.counterexample, result.counterexample


def _assert_not_flagged(result):
    assert result.verdict == "holds" and not result.as_expected, result
    assert result.counterexample is None
    assert result.worst_error <= result.tolerance


# -- planted violations -------------------------------------------------------------------------

KD = LOSSES["kl"]
KD_PLUS_CONSTANT = Loss(
    "kd+1e-6*sum(z)",
    True,
    lambda p: KD(p) + 1e-6 * p.student.sum(-1),
    lambda p: KD.magnitudes(p)[0],
    lambda p: KD.magnitudes(p)[1],
)


def test_zero_mean_flags_a_gradient_with_a_constant_added():
    result = run_zero_mean_check("zero-mean-gradient", [KD_PLUS_CONSTANT], _context(64))
    _assert_flagged(result, "kd+1e-6*sum(z)", "sum of the logit gradient")


PLANTED_SGD = OptimizerSpec(
    "sgd", (("lr", 0.05),), factory=PerClassScaledSGD, label="PerClassScaledSGD"
)


def test_mean_preservation_flags_a_per_class_rescaled_update():
    result = run_mean_preservation_check("mean-preservation", st.just(PLANTED_SGD), _context(8))
    _assert_flagged(result, "PerClassScaledSGD(lr=0.05)", "off the prediction")


def test_mean_preservation_flags_a_wrong_weight_decay_prediction():
    class DoubleDecaySGD(torch.optim.SGD):
        def step(self, closure=None):
            for group in self.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        parameter.grad.add_(parameter.detach(), alpha=group["weight_decay"])
            return super().step(closure)

    planted = OptimizerSpec(
        "sgd", (("lr", 0.05), ("weight_decay", 0.1)), factory=DoubleDecaySGD, label="DoubleDecaySGD"
    )
    result = run_mean_preservation_check("mean-preservation", st.just(planted), _context(8))
    _assert_flagged(result, "DoubleDecaySGD")


def off_by_epsilon(student, teacher, *, zero_bias=False):
    """Equal-mean initialization, then the student's first row moved by 1e-6."""
    bounds = equal_mean_initialization(student, teacher, zero_bias=zero_bias)
    with torch.no_grad():
        student.output_weight[:, 0, :] += 1e-6
    return bounds


def test_equal_mean_flags_a_row_mean_off_by_a_millionth():
    result = run_equal_mean_check("equal-mean", off_by_epsilon, _context(8))
    _assert_flagged(result, "off by epsilon", "<z(x)> - <v(x)>")


def test_infinite_temperature_flags_a_limit_without_the_regularizer():
    result = run_infinite_temperature_check(
        "infinite-temperature", _context(8), limit=logits_matching_loss
    )
    _assert_flagged(result, "|grad L_KD - grad limit| has slope")


def test_hinton_flags_logits_matching_without_normalization():
    result = run_trajectory_check(
        "hinton-zero-mean",
        _context(4),
        reference_loss=logits_matching_loss,
        initialization=default_initialization,
        steps=5,
    )
    _assert_flagged(result, "trajectories has slope")


def test_equal_mean_suffices_flags_logits_matching_without_equal_means():
    result = run_trajectory_check(
        "equal-mean-suffices",
        _context(4),
        reference_loss=logits_matching_loss,
        initialization=default_initialization,
        steps=5,
    )
    _assert_flagged(result, "trajectories has slope")


@pytest.fixture(scope="module")
def terms():
    return expansion_terms()


def test_expansion_flags_a_gradient_term_one_percent_off(terms):
    gradient, loss = terms
    planted = [gradient[0], gradient[1] * sympy.Rational(101, 100), *gradient[2:]]
    result = run_expansion_check("expansion", _context(), gradient_terms=planted, loss_terms=loss)
    _assert_flagged(result)
    # The wrong term breaks both G_1 = dL_1/dz and the slope after two terms; the search
    # reports the first criterion it meets.
    assert (
        "G_1 - dL_1/dz" in result.counterexample
        or "gradient remainder after 2 terms" in result.counterexample
    ), result.counterexample


def test_expansion_flags_a_loss_term_with_a_constant_added(terms):
    gradient, loss = terms
    planted = [loss[0], loss[1] + sympy.Rational(1, 1000), *loss[2:]]
    result = run_expansion_check(
        "expansion", _context(), gradient_terms=gradient, loss_terms=planted
    )
    _assert_flagged(result, "loss remainder after 2 terms")


def test_expansion_flags_a_gradient_term_that_does_not_sum_to_zero(terms):
    gradient, loss = terms
    planted = [gradient[0] + derive.z_i / 10**6, *gradient[1:]]
    result = run_expansion_check("expansion", _context(), gradient_terms=planted, loss_terms=loss)
    _assert_flagged(result, "sum_i G_0,i")


# -- refutations must be able to say "holds" ----------------------------------------------------


def test_zero_mean_refutation_passes_a_shift_invariant_loss():
    _assert_not_flagged(
        run_zero_mean_check("zero-mean-gradient/sigmoid-bce", [KD], _context(64), networks=False)
    )


def test_adaptive_refutation_passes_sgd():
    _assert_not_flagged(
        run_mean_preservation_check("mean-preservation/adam", sgd_optimizers(), _context(8))
    )


def test_nonzero_row_mean_refutation_passes_equal_mean_initialization():
    _assert_not_flagged(
        run_equal_mean_check("equal-mean/nonzero-row-mean", equal_mean_initialization, _context(8))
    )


def test_the_refuted_initialization_is_the_one_without_centred_rows():
    result = run_equal_mean_check("equal-mean", equal_bias_initialization, _context(8))
    _assert_flagged(result, "equal bias initialization")


def test_trajectory_check_with_hinton_normalization_passes_without_equal_means():
    # Zero-mean normalization alone suffices, whatever the initial means (Hinton et al.).
    result = run_trajectory_check(
        "equal-mean-suffices",
        _context(4),
        reference_loss=zero_mean_logits_matching,
        initialization=default_initialization,
        steps=5,
    )
    assert result.verdict == "holds", result


def test_a_measurement_that_resolves_nothing_fails():
    from verify.checks.temperature import convergence_verdict
    from verify.convergence import Convergence

    nan = float("nan")
    unresolved = Convergence(1, nan, nan, nan, 0, 10.0, False)
    passing = Convergence(1, -1.0, 10.0, 1e4, 7, None, True)
    for dtype in (torch.float64, torch.float32):
        assert convergence_verdict([unresolved] * 4, dtype)[0]
        assert not convergence_verdict([passing] * 4, dtype)[0]
    # float64 must resolve half of its fits; float32 reports its floor instead.
    assert convergence_verdict([passing] + [unresolved] * 3, torch.float64)[0]
    assert not convergence_verdict([passing] + [unresolved] * 3, torch.float32)[0]
