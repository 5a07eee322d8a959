"""The numeric checks, one per statement of THEORY.md (and per refuted variant).

Every check has the signature ``check(*, device="cpu", dtype=torch.float64, examples=...,
seed=0, search_examples=None)`` and returns a :class:`~verify.results.CheckResult`.
:data:`CHECKS` maps statement ids to checks, in the order of :data:`derive.STATEMENTS`, whose
entries name their check as ``"verify.checks:check_..."``.

One module per family: :mod:`.zero_mean`, :mod:`.mean_preservation`, :mod:`.equal_mean`,
:mod:`.temperature` (the high-temperature limit) and :mod:`.expansion`.

Examples
========

>>> list(CHECKS)[:3]
['zero-mean-gradient', 'zero-mean-gradient/logits-matching', 'zero-mean-gradient/sigmoid-bce']
>>> result = check_zero_mean_gradient_logits_matching(examples=64)
>>> result.verdict, result.as_expected
('refuted', True)
"""

from .equal_mean import check_equal_mean, check_equal_mean_nonzero_row_mean
from .expansion import check_expansion
from .mean_preservation import (check_mean_preservation, check_mean_preservation_adagrad,
                                check_mean_preservation_adam, check_mean_preservation_adamw,
                                check_mean_preservation_rmsprop)
from .temperature import (check_equal_mean_suffices, check_hinton_zero_mean,
                          check_infinite_temperature)
from .zero_mean import (check_zero_mean_gradient, check_zero_mean_gradient_logits_matching,
                        check_zero_mean_gradient_sigmoid_bce)

__all__ = [
    "CHECKS", "check_zero_mean_gradient", "check_zero_mean_gradient_logits_matching",
    "check_zero_mean_gradient_sigmoid_bce", "check_mean_preservation",
    "check_mean_preservation_adam", "check_mean_preservation_adamw",
    "check_mean_preservation_rmsprop", "check_mean_preservation_adagrad", "check_equal_mean",
    "check_equal_mean_nonzero_row_mean", "check_infinite_temperature", "check_hinton_zero_mean",
    "check_equal_mean_suffices", "check_expansion",
]

#: Statement id -> numeric check, in the registry's order.
CHECKS = {
    "zero-mean-gradient": check_zero_mean_gradient,
    "zero-mean-gradient/logits-matching": check_zero_mean_gradient_logits_matching,
    "zero-mean-gradient/sigmoid-bce": check_zero_mean_gradient_sigmoid_bce,
    "mean-preservation": check_mean_preservation,
    "mean-preservation/adam": check_mean_preservation_adam,
    "mean-preservation/adamw": check_mean_preservation_adamw,
    "mean-preservation/rmsprop": check_mean_preservation_rmsprop,
    "mean-preservation/adagrad": check_mean_preservation_adagrad,
    "equal-mean": check_equal_mean,
    "equal-mean/nonzero-row-mean": check_equal_mean_nonzero_row_mean,
    "infinite-temperature": check_infinite_temperature,
    "hinton-zero-mean": check_hinton_zero_mean,
    "equal-mean-suffices": check_equal_mean_suffices,
    "expansion": check_expansion,
}
