"""One source of truth per objective and per statement: what a registration must declare.

Every consumer of the registries reads them (the statements' proofs, the numeric checks, the
torch twins, the audit's identification and diagnosis, the CLI's ``objectives`` list,
docs/theory.md, the README tables that tests/test_readme.py recomputes). What a consumer cannot
derive, the registration declares: :func:`objective_gaps` and :func:`statement_gaps` list, for
one name, each consumer that still lacks it, as a sentence saying what to add where. The tests
below run them over the real registries (a new objective fails one named test listing exactly
what is missing), and over a throw-away objective and statement registered for the duration of
a test, to show that the consumers pick a registration up and that the lists are exact.

What a new objective declares: ``@objective(name, title, definition=..., family=...,
limit=..., limit_statement=..., diagnosis=...)`` and, for a member of the f-divergence family,
``f_derivatives=...`` (with its row in docs/theory.md's table of them); a ``@twin(name, ...)``
in verify/losses.py (above ``LOSSES``); a row in README.md's objectives table; and, by hand,
an independent mpmath reference in tests/test_objectives.py. A new statement:
``@statement(...)``, a numeric check registered under its id (for a limit statement checked in
verify/checks/objectives.py, one empty entry in ``_LISTED``: its cases come from the objectives
that name it), its section in docs/theory.md and its id in README.md's statements table.
"""

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import sympy

import derive
from derive import OBJECTIVES, STATEMENTS, v_i, z_i
from derive.cli import main as derive_main
from derive.objectives import half_variance, objective
from derive.objectives.divergences import kd_loss
from derive.statements import Statement, declared_limits, label
from derive.statements.families import member_coefficients
from verify import VerifyError, losses
from verify.audit import candidates, diagnoses
from verify.checks import REGISTERED
from verify.checks.objectives import CASES, _f_members
from verify.registry import resolve_check

_ROOT = Path(__file__).resolve().parents[1]
_README = (_ROOT / "README.md").read_text()
_THEORY = (_ROOT / "docs" / "theory.md").read_text()

#: Gaps in the shipped registrations, stated here so that the test stays exact: closing one
#: fails the test until its line is removed.
_NO_LIMIT_STATEMENT = [
    "limit_statement: declare the statement whose proof checks its closed-form limit "
    "(@objective(..., limit_statement=...))"
]
KNOWN_GAPS = {
    "ce-mixture": _NO_LIMIT_STATEMENT,
    # Free of T: the expansion is the objective itself, one term, so its "limit" is the
    # definition and no statement has a residual to check.
    "logits-matching": _NO_LIMIT_STATEMENT,
    "centred-logits-matching": _NO_LIMIT_STATEMENT,
}


def _readme_objectives():
    section = _README.split("## The objectives", 1)[1].split("\n## ", 1)[0]
    names = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            first = row.strip("|").split("|")[0].split(" (")[0]
            names.update(re.findall(r"`([a-z][a-z-]*)`", first))
    return names


def _first_correction_table():
    return _THEORY.split("### [f-divergence-first-correction]", 1)[1].split("\n### ", 1)[0]


def _independent_references():
    """The objectives that tests/test_objectives.py checks against fifty-digit mpmath values
    (an oracle a registration cannot supply: it is written independently, by hand)."""
    from test_objectives import _references

    return set(_references())


def _cli_objectives():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = derive_main(["objectives", "--json"])
    assert code == 0
    return [entry["name"] for entry in json.loads(out.getvalue())["objectives"]]


def objective_gaps(name):
    """What the consumers of objective ``name`` still lack, one sentence each (``[]``: none)."""
    definition = OBJECTIVES[name]
    gaps = []
    if name not in losses.TWINS:
        gaps.append("twin: register its torch twin with @twin(name, ...) in verify/losses.py")
    elif definition.family != "matching" and name not in losses.LOSSES:
        # LOSSES are the softmax losses of [zero-mean-gradient]; logits matching is a control.
        gaps.append("LOSSES: register the twin above LOSSES in verify/losses.py")
    if definition.limit is None:
        gaps.append("limit: declare the closed-form T -> infinity limit (@objective(..., limit=))")
    elif not definition.limit_statement:
        gaps.append(
            "limit_statement: declare the statement whose proof checks its closed-form limit "
            "(@objective(..., limit_statement=...))"
        )
    elif definition.limit_statement not in STATEMENTS:
        gaps.append(f"limit_statement: no statement {definition.limit_statement!r} is registered")
    else:
        statement_id = definition.limit_statement
        if statement_id not in REGISTERED:
            gaps.append(f"numeric check: register one under {statement_id!r} in verify/checks")
        elif statement_id in CASES and not any(c.objective == name for c in CASES[statement_id]):
            gaps.append(f"numeric check: no case of {statement_id!r} measures it")
    if (
        definition.family == "f-divergence"
        and definition.f_derivatives is None
        and not definition.loss().atoms(derive.notation.FDerivative)
    ):
        gaps.append(
            "f_derivatives: declare (f''(1), f'''(1)) in closed form "
            "(@objective(..., f_derivatives=...))"
        )
    if name != "kl" and not definition.diagnosis:
        gaps.append(
            "diagnosis: declare what the audit tells a KD user (@objective(..., diagnosis=))"
        )
    if definition.f_derivatives is not None and not re.search(
        rf"^\| {re.escape(name)}[ |(]", _first_correction_table(), re.MULTILINE
    ):
        gaps.append(
            "docs/theory.md: add its f''(1), f'''(1) row to [f-divergence-first-correction]"
        )
    if name not in _readme_objectives():
        gaps.append("README: add its row to the objectives table")
    if name != "f-divergence" and name not in _independent_references():
        gaps.append("reference: add its mpmath value to _references() in tests/test_objectives.py")
    return gaps


def statement_gaps(statement_id):
    """What the consumers of statement ``statement_id`` still lack (``[]``: none)."""
    gaps = []
    if statement_id not in REGISTERED:
        gaps.append("numeric check: register one under its id in verify/checks (@numeric_check)")
    if f"[{statement_id}]" not in _THEORY:
        gaps.append("docs/theory.md: state it under its id in brackets")
    if f"`{statement_id.split('/')[0]}`" not in _README:
        gaps.append("README: name its id in its family's row of the statements table")
    return gaps


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objective_declares_what_its_consumers_need(name):
    assert objective_gaps(name) == KNOWN_GAPS.get(name, []), f"objective {name} lacks:"


@pytest.mark.parametrize("statement_id", list(STATEMENTS))
def test_every_statement_has_what_its_consumers_need(statement_id):
    assert statement_gaps(statement_id) == [], f"statement {statement_id} lacks:"


# -- a throw-away objective and statement, registered for the duration of one test --------------

_NAME = "double-kl"


@pytest.fixture
def throwaway(monkeypatch):
    """Register ``double-kl`` (twice KD, an f-divergence with f''(1) = 2, f'''(1) = -2) in the
    registries for this test only; ``declare`` picks the fields it declares."""

    def register(**declare):
        monkeypatch.setitem(OBJECTIVES, _NAME, None)  # restored (removed) after the test
        del OBJECTIVES[_NAME]
        objective(
            _NAME, "Twice KD", definition=r"2 T^2 KL(p\|q)", family="f-divergence", **declare
        )(lambda: 2 * kd_loss())
        return OBJECTIVES[_NAME]

    yield register


_FULL = dict(
    limit=lambda: 2 * half_variance(z_i - v_i),
    limit_statement="f-divergence-limit",
    f_derivatives=lambda: (2, -2),
    diagnosis="twice KD; halve it",
)


def test_a_bare_new_objective_fails_listing_exactly_what_it_lacks(throwaway):
    throwaway()
    assert objective_gaps(_NAME) == [
        "twin: register its torch twin with @twin(name, ...) in verify/losses.py",
        "limit: declare the closed-form T -> infinity limit (@objective(..., limit=))",
        "f_derivatives: declare (f''(1), f'''(1)) in closed form "
        "(@objective(..., f_derivatives=...))",
        "diagnosis: declare what the audit tells a KD user (@objective(..., diagnosis=))",
        "README: add its row to the objectives table",
        "reference: add its mpmath value to _references() in tests/test_objectives.py",
    ]


def test_a_declared_new_objective_is_picked_up_by_every_consumer(throwaway, monkeypatch):
    throwaway(**_FULL)
    monkeypatch.setitem(
        losses.TWINS, _NAME, losses.Twin(_NAME, lambda *a: 2 * losses.TWINS["kl"](*a))
    )
    # What it still lacks is what lives outside the code (the docs, the independent reference)
    # and the LOSSES table of verify/losses.py, which is built when that module is imported.
    assert objective_gaps(_NAME) == [
        "LOSSES: register the twin above LOSSES in verify/losses.py",
        "docs/theory.md: add its f''(1), f'''(1) row to [f-divergence-first-correction]",
        "README: add its row to the objectives table",
        "reference: add its mpmath value to _references() in tests/test_objectives.py",
    ]
    # The proofs: its limit joins f-divergence-limit, its f''(1), f'''(1) the first correction.
    assert f"L_0 - limit, {_NAME}" in declared_limits("f-divergence-limit")
    assert member_coefficients()[_NAME] is _FULL["f_derivatives"]
    for statement_id in ("f-divergence-limit", "f-divergence-first-correction"):
        result = STATEMENTS[statement_id].prove(order=2)
        assert result.verdict == "holds", result
        assert any(_NAME in key for key in result.residuals), statement_id
    # The numeric family checks, the twin's label and domain, the audit, the CLI.
    assert _NAME in _f_members()
    assert not losses._definition(_NAME).labelled
    assert any(c.objective == _NAME for c in candidates.catalogue())
    match = type("Match", (), {"objective": _NAME})()
    assert diagnoses._instead_of_kd(match) == "twice KD; halve it"
    assert _NAME in _cli_objectives()


@pytest.mark.parametrize(
    "wrong, statement_id",
    [
        (dict(_FULL, limit=lambda: 3 * half_variance(z_i - v_i)), "f-divergence-limit"),
        (dict(_FULL, f_derivatives=lambda: (2, -3)), "f-divergence-first-correction"),
    ],
)
def test_a_wrong_declaration_refutes_the_statement_it_joins(throwaway, wrong, statement_id):
    throwaway(**wrong)
    result = STATEMENTS[statement_id].prove(order=2)
    assert result.verdict == "refuted"
    assert all(_NAME in key for key, value in result.residuals.items() if value != 0)


def test_a_new_statement_fails_listing_exactly_what_it_lacks(monkeypatch):
    statement_id = "throwaway-identity"
    monkeypatch.setitem(
        STATEMENTS,
        statement_id,
        Statement(
            statement_id,
            "z - z is zero",
            "z - z = 0",
            "holds",
            lambda order: {label("z - z", "z - z"): z_i - z_i},
        ),
    )
    # verify's runner sees it, and says what it lacks.
    with pytest.raises(VerifyError, match="has no numeric check registered"):
        resolve_check(statement_id)
    assert statement_gaps(statement_id) == [
        "numeric check: register one under its id in verify/checks (@numeric_check)",
        "docs/theory.md: state it under its id in brackets",
        "README: name its id in its family's row of the statements table",
    ]
    assert sympy.Integer(0) == STATEMENTS[statement_id].prove(order=1).residual
