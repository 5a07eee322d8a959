r"""[equal-mean]: after equal-mean initialization, student and teacher logit means stay equal.

If the output layer has :math:`\bar w = 0` then :math:`\langle z(x)\rangle = \bar b` for every
input. Equal-mean initialization gives student and teacher :math:`\bar w = 0` and equal
:math:`\bar b`; by [mean-preservation] SGD keeps both, so
:math:`\langle z(x)\rangle = \langle v(x)\rangle` at every step, for every input, with no
normalization of the logits, provided the output bias has no weight decay or
:math:`\bar b = 0` (the check sets :math:`\bar b = 0` whenever the drawn SGD has weight
decay; ``equal-mean/bias-decay`` shows why).

The check distils hypothesis-drawn teachers into hypothesis-drawn students (many per
architecture, with :mod:`torch.func`), with SGD for 20 steps, and measures
:math:`|\langle z(x)\rangle - \langle v(x)\rangle|` on fresh inputs after every step. The
tolerance adds the rounding of the two forward passes and of the initialization to the
rounding bound on the student's class means accumulated during training.

Equalising only the biases, with :math:`\bar w \ne 0` (``equal-mean/nonzero-row-mean``), does
not work: the gap then depends on the input and moves as the features train.
"""

import torch
from hypothesis import strategies as st

from ..losses import LOSSES, DistillationProblem
from ..networks import StackedNetworks
from ..search import draw_examples, find_counterexample
from ..strategies import logit_vectors, network_specs, sgd_optimizers, temperatures
from ..tolerances import forward_mean_tolerance, rounding_bound
from ._common import (
    CheckContext,
    Counterexample,
    conclude,
    group_sizes,
    numeric_check,
    vector,
    violations,
)
from ._training import linear_networks, train

__all__ = [
    "equal_mean_initialization",
    "equal_bias_initialization",
    "mean_gaps",
    "run_equal_mean_check",
    "check_equal_mean",
    "check_equal_mean_nonzero_row_mean",
]

STEPS = 20
SEARCH_STEPS = 5
_GROUPS = 4
_EVALUATION_BATCH = 16


def _max_abs(tensor, dims):
    return tensor.detach().abs().amax(dims)


@torch.no_grad()
def _centre_rows(networks):
    weight = networks.output_weight
    classes = weight.shape[1]
    bound = rounding_bound(
        dtype=weight.dtype, operations=classes + 4, magnitude=_max_abs(weight, (1, 2))
    )
    weight.sub_(weight.mean(1, keepdim=True))
    return bound


@torch.no_grad()
def _equalise_biases(student, teacher, *, zero):
    """Give the student's bias the teacher's class mean (both zero if ``zero``); the bound on
    the exact difference of the two means afterwards."""
    student_bias, teacher_bias = student.output_bias, teacher.output_bias
    count = student.count
    if student_bias is None:
        return torch.zeros(
            count, dtype=student.output_weight.dtype, device=student.output_weight.device
        )
    classes = student_bias.shape[1]
    magnitude = _max_abs(student_bias, 1) + _max_abs(teacher_bias, 1)
    if zero:
        teacher_bias.sub_(teacher_bias.mean(1, keepdim=True))
    student_bias.sub_(student_bias.mean(1, keepdim=True) - teacher_bias.mean(1, keepdim=True))
    return rounding_bound(dtype=student_bias.dtype, operations=classes + 6, magnitude=magnitude)


def equal_mean_initialization(student, teacher, *, zero_bias=False):
    r"""Equal-mean initialization: centre the rows of both output weights (:math:`\bar w = 0`)
    and give the student the teacher's :math:`\bar b` (or both :math:`\bar b = 0`).

    Returns rounding bounds ``(student_weight, teacher_weight, bias)`` of shape ``[M]`` on the
    exact :math:`|\bar w_s|`, :math:`|\bar w_t|` and :math:`|\bar b_s - \bar b_t|` afterwards.
    """
    return (
        _centre_rows(student),
        _centre_rows(teacher),
        _equalise_biases(student, teacher, zero=zero_bias),
    )


def equal_bias_initialization(student, teacher, *, zero_bias=False):
    r"""Equal :math:`\bar b` only, rows left as initialised (:math:`\bar w \ne 0`): the refuted
    variant. Returns the same kind of bounds as :func:`equal_mean_initialization`: those the
    claim :math:`\langle z\rangle = \langle v\rangle` allows, rounding only."""

    def row_mean_rounding(networks):
        weight = networks.output_weight
        return rounding_bound(
            dtype=weight.dtype, operations=weight.shape[1] + 4, magnitude=_max_abs(weight, (1, 2))
        )

    return (
        row_mean_rounding(student),
        row_mean_rounding(teacher),
        _equalise_biases(student, teacher, zero=zero_bias),
    )


def mean_gaps(student, teacher, inputs, *, student_weight_bound, teacher_weight_bound, bias_bound):
    r"""``(errors, tolerances)`` of shape ``[M]``: the largest
    :math:`|\langle z(x)\rangle - \langle v(x)\rangle|` over the inputs ``[M, B, ...]``, and its
    tolerance: the forward passes' rounding (:func:`~verify.tolerances.forward_mean_tolerance`)
    plus :math:`(|\bar w_s| + |\bar w_t|)\sum_j |h_j| + |\bar b_s - \bar b_t|` with those
    means replaced by their bounds."""
    with torch.no_grad():
        student_features, student_logits = student.forward(inputs)
        teacher_features, teacher_logits = teacher.forward(inputs)
        gaps = (student_logits.mean(-1) - teacher_logits.mean(-1)).abs().amax(1)

        def forward(networks, features):
            weight, bias = networks.output_weight.detach(), networks.output_bias
            magnitude = torch.einsum("mnd,mbd->mbn", weight.abs(), features.abs())
            if bias is not None:
                magnitude = magnitude + bias.detach().abs().unsqueeze(1)
            return forward_mean_tolerance(
                dtype=weight.dtype,
                classes=weight.shape[1],
                features=weight.shape[2],
                magnitude=magnitude.amax((1, 2)),
            )

        feature_sums = (
            student_features.abs().sum(-1).amax(1),
            teacher_features.abs().sum(-1).amax(1),
        )
        tolerances = (
            forward(student, student_features)
            + forward(teacher, teacher_features)
            + student_weight_bound * feature_sums[0]
            + teacher_weight_bound * feature_sums[1]
            + bias_bound
        )
    return gaps, tolerances


def _distil(
    student,
    teacher,
    optimizer,
    objective,
    temperature,
    batches,
    evaluation_inputs,
    initialization,
    steps,
):
    """Initialise, then train ``student`` on ``teacher``'s logits, measuring the gap on
    ``evaluation_inputs(step)`` before the first and after every step."""
    decay = optimizer.options.get("weight_decay", 0.0)
    student_weight_bound, teacher_weight_bound, bias_bound = initialization(
        student, teacher, zero_bias=decay > 0
    )

    def distillation_batches(step):
        inputs, labels, targets = batches(step)
        with torch.no_grad():
            _, teacher_logits = teacher.forward(inputs)
        temperature_ = torch.full(
            labels.shape, temperature, dtype=teacher_logits.dtype, device=teacher_logits.device
        )
        return inputs, DistillationProblem(
            teacher_logits, teacher_logits, labels, targets, temperature_
        )

    def evaluate(step, networks, trajectory):
        # The student's drift bound so far, on top of the initialization's.
        bias_drift = trajectory.bias_bounds[-1]
        return mean_gaps(
            networks,
            teacher,
            evaluation_inputs(step),
            student_weight_bound=trajectory.weight_bounds[-1],
            teacher_weight_bound=teacher_weight_bound,
            bias_bound=bias_bound + bias_drift,
        )

    trajectory = train(
        student,
        optimizer,
        objective,
        distillation_batches,
        steps=steps,
        evaluate=evaluate,
        initial_weight_bound=student_weight_bound,
    )
    errors = torch.stack([e for e, _ in trajectory.evaluations])  # [steps + 1, M]
    tolerances = torch.stack([t for _, t in trajectory.evaluations])
    return errors, tolerances


@st.composite
def _small_cases(draw, objectives, optimizers=None):
    if optimizers is None:
        optimizers = sgd_optimizers(min_learning_rate=0.01, max_learning_rate=0.1)
    optimizer = draw(optimizers)
    objective = draw(st.sampled_from(objectives))
    classes = draw(st.integers(2, 4))
    features = draw(st.integers(1, 2))

    def matrix():
        return [draw(logit_vectors(min_size=features, max_size=features)) for _ in range(classes)]

    student = (matrix(), draw(logit_vectors(min_size=classes, max_size=classes)))
    teacher = (matrix(), draw(logit_vectors(min_size=classes, max_size=classes)))
    inputs = draw(logit_vectors(min_size=features, max_size=features))
    fresh = draw(logit_vectors(min_size=features, max_size=features))
    label = draw(st.integers(0, classes - 1))
    temperature = draw(temperatures(min_value=0.5, max_value=10.0))
    steps = draw(st.integers(1, SEARCH_STEPS))
    return optimizer, objective, student, teacher, inputs, fresh, label, temperature, steps


def _run_small_case(case, initialization, context):
    optimizer, objective, student, teacher, inputs, fresh, label, temperature, steps = case
    student_network = linear_networks(*student, dtype=context.dtype, device=context.device)
    teacher_network = linear_networks(*teacher, dtype=context.dtype, device=context.device)

    def as_tensor(values):
        return torch.tensor([[values]], dtype=context.dtype, device=context.device)

    classes = len(student[1])
    labels = torch.tensor([[label]], device=context.device)
    targets = torch.full((1, 1, classes), 1.0 / classes, dtype=context.dtype, device=context.device)
    errors, tolerances = _distil(
        student_network,
        teacher_network,
        optimizer,
        objective,
        temperature,
        lambda step: (as_tensor(inputs), labels, targets),
        lambda step: as_tensor(fresh),
        initialization,
        steps,
    )
    means = (
        student_network.output_weight.detach().mean(1)[0],
        teacher_network.output_weight.detach().mean(1)[0],
    )
    return errors[:, 0], tolerances[:, 0], means


def _search(objectives, initialization, context, optimizers=None):
    def violated(case):
        errors, tolerances, _ = _run_small_case(case, initialization, context)
        return bool(violations(errors, tolerances).any())

    found = find_counterexample(
        _small_cases(objectives, optimizers),
        violated,
        seed=context.seed,
        max_examples=context.search_examples,
    )
    if found is None:
        return None
    errors, tolerances, (student_mean, teacher_mean) = _run_small_case(
        found, initialization, context
    )
    optimizer, objective, student, teacher, inputs, fresh, label, temperature, steps = found
    step = len(errors) - 1
    return Counterexample(
        f"{optimizer.describe()}, {objective.name} at T={temperature:g}, student "
        f"Linear({len(student[0][0])}->{len(student[1])}) W={student[0]} b={vector(student[1])}, "
        f"teacher W={teacher[0]} c={vector(teacher[1])}, trained on input {vector(inputs)}; "
        f"after {initialization.__name__.replace('_', ' ')} the row means are "
        f"{vector(student_mean)} (student) and {vector(teacher_mean)} (teacher); "
        f"after {step} step{'' if step == 1 else 's'} <z(x)> - <v(x)> = "
        f"{float(errors[step]):.3g} at x={vector(fresh)} (tolerance {float(tolerances[step]):.2g})",
        float(errors[step]),
        float(tolerances[step]),
    )


def run_equal_mean_check(
    statement_id,
    initialization,
    context,
    *,
    objectives=None,
    optimizers=None,
    steps=STEPS,
    specs=None,
    search_optimizers=None,
):
    """Distil ``context.examples`` drawn teachers into drawn students after ``initialization``
    and measure the logit-mean gap on fresh inputs after every step; ``optimizers`` and
    ``specs`` (strategies) replace the drawn SGD configurations and architectures of the
    sweep, ``search_optimizers`` those of the search for a small counterexample."""
    objectives = list(objectives or LOSSES.values())
    if optimizers is None:
        optimizers = sgd_optimizers()
    if specs is None:
        specs = network_specs(max_classes=10)
    groups, per_group = group_sizes(context.examples, _GROUPS)
    cases = draw_examples(
        st.tuples(
            specs,
            optimizers,
            st.sampled_from(objectives),
            temperatures(min_value=0.5, max_value=50.0),
        ),
        groups,
        seed=context.seed,
    )
    errors, tolerances, setup = [], [], []
    for group, (spec, optimizer, objective, temperature) in enumerate(cases):
        build = dict(count=per_group, dtype=context.dtype, device=context.device)
        student = StackedNetworks.build(spec, seed=context.seed * 7919 + group, **build)
        teacher = StackedNetworks.build(spec, seed=context.seed * 7919 + 5000 + group, **build)
        generator = context.generator(offset=3000 + group)
        shape = (per_group, 8)

        def batches(step, spec=spec, generator=generator, shape=shape):
            inputs = context.randn(*shape, *spec.input_shape, generator=generator)
            labels = torch.randint(spec.classes, shape, generator=generator).to(context.device)
            targets = torch.softmax(context.randn(*shape, spec.classes, generator=generator), -1)
            return inputs, labels, targets

        def evaluation_inputs(step, spec=spec, generator=generator):
            return context.randn(
                per_group, _EVALUATION_BATCH, *spec.input_shape, generator=generator, scale=3.0
            )

        group_errors, group_tolerances = _distil(
            student,
            teacher,
            optimizer,
            objective,
            temperature,
            batches,
            evaluation_inputs,
            initialization,
            steps,
        )
        errors.append(group_errors.flatten())
        tolerances.append(group_tolerances.flatten())
        setup.append(
            f"{per_group} x {spec.describe()}; {optimizer.describe()}; "
            f"{objective.name} at T={temperature:g}"
        )
    return conclude(
        statement_id,
        context,
        errors=torch.cat(errors),
        tolerances=torch.cat(tolerances),
        search=lambda: _search(objectives, initialization, context, search_optimizers),
        examples=per_group * len(cases),
        setup=setup,
        notes=[
            f"{per_group * len(cases)} student/teacher pairs in {len(cases)} groups, "
            f"{steps} steps each"
        ],
    )


@numeric_check("equal-mean")
def check_equal_mean(
    *, device="cpu", dtype=torch.float64, examples=16, seed=0, search_examples=None
):
    """[equal-mean] over ``examples`` student/teacher pairs trained for 20 SGD steps."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_equal_mean_check("equal-mean", equal_mean_initialization, context)


@numeric_check("equal-mean/nonzero-row-mean")
def check_equal_mean_nonzero_row_mean(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """Refutes [equal-mean] when only the biases' class means are equalised."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_equal_mean_check("equal-mean/nonzero-row-mean", equal_bias_initialization, context)
