"""Hypothesis as a library: deterministic draws for the sweeps, shrunk counterexamples.

:func:`draw_examples` draws the configurations a check sweeps over (architectures,
optimizers, batches of logits) from the same strategies the tests use, reproducibly from a
seed. :func:`find_counterexample` searches a strategy for an example that violates a
property and returns it *shrunk* by hypothesis, so that a refutation prints the smallest
case it found.

Both run hypothesis's engine, which cannot be nested inside a ``@given`` test: tests that
are themselves ``@given`` call the per-example measurements instead.

Examples
========

>>> from hypothesis import strategies as st
>>> draw_examples(st.integers(0, 10), 3, seed=0) == draw_examples(st.integers(0, 10), 3, seed=0)
True
>>> find_counterexample(st.lists(st.integers(0, 9)), lambda xs: sum(xs) >= 10, seed=0)
[1, 9]
>>> find_counterexample(st.integers(0, 9), lambda x: x > 100, seed=0) is None
True
"""

import atexit
import os
import random
import shutil
import tempfile

from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import NoSuchExample, Unsatisfiable

from ._errors import check_positive_integer

__all__ = ["draw_examples", "find_counterexample"]


def _private_hypothesis_home():
    """Hypothesis keeps caches in ``./.hypothesis`` by default: the user's working directory.
    :mod:`verify` runs hypothesis as a library, with no example database, so its caches go to a
    private temporary directory removed at exit (unless the user chose a directory)."""
    if "HYPOTHESIS_STORAGE_DIRECTORY" in os.environ:
        return
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # an older hypothesis: nothing to redirect
        return
    directory = tempfile.mkdtemp(prefix="verify-hypothesis-")
    set_hypothesis_home_dir(directory)
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


_private_hypothesis_home()

_QUIET = list(HealthCheck)


def draw_examples(strategy, count, *, seed):
    """Up to ``count`` examples of ``strategy``, the same ones for the same ``seed``.

    Hypothesis starts from simple examples and grows more varied; it may return fewer than
    ``count`` examples when the strategy has fewer distinct ones.
    """
    check_positive_integer(count, name="count")
    examples = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=_QUIET,
    )
    @given(strategy)
    def collect(example):
        examples.append(example)

    collect()
    return examples[:count]


def find_counterexample(strategy, condition, *, seed, max_examples=100):
    """The shrunk example of ``strategy`` that satisfies ``condition`` (a violation), or ``None``.

    ``max_examples`` bounds the examples tried before giving up; shrinking comes on top.
    """
    check_positive_integer(max_examples, name="max_examples")
    # No "explain" phase: it reruns the shrunk example many times to annotate it, which a
    # returned value does not need.
    search_settings = settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        suppress_health_check=_QUIET,
        phases=[Phase.generate, Phase.target, Phase.shrink],
    )
    try:
        return find(strategy, condition, settings=search_settings, random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        return None
