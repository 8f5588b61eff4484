"""jaxgrad's convolutions against JAX autodiff of the plain lax op (float64).

The references in ``jaxgrad._checking._reference`` call ``lax.conv_general_dilated``
directly and are differentiated by JAX itself; nothing there touches jaxgrad's
hand-written rules.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad._checking import _reference
from jaxgrad._checking._tolerance import max_errors, tolerance

# (x shape, w shape, kwargs) — grid over rank, stride (incl. per-dim), padding
# (int, per-dim, per-side, same with even kernels, valid), dilation, groups,
# depthwise and channel multipliers, stride > kernel, leftover rows, batch 1.
CONV_GRID = [
    ((2, 3, 9), (4, 3, 3), dict(padding=1)),
    ((1, 2, 10), (3, 2, 4), dict(stride=3)),                      # leftover 0, r=0
    ((2, 2, 11), (2, 2, 4), dict(stride=3)),                      # leftover r=1
    ((1, 2, 8), (2, 2, 4), dict(padding="same", dilation=2)),     # even kernel
    ((1, 4, 12), (4, 1, 3), dict(groups=4, stride=2)),            # depthwise
    ((2, 4, 8, 8), (6, 4, 3, 3), dict(padding=1)),
    ((2, 3, 8, 7), (4, 3, 3, 3), dict(stride=2, padding=1)),      # leftover rows
    ((1, 2, 7, 9), (3, 2, 2, 3), dict(stride=(1, 3), padding=(1, 0))),
    ((2, 2, 6, 6), (2, 2, 3, 3), dict(padding=((0, 2), (1, 0)))),
    ((1, 2, 5, 6), (2, 2, 4, 2), dict(padding="same")),           # even kernels
    ((2, 3, 6, 5), (2, 3, 2, 2), dict(padding="valid")),
    ((2, 4, 6, 6), (6, 2, 3, 3), dict(padding=1, groups=2)),
    ((1, 3, 8, 8), (6, 1, 3, 3), dict(stride=2, groups=3)),       # multiplier 2
    ((2, 2, 9, 10), (3, 2, 2, 2), dict(stride=(4, 3))),           # stride > kernel
    ((1, 2, 9, 9), (2, 2, 3, 3), dict(dilation=(2, 3), padding=(2, 1))),
    ((1, 2, 5, 5, 5), (3, 2, 3, 3, 3), dict(padding=1)),
    ((2, 4, 5, 6, 4), (4, 2, 2, 3, 2), dict(stride=(2, 1, 3), groups=2)),
]

PADDING_MODE_GRID = [
    ((2, 2, 6, 6), (3, 2, 3, 3), dict(padding=1), "reflect"),
    ((1, 2, 7, 6), (2, 2, 3, 3), dict(stride=2, padding=2), "replicate"),
    ((1, 2, 5, 6), (2, 2, 4, 3), dict(padding="same"), "circular"),
    ((1, 2, 6), (2, 2, 3), dict(padding=((2, 1),)), "reflect"),
    ((1, 2, 4, 4, 4), (2, 2, 3, 3, 3), dict(padding=(1, 2, 0)), "circular"),
]


def _rand(rng, shape, dtype=np.float64):
    return jnp.asarray(rng.standard_normal(shape), dtype)


def _lax_pads(kwargs, x_shape, w_shape):
    """torch-style padding -> pairs, computed here independently of jaxgrad."""
    n = len(w_shape) - 2
    padding = kwargs.get("padding", 0)
    dilation = kwargs.get("dilation", 1)
    dilation = dilation if isinstance(dilation, tuple) else (dilation,) * n
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(w_shape[2:], dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, int):
        return ((padding, padding),) * n
    return tuple(p if isinstance(p, tuple) else (p, p) for p in padding)


def _reference_fn(x_shape, w_shape, kwargs, mode="zeros"):
    n = len(w_shape) - 2
    as_tuple = lambda v: v if isinstance(v, tuple) else (v,) * n  # noqa: E731
    return lambda x, w, b: _reference.lax_conv(
        x, w, b, as_tuple(kwargs.get("stride", 1)), _lax_pads(kwargs, x_shape, w_shape),
        as_tuple(kwargs.get("dilation", 1)), kwargs.get("groups", 1), mode)


def _assert_close(actual, expected, dtype=np.float64, what=""):
    abs_err, rel_err = max_errors(actual, expected)
    assert rel_err <= tolerance(dtype), (
        f"{what}: max abs {abs_err:.3e}, rel {rel_err:.3e} > {tolerance(dtype):.0e}")


def _compare_vjp(ours, ref, args, rng):
    y, vjp = jax.vjp(ours, *args)
    y_ref, vjp_ref = jax.vjp(ref, *args)
    _assert_close(y, y_ref, what="output")
    cot = _rand(rng, y.shape)
    for name, g, g_ref in zip(("x", "w", "b"), vjp(cot), vjp_ref(cot)):
        _assert_close(g, g_ref, what=f"grad {name}")


@pytest.mark.parametrize("x_shape,w_shape,kwargs", CONV_GRID)
def test_conv_matches_lax_autodiff(rng, x_shape, w_shape, kwargs):
    args = (_rand(rng, x_shape), _rand(rng, w_shape), _rand(rng, w_shape[0]))
    ours = lambda x, w, b: jaxgrad.conv(x, w, b, **kwargs)  # noqa: E731
    _compare_vjp(ours, _reference_fn(x_shape, w_shape, kwargs), args, rng)


@pytest.mark.parametrize("x_shape,w_shape,kwargs,mode", PADDING_MODE_GRID)
def test_padding_modes_match_lax_autodiff_of_pad(rng, x_shape, w_shape, kwargs, mode):
    args = (_rand(rng, x_shape), _rand(rng, w_shape), _rand(rng, w_shape[0]))
    ours = lambda x, w, b: jaxgrad.conv(x, w, b, padding_mode=mode, **kwargs)  # noqa: E731
    _compare_vjp(ours, _reference_fn(x_shape, w_shape, kwargs, mode), args, rng)


@pytest.mark.parametrize("x_shape,w_shape,kwargs",
                         [CONV_GRID[i] for i in (2, 4, 6, 9, 12, 13, 16)])
def test_second_order_matches_autodiff_of_autodiff(rng, x_shape, w_shape, kwargs):
    """grad of ⟨x̄, u⟩ + ⟨w̄, v⟩ w.r.t. (x, w, ḡ): hand rules vs lax autodiff twice."""
    x, w, b = _rand(rng, x_shape), _rand(rng, w_shape), _rand(rng, w_shape[0])
    y_shape = jax.eval_shape(lambda: jaxgrad.conv(x, w, b, **kwargs)).shape
    cot, u, v = _rand(rng, y_shape), _rand(rng, x_shape), _rand(rng, w_shape)

    def second(f):
        def inner(x, w, b, cot):
            gx, gw, gb = jax.vjp(f, x, w, b)[1](cot)
            return jnp.sum(gx * u) + jnp.sum(gw * v) + jnp.sum(gb * gb)
        return jax.grad(inner, argnums=(0, 1, 2, 3))(x, w, b, cot)

    ours = second(lambda x, w, b: jaxgrad.conv(x, w, b, **kwargs))
    ref = second(_reference_fn(x_shape, w_shape, kwargs))
    for name, a, e in zip(("x", "w", "b", "cotangent"), ours, ref):
        _assert_close(a, e, what=f"second-order grad {name}")


@pytest.mark.parametrize("x_shape,w_shape,kwargs", [
    ((1, 2, 7), (2, 2, 3), dict(stride=2, padding=1)),
    ((1, 2, 6, 5), (4, 1, 2, 3), dict(stride=(2, 3), groups=2, dilation=(1, 2))),
])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_check_grads_order_2(rng, x_shape, w_shape, kwargs, mode):
    args = (_rand(rng, x_shape), _rand(rng, w_shape), _rand(rng, w_shape[0]))
    f = lambda x, w, b: jaxgrad.conv(x, w, b, padding_mode=mode, **kwargs)  # noqa: E731
    check_grads(f, args, order=2, modes=["rev"])


def test_leftover_rows_get_exactly_zero_gradient(rng):
    # I=8, K=3, s=3, no pad: windows start at 0 and 3 and cover rows 0..5;
    # rows 6 and 7 are never read, so their gradient is exactly 0.
    x, w = _rand(rng, (2, 3, 8, 8)), _rand(rng, (4, 3, 3, 3))
    gx = jax.grad(lambda x: jnp.sum(jaxgrad.conv2d(x, w, stride=3) ** 2))(x)
    assert np.all(np.asarray(gx)[..., 6:, :] == 0)
    assert np.all(np.asarray(gx)[..., :, 6:] == 0)
    assert np.all(np.abs(np.asarray(gx)[..., :6, :6]) > 0)


def test_rows_between_windows_get_zero_gradient_when_stride_exceeds_kernel(rng):
    # K=2, s=5: windows read rows {0,1}, {5,6}; rows 2,3,4 and 7,8 are skipped.
    x, w = _rand(rng, (1, 1, 9)), _rand(rng, (1, 1, 2))
    gx = np.asarray(jax.grad(lambda x: jnp.sum(jaxgrad.conv1d(x, w, stride=5)))(x))
    np.testing.assert_array_equal(gx[0, 0, [2, 3, 4, 7, 8]], 0.0)
    np.testing.assert_allclose(gx[0, 0, [0, 1, 5, 6]], np.tile(np.asarray(w)[0, 0], 2))


def test_unbatched_input_equals_batch_of_one(rng):
    x, w, b = _rand(rng, (3, 7, 6)), _rand(rng, (4, 3, 3, 3)), _rand(rng, 4)
    y, vjp = jax.vjp(lambda x, w, b: jaxgrad.conv2d(x, w, b, padding=1), x, w, b)
    y1, vjp1 = jax.vjp(lambda x, w, b: jaxgrad.conv2d(x[None], w, b, padding=1)[0],
                       x, w, b)
    assert y.shape == (4, 7, 6)
    cot = _rand(rng, y.shape)
    for a, e in zip((y, *vjp(cot)), (y1, *vjp1(cot))):
        _assert_close(a, e)


def test_jit_does_not_retrace(rng):
    traces = []

    @jax.jit
    def loss_grad(x, w):
        traces.append(1)
        return jax.grad(lambda x, w: jnp.sum(jaxgrad.conv2d(x, w, stride=2) ** 2),
                        argnums=(0, 1))(x, w)

    x, w = _rand(rng, (2, 3, 8, 8)), _rand(rng, (4, 3, 3, 3))
    first = loss_grad(x, w)
    second = loss_grad(x + 1.0, w * 2.0)
    assert len(traces) == 1
    ref = jax.grad(lambda x, w: jnp.sum(_reference.lax_conv(
        x, w, None, (2, 2), ((0, 0), (0, 0)), (1, 1), 1) ** 2), argnums=(0, 1))
    for a, e in zip(second, ref(x + 1.0, w * 2.0)):
        _assert_close(a, e)
    assert first[0].shape == x.shape


def test_vmap_over_an_extra_axis(rng):
    xs, w = _rand(rng, (3, 2, 2, 6, 6)), _rand(rng, (4, 2, 3, 3))

    def loss(x, w):
        return jnp.sum(jnp.sin(jaxgrad.conv2d(x, w, padding=1)))

    def ref_loss(x, w):
        return jnp.sum(jnp.sin(_reference.lax_conv(x, w, None, (1, 1),
                                                   ((1, 1), (1, 1)), (1, 1), 1)))

    ours = jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, None))(xs, w)
    ref = jax.vmap(jax.grad(ref_loss, argnums=(0, 1)), in_axes=(0, None))(xs, w)
    for a, e in zip(ours, ref):
        _assert_close(a, e)


def test_checkpoint(rng):
    x, w1, w2 = _rand(rng, (2, 2, 8, 8)), _rand(rng, (3, 2, 3, 3)), _rand(rng, (2, 3, 3, 3))

    def net(conv):
        def f(x, w1, w2):
            return jnp.sum(conv(jnp.tanh(conv(x, w1)), w2) ** 2)
        return f

    ours = jax.grad(jax.checkpoint(net(lambda x, w: jaxgrad.conv2d(x, w, padding=1))),
                    argnums=(0, 1, 2))(x, w1, w2)
    ref = jax.grad(net(lambda x, w: _reference.lax_conv(
        x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)), argnums=(0, 1, 2))(x, w1, w2)
    for a, e in zip(ours, ref):
        _assert_close(a, e)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_low_precision_dtypes(rng, dtype):
    """Result dtype is the input's; values match a float64 reference of the same inputs."""
    x = _rand(rng, (2, 4, 8, 8), dtype)
    w = _rand(rng, (6, 2, 3, 3), dtype)
    b = _rand(rng, 6, dtype)
    kwargs = dict(stride=2, padding=1, groups=2)
    f = lambda x, w, b: jaxgrad.conv2d(x, w, b, **kwargs)  # noqa: E731
    y, vjp = jax.vjp(f, x, w, b)
    cot = _rand(rng, y.shape, dtype)
    grads = vjp(cot)
    as64 = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    ref = _reference_fn(x.shape, w.shape, kwargs)
    y_ref, vjp_ref = jax.vjp(ref, as64(x), as64(w), as64(b))
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    for name, a, e in zip(("y", "x", "w", "b"), (y, *grads), (y_ref, *vjp_ref(as64(cot)))):
        _assert_close(a, e, dtype, what=f"{jnp.dtype(dtype).name} {name}")


def test_hand_computed_input_gradient():
    # x: 1x1x3x3, w: 1x1x2x2 = [[1,2],[3,4]], stride 1, no pad: output 2x2.
    # With ḡ = ones, x̄[i,j] = Σ over windows covering (i,j) of w at that offset:
    # corners get one tap, edges two, the centre all four.
    w = jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    x_bar = jaxgrad.grad.conv2d_input((1, 1, 3, 3), w, jnp.ones((1, 1, 2, 2)))
    expected = [[1, 3, 2], [4, 10, 6], [3, 7, 4]]
    np.testing.assert_array_equal(np.asarray(x_bar)[0, 0], expected)


def _refuse(*args, **kwargs):
    raise AssertionError("lax's own autodiff rule for conv_general_dilated was used")


@pytest.mark.parametrize("order", [1, 2, 3])
def test_no_order_uses_lax_autodiff_of_the_convolution(rng, monkeypatch, order):
    """Every derivative, to third order, runs the hand-written rules only.

    The fwd rules must return the custom op itself (not its lax body): an outer
    differentiation then sees the custom op, never conv_general_dilated.
    """
    from jax._src.interpreters import ad
    from jax._src.lax.convolution import conv_general_dilated_p as conv_p

    for table in (ad.primitive_jvps, ad.primitive_transposes, ad.fancy_transposes):
        if conv_p in table:
            monkeypatch.setitem(table, conv_p, _refuse)
    x = jnp.asarray(rng.standard_normal((2, 2, 7, 6)))
    w = jnp.asarray(rng.standard_normal((4, 1, 3, 2)))
    b = jnp.asarray(rng.standard_normal((4,)))

    def f(x, w, b):  # conv, bias, padding mode, transposed conv: every kernel
        y = jaxgrad.conv2d(x, w, b, stride=2, padding=1, groups=2,
                           padding_mode="reflect")
        return jnp.sum(jnp.sin(jaxgrad.conv_transpose2d(y, w, None, stride=2,
                                                        groups=2)))

    for _ in range(order):
        f = (lambda g: lambda x, w, b: jnp.sum(
            jnp.cos(jnp.concatenate([a.ravel() for a in g(x, w, b)]))))(
                jax.grad(f, argnums=(0, 1, 2)))
    assert np.isfinite(float(f(x, w, b)))
