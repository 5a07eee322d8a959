"""Numbers in and out: the one parser of parameter values, ``--expect`` parameters and
``--weight`` (:mod:`derive._numbers`), the Python API's bad values, JSON without non-standard
constants (:mod:`derive._json`), and the stated limits at their boundaries.
"""

import json
import math

import pytest
import sympy
import torch

import derive.cli
from derive import DeriveError, expand
from derive._json import dumps
from derive._numbers import check_symbol_name, parse_positive, parse_rational
from derive.bounds import certified_bounds
from derive.latex_parse import MAX_LATEX_DEPTH, parse_latex
from derive.objectives import parameter_symbols
from verify import VerifyError
from verify.audit import LIMITS, audit, parse_expectation
from verify.audit import run as run_audit
from verify.audit.cli import add_arguments
from verify.gallery import kd_batchmean
from verify.regime import MAX_TEMPERATURES, regime_report

EXPAND = ["expand", "--quantity", "loss", "--order", "1", "--objective"]

#: ``(argv, message)``: derive's --param values that must be one line, exit 2.
BAD_PARAMETERS = [
    (["jsd", "--param", "beta=1/0"], "got '1/0' (division by zero)"),
    (["jsd", "--param", "beta=0/0"], "got '0/0' (division by zero)"),
    (["jsd", "--param", "beta=nan"], "'nan' is a sympy constant"),
    (["jsd", "--param", "beta=inf"], "'inf' is a sympy constant"),
    (["jsd", "--param", "beta=1_000"], "got '1_000'"),
    (["jsd", "--param", "beta=z1"], "'z1' reads as logits"),
    (["jsd", "--param", "beta=v_1"], "'v_1' reads as logits"),
    (["jsd", "--param", "beta=pi"], "'pi' is a sympy constant"),
    (["jsd", "--param", "beta=I"], "'I' is a sympy constant"),
    (["jsd", "--param", "beta=E"], "'E' is a symbol of the notation"),
    (["jsd", "--param", "beta=oo"], "'oo' is a sympy constant"),
    (["jsd", "--param", "beta=gamma"], "'gamma' is not a name derive.parse reads back"),
    (["jsd", "--param", "beta=1/3", "--param", "beta=1/2"], "--param beta is given twice"),
    (["alpha-divergence", "--param", "alpha=1"], "must be a rational other than 0 and 1"),
]


@pytest.mark.parametrize("argv, message", BAD_PARAMETERS)
def test_bad_parameter_values_are_one_line(capsys, argv, message):
    assert derive.cli.main(EXPAND + argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err, err


def test_a_parameter_name_that_parse_reads_back_stays_symbolic(capsys):
    assert derive.cli.main(EXPAND + ["jsd", "--param", "beta=beta", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == {"beta": "beta"}


#: ``(argv, message)``: the audit's --expect and --weight values, refused before the loss runs.
BAD_DECLARATIONS = [
    (["--expect", "jsd:beta=1/0"], "got '1/0' (division by zero)"),
    (["--expect", "dkd:alpha=0/0"], "got '0/0' (division by zero)"),
    (["--expect", "jsd:beta=nan"], "--expect jsd: beta must be a number"),
    (["--expect", "jsd:beta=inf"], "--expect jsd: beta must be a number"),
    (["--expect", "jsd:beta=1_000"], "got '1_000'"),
    (["--expect", "jsd:beta=0.3,beta=0.5"], "the parameter beta is given twice (0.3 and 0.5)"),
    (["--expect", "alpha-divergence:alpha=1"], "must be a rational other than 0 and 1"),
    (["--expect", "jsd:beta=pi"], "'pi' is a sympy constant"),
    (["--expect", "jsd:beta=z1"], "'z1' reads as logits"),
    (["--weight", "1/0"], "--weight must be a number > 0"),
    (["--weight", "0/0"], "--weight must be a number > 0"),
    (["--weight", "nan"], "--weight must be a number > 0"),
    (["--weight", "1_000"], "--weight must be a number > 0"),
    (["--weight", "1e400"], "--weight must be a number > 0"),
    (["--timeout", "1/0"], "--timeout must be a number > 0 and <= 86400"),
]


@pytest.mark.parametrize("argv, message", BAD_DECLARATIONS)
def test_bad_declarations_are_one_line(capsys, argv, message):
    import argparse

    arguments = add_arguments(argparse.ArgumentParser()).parse_args(
        ["verify.gallery:kd_batchmean", *argv]
    )
    assert run_audit(arguments) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err, err


def _frac(depth):
    return "\\frac{1}{" * depth + "N" + "}" * depth


#: ``(call, error, message)``: bad values of the Python API, each the package's error.
BAD_CALLS = [
    (lambda: parse_expectation("kl", 10**400), VerifyError, "an integer of 401 digits"),
    (lambda: parse_expectation("kl", float("inf")), VerifyError, "finite number > 0"),
    (lambda: audit(kd_batchmean, progress="x"), VerifyError, "progress must be None or callable"),
    (lambda: audit(kd_batchmean, weight=10**400), VerifyError, "weight must be a finite number"),
    (
        lambda: expand("loss", order=1, objective="jsd", parameters={"beta": "pi"}),
        DeriveError,
        "pi",
    ),
    (
        lambda: expand("loss", order=1, objective="jsd", parameters={"beta": sympy.Symbol("z1")}),
        DeriveError,
        "'z1' reads as logits",
    ),
    (
        lambda: expand("loss", order=1, objective="jsd", parameters={"beta": "1/0"}),
        DeriveError,
        "zero",
    ),
    (
        lambda: certified_bounds([[0.0, 1.0]], [[0.0, 0.0]], 8.0, 1, progress="x"),
        DeriveError,
        "progress",
    ),
    (lambda: parse_latex(_frac(3000)), DeriveError, "nests 3000 braces"),
    (lambda: regime_report(torch.zeros(2, 3), temperatures="abc"), VerifyError, "temperatures"),
    (lambda: regime_report(torch.zeros(2, 3), temperatures=[True]), VerifyError, "temperatures"),
    (lambda: regime_report(torch.zeros(2, 3), temperatures=[10**400]), VerifyError, "finite"),
    (lambda: regime_report(torch.zeros(2, 3), temperatures=[]), VerifyError, "temperatures"),
    (lambda: regime_report(torch.zeros(2, 3), temperatures=5), VerifyError, "temperatures"),
    (
        lambda: regime_report(torch.zeros(2, 3), temperatures=[1.0] * (MAX_TEMPERATURES + 1)),
        VerifyError,
        f"1 to {MAX_TEMPERATURES} numbers",
    ),
    (lambda: regime_report(torch.zeros(2, 3), progress="x"), VerifyError, "progress"),
    (lambda: regime_report(torch.eye(3).to_sparse()), VerifyError, "dense real tensor"),
    (lambda: regime_report(torch.zeros(2, 3, dtype=torch.complex64)), VerifyError, "dense real"),
    (lambda: parse_rational("1" * 101, what="x"), DeriveError, "must be a number"),
    (lambda: parse_positive(True, what="w"), DeriveError, "w must be a number > 0"),
    (
        lambda: check_symbol_name("N", what="beta", parameters=parameter_symbols()),
        DeriveError,
        "not a name derive.parse",
    ),
]


@pytest.mark.parametrize("call, error, message", BAD_CALLS)
def test_the_api_raises_the_packages_error(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)
    assert "None" not in str(raised.value).replace("None or", "")


def test_latex_nesting_at_its_limit():
    assert parse_latex(_frac(MAX_LATEX_DEPTH)) is not None
    with pytest.raises(DeriveError, match="at most 100"):
        parse_latex(_frac(MAX_LATEX_DEPTH + 1))


def test_parse_rational_is_exact_and_pinned_from_both_sides():
    assert parse_rational("3/10", what="x") == sympy.Rational(3, 10)
    assert parse_rational("0.3", what="x") * 10 == 3
    assert parse_rational("-1e-3", what="x") * 1000 == -1
    with pytest.raises(DeriveError):
        parse_rational("0.3", what="x", decimals=False)
    assert parse_positive("86400", what="t", upper=86400) == 86400
    with pytest.raises(DeriveError, match="<= 86400"):
        parse_positive("86400.001", what="t", upper=86400)


def _refuse(name):
    raise AssertionError(f"non-standard JSON constant {name}")


def test_json_never_holds_a_non_standard_constant():
    text = dumps({"a": [1.0, math.inf, -math.inf, math.nan], "b": {"c": math.nan}, "d": 2})
    value = json.loads(text, parse_constant=_refuse)
    assert value["a"] == [1.0, None, None, None] and value["b"] == {"c": None}
    assert value["not_finite"] == {"a[1]": "inf", "a[2]": "-inf", "a[3]": "nan", "b.c": "nan"}
    assert dumps({"d": 2.5}) == json.dumps({"d": 2.5})


def test_audit_classes_limit_is_refused_one_above_it():
    with pytest.raises(VerifyError, match=r"classes must be an integer in \[2, 65536\]"):
        audit(kd_batchmean, classes=LIMITS["classes"] + 1, batch_size=2)


@pytest.mark.slow
def test_audit_works_at_its_classes_limit():
    """The most classes the audit takes (about 3 GB and 25 s on 2 CPU cores)."""
    result = audit(
        "verify.gallery:kd_batchmean", classes=LIMITS["classes"], batch_size=2, symbolic=False
    )
    assert result.verdict == "consistent"
