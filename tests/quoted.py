"""Numbers quoted in the README and docs/, read back for the tests that recompute them.

A quoted number agrees with a computed value when the value, rounded to the quoted number's
significant digits, is the quoted number: ``agrees("0.83", 0.8317)`` holds and
``agrees("0.81", 0.8317)`` does not. ``5·10³`` and ``1.4e-14`` are read as numbers too.
"""

import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def document(name):
    """The text of ``README.md`` or ``docs/NAME.md``."""
    return (ROOT / name).read_text()


def parse_quoted(text):
    """``(value, significant_digits)`` of a quoted number: ``0.0643``, ``176``, ``5·10³``,
    ``2.0``, ``1.4e-14``, with a leading minus sign (``-`` or ``−``) allowed."""
    text = text.strip().replace("−", "-")
    match = re.fullmatch(r"(-?)(\d+(?:\.\d+)?)(?:·10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)|e([-+]?\d+))?", text)
    if match is None:
        raise ValueError(f"not a quoted number: {text!r}")
    sign, mantissa, superscript, exponent = match.groups()
    power = int(superscript.translate(_SUPERSCRIPTS)) if superscript else int(exponent or 0)
    digits = mantissa.replace(".", "").lstrip("0") or "0"
    if "." not in mantissa:
        digits = digits.rstrip("0") or "0"
    value = float(sign + mantissa) * 10.0**power
    return value, len(digits)


def agrees(quoted, value):
    """Whether ``value`` rounded to the significant digits of the text ``quoted`` is it."""
    expected, digits = parse_quoted(quoted)
    if value == 0 or expected == 0:
        return value == expected
    scale = 10 ** (math.floor(math.log10(abs(value))) - digits + 1)
    return math.isclose(round(value / scale) * scale, expected, rel_tol=1e-9)


def table_row(text, first_cell):
    """The cells after the first of the markdown table row whose first cell is
    ``first_cell``."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in _cells(line.strip().strip("|"))]
        if line.lstrip().startswith("|") and cells[0] == first_cell:
            return cells[1:]
    raise LookupError(f"no table row {first_cell!r}")


def _cells(row):
    """A table row split at the ``|`` outside backticks (``|L_k|`` stays in its cell)."""
    cells, current, in_code = [], "", False
    for character in row:
        if character == "`":
            in_code = not in_code
        if character == "|" and not in_code:
            cells.append(current)
            current = ""
        else:
            current += character
    return cells + [current]
