"""Package hygiene: public names import, and derive never imports torch."""

import subprocess
import sys

import derive


def test_every_public_name_is_importable():
    for name in derive.__all__:
        assert getattr(derive, name) is not None, name


def test_importing_derive_does_not_import_torch():
    # Every proof's path, with torch blocked and any attempt to import it recorded, is checked
    # by test_packaging.test_derive_runs_without_the_verify_extra (one run of them all).
    code = "import sys, derive; derive.expand('gradient', order=2); print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_the_theory_page_states_every_registry_statement():
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "theory.md").read_text()
    missing = [
        statement_id for statement_id in derive.STATEMENTS if f"[{statement_id}]" not in text
    ]
    assert not missing, missing
