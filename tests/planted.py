"""Planted violations shared by the negative-control tests."""

import torch


class PerClassScaledSGD(torch.optim.SGD):
    """SGD that rescales the class rows of every stacked gradient (dimension 1) first."""

    def step(self, closure=None):
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None and parameter.ndim >= 2:
                    rows = parameter.shape[1]
                    scale = torch.linspace(0.5, 1.5, rows, dtype=parameter.dtype)
                    parameter.grad.mul_(scale.view(1, rows, *([1] * (parameter.ndim - 2))))
        return super().step(closure)
