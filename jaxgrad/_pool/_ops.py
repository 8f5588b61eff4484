"""Pooling with PyTorch's signatures and explicit, differentiable VJPs.

  max_pool{1,2,3}d            y = the largest entry of each window
  avg_pool{1,2,3}d            y = the sum of each window / its divisor
  adaptive_max_pool{1,2,3}d   as max pooling, over adaptive bins
  adaptive_avg_pool{1,2,3}d   as average pooling, over adaptive bins

Every op gathers a static window index set and reduces it. The sets come from
``_spec`` (one :class:`~jaxgrad._pool._spec.Windows` table per spatial dim, built at
trace time from Python ints), so the array code here never does window
arithmetic. Notation: x (N, C, *I) with spatial multi-index i, y (N, C, *O)
with multi-index o; the window of o is the product over dims k of the rows
``index_k[o_k][j_k]`` for taps j_k; rows outside the input are padding.

Average pooling is a fixed linear map and max pooling is a selection, so
their rules close in pairs (each rule's VJP is the other member of the pair):

  window_mean(x)          y[o] = Σ_{i ∈ W(o)} x[i] / D[o]
  window_mean_adjoint(g)  x̄[i] = Σ_{o : i ∈ W(o)} g[o] / D[o]
  window_max(x)           y[o] = x[π(o)],  π(o) the torch winner of W(o)
  scatter_selected(g, π)  x̄[i] = Σ_{o : π(o) = i} g[o]
  gather_selected(c, π)   ḡ[o] = c[π(o)]

(batch and channel indices n, c are carried along unchanged and left out).
Half-precision sums accumulate in float32 and are cast back.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _rules
from .._args import check_rank, differentiable, float_array, int_tuple, parse_bool
from .._precision import accumulation_dtype
from .._typing import Array, ArrayLike, Size
from .._variants import variants
from . import _docs
from ._spec import (PoolSpec, Windows, adaptive_bins, adaptive_windows,
                    avg_pool_divisors, check_pool_output, check_pool_padding,
                    check_windows_reach_input, parse_divisor_override,
                    parse_output_size, parse_pool_stride, pool_output_size,
                    pool_windows)

_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _index_dtype():
    """torch's int64 indices; int32 when x64 is off."""
    return jax.dtypes.canonicalize_dtype(jnp.int64)


# --------------------------------------------------------------------------
# Window gather along one axis and its adjoint (plain array code, no rules).
#
#   x̂[.., o, j, ..] = x[.., index[o][j], ..]           (0 where index is padding)
#   x̄[.., i, ..]    = Σ_{o,j : index[o][j] = i} v[.., o, j, ..]
#
# A table in arithmetic progression, index[o][j] = first + o·step + j·gap, is
# cut from the zero-padded axis without a gather: by one reshape when the
# windows tile it (gap 1, step J: stride == kernel, global or evenly dividing
# adaptive bins), else by strided slices, one per tap (stride ``step``) or one
# per window (stride ``gap``), whichever is fewer. Their adjoints are the
# reshape back and interior-padded ``lax.pad`` s (negative edges crop the
# padding away). Any other table (unevenly overlapping adaptive bins) is a
# gather and a scatter-add.


def _pad_axis(x, axis: int, pad: tuple[int, int]):
    if pad == (0, 0):
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = pad
    return jnp.pad(x, widths)


def _tiles(win: Windows) -> bool:
    """Whether the windows are consecutive, non-overlapping runs of rows."""
    progression = win.progression
    return progression is not None and progression[2] == 1 and progression[1] == win.taps


def _windows(x, axis: int, win: Windows):
    """(..., I, ...) -> (..., O, J, ...): every window's taps, 0 on padding."""
    lo, hi = win.pad
    padded = _pad_axis(x, axis, (lo, hi))
    if win.progression is None:
        return jnp.take(padded, win.table() + lo, axis=axis, mode="clip")
    first, step, gap = win.progression
    if _tiles(win):
        run = lax.slice_in_dim(padded, first + lo, first + lo + win.out * win.taps,
                               axis=axis)
        return run.reshape(x.shape[:axis] + (win.out, win.taps) + x.shape[axis + 1:])
    if win.out < win.taps:   # few long windows: one slice per window
        pieces = [_slice(padded, axis, first + lo + o * step, win.taps, gap)
                  for o in range(win.out)]
        return jnp.stack(pieces, axis=axis)
    columns = [_slice(padded, axis, first + lo + j * gap, win.out, step)
               for j in range(win.taps)]
    return jnp.stack(columns, axis=axis + 1)


def _slice(x, axis: int, start: int, count: int, step: int):
    """``count`` rows from ``start`` every ``step`` rows."""
    return lax.slice_in_dim(x, start, start + (count - 1) * step + 1, stride=step,
                            axis=axis)


def _unslice(column, axis: int, size: int, start: int, count: int, step: int):
    """Adjoint of taking ``count`` rows from ``start`` every ``step`` of ``size`` rows."""
    config = [(0, 0, 0)] * column.ndim
    config[axis] = (start, size - start - (count - 1) * step - 1, step - 1)
    return lax.pad(column, jnp.zeros((), column.dtype), config)


def _windows_adjoint(v, axis: int, win: Windows):
    """(..., O, J, ...) -> (..., I, ...): the adjoint of :func:`_windows`."""
    lo, hi = win.pad
    if win.progression is None:
        moved = jnp.moveaxis(v, (axis, axis + 1), (0, 1))
        out = jnp.zeros((win.size + lo + hi,) + moved.shape[2:], v.dtype)
        out = out.at[win.table() + lo].add(moved)
        return jnp.moveaxis(out[lo:lo + win.size], 0, axis)
    first, step, gap = win.progression
    if _tiles(win):
        run = v.reshape(v.shape[:axis] + (win.out * win.taps,) + v.shape[axis + 2:])
        return _unslice(run, axis, win.size, first, win.out * win.taps, 1)
    if win.out < win.taps:
        parts = [_unslice(lax.index_in_dim(v, o, axis, keepdims=False), axis, win.size,
                          first + o * step, win.taps, gap) for o in range(win.out)]
    else:
        parts = [_unslice(lax.index_in_dim(v, j, axis + 1, keepdims=False), axis,
                          win.size, first + j * gap, win.out, step)
                 for j in range(win.taps)]
    return functools.reduce(lax.add, parts)


# --------------------------------------------------------------------------
# Average pooling: a fixed linear map and its adjoint.
#
#   y[n, c, o] = (1/D[o]) Σ_{j_1..j_n} x̂[n, c, index_1[o_1][j_1], ..., index_n[o_n][j_n]]
#
# with x̂ = x on the input and 0 on padding (what count_include_pad counts is
# only in the divisor D, a static table from ``_spec``). The sum is separable,
# one window sum per axis. Its adjoint spreads g/D back over every window:
#
#   x̄[n, c, i] = Σ_{o : i ∈ W(o)} g[n, c, o] / D[o]
#
# and as both maps are linear, the VJP of each is the other.


def _spatial_axes(ndim: int, spec: PoolSpec) -> range:
    return range(ndim - len(spec.windows), ndim)


def _divisor(spec: PoolSpec, dtype):
    return jnp.asarray(spec.divisor(), dtype)


def _mean_impl(x, spec: PoolSpec):
    """y[o] = Σ_{i ∈ W(o)} x[i] / D[o] over the trailing len(spec.windows) axes."""
    acc = accumulation_dtype(x.dtype)
    y = x.astype(acc)
    for axis, win in zip(_spatial_axes(x.ndim, spec), spec.windows):
        y = jnp.sum(_windows(y, axis, win), axis=axis + 1)
    if not jnp.issubdtype(acc, jnp.inexact):
        # integers (no gradient): an integer sum divided towards 0, as torch's
        # (jnp.sum widens a narrow integer type under x64; the quotient fits)
        return lax.div(y, jnp.broadcast_to(_divisor(spec, y.dtype), y.shape)).astype(x.dtype)
    return (y / _divisor(spec, acc)).astype(x.dtype)


def _mean_adjoint_impl(g, spec: PoolSpec):
    """x̄[i] = Σ_{o : i ∈ W(o)} g[o] / D[o]: the adjoint of :func:`window_mean`."""
    acc = accumulation_dtype(g.dtype)
    x = g.astype(acc) / _divisor(spec, acc)
    for axis, win in zip(_spatial_axes(g.ndim, spec), spec.windows):
        spread = jnp.expand_dims(x, axis + 1)
        shape = x.shape[:axis + 1] + (win.taps,) + x.shape[axis + 1:]
        x = _windows_adjoint(jnp.broadcast_to(spread, shape), axis, win)
    return x.astype(g.dtype)


window_mean, window_mean_adjoint = _rules.linear_pair(_mean_impl, _mean_adjoint_impl)


# --------------------------------------------------------------------------
# Max pooling: a selection, computed in the forward pass.
#
#   y[n, c, o] = x[n, c, π(n, c, o)],   π = Σ_k i_k · Π_{k' > k} I_{k'}
#
# π(n, c, o) is the position torch picks in W(o), as a flat per-channel index
# (torch's ``return_indices`` convention). torch visits the window's taps in
# row-major order, starting from (-inf, the first tap on the input), and a tap
# replaces the pick if it is larger or NaN: so the pick is the last NaN of the
# window if it holds one, else its first maximum (-inf included), and padding
# is never a candidate. π is piecewise constant in x, so it has no derivative:
#
#   x̄[n, c, i] = Σ_{o : π(n, c, o) = i} g[n, c, o]        (scatter-add)
#
# overlapping windows accumulate. That scatter is linear in g with adjoint
#
#   ḡ[n, c, o] = ct[n, c, π(n, c, o)]                     (gather)
#
# and the gather's adjoint is the scatter again, so the pair closes. π is an
# integer input to both and gets no cotangent, as in torch, whose double
# backward of max pooling is also zero in x.
#
# The forward has two implementations of the same rule. Regular windows
# (every table a progression) replay torch's loop, one strided slice per tap,
# which XLA fuses into one pass over x without temporaries; its program grows
# with the taps per window. Irregular windows (uneven adaptive bins), and
# windows with many taps that barely overlap (global and coarse adaptive
# pooling), are cut out side by side and reduced at once: one reduction, but
# the cut-out copy is as large as x times the overlap.

_SCAN_TAPS = 64      # above this many taps per window, prefer the reduction...
_MAX_OVERLAP = 2.0   # ...if the windows hold at most this many copies of x


def _per_dim(values: np.ndarray, dim: int, n: int, dtype=None):
    """A per-output vector of dim ``dim`` shaped to broadcast against (..., O_1, ..., O_n)."""
    shape = [1] * n
    shape[dim] = values.shape[0]
    return jnp.asarray(values.reshape(shape), dtype)


def _tap(padded, lead: int, spec: PoolSpec, taps: tuple[int, ...]):
    """One tap (j_1, ..., j_n) of every window: its values, validity and flat position."""
    index = _index_dtype()
    v, valid, position = padded, True, 0
    for dim, (win, j) in enumerate(zip(spec.windows, taps)):
        first, step, gap = win.progression
        v = _slice(v, lead + dim, first + win.pad[0] + j * gap, win.out, step)
        inner = math.prod(spec.in_spatial[dim + 1:])
        valid = valid & _per_dim(win.valid()[:, j], dim, len(taps))
        position = position + _per_dim(win.table()[:, j] * inner, dim, len(taps), index)
    return v, valid, position


def _lowest(dtype):
    """Where the max starts and what padding holds: -inf, or an integer
    dtype's smallest value (which never replaces torch's first pick)."""
    return jnp.iinfo(dtype).min if jnp.issubdtype(dtype, jnp.integer) else -jnp.inf


def _first_valid_position(spec: PoolSpec):
    """Flat position of each window's first tap on the input: torch's starting pick."""
    n, total = len(spec.windows), 0
    for dim, win in enumerate(spec.windows):
        first = win.table()[np.arange(win.out), win.valid().argmax(axis=1)]
        inner = math.prod(spec.in_spatial[dim + 1:])
        total = total + _per_dim(first * inner, dim, n, _index_dtype())
    return total


def _scan_impl(x, spec: PoolSpec):
    """(y, π) by torch's loop over the taps in row-major order."""
    lead = x.ndim - len(spec.windows)
    padded = x
    for dim, win in enumerate(spec.windows):
        padded = _pad_axis(padded, lead + dim, win.pad)
    # Seed from one tap, not from a fresh array, so that under explicit mesh
    # axes best and pick carry the output's sharding (a batch-sharded x must
    # not meet a replicated seed in ``where``).
    like = _tap(padded, lead, spec, (0,) * len(spec.windows))[0]
    best = jnp.full_like(like, _lowest(x.dtype))
    pick = jnp.zeros_like(like, _index_dtype()) + _first_valid_position(spec)
    for taps in itertools.product(*(range(w.taps) for w in spec.windows)):
        v, valid, position = _tap(padded, lead, spec, taps)
        replace = valid & ((v > best) | jnp.isnan(v))
        best, pick = jnp.where(replace, v, best), jnp.where(replace, position, pick)
    return best, pick


def _tap_table(table: np.ndarray, dim: int, n: int) -> np.ndarray:
    """Dim ``dim``'s (O, J) table shaped to broadcast against (..., O_1, J_1, ..., O_n, J_n)."""
    shape = [1] * (2 * n)
    shape[2 * dim:2 * dim + 2] = table.shape
    return table.reshape(shape)


def _reduce_impl(x, spec: PoolSpec):
    """(y, π) by cutting out every window, then one reduction over the taps.

    Within a window the flat position grows with the taps in row-major order,
    so the first maximum is the smallest position holding the maximum and the
    last NaN the largest position holding a NaN: plain min / max reductions
    over static position tables, no argmax and no gather.
    """
    n, lead = len(spec.windows), x.ndim - len(spec.windows)
    v = x
    for dim in reversed(range(n)):    # expanding a later axis keeps earlier ones
        v = _windows(v, lead + dim, spec.windows[dim])
    valid, position = True, 0
    for dim, win in enumerate(spec.windows):
        inner = math.prod(spec.in_spatial[dim + 1:])
        valid = valid & _tap_table(win.valid(), dim, n)
        position = position + jnp.asarray(_tap_table(win.table() * inner, dim, n),
                                          _index_dtype())
    taps = tuple(lead + 2 * dim + 1 for dim in range(n))
    masked = jnp.where(valid, v, jnp.asarray(_lowest(x.dtype), x.dtype))
    top = jnp.max(masked, axis=taps, keepdims=True)      # NaN if any valid NaN
    none = jnp.iinfo(position.dtype).max
    first_max = jnp.min(jnp.where((masked == top) & valid, position, none), axis=taps)
    last_nan = jnp.max(jnp.where(jnp.isnan(masked), position, -1), axis=taps)
    top = jnp.squeeze(top, taps)
    return top, jnp.where(jnp.isnan(top), last_nan, first_max)


def _max_impl(x, spec: PoolSpec):
    if any(w.progression is None for w in spec.windows):
        return _reduce_impl(x, spec)
    taps = math.prod(w.taps for w in spec.windows)
    overlap = math.prod(w.out * w.taps / w.size for w in spec.windows)
    if taps > _SCAN_TAPS and overlap <= _MAX_OVERLAP:
        return _reduce_impl(x, spec)
    return _scan_impl(x, spec)


def window_max(x, spec: PoolSpec):
    """(y, π): torch's pick in every window and its flat per-channel index
    (an integer x, which has no derivative, without the rule)."""
    if not differentiable(x):
        with _rules.own_promotion():
            return _max_impl(x, spec)
    return _chosen_max((spec,), x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _window_max(x, spec: PoolSpec):
    with _rules.own_promotion():
        return _max_impl(x, spec)


def _window_max_fwd(x, spec):
    y, flat = _chosen_max((spec,), x)
    return (y, flat), flat


def _window_max_bwd(spec, flat, cotangents):
    g, _ = cotangents   # the integer index has a float0 cotangent
    return (scatter_selected(g, flat, spec.in_spatial),)


_window_max.defvjp(_window_max_fwd, _window_max_bwd)


def _window_max_tangent(choose, static, primals, tangents, out):
    # ẏ[o] = ẋ[π(o)]: the same selection; the index has no tangent.
    (spec,), (_, flat) = static, out
    return (gather_selected(tangents[0], flat, spec.in_spatial),
            np.zeros(flat.shape, jax.dtypes.float0))


# Forward mode (see _rules.with_forward_mode); gather_selected is declared below.
_chosen_max = _rules.with_forward_mode(lambda static, x: _window_max(x, *static),
                                       _window_max_tangent)


def _flatten_spatial(a, n: int):
    """(*lead, *spatial) -> (*lead, Π spatial).

    The lead dims (batch, channels) stay separate, with the scatter and gather
    below batched over them, so a batch-sharded array stays sharded: merging
    a sharded batch into another dim is a reshape explicit mesh axes reject.
    """
    return a.reshape(a.shape[:a.ndim - n] + (math.prod(a.shape[a.ndim - n:]),))


def _scatter_row(values, flat, size: int):
    return jnp.zeros((size,), values.dtype).at[flat].add(values, mode="promise_in_bounds")


def _scatter_impl(g, flat, in_spatial):
    """x̄[i] = Σ_{o : flat[o] = i} g[o] into trailing dims ``in_spatial``."""
    n = len(in_spatial)
    lead_shape = g.shape[:g.ndim - n]
    scatter = functools.partial(_scatter_row, size=math.prod(in_spatial))
    for _ in lead_shape:
        scatter = jax.vmap(scatter)
    acc = accumulation_dtype(g.dtype)
    out = scatter(_flatten_spatial(g, n).astype(acc), _flatten_spatial(flat, n))
    return out.reshape(lead_shape + tuple(in_spatial)).astype(g.dtype)


def _gather_impl(c, flat, in_spatial):
    """ḡ[o] = c[flat[o]] for c of trailing dims ``in_spatial``: the scatter's adjoint."""
    n = len(in_spatial)
    picked = jnp.take_along_axis(_flatten_spatial(c, n), _flatten_spatial(flat, n),
                                 axis=-1, mode="promise_in_bounds")
    return picked.reshape(flat.shape)


scatter_selected, gather_selected = _rules.linear_pair(_scatter_impl, _gather_impl,
                                                      constants=1)


# --------------------------------------------------------------------------
# Argument normalisation: torch-style arguments -> one PoolSpec.


def _batch_input(fn: str, x, n: int, int_ok: bool):
    """Check x is (N, C, *spatial) or unbatched (C, *spatial); return it batched.
    Integer x where torch's pooling takes them (``int_ok``: max and average
    pooling; not the adaptive ones)."""
    x = float_array(fn, "input", x, int_ok=int_ok)
    dims = _SPATIAL_NAMES[n]
    check_rank(fn, "input", x, (n + 1, n + 2), f"(unbatched (C, {dims}) or batched "
               f"(N, C, {dims}))")
    if any(size < 1 for size in x.shape[-n - 1:]):
        raise ValueError(f"{fn}: `input` must have non-empty channel and spatial "
                         f"dims, got shape {tuple(x.shape)} (only the batch may be "
                         f"empty)")
    return (x, False) if x.ndim == n + 2 else (x[None], True)


def _window_args(fn: str, n: int, kernel_size, stride, padding, ceil_mode):
    # torch's pooling reads a one-element tuple as that value for every dim.
    kernel = int_tuple(fn, "kernel_size", kernel_size, n, minimum=1, broadcast_one=True)
    stride = parse_pool_stride(fn, stride, kernel)
    padding = int_tuple(fn, "padding", padding, n, minimum=0, broadcast_one=True)
    ceil_mode = parse_bool(fn, "ceil_mode", ceil_mode)
    check_pool_padding(fn, padding, kernel)
    return kernel, stride, padding, ceil_mode


def _max_pool_spec(fn: str, spatial, kernel_size, stride, padding, dilation,
                   ceil_mode) -> PoolSpec:
    n = len(spatial)
    kernel, stride, padding, ceil_mode = _window_args(fn, n, kernel_size, stride,
                                                      padding, ceil_mode)
    dilation = int_tuple(fn, "dilation", dilation, n, minimum=1, broadcast_one=True)
    out = tuple(pool_output_size(i, k, s, p, d, ceil_mode) for i, k, s, p, d in
                zip(spatial, kernel, stride, padding, dilation))
    settings = (f"kernel_size {kernel}, stride {stride}, padding {padding}, "
                f"dilation {dilation}, ceil_mode={ceil_mode}")
    check_pool_output(fn, spatial, out, settings, dilated=True)
    windows = tuple(pool_windows(i, k, s, p, d, o) for i, k, s, p, d, o in
                    zip(spatial, kernel, stride, padding, dilation, out))
    check_windows_reach_input(fn, windows, settings)
    return PoolSpec(windows)


def _avg_pool_spec(fn: str, spatial, kernel_size, stride, padding, ceil_mode,
                   count_include_pad, divisor_override) -> PoolSpec:
    n = len(spatial)
    kernel, stride, padding, ceil_mode = _window_args(fn, n, kernel_size, stride,
                                                      padding, ceil_mode)
    count_include_pad = parse_bool(fn, "count_include_pad", count_include_pad)
    divisor_override = parse_divisor_override(fn, divisor_override)
    out = tuple(pool_output_size(i, k, s, p, 1, ceil_mode) for i, k, s, p in
                zip(spatial, kernel, stride, padding))
    check_pool_output(fn, spatial, out, f"kernel_size {kernel}, stride {stride}, "
                      f"padding {padding}, ceil_mode={ceil_mode}")
    args = tuple(zip(spatial, kernel, stride, padding, out))
    return PoolSpec(tuple(pool_windows(i, k, s, p, 1, o) for i, k, s, p, o in args),
                    tuple(avg_pool_divisors(i, k, s, p, o, count_include_pad)
                          for i, k, s, p, o in args),
                    divisor_override)


def _adaptive_spec(fn: str, spatial, output_size, *, mean: bool) -> PoolSpec:
    out = parse_output_size(fn, output_size, spatial, allow_none=len(spatial) > 1)
    windows = tuple(adaptive_windows(i, o) for i, o in zip(spatial, out))
    if not mean:
        return PoolSpec(windows)
    return PoolSpec(windows, tuple(
        tuple(end - start for start, end in adaptive_bins(i, o))
        for i, o in zip(spatial, out)))


# One compiled program per (spec, shape) when called eagerly (op-by-op
# dispatch of the per-tap slices is slow); inside a caller's jit they inline.
# Under jax.jvp the rule itself: a custom_vjp staged in a jit cannot get its
# forward-mode twin.
_jitted_max = jax.jit(window_max, static_argnums=1)
_jitted_mean = jax.jit(window_mean, static_argnums=1)


def _pooled(fn, jitted, x, spec):
    return (fn if _rules.forward_mode_in_stack() else jitted)(x, spec)


def _unbatch(y, unbatched: bool):
    return y[0] if unbatched else y


def _max_pool(fn: str, n: int, input, spec_fn, return_indices, int_ok: bool = False):
    x, unbatched = _batch_input(fn, input, n, int_ok)
    spec = spec_fn(x.shape[2:])
    return_indices = parse_bool(fn, "return_indices", return_indices)
    y, flat = _pooled(window_max, _jitted_max, x, spec)
    if return_indices:
        return _unbatch(y, unbatched), _unbatch(flat, unbatched)
    return _unbatch(y, unbatched)


def _mean_pool(fn: str, n: int, input, spec_fn, int_ok: bool = False):
    x, unbatched = _batch_input(fn, input, n, int_ok)
    return _unbatch(_pooled(window_mean, _jitted_mean, x, spec_fn(x.shape[2:])), unbatched)


# --------------------------------------------------------------------------
# The N-d implementations of the public functions: ``VARIANTS``, made in
# ``_ranked`` with the docstrings of ``_pool_docs``. ``fn`` is the public name
# the errors show.


def max_pool_nd(fn: str, n: int, input: ArrayLike, kernel_size: Size,
                stride: Size | None = None, padding: Size = 0, dilation: Size = 1,
                ceil_mode: bool = False,
                return_indices: bool = False) -> Array | tuple[Array, Array]:
    """``max_pool{n}d``."""
    spec_fn = functools.partial(_max_pool_spec, fn, kernel_size=kernel_size,
                                stride=stride, padding=padding, dilation=dilation,
                                ceil_mode=ceil_mode)
    return _max_pool(fn, n, input, spec_fn, return_indices, int_ok=True)


def avg_pool_nd(fn: str, n: int, input: ArrayLike, kernel_size: Size,
                stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False,
                count_include_pad: bool = True,
                divisor_override: int | None = None) -> Array:
    """``avg_pool{n}d``."""
    spec_fn = functools.partial(_avg_pool_spec, fn, kernel_size=kernel_size,
                                stride=stride, padding=padding, ceil_mode=ceil_mode,
                                count_include_pad=count_include_pad,
                                divisor_override=divisor_override)
    return _mean_pool(fn, n, input, spec_fn, int_ok=True)


# Adaptive pooling: output o of a dim of size I -> O reads the bin
# [⌊o·I/O⌋, ⌈(o+1)·I/O⌉); bins overlap when O does not divide I.


def adaptive_max_pool_nd(fn: str, n: int, input: ArrayLike,
                         output_size: int | Sequence[int | None],
                         return_indices: bool = False) -> Array | tuple[Array, Array]:
    """``adaptive_max_pool{n}d``."""
    spec_fn = functools.partial(_adaptive_spec, fn, output_size=output_size, mean=False)
    return _max_pool(fn, n, input, spec_fn, return_indices)


def adaptive_avg_pool_nd(fn: str, n: int, input: ArrayLike,
                         output_size: int | Sequence[int | None]) -> Array:
    """``adaptive_avg_pool{n}d``."""
    spec_fn = functools.partial(_adaptive_spec, fn, output_size=output_size, mean=True)
    return _mean_pool(fn, n, input, spec_fn)


_ONE_D = {1: {"output_size": "Size"}}   # torch's 1-D adaptive pools take no None
VARIANTS = (
    *variants(max_pool_nd, "max_pool{d}", _docs.MAX_POOL),
    *variants(avg_pool_nd, "avg_pool{d}", _docs.AVG_POOL,
              omit={1: ("divisor_override",)}),    # as torch's avg_pool1d
    *variants(adaptive_max_pool_nd, "adaptive_max_pool{d}",
              _docs.ADAPTIVE_MAX_POOL, retype=_ONE_D),
    *variants(adaptive_avg_pool_nd, "adaptive_avg_pool{d}",
              _docs.ADAPTIVE_AVG_POOL, retype=_ONE_D),
)
