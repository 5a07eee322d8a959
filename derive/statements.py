r"""The registry of statements: one entry per THEORY.md id, each with its symbolic proof.

Every entry carries its statement in LaTeX, whether it is expected to hold or to be refuted,
the name of its numeric check in :mod:`verify` (resolved lazily: :mod:`derive` never imports
torch), and a proof. A proof computes named *residuals* that must simplify to exactly 0; the
verdict is ``"holds"`` iff every residual is 0, and a failed proof shows its residuals.

Refutations (ids with a ``/``) are statements the theory expects to be false; their proofs
exhibit a nonzero residual, a counterexample.

Examples
========

>>> result = STATEMENTS["hinton-zero-mean"].prove(order=1)
>>> result.verdict, result.as_expected
('holds', True)
>>> STATEMENTS["zero-mean-gradient/logits-matching"].prove().residual
-mean(v_i) + mean(z_i)
"""

from dataclasses import dataclass, field
from typing import Callable

import sympy
from sympy import Rational, Symbol

from ._errors import check_argument, check_order
from .expansion import expand, leading_pieces
from .notation import (N, ClassMean, b_i, c_i, canonical, class_sum, concrete, epsilon,
                       logit_symbols, m_i, moment, t_i, u_i, v_i, w_i, z_i)
from .objectives import (OBJECTIVES, kd_cross_entropy_loss, kd_gradient_closed_form, kd_loss,
                         logits_matching_loss, log_softmax, sigmoid_distillation_loss)

__all__ = ["ProofResult", "Statement", "STATEMENTS", "prove_all"]

#: Hyper-parameters of the optimizers, as symbols.
learning_rate, momentum, dampening, weight_decay = sympy.symbols(
    "eta mu tau lambda", positive=True)
#: Hidden features feeding the student and teacher output layers.
hidden, teacher_hidden = sympy.symbols("h h_t", real=True)


@dataclass(frozen=True)
class ProofResult:
    """What a proof found: each named residual after simplification, and the verdict."""

    statement_id: str
    expected: str
    residuals: dict
    order: int

    @property
    def verdict(self):
        return "holds" if all(r == 0 for r in self.residuals.values()) else "refuted"

    @property
    def as_expected(self):
        return self.verdict == self.expected

    @property
    def residual(self):
        """The first nonzero residual, or 0."""
        return next((r for r in self.residuals.values() if r != 0), sympy.Integer(0))

    def __str__(self):
        lines = [f"{self.statement_id}: {self.verdict} (expected {self.expected})"]
        lines += [f"  {name}: residual {residual}" for name, residual in self.residuals.items()
                  if residual != 0]
        return "\n".join(lines)


@dataclass(frozen=True)
class Statement:
    """One statement of THEORY.md (or a refuted variant), with its proof and numeric check."""

    id: str
    title: str
    statement: str
    expected: str
    proof: Callable = field(repr=False)

    @property
    def numeric_check(self):
        """``"module:function"`` of the numeric check in :mod:`verify`."""
        return "verify.checks:check_" + self.id.replace("-", "_").replace("/", "_")

    def prove(self, *, order=4):
        """Run the symbolic proof (to ``order`` terms of the expansion where relevant)."""
        check_order(order)
        residuals = {name: canonical(r) for name, r in self.proof(order).items()}
        return ProofResult(self.id, self.expected, residuals, order)


# -- proofs ------------------------------------------------------------------------------

def _terms(quantity, order):
    return [term.expr for term in expand(quantity, order=order).terms]


def _leading(quantity):
    return _terms(quantity, 1)[0]


def _shift_invariant_losses():
    """Losses that see the logits only through softmax(z/T)."""
    target_cross_entropy = -N * ClassMean(t_i * log_softmax(z_i)) / epsilon**2
    return {
        "kd": kd_loss(),
        "kd-cross-entropy": kd_cross_entropy_loss(),
        "reverse-kl": OBJECTIVES["reverse-kl"].loss(),
        "jensen-shannon": OBJECTIVES["js"].loss(),
        # Hard labels, label smoothing and soft targets are targets t with sum_i t_i = 1.
        "target-cross-entropy": target_cross_entropy,
    }


def _targets_sum_to_one(expr):
    return expr.subs(ClassMean(t_i), 1 / N)


def _zero_mean_gradient(order):
    shift = Symbol("c", real=True)
    residuals = {}
    for name, loss in _shift_invariant_losses().items():
        residuals[f"sum_i dL/dz_i, {name}"] = _targets_sum_to_one(
            canonical(class_sum(loss.diff(z_i))))
        residuals[f"L(z + c) - L(z), {name}"] = _targets_sum_to_one(
            canonical(loss.xreplace({z_i: z_i + shift}) - loss))
    for k, term in enumerate(_terms("gradient", order)):
        residuals[f"sum_i G_{k},i"] = class_sum(term)
    return residuals


def _zero_mean_gradient_logits_matching(order):
    return {"sum_i dL_LM/dz_i": class_sum(logits_matching_loss().diff(z_i))}


def _zero_mean_gradient_sigmoid_bce(order):
    return {"sum_i dL_BCE/dz_i": class_sum(sigmoid_distillation_loss().diff(z_i))}


def _kd_logit_gradient():
    return kd_gradient_closed_form()


def _sgd_step(*, nesterov):
    r"""One SGD step on class i's output weight and its momentum buffer (PyTorch's rule)."""
    gradient = _kd_logit_gradient() * hidden + weight_decay * w_i
    buffer = momentum * m_i + (1 - dampening) * gradient
    step = gradient + momentum * buffer if nesterov else buffer
    return w_i - learning_rate * step, buffer


def _mean_preservation(order):
    # Class means of weight and buffer, and the scalar recursion they must follow: the same
    # optimizer on the weight-decay term alone, since the logit loss adds zero to the mean.
    weight_mean, buffer_mean = Symbol("wbar", real=True), Symbol("mbar", real=True)
    means = {ClassMean(w_i): weight_mean, ClassMean(m_i): buffer_mean}
    residuals = {
        "sum_i dL/db_i (bias gradient)": class_sum(_kd_logit_gradient()),
        "sum_i dL/dW_i (weight gradient)": class_sum(_kd_logit_gradient() * hidden),
    }
    for nesterov in (False, True):
        new_weight, new_buffer = _sgd_step(nesterov=nesterov)
        mean_gradient = weight_decay * weight_mean
        mean_buffer = momentum * buffer_mean + (1 - dampening) * mean_gradient
        mean_step = mean_gradient + momentum * mean_buffer if nesterov else mean_buffer
        label = "nesterov" if nesterov else "momentum"
        residuals[f"<m'> - scalar recursion ({label})"] = (
            canonical(ClassMean(new_buffer)).xreplace(means) - mean_buffer)
        residuals[f"<w'> - scalar recursion ({label})"] = (
            canonical(ClassMean(new_weight)).xreplace(means) - (weight_mean - learning_rate * mean_step))
        plain = canonical(ClassMean(new_weight)).xreplace(means).subs({momentum: 0, dampening: 0})
        residuals[f"<w'> - (1 - eta lambda) <w>, plain SGD ({label})"] = (
            plain - (1 - learning_rate * weight_decay) * weight_mean)
    return residuals


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
    gradients = [concrete(_kd_logit_gradient(), classes=classes, component=c).subs(point)
                 for c in range(1, classes + 1)]
    steps = [-learning_rate * g / normaliser(g) for g in gradients]
    return sympy.nsimplify(sympy.simplify(sum(steps) / classes))


def _adaptive(normaliser, label):
    def proof(order):
        return {f"<w'> - <w> after one {label} step (N=3, z=0, v=(1,0,0), T=1)":
                _first_adaptive_step(normaliser)}
    return proof


#: RMSprop's default smoothing constant.
_ALPHA = Rational(99, 100)


def _gradient_size(gradient):
    """First step of Adam, AdamW (bias-corrected: m_hat = g, v_hat = g^2) and Adagrad
    (sum = g^2) from a zero state, with their eps -> 0: the step is g / |g|."""
    return sympy.sqrt(gradient**2)


def _rmsprop_size(gradient):
    """RMSprop's first step: v = (1 - alpha) g^2."""
    return sympy.sqrt((1 - _ALPHA) * gradient**2)


def _equal_mean(order):
    student_logit = w_i * hidden + b_i
    teacher_logit = u_i * teacher_hidden + c_i
    initialised = {ClassMean(w_i): 0, ClassMean(u_i): 0, ClassMean(c_i): ClassMean(b_i)}
    return {
        "<z> - b_bar, given w_bar = 0": canonical(ClassMean(student_logit)).subs(initialised)
        - ClassMean(b_i),
        "<z> - <v>, equal-mean initialization": canonical(
            ClassMean(student_logit) - ClassMean(teacher_logit)).subs(initialised),
    }


def _equal_mean_nonzero_row_mean(order):
    # Equal bias means but a nonzero mean row weight: <z> - <v> depends on the input.
    return {"<z> - <v>, equal b_bar only": canonical(
        ClassMean(w_i * hidden + b_i) - ClassMean(u_i * teacher_hidden + c_i)).subs(
            {ClassMean(c_i): ClassMean(b_i), ClassMean(u_i): 0})}


def _infinite_temperature(order):
    loss_pieces, gradient_pieces = leading_pieces("loss"), leading_pieces("gradient")
    difference = z_i - v_i
    half_variance = ClassMean((difference - ClassMean(difference)) ** 2) / 2
    return {
        "L_0 - (L_LM + regularizer)": _leading("loss") - sum(loss_pieces.values()),
        "L_0 - Var(z - v)/2": _leading("loss") - half_variance,
        "G_0 - (logits matching + regularizer)": _leading("gradient") - sum(gradient_pieces.values()),
    }


def _with_means(substitution):
    def proof(order):
        return {
            "L_0 - L_LM": _leading("loss").subs(substitution) - logits_matching_loss(),
            "G_0 - dL_LM/dz_i": _leading("gradient").subs(substitution)
            - logits_matching_loss().diff(z_i),
        }
    return proof


def _expansion(order):
    residuals = {
        "dL_KD/dz_i - T(q_i - p_i)": kd_loss().diff(z_i) - kd_gradient_closed_form(),
        "dL_KD/dz_i - d(cross-entropy form)/dz_i":
            kd_loss().diff(z_i) - kd_cross_entropy_loss().diff(z_i),
    }
    for k, (loss_term, gradient_term) in enumerate(zip(_terms("loss", order), _terms("gradient", order))):
        residuals[f"G_{k} - dL_{k}/dz_i"] = gradient_term - loss_term.diff(z_i)
        residuals[f"sum_i G_{k},i"] = class_sum(gradient_term)
    return residuals


_MEAN = r"\langle z\rangle"
STATEMENTS = {s.id: s for s in [
    Statement(
        "zero-mean-gradient", "The logit gradient of a softmax loss has zero class mean",
        r"\sum_i \frac{\partial \ell}{\partial z_i} = 0 \text{ for every } \ell(z) "
        r"\text{ that sees } z \text{ only through } \mathrm{softmax}(z/T)",
        "holds", _zero_mean_gradient),
    Statement(
        "zero-mean-gradient/logits-matching", "Logits matching has no zero-mean gradient",
        r"\sum_i \frac{\partial L_{LM}}{\partial z_i} = 0", "refuted",
        _zero_mean_gradient_logits_matching),
    Statement(
        "zero-mean-gradient/sigmoid-bce", "Sigmoid/BCE distillation has no zero-mean gradient",
        r"\sum_i \frac{\partial}{\partial z_i} T^2 \sum_j \mathrm{BCE}(\sigma(z_j/T), \sigma(v_j/T)) = 0",
        "refuted", _zero_mean_gradient_sigmoid_bce),
    Statement(
        "mean-preservation", "SGD (momentum, dampening, Nesterov) preserves the output layer's class means",
        r"\bar w_{t+1} = \bar w_t,\ \bar b_{t+1} = \bar b_t;\ \text{with weight decay } "
        r"\bar w_{t+1} = (1 - \eta\lambda)\bar w_t",
        "holds", _mean_preservation),
    *[Statement(
        f"mean-preservation/{name}", f"{label} breaks mean preservation",
        rf"\bar w_{{t+1}} = \bar w_t \text{{ under {label}}}", "refuted", _adaptive(normaliser, label))
      for name, label, normaliser in [("adam", "Adam", _gradient_size), ("adamw", "AdamW", _gradient_size),
                                      ("rmsprop", "RMSprop", _rmsprop_size),
                                      ("adagrad", "Adagrad", _gradient_size)]],
    Statement(
        "equal-mean", "Equal-mean initialization keeps student and teacher logit means equal",
        r"\bar w = 0 \Rightarrow " + _MEAN + r"(x) = \bar b \text{ for every } x",
        "holds", _equal_mean),
    Statement(
        "equal-mean/nonzero-row-mean", "Equal bias means alone do not give equal logit means",
        r"\bar b_s = \bar b_t \Rightarrow \langle z(x)\rangle = \langle v(x)\rangle", "refuted",
        _equal_mean_nonzero_row_mean),
    Statement(
        "infinite-temperature", "KD at infinite temperature is logits matching plus a regularizer",
        r"L_{KD} = L_{LM}(z, v) - \tfrac12\left(\langle z\rangle - \langle v\rangle\right)^2 + O(T^{-1})",
        "holds", _infinite_temperature),
    Statement(
        "hinton-zero-mean", "With zero-mean logits KD tends to logits matching (Hinton et al.)",
        r"\langle z\rangle = \langle v\rangle = 0 \Rightarrow \frac{\partial L_{KD}}{\partial z} "
        r"\to \frac1N (z - v)", "holds", _with_means({ClassMean(z_i): 0, ClassMean(v_i): 0})),
    Statement(
        "equal-mean-suffices", "Equal logit means suffice for KD to tend to logits matching (Chen et al.)",
        r"\langle z\rangle = \langle v\rangle \Rightarrow L_{KD} \to L_{LM}", "holds",
        _with_means({ClassMean(v_i): ClassMean(z_i)})),
    Statement(
        "expansion", "The expansion in 1/T: consistent loss and gradient terms of zero class mean",
        r"L_{KD} = \sum_k T^{-k} L_k,\quad \frac{\partial L_{KD}}{\partial z_i} = \sum_k T^{-k} G_{k,i},"
        r"\quad G_k = \frac{\partial L_k}{\partial z},\quad \sum_i G_{k,i} = 0", "holds", _expansion),
]}


def prove_all(*, order=4):
    """Prove every registered statement; a list of :class:`ProofResult` in registry order."""
    return [statement.prove(order=order) for statement in STATEMENTS.values()]
