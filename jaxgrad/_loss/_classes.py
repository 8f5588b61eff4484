"""Class losses: nll_loss and cross_entropy, with class-index targets (a
linear map of the log-probabilities) or class-probability targets.

Notation: classes c lie on axis 1 of the input, C of them; i runs over every
other position (the batch n and any extra dims d1, d2, ...), so the input is
(N, C, *d) and a class-index target is (N, *d). w is the class weight (ones
when absent), ε the label smoothing, g the cotangent of the loss. "mean" is

  Σ_i ℓ_i / Σ_{i active} w_{t_i}   for class-index targets (active: t_i ≠ ignore_index)
  Σ_i ℓ_i / (numel(input) / C)      for class-probability targets

so a batch in which every target is ignored has mean NaN (and gradient 0), and
so does an empty input (N = 0, or C = 0 classes: 0/0).

Index-target losses are linear in the log-probabilities: one custom_vjp pair,
``nll_forward`` (a gather along the class axis) and ``nll_transpose`` (the
matching scatter), each the VJP of the other. ``cross_entropy`` composes it
with ``log_softmax_core``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from .. import _rules
from .._activation import log_softmax_core
from .._args import check_same_dtype
from .._sharding import contraction_sharding
from .._typing import Array, ArrayLike
from ._args import (_check_ignore_index, _check_index_target, _check_input,
                    _check_label_smoothing, _check_weight, _describe_dtype, _is_integer,
                    _num_classes, _numpy_dtype, check_reduction, loss_arrays)
from ._common import (LossSpec, _loss_scale, _grad_scale, _upcast, _upcast_optional,
                      _reduce, _expand, _constant, _add)


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


def soft_cross_entropy(logp, q, weight, spec: LossSpec):
    """reduce(-Σ_c w_c q̃[i, c] L[i, c]) for L = ``logp`` and q (N, C, *d).

    ``weight`` (C,) or None (w = 1); its cotangent is then None too.
    """
    return _soft_ce((spec,), logp, q, weight)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _soft_ce_vjp(logp, q, weight, spec: LossSpec):
    with _rules.own_promotion():
        return _soft_cross_entropy_impl(logp, q, weight, spec)


def _soft_cross_entropy_fwd(logp, q, weight, spec):
    return soft_cross_entropy(logp, q, weight, spec), (logp, q, weight)


def _soft_cross_entropy_bwd(spec, residuals, g):
    logp, q, weight = residuals
    return soft_cross_entropy_grad(logp, q, weight, g, spec)


_soft_ce_vjp.defvjp(_soft_cross_entropy_fwd, _soft_cross_entropy_bwd)


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


def soft_cross_entropy_grad(logp, q, weight, g, spec: LossSpec):
    """(L̄, q̄, w̄): the backward of ``soft_cross_entropy`` (w̄ None without weight)."""
    return _soft_ce_grad((spec,), logp, q, weight, g)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _soft_ce_grad_vjp(logp, q, weight, g, spec: LossSpec):
    with _rules.own_promotion():
        return _soft_cross_entropy_grad_impl(logp, q, weight, g, spec)


def _soft_cross_entropy_grad_fwd(logp, q, weight, g, spec):
    # symbolic_zeros: each array comes wrapped with its `perturbed` bit.
    logp, q, weight, g = jax.tree.map(lambda p: p.value, (logp, q, weight, g))
    out = soft_cross_entropy_grad(logp, q, weight, g, spec)
    return out, (logp, q, weight, g)


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


_soft_ce_grad_vjp.defvjp(_soft_cross_entropy_grad_fwd, _soft_cross_entropy_grad_bwd,
                         symbolic_zeros=True)


# Forward mode (see _rules.with_forward_mode): each JVP is the transpose of
# the op's hand-written backward in its cotangent (_rules.transposed_backward).
def _soft_ce_tangent(choose, static, primals, tangents, out):
    logp, q, weight = primals
    return _rules.transposed_backward(
        lambda g: soft_cross_entropy_grad(logp, q, weight, g, *static), out, tangents)


def _soft_ce_grad_tangent(choose, static, primals, tangents, out):
    return _rules.transposed_backward(
        lambda cts: _soft_cross_entropy_grad_bwd(*static, primals, cts), out, tangents)


_soft_ce = _rules.with_forward_mode(lambda static, *arrays: _soft_ce_vjp(*arrays, *static),
                                    _soft_ce_tangent)
_soft_ce_grad = _rules.with_forward_mode(
    lambda static, *arrays: _soft_ce_grad_vjp(*arrays, *static), _soft_ce_grad_tangent)


def _batched(input, target, unbatched: bool):
    return (input[None], target[None]) if unbatched else (input, target)


def _class_weight(weight, input):
    return jnp.ones((_num_classes(input),), input.dtype) if weight is None else weight


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
