"""Heads that break the class sums whatever the optimizer ([atlas-structure]), as architectures
for :func:`~verify.atlas.drift.measure_drift`: each starts with :math:`1^T W = 0`,
:math:`1^T b = 0`, and exposes its effective ``head.weight`` and ``head.bias``.

* :class:`TiedModel`: the head's weight is the input embedding (a token per input, the
  argmax of its first ``N`` coordinates); the body reads ``tanh(E[token] A)``.
* :class:`WeightNormModel`: ``torch.nn.utils.parametrizations.weight_norm`` on the head.
* :class:`LoraModel`: ``W = W0 + B A`` with ``W0`` frozen and ``B`` starting at 0.
"""

import torch
from torch import nn

from .drift import ReferenceModel

__all__ = ["TiedModel", "WeightNormModel", "LoraModel", "ARCHITECTURES"]


class _Head(nn.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)


class TiedModel(nn.Module):
    """Logits ``E tanh(E[token] A) + b``: the head ``E`` is also the input embedding."""

    def __init__(self, *, classes=4, bias=True, seed=0, dtype=torch.float64, width=5):
        super().__init__()
        reference = ReferenceModel(classes=classes, bias=bias, seed=seed, dtype=dtype)
        self.head = _Head(reference.head.weight.detach().clone(), _bias(reference))
        generator = torch.Generator().manual_seed(seed)
        self.mixing = nn.Parameter(torch.randn(width, width, generator=generator).to(dtype))
        self.classes = classes

    def forward(self, inputs):
        tokens = inputs[:, : self.classes].argmax(-1)
        features = torch.tanh(self.head.weight[tokens] @ self.mixing)
        logits = features @ self.head.weight.T
        return logits if self.head.bias is None else logits + self.head.bias


class WeightNormModel(nn.Module):
    """The reference model with ``weight_norm`` on its head (``W_i = g_i V_i/|V_i|``)."""

    def __init__(self, *, classes=4, bias=True, seed=0, dtype=torch.float64):
        super().__init__()
        reference = ReferenceModel(classes=classes, bias=bias, seed=seed, dtype=dtype)
        self.body = reference.body
        self.head = nn.utils.parametrizations.weight_norm(reference.head)

    def forward(self, inputs):
        return self.head(self.body(inputs))


class _LoraHead(nn.Module):
    def __init__(self, base, rank, seed):
        super().__init__()
        classes, features = base.weight.shape
        self.register_buffer("base", base.weight.detach().clone())
        generator = torch.Generator().manual_seed(seed)
        dtype = base.weight.dtype
        self.down = nn.Parameter(torch.randn(rank, features, generator=generator).to(dtype))
        self.up = nn.Parameter(torch.zeros(classes, rank, dtype=dtype))
        self.bias = None if base.bias is None else nn.Parameter(base.bias.detach().clone())

    @property
    def weight(self):
        return self.base + self.up @ self.down


class LoraModel(nn.Module):
    """The reference model with a rank-1 LoRA head: ``W = W0 + B A``, ``B = 0`` at start."""

    def __init__(self, *, classes=4, bias=True, seed=0, dtype=torch.float64, rank=1):
        super().__init__()
        reference = ReferenceModel(classes=classes, bias=bias, seed=seed, dtype=dtype)
        self.body = reference.body
        self.head = _LoraHead(reference.head, rank, seed)

    def forward(self, inputs):
        logits = self.body(inputs) @ self.head.weight.T
        return logits if self.head.bias is None else logits + self.head.bias


def _bias(reference):
    bias = reference.head.bias
    return None if bias is None else bias.detach().clone()


#: The architectures by name (``reference`` is :class:`~verify.atlas.drift.ReferenceModel`).
ARCHITECTURES = {
    "reference": ReferenceModel,
    "tied": TiedModel,
    "weight-norm": WeightNormModel,
    "lora": LoraModel,
}
