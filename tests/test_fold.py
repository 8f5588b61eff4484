"""``unfold`` / ``fold`` against hand values and plain jnp references.

The references are written here: unfold as one fancy-indexing gather from the
zero-padded image, fold as one ``.at[].add`` scatter into the padded image; JAX
differentiates them. Also: the adjoint identity ⟨unfold x, V⟩ = ⟨x, fold V⟩,
finite differences to second order, dtypes, unbatched inputs, error wording,
and a check that every order runs the hand-written rules only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad import _fold
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order


def random(shape, seed, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _positions(size, k, d, p, s):
    """rows[k_i, p_i] = p_i·s + k_i·d in the padded image."""
    count = (size + 2 * p - d * (k - 1) - 1) // s + 1
    return np.arange(k)[:, None] * d + np.arange(count)[None, :] * s


def reference_unfold(x, k, d=1, p=0, s=1):
    k, d, p, s = map(_pair, (k, d, p, s))
    xp = jnp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    rows, cols = (_positions(x.shape[2 + i], k[i], d[i], p[i], s[i]) for i in range(2))
    blocks = xp[:, :, rows[:, None, :, None], cols[None, :, None, :]]    # (N, C, kh, kw, Ph, Pw)
    n, c = x.shape[:2]
    return blocks.reshape(n, c * k[0] * k[1], rows.shape[1] * cols.shape[1])


def reference_fold(v, size, k, d=1, p=0, s=1):
    size, k, d, p, s = map(_pair, (size, k, d, p, s))
    rows, cols = (_positions(size[i], k[i], d[i], p[i], s[i]) for i in range(2))
    n, ck = v.shape[:2]
    c = ck // (k[0] * k[1])
    blocks = v.reshape(n, c, k[0], k[1], rows.shape[1], cols.shape[1])
    out = jnp.zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), v.dtype)
    # one scatter-add; overlapping blocks hit the same pixel and add up
    out = out.at[:, :, rows[:, None, :, None], cols[None, :, None, :]].add(blocks)
    return out[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]


# (image (N, C, H, W), kernel_size, dilation, padding, stride)
CASES = [
    ((2, 3, 5, 6), 2, 1, 0, 1),
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 2), (2, 3)),     # leftover rows, padding
    ((2, 1, 6, 6), 3, 1, 1, 3),                          # tiled windows, padded
    ((1, 2, 4, 9), (1, 3), 1, 0, (1, 3)),
    ((0, 2, 5, 5), 2, 2, 1, 1),                          # empty batch
]


def derivatives(fn, x, cot, u):
    y, vjp = jax.vjp(fn, x)

    def inner(x, cot):
        return jnp.sum(jax.vjp(fn, x)[1](cot)[0] * u)

    return (y, vjp(cot)[0], *jax.grad(inner, argnums=(0, 1))(x, cot))


def _shapes(shape, k, d, p, s):
    return jax.eval_shape(lambda x: reference_unfold(x, k, d, p, s),
                          jax.ShapeDtypeStruct(shape, jnp.float64)).shape


def test_against_autodiff_of_plain_references():
    # Every case, unfold and fold, in one jitted program (one compile).
    def run(args):
        results = []
        for (shape, k, d, p, s), (x, v, u, w) in zip(CASES, args):
            pairs = [(lambda x, c=(k, d, p, s): jaxgrad.unfold(x, *c),
                      lambda x, c=(k, d, p, s): reference_unfold(x, *c), x, v, u),
                     (lambda v, c=(shape[2:], k, d, p, s): jaxgrad.fold(v, *c),
                      lambda v, c=(shape[2:], k, d, p, s): reference_fold(v, *c), v, x, w)]
            for ours, ref, primal, cot, direction in pairs:
                results.append((derivatives(ours, primal, cot, direction),
                                derivatives(ref, primal, cot, direction)))
        return results

    args = [(random(c[0], 0), random(_shapes(*c), 1), random(c[0], 2),
             random(_shapes(*c), 3)) for c in CASES]
    cases = [(case, op) for case in CASES for op in ("unfold", "fold")]
    for (case, op), (got, want) in zip(cases, jax.jit(run)(args)):
        for label, a, b in zip(("output", "vjp", "grad2_x", "grad2_cot"), got, want):
            assert a.shape == b.shape, (op, case, label, a.shape, b.shape)
            assert max_errors(a, b)[1] <= tolerance("float64"), (op, case, label)


# --------------------------------------------------------------------------
# Hand values, the adjoint, finite differences, dtypes.


def test_hand_values():
    x = jnp.arange(9.0).reshape(1, 1, 3, 3)
    assert jaxgrad.unfold(x, 2)[0].tolist() == [[0, 1, 3, 4], [1, 2, 4, 5],
                                                [3, 4, 6, 7], [4, 5, 7, 8]]
    # Each pixel of a 3x3 image is covered by 1, 2 or 4 of the 2x2 blocks.
    counts = jaxgrad.fold(jnp.ones((1, 4, 4)), 3, 2)[0, 0]
    assert counts.tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    # Padding 1, stride 2, kernel 2 tiles the padded 4x4: each pixel once.
    assert jaxgrad.fold(jnp.ones((1, 4, 4)), 2, 2, padding=1, stride=2).tolist() == [
        [[[1, 1], [1, 1]]]]
    # Dilation 2: taps (0, 2) of a 1x3 row; the middle column is never read.
    y = jaxgrad.unfold(jnp.array([[[[1.0, 2.0, 3.0]]]]), (1, 2), dilation=2)
    assert y.tolist() == [[[1.0], [3.0]]]
    assert jax.grad(lambda x: jaxgrad.unfold(x, (1, 2), dilation=2).sum())(
        jnp.ones((1, 1, 1, 3))).tolist() == [[[[1.0, 0.0, 1.0]]]]


@pytest.mark.parametrize("shape, k, d, p, s", CASES[:4])
def test_adjoint_identity(shape, k, d, p, s):
    x = random(shape, 6)
    u = jaxgrad.unfold(x, k, d, p, s)
    v = random(u.shape, 7)
    lhs, rhs = jnp.vdot(u, v), jnp.vdot(x, jaxgrad.fold(v, shape[2:], k, d, p, s))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_check_grads_order_2():
    x = random((1, 1, 3, 4), 8)
    check_grads(jax.jit(lambda x: jaxgrad.fold(jaxgrad.unfold(x, 2, 1, 1, 2) ** 2,
                                               (3, 4), 2, 1, 1, 2)),
                (x,), order=2, modes=["rev"])


def test_unbatched():
    x = random((2, 5, 4), 9)
    u = jaxgrad.unfold(x, 3, padding=1)
    assert u.shape == (18, 20)
    np.testing.assert_array_equal(u, jaxgrad.unfold(x[None], 3, padding=1)[0])
    np.testing.assert_array_equal(jaxgrad.fold(u, (5, 4), 3, padding=1),
                                  jaxgrad.fold(u[None], (5, 4), 3, padding=1)[0])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved_and_fold_sums_in_float32(dtype):
    v = random((1, 9, 16), 10, dtype)
    y, vjp = jax.vjp(lambda v: jaxgrad.fold(v, 6, 3, stride=1), v)
    assert y.dtype == dtype and vjp(y)[0].dtype == dtype
    if dtype != jnp.float32:        # float32 sums, one rounding at the end
        run = jax.jit(lambda v: jaxgrad.fold(v, 6, 3, stride=1))
        assert (run(v) == run(v.astype(jnp.float32)).astype(dtype)).all()


# --------------------------------------------------------------------------
# Only hand-written rules run, to second order.


IMPLS = ("patches", "col2im")


def test_poison_fires_on_autodiff_of_an_implementation(monkeypatch):
    forbid_autodiff(monkeypatch, _fold, IMPLS)
    geometry = _fold._geometry("unfold", (4, 4), 2, 1, 0, 1)
    with pytest.raises(AssertionError, match="JAX autodiff reached"):
        jax.eval_shape(jax.grad(lambda x: _fold._unfold_impl(x, geometry).sum()),
                       jnp.ones((1, 1, 4, 4)))


@pytest.mark.parametrize("op", ["unfold", "fold"])
def test_second_order_runs_only_hand_written_rules(monkeypatch, op):
    jax.clear_caches()      # the eager entry points are jitted: retrace under the guard
    forbid_autodiff(monkeypatch, _fold, IMPLS)
    if op == "unfold":
        run_second_order(lambda x: jaxgrad.unfold(x, 2, 1, 1, 2), random((1, 2, 5, 4), 11))
    else:
        run_second_order(lambda v: jaxgrad.fold(v, (5, 4), 2, 1, 1, 2),
                         random((1, 8, 9), 12))


# --------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.unfold(jnp.ones((2, 5)), 2), ValueError,
     r"unfold: `input` must be 3-D or 4-D \(unbatched \(C, H, W\) or batched "
     r"\(N, C, H, W\)\), got shape \(2, 5\)"),
    (lambda: jaxgrad.unfold(jnp.ones((1, 0, 4, 4)), 2), ValueError,
     r"unfold: `input` must have non-empty channel and spatial dims, got shape "
     r"\(1, 0, 4, 4\) \(only the batch may be empty\)"),
    (lambda: jaxgrad.unfold(jnp.ones((1, 1, 4, 4)), 0), ValueError,
     r"unfold: `kernel_size` must be positive, got 0"),
    (lambda: jaxgrad.unfold(jnp.ones((1, 1, 4, 4)), 2, stride=(1, 0)), ValueError,
     r"unfold: `stride` must be positive, got \(1, 0\)"),
    (lambda: jaxgrad.unfold(jnp.ones((1, 1, 4, 4)), 2, padding=-1), ValueError,
     r"unfold: `padding` must be >= 0, got -1"),
    (lambda: jaxgrad.unfold(jnp.ones((1, 1, 4, 4)), (2, 2, 2)), ValueError,
     r"unfold: `kernel_size` must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    (lambda: jaxgrad.unfold(jnp.ones((1, 1, 4, 4)), 3, dilation=2), ValueError,
     r"unfold: no block fits: the image \(4, 4\) padded by \(0, 0\) holds \(0, 0\) "
     r"blocks of kernel_size=\(3, 3\) with dilation=\(2, 2\) and stride=\(1, 1\)"),
    (lambda: jaxgrad.unfold(np.ones((1, 1, 4, 4), "U1"), 2), TypeError,
     r"unfold: `input` must have a floating, complex, integer or bool dtype .*, got <U1"),
    (lambda: jaxgrad.fold(np.ones((1, 4, 4), "U1"), 3, 2), TypeError,
     r"fold: `input` must have a floating, complex, integer or bool dtype .*, got <U1"),
    (lambda: jaxgrad.fold(jnp.ones((1, 2, 3, 4)), 3, 2), ValueError,
     r"fold: `input` must be 2-D or 3-D .* got shape \(1, 2, 3, 4\)"),
    (lambda: jaxgrad.fold(jnp.ones((1, 0, 4)), 3, 2), ValueError,
     r"fold: `input` must have non-empty column and block dims, got shape \(1, 0, 4\)"),
    (lambda: jaxgrad.fold(jnp.ones((1, 6, 4)), 3, 2), ValueError,
     r"fold: the column dim of `input` \(=6\) must be divisible by k_h·k_w = 4 "
     r"\(kernel_size=\(2, 2\)\), got shape \(1, 6, 4\)"),
    (lambda: jaxgrad.fold(jnp.ones((1, 4, 5)), 3, 2), ValueError,
     r"fold: the last dim of `input` \(=5\) must be the number of blocks, 2·2 = 4, "
     r"for output_size=\(3, 3\), kernel_size=\(2, 2\), dilation=\(1, 1\), "
     r"padding=\(0, 0\), stride=\(1, 1\)"),
    (lambda: jaxgrad.fold(jnp.ones((1, 4, 4)), (3, 0), 2), ValueError,
     r"fold: `output_size` must be positive, got \(3, 0\)"),
    (lambda: jaxgrad.fold(jnp.ones((1, 4, 4)), 1, 2), ValueError,
     r"fold: no block fits: the image \(1, 1\)"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
