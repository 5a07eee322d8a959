"""Near-threshold planted violations for every tolerance of :mod:`verify.tolerances`.

Each tolerance is pinned from both sides: an error planted just above the value computed here
by hand (from the rounding counts documented in :mod:`verify.tolerances`) must be flagged by the
consumer that compares against it, and one planted just below must not. A tolerance that is
loosened (or tightened) by more than the planted margin therefore fails a test, which a test
that only checks that correct code passes cannot see.
"""

import math

import numpy
import pytest
import torch

from verify import tolerances
from verify._errors import VerifyError
from verify.checks._common import violations
from verify.checks._training import mean_rounding_bound
from verify.checks.equal_mean import mean_gaps
from verify.checks.temperature import too_slow
from verify.checks.zero_mean import logit_gradient_sums
from verify.convergence import Convergence, measure_convergence
from verify.losses import DistillationProblem

EPS64 = 2.0**-52
EPS32 = 2.0**-23
ABOVE, BELOW = 1.02, 0.98  # the planted margins: 2 % either side of the tolerance


def flagged(error, tolerance):
    return bool(violations(torch.tensor([error]), torch.as_tensor(tolerance).reshape(1)))


def planted(expected, tolerance):
    """Errors just above and just below ``expected``, and whether each is flagged."""
    return flagged(ABOVE * expected, tolerance), flagged(BELOW * expected, tolerance)


# -- the primitives against IEEE facts -----------------------------------------------------------


def test_machine_epsilon_is_the_gap_above_one():
    assert tolerances.machine_epsilon(torch.float64) == EPS64
    assert tolerances.machine_epsilon(torch.float32) == EPS32
    assert 1.0 + EPS64 != 1.0 and 1.0 + EPS64 / 2 == 1.0
    for bad in (torch.int64, "float64", float, None):
        with pytest.raises(VerifyError):
            tolerances.machine_epsilon(bad)


def test_rounding_bound_is_the_product_of_its_three_factors():
    assert tolerances.rounding_bound(
        dtype=torch.float32, operations=7, magnitude=3.0
    ) == pytest.approx(EPS32 * 7 * 3.0, rel=1e-15)
    operations = torch.tensor([1.0, 2.0])
    bound = tolerances.rounding_bound(dtype=torch.float64, operations=operations, magnitude=0.5)
    assert torch.equal(bound, torch.tensor([0.5 * EPS64, EPS64], dtype=bound.dtype))


# -- class_sum_tolerance, as the zero-mean check applies it ---------------------------------------


class _PlantedObjective:
    """A loss whose logit gradient is ``weights`` (so its class sum is ``sum(weights)``, exact
    for one nonzero weight), with fixed magnitudes: a zero-mean violation of planted size."""

    def __init__(self, weights, magnitude, arguments):
        self.weights, self.magnitude, self.arguments = weights, magnitude, arguments

    def __call__(self, problem):
        return (problem.student * self.weights).sum(-1)

    def magnitudes(self, problem):
        rows = problem.student.shape[0]
        return (
            torch.full((rows,), self.magnitude, dtype=torch.float64),
            torch.full((rows,), self.arguments, dtype=torch.float64),
        )

    def defined(self, problem):
        return torch.ones(problem.student.shape[0], dtype=torch.bool)


def _problem(classes):
    student = torch.zeros(1, classes, dtype=torch.float64)
    return DistillationProblem(
        student,
        student.clone(),
        torch.zeros(1, dtype=torch.long),
        torch.full((1, classes), 1.0 / classes, dtype=torch.float64),
        torch.ones(1, dtype=torch.float64),
    )


@pytest.mark.parametrize(
    "classes, arguments, magnitude", [(2, 0.0, 2.0), (3, 1.5, 4.0), (40, 0.0, 1.0), (2, 25.0, 1.0)]
)
@pytest.mark.parametrize("side", ["above", "below"])
def test_zero_mean_check_flags_a_class_sum_just_above_its_tolerance(
    classes, arguments, magnitude, side
):
    # Roundings: 2N (normaliser and final sum) + 2 * argument size + 10 (the softmax chain).
    expected = EPS64 * (2 * classes + 2 * arguments + 10) * magnitude
    size = (ABOVE if side == "above" else BELOW) * expected
    weights = torch.zeros(classes, dtype=torch.float64)
    weights[0] = size
    objective = _PlantedObjective(weights, magnitude, arguments)
    errors, tolerance = logit_gradient_sums(objective, _problem(classes))
    assert float(errors[0]) == size
    assert bool(violations(errors, tolerance)[0]) == (side == "above")


def test_class_sum_tolerance_in_single_precision():
    tolerance = tolerances.class_sum_tolerance(
        dtype=torch.float32, classes=5, argument_magnitude=3.0, gradient_magnitude=2.0
    )
    assert planted(EPS32 * (10 + 6 + 10) * 2.0, tolerance) == (True, False)


def test_softmax_gradient_operations_counts():
    assert tolerances.softmax_gradient_operations(classes=7, argument_magnitude=0.25) == 14.5 + 10
    assert tolerances.SOFTMAX_CHAIN_OPERATIONS == 10


# -- forward_mean_tolerance, as the equal-mean check applies it -----------------------------------


class _PlantedNetworks:
    """Networks whose forward pass returns planted features and logits."""

    def __init__(self, weight, bias, features, logits):
        self.output_weight, self.output_bias = weight, bias
        self.features, self.logits = features, logits

    def forward(self, inputs):
        return self.features, self.logits


@pytest.mark.parametrize("classes, features, bias", [(3, 2, True), (10, 5, False)])
@pytest.mark.parametrize("side", ["above", "below"])
def test_equal_mean_check_flags_a_mean_gap_just_above_the_forward_rounding(
    classes, features, bias, side
):
    generator = torch.Generator().manual_seed(classes)
    weight = torch.randn(1, classes, features, generator=generator, dtype=torch.float64)
    bias_values = (
        torch.randn(1, classes, generator=generator, dtype=torch.float64) if bias else None
    )
    hidden = torch.randn(1, 4, features, generator=generator, dtype=torch.float64)
    # The largest sum_j |W_nj h_j| + |b_n| over classes and inputs.
    magnitude = torch.einsum("nd,bd->bn", weight[0].abs(), hidden[0].abs())
    if bias:
        magnitude = magnitude + bias_values[0].abs()
    magnitude = float(magnitude.max())
    # features + 1 roundings per logit, classes for the mean, 1 for the difference (the module).
    per_network = EPS64 * (features + classes + 2) * magnitude
    expected = 2 * per_network  # student and teacher alike
    gap = (ABOVE if side == "above" else BELOW) * expected
    teacher_logits = torch.zeros(1, 4, classes, dtype=torch.float64)
    student_logits = teacher_logits.clone()
    student_logits[0, 2] = gap  # a mean shifted by exactly ``gap`` at one input
    student = _PlantedNetworks(weight, bias_values, hidden, student_logits)
    teacher = _PlantedNetworks(weight, bias_values, hidden, teacher_logits)
    gaps, tolerance = mean_gaps(
        student, teacher, None, student_weight_bound=0.0, teacher_weight_bound=0.0, bias_bound=0.0
    )
    assert float(gaps[0]) == pytest.approx(gap, rel=1e-12)
    assert bool(violations(gaps, tolerance)[0]) == (side == "above")


def test_forward_mean_tolerance_direct():
    tolerance = tolerances.forward_mean_tolerance(
        dtype=torch.float32, classes=4, features=6, magnitude=3.0
    )
    assert planted(EPS32 * 12 * 3.0, tolerance) == (True, False)


# -- UPDATE_OPERATIONS, as the training checks apply it --------------------------------------------


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_update_rounding_bound_just_above_and_below(momentum):
    parameter, delta, gradient, decay, rate = 2.0, 0.5, 3.0, 0.01, 0.1
    persistence = 1 / (1 - momentum)
    magnitude = parameter + delta + rate * persistence * (gradient + decay * parameter)
    expected = EPS64 * 9 * magnitude  # 9 roundings per coordinate and step
    bound = mean_rounding_bound(
        dtype=torch.float64,
        classes=3,
        parameter=parameter,
        delta=delta,
        gradient_magnitude=gradient,
        gradient_sum_bound=0.0,
        learning_rate=rate,
        momentum=momentum,
        weight_decay=decay,
    )
    assert planted(expected, bound) == (True, False)
    assert tolerances.UPDATE_OPERATIONS == 9


# -- SLOPE_TOLERANCE and RESOLUTION_FACTOR, as the convergence fits apply them ---------------------


@pytest.mark.parametrize("order", [1, 2])
def test_slope_just_outside_the_slope_tolerance_fails(order):
    def fit(slope):
        return Convergence(order, slope, 10.0, 1e4, 7, None, True)

    assert fit(-order + 0.098).passed and fit(-order - 0.098).passed
    assert not fit(-order + 0.102).passed and not fit(-order - 0.102).passed
    # The temperature search's notion of too slow: the same margin, one-sided.
    assert too_slow(fit(-order + 0.102)) and not too_slow(fit(-order + 0.098))
    assert not too_slow(fit(-order - 0.5))
    assert not fit(math.nan).passed


def _bent(temperatures, bend):
    """``1/T`` on the lower half of the window, ``bend`` added to the slope on the upper half."""
    values = 1.0 / temperatures
    middle = len(temperatures) // 2
    upper = values[middle] * (temperatures[middle:] / temperatures[middle]) ** (-1.0 + bend)
    return numpy.concatenate([values[:middle], upper])


def test_a_window_whose_halves_differ_just_beyond_the_slope_tolerance_is_unresolved():
    temperatures = numpy.logspace(1, 4, 7)
    roundoff = 1e-15 * temperatures
    settled = measure_convergence(temperatures, _bent(temperatures, 0.098), roundoff, order=1)
    bending = measure_convergence(temperatures, _bent(temperatures, 0.102), roundoff, order=1)
    assert settled.resolved and not bending.resolved


@pytest.mark.parametrize("ratio, resolved_last", [(1.02 * 10, True), (0.98 * 10, False)])
def test_a_difference_just_above_the_resolution_factor_is_resolved(ratio, resolved_last):
    temperatures = numpy.logspace(1, 4, 7)
    roundoff = 1e-12 * temperatures  # grows linearly: the envelope is itself
    differences = 3.0 / temperatures
    differences[-1] = ratio * roundoff[-1]  # far from the floor (2x), near the factor
    result = measure_convergence(temperatures, differences, roundoff, order=1)
    assert result.floor is None
    assert result.high == (temperatures[-1] if resolved_last else temperatures[-2])
    assert result.points == (7 if resolved_last else 6)
