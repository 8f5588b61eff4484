"""jaxgrad's losses vs PyTorch: forward, first- and second-order gradients.

Every configuration runs through ``check_parity`` in float64: the loss, its
VJP w.r.t. every differentiable argument (input; target for mse_loss and for
class-probability targets; weight for class-probability targets) and the
gradient of L2 = Σ ⟨ā, u_a⟩ w.r.t. those arguments and the cotangent.
Integer targets and index-target weights are constants here, as in torch.

To compile one program per configuration rather than three, each compares
the three reductions at once: the output is ``[*none.ravel(), mean, sum]``, so
every reduction's value is checked on its own and the gradients see a random
combination of all three.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad

from ._parity import check_parity
from .test_activation_torch import check_exact

REDUCTIONS = ("none", "mean", "sum")


def all_reductions(loss):
    """x -> [*loss(x, "none").ravel(), loss(x, "mean"), loss(x, "sum")]."""
    def run(*args):
        outs = [loss(*args, reduction=r).reshape(-1) for r in REDUCTIONS]
        return (torch.cat if isinstance(args[0], torch.Tensor) else jnp.concatenate)(outs)
    return run


def index_target(shape, classes: int, ignored: float, ignore_index: int, seed=0):
    """Random class indices of ``shape``; a fraction ``ignored`` set to ignore_index.

    A fraction strictly between 0 and 1 ignores the first position and keeps
    the last, so "some ignored" really means some, not none or all.
    """
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes, shape)
    mask = rng.random(shape) < ignored
    if 0 < ignored < 1:
        mask.flat[0], mask.flat[-1] = True, False
    return np.where(mask | (ignored >= 1), ignore_index, target)


def class_weight(classes: int, seed=1):
    return np.random.default_rng(seed).random(classes) + 0.5


def index_case(name, shape, *, weight=False, ignored=0.0, ignore_index=-100,
               eps=0.0):
    return pytest.param(shape, weight, ignored, ignore_index, eps, id=name)


# Class-index targets: (N, C), (N, C, d1, d2), unbatched (C,); class weights;
# some / all targets ignored; ignore_index inside [0, C); label smoothing
# alone (ε = 1) and combined with weights and ignored targets.
CE_INDEX_CASES = [
    index_case("NC", (5, 4)),
    index_case("NC weight some ignored", (6, 3), weight=True, ignored=0.4),
    index_case("NC all ignored", (3, 4), ignored=1.0),
    index_case("NC smoothing weight some ignored", (7, 5), weight=True, ignored=0.3,
               eps=0.25),
    index_case("NC smoothing weight all ignored", (3, 4), weight=True, ignored=1.0,
               eps=0.2),
    index_case("NC smoothing 1.0", (4, 3), eps=1.0),
    index_case("NC ignore_index=1 weight smoothing", (7, 3), weight=True, ignored=0.4,
               ignore_index=1, eps=0.1),
    index_case("NCd1d2 weight some ignored smoothing", (2, 3, 3, 2), weight=True,
               ignored=0.3, eps=0.15),
    index_case("unbatched weight smoothing", (4,), weight=True, eps=0.2),
    index_case("unbatched ignored", (4,), ignored=1.0),
]


def _index_args(shape, weight, ignored, ignore_index):
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = index_target(target_shape, classes, ignored, ignore_index)
    w = class_weight(classes) if weight else None
    return target, w


@pytest.mark.parametrize("shape, weight, ignored, ignore_index, eps", CE_INDEX_CASES)
def test_cross_entropy_index_targets(shape, weight, ignored, ignore_index, eps):
    target, w = _index_args(shape, weight, ignored, ignore_index)
    kwargs = {"ignore_index": ignore_index, "label_smoothing": eps}

    def jax_fn(x, reduction):
        return jaxgrad.cross_entropy(x, jnp.asarray(target),
                                     None if w is None else jnp.asarray(w),
                                     reduction=reduction, **kwargs)

    def torch_fn(x, reduction):
        return F.cross_entropy(x, torch.tensor(target),
                               None if w is None else torch.tensor(w),
                               reduction=reduction, **kwargs)

    check_parity(f"cross_entropy {shape} target={target.tolist()} {kwargs} "
                 f"weight={weight}", all_reductions(jax_fn), all_reductions(torch_fn),
                 {"x": shape})


NLL_CASES = [
    index_case("NC weight some ignored", (6, 3), weight=True, ignored=0.4),
    index_case("NC all ignored", (3, 4), ignored=1.0),
    index_case("NCd1d2 weight ignore_index=0", (2, 4, 2, 3), weight=True, ignored=0.3,
               ignore_index=0),
    index_case("unbatched", (5,)),
]


@pytest.mark.parametrize("shape, weight, ignored, ignore_index, eps", NLL_CASES)
def test_nll_loss(shape, weight, ignored, ignore_index, eps):
    target, w = _index_args(shape, weight, ignored, ignore_index)

    def jax_fn(x, reduction):
        return jaxgrad.nll_loss(x, jnp.asarray(target),
                                None if w is None else jnp.asarray(w),
                                ignore_index=ignore_index, reduction=reduction)

    def torch_fn(x, reduction):
        return F.nll_loss(x, torch.tensor(target), None if w is None else torch.tensor(w),
                          ignore_index=ignore_index, reduction=reduction)

    check_parity(f"nll_loss {shape} target={target.tolist()} ignore_index="
                 f"{ignore_index} weight={weight}", all_reductions(jax_fn),
                 all_reductions(torch_fn), {"x": shape})


# Class-probability targets: the target (and the weight, when given) are
# differentiable arguments. Random normal "probabilities" are fine: neither
# library normalises them, and they exercise the formula more than a simplex.
PROB_CASES = [
    pytest.param((5, 4), False, 0.0, id="NC"),
    pytest.param((2, 3, 2, 3), True, 0.1, id="NCd1d2 weight smoothing"),
    pytest.param((4,), True, 0.2, id="unbatched weight smoothing"),
]


@pytest.mark.parametrize("shape, weight, eps", PROB_CASES)
def test_cross_entropy_probability_targets(shape, weight, eps):
    shapes = {"x": shape, "q": shape}
    if weight:
        shapes["w"] = (shape[0] if len(shape) == 1 else shape[1],)

    def jax_fn(x, q, w=None, *, reduction):
        return jaxgrad.cross_entropy(x, q, w, reduction=reduction, label_smoothing=eps)

    def torch_fn(x, q, w=None, *, reduction):
        return F.cross_entropy(x, q, w, reduction=reduction, label_smoothing=eps)

    check_parity(f"cross_entropy probabilities {shape} eps={eps} weight={weight}",
                 all_reductions(jax_fn), all_reductions(torch_fn), shapes)


@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4)], ids=str)
def test_mse_loss(shape):
    check_parity(f"mse_loss {shape}", all_reductions(jaxgrad.mse_loss),
                 all_reductions(F.mse_loss), {"x": shape, "t": shape})


# --------------------------------------------------------------------------
# Special values and reduced precision.


INF = math.inf


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_infinite_logits(reduction):
    # -inf logits: at an ignored position (masked to 0, not 0·inf = NaN); at a
    # non-target class without smoothing (probability 0, finite loss); at the
    # target (loss inf). Huge finite logits must not overflow.
    x = np.array([[-INF, 0.0, 1.0], [2.0, -INF, 0.5], [1000.0, -1000.0, 0.0],
                  [0.0, 1.0, -INF]])
    target = np.array([0, 0, 1, -100])
    cot = np.random.default_rng(0).standard_normal(() if reduction != "none" else 4)
    check_exact(
        f"cross_entropy -inf {reduction}",
        lambda x: jaxgrad.cross_entropy(x, jnp.asarray(target), reduction=reduction),
        lambda x: F.cross_entropy(x, torch.tensor(target), reduction=reduction),
        {"x": x}, cot)


def test_nll_loss_zero_weight_mean_is_nan_like_torch():
    # Σ w_t over active targets is 0: torch gives NaN and NaN gradients at the
    # targets (0/0), zeros elsewhere.
    target, w = np.array([0, 1, 2]), np.array([0.0, 0.0, 0.0, 1.0])
    x = np.random.default_rng(0).standard_normal((3, 4))
    check_exact("nll_loss zero weights",
                lambda x: jaxgrad.nll_loss(x, jnp.asarray(target), jnp.asarray(w)),
                lambda x: F.nll_loss(x, torch.tensor(target), torch.tensor(w)),
                {"x": x}, np.array(0.7))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_losses_reduced_precision(dtype):
    target = index_target((4, 2), 3, 0.3, -100)
    w = class_weight(3)

    def losses(lib, x, q):
        if lib is jaxgrad:
            target_, weight_ = jnp.asarray(target), jnp.asarray(w, x.dtype)
            stack = jnp.stack
        else:
            target_, weight_, stack = torch.tensor(target), torch.tensor(w).to(x.dtype), torch.stack
        f = jaxgrad if lib is jaxgrad else F
        return stack([
            f.cross_entropy(x, target_, weight_, label_smoothing=0.1),
            f.cross_entropy(x, q, weight_, reduction="sum"),
            f.nll_loss(x, target_, weight_),
            f.mse_loss(x, q),
        ])

    check_parity(f"losses {dtype}", lambda x, q: losses(jaxgrad, x, q),
                 lambda x, q: losses(torch, x, q),
                 {"x": (4, 3, 2), "q": (4, 3, 2)}, dtype=dtype,
                 double=dtype == "float32")


# --------------------------------------------------------------------------
# Class-probability targets: -inf logits, empty inputs, ignore_index.
#
# With a -inf logit, log p = -inf: a second-order term that multiplies log p by
# a cotangent must not be formed when that cotangent is zero (0·(-inf) = NaN).
# torch forms none for an argument that does not require grad, or a weight that
# is None; jaxgrad drops the same terms. Each case differentiates a different
# subset of (x, q); the others are constants.

X_INF = np.array([[0.0, 1.0, -INF], [2.0, -INF, 0.5], [0.3, 0.1, -0.2]])
Q_INF = np.array([[0.2, 0.3, 0.5], [0.0, 0.4, 0.6], [0.1, 0.8, 0.1]])
W_INF = np.array([0.5, 2.0, 1.25])


def _probability_fns(differentiated, weight, **kwargs):
    """(jaxgrad, torch) losses of the arguments named in ``differentiated``;
    the others of (X_INF, Q_INF) and the weight W_INF (if any) are constants."""
    def make(lib, array):
        def fn(*args, reduction):
            values = {"x": array(X_INF), "q": array(Q_INF)}
            values.update(zip(differentiated, args))
            return lib.cross_entropy(values["x"], values["q"],
                                     array(W_INF) if weight else None,
                                     reduction=reduction, **kwargs)
        return all_reductions(fn)
    return make(jaxgrad, jnp.asarray), make(F, torch.tensor)


@pytest.mark.parametrize("differentiated, weight, kwargs", [
    pytest.param(("x",), False, {}, id="x, no weight"),
    pytest.param(("x",), True, {"label_smoothing": 0.2}, id="x, weight, smoothing"),
    pytest.param(("x", "q"), False, {"ignore_index": -1}, id="x q, ignore_index=-1"),
    pytest.param(("q",), True, {}, id="q, weight"),
])
def test_probability_targets_with_minus_inf_logits(differentiated, weight, kwargs):
    ours, theirs = _probability_fns(differentiated, weight, **kwargs)
    args = {name: {"x": X_INF, "q": Q_INF}[name] for name in differentiated}
    cot = np.random.default_rng(0).standard_normal(X_INF.shape[0] + 2)
    check_exact(f"cross_entropy probabilities -inf {differentiated} weight={weight} "
                f"{kwargs}", ours, theirs, args, cot)


def _losses_of(name, **kwargs):
    def make(lib):
        return all_reductions(lambda *args, reduction: getattr(lib, name)(
            *args, reduction=reduction, **kwargs))
    return make(jaxgrad), make(F)


# Empty inputs, to second order: "mean" is NaN (torch divides by numel/C =
# 0/0), its derivative w.r.t. the cotangent is a sum over nothing, 0.
@pytest.mark.parametrize("name, shapes, kwargs", [
    pytest.param("mse_loss", {"x": (0, 3), "t": (0, 3)}, {}, id="mse_loss N=0"),
    pytest.param("cross_entropy", {"x": (0, 3), "q": (0, 3), "w": (3,)},
                 {"label_smoothing": 0.2}, id="probabilities N=0 weight smoothing"),
    pytest.param("cross_entropy", {"x": (2, 0), "q": (2, 0), "w": (0,)},
                 {"label_smoothing": 0.2}, id="probabilities C=0 weight smoothing"),
    pytest.param("cross_entropy", {"x": (2, 0, 3), "q": (2, 0, 3)}, {},
                 id="probabilities C=0 d1=3"),
    pytest.param("cross_entropy", {"x": (0,), "q": (0,)}, {},
                 id="probabilities unbatched C=0"),
])
def test_empty_losses(name, shapes, kwargs):
    ours, theirs = _losses_of(name, **kwargs)
    rng = np.random.default_rng(0)
    args = {k: rng.standard_normal(s) for k, s in shapes.items()}
    out_shape = theirs(*(torch.tensor(a) for a in args.values())).shape
    check_exact(f"{name} empty {shapes} {kwargs}", ours, theirs, args,
                rng.standard_normal(out_shape))


@pytest.mark.parametrize("ignore_index", [0, 3])
def test_ignore_index_with_probability_targets_is_rejected_like_torch(ignore_index):
    x, q = np.zeros((2, 4)), np.full((2, 4), 0.25)
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating"):
        F.cross_entropy(torch.tensor(x), torch.tensor(q), ignore_index=ignore_index)
    with pytest.raises(ValueError, match=rf"cross_entropy: `ignore_index` .* got "
                                         rf"{ignore_index}$"):
        jaxgrad.cross_entropy(jnp.asarray(x), jnp.asarray(q), ignore_index=ignore_index)


# --------------------------------------------------------------------------
# The pointwise regression losses beside mse_loss: l1, smooth l1, huber.

POINTWISE = {
    "l1_loss": (jaxgrad.l1_loss, F.l1_loss),
    "smooth_l1_loss beta=0.7": (lambda x, t, **k: jaxgrad.smooth_l1_loss(x, t, beta=0.7, **k),
                                lambda x, t, **k: F.smooth_l1_loss(x, t, beta=0.7, **k)),
    "smooth_l1_loss beta=0": (lambda x, t, **k: jaxgrad.smooth_l1_loss(x, t, beta=0, **k),
                              lambda x, t, **k: F.smooth_l1_loss(x, t, beta=0.0, **k)),
    "huber_loss delta=0.6": (lambda x, t, **k: jaxgrad.huber_loss(x, t, delta=0.6, **k),
                             lambda x, t, **k: F.huber_loss(x, t, delta=0.6, **k)),
}


@pytest.mark.parametrize("name", list(POINTWISE))
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4), (0, 3)], ids=str)
def test_pointwise_losses(name, shape):
    # both arguments, every reduction, second order
    ours, theirs = POINTWISE[name]
    check_parity(f"{name} {shape}", all_reductions(ours), all_reductions(theirs),
                 {"x": shape, "t": shape})


@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_losses_special_values(name):
    # ±inf and NaN differences and the kinks: d = 0, ±β, ±δ (torch's l1
    # gradient is 0 at 0 and at NaN, the others' NaN; every ρ″ is 0 at NaN)
    ours, theirs = POINTWISE[name]
    d = np.array([-INF, -2.0, -0.7, -0.6, -0.5, -0.0, 0.0, 0.5, 0.6, 0.7, 2.0, INF,
                  math.nan, 0.3])
    # a random target where it cannot move the kinks (x - t is then d exactly)
    t = np.where(np.abs(d) >= 1, np.random.default_rng(0).standard_normal(d.shape), 0.0)
    x = d + t
    cot = np.random.default_rng(1).standard_normal(d.shape)
    check_exact(f"{name} special", lambda x, t: ours(x, t, reduction="none"),
                lambda x, t: theirs(x, t, reduction="none"), {"x": x, "t": t}, cot)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pointwise_losses_reduced_precision(dtype):
    def stacked(losses):
        def run(x, t):
            outs = [fn(x, t, reduction="sum").reshape(1) for fn in losses]
            return (torch.cat if isinstance(x, torch.Tensor) else jnp.concatenate)(outs)
        return run
    check_parity(f"pointwise losses {dtype}", stacked([o for o, _ in POINTWISE.values()]),
                 stacked([t for _, t in POINTWISE.values()]), {"x": (3, 5), "t": (3, 5)},
                 dtype=dtype, double=dtype == "float32")


# --------------------------------------------------------------------------
# Binary cross-entropy, of probabilities and of logits.
#
# check_parity draws standard normal arguments; a probability is made of one
# by the same rational map in both frameworks, p(z) = z²/(1 + z²) in [0, 1).

def _probability(z):
    return z * z / (1 + z * z)


def _bce_losses(lib, x, t, z, weight_shape):
    """[bce, bce weighted, logits, logits weighted, logits pos_weight, both], all
    reductions; weight and pos_weight constants (torch refuses to differentiate them)."""
    rng = np.random.default_rng(7)
    w = rng.uniform(0.5, 2.0, weight_shape)
    p = rng.uniform(0.25, 3.0, x.shape[-1:])
    const = ((lambda a: jnp.asarray(a, x.dtype)) if lib is jaxgrad
             else (lambda a: torch.tensor(a).to(x.dtype)))
    f = jaxgrad if lib is jaxgrad else F
    prob, target = _probability(x), _probability(t)
    outs = []
    for reduction in REDUCTIONS:
        outs += [f.binary_cross_entropy(prob, target, reduction=reduction),
                 f.binary_cross_entropy(prob, target, const(w), reduction=reduction),
                 f.binary_cross_entropy_with_logits(z, target, reduction=reduction),
                 f.binary_cross_entropy_with_logits(z, target, const(w), reduction=reduction),
                 f.binary_cross_entropy_with_logits(z, target, reduction=reduction,
                                                    pos_weight=const(p)),
                 f.binary_cross_entropy_with_logits(z, target, const(w), reduction=reduction,
                                                    pos_weight=const(p))]
    cat = jnp.concatenate if lib is jaxgrad else torch.cat
    return cat([o.reshape(-1) for o in outs])


@pytest.mark.parametrize("shape, weight_shape", [((), ()), ((7,), (1,)), ((2, 3, 4), (3, 1)),
                                                 ((0, 3), (3,))], ids=str)
def test_binary_cross_entropy(shape, weight_shape):
    # input, target (and the logits) differentiated, every reduction, second order
    check_parity(f"binary cross-entropy {shape} weight {weight_shape}",
                 lambda x, t, z: _bce_losses(jaxgrad, x, t, z, weight_shape),
                 lambda x, t, z: _bce_losses(torch, x, t, z, weight_shape),
                 {"x": shape, "t": shape, "z": shape})


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_binary_cross_entropy_reduced_precision(dtype):
    check_parity(f"binary cross-entropy {dtype}",
                 lambda x, t, z: _bce_losses(jaxgrad, x, t, z, (4,)),
                 lambda x, t, z: _bce_losses(torch, x, t, z, (4,)),
                 {"x": (3, 4), "t": (3, 4), "z": (3, 4)}, dtype=dtype,
                 double=dtype == "float32")


# x at and within torch's clamps (1e-12 of 0 and 1: log at -100, the gradient's
# max(x(1 - x), 1e-12)), where ρ_t = -logit x is ±inf; first with both
# arguments differentiated, then with the target a constant, where torch forms
# no second-order term from it (ρ_tx·0 would be ±inf·0 = NaN).
BCE_X = np.array([0.0, 1e-13, 5e-12, 0.5, 1.0, 1 - 1e-13, 0.0, 1.0, 0.3, 1e-300])
BCE_T = np.array([1.0, 0.3, 0.0, 0.2, 0.0, 0.5, 0.0, 1.0, 0.0, 1.0])
# logits: ±inf and NaN (torch's (1 - t)·x - logσ(x) is NaN at 0·inf), saturation
LOGIT_X = np.array([INF, INF, -INF, -INF, 1000.0, -1000.0, math.nan, 0.0, 30.0, -30.0])
LOGIT_T = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.5, math.nan, 0.3, 0.7])


def check_target_kept_or_not(config, loss, x, t, cot, target_differentiated: bool):
    """check_exact of ``loss(lib, x, t)`` (lib jaxgrad or F) with both arguments
    differentiated, or with the target a constant: then torch forms no term
    from it, and neither may jaxgrad (a materialised zero times ±inf is NaN)."""
    if target_differentiated:
        check_exact(config, lambda x, t: loss(jaxgrad, x, t), lambda x, t: loss(F, x, t),
                    {"x": x, "t": t}, cot)
    else:
        check_exact(f"{config}, constant target", lambda x: loss(jaxgrad, x, jnp.asarray(t)),
                    lambda x: loss(F, x, torch.tensor(t)), {"x": x}, cot)


@pytest.mark.parametrize("target_differentiated", [True, False])
def test_binary_cross_entropy_special_values(target_differentiated):
    pos = np.linspace(0.5, 3.0, LOGIT_X.size)
    cases = [(BCE_X, BCE_T, lambda lib, x, t: lib.binary_cross_entropy(x, t, reduction="none")),
             (LOGIT_X, LOGIT_T, lambda lib, x, t: lib.binary_cross_entropy_with_logits(
                 x, t, reduction="none")),
             (LOGIT_X, LOGIT_T, lambda lib, x, t: lib.binary_cross_entropy_with_logits(
                 x, t, reduction="none",
                 pos_weight=jnp.asarray(pos) if lib is jaxgrad else torch.tensor(pos)))]
    cot = np.random.default_rng(3).standard_normal(BCE_X.shape)
    for i, (x, t, loss) in enumerate(cases):
        check_target_kept_or_not(f"bce special {i}", loss, x, t, cot, target_differentiated)


def test_binary_cross_entropy_outside_unit_interval_is_nan():
    # torch refuses such values at run time; jaxgrad cannot see them at trace
    # time, so their loss and gradient are NaN (the others unaffected)
    x, t = jnp.array([1.5, -0.25, 0.5, 0.5, 0.5]), jnp.array([0.5, 0.5, 1.25, -1.0, 0.5])
    for xv, tv in zip(x.tolist(), t.tolist()):
        if (xv, tv) != (0.5, 0.5):
            with pytest.raises(RuntimeError, match="should be between 0 and 1"):
                F.binary_cross_entropy(torch.tensor([xv]), torch.tensor([tv]))
    loss = jaxgrad.binary_cross_entropy(x, t, reduction="none")
    grads = jax.grad(lambda x, t: jaxgrad.binary_cross_entropy(x, t, reduction="sum"),
                     argnums=(0, 1))(x, t)
    assert np.isnan(np.asarray(loss[:4])).all()
    assert float(loss[4]) == pytest.approx(math.log(2), rel=1e-12)   # -log ½
    for g in grads:   # ρ_x = (x - t)/(x(1 - x)) and ρ_t = -logit x, 0 at x = t = ½
        assert np.isnan(np.asarray(g[:4])).all() and float(g[4]) == 0.0
    assert np.isnan(float(jaxgrad.binary_cross_entropy(x, t)))


def _third_order(lib, loss, x, t, g, u, v, a, b, c):
    """∂/∂(x, t, g) of ⟨∂/∂(x, t, g) ⟨(x̄, t̄), (u, v)⟩, (a, b, c)⟩: every third
    derivative, contracted (the second order's formulas differentiated)."""
    if lib is jaxgrad:
        def second(x, t, g):
            xb, tb = jax.vjp(loss, x, t)[1](g)
            return jnp.sum(xb * u) + jnp.sum(tb * v)

        def contracted(x, t, g):
            dx, dt, dg = jax.grad(second, argnums=(0, 1, 2))(x, t, g)
            return jnp.sum(dx * a) + jnp.sum(dt * b) + jnp.sum(dg * c)
        return [np.asarray(r) for r in jax.grad(contracted, argnums=(0, 1, 2))(x, t, g)]
    xs = [torch.tensor(np.asarray(z), requires_grad=True) for z in (x, t, g)]
    tu, tv, ta, tb, tc = (torch.tensor(np.asarray(z)) for z in (u, v, a, b, c))
    xb, tb_ = torch.autograd.grad(loss(xs[0], xs[1]), xs[:2], xs[2], create_graph=True)
    d = torch.autograd.grad((xb * tu).sum() + (tb_ * tv).sum(), xs, create_graph=True)
    out = torch.autograd.grad((d[0] * ta).sum() + (d[1] * tb).sum() + (d[2] * tc).sum(), xs,
                              materialize_grads=True)
    return [o.numpy() for o in out]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_third_order(reduction):
    # torch differentiates its double-backward formulas; jaxgrad's third order
    # is JAX's derivative of the hand-written second order. Logits at exactly 0
    # too (a zero-initialised layer), where a formula with ties at 0 (min(x, 0),
    # |x|) would be differentiated one-sidedly.
    rng = np.random.default_rng(11)
    z = np.array([0.0, -0.0, 1.5, -2.0, 0.25, 6.0])
    q = rng.uniform(0.05, 0.95, z.shape)
    p = np.array([0.2, 0.7, 0.4, 0.9, 0.5, 0.3])
    pos = np.array([2.0, 0.5, 1.0, 3.0, 2.0, 0.25])
    u, v, a, b = (rng.standard_normal(z.shape) for _ in range(4))
    g_shape = z.shape if reduction == "none" else ()
    g, c = rng.standard_normal(g_shape), rng.standard_normal(g_shape)
    cases = {
        "probabilities": (lambda lib: lambda x, t: lib.binary_cross_entropy(
            x, t, reduction=reduction), p),
        "logits": (lambda lib: lambda x, t: lib.binary_cross_entropy_with_logits(
            x, t, reduction=reduction), z),
        "logits pos_weight": (lambda lib: lambda x, t: lib.binary_cross_entropy_with_logits(
            x, t, reduction=reduction,
            pos_weight=jnp.asarray(pos) if lib is jaxgrad else torch.tensor(pos)), z),
    }
    for name, (make, x) in cases.items():
        ours = _third_order(jaxgrad, make(jaxgrad), x, q, g, u, v, a, b, c)
        ref = _third_order(torch, make(F), x, q, g, u, v, a, b, c)
        for arg, mine, theirs in zip("xtg", ours, ref):
            np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {reduction} third order, {arg}")


def test_binary_cross_entropy_with_logits_infinite_pos_weight():
    # torch's autograd adds p·(σ - 1) and -σ, and p·σ(-x): ±inf, not inf - inf
    x, t = np.array([0.5, 40.0, -3.0]), np.array([1.0, 1.0, 0.25])
    check_exact("bce logits pos_weight inf",
                lambda x, t: jaxgrad.binary_cross_entropy_with_logits(
                    x, t, reduction="none", pos_weight=jnp.array([jnp.inf])),
                lambda x, t: F.binary_cross_entropy_with_logits(
                    x, t, reduction="none", pos_weight=torch.tensor([math.inf])),
                {"x": x, "t": t}, np.array([1.0, -0.5, 2.0]))


# --------------------------------------------------------------------------
# kl_div: probabilities (t = p(z) ≥ 0 from the same map) and log-probabilities.

KL_REDUCTIONS = ("none", "mean", "batchmean", "sum")


def _kl_losses(lib, x, t):
    f = jaxgrad if lib is jaxgrad else F
    outs = [f.kl_div(x, _probability(t), reduction=r) for r in KL_REDUCTIONS]
    outs += [f.kl_div(x, t, reduction=r, log_target=True) for r in KL_REDUCTIONS]
    return (jnp.concatenate if lib is jaxgrad else torch.cat)([o.reshape(-1) for o in outs])


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4), (0, 3), (3, 0)], ids=str)
def test_kl_div(shape):
    check_parity(f"kl_div {shape}", lambda x, t: _kl_losses(jaxgrad, x, t),
                 lambda x, t: _kl_losses(torch, x, t), {"x": shape, "t": shape})


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_kl_div_reduced_precision(dtype):
    check_parity(f"kl_div {dtype}", lambda x, t: _kl_losses(jaxgrad, x, t),
                 lambda x, t: _kl_losses(torch, x, t), {"x": (3, 4), "t": (3, 4)},
                 dtype=dtype, double=dtype == "float32")


def _kl_none(log_target: bool):
    return lambda lib, x, t: lib.kl_div(x, t, reduction="none", log_target=log_target)


@pytest.mark.parametrize("target_differentiated", [True, False])
def test_kl_div_special_values(target_differentiated):
    # p = 0 (loss 0, ∂/∂p NaN: torch's autograd of xlogy(p, p)), p < 0, ±inf and
    # NaN; log-targets ±inf, e^t overflowing (torch's grouping of the terms
    # that meet exp(t) decides inf against NaN)
    x = np.array([-1.0, -2.0, 0.5, -0.3, -INF, -1.0, -INF, math.nan, -1.0])
    p = np.array([0.3, 0.0, 0.2, -0.1, 0.5, INF, 0.0, 0.5, math.nan])
    log_p = np.array([-1.0, -INF, 0.5, INF, -2.0, 30.0, math.nan, 0.0, 800.0])
    cot = np.random.default_rng(5).standard_normal(x.shape)
    for t, log_target in ((p, False), (log_p, True)):
        check_target_kept_or_not(f"kl_div special log_target={log_target}",
                                 _kl_none(log_target), x, t, cot, target_differentiated)


# --------------------------------------------------------------------------
# torch 2.13's `weight` of mse_loss, l1_loss and huber_loss: of input's shape,
# differentiated; "mean" is Σ w·ρ / Σ w for mse and l1, Σ w·ρ / n for huber.

def _weighted_losses(lib, x, t, w):
    f = jaxgrad if lib is jaxgrad else F
    weight = 0.5 + w * w                    # away from Σ w = 0
    outs = []
    for reduction in REDUCTIONS:
        outs += [f.mse_loss(x, t, reduction=reduction, weight=weight),
                 f.l1_loss(x, t, reduction=reduction, weight=weight),
                 f.huber_loss(x, t, reduction, 0.6, weight)]
    return (jnp.concatenate if lib is jaxgrad else torch.cat)([o.reshape(-1) for o in outs])


@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4), (0, 3)], ids=str)
def test_weighted_pointwise_losses(shape):
    check_parity(f"weighted pointwise losses {shape}",
                 lambda x, t, w: _weighted_losses(jaxgrad, x, t, w),
                 lambda x, t, w: _weighted_losses(torch, x, t, w),
                 {"x": shape, "t": shape, "w": shape})


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_weighted_pointwise_losses_reduced_precision(dtype):
    check_parity(f"weighted pointwise losses {dtype}",
                 lambda x, t, w: _weighted_losses(jaxgrad, x, t, w),
                 lambda x, t, w: _weighted_losses(torch, x, t, w),
                 {"x": (3, 5), "t": (3, 5), "w": (3, 5)}, dtype=dtype,
                 double=dtype == "float32")


def test_weighted_pointwise_losses_special_weights():
    # weights summing to 0 ("mean" is x/0 for mse and l1, as in torch), zero,
    # negative and inf weights, and the kinks d = 0, ±δ
    d = np.array([0.0, 0.6, -0.6, 2.0, -1.5, 0.3])
    t = np.random.default_rng(2).standard_normal(d.shape)
    for w, double in ((np.array([1.0, -1.0, 2.0, -2.0, 0.5, -0.5]), False),
                      (np.array([0.0, 1.0, INF, 2.0, -3.0, 0.25]), True)):
        for name in ("mse_loss", "l1_loss", "huber_loss"):
            kw = {"delta": 0.6} if name == "huber_loss" else {}

            def run(lib, name=name, kw=kw):
                return lambda x, t, w: getattr(lib, name)(x, t, reduction="mean", weight=w,
                                                          **kw).reshape(1)
            # Σ w = 0: first order only (every second-order term is inf or NaN,
            # in an order-dependent mix)
            check_exact(f"{name} weight {w}", run(jaxgrad), run(F),
                        {"x": d + t, "t": t, "w": w}, np.array([1.5]), double=double)


def test_kl_div_follows_torchs_autograd_graph():
    # torch differentiates xlogy(p, p) - p·x (e^t·(t - x)) with autograd: a zero
    # cotangent at a negative or zero target gives 0 (xlogy(0, p)), not 0·NaN; an
    # infinite one NaN (xlogy(inf, 1)); g scales (t - x) before e^t multiplies
    # it (finite where e^t·(t - x) alone overflows); p² is never formed (tiny
    # and huge p keep ∂²/∂p² = 1/p)
    x = np.array([-2.0, -1.0, -1.0, 0.5, -1.0, -3.0])
    p = np.array([-0.5, 0.3, 0.0, 1e-200, 1e200, 1.0])
    cot = np.array([0.0, 1.0, 0.0, 2.0, -1.0, INF])
    log_x = np.array([-1.0, 0.0, -1.0, 0.0, 3.0, -1.0])
    log_p = np.array([708.0, 0.0, 709.5, 800.0, -INF, 0.5])
    log_cot = np.array([1e-3, 1.0, 0.0, 0.5, 2.0, INF])
    for x_, t_, c, log_target in ((x, p, cot, False), (log_x, log_p, log_cot, True)):
        for both in (True, False):
            check_target_kept_or_not(f"kl_div log_target={log_target}", _kl_none(log_target),
                                     x_, t_, c, both)
    # float32: p² would underflow at p = 1e-20 (-inf instead of 1e20)
    p32 = jnp.array([1e-20, 0.25], jnp.float32)
    hess = jax.grad(lambda p: jnp.sum(jax.grad(lambda p: jaxgrad.kl_div(
        jnp.full(2, -1.0, jnp.float32), p, reduction="sum"))(p)))(p32)
    np.testing.assert_allclose(np.asarray(hess), [1e20, 4.0], rtol=1e-6)
