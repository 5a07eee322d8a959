r"""Following a head's class means, :math:`\bar w = \tfrac1N 1^\top W` and
:math:`\bar b = \tfrac1N 1^\top b`, from one observed step to the next.

[mean-preservation] says an update that is a linear combination of gradients with zero class
sum leaves them unchanged ([atlas-linear]); a coordinate-wise optimizer
([atlas-coordinatewise]) or a head tied to an input embedding ([atlas-structure]) moves them.
:class:`HeadWatch` measures the move per step and compares it with the round-off floor of the
step, column by column (:func:`drift_floor`).

Examples
========

>>> import torch
>>> head = torch.nn.Linear(4, 3)
>>> watch = HeadWatch(head, name="head")
>>> with torch.no_grad():
...     _ = head.bias.add_(torch.tensor([0.5, 0.0, 0.0]))      # moves the mean bias by 1/6
>>> [round(tensor.drift, 4) for tensor in watch.measure(batch_size=8)]
[0.0, 0.1667]
"""

import math
from dataclasses import dataclass

import torch

from .._errors import check_argument
from ..tolerances import SOFTMAX_CHAIN_OPERATIONS, UPDATE_OPERATIONS, machine_epsilon

__all__ = ["HeadMagnitude", "HeadWatch", "TensorDrift", "drift_floor", "resolve_head"]


@dataclass(frozen=True)
class TensorDrift:
    """The move of one parameter's class mean in one step, against its floor.

    ``drift`` is the largest :math:`|\\Delta\\bar w_j|` over the columns ``j`` (the scalar
    :math:`|\\Delta\\bar b|` for a bias), ``floor`` the floor at that column and ``ratio`` the
    largest drift-to-floor ratio over the columns (``inf`` for a drift on a zero floor)."""

    name: str
    drift: float
    floor: float
    ratio: float


def drift_floor(size, step, *, dtype, classes, batch_size, momentum=0.0):
    r"""Round-off floor of the change of each column's class mean in one optimizer step that
    keeps it in exact arithmetic; ``size`` is :math:`\overline{|P_{t-1}|}` and ``step``
    :math:`\overline{|\Delta|}` per column (:math:`\Delta = P_t - P_{t-1}`, the bars class
    means), floats or tensors.

    With :math:`\varepsilon` the dtype's epsilon, per column:

    .. math::

        \varepsilon\,\Big[n_u\,\big(\overline{|P_{t-1}|} + \overline{|\Delta|}\big)
        + (2N + B + n_s)\,\overline{|\Delta|}\Big] / (1 - \mu).

    :math:`n_u` = ``UPDATE_OPERATIONS`` (9) roundings of the update of one coordinate (weight
    decay, momentum, Nesterov, the step and the subtraction), relative to the parameter and the
    step; :math:`2N + n_s` (``SOFTMAX_CHAIN_OPERATIONS`` = 10) those behind a softmax gradient's
    class sum and :math:`B` the sum over the batch of the parameter's gradient, relative to the
    step, which is the gradient times the learning rate. Momentum :math:`\mu` carries every
    step's rounding into the later ones with weights summing to :math:`1/(1 - \mu)`. The class
    means are summed in the parameter's dtype (see :meth:`HeadWatch.measure`).

    >>> import torch
    >>> drift_floor(1.0, 0.0, dtype=torch.float32, classes=10, batch_size=8)  # 9 eps
    1.0728836059570312e-06
    """
    eps = machine_epsilon(dtype)
    gradient_operations = 2 * classes + batch_size + SOFTMAX_CHAIN_OPERATIONS
    return eps * (UPDATE_OPERATIONS * (size + step) + gradient_operations * step) / (1.0 - momentum)


def resolve_head(module, head):
    """The head named by ``head`` in ``module``: ``None``, a module, an attribute path such as
    ``"lm_head"`` or ``"model.fc"``, or a function of ``module``."""
    if head is None or isinstance(head, torch.nn.Module):
        return head
    if callable(head) and not isinstance(head, str):
        return head(module)
    check_argument(
        isinstance(head, str), "head must be a module, a name or a function, got {!r}", head
    )
    target = module
    for part in head.split("."):
        check_argument(hasattr(target, part), "head {!r}: the model has no {!r}", head, part)
        target = getattr(target, part)
    return target


def _momentum(optimizer, parameter):
    """The largest momentum (or Adam's beta1) of the groups that hold ``parameter``; 0 if none."""
    if optimizer is None:
        return 0.0
    for group in optimizer.param_groups:
        if any(p is parameter for p in group["params"]):
            value = group.get("momentum", 0.0)
            if "betas" in group:
                value = max(value, group["betas"][0])
            return float(value) if value and value < 1 else 0.0
    return 0.0


class HeadMagnitude:
    r"""A forward hook on an affine head that keeps, for its last call, a bound per example on
    the size of the summands of every logit: :math:`\max_i \sum_j |W_{ij} h_j| + |b_i| \le
    \|h\|_\infty \max_i \|W_i\|_1 + \max_i |b_i|` (one pass over the input and one over
    the weight). The logits of a head with equal class means carry round-off relative to this,
    not to their own (possibly cancelled) size: :func:`~verify.monitor.gap_floor`."""

    def __init__(self, head):
        self.head = head
        self.latest = None
        self._key = None
        self._weight_part = None
        #: A tensor of the weight's shape the hook may write |W| into (the watch's work buffer):
        #: no fresh memory of the weight's size at every forward.
        self.scratch = None
        self._handle = head.register_forward_hook(self._record)

    def _record(self, module, inputs, output):
        with torch.no_grad():
            if not inputs or not isinstance(inputs[0], torch.Tensor):
                self.latest = None
                return
            weight = module.weight
            bias = getattr(module, "bias", None)
            # The weight's part is recomputed only when the weight changed (a frozen teacher's
            # never does): tensors count their in-place modifications in ``_version``.
            key = (weight.data_ptr(), weight._version)
            if bias is not None:
                key += (bias.data_ptr(), bias._version)
            if self._key != key:
                scratch = self.scratch
                if (
                    scratch is not None
                    and scratch.shape == weight.shape
                    and scratch.dtype == weight.dtype
                    and scratch.device == weight.device
                ):
                    absolute = torch.abs(weight.detach(), out=scratch)
                else:
                    absolute = weight.detach().abs()
                row_sum = absolute.sum(1).amax()
                largest_bias = bias.detach().abs().amax() if bias is not None else 0.0
                self._weight_part, self._key = (row_sum, largest_bias), key
            row_sum, largest_bias = self._weight_part
            features = inputs[0].detach()
            # max |h| = max(max h, -min h): two reductions, no temporary of the input's size.
            largest = torch.maximum(features.amax(-1), features.amin(-1).neg())
            size = largest * row_sum + largest_bias
            self.latest = size.to(torch.float64)

    def magnitudes(self, shape):
        """The per-example bounds of the last call if it had ``shape`` (the logits' shape
        without N), else ``None``."""
        if self.latest is None or tuple(self.latest.shape) != tuple(shape):
            return None
        return self.latest

    def remove(self):
        self._handle.remove()


class HeadWatch:
    """A linear head (``weight`` ``[N, F]``, optional ``bias`` ``[N]``) and, if given, its
    optimizer; :meth:`measure` returns the drift of each parameter's class mean since the last
    call (the first call measures against the head as it was when watched)."""

    def __init__(self, head, *, name, optimizer=None):
        weight = getattr(head, "weight", None)
        check_argument(
            isinstance(head, torch.nn.Module)
            and isinstance(weight, torch.Tensor)
            and weight.dim() == 2
            and weight.shape[0] >= 2
            and weight.dtype.is_floating_point,
            "watch_head needs a module with a floating weight [N, F], N >= 2 (an affine head "
            "such as torch.nn.Linear), got {}",
            type(head).__name__,
        )
        check_argument(
            optimizer is None or isinstance(optimizer, torch.optim.Optimizer),
            "optimizer must be a torch.optim.Optimizer or None, got {}",
            type(optimizer).__name__,
        )
        self.head = head
        self.name = name
        self.optimizer = optimizer
        self.magnitude = HeadMagnitude(head)
        #: The optimizer atlas' entry for ``optimizer`` (set by :meth:`KDMonitor.watch_head`).
        self.atlas: dict | None = None
        self._previous = self._snapshot()
        self.magnitude.scratch = self._previous["weight"][1]

    @property
    def features(self):
        return int(self.head.weight.shape[1])

    def _parameters(self):
        pairs = [("weight", self.head.weight)]
        bias = getattr(self.head, "bias", None)
        if isinstance(bias, torch.Tensor):
            pairs.append(("bias", bias))
        return pairs

    def _snapshot(self):
        """Per parameter: a copy in its own dtype, a work buffer of the same shape (both reused
        at every step: no allocation) and its column means of absolute values."""
        with torch.no_grad():
            return {
                name: (
                    p.detach().clone(),
                    torch.empty_like(p),
                    p.detach().abs().sum(0) / p.shape[0],
                )
                for name, p in self._parameters()
            }

    def measure(self, *, batch_size):
        r"""The :class:`TensorDrift` of ``weight`` (and ``bias``) since the last call.

        The drift is :math:`|\sum_i \Delta_{ij}|/N` with :math:`\Delta = P_t - P_{t-1}`, all in
        the parameter's dtype: the subtraction and the pairwise class sum add at most
        :math:`\varepsilon(1 + \log_2 N)\,\overline{|\Delta|}`, inside the floor's
        :math:`2N\varepsilon\,\overline{|\Delta|}`. About six passes over each parameter, in
        two buffers allocated once."""
        results = []
        with torch.no_grad():
            for name, parameter in self._parameters():
                before, change, size = self._previous[name]
                current = parameter.detach()
                torch.sub(current, before, out=change)
                drift = change.sum(0)
                step = change.abs_().sum(0)
                before.copy_(current)
                next_size = torch.abs(current, out=change).sum(0) / current.shape[0]
                self._previous[name] = (before, change, next_size)
                classes = parameter.shape[0]
                drift = (drift / classes).abs().double().reshape(-1)
                step = step / classes
                floor = drift_floor(
                    size.double(),
                    step.double(),
                    dtype=parameter.dtype,
                    classes=classes,
                    batch_size=batch_size,
                    momentum=_momentum(self.optimizer, parameter),
                ).reshape(-1)
                ratios = torch.where(floor > 0, drift / floor, drift * math.inf)
                ratios = ratios.nan_to_num(nan=0.0, posinf=math.inf)
                column = drift.argmax()
                values = torch.stack([drift[column], floor[column], ratios.max()]).tolist()
                results.append(TensorDrift(name, *values))  # one conversion per parameter
        return results

    def rebase(self):
        """Take the head as it is now as the reference of the next :meth:`measure` (a copy and
        its column means of absolute values: three passes over each parameter, in the buffers
        of :meth:`measure`), so that a monitor observing every k-th step measures the drift
        of one step, not of k."""
        with torch.no_grad():
            for name, parameter in self._parameters():
                before, buffer, _ = self._previous[name]
                current = parameter.detach()
                before.copy_(current)
                size = torch.abs(current, out=buffer).sum(0) / current.shape[0]
                self._previous[name] = (before, buffer, size)
