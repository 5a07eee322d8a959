"""derive's symbolic-N terms as torch functions, against an independent path: sympy's own
lambdify of the same terms written for explicit classes (derive.expand(classes=n))."""

from functools import lru_cache

import numpy
import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st

import derive
from verify.strategies import logit_vectors
from verify.symbolic import SymbolicFunction, evaluate_mpmath

ORDER = 4


@lru_cache(maxsize=None)
def _symbolic(quantity):
    return [SymbolicFunction(term.expr) for term in derive.expand(quantity, order=ORDER).terms]


@lru_cache(maxsize=None)
def _concrete(quantity, classes):
    student, teacher = derive.logit_symbols(classes)
    functions = []
    for term in derive.expand(quantity, order=ORDER, classes=classes).terms:
        expr = list(term.expr) if isinstance(term.expr, tuple) else term.expr
        functions.append(sympy.lambdify([student, teacher], expr, "numpy"))
    return functions


@st.composite
def _logit_pairs(draw):
    classes = draw(st.integers(2, 5))
    vectors = logit_vectors(min_size=classes, max_size=classes, min_value=-3, max_value=3)
    return draw(vectors), draw(vectors)


@pytest.mark.parametrize("quantity", ["gradient", "loss"])
@given(pair=_logit_pairs())
def test_symbolic_terms_match_sympy_on_explicit_classes(quantity, pair):
    student, teacher = pair
    z = torch.tensor([student], dtype=torch.float64)
    v = torch.tensor([teacher], dtype=torch.float64)
    for k, (function, reference) in enumerate(
        zip(_symbolic(quantity), _concrete(quantity, len(student)))
    ):
        value = function(z, v)[0].expand(len(student) if quantity == "gradient" else 1)
        expected = numpy.atleast_1d(numpy.asarray(reference(student, teacher), dtype=float))
        scale = float(function.magnitude(z, v).max()) + 1e-300
        assert numpy.allclose(value.numpy(), expected, rtol=0, atol=1e-13 * scale), (k, quantity)


@given(pair=_logit_pairs())
def test_magnitude_bounds_the_value(pair):
    z = torch.tensor([pair[0]], dtype=torch.float64)
    v = torch.tensor([pair[1]], dtype=torch.float64)
    for function in _symbolic("gradient") + _symbolic("loss"):
        assert bool((function(z, v).abs() <= function.magnitude(z, v) * (1 + 1e-12)).all())


def test_leading_gradient_term_is_theorys_logits_matching_plus_regularizer():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(5, 7, generator=generator, dtype=torch.float64)
    v = torch.randn(5, 7, generator=generator, dtype=torch.float64)
    expected = ((z - v) - (z.mean(-1, keepdim=True) - v.mean(-1, keepdim=True))) / 7
    assert torch.allclose(_symbolic("gradient")[0](z, v), expected, rtol=0, atol=1e-15)


def test_mpmath_evaluation_agrees_with_torch():
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    v = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    for term in derive.expand("gradient", order=ORDER).terms:
        exact = evaluate_mpmath(term.expr, z.tolist(), v.tolist()).astype(float)
        value = SymbolicFunction(term.expr)(z, v).expand(3, 4).numpy()
        assert numpy.allclose(value, exact, rtol=1e-12, atol=1e-15)


def test_strings_in_derive_notation_parse():
    function = SymbolicFunction("mean(z_i**2)/2 - z_i/N")
    z = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    assert torch.equal(function(z, z), torch.tensor([[2.0, 1.0]], dtype=torch.float64))


def test_temperature_symbols_take_a_temperature():
    function = SymbolicFunction(derive.z_i * derive.epsilon + derive.T)
    z = torch.tensor([[2.0, 4.0]], dtype=torch.float64)
    assert torch.equal(function(z, z, 2.0), torch.tensor([[3.0, 4.0]], dtype=torch.float64))


def test_a_constant_term_broadcasts_to_the_batch():
    value = SymbolicFunction(sympy.Rational(1, 2))(torch.zeros(3, 2), torch.zeros(3, 2))
    assert value.shape == (3, 1) and bool((value == 0.5).all())
