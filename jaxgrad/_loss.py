"""Losses with PyTorch's semantics and explicit, twice-differentiable VJPs.

  mse_loss(x, t)          e = (x - t)², reduced
  l1_loss, smooth_l1_loss, huber_loss
                          e = ρ(x - t), reduced (|d|, and its smoothed forms)
  nll_loss(x, t)          ℓ_i = -w_{t_i}·x[i, t_i]   (x holds log-probabilities)
  cross_entropy(x, t)     nll_loss(log_softmax(x, 1), t), with label smoothing,
                          or  ℓ_i = -Σ_c w_c q̃[i, c]·log_softmax(x)[i, c]
                          for class-probability targets q

Notation: classes c lie on axis 1 of the input, C of them; i runs over every
other position (the batch n and any extra dims d1, d2, ...), so the input is
(N, C, *d) and a class-index target is (N, *d). w is the class weight (ones
when absent), ε the label smoothing, g the cotangent of the loss. Reductions
follow torch exactly: "none" keeps ℓ_i, "sum" is Σ_i ℓ_i, and "mean" is

  Σ_i ℓ_i / Σ_{i active} w_{t_i}   for class-index targets (active: t_i ≠ ignore_index)
  Σ_i ℓ_i / (numel(input) / C)      for class-probability targets (C = 1 for mse_loss)

so a batch in which every target is ignored has mean NaN (and gradient 0), and
so does an empty input (N = 0, or C = 0 classes: 0/0).

Index-target losses are linear in the log-probabilities: one custom_vjp pair,
``nll_forward`` (a gather along the class axis) and ``nll_transpose`` (the
matching scatter), each the VJP of the other. ``cross_entropy`` composes it
with ``log_softmax_core``, so every rule that runs is written out here or in
``_activation``. Half-precision arrays are computed in float32 and cast back.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from . import _rules
from ._activation import (_logsigmoid, _sigmoid, _sigmoid_grad, compute_dtype,
                          log_softmax_core)
from ._sharding import contraction_sharding
from ._args import check_same_dtype, check_static, float_arrays, parse_bool
from ._loss_args import (_check_ignore_index, _check_index_target, _check_input,
                         _check_label_smoothing, _check_weight, _describe_dtype,
                         _is_integer, _num_classes, _numpy_dtype, check_reduction,
                         loss_arrays)
from ._typing import Array, ArrayLike



@dataclasses.dataclass(frozen=True)
class LossSpec:
    """Static loss configuration (hashable, so it can be a nondiff argument).

    Attributes:
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      ignore_index: class index whose targets contribute nothing.
      label_smoothing: ε in [0, 1].
    """

    reduction: str
    ignore_index: int = -100
    label_smoothing: float = 0.0


def _loss_scale(reduction: str, numel: int, classes: int = 1) -> float:
    """k, the factor of Σ_i ℓ_i in the loss value: 1, or C/numel for "mean".

    torch divides by numel(input)/C, the number of positions (numel for
    mse_loss, C = 1); an empty input gives 0/0 = NaN, not an error.
    """
    if reduction != "mean":
        return 1.0
    return classes / numel if numel else math.nan


def _grad_scale(reduction: str, numel: int, classes: int = 1) -> float:
    """k as it enters the derivatives: 0 instead of NaN for an empty input.

    Every derivative term carries k times one entry of the input (or of a
    cotangent laid out like it): ∂/∂g = k·Σ_{i,c} (...)[i, c]. With no entries
    that is a sum over nothing, 0 whatever k is (torch gives 0); multiplying an
    empty sum by k = NaN would make it NaN. Elsewhere k only scales empty
    arrays, so any value is right there.
    """
    if reduction == "mean" and not numel:
        return 0.0
    return _loss_scale(reduction, numel, classes)


def _upcast(*arrays):
    return tuple(a.astype(compute_dtype(a)) for a in arrays)


def _upcast_optional(weight):
    return None if weight is None else _upcast(weight)[0]


# --------------------------------------------------------------------------
# Pointwise regression losses: mse_loss, l1_loss, smooth_l1_loss, huber_loss.
# Elementwise e_i = ρ(d_i), d = x - t, reduced with scale s (1/n for "mean",
# else 1) and ĝ_i the cotangent broadcast to e's shape:
#   x̄_i = s·ĝ_i·ρ′(d_i),      t̄_i = -x̄_i.
# Second order: z = (z_x, z_t) = (s·ĝ·ρ′(d), -s·ĝ·ρ′(d)), with cotangents
# (h_x, h_t) and h = h_x - h_t:
#   ∂⟨z, h⟩/∂x = s·ĝ·ρ″(d)·h,   ∂/∂t = -s·ĝ·ρ″(d)·h,   ∂/∂g_i = s·Σ h·ρ′(d) over
# the positions g_i was broadcast to (itself for "none", all for "sum"/"mean").
# For "mean" over an empty array the value's s is 1/0 → NaN (torch), but each
# derivative is a sum of no terms, 0: they use s = 0 there (``_grad_scale``).
#
#   mse_loss          ρ = d²                              ρ′ = 2d                ρ″ = 2
#   l1_loss           ρ = |d|                             ρ′ = sign d (0 at 0, NaN)  ρ″ = 0
#   smooth_l1 (β > 0) ρ = ½d²/β (|d| < β), |d| - ½β       ρ′ = d/β, ±1 (|d| >= β)    ρ″ = 1/β (|d| < β), 0
#   huber (δ > 0)     ρ = ½d² (|d| < δ), δ(|d| - ½δ)      ρ′ = d, ±δ (|d| >= δ)      ρ″ = 1 (|d| < δ), 0
#
# each with torch's formula and tests, so a NaN difference gives ρ′ = 0 for
# l1 (torch's sign) and NaN for the other two, and ρ″ = 0 at NaN.
#
# Complex l1_loss (torch takes it): ρ = |d| is real, and so is the loss. In
# JAX's convention a cotangent c of z pairs as Re(c·dz), so with u = d/|d|
# (torch's sgn, 0 at d = 0) d|d| = Re(ū·dd) gives ρ′ = ū, x̄ = s·ĝ·ū, t̄ = -x̄.
# Second order: Φ = Re Σ h·x̄ (h = h_x - h_t) = s·ĝ·Re(h̄·u), and
# du = (dd - u·Re(ū·dd))/|d|, so
#   ∂Φ/∂x = s·ĝ·(h̄ - Re(h̄·u)·ū)/|d|  (0 at d = 0, as torch's),  ∂/∂t = -∂/∂x,
#   ∂Φ/∂g_i = s·Σ Re(h·ū)   (real: g is).
# For real d, u = ±1 and the first is 0: the real l1's ρ″ = 0.


@dataclasses.dataclass(frozen=True)
class Pointwise:
    """ρ, ρ′ and ρ″ of a pointwise loss, each called as ``fn(d, *params)``;
    ``d2=None`` declares ρ″ ≡ 0 (exact zeros, as torch's l1 double backward)."""

    name: str
    rho: Callable
    d1: Callable
    d2: Callable | None
    params: tuple = ()
    complex_ok: bool = False


def _reduce(e, reduction: str, scale: float):
    """e itself for "none", else scale·Σ e."""
    if reduction == "none":
        return e
    total = jnp.sum(e)
    return total * scale if reduction in ("mean", "batchmean") else total


def _expand(g, shape, reduction: str, scale: float):
    """ĝ·s: the loss cotangent broadcast back to the elementwise shape, scaled."""
    if reduction == "none":
        return g
    return jnp.broadcast_to(g * scale, shape)


def _real_dtype(dtype):
    """``dtype``, or the real dtype of its parts for a complex one."""
    return jnp.finfo(dtype).dtype


def _pointwise_impl(x, t, reduction: str, loss: Pointwise):
    xc, tc = _upcast(x, t)
    e = loss.rho(xc - tc, *loss.params)
    loss_dtype = _real_dtype(jnp.result_type(x, t))
    return _reduce(e, reduction, _loss_scale(reduction, e.size)).astype(loss_dtype)


def _pointwise_bwd(residuals, g, reduction, loss):
    x, t = residuals
    return pointwise_grad(x, t, g, reduction, loss)


def _cotangent(v, primal):
    """``v`` as the cotangent of ``primal``: its real part for a real primal
    met by a complex argument (complex l1_loss takes a real target or input,
    as torch does), in the primal's dtype."""
    if jnp.iscomplexobj(v) and not jnp.iscomplexobj(primal):
        v = jnp.real(v)
    return v.astype(primal.dtype)


def _pointwise_grad_impl(x, t, g, reduction: str, loss: Pointwise):
    xc, tc, gc = _upcast(x, t, g)
    scaled = _expand(gc, x.shape, reduction, _grad_scale(reduction, x.size))
    z = scaled * loss.d1(xc - tc, *loss.params)
    return _cotangent(z, x), _cotangent(-z, t)


def _pointwise_grad_bwd(residuals, cts, reduction, loss):
    x, t, g = residuals
    with _rules.own_promotion():
        h, scale = cts[0] - cts[1], _grad_scale(reduction, x.size)
        d = x - t
        if jnp.iscomplexobj(d):
            x_bar = _expand(g, x.shape, reduction, scale) * _abs_curvature(d, h)
        elif loss.d2 is None:
            x_bar = jnp.zeros_like(x)
        else:
            x_bar = _expand(g, x.shape, reduction, scale) * loss.d2(d, *loss.params) * h
        g_bar = _reduce(jnp.real(h * loss.d1(d, *loss.params)), reduction, scale)
        return _cotangent(x_bar, x), _cotangent(-x_bar, t), g_bar


# pointwise(x, t, reduction, loss): reduce(ρ(x - t)), explicit VJP w.r.t. x and t;
# pointwise_grad(x, t, g, reduction, loss): (x̄, t̄) = (s·ĝ·ρ′(x - t), -s·ĝ·ρ′(x - t)).
pointwise = _rules.explicit(_pointwise_impl, _pointwise_bwd, static=2)
pointwise_grad = _rules.explicit(_pointwise_grad_impl, _pointwise_grad_bwd, static=2)



# Weighted pointwise losses: torch 2.13's `weight` of mse_loss, l1_loss and
# huber_loss, an array of x's shape, differentiated like x and t (torch composes
# these with autograd). e_i = w_i·ρ(d_i), reduced by "none", "sum", "mean" (Σe/n:
# huber_loss) or "wmean" (Σe/W, W = Σw: mse_loss and l1_loss). With s = 1, 1,
# 1/n for the first three and ĝ the cotangent broadcast to e's shape:
#
#   x̄ = s·ĝ·w·ρ′,  t̄ = -x̄,  w̄ = s·ĝ·ρ                 and for "wmean", L = Σe/W:
#   x̄ = ĝ·w·ρ′/W,  t̄ = -x̄,  w̄ = ĝ·(ρ - L)/W
#
# Second order, cotangents (h_x, h_t, h_w), h = h_x - h_t; ∂/∂x = ∂/∂d and
# ∂/∂t = -∂/∂d:
#
#   ∂/∂d = s·ĝ·(w·ρ″·h + ρ′·h_w),   ∂/∂w = s·ĝ·ρ′·h,   ∂/∂g = s·reduce(w·ρ′·h + ρ·h_w)
#
# and for "wmean", with A = Σ w·ρ′·h, B = Σ h_w·(ρ - L), H = Σ h_w:
#
#   ∂/∂g = (A + B)/W
#   ∂/∂d = (ĝ/W)·(w·ρ″·h + ρ′·h_w - H·w·ρ′/W)
#   ∂/∂w = (ĝ/W)·(ρ′·h - (A + B)/W - H·(ρ - L)/W)
#
# (∂L/∂d_i = w_i·ρ′_i/W and ∂L/∂w_i = (ρ_i - L)/W give the H terms.) For complex
# l1, ρ′ = ū as above, w·ρ″·h is w times ``_abs_curvature(d, h)``, and each
# product of ρ′ with a cotangent that pairs with a real quantity (A, ∂/∂w,
# ∂/∂g) is its real part.


def _real(v):
    return jnp.real(v) if jnp.iscomplexobj(v) else v


def _curvature(loss: Pointwise, d, h):
    """ρ″·h, the second-order term of ρ at d for a cotangent h of d."""
    if jnp.iscomplexobj(d):
        return _abs_curvature(d, h)
    if loss.d2 is None:
        return jnp.zeros_like(h)
    return loss.d2(d, *loss.params) * h


def _weighted_scale(reduction: str, w, grad: bool):
    """s for the linear reductions, 1/W for "wmean" (W = Σw, an array)."""
    if reduction == "wmean":
        return 1 / jnp.sum(w)
    return (_grad_scale if grad else _loss_scale)(reduction, w.size)


def _as_reduction(reduction: str) -> str:
    return "mean" if reduction == "wmean" else reduction


def _weighted_impl(x, t, w, reduction: str, loss: Pointwise):
    (xc, tc, wc) = _upcast(x, t, w)
    e = wc * loss.rho(xc - tc, *loss.params)
    out = _reduce(e, _as_reduction(reduction), _weighted_scale(reduction, wc, False))
    return out.astype(w.dtype)


def _weighted_bwd(residuals, g, reduction, loss):
    x, t, w = residuals
    return weighted_grad(x, t, w, g, reduction, loss)


def _weighted_grad_impl(x, t, w, g, reduction: str, loss: Pointwise):
    xc, tc, wc, gc = _upcast(x, t, w, g)
    d = xc - tc
    sg = _expand(gc, x.shape, _as_reduction(reduction), _weighted_scale(reduction, wc, True))
    rho, rho1 = loss.rho(d, *loss.params), loss.d1(d, *loss.params)
    z = sg * wc * rho1
    w_bar = sg * rho
    if reduction == "wmean":
        # ĝ·ρ/W - ĝ·S/W², the two terms torch's autograd adds (so a zero ρ at
        # W = 0 gives NaN there, as torch's, not -L/W)
        total = jnp.sum(wc)
        w_bar = w_bar - gc * jnp.sum(wc * rho) / (total * total)
    return _cotangent(z, x), _cotangent(-z, t), w_bar.astype(w.dtype)


def _weighted_grad_bwd(residuals, cts, reduction, loss):
    x, t, w, g = residuals
    with _rules.own_promotion():
        h, h_w = cts[0] - cts[1], cts[2]
        d = x - t
        rho, rho1 = loss.rho(d, *loss.params), loss.d1(d, *loss.params)
        by_w = _real(rho1 * h)                          # ρ′·h, paired with w and g
        if reduction != "wmean":
            scale = _grad_scale(reduction, x.size)
            sg = _expand(g, x.shape, reduction, scale)
            d_bar = sg * (w * _curvature(loss, d, h) + rho1 * h_w)
            w_bar = sg * by_w
            g_bar = _reduce(w * by_w + rho * h_w, reduction, scale)
        else:
            inv = 1 / jnp.sum(w)
            dev = rho - jnp.sum(w * rho) * inv            # ρ - L
            a_plus_b = jnp.sum(w * by_w) + jnp.sum(h_w * dev)
            big_h = jnp.sum(h_w)
            g_bar = a_plus_b * inv
            d_bar = g * inv * (w * _curvature(loss, d, h) + rho1 * h_w
                               - big_h * w * rho1 * inv)
            w_bar = g * inv * (by_w - a_plus_b * inv - big_h * dev * inv)
        return (_cotangent(d_bar, x), _cotangent(-d_bar, t), w_bar.astype(w.dtype),
                g_bar.astype(g.dtype))


# weighted(x, t, w, reduction, loss): reduce(w·ρ(x - t)), explicit VJP w.r.t. x, t, w;
# weighted_grad(x, t, w, g, reduction, loss): (x̄, t̄, w̄).
weighted = _rules.explicit(_weighted_impl, _weighted_bwd, static=2)
weighted_grad = _rules.explicit(_weighted_grad_impl, _weighted_grad_bwd, static=2)

def _sign(d):
    # torch's sign: 0 at ±0 and at NaN; for complex d, ū = conj(d)/|d| (torch's
    # sgn conjugated into JAX's convention), 0 at 0
    if jnp.iscomplexobj(d):
        size = jnp.abs(d)
        zero = size == 0
        return jnp.where(zero, 0, jnp.conj(d) / jnp.where(zero, 1, size).astype(d.dtype))
    one = jnp.ones_like(d)
    return jnp.where(d > 0, one, jnp.where(d < 0, -one, jnp.zeros_like(d)))


def _abs_curvature(d, h):
    """(h̄ - Re(h̄·u)·ū)/|d| for u = d/|d|: the second-order term of a complex |d|
    (0 at d = 0, as torch's)."""
    size = jnp.abs(d)
    zero = size == 0
    safe = jnp.where(zero, 1, size).astype(d.dtype)
    u, hb = d / safe, jnp.conj(h)
    out = (hb - jnp.real(hb * u).astype(d.dtype) * jnp.conj(u)) / safe
    return jnp.where(zero, 0, out)


def _smooth_l1(d, beta: float):
    z = jnp.abs(d)
    return jnp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def _smooth_l1_d1(d, beta: float):
    one = jnp.ones_like(d)
    return jnp.where(d <= -beta, -one, jnp.where(d >= beta, one, d / beta))


def _smooth_l1_d2(d, beta: float):
    return jnp.where(jnp.abs(d) < beta, jnp.full_like(d, 1 / beta), jnp.zeros_like(d))


def _huber(d, delta: float):
    z = jnp.abs(d)
    return jnp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))


def _huber_d1(d, delta: float):
    bound = jnp.full_like(d, delta)
    return jnp.where(d <= -delta, -bound, jnp.where(d >= delta, bound, d))


def _huber_d2(d, delta: float):
    return jnp.where(jnp.abs(d) < delta, jnp.ones_like(d), jnp.zeros_like(d))


SQUARED = Pointwise("mse_loss", lambda d: d ** 2, lambda d: 2 * d, lambda d: jnp.full_like(d, 2))
ABSOLUTE = Pointwise("l1_loss", jnp.abs, _sign, None, complex_ok=True)


# --------------------------------------------------------------------------
# Binary cross-entropy: pointwise losses of two arguments. e_i = w_i·ρ(x_i, t_i)
# (w the `weight` broadcast to x's shape, 1 when absent), reduced with scale s
# as above; ĝ the cotangent broadcast to e's shape, ρ_x = ∂ρ/∂x, ρ_t = ∂ρ/∂t:
#
#   x̄ = s·ĝ·w·ρ_x,      t̄ = s·ĝ·w·ρ_t
#
# Second order, cotangents (h_x, h_t) of (x̄, t̄):
#
#   ∂/∂x = s·ĝ·w·(ρ_xx·h_x + ρ_tx·h_t),     ∂/∂t = s·ĝ·w·ρ_xt·h_x,
#   ∂/∂g = s·Σ w·(ρ_x·h_x + ρ_t·h_t)   (over the positions g was broadcast to)
#
# with ρ_xx = ∂ρ_x/∂x, ρ_xt = ∂ρ_x/∂t, ρ_tx = ∂ρ_t/∂x as torch's double
# backward computes them (both losses are affine in t, so ∂ρ_t/∂t = 0). ρ_t and
# ρ_tx are ±inf where a probability x is 0 or 1: a cotangent known to be zero
# (an output nobody differentiates) forms no term, as in torch, rather than
# 0·inf = NaN. w and pos_weight are constants: torch refuses to differentiate
# them, and so does ``_constant`` at the public boundary.
#
# binary_cross_entropy, x and t probabilities (E = float32(1e-12), ε = 1e-12):
#   ρ    = (t - 1)·max(log1p(-x), -100) - t·max(log x, -100)
#   ρ_x  = (x - t) / max(x(1 - x), E)          ρ_t  = -logit x = -log(x / (1 - x))
#   ρ_xx = (x² - 2xt + t) / ((x + ε)²·(1 - x + ε)²)
#   ρ_xt = -1 / max(x(1 - x), ε)                ρ_tx = -1 / (x(1 - x))
#   and in ∂/∂g, ρ_x as (x - t) / ((x + ε)·(1 - x + ε))
# (away from the clamps, within 1e-12 of 0 and 1, these are ρ_x and its exact
# derivatives: ρ_xx = (x² - 2xt + t)/(x(1 - x))², ρ_xt = ρ_tx = -1/(x(1 - x));
# within them they are torch's values, which differ by up to 10% or more);
# every quantity is NaN where x or t lies outside [0, 1], which torch refuses
# at run time and which cannot be seen at trace time.
#
# binary_cross_entropy_with_logits, x a logit, p = pos_weight, l = (p - 1)·t + 1;
# without p (torch's own formulas, not p = 1 substituted):
#   ρ    = (1 - t)·x - l·logσ(x)               (1 - t)·x - logσ(x)
#   ρ_x  = (p·t + 1 - t)·σ(x) - p·t            σ(x) - t
#   ρ_t  = logσ(-x) - p·logσ(x)                -x
#   ρ_xx = (p·t + 1 - t)·σ(x)·(1 - σ(x))       σ(x)·(1 - σ(x))
#   ρ_xt = p·(σ(x) - 1) - σ(x)                 -1
#   ρ_tx = -σ(x) - p·σ(-x)                     -1
# (ρ_x: (1 - t) - l·(1 - σ) = lσ - p·t; ρ_t: -x - (p - 1)·logσ(x), which is
# logσ(-x) - p·logσ(x) since logσ(-x) = logσ(x) - x.)


@dataclasses.dataclass(frozen=True)
class PairLoss:
    """ρ(x, t) and its derivatives, each called as ``fn(x, t, p)`` (p the
    broadcast ``pos_weight``, or None); ``dx_g``, where given, is ρ_x as it
    enters ∂/∂g (torch's double backward clamps it differently from the first
    order); ``domain(x, t)``, where given, is the mask outside which every
    quantity is NaN."""

    name: str
    rho: Callable
    dx: Callable
    dt: Callable
    dxx: Callable
    dxt: Callable
    dtx: Callable
    dx_g: Callable | None = None
    domain: Callable | None = None


def _weigh(v, w):
    """v·w, or v itself when there is no weight."""
    return v if w is None else v * w


def _on_domain(loss: PairLoss, x, t, v):
    return v if loss.domain is None else jnp.where(loss.domain(x, t), v, jnp.nan)


def _pair_scale(reduction: str, shape: tuple, *, grad: bool) -> float:
    """k for the pair losses: 1/numel for "mean", 1/N for kl_div's "batchmean"
    (N = shape[0]; a 0-d input is not divided, as in torch), else 1. For an
    empty "mean" k is NaN for the value (0/0) and 0 for the derivatives (see
    ``_grad_scale``); "batchmean" with N = 0 is NaN in both, as torch's, which
    divides the sum by N after reducing (its ∂/∂g is then 0/0)."""
    if reduction != "batchmean":
        return (_grad_scale if grad else _loss_scale)(reduction, math.prod(shape))
    if not shape:
        return 1.0
    return 1 / shape[0] if shape[0] else math.nan


def _pair_impl(x, t, w, p, reduction: str, loss: PairLoss):
    (xc, tc), wc, pc = _upcast(x, t), _upcast_optional(w), _upcast_optional(p)
    e = _weigh(_on_domain(loss, xc, tc, loss.rho(xc, tc, pc)), wc)
    return _reduce(e, reduction, _pair_scale(reduction, x.shape, grad=False)).astype(x.dtype)


def _pair_bwd(residuals, g, reduction, loss):
    x, t, w, p = residuals
    return (*pair_grad(x, t, w, p, g, reduction, loss), None, None)


def _pair_grad_impl(x, t, w, p, g, reduction: str, loss: PairLoss):
    (xc, tc, gc), wc, pc = _upcast(x, t, g), _upcast_optional(w), _upcast_optional(p)
    sg = _weigh(_expand(gc, x.shape, reduction, _pair_scale(reduction, x.shape, grad=True)),
                wc)
    x_bar = _on_domain(loss, xc, tc, sg * loss.dx(xc, tc, pc))
    t_bar = _on_domain(loss, xc, tc, sg * loss.dt(xc, tc, pc))
    return x_bar.astype(x.dtype), t_bar.astype(t.dtype)


def _pair_grad_bwd(residuals, cts, reduction, loss):
    x, t, w, p, g = residuals
    h_x, h_t = cts   # None: a symbolic zero, no term
    with _rules.own_promotion():
        (xc, tc, gc), wc, pc = _upcast(x, t, g), _upcast_optional(w), _upcast_optional(p)
        scale = _pair_scale(reduction, x.shape, grad=True)
        sg = _weigh(_expand(gc, x.shape, reduction, scale), wc)
        x_bar = t_bar = per = None
        hx = None if h_x is None else _upcast(h_x)[0]
        ht = None if h_t is None else _upcast(h_t)[0]
        if hx is not None:
            x_bar = sg * loss.dxx(xc, tc, pc) * hx
            t_bar = sg * loss.dxt(xc, tc, pc) * hx
            per = (loss.dx_g or loss.dx)(xc, tc, pc) * hx
        if ht is not None:
            x_bar = _add(x_bar, sg * loss.dtx(xc, tc, pc) * ht)
            per = _add(per, loss.dt(xc, tc, pc) * ht)

        def finish(v, like):
            return None if v is None else _on_domain(loss, xc, tc, v).astype(like.dtype)
        g_bar = None
        if per is not None:
            g_bar = _reduce(_weigh(finish(per, gc), wc), reduction, scale).astype(g.dtype)
        return finish(x_bar, x), finish(t_bar, t), None, None, g_bar


# pair(x, t, w, p, reduction, loss): reduce(w·ρ(x, t)), explicit VJP w.r.t. x and t
# (w, p: constants or None); pair_grad(x, t, w, p, g, reduction, loss): (x̄, t̄).
pair = _rules.explicit(_pair_impl, _pair_bwd, static=2)
pair_grad = _rules.explicit(_pair_grad_impl, _pair_grad_bwd, static=2, symbolic_zeros=True)


_EPS32 = float(np.float32(1e-12))   # torch's first-order clamp, a float constant


def _unit_interval(x, t):
    return (x >= 0) & (x <= 1) & (t >= 0) & (t <= 1)


def _bce(x, t, p):
    return (t - 1) * jnp.maximum(jnp.log1p(-x), -100) - t * jnp.maximum(jnp.log(x), -100)


def _bce_dx(x, t, p):
    return (x - t) / jnp.maximum((1 - x) * x, _EPS32)


def _bce_dt(x, t, p):
    return -jnp.log(x / (1 - x))


def _one_minus_plus_eps(x):
    """(1 - x) + 1e-12, rounded in that order: XLA's simplifier would otherwise
    fold it into (1 + 1e-12) - x, which is 1.0000889e-12 at x = 1, not 1e-12."""
    return lax.optimization_barrier(1 - x) + 1e-12


def _bce_dxx(x, t, p):
    a, b = x + 1e-12, _one_minus_plus_eps(x)
    return (x * x - 2 * x * t + t) / (a * a * (b * b))


def _bce_dxt(x, t, p):
    return -1 / jnp.maximum((1 - x) * x, 1e-12)


def _bce_dtx(x, t, p):
    return -1 / (x * (1 - x))


def _bce_dx_g(x, t, p):
    return (x - t) / ((x + 1e-12) * _one_minus_plus_eps(x))


BINARY = PairLoss("binary_cross_entropy", _bce, _bce_dx, _bce_dt, _bce_dxx, _bce_dxt,
                  _bce_dtx, _bce_dx_g, _unit_interval)


def _minus_one(x, t, p):
    return jnp.full_like(x, -1)


LOGITS = PairLoss(
    "binary_cross_entropy_with_logits",
    lambda x, t, p: (1 - t) * x - _logsigmoid(x),
    lambda x, t, p: _sigmoid(x) - t,
    lambda x, t, p: -x,
    lambda x, t, p: _sigmoid_grad(x),
    _minus_one, _minus_one)


def _logits_dxx(x, t, p):
    return (p * t + 1 - t) * _sigmoid_grad(x)


def _logits_dtx(x, t, p):
    # 1 - σ(x) as σ(-x): no cancellation for large x (torch's log_sigmoid
    # backward is as accurate), and an infinite p meets e^{-x}, not 0
    return -_sigmoid(x) - p * _sigmoid(-x)


def _smooth_logsigmoid(x):
    """logσ(x) = -softplus(-x), the same value as ``_logsigmoid``, written so
    that JAX's derivative of it is σ(-x) everywhere: the third order
    differentiates ρ_t, and min(x, 0) - log1p(e^{-|x|}) has two ties at 0 whose
    one-sided derivatives JAX would add up to 1 instead of ½."""
    return -jnp.logaddexp(-x, 0)


LOGITS_POS_WEIGHT = PairLoss(
    "binary_cross_entropy_with_logits",
    lambda x, t, p: (1 - t) * x - ((p - 1) * t + 1) * _logsigmoid(x),
    lambda x, t, p: (p * t + 1 - t) * _sigmoid(x) - p * t,
    lambda x, t, p: _smooth_logsigmoid(-x) - p * _smooth_logsigmoid(x),
    _logits_dxx,
    # p·(σ - 1) - σ: torch's autograd sums these two paths, so an infinite p
    # gives -inf here, not inf - inf
    lambda x, t, p: p * (_sigmoid(x) - 1) - _sigmoid(x),
    _logits_dtx)



# kl_div: x = log q (the input), t the target p (log p with log_target). torch
# composes it of differentiable ops, e = xlogy(t, t) - t·x (e^t·(t - x) with
# log_target), and differentiates that composition with autograd, so its
# derivatives are the operations of autograd's graph, in its order (which
# decides NaN/inf placement at p = 0, p < 0, e^t overflow, a zero or infinite
# cotangent). With G the loss cotangent scaled and broadcast to e's shape (G =
# k·ĝ: k = 1, 1/numel for "mean", 1/N for "batchmean"):
#
#   probabilities:  x̄ = -(G·t)
#                   t̄ = X + (G·t)/t - G·x,   X = xlogy(G, t), 0 where t = 0
#   log_target:     x̄ = -A,   t̄ = A + B,   A = G·e,  B = (G·(t - x))·e,  e = e^t
#
# (xlogy's backward: xlogy(grad, other), 0 where self = 0 and other <= 0, and
# grad·self/other; at normal points t̄ = G·(log t + 1 - x), resp.
# G·e·(t - x + 1).) Second order, cotangents (h_x, h_t) of (x̄, t̄), each term
# formed only for a cotangent that is not a symbolic zero:
#
#   probabilities (h' = h_t, 0 where t = 0, the masked_fill; X_G = xlogy(h', t),
#   0 where G = 0 and t <= 0):
#     ∂/∂G = -h_x·t + X_G + (h_t/t)·t - h_t·x
#     ∂/∂t = -h_x·G + (h'·G)/t + (h_t/t)·G - h_t·((G·t)/t)/t
#     ∂/∂x = -(h_t·G)
#   log_target (h_t - h_x reaches A as one cotangent):
#     ∂/∂G = (h_t - h_x)·e + (h_t·e)·(t - x)
#     ∂/∂t = ((h_t - h_x)·G + h_t·(G·(t - x)))·e + (h_t·e)·G
#     ∂/∂x = -((h_t·e)·G)
#
# and ∂/∂g = reduce(∂/∂G)·k. At normal points these are ρ_xt = ρ_tx = -1 (-e),
# ρ_tt = 1/t (e·(t - x + 2)), ρ_xx = 0: no ∂/∂x term from h_x at all.


def _xlogy(a, b):
    """a·log b, 0 where a = 0 (unless b is NaN), as torch's xlogy."""
    return jnp.where(a == 0, jnp.where(jnp.isnan(b), b, jnp.zeros_like(b)), a * jnp.log(b))


def _kl_impl(x, t, reduction: str, log_target: bool):
    xc, tc = _upcast(x, t)
    e = jnp.exp(tc) * (tc - xc) if log_target else _xlogy(tc, tc) - tc * xc
    return _reduce(e, reduction, _pair_scale(reduction, x.shape, grad=False)).astype(x.dtype)


def _kl_bwd(residuals, g, reduction, log_target):
    x, t = residuals
    return kl_grad(x, t, g, reduction, log_target)


def _kl_scaled(g, x, reduction):
    return _expand(g, x.shape, reduction, _pair_scale(reduction, x.shape, grad=True))


def _kl_grad_impl(x, t, g, reduction: str, log_target: bool):
    xc, tc, gc = _upcast(x, t, g)
    big_g = _kl_scaled(gc, xc, reduction)
    if log_target:
        e = jnp.exp(tc)
        a = big_g * e
        x_bar, t_bar = -a, a + (big_g * (tc - xc)) * e
    else:
        xlogy = jnp.where(tc == 0, jnp.zeros_like(tc), _xlogy(big_g, tc))
        x_bar, t_bar = -(big_g * tc), xlogy + (big_g * tc) / tc - big_g * xc
    return x_bar.astype(x.dtype), t_bar.astype(t.dtype)


def _kl_grad_bwd(residuals, cts, reduction, log_target):
    x, t, g = residuals
    h_x, h_t = cts   # None: a symbolic zero, no term
    with _rules.own_promotion():
        xc, tc, gc = _upcast(x, t, g)
        hx = None if h_x is None else _upcast(h_x)[0]
        ht = None if h_t is None else _upcast(h_t)[0]
        big_g = _kl_scaled(gc, xc, reduction)
        x_bar = t_bar = g_big_bar = None
        if log_target:
            e = jnp.exp(tc)
            to_a = ht if hx is None else (-hx if ht is None else ht - hx)
            g_big_bar, t_inner = to_a * e, to_a * big_g
            if ht is not None:
                he = ht * e
                g_big_bar = g_big_bar + he * (tc - xc)
                t_inner = t_inner + ht * (big_g * (tc - xc))
                x_bar = -(he * big_g)
            t_bar = t_inner * e
            if ht is not None:
                t_bar = t_bar + he * big_g
        else:
            if hx is not None:
                g_big_bar, t_bar = -hx * tc, -hx * big_g
            if ht is not None:
                masked = jnp.where(tc == 0, jnp.zeros_like(ht), ht)
                x_g = jnp.where((big_g == 0) & (tc <= 0), jnp.zeros_like(tc), _xlogy(masked, tc))
                ht_t = ht / tc
                g_big_bar = _add(g_big_bar, x_g + ht_t * tc - ht * xc)
                # ((G·t)/t)/t divided in that order: XLA's simplifier would make
                # it (G·t)/(t·t), where t·t underflows (inf at t = 1e-200)
                twice = lax.optimization_barrier((big_g * tc) / tc) / tc
                t_bar = _add(t_bar, (masked * big_g) / tc + ht_t * big_g - ht * twice)
                x_bar = -(ht * big_g)
        g_bar = None
        if g_big_bar is not None:
            scale = _pair_scale(reduction, x.shape, grad=True)
            g_bar = _reduce(g_big_bar, reduction, scale).astype(g.dtype)
        return (None if x_bar is None else x_bar.astype(x.dtype),
                None if t_bar is None else t_bar.astype(t.dtype), g_bar)


# kl(x, t, reduction, log_target): the loss, explicit VJP w.r.t. x and t;
# kl_grad(x, t, g, reduction, log_target): (x̄, t̄), its VJP the second order above.
kl = _rules.explicit(_kl_impl, _kl_bwd, static=2)
kl_grad = _rules.explicit(_kl_grad_impl, _kl_grad_bwd, static=2, symbolic_zeros=True)

# --------------------------------------------------------------------------
# Class-index targets: a linear map F of the log-probabilities L (N, C, *d).
#
#   ℓ_i = -(1-ε)·w_{t_i}·L[i, t_i] - (ε/C)·Σ_c w_c·L[i, c]    (i active, else 0)
#   F(L) = ℓ ("none"),  Σ_i ℓ_i ("sum"),  Σ_i ℓ_i / D ("mean"), D = Σ_{i active} w_{t_i}
#
# (ε = 0 drops the second term entirely, as torch does: 0·(-inf) would be NaN.)
# D depends only on targets and weights, so F is linear in L, and its VJP is
# the transpose Fᵀ, with s_i = g_i, g or g/D for the three reductions:
#
#   L̄[i, c] = Fᵀ(g)[i, c] = -(1-ε)·s_i·w_{t_i}·δ(c, t_i) - (ε/C)·s_i·w_c   (i active)
#
# The first term is a scatter of s_i·w_{t_i} to class t_i. Fᵀ is linear in g,
# so its VJP is its transpose, F again: ⟨Fᵀ(g), H⟩ = ⟨g, F(H)⟩; the gather
# L[i, t_i] is the adjoint of the scatter. Neither depends on L, so the second
# derivative w.r.t. L is exactly zero, as in torch.
#
# Targets outside [0, C) other than ignore_index cannot be seen at trace time:
# their weight w_{t_i} is set to NaN (gathering from the clipped index), so the
# element's loss, any reduction over it, and its gradient are NaN.


def _target_terms(target, weight, spec: LossSpec, classes: int):
    """(clipped index, active mask, w_{t_i} per position: NaN where t_i is invalid)."""
    active = target != spec.ignore_index
    valid = (target >= 0) & (target < classes)
    index = jnp.clip(target, 0, classes - 1)
    # w_{t_i} is laid out like t: under explicit mesh axes a replicated w indexed
    # by a batch-sharded t needs that said (None otherwise).
    like_t = contraction_sharding(index, tuple(jax.typeof(index).sharding.spec), ())
    weight_t = jnp.where(valid, weight.at[index].get(out_sharding=like_t), jnp.nan)
    return index, active, weight_t


def _index_norm(active, weight_t, spec: LossSpec):
    """D = Σ_{i active} w_{t_i} for "mean"; 1 otherwise."""
    if spec.reduction != "mean":
        return 1.0
    return jnp.sum(jnp.where(active, weight_t, 0))


def _class_view(v, ndim: int):
    """A (C,) vector shaped (1, C, 1, ...) to broadcast against (N, C, *d)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _nll_forward_impl(logp, target, weight, spec: LossSpec, classes: int):
    """F(L): the index-target loss, linear in ``logp`` (N, C, *d); target (N, *d) int."""
    (lc, wc), eps = _upcast(logp, weight), spec.label_smoothing
    index, active, weight_t = _target_terms(target, wc, spec, logp.shape[1])
    picked = jnp.take_along_axis(lc, index[:, None], axis=1,
                                 mode="promise_in_bounds")[:, 0]
    loss = -(1 - eps) * weight_t * picked
    if eps:
        loss = loss - eps / logp.shape[1] * jnp.sum(_class_view(wc, lc.ndim) * lc, axis=1)
    loss = jnp.where(active, loss, 0)
    out = loss if spec.reduction == "none" else jnp.sum(loss)
    return (out / _index_norm(active, weight_t, spec)).astype(logp.dtype)




def _nll_transpose_impl(g, target, weight, spec: LossSpec, classes: int):
    """Fᵀ(g): L̄ (N, C, *d), a scatter of the cotangent to the target classes."""
    (gc, wc), eps = _upcast(g, weight), spec.label_smoothing
    index, active, weight_t = _target_terms(target, wc, spec, classes)
    s = jnp.broadcast_to(gc / _index_norm(active, weight_t, spec), target.shape)
    class_ids = jnp.arange(classes).reshape((1, classes) + (1,) * (target.ndim - 1))
    out = jnp.where(class_ids == index[:, None], (-(1 - eps) * s * weight_t)[:, None], 0)
    if eps:
        out = out - eps / classes * s[:, None] * _class_view(wc, out.ndim)
    return jnp.where(active[:, None], out, 0).astype(g.dtype)


# F and Fᵀ: a linear pair in L (resp. g); target and weight are constants
# (``weight`` is guarded by ``_constant`` at the public boundary: never perturbed).
nll_forward, nll_transpose = _rules.linear_pair(_nll_forward_impl, _nll_transpose_impl,
                                                constants=2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _constant(value, fn: str, what: str):
    """The identity, refusing to be differentiated: torch's class weights (for
    class-index targets) and binary cross-entropy's weights are not
    differentiable, and a silent zero would lie. ``what`` says so, naming it."""
    return value


def _constant_fwd(value, fn, what):
    return _constant(value, fn, what), None


def _constant_bwd(fn, what, _, g):
    raise ValueError(f"{fn}: {what} (as in torch); wrap it in jax.lax.stop_gradient")


_constant.defvjp(_constant_fwd, _constant_bwd)


# --------------------------------------------------------------------------
# Class-probability targets q (N, C, *d), trilinear in (L, q, w):
#
#   q̃ = (1-ε)·q + ε/C,     ℓ_i = -Σ_c w_c·q̃[i, c]·L[i, c]
#
# reduced with scale k = C/numel = 1/M for "mean" (M = N·∏d positions), else
# 1. With s_i the scaled cotangent broadcast over i (s = g, g or g/M):
#
#   L̄[i, c] = -s_i·w_c·q̃[i, c]
#   q̄[i, c] = -(1-ε)·s_i·w_c·L[i, c]
#   w̄[c]    = -Σ_i s_i·q̃[i, c]·L[i, c]
#
# Second order, cotangents (H_L, H_q, h_w) of (L̄, q̄, w̄); each output is a
# product of three of (s, w, q̃, L), so each partial drops one factor:
#
#   ∂/∂L[i, c] = -s_i·((1-ε)·w_c·H_q[i, c] + q̃[i, c]·h_w[c])
#   ∂/∂q[i, c] = -(1-ε)·s_i·(w_c·H_L[i, c] + L[i, c]·h_w[c])
#   ∂/∂w[c]    = -Σ_i s_i·(q̃[i, c]·H_L[i, c] + (1-ε)·L[i, c]·H_q[i, c])
#   ∂/∂g_i     = -k·Σ_c (w_c·q̃·H_L + (1-ε)·w_c·L·H_q + q̃·L·h_w)[i, c]
#
# summed over i for "sum"/"mean". Every term is linear in exactly one
# cotangent, and L may be -inf (a -inf logit): a term whose cotangent is zero
# must be left out, not formed as 0·(-inf) = NaN. torch forms no term for an
# output nobody differentiates (a weight that is None, a target that does not
# require grad); here the same terms are dropped: with no class weight w̄ is
# not an output (w = 1 is never materialised, so h_w does not exist), and the
# second-order rule is told which cotangents are symbolic zeros.
# C = 0 classes: every array above is empty except ℓ (zeros) and g; "mean" is
# NaN (numel/C = 0/0), and ∂/∂g, a sum over no classes, is 0.


def _soft_scale(g, logp, spec: LossSpec):
    """s (N, 1, *d): the cotangent scaled by the reduction, broadcast over i."""
    shape = logp.shape[:1] + logp.shape[2:]
    scale = _grad_scale(spec.reduction, logp.size, logp.shape[1])
    return jnp.expand_dims(_expand(g, shape, spec.reduction, scale), 1)


def _smoothed(q, spec: LossSpec):
    eps, classes = spec.label_smoothing, q.shape[1]
    # C = 0: q is empty and ε/C never used (Python's ε/0 would raise).
    return (1 - eps) * q + (eps / classes if classes else 0.0)


def _weighted(v, weight):
    """w_c·v[i, c] for v (N, C, *d); v itself when there is no class weight."""
    return v if weight is None else _class_view(weight, v.ndim) * v


def _soft_cross_entropy_impl(logp, q, weight, spec: LossSpec):
    (lc, qc), wc = _upcast(logp, q), _upcast_optional(weight)
    loss = -jnp.sum(_weighted(_smoothed(qc, spec) * lc, wc), axis=1)
    scale = _loss_scale(spec.reduction, logp.size, logp.shape[1])
    return _reduce(loss, spec.reduction, scale).astype(logp.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def soft_cross_entropy(logp, q, weight, spec: LossSpec):
    """reduce(-Σ_c w_c q̃[i, c] L[i, c]) for L = ``logp`` and q (N, C, *d).

    ``weight`` (C,) or None (w = 1); its cotangent is then None too.
    """
    with _rules.own_promotion():
        return _soft_cross_entropy_impl(logp, q, weight, spec)


def _soft_cross_entropy_fwd(logp, q, weight, spec):
    return soft_cross_entropy(logp, q, weight, spec), (logp, q, weight)


def _soft_cross_entropy_bwd(spec, residuals, g):
    logp, q, weight = residuals
    return soft_cross_entropy_grad(logp, q, weight, g, spec)


soft_cross_entropy.defvjp(_soft_cross_entropy_fwd, _soft_cross_entropy_bwd)


def _not_class_axes(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


def _soft_cross_entropy_grad_impl(logp, q, weight, g, spec: LossSpec):
    (lc, qc, gc), wc = _upcast(logp, q, g), _upcast_optional(weight)
    s, qs = _soft_scale(gc, lc, spec), _smoothed(qc, spec)
    logp_bar = -s * _weighted(qs, wc)
    q_bar = -(1 - spec.label_smoothing) * s * _weighted(lc, wc)
    w_bar = None
    if weight is not None:
        w_bar = (-jnp.sum(s * qs * lc, axis=_not_class_axes(lc.ndim))).astype(weight.dtype)
    return logp_bar.astype(logp.dtype), q_bar.astype(q.dtype), w_bar


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def soft_cross_entropy_grad(logp, q, weight, g, spec: LossSpec):
    """(L̄, q̄, w̄): the backward of ``soft_cross_entropy`` (w̄ None without weight)."""
    with _rules.own_promotion():
        return _soft_cross_entropy_grad_impl(logp, q, weight, g, spec)


def _soft_cross_entropy_grad_fwd(logp, q, weight, g, spec):
    # symbolic_zeros: each array comes wrapped with its `perturbed` bit.
    logp, q, weight, g = jax.tree.map(lambda p: p.value, (logp, q, weight, g))
    out = soft_cross_entropy_grad(logp, q, weight, g, spec)
    return out, (logp, q, weight, g)


def _add(total, term):
    return term if total is None else total + term


def _soft_cross_entropy_grad_bwd(spec, residuals, cts):
    logp, q, weight, g = residuals
    h_logp, h_q, h_w = (None if isinstance(h, SymbolicZero) else h for h in cts)
    keep = 1 - spec.label_smoothing
    s, qs = _soft_scale(g, logp, spec), _smoothed(q, spec)
    # Σ over the present cotangents of their terms; None: no term (a zero).
    logp_bar = q_bar = w_sum = per_class = None   # w̄ = -Σ_i s·w_sum
    if h_logp is not None:
        q_bar = _add(q_bar, -keep * s * _weighted(h_logp, weight))
        w_sum = _add(w_sum, qs * h_logp)
        per_class = _add(per_class, _weighted(qs * h_logp, weight))
    if h_q is not None:
        logp_bar = _add(logp_bar, -keep * s * _weighted(h_q, weight))
        w_sum = _add(w_sum, keep * logp * h_q)
        per_class = _add(per_class, keep * _weighted(logp * h_q, weight))
    if h_w is not None:
        hw = _class_view(h_w, logp.ndim)
        logp_bar = _add(logp_bar, -s * qs * hw)
        q_bar = _add(q_bar, -keep * s * logp * hw)
        per_class = _add(per_class, qs * logp * hw)
    w_bar = None
    if weight is not None and w_sum is not None:
        w_bar = -jnp.sum(s * w_sum, axis=_not_class_axes(logp.ndim))
    g_bar = None
    if per_class is not None:
        scale = _grad_scale(spec.reduction, logp.size, logp.shape[1])
        g_bar = _reduce(-jnp.sum(per_class, axis=1), spec.reduction, scale)
    return logp_bar, q_bar, w_bar, g_bar


soft_cross_entropy_grad.defvjp(_soft_cross_entropy_grad_fwd, _soft_cross_entropy_grad_bwd,
                               symbolic_zeros=True)


def _batched(input, target, unbatched: bool):
    return (input[None], target[None]) if unbatched else (input, target)


def _class_weight(weight, input):
    return jnp.ones((_num_classes(input),), input.dtype) if weight is None else weight


# --------------------------------------------------------------------------
# Public functions.


def mse_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
             weight: ArrayLike | None = None) -> Array:
    """Mean squared error ``reduce((input - target)²)``, as torch's ``F.mse_loss``.

    Differentiable w.r.t. both ``input`` and ``target``. Unlike torch, the
    shapes must match exactly (torch broadcasts with a warning) and the dtypes
    must agree. ``reduction`` is keyword-only: torch's third positional
    parameter is the deprecated ``size_average``. ``weight`` is torch 2.13's:
    each element's loss is multiplied by it, "mean" becomes ``Σ w·d² / Σ w``,
    and it is differentiated too.

    Args:
      input: (*), a float array of any shape.
      target: (*), the shape and dtype of ``input``.
      reduction: ``"none"`` (elementwise, ``input``'s shape), ``"mean"`` or
        ``"sum"`` (scalars; the mean of an empty array is NaN).
      weight: optional weight of each element, ``input``'s shape and dtype
        (torch does not broadcast it either).

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array or the dtypes differ.
      ValueError: if the shapes differ or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([1.0, 2.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> float(jaxgrad.mse_loss(x, t)), jaxgrad.mse_loss(x, t, reduction="none").tolist()
      (2.5, [1.0, 4.0])
    """
    return _pointwise_loss("mse_loss", input, target, reduction, SQUARED, weight)


def _pointwise_loss(fn: str, input, target, reduction, loss: Pointwise, weight=None, *,
                    mean: str = "wmean"):
    """The checks of a pointwise loss, then its rule; with ``weight``, the
    weighted rule, whose "mean" is ``mean`` ("wmean": over Σ weight)."""
    # both are required: check_same_dtype would skip a None
    input, target = float_arrays(fn, input=input, target=target,
                                 complex_ok=loss.complex_ok)
    if not (loss.complex_ok and _complex_and_a_real(input, target)):
        check_same_dtype(fn, {"input": input, "target": target}, complex_ok=loss.complex_ok)
    check_reduction(fn, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{fn}: `target` must have the shape of `input` "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is None:
        return pointwise(input, target, reduction, loss)
    (weight,) = float_arrays(fn, weight=weight)
    real = _real_dtype(jnp.result_type(input, target))
    if jnp.dtype(weight.dtype) != real:
        raise TypeError(f"{fn}: `weight` must have the loss's dtype {jnp.dtype(real).name}, "
                        f"got {jnp.dtype(weight.dtype).name}")
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{fn}: `weight` must have the shape of `input` "
                         f"{tuple(input.shape)} (as torch requires), got "
                         f"{tuple(weight.shape)}")
    return weighted(input, target, weight, mean if reduction == "mean" else reduction, loss)


def _complex_and_a_real(a, b) -> bool:
    """Whether one of ``a``, ``b`` is complex and the other real, a pair torch's
    l1_loss takes, promoting both to their result type (complex64 with float64
    is complex128, as in JAX); each cotangent returns in its own dtype."""
    return {jnp.iscomplexobj(a), jnp.iscomplexobj(b)} == {True, False}


def _positive(fn: str, name: str, value, *, zero_ok: bool) -> float:
    check_static(fn, name, value, "a real number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: `{name}` must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    value = float(value)
    if not (value >= 0 if zero_ok else value > 0):
        raise ValueError(f"{fn}: `{name}` must be {'>= 0' if zero_ok else 'positive'} "
                         f"(as torch requires), got {value!r}")
    return value


def l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
            weight: ArrayLike | None = None) -> Array:
    """Mean absolute error ``reduce(|input - target|)``, as torch's ``F.l1_loss``.

    The gradient is sign(input - target): 0 where they are equal (and at NaN),
    as torch's; the second derivative is 0. Differentiable w.r.t. both
    arguments; shapes and dtypes must match, and ``reduction`` is
    keyword-only, as in :func:`mse_loss`; ``weight`` as there (torch 2.13's).
    Complex arguments are taken, as in torch: the loss is real, the gradient
    ĝ·conj(d)/|d| in JAX's convention (d = input - target), and a complex
    argument may meet a real one (both promoted to their result type, as in
    torch; the loss has its real dtype).

    Args:
      input: (*), a float or complex array of any shape.
      target: (*), the shape and dtype of ``input`` (or, with a complex
        ``input``, any float dtype; or the reverse).
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      weight: optional weight of each element, of ``input``'s shape and the
        loss's (real) dtype; differentiated. "mean" is then ``Σ w·|d| / Σ w``.

    Returns:
      The loss, ``input``'s dtype (the real dtype of a complex one).

    Raises:
      TypeError: if an argument is not a float or complex array or the dtypes
        differ.
      ValueError: if the shapes differ or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([1.0, -2.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> float(jaxgrad.l1_loss(x, t)), jaxgrad.l1_loss(x, t, reduction="none").tolist()
      (1.5, [1.0, 2.0])
    """
    return _pointwise_loss("l1_loss", input, target, reduction, ABSOLUTE, weight)


def smooth_l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                   beta: float = 1.0) -> Array:
    """``½d²/β`` for ``|d| < β``, else ``|d| - ½β`` (d = input - target), reduced.

    As torch's ``F.smooth_l1_loss``; ``beta=0`` is :func:`l1_loss`. The
    gradient is d/β inside and ±1 from ``|d| = β`` on; the second derivative
    1/β strictly inside, 0 elsewhere (and at NaN).

    Args:
      input: (*), a float array of any shape.
      target: (*), the shape and dtype of ``input``.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      beta: β >= 0, where the quadratic piece ends.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array, the dtypes differ, or
        ``beta`` is not a real number.
      ValueError: if the shapes differ, ``reduction`` is unknown or ``beta``
        is negative.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([0.5, 3.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> jaxgrad.smooth_l1_loss(x, t, reduction="none").tolist()
      [0.125, 2.5]
    """
    beta = _positive("smooth_l1_loss", "beta", beta, zero_ok=True)
    loss = ABSOLUTE if beta == 0 else Pointwise(
        "smooth_l1_loss", _smooth_l1, _smooth_l1_d1, _smooth_l1_d2, (beta,))
    return _pointwise_loss("smooth_l1_loss", input, target, reduction, loss)


def huber_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean",
               delta: float = 1.0, weight: ArrayLike | None = None) -> Array:
    """``½d²`` for ``|d| < δ``, else ``δ(|d| - ½δ)`` (d = input - target), reduced.

    As torch's ``F.huber_loss`` (whose ``reduction`` is its third positional
    parameter, so it is here too). The gradient is d inside and ±δ from
    ``|d| = δ`` on; the second derivative 1 strictly inside, 0 elsewhere (and
    at NaN). ``weight`` is torch 2.13's, as in :func:`mse_loss`, except that
    "mean" divides by the number of elements, as torch's huber_loss does.

    Args:
      input: (*), a float array of any shape.
      target: (*), the shape and dtype of ``input``.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      delta: δ > 0, where the quadratic piece ends.
      weight: optional weight of each element, ``input``'s shape and dtype;
        differentiated. "mean" is then ``Σ w·ρ / n``.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array, the dtypes differ, or
        ``delta`` is not a real number.
      ValueError: if the shapes differ, ``reduction`` is unknown or ``delta``
        is not positive.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([0.5, 3.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> jaxgrad.huber_loss(x, t, reduction="none", delta=2.0).tolist()
      [0.125, 4.0]
    """
    delta = _positive("huber_loss", "delta", delta, zero_ok=False)
    loss = Pointwise("huber_loss", _huber, _huber_d1, _huber_d2, (delta,))
    return _pointwise_loss("huber_loss", input, target, reduction, loss, weight, mean="mean")


def _pair_loss(fn: str, input, target, weight, pos_weight, reduction, loss: PairLoss):
    """The checks of a binary cross-entropy, then its rule."""
    input, target, weight, pos_weight = float_arrays(
        fn, optional=("weight", "pos_weight"), input=input, target=target, weight=weight,
        pos_weight=pos_weight)
    check_same_dtype(fn, {"input": input, "target": target})
    check_same_dtype(fn, {"input": input, "weight": weight, "pos_weight": pos_weight})
    check_reduction(fn, reduction)
    shape = tuple(input.shape)
    if tuple(target.shape) != shape:
        raise ValueError(f"{fn}: `target` must have the shape of `input` {shape}, got "
                         f"{tuple(target.shape)}")
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is not None and not _broadcasts_to(tuple(value.shape), shape):
            raise ValueError(f"{fn}: `{name}` must broadcast to the shape of `input` "
                             f"{shape}, got {tuple(value.shape)}")
    if weight is not None:
        weight = _constant(weight, fn, "`weight` is not differentiable")
    if pos_weight is not None:
        pos_weight = _constant(pos_weight, fn, "`pos_weight` is not differentiable")
        loss = LOGITS_POS_WEIGHT
    return pair(input, target, weight, pos_weight, reduction, loss)


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether numpy broadcasting takes ``shape`` to exactly ``target``."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(shape[::-1], target[::-1]))


def binary_cross_entropy(input: ArrayLike, target: ArrayLike,
                         weight: ArrayLike | None = None, *,
                         reduction: str = "mean") -> Array:
    """``-w·(t·log x + (1 - t)·log(1 - x))``, reduced, as torch's
    ``F.binary_cross_entropy``.

    ``input`` holds probabilities x (e.g. from :func:`sigmoid`), ``target``
    probabilities t of its shape. Each log is clamped at -100 as in torch, so
    x = 0 or 1 gives a finite loss; the gradient is torch's, ``(x - t) /
    max(x(1 - x), 1e-12)`` w.r.t. ``input`` and ``-logit(x)`` w.r.t.
    ``target`` (both differentiated, to second order). torch raises at run
    time for a value outside [0, 1]; values are not known at trace time, so
    here the loss of such a position is NaN, as is its gradient. ``reduction``
    is keyword-only (torch's fourth positional parameter is the deprecated
    ``size_average``).

    Args:
      input: (*), probabilities, a float array of any shape.
      target: (*), probabilities of ``input``'s shape and dtype.
      weight: optional weight of each element, ``input``'s dtype, of a shape
        that broadcasts to ``input``'s. Not differentiable (as in torch):
        differentiating w.r.t. it raises.
      reduction: ``"none"`` (``input``'s shape), ``"mean"`` or ``"sum"``.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array or the dtypes differ.
      ValueError: if ``target``'s shape is not ``input``'s, ``weight`` does not
        broadcast to it, or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([0.5, 0.25], jnp.float32), jnp.array([1.0, 0.0], jnp.float32)
      >>> [round(v, 4) for v in jaxgrad.binary_cross_entropy(x, t, reduction="none").tolist()]
      [0.6931, 0.2877]
    """
    return _pair_loss("binary_cross_entropy", input, target, weight, None, reduction,
                      BINARY)


def binary_cross_entropy_with_logits(input: ArrayLike, target: ArrayLike,
                                     weight: ArrayLike | None = None, *,
                                     reduction: str = "mean",
                                     pos_weight: ArrayLike | None = None) -> Array:
    """Binary cross-entropy of logits, as torch's
    ``F.binary_cross_entropy_with_logits``.

    Per element, ``w·((1 - t)·x - (1 + (p - 1)·t)·logσ(x))`` for logits x,
    targets t and ``pos_weight`` p (1 when absent): the binary cross-entropy of
    σ(x), with the positive term weighted by p, computed without forming σ(x),
    so it stays finite for large |x|. The gradient is ``(p·t + 1 - t)·σ(x) -
    p·t`` w.r.t. ``input`` and ``logσ(-x) - p·logσ(x)`` w.r.t. ``target`` (both
    differentiated, to second order). ``reduction`` and ``pos_weight`` are
    keyword-only, as in torch after its deprecated ``size_average`` and
    ``reduce``.

    Args:
      input: (*), logits, a float array of any shape.
      target: (*), probabilities of ``input``'s shape and dtype (not checked
        to lie in [0, 1], as in torch).
      weight: optional weight of each element, ``input``'s dtype, of a shape
        that broadcasts to ``input``'s. Not differentiable (as in torch).
      reduction: ``"none"`` (``input``'s shape), ``"mean"`` or ``"sum"``.
      pos_weight: optional weight of the positive term, ``input``'s dtype,
        broadcasting to ``input``'s shape: one per class (C,) along the last
        dim, as in torch. Not differentiable (as in torch).

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array or the dtypes differ.
      ValueError: if ``target``'s shape is not ``input``'s, ``weight`` or
        ``pos_weight`` does not broadcast to it, or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([0.0, 2.0], jnp.float32), jnp.array([1.0, 0.0], jnp.float32)
      >>> loss = jaxgrad.binary_cross_entropy_with_logits(x, t, reduction="none")
      >>> [round(v, 4) for v in loss.tolist()]
      [0.6931, 2.1269]
    """
    return _pair_loss("binary_cross_entropy_with_logits", input, target, weight,
                      pos_weight, reduction, LOGITS)


def kl_div(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
           log_target: bool = False) -> Array:
    """Kullback-Leibler divergence ``target·(log target - input)``, as torch's
    ``F.kl_div``.

    ``input`` holds log-probabilities log q, ``target`` probabilities p (or,
    with ``log_target``, log p: then ``exp(target)·(target - input)``), of
    ``input``'s shape; the loss is 0 where p = 0, as torch's ``xlogy``. Both
    are differentiated, to second order, with the derivatives torch's
    autograd takes of that formula (w.r.t. ``target``: log p + 1 - log q, NaN
    at p = 0). ``reduction`` and ``log_target`` are keyword-only (torch's third
    positional parameter is the deprecated ``size_average``). torch warns that
    ``"mean"`` (which divides by every element, not the batch) will change;
    here it keeps torch's current meaning, without the warning.

    Args:
      input: (N, *) or any shape, log-probabilities, a float array.
      target: probabilities (log-probabilities with ``log_target``) of
        ``input``'s shape and dtype.
      reduction: ``"none"``, ``"mean"`` (over every element), ``"batchmean"``
        (the sum over N = ``input.shape[0]``; a 0-d input is not divided) or
        ``"sum"``.
      log_target: whether ``target`` holds log-probabilities.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array, the dtypes differ, or
        ``log_target`` is not a bool.
      ValueError: if the shapes differ or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> logq = jnp.log(jnp.array([[0.5, 0.5]], jnp.float32))
      >>> p = jnp.array([[1.0, 0.0]], jnp.float32)
      >>> round(float(jaxgrad.kl_div(logq, p, reduction="batchmean")), 4)   # log 2
      0.6931
    """
    fn = "kl_div"
    check_static(fn, "reduction", reduction, "'none', 'mean', 'batchmean' or 'sum'")
    if not isinstance(reduction, str) or reduction not in ("none", "mean", "batchmean", "sum"):
        raise ValueError(f"{fn}: `reduction` must be 'none', 'mean', 'batchmean' or 'sum', "
                         f"got {reduction!r}")
    log_target = parse_bool(fn, "log_target", log_target)
    input, target = float_arrays(fn, input=input, target=target)
    check_same_dtype(fn, {"input": input, "target": target})
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{fn}: `target` must have the shape of `input` "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    return kl(input, target, reduction, log_target)


def nll_loss(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, *,
             ignore_index: int = -100, reduction: str = "mean") -> Array:
    """Negative log-likelihood ``-weight[t]·input[n, t]``, as torch's ``F.nll_loss``.

    ``input`` holds log-probabilities (e.g. from :func:`log_softmax`). "mean"
    divides by the summed weight of the non-ignored targets, so a batch whose
    targets are all ``ignore_index`` gives NaN. ``ignore_index`` and
    ``reduction`` are keyword-only (torch's fourth positional parameter is the
    deprecated ``size_average``).

    Class indices outside ``[0, C)`` (other than ``ignore_index``) cannot be
    checked at trace time, since their values are not known then; torch raises
    at run time, here the loss of such a position is NaN (so are "mean" and
    "sum"), and so is its gradient.

    Args:
      input: (N, C), (N, C, d1, d2, ...) or unbatched (C,), a float array.
      target: (N,), (N, d1, d2, ...) or () for unbatched input; integer class
        indices (any integer dtype). Not differentiable.
      weight: optional (C,) class weights, ``input``'s dtype. Not
        differentiable (as in torch): differentiating w.r.t. it raises.
      ignore_index: an int; positions with this target contribute nothing.
      reduction: ``"none"`` (shape of ``target``), ``"mean"`` or ``"sum"``.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: for non-float ``input``/``weight``, non-integer ``target``, a
        dtype mismatch or a non-int ``ignore_index``.
      ValueError: for mismatched shapes or an unknown ``reduction``.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> logp = jnp.log(jnp.array([[0.5, 0.5], [0.25, 0.75]], jnp.float32))
      >>> loss = jaxgrad.nll_loss(logp, jnp.array([0, 1]), reduction="none")
      >>> [round(v, 4) for v in loss.tolist()]
      [0.6931, 0.2877]
    """
    fn = "nll_loss"
    input, target, weight = loss_arrays(fn, input, target, weight)
    _check_input(fn, input)
    _check_index_target(fn, input, target)
    _check_weight(fn, input, weight)
    spec = LossSpec(check_reduction(fn, reduction), _check_ignore_index(fn, ignore_index))
    return _index_loss(fn, input, target, weight, spec, log_probs=False)


def _index_loss(fn: str, input, target, weight, spec: LossSpec, *, log_probs: bool):
    unbatched = input.ndim == 1
    x, t = _batched(input, target, unbatched)
    weight = _constant(_class_weight(weight, input), fn,
                       "`weight` is not differentiable with class-index targets")
    logp = x if not log_probs else log_softmax_core(x, 1)
    loss = nll_forward(logp, t, weight, spec, logp.shape[1])
    return loss[0] if unbatched and spec.reduction == "none" else loss


def cross_entropy(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                  *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Array:
    """Cross entropy of logits, as torch's ``F.cross_entropy``.

    With integer class-index targets this is ``nll_loss(log_softmax(input, 1),
    target)`` plus label smoothing ε, ``(1-ε)·nll + ε/C·(-Σ_c w_c log p_c)``
    per position; "mean" divides by the summed weight of the non-ignored
    targets (NaN if all are ignored). With float class-probability targets of
    ``input``'s shape, ``-Σ_c w_c·((1-ε)q_c + ε/C)·log p_c`` per position,
    "mean" divides by the number of positions (NaN for an empty ``input``,
    N = 0 or C = 0, as in torch), ``ignore_index`` must be negative (it does
    not apply), and the loss is differentiable w.r.t. ``target`` and
    ``weight`` too.

    Out-of-range class indices behave as in :func:`nll_loss` (NaN, not an
    error). ``ignore_index``, ``reduction`` and ``label_smoothing`` are
    keyword-only (torch's fourth positional parameter is the deprecated
    ``size_average``).

    Args:
      input: logits (N, C), (N, C, d1, d2, ...) or unbatched (C,), float.
      target: integer class indices (N,), (N, d1, ...) or () for unbatched
        input; or class probabilities of ``input``'s shape and dtype.
      weight: optional (C,) class weights, ``input``'s dtype; differentiating
        w.r.t. it raises for class-index targets (as in torch).
      ignore_index: an int; index targets equal to it contribute nothing.
        Must be negative with class-probability targets.
      reduction: ``"none"`` (``input`` without its class dim), ``"mean"`` or
        ``"sum"``.
      label_smoothing: ε in [0, 1].

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: for non-float ``input``/``weight``, a ``target`` that is
        neither integer nor float, a dtype mismatch, or non-number options.
      ValueError: for mismatched shapes, an unknown ``reduction``,
        ``label_smoothing`` outside [0, 1], or ``ignore_index >= 0`` with
        class-probability targets.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> logits = jnp.array([[2.0, 0.0], [0.0, 0.0]], jnp.float32)
      >>> round(float(jaxgrad.cross_entropy(logits, jnp.array([0, 1]))), 4)
      0.41
    """
    fn = "cross_entropy"
    input, target, weight = loss_arrays(fn, input, target, weight)
    _check_input(fn, input)
    spec = LossSpec(check_reduction(fn, reduction), _check_ignore_index(fn, ignore_index),
                    _check_label_smoothing(fn, label_smoothing))
    _check_weight(fn, input, weight)
    dtype = _numpy_dtype(target)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return _probability_loss(input, target, weight, spec)
    if not _is_integer(target):
        raise TypeError(f"{fn}: `target` must be integer class indices or float class "
                        f"probabilities, got {_describe_dtype(target)}")
    _check_index_target(fn, input, target)
    return _index_loss(fn, input, target, weight, spec, log_probs=True)


def _probability_loss(input, target, weight, spec: LossSpec):
    fn = "cross_entropy"
    check_same_dtype(fn, {"input": input, "target": target})
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{fn}: class-probability `target` must have the shape of "
                         f"`input` {tuple(input.shape)}, got {tuple(target.shape)}")
    # torch: RuntimeError for any ignore_index >= 0 (a negative one could never
    # name a class, so it is accepted and has no effect).
    if spec.ignore_index >= 0:
        raise ValueError(f"{fn}: `ignore_index` is not supported with class-probability "
                         f"targets (it must be negative, e.g. the default -100), got "
                         f"{spec.ignore_index}")
    unbatched = input.ndim == 1
    x, q = _batched(input, target, unbatched)
    logp = log_softmax_core(x, 1)
    loss = soft_cross_entropy(logp, q, weight, spec)
    return loss[0] if unbatched and spec.reduction == "none" else loss
