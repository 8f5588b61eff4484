"""jaxgrad's activations against JAX autodiff of plain jnp forwards (float64).

The references below are written here from the textbook formulas and
differentiated by JAX itself; nothing in them touches jaxgrad's rules. Also:
finite-difference checks to second order, jit / vmap, dtype preservation,
error wording, and a check that grad-of-grad never falls back to JAX
autodiff of a primal implementation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad import _activation
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

# name -> (jaxgrad function, plain reference); softmax along dim 1.
CASES = {
    "relu": (jaxgrad.relu, lambda x: jnp.where(x > 0, x, 0.0)),
    "relu6": (lambda x: jaxgrad.relu6(3 * x), lambda x: jnp.minimum(jnp.maximum(3 * x, 0), 6)),
    "hardtanh": (lambda x: jaxgrad.hardtanh(x, -0.5, 0.75),
                 lambda x: jnp.minimum(jnp.maximum(x, -0.5), 0.75)),
    "leaky_relu": (lambda x: jaxgrad.leaky_relu(x, 0.3),
                   lambda x: jnp.where(x > 0, x, 0.3 * x)),
    "sigmoid": (jaxgrad.sigmoid, lambda x: 1 / (1 + jnp.exp(-x))),
    "tanh": (jaxgrad.tanh, lambda x: (jnp.exp(2 * x) - 1) / (jnp.exp(2 * x) + 1)),
    "gelu": (jaxgrad.gelu,
             lambda x: 0.5 * x * (1 + jax.scipy.special.erf(x / math.sqrt(2)))),
    "gelu tanh": (lambda x: jaxgrad.gelu(x, "tanh"),
                  lambda x: 0.5 * x * (1 + jnp.tanh(SQRT_2_OVER_PI
                                                    * (x + 0.044715 * x ** 3)))),
    "silu": (jaxgrad.silu, lambda x: x / (1 + jnp.exp(-x))),
    "mish": (jaxgrad.mish, lambda x: x * jnp.tanh(jnp.log(1 + jnp.exp(x)))),
    # βx = x crosses the threshold 0.4 (the linear piece, 2x, past it)
    "softplus": (lambda x: jaxgrad.softplus(2 * x, 0.5, 0.4),
                 lambda x: jnp.where(x > 0.4, 2 * x, 2 * jnp.log(1 + jnp.exp(x)))),
    "logsigmoid": (jaxgrad.logsigmoid, lambda x: -jnp.log(1 + jnp.exp(-x))),
    "hardswish": (lambda x: jaxgrad.hardswish(3 * x),
                  lambda x: 3 * x * jnp.minimum(jnp.maximum(3 * x + 3, 0), 6) / 6),
    "elu": (lambda x: jaxgrad.elu(x, 0.7), lambda x: jnp.where(x > 0, x, 0.7 * (jnp.exp(x) - 1))),
    "celu": (lambda x: jaxgrad.celu(x, -1.5),
             lambda x: jnp.where(x > 0, x, -1.5 * (jnp.exp(x / -1.5) - 1))),
    "selu": (jaxgrad.selu, lambda x: 1.0507009873554805 * jnp.where(
        x > 0, x, 1.6732632423543772 * (jnp.exp(x) - 1))),
    "softmax": (lambda x: jaxgrad.softmax(x, 1),
                lambda x: jnp.exp(x) / jnp.sum(jnp.exp(x), axis=1, keepdims=True)),
    "log_softmax": (lambda x: jaxgrad.log_softmax(x, -2),
                    lambda x: x - jnp.log(jnp.sum(jnp.exp(x), axis=1, keepdims=True))),
}


def derivatives(fn, x, cot, u):
    """Output, VJP and the gradient of ⟨VJP, u⟩ w.r.t. x and the cotangent."""
    y, vjp = jax.vjp(fn, x)

    def inner(x, cot):
        return jnp.sum(jax.vjp(fn, x)[1](cot)[0] * u)

    return (y, vjp(cot)[0], *jax.grad(inner, argnums=(0, 1))(x, cot))


def random(shape, seed, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


@pytest.mark.parametrize("name", list(CASES))
def test_against_autodiff_of_plain_forward(name):
    ours, reference = CASES[name]
    x, cot, u = random((3, 5, 2), 0), random((3, 5, 2), 1), random((3, 5, 2), 2)
    got = jax.jit(lambda *a: derivatives(ours, *a))(x, cot, u)
    want = jax.jit(lambda *a: derivatives(reference, *a))(x, cot, u)
    for label, a, b in zip(("output", "vjp", "grad2_x", "grad2_cot"), got, want):
        assert max_errors(a, b)[1] <= tolerance("float64"), (name, label)


@pytest.mark.parametrize("name", [n for n in CASES if "softmax" not in n])
def test_grad_at_a_python_float(name):
    """``jax.grad(f)(0.7)``: JAX hands the custom_vjp a Python float subclass
    (no ``.astype``); first and second derivatives equal the reference's."""
    ours, reference = CASES[name]
    for order in (1, 2):
        d_ours, d_ref = ours, reference
        for _ in range(order):
            d_ours, d_ref = jax.grad(d_ours), jax.grad(d_ref)
        assert max_errors(d_ours(0.7), d_ref(0.7))[1] <= tolerance("float64"), (name, order)


def stacked(names):
    """All the named activations at once (one check, one compile)."""
    return lambda x: jnp.stack([CASES[name][0](x) for name in names])


def test_check_grads_order_2():
    # Away from the kinks of relu / leaky_relu, where finite differences straddle.
    x = random((2, 3, 2), 3)
    x = x + jnp.sign(x) * 0.1
    check_grads(jax.jit(stacked(list(CASES))), (x,), order=2, modes=["rev"])


def test_relu_is_exactly_zero_gradient_at_zero():
    x = jnp.zeros(3)
    assert jax.grad(lambda x: jaxgrad.relu(x).sum())(x).tolist() == [0.0, 0.0, 0.0]
    # ... where jnp.maximum splits the difference; the reason relu has its own rule.
    assert jax.grad(lambda x: jnp.maximum(x, 0.0).sum())(x).tolist() == [0.5] * 3


def test_hardtanh_gradient_at_the_bounds_and_nan():
    # torch's rule, by value: 0 at and beyond both bounds and at NaN, 1 inside
    # (torch's vectorized CPU kernel; its scalar tail gives 1 at NaN);
    # the bounds, -0.0 and NaN pass through the forward unchanged.
    x = jnp.array([-2.0, -1.0, -0.0, 0.5, 1.0, 3.0, jnp.nan])
    y = jaxgrad.hardtanh(x)
    assert np.asarray(y)[:6].tolist() == [-1.0, -1.0, 0.0, 0.5, 1.0, 1.0]
    assert math.copysign(1, float(y[2])) == -1 and bool(jnp.isnan(y[6]))
    grad = jax.grad(lambda x: jaxgrad.hardtanh(x).sum())(x)
    assert grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    x6 = jnp.array([-0.0, 0.0, 3.0, 6.0, 7.0, jnp.nan])
    assert jax.grad(lambda x: jaxgrad.relu6(x).sum())(x6).tolist() == [
        0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    # min_val == max_val: a constant, gradient 0.
    assert jax.grad(lambda x: jaxgrad.hardtanh(x, 2, 2).sum())(x).tolist() == [0.0] * 7


def test_hardsigmoid_gradient_and_second_order():
    # torch's rule: 1/6 (as a float32 constant, also in float64) strictly
    # inside (-3, 3), 0 at and past ±3 and at NaN; the second derivative is
    # 0 (torch refuses to compute it), here checked by finite differences.
    x = jnp.array([-4.0, -3.0, -1.0, 0.0, 2.5, 3.0, 5.0, math.nan])
    grad = jax.grad(lambda x: jaxgrad.hardsigmoid(x).sum())(x)
    sixth = float(np.float32(1 / 6))
    assert grad.tolist() == [0.0, 0.0, sixth, sixth, sixth, 0.0, 0.0, 0.0]
    values = jaxgrad.hardsigmoid(x)
    np.testing.assert_array_equal(values[:-1], [0.0, 0.0, 1 / 3, 0.5, 11 / 12, 1.0, 1.0])
    assert np.isnan(values[-1])
    inside = jnp.array([-2.5, -0.3, 0.4, 2.9])
    check_grads(jaxgrad.hardsigmoid, (inside,), order=2, modes=["rev"])
    first = jax.grad(lambda x: jaxgrad.hardsigmoid(x).sum())
    assert jax.grad(lambda x: first(x).sum())(inside).tolist() == [0.0] * 4


def test_kinks_of_the_newer_activations():
    # torch's choices, pinned by value: hardswish′ is 0 at -3 and 1 at 3, its
    # second derivative 1/3 strictly inside; elu′(0) = α (the x <= 0 piece)
    # but elu″(0) = 0; softplus switches to x past βx > threshold, with
    # f″ = 0 from the threshold on.
    def d(fn, order, x):
        for _ in range(order):
            fn = jax.grad(fn)
        return float(fn(x))
    assert [d(jaxgrad.hardswish, 1, v) for v in (-3.0, 3.0, 0.0)] == [0.0, 1.0, 0.5]
    assert [d(jaxgrad.hardswish, 2, v) for v in (-3.0, 0.0, 3.0)] == [0.0, 1 / 3, 0.0]
    assert d(lambda x: jaxgrad.elu(x, 0.7), 1, 0.0) == 0.7
    assert d(lambda x: jaxgrad.elu(x, 0.7), 2, 0.0) == 0.0
    assert d(lambda x: jaxgrad.elu(x, 0.7), 2, -1e-300) == 0.7
    assert d(jaxgrad.softplus, 1, 20.5) == 1.0 and d(jaxgrad.softplus, 2, 20.0) == 0.0
    assert float(jaxgrad.softplus(jnp.float64(20.5))) == 20.5


def test_prelu_against_autodiff_of_plain_forward():
    # one slope per channel (axis 1) and one for all; both arguments, second order
    x = random((3, 4, 2), 10)
    for w, wb in ((random((4,), 11), lambda w: w[:, None]), (random((1,), 12), lambda w: w)):
        def ref(x, w, wb=wb):
            return jnp.where(x > 0, x, wb(w) * x)
        cot, u, v = random(x.shape, 13), random(x.shape, 14), random(w.shape, 15)

        def second(fn):
            def inner(x, w, cot):
                gx, gw = jax.vjp(fn, x, w)[1](cot)
                return jnp.sum(gx * u) + jnp.sum(gw * v)
            return (fn(x, w), *jax.vjp(fn, x, w)[1](cot),
                    *jax.grad(inner, argnums=(0, 1, 2))(x, w, cot))
        for a, b in zip(second(jaxgrad.prelu), second(ref)):
            assert max_errors(a, b)[1] <= tolerance("float64")
    check_grads(jaxgrad.prelu, (x + jnp.sign(x) * 0.1, random((4,), 16)), order=2,
                modes=["rev"])


def test_leaky_relu_default_slope_at_zero():
    x = jnp.array([-2.0, 0.0, 3.0])
    assert jaxgrad.leaky_relu(x).tolist() == [-0.02, 0.0, 3.0]
    assert jax.grad(lambda x: jaxgrad.leaky_relu(x).sum())(x).tolist() == [0.01, 0.01, 1.0]


def test_float32_extremes_do_not_overflow():
    x = jnp.array([-1e4, -100.0, 100.0, 1e4], jnp.float32)
    sig = jax.jit(jaxgrad.sigmoid)(x)
    assert sig.tolist() == [0.0, pytest.approx(3.72e-44, rel=1e-2), 1.0, 1.0]
    grad = jax.jit(jax.grad(lambda x: jaxgrad.sigmoid(x).sum()))(x)
    assert bool(jnp.all(jnp.isfinite(grad)))
    rows = jnp.array([[1e4, -1e4, 1e4 - 1.0], [-1e4, -1e4, -1e4]], jnp.float32)
    np.testing.assert_allclose(jaxgrad.softmax(rows, 1),
                               [[1 / (1 + math.e ** -1), 0.0, 1 / (1 + math.e)],
                                [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    assert bool(jnp.all(jnp.isfinite(jaxgrad.log_softmax(rows, 1))))


def test_softmax_of_a_scalar():
    x = jnp.array(3.0)
    assert float(jaxgrad.softmax(x, 0)) == 1.0
    assert float(jaxgrad.log_softmax(x, -1)) == 0.0
    assert float(jax.grad(lambda x: jaxgrad.log_softmax(x, 0))(x)) == 0.0


# --------------------------------------------------------------------------
# Transformations and dtypes.


def test_vmap_matches_batched_call():
    fn = stacked(list(CASES))   # (len(CASES), 1, 3, 5) for one example of shape (1, 3, 5)

    @jax.jit
    def both(x, cot):
        per_example = jax.vmap(lambda x, c: jax.vjp(fn, x[None])[1](c[:, None])[0][0])
        return (jax.vmap(lambda x: fn(x[None])[:, 0])(x), per_example(x, cot),
                fn(x), jax.vjp(fn, x)[1](jnp.moveaxis(cot, 0, 1))[0])

    x, cot = random((4, 3, 5), 4), random((4, len(CASES), 3, 5), 5)
    y_vmap, grad_vmap, y, grad = both(x, cot)
    np.testing.assert_allclose(jnp.moveaxis(y_vmap, 0, 1), y, rtol=1e-12)
    np.testing.assert_allclose(grad_vmap, grad, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved_to_second_order(dtype):
    x, u = random((2, 3), 6, dtype), random((2, 3), 8, dtype)
    cot = random((len(CASES), 2, 3), 7, dtype)
    outs = jax.jit(lambda *a: derivatives(stacked(list(CASES)), *a))(x, cot, u)
    assert [out.dtype for out in outs] == [dtype] * 4


# --------------------------------------------------------------------------
# Only hand-written rules run to second order.


ACTIVATION_IMPLS = ("_call", "_softmax_impl", "_log_softmax_impl",
                    "_softmax_grad_impl", "_log_softmax_grad_impl")


def test_poison_fires_on_autodiff_of_an_implementation(monkeypatch):
    # The guard below can fail: differentiating an implementation directly trips it.
    forbid_autodiff(monkeypatch, _activation, ACTIVATION_IMPLS)
    with pytest.raises(AssertionError, match="JAX autodiff reached"):
        jax.eval_shape(jax.grad(lambda x: _activation._softmax_impl(x, 0).sum()),
                       jnp.ones(3))


def test_prelu_second_order_runs_only_hand_written_rules(monkeypatch):
    forbid_autodiff(monkeypatch, _activation, ("_prelu_impl", "_prelu_grad_impl"))
    run_second_order(jaxgrad.prelu, random((2, 3), 9), random((3,), 10))


@pytest.mark.parametrize("name", list(CASES))
def test_second_order_runs_only_hand_written_rules(monkeypatch, name):
    forbid_autodiff(monkeypatch, _activation, ACTIVATION_IMPLS)
    run_second_order(CASES[name][0], random((2, 3), 9))


# --------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("call, error, message", [
    # integers are taken (as torch's relu does), bool is not
    (lambda: jaxgrad.relu(jnp.ones(3, bool)), TypeError,
     r"relu: `input` must have a floating or integer dtype .* got bool"),
    # complex only where torch's op takes it (convolutions, linear, pad, ...)
    (lambda: jaxgrad.relu(jnp.ones(3, jnp.complex64)), TypeError,
     r"relu: `input` must have a floating or integer dtype \(float16, bfloat16, float32, "
     r"float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64\), got complex64"),
    (lambda: jaxgrad.sigmoid("x"), TypeError, r"sigmoid: `input` must be an array, got str"),
    (lambda: jaxgrad.leaky_relu(jnp.ones(2), "0.1"), TypeError,
     r"leaky_relu: `negative_slope` must be a real number, got str '0.1'"),
    (lambda: jaxgrad.leaky_relu(jnp.ones(2), True), TypeError,
     r"leaky_relu: `negative_slope` must be a real number, got bool True"),
    (lambda: jaxgrad.hardtanh(jnp.ones(2), 2.0, 1.0), ValueError,
     r"hardtanh: `min_val` must be <= `max_val`, got min_val=2.0, max_val=1.0"),
    (lambda: jaxgrad.hardtanh(jnp.ones(2), max_val=math.nan), ValueError,
     r"hardtanh: `max_val` must not be NaN, got nan"),
    (lambda: jaxgrad.hardtanh(jnp.ones(2), None), TypeError,
     r"hardtanh: `min_val` must be a real number, got NoneType None"),
    (lambda: jaxgrad.relu6(jnp.ones(2, bool)), TypeError,
     r"relu6: `input` must have a floating or integer dtype"),
    (lambda: jaxgrad.gelu(jnp.arange(2)), TypeError,
     r"gelu: `input` must have a floating dtype \(float16, bfloat16, float32, float64\), "
     r"got int(32|64)"),
    (lambda: jaxgrad.gelu(jnp.ones(2), approximate="erf"), ValueError,
     r"gelu: `approximate` must be 'none' or 'tanh', got 'erf'"),
    (lambda: jaxgrad.elu(jnp.ones(3, jnp.complex64)), TypeError,
     r"elu: `input` must have a floating dtype \(float16, bfloat16, float32, float64\), "
     r"got complex64"),
    (lambda: jaxgrad.silu(jnp.arange(3)), TypeError,
     r"silu: `input` must have a floating or complex dtype .*got int(32|64)"),
    (lambda: jaxgrad.hardswish(jnp.ones(3), True), ValueError,
     r"hardswish: `inplace` must be False"),
    (lambda: jaxgrad.celu(jnp.ones(3), 0.0), ValueError,
     r"celu: `alpha` must not be 0 \(the input is divided by it\), got 0"),
    (lambda: jaxgrad.elu(jnp.ones(3), "1"), TypeError,
     r"elu: `alpha` must be a real number, got str '1'"),
    (lambda: jaxgrad.softplus(jnp.ones(3), threshold=None), TypeError,
     r"softplus: `threshold` must be a real number, got NoneType None"),
    (lambda: jaxgrad.prelu(jnp.ones((2, 3)), jnp.ones(2)), ValueError,
     r"prelu: `weight` must hold 1 value or one per channel of `input` \(C=3, shape "
     r"\(2, 3\)\), got 2 \(shape \(2,\)\)"),
    (lambda: jaxgrad.prelu(jnp.ones((2, 3, 4)), jnp.ones((3, 1))), ValueError,
     r"prelu: `weight` must be 0-D or 1-D \(one value, or one per channel\), got shape "
     r"\(3, 1\)"),
    (lambda: jaxgrad.prelu(jnp.ones(3, jnp.float32), jnp.ones(1, jnp.float64)), TypeError,
     r"prelu: `weight` must have the dtype of `input`, float32, got float64"),
    (lambda: jaxgrad.prelu(jnp.ones(3), None), TypeError,
     r"prelu: `weight` must be an array, got NoneType"),
    (lambda: jaxgrad.softmax(jnp.ones((2, 3)), 2), ValueError,
     r"softmax: `dim` must be in \[-2, 1\] for a 2-D `input`, got 2"),
    (lambda: jaxgrad.log_softmax(jnp.ones((2, 3)), -3), ValueError,
     r"log_softmax: `dim` must be in \[-2, 1\] for a 2-D `input`, got -3"),
    (lambda: jaxgrad.softmax(jnp.ones(()), 1), ValueError,
     r"softmax: `dim` must be in \[-1, 0\] for a 0-D `input`, got 1"),
    (lambda: jaxgrad.softmax(jnp.ones(3), 0.0), TypeError,
     r"softmax: `dim` must be an int, got float 0.0"),
    (lambda: jaxgrad.softmax(jnp.ones(3), 0, dtype=jnp.int32), TypeError,
     r"softmax: `dtype` must be a floating dtype \(float16, bfloat16, float32, float64\), "
     r"got int(32|64)"),
    (lambda: jaxgrad.log_softmax(jnp.ones(3), 0, dtype="complex64"), TypeError,
     r"log_softmax: `dtype` must be a floating dtype .*got complex64"),
    (lambda: jaxgrad.log_softmax(jnp.ones(3), None), TypeError,
     r"log_softmax: `dim` must be an int, got NoneType None"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
