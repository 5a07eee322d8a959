"""The optimizer atlas: proofs, checks against the real torch.optim and timm optimizers, their
floor pinned by planted violations, the precision findings, ``verify optimizer`` and
``recognise``."""

import json
import os
import textwrap

import forkrun
import pytest
import torch

import verify.cli
from derive import STATEMENTS
from verify.atlas import catalogue, measure_drift, predict_timm, recognise
from verify.atlas.command import _optimizer_check_worker
from verify.atlas.precision import (
    PRECISIONS,
    growth_exponent,
    newton_schulz_amplification,
    sgd_precision_drift,
)
from verify.checks import CHECKS

ATLAS_IDS = [i for i in STATEMENTS if i.startswith("atlas-")]


def test_installed_torch_is_the_cpu_build():
    assert torch.__version__.endswith("+cpu") or torch.version.cuda is None, torch.__version__


def test_timm_imports_and_offers_its_optimizers():
    from verify.atlas.timm_optimizers import timm_optimizer_names

    names = timm_optimizer_names()
    assert {"adamw", "lion", "muon", "lars", "kron"} <= set(names)


@pytest.mark.parametrize("statement_id", ATLAS_IDS)
def test_proof_and_numeric_check_agree_with_the_registry(statement_id):
    statement = STATEMENTS[statement_id]
    proof = statement.prove()
    assert proof.as_expected, str(proof)
    result = CHECKS[statement_id]()
    assert result.as_expected, result.describe()
    if statement.expected == "refuted":
        assert result.counterexample and "N = " in result.counterexample
        assert "tolerance" in result.counterexample


def test_the_three_families_and_structure_are_in_the_registry():
    assert [i for i in ATLAS_IDS if "/" not in i] == [
        "atlas-linear",
        "atlas-left-invariant",
        "atlas-coordinatewise",
        "atlas-structure",
    ]


def test_a_planted_zero_residual_claim_fails_the_proof():
    # Negative control of the symbolic side: a gradient whose columns do not sum to zero.
    import sympy

    from derive.statements.atlas import class_sums, newton_schulz_step

    gradient = sympy.Matrix([[1, 0], [0, 1], [0, 0]])
    assert any(s != 0 for s in class_sums(newton_schulz_step(gradient)))


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1)


def _planted(total):
    """Moves every head row by total / (20 N): the class sum drifts by ``total`` in 20 steps."""

    def plant(model):
        with torch.no_grad():
            model.head.weight[:, 0] += total / 20 / model.head.weight.shape[0]

    return plant


def test_the_floor_is_pinned_from_both_sides_by_planted_drift():
    clean = measure_drift(_sgd, networks=1)
    assert clean.verdict == "preserves"
    above = measure_drift(_sgd, networks=1, after_step=_planted(1.5 * clean.weight_floor))
    below = measure_drift(_sgd, networks=1, after_step=_planted(0.5 * clean.weight_floor))
    assert above.verdict == "breaks"
    assert below.verdict == "preserves"


def test_a_holding_check_is_refuted_by_one_planted_case():
    from verify.checks._common import CheckContext
    from verify.checks.atlas import run_atlas_cases

    context = CheckContext.create(device="cpu", dtype=torch.float64, examples=1, seed=0)
    floor = measure_drift(_sgd).weight_floor
    cases = [
        ("SGD", _sgd, {}),
        ("SGD, planted", _sgd, {"after_step": _planted(3 * floor)}),
    ]
    result = run_atlas_cases("atlas-linear", context, cases)
    assert result.verdict == "refuted" and "planted" in result.counterexample
    assert run_atlas_cases("atlas-linear", context, cases[:1]).verdict == "holds"


def test_drift_and_floor_against_an_independent_float64_sum():
    drift = measure_drift(lambda p: torch.optim.Adam(p, lr=0.01), networks=1, steps=1)
    assert drift.weight == pytest.approx(max(drift.weight_steps))
    assert drift.weight_steps[0] < 1e-15  # zero-mean initialization
    assert drift.weight > 1e6 * drift.weight_floor


def test_newton_schulz_amplifies_the_class_mean_by_its_slope_at_zero():
    factors = newton_schulz_amplification()
    assert all(abs(f - 3.4445) < 1e-3 for f in factors)


def test_muon_breaks_in_bfloat16_and_keeps_the_sums_in_float64_and_re_centred():
    from verify.atlas.precision import newton_schulz_in, recentred

    def muon(model):
        return torch.optim.Muon([model.head.weight], lr=0.02)

    options = {"bias": False, "per_model": True, "networks": 1, "steps": 5}
    shipped = measure_drift(muon, **options)
    assert shipped.verdict == "breaks" and shipped.weight > 1e-3
    with newton_schulz_in(torch.float64):
        assert measure_drift(muon, **options).verdict == "preserves"
    with recentred():
        assert measure_drift(muon, **options).verdict == "preserves"


@pytest.mark.parametrize("name, raised", [("muon", "preserves"), ("adamuon", "breaks")])
def test_timm_muon_family_shipped_and_in_float64(name, raised):
    from verify.atlas.precision import timm_newton_schulz_in
    from verify.atlas.timm_optimizers import build

    def factory(model):
        return build(name, [model.head.weight], lr=1e-2)

    options = {"bias": False, "per_model": True, "networks": 1, "steps": 5}
    assert measure_drift(factory, **options).verdict == "breaks"
    with timm_newton_schulz_in(torch.float64):
        assert measure_drift(factory, **options).verdict == raised


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_sgd_precision_drift_within_the_tolerance_model(precision):
    drift = sgd_precision_drift(precision)
    for step in (1, 10, 100):
        ratio = drift[step] / drift["predicted"][step]
        assert 1 / 8 <= ratio <= 1, (step, ratio)
    assert 0.2 <= growth_exponent(drift) <= 0.7


def test_recognise_known_and_unknown_optimizers():
    weight = [torch.nn.Parameter(torch.zeros(4, 3))]
    assert recognise(torch.optim.SGD(weight, lr=0.1)) == {
        "name": "torch.optim.SGD",
        "verdict": "preserves",
        "statement": "atlas-linear",
        "fix": None,
    }
    muon = recognise(torch.optim.Muon(weight))
    assert muon["verdict"] == "breaks" and "re-centre" in muon["fix"]

    class Custom(torch.optim.SGD):
        pass

    assert recognise(Custom(weight, lr=0.1)) is None


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "recipes_atlas.py").write_text(
        textwrap.dedent(
            """
            import torch

            def body_adamw_head_sgd(model):
                # A per-group recipe the atlas has never seen: AdamW body, SGD head.
                class Both:
                    def __init__(self):
                        self.parts = [torch.optim.AdamW(model.body.parameters(), lr=1e-2),
                                      torch.optim.SGD(model.head.parameters(), lr=0.1)]
                    def zero_grad(self, set_to_none=True):
                        for p in self.parts: p.zero_grad()
                    def step(self):
                        for p in self.parts: p.step()
                return Both()

            def signum(params):
                return torch.optim.SGD(params, lr=0.1) if False else Signum(params)

            class Signum(torch.optim.Optimizer):
                def __init__(self, params):
                    super().__init__(params, {"lr": 0.01})
                @torch.no_grad()
                def step(self, closure=None):
                    for group in self.param_groups:
                        for p in group["params"]:
                            if p.grad is not None:
                                p.sub_(group["lr"] * p.grad.sign())

            def not_an_optimizer(params):
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_worker_judges_recipes_it_has_never_seen(user_module):
    both = _optimizer_check_worker("recipes_atlas:body_adamw_head_sgd", {"steps": 5})
    assert both["verdict"] == "preserves" and both["mode"] == "model"
    assert both["recognised"] is False and both["fix"] is None
    sign = _optimizer_check_worker("recipes_atlas:signum", {"steps": 5})
    assert sign["verdict"] == "breaks" and sign["fix"]
    assert sign["drift"]["weight"] > 1e6 * sign["floor"]
    bad = _optimizer_check_worker("recipes_atlas:not_an_optimizer", {"steps": 5})
    assert set(bad) == {"error"} and "not an optimizer" in bad["error"]


def _cli(*arguments, cwd):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), str(cwd)]))
    return forkrun.run(
        ["-m", "verify", "optimizer", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=300,
    )


def test_cli_exit_codes_and_json(user_module):
    preserved = _cli("recipes_atlas:body_adamw_head_sgd", "--steps", "3", "--json", cwd=user_module)
    assert preserved.returncode == 0, preserved.stderr
    payload = json.loads(preserved.stdout)
    assert {"optimizer", "verdict", "drift", "floor", "statement", "fix"} <= set(payload)
    assert set(payload["drift"]) == {"weight", "bias"}
    broken = _cli("recipes_atlas:signum", "--steps", "3", cwd=user_module)
    assert broken.returncode == 1 and "breaks" in broken.stdout
    failed = _cli("recipes_atlas:not_an_optimizer", cwd=user_module)
    assert failed.returncode == 2
    assert failed.stdout == "" and len(failed.stderr.strip().splitlines()) == 1, failed.stderr


@pytest.mark.parametrize(
    "arguments",
    [["recipes_atlas:not_an_optimizer"], ["no_such_module:f"], ["x", "--steps", "0"]],
    ids=["not-an-optimizer", "no-module", "steps-0"],
)
def test_bad_input_is_exit_2_with_one_line(user_module, capfd, arguments):
    # In this process (the real process's exit code and streams are the test above's): the
    # factory still runs in its own child, forked from here.
    code = verify.cli.main(["optimizer", *arguments])
    out, err = capfd.readouterr()
    assert code == 2
    assert out == "" and len(err.strip().splitlines()) == 1, err


TORCH_SWEEP = [
    ("SGD", {"lr": 0.1}),
    ("ASGD", {"lr": 0.1}),
    ("LBFGS", {"lr": 1, "max_iter": 4, "line_search_fn": "strong_wolfe"}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01}),
    ("Adamax", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01}),
    ("Rprop", {"lr": 0.01}),
    ("Adagrad", {"lr": 0.01}),
    ("Adadelta", {"lr": 1.0}),
]


@pytest.mark.parametrize("name, options", TORCH_SWEEP, ids=[n for n, _ in TORCH_SWEEP])
def test_every_torch_optimizer_agrees_with_the_atlas(name, options):
    cls = getattr(torch.optim, name)
    drift = measure_drift(lambda p: cls(p, **options), networks=1)
    assert drift.verdict == catalogue.TORCH_OPTIMIZERS[name][0]


@pytest.mark.slow
def test_every_cpu_runnable_timm_optimizer_agrees_with_the_atlas():
    from verify.atlas.timm_optimizers import build, runs_here, timm_optimizer_names

    disagreements, ran = [], 0
    for name in timm_optimizer_names():
        if runs_here(name) is not None:
            continue
        ran += 1
        drift = measure_drift(lambda p, name=name: build(name, p, lr=1e-2), networks=1)
        if drift.verdict != predict_timm(name)[0]:
            disagreements.append((name, drift.verdict, drift.weight, drift.bias))
    assert ran >= 80 and not disagreements
