r"""Every registered objective as a candidate the audit can fit: derive's terms, evaluated
numerically.

A :class:`Candidate` is one objective of :data:`derive.OBJECTIVES` with its categorical
parameters fixed to one choice (``standardized-kl`` is two candidates, one per ``std``). Its
*free* parameters are the continuous ones, kept symbolic in :func:`derive.expand`, and the
symbols a generic family leaves in its terms (the derivatives ``f2, f3, ...`` of the generic
f-divergence, whose candidate is the whole family). The first :data:`TERMS` loss terms
:math:`L_0 .. L_4` (coefficients of :math:`T^0 .. T^{-4}`, :func:`derive.expand`) are split by
monomials in the free parameters, :math:`L_k = \sum_m \theta^m L_{k,m}`; each :math:`L_{k,m}` is
evaluated once on the audited rows and differentiated by autograd, which gives the gradient
terms :math:`G_{k,m} = \partial L_{k,m}/\partial z` ([expansion]); then the gradient terms at any
parameter value cost a few tensor operations. (Expanding the loss rather than the gradient
spares derive the exact symbolic gradient of each objective, five times the work.) A
parameter that enters otherwise (the student's temperature of ``hot-teacher``, inside an
exponential) is evaluated at each value instead, by standing in for the symbol ``T`` of the
evaluator.

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
import math
from dataclasses import dataclass
from functools import lru_cache

import sympy
import torch

import derive
from derive import OBJECTIVES, T

from ..symbolic import SymbolicFunction

__all__ = ["TERMS", "Candidate", "catalogue", "raw_logits_candidates", "structure", "Evaluated"]

#: Gradient terms fitted, :math:`G_0 .. G_{TERMS - 1}`: on the identification grid
#: (:math:`T \ge 4r`) the first left out is below :math:`10^{-6}` of the gradient, while
#: :math:`T^{-2}`, which separates JSD from skew KL, is above :math:`10^{-3}`.
TERMS = 5

_NOTATION = {"N", "T", "epsilon", "z_i", "v_i", "z_g", "v_g", "zh_i", "vh_i", "sigma_z", "sigma_v"}


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
            candidates.append(
                Candidate(
                    name, tuple((p.name, choice) for p, choice in zip(categorical, combination))
                )
            )
    return tuple(candidates)


def raw_logits_candidates():
    """The candidates that see the raw logits (not shift invariant): logits matching. The
    only ones a loss without shift invariance can be."""
    return tuple(c for c in catalogue() if not c.definition.shift_invariant)


@dataclass(frozen=True)
class Structure:
    """A candidate's loss terms, as derive's engine holds them, and how its free parameters
    enter.

    ``names``/``symbols``: the free parameters; ``parameters``: their :class:`derive.Parameter`
    (``None`` for a generic family's symbols); ``generic``: the candidate is a family with
    symbols beyond its parameters. ``terms``: per power ``k``, ``{"loss": rows}``, a row
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
    expansion = derive.expand("loss", order=order, objective=objective, parameters=values)
    polynomials = [dict(term.components) for term in expansion.terms]
    algebra = next(iter(polynomials[0].values())).algebra
    expressions = tuple(algebra.expressions)
    used = set()
    for term in polynomials:
        for polynomial in term.values():
            for monomial in polynomial.terms:
                used |= set(algebra.exponents(monomial))
    symbols = [p.symbol for p in continuous]
    extra = sorted(
        {
            s
            for slot in used
            for s in expressions[slot].free_symbols
            if s.name not in _NOTATION and s not in symbols
        },
        key=_symbol_order,
    )
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
                rows.append(
                    (
                        float(sympy.Rational(str(coefficient))),
                        tuple(plain),
                        tuple(powers),
                        tuple(other),
                    )
                )
            split[component] = tuple(rows)
        terms.append(split)
    rows = [row for term in terms for component in term.values() for row in component]
    polynomial = all(not other for _, _, _, other in rows)
    linear = polynomial and all(
        sum(powers) <= 1 and min(powers, default=0) >= 0 for _, _, powers, _ in rows
    )
    return Structure(
        tuple([p.name for p in continuous] + [s.name for s in extra]),
        symbols,
        tuple(continuous) + (None,) * len(extra),
        bool(extra),
        tuple(terms),
        expressions,
        polynomial,
        linear,
    )


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
    """A candidate's gradient terms on the audited rows ``[R, N]`` (float64, ``labels`` ``[R]``).

    Each generator :math:`v_s` of the loss terms (a class constant per row) is evaluated once
    on ``leaf``, the student rows requiring grad (:class:`verify.symbolic.SymbolicFunction`),
    with its gradient :math:`\\partial v_s/\\partial z` (one autograd pass per generator, shared
    by every candidate through ``cache``). A monomial
    :math:`c\\prod_s v_s^{e_s}` then has the gradient :math:`c\\prod_s v_s^{e_s}\\sum_s (e_s/v_s)\\,
    \\partial v_s/\\partial z` in closed form, and the gradient terms
    :math:`G_k = \\partial L_k/\\partial z` ([expansion]) are sums of these. :meth:`terms`
    returns :math:`G_0 .. G_{K-1}` at parameter values, ``[K, R, N]``; :meth:`basis` the gradient
    of each monomial in the parameters.
    """

    def __init__(self, candidate, leaf, teacher, labels, cache=None):
        self.candidate = candidate
        self.shape = structure(candidate.objective, candidate.choices)
        self.leaf, self.teacher = leaf, teacher
        self.labels = labels
        self._cache = {} if cache is None else cache  # (value, gradient) by expression
        self._parts = self._basis = None

    def _generator(self, slot, temperature=None):
        """``(value [R], gradient [R, N])`` of generator ``slot`` (at a parameter value
        ``temperature`` standing for the one parameter, for a generator that holds it)."""
        expression = self.shape.expressions[slot]
        if temperature is not None:
            expression = expression.xreplace({self.shape.symbols[0]: T})
        key = (expression, temperature)
        if key not in self._cache:
            rows = self.leaf.shape[0]
            with torch.enable_grad():
                value = _function(expression)(self.leaf, self.teacher, temperature, self.labels)
                value = torch.as_tensor(value, dtype=torch.float64).reshape(-1).expand(rows)
                gradient = None
                if value.requires_grad:
                    (gradient,) = torch.autograd.grad(value.sum(), self.leaf, allow_unused=True)
            if gradient is None:
                gradient = torch.zeros_like(self.leaf)
            self._cache[key] = (value.detach(), gradient)
        return self._cache[key]

    def _monomials(self, slots, exponents, coefficients):
        """Values ``[P, R]`` and gradients ``[P, R, N]`` of the monomials
        :math:`c_p\\prod_s v_s^{e_{ps}}`."""
        rows = self.leaf.shape[0]
        if not slots:
            values = coefficients[:, None].expand(-1, rows)
            return values, torch.zeros((*values.shape, self.leaf.shape[-1]), dtype=torch.float64)
        generated = [self._generator(slot) for slot in slots]
        values = torch.stack([value for value, _ in generated])  # [S, R]
        gradients = torch.stack([gradient for _, gradient in generated])  # [S, R, N]
        magnitude = values.abs()
        logarithms = torch.where(magnitude > 0, magnitude.log(), torch.full_like(magnitude, -1e30))
        parity = torch.remainder(exponents @ (values < 0).to(torch.float64), 2.0)
        products = (
            torch.exp(exponents @ logarithms) * (1.0 - 2.0 * parity) * coefficients[:, None]
        )  # [P, R]
        safe = torch.where(values == 0, torch.full_like(values, 1e-300), values)
        weights = products[:, None, :] * exponents[:, :, None] / safe[None]  # [P, S, R]
        return products, torch.einsum("psr,srn->prn", weights, gradients)

    def _grouped(self):
        """``{(powers, other): (loss [K, R], gradient [K, R, N])}``: the parts of the loss terms
        free of the parameters, by how the parameters enter them."""
        if self._parts is None:
            layout = _layout(self.candidate.objective, self.candidate.choices)
            values, gradients = self._monomials(layout.slots, layout.exponents, layout.coefficients)
            terms, rows = len(self.shape.terms), self.leaf.shape[0]
            losses = (layout.assignment @ values).reshape(len(layout.keys), terms, rows)
            summed = torch.einsum("gp,prn->grn", layout.assignment, gradients).reshape(
                len(layout.keys), terms, rows, self.leaf.shape[-1]
            )
            self._parts = {key: (losses[i], summed[i]) for i, key in enumerate(layout.keys)}
        return self._parts

    def basis(self):
        """``{powers: [K, R, N]}``: the gradient of each monomial's coefficient in each term."""
        if self._basis is None:
            self._basis = {
                powers: gradient for (powers, _), (_, gradient) in self._grouped().items()
            }
        return self._basis

    def terms(self, values):
        """:math:`G_k` at the free parameters ``values`` (a tuple), ``[K, R, N]``."""
        if self.shape.polynomial:
            total = torch.zeros((len(self.shape.terms), *self.leaf.shape), dtype=torch.float64)
            for powers, tensor in self.basis().items():
                total = total + _monomial(values, powers) * tensor
            return total
        (terms,) = self.terms_many([values])
        return (
            terms
            if terms is not None
            else torch.full(
                (len(self.shape.terms), *self.leaf.shape), math.inf, dtype=torch.float64
            )
        )

    def terms_many(self, points):
        """:math:`G_k` at each of several parameter values: a list of ``[K, R, N]``, ``None``
        where a generator holding the parameter overflows."""
        if self.shape.polynomial:
            return [self.terms(values) for values in points]
        results = []
        for values in points:
            total = 0
            for (powers, other), (loss, gradient) in self._grouped().items():
                factor = torch.full(
                    (self.leaf.shape[0],), _monomial(values, powers), dtype=torch.float64
                )
                logarithmic = torch.zeros_like(self.leaf)  # d log(factor) / dz
                for slot, exponent in other:
                    value, derivative = self._generator(slot, float(values[0]))
                    factor = factor * value**exponent
                    logarithmic = logarithmic + exponent * derivative / value[:, None]
                total = total + factor[None, :, None] * (
                    gradient + loss[:, :, None] * logarithmic[None]
                )
            finite = isinstance(total, torch.Tensor) and bool(torch.isfinite(total).all())
            results.append(total if finite else None)
        return results


@dataclass(frozen=True)
class _Layout:
    """A candidate's loss monomials as matrices: the generator ``slots``, the ``exponents``
    ``[P, S]``, the ``coefficients`` ``[P]``, the ``keys`` (how the parameters enter a group),
    and the ``assignment`` ``[G K, P]`` of each monomial to its group and power."""

    slots: tuple
    exponents: torch.Tensor
    coefficients: torch.Tensor
    keys: tuple
    assignment: torch.Tensor


@lru_cache(maxsize=None)
def _layout(objective, choices):
    terms = structure(objective, choices).terms
    rows = [(k, row) for k, term in enumerate(terms) for row in term["loss"]]
    slots = sorted({slot for _, row in rows for slot, _ in row[1]})
    index = {slot: i for i, slot in enumerate(slots)}
    exponents = [[0.0] * len(slots) for _ in rows]
    keys, targets = {}, []
    for p, (k, (_, plain, powers, other)) in enumerate(rows):
        for slot, exponent in plain:
            exponents[p][index[slot]] = float(exponent)
        targets.append(keys.setdefault((powers, other), len(keys)) * len(terms) + k)
    assignment = torch.zeros((len(keys) * len(terms), len(rows)), dtype=torch.float64)
    assignment[torch.tensor(targets, dtype=torch.long), torch.arange(len(rows))] = 1.0
    return _Layout(
        tuple(slots),
        torch.tensor(exponents, dtype=torch.float64).reshape(len(rows), len(slots)),
        torch.tensor([row[0] for _, row in rows], dtype=torch.float64),
        tuple(keys),
        assignment,
    )


@lru_cache(maxsize=None)
def _function(expression):
    return SymbolicFunction(expression)


def _monomial(values, exponents):
    product = 1.0
    for value, exponent in zip(values, exponents):
        if exponent:
            product *= float(value) ** exponent
    return product
