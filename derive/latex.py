r"""LaTeX for derived terms, with a pinned term order, and the derivation report.

Terms of a symbolic-N expansion are polynomials in ``z_i, v_i``, ``1/N`` and class moments.
:func:`term_latex` prints them in a fixed order, independent of sympy's internal ordering:

* a common factor :math:`1/N` is pulled out in front;
* the generators are ordered :math:`z_i, v_i`, then moments by decreasing degree
  (:math:`\langle z^a v^b\rangle` before :math:`\langle z^{a-1} v^{b+1}\rangle`);
* terms come in decreasing lexicographic order of their exponents in that generator order.

Examples
========

>>> from derive.notation import ClassMean, N, z_i, v_i
>>> term_latex((z_i - v_i - ClassMean(z_i) + ClassMean(v_i)) / N)
'\\frac{1}{N} \\left(z_{i} - v_{i} - \\left\\langle z \\right\\rangle + \\left\\langle v \\right\\rangle\\right)'
"""

import sympy
from sympy import Poly

from .notation import PER_CLASS, N, ClassMean

__all__ = ["term_latex", "term_latex_parts", "join_terms", "expression_latex"]


def _moment_key(mean):
    powers = mean.args[0].as_powers_dict()
    degrees = [int(powers.get(symbol, 0)) for symbol in PER_CLASS]
    simple = mean.args[0] == sympy.Mul(*[s**d for s, d in zip(PER_CLASS, degrees)])
    return (0 if simple else 1, -sum(degrees), [-d for d in degrees], sympy.default_sort_key(mean))


def _generators(expr):
    means = sorted(expr.atoms(ClassMean), key=_moment_key)
    return [s for s in PER_CLASS if expr.has(s) and s not in means] + means


def _coefficient_latex(coefficient, monomial_is_one):
    """Sign and magnitude of a rational coefficient: ('-', '\\frac{1}{2} ')."""
    sign = "-" if coefficient < 0 else "+"
    magnitude = abs(coefficient)
    p, q = magnitude.p, magnitude.q
    if q == 1:
        text = "" if p == 1 and not monomial_is_one else f"{p}"
    else:
        text = f"\\frac{{{p}}}{{{q}}}"
    return sign, text


def term_latex_parts(expr):
    r"""``(prefix, [signed terms])`` of a polynomial term, in the pinned order.

    ``prefix`` is ``'\frac{1}{N}'`` when a common :math:`1/N` was pulled out, else ``''``.
    Each term is a string starting with ``'+ '`` or ``'- '``.
    """
    expr = sympy.expand(sympy.sympify(expr))
    prefix = ""
    scaled = sympy.expand(expr * N)
    if expr != 0 and not scaled.has(N):
        expr, prefix = scaled, r"\frac{1}{N}"
    if expr.has(N):
        raise ValueError(f"term_latex expects a polynomial times a power of 1/N, got {expr}")
    generators = _generators(expr)
    if not generators:
        value = sympy.Rational(expr)
        sign, text = _coefficient_latex(value, True)
        return prefix, ([f"{sign} {text}"] if value else [])
    parts = []
    for exponents, coefficient in Poly(expr, *generators).terms():
        factors = []
        for generator, power in zip(generators, exponents):
            if power:
                base = sympy.latex(generator)
                factors.append(base if power == 1 else f"{base}^{{{power}}}")
        sign, text = _coefficient_latex(sympy.Rational(coefficient), not factors)
        parts.append(f"{sign} " + " ".join(filter(None, [text, *factors])))
    return prefix, parts


def join_terms(parts):
    """Join signed terms (``'+ a'``, ``'- b'``) into ``'a - b'``."""
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def term_latex(expr):
    """LaTeX of one symbolic-N term, with the pinned term order (see module docstring)."""
    prefix, parts = term_latex_parts(expr)
    if not parts:
        return "0"
    body = join_terms(parts)
    if not prefix:
        return body
    if len(parts) == 1 and not body.startswith("-"):
        return f"{prefix} {body}"
    return f"{prefix} \\left({body}\\right)"


def expression_latex(expr):
    """LaTeX of any other expression (concrete N, statements): sympy's printer, lex order."""
    return sympy.latex(expr, order="lex")
