"""The audit's fitting code (verify/audit/fitting.py) on planted gradients whose answers are
known exactly: pure power laws, planted residuals orthogonal to the fitted columns (so the fit is
unchanged and the residual is the planted one), and near-threshold violations just above and just
below each tolerance. tests/test_audit_units.py checks the cap on the extrapolation's tolerance on
a wobbling series; the audit's end-to-end tests (tests/test_audit.py) run these fits on real
losses."""

import math

import numpy
import pytest
import torch

from verify.audit.fitting import (
    extrapolate,
    ignores_temperature,
    power_law,
    shift_invariance,
    tensor_temperature,
)
from verify.audit.probing import MODERATE_TEMPERATURES

EPS64 = 2.0**-52
GRID = (100.0, 300.0, 1000.0, 3000.0, 10000.0)
REFERENCE = torch.tensor([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0]], dtype=torch.float64)
# Orthogonal to REFERENCE (as a flattened vector).
PERPENDICULAR = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)


class Rounding:
    """A rounding model with one fixed bound per row."""

    def __init__(self, tolerance):
        self.tolerance = tolerance

    def row_tolerance(self, gradient, temperature):
        return torch.full(gradient.shape[:-1], self.tolerance, dtype=torch.float64)


def stack(function, temperatures=GRID):
    return torch.stack([function(t) for t in temperatures])


def orthogonal_noise(temperatures, columns):
    """A unit vector over the temperatures orthogonal to ``columns`` (functions of T)."""
    design = numpy.array([[c(t) for c in columns] for t in temperatures])
    vector = numpy.cos(numpy.arange(len(temperatures)) * 2.1) + 0.3
    vector = vector - design @ numpy.linalg.lstsq(design, vector, rcond=None)[0]
    return torch.tensor(vector / numpy.linalg.norm(vector), dtype=torch.float64)


# -- shift_invariance ---------------------------------------------------------------------------


def with_sums(sums):
    """Rows ``[R, 2]`` whose class sums are ``sums``."""
    sums = torch.tensor(sums, dtype=torch.float64)
    return torch.stack([sums + 3.0, torch.full_like(sums, -3.0)], dim=1)


@pytest.mark.parametrize("factor, invariant", [(0.98, True), (1.02, False)])
def test_a_class_sum_just_above_its_bound_is_not_invariant(factor, invariant):
    tolerance = 1e-10
    gradients = torch.stack(
        [
            with_sums([0.0, 0.5 * tolerance]),
            with_sums([factor * tolerance, 0.0]),
            with_sums([0.0, 0.0]),
        ]
    )
    worst = shift_invariance(gradients, (10.0, 20.0, 30.0), Rounding(tolerance))
    assert worst["invariant"] is invariant
    assert worst["temperature"] == 20.0
    assert worst["ratio"] == pytest.approx(factor, rel=1e-5)
    assert worst["error"] == pytest.approx(factor * tolerance, rel=1e-5)
    assert worst["tolerance"] == tolerance


def test_exact_zero_sums_are_invariant_at_the_first_temperature():
    gradients = torch.stack([with_sums([0.0, 0.0])] * 2)
    worst = shift_invariance(gradients, (5.0, 6.0), Rounding(1e-12))
    assert worst == {
        "ratio": 0.0,
        "error": 0.0,
        "tolerance": 1e-12,
        "temperature": 5.0,
        "invariant": True,
    }


# -- power_law ----------------------------------------------------------------------------------


@pytest.mark.parametrize("exponent", [-1.0, -2.0, 0.5, 0.0, 1.0])
def test_a_pure_power_law_has_its_exponent(exponent):
    gradients = stack(lambda t: 3.0 * t**exponent * REFERENCE * (1 + 2 / t - 5 / t**2))
    fit = power_law(gradients, GRID, REFERENCE)
    assert fit["power_law"] is True
    assert fit["exponent"] == exponent and fit["used"] == exponent
    # log(1 + 2/T - 5/T**2) is not exactly quadratic in 1/T: the third order remains.
    assert fit["exponent_fit"] == pytest.approx(exponent, abs=1e-6)
    assert fit["fit_residual"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "offset, is_power_law", [(0.098, True), (0.102, False), (-0.098, True), (-0.102, False)]
)
def test_an_exponent_just_off_a_half_integer(offset, is_power_law):
    exponent = -1.0 + offset
    fit = power_law(stack(lambda t: t**exponent * REFERENCE), GRID, REFERENCE)
    assert fit["power_law"] is is_power_law
    if is_power_law:
        assert fit["exponent"] == -1.0 and fit["used"] == -1.0
    else:
        assert fit["exponent"] == round(exponent, 3)
        assert fit["used"] == pytest.approx(exponent, abs=1e-9)
    assert fit["exponent_fit"] == pytest.approx(exponent, abs=1e-9)


@pytest.mark.parametrize("factor, is_power_law", [(0.98, True), (1.02, False)])
def test_a_residual_just_above_the_slope_tolerance_is_not_a_power_law(factor, is_power_law):
    lowest = GRID[0]
    noise = orthogonal_noise(
        GRID, [lambda t: 1.0, math.log, lambda t: lowest / t, lambda t: (lowest / t) ** 2]
    )
    logs = torch.tensor(GRID, dtype=torch.float64).log()
    # rms of the noise vector (unit norm) is 1/sqrt(K); aim at factor * 0.1 * std(log T).
    size = factor * 0.1 * float(logs.std()) * math.sqrt(len(GRID))
    sizes = torch.exp(-logs + size * noise)
    gradients = sizes[:, None, None] * REFERENCE
    fit = power_law(gradients, GRID, REFERENCE)
    assert fit["fit_residual"] == pytest.approx(size / math.sqrt(len(GRID)), rel=1e-6)
    assert fit["exponent_fit"] == pytest.approx(-1.0, abs=1e-9)
    assert fit["power_law"] is is_power_law


def test_a_gradient_orthogonal_to_the_limit_is_fitted_by_its_norm():
    fit = power_law(stack(lambda t: PERPENDICULAR / t), GRID, REFERENCE)
    assert fit["power_law"] and fit["exponent"] == -1.0


@pytest.mark.parametrize(
    "largest_cosine, sign, exponent",
    [
        (0.2, 1, -2.0),  # every |cos| above 1e-3: the projection, T**-2, is fitted
        (0.2, -1, -2.0),  # the same with the projection negative
        (0.05, 1, -1.0),  # |cos| below 1e-3 at the top: the norm, about T**-1
    ],
)
def test_the_projection_carries_the_slope_only_above_the_direction_floor(
    largest_cosine, sign, exponent
):
    # g(T) = P/T + k G/T**2: cos(g, G) falls like 1/T, from largest_cosine at the lowest T.
    lowest = GRID[0]
    ratio = PERPENDICULAR.norm() / REFERENCE.norm()
    k = largest_cosine * lowest * ratio
    fit = power_law(
        stack(lambda t: PERPENDICULAR / t + sign * k * REFERENCE / t**2), GRID, REFERENCE
    )
    assert fit["exponent_fit"] == pytest.approx(exponent, abs=0.02)


def test_a_gradient_that_vanishes_somewhere_is_no_power_law():
    gradients = stack(lambda t: REFERENCE / t if t != 1000.0 else 0 * REFERENCE)
    fit = power_law(gradients, GRID, REFERENCE)
    assert fit == {
        "exponent": None,
        "power_law": False,
        "exponent_fit": None,
        "fit_residual": None,
        "used": 0.0,
    }


# -- extrapolate --------------------------------------------------------------------------------

H1 = torch.tensor([[0.3, 0.1, -0.4], [1.0, -2.0, 1.0]], dtype=torch.float64)
H2 = torch.tensor([[-1.0, 0.0, 1.0], [0.2, 0.2, -0.4]], dtype=torch.float64)


def series(limit, exponent, noise=None):
    lowest = GRID[0]

    def at(k, t):
        value = t**exponent * (limit + H1 * lowest / t + H2 * (lowest / t) ** 2)
        if noise is not None:
            value = value + t**exponent * noise[k]
        return value

    return torch.stack([at(k, t) for k, t in enumerate(GRID)])


def test_an_exact_series_extrapolates_to_its_limit():
    uncentred = REFERENCE + PERPENDICULAR
    result = extrapolate(
        series(2.0 * REFERENCE, -1.0),
        GRID,
        -1.0,
        REFERENCE,
        uncentred,
        logit_scale=5.0,
        dtype=torch.float64,
    )
    truncation = (5.0 / GRID[0]) ** 3
    assert result["scale"] == pytest.approx(2.0, rel=1e-9)
    assert result["cosine"] == pytest.approx(1.0, rel=1e-9)
    expected = float((REFERENCE * uncentred).sum() / (REFERENCE.norm() * uncentred.norm()))
    assert result["uncentred_cosine"] == pytest.approx(expected, rel=1e-9)
    assert result["residual"] == pytest.approx(0.0, abs=1e-12)
    assert result["scale_tolerance"] == pytest.approx(truncation, rel=1e-6)
    assert result["cap"] == pytest.approx(truncation + 10 * (truncation + EPS64**0.5), rel=1e-12)
    assert result["established"] is True


def test_cosines_of_a_limit_off_the_reference():
    limit = REFERENCE + 2.0 * PERPENDICULAR
    result = extrapolate(
        series(limit, 0.5),
        GRID,
        0.5,
        REFERENCE,
        PERPENDICULAR,
        logit_scale=1.0,
        dtype=torch.float32,
    )
    expected = float(REFERENCE.norm() / limit.norm())
    assert result["cosine"] == pytest.approx(expected, rel=1e-9)
    assert result["uncentred_cosine"] == pytest.approx(
        float(2.0 * PERPENDICULAR.norm() / limit.norm()), rel=1e-9
    )
    assert result["scale"] == pytest.approx(1.0, rel=1e-9)
    truncation = (1.0 / GRID[0]) ** 3
    assert result["cap"] == pytest.approx(truncation + 10 * (truncation + 2.0**-11.5), rel=1e-9)


def test_a_vanishing_limit_is_not_established():
    zero = torch.zeros_like(REFERENCE)
    result = extrapolate(
        series(zero, 0.0) * 0, GRID, 0.0, REFERENCE, REFERENCE, logit_scale=1.0, dtype=torch.float64
    )
    assert result["cosine"] is None and result["uncentred_cosine"] is None
    assert result["residual"] == math.inf and result["established"] is False
    assert result["scale_tolerance"] == result["cap"] and result["scale"] == 0.0
    no_direction = extrapolate(
        series(REFERENCE, 0.0), GRID, 0.0, REFERENCE, zero, logit_scale=1.0, dtype=torch.float64
    )
    assert no_direction["uncentred_cosine"] is None and no_direction["cosine"] is not None


@pytest.mark.parametrize("factor, established", [(0.98, True), (1.02, False)])
def test_a_residual_just_above_the_cap_is_not_established(factor, established):
    lowest, logit_scale = GRID[0], 8.0
    truncation = (logit_scale / lowest) ** 3
    cap = truncation + 10 * (truncation + EPS64**0.5)
    target = factor * (cap - truncation) / 10  # the residual rho aimed at
    unit = orthogonal_noise(
        GRID, [lambda t: 1.0, lambda t: lowest / t, lambda t: (lowest / t) ** 2]
    )
    direction = PERPENDICULAR / PERPENDICULAR.norm()
    # rms over T of |noise_T| relative to |limit| = |unit| |direction| / sqrt(K) / |limit|
    limit = 3.0 * REFERENCE
    size = target * math.sqrt(len(GRID)) * float(limit.norm())
    noise = size * unit[:, None, None] * direction
    result = extrapolate(
        series(limit, -1.0, noise),
        GRID,
        -1.0,
        REFERENCE,
        REFERENCE,
        logit_scale=logit_scale,
        dtype=torch.float64,
    )
    assert result["residual"] == pytest.approx(target, rel=1e-6)
    assert result["scale"] == pytest.approx(3.0, rel=1e-9)
    assert result["established"] is established
    assert result["scale_tolerance"] == pytest.approx(min(truncation + 10 * target, cap), rel=1e-6)


# -- ignores_temperature and tensor_temperature ---------------------------------------------------


@pytest.mark.parametrize("factor, ignores", [(0.98, True), (1.02, False)])
def test_a_change_just_above_the_two_bounds_depends_on_temperature(factor, ignores):
    tolerance = 1e-9
    temperatures = (100.0, 1000.0) + MODERATE_TEMPERATURES
    base = REFERENCE.clone()
    changed = base.clone()
    changed[1, 0] += factor * 2 * tolerance  # the bounds of both gradients add up
    gradients = torch.stack([base, changed, base, base])
    assert ignores_temperature(gradients, temperatures, Rounding(tolerance)) is ignores
    # The reference is the first moderate temperature's gradient, not the first one.
    shifted = torch.stack([changed, changed, changed, changed])
    assert ignores_temperature(shifted, temperatures, Rounding(tolerance)) is True
    # One of the moderate temperatures that differs from the other is seen too.
    late = torch.stack([base, base, base, changed])
    assert ignores_temperature(late, temperatures, Rounding(tolerance)) is ignores


class Probe:
    def __init__(self, function):
        self.function = function

    def tensor_gradient(self, temperature):
        return self.function(temperature)


def rows(gradient):
    return gradient


def test_tensor_temperature_paths():
    temperatures = (10.0, 100.0, 1000.0)
    references = [REFERENCE / t for t in temperatures]
    rounding = Rounding(1e-12)
    same = tensor_temperature(
        Probe(lambda t: REFERENCE / t), references, temperatures, rounding, rows
    )
    assert same == ("same", None, None)
    assert tensor_temperature(Probe(lambda t: None), references, temperatures, rounding, rows) == (
        "unsupported",
        None,
        None,
    )
    # Multiplied by T**2 once the tensor path is taken: exponent 2 at the first temperature.
    assert tensor_temperature(
        Probe(lambda t: REFERENCE * t), references, temperatures, rounding, rows
    ) == ("differs", 10.0, 2.0)
    assert tensor_temperature(
        Probe(lambda t: -REFERENCE / t), references, temperatures, rounding, rows
    ) == ("differs", 10.0, None)
    assert tensor_temperature(
        Probe(lambda t: 0 * REFERENCE), references, temperatures, rounding, rows
    ) == ("differs", 10.0, None)
    # Agreeing at the first temperature, differing by a factor 2 (no power of T) at the second.
    doubled = Probe(lambda t: REFERENCE / t * (2.0 if t > 10 else 1.0))
    assert tensor_temperature(doubled, references, temperatures, rounding, rows) == (
        "differs",
        100.0,
        None,
    )


@pytest.mark.parametrize(
    "power, exponent", [(1.098, 1.0), (1.102, None), (0.902, 1.0), (0.898, None), (0.05, None)]
)
def test_a_power_just_off_a_half_integer_is_not_reported(power, exponent):
    temperatures = (10.0,)
    references = [REFERENCE]
    result = tensor_temperature(
        Probe(lambda t: REFERENCE * t**power), references, temperatures, Rounding(1e-12), rows
    )
    assert result == ("differs", 10.0, exponent)


@pytest.mark.parametrize("factor, status", [(0.98, "same"), (1.02, "differs")])
def test_a_tensor_path_just_outside_the_two_bounds_differs(factor, status):
    tolerance = 1e-9
    changed = REFERENCE.clone()
    changed[0, 2] += factor * 2 * tolerance
    result = tensor_temperature(
        Probe(lambda t: changed), [REFERENCE], (10.0,), Rounding(tolerance), rows
    )
    assert result[0] == status


# -- boundaries and degenerate inputs ------------------------------------------------------------


def test_a_class_sum_exactly_at_its_bound_is_invariant_and_a_single_temperature_works():
    tolerance = 2.0**-30  # 3 + 2**-30 - 3 is exact in float64
    worst = shift_invariance(torch.stack([with_sums([tolerance])]), (7.0,), Rounding(tolerance))
    assert worst["ratio"] == 1.0 and worst["invariant"] is True and worst["temperature"] == 7.0


def test_zero_sums_against_zero_bounds_have_ratio_zero():
    worst = shift_invariance(torch.stack([with_sums([0.0, 0.0])] * 2), (5.0, 6.0), Rounding(0.0))
    assert worst["ratio"] == 0.0 and worst["invariant"] is True


@pytest.mark.parametrize("top_cosine, exponent", [(1.02e-3, -2.0), (0.98e-3, -1.0)])
def test_the_direction_floor_from_both_sides(top_cosine, exponent):
    # g(T) = P/T + k G/T**2 with |cos(g, G)| falling to top_cosine at the highest temperature.
    top = GRID[-1]
    k = (
        top_cosine
        * float(PERPENDICULAR.norm())
        * top
        / (float(REFERENCE.norm()) * math.sqrt(1 - top_cosine**2))
    )
    fit = power_law(stack(lambda t: PERPENDICULAR / t + k * REFERENCE / t**2), GRID, REFERENCE)
    assert fit["exponent_fit"] == pytest.approx(exponent, abs=0.02)


def test_an_exponent_that_is_no_power_law_is_reported_to_three_decimals():
    fit = power_law(stack(lambda t: t**-1.23456 * REFERENCE), GRID, REFERENCE)
    assert fit["power_law"] is False and fit["exponent"] == -1.235


def test_a_small_limit_still_has_cosines_and_a_residual():
    small = 0.01 * REFERENCE
    result = extrapolate(
        series(small, -1.0),
        GRID,
        -1.0,
        REFERENCE,
        0.01 * PERPENDICULAR + small,
        logit_scale=1.0,
        dtype=torch.float64,
    )
    assert result["cosine"] == pytest.approx(1.0, rel=1e-9)
    expected = float(
        (small * (0.01 * PERPENDICULAR + small)).sum()
        / (small.norm() * (0.01 * PERPENDICULAR + small).norm())
    )
    assert result["uncentred_cosine"] == pytest.approx(expected, rel=1e-9)
    assert result["residual"] == pytest.approx(0.0, abs=1e-9)
    assert result["established"] is True


def test_identical_gradients_with_zero_bounds_are_the_same():
    temperatures = (100.0,) + MODERATE_TEMPERATURES
    gradients = torch.stack([REFERENCE] * 3)
    assert ignores_temperature(gradients, temperatures, Rounding(0.0)) is True
    assert tensor_temperature(
        Probe(lambda t: REFERENCE), [REFERENCE], (10.0,), Rounding(0.0), rows
    ) == ("same", None, None)


def test_a_tensor_path_smaller_by_a_power_of_t():
    assert tensor_temperature(
        Probe(lambda t: REFERENCE / t), [REFERENCE], (10.0,), Rounding(1e-12), rows
    ) == ("differs", 10.0, -1.0)
