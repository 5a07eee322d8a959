r"""[atlas-linear], [atlas-left-invariant], [atlas-coordinatewise], [atlas-structure] and their
refutations, against the real optimizers.

Each check trains zero-class-sum reference heads (:mod:`verify.atlas.drift`, float64 by
default, 20 steps) with real ``torch.optim`` and ``timm`` optimizers and compares the largest
:math:`|1^T W|`, :math:`|1^T b|` with the round-off floor. A statement that holds must keep
every case within its floor; a refutation must find a case past it, and reports the smallest
one (fewest classes, then fewest steps) as its counterexample. With ``--thorough`` (a
counterexample search of :data:`~verify.checks._common.THOROUGH_SEARCH_EXAMPLES`) the checks
add every CPU-runnable ``timm`` optimizer the atlas predicts for the statement.
"""

import torch

from ..atlas import catalogue
from ..atlas.drift import NEWTON_SCHULZ_AMPLIFICATION, JointOptimizer, measure_drift
from ..atlas.heads import LoraModel, TiedModel, WeightNormModel
from ..atlas.precision import newton_schulz_amplification, newton_schulz_in
from ..atlas.timm_optimizers import build, runs_here, timm_optimizer_names
from ._common import THOROUGH_SEARCH_EXAMPLES, CheckContext, numeric_check, result_from

__all__ = ["run_atlas_cases", "CASES", "RowNormalisedSGD", "AsymmetricClipSGD", "LeftCholesky"]


class _GradientMap(torch.optim.Optimizer):
    """SGD on a map of each gradient: ``p <- p - lr * direction(grad)``."""

    def __init__(self, params, lr=0.05):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter.sub_(group["lr"] * self.direction(parameter.grad))
        return loss


class RowNormalisedSGD(_GradientMap):
    """Each row of a matrix gradient divided by its norm (per-row coefficients)."""

    def direction(self, grad):
        if grad.ndim < 2:
            return grad
        return grad / grad.norm(dim=1, keepdim=True).clamp(min=1e-30)


class AsymmetricClipSGD(_GradientMap):
    """Value clipping to ``[-0.01, 0.02]``: coordinate-wise and not odd."""

    def direction(self, grad):
        return grad.clamp(-0.01, 0.02)


class LeftCholesky(_GradientMap):
    """``U = C^{-1} G`` with ``C`` the Cholesky factor of ``GGᵀ + I``: a triangular left
    preconditioner (as PSGD-Kron's) of which ``1`` is not an eigenvector."""

    def direction(self, grad):
        if grad.ndim < 2:
            return grad
        factor = torch.linalg.cholesky(grad @ grad.T + torch.eye(grad.shape[0], dtype=grad.dtype))
        return torch.linalg.solve_triangular(factor, grad, upper=False)


class ShampooLike(_GradientMap):
    """``U = L G R``, ``L = (GGᵀ + εI)^{-1/4}``, ``R = (GᵀG + εI)^{-1/4}`` (one-step Shampoo)."""

    def direction(self, grad):
        if grad.ndim < 2:
            return grad
        return _inverse_root(grad @ grad.T) @ grad @ _inverse_root(grad.T @ grad)


def _inverse_root(matrix, epsilon=1e-3):
    values, vectors = torch.linalg.eigh(matrix + epsilon * torch.eye(matrix.shape[0]).to(matrix))
    return vectors @ torch.diag(values**-0.25) @ vectors.T


class _ClippedSGD(torch.optim.SGD):
    """SGD after ``clip_grad_norm_`` to 0.1 (a per-tensor-set scalar)."""

    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        super().step()
        return loss


class _ScheduledSGD(torch.optim.SGD):
    """SGD(momentum=0.9) whose learning rate follows a cosine schedule, stepped with it."""

    def __init__(self, params):
        super().__init__(params, lr=0.1, momentum=0.9)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self, T_max=20)

    def step(self, closure=None):
        loss = super().step(closure)
        self.scheduler.step()
        return loss


def _scheduled_sgd(params):
    return _ScheduledSGD(params)


def _body_adam_head(head_factory):
    def build(model):
        return JointOptimizer(
            torch.optim.Adam(model.body.parameters(), lr=0.01),
            head_factory(model.head.parameters()),
        )

    return build


def _torch(name, **options):
    cls = getattr(torch.optim, name)
    return (f"torch.optim.{name}({_options(options)})", lambda p: cls(p, **options), {})


def _options(options):
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _timm(name, lr=1e-2):
    return (f"timm {name}", lambda p: build(name, p, lr=lr), {})


def _muon(dtype=None):
    label = "torch.optim.Muon(lr=0.02), no bias" + (f", Newton-Schulz in {dtype}" if dtype else "")
    factory = lambda model: torch.optim.Muon([model.head.weight], lr=0.02)  # noqa: E731
    options = {"per_model": True, "bias": False, "_newton_schulz": dtype}
    if dtype is not None:  # round-off of an iteration in the parameters' dtype, amplified
        options["amplification"] = NEWTON_SCHULZ_AMPLIFICATION
    return (label, factory, options)


#: Statement id -> (default cases, extra timm names under --thorough).
CASES = {
    "atlas-linear": lambda: [
        _torch("SGD", lr=0.1),
        _torch("SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        _torch("ASGD", lr=0.1),
        _torch("LBFGS", lr=1, max_iter=4, line_search_fn="strong_wolfe"),
        ("SGD + clip_grad_norm_(0.1)", lambda p: _ClippedSGD(p, lr=0.1), {}),
        ("SGD(momentum=0.9) + cosine schedule", _scheduled_sgd, {}),
        _timm("lars"),
        _timm("novograd"),
    ],
    "atlas-linear/per-row-coefficients": lambda: [
        ("row-normalised SGD", lambda p: RowNormalisedSGD(p), {}),
    ],
    "atlas-left-invariant": lambda: [
        _muon(torch.float64),
        ("Shampoo-like L G R (float64)", lambda p: ShampooLike(p), {}),
    ],
    "atlas-left-invariant/round-off-damped": lambda: [_muon()],
    "atlas-left-invariant/any-left-preconditioner": lambda: [
        ("Cholesky left preconditioner", lambda p: LeftCholesky(p), {}),
    ],
    "atlas-coordinatewise": lambda: (
        [(label, factory, {"classes": 2}) for label, factory, _ in _coordinatewise_torch()]
        + [("timm lion", _timm("lion")[1], {"classes": 2})]
    ),
    "atlas-coordinatewise/three-classes": lambda: _coordinatewise_torch(),
    "atlas-coordinatewise/cautious-mask": lambda: [_timm("csgdw")],
    "atlas-coordinatewise/two-classes-not-odd": lambda: [
        ("asymmetric value clipping", lambda p: AsymmetricClipSGD(p), {"classes": 2}),
    ],
    "atlas-structure": lambda: [
        ("body Adam, head SGD", _body_adam_head(lambda p: torch.optim.SGD(p, lr=0.1)), _MODEL),
        (
            "body Adam, head SGD(momentum=0.9), N = 10",
            _body_adam_head(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
            {"per_model": True, "classes": 10},
        ),
        ("LoRA head, SGD", lambda p: torch.optim.SGD(p, lr=0.1), {"architecture": LoraModel}),
    ],
    "atlas-structure/tied-embedding": lambda: [
        ("tied embedding, SGD", lambda p: torch.optim.SGD(p, lr=0.1), {"architecture": TiedModel})
    ],
    "atlas-structure/weight-norm": lambda: [
        (
            "weight-normalised head, SGD",
            lambda p: torch.optim.SGD(p, lr=0.1),
            {"architecture": WeightNormModel},
        )
    ],
    "atlas-structure/lora-adam": lambda: [
        ("LoRA head, Adam", lambda p: torch.optim.Adam(p, lr=0.01), {"architecture": LoraModel})
    ],
}
_MODEL = {"per_model": True}


def _coordinatewise_torch():
    return [
        _torch("Adam", lr=0.01),
        _torch("AdamW", lr=0.01),
        _torch("Adamax", lr=0.01),
        _torch("NAdam", lr=0.01),
        _torch("RAdam", lr=0.01),
        _torch("RMSprop", lr=0.01),
        _torch("Rprop", lr=0.01),
        _torch("Adagrad", lr=0.01),
        _torch("Adadelta", lr=1.0),
    ]


def _thorough_timm(statement_id):
    """Every CPU-runnable timm optimizer the atlas predicts for ``statement_id``."""
    names = [
        n
        for n in timm_optimizer_names()
        if catalogue.predict_timm(n)[1] == statement_id and runs_here(n) is None
    ]
    return [_timm(n) for n in names]


def _measure(label, factory, options, context, **overrides):
    options = dict(options, **overrides)
    dtype = options.pop("_newton_schulz", None)
    if dtype is None:
        return measure_drift(factory, dtype=context.dtype, seed=context.seed, **options)
    with newton_schulz_in(dtype):
        return measure_drift(factory, dtype=context.dtype, seed=context.seed, **options)


def _ratio(drift):
    return max(
        drift.weight / drift.weight_floor if drift.weight_floor else float("inf"),
        drift.bias / drift.bias_floor if drift.bias_floor else 0.0,
    )


def _worst(drift):
    if drift.bias_floor and drift.bias / drift.bias_floor > drift.weight / drift.weight_floor:
        return drift.bias, drift.bias_floor
    return drift.weight, drift.weight_floor


def _smallest_break(label, factory, options, context):
    """The fewest classes (from 3, or the case's own N = 2), then fewest steps, that break."""
    smallest = options.get("classes", 4)
    for classes in sorted({min(3, smallest), smallest}):
        for steps in (1, 2, 5, 20):
            drift = _measure(
                label, factory, options, context, classes=classes, steps=steps, networks=1
            )
            if drift.verdict == "breaks":
                error, floor = _worst(drift)
                which = "1ᵀW" if error == drift.weight else "1ᵀb"
                return (
                    f"{label}, N = {classes}, after {steps} step{'s' * (steps > 1)}: "
                    f"|{which}| = {error:.3g}, tolerance {floor:.2g} (the round-off floor)"
                )
    return None


def run_atlas_cases(statement_id, context, cases):
    """Measure every case; the result of ``statement_id`` (holds iff every case preserves)."""
    errors, floors, setup, breaking = [], [], [], []
    for label, factory, options in cases:
        drift = _measure(label, factory, options, context)
        error, floor = _worst(drift)
        errors.append(error)
        floors.append(floor)
        setup.append(
            f"{label}: {drift.verdict}, |1ᵀW| {drift.weight:.3g}, |1ᵀb| {drift.bias:.3g}, "
            f"floor {drift.floor:.2g}"
        )
        if drift.verdict == "breaks":
            breaking.append((label, factory, options))
    index = max(range(len(errors)), key=lambda k: errors[k] / floors[k] if floors[k] else 0)
    counterexample = _smallest_break(*breaking[0], context) if breaking else None
    return result_from(
        statement_id,
        context,
        error=errors[index],
        tolerance=floors[index],
        violated=bool(breaking),
        examples=len(cases),
        counterexample=counterexample or (f"{breaking[0][0]} breaks" if breaking else None),
        setup=setup,
        notes=[f"{len(cases)} optimizer setups, 20 steps each, {len(breaking)} broke the sums"],
    )


def _register(statement_id):
    def check(*, device="cpu", dtype=torch.float64, examples=1, seed=0, search_examples=None):
        context = CheckContext.create(
            device="cpu", dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
        )
        cases = CASES[statement_id]()
        if context.search_examples >= THOROUGH_SEARCH_EXAMPLES:
            known = {label for label, _, _ in cases}
            cases += [c for c in _thorough_timm(statement_id) if c[0] not in known]
        result = run_atlas_cases(statement_id, context, cases)
        if statement_id.startswith("atlas-left-invariant"):
            factors = ", ".join(f"{f:.3f}" for f in newton_schulz_amplification())
            result = type(result)(
                **{
                    **result.__dict__,
                    "notes": result.notes
                    + (f"Newton-Schulz amplification along 1 per iteration: {factors}",),
                }
            )
        return result

    name = "check_" + statement_id.replace("-", "_").replace("/", "__")
    check.__name__ = check.__qualname__ = name
    check.__doc__ = f"[{statement_id}] against real optimizers (:data:`CASES`)."
    numeric_check(statement_id)(check)
    return check


for _statement_id in CASES:
    globals()["check_" + _statement_id.replace("-", "_").replace("/", "__")] = _register(
        _statement_id
    )
