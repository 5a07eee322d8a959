# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 — The low-temperature end: KD is the perceptron, reverse KL goes silent
#
# Everything in notebooks 01–06 lives at $T \to \infty$, where KD becomes logits matching. At the
# other end, $T\log\sum_j e^{x_j/T} \to \max_j x_j$: the limits are max-plus (tropical)
# expressions, and the corrections are powers of $e^{-\mathrm{gap}/T}$, not of $1/T$.

# %%
import matplotlib.pyplot as plt
import numpy
import torch
from IPython.display import display

import derive
from derive import formula
from verify.losses import TWINS
from verify.regime import plot_regime, regime_report

temperatures = numpy.logspace(-2, 1, 40)
logits = numpy.array([1.0, 0.6, -0.5])
smooth_max = [t * numpy.log(numpy.exp(logits / t).sum()) for t in temperatures]
plt.semilogx(temperatures, smooth_max, label="T log sum_j exp(x_j / T)")
plt.axhline(logits.max(), color="k", linestyle=":", label="max_j x_j")
plt.xlabel("T")
plt.legend()
plt.show()

# %% [markdown]
# ## Every objective's limit, at both ends
#
# `derive.limit` states the $T \to 0$ limit (the quantity divided by $T^k$) beside the $T^0$ term
# of the expansion; the `low-temperature-*` statements prove each against the transseries that
# `derive.transseries` derives from the objective's definition.

# %%
for name in ["kl", "reverse-kl", "js", "dist", "hot-teacher", "f-divergence"]:
    for quantity in ["loss", "gradient"]:
        print(derive.limit(name, temperature="0", quantity=quantity).to_text())
# The proof's residuals at one ordering: all exactly 0.
residuals = derive.lowtemp.closed_form_residuals("kl", "gradient", [0, -1, -2], [-1, 0, -3])
print(len(residuals), "residuals:", set(residuals.values()))

# %% [markdown]
# ## The transseries at a concrete ordering
#
# At $z = (0, -1, -2)$, $v = (-1, 0, -3)$ (student argmax 1, teacher argmax 2, both margins 1),
# $T^2\mathrm{KL}$ is $T\cdot 1$ (the perceptron loss $\max_j z_j - z_b$) plus corrections
# $P_g(T)\,e^{-g/T}$ with polynomial coefficients:

# %%
series = derive.transseries("kl", "loss", [0, -1, -2], [-1, 0, -3])
print("P_0(T) =", series.polynomial_part)
for gap, coefficient in series.corrections(3):
    print(f"e^(-{gap}/T) x ({coefficient})")

# %% [markdown]
# ## KD's gradient becomes the perceptron update
#
# $\nabla_z(T^2\mathrm{KL})/T = q - p \to e_a - e_b$. The distance falls like
# $e^{-\gamma/T}$, $\gamma$ the smaller margin: a straight line against $1/T$ on a log scale.
# Reverse KL's gradient, in contrast, goes to zero, at the student's own margin, whether the
# argmaxes agree or not.

# %%
student = torch.tensor([[0.0, -1.0, -2.0]], dtype=torch.float64)
teacher = torch.tensor([[-1.0, 0.0, -3.0]], dtype=torch.float64)
update = torch.tensor([[1.0, -1.0, 0.0]], dtype=torch.float64)
inverse = numpy.linspace(2, 30, 15)


def gradient(name, temperature):
    leaf = student.clone().requires_grad_(True)
    loss = TWINS[name](leaf, teacher, torch.tensor(float(temperature)), None)
    return torch.autograd.grad(loss.sum(), leaf)[0]


forward = [float((gradient("kl", 1 / x) * x - update).norm()) for x in inverse]
reverse = [float(gradient("reverse-kl", 1 / x).norm()) for x in inverse]
plt.semilogy(inverse, forward, "o-", label="|grad KL / T - (e_a - e_b)|")
plt.semilogy(inverse, reverse, "s-", label="|grad reverse KL|")
plt.semilogy(inverse, numpy.exp(-inverse), "k:", label="exp(-1/T)")
plt.xlabel("1/T")
plt.legend()
plt.show()
print(derive.limit("reverse-kl", temperature="0", quantity="gradient").to_text())

# %% [markdown]
# ## The temperature gradient across T
#
# $\partial L/\partial T = -\sum_k k L_k T^{-k-1}$ at high $T$: the logits-matching term $L_0$ does
# not move a learnable temperature, the first correction $L_1$ does:

# %%
display(formula("L_1", derive.expand("loss", order=2).terms[1].expr, term=True))

# %% [markdown]
# At low $T$, $\partial L/\partial T \to \max_j z_j - z_b$, the perceptron loss (autograd, with
# $T$ a leaf tensor):

# %%
from verify.symbolic import SymbolicFunction  # noqa: E402

heats = numpy.logspace(-2, 3, 30)
values = []
for temperature in heats:
    heat = torch.tensor(float(temperature), dtype=torch.float64, requires_grad=True)
    loss = TWINS["kl"](student, teacher, heat, None).sum()
    values.append(float(torch.autograd.grad(loss, heat)[0]))
first = float(SymbolicFunction(derive.expand("loss", order=2).terms[1].expr)(student, teacher))
plt.semilogx(heats, values, "o-", label="dL/dT (autograd)")
plt.axhline(1.0, color="C1", linestyle=":", label="T -> 0: max_j z_j - z_b = 1")
plt.semilogx(heats[heats > 3], -first / heats[heats > 3] ** 2, "k--", label="T -> inf: -L_1 / T^2")
plt.xlabel("T")
plt.legend()
plt.show()

# %% [markdown]
# ## Both regimes in the regime report
#
# For a batch where students and teachers disagree on some argmaxes, `verify regime` measures
# the cosine of KD's gradient with the perceptron update and with logits matching, and the
# crossover temperature where they meet.

# %%
generator = torch.Generator().manual_seed(4)
batch_teacher = torch.randn(8, 5, generator=generator, dtype=torch.float64)
batch_student = torch.randn(8, 5, generator=generator, dtype=torch.float64)
report = regime_report(
    batch_teacher, batch_student, temperatures=[0.03, 0.1, 0.3, 1, 3, 10, 30, 100]
)
print("crossover temperature:", report.crossover_temperature)
plot_regime(report)
plt.show()
