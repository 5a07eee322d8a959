r"""Training many networks at once, tracking the output layer's class means and their
rounding bound.

:func:`train` runs ``steps`` optimizer steps on :class:`~verify.networks.StackedNetworks` and
records, after every step, the class means :math:`\bar w = \frac1N 1^T W` (shape ``[M, d]``)
and :math:`\bar b` (shape ``[M]``), and a bound on how far rounding alone can have moved
them, accumulated step by step from the magnitudes actually seen
(:func:`mean_rounding_bound`).

Small explicit cases for counterexamples (one linear layer with hand-readable weights) use
the same function with ``M = 1``.
"""

from dataclasses import dataclass, field

import torch

from ..networks import NetworkSpec, StackedNetworks
from ..tolerances import UPDATE_OPERATIONS, rounding_bound, softmax_gradient_operations

__all__ = ["Trajectory", "train", "linear_networks", "mean_rounding_bound"]


@dataclass
class Trajectory:
    """Class means and rounding bounds after steps ``0..steps`` (index 0: before training).

    ``weight_means[t]`` is ``[M, d]``, ``bias_means[t]`` is ``[M]`` (``None`` without bias),
    ``weight_bounds[t]`` and ``bias_bounds[t]`` are ``[M]``, and ``evaluations[t]`` is
    whatever the ``evaluate`` callback of :func:`train` returned.
    """

    weight_means: list = field(default_factory=list)
    bias_means: list = field(default_factory=list)
    weight_bounds: list = field(default_factory=list)
    bias_bounds: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)


def mean_rounding_bound(
    *,
    dtype,
    classes,
    parameter,
    delta,
    gradient_magnitude,
    gradient_sum_bound,
    learning_rate,
    momentum,
    weight_decay,
):
    r"""Bound on how far one optimizer step's rounding moves a class mean, per network.

    Every coordinate's update rounds with error at most :math:`\varepsilon` times
    :data:`~verify.tolerances.UPDATE_OPERATIONS` times the magnitudes involved: the parameter,
    the step actually taken, and :math:`\eta(|g| + \lambda|w|)` for the gradient and weight
    decay; a mean of such errors is bounded by their maximum. Momentum keeps an error alive
    with weights :math:`\mu^k` summing to :math:`1/(1-\mu)`. On top, the gradient's class sum
    is only zero up to ``gradient_sum_bound``, which moves the mean by :math:`\eta/N` of it
    per step (again times :math:`1/(1-\mu)`).
    All arguments but the scalars are ``[M]`` tensors of per-network maxima.
    """
    persistence = 1.0 / (1.0 - momentum)
    magnitude = (
        parameter
        + delta
        + learning_rate * persistence * (gradient_magnitude + weight_decay * parameter)
    )
    return (
        rounding_bound(dtype=dtype, operations=UPDATE_OPERATIONS, magnitude=magnitude)
        + learning_rate * persistence * gradient_sum_bound / classes
    )


def _means(networks):
    weight = networks.output_weight.detach()
    bias = networks.output_bias
    return weight.mean(1), None if bias is None else bias.detach().mean(1)


def _mean_error(dtype, classes, tensor):
    """Rounding of a computed class mean: ``classes`` roundings relative to the largest entry."""
    reduce_dims = tuple(range(1, tensor.ndim))
    return rounding_bound(
        dtype=dtype, operations=classes + 2, magnitude=tensor.detach().abs().amax(reduce_dims)
    )


def train(
    networks,
    optimizer_spec,
    objective,
    batches,
    *,
    steps,
    evaluate=None,
    initial_weight_bound=None,
    initial_bias_bound=None,
):
    """Train ``networks`` for ``steps`` steps and record a :class:`Trajectory`.

    Parameters
    ==========

    networks : StackedNetworks
    optimizer_spec : OptimizerSpec
    objective : Loss
        The per-example loss; each network minimises its batch mean.
    batches : callable
        ``batches(step)`` returns ``(inputs [M, B, ...], problem)``, the problem holding the
        teacher logits, labels, targets and temperatures, shape ``[M, B, ...]``.
    evaluate : callable, optional
        ``evaluate(step, networks, trajectory)`` after every step (and before the first).
    initial_weight_bound, initial_bias_bound : tensor ``[M]``, optional
        Rounding already in the means before training (from an initialization), added on.
    """
    dtype = networks.output_weight.dtype
    classes = networks.spec.classes
    optimizer = optimizer_spec.build(networks.leaves())
    options = optimizer_spec.options
    learning_rate = optimizer_spec.learning_rate
    momentum = optimizer_spec.momentum
    weight_decay = options.get("weight_decay", 0.0)
    weight, bias = networks.output_weight, networks.output_bias
    zero = torch.zeros(networks.count, dtype=dtype, device=weight.device)
    accumulated_weight = zero + (0 if initial_weight_bound is None else initial_weight_bound)
    accumulated_bias = zero + (0 if initial_bias_bound is None else initial_bias_bound)
    initial_weight_error = _mean_error(dtype, classes, weight)
    initial_bias_error = _mean_error(dtype, classes, bias) if bias is not None else zero

    trajectory = Trajectory()

    def record():
        weight_mean, bias_mean = _means(networks)
        trajectory.weight_means.append(weight_mean)
        trajectory.bias_means.append(bias_mean)
        trajectory.weight_bounds.append(
            accumulated_weight + initial_weight_error + _mean_error(dtype, classes, weight)
        )
        trajectory.bias_bounds.append(
            accumulated_bias
            + initial_bias_error
            + (_mean_error(dtype, classes, bias) if bias is not None else zero)
        )
        if evaluate is not None:
            trajectory.evaluations.append(
                evaluate(len(trajectory.weight_means) - 1, networks, trajectory)
            )

    record()
    for step in range(steps):
        inputs, problem = batches(step)
        features, logits = networks.forward(inputs)
        losses = objective(problem.with_student(logits)).mean(-1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()

        with torch.no_grad():
            seen = problem.with_student(logits.detach())
            batch = logits.shape[1]
            magnitude, arguments = objective.magnitudes(seen)  # [M, B] each
            arguments = arguments.amax(1)  # [M]
            operations = (
                softmax_gradient_operations(classes=classes, argument_magnitude=arguments) + batch
            )
            weight_gradient = (
                torch.einsum("mb,mbj->mj", magnitude, features.detach().abs()) / batch
            ).amax(1)
            bias_gradient = magnitude.sum(1) / batch
            before_weight = weight.detach().clone()
            before_bias = bias.detach().clone() if bias is not None else None

        optimizer.step()

        with torch.no_grad():
            common = {
                "dtype": dtype,
                "classes": classes,
                "learning_rate": learning_rate,
                "momentum": momentum,
                "weight_decay": weight_decay,
            }
            accumulated_weight = accumulated_weight + mean_rounding_bound(
                parameter=before_weight.abs().amax((1, 2)),
                delta=(weight.detach() - before_weight).abs().amax((1, 2)),
                gradient_magnitude=weight_gradient,
                gradient_sum_bound=rounding_bound(
                    dtype=dtype, operations=operations, magnitude=weight_gradient
                ),
                **common,
            )
            if bias is not None:
                accumulated_bias = accumulated_bias + mean_rounding_bound(
                    parameter=before_bias.abs().amax(1),
                    delta=(bias.detach() - before_bias).abs().amax(1),
                    gradient_magnitude=bias_gradient,
                    gradient_sum_bound=rounding_bound(
                        dtype=dtype, operations=operations, magnitude=bias_gradient
                    ),
                    **common,
                )
        record()
    return trajectory


def linear_networks(weight, bias, *, dtype, device):
    """One network, a single ``nn.Linear`` with the given weight ``[N][d]`` and bias ``[N]``,
    as :class:`StackedNetworks` (``M = 1``)."""
    classes, features = len(weight), len(weight[0])
    spec = NetworkSpec(
        kind="mlp",
        input_shape=(features,),
        widths=(),
        activation="relu",
        bias=bias is not None,
        normalization="none",
        classes=classes,
    )
    module = spec.build(dtype=dtype)
    with torch.no_grad():
        module.output.weight.copy_(torch.tensor(weight, dtype=dtype))
        if bias is not None:
            module.output.bias.copy_(torch.tensor(bias, dtype=dtype))
    networks = StackedNetworks(spec, [module])
    if torch.device(device).type != "cpu":
        networks.to(device)
    return networks
