"""JSON output with no non-standard constant: every command's ``--json`` goes through
:func:`dumps`.

A float that is not finite (``nan``, ``inf``) becomes ``null``, and the object gains a key
``"not_finite"`` mapping the path of each such value to what it was (``"inf"``, ``"-inf"``,
``"nan"``): the reason it is ``null``. Output without such values is exactly
:func:`json.dumps`'s.

Examples
========

>>> dumps({"bound": float("inf"), "rows": [1.0, float("nan")]})
'{"bound": null, "rows": [1.0, null], "not_finite": {"bound": "inf", "rows[1]": "nan"}}'
>>> dumps({"bound": 2.0})
'{"bound": 2.0}'
"""

import json
import math

__all__ = ["dumps"]


def _finite(value, path, found):
    if isinstance(value, float) and not math.isfinite(value):
        found[path or "value"] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, dict):
        return {
            key: _finite(item, f"{path}.{key}" if path else str(key), found)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{path}[{index}]", found) for index, item in enumerate(value)]
    return value


def dumps(value, **options):
    """:func:`json.dumps` of ``value`` with non-finite floats as ``null`` (see the module)."""
    found = {}
    cleaned = _finite(value, "", found)
    if found and isinstance(cleaned, dict):
        cleaned["not_finite"] = found
    return json.dumps(cleaned, allow_nan=False, **options)
