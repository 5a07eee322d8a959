r"""``python -m verify monitor-report RUN.jsonl [--plot FILE.png] [--json]``: when and why the
premise of logits matching broke in a run recorded by :class:`~verify.monitor.KDMonitor`.

:func:`read_log` reads and validates the JSON Lines file, :func:`summarise` returns a
:class:`RunSummary` (the causes in the order they first appeared, each with its step,
statement and message, and the extremes of the curves), :func:`plot_run` draws the curves.
Bad input (no such file, a line that is not a monitor record) is one line on stderr and exit
code 2.

Examples
========

>>> records = [{"schema": 1, "step": 0, "gap_relative_max": 0.0, "warnings": []},
...            {"schema": 1, "step": 1, "gap_relative_max": 0.2, "warnings": [
...             {"step": 1, "cause": "logit-mean-gap", "statement": "equal-mean",
...              "message": "the logit means differ"}]}]
>>> summary = summarise(records)
>>> summary.premise, [cause["cause"] for cause in summary.causes], summary.verdict
('broken', ['logit-mean-gap'], 'the premise broke at step 1: the logit means differ')
"""

import json
import math
import os
from dataclasses import asdict, dataclass, field

from derive import DeriveError
from derive._files import check_output_path
from derive._json import dumps as _json_dumps

from .._errors import VerifyError, check_argument
from .._plots import save_png
from .monitor import SCHEMA_VERSION

__all__ = ["RunSummary", "read_log", "summarise", "summary_text", "plot_run"]

#: The curves summarised: record key -> (how its extreme is taken, what it is).
CURVES = {
    "gap_relative_max": (max, "logit-mean gap / spread, largest"),
    "gap_floor_ratio": (max, "logit-mean gap / round-off floor, largest"),
    "temperature_over_radius": (min, "T / (R/pi), smallest"),
    "remainder_bound_relative": (max, "certified remainder / |G_0|, largest"),
    "cosine_logits_matching": (min, "cosine(KD gradient, logits matching), smallest"),
    "cosine_perceptron": (max, "cosine(KD gradient, perceptron), largest"),
}
#: At most this many records are read (a run logged every step for a long time).
MAX_RECORDS = 10_000_000


@dataclass
class RunSummary:
    """What :func:`summarise` found in a run's records."""

    steps: int
    first_step: int
    last_step: int
    premise: str
    verdict: str
    causes: list = field(default_factory=list)
    extremes: dict = field(default_factory=dict)

    def to_json(self):
        return asdict(self)


def read_log(path: "str | os.PathLike[str]") -> list:
    """The records of a monitor's JSON Lines file; any problem is a one-line
    :class:`~verify.VerifyError` naming the file (and the line)."""
    check_argument(
        isinstance(path, (str, os.PathLike)) and str(path) != "",
        "RUN.jsonl must be a file name, got {!r}",
        path,
    )
    check_argument(os.path.isfile(path), "no such file: {}", path)
    records: list[dict] = []
    try:
        with open(path, encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                check_argument(
                    len(records) < MAX_RECORDS, "{}: more than {} records", path, MAX_RECORDS
                )
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                check_argument(
                    isinstance(record, dict)
                    and record.get("schema") == SCHEMA_VERSION
                    and isinstance(record.get("step"), int)
                    and isinstance(record.get("warnings", []), list),
                    "{} line {}: not a monitor record (a JSON object with schema {} and an integer "
                    "step, as KDMonitor writes)",
                    path,
                    number,
                    SCHEMA_VERSION,
                )
                records.append(record)
    except UnicodeDecodeError:
        raise VerifyError(f"{path}: not a text file (KDMonitor writes UTF-8 JSON Lines)") from None
    except OSError as error:
        raise VerifyError(f"cannot read {path}: {error.strerror or error}") from None
    check_argument(records, "{}: no records (an empty log)", path)
    return records


def _values(records, key):
    return [
        r[key] for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
    ]


def summarise(records: list) -> RunSummary:
    """A :class:`RunSummary` of ``records`` (dicts as :meth:`KDMonitor.observe` returns)."""
    check_argument(records, "records must not be empty")
    causes = []
    for record in records:
        for warning in record.get("warnings", []):
            causes.append(
                {
                    "cause": warning.get("cause"),
                    "statement": warning.get("statement"),
                    "step": warning.get("step", record["step"]),
                    "message": warning.get("message"),
                }
            )
    extremes = {}
    for key, (extreme, _) in CURVES.items():
        values = _values(records, key)
        extremes[key] = extreme(values) if values else None
    head_ratios = [
        head.get(f"{p}_floor_ratio")
        for r in records
        for head in r.get("heads", [])
        for p in ("weight", "bias")
        if isinstance(head.get(f"{p}_floor_ratio"), (int, float))
    ]
    extremes["head_drift_floor_ratio"] = max(head_ratios) if head_ratios else None
    steps = [r["step"] for r in records]
    if causes:
        first = causes[0]
        verdict = f"the premise broke at step {first['step']}: {first['message']}"
    else:
        verdict = "the premise held: equal logit means to round-off" + (
            ", the heads' class means kept" if head_ratios else ""
        )
    return RunSummary(
        steps=len(records),
        first_step=min(steps),
        last_step=max(steps),
        premise="broken" if causes else "held",
        verdict=verdict,
        causes=causes,
        extremes=extremes,
    )


def summary_text(summary: RunSummary, *, name: str = "run") -> str:
    """The summary as lines of text."""
    lines = [
        f"{name}: {summary.steps} records (steps {summary.first_step}..{summary.last_step}), "
        f"premise {summary.premise}",
        f"  {summary.verdict}",
    ]
    for cause in summary.causes:
        lines.append(
            f"  step {cause['step']}: {cause['cause']} [{cause['statement']}]: {cause['message']}"
        )
    labels = dict((key, label) for key, (_, label) in CURVES.items())
    labels["head_drift_floor_ratio"] = "head class-mean drift / round-off floor, largest"
    for key, value in summary.extremes.items():
        shown = "-" if value is None else f"{value:.3g}"
        lines.append(f"  {labels[key]:<50} {shown}")
    return "\n".join(lines)


def plot_run(records, axes=None, *, label=None):
    """Four panels against the step: gap/spread, head drift/floor, the two cosines and
    T/(R/pi); the steps of the warnings as vertical lines. Returns the axes."""
    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 2, figsize=(9.6, 6.4))
    axes = list(getattr(axes, "flat", axes))
    steps = [r["step"] for r in records]

    def series(key, source=None):
        values = []
        for r in source or records:
            value = r.get(key)
            values.append(value if isinstance(value, (int, float)) else math.nan)
        return values

    def positive(values):  # a log axis shows no zeros: leave them out
        return [v if v > 0 else math.nan for v in values]

    axes[0].semilogy(steps, positive(series("gap_relative_max")), label=label)
    axes[0].set_title("logit-mean gap / spread (largest)")
    drift = [
        max(
            [
                h.get(f"{p}_floor_ratio") or 0.0
                for h in r.get("heads", [])
                for p in ("weight", "bias")
            ]
            or [math.nan]
        )
        for r in records
    ]
    axes[1].semilogy(steps, positive(drift), label=label)
    axes[1].axhline(1.0, color="k", linestyle=":")
    axes[1].set_title("head class-mean drift / round-off floor")
    axes[2].plot(steps, series("cosine_logits_matching"), label=label)
    axes[2].plot(
        steps, series("cosine_perceptron"), linestyle="--", color=axes[2].lines[-1].get_color()
    )
    axes[2].set_title("cosine of KD's gradient: logits matching (-), perceptron (--)")
    axes[3].plot(steps, series("temperature_over_radius"), label=label)
    axes[3].axhline(1.0, color="k", linestyle=":")
    axes[3].set_title("T / (R/pi)")
    for record in records:
        for warning in record.get("warnings", []):
            axes[0].axvline(warning.get("step", record["step"]), color="r", alpha=0.2)
    for a in axes[2:]:
        a.set_xlabel("step")
    return axes


# -- the command line --------------------------------------------------------------------------


def add_arguments(parser):
    """The options of ``python -m verify monitor-report``."""
    parser.add_argument("log", metavar="RUN.jsonl", help="a KDMonitor JSON Lines log")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the curves")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(arguments):
    """Run ``python -m verify monitor-report``; returns the exit code (errors raise
    VerifyError)."""
    if arguments.plot is not None:
        try:
            check_output_path(arguments.plot, option="--plot", suffix=".png")
        except DeriveError as error:
            raise VerifyError(str(error)) from None
    records = read_log(arguments.log)
    summary = summarise(records)
    if arguments.plot is not None:
        # lazy: matplotlib is needed only for plots, and importing verify must not import it
        import matplotlib

        matplotlib.use("Agg")
        # lazy: pyplot after matplotlib.use("Agg") above; plots only, verify must not import it
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 2, figsize=(9.6, 6.4))
        plot_run(records, axes)
        figure.tight_layout()
        save_png(figure, arguments.plot, dpi=110)
    if arguments.json:
        print(_json_dumps(summary.to_json(), indent=1))
    else:
        print(summary_text(summary, name=str(arguments.log)))
        if arguments.plot is not None:
            print(f"wrote {arguments.plot}")
    return 0
