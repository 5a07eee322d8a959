"""tools/mutate.py itself, on a toy module whose mutants are known: which mutants it makes, what
each mutant does, content keys that survive reformatting and edits elsewhere (and go stale when
their code changes), a whole run that kills every mutant but the two equivalent ones, and the
scores recorded from it; and the documented score tables, which must be exactly what
``mutate.py scores`` writes from the committed summary."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
_STORAGE = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
import mutate  # noqa: E402
import mutation_scores  # noqa: E402

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


def test_a_run_kills_every_mutant_but_the_equivalent_ones(tmp_path, monkeypatch, capsys):
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

    # The scores recorded from the run, and the table written from them (in this process).
    _write_toy_project(tmp_path)
    monkeypatch.setattr(mutate, "ROOT", str(tmp_path))
    monkeypatch.setattr(mutate, "OUT", str(tmp_path / ".mutation"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mutate, "TARGETS", str(tmp_path / "tools" / "mutation_targets.toml"))
    mutate.main(["record", "toypkg/toy.py"])
    (entry,) = json.loads((tmp_path / "tools" / "mutation_scores.json").read_text()).values()
    assert {k: entry[k] for k in ("mutants", "ran", "killed", "no_tests", "equivalent")} == {
        "mutants": 10,
        "ran": 10,
        "killed": 8,
        "no_tests": 0,
        "equivalent": 2,
    }
    assert entry["selection"] == ["tests/test_toy.py"] and entry["sample"] is None
    (tmp_path / "SCORES.md").write_text(_TOY_DOCUMENT)
    assert mutate.main(["scores", "--check", "SCORES.md"]) == 1
    assert mutate.main(["scores", "--write", "SCORES.md"]) == 0
    row = "| `toypkg/toy.py` | all 10 | not measured | 8 / 10 (80.0 %) | 8 / 8 (100 %) | "
    assert row + entry["measured"] + " |" in (tmp_path / "SCORES.md").read_text()
    assert mutate.main(["scores", "--check", "SCORES.md"]) == 0
    # A changed module is named: its scores ran on another source.
    (tmp_path / "toypkg" / "toy.py").write_text(TOY.replace("LIMIT = 3", "LIMIT = 4"))
    capsys.readouterr()
    mutate.main(["scores"])
    assert "toypkg/toy.py has changed since its scores were run" in capsys.readouterr().err


_TOY_DOCUMENT = """# Scores

<!-- mutation-scores: scores -->
<!-- /mutation-scores: scores -->
"""


# -- the recorded scores and the documented tables ----------------------------------------------

#: The documents whose marked tables ``mutate.py scores --write`` writes.
DOCUMENTED = ["README.md", "docs/mutation-testing.md"]


def _rendered(name):
    text = (ROOT / name).read_text()
    summary = mutation_scores.load(ROOT / mutation_scores.SUMMARY)
    return text, mutation_scores.render(text, summary, mutate.load_targets())


@pytest.mark.parametrize("name", DOCUMENTED)
def test_the_documented_tables_are_what_scores_writes(name):
    text, rendered = _rendered(name)
    assert "<!-- mutation-scores: " in text
    assert rendered == text, f"run: python tools/mutate.py scores --write {name}"


def test_every_table_is_documented_and_a_hand_edited_number_is_caught():
    documented = "".join((ROOT / name).read_text() for name in DOCUMENTED)
    for table in mutation_scores.TABLES:
        assert f"<!-- mutation-scores: {table} -->" in documented
        assert f"<!-- /mutation-scores: {table} -->" in documented
    text, _ = _rendered("docs/mutation-testing.md")
    summary = mutation_scores.load(ROOT / mutation_scores.SUMMARY)
    targets = mutate.load_targets()
    entry = summary["verify/tolerances.py"]
    row = f"| `verify/tolerances.py` | all {entry['mutants']} |"
    assert row in text
    edited = text.replace(row, f"| `verify/tolerances.py` | all {entry['mutants'] + 1} |")
    rendered = mutation_scores.render(edited, summary, targets)
    assert rendered != edited and rendered == text


def test_the_summary_covers_the_modules_it_documents():
    summary = mutation_scores.load(ROOT / mutation_scores.SUMMARY)
    targets = mutate.load_targets()
    for module, entry in summary.items():
        assert module in targets and (ROOT / module).exists(), module
        assert 0 <= entry["killed"] <= entry["ran"] - entry["equivalent"] <= entry["mutants"]
        assert entry["equivalent"] <= len(targets[module].get("equivalent", []))
        assert (entry["ran"] < entry["mutants"]) == (entry["sample"] is not None), module
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["measured"]), module


def test_a_table_without_its_closing_marker_or_of_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="no closing marker"):
        mutation_scores.render("<!-- mutation-scores: scores -->\n", {}, {})
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        mutation_scores.render("<!-- mutation-scores: nope -->\n", {}, {})


def test_the_score_module_examples_hold():
    import doctest

    result = doctest.testmod(mutation_scores)
    assert result.attempted == 3 and result.failed == 0
