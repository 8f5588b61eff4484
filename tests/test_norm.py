"""jaxgrad's normalisation ops against JAX autodiff of plain jnp forwards (float64).

The references below are written here from the textbook formulas and
differentiated by JAX itself; nothing in them touches jaxgrad's rules. Also:
the running-statistics updates against hand-computed values, half precision,
vmap, error wording, and proof that every derivative (second and third order)
runs the hand-written rules only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad
from jaxgrad import _norm
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order
from .test_activation import random


# --------------------------------------------------------------------------
# Plain references: the formulas, nothing else.


def plain_normalize(x, axes, eps):
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=axes, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps)


def per_channel(p, ndim):
    return p.reshape((1, -1) + (1,) * (ndim - 2))


def plain_affine(y, w, b):
    """y·w + b with w, b per channel (axis 1); None: absent."""
    y = y if w is None else y * per_channel(w, y.ndim)
    return y if b is None else y + per_channel(b, y.ndim)


def plain_running(x, mean, var, eps):
    return (x - per_channel(mean, x.ndim)) / jnp.sqrt(per_channel(var, x.ndim) + eps)


def spatial(x):
    return tuple(range(2, x.ndim))


def plain_group_norm(x, groups, eps):
    n, c = x.shape[:2]
    grouped = x.reshape((n, groups, c // groups) + x.shape[2:])
    return plain_normalize(grouped, tuple(range(2, grouped.ndim)), eps).reshape(x.shape)


@dataclasses.dataclass(frozen=True)
class Case:
    """One op: jaxgrad's call and the plain one, on the same differentiable args."""

    ours: Callable
    plain: Callable
    shapes: tuple     # of the differentiable arguments (x first)


RM, RV = random((3,), 50), 0.5 + jnp.abs(random((3,), 51))   # running stats, C = 3

CASES = {
    "batch_norm train": Case(
        lambda x, w, b: jaxgrad.batch_norm(x, None, None, w, b, training=True, eps=0.5),
        lambda x, w, b: plain_affine(plain_normalize(x, (0, 2), 0.5), w, b),
        ((4, 3, 5), (3,), (3,))),
    "batch_norm eval": Case(
        lambda x, w, b: jaxgrad.batch_norm(x, RM, RV, w, b, eps=0.1),
        lambda x, w, b: plain_affine(plain_running(x, RM, RV, 0.1), w, b),
        ((2, 3, 2, 2), (3,), (3,))),
    "instance_norm": Case(
        lambda x, w: jaxgrad.instance_norm(x, weight=w, eps=0.2),
        lambda x, w: plain_affine(plain_normalize(x, spatial(x), 0.2), w, None),
        ((2, 3, 4, 3), (3,))),
    "instance_norm eval": Case(
        lambda x, b: jaxgrad.instance_norm(x, RM, RV, bias=b, use_input_stats=False),
        lambda x, b: plain_affine(plain_running(x, RM, RV, 1e-5), None, b),
        ((2, 3, 5), (3,))),
    "group_norm": Case(
        lambda x, w, b: jaxgrad.group_norm(x, 3, w, b, eps=0.3),
        lambda x, w, b: plain_affine(plain_group_norm(x, 3, 0.3), w, b),
        ((2, 6, 4), (6,), (6,))),
    "layer_norm": Case(
        lambda x, w, b: jaxgrad.layer_norm(x, (3, 4), w, b, eps=0.4),
        lambda x, w, b: plain_normalize(x, (1, 2), 0.4) * w + b,
        ((2, 3, 4), (3, 4), (3, 4))),
    "layer_norm unbatched": Case(
        lambda x, w: jaxgrad.layer_norm(x, 5, w), lambda x, w: plain_normalize(x, (0,), 1e-5) * w,
        ((5,), (5,))),
}


def derivatives(fn, args, cot, us):
    """Output, VJP, and the gradient of Σ⟨VJP_k, u_k⟩ w.r.t. every argument and cot."""
    y, vjp = jax.vjp(fn, *args)

    def inner(*args_and_cot):
        *args, cot = args_and_cot
        return sum(jnp.sum(g * u) for g, u in zip(jax.vjp(fn, *args)[1](cot), us))

    grads = jax.grad(inner, argnums=tuple(range(len(args) + 1)))(*args, cot)
    return [y, *vjp(cot), *grads]


@jax.jit
def ours_and_plain(inputs):
    """Every case at once, one program: {name: (ours, plain)}, each the derivatives."""
    return {name: (derivatives(case.ours, *inputs[name]),
                   derivatives(case.plain, *inputs[name])) for name, case in CASES.items()}


def inputs(seed=0):
    out = {}
    for i, (name, case) in enumerate(CASES.items()):
        args = [random(s, seed + 10 * i + k) for k, s in enumerate(case.shapes)]
        shape = jax.eval_shape(case.plain, *args).shape
        us = [random(s, seed + 10 * i + 5 + k) for k, s in enumerate(case.shapes)]
        out[name] = (args, random(shape, seed + 10 * i + 4), us)
    return out


def test_against_autodiff_of_plain_forward():
    results = ours_and_plain(inputs())
    for name, (got, want) in results.items():
        n = len(CASES[name].shapes)
        labels = (["output"] + [f"vjp_{k}" for k in range(n)]
                  + [f"grad2_{k}" for k in range(n)] + ["grad2_cot"])
        for label, a, b in zip(labels, got, want, strict=True):
            assert max_errors(a, b)[1] <= tolerance("float64"), (name, label)


def test_constant_groups_and_tiny_variance():
    # A constant group has x̂ = 0 and gradient r·(ḡ - mean ḡ); a tiny spread
    # makes r = (v + ε)^(-1/2) large: both must match the plain formula.
    x = jnp.stack([jnp.full(6, 2.0), 1e-4 * random((6,), 60), random((6,), 61)])
    cot, u = random((3, 6), 62), random((3, 6), 63)

    got, want = jax.jit(lambda *a: [derivatives(fn, *a) for fn in (
        lambda x: jaxgrad.layer_norm(x, (6,)),
        lambda x: plain_normalize(x, (1,), 1e-5))])([x], cot, [u])
    for label, a, b in zip(("output", "vjp", "grad2_x", "grad2_cot"), got, want):
        assert max_errors(a, b)[1] <= tolerance("float64"), label


def test_weight_and_bias_gradients_by_hand():
    # γ̄ = Σ ḡ·x̂ and β̄ = Σ ḡ, summed over everything but the channel.
    x, cot = random((4, 2, 3), 64), random((4, 2, 3), 65)
    w, b = jnp.array([2.0, -1.0]), jnp.array([0.5, 0.0])
    fn = lambda x, w, b: jaxgrad.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    _, w_bar, b_bar = jax.jit(lambda *a: jax.vjp(fn, *a)[1](cot))(x, w, b)
    xhat = plain_normalize(x, (0, 2), 1e-5)
    np.testing.assert_allclose(w_bar, jnp.sum(cot * xhat, axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(b_bar, jnp.sum(cot, axis=(0, 2)), rtol=1e-12)


def test_empty_batch():
    x = jnp.zeros((0, 3, 4))
    w, b = jnp.ones(3), jnp.ones(3)
    @jax.jit
    def run(x, w, b):
        y, vjp = jax.vjp(
            lambda x, w, b: jaxgrad.batch_norm(x, None, None, w, b, training=True), x, w, b)
        return (y, *vjp(y))

    y, x_bar, w_bar, b_bar = run(x, w, b)
    assert y.shape == (0, 3, 4)
    assert x_bar.shape == (0, 3, 4) and w_bar.tolist() == [0.0] * 3 == b_bar.tolist()
    assert jaxgrad.group_norm(jnp.zeros((0, 4)), 2).shape == (0, 4)
    assert jaxgrad.layer_norm(jnp.zeros((2, 0)), (0,)).shape == (2, 0)


# --------------------------------------------------------------------------
# Running statistics, against the formulas with hand-computed numbers.


def test_batch_norm_stats_by_hand():
    # Channel 0 holds 1, 3, 5, 7 (μ = 4, s² = 20/3), channel 1 holds 0 four times.
    x = jnp.array([[[1.0, 3.0], [0.0, 0.0]], [[5.0, 7.0], [0.0, 0.0]]])   # (2, 2, 2)
    old_mean, old_var = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
    stats = jaxgrad.batch_norm_stats(x, old_mean, old_var, momentum=0.25)
    np.testing.assert_allclose(stats.running_mean, [0.75 + 1.0, 1.5], rtol=1e-15)
    np.testing.assert_allclose(stats.running_var, [2.25 + 5 / 3, 3.0], rtol=1e-15)
    assert int(stats.num_batches_tracked) == 1
    # momentum None: the cumulative average, factor 1/(count + 1) = 1/4 here.
    cumulative = jaxgrad.batch_norm_stats(x, old_mean, old_var, None, jnp.asarray(3))
    np.testing.assert_allclose(cumulative.running_mean, stats.running_mean, rtol=1e-15)
    assert int(cumulative.num_batches_tracked) == 4


def test_batch_norm_stats_under_jit_with_the_count_traced():
    step = jax.jit(lambda x, s: jaxgrad.batch_norm_stats(x, s.running_mean, s.running_var,
                                                         None, s.num_batches_tracked))
    stats = jaxgrad.BatchNormStats(jnp.zeros(2), jnp.ones(2), jnp.asarray(0, jnp.int32))
    batches = [random((3, 2), 70 + i) for i in range(3)]
    for x in batches:
        stats = step(x, stats)
    # Cumulative average of the batch statistics (the initial values drop out).
    np.testing.assert_allclose(stats.running_mean,
                               np.mean([np.mean(b, axis=0) for b in batches], axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(stats.running_var,
                               np.mean([np.var(b, axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)
    assert stats.num_batches_tracked.dtype == jnp.int32 and int(stats.num_batches_tracked) == 3


def test_batch_norm_stats_empty_batch_only_counts():
    stats = jaxgrad.batch_norm_stats(jnp.zeros((0, 2, 3)), jnp.ones(2), jnp.ones(2), 0.5, 7)
    assert stats.running_mean.tolist() == [1.0, 1.0] == stats.running_var.tolist()
    assert int(stats.num_batches_tracked) == 8


def test_stats_are_not_differentiated():
    def loss(x):
        stats = jaxgrad.batch_norm_stats(x, jnp.zeros(2), jnp.ones(2))
        return jnp.sum(stats.running_mean) + jnp.sum(stats.running_var)
    assert jax.grad(loss)(random((3, 2), 72)).tolist() == [[0.0, 0.0]] * 3


def test_instance_norm_stats_by_hand():
    x = jnp.array([[[1.0, 3.0]], [[0.0, 4.0]]])   # (N, C, L) = (2, 1, 2): s² = 2 and 8
    stats = jaxgrad.instance_norm_stats(x, jnp.array([1.0]), jnp.array([2.0]), momentum=0.5)
    assert stats.running_mean.tolist() == [1.5] and stats.running_var.tolist() == [3.5]
    assert stats.num_batches_tracked is None
    unchanged = jaxgrad.instance_norm_stats(x, jnp.array([1.0]), jnp.array([2.0]), None)
    assert unchanged.running_mean.tolist() == [1.0] and unchanged.running_var.tolist() == [2.0]
    # torch's quirks: an empty spatial extent keeps them, an empty batch gives NaN.
    empty = jaxgrad.instance_norm_stats(jnp.zeros((2, 1, 0)), jnp.array([1.0]),
                                        jnp.array([2.0]))
    assert empty.running_mean.tolist() == [1.0] and empty.running_var.tolist() == [2.0]
    nan = jaxgrad.instance_norm_stats(jnp.zeros((0, 1, 3)), jnp.array([1.0]), jnp.array([2.0]))
    assert np.isnan(nan.running_mean).all() and np.isnan(nan.running_var).all()
    # under jax_numpy_rank_promotion="raise" (the broadcast is jaxgrad's own)
    with jax.numpy_rank_promotion("raise"):
        strict = jaxgrad.instance_norm_stats(x, jnp.array([1.0]), jnp.array([2.0]),
                                             momentum=0.5)
    assert strict.running_mean.tolist() == [1.5] and strict.running_var.tolist() == [3.5]


# --------------------------------------------------------------------------
# Half precision and mixed dtypes.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_types_compute_in_float32_and_round_once(dtype):
    # Large mean, small spread: a half-precision reduction would lose it.
    x = (100.0 + random((4, 3, 5), 80)).astype(dtype)
    w, b = random((3,), 81).astype(dtype), random((3,), 82).astype(dtype)
    fns = (lambda x, w, b: jaxgrad.batch_norm(x, None, None, w, b, training=True),
           lambda x, w, b: jaxgrad.group_norm(x, 3, w, b),
           lambda x, w, b: jaxgrad.instance_norm(x, None, None, w, b))

    @jax.jit
    def both(x, w, b):
        wide = [a.astype(jnp.float32) for a in (x, w, b)]
        return [fn(x, w, b) for fn in fns], [fn(*wide).astype(dtype) for fn in fns]

    for got, want in zip(*both(x, w, b)):
        assert got.dtype == dtype
        assert np.array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved_to_second_order(dtype):
    args = [random(s, 83 + i).astype(dtype) for i, s in enumerate(((3, 4, 2), (4,), (4,)))]
    fn = lambda x, w, b: jaxgrad.group_norm(x, 2, w, b)  # noqa: E731
    outs = jax.jit(lambda *a: derivatives(fn, *a))(args, args[0], args)
    assert [o.dtype for o in outs] == [dtype] * len(outs)


def test_mixed_precision_parameters_keep_their_dtype():
    x = random((4, 3), 84).astype(jnp.bfloat16)
    w, rm, rv = jnp.ones(3, jnp.float32), jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float32)
    @jax.jit
    def run(x, w):
        y, vjp = jax.vjp(lambda x, w: jaxgrad.batch_norm(x, rm, rv, w, training=True), x, w)
        return (y, *vjp(jnp.ones_like(y))), jaxgrad.batch_norm_stats(x, rm, rv)

    (y, x_bar, w_bar), stats = run(x, w)
    assert (y.dtype, x_bar.dtype, w_bar.dtype) == (jnp.bfloat16, jnp.bfloat16, jnp.float32)
    assert stats.running_mean.dtype == stats.running_var.dtype == jnp.float32


# --------------------------------------------------------------------------
# Transformations.


def test_vmap_matches_batched_calls():
    x = random((5, 4, 3, 2), 90)      # vmapped over 5 batches of (4, 3, 2)

    @jax.jit
    def both(x):
        fns = (lambda x: jaxgrad.batch_norm(x, None, None, training=True),
               lambda x: jaxgrad.group_norm(x, 3), lambda x: jaxgrad.layer_norm(x, (3, 2)))
        return ([jax.vmap(fn)(x) for fn in fns],
                [jnp.stack([fn(xi) for xi in x]) for fn in fns])

    for a, b in zip(*both(x)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# Only hand-written rules run, at every order.


NORM_IMPLS = ("_sum_over_impl", "_broadcast_over_impl", "_scale_impl",
              "_scale_input_grad_impl", "_scale_weight_grad_impl", "_add_bias_impl",
              "_scale_by_impl", "_shift_scale_impl", "_normalize_impl", "_rstd_impl",
              "_normalize_grad_impl", "moments")


def test_poison_fires_on_autodiff_of_an_implementation(monkeypatch):
    forbid_autodiff(monkeypatch, _norm, NORM_IMPLS)
    with pytest.raises(AssertionError, match="JAX autodiff reached"):
        jax.eval_shape(jax.grad(lambda x: _norm._normalize_impl(x, (0,), 1e-5).sum()),
                       jnp.ones(3))


def test_the_rules_call_the_guarded_implementations(monkeypatch):
    # The rules look their implementations up at call time: once guarded, the
    # forward runs the guard (it shows in the jaxpr), so the guard is not idle.
    x = jnp.ones((2, 3))
    before = str(jax.make_jaxpr(lambda x: jaxgrad.layer_norm(x, 3))(x))
    forbid_autodiff(monkeypatch, _norm, NORM_IMPLS)
    after = str(jax.make_jaxpr(lambda x: jaxgrad.layer_norm(x, 3))(x))
    assert "custom_jvp_call" not in before and "custom_jvp_call" in after


@pytest.mark.parametrize("name", list(CASES))
def test_second_order_runs_only_hand_written_rules(monkeypatch, name):
    forbid_autodiff(monkeypatch, _norm, NORM_IMPLS)
    case = CASES[name]
    run_second_order(case.ours, *(random(s, 91 + i) for i, s in enumerate(case.shapes)))


def test_third_order_runs_only_hand_written_rules(monkeypatch):
    forbid_autodiff(monkeypatch, _norm, NORM_IMPLS)

    def loss(x, w):
        y = jaxgrad.batch_norm(x, None, None, w, training=True)
        stats = jaxgrad.batch_norm_stats(x, jnp.zeros(3), jnp.ones(3))
        return jnp.sum(y ** 3) + jnp.sum(stats.running_var)

    def grad_norm(grad_fn):
        return lambda x, w: sum(jnp.sum(g ** 2) for g in grad_fn(x, w))

    first = jax.grad(loss, (0, 1))
    third = jax.grad(grad_norm(jax.grad(grad_norm(first), (0, 1))), (0, 1))
    jax.eval_shape(third, jnp.ones((2, 3, 4)), jnp.ones(3))


# --------------------------------------------------------------------------
# Errors.


X = jnp.ones((2, 3, 4))
ONES3 = jnp.ones(3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.batch_norm(jnp.ones(3), None, None, training=True), ValueError,
     r"batch_norm: `input` must be at least 2-D, \(N, C, \*spatial\), got shape \(3,\)"),
    (lambda: jaxgrad.batch_norm(jnp.ones(0), ONES3, ONES3), ValueError,
     r"batch_norm: `running_mean` must have shape \(0,\), one value per channel of "
     r"`input` \(shape \(0,\)\), got \(3,\)"),
    (lambda: jaxgrad.batch_norm(X, jnp.ones(4), ONES3), ValueError,
     r"batch_norm: `running_mean` must have shape \(3,\), one value per channel of "
     r"`input` \(shape \(2, 3, 4\)\), got \(4,\)"),
    (lambda: jaxgrad.batch_norm(X, ONES3, ONES3, jnp.ones((3, 1))), ValueError,
     r"batch_norm: `weight` must have shape \(3,\), .* got \(3, 1\)"),
    (lambda: jaxgrad.batch_norm(X, None, None), ValueError,
     r"batch_norm: `running_mean` and `running_var` must be given when `training` is "
     r"False, got None"),
    (lambda: jaxgrad.batch_norm(X, ONES3, None, training=True), ValueError,
     r"batch_norm: `running_var` must be an array when `running_mean` is given"),
    (lambda: jaxgrad.batch_norm(jnp.ones((1, 3, 1)), None, None, training=True), ValueError,
     r"batch_norm: `input` must have more than 1 value per channel when training .* "
     r"got shape \(1, 3, 1\)"),
    (lambda: jaxgrad.batch_norm(X, None, None, training=True, eps=0.0), ValueError,
     r"batch_norm: `eps` must be positive when `training` is True .*got 0.0"),
    (lambda: jaxgrad.batch_norm(X, ONES3, ONES3, eps=-1e-5), ValueError,
     r"batch_norm: `eps` must be >= 0 .*got -1e-05"),
    (lambda: jaxgrad.batch_norm(X, ONES3, ONES3, eps="1e-5"), TypeError,
     r"batch_norm: `eps` must be a real number, got str '1e-5'"),
    (lambda: jaxgrad.batch_norm(X, ONES3, ONES3, momentum=None), TypeError,
     r"batch_norm: `momentum` must be a real number, got NoneType None"),
    (lambda: jaxgrad.batch_norm(X, ONES3, ONES3, training=1), TypeError,
     r"batch_norm: `training` must be a bool, got int 1"),
    (lambda: jaxgrad.batch_norm(X, ONES3.astype(jnp.float32), ONES3), TypeError,
     r"batch_norm: `running_mean` must have the dtype of `input`, float64, got float32"),
    (lambda: jaxgrad.batch_norm(X.astype(jnp.bfloat16), ONES3, ONES3), TypeError,
     r"batch_norm: `running_mean` must have the dtype of `input`, bfloat16 \(or "
     r"float32\), got float64"),
    (lambda: jaxgrad.batch_norm(jnp.ones((2, 3), jnp.int32), None, None, training=True),
     TypeError, r"batch_norm: `input` must have a floating dtype"),
    (lambda: jaxgrad.batch_norm_stats(X, ONES3, ONES3, momentum="0.1"), TypeError,
     r"batch_norm_stats: `momentum` must be a real number or None, got str '0.1'"),
    (lambda: jaxgrad.batch_norm_stats(X, ONES3, ONES3, num_batches_tracked=1.0), TypeError,
     r"batch_norm_stats: `num_batches_tracked` must be None, an int or a 0-d integer "
     r"array, got float 1.0"),
    (lambda: jaxgrad.batch_norm_stats(X, ONES3, ONES3, num_batches_tracked=jnp.ones(2, int)),
     TypeError, r"batch_norm_stats: `num_batches_tracked` must be .* got int\d+ array of "
     r"shape \(2,\)"),
    (lambda: jaxgrad.batch_norm_stats(X, None, ONES3), ValueError,
     r"batch_norm_stats: `running_mean` must be an array when `running_var` is given"),
    (lambda: jaxgrad.batch_norm_stats(jnp.ones((1, 3)), ONES3, ONES3), ValueError,
     r"batch_norm_stats: `input` must have more than 1 value per channel"),
    (lambda: jaxgrad.instance_norm(jnp.ones((2, 3)), weight=ONES3), ValueError,
     r"instance_norm: `input` must have more than 1 spatial element when using input "
     r"statistics .*got shape \(2, 3\)"),
    (lambda: jaxgrad.instance_norm(X, use_input_stats=False), ValueError,
     r"instance_norm: `running_mean` and `running_var` must be given when "
     r"`use_input_stats` is False, got None"),
    (lambda: jaxgrad.instance_norm(X, jnp.ones(6), jnp.ones(6)), ValueError,
     r"instance_norm: `running_mean` must have shape \(3,\)"),
    (lambda: jaxgrad.instance_norm(jnp.ones(3)), ValueError,
     r"instance_norm: `input` must be at least 2-D"),
    (lambda: jaxgrad.instance_norm_stats(jnp.ones((2, 3, 1)), ONES3, ONES3), ValueError,
     r"instance_norm_stats: `input` must have more than 1 spatial element"),
    (lambda: jaxgrad.group_norm(jnp.ones((2, 6)), 4), ValueError,
     r"group_norm: the channels of `input` \(C=6, shape \(2, 6\)\) must be divisible by "
     r"`num_groups` \(=4\)"),
    (lambda: jaxgrad.group_norm(X, 0), ValueError,
     r"group_norm: `num_groups` must be positive, got 0"),
    (lambda: jaxgrad.group_norm(X, 1.5), TypeError,
     r"group_norm: `num_groups` must be an int, got float 1.5"),
    (lambda: jaxgrad.group_norm(jnp.ones(4), 2), ValueError,
     r"group_norm: `input` must be at least 2-D"),
    (lambda: jaxgrad.group_norm(jnp.ones((1, 2)), 2), ValueError,
     r"group_norm: `input` must have more than 1 value to normalise .*got shape \(1, 2\) "
     r"with num_groups=2"),
    (lambda: jaxgrad.group_norm(X, 3, bias=jnp.ones(4)), ValueError,
     r"group_norm: `bias` must have shape \(3,\)"),
    (lambda: jaxgrad.group_norm(X, 3, eps=float("nan")), ValueError,
     r"^group_norm: `eps` must be a number, got nan \(every output would be NaN\)$"),
    (lambda: jaxgrad.instance_norm(X, eps=float("nan")), ValueError,
     r"^instance_norm: `eps` must be a number, got nan \(every output would be NaN\)$"),
    (lambda: jaxgrad.batch_norm(X, None, None, training=True, eps=float("nan")), ValueError,
     r"^batch_norm: `eps` must be a number, got nan \(every output would be NaN\)$"),
    (lambda: jaxgrad.layer_norm(X, (3,)), ValueError,
     r"layer_norm: `input` must end in `normalized_shape` \(3,\), \(\*, 3\), got shape "
     r"\(2, 3, 4\)"),
    (lambda: jaxgrad.layer_norm(jnp.ones(4), (2, 4)), ValueError,
     r"layer_norm: `input` must end in `normalized_shape` \(2, 4\)"),
    (lambda: jaxgrad.layer_norm(X, ()), ValueError,
     r"layer_norm: `normalized_shape` must have at least one dim, got \(\)"),
    (lambda: jaxgrad.layer_norm(X, "4"), TypeError,
     r"layer_norm: `normalized_shape` must be an int, got str '4'"),
    (lambda: jaxgrad.layer_norm(X, (3, -4)), ValueError,
     r"layer_norm: `normalized_shape` must hold sizes >= 0, got \(3, -4\)"),
    (lambda: jaxgrad.layer_norm(X, (4,), jnp.ones(3)), ValueError,
     r"layer_norm: `weight` must have shape \(4,\), the `normalized_shape`, got \(3,\)"),
    (lambda: jaxgrad.layer_norm(X, 4, eps=float("nan")), ValueError,
     r"^layer_norm: `eps` must be a number, got nan \(every output would be NaN\)$"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_traced_static_argument_says_how_to_fix_it():
    with pytest.raises(TypeError, match=r"layer_norm: `eps` must be a real number known "
                                        r"at trace time .*static_argnames='eps'"):
        jax.jit(lambda x, eps: jaxgrad.layer_norm(x, 4, eps=eps))(X, 1e-5)


def test_python_lists_take_the_input_dtype():
    x = jnp.ones((2, 2), jnp.float32)
    y = jaxgrad.batch_norm(x, [0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.5, 0.5])
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, np.full((2, 2), 2 / np.sqrt(1 + 1e-5) + 0.5), rtol=1e-6)
