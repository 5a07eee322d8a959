"""The regime report (verify.regime, python -m verify regime): its numbers against an
independent 40-digit computation of T(q - p) and of the logits-matching limit, its certified
column against the exact distance, the shipped example end to end, and bad input."""

import json
import math
import os

import mpmath
import numpy
import pytest
import torch

from verify.cli import main as verify_main
from verify.regime import DEFAULT_TEMPERATURES, load_logits, perturbed_students, regime_report

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
TEACHER = os.path.join(EXAMPLES, "teacher_logits.npy")
STUDENT = os.path.join(EXAMPLES, "student_logits.npy")


def _exact_distance(student, teacher, temperature):
    r""":math:`\|T(q - p) - G_0\| / \|G_0\|` with mpmath, :math:`G_0 = (d - \langle d\rangle)/N`."""
    with mpmath.workdps(40):
        t = mpmath.mpf(temperature)
        z = [mpmath.mpf(x) for x in student]
        v = [mpmath.mpf(x) for x in teacher]
        exp_z = [mpmath.exp((x - max(z)) / t) for x in z]
        exp_v = [mpmath.exp((x - max(v)) / t) for x in v]
        q = [e / mpmath.fsum(exp_z) for e in exp_z]
        p = [e / mpmath.fsum(exp_v) for e in exp_v]
        d = [a - b for a, b in zip(z, v)]
        mean = mpmath.fsum(d) / len(d)
        limit = [(x - mean) / len(d) for x in d]
        deviation = [t * (a - b) - c for a, b, c in zip(q, p, limit)]
        return float(
            mpmath.sqrt(mpmath.fsum(x * x for x in deviation))
            / mpmath.sqrt(mpmath.fsum(x * x for x in limit))
        )


@pytest.fixture(scope="module")
def shipped():
    return load_logits(TEACHER), load_logits(STUDENT, option="--student")


def test_the_shipped_example_is_what_the_script_makes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_example_logits", os.path.join(EXAMPLES, "make_example_logits.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.main(str(tmp_path))
    for path, shipped_path in zip(paths, (TEACHER, STUDENT)):
        made, kept = numpy.load(path), numpy.load(shipped_path)
        assert made.shape == kept.shape == (16, 10)
        # Same seeds and steps; a different torch build may round differently.
        assert numpy.allclose(made, kept, rtol=1e-6, atol=1e-6)


def test_distances_agree_with_a_40_digit_reference(shipped):
    teacher, student = (x[:4] for x in shipped)
    temperatures = [0.5, 3.0, 20.0, 1e3]
    report = regime_report(teacher, student, temperatures=temperatures)
    for row, distances in zip(report.rows, report.distances):
        for index, measured in enumerate(distances):
            exact = _exact_distance(
                student[index].tolist(), teacher[index].tolist(), row.temperature
            )
            # float64 autograd: a few hundred roundings of quantities of size ~1 around a
            # result that cancels to `exact` times the leading size; 1e-10 is far above them.
            assert measured == pytest.approx(exact, rel=1e-10, abs=1e-12)
        assert row.distance_median == pytest.approx(float(numpy.median(distances)))
        assert row.distance_worst == pytest.approx(float(numpy.max(distances)))


def test_the_certified_column_bounds_the_exact_distance(shipped):
    teacher, student = (x[4:10] for x in shipped)
    report = regime_report(teacher, student, temperatures=[4.0, 8.0, 50.0])
    for row, distances, certified in zip(report.rows, report.distances, report.certified):
        for index, (_distance, bound) in enumerate(zip(distances, certified)):
            inside = row.temperature > report.radius_temperatures[index]
            assert math.isnan(bound) != inside
            if inside:
                assert (
                    _exact_distance(
                        student[index].tolist(), teacher[index].tolist(), row.temperature
                    )
                    <= bound
                )
        assert row.inside_radius == pytest.approx(
            sum(row.temperature > r for r in report.radius_temperatures) / 6
        )


def test_first_correction_explains_the_deviation_at_high_temperature():
    generator = torch.Generator().manual_seed(1)
    teacher = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    report = regime_report(teacher, temperatures=[1e3, 1e4], seed=3)
    for row in report.rows:
        # The remainder after G_0 is T^-1 G_1 + O(T^-2).
        assert abs(row.first_correction_share_median - 1) < 20 / row.temperature
    # Two classes: odd orders vanish, the first correction is zero.
    pairs = regime_report(
        torch.tensor([[1.0, -0.5]], dtype=torch.float64),
        torch.tensor([[0.3, 0.2]], dtype=torch.float64),
        temperatures=[50.0],
    )
    assert pairs.rows[0].first_correction_share_median < 1e-12


def test_certified_bounds_for_the_first_examples_only(shipped):
    teacher, student = (x[:4] for x in shipped)
    report = regime_report(teacher, student, temperatures=[64.0], certified_examples=2)
    assert report.rows[0].certified_examples == 2 and report.rows[0].inside_radius == 1.0
    assert numpy.isnan(report.certified[0][2:]).all()


def test_perturbed_students_are_seeded_and_scaled():
    teacher = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    first, again = perturbed_students(teacher, seed=5), perturbed_students(teacher, seed=5)
    assert torch.equal(first, again) and not torch.equal(first, perturbed_students(teacher, seed=6))
    assert torch.all(first[1] != 0)  # a constant row still gets (unit-scale) noise


def test_the_shipped_example_runs_end_to_end(tmp_path, capsys):
    plot = tmp_path / "regime.png"
    code = verify_main(
        ["regime", "--logits", TEACHER, "--student", STUDENT, "--json", "--plot", str(plot)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["batch"] == 16 and data["classes"] == 10 and data["student"] == STUDENT
    rows = data["temperatures"]
    assert [row["temperature"] for row in rows] == list(DEFAULT_TEMPERATURES)
    # The report's story: T = 4 is not in the logits-matching regime for this teacher; the
    # distance halves with each doubling of T once T is well above the radius temperature.
    assert data["radius_temperature"]["max"] > 4
    assert rows[2]["distance_median"] > 0.5 and rows[2]["inside_radius"] < 0.5
    assert rows[-1]["distance_median"] < 0.05 and rows[-1]["inside_radius"] == 1.0
    assert rows[-1]["distance_median"] == pytest.approx(rows[-2]["distance_median"] / 2, rel=0.05)
    for row in rows:
        if row["inside_radius"] == 1.0:
            # Each example's bound exceeds its distance, so do the order statistics.
            assert row["certified_median"] >= row["distance_median"]
            assert row["certified_worst"] >= row["distance_worst"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pt_files_and_the_text_report(tmp_path, capsys):
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.5]], dtype=torch.float32)
    torch.save(logits, tmp_path / "logits.pt")
    code = verify_main(
        ["regime", "--logits", str(tmp_path / "logits.pt"), "--temperatures", "8,1,2"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "distance median" in out and "inside radius" in out
    lines = [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert lines[:3] == ["1", "2", "8"]


def _bad_file(directory, kind):
    path = directory / ("bad.pt" if kind in ("dict", "pickle") else "bad.npy")
    if kind == "text":
        path.write_text("1 2 3")
    elif kind == "one-dimensional":
        numpy.save(path, numpy.zeros(5))
    elif kind == "one class":
        numpy.save(path, numpy.zeros((3, 1)))
    elif kind == "nan":
        numpy.save(path, numpy.array([[0.0, numpy.nan, 1.0]]))
    elif kind == "inf":
        numpy.save(path, numpy.array([[0.0, numpy.inf, 1.0]]))
    elif kind == "dict":
        torch.save({"logits": torch.zeros(2, 3)}, path)
    elif kind == "pickle":
        path.write_bytes(b"not a torch file")
    elif kind == "extension":
        path = directory / "bad.csv"
        path.write_text("0,1\n")
    return path


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("text", "not a .npy file"),
        ("one-dimensional", "shape [B, N]"),
        ("one class", "N >= 2"),
        ("nan", "must be finite"),
        ("inf", "must be finite"),
        ("dict", "one tensor"),
        ("pickle", "not a saved tensor"),
        ("extension", ".pt or .npy"),
        ("missing", "no such file"),
    ],
)
def test_bad_logit_files_are_one_line_errors(tmp_path, capsys, kind, fragment):
    path = tmp_path / "missing.npy" if kind == "missing" else _bad_file(tmp_path, kind)
    plot = tmp_path / "plot.png"
    code = verify_main(["regime", "--logits", str(path), "--plot", str(plot)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and not plot.exists()
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert fragment in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--temperatures", "0,1"], "> 0"),
        (["--temperatures", "-2"], "> 0"),
        (["--temperatures", "nan"], "> 0"),
        (["--temperatures", "1,x"], "'x'"),
        (["--student", "SHAPE"], "shape"),
        (["--plot", "DIRECTORY"], "--plot"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, arguments, fragment):
    numpy.save(tmp_path / "teacher.npy", numpy.zeros((2, 3)))
    numpy.save(tmp_path / "student.npy", numpy.zeros((3, 3)))
    arguments = [
        str(tmp_path / "student.npy") if a == "SHAPE" else str(tmp_path) if a == "DIRECTORY" else a
        for a in arguments
    ]
    code = verify_main(["regime", "--logits", str(tmp_path / "teacher.npy")] + arguments)
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert fragment in captured.err and "Traceback" not in captured.err
