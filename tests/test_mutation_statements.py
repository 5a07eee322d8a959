"""The statements' shared helpers (derive/statements/_common.py) against independent
references. Written to kill the mutants that tests/test_statements.py leaves alive
(docs/mutation-testing.md)."""

import sympy

from derive.notation import ClassMean, N, OtherMean, v_i, z_g, z_i
from derive.objectives import OBJECTIVES
from derive.statements._common import gradient_sum, leading, objective_names, terms


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


# -- derive/statements/core.py -----------------------------------------------------------------


def test_the_rmsprop_refutation_is_ten_adam_steps():
    # RMSprop's first step is g / sqrt((1 - 0.99) g**2) = 10 g/|g|: ten times Adam's g/|g|.
    from derive.statements import STATEMENTS

    adam = STATEMENTS["mean-preservation/adam"].prove().residual
    rmsprop = STATEMENTS["mean-preservation/rmsprop"].prove().residual
    assert sympy.simplify(rmsprop - 10 * adam) == 0 and adam != 0


def test_the_nonzero_row_mean_refutation_is_the_mean_row_weight_times_h():
    from derive.notation import w_i
    from derive.statements import STATEMENTS
    from derive.statements.core import hidden

    (residual,) = STATEMENTS["equal-mean/nonzero-row-mean"].prove().residuals.values()
    assert sympy.expand(residual - ClassMean(w_i) * hidden) == 0


def test_mean_preservation_checks_the_first_step_too(monkeypatch):
    import derive.notation
    from derive.statements import STATEMENTS, core

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
