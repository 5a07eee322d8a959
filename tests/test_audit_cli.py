"""The audit's bad input, in one table per entry point: the command line and the Python API.

Every bad option value (bad type, out of bounds, empty, huge), every target that cannot be
loaded, and every loss that misbehaves (exits, interrupts, raises a ``BaseException``, hangs)
gives one line on stderr, exit code 2, no traceback, nothing on stdout, and no file left
behind; the API raises :class:`~verify.VerifyError` for the same arguments.
"""

import argparse
import io
import json
import os
import sys
from pathlib import Path

import forkrun
import pytest
import torch

from verify._errors import VerifyError
from verify.audit import LIMITS, add_arguments, audit, load_target, parse_expectation, run
from verify.gallery import kd_batchmean

ROOT = Path(__file__).resolve().parents[1]
TARGET = "verify.gallery:kd_batchmean"
HUGE = "9" * 40

#: A module that prints and exits when imported, as a script with argparse would; written at
#: test time (a file of it under tests/ would stop pytest's own collection).
_NOISY_MODULE = """
import sys

print("parsing arguments ...")
sys.exit(2)


def loss(student_logits, teacher_logits, temperature):
    return student_logits.sum()
"""


@pytest.fixture(autouse=True, scope="module")
def _noisy_module(tmp_path_factory):
    directory = tmp_path_factory.mktemp("modules")
    (directory / "audit_noisy_module.py").write_text(_NOISY_MODULE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(directory))
        yield


#: ``(argv, message)``: the command lines that must fail with exit code 2.
BAD_COMMAND_LINES = [
    # --classes: type, bounds, empty, huge
    ((TARGET, "--classes", "ten"), "--classes must be an integer in [2, 65536], got 'ten'"),
    ((TARGET, "--classes", "2.5"), "--classes must be an integer"),
    ((TARGET, "--classes", "1"), "--classes must be an integer in [2, 65536], got '1'"),
    ((TARGET, "--classes", str(LIMITS["classes"] + 1)), "--classes must be an integer"),
    ((TARGET, "--classes", ""), "--classes must be an integer"),
    ((TARGET, "--classes", HUGE), "--classes must be an integer"),
    ((TARGET, "--classes", "1000000000"), "--classes must be an integer in [2, 65536]"),
    # --batch-size
    ((TARGET, "--batch-size", "x"), "--batch-size must be an integer in [2, 4096]"),
    ((TARGET, "--batch-size", "1"), "--batch-size must be an integer in [2, 4096], got '1'"),
    ((TARGET, "--batch-size", "4097"), "--batch-size must be an integer"),
    ((TARGET, "--batch-size", ""), "--batch-size must be an integer"),
    ((TARGET, "--batch-size", "1e3"), "--batch-size must be an integer"),
    ((TARGET, "--batch-size", "1000000000"), "--batch-size must be an integer in [2, 4096]"),
    # --shape and --mask
    ((TARGET, "--shape", "4"), "--shape must be B,N or B,L,N (integers), got '4'"),
    ((TARGET, "--shape", "4,x,10"), "--shape must be B,N or B,L,N"),
    ((TARGET, "--shape", ""), "--shape must be B,N or B,L,N"),
    ((TARGET, "--shape", "1,10"), "--shape's B must be an integer in [2, 4096]"),
    ((TARGET, "--shape", "4,0,10"), "--shape's L must be an integer in [1, 4096]"),
    ((TARGET, "--shape", "4,4097,10"), "--shape's L must be an integer in [1, 4096]"),
    ((TARGET, "--shape", f"4,8,{HUGE}"), "--shape's N must be an integer"),
    ((TARGET, "--shape", "100,100,1000"), "at most 2097152 (2**21) are audited"),
    ((TARGET, "--shape", "4,8,10", "--classes", "10"), "give either --shape or --classes"),
    ((TARGET, "--mask"), "--mask needs token sequences: give --shape B,L,N"),
    # --seed
    ((TARGET, "--seed", "-1"), "--seed must be an integer in [0, 4294967295]"),
    ((TARGET, "--seed", str(2**32)), "--seed must be an integer in [0, 4294967295]"),
    ((TARGET, "--seed", "x"), "--seed must be an integer"),
    ((TARGET, "--seed", ""), "--seed must be an integer"),
    # --dtype and --device
    ((TARGET, "--dtype", "float16"), "dtype must be one of float64, float32, got 'float16'"),
    ((TARGET, "--dtype", ""), "dtype must be one of float64, float32, got ''"),
    ((TARGET, "--device", "tpu"), "device must be one of auto, cpu, cuda, got 'tpu'"),
    ((TARGET, "--device", ""), "device must be one of auto, cpu, cuda, got ''"),
    # --expect and --weight
    ((TARGET, "--expect", ""), "--expect must be NAME[:k=v,...], got ''"),
    ((TARGET, "--expect", "nope"), "expect must be NAME[:k=v,...] with NAME one of kl,"),
    ((TARGET, "--expect", "jsd:beta=2"), "parameter beta of objective jsd must be a rational"),
    ((TARGET, "--expect", "jsd:gamma=1"), "objective jsd has parameters beta"),
    ((TARGET, "--expect", "standardized-kl"), "give the parameter std"),
    ((TARGET, "--weight", "0"), "--weight must be a number > 0 (e.g. 0.5), got '0'"),
    ((TARGET, "--weight", "-1"), "--weight must be a number > 0"),
    ((TARGET, "--weight", "nan"), "--weight must be a number > 0"),
    ((TARGET, "--weight", "inf"), "--weight must be a number > 0"),
    ((TARGET, "--weight", "1e400"), "--weight must be a number > 0"),
    ((TARGET, "--weight", "x"), "--weight must be a number > 0"),
    ((TARGET, "--weight", ""), "--weight must be a number > 0"),
    # --timeout
    ((TARGET, "--timeout", "0"), "--timeout must be a number > 0 and <= 86400"),
    ((TARGET, "--timeout", "-5"), "--timeout must be a number > 0"),
    ((TARGET, "--timeout", "1e9"), "--timeout must be a number > 0 and <= 86400"),
    ((TARGET, "--timeout", "x"), "--timeout must be a number > 0"),
    ((TARGET, "--timeout", ""), "--timeout must be a number > 0"),
    # targets that cannot be loaded
    (("verify.gallery",), "target must be MODULE:FUNCTION"),
    (("",), "target must be MODULE:FUNCTION"),
    (("verify.gallery:no_such_loss",), "has no attribute 'no_such_loss'"),
    (("no_such_module_for_audit:loss",), "cannot import module 'no_such_module_for_audit'"),
    (("audit_targets:not_callable",), "is not callable (it is a int)"),
    (("audit_noisy_module:loss",), "called sys.exit(2) when imported: the module runs a script"),
    (("verify.gallery:EXAMPLES",), "is not callable"),
    # losses that misbehave
    (("json:dumps",), "json:dumps raised TypeError"),
    (("audit_targets:exits_zero",), "called sys.exit(0) (called with student and teacher"),
    (("audit_targets:exits_with_message",), "called sys.exit('cannot continue')"),
    (("audit_targets:interrupted",), "was interrupted (KeyboardInterrupt)"),
    (("audit_targets:raises_base_exception",), "raised _Stop: stop"),
    (("audit_targets:exits_in_backward",), "called sys.exit(3) in its backward pass"),
    (("audit_targets:hangs", "--timeout", "0.5"), "did not finish within its timeout of 0.5 s"),
    (
        ("audit_targets:swallows_everything_and_hangs", "--timeout", "0.5"),
        "did not finish within its timeout of 0.5 s",
    ),
]


def _run(capsys, *argv):
    code = run(add_arguments(argparse.ArgumentParser()).parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", BAD_COMMAND_LINES)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    capsys, monkeypatch, tmp_path, argv, message
):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert message in err, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, code",
    [
        ((TARGET,), 0),
        (("verify.gallery:kd_sum_reduction", "--batch-size", "8", "--classes", "5", "--json"), 1),
        (("verify.gallery:kd_with_loss_weight", "--weight", "1/2"), 0),
        (("verify.gallery:reverse_kl", "--expect", "reverse-kl", "--json"), 0),
        (("verify.gallery:token_kd", "--shape", "3,5,7", "--mask", "--json"), 0),
        (("verify.gallery:kd_missing_t_squared", "--dtype", "float32", "--seed", "7"), 1),
    ],
)
def test_good_input_exits_0_or_1_with_a_report(capsys, monkeypatch, tmp_path, argv, code):
    monkeypatch.chdir(tmp_path)
    returned, out, err = _run(capsys, *argv)
    assert returned == code and err == ""
    if "--json" in argv:
        data = json.loads(out)
        assert data["verdict"] == ("consistent" if code == 0 else "inconsistent")
    else:
        assert "verdict" in out
    assert list(tmp_path.iterdir()) == []


def test_what_the_loss_prints_stays_out_of_the_json(capsys):
    code, out, err = _run(capsys, "audit_targets:prints", "--json")
    assert code == 0 and err == ""
    assert json.loads(out)["objective"] == "kl"
    result = audit(load_target("audit_targets:prints"))
    assert result.printed_lines > 0


def test_progress_is_shown_on_a_terminal_and_erased(capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = run(add_arguments(argparse.ArgumentParser()).parse_args([TARGET]))
    assert code == 0
    assert "verify audit: calling the loss at T=" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K")
    assert "verdict" in capsys.readouterr().out


#: ``(keywords, message)``: bad arguments of the Python API.
BAD_CALLS = [
    ({"fn": 42}, "fn must be callable"),
    ({"classes": 1}, "classes must be an integer in [2, 65536], got 1"),
    ({"classes": 2.5}, "classes must be an integer in [2, 65536], got 2.5"),
    ({"classes": True}, "classes must be an integer in [2, 65536], got True"),
    ({"classes": 10**30}, "classes must be an integer in [2, 65536]"),
    ({"batch_size": 1}, "batch_size must be an integer in [2, 4096]"),
    ({"batch_size": "16"}, "batch_size must be an integer in [2, 4096]"),
    ({"sequence_length": 0}, "sequence_length must be None or an integer in [1, 4096]"),
    ({"sequence_length": 2.0}, "sequence_length must be None or an integer"),
    ({"classes": 2**16, "batch_size": 64}, "at most 2097152 (2**21) are audited"),
    ({"mask": "yes"}, "mask must be True or False, got 'yes'"),
    ({"mask": True}, "mask=True needs token sequences"),
    ({"seed": -1}, "seed must be an integer in [0, 4294967295], got -1"),
    ({"seed": 0.5}, "seed must be an integer"),
    ({"seed": 2**32}, "seed must be an integer in [0, 4294967295]"),
    ({"dtype": torch.float16}, "dtype must be one of float64, float32, got torch.float16"),
    ({"dtype": "double"}, "dtype must be one of float64, float32, got 'double'"),
    ({"dtype": ["float64"]}, "dtype must be one of float64, float32, got ['float64']"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda, got 'tpu'"),
    ({"device": 3}, "device must be one of auto, cpu, cuda, got 3"),
    ({"expect": 3}, "expect must be NAME[:k=v,...]"),
    ({"expect": "kd"}, "expect must be NAME[:k=v,...] with NAME one of kl"),
    ({"weight": "1"}, "weight must be a finite number > 0, got '1'"),
    ({"weight": float("nan")}, "weight must be a finite number > 0, got nan"),
    ({"weight": -0.5}, "weight must be a finite number > 0"),
    ({"timeout": 0}, "timeout must be a number of seconds in (0, 86400], got 0"),
    ({"timeout": "60"}, "timeout must be a number of seconds"),
    ({"timeout": 1e9}, "timeout must be a number of seconds in (0, 86400]"),
    ({"progress": 3}, "progress must be None or callable, got 3"),
]
if not torch.cuda.is_available():
    BAD_CALLS.append(({"device": "cuda"}, "CUDA is not available"))


@pytest.mark.parametrize("keywords, message", BAD_CALLS)
def test_bad_api_arguments_raise_verify_error(keywords, message):
    keywords = dict(keywords)
    fn = keywords.pop("fn", kd_batchmean)
    with pytest.raises(VerifyError) as error:
        audit(fn, **keywords)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: load_target(3), "target must be MODULE:FUNCTION"),
        (lambda: parse_expectation("kl", weight=True), "weight must be a finite number > 0"),
        (lambda: parse_expectation(["kl"]), "expect must be NAME[:k=v,...]"),
    ],
)
def test_the_other_entry_points_raise_verify_error(call, message):
    with pytest.raises(VerifyError) as error:
        call()
    assert message in str(error.value)


def _process(*argv, cwd=ROOT):
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    return forkrun.run(
        ["-m", "verify", "audit", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


def test_process_exit_0_with_pure_json_though_the_loss_prints(tmp_path):
    process = _process("audit_targets:prints", "--json", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    data = json.loads(process.stdout)
    assert data["verdict"] == "consistent" and data["objective"] == "kl"
    assert process.stderr == "" and list(tmp_path.iterdir()) == []


def test_process_exit_2_when_the_loss_exits_0(tmp_path):
    """A loss calling sys.exit(0) must not make the audit exit 0 with no output."""
    process = _process("audit_targets:exits_zero", "--json", cwd=tmp_path)
    assert process.returncode == 2
    assert process.stdout == ""
    assert len(process.stderr.splitlines()) == 1, process.stderr
    assert "called sys.exit(0)" in process.stderr and "Traceback" not in process.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_target_is_an_argparse_error_on_one_line(capsys):
    from verify.cli import main

    assert main(["audit"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "the following arguments are required: target" in err
