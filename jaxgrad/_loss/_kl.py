"""kl_div: torch's composition xlogy(p, p) - p·log q (or e^t·(t - log q)),
differentiated as torch's autograd differentiates it."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .. import _rules
from .._args import check_same_dtype, check_static, float_arrays, parse_bool
from .._typing import Array, ArrayLike
from ._common import _upcast, _reduce, _expand, _pair_scale, _add


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
