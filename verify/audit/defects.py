r"""Known defects of known objectives, as exact torch models the gradient is compared with.

When no registered objective fits, the audit tries these: each is a registered objective
written with one well-known mistake, as a per-example loss in torch. Its gradient at the
audited rows and temperatures (autograd, float64) is compared with the measured one after a
power of :math:`T` and a weight are fitted (:func:`match_defects`): the model is exact, so the
match must hold to round-off, :data:`~verify.tolerances.RESOLUTION_FACTOR` times the rounding
bound of the measured gradient. Parameters: the teacher's ``k`` of a top-k truncation is read
off the gradient's signs at the highest temperature (:math:`T(q - \tilde p)` is negative exactly
on the k kept classes) and its neighbours tried; an ``eps`` is searched on a log scale.

Examples
========

>>> [defect.cause for defect in DEFECTS][:3]
['kl-div-probabilities', 'log-target-probabilities', 'one-sided-temperature']
>>> [(defect.cause, defect.objective, defect.parameter) for defect in DEFECTS][3:]
[('top-k-teacher', 'kl', 'k'), ('eps-denominator', 'dist', 'eps')]
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..tolerances import RESOLUTION_FACTOR, SLOPE_TOLERANCE
from .identification import Match, _golden

__all__ = ["Defect", "DEFECTS", "match_defects", "correlation_norms"]


@dataclass(frozen=True)
class Defect:
    """A known objective with a known defect: ``loss(student, teacher, T, value)`` per example
    (``value`` its one parameter, or ``None``), the registered ``objective`` it is a defect of,
    and how its parameter is found: ``values(y_high)`` lists candidates (``y_high`` the
    measured rows at the highest temperature), or ``search`` is a ``log10`` interval."""

    cause: str
    objective: str
    loss: Callable
    parameter: str | None = None
    values: Callable | None = None
    search: tuple | None = None


# Every model is called once for all temperatures: logits [J, R, N], temperature [J, 1, 1];
# its per-example value is [J, R], so its own powers of T use _row(temperature), [J, 1].


def _log_softmax(logits, temperature):
    return F.log_softmax(logits / temperature, dim=-1)


def _row(temperature):
    return temperature[..., 0]


def _kl_div_probabilities(student, teacher, temperature, value):
    # F.kl_div(input, target) = target * (log target - input): here input is q, not log q.
    student_probabilities = F.softmax(student / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher / temperature, dim=-1)
    return _row(temperature) ** 2 * F.kl_div(
        student_probabilities, teacher_probabilities, reduction="none"
    ).sum(-1)


def _log_target_probabilities(student, teacher, temperature, value):
    # log_target=True reads the target as log p: exp(p) * (p - log q) for probabilities p.
    teacher_probabilities = F.softmax(teacher / temperature, dim=-1)
    return _row(temperature) ** 2 * F.kl_div(
        _log_softmax(student, temperature), teacher_probabilities, reduction="none", log_target=True
    ).sum(-1)


def _teacher_unsoftened(student, teacher, temperature, value):
    teacher_probabilities = F.softmax(teacher, dim=-1)
    return _row(temperature) ** 2 * F.kl_div(
        _log_softmax(student, temperature), teacher_probabilities, reduction="none"
    ).sum(-1)


def _top_k_teacher(student, teacher, temperature, value):
    k = int(value)
    kept = teacher.topk(k, dim=-1).indices
    mask = torch.zeros_like(teacher, dtype=torch.bool).scatter(-1, kept, True)
    log_teacher = _log_softmax(teacher.masked_fill(~mask, -math.inf), temperature)
    probabilities = log_teacher.exp()
    terms = torch.where(
        mask,
        probabilities * (log_teacher - _log_softmax(student, temperature)),
        torch.zeros_like(probabilities),
    )
    return _row(temperature) ** 2 * terms.sum(-1)


def _pearson_with_eps(student, teacher, temperature, value):
    # DIST's inter-class term: 1 - pearson(softmax(z/T), softmax(v/T)), eps in the denominator.
    a, b = F.softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1)
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return 1 - (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + value)


def _top_k_values(y_high):
    """The k of a truncated teacher: :math:`T(q - \\tilde p)` is negative on the k kept
    classes (positive on them for a negated loss), so count them per row."""
    negative = (y_high < 0).sum(-1)
    positive = (y_high > 0).sum(-1)
    classes = y_high.shape[-1]
    values = set()
    for counts in (negative, positive):
        k = int(torch.mode(counts).values)
        values |= {k - 1, k, k + 1}
    return sorted(k for k in values if 1 <= k < classes)


#: The catalogue, tried in this order.
DEFECTS = (
    Defect("kl-div-probabilities", "kl", _kl_div_probabilities),
    Defect("log-target-probabilities", "kl", _log_target_probabilities),
    Defect("one-sided-temperature", "kl", _teacher_unsoftened),
    Defect("top-k-teacher", "kl", _top_k_teacher, "k", values=_top_k_values),
    Defect("eps-denominator", "dist", _pearson_with_eps, "eps", search=(-16.0, -1.0)),
)


def correlation_norms(student, teacher, temperature):
    """Mean over rows of the product of the centred softmaxes' norms (the denominator DIST's
    eps is added to) at ``temperature``."""
    a, b = F.softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1)
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return float((a.norm(dim=-1) * b.norm(dim=-1)).mean())


def _model_gradients(defect, value, student, teacher, temperatures):
    """The model's gradient at every temperature, ``[J, R, N]``: one autograd call."""
    grid = torch.tensor(temperatures, dtype=torch.float64)[:, None, None]
    leaf = student.detach().expand(len(temperatures), *student.shape).clone()
    leaf.requires_grad_(True)
    teachers = teacher.expand(len(temperatures), *teacher.shape)
    (gradient,) = torch.autograd.grad(defect.loss(leaf, teachers, grid, value).sum(), leaf)
    return gradient


def _compare(y, model, temperatures):
    """Fit :math:`y \\approx w\\,T^b m` (``b`` a half-integer from the projections' log-log
    slope); returns ``(error, weight, b)``, the error the rms over temperatures of the relative
    residual."""
    norms = y.flatten(1).norm(dim=1)
    projections = (y * model).sum((1, 2)) / model.pow(2).sum((1, 2)).clamp_min(1e-300)
    if not (bool((projections > 0).all()) or bool((projections < 0).all())) or not bool(
        torch.isfinite(model).all()
    ):
        return math.inf, math.nan, math.nan
    grid = torch.tensor(temperatures, dtype=torch.float64).log()
    design = torch.stack([torch.ones_like(grid), grid], dim=1)
    slope = float(torch.linalg.lstsq(design, projections.abs().log()[:, None]).solution[1, 0])
    power = round(2.0 * slope) / 2.0
    if abs(slope - power) > SLOPE_TOLERANCE:
        return math.inf, math.nan, math.nan
    scaled = model * torch.exp(grid * power)[:, None, None] / norms[:, None, None]
    target = y / norms[:, None, None]
    weight = float((scaled * target).sum() / scaled.pow(2).sum())
    error = float((target - weight * scaled).flatten(1).norm(dim=1).pow(2).mean().sqrt())
    return error, weight, power


def match_defects(y, temperatures, rounding, *, student, teacher, check_time=None):
    """The first defect whose model matches the per-example gradients ``y`` ``[J, R, N]`` at
    ``temperatures`` within :data:`~verify.tolerances.RESOLUTION_FACTOR` times the rounding
    bound ``rounding`` (``[J]``, relative), as a :class:`~.identification.Match` (its
    ``defect`` set), or ``None``."""
    tolerance = RESOLUTION_FACTOR * float(rounding.pow(2).mean().sqrt())
    for defect in DEFECTS:
        if check_time is not None:
            check_time()

        def error(value, defect=defect):
            model = _model_gradients(defect, value, student, teacher, temperatures)
            return _compare(y, model, temperatures)

        if defect.search is not None:
            low, high = defect.search
            points = torch.linspace(low, high, 31, dtype=torch.float64).tolist()
            errors = [error(10.0**p)[0] for p in points]
            index = min(range(len(points)), key=lambda i: errors[i])
            if not math.isfinite(errors[index]):
                continue
            best = _golden(
                lambda p: error(10.0**p)[0],
                points[max(index - 1, 0)],
                points[min(index + 1, len(points) - 1)],
            )
            values = [10.0**best]
        elif defect.values is not None:
            values = defect.values(y[-1])
        else:
            values = [None]
        results = [(error(value), value) for value in values]
        (found, weight, power), value = min(results, key=lambda item: item[0][0])
        if found <= tolerance:
            parameters = () if defect.parameter is None else ((defect.parameter, value),)
            return Match(
                defect.objective,
                defect.objective,
                parameters,
                weight,
                power,
                found,
                tolerance,
                defect=defect.cause,
            )
    return None
