"""Certified remainder bounds (derive.bounds), the radius statements and their checks.

Every bound is compared with the exact remainder, computed with mpmath at high precision from
the closed forms of L_KD = T^2 KL(p || q) and its gradient T(q - p), minus derive's symbolic
terms evaluated with mpmath: soundness (the bound always holds) and usefulness (how close it
is where the series converges fast). The default sweep is a few hundred cases over N = 2 to
1000 and T from just above the radius to 1e6; ``--run-slow`` adds thousands more.
"""

import json
import math
from functools import lru_cache

import mpmath
import numpy
import pytest
import torch
from quoted import agrees, document, table_row

import derive
from derive.bounds import (
    CertifiedExpansion,
    certified_bounds,
    circle_factor,
    radius_temperature,
    uniform_coefficient_bound,
    uniform_remainder_bound,
)
from derive.cli import main as derive_main
from derive.statements import STATEMENTS, radius
from verify.checks._common import CheckContext
from verify.checks.radius import (
    claimed_radius,
    half_plane_margins,
    run_radius_check,
    run_tight_check,
    tight_logits,
)
from verify.symbolic import evaluate_mpmath

# -- the exact remainders ------------------------------------------------------------------


@lru_cache(maxsize=None)
def _terms(quantity, order):
    return tuple(term.expr for term in derive.expand(quantity, order=order).terms)


def exact_remainders(student, teacher, temperatures, order, *, with_errors=False):
    """``[(|loss remainder|, ||gradient remainder||)]`` per temperature, with mpmath at enough
    digits that the remainder (down to T^-order of the leading size) is resolved; with
    ``with_errors``, ``[(loss, gradient, loss error, gradient error)]``, the errors bounding
    the reference's own rounding: 10**(5 - digits) times the size of what was summed (this
    matters only where the remainder is exactly 0, when z - v is constant)."""
    largest = max(max(temperatures), 1.0)
    digits = 30 + int((order + 2) * math.log10(largest)) + int(math.log10(len(student)))
    classes = len(student)
    results = []
    with mpmath.workdps(digits):
        z = [mpmath.mpf(x) for x in student]
        v = [mpmath.mpf(x) for x in teacher]
        rows_z = numpy.array([z], dtype=object)
        rows_v = numpy.array([v], dtype=object)
        # Substituting N first keeps 1/N exact (a Python int would make it a float).
        loss_terms = [
            evaluate_mpmath(term.xreplace({derive.N: classes}), rows_z, rows_v)[0, 0]
            for term in _terms("loss", order)
        ]
        gradient_terms = [
            numpy.broadcast_to(
                evaluate_mpmath(term.xreplace({derive.N: classes}), rows_z, rows_v), (1, classes)
            )[0]
            for term in _terms("gradient", order)
        ]
        for temperature in temperatures:
            t = mpmath.mpf(temperature)
            shift_z, shift_v = max(z), max(v)
            exp_z = [mpmath.exp((x - shift_z) / t) for x in z]
            exp_v = [mpmath.exp((x - shift_v) / t) for x in v]
            sum_z, sum_v = mpmath.fsum(exp_z), mpmath.fsum(exp_v)
            q = [e / sum_z for e in exp_z]
            p = [e / sum_v for e in exp_v]
            log_q = [(x - shift_z) / t - mpmath.log(sum_z) for x in z]
            log_p = [(x - shift_v) / t - mpmath.log(sum_v) for x in v]
            loss = t**2 * mpmath.fsum(pi * (lp - lq) for pi, lp, lq in zip(p, log_p, log_q))
            gradient = [t * (qi - pi) for qi, pi in zip(q, p)]
            for k in range(order):
                loss -= loss_terms[k] / t**k
                gradient = [g - c / t**k for g, c in zip(gradient, gradient_terms[k])]
            norm = mpmath.sqrt(mpmath.fsum(g * g for g in gradient))
            if not with_errors:
                results.append((float(abs(loss)), float(norm)))
                continue
            unit = mpmath.mpf(10) ** (5 - digits)
            loss_size = t**2 * mpmath.fsum(
                pi * (abs(lp) + abs(lq)) for pi, lp, lq in zip(p, log_p, log_q)
            ) + mpmath.fsum(abs(term) / t**k for k, term in enumerate(loss_terms))
            gradient_size = t * (mpmath.fsum(q) + mpmath.fsum(p)) + mpmath.fsum(
                abs(c) / t**k for k, term in enumerate(gradient_terms) for c in term
            )
            results.append(
                (
                    float(abs(loss)),
                    float(norm),
                    float(unit * loss_size),
                    float(unit * gradient_size),
                )
            )
    return results


def _random_cases(seed, count, *, max_classes=1000):
    """``count`` pairs of logit vectors with temperatures: N log-uniform in 2..max_classes,
    scales 0.1..10, Gaussian, peaked-teacher and two-valued logits; one temperature within
    10 % of the radius temperature, one within a factor 10, one up to 1e3 times it, one up to
    1e6."""
    generator = numpy.random.default_rng(seed)
    cases = []
    for index in range(count):
        classes = int(round(math.exp(generator.uniform(math.log(2), math.log(max_classes)))))
        scale = 10 ** generator.uniform(-1, 1)
        kind = index % 4
        student = generator.normal(size=classes) * scale
        teacher = generator.normal(size=classes) * scale
        if kind == 1:  # a confident teacher: one logit far above the others
            teacher[generator.integers(classes)] += 6 * scale
        elif kind == 2:  # two-valued logits, where the half-plane argument is tight
            student = scale * generator.integers(0, 2, size=classes).astype(float)
            teacher = scale * generator.integers(0, 2, size=classes).astype(float)
            if student.max() == student.min() and teacher.max() == teacher.min():
                student[0] += scale
        elif kind == 3:  # a student close to the teacher
            student = teacher + generator.normal(size=classes) * scale * 0.05
        radius = radius_temperature(student, teacher)
        temperatures = [
            radius * (1 + 10 ** generator.uniform(-3, -1)),
            radius * 10 ** generator.uniform(0.05, 1),
            radius * 10 ** generator.uniform(1, 3),
            10 ** generator.uniform(max(0.0, math.log10(radius) + 3), 6),
        ]
        cases.append(
            (student.tolist(), teacher.tolist(), temperatures, int(generator.integers(1, 4)))
        )
    return cases


def _sweep(cases):
    """``[(quantity, T/(R/pi), N, order, exact, bound)]`` for every case, temperature and
    quantity."""
    records = []
    for student, teacher, temperatures, order in cases:
        expansion = CertifiedExpansion(student, teacher)
        radius = expansion.radius_temperature
        exact = exact_remainders(student, teacher, temperatures, order, with_errors=True)
        for temperature, (loss, gradient, loss_error, gradient_error) in zip(temperatures, exact):
            for quantity, value, error in (
                ("loss", loss, loss_error),
                ("gradient", gradient, gradient_error),
            ):
                bound = expansion.remainder_bound(temperature, order, quantity=quantity)
                records.append(
                    (
                        quantity,
                        temperature / radius if radius else math.inf,
                        len(student),
                        order,
                        value,
                        bound,
                        error,
                    )
                )
    return records


def _assert_sound(records):
    for quantity, ratio, classes, order, exact, bound, error in records:
        assert bound is not None, (quantity, ratio, classes, order)
        assert exact <= bound + error, (quantity, ratio, classes, order, exact, bound, error)


def _factors(records, low, high=math.inf):
    # Only where the remainder is resolved far above the reference's rounding.
    return sorted(
        bound / exact
        for _, ratio, _, _, exact, bound, error in records
        if low <= ratio < high and exact > 1e6 * error
    )


@pytest.fixture(scope="module")
def default_sweep():
    return _sweep(_random_cases(seed=2024, count=25))


def test_bounds_hold_on_a_sweep_over_classes_and_temperatures(default_sweep):
    # 25 pairs (N from 2 to 1000) x 4 temperatures x (loss, gradient) = 200 cases.
    assert len(default_sweep) == 200
    assert max(record[2] for record in default_sweep) > 300
    _assert_sound(default_sweep)


def test_bounds_are_close_to_the_remainder_where_the_series_converges_fast(default_sweep):
    # At T >= 10 R/pi the Cauchy tail is negligible and the bound is the sum of the omitted
    # terms' moduli: the median case within 1 %, nine in ten within a factor 2 (the rest are
    # logits where the omitted terms happen to cancel).
    fast = _factors(default_sweep, 10.0)
    assert fast[0] >= 1.0
    assert fast[len(fast) // 2] <= 1.01
    assert fast[int(0.9 * len(fast))] <= 2.0
    # Within a factor 10 of the radius temperature the median stays within a factor 2.
    moderate = _factors(default_sweep, 1.1, 10.0)
    assert moderate[len(moderate) // 2] <= 2.0


def test_the_documented_usefulness_table_is_the_default_sweeps(default_sweep):
    page = document("docs/certified-bounds.md")
    for first_cell, low, high in (
        ("≥ 10", 10.0, math.inf),
        ("3 – 10", 3.0, 10.0),
        ("1.1 – 3", 1.1, 3.0),
        ("1.001 – 1.1", 1.001, 1.1),
    ):
        cases, median, ninety, worst = table_row(page, first_cell)
        factors = _factors(default_sweep, low, high)
        assert int(cases) == sum(low <= record[1] < high for record in default_sweep)
        assert len(factors) == int(cases), first_cell
        assert agrees(median, factors[len(factors) // 2]), (first_cell, factors)
        assert agrees(ninety, factors[int(0.9 * len(factors))]), (first_cell, factors)
        assert agrees(worst, factors[-1]), (first_cell, factors)


@pytest.mark.slow
def test_bounds_hold_on_thousands_of_cases():
    records = _sweep(_random_cases(seed=7, count=600))
    assert len(records) == 4800
    _assert_sound(records)


@pytest.mark.parametrize("classes", [2, 5, 50])
def test_ball_coefficients_are_derives_terms(classes):
    generator = numpy.random.default_rng(classes + 100)
    student = (generator.normal(size=classes) * 1.5).tolist()
    teacher = (generator.normal(size=classes) * 1.5).tolist()
    expansion = CertifiedExpansion(student, teacher)
    order = 4
    with mpmath.workdps(40):
        rows_z = numpy.array([[mpmath.mpf(x) for x in student]], dtype=object)
        rows_v = numpy.array([[mpmath.mpf(x) for x in teacher]], dtype=object)
        for k, (loss_ball, gradient_ball) in enumerate(
            zip(expansion.coefficients("loss", order), expansion.coefficients("gradient", order))
        ):
            loss = evaluate_mpmath(
                _terms("loss", order)[k].xreplace({derive.N: classes}), rows_z, rows_v
            )[0, 0]
            gradient = numpy.broadcast_to(
                evaluate_mpmath(
                    _terms("gradient", order)[k].xreplace({derive.N: classes}), rows_z, rows_v
                ),
                (1, classes),
            )[0]
            norm = mpmath.sqrt(mpmath.fsum(g * g for g in gradient))
            for ball, exact in ((loss_ball, loss), (gradient_ball, norm)):
                # The ball contains derive's term (to the 40 digits of the reference).
                assert abs(_ball_value(ball) - exact) <= float(ball.rad()) + 1e-35 * (
                    1 + abs(exact)
                )


# -- the radius ----------------------------------------------------------------------------


def test_no_bound_outside_the_radius_and_one_just_inside():
    expansion = CertifiedExpansion([0.0, 3.0, 1.0], [1.0, 0.0, 2.0])
    radius = expansion.radius_temperature
    assert radius == pytest.approx(3 / math.pi)
    assert expansion.remainder_bound(radius * (1 - 1e-9), 2) is None
    assert not expansion.converges(radius * (1 - 1e-12))
    inside = expansion.remainder_bound(radius * (1 + 1e-3), 2, quantity="gradient")
    assert inside is not None and math.isfinite(inside)


def test_the_radius_uses_the_larger_range_of_student_and_teacher_separately():
    # A common shift of one side changes nothing; the ranges are not pooled.
    shifted = CertifiedExpansion([100.0, 101.0], [0.0, 2.0])
    assert shifted.radius_temperature == pytest.approx(2 / math.pi)
    assert radius_temperature([0.0, 5.0, 1.0], [7.0, 7.5, 8.0]) == pytest.approx(5 / math.pi)
    assert shifted.remainder_bound(2 / math.pi * 1.01, 1) is not None


def test_two_class_radius_is_exact():
    # Uniform teacher: L_KD = T^2 log cosh(R/2T); its coefficients reach (R/pi)^k, so the terms
    # grow for T < R/pi (divergence) and shrink for T > R/pi.
    logit_range = 2
    expansion = CertifiedExpansion([0.0, logit_range], [0.0, 0.0])
    coefficients = expansion.coefficients("loss", 54)
    with mpmath.workdps(40):
        for k, ball in enumerate(coefficients):
            closed = sympy_value(radius.two_class_coefficient(k, sympy_rational(logit_range, 1)))
            assert abs(_ball_value(ball) - closed) <= 1e-25 * max(1, abs(closed))
    radius_t = logit_range / math.pi
    magnitudes = [abs(float(c.mid())) for c in coefficients]
    inside, outside = radius_t * 1.1, radius_t * 0.9
    assert magnitudes[52] * inside**-52 < magnitudes[20] * inside**-20
    assert magnitudes[52] * outside**-52 > 10 * magnitudes[20] * outside**-20
    assert expansion.remainder_bound(outside, 4) is None
    # Inside, the bound holds against the closed form.
    bound = expansion.remainder_bound(inside, 4)
    with mpmath.workdps(40):
        t = mpmath.mpf(inside)
        closed = t**2 * mpmath.log(mpmath.cosh(logit_range / (2 * t)))
        partial = sum(_ball_value(c) / t**k for k, c in enumerate(coefficients[:4]))
        assert float(abs(closed - partial)) <= bound


def sympy_value(expr):
    return mpmath.mpf(str(expr.evalf(40)))


def _ball_value(ball):
    """The midpoint of an arb ball, exactly, as an mpmath number."""
    mantissa, exponent = ball.mid().man_exp()
    return mpmath.ldexp(int(mantissa), int(exponent))


def test_half_plane_margin_vanishes_exactly_at_the_radius():
    # Two classes, uniform teacher: the centred sum is 2 cos(Im(eps) R/2), zero at eps = i pi/R.
    margin, tolerance = half_plane_margins([0.0, 2.0], [0.0, 0.0], math.pi / 2)
    assert 0 < margin <= math.cos(math.pi / 2 * (1 - 2**-10)) * (1 + 1e-9)
    margin, _ = half_plane_margins([0.0, 2.0], [0.0, 0.0], 1.1 * math.pi / 2)
    assert margin < -0.1


# -- uniform bounds ------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 3, 10, 100, 1000])
def test_uniform_bounds_hold_for_every_number_of_classes(classes):
    generator = numpy.random.default_rng(classes)
    logit_range = 2.0
    for _ in range(1 if classes > 100 else 3):
        student = generator.uniform(0, logit_range, size=classes)
        teacher = generator.uniform(0, logit_range, size=classes)
        student[:2] = (0.0, logit_range)  # range exactly R for the student
        expansion = CertifiedExpansion(student.tolist(), teacher.tolist())
        for k, ball in enumerate(expansion.coefficients("loss", 12)):
            assert abs(float(ball.mid())) <= uniform_coefficient_bound(k, logit_range)
        for k, ball in enumerate(expansion.coefficients("gradient", 12)):
            assert math.sqrt(classes) * float(ball.mid()) <= uniform_coefficient_bound(
                k, logit_range, quantity="gradient"
            )
        temperatures = [logit_range / math.pi * 1.5, 3.0, 100.0]
        for order in (1, 2):
            exact = exact_remainders(student.tolist(), teacher.tolist(), temperatures, order)
            for temperature, (loss, gradient) in zip(temperatures, exact):
                assert loss <= uniform_remainder_bound(logit_range, temperature, order)
                assert math.sqrt(classes) * gradient <= uniform_remainder_bound(
                    logit_range, temperature, order, quantity="gradient"
                )


def test_uniform_bounds_do_not_depend_on_the_number_of_classes_and_scale_with_the_range():
    # |L_0| = Var(z - v)/2 <= R^2/2: the majorant gives R^2 at x -> 0 (C(0) = 1).
    assert uniform_coefficient_bound(0, 1.0) == pytest.approx(1.0)
    assert uniform_coefficient_bound(3, 2.0) == pytest.approx(
        2.0**5 * uniform_coefficient_bound(3, 1.0)
    )
    assert uniform_remainder_bound(2.0, 20.0, 2) == pytest.approx(
        4.0 * uniform_remainder_bound(1.0, 10.0, 2)
    )
    assert uniform_remainder_bound(1.0, 1 / math.pi * 0.999, 1) is None
    assert circle_factor(math.pi) == math.inf


# -- the threshold temperature -------------------------------------------------------------


def test_threshold_temperature_is_certified_and_nearly_smallest():
    student, teacher = [0.3, -1.2, 2.0, 0.5], [1.0, -0.5, 1.5, -1.0]
    expansion = CertifiedExpansion(student, teacher)
    tolerance = 1e-2
    for index, quantity in enumerate(("loss", "gradient")):
        t0 = expansion.threshold_temperature(2, tolerance, quantity=quantity)
        assert t0 > expansion.radius_temperature
        # Certified: the exact relative remainder after two terms is at most tol from T0 on.
        temperatures = [t0, 2 * t0, 10 * t0]
        for temperature, remainders in zip(
            temperatures, exact_remainders(student, teacher, temperatures, 2)
        ):
            size = _exact_size(student, teacher, temperature, quantity)
            assert remainders[index] <= tolerance * size
        # Smallest, up to the bisection: 1 % below T0 the certificate fails.
        below = expansion.remainder_bound(t0 / 1.01, 2, quantity=quantity, circles=(0.5, 0.8, 0.95))
        first_below = expansion.remainder_bound(
            t0 / 1.01, 1, quantity=quantity, circles=(0.5, 0.8, 0.95)
        )
        leading = float(abs(expansion.coefficients(quantity, 1)[0].mid()))
        assert below / (leading - first_below) > tolerance


def _exact_size(student, teacher, temperature, quantity):
    with mpmath.workdps(30):
        t = mpmath.mpf(temperature)
        z = [mpmath.mpf(x) / t for x in student]
        v = [mpmath.mpf(x) / t for x in teacher]
        lz = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in z))
        lv = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in v))
        q = [mpmath.exp(x - lz) for x in z]
        p = [mpmath.exp(x - lv) for x in v]
        if quantity == "loss":
            return float(
                t**2 * mpmath.fsum(pi * ((a - lv) - (b - lz)) for pi, a, b in zip(p, v, z))
            )
        return float(t * mpmath.sqrt(mpmath.fsum((a - b) ** 2 for a, b in zip(q, p))))


# -- the statements ------------------------------------------------------------------------


@pytest.mark.parametrize("statement_id", ["convergence-radius", "radius-tight-two-classes"])
def test_radius_statements_hold(statement_id):
    result = STATEMENTS[statement_id].prove(order=6)
    assert result.verdict == "holds" and result.as_expected, str(result)


def test_a_wrong_radius_in_the_two_class_closed_form_is_refuted(monkeypatch):
    original = radius.two_class_coefficient
    monkeypatch.setattr(
        radius, "two_class_coefficient", lambda k, r: original(k, r * sympy_rational(11, 10))
    )
    result = STATEMENTS["radius-tight-two-classes"].prove(order=4)
    assert result.verdict == "refuted"
    assert any(name.startswith("L_2") for name, r in result.residuals.items() if r != 0)


def sympy_rational(p, q):
    import sympy

    return sympy.Rational(p, q)


def test_a_wrong_interpolation_path_is_refuted(monkeypatch):
    original = radius.interpolated_log_sum
    monkeypatch.setattr(radius, "interpolated_log_sum", lambda s: original(2 * s))
    result = STATEMENTS["convergence-radius"].prove(order=2)
    assert result.verdict == "refuted"


# -- the numeric checks and their negative controls ----------------------------------------


def _context(examples):
    return CheckContext.create(
        device="cpu", dtype=torch.float64, examples=examples, seed=0, search_examples=10
    )


def _too_large(student, teacher):
    return 1.1 * claimed_radius(student, teacher)


def _too_small(student, teacher):
    return claimed_radius(student, teacher) / 1.1


def test_tight_check_holds_and_catches_a_radius_ten_percent_off_either_way():
    assert run_tight_check("radius-tight-two-classes", _context(3)).verdict == "holds"
    for planted, word in ((_too_large, "inside"), (_too_small, "outside")):
        result = run_tight_check("radius-tight-two-classes", _context(3), radius_of=planted)
        assert result.verdict == "refuted" and not result.as_expected
        assert result.worst_error > result.tolerance
        assert word in result.counterexample
        assert "student [0.25, 0.5], teacher [0.25, 0.25]" in result.counterexample
    # docs/certified-bounds.md quotes the shrunk case.
    assert "`z = (0.25, 0.5)`, `v = (0.25, 0.25)`" in document("docs/certified-bounds.md")


def test_radius_check_catches_a_radius_ten_percent_too_large(monkeypatch):
    # The certified bounds are exercised by the sweep above; here only the half-plane part.
    import verify.checks.radius as checks

    monkeypatch.setattr(checks, "certified_remainders", lambda *args, **kwargs: [])
    assert run_radius_check("convergence-radius", _context(4)).verdict == "holds"
    result = run_radius_check("convergence-radius", _context(4), radius_of=_too_large)
    assert result.verdict == "refuted"
    assert "relative real part -0.155" in result.counterexample
    # docs/certified-bounds.md quotes it.
    assert "relative real part −0.155" in document("docs/certified-bounds.md")
    assert any(len(pair[0]) == 2 for pair in tight_logits(1.0))


def test_certified_remainders_flag_a_bound_that_is_too_small(monkeypatch):
    from derive import bounds

    original = bounds.CertifiedExpansion.remainder_bound

    def shrunk(self, temperature, order, **options):
        value = original(self, temperature, order, **options)
        return None if value is None else value / 10

    import verify.checks.radius as checks

    student, teacher = [0.0, 1.5, -0.5], [0.5, 0.0, 1.0]
    honest = checks.certified_remainders(
        student, teacher, claimed_radius(student, teacher), orders=(1,)
    )
    assert all(error <= tolerance for _, error, tolerance in honest)
    monkeypatch.setattr(bounds.CertifiedExpansion, "remainder_bound", shrunk)
    planted = checks.certified_remainders(
        student, teacher, claimed_radius(student, teacher), orders=(1,)
    )
    assert any(error > tolerance for _, error, tolerance in planted)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def logit_files(tmp_path):
    generator = numpy.random.default_rng(0)
    teacher = generator.normal(size=(3, 5)) * 2
    student = teacher + generator.normal(size=(3, 5))
    numpy.save(tmp_path / "teacher.npy", teacher)
    numpy.save(tmp_path / "student.npy", student)
    return tmp_path, student, teacher


def test_bound_json_matches_the_python_api(logit_files, capsys):
    directory, student, teacher = logit_files
    code = derive_main(
        [
            "bound",
            "--teacher",
            str(directory / "teacher.npy"),
            "--student",
            str(directory / "student.npy"),
            "--temperature",
            "4",
            "--order",
            "2",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["temperature"] == 4.0 and data["order"] == 2 and len(data["examples"]) == 3
    expected = certified_bounds(student.tolist(), teacher.tolist(), 4.0, 2)
    assert data["examples"] == [r.to_json() for r in expected]
    assert set(data["examples"][0]) == {
        "radius_temperature",
        "converges",
        "loss_remainder_bound",
        "gradient_remainder_bound",
    }


def test_bound_is_null_outside_the_radius(logit_files, capsys):
    directory, student, teacher = logit_files
    code = derive_main(
        [
            "bound",
            "--teacher",
            str(directory / "teacher.npy"),
            "--student",
            str(directory / "student.npy"),
            "--temperature",
            "0.5",
            "--order",
            "1",
            "--json",
        ]
    )
    examples = json.loads(capsys.readouterr().out)["examples"]
    assert code == 0
    for example in examples:
        assert example["converges"] is (0.5 > example["radius_temperature"])
        if not example["converges"]:
            assert example["loss_remainder_bound"] is None
            assert example["gradient_remainder_bound"] is None


def _write(path, kind):
    if kind == "text":
        path.write_text("not an array")
    elif kind == "one-dimensional":
        numpy.save(path, numpy.zeros(4))
    elif kind == "one class":
        numpy.save(path, numpy.zeros((2, 1)))
    elif kind == "nan":
        numpy.save(path, numpy.array([[0.0, numpy.nan]]))
    elif kind == "strings":
        numpy.save(path, numpy.array([["a", "b"]]))
    elif kind == "npz":
        with open(path, "wb") as stream:  # numpy.savez(path) would append ".npz"
            numpy.savez(stream, a=numpy.zeros((2, 2)))


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("text", "is not a .npy file"),
        ("one-dimensional", "must have shape [B, N]"),
        ("one class", "N >= 2 classes"),
        ("nan", "must be finite"),
        ("strings", "must hold real numbers"),
        ("npz", "is not a .npy file"),
        ("missing", "no such file"),
        ("shape", "same shape"),
    ],
)
def test_bad_files_are_one_line_errors(logit_files, capsys, kind, fragment):
    directory, _, _ = logit_files
    bad = directory / "bad.npy"
    if kind == "shape":
        numpy.save(bad, numpy.zeros((2, 5)))
    elif kind != "missing":
        _write(bad, kind)
    code = derive_main(
        [
            "bound",
            "--teacher",
            str(bad),
            "--student",
            str(directory / "student.npy"),
            "--temperature",
            "4",
            "--order",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and fragment in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "option, value",
    [
        ("--temperature", "0"),
        ("--temperature", "-1"),
        ("--temperature", "nan"),
        ("--temperature", "inf"),
        ("--order", "0"),
        ("--order", "31"),
    ],
)
def test_bad_numbers_are_one_line_errors(logit_files, capsys, option, value):
    directory, _, _ = logit_files
    arguments = {"--temperature": "4", "--order": "2"}
    arguments[option] = value
    code = derive_main(
        [
            "bound",
            "--teacher",
            str(directory / "teacher.npy"),
            "--student",
            str(directory / "student.npy"),
            "--temperature",
            arguments["--temperature"],
            "--order",
            arguments["--order"],
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and value in captured.err


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: CertifiedExpansion([0.0], [0.0]), "at least 2 classes"),
        (lambda: CertifiedExpansion([0.0, 1.0], [0.0, 1.0, 2.0]), "one length"),
        (lambda: CertifiedExpansion([0.0, math.inf], [0.0, 1.0]), "finite"),
        (lambda: CertifiedExpansion([0.0, 1.0], [0.0, 1.0]).remainder_bound(0.0, 1), "temperature"),
        (lambda: CertifiedExpansion([0.0, 1.0], [0.0, 1.0]).remainder_bound(1.0, 0), "order"),
        (
            lambda: CertifiedExpansion([0.0, 1.0], [0.0, 1.0]).remainder_bound(
                1.0, 1, quantity="x"
            ),
            "quantity",
        ),
        (lambda: CertifiedExpansion([0.0, 1.0], [0.0, 1.0]).circle_maximum("loss", 4.0), "rho"),
        (
            lambda: CertifiedExpansion([0.0, 1.0], [1.0, 0.0]).threshold_temperature(1, 2.0),
            "tolerance",
        ),
    ],
)
def test_bad_arguments_raise_derive_errors(call, fragment):
    with pytest.raises(derive.DeriveError, match=fragment):
        call()


def test_constant_logits_and_equal_student_and_teacher():
    constant = CertifiedExpansion([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert constant.radius_temperature == 0.0 and constant.remainder_bound(1e-3, 1) == 0.0
    # z - v constant: L_KD is 0 for every T; the bound is at round-off level.
    same = CertifiedExpansion([0.0, 1.0, 3.0], [5.0, 6.0, 8.0])
    assert same.remainder_bound(10.0, 1) < 1e-30
    assert same.threshold_temperature(1, 0.1) is None


def test_the_inlined_remainder_minimum_is_the_generic_one_bit_for_bit():
    # uniform_remainder_bound evaluates its grid with the majorant inlined (the monitor calls
    # it at every step); it must be the generic _minimize_over_circles of the same function.
    from derive import bounds

    def generic(t, order, quantity, points=400):
        def bound(x):
            ratio = t / x
            return bounds._uniform_majorant(x, quantity) * ratio**order / (1 - ratio)

        return bounds._minimize_over_circles(bound, t, points=points)

    grid = [1e-9, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 3.14] + [math.pi * k / 97 for k in range(1, 97)]
    for t in grid:
        for quantity in ("loss", "gradient"):
            for order in (1, 2, 3):
                assert bounds._remainder_shape(t, order, quantity) == generic(t, order, quantity)
    # Negative control: another grid gives other values, which the comparison sees.
    assert any(bounds._remainder_shape(t, 1, "loss") != generic(t, 1, "loss", 401) for t in grid)
