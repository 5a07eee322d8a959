"""docs/optimizers.md's atlas table is what :mod:`verify.atlas.table` measures today: every
row's verdict and statement, and its float64 drift (a break to the two digits printed, up to
round-off across machines; a preservation below the round-off floor). The torch.optim rows run
by default (a few seconds); the timm rows behind ``slow`` (``--run-slow``)."""

import pathlib
import re

import pytest

from verify.atlas.table import timm_rows, torch_rows

DOC = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "optimizers.md").read_text()
_ROW = re.compile(
    r"^\| (?:`torch\.optim\.(?P<torch>\w+)`|timm `(?P<timm>\w+)`)[^|]* \| (?P<verdict>\w+) \| "
    r"`(?P<statement>[\w/-]+)` \| (?P<drift>[0-9.e+-]+) \|",
    re.MULTILINE,
)
#: timm's Kron family updates its preconditioner at random steps: the drift differs between
#: runs (1e-2 to 3e-2 measured), the verdict and its statement do not.
_RANDOM_DRIFT = {"timm kron", "timm kronc", "timm kronw"}
#: Relative agreement of a documented break with today's run: the doc prints two digits.
_DIGITS = 0.051


def documented_rows():
    return {
        (m["torch"] and f"torch.optim.{m['torch']}") or f"timm {m['timm']}": m.groupdict()
        for m in _ROW.finditer(DOC)
    }


def _agrees(documented, row):
    drift = float(documented["drift"])
    assert row["predicted"] == documented["verdict"] == row["verdict"], (documented, row)
    assert row["statement"] == documented["statement"], (documented, row)
    if row["optimizer"] in _RANDOM_DRIFT:
        assert row["float64_drift"] > row["floor"], (documented, row)
    elif row["verdict"] == "preserves":
        assert drift <= row["floor"] and row["float64_drift"] <= row["floor"], (documented, row)
    else:
        assert abs(row["float64_drift"] - drift) <= _DIGITS * drift, (documented, row)


def test_the_table_is_parsed():
    rows = documented_rows()
    assert len([name for name in rows if name.startswith("torch.optim.")]) == 13
    assert len([name for name in rows if name.startswith("timm ")]) == 86


def test_the_torch_optim_rows_are_todays_measurements():
    rows = documented_rows()
    for row in torch_rows():
        _agrees(rows[row["optimizer"]], row)


def test_a_drift_off_by_ten_percent_is_caught():
    rows = documented_rows()
    row = torch_rows(names=["Adam"])[0]
    planted = dict(rows[row["optimizer"]], drift=f"{row['float64_drift'] * 1.1:.1e}")
    with pytest.raises(AssertionError):
        _agrees(planted, row)


@pytest.mark.slow
def test_the_timm_rows_are_todays_measurements():
    rows = documented_rows()
    names = [name.split(" ", 1)[1] for name in rows if name.startswith("timm ")]
    failures = []
    for row in timm_rows(names):
        try:
            _agrees(rows[row["optimizer"]], row)
        except AssertionError as error:
            failures.append(str(error)[:300])
    assert not failures, failures
