"""Every number the README and docs/ quote from the code, recomputed from the code.

``RECOMPUTED`` maps each quoted passage to the function that rebuilds it from the code (or
from an independent computation); a passage that no longer matches fails. The shown command
outputs of docs/certified-bounds.md run as the README's do (tests/test_readme.py), and their
JSON examples must repeat those outputs' numbers. ``NOT_FROM_THE_CODE`` lists the passages
whose numbers are measurements (timings, speed-ups, mutation scores), versions, citations or
inputs, each with its reason; and the scan test fails on any decimal number in README.md or
docs/*.md that neither list covers, so a new number gets its recomputation (or its reason)
when it is written.
"""

import math
import os
import re
import shlex

import forkrun
import pytest
import sympy
from quoted import ROOT, agrees, document, parse_quoted, table_row

DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


# -- recomputations ---------------------------------------------------------------------------


def _uniform_coefficients():
    from derive.bounds import uniform_coefficient_bound

    return [uniform_coefficient_bound(k, 1.0) for k in range(6)]


def _uniform_remainder(temperature, order):
    from derive.bounds import uniform_remainder_bound

    return uniform_remainder_bound(1.0, temperature, order)


def _uniform_remainder_sentence():
    values = [_uniform_remainder(t, k) for t, k in ((10.0, 1), (10.0, 2), (3.3, 1), (3.3, 2))]
    quoted = ["0.55", "0.070", "2.5", "0.83"]
    assert all(agrees(q, v) for q, v in zip(quoted, values)), values
    return (
        f"At `T = 10R` the uniform remainder bound is `{values[0]:.2f}R²` after one\n"
        f"term and `{values[1]:.3f}R²` after two; at `T = 3.3R`, `{values[2]:.1f}R²` and "
        f"`{values[3]:.2f}R²`."
    )


def _two_class_terms():
    """``|L_k| T^-k`` for ``z = (0, π)``, ``v = (0, 0)`` from derive.bounds, each checked
    against the closed form ``|L_{2n-2}| = (1 - 4^-n) ζ(2n) R^{2n} / (n π^{2n})``."""
    import mpmath

    from derive.bounds import CertifiedExpansion

    coefficients = CertifiedExpansion([0.0, math.pi], [0.0, 0.0]).coefficients("loss", 53)
    rows = {}
    for temperature in (0.9, 1.1):
        values = []
        for k in (10, 20, 30, 40, 52):
            n = (k + 2) // 2
            closed = (1 - mpmath.mpf(4) ** -n) * mpmath.zeta(2 * n) / n
            ball = float(abs(coefficients[k]).mid())
            assert math.isclose(ball, float(closed), rel_tol=1e-12), (k, ball, closed)
            values.append(ball * temperature**-k)
        rows[temperature] = values
    return rows


def _momentum_decay_sentence():
    from derive.statements.core import (
        MOMENTUM_DECAY_POINT,
        learning_rate,
        means_after,
        weight_decay,
    )

    after_two = float(means_after(2)[2].subs(MOMENTUM_DECAY_POINT))
    claimed = float(((1 - learning_rate * weight_decay) ** 2).subs(MOMENTUM_DECAY_POINT))
    return f"that is `{after_two:.4f} w̄₀`, not `{claimed:.4f} w̄₀`"


def _bias_decay_sentence():
    from derive.statements.core import (
        BIAS_DECAY_MEAN,
        BIAS_DECAY_POINT,
        bias_decay_gap,
        learning_rate,
        weight_decay,
    )

    steps, start, gap = bias_decay_gap()
    at_point = gap.subs(BIAS_DECAY_POINT).subs(start, BIAS_DECAY_MEAN)
    factor = 1 - (learning_rate * weight_decay).subs(BIAS_DECAY_POINT)
    assert sympy.simplify(at_point - BIAS_DECAY_MEAN * (factor**steps - 1)) == 0
    return (
        f"SGD(lr = {float(BIAS_DECAY_POINT[learning_rate]):g}, weight_decay = "
        f"{float(BIAS_DECAY_POINT[weight_decay]):g}) and `b̄ = {float(BIAS_DECAY_MEAN):g}` "
        f"that is `{float(BIAS_DECAY_MEAN):g}({float(factor):g}ᵗ − 1)`, "
        f"`{float(at_point.subs(steps, 1)):g}` after one\nstep".replace("-0", "−0")
    )


def _jsd_first_correction():
    """JSD_β's T^-1 term against β(1 - β)(½⟨v̂d̂²⟩ + ((1 + β)/6)⟨d̂³⟩) and KD's against
    ½⟨v̂d̂²⟩ + ⅙⟨d̂³⟩, at concrete logits (N = 3), from derive's concrete terms."""
    import derive

    student, teacher = [0.3, -1.2, 2.0], [1.1, 0.4, -0.7]
    names = [f"{side}{i}" for side in "zv" for i in (1, 2, 3)]
    point = dict(zip(names, student + teacher))
    difference = [z - v for z, v in zip(student, teacher)]
    centred_difference = [d - sum(difference) / 3 for d in difference]
    centred_teacher = [v - sum(teacher) / 3 for v in teacher]
    third = sum(d**3 for d in centred_difference) / 3
    mixed = sum(v * d**2 for v, d in zip(centred_teacher, centred_difference)) / 3
    for objective, parameters, weight, cubic in (
        ("kl", None, 1.0, 1 / 6),
        ("jsd", {"beta": "3/10"}, 0.3 * 0.7, 1.3 / 6),
    ):
        expansion = derive.expand(
            "loss", order=2, objective=objective, classes=3, parameters=parameters
        )
        term = expansion.terms[1].expr
        value = float(term.subs({s: point[s.name] for s in term.free_symbols}))
        assert math.isclose(value, weight * (mixed / 2 + cubic * third), rel_tol=1e-12), objective
    return "β(1 − β)(½⟨v̂d̂²⟩ + ((1 + β)/6)⟨d̂³⟩)` against KD's\n`½⟨v̂d̂²⟩ + ⅙⟨d̂³⟩`"


def _slope_tolerance():
    from verify.tolerances import SLOPE_TOLERANCE

    return SLOPE_TOLERANCE


def _row_agrees(name, first_cell, values):
    quoted = table_row(document(name), first_cell)
    return len(quoted) == len(values) and all(agrees(q, v) for q, v in zip(quoted, values))


def _defaults(function):
    import inspect

    parameters = inspect.signature(inspect.unwrap(function)).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _constant(module, name):
    import importlib

    return getattr(importlib.import_module(module), name)


_BOUNDS = "docs/certified-bounds.md"
_UNIFORM_SENTENCE = (
    "At `T = 10R` the uniform remainder bound is `0.55R²` after one\nterm and `0.070R²` after "
    "two; at `T = 3.3R`, `2.5R²` and `0.83R²`."
)
_BIAS_DECAY_SENTENCE = (
    "SGD(lr = 0.1, weight_decay = 0.1) and `b̄ = 0.5` that is `0.5(0.99ᵗ − 1)`, `−0.005` after "
    "one\nstep"
)
_JSD_SENTENCE = "β(1 − β)(½⟨v̂d̂²⟩ + ((1 + β)/6)⟨d̂³⟩)` against KD's\n`½⟨v̂d̂²⟩ + ⅙⟨d̂³⟩`"
_MOMENTUM_SENTENCE = "that is `0.9711 w̄₀`, not `0.9801 w̄₀`"

#: (document, quoted passage) -> a function that is true iff the code computes the passage.
RECOMPUTED = {
    (_BOUNDS, "| bound on `|L_k|` | 1.0 | 4.58 | 6.29 | 5.84 | 4.31 | 2.71 |"): lambda: _row_agrees(
        _BOUNDS, "bound on `|L_k|`", _uniform_coefficients()
    ),
    (_BOUNDS, _UNIFORM_SENTENCE): lambda: _uniform_remainder_sentence() == _UNIFORM_SENTENCE,
    (_BOUNDS, "| `|L_k| T⁻ᵏ` at `T = 0.9` | 0.478 | 0.748 | 1.47 | 3.22 | 8.87 |"): lambda: (
        _row_agrees(_BOUNDS, "`|L_k| T⁻ᵏ` at `T = 0.9`", _two_class_terms()[0.9])
    ),
    (_BOUNDS, "| `|L_k| T⁻ᵏ` at `T = 1.1` | 0.0643 | 0.0135 | 0.00358 | 0.00105 | 0.000261 |"): (
        lambda: _row_agrees(_BOUNDS, "`|L_k| T⁻ᵏ` at `T = 1.1`", _two_class_terms()[1.1])
    ),
    (_BOUNDS, "`T = 1.05, 3, 1000 × R/π`"): lambda: (
        _constant("verify.checks.radius", "TEMPERATURE_FACTORS") == (1.05, 3.0, 1e3)
    ),
    (_BOUNDS, "(`ρ = 0.5, 0.8, 0.95 × π/R`; for `1/T ≥ 0.9π/R`"): lambda: (
        _constant("derive.bounds", "CIRCLES") == (0.5, 0.8, 0.95)
        and "if epsilon >= 0.9 * radius:" in (ROOT / "derive/bounds.py").read_text()
    ),
    (_BOUNDS, "exceeds 1.25 times the best lower bound"): lambda: (
        _constant("derive.bounds", "_REFINE_FACTOR") == {"loss": 1.25, "gradient": 1.25}
    ),
    (_BOUNDS, "Gaussian noise of 0.5 times each"): lambda: (
        _constant("verify.regime", "PERTURBATION") == 0.5
    ),
    ("docs/theory.md", _MOMENTUM_SENTENCE): lambda: (
        _momentum_decay_sentence() == _MOMENTUM_SENTENCE
    ),
    ("docs/theory.md", "for SGD(lr = 0.1, momentum =\n0.9, weight_decay = 0.1)"): lambda: (
        {
            str(k): float(v)
            for k, v in _constant("derive.statements.core", "MOMENTUM_DECAY_POINT").items()
        }
        == {"eta": 0.1, "mu": 0.9, "lambda": 0.1, "tau": 0.0}
    ),
    ("docs/theory.md", _BIAS_DECAY_SENTENCE): lambda: (
        _bias_decay_sentence() == _BIAS_DECAY_SENTENCE
    ),
    ("docs/theory.md", _JSD_SENTENCE): lambda: _jsd_first_correction() == _JSD_SENTENCE,
    ("docs/theory.md", "both bias means set to 0.5"): lambda: (
        _constant("verify.checks.bias_decay", "BIAS_MEAN") == 0.5
    ),
    ("docs/theory.md", "`−1 ± 0.1`"): lambda: _slope_tolerance() == 0.1,
    ("docs/theory.md", "temperatures 0.1–10⁴"): lambda: (
        _defaults(_constant("verify.strategies", "temperatures"))
        == {"min_value": 0.1, "max_value": 1e4}
    ),
    ("README.md", "slope −1 ± 0.1"): lambda: _slope_tolerance() == 0.1,
    (
        "README.md",
        "its ⟨d̂³⟩ coefficient is (1 + β)/6\nagainst KD's 1/6, after the common factor β(1 − β)",
    ): lambda: _jsd_first_correction() == _JSD_SENTENCE,
    ("docs/mutation-testing.md", "a slope tolerance of 0.1"): lambda: _slope_tolerance() == 0.1,
    ("docs/mutation-testing.md", "(`SLOPE_TOLERANCE = 0.1`"): lambda: _slope_tolerance() == 0.1,
    ("docs/audit.md", "scale 3.5 = 14\nreal tokens / 4 sequences"): lambda: 14 / 4 == 3.5,
}


@pytest.mark.parametrize(
    ("name", "passage"), list(RECOMPUTED), ids=[f"{n}:{p[:40]}" for n, p in RECOMPUTED]
)
def test_quoted_passage_is_what_the_code_computes(name, passage):
    assert passage in document(name), f"{name} no longer quotes {passage!r}"
    assert RECOMPUTED[name, passage]()


def test_a_drifted_number_fails():
    assert agrees("0.83", _uniform_remainder(3.3, 2))
    assert not agrees("0.81", _uniform_remainder(3.3, 2))
    assert agrees("0.81", _uniform_remainder(10 / 3, 2))
    assert parse_quoted("5·10³") == (5000.0, 1) and parse_quoted("−0.155") == (-0.155, 3)
    assert agrees("2.0", 2.0158) and not agrees("2.0", 2.06) and agrees("176", 175.8)


# -- shown outputs of docs/certified-bounds.md -------------------------------------------------

BOUNDS_PAGE = document("docs/certified-bounds.md")
SHOWN = [
    body
    for language, body in re.findall(r"```([a-z]*)\n(.*?)```", BOUNDS_PAGE, re.S)
    if language == "text" and body.startswith("$ python -m ")
]


def _shown_lines_missing(shown, actual):
    lines, position = actual.splitlines(), 0
    for line in shown:
        if line.strip() == "...":
            continue
        try:
            position = lines.index(line, position) + 1
        except ValueError:
            return line
    return None


@pytest.fixture(scope="module")
def shown_outputs(tmp_path_factory):
    """``{command: stdout}`` for every shown command (a ``--plot`` goes to a temporary file)."""
    outputs = {}
    for block in SHOWN:
        command = block.splitlines()[0][2:]
        words = shlex.split(command)[1:]
        if "--plot" in words:
            words[words.index("--plot") + 1] = str(tmp_path_factory.mktemp("plot") / "r.png")
        environment = dict(os.environ, PYTHONPATH=str(ROOT))
        run = forkrun.run(
            words,
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr
        outputs[command] = run.stdout
    return outputs


def test_the_bounds_page_shows_the_regime_and_bound_outputs():
    assert {block.split()[4] for block in SHOWN} == {"regime", "bound"}


@pytest.mark.parametrize("block", SHOWN, ids=[b.split()[4] for b in SHOWN])
def test_shown_output_is_what_the_command_prints(block, shown_outputs):
    command, *shown = block.rstrip("\n").splitlines()
    missing = _shown_lines_missing(shown, shown_outputs[command[2:]])
    assert missing is None, (missing, shown_outputs[command[2:]])


def _json_numbers(marker):
    block = next(
        body
        for language, body in re.findall(r"```([a-z]*)\n(.*?)```", BOUNDS_PAGE, re.S)
        if language == "json" and marker in body
    )
    return dict(re.findall(r'"(\w+)": (-?[0-9.e+-]+)', block))


def test_the_regime_json_example_repeats_the_shown_table():
    numbers = _json_numbers('"radius_temperature": {')
    shown = next(block for block in SHOWN if " regime " in block)
    radius = re.search(r"median ([0-9.]+), largest ([0-9.]+)", shown).groups()
    row = next(line.split() for line in shown.splitlines() if line.startswith("  8 "))
    # T, distance median, worst, share, certified median, certified worst, inside radius
    assert float(numbers["median"]) == float(radius[0]) and numbers["max"] == radius[1]
    assert float(numbers["temperature"]) == float(row[0])
    assert numbers["distance_median"] == row[1] and numbers["distance_worst"] == row[2]
    assert numbers["first_correction_share_median"] == row[3]
    assert numbers["certified_median"] == row[4] and numbers["certified_worst"] == row[5]
    assert float(numbers["inside_radius"]) * 100 == float(row[6])
    assert numbers["batch"] == numbers["certified_examples"] == "16"


def test_the_bound_json_example_repeats_the_shown_table():
    numbers = _json_numbers('"loss_remainder_bound"')
    shown = next(block for block in SHOWN if " bound " in block)
    row = next(line.split() for line in shown.splitlines() if line.strip().startswith("0 "))
    assert float(numbers["temperature"]) == 8.0 and numbers["order"] == "2"
    assert numbers["radius_temperature"] == row[1]
    assert float(numbers["loss_remainder_bound"]) == float(row[3])
    assert float(numbers["gradient_remainder_bound"]) == float(row[4])


# -- the README's check output -------------------------------------------------------------------


@pytest.fixture(scope="module")
def adam_result():
    from verify.registry import run_check

    return run_check("mean-preservation/adam")


def test_the_readme_check_json_and_counterexample_are_the_checks(adam_result):
    readme = document("README.md")
    quoted = re.search(
        r'"examples": (\d+), "worst_error": ([0-9.]+), "tolerance": ([0-9.e-]+)', readme
    )
    assert int(quoted.group(1)) == adam_result.examples
    assert agrees(quoted.group(2), adam_result.worst_error)
    assert agrees(quoted.group(3), adam_result.tolerance)
    assert f"`{adam_result.counterexample}`" in readme
    assert f'"{adam_result.counterexample.split(" from ")[0]} ..."' in readme


def test_the_audit_report_shown_is_the_audits():
    # docs/audit.md shows two lines of the report of verify.gallery:kd_mean_reduction.
    page = document("docs/audit.md")
    shown = re.search(r"```text\n(  identified as .*?)```", page, re.S).group(1).splitlines()
    run = forkrun.run(
        ["-m", "verify", "audit", "verify.gallery:kd_mean_reduction"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert _shown_lines_missing(shown, run.stdout) is None, run.stdout


# -- the scan ---------------------------------------------------------------------------------

#: Passages recomputed by another test (named): their numbers count as covered.
_MUTATION_TABLES = "tests/test_mutate.py::test_the_documented_tables_are_what_scores_writes"
RECOMPUTED_ELSEWHERE = {
    # Mutation scores are measurements recorded in tools/mutation_scores.json; the tables (and
    # the equivalent mutants' keys, code literals) are what `tools/mutate.py scores` writes.
    ("README.md", "| module | mutants run | score |"): _MUTATION_TABLES,
    ("docs/mutation-testing.md", "| Module | Mutants run | Before | After |"): _MUTATION_TABLES,
    ("docs/mutation-testing.md", "| Module | Selection | `slow` |"): _MUTATION_TABLES,
    (
        "docs/mutation-testing.md",
        "{'ratio': -1.0, 'error': 0.0, 'tolerance': 0.0, 'temperature': temperatures[0]}",
    ): _MUTATION_TABLES,
    ("docs/mutation-testing.md", "if reference_size else 0.0 | 0.0 -> 1.0`"): _MUTATION_TABLES,
    ("docs/optimizers.md", "| optimizer or setup | exact arithmetic | statement |"): (
        "tests/test_atlas_doc.py (torch.optim rows by default, timm rows with --run-slow)"
    ),
    ("README.md", "`Adam(lr=0.1), kl at T=1, Linear(1->3) from W="): (
        "test_the_readme_check_json_and_counterexample_are_the_checks"
    ),
    ("docs/audit.md", "  identified as         kl, weight 0.1"): (
        "test_the_audit_report_shown_is_the_audits"
    ),
    ("docs/certified-bounds.md", "| ≥ 10 | 100 | 1.00 | 1.02 | 2.0 |"): (
        "tests/test_bounds.py::test_the_documented_usefulness_table_is_the_default_sweeps"
    ),
    ("docs/certified-bounds.md", "relative real part −0.155"): (
        "tests/test_bounds.py::test_radius_check_catches_a_radius_ten_percent_too_large"
    ),
    ("docs/certified-bounds.md", "`z = (0.25, 0.5)`, `v = (0.25, 0.25)`"): (
        "tests/test_bounds.py::test_tight_check_holds_and_catches_a_radius_ten_percent_off_either_way"
    ),
}

#: Passages whose decimal numbers are not computed by the code, with the reason.
NOT_FROM_THE_CODE = {
    ("README.md", "§2.1; Chen et al., arXiv:2109.06458"): "citation",
    ("README.md", "torch==2.13.0"): "version pin",
    ("README.md", "any torch ≥ 2.1 works"): "version",
    ("README.md", "(with the `torchvision` built for torch 2.13)"): "version",
    (
        "README.md",
        (
            "Python 3.11 runs everything; `derive` alone (no torch) is also tested on Python 3.10 "
            "and\n3.12"
        ),
    ): "Python versions",
    ("README.md", "--expect jsd:beta=0.5 --weight 0.5"): "command-line input",
    ("README.md", "(torch 2.13 CPU build, sympy 1.14)"): "the measuring machine's versions",
    ("README.md", "| cold process | seconds |"): "timings (benchmarks/, measured)",
    ("README.md", "3.1·10⁵ vs 1.4·10³ vectors/s"): "benchmark throughput (measured)",
    ("docs/theory.md", "arXiv:1503.02531, §2.1"): "citation",
    ("docs/theory.md", "arXiv:2109.06458"): "citation",
    ("docs/certified-bounds.md", "torch==2.13.0"): "version pin",
    ("docs/certified-bounds.md", "remainder_bound(8.0, order=2)"): "example input",
    ("docs/certified-bounds.md", "certified_bounds(student, teacher, 8.0, 2)"): "example input",
    ("docs/certified-bounds.md", "scales 0.1–10"): "the sweep's parameters (tests/test_bounds.py)",
    ("docs/certified-bounds.md", "costs 0.1–0.5 s"): "timing (measured)",
    ("docs/audit.md", "mypackage.losses:my_loss --expect jsd:beta=0.5"): "command-line input",
    ("docs/audit.md", "mypackage.losses:my_loss --weight 0.5"): "command-line input",
    ("docs/audit.md", "weight=1.0, ...)"): "the API's default argument, shown",
    ("docs/audit.md", '`{"beta": 0.3}`, `{"alpha": 1.0, "beta": 8.0}`'): "example values",
    ("docs/audit.md", "numbers as `0.3`"): "input syntax",
    ("docs/audit.md", "(e.g. β ≈ 0.3, not 0.5)"): "example values",
    ("docs/trace.md", "torch.tensor(0.3, dtype=x.dtype)"): "example code",
    ("docs/audit.md", "(identification: symbolic kl, weight 1 (exact), numeric kl, weight 0.1)"): (
        "a message's format, with the numbers of the report above"
    ),
    ("docs/mutation-testing.md", "`52: 1.0 -> 10.0`, `52: 1.0 -> 0.1`, `52: 0.0 -> 1.0`"): "mutant "
    "descriptions (code literals)",
    ("docs/mutation-testing.md", "`169: 0.0 -> 1.0`"): "mutant description",
    ("docs/mutation-testing.md", "an exponent exactly 0.1 from"): "a mutant's effect, described",
    ("docs/mutation-testing.md", "mutmut 3 (3.8.1 was tried)"): "mutmut's version",
    ("docs/mutation-testing.md", "| on `derive/statements/_common.py` | mutmut 3.8.1 |"): (
        "one run of each tool on 2 CPU cores (counts and times measured), and mutmut's version"
    ),
    ("docs/mutation-testing.md", "exactly 0.1 from a half-integer)"): "ditto",
    ("docs/monitor.md", "moved by 4.0e-03 in step 1 (weight; round-off floor 2.6e-06)"): (
        "a warning's format, with the numbers of the example run below"
    ),
    ("docs/monitor.md", "| run | the report's first cause (statement) |"): "measurements of "
    "a training run (examples/monitor_kd.py, 300 steps; its test checks the four causes)",
    ("docs/monitor.md", "stays within cosine 0.93 of"): "ditto",
    ("docs/monitor.md", "(T/(R/π) ≥ 1.37)"): "ditto",
    ("docs/optimizers.md", "drift:     |1ᵀW| 1.01e-02, |1ᵀb| 6.48e-03"): "an example run's "
    "output (the command's fields and verdicts are tested in tests/test_atlas.py)",
    ("docs/optimizers.md", "`A = 3.4445⁵ ≈ 488`"): "Muon's Newton-Schulz coefficient, a constant "
    "of torch.optim.Muon (verify.atlas.drift.NEWTON_SCHULZ_AMPLIFICATION)",
    ("docs/optimizers.md", "a planted drift of 1.5"): "the negative control's input",
    ("docs/optimizers.md", "`lr = 0.01`\nfor `timm`"): "the atlas's settings (input)",
    ("docs/optimizers.md", "| timm, bias-free head, `lr = 0.01` |"): "measurements "
    "(verify.atlas.precision; tests/test_atlas.py checks each verdict in both precisions)",
    ("docs/optimizers.md", "| setup | exact arithmetic | statement | float64 drift |"): (
        "measurements of the checks of python -m verify check, whose verdicts tests/"
        "test_verify_checks.py asserts"
    ),
    ("docs/optimizers.md", "(from 1e-02 to 3e-02 measured)"): "measured over repeated runs",
    ("docs/optimizers.md", "(cosine below `0.1/√d`)"): "timm's sgdp threshold (its code)",
    ("docs/optimizers.md", "slope at 0, `a = 3.4445`"): "Muon's coefficient (a constant)",
    ("docs/optimizers.md", "10⁻¹²: 3.4445, 3.4445,\n3.4445, 3.4445, 3.4445"): "measured by "
    "verify.atlas.precision.newton_schulz_amplification (tests/test_atlas.py asserts it)",
    ("docs/optimizers.md", "| `torch.optim.Muon(lr=0.02)`, bias-free head, 20 steps |"): (
        "measurements (verify.atlas.precision; tests/test_atlas.py checks bfloat16 against "
        "float64 and the re-centred update)"
    ),
    ("docs/optimizers.md", "`lr = 0.1`, `max|W| ≈ 0.41`"): "the run's input and its measured scale",
    ("docs/optimizers.md", "| precision | after 1 step | after 10 | after 100 |"): "measurements "
    "(verify.atlas.precision.sgd_precision_drift; tests/test_atlas.py checks them against the "
    "tolerance model)",
    ("docs/theory.md", "`a = 3.4445`, at every iteration"): "Muon's coefficient (a constant)",
    ("docs/theory.md", "`3a = 10.3335`"): "three times Muon's coefficient (the proof's residual)",
    ("docs/optimizers.md", "`3.4445⁵ ≈ 488` in all"): "Muon's coefficient (a constant)",
    (
        "docs/optimizers.md",
        "(measured /\nmodel between 0.17 and 0.73)",
    ): "ratios of the measurements in "
    "the table above to the model (tests/test_atlas.py checks the model bounds them)",
    ("docs/optimizers.md", "growth exponents 0.35–0.52"): "the table's exponents, restated",
    ("docs/optimizers.md", "random walk\n(0.5)"): "the random walk's exponent (theory)",
    ("docs/theory.md", "clipping to `[−0.1, 0.2]` gives\n`0.1` at `a = 1/2`"): "the refutation's "
    "counterexample (its proof computes the residual 1/10)",
    ("docs/monitor.md", "| step (N = 1000, B = 256, float32) |"): "timings "
    "(benchmarks/bench_monitor.py, measured)",
    ("docs/monitor.md", "3.2 ms to 2.1 ms; the head's 7 passes over its N × F weight"): "ditto",
    ("README.md", "falls to 0 below T ≈ 0.3 (e^{−gap/T})"): "read off the regime plot of the "
    "shipped example (the regime test checks the temperature gradient's values)",
    ("docs/audit.md", "`fn(student, teacher, beta=0.5, temperature=T)`, or a constructor"): (
        "command-line input"
    ),
    ("docs/audit.md", "about 1.1 times its in-process time"): "timing (benchmarks/, measured)",
    ("docs/audit.md", "at about 0.3 s per 10⁶ float64 values"): "timing (measured)",
    ("docs/audit.md", '`pip install torch==2.13.0 -e ".[integrations]"`'): "version pin",
    ("docs/audit.md", "| loss | command | identified as |"): "command-line inputs (β, α, γ) "
    "and identifications that tests/test_integrations.py checks against the real libraries",
    ("docs/audit.md", 'temperature=T, alpha=0.5)({".": {"output": student}},'): (
        "command-line input"
    ),
    ("docs/certified-bounds.md", "(about 0.2 s per example of 10 classes"): "timing (measured)",
    ("docs/certified-bounds.md", "and 2.5 s per example of 4096 classes"): "timing (measured)",
    ("docs/theory.md", "(N = 2..16, margins ≥ 0.3)"): "the check's drawing parameters",
    ("docs/theory.md", "a planted gap 1.5 times the true one"): "the negative control's input",
    ("docs/theory.md", "N = 2..50, margins ≥ 0.5, T = 10⁻³"): "the reference's parameters",
    ("docs/trace.md", "--call 'fn(student, teacher, beta=0.5, temperature=T)'"): (
        "command-line input"
    ),
}

_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?:e[-+]?\d+)?")


def _table_span(text, start, end):
    """The whole markdown table around ``text[start:end]`` (its contiguous ``|`` lines)."""
    lines = text.splitlines(keepends=True)
    offsets, position = [], 0
    for line in lines:
        offsets.append((position, position + len(line), line.lstrip().startswith("|")))
        position += len(line)
    inside = [i for i, (a, b, _) in enumerate(offsets) if a <= start < b or a < end <= b]
    first, last = inside[0], inside[-1]
    while first > 0 and offsets[first - 1][2]:
        first -= 1
    while last + 1 < len(offsets) and offsets[last + 1][2]:
        last += 1
    return offsets[first][0], offsets[last][1]


def _fence_spans(text):
    return [m.span() for m in re.finditer(r"```([a-z]*)\n(.*?)```", text, re.S)]


def _listed_span(text, start, end):
    """What a listed passage covers: its fenced block, its table, or else its lines."""
    for fence_start, fence_end in _fence_spans(text):
        if fence_start <= start < fence_end:
            return fence_start, fence_end
    if text[start : start + 2] == "| ":
        return _table_span(text, start, end)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, len(text) if line_end < 0 else line_end


def _covered_spans(name, text):
    spans = []
    listed_passages = ((RECOMPUTED, False), (RECOMPUTED_ELSEWHERE, True), (NOT_FROM_THE_CODE, True))
    for listed, whole in listed_passages:
        for document_name, passage in listed:
            if document_name != name:
                continue
            for m in re.finditer(re.escape(passage), text):
                spans.append(_listed_span(text, *m.span()) if whole else m.span())
    # Fenced blocks checked as a whole: shown command outputs (here and in
    # tests/test_readme.py) and the JSON examples checked above; command lines and code,
    # whose numbers are inputs.
    for match in re.finditer(r"```([a-z]*)\n(.*?)```", text, re.S):
        language, body = match.groups()
        shown = language == "text" and body.startswith("$ python -m ")
        if shown or language in ("json", "bash", "python"):
            spans.append(match.span())
    return spans


def _uncovered_numbers(name, text):
    spans = _covered_spans(name, text)
    return [
        f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
        for m in _DECIMAL.finditer(text)
        if not any(start <= m.start() and m.end() <= end for start, end in spans)
    ]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_decimal_number_is_recomputed_or_has_a_reason(name):
    uncovered = _uncovered_numbers(name, document(name))
    assert not uncovered, (
        "numbers neither recomputed (RECOMPUTED) nor explained (NOT_FROM_THE_CODE): "
        + ", ".join(uncovered)
    )


def test_every_listed_passage_is_still_in_its_document():
    listed = list(NOT_FROM_THE_CODE) + list(RECOMPUTED_ELSEWHERE)
    missing = [(n, p) for n, p in listed if p not in document(n)]
    assert not missing, missing


def test_the_scan_finds_an_unlisted_number():
    text = "The bound is 0.81R² here; `0.9711 w̄₀`."
    assert _uncovered_numbers("docs/none.md", text) == [
        "docs/none.md:1: 0.81",
        "docs/none.md:1: 0.9711",
    ]


# -- prose numbers read off the shown, recomputed outputs and off the proofs ---------------------


def _regime_rows():
    shown = next(block for block in SHOWN if " regime " in block)
    rows = {}
    for line in shown.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_the_regime_prose_reads_the_shown_table():
    rows = _regime_rows()
    at_four = rows[4]
    quoted = re.search(
        r"at T = 4 the gradient is\n(\d+) % of `‖G₀‖` away from logits matching \(worst example "
        r"(\d+) %\), and only (\d+) of (\d+) examples",
        BOUNDS_PAGE,
    )
    assert quoted, "the regime paragraph changed"
    assert agrees(quoted.group(1), 100 * float(at_four[1]))
    assert agrees(quoted.group(2), 100 * float(at_four[2]))
    inside, batch = int(quoted.group(3)), int(quoted.group(4))
    assert f"{batch} examples" in next(b for b in SHOWN if " regime " in b)
    assert abs(100 * inside / batch - float(at_four[6])) < 1  # the table's share, rounded
    # From T = 16 on the distance halves with each doubling and the bound is within 10 %.
    temperatures = [t for t in sorted(rows) if t >= 16]
    for low, high in zip(temperatures, temperatures[1:]):
        assert 0.45 <= float(rows[high][1]) / float(rows[low][1]) <= 0.55
    for t in temperatures:
        assert float(rows[t][4]) <= 1.1 * float(rows[t][1])
    assert float(rows[8][4]) > 1.1 * float(rows[8][1])  # and not yet at T = 8


def test_the_adaptive_refutations_move_the_mean_by_the_quoted_amounts():
    from derive.statements import STATEMENTS
    from derive.statements.core import learning_rate

    page = document("docs/theory.md")
    assert "by `−η/3` (Adam, AdamW, Adagrad) or `−10η/3`" in page
    for name, amount in (
        ("adam", -learning_rate / 3),
        ("adamw", -learning_rate / 3),
        ("adagrad", -learning_rate / 3),
        ("rmsprop", -10 * learning_rate / 3),
    ):
        residual = STATEMENTS[f"mean-preservation/{name}"].prove().residual
        assert sympy.simplify(residual - amount) == 0, (name, residual)
