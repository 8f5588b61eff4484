"""jaxgrad.linear against JAX autodiff of ``x @ w.T + b`` (float64).

Also: finite differences to second order, jit / vmap, dtype preservation,
error wording, and a check that grad-of-grad runs only the hand-written
matmul rules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad import _linear
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order
from .test_activation import random


def plain_linear(x, w, b):
    return x @ w.T + b


def derivatives(fn, args, cot, us):
    """Output, VJP and the gradient of Σ⟨VJP_k, u_k⟩ w.r.t. every argument and cot."""
    y, vjp = jax.vjp(fn, *args)

    def inner(*args_and_cot):
        *args, cot = args_and_cot
        return sum(jnp.sum(g * u) for g, u in zip(jax.vjp(fn, *args)[1](cot), us))

    grads = jax.grad(inner, argnums=tuple(range(len(args) + 1)))(*args, cot)
    return (y, *vjp(cot), *grads)


@pytest.mark.parametrize("x_shape", [(5,), (4, 5), (2, 1, 3, 5)], ids=str)
def test_against_autodiff_of_plain_forward(x_shape):
    args = (random(x_shape, 0), random((3, 5), 1), random((3,), 2))
    cot = random(x_shape[:-1] + (3,), 3)
    us = [random(a.shape, 4 + i) for i, a in enumerate(args)]
    got = jax.jit(lambda *a: derivatives(jaxgrad.linear, *a))(args, cot, us)
    want = jax.jit(lambda *a: derivatives(plain_linear, *a))(args, cot, us)
    labels = ["output", "vjp_x", "vjp_w", "vjp_b", "grad2_x", "grad2_w", "grad2_b",
              "grad2_cot"]
    for label, a, b in zip(labels, got, want):
        assert max_errors(a, b)[1] <= tolerance("float64"), label


def test_check_grads_order_2():
    args = (random((2, 3, 4), 5), random((2, 4), 6), random((2,), 7))
    check_grads(jax.jit(jaxgrad.linear), args, order=2, modes=["rev"])
    check_grads(jax.jit(jaxgrad.linear), args[:2], order=2, modes=["rev"])


def test_without_bias_is_the_matmul():
    x, w = random((3, 4), 8), random((2, 4), 9)
    np.testing.assert_allclose(jaxgrad.linear(x, w), np.asarray(x) @ np.asarray(w).T,
                               rtol=1e-12)


def test_vmap_and_jit():
    x, w, b = random((6, 2, 4), 10), random((3, 4), 11), random((3,), 12)

    def loss(x, w, b):
        return jnp.sum(jnp.tanh(jaxgrad.linear(x, w, b)))

    per_example = jax.jit(jax.vmap(jax.grad(loss, argnums=1), in_axes=(0, None, None)))
    np.testing.assert_allclose(per_example(x, w, b).sum(0),
                               jax.jit(jax.grad(loss, argnums=1))(x, w, b), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(jaxgrad.linear, in_axes=(0, None, None))(x, w, b),
                               jaxgrad.linear(x, w, b), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128, jnp.bfloat16])
@pytest.mark.parametrize("x_shape", [(4, 5), (2, 3, 5), (2, 0, 5)], ids=str)
def test_bias_gradient_is_a_matvec_on_cpu(x_shape, dtype):
    """On CPU b̄ = Σ_n g[n, :] runs as a dot with a vector of ones, not as a
    reduction (``_linear._sum_as_matvec``); it is still the plain sum."""
    x, w, b = (random(s, 23 + i).astype(dtype) for i, s in
               enumerate([x_shape, (3, 5), (3,)]))
    cot = random(x_shape[:-1] + (3,), 26)
    if dtype == jnp.complex128:
        cot = cot + 1j * random(cot.shape, 27)
    cot = cot.astype(dtype)
    vjp_b = jax.jit(lambda b, cot: jax.vjp(lambda b: jaxgrad.linear(x, w, b), b)[1](cot)[0])
    jaxpr = str(jax.make_jaxpr(vjp_b)(b, cot))
    assert "dot_general" in jaxpr and "reduce_sum" not in jaxpr, jaxpr
    got = np.asarray(vjp_b(b, cot).astype(jnp.complex128))
    want = np.asarray(cot.astype(jnp.complex128)).reshape(-1, 3).sum(0)
    rtol = 1e-2 if dtype == jnp.bfloat16 else 1e-13   # bfloat16: one rounding of the sum
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved_to_second_order(dtype):
    args = (random((2, 3), 13, dtype), random((4, 3), 14, dtype), random((4,), 15, dtype))
    us = [random(a.shape, 16 + i, dtype) for i, a in enumerate(args)]
    outs = jax.jit(lambda *a: derivatives(jaxgrad.linear, *a))(
        args, random((2, 4), 19, dtype), us)
    assert [o.dtype for o in outs] == [dtype] * 8


def test_second_order_runs_only_hand_written_rules(monkeypatch):
    forbid_autodiff(monkeypatch, _linear, (
        "_linear_impl", "_input_grad_impl", "_weight_grad_impl", "_sum_leading_impl",
        "_broadcast_leading_impl", "_add_bias_impl"))
    run_second_order(jaxgrad.linear, random((2, 3), 20), random((4, 3), 21),
                     random((4,), 22))


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.linear(jnp.ones(3, jnp.bool_), jnp.ones((2, 3))), TypeError,
     r"linear: `input` must have a floating, complex or integer dtype \(float16, bfloat16, "
     r"float32, float64, complex64, complex128, int8, int16, int32, int64, uint8, uint16, "
     r"uint32, uint64\), got bool"),
    (lambda: jaxgrad.linear(jnp.ones(3, jnp.int32), jnp.ones((2, 3))), TypeError,
     r"linear: arguments must share one dtype, but `input` is int32, `weight` is float(32|64)"),
    (lambda: jaxgrad.linear(jnp.ones(3, jnp.float32), jnp.ones((2, 3))), TypeError,
     (r"linear: arguments must share one dtype, but `input` is float32, `weight` is "
      r"float64")),
    (lambda: jaxgrad.linear(jnp.ones(()), jnp.ones((2, 1))), ValueError,
     (r"linear: `input` must have layout \(\*, in_features\) with at least 1 dim, "
      r"got shape \(\)")),
    (lambda: jaxgrad.linear(jnp.ones(3), jnp.ones(3)), ValueError,
     r"linear: `weight` must be 2-D \(out_features, in_features\), got shape \(3,\)"),
    (lambda: jaxgrad.linear(jnp.ones((2, 5)), jnp.ones((4, 3))), ValueError,
     (r"linear: `input` has 5 features \(its last dim, shape \(2, 5\)\) but `weight` "
      r"expects in_features=3 \(shape \(4, 3\)\)")),
    (lambda: jaxgrad.linear(jnp.ones(3), jnp.ones((4, 3)), jnp.ones(())), ValueError,
     r"linear: `bias` must have shape \(4,\) to match out_features, got \(\)"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
