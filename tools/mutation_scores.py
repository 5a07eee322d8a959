"""The recorded mutation scores (``tools/mutation_scores.json``) and the tables written from them.

``.mutation/`` (the runner's state: every mutant's verdict) is not committed; what the docs
quote is: per module, the mutants there are, those run (all, or a sample with its seed), those
killed, reached by no test, and judged equivalent (``equivalent`` in
``tools/mutation_targets.toml``), the test selection and ``slow`` cutoff, the date of the run
and the sha256 of the module's source it ran on; and the "before" score (the tests that existed
before the mutation-driven tests were written), kept from when it was measured.

``python tools/mutate.py record MODULE`` (or ``run ... --record``) updates a module's entry from
its state file; ``python tools/mutate.py scores --write README.md docs/mutation-testing.md``
rewrites every table between the marker comments ``<!-- mutation-scores: NAME -->`` and
``<!-- /mutation-scores: NAME -->`` (NAME one of ``TABLES``) from the summary and the targets,
so the documented numbers are the recorded ones; ``scores --check`` exits 1 if a table differs.

Examples:
    >>> percent(26, 26), percent(61, 89), percent(0, 0)
    ('100 %', '68.5 %', '0 %')
    >>> entry = {"mutants": 676, "ran": 100, "sample": 100, "seed": 0}
    >>> mutants_run(entry), mutants_run({"mutants": 26, "ran": 26})
    ('100 of 676 (`--sample 100 --seed 0`)', 'all 26')
"""

import datetime
import hashlib
import json
import re

SUMMARY = "tools/mutation_scores.json"
_BEGIN = re.compile(r"^([ \t]*)<!-- mutation-scores: ([a-z-]+) -->\n", re.M)


def percent(part, whole):
    """``part / whole`` as the docs write it: one decimal, ``100 %`` when whole."""
    if whole == 0 or part == whole:
        return "100 %" if whole else "0 %"
    return f"{100 * part / whole:.1f} %"


def mutants_run(entry):
    if entry["ran"] == entry["mutants"]:
        return f"all {entry['mutants']}"
    sampled = (
        f" (`--sample {entry['sample']} --seed {entry['seed']}`)" if entry.get("sample") else ""
    )
    return f"{entry['ran']} of {entry['mutants']}{sampled}"


def _score(killed, ran):
    return f"{killed} / {ran} ({percent(killed, ran)})"


def _without_equivalents(entry):
    judged = entry["ran"] - entry["equivalent"]
    return _score(entry["killed"], judged)


def _before(entry):
    before = entry.get("before")
    if not before:
        return "not measured"
    text = _score(before["killed"], before["ran"])
    if before.get("no_tests"):
        text += f", {before['no_tests']} reached by no test"
    return text


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def scores_table(summary):
    """docs/mutation-testing.md's table: before, after, after without the equivalent mutants."""
    rows = [
        _row(
            [
                "Module",
                "Mutants run",
                "Before",
                "After",
                "After, equivalents left out",
                "Run on",
            ]
        ),
        "|---|---|---|---|---|---|",
    ]
    for module, entry in summary.items():
        rows.append(
            _row(
                [
                    f"`{module}`",
                    mutants_run(entry),
                    _before(entry),
                    _score(entry["killed"], entry["ran"]),
                    _without_equivalents(entry),
                    entry["measured"],
                ]
            )
        )
    return "\n".join(rows) + "\n"


def summary_table(summary):
    """README.md's table: the score without the equivalent mutants, and how many there are."""
    rows = [_row(["module", "mutants run", "score"]), "|---|---|---|"]
    for module, entry in summary.items():
        score = _without_equivalents(entry)
        if entry["equivalent"]:
            score += f", {entry['equivalent']} equivalent"
        rows.append(_row([f"`{module}`", mutants_run(entry), score]))
    return "\n".join(rows) + "\n"


def _files(selection, module):
    named = []
    for item in selection:
        if item == module:
            named.append("its doctests")
        elif item.startswith("tests/"):
            named.append(f"`{item}`")
        else:
            named.append(f"`{item}`'s doctests")
    return ", ".join(named)


def selections_table(targets):
    """The test selection of every module of tools/mutation_targets.toml."""
    rows = [_row(["Module", "Selection", "`slow`"]), "|---|---|---|"]
    for module, entry in targets.items():
        selection = _files(entry.get("tests", []), module)
        if entry.get("warm"):
            selection += f" (warm: `{entry['warm']}`)"
        rows.append(_row([f"`{module}`", selection, f"{entry.get('slow', 30.0):g} s"]))
    return "\n".join(rows) + "\n"


def equivalents_list(targets):
    """Every mutant judged equivalent, by its key, per module."""
    lines = []
    for module, entry in targets.items():
        keys = entry.get("equivalent", [])
        if keys:
            lines.append(f"* `{module}` ({len(keys)}):")
            lines.extend(f"  * `{key}`" for key in keys)
    return "\n".join(lines) + "\n"


TABLES = {
    "scores": lambda summary, targets: scores_table(summary),
    "summary": lambda summary, targets: summary_table(summary),
    "selections": lambda summary, targets: selections_table(targets),
    "equivalents": lambda summary, targets: equivalents_list(targets),
}


def render(text, summary, targets):
    """``text`` with every marked table rewritten (indented as its start marker)."""
    out, position = [], 0
    for begin in _BEGIN.finditer(text):
        if begin.start() < position:
            continue
        indent, name = begin.groups()
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}: one of {', '.join(TABLES)}")
        end = re.compile(rf"^[ \t]*<!-- /mutation-scores: {name} -->\n", re.M)
        closing = end.search(text, begin.end())
        if closing is None:
            raise ValueError(f"no closing marker <!-- /mutation-scores: {name} -->")
        body = "\n" + TABLES[name](summary, targets) + "\n"  # blank lines around the table
        body = "".join(indent + line if line.strip() else line for line in body.splitlines(True))
        out += [text[position : begin.end()], body]
        position = closing.start()
    return "".join(out) + text[position:]


def load(path):
    with open(path) as handle:
        return json.load(handle)


def dump(summary, path):
    with open(path, "w") as handle:
        json.dump(summary, handle, indent=1, sort_keys=False)
        handle.write("\n")


def entry_from_state(state, source, equivalent, previous=None, today=None):
    """A module's summary entry from the runner's state (every mutant with its status), the
    module's source and its equivalent keys; ``before`` is kept from ``previous``."""
    mutants = state["mutants"]
    ran = [m for m in mutants if m.get("status") != "not run"]
    survivors = [m for m in ran if m["status"] in ("survived", "no tests")]
    entry = {
        "mutants": len(mutants),
        "ran": len(ran),
        "sample": state.get("sample") if len(ran) < len(mutants) else None,
        "seed": state.get("seed") if len(ran) < len(mutants) else None,
        "killed": sum(m["status"] == "killed" for m in ran),
        "no_tests": sum(m["status"] == "no tests" for m in ran),
        "equivalent": sum(m.get("key") in set(equivalent) for m in survivors),
        "selection": state.get("selection"),
        "slow": state.get("slow"),
        "measured": (today or datetime.date.today()).isoformat(),
        "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
    }
    if previous and previous.get("before"):
        entry["before"] = previous["before"]
    return entry


def stale(summary, sources):
    """Modules whose source (``{module: text}``) is no longer the one their scores ran on."""
    return [
        module
        for module, entry in summary.items()
        if entry.get("source_sha256")
        and module in sources
        and hashlib.sha256(sources[module].encode()).hexdigest() != entry["source_sha256"]
    ]
