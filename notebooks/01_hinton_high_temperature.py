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
# # 01 — Hinton's high-temperature argument, step by step
#
# Hinton, Vinyals and Dean (2015, §2.1) argue that at high temperature, knowledge
# distillation (KD) becomes logits matching, *if the logits are zero-meaned*. This notebook
# replays the argument with `derive` and shows exactly where zero-mean normalization enters.
# Everything below is computed for a **symbolic** number of classes $N$; $\langle f\rangle$
# is the class mean $\frac1N\sum_j f(z_j, v_j)$.

# %%
from IPython.display import display

import derive
from derive import formula, objectives

# %% [markdown]
# ## The objective and its gradient
#
# The KD loss is $L_{KD} = T^2\,\mathrm{KL}(p\,\|\,q)$ with $p = \mathrm{softmax}(v/T)$ and
# $q = \mathrm{softmax}(z/T)$. In `derive` it is an exact sympy expression in $\epsilon = 1/T$,
# written with class means:

# %%
kd = derive.OBJECTIVES["kl"]
display(formula("L_{KD}", kd.loss()))

# %% [markdown]
# Its gradient with respect to a student logit is $T(q_i - p_i)$. `derive` differentiates
# the definition (a class mean's derivative is $\frac1N$ times its argument's) and proves the
# two forms equal:

# %%
display(formula(r"\frac{\partial L_{KD}}{\partial z_i}", objectives.kd_gradient_closed_form()))
print(derive.STATEMENTS["expansion"].prove(order=1))

# %% [markdown]
# ## Step 1: expand in $1/T$
#
# Hinton's step is $e^{z_i/T} \approx 1 + z_i/T$. Keeping one term of the series of the
# gradient gives the exact $T^0$ coefficient:

# %%
leading_gradient = derive.expand("gradient", order=1).terms[0]
display(formula("G_{0,i}", leading_gradient.expr, term=True))

# %% [markdown]
# ## Step 2: name the pieces
#
# The leading term is the logits-matching gradient $\frac1N(z_i - v_i)$ **plus** a term that
# depends only on the class means of the logits:

# %%
for name, piece in derive.leading_pieces("gradient").items():
    display(formula(rf"\text{{{name}}}", piece))

# %% [markdown]
# ## Step 3: where zero-mean normalization enters
#
# Hinton et al. assume $\langle z\rangle = \langle v\rangle = 0$. Substituting it kills the
# second piece, and the gradient becomes exactly that of
# $L_{LM} = \frac{1}{2N}\lVert z - v\rVert^2$:

# %%
zero_mean = {derive.ClassMean(derive.z_i): 0, derive.ClassMean(derive.v_i): 0}
display(
    formula(
        r"G_{0,i}\big|_{\langle z\rangle = \langle v\rangle = 0}",
        leading_gradient.expr.subs(zero_mean),
        term=True,
    )
)
print(derive.STATEMENTS["hinton-zero-mean"].prove())

# %% [markdown]
# Without that assumption the same substitution leaves a residual: the regularizer. The
# proof machinery reports it rather than hiding it.

# %%
only_student_centred = derive.Statement(
    "hinton-zero-mean (student only)",
    "",
    "",
    "refuted",
    lambda order: {
        "G_0 - dL_LM/dz_i": leading_gradient.expr.subs({derive.ClassMean(derive.z_i): 0})
        - objectives.logits_matching_gradient()
    },
)
print(only_student_centred.prove(order=1))

# %% [markdown]
# Notebook 02 shows that zero mean is more than needed: equal means suffice (Chen et al.),
# and gives the full expansion.
