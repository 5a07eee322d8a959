r"""A derived term as the engine holds it: a Laurent polynomial in generators, printed directly.

An expansion term is a polynomial in per-class symbols (``z_i, v_i``), the label's logits,
class means, ``1/N`` and parameters. :class:`Polynomial` keeps it in the engine's packed form
(:class:`derive.series.Algebra`) and prints it as text (``mean(...)``, parseable by
:func:`derive.parse`), readable text (``⟨...⟩``), pinned-order LaTeX, or written out for a
concrete number of classes, without building a sympy expression first: printing stays linear
in the size of the term. :attr:`Polynomial.expr` builds the sympy expression when it is asked
for.

The pinned order: generators ranked as per-class symbols (``z_i`` before ``v_i``), the label's
logits, class means (moments by decreasing degree, ``z`` before ``v``; the means over the other
classes after), then the rest; terms in decreasing lexicographic order of their exponents in
that ranking; a common factor :math:`1/N` pulled out in front.

Examples
========

>>> from derive.notation import ClassMean, N, z_i, v_i
>>> p = Polynomial.from_expr((z_i - v_i - ClassMean(z_i) + ClassMean(v_i)) / N)
>>> p.text()
'(z_i - v_i - mean(z_i) + mean(v_i))/N'
>>> p.concrete_text(classes=2, component=1)
'z1/2 - v1/2 - ((z1 + z2)/2)/2 + ((v1 + v2)/2)/2'
"""

from functools import cached_property

import sympy
from sympy import QQ

from .notation import (
    ClassMean,
    N,
    OtherMean,
    _Mean,
    concrete,
    readable,
    sigma_v,
    sigma_z,
    v_i,
    vh_i,
    z_i,
    zh_i,
)
from .ordering import expression_latex, generator_rank
from .packing import exponent as packed_exponent
from .packing import slots as packed_slots
from .series import Algebra

__all__ = ["Polynomial", "generator_rank"]


class Polynomial:
    """A term: ``terms`` (packed monomial -> rational) over the generators of ``algebra``."""

    def __init__(self, algebra, terms):
        self.algebra = algebra
        self.terms = {m: c for m, c in terms.items() if c}

    @classmethod
    def from_expr(cls, expr):
        """The polynomial of a sympy expression free of :math:`\\epsilon` (atoms where needed)."""
        algebra = Algebra()
        return cls(algebra, algebra.element(sympy.sympify(expr)))

    def __bool__(self):
        return bool(self.terms)

    @cached_property
    def expr(self):
        """The sympy expression (built once, when asked for)."""
        return self.algebra.to_expr(self.terms)

    # -- generators -----------------------------------------------------------------------
    @cached_property
    def _slots(self):
        """Slots used, with their expression and role, in the pinned order."""
        used = 0
        for m in self.terms:
            used |= m
        slots = packed_slots(used)
        expressions = self.algebra.expressions
        return sorted(slots, key=lambda s: generator_rank(_base(expressions[s])[0]))

    def _exponents(self, monomial):
        return [packed_exponent(monomial, slot) for slot in self._slots]

    @cached_property
    def plain(self):
        """Whether every generator prints as itself: symbols, means and their inverses (atoms
        such as ``sqrt(N - 1)`` are printed through sympy, which simplifies their powers)."""
        for slot in self._slots:
            base, _ = _base(self.algebra.expressions[slot])
            if not (base.is_Symbol or isinstance(base, _Mean)):
                return False
        return True

    def _ordered(self):
        """``[(coefficient, [(slot, signed exponent), ...])]`` in the pinned order."""
        cached = self.__dict__.get("_ordered_rows")
        if cached is not None:
            return cached
        signs = [_base(self.algebra.expressions[slot])[1] for slot in self._slots]
        rows = []
        for m, c in self.terms.items():
            exponents = self._exponents(m)
            factors = [
                (slot, sign * e) for slot, sign, e in zip(self._slots, signs, exponents) if e
            ]
            rows.append((exponents, QQ.to_sympy(c), factors))
        rows.sort(key=lambda row: [-e for e in row[0]])
        self.__dict__["_ordered_rows"] = [(c, factors) for _, c, factors in rows]
        return self.__dict__["_ordered_rows"]

    def _printed(self, slot, style):
        """The printed base of generator ``slot`` (its inverse prints as the base)."""
        cache = self.__dict__.setdefault("_printed_slots", {})
        key = (slot, style)
        if key not in cache:
            base, _ = _base(self.algebra.expressions[slot])
            if style == "latex":
                cache[key] = _latex_base(base, expression_latex)
            else:
                text = _readable(base) if style == "readable" else str(base)
                atomic = base.is_Symbol or isinstance(base, _Mean)
                cache[key] = text if atomic else f"({text})"
        return cache[key]

    def _is_n(self, slot):
        return slot in self._n_slots

    @cached_property
    def _n_slots(self):
        return {slot for slot in self._slots if _base(self.algebra.expressions[slot])[0] == N}

    def _common_inverse_n(self):
        """True if every term has exactly the factor ``1/N`` (and no other power of ``N``)."""
        if not self.terms:
            return False
        for _, factors in self._ordered():
            if [e for slot, e in factors if self._is_n(slot)] != [-1]:
                return False
        return True

    def _rows(self, style):
        """``[(coefficient, [(printed base, exponent)])]``, a common ``1/N`` left out."""
        common = self._common_inverse_n()
        return common, [
            (
                c,
                [
                    (self._printed(slot, style), e)
                    for slot, e in factors
                    if not (common and self._is_n(slot))
                ],
            )
            for c, factors in self._ordered()
        ]

    # -- text -----------------------------------------------------------------------------
    def text(self, *, readable=False):
        """Text that :func:`derive.parse` (and ``sympy.sympify``) reads back; ``readable``
        writes means as ``⟨z**2*v⟩`` instead, for people."""
        if not self.plain:
            return _readable(self.expr) if readable else str(self.expr)
        common, rows = self._rows("readable" if readable else "text")
        parts = [_text_term(c, factors) for c, factors in rows]
        body = _join(parts) if parts else "0"
        if common:
            return f"({body})/N" if len(parts) > 1 else f"{body}/N"
        return body

    # -- LaTeX ----------------------------------------------------------------------------
    def latex_parts(self):
        r"""``(prefix, [signed terms])``: ``prefix`` is ``'\frac{1}{N}'`` when a common
        :math:`1/N` was pulled out; each term starts with ``'+ '`` or ``'- '``."""
        if not self.plain:
            text = expression_latex(self.expr)
            return "", (
                []
                if self.expr == 0
                else [("- " + text[1:]) if text.startswith("-") else "+ " + text]
            )
        common, rows = self._rows("latex")
        return (r"\frac{1}{N}" if common else ""), [_latex_term(c, factors) for c, factors in rows]

    def latex(self):
        """LaTeX in the pinned order."""
        prefix, parts = self.latex_parts()
        if not parts:
            return "0"
        body = join_terms(parts)
        if not prefix:
            return body
        if len(parts) == 1 and not body.startswith("-"):
            return f"{prefix} {body}"
        return f"{prefix} \\left({body}\\right)"

    # -- concrete N ---------------------------------------------------------------------------
    def _concrete_printed(self, slot, classes, component, style):
        """``(number or None, printed or None)`` of generator ``slot`` written for ``classes``
        classes (``z_i`` as class ``component``): a number folds into the coefficient."""
        cache = self.__dict__.setdefault("_concrete_cache", {})
        per_class = self.algebra.is_per_class(slot)
        key = (slot, classes, component if per_class else None, style)
        if key not in cache:
            base, _ = _base(self.algebra.expressions[slot])
            explicit = _explicit_moment(base, classes, style)
            if explicit is not None:
                cache[key] = (None, explicit)
            else:
                value = sympy.sympify(concrete(base, classes=classes, component=component))
                if value.is_Number:
                    cache[key] = (value, None)
                elif style == "latex":
                    cache[key] = (None, _parenthesized_latex(value, expression_latex))
                else:
                    cache[key] = (None, _parenthesized_text(value))
        return cache[key]

    def _concrete_rows(self, classes, component, style):
        """``[(coefficient, [(printed factor, exponent)])]`` with ``N`` replaced by ``classes``
        (terms that become alike are merged)."""
        merged = {}
        for coefficient, factors in self._ordered():
            key = []
            for slot, exponent in factors:
                value, printed = self._concrete_printed(slot, classes, component, style)
                if printed is None:
                    coefficient *= value**exponent
                else:
                    key.append((printed, exponent))
            signature = tuple(key)
            merged[signature] = merged.get(signature, 0) + coefficient
        return [(c, list(key)) for key, c in merged.items() if c]

    def concrete_text(self, *, classes, component=1):
        """Text in ``z1..zN, v1..vN`` (``sympy.sympify`` reads it), ``z_i, v_i`` being those of
        ``component`` and the label class 1."""
        if not self.plain or self.expr.has(zh_i, vh_i, sigma_z, sigma_v):
            return str(concrete(self.expr, classes=classes, component=component))
        parts = [
            _text_term(c, factors) for c, factors in self._concrete_rows(classes, component, "text")
        ]
        return _join(parts) if parts else "0"

    def concrete_latex(self, *, classes, component=1):
        """LaTeX in ``z_1..z_N, v_1..v_N``, in the symbolic term's order."""
        if not self.plain or self.expr.has(zh_i, vh_i, sigma_z, sigma_v):
            return expression_latex(concrete(self.expr, classes=classes, component=component))
        parts = [
            _latex_term(c, factors)
            for c, factors in self._concrete_rows(classes, component, "latex")
        ]
        return join_terms(parts) if parts else "0"


def _explicit_moment(mean, classes, style):
    r"""A moment :math:`\langle z^a v^b\rangle` (or over the other classes) written out as its
    explicit sum, fast; ``None`` for anything else."""
    if not isinstance(mean, (ClassMean, OtherMean)):
        return None
    powers = mean.args[0].as_powers_dict()
    if mean.args[0] != sympy.Mul(*[s ** powers.get(s, 0) for s in (z_i, v_i)]):
        return None
    first = 2 if isinstance(mean, OtherMean) else 1
    count = classes - first + 1
    parts = []
    for j in range(first, classes + 1):
        factors = []
        for name, symbol in (("z", z_i), ("v", v_i)):
            power = powers.get(symbol, 0)
            if power:
                base = f"{name}{j}" if style == "text" else f"{name}_{{{j}}}"
                factors.append(
                    base
                    if power == 1
                    else (f"{base}**{power}" if style == "text" else f"{base}^{{{power}}}")
                )
        parts.append(("*" if style == "text" else " ").join(factors))
    if style == "text":
        return f"(({' + '.join(parts)})/{count})" if count > 1 else f"({parts[0]})"
    body = " + ".join(parts)
    return rf"\left(\frac{{{body}}}{{{count}}}\right)" if count > 1 else rf"\left({body}\right)"


def _base(expr):
    """``(base, sign)``: a generator ``1/x`` is ``x`` to the power -1."""
    if expr.is_Pow and expr.args[1] == -1:
        return expr.args[0], -1
    return expr, 1


def _join(parts):
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def join_terms(parts):
    """Join signed terms (``'+ a'``, ``'- b'``) into ``'a - b'``."""
    return _join(parts)


def _readable(expr):
    return readable(expr)


def _power_text(text, exponent):
    return text if abs(exponent) == 1 else f"{text}**{abs(exponent)}"


def _text_term(coefficient, factors):
    """``'+ 3/2*z_i**2*mean(v_i)/mean(v_i**2)'``: sign, magnitude, numerator, denominator;
    ``factors`` are ``(printed base, signed exponent)``."""
    sign = "-" if coefficient < 0 else "+"
    magnitude = abs(coefficient)
    numerator = [_power_text(b, e) for b, e in factors if e > 0]
    denominator = [_power_text(b, e) for b, e in factors if e < 0]
    head = [] if magnitude.p == 1 and numerator else [str(magnitude.p)]
    text = "*".join(head + numerator)
    below = ([str(magnitude.q)] if magnitude.q != 1 else []) + denominator
    if below:
        text += "/" + (below[0] if len(below) == 1 else "(" + "*".join(below) + ")")
    return f"{sign} {text}"


def _latex_term(coefficient, factors):
    """``'+ \\frac{3}{2} z_{i}^{2} ...'`` from ``(printed base, signed exponent)`` factors."""
    sign = "-" if coefficient < 0 else "+"
    magnitude = abs(coefficient)
    rendered = [text if exponent == 1 else f"{text}^{{{exponent}}}" for text, exponent in factors]
    if magnitude.q == 1:
        head = "" if magnitude.p == 1 and rendered else f"{magnitude.p}"
    else:
        head = f"\\frac{{{magnitude.p}}}{{{magnitude.q}}}"
    return f"{sign} " + " ".join(filter(None, [head, *rendered]))


def _latex_base(base, printer):
    text = printer(base)
    if base.is_Symbol or isinstance(base, _Mean):
        return text
    return f"\\left({text}\\right)"


def _parenthesized_text(value):
    text = str(value)
    return text if value.is_Symbol else f"({text})"


def _parenthesized_latex(value, printer):
    text = printer(value)
    return text if value.is_Symbol else f"\\left({text}\\right)"
