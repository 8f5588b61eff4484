"""jaxgrad's pooling ops without torch: hand-computed values, plain-lax references.

References here are independent of jaxgrad's rules: values worked out by
hand (torch's behaviour, verified once with the installed torch and recorded
in the comments), JAX autodiff of plain ``lax.reduce_window`` forwards,
``check_grads`` (finite differences, order 2), and per-example loops for vmap.
torch parity lives in ``tests/torch/test_pool_torch.py``.
"""

from __future__ import annotations

import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import jaxgrad
from jaxgrad._pool import _ops as _pool
from jaxgrad._checking._tolerance import max_errors, tolerance

NAN, INF = float("nan"), float("inf")
MAX = {1: jaxgrad.max_pool1d, 2: jaxgrad.max_pool2d, 3: jaxgrad.max_pool3d}
AVG = {1: jaxgrad.avg_pool1d, 2: jaxgrad.avg_pool2d, 3: jaxgrad.avg_pool3d}
ADAPTIVE_MAX = {1: jaxgrad.adaptive_max_pool1d, 2: jaxgrad.adaptive_max_pool2d,
                3: jaxgrad.adaptive_max_pool3d}
ADAPTIVE_AVG = {1: jaxgrad.adaptive_avg_pool1d, 2: jaxgrad.adaptive_avg_pool2d,
                3: jaxgrad.adaptive_avg_pool3d}


def _f64(values):
    return jnp.asarray(values, jnp.float64)


def _assert_close(actual, expected, dtype=np.float64, what=""):
    _, rel = max_errors(actual, expected)
    assert rel <= tolerance(dtype), f"{what}: rel error {rel:.3e}"


def _distinct(rng, shape):
    """Values at least 0.1 apart, so no window has a near-tie (finite differences)."""
    size = int(np.prod(shape))
    return _f64((rng.permutation(size) * 0.1 + rng.uniform(0, 0.01, size)).reshape(shape))


# --------------------------------------------------------------------------
# Hand-computed values: torch's pick in a window (verified with torch 2.13).


@pytest.mark.parametrize("row,kwargs,pick", [
    ([1, 3, 3, 2, 3], dict(kernel_size=5), [1]),             # first maximum
    ([1, NAN, 3, NAN, 2], dict(kernel_size=5), [3]),         # last NaN
    ([NAN, 1, NAN], dict(kernel_size=3), [2]),
    ([-INF, -INF, -INF], dict(kernel_size=3), [0]),          # -inf: first tap
    ([-INF, -INF, -INF], dict(kernel_size=3, stride=1, padding=1), [0, 0, 1]),
    ([2, 1, 4, 4, 0], dict(kernel_size=2, stride=1), [0, 2, 2, 3]),
    ([1, 2, 3], dict(kernel_size=2, stride=2, ceil_mode=True), [1, 2]),
])
def test_max_pool1d_picks_like_torch(row, kwargs, pick):
    """The index and the gradient go to the last NaN, else the first maximum."""
    x = _f64([row])
    pool = functools.partial(jaxgrad.max_pool1d, **kwargs)
    y, index, grad = jax.jit(lambda x: (*pool(x, return_indices=True),
                                        jax.grad(lambda x: jnp.sum(pool(x)))(x)))(x)
    assert index.tolist() == [pick]
    np.testing.assert_array_equal(y, x[0, np.asarray(pick)][None])
    np.testing.assert_array_equal(grad[0], np.bincount(pick, minlength=len(row)))


@pytest.mark.parametrize("rows,kwargs,pick", [
    ([[1, 5, 2], [5, 0, 5], [NAN, 1, NAN]], dict(kernel_size=3), 8),
    ([[1, 5, 2], [5, 0, 5], [4, 1, 5]], dict(kernel_size=3), 1),
    ([[1, 5, 2], [5, 0, 5], [4, 1, 5]], dict(kernel_size=2, dilation=2), 8),
    ([[7, 7], [7, 7]], dict(kernel_size=2), 0),
])
def test_max_pool2d_picks_like_torch(rows, kwargs, pick):
    """Row-major window order: the flat index h*W + w of torch's pick."""
    pool = functools.partial(jaxgrad.max_pool2d, return_indices=True, **kwargs)
    _, index = jax.jit(pool)(_f64([rows]))
    assert index.tolist() == [[[pick]]]


def test_max_pool3d_last_nan_in_row_major_order():
    """NaNs at flat 3, 4 and 6 of a 2x2x2 window: torch picks 6."""
    x = np.zeros((1, 2, 2, 2))
    x[0, 0, 1, 1] = x[0, 1, 0, 0] = x[0, 1, 1, 0] = NAN
    y, index = jax.jit(lambda x: jaxgrad.max_pool3d(x, 2, return_indices=True))(_f64(x))
    assert np.isnan(y).all() and index.tolist() == [[[[6]]]]


def test_max_pool_overlapping_windows_accumulate():
    """[0, 5, 1, 2] with K=3, s=1: both windows pick 5, its gradient is 1 + 2."""
    grad = jax.jit(jax.grad(lambda x: jnp.sum(jaxgrad.max_pool1d(x, 3, 1)
                                              * _f64([[1, 2]]))))
    np.testing.assert_array_equal(grad(_f64([[0, 5, 1, 2]])), [[0, 3, 0, 0]])


@pytest.mark.parametrize("kwargs,expected", [
    # windows [-1,2) [1,4) [3,6) [5,8) of 6 sixes; padded end 7.
    (dict(count_include_pad=True), [4, 6, 6, 3]),     # divisors 3 3 3 2
    (dict(count_include_pad=False), [6, 6, 6, 6]),    # divisors 2 3 3 1
])
def test_avg_pool1d_ceil_mode_divisors(kwargs, expected):
    pool = functools.partial(jaxgrad.avg_pool1d, kernel_size=3, stride=2, padding=1,
                             ceil_mode=True, **kwargs)
    y = jax.jit(pool)(_f64([[6] * 6]))
    np.testing.assert_allclose(y, [expected])


def test_avg_pool2d_divisor_override():
    """2x2 windows of ones, ceil_mode overhang, all divided by 5."""
    y = jaxgrad.avg_pool2d(jnp.ones((1, 3, 3)), 2, ceil_mode=True, divisor_override=5)
    np.testing.assert_allclose(y, [[[0.8, 0.4], [0.4, 0.2]]])


@pytest.mark.parametrize("size,out,expected", [
    (5, 3, [0.5, 2.0, 3.5]),        # bins [0,2) [1,4) [3,5)
    (7, 4, [0.5, 2.0, 4.0, 5.5]),   # bins [0,2) [1,4) [3,6) [5,7)
    (1, 4, [0.0] * 4),
    (10, 3, [1.5, 4.5, 7.5]),       # bins [0,4) [3,7) [6,10)
])
def test_adaptive_avg_pool1d_bins(size, out, expected):
    y = jax.jit(lambda x: jaxgrad.adaptive_avg_pool1d(x, out))(_f64(np.arange(size)[None]))
    np.testing.assert_allclose(y, [expected])


def test_adaptive_max_pool1d_overlapping_bins():
    """10 -> 3 bins [0,4) [3,7) [6,10): NaN at 1 and 3 (shared), ties at 5, 6."""
    x = _f64([[1, NAN, 3, NAN, 2, 3, 3, -INF, -INF, -INF]])
    _, index = jax.jit(lambda x: jaxgrad.adaptive_max_pool1d(x, 3, return_indices=True))(x)
    assert index.tolist() == [[3, 3, 6]]


# --------------------------------------------------------------------------
# Against JAX autodiff of plain lax forwards (no ties: random normal inputs).


def _lax_max(x, kernel, stride, padding):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1) + kernel, (1, 1) + stride,
                             ((0, 0), (0, 0)) + tuple((p, p) for p in padding))


def _lax_avg(x, kernel, stride, padding):
    summed = lax.reduce_window(x, 0.0, lax.add, (1, 1) + kernel, (1, 1) + stride,
                               ((0, 0), (0, 0)) + tuple((p, p) for p in padding))
    return summed / np.prod(kernel)


@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((2, 3, 9), (3,), (2,), (1,)),
    ((2, 2, 7, 8), (3, 2), (1, 2), (1, 0)),
    ((1, 2, 5, 6, 4), (2, 3, 2), (2, 1, 2), (1, 1, 0)),
])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_matches_lax_reduce_window_autodiff(rng, kind, shape, kernel, stride, padding):
    """Forward and VJP equal JAX's own autodiff of lax.reduce_window."""
    n = len(kernel)
    ours = functools.partial((MAX if kind == "max" else AVG)[n], kernel_size=kernel,
                             stride=stride, padding=padding)
    ref = functools.partial(_lax_max if kind == "max" else _lax_avg, kernel=kernel,
                            stride=stride, padding=padding)
    x = _f64(rng.standard_normal(shape))
    g = _f64(rng.standard_normal(jax.eval_shape(ref, x).shape))
    both = jax.jit(lambda x, g: [(y, vjp(g)[0]) for y, vjp in
                                 (jax.vjp(ours, x), jax.vjp(ref, x))])
    (y, grad), (y_ref, grad_ref) = both(x, g)
    _assert_close(y, y_ref, what="output")
    _assert_close(grad, grad_ref, what="vjp")


def test_dilated_max_pool_has_a_gradient(rng):
    """JAX's own max-pool VJP rejects window dilation; ours matches a dense reference.

    The reference picks the argmax of each (distinct-valued) window by hand.
    """
    x = _distinct(rng, (1, 2, 11))
    g = _f64(rng.standard_normal((1, 2, 4)))
    vjp = jax.jit(lambda x, g: jax.vjp(
        lambda x: jaxgrad.max_pool1d(x, 3, 2, 1, dilation=3), x)[1](g)[0])
    expected = np.zeros((1, 2, 11))
    for c in range(2):
        for o in range(4):
            rows = [r for r in (o * 2 - 1 + 3 * j for j in range(3)) if 0 <= r < 11]
            expected[0, c, rows[int(np.argmax(x[0, c, rows]))]] += g[0, c, o]
    np.testing.assert_allclose(vjp(x, g), expected)


# --------------------------------------------------------------------------
# check_grads: finite differences, reverse mode, order 2 (no near-ties).


CHECK_GRADS_CASES = [
    ("max1d", (2, 2, 9), lambda x: jaxgrad.max_pool1d(x, 3, 2, 1, dilation=2,
                                                        ceil_mode=True)),
    ("avg2d", (1, 2, 5, 6), lambda x: jaxgrad.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                           count_include_pad=False)),
    ("adaptive_max3d", (1, 1, 5, 3, 4),
     lambda x: jaxgrad.adaptive_max_pool3d(x, (3, None, 2))),
]


@pytest.mark.parametrize("name,shape,fn", CHECK_GRADS_CASES,
                         ids=[c[0] for c in CHECK_GRADS_CASES])
def test_check_grads_order_2(rng, name, shape, fn):
    check_grads(jax.jit(fn), (_distinct(rng, shape),), order=2, modes=["rev"])


# --------------------------------------------------------------------------
# Both max-pooling implementations (torch's loop and the vectorised
# reduction) agree exactly on windows full of ties, NaN and -inf.


def _special(rng, shape):
    x = rng.integers(-2, 3, shape).astype(np.float64)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, flat.size // 5, replace=False)] = NAN
    flat[rng.choice(flat.size, flat.size // 5, replace=False)] = -INF
    return _f64(x)


def _max_spec(shape, **kwargs):
    n = len(shape) - 2
    return _pool._max_pool_spec(f"max_pool{n}d", shape[2:],
                                **{"dilation": 1, "ceil_mode": False, **kwargs})


@pytest.mark.parametrize("shape,spec", [
    ((2, 3, 11), _max_spec((2, 3, 11), kernel_size=3, stride=1, padding=1)),
    ((2, 2, 9), _max_spec((2, 2, 9), kernel_size=2, stride=2, padding=1, dilation=3,
                          ceil_mode=True)),
    ((2, 2, 6, 7), _max_spec((2, 2, 6, 7), kernel_size=(3, 2), stride=(2, 1),
                             padding=(1, 1), ceil_mode=True)),
    ((1, 2, 5, 4, 6), _max_spec((1, 2, 5, 4, 6), kernel_size=(2, 3, 2), stride=1,
                                padding=(1, 1, 0), dilation=(1, 1, 2))),
    # adaptive bins 10 -> 3 and 7 -> 2 overlap by one row: few long windows
    ((2, 2, 10, 7), _pool._adaptive_spec("f", (10, 7), (3, 2), mean=False)),
    ((2, 2, 6, 5), _pool._adaptive_spec("f", (6, 5), 1, mean=False)),   # tiles
], ids=["1d overlap", "1d dilated ceil", "2d ceil", "3d dilated", "adaptive 2d",
        "global 2d"])
def test_scan_and_reduce_implementations_agree(rng, shape, spec):
    x = _special(rng, shape)
    y_scan, flat_scan = jax.jit(_pool._scan_impl, static_argnums=1)(x, spec)
    y_reduce, flat_reduce = jax.jit(_pool._reduce_impl, static_argnums=1)(x, spec)
    np.testing.assert_array_equal(y_scan, y_reduce)
    np.testing.assert_array_equal(flat_scan, flat_reduce)


# --------------------------------------------------------------------------
# jit, vmap, unbatched and empty inputs.


ALL_OPS = [
    ("max_pool1d", (2, 3, 9), lambda x: jaxgrad.max_pool1d(x, 3, 2, 1)),
    ("max_pool2d", (2, 2, 6, 5), lambda x: jaxgrad.max_pool2d(x, 2, 1, 1, dilation=2)),
    ("max_pool3d", (1, 2, 4, 4, 5), lambda x: jaxgrad.max_pool3d(x, 2, ceil_mode=True)),
    ("avg_pool1d", (2, 3, 9), lambda x: jaxgrad.avg_pool1d(x, 3, 2, 1)),
    ("avg_pool2d", (2, 2, 6, 5), lambda x: jaxgrad.avg_pool2d(x, 2, 1, 1,
                                                              count_include_pad=False)),
    ("avg_pool3d", (1, 2, 4, 4, 5), lambda x: jaxgrad.avg_pool3d(x, 2, ceil_mode=True)),
    ("adaptive_avg_pool1d", (2, 3, 7), lambda x: jaxgrad.adaptive_avg_pool1d(x, 4)),
    ("adaptive_avg_pool2d", (2, 2, 5, 6), lambda x: jaxgrad.adaptive_avg_pool2d(x, 3)),
    ("adaptive_avg_pool3d", (1, 2, 3, 4, 5),
     lambda x: jaxgrad.adaptive_avg_pool3d(x, (2, None, 3))),
    ("adaptive_max_pool1d", (2, 3, 7), lambda x: jaxgrad.adaptive_max_pool1d(x, 4)),
    ("adaptive_max_pool2d", (2, 2, 5, 6), lambda x: jaxgrad.adaptive_max_pool2d(x, 3)),
    ("adaptive_max_pool3d", (1, 2, 3, 4, 5),
     lambda x: jaxgrad.adaptive_max_pool3d(x, (2, None, 3))),
]


# One op of each family, ranks mixed: every op runs the same two cores
# (window_max, window_mean), so numerics under vmap and in half precision are
# checked on these; dtypes and shapes are checked for all twelve by tracing.
SAMPLE = (1, 5, 11)   # max_pool2d, avg_pool3d, adaptive_max_pool3d


def _values_and_grads(xs, ops=SAMPLE):
    """Each op's output and the gradient of Σ sin(output)."""
    return [(ALL_OPS[i][2](x), jax.grad(lambda x: jnp.sum(jnp.sin(ALL_OPS[i][2](x))))(x))
            for i, x in zip(ops, xs)]


_VALUES_AND_GRADS = jax.jit(_values_and_grads)


def _inputs(rng, lead=(), dtype=jnp.float64, ops=SAMPLE):
    return [jnp.asarray(rng.standard_normal(lead + ALL_OPS[i][1]), dtype) for i in ops]


def test_jit_matches_eager(rng):
    """Op by op equals jitted (every other test jits, to save compile time)."""
    (x,) = _inputs(rng, ops=(6,))
    fn = ALL_OPS[6][2]
    _assert_close(jax.jit(fn)(x), fn(x), what=ALL_OPS[6][0])


def test_vmap(rng):
    """vmap over a leading axis == a loop over the same jitted function."""
    xs = _inputs(rng, lead=(3,))
    mapped = jax.jit(jax.vmap(_values_and_grads))(xs)
    for i in range(3):
        one = _VALUES_AND_GRADS([x[i] for x in xs])
        for k, (y, g), (y_map, g_map) in zip(SAMPLE, one, mapped):
            _assert_close(y_map[i], y, what=f"{ALL_OPS[k][0]} vmap output")
            _assert_close(g_map[i], g, what=f"{ALL_OPS[k][0]} vmap grad")


def test_empty_batch():
    """N = 0 is allowed (as torch): empty output, empty gradient."""
    xs = [jnp.zeros((0,) + ALL_OPS[i][1][1:]) for i in SAMPLE]
    for k, x, (y, g) in zip(SAMPLE, xs, _VALUES_AND_GRADS(xs)):
        assert y.shape[0] == 0 and g.shape == x.shape, ALL_OPS[k][0]


def test_adaptive_output_size_zero():
    """torch allows output size 0: an empty output and a zero gradient."""
    x = jnp.ones((2, 2, 5, 5))
    for fn in (jaxgrad.adaptive_avg_pool2d, jaxgrad.adaptive_max_pool2d):
        pool = functools.partial(fn, output_size=(0, 3))
        y, grad = jax.jit(lambda x: (pool(x), jax.grad(lambda x: jnp.sum(pool(x)))(x)))(x)
        assert y.shape == (2, 2, 0, 3)
        np.testing.assert_array_equal(grad, np.zeros(x.shape))


def test_vmap_return_indices(rng):
    xs = _special(rng, (3, 2, 9))
    fn = functools.partial(jaxgrad.max_pool1d, kernel_size=3, stride=2, padding=1,
                           return_indices=True)
    ys, indices = jax.jit(jax.vmap(fn))(xs)
    for x, y, index in zip(xs, ys, indices):
        y_one, index_one = jax.jit(fn)(x)
        np.testing.assert_array_equal(y, y_one)
        np.testing.assert_array_equal(index, index_one)


# --------------------------------------------------------------------------
# Dtypes.


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name,shape,fn", ALL_OPS, ids=[op[0] for op in ALL_OPS])
def test_dtype_is_preserved(dtype, name, shape, fn):
    """float32 / half in -> the same dtype out, for the value and the gradient."""
    x = jax.ShapeDtypeStruct(shape, dtype)
    y, grad = jax.eval_shape(lambda x: (fn(x), jax.grad(lambda x: jnp.sum(fn(x)))(x)), x)
    assert y.dtype == dtype and grad.dtype == dtype


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_half_and_single_precision_values(rng, dtype):
    """Close to float64 on the same (rounded) input, within tolerance(dtype)."""
    xs = _inputs(rng, dtype=dtype)
    ours = _VALUES_AND_GRADS(xs)
    exact = _VALUES_AND_GRADS([x.astype(jnp.float64) for x in xs])
    for k, (y, g), (y_ref, g_ref) in zip(SAMPLE, ours, exact):
        assert y.dtype == dtype and g.dtype == dtype, ALL_OPS[k][0]
        _assert_close(y, y_ref, dtype, f"{ALL_OPS[k][0]} output")
        _assert_close(g, g_ref, dtype, f"{ALL_OPS[k][0]} grad")


def test_indices_follow_x64():
    """torch's int64 indices; int32 when x64 is off."""
    x = jax.ShapeDtypeStruct((1, 2, 4), jnp.float32)
    for fn in (jaxgrad.max_pool1d, jaxgrad.adaptive_max_pool1d):
        index = functools.partial(fn, return_indices=True)
        with jax.enable_x64(False):
            assert jax.eval_shape(lambda x: index(x, 2)[1], x).dtype == jnp.int32
        assert jax.eval_shape(lambda x: index(x, 2)[1], x).dtype == jnp.int64


# --------------------------------------------------------------------------
# Bad input is loud: every argument of every function.


def _input_errors(fn: str, n: int):
    ok = (2, 3) + (6,) * n
    return [
        ("x", TypeError, rf"^{fn}: `input` must be an array, got str 'x'"),
        # integers are taken by max and average pooling (as torch's), not the adaptive ones
        (jnp.ones(ok, jnp.int32 if fn.startswith("adaptive") else jnp.bool_), TypeError,
         rf"^{fn}: `input` must have a floating"),
        (jnp.ones((6,) * n), ValueError,
         rf"^{fn}: `input` must be {n + 1}-D or {n + 2}-D .*got shape"),
        (jnp.ones((2, 0) + (6,) * n), ValueError, rf"^{fn}: `input` must have non-empty"),
        (jnp.ones((2, 3, 0) + (6,) * (n - 1)), ValueError,
         rf"^{fn}: `input` must have non-empty"),
    ]


def _call(name: str, x, kwargs):
    fn = getattr(jaxgrad, name)
    if name.startswith("adaptive"):
        return fn(x, **{"output_size": 2, **kwargs})
    return fn(x, **{"kernel_size": 2, **kwargs})


def _assert_raises(name: str, exc, pattern: str, x, kwargs) -> None:
    """The error matches, and every backticked name is a parameter of ``name``."""
    with pytest.raises(exc, match=pattern) as info:
        _call(name, x, kwargs)
    parameters = inspect.signature(getattr(jaxgrad, name)).parameters
    for named in re.findall(r"`(\w+)`", str(info.value)):
        assert named in parameters, (name, named, str(info.value))


INPUT_ERROR_CASES = [(f"{kind}{n}d", n, *case)
                     for kind in ("max_pool", "avg_pool", "adaptive_max_pool",
                                  "adaptive_avg_pool")
                     for n in (1, 2, 3) for case in _input_errors(f"{kind}{n}d", n)]


@pytest.mark.parametrize("name,n,x,exc,pattern", INPUT_ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(INPUT_ERROR_CASES)])
def test_input_errors(name, n, x, exc, pattern):
    _assert_raises(name, exc, pattern, x, {})


def _window_errors(kind: str, n: int):
    fn = f"{kind}{n}d"
    pair = (0,) + (2,) * (n - 1)
    cases = [
        (dict(kernel_size=pair), ValueError,
         rf"^{fn}: `kernel_size` must be positive, got \(0,?(, 2)*\)"),
        (dict(kernel_size=(2,) * (n + 1)), ValueError,
         rf"^{fn}: `kernel_size` must be an int or a tuple of {n} ints"),
        (dict(kernel_size=2.0), TypeError, rf"^{fn}: `kernel_size` must be an int"),
        (dict(stride=0), ValueError, rf"^{fn}: `stride` must be positive, got 0"),
        (dict(stride="1"), TypeError, rf"^{fn}: `stride` must be an int or a tuple"),
        (dict(padding=-1), ValueError, rf"^{fn}: `padding` must be >= 0, got -1"),
        (dict(padding=2), ValueError, rf"^{fn}: `padding` must be at most half of "
         rf"`kernel_size`, got padding \(2,?(, 2)*\) and kernel_size \(2,?(, 2)*\)"),
        (dict(ceil_mode=1), TypeError, rf"^{fn}: `ceil_mode` must be a bool, got int 1"),
        (dict(kernel_size=7), ValueError, rf"^{fn}: the output would be empty: input "
         rf"\(6,?(, 6)*\) with kernel_size \(7,?(, 7)*\)"),
    ]
    if kind == "max_pool":
        cases += [
            (dict(dilation=0), ValueError, rf"^{fn}: `dilation` must be positive"),
            (dict(dilation=(1,) * (n + 1)), ValueError, rf"^{fn}: `dilation` must be"),
            (dict(return_indices="yes"), TypeError,
             rf"^{fn}: `return_indices` must be a bool, got str 'yes'"),
            (dict(kernel_size=2, padding=1, dilation=2), ValueError,
             rf"^{fn}: window 0 of spatial dim 0 holds only padding"),
        ]
    else:
        cases.append((dict(count_include_pad=None), TypeError,
                      rf"^{fn}: `count_include_pad` must be a bool"))
        if n > 1:
            cases += [
                (dict(divisor_override=0), ValueError,
                 rf"^{fn}: `divisor_override` must be non-zero, got 0"),
                (dict(divisor_override=1.5), TypeError,
                 rf"^{fn}: `divisor_override` must be an int, got float 1.5"),
            ]
    return [(fn, n, *case) for case in cases]


WINDOW_ERROR_CASES = [case for kind in ("max_pool", "avg_pool") for n in (1, 2, 3)
                      for case in _window_errors(kind, n)]


@pytest.mark.parametrize("name,n,kwargs,exc,pattern", WINDOW_ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(WINDOW_ERROR_CASES)])
def test_window_argument_errors(name, n, kwargs, exc, pattern):
    x = jnp.ones((2, 3) + (6,) * n)
    if kwargs.get("padding") == 1:
        x = jnp.ones((2, 3) + (1,) * n)   # taps at -1 and 1 miss the single row
    _assert_raises(name, exc, pattern, x, kwargs)


def _adaptive_errors(kind: str, n: int):
    fn = f"{kind}{n}d"
    cases = [
        (dict(output_size=-1), ValueError, rf"^{fn}: `output_size` must be >= 0"),
        (dict(output_size=(2,) * (n + 1)), ValueError,
         rf"^{fn}: `output_size` must be an int or a tuple of {n} ints"),
        (dict(output_size=2.0), TypeError, rf"^{fn}: `output_size` must be an int"),
        (dict(output_size=None), TypeError, rf"^{fn}: `output_size` must be an int"),
    ]
    if n == 1:   # torch's 1-D adaptive pooling takes no None
        cases.append((dict(output_size=(None,)), TypeError,
                      rf"^{fn}: `output_size` must be an int, got NoneType"))
    if kind == "adaptive_max_pool":
        cases.append((dict(return_indices=0), TypeError,
                      rf"^{fn}: `return_indices` must be a bool"))
    return [(fn, n, *case) for case in cases]


ADAPTIVE_ERROR_CASES = [case for kind in ("adaptive_max_pool", "adaptive_avg_pool")
                        for n in (1, 2, 3) for case in _adaptive_errors(kind, n)]


@pytest.mark.parametrize("name,n,kwargs,exc,pattern", ADAPTIVE_ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ADAPTIVE_ERROR_CASES)])
def test_adaptive_argument_errors(name, n, kwargs, exc, pattern):
    _assert_raises(name, exc, pattern, jnp.ones((2, 3) + (6,) * n), kwargs)


def test_avg_pool1d_has_no_divisor_override():
    """As torch: only avg_pool2d / avg_pool3d take divisor_override."""
    with pytest.raises(TypeError, match="divisor_override"):
        jaxgrad.avg_pool1d(jnp.ones((1, 1, 4)), 2, divisor_override=2)


# --------------------------------------------------------------------------
# Second order runs hand-written rules only.

POOL_IMPLS = ("_mean_impl", "_mean_adjoint_impl", "_max_impl", "_scatter_impl",
              "_gather_impl")


@pytest.mark.parametrize("op", [
    lambda x: jaxgrad.max_pool2d(x, 3, 2, 1, dilation=1, ceil_mode=True),
    lambda x: jaxgrad.max_pool1d(x[:, 0], 2, 1, 0, dilation=2),
    lambda x: jaxgrad.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda x: jaxgrad.adaptive_avg_pool2d(x, (3, 2)),
    lambda x: jaxgrad.adaptive_max_pool2d(x, 3),
], ids=["max2d", "max1d-dilated", "avg2d", "adaptive-avg", "adaptive-max"])
def test_second_order_runs_only_hand_written_rules(monkeypatch, op):
    from ._autodiff import forbid_autodiff, run_second_order
    jax.clear_caches()  # the eager entry points are jitted; retrace with the guard
    forbid_autodiff(monkeypatch, _pool, POOL_IMPLS)
    run_second_order(op, jnp.asarray(np.random.default_rng(3).standard_normal((2, 3, 7, 6))))
