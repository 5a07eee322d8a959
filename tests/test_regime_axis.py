"""The regime report's low-temperature side: the perceptron cosine, the crossover, dL/dT."""

import json

import pytest
import torch

import derive
from verify.cli import main as verify_main
from verify.regime import regime_report
from verify.regime_axis import crossover_temperature, perceptron_updates
from verify.symbolic import SymbolicFunction

TEACHER, STUDENT = "examples/teacher_logits.npy", "examples/student_logits.npy"


def _disagreeing(seed=4, batch=6, classes=5):
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(batch, classes, generator=generator, dtype=torch.float64)
    student = torch.randn(batch, classes, generator=generator, dtype=torch.float64)
    return student, teacher


def test_both_ends_and_the_crossover():
    student, teacher = _disagreeing()
    report = regime_report(teacher, student, temperatures=[0.01, 0.1, 1.0, 10.0, 100.0, 1e3])
    low, high = report.rows[0], report.rows[-1]
    assert (
        report.perceptron_examples == int((student.argmax(-1) != teacher.argmax(-1)).sum())
        and report.perceptron_examples > 0
    )
    # Low T: KD's gradient points along the perceptron update; high T: along G_0.
    assert low.perceptron_cosine > 0.99 and high.logits_matching_cosine > 0.99
    assert low.perceptron_cosine > low.logits_matching_cosine
    assert high.logits_matching_cosine > high.perceptron_cosine
    crossover = report.crossover_temperature
    assert crossover is not None and 0.01 < crossover < 1e3


def test_temperature_gradient_at_both_ends():
    student, teacher = _disagreeing(batch=1)
    report = regime_report(teacher, student, temperatures=[1e-3, 1e4])
    top = student.max()
    perceptron = float(top - student[0, teacher[0].argmax()])
    assert report.rows[0].temperature_gradient == pytest.approx(perceptron, rel=1e-9)
    # High T: dL/dT = -L_1 T^-2 + O(T^-3), L_1 from derive's expansion.
    first = derive.expand("loss", order=2).terms[1].expr
    value = float(SymbolicFunction(first)(student, teacher).reshape(-1)[0])
    assert report.rows[1].temperature_gradient == pytest.approx(-value / 1e8, rel=1e-3)
    # A planted sign error is outside that tolerance.
    assert report.rows[1].temperature_gradient != pytest.approx(value / 1e8, rel=1e-3)


def test_perceptron_update_ties_are_means():
    student = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    teacher = torch.tensor([[0.0, 2.0, 2.0]], dtype=torch.float64)
    assert perceptron_updates(student, teacher).tolist() == [[0.5, 0.0, -0.5]]


def test_crossover_interpolates_and_is_none_without_a_sign_change():
    assert crossover_temperature([1.0, 100.0], [0.9, 0.1], [0.1, 0.9]) == pytest.approx(10.0)
    assert crossover_temperature([1.0, 100.0], [0.9, 0.8], [0.1, 0.2]) is None
    assert crossover_temperature([1.0, 100.0], [None, None], [0.1, 0.2]) is None


def test_the_shipped_example_json_has_the_new_keys(capsys):
    code = verify_main(
        [
            "regime",
            "--logits",
            TEACHER,
            "--student",
            STUDENT,
            "--json",
            "--temperatures",
            "0.01,0.1,1,10,100",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert "crossover_temperature" in data and data["perceptron_examples"] == 0
    for row in data["temperatures"]:
        assert {"perceptron_cosine", "logits_matching_cosine", "temperature_gradient"} <= set(row)
        assert "distance_median" in row
    # Every argmax agrees here: the perceptron loss is 0, and so is dL/dT at low T.
    assert abs(data["temperatures"][0]["temperature_gradient"]) < 1e-100
    assert data["temperatures"][-1]["logits_matching_cosine"] > 0.99
