"""``verify.audit``: the gallery is classified correctly, bad calls fail cleanly, and the CLI's
exit codes are 0 / 1 / 2."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from verify._errors import VerifyError
from verify.audit import CAUSES, VERDICTS, add_arguments, audit, run
from verify.gallery import (EXAMPLES, kd_batchmean, kd_mean_reduction, kd_missing_t_squared,
                            kd_soft_cross_entropy)

ROOT = Path(__file__).resolve().parents[1]
JSON_KEYS = {"shift_invariant", "temperature_exponent", "limit_scale", "limit_cosine", "classes",
             "batch_size", "verdict", "diagnoses"}

# torch's own warning about reduction='mean' (the pitfall kd_mean_reduction demonstrates).
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The audit's tensors are tiny: one intra-op thread is fastest, and on a shared 2-core
    machine extra threads only wait on each other (measured: 9 ms vs 0.5 s per audit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# The gallery


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_gallery_example_is_classified_as_recorded(name):
    example = EXAMPLES[name]
    result = audit(example.function)
    assert result.verdict == example.verdict
    assert result.causes == example.causes
    assert len(result.diagnoses) == len(result.causes)
    assert set(result.causes) <= set(CAUSES)
    assert result.shift_invariant == example.shift_invariant
    if example.temperature_exponent is not None:
        assert result.temperature_exponent == example.temperature_exponent
    if example.limit_scale is not None:
        expected = example.limit_scale(classes=result.classes, batch_size=result.batch_size)
        assert result.limit_scale == pytest.approx(expected, rel=1e-5)
    if example.limit_cosine_is_one is not None:
        assert (result.limit_cosine == 1.0) == example.limit_cosine_is_one


def test_value_grows_with_temperature_while_the_gradient_is_correct():
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(4, 10, generator=generator, dtype=torch.float64)
    teacher = torch.randn(4, 10, generator=generator, dtype=torch.float64)
    values = [float(kd_soft_cross_entropy(student, teacher, t)) for t in (10.0, 100.0, 1000.0)]
    assert values[0] * 50 < values[1] and values[1] * 50 < values[2]   # about T**2 log N
    result = audit(kd_soft_cross_entropy)
    assert result.verdict == "consistent" and result.temperature_exponent == 0.0
    assert result.limit_scale == 1.0 and result.limit_cosine == 1.0


@pytest.mark.parametrize("name, fix", [
    ("kd_missing_t_squared", "multiply the KL term by T**2"),
    ("kd_mean_reduction", "use reduction='batchmean'"),
    ("kd_sum_reduction", "use reduction='batchmean'"),
    ("kd_t_squared_one_path", "apply it on every path"),
    ("kd_capped_t_squared", "apply the T**2 factor unconditionally"),
    ("kd_detached_student", "must backpropagate into the student"),
    ("sigmoid_bce_distillation", "use softmax-based KL"),
    ("logits_matching_uncentred", "centre both logits"),
])
def test_each_pitfall_names_its_fix(name, fix):
    assert any(fix in diagnosis for diagnosis in audit(EXAMPLES[name].function).diagnoses)


def test_diagnoses_quote_the_measured_numbers():
    diagnoses = audit(kd_mean_reduction).diagnoses
    assert diagnoses == ("limit scale 1/N = 0.1: reduction='mean' averages over classes too; "
                         "use reduction='batchmean'",)
    assert audit(kd_missing_t_squared).diagnoses[0].startswith("gradient scales as T^-2")
    assert audit(EXAMPLES["kd_t_squared_one_path"].function).diagnoses[0].find(
        "by a factor T^-2") > 0


def test_json_has_exactly_the_contract_keys_and_is_deterministic():
    first = audit(kd_mean_reduction, seed=3).to_json()
    assert set(first) == JSON_KEYS
    assert json.loads(json.dumps(first)) == first
    assert audit(kd_mean_reduction, seed=3).to_json() == first
    assert first["classes"] == 10 and first["batch_size"] == 16


def test_float32_classifies_like_float64():
    assert audit(kd_batchmean, dtype=torch.float32).verdict == "consistent"
    result = audit(kd_missing_t_squared, dtype="float32")
    assert result.causes == ("missing-temperature-factor",) and result.dtype == "float32"
    assert result.temperatures[-1] < 1e4            # the range follows the dtype


@settings(max_examples=15, deadline=None)
@given(classes=st.integers(min_value=3, max_value=60), batch_size=st.integers(2, 40),
       seed=st.integers(0, 2**31))
def test_reduction_pitfalls_are_named_for_any_shape(classes, batch_size, seed):
    shape = {"classes": classes, "batch_size": batch_size, "seed": seed}
    assert audit(kd_batchmean, **shape).verdict == "consistent"
    assert audit(kd_missing_t_squared, **shape).causes == ("missing-temperature-factor",)
    causes = audit(kd_mean_reduction, **shape).causes
    assert "mean-reduction" in causes
    assert set(causes) <= {"mean-reduction", "double-batch-average"}   # 1/N == 1/B if N == B
    assert audit(EXAMPLES["kd_sum_reduction"].function, **shape).causes == ("sum-reduction",)


# --------------------------------------------------------------------------------------------
# Negative controls: planted violations outside the gallery, one per remaining cause


def _kd_plus_row_penalty(student_logits, teacher_logits, temperature):
    """KD plus a tiny term that is not shift invariant: the class sum must catch it."""
    return kd_batchmean(student_logits, teacher_logits, temperature) + 1e-9 * student_logits.sum()


def _kd_times(factor):
    def loss(student_logits, teacher_logits, temperature):
        return factor * kd_batchmean(student_logits, teacher_logits, temperature)
    return loss


def _kd_times_t(student_logits, teacher_logits, temperature):
    return kd_batchmean(student_logits, teacher_logits, temperature) / temperature


def _kd_double_batch_average(student_logits, teacher_logits, temperature):
    return kd_batchmean(student_logits, teacher_logits, temperature) / student_logits.shape[0]


def _self_distillation_entropy(student_logits, teacher_logits, temperature):
    """Minimises the student's own entropy: it never looks at the teacher."""
    log_probabilities = F.log_softmax(student_logits / temperature, dim=-1)
    entropy = -(log_probabilities.exp() * log_probabilities).sum(-1)
    return temperature**2 * entropy.mean()


@pytest.mark.parametrize("fn, causes", [
    (_kd_plus_row_penalty, ("not-shift-invariant",)),
    (_kd_times(1.01), ("constant-factor",)),
    (_kd_times(-1.0), ("negated",)),
    (_kd_times_t, ("temperature-power",)),
    (_kd_double_batch_average, ("double-batch-average",)),
    (_self_distillation_entropy, ("wrong-limit",)),
])
def test_planted_violations_are_caught(fn, causes):
    result = audit(fn)
    assert result.verdict == "inconsistent"
    assert result.causes == causes


def test_the_t_instead_of_t_squared_diagnosis_says_so():
    result = audit(_kd_times_t)
    assert result.temperature_exponent == -1.0
    assert "multiplied by T instead of T**2" in result.diagnoses[0]


# --------------------------------------------------------------------------------------------
# Bad calls: one table


def _returns_float(student_logits, teacher_logits, temperature):
    return kd_batchmean(student_logits, teacher_logits, temperature).item()


def _returns_per_example(student_logits, teacher_logits, temperature):
    return F.kl_div(F.log_softmax(student_logits / temperature, -1),
                    F.softmax(teacher_logits / temperature, -1), reduction="none").sum(-1)


def _returns_nan(student_logits, teacher_logits, temperature):
    return student_logits.sum() * float("nan")


def _returns_integer(student_logits, teacher_logits, temperature):
    return torch.tensor(3)


def _raises(student_logits, teacher_logits, temperature):
    raise KeyError("teacher")


def _non_finite_gradient(student_logits, teacher_logits, temperature):
    return torch.sqrt(((student_logits - student_logits.detach()) ** 2).sum())


def _two_arguments(student_logits, teacher_logits):
    return kd_batchmean(student_logits, teacher_logits, 1.0)


BAD_CALLS = [
    ({"fn": 42}, "fn must be callable"),
    ({"classes": 1}, "classes must be an integer >= 2, got 1"),
    ({"classes": 2.5}, "classes must be an integer >= 2, got 2.5"),
    ({"classes": True}, "classes must be an integer >= 2, got True"),
    ({"batch_size": 1}, "batch_size must be an integer >= 2"),
    ({"batch_size": "16"}, "batch_size must be an integer >= 2"),
    ({"seed": -1}, "seed must be an integer in [0, 2**63), got -1"),
    ({"seed": 0.5}, "seed must be an integer"),
    ({"dtype": torch.float16}, "dtype must be one of float64, float32, got torch.float16"),
    ({"dtype": "double"}, "dtype must be one of float64, float32, got 'double'"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda, got 'tpu'"),
    ({"fn": _returns_float}, "returned float, expected a scalar torch.Tensor"),
    ({"fn": _returns_per_example}, "returned a tensor of shape (16,), expected a scalar"),
    ({"fn": _returns_nan}, "returned nan"),
    ({"fn": _returns_integer}, "returned a tensor of dtype torch.int64"),
    ({"fn": _raises}, "_raises raised KeyError: 'teacher'"),
    ({"fn": _non_finite_gradient}, "w.r.t. the student logits is not finite at T=100"),
    ({"fn": _two_arguments}, "raised TypeError"),
]
if not torch.cuda.is_available():
    BAD_CALLS.append(({"device": "cuda"}, "CUDA is not available"))


@pytest.mark.parametrize("arguments, message", BAD_CALLS)
def test_bad_calls_raise_verify_error(arguments, message):
    arguments = dict(arguments)
    fn = arguments.pop("fn", kd_batchmean)
    with pytest.raises(VerifyError) as error:
        audit(fn, **arguments)
    assert message in str(error.value)


# --------------------------------------------------------------------------------------------
# Command line: run() in process, then the real process through ``python -m verify audit``


def _run_in_process(capsys, *argv):
    parser = add_arguments(argparse.ArgumentParser())
    code = run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, code", [
    (("verify.gallery:kd_batchmean",), 0),
    (("verify.gallery:logits_matching_centred", "--json"), 0),
    (("verify.gallery:kd_sum_reduction", "--batch-size", "8", "--classes", "5"), 1),
    (("verify.gallery:kd_missing_t_squared", "--json", "--dtype", "float32", "--seed", "7"), 1),
    (("verify.gallery:no_such_loss",), 2),
    (("no_such_module_for_audit:loss",), 2),
    (("verify.gallery",), 2),
    (("verify.gallery:EXAMPLES",), 2),
    (("verify.gallery:kd_batchmean", "--classes", "one"), 2),
    (("verify.gallery:kd_batchmean", "--batch-size", "1"), 2),
    (("verify.gallery:kd_batchmean", "--seed", "-3"), 2),
    (("verify.gallery:kd_batchmean", "--dtype", "float16"), 2),
    (("verify.gallery:kd_batchmean", "--device", "tpu"), 2),
    (("json:dumps",), 2),
])
def test_run_exit_codes(capsys, argv, code):
    returned, out, err = _run_in_process(capsys, *argv)
    assert returned == code
    if code == 2:
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("error: ")
    else:
        assert err == ""
        if "--json" in argv:
            assert set(json.loads(out)) == JSON_KEYS
        else:
            assert "verdict" in out


def test_run_prints_the_sum_reduction_scale(capsys):
    _, out, _ = _run_in_process(capsys, "verify.gallery:kd_sum_reduction", "--json",
                                "--batch-size", "8")
    data = json.loads(out)
    assert data["limit_scale"] == 8.0 and data["batch_size"] == 8
    assert data["diagnoses"] == ["limit scale B = 8: reduction='sum' adds over the batch; use "
                                 "reduction='batchmean' (or divide the sum by the batch size)"]


def _process(*argv):
    return subprocess.run([sys.executable, "-m", "verify", "audit", *argv],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)


def test_process_exit_0_for_a_correct_loss():
    process = _process("verify.gallery:kd_batchmean", "--json")
    assert process.returncode == 0, process.stderr
    data = json.loads(process.stdout)
    assert set(data) == JSON_KEYS and data["verdict"] == "consistent" and data["diagnoses"] == []


def test_process_exit_1_names_the_pitfall():
    process = _process("verify.gallery:kd_missing_t_squared", "--json")
    assert process.returncode == 1
    data = json.loads(process.stdout)
    assert data["verdict"] == "inconsistent" and data["temperature_exponent"] == -2.0
    assert "the T**2 factor is missing" in data["diagnoses"][0]


@pytest.mark.parametrize("argv, message", [
    (("no_such_module_for_audit:loss",), "cannot import module 'no_such_module_for_audit'"),
    (("verify.gallery:no_such_loss",), "has no attribute 'no_such_loss'"),
    (("json:dumps", "--json"), "json:dumps raised TypeError"),
    ((), "the following arguments are required: target"),
])
def test_process_exit_2_is_one_line_without_traceback(argv, message):
    process = _process(*argv)
    assert process.returncode == 2
    assert process.stdout == ""
    assert len(process.stderr.splitlines()) == 1, process.stderr
    assert message in process.stderr and "Traceback" not in process.stderr


def test_verdicts_are_the_two_documented_ones():
    assert VERDICTS == ("consistent", "inconsistent")
