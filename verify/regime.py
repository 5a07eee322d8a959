r"""Is your temperature in the logits-matching regime? A report for your own logits.

At high temperature KD's logit gradient tends to centred logits matching
([infinite-temperature]): :math:`\nabla L_{KD}(T) \to G_0 = (d - \langle d\rangle)/N`,
:math:`d = z - v`. For a batch of teacher logits (and student logits, or random perturbations
of the teacher's) :func:`regime_report` measures, at each temperature:

* **distance**: the exact relative distance :math:`\|\nabla L_{KD}(T) - G_0\|_2/\|G_0\|_2` per
  example, from autograd in float64 (median and worst over the batch);
* **first correction's share**: :math:`\|T^{-1}G_1\|_2 / \|\nabla L_{KD}(T) - G_0\|_2`, with
  derive's :math:`G_1`: near 1 when the first correction is the whole deviation (0 for two
  classes, where odd orders vanish);
* **certified**: :mod:`derive.bounds`' certified bound on the same relative distance (the
  remainder after one term, divided by :math:`\|G_0\|`), valid at that temperature and every
  larger one, for the examples where it exists (median and worst);
* **inside the radius**: the fraction of examples with :math:`T > R/\pi`
  ([convergence-radius]), where the series converges and the certificate exists.

Certified bounds are computed for the first :data:`CERTIFIED_EXAMPLES` examples (each costs a
fraction of a second); distances and shares for all of them.

``python -m verify regime --logits FILE [--student FILE] [--temperatures 1,2,4,8,...]
[--json] [--plot FILE.png]`` prints it; ``FILE`` is a ``.pt`` or ``.npy`` array ``[B, N]``.
Without ``--student`` the student's logits are the teacher's plus Gaussian noise of
:data:`PERTURBATION` times each row's standard deviation (seeded by ``--seed``). Bad input (a
file that is not an array, a wrong shape, NaN, a temperature <= 0) is one line on stderr and
exit code 2.

Examples
========

>>> import torch
>>> teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.3, -0.2]], dtype=torch.float64)
>>> report = regime_report(teacher, teacher.flip(-1), temperatures=[1.0, 100.0])
>>> [round(row.distance_median, 4) for row in report.rows]
[0.1332, 0.0011]
>>> report.rows[1].certified_worst >= report.rows[1].distance_worst
True
"""

import argparse
import math
import numbers
import re
from dataclasses import dataclass, field

import numpy
import torch

import derive
from derive import DeriveError
from derive._files import check_output_path
from derive._json import dumps as _json_dumps
from derive._logits import read_logits
from derive._progress import TerminalProgress
from derive._validate import check_integer
from derive.bounds import MAX_BOUND_CLASSES, CertifiedExpansion

from ._errors import MAX_SEED, VerifyError, check_argument
from ._plots import save_png
from .losses import kd_loss
from .regime_axis import axis_measures, crossover_temperature, mark_regimes, perceptron_updates
from .symbolic import gradient_values

__all__ = [
    "DEFAULT_TEMPERATURES",
    "PERTURBATION",
    "CERTIFIED_EXAMPLES",
    "MAX_TEMPERATURES",
    "RegimeRow",
    "RegimeReport",
    "load_logits",
    "perturbed_students",
    "regime_report",
    "plot_regime",
    "add_arguments",
    "run",
]

#: Temperatures of the report unless given.
DEFAULT_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
#: Without student logits: the teacher's plus this many standard deviations (per row) of noise.
PERTURBATION = 0.5
#: The most logits (B*N) a report accepts.
MAX_VALUES = 1 << 22
#: Certified bounds are computed for at most this many examples (the first ones): each costs a
#: fraction of a second of ball arithmetic.
CERTIFIED_EXAMPLES = 64
#: The most temperatures of one report (each costs a certified bound per example).
MAX_TEMPERATURES = 64


def load_logits(path, *, option="--logits"):
    """A float64 tensor ``[B, N]`` from a ``.pt`` (a saved tensor) or ``.npy`` file, through the
    one reader :func:`derive._logits.read_logits` (regular files only; header, dtype and size
    checked before the data is read; dense real tensors only); any problem is a one-line
    :class:`~verify.VerifyError` naming ``option`` and the file."""
    # A copy: the reader's array may be read-only, which a tensor cannot safely share.
    return torch.from_numpy(
        read_logits(path, option=option, max_values=MAX_VALUES, error=VerifyError).copy()
    )


def perturbed_students(teacher, *, seed=0, scale=PERTURBATION):
    """Student logits: ``teacher`` plus Gaussian noise of ``scale`` times each row's standard
    deviation (population), from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(teacher.shape, generator=generator, dtype=torch.float64)
    spread = teacher.std(-1, unbiased=False, keepdim=True)
    spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    return teacher + scale * spread * noise


@dataclass(frozen=True)
class RegimeRow:
    """The report at one temperature (relative distances; ``None`` where undefined)."""

    temperature: float
    distance_median: float
    distance_worst: float
    first_correction_share_median: object
    certified_median: object
    certified_worst: object
    certified_examples: int
    inside_radius: float
    #: The low-temperature side (:mod:`verify.regime_axis`): medians over the batch.
    perceptron_cosine: object = None
    logits_matching_cosine: object = None
    temperature_gradient: object = None

    def to_json(self):
        def clean(value):
            return (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            )

        return {key: clean(value) for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class RegimeReport:
    """Everything :func:`regime_report` found."""

    batch: int
    classes: int
    student_source: str
    radius_temperatures: tuple = field(repr=False)
    rows: tuple = ()
    distances: object = field(default=None, repr=False)  # [temperatures, B]
    certified: object = field(default=None, repr=False)  # [temperatures, B], nan if none
    #: Examples whose perceptron update is not zero (the argmaxes differ): the ones a
    #: perceptron cosine is defined for.
    perceptron_examples: int = 0

    @property
    def radius_temperature_median(self):
        return float(numpy.median(self.radius_temperatures))

    @property
    def radius_temperature_max(self):
        return float(max(self.radius_temperatures))

    @property
    def crossover_temperature(self):
        """Where KD's gradient is as close (cosine, medians) to the perceptron update as to
        logits matching (:func:`verify.regime_axis.crossover_temperature`)."""
        return crossover_temperature(
            [row.temperature for row in self.rows],
            [row.perceptron_cosine for row in self.rows],
            [row.logits_matching_cosine for row in self.rows],
        )

    def to_json(self):
        return {
            "crossover_temperature": self.crossover_temperature,
            "perceptron_examples": self.perceptron_examples,
            "batch": self.batch,
            "classes": self.classes,
            "student": self.student_source,
            "radius_temperature": {
                "median": self.radius_temperature_median,
                "max": self.radius_temperature_max,
            },
            "temperatures": [row.to_json() for row in self.rows],
        }


def _limit_and_correction(student, teacher):
    """derive's G_0 and G_1 evaluated on the batch, ``[B, N]`` each."""
    terms = derive.expand("gradient", order=2).terms
    return (
        gradient_values(terms[0].expr, student, teacher),
        gradient_values(terms[1].expr, student, teacher),
    )


def _kd_gradient(student, teacher, temperature):
    """Autograd's gradient of T^2 KL(softmax(v/T) || softmax(z/T)) per example, ``[B, N]``."""
    leaf = student.detach().clone().requires_grad_(True)
    loss = kd_loss(leaf, teacher, temperature=temperature)
    (gradient,) = torch.autograd.grad(loss.sum(), leaf)
    return gradient


def _median(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(numpy.median(values)) if values else None


def regime_report(
    teacher,
    student=None,
    *,
    temperatures=DEFAULT_TEMPERATURES,
    seed=0,
    student_source=None,
    certified_examples=CERTIFIED_EXAMPLES,
    progress=None,
):
    """Measure how far KD's gradient is from the logits-matching limit at each temperature.

    Parameters
    ==========

    teacher : Tensor ``[B, N]``
        Teacher logits.
    student : Tensor ``[B, N]``, optional
        Student logits; by default :func:`perturbed_students` of the teacher's.
    temperatures : sequence of float > 0
    seed : int
        Seed of the perturbation.
    certified_examples : int
        The certified bounds are computed for the first this many examples (of at most
        :data:`derive.bounds.MAX_BOUND_CLASSES` classes; 0 skips them).
    progress : callable, optional
        Called as ``progress(done, total)`` after each certified bound.

    At most :data:`MAX_TEMPERATURES` temperatures.
    """
    for name, tensor in (("teacher", teacher), ("student", student)):
        check_argument(
            not isinstance(tensor, torch.Tensor)
            or (
                tensor.layout == torch.strided
                and not tensor.is_nested
                and not tensor.is_quantized
                and not tensor.is_meta
                and not tensor.is_complex()
                and tensor.dtype != torch.bool
            ),
            "{} logits must be a dense real tensor, got {} {} of dtype {}",
            name,
            "a" if isinstance(tensor, torch.Tensor) else "",
            getattr(tensor, "layout", type(tensor).__name__),
            getattr(tensor, "dtype", None),
        )
    check_argument(
        isinstance(teacher, torch.Tensor)
        and teacher.ndim == 2
        and teacher.shape[-1] >= 2
        and teacher.shape[0] >= 1,
        "teacher logits must be a tensor [B, N] with N >= 2, got {!r}",
        getattr(teacher, "shape", teacher),
    )
    teacher = teacher.detach().to(torch.float64)
    check_integer(seed, name="seed", minimum=0, maximum=MAX_SEED, error=VerifyError)
    if student is None:
        student = perturbed_students(teacher, seed=seed)
        student_source = student_source or (
            f"teacher + {PERTURBATION} x row std x N(0, 1) noise, seed {seed}"
        )
    check_argument(
        isinstance(student, torch.Tensor) and tuple(student.shape) == tuple(teacher.shape),
        "student logits must have the teacher's shape {}, got {}",
        tuple(teacher.shape),
        tuple(getattr(student, "shape", ())),
    )
    student = student.detach().to(torch.float64)
    check_argument(
        bool(torch.isfinite(teacher).all() and torch.isfinite(student).all()),
        "logits must be finite",
    )
    temperatures = _checked_temperatures(temperatures)
    check_argument(
        progress is None or callable(progress),
        "progress must be None or callable, got {!r}",
        progress,
    )
    limit, correction = _limit_and_correction(student, teacher)
    limit_norm = limit.norm(dim=-1)
    check_integer(certified_examples, name="certified_examples", minimum=0, error=VerifyError)
    check_argument(
        certified_examples == 0 or teacher.shape[1] <= MAX_BOUND_CLASSES,
        "certified bounds take at most {} classes (their cost grows with N), got {}; "
        "certified_examples=0 skips them",
        MAX_BOUND_CLASSES,
        teacher.shape[1],
    )
    expansions = [
        CertifiedExpansion(z.tolist(), v.tolist())
        for z, v in zip(student[:certified_examples], teacher[:certified_examples])
    ]
    spread = torch.maximum(student.amax(-1) - student.amin(-1), teacher.amax(-1) - teacher.amin(-1))
    radius_temperatures = tuple((spread / math.pi).tolist())
    rows, all_distances, all_certified = [], [], []
    done = 0
    for temperature in temperatures:
        deviation = _kd_gradient(student, teacher, temperature) - limit
        deviation_norm = deviation.norm(dim=-1)
        distances = torch.where(
            limit_norm > 0, deviation_norm / limit_norm, torch.full_like(limit_norm, math.nan)
        )
        shares = torch.where(
            deviation_norm > 0,
            (correction / temperature).norm(dim=-1) / deviation_norm,
            torch.full_like(deviation_norm, math.nan),
        )
        certified = []
        for expansion, norm in zip(expansions, limit_norm.tolist()):
            bound = expansion.remainder_bound(temperature, 1, quantity="gradient")
            certified.append(math.nan if bound is None or norm == 0 else bound / norm)
            done += 1
            if progress is not None:
                progress(done, len(expansions) * len(temperatures))
        certified += [math.nan] * (teacher.shape[0] - len(certified))
        defined = [c for c in certified if not math.isnan(c)]
        inside = sum(temperature > r for r in radius_temperatures)
        finite_distances = [d for d in distances.tolist() if not math.isnan(d)]
        axis = axis_measures(student, teacher, temperature, limit)
        rows.append(
            RegimeRow(
                temperature=temperature,
                distance_median=_median(finite_distances),
                distance_worst=max(finite_distances) if finite_distances else None,
                first_correction_share_median=_median(shares.tolist()),
                certified_median=_median(defined),
                certified_worst=max(defined) if defined else None,
                certified_examples=len(defined),
                inside_radius=inside / teacher.shape[0],
                perceptron_cosine=_median(axis["perceptron_cosine"]),
                logits_matching_cosine=_median(axis["logits_matching_cosine"]),
                temperature_gradient=_median(axis["temperature_gradient"]),
            )
        )
        all_distances.append(distances.tolist())
        all_certified.append(certified)
    return RegimeReport(
        batch=teacher.shape[0],
        classes=teacher.shape[1],
        student_source=student_source or "given",
        radius_temperatures=radius_temperatures,
        rows=tuple(rows),
        distances=numpy.array(all_distances),
        certified=numpy.array(all_certified),
        perceptron_examples=_perceptron_examples(student, teacher),
    )


def _perceptron_examples(student, teacher):
    return int((perceptron_updates(student, teacher).abs().sum(-1) > 0).sum())


def _format(value, spec=".3g"):
    return "-" if value is None else format(value, spec)


def report_text(report):
    """The report as a table."""
    lines = [
        f"KD's logit gradient against the logits-matching limit: {report.batch} examples, "
        f"{report.classes} classes; student: {report.student_source}",
        f"radius temperature R/pi: median {report.radius_temperature_median:.3g}, largest "
        f"{report.radius_temperature_max:.3g} (the series in 1/T converges above it)",
    ]
    if report.batch > CERTIFIED_EXAMPLES:
        lines.append(f"certified bounds for the first {CERTIFIED_EXAMPLES} examples")
    lines.append("")
    headers = (
        "T",
        "distance median",
        "worst",
        "1st corr. share",
        "certified median",
        "certified worst",
        "inside radius",
    )
    rows = [
        (
            f"{row.temperature:g}",
            _format(row.distance_median),
            _format(row.distance_worst),
            _format(row.first_correction_share_median, ".2f"),
            _format(row.certified_median),
            _format(row.certified_worst),
            f"{100 * row.inside_radius:.0f} %",
        )
        for row in report.rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines += [
        "",
        "distance: ||grad L_KD(T) - G_0|| / ||G_0|| (autograd, float64); certified: "
        "a proven upper bound on it, valid for every larger T (only inside the radius)",
    ]
    return "\n".join(lines)


def plot_regime(report, axes=None):
    """Distance against T (log-log): median and worst, the certified bounds, and the radius
    temperatures (median and largest) as vertical lines. Returns the axes."""
    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(figsize=(6.4, 4.2))
    temperatures = [row.temperature for row in report.rows]

    def series(name):
        return [
            math.nan if getattr(row, name) is None else getattr(row, name) for row in report.rows
        ]

    axes.loglog(temperatures, series("distance_median"), "o-", color="C0", label="distance, median")
    axes.loglog(
        temperatures,
        series("distance_worst"),
        "o--",
        color="C0",
        alpha=0.6,
        label="distance, worst",
    )
    axes.loglog(
        temperatures,
        series("certified_median"),
        "s-",
        color="C1",
        label="certified bound, median (inside the radius)",
    )
    axes.loglog(
        temperatures,
        series("certified_worst"),
        "s--",
        color="C1",
        alpha=0.6,
        label="certified bound, worst",
    )
    axes.axvline(
        report.radius_temperature_median,
        color="k",
        linestyle=":",
        label=f"R/pi, median ({report.radius_temperature_median:.3g})",
    )
    axes.axvline(
        report.radius_temperature_max,
        color="k",
        linestyle="-.",
        alpha=0.6,
        label=f"R/pi, largest ({report.radius_temperature_max:.3g})",
    )
    axes.set_xlabel("temperature T")
    axes.set_ylabel("||grad L_KD - G_0|| / ||G_0||")
    axes.set_title("distance from the logits-matching regime")
    mark_regimes(
        axes,
        temperatures,
        series("perceptron_cosine"),
        series("logits_matching_cosine"),
        report.crossover_temperature,
    )
    axes.legend(fontsize=8)
    return axes


# -- the command line --------------------------------------------------------------------------


def _checked_temperatures(temperatures):
    """``temperatures`` as a list of floats: 1..MAX_TEMPERATURES finite numbers > 0."""
    try:
        listed = None if isinstance(temperatures, (str, bytes)) else list(temperatures)
    except TypeError:
        listed = None
    check_argument(
        listed is not None
        and 1 <= len(listed) <= MAX_TEMPERATURES
        and all(isinstance(t, numbers.Real) and not isinstance(t, bool) for t in listed),
        "temperatures must be a list of 1 to {} numbers, got {!r}",
        MAX_TEMPERATURES,
        temperatures,
    )
    temperatures = listed
    values = []
    for t in temperatures:
        try:
            value = float(t)
        except OverflowError:
            value = math.inf
        check_argument(
            math.isfinite(value) and value > 0,
            "temperatures must be finite numbers > 0, got {!r}",
            t,
        )
        values.append(value)
    return values


def _temperatures(text):
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of finite "
                f"numbers > 0, got {part.strip()!r} in {text!r}"
            )
        values.append(value)
    if len(set(values)) > MAX_TEMPERATURES:
        raise argparse.ArgumentTypeError(
            f"must list at most {MAX_TEMPERATURES} temperatures, got {len(set(values))}"
        )
    return sorted(set(values))


def _seed(text):
    value = int(text) if re.fullmatch(r"[0-9]{1,10}", text.strip()) else None
    if value is None or value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{MAX_SEED}, got {text!r}")
    return value


def add_arguments(parser):
    """The options of ``python -m verify regime``."""
    parser.add_argument(
        "--logits", required=True, metavar="FILE", help="teacher logits, a .pt or .npy array [B, N]"
    )
    parser.add_argument(
        "--student",
        metavar="FILE",
        help="student logits of the same shape (default: the teacher's plus "
        f"{PERTURBATION} x row std of Gaussian noise)",
    )
    parser.add_argument(
        "--temperatures",
        type=_temperatures,
        default=list(DEFAULT_TEMPERATURES),
        metavar="T1,T2,...",
        help="temperatures (default 1,2,4,...,128)",
    )
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the perturbation")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw distance against T")


def run(arguments):
    """Run ``python -m verify regime``; returns the exit code (errors raise VerifyError)."""
    if arguments.plot is not None:
        try:
            check_output_path(arguments.plot, option="--plot", suffix=".png")
        except DeriveError as error:
            raise VerifyError(str(error)) from None
    teacher = load_logits(arguments.logits, option="--logits")
    student = None
    source = None
    if arguments.student is not None:
        student = load_logits(arguments.student, option="--student")
        check_argument(
            student.shape == teacher.shape,
            "--student must have the shape of --logits {}, got {}",
            tuple(teacher.shape),
            tuple(student.shape),
        )
        source = arguments.student
    progress = TerminalProgress("python -m verify regime", what="certified bound")
    try:
        report = regime_report(
            teacher,
            student,
            temperatures=arguments.temperatures,
            seed=arguments.seed,
            student_source=source,
            progress=progress,
        )
    finally:
        progress.close()
    if arguments.plot is not None:
        # lazy: matplotlib is needed only for plots, and importing verify must not import it
        import matplotlib

        matplotlib.use("Agg")
        # lazy: pyplot after matplotlib.use("Agg") above; plots only, verify must not import it
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6.4, 4.2))
        plot_regime(report, axes)
        figure.tight_layout()
        save_png(figure, arguments.plot, dpi=130)
    if arguments.json:
        print(_json_dumps(report.to_json(), indent=1))
    else:
        print(report_text(report))
        if arguments.plot is not None:
            print(f"wrote {arguments.plot}")
    return 0
