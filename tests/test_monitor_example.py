"""examples/monitor_kd.py: the report tells the four runs apart with the predicted cause."""

import importlib.util
import pathlib

from verify.monitor.report import summarise

_PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "monitor_kd.py"


def _example():
    spec = importlib.util.spec_from_file_location("monitor_kd", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _first_cause(summary):
    if summary.premise == "held":
        return ("held", None)
    return (summary.causes[0]["cause"], summary.causes[0]["statement"])


def _verdicts(example):
    return {run: summarise(example.distil(run, steps=25)) for run in example.RUNS}


def test_the_four_runs_get_their_predicted_causes():
    example = _example()
    summaries = _verdicts(example)
    assert {run: _first_cause(s) for run, s in summaries.items()} == example.PREDICTED
    # The default initialisation's gap is there from the first step and SGD moves no mean.
    default = summaries["sgd-default"]
    assert [c["cause"] for c in default.causes] == ["logit-mean-gap"]
    assert default.causes[0]["step"] == 0
    assert default.extremes["head_drift_floor_ratio"] <= 1
    # AdamW and the tied head move the class mean at the first step.
    assert summaries["adamw"].causes[0]["step"] == summaries["sgd-tied"].causes[0]["step"] == 1
