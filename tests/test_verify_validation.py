"""Argument validation: one parametrised table of bad calls, each raising VerifyError with a
message that names the bad value."""

import pytest
import sympy
import torch

from verify import VerifyError, check_argument, strategies
from verify.checks.expansion import check_expansion
from verify.checks.mean_preservation import check_mean_preservation
from verify.checks.zero_mean import check_zero_mean_gradient
from verify.convergence import measure_convergence
from verify.devices import resolve_device, resolve_dtype
from verify.networks import NetworkSpec, StackedNetworks
from verify.optimizers import OptimizerSpec
from verify.registry import run_checks
from verify.results import CheckResult
from verify.search import draw_examples, find_counterexample
from verify.symbolic import SymbolicFunction

SPEC = dict(
    kind="mlp",
    input_shape=(2,),
    widths=(),
    activation="relu",
    bias=True,
    normalization="none",
    classes=3,
)

BAD_CALLS = [
    (lambda: check_zero_mean_gradient(examples=0), "examples must be an integer >= 1, got 0"),
    (lambda: check_mean_preservation(examples=2.5), "examples must be an integer >= 1, got 2.5"),
    (lambda: check_expansion(examples=True), "examples must be an integer >= 1, got True"),
    (lambda: check_zero_mean_gradient(seed=-1), "seed must be an integer in 0..4294967295, got -1"),
    (lambda: check_zero_mean_gradient(seed="0"), "seed must be an integer, got '0'"),
    (
        lambda: check_zero_mean_gradient(dtype="float16"),
        "dtype must be one of float64, float32, got 'float16'",
    ),
    (
        lambda: check_zero_mean_gradient(dtype=torch.int64),
        "dtype must be one of float64, float32, got torch.int64",
    ),
    (
        lambda: check_zero_mean_gradient(device="tpu"),
        "device must be one of auto, cpu, cuda, got 'tpu'",
    ),
    (
        lambda: check_zero_mean_gradient(search_examples=0),
        "search_examples must be an integer >= 1, got 0",
    ),
    (lambda: resolve_dtype("half"), "dtype must be one of float64, float32, got 'half'"),
    (lambda: resolve_device(3), "device must be one of auto, cpu, cuda, got 3"),
    (lambda: strategies.class_counts(min_value=1), "min_value must be an integer >= 2, got 1"),
    (
        lambda: strategies.class_counts(min_value=5, max_value=3),
        "min_value=5 must be <= max_value=3",
    ),
    (lambda: strategies.batch_sizes(max_value=0), "max_value must be an integer >= 1, got 0"),
    (
        lambda: strategies.temperatures(min_value=-1.0),
        "min_value must be a positive number, got -1.0",
    ),
    (
        lambda: strategies.scales(max_value=float("inf")),
        "max_value must be a positive number, got inf",
    ),
    (lambda: strategies.logit_vectors(min_size=0), "min_size must be an integer >= 1, got 0"),
    (
        lambda: strategies.logits(batch_size=0, classes=3),
        "batch_size must be an integer >= 1, got 0",
    ),
    (
        lambda: strategies.distillation_problems(min_classes=9, max_classes=3),
        "min_classes=9 must be <= max_classes=3",
    ),
    (
        lambda: strategies.sgd_optimizers(min_learning_rate=0.0),
        "min_learning_rate must be a positive number, got 0.0",
    ),
    (lambda: strategies.logits(batch_size=2, classes=3, salt=2), "salt must be 0 or 1, got 2"),
    (
        lambda: strategies.losses(shift_invariant="yes"),
        "shift_invariant must be True, False or None, got 'yes'",
    ),
    (lambda: strategies.network_specs(kinds=("rnn",)), "kinds must be a nonempty subset of"),
    (lambda: strategies.network_specs(min_depth=0), "min_depth must be an integer >= 1, got 0"),
    (lambda: strategies.optimizers(names=("lbfgs",)), "names must be a nonempty subset of"),
    (lambda: strategies.adaptive_optimizers(names=("sgd",)), "names must be a nonempty subset of"),
    (
        lambda: strategies.adaptive_optimizers(max_learning_rate=-1.0),
        "max_learning_rate must be a positive number, got -1.0",
    ),
    (lambda: NetworkSpec(**{**SPEC, "kind": "rnn"}), "kind must be one of mlp, conv, got 'rnn'"),
    (lambda: NetworkSpec(**{**SPEC, "activation": "swish"}), "activation must be one of"),
    (lambda: NetworkSpec(**{**SPEC, "normalization": "group"}), "normalization must be one of"),
    (lambda: NetworkSpec(**{**SPEC, "classes": 1}), "classes must be an integer >= 2, got 1"),
    (
        lambda: NetworkSpec(**{**SPEC, "input_shape": (1, 2)}),
        "input_shape of a mlp must have 1 entries, got (1, 2)",
    ),
    (
        lambda: StackedNetworks.build(NetworkSpec(**SPEC), count=0),
        "count must be an integer >= 1, got 0",
    ),
    (lambda: OptimizerSpec("lbfgs"), "optimizer must be one of sgd, adam, adamw, rmsprop, adagrad"),
    (
        lambda: OptimizerSpec("adam", (("weight_decay", 0.1),)).predicted_mean_factors(3),
        "no mean prediction for Adam(weight_decay=0.1) with coupled weight decay",
    ),
    (lambda: SymbolicFunction(sympy.Symbol("w")), "cannot evaluate symbol w"),
    (lambda: SymbolicFunction(sympy.sin(sympy.Symbol("z_i", real=True))), "cannot evaluate sin"),
    (
        lambda: SymbolicFunction("z_i")(torch.zeros(2, 3), torch.zeros(2, 4)),
        "student and teacher logits must have the same shape",
    ),
    (
        lambda: SymbolicFunction("z_i/T")(torch.zeros(2, 3), torch.zeros(2, 3)),
        "needs a temperature",
    ),
    (
        lambda: measure_convergence([1.0, 2.0], [1.0], [0.0, 0.0], order=1),
        "temperatures, differences and roundoff must be 1-d of one length",
    ),
    (
        lambda: measure_convergence([2.0, 1.0], [1.0, 1.0], [0.0, 0.0], order=1),
        "temperatures must increase",
    ),
    (
        lambda: draw_examples(strategies.class_counts(), 0, seed=0),
        "count must be an integer >= 1, got 0",
    ),
    (
        lambda: run_checks(ids=["zero-mean-gradient"], search_examples=0),
        "search_examples must be an integer >= 1, got 0",
    ),
    (
        lambda: find_counterexample(strategies.class_counts(), bool, seed=0, max_examples=0),
        "max_examples must be an integer >= 1, got 0",
    ),
    (
        lambda: CheckResult(
            id="x",
            expected="maybe",
            verdict="holds",
            worst_error=0,
            tolerance=1,
            examples=1,
            device="cpu",
            dtype="float64",
        ),
        "expected must be one of holds, refuted, got 'maybe'",
    ),
    (lambda: check_argument(False, "bad {!r}", 7), "bad 7"),
]


@pytest.mark.parametrize("call, message", BAD_CALLS, ids=[m[:40] for _, m in BAD_CALLS])
def test_bad_calls_raise_verify_error(call, message):
    with pytest.raises(VerifyError) as raised:
        call()
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda_is_a_verify_error():
    with pytest.raises(VerifyError, match="'cuda' was requested but CUDA is not available"):
        check_zero_mean_gradient(device="cuda")
