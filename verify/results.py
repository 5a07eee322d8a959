"""The result object every check returns: never a bare bool; the caller decides how to print it.

Examples
========

>>> result = CheckResult(id="zero-mean-gradient", expected="holds", verdict="holds",
...                      worst_error=1e-17, tolerance=4e-15, examples=10, device="cpu",
...                      dtype="float64")
>>> result.as_expected
True
>>> sorted(result.to_json())  # doctest: +NORMALIZE_WHITESPACE
['counterexample', 'examples', 'expected', 'id', 'resolved', 'tolerance', 'unresolved', 'verdict',
'worst_error']
"""

import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import check_argument

__all__ = ["VERDICTS", "CheckResult"]

#: The two verdicts, which are also the two expectations.
VERDICTS = ("holds", "refuted")


@dataclass(frozen=True)
class CheckResult:
    """What one numeric check found.

    Parameters
    ==========

    id : str
        The statement id (docs/theory.md), or ``statement/variant`` for a refuted variant.
    expected, verdict : str
        ``"holds"`` or ``"refuted"``; the check agrees with the theory iff they are equal.
    worst_error, tolerance : float
        The example closest to, or furthest past, its own tolerance: its error and its
        tolerance (tolerances vary per example with the magnitudes involved). Their ratio
        exceeds 1 exactly when the verdict is ``"refuted"``.
    examples : int
        Random cases tried (logit vectors, or networks, as the check documents).
    device, dtype : str
        Where and in which floating point type the check ran.
    counterexample : str or None
        A hypothesis-shrunk, human readable counterexample when the verdict is ``"refuted"``.
    notes : tuple of str
        Findings worth printing (for instance fitted slopes and a dtype's round-off floor).
    setup : tuple of str
        What was run (architectures, optimizers, losses), for the record.
    unresolved : tuple of str
        Sub-claims that no example could test (for instance a slope below the dtype's
        round-off floor). Empty when every sub-claim was tested: only then does "holds" stand
        alone (:attr:`summary`).
    """

    id: str
    expected: str
    verdict: str
    worst_error: float
    tolerance: float
    examples: int
    device: str
    dtype: str
    counterexample: str | None = None
    notes: tuple = field(default=())
    setup: tuple = field(default=())
    unresolved: tuple = field(default=())

    def __post_init__(self):
        check_argument(
            self.expected in VERDICTS,
            "expected must be one of {}, got {!r}",
            ", ".join(VERDICTS),
            self.expected,
        )
        check_argument(
            self.verdict in VERDICTS,
            "verdict must be one of {}, got {!r}",
            ", ".join(VERDICTS),
            self.verdict,
        )

    @property
    def as_expected(self) -> bool:
        """True if the verdict equals the expectation."""
        return self.verdict == self.expected

    @property
    def resolved(self) -> bool:
        """True if every sub-claim was tested (nothing hidden by round-off)."""
        return not self.unresolved

    @property
    def summary(self) -> str:
        """The verdict with its evidence: ``"holds"``, or ``"holds (2 sub-claims unresolved:
        ...)"`` when some sub-claims could not be tested."""
        if self.resolved:
            return self.verdict
        return (
            f"{self.verdict} ({len(self.unresolved)} sub-claim"
            f"{'s' if len(self.unresolved) > 1 else ''} unresolved: "
            f"{'; '.join(self.unresolved)})"
        )

    def describe(self) -> str:
        """A few lines for people: the verdict against the expectation, the worst case, the
        counterexample and the findings.

        >>> print(CheckResult(id="expansion", expected="holds", verdict="holds",
        ...                   worst_error=0.003, tolerance=0.1, examples=16, device="cpu",
        ...                   dtype="float64", notes=("slope -1.000",)).describe())
        expansion: holds (expected holds) on 16 examples, float64 on cpu
          worst error 3.00e-03, tolerance 1.00e-01
          slope -1.000
        """
        lines = [
            f"{self.id}: {self.summary} (expected {self.expected}) on {self.examples} "
            f"examples, {self.dtype} on {self.device}",
            f"  worst error {self.worst_error:.2e}, tolerance {self.tolerance:.2e}",
        ]
        if self.counterexample:
            lines.append(f"  counterexample: {self.counterexample}")
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The fields of the CLI's ``--json`` output (a stable contract)."""
        return {
            "id": self.id,
            "expected": self.expected,
            "verdict": self.verdict,
            "examples": self.examples,
            "worst_error": _finite_or_none(self.worst_error),
            "tolerance": _finite_or_none(self.tolerance),
            "counterexample": self.counterexample,
            "resolved": self.resolved,
            "unresolved": list(self.unresolved),
        }


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None
