"""jaxgrad.pad against JAX autodiff of a plain ``jnp.pad`` reference (float64).

The reference below is written here from ``jnp.pad`` and slicing, and
differentiated by JAX itself: positive pads with ``jnp.pad`` (modes
``constant``, ``reflect``, ``edge``, ``wrap``), negative pads as slices. For
reflect and replicate torch mirrors about the input's own edges (pad, then
crop); for circular it wraps around what the crop left (crop, then pad). Also:
the adjoint identities of the two linear pairs, finite differences to second
order, jit / vmap, dtypes, signed zeros, error wording, and a check that
grad-of-grad runs hand-written rules only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad import _pad
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order
from ._jaxpr import DATA_MOVEMENT, second_order_outside_rules

NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": "wrap"}


def reference_pad(x, pad, mode="constant", value=0.0):
    """torch's F.pad from jnp.pad and slices (``pad``: torch's flat list)."""
    if x.ndim == 0:
        return x
    n = len(pad) // 2
    pairs = [(0, 0)] * (x.ndim - n) + [(pad[2 * k], pad[2 * k + 1])
                                       for k in reversed(range(n))]
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    crop = tuple(slice(max(-lo, 0), s - max(-hi, 0))
                 for s, (lo, hi) in zip(x.shape, pairs))
    kwargs = {"constant_values": value} if mode == "constant" else {}
    if mode == "circular":      # wraps around what the crop left
        return jnp.pad(x[crop], grow, mode="wrap")
    padded = jnp.pad(x, grow, mode=NUMPY_MODE[mode], **kwargs)
    grown = tuple(slice(max(-lo, 0), s + g0 + g1 - max(-hi, 0))
                  for s, (lo, hi), (g0, g1) in zip(x.shape, pairs, grow))
    return padded[grown]


def random(shape, seed, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def derivatives(fn, x, cots, us):
    """Outputs, VJP and the gradient of ⟨VJP, u⟩ w.r.t. x and the cotangents."""
    y, vjp = jax.vjp(fn, x)

    def inner(x, cots):
        return jnp.sum(jax.vjp(fn, x)[1](cots)[0] * us)

    return (y, vjp(cots)[0], *jax.grad(inner, argnums=(0, 1))(x, cots))


# mode -> rows of (input shape, value, torch-style pads): one jitted program per mode.
CASES = {
    "constant": [((2, 3, 5), 0.0, [(1, 2), (2, -3, 1, 1, 1, 0), ()]),
                 ((4, 3), 1.5, [(-1, -1, 2, 0), (0, 0, -4, 1)]),
                 ((), 0.0, [()]),
                 ((5,), -2.0, [(3, -5)]),
                 ((1, 2, 2, 2, 3), 0.5, [(0, 1, 0, 1, 1, 0, 0, 1, 1, 1)])],
    "reflect": [((2, 5), 0.0, [(4, -2), (-3, 3)]),
                ((1, 2, 3, 4, 5), 0.0, [(-2, 4, 0, -1, 2, 0)]),
                ((0, 3, 5), 0.0, [(-1, 2)])],                   # empty batch
    "replicate": [((2, 5), 0.0, [(6, -2), (-4, 4)]),
                  ((2, 3, 4, 5), 0.0, [(3, -1, 1, 4, 2, 0)]),
                  ((0, 2, 3, 5), 0.0, [(1, 2, 1, 1)])],
    "circular": [((2, 5), 0.0, [(5, 5), (-2, 3), (3, -2)]),
                 ((1, 2, 3, 4, 5), 0.0, [(-2, 2, 0, -1, 3, 0)]),
                 ((0, 2, 5), 0.0, [(1, 1)])],
}


def _all_rows(mode, fn):
    """One function of a tuple of inputs (one per row) -> every padded output."""
    def run(xs):
        return tuple(fn(x, p, mode, value) for x, (_, value, pads) in zip(xs, CASES[mode])
                     for p in pads)
    return run


def _derivatives(fn, xs, cots, us):
    y, vjp = jax.vjp(fn, xs)

    def inner(xs, cots):
        return sum(jnp.sum(g * u) for g, u in zip(jax.vjp(fn, xs)[1](cots)[0], us))

    return (y, vjp(cots)[0], *jax.grad(inner, argnums=(0, 1))(xs, cots))


@pytest.mark.parametrize("mode", list(CASES))
def test_against_autodiff_of_jnp_pad(mode):
    xs = tuple(random(shape, i) for i, (shape, _, _) in enumerate(CASES[mode]))
    ours_fn, ref_fn = _all_rows(mode, jaxgrad.pad), _all_rows(mode, reference_pad)
    cots = tuple(random(y.shape, 20 + i) for i, y in enumerate(jax.eval_shape(ref_fn, xs)))
    us = tuple(random(x.shape, 40 + i) for i, x in enumerate(xs))
    got = jax.jit(lambda *a: _derivatives(ours_fn, *a))(xs, cots, us)
    want = jax.jit(lambda *a: _derivatives(ref_fn, *a))(xs, cots, us)
    flat_got, flat_want = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(flat_got) == len(flat_want)
    for i, (a, b) in enumerate(zip(flat_got, flat_want)):
        assert a.shape == b.shape and a.dtype == b.dtype, (mode, i)
        assert max_errors(a, b)[1] <= tolerance("float64"), (mode, i)


def test_check_grads_order_2():
    x = random((1, 3, 4), 3)
    fn = jax.jit(lambda x: jnp.concatenate([
        jaxgrad.pad(x, (1, -1, 2, 1), "reflect").ravel(),
        jaxgrad.pad(x, (-1, 2), "circular").ravel(),
        jaxgrad.pad(x, (1, -2, 0, 1, 1, 0), value=0.25).ravel()]))
    check_grads(fn, (x,), order=2, modes=["rev"])


# --------------------------------------------------------------------------
# The linear pairs: ⟨A x, y⟩ = ⟨x, Aᵀ y⟩.


@pytest.mark.parametrize("pads", [((0, 0), (2, -1), (-3, 1)), ((1, 1), (0, 0), (4, 2))])
def test_shift_pair_is_adjoint(pads):
    x, y = random((3, 4, 5), 4), None
    out = _pad.shift(x, pads, False)
    y = random(out.shape, 5)
    lhs = jnp.vdot(out, y)
    rhs = jnp.vdot(x, _pad.shift_adjoint(y, pads, False))
    assert abs(float(lhs - rhs)) <= 1e-12 * float(jnp.abs(lhs)) + 1e-12


@pytest.mark.parametrize("mode, pad", [("reflect", (3, 2)), ("replicate", (4, -1)),
                                       ("circular", (-2, 3))])
def test_gather_pair_is_adjoint(mode, pad):
    index = _pad.pad_source_index(mode, 5, pad)
    x = random((2, 5, 3), 6)
    out = _pad.gather_axis(x, 1, index)
    y = random(out.shape, 7)
    lhs, rhs = jnp.vdot(out, y), jnp.vdot(x, _pad.scatter_axis(y, 1, index, 5))
    assert abs(float(lhs - rhs)) <= 1e-12 * float(jnp.abs(lhs))


@pytest.mark.parametrize("mode, size, pad, expected", [
    # circular wraps what the crop leaves: [1, 2, 3, 4] of 0..4 then two more.
    ("circular", 5, (-1, 2), (1, 2, 3, 4, 1, 2)),
    ("circular", 5, (3, -2), (0, 1, 2, 0, 1, 2)),
    ("circular", 5, (-3, -2), ()),
    # reflect / replicate mirror or repeat the input's own edges.
    ("reflect", 5, (-3, 3), (3, 4, 3, 2, 1)),
    ("reflect", 5, (4, -4), (4, 3, 2, 1, 0)),
    ("replicate", 5, (-4, 4), (4, 4, 4, 4, 4)),
])
def test_source_index_with_crops_by_hand(mode, size, pad, expected):
    assert _pad.pad_source_index(mode, size, pad) == expected


# --------------------------------------------------------------------------
# Values: signed zeros, NaN and rounding of the fill; dtypes; vmap.


def _signs(a):
    return [math.copysign(1.0, v) for v in np.asarray(a, np.float64).ravel()]


def test_signed_zeros_are_kept():
    x = jnp.array([[-0.0, 0.0]])
    assert _signs(jaxgrad.pad(x, (1, 1))) == [1.0, -1.0, 1.0, 1.0]
    assert _signs(jaxgrad.pad(x, (1, 1), value=-0.0)) == [-1.0, -1.0, 1.0, -1.0]
    assert _signs(jaxgrad.pad(x, (1, 1), value=2.0))[1:3] == [-1.0, 1.0]
    assert _signs(jaxgrad.pad(x, (1, 0), "reflect")) == [1.0, -1.0, 1.0]


def test_special_fill_values():
    x = jnp.array([[1.0, jnp.nan]])
    assert np.asarray(jaxgrad.pad(x, (1, 1), value=math.inf)).tolist()[0][::3] == [
        math.inf, math.inf]
    y = np.asarray(jaxgrad.pad(x, (1, 0), value=math.nan))
    assert np.isnan(y[0, 0]) and y[0, 1] == 1.0 and np.isnan(y[0, 2])
    grad = jax.grad(lambda x: jnp.sum(jaxgrad.pad(x, (2, 1), value=math.nan)))(x)
    assert np.asarray(grad).tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved_to_second_order(dtype):
    x = random((2, 3, 4), 8, dtype)

    def fn(x):
        return (jaxgrad.pad(x, (1, 2, -1, 1), value=1.2345),
                jaxgrad.pad(x, (3, 3), "reflect"), jaxgrad.pad(x, (4, 4), "replicate"),
                jaxgrad.pad(x, (2, 1), "circular"))

    cots = tuple(jnp.ones(s.shape, dtype) for s in jax.eval_shape(fn, x))
    outs = jax.jit(lambda *a: derivatives(fn, *a))(x, cots, jnp.ones_like(x))
    assert {leaf.dtype for leaf in jax.tree.leaves(outs)} == {jnp.dtype(dtype)}
    # The fill is rounded to the dtype once.
    assert float(outs[0][0][0, 0, 0]) == float(jnp.asarray(1.2345, dtype))
    # A replicated edge collects 1 + 300 copies: summed in float32, then rounded
    # once (a bfloat16 running sum would stall at 256).
    grad = jax.vjp(lambda x: jaxgrad.pad(x, (0, 300), "replicate"), x)[1](
        jnp.ones((2, 3, 304), dtype))[0]
    assert float(grad[0, 0, -1]) == float(jnp.asarray(301.0, dtype))
    assert float(grad[0, 0, 0]) == 1.0


def test_vmap_matches_batched_call():
    x, cot = random((4, 3, 5), 10), random((4, 3, 6), 11)

    def fn(x):   # (3, 5) -> unbatched (C, W)
        return jaxgrad.pad(x, (2, -1), "reflect") + 2 * jaxgrad.pad(x, (2, -1), "circular")

    @jax.jit
    def both(x, cot):
        per_example = jax.vmap(lambda x, c: jax.vjp(fn, x)[1](c)[0])(x, cot)
        return jax.vmap(fn)(x), per_example, fn(x), jax.vjp(fn, x)[1](cot)[0]

    y_vmap, grad_vmap, y, grad = both(x, cot)
    np.testing.assert_array_equal(y_vmap, y)
    np.testing.assert_array_equal(grad_vmap, grad)


def test_accepts_lists_and_refuses_torch():
    assert jaxgrad.pad([[1.0, 2.0]], [1, 0], "replicate").tolist() == [[1.0, 1.0, 2.0]]


def test_empty_outputs():
    x = random((2, 3, 5), 12)
    assert jaxgrad.pad(x, (-3, -2)).shape == (2, 3, 0)
    assert jaxgrad.pad(x, (-3, -2), "circular").shape == (2, 3, 0)
    assert jaxgrad.pad(x, (-2, -3, 1, 1), "reflect").shape == (2, 5, 0)
    grad = jax.grad(lambda x: jnp.sum(jaxgrad.pad(x, (-3, -2), "circular")))(x)
    assert not np.asarray(grad).any()


# --------------------------------------------------------------------------
# Only hand-written rules run to second order.


PAD_IMPLS = ("_shift_impl", "_shift_adjoint_impl", "_gather_impl", "_scatter_impl")
SECOND_ORDER = {
    "constant": lambda x: jaxgrad.pad(x, (1, -2, 2, 1)),
    "constant -0.0": lambda x: jaxgrad.pad(x, (1, 1), value=-0.0),
    "constant 3.0": lambda x: jaxgrad.pad(x, (1, 1), value=3.0),
    "reflect": lambda x: jaxgrad.pad(x, (2, -1, 1, 1), "reflect"),
    "replicate": lambda x: jaxgrad.pad(x, (2, 3), "replicate"),
    "circular": lambda x: jaxgrad.pad(x, (-1, 2, 1, 0), "circular"),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_second_order_runs_only_hand_written_rules(monkeypatch, name):
    forbid_autodiff(monkeypatch, _pad, PAD_IMPLS)
    run_second_order(SECOND_ORDER[name], random((2, 3, 4), 13))
    outside = second_order_outside_rules(SECOND_ORDER[name], random((2, 3, 4), 13))
    # The fill's border is a constant built with lax.pad, outside the rule.
    allowed = {"pad"} if name == "constant 3.0" else set()
    assert not (outside & DATA_MOVEMENT) - allowed, outside


def test_rules_check_sees_autodiff_of_a_forward():
    # The check above can fail: JAX autodiff of jnp.pad leaves pads and slices
    # outside any rule.
    outside = second_order_outside_rules(
        lambda x: jnp.pad(x, ((0, 0), (1, 2)), mode="reflect"), random((2, 3), 14))
    assert outside & DATA_MOVEMENT


# --------------------------------------------------------------------------
# Errors (torch's rules, house wording).


X3 = jnp.zeros((2, 3, 5))


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.pad(np.array(["a", "b"]), (1, 1)), TypeError,
     r"pad: `input` must have a floating, complex, integer or bool dtype .*int64, .*bool\), "
     r"got <U1"),
    (lambda: jaxgrad.pad(X3, 1), TypeError, r"pad: `pad` must be a sequence of ints"),
    (lambda: jaxgrad.pad(X3, (1.5, 1)), TypeError, r"pad: `pad` must be an int, got float"),
    (lambda: jaxgrad.pad(X3, (True, 1)), TypeError, r"pad: `pad` must be an int, got bool"),
    (lambda: jaxgrad.pad(X3, (1, 1, 1)), ValueError,
     r"pad: `pad` must have an even length, .* got \(1, 1, 1\) of length 3"),
    (lambda: jaxgrad.pad(jnp.zeros(5), (1, 1, 1, 1)), ValueError,
     r"pad: `pad` pads 2 dims, more than the 1-D `input` has"),
    (lambda: jaxgrad.pad(X3, (1, 1), "zeros"), ValueError,
     r"pad: `mode` must be one of 'constant', 'reflect', 'replicate', 'circular', "
     r"got 'zeros'"),
    (lambda: jaxgrad.pad(X3, (1, 1), value="1"), TypeError,
     r"pad: `value` must be None or a real number, got str '1'"),
    (lambda: jaxgrad.pad(X3, (1, 1), "reflect", 2.0), ValueError,
     r"pad: `value` is only used by mode='constant'; mode='reflect' takes value=None "
     r"\(or 0\), got 2.0"),
    (lambda: jaxgrad.pad(X3.astype(jnp.float32), (1, 1), value=1e40), ValueError,
     r"pad: `value` must fit in the float32 `input`, got 1e\+40"),
    (lambda: jaxgrad.pad(X3, (-3, -3)), ValueError,
     r"pad: `pad` \(-3, -3\) crops dim -1 of `input` \(size 5\) to a negative size -1"),
    (lambda: jaxgrad.pad(jnp.zeros(5), (1, 2), "reflect"), ValueError,
     r"pad: mode='reflect' pads the last 1, 2 or 3 dims .* `pad` of length 2 needs a "
     r"2-D or 3-D `input`, got shape \(5,\)"),
    (lambda: jaxgrad.pad(jnp.zeros((3, 5)), (1, 1, 1, 1), "circular"), ValueError,
     r"`pad` of length 4 needs a 3-D or 4-D `input`, got shape \(3, 5\)"),
    (lambda: jaxgrad.pad(jnp.zeros((2,) * 5), (1, 1), "replicate"), ValueError,
     r"`pad` of length 2 needs a 2-D or 3-D `input`, got shape \(2, 2, 2, 2, 2\)"),
    (lambda: jaxgrad.pad(X3, (), "reflect"), ValueError,
     r"pad: mode='reflect' pads the last 1, 2 or 3 dims \(`pad` of length 2, 4 or 6\) of "
     r"an unbatched .* `input`, got `pad` of length 0 for shape \(2, 3, 5\)"),
    (lambda: jaxgrad.pad(jnp.zeros((1, 3, 3, 3, 3)), (1,) * 8, "reflect"), ValueError,
     r"pad: mode='reflect' pads the last 1, 2 or 3 dims .*, got `pad` of length 8 for "
     r"shape \(1, 3, 3, 3, 3\)"),
    (lambda: jaxgrad.pad(X3, (5, 5), "reflect"), ValueError,
     r"pad: mode='reflect' needs each pad smaller than its dim, got `pad` \(5, 5\) for "
     r"dim -1 of size 5"),
    (lambda: jaxgrad.pad(jnp.zeros((2, 0, 5)), (1, 1), "replicate"), ValueError,
     r"pad: mode='replicate' needs non-empty dims after the batch \(only N may be 0\), "
     r"got `input` of shape \(2, 0, 5\)"),
    (lambda: jaxgrad.pad(jnp.zeros((0, 5)), (1, 1), "reflect"), ValueError,
     r"needs non-empty dims after the batch .* shape \(0, 5\)"),
    (lambda: jaxgrad.pad(X3, (6, 0), "circular"), ValueError,
     r"pad: mode='circular' wraps around at most once: .* \(after negative pads crop "
     r"it, 5\), got `pad` \(6, 0\) for dim -1 of size 5"),
    (lambda: jaxgrad.pad(X3, (-3, 3), "circular"), ValueError,
     r"mode='circular' wraps around at most once: .* crop it, 2\), got `pad` \(-3, 3\)"),
    (lambda: jaxgrad.pad(X3, (-5, 0), "reflect"), ValueError,
     r"pad: mode='reflect' must leave a padded dim non-empty, got output sizes \(0,\)"),
    (lambda: jaxgrad.pad(X3, (0, 0, -4, 0), "replicate"), ValueError,
     r"pad: `pad` \(-4, 0\) crops dim -2 of `input` \(size 3\) to a negative size"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_traced_pad_is_refused():
    with pytest.raises(TypeError, match=r"pad: `pad` must be a sequence of ints known "
                                         r"at trace time"):
        jax.jit(lambda x, p: jaxgrad.pad(x, p))(X3, jnp.array([1, 1]))
