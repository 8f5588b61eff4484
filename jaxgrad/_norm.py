"""Normalisation layers with PyTorch's semantics and explicit, differentiable VJPs.

  batch_norm      statistics per channel c, over (n, *spatial)        x: (N, C, *)
  instance_norm   per (n, c), over *spatial                           x: (N, C, *)
  group_norm      per (n, group), over (the group's channels, *spatial)
  layer_norm      per leading index, over the trailing normalized_shape dims
  batch_norm_stats, instance_norm_stats
                  the running statistics after a training step, returned as a
                  ``BatchNormStats`` (JAX arrays cannot be updated in place)

One rule serves all four. A *group* is a set of elements sharing statistics
(a channel for batch norm, an (n, group) pair for group norm, ...), indexed
i = 1..M; "mean" below is the mean over the group, repeated over it:

  μ = (1/M) Σ_i x_i     v = (1/M) Σ_i (x_i - μ)²     r = (v + ε)^(-1/2)
  x̂_i = (x_i - μ)·r     y = γ·x̂ + β     (γ, β broadcast along the other axes)

First order (``normalize`` and its backward ``normalize_grad``). With
∂μ/∂x_j = 1/M, ∂v/∂x_j = (2/M)(x_j - μ) (as Σ_i (x_i - μ) = 0) and
∂r/∂x_j = -½(v + ε)^(-3/2)·∂v/∂x_j = -(r²/M)·x̂_j:

  ∂x̂_i/∂x_j = r·(δ_ij - 1/M - x̂_i·x̂_j/M)
  x̄_j = Σ_i ḡ_i ∂x̂_i/∂x_j = r·(ḡ_j - mean(ḡ) - x̂_j·mean(ḡ·x̂))

The affine part (``scale``, a bilinear triple, and the bias): with ḡ_y the
cotangent of y, ḡ = γ·ḡ_y, γ̄ = Σ ḡ_y·x̂ and β̄ = Σ ḡ_y, summed over the axes
γ is broadcast along.

Second order. z = normalize_grad(x, ḡ) = r·P ḡ with P = I - 11ᵀ/M - x̂x̂ᵀ/M
(symmetric), so for a cotangent h of z the cotangent of ḡ is
q = r·P h = normalize_grad(x, h). For x, write b = mean(ḡ·x̂); then
∂b/∂x_j = (1/M) Σ_k ḡ_k ∂x̂_k/∂x_j = z_j/M, and differentiating
z_i = r·(ḡ_i - mean(ḡ) - x̂_i·b):

  x̄_j = Σ_i h_i ∂z_i/∂x_j
      = (∂r/∂x_j)·Σ_i h_i z_i / r - r·b·Σ_i h_i ∂x̂_i/∂x_j - r·mean(h·x̂)·z_j
      = -r·(x̂_j·mean(h·z) + mean(ḡ·x̂)·q_j + mean(h·x̂)·z_j)

Every term is a rule of this module: x̂ = normalize(x), r = rstd(x) (whose own
VJP, -(1/M)·r̄·r²·x̂, is again written with normalize and rstd), z and q, and
the group sum with its adjoint, the broadcast (``sum_over`` and
``broadcast_over``, a linear pair). So every order of reverse-mode
differentiation runs hand-written rules; JAX differentiates only elementwise
products and sums of their results.

Eval mode (batch_norm, and instance_norm with ``use_input_stats=False``)
normalises with the running statistics, constants (no gradient, as torch
refuses to differentiate them): x̂ = (x - m)·k with k = (v_run + ε)^(-1/2),
so x̄ = k·ḡ, a diagonal map that is its own adjoint (``scale_by``).

float16 / bfloat16 inputs are normalised in float32: the public functions cast
to float32 at the boundary and the output back, so the cotangents come back
in each argument's dtype.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import _rules
from ._args import (_as_int, check_static, dtype_name, float_array, is_sequence,
                    parse_bool)
from ._precision import HALF, accumulation_dtype
from ._typing import Array, ArrayLike


# --------------------------------------------------------------------------
# Pure shape arithmetic.


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """M, the number of elements in one group: the product of the reduced sizes."""
    return math.prod(shape[a] for a in axes)


def _inverse(count: int) -> float:
    """1/M; NaN for an empty group (the mean of nothing, as ``jnp.mean`` gives)."""
    return 1.0 / count if count else math.nan


def _expand(p, ndim: int, start: int):
    """``p``, spanning axes [start, start + p.ndim) of an ndim-D array, with
    size-1 axes elsewhere (so that it broadcasts)."""
    return p.reshape((1,) * start + p.shape + (1,) * (ndim - start - p.ndim))


def _broadcast_axes(ndim: int, start: int, size: int) -> tuple[int, ...]:
    """The axes a parameter spanning [start, start + size) is broadcast along."""
    return tuple(a for a in range(ndim) if not start <= a < start + size)


# --------------------------------------------------------------------------
# Every rule below is declared with its implementation wrapped in ``_late``.


def _late(impl: Callable) -> Callable:
    """``impl``, looked up in this module's namespace at each call.

    A rule keeps the function it was declared with; calling through the
    module's name instead lets the test guard (``tests/_autodiff.py``,
    ``forbid_autodiff``) replace the implementation and see whether JAX ever
    differentiates it.
    """
    name = impl.__name__

    def call(*args):
        return globals()[name](*args)
    return functools.wraps(impl)(call)


# --------------------------------------------------------------------------
# Sums over groups and their adjoint, the broadcast back:
#   s[g] = Σ_{i ∈ g} x_i        ⟨sum_over(x), s⟩ = Σ_g s_g Σ_{i∈g} x_i = ⟨x, broadcast_over(s)⟩
# ``axes`` are the summed axes (kept with size 1), ``shape`` the full shape.


def _sum_over_impl(x, axes: tuple[int, ...], shape: tuple[int, ...]):
    """s = Σ of x over ``axes``, which stay as size-1 axes."""
    return jnp.sum(x, axis=axes, keepdims=True)


def _broadcast_over_impl(s, axes: tuple[int, ...], shape: tuple[int, ...]):
    """s (size 1 along ``axes``) repeated along them, to ``shape``."""
    return jnp.broadcast_to(s, shape)


sum_over, broadcast_over = _rules.linear_pair(_late(_sum_over_impl),
                                              _late(_broadcast_over_impl))


def group_mean(v, axes: tuple[int, ...]):
    """The mean of ``v`` over each group, repeated over the group (v's shape)."""
    total = sum_over(v, axes, v.shape)
    return broadcast_over(total * _inverse(_count(v.shape, axes)), axes, v.shape)


# --------------------------------------------------------------------------
# The affine part. y = x·γ with γ of size 1 along ``axes``: a bilinear triple,
#   ⟨x·γ, g⟩ = ⟨x, g·γ⟩ = ⟨γ, Σ_axes x·g⟩,
# and the bias, y + β, whose VJP sums the cotangent over ``axes``.


def _scale_impl(x, w, axes: tuple[int, ...]):
    """y = x·w, w broadcast along ``axes``."""
    return x * w


def _scale_input_grad_impl(g, w, axes: tuple[int, ...]):
    """x̄ = g·w."""
    return g * w


def _scale_weight_grad_impl(x, g, axes: tuple[int, ...]):
    """w̄ = Σ_axes x·g (w's shape: size 1 along ``axes``)."""
    return jnp.sum(x * g, axis=axes, keepdims=True)


scale, scale_input_grad, scale_weight_grad = _rules.bilinear(
    _late(_scale_impl), _late(_scale_input_grad_impl), _late(_scale_weight_grad_impl))


def _add_bias_impl(y, b):
    """y + b, b broadcast (size 1 along the axes it is added over)."""
    return y + b


_add_bias = _late(_add_bias_impl)


@functools.cache
def _bias_adder(axes: tuple[int, ...]) -> Callable:
    """y + b for b of size 1 along ``axes``; VJP (ḡ, Σ_axes ḡ)."""
    def reduce(g):
        return sum_over(g, axes, g.shape)
    return _rules.add_broadcast(_add_bias, reduce)


def _affine(y, weight, bias, start: int):
    """γ·y + β, with γ and β spanning y's axes [start, start + γ.ndim)."""
    present = weight if weight is not None else bias
    if present is None:
        return y
    axes = _broadcast_axes(y.ndim, start, present.ndim)
    if weight is not None:
        y = scale(y, _expand(weight, y.ndim, start), axes)
    if bias is not None:
        y = _bias_adder(axes)(y, _expand(bias, y.ndim, start))
    return y


# --------------------------------------------------------------------------
# Eval mode: x̂ = (x - m)·k with constant m, k; its VJP x̄ = k·ḡ is diagonal,
# its own adjoint, so the linear pair is one map twice.


def _scale_by_impl(g, k):
    """g·k, k a constant broadcast onto g."""
    return g * k


scale_by, _ = _rules.linear_pair(_late(_scale_by_impl), _late(_scale_by_impl),
                                 constants=1)


def _shift_scale_impl(x, mean, k):
    """(x - m)·k with the running statistics as constants."""
    return (x - mean) * k


def _shift_scale_bwd(k, g):
    return scale_by(g, k), None, None


def _save_scale(arrays, y):
    return arrays[2]


shift_scale = _rules.explicit(_late(_shift_scale_impl), _shift_scale_bwd,
                              save=_save_scale)


# --------------------------------------------------------------------------
# Training mode: the batch statistics. ``axes`` are the reduced axes (a group
# is every index along them, the other indices fixed), ``eps`` is ε. The
# derivation is in the module docstring.


def moments(x, axes: tuple[int, ...]):
    """(μ, x - μ, v): the mean, the centred input and the biased variance over
    ``axes`` (kept as size-1 axes). Every batch statistic comes from here, the
    running-statistics update included."""
    mean = jnp.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    return mean, centred, jnp.mean(centred * centred, axis=axes, keepdims=True)


@dataclasses.dataclass(frozen=True)
class ZeroVarianceEps:
    """ε = 0 with the rule of torch's batch-norm kernel (which its
    ``instance_norm`` runs): r = 0 where v is exactly 0, so such a group
    normalises to 0 and passes no gradient, at every order. A plain float ε
    is used as it is."""


def _rsqrt(var, eps):
    """r = (v + ε)^(-1/2); 0 where v = 0 for :class:`ZeroVarianceEps`."""
    if isinstance(eps, ZeroVarianceEps):
        return jnp.where(var == 0, jnp.zeros((), var.dtype), lax.rsqrt(var))
    return lax.rsqrt(var + eps)


def _normalize_impl(x, axes: tuple[int, ...], eps: float):
    """x̂ = (x - μ)·r."""
    _, centred, var = moments(x, axes)
    return centred * _rsqrt(var, eps)


def _rstd_impl(x, axes: tuple[int, ...], eps: float):
    """r = (v + ε)^(-1/2), size 1 along ``axes``."""
    return _rsqrt(moments(x, axes)[2], eps)


def _normalize_grad_impl(x, g, axes: tuple[int, ...], eps: float):
    """x̄ = r·(ḡ - mean(ḡ) - x̂·mean(ḡ·x̂)), the fused VJP of ``normalize``."""
    _, centred, var = moments(x, axes)
    r = _rsqrt(var, eps)
    xhat = centred * r
    mean = functools.partial(jnp.mean, axis=axes, keepdims=True)
    return r * (g - mean(g) - xhat * mean(g * xhat))


def _normalize_bwd(residuals, g, axes, eps):
    (x,) = residuals
    return (normalize_grad(x, g, axes, eps),)


def _rstd_bwd(residuals, r_bar, axes, eps):
    # ∂r/∂x_j = -(r²/M)·x̂_j  =>  x̄ = -(1/M)·(r̄·r²)·x̂, r̄·r² repeated over the group.
    (x,) = residuals
    r = rstd(x, axes, eps)
    spread = broadcast_over(r_bar * r * r, axes, x.shape)
    return (-_inverse(_count(x.shape, axes)) * spread * normalize(x, axes, eps),)


def _normalize_grad_bwd(residuals, h, axes, eps):
    # z = normalize_grad(x, ḡ) (saved), q = normalize_grad(x, h):
    #   ḡ̄ = q,   x̄ = -r·(x̂·mean(h·z) + mean(ḡ·x̂)·q + mean(h·x̂)·z).
    x, g, z = residuals
    xhat = normalize(x, axes, eps)
    r = broadcast_over(rstd(x, axes, eps), axes, x.shape)
    q = normalize_grad(x, h, axes, eps)
    terms = (xhat * group_mean(h * z, axes) + group_mean(g * xhat, axes) * q
             + group_mean(h * xhat, axes) * z)
    return -r * terms, q


def _save_with_output(arrays, z):
    return (*arrays, z)


# normalize(x, axes, eps) -> x̂; rstd(x, axes, eps) -> r (size 1 along axes);
# normalize_grad(x, ḡ, axes, eps) -> x̄, the backward of normalize.
normalize = _rules.explicit(_late(_normalize_impl), _normalize_bwd, static=2)
rstd = _rules.explicit(_late(_rstd_impl), _rstd_bwd, static=2)
normalize_grad = _rules.explicit(_late(_normalize_grad_impl), _normalize_grad_bwd,
                                 static=2, save=_save_with_output)


# --------------------------------------------------------------------------
# Argument checks (trace time; every message names the function and argument).


def _arrays(fn: str, input, **params) -> tuple:
    """``input`` and the optional ``params`` as float arrays.

    Each parameter has ``input``'s dtype, or float32 for a float16 / bfloat16
    input (mixed precision, as torch allows).
    """
    x = float_array(fn, "input", input)
    python_dtype = jax.dtypes.canonicalize_dtype(x.dtype)     # for Python lists
    arrays = [None if a is None else float_array(fn, name, a, python_dtype=python_dtype)
              for name, a in params.items()]
    allowed = {jnp.dtype(x.dtype)}
    if jnp.dtype(x.dtype) in HALF:
        allowed.add(jnp.dtype(jnp.float32))
    for name, a in zip(params, arrays):
        if a is not None and jnp.dtype(jax.dtypes.canonicalize_dtype(a.dtype)) not in allowed:
            also = " (or float32)" if len(allowed) > 1 else ""
            raise TypeError(f"{fn}: `{name}` must have the dtype of `input`, "
                            f"{dtype_name(x.dtype)}{also}, got {dtype_name(a.dtype)}")
    return (x, *arrays)


def _check_min_rank(fn: str, x, rank: int, layout: str) -> None:
    if x.ndim < rank:
        raise ValueError(f"{fn}: `input` must be at least {rank}-D, {layout}, got "
                         f"shape {tuple(x.shape)}")


def _check_shape(fn: str, name: str, a, shape: tuple[int, ...], what: str) -> None:
    if a is not None and tuple(a.shape) != shape:
        raise ValueError(f"{fn}: `{name}` must have shape {shape}, {what}, got "
                         f"{tuple(a.shape)}")


def _check_per_channel(fn: str, x, **arrays) -> None:
    """Each array (C,). An empty 1-D input has no channel dim: C = 0 (so
    torch's OpInfo samples give it statistics of shape (0,))."""
    what = f"one value per channel of `input` (shape {tuple(x.shape)})"
    channels = x.shape[1] if x.ndim > 1 else 0
    for name, a in arrays.items():
        _check_shape(fn, name, a, (channels,), what)


def _check_stats_pair(fn: str, running_mean, running_var, *, required: str | None):
    """Both running statistics or neither; both when ``required`` (the reason)."""
    if (running_mean is None) != (running_var is None):
        given, missing = (("running_mean", "running_var") if running_var is None
                          else ("running_var", "running_mean"))
        raise ValueError(f"{fn}: `{missing}` must be an array when `{given}` is "
                         f"given (both or neither), got None")
    if running_mean is None and required:
        raise ValueError(f"{fn}: `running_mean` and `running_var` must be given "
                         f"{required}, got None")


def _real(fn: str, name: str, value) -> float:
    check_static(fn, name, value, "a real number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: `{name}` must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    return float(value)


def _eps(fn: str, eps, *, positive: bool = False, negative_ok: bool = False) -> float:
    """ε as torch takes it: batch norm > 0 in training and >= 0 otherwise;
    ``negative_ok`` (layer, group and instance norm, whose torch kernels take
    any ε: the output is NaN where v + ε < 0) any number. NaN is refused
    (torch returns NaN everywhere)."""
    value = _real(fn, "eps", eps)
    if math.isnan(value):
        raise ValueError(f"{fn}: `eps` must be a number, got {eps!r} (every output "
                         f"would be NaN)")
    if positive and not value > 0:
        raise ValueError(f"{fn}: `eps` must be positive when `training` is True "
                         f"(torch's rule), got {eps!r}")
    if not negative_ok and not value >= 0:
        raise ValueError(f"{fn}: `eps` must be >= 0 (v + eps is square-rooted), "
                         f"got {eps!r}")
    return value


def _momentum(fn: str, momentum, *, allow_none: bool) -> float | None:
    if momentum is None and allow_none:
        return None
    check_static(fn, "momentum", momentum, "a real number")
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        also = " or None" if allow_none else ""
        raise TypeError(f"{fn}: `momentum` must be a real number{also}, got "
                        f"{type(momentum).__name__} {momentum!r}")
    return float(momentum)


def _check_values_per_channel(fn: str, x) -> None:
    # torch: "Expected more than 1 value per channel when training".
    if x.shape[0] * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"{fn}: `input` must have more than 1 value per channel "
                         f"when training (N·spatial > 1, as torch requires), got "
                         f"shape {tuple(x.shape)}")


def _check_spatial_size(fn: str, x) -> None:
    # torch: "Expected more than 1 spatial element when training".
    if math.prod(x.shape[2:]) == 1:
        raise ValueError(f"{fn}: `input` must have more than 1 spatial element "
                         f"when using input statistics (as torch requires), got "
                         f"shape {tuple(x.shape)}")


def _num_groups(fn: str, num_groups, x) -> int:
    check_static(fn, "num_groups", num_groups, "an int")
    groups = _as_int(fn, "num_groups", num_groups)
    if groups < 1:
        raise ValueError(f"{fn}: `num_groups` must be positive, got {groups}")
    channels = x.shape[1]
    if channels % groups:
        raise ValueError(f"{fn}: the channels of `input` (C={channels}, shape "
                         f"{tuple(x.shape)}) must be divisible by `num_groups` "
                         f"(={groups})")
    # torch refuses a single value in a single group (N·C/G·spatial = 1).
    if x.shape[0] * (channels // groups) * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"{fn}: `input` must have more than 1 value to normalise "
                         f"(N·C/num_groups·spatial > 1, as torch requires), got "
                         f"shape {tuple(x.shape)} with num_groups={groups}")
    return groups


def _normalized_shape(fn: str, value, x) -> tuple[int, ...]:
    check_static(fn, "normalized_shape", value, "an int or a tuple of ints")
    entries = tuple(value) if is_sequence(value) else (value,)
    if not entries:
        raise ValueError(f"{fn}: `normalized_shape` must have at least one dim, "
                         f"got {entries!r}")
    shape = tuple(_as_int(fn, "normalized_shape", v) for v in entries)
    if min(shape) < 0:
        raise ValueError(f"{fn}: `normalized_shape` must hold sizes >= 0, got {shape}")
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"{fn}: `input` must end in `normalized_shape` {shape}, "
                         f"(*, {', '.join(map(str, shape))}), got shape "
                         f"{tuple(x.shape)}")
    return shape


def _count_array(fn: str, value):
    """num_batches_tracked as an integer array (None: 0, a fresh module's count)."""
    if value is None:
        return jnp.asarray(0)
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral)
                                       or hasattr(value, "dtype")):
        raise TypeError(f"{fn}: `num_batches_tracked` must be None, an int or a "
                        f"0-d integer array, got {type(value).__name__} {value!r}")
    count = jnp.asarray(value)
    if not jnp.issubdtype(count.dtype, jnp.integer) or count.ndim != 0:
        raise TypeError(f"{fn}: `num_batches_tracked` must be None, an int or a "
                        f"0-d integer array, got {dtype_name(count.dtype)} array of "
                        f"shape {tuple(count.shape)}")
    return count


# --------------------------------------------------------------------------
# The forward paths shared by the public functions (arrays already checked).


def _compute(*arrays):
    """Each array (or None) in the dtype the statistics run in: float32 for the
    half types, else its own."""
    return tuple(None if a is None else a.astype(accumulation_dtype(a.dtype))
                 for a in arrays)


def _eval_normalized(x, running_mean, running_var, eps: float):
    """(x - m)·(v + ε)^(-1/2) per channel (axis 1), the running stats constant."""
    mean, var = (lax.stop_gradient(s).astype(x.dtype) for s in (running_mean, running_var))
    k = lax.rsqrt(var + eps)
    return shift_scale(x, _expand(mean, x.ndim, 1), _expand(k, x.ndim, 1))


def _channel_moments(x, axes: tuple[int, ...]):
    """Per-group mean and unbiased variance (no gradient), from ``moments``."""
    count = _count(x.shape, axes)
    mean, _, var = moments(lax.stop_gradient(x), axes)
    return mean, var * (count / (count - 1))


def _blend(old, new, factor):
    """(1 - f)·old + f·new in ``new``'s dtype, cast to ``old``'s."""
    return ((1 - factor) * old.astype(new.dtype) + factor * new).astype(old.dtype)


# --------------------------------------------------------------------------
# Public functions.


class BatchNormStats(NamedTuple):
    """Running statistics of a batch (or instance) norm layer, as values.

    torch's ``nn.BatchNormNd`` updates its buffers in place during a training
    forward; in JAX the new values are returned instead, by
    :func:`batch_norm_stats` (and :func:`instance_norm_stats`). A NamedTuple,
    hence a pytree: it goes through ``jax.jit`` and into optimiser or
    checkpoint state as it is.

    Attributes:
      running_mean: (C,), the running mean, torch's ``running_mean`` buffer.
      running_var: (C,), the running (unbiased) variance, ``running_var``.
      num_batches_tracked: a 0-d integer array, torch's ``num_batches_tracked``
        (None from :func:`instance_norm_stats`: InstanceNorm keeps no count).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> stats = jaxgrad.BatchNormStats(jnp.zeros(3, jnp.float32),
      ...                                jnp.ones(3, jnp.float32), jnp.asarray(0))
      >>> x = jnp.arange(12, dtype=jnp.float32).reshape(4, 3)   # (N, C) = (4, 3)
      >>> stats = jaxgrad.batch_norm_stats(x, stats.running_mean, stats.running_var,
      ...                                  num_batches_tracked=stats.num_batches_tracked)
      >>> [round(v, 4) for v in stats.running_mean.tolist()], int(stats.num_batches_tracked)
      ([0.45, 0.55, 0.65], 1)
    """

    running_mean: Array
    running_var: Array
    num_batches_tracked: Array | None


def batch_norm(input: ArrayLike, running_mean: ArrayLike | None,
               running_var: ArrayLike | None, weight: ArrayLike | None = None,
               bias: ArrayLike | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Array:
    """Batch normalisation, as ``torch.nn.functional.batch_norm``.

    ``y = (x - μ)/√(σ² + eps)·weight + bias`` per channel (axis 1). With
    ``training=True``, μ and σ² are the batch's mean and biased variance over
    (N, *spatial); otherwise the running statistics. The gradient of a
    training-mode call is the fused formula of the module docstring (and
    ``docs/derivations.md``); the running statistics get no gradient.

    Unlike torch, nothing is updated in place: ``running_mean`` and
    ``running_var`` are only read (eval mode) and checked. Get the values
    ``nn.BatchNormNd`` would store after a training step from
    :func:`batch_norm_stats` (``docs/from-pytorch.md`` ports a training step).

    Args:
      input: (N, C, *spatial): (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W)
        or more spatial dims; a float array. Like torch, an empty 1-D input,
        shape (0,), is also taken (C = 0) and returned as it is.
      running_mean: (C,), or None in training mode (then also ``running_var``).
      running_var: (C,), or None in training mode.
      weight: optional (C,), γ.
      bias: optional (C,), β.
      training: normalise with the batch statistics (True) or the running ones.
      momentum: a real number; it only affects the running statistics (see
        :func:`batch_norm_stats`), checked here for torch's signature.
      eps: ε >= 0 added to the variance; > 0 when ``training``, as torch requires.

    Returns:
      An array of ``input``'s shape and dtype (float16 / bfloat16 computed in
      float32). Parameters and running statistics have ``input``'s dtype, or
      float32 for a half-precision input.

    Raises:
      TypeError: if an array is not a float array of an allowed dtype, or a
        scalar has the wrong type.
      ValueError: if ``input`` has fewer than 2 dims, a per-channel array is
        not (C,), the running statistics are missing in eval mode (or only one
        is given), ``eps`` is negative (or 0 when training), or training sees
        a single value per channel.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]], jnp.float32)   # (N, C) = (2, 2)
      >>> y = jaxgrad.batch_norm(x, None, None, training=True)
      >>> [[round(v, 3) for v in row] for row in y.tolist()]
      [[-1.0, -1.0], [1.0, 1.0]]
      >>> mean, var = jnp.array([1.0, 2.0], jnp.float32), jnp.array([4.0, 1.0], jnp.float32)
      >>> jaxgrad.batch_norm(x, mean, var, eps=0.0).tolist()   # eval mode
      [[0.0, 0.0], [1.0, 4.0]]
    """
    fn = "batch_norm"
    x, running_mean, running_var, weight, bias = _arrays(
        fn, input, running_mean=running_mean, running_var=running_var,
        weight=weight, bias=bias)
    training = parse_bool(fn, "training", training)
    _momentum(fn, momentum, allow_none=False)
    eps = _eps(fn, eps, positive=training)
    if x.shape != (0,):
        _check_min_rank(fn, x, 2, "(N, C, *spatial)")
    _check_stats_pair(fn, running_mean, running_var,
                      required=None if training else "when `training` is False")
    _check_per_channel(fn, x, running_mean=running_mean, running_var=running_var,
                       weight=weight, bias=bias)
    if x.ndim == 1:
        return x            # torch returns an empty input as it is
    if training:
        _check_values_per_channel(fn, x)
    (xc,) = _compute(x)
    if training:
        xhat = normalize(xc, (0, *range(2, x.ndim)), eps)
    else:
        xhat = _eval_normalized(xc, running_mean, running_var, eps)
    return _affine(xhat, *_compute(weight, bias), 1).astype(x.dtype)


def batch_norm_stats(input: ArrayLike, running_mean: ArrayLike, running_var: ArrayLike,
                     momentum: float | None = 0.1,
                     num_batches_tracked: ArrayLike | int | None = None
                     ) -> BatchNormStats:
    """The running statistics ``nn.BatchNormNd`` stores after a training forward.

    For a batch ``input`` with per-channel mean μ and *unbiased* variance s²
    over (N, *spatial) (M values per channel, s² = Σ(x - μ)²/(M - 1)):

      num_batches_tracked + 1 = t,   f = momentum, or 1/t when momentum is None
      running_mean ← (1 - f)·running_mean + f·μ
      running_var  ← (1 - f)·running_var + f·s²

    exactly as ``nn.BatchNormNd(momentum=...).train()(input)`` updates its
    buffers (momentum None: the cumulative average). An empty batch leaves the
    statistics unchanged and still counts, as torch does. The batch moments
    come from the same code as :func:`batch_norm`'s normalisation, under
    ``lax.stop_gradient``: the statistics are values, never differentiated.

    Call it beside ``batch_norm(..., training=True)`` on the same input (under
    ``jax.jit`` the two share the reductions); ``docs/from-pytorch.md`` ports an
    ``nn.BatchNorm2d`` training step.

    Args:
      input: (N, C, *spatial), a float array; at least 2 values per channel
        (or none).
      running_mean: (C,), the current running mean.
      running_var: (C,), the current running variance.
      momentum: a real number (torch accepts any), or None for the cumulative
        average.
      num_batches_tracked: the count before this step: None (a fresh module,
        0), an int or a 0-d integer array.

    Returns:
      ``BatchNormStats(running_mean, running_var, num_batches_tracked)``: the
      new values, in the dtypes of the old ones (the count as an integer
      array).

    Raises:
      TypeError: if an array has the wrong dtype, ``momentum`` is not a real
        number or None, or ``num_batches_tracked`` is not an integer.
      ValueError: if ``input`` has fewer than 2 dims, a running statistic is
        not (C,), or the batch has a single value per channel.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]], jnp.float32)   # (N, C) = (2, 2)
      >>> zeros, ones = jnp.zeros(2, jnp.float32), jnp.ones(2, jnp.float32)
      >>> s = jaxgrad.batch_norm_stats(x, zeros, ones, momentum=None)
      >>> s.running_mean.tolist(), s.running_var.tolist(), int(s.num_batches_tracked)
      ([2.0, 4.0], [2.0, 8.0], 1)
    """
    fn = "batch_norm_stats"
    x, running_mean, running_var = _arrays(fn, input, running_mean=running_mean,
                                           running_var=running_var)
    momentum = _momentum(fn, momentum, allow_none=True)
    count = _count_array(fn, num_batches_tracked) + 1
    _check_min_rank(fn, x, 2, "(N, C, *spatial)")
    _check_stats_pair(fn, running_mean, running_var, required="to be updated")
    _check_per_channel(fn, x, running_mean=running_mean, running_var=running_var)
    _check_values_per_channel(fn, x)
    old_mean, old_var = (lax.stop_gradient(s) for s in (running_mean, running_var))
    axes = (0, *range(2, x.ndim))
    if _count(x.shape, axes) == 0:
        return BatchNormStats(old_mean, old_var, count)
    (xc,) = _compute(x)
    mean, var = (m.reshape(-1) for m in _channel_moments(xc, axes))
    factor = 1 / count.astype(xc.dtype) if momentum is None else momentum
    return BatchNormStats(_blend(old_mean, mean, factor), _blend(old_var, var, factor),
                          count)


def instance_norm(input: ArrayLike, running_mean: ArrayLike | None = None,
                  running_var: ArrayLike | None = None, weight: ArrayLike | None = None,
                  bias: ArrayLike | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Array:
    """Instance normalisation, as ``torch.nn.functional.instance_norm``.

    ``y = (x - μ)/√(σ² + eps)·weight + bias`` with μ, σ² (biased) per sample
    and channel over the spatial dims when ``use_input_stats``; otherwise the
    running statistics per channel (eval mode of ``nn.InstanceNormNd`` with
    ``track_running_stats=True``). The gradient is the rule of
    :func:`batch_norm` with the reduction over the spatial dims only.

    Like ``F.instance_norm``, ``input`` is always (N, C, *spatial): an
    unbatched (C, L) input, which ``nn.InstanceNorm1d`` takes, needs
    ``input[None]``. The running statistics are not updated in place: get
    torch's updated buffers from :func:`instance_norm_stats`.

    Args:
      input: (N, C, *spatial), a float array with more than one spatial element
        when ``use_input_stats``.
      running_mean: optional (C,); required when ``use_input_stats`` is False.
      running_var: optional (C,); given together with ``running_mean``.
      weight: optional (C,), γ.
      bias: optional (C,), β.
      use_input_stats: normalise with each instance's statistics (True) or the
        running ones.
      momentum: a real number; it only affects the running statistics (see
        :func:`instance_norm_stats`).
      eps: ε added to the variance; negative ones are taken as torch's are
        (the output is NaN where v + ε < 0). With ε = 0, an instance of
        variance exactly 0 normalises to 0 with no gradient (torch's kernel
        rule), not to NaN.

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if an array is not a float array of an allowed dtype, or a
        scalar has the wrong type.
      ValueError: if ``input`` has fewer than 2 dims, a per-channel array is
        not (C,), the running statistics are missing with
        ``use_input_stats=False`` (or only one is given), ``eps`` is NaN,
        or the input statistics would come from a single spatial element.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[[1.0, 3.0], [0.0, 4.0]]], jnp.float32)   # (N, C, L) = (1, 2, 2)
      >>> [[round(v, 3) for v in row] for row in jaxgrad.instance_norm(x)[0].tolist()]
      [[-1.0, 1.0], [-1.0, 1.0]]
    """
    fn = "instance_norm"
    x, running_mean, running_var, weight, bias = _arrays(
        fn, input, running_mean=running_mean, running_var=running_var,
        weight=weight, bias=bias)
    use_input_stats = parse_bool(fn, "use_input_stats", use_input_stats)
    _momentum(fn, momentum, allow_none=False)
    eps = _eps(fn, eps, negative_ok=True)
    _check_min_rank(fn, x, 2, "(N, C, *spatial)")
    _check_stats_pair(fn, running_mean, running_var, required=(
        None if use_input_stats else "when `use_input_stats` is False"))
    _check_per_channel(fn, x, running_mean=running_mean, running_var=running_var,
                       weight=weight, bias=bias)
    if use_input_stats:
        _check_spatial_size(fn, x)
    (xc,) = _compute(x)
    if use_input_stats:
        # torch's kernel: an instance of variance 0 with eps = 0 gives 0, not 0/0
        xhat = normalize(xc, tuple(range(2, x.ndim)), ZeroVarianceEps() if eps == 0 else eps)
    else:
        xhat = _eval_normalized(xc, running_mean, running_var, eps)
    return _affine(xhat, *_compute(weight, bias), 1).astype(x.dtype)


def instance_norm_stats(input: ArrayLike, running_mean: ArrayLike,
                        running_var: ArrayLike, momentum: float | None = 0.1
                        ) -> BatchNormStats:
    """The running statistics ``F.instance_norm`` stores when it uses input stats.

    torch updates them as a batch norm over the N·C instances, then averages
    the N updated copies of each channel: with μ[n, c] and the unbiased
    variance s²[n, c] over the spatial dims (M elements, divisor M - 1),

      running_mean ← mean_n((1 - f)·running_mean + f·μ[n, :])
      running_var  ← mean_n((1 - f)·running_var + f·s²[n, :])

    with f = ``momentum``; None reads as 0 (statistics unchanged), as
    ``nn.InstanceNormNd`` passes it. Like torch, an empty spatial extent leaves
    them unchanged and an empty batch (N = 0) makes them NaN. Not
    differentiated (``lax.stop_gradient``).

    Args:
      input: (N, C, *spatial), a float array with more than one spatial element.
      running_mean: (C,), the current running mean.
      running_var: (C,), the current running variance.
      momentum: a real number, or None (read as 0).

    Returns:
      ``BatchNormStats(running_mean, running_var, None)`` with the new values
      in the dtypes of the old ones (InstanceNorm keeps no batch count).

    Raises:
      TypeError: if an array has the wrong dtype or ``momentum`` is not a real
        number or None.
      ValueError: if ``input`` has fewer than 2 dims or a single spatial
        element, or a running statistic is not (C,).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[[1.0, 3.0]], [[0.0, 4.0]]], jnp.float32)   # (N, C, L) = (2, 1, 2)
      >>> zeros, ones = jnp.zeros(1, jnp.float32), jnp.ones(1, jnp.float32)
      >>> s = jaxgrad.instance_norm_stats(x, zeros, ones, momentum=0.5)
      >>> s.running_mean.tolist(), s.running_var.tolist()   # s² = 2 and 8
      ([1.0], [3.0])
    """
    fn = "instance_norm_stats"
    x, running_mean, running_var = _arrays(fn, input, running_mean=running_mean,
                                           running_var=running_var)
    momentum = _momentum(fn, momentum, allow_none=True)
    _check_min_rank(fn, x, 2, "(N, C, *spatial)")
    _check_stats_pair(fn, running_mean, running_var, required="to be updated")
    _check_per_channel(fn, x, running_mean=running_mean, running_var=running_var)
    _check_spatial_size(fn, x)
    old_mean, old_var = (lax.stop_gradient(s) for s in (running_mean, running_var))
    axes = tuple(range(2, x.ndim))
    (xc,) = _compute(x)
    shape = x.shape[:2]
    if _count(x.shape, axes) == 0:
        mean = var = None
    else:
        mean, var = (m.reshape(shape) for m in _channel_moments(xc, axes))
    factor = 0.0 if momentum is None else momentum

    def update(old, new):
        old = old.astype(xc.dtype)
        old = jnp.broadcast_to(old, shape)      # (C,) -> (N, C), explicitly
        per_instance = old if new is None else _blend(old, new, factor)
        return jnp.mean(per_instance, axis=0)

    return BatchNormStats(update(old_mean, mean).astype(running_mean.dtype),
                          update(old_var, var).astype(running_var.dtype), None)


def group_norm(input: ArrayLike, num_groups: int, weight: ArrayLike | None = None,
               bias: ArrayLike | None = None, eps: float = 1e-5) -> Array:
    """Group normalisation, as ``torch.nn.functional.group_norm``.

    The C channels are split into ``num_groups`` consecutive groups; each
    (sample, group) is normalised with the mean and biased variance over its
    channels and spatial positions, then ``weight`` and ``bias`` apply per
    channel. The gradient is the rule of :func:`batch_norm` with that
    reduction.

    Args:
      input: (N, C, *spatial), a float array with at least 2 dims (torch reads
        a 2-D input as (N, C); there is no unbatched form).
      num_groups: a positive int dividing C.
      weight: optional (C,), γ.
      bias: optional (C,), β.
      eps: ε added to the variance; negative ones are taken as torch's are
        (the output is NaN where v + ε < 0).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if an array is not a float array of an allowed dtype, or a
        scalar has the wrong type.
      ValueError: if ``input`` has fewer than 2 dims, C is not divisible by
        ``num_groups`` (both shown), ``weight``/``bias`` are not (C,),
        ``eps`` is NaN, or there is a single value in all (torch's rule).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 3.0, 10.0, 30.0]], jnp.float32)   # (N, C) = (1, 4)
      >>> [round(v, 3) for v in jaxgrad.group_norm(x, 2)[0].tolist()]
      [-1.0, 1.0, -1.0, 1.0]
    """
    fn = "group_norm"
    x, weight, bias = _arrays(fn, input, weight=weight, bias=bias)
    eps = _eps(fn, eps, negative_ok=True)
    _check_min_rank(fn, x, 2, "(N, C, *spatial)")
    groups = _num_groups(fn, num_groups, x)
    _check_per_channel(fn, x, weight=weight, bias=bias)
    (xc,) = _compute(x)
    n, c = x.shape[:2]
    grouped = xc.reshape((n, groups, c // groups) + x.shape[2:])
    xhat = normalize(grouped, tuple(range(2, grouped.ndim)), eps).reshape(x.shape)
    return _affine(xhat, *_compute(weight, bias), 1).astype(x.dtype)


def layer_norm(input: ArrayLike, normalized_shape: int | Sequence[int],
               weight: ArrayLike | None = None, bias: ArrayLike | None = None,
               eps: float = 1e-5) -> Array:
    """Layer normalisation, as ``torch.nn.functional.layer_norm``.

    Each index of the leading dims is normalised with the mean and biased
    variance over the trailing ``normalized_shape`` dims; ``weight`` and
    ``bias`` have that shape. Any number of leading dims, none included
    (an unbatched input). The gradient is the rule of :func:`batch_norm` with
    that reduction.

    Args:
      input: (*, *normalized_shape), a float array.
      normalized_shape: the trailing shape, a non-empty tuple of ints (or an
        int, as ``nn.LayerNorm`` takes it).
      weight: optional, of shape ``normalized_shape``, γ.
      bias: optional, of shape ``normalized_shape``, β.
      eps: ε added to the variance; negative ones are taken as torch's are
        (the output is NaN where v + ε < 0).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if an array is not a float array of an allowed dtype, or a
        scalar has the wrong type.
      ValueError: if ``normalized_shape`` is empty or is not the end of
        ``input``'s shape, ``weight``/``bias`` do not have that shape, or
        ``eps`` is NaN.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 3.0], [2.0, 2.0]], jnp.float32)
      >>> [[round(v, 3) for v in row] for row in jaxgrad.layer_norm(x, (2,)).tolist()]
      [[-1.0, 1.0], [0.0, 0.0]]
    """
    fn = "layer_norm"
    x, weight, bias = _arrays(fn, input, weight=weight, bias=bias)
    eps = _eps(fn, eps, negative_ok=True)
    shape = _normalized_shape(fn, normalized_shape, x)
    for name, a in (("weight", weight), ("bias", bias)):
        _check_shape(fn, name, a, shape, "the `normalized_shape`")
    (xc,) = _compute(x)
    start = x.ndim - len(shape)
    xhat = normalize(xc, tuple(range(start, x.ndim)), eps)
    return _affine(xhat, *_compute(weight, bias), start).astype(x.dtype)
