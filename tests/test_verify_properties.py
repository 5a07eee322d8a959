"""Property tests (hypothesis) of the measurements behind the checks, each with its negative
control where the property can be planted wrong.

These test the per-example measurements, not the check runners, because the runners use
hypothesis themselves (sweeps and counterexample searches) and hypothesis does not nest.
"""

import math

import numpy
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from planted import PerClassScaledSGD

from verify import strategies
from verify.checks._training import train
from verify.checks.equal_mean import equal_mean_initialization, mean_gaps
from verify.checks.mean_preservation import mean_drifts
from verify.checks.zero_mean import logit_gradient_sums, output_layer_gradient_sums
from verify.convergence import leading_order, measure_convergence
from verify.losses import (
    DistillationProblem,
    Loss,
    infinite_temperature_limit,
    kd_loss,
    logits_matching_loss,
)
from verify.networks import StackedNetworks
from verify.optimizers import OptimizerSpec
from verify.tolerances import SLOPE_TOLERANCE

DTYPES = st.sampled_from([torch.float64, torch.float32])


def _problems(dtype, **bounds):
    return strategies.distillation_problems(
        dtype=dtype, **{"max_classes": 200, "max_batch_size": 16, **bounds}
    )


# -- [zero-mean-gradient] -----------------------------------------------------------------------


@given(st.data(), DTYPES, strategies.losses())
def test_softmax_losses_have_zero_sum_logit_gradients(data, dtype, objective):
    problem = data.draw(_problems(dtype))
    errors, tolerances = logit_gradient_sums(objective, problem)
    assert bool((errors <= tolerances).all()), (objective, problem.describe(), errors, tolerances)


@given(st.data(), DTYPES, strategies.losses(), st.floats(1e-5, 1.0))
def test_a_planted_constant_gradient_is_flagged_in_every_example(data, dtype, objective, constant):
    problem = data.draw(_problems(dtype, max_scale=10.0, max_offset=10.0, max_temperature=100.0))
    planted = Loss(
        objective.name + "+c",
        True,
        lambda p: objective(p) + constant * p.student.sum(-1),
        lambda p: objective.magnitudes(p)[0],
        lambda p: objective.magnitudes(p)[1],
    )
    errors, tolerances = logit_gradient_sums(planted, problem)
    assert bool((errors > tolerances).all())


@given(st.data(), strategies.losses(shift_invariant=False))
def test_controls_are_not_shift_invariant(data, objective):
    problem = data.draw(
        _problems(
            torch.float64, max_scale=10.0, max_offset=0.0, min_temperature=0.5, max_temperature=10.0
        )
    )
    shifted = problem.with_student(problem.student + 1.0)
    assert not torch.allclose(objective(shifted), objective(problem))


@given(
    strategies.network_specs(max_depth=3, max_width=8),
    strategies.losses(),
    strategies.temperatures(min_value=0.5, max_value=100.0),
)
def test_output_layer_gradients_are_zero_sum(spec, objective, temperature):
    networks = StackedNetworks.build(spec, count=3, seed=1)
    generator = torch.Generator().manual_seed(2)
    shape = (3, 4)
    inputs = torch.randn(*shape, *spec.input_shape, generator=generator, dtype=torch.float64)
    teacher = 3 * torch.randn(*shape, spec.classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(spec.classes, shape, generator=generator)
    problem = DistillationProblem(
        teacher,
        teacher,
        labels,
        torch.softmax(teacher, -1),
        torch.full(shape, temperature, dtype=torch.float64),
    )
    errors, tolerances = output_layer_gradient_sums(objective, networks, inputs, problem)
    assert bool((errors <= tolerances).all())


# -- [mean-preservation] ------------------------------------------------------------------------


def _batches(spec, count, temperature, seed=3, batch=4):
    generator = torch.Generator().manual_seed(seed)

    def batches(step):
        shape = (count, batch)
        inputs = torch.randn(*shape, *spec.input_shape, generator=generator, dtype=torch.float64)
        teacher = 2 * torch.randn(*shape, spec.classes, generator=generator, dtype=torch.float64)
        labels = torch.randint(spec.classes, shape, generator=generator)
        return inputs, DistillationProblem(
            teacher,
            teacher,
            labels,
            torch.softmax(teacher, -1),
            torch.full(shape, temperature, dtype=torch.float64),
        )

    return batches


@given(
    strategies.network_specs(max_depth=3, max_width=8),
    strategies.sgd_optimizers(),
    strategies.losses(),
    strategies.temperatures(min_value=0.5, max_value=50.0),
)
def test_sgd_keeps_the_class_means_on_their_prediction(spec, optimizer, objective, temperature):
    networks = StackedNetworks.build(spec, count=2, seed=4)
    steps = 4
    trajectory = train(networks, optimizer, objective, _batches(spec, 2, temperature), steps=steps)
    errors, tolerances = mean_drifts(trajectory, optimizer.predicted_mean_factors(steps))
    assert bool((errors <= tolerances).all())


@given(
    strategies.network_specs(max_depth=3, max_width=8).filter(lambda spec: spec.bias),
    strategies.losses(),
    strategies.temperatures(min_value=0.5, max_value=50.0),
)
def test_a_per_class_rescaled_update_is_flagged(spec, objective, temperature):
    planted = OptimizerSpec("sgd", (("lr", 0.1),), factory=PerClassScaledSGD)
    networks = StackedNetworks.build(spec, count=2, seed=4)
    trajectory = train(networks, planted, objective, _batches(spec, 2, temperature), steps=2)
    errors, tolerances = mean_drifts(trajectory, planted.predicted_mean_factors(2))
    # The bias gradient's class rows are the batch means of q - target: nonzero, and unequal.
    assert bool((errors[1:, :, 1] > tolerances[1:, :, 1]).all())


@given(strategies.sgd_optimizers())
def test_weight_decay_alone_is_the_plain_sgd_factor(optimizer):
    options = optimizer.options
    assume(not options.get("momentum"))
    factors = optimizer.predicted_mean_factors(5)
    decay = 1 - options["lr"] * options.get("weight_decay", 0.0)
    assert factors == [decay ** (t + 1) for t in range(5)]


# -- [equal-mean] -------------------------------------------------------------------------------


@given(
    strategies.network_specs(max_depth=3, max_width=8),
    strategies.sgd_optimizers(),
    strategies.losses(),
)
def test_equal_mean_initialization_keeps_logit_means_equal(spec, optimizer, objective):
    student = StackedNetworks.build(spec, count=2, seed=5)
    teacher = StackedNetworks.build(spec, count=2, seed=6)
    decay = optimizer.options.get("weight_decay", 0.0)
    student_bound, teacher_bound, bias_bound = equal_mean_initialization(
        student, teacher, zero_bias=decay > 0
    )
    generator = torch.Generator().manual_seed(7)

    def fresh(step):
        return 3 * torch.randn(2, 8, *spec.input_shape, generator=generator, dtype=torch.float64)

    def evaluate(step, networks, trajectory):
        return mean_gaps(
            networks,
            teacher,
            fresh(step),
            student_weight_bound=trajectory.weight_bounds[-1],
            teacher_weight_bound=teacher_bound,
            bias_bound=bias_bound + trajectory.bias_bounds[-1],
        )

    trajectory = train(
        student,
        optimizer,
        objective,
        _batches(spec, 2, 2.0),
        steps=3,
        evaluate=evaluate,
        initial_weight_bound=student_bound,
    )
    for errors, tolerances in trajectory.evaluations:
        assert bool((errors <= tolerances).all())


# -- losses -------------------------------------------------------------------------------------


@given(st.data())
def test_kd_gradient_is_temperature_times_q_minus_p(data):
    problem = data.draw(
        _problems(torch.float64, max_scale=10.0, max_offset=0.0, max_temperature=1e3)
    )
    student = problem.student.detach().requires_grad_(True)
    temperature = problem.temperature
    (gradient,) = torch.autograd.grad(
        kd_loss(student, problem.teacher, temperature=temperature).sum(), student
    )
    column = temperature.unsqueeze(-1)
    closed_form = column * (
        torch.softmax(problem.student / column, -1) - torch.softmax(problem.teacher / column, -1)
    )
    assert torch.allclose(gradient, closed_form, rtol=0, atol=1e-12 * float(column.max()))


@given(st.data())
def test_the_limit_is_half_the_variance_of_the_difference(data):
    problem = data.draw(_problems(torch.float64, max_scale=10.0, max_offset=100.0))
    difference = problem.student - problem.teacher
    half_variance = 0.5 * difference.var(-1, unbiased=False)
    limit = infinite_temperature_limit(problem.student, problem.teacher)
    scale = float((difference**2).mean(-1).max()) + 1.0
    assert torch.allclose(limit, half_variance, rtol=0, atol=1e-9 * scale)
    assert bool(
        (logits_matching_loss(problem.student, problem.teacher) >= limit - 1e-9 * scale).all()
    )


# -- convergence ------------------------------------------------------------------------------


@given(st.integers(1, 4), st.floats(0.1, 10.0), st.floats(-0.5, 0.5))
def test_a_power_law_has_its_slope(order, coefficient, correction):
    temperatures = numpy.logspace(1.5, 5, 15)
    values = coefficient * temperatures**-order * (1 + correction / temperatures)
    result = measure_convergence(temperatures, values, numpy.zeros_like(values), order=order)
    assert result.resolved and result.passed and result.floor is None


@given(st.integers(1, 3), st.floats(1e-12, 1e-6))
def test_round_off_growing_with_temperature_sets_a_floor(order, epsilon):
    temperatures = numpy.logspace(1, 8, 29)
    exact = temperatures**-order
    roundoff = epsilon * temperatures
    result = measure_convergence(temperatures, exact + roundoff, roundoff, order=order)
    crossing = epsilon ** (-1 / (order + 1))
    assert result.floor is not None
    assert crossing / 2 <= result.floor <= crossing * 2
    if result.resolved:
        assert result.passed and result.high < result.floor


@given(st.integers(2, 10), st.integers(1, 6))
def test_leading_order_is_even_for_two_classes(classes, terms):
    order = leading_order(classes, terms)
    assert order == terms if classes > 2 else (order % 2 == 0 and order - terms in (0, 1))


def test_a_slope_off_by_more_than_the_tolerance_fails():
    temperatures = numpy.logspace(1, 4, 7)
    values = temperatures ** -(1 + 2 * SLOPE_TOLERANCE)
    result = measure_convergence(temperatures, values, numpy.zeros(7), order=1)
    assert result.resolved and not result.passed
    assert math.isclose(result.error, 2 * SLOPE_TOLERANCE)


# -- strategies -----------------------------------------------------------------------------


@given(st.data(), st.integers(1, 8), st.integers(2, 50), DTYPES)
def test_logits_have_the_requested_shape_and_type(data, batch_size, classes, dtype):
    values = data.draw(strategies.logits(batch_size=batch_size, classes=classes, dtype=dtype))
    assert values.shape == (batch_size, classes) and values.dtype == dtype
    assert bool(torch.isfinite(values).all())


@given(strategies.network_specs(), st.integers(1, 3))
def test_drawn_networks_end_in_a_linear_layer_of_the_class_count(spec, count):
    networks = StackedNetworks.build(spec, count=count, seed=0)
    assert isinstance(spec.build()._modules["output"], torch.nn.Linear)
    features, logits = networks.forward(
        torch.randn(count, 2, *spec.input_shape, dtype=torch.float64)
    )
    assert features.shape == (count, 2, spec.features)
    assert logits.shape == (count, 2, spec.classes)
    assert 1 <= spec.depth <= 4


@given(strategies.optimizers())
def test_drawn_optimizers_build(optimizer):
    parameter = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    built = optimizer.build([parameter])
    parameter.grad = torch.ones_like(parameter)
    built.step()
    assert optimizer.describe().startswith(("SGD(", "Adam(", "AdamW(", "RMSprop(", "Adagrad("))


def test_student_and_teacher_draws_differ_even_when_minimal():
    from hypothesis import find

    def minimal(salt):
        return find(strategies.logits(batch_size=2, classes=3, salt=salt), lambda x: True)

    # The salt alone tells the two minimal draws apart: one salt always gives the same tensor.
    assert not torch.equal(minimal(0), minimal(1))
    assert torch.equal(minimal(1), minimal(1))
    problem = find(
        strategies.distillation_problems(max_classes=3, max_batch_size=2), lambda p: True
    )
    assert not torch.equal(problem.student, problem.teacher)
