"""jaxgrad's dropout family: the map given a mask, and the mask's statistics.

Given a mask, the ops are checked against JAX autodiff of plain jnp formulas
written here (``x·k/(1-p)`` and the alpha form ``a·k·x + α·a·(k - 1 + p)``),
float64, to second order. The masks are checked on their own: the kept
fraction within a binomial bound for several p, whole channels for the
channel variants, keys (same key, same mask; other key, other mask), jit and
vmap. Also torch's special cases (training=False, p = 0, p = 1, NaN), ranks
and warnings, error wording, and grad-of-grad running hand-written rules only.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad
from jaxgrad import _dropout
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order

ALPHA = 1.7580993408473766


def reference(x, keep, p, alpha):
    """torch's formulas, from the SELU paper's constants for the alpha form."""
    if not alpha:
        return x * keep / (1 - p)
    a = (ALPHA ** 2 * p + 1) ** -0.5 * (1 - p) ** -0.5
    return a * keep * x + ALPHA * a * (keep - 1 + p)


def random(shape, seed, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def derivatives(fn, x, cot, u):
    y, vjp = jax.vjp(fn, x)

    def inner(x, cot):
        return jnp.sum(jax.vjp(fn, x)[1](cot)[0] * u)

    return (y, vjp(cot)[0], *jax.grad(inner, argnums=(0, 1))(x, cot))


# (input shape, mask shape, p, alpha)
GIVEN_MASK = [((3, 4, 5), (3, 4, 5), 0.3, False), ((3, 4, 5), (3, 4, 1), 0.5, False),
              ((6,), (6,), 0.9, True), ((2, 3, 2), (2, 3, 1), 0.2, True)]


def test_given_mask_against_autodiff_of_formula():
    """All rows in one program: output, VJP, and second order (x and cotangent)."""
    rng = np.random.default_rng(0)
    keeps = [jnp.asarray(rng.random(m) > p, jnp.float64) for _, m, p, _ in GIVEN_MASK]
    xs = tuple(random(s, i) for i, (s, _, _, _) in enumerate(GIVEN_MASK))

    def stacked(fn):
        return lambda xs: tuple(fn(x, k, p, alpha) for x, k, (_, _, p, alpha)
                                in zip(xs, keeps, GIVEN_MASK))

    cots = tuple(random(x.shape, 10 + i) for i, x in enumerate(xs))
    us = tuple(random(x.shape, 20 + i) for i, x in enumerate(xs))

    def run(fn):
        y, vjp = jax.vjp(fn, xs)

        def inner(xs, cots):
            return sum(jnp.sum(g * u) for g, u in zip(jax.vjp(fn, xs)[1](cots)[0], us))

        return y, vjp(cots)[0], jax.grad(inner, argnums=(0, 1))(xs, cots)

    got = jax.jit(lambda: run(stacked(_dropout.dropout_given_mask)))()
    want = jax.jit(lambda: run(stacked(reference)))()
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert a.shape == b.shape
        assert max_errors(a, b)[1] <= tolerance("float64")


def test_alpha_dropout_keeps_mean_and_variance():
    # The point of the alpha constants: a standard normal input stays standard.
    x = random((200_000,), 1)
    y = jaxgrad.alpha_dropout(x, 0.3, True, key=jax.random.key(0))
    assert abs(float(jnp.mean(y))) < 0.01 and abs(float(jnp.var(y)) - 1) < 0.01


# --------------------------------------------------------------------------
# The masks' statistics.


def binomial_bound(n, p):
    """6 standard deviations of the kept fraction of n Bernoulli(1-p) draws."""
    return 6 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.85])
def test_kept_fraction_within_binomial_bound(p):
    x = jnp.ones((40, 500), jnp.float32)
    y = np.asarray(jaxgrad.dropout(x, p, key=jax.random.key(1)))
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) <= binomial_bound(kept.size, p)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    y2 = np.asarray(jaxgrad.dropout2d(jnp.ones((50, 200, 2, 2), jnp.float32), p,
                                      key=jax.random.key(2)))
    channels = y2.reshape(50, 200, 4)
    whole = (channels == 0).all(-1) | (channels == channels[..., :1]).all(-1)
    assert whole.all()
    kept = channels[..., 0] != 0
    assert abs(kept.mean() - (1 - p)) <= binomial_bound(kept.size, p)


@pytest.mark.parametrize("fn, shape, channel_axes", [
    (jaxgrad.dropout1d, (4, 50, 3), (2,)),
    (jaxgrad.dropout1d, (50, 3), (1,)),            # unbatched (C, L)
    (jaxgrad.dropout2d, (4, 50, 3, 2), (2, 3)),
    (jaxgrad.dropout3d, (4, 50, 2, 2, 2), (2, 3, 4)),
    (jaxgrad.dropout3d, (50, 2, 2, 2), (1, 2, 3)),   # unbatched (C, D, H, W)
    (lambda x, p, key: jaxgrad.feature_alpha_dropout(x, p, True, key=key),
     (4, 50, 3), (2,)),
])
def test_whole_channels(fn, shape, channel_axes):
    y = np.asarray(fn(random(shape, 3) + 10, 0.5, key=jax.random.key(3)))
    mask = jnp.asarray(fn(jnp.ones(shape), 0.5, key=jax.random.key(3)))
    first = np.take(np.asarray(mask), [0], axis=channel_axes[0])
    for axis in channel_axes[1:]:
        first = np.take(first, [0], axis=axis)
    assert (np.asarray(mask) == first).all()        # constant along each channel
    values = np.unique(first)
    assert len(values) == 2                         # some channels kept, some dropped
    assert np.isfinite(y).all()


def test_keys_jit_and_vmap():
    x = jnp.ones((8, 16), jnp.float32)
    a = jaxgrad.dropout(x, 0.5, key=jax.random.key(0))
    np.testing.assert_array_equal(a, jaxgrad.dropout(x, 0.5, key=jax.random.key(0)))
    assert (a != jaxgrad.dropout(x, 0.5, key=jax.random.key(1))).any()
    # A raw uint32 key works as well.
    np.testing.assert_array_equal(jaxgrad.dropout(x, 0.5, key=jax.random.PRNGKey(7)),
                                  jaxgrad.dropout(x, 0.5, key=jax.random.PRNGKey(7)))
    jitted = jax.jit(lambda x, key: jaxgrad.dropout2d(x[None, :, :, None], 0.5, key=key))
    np.testing.assert_array_equal(
        jitted(x, jax.random.key(4)),
        jaxgrad.dropout2d(x[None, :, :, None], 0.5, key=jax.random.key(4)))
    # vmap over examples, one key each: each row is that key's mask.
    keys = jax.random.split(jax.random.key(5), 8)
    rows = jax.vmap(lambda row, key: jaxgrad.dropout(row, 0.5, key=key))(x, keys)
    for i in (0, 7):
        np.testing.assert_array_equal(rows[i], jaxgrad.dropout(x[i], 0.5, key=keys[i]))
    assert len({tuple(np.asarray(r).tolist()) for r in rows}) > 1


def test_gradient_reuses_the_mask():
    x = random((6, 7), 6)
    key = jax.random.key(6)
    y, vjp = jax.vjp(lambda x: jaxgrad.dropout(x, 0.4, key=key), x)
    (grad,) = vjp(jnp.ones_like(y))
    np.testing.assert_allclose(grad * x, y, rtol=1e-15)   # x̄ = mask/(1-p) = y/x
    y, vjp = jax.vjp(lambda x: jaxgrad.alpha_dropout(x, 0.4, True, key=key), x)
    (grad,) = vjp(jnp.ones_like(y))
    a = (ALPHA ** 2 * 0.4 + 1) ** -0.5 * 0.6 ** -0.5
    kept = grad != 0
    np.testing.assert_allclose(grad[kept], a, rtol=1e-14)
    np.testing.assert_allclose(y[~kept], ALPHA * a * (0.4 - 1), rtol=1e-14)


# --------------------------------------------------------------------------
# torch's special cases.


ALL = {"dropout": jaxgrad.dropout, "alpha_dropout": jaxgrad.alpha_dropout,
       "dropout1d": jaxgrad.dropout1d, "dropout2d": jaxgrad.dropout2d,
       "dropout3d": jaxgrad.dropout3d,
       "feature_alpha_dropout": jaxgrad.feature_alpha_dropout}


@pytest.mark.parametrize("name", list(ALL))
def test_identity_without_a_key_when_nothing_is_drawn(name):
    x = random((2, 3, 4, 5), 7)
    fn = ALL[name]
    if name == "dropout1d":
        x = x[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fn(x, 0.5, training=False) is x
        assert fn(x, 0.0, training=True) is x
        empty = jnp.zeros((0,) + x.shape[1:])
        assert fn(empty, 0.5, training=True).shape == empty.shape
    # p = 1: x·0, NaN and ±inf giving NaN, as torch.
    special = jnp.array([[[1.0, -2.0], [jnp.nan, jnp.inf]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = np.asarray(fn(special, 1.0, training=True))
    assert y.ravel()[:2].tolist() == [0.0, 0.0] and np.isnan(y.ravel()[2:]).all()


def test_dropped_nan_and_inf_give_nan():
    x = jnp.full((64,), jnp.inf)
    y = np.asarray(jaxgrad.dropout(x, 0.5, key=jax.random.key(8)))
    assert set(np.unique(np.isnan(y))) == {False, True}
    assert (y[~np.isnan(y)] == np.inf).all()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtype_is_preserved_to_second_order(dtype):
    x, u, cot = random((3, 4), 9, dtype), random((3, 4), 10, dtype), random((3, 4), 11, dtype)
    key = jax.random.key(9)

    def fn(x):
        return (jaxgrad.dropout(x, 0.3, key=key)
                + jaxgrad.alpha_dropout(x, 0.3, True, key=key))

    outs = jax.jit(lambda *a: derivatives(fn, *a))(x, cot, u)
    assert [o.dtype for o in outs] == [jnp.dtype(dtype)] * 4


def test_warnings_for_unusual_ranks():
    x = jnp.ones((2, 3, 4))
    with pytest.warns(UserWarning, match=r"dropout2d: received a 3-D input; like torch, "
                                         r"it is read as \(N, C, L\)"):
        y = jaxgrad.dropout2d(x, 0.5, key=jax.random.key(0))
    assert ((y == 0).all(-1) | (y == 2).all(-1)).all()
    with pytest.warns(UserWarning, match=r"dropout2d: received a 2-D input"):
        jaxgrad.dropout2d(x[0], 0.5, training=False)
    with pytest.warns(UserWarning, match=r"dropout3d: received a 3-D input; dropout3d "
                                         r"drops whole channels of inputs with 3 spatial"):
        y = jaxgrad.dropout3d(x, 0.5, key=jax.random.key(0))
    assert ((y == 0).all((1, 2)) | (y == 2).all((1, 2))).all()   # dim 0 is C
    # The warnings come at trace time: eval_shape is enough (nothing compiles).
    with pytest.warns(UserWarning, match=r"dropout3d: received a 1-D input"):
        jax.eval_shape(lambda x: jaxgrad.dropout3d(x, 0.5, key=jax.random.key(0)), x[0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn, x_ in ((jaxgrad.dropout2d, x[None]), (jaxgrad.dropout3d, x[None]),
                       (jaxgrad.dropout3d, x[None, None]), (jaxgrad.dropout1d, x)):
            jax.eval_shape(lambda x, fn=fn: fn(x, 0.5, key=jax.random.key(0)), x_)


# --------------------------------------------------------------------------
# Only hand-written rules run to second order.


def test_poison_fires_on_autodiff_of_the_product(monkeypatch):
    forbid_autodiff(monkeypatch, _dropout, ("_product",))
    with pytest.raises(AssertionError, match="JAX autodiff reached"):
        jax.eval_shape(jax.grad(lambda x: _dropout._scale_impl(x, 2.0).sum()), jnp.ones(3))


@pytest.mark.parametrize("name", ["dropout", "alpha_dropout", "dropout2d",
                                  "feature_alpha_dropout"])
def test_second_order_runs_only_hand_written_rules(monkeypatch, name):
    # Both maps of the pair compute ``_product`` (looked up at call time), so the
    # poison reaches every implementation the rules run.
    forbid_autodiff(monkeypatch, _dropout, ("_product",))
    key = jax.random.key(10)
    run_second_order(lambda x: ALL[name](x, 0.5, True, key=key), random((2, 3, 4, 2), 12))


# --------------------------------------------------------------------------
# Errors.


X = jnp.ones((2, 3, 4))
KEY = jax.random.key(0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.dropout(X, 0.5), ValueError,
     r"dropout: `key` is required when training with 0 < `p` < 1 .* "
     r"key=jax.random.key\(seed\).* got key=None with p=0.5"),
    (lambda: jaxgrad.dropout2d(X[None], 0.2), ValueError, r"dropout2d: `key` is required"),
    (lambda: jaxgrad.alpha_dropout(X, 0.2, True), ValueError,
     r"alpha_dropout: `key` is required"),
    (lambda: jaxgrad.dropout(X, 0.5, key=0), TypeError,
     r"dropout: `key` must be one jax.random key \(jax.random.key\(seed\), or split one "
     r"per call\), got int 0"),
    (lambda: jaxgrad.dropout(X, 0.5, key=jax.random.split(KEY, 2)), TypeError,
     r"dropout: `key` must be one jax.random key .* got an array of dtype key<fry> and "
     r"shape \(2,\)"),
    (lambda: jaxgrad.dropout(X, 0.5, key=jnp.zeros(2)), TypeError,
     r"`key` must be one jax.random key .* dtype float64"),
    (lambda: jaxgrad.dropout(X, 1.5, key=KEY), ValueError,
     r"dropout: `p` \(the drop probability\) must be in \[0, 1\], got 1.5"),
    (lambda: jaxgrad.dropout(X, -0.1, key=KEY), ValueError, r"must be in \[0, 1\], got -0.1"),
    (lambda: jaxgrad.dropout3d(X[None], math.nan, key=KEY), ValueError,
     r"dropout3d: `p` \(the drop probability\) must be in \[0, 1\], got nan"),
    (lambda: jaxgrad.dropout(X, "0.5", key=KEY), TypeError,
     r"dropout: `p` must be a real number, got str '0.5'"),
    (lambda: jaxgrad.dropout(X, 0.5, 1, key=KEY), TypeError,
     r"dropout: `training` must be a bool, got int 1"),
    (lambda: jaxgrad.dropout(X, 0.5, True, True, key=KEY), ValueError,
     r"dropout: `inplace` must be False: JAX arrays are immutable"),
    (lambda: jaxgrad.feature_alpha_dropout(X, 0.5, False, True), ValueError,
     r"feature_alpha_dropout: `inplace` must be False"),
    (lambda: jaxgrad.dropout(jnp.arange(3), 0.5, key=KEY), TypeError,
     r"dropout: `input` must have a floating or complex dtype \(float16, .*\), got int"),
    (lambda: jaxgrad.dropout1d(X[None], 0.5, key=KEY), ValueError,
     r"dropout1d: `input` must be 2-D \(C, L\) or 3-D \(N, C, L\), got shape "
     r"\(1, 2, 3, 4\)"),
    (lambda: jaxgrad.dropout1d(X[0, 0], 0.5, training=False), ValueError,
     r"dropout1d: `input` must be 2-D"),
    (lambda: jaxgrad.feature_alpha_dropout(X[0, 0], 0.5, True, key=KEY), ValueError,
     r"feature_alpha_dropout: `input` must be at least 2-D \(N, C, ...\) to drop whole "
     r"channels when training, got shape \(4,\)"),
    (lambda: jaxgrad.dropout(X, 0.5, key=KEY, bogus=1), TypeError, r"bogus"),
])
def test_errors(call, error, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message):
            call()


def test_rank_errors_of_torch_only_when_a_mask_is_drawn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"dropout2d: `input` must be at least 2-D"):
            jaxgrad.dropout2d(jnp.ones(3), 0.5, key=KEY)
        with pytest.raises(ValueError, match=r"dropout3d: `input` must be at least 2-D"):
            jaxgrad.dropout3d(jnp.ones(()), 0.5, key=KEY)
        assert jaxgrad.dropout2d(jnp.ones(3), 0.5, training=False).shape == (3,)
        assert jaxgrad.dropout2d(jnp.ones(3), 1.0).tolist() == [0.0] * 3
