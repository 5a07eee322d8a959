"""Printing never changes the mathematics: every term and objective the engine produces, and
random nested expressions, print to LaTeX, text and pretty form and read back to the same
expression; the pinned order is golden; the report compiles and reads correctly."""

import shutil
import subprocess

import proofs_once
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import derive
from derive import (
    ClassMean,
    N,
    OtherMean,
    epsilon,
    expand,
    expression_latex,
    parse,
    parse_latex,
    term_latex,
    v_i,
    write_report,
    z_i,
)
from derive.normal_form import canonical
from derive.notation import readable

MEAN = r"\left\langle {} \right\rangle"
Z, V, Z2, ZV, V2 = (MEAN.format(x) for x in ("z", "v", "z^{2}", "z v", "v^{2}"))


def test_leading_gradient_term_golden():
    assert expand("gradient", order=1).terms[0].latex == (
        rf"\frac{{1}}{{N}} \left(z_{{i}} - v_{{i}} - {Z} + {V}\right)"
    )


def test_leading_loss_term_golden():
    assert expand("loss", order=1).terms[0].latex == (
        rf"\frac{{1}}{{2}} {Z2} - {ZV} + \frac{{1}}{{2}} {V2} - \frac{{1}}{{2}} {Z}^{{2}} "
        rf"+ {Z} {V} - \frac{{1}}{{2}} {V}^{{2}}"
    )


def test_first_correction_to_the_gradient_golden():
    assert expand("gradient", order=2).terms[1].latex == (
        rf"\frac{{1}}{{N}} \left(\frac{{1}}{{2}} z_{{i}}^{{2}} - z_{{i}} {Z} "
        rf"- \frac{{1}}{{2}} v_{{i}}^{{2}} + v_{{i}} {V} - \frac{{1}}{{2}} {Z2} "
        rf"+ \frac{{1}}{{2}} {V2} + {Z}^{{2}} - {V}^{{2}}\right)"
    )


def test_differences_read_z_minus_v():
    assert expression_latex(ClassMean((z_i - v_i) ** 2) / 2) == (
        r"\frac{\left\langle \left(z - v\right)^{2} \right\rangle}{2}"
    )
    assert expression_latex(ClassMean(z_i) - ClassMean(v_i)) == rf"{Z} - {V}"
    assert term_latex((z_i - v_i) / N) == r"\frac{1}{N} \left(z_{i} - v_{i}\right)"


def test_constants_and_single_terms():
    assert term_latex(0) == "0"
    assert term_latex(-3) == "-3"


def test_a_nested_mean_keeps_its_inner_mean():
    # Printing used to rebuild the inner mean with bare symbols, which evaluated it away.
    kd = derive.OBJECTIVES["kl"].loss()
    printed = sympy.latex(kd)
    assert printed.count(r"\left\langle e^{\epsilon v} \right\rangle") == 2
    assert r"\left\langle 0 \right\rangle" not in printed
    assert canonical(parse_latex(printed) - kd) == 0


def test_pretty_printing_works_in_a_terminal():
    text = sympy.pretty(ClassMean(z_i**2) + OtherMean(z_i * v_i))
    assert "⟨" in text and "⟩" in text
    sympy.pretty(derive.OBJECTIVES["kl"].loss())


def _variants():
    for name, objective in derive.OBJECTIVES.items():
        for values in objective.variants():
            yield name, values


@pytest.mark.parametrize(
    "name, values", list(_variants()), ids=[n + str(v) for n, v in _variants()]
)
def test_every_term_and_definition_round_trips(name, values):
    definition = derive.OBJECTIVES[name]
    loss = definition.loss(**values)
    assert canonical(parse_latex(expression_latex(loss)) - loss) == 0
    assert canonical(parse_latex(sympy.latex(loss)) - loss) == 0
    for quantity in ("loss", "gradient"):
        for term in expand(quantity, order=3, objective=name, parameters=values or None).terms:
            latex, text, expr = term.latex, term.text, term.expr
            if isinstance(expr, dict):
                pairs = [(latex[k], text[k], expr[k]) for k in expr]
            else:
                pairs = [(latex, text, expr)]
            for printed, plain, value in pairs:
                assert canonical(parse_latex(printed) - value) == 0, printed
                assert canonical(parse(plain) - value) == 0, plain


def test_round_trip_catches_a_planted_printing_error():
    # Negative control: a printer that drops a mean's argument sign is caught.
    term = expand("gradient", order=1).terms[0]
    wrong = term.latex.replace(r"- \left\langle z", r"+ \left\langle z")
    assert canonical(parse_latex(wrong) - term.expr) != 0


# -- random nested expressions -----------------------------------------------------------

_LEAVES = st.sampled_from(
    [
        z_i,
        v_i,
        N,
        epsilon,
        sympy.Integer(2),
        sympy.Rational(1, 3),
        ClassMean(z_i),
        ClassMean(v_i**2),
    ]
)


def _extend(children):
    return st.one_of(
        st.builds(lambda a, b: a + b, children, children),
        st.builds(lambda a, b: a - b, children, children),
        st.builds(lambda a, b: a * b, children, children),
        st.builds(lambda a: a**2, children),
        st.builds(lambda a: sympy.exp(epsilon * a), children),
        st.builds(lambda a: sympy.log(1 + a**2), children),
        st.builds(lambda a: ClassMean(a), children),
        st.builds(lambda a: OtherMean(a), children),
        st.builds(lambda a, b: a / (2 + b**2), children, children),
    )


expressions = st.recursive(_LEAVES, _extend, max_leaves=8)


@given(expressions)
def test_random_nested_expressions_round_trip(expr):
    for printed in (expression_latex(expr), sympy.latex(expr)):
        assert canonical(parse_latex(printed) - expr) == 0, printed
    assert canonical(parse(str(expr)) - expr) == 0
    readable(expr)
    sympy.pretty(expr)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_report_compiles_and_reads_correctly(tmp_path, monkeypatch):
    proofs_once.patch(monkeypatch)  # the report at the CLI's default order, once per process
    tex = write_report(str(tmp_path / "report.tex"), order=proofs_once.ORDER)
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = (tmp_path / "report.log").read_text(errors="replace")
    assert run.returncode == 0, log[-2000:]
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
    assert log.count("Overfull") == 0
    assert tex.endswith("report.tex")
    if shutil.which("pdftotext") is None:
        return
    text = subprocess.run(
        ["pdftotext", "report.pdf", "-"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    # Text-mode angle brackets come out as inverted punctuation; raw identifiers would show.
    for wrong in ("¡", "¿", "sum_i", "b_bar", "dL_LM", "w_bar"):
        assert wrong not in text, wrong
    source = tex and (tmp_path / "report.tex").read_text()
    for line in ("L_0 = \\underbrace", "G_{0,i} = \\underbrace"):
        start = source.index(line)
        shown = source[start : source.index("\\]", start)]
        # The two pieces are joined by a sign: the leading term is their sum, not a product.
        assert "} - \\underbrace" in shown or "} + \\underbrace" in shown, shown
