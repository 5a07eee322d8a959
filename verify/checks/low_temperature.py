r"""The low-temperature statements against autograd: limits, exponential rates, the
temperature gradient.

For random logits with unique argmaxes (margins :math:`\gamma \ge 0.3`) each check evaluates
the torch twin of the objective (:data:`verify.losses.TWINS`) and its autograd gradient at
temperatures :math:`T = \gamma/x`, :math:`x = 8 .. 40`, and measures the distance
:math:`E(T)` of :math:`Q/T^k` to the stated limit (:func:`derive.lowtemp.limit`). The
exponential rate is a log-linear slope: :math:`\log E` against :math:`1/T` must have slope
:math:`-\mathrm{gap}`, to within :math:`2 T_{\max}` (what a prefactor polynomial of degree 2 in
:math:`T^{\pm1}` can tilt it over the window). Temperatures where :math:`E` is not 8 times
above the round-off floor :math:`64 N \epsilon (1 + |Q/T^k| + |\lim|)` are left out of the fit,
and the first one is reported as the dtype's floor, as [expansion] does. Every check carries a
negative control: the same fit against a planted wrong gap (1.5 times the true one), or a
planted wrong limit, must fail.
"""

import math
from fractions import Fraction

import torch

from derive.lowtemp import tropical
from derive.lowtemp.limits import LOW_TEMPERATURE

from ..losses import TWINS
from ._common import CheckContext, Counterexample, conclude, numeric_check

__all__ = ["draw_logits", "measure_rate", "RATE_POINTS"]

#: x = gap / T on the fitted grid.
RATE_POINTS = tuple(range(8, 41, 4))
#: E must exceed the round-off floor this many times to be fitted.
RESOLUTION = 8.0


def draw_logits(generator, classes, *, minimum_margin=0.3):
    """A vector of standard normal logits whose margin is at least ``minimum_margin``."""
    while True:
        values = torch.randn(classes, generator=generator, dtype=torch.float64)
        ordered = values.sort(descending=True).values
        if classes == 1 or float(ordered[0] - ordered[1]) >= minimum_margin:
            return values


def _floor(context, classes, *magnitudes):
    return 64 * classes * context.epsilon * (1 + sum(abs(float(m)) for m in magnitudes))


def measure_rate(temperatures, errors, floors):
    """``(slope, points, floor_temperature, window_top)``: the least-squares slope of
    ``log E`` against ``1/T`` over the resolved temperatures."""
    resolved = [
        (1 / t, math.log(e)) for t, e, f in zip(temperatures, errors, floors) if e > RESOLUTION * f
    ]
    floor = next((t for t, e, f in zip(temperatures, errors, floors) if e <= RESOLUTION * f), None)
    if len(resolved) < 3:
        return math.nan, len(resolved), floor, math.nan
    xs, ys = zip(*resolved)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in resolved) / sum((x - mx) ** 2 for x in xs)
    return slope, len(resolved), floor, 1 / min(xs)


def _quantity(name, student, teacher, temperature, quantity, parameters):
    twin = TWINS[name].with_parameters(**parameters) if parameters else TWINS[name]
    leaf = student.clone().requires_grad_(True)
    heat = torch.tensor(temperature, dtype=torch.float64, requires_grad=True)
    loss = twin(leaf.unsqueeze(0), teacher.unsqueeze(0), heat, torch.zeros(1, dtype=torch.long))
    loss = loss.sum()
    gradient, by_temperature = torch.autograd.grad(loss, (leaf, heat))
    return {"loss": loss.detach(), "gradient": gradient, "temperature": by_temperature}[quantity]


def _sweep(context, claims, *, examples):
    """Run every claim ``(name, quantity, power, limit(z, v), gap(z, v), parameters)`` on
    ``examples`` random logit pairs; ``(errors, tolerances, notes, planted_caught)``."""
    generator = context.generator(21)
    errors, tolerances, notes, caught = [], [], [], []
    for index in range(examples):
        classes = 2 + index % 15
        student, teacher = draw_logits(generator, classes), draw_logits(generator, classes)
        for name, quantity, power, limit, gap_of, parameters in claims:
            target = torch.as_tensor(limit(student.tolist(), teacher.tolist()), dtype=torch.float64)
            gap = gap_of(student.tolist(), teacher.tolist())
            temperatures = [gap / x for x in reversed(RATE_POINTS)]
            measured, floors = [], []
            for t in temperatures:
                value = _quantity(name, student, teacher, t, quantity, parameters) / t**power
                measured.append(float((value - target).abs().sum()))
                floors.append(_floor(context, classes, value.abs().sum(), target.abs().sum()))
            slope, points, floor, top = measure_rate(temperatures, measured, floors)
            tolerance = 2 * top if points >= 3 else 0.0
            if points >= 3:
                errors.append(abs(slope + gap))
                tolerances.append(tolerance)
            if points >= 3:
                caught.append(abs(slope + 1.5 * gap) > tolerance)
            reached = gap / floor if floor is not None else None
            notes.append(
                (name, quantity, slope / gap if points >= 3 else math.nan, reached, points)
            )
    return errors, tolerances, notes, caught


def _summary(notes, context):
    lines, unresolved = [], []
    for key in sorted({(n, q) for n, q, *_ in notes}):
        group = [note for note in notes if (note[0], note[1]) == key]
        ratios = [r for _, _, r, _, _ in group if not math.isnan(r)]
        floors = [x for *_, x, _ in group if x is not None]
        line = f"{key[0]} {key[1]}: slope/gap of log E against 1/T "
        line += f"{min(ratios):.3f} .. {max(ratios):.3f}" if ratios else "unresolved"
        line += f" ({len(ratios)} of {len(group)} resolved"
        line += (
            f"; {str(context.dtype).replace('torch.', '')} floor at T = gap/{min(floors):.0f}"
            f" .. gap/{max(floors):.0f}"
            if floors
            else "; no floor on the grid"
        )
        lines.append(line + ")")
        if not ratios:
            unresolved.append(f"{key[0]} {key[1]}")
    return lines, unresolved


def _small_case(claims, context):
    """The first claim at the small explicit logits z = (0, -1), v = (-1, 0): a
    :class:`Counterexample` if its slope misses the stated gap, else ``None``."""
    name, quantity, power, limit, gap_of, parameters = claims[0]
    student = torch.tensor([0.0, -1.0], dtype=torch.float64)
    teacher = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    target = torch.as_tensor(limit(student.tolist(), teacher.tolist()), dtype=torch.float64)
    gap = gap_of(student.tolist(), teacher.tolist())
    temperatures = [gap / x for x in reversed(RATE_POINTS)]
    measured, floors = [], []
    for t in temperatures:
        value = _quantity(name, student, teacher, t, quantity, parameters) / t**power
        measured.append(float((value - target).abs().sum()))
        floors.append(_floor(context, 2, value.abs().sum(), target.abs().sum()))
    slope, points, _, top = measure_rate(temperatures, measured, floors)
    if points < 3:
        return None  # round-off hides the rate here: unresolved, reported by the sweep
    if abs(slope + gap) <= 2 * top:
        return None
    return Counterexample(
        f"z = [0, -1], v = [-1, 0]: |{quantity}/T^{power} - limit| = {measured[-1]:.3g} at "
        f"T = {temperatures[-1]:.3g}, log-slope against 1/T {slope:.3f} (expected -{gap:g}, "
        f"tolerance {2 * top:.3g})",
        abs(slope + gap) if points >= 3 else math.inf,
        2 * top,
    )


def _run(statement_id, claims, context, *, expect_decay=True):
    errors, tolerances, notes, caught = _sweep(context, claims, examples=context.examples)
    lines, unresolved = _summary(notes, context)
    # The control is judged on the fits that resolved a rate; none resolved (float32 at these
    # temperatures) leaves the claims unresolved, as [expansion] reports its round-off floor.
    controls_ok = all(caught)
    lines.append(
        f"negative control (a planted gap 1.5 times the true one): caught in "
        f"{sum(caught)} of {len(caught)} fits"
    )
    violated = any(not (e <= t) for e, t in zip(errors, tolerances)) or not controls_ok
    if not expect_decay:
        violated = any(not (e <= t) for e, t in zip(errors, tolerances))
    return conclude(
        statement_id,
        context,
        errors=errors or [0.0],
        tolerances=tolerances or [0.0],
        unresolved=unresolved,
        violated=violated,
        examples=context.examples,
        search=lambda: _small_case(claims, context),
        notes=lines,
        setup=[f"{context.examples} random logit pairs, N = 2..16, margins >= 0.3"],
    )


def _context(**options):
    return CheckContext.create(**options)


def _min_margin(z, v):
    return min(tropical.margin(z), tropical.margin(v))


def _value(name, quantity, parameters=None):
    form = LOW_TEMPERATURE[name][quantity]
    values = {k: float(eval_fraction(v)) for k, v in (parameters or {}).items()}

    def limit(z, v):
        if quantity == "gradient":
            return [float(form.value(z, v, values, c, math.log)) for c in range(len(z))]
        return float(form.value(z, v, values, 0, math.log))

    return limit


def eval_fraction(text):
    return Fraction(str(text))


@numeric_check("low-temperature-perceptron")
def check_low_temperature_perceptron(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """KD's loss/T and gradient/T against the perceptron's, and their exponential rate."""
    context = _context(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    claims = [
        ("kl", "loss", 1, _value("kl", "loss"), _min_margin, {}),
        ("kl", "gradient", 1, _value("kl", "gradient"), _min_margin, {}),
    ]
    return _run("low-temperature-perceptron", claims, context)


@numeric_check("low-temperature-reverse-silent")
def check_low_temperature_reverse_silent(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """Reverse KL's gradient decays at the student's margin; its value/T tends to
    max v - v_a."""
    context = _context(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    claims = [
        (
            "reverse-kl",
            "gradient",
            0,
            _value("reverse-kl", "gradient"),
            lambda z, v: tropical.margin(z),
            {},
        ),
        ("reverse-kl", "loss", 1, _value("reverse-kl", "loss"), _min_margin, {}),
    ]
    return _run("low-temperature-reverse-silent", claims, context)


@numeric_check("low-temperature-reverse-silent/perceptron-swapped")
def check_perceptron_swapped(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """The naive claim grad/T -> e_a - e_b for reverse KL: its distance does not decay."""
    context = _context(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    claims = [
        ("reverse-kl", "gradient", 1, _value("kl", "gradient"), lambda z, v: tropical.margin(z), {})
    ]
    return _run(
        "low-temperature-reverse-silent/perceptron-swapped", claims, context, expect_decay=False
    )


@numeric_check("low-temperature-f-divergence")
def check_low_temperature_f_divergence(
    *, device="cpu", dtype=torch.float64, examples=4, seed=0, search_examples=None
):
    """The f-divergence members' loss/T^2 against their max-plus limits (JS, JSD, skew KL)."""
    context = _context(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    claims = [
        ("js", "loss", 2, _value("js", "loss"), _min_margin, {}),
        ("jsd", "loss", 2, _value("jsd", "loss", {"beta": "3/10"}), _min_margin, {"beta": "3/10"}),
        (
            "skew-kl",
            "loss",
            2,
            _value("skew-kl", "loss", {"alpha": "1/5"}),
            _min_margin,
            {"alpha": "1/5"},
        ),
        (
            "skew-reverse-kl",
            "loss",
            2,
            _value("skew-reverse-kl", "loss", {"alpha": "1/3"}),
            _min_margin,
            {"alpha": "1/3"},
        ),
    ]
    return _run("low-temperature-f-divergence", claims, context)


@numeric_check("low-temperature-limits")
def check_low_temperature_limits(
    *, device="cpu", dtype=torch.float64, examples=4, seed=0, search_examples=None
):
    """Two temperatures and a hot teacher against their low-temperature limits."""
    context = _context(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    r = TWINS["two-temperature"].derive_parameters.get("r", "1")
    claims = [
        (
            "two-temperature",
            "loss",
            1,
            _value("two-temperature", "loss", {"r": r}),
            lambda z, v: min(tropical.margin(z) / float(eval_fraction(r)), tropical.margin(v)),
            {},
        ),
        (
            "hot-teacher",
            "loss",
            0,
            _value(
                "hot-teacher",
                "loss",
                {
                    "student_temperature": TWINS["hot-teacher"].derive_parameters.get(
                        "student_temperature", "1"
                    )
                },
            ),
            lambda z, v: tropical.margin(v),
            {},
        ),
    ]
    return _run("low-temperature-limits", claims, context)


@numeric_check("temperature-gradient")
def check_temperature_gradient(
    *, device="cpu", dtype=torch.float64, examples=8, seed=0, search_examples=None
):
    """dL/dT (autograd, T a leaf) -> the perceptron loss at low T, at the teacher-and-student
    rate."""
    context = _context(
        device=device, dtype=dtype, examples=examples, seed=seed, search_examples=search_examples
    )
    claims = [("kl", "temperature", 0, _value("kl", "loss"), _min_margin, {})]
    return _run("temperature-gradient", claims, context)


__all__ += ["Counterexample"]
