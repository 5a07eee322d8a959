r"""[mean-preservation]: SGD keeps the output layer's class means; adaptive optimizers do not.

For an output layer :math:`z = Wh + b` trained with a shift invariant loss, the class means
:math:`\bar w = \frac1N 1^T W` and :math:`\bar b` stay where they are under SGD with
momentum, dampening and Nesterov, for every architecture; weight decay multiplies them by
:math:`(1 - \eta\lambda)` per step (with momentum, by the same linear recursion applied to
the mean; :meth:`~verify.optimizers.OptimizerSpec.predicted_mean_factors`).

The check trains hypothesis-drawn networks (MLPs and convnets, many per architecture, stacked
with :mod:`torch.func`) for 20 steps with real ``torch.optim`` optimizers on drawn shift
invariant losses, and compares the means after every step with the prediction, against the
rounding bound accumulated along the way (:func:`~verify.checks._training.train`).

Adam, AdamW, RMSprop and Adagrad normalise every coordinate separately, which breaks the
statement; the same measurement refutes it, and a search over one-layer networks with
explicit small weights shrinks the refutation to a readable counterexample.
"""

from dataclasses import replace

import torch
from hypothesis import strategies as st

from ..losses import LOSSES, DistillationProblem
from ..networks import StackedNetworks
from ..optimizers import OptimizerSpec
from ..search import draw_examples, find_counterexample
from ..strategies import (
    adaptive_optimizers,
    logit_vectors,
    network_specs,
    sgd_optimizers,
    temperatures,
)
from ._common import (
    CheckContext,
    Counterexample,
    conclude,
    group_sizes,
    numeric_check,
    ratios,
    vector,
    violations,
)
from ._training import linear_networks, train

__all__ = [
    "mean_drifts",
    "run_mean_preservation_check",
    "check_mean_preservation",
    "check_mean_preservation_adam",
    "check_mean_preservation_adamw",
    "check_mean_preservation_rmsprop",
    "check_mean_preservation_adagrad",
    "check_mean_preservation_momentum_decay_factor",
    "power_law_prediction",
]

STEPS = 20
#: Counterexample searches train for at most this many steps (each is one hypothesis example).
SEARCH_STEPS = 5
_GROUPS = 4


def mean_drifts(trajectory, factors):
    r"""``(errors, tolerances)`` of shape ``[steps + 1, M, 2]``: how far :math:`\bar w` (max over
    features) and :math:`\bar b` moved from the prediction :math:`f_t\,\bar w_0`, and the
    accumulated rounding bound, widened by :math:`1 + |f_t|` for the rounding of the
    predicted value's :math:`\bar w_0`."""
    factors = [1.0] + list(factors)
    errors, tolerances = [], []
    for step, factor in enumerate(factors):
        weight_error = (
            (trajectory.weight_means[step] - factor * trajectory.weight_means[0]).abs().amax(-1)
        )
        bias_mean = trajectory.bias_means[step]
        bias_error = (
            torch.zeros_like(weight_error)
            if bias_mean is None
            else (bias_mean - factor * trajectory.bias_means[0]).abs()
        )
        widen = 1.0 + abs(factor)
        errors.append(torch.stack([weight_error, bias_error], -1))
        tolerances.append(
            torch.stack(
                [trajectory.weight_bounds[step] * widen, trajectory.bias_bounds[step] * widen], -1
            )
        )
    return torch.stack(errors), torch.stack(tolerances)


def _random_batches(spec, count, temperature, context, offset, batch=8):
    generator = context.generator(offset=offset)

    def batches(step):
        shape = (count, batch)
        inputs = context.randn(*shape, *spec.input_shape, generator=generator)
        teacher = context.randn(*shape, spec.classes, generator=generator, scale=2.0)
        labels = torch.randint(spec.classes, shape, generator=generator).to(context.device)
        targets = torch.softmax(context.randn(*shape, spec.classes, generator=generator), -1)
        temperatures_ = torch.full(shape, temperature, dtype=context.dtype, device=context.device)
        return inputs, DistillationProblem(teacher, teacher, labels, targets, temperatures_)

    return batches


@st.composite
def _small_cases(draw, optimizers, objectives):
    optimizer = draw(optimizers)
    objective = draw(st.sampled_from(objectives))
    classes = draw(st.integers(2, 4))
    features = draw(st.integers(1, 2))
    weight = [draw(logit_vectors(min_size=features, max_size=features)) for _ in range(classes)]
    bias = draw(logit_vectors(min_size=classes, max_size=classes))
    inputs = draw(logit_vectors(min_size=features, max_size=features))
    teacher = draw(logit_vectors(min_size=classes, max_size=classes))
    label = draw(st.integers(0, classes - 1))
    temperature = draw(temperatures(min_value=0.5, max_value=10.0))
    steps = draw(st.integers(1, SEARCH_STEPS))
    return optimizer, objective, weight, bias, inputs, teacher, label, temperature, steps


def _predicted(optimizer, steps):
    """What [mean-preservation] predicts: the optimizer's own recursion on the means."""
    return optimizer.predicted_mean_factors(steps)


def power_law_prediction(optimizer, steps):
    """The refuted claim: weight decay scales the means by (1 - eta lambda) per step, with
    momentum too."""
    decay = 1 - optimizer.learning_rate * optimizer.options.get("weight_decay", 0.0)
    return [decay ** (t + 1) for t in range(steps)]


def _run_small_case(case, context, predictor=_predicted):
    optimizer, objective, weight, bias, inputs, teacher, label, temperature, steps = case
    networks = linear_networks(weight, bias, dtype=context.dtype, device=context.device)

    def as_tensor(values):
        return torch.tensor([[values]], dtype=context.dtype, device=context.device)

    teacher_logits = as_tensor(teacher)
    problem = DistillationProblem(
        teacher_logits,
        teacher_logits,
        torch.tensor([[label]], device=context.device),
        torch.softmax(teacher_logits, -1),
        torch.full((1, 1), temperature, dtype=context.dtype, device=context.device),
    )
    trajectory = train(
        networks, optimizer, objective, lambda step: (as_tensor(inputs), problem), steps=steps
    )
    errors, tolerances = mean_drifts(trajectory, predictor(optimizer, steps))
    return errors[-1, 0], tolerances[-1, 0]


def _describe_small_case(case, errors, tolerances):
    optimizer, objective, weight, bias, inputs, teacher, label, temperature, steps = case
    which = int(torch.argmax(ratios(errors, tolerances)))
    moved = ["mean row weight", "mean bias"][which]
    rows = [[float(w) for w in row] for row in weight]
    layer = f"Linear({len(weight[0])}->{len(weight)}) from W={rows}, b={vector(bias)}"
    return Counterexample(
        f"{optimizer.describe()}, {objective.name} at T={temperature:g}, {layer}, input "
        f"{vector(inputs)}, teacher {vector(teacher)}"
        + (f", label {label}" if objective.uses_labels else "")
        + f": after {steps} step{'s' if steps > 1 else ''} the {moved} is off the "
        f"prediction by {float(errors[which]):.3g} (tolerance {float(tolerances[which]):.2g})",
        float(errors[which]),
        float(tolerances[which]),
    )


def _search(optimizers, objectives, context, predictor=_predicted):
    """A shrunk small case whose violation is real, not rounding that an adaptive optimizer
    blew up: it must also show, to within 1 %, in the other precision (float32 vs float64).
    (Adam turns a rounding-level gradient ``c * (1, ..., 1)`` into a step of size ``lr``.)"""
    other = replace(
        context, dtype=torch.float32 if context.dtype == torch.float64 else torch.float64
    )

    def violated(case):
        errors, tolerances = _run_small_case(case, context, predictor)
        if not bool(violations(errors, tolerances).any()):
            return False
        other_errors, _ = _run_small_case(case, other, predictor)
        return bool(((other_errors.to(errors) - errors).abs() <= 0.01 * errors).all())

    strategy = _small_cases(optimizers, objectives)
    found = find_counterexample(
        strategy, violated, seed=context.seed, max_examples=context.search_examples
    )
    if found is None:
        return None
    return _describe_small_case(found, *_run_small_case(found, context, predictor))


def run_mean_preservation_check(
    statement_id, optimizers, context, *, objectives=None, predictor=_predicted, steps=STEPS
):
    """Train ``context.examples`` drawn networks with optimizers drawn from the strategy
    ``optimizers`` and compare the class means with the prediction after every step."""
    objectives = list(objectives or LOSSES.values())
    groups, per_group = group_sizes(context.examples, _GROUPS)
    cases = draw_examples(
        st.tuples(
            network_specs(max_classes=10),
            optimizers,
            st.sampled_from(objectives),
            temperatures(min_value=0.5, max_value=50.0),
        ),
        groups,
        seed=context.seed,
    )
    errors, tolerances, setup = [], [], []
    for group, (spec, optimizer, objective, temperature) in enumerate(cases):
        networks = StackedNetworks.build(
            spec,
            count=per_group,
            seed=context.seed * 7919 + group,
            dtype=context.dtype,
            device=context.device,
        )
        trajectory = train(
            networks,
            optimizer,
            objective,
            _random_batches(spec, per_group, temperature, context, 2000 + group),
            steps=steps,
        )
        group_errors, group_tolerances = mean_drifts(trajectory, predictor(optimizer, steps))
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
        search=lambda: _search(optimizers, objectives, context, predictor),
        examples=per_group * len(cases),
        setup=setup,
        notes=[f"{per_group * len(cases)} networks in {len(cases)} groups, {steps} steps each"],
    )


@numeric_check("mean-preservation")
def check_mean_preservation(
    *, device="cpu", dtype=torch.float64, examples=16, seed=0, search_examples=None
):
    """[mean-preservation] under SGD (momentum, dampening, Nesterov, weight decay), over
    ``examples`` networks trained for 20 steps."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_mean_preservation_check("mean-preservation", sgd_optimizers(), context)


def _adaptive_check(name):
    def check(*, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None):
        context = CheckContext.create(
            device=device,
            dtype=dtype,
            examples=examples,
            seed=seed,
            search_examples=search_examples,
        )
        return run_mean_preservation_check(
            f"mean-preservation/{name}", adaptive_optimizers(names=(name,)), context
        )

    check.__name__ = f"check_mean_preservation_{name}"
    check.__qualname__ = check.__name__
    numeric_check(f"mean-preservation/{name}")(check)
    check.__doc__ = (
        f"Refutes [mean-preservation] for {name}: ``examples`` networks trained "
        f"for 20 steps, and a shrunk one-layer counterexample."
    )
    return check


@numeric_check("mean-preservation/momentum-decay-factor")
def check_mean_preservation_momentum_decay_factor(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """Refutes "weight decay scales the means by (1 - eta lambda)^t" under SGD with momentum:
    ``examples`` networks trained with momentum and weight decay against that prediction."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    optimizers = st.builds(
        lambda lr, momentum, decay: OptimizerSpec(
            "sgd", (("lr", lr), ("momentum", momentum), ("weight_decay", decay))
        ),
        st.sampled_from([0.05, 0.1]),
        st.sampled_from([0.5, 0.9]),
        st.sampled_from([0.05, 0.1]),
    )
    return run_mean_preservation_check(
        "mean-preservation/momentum-decay-factor",
        optimizers,
        context,
        predictor=power_law_prediction,
    )


check_mean_preservation_adam = _adaptive_check("adam")
check_mean_preservation_adamw = _adaptive_check("adamw")
check_mean_preservation_rmsprop = _adaptive_check("rmsprop")
check_mean_preservation_adagrad = _adaptive_check("adagrad")
