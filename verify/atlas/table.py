"""The atlas as rows: every optimizer and setup with its predicted and measured verdict (the
table of docs/optimizers.md and notebook 08).

Examples
========

>>> row = torch_rows(names=["SGD"])[0]
>>> row["verdict"], row["predicted"], row["statement"]
('preserves', 'preserves', 'atlas-linear')
"""

import torch

from .catalogue import TORCH_OPTIMIZERS, predict_timm
from .drift import measure_drift
from .precision import newton_schulz_in
from .timm_optimizers import build, runs_here

__all__ = ["torch_rows", "timm_rows", "TORCH_SETTINGS"]

#: The hyperparameters each torch.optim optimizer runs with in the atlas.
TORCH_SETTINGS = {
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "ASGD": {"lr": 0.1},
    "LBFGS": {"lr": 1, "max_iter": 4, "line_search_fn": "strong_wolfe"},
    "Adam": {"lr": 0.01},
    "AdamW": {"lr": 0.01},
    "Adamax": {"lr": 0.01},
    "NAdam": {"lr": 0.01},
    "RAdam": {"lr": 0.01},
    "RMSprop": {"lr": 0.01},
    "Rprop": {"lr": 0.01},
    "Adagrad": {"lr": 0.01},
    "Adadelta": {"lr": 1.0},
}


def _row(name, predicted, statement, shipped, raised=None):
    return {
        "optimizer": name,
        "predicted": predicted,
        "statement": statement,
        "verdict": (raised or shipped).verdict,
        "shipped_verdict": shipped.verdict,
        "float64_drift": max((raised or shipped).weight, (raised or shipped).bias),
        "shipped_drift": max(shipped.weight, shipped.bias),
        "floor": shipped.floor,
        "weight_steps": shipped.weight_steps,
    }


def torch_rows(*, names=None, networks=1):
    """One row per torch.optim optimizer (Muon: on a bias-free head, shipped in bfloat16 and
    with Newton–Schulz in float64; ``verdict`` is the float64 one, what the statements are
    about)."""
    rows = []
    for name in names or list(TORCH_SETTINGS) + ["Muon"]:
        if name == "Muon":
            options = {"bias": False, "per_model": True, "networks": networks}

            def muon(model):
                return torch.optim.Muon([model.head.weight], lr=0.02)

            shipped = measure_drift(muon, **options)
            with newton_schulz_in(torch.float64):
                raised = measure_drift(muon, **options)
            rows.append(
                _row("torch.optim.Muon", "preserves", "atlas-left-invariant", shipped, raised)
            )
            continue
        cls, settings = getattr(torch.optim, name), TORCH_SETTINGS[name]
        drift = measure_drift(lambda p, cls=cls, s=settings: cls(p, **s), networks=networks)
        rows.append(_row(f"torch.optim.{name}", *TORCH_OPTIMIZERS[name], drift))
    return rows


def timm_rows(names, *, networks=1):
    """One row per named timm optimizer that builds on this machine (``lr=1e-2``); the others
    get ``verdict`` ``None`` and ``unavailable``: why not."""
    rows = []
    for name in names:
        why = runs_here(name)
        predicted, statement = predict_timm(name)
        if why is not None:
            rows.append({"optimizer": f"timm {name}", "predicted": predicted,
                         "statement": statement, "verdict": None, "unavailable": why})  # fmt: skip
            continue
        drift = measure_drift(lambda p, n=name: build(n, p, lr=1e-2), networks=networks)
        rows.append(_row(f"timm {name}", predicted, statement, drift))
    return rows
