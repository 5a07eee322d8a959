"""The notebooks execute headless, each .ipynb holds the same cells as its jupytext percent
script (the diff-friendly source) with outputs stripped, and every formula a notebook
displays reads back (:func:`derive.parse_latex`) to the expression it was printed from."""

import pathlib

import pytest

jupytext = pytest.importorskip("jupytext", reason="the [test] extra installs jupytext")
nbclient = pytest.importorskip("nbclient", reason="the [test] extra installs nbclient")

import derive  # noqa: E402
from derive.display import MIME_TYPE  # noqa: E402
from derive.normal_form import canonical  # noqa: E402

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.py"))


def test_the_six_notebooks_are_there():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_paired_with_its_script_and_stripped(script):
    paired = script.with_suffix(".ipynb")
    assert paired.exists(), f"run: jupytext --to ipynb {script}"
    source = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
    notebook = jupytext.read(paired)
    assert [(c.cell_type, c.source) for c in notebook.cells] == source, (
        f"run: jupytext --sync {script}"
    )
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def _formulas(notebook):
    """Every display output with LaTeX: ``(latex, carried formula or None)``."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/latex" in data:
                found.append((data["text/latex"], data.get(MIME_TYPE)))
    return found


def check_formulas(notebook):
    """Each displayed LaTeX carries its expression, and reads back to it exactly."""
    formulas = _formulas(notebook)
    for latex, carried in formulas:
        assert carried is not None, f"a formula displayed without derive.formula: {latex[:80]}"
        shown = derive.parse_latex(carried["latex"])
        assert canonical(shown - derive.parse(carried["expr"])) == 0, carried
        assert carried["latex"] in latex
    return len(formulas)


#: The notebook that executes in the default suite: the first, the quickest (a kernel, the
#: expansions, formulas shown through derive.formula). Every other one starts its own kernel
#: (a torch import) and takes 6 to 70 s of CPU, so they execute with --run-slow (.ci/run runs
#: them). What they compute is checked by the default suite elsewhere: the proofs and the
#: registry's checks, the figures (tests/test_figures.py), the regime axis and the atlas tests.
DEFAULT = {"01_hinton_high_temperature"}


@pytest.mark.parametrize(
    "script",
    [p if p.stem in DEFAULT else pytest.param(p, marks=pytest.mark.slow) for p in NOTEBOOKS],
    ids=lambda p: p.stem,
)
def test_notebook_executes_and_shows_the_engines_formulas(script, tmp_path):
    notebook = jupytext.read(script)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    shown = check_formulas(notebook)
    assert shown > 0 or script.stem.startswith("03")


def test_the_formula_check_catches_a_wrong_display():
    # Negative control: a cell whose LaTeX is not its expression.
    import nbformat

    formula = derive.formula("G", derive.expand("gradient", order=1).terms[0].expr, term=True)
    bundle = formula._repr_mimebundle_()
    bundle[MIME_TYPE] = dict(
        bundle[MIME_TYPE], latex=bundle[MIME_TYPE]["latex"].replace("-", "+", 1)
    )
    cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data=bundle)])
    with pytest.raises(AssertionError):
        check_formulas(nbformat.v4.new_notebook(cells=[cell]))
    plain = nbformat.v4.new_code_cell(
        outputs=[
            nbformat.v4.new_output("display_data", data={"text/latex": "$x$", "text/plain": "x"})
        ]
    )
    with pytest.raises(AssertionError, match="without derive.formula"):
        check_formulas(nbformat.v4.new_notebook(cells=[plain]))
