"""Binary cross-entropy of probabilities and of logits: pointwise losses of
two arguments, with a broadcast weight and pos_weight."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _rules
from .._activation import _logsigmoid, _sigmoid, _sigmoid_grad
from .._args import check_same_dtype, float_arrays
from .._typing import Array, ArrayLike
from ._args import check_reduction
from ._common import (_upcast, _upcast_optional, _reduce, _expand, _pair_scale, _constant,
                      _add)


# --------------------------------------------------------------------------
# Binary cross-entropy: pointwise losses of two arguments. e_i = w_i·ρ(x_i, t_i)
# (w the `weight` broadcast to x's shape, 1 when absent), reduced with scale s
# as the regression losses are; ĝ the cotangent broadcast to e's shape, ρ_x = ∂ρ/∂x, ρ_t = ∂ρ/∂t:
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
