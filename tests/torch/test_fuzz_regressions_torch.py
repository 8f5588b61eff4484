"""Minimal regression cases for what fuzzing and the special-value tests found.

Each case is the smallest configuration that showed a difference from torch,
with the expected values written out by hand and checked against torch too.
The NaN-leak cases come from XLA's CPU convolutions, which multiply the
structural zeros of grouped convolutions (the block-diagonal expansion of the
groups) and of strided / padded gradient convolutions, so 0·NaN = NaN lands
where no term of the formula puts it:

  y[n, o, p] = Σ_{c,k} x̂[n, γ(o)·C_in/G + c, p·s + k·d] · w[o, c, k]

connects output channel o only to the input channels of its group γ(o), and
x̄[i] only to the (p, k) with p·s + k·d = i + lo.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad

NAN, INF = float("nan"), float("inf")


def assert_same(actual, expected, torch_value):
    """``actual`` equals the hand-written ``expected`` (NaN at the same places), as torch."""
    np.testing.assert_array_equal(np.asarray(torch_value, np.float64), expected)
    np.testing.assert_array_equal(np.asarray(actual, np.float64), expected)


# --------------------------------------------------------------------------
# Convolutions: a NaN stays in the channels (groups) and rows its terms reach.


def test_depthwise_conv_float64_keeps_nan_in_its_channel():
    # groups = C_in = 2, 1x1 kernel of ones: y = x channel by channel. In
    # float64 XLA CPU expands the groups and leaked the NaN into channel 1;
    # _core now writes such convolutions per group.
    x = np.zeros((1, 2, 3))
    x[0, 0, 1] = NAN
    w = np.ones((2, 1, 1))
    expected = [[[0.0, NAN, 0.0], [0.0, 0.0, 0.0]]]
    assert_same(jaxgrad.conv1d(x, w, groups=2), expected,
                F.conv1d(torch.tensor(x), torch.tensor(w), groups=2))


def test_grouped_conv_transpose_input_grad_float64_keeps_nan_in_its_channel():
    # The input gradient of conv_transpose with C_out/groups = 1 is a depthwise
    # convolution of the cotangent: the same leak, reached through a backward.
    cot = np.zeros((1, 2, 3))
    cot[0, 0, 1] = NAN
    w = np.ones((2, 1, 1))
    x = np.ones((1, 2, 3))
    ours = jax.vjp(lambda x: jaxgrad.conv_transpose1d(x, w, groups=2), x)[1](cot)[0]
    tx = torch.tensor(x, requires_grad=True)
    (theirs,) = torch.autograd.grad(F.conv_transpose1d(tx, torch.tensor(w), groups=2),
                                    tx, torch.tensor(cot))
    assert_same(ours, [[[0.0, NAN, 0.0], [0.0, 0.0, 0.0]]], theirs)


def test_grouped_weight_grad_float32_keeps_nan_in_its_group():
    # groups 2, two output channels per group, 1x1 kernels: w̄[o] = Σ_p ḡ[o, p]
    # (x is ones). A NaN cotangent of output channel 0 reached w̄[2] in float32.
    x = jnp.ones((1, 2, 2, 2), jnp.float32)
    w = jnp.ones((4, 1, 1, 1), jnp.float32)
    cot = np.zeros((1, 4, 2, 2), np.float32)
    cot[0, 0, 0, 0] = NAN
    ours = jax.vjp(lambda w: jaxgrad.conv2d(x, w, groups=2), w)[1](jnp.asarray(cot))[0]
    tw = torch.ones(4, 1, 1, 1, requires_grad=True)
    (theirs,) = torch.autograd.grad(F.conv2d(torch.ones(1, 2, 2, 2), tw, groups=2), tw,
                                    torch.tensor(cot))
    assert_same(np.asarray(ours).ravel(), [NAN, 0.0, 0.0, 0.0], theirs.ravel())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_grad_of_a_nan_weight_tap_reaches_only_its_rows(dtype):
    # K = 3, stride 1, no padding, 5 inputs: x̄[i] = Σ_{p+k=i} w[k]·ḡ[p] with ḡ
    # ones. Tap 0 (NaN) reaches rows 0..2 only; rows 3, 4 get w[1]+w[2], w[2].
    # In float32 XLA multiplied the NaN by the zero padding of the gradient
    # convolution and every row became NaN.
    x = jnp.ones((1, 1, 5), dtype)
    w = jnp.asarray([[[NAN, 1.0, 1.0]]], dtype)
    # torch's placement is promised for algorithm="taps" (docs/guarantees.md)
    ours = jax.vjp(lambda x: jaxgrad.conv1d(x, w, algorithm="taps"), x)[1](
        jnp.ones((1, 1, 3), dtype))[0]
    tx = torch.ones(1, 1, 5, dtype=torch.float64, requires_grad=True)
    (theirs,) = torch.autograd.grad(
        F.conv1d(tx, torch.tensor([[[NAN, 1.0, 1.0]]], dtype=torch.float64)), tx,
        torch.ones(1, 1, 3, dtype=torch.float64))
    assert_same(np.asarray(ours).ravel(), [NAN, NAN, NAN, 2.0, 1.0], theirs.ravel())


# --------------------------------------------------------------------------
# Losses: second-order rules must not create NaN from terms torch never forms.


def test_probability_cross_entropy_second_order_with_minus_inf_logit():
    # No class weight, so torch has no weight path at all; jaxgrad's rule
    # multiplied the (zero) cotangent of its internal all-ones weight by
    # log p = -inf. With p = softmax(x), ∂L/∂x = p·Σq - q, so
    # d/dq_j ⟨∂L/∂x, u⟩ = ⟨u, p⟩ - u_j: finite everywhere.
    x = np.array([[0.0, 1.0, -INF]])
    q = np.array([[0.2, 0.3, 0.5]])
    u = np.array([[1.0, 2.0, 3.0]])

    def second(x, q):
        g = jax.grad(lambda x: jaxgrad.cross_entropy(x, q, reduction="sum"))(x)
        return jnp.sum(g * u)

    ours = jax.grad(second, argnums=1)(x, q)
    p = np.exp(x - np.log(np.exp(x).sum()))
    expected = (u * p).sum() - u
    tx, tq = (torch.tensor(a, requires_grad=True) for a in (x, q))
    (g,) = torch.autograd.grad(F.cross_entropy(tx, tq, reduction="sum"), tx,
                               create_graph=True)
    (theirs,) = torch.autograd.grad((g * torch.tensor(u)).sum(), tq)
    np.testing.assert_allclose(theirs.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-12)


@pytest.mark.parametrize("loss", ["mse_loss", "cross_entropy"])
def test_mean_over_empty_batch_second_order_is_zero(loss):
    # ⟨∂L/∂x, 1⟩ is a sum over no elements: 0 for every cotangent c, so its
    # derivative w.r.t. c is 0 (torch), not NaN (a "mean" of nothing).
    x, t = jnp.zeros((0, 3)), jnp.zeros((0, 3))

    def second(c):
        vjp = jax.vjp(lambda x: getattr(jaxgrad, loss)(x, t), x)[1]
        return jnp.sum(vjp(c)[0])

    tx = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(getattr(F, loss)(tx, torch.zeros(0, 3, dtype=torch.float64)),
                               tx, c, create_graph=True)
    (theirs,) = torch.autograd.grad(g.sum(), c, allow_unused=True,
                                    materialize_grads=True)
    assert_same(jax.grad(second)(jnp.float64(1.0)), 0.0, theirs)


# --------------------------------------------------------------------------
# Fixed: softmax along an empty dim raised from inside jnp.max.


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_along_an_empty_dim(op):
    x = np.zeros((0, 3))
    y, vjp = jax.vjp(lambda x: getattr(jaxgrad, op)(x, 0), x)
    assert y.shape == tuple(getattr(F, op)(torch.tensor(x), 0).shape) == (0, 3)
    assert vjp(jnp.zeros((0, 3)))[0].shape == (0, 3)
