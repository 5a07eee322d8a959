r"""The one registry of distillation objectives, and what an objective is.

An :class:`Objective` is a *definition*: a function of its parameters that returns the exact
loss as a sympy expression in :math:`\epsilon = 1/T`, the per-class symbols and class means.
It is registered where it is defined, with :func:`objective`; the expansion engine, the CLI,
the proofs and :mod:`verify` (whose torch twins register under the same names) read
:data:`OBJECTIVES`. Adding an objective touches one place.
"""

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy

from .._errors import MAX_ORDER, DeriveError, check_argument
from .._numbers import check_symbol_name, parse_rational
from ..notation import ClassMean, N, OtherMean, at_label, sigma_z, z_g, z_i, zh_i

__all__ = [
    "Parameter",
    "Objective",
    "OBJECTIVES",
    "objective",
    "parameter_symbols",
    "FAMILIES",
    "objectives_proved_by",
]

#: Families, in the order the CLI, the report and the docs list them.
FAMILIES = {
    "f-divergence": "f-divergences of the two softmaxes",
    "temperature": "separate temperatures",
    "mixture": "mixtures with the hard label",
    "target-aware": "target-aware (decoupled) objectives",
    "normalized": "normalized objectives",
    "matching": "logits matching (the T -> infinity end)",
}


@dataclass(frozen=True)
class Parameter:
    """A parameter of an objective.

    Numbers are exact rationals in ``[low, high]`` (``open`` excludes the named ends), or a
    symbol name for a symbolic value; ``choices`` makes it categorical instead. ``default`` is
    used when the parameter is not given: a rational, a choice, ``"symbolic"`` (the parameter
    stays a symbol named like it) or ``None`` (required).
    """

    name: str
    description: str
    low: object = None
    high: object = None
    open: tuple = ()
    choices: tuple = ()
    default: object = "symbolic"
    #: The name of its symbol in terms, if not ``name`` (``T_s`` for ``student_temperature``).
    symbol_name: str | None = None
    positive: bool = False
    #: Values the parameter may not take (singular points of the definition).
    excluded: tuple = ()

    @property
    def symbol(self) -> Any:
        """The sympy symbol standing for the parameter in definitions and terms."""
        return _symbol(self.symbol_name or self.name, self.positive)

    @property
    def allowed(self) -> str:
        """What is allowed, in words: ``"a rational in [0, 1] or a symbol name"``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low = "(" if "low" in self.open else "["
        high = ")" if "high" in self.open else "]"
        if self.low is not None and self.high is not None:
            interval = f"in {low}{self.low}, {self.high}{high}"
        elif self.low is not None:
            interval = (">" if "low" in self.open else ">=") + f" {self.low}"
        elif self.high is not None:
            interval = ("<" if "high" in self.open else "<=") + f" {self.high}"
        else:
            interval = ""
        if self.excluded:
            interval += (
                (" " if interval else "")
                + "other than "
                + " and ".join(str(value) for value in self.excluded)
            )
        return f"a rational {interval} (e.g. 3/10) or a symbol name".replace("  ", " ")

    def resolve(self, value: Any, objective_name: str) -> Any:
        """The value as the definitions take it: a sympy Rational or Symbol, or a choice."""
        where = f"parameter {self.name} of objective {objective_name}"
        if self.choices:
            check_argument(
                isinstance(value, str) and value in self.choices,
                "{} must be {}, got {!r}",
                where,
                self.allowed,
                value,
            )
            return value
        if isinstance(value, sympy.Symbol):
            if value != self.symbol:
                check_symbol_name(value.name, what=where, parameters=parameter_symbols())
            return value
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) and not keyword.iskeyword(text):
                check_argument(
                    text not in _RESERVED,
                    "{} must be {}; {!r} is a symbol of the notation",
                    where,
                    self.allowed,
                    text,
                )
                if text in (self.name, self.symbol.name):
                    return self.symbol  # its own symbol, whatever its name reads as
                check_symbol_name(text, what=where, parameters=parameter_symbols())
                return _symbol(text, self.positive)
            check_argument(
                re.fullmatch(r"[+-]?[0-9]{1,30}(/[0-9]{1,30})?", text) is not None,
                "{} must be {}, got {!r}",
                where,
                self.allowed,
                value,
            )
            exact = parse_rational(text, what=where, decimals=False)
            value = sympy.Rational(exact.numerator, exact.denominator)
        elif isinstance(value, float):
            raise DeriveError(
                f"{where} must be {self.allowed}; a float such as {value!r} is "
                f"inexact, write it as a fraction"
            )
        elif isinstance(value, (int, Fraction)) and not isinstance(value, bool):
            value = sympy.Rational(value.numerator, value.denominator)
        check_argument(
            isinstance(value, sympy.Rational), "{} must be {}, got {!r}", where, self.allowed, value
        )
        check_argument(
            self.low is None or value > self.low or (value == self.low and "low" not in self.open),
            "{} must be {}, got {}",
            where,
            self.allowed,
            value,
        )
        check_argument(
            self.high is None
            or value < self.high
            or (value == self.high and "high" not in self.open),
            "{} must be {}, got {}",
            where,
            self.allowed,
            value,
        )
        check_argument(
            value not in self.excluded, "{} must be {}, got {}", where, self.allowed, value
        )
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "allowed": self.allowed,
            "default": None if self.default is None else str(self.default),
        }


@lru_cache(maxsize=None)
def _symbol(name, positive=False):
    return sympy.Symbol(name, positive=True) if positive else sympy.Symbol(name, real=True)


#: Names a parameter's symbol may not take: the notation's own.
_RESERVED = {
    "N",
    "T",
    "epsilon",
    "z_i",
    "v_i",
    "z_g",
    "v_g",
    "zh_i",
    "vh_i",
    "sigma_z",
    "sigma_v",
    "t_i",
    "w_i",
    "b_i",
    "u_i",
    "c_i",
    "m_i",
    "E",
    "mean",
    "mean_other",
    "exp",
    "log",
    "sqrt",
    "fd",
    "fd_alpha",
}


@dataclass(frozen=True)
class Objective:
    r"""A distillation objective: its name (the key everywhere), a title, its definition in
    LaTeX, its parameters, and ``build(**parameters)``, the exact loss.

    ``labelled`` objectives know the label: they are written with ``z_g, v_g`` and means over
    the other classes, and their gradient has two components (the label's and a generic other
    class's). ``coordinates="standardized"`` objectives are written in the standardized logits
    ``zh_i, vh_i`` (and ``sigma_z``, ``sigma_v``); their gradient w.r.t. the logits follows by
    the chain rule. ``limit(**parameters)`` is the closed-form :math:`T \to \infty` limit of
    the loss, which a statement proves. ``gradient(**parameters)``, when given, is the exact
    gradient w.r.t. a generic student logit ``z_i`` in closed form (cheaper to expand than
    the derivative of the loss); the [expansion] proofs check its terms against the
    derivatives of the loss's terms, so it is never taken on trust.

    What the rest of the toolkit needs to know about an objective is declared here, never in a
    table beside the registry: ``limit_statement`` is the id of the statement whose proof
    checks ``limit`` against the leading term (the registry adds that residual to the proof);
    ``f_derivatives(**parameters)`` gives :math:`(f''(1), f'''(1))` in closed form for a
    member of the f-divergence family (the first-correction statement proves both);
    ``diagnosis`` is what the audit tells a user whose KD loss turns out to be this objective
    (the code change that makes it KD). ``tests/test_registration.py`` lists what a new
    objective still lacks.
    """

    name: str
    title: str
    definition: str
    family: str
    build: Callable[..., Any] = field(repr=False)
    parameters: tuple = ()
    labelled: bool = False
    coordinates: str = "logits"
    reference: str = ""
    limit: Callable[..., Any] | None = field(default=None, repr=False)
    #: The most terms served within about a minute on 2 cores, parameters symbolic.
    max_order: int = MAX_ORDER
    gradient_build: Callable[..., Any] | None = field(default=None, repr=False)
    limit_statement: str = ""
    f_derivatives: Callable[..., Any] | None = field(default=None, repr=False)
    diagnosis: str = ""
    #: Whether the loss sees the logits only through their differences (``loss(z + c 1)`` =
    #: ``loss(z)``): every softmax objective; not logits matching.
    shift_invariant: bool = True

    def resolve(self, values: dict[str, Any] | None = None) -> tuple[tuple[str, Any], ...]:
        """Validated parameter values (defaults filled in), as a tuple of ``(name, value)``."""
        values = dict(values or {})
        known = {p.name for p in self.parameters}
        for name in values:
            check_argument(
                name in known,
                "objective {} has {}, got the parameter {!r}",
                self.name,
                ("parameters " + ", ".join(sorted(known))) if known else "no parameters",
                name,
            )
        resolved = []
        for parameter in self.parameters:
            if parameter.name in values:
                value = parameter.resolve(values[parameter.name], self.name)
            elif parameter.default is None:
                raise DeriveError(
                    f"objective {self.name} needs the parameter {parameter.name} "
                    f"({parameter.allowed}), e.g. --param {parameter.name}="
                    f"{parameter.choices[0] if parameter.choices else '1/2'}"
                )
            elif parameter.default == "symbolic":
                value = parameter.symbol
            else:
                value = parameter.resolve(parameter.default, self.name)
            resolved.append((parameter.name, value))
        return tuple(resolved)

    def variants(self) -> list[dict[str, Any]]:
        """Parameter dicts that cover the objective: one per choice of each categorical
        parameter without a default (``[{}]`` when there is none)."""
        variants: list[dict[str, Any]] = [{}]
        for parameter in self.parameters:
            if parameter.choices and parameter.default is None:
                variants = [
                    dict(v, **{parameter.name: c}) for v in variants for c in parameter.choices
                ]
        return variants

    def variant_name(self, values: dict[str, Any]) -> str:
        """``"standardized-kl (std=unbiased)"``, or the bare name without values."""
        if not values:
            return self.name
        return f"{self.name} (" + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"

    def loss(self, **values: Any) -> Any:
        """The exact loss for these parameter values (defaults for the rest)."""
        return _loss(self.name, self.resolve(values))

    def gradient(self, **values: Any) -> Any:
        """The exact gradient w.r.t. the student logits, by component: ``{"i": ...}`` (a generic
        class), or for a labelled objective ``{"g": ..., "i": ...}`` (the label, and a generic
        other class)."""
        return _gradient(self.name, self.resolve(values))

    def closed_form_limit(self, **values: Any) -> Any:
        """The closed-form high-temperature limit, or ``None`` if the objective gives none."""
        if self.limit is None:
            return None
        return self.limit(**dict(self.resolve(values)))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "family": self.family,
            "definition": self.definition,
            "max_order": self.max_order,
            "parameters": [parameter.to_json() for parameter in self.parameters],
            "labelled": self.labelled,
            "reference": self.reference,
        }


#: Every objective, by name (the key of the CLI, the JSON, the proofs and verify's twins).
OBJECTIVES: dict[str, Objective] = {}


def objective(
    name,
    title,
    *,
    definition,
    family,
    parameters=(),
    labelled=False,
    coordinates="logits",
    reference="",
    limit=None,
    max_order=MAX_ORDER,
    gradient=None,
    limit_statement="",
    f_derivatives=None,
    diagnosis="",
    shift_invariant=True,
):
    """Register the decorated function ``build(**parameters) -> loss`` as objective ``name``;
    ``gradient(**parameters)``, optional, is its gradient w.r.t. ``z_i`` in closed form. The
    other keywords are the fields of :class:`Objective`
    (``shift_invariant=False`` for a loss that sees the raw logits: logits matching)."""
    check_argument(
        family in FAMILIES, "family must be one of {}, got {!r}", ", ".join(FAMILIES), family
    )

    def register(build):
        check_argument(name not in OBJECTIVES, "objective {!r} is registered twice", name)
        OBJECTIVES[name] = Objective(
            name,
            title,
            definition,
            family,
            build,
            tuple(parameters),
            labelled,
            coordinates,
            reference,
            limit,
            max_order,
            gradient,
            limit_statement,
            f_derivatives,
            diagnosis,
            shift_invariant,
        )
        return build

    return register


def objectives_proved_by(statement_id):
    """The objectives whose closed-form limit the statement ``statement_id`` proves."""
    return [o for o in OBJECTIVES.values() if o.limit_statement == statement_id]


def parameter_symbols():
    """``{name: symbol}`` of every parameter of every objective (what :func:`derive.parse`
    accepts besides the notation)."""
    return {
        p.symbol.name: p.symbol for o in OBJECTIVES.values() for p in o.parameters if not p.choices
    }


@lru_cache(maxsize=256)
def _loss(name, resolved):
    return sympy.sympify(OBJECTIVES[name].build(**dict(resolved)))


@lru_cache(maxsize=256)
def _gradient(name, resolved):
    definition = OBJECTIVES[name]
    if definition.gradient_build is not None:
        return {"i": sympy.sympify(definition.gradient_build(**dict(resolved)))}
    loss = _loss(name, resolved)
    if definition.coordinates == "standardized":
        return {"i": standardized_chain_rule(loss)}
    if definition.labelled:
        return {"g": label_derivative(loss), "i": loss.diff(z_i)}
    return {"i": loss.diff(z_i)}


def label_derivative(loss):
    r""":math:`\partial L/\partial z_g` of a loss written with the label's logits ``z_g, v_g``,
    class means (over every class, the label's included) and means over the other classes:
    the explicit dependence on ``z_g``, plus each class mean's term for class ``g``, which is
    the derivative w.r.t. a generic ``z_i`` with the other-class means held fixed, taken at
    :math:`i = g`."""
    others = sorted(loss.atoms(OtherMean), key=sympy.default_sort_key)
    frozen = {mean: sympy.Dummy() for mean in others}
    through_means = (
        loss.xreplace(frozen).diff(z_i).xreplace({dummy: mean for mean, dummy in frozen.items()})
    )
    return loss.diff(z_g) + at_label(through_means)


def standardized_chain_rule(loss):
    r"""The gradient w.r.t. the logits of a loss written in standardized coordinates
    :math:`\hat z_j = (z_j - \langle z\rangle)/\sigma_z` and :math:`\sigma_z`:
    :math:`\partial\hat z_j/\partial z_i = (\delta_{ij} - \frac1N - \hat z_i\hat z_j/N)/\sigma_z`
    and :math:`\partial\sigma_z/\partial z_i = \hat z_i/N`, so

    .. math::

        \frac{\partial L}{\partial z_i}
        = \frac{G_i - \langle G\rangle - \hat z_i\langle G\hat z\rangle}{\sigma_z}
        + \frac{\partial L}{\partial\sigma_z}\frac{\hat z_i}{N},
        \qquad G_i = \frac{\partial L}{\partial \hat z_i}.

    The constraints :math:`\langle\hat z\rangle = 0`, :math:`\langle\hat z^2\rangle = 1` that the
    means apply change :math:`G` only along :math:`1` and :math:`\hat z`, which the projection
    removes.
    """
    coordinate = loss.diff(zh_i)
    projected = coordinate - ClassMean(coordinate) - zh_i * ClassMean(coordinate * zh_i)
    return projected / sigma_z + loss.diff(sigma_z) * zh_i / N
