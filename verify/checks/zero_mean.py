r"""[zero-mean-gradient] and its refutations for losses without shift invariance.

For every loss that sees the logits only through :math:`\mathrm{softmax}(z/T)`,
:math:`\sum_i \partial\ell/\partial z_i = 0`. The check measures that sum

* at the logits, for batches of hypothesis-drawn logits (class counts 2..1000, scales
  1e-3..1e3, large common offsets, temperatures 0.1..1e4) under hard and soft cross-entropy,
  :math:`L_{KD}`, the mixture :math:`\alpha\,\mathrm{CE} + (1-\alpha)L_{KD}` and label
  smoothing, every batch in one autograd call;
* at the output layer :math:`z = Wh + b` of hypothesis-drawn networks, through autograd:
  :math:`\sum_i \partial L/\partial W_{ij} = 0` and :math:`\sum_i \partial L/\partial b_i = 0`,
  many networks per call with :mod:`torch.func`.

Each sum is compared with :func:`verify.tolerances.class_sum_tolerance` for its own example.
Sigmoid/BCE distillation and logits matching are not shift invariant: the same measurement
refutes the statement for them, with a shrunk counterexample.
"""

import torch
from hypothesis import strategies as st

from ..losses import CONTROL_LOSSES, LOSSES, DistillationProblem
from ..networks import StackedNetworks
from ..search import draw_examples, find_counterexample
from ..strategies import distillation_problems, logit_vectors, network_specs, temperatures
from ..tolerances import class_sum_tolerance, rounding_bound, softmax_gradient_operations
from ._common import CheckContext, Counterexample, conclude, group_sizes, numeric_check, violations

__all__ = [
    "logit_gradient_sums",
    "output_layer_gradient_sums",
    "run_zero_mean_check",
    "check_zero_mean_gradient",
    "check_zero_mean_gradient_logits_matching",
    "check_zero_mean_gradient_sigmoid_bce",
]

_PROBLEMS = 16
_NETWORK_GROUPS = 4
_NETWORK_BATCH = 8


def logit_gradient_sums(objective, problem):
    r"""``(errors, tolerances)``, each of shape ``[...]``:
    :math:`|\sum_i \partial\ell/\partial z_i|` per example,
    from one autograd call over the whole batch, and its tolerance."""
    student = problem.student.detach().requires_grad_(True)
    loss = objective(problem.with_student(student)).sum()
    (gradient,) = torch.autograd.grad(loss, student)
    errors = gradient.sum(-1).abs()
    magnitude, arguments = objective.magnitudes(problem.with_student(problem.student.detach()))
    tolerances = class_sum_tolerance(
        dtype=gradient.dtype,
        classes=problem.classes,
        argument_magnitude=arguments,
        gradient_magnitude=magnitude,
    )
    # Where the loss is not defined (standardized logits of equal logits) there is no claim.
    defined = objective.defined(problem)
    errors = torch.where(defined, errors.detach(), torch.zeros_like(errors))
    tolerances = torch.where(
        defined, torch.as_tensor(tolerances).to(errors), torch.ones_like(errors)
    )
    return errors, tolerances


def output_layer_gradient_sums(objective, networks, inputs, problem, *, forward=None):
    r"""``(errors, tolerances)`` of shape ``[M, d + 1]`` for ``M`` stacked networks.

    Column ``j < d``: :math:`|\sum_i \partial L/\partial W_{ij}|`; column ``d``:
    :math:`|\sum_i \partial L/\partial b_i|` (zero columns without bias). ``L`` is the batch
    mean of ``objective`` on the networks' logits; ``problem`` supplies the teacher logits,
    labels, targets and temperatures, of shape ``[M, B, ...]``.

    The tolerance adds to the per-example bound of :func:`logit_gradient_sums`, weighted by
    :math:`|h_{bj}|`, the ``B`` roundings of the batch reduction in the weight gradient.
    ``forward`` is ``networks.forward(inputs)`` computed once for several objectives (its
    graph is kept).
    """
    features, logits = forward if forward is not None else networks.forward(inputs)
    problem = problem.with_student(logits)
    losses = objective(problem).mean(-1)
    weight, bias = networks.output_weight, networks.output_bias
    leaves = [weight] + ([bias] if bias is not None else [])
    gradients = torch.autograd.grad(losses.sum(), leaves, retain_graph=forward is not None)
    weight_sums = gradients[0].sum(1).abs()
    if bias is not None:
        bias_sums = gradients[1].sum(1, keepdim=True).abs()
    else:
        bias_sums = torch.zeros_like(weight_sums[:, :1])
    errors = torch.cat([weight_sums, bias_sums], dim=1).detach()
    defined = objective.defined(problem.with_student(logits.detach())).all(1, keepdim=True)

    detached = problem.with_student(logits.detach())
    batch = logits.shape[1]
    magnitude, arguments = objective.magnitudes(detached)  # [M, B] each
    arguments = arguments.amax(1)  # [M]
    operations = (
        softmax_gradient_operations(classes=problem.classes, argument_magnitude=arguments) + batch
    )
    weighted = torch.einsum("mb,mbj->mj", magnitude, features.detach().abs()) / batch
    bias_magnitude = magnitude.sum(1, keepdim=True) / batch
    tolerances = rounding_bound(
        dtype=logits.dtype,
        operations=operations.unsqueeze(1),
        magnitude=torch.cat([weighted, bias_magnitude], dim=1),
    )
    errors = torch.where(defined, errors, torch.zeros_like(errors))
    tolerances = torch.where(defined, tolerances, torch.ones_like(tolerances))
    return errors, tolerances


@st.composite
def _small_problems(draw, objectives):
    objective = draw(st.sampled_from(objectives))
    classes = draw(st.integers(2, 5))
    student = draw(logit_vectors(min_size=classes, max_size=classes))
    teacher = draw(logit_vectors(min_size=classes, max_size=classes))
    label = draw(st.integers(0, classes - 1))
    temperature = draw(temperatures(min_value=0.5, max_value=100.0))
    return objective, (student, teacher, label, temperature)


def _explicit_problem(values, context):
    student, teacher, label, temperature = values
    student = torch.tensor([student], dtype=context.dtype, device=context.device)
    teacher = torch.tensor([teacher], dtype=context.dtype, device=context.device)
    return DistillationProblem(
        student,
        teacher,
        torch.tensor([label], device=context.device),
        torch.softmax(teacher, -1),
        torch.tensor([temperature], dtype=context.dtype, device=context.device),
    )


def _search(objectives, context):
    def violated(candidate):
        objective, values = candidate
        errors, tolerances = logit_gradient_sums(objective, _explicit_problem(values, context))
        return bool(violations(errors[0], tolerances[0]))

    found = find_counterexample(
        _small_problems(objectives),
        violated,
        seed=context.seed,
        max_examples=context.search_examples,
    )
    if found is None:
        return None
    objective, values = found
    problem = _explicit_problem(values, context)
    errors, tolerances = logit_gradient_sums(objective, problem)
    label = f", label {values[2]}" if objective.uses_labels else ""
    return Counterexample(
        f"{objective.name}, {problem.describe()}{label} -> sum of the logit gradient "
        f"{float(errors[0]):.3g} (tolerance {float(tolerances[0]):.2g})",
        float(errors[0]),
        float(tolerances[0]),
    )


def _network_cases(objectives, context, count):
    """Output-layer sums for ``count`` networks in a few architecture groups."""
    groups, per_group = group_sizes(count, _NETWORK_GROUPS)
    specs = draw_examples(network_specs(max_classes=12), groups, seed=context.seed)
    errors, tolerances, tried = [], [], 0
    for group, spec in enumerate(specs):
        generator = context.generator(offset=1000 + group)
        networks = StackedNetworks.build(
            spec,
            count=per_group,
            seed=context.seed * 7919 + group,
            dtype=context.dtype,
            device=context.device,
        )
        shape = (per_group, _NETWORK_BATCH)
        inputs = context.randn(*shape, *spec.input_shape, generator=generator)
        teacher = context.randn(*shape, spec.classes, generator=generator, scale=2.0)
        labels = torch.randint(spec.classes, shape, generator=generator).to(context.device)
        targets = torch.softmax(context.randn(*shape, spec.classes, generator=generator), -1)
        temperature = 10 ** (2 * context.rand(per_group, 1, generator=generator) - 0.5)
        problem = DistillationProblem(
            teacher, teacher, labels, targets, temperature.expand(*shape).contiguous()
        )
        forward = networks.forward(inputs)
        for objective in objectives:
            group_errors, group_tolerances = output_layer_gradient_sums(
                objective, networks, inputs, problem, forward=forward
            )
            errors.append(group_errors.flatten())
            tolerances.append(group_tolerances.flatten())
        tried += per_group
    return torch.cat(errors), torch.cat(tolerances), tried, specs


def run_zero_mean_check(statement_id, objectives, context, *, networks=True):
    """Sweep ``objectives`` over drawn logits (and, if ``networks``, output layers), then
    search small explicit logits for a shrunk counterexample."""
    objectives = list(objectives)
    problems = min(_PROBLEMS, context.examples)
    batch = max(1, context.examples // problems)
    drawn = draw_examples(
        distillation_problems(
            min_batch_size=batch, max_batch_size=batch, dtype=context.dtype, device=context.device
        ),
        problems,
        seed=context.seed,
    )
    errors, tolerances = [], []
    for problem in drawn:
        for objective in objectives:
            problem_errors, problem_tolerances = logit_gradient_sums(objective, problem)
            errors.append(problem_errors.flatten())
            tolerances.append(problem_tolerances.flatten())
    vectors = sum(problem.student.shape[0] for problem in drawn)
    notes = [
        f"{vectors} logit vectors in {len(drawn)} batches, each under "
        f"{', '.join(o.name for o in objectives)}"
    ]
    examples, setup = vectors, []
    if networks:
        network_errors, network_tolerances, tried, specs = _network_cases(
            objectives, context, max(_NETWORK_GROUPS, min(2048, context.examples // 64))
        )
        errors.append(network_errors)
        tolerances.append(network_tolerances)
        examples += tried
        notes.append(f"{tried} networks at the output layer, {len(specs)} architectures")
        setup += [spec.describe() for spec in specs]
    return conclude(
        statement_id,
        context,
        errors=torch.cat(errors),
        tolerances=torch.cat(tolerances),
        search=lambda: _search(objectives, context),
        examples=examples,
        notes=notes,
        setup=setup,
    )


@numeric_check("zero-mean-gradient")
def check_zero_mean_gradient(
    *, device="cpu", dtype=torch.float64, examples=512, seed=0, search_examples=None
):
    """[zero-mean-gradient] for hard and soft CE, L_KD, their mixture and label smoothing.

    ``examples`` logit vectors, plus ``examples // 64`` networks at the output layer.
    """
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_zero_mean_check("zero-mean-gradient", LOSSES.values(), context)


@numeric_check("zero-mean-gradient/logits-matching")
def check_zero_mean_gradient_logits_matching(
    *, device="cpu", dtype=torch.float64, examples=1024, seed=0, search_examples=None
):
    """Refutes [zero-mean-gradient] for logits matching, which is not shift invariant."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_zero_mean_check(
        "zero-mean-gradient/logits-matching",
        [CONTROL_LOSSES["logits-matching"]],
        context,
        networks=False,
    )


@numeric_check("zero-mean-gradient/sigmoid-bce")
def check_zero_mean_gradient_sigmoid_bce(
    *, device="cpu", dtype=torch.float64, examples=1024, seed=0, search_examples=None
):
    """Refutes [zero-mean-gradient] for sigmoid/BCE distillation, which is not shift invariant."""
    context = CheckContext.create(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    return run_zero_mean_check(
        "zero-mean-gradient/sigmoid-bce", [CONTROL_LOSSES["sigmoid-bce"]], context, networks=False
    )
