r"""The high-temperature limit: [infinite-temperature], [hinton-zero-mean], [equal-mean-suffices].

[infinite-temperature] As :math:`T \to \infty` the gradients of :math:`L_{KD}` w.r.t. *all*
network parameters converge to those of
:math:`L_{LM} - \frac12(\langle z\rangle - \langle v\rangle)^2`, at order 1 in :math:`1/T`.
The check computes both for hypothesis-drawn networks at temperatures :math:`10 .. 10^4`, all
in one autograd call (the networks are stacked once per temperature), and fits the log-log
slope of :math:`\|\nabla L_{KD} - \nabla L_\infty\|` against :math:`T`: it must be
:math:`-1 \pm 0.1` (:math:`-2` for two classes, :func:`~verify.convergence.leading_order`).

[hinton-zero-mean], [equal-mean-suffices] With zero-mean normalization of the logits
(Hinton et al.), or with equal-mean initialization of student and teacher (Chen et al.), the
regularizer vanishes: KD at large :math:`T` and pure logits matching give parameter
trajectories that stay :math:`O(1/T)` apart. The checks train the same initializations with
both for 20 SGD steps, every temperature at once, and fit the slope of the largest distance
between the trajectories.

Round-off is measured, not modelled (:func:`measured_with_roundoff`): float32 against the
same computation in float64, float64 by float32's round-off scaled by the ratio of the two
machine epsilons. Temperatures where the round-off is not far below the measured difference
are left out of the fit, and the first where it dominates is reported as the dtype's floor
(:mod:`verify.convergence`).
"""

import numpy
import torch
from hypothesis import strategies as st

from ..convergence import leading_order, measure_convergence
from ..losses import TWINS, kd_loss
from ..networks import StackedNetworks
from ..optimizers import OptimizerSpec
from ..search import draw_examples, find_counterexample
from ..strategies import logit_vectors, network_specs, sgd_optimizers
from ..tolerances import SLOPE_TOLERANCE
from ._common import (
    CheckContext,
    Counterexample,
    conclude,
    group_sizes,
    numeric_check,
    vector,
    worst_case,
)
from ._training import linear_networks
from .equal_mean import equal_mean_initialization

__all__ = [
    "TEMPERATURES",
    "measured_with_roundoff",
    "parameter_gradient_differences",
    "trajectory_differences",
    "zero_mean_logits_matching",
    "convergence_verdict",
    "too_slow",
    "default_initialization",
    "run_infinite_temperature_check",
    "run_trajectory_check",
    "check_infinite_temperature",
    "check_hinton_zero_mean",
    "check_equal_mean_suffices",
]

#: The temperatures of the convergence fits, :math:`10 .. 10^4`, half a decade apart.
TEMPERATURES = tuple(float(t) for t in numpy.logspace(1, 4, 7))
STEPS = 20
SEARCH_STEPS = 5
_GROUPS = 4


def _registered(name):
    """The registry's objective ``name`` (``logits-matching``, ``centred-logits-matching``:
    free of T) per example, through its torch twin."""

    def loss(student_logits, teacher_logits):
        return TWINS[name](student_logits, teacher_logits, 1.0)

    loss.__name__ = name.replace("-", "_")
    return loss


#: Logits matching, and KD's T -> infinity limit ([infinite-temperature]), from the registry.
logits_matching_loss = _registered("logits-matching")
infinite_temperature_limit = _registered("centred-logits-matching")


def zero_mean_logits_matching(student_logits, teacher_logits):
    r"""Logits matching after zero-mean normalization (Hinton et al.):
    :math:`L_{LM}(z - \langle z\rangle, v - \langle v\rangle)`."""
    return logits_matching_loss(
        student_logits - student_logits.mean(-1, keepdim=True),
        teacher_logits - teacher_logits.mean(-1, keepdim=True),
    )


def _temperature_column(temperatures, count, like):
    """Temperatures for ``len(temperatures)`` blocks of ``count`` networks: ``[K * count, 1]``."""
    values = torch.tensor(temperatures, dtype=like.dtype, device=like.device)
    return values.repeat_interleave(count).unsqueeze(1)


def measured_with_roundoff(compute, dtype):
    r"""``(measured, roundoff)``: ``compute(dtype)`` (difference vectors ``[..., P]``) reduced to
        norms, and the round-off of those vectors, measured rather than modelled.

        float32: against the same computation in float64 (inputs widened exactly).
        float64: there is no wider type, so the round-off is float32's, measured against float64,
        times :math:`arepsilon_{64}/arepsilon_{32} = 2^{-29}`; rounding errors are first order
        in :math:`arepsilon`, with the same coefficients in both types. (A cheaper trick, shifting
        the logits by a constant, which changes nothing in exact arithmetic, misses round-off that
        shifts cannot move, such as :math:`\sum_i p_i
    e 1` for uniform logits; hypothesis finds
        such cases at once.)
    """
    measured = compute(dtype)
    if dtype == torch.float64:
        narrow = compute(torch.float32).to(torch.float64)
        ratio = torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps
        roundoff = (narrow - measured).norm(dim=-1) * ratio
    else:
        roundoff = (measured.to(torch.float64) - compute(torch.float64)).norm(dim=-1)
    return measured.norm(dim=-1), roundoff.to(measured)


def _gradient_rows(networks, inputs, teacher_logits, temperatures, *, limit):
    """Flat parameter gradients ``[K + 1, M, P]``: L_KD at each temperature, then the limit;
    one autograd call."""
    count, blocks = networks.count, len(temperatures)
    stacked = networks.repeat(blocks + 1)
    _, logits = stacked.forward(inputs.repeat(blocks + 1, *([1] * (inputs.ndim - 1))))
    teacher = teacher_logits.repeat(blocks + 1, 1, 1)
    kd_part = blocks * count
    temperature = _temperature_column(list(temperatures), count, logits)
    kd = kd_loss(logits[:kd_part], teacher[:kd_part], temperature=temperature).mean(-1)
    limit_losses = limit(logits[kd_part:], teacher[kd_part:]).mean(-1)
    gradients = torch.autograd.grad(kd.sum() + limit_losses.sum(), stacked.leaves())
    flat = torch.cat([g.reshape(stacked.count, -1) for g in gradients], dim=1)
    return flat.detach().view(blocks + 1, count, -1)


def parameter_gradient_differences(
    networks, inputs, teacher_logits, temperatures, *, limit=infinite_temperature_limit
):
    r"""``(differences, roundoff)`` of shape ``[K, M]`` for ``K`` temperatures, ``M`` networks.

    ``differences[k, m]`` is :math:`\|\nabla_\theta L_{KD}(T_k) - \nabla_\theta L_\infty\|` over
    all parameters of network ``m`` (batch-mean losses), from one autograd call (the networks
    stacked once per temperature, plus once for the limit); ``roundoff`` is its measured
    round-off (:func:`measured_with_roundoff`).
    """
    blocks = len(temperatures)

    def compute(dtype):
        rows = _gradient_rows(
            networks.converted(dtype),
            inputs.to(dtype),
            teacher_logits.to(dtype),
            temperatures,
            limit=limit,
        )
        return rows[:blocks] - rows[blocks]

    return measured_with_roundoff(compute, inputs.dtype)


def _trajectories(student, teacher, optimizer, temperatures, inputs, *, reference_loss):
    """Flat parameters after every step: KD at every temperature ``[steps, K, M, P]`` and the
    reference loss ``[steps, M, P]``."""
    count, blocks = student.count, len(temperatures)
    distilled = student.repeat(blocks)
    distilled_optimizer = optimizer.build(distilled.leaves())
    reference = student.repeat(1)
    reference_optimizer = optimizer.build(reference.leaves())
    temperature = None
    distilled_history, reference_history = [], []
    for batch in inputs:
        with torch.no_grad():
            _, teacher_logits = teacher.forward(batch)
        _, logits = distilled.forward(batch.repeat(blocks, *([1] * (batch.ndim - 1))))
        if temperature is None:
            temperature = _temperature_column(list(temperatures), count, logits)
        losses = kd_loss(logits, teacher_logits.repeat(blocks, 1, 1), temperature=temperature).mean(
            -1
        )
        distilled_optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        distilled_optimizer.step()
        distilled_history.append(distilled.flat_parameters().view(blocks, count, -1))

        _, logits = reference.forward(batch)
        reference_optimizer.zero_grad(set_to_none=True)
        reference_loss(logits, teacher_logits).mean(-1).sum().backward()
        reference_optimizer.step()
        reference_history.append(reference.flat_parameters())
    return torch.stack(distilled_history), torch.stack(reference_history)


def trajectory_differences(
    student, teacher, optimizer, temperatures, batches, *, reference_loss, steps=STEPS
):
    r"""``(differences, roundoff)`` of shape ``[K, M]``: the largest distance over ``steps``
    steps between the parameters trained with :math:`L_{KD}(T_k)` and with
    ``reference_loss``, from the same initialization, and its measured round-off
    (:func:`measured_with_roundoff`).

    ``batches(step)`` gives the inputs ``[M, B, ...]``; the teacher's logits on them are the
    targets of both losses.
    """
    inputs = [batches(step) for step in range(steps)]

    def compute(dtype):
        distilled, reference = _trajectories(
            student.converted(dtype),
            teacher.converted(dtype),
            optimizer,
            temperatures,
            [batch.to(dtype) for batch in inputs],
            reference_loss=reference_loss,
        )
        return distilled - reference.unsqueeze(1)  # [steps, K, M, P]

    differences, roundoff = measured_with_roundoff(compute, inputs[0].dtype)
    return differences.amax(0), roundoff.amax(0)


def _convergences(differences, roundoff, temperatures, classes):
    order = leading_order(classes, 1)
    return [
        measure_convergence(
            temperatures, differences[:, m].cpu().numpy(), roundoff[:, m].cpu().numpy(), order=order
        )
        for m in range(differences.shape[1])
    ]


def convergence_verdict(convergences, dtype):
    """``(violated, error, tolerance)`` over fitted orders of convergence.

    Every resolved fit must be within :data:`~verify.tolerances.SLOPE_TOLERANCE` of its order.
    A fit that round-off leaves unresolved (:mod:`verify.convergence`) is reported, not
    failed, as long as enough fits are resolved: half of them in float64, whose round-off is
    far below the differences on the whole range, and at least one in float32, whose floor
    can cut the range to less than the decade a fit needs (docs/theory.md: the floor is reported,
    not failed on). A measurement that resolves nothing fails: it has shown nothing.
    """
    resolved = [c for c in convergences if c.resolved]
    errors = [c.error for c in resolved] or [float("inf")]
    error, tolerance, _ = worst_case(errors, [SLOPE_TOLERANCE] * len(errors))
    needed = (len(convergences) + 1) // 2 if dtype == torch.float64 else 1
    violated = len(resolved) < needed or not all(c.passed for c in resolved)
    return violated, error, tolerance


def _summary(convergences, context):
    """``(notes, unresolved)``: per expected order, the slopes fitted, how many fits round-off
    allowed, and the round-off floors met on the grid; and the orders no fit resolved."""
    notes, unresolved = [], []
    name = str(context.dtype).replace("torch.", "")
    for order in sorted({c.order for c in convergences}):
        group = [c for c in convergences if c.order == order]
        resolved = [c for c in group if c.resolved]
        line = f"expected slope -{order}: "
        if resolved:
            slopes = [c.slope for c in resolved]
            line += f"measured {min(slopes):.3f} .. {max(slopes):.3f}, "
        line += f"{len(resolved)} of {len(group)} fits resolved"
        floors = sorted(c.floor for c in group if c.floor is not None)
        if floors:
            line += (
                f"; {name} floor (round-off dominates) at T={floors[0]:.3g} .. "
                f"{floors[-1]:.3g} in {len(floors)} of {len(group)}"
            )
        else:
            line += f"; no {name} floor up to T={TEMPERATURES[-1]:.3g}"
        notes.append(line)
        if not resolved:
            unresolved.append(f"slope -{order}")
    return notes, unresolved


# -- small explicit cases, for counterexamples ------------------------------------------------


@st.composite
def _small_cases(draw):
    classes = draw(st.integers(2, 4))
    features = draw(st.integers(1, 2))
    weight = [
        draw(logit_vectors(min_size=features, max_size=features, min_value=-2, max_value=2))
        for _ in range(classes)
    ]
    bias = draw(logit_vectors(min_size=classes, max_size=classes, min_value=-2, max_value=2))
    inputs = draw(logit_vectors(min_size=features, max_size=features, min_value=-2, max_value=2))
    teacher = draw(logit_vectors(min_size=classes, max_size=classes, min_value=-2, max_value=2))
    return weight, bias, inputs, teacher


def _describe_layer(weight, bias):
    return f"Linear({len(weight[0])}->{len(weight)}) W={weight} b={vector(bias)}"


def too_slow(convergence):
    """A resolved fit that decays slower than its order allows: the search's notion of a
    violation. (Faster is fine: at special small inputs the next term can vanish too.)"""
    return convergence.resolved and convergence.slope > -convergence.order + SLOPE_TOLERANCE


def _search(measure, describe, strategy, context):
    """``measure(case)`` returns a :class:`~verify.convergence.Convergence` or ``None``."""

    def violated(case):
        convergence = measure(case)
        return convergence is not None and too_slow(convergence)

    found = find_counterexample(
        strategy, violated, seed=context.seed, max_examples=context.search_examples
    )
    if found is None:
        return None
    convergence = measure(found)
    return Counterexample(describe(found, convergence), convergence.error, SLOPE_TOLERANCE)


# -- [infinite-temperature] ------------------------------------------------------------------


def run_infinite_temperature_check(statement_id, context, *, limit=infinite_temperature_limit):
    """Fit the order of convergence of all parameter gradients, per drawn network."""
    groups, per_group = group_sizes(context.examples, _GROUPS)
    specs = draw_examples(network_specs(max_classes=10), groups, seed=context.seed)
    convergences, setup = [], []
    for group, spec in enumerate(specs):
        networks = StackedNetworks.build(
            spec,
            count=per_group,
            seed=context.seed * 7919 + group,
            dtype=context.dtype,
            device=context.device,
        )
        generator = context.generator(offset=4000 + group)
        inputs = context.randn(per_group, 8, *spec.input_shape, generator=generator)
        teacher = context.randn(per_group, 8, spec.classes, generator=generator) + context.randn(
            per_group, 1, 1, generator=generator, scale=2.0
        )
        differences, roundoff = parameter_gradient_differences(
            networks, inputs, teacher, TEMPERATURES, limit=limit
        )
        convergences += _convergences(differences, roundoff, TEMPERATURES, spec.classes)
        setup.append(f"{per_group} x {spec.describe()}")
    violated, error, tolerance = convergence_verdict(convergences, context.dtype)
    notes, unresolved = _summary(convergences, context)
    return conclude(
        statement_id,
        context,
        errors=[error],
        tolerances=[tolerance],
        violated=violated,
        examples=len(convergences),
        search=lambda: _search(
            lambda case: _small_gradient_case(case, context, limit),
            _describe_gradient_case,
            _small_cases(),
            context,
        ),
        notes=notes,
        unresolved=unresolved,
        setup=setup,
    )


def _small_gradient_case(case, context, limit):
    weight, bias, inputs, teacher = case
    networks = linear_networks(weight, bias, dtype=context.dtype, device=context.device)

    def as_tensor(values):
        return torch.tensor([[values]], dtype=context.dtype, device=context.device)

    differences, roundoff = parameter_gradient_differences(
        networks, as_tensor(inputs), as_tensor(teacher), TEMPERATURES, limit=limit
    )
    (convergence,) = _convergences(differences, roundoff, TEMPERATURES, len(bias))
    return convergence


def _describe_gradient_case(case, convergence):
    weight, bias, inputs, teacher = case
    return (
        f"{_describe_layer(weight, bias)}, input {vector(inputs)}, teacher {vector(teacher)}:"
        f" |grad L_KD - grad limit| has slope {convergence.slope:.3f} over T in "
        f"[{convergence.low:.3g}, {convergence.high:.3g}] (expected -{convergence.order}"
        f", tolerance {SLOPE_TOLERANCE})"
    )


@numeric_check("infinite-temperature")
def check_infinite_temperature(
    *, device="cpu", dtype=torch.float64, examples=16, seed=0, search_examples=None
):
    """[infinite-temperature] over ``examples`` drawn networks, T from 10 to 1e4."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_infinite_temperature_check("infinite-temperature", context)


# -- [hinton-zero-mean], [equal-mean-suffices] -----------------------------------------------


def default_initialization(student, teacher, *, zero_bias=False):
    """Leave PyTorch's initialization as it is (no equal means)."""
    return None


def run_trajectory_check(statement_id, context, *, reference_loss, initialization, steps=STEPS):
    """Compare KD trajectories at every temperature with ``reference_loss`` trajectories."""
    groups, per_group = group_sizes(context.examples, _GROUPS)
    cases = draw_examples(
        st.tuples(
            network_specs(max_classes=10),
            sgd_optimizers(min_learning_rate=1e-2, max_learning_rate=1e-1),
        ),
        groups,
        seed=context.seed,
    )
    convergences, setup = [], []
    for group, (spec, optimizer) in enumerate(cases):
        build = dict(count=per_group, dtype=context.dtype, device=context.device)
        student = StackedNetworks.build(spec, seed=context.seed * 7919 + group, **build)
        teacher = StackedNetworks.build(spec, seed=context.seed * 7919 + 5000 + group, **build)
        initialization(student, teacher, zero_bias=optimizer.options.get("weight_decay", 0.0) > 0)
        generator = context.generator(offset=5000 + group)

        def batches(step, spec=spec, generator=generator):
            return context.randn(per_group, 8, *spec.input_shape, generator=generator)

        differences, roundoff = trajectory_differences(
            student,
            teacher,
            optimizer,
            TEMPERATURES,
            batches,
            reference_loss=reference_loss,
            steps=steps,
        )
        convergences += _convergences(differences, roundoff, TEMPERATURES, spec.classes)
        setup.append(f"{per_group} x {spec.describe()}; {optimizer.describe()}, {steps} steps")
    violated, error, tolerance = convergence_verdict(convergences, context.dtype)
    notes, unresolved = _summary(convergences, context)
    strategy = st.tuples(_small_cases(), _small_cases(), st.integers(1, SEARCH_STEPS))
    return conclude(
        statement_id,
        context,
        errors=[error],
        tolerances=[tolerance],
        violated=violated,
        examples=len(convergences),
        search=lambda: _search(
            lambda case: _small_trajectory_case(case, context, reference_loss, initialization),
            _describe_trajectory_case,
            strategy,
            context,
        ),
        notes=notes,
        unresolved=unresolved,
        setup=setup,
    )


def _small_trajectory_case(case, context, reference_loss, initialization):
    (weight, bias, inputs, _), (teacher_weight, teacher_bias, _, _), steps = case
    if len(teacher_bias) != len(bias) or len(teacher_weight[0]) != len(weight[0]):
        return None
    student = linear_networks(weight, bias, dtype=context.dtype, device=context.device)
    teacher = linear_networks(
        teacher_weight, teacher_bias, dtype=context.dtype, device=context.device
    )
    initialization(student, teacher)
    optimizer = OptimizerSpec("sgd", (("lr", 0.1),))
    batch = torch.tensor([[inputs]], dtype=context.dtype, device=context.device)
    differences, roundoff = trajectory_differences(
        student,
        teacher,
        optimizer,
        TEMPERATURES,
        lambda step: batch,
        reference_loss=reference_loss,
        steps=steps,
    )
    (convergence,) = _convergences(differences, roundoff, TEMPERATURES, len(bias))
    return convergence


def _describe_trajectory_case(case, convergence):
    (weight, bias, inputs, _), (teacher_weight, teacher_bias, _, _), steps = case
    return (
        f"SGD(lr=0.1), {steps} step{'s' if steps > 1 else ''} on input {vector(inputs)}, "
        f"student {_describe_layer(weight, bias)}, teacher "
        f"{_describe_layer(teacher_weight, teacher_bias)}: the distance between the KD and "
        f"logits-matching trajectories has slope {convergence.slope:.3f} over T in "
        f"[{convergence.low:.3g}, {convergence.high:.3g}] (expected -{convergence.order}"
        f", tolerance {SLOPE_TOLERANCE})"
    )


@numeric_check("hinton-zero-mean")
def check_hinton_zero_mean(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """[hinton-zero-mean]: KD at large T vs logits matching on zero-mean-normalized logits,
    ``examples`` drawn networks trained for 20 SGD steps."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_trajectory_check(
        "hinton-zero-mean",
        context,
        reference_loss=zero_mean_logits_matching,
        initialization=default_initialization,
    )


@numeric_check("equal-mean-suffices")
def check_equal_mean_suffices(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """[equal-mean-suffices]: KD at large T vs plain logits matching after equal-mean
    initialization, ``examples`` drawn networks trained for 20 SGD steps."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_trajectory_check(
        "equal-mean-suffices",
        context,
        reference_loss=logits_matching_loss,
        initialization=equal_mean_initialization,
    )
