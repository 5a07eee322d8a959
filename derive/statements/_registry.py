r"""The registry of statements and what a statement is, like :mod:`derive.objectives._registry`.

A :class:`Statement` is registered where its proof is defined, with :func:`statement`, in one
registry, :data:`STATEMENTS`, by its theory id; :func:`prove_all` proves them in registration
order. The submodules of :mod:`derive.statements` import this module to register, and the
package imports them, in the order they are listed.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy

from .._errors import check_argument, check_order
from ..normal_form import canonical
from ..objectives import objectives_proved_by
from ._common import leading

__all__ = [
    "Label",
    "label",
    "ProofResult",
    "Statement",
    "STATEMENTS",
    "statement",
    "prove_all",
    "declared_limits",
]


class Label(str):
    """A residual's name: plain text (the dict key, the JSON key), with its LaTeX beside."""

    latex: str

    def __new__(cls, text, latex=None):
        value = super().__new__(cls, text)
        value.latex = latex
        return value


def label(text, latex):
    """A residual name with its LaTeX form (what the report typesets)."""
    return Label(text, latex)


@dataclass(frozen=True)
class ProofResult:
    """What a proof found: each named residual after simplification, and the verdict."""

    statement_id: str
    expected: str
    residuals: dict[str, Any]
    order: int

    @property
    def verdict(self) -> str:
        return "holds" if all(r == 0 for r in self.residuals.values()) else "refuted"

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected

    @property
    def residual(self) -> Any:
        """The first nonzero residual, or 0."""
        return next((r for r in self.residuals.values() if r != 0), sympy.Integer(0))

    def __str__(self) -> str:
        lines = [
            f"{self.statement_id}: {self.verdict} (expected {self.expected}); "
            f"{len(self.residuals)} residual(s) checked"
        ]
        lines += [
            f"  {name}: residual {residual}"
            for name, residual in self.residuals.items()
            if residual != 0
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class Statement:
    """One statement of the theory (or a refuted variant), with its proof."""

    id: str
    title: str
    statement: str
    expected: str
    proof: Callable[[int], dict[str, Any]] = field(repr=False)

    @property
    def numeric_check(self) -> str:
        """Where its numeric check lives: ``verify.CHECKS[id]``."""
        return f"verify.CHECKS[{self.id!r}]"

    def prove(self, *, order: int = 4) -> ProofResult:
        """Run the symbolic proof (to ``order`` terms of the expansion where relevant), with a
        residual for the closed-form limit of every objective registered with
        ``limit_statement`` = this id (:func:`declared_limits`)."""
        check_order(order)
        residuals = dict(self.proof(order))
        residuals.update(declared_limits(self.id, residuals))
        residuals = {name: canonical(r) for name, r in residuals.items()}
        return ProofResult(self.id, self.expected, residuals, order)


def declared_limits(statement_id, present=()):
    r"""``{label: residual}``: :math:`L_0` minus the declared closed-form limit of each objective
    (each variant of its categorical parameters) that names ``statement_id`` as its
    ``limit_statement``, except those a proof already checks under the same label."""
    residuals = {}
    for objective in objectives_proved_by(statement_id):
        if objective.limit is None:
            continue
        for values in objective.variants():
            name = objective.variant_name(values)
            key = label(f"L_0 - limit, {name}", rf"L_0 - \text{{limit}},\ \text{{{name}}}")
            if key not in present:
                residuals[key] = leading("loss", objective.name, **values) - (
                    objective.closed_form_limit(**values)
                )
    return residuals


#: Every statement, by id, in the order they were registered.
STATEMENTS: dict[str, Statement] = {}


def statement(statement_id, title, latex, *, expected="holds"):
    """Register the decorated proof ``proof(order) -> {name: residual}`` as ``statement_id``."""
    check_argument(
        expected in ("holds", "refuted"), "expected must be holds or refuted, got {!r}", expected
    )
    check_argument(
        ("/" in statement_id) == (expected == "refuted"),
        "refutations (and only they) have a '/' in their id: {!r} expected {}",
        statement_id,
        expected,
    )

    def register(proof):
        check_argument(
            statement_id not in STATEMENTS, "statement {!r} is registered twice", statement_id
        )
        STATEMENTS[statement_id] = Statement(statement_id, title, latex, expected, proof)
        return proof

    return register


def prove_all(*, order: int = 4) -> list[ProofResult]:
    """Prove every registered statement; a list of :class:`ProofResult` in registry order."""
    return [s.prove(order=order) for s in STATEMENTS.values()]
