r"""The registry of statements: one entry per theory id, each with its symbolic proof.

Every entry carries its statement in LaTeX, whether it is expected to hold or to be refuted,
and a proof. A proof computes named *residuals* that must simplify to exactly 0; the verdict
is ``"holds"`` iff every residual is 0, and a failed proof shows its residuals. Its numeric
check is registered under the same id in :data:`verify.CHECKS` (resolved there: :mod:`derive`
never imports torch).

Statements register where their proofs are defined, with :func:`statement`
(:mod:`~derive.statements._registry`, which holds the registry):
:mod:`~derive.statements.core` (KD at high temperature), :mod:`~derive.statements.families`
(f-divergences and temperatures), :mod:`~derive.statements.target_aware` (DKD, standardized
KD, DIST) and :mod:`~derive.statements.radius` (convergence of the series).

Refutations (ids with a ``/``) are statements the theory expects to be false; their proofs
exhibit a nonzero residual, a counterexample.

Examples
========

>>> result = STATEMENTS["hinton-zero-mean"].prove(order=1)
>>> result.verdict, result.as_expected
('holds', True)
>>> STATEMENTS["zero-mean-gradient/logits-matching"].prove().residual
-mean(v_i) + mean(z_i)
"""

# The import order is the registration order: the listing order of the statements.
# isort: off
from ._registry import (
    STATEMENTS,
    Label,
    ProofResult,
    Statement,
    declared_limits,
    label,
    prove_all,
    statement,
)
from . import core, families, target_aware, radius  # noqa: F401  (they register their statements)
from . import low_temperature  # noqa: F401  (after the high-temperature families)
from . import atlas  # noqa: F401  (what the equivalence needs in a training run)
# isort: on

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
