"""Every statement is a test: its symbolic proof must come out as the registry expects,
and a planted violation must make the proof fail; refutations have their exact values, and the
statements' shared helpers (derive/statements/_common.py) are checked against the registry and
hand-derived terms."""

import proofs_once
import pytest
import sympy

import derive
from derive import STATEMENTS, ClassMean, N, v_i, z_i
from derive.notation import OtherMean, f_derivative, w_i, z_g
from derive.objectives import OBJECTIVES, half_variance
from derive.statements import core, families, target_aware
from derive.statements._common import gradient_sum, leading, objective_names, terms

CORE_IDS = [
    "zero-mean-gradient",
    "mean-preservation",
    "equal-mean",
    "infinite-temperature",
    "hinton-zero-mean",
    "equal-mean-suffices",
    "expansion",
]
FAMILY_IDS = [
    "f-divergence-limit",
    "f-divergence-first-correction",
    "jsd-limit",
    "skew-limit",
    "two-temperature-limit",
    "hot-teacher-label-smoothing",
]
TARGET_IDS = [
    "dkd-identity",
    "dkd-limit",
    "dkd-binary",
    "standardized-limit",
    "scale-invariance",
    "dist-limit",
    "standardized-equals-dist",
]


@pytest.mark.parametrize("statement_id", list(STATEMENTS))
def test_each_proof_comes_out_as_expected(statement_id):
    statement = STATEMENTS[statement_id]
    result = proofs_once.proof(statement_id, order=4)  # statement.prove(order=4), once
    assert result.as_expected, str(result)
    if statement.expected == "holds":
        assert all(residual == 0 for residual in result.residuals.values())
    else:
        assert result.residual != 0


def test_registry_holds_the_theory_ids_in_order_and_refutations_name_their_parent():
    theory = [i for i in STATEMENTS if "/" not in i]
    assert theory[: len(CORE_IDS)] == CORE_IDS
    assert theory[len(CORE_IDS) : len(CORE_IDS) + len(FAMILY_IDS)] == FAMILY_IDS
    start = len(CORE_IDS) + len(FAMILY_IDS)
    assert theory[start : start + len(TARGET_IDS)] == TARGET_IDS
    for statement_id, statement in STATEMENTS.items():
        assert (statement.expected == "refuted") == ("/" in statement_id)
        assert statement.numeric_check == f"verify.CHECKS[{statement_id!r}]"
        if "/" in statement_id:
            assert statement_id.split("/")[0] in theory


def test_zero_mean_gradient_holds_at_every_order_up_to_eight():
    result = STATEMENTS["zero-mean-gradient"].prove(order=8)
    assert sum(name.startswith("sum_i G_") for name in result.residuals) == 8
    assert result.verdict == "holds"


def _variants():
    return [
        (definition, definition.variant_name(values))
        for definition in derive.OBJECTIVES.values()
        for values in definition.variants()
    ]


def test_zero_mean_gradient_covers_every_objective():
    names = set(STATEMENTS["zero-mean-gradient"].prove(order=1).residuals)
    for definition, name in _variants():
        covered = f"sum_i dL/dz_i, {name}" in names and f"L(z + c) - L(z), {name}" in names
        assert covered == definition.shift_invariant, name  # logits matching is refuted apart
    assert "sum_i dL/dz_i, standardized-kl (std=unbiased)" in names
    assert "sum_i dL/dz_i, centred-logits-matching" in names


def test_expansion_covers_every_objective_and_component():
    names = set(STATEMENTS["expansion"].prove(order=2).residuals)
    for definition, name in _variants():
        assert (f"sum_i G_1,i, {name}" in names) == definition.shift_invariant
        assert f"G_1,i - dL_1/dzi, {name}" in names
        assert (f"G_1,g - dL_1/dzg, {name}" in names) == definition.labelled


def test_adaptive_refutations_give_the_exact_mean_change():
    # One Adam step at z = 0, v = (1, 0, 0), T = 1: signs of g are (-, +, +), so the mean row
    # weight moves by -eta * (1/3) * (-1 + 1 + 1) = -eta/3.
    assert STATEMENTS["mean-preservation/adam"].prove().residual == -core.learning_rate / 3


def test_the_rmsprop_refutation_is_ten_adam_steps():
    # RMSprop's first step is g / sqrt((1 - 0.99) g**2) = 10 g/|g|: ten times Adam's g/|g|.
    adam = STATEMENTS["mean-preservation/adam"].prove().residual
    rmsprop = STATEMENTS["mean-preservation/rmsprop"].prove().residual
    assert sympy.simplify(rmsprop - 10 * adam) == 0 and adam != 0


def test_the_nonzero_row_mean_refutation_is_the_mean_row_weight_times_h():
    (residual,) = STATEMENTS["equal-mean/nonzero-row-mean"].prove().residuals.values()
    assert sympy.expand(residual - ClassMean(w_i) * core.hidden) == 0


def test_momentum_counterexample_has_its_numbers():
    # SGD(lr=0.1, momentum=0.9, weight_decay=0.1): wbar_2 = 0.9711 wbar_0, not 0.9801 wbar_0.
    after_two = core.means_after(2)[2].subs(core.MOMENTUM_DECAY_POINT)
    assert after_two == sympy.Rational(9711, 10000)
    result = STATEMENTS["mean-preservation/momentum-decay-factor"].prove()
    residual = result.residuals["wbar_2/wbar_0 - (1 - eta lambda)^2"]
    undamped = sympy.expand(residual.subs(core.dampening, 0))
    assert sympy.expand(undamped + core.learning_rate * core.weight_decay * core.momentum) == 0
    assert any("0.9711 - 0.9801" in name for name in result.residuals)


def test_mean_recursion_without_momentum_is_the_power_law():
    eta, lam = core.learning_rate, core.weight_decay
    # Without momentum PyTorch keeps no buffer, so dampening does not apply.
    trajectory = [w.subs({core.momentum: 0, core.dampening: 0}) for w in core.means_after(3)]
    assert all(sympy.expand(w - (1 - eta * lam) ** t) == 0 for t, w in enumerate(trajectory))


def test_f_divergence_coefficients_of_the_members():
    beta = derive.OBJECTIVES["jsd"].parameters[0].symbol
    assert families.f_divergence_coefficients("kl") == (1, -1)
    assert families.f_divergence_coefficients("reverse-kl") == (1, -2)
    second, third = families.f_divergence_coefficients("jsd")
    assert sympy.factor(third / second) == -(1 + beta)


# -- negative controls: planted violations make the proofs fail ----------------------------


def test_infinite_temperature_proof_fails_without_the_regularizer(monkeypatch):
    real = core.leading_pieces
    monkeypatch.setattr(core, "leading_pieces", lambda q: {**real(q), "regularizer": 0})
    result = STATEMENTS["infinite-temperature"].prove(order=1)
    assert result.verdict == "refuted"
    residual = result.residuals["L_0 - (L_LM + regularizer)"]
    assert sympy.expand(residual + (ClassMean(z_i) - ClassMean(v_i)) ** 2 / 2) == 0


def test_hinton_proof_fails_when_only_one_mean_is_zero():
    proof = core._with_means({ClassMean(z_i): 0})
    result = derive.Statement("planted", "planted", "", "holds", proof).prove(order=1)
    assert result.verdict == "refuted"


def test_zero_mean_proof_catches_a_gradient_with_a_constant_added(monkeypatch):
    real_terms = core.terms

    def planted(quantity, order, objective="kl", **parameters):
        terms = real_terms(quantity, order, objective, **parameters)
        if quantity == "gradient" and objective == "kl":
            return terms[:-1] + [terms[-1] + ClassMean(z_i) / N]
        return terms

    monkeypatch.setattr(core, "terms", planted)
    result = STATEMENTS["zero-mean-gradient"].prove(order=2)
    assert result.verdict == "refuted"
    assert result.residuals["sum_i G_1,i"] == ClassMean(z_i)


def test_expansion_proof_catches_an_inconsistent_loss_term(monkeypatch):
    real_terms = core.terms

    def planted(quantity, order, objective="kl", **parameters):
        terms = real_terms(quantity, order, objective, **parameters)
        if quantity == "loss" and objective == "jsd":
            return [terms[0] + ClassMean(z_i**2 * v_i)] + terms[1:]
        return terms

    monkeypatch.setattr(core, "terms", planted)
    result = STATEMENTS["expansion"].prove(order=2)
    assert result.verdict == "refuted"
    assert {k for k, r in result.residuals.items() if r != 0} == {"G_0,i - dL_0/dzi, jsd"}


def test_mean_preservation_proof_catches_a_per_class_rescaled_step(monkeypatch):
    real_step = core._sgd_step

    # A per-class rescale: step_i multiplied by (1 + v_i), which has nonzero class mean weight.
    def rescaled(*, nesterov, first):
        weight, buffer = real_step(nesterov=nesterov, first=first)
        step = derive.notation.w_i - weight
        return derive.notation.w_i - step * (1 + v_i), buffer

    monkeypatch.setattr(core, "_sgd_step", rescaled)
    assert STATEMENTS["mean-preservation"].prove().verdict == "refuted"


def test_mean_preservation_proof_catches_a_first_step_without_the_buffer_start(monkeypatch):
    real = core.scalar_recursion

    def planted(weight_mean, buffer_mean, *, nesterov, first):
        # The claim "(1 - eta lambda) per step with momentum": ignore the buffer.
        return real(weight_mean, buffer_mean, nesterov=nesterov, first=True)

    monkeypatch.setattr(core, "scalar_recursion", planted)
    assert STATEMENTS["mean-preservation"].prove().verdict == "refuted"


def test_mean_preservation_proof_catches_a_wrong_first_step_alone(monkeypatch):
    real_step = core._sgd_step

    def wrong_first_step(*, nesterov, first):
        # Only the first step is rescaled per class (by 1 + v_i): a wrong buffer start.
        weight, buffer = real_step(nesterov=nesterov, first=first)
        if not first:
            return weight, buffer
        step = derive.notation.w_i - weight
        return derive.notation.w_i - step * (1 + v_i), buffer

    monkeypatch.setattr(core, "_sgd_step", wrong_first_step)
    assert STATEMENTS["mean-preservation"].prove().verdict == "refuted"


def test_shift_invariance_proof_catches_a_loss_with_a_logit_penalty(monkeypatch):
    real = core._shift_invariant_losses
    monkeypatch.setattr(
        core,
        "_shift_invariant_losses",
        lambda: {**real(), "kd + mean logit": derive.OBJECTIVES["kl"].loss() + ClassMean(z_i)},
    )
    result = STATEMENTS["zero-mean-gradient"].prove(order=1)
    assert result.residuals["sum_i dL/dz_i, kd + mean logit"] == 1


def test_f_divergence_limit_catches_a_wrong_generator_derivative(monkeypatch):
    real = families._derivatives

    def planted(generator, order):
        values = real(generator, order)
        if generator == families.KL_GENERATOR:
            values[f_derivative(3)] += sympy.Rational(1, 100)
        return values

    monkeypatch.setattr(families, "_derivatives", planted)
    result = STATEMENTS["f-divergence-limit"].prove(order=2)
    wrong = {k for k, r in result.residuals.items() if r != 0}
    assert result.verdict == "refuted" and wrong == {
        "L_1: f = t*log(t) vs kl",
        "G_1: f = t*log(t) vs kl",
    }


def test_first_correction_catches_a_wrong_closed_form(monkeypatch):
    real = families.first_correction
    monkeypatch.setattr(
        families,
        "first_correction",
        lambda second, third: real(second, third * sympy.Rational(101, 100)),
    )
    assert STATEMENTS["f-divergence-first-correction"].prove(order=2).verdict == "refuted"


def test_jsd_limit_catches_a_wrong_weight(monkeypatch):
    monkeypatch.setattr(
        families, "half_variance", lambda x: half_variance(x) + ClassMean(x) ** 2 / 10**6
    )
    assert STATEMENTS["jsd-limit"].prove(order=1).verdict == "refuted"


def test_hot_teacher_catches_a_wrong_uniform_cross_entropy(monkeypatch):
    real = families.student_log_softmax
    monkeypatch.setattr(families, "student_log_softmax", lambda t: real(t) + z_i / 10**6)
    assert STATEMENTS["hot-teacher-label-smoothing"].prove(order=2).verdict == "refuted"


def test_dkd_limit_catches_a_wrong_denominator(monkeypatch):
    real = target_aware.leading

    def planted(quantity, objective="kl", **parameters):
        value = real(quantity, objective, **parameters)
        return value * (N - 1) / N if objective == "dkd-tckd" else value

    monkeypatch.setattr(target_aware, "leading", planted)
    result = STATEMENTS["dkd-limit"].prove(order=1)
    assert [k for k, r in result.residuals.items() if r != 0] == [
        "L_0(T^2 TCKD) - (d_g - <d>)^2/(2(N - 1))"
    ]


def test_dkd_identity_catches_a_planted_weight(monkeypatch):
    real = target_aware.label_probability
    monkeypatch.setattr(target_aware, "label_probability", lambda: real() * 2)
    assert STATEMENTS["dkd-identity"].prove().verdict == "refuted"


def test_scale_invariance_catches_a_gradient_without_the_projection(monkeypatch):
    import derive.objectives._registry as registry

    def unprojected(loss):
        return loss.diff(derive.zh_i) / derive.sigma_z

    monkeypatch.setattr(registry, "standardized_chain_rule", unprojected)
    registry._gradient.cache_clear()
    try:
        assert STATEMENTS["scale-invariance"].prove(order=1).verdict == "refuted"
    finally:
        registry._gradient.cache_clear()


def test_prove_rejects_a_bad_order():
    with pytest.raises(derive.DeriveError, match="order must be an integer >= 1, got -1"):
        STATEMENTS["expansion"].prove(order=-1)


@pytest.mark.parametrize("name", ["js", "jsd"])
def test_expansion_checks_a_closed_form_gradient_against_the_loss(monkeypatch, name):
    """js and jsd expand a closed-form gradient (faster than differentiating the loss): the
    [expansion] proof holds only because that gradient is the loss's, and a closed form that is
    off by a factor (1 + 1/100) at the leading order is caught."""
    import dataclasses

    import derive.expansion as expansion
    import derive.objectives._registry as registry

    real = registry.OBJECTIVES[name]
    assert real.gradient_build is not None
    wrong = dataclasses.replace(
        real,
        gradient_build=lambda **values: real.gradient_build(**values) * sympy.Rational(101, 100),
    )
    monkeypatch.setitem(registry.OBJECTIVES, name, wrong)
    for cache in (registry._gradient, expansion._symbolic_terms):
        cache.cache_clear()
    try:
        result = STATEMENTS["expansion"].prove(order=2)
        assert result.verdict == "refuted"
        assert any(name in key and r != 0 for key, r in result.residuals.items())
    finally:
        for cache in (registry._gradient, expansion._symbolic_terms):
            cache.cache_clear()


# -- the statements' shared helpers (derive/statements/_common.py) -----------------------------


def test_objective_names_are_the_registry_in_order():
    names = objective_names()
    assert isinstance(names, list) and names == list(OBJECTIVES)
    assert names[0] == "kl" and len(set(names)) == len(names)


def test_leading_is_the_first_term():
    assert sympy.expand(leading("gradient") - terms("gradient", 2)[0]) == 0
    # KD's leading gradient term: (z_i - v_i - <z> + <v>)/N.
    expected = (z_i - v_i - ClassMean(z_i) + ClassMean(v_i)) / N
    assert sympy.expand(leading("gradient") - expected) == 0


def test_gradient_sums_over_every_class():
    assert sympy.expand(gradient_sum(z_i - ClassMean(z_i))) == 0
    # With a label: G_g + (N - 1) <G>_{not g} when the other classes are averaged ...
    assert gradient_sum({"g": z_g, "i": OtherMean(z_i) - z_i}) == z_g + (N - 1) * OtherMean(
        OtherMean(z_i) - z_i
    )
    # ... else G_g + N <G> - G at i = g.
    total = gradient_sum({"g": 2 * z_g, "i": z_i})
    assert sympy.expand(total - (2 * z_g + N * ClassMean(z_i) - z_g)) == 0
