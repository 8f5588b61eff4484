"""``jaxgrad.grad`` and transposed convolutions against JAX autodiff of plain lax.

The explicit gradient functions must equal ``jax.vjp`` of the lax convolution,
and — being differentiable themselves — their own gradients must equal JAX's
autodiff of that autodiff (reverse over reverse).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad._checking import _reference
from jaxgrad._checking._tolerance import max_errors, tolerance

# (x shape, w shape, stride, pads, dilation, groups), pads as (lo, hi) pairs.
GRID = [
    ((2, 3, 9), (4, 3, 3), (2,), ((1, 1),), (1,), 1),
    ((1, 2, 11), (2, 2, 4), (3,), ((0, 0),), (1,), 1),             # leftover
    ((2, 4, 8, 7), (6, 2, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 2),
    ((1, 3, 9, 10), (3, 1, 2, 2), (4, 3), ((0, 0), (0, 0)), (1, 1), 3),  # depthwise
    ((1, 2, 9, 9), (2, 2, 3, 3), (1, 2), ((2, 2), (1, 1)), (2, 3), 1),
    ((1, 2, 5, 6, 4), (4, 1, 2, 3, 2), (2, 1, 3), ((1, 1), (0, 0), (1, 1)),
     (1, 1, 1), 2),
]


def _rand(rng, shape):
    return jnp.asarray(rng.standard_normal(shape))


def _assert_close(actual, expected, what=""):
    abs_err, rel_err = max_errors(actual, expected)
    assert rel_err <= tolerance(np.float64), (
        f"{what}: max abs {abs_err:.3e}, rel {rel_err:.3e}")


def _lax(stride, pads, dilation, groups):
    return lambda x, w: _reference.lax_conv(x, w, None, stride, pads, dilation, groups)


def _setup(rng, x_shape, w_shape, stride, pads, dilation, groups):
    x, w = _rand(rng, x_shape), _rand(rng, w_shape)
    y, vjp = jax.vjp(_lax(stride, pads, dilation, groups), x, w)
    g = _rand(rng, y.shape)
    return x, w, g, vjp(g)


@pytest.mark.parametrize("x_shape,w_shape,stride,pads,dilation,groups", GRID)
def test_input_and_weight_grad_equal_lax_vjp(rng, x_shape, w_shape, stride, pads,
                                              dilation, groups):
    x, w, g, (gx_ref, gw_ref) = _setup(rng, x_shape, w_shape, stride, pads,
                                       dilation, groups)
    opts = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
    _assert_close(jaxgrad.grad.conv_input(x.shape, w, g, **opts), gx_ref, "input")
    _assert_close(jaxgrad.grad.conv_weight(x, w.shape, g, **opts), gw_ref, "weight")


@pytest.mark.parametrize("x_shape,w_shape,stride,pads,dilation,groups",
                         [GRID[i] for i in (1, 2, 3, 5)])
def test_gradient_functions_are_differentiable(rng, x_shape, w_shape, stride, pads,
                                               dilation, groups):
    """d/d(w, ḡ) of ⟨conv_input(ḡ, w), u⟩ and d/d(x, ḡ) of ⟨conv_weight(x, ḡ), v⟩."""
    x, w, g, _ = _setup(rng, x_shape, w_shape, stride, pads, dilation, groups)
    u, v = _rand(rng, x_shape), _rand(rng, w_shape)
    opts = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
    lax_conv = _lax(stride, pads, dilation, groups)

    def ours_input(w, g):
        return jnp.sum(jaxgrad.grad.conv_input(x.shape, w, g, **opts) * u)

    def ref_input(w, g):
        return jnp.sum(jax.vjp(lambda x: lax_conv(x, w), x)[1](g)[0] * u)

    def ours_weight(x, g):
        return jnp.sum(jaxgrad.grad.conv_weight(x, w.shape, g, **opts) * v)

    def ref_weight(x, g):
        return jnp.sum(jax.vjp(lambda w: lax_conv(x, w), w)[1](g)[0] * v)

    for ours, ref, args in ((ours_input, ref_input, (w, g)),
                            (ours_weight, ref_weight, (x, g))):
        for a, e in zip(jax.grad(ours, (0, 1))(*args), jax.grad(ref, (0, 1))(*args)):
            _assert_close(a, e, ours.__name__)


def test_gradient_functions_third_order(rng):
    """Closed under differentiation: check_grads to order 3 on conv2d_input."""
    w, g = _rand(rng, (4, 2, 3, 3)), _rand(rng, (1, 4, 3, 2))
    f = lambda w, g: jaxgrad.grad.conv2d_input((1, 4, 7, 6), w, g, stride=2,  # noqa: E731
                                               groups=2)
    check_grads(f, (w, g), order=3, modes=["rev"])


def test_fixed_rank_functions_equal_generic_ones(rng):
    x, w, g, _ = _setup(rng, (1, 2, 7, 7), (3, 2, 3, 3), (2, 2), ((1, 1),) * 2,
                        (1, 1), 1)
    np.testing.assert_array_equal(
        jaxgrad.grad.conv2d_input(x.shape, w, g, stride=2, padding=1),
        jaxgrad.grad.conv_input(x.shape, w, g, stride=2, padding=1))
    np.testing.assert_array_equal(
        jaxgrad.grad.conv2d_weight(x, w.shape, g, stride=2, padding=1),
        jaxgrad.grad.conv_weight(x, w.shape, g, stride=2, padding=1))


# Transposed convolutions: (x shape, w shape, stride, padding, output_padding,
# groups, dilation), torch's argument order.
TRANSPOSE_GRID = [
    ((2, 3, 5), (3, 2, 3), (2,), (1,), (1,), 1, (1,)),
    ((1, 2, 4), (2, 2, 3), (1,), (0,), (2,), 1, (3,)),      # output_padding >= stride
    ((2, 4, 4, 4), (4, 3, 4, 4), (2, 2), (1, 1), (0, 0), 1, (1, 1)),
    ((2, 4, 4, 5), (4, 1, 3, 3), (2, 1), (1, 0), (1, 0), 2, (2, 1)),
    ((1, 3, 3, 4), (3, 2, 2, 2), (3, 2), (0, 0), (2, 1), 3, (1, 1)),
    ((1, 2, 3, 3, 3), (2, 2, 3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 0, 1), 1, (1, 1, 1)),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,extra,groups,dilation",
                         TRANSPOSE_GRID)
def test_conv_transpose_matches_lax(rng, x_shape, w_shape, stride, padding, extra,
                                    groups, dilation):
    args = (_rand(rng, x_shape), _rand(rng, w_shape), _rand(rng, w_shape[1] * groups))
    ours = lambda x, w, b: jaxgrad.conv_transpose(  # noqa: E731
        x, w, b, stride, padding, extra, groups, dilation)
    ref = lambda x, w, b: _reference.lax_conv_transpose(  # noqa: E731
        x, w, b, stride, padding, extra, groups, dilation)
    y, vjp = jax.vjp(ours, *args)
    y_ref, vjp_ref = jax.vjp(ref, *args)
    _assert_close(y, y_ref, "output")
    cot = _rand(rng, y.shape)
    for name, a, e in zip("xwb", vjp(cot), vjp_ref(cot)):
        _assert_close(a, e, f"grad {name}")
    opts = dict(stride=stride, padding=padding, output_padding=extra, groups=groups,
                dilation=dilation)
    gx, gw, _ = vjp_ref(cot)
    _assert_close(jaxgrad.grad.conv_transpose_input(x_shape, args[1], cot, **opts),
                  gx, "conv_transpose_input")
    _assert_close(jaxgrad.grad.conv_transpose_weight(args[0], w_shape, cot, **opts),
                  gw, "conv_transpose_weight")


@pytest.mark.parametrize("index", [0, 3])
def test_conv_transpose_check_grads_order_2(rng, index):
    x_shape, w_shape, stride, padding, extra, groups, dilation = TRANSPOSE_GRID[index]
    args = (_rand(rng, x_shape), _rand(rng, w_shape), _rand(rng, w_shape[1] * groups))
    f = lambda x, w, b: jaxgrad.conv_transpose(  # noqa: E731
        x, w, b, stride, padding, extra, groups, dilation)
    check_grads(f, args, order=2, modes=["rev"])


def _crand(rng, shape):
    return jnp.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


@pytest.mark.parametrize("algorithm", ["transpose", "taps"])
@pytest.mark.parametrize("x_shape,w_shape,stride,pads,dilation,groups",
                         [GRID[i] for i in (0, 2, 3, 5)])
def test_complex_gradient_functions_equal_lax_vjp(rng, algorithm, x_shape, w_shape,
                                                  stride, pads, dilation, groups):
    """complex128: the gradient functions are JAX's VJP (Aᵀḡ, no conjugate) of
    lax's convolution, and so are their own gradients (Re of a bilinear form,
    reverse over reverse). torch's nn.grad functions take no complex tensors."""
    x, w = _crand(rng, x_shape), _crand(rng, w_shape)
    lax_conv = _lax(stride, pads, dilation, groups)
    y, vjp = jax.vjp(lax_conv, x, w)
    g, u, v = _crand(rng, y.shape), _crand(rng, x_shape), _crand(rng, w_shape)
    gx_ref, gw_ref = vjp(g)
    opts = dict(stride=stride, padding=pads, dilation=dilation, groups=groups,
                algorithm=algorithm)
    _assert_close(jaxgrad.grad.conv_input(x.shape, w, g, **opts), gx_ref, "input")
    _assert_close(jaxgrad.grad.conv_weight(x, w.shape, g, **opts), gw_ref, "weight")

    def ours(x, w, g):
        return jnp.real(jnp.sum(jaxgrad.grad.conv_input(x.shape, w, g, **opts) * u)
                        + jnp.sum(jaxgrad.grad.conv_weight(x, w.shape, g, **opts) * v))

    def ref(x, w, g):
        gx, gw = jax.vjp(lax_conv, x, w)[1](g)
        return jnp.real(jnp.sum(gx * u) + jnp.sum(gw * v))

    for name, a, e in zip(("x", "w", "g"), jax.grad(ours, (0, 1, 2))(x, w, g),
                          jax.grad(ref, (0, 1, 2))(x, w, g)):
        _assert_close(a, e, f"second order w.r.t. {name}")


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,extra,groups,dilation",
                         TRANSPOSE_GRID[:2])
def test_complex_conv_transpose_gradient_functions_equal_lax_vjp(
        rng, x_shape, w_shape, stride, padding, extra, groups, dilation):
    x, w = _crand(rng, x_shape), _crand(rng, w_shape)
    ref = lambda x, w: _reference.lax_conv_transpose(  # noqa: E731
        x, w, None, stride, padding, extra, groups, dilation)
    y, vjp = jax.vjp(ref, x, w)
    cot = _crand(rng, y.shape)
    gx, gw = vjp(cot)
    opts = dict(stride=stride, padding=padding, output_padding=extra, groups=groups,
                dilation=dilation)
    _assert_close(jaxgrad.grad.conv_transpose_input(x_shape, w, cot, **opts), gx,
                  "conv_transpose_input")
    _assert_close(jaxgrad.grad.conv_transpose_weight(x, w_shape, cot, **opts), gw,
                  "conv_transpose_weight")


def test_channel_mismatch_names_input_size():
    with pytest.raises(ValueError, match=r"conv2d_input: `weight` expects 4 channels per "
                       r"group x 1 groups = 4 input channels, but `input_size` has 2$"):
        jaxgrad.grad.conv2d_input((2, 4, 6), jnp.ones((3, 4, 3, 3)), jnp.ones((3, 2, 4)))
    with pytest.raises(ValueError, match=r"conv2d_input: `groups` \(=2\) must divide the "
                       r"input channels \(=3, given by `input_size`\)"):
        jaxgrad.grad.conv2d_input((3, 4, 6), jnp.ones((4, 2, 3, 3)), jnp.ones((4, 2, 4)),
                                  groups=2)
