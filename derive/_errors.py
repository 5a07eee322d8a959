"""The one error type of :mod:`derive`, raised through one helper."""

__all__ = ["DeriveError", "check_argument", "MAX_ORDER", "MAX_CLASSES", "MAX_PROOF_ORDER"]

#: The most terms any expansion computes (each objective serves fewer: ``Objective.max_order``).
MAX_ORDER = 30
#: The most explicit classes of concrete-N output (its size grows as N**2 per term).
MAX_CLASSES = 200
#: The most terms the proofs and the report use (every objective is expanded that far).
MAX_PROOF_ORDER = 8


class DeriveError(ValueError):
    """Bad input to :mod:`derive`: the message names the bad value and what is allowed."""


def check_argument(condition: object, message: str, *args: object) -> None:
    """Raise :class:`DeriveError` with ``message.format(*args)`` unless ``condition`` holds.

    Examples
    ========

    >>> check_argument(2 >= 1, "order must be >= 1, got {}", 2)
    >>> check_argument(0 >= 1, "order must be >= 1, got {}", 0)
    Traceback (most recent call last):
    ...
    derive._errors.DeriveError: order must be >= 1, got 0
    """
    if not condition:
        raise DeriveError(message.format(*args))


def check_order(order, *, name="order", maximum=MAX_ORDER, why=""):
    """Validate a number of terms: an integer in ``1..maximum`` (bools are refused)."""
    check_argument(
        isinstance(order, int) and not isinstance(order, bool) and order >= 1,
        "{} must be an integer >= 1, got {!r}",
        name,
        order,
    )
    check_argument(order <= maximum, "{} must be at most {}{}, got {}", name, maximum, why, order)
    return order


def check_classes(classes):
    """Validate a number of classes: ``None`` (symbolic N) or an integer in ``2..MAX_CLASSES``."""
    check_argument(
        classes is None
        or (isinstance(classes, int) and not isinstance(classes, bool) and classes >= 2),
        "classes must be an integer >= 2 (or None for a symbolic N), got {!r}",
        classes,
    )
    check_argument(
        classes is None or classes <= MAX_CLASSES,
        "classes must be at most {} for explicit output (its size grows as N**2); "
        "omit it for a symbolic N, which holds every N, got {}",
        MAX_CLASSES,
        classes,
    )
    return classes


def check_choice(value, allowed, *, name):
    """Validate that ``value`` is one of ``allowed``."""
    check_argument(
        value in allowed,
        "{} must be one of {}, got {!r}",
        name,
        ", ".join(map(str, allowed)),
        value,
    )
    return value
