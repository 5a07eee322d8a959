r"""Training the reference model and measuring how far its head's class sums drift.

The reference model (:class:`ReferenceModel`) is the smallest network that has everything the
atlas talks about: a body ``Linear(6, 5) + tanh`` and a head ``Linear(5, N)`` (``N = 4`` by
default), the head initialised with zero class sums :math:`1^T W = 0`, :math:`1^T b = 0`.
A run (:func:`measure_drift`) trains ``networks`` such models (one per seed) for ``steps``
steps with the optimizer a factory builds, on KD at ``T = 2`` plus half a hard-label
cross-entropy (both shift invariant: [zero-mean-gradient]), with random inputs and teacher
logits, and records after every step the largest :math:`|1^T W|` (over the features) and
:math:`|1^T b|`.

The floor
=========

How far round-off alone can move the class sums, accumulated over the steps from the
magnitudes seen (docs/optimizers.md):

.. math::

    f_t = f_{t-1} + \varepsilon\, N\, K\, (\max|W_{t-1}| + \max|\Delta W_t|),
    \qquad K = (P + 2N + S + U)\, A,

plus :math:`\varepsilon N \max|W_t|` for computing the class sum itself. ``N`` roundings
of a class sum; per coordinate of an update at most ``K`` relative roundings: ``P`` (the head's
coordinates, the longest inner product a shipped rule takes: L-BFGS's two-loop over the flat
parameters, Muon's Gram matrices, LARS' norms), ``2N + S`` for the softmax gradient's own class
sum (:func:`~verify.tolerances.softmax_gradient_operations`), ``U`` for the update
(:data:`~verify.tolerances.UPDATE_OPERATIONS`). ``A = 1``, except for a rule that iterates
Newton–Schulz in the parameters' precision: an error along :math:`1` grows by Muon's slope at
0 at every iteration, :math:`A = a^5 = 3.4445^5 \approx 488` over five
([atlas-left-invariant]).

Examples
========

>>> import torch
>>> drift = measure_drift(lambda params: torch.optim.SGD(params, lr=0.1), steps=5)
>>> drift.verdict, drift.weight <= drift.weight_floor
('preserves', True)
>>> measure_drift(lambda params: torch.optim.Adam(params, lr=0.01), steps=5).verdict
'breaks'
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .._errors import check_argument, check_positive_integer
from ..tolerances import SOFTMAX_CHAIN_OPERATIONS, UPDATE_OPERATIONS, machine_epsilon

__all__ = [
    "ReferenceModel",
    "JointOptimizer",
    "Drift",
    "measure_drift",
    "NEWTON_SCHULZ_AMPLIFICATION",
    "STEPS",
    "NETWORKS",
]

#: Muon's slope at 0 to the power of its five iterations: how much an error along 1 can grow.
NEWTON_SCHULZ_AMPLIFICATION = 3.4445**5
#: Steps and networks (seeds) of a default run.
STEPS = 20
NETWORKS = 2
_INPUTS, _FEATURES, _BATCH, _TEMPERATURE = 6, 5, 16, 2.0


class ReferenceModel(nn.Module):
    """``body = Linear(6, 5) + tanh``, ``head = Linear(5, classes)`` with zero class sums.

    ``forward(x)`` returns the logits. ``bias=False`` drops the head's bias (for optimizers
    that take only matrices, such as ``torch.optim.Muon``).
    """

    def __init__(self, *, classes=4, bias=True, seed=0, dtype=torch.float64):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = nn.Sequential(nn.Linear(_INPUTS, _FEATURES), nn.Tanh())
            self.head = nn.Linear(_FEATURES, classes, bias=bias)
        self.to(dtype)
        with torch.no_grad():
            self.head.weight.sub_(self.head.weight.mean(0))
            if bias:
                self.head.bias.sub_(self.head.bias.mean())

    def forward(self, inputs):
        return self.head(self.body(inputs))


@dataclass(frozen=True)
class Drift:
    """The largest class sums seen (``weight``: :math:`\\max|1^T W|`, ``bias``:
    :math:`\\max|1^T b|`) and their round-off floors; per step in ``weight_steps`` and
    ``bias_steps`` (index 0: before training)."""

    weight: float
    bias: float
    weight_floor: float
    bias_floor: float
    weight_steps: tuple = field(default=(), repr=False)
    bias_steps: tuple = field(default=(), repr=False)
    exceeded: bool = False

    @property
    def verdict(self):
        """``"breaks"`` if some network's class sum left its own floor (a nonfinite one
        always does), else ``"preserves"``."""
        return "breaks" if self.exceeded else "preserves"

    @property
    def floor(self):
        return max(self.weight_floor, self.bias_floor)


def _loss(logits, teacher, labels):
    log_q = torch.log_softmax(logits / _TEMPERATURE, -1)
    p = torch.softmax(teacher / _TEMPERATURE, -1)
    kd = _TEMPERATURE**2 * (p * (torch.log(p) - log_q)).sum(-1).mean()
    return kd + 0.5 * nn.functional.cross_entropy(logits, labels)


def _operations(head, amplification):
    classes = head.weight.shape[0]
    parameters = sum(t.numel() for t in _head_tensors(head).values())
    chain = parameters + 2 * classes + SOFTMAX_CHAIN_OPERATIONS + UPDATE_OPERATIONS
    return chain * amplification


def measure_drift(
    factory: Callable,
    *,
    classes: int = 4,
    bias: bool = True,
    steps: int = STEPS,
    networks: int = NETWORKS,
    per_model: bool = False,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    after_step: Callable | None = None,
    architecture: Callable | None = None,
    amplification: float = 1.0,
) -> Drift:
    """Train ``networks`` reference models with ``factory`` and measure the class sums.

    ``factory(parameters)`` (or ``factory(model)`` with ``per_model``) returns the optimizer;
    ``after_step(model)`` runs after every step (a planted violation in a negative control).
    ``architecture(classes=, bias=, seed=, dtype=)`` replaces :class:`ReferenceModel` (a tied,
    weight-normalised or LoRA head: anything whose ``head`` has ``weight`` and ``bias``).
    ``amplification`` multiplies the round-off per step: :data:`NEWTON_SCHULZ_AMPLIFICATION`
    for a rule that iterates Newton–Schulz in the parameters' precision.
    The optimizer's ``step`` gets a closure where it requires one (L-BFGS); a second-order
    optimizer
    (``is_second_order``) gets a backward with ``create_graph``.
    """
    check_positive_integer(steps, name="steps")
    check_positive_integer(networks, name="networks")
    check_argument(
        isinstance(classes, int) and classes >= 2, "classes must be >= 2, got {!r}", classes
    )
    eps = machine_epsilon(dtype)
    weight_steps = [0.0] * (steps + 1)
    bias_steps = [0.0] * (steps + 1)
    weight_floor = bias_floor = 0.0
    exceeded = False
    for network in range(networks):
        model = (architecture or ReferenceModel)(
            classes=classes, bias=bias, seed=seed + network, dtype=dtype
        )
        optimizer = factory(model if per_model else model.parameters())
        generator = torch.Generator().manual_seed(seed * 7919 + network)
        operations = _operations(model.head, amplification)
        second_order = getattr(optimizer, "is_second_order", False)
        takes_closure = _requires_closure(optimizer)
        accumulated = {"weight": 0.0, "bias": 0.0}
        largest = {"weight": 0.0, "bias": 0.0}
        for step in range(steps + 1):
            sums = _class_sums(model.head)
            for name, value in sums.items():
                largest[name] = max(largest[name], value)
                steps_list = weight_steps if name == "weight" else bias_steps
                steps_list[step] = max(steps_list[step], value)
            if step == steps:
                break
            inputs = torch.randn(_BATCH, _INPUTS, generator=generator, dtype=torch.float64)
            teacher = 2 * torch.randn(_BATCH, classes, generator=generator, dtype=torch.float64)
            labels = torch.randint(classes, (_BATCH,), generator=generator)
            inputs, teacher = inputs.to(dtype), teacher.to(dtype)

            def closure(
                inputs=inputs,
                teacher=teacher,
                labels=labels,
                model=model,
                optimizer=optimizer,
                second_order=second_order,
            ):
                optimizer.zero_grad()
                loss = _loss(model(inputs), teacher, labels)
                loss.backward(create_graph=second_order)
                return loss

            before = _head_tensors(model.head)
            if takes_closure:
                optimizer.step(closure)
            else:
                closure()
                optimizer.step()
            if after_step is not None:
                after_step(model)
            for name, tensor in _head_tensors(model.head).items():
                magnitude = before[name].abs().max() + (tensor - before[name]).abs().max()
                accumulated[name] += eps * tensor.shape[0] * operations * float(magnitude)
        for name, tensor in _head_tensors(model.head).items():
            floor = accumulated[name] + eps * tensor.shape[0] * float(tensor.abs().max())
            exceeded = exceeded or not largest[name] <= floor
            if name == "weight":
                weight_floor = max(weight_floor, floor)
            else:
                bias_floor = max(bias_floor, floor)
    return Drift(
        weight=max(weight_steps),
        bias=max(bias_steps),
        weight_floor=weight_floor,
        bias_floor=bias_floor,
        weight_steps=tuple(weight_steps),
        bias_steps=tuple(bias_steps),
        exceeded=exceeded,
    )


def _requires_closure(optimizer):
    """Whether ``step`` must get the closure (L-BFGS, a joint optimizer): its first parameter
    has no default. Others get a plain ``step()`` after the backward pass, as in a training
    loop (a user's optimizer need not handle closures)."""
    if isinstance(optimizer, torch.optim.LBFGS):
        return True
    try:
        parameters = list(inspect.signature(optimizer.step).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(parameters) and parameters[0].default is inspect.Parameter.empty


def _head_tensors(head):
    """The head's effective weight and bias (computed ones too: weight norm, LoRA), detached."""
    with torch.no_grad():
        tensors = {"weight": head.weight.detach().clone()}
        if head.bias is not None:
            tensors["bias"] = head.bias.detach().clone()
        return tensors


def _class_sums(head):
    """``{"weight": max_j |sum_i W_ij|, "bias": |sum_i b_i|}``, summed in float64."""
    with torch.no_grad():
        sums = {"weight": float(head.weight.double().sum(0).abs().max())}
        if head.bias is not None:
            sums["bias"] = float(head.bias.double().sum().abs())
        return sums


class JointOptimizer:
    """Several optimizers stepped as one (a recipe with a different optimizer for the body and
    the head): ``step(closure)`` evaluates the closure once, then steps each."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    def zero_grad(self, set_to_none=True):
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure):
        loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss
