"""verify.monitor: the measurements against independent computations (autograd, explicit
loops), the floors pinned from both sides, planted violations each warning must catch, clean
runs that must not warn, and bit-identical training with and without the monitor."""

import json
import logging
import math

import pytest
import torch
from monitor_helpers import block_atlas, install_fake_atlas, kd_loss, setup, train

from verify import VerifyError
from verify.monitor import KDMonitor, drift_floor, gap_floor, measure_batch
from verify.tolerances import machine_epsilon


def _logits(seed=0, shape=(12, 7), scale=2.0):
    generator = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(*shape, generator=generator, dtype=torch.float64)
    v = scale * torch.randn(*shape, generator=generator, dtype=torch.float64)
    return z, v


def _cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


# -- the measurements -----------------------------------------------------------------------


def test_cosines_match_autograd_gradients():
    z, v = _logits()
    temperature = 3.0
    z_leaf = z.clone().requires_grad_(True)
    (kd_gradient,) = torch.autograd.grad(kd_loss(z_leaf, v, temperature), z_leaf)
    # The T -> infinity limit from its definition: logits matching minus the regularizer.
    z_leaf = z.clone().requires_grad_(True)
    matching = ((z_leaf - v) ** 2).sum(-1) / (2 * z.shape[-1]) - 0.5 * (
        z_leaf.mean(-1) - v.mean(-1)
    ) ** 2
    (limit,) = torch.autograd.grad(matching.sum(), z_leaf)
    perceptron = torch.zeros_like(z)
    for row in range(z.shape[0]):
        perceptron[row, int(z[row].argmax())] += 1.0
        perceptron[row, int(v[row].argmax())] -= 1.0
    measures = measure_batch(z, v, temperature)
    assert measures.cosine_logits_matching == pytest.approx(_cosine(kd_gradient, limit), rel=1e-12)
    assert measures.cosine_perceptron == pytest.approx(_cosine(kd_gradient, perceptron), rel=1e-12)


def test_the_two_limits_are_approached_at_their_ends():
    z, v = _logits(seed=3)
    assert measure_batch(z, v, 1e4).cosine_logits_matching > 1 - 1e-6
    assert measure_batch(z, v, 1e-3).cosine_perceptron > 1 - 1e-6
    # Negative control: each limit is far from the other end.
    assert measure_batch(z, v, 1e-3).cosine_logits_matching < 0.9
    assert measure_batch(z, v, 1e4).cosine_perceptron < 0.9


def test_perceptron_ties_take_the_mean_over_the_tied_classes():
    z = torch.tensor([[3.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    update = torch.tensor([[1.0, -1 / 3, -1 / 3, -1 / 3]], dtype=torch.float64)
    kd = torch.softmax(z / 0.5, -1) - torch.softmax(v / 0.5, -1)
    assert measure_batch(z, v, 0.5).cosine_perceptron == pytest.approx(_cosine(kd, update))
    # At T -> 0 the tied teacher's softmax is the mean over the tied classes.
    assert measure_batch(z, v, 1e-3).cosine_perceptron == pytest.approx(1.0, abs=1e-12)


def test_gap_and_radius_against_direct_computation():
    z, v = _logits(seed=1)
    z = z + torch.linspace(0, 1, z.shape[0], dtype=torch.float64)[:, None]
    measures = measure_batch(z, v, 2.0)
    gaps = [abs(float(a.mean() - b.mean())) for a, b in zip(z, v)]
    ranges = [max(float(a.max() - a.min()), float(b.max() - b.min())) for a, b in zip(z, v)]
    assert measures.gap_max == pytest.approx(max(gaps), rel=1e-12)
    assert measures.gap_relative_max == pytest.approx(
        max(g / r for g, r in zip(gaps, ranges)), rel=1e-12
    )
    assert measures.radius_temperature == pytest.approx(max(ranges) / math.pi, rel=1e-15)
    inside = sum(2.0 > r / math.pi for r in ranges) / len(ranges)
    assert measures.inside_radius == inside


def test_certified_remainder_bounds_the_true_remainder_at_the_worst_example():
    z, v = _logits(seed=2, scale=1.0)
    ranges = torch.maximum(z.amax(-1) - z.amin(-1), v.amax(-1) - v.amin(-1))
    worst = int(ranges.argmax())
    for temperature in (2.0, 5.0, 50.0):
        measures = measure_batch(z, v, temperature)
        assert measures.remainder_bound is not None
        zw, vw = z[worst], v[worst]
        kd = temperature * (
            torch.softmax(zw / temperature, -1) - torch.softmax(vw / temperature, -1)
        )
        d = zw - vw
        limit = (d - d.mean()) / z.shape[-1]
        assert float((kd - limit).norm()) <= measures.remainder_bound
    # Inside the radius there is no bound.
    assert measure_batch(z, v, float(ranges.max()) / math.pi * 0.9).remainder_bound is None


def test_sequences_with_a_mask_are_the_kept_rows():
    z, v = _logits(seed=4, shape=(3, 4, 6))
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    masked = measure_batch(z, v, 3.0, mask=mask)
    flat = measure_batch(z[mask], v[mask], 3.0)
    assert masked == flat and masked.examples == 6


# -- floors, pinned from both sides ---------------------------------------------------------


@pytest.mark.parametrize(("features", "warns"), [(2002, True), (2084, False)])
def test_the_gap_floor_is_pinned_from_both_sides(features, warns):
    # N = 4, teacher [1, 0, 0, 0], student the same plus 2**-38 on class 1: every sum is exact,
    # the gap is 2**-40, the floor eps (F + 6)(2 + 2**-38): ratio 2048 / (F + 6) = 1.02 or 0.98.
    v = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    z = v + torch.tensor([[0.0, 2.0**-38, 0.0, 0.0]], dtype=torch.float64)
    ratio = measure_batch(z, v, 10.0, features=features).gap_floor_ratio
    assert ratio == pytest.approx(2048 / (features + 6), rel=1e-9)
    monitor = KDMonitor(features=features)
    monitor.observe(z, v, 10.0)
    assert [w.cause for w in monitor.warnings] == (["logit-mean-gap"] if warns else [])


def test_gap_floor_counts_features_classes_and_two():
    eps = machine_epsilon(torch.float32)
    assert gap_floor(3.0, dtype=torch.float32, classes=10, features=5) == eps * 17 * 3.0


@pytest.mark.parametrize(("ratio", "warns"), [(1.02, True), (0.98, False)])
def test_the_head_drift_floor_is_pinned_from_both_sides(ratio, warns):
    # Column 0 of W is [2**-10, 0, 0, 0]; row 1 gets delta (exact, from 0). Class mean drift
    # delta/4; floor eps (9 (2**-12 + delta/4) + (2*4 + 8 + 10) delta/4), batch size 8.
    eps = machine_epsilon(torch.float64)
    head = torch.nn.Linear(3, 4, dtype=torch.float64)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, 0] = 2.0**-10
        head.bias.zero_()
    monitor = KDMonitor()
    monitor.watch_head(head)
    delta = 4 * ratio * eps * 9 * 2.0**-12 / (1 - ratio * eps * 35)
    with torch.no_grad():
        head.weight[1, 0] = delta
    z = torch.zeros(8, 4, dtype=torch.float64)
    record = monitor.observe(z, z, 10.0)
    assert record["heads"][0]["weight_floor_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert [w.cause for w in monitor.warnings] == (["head-mean-drift"] if warns else [])


def test_the_head_hook_bounds_every_summand():
    from verify.monitor.head import HeadMagnitude

    torch.manual_seed(3)
    head = torch.nn.Linear(5, 4, dtype=torch.float64)
    hook = HeadMagnitude(head)
    h = torch.randn(7, 5, dtype=torch.float64)
    head(h)
    head.requires_grad_(False)
    explicit = torch.tensor(
        [
            max(
                sum(abs(float(head.weight[i, j] * h[b, j])) for j in range(5))
                + abs(float(head.bias[i]))
                for i in range(4)
            )
            for b in range(7)
        ],
        dtype=torch.float64,
    )
    assert bool((hook.magnitudes((7,)) >= explicit).all())
    assert hook.magnitudes((6,)) is None  # another batch's shape: not used
    hook.remove()
    head(h[:2])
    assert hook.magnitudes((2,)) is None  # removed hooks record nothing


def test_drift_floor_counts_its_operations():
    eps = machine_epsilon(torch.float32)
    floor = drift_floor(2.0, 0.5, dtype=torch.float32, classes=10, batch_size=4, momentum=0.5)
    assert floor == pytest.approx(eps * (9 * 2.5 + (20 + 4 + 10) * 0.5) / 0.5, rel=1e-15)


# -- clean runs do not warn; planted violations are caught -----------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=1.0),
    ],
)
def test_equal_mean_sgd_runs_do_not_warn(dtype, optimizer, monkeypatch):
    install_fake_atlas(monkeypatch)
    teacher, student = setup(dtype=dtype)
    monitor = KDMonitor()
    sgd = optimizer(student.parameters())
    monitor.watch_head(student.head, sgd, teacher_head=teacher.head)
    train(student, teacher, sgd, steps=60, monitor=monitor)
    assert monitor.warnings == []


def test_adamw_is_caught_at_its_first_step_with_the_atlas_reason(monkeypatch):
    install_fake_atlas(monkeypatch)
    teacher, student = setup()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    monitor = KDMonitor().watch_head(student.head, optimizer, teacher_head=teacher.head)
    train(student, teacher, optimizer, steps=5, monitor=monitor)
    first = monitor.warnings[0]
    assert (first.step, first.cause, first.statement) == (
        1,
        "head-mean-drift",
        "atlas-coordinatewise",
    )
    assert "AdamW on the head does not keep equal means" in first.message
    assert "in step 1" in first.message
    assert {w.cause for w in monitor.warnings} == {"head-mean-drift", "logit-mean-gap"}
    gap = next(w for w in monitor.warnings if w.cause == "logit-mean-gap")
    assert "after the head's class mean moved" in gap.message


def test_a_tied_head_under_sgd_is_blamed_on_its_structure(monkeypatch):
    install_fake_atlas(monkeypatch)
    teacher, student = setup(classes=6)
    embedding = torch.nn.Embedding(6, 8, dtype=torch.float64)
    student.head.weight = embedding.weight  # tied: the embedding's gradient joins the head's
    with torch.no_grad():
        embedding.weight.sub_(embedding.weight.mean(0, keepdim=True))
    optimizer = torch.optim.SGD(list(student.parameters()), lr=0.5)
    monitor = KDMonitor().watch_head(student.head, optimizer, teacher_head=teacher.head)
    generator = torch.Generator().manual_seed(0)
    for step in range(3):
        x = torch.randn(16, 6, generator=generator, dtype=torch.float64)
        tokens = torch.randint(0, 6, (16,), generator=generator)
        z = student(x + embedding(tokens)[:, :6])
        v = teacher(x).detach()
        monitor.observe(z, v, 4.0, step=step)
        optimizer.zero_grad()
        kd_loss(z, v, 4.0).backward()
        optimizer.step()
    first = monitor.warnings[0]
    assert (first.cause, first.statement) == ("head-mean-drift", "atlas-structure")
    assert "tied to an input embedding" in first.message


def test_without_the_atlas_the_drift_is_still_caught(monkeypatch):
    block_atlas(monkeypatch)
    teacher, student = setup()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    monitor = KDMonitor().watch_head(student.head, optimizer, teacher_head=teacher.head)
    train(student, teacher, optimizer, steps=3, monitor=monitor)
    first = monitor.warnings[0]
    assert (first.cause, first.statement) == ("head-mean-drift", "mean-preservation")
    assert "AdamW is not in the optimizer atlas" in first.message


def test_default_initialisation_is_caught_at_the_first_step(monkeypatch):
    install_fake_atlas(monkeypatch)
    teacher, student = setup(equal_means=False)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    monitor = KDMonitor().watch_head(student.head, optimizer, teacher_head=teacher.head)
    train(student, teacher, optimizer, steps=30, monitor=monitor)
    assert [(w.step, w.cause) for w in monitor.warnings] == [(0, "logit-mean-gap")]
    assert "not initialised with equal means" in monitor.warnings[0].message


def test_temperature_inside_the_radius_and_the_perceptron_regime_are_caught():
    z, v = _logits(seed=5, scale=3.0)
    monitor = KDMonitor()
    record = monitor.observe(z, v, 0.05)
    causes = {w["cause"] for w in record["warnings"]}
    assert {"outside-radius", "perceptron-regime"} <= causes
    # Negative control: a high temperature raises neither.
    quiet = KDMonitor()
    record = quiet.observe(z, v, 1e3)
    assert not {w["cause"] for w in record["warnings"]} & {"outside-radius", "perceptron-regime"}


def test_a_temperature_tensor_is_read_as_its_value():
    z, v = _logits(seed=9)
    record = KDMonitor().observe(z, v, torch.tensor(4.0))
    assert record == KDMonitor().observe(z, v, 4.0)


def test_each_cause_warns_once_in_one_line(caplog):
    z, v = _logits(seed=6)
    monitor = KDMonitor()
    with caplog.at_level(logging.WARNING, logger="verify.monitor"):
        for step in range(20):
            monitor.observe(z + 1.0, v, 0.05, step=step)
    causes = [w.cause for w in monitor.warnings]
    assert len(causes) == len(set(causes)) == len(caplog.records) == 3
    assert all("\n" not in record.getMessage() for record in caplog.records)


# -- the monitor never changes the training -------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda p: torch.optim.AdamW(p, lr=1e-2), lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9)],
)
def test_training_is_bit_identical_with_and_without_the_monitor(make, tmp_path):
    runs = []
    for monitored in (False, True):
        teacher, student = setup(dtype=torch.float32, equal_means=False)
        optimizer = make(student.parameters())
        monitor = None
        if monitored:
            monitor = KDMonitor(tmp_path / "run.jsonl").watch_head(
                student.head, optimizer, teacher_head=teacher.head
            )
        losses = train(student, teacher, optimizer, steps=8, monitor=monitor)
        if monitor is not None:
            monitor.close()
        runs.append((losses, [p.detach().clone() for p in student.parameters()]))
    (losses_a, params_a), (losses_b, params_b) = runs
    assert all(torch.equal(a, b) for a, b in zip(losses_a, losses_b))
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))
    # Negative control: the comparison sees a change of one ulp.
    nudged = torch.nextafter(params_a[0], torch.full_like(params_a[0], math.inf))
    assert not torch.equal(nudged, params_b[0])


# -- every=k: fewer steps observed, the same measurements on those ------------------------


class _Both:
    """Two monitors observing the same loop (their hooks only read)."""

    def __init__(self, *monitors):
        self.monitors = monitors
        self.records = [[] for _ in monitors]

    def observe(self, *args, **kwargs):
        for monitor, records in zip(self.monitors, self.records):
            records.append(monitor.observe(*args, **kwargs))


def _without_warnings(record):
    return {key: value for key, value in record.items() if key != "warnings"}


def test_every_k_observes_every_kth_step_with_one_step_drifts(monkeypatch):
    install_fake_atlas(monkeypatch)
    teacher, student = setup()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    every_step, every_third = KDMonitor(), KDMonitor(every=3)
    for monitor in (every_step, every_third):
        monitor.watch_head(student.head, optimizer, teacher_head=teacher.head)
    both = _Both(every_step, every_third)
    weights = []
    original = optimizer.step

    def step_and_keep(*args, **kwargs):
        weights.append(student.head.weight.detach().clone())
        return original(*args, **kwargs)

    monkeypatch.setattr(optimizer, "step", step_and_keep)
    train(student, teacher, optimizer, steps=8, monitor=both)
    all_records, third = both.records
    assert [r is not None for r in third] == [s % 3 == 0 for s in range(8)]
    for step in (0, 3, 6):
        assert _without_warnings(third[step]) == _without_warnings(all_records[step])
    # The drift recorded at step 6 is the move of one step (5 -> 6), not of three (3 -> 6).
    drift = third[6]["heads"][0]["weight_mean_drift"]
    one_step = float((weights[6] - weights[5]).sum(0).abs().max()) / 5
    three_steps = float((weights[6] - weights[3]).sum(0).abs().max()) / 5
    assert drift == pytest.approx(one_step, rel=1e-9)
    assert abs(three_steps - one_step) > 1e-3 * one_step  # negative control: they differ
    # Each cause still warns once, at an observed step.
    assert [(w.step, w.cause) for w in every_third.warnings][0] == (3, "head-mean-drift")


def test_every_counts_calls_when_no_step_is_given():
    z, v = _logits(seed=10)
    monitor = KDMonitor(every=2)
    records = [monitor.observe(z, v, 4.0) for _ in range(5)]
    assert [r["step"] if r else None for r in records] == [0, None, 2, None, 4]


# -- outputs ---------------------------------------------------------------------------------


def test_the_jsonl_record_is_the_returned_record(tmp_path):
    path = tmp_path / "run.jsonl"
    z, v = _logits(seed=7)
    with KDMonitor(path) as monitor:
        records = [monitor.observe(z, v, 4.0, step=s) for s in range(3)]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == records
    assert set(records[0]) >= {
        "schema", "step", "temperature", "gap_median", "gap_max", "gap_relative_median",
        "gap_relative_max", "gap_floor_ratio", "radius_temperature", "temperature_over_radius",
        "inside_radius", "remainder_bound", "remainder_bound_relative", "cosine_logits_matching",
        "cosine_perceptron", "heads", "warnings",
    }  # fmt: skip


def test_tensorboard_scalars_are_written(tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    z, v = _logits(seed=8)
    head = torch.nn.Linear(3, z.shape[-1], dtype=torch.float64)
    with KDMonitor(tensorboard=tmp_path / "tb").watch_head(head) as monitor:
        monitor.observe(z, v, 4.0)
        monitor._writer.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "kd/cosine_logits_matching" in tags and "kd/head/weight_floor_ratio" in tags


# -- bad input -------------------------------------------------------------------------------

_Z = torch.zeros(2, 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.observe(_Z, torch.zeros(2, 4), 1.0), "same shape"),
        (lambda m: m.observe(_Z.long(), _Z.long(), 1.0), "floating point"),
        (lambda m: m.observe([[0.0, 1.0]], _Z, 1.0), "torch tensors"),
        (lambda m: m.observe(torch.zeros(2, 1), torch.zeros(2, 1), 1.0), "N >= 2"),
        (lambda m: m.observe(_Z, _Z + math.nan, 1.0), "finite"),
        (lambda m: m.observe(_Z, _Z, 0.0), "T must be"),
        (lambda m: m.observe(_Z, _Z, True), "T must be"),
        (lambda m: m.observe(_Z, _Z, math.inf), "T must be"),
        (lambda m: m.observe(_Z, _Z, 1.0, step=1.5), "step must be"),
        (lambda m: m.observe(_Z, _Z, 1.0, mask=torch.ones(3, dtype=torch.bool)), "mask must"),
        (lambda m: m.observe(_Z, _Z, 1.0, mask=torch.zeros(2, dtype=torch.bool)), "keeps no"),
        (lambda m: m.watch_head(torch.nn.ReLU()), "watch_head needs"),
        (lambda m: m.watch_head(torch.nn.Linear(2, 3), optimizer="sgd"), "optimizer must"),
        (lambda m: KDMonitor(features=-1), "features must"),
        (lambda m: KDMonitor(every=0), "every must"),
        (lambda m: KDMonitor(every=1.5), "every must"),
        (lambda m: KDMonitor(path=""), "path must"),
        (lambda m: KDMonitor(tensorboard=3), "tensorboard must"),
    ],
)
def test_bad_input_is_one_verify_error(call, message):
    with pytest.raises(VerifyError, match=message) as error:
        call(KDMonitor())
    assert "\n" not in str(error.value)


# -- with the real optimizer atlas (passes once verify.atlas exists) -------------------------


def test_the_real_atlas_names_adamw_and_sgd():
    atlas = pytest.importorskip("verify.atlas")
    parameters = [torch.nn.Parameter(torch.zeros(3, 2))]
    adamw = atlas.recognise(torch.optim.AdamW(parameters))
    sgd = atlas.recognise(torch.optim.SGD(parameters, lr=0.1))
    assert (adamw["verdict"], adamw["statement"]) == (
        "breaks",
        "atlas-coordinatewise/three-classes",
    )
    assert (sgd["verdict"], sgd["statement"]) == ("preserves", "atlas-linear")


def test_the_real_atlas_gives_the_adamw_warning_its_reason():
    pytest.importorskip("verify.atlas")
    teacher, student = setup()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    monitor = KDMonitor().watch_head(student.head, optimizer, teacher_head=teacher.head)
    train(student, teacher, optimizer, steps=3, monitor=monitor)
    first = monitor.warnings[0]
    assert (first.cause, first.statement) == (
        "head-mean-drift",
        "atlas-coordinatewise/three-classes",
    )
    assert "AdamW on the head does not keep equal means" in first.message
