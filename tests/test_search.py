"""verify.search's draws depend on the seed alone, not on which local modules are loaded.

Hypothesis (since 6.131) sometimes draws a constant found in the source of a loaded *local*
module (one outside site-packages) instead of a random value. An editable install makes the
project's own modules local, and a test file or a user's loss is local too, so without care the
same seed would give different examples depending on what happened to be imported.
"""

import importlib
import sys

from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from verify.search import draw_examples, find_counterexample

LOW, HIGH = 10**12, 2 * 10**12
PLANTED = [LOW + 7919 * k for k in range(1, 201)]
COUNT = 200


def _plant(tmp_path, monkeypatch):
    """A local module whose source holds 200 integer constants inside the drawn range."""
    (tmp_path / "planted_constants.py").write_text(f"VALUES = {PLANTED!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "planted_constants", raising=False)
    importlib.import_module("planted_constants")


def _plain_hypothesis_draws():
    """The same search as draw_examples, straight through hypothesis (no sandbox)."""
    examples = []

    @hypothesis_seed(3)
    @settings(max_examples=COUNT, phases=[Phase.generate], database=None, deadline=None)
    @given(st.integers(LOW, HIGH))
    def collect(example):
        examples.append(example)

    collect()
    return examples


def test_draws_are_the_same_whatever_local_modules_are_loaded(tmp_path, monkeypatch):
    before = draw_examples(st.integers(LOW, HIGH), COUNT, seed=3)
    _plant(tmp_path, monkeypatch)
    after = draw_examples(st.integers(LOW, HIGH), COUNT, seed=3)
    assert after == before
    assert not set(after) & set(PLANTED)


def test_a_counterexample_search_ignores_local_constants(tmp_path, monkeypatch):
    _plant(tmp_path, monkeypatch)
    # Any planted value satisfies the condition; a random draw from 10^12 values almost never
    # does, so only a drawn constant could be returned.
    found = find_counterexample(
        st.integers(LOW, HIGH), lambda x: x in set(PLANTED), seed=0, max_examples=COUNT
    )
    assert found is None


def test_control_plain_hypothesis_draws_the_planted_constants(tmp_path, monkeypatch):
    """The control: without the sandbox, hypothesis does draw the planted constants, so the
    tests above would see them if the sandbox let them through."""
    _plant(tmp_path, monkeypatch)
    assert set(_plain_hypothesis_draws()) & set(PLANTED)
