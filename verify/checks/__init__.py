"""The numeric checks, one per statement of :data:`derive.STATEMENTS` (refuted variants
included).

Every check has the signature ``check(*, device="cpu", dtype=torch.float64, examples=...,
seed=0, search_examples=None)`` and returns a :class:`~verify.results.CheckResult`. Each is
registered where it is defined, under the statement id it checks (:func:`numeric_check`);
:data:`CHECKS` lists them in the registry's order.

One module per family: :mod:`.zero_mean`, :mod:`.mean_preservation`, :mod:`.equal_mean`,
:mod:`.temperature` (the high-temperature limit of KD), :mod:`.expansion` and
:mod:`.objectives` (the objective families).

Examples
========

>>> list(CHECKS)[:3]
['zero-mean-gradient', 'zero-mean-gradient/logits-matching', 'zero-mean-gradient/sigmoid-bce']
>>> result = CHECKS["zero-mean-gradient/logits-matching"](examples=64)
>>> result.verdict, result.as_expected
('refuted', True)
"""

# The import order is the registration order. Each module registers its checks.
# isort: off
from . import equal_mean  # noqa: F401
from . import bias_decay  # noqa: F401
from . import expansion  # noqa: F401
from . import mean_preservation  # noqa: F401
from . import objectives  # noqa: F401
from . import target_aware  # noqa: F401
from . import radius  # noqa: F401
from . import temperature  # noqa: F401
from . import zero_mean  # noqa: F401
from . import low_temperature  # noqa: F401
from . import atlas  # noqa: F401

# isort: on
from derive import STATEMENTS

from ._common import REGISTERED, numeric_check

__all__ = ["CHECKS", "numeric_check"]


def _in_registry_order():
    ordered = {
        statement_id: REGISTERED[statement_id]
        for statement_id in STATEMENTS
        if statement_id in REGISTERED
    }
    ordered.update({key: value for key, value in REGISTERED.items() if key not in ordered})
    return ordered


#: Statement id -> numeric check, in the registry's order.
CHECKS = _in_registry_order()
