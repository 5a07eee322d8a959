"""The statements' shared helpers (derive/statements/_common.py) against independent
references. Written to kill the mutants that tests/test_statements.py leaves alive
(docs/mutation-testing.md)."""

import sympy

from derive.notation import N, ClassMean, OtherMean, v_i, z_g, z_i
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
    assert gradient_sum({"g": z_g, "i": OtherMean(z_i) - z_i}) == \
        z_g + (N - 1) * OtherMean(OtherMean(z_i) - z_i)
    # ... else G_g + N <G> - G at i = g.
    total = gradient_sum({"g": 2 * z_g, "i": z_i})
    assert sympy.expand(total - (2 * z_g + N * ClassMean(z_i) - z_g)) == 0
