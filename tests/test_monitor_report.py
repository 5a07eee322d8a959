"""python -m verify monitor-report: the summary of a KDMonitor log, its plot, its bad input."""

import json

import pytest
import torch
from monitor_helpers import install_fake_atlas, setup, train

from verify.cli import main
from verify.monitor import KDMonitor
from verify.monitor.report import read_log, summarise


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("logs")
    paths = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        install_fake_atlas(monkeypatch)
        for name, make in (
            ("clean", lambda p: torch.optim.SGD(p, lr=0.5)),
            ("adamw", lambda p: torch.optim.AdamW(p, lr=1e-2)),
        ):
            teacher, student = setup()
            optimizer = make(student.parameters())
            paths[name] = directory / f"{name}.jsonl"
            with KDMonitor(paths[name]) as monitor:
                monitor.watch_head(student.head, optimizer, teacher_head=teacher.head)
                train(student, teacher, optimizer, steps=6, monitor=monitor)
    return paths


def test_a_clean_run_reports_that_the_premise_held(logs, capsys):
    assert main(["monitor-report", str(logs["clean"])]) == 0
    out = capsys.readouterr().out
    assert "6 records (steps 0..5), premise held" in out
    assert "the premise held" in out


def test_a_broken_run_reports_when_and_why(logs, capsys):
    assert main(["monitor-report", str(logs["adamw"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["premise"] == "broken"
    first = summary["causes"][0]
    assert (first["step"], first["cause"], first["statement"]) == (
        1,
        "head-mean-drift",
        "atlas-coordinatewise",
    )
    assert summary["verdict"].startswith("the premise broke at step 1: the head's class mean")
    assert summary["extremes"]["head_drift_floor_ratio"] > 1
    assert summary == json.loads(json.dumps(summarise(read_log(logs["adamw"])).to_json()))


def test_the_plot_is_written(logs, tmp_path, capsys):
    target = tmp_path / "curves.png"
    assert main(["monitor-report", str(logs["adamw"]), "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {target}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "no records"),
        ("not json\n", "line 1: not a monitor record"),
        ('{"schema": 1, "step": 0}\n[1, 2]\n', "line 2: not a monitor record"),
        ('{"schema": 99, "step": 0}\n', "line 1: not a monitor record"),
        ('{"schema": 1, "step": "zero"}\n', "line 1: not a monitor record"),
        (b"\xff\xfe\x00", "not a text file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "run.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["monitor-report", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_a_bad_plot_target_is_refused_before_any_work(logs, tmp_path, capsys):
    target = tmp_path / "missing" / "curves.png"
    assert main(["monitor-report", str(logs["clean"]), "--plot", str(target)]) == 2
    assert not target.exists() and capsys.readouterr().err.count("\n") == 1
