r"""Exact relations between a traced loss and the registry's objectives, proved symbolically.

A traced per-example loss :math:`\ell` is related to an objective :math:`L` of
:data:`derive.OBJECTIVES` when :math:`\ell = c\,N^a\,T^b\,L` term by term: the coefficient of
every power of :math:`1/T` computed, minus the factor times the objective's, is exactly ``0``
after :func:`derive.canonical`, as in the proofs. The factor is solved for, never guessed:
:math:`T^b` from where the two series start, :math:`c\,N^a` from their leading terms (and the
objective's parameters, if it has any, from the next terms). When the values differ by terms
free of the student's logits (the soft-target cross-entropy form of KD grows like
:math:`T^2\log N`), the same comparison of the *gradients* gives the relation
``= KD + (terms free of z)``.

Torch-free.

Examples
========

>>> from derive.objectives import OBJECTIVES
>>> from derive.notation import N
>>> mean_reduced = LeadingSeries.of(OBJECTIVES["kl"].loss() / N, order=3)
>>> relation = find_relation(mean_reduced, None, order=3)
>>> relation.text, relation.to_json()["factor"]
('= (1/N)*KD', '1/N')
>>> find_relation(LeadingSeries.of(OBJECTIVES["reverse-kl"].loss(), order=3), None,
...               order=3, objectives=["kl"]) is None
True
"""

from dataclasses import dataclass
from functools import lru_cache

import sympy

from .._errors import DeriveError, check_argument
from ..normal_form import canonical
from ..notation import PER_CLASS, ClassMean, N, T, epsilon, sigma_v, sigma_z, v_g, v_i, z_g, z_i
from ..objectives import OBJECTIVES
from ..packing import slot_mask
from ..series import Algebra, series_of
from ._symbols import B

__all__ = [
    "LeadingSeries",
    "Relation",
    "find_relation",
    "limit_relation",
    "shift_invariant",
    "batch_exponent",
    "display_factor",
    "objective_label",
    "MAX_SHIFT",
]

#: How far past the requested order a series is expanded to find where it starts: a loss
#: may start as late as :math:`T^{-(order + MAX\_SHIFT - 1)}` (a missing ``T**2`` starts at
#: :math:`T^{-2}`).
MAX_SHIFT = 8
#: How many of the first terms are used to solve for an objective's parameters.
_SOLVING_TERMS = 3


@dataclass(frozen=True)
class LeadingSeries:
    r"""The first ``len(polynomials)`` nonzero-led terms of a series in :math:`\epsilon = 1/T`:
    ``polynomials[k]`` (in ``algebra``) is the coefficient of :math:`T^{-(valuation + k)}`.
    ``valuation`` is ``None`` when the series is zero to the precision computed."""

    valuation: object
    polynomials: tuple
    algebra: object

    @classmethod
    def of(cls, expr, *, order, algebra=None):
        """Expand ``expr`` until its first nonzero term, then ``order`` terms from there."""
        algebra = algebra or Algebra()
        expr = sympy.sympify(expr)
        if expr == 0:
            return cls(None, (), algebra)
        precision = order
        while True:
            series = series_of(expr, precision=precision, algebra=algebra)
            if series.valuation < series.precision:
                break
            if precision >= order + MAX_SHIFT:
                return cls(None, (), algebra)
            precision = min(precision + 2, order + MAX_SHIFT)
        start = series.valuation
        if series.precision < start + order:
            series = series_of(expr, precision=start + order, algebra=algebra)
        if series.precision < start + order:
            raise DeriveError(
                f"internal: expansion reached precision {series.precision} < {start + order}"
            )
        return cls(start, tuple(series[k] for k in range(start, start + order)), algebra)

    @property
    def zero(self):
        return self.valuation is None

    @property
    def powers(self):
        """The powers ``k`` of :math:`T^{-k}` held."""
        return () if self.zero else tuple(range(self.valuation, self.valuation + len(self)))

    def __len__(self):
        return len(self.polynomials)

    def exprs(self):
        """The terms as sympy expressions."""
        return [self.algebra.to_expr(p) for p in self.polynomials]

    def scaled(self, factor):
        """Every term times a class constant ``factor`` (free of :math:`\\epsilon`)."""
        value = self.algebra.element(sympy.sympify(factor))
        return LeadingSeries(
            self.valuation,
            tuple(self.algebra.mul(p, value) for p in self.polynomials),
            self.algebra,
        )


@dataclass(frozen=True)
class Relation:
    r"""``traced = factor * objective`` (``via="loss"``), or the same for the gradients
    (``via="gradient"``: the values differ by terms free of the student's logits), at every
    power of :math:`1/T` in ``powers``; ``factor`` is :math:`c\,N^a\,T^b`."""

    objective: str
    factor: object
    parameters: tuple = ()
    via: str = "loss"
    powers: tuple = ()

    @property
    def coefficient(self):
        r""":math:`c\,N^a`, the factor without its power of :math:`T`."""
        return self.factor.subs(T, 1)

    @property
    def temperature_power(self):
        """:math:`b` in :math:`T^b`."""
        power = sympy.powsimp(self.factor).as_coeff_exponent(T)[1]
        check_argument(power.is_Integer, "internal: the factor {} is not c*T**b", self.factor)
        return int(power)

    @property
    def text(self):
        """``'= (1/N)*KD'``, ``'= T^-2*KD'``, ``'= KD + (terms free of z)'``."""
        body = display_factor(self.factor, objective_label(self.objective, self.parameters))
        return f"= {body}" + (" + (terms free of z)" if self.via == "gradient" else "")

    @property
    def latex(self):
        name = {"kl": r"L_{\mathrm{KD}}"}.get(self.objective, r"L_{\mathrm{%s}}" % self.objective)
        if self.parameters:
            name += r"\left(%s\right)" % ", ".join(
                f"{k} = {sympy.latex(v)}" for k, v in self.parameters
            )
        factor = "" if self.factor == 1 else sympy.latex(self.factor) + r"\,"
        tail = r" + (\text{terms free of } z)" if self.via == "gradient" else ""
        return rf"\ell = {factor}{name}{tail}"

    def to_json(self):
        return {
            "objective": self.objective,
            "factor": str(self.factor),
            "parameters": {name: str(value) for name, value in self.parameters},
            "via": self.via,
            "powers": list(self.powers),
        }


def objective_label(name, parameters=()):
    """How a relation names an objective: ``KD`` for ``kl``, else its registry name."""
    label = "KD" if name == "kl" else name
    if parameters:
        label += "(" + ", ".join(f"{k}={v}" for k, v in parameters) + ")"
    return label


def display_factor(factor, name):
    """``factor*name`` for people: ``(1/N)*KD``, ``T^-2*KD``, ``KD``.

    >>> display_factor(2 / (N**2 * T**2), "KD")
    '(2/N^2)*T^-2*KD'
    """
    factor = sympy.sympify(factor)
    coefficient = factor.subs(T, 1)
    power = int(sympy.degree(factor * T**64, T)) - 64 if factor.has(T) else 0
    parts = []
    if coefficient == -1:
        parts.append("-")
    elif coefficient != 1:
        text = str(coefficient).replace("**", "^")
        parts.append(f"({text})*" if any(c in text for c in "/+- ") else f"{text}*")
    if power:
        parts.append(f"T^{power}*" if power != 1 else "T*")
    return "".join(parts) + name


def batch_exponent(polynomials, algebra):
    """The exponent ``w`` with every term a multiple of ``B**w``, or ``None`` if the terms mix
    powers of the batch size (or hold it inside another generator)."""
    powers = {}
    for slot, generator in enumerate(algebra.expressions):
        if generator == B:
            powers[slot] = 1
        elif generator == 1 / B:
            powers[slot] = -1
        elif B in generator.free_symbols:
            return None
    exponents = set()
    for polynomial in polynomials:
        for monomial in polynomial:
            exponents.add(
                sum(
                    powers.get(slot, 0) * exponent
                    for slot, exponent in algebra.exponents(monomial).items()
                )
            )
    if len(exponents) > 1:
        return None
    return exponents.pop() if exponents else 0


# -- the registry's objectives, expanded once per process -----------------------------------


def _candidates(names=None):
    """``(name, objective)`` for every objective a traced loss can be compared with: written in
    the logits and without a label; parameter-free ones first, so that the simplest relation
    is the one reported."""
    chosen = [
        (name, definition)
        for name, definition in OBJECTIVES.items()
        if (names is None or name in names)
        and not definition.labelled
        and definition.coordinates == "logits"
    ]
    return sorted(chosen, key=lambda item: bool(_numeric_parameters(item[1])))


def _numeric_parameters(definition):
    return [p for p in definition.parameters if not p.choices]


def _variants(definition):
    """Parameter values to compare with: each choice of the categorical parameters, the numeric
    ones left unknown (solved for); then the numeric ones at their numeric defaults (a
    parameter inside a function, such as the student temperature of ``hot-teacher``, cannot be
    solved for)."""
    variants = [{}]
    for parameter in definition.parameters:
        if parameter.choices:
            variants = [dict(v, **{parameter.name: c}) for v in variants for c in parameter.choices]
    defaults = {
        p.name: p.default
        for p in _numeric_parameters(definition)
        if p.default not in (None, "symbolic")
    }
    return variants + ([dict(v, **defaults) for v in variants] if defaults else [])


class _Reference:
    """An objective's terms, expanded once per process in an algebra of their own: the series,
    its terms as sympy expressions (made when first asked for), and which monomials occur."""

    def __init__(self, series, unknowns):
        self.series = series
        self.unknowns = unknowns
        self.keys = _key_sets(series, {N} | set(unknowns))
        self._exprs = None

    @property
    def exprs(self):
        if self._exprs is None:
            self._exprs = tuple(self.series.exprs())
        return self._exprs


@lru_cache(maxsize=256)
def _reference(name, variant, quantity, order):
    """The :class:`_Reference` of an objective's loss or gradient (the generic class's
    component), its numeric parameters not in ``variant`` left symbolic; ``None`` if it holds
    symbols that are neither the notation's nor its parameters' (the generic f-divergence's
    ``f2, f3, ...``, which would match every f-divergence), or is zero."""
    definition = OBJECTIVES[name]
    values = dict(variant)
    expr = definition.loss(**values) if quantity == "loss" else definition.gradient(**values)["i"]
    unknowns = tuple(p.symbol for p in _numeric_parameters(definition) if p.name not in values)
    known = {N, epsilon, T, sigma_z, sigma_v, z_g, v_g} | set(PER_CLASS) | set(unknowns)
    if expr.free_symbols - known:
        return None
    series = LeadingSeries.of(expr, order=order)
    return None if series.zero else _Reference(series, unknowns)


def _key_sets(series, coefficient_symbols):
    """For each term, the set of its monomials' parts in the generators *not* built from
    ``coefficient_symbols``, written as ``((generator, exponent), ...)``: comparable across
    algebras."""
    algebra = series.algebra
    mask = _coefficient_mask(algebra, coefficient_symbols)
    sets = []
    for polynomial in series.polynomials:
        keys = set()
        for key in _keys(polynomial, mask):
            keys.add(
                tuple(
                    sorted(
                        (
                            (algebra.expressions[slot], exponent)
                            for slot, exponent in algebra.exponents(key).items()
                        ),
                        key=lambda item: sympy.default_sort_key(item[0]),
                    )
                )
            )
        sets.append(frozenset(keys))
    return sets


def _screen(traced_keys, reference):
    """Whether the monomials that occur allow ``traced = c * objective``: those of each traced
    term must occur in the objective's (all of them, when the objective has no unknown
    parameter, whose coefficients then cannot vanish)."""
    for ours, theirs in zip(traced_keys, reference.keys):
        if not ours <= theirs or (not reference.unknowns and ours != theirs):
            return False
    return True


# -- solving for the factor and the parameters ------------------------------------------------


def _class_constant_number(expr):
    """True if ``expr`` is built from numbers and ``N`` only (a factor :math:`c\\,N^a`)."""
    return expr.free_symbols <= {N} and not expr.atoms(sympy.Function)


def _coefficient_mask(algebra, coefficient_symbols):
    """The bits of the generators built from ``coefficient_symbols`` only (``N``, ``1/N``, the
    unknown parameters): they go into the coefficients, the other generators make the keys."""
    mask = 0
    for slot, generator in enumerate(algebra.expressions):
        if generator.free_symbols <= coefficient_symbols and not generator.atoms(sympy.Function):
            mask |= slot_mask(slot)
    return mask


def _keys(polynomial, mask):
    return {monomial & ~mask for monomial in polynomial}


def _grouped(polynomial, algebra, mask):
    """``{key: coefficient}``: the monomials grouped by their generators outside ``mask``, the
    rest (a small sympy expression in ``N`` and the parameters) in the coefficient."""
    groups = {}
    for monomial, value in polynomial.items():
        groups.setdefault(monomial & ~mask, {})[monomial & mask] = value
    return {key: algebra.to_expr(part) for key, part in groups.items()}


def _candidate_factors(ours, theirs, algebra, unknowns=()):
    """Candidates ``(c, {symbol: value})`` for ``ours[k] = c * theirs[k]`` at every ``k``
    (lists of polynomials of ``algebra``): ``c`` a rational function of ``N``, the ``unknowns``
    (the objective's parameters) rationals. Solved on the coefficients of each monomial in the
    other generators, which are small, after a screen on which monomials occur at all. The
    caller checks each candidate on the whole terms."""
    mask = _coefficient_mask(algebra, {N} | set(unknowns))
    for l, r in zip(ours, theirs):
        left, right = _keys(l, mask), _keys(r, mask)
        # Without unknowns every coefficient of ``theirs`` is nonzero: the keys must agree.
        if not left <= right or (not unknowns and left != right):
            return []
    if not theirs or not theirs[0]:
        return []
    first_left, first_right = _grouped(ours[0], algebra, mask), _grouped(theirs[0], algebra, mask)
    key = min(first_right, key=lambda k: (k not in first_left, k))
    factor = sympy.cancel(first_left.get(key, 0) / first_right[key])
    if not unknowns:
        return [(factor, {})] if factor != 0 and _class_constant_number(factor) else []
    unknowns = sorted(unknowns, key=sympy.default_sort_key)
    try:
        field = sympy.QQ.frac_field(N, *unknowns)
        ratio = field.from_sympy(first_left.get(key, 0)) / field.from_sympy(first_right[key])
        equations = []
        for l, r in list(zip(ours, theirs))[:_SOLVING_TERMS]:
            left, right = _grouped(l, algebra, mask), _grouped(r, algebra, mask)
            for k, value in right.items():
                residual = field.from_sympy(left.get(k, 0)) - ratio * field.from_sympy(value)
                if not residual:
                    continue
                numerator = residual.numer
                if all(not any(monomial[1:]) for monomial in numerator.monoms()):
                    return []  # nonzero whatever the parameters
                equations.append(numerator)
    except (sympy.CoercionFailed, ZeroDivisionError):
        return []  # a coefficient that is not rational in N, parameters
    if not equations:
        return []
    solutions = _solve(equations, unknowns)
    found = []
    for solution in solutions:
        values = {u: solution.get(u) for u in unknowns}
        if any(v is None or not v.is_Rational for v in values.values()):
            continue
        value = sympy.cancel(factor.xreplace(values))
        if value != 0 and _class_constant_number(value):
            found.append((value, values))
    return found


def _solve(equations, unknowns):
    """Rational solutions, independent of ``N``, of polynomial ``equations`` (elements of
    ``QQ[N, *unknowns]``), as dicts. One unknown: the rational roots common to the coefficients
    of every power of ``N`` in every equation; several: :func:`sympy.solve`."""
    if len(unknowns) != 1:
        try:
            return sympy.solve([e.as_expr() for e in equations], unknowns, dict=True)
        except (NotImplementedError, ValueError, TypeError):
            return []
    (unknown,) = unknowns
    common = None
    for equation in equations:
        by_power = {}
        for (power, degree), coefficient in equation.terms():
            by_power.setdefault(power, {})[(degree,)] = coefficient
        for terms in by_power.values():
            polynomial = sympy.Poly.from_dict(terms, unknown, domain=sympy.QQ)
            common = polynomial if common is None else sympy.gcd(common, polynomial)
            if common.degree() <= 0:
                return []
    return [{unknown: root} for root in sympy.roots(common, filter="Q")]


def _match(series, reference, definition, variant):
    """``(factor without T, parameters)`` if ``series`` is a multiple of the objective's
    ``reference`` terms for some values of its unknown parameters, else ``None``."""
    algebra = series.algebra
    theirs = [algebra.element(expr) for expr in reference.exprs]
    names = {p.symbol: p.name for p in _numeric_parameters(definition)}
    for factor, values in _candidate_factors(
        series.polynomials, theirs, algebra, reference.unknowns
    ):
        resolved = dict(variant)
        if values:
            try:
                resolved = dict(
                    definition.resolve(
                        {**variant, **{names[symbol]: value for symbol, value in values.items()}}
                    )
                )
            except DeriveError:
                continue  # outside the parameter's range
        substitutions = {symbol: resolved[names[symbol]] for symbol in values}
        scale = algebra.element(factor)
        if not all(
            algebra.mul(algebra.element(expr.xreplace(substitutions)), scale) == ours
            for ours, expr in zip(series.polynomials, reference.exprs)
        ):
            continue
        # The proof: every residual is exactly 0, as in the proofs of the statements.
        if all(
            canonical(ours - factor * expr.xreplace(substitutions)) == 0
            for ours, expr in zip(series.exprs(), reference.exprs)
        ):
            return factor, tuple((names[symbol], resolved[names[symbol]]) for symbol in values)
    return None


def find_relation(traced, gradient, *, order, objectives=None):
    r"""The first objective (parameter-free ones first) that the traced loss equals up to a factor
    :math:`c\,N^a\,T^b`, at every one of the ``order`` terms computed; else the first whose
    gradient the traced gradient equals (``via="gradient"``); else ``None``.

    ``traced`` and ``gradient`` are :class:`LeadingSeries` of the per-example loss and of its
    gradient w.r.t. ``z_i`` (``gradient`` may be ``None``: loss only). ``objectives``
    restricts the search to those names.
    """
    for quantity, series in (("loss", traced), ("gradient", gradient)):
        if series is None or series.zero or len(series) < order:
            continue
        keys = _key_sets(series, {N})
        for name, definition in _candidates(objectives):
            for variant in _variants(definition):
                fixed = tuple(sorted(variant.items()))
                reference = _reference(name, fixed, quantity, order)
                if reference is None or not _screen(keys, reference):
                    continue
                found = _match(series, reference, definition, variant)
                if found is None:
                    continue
                factor, parameters = found
                shift = series.valuation - reference.series.valuation
                return Relation(
                    name,
                    sympy.factor(factor) * T ** (-shift),
                    tuple(sorted((dict(fixed) | dict(parameters)).items())),
                    quantity,
                    series.powers,
                )
    return None


def limit_relation(gradient):
    r"""What the audit measures, predicted from the gradient's leading term :math:`g_0\,T^{-k}`:
    ``{"exponent": -k, "kd_scale": c}`` when :math:`g_0 = c\,G_0` (KD's limit
    :math:`G_0 = \frac1N(z_i - v_i - \langle z\rangle + \langle v\rangle)`), or
    ``{"exponent": -k, "uncentred_scale": c}`` when :math:`g_0 = \frac{c}{N}(z_i - v_i)`
    (uncentred logits matching); ``{"exponent": -k}`` otherwise, and ``None`` for no gradient.

    >>> from derive.notation import v_i, N
    >>> limit_relation(LeadingSeries.of((z_i - v_i) / 4, order=1))
    {'exponent': 0, 'uncentred_scale': N/4}
    """
    if gradient is None or gradient.zero:
        return None
    algebra = gradient.algebra
    leading = gradient.polynomials[:1]
    found = {"exponent": -gradient.valuation}
    kd_limit = (z_i - v_i - ClassMean(z_i) + ClassMean(v_i)) / N
    for name, reference in (("kd_scale", kd_limit), ("uncentred_scale", (z_i - v_i) / N)):
        reference = algebra.element(reference)
        for factor, _ in _candidate_factors(leading, [reference], algebra):
            if algebra.mul(reference, algebra.element(factor)) == leading[0]:
                found[name] = sympy.factor(factor)
                return found
    return found


def shift_invariant(gradient):
    r"""Whether :math:`\sum_i \partial\ell/\partial z_i = N\langle g\rangle` vanishes at every
    power of :math:`1/T` computed (trivially for no gradient)."""
    if gradient is None or gradient.zero:
        return True
    algebra = gradient.algebra
    return all(
        not algebra.mean(p) or canonical(ClassMean(algebra.to_expr(p))) == 0
        for p in gradient.polynomials
    )
