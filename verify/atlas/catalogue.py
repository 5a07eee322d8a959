"""What the atlas knows about each optimizer: its verdict, the statement behind it, the fix.

:func:`recognise` takes a built ``torch.optim.Optimizer`` (from ``torch.optim`` or ``timm``)
and returns ``{"name", "verdict", "statement", "fix"}``, or ``None`` for an optimizer it does
not know. The verdict is the optimizer's behaviour on a head with zero class sums as it ships
(``torch.optim.Muon`` iterates in bfloat16 and breaks the sums although its update keeps them
in exact arithmetic); :func:`predict_timm` gives the verdict of a ``timm`` optimizer by name,
with the head's bias included (timm's Muon updates 1-D parameters with AdamW).

Examples
========

>>> import torch
>>> recognise(torch.optim.SGD([torch.nn.Parameter(torch.zeros(3, 2))], lr=0.1))["verdict"]
'preserves'
>>> recognise(torch.optim.Adam([torch.nn.Parameter(torch.zeros(3, 2))]))["statement"]
'atlas-coordinatewise/three-classes'
>>> predict_timm("lars")
('preserves', 'atlas-linear')
"""

__all__ = ["recognise", "predict_timm", "TORCH_OPTIMIZERS", "FIXES"]

_LINEAR = ("preserves", "atlas-linear")
_COORDINATEWISE = ("breaks", "atlas-coordinatewise/three-classes")
_CAUTIOUS = ("breaks", "atlas-coordinatewise/cautious-mask")
_ROWS = ("breaks", "atlas-linear/per-row-coefficients")
_LEFT = ("breaks", "atlas-left-invariant/any-left-preconditioner")
_ROUND_OFF = ("breaks", "atlas-left-invariant/round-off-damped")

#: torch.optim classes by name: (verdict as shipped, statement).
TORCH_OPTIMIZERS = {
    "SGD": _LINEAR,
    "ASGD": _LINEAR,
    "LBFGS": _LINEAR,
    "Adam": _COORDINATEWISE,
    "AdamW": _COORDINATEWISE,
    "Adamax": _COORDINATEWISE,
    "NAdam": _COORDINATEWISE,
    "RAdam": _COORDINATEWISE,
    "RMSprop": _COORDINATEWISE,
    "Rprop": _COORDINATEWISE,
    "Adagrad": _COORDINATEWISE,
    "Adadelta": _COORDINATEWISE,
    "SparseAdam": _COORDINATEWISE,
    "Muon": _ROUND_OFF,
}

#: The fix for each kind of break, by statement.
FIXES = {
    "atlas-coordinatewise/three-classes": "put the head (weight and bias) in an SGD group",
    "atlas-coordinatewise/cautious-mask": "turn the cautious mask off for the head, or put the "
    "head in an SGD group",
    "atlas-linear/per-row-coefficients": "put the head in an SGD group (its per-row scaling "
    "breaks the class sums)",
    "atlas-left-invariant/any-left-preconditioner": "put the head in an SGD or Muon group",
    "atlas-left-invariant/round-off-damped": "re-centre Muon's update (subtract its class "
    "mean) or run Newton-Schulz in float64",
}

#: timm optimizers whose head update is linear with per-tensor coefficients.
_TIMM_LINEAR = {
    "sgd",
    "momentum",
    "nesterov",
    "sgdw",
    "nesterovw",
    "sgdc",
    "lars",
    "larc",
    "nlars",
    "nlarc",
    "novograd",
    "novogradw",
    "novogradc",
    # SGDP's per-row projection would break the sums (atlas-linear/per-row-coefficients), but
    # it fires only for a row nearly orthogonal to its gradient (cosine < 0.1/sqrt(d)), which
    # a head's rows are not: on a head SGDP is Nesterov SGD.
    "sgdp",
}
_TIMM_CAUTIOUS_SGD = {"csgdc", "csgdw", "csgdp"}
_TIMM_ROWS = set()
_TIMM_LEFT = {"kron", "kronc", "kronw"}


def predict_timm(name):
    """``(verdict, statement)`` for the timm optimizer ``name`` on a head with a bias."""
    if name in _TIMM_LINEAR:
        return _LINEAR
    if name in _TIMM_CAUTIOUS_SGD:
        return _CAUTIOUS
    if name in _TIMM_ROWS:
        return _ROWS
    if name in _TIMM_LEFT:
        return _LEFT
    # Everything else normalises coordinate-wise (the Adam family, sign rules, Adafactor,
    # and timm's Muon, whose 1-D parameters, the bias, take AdamW steps).
    return _COORDINATEWISE


def _caution(optimizer):
    return any(group.get("caution", False) for group in optimizer.param_groups)


def recognise(optimizer):
    """``{"name", "verdict", "statement", "fix"}`` for a known optimizer, else ``None``.

    Per-group recipes: the verdict is the worst over the groups' kinds (the atlas cannot tell
    which group holds the head; the command ``python -m verify optimizer`` measures it).
    """
    cls = type(optimizer)
    module = cls.__module__
    name = cls.__name__
    if module.startswith("torch.optim") and name in TORCH_OPTIMIZERS:
        verdict, statement = TORCH_OPTIMIZERS[name]
    elif module.startswith("timm.optim"):
        verdict, statement = _timm_class_verdict(name, optimizer)
        if verdict is None:
            return None
    else:
        return None
    return {
        "name": f"{'.'.join(module.split('.')[:2])}.{name}",
        "verdict": verdict,
        "statement": statement,
        "fix": FIXES.get(statement) if verdict == "breaks" else None,
    }


def _timm_class_verdict(name, optimizer):
    if name in ("SGDW", "NvNovoGrad", "Lars"):
        return _CAUTIOUS if _caution(optimizer) else _LINEAR
    if name == "SGDP":
        return _CAUTIOUS if _caution(optimizer) else _LINEAR
    if name == "Kron":
        return _LEFT
    if name == "Muon":
        return _COORDINATEWISE
    known = {
        "AdaBelief", "Adafactor", "AdafactorBigVision", "Adahessian", "AdamP", "AdamWLegacy",
        "Adan", "Adopt", "Lamb", "LaProp", "Lion", "MADGRAD", "Mars", "NAdamLegacy", "NAdamW",
        "RAdamLegacy", "RMSpropTF",
    }  # fmt: skip
    return _COORDINATEWISE if name in known else (None, None)
