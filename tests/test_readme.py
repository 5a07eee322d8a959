"""The README's claims, run: its shown outputs, its command lines, its Python and its tables.

* Every ``text`` block that starts with ``$ python -m ...`` is a command whose real output must
  contain the shown lines, in order (a shown line that the program no longer prints fails).
* Every ``python -m derive|verify ...`` line of a ``bash`` block parses with the real argument
  parser: an option or a value the CLI no longer accepts fails.
* Every ``python`` block runs; one whose first line is ``# NAME.py`` is written to NAME.py for
  the commands to import.
* The objectives table names every registered objective, and each limit ratio it states is
  the ratio of the objective's T^0 term to KD's, recomputed here.
"""

import os
import re
import shlex
from pathlib import Path

import forkrun
import pytest
import sympy

import derive

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```([a-z]*)\n(.*?)```", README, re.S)


def _blocks(language):
    return [body for lang, body in BLOCKS if lang == language]


def _module_files():
    files = {}
    for body in _blocks("python"):
        first = body.splitlines()[0]
        match = re.fullmatch(r"# (\w+\.py)", first.strip())
        if match:
            files[match.group(1)] = body
    return files


SHOWN = [body for body in _blocks("text") if body.startswith("$ python -m ")]


def test_the_readme_shows_outputs_and_commands():
    assert len(SHOWN) >= 3
    assert len(_command_lines()) >= 10


def _shown_lines_in_order(shown, actual):
    """The first shown line that is missing from ``actual`` (in order), or None."""
    lines = actual.splitlines()
    position = 0
    for line in shown:
        try:
            position = lines.index(line, position) + 1
        except ValueError:
            return line
    return None


@pytest.mark.parametrize("block", SHOWN, ids=[b.splitlines()[0][2:60] for b in SHOWN])
def test_shown_output_is_what_the_command_prints(block, tmp_path):
    command, *shown = block.rstrip("\n").splitlines()
    for name, body in _module_files().items():
        (tmp_path / name).write_text(body)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    run = forkrun.run(
        [*shlex.split(command[2:])[1:]],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert _shown_lines_in_order(shown, run.stdout) is None, run.stdout


def test_the_shown_output_check_can_fail():
    actual = "a\nb\nc"
    assert _shown_lines_in_order(["a", "c"], actual) is None
    assert _shown_lines_in_order(["c", "a"], actual) == "a"
    assert _shown_lines_in_order(["b", "d"], actual) == "d"


def _command_lines():
    commands = []
    for body in _blocks("bash"):
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words = words[1:]
                if words[:2] == ["python", "-m"] and words[2] in ("derive", "verify"):
                    commands.append(words[2:])
    return commands


def _parse(words):
    if words[0] == "derive":
        from derive.cli import _parser as build
    else:
        from verify.cli import build_parser as build
    build().parse_args(words[1:])


@pytest.mark.parametrize("words", _command_lines(), ids=lambda w: " ".join(w)[:70])
def test_every_command_line_parses(words):
    _parse(words)


def test_a_command_line_the_cli_does_not_accept_fails_to_parse(capsys):
    with pytest.raises(SystemExit):
        _parse(["derive", "expand", "--quantity", "gradient", "--order", "3", "--no-such"])
    with pytest.raises(SystemExit):
        _parse(["verify", "check", "--examples", "0"])


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    blocks = _blocks("python")
    assert blocks
    for body in blocks:
        exec(compile(body, "README.md", "exec"), {"__name__": "readme"})


def _objectives_table():
    section = README.split("## The objectives", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for name in re.findall(r"`([a-z][a-z-]*)`", cells[0].split(" (")[0]):
            table[name] = cells[2]
    return table


_RATIO = {
    "1": sympy.Integer(1),
    "1/4": sympy.Rational(1, 4),
    "f2": sympy.Symbol("f2"),
    "β(1 − β)": sympy.Symbol("beta") * (1 - sympy.Symbol("beta")),
    "(1 − α)²": (1 - sympy.Symbol("alpha")) ** 2,
}


def test_the_objectives_table_lists_every_objective():
    assert set(_objectives_table()) == set(derive.OBJECTIVES)


@pytest.mark.parametrize("name", [n for n, ratio in _objectives_table().items() if ratio in _RATIO])
def test_the_stated_limit_ratio_is_the_engines(name):
    kd = derive.expand("loss", order=1).terms[0].symbolic
    ours = derive.expand("loss", order=1, objective=name).terms[0].symbolic
    stated = _symbols_of(_RATIO[_objectives_table()[name]], ours)
    residual = sympy.simplify(ours - stated * kd)
    assert residual == 0, (name, residual)


def _symbols_of(stated, expression):
    """The stated ratio with its parameter symbols replaced by the engine's (same names)."""
    by_name = {symbol.name: symbol for symbol in expression.free_symbols}
    return stated.subs(
        {symbol: by_name[symbol.name] for symbol in stated.free_symbols if symbol.name in by_name}
    )


def test_a_wrong_stated_ratio_fails():
    kd = derive.expand("loss", order=1).terms[0].symbolic
    js = derive.expand("loss", order=1, objective="js").terms[0].symbolic
    assert sympy.simplify(js - sympy.Rational(1, 2) * kd) != 0
    assert sympy.simplify(js - sympy.Rational(1, 4) * kd) == 0


def test_the_statement_count_is_the_registrys():
    assert re.search(rf"\b{len(derive.STATEMENTS)} statements\b", README)
    for statement_id in derive.STATEMENTS:
        assert f"`{statement_id.split('/')[0]}`" in README, statement_id


def test_limits_stated_are_the_code_limits():
    from derive._errors import MAX_CLASSES, MAX_ORDER, MAX_PROOF_ORDER
    from verify._errors import MAX_EXAMPLES, MAX_SEED

    assert f"`--order` at most {MAX_ORDER} for `expand` ({MAX_PROOF_ORDER} for `prove`" in README
    assert f"`--classes` 2..{MAX_CLASSES}" in README
    assert f"`--examples` is at most {MAX_EXAMPLES}" in README
    from derive.tracing import MAX_TRACE_ORDER

    assert MAX_TRACE_ORDER == MAX_PROOF_ORDER
    assert MAX_SEED == 2**32 - 1 and "0..2³²−1" in README
