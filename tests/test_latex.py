"""LaTeX with a pinned term order, against golden strings; the report compiles."""

import shutil
import subprocess

import pytest

from derive import expand, term_latex, write_report

MEAN = r"\left\langle {} \right\rangle"
Z, V, Z2, ZV, V2 = (MEAN.format(x) for x in ("z", "v", "z^{2}", "z v", "v^{2}"))


def test_leading_gradient_term_golden():
    assert expand("gradient", order=1).terms[0].latex == (
        rf"\frac{{1}}{{N}} \left(z_{{i}} - v_{{i}} - {Z} + {V}\right)")


def test_leading_loss_term_golden():
    assert expand("loss", order=1).terms[0].latex == (
        rf"\frac{{1}}{{2}} {Z2} - {ZV} + \frac{{1}}{{2}} {V2} - \frac{{1}}{{2}} {Z}^{{2}} "
        rf"+ {Z} {V} - \frac{{1}}{{2}} {V}^{{2}}")


def test_first_correction_to_the_gradient_golden():
    assert expand("gradient", order=2).terms[1].latex == (
        rf"\frac{{1}}{{N}} \left(\frac{{1}}{{2}} z_{{i}}^{{2}} - z_{{i}} {Z} - \frac{{1}}{{2}} v_{{i}}^{{2}} "
        rf"+ v_{{i}} {V} - \frac{{1}}{{2}} {Z2} + \frac{{1}}{{2}} {V2} + {Z}^{{2}} - {V}^{{2}}\right)")


def test_constants_and_single_terms():
    assert term_latex(0) == "0"
    assert term_latex(-3) == "-3"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_report_compiles_with_pdflatex_without_overfull_boxes(tmp_path):
    tex = write_report(str(tmp_path / "report.tex"), order=4)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "report.log").read_text(errors="replace")
    assert run.returncode == 0, log[-2000:]
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
    assert log.count("Overfull") == 0
    assert tex.endswith("report.tex")
