"""jaxgrad's activations vs PyTorch: forward, first- and second-order gradients.

Random grids go through ``check_parity`` (float64, relative tolerance of
``_tolerance``): output, the VJP for a random cotangent, and the gradient of
L2 = ⟨x̄, u⟩ w.r.t. the input and the cotangent. Special values (exact zeros
and ties, ±0, NaN, ±inf, ±100, ±1000) are compared element by element, with
NaN and inf required at the same places as torch.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad

from ._parity import _jax_results, _torch_results, check_parity

INF, NAN = math.inf, math.nan

ELEMENTWISE = {
    "relu": (jaxgrad.relu, F.relu),
    "leaky_relu": (jaxgrad.leaky_relu, F.leaky_relu),
    "leaky_relu 0.2": (lambda x: jaxgrad.leaky_relu(x, 0.2),
                       lambda x: F.leaky_relu(x, 0.2)),
    "leaky_relu -0.5": (lambda x: jaxgrad.leaky_relu(x, negative_slope=-0.5),
                        lambda x: F.leaky_relu(x, negative_slope=-0.5)),
    "leaky_relu 0": (lambda x: jaxgrad.leaky_relu(x, 0), lambda x: F.leaky_relu(x, 0.0)),
    "sigmoid": (jaxgrad.sigmoid, torch.sigmoid),
    "tanh": (jaxgrad.tanh, torch.tanh),
    "gelu": (jaxgrad.gelu, F.gelu),
    "gelu tanh": (lambda x: jaxgrad.gelu(x, approximate="tanh"),
                  lambda x: F.gelu(x, approximate="tanh")),
    "relu6": (jaxgrad.relu6, F.relu6),
    "relu6 2x": (lambda x: jaxgrad.relu6(2 * x), lambda x: F.relu6(2 * x)),  # hits 6
    "hardtanh": (jaxgrad.hardtanh, F.hardtanh),
    "hardtanh -3 3": (lambda x: jaxgrad.hardtanh(x, -3.0, 3), lambda x: F.hardtanh(x, -3.0, 3)),
    "hardtanh 1 1": (lambda x: jaxgrad.hardtanh(x, 1.0, 1.0),
                     lambda x: F.hardtanh(x, 1.0, 1.0)),
    "silu": (jaxgrad.silu, F.silu),
    "mish": (jaxgrad.mish, F.mish),
    "softplus": (jaxgrad.softplus, F.softplus),
    "softplus 2 5": (lambda x: jaxgrad.softplus(x, 2.0, 5.0),
                     lambda x: F.softplus(x, 2.0, 5.0)),         # the switch at x = 2.5
    "softplus -1": (lambda x: jaxgrad.softplus(x, beta=-1), lambda x: F.softplus(x, beta=-1)),
    "softplus 4x 0.5 1": (lambda x: jaxgrad.softplus(4 * x, 0.5, 1.0),
                          lambda x: F.softplus(4 * x, 0.5, 1.0)),  # both sides of it
    "logsigmoid": (jaxgrad.logsigmoid, F.logsigmoid),
    "hardsigmoid": (jaxgrad.hardsigmoid, F.hardsigmoid),
    "hardsigmoid 3x": (lambda x: jaxgrad.hardsigmoid(3 * x),
                       lambda x: F.hardsigmoid(3 * x)),           # past ±3
    "hardswish": (jaxgrad.hardswish, F.hardswish),
    "hardswish 3x": (lambda x: jaxgrad.hardswish(3 * x), lambda x: F.hardswish(3 * x)),
    "elu": (jaxgrad.elu, F.elu),
    "elu -0.7": (lambda x: jaxgrad.elu(x, -0.7), lambda x: F.elu(x, -0.7)),
    "celu 2": (lambda x: jaxgrad.celu(x, 2.0), lambda x: F.celu(x, 2.0)),
    "celu -0.5": (lambda x: jaxgrad.celu(x, alpha=-0.5), lambda x: F.celu(x, alpha=-0.5)),
    "selu": (jaxgrad.selu, F.selu),
}

# torch does not differentiate these twice (tests/test_activation.py checks
# their second order, 0, against finite differences)
FIRST_ORDER_ONLY = ("hardsigmoid",)

# Values where the kinks, saturation and IEEE special cases live; ties (equal
# values) appear twice so both copies must get the same gradient.
SPECIAL = [-INF, -1000.0, -100.0, -3.0, -1.0, -0.0, 0.0, 0.0, 1e-300, 1.0, 1.0,
           3.0, 100.0, 1000.0, INF, NAN]


SHAPES = [(7,), (3, 5), (2, 3, 1, 4), ()]


@pytest.mark.parametrize("name, shape", [(name, SHAPES[i % len(SHAPES)])
                                         for i, name in enumerate(ELEMENTWISE)], ids=str)
def test_elementwise_random(name, shape):
    jax_fn, torch_fn = ELEMENTWISE[name]
    check_parity(f"{name} {shape}", jax_fn, torch_fn, {"x": shape},
                 double=not name.startswith(FIRST_ORDER_ONLY))


def stacked(fns):
    """One function returning every fn's output stacked: one compile for all."""
    def run(x):
        outs = [fn(x) for fn in fns]
        return (torch.stack if isinstance(x, torch.Tensor) else jax.numpy.stack)(outs)
    return run


def check_exact(config: str, jax_fn, torch_fn, args: dict, cot, *, double=True):
    """Forward, VJP and second order at given arguments; NaN/inf must coincide."""
    rng = np.random.default_rng(1)
    us = {k: rng.standard_normal(np.shape(a)) for k, a in args.items()}
    cot = np.asarray(cot, np.float64)
    names = list(args)
    run = jax.jit(lambda xs, c, u: _jax_results(jax_fn, names, xs, c, u, double))
    ours = run([np.asarray(args[k]) for k in names], cot, [us[k] for k in names])
    ref = _torch_results(config, torch_fn, args, cot, us, "float64", double)
    for key, expected in ref.items():
        finite = np.abs(expected[np.isfinite(expected)])
        scale = finite.max() if finite.size else 0.0
        # NaN and ±inf must sit where torch has them; finite values agree to
        # the float64 tolerance relative to the largest finite magnitude.
        np.testing.assert_allclose(np.asarray(ours[key]), expected, rtol=1e-10,
                                   atol=1e-10 * scale, equal_nan=True,
                                   err_msg=f"[{config}] {key}")


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_special_values(name):
    jax_fn, torch_fn = ELEMENTWISE[name]
    x = np.array(SPECIAL)
    # 16 values: every one in torch's vectorized CPU kernel, whose gradient at
    # NaN jaxgrad follows (its scalar tail differs for relu6, hardtanh,
    # hardswish and the elu family: tests/test_activation.py pins the values).
    assert x.size % 8 == 0
    cot = np.random.default_rng(0).standard_normal(x.shape)
    check_exact(name, jax_fn, torch_fn, {"x": x}, cot,
                double=not name.startswith(FIRST_ORDER_ONLY))



def test_relu_gradient_is_zero_at_zero_and_one_at_nan():
    # torch's rule, pinned by value (not only by parity).
    x = np.array([-0.0, 0.0, NAN, 2.0])
    grad = jax.grad(lambda x: jaxgrad.relu(x).sum())(x)
    assert np.asarray(grad).tolist() == [0.0, 0.0, 1.0, 1.0]


# --------------------------------------------------------------------------
# softmax / log_softmax


SOFTMAX = {"softmax": (jaxgrad.softmax, F.softmax),
           "log_softmax": (jaxgrad.log_softmax, F.log_softmax)}


def _along_dims(fn, dims):
    return stacked([lambda x, d=d: fn(x, d) for d in dims])


@pytest.mark.parametrize("name", list(SOFTMAX))
@pytest.mark.parametrize("shape, dims", [
    ((3, 5, 2), (0, 1, 2, -1, -2, -3)),      # every dim, negative ones included
    ((7,), (0, -1)),
    ((), (0, -1)),                           # 0-d: one element, dim 0 or -1
    ((2, 1, 3, 2), (1, -3, 3)),              # a size-1 dim: softmax 1, gradient 0
], ids=str)
def test_softmax_dims(name, shape, dims):
    jax_fn, torch_fn = SOFTMAX[name]
    check_parity(f"{name} {shape} dims={dims}", _along_dims(jax_fn, dims),
                 _along_dims(torch_fn, dims), {"x": shape})


# Rows: huge magnitudes (stability), exact ties, a -inf entry (probability 0),
# and the rows torch turns into NaN (all -inf, +inf, NaN).
SOFTMAX_ROWS = [
    [1000.0, -1000.0, 999.0, 0.0],
    [-1000.0, -1000.0, -1000.0, -1000.0],
    [5.0, 5.0, -2.0, 5.0],
    [0.0, -INF, 1.0, -INF],
    [-INF, -INF, -INF, -INF],
    [INF, 0.0, 1.0, 2.0],
    [NAN, 0.0, 1.0, 2.0],
]


@pytest.mark.parametrize("name", list(SOFTMAX))
def test_softmax_special_values(name):
    jax_fn, torch_fn = SOFTMAX[name]
    x = np.array(SOFTMAX_ROWS)
    cot = np.random.default_rng(0).standard_normal(x.shape)
    check_exact(name, lambda x: jax_fn(x, -1), lambda x: torch_fn(x, -1), {"x": x}, cot)


# --------------------------------------------------------------------------
# Reduced precision: float32 to second order, bfloat16 forward and first order.


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_reduced_precision(dtype):
    names = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu tanh", "relu6 2x",
             "hardtanh", "silu", "mish", "softplus 2 5", "logsigmoid", "hardswish 3x",
             "elu -0.7", "celu 2", "selu"]
    jax_fns = [ELEMENTWISE[n][0] for n in names] + [
        lambda x: jaxgrad.softmax(x, 1), lambda x: jaxgrad.log_softmax(x, -1)]
    torch_fns = [ELEMENTWISE[n][1] for n in names] + [
        lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, -1)]
    check_parity(f"activations {dtype}", stacked(jax_fns), stacked(torch_fns),
                 {"x": (3, 6)}, dtype=dtype, double=dtype == "float32")
    once = [n for n in ELEMENTWISE if n.startswith(FIRST_ORDER_ONLY)]
    check_parity(f"first-order activations {dtype}", stacked([ELEMENTWISE[n][0] for n in once]),
                 stacked([ELEMENTWISE[n][1] for n in once]), {"x": (3, 6)}, dtype=dtype,
                 double=False)


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples.


@pytest.mark.parametrize("name, ours", [("relu6", jaxgrad.relu6),
                                        ("hardtanh", jaxgrad.hardtanh)])
def test_opinfo_samples(name, ours):
    from ._opinfo import check_cases, samples

    op, inputs = samples(f"nn.functional.{name}")
    cases = [(f"#{i} {tuple(s.input.shape)} {s.kwargs}",
              lambda x, a=tuple(s.args), k=dict(s.kwargs): ours(x, *a, **k),
              lambda x, a=tuple(s.args), k=dict(s.kwargs): op.op(x, *a, **k),
              s.input.detach().numpy()) for i, s in enumerate(inputs)]
    assert len(cases) >= 3
    check_cases(f"op_db {name}", cases)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype, cast", [("float32", "float64"), ("bfloat16", "float32"),
                                         ("float64", "float32")])
def test_dtype_casts_the_input_first(name, dtype, cast):
    # The shapes and dims of OpInfo's "with_dtype" samples, with the cast
    # changed to one that changes the dtype: the output has ``cast``, the
    # gradient the input's dtype, both as torch computes them.
    from torch.testing._internal.common_methods_invocations import op_db

    (op,) = [o for o in op_db if o.name == name and o.variant_test_name == "with_dtype"]
    torch_dtype, torch_cast = getattr(torch, dtype), getattr(torch, cast)
    rng = np.random.default_rng(0)
    checked = 0
    for sample in op.sample_inputs("cpu", torch.float32):
        (dim,) = sample.args
        x = torch.tensor(rng.standard_normal(tuple(sample.input.shape)) * 3,
                         dtype=torch_dtype, requires_grad=True)
        cot = torch.tensor(rng.standard_normal(tuple(sample.input.shape)), dtype=torch_cast)
        y = getattr(F, name)(x, dim, dtype=torch_cast)
        (gx,) = torch.autograd.grad(y, x, cot)
        ours = getattr(jaxgrad, name)
        jx = jax.numpy.asarray(x.detach().float().numpy(), dtype)
        jy, vjp = jax.vjp(lambda x: ours(x, dim, dtype=cast), jx)
        (jgx,) = vjp(jax.numpy.asarray(cot.double().numpy(), cast))
        assert jy.dtype == cast and jgx.dtype == dtype
        # the gradient is computed in ``cast`` and then rounded to ``dtype``
        for a, e, tol in ((jy, y, _CAST_RTOL[cast]),
                          (jgx, gx, max(_CAST_RTOL[cast], _CAST_RTOL[dtype]))):
            np.testing.assert_allclose(np.asarray(a, np.float64), e.detach().double().numpy(),
                                       rtol=tol, atol=tol)
        checked += 1
    assert checked >= 5


_CAST_RTOL = {"float64": 1e-12, "float32": 1e-5, "bfloat16": 2e-2}


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_dtype_takes_integer_inputs_and_names_torch_dtypes(name):
    # torch casts an integer input to ``dtype`` first; a torch dtype is not
    # a JAX one, and the error says which to pass
    x = np.arange(-3, 9).reshape(3, 4)
    expected = getattr(F, name)(torch.tensor(x), 1, dtype=torch.float64).numpy()
    got = getattr(jaxgrad, name)(jax.numpy.asarray(x), 1, dtype="float64")
    assert got.dtype == np.float64
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-14, atol=1e-15)
    with pytest.raises(TypeError, match=rf"^{name}: `dtype` must be a JAX/NumPy dtype, got "
                                        r"the torch dtype torch.float32; pass jnp.float32$"):
        getattr(jaxgrad, name)(jax.numpy.ones(3), 0, dtype=torch.float32)
    with pytest.raises(TypeError, match=rf"^{name}: `input` must have a numeric or bool dtype"):
        getattr(jaxgrad, name)(np.array(["a", "b"]), 0, dtype="float32")


# --------------------------------------------------------------------------
# prelu: a learnable slope per channel (or one), both arguments differentiated.


@pytest.mark.parametrize("x_shape, w_shape", [
    ((2, 3, 4, 5), (3,)), ((2, 3, 4), (1,)), ((2, 3), ()), ((4, 3, 2, 2, 2), (3,)),
    ((7,), (1,)), ((), ()), ((0, 3, 2), (3,)),
], ids=str)
def test_prelu_random(x_shape, w_shape):
    check_parity(f"prelu {x_shape} {w_shape}", jaxgrad.prelu, F.prelu,
                 {"x": x_shape, "w": w_shape})


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_prelu_reduced_precision(dtype):
    check_parity(f"prelu {dtype}", jaxgrad.prelu, F.prelu, {"x": (2, 3, 5), "w": (3,)},
                 dtype=dtype, double=dtype == "float32")


def test_prelu_special_values():
    # ±inf, NaN, ±0 and ties, as torch (the slope piece at 0 and NaN in the
    # first order, the x piece at 0 in the second; -0.0 stays -0.0)
    x = np.array(SPECIAL).reshape(2, 8)
    w = np.array([0.5, -2.0])
    cot = np.random.default_rng(0).standard_normal(x.shape)
    check_exact("prelu special", lambda x, w: jaxgrad.prelu(x.T, w).T,
                lambda x, w: F.prelu(x.T, w).T, {"x": x, "w": w}, cot, double=False)
    y = np.asarray(jaxgrad.prelu(x.T, w))
    np.testing.assert_array_equal(np.signbit(y), np.signbit(F.prelu(
        torch.from_numpy(x.T.copy()), torch.from_numpy(w)).numpy()) & ~np.isnan(y))
    check_exact("prelu special, second order", lambda x, w: jaxgrad.prelu(x.T, w).T,
                lambda x, w: F.prelu(x.T, w).T, {"x": x, "w": w}, cot)


def test_prelu_second_order_at_zero_and_non_finite_slopes_like_torch():
    """At x = 0 torch's first order takes the w·x piece but its double backward
    tests x >= 0 (the x piece); jaxgrad's second-order rule does the same.
    Found in review: an infinite or NaN slope, or an infinite cotangent, must
    not leak into the other piece (torch selects, it does not multiply by a
    masked 0); a C = 0 input with a (0,) weight is taken."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    x[0, 0], x[1, 2] = 0.0, -0.0
    for w in (rng.standard_normal(4), np.array([INF, -INF, NAN, 0.5])):
        g = rng.standard_normal((3, 4))
        g[2, 1] = INF
        check_exact("prelu zeros and slopes", jaxgrad.prelu, F.prelu, {"x": x, "w": w}, g)
    empty = np.ones((2, 0, 3))
    assert jaxgrad.prelu(empty, np.ones(0)).shape == F.prelu(
        torch.from_numpy(empty), torch.ones(0, dtype=torch.float64)).shape == (2, 0, 3)


def test_review_cases():
    """Found in review: mish's f″ in float32 where tanh(softplus x) rounds to 1
    (1 - t² computed as sech² without cancellation; torch loses digits there,
    so the reference is float64), softplus's f″ with a NaN threshold (torch
    masks everything), and a half-precision f′ beyond float16's range that
    g·f′ brings back into it (one rounding, as torch's float32 opmath)."""
    x = np.array([0.0, 4.97, 6.0, 8.0, -3.0], np.float32)

    def second(fn, x):
        first = jax.grad(lambda x: fn(x).sum())
        return np.asarray(jax.grad(lambda x: first(x).sum())(x))

    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    (g,) = torch.autograd.grad(F.mish(xt).sum(), xt, create_graph=True)
    (exact,) = torch.autograd.grad(g.sum(), xt)
    ours = second(jaxgrad.mish, jax.numpy.asarray(x))
    assert np.max(np.abs(ours - exact.numpy())) <= 1e-6 * np.max(np.abs(exact.numpy()))

    xt = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(F.softplus(xt, 1.0, NAN).sum(), xt, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), xt)
    np.testing.assert_array_equal(second(lambda x: jaxgrad.softplus(x, 1.0, NAN),
                                         np.array([0.0, 1.0])), h.numpy())

    x16, g16 = np.array([-0.1], np.float16), np.array([0.5], np.float16)
    xt = torch.tensor(x16, requires_grad=True)
    (theirs,) = torch.autograd.grad(F.elu(xt, 1e5), xt, torch.tensor(g16))
    (ours,) = jax.vjp(lambda x: jaxgrad.elu(x, 1e5), jax.numpy.asarray(x16))[1](
        jax.numpy.asarray(g16))
    np.testing.assert_array_equal(np.asarray(ours), theirs.numpy())
