r"""Knowledge distillation at high temperature (Hinton et al. 2015; Chen et al.,
arXiv:2109.06458): the zero-mean gradient, mean preservation under SGD, equal-mean
initialization, the infinite-temperature limit and the expansion, with their refutations.

Examples
========

>>> from derive.statements import STATEMENTS
>>> STATEMENTS["mean-preservation/momentum-decay-factor"].prove().verdict
'refuted'
"""

import sympy
from sympy import Rational, Symbol

from ..expansion import leading_pieces
from ..normal_form import canonical
from ..notation import (
    ClassMean,
    N,
    b_i,
    c_i,
    class_sum,
    concrete,
    dampening,
    epsilon,
    hidden,
    learning_rate,
    logit_symbols,
    m_i,
    momentum,
    t_i,
    teacher_hidden,
    u_i,
    v_i,
    w_i,
    weight_decay,
    z_g,
    z_i,
)
from ..objectives import (
    OBJECTIVES,
    kd_cross_entropy_loss,
    kd_gradient_closed_form,
    kd_loss,
    log_softmax,
    sigmoid_distillation_loss,
)
from ._common import gradient_sum, leading, term_gradient, terms
from ._registry import label, statement

__all__ = ["learning_rate", "momentum", "dampening", "weight_decay", "hidden", "teacher_hidden"]


# -- [zero-mean-gradient] ----------------------------------------------------------------------


def _shift_invariant_losses():
    """Every registered objective, and the other losses that see z only through softmax."""
    target_cross_entropy = -N * ClassMean(t_i * log_softmax(z_i)) / epsilon**2
    losses = {
        objective.variant_name(values): (objective, values)
        for objective in OBJECTIVES.values()
        if objective.shift_invariant
        for values in objective.variants()
    }
    losses["kd-cross-entropy"] = kd_cross_entropy_loss()
    # Hard labels, label smoothing and soft targets are targets t with sum_i t_i = 1.
    losses["target-cross-entropy"] = target_cross_entropy
    return losses


def _loss_and_gradient(entry):
    if isinstance(entry, tuple):
        objective, values = entry
        return objective.loss(**values), objective.gradient(**values)
    return entry, entry.diff(z_i)


def _targets_sum_to_one(expr):
    return expr.subs(ClassMean(t_i), 1 / N)


@statement(
    "zero-mean-gradient",
    "The logit gradient of a softmax loss has zero class mean",
    r"\sum_i \frac{\partial \ell}{\partial z_i} = 0 \text{ for every } \ell(z) "
    r"\text{ that sees } z \text{ only through } \mathrm{softmax}(z/T)",
)
def _zero_mean_gradient(order):
    shift = Symbol("c", real=True)
    residuals = {}
    for name, entry in _shift_invariant_losses().items():
        loss, gradient = _loss_and_gradient(entry)
        if isinstance(gradient, dict) and set(gradient) == {"i"}:
            gradient = gradient["i"]
        residuals[
            label(f"sum_i dL/dz_i, {name}", rf"\sum_i \partial L/\partial z_i,\ \text{{{name}}}")
        ] = _targets_sum_to_one(canonical(gradient_sum(gradient)))
        residuals[label(f"L(z + c) - L(z), {name}", rf"L(z + c) - L(z),\ \text{{{name}}}")] = (
            _targets_sum_to_one(
                canonical(loss.xreplace({z_i: z_i + shift, z_g: z_g + shift}) - loss)
            )
        )
    for k, term in enumerate(terms("gradient", order)):
        residuals[label(f"sum_i G_{k},i", rf"\sum_i G_{{{k},i}}")] = class_sum(term)
    return residuals


@statement(
    "zero-mean-gradient/logits-matching",
    "Logits matching has no zero-mean gradient",
    r"\sum_i \frac{\partial L_{LM}}{\partial z_i} = 0",
    expected="refuted",
)
def _zero_mean_gradient_logits_matching(order):
    return {
        label("sum_i dL_LM/dz_i", r"\sum_i \partial L_{LM}/\partial z_i"): class_sum(
            OBJECTIVES["logits-matching"].loss().diff(z_i)
        )
    }


@statement(
    "zero-mean-gradient/sigmoid-bce",
    "Sigmoid/BCE distillation has no zero-mean gradient",
    r"\sum_i \frac{\partial}{\partial z_i} T^2 \sum_j \mathrm{BCE}(\sigma(z_j/T), "
    r"\sigma(v_j/T)) = 0",
    expected="refuted",
)
def _zero_mean_gradient_sigmoid_bce(order):
    return {
        label("sum_i dL_BCE/dz_i", r"\sum_i \partial L_{BCE}/\partial z_i"): class_sum(
            sigmoid_distillation_loss().diff(z_i)
        )
    }


# -- [mean-preservation] -----------------------------------------------------------------------


def _kd_logit_gradient():
    return kd_gradient_closed_form()


def _sgd_step(*, nesterov, first):
    r"""One step of PyTorch's SGD on class i's output weight: ``(w', buffer')``.

    ``d = g + lambda w``; the first step starts the momentum buffer at ``d`` itself, later
    steps set ``buffer = mu buffer + (1 - tau) d``; the step is ``d + mu buffer`` with Nesterov,
    else ``buffer``.
    """
    gradient = _kd_logit_gradient() * hidden + weight_decay * w_i
    buffer = gradient if first else momentum * m_i + (1 - dampening) * gradient
    step = gradient + momentum * buffer if nesterov else buffer
    return w_i - learning_rate * step, buffer


def scalar_recursion(weight_mean, buffer_mean, *, nesterov, first):
    """The optimizer's own recursion on the class means, with the gradient's mean (zero)
    removed: what [mean-preservation] says the means follow."""
    direction = weight_decay * weight_mean
    buffer = direction if first else momentum * buffer_mean + (1 - dampening) * direction
    step = direction + momentum * buffer if nesterov else buffer
    return weight_mean - learning_rate * step, buffer


@statement(
    "mean-preservation",
    "SGD (momentum, dampening, Nesterov, weight decay) moves the output layer's class "
    "means only by its own recursion without the gradient",
    r"\bar w_{t+1} = \bar w_t - \eta\,\bar s_t,\quad \bar s_t = \text{the SGD step of "
    r"} \lambda\bar w \text{ alone}",
)
def _mean_preservation(order):
    # Class means of weight and buffer, and the recursion they must follow: the same optimizer
    # on the weight-decay term alone, since the logit loss adds zero to the mean.
    weight_mean, buffer_mean = Symbol("wbar", real=True), Symbol("mbar", real=True)
    means = {ClassMean(w_i): weight_mean, ClassMean(m_i): buffer_mean}
    residuals = {
        label("sum_i dL/db_i (bias gradient)", r"\sum_i \partial L/\partial b_i"): class_sum(
            _kd_logit_gradient()
        ),
        label("sum_i dL/dW_i (weight gradient)", r"\sum_i \partial L/\partial W_i"): class_sum(
            _kd_logit_gradient() * hidden
        ),
    }
    for first in (True, False):
        for nesterov in (False, True):
            new_weight, new_buffer = _sgd_step(nesterov=nesterov, first=first)
            mean_weight, mean_buffer = scalar_recursion(
                weight_mean, buffer_mean, nesterov=nesterov, first=first
            )
            which = ("first step" if first else "later step") + (", Nesterov" if nesterov else "")
            latex_which = r"\text{" + which + "}"
            residuals[
                label(
                    f"<m'> - recursion ({which})", rf"\langle m'\rangle - \bar m',\ {latex_which}"
                )
            ] = canonical(ClassMean(new_buffer)).xreplace(means) - mean_buffer
            residuals[
                label(
                    f"<w'> - recursion ({which})", rf"\langle w'\rangle - \bar w',\ {latex_which}"
                )
            ] = canonical(ClassMean(new_weight)).xreplace(means) - mean_weight
    plain, _ = scalar_recursion(weight_mean, 0, nesterov=False, first=True)
    residuals[
        label(
            "recursion without momentum - (1 - eta lambda) wbar",
            r"\bar w' - (1 - \eta\lambda)\bar w \text{ without momentum}",
        )
    ] = plain - (1 - learning_rate * weight_decay) * weight_mean
    return residuals


def means_after(steps, *, nesterov=False):
    """``[w̄_0, w̄_1, ...]`` under the scalar recursion from ``w̄_0 = 1``."""
    weight, buffer, trajectory = sympy.Integer(1), None, [sympy.Integer(1)]
    for step in range(steps):
        weight, buffer = scalar_recursion(weight, buffer, nesterov=nesterov, first=step == 0)
        trajectory.append(sympy.expand(weight))
    return trajectory


#: The counterexample to "(1 - eta lambda)**t with momentum": SGD(lr=0.1, momentum=0.9,
#: weight_decay=0.1) gives wbar_2 = 0.9711 wbar_0, not 0.9801 wbar_0.
MOMENTUM_DECAY_POINT = {
    learning_rate: Rational(1, 10),
    momentum: Rational(9, 10),
    weight_decay: Rational(1, 10),
    dampening: 0,
}


@statement(
    "mean-preservation/momentum-decay-factor",
    "With momentum, weight decay does not scale the class means by (1 - eta lambda)^t",
    r"\bar w_t = (1 - \eta\lambda)^t\,\bar w_0 \text{ for SGD with momentum } \mu > 0",
    expected="refuted",
)
def _momentum_decay_factor(order):
    after_two = means_after(2)[2]
    at_point = after_two.subs(MOMENTUM_DECAY_POINT)
    claimed = ((1 - learning_rate * weight_decay) ** 2).subs(MOMENTUM_DECAY_POINT)
    return {
        label(
            "wbar_2/wbar_0 - (1 - eta lambda)^2", r"\bar w_2/\bar w_0 - (1 - \eta\lambda)^2"
        ): sympy.expand(after_two - (1 - learning_rate * weight_decay) ** 2),
        label(
            f"at eta = 0.1, mu = 0.9, lambda = 0.1: {float(at_point):.4f} - {float(claimed):.4f}",
            rf"\eta = 0.1,\ \mu = 0.9,\ \lambda = 0.1:\ "
            rf"{float(at_point):.4f} - {float(claimed):.4f}",
        ): at_point - claimed,
    }


#: A point where the first step of an adaptive optimizer moves the mean row weight:
#: N = 3, z = 0, v = (1, 0, 0), T = 1, one hidden feature h = 1, zero initial state.
_ADAPTIVE_POINT = {"classes": 3, "student": (0, 0, 0), "teacher": (1, 0, 0)}


def _first_adaptive_step(normaliser):
    """Mean row-weight change after one step ``-eta * g / normaliser(g)`` at the point above."""
    classes = _ADAPTIVE_POINT["classes"]
    student, teacher = logit_symbols(classes)
    point = dict(zip(student, _ADAPTIVE_POINT["student"]))
    point.update(zip(teacher, _ADAPTIVE_POINT["teacher"]))
    point[epsilon] = 1
    gradients = [
        concrete(_kd_logit_gradient(), classes=classes, component=c).subs(point)
        for c in range(1, classes + 1)
    ]
    steps = [-learning_rate * g / normaliser(g) for g in gradients]
    return sympy.nsimplify(sympy.simplify(sum(steps) / classes))


#: RMSprop's default smoothing constant.
_ALPHA = Rational(99, 100)


def _gradient_size(gradient):
    """First step of Adam, AdamW (bias-corrected: m_hat = g, v_hat = g^2) and Adagrad
    (sum = g^2) from a zero state, with their eps -> 0: the step is g / |g|."""
    return sympy.sqrt(gradient**2)


def _rmsprop_size(gradient):
    """RMSprop's first step: v = (1 - alpha) g^2."""
    return sympy.sqrt((1 - _ALPHA) * gradient**2)


def _register_adaptive(name, optimizer, normaliser):
    @statement(
        f"mean-preservation/{name}",
        f"{optimizer} breaks mean preservation",
        rf"\bar w_{{t+1}} = \bar w_t \text{{ under {optimizer}}}",
        expected="refuted",
    )
    def proof(order):
        return {
            label(
                f"<w'> - <w> after one {optimizer} step (N=3, z=0, v=(1,0,0), T=1)",
                rf"\langle w'\rangle - \langle w\rangle \text{{ after one {optimizer} "
                rf"step}}\ (N = 3,\ z = 0,\ v = (1, 0, 0),\ T = 1)",
            ): _first_adaptive_step(normaliser)
        }

    return proof


for _name, _optimizer, _normaliser in [
    ("adam", "Adam", _gradient_size),
    ("adamw", "AdamW", _gradient_size),
    ("rmsprop", "RMSprop", _rmsprop_size),
    ("adagrad", "Adagrad", _gradient_size),
]:
    _register_adaptive(_name, _optimizer, _normaliser)


# -- [equal-mean] -----------------------------------------------------------------------------


def _sgd_bias_step(bias_decay, *, nesterov, first):
    """One step of PyTorch's SGD on class i's output bias with weight decay ``bias_decay`` on
    it: ``(b', buffer')``, the buffer written ``m_i`` as in :func:`_sgd_step`."""
    gradient = _kd_logit_gradient() + bias_decay * b_i
    buffer = gradient if first else momentum * m_i + (1 - dampening) * gradient
    step = gradient + momentum * buffer if nesterov else buffer
    return b_i - learning_rate * step, buffer


def _equal_mean_step_residuals():
    """One SGD step keeps equal-mean initialization's state (student and teacher rows of mean
    0, equal bias means, momentum buffers of mean 0), with weight decay on the weights, when
    the bias has no weight decay or both bias means are 0; the teacher is fixed."""
    student_logit = w_i * hidden + b_i
    teacher_logit = u_i * teacher_hidden + c_i
    equal = {
        ClassMean(w_i): 0,
        ClassMean(m_i): 0,
        ClassMean(u_i): 0,
        ClassMean(c_i): ClassMean(b_i),
    }
    zero = {**equal, ClassMean(b_i): 0, ClassMean(c_i): 0}
    residuals = {}
    for first in (True, False):
        for nesterov in (False, True):
            new_weight, weight_buffer = _sgd_step(nesterov=nesterov, first=first)
            which = ("first step" if first else "later step") + (", Nesterov" if nesterov else "")
            for case, latex_case, bias_decay, state in (
                ("no decay on b", r"\text{no decay on } b", 0, equal),
                ("decay on b, b_bar = 0", r"\text{decay on } b,\ \bar b = 0", weight_decay, zero),
            ):
                new_bias, bias_buffer = _sgd_bias_step(bias_decay, nesterov=nesterov, first=first)
                after = student_logit.xreplace({w_i: new_weight, b_i: new_bias})
                text = rf"\text{{{which}}},\ {latex_case}"
                residuals[
                    label(
                        f"<z'> - <v> ({which}, {case})",
                        rf"\langle z'\rangle - \langle v\rangle,\ {text}",
                    )
                ] = canonical(ClassMean(after) - ClassMean(teacher_logit)).xreplace(state)
                residuals[
                    label(
                        f"<w'>, <m_w'>, <m_b'> ({which}, {case})",
                        rf"\langle w'\rangle, \langle m_w'\rangle, \langle m_b'\rangle,\ {text}",
                    )
                ] = sum(
                    sympy.Abs(canonical(ClassMean(value)).xreplace(state))
                    for value in (new_weight, weight_buffer, bias_buffer)
                )
    return residuals


@statement(
    "equal-mean",
    "Equal-mean initialization keeps student and teacher logit means equal under SGD, "
    "if the output bias has no weight decay or b_bar = 0",
    r"\begin{gathered}\bar w = 0 \Rightarrow \langle z\rangle(x) = \bar b \text{ for every } x;"
    r"\\ \bar w_s = \bar w_t = 0,\ \bar b_s = \bar b_t \Rightarrow \langle z\rangle = "
    r"\langle v\rangle \text{ after every SGD step,}\\ \text{if } b \text{ has no weight "
    r"decay or } \bar b = 0\end{gathered}",
)
def _equal_mean(order):
    student_logit = w_i * hidden + b_i
    teacher_logit = u_i * teacher_hidden + c_i
    initialised = {ClassMean(w_i): 0, ClassMean(u_i): 0, ClassMean(c_i): ClassMean(b_i)}
    return {
        label("<z> - b_bar, given w_bar = 0", r"\langle z\rangle - \bar b,\ \bar w = 0"): canonical(
            ClassMean(student_logit)
        ).subs(initialised)
        - ClassMean(b_i),
        label(
            "<z> - <v>, equal-mean initialization",
            r"\langle z\rangle - \langle v\rangle \text{ after equal-mean initialization}",
        ): canonical(ClassMean(student_logit) - ClassMean(teacher_logit)).subs(initialised),
        **_equal_mean_step_residuals(),
    }


@statement(
    "equal-mean/nonzero-row-mean",
    "Equal bias means alone do not give equal logit means",
    r"\bar b_s = \bar b_t \Rightarrow \langle z(x)\rangle = \langle v(x)\rangle",
    expected="refuted",
)
def _equal_mean_nonzero_row_mean(order):
    # Equal bias means but a nonzero mean row weight: <z> - <v> depends on the input.
    return {
        label(
            "<z> - <v>, equal b_bar only",
            r"\langle z\rangle - \langle v\rangle,\ \text{equal } \bar b \text{ only}",
        ): canonical(ClassMean(w_i * hidden + b_i) - ClassMean(u_i * teacher_hidden + c_i)).subs(
            {ClassMean(c_i): ClassMean(b_i), ClassMean(u_i): 0}
        )
    }


#: The counterexample to equal means under weight decay on the bias: SGD(lr=0.1,
#: weight_decay=0.1), bias means 1/2, a fixed teacher: <z_t> - <v> = (0.99**t - 1)/2.
BIAS_DECAY_POINT = {learning_rate: Rational(1, 10), weight_decay: Rational(1, 10)}
BIAS_DECAY_MEAN = Rational(1, 2)


def bias_decay_gap():
    r"""``(t, b̄_0, gap)``: :math:`\langle z_t\rangle - \langle v\rangle` after ``t`` steps of
    plain SGD (learning rate :math:`\eta`, weight decay :math:`\lambda` on weights and bias)
    from equal-mean initialization with bias means :math:`\bar b_0`, the teacher fixed.

    The bias mean's one-step map comes from PyTorch's update rule (:func:`_sgd_bias_step`,
    the gradient's class mean dropping out), the recursion is solved by ``sympy.rsolve``, and
    the row means stay 0 ([equal-mean]'s step residuals).

    >>> steps, start, gap = bias_decay_gap()
    >>> gap
    bbar*(-eta*lambda + 1)**t - bbar
    """
    steps = Symbol("t", integer=True, nonnegative=True)
    start, mean = Symbol("bbar", real=True), Symbol("b", real=True)
    new_bias, _ = _sgd_bias_step(weight_decay, nesterov=False, first=True)
    one_step = canonical(ClassMean(new_bias)).xreplace({ClassMean(b_i): mean})
    trajectory = sympy.Function("bias_mean")
    solved = sympy.rsolve(
        trajectory(steps + 1) - one_step.xreplace({mean: trajectory(steps)}),
        trajectory(steps),
        {trajectory(0): start},
    )
    return steps, start, solved - start


@statement(
    "equal-mean/bias-decay",
    "Weight decay on the output bias breaks equal logit means when b_bar is not 0",
    r"\bar w_s = \bar w_t = 0,\ \bar b_s = \bar b_t \ne 0,\ \text{SGD with weight decay on } b"
    r" \Rightarrow \langle z\rangle = \langle v\rangle \text{ after every step}",
    expected="refuted",
)
def _equal_mean_bias_decay(order):
    _, start, gap = bias_decay_gap()
    at_point = gap.subs(BIAS_DECAY_POINT).subs(start, BIAS_DECAY_MEAN)
    return {
        label(
            "<z_t> - <v> after t SGD steps, weight decay lambda on b, teacher fixed",
            r"\langle z_t\rangle - \langle v\rangle \text{ after } t \text{ SGD steps, "
            r"weight decay } \lambda \text{ on } b",
        ): gap,
        label(
            "at eta = 0.1, lambda = 0.1, b_bar = 1/2: (0.99^t - 1)/2",
            r"\eta = 0.1,\ \lambda = 0.1,\ \bar b = \tfrac12:\ (0.99^t - 1)/2",
        ): at_point,
    }


# -- [infinite-temperature], [hinton-zero-mean], [equal-mean-suffices] ------------------------


@statement(
    "infinite-temperature",
    "KD at infinite temperature is logits matching plus a regularizer",
    r"L_{KD} = L_{LM}(z, v) - \tfrac12\left(\langle z\rangle - \langle v\rangle\right)^2"
    r" + O(T^{-1})",
)
def _infinite_temperature(order):
    loss_pieces, gradient_pieces = leading_pieces("loss"), leading_pieces("gradient")
    half_variance = OBJECTIVES["centred-logits-matching"].loss()
    return {
        label("L_0 - (L_LM + regularizer)", r"L_0 - (L_{LM} + \text{regularizer})"): leading("loss")
        - sum(loss_pieces.values()),
        label("L_0 - Var(z - v)/2", r"L_0 - \tfrac12\mathrm{Var}(z - v)"): leading("loss")
        - half_variance,
        label(
            "G_0 - (logits matching + regularizer)",
            r"G_{0,i} - (\partial L_{LM}/\partial z_i + \text{regularizer})",
        ): leading("gradient") - sum(gradient_pieces.values()),
    }


def _with_means(substitution):
    def proof(order):
        return {
            label("L_0 - L_LM", r"L_0 - L_{LM}"): leading("loss").subs(substitution)
            - OBJECTIVES["logits-matching"].loss(),
            label("G_0 - dL_LM/dz_i", r"G_{0,i} - \partial L_{LM}/\partial z_i"): leading(
                "gradient"
            ).subs(substitution)
            - OBJECTIVES["logits-matching"].gradient()["i"],
        }

    return proof


statement(
    "hinton-zero-mean",
    "With zero-mean logits KD tends to logits matching (Hinton et al.)",
    r"\langle z\rangle = \langle v\rangle = 0 \Rightarrow \frac{\partial L_{KD}}{\partial z} "
    r"\to \frac1N (z - v)",
)(_with_means({ClassMean(z_i): 0, ClassMean(v_i): 0}))
statement(
    "equal-mean-suffices",
    "Equal logit means suffice for KD to tend to logits matching (Chen et al.)",
    r"\langle z\rangle = \langle v\rangle \Rightarrow L_{KD} \to L_{LM}",
)(_with_means({ClassMean(v_i): ClassMean(z_i)}))


# -- [expansion] ------------------------------------------------------------------------------


@statement(
    "expansion",
    "The expansion in 1/T of every objective: consistent loss and gradient terms of "
    "zero class mean",
    r"L = \sum_k T^{-k} L_k,\quad \frac{\partial L}{\partial z_i} = \sum_k T^{-k} G_{k,i},"
    r"\quad G_k = \frac{\partial L_k}{\partial z},\quad \sum_i G_{k,i} = 0"
    r"\ \text{for every shift invariant objective}",
)
def _expansion(order):
    residuals = {
        label(
            "dL_KD/dz_i - T(q_i - p_i)", r"\partial L_{KD}/\partial z_i - T(q_i - p_i)"
        ): kd_loss().diff(z_i) - kd_gradient_closed_form(),
        label(
            "dL_KD/dz_i - d(cross-entropy form)/dz_i",
            r"\partial L_{KD}/\partial z_i"
            r" - \partial(-T^2\textstyle\sum_i p_i\log q_i)/\partial z_i",
        ): kd_loss().diff(z_i) - kd_cross_entropy_loss().diff(z_i),
    }
    for objective in OBJECTIVES.values():
        for values in objective.variants():
            _expansion_residuals(
                residuals, order, objective.name, values, objective.variant_name(values)
            )
    return residuals


def _expansion_residuals(residuals, order, objective, values, name):
    loss_terms = terms("loss", order, objective, **values)
    gradient_terms = terms("gradient", order, objective, **values)
    for k, (loss_term, gradient_term) in enumerate(zip(loss_terms, gradient_terms)):
        derived = term_gradient(objective, loss_term)
        for component in ("g", "i") if isinstance(gradient_term, dict) else (None,):
            value = gradient_term[component] if component else gradient_term
            expected = derived[component] if component else derived
            suffix = f",{component}" if component == "g" else ",i"
            residuals[
                label(
                    f"G_{k}{suffix} - dL_{k}/dz{suffix[1:]}, {name}",
                    rf"G_{{{k}{suffix}}} - \partial L_{k}/\partial z_{suffix[1:]},\ "
                    rf"\text{{{name}}}",
                )
            ] = value - expected
        if not OBJECTIVES[objective].shift_invariant:
            continue  # logits matching: its gradient does not sum to zero (refuted apart)
        residuals[label(f"sum_i G_{k},i, {name}", rf"\sum_i G_{{{k},i}},\ \text{{{name}}}")] = (
            gradient_sum(gradient_term)
        )
