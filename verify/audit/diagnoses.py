r"""From measurements to causes, plain-English diagnoses with their fixes, and the verdict.

The verdict is ``"consistent"`` iff no cause is found: the loss is shift invariant, its
gradient is the declared objective's (``kl``, Hinton's KD, unless ``--expect`` says otherwise)
at the declared parameters and weight, to the order :math:`T^{-4}` of the identification
(:mod:`.identification`), with no extra power of :math:`T`, the same for a tensor ``T`` as for a
float, and, for token sequences, the mean over the real tokens.

What the loss *is* decides which causes apply. If it is the declared objective at some weight,
the weight is compared with the declared one (reduction mistakes are named). If it is another
registered objective, or a known objective with a known defect (:mod:`.defects`), that is
named, with the code change that fixes it. If nothing fits, the leading-order measurements
speak: the power of :math:`T`, whether the limit is established, its scale and direction.
"""

import math

from derive import OBJECTIVES

from .identification import Match
from .result import _number, _significant, describe

__all__ = ["diagnose"]

_KD = "T**2 * KL(softmax(v/T) || softmax(z/T))"
_SUM_TOKENS = "divide the masked sum by mask.sum() (the number of real tokens)"


def diagnose(f):
    """``(causes, diagnoses, notes, verdict)`` from the findings ``f`` (a dict, see
    :func:`verify.audit.audit`)."""
    found, notes = [], list(f.get("notes", ()))

    def add(cause, text):
        found.append((cause, text))

    if f["no_gradient"]:
        add(
            "no-gradient",
            "the loss has no gradient w.r.t. the student logits: it is detached "
            "from them (.detach(), .item(), a numpy round trip or torch.no_grad()); the KD loss "
            "must backpropagate into the student",
        )
        return _finish(found, notes)
    shift = f["shift"]
    declared = f["declared"]
    raw_declared = declared is not None and declared.accepted and not _shift_invariant(declared)
    if not shift["invariant"] and not raw_declared:
        add(
            "not-shift-invariant",
            f"sum over classes of the gradient is not zero ({shift['error']:.2g} > tolerance "
            f"{shift['tolerance']:.2g} at T={_number(shift['temperature'])}): the loss is not "
            "shift invariant, so it does not depend on the logits only through softmax (e.g. "
            "sigmoid/BCE on logits, or a penalty on raw logits); use softmax-based KL, " + _KD,
        )

    expected, identification = f["expected"], f["identification"]
    declared, defect = f["declared"], f["defect"]
    best = identification.best
    if declared is not None and declared.accepted:
        _exponent(add, f, declared.exponent)
        _weight(add, f, declared)
        if identification.ambiguous:
            notes.append(
                "other objectives fit as well: "
                + ", ".join(
                    describe(m.objective, _free(m), m.weight) for m in identification.accepted
                )
            )
    elif best is not None:
        if identification.ambiguous:
            add(
                "ambiguous",
                "several registered objectives fit within their tolerances: "
                + "; ".join(
                    f"{describe(m.objective, _free(m), m.weight)} (match error {m.error:.2g})"
                    for m in identification.accepted
                )
                + ": the order T^-2 of the gradient does not separate them at this precision; "
                "audit in float64, or declare the intended one with --expect",
            )
        explained = _other(add, f, best)
        if not explained:
            _exponent(add, f, best.exponent)
        _weight(add, f, best)
    elif defect is not None:
        add(defect.defect, _defect_text(f, defect))
        _exponent(add, f, defect.exponent, defect=defect)
        _weight(add, f, defect)
    else:
        _leading_order(add, f)
        if not found and not f["ignored"]:
            closest = identification.closest
            shown = (
                ""
                if closest is None
                else (
                    "; the closest registered objective, "
                    f"{describe(closest.objective, _free(closest), closest.weight)}, misses by "
                    f"{closest.error:.2g} (tolerance {closest.tolerance:.2g})"
                )
            )
            add(
                "unidentified",
                f"the gradient tends to {expected[0]}'s limit but does not follow it beyond the "
                f"leading order: no registered objective fits{shown}; the loss is something "
                "else at finite temperature (check the softmax temperatures and what is "
                "compared)",
            )
    if (
        f["fit"]["power_law"] is False
        and (best is not None or declared is not None and declared.accepted)
        and defect is None
    ):
        _not_a_power_law(add, f, "")
    status, where, power = f["tensor"]
    if status == "differs":
        relation = "" if power is None else f" (by a factor T^{_number(power)})"
        add(
            "tensor-temperature-path",
            f"passing T as a 0-d tensor instead of a Python float changes the gradient at "
            f"T={_number(where)}{relation}: a scaling such as T**2 is applied on one code path "
            "only (e.g. under isinstance(T, float)); apply it on every path",
        )
    if f["ignored"] and not (declared is not None and declared.accepted):
        add(
            "temperature-ignored",
            "the gradient does not depend on T: the loss ignores the temperature; at best it is "
            "the T -> infinity limit of KD (centred logits matching), not KD at a finite "
            "temperature, which compares softmax(z/T) with softmax(v/T)",
        )
    _sequence(add, f)
    return _finish(found, notes)


def _finish(found, notes):
    causes = [cause for cause, _ in found]
    return causes, [text for _, text in found], notes, ("inconsistent" if found else "consistent")


def _free(match):
    """A match's parameters to show; of the generic family, f2 to f4 (the rest is poorly
    resolved)."""
    return tuple(
        (k, v)
        for k, v in match.parameters
        if not (k.startswith("f") and k[1:].isdigit() and int(k[1:]) > 4)
    )


def _shift_invariant(match):
    return OBJECTIVES[match.objective].shift_invariant


def _exponent(add, f, exponent, *, defect=None):
    power = getattr(f.get("expectation"), "power", 0.0)
    if exponent is None or exponent == power:
        return
    if power:
        add(
            "temperature-power",
            f"gradient scales as T^{_number(exponent)}, but the declaration says T^"
            f"{_number(power)} times {f['expected'][0]} (--power {_number(power)}): the loss "
            f"is T^{_number(exponent - power)} times what was declared",
        )
        return
    if exponent == -2:
        add(
            "missing-temperature-factor",
            "gradient scales as T^-2: the T**2 factor is missing; multiply the KL term by T**2",
        )
        return
    hint = " (the loss is multiplied by T instead of T**2)" if exponent == -1 else ""
    if defect is not None and defect.objective == "dist" and exponent == 2:
        hint = (
            " (DIST's code multiplies by T**2, but its correlation's gradient does not "
            "fade at high temperature)"
        )
    add(
        "temperature-power",
        f"gradient scales as T^{_number(exponent)}{hint}, but the declared objective's gradient "
        f"stays O(1) as T grows (exponent 0): multiply the loss by T**{_number(-exponent)}",
    )


def _weight(add, f, match):
    """Weight causes: the match's weight against the declared one. ``f["weight_fits"](match,
    w)`` says whether the match's objective also fits with its weight fixed at ``w`` (the
    weight of a fit is only as sharp as the fit)."""
    expected_weight = f["expected"][2]
    if f["sequence"]:
        return  # the token normalization carries the scale (see _sequence)
    fits = f["weight_fits"]
    if match.weight < 0:
        add(
            "negated",
            f"the gradient points away from the teacher (weight {_significant(match.weight)}): "
            "the loss is negated, so minimising it pushes the student away; minimise +" + _KD,
        )
        return
    if fits(match, expected_weight):
        return
    scale = match.weight
    classes, batch = f["classes"], f["batch_size"]
    candidates = [
        (
            1.0 / classes,
            "mean-reduction",
            f"limit scale 1/N = {_significant(scale)}: reduction='mean' averages over classes "
            "too; use reduction='batchmean'",
        ),
        (
            float(batch),
            "sum-reduction",
            f"limit scale B = {_number(scale)}: reduction='sum' adds over the batch; use "
            "reduction='batchmean' (or divide the sum by the batch size)",
        ),
        (
            1.0 / batch,
            "double-batch-average",
            f"limit scale 1/B = {_significant(scale)}: the loss is divided by the batch size twice "
            "(e.g. reduction='batchmean' and then / batch_size); divide once",
        ),
    ]
    known = [
        (cause, text) for value, cause, text in candidates if fits(match, expected_weight * value)
    ]
    for cause, text in known:
        add(cause, text)
    if not known:
        ratio = scale / expected_weight
        declared = "" if expected_weight == 1 else f" (declared {_significant(expected_weight)})"
        add(
            "constant-factor",
            f"limit scale {_significant(scale)}{declared}: the gradient is "
            f"{_significant(ratio)} times the declared objective's; if this is a deliberate "
            "loss weight (e.g. 1 - alpha), declare it with --weight, otherwise remove the extra "
            "constant factor",
        )


def _other(add, f, best):
    """The loss is a registered objective other than the declared one: name it. Returns
    whether the power of T is explained too."""
    name, parameters, weight = f["expected"]
    shown = describe(best.objective, _free(best), best.weight)
    measured = f"(match error {best.error:.2g}, tolerance {best.tolerance:.2g})"
    if best.objective == name:
        add(
            "other-parameters",
            f"the loss is {shown} {measured}, not {describe(name, parameters, None)} as "
            f"declared: fix the parameter in the code, or declare --expect "
            f"{best.objective}:"
            + ",".join(
                f"{k}={v:.4g}" if not isinstance(v, str) else f"{k}={v}" for k, v in best.parameters
            ),
        )
        return False
    if name == "kl" and best.objective == "reverse-kl":
        add(
            "swapped-kl-arguments",
            f"the loss is reverse KL, T**2 KL(q || p) {measured}: it agrees with KD at leading "
            "order but not at 1/T; F.kl_div(input, target) computes KL(target || exp(input)), "
            "so F.kl_div(teacher_log_probs, student_probs) is reverse KL: pass the student's "
            "log-probabilities first, F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), "
            "reduction='batchmean')",
        )
        return False
    if name == "kl" and best.objective == "hot-teacher" and best.exponent == 2:
        value = dict(best.parameters).get("student_temperature", math.nan)
        add(
            "one-sided-temperature",
            f"the student's logits are not divided by T (its softmax stays at T = "
            f"{_significant(value, 3)}) while the teacher's are {measured}: the gradient grows "
            "like T**2; use F.log_softmax(student_logits / T, dim=-1)",
        )
        return True
    hint = _instead_of_kd(best) if name == "kl" else best_title(best)
    add(
        "other-objective",
        f"the loss is {shown} {measured}, not {describe(name, parameters, None)}: {hint}; if "
        f"{best.objective} is what you mean, declare it: --expect {best.objective}"
        + "".join(f":{k}={v}" for k, v in best.parameters if isinstance(v, str)),
    )
    return False


def _instead_of_kd(match):
    """The code change that makes the identified objective KD: its registration's
    ``diagnosis`` (its title where it declares none)."""
    return OBJECTIVES[match.objective].diagnosis or best_title(match)


def best_title(match):
    return OBJECTIVES[match.objective].title


def _defect_text(f, defect):
    measured = f"(match error {defect.error:.2g}, tolerance {defect.tolerance:.2g})"
    value = dict(defect.parameters)
    if defect.defect == "kl-div-probabilities":
        return (
            "F.kl_div is given the student's probabilities where it expects "
            f"log-probabilities {measured}: F.kl_div(input, target) reads input as log q; "
            "pass F.log_softmax(student_logits / T, dim=-1), not F.softmax(...)"
        )
    if defect.defect == "log-target-probabilities":
        return (
            "F.kl_div(..., log_target=True) is given the teacher's probabilities as its "
            f"target {measured}: log_target=True reads the target as log p; pass "
            "F.log_softmax(teacher_logits / T, dim=-1), or drop log_target=True"
        )
    if defect.defect == "one-sided-temperature":
        return (
            "the teacher's logits are not divided by T (its softmax stays at T = 1) while "
            f"the student's are {measured}: the gradient grows like T; use "
            "F.softmax(teacher_logits / T, dim=-1)"
        )
    if defect.defect == "top-k-teacher":
        return (
            f"the teacher's distribution is truncated to its top {value.get('k')} classes "
            f"and renormalized {measured}: the other classes get no target and the "
            "gradient grows like T; keep the full softmax(teacher_logits / T)"
        )
    if defect.defect == "eps-denominator":
        eps, takeover = value.get("eps"), f.get("eps_takeover")
        where = (
            ""
            if takeover is None
            else (
                f" past T ~ {_number(takeover)}, where the product of the centred softmaxes' "
                "norms, falling like 1/T**2, reaches it"
            )
        )
        return (
            f"an eps of {eps:.2g} in the correlation's denominator (DIST's pearson, "
            f"norm(a) * norm(b) + eps) takes over{where} {measured}: the gradient stops "
            "following DIST; drop the eps (the norms vanish only for constant logits) or "
            "make it relative, eps * a.norm() * b.norm()"
        )
    return defect.defect


def _not_a_power_law(add, f, prefix):
    fit, low, high = f["fit"], f["grid"][0], f["grid"][-1]
    shown = (
        "undefined"
        if fit["exponent_fit"] is None
        else f"{fit['exponent_fit']:.3g}, log-log residual {fit['fit_residual']:.2g}"
    )
    add(
        "not-a-power-law",
        f"{prefix}the gradient does not scale as one power of T over T={_number(low)}.."
        f"{_number(high)} (fitted exponent {shown}): its scaling changes with the temperature, "
        "e.g. a factor applied on some code paths or temperature ranges only; apply the T**2 "
        "factor unconditionally",
    )


def _leading_order(add, f):
    """The measurements against the declared objective's limit, when nothing was identified."""
    fit, limit = f["fit"], f["limit"]
    exponent, scale, cosine = fit["exponent"], limit["scale"], limit["cosine"]
    if not fit["power_law"]:
        _not_a_power_law(add, f, "")
        return
    _exponent(add, f, exponent)
    if not limit["established"]:
        add(
            "limit-not-established",
            f"the high-temperature limit is not established: extrapolating g(T)/T^a to T = "
            f"infinity leaves a residual of {limit['residual']:.2g} of the limit (at most "
            f"{limit['cap']:.2g} from round-off and the orders left out): the gradient is not a "
            "power law with 1/T corrections over the audited range, so its scale and direction "
            "(cosine " + f"{_significant(cosine)}) say nothing; look for a constant that takes "
            "over at high temperature (an eps) or a temperature-dependent branch",
        )
        return
    tolerance, expected_weight = limit["scale_tolerance"], f["expected"][2]
    direction_ok = cosine is not None and cosine >= 1.0 - tolerance
    opposite = cosine is not None and cosine <= -1.0 + tolerance
    if direction_ok and abs(scale / expected_weight - 1.0) > tolerance:
        _weight(
            add,
            dict(
                f, weight_fits=lambda match, weight: abs(match.weight / weight - 1.0) <= tolerance
            ),
            Match("", "", (), scale, exponent, 0.0, tolerance),
        )
    if opposite:
        add(
            "negated",
            f"the gradient points away from the teacher (limit scale {_significant(scale)}, "
            f"cosine {_significant(cosine)}): the loss is negated, so minimising it pushes the "
            "student away; minimise +" + _KD,
        )
    elif not direction_ok:
        uncentred = limit["uncentred_cosine"]
        if uncentred is not None and uncentred >= 1.0 - tolerance:
            add(
                "uncentred-limit",
                f"at high temperature the gradient tends to uncentred logits matching, "
                f"proportional to z - v (cosine {_significant(cosine)} with KD's limit, which "
                "subtracts <z> - <v>): the mean-gap term is missing; centre both logits "
                "(subtract their class means) or use softmax-based KL",
            )
        else:
            shown = "undefined" if cosine is None else _significant(cosine)
            name = f["expected"][0]
            add(
                "wrong-limit",
                f"at high temperature the rescaled gradient does not tend to {name}'s limit "
                f"(cosine {shown}): this objective is not {name} at high temperature"
                + (
                    ", and not one of the registered objectives either; KD is " + _KD
                    if name == "kl"
                    else ""
                ),
            )


def _sequence(add, f):
    normalization = f.get("normalization")
    if normalization is None:
        return
    lengths = normalization.lengths
    tokens, batch = int(lengths.sum()), int(lengths.numel())
    if normalization.padding:
        fix = (
            "accept a mask argument and multiply the per-token loss by it before reducing"
            if not f["signature"].mask
            else "multiply the per-token loss by mask before reducing"
        )
        add(
            "padding-included",
            f"padded positions get a gradient (up to {_significant(normalization.padding, 3)} "
            f"of a real token's): the padding mask is not applied; {fix}",
        )
    scale = normalization.scale
    name = normalization.name
    if name == "sequence-mean":
        spread = float(lengths.max()) / float(lengths.min())
        add(
            "sequence-mean",
            f"the tokens are averaged per sequence, then over the batch (scale "
            f"{_significant(scale)}): a token weighs 1/(B * L_b), so tokens of short sequences "
            f"weigh up to {_significant(spread, 3)}x more than those of long ones; " + _SUM_TOKENS,
        )
    elif name == "batch-normalized":
        add(
            "batch-normalized",
            f"divides by the batch size, not by the number of tokens (scale "
            f"{_significant(scale)} = {tokens}/{batch}, the mean length): the gradient grows "
            f"with sequence length; {_SUM_TOKENS}",
        )
    elif name == "token-sum":
        add(
            "token-sum",
            f"sums over the tokens without normalizing (scale {_significant(scale)} = the "
            f"{tokens} real tokens): the gradient grows with batch size and length; " + _SUM_TOKENS,
        )
    elif name == "position-mean":
        add(
            "position-mean",
            f"divides by every position, padding included (scale {_significant(scale)} = "
            f"{tokens}/{batch * normalization.pattern.shape[1]}), not by the {tokens} real "
            f"tokens: the more padding, the weaker the gradient; {_SUM_TOKENS}",
        )
    elif name is None:
        if not normalization.uniform and not normalization.per_sequence:
            add(
                "uneven-token-weights",
                "the real tokens get unequal weights, neither the same for all nor 1/L_b per "
                f"sequence; weigh every real token equally: {_SUM_TOKENS}",
            )
        elif scale < 0:
            add(
                "negated",
                "the gradient points away from the teacher: the loss is negated; minimise +" + _KD,
            )
        elif abs(scale * f["classes"] - 1.0) <= f["scale_tolerance"]:
            add(
                "mean-reduction",
                f"limit scale 1/N = {_significant(scale)}: the mean runs over the classes too "
                "(reduction='mean' on [tokens, N]); sum over the classes, then divide by the "
                "number of real tokens",
            )
        else:
            add(
                "constant-factor",
                f"scale {_significant(scale)} of the mean over real tokens: an extra constant "
                "factor; if it is a deliberate loss weight, declare it with --weight",
            )
