"""Running the numeric checks of :data:`derive.STATEMENTS`.

Each check is registered under its statement id (:data:`verify.checks.CHECKS`);
:func:`resolve_check` finds it, and :func:`run_checks` runs them in registry order. Nothing is
listed twice: the ids, titles and expectations come from :data:`derive.STATEMENTS`.

Examples
========

>>> resolve_check("expansion").__name__
'check_expansion'
>>> resolve_check("no-such-statement")
Traceback (most recent call last):
...
verify._errors.VerifyError: unknown statement id 'no-such-statement'; known: zero-mean-gradient, ...
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch

from derive import STATEMENTS

from ._errors import MAX_EXAMPLES, MAX_SEED, check_argument, check_positive_integer
from .checks import CHECKS
from .checks._common import SEARCH_EXAMPLES, THOROUGH_SEARCH_EXAMPLES
from .devices import resolve_device, resolve_dtype
from .results import CheckResult

__all__ = [
    "THOROUGH_FACTOR",
    "MAX_EXAMPLES",
    "MAX_SEED",
    "statements",
    "resolve_check",
    "run_check",
    "run_checks",
]

#: ``--thorough`` multiplies every check's default number of examples by this.
THOROUGH_FACTOR = 16


def statements():
    """The registry :data:`derive.STATEMENTS` (id -> statement), in its order."""
    return STATEMENTS


def resolve_check(statement_id: str) -> Callable[..., CheckResult]:
    """The check function named by the registry entry ``statement_id``."""
    registry = statements()
    known = ", ".join(registry)
    if len(known) > 40:
        known = known[: known.index(",", 20)] + ", ..."
    check_argument(
        statement_id in registry, "unknown statement id {!r}; known: {}", statement_id, known
    )
    check = CHECKS.get(statement_id)
    check_argument(callable(check), "statement {!r} has no numeric check registered", statement_id)
    return check


def run_check(statement_id: str, **options: Any) -> CheckResult:
    """Run the check of one statement; ``options`` are the check's own (``device``, ``dtype``,
    ``examples``, ``seed``, ``search_examples``).

    >>> run_check("zero-mean-gradient/logits-matching", examples=16).verdict
    'refuted'
    """
    return resolve_check(statement_id)(**options)


def _default_examples(check):
    return check.__kwdefaults__["examples"]


def run_checks(
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float64,
    examples: int | None = None,
    seed: int = 0,
    thorough: bool = False,
    ids: Iterable[str] | None = None,
    on_result: Callable[[CheckResult], object] | None = None,
    search_examples: int | None = None,
) -> list[CheckResult]:
    """Run the checks of ``ids`` (default: every statement) and return their results.

    Parameters
    ==========

    examples : int, optional
        Examples per check; by default each check's own default (times
        :data:`THOROUGH_FACTOR` with ``thorough``).
    thorough : bool
        More examples, and a ten times longer counterexample search (sized for a GPU).
    on_result : callable, optional
        Called with each result as soon as it is ready.
    search_examples : int, optional
        Examples tried by each counterexample search before shrinking; by default
        :data:`~verify.checks._common.SEARCH_EXAMPLES` (:data:`THOROUGH_SEARCH_EXAMPLES` with
        ``thorough``).
    """
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    if examples is not None:
        check_positive_integer(examples, name="examples")
        check_argument(
            examples <= MAX_EXAMPLES, "examples must be at most {}, got {}", MAX_EXAMPLES, examples
        )
    check_argument(
        isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED,
        "seed must be an integer in 0..{}, got {!r}",
        MAX_SEED,
        seed,
    )
    if search_examples is None:
        search_examples = THOROUGH_SEARCH_EXAMPLES if thorough else SEARCH_EXAMPLES
    check_positive_integer(search_examples, name="search_examples")
    ids = list(statements()) if ids is None else list(ids)
    checks = [resolve_check(statement_id) for statement_id in ids]
    results = []
    for check in checks:
        count = examples or _default_examples(check) * (THOROUGH_FACTOR if thorough else 1)
        result = check(
            device=device,
            dtype=dtype,
            examples=count,
            seed=seed,
            search_examples=search_examples,
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
