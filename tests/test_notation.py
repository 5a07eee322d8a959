"""Class means: linearity, the derivative rule, and the concrete form, checked against
explicit N-class arithmetic."""

import random

import pytest
import sympy

from derive import ClassMean, N, concrete, epsilon, logit_symbols, moment, parse, v_i, z_i
from derive.normal_form import canonical
from derive.notation import class_sum, is_class_constant


def test_means_are_linear_and_pull_out_class_constants():
    c = sympy.Symbol("c")
    assert ClassMean(2 * z_i + c * v_i + 3) == 2 * ClassMean(z_i) + c * ClassMean(v_i) + 3
    assert ClassMean(ClassMean(z_i) * v_i) == ClassMean(z_i) * ClassMean(v_i)
    assert is_class_constant(ClassMean(z_i) ** 2) and not is_class_constant(z_i * ClassMean(v_i))


@pytest.mark.parametrize(
    "expr",
    [
        ClassMean(z_i**3 * v_i),
        sympy.log(ClassMean(sympy.exp(epsilon * z_i))),
        ClassMean(
            sympy.exp(epsilon * z_i) * (z_i - sympy.log(ClassMean(sympy.exp(epsilon * z_i))))
        ),
        ClassMean((z_i - ClassMean(z_i)) ** 2) * z_i,
    ],
)
def test_derivative_rule_agrees_with_explicit_classes(expr):
    classes = 3
    zs, vs = logit_symbols(classes)
    rng = random.Random(1)
    point = {s: sympy.Rational(rng.randint(-9, 9), rng.randint(1, 5)) for s in (*zs, *vs)}
    point[epsilon] = sympy.Rational(1, 3)
    for component in range(1, classes + 1):
        symbolic = concrete(expr.diff(z_i), classes=classes, component=component)
        explicit = concrete(expr, classes=classes, component=component).diff(zs[component - 1])
        assert sympy.N((symbolic - explicit).subs(point), 30) == pytest.approx(0, abs=1e-25)


def test_concrete_writes_means_as_explicit_sums():
    zs, vs = logit_symbols(2)
    assert (
        sympy.expand(
            concrete(moment(1, 1) + z_i / N, classes=2, component=2)
            - ((zs[0] * vs[0] + zs[1] * vs[1]) / 2 + zs[1] / 2)
        )
        == 0
    )


def test_class_sum_and_canonical_reduce_a_softmax_sum_to_one():
    softmax = sympy.exp(epsilon * z_i) / (N * ClassMean(sympy.exp(epsilon * z_i)))
    assert canonical(class_sum(softmax)) == 1


def test_parse_round_trips_the_text_notation():
    expr = moment(2, 1) / N - z_i * ClassMean(v_i)
    assert parse(str(expr)) == expr


def test_latex_of_means_drops_the_class_index_and_prints_z_before_v():
    assert sympy.latex(moment(2, 1)) == r"\left\langle z^{2} v \right\rangle"
    assert sympy.latex(moment(1, 0) ** 2) == r"\left\langle z \right\rangle^{2}"
