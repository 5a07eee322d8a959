r"""Random networks ending in ``nn.Linear``, many at once with :mod:`torch.func`.

A :class:`NetworkSpec` describes an architecture (an MLP or a small convnet, its widths,
activation, bias and normalization); :meth:`NetworkSpec.build` makes one network.
:class:`StackedNetworks` holds ``M`` networks of one architecture as stacked parameters
(``torch.func.stack_module_state``) and runs them in one call
(``torch.vmap`` over ``torch.func.functional_call``), so a check trains or differentiates
all ``M`` networks without a Python loop over them.

Every network's last layer is ``output = nn.Linear(d, N)``, the affine layer
:math:`z = W h(x) + b` of docs/theory.md; :meth:`StackedNetworks.forward` returns the features
:math:`h(x)` along with the logits.

Examples
========

>>> import torch
>>> spec = NetworkSpec(kind="mlp", input_shape=(4,), widths=(8,), activation="tanh",
...                    bias=True, normalization="layer", classes=3)
>>> spec.describe()
'MLP 4-8-3, tanh, bias, layer norm'
>>> networks = StackedNetworks.build(spec, count=5, seed=0, dtype=torch.float64)
>>> features, logits = networks.forward(torch.zeros(5, 2, 4, dtype=torch.float64))
>>> tuple(features.shape), tuple(logits.shape)
((5, 2, 8), (5, 2, 3))
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from ._errors import check_argument, check_positive_integer

__all__ = ["ACTIVATIONS", "NORMALIZATIONS", "KINDS", "NetworkSpec", "Network", "StackedNetworks"]

#: Activations by name.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}
#: Normalization layers by name. Batch norm keeps no running statistics (batch statistics
#: in every forward), which is what :func:`torch.vmap` supports over stacked networks.
NORMALIZATIONS = ("none", "layer", "batch")
#: Network kinds.
KINDS = ("mlp", "conv")


@dataclass(frozen=True)
class NetworkSpec:
    """An architecture: ``depth = len(widths) + 1`` layers, the last an ``nn.Linear``.

    Parameters
    ==========

    kind : "mlp" or "conv"
        Hidden ``nn.Linear`` layers, or hidden 3x3 ``nn.Conv2d`` layers then a flatten.
    input_shape : tuple
        ``(features,)`` for an MLP, ``(channels, height, width)`` for a convnet.
    widths : tuple of int
        Hidden widths (MLP) or channels (convnet); empty for a single linear layer.
    activation : str
        A key of :data:`ACTIVATIONS`.
    bias : bool
        Whether every layer, the output layer included, has a bias.
    normalization : str
        One of :data:`NORMALIZATIONS`, applied after every hidden layer.
    classes : int
        Number of classes ``N``, the output layer's width.
    """

    kind: str
    input_shape: tuple
    widths: tuple
    activation: str
    bias: bool
    normalization: str
    classes: int
    output_scale: float = 1.0

    def __post_init__(self):
        check_argument(
            self.kind in KINDS, "kind must be one of {}, got {!r}", ", ".join(KINDS), self.kind
        )
        check_argument(
            self.activation in ACTIVATIONS,
            "activation must be one of {}, got {!r}",
            ", ".join(ACTIVATIONS),
            self.activation,
        )
        check_argument(
            self.normalization in NORMALIZATIONS,
            "normalization must be one of {}, got {!r}",
            ", ".join(NORMALIZATIONS),
            self.normalization,
        )
        check_argument(
            isinstance(self.classes, int) and self.classes >= 2,
            "classes must be an integer >= 2, got {!r}",
            self.classes,
        )
        check_argument(
            len(self.input_shape) == (1 if self.kind == "mlp" else 3),
            "input_shape of a {} must have {} entries, got {!r}",
            self.kind,
            1 if self.kind == "mlp" else 3,
            self.input_shape,
        )

    @property
    def depth(self) -> int:
        return len(self.widths) + 1

    @property
    def features(self) -> int:
        """The width ``d`` of the features :math:`h(x)` that feed the output layer."""
        if not self.widths:
            return _numel(self.input_shape)
        if self.kind == "mlp":
            return self.widths[-1]
        return self.widths[-1] * self.input_shape[1] * self.input_shape[2]

    def describe(self) -> str:
        if self.kind == "mlp":
            shape = "-".join(str(w) for w in (self.input_shape[0], *self.widths, self.classes))
            name = f"MLP {shape}"
        else:
            channels = "-".join(str(w) for w in (self.input_shape[0], *self.widths))
            name = (
                f"convnet {channels} channels on {self.input_shape[1]}x{self.input_shape[2]}"
                f" -> {self.classes}"
            )
        parts = [name, self.activation, "bias" if self.bias else "no bias"]
        if self.normalization != "none":
            parts.append(f"{self.normalization} norm")
        return ", ".join(parts)

    def build(
        self,
        *,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> "Network":
        """One :class:`Network` with PyTorch's default initialization drawn from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            network = Network(self)
        return network.to(dtype=dtype, device=device)


def _numel(shape):
    total = 1
    for size in shape:
        total *= size
    return total


class Network(nn.Module):
    """``features`` (hidden layers, possibly none) then ``output = nn.Linear(d, N)``.

    ``forward(x)`` returns the pair ``(features(x), logits)``.
    """

    def __init__(self, spec):
        super().__init__()
        layers = []
        previous = spec.input_shape[0]
        for width in spec.widths:
            if spec.kind == "mlp":
                layers.append(nn.Linear(previous, width, bias=spec.bias))
            else:
                layers.append(nn.Conv2d(previous, width, 3, padding=1, bias=spec.bias))
            layers.extend(_normalization(spec, width))
            layers.append(ACTIVATIONS[spec.activation]())
            previous = width
        if spec.kind == "conv":
            layers.append(nn.Flatten(start_dim=-3))
        self.features = nn.Sequential(*layers)
        self.output = nn.Linear(spec.features, spec.classes, bias=spec.bias)
        if spec.output_scale != 1.0:
            with torch.no_grad():
                self.output.weight.mul_(spec.output_scale)
                if self.output.bias is not None:
                    self.output.bias.mul_(spec.output_scale)

    def forward(self, inputs):
        features = self.features(inputs)
        return features, self.output(features)


def _normalization(spec, width):
    if spec.normalization == "none":
        return []
    if spec.kind == "mlp":
        if spec.normalization == "layer":
            return [nn.LayerNorm(width)]
        return [nn.BatchNorm1d(width, track_running_stats=False)]
    if spec.normalization == "layer":
        return [nn.GroupNorm(1, width)]
    return [nn.BatchNorm2d(width, track_running_stats=False)]


class StackedNetworks:
    """``M`` networks of one architecture, as stacked parameter leaves of shape ``[M, ...]``.

    The parameters are ordinary leaf tensors that require grad: the gradient of a sum of
    per-network losses gives every network its own gradient in its own slice, in one autograd
    call, and any optimizer that acts coordinate-wise with per-tensor scalar hyperparameters
    (every ``torch.optim`` optimizer used here) updates the ``M`` networks exactly as ``M``
    separate runs would.
    """

    def __init__(self, spec, modules):
        self.spec = spec
        self.count = len(modules)
        parameters, buffers = stack_module_state(modules)
        self.parameters = {
            name: value.detach().clone().requires_grad_(True) for name, value in parameters.items()
        }
        self.buffers = buffers
        self._base = copy.deepcopy(modules[0]).to("meta")

        def call(parameters, buffers, inputs):
            return functional_call(self._base, (parameters, buffers), (inputs,))

        self._call = torch.vmap(call, in_dims=(0, 0, 0))

    @classmethod
    def build(
        cls,
        spec: NetworkSpec,
        *,
        count: int,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> "StackedNetworks":
        """``count`` networks of ``spec``, network ``k`` initialised from seed ``seed + k``."""
        check_positive_integer(count, name="count")
        modules = [spec.build(seed=seed + k, dtype=dtype) for k in range(count)]
        stacked = cls(spec, modules)
        if torch.device(device).type != "cpu":
            stacked.to(device)
        return stacked

    def repeat(self, copies):
        """``copies`` copies of all ``M`` networks, as ``copies * M`` stacked networks: copy ``k``
        of network ``m`` is network ``k * M + m`` (for running one initialization under
        several settings at once)."""
        check_positive_integer(copies, name="copies")
        repeated = copy.copy(self)
        repeated.count = self.count * copies

        def tile(value):
            return value.detach().repeat(copies, *([1] * (value.ndim - 1)))

        repeated.parameters = {
            name: tile(value).requires_grad_(True) for name, value in self.parameters.items()
        }
        repeated.buffers = {name: tile(value) for name, value in self.buffers.items()}
        return repeated

    def converted(self, dtype):
        """A copy with every parameter and buffer converted to ``dtype`` (exactly, when widening
        float32 to float64: used to measure float32 round-off against float64)."""
        converted = copy.copy(self)
        converted.parameters = {
            name: value.detach().to(dtype).requires_grad_(True)
            for name, value in self.parameters.items()
        }
        converted.buffers = {
            name: value.to(dtype) if value.is_floating_point() else value
            for name, value in self.buffers.items()
        }
        return converted

    def flat_parameters(self):
        """All parameters of each network as one row: shape ``[M, P]``."""
        return torch.cat(
            [value.detach().reshape(self.count, -1) for value in self.parameters.values()], dim=1
        )

    def to(self, device):
        self.parameters = {
            name: value.detach().to(device).requires_grad_(True)
            for name, value in self.parameters.items()
        }
        self.buffers = {name: value.to(device) for name, value in self.buffers.items()}
        return self

    def forward(
        self, inputs: torch.Tensor, parameters: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Features ``[M, B, d]`` and logits ``[M, B, N]`` for inputs ``[M, B, *input_shape]``."""
        return self._call(
            self.parameters if parameters is None else parameters, self.buffers, inputs
        )

    def leaves(self):
        """The stacked parameter tensors, for an optimizer or ``torch.autograd.grad``."""
        return list(self.parameters.values())

    @property
    def output_weight(self):
        """The stacked output weights ``W``, shape ``[M, N, d]``."""
        return self.parameters["output.weight"]

    @property
    def output_bias(self):
        """The stacked output biases ``b``, shape ``[M, N]``, or ``None`` without bias."""
        return self.parameters.get("output.bias")
