r"""Which registered objective the loss is: fitting every candidate to the gradient to order
:math:`T^{-4}`.

On the identification grid :math:`T_1 < \dots < T_J` the audit has the per-example gradient
:math:`y(T_j) = g(T_j)\,T_j^{-a}/w_r` (row weights :math:`w_r`: :math:`1/B` for a batch, the
measured normalization for tokens). A candidate predicts
:math:`w\sum_{k<K} T^{-k} G_k(\theta)` (:mod:`.candidates`); the fit minimizes

.. math::

    e(w, \theta)^2 = \frac1J\sum_j \frac{\|y(T_j) - w\,x_j(\theta)\|^2}{\|y(T_j)\|^2},

in closed form when the parameters enter linearly (DKD's :math:`\alpha, \beta`; the hard-label
weight of ``ce-mixture``; the generic f-divergence's derivatives, which carry the weight), and
otherwise by a grid over the parameter's allowed range refined by golden-section search, the
weight in closed form at every point. ``match_error`` is :math:`e` at the optimum.

A candidate is *accepted* when :math:`e` is within its tolerance: the part of the series left
out, :math:`\rho^K/(1-\rho)` with :math:`\rho = \max_k t_k^{1/k}` and :math:`t_k` the size of
:math:`T_1^{-k}G_k` relative to :math:`G_0` (a geometric bound on the tail; not accepted if
:math:`\rho \ge 1/2`), plus the rounding bound of the measured gradient
(:class:`~.probing.RoundingModel`). Candidates are tried by *level* (number of free parameters)
and the first level with an accepted candidate wins: a loss that is KD is reported as ``kl``,
not as a JSD at :math:`\beta \to 0` or a skew KL at :math:`\alpha = 0`. Several accepted
candidates at that level are an *ambiguity*, reported as such. Within the f-divergences,
:math:`G_0` and :math:`G_1` fix only :math:`w f''(1)` and :math:`f'''(1)/f''(1)`; :math:`G_2`
(:math:`f''''(1)`) separates, e.g., JSD_β from the skew KL with :math:`1 + 2\alpha = 1 + \beta`.
"""

import math
from dataclasses import dataclass

import torch

from .candidates import Evaluated, catalogue, structure

__all__ = ["Match", "Identification", "Fitter", "identify"]

# Points of the grid over a parameter's range before the golden-section refinement.
_GRID = 33
# Golden-section iterations: the bracket shrinks by 0.618 each, to 1e-9 of its width.
_GOLDEN_ITERATIONS = 45
# Finer grids for a parameter inside the generators: each 8 times finer, to 1e-6 of the range.
_REFINEMENTS = 6
# A fitted parameter may pass its registered bound by this much (the fit's own resolution).
_RANGE_SLACK = 1e-3
# Above this ratio of successive terms the tail bound is not trusted.
_CONVERGENCE = 0.5


@dataclass(frozen=True)
class Match:
    """One candidate fitted: its parameters (categorical choices included), weight, the
    exponent ``a`` the gradient was rescaled by, the relative residual and its tolerance."""

    objective: str
    label: str
    parameters: tuple
    weight: float
    exponent: float
    error: float
    tolerance: float
    in_range: bool = True
    defect: str | None = None

    @property
    def accepted(self):
        return self.in_range and math.isfinite(self.error) and self.error <= self.tolerance

    def to_json(self):
        return {
            "objective": self.objective,
            "parameters": dict(self.parameters),
            "weight": _rounded(self.weight),
            "match_error": _rounded(self.error, 3),
            "tolerance": _rounded(self.tolerance, 3),
        }


def _rounded(value, digits=6):
    return None if value is None or not math.isfinite(value) else float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class Identification:
    """The accepted matches of the winning level (``best`` first), and every fit tried."""

    accepted: tuple
    fitted: tuple

    @property
    def best(self):
        return self.accepted[0] if self.accepted else None

    @property
    def closest(self):
        """The fit nearest to acceptance (by error over tolerance)."""
        finite = [m for m in self.fitted if math.isfinite(m.error)]
        return min(finite, key=lambda m: m.error / max(m.tolerance, 1e-300), default=None)

    @property
    def ambiguous(self):
        return len({m.label for m in self.accepted}) > 1


class Fitter:
    """Fits candidates to ``y`` ``[J, R, N]`` (per-example gradients rescaled by
    :math:`T^{-a}`) at ``temperatures``; ``rounding`` is the relative rounding bound of each
    ``y(T_j)``, ``[J]``; the rows' logits and labels are where the terms are evaluated."""

    def __init__(self, y, temperatures, rounding, *, exponent, student, teacher, labels):
        self.temperatures = torch.tensor(temperatures, dtype=torch.float64)
        self.exponent = exponent
        norms = y.flatten(1).norm(dim=1)
        self.weights = 1.0 / torch.where(norms > 0, norms, torch.ones_like(norms))  # [J]
        self.y = (y * self.weights[:, None, None]).flatten()
        self.count = len(temperatures)
        self.rounding = float(rounding.pow(2).mean().sqrt())
        self.rows = (student.detach().clone().requires_grad_(True), teacher, labels)
        self._evaluated, self._cache = {}, {}

    def evaluated(self, candidate):
        if candidate not in self._evaluated:
            self._evaluated[candidate] = Evaluated(candidate, *self.rows, cache=self._cache)
        return self._evaluated[candidate]

    def _columns(self, terms):
        """``sum_k T_j^-k terms[k]`` per temperature, scaled like ``y``, flattened."""
        powers = self.temperatures[:, None] ** -torch.arange(terms.shape[0], dtype=torch.float64)
        values = torch.einsum("jk,krn->jrn", powers, terms)
        return (values * self.weights[:, None, None]).flatten()

    def _residual(self, prediction):
        return float((self.y - prediction).norm()) / math.sqrt(self.count)

    def fit(self, candidate, *, fixed=None, weight=None):
        """The best :class:`Match` of ``candidate``; ``fixed`` maps parameter names to values
        and ``weight`` fixes the weight (a declared objective)."""
        shape = structure(candidate.objective, candidate.choices)
        fixed = dict(fixed or {})
        free = [name for name in shape.names if name not in fixed]
        evaluated = self.evaluated(candidate)
        if shape.linear:
            values, fitted_weight = self._linear(shape, evaluated, fixed, free, weight)
        elif len(free) == 1:
            values, fitted_weight = self._search(shape, evaluated, fixed, free[0], weight)
        elif not free:
            values = {}
            fitted_weight = self._weight(
                self._columns(evaluated.terms(_ordered(shape, fixed))), weight
            )
        else:  # several parameters entering non-linearly: not fitted
            return Match(
                candidate.objective,
                candidate.label,
                candidate.choices,
                math.nan,
                self.exponent,
                math.inf,
                0.0,
                False,
            )
        values = {**fixed, **values}
        terms = evaluated.terms(_ordered(shape, values))
        error = self._residual(fitted_weight * self._columns(terms))
        tolerance = _truncation(terms, float(self.temperatures[0])) + self.rounding
        parameters = tuple(candidate.choices) + tuple(
            (name, float(values[name])) for name in shape.names
        )
        return Match(
            candidate.objective,
            candidate.label,
            parameters,
            float(fitted_weight),
            self.exponent,
            error,
            tolerance,
            _in_range(shape, values),
        )

    def _weight(self, column, weight):
        if weight is not None:
            return float(weight)
        size = float(column @ column)
        return float(column @ self.y) / size if size > 0 else 0.0

    def _linear(self, shape, evaluated, fixed, free, weight):
        """Least squares over the monomials' coefficients (degree <= 1 in each parameter)."""
        columns = {}
        for exponents, tensor in evaluated.basis().items():
            factor, key = 1.0, []
            for name, exponent in zip(shape.names, exponents):
                if name in fixed:
                    factor *= float(fixed[name]) ** exponent
                else:
                    key.append(exponent)
            key = tuple(key)
            columns[key] = columns.get(key, 0) + factor * tensor
        constant = tuple(0 for _ in free)
        names = [key for key in columns if key != constant]
        matrix = (
            torch.stack([self._columns(columns[key]) for key in names], dim=1) if names else None
        )
        base = self._columns(columns[constant]) if constant in columns else None
        target = self.y if base is None or weight is None else self.y - weight * base
        if base is not None and weight is None:
            matrix = base[:, None] if matrix is None else torch.cat([base[:, None], matrix], 1)
        if matrix is None:
            return {}, self._weight(base, weight)
        solution = torch.linalg.lstsq(matrix, target[:, None]).solution[:, 0].tolist()
        if base is not None and weight is None:
            fitted_weight, solution = solution[0], solution[1:]
            scale = fitted_weight if fitted_weight != 0 else math.nan
        else:  # the weight is declared, or carried by the parameters (homogeneous)
            fitted_weight = 1.0 if weight is None else float(weight)
            scale = fitted_weight
        values = {}
        for key, coefficient in zip(names, solution):
            values[free[key.index(1)]] = coefficient / scale
        for name in free:
            values.setdefault(name, 0.0)
        return values, fitted_weight

    def _search(self, shape, evaluated, fixed, name, weight):
        """One parameter entering non-linearly: a grid over its range, then golden section."""
        parameter = shape.parameters[shape.names.index(name)]
        low, high, logarithmic = _range(parameter)
        if not shape.polynomial:
            return self._search_batched(
                shape, evaluated, fixed, name, weight, (low, high, logarithmic)
            )
        columns = [(powers, self._columns(tensor)) for powers, tensor in evaluated.basis().items()]

        def column_at(value):  # x(theta) = sum_m theta^m X_m, the columns computed once
            values = _ordered(shape, {**fixed, name: value})
            return sum(_power(values, powers) * column for powers, column in columns)

        def error(point):
            column = column_at(math.exp(point) if logarithmic else point)
            residual = self._residual(self._weight(column, weight) * column)
            return residual if math.isfinite(residual) else math.inf  # overflow at the ends

        points = torch.linspace(low, high, _GRID, dtype=torch.float64).tolist()
        errors = [error(point) for point in points]
        index = min(range(len(points)), key=lambda i: errors[i])
        left, right = points[max(index - 1, 0)], points[min(index + 1, len(points) - 1)]
        best = _golden(error, left, right)
        value = math.exp(best) if logarithmic else best
        return {name: value}, self._weight(column_at(value), weight)

    def _search_batched(self, shape, evaluated, fixed, name, weight, interval):
        """A parameter inside the generators: grids of values evaluated at once (one backward
        pass each), every grid 8 times finer around the best point of the last."""
        low, high, logarithmic = interval
        points = torch.linspace(low, high, _GRID, dtype=torch.float64)
        for _ in range(_REFINEMENTS + 1):
            values = [
                _ordered(shape, {**fixed, name: math.exp(p) if logarithmic else p})
                for p in points.tolist()
            ]
            errors = []
            for terms in evaluated.terms_many(values):
                if terms is None:
                    errors.append(math.inf)
                    continue
                column = self._columns(terms)
                residual = self._residual(self._weight(column, weight) * column)
                errors.append(residual if math.isfinite(residual) else math.inf)
            index = min(range(len(errors)), key=lambda i: errors[i])
            best, step = float(points[index]), float(points[1] - points[0])
            points = torch.linspace(
                max(low, best - step), min(high, best + step), 17, dtype=torch.float64
            )
        value = math.exp(best) if logarithmic else best
        column = self._columns(evaluated.terms(_ordered(shape, {**fixed, name: value})))
        return {name: value}, self._weight(column, weight)


def _power(values, exponents):
    product = 1.0
    for value, exponent in zip(values, exponents):
        if exponent:
            product *= value**exponent
    return product


def _ordered(shape, values):
    return tuple(float(values[name]) for name in shape.names)


def _range(parameter):
    """``(low, high, logarithmic)``: the search interval of a parameter (log for a positive
    one without an upper bound)."""
    low = None if parameter is None or parameter.low is None else float(parameter.low)
    high = None if parameter is None or parameter.high is None else float(parameter.high)
    if low is not None and high is not None:
        margin = 1e-9 * (high - low)
        return (
            low + margin if "low" in parameter.open else low,
            high - margin if "high" in parameter.open else high,
            False,
        )
    if low == 0.0 and "low" in parameter.open:
        return math.log(1e-2), math.log(1e2), True
    if low is not None:
        return low, low + 20.0, False
    if high is not None:
        return high - 20.0, high, False
    return -10.0, 10.0, False


def _golden(function, left, right):
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = left, right
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = function(c), function(d)
    for _ in range(_GOLDEN_ITERATIONS):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = function(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = function(d)
    return c if fc <= fd else d


def _truncation(terms, lowest):
    r"""A bound on the terms left out, relative to :math:`G_0`, at the lowest temperature:
    :math:`\rho^K/(1-\rho)` with :math:`\rho = \max_k t_k^{1/k}`."""
    size = float(terms[0].norm())
    if size == 0:
        return 0.0
    rate = max(
        (float(terms[k].norm()) * lowest**-k / size) ** (1.0 / k) for k in range(1, terms.shape[0])
    )
    if rate >= _CONVERGENCE:
        return -math.inf  # never accepted: the series does not converge fast enough here
    return rate ** terms.shape[0] / (1.0 - rate)


def _in_range(shape, values):
    for name, parameter in zip(shape.names, shape.parameters):
        if parameter is None:
            continue
        value = float(values[name])
        if not math.isfinite(value):
            return False
        slack = _RANGE_SLACK * max(1.0, abs(value))
        if parameter.low is not None and value < float(parameter.low) - slack:
            return False
        if parameter.high is not None and value > float(parameter.high) + slack:
            return False
    return True


def identify(fitter, *, candidates=None, check_time=None):
    """Fit the candidates level by level; stop at the first level with an accepted match.

    A candidate's terms are expanded when its level (number of continuous parameters) comes;
    one that turns out to be a generic family is deferred to the end.
    """
    candidates = catalogue() if candidates is None else candidates
    pending = sorted(candidates, key=lambda c: c.parameter_count)
    fitted, deferred = [], []
    while pending or deferred:
        if pending:
            level = pending[0].parameter_count
            group = [c for c in pending if c.parameter_count == level]
            pending = pending[len(group) :]
        else:
            group, deferred = deferred, []
        matches = []
        for candidate in group:
            if check_time is not None:
                check_time()
            if pending and candidate.level >= 100:
                deferred.append(candidate)
                continue
            matches.append(fitter.fit(candidate))
        fitted += matches
        accepted = sorted((m for m in matches if m.accepted), key=lambda m: m.error)
        if accepted:
            return Identification(tuple(accepted), tuple(fitted))
    return Identification((), tuple(fitted))
