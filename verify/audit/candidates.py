r"""Every registered objective as a candidate the audit can fit: derive's terms, evaluated numerically.

A :class:`Candidate` is one objective of :data:`derive.OBJECTIVES` with its categorical
parameters fixed to one choice (``standardized-kl`` is two candidates, one per ``std``). Its
*free* parameters are the continuous ones, kept symbolic in :func:`derive.expand`, and the
symbols a generic family leaves in its terms (the derivatives ``f2, f3, ...`` of the generic
f-divergence, whose candidate is the whole family). The first :data:`TERMS` gradient terms
:math:`G_0 .. G_4` (coefficients of :math:`T^0 .. T^{-4}`) are split by monomials in the free
parameters, :math:`G_k = \sum_m \theta^m G_{k,m}`, and each :math:`G_{k,m}` is evaluated once on
the audited rows (:func:`verify.symbolic.gradient_values`); then the terms at any parameter
value cost a few tensor operations. A parameter that enters otherwise (the student's
temperature of ``hot-teacher``, inside an exponential) is evaluated at each value instead, by
standing in for the symbol ``T`` of the evaluator.

The *level* of a candidate is its number of free parameters; a generic family comes last.
Nothing here is specific to one objective: a new registry entry is a new candidate.

Examples
========

>>> names = [candidate.label for candidate in catalogue()]
>>> names[:3], "standardized-kl (std=unbiased)" in names
(['kl', 'reverse-kl', 'js'], True)
>>> structure("jsd").names, structure("jsd").linear, structure("dkd").linear
(('beta',), False, True)
>>> structure("f-divergence").generic, structure("f-divergence").names[:3]
(True, ('f2', 'f3', 'f4'))
"""

import itertools
from dataclasses import dataclass
from functools import lru_cache

import sympy
import torch

import derive
from derive import OBJECTIVES, T

from ..symbolic import SymbolicFunction

__all__ = ["TERMS", "Candidate", "catalogue", "structure", "Evaluated"]

#: Gradient terms fitted, :math:`G_0 .. G_{TERMS - 1}`: on the identification grid
#: (:math:`T \ge 4r`) the first left out is below :math:`10^{-6}` of the gradient, while
#: :math:`T^{-2}`, which separates JSD from skew KL, is above :math:`10^{-3}`.
TERMS = 5

_NOTATION = {"N", "T", "epsilon", "z_i", "v_i", "z_g", "v_g", "zh_i", "vh_i", "sigma_z",
             "sigma_v"}


@dataclass(frozen=True)
class Candidate:
    """One objective with its categorical parameters fixed: ``choices`` is
    ``((name, choice), ...)``."""

    objective: str
    choices: tuple = ()

    @property
    def label(self):
        """``'standardized-kl (std=unbiased)'``."""
        if not self.choices:
            return self.objective
        return f"{self.objective} ({', '.join(f'{k}={v}' for k, v in self.choices)})"

    @property
    def definition(self):
        return OBJECTIVES[self.objective]

    @property
    def parameter_count(self):
        """Continuous parameters: the candidate's level, before its terms are known."""
        return sum(1 for p in self.definition.parameters if not p.choices)

    @property
    def level(self):
        """Free parameters; a generic family (symbols beyond its parameters) comes last. Needs
        the terms (:func:`structure`)."""
        shape = structure(self.objective, self.choices)
        return 100 + len(shape.names) if shape.generic else len(shape.names)


def catalogue():
    """Every candidate, in registry order (categorical parameters expanded)."""
    candidates = []
    for name, definition in OBJECTIVES.items():
        categorical = [p for p in definition.parameters if p.choices]
        for combination in itertools.product(*[p.choices for p in categorical]):
            candidates.append(Candidate(name, tuple(
                (p.name, choice) for p, choice in zip(categorical, combination))))
    return tuple(candidates)


@dataclass(frozen=True)
class Structure:
    """A candidate's terms, as derive's engine holds them, and how its free parameters enter.

    ``names``/``symbols``: the free parameters; ``parameters``: their :class:`derive.Parameter`
    (``None`` for a generic family's symbols); ``generic``: the candidate is a family with
    symbols beyond its parameters. ``terms``: per power ``k``, ``{component: rows}``, a row
    ``(coefficient, plain, powers, other)`` per monomial: the rational coefficient, the
    exponents of the generators free of parameters, the exponents of the free parameters,
    and the generators in which a parameter enters otherwise (``hot-teacher``'s
    :math:`e^{z_i/T_s}`). ``expressions``: the generators' expressions by slot.
    ``polynomial``: the parameters enter every term as a (Laurent) polynomial; ``linear``: with
    degree at most 1 in each monomial (fitted by least squares).
    """

    names: tuple
    symbols: tuple
    parameters: tuple
    generic: bool
    terms: tuple
    expressions: tuple

    polynomial: bool = True
    linear: bool = False


@lru_cache(maxsize=None)
def structure(objective, choices=()):
    """The :class:`Structure` of one candidate (cached: derive's expansion runs once)."""
    definition = OBJECTIVES[objective]
    continuous = [p for p in definition.parameters if not p.choices]
    values = dict(choices)
    values.update({p.name: p.name for p in continuous})
    order = min(TERMS, definition.max_order)
    expansion = derive.expand("gradient", order=order, objective=objective, parameters=values)
    polynomials = [dict(term.components) for term in expansion.terms]
    algebra = next(iter(polynomials[0].values())).algebra
    expressions = tuple(algebra.expressions)
    used = set()
    for term in polynomials:
        for polynomial in term.values():
            for monomial in polynomial.terms:
                used |= set(algebra.exponents(monomial))
    symbols = [p.symbol for p in continuous]
    extra = sorted({s for slot in used for s in expressions[slot].free_symbols
                    if s.name not in _NOTATION and s not in symbols}, key=_symbol_order)
    symbols = tuple(symbols + extra)
    kinds = {slot: _kind(expressions[slot], symbols) for slot in used}
    terms = []
    for term in polynomials:
        split = {}
        for component, polynomial in term.items():
            rows = []
            for monomial, coefficient in polynomial.terms.items():
                plain, powers, other = [], [0] * len(symbols), []
                for slot, exponent in algebra.exponents(monomial).items():
                    kind = kinds[slot]
                    if kind is None:
                        plain.append((slot, exponent))
                    elif kind[0] == "power":
                        powers[kind[1]] += kind[2] * exponent
                    else:
                        other.append((slot, exponent))
                rows.append((float(sympy.Rational(str(coefficient))), tuple(plain),
                             tuple(powers), tuple(other)))
            split[component] = tuple(rows)
        terms.append(split)
    rows = [row for term in terms for component in term.values() for row in component]
    polynomial = all(not other for _, _, _, other in rows)
    linear = polynomial and all(sum(powers) <= 1 and min(powers, default=0) >= 0
                                for _, _, powers, _ in rows)
    return Structure(tuple([p.name for p in continuous] + [s.name for s in extra]), symbols,
                     tuple(continuous) + (None,) * len(extra), bool(extra), tuple(terms),
                     expressions, polynomial, linear)


def _kind(expression, symbols):
    """``None`` (free of the parameters), ``("power", index, exponent)``, or ``("other",)``."""
    if not expression.free_symbols & set(symbols):
        return None
    base, exponent = expression.as_base_exp()
    if base in symbols and exponent.is_Integer:
        return ("power", symbols.index(base), int(exponent))
    return ("other",)


def _symbol_order(symbol):
    digits = "".join(c for c in symbol.name if c.isdigit())
    return (symbol.name.rstrip("0123456789"), int(digits) if digits else 0)


class Evaluated:
    """A candidate's terms on the audited rows ``[R, N]`` (float64, with ``labels`` ``[R]``).

    Each generator is evaluated once (:class:`verify.symbolic.SymbolicFunction`), and each
    term's monomials are summed by the powers of the free parameters (:meth:`basis`);
    :meth:`terms` returns :math:`G_0 .. G_{K-1}` at parameter values, ``[K, R, N]``.
    """

    def __init__(self, candidate, student, teacher, labels, cache=None):
        self.candidate = candidate
        self.shape = structure(candidate.objective, candidate.choices)
        self.student, self.teacher = student, teacher
        self.labels = labels if candidate.definition.labelled else None
        self._all_labels = labels
        self._values = {} if cache is None else cache     # generator values, by expression
        self._groups = None
        if self.labels is not None:
            self._label_mask = torch.nn.functional.one_hot(labels, student.shape[-1]).to(student)

    def _generator(self, slot, temperature=None):
        expression = self.shape.expressions[slot]
        if temperature is not None:
            expression = expression.xreplace({self.shape.symbols[0]: T})
        key = (expression, temperature)
        if key not in self._values:
            self._values[key] = _function(expression)(self.student, self.teacher, temperature,
                                                     self._all_labels)
        return self._values[key]

    def _place(self, component, value):
        """A component's values in the columns it applies to: the label's (``"g"``) or the
        others' (``"i"``, every column without a label)."""
        if self.labels is None:
            return value
        return value * self._label_mask if component == "g" else value * (1 - self._label_mask)

    def _grouped(self):
        """``{(powers, other): [K, R, N]}``: the part of each term free of the parameters, by
        how the parameters enter it. The monomials of a component are evaluated at once:
        :math:`\\prod_s v_s^{e_s} = \\pm\\exp(\\sum_s e_s \\log|v_s|)`, one matrix product."""
        if self._groups is None:
            layout = _layout(self.candidate.objective, self.candidate.choices)
            terms = len(self.shape.terms)
            shape = (terms, *self.student.shape)
            summed = torch.zeros((len(layout.keys) * terms, *self.student.shape),
                                 dtype=torch.float64)
            for component, slots, exponents, coefficients, targets in layout.components:
                values = torch.stack([self._generator(slot).expand_as(self.student).reshape(-1)
                                      for slot in slots]) if slots else torch.zeros(
                    (0, self.student.numel()), dtype=torch.float64)
                magnitude = values.abs()
                logarithms = torch.where(magnitude > 0, magnitude.log(),
                                         torch.full_like(magnitude, -1e30))
                parity = torch.remainder(exponents @ (values < 0).to(torch.float64), 2.0)
                products = (torch.exp(exponents @ logarithms) * (1.0 - 2.0 * parity)
                            * coefficients[:, None])
                part = torch.zeros((summed.shape[0], self.student.numel()), dtype=torch.float64)
                part.index_add_(0, targets, products)
                summed += self._place(component, part.reshape(summed.shape))
            summed = summed.reshape(len(layout.keys), *shape)
            self._groups = {key: summed[i] for i, key in enumerate(layout.keys)}
        return self._groups

    def basis(self):
        """``{powers: [K, R, N]}``: the coefficient of each monomial in the parameters."""
        return {powers: tensor for (powers, _), tensor in self._grouped().items()}

    def terms(self, values):
        """:math:`G_k` at the free parameters ``values`` (a tuple), ``[K, R, N]``."""
        total = torch.zeros((len(self.shape.terms), *self.student.shape), dtype=torch.float64)
        for (powers, other), tensor in self._grouped().items():
            factor = _monomial(values, powers)
            for slot, exponent in other:    # one parameter, entering non-polynomially
                factor = factor * self._generator(slot, float(values[0])) ** exponent
            total = total + factor * tensor
        return total


@dataclass(frozen=True)
class _Layout:
    """A candidate's monomials as matrices: ``keys`` (how the parameters enter a group) and,
    per component, the generator slots, the exponents ``[P, S]``, the coefficients ``[P]``
    and each monomial's row ``group * K + k`` in the sum."""

    keys: tuple
    components: tuple


@lru_cache(maxsize=None)
def _layout(objective, choices):
    terms = structure(objective, choices).terms
    keys, components = {}, []
    for component in sorted({c for term in terms for c in term}):
        rows = [(k, row) for k, term in enumerate(terms) for row in term.get(component, ())]
        if not rows:
            continue
        slots = sorted({slot for _, row in rows for slot, _ in row[1]})
        index = {slot: i for i, slot in enumerate(slots)}
        exponents = [[0.0] * len(slots) for _ in rows]
        targets = []
        for p, (k, (_, plain, powers, other)) in enumerate(rows):
            for slot, exponent in plain:
                exponents[p][index[slot]] = float(exponent)
            targets.append(keys.setdefault((powers, other), len(keys)) * len(terms) + k)
        components.append((component, tuple(slots),
                           torch.tensor(exponents, dtype=torch.float64).reshape(len(rows),
                                                                                len(slots)),
                           torch.tensor([row[0] for _, row in rows], dtype=torch.float64),
                           torch.tensor(targets)))
    return _Layout(tuple(keys), tuple(components))


@lru_cache(maxsize=None)
def _function(expression):
    return SymbolicFunction(expression)


def _monomial(values, exponents):
    product = 1.0
    for value, exponent in zip(values, exponents):
        if exponent:
            product *= float(value) ** exponent
    return product
