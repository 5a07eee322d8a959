"""The family and target-aware checks: their verdicts, and negative controls that plant a
violation (a wrong term, a wrong weight, a scale-dependent penalty) the checks must catch,
with tolerances pinned from both sides."""

import pytest
import torch

import derive
from verify import CHECKS
from verify.checks import target_aware
from verify.checks._common import CheckContext
from verify.checks.objectives import CASES, Case, objective_terms, run_objective_check
from verify.losses import TWINS, DistillationProblem


def _context(examples=32):
    return CheckContext.create(
        device="cpu", dtype=torch.float64, examples=examples, seed=0, search_examples=10
    )


def _problem(classes=5, batch=6, seed=0, temperature=3.0):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, classes, generator=generator, dtype=torch.float64) * 2
    teacher = torch.randn(batch, classes, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(classes, (batch,), generator=generator)
    return DistillationProblem(
        student,
        teacher,
        labels,
        torch.softmax(teacher, -1),
        torch.full((batch,), temperature, dtype=torch.float64),
    )


@pytest.mark.parametrize(
    "statement_id",
    [s for s in CASES]
    + [
        "dkd-identity",
        "dkd-binary",
        "scale-invariance",
        "dkd-identity/unweighted",
        "dkd-binary/three-classes",
        "scale-invariance/kd",
    ],
)
def test_verdict_is_the_registry_expectation(statement_id):
    result = CHECKS[statement_id](examples=32, search_examples=10)
    assert result.verdict == derive.STATEMENTS[statement_id].expected, result.describe()
    if result.verdict == "refuted":
        assert result.counterexample and "tolerance" not in result.counterexample[:5]


def test_a_wrong_parameter_in_the_terms_is_caught():
    # The jsd twin at beta = 3/10 against derive's terms at beta = 1/3: the limit is off.
    def wrong(order):
        key = (("beta", "1/3"),)
        return (
            objective_terms("jsd", "gradient", order, key),
            objective_terms("jsd", "loss", order, key),
        )

    result = run_objective_check("jsd-limit", [Case("jsd", (1,), wrong, "planted")], _context())
    assert result.verdict == "refuted" and "planted" in result.counterexample


def test_a_wrong_first_correction_is_caught():
    # skew-kl's terms with reverse-kl's T^-1 term.
    def wrong(order):
        own = [
            objective_terms("skew-kl", q, order, (("alpha", "1/5"),)) for q in ("gradient", "loss")
        ]
        other = [objective_terms("reverse-kl", q, order) for q in ("gradient", "loss")]
        return tuple(a[:1] + b[1:2] for a, b in zip(own, other))

    result = run_objective_check(
        "skew-limit", [Case("skew-kl", (2,), wrong, "planted")], _context()
    )
    assert result.verdict == "refuted"


@pytest.mark.parametrize("factor, flagged", [(2.0, True), (0.5, False)])
def test_identity_tolerance_is_pinned_from_both_sides(monkeypatch, factor, flagged):
    problem = _problem()
    _, tolerances = target_aware.identity_errors(problem)
    real = target_aware._tckd
    # TCKD off by factor x its own example's tolerance: caught iff factor > 1.
    monkeypatch.setattr(target_aware, "_tckd", lambda *args: real(*args) + factor * tolerances)
    errors, planted_tolerances = target_aware.identity_errors(problem)
    assert bool((errors > planted_tolerances).all()) is flagged
    assert bool((errors > planted_tolerances).any()) is flagged


def test_scale_sums_catch_a_scale_dependent_penalty():
    problem = _problem()
    entry = TWINS["standardized-kl"].with_parameters(std="population")
    errors, tolerances = target_aware.scale_sums(entry, problem)
    assert bool((errors <= tolerances).all())

    class Penalised:
        def __call__(self, student, teacher, temperature, labels=None):
            return entry(student, teacher, temperature, labels) + 1e-9 * student.pow(2).sum(-1)

    errors, tolerances = target_aware.scale_sums(Penalised(), problem)
    assert bool((errors > tolerances).all())


def test_nckd_is_exactly_zero_with_two_classes_and_not_with_three():
    errors, tolerances = target_aware.nckd_values(_problem(classes=2))
    assert bool((errors == 0).all()) and bool((tolerances > 0).all())
    errors, tolerances = target_aware.nckd_values(_problem(classes=3))
    assert bool((errors > tolerances).all())
