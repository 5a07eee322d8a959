"""``python -m verify optimizer MODULE:FACTORY [--json]``: does your optimizer keep the head's
class sums?

``FACTORY(params) -> optimizer`` gets the parameters of the reference model
(:class:`~verify.atlas.drift.ReferenceModel`: ``body = Linear(6, 5) + tanh``,
``head = Linear(5, N)`` with zero class sums, float64); with ``--per-model`` (or a first
parameter named ``model``/``module``/``net``) ``FACTORY(model) -> optimizer`` gets the model
itself, for per-group recipes (``model.body``, ``model.head``). The command trains two such
models for ``--steps`` steps exactly as the factory configured the optimizer and prints:
preserves or breaks, the largest :math:`|1^T W|` and :math:`|1^T b|`, the round-off floor,
the statement behind the verdict when the optimizer is recognised
(:func:`~verify.atlas.catalogue.recognise`) and the fix.

Exit codes: 0 preserves, 1 breaks, 2 the factory cannot be imported or called, returns no
optimizer, fails while training, or bad input (one line on stderr).

All the user's code runs inside :func:`_optimizer_check_worker` (a picklable target and a
dict of options in, a plain dict out), in a child process the command starts and kills at
``--timeout`` (:func:`derive._isolation.run_isolated`): the verdict and the exit code depend
only on the dict it sends back, validated here, and what the factory prints is captured, never
mixed into the report.
"""

import argparse
import inspect
import math

from derive._isolation import run_isolated
from derive._json import dumps as _json_dumps
from derive._targets import check_target

from .._errors import VerifyError, check_argument
from ..audit.loading import Sandbox, load_target
from .catalogue import FIXES, recognise
from .drift import measure_drift

__all__ = ["add_arguments", "run", "MODES"]

#: How the factory is called: by its first parameter's name, with the parameters, or with
#: the model.
MODES = ("auto", "params", "model")
_MODEL_NAMES = ("model", "module", "net", "network")
_DEFAULT_FIX = "put the head (weight and bias) in an SGD group"


def _mode(factory, mode):
    if mode != "auto":
        return mode
    try:
        parameters = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return "params"
    return "model" if parameters and parameters[0].lower() in _MODEL_NAMES else "params"


def _optimizer_check_worker(target: str, options: dict) -> dict:
    """Load ``target`` (``MODULE:FACTORY``), train the reference models with its optimizer and
    return ``{"optimizer", "verdict", "drift": {"weight", "bias"}, "floor", "statement",
    "fix", "recognised", "steps", "classes", "mode"}``, or ``{"error": one line}``.

    ``options``: ``steps``, ``classes``, ``mode`` (:data:`MODES`), ``timeout`` (seconds)."""
    try:
        return _check(target, options)
    except VerifyError as error:
        return {"error": " ".join(str(error).split())}


def _check(target, options):
    steps, classes = options.get("steps", 20), options.get("classes", 4)
    timeout = float(options.get("timeout", 600.0))
    factory = load_target(target, timeout=timeout)
    mode = _mode(factory, options.get("mode", "auto"))
    sandbox = Sandbox(target, timeout=timeout, exit_hint=": a factory must return an optimizer")
    built = []

    def build(argument):
        optimizer = factory(argument)
        if not (callable(getattr(optimizer, "step", None)) and hasattr(optimizer, "zero_grad")):
            raise TypeError(f"it returned {type(optimizer).__name__}, not an optimizer")
        built.append(optimizer)
        return optimizer

    drift = sandbox.call(
        measure_drift,
        build,
        classes=classes,
        steps=steps,
        per_model=mode == "model",
        context=f"(FACTORY({'model' if mode == 'model' else 'params'}), training {steps} steps)",
    )
    known = _recognised(built[0])
    statement = known["statement"] if known and known["verdict"] == drift.verdict else None
    if drift.verdict == "preserves":
        fix = None
        statement = statement or None
    else:
        fix = (known or {}).get("fix") or FIXES.get(statement) or _DEFAULT_FIX
    name = known["name"] if known else f"{type(built[0]).__module__}.{type(built[0]).__name__}"
    return {
        "optimizer": name,
        "verdict": drift.verdict,
        "drift": {"weight": _finite(drift.weight), "bias": _finite(drift.bias)},
        "floor": drift.floor,
        "statement": statement,
        "fix": fix,
        "recognised": known is not None,
        "steps": steps,
        "classes": classes,
        "mode": mode,
    }


def _recognised(optimizer):
    try:
        return recognise(optimizer)
    except Exception:  # a user's optimizer class that misbehaves when inspected
        return None


def _finite(value):
    return value if math.isfinite(value) else None


def add_arguments(parser):
    parser.add_argument("target", metavar="MODULE:FACTORY", help="FACTORY(params) -> optimizer")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="call FACTORY with the parameters or with the model (default: by the name of its "
        "first parameter: model/module/net -> the model)",
    )
    parser.add_argument("--steps", type=_bounded(1, 1000), default=20, help="steps (default 20)")
    parser.add_argument(
        "--classes", type=_bounded(2, 1000), default=4, help="classes N of the head (default 4)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds for the whole check (default 600)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _bounded(minimum, maximum):
    def parse(text):
        if not text.strip().lstrip("+").isdigit() or not minimum <= int(text) <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be an integer in {minimum}..{maximum}, got {text!r}"
            )
        return int(text)

    return parse


def run(arguments):
    check_argument(
        math.isfinite(arguments.timeout) and arguments.timeout > 0,
        "--timeout must be a positive number of seconds, got {!r}",
        arguments.timeout,
    )
    options = {
        "steps": arguments.steps,
        "classes": arguments.classes,
        "mode": arguments.mode,
        "timeout": arguments.timeout,
    }
    target = check_target(arguments.target, error=VerifyError)
    run_ = run_isolated(
        _optimizer_check_worker,
        target,
        options,
        timeout=arguments.timeout,
        error=VerifyError,
        what=f"the optimizer check of {target}",
    )
    result = _validated(run_.value, target)
    if "error" in result:
        raise VerifyError(result["error"])
    printed = run_.printed_summary(what="the factory")
    if arguments.json:
        print(_json_dumps(result, indent=2))
    else:
        print(_text(result) + (f"\nnote:      {printed} (captured, not shown)" if printed else ""))
    return 0 if result["verdict"] == "preserves" else 1


_KEYS = {
    "optimizer": str,
    "verdict": str,
    "drift": dict,
    "floor": float,
    "statement": (str, type(None)),
    "fix": (str, type(None)),
    "recognised": bool,
    "steps": int,
    "classes": int,
    "mode": str,
}


def _validated(value, target):
    """The child's dict, checked field by field (anything else is one ``VerifyError``)."""

    def check(condition):
        if not condition:
            raise VerifyError(
                f"the optimizer check of {target} sent back a malformed result; nothing was judged"
            )

    check(isinstance(value, dict))
    if set(value) == {"error"}:
        check(isinstance(value["error"], str))
        return {"error": " ".join(value["error"].split())[:1000]}
    check(set(value) == set(_KEYS))
    check(all(isinstance(value[key], kind) for key, kind in _KEYS.items()))
    check(value["verdict"] in ("preserves", "breaks") and math.isfinite(value["floor"]))
    drift = value["drift"]
    check(set(drift) == {"weight", "bias"})
    check(all(d is None or isinstance(d, float) and math.isfinite(d) for d in drift.values()))
    return value


def _text(result):
    drift = result["drift"]
    lines = [
        f"optimizer: {result['optimizer']}"
        + ("" if result["recognised"] else " (not in the atlas: measured only)"),
        f"verdict:   {result['verdict']} the head's class sums",
        f"drift:     |1ᵀW| {_number(drift['weight'])}, |1ᵀb| {_number(drift['bias'])} "
        f"(largest over {result['steps']} steps, N = {result['classes']}; "
        f"float64 round-off floor {result['floor']:.1e})",
    ]
    if result["statement"]:
        lines.append(f"reason:    [{result['statement']}] (docs/theory.md, docs/optimizers.md)")
    if result["fix"]:
        lines.append(f"fix:       {result['fix']}")
    return "\n".join(lines)


def _number(value):
    return "nan/inf" if value is None else f"{value:.2e}"
