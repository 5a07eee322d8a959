r"""The one parser of numbers and parameter values given as text: ``--param`` (derive),
``--expect NAME:k=v,...`` and ``--weight`` (verify audit), and the objectives' parameters in
the Python API.

* :func:`parse_rational`: ``3``, ``-3``, ``3/10``, and (where decimals are allowed) ``0.3``,
  ``1e-3``, as an exact :class:`~fractions.Fraction`. Refused in one line: ``1/0``, ``0/0``,
  ``nan``, ``inf``, ``1_000``, empty text, more than :data:`MAX_DIGITS` characters.
* :func:`parse_positive`: a finite number > 0 (at most ``upper``) as a float, from text or a
  Python number (``10**400`` is refused, never an ``OverflowError``).
* :func:`check_symbol_name`: a parameter kept symbolic must be a name that ``derive.parse``
  reads back as that same symbol, one of the objectives' parameters (given by the caller, the
  objectives' registry), and not one of the logits (``z1``, ``v_i``), a sympy constant
  (``pi``, ``I``, ``E``, ``nan``, ``oo``) or a symbol of the notation.
* :func:`parse_assignments`: ``k=v`` items, a key given twice refused.

Examples
========

>>> parse_rational("3/10", what="beta")
Fraction(3, 10)
>>> parse_rational("1/0", what="beta")
Traceback (most recent call last):
...
derive._errors.DeriveError: beta must be a number, got '1/0' (division by zero)
>>> check_symbol_name("pi", what="beta", parameters={})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
derive._errors.DeriveError: beta: 'pi' is a sympy constant, not a name for a parameter ...
>>> parse_assignments(["beta=1/2", "beta=1/3"], what="--expect jsd")
Traceback (most recent call last):
...
derive._errors.DeriveError: --expect jsd: the parameter beta is given twice (1/2 and 1/3)
"""

import math
import re
from fractions import Fraction

from ._errors import DeriveError
from ._reader import read

__all__ = [
    "parse_rational",
    "parse_positive",
    "check_symbol_name",
    "parse_assignments",
    "MAX_DIGITS",
    "CONSTANTS",
]

#: The longest number text read (a longer one is refused, not parsed).
MAX_DIGITS = 100
#: Names sympy gives constants: refused as a parameter's symbol (``E`` is Euler's number).
CONSTANTS = frozenset(
    {"pi", "I", "E", "nan", "oo", "zoo", "inf", "infinity", "NaN", "Infinity", "S", "Q", "O"}
)
_INTEGER = r"[+-]?[0-9]+"
_DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?"
_LOGITS = re.compile(r"[zvpqZV](?:_?[0-9A-Za-z_]*)?")


def parse_rational(text, *, what, error=DeriveError, decimals=True):
    """``text`` as an exact :class:`~fractions.Fraction` (``decimals=False``: integers and
    ``p/q`` only); ``error`` naming ``what`` otherwise."""
    shown = text
    if not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_DIGITS:
        raise error(f"{what} must be a number, got {shown!r}")
    text = text.strip()
    number = _DECIMAL if decimals else _INTEGER
    match = re.fullmatch(rf"({number})(?:/({_INTEGER}))?", text)
    if match is None:
        kind = "a rational such as 3/10" + (" or a decimal such as 0.3" if decimals else "")
        raise error(f"{what} must be a number ({kind}), got {shown!r}")
    numerator, denominator = match.group(1), match.group(2)
    if denominator is not None and Fraction(denominator) == 0:
        raise error(f"{what} must be a number, got {shown!r} (division by zero)")
    value = Fraction(numerator)
    return value / Fraction(denominator) if denominator is not None else value


def parse_positive(value, *, what, error=DeriveError, upper=math.inf, example="0.5"):
    """A finite number in ``(0, upper]`` as a float, from text (:func:`parse_rational`) or a
    Python ``int``/``float`` (bools refused)."""
    bounds = "> 0" + ("" if upper == math.inf else f" and <= {upper:g}")
    message = f"{what} must be a number {bounds} (e.g. {example}), got {value!r}"
    if isinstance(value, str):
        try:
            exact = parse_rational(value, what=what, error=DeriveError)
        except DeriveError:
            raise error(message) from None
        number = _float(exact)
    elif isinstance(value, (int, float, Fraction)) and not isinstance(value, bool):
        number = _float(value)
    else:
        raise error(message)
    if not (math.isfinite(number) and 0 < number <= upper):
        raise error(message)
    return number


def _float(value):
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def check_symbol_name(text, *, what, parameters, error=DeriveError):
    """Refuse a name for a symbolic parameter that collides with the logits, a sympy constant or
    the notation, that is not a key of ``parameters`` (the objectives' parameter symbols by
    name, :func:`derive.objectives.parameter_symbols`), or that ``derive.parse`` (which reads
    with those parameters) cannot read back as that symbol."""
    if text in CONSTANTS:
        raise error(
            f"{what}: {text!r} is a sympy constant, not a name for a parameter (give a number, "
            f"or the parameter's own name)"
        )
    if _LOGITS.fullmatch(text):
        raise error(
            f"{what}: {text!r} reads as logits or probabilities (z, v, p, q), not a parameter "
            f"(give a number, or the parameter's own name)"
        )
    try:
        readable = read(text, parameters.get)
    except DeriveError:
        readable = None
    if (
        getattr(readable, "name", None) != text
        or not getattr(readable, "is_Symbol", False)
        or text not in parameters
    ):
        raise error(
            f"{what}: {text!r} is not a name derive.parse reads back as a parameter (use an "
            f"objective's parameter name, such as beta or alpha, or a number)"
        )
    return text


def parse_assignments(items, *, what, error=DeriveError):
    """``["k=v", ...]`` as a dict of stripped texts; a malformed item or a key given twice is
    ``error``."""
    found = {}
    for item in items:
        key, equals, value = str(item).partition("=")
        key, value = key.strip(), value.strip()
        if not (equals and key and value):
            raise error(f"{what}: parameters are k=v separated by commas, got {item!r}")
        if key in found:
            raise error(f"{what}: the parameter {key} is given twice ({found[key]} and {value})")
        found[key] = value
    return found
