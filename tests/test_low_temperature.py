"""The low-temperature end: the engine against sympy, the stated limits against 50-digit
mpmath, the CLI, and the numeric checks with their negative controls."""

import json
import math
import os
import random

import forkrun
import mpmath
import pytest
import sympy

import derive
from derive.lowtemp import LOW_TEMPERATURE, closed_form_residuals, limit, transseries, tropical

DIGITS = 50


def _log_softmax(values, temperature):
    scaled = [x / temperature for x in values]
    top = max(scaled)
    total = mpmath.fsum(mpmath.exp(x - top) for x in scaled)
    return [x - top - mpmath.log(total) for x in scaled]


def _exact(objective, student, teacher, temperature):
    """(loss, gradient) of kl or reverse-kl at 50 digits."""
    log_q, log_p = _log_softmax(student, temperature), _log_softmax(teacher, temperature)
    q, p = [mpmath.exp(x) for x in log_q], [mpmath.exp(x) for x in log_p]
    if objective == "kl":
        loss = temperature**2 * mpmath.fsum(b * (lb - la) for b, lb, la in zip(p, log_p, log_q))
        gradient = [temperature * (a - b) for a, b in zip(q, p)]
    else:
        divergence = mpmath.fsum(a * (la - lb) for a, la, lb in zip(q, log_q, log_p))
        loss = temperature**2 * divergence
        gradient = [temperature * a * (la - lb - divergence) for a, la, lb in zip(q, log_q, log_p)]
    return loss, gradient


def _draw(rng, classes, ties):
    values = [mpmath.mpf(rng.gauss(0, 1)) for _ in range(classes)]
    if ties and classes > 2:
        top = max(values)
        values[(values.index(top) + 1) % classes] = top
    return values


def _bound(objective, quantity, student, teacher, temperature):
    """The error bound: exponential in the margins, plus T log|A| + T log|B| with ties."""
    classes = len(student)
    margins = [m for m in (tropical.margin(student), tropical.margin(teacher)) if m is not None]
    gap = min(margins) if margins else mpmath.inf
    spread = (max(student) - min(student)) + (max(teacher) - min(teacher))
    # |T LSE(x/T) - max x| and |p - u_B|_1 are at most (N - 1) e^{-margin/T} (twice for the
    # latter); the loss also weighs the teacher's deviation by the spreads.
    weight = (2 * temperature + spread) if quantity == "loss" else 4
    exponential = 2 * (classes - 1) * mpmath.exp(-gap / temperature) * weight
    ties = temperature * (
        mpmath.log(len(tropical.argmax_set(student)))
        + mpmath.log(len(tropical.argmax_set(teacher)))
    )
    # 50-digit round-off of values of size 1, divided by T^power (power <= 1 here).
    roundoff = mpmath.mpf(10) ** (5 - DIGITS) / temperature
    return exponential + (ties if quantity == "loss" else 0) + roundoff


@pytest.mark.parametrize("objective", ["kl", "reverse-kl"])
def test_limits_agree_with_mpmath(objective):
    rng = random.Random(21)
    worst = 0
    with mpmath.workdps(DIGITS):
        for classes in (2, 3, 7, 20, 50):
            for ties in (False, True):
                student, teacher = _draw(rng, classes, ties), _draw(rng, classes, not ties)
                for temperature in (mpmath.mpf("1e-3"), mpmath.mpf("1e-2"), mpmath.mpf("1e-1")):
                    loss, gradient = _exact(objective, student, teacher, temperature)
                    for quantity, value in (("loss", loss), ("gradient", gradient)):
                        form = LOW_TEMPERATURE[objective][quantity]
                        if any(
                            len(tropical.argmax_set(x)) > 1
                            for x in {"student": student, "teacher": teacher}.values()
                            if False
                        ):
                            continue
                        if quantity == "gradient" and objective == "reverse-kl":
                            unique = len(tropical.argmax_set(student)) == 1
                            assert unique or ties
                        limit_value = (
                            [
                                form.value(student, teacher, {}, c, mpmath.log)
                                for c in range(classes)
                            ]
                            if quantity == "gradient"
                            else form.value(student, teacher, {}, 0, mpmath.log)
                        )
                        scaled = (
                            [x / temperature**form.power for x in value]
                            if quantity == "gradient"
                            else value / temperature**form.power
                        )
                        error = (
                            mpmath.fsum(abs(a - b) for a, b in zip(scaled, limit_value))
                            if quantity == "gradient"
                            else abs(scaled - limit_value)
                        )
                        bound = _bound(objective, quantity, student, teacher, temperature)
                        if objective == "reverse-kl" and quantity == "gradient":
                            bound *= 1 + (max(teacher) - min(teacher)) / temperature
                        assert error <= bound, (objective, quantity, classes, ties, temperature)
                        worst = max(worst, float(error / bound))
    assert worst > 0


def test_planted_wrong_limit_fails_the_mpmath_bound():
    with mpmath.workdps(DIGITS):
        student, teacher = (
            [mpmath.mpf(x) for x in (0, -1, -2)],
            [mpmath.mpf(x) for x in (-1, 0, -3)],
        )
        temperature = mpmath.mpf("1e-2")
        loss, _ = _exact("kl", student, teacher, temperature)
        planted = tropical.perceptron_loss(student, student)  # the student's own label: 0
        assert abs(loss / temperature - planted) > _bound(
            "kl", "loss", student, teacher, temperature
        )


def test_engine_agrees_with_sympy_series_for_two_classes():
    # N = 2: T^2 KL at z = (0, -1), v = (-1, 0) is T (1 - ...) with u = e^{-1/T}.
    series = transseries("kl", "loss", [0, -1], [-1, 0])
    T = sympy.Symbol("T", positive=True)
    u = sympy.Symbol("u", positive=True)
    exact = T**2 * (
        (1 / (1 + u)) * (sympy.log(1 / (1 + u)) - sympy.log(u / (1 + u)))
        + (u / (1 + u)) * (sympy.log(u / (1 + u)) - sympy.log(1 / (1 + u)))
    )
    expected = sympy.series(exact.subs(sympy.log(u), -1 / T), u, 0, 3).removeO()
    expected = sympy.expand(sympy.expand_log(expected, force=True).subs(sympy.log(u), -1 / T))
    ours = sum(c * u**g for g, c in series.terms.items() if g < 3)
    assert sympy.expand(expected - ours) == 0


@pytest.mark.parametrize("objective", list(derive.OBJECTIVES))
@pytest.mark.parametrize("quantity", ["loss", "gradient"])
@pytest.mark.parametrize("temperature", ["0", "inf"])
def test_limit_answers_for_every_objective(objective, quantity, temperature):
    result = limit(objective, temperature=temperature, quantity=quantity)
    payload = result.to_json()
    assert payload["temperature"] == temperature
    assert payload["exists"] == (payload["reason"] is None)
    assert (payload["limit"] is not None) == payload["exists"]


def test_closed_form_residuals_catch_a_planted_error():
    residuals = closed_form_residuals("kl", "loss", [0, -1, -2], [-1, 0, -3])
    assert set(residuals.values()) == {0}
    residuals = closed_form_residuals("kl", "loss", [0, -1, -2], [-1, 0, -3])
    original = LOW_TEMPERATURE["kl"]["loss"]
    from dataclasses import replace

    LOW_TEMPERATURE["kl"]["loss"] = replace(original, value=lambda z, v, p, c, log: 0)
    try:
        planted = closed_form_residuals("kl", "loss", [0, -1, -2], [-1, 0, -3])
    finally:
        LOW_TEMPERATURE["kl"]["loss"] = original
    assert any(value != 0 for value in planted.values())


def _cli(*arguments):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return forkrun.run(
        ["-m", "derive", "limit", *arguments],
        capture_output=True,
        text=True,
        env=env,
    )


def test_cli_json_and_bad_input():
    done = _cli("--temperature", "0", "--objective", "kl", "--quantity", "gradient", "--json")
    assert done.returncode == 0
    payload = json.loads(done.stdout)
    assert payload["power"] == 1 and payload["exists"] is True
    for bad in (
        ["--temperature", "1", "--objective", "kl"],
        ["--temperature", "0", "--objective", "nope"],
    ):
        done = _cli(*bad)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr


def test_numeric_checks_and_refutation():
    from verify.checks import CHECKS

    for statement_id in (
        "low-temperature-perceptron",
        "low-temperature-reverse-silent/perceptron-swapped",
    ):
        result = CHECKS[statement_id](examples=4)
        assert result.as_expected, result.describe()


def test_slope_fit_rejects_a_planted_gap():
    from verify.checks.low_temperature import measure_rate

    temperatures = [1 / x for x in range(8, 41, 4)]
    errors = [math.exp(-1.0 / t) for t in temperatures]
    slope, points, _, top = measure_rate(temperatures, errors, [1e-30] * len(errors))
    assert points == len(temperatures) and abs(slope + 1.0) < 1e-9
    assert abs(slope + 1.5) > 2 * top


def test_the_perceptron_check_catches_a_planted_wrong_limit(monkeypatch):
    from dataclasses import replace

    from verify.checks import CHECKS

    form = LOW_TEMPERATURE["kl"]["gradient"]
    # The update towards the student's own argmax: 0, so the distance does not decay.
    planted = replace(form, value=lambda z, v, p, c, log: 0)
    monkeypatch.setitem(LOW_TEMPERATURE["kl"], "gradient", planted)
    result = CHECKS["low-temperature-perceptron"](examples=4)
    assert result.verdict == "refuted"


def _members(p, q, name, parameter):
    """T-free divergences of the probability vectors p (teacher), q (student), at 50 digits."""

    def kl(a, b):
        return mpmath.fsum(x * (mpmath.log(x) - mpmath.log(y)) for x, y in zip(a, b) if x > 0)

    if name in ("js", "jsd"):
        beta = mpmath.mpf(1) / 2 if name == "js" else parameter
        m = [beta * x + (1 - beta) * y for x, y in zip(p, q)]
        return beta * kl(p, m) + (1 - beta) * kl(q, m)
    if name == "skew-kl":
        return kl(p, [parameter * x + (1 - parameter) * y for x, y in zip(p, q)])
    if name == "skew-reverse-kl":
        return kl(q, [(1 - parameter) * x + parameter * y for x, y in zip(p, q)])
    alpha = parameter
    total = mpmath.fsum(x**alpha * y ** (1 - alpha) for x, y in zip(p, q))
    return (total - 1) / (alpha * (alpha - 1))


@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("js", None),
        ("jsd", "3/10"),
        ("skew-kl", "1/5"),
        ("skew-reverse-kl", "1/3"),
        ("alpha-divergence", "1/2"),
    ],
)
def test_f_divergence_limits_agree_with_mpmath(name, parameter):
    rng = random.Random(7)
    form = LOW_TEMPERATURE[name]["loss"]
    key = {"jsd": "beta"}.get(name, "alpha")
    with mpmath.workdps(DIGITS):
        value = mpmath.mpf(sympy.Rational(parameter)) if parameter else None
        for classes in (2, 3, 10, 50):
            for _ in range(3):
                student, teacher = _draw(rng, classes, False), _draw(rng, classes, False)
                while min(tropical.margin(student), tropical.margin(teacher)) < 0.5:
                    # Margins of at least 0.5 make the bound below tight enough to fail a
                    # wrong limit at both temperatures.
                    student, teacher = _draw(rng, classes, False), _draw(rng, classes, False)
                gap = min(tropical.margin(student), tropical.margin(teacher))
                limit_value = form.value(
                    student, teacher, {key: value} if value else {}, 0, mpmath.log
                )
                # Amari's rate is halved at alpha = 1/2: its larger temperature is lower.
                top = "3e-3" if name == "alpha-divergence" else "1e-2"
                for temperature in (mpmath.mpf("1e-3"), mpmath.mpf(top)):
                    q = [mpmath.exp(x) for x in _log_softmax(student, temperature)]
                    p = [mpmath.exp(x) for x in _log_softmax(teacher, temperature)]
                    loss = temperature**2 * _members(p, q, name, value)
                    error = abs(loss / temperature**2 - limit_value)
                    # Corrections are P(1/T) e^{-g/T}, g >= min(alpha, 1 - alpha) gap: bounded
                    # here by a polynomial of degree 2 in 1/T with N^2 terms, loosely.
                    rate = gap * (min(value, 1 - value) if name == "alpha-divergence" else 1)
                    bound = (
                        classes**2 * (1 + 10 / temperature) ** 2 * mpmath.exp(-rate / temperature)
                        + mpmath.mpf(10) ** (5 - DIGITS) / temperature**2
                    )
                    assert error <= bound, (name, classes, temperature, error, bound)
                    assert bound < mpmath.mpf("1e-6")  # so that a wrong limit would fail
