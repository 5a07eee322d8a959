"""The notebooks execute headless, and each .ipynb holds the same cells as its jupytext
percent script (the diff-friendly source), with outputs stripped."""

import pathlib

import pytest

jupytext = pytest.importorskip("jupytext", reason="the [test] extra installs jupytext")
nbclient = pytest.importorskip("nbclient", reason="the [test] extra installs nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.py"))


def test_the_four_notebooks_are_there():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_paired_with_its_script_and_stripped(script):
    paired = script.with_suffix(".ipynb")
    assert paired.exists(), f"run: jupytext --to ipynb {script}"
    source = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
    notebook = jupytext.read(paired)
    assert [(c.cell_type, c.source) for c in notebook.cells] == source, f"run: jupytext --sync {script}"
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(script, tmp_path):
    notebook = jupytext.read(script)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
