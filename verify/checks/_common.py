"""What every check shares: its settings, its expectation, and how it becomes a result."""

import math
from dataclasses import dataclass

import torch

from derive import STATEMENTS

from .._errors import MAX_SEED, check_argument, check_integer, check_positive_integer
from ..devices import dtype_name, resolve_device, resolve_dtype
from ..results import CheckResult

__all__ = [
    "CheckContext",
    "Counterexample",
    "group_sizes",
    "expectation",
    "worst_case",
    "ratios",
    "violations",
    "result_from",
    "conclude",
    "vector",
    "REGISTERED",
    "numeric_check",
]

#: Every check, by the statement id it checks, as registered (:func:`numeric_check`).
REGISTERED = {}


def numeric_check(statement_id):
    """Register the decorated check function as the numeric check of ``statement_id``."""

    def register(function):
        check_argument(
            statement_id not in REGISTERED, "check {!r} is registered twice", statement_id
        )
        REGISTERED[statement_id] = function
        return function

    return register


#: Hypothesis examples tried when searching a counterexample, by default and with --thorough.
SEARCH_EXAMPLES = 40
THOROUGH_SEARCH_EXAMPLES = 640


@dataclass(frozen=True)
class CheckContext:
    """Validated settings of one check run."""

    device: torch.device
    dtype: torch.dtype
    examples: int
    seed: int
    search_examples: int

    @classmethod
    def create(cls, *, device, dtype, examples, seed, search_examples=None):
        check_positive_integer(examples, name="examples")
        check_integer(seed, name="seed")
        check_argument(
            0 <= seed <= MAX_SEED, "seed must be an integer in 0..{}, got {!r}", MAX_SEED, seed
        )
        if search_examples is None:
            search_examples = SEARCH_EXAMPLES
        check_positive_integer(search_examples, name="search_examples")
        return cls(resolve_device(device), resolve_dtype(dtype), examples, seed, search_examples)

    @property
    def epsilon(self):
        return float(torch.finfo(self.dtype).eps)

    def generator(self, offset=0):
        """A CPU generator seeded from the run's seed (tensors are moved to the device)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + offset)

    def randn(self, *shape, generator, scale=1.0):
        values = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale
        return values.to(dtype=self.dtype, device=self.device)

    def rand(self, *shape, generator):
        values = torch.rand(*shape, generator=generator, dtype=torch.float64)
        return values.to(dtype=self.dtype, device=self.device)


#: Networks per architecture before a check draws more architectures.
NETWORKS_PER_GROUP = 32
#: At most this many architecture groups.
MAXIMUM_GROUPS = 64


def group_sizes(examples, minimum_groups):
    """``(groups, per_group)`` for ``examples`` networks: at least ``minimum_groups``
    architectures (fewer if there are fewer networks), more once a group would hold more than
    :data:`NETWORKS_PER_GROUP` networks, at most :data:`MAXIMUM_GROUPS`.

    >>> group_sizes(64, 8), group_sizes(1024, 8), group_sizes(3, 8)
    ((8, 8), (32, 32), (3, 1))
    """
    groups = min(examples, min(MAXIMUM_GROUPS, max(minimum_groups, examples // NETWORKS_PER_GROUP)))
    return groups, max(1, examples // groups)


def expectation(statement_id):
    """The registry's expectation for ``statement_id`` (:data:`derive.STATEMENTS`)."""
    check_argument(
        statement_id in STATEMENTS,
        "unknown statement id {!r}; known: {}",
        statement_id,
        ", ".join(STATEMENTS),
    )
    return STATEMENTS[statement_id].expected


def worst_case(errors, tolerances):
    """``(error, tolerance, index)`` of the case with the largest ``error / tolerance``.

    ``errors`` and ``tolerances`` are flat sequences (or tensors) of one length; a nonfinite
    error counts as infinitely bad.
    """
    errors = torch.as_tensor(errors, dtype=torch.float64).flatten().cpu()
    tolerances = torch.as_tensor(tolerances, dtype=torch.float64).flatten().cpu()
    check_argument(
        errors.numel() == tolerances.numel() and errors.numel() > 0,
        "errors and tolerances must be nonempty and of one length, got {} and {}",
        errors.numel(),
        tolerances.numel(),
    )
    index = int(torch.argmax(ratios(errors, tolerances)))
    return float(errors[index]), float(tolerances[index]), index


def ratios(errors, tolerances):
    """``errors / tolerances``, with ``0/0 = 0``, ``x/0 = inf`` and a nonfinite error ``inf``."""
    errors = torch.as_tensor(errors, dtype=torch.float64)
    tolerances = torch.as_tensor(tolerances, dtype=torch.float64)
    quotient = errors / torch.where(tolerances > 0, tolerances, torch.ones_like(tolerances))
    quotient = torch.where(
        tolerances > 0, quotient, torch.where(errors > 0, math.inf, 0.0).to(quotient)
    )
    return torch.where(torch.isfinite(errors), quotient, torch.full_like(quotient, math.inf))


def violations(errors, tolerances):
    """True where an error exceeds its tolerance (a nonfinite error always does)."""
    return ratios(errors, tolerances) > 1


def result_from(
    statement_id,
    context,
    *,
    error,
    tolerance,
    violated,
    examples,
    counterexample=None,
    notes=(),
    setup=(),
    unresolved=(),
):
    """A :class:`~verify.results.CheckResult` for ``statement_id`` run in ``context``."""
    return CheckResult(
        id=statement_id,
        expected=expectation(statement_id),
        verdict="refuted" if violated else "holds",
        worst_error=float(error),
        tolerance=float(tolerance),
        examples=int(examples),
        device=str(context.device),
        dtype=dtype_name(context.dtype),
        counterexample=counterexample if violated else None,
        notes=tuple(notes),
        setup=tuple(setup),
        unresolved=tuple(unresolved),
    )


@dataclass(frozen=True)
class Counterexample:
    """A violating case found by the hypothesis search: in words, and its error and tolerance."""

    description: str
    error: float
    tolerance: float


def conclude(
    statement_id,
    context,
    *,
    errors,
    tolerances,
    search,
    examples,
    violated=None,
    notes=(),
    setup=(),
    unresolved=(),
):
    """The result of a sweep (``errors``, ``tolerances``, and whether they violate the
    statement, by default if any error exceeds its tolerance) and of a hypothesis search
    over small explicit cases (``search()`` returns a :class:`Counterexample` or ``None``),
    which runs whatever the sweep found: for a refuted statement it yields the shrunk
    counterexample, for one that holds it is a second, independent attempt to break it.
    ``unresolved`` names the sub-claims no example could test (round-off hid them).
    """
    errors = torch.as_tensor(errors, dtype=torch.float64).flatten().cpu()
    tolerances = torch.as_tensor(tolerances, dtype=torch.float64).flatten().cpu()
    if violated is None:
        violated = bool(violations(errors, tolerances).any())
    found = search()
    if found is not None:
        errors = torch.cat([errors, torch.tensor([found.error], dtype=torch.float64)])
        tolerances = torch.cat([tolerances, torch.tensor([found.tolerance], dtype=torch.float64)])
    error, tolerance, _ = worst_case(errors, tolerances)
    if found is not None:
        counterexample = found.description
    elif violated:
        counterexample = (
            f"the search found no small case; worst swept case: error {error:.3g}, "
            f"tolerance {tolerance:.2g}"
        )
    else:
        counterexample = None
    notes = list(notes) + [
        f"hypothesis search over up to {context.search_examples} small "
        f"explicit cases: {'a counterexample' if found else 'none violated'}"
    ]
    return result_from(
        statement_id,
        context,
        error=error,
        tolerance=tolerance,
        violated=violated or found is not None,
        examples=examples,
        counterexample=counterexample,
        notes=notes,
        setup=setup,
        unresolved=unresolved,
    )


def vector(values, *, digits=4, limit=8):
    """A short readable form of a 1-d sequence of numbers."""
    values = [float(v) for v in values]
    shown = ", ".join(f"{v:.{digits}g}" for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
