"""jaxgrad's losses against JAX autodiff of plain jnp formulas (float64).

The references below spell out torch's definitions (verified against torch in
``tests/torch/test_loss_torch.py``) with jnp and are differentiated by JAX.
Also: hand-computed values, finite differences to second order, out-of-range
targets, the class-weight guard, jit / vmap, dtypes, error wording, and a
check that grad-of-grad runs only hand-written rules.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad
from jaxgrad import _activation
from jaxgrad._loss import _binary, _classes, _kl, _regression
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff, run_second_order
from .test_activation import random

REDUCTIONS = ("none", "mean", "sum")


def plain_log_softmax(x):
    return x - jnp.log(jnp.sum(jnp.exp(x), axis=1, keepdims=True))


def plain_cross_entropy(x, target, weight, ignore_index, reduction, eps):
    """torch's definition for class-index targets, input (N, C, *d)."""
    logp, classes = plain_log_softmax(x), x.shape[1]
    active = target != ignore_index
    index = jnp.where(active, target, 0)
    w_t = jnp.where(active, weight[index], 0.0)
    picked = jnp.take_along_axis(logp, index[:, None], axis=1)[:, 0]
    smooth = jnp.sum(logp * weight.reshape((1, -1) + (1,) * (x.ndim - 2)), axis=1)
    loss = jnp.where(active, -(1 - eps) * w_t * picked - eps / classes * smooth, 0.0)
    if reduction == "none":
        return loss
    return jnp.sum(loss) / (jnp.sum(w_t) if reduction == "mean" else 1.0)


def plain_soft_cross_entropy(x, q, weight, reduction, eps):
    classes = x.shape[1]
    q = (1 - eps) * q + eps / classes
    w = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    loss = -jnp.sum(w * q * plain_log_softmax(x), axis=1)
    total = {"none": loss, "sum": jnp.sum(loss), "mean": jnp.mean(loss)}
    return total[reduction]


def all_reductions(loss):
    """args -> [*loss(args, "none").ravel(), loss(args, "mean"), loss(args, "sum")]."""
    return lambda *args: jnp.concatenate(
        [loss(*args, reduction=r).reshape(-1) for r in REDUCTIONS])


def derivatives(fn, args, cot, us):
    """Output, VJP and the gradient of Σ⟨VJP_k, u_k⟩ w.r.t. every argument and cot."""
    y, vjp = jax.vjp(fn, *args)

    def inner(*args_and_cot):
        *args, cot = args_and_cot
        return sum(jnp.sum(g * u) for g, u in zip(jax.vjp(fn, *args)[1](cot), us))

    grads = jax.grad(inner, argnums=tuple(range(len(args) + 1)))(*args, cot)
    return (y, *vjp(cot), *grads)


def compare_derivatives(ours, reference, args, cot_shape):
    cot = random(cot_shape, 100)
    us = [random(a.shape, 101 + i) for i, a in enumerate(args)]
    got = jax.jit(lambda *a: derivatives(ours, *a))(args, cot, us)
    want = jax.jit(lambda *a: derivatives(reference, *a))(args, cot, us)
    for i, (a, b) in enumerate(zip(got, want)):
        assert max_errors(a, b)[1] <= tolerance("float64"), f"result {i}"


TARGET = jnp.array([[0, 2], [-100, 1], [2, 2]])     # (N, d1) = (3, 2), one ignored
WEIGHT = jnp.array([0.5, 2.0, 1.25])


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_cross_entropy_against_plain_formula(eps):
    def ours(x, reduction):
        return jaxgrad.cross_entropy(x, TARGET, WEIGHT, reduction=reduction,
                                     label_smoothing=eps)

    def reference(x, reduction):
        return plain_cross_entropy(x, TARGET, WEIGHT, -100, reduction, eps)

    compare_derivatives(all_reductions(ours), all_reductions(reference),
                        (random((3, 3, 2), 0),), (8,))


def test_probability_targets_against_plain_formula():
    def ours(x, q, w, reduction):
        return jaxgrad.cross_entropy(x, q, w, reduction=reduction, label_smoothing=0.2)

    def reference(x, q, w, reduction):
        return plain_soft_cross_entropy(x, q, w, reduction, 0.2)

    args = (random((3, 4, 2), 1), random((3, 4, 2), 2), random((4,), 3))
    compare_derivatives(all_reductions(ours), all_reductions(reference), args, (8,))


@jax.jit
def _hand_computed_cases():
    logits = jnp.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    logp = jnp.log(jnp.array([[0.5, 0.5], [0.75, 0.25]]))
    return (jaxgrad.cross_entropy(logits, jnp.array([0, 0]), reduction="none"),
            jaxgrad.cross_entropy(jnp.zeros(2), jnp.array(1), label_smoothing=0.5),
            jaxgrad.nll_loss(logp, jnp.array([1, 0]), jnp.array([0.5, 2.0])),
            jaxgrad.mse_loss(jnp.array([1.0, 3.0]), jnp.zeros(2)))


def test_mse_loss_grad_at_python_floats():
    """d/ds (s - t)² = 2(s - t), d/dt = -2(s - t), d²/ds² = 2: hand-computed,
    with JAX handing the rules Python float subclasses."""
    assert jax.grad(lambda s: jaxgrad.mse_loss(s, 2.0))(0.5) == -3.0
    assert jax.grad(lambda t: jaxgrad.mse_loss(0.5, t))(2.0) == 3.0
    assert jax.grad(jax.grad(lambda s: jaxgrad.mse_loss(s, 2.0)))(0.5) == 2.0


def test_hand_computed_values():
    both, smoothed, weighted, mse = _hand_computed_cases()
    # -log ½ and -log ¾.
    np.testing.assert_allclose(both, [math.log(2), math.log(4 / 3)], rtol=1e-14)
    # Unbatched, smoothing ε = ½ over C = 2: ½·log 2 + ¼·(log 2 + log 2) = log 2.
    np.testing.assert_allclose(smoothed, math.log(2), rtol=1e-14)
    # Weighted mean: (w₁·(-log ½) + w₀·(-log ¾)) / (w₁ + w₀), w = (0.5, 2).
    np.testing.assert_allclose(weighted, (2 * math.log(2) + 0.5 * math.log(4 / 3)) / 2.5,
                               rtol=1e-14)
    np.testing.assert_allclose(mse, 5.0)


def test_all_ignored_mean_is_nan_with_zero_gradient():
    x, target = random((3, 4), 4), jnp.full((3,), -100)

    @jax.jit
    def run(x):
        loss, grad = jax.value_and_grad(
            lambda x: jaxgrad.cross_entropy(x, target, label_smoothing=0.1))(x)
        return loss, grad, jaxgrad.cross_entropy(x, target, reduction="sum")

    loss, grad, total = run(x)
    assert math.isnan(float(loss))
    assert jnp.all(grad == 0)
    assert float(total) == 0.0


def test_out_of_range_targets_give_nan():
    # Not checkable at trace time; the values say so instead of reading garbage.
    @jax.jit
    def run(x, target):
        losses = jaxgrad.cross_entropy(x, target, reduction="none")
        grad = jax.grad(lambda x: jaxgrad.nll_loss(x, target, reduction="sum"))(x)
        return losses, grad

    x = random((3, 4), 5)
    for bad in (4, -1, 100):
        losses, grad = run(x, jnp.array([0, bad, 2]))
        assert np.isnan(losses).tolist() == [False, True, False]
        assert np.isnan(grad).any(axis=1).tolist() == [False, True, False]


def test_check_grads_order_2():
    x, q, w = random((3, 3, 2), 6), random((3, 3, 2), 7), random((3,), 8)

    def losses(x, q, w):
        return jnp.stack([
            jaxgrad.cross_entropy(x, TARGET, WEIGHT, label_smoothing=0.2),
            jaxgrad.nll_loss(x, TARGET, WEIGHT, reduction="sum"),
            jaxgrad.cross_entropy(x, q, w, label_smoothing=0.1),
            jaxgrad.cross_entropy(x, q, reduction="sum"),     # no class weight
            jaxgrad.mse_loss(x, q, reduction="sum")])

    check_grads(jax.jit(losses), (x, q, w), order=2, modes=["rev"])


def assert_same_derivatives(ours, reference, x, t, seed: int, label=None, *more):
    """The loss, its VJP w.r.t. every argument (x, t and ``more``) and the second
    order (w.r.t. each and the cotangent) of two functions, equal to float64
    tolerance."""
    args = (x, t, *more)
    rng = np.random.default_rng(seed)
    us = [rng.standard_normal(a.shape) for a in args]
    argnums = tuple(range(len(args)))

    def derivatives(fn):
        y, vjp = jax.vjp(fn, *args)
        c = jnp.asarray(rng.standard_normal(y.shape))

        def inner(*args_and_c):
            *primals, c = args_and_c
            grads = jax.vjp(fn, *primals)[1](c)
            return sum(jnp.sum(g * u) for g, u in zip(grads, us))
        return (y, *vjp(c), *jax.grad(inner, argnums=argnums + (len(args),))(*args, c))
    rng_state = rng.bit_generator.state
    got = derivatives(ours)
    rng.bit_generator.state = rng_state       # the same cotangent for both
    want = derivatives(reference)
    for a, b in zip(got, want):
        assert max_errors(a, b)[1] <= tolerance("float64"), label


def test_pointwise_losses_against_autodiff_of_plain_formulas():
    # textbook ρ(x - t), reduced, differentiated by JAX (both arguments, second
    # order); the kinks are measure zero for these random inputs
    x, t = random((3, 4), 20), random((3, 4), 21)

    def huber(d, k):
        return jnp.where(jnp.abs(d) < k, 0.5 * d * d, k * (jnp.abs(d) - 0.5 * k))

    pairs = [
        (lambda x, t: jaxgrad.l1_loss(x, t), lambda x, t: jnp.mean(jnp.abs(x - t))),
        (lambda x, t: jaxgrad.smooth_l1_loss(x, t, reduction="sum", beta=0.8),
         lambda x, t: jnp.sum(huber(x - t, 0.8)) / 0.8),
        (lambda x, t: jaxgrad.huber_loss(x, t, "none", 0.5), lambda x, t: huber(x - t, 0.5)),
    ]
    for ours, ref in pairs:
        assert_same_derivatives(ours, ref, x, t, 22)
    check_grads(lambda x, t: jaxgrad.huber_loss(x, t, delta=0.5), (x, t), order=2,
                modes=["rev"])


def plain_bce(p, t, w):
    return -w * (t * jnp.log(p) + (1 - t) * jnp.log1p(-p))


def plain_bce_logits(x, t, w, pos):
    # log σ(x) = -softplus(-x): the textbook form of torch's definition
    return w * ((1 - t) * x + ((pos - 1) * t + 1) * jax.nn.softplus(-x))


def test_binary_cross_entropy_against_autodiff_of_plain_formulas():
    # probabilities away from 0 and 1 (the clamps do not act), logits of any
    # size; both arguments, every reduction, second order incl. the cotangent
    x, t = random((3, 4), 25), jax.nn.sigmoid(random((3, 4), 26))
    p = jax.nn.sigmoid(x)
    w, pos = jnp.exp(random((4,), 27)), jnp.exp(random((3, 1), 28))
    pairs = [
        (lambda p, t, r: jaxgrad.binary_cross_entropy(p, t, w, reduction=r), plain_bce, p,
         (w,)),
        (lambda x, t, r: jaxgrad.binary_cross_entropy_with_logits(x, t, reduction=r),
         plain_bce_logits, 4 * x, (1.0, 1.0)),
        (lambda x, t, r: jaxgrad.binary_cross_entropy_with_logits(
            x, t, w, reduction=r, pos_weight=pos), plain_bce_logits, 4 * x, (w, pos)),
    ]
    for reduction in REDUCTIONS:
        def reduce(e):
            return {"none": e, "sum": jnp.sum(e), "mean": jnp.mean(e)}[reduction]
        for ours, plain, a, consts in pairs:
            assert_same_derivatives(lambda a, t: ours(a, t, reduction),
                                    lambda a, t: reduce(plain(a, t, *consts)), a, t, 29,
                                    reduction)


def test_binary_cross_entropy_finite_differences_to_third_order():
    # the third order differentiates the hand-written second-order formulas
    x, t = random((2, 3), 32), jax.nn.sigmoid(random((2, 3), 33))
    check_grads(lambda p, t: jaxgrad.binary_cross_entropy(p, t, reduction="sum"),
                (jax.nn.sigmoid(x), t), order=3, modes=["rev"])
    check_grads(lambda x, t: jaxgrad.binary_cross_entropy_with_logits(
        x, t, pos_weight=jnp.array([0.5, 2.0, 3.0])), (x, t), order=3, modes=["rev"])


def test_binary_cross_entropy_hand_computed():
    # -log ½ = log 2 for x = ½; t = 1 at x = 0 is the clamp: log 0 -> -100
    x, t = jnp.array([0.5, 0.0, 0.25]), jnp.array([0.0, 1.0, 1.0])
    loss = jaxgrad.binary_cross_entropy(x, t, jnp.array([1.0, 1.0, 2.0]), reduction="none")
    assert np.allclose(loss, [math.log(2), 100.0, -2 * math.log(0.25)], rtol=1e-14)
    # logits: x = 0 is σ = ½; pos_weight 3 weighs the positive term only
    z = jaxgrad.binary_cross_entropy_with_logits(jnp.zeros(2), jnp.array([1.0, 0.0]),
                                                 reduction="none", pos_weight=jnp.array(3.0))
    assert np.allclose(z, [3 * math.log(2), math.log(2)], rtol=1e-14)
    # gradient w.r.t. the logit: (p·t + 1 - t)·σ(x) - p·t = 3·½ - 3 = -1.5, and ½
    g = jax.grad(lambda x: jaxgrad.binary_cross_entropy_with_logits(
        x, jnp.array([1.0, 0.0]), reduction="sum", pos_weight=jnp.array(3.0)))(jnp.zeros(2))
    assert np.allclose(g, [-1.5, 0.5], rtol=1e-14)


@pytest.mark.parametrize("fn, name", [
    (lambda w: jaxgrad.binary_cross_entropy(jnp.full(3, 0.5), jnp.ones(3), w), "weight"),
    (lambda w: jaxgrad.binary_cross_entropy_with_logits(jnp.ones(3), jnp.ones(3), w),
     "weight"),
    (lambda w: jaxgrad.binary_cross_entropy_with_logits(jnp.ones(3), jnp.ones(3),
                                                        pos_weight=w), "pos_weight"),
])
def test_binary_cross_entropy_weights_are_not_differentiable(fn, name):
    w = jnp.array([1.0, 2.0, 0.5])
    with pytest.raises(ValueError, match=(rf"binary_cross_entropy\w*: `{name}` is not "
                                          rf"differentiable \(as in torch\); wrap it in "
                                          rf"jax.lax.stop_gradient")):
        jax.eval_shape(jax.grad(fn), w)
    jax.eval_shape(jax.grad(lambda w: fn(jax.lax.stop_gradient(w))), w)


def test_class_weight_is_not_differentiable_for_index_targets():
    x = random((3, 3, 2), 9)
    message = (r"cross_entropy: `weight` is not differentiable with class-index "
               r"targets \(as in torch\); wrap it in jax.lax.stop_gradient")
    # The error is raised while tracing the backward pass: no need to run it.
    with pytest.raises(ValueError, match=message):
        jax.eval_shape(jax.grad(lambda w: jaxgrad.cross_entropy(x, TARGET, w)), WEIGHT)
    with pytest.raises(ValueError, match=r"nll_loss: `weight` is not differentiable"):
        jax.eval_shape(jax.grad(lambda w: jaxgrad.nll_loss(x, TARGET, w)), WEIGHT)
    # A constant weight (stop_gradient, or not differentiated) is fine.
    jax.eval_shape(jax.grad(
        lambda w: jaxgrad.cross_entropy(x, TARGET, jax.lax.stop_gradient(w))), WEIGHT)
    jax.eval_shape(jax.grad(lambda x, w: jaxgrad.cross_entropy(x, TARGET, w)), x, WEIGHT)


@jax.jit
def _no_class_derivatives(x, q, w):
    """Per reduction: loss, (x̄, q̄, w̄) for cotangent 1, and ∂Σ⟨ā, 1⟩/∂(cotangent)."""
    out = {}
    for reduction in REDUCTIONS:
        def loss(x, q, w, reduction=reduction):
            return jaxgrad.cross_entropy(x, q, w, reduction=reduction, label_smoothing=0.3)

        def penalty(c, reduction=reduction):
            grads = jax.vjp(lambda x, q, w: loss(x, q, w), x, q, w)[1](c)
            return sum(jnp.sum(g) for g in grads)

        y = loss(x, q, w)
        c = jnp.ones_like(y)
        out[reduction] = (y, jax.vjp(loss, x, q, w)[1](c), jax.grad(penalty)(c))
    return out


@pytest.mark.parametrize("shape", [(2, 0), (2, 0, 3), (0,)], ids=str)
def test_probability_targets_with_no_classes(shape):
    # C = 0: each position's loss is a sum over no classes, 0; "mean" divides
    # by numel/C = 0/0 (torch), so it is NaN. Every gradient array is empty
    # except the cotangent's, which again sums over no classes: 0, not NaN.
    x, q, w = jnp.zeros(shape), jnp.zeros(shape), jnp.zeros((0,))
    out = _no_class_derivatives(x, q, w)
    positions = shape[:1] + shape[2:] if len(shape) > 1 else ()
    for reduction, (y, grads, cot_grad) in out.items():
        value = {"none": np.zeros(positions), "sum": 0.0, "mean": math.nan}[reduction]
        np.testing.assert_array_equal(y, value, err_msg=reduction)
        assert [g.shape for g in grads] == [shape, shape, (0,)], reduction
        np.testing.assert_array_equal(cot_grad, np.zeros(np.shape(y)), err_msg=reduction)


# --------------------------------------------------------------------------
# Transformations, dtypes, integer targets.


def test_vmap_over_examples_matches_reduction_none():
    # Each example is unbatched: input (C,), scalar target.
    x, w = random((5, 4), 10), jnp.array([0.5, 2.0, 1.25, 1.0])
    target = jnp.array([0, 3, -100, 1, 2])

    @jax.jit
    def run(x, target):
        per_example = jax.vmap(lambda x, t: jaxgrad.cross_entropy(
            x, t, w, reduction="sum", label_smoothing=0.1))(x, target)
        batched = jaxgrad.cross_entropy(x, target, w, reduction="none",
                                        label_smoothing=0.1)
        return per_example, batched

    per_example, batched = run(x, target)
    np.testing.assert_allclose(per_example, batched, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved_to_second_order(dtype):
    def losses(x, q):
        return jnp.stack([
            jaxgrad.cross_entropy(x, TARGET.astype(jnp.int32), WEIGHT.astype(dtype),
                                  label_smoothing=0.1),
            jaxgrad.cross_entropy(x, q, reduction="sum"),
            jaxgrad.mse_loss(x, q)])

    args = (random((3, 3, 2), 11, dtype), random((3, 3, 2), 12, dtype))
    us = [random(a.shape, 13 + i, dtype) for i, a in enumerate(args)]
    outs = jax.jit(lambda *a: derivatives(losses, *a))(args, random((3,), 15, dtype), us)
    assert [o.dtype for o in outs] == [dtype] * 6


def test_any_integer_target_dtype():
    # torch accepts only int64 and uint8; JAX's default integer is int32.
    dtypes = (jnp.int8, jnp.uint8, jnp.int16, jnp.int32, jnp.int64)
    target = jnp.array([0, 3, 1])
    run = jax.jit(lambda x: [jaxgrad.cross_entropy(x, target.astype(d), reduction="none")
                             for d in dtypes])
    first, *others = run(random((3, 4), 16))
    for other in others:
        np.testing.assert_array_equal(other, first)


def test_second_order_runs_only_hand_written_rules(monkeypatch):
    forbid_autodiff(monkeypatch, _regression, (
        "_pointwise_impl", "_pointwise_grad_impl", "_weighted_impl", "_weighted_grad_impl"))
    forbid_autodiff(monkeypatch, _classes, (
        "_nll_forward_impl", "_nll_transpose_impl", "_soft_cross_entropy_impl",
        "_soft_cross_entropy_grad_impl"))
    forbid_autodiff(monkeypatch, _binary, ("_pair_impl", "_pair_grad_impl"))
    forbid_autodiff(monkeypatch, _kl, ("_kl_impl", "_kl_grad_impl"))
    forbid_autodiff(monkeypatch, _activation, ("_log_softmax_impl",
                                               "_log_softmax_grad_impl"))
    x, q, w = random((3, 3, 2), 17), random((3, 3, 2), 18), random((3,), 19)
    run_second_order(lambda x: jaxgrad.cross_entropy(x, TARGET, WEIGHT, reduction="none",
                                                     label_smoothing=0.2), x)
    run_second_order(lambda x, q, w: jaxgrad.cross_entropy(x, q, w, label_smoothing=0.1),
                     x, q, w)
    run_second_order(lambda x, q: jaxgrad.cross_entropy(x, q, reduction="none"), x, q)
    run_second_order(lambda x, t: jaxgrad.mse_loss(x, t, reduction="none"), x, q)
    p, t = jax.nn.sigmoid(x), jax.nn.sigmoid(q)
    run_second_order(lambda p, t: jaxgrad.binary_cross_entropy(p, t, w[:, None]), p, t)
    run_second_order(lambda x, t: jaxgrad.binary_cross_entropy_with_logits(
        x, t, reduction="sum", pos_weight=w[:, None] ** 2), x, t)
    run_second_order(lambda x, t: jaxgrad.kl_div(x, t, reduction="batchmean"), x, t * t)
    run_second_order(lambda x, t: jaxgrad.kl_div(x, t, log_target=True), x, q)
    run_second_order(lambda x, t, w: jaxgrad.l1_loss(x, t, weight=w), x, q, jnp.exp(x))
    run_second_order(lambda x, t, w: jaxgrad.huber_loss(x, t, "sum", 0.5, w), x, q, x * q)


# --------------------------------------------------------------------------
# Errors.

X, T = jnp.ones((3, 4)), jnp.array([0, 1, 2])


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.smooth_l1_loss(X, X, beta=-1.0), ValueError,
     r"smooth_l1_loss: `beta` must be >= 0 \(as torch requires\), got -1.0"),
    (lambda: jaxgrad.huber_loss(X, X, delta=0), ValueError,
     r"huber_loss: `delta` must be positive \(as torch requires\), got 0.0"),
    (lambda: jaxgrad.huber_loss(X, X, delta="1"), TypeError,
     r"huber_loss: `delta` must be a real number, got str '1'"),
    (lambda: jaxgrad.l1_loss(X, jnp.ones(4)), ValueError,
     r"l1_loss: `target` must have the shape of `input` \(3, 4\), got \(4,\)"),
    (lambda: jaxgrad.mse_loss(X, X, reduction="avg"), ValueError,
     r"mse_loss: `reduction` must be 'none', 'mean' or 'sum', got 'avg'"),
    (lambda: jaxgrad.mse_loss(X, jnp.ones(4)), ValueError,
     r"mse_loss: `target` must have the shape of `input` \(3, 4\), got \(4,\)"),
    (lambda: jaxgrad.mse_loss(X, X.astype(jnp.float32)), TypeError,
     (r"mse_loss: arguments must share one dtype, but `input` is float64, `target` is "
      r"float32")),
    (lambda: jaxgrad.mse_loss(X, X, "sum"), TypeError, r"positional argument"),
    (lambda: jaxgrad.nll_loss(X, T.astype(jnp.float64)), TypeError,
     r"nll_loss: `target` must hold integer class indices, got dtype float64"),
    (lambda: jaxgrad.nll_loss(X, jnp.array([0, 1])), ValueError,
     (r"nll_loss: `target` must have shape \(3,\) \(`input` \(3, 4\) without its class "
      r"dim\), got \(2,\)")),
    (lambda: jaxgrad.nll_loss(jnp.ones((2, 3, 5)), jnp.zeros((2, 3), jnp.int32)),
     ValueError, r"nll_loss: `target` must have shape \(2, 5\)"),
    (lambda: jaxgrad.nll_loss(jnp.ones(4), jnp.array([1])), ValueError,
     r"nll_loss: `target` must have shape \(\) "),
    (lambda: jaxgrad.nll_loss(jnp.ones(()), jnp.array(0)), ValueError,
     r"nll_loss: `input` must be \(N, C, \*d\) or unbatched \(C,\), got shape \(\)"),
    (lambda: jaxgrad.nll_loss(jnp.ones((3, 0)), T), ValueError,
     r"nll_loss: `input` must have at least one class, got shape \(3, 0\)"),
    (lambda: jaxgrad.nll_loss(X, T, jnp.ones(3)), ValueError,
     (r"nll_loss: `weight` must have shape \(4,\), one entry per class of `input` "
      r"\(3, 4\), got \(3,\)")),
    (lambda: jaxgrad.nll_loss(X, T, jnp.ones(4, jnp.float32)), TypeError,
     (r"nll_loss: arguments must share one dtype, but `input` is float64, `weight` is "
      r"float32")),
    (lambda: jaxgrad.nll_loss(X, T, ignore_index=1.0), TypeError,
     r"nll_loss: `ignore_index` must be an int, got float 1.0"),
    (lambda: jaxgrad.nll_loss(X, T, None, -100), TypeError, r"positional argument"),
    (lambda: jaxgrad.cross_entropy(X, T.astype(bool)), TypeError,
     (r"cross_entropy: `target` must be integer class indices or float class "
      r"probabilities, got dtype bool")),
    (lambda: jaxgrad.cross_entropy(X, "1"), TypeError,
     (r"cross_entropy: `target` must be integer class indices or float class "
      r"probabilities, got str")),
    (lambda: jaxgrad.cross_entropy(X, 1), ValueError,   # a Python int: a 0-d index array
     r"cross_entropy: `target` must have shape \(3,\) .*got \(\)"),
    (lambda: jaxgrad.cross_entropy(X, jnp.ones((3, 5))), ValueError,
     (r"cross_entropy: class-probability `target` must have the shape of `input` "
      r"\(3, 4\), got \(3, 5\)")),
    (lambda: jaxgrad.cross_entropy(X, X.astype(jnp.float32)), TypeError,
     (r"cross_entropy: arguments must share one dtype, but `input` is float64, "
      r"`target` is float32")),
    (lambda: jaxgrad.cross_entropy(X, X, ignore_index=3), ValueError,
     (r"cross_entropy: `ignore_index` is not supported with class-probability targets "
      r"\(it must be negative, e.g. the default -100\), got 3$")),
    (lambda: jaxgrad.cross_entropy(X, X, ignore_index=0), ValueError,
     r"cross_entropy: `ignore_index` is not supported .* got 0$"),
    (lambda: jaxgrad.cross_entropy(X, T, label_smoothing=1.5), ValueError,
     r"cross_entropy: `label_smoothing` must be in \[0, 1\], got 1.5"),
    (lambda: jaxgrad.cross_entropy(X, T, label_smoothing=-0.1), ValueError,
     r"cross_entropy: `label_smoothing` must be in \[0, 1\], got -0.1"),
    (lambda: jaxgrad.cross_entropy(X, T, label_smoothing="0.1"), TypeError,
     r"cross_entropy: `label_smoothing` must be a float, got str '0.1'"),
    (lambda: jaxgrad.cross_entropy(X, T, reduction=None), ValueError,
     r"cross_entropy: `reduction` must be 'none', 'mean' or 'sum', got None"),
    (lambda: jaxgrad.cross_entropy(jnp.ones(4, jnp.int32), jnp.array(1)), TypeError,
     r"cross_entropy: `input` must have a floating dtype"),
    (lambda: jaxgrad.binary_cross_entropy(X, jnp.ones((4, 3))), ValueError,
     r"binary_cross_entropy: `target` must have the shape of `input` \(3, 4\), got \(4, 3\)"),
    (lambda: jaxgrad.binary_cross_entropy(X, X, jnp.ones((3,))), ValueError,
     (r"binary_cross_entropy: `weight` must broadcast to the shape of `input` \(3, 4\), "
      r"got \(3,\)")),
    (lambda: jaxgrad.binary_cross_entropy(X, X, jnp.ones((1, 3, 4))), ValueError,
     r"binary_cross_entropy: `weight` must broadcast .* got \(1, 3, 4\)"),
    (lambda: jaxgrad.binary_cross_entropy(X, X.astype(jnp.float32)), TypeError,
     (r"binary_cross_entropy: arguments must share one dtype, but `input` is float64, "
      r"`target` is float32")),
    (lambda: jaxgrad.binary_cross_entropy(X, X, None, "sum"), TypeError,
     r"positional argument"),
    (lambda: jaxgrad.binary_cross_entropy(X, T), TypeError,
     r"binary_cross_entropy: `target` must have a floating dtype"),
    (lambda: jaxgrad.binary_cross_entropy_with_logits(X, X, reduction="avg"), ValueError,
     (r"binary_cross_entropy_with_logits: `reduction` must be 'none', 'mean' or 'sum', "
      r"got 'avg'")),
    (lambda: jaxgrad.binary_cross_entropy_with_logits(X, X, pos_weight=jnp.ones(3)),
     ValueError, (r"binary_cross_entropy_with_logits: `pos_weight` must broadcast to the "
                  r"shape of `input` \(3, 4\), got \(3,\)")),
    (lambda: jaxgrad.binary_cross_entropy_with_logits(
        X, X, pos_weight=jnp.ones(4, jnp.float32)), TypeError,
     (r"binary_cross_entropy_with_logits: arguments must share one dtype, but `input` is "
      r"float64, `pos_weight` is float32")),
    (lambda: jaxgrad.mse_loss(X, X, weight=jnp.ones(4)), ValueError,
     (r"mse_loss: `weight` must have the shape of `input` \(3, 4\) \(as torch requires\), "
      r"got \(4,\)")),
    (lambda: jaxgrad.l1_loss(X + 0j, X + 0j, weight=X + 0j), TypeError,
     r"l1_loss: `weight` must have a floating dtype"),
    (lambda: jaxgrad.l1_loss(X + 0j, X, weight=X.astype(jnp.float32)), TypeError,
     r"l1_loss: `weight` must have the loss's dtype float64, got float32"),
    (lambda: jaxgrad.kl_div(X, X, reduction="avg"), ValueError,
     r"kl_div: `reduction` must be 'none', 'mean', 'batchmean' or 'sum', got 'avg'"),
    (lambda: jaxgrad.kl_div(X, X, log_target=1), TypeError,
     r"kl_div: `log_target` must be a bool, got int 1"),
    (lambda: jaxgrad.kl_div(X, jnp.ones(4)), ValueError,
     r"kl_div: `target` must have the shape of `input` \(3, 4\), got \(4,\)"),
    (lambda: jaxgrad.kl_div(X, X.astype(jnp.float32)), TypeError,
     r"kl_div: arguments must share one dtype, but `input` is float64, `target` is float32"),
    (lambda: jaxgrad.kl_div(X, X, None, None, "sum"), TypeError, r"positional argument"),
    (lambda: jaxgrad.binary_cross_entropy_with_logits(X + 0j, X + 0j), TypeError,
     r"binary_cross_entropy_with_logits: `input` must have a floating dtype"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_binary_cross_entropy_with_logits_float32_second_order_for_large_logits():
    # ∂ρ_t/∂x = -σ(x) - p·(1 - σ(x)): 1 - σ(x) would cancel in float32 for
    # large x (5e-4 relative error at x = 12 with p = 1e4); σ(-x) keeps it exact
    x = np.linspace(8.0, 20.0, 7)
    t, p = np.full(7, 0.5), 1e4

    def mixed(x):
        grad_t = jax.grad(lambda x, t: jaxgrad.binary_cross_entropy_with_logits(
            x, t, reduction="sum", pos_weight=jnp.asarray(p, x.dtype)), argnums=1)
        return jax.grad(lambda x: jnp.sum(grad_t(x, jnp.asarray(t, x.dtype))))(x)

    s = 1 / (1 + np.exp(-x))
    exact = -s - p * np.exp(-x) / (1 + np.exp(-x))
    got = np.asarray(mixed(jnp.asarray(x, jnp.float32)), np.float64)
    assert np.abs(got / exact - 1).max() < 5e-7


def test_kl_div_against_autodiff_of_plain_formulas():
    # p·(log p - x) and e^t·(t - x) for p > 0, differentiated by JAX: both
    # arguments, every reduction, second order including the cotangent
    x, p = random((3, 4), 34), jnp.exp(random((3, 4), 35))
    sums = {"none": lambda e: e, "sum": jnp.sum, "mean": jnp.mean,
            "batchmean": lambda e: jnp.sum(e) / e.shape[0]}
    for log_target, t, plain in ((False, p, lambda x, t: t * (jnp.log(t) - x)),
                                 (True, jnp.log(p), lambda x, t: jnp.exp(t) * (t - x))):
        for reduction, reduce in sums.items():
            assert_same_derivatives(
                lambda x, t: jaxgrad.kl_div(x, t, reduction=reduction, log_target=log_target),
                lambda x, t: reduce(plain(x, t)), x, t, 36, (log_target, reduction))


def test_kl_div_hand_computed():
    # KL(p ‖ q) for p = (1, 0), q = (½, ½): log 2 (the p = 0 term is 0), "batchmean"
    # over N = 1; "mean" divides by all 2 elements; a 0-d input is not divided
    logq = jnp.log(jnp.array([[0.5, 0.5]]))
    p = jnp.array([[1.0, 0.0]])
    assert float(jaxgrad.kl_div(logq, p, reduction="batchmean")) == pytest.approx(math.log(2))
    assert float(jaxgrad.kl_div(logq, p)) == pytest.approx(math.log(2) / 2)
    assert float(jaxgrad.kl_div(jnp.array(-1.0), jnp.array(0.5), reduction="batchmean")) == \
        pytest.approx(0.5 * (math.log(0.5) + 1))
    # ∂/∂x = -p/N, ∂/∂p = log p + 1 - x (NaN at p = 0, as torch's autograd)
    gx, gp = jax.grad(lambda x, t: jaxgrad.kl_div(x, t, reduction="batchmean"),
                      argnums=(0, 1))(logq, p)
    assert np.allclose(gx, [[-1.0, 0.0]])
    assert np.isclose(gp[0, 0], 1 + math.log(2)) and np.isnan(gp[0, 1])


def test_weighted_pointwise_losses_against_autodiff_of_plain_formulas():
    # torch 2.13's `weight`: Σ w·ρ / Σ w for mse and l1 "mean", Σ w·ρ / n for
    # huber; all three arguments differentiated, second order
    x, t, w = random((3, 4), 39), random((3, 4), 40), jnp.exp(random((3, 4), 41))

    def huber(d):
        return jnp.where(jnp.abs(d) < 0.6, 0.5 * d * d, 0.6 * (jnp.abs(d) - 0.3))
    losses = {"mse_loss": (jaxgrad.mse_loss, lambda d: d * d, True),
              "l1_loss": (jaxgrad.l1_loss, jnp.abs, True),
              "huber_loss": (lambda *a, **k: jaxgrad.huber_loss(*a, delta=0.6, **k), huber,
                             False)}
    for name, (ours, rho, by_weight) in losses.items():
        for reduction in REDUCTIONS:
            def plain(x, t, w, rho=rho, reduction=reduction, by_weight=by_weight):
                e = w * rho(x - t)
                if reduction == "none":
                    return e
                return jnp.sum(e) / (jnp.sum(w) if by_weight else e.size) \
                    if reduction == "mean" else jnp.sum(e)
            assert_same_derivatives(
                lambda x, t, w, ours=ours, reduction=reduction: ours(
                    x, t, reduction=reduction, weight=w),
                plain, x, t, 42, (name, reduction), w)


def test_kl_div_log_target_takes_numpy_bools():
    # as every bool option of jaxgrad does (relu's inplace, interpolate's align_corners)
    x, t = jnp.log(jnp.array([0.25, 0.75])), jnp.log(jnp.array([0.5, 0.5]))
    assert float(jaxgrad.kl_div(x, t, log_target=np.True_)) == \
        float(jaxgrad.kl_div(x, t, log_target=True))
