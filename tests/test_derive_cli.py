"""The ``python -m derive`` contract: formats, JSON shape, and bad input."""

import json
import subprocess
import sys

import pytest
import sympy

from derive.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_symbolic_gradient(capsys):
    code, out, _ = _run(capsys, "expand", "--quantity", "gradient", "--order", "3", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert {k: data[k] for k in ("objective", "quantity", "classes", "order")} == {
        "objective": "kl", "quantity": "gradient", "classes": "N", "order": 3}
    assert [t["power"] for t in data["terms"]] == [0, 1, 2]
    assert all(isinstance(t["expr"], str) and t["latex"] for t in data["terms"])


def test_json_concrete_gradient_has_one_string_per_class(capsys):
    code, out, _ = _run(capsys, "expand", "--quantity", "gradient", "--order", "2", "--classes", "4",
                        "--format", "json")
    terms = json.loads(out)["terms"]
    assert code == 0 and all(len(t["expr"]) == 4 for t in terms)
    # The components of each term sum to zero: the zero-mean gradient, in explicit symbols.
    for term in terms:
        assert sympy.expand(sum(sympy.sympify(e) for e in term["expr"])) == 0


def test_text_labels_the_named_pieces(capsys):
    code, out, _ = _run(capsys, "expand", "--quantity", "loss", "--order", "2")
    assert code == 0 and "logits-matching:" in out and "regularizer:" in out and "T^-1" in out


def test_latex_format(capsys):
    code, out, _ = _run(capsys, "expand", "--quantity", "gradient", "--order", "1", "--format", "latex")
    assert code == 0 and out.startswith(r"G_{0} = \frac{1}{N}")


def test_prove_json_is_all_as_expected(capsys):
    code, out, _ = _run(capsys, "prove", "--order", "2", "--json")
    results = json.loads(out)["results"]
    assert code == 0 and all(r["verdict"] == r["expected"] for r in results)


@pytest.mark.parametrize("argv, fragment", [
    (["expand", "--quantity", "loss", "--order", "0"], "--order: must be an integer >= 1"),
    (["expand", "--quantity", "loss", "--order", "two"], "got 'two'"),
    (["expand", "--quantity", "loss", "--order", "2", "--classes", "1"], "--classes: must be an integer >= 2"),
    (["expand", "--quantity", "hessian", "--order", "2"], "invalid choice: 'hessian'"),
    (["expand", "--quantity", "loss", "--order", "2", "--format", "xml"], "invalid choice: 'xml'"),
    (["expand", "--order", "2"], "the following arguments are required: --quantity"),
    (["report", "--out", "/no/such/dir/r.tex"], "--out directory does not exist: /no/such/dir"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "derive", "report", "--order", "-2", "--out",
                          str(tmp_path / "r.tex")], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_report_into_a_directory_is_a_clean_error(tmp_path, capsys):
    code, out, err = _run(capsys, "report", "--out", str(tmp_path))
    assert code == 2 and "--out must be a file path" in err and list(tmp_path.iterdir()) == []


def test_order_must_be_plain_digits(capsys):
    for text in ("1_0", "1e1", " "):
        try:
            code = main(["expand", "--quantity", "loss", "--order", text])
        except SystemExit as exit_:
            code = exit_.code
        assert code == 2 and "must be an integer >= 1" in capsys.readouterr().err
