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

import contextlib
import random
import tempfile

from hypothesis import HealthCheck, Phase, configuration, find, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import NoSuchExample, Unsatisfiable

from ._errors import check_positive_integer

try:  # hypothesis >= 6.131 mixes constants read from loaded local modules into its draws
    from hypothesis.internal.conjecture import providers as _providers
except ImportError:  # pragma: no cover - an older hypothesis draws from the seed alone
    _providers = None

__all__ = ["draw_examples", "find_counterexample"]


@contextlib.contextmanager
def _without_local_constants():
    """Hypothesis (since 6.131) sometimes draws a constant it found in the source of a *local*
    module, one loaded from outside site-packages, instead of a random value. Which modules
    count depends on how the project was installed (an editable install is local, a wheel is
    not) and on what happens to be imported (a test file, a user's loss): the same seed would
    then give different examples. For the duration of one search the local constants are
    none, so a seed alone decides the draws; hypothesis's built-in constants stay."""
    get = getattr(_providers, "_get_local_constants", None)
    constants = getattr(_providers, "Constants", None)
    cache = getattr(getattr(_providers, "CONSTANTS_CACHE", None), "cache", None)
    if get is None or constants is None or cache is None:
        yield
        return
    empty = constants()
    cache.clear()  # its entries hold the local constants filtered per choice type
    _providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        _providers._get_local_constants = get
        cache.clear()


@contextlib.contextmanager
def _hypothesis_sandbox():
    """Hypothesis keeps caches in ``./.hypothesis`` by default: the user's working directory.
    :mod:`verify` runs hypothesis as a library, with no example database, so for the duration
    of one call its caches go to a private temporary directory, removed after, and the home
    directory the user had (or had not) chosen is restored. Nothing is configured at import.
    The draws depend on the seed only (:func:`_without_local_constants`)."""
    previous = getattr(configuration, "__hypothesis_home_directory", None)
    with (
        tempfile.TemporaryDirectory(prefix="verify-hypothesis-") as directory,
        _without_local_constants(),
    ):
        configuration.set_hypothesis_home_dir(directory)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(previous)


def _settings(**changes):
    """Settings built on hypothesis's own defaults, not on the profile the user loaded: the
    checks behave the same in any test suite, and leave its profile alone."""
    return settings(settings.get_profile("default"), **changes)


_QUIET = list(HealthCheck)


def draw_examples(strategy, count, *, seed):
    """Up to ``count`` examples of ``strategy``, the same ones for the same ``seed``.

    Hypothesis starts from simple examples and grows more varied; it may return fewer than
    ``count`` examples when the strategy has fewer distinct ones.
    """
    check_positive_integer(count, name="count")
    examples = []

    @hypothesis_seed(seed)
    @_settings(
        max_examples=count,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=_QUIET,
    )
    @given(strategy)
    def collect(example):
        examples.append(example)

    with _hypothesis_sandbox():
        collect()
    return examples[:count]


def find_counterexample(strategy, condition, *, seed, max_examples=100):
    """The shrunk example of ``strategy`` that satisfies ``condition`` (a violation), or ``None``.

    ``max_examples`` bounds the examples tried before giving up; shrinking comes on top.
    """
    check_positive_integer(max_examples, name="max_examples")
    # No "explain" phase: it reruns the shrunk example many times to annotate it, which a
    # returned value does not need.
    search_settings = _settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        suppress_health_check=_QUIET,
        phases=[Phase.generate, Phase.target, Phase.shrink],
    )
    try:
        with _hypothesis_sandbox():
            return find(strategy, condition, settings=search_settings, random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        return None
