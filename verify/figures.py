r"""The figures of notebooks 03 and 04, as data and as PNG files.

* :func:`mean_gap_trajectories` distils a teacher MLP into student MLPs and records
  :math:`\max_x |\langle z(x)\rangle - \langle v(x)\rangle|` on fixed held-out inputs after
  every step: equal-mean against default initialization, SGD against Adam
  ([equal-mean], [mean-preservation]).
* :func:`remainder_curves` measures the remainder of the KD gradient after ``K`` terms of
  derive's expansion, against ``T``, in float64 and float32 ([expansion]), with the fitted
  slopes and the float32 floor.
* :func:`write_figures` writes both as PNG (``python -m verify figures --out DIR``).

The numbers come from the same functions as the checks (:mod:`verify.checks`); this module
only chooses one readable setting and draws it.
"""

import os

import numpy
import torch

from derive._files import check_output_directory, check_output_path, write_atomically

from ._errors import check_argument
from ._plots import png_bytes
from .checks.expansion import expansion_terms, remainders
from .checks.objectives import objective_terms
from .convergence import loglog_slope, measure_convergence
from .losses import LOSSES, TWINS, DistillationProblem, _nckd, _tckd
from .networks import NetworkSpec, StackedNetworks
from .optimizers import OptimizerSpec
from .symbolic import SymbolicFunction

__all__ = [
    "mean_gap_trajectories",
    "remainder_curves",
    "plot_mean_gaps",
    "plot_remainders",
    "write_figures",
    "FIGURES",
]

#: The file names :func:`write_figures` writes.
FIGURES = ("03_mean_gap.png", "04_remainders.png")

_SPEC = NetworkSpec(
    kind="mlp",
    input_shape=(8,),
    widths=(32, 32),
    activation="tanh",
    bias=True,
    normalization="none",
    classes=10,
)
_OPTIMIZERS = {
    "SGD (momentum 0.9)": OptimizerSpec("sgd", (("lr", 0.05), ("momentum", 0.9))),
    "Adam": OptimizerSpec("adam", (("lr", 1e-3),)),
}


def _centre_output_rows(networks):
    with torch.no_grad():
        weight = networks.output_weight
        weight.sub_(weight.mean(1, keepdim=True))


def mean_gap_trajectories(*, steps=50, temperature=4.0, seed=0, dtype=torch.float64):
    r"""``{label: array [steps + 1]}`` of :math:`\max_x|\langle z(x)\rangle - \langle v(x)\rangle|`.

    One teacher and one student architecture (an MLP 8-32-32-10, tanh); the student learns
    :math:`L_{KD}` at ``temperature`` from the teacher's logits on fresh random inputs.
    Equal-mean initialization centres both output layers' rows (:math:`\bar w = 0`) and gives
    the student the teacher's :math:`\bar b`; default initialization is PyTorch's.
    """
    check_argument(
        isinstance(steps, int) and steps >= 1, "steps must be an integer >= 1, got {!r}", steps
    )
    generator = torch.Generator().manual_seed(seed)
    batches = [
        torch.randn(1, 32, 8, generator=generator, dtype=torch.float64).to(dtype)
        for _ in range(steps)
    ]
    held_out = torch.randn(1, 256, 8, generator=generator, dtype=torch.float64).to(dtype)
    teacher = StackedNetworks.build(_SPEC, count=1, seed=seed + 1000, dtype=dtype)
    kd = LOSSES["kl"]
    curves = {}
    for initialization in ("equal-mean", "default"):
        for label, optimizer_spec in _OPTIMIZERS.items():
            student = StackedNetworks.build(_SPEC, count=1, seed=seed, dtype=dtype)
            if initialization == "equal-mean":
                _centre_output_rows(student)
                _centre_output_rows(
                    teacher_copy := StackedNetworks.build(
                        _SPEC, count=1, seed=seed + 1000, dtype=dtype
                    )
                )
                with torch.no_grad():
                    student.output_bias.sub_(
                        student.output_bias.mean(1, keepdim=True)
                        - teacher_copy.output_bias.mean(1, keepdim=True)
                    )
                reference = teacher_copy
            else:
                reference = teacher
            curves[f"{initialization} init, {label}"] = _distil(
                student, reference, optimizer_spec, kd, temperature, batches, held_out
            )
    return curves


def _distil(student, teacher, optimizer_spec, objective, temperature, batches, held_out):
    optimizer = optimizer_spec.build(student.leaves())

    def gap():
        with torch.no_grad():
            return float(
                (student.forward(held_out)[1].mean(-1) - teacher.forward(held_out)[1].mean(-1))
                .abs()
                .max()
            )

    gaps = [gap()]
    for inputs in batches:
        with torch.no_grad():
            _, teacher_logits = teacher.forward(inputs)
        _, logits = student.forward(inputs)
        temperatures = torch.full(logits.shape[:-1], temperature, dtype=logits.dtype)
        labels = torch.zeros(logits.shape[:-1], dtype=torch.long)
        problem = DistillationProblem(
            logits, teacher_logits, labels, teacher_logits.softmax(-1), temperatures
        )
        optimizer.zero_grad(set_to_none=True)
        objective(problem).mean().backward()
        optimizer.step()
        gaps.append(gap())
    return numpy.array(gaps)


def remainder_curves(*, classes=5, seed=0, orders=(1, 2, 3, 4)):
    r"""Remainders of the KD gradient after ``K`` terms, against ``T``, in float64 and float32.

    Returns ``{"temperatures": array, (dtype_name, K): {"remainder": array, "roundoff": array,
    "convergence": Convergence}}``: the remainder's norm over one logit vector, the round-off
    measured against a 40-digit mpmath reference, and the fitted slope with the dtype's floor.
    """
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(1, classes, generator=generator, dtype=torch.float64)
    teacher = torch.randn(1, classes, generator=generator, dtype=torch.float64)
    temperatures = numpy.logspace(1, 8, 29)
    gradient_terms, loss_terms = expansion_terms(max(orders))
    curves = {"temperatures": temperatures}
    for dtype in (torch.float64, torch.float32):
        measured = remainders(
            student.to(dtype), teacher.to(dtype), temperatures, gradient_terms, loss_terms
        )
        for order in orders:
            size, roundoff = measured["gradient", order]
            curves[str(dtype).removeprefix("torch."), order] = {
                "remainder": size,
                "roundoff": roundoff,
                "convergence": measure_convergence(temperatures, size, roundoff, order=order),
            }
    return curves


def plot_mean_gaps(curves, ax=None):
    """Draw :func:`mean_gap_trajectories` on ``ax`` (log scale: round-off level is visible)."""
    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(7, 4.5)).gca()
    styles = {"SGD": "-", "Adam": "--"}
    for label, gaps in curves.items():
        style = styles["Adam" if "Adam" in label else "SGD"]
        color = "tab:blue" if label.startswith("equal-mean") else "tab:red"
        ax.semilogy(
            numpy.arange(len(gaps)),
            numpy.maximum(gaps, 1e-18),
            style,
            color=color,
            label=label,
            linewidth=2,
        )
    ax.axhline(float(torch.finfo(torch.float64).eps), color="grey", linewidth=0.8, linestyle=":")
    ax.text(
        0.5,
        float(torch.finfo(torch.float64).eps) * 1.6,
        "float64 machine epsilon",
        color="grey",
        fontsize=8,
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(r"$\max_x |\langle z(x)\rangle - \langle v(x)\rangle|$ (logit units)")
    ax.set_title("Student-teacher logit-mean gap during KD (T = 4)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_remainders(curves, ax=None):
    """Draw :func:`remainder_curves`: one line per K and dtype, slopes annotated, floor marked."""
    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(7, 5)).gca()
    temperatures = curves["temperatures"]
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    orders = sorted({key[1] for key in curves if isinstance(key, tuple)})
    for color, order in zip(colors, orders):
        for dtype, style in (("float64", "-"), ("float32", ":")):
            data = curves[dtype, order]
            convergence = data["convergence"]
            slope = f"slope {convergence.slope:.2f}" if convergence.resolved else "unresolved"
            ax.loglog(
                temperatures,
                data["remainder"],
                style,
                color=color,
                linewidth=2 if dtype == "float64" else 1.5,
                label=f"K={order}, {dtype}: {slope}",
            )
    ax.loglog(
        temperatures,
        curves["float64", orders[0]]["roundoff"],
        color="grey",
        linewidth=0.8,
        label="float64 round-off (vs 40-digit mpmath)",
    )
    floor = curves["float32", orders[0]]["convergence"].floor
    if floor:
        # Past this T, float32 round-off hides even the first-order remainder.
        ax.axvline(floor, color="black", linestyle="--", linewidth=1)
        ax.text(
            floor * 1.3,
            ax.get_ylim()[1] / 1e3,
            f"float32 floor of\nthe T^-1 term:\nT = {floor:.3g}",
            fontsize=8,
        )
    ax.set_xlabel("temperature T")
    ax.set_ylabel(r"$\|\nabla L_{KD}(T) - \sum_{k<K} T^{-k} G_k\|$ (logit-gradient units)")
    ax.set_title("Remainder after K terms of the expansion: slope -K")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def write_figures(out, *, seed=0):
    """Write :data:`FIGURES` into the directory ``out`` (created if missing); their paths.

    The directory is checked before anything is computed, and each file is written whole or
    not at all, with normal permissions (:mod:`derive._files`)."""

    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib

    matplotlib.use("Agg")
    # lazy: pyplot after matplotlib.use("Agg") above; plots only, verify must not import it
    import matplotlib.pyplot as plt

    check_output_directory(out)
    check_argument(
        isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0,
        "seed must be an integer >= 0, got {!r}",
        seed,
    )
    for name in FIGURES:
        if os.path.isdir(out):
            check_output_path(os.path.join(out, name))
    data = [
        (FIGURES[0], mean_gap_trajectories(seed=seed), plot_mean_gaps),
        (FIGURES[1], remainder_curves(seed=seed), plot_remainders),
    ]
    os.makedirs(out, exist_ok=True)
    paths = []
    for name, values, plot in data:
        figure = plt.figure(figsize=(10, 5))
        plot(values, figure.gca())
        figure.tight_layout()
        paths.append(write_atomically(os.path.join(out, name), png_bytes(figure, dpi=130)))
    return paths


# -- objective families (notebooks 05 and 06) ------------------------------------------------


def _draw_logits(classes, seed, *, scale=2.0):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(1, classes, generator=generator, dtype=torch.float64) * scale
    teacher = torch.randn(1, classes, generator=generator, dtype=torch.float64) * scale
    return student, teacher


def _twin_values(entry, student, teacher, temperatures, labels):
    twin = TWINS[entry[0]].with_parameters(**entry[1]) if entry[1] else TWINS[entry[0]]
    column = torch.tensor(temperatures, dtype=torch.float64)
    count = len(temperatures)
    return twin(
        student.repeat(count, 1), teacher.repeat(count, 1), column, labels.repeat(count)
    ).numpy()


def _derived_values(entry, student, teacher, labels, order):
    """derive's first ``order`` loss terms, evaluated at the logits."""
    twin = TWINS[entry[0]]
    parameters = dict(twin.parameters)
    parameters.update(entry[1])
    terms = objective_terms(entry[0], "loss", order, tuple(parameters.items()), twin.substitution)
    return [float(SymbolicFunction(term)(student, teacher, labels=labels)) for term in terms]


def objective_curves(entries, *, classes=6, seed=0, temperatures=None):
    r"""For each ``(label, (objective, parameters))``: the twin's loss against ``T`` (autograd's
    forward pass, float64) at one pair of drawn logits, and derive's :math:`L_0` and
    :math:`L_1` there. Returns ``{"temperatures": array, label: {"value", "terms"}}``."""
    temperatures = numpy.logspace(0, 3, 25) if temperatures is None else numpy.asarray(temperatures)
    student, teacher = _draw_logits(classes, seed)
    labels = torch.tensor([0])
    curves = {"temperatures": temperatures}
    for label, entry in entries:
        curves[label] = {
            "value": _twin_values(entry, student, teacher, temperatures, labels),
            "terms": _derived_values(entry, student, teacher, labels, 2),
        }
    return curves


def plot_objective_curves(curves, ax=None, *, weights=None):
    """Each objective's loss (solid) and derive's :math:`L_0 + L_1/T` (dashed) against ``T``;
    with ``weights``, each divided by its weight (e.g. :math:`f''(1)`)."""
    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(7, 4.5)).gca()
    temperatures = curves["temperatures"]
    for label, data in curves.items():
        if label == "temperatures":
            continue
        weight = 1.0 if weights is None else float(weights[label])
        (line,) = ax.semilogx(temperatures, data["value"] / weight, label=label, linewidth=2)
        first, second = data["terms"]
        ax.semilogx(
            temperatures,
            (first + second / temperatures) / weight,
            "--",
            color=line.get_color(),
            linewidth=1,
        )
    ax.set_xlabel("temperature T")
    ax.set_ylabel("loss" + (" / weight" if weights else ""))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def difference_curve(first, second, *, classes=6, seed=0, temperatures=None):
    r""":math:`|L_1(T) - L_2(T)|` of two objectives' twins against ``T`` (one drawn logit pair),
    with its fitted log-log slope over the upper decade."""
    temperatures = numpy.logspace(0, 4, 25) if temperatures is None else numpy.asarray(temperatures)
    student, teacher = _draw_logits(classes, seed)
    labels = torch.tensor([0])
    difference = numpy.abs(
        _twin_values(first, student, teacher, temperatures, labels)
        - _twin_values(second, student, teacher, temperatures, labels)
    )
    upper = temperatures >= temperatures[-1] / 10
    return {
        "temperatures": temperatures,
        "difference": difference,
        "slope": loglog_slope(temperatures[upper], difference[upper]),
    }


def dkd_split(*, classes=(2, 3, 5, 10), seed=0, temperature=4.0):
    """KL, TCKD and (1 - p_g) NCKD (without T^2) at one temperature, for drawn logits of each
    number of classes; the label is class 1."""
    rows = []
    for count in classes:
        student, teacher = _draw_logits(count, seed + count)
        labels = torch.tensor([0])
        column = torch.tensor([temperature], dtype=torch.float64)
        log_q = torch.log_softmax(student / temperature, -1)
        log_p = torch.log_softmax(teacher / temperature, -1)
        kl = float((log_p.exp() * (log_p - log_q)).sum())
        target = float(_tckd(student, teacher, column, labels))
        others = float(_nckd(student, teacher, column, labels))
        weight = 1 - float(log_p.exp()[0, 0])
        rows.append(
            {
                "classes": count,
                "kl": kl,
                "tckd": target,
                "nckd": others,
                "weighted_nckd": weight * others,
                "residual": kl - target - weight * others,
            }
        )
    return rows
