r"""A declared objective: ``--expect NAME[:k=v,...]`` and ``--weight W``.

The audit's verdict is "consistent" iff the loss is the declared objective with the declared
weight; without a declaration, Hinton's KD (``kl``) at weight 1.
"""

import math
import re
from dataclasses import dataclass

import sympy

import derive
from derive import OBJECTIVES
from derive._numbers import _LOGITS, CONSTANTS, parse_assignments, parse_rational

from .._errors import VerifyError, check_argument
from .candidates import Candidate

__all__ = ["Expectation", "parse_expectation"]


@dataclass(frozen=True)
class Expectation:
    """A declared objective: its candidate (categorical choices fixed), the continuous
    parameters fixed by the declaration (the others are fitted), and the weight."""

    candidate: Candidate
    fixed: tuple
    weight: float
    #: The declared power of T multiplying the objective: 0 for the objective as registered
    #: (KD in Hinton's T^2 convention, logits matching free of T), -2 for a loss written
    #: without T^2 (textbrewer's kd_ce_loss, or its MSE of logits/T).
    power: float = 0.0

    @property
    def objective(self):
        return self.candidate.objective

    def to_tuple(self):
        return (self.objective, tuple(self.candidate.choices) + self.fixed, self.weight)


def parse_expectation(text=None, weight=1.0):
    """``"NAME[:k=v,...]"`` (``None``: ``kl``) and a weight as an :class:`Expectation`.

    Values are numbers (``0.3`` or ``3/10``) or, for a categorical parameter, a choice;
    parameters left out take the objective's default, or are fitted when it has none.

    >>> parse_expectation("jsd:beta=0.3", 0.5).to_tuple()
    ('jsd', (('beta', 0.3),), 0.5)
    >>> parse_expectation("dkd").to_tuple()
    ('dkd', (('alpha', 1.0), ('beta', 8.0)), 1.0)
    >>> parse_expectation("jsd:gamma=1")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    verify._errors.VerifyError: --expect jsd: objective jsd has parameters beta, got the parameter
    'gamma'
    """
    check_argument(
        text is None or isinstance(text, str),
        "expect must be NAME[:k=v,...] with NAME one of {}, got {!r}",
        ", ".join(OBJECTIVES),
        text,
    )
    check_argument(
        _is_real(weight) and math.isfinite(_float(weight)) and weight > 0,
        "weight must be a finite number > 0, got {}",
        _shown(weight),
    )
    name, _, rest = (text or "kl").strip().partition(":")
    name = name.strip()
    check_argument(
        name in OBJECTIVES,
        "expect must be NAME[:k=v,...] with NAME one of {}, got {!r}",
        ", ".join(OBJECTIVES),
        text,
    )
    definition = OBJECTIVES[name]
    given = parse_assignments(
        filter(None, (part.strip() for part in rest.split(","))),
        what=f"--expect {name}",
        error=VerifyError,
    )
    known = {p.name for p in definition.parameters}
    for key in given:
        check_argument(
            key in known,
            "--expect {}: objective {} has {}, got the parameter {!r}",
            name,
            name,
            ("parameters " + ", ".join(sorted(known))) if known else "no parameters",
            key,
        )
    choices, fixed = [], []
    for parameter in definition.parameters:
        value = given.get(parameter.name, parameter.default)
        if parameter.choices:
            check_argument(
                value is not None,
                "--expect {}: give the parameter {} ({})",
                name,
                parameter.name,
                parameter.allowed,
            )
        if value in (None, "symbolic"):
            continue  # fitted
        # A plain name (not a constant or a logit, which the parser names as such) is no
        # number: --expect fixes parameters to values, it keeps none symbolic.
        check_argument(
            parameter.choices
            or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(value))
            or str(value).lower() in _NOT_NAMES
            or str(value) in CONSTANTS
            or _LOGITS.fullmatch(str(value)) is not None,
            "--expect {}: parameter {} must be a number, got {!r}",
            name,
            parameter.name,
            value,
        )
        try:
            resolved = parameter.resolve(
                _exact(str(value), f"--expect {name}: {parameter.name}"), name
            )
            problem = None
        except derive.DeriveError as error:
            resolved, problem = None, error
        check_argument(problem is None, "--expect {}: {}", name, problem)
        if parameter.choices:
            choices.append((parameter.name, resolved))
            continue
        check_argument(
            isinstance(resolved, sympy.Rational),
            "--expect {}: parameter {} must be a number, got {!r}",
            name,
            parameter.name,
            value,
        )
        fixed.append((parameter.name, float(resolved)))
    return Expectation(Candidate(name, tuple(choices)), tuple(fixed), float(weight))


def _exact(text, name):
    """``"0.3"`` as ``"3/10"`` (derive takes exact rationals, through the one parser
    :func:`derive._numbers.parse_rational`); a name or a choice unchanged."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text) and text.lower() not in _NOT_NAMES:
        return text
    return str(parse_rational(text, what=name, error=VerifyError))


# Texts that look like names but are numbers to float(): refused as numbers, not as names.
_NOT_NAMES = {"nan", "inf", "infinity"}


def _shown(value):
    """``repr(value)``, a huge integer by its number of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def _float(value):
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
