"""pixel_shuffle / pixel_unshuffle against their index formula, written out in loops.

The reference is NumPy indexing from the definition
``y[.., c, h·r + i, w·r + j] = x[.., c·r² + i·r + j, h, w]``; the gradients
against JAX autodiff of that reference (a gather, differentiated by JAX).
Also: each is the other's inverse and adjoint, jit / vmap, dtypes, errors, and
grad-of-grad running hand-written rules only.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad
from jaxgrad import _pixel_shuffle
from jaxgrad._checking._tolerance import max_errors

from ._autodiff import forbid_autodiff, run_second_order
from ._jaxpr import DATA_MOVEMENT, second_order_outside_rules


def shuffle_index(shape, r):
    """For each output element of the shuffle, the flat index into the input."""
    *lead, channels, h, w = shape
    c = channels // (r * r)
    source = np.arange(int(np.prod(shape))).reshape(shape)
    out = np.empty((*lead, c, h * r, w * r), np.int64)
    for k, i, j, y, x in itertools.product(range(c), range(r), range(r), range(h),
                                           range(w)):
        out[..., k, y * r + i, x * r + j] = source[..., k * r * r + i * r + j, y, x]
    return out


def reference_shuffle(x, r):
    return x.ravel()[shuffle_index(x.shape, r)]


def reference_unshuffle(y, r):
    *lead, c, hr, wr = y.shape
    index = shuffle_index((*lead, c * r * r, hr // r, wr // r), r)
    inverse = np.empty(index.size, np.int64)
    inverse[index.ravel()] = np.arange(index.size)
    return y.ravel()[inverse.reshape(*lead, c * r * r, hr // r, wr // r)]


def random(shape, seed, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def derivatives(fn, x, cot, u):
    y, vjp = jax.vjp(fn, x)

    def inner(x, cot):
        return jnp.sum(jax.vjp(fn, x)[1](cot)[0] * u)

    return (y, vjp(cot)[0], *jax.grad(inner, argnums=(0, 1))(x, cot))


CASES = [((8, 2, 3), 2), ((2, 3, 9, 2, 1), 3), ((1, 4, 2, 3), 1), ((0, 4, 1, 2), 2),
         ((4, 0, 3), 2)]


@pytest.mark.parametrize("which", ["shuffle", "unshuffle"])
def test_against_autodiff_of_index_formula(which):
    """One program for all CASES: output, VJP and second order vs the reference."""
    if which == "shuffle":
        shapes = [s for s, _ in CASES]
        ours = lambda xs: tuple(jaxgrad.pixel_shuffle(x, r) for x, (_, r) in zip(xs, CASES))  # noqa: E731
        ref = lambda xs: tuple(reference_shuffle(x, r) for x, (_, r) in zip(xs, CASES))  # noqa: E731
    else:
        shapes = [jax.eval_shape(lambda x, r=r: reference_shuffle(x, r),
                                 jax.ShapeDtypeStruct(s, jnp.float64)).shape
                  for s, r in CASES]
        ours = lambda xs: tuple(jaxgrad.pixel_unshuffle(x, r) for x, (_, r) in zip(xs, CASES))  # noqa: E731
        ref = lambda xs: tuple(reference_unshuffle(x, r) for x, (_, r) in zip(xs, CASES))  # noqa: E731
    xs = tuple(random(s, i) for i, s in enumerate(shapes))
    cots = tuple(random(y.shape, 10 + i) for i, y in enumerate(jax.eval_shape(ref, xs)))
    us = tuple(random(s, 20 + i) for i, s in enumerate(shapes))

    def run(fn):
        y, vjp = jax.vjp(fn, xs)

        def inner(xs, cots):
            return sum(jnp.sum(g * u) for g, u in zip(jax.vjp(fn, xs)[1](cots)[0], us))

        return y, vjp(cots)[0], jax.grad(inner, argnums=(0, 1))(xs, cots)

    got, want = jax.jit(lambda: run(ours))(), jax.jit(lambda: run(ref))()
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert max_errors(a, b)[0] == 0.0       # a permutation moves values exactly


def test_inverse_and_adjoint():
    x = random((2, 18, 2, 3), 1)
    y = jaxgrad.pixel_shuffle(x, 3)
    assert y.shape == (2, 2, 6, 9)
    np.testing.assert_array_equal(jaxgrad.pixel_unshuffle(y, 3), x)
    z = random(y.shape, 2)
    np.testing.assert_array_equal(jaxgrad.pixel_shuffle(jaxgrad.pixel_unshuffle(z, 3), 3), z)
    # ⟨S x, z⟩ = ⟨x, U z⟩: the same products, summed in another order.
    assert float(jnp.vdot(y, z)) == pytest.approx(
        float(jnp.vdot(x, jaxgrad.pixel_unshuffle(z, 3))), rel=1e-14)


def test_by_hand():
    x = jnp.arange(8.0).reshape(8, 1, 1)
    assert jaxgrad.pixel_shuffle(x, 2).tolist() == [[[0.0, 1.0], [2.0, 3.0]],
                                                    [[4.0, 5.0], [6.0, 7.0]]]
    assert jaxgrad.pixel_unshuffle(jnp.arange(4.0).reshape(1, 2, 2), 2)[:, 0, 0].tolist() == [
        0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_dtype_is_preserved_to_second_order(dtype):
    x, u = random((4, 2, 3), 3, dtype), random((4, 2, 3), 4, dtype)
    outs = jax.jit(lambda *a: derivatives(lambda x: jaxgrad.pixel_shuffle(x, 2), *a))(
        x, random((1, 4, 6), 5, dtype), u)
    assert [o.dtype for o in outs] == [jnp.dtype(dtype)] * 4


def test_vmap_matches_batched_call():
    x = random((3, 4, 2, 3), 6)
    np.testing.assert_array_equal(jax.vmap(lambda x: jaxgrad.pixel_shuffle(x, 2))(x),
                                  jaxgrad.pixel_shuffle(x, 2))
    cot = random((3, 1, 4, 6), 7)
    per_example = jax.vmap(lambda x, c: jax.vjp(lambda x: jaxgrad.pixel_shuffle(x, 2), x)[1](c)[0])
    np.testing.assert_array_equal(per_example(x, cot), jaxgrad.pixel_unshuffle(cot, 2))


@pytest.mark.parametrize("fn", [lambda x: jaxgrad.pixel_shuffle(x, 2),
                                lambda x: jaxgrad.pixel_unshuffle(x, 2)],
                         ids=["shuffle", "unshuffle"])
def test_second_order_runs_only_hand_written_rules(monkeypatch, fn):
    forbid_autodiff(monkeypatch, _pixel_shuffle, ("_shuffle_impl", "_unshuffle_impl"))
    x = random((1, 4, 2, 2), 8)
    run_second_order(fn, x)
    assert not second_order_outside_rules(fn, x) & DATA_MOVEMENT


def test_rules_check_sees_autodiff_of_a_forward():
    outside = second_order_outside_rules(lambda x: _pixel_shuffle._shuffle_impl(x, 2),
                                         random((1, 4, 2, 2), 9))
    assert {"reshape", "transpose"} <= outside


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.pixel_shuffle(jnp.zeros((4, 2)), 2), ValueError,
     r"pixel_shuffle: `input` must be at least 3-D, \(\*, C·r², H, W\), got shape \(4, 2\)"),
    (lambda: jaxgrad.pixel_shuffle(jnp.zeros((5, 2, 3)), 2), ValueError,
     r"pixel_shuffle: the channel dim of `input` \(dim -3, size 5\) must be divisible "
     r"by `upscale_factor`² = 4, got shape \(5, 2, 3\)"),
    (lambda: jaxgrad.pixel_shuffle(jnp.zeros((4, 2, 3)), 0), ValueError,
     r"pixel_shuffle: `upscale_factor` must be positive, got 0"),
    (lambda: jaxgrad.pixel_shuffle(jnp.zeros((4, 2, 3)), 2.0), TypeError,
     r"pixel_shuffle: `upscale_factor` must be an int, got float 2.0"),
    (lambda: jaxgrad.pixel_shuffle(np.zeros((4, 2, 3), "U1"), 2), TypeError,
     r"pixel_shuffle: `input` must have a floating, complex, integer or bool dtype .*, "
     r"got <U1"),
    (lambda: jaxgrad.pixel_unshuffle(jnp.zeros((4, 2)), 2), ValueError,
     r"pixel_unshuffle: `input` must be at least 3-D, \(\*, C, H·r, W·r\), got shape"),
    (lambda: jaxgrad.pixel_unshuffle(jnp.zeros((1, 3, 6)), 2), ValueError,
     r"pixel_unshuffle: the height of `input` \(dim -2, size 3\) must be divisible by "
     r"`downscale_factor` = 2, got shape \(1, 3, 6\)"),
    (lambda: jaxgrad.pixel_unshuffle(jnp.zeros((1, 4, 5)), 2), ValueError,
     r"pixel_unshuffle: the width of `input` \(dim -1, size 5\) must be divisible by "
     r"`downscale_factor` = 2"),
    (lambda: jaxgrad.pixel_unshuffle(jnp.zeros((1, 4, 4)), -2), ValueError,
     r"pixel_unshuffle: `downscale_factor` must be positive, got -2"),
    (lambda: jaxgrad.pixel_unshuffle(jnp.zeros((1, 4, 4)), True), TypeError,
     r"pixel_unshuffle: `downscale_factor` must be an int, got bool True"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
