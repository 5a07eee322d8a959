r"""Residuals of a stated low-temperature limit against the derived transseries.

At concrete rational logits, :func:`closed_form_residuals` derives the transseries of the
objective (:func:`~derive.lowtemp.engine.transseries`) and returns, for every component,
residuals that vanish iff the stated :class:`~derive.lowtemp.limits.LimitForm` is right
there: no coefficient at a negative gap (a finite limit), no power of :math:`T` below the
stated one in the polynomial part, the coefficient of :math:`T^k` minus the stated limit,
and, at logits with unique argmaxes and an exponential first correction, the first gap minus
the stated one.

Examples
========

>>> residuals = closed_form_residuals("kl", "gradient", [0, -1, -2], [-1, 0, -3])
>>> sorted(set(residuals.values()))
[0]
"""

import sympy

from .engine import _powers as _polynomial_powers
from .engine import transseries
from .limits import LOW_TEMPERATURE
from .tropical import argmax_set

__all__ = ["closed_form_residuals", "components"]


def components(objective, quantity, classes):
    """The 1-based gradient components to check (every class), or ``[1]`` for the loss."""
    return list(range(1, classes + 1)) if quantity == "gradient" else [1]


def closed_form_residuals(objective, quantity, student, teacher, parameters=None):
    """``{name: residual}`` of the stated limit at these logits (see the module docstring)."""
    form = LOW_TEMPERATURE[objective][quantity]
    values = {k: sympy.Rational(v) if k != "std" else v for k, v in (parameters or {}).items()}
    student = [sympy.Rational(x) for x in student]
    teacher = [sympy.Rational(x) for x in teacher]
    sides = {"student": student, "teacher": teacher}
    if any(len(argmax_set(sides[side])) > 1 for side in form.unique):
        return {}
    where = (
        f"{objective} {quantity} at z={[str(x) for x in student]}, v={[str(x) for x in teacher]}"
    )
    residuals, gaps = {}, []
    for component in components(objective, quantity, len(student)):
        series = transseries(
            objective, quantity, student, teacher, parameters=parameters, component=component
        )
        name = f"{where}" + (f", component {component}" if quantity == "gradient" else "")
        residuals[f"{name}: terms at negative gaps"] = sympy.Integer(
            sum(1 for gap in series.terms if gap < 0)
        )
        lower = [k for k in _powers(series) if k < form.power]
        residuals[f"{name}: powers of T below {form.power}"] = sympy.Integer(len(lower))
        stated = form.value(student, teacher, values, component - 1, sympy.log)
        residuals[f"{name}: coefficient of T^{form.power} - limit"] = sympy.nsimplify(
            sympy.expand(sympy.expand_log(series.coefficient(form.power) - stated, force=True))
        )
        if series.first_gap is not None and len(_powers(series)) <= 1:
            gaps.append(series.first_gap)
    unique = len(argmax_set(student)) == 1 and len(argmax_set(teacher)) == 1
    if form.gap is not None and unique and gaps:
        residuals[f"{where}: first gap - stated gap"] = min(gaps) - form.gap(
            student, teacher, values
        )
    return residuals


def _powers(series):
    return _polynomial_powers(series.polynomial_part)
