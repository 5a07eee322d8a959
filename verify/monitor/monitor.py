r"""The monitor a training loop calls once per step: :class:`KDMonitor`.

Examples
========

>>> import torch
>>> monitor = KDMonitor()
>>> teacher = torch.tensor([[2.0, 0.0, -1.0]])
>>> record = monitor.observe(teacher + 0.5, teacher, 4.0, step=0)
>>> record["step"], record["gap_max"], [w["cause"] for w in record["warnings"]]
(0, 0.5, ['logit-mean-gap'])
>>> record = monitor.observe(teacher + 0.5, teacher, 4.0, step=1)    # warned once already
>>> record["warnings"], len(monitor.warnings)
([], 1)
"""

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from .._errors import check_argument
from ..atlas import recognise
from .head import HeadMagnitude, HeadWatch
from .measures import measure_batch

__all__ = ["KDMonitor", "MonitorWarning", "atlas_verdict", "SCHEMA_VERSION"]

#: Version of the JSON Lines record (docs/monitor.md); bumped on any incompatible change.
SCHEMA_VERSION = 1

_LOGGER = logging.getLogger("verify.monitor")


@dataclass(frozen=True)
class MonitorWarning:
    """One warning: the step it was issued at, its cause, the statement (a docs/theory.md id)
    behind it and its one-line message."""

    step: int
    cause: str
    statement: str
    message: str


def atlas_verdict(optimizer: "torch.optim.Optimizer | None") -> "dict | None":
    """The optimizer atlas' entry for ``optimizer`` (``verify.atlas.recognise``): a dict with
    ``name``, ``verdict`` (``"preserves"`` or ``"breaks"``), ``statement`` and ``fix``, or
    ``None`` when the optimizer is not recognised."""
    if optimizer is None:
        return None
    return recognise(optimizer)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _coarser_dtype(student, teacher):
    """The less precise of the two logits' dtypes (``None`` if either is not a float tensor:
    :func:`measure_batch` reports that)."""
    dtypes = [getattr(x, "dtype", None) for x in (student, teacher)]
    if not all(isinstance(d, torch.dtype) and d.is_floating_point for d in dtypes):
        return None
    return max(dtypes, key=lambda d: torch.finfo(d).eps)


def _head_reason(optimizer, entry):
    """Why a head's class mean moved, from the atlas entry of its optimizer: (reason, id)."""
    if entry is not None and entry.get("verdict") == "breaks":
        reason = f"{entry['name']} on the head does not keep equal means"
        if entry.get("fix"):
            reason += f" ({entry['fix']})"
        return reason, entry.get("statement") or "mean-preservation"
    if entry is not None and entry.get("verdict") == "preserves":
        return (
            f"{entry['name']} keeps equal means [{entry.get('statement')}], so the head's "
            "parameters receive a gradient with a nonzero class sum: a head tied to an input "
            "embedding, or a loss that is not shift invariant",
            "atlas-structure",
        )
    name = type(optimizer).__name__ if optimizer is not None else "its optimizer"
    return (
        f"{name} is not in the optimizer atlas; only updates linear in zero-sum gradients keep "
        "the class means",
        "mean-preservation",
    )


class KDMonitor:
    r"""Watch a distillation run step by step: is KD behaving as logits matching, and if not,
    why.

    ``path``: a JSON Lines file written one record per :meth:`observe` (docs/monitor.md);
    ``tensorboard``: a log directory or a ``SummaryWriter`` for scalars; ``features``: the
    head's input width for the logit-mean gap's round-off floor (default: the widest watched
    head's, else 0); ``logger``: where warnings go (``logging``, name ``verify.monitor``);
    ``every``: observe only the steps ``s`` with ``s % every == 0`` (default 1: every step);
    :meth:`observe` returns ``None`` on the others, and a watched head's drift is still that
    of the one step before each observed step.

    Every computation runs under ``torch.no_grad`` on detached copies: the training is the
    same, bit for bit, with and without the monitor.
    """

    def __init__(
        self,
        path: "str | os.PathLike[str] | None" = None,
        *,
        tensorboard: object = None,
        features: "int | None" = None,
        logger: "logging.Logger | None" = None,
        every: int = 1,
    ) -> None:
        check_argument(
            path is None or (isinstance(path, (str, os.PathLike)) and str(path) != ""),
            "path must be a file name or None, got {!r}",
            path,
        )
        check_argument(
            features is None
            or (isinstance(features, int) and not isinstance(features, bool) and features >= 0),
            "features must be an integer >= 0 or None, got {!r}",
            features,
        )
        check_argument(
            isinstance(every, int) and not isinstance(every, bool) and every >= 1,
            "every must be an integer >= 1, got {!r}",
            every,
        )
        self.path = path
        self.every = every
        self.features = features
        self.warnings: list[MonitorWarning] = []
        self.heads: list[HeadWatch] = []
        self._logger = logger or _LOGGER
        self._causes: set[str] = set()
        self._observed = 0
        self._calls = 0
        self._stream = open(path, "w", encoding="utf-8") if path is not None else None
        self._writer = self._tensorboard(tensorboard)
        self._teacher: HeadMagnitude | None = None
        self._workspace: dict = {}  # measure_batch's work buffer, kept between steps

    @staticmethod
    def _tensorboard(tensorboard):
        if tensorboard is None or hasattr(tensorboard, "add_scalar"):
            return tensorboard
        check_argument(
            isinstance(tensorboard, (str, os.PathLike)),
            "tensorboard must be a log directory, a SummaryWriter or None, got {!r}",
            tensorboard,
        )
        try:
            # lazy: tensorboard is in the optional monitor extra, needed only for a log directory
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            check_argument(False, "tensorboard={!r} needs the tensorboard package", tensorboard)
        return SummaryWriter(log_dir=str(tensorboard))

    # -- setup --------------------------------------------------------------------------------
    def watch_head(
        self,
        head_module: torch.nn.Module,
        optimizer: "torch.optim.Optimizer | None" = None,
        *,
        name: "str | None" = None,
        teacher_head: "torch.nn.Module | None" = None,
    ) -> "KDMonitor":
        """Follow ``head_module``'s class means :math:`1^\\top W/N` and :math:`1^\\top b/N`
        (a ``torch.nn.Linear`` or any module with ``weight`` ``[N, F]`` and ``bias`` ``[N]``),
        updated by ``optimizer`` if given (its atlas verdict names the cause of a drift).
        ``teacher_head``, the teacher's affine head, lets the logit-mean gap's floor count the
        size of the teacher's summands too (forward hooks that only read). Call it before
        training; returns ``self``."""
        name = (
            name if name is not None else ("head" if not self.heads else f"head{len(self.heads)}")
        )
        watch = HeadWatch(head_module, name=name, optimizer=optimizer)
        watch.atlas = atlas_verdict(optimizer)
        self.heads.append(watch)
        if teacher_head is not None:
            check_argument(
                isinstance(getattr(teacher_head, "weight", None), torch.Tensor),
                "teacher_head must be an affine module with a weight [N, F], got {}",
                type(teacher_head).__name__,
            )
            self._teacher = HeadMagnitude(teacher_head)
        return self

    # -- per step -----------------------------------------------------------------------------
    def observe(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        T: "float | torch.Tensor",
        *,
        step: "int | None" = None,
        mask: "torch.Tensor | None" = None,
    ) -> "dict | None":
        """Measure one step and return its record (the JSON Lines record, a dict); warn once
        per cause when the premise of logits matching breaks. With ``every`` > 1, a step that
        is not observed returns ``None`` (``step`` counts the calls when not given)."""
        check_argument(
            step is None or (isinstance(step, int) and not isinstance(step, bool)),
            "step must be an integer or None, got {!r}",
            step,
        )
        step = self._calls if step is None else step
        if step % self.every != 0:
            if (step + 1) % self.every == 0:
                for watch in self.heads:  # the next step is observed: its drift starts here
                    watch.rebase()
            self._calls += 1
            return None
        temperature: Any = T
        if isinstance(T, torch.Tensor) and T.numel() == 1 and not T.requires_grad:
            temperature = float(T)  # a temperature kept as a tensor
        with torch.no_grad():
            dtype = _coarser_dtype(student_logits, teacher_logits)
            features = self.features
            if features is None:
                widths = [watch.features for watch in self.heads]
                if self._teacher is not None:
                    widths.append(int(self._teacher.head.weight.shape[1]))
                features = max(widths, default=0)
            shape = tuple(getattr(student_logits, "shape", ()))[:-1]
            sizes = (
                self.heads[0].magnitude.magnitudes(shape) if self.heads else None,
                self._teacher.magnitudes(shape) if self._teacher is not None else None,
            )
            measures = measure_batch(
                student_logits,
                teacher_logits,
                temperature,
                mask=mask,
                dtype=dtype,
                features=features,
                summand_sizes=sizes,
                workspace=self._workspace,
            )
            heads = [self._head_record(watch, measures.examples) for watch in self.heads]
        record: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "step": step,
            "temperature": float(temperature),
        }
        record.update({key: _finite(value) for key, value in asdict(measures).items()})
        record["heads"] = heads
        fresh = self._warn(step, float(temperature), measures, heads, first=self._observed == 0)
        record["warnings"] = [asdict(w) for w in fresh]
        self._observed += 1
        self._calls += 1
        self._write(record)
        return record

    def _head_record(self, watch, batch_size):
        drifts = watch.measure(batch_size=batch_size)
        entry = watch.atlas
        record = {
            "name": watch.name,
            "optimizer": type(watch.optimizer).__name__ if watch.optimizer is not None else None,
            "atlas_verdict": entry.get("verdict") if entry else None,
            "atlas_statement": entry.get("statement") if entry else None,
        }
        for drift in drifts:
            record[f"{drift.name}_mean_drift"] = drift.drift
            record[f"{drift.name}_floor"] = drift.floor
            record[f"{drift.name}_floor_ratio"] = _finite(drift.ratio)
        return record

    def _issue(self, step, cause, statement, message, key=None):
        key = key or cause
        if key in self._causes:
            return None
        self._causes.add(key)
        warning = MonitorWarning(step, cause, statement, message)
        self.warnings.append(warning)
        self._logger.warning("verify.monitor: %s", message)
        return warning

    def _warn(self, step, temperature, measures, heads, *, first):
        fresh = []
        for watch, record in zip(self.heads, heads):
            worst = max(
                (p for p in ("weight", "bias") if f"{p}_floor_ratio" in record),
                key=lambda p: (
                    math.inf if record[f"{p}_floor_ratio"] is None else record[f"{p}_floor_ratio"]
                ),
            )
            ratio = record[f"{worst}_floor_ratio"]
            if ratio is None or ratio > 1:
                reason, statement = _head_reason(watch.optimizer, watch.atlas)
                owner = "the head's" if watch.name == "head" else f"head {watch.name!r}'s"
                message = (
                    f"{owner} class mean moved by {record[f'{worst}_mean_drift']:.1e} in step "
                    f"{step} ({worst}; round-off floor {record[f'{worst}_floor']:.1e}): {reason}"
                )
                fresh.append(
                    self._issue(step, "head-mean-drift", statement, message, f"head:{watch.name}")
                )
        if measures.gap_floor_ratio > 1:
            spread = f"{measures.gap_relative_max:.1e} of the logits' spread"
            if first:
                why = (
                    "from the first observed step: the heads were not initialised with equal "
                    "means [equal-mean]"
                )
            elif any(w.cause == "head-mean-drift" for w in self.warnings + fresh if w):
                why = "opened during training, after the head's class mean moved"
            else:
                why = "opened during training"
            message = (
                f"the student's and teacher's logit means differ by up to {measures.gap_max:.1e} "
                f"({spread}) at step {step}, {why}; KD's limit keeps the regularizer "
                "-(<z> - <v>)^2/2 [infinite-temperature]"
            )
            fresh.append(self._issue(step, "logit-mean-gap", "equal-mean", message))
        if measures.inside_radius < 1:
            message = (
                f"T = {temperature:.3g} is below the convergence radius R/pi = "
                f"{measures.radius_temperature:.3g} for "
                f"{1 - measures.inside_radius:.0%} of the batch at step {step}: the expansion in "
                "1/T diverges there [convergence-radius]"
            )
            fresh.append(self._issue(step, "outside-radius", "convergence-radius", message))
        matching, perceptron = measures.cosine_logits_matching, measures.cosine_perceptron
        if matching is not None and perceptron is not None and perceptron > matching:
            message = (
                f"KD's gradient is closer to the perceptron update (cosine {perceptron:.2f}) than "
                f"to logits matching ({matching:.2f}) at step {step}: a low-temperature regime "
                "[low-temperature-perceptron]"
            )
            fresh.append(
                self._issue(step, "perceptron-regime", "low-temperature-perceptron", message)
            )
        return [w for w in fresh if w is not None]

    def _write(self, record):
        if self._stream is not None:
            self._stream.write(json.dumps(record, allow_nan=False) + "\n")
            self._stream.flush()
        if self._writer is not None:
            step = record["step"]
            for key, value in record.items():
                if key not in ("schema", "step") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"kd/{key}", value, step)
            for head in record["heads"]:
                for key, value in head.items():
                    if isinstance(value, float):
                        self._writer.add_scalar(f"kd/{head['name']}/{key}", value, step)

    def close(self) -> None:
        """Close the JSON Lines file, flush the TensorBoard writer, remove the hooks."""
        for magnitude in [w.magnitude for w in self.heads] + [self._teacher]:
            if magnitude is not None:
                magnitude.remove()
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._writer is not None and hasattr(self._writer, "flush"):
            self._writer.flush()

    def __enter__(self) -> "KDMonitor":
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False
