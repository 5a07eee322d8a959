"""The engine's zero test is the kernel every proof rests on: it must never invent a zero.

Random expressions (hypothesis) with exponents at and beyond every internal limit go through
the engine's normal form (:class:`derive.series.Algebra`), :func:`derive.canonical`, the printed
:class:`derive.polynomial.Polynomial` and the tracer's grouping of monomials, and each is
compared against ``sympy.expand`` of the same expression: zero exactly when sympy's is zero,
equal to it otherwise. Where the engine refuses (an exponent past
:data:`derive.packing.MAX_EXPONENT`), the refusal must be a :class:`derive.DeriveError` naming the
limit, and only for expressions whose exponents can reach it. One test per limit shows it raises
just above the limit and computes just at it.
"""

from pathlib import Path

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import derive
from derive import DeriveError, N, T, epsilon, parse
from derive.normal_form import canonical
from derive.notation import ClassMean, v_g, v_i, z_g, z_i
from derive.packing import MAX_EXPONENT, exponent, exponents, pack, slot_mask, slots
from derive.parsing import PARSE_MAX_BITS
from derive.polynomial import Polynomial
from derive.series import MAX_PRECISION, Algebra, power_series
from derive.tracing.relations import Relation, _coefficient_mask, _grouped

_LIMIT = MAX_EXPONENT
#: Exponents at and around every boundary of the packed layout: the guard bit (2**15), the full
#: slot (2**16) and the next slot (2**17), plus the small ones proofs use.
_EDGES = [
    _LIMIT - 1,
    _LIMIT,
    _LIMIT + 1,
    2**16 - 1,
    2**16,
    2**16 + 1,
    2**17 + 3,
    _LIMIT // 2,
    _LIMIT // 2 + 1,
]
_EXPONENTS = st.one_of(st.integers(-3, 4), st.sampled_from(_EDGES + [-e for e in _EDGES]))
_GENERATORS = [z_i, v_i, z_g, v_g, N, ClassMean(z_i), ClassMean(v_i * z_i)]


@st.composite
def _powers(draw):
    generator = draw(st.sampled_from(_GENERATORS + ["moment"]))
    if generator == "moment":  # a moment of a high power: the mean's argument grows too
        generator = ClassMean(z_i ** draw(st.sampled_from([1, 2] + _EDGES)))
    return generator ** draw(_EXPONENTS)


def _extend(children):
    small = st.integers(0, 3)
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: sympy.Add(*xs)),
        st.tuples(children, children).map(lambda xy: xy[0] * xy[1]),
        st.tuples(children, children).map(lambda xy: xy[0] - xy[1]),
        st.tuples(children, small).map(lambda xk: xk[0] ** xk[1]),
    )


_LEAVES = st.one_of(_powers(), st.integers(-3, 3).map(sympy.Integer))
expressions = st.recursive(_LEAVES, _extend, max_leaves=6)


def _reaches_limit(expr):
    """Whether some generator's exponent may pass the limit anywhere in the engine's work on
    ``expr``: a bound computed on the tree (products add exponents, powers multiply them)."""

    def bound(node):
        if node.is_Number:
            return {}
        if node.is_Add:
            out = {}
            for part in map(bound, node.args):
                for key, value in part.items():
                    out[key] = max(out.get(key, 0), value)
            return out
        if node.is_Mul:
            out = {}
            for part in map(bound, node.args):
                for key, value in part.items():
                    out[key] = out.get(key, 0) + value
            return out
        if node.is_Pow and node.args[1].is_Integer:
            inner = bound(node.args[0])
            return {key: value * abs(int(node.args[1])) for key, value in inner.items()}
        inner = bound(node.args[0]) if isinstance(node, ClassMean) else {}
        return {node: max([1, *inner.values()])}

    return max(bound(expr).values(), default=0) > _LIMIT


def _same(engine_expr, expr):
    """Both zero, or both nonzero and equal, as ``sympy.expand`` sees them."""
    expected = sympy.expand(expr)
    if expected == 0:
        return engine_expr == 0
    return engine_expr != 0 and sympy.expand(engine_expr - expected) == 0


@given(expressions)
def test_the_engine_computes_exactly_or_names_its_limit(expr):
    algebra = Algebra()
    try:
        poly = algebra.element(expr)
    except DeriveError as error:
        assert "MAX_EXPONENT" in str(error) and "32767" in str(error)
        assert _reaches_limit(expr), f"refused {expr} whose exponents stay within the limit"
        return
    assert _same(algebra.to_expr(poly), expr), expr


@given(expressions)
def test_canonical_is_zero_exactly_when_sympy_says_so(expr):
    result = canonical(expr)
    assert (result == 0) == (sympy.expand(expr) == 0), expr


@given(expressions)
def test_polynomial_and_relation_grouping_rebuild_the_expression(expr):
    algebra = Algebra()
    try:
        terms = algebra.element(expr)
    except DeriveError:
        return
    polynomial = Polynomial(algebra, terms)
    assert _same(polynomial.expr, expr)
    if polynomial:
        text = polynomial.text()
        assert text
        powers = polynomial.expr.atoms(sympy.Pow)
        if all(abs(power.exp) <= 10_000 for power in powers):  # what parse reads
            assert _same(parse(text), expr), text
    # The tracer splits monomials into (generators outside N) x (coefficient in N): the parts
    # must multiply back to the whole.
    mask = _coefficient_mask(algebra, {N})
    grouped = _grouped(terms, algebra, mask)
    rebuilt = sympy.Add(*[algebra.to_expr({key: 1}) * value for key, value in grouped.items()])
    assert _same(rebuilt, expr)


def test_the_reported_wrap_is_gone():
    assert canonical(parse("(z_i**8192)**8 - v_i")) == z_i**65536 - v_i
    for a, b in [(z_i, v_i), (z_g, N), (ClassMean(z_i), z_i), (N, z_g)]:
        assert canonical(a**65536 - b) != 0
        with pytest.raises(DeriveError, match="MAX_EXPONENT"):
            Algebra().element(a**65536 - b)


# -- one test per limit: computes at it, raises just above it ---------------------------------


def test_packing_limit():
    assert exponent(pack(3, _LIMIT), 3) == _LIMIT
    assert exponents(pack(0, 1) + pack(2, _LIMIT)) == {0: 1, 2: _LIMIT}
    assert slots(pack(1, 2) | pack(4, 1)) == [1, 4]
    assert pack(2, 7) & slot_mask(2) == pack(2, 7) and pack(2, 7) & slot_mask(1) == 0
    for bad in (_LIMIT + 1, -1):
        with pytest.raises(DeriveError, match="MAX_EXPONENT"):
            pack(0, bad)


def _three_halves(x, e):
    """``x**e`` as ``(x**(2k))**(3/2) * x**r``, unevaluated, so that the engine takes the root."""
    k = e // 3
    return sympy.Mul(
        sympy.Pow(x ** (2 * k), sympy.Rational(3, 2), evaluate=False), x ** (e - 3 * k)
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda e: z_i**e, id="power"),
        pytest.param(lambda e: N ** (-e), id="reciprocal"),
        pytest.param(lambda e: ClassMean(z_i**e), id="mean"),
        pytest.param(lambda e: (z_i ** (e - 5) + 1) * (z_i**5 + v_i), id="product"),
        pytest.param(lambda e: _three_halves(z_g, e), id="root"),
        pytest.param(lambda e: (N - 1) ** (-e), id="partial-fraction"),
        pytest.param(lambda e: (N * z_g) ** (-e) + z_g, id="inverse-of-product"),
    ],
)
def test_every_exponent_path_computes_at_the_limit_and_raises_past_it(make):
    at_limit = Algebra()
    assert at_limit.element(make(_LIMIT))  # computes, nonzero
    with pytest.raises(DeriveError, match="MAX_EXPONENT"):
        Algebra().element(make(_LIMIT + 1))


def test_a_power_of_a_sum_past_the_limit_raises_before_the_work():
    for base in (z_i + v_i, N - 1, 1 / N + z_g):
        with pytest.raises(DeriveError, match="MAX_EXPONENT"):
            Algebra().element(sympy.Pow(base, _LIMIT + 1, evaluate=False))
    assert Algebra().element(sympy.Pow(sympy.Integer(3), _LIMIT + 1, evaluate=False))


def test_substitution_raises_past_the_limit():
    algebra = Algebra()
    poly = algebra.element(z_g**_LIMIT)
    assert algebra.substitute(poly, lambda x: None) == poly
    algebra.substitute(poly, lambda x: v_g if x == z_g else None)  # same degree: fine
    with pytest.raises(DeriveError, match="MAX_EXPONENT"):
        algebra.substitute(poly, lambda x: v_g**2 if x == z_g else None)


def test_series_precision_limit():
    # (T + 1)**n has n + 1 terms: past MAX_PRECISION of them the engine refuses to start.
    n = 100
    assert power_series((T + 1) ** n * epsilon**n, order=2) == [1, n]
    with pytest.raises(DeriveError, match="MAX_PRECISION"):
        power_series((T + 1) ** MAX_PRECISION * epsilon**MAX_PRECISION, order=1)
    with pytest.raises(DeriveError, match="MAX_PRECISION"):
        power_series(epsilon**MAX_PRECISION / (epsilon + epsilon**2) ** MAX_PRECISION, order=1)


def test_parse_size_limit():
    # The size counted is bits of the base times the exponent: 512 has 10 bits, 1024 has 11.
    assert PARSE_MAX_BITS == 100_000
    assert parse("512**10000") == sympy.Integer(2) ** 90_000
    assert parse("(1/512)**10000") == sympy.Integer(2) ** -90_000
    with pytest.raises(DeriveError, match="PARSE_MAX_BITS"):
        parse("1024**10000")
    with pytest.raises(DeriveError, match="PARSE_MAX_BITS"):
        parse("(2**10000)**10000")
    # A power of a symbol stays exact at any size: the engine refuses it, canonical does not.
    assert canonical(parse("(z_i**10000)**10000 - v_i")) == z_i**100_000_000 - v_i


@pytest.mark.parametrize("power", [-70, -64, -2, 0, 3, 100])
def test_relation_temperature_power_is_exact_at_any_size(power):
    relation = Relation("kl", 2 / N**2 * T**power)
    assert relation.temperature_power == power
    assert relation.coefficient == 2 / N**2


def test_canonical_keeps_a_power_at_the_limit():
    assert derive.canonical(z_i**_LIMIT - v_i) == z_i**_LIMIT - v_i


def test_the_readme_states_the_engine_limits():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"at most {MAX_EXPONENT} (`derive.packing.MAX_EXPONENT`" in readme
    assert f"at most {MAX_PRECISION} terms of one\nseries (`derive.series.MAX_PRECISION`)" in readme
    assert f"at most {PARSE_MAX_BITS}\nbits (`derive.parsing.PARSE_MAX_BITS`)" in readme
