"""The CLI contract of ``python -m verify check``."""

import json
import subprocess
import sys

import forkrun
import pytest
import torch

import derive
from verify import registry
from verify.cli import SUBCOMMANDS, main

BAD_ARGUMENTS = [
    (["check", "--examples", "0"], "argument --examples: must be an integer in 1..65536, got '0'"),
    (
        ["check", "--examples", "many"],
        "argument --examples: must be an integer in 1..65536, got 'many'",
    ),
    (
        ["check", "--examples", "1000000000"],
        "argument --examples: must be an integer in 1..65536, got '1000000000'",
    ),
    (["check", "--examples", "1_0"], "argument --examples: must be an integer in 1..65536"),
    (["check", "--examples", ""], "argument --examples: must be an integer in 1..65536"),
    (["check", "--seed", "-3"], "argument --seed: must be an integer in 0..4294967295, got '-3'"),
    (
        ["check", "--seed", "18000000000000"],
        "argument --seed: must be an integer in 0..4294967295, got '18000000000000'",
    ),
    (["figures", "--out", "/proc/x"], "--out directory is not writable: /proc"),
    (["figures", "--out", ""], "--out must be a directory path, got ''"),
    (["figures", "--out", "/dev/null"], "--out must be a directory, got /dev/null"),
    (["figures", "--out", "/no/such/parent/x"], "--out cannot be created: /no/such/parent"),
    (["figures", "--out", "x", "--seed", "-1"], "argument --seed: must be an integer in 0.."),
    (
        ["check", "--dtype", "float16"],
        "argument --dtype: invalid choice: 'float16' (choose from 'float64', 'float32')",
    ),
    (
        ["check", "--device", "tpu"],
        "argument --device: invalid choice: 'tpu' (choose from 'auto', 'cpu', 'cuda')",
    ),
    (["check", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(
    "argv, message", BAD_ARGUMENTS, ids=[" ".join(argv) or "(none)" for argv, _ in BAD_ARGUMENTS]
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
@pytest.mark.parametrize("argv", [["check", "--device", "cuda"], ["check", "--dtype", "float16"]])
def test_bad_input_in_a_real_process_has_no_traceback(argv):
    completed = forkrun.run(["-m", "verify", *argv], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert ("cuda" in completed.stderr) or ("float16" in completed.stderr)


def test_check_is_a_registered_subcommand():
    assert "check" in SUBCOMMANDS
    help_text, add_arguments, run = SUBCOMMANDS["check"]
    assert callable(add_arguments) and callable(run)


@pytest.fixture(scope="module")
def quick(request):
    """Run the CLI in-process with small sizes: few examples, a short counterexample search."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(registry, "SEARCH_EXAMPLES", 20)
    request.addfinalizer(monkeypatch.undo)

    def run(argv, capsys):
        code = main(argv)
        return code, capsys.readouterr()

    return run


def test_json_output_follows_the_contract(quick, capsys, monkeypatch, check_results):
    # The checks themselves run once per session (conftest); here the CLI passes its options
    # through and writes their results (test_table_output_lists_every_statement runs it whole).
    calls = []

    def cached(**options):
        calls.append(options)
        return list(check_results)

    monkeypatch.setattr(registry, "run_checks", cached)
    code, captured = quick(
        ["check", "--examples", "4", "--seed", "2", "--json", "--device", "cpu"], capsys
    )
    assert [(c["examples"], c["seed"], str(c["device"]), c["thorough"]) for c in calls] == [
        (4, 2, "cpu", False)
    ]
    assert code == 0, captured.out
    document = json.loads(captured.out)
    assert set(document) == {"device", "dtype", "seed", "results"}
    assert (document["device"], document["dtype"], document["seed"]) == ("cpu", "float64", 2)
    assert [r["id"] for r in document["results"]] == list(derive.STATEMENTS)
    for result in document["results"]:
        assert set(result) == {
            "id",
            "expected",
            "verdict",
            "examples",
            "worst_error",
            "tolerance",
            "counterexample",
            "resolved",
            "unresolved",
        }
        assert result["expected"] == derive.STATEMENTS[result["id"]].expected
        assert result["verdict"] == result["expected"]
        assert (result["counterexample"] is None) == (result["verdict"] == "holds")
        assert isinstance(result["examples"], int) and result["examples"] >= 1


def _float32_sample():
    """A few statements for the default run of the float32 table: the expansion (its float32
    floor), the zero-mean lemma, and the first two expected refutations (counterexamples)."""
    every = registry.statements()
    refuted = [i for i, s in every.items() if s.expected == "refuted"][:2]
    return {i: every[i] for i in ["expansion", "zero-mean-gradient", *refuted]}


@pytest.mark.parametrize(
    "whole", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["sample", "whole"]
)
def test_table_output_lists_every_statement(quick, capsys, monkeypatch, whole):
    # The whole registry in float32 is a sweep of its own (every check once more, about 25 s
    # of CPU): with --run-slow. By default, a sample of it, with the floor and the refutations.
    if not whole:
        sample = _float32_sample()
        monkeypatch.setattr(registry, "statements", lambda: sample)
    code, captured = quick(["check", "--examples", "2", "--dtype", "float32"], capsys)
    assert code == 0
    lines = captured.out.splitlines()
    header = next(line for line in lines if line.startswith("statement"))
    assert header.split() == [
        "statement",
        "expected",
        "verdict",
        "worst",
        "error",
        "tolerance",
        "examples",
        "device",
    ]
    rows = {
        line.split()[0]: line.split()
        for line in lines
        if line.split() and line.split()[0] in derive.STATEMENTS
    }
    assert list(rows) == list(registry.statements())
    assert len(rows) == (len(derive.STATEMENTS) if whole else 4)
    assert all(row[1] == row[2].rstrip("*") and row[-1] == "cpu" for row in rows.values())
    assert "Counterexamples (hypothesis-shrunk):" in captured.out
    assert "float32 floor" in captured.out
    assert lines[-1] == f"{len(rows)} of {len(rows)} verdicts as expected"


def test_an_unexpected_verdict_exits_1(quick, capsys, monkeypatch):
    from verify.results import CheckResult

    def wrong(*, device="cpu", dtype=torch.float64, examples=1, seed=0, search_examples=None):
        return CheckResult(
            id="expansion",
            expected="holds",
            verdict="refuted",
            worst_error=1.0,
            tolerance=0.1,
            examples=1,
            device="cpu",
            dtype="float64",
            counterexample="planted",
        )

    monkeypatch.setattr(registry, "resolve_check", lambda statement_id: wrong)
    monkeypatch.setattr(registry, "statements", lambda: {"expansion": None})
    code, captured = quick(["check", "--json"], capsys)
    assert code == 1
    assert json.loads(captured.out)["results"][0]["verdict"] == "refuted"


@pytest.mark.slow
def test_the_default_run_passes_and_is_the_same_in_two_processes():
    # No bound on its time here: a shared machine makes any such bound flaky (speed is
    # measured in benchmarks, as ratios within one run).
    outputs = []
    for _ in range(2):
        completed = subprocess.run(
            [sys.executable, "-m", "verify", "check"], capture_output=True, text=True, timeout=600
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        outputs.append(completed.stdout)
    assert outputs[0] == outputs[1]
