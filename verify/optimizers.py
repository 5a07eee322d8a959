r"""Optimizer configurations, and what [mean-preservation] predicts for each.

An :class:`OptimizerSpec` names a ``torch.optim`` optimizer and its hyperparameters and
builds it over any parameters. :meth:`OptimizerSpec.predicted_mean_factors` gives, step by
step, the factor by which docs/theory.md's [mean-preservation] says the class means
:math:`\bar w, \bar b` of the output layer get multiplied, computed from the update rule
alone (not by running the optimizer): for the SGD family the mean follows the same linear
recursion with the loss gradient's class mean, zero, in place of the gradient; without
momentum that is :math:`(1 - \eta\lambda)^t`. For the adaptive optimizers it is what the
statement would predict if it held for them (constant, or AdamW's decoupled decay); the
checks show that it does not.

Examples
========

>>> spec = OptimizerSpec("sgd", (("lr", 0.1), ("weight_decay", 0.5)))
>>> spec.describe()
'SGD(lr=0.1, weight_decay=0.5)'
>>> spec.predicted_mean_factors(3)
[0.95, 0.9025, 0.8573749999999999]
>>> OptimizerSpec("sgd", (("lr", 0.1), ("momentum", 0.5))).predicted_mean_factors(2)
[1.0, 1.0]
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._errors import check_argument, check_integer

__all__ = ["OPTIMIZERS", "SGD_FAMILY", "ADAPTIVE", "OptimizerSpec"]

#: The optimizer classes, by name.
OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
#: Linear in the gradients with per-tensor scalar coefficients: [mean-preservation] holds.
SGD_FAMILY = ("sgd",)
#: Per-coordinate adaptive: [mean-preservation] is refuted.
ADAPTIVE = ("adam", "adamw", "rmsprop", "adagrad")

_LABELS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}


@dataclass(frozen=True)
class OptimizerSpec:
    """A ``torch.optim`` optimizer by name, with hyperparameters as ``((name, value), ...)``.

    ``factory`` replaces the class (a planted variant in a negative-control test, say);
    ``label`` then names it in descriptions.
    """

    name: str
    hyperparameters: tuple = ()
    factory: Callable[..., torch.optim.Optimizer] | None = None
    label: str | None = None

    def __post_init__(self):
        check_argument(
            self.factory is not None or self.name in OPTIMIZERS,
            "optimizer must be one of {}, got {!r}",
            ", ".join(OPTIMIZERS),
            self.name,
        )

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.hyperparameters)

    def build(self, parameters: Any) -> torch.optim.Optimizer:
        """The optimizer over ``parameters``."""
        factory = self.factory or OPTIMIZERS[self.name]
        return factory(parameters, **self.options)

    def describe(self) -> str:
        label = self.label or _LABELS.get(self.name, self.name)
        options = ", ".join(f"{key}={_short(value)}" for key, value in self.hyperparameters)
        return f"{label}({options})"

    @property
    def learning_rate(self) -> float:
        return self.options.get("lr", 1e-3)

    @property
    def momentum(self):
        """The factor by which past gradients persist (SGD's momentum, Adam's beta1)."""
        options = self.options
        if self.name == "sgd":
            return options.get("momentum", 0.0)
        if self.name in ("adam", "adamw"):
            return options.get("betas", (0.9, 0.999))[0]
        return options.get("momentum", 0.0)

    def predicted_mean_factors(self, steps):
        r"""Factors :math:`f_1..f_t` with :math:`\bar w_t = f_t \bar w_0` if means were preserved.

        SGD: the update rule applied to the mean, whose gradient is zero except for weight
        decay (PyTorch's rule: the first momentum buffer is the gradient itself); without
        momentum exactly :math:`(1 - \eta\lambda)^t`.
        Adam, RMSprop, Adagrad without weight decay: 1. AdamW: :math:`(1 - \eta\lambda)^t`.
        """
        check_integer(steps, name="steps")
        options = self.options
        learning_rate = self.learning_rate
        decay = options.get("weight_decay", 0.0 if self.name != "adamw" else 1e-2)
        if self.name == "adamw":
            return [(1 - learning_rate * decay) ** (t + 1) for t in range(steps)]
        if self.name != "sgd":
            check_argument(
                decay == 0.0, "no mean prediction for {} with coupled weight decay", self.describe()
            )
            return [1.0] * steps
        momentum = options.get("momentum", 0.0)
        if not momentum:
            return [(1 - learning_rate * decay) ** (t + 1) for t in range(steps)]
        dampening = options.get("dampening", 0.0)
        nesterov = options.get("nesterov", False)
        mean, buffer, factors = 1.0, None, []
        for _ in range(steps):
            direction = decay * mean
            buffer = (
                direction if buffer is None else momentum * buffer + (1 - dampening) * direction
            )
            direction = direction + momentum * buffer if nesterov else buffer
            mean = mean - learning_rate * direction
            factors.append(mean)
        return factors


def _short(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return repr(value)
