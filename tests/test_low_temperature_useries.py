"""The u-series arithmetic's memory: the exact zero test and the expansions are remembered per
expression, and what is remembered never turns a nonzero into a zero or leaks between calls."""

import sympy

from derive.lowtemp.useries import _is_zero, expand_in_u, is_zero
from derive.notation import epsilon

u = sympy.Symbol("u", positive=True)


def test_the_remembered_zero_test_still_finds_a_zero_beyond_double_precision():
    # e^{-60} epsilon is below the sample's 1e-20 threshold at epsilon = 7/3, so only the exact
    # simplify says it is not 0; asked again, the remembered answer must be the same.
    tiny = sympy.exp(-60) * epsilon
    zero = sympy.log(6) - sympy.log(2) - sympy.log(3)
    before = _is_zero.cache_info().hits
    assert is_zero(tiny) is False
    assert is_zero(tiny) is False
    assert _is_zero.cache_info().hits > before
    # The key is the expression, not its value to some precision: the zero and the zero plus
    # the tiny term are told apart in either order.
    assert is_zero(zero) is True
    assert is_zero(zero + tiny) is False
    assert is_zero(zero) is True
    assert is_zero(zero * epsilon - tiny) is False
    assert is_zero(0) is True and is_zero(sympy.Integer(0)) is True


def _by_sympy(expr, cutoff):
    """Coefficients of u^0..u^(cutoff-1) by sympy.series (log u does not occur here)."""
    expansion = sympy.expand(sympy.series(expr, u, 0, cutoff).removeO())
    return {k: expansion.coeff(u, k) for k in range(cutoff) if expansion.coeff(u, k) != 0}


def test_shared_subexpressions_agree_with_sympy_series_and_do_not_leak():
    normalizer = 1 + u + 2 * u**2
    first = sympy.log(normalizer) / epsilon + 1 / normalizer
    second = epsilon * sympy.log(normalizer) - u / normalizer**2
    for expr in (first, second, first):
        series = expand_in_u(expr, u, unit=1, cutoff=5)
        assert {int(p): c for p, c in series.terms.items()} == {
            k: sympy.expand(c) for k, c in _by_sympy(expr, 5).items()
        }
        # A caller that changes its result changes nothing the next call sees.
        series.terms.clear()
    # The cutoff and the unit are part of what is remembered.
    assert expand_in_u(sympy.log(normalizer), u, unit=1, cutoff=2).known == 2
    assert max(expand_in_u(sympy.log(normalizer), u, unit=1, cutoff=4).terms) == 3
    assert expand_in_u(sympy.log(u), u, unit=3, cutoff=2).terms[0] == -3 * epsilon
    assert expand_in_u(sympy.log(u), u, unit=1, cutoff=2).terms[0] == -epsilon
