"""The three bilinear kernels of the convolution family and their explicit VJPs.

  conv_core(x, w)         y = x ⋆ w                      (forward convolution)
  input_grad(g, w)        x̄ = (∂y/∂x)ᵀ g                 (transposed convolution)
  weight_grad(x, g)       w̄ = (∂y/∂w)ᵀ g                 (correlation of x with g)

Each one is a ``jax.custom_vjp`` whose backward is written in terms of the other
two, so the family is closed under differentiation: reverse-over-reverse (and
any higher order) runs these hand-written rules only. Every array lives in
PyTorch's layout: x (N, C_in, *I), w (C_out, C_in/G, *K), y and g (N, C_out, *O).

Index notation. With groups G, C_in = G·Cᵢ, C_out = G·Cₒ, write input channel
γCᵢ+c and output channel γCₒ+o for group γ. Per spatial dim (see ``_spec``):

  y[n, γCₒ+o, p] = Σ_{c,k} x̂[n, γCᵢ+c, p·s + k·d] · w[γCₒ+o, c, k]

where x̂ is x zero-padded by (lo, hi): x̂[.., i+lo] = x[.., i].

All three share one primitive, ``lax.conv_general_dilated``. Half-precision
arrays accumulate in float32 and are cast back to their dtype. The rules keep
JAX's sharding types: the weight gradient names its output sharding under
explicit mesh axes (``contraction_sharding``), and inside ``shard_map`` every
cotangent varies along the same mesh axes as its primal (``match_vma``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from . import _taps
from ._plan import Placement, choose, split_groups, weight_split
from ._precision import accumulation_dtype, preferred_element_type
from ._spec import ConvSpec, effective_kernel

# The taps formulations are many small ops (slices, pads, a GEMM); jitted as a
# unit, an eager call compiles once per shape instead of once per op. Inside an
# outer jit the call is inlined.
_taps_input_grad = jax.jit(_taps.input_grad, static_argnums=(2, 3))
_taps_weight_grad = jax.jit(_taps.weight_grad, static_argnums=(2, 3))


def _spatial_numbers(n: int) -> tuple[int, ...]:
    return tuple(range(2, n + 2))


def _lax_conv(lhs, rhs, *, window_strides, padding, precision, lhs_dilation=None,
              rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
              batch_group_count=1, out_sharding=None):
    """``lax.conv_general_dilated`` with float32 accumulation for half types."""
    out_dtype = lhs.dtype
    out = lax.conv_general_dilated(
        lhs, rhs, window_strides=window_strides, padding=padding,
        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type(out_dtype),
        out_sharding=out_sharding)
    return out.astype(out_dtype)


# --------------------------------------------------------------------------
# Sharding of a contraction's result under explicit mesh axes.
#
# With ``AxisType.Explicit`` axes every array's type carries its sharding, and
# a contraction over a dim that is split across devices (the batch n in
# w̄ = Σ_n ...) has no sharding jax can infer: each device holds a partial
# sum. The summed result is replicated along every mesh axis a summed dim was
# split on (XLA inserts the all-reduce); each kept output dim inherits the axes
# of the operand dim it comes from unless they were summed over or already used.
# Without explicit axes (no mesh, Auto, or Manual inside shard_map) this is None
# and the partitioner decides, as before.


def _mesh_axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def contraction_sharding(operand, kept, summed):
    """Explicit output sharding of a contraction, or None without explicit axes.

    ``kept`` holds, per output dim, the ``PartitionSpec`` entry of the operand dim
    it comes from (None for a dim with no source); ``summed`` the entries of the
    contracted dims of both operands. ``operand`` supplies the mesh.
    """
    mesh = jax.typeof(operand).sharding.mesh
    if not mesh.explicit_axes:
        return None
    used = {axis for entry in summed for axis in _mesh_axes(entry)}
    out = []
    for entry in kept:
        axes = _mesh_axes(entry)
        out.append(None if not axes or used & set(axes) else entry)
        used |= set(axes)
    return NamedSharding(mesh, PartitionSpec(*out))


# Inside ``jax.shard_map(check_vma=True)`` each value's type records the mesh
# axes it varies along. A weight w that is the same on every device
# (invariant) meets a per-device x inside the forward; its cotangent there is
# per-device, w̄ = Σ_devices w̄_device, so the backward must sum the device
# contributions over exactly the axes the cotangent varies along and the primal
# does not (autodiff does the same: the transpose of the implicit broadcast to
# varying is ``psum``). Where both vary alike, or outside shard_map, the sum is
# empty and this is the identity, so no contribution is counted twice.


def match_vma(cotangent, primal):
    """``cotangent`` summed over the mesh axes it varies along but ``primal`` does not."""
    extra = _varying(cotangent) - _varying(primal)
    return lax.psum(cotangent, tuple(sorted(extra))) if extra else cotangent


def _varying(x) -> frozenset:
    return jax.typeof(x).manual_axis_type.varying


# --------------------------------------------------------------------------
# Forward convolution.


def _conv_impl(x, w, spec: ConvSpec):
    return _grouped_conv(x, w, spec.groups, window_strides=spec.stride,
                         padding=spec.padding, rhs_dilation=spec.dilation,
                         precision=spec.precision)


# A grouped convolution may run as its G independent dense convolutions,
#   y[n, γCₒ+o, p] = Σ_{c,k} x̂[n, γCᵢ+c, p·s + k·d] · w[γCₒ+o, c, k],  γ < G,
# one per channel slice of lhs and kernel, concatenated along the channels:
# the same sums. ``_plan.split_groups`` decides when (XLA's batch all-gather
# under sharding, its slow grouped path on CPU, its float64 depthwise NaN leak
# on CPU: rows of ``_plan.WORKAROUNDS``). Used by the forward and the textbook
# input gradient.


# Under explicit axes the result's sharding is named (``contraction_sharding``):
# lhs (N, C, *I) and rhs (O, C/G, *K) give y (N, O, *P) with n and the spatial
# dims from lhs and o from rhs, c and k summed. With the channels split (tensor
# parallelism: rhs's o on a mesh axis) jax cannot infer it. Before the per-group
# slicing an explicitly split channel dim is gathered whole: jax cannot slice
# it where the slices do not divide among the axis's devices (the kernel is
# small; for the input gradient lhs is g, gathered along the channels only).


def _conv_sharding(lhs, rhs):
    lhs_spec, rhs_spec = jax.typeof(lhs).sharding.spec, jax.typeof(rhs).sharding.spec
    return contraction_sharding(lhs, (lhs_spec[0], rhs_spec[0], *lhs_spec[2:]),
                                (lhs_spec[1], *rhs_spec[1:]))


def _whole_along(a, dim: int):
    sharding = jax.typeof(a).sharding
    if not sharding.mesh.explicit_axes or sharding.spec[dim] is None:
        return a
    spec = list(sharding.spec)
    spec[dim] = None
    return jax.sharding.reshard(a, PartitionSpec(*spec))


def _grouped_conv(lhs, rhs, groups: int, **conv):
    """``_lax_conv`` with ``feature_group_count=groups``, kept local under batch
    sharding, its sharding named under explicit axes, and NaN-exact for float64
    depthwise convolutions on CPU."""
    choice = split_groups(groups, lhs.shape[1], lhs.dtype, Placement.of(lhs, rhs))
    out_sharding = _conv_sharding(lhs, rhs)
    if choice.formulation == "lax":
        return _lax_conv(lhs, rhs, feature_group_count=groups, out_sharding=out_sharding,
                         **conv)
    lhs, rhs = _whole_along(lhs, 1), _whole_along(rhs, 0)
    per_group = zip(jnp.split(lhs, groups, axis=1), jnp.split(rhs, groups, axis=0))
    out = jnp.concatenate([_lax_conv(lhs_g, rhs_g, out_sharding=_conv_sharding(lhs_g, rhs_g),
                                     **conv) for lhs_g, rhs_g in per_group], axis=1)
    return out if out_sharding is None else jax.sharding.reshard(out, out_sharding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_core(x, w, spec: ConvSpec):
    """y = x ⋆ w with zero padding ``spec.padding``; explicit VJP."""
    return _conv_impl(x, w, spec)


def _conv_core_fwd(x, w, spec):
    return conv_core(x, w, spec), (x, w)


def _conv_core_bwd(spec, residuals, g):
    # ∂L/∂x = input_grad(g, w) and ∂L/∂w = weight_grad(x, g): the two rules below.
    x, w = residuals
    return (match_vma(input_grad(g, w, spec, x.shape[2:]), x),
            match_vma(weight_grad(x, g, spec, w.shape[2:]), w))


conv_core.defvjp(_conv_core_fwd, _conv_core_bwd)


# --------------------------------------------------------------------------
# Input gradient: a transposed convolution.
#
#   x̄[n, γCᵢ+c, i] = Σ_{o,p,k : p·s + k·d = i + lo} g[n, γCₒ+o, p] · w[γCₒ+o, c, k]
#
# Dilate g by s (s-1 zeros between rows: ǧ[p·s] = g[p]), pad it by (a, b) and
# correlate with the kernel flipped in space (w̃[.., k] = w[.., K-1-k]) at
# window dilation d. Matching indices, a + p·s = i + (K-1)d - k·d gives
#   a = K' - 1 - lo,        b = I - 1 - (O-1)s + lo,
# where b follows from asking for exactly I outputs. Substituting
# I = (O-1)s + r + K' - lo - hi gives b = K' - 1 - hi + r: the r leftover rows
# see only the zeros of the pad, so their gradient is exactly zero. Either pad
# may be negative (a crop) when lo or hi exceeds K' - 1. Within a group the
# roles of channels swap: the kernel becomes (G·Cᵢ, Cₒ, *K).


def _flip_and_swap(w, groups: int):
    """(G·Cₒ, Cᵢ, *K) -> (G·Cᵢ, Cₒ, *K), flipped along every spatial axis."""
    c_out, c_in_g, *kernel = w.shape
    if groups > 1:     # explicit axes: a split C_out cannot be cut into (G, Cₒ)
        w = _whole_along(w, 0)
    w = w.reshape(groups, c_out // groups, c_in_g, *kernel)
    w = jnp.swapaxes(w, 1, 2).reshape(groups * c_in_g, c_out // groups, *kernel)
    return lax.rev(w, _spatial_numbers(len(kernel)))


def _input_grad_padding(spec: ConvSpec, in_spatial, out_spatial, kernel):
    pads = []
    for i, o, k, s, d, (lo, _) in zip(in_spatial, out_spatial, kernel,
                                      spec.stride, spec.dilation, spec.padding):
        pads.append((effective_kernel(k, d) - 1 - lo, i - 1 - (o - 1) * s + lo))
    return tuple(pads)


def _input_grad_impl(g, w, spec: ConvSpec, in_spatial):
    x_shape = (g.shape[0], w.shape[1] * spec.groups) + tuple(in_spatial)
    if choose("input", spec, x_shape, w.shape, g.shape, g, w) == "taps":
        return _taps_input_grad(g, w, spec, tuple(in_spatial))
    padding = _input_grad_padding(spec, in_spatial, g.shape[2:], w.shape[2:])
    return _grouped_conv(g, _flip_and_swap(w, spec.groups), spec.groups,
                         window_strides=(1,) * spec.ndim, padding=padding,
                         lhs_dilation=spec.stride, rhs_dilation=spec.dilation,
                         precision=spec.precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def input_grad(g, w, spec: ConvSpec, in_spatial: tuple[int, ...]):
    """x̄ = (∂y/∂x)ᵀ g for y = conv_core(x, w, spec), x of spatial shape ``in_spatial``."""
    return _input_grad_impl(g, w, spec, in_spatial)


def _input_grad_fwd(g, w, spec, in_spatial):
    return input_grad(g, w, spec, in_spatial), (g, w)


def _input_grad_bwd(spec, in_spatial, residuals, ct):
    # input_grad is bilinear and adjoint to conv in x:
    #   <input_grad(g, w), ct> = <conv(ct, w), g> = <w, weight_grad(ct, g)>.
    g, w = residuals
    return (match_vma(conv_core(ct, w, spec), g),
            match_vma(weight_grad(ct, g, spec, w.shape[2:]), w))


input_grad.defvjp(_input_grad_fwd, _input_grad_bwd)


# --------------------------------------------------------------------------
# Weight gradient: a correlation of the input with the output gradient.
#
#   w̄[γCₒ+o, c, k] = Σ_{n,p} x̂[n, γCᵢ+c, k·d + p·s] · g[n, γCₒ+o, p]
#
# Read as a convolution over the spatial index k, x̂ is the "input" with its
# channels as batch and its batch N as the contracted feature, g is the
# "kernel" (feature N, output channel γCₒ+o), window stride d and window
# dilation s: stride and dilation swap roles. The pad is (lo, b) with b chosen
# for exactly K outputs, b = K' + (O-1)s - I - lo = hi - r: the leftover rows
# are cropped away. Groups pair input-channel group γ with output-channel group
# γ, which is lax's ``batch_group_count = G``.
#
# Sharding: n and p are summed, so w̄ is replicated along the mesh axes that
# split them (a batch-sharded x gives a replicated w̄, as the weight is); o
# keeps g's channel axes and, for G = 1, c keeps x's. Within a group c runs
# over C_in/G only, so for G > 1 it is left unsharded.


def _weight_grad_sharding(x, g, groups: int):
    x_spec = jax.typeof(x).sharding.spec
    g_spec = jax.typeof(g).sharding.spec
    summed = (x_spec[0], g_spec[0], *x_spec[2:], *g_spec[2:])
    kept = (g_spec[1], x_spec[1] if groups == 1 else None) + (None,) * (x.ndim - 2)
    return contraction_sharding(x, kept, summed)


def _weight_grad_impl(x, g, spec: ConvSpec, kernel):
    w_shape = (g.shape[1], x.shape[1] // spec.groups) + tuple(kernel)
    if choose("weight", spec, x.shape, w_shape, g.shape, x, g) == "taps":
        return _taps_weight_grad(x, g, spec, tuple(kernel))
    n = spec.ndim
    padding = tuple(
        (lo, effective_kernel(k, d) + (o - 1) * s - i - lo)
        for i, o, k, s, d, (lo, _) in zip(x.shape[2:], g.shape[2:], kernel,
                                          spec.stride, spec.dilation,
                                          spec.padding))
    swapped = (1, 0) + _spatial_numbers(n)
    numbers = lax.ConvDimensionNumbers(lhs_spec=swapped, rhs_spec=swapped,
                                       out_spec=swapped)
    conv = {"window_strides": spec.dilation, "padding": padding,
            "rhs_dilation": spec.stride, "dimension_numbers": numbers,
            "precision": spec.precision}
    split = weight_split(spec, x.shape[1], Placement.of(x, g))
    if split.formulation == "transpose_per_group":
        return _per_group_weight_grad(x, g, spec.groups, **conv)
    return _lax_conv(x, g, batch_group_count=spec.groups,
                     out_sharding=_weight_grad_sharding(x, g, spec.groups), **conv)


# The grouped weight gradient may run as its G dense ones, w̄[γCₒ+o, c, k] from
# x[:, γCᵢ+c] and g[:, γCₒ+o], concatenated (``_plan.weight_split``: XLA's
# wrong batch_group_count on meshes of several axes; its slow one on CPU, but
# not under a one-axis mesh, where G all-reduces would replace one).


def _per_group_weight_grad(x, g, groups: int, **conv):
    out_sharding = _weight_grad_sharding(x, g, groups)
    x, g = _whole_along(x, 1), _whole_along(g, 1)
    pieces = [_lax_conv(x_g, g_g, out_sharding=_weight_grad_sharding(x_g, g_g, 1), **conv)
              for x_g, g_g in zip(jnp.split(x, groups, axis=1), jnp.split(g, groups, axis=1))]
    out = jnp.concatenate(pieces, axis=0)
    return out if out_sharding is None else jax.sharding.reshard(out, out_sharding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def weight_grad(x, g, spec: ConvSpec, kernel: tuple[int, ...]):
    """w̄ = (∂y/∂w)ᵀ g for y = conv_core(x, w, spec), w of spatial shape ``kernel``."""
    return _weight_grad_impl(x, g, spec, kernel)


def _weight_grad_fwd(x, g, spec, kernel):
    return weight_grad(x, g, spec, kernel), (x, g)


def _weight_grad_bwd(spec, kernel, residuals, ct):
    # weight_grad is bilinear and adjoint to conv in w:
    #   <weight_grad(x, g), ct> = <conv(x, ct), g> = <x, input_grad(g, ct)>.
    x, g = residuals
    return (match_vma(input_grad(g, ct, spec, x.shape[2:]), x),
            match_vma(conv_core(x, ct, spec), g))


weight_grad.defvjp(_weight_grad_fwd, _weight_grad_bwd)


# --------------------------------------------------------------------------
# Bias: y[n, o, p] += b[o]. Its gradient is a sum over batch and space,
#   b̄[o] = Σ_{n,p} g[n, o, p],
# and the adjoint of that sum is the broadcast back, so the pair closes.


def _channel_shape(ndim: int, channels: int) -> tuple[int, ...]:
    return (1, channels) + (1,) * (ndim - 2)


def _sum_impl(g):
    axes = (0,) + tuple(range(2, g.ndim))
    return jnp.sum(g, axis=axes, dtype=accumulation_dtype(g.dtype)).astype(g.dtype)


def sum_to_channels(g):
    """b̄[o] = Σ_{n,p} g[n, o, p] for g of layout (N, C, *spatial)."""
    return _sum_to_channels(g, g.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _sum_to_channels(g, shape: tuple[int, ...]):
    return _sum_impl(g)


def _sum_to_channels_fwd(g, shape):
    return _sum_to_channels(g, shape), None


def _sum_to_channels_bwd(shape, _, ct):
    return (broadcast_channels(ct, shape),)


_sum_to_channels.defvjp(_sum_to_channels_fwd, _sum_to_channels_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def broadcast_channels(b, shape: tuple[int, ...]):
    """b of shape (C,) broadcast to ``shape`` = (N, C, *spatial)."""
    return _broadcast_impl(b, shape)


def _broadcast_impl(b, shape):
    return jnp.broadcast_to(b.reshape(_channel_shape(len(shape), b.shape[0])), shape)


def _broadcast_channels_fwd(b, shape):
    return broadcast_channels(b, shape), None


def _broadcast_channels_bwd(shape, _, ct):
    return (sum_to_channels(ct),)


broadcast_channels.defvjp(_broadcast_channels_fwd, _broadcast_channels_bwd)


@jax.custom_vjp
def add_bias(y, b):
    """y + b[None, :, None, ...]; VJP (ȳ, b̄) = (g, Σ_{n,p} g)."""
    return _add_bias_impl(y, b)


def _add_bias_impl(y, b):
    return y + b.reshape(_channel_shape(y.ndim, b.shape[0]))


def _add_bias_fwd(y, b):
    return add_bias(y, b), b    # b only for its type (mesh axes it varies along)


def _add_bias_bwd(b, g):
    return g, match_vma(sum_to_channels(g), b)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


# --------------------------------------------------------------------------
# Non-zero padding modes: a gather along one axis and its adjoint, a scatter-add.
#
#   x̂[.., j] = x[.., π(j)]          (π from ``_spec.pad_source_index``)
#   x̄[.., i] = Σ_{j : π(j) = i} ḡ[.., j]
#
# so the gradient of every border copy is folded back onto the row it copied,
# as torch's F.pad does for reflect / replicate / circular.


def _gather_impl(x, axis: int, index: tuple[int, ...]):
    return jnp.take(x, np.asarray(index), axis=axis)


def _scatter_impl(g, axis: int, index: tuple[int, ...], size: int):
    moved = jnp.moveaxis(g, axis, 0)
    out = jnp.zeros((size,) + moved.shape[1:], g.dtype).at[np.asarray(index)].add(moved)
    return jnp.moveaxis(out, 0, axis)


def gather_axis(x, axis: int, index: tuple[int, ...]):
    """x̂[.., j, ..] = x[.., index[j], ..] along ``axis``."""
    return _gather_axis(x, axis, index, x.shape[axis])


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _gather_axis(x, axis: int, index: tuple[int, ...], size: int):
    return _gather_impl(x, axis, index)


def _gather_axis_fwd(x, axis, index, size):
    return _gather_axis(x, axis, index, size), None


def _gather_axis_bwd(axis, index, size, _, ct):
    return (scatter_axis(ct, axis, index, size),)


_gather_axis.defvjp(_gather_axis_fwd, _gather_axis_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def scatter_axis(g, axis: int, index: tuple[int, ...], size: int):
    """x̄[.., i, ..] = Σ_{j : index[j] = i} g[.., j, ..]: the adjoint of ``gather_axis``."""
    return _scatter_impl(g, axis, index, size)


def _scatter_axis_fwd(g, axis, index, size):
    return scatter_axis(g, axis, index, size), None


def _scatter_axis_bwd(axis, index, size, _, ct):
    return (gather_axis(ct, axis, index),)


scatter_axis.defvjp(_scatter_axis_fwd, _scatter_axis_bwd)
