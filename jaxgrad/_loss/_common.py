"""What the losses share: reductions and their scales, the half-precision
upcast, a cotangent's dtype for mixed real/complex arguments, and the guard
that refuses to differentiate a constant weight."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from .. import _rules
from .._activation import compute_dtype


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


def _cotangent(v, primal):
    """``v`` as the cotangent of ``primal``: its real part for a real primal
    met by a complex argument (complex l1_loss takes a real target or input,
    as torch does), in the primal's dtype."""
    if jnp.iscomplexobj(v) and not jnp.iscomplexobj(primal):
        v = jnp.real(v)
    return v.astype(primal.dtype)


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


def _constant(value, fn: str, what: str):
    """The identity, refusing to be differentiated (in either mode): torch's
    class weights (for class-index targets) and binary cross-entropy's weights
    are not differentiable, and a silent zero would lie. ``what`` says so,
    naming it."""
    return _chosen_constant((fn, what), value)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _constant_vjp(value, fn: str, what: str):
    return value


def _refuse(fn: str, what: str):
    raise ValueError(f"{fn}: {what} (as in torch); wrap it in jax.lax.stop_gradient")


def _constant_fwd(value, fn, what):
    return _constant(value, fn, what), None


def _constant_bwd(fn, what, _, g):
    _refuse(fn, what)


_constant_vjp.defvjp(_constant_fwd, _constant_bwd)
_chosen_constant = _rules.with_forward_mode(
    lambda static, value: _constant_vjp(value, *static),
    lambda choose, static, primals, tangents, out: _refuse(*static))


def _add(total, term):
    return term if total is None else total + term
