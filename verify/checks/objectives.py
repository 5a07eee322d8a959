r"""The objective families against autograd: limits, first corrections and their refutations.

For an objective of :data:`derive.OBJECTIVES` and its torch twin (:data:`verify.losses.TWINS`)
the check measures, on hypothesis-drawn logits, the remainders

.. math::

    \Big\|\nabla L(T) - \sum_{k<K} T^{-k} G_k\Big\|, \qquad \Big|L(T) - \sum_{k<K} T^{-k} L_k\Big|

with derive's terms at the twin's parameters, at temperatures from :math:`10\times` the logits'
spread to :math:`10^8`, all in one autograd call, and fits their log-log slope: it must be
:math:`-K` (the next even order for two classes when the objective is symmetric in the
classes) to within :data:`~verify.tolerances.SLOPE_TOLERANCE`. :math:`K = 1` checks the
limit, :math:`K = 2` the first correction. Round-off is measured by running the same
computation in float32 and float64 (:func:`~verify.checks.temperature.measured_with_roundoff`'s
method); the temperature where it takes over is reported as the dtype's floor.

Refutations plant the wrong claim and must fail: forward KL's gradient with reverse KL's
:math:`T^{-1}` term decays only as :math:`T^{-1}`; JSD_β at β = 3/10 does not tend to the limit
at β = 1/2.

Examples
========

>>> from verify.checks.objectives import CASES
>>> [case.objective for case in CASES["skew-limit"]]
['skew-kl', 'skew-reverse-kl']
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import sympy
import torch
from hypothesis import assume
from hypothesis import strategies as st

import derive
from derive import OBJECTIVES

from ..convergence import leading_order, measure_convergence
from ..losses import TWINS
from ..search import draw_examples, find_counterexample
from ..strategies import distillation_problems, logit_vectors
from ..symbolic import SymbolicFunction, gradient_values
from ..tolerances import SLOPE_TOLERANCE
from ._common import CheckContext, Counterexample, conclude, numeric_check, vector
from .expansion import temperature_grid
from .temperature import too_slow

__all__ = ["Case", "CASES", "objective_terms", "twin_remainders", "run_objective_check"]

#: Slopes are fitted over the last decade of each resolved range (as for [expansion]).
WINDOW_DECADES = 1.0
_BATCH = 4
_MAXIMUM_PROBLEMS = 64
#: Objectives whose value is not symmetric under a relabelling of the classes: with two
#: classes their odd orders need not vanish.
_ASYMMETRIC = {"hot-teacher", "ce-mixture", "dkd-tckd", "dkd-nckd", "dkd"}


@lru_cache(maxsize=None)
def objective_terms(name, quantity, order, parameters=(), substitution=()):
    """derive's first ``order`` terms of ``quantity`` of objective ``name`` at ``parameters``
    (``((key, "3/10"), ...)``), symbols in ``substitution`` replaced by their values."""
    values = {
        derive.f_derivative(int(key[1:])): sympy.Rational(str(value)) for key, value in substitution
    }
    terms = []
    for term in derive.expand(
        quantity, order=order, objective=name, parameters=dict(parameters) or None
    ).terms:
        expr = term.expr
        if isinstance(expr, dict):
            terms.append({k: sympy.expand(e.xreplace(values)) for k, e in expr.items()})
        else:
            terms.append(sympy.expand(expr.xreplace(values)))
    return tuple(terms)


@dataclass(frozen=True)
class Case:
    """One measured remainder: the twin of ``objective`` (at ``parameters`` if given; minus the
    twin of ``minus`` if given) minus ``terms`` (a function ``order -> (gradient terms, loss
    terms)``, derive's own terms by default), fitted after each of ``orders`` terms."""

    objective: str
    orders: tuple
    terms: object = field(default=None, repr=False)
    description: str = ""
    parameters: tuple = ()
    minus: str = None
    #: Standardized logits of two classes are +-1 whatever the logits: the loss is constant,
    #: and there is nothing to measure below three classes.
    min_classes: int = 2

    @property
    def twin(self):
        twin = TWINS[self.objective]
        return twin.with_parameters(**dict(self.parameters)) if self.parameters else twin

    def value(self, student, teacher, temperature, labels):
        value = self.twin(student, teacher, temperature, labels)
        if self.minus is not None:
            value = value - TWINS[self.minus](student, teacher, temperature, labels)
        return value

    def derived(self, order):
        if self.terms is not None:
            return self.terms(order)
        twin = self.twin
        key = (twin.parameters, twin.substitution)
        return (
            objective_terms(self.objective, "gradient", order, *key),
            objective_terms(self.objective, "loss", order, *key),
        )

    @property
    def label(self):
        return self.description or self.twin.label

    @property
    def symmetric(self):
        """Whether the objective is symmetric in the classes (two classes: odd orders vanish)."""
        return not ({self.objective, self.minus} & _ASYMMETRIC)


def twin_remainders(case, student, teacher, labels, temperatures, dtype):
    r"""``{(quantity, K): (measured [T], roundoff [T])}``: norms over the batch of the
    remainders after ``K`` terms, and their round-off: float32 against float64 (float64 by
    float32's, scaled by the ratio of the machine epsilons), but never below the rounding of
    the quantities the remainder is the difference of,
    :math:`\varepsilon\,(2N + 10)\,\|\,|L(T)| + \sum_k |T^{-k} L_k|\,\|` (where float32
    happens to be exact, as for logits whose remainder vanishes identically)."""
    gradient_terms, loss_terms = case.derived(max(case.orders))
    classes = student.shape[-1]

    def compute(working):
        z, v = student.to(working), teacher.to(working)
        count, batch = len(temperatures), z.shape[0]
        column = torch.tensor(temperatures, dtype=working, device=z.device).repeat_interleave(batch)
        leaf = z.repeat(count, 1).detach().requires_grad_(True)
        repeated_labels = labels.repeat(count)
        losses = case.value(leaf, v.repeat(count, 1), column, repeated_labels)
        (gradients,) = torch.autograd.grad(losses.sum(), leaf)
        results = {}
        for quantity, terms, measured in (
            ("gradient", gradient_terms, gradients.detach()),
            ("loss", loss_terms, losses.detach()),
        ):
            remainder = measured.view(count, batch, -1)
            size = remainder.abs()
            for k in range(max(case.orders)):
                term = terms[k] if k < len(terms) else 0
                if term != 0:
                    value = (
                        gradient_values(term, z, v, labels=labels)
                        if quantity == "gradient"
                        else SymbolicFunction(term)(z, v, labels=labels)
                    )
                    contribution = column.view(count, batch, 1) ** -k * value.view(1, batch, -1)
                    remainder = remainder - contribution
                    size = size + contribution.abs()
                if k + 1 in case.orders:
                    results[quantity, k + 1] = (
                        remainder.reshape(count, -1),
                        size.reshape(count, -1),
                    )
        return results

    measured = compute(dtype)
    other = compute(torch.float32 if dtype == torch.float64 else torch.float64)
    epsilon = torch.finfo(dtype).eps
    ratio = epsilon / torch.finfo(torch.float32).eps if dtype == torch.float64 else 1.0
    out = {}
    for key, (value, size) in measured.items():
        estimate = (other[key][0].to(torch.float64) - value.to(torch.float64)).norm(dim=-1) * ratio
        floor = epsilon * (2 * classes + 10) * size.to(torch.float64).norm(dim=-1)
        roundoff = torch.maximum(estimate, floor)
        out[key] = (value.to(torch.float64).norm(dim=-1).cpu().numpy(), roundoff.cpu().numpy())
    return out


def _fits(case, student, teacher, labels, dtype):
    temperatures = temperature_grid(student, teacher)
    classes = student.shape[-1]
    symmetric = case.symmetric
    return {
        key: measure_convergence(
            temperatures,
            size,
            roundoff,
            order=leading_order(classes, key[1]) if symmetric else key[1],
            window_decades=WINDOW_DECADES,
        )
        for key, (size, roundoff) in twin_remainders(
            case, student, teacher, labels, temperatures, dtype
        ).items()
    }


def _verdict(fits_per_example, dtype):
    """``(violated, errors, tolerances)``: no resolved fit decays slower than its order (a
    faster decay means the next term vanishes at those logits, which the statement allows,
    e.g. even orders of a two-class softmax); in float64 the gradient's lowest order resolved
    in every example."""
    errors, tolerances, violated = [], [], False
    for case, fits in fits_per_example:
        lowest = ("gradient", min(case.orders))
        for key, fit in fits.items():
            if fit.resolved:
                errors.append(max(0.0, fit.slope + fit.order))
                tolerances.append(SLOPE_TOLERANCE)
                violated |= too_slow(fit)
            elif key == lowest and dtype == torch.float64:
                errors.append(math.inf)
                tolerances.append(SLOPE_TOLERANCE)
                violated = True
    return violated, errors, tolerances


def _summary(fits_per_example, context):
    """Findings per case, remainder and order: slopes, how many fits round-off allowed, floors;
    and the sub-claims no example resolved."""
    name = str(context.dtype).replace("torch.", "")
    groups = {}
    for case, fits in fits_per_example:
        for key, fit in fits.items():
            groups.setdefault((case.label, key), []).append(fit)
    notes, unresolved = [], []
    for (label, (quantity, terms)), group in groups.items():
        resolved = [f for f in group if f.resolved]
        line = f"{label}: {quantity} after {terms} term{'s' if terms > 1 else ''}: "
        if resolved:
            slopes = [f.slope for f in resolved]
            line += f"slope {min(slopes):.3f} .. {max(slopes):.3f}, "
        line += f"{len(resolved)} of {len(group)} resolved"
        floors = sorted(f.floor for f in group if f.floor is not None)
        if floors:
            line += f"; {name} floor at T={floors[0]:.3g} .. {floors[-1]:.3g}"
        notes.append(line)
        if not resolved:
            unresolved.append(f"{label}: {quantity} after {terms} term(s) below the {name} floor")
    return notes, unresolved


@st.composite
def _small_cases(draw, cases):
    case = draw(st.sampled_from(cases))
    classes = draw(st.integers(case.min_classes, 4))
    vectors = [
        draw(logit_vectors(min_size=classes, max_size=classes, min_value=-2, max_value=2))
        for _ in range(2)
    ]
    # Where z - v is constant every objective and all its terms vanish (p = q): the remainder
    # is round-off alone, and there is no order to measure. Standardized logits also need
    # logits that are not all equal.
    difference = [a - b for a, b in zip(*vectors)]
    assume(max(difference) > min(difference))
    if case.min_classes > 2:
        assume(all(max(vector) > min(vector) for vector in vectors))
    label = draw(st.integers(0, classes - 1))
    return case, vectors[0], vectors[1], label


def _small_failure(found, context):
    """``(description, error, tolerance)`` of the first fit of a small case that decays slower
    than its order, or ``None``."""
    case, student, teacher, label = found

    def as_tensor(values):
        return torch.tensor([values], dtype=context.dtype, device=context.device)

    labels = torch.tensor([label], device=context.device)
    for (quantity, order), fit in _fits(
        case, as_tensor(student), as_tensor(teacher), labels, context.dtype
    ).items():
        if too_slow(fit):
            return (
                f"{case.label}, student {vector(student)}, teacher {vector(teacher)}: the "
                f"{quantity} remainder after {order} term{'s' if order > 1 else ''} has slope "
                f"{fit.slope:.3f} over T in [{fit.low:.3g}, {fit.high:.3g}] (expected "
                f"-{fit.order}, tolerance {SLOPE_TOLERANCE})",
                fit.error,
                SLOPE_TOLERANCE,
            )
    return None


def run_objective_check(statement_id, cases, context):
    """Fit the remainders of every case on drawn logits, then search small explicit logits."""
    cases = list(cases)
    per_case = max(1, min(_MAXIMUM_PROBLEMS, context.examples // _BATCH) // len(cases))
    fits_per_example, problems = [], []
    for index, case in enumerate(cases):
        drawn = draw_examples(
            distillation_problems(
                min_classes=case.min_classes,
                max_classes=16,
                min_batch_size=_BATCH,
                max_batch_size=_BATCH,
                min_scale=0.3,
                max_scale=3.0,
                max_offset=0.0,
                dtype=context.dtype,
                device=context.device,
            ),
            per_case,
            seed=context.seed * 1009 + index,
        )
        problems += drawn
        fits_per_example += [
            (case, _fits(case, problem.student, problem.teacher, problem.labels, context.dtype))
            for problem in drawn
        ]
    violated, errors, tolerances = _verdict(fits_per_example, context.dtype)
    notes, unresolved = _summary(fits_per_example, context)

    def search():
        found = find_counterexample(
            _small_cases(cases),
            lambda found: _small_failure(found, context) is not None,
            seed=context.seed,
            max_examples=context.search_examples,
        )
        if found is None:
            return None
        return Counterexample(*_small_failure(found, context))

    vectors = sum(problem.student.shape[0] for problem in problems)
    return conclude(
        statement_id,
        context,
        errors=errors or [0.0],
        tolerances=tolerances or [SLOPE_TOLERANCE],
        violated=violated,
        examples=vectors,
        search=search,
        notes=notes,
        unresolved=unresolved,
        setup=[
            f"{vectors} logit vectors in {len(problems)} batches over "
            f"{', '.join(case.label for case in cases)}"
        ],
    )


# -- the cases of each statement -----------------------------------------------------------


def _f_members():
    """The f-divergence family of the registry, the generic member (whose f is a symbol)
    last: every member is measured by the family's checks."""
    members = [name for name, o in OBJECTIVES.items() if o.family == "f-divergence"]
    return sorted(members, key=lambda name: name == "f-divergence")


def _forward_with_reverse_correction(order):
    """KL's terms with reverse KL's T^-1 term in place of its own: the claim that the two
    agree at T^-1."""
    forward = [objective_terms("kl", q, order) for q in ("gradient", "loss")]
    reverse = [objective_terms("reverse-kl", q, order) for q in ("gradient", "loss")]
    return tuple(tuple(f[:1]) + tuple(r[1:2]) + tuple(f[2:]) for f, r in zip(forward, reverse))


def _jsd_with_half_limit(order):
    """JSD_β's limit at β = 1/2, for the twin at β = 3/10: the claim that β does not matter."""
    key = (("beta", "1/2"),)
    return (
        objective_terms("jsd", "gradient", order, key),
        objective_terms("jsd", "loss", order, key),
    )


#: The cases listed by hand, by statement id: the f-divergence family's checks measure every
#: member of the registry (:data:`_FAMILY_ORDERS`), and every objective declaring a statement
#: here as its ``limit_statement`` is measured by its check (:class:`_Cases`), so a limit
#: statement's entry lists only the cases that differ from that (an empty list: none).
_LISTED = {
    "f-divergence-limit": [],
    "f-divergence-first-correction": [],
    "f-divergence-first-correction/forward-equals-reverse": [
        Case("kl", (2,), _forward_with_reverse_correction, "kl with reverse-kl's T^-1 term")
    ],
    "jsd-limit": [],
    "jsd-limit/beta-free": [
        Case(
            "jsd", (1,), _jsd_with_half_limit, "jsd at beta = 3/10 against the limit at beta = 1/2"
        )
    ],
    "skew-limit": [],
    "two-temperature-limit": [],
    "hot-teacher-label-smoothing": [],
    # With two classes NCKD is identically zero ([dkd-binary]): nothing to measure.
    "dkd-limit": [
        Case("dkd-tckd", (1, 2)),
        Case("dkd-nckd", (1, 2), min_classes=3),
        Case("dkd", (1,)),
    ],
    "standardized-limit": [],
    "dist-limit": [],
    # No terms from derive: the difference of the two twins itself must fall as 1/T.
    "standardized-equals-dist": [
        Case(
            "standardized-kl",
            (1,),
            lambda order: ((), ()),
            "standardized KD (population std) minus DIST",
            (("std", "population"),),
            "dist",
            min_classes=3,
        )
    ],
    "standardized-equals-dist/unbiased": [
        Case(
            "standardized-kl",
            (1,),
            lambda order: ((), ()),
            "standardized KD (unbiased std) minus DIST",
            (("std", "unbiased"),),
            "dist",
            min_classes=3,
        )
    ],
}


#: The family checks and the terms after which each member is fitted.
_FAMILY_ORDERS = {"f-divergence-limit": (1,), "f-divergence-first-correction": (2,)}


class _Cases(Mapping):
    """Statement id -> the cases its check measures, read from the registry at each lookup:
    the listed cases, every f-divergence member for the family checks, and the first two terms
    of every objective (each categorical variant) that declares the statement as its
    ``limit_statement`` and is not listed."""

    def __getitem__(self, statement_id):
        cases = list(_LISTED[statement_id])
        if statement_id in _FAMILY_ORDERS:
            orders = _FAMILY_ORDERS[statement_id]
            cases += [Case(name, orders) for name in _f_members()]
        for definition in OBJECTIVES.values():
            if definition.limit_statement != statement_id or any(
                case.objective == definition.name for case in cases
            ):
                continue
            for values in definition.variants():
                cases.append(
                    Case(
                        definition.name,
                        (1, 2),
                        parameters=tuple(values.items()),
                        min_classes=3 if definition.coordinates == "standardized" else 2,
                    )
                )
        return cases

    def __iter__(self):
        return iter(_LISTED)

    def __len__(self):
        return len(_LISTED)


#: Statement id -> the cases its check measures.
CASES = _Cases()

#: Default examples (logit vectors) per check: a few batches per case.
_EXAMPLES = {statement_id: 4 * _BATCH * len(cases) for statement_id, cases in CASES.items()}


def _register(statement_id):
    def check(
        *,
        device="cpu",
        dtype=torch.float64,
        examples=_EXAMPLES[statement_id],
        seed=0,
        search_examples=None,
    ):
        context = CheckContext.create(
            device=device,
            dtype=dtype,
            examples=examples,
            seed=seed,
            search_examples=search_examples,
        )
        return run_objective_check(statement_id, CASES[statement_id], context)

    check.__name__ = "check_" + statement_id.replace("-", "_").replace("/", "_")
    check.__qualname__ = check.__name__
    check.__doc__ = (
        f"[{statement_id}] against autograd: remainders of "
        f"{', '.join(case.label for case in CASES[statement_id])}."
    )
    return numeric_check(statement_id)(check)


for _statement_id in CASES:
    _check = _register(_statement_id)
    globals()[_check.__name__] = _check
del _statement_id, _check
