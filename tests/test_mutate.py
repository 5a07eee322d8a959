"""tools/mutate.py itself, on a toy module whose mutants are known: which mutants it makes, what
each mutant does, content keys that survive reformatting and edits elsewhere (and go stale when
their code changes), and a whole run that kills every mutant but the two equivalent ones."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
_STORAGE = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
import mutate  # noqa: E402

# mutate.py points hypothesis at .mutation/ for its children: not this test process.
if _STORAGE is None:
    os.environ.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)

TOY = '''"""A toy module with known mutants."""

LIMIT = 3


def clamp(x):
    if x > LIMIT:
        return LIMIT
    return x


def absolute(x):
    return x if x >= 0 else -x
'''

#: Every mutant of TOY, by key; True for the two equivalent ones: at x = LIMIT ``clamp``
#: returns LIMIT = x either way, and ``absolute(0)`` is ``-0 == 0``.
MUTANTS = {
    "<module> | LIMIT = 3 | 3 -> 4": False,
    "clamp | x > LIMIT | condition -> True": False,
    "clamp | x > LIMIT | condition -> False": False,
    "clamp | x > LIMIT | > -> >=": True,
    "clamp | return LIMIT | return value -> None": False,
    "clamp | return x | return value -> None": False,
    "absolute | return x if x >= 0 else -x | return value -> None": False,
    "absolute | x >= 0 | >= -> >": True,
    "absolute | x >= 0 | 0 -> 1": False,
    "absolute | x if x >= 0 else -x | unary minus dropped": False,
}
EQUIVALENT = [key for key, equivalent in MUTANTS.items() if equivalent]

TOY_TESTS = """from toypkg.toy import LIMIT, absolute, clamp


def test_clamp():
    assert LIMIT == 3
    assert clamp(5) == 3 and clamp(2) == 2 and clamp(-4) == -4


def test_absolute():
    assert absolute(-2) == 2 and absolute(2) == 2 and absolute(0.5) == 0.5
"""


def _run_mutant(source, key, name):
    (mutant,) = [m for m in mutate.mutants(source) if m["key"] == key]
    namespace = {}
    exec(compile(mutate.mutate(source, mutant), "<toy>", "exec"), namespace)
    return namespace[name]


def test_the_toy_has_the_known_mutants_in_order():
    assert [m["key"] for m in mutate.mutants(TOY)] == list(MUTANTS)
    assert [m["id"] for m in mutate.mutants(TOY)] == list(range(len(MUTANTS)))


def test_each_mutant_does_what_its_description_says():
    assert _run_mutant(TOY, "<module> | LIMIT = 3 | 3 -> 4", "clamp")(5) == 4
    assert _run_mutant(TOY, "clamp | x > LIMIT | condition -> True", "clamp")(2) == 3
    assert _run_mutant(TOY, "clamp | x > LIMIT | condition -> False", "clamp")(5) == 5
    assert _run_mutant(TOY, "clamp | return x | return value -> None", "clamp")(2) is None
    assert _run_mutant(TOY, "absolute | x >= 0 | 0 -> 1", "absolute")(0.5) == -0.5
    dropped = _run_mutant(TOY, "absolute | x if x >= 0 else -x | unary minus dropped", "absolute")
    assert dropped(-2) == -2
    # The equivalent ones agree with the module everywhere, the boundary included.
    clamp = _run_mutant(TOY, "clamp | x > LIMIT | > -> >=", "clamp")
    absolute = _run_mutant(TOY, "absolute | x >= 0 | >= -> >", "absolute")
    for x in (-4, -0.5, 0, 0.5, 2, 3, 3.5, 5):
        assert clamp(x) == min(x, 3) and absolute(x) == abs(x)


def test_keys_survive_reformatting_and_edits_elsewhere():
    edited = (
        TOY.replace(
            "LIMIT = 3\n", "# a comment\nLIMIT = (\n    3\n)\n\n\ndef other(y):\n    return y\n"
        )
        .replace("    if x > LIMIT:", "    if (x >\n            LIMIT):")
        .replace("return x if x >= 0 else -x", "return (x if x >= 0\n            else -x)")
    )
    assert ast.dump(ast.parse(edited)) != ast.dump(ast.parse(TOY))  # other() is new
    keys = {m["key"] for m in mutate.mutants(edited)}
    assert set(MUTANTS) <= keys
    # Line numbers moved, so the old line-keyed signatures would have gone stale.
    lines = {m["key"]: m["line"] for m in mutate.mutants(edited)}
    assert lines["clamp | x > LIMIT | > -> >="] != 7


def test_a_changed_line_makes_its_key_stale(tmp_path, monkeypatch):
    changed = TOY.replace("if x > LIMIT:", "if x > LIMIT + 1:")
    keys = {m["key"] for m in mutate.mutants(changed)}
    assert "clamp | x > LIMIT | > -> >=" not in keys
    assert "clamp | x > LIMIT + 1 | > -> >=" in keys
    _write_toy_project(tmp_path, source=changed)
    monkeypatch.setattr(mutate, "ROOT", str(tmp_path))
    monkeypatch.setattr(mutate, "TARGETS", str(tmp_path / "tools" / "mutation_targets.toml"))
    assert mutate.stale_equivalents("toypkg/toy.py") == ["clamp | x > LIMIT | > -> >="]


def test_identical_mutants_are_numbered():
    source = "def f(x):\n    return x * 2 + x * 2\n"
    keys = [m["key"] for m in mutate.mutants(source) if m["description"] == "* -> /"]
    assert keys == ["f | x * 2 | * -> /", "f | x * 2 | * -> / #2"]


def test_every_listed_equivalent_mutant_of_the_project_exists():
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mutate.py"), "equivalents"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stale: " not in run.stdout


def _write_toy_project(root, *, source=TOY, equivalent=EQUIVALENT):
    (root / "toypkg").mkdir(exist_ok=True)
    (root / "toypkg" / "__init__.py").write_text("")
    (root / "toypkg" / "toy.py").write_text(source)
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "test_toy.py").write_text(TOY_TESTS)
    (root / "tools").mkdir(exist_ok=True)
    (root / "tools" / "mutation_targets.toml").write_text(
        '["toypkg/toy.py"]\ntests = ["tests/test_toy.py"]\nslow = 30.0\nequivalent = '
        + json.dumps(equivalent)
        + "\n"
    )


def _mutate(root, *arguments):
    environment = dict(os.environ, MUTATION_ROOT=str(root), MUTATION_PACKAGES="toypkg")
    environment.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mutate.py"), *arguments],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_run_kills_every_mutant_but_the_equivalent_ones(tmp_path):
    pytest.importorskip("coverage", reason="tools/mutate.py measures coverage with it")
    _write_toy_project(tmp_path)
    run = _mutate(tmp_path, "run", "toypkg/toy.py")
    assert run.returncode == 0, run.stdout + run.stderr
    state = json.loads((tmp_path / ".mutation" / "toypkg.toy.json").read_text())
    status = {m["key"]: m["status"] for m in state["mutants"]}
    assert status == {
        key: "survived" if equivalent else "killed" for key, equivalent in MUTANTS.items()
    }
    report = _mutate(tmp_path, "report", "toypkg/toy.py")
    assert report.returncode == 0, report.stderr
    assert "10 mutants, 8 killed (80.0 %); 2 survivors judged equivalent; " in report.stdout
    assert "score without them 100.0 %" in report.stdout
    # Without its equivalent list the report shows the two survivors, and flags a stale entry.
    _write_toy_project(tmp_path, equivalent=["clamp | x > LIMIT + 1 | > -> >="])
    report = _mutate(tmp_path, "report", "toypkg/toy.py")
    for key in EQUIVALENT:
        assert f"{key} (survived)" in report.stdout
    assert "stale equivalent entry (no such mutant now): clamp | x > LIMIT + 1" in report.stdout
    assert _mutate(tmp_path, "equivalents").returncode == 1
