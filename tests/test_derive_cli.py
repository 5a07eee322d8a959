"""The ``python -m derive`` contract: formats, JSON shape, objectives and parameters, and bad
input (one line on stderr, exit 2, no traceback, nothing written)."""

import json
import os
import stat
import subprocess
import sys

import proofs_once
import pytest
import sympy

import derive
import derive.report
from derive.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_symbolic_gradient(capsys):
    code, out, _ = _run(
        capsys, "expand", "--quantity", "gradient", "--order", "3", "--format", "json"
    )
    data = json.loads(out)
    assert code == 0
    assert {k: data[k] for k in ("objective", "quantity", "classes", "order", "parameters")} == {
        "objective": "kl",
        "quantity": "gradient",
        "classes": "N",
        "order": 3,
        "parameters": {},
    }
    assert [t["power"] for t in data["terms"]] == [0, 1, 2]
    for term in data["terms"]:
        expected = derive.expand("gradient", order=3).terms[term["power"]].expr
        assert sympy.expand(derive.parse(term["expr"]) - expected) == 0


def test_json_concrete_gradient_has_one_string_per_class(capsys):
    code, out, _ = _run(
        capsys,
        "expand",
        "--quantity",
        "gradient",
        "--order",
        "2",
        "--classes",
        "4",
        "--format",
        "json",
    )
    terms = json.loads(out)["terms"]
    assert code == 0 and all(len(t["expr"]) == 4 for t in terms)
    # The components of each term sum to zero: the zero-mean gradient, in explicit symbols.
    for term in terms:
        assert sympy.expand(sum(sympy.sympify(e) for e in term["expr"])) == 0


def test_parameters_reach_the_terms_and_the_json(capsys):
    code, out, _ = _run(
        capsys,
        "expand",
        "--quantity",
        "loss",
        "--order",
        "1",
        "--objective",
        "jsd",
        "--param",
        "beta=1/4",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert code == 0 and data["parameters"] == {"beta": "1/4"}
    limit = derive.parse(data["terms"][0]["expr"])
    assert (
        sympy.expand(limit - derive.expand("loss", order=1).terms[0].expr * sympy.Rational(3, 16))
        == 0
    )


def test_a_symbolic_parameter_stays_a_symbol(capsys):
    code, out, _ = _run(
        capsys,
        "expand",
        "--quantity",
        "loss",
        "--order",
        "1",
        "--objective",
        "skew-kl",
        "--param",
        "alpha=beta",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["parameters"] == {"alpha": "beta"}
    assert "beta" in json.loads(out)["terms"][0]["expr"]


def test_labelled_gradient_json_has_the_label_and_a_generic_other_class(capsys):
    code, out, _ = _run(
        capsys,
        "expand",
        "--quantity",
        "gradient",
        "--order",
        "1",
        "--objective",
        "ce-mixture",
        "--format",
        "json",
    )
    term = json.loads(out)["terms"][0]
    assert code == 0 and set(term["expr"]) == {"g", "i"} and set(term["latex"]) == {"g", "i"}


def test_text_labels_the_named_pieces(capsys):
    code, out, _ = _run(capsys, "expand", "--quantity", "loss", "--order", "2")
    assert code == 0 and "logits-matching:" in out and "regularizer:" in out and "T^-1" in out


def test_latex_format(capsys):
    code, out, _ = _run(
        capsys, "expand", "--quantity", "gradient", "--order", "1", "--format", "latex"
    )
    assert code == 0 and out.startswith(r"G_{0} = \frac{1}{N}")


def test_objectives_lists_every_objective_with_its_parameters(capsys):
    code, out, _ = _run(capsys, "objectives")
    assert code == 0 and all(name in out for name in derive.OBJECTIVES)
    assert "--param beta=...: a rational in [0, 1]" in out
    code, out, _ = _run(capsys, "objectives", "--json")
    listed = json.loads(out)["objectives"]
    assert code == 0 and [o["name"] for o in listed] == list(derive.OBJECTIVES)
    assert all({"name", "title", "family", "definition", "parameters"} <= set(o) for o in listed)


def test_prove_json_is_all_as_expected(capsys, monkeypatch):
    # The proofs themselves are tests/test_statements.py's (the same memo); here, the JSON.
    proofs_once.patch(monkeypatch)
    code, out, _ = _run(capsys, "prove", "--json")
    document = json.loads(out)
    results = document["results"]
    assert code == 0 and document["order"] == proofs_once.ORDER
    assert all(r["verdict"] == r["expected"] for r in results)
    assert [r["id"] for r in results] == list(derive.STATEMENTS)


EXPAND = ["expand", "--quantity", "loss", "--order", "2"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["expand", "--quantity", "loss", "--order", "0"], "--order: must be an integer >= 1"),
        (["expand", "--quantity", "loss", "--order", "two"], "got 'two'"),
        (["expand", "--quantity", "loss", "--order", "1_0"], "must be an integer >= 1"),
        (["expand", "--quantity", "loss", "--order", "1e1"], "must be an integer >= 1"),
        (["expand", "--quantity", "loss", "--order", " "], "must be an integer >= 1"),
        (["expand", "--quantity", "loss", "--order", "1000000"], "order must be at most 24 for kl"),
        (
            ["expand", "--quantity", "loss", "--order", "99999999999999999999"],
            "must be an integer >= 1",
        ),
        (
            ["expand", "--quantity", "loss", "--order", "15", "--objective", "js"],
            "at most 14 for js",
        ),
        (EXPAND + ["--classes", "1"], "--classes: must be an integer in 2..200"),
        (EXPAND + ["--classes", "100000"], "--classes: must be an integer in 2..200"),
        (EXPAND + ["--classes", ""], "--classes: must be an integer in 2..200"),
        (["expand", "--quantity", "hessian", "--order", "2"], "invalid choice: 'hessian'"),
        (EXPAND + ["--format", "xml"], "invalid choice: 'xml'"),
        (EXPAND + ["--objective", "dkd-typo"], "invalid choice: 'dkd-typo'"),
        (["expand", "--order", "2"], "the following arguments are required: --quantity"),
        (
            EXPAND + ["--objective", "jsd", "--param", "beta=2"],
            "beta of objective jsd must be a rational in [0, 1]",
        ),
        (
            EXPAND + ["--objective", "jsd", "--param", "beta=0.3"],
            "beta of objective jsd must be a rational",
        ),
        (EXPAND + ["--objective", "jsd", "--param", "beta"], "must be KEY=VALUE"),
        (EXPAND + ["--objective", "jsd", "--param", "beta="], "must be KEY=VALUE"),
        (
            EXPAND + ["--objective", "jsd", "--param", "gamma=1/2"],
            "objective jsd has parameters beta, got the parameter 'gamma'",
        ),
        (
            EXPAND + ["--param", "beta=1/2"],
            "objective kl has no parameters, got the parameter 'beta'",
        ),
        (
            EXPAND + ["--objective", "jsd", "--param", "beta=1/3", "--param", "beta=1/2"],
            "--param beta is given twice",
        ),
        (EXPAND + ["--objective", "jsd", "--param", "beta=N"], "'N' is a symbol of the notation"),
        (
            EXPAND + ["--objective", "jsd", "--param", "beta=__import__('os')"],
            "beta of objective jsd must be",
        ),
        (
            EXPAND + ["--objective", "two-temperature", "--param", "r=0"],
            "r of objective two-temperature must be a rational > 0",
        ),
        (
            EXPAND + ["--objective", "alpha-divergence", "--param", "alpha=1"],
            "other than 0 and 1 (e.g. 3/10) or a symbol name, got 1",
        ),
        (["prove", "--order", "9"], "--order: must be an integer in 1..8"),
        (["report", "--order", "-2", "--out", "r.tex"], "--order: must be an integer in 1..8"),
        (["report", "--out", "/no/such/dir/r.tex"], "--out directory does not exist: /no/such/dir"),
        (["report", "--out", ""], "--out must be a file path"),
        (["report", "--out", "/dev/null"], "--out is not a regular file"),
        (["report", "--out", "/proc/x/r.tex"], "--out directory does not exist"),
        (["objectives", "--nope"], "unrecognized arguments: --nope"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (out, err)
    assert fragment in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "derive",
            "report",
            "--order",
            "-2",
            "--out",
            str(tmp_path / "r.tex"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_huge_order_is_refused_at_once_in_a_real_process():
    run = subprocess.run(
        [sys.executable, "-m", "derive", "expand", "--quantity", "loss", "--order", "1000000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "at most 24" in run.stderr


def test_report_into_a_directory_is_a_clean_error(tmp_path, capsys):
    code, out, err = _run(capsys, "report", "--out", str(tmp_path))
    assert code == 2 and "--out must be a file path" in err and list(tmp_path.iterdir()) == []


def test_report_does_not_replace_a_symlink(tmp_path, capsys):
    target = tmp_path / "real.tex"
    target.write_text("keep")
    (tmp_path / "link.tex").symlink_to(target)
    code, _, err = _run(capsys, "report", "--out", str(tmp_path / "link.tex"))
    assert code == 2 and "symbolic link" in err and target.read_text() == "keep"


def test_report_into_an_unwritable_directory_is_refused_before_computing(
    tmp_path, capsys, monkeypatch
):
    # Root may write anywhere, so the refusal is driven through os.access, which it consults.
    import derive.report

    computed = []
    monkeypatch.setattr(derive.report, "report_document", lambda **k: computed.append(k) or "x")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    code, _, err = _run(capsys, "report", "--out", str(tmp_path / "r.tex"))
    assert code == 2 and "directory is not writable" in err and computed == []
    assert list(tmp_path.iterdir()) == []


#: The report's LaTeX once per order for the tests below, which are about how it is written.
@pytest.fixture
def report_once(monkeypatch):
    """The report's document once per process (tests/proofs_once.py): these tests are about
    how it is written."""
    proofs_once.patch(monkeypatch)


def test_a_failed_write_leaves_no_file(tmp_path, capsys, monkeypatch, report_once):
    def refuse(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    code, _, err = _run(capsys, "report", "--out", str(tmp_path / "r.tex"))
    assert code == 2 and "cannot write --out" in err and "No space left" in err
    assert list(tmp_path.iterdir()) == []


def test_report_is_written_with_normal_permissions(tmp_path, capsys, report_once):
    old = os.umask(0o022)
    try:
        code, out, _ = _run(capsys, "report", "--out", str(tmp_path / "r.tex"))
    finally:
        os.umask(old)
    assert code == 0 and out.startswith("wrote ")
    assert stat.S_IMODE((tmp_path / "r.tex").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.tex"]


def _piped_into_head(command):
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -c 10"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_closed_pipe_ends_quietly():
    # Every command prints through one function (derive.cli._emit). This one writes about
    # 530 kB in a second, far more than a pipe holds (64 KiB), so head's exit breaks the pipe.
    run = _piped_into_head(
        f"{sys.executable} -m derive expand --quantity loss --order 12 --classes 8 --format latex"
    )
    assert run.stdout and "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr
    assert run.returncode == 0, run.stderr
    # Negative control: a writer without the handler, as much output, does break loudly.
    plain = _piped_into_head(f"{sys.executable} -c \"print('x' * 530_000)\"")
    assert plain.returncode != 0 and "BrokenPipeError" in plain.stderr
