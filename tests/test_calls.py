"""Call expressions (derive.calls): the whitelist refuses, never evaluates; recognised
signatures; the audit and the trace call what the user has; logits matching is identified."""

import os

import forkrun
import pytest
import torch
import torch.nn.functional as F

import derive
from derive import DeriveError
from derive.calls import parse_call, recognise
from verify import VerifyError
from verify.audit import audit

HOSTILE = [
    '__import__("os")._exit(0)',
    "fn(student, teacher, T).real",
    "fn(lambda: 0)",
    "fn(*student)",
    "fn(**{'T': T})",
    'fn(f"{T}")',
    "fn(student, teacher, T + 1)",
    "fn(open('/tmp/i22/written', 'w'))",
    "fn(student)[0]",
    "fn(x=[i for i in student])",
    "fn(-student)",
    "student(fn)",
    "fn(fn)",
    "fn(student",
    "fn(student, teacher, (x := T))",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_call_outside_the_whitelist_is_one_line(text):
    with pytest.raises(DeriveError) as error:
        parse_call(text)
    assert "\n" not in str(error.value) and "--call" in str(error.value)


def _cli(*arguments):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return forkrun.run(["-m", *arguments], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("tool", ["verify audit", "derive trace"])
@pytest.mark.parametrize("text", ['__import__("os")._exit(0)', "fn(open('/tmp/i22/written', 'w'))"])
def test_the_cli_refuses_a_hostile_call_without_evaluating_it(tool, text):
    # Evaluated, the first would exit 0 and the second would create the file.
    if os.path.exists("/tmp/i22/written"):
        os.remove("/tmp/i22/written")
    done = _cli(*tool.split(), "verify.gallery:kd_batchmean", "--call", text)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not os.path.exists("/tmp/i22/written")


def test_invoke_binds_the_names_and_literals():
    spec = parse_call('fn(1, -2.5, None, True, "s", [T], (mask,), {"k": {"j": target}})(student)')

    def fn(*arguments):
        return lambda student: (arguments, student)

    got = spec.invoke(fn, student="z", teacher="v", T=3.0, target="y", mask="m")
    assert got == ((1, -2.5, None, True, "s", [3.0], ("m",), {"k": {"j": "y"}}), "z")
    assert spec.uses("target") and spec.uses("mask") and not spec.uses("teacher")


def test_recognised_signatures():
    assert recognise(lambda student, teacher, T: 0) is None  # the default call
    assert recognise(lambda s, t, beta=0.5, tau=1.0: 0).text == "fn(student, teacher, tau=T)"
    assert (
        recognise(lambda s, t, labels=None, temp=1: 0, labels=True).text
        == "fn(student, teacher, temp=T, labels=mask)"
    )

    class Loss(torch.nn.Module):
        def __init__(self, temperature, reduction="batchmean"):
            super().__init__()
            self.temperature = temperature

        def forward(self, student, teacher):
            return 0

    assert recognise(Loss).text == "fn(temperature=T)(student, teacher)"

    class NoTemperature(torch.nn.Module):
        def __init__(self, width):
            super().__init__()

    with pytest.raises(DeriveError, match="takes no temperature"):
        recognise(NoTemperature)


def _kd_mse(student, teacher, temperature=1.0):
    return F.mse_loss(student / temperature, teacher / temperature)


def _centred(student, teacher, *, tau):
    difference = student - teacher
    difference = difference - difference.mean(-1, keepdim=True)
    return 0.5 * (difference**2).mean(-1).mean()


def test_logits_matching_is_identified_and_declared_without_a_defect():
    undeclared = audit(_kd_mse, symbolic=False)
    assert (undeclared.objective, undeclared.weight) == ("logits-matching", 2.0)
    assert undeclared.identification_exponent == -2.0
    assert "missing-temperature-factor" in undeclared.causes  # KD was declared
    declared = audit(_kd_mse, expect="logits-matching", weight=2, power=-2)
    assert declared.verdict == "consistent", declared.diagnoses
    assert declared.symbolic.relation_text.startswith("ℓ = 2*T^-2*logits-matching")
    # The negative control: the declared power is checked, not assumed.
    wrong = audit(_kd_mse, expect="logits-matching", weight=2, symbolic=False)
    assert wrong.verdict == "inconsistent" and "missing-temperature-factor" in wrong.causes
    centred = audit(_centred, expect="centred-logits-matching")
    assert centred.verdict == "consistent", centred.diagnoses
    assert centred.call == "fn(student, teacher, tau=T) (recognised from the signature)"
    assert audit(_centred, symbolic=False).objective == "centred-logits-matching"


def test_the_trace_calls_through_the_expression():
    result = derive.trace(_kd_mse, order=2, call="fn(student, teacher, temperature=T)")
    assert result.relation.text == "= 2*T^-2*logits-matching"
    assert result.call == "fn(student, teacher, temperature=T) (--call)"
    with pytest.raises(DeriveError, match="uses target"):
        derive.trace(_kd_mse, call="fn(student, teacher, target)")


def test_bad_call_and_mask_arguments():
    with pytest.raises(VerifyError, match="--call: arithmetic"):
        audit(_kd_mse, call="fn(student, teacher, T * 2)")
    with pytest.raises(
        VerifyError, match="mask must be True or False, got 'tokens' \\(or 'labels'"
    ):
        audit(_kd_mse, mask="tokens")
    with pytest.raises(VerifyError, match="uses mask: audit token sequences"):
        audit(_kd_mse, call="fn(student, teacher, T, mask)")
    with pytest.raises(VerifyError, match="power must be a finite number"):
        audit(_kd_mse, power=float("nan"))


class Distiller(torch.nn.Module):
    """A plain nn.KLDivLoss setup, as docs/audit.md shows it."""

    def __init__(self, temperature):
        super().__init__()
        self.temperature, self.kl = temperature, torch.nn.KLDivLoss(reduction="batchmean")

    def forward(self, student_logits, teacher_logits):
        T = self.temperature
        student = F.log_softmax(student_logits / T, -1)
        return self.kl(student, F.softmax(teacher_logits / T, -1)) * T**2


def test_a_kldivloss_module_is_recognised_and_consistent():
    result = audit(Distiller)
    assert result.call == "fn(temperature=T)(student, teacher) (recognised from the signature)"
    assert result.verdict == "consistent", result.diagnoses
    assert (result.objective, result.weight) == ("kl", 1.0)


def _batch_mean_with_max(student, teacher, T):
    squared = (student / T - teacher / T) ** 2
    return squared.mean(-1).sum() / max(squared.size(0), 1)  # TRL's batch mean


def _branch_on_the_batch_size(student, teacher, T):
    squared = (student - teacher) ** 2
    return squared.sum() / (2 if squared.size(0) > 1 else 1)


def _minimum_of_the_temperature(student, teacher, T):
    return ((student - teacher) ** 2).sum() / min(T, 4.0)


def test_comparisons_of_sizes_are_settled_while_tracing():
    result = derive.trace(_batch_mean_with_max, order=2)
    assert result.relation.text == "= 2*T^-2*logits-matching" and str(result.batch_weight) == "1/B"
    # Negative controls: a comparison that depends on the size, and one on T, stay refused.
    with pytest.raises(DeriveError, match="comparison of sizes .* depends on the batch size"):
        derive.trace(_branch_on_the_batch_size)
    with pytest.raises(DeriveError, match="control flow on a traced value"):
        derive.trace(_minimum_of_the_temperature)


def _token_kd(student_logits, teacher_logits, labels=None, temperature=1.0):
    """KD over the real tokens of Hugging Face labels (-100 at padding), a mean over them."""
    per_token = F.kl_div(
        F.log_softmax(student_logits / temperature, -1),
        F.log_softmax(teacher_logits / temperature, -1),
        reduction="none",
        log_target=True,
    ).sum(-1)
    real = labels != -100
    return temperature**2 * per_token[real].sum() / real.sum()


def _token_kd_ignoring_labels(student_logits, teacher_logits, labels=None, temperature=1.0):
    per_token = F.kl_div(
        F.log_softmax(student_logits / temperature, -1),
        F.log_softmax(teacher_logits / temperature, -1),
        reduction="none",
        log_target=True,
    ).sum(-1)
    return temperature**2 * per_token.mean()


def test_hugging_face_labels_mark_the_padding():
    shape = dict(batch_size=4, sequence_length=5, classes=10, mask="labels", symbolic=False)
    result = audit(_token_kd, **shape)
    assert result.call == (
        "fn(student, teacher, temperature=T, labels=mask) (recognised from the signature)"
    )
    assert result.verdict == "consistent" and result.normalization == "token-mean"
    # The negative control: the same loss that ignores the labels averages over the padding.
    ignoring = audit(_token_kd_ignoring_labels, **shape)
    assert ignoring.causes == ("padding-included", "position-mean")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--shape", "2,3,4", "--mask", "tokens"], "--mask takes nothing or 'labels'"),
        (["--power", "x"], "--power must be a number in [-8, 8]"),
        (["--call", "fn(student, teacher, T" * 60], "--call must be a call expression of at"),
    ],
)
def test_bad_audit_options_are_one_line(arguments, message):
    done = _cli("verify", "audit", "verify.gallery:kd_batchmean", *arguments)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
