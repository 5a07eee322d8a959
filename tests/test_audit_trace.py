"""The audit traces the loss symbolically (``derive.trace``) and puts the exact relation beside
the numeric identification: agreeing relations for the gallery's KD pitfalls, "not traced" with
its reason (the numeric verdict stands), a planted disagreement flagged as a toolkit bug (the
negative control), and ``--json`` kept pure JSON when the loss prints."""

import argparse
import dataclasses
import json

import pytest
import sympy
import torch
import torch.nn.functional as F

import derive
from derive.tracing import Relation
from derive.tracing._symbols import B
from verify.audit import add_arguments, audit, run
from verify.audit.symbolic import TRACE_ORDER, SymbolicCheck
from verify.gallery import (
    kd_batchmean,
    kd_mean_reduction,
    kd_missing_t_squared,
    kd_top_k_teacher,
    token_kd,
)

pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")

#: A small shape: the numeric audit is the slow part, the trace does not depend on it.
SHAPE = {"classes": 6, "batch_size": 4}


@pytest.fixture(scope="module")
def audited():
    """The three KD losses of the issue, audited once each (numerically and symbolically)."""
    return {
        fn.__name__: audit(fn, **SHAPE)
        for fn in (kd_batchmean, kd_mean_reduction, kd_missing_t_squared)
    }


# --------------------------------------------------------------------------------------------
# Tracing succeeds: the relation beside the numeric identification, agreeing


@pytest.mark.parametrize(
    "name, text, weight, exponent, verdict",
    [
        ("kd_batchmean", "= KD", 1.0, 0, "consistent"),
        ("kd_mean_reduction", "= (1/N)*KD", 1.0 / SHAPE["classes"], 0, "inconsistent"),
        ("kd_missing_t_squared", "= T^-2*KD", 1.0, -2, "inconsistent"),
    ],
)
def test_relation_agrees_with_the_numeric_identification(
    audited, name, text, weight, exponent, verdict
):
    result = audited[name]
    check = result.symbolic
    assert result.verdict == verdict
    assert check.traced and check.reason is None and check.order == TRACE_ORDER
    assert check.relation["text"] == text and check.relation["objective"] == "kl"
    assert check.batch_weight == "1/B"
    assert check.agrees is True and check.disagreements == ()
    # The prediction is the numeric identification, exactly where the audit rounds.
    assert check.predicted["objective"] == result.objective == "kl"
    assert check.predicted["weight"] == pytest.approx(weight, rel=1e-12)
    assert result.weight == pytest.approx(weight, rel=1e-5)
    assert check.predicted["temperature_exponent"] == exponent == result.identification_exponent
    assert check.predicted["gradient_exponent"] == result.temperature_exponent
    assert check.predicted["limit_scale"] == pytest.approx(result.limit_scale, rel=1e-5)
    # The text report: the symbolic line right after the identification.
    lines = result.to_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("  identified as"))
    assert lines[index + 1].startswith(
        f"  symbolic              ℓ {text}, exactly, at every term computed"
    )
    assert lines[index + 1].endswith("agrees with the numeric results")
    assert "TOOLKIT BUG" not in result.to_text()
    # JSON: additive, the relation as derive trace prints it.
    data = result.to_json()["symbolic"]
    assert data["traced"] is True and data["agrees"] is True and data["reason"] is None
    assert (
        data["relation"]["factor"]
        == {"= KD": "1", "= (1/N)*KD": "1/N", "= T^-2*KD": "T**(-2)"}[text]
    )
    assert data["batch_weight"] == "1/B" and data["disagreements"] == []


def test_the_symbolic_key_is_additive():
    """Every key of the JSON contract is still there, unchanged; ``symbolic`` is one more."""
    with_trace = audit(kd_mean_reduction, **SHAPE).to_json()
    without = audit(kd_mean_reduction, symbolic=False, **SHAPE).to_json()
    assert set(with_trace) - set(without) == set()
    assert {k: v for k, v in with_trace.items() if k != "symbolic"} == {
        k: v for k, v in without.items() if k != "symbolic"
    }
    assert without["symbolic"] == {
        "traced": False,
        "order": None,
        "relation": None,
        "relation_text": None,
        "batch_weight": None,
        "predicted": None,
        "agrees": None,
        "disagreements": [],
        "reason": "not asked for (--no-trace)",
    }


# --------------------------------------------------------------------------------------------
# Tracing fails: "not traced (reason)", the numeric verdict stands


def clamped_kd(student_logits, teacher_logits, temperature):
    """KD with the teacher's probabilities clamped: ``clamp`` is outside what is traced."""
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1).clamp(min=1e-30)
    return temperature**2 * F.kl_div(log_q, p, reduction="batchmean")


def test_unsupported_operation_is_not_traced_and_the_audit_stands():
    result = audit(clamped_kd, **SHAPE)
    assert result.verdict == "consistent" and result.objective == "kl"
    check = result.symbolic
    assert not check.traced and check.agrees is None
    assert check.reason.startswith("unsupported: Tensor.clamp at ")
    assert "test_audit_trace.py" in check.reason and "\n" not in check.reason
    assert f"  symbolic              not traced ({check.reason})" in result.to_text().splitlines()
    assert result.to_json()["symbolic"]["traced"] is False


def test_control_flow_and_other_signatures_are_not_traced():
    result = audit(kd_top_k_teacher, **SHAPE)
    assert result.causes == ("top-k-teacher",)
    assert result.symbolic.reason.startswith("unsupported: Tensor.topk")
    tokens = audit(token_kd, batch_size=2, sequence_length=3, classes=6, mask=True)
    assert tokens.verdict == "consistent"
    assert tokens.symbolic.reason == "token sequences [B, L, N]: the trace takes logits [B, N]"


class _Stop(BaseException):
    """Neither ``SystemExit`` nor ``KeyboardInterrupt``."""


def _misbehaves_when_traced(exception):
    def loss(student_logits, teacher_logits, temperature):
        """A correct KD, except under ``torch.fx`` (``T`` a proxy), where it raises."""
        if isinstance(temperature, torch.fx.Proxy):
            raise exception
        return kd_batchmean(student_logits, teacher_logits, temperature)

    return loss


@pytest.mark.parametrize(
    "exception, shown",
    [
        (SystemExit(0), "SystemExit: 0"),
        (KeyboardInterrupt(), "was interrupted (KeyboardInterrupt)"),
        (_Stop("stop"), "_Stop: stop"),
    ],
)
def test_base_exceptions_while_traced_are_contained(exception, shown):
    result = audit(_misbehaves_when_traced(exception), **SHAPE)
    assert result.verdict == "consistent"
    assert not result.symbolic.traced and shown in result.symbolic.reason
    assert "\n" not in result.symbolic.reason


def test_a_trace_past_its_deadline_is_not_traced(monkeypatch):
    import time

    def slow_trace(fn, order):
        time.sleep(5)

    monkeypatch.setattr("verify.audit.symbolic.TRACE_TIMEOUT", 0.2)
    monkeypatch.setattr(derive, "trace", slow_trace)
    result = audit(kd_batchmean, **SHAPE)
    assert result.verdict == "consistent"
    assert result.symbolic.reason.startswith("the trace did not finish within 0.2 s")


# --------------------------------------------------------------------------------------------
# The negative control: a planted disagreement is flagged as a toolkit bug


def _planted(monkeypatch, change):
    """Make ``derive.trace`` return a wrong result, as a bug of the trace would."""
    real = derive.trace

    def wrong(fn, *, order):
        return change(real(fn, order=order))

    monkeypatch.setattr(derive, "trace", wrong)


@pytest.mark.parametrize(
    "change, expected",
    [
        # = KD where the loss is (1/N)*KD: the weight disagrees.
        (
            lambda r: dataclasses.replace(
                r, relation=Relation("kl", sympy.Integer(1), powers=r.relation.powers)
            ),
            "identification: symbolic kl, weight 1 (exact), numeric kl, weight 0.1667",
        ),
        # = reverse-kl: another objective.
        (
            lambda r: dataclasses.replace(
                r, relation=Relation("reverse-kl", r.relation.factor, powers=r.relation.powers)
            ),
            "identification: symbolic reverse-kl, weight 0.1667 (exact), numeric kl",
        ),
        # A sum over the batch: the leading order's scale disagrees too.
        (
            lambda r: dataclasses.replace(r, batch_weight=sympy.Integer(1)),
            "limit scale: symbolic 0.666667, numeric 0.166667",
        ),
        # No relation where the numeric audit identifies KD.
        (
            lambda r: dataclasses.replace(r, relation=None),
            "identification: symbolic no exact relation at the terms computed, numeric kl",
        ),
    ],
)
def test_planted_disagreement_is_flagged(monkeypatch, change, expected):
    _planted(monkeypatch, change)
    result = audit(kd_mean_reduction, **SHAPE)
    check = result.symbolic
    assert check.traced and check.agrees is False
    assert any(d.startswith(expected) for d in check.disagreements), check.disagreements
    # The numeric verdict is unchanged: a disagreement is reported, not a verdict.
    assert result.verdict == "inconsistent" and result.causes == ("mean-reduction",)
    text = result.to_text()
    assert "DISAGREES with the numeric results" in text
    assert "  TOOLKIT BUG: the symbolic and numeric results disagree (" in text
    assert "please report this as a bug of the toolkit" in text
    data = result.to_json()["symbolic"]
    assert data["agrees"] is False and data["disagreements"] == list(check.disagreements)


def test_planted_disagreement_through_the_command_line(monkeypatch, capsys):
    """Exit code: the numeric verdict's (0 here); the bug report on stderr beside --json."""
    _planted(monkeypatch, lambda r: dataclasses.replace(r, batch_weight=1 / B**2))
    code = run(
        _arguments("verify.gallery:kd_batchmean", "--json", "--classes", "6", "--batch-size", "4")
    )
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)
    assert data["verdict"] == "consistent" and data["symbolic"]["agrees"] is False
    assert captured.err.startswith(
        "verify audit: TOOLKIT BUG: the symbolic and numeric results disagree ("
    )
    assert len(captured.err.splitlines()) == 1


# --------------------------------------------------------------------------------------------
# The command line: --json stays pure JSON, --no-trace


def printing_kd(student_logits, teacher_logits, temperature):
    """Prints on every call, the trace's included."""
    print('{"verdict": "consistent"}', temperature)
    return kd_batchmean(student_logits, teacher_logits, temperature)


def _arguments(*argv):
    return add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_json_stays_pure_when_the_loss_prints(capsys):
    code = run(
        _arguments(f"{__name__}:printing_kd", "--json", "--classes", "6", "--batch-size", "4")
    )
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    data = json.loads(captured.out)
    assert data["symbolic"]["traced"] is True and data["symbolic"]["agrees"] is True
    assert data["symbolic"]["relation"]["text"] == "= KD"


def test_no_trace_option(capsys):
    code = run(
        _arguments(
            "verify.gallery:kd_missing_t_squared",
            "--no-trace",
            "--classes",
            "6",
            "--batch-size",
            "4",
        )
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "  symbolic              not traced (not asked for (--no-trace))" in out.splitlines()


def test_symbolic_must_be_a_bool():
    from verify._errors import VerifyError

    with pytest.raises(VerifyError, match="symbolic must be True or False"):
        audit(kd_batchmean, symbolic="yes")
    assert SymbolicCheck(traced=False, reason="x").to_json()["agrees"] is None
