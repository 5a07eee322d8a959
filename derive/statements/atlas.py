r"""The optimizer atlas: which optimizer steps keep the head's class means, and which setups
break them whatever the optimizer.

KD at high temperature is logits matching when the student's logit mean equals the teacher's
for *every* input, :math:`\langle z(x)\rangle = \langle v(x)\rangle`. With an affine head
:math:`z = W h(x) + b` that mean is :math:`\frac1N 1^T W h(x) + \bar b`: it depends on the body
only through :math:`h(x)`, multiplied by the head's class mean :math:`\bar w = \frac1N 1^T W`.
So the premise is a property of the head's parameters, and an optimizer keeps it exactly when
its step :math:`U` on the head has :math:`1^T U = 0` whenever the gradient has
:math:`1^T G = 0` ([zero-mean-gradient]).

The proofs work with explicit symbolic matrices: a gradient with zero column sums is a matrix
whose last row is minus the sum of the others, every other entry a free symbol; coefficients
that an optimizer computes from norms and inner products are free functions of those.

* ``atlas-linear``: linear combinations with per-tensor scalar coefficients (SGD, ASGD, LARS,
  clipping, SAM, Lookahead, L-BFGS's two-loop direction, schedules, accumulation).
* ``atlas-left-invariant``: :math:`\varphi(GG^T)G` (Newton–Schulz, polar factor) and
  :math:`LGR` with :math:`1` an eigenvector of :math:`L` (Shampoo).
* ``atlas-coordinatewise``: for :math:`N = 2` every odd coordinate-wise map keeps the means;
  for :math:`N \ge 3` coordinate-wise maps break them (refutations).
* ``atlas-structure``: only the head's parameters matter; a tied embedding, a weight-normalised
  head and a LoRA head under Adam break the means whatever trains the rest (refutations).

Examples
========

>>> from derive.statements import STATEMENTS
>>> STATEMENTS["atlas-left-invariant"].prove().verdict
'holds'
>>> STATEMENTS["atlas-coordinatewise/three-classes"].prove().residual
-1
"""

import sympy
from sympy import Function, Matrix, Rational, Symbol, eye, ones, sqrt, symbols

from ._registry import label, statement

__all__ = [
    "zero_sum_matrix",
    "class_sums",
    "newton_schulz_step",
    "MUON_COEFFICIENTS",
    "lbfgs_direction",
]

#: Muon's quintic Newton–Schulz coefficients ``(a, b, c)``: ``X <- aX + b(XXᵀ)X + c(XXᵀ)²X``
#: (torch.optim.Muon's defaults, as exact rationals).
MUON_COEFFICIENTS = (Rational(34445, 10000), Rational(-47750, 10000), Rational(20315, 10000))


def zero_sum_matrix(name, rows, columns):
    """A ``rows x columns`` matrix of free real symbols whose columns sum to 0 (its last row is
    minus the sum of the others): the generic gradient of a head under a shift invariant loss."""
    free = Matrix(rows - 1, columns, lambda i, j: Symbol(f"{name}_{i}{j}", real=True))
    return free.col_join(-ones(1, rows - 1) * free)


def generic_matrix(name, rows, columns):
    """A ``rows x columns`` matrix of free real symbols."""
    return Matrix(rows, columns, lambda i, j: Symbol(f"{name}_{i}{j}", real=True))


def class_sums(matrix):
    """``1ᵀ M``, expanded: the class sums of every column."""
    return (ones(1, matrix.rows) * matrix).applyfunc(lambda x: sympy.cancel(sympy.expand(x)))


def _residuals(prefix, latex_prefix, sums):
    """One residual per column of ``1ᵀU``, named after the update."""
    return {
        label(f"1^T U, column {j}, {prefix}", rf"1^T U_{{\cdot {j}}},\ \text{{{latex_prefix}}}"): (
            value
        )
        for j, value in enumerate(sums)
    }


def _frobenius(matrix):
    return sqrt(sum(entry**2 for entry in matrix))


def _inner(left, right):
    return sum(a * b for a, b in zip(left, right))


# -- [atlas-linear] ----------------------------------------------------------------------------


def lbfgs_direction(gradient, pairs, inner=None):
    r"""L-BFGS's two-loop recursion: the direction :math:`-H g` from the gradient ``g`` and the
    history ``[(s_k, y_k), ...]`` (oldest first), all flat ``Matrix`` columns; initial Hessian
    :math:`\gamma I` with :math:`\gamma = s^T y / y^T y` of the newest pair, as torch's LBFGS.
    ``inner(a, b)`` computes the inner products (default: exactly); the proof passes one that
    names each inner product by a fresh symbol, which is what "any scalar coefficients" means
    and keeps the expressions small."""
    _inner = inner or globals()["_inner"]
    q = gradient
    alphas = []
    for s, y in reversed(pairs):
        rho = 1 / _inner(y, s)
        alpha = rho * _inner(s, q)
        alphas.append(alpha)
        q = q - alpha * y
    s, y = pairs[-1]
    r = _inner(s, y) / _inner(y, y) * q
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        beta = _inner(y, r) / _inner(y, s)
        r = r + (alpha - beta) * s
    return -r


def _named_inner_products():
    """An inner product that returns a fresh positive symbol per distinct pair of vectors."""
    names = {}

    def inner(left, right):
        key = (tuple(left), tuple(right))
        if key not in names:
            names[key] = Symbol(f"ip{len(names)}", positive=True)
        return names[key]

    return inner


def _as_head(flat, rows, columns):
    return Matrix(rows, columns, list(flat))


@statement(
    "atlas-linear",
    "Updates linear in gradients and parameters with per-tensor scalar coefficients keep "
    "the head's class means",
    r"1^T G_k = 0,\ 1^T W_k = 0 \Rightarrow 1^T \Big(\sum_k \alpha_k G_k + \beta_k W_k\Big) = 0,"
    r"\ \alpha_k, \beta_k \text{ per-tensor scalars}",
)
def _atlas_linear(order):
    rows, columns = 3, 2
    gradients = [zero_sum_matrix(f"g{k}", rows, columns) for k in range(3)]
    weights = [zero_sum_matrix(f"w{k}", rows, columns) for k in range(2)]
    invariants = [_frobenius(g) for g in gradients] + [_inner(gradients[0], weights[0])]
    coefficient = Function("alpha", real=True)
    residuals = {}
    # Any linear combination with coefficients computed from norms and inner products.
    general = sum(
        (coefficient(k, *invariants) * m for k, m in enumerate(gradients + weights)),
        sympy.zeros(rows, columns),
    )
    residuals.update(_residuals("general linear combination", "general", class_sums(general)))
    learning_rate, decay, momentum, radius, threshold, trust = symbols(
        "eta lambda mu rho c kappa", positive=True
    )
    g, g_old, w = gradients[0], gradients[1], weights[0]
    named = {
        # SGD with momentum, Nesterov and decoupled weight decay as a factor.
        "SGD, Nesterov, decoupled decay": (1 - learning_rate * decay) * w
        - learning_rate * (g + momentum * (momentum * g_old + g)),
        # LARS: the trust ratio ||W|| / ||G|| is one scalar per tensor.
        "LARS trust ratio": w - learning_rate * trust * _frobenius(w) / _frobenius(g) * g,
        # Gradient-norm clipping: G * min(1, c / ||G||), a scalar per tensor.
        "norm clipping": w - learning_rate * sympy.Min(1, threshold / _frobenius(g)) * g,
        # SAM: the gradient at w + rho G/||G|| (itself zero-sum) replaces G.
        "SAM": w - learning_rate * gradients[2],
        # Lookahead / averaging: slow weights pulled towards fast ones.
        "Lookahead": weights[1] + Rational(1, 2) * (w - weights[1]),
        # Gradient accumulation over two micro-batches with a schedule's factor.
        "accumulation": w - learning_rate * Rational(1, 2) * (g + g_old),
    }
    for name, update in named.items():
        residuals.update(_residuals(name, name, class_sums(update)))
    # L-BFGS: two history pairs over the flattened head; s, y differences of zero-sum iterates.
    flat = [Matrix(list(m)) for m in (gradients[0], gradients[1], gradients[2], weights[1])]
    direction = lbfgs_direction(
        flat[0], [(flat[3], flat[1]), (flat[1] + flat[3], flat[2])], inner=_named_inner_products()
    )
    residuals.update(
        _residuals(
            "L-BFGS two-loop", "L-BFGS two-loop", class_sums(_as_head(direction, rows, columns))
        )
    )
    # Only the head matters: the head's gradient g h^T has zero column sums for every body.
    logit_gradient = zero_sum_matrix("q", rows, 1)
    features = generic_matrix("h", 1, columns)
    residuals.update(
        _residuals("head gradient g h^T", "head gradient", class_sums(logit_gradient * features))
    )
    return residuals


@statement(
    "atlas-linear/per-row-coefficients",
    "Coefficients that differ between the head's rows keep the class means",
    r"1^T G = 0 \Rightarrow 1^T \operatorname{diag}(c)\, G = 0",
    expected="refuted",
)
def _per_row_coefficients(order):
    # Row-wise normalisation (SGDP/AdamP's per-channel projection, Adafactor's row factor):
    # G = [[2], [-1], [-1]] scaled by 1/|row|.
    gradient = Matrix([[2], [-1], [-1]])
    scaled = Matrix([[gradient[i] / abs(gradient[i])] for i in range(3)])
    return {
        label("1^T diag(1/|g_i|) g at g = (2, -1, -1)", r"1^T \mathrm{diag}(1/|g_i|)\, g"): (
            class_sums(scaled)[0]
        )
    }


# -- [atlas-left-invariant] --------------------------------------------------------------------


def newton_schulz_step(matrix, coefficients=MUON_COEFFICIENTS):
    """One quintic Newton–Schulz step ``aX + b(XXᵀ)X + c(XXᵀ)²X``."""
    a, b, c = coefficients
    gram = matrix * matrix.T
    return a * matrix + b * gram * matrix + c * gram * gram * matrix


@statement(
    "atlas-left-invariant",
    "phi(G G^T) G and L G R with 1 an eigenvector of L keep the head's class means",
    r"1^T G = 0 \Rightarrow 1^T \varphi(GG^T)\,G = 0,\quad L1 = \lambda 1 \Rightarrow "
    r"1^T L G R = 0",
)
def _atlas_left_invariant(order):
    rows, columns = 3, 2
    gradient = zero_sum_matrix("g", rows, columns)
    gram = gradient * gradient.T
    residuals = _residuals("G G^T", "G G^T", class_sums(gram))
    # phi a cubic polynomial with symbolic coefficients (any polynomial: 1^T (GG^T)^k = 0).
    coefficients = symbols("phi0:4", real=True)
    phi = sum((coefficients[k] * gram**k for k in range(4)), sympy.zeros(rows, rows))
    residuals.update(
        _residuals("phi(GG^T) G, cubic phi", r"\varphi(GG^T) G", class_sums(phi * gradient))
    )
    # Newton-Schulz with symbolic coefficients, one step from any zero-sum X (induction).
    a, b, c = symbols("a b c", real=True)
    stepped = newton_schulz_step(gradient, (a, b, c))
    residuals.update(_residuals("Newton-Schulz step", "Newton-Schulz step", class_sums(stepped)))
    # L G R with L 1 = lambda 1: L = (lambda/N) 1 1^T + P M P, P the centring projector.
    eigenvalue = Symbol("lambda", real=True)
    centring = eye(rows) - ones(rows, rows) / rows
    symmetric = generic_matrix("m", rows, rows)
    symmetric = (symmetric + symmetric.T) / 2
    left = eigenvalue / rows * ones(rows, rows) + centring * symmetric * centring
    right = generic_matrix("r", columns, columns)
    residuals[label("L 1 - lambda 1", r"L1 - \lambda 1")] = sum(
        abs(sympy.expand(x)) for x in left * ones(rows, 1) - eigenvalue * ones(rows, 1)
    )
    residuals.update(_residuals("L G R", "L G R", class_sums(left * gradient * right)))
    # Shampoo: L_t = sum_k G_k G_k^T + eps I has 1 as an eigenvector (eigenvalue eps), so any
    # matrix function of it (the inverse fourth root) keeps 1 too.
    epsilon = Symbol("epsilon", positive=True)
    other = zero_sum_matrix("k", rows, columns)
    shampoo = gram + other * other.T + epsilon * eye(rows)
    residuals[label("Shampoo: L 1 - eps 1", r"L_{\mathrm{Shampoo}} 1 - \epsilon 1")] = sum(
        abs(sympy.expand(x)) for x in shampoo * ones(rows, 1) - epsilon * ones(rows, 1)
    )
    # Round-off along 1: to first order Newton-Schulz multiplies it by a = 3.4445.
    amplified = _first_order_along_ones()
    residuals[
        label(
            "d/d delta 1^T NS(Y + delta 1 r^T) - N a r^T, r in ker Y^T Y",
            r"\partial_\delta 1^T\mathrm{NS}(Y + \delta 1 r^T) - N a r^T",
        )
    ] = amplified - 3 * MUON_COEFFICIENTS[0]
    return residuals


def _first_order_along_ones():
    """The coefficient of delta in 1^T NS(Y + delta 1 r^T), column 1, for a zero-sum Y with a
    zero column and r = (0, 1) in the null space of Y^T Y."""
    delta = Symbol("delta", real=True)
    y = zero_sum_matrix("y", 3, 1).row_join(sympy.zeros(3, 1))
    r = Matrix([[0, 1]])
    stepped = newton_schulz_step(y + delta * ones(3, 1) * r)
    return sympy.expand(class_sums(stepped)[1]).coeff(delta, 1)


@statement(
    "atlas-left-invariant/round-off-damped",
    "Newton-Schulz damps an error along the class-mean direction",
    r"1^T\,\mathrm{NS}(Y + \delta 1 r^T) = O(\delta^2)",
    expected="refuted",
)
def _round_off_damped(order):
    # An error delta 1 r^T along the class-mean direction is multiplied by N a, not damped.
    return {
        label(
            "d/d delta 1^T NS(Y + delta 1 r^T), r in ker Y^T Y", r"\partial_\delta 1^T\mathrm{NS}"
        ): (_first_order_along_ones())
    }


@statement(
    "atlas-left-invariant/any-left-preconditioner",
    "Any left preconditioner L G keeps the class means",
    r"1^T G = 0 \Rightarrow 1^T L G = 0 \text{ for every } L",
    expected="refuted",
)
def _any_left_preconditioner(order):
    # PSGD-Kron's triangular factors: 1 is not an eigenvector of L = [[1, 0, 0], [1, 1, 0], ...].
    left = Matrix([[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    gradient = Matrix([[1], [-1], [0]])
    return {
        label("1^T L g, L lower triangular, g = (1, -1, 0)", r"1^T L g"): class_sums(
            left * gradient
        )[0]
    }


# -- [atlas-coordinatewise] --------------------------------------------------------------------


@statement(
    "atlas-coordinatewise",
    "With two classes every odd coordinate-wise rule keeps the class means",
    r"N = 2,\ f(-x) = -f(x) \Rightarrow f(g_1) + f(g_2) = 0 \text{ when } g_1 + g_2 = 0",
)
def _atlas_coordinatewise(order):
    inner = Function("f", real=True)
    residuals = {}
    # Every odd function is x * h(x^2); the two classes' gradients are (a, -a).
    a = Symbol("a", real=True)

    def odd(value):
        return value * inner(value**2)

    residuals[label("f(a) + f(-a), f odd", r"f(a) + f(-a)")] = sympy.expand(odd(a) + odd(-a))
    # Adam after two steps from zero state: m, v built from (a_k, -a_k); update m_hat/(sqrt v + e).
    beta1, beta2, eps = symbols("beta1 beta2 epsilon", positive=True)
    first, second = symbols("a1 a2", real=True)
    per_class = []
    for sign in (1, -1):
        g1, g2 = sign * first, sign * second
        m = beta1 * (1 - beta1) * g1 + (1 - beta1) * g2
        v = beta2 * (1 - beta2) * g1**2 + (1 - beta2) * g2**2
        per_class.append(m / (1 - beta1**2) / (sqrt(v / (1 - beta2**2)) + eps))
    residuals[label("Adam, two steps, N = 2: u_1 + u_2", r"u_1 + u_2,\ \text{Adam}")] = (
        sympy.simplify(sum(per_class))
    )
    # sign (Lion, signSGD) and coupled weight decay with w_2 = -w_1: still (u, -u).
    decay, weight = symbols("lambda w", real=True)
    residuals[label("sign(a + lambda w) + sign(-a - lambda w)", r"\mathrm{sign}")] = sympy.simplify(
        sympy.sign(a + decay * weight) + sympy.sign(-a - decay * weight)
    )
    return residuals


@statement(
    "atlas-coordinatewise/three-classes",
    "Coordinate-wise rules keep the class means for three classes",
    r"N = 3,\ 1^T g = 0 \Rightarrow \sum_i f(g_i) = 0",
    expected="refuted",
)
def _three_classes(order):
    gradient = (2, -1, -1)
    eps = Symbol("epsilon", positive=True)
    return {
        label("sum_i sign(g_i), g = (2, -1, -1)", r"\sum_i \mathrm{sign}(g_i)"): sum(
            sympy.sign(g) for g in gradient
        ),
        label("Adam's first step: sum_i g_i/(|g_i| + eps)", r"\sum_i g_i/(|g_i| + \epsilon)"): (
            sympy.simplify(sum(Rational(g) / (abs(g) + eps) for g in gradient))
        ),
    }


@statement(
    "atlas-coordinatewise/cautious-mask",
    "A cautious mask keeps SGD's class means",
    r"u = m \odot 1[m \odot g > 0],\ 1^T m = 1^T g = 0 \Rightarrow 1^T u = 0",
    expected="refuted",
)
def _cautious_mask(order):
    momentum, gradient = (1, 1, -2), (1, -1, 0)
    masked = [m if m * g > 0 else 0 for m, g in zip(momentum, gradient)]
    return {
        label("1^T (m * [m g > 0]), m = (1, 1, -2), g = (1, -1, 0)", r"1^T (m \odot 1[mg > 0])"): (
            sympy.Integer(sum(masked))
        )
    }


@statement(
    "atlas-coordinatewise/two-classes-not-odd",
    "With two classes every coordinate-wise rule keeps the class means",
    r"N = 2 \Rightarrow f(a) + f(-a) = 0 \text{ for every } f",
    expected="refuted",
)
def _two_classes_not_odd(order):
    # Asymmetric value clipping clamp(g, -1/10, 1/5) is not odd.
    a = Rational(1, 2)

    def clip(value):
        return min(max(value, Rational(-1, 10)), Rational(1, 5))

    return {
        label("clip(1/2) + clip(-1/2), clip to [-0.1, 0.2]", r"f(a) + f(-a)"): clip(a) + clip(-a)
    }


# -- [atlas-structure] -------------------------------------------------------------------------


@statement(
    "atlas-structure",
    "KD equals logits matching iff the logit means agree for every input, which only the "
    "head's parameters decide",
    r"\langle z(x)\rangle - \langle v(x)\rangle = \bar w_s h_s(x) - \bar w_t h_t(x) + \bar b_s "
    r"- \bar b_t,\quad \bar w = 0 \Rightarrow \partial_\theta \langle z(x)\rangle = 0",
)
def _atlas_structure(order):
    rows, columns = 3, 2
    theta = Symbol("theta", real=True)
    x = Symbol("x", real=True)
    student = zero_sum_matrix("w", rows, columns)
    teacher = zero_sum_matrix("u", rows, columns)
    bias = generic_matrix("b", rows, 1)
    features = Matrix([[sympy.tanh(theta * x)], [sympy.sin(theta + x)]])  # any body h_theta(x)
    teacher_features = Matrix([[sympy.exp(x)], [x**3]])
    student_mean = sum(student * features + bias) / rows
    teacher_mean = sum(teacher * teacher_features + bias) / rows
    residuals = {
        label(
            "<z(x)> - <v(x)>, zero-sum heads, equal bias", r"\langle z\rangle - \langle v\rangle"
        ): (sympy.simplify(student_mean - teacher_mean)),
        label(
            "d<z(x)>/d theta (body parameter), zero-sum head", r"\partial_\theta\langle z\rangle"
        ): (sympy.simplify(sympy.diff(student_mean, theta))),
    }
    # LoRA under SGD: W = W0 + B A with B0 = 0; B's gradient G A^T has zero column sums, so
    # 1^T B stays 0 and 1^T W = 1^T W0.
    rank = 1
    lora_a = generic_matrix("A", rank, columns)
    gradient = zero_sum_matrix("g", rows, columns)
    residuals.update(
        _residuals("LoRA B gradient G A^T", "LoRA B gradient", class_sums(gradient * lora_a.T))
    )
    return residuals


@statement(
    "atlas-structure/tied-embedding",
    "A head tied to the input embedding keeps its class means under SGD",
    r"z = E\,E^T e_k,\ 1^T E = 0 \Rightarrow 1^T \nabla_E L = 0",
    expected="refuted",
)
def _tied_embedding(order):
    # Vocabulary = classes = 3, width 1: the input token k = 0 embeds as h = E^T e_0 and the
    # tied head reads z = E h. KD at T = 1 against a uniform teacher (v = 0), at E = (1, -1, 0).
    embedding = generic_matrix("E", 3, 1)
    point = {embedding[0, 0]: 1, embedding[1, 0]: -1, embedding[2, 0]: 0}
    hidden = Symbol("h", real=True)

    def loss(features):
        logits = [embedding[i, 0] * features for i in range(3)]
        normaliser = sympy.log(sum(sympy.exp(z) for z in logits))
        return -sum(Rational(1, 3) * (z - normaliser) for z in logits) - sympy.log(3)

    tied = sum(sympy.diff(loss(embedding[0, 0]), embedding[i, 0]) for i in range(3))
    untied = sum(sympy.diff(loss(hidden), embedding[i, 0]) for i in range(3))
    return {
        label("1^T dL/dE, tied, E = (1, -1, 0), token 0, v = 0", r"1^T \nabla_E L"): (
            sympy.simplify(tied.subs(point))
        ),
        label("1^T dL/dE, head only (untied), h = 1", r"1^T \nabla_{\text{head}} L"): (
            sympy.simplify(untied.subs(point).subs(hidden, 1))
        ),
    }


@statement(
    "atlas-structure/weight-norm",
    "A weight-normalised head keeps its class means under SGD",
    r"W_i = g_i V_i/\|V_i\|,\ 1^T W = 0 \Rightarrow 1^T W' = 0",
    expected="refuted",
)
def _weight_norm(order):
    # W_i = s_i V_i/|V_i| with W = [[3, 4], [-4, -3], [1, -1]] (1^T W = 0); one SGD step of size
    # eta on (s, V) for the zero-sum head gradient G. At torch's initialization (V = W,
    # s_i = |W_i|) the step equals SGD's to first order in eta and breaks 1^T W at second
    # order; once |V_i| != s_i (V = diag(1, 2, 3) W) it breaks it at first order.
    eta = Symbol("eta", positive=True)
    start = Matrix([[3, 4], [-4, -3], [1, -1]])
    scales = symbols("s0:3", positive=True)
    directions = generic_matrix("V", 3, 2)
    gradient = Matrix([[1, 0], [0, 1], [-1, -1]])

    def head(s, v):
        return Matrix.vstack(*[s[i] * v.row(i) / _frobenius(v.row(i)) for i in range(3)])

    weight = head(scales, directions)
    loss = sum(gradient[i, j] * weight[i, j] for i in range(3) for j in range(2))  # dL/dW = G
    new_scales = [scales[i] - eta * sympy.diff(loss, scales[i]) for i in range(3)]
    new_directions = directions - eta * directions.applyfunc(lambda x: sympy.diff(loss, x))
    moved = head(new_scales, new_directions)

    def at(stretch):
        point = {scales[i]: _frobenius(start.row(i)) for i in range(3)}
        point.update(
            {directions[i, j]: stretch[i] * start[i, j] for i in range(3) for j in range(2)}
        )
        return sum(moved.subs(point).row(i)[0] for i in range(3))

    initial, stretched = at((1, 1, 1)), at((1, 2, 3))
    return {
        label("1^T W before the step", r"1^T W"): sum(abs(x) for x in class_sums(start)),
        label("d^2(1^T W')/d eta^2 at 0, column 0, V = W", r"\partial^2_\eta 1^T W'"): (
            sympy.simplify(sympy.diff(initial, eta, 2).subs(eta, 0))
        ),
        label("d(1^T W')/d eta at 0, column 0, V = diag(1, 2, 3) W", r"\partial_\eta 1^T W'"): (
            sympy.simplify(sympy.diff(stretched, eta).subs(eta, 0))
        ),
    }


@statement(
    "atlas-structure/lora-adam",
    "A LoRA head B A keeps its class means under Adam",
    r"W = W_0 + BA,\ B_0 = 0,\ \text{Adam on } B \Rightarrow 1^T W' = 1^T W_0",
    expected="refuted",
)
def _lora_adam(order):
    # One Adam step on B from zero (sign of its gradient G A^T), A = (1), G = (2, -1, -1).
    gradient = Matrix([[2], [-1], [-1]])
    lora_a = Matrix([[1]])
    b_gradient = gradient * lora_a.T
    step = b_gradient.applyfunc(sympy.sign)
    return {
        label("1^T (Delta B) A after one Adam step, G = (2, -1, -1), A = 1", r"1^T \Delta B A"): (
            -class_sums(step * lora_a)[0]
        )
    }
