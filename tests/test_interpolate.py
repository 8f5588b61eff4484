"""``interpolate`` against hand values and JAX autodiff of a plain reference.

The reference below builds each axis's dense O × I interpolation matrix with
a loop that transcribes torch's formulas one output at a time (written here,
not shared with ``jaxgrad._interpolate``), and applies them with
``jnp.tensordot``; JAX differentiates it. Also: hand-computed values, the
adjoint identity ⟨A x, y⟩ = ⟨x, Aᵀ y⟩, finite differences to second order,
dtypes, jit / vmap, error wording, and a check that every order runs the
hand-written rules only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad import _interpolate
from jaxgrad._checking._tolerance import max_errors, tolerance
from jaxgrad._pool import _ops as _pool_ops

from ._autodiff import forbid_autodiff, run_second_order


def random(shape, seed, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


# --------------------------------------------------------------------------
# The plain reference: one dense matrix per axis, one output row at a time.


def _scale(i_size, o_size, align, scale):
    if align:
        return (i_size - 1) / (o_size - 1) if o_size > 1 else 0.0
    return 1 / scale if scale else i_size / o_size


def _floor32(value):
    return math.floor(float(np.float32(value)))      # torch's floorf


def reference_matrix(mode, i_size, o_size, align=False, scale=None, rank=1):
    m = np.zeros((o_size, i_size))
    for j in range(o_size):
        if mode in ("nearest", "nearest-exact"):
            if mode == "nearest" and rank == 2 and o_size in (i_size, 2 * i_size):
                src = j * i_size // o_size            # torch's 2-D copy / halving
            else:
                r = np.float32(1 / scale) if scale else np.float32(i_size) / np.float32(o_size)
                pos = (np.float32(j) * r if mode == "nearest"
                       else np.float32((j + 0.5) * float(r)))
                src = min(math.floor(pos), i_size - 1)
            m[j, src] = 1.0
        elif mode == "area":
            lo, hi = j * i_size // o_size, -(-(j + 1) * i_size // o_size)
            m[j, lo:hi] = 1 / (hi - lo)
        elif mode == "bicubic":
            r = _scale(i_size, o_size, align, scale)
            pos = r * j if align else r * (j + 0.5) - 0.5
            base = min(_floor32(pos), i_size - 1)
            t = min(max(pos - base, 0.0), 1.0)
            a = -0.75
            near = lambda z: (a + 2) * z ** 3 - (a + 3) * z ** 2 + 1      # noqa: E731
            far = lambda z: a * z ** 3 - 5 * a * z ** 2 + 8 * a * z - 4 * a  # noqa: E731
            for tap, w in zip(range(-1, 3), (far(1 + t), near(t), near(1 - t), far(2 - t))):
                m[j, min(max(base + tap, 0), i_size - 1)] += w
        else:                                             # linear
            if o_size == i_size:
                m[j, j] = 1.0
                continue
            r = _scale(i_size, o_size, align, scale)
            pos = r * j if align else max(r * (j + 0.5) - 0.5, 0.0)
            base = min(_floor32(pos), i_size - 1)
            lam = min(max(pos - base, 0.0), 1.0)
            m[j, base] += 1 - lam
            m[j, min(base + 1, i_size - 1)] += lam
    return m


def reference(x, mode, out, align=False, scales=None):
    rank = x.ndim - 2
    scales = scales or (None,) * rank
    for axis, (i, o, s) in enumerate(zip(x.shape[2:], out, scales), start=2):
        m = jnp.asarray(reference_matrix(mode, i, o, align, s, rank), x.dtype)
        x = jnp.moveaxis(jnp.tensordot(m, x, axes=((1,), (axis,))), 0, axis)
    return x


# (input shape, mode, align_corners, interpolate kwargs, reference out, scales)
CASES = [
    ((2, 3, 7), "nearest", None, {"size": 12}, (12,), None),
    ((2, 1, 5), "linear", False, {"scale_factor": 1.7}, (8,), (1.7,)),
    ((2, 1, 5), "linear", True, {"size": 9}, (9,), None),
    ((1, 2, 5, 4), "bilinear", True, {"scale_factor": (1.7, 0.6)}, (8, 2), (1.7, 0.6)),
    ((1, 2, 5, 4), "bicubic", False, {"scale_factor": 1.7, "recompute_scale_factor": True},
     (8, 6), None),
    ((1, 2, 5, 4), "bicubic", True, {"size": (9, 3)}, (9, 3), None),
    ((1, 1, 3, 4, 5), "trilinear", False, {"size": (5, 2, 7)}, (5, 2, 7), None),
    ((1, 1, 3, 4, 5), "nearest-exact", None, {"scale_factor": 1.7}, (5, 6, 8), (1.7,) * 3),
    ((2, 2, 5), "area", None, {"size": 3}, (3,), None),
    ((1, 2, 5, 7), "area", None, {"scale_factor": 1.7}, (8, 11), None),
]


def derivatives(fn, x, cot, u):
    """Output, VJP and the gradient of ⟨VJP, u⟩ w.r.t. x and the cotangent."""
    y, vjp = jax.vjp(fn, x)

    def inner(x, cot):
        return jnp.sum(jax.vjp(fn, x)[1](cot)[0] * u)

    return (y, vjp(cot)[0], *jax.grad(inner, argnums=(0, 1))(x, cot))


def test_against_autodiff_of_plain_reference():
    # Every case in one jitted program (one compile): output, VJP and second
    # order of jaxgrad and of the reference, side by side.
    def run(args):
        results = []
        for (shape, mode, align, kwargs, out, scales), (x, cot, u) in zip(CASES, args):
            ours = lambda x, mode=mode, align=align, kw=kwargs: jaxgrad.interpolate(  # noqa: E731
                x, mode=mode, align_corners=align, **kw)
            ref = lambda x, mode=mode, out=out, align=align, scales=scales: reference(  # noqa: E731
                x, mode, out, bool(align), scales)
            results.append((derivatives(ours, x, cot, u), derivatives(ref, x, cot, u)))
        return results

    args = [(random(shape, 0), random(shape[:2] + out, 1), random(shape, 2))
            for shape, _, _, _, out, _ in CASES]
    for case, (got, want) in zip(CASES, jax.jit(run)(args)):
        for label, a, b in zip(("output", "vjp", "grad2_x", "grad2_cot"), got, want):
            assert a.shape == b.shape, (case, label, a.shape, b.shape)
            assert max_errors(a, b)[1] <= tolerance("float64"), (case, label)


# --------------------------------------------------------------------------
# Hand-computed values.


ROW = jnp.array([[[1.0, 2.0, 4.0]]])


@pytest.mark.parametrize("mode, align, size, expected", [
    ("linear", True, 5, [1.0, 1.5, 2.0, 3.0, 4.0]),
    # sources (j + ½)/2 - ½ = -¼ (clamped to 0), ¼, ¾, 5/4, 7/4, 9/4 (last row)
    ("linear", False, 6, [1.0, 1.25, 1.75, 2.5, 3.5, 4.0]),
    ("nearest", None, 5, [1.0, 1.0, 2.0, 2.0, 4.0]),             # ⌊0.6·j⌋
    ("nearest-exact", None, 5, [1.0, 1.0, 2.0, 4.0, 4.0]),       # ⌊0.6·(j + ½)⌋
    ("area", None, 2, [1.5, 3.0]),                               # bins [0, 2), [1, 3)
])
def test_hand_values(mode, align, size, expected):
    y = jaxgrad.interpolate(ROW, size=size, mode=mode, align_corners=align)
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-15)


def test_bicubic_hand_weights_and_overshoot():
    # align_corners, 4 -> 7: output 1 sits at 0.5, taps clip(-1..2) = 0, 0, 1, 2
    # with Keys' weights W₂(1.5), W₁(0.5), W₁(0.5), W₂(1.5) = -3/32, 19/32, 19/32, -3/32.
    eye = jnp.eye(4)[:, None, None, :]          # (4, 1, 1, 4): one unit impulse per batch
    y = jaxgrad.interpolate(eye, size=(1, 7), mode="bicubic", align_corners=True)
    np.testing.assert_allclose(y[:, 0, 0, 1], [0.5, 19 / 32, -3 / 32, 0.0], rtol=1e-15)
    # The rows sum to 1 (constants are kept), and the weights overshoot.
    np.testing.assert_allclose(y.sum(axis=0)[0, 0], np.ones(7), rtol=1e-15)


def test_nearest_scale_is_used_unless_recomputed():
    x = jnp.arange(5.0)[None, None]
    # 5 × 1.7 -> 8 rows; with the scale ⌊j / 1.7⌋, recomputed ⌊j · 5/8⌋.
    kept = jaxgrad.interpolate(x, scale_factor=1.7)
    recomputed = jaxgrad.interpolate(x, scale_factor=1.7, recompute_scale_factor=True)
    assert kept[0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 4]
    assert recomputed[0, 0].tolist() == [0, 0, 1, 1, 2, 3, 3, 4]


def test_same_size_linear_is_the_identity():
    x = random((1, 2, 6), 5)
    y = jaxgrad.interpolate(x, scale_factor=1.05, mode="linear")     # 6 -> 6
    assert (y == x).all()


# --------------------------------------------------------------------------
# The adjoint, finite differences, dtypes, transformations.


@pytest.mark.parametrize("shape, mode, align, kwargs, out, scales", CASES[::2],
                         ids=lambda v: str(v) if isinstance(v, str) else None)
def test_adjoint_identity(shape, mode, align, kwargs, out, scales):
    fn = lambda x: jaxgrad.interpolate(x, mode=mode, align_corners=align, **kwargs)  # noqa: E731
    x, y = random(shape, 3), random(shape[:2] + out, 4)

    @jax.jit
    def both(x, y):
        forward, vjp = jax.vjp(fn, x)
        return jnp.vdot(forward, y), jnp.vdot(x, vjp(y)[0])

    lhs, rhs = both(x, y)
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_resample_pair_is_adjoint():
    tables = _interpolate.axis_tables("bicubic", (5, 4), (8, 3), False, (None, None))
    x, y = random((2, 1, 5, 4), 6), random((2, 1, 8, 3), 7)
    lhs, rhs = jax.jit(lambda x, y: (
        jnp.vdot(_interpolate.resample(x, tables), y),
        jnp.vdot(x, _interpolate.resample_adjoint(y, tables))))(x, y)
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_check_grads_order_2():
    fn = lambda x: jaxgrad.interpolate(x, size=(4, 2), mode="bicubic")  # noqa: E731
    check_grads(jax.jit(fn), (random((1, 1, 3, 3), 8),), order=2, modes=["rev"])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtype_is_preserved_and_half_types_round_once(dtype):
    x = random((1, 2, 5, 4), 9, dtype)
    fn = lambda x: jaxgrad.interpolate(x, size=(7, 3), mode="bicubic")  # noqa: E731
    y, vjp = jax.vjp(fn, x)
    assert y.dtype == dtype and vjp(y)[0].dtype == dtype
    if dtype != jnp.float32:        # float32 throughout, one rounding at the end
        run = jax.jit(fn)
        assert (run(x) == run(x.astype(jnp.float32)).astype(dtype)).all()


def test_jit_and_vmap():
    x = random((3, 2, 5), 10)
    fn = lambda x: jaxgrad.interpolate(x, size=8, mode="linear")  # noqa: E731
    batched = jax.vmap(lambda row: fn(row[None])[0])(x)
    np.testing.assert_allclose(batched, jax.jit(fn)(x), rtol=1e-15)


def test_empty_batch():
    x = jnp.zeros((0, 2, 5, 4))
    fn = lambda x: jaxgrad.interpolate(x, size=(3, 6), mode="bilinear").sum()  # noqa: E731
    assert jaxgrad.interpolate(x, size=(3, 6), mode="bilinear").shape == (0, 2, 3, 6)
    assert jax.grad(fn)(x).shape == (0, 2, 5, 4)


# --------------------------------------------------------------------------
# Only hand-written rules run, to second order.


IMPLS = ("_gather", "_scatter")


def test_poison_fires_on_autodiff_of_an_implementation(monkeypatch):
    forbid_autodiff(monkeypatch, _interpolate, IMPLS)
    tables = _interpolate.axis_tables("linear", (5,), (8,), False, (None,))
    with pytest.raises(AssertionError, match="JAX autodiff reached"):
        jax.eval_shape(jax.grad(lambda x: _interpolate._resample_impl(x, tables).sum()),
                       jnp.ones((1, 1, 5)))


@pytest.mark.parametrize("mode, align", [("nearest", None), ("nearest-exact", None),
                                         ("bilinear", True), ("bicubic", False),
                                         ("area", None)])
def test_second_order_runs_only_hand_written_rules(monkeypatch, mode, align):
    jax.clear_caches()      # the eager entry points are jitted: retrace under the guard
    forbid_autodiff(monkeypatch, _interpolate, IMPLS)
    forbid_autodiff(monkeypatch, _pool_ops, ("_windows", "_windows_adjoint"))
    run_second_order(lambda x: jaxgrad.interpolate(x, size=(7, 3), mode=mode,
                                                   align_corners=align),
                     random((2, 1, 5, 4), 11))


# --------------------------------------------------------------------------
# Errors.


X3, X4 = jnp.ones((1, 2, 5)), jnp.ones((1, 2, 5, 4))


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.interpolate(X4, size=3, scale_factor=2.0), ValueError,
     r"interpolate: give only one of `size` and `scale_factor`, got size=3 and "
     r"scale_factor=2.0"),
    (lambda: jaxgrad.interpolate(X4), ValueError,
     r"interpolate: one of `size` and `scale_factor` must be given"),
    (lambda: jaxgrad.interpolate(X4, size=3, align_corners=True), ValueError,
     r"interpolate: `align_corners` can only be set for the modes linear, bilinear, "
     r"bicubic and trilinear, got align_corners=True with mode='nearest'"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="area", align_corners=False), ValueError,
     r"`align_corners` can only be set .* mode='area'"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="linear"), ValueError,
     r"interpolate: mode='linear' needs a 3-D `input` \(N, C, L\), got shape \(1, 2, 5, 4\)"),
    (lambda: jaxgrad.interpolate(X3, size=3, mode="bicubic"), ValueError,
     r"interpolate: mode='bicubic' needs a 4-D `input` \(N, C, H, W\), got shape \(1, 2, 5\)"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="trilinear"), ValueError,
     r"mode='trilinear' needs a 5-D `input`"),
    (lambda: jaxgrad.interpolate(jnp.ones((2, 5)), size=3), ValueError,
     r"interpolate: `input` must be 3-D or 4-D or 5-D .* got shape \(2, 5\)"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="cubic"), ValueError,
     r"interpolate: `mode` must be one of \('nearest', .*\), got 'cubic'"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="lanczos"), ValueError,
     r"^interpolate: mode='lanczos' needs antialias=True \(torch has only the "
     r"anti-aliased Lanczos filter\), got antialias=False$"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="lanczos", antialias=True,
                                 align_corners=True), ValueError,
     r"^interpolate: mode='lanczos' does not take align_corners=True \(as torch's\), "
     r"got align_corners=True$"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="nearest", antialias=True), ValueError,
     r"^interpolate: `antialias`=True is taken by the modes bilinear, bicubic and lanczos "
     r"on a 4-D `input` \(N, C, H, W\), got mode='nearest' and an input of shape "
     r"\(1, 2, 5, 4\)$"),
    (lambda: jaxgrad.interpolate(X3, size=3, mode="linear", antialias=True), ValueError,
     r"`antialias`=True is taken by .* got mode='linear' and an input of shape \(1, 2, 5\)"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="bilinear", antialias=1), TypeError,
     r"^interpolate: `antialias` must be a bool, got int 1$"),
    (lambda: jaxgrad.interpolate(X4.astype(jnp.int16), size=3, mode="bicubic"), TypeError,
     r"^interpolate: mode='bicubic' takes a floating or uint8 `input`, got int16 \(integer "
     r"and bool inputs are taken by the nearest modes, uint8 also by bilinear, bicubic and "
     r"lanczos, as torch's\)$"),
    (lambda: jaxgrad.interpolate(X4, size=(3,)), ValueError,
     r"interpolate: `size` must be an int or a tuple of 2 ints, got \(3,\)"),
    (lambda: jaxgrad.interpolate(X4, size=(3, 0)), ValueError,
     r"interpolate: `size` must be positive, got \(3, 0\)"),
    (lambda: jaxgrad.interpolate(X4, size=(3.0, 2)), TypeError,
     r"interpolate: `size` must be an int, got float 3.0"),
    (lambda: jaxgrad.interpolate(X4, scale_factor=(2.0,)), ValueError,
     r"interpolate: `scale_factor` must be a number or a tuple of 2 numbers .* got \(2.0,\)"),
    (lambda: jaxgrad.interpolate(X4, scale_factor=-2.0), ValueError,
     r"interpolate: `scale_factor` must be positive and finite, got -2.0"),
    (lambda: jaxgrad.interpolate(X4, scale_factor=math.inf), ValueError,
     r"`scale_factor` must be positive and finite, got inf"),
    (lambda: jaxgrad.interpolate(X4, scale_factor=True), TypeError,
     r"interpolate: `scale_factor` must be a positive number or a tuple of 2, got bool True"),
    (lambda: jaxgrad.interpolate(X4, scale_factor=0.1), ValueError,
     r"interpolate: `scale_factor` 0.1 gives an empty output: ⌊input size × scale⌋ = "
     r"\(0, 0\) for the spatial input \(5, 4\)"),
    (lambda: jaxgrad.interpolate(X4, size=3, recompute_scale_factor=True), ValueError,
     r"interpolate: `recompute_scale_factor`=True needs `scale_factor`, not an explicit "
     r"size; got size=3"),
    (lambda: jaxgrad.interpolate(jnp.ones((1, 0, 5, 4)), size=3), ValueError,
     r"interpolate: `input` must have non-empty channel and spatial dims, got shape "
     r"\(1, 0, 5, 4\)"),
    (lambda: jaxgrad.interpolate(jnp.arange(5)[None, None], size=3, mode="linear"), TypeError,
     r"^interpolate: mode='linear' takes a floating `input`, got int(32|64) \(integer and "
     r"bool inputs are taken by the nearest modes, uint8 also by bilinear, bicubic and "
     r"lanczos, as torch's\)$"),
    (lambda: jaxgrad.interpolate(X4.astype(jnp.uint8), size=3, mode="area"), TypeError,
     r"^interpolate: mode='area' takes a floating `input`, got uint8"),
    (lambda: jaxgrad.interpolate(np.array([[["a", "b"]]]), size=3), TypeError,
     r"interpolate: `input` must have a floating, integer or bool dtype .*, got <U1"),
    (lambda: jaxgrad.interpolate(X4, size=3, mode="bilinear", align_corners=1), TypeError,
     r"interpolate: `align_corners` must be a bool, got int 1"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_traced_size_is_refused_with_advice():
    with pytest.raises(TypeError, match=r"interpolate: `scale_factor` must be a number "
                                        r"or a tuple of 2 numbers known at trace time"):
        jax.jit(lambda x, s: jaxgrad.interpolate(x, scale_factor=s))(X4, 2.0)
