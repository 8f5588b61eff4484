"""The convolution core: three bilinear maps, their explicit VJPs, and nothing else.

Every convolution of jaxgrad runs here: the torch-style ops and their
gradient functions (``_conv``, ``_conv_transpose``, ``_grad``) and the
lax-signature drop-in (``_general``).

  conv_core(x, w)         y = x ⋆ w                      (forward convolution)
  input_grad(g, w)        x̄ = (∂y/∂x)ᵀ g                 (transposed convolution)
  weight_grad(x, g)       w̄ = (∂y/∂w)ᵀ g                 (correlation of x with g)

declared once with ``_rules.bilinear``: each map's VJP is written in the other
two, so the family is closed under differentiation and reverse-over-reverse
(and any higher order) runs these rules only. A :class:`ConvSpec` carries every
static argument: stride s, padding (lo, hi), kernel dilation d, lhs dilation a,
feature groups G, batch groups B, the layouts (``numbers``: lax's dimension
numbers; None for PyTorch's), precision and ``preferred_element_type``.

Notation (one spatial dim shown; every spatial dim is independent). Read
through the layouts, x is (N, C, I), w is (O, C/G, K) -- (O, C, K) with batch
groups --, y and g are (N/B, O, P). K' = d(K-1)+1; C = G·Cg, O = G·Og;
N = B·Nb, O = B·Ob; at most one of G, B exceeds 1. With x̌ the input dilated by
a (x̌[i·a] = x[i], zeros elsewhere):

  y[n, γOg+o, p] = Σ_{c,k} x̌[n, γCg+c, p·s + k·d - lo] · w[γOg+o, c, k]       (G)
  y[n, βOb+o, p] = Σ_{c,k} x̌[βNb+n, c, p·s + k·d - lo] · w[βOb+o, c, k]       (B)

Input gradient. From the first line,

  x̄[n, γCg+c, i] = Σ_{o,p,k : p·s + k·d = i·a + lo} g[n, γOg+o, p] · w[γOg+o, c, k].

Dilate g by s (ǧ[p·s] = g[p]) and flip the kernel, k = K-1-k̃: the condition
reads p·s = i·a - (K'-1-lo) + k̃·d, a convolution of ǧ with the flipped kernel
at window stride a, kernel dilation d and low pad K'-1-lo; asking for exactly I
outputs fixes the high pad at (I-1)·a - (O-1)·s + lo (``_spec.input_grad_padding``).
Either pad may be negative (a crop). Stride and lhs dilation swap roles. For
a = 1 the high pad is K'-1-hi+r, r the leftover rows no window reaches: they
see only the pad's zeros, so their gradient is exactly zero. Within group γ
the kernel's channel roles swap: w̃[γCg+c, o, k̃] = w[γOg+o, c, K-1-k̃], i.e.
the output-feature axis of w is split into (G, Og) and G moves, as the major
part, into the input-feature axis (:func:`regroup`); read with its O and I
axes exchanged it is a G-grouped kernel of C outputs and Og inputs. For batch
groups the same regrouping with B gives a B-grouped convolution whose output
feature βC+c is x̄[βNb+n, c]: its feature axis is regrouped into the batch.

Weight gradient. From the same lines,

  w̄[γOg+o, c, k] = Σ_{n,p} x̌[n, γCg+c, k·d + p·s - lo] · g[n, γOg+o, p]      (G)
  w̄[βOb+o, c, k] = Σ_{n,p} x̌[βNb+n, c, k·d + p·s - lo] · g[n, βOb+o, p]      (B)

a convolution over k in which x is the lhs with its batch and feature axes
exchanged (C is the batch, N is contracted) and g the kernel with its batch as
input features: window stride d, kernel dilation s, lhs dilation a, low pad lo
and the high pad that gives exactly K outputs, (K'-1) + (O-1)·s - (I-1)·a - lo
(``_spec.weight_grad_padding``). Group γ pairs lhs "batch" block γ with kernel
output block γ: lax's ``batch_group_count = G``; batch group β pairs lhs
feature block β with kernel output block β: ``feature_group_count = B``.

Only the index tuples of the dimension numbers are permuted; the kernel
regrouping (G or B > 1) and the batch regrouping (B > 1) are the only
reshapes. Formulations (``_plan``): a grouped convolution may run as G dense
ones, and in PyTorch's geometry the gradients, and the forward of a grouped
or depthwise convolution with few channels per group, may run as sums over
taps (``_taps``); each is an explicit formula of the same map, so the VJPs
above hold whichever runs. Half-precision operands accumulate in float32 and
come back in their dtype unless ``preferred_element_type`` asks otherwise;
every cotangent returns in its primal's dtype. Under explicit mesh axes every
convolution names its result's sharding (``_sharding``); inside ``shard_map`` every cotangent
varies along the same mesh axes as its primal (``_rules.match_vma``). A
convolution with an empty dimension has zero gradients.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from .. import _rules
from .._precision import accumulation_dtype, preferred_element_type
from .._sharding import conv_sharding, reshard_to, whole_along
from . import _taps
from ._plan import (THRESHOLDS, UNPLACED, Placement, forward_choice, input_grad_choice,
                    note, weight_grad_choice)
from ._spec import (ConvSpec, conv_output_shape, input_grad_padding,
                    swapped_weight_grad_padding, weight_grad_padding)

# The taps formulations are many small ops (slices, pads, a GEMM); jitted as a
# unit, an eager call compiles once per shape instead of once per op. Inside an
# outer jit the call is inlined.
_taps_forward = jax.jit(_taps.forward, static_argnums=(2, 3))
_im2col_forward = jax.jit(_taps.forward_im2col, static_argnums=(2,))
_taps_input_grad = jax.jit(_taps.input_grad, static_argnums=(2, 3, 4))
_taps_weight_grad = jax.jit(_taps.weight_grad, static_argnums=(2, 3))


# --------------------------------------------------------------------------
# Layouts and regrouping (pure index arithmetic and reshapes).


def torch_numbers(n: int) -> lax.ConvDimensionNumbers:
    """PyTorch's layouts as dimension numbers: (N, C, *I), (O, I, *K), (N, O, *P)."""
    dims = tuple(range(n + 2))
    return lax.ConvDimensionNumbers(dims, dims, dims)


def numbers_of(spec: ConvSpec) -> lax.ConvDimensionNumbers:
    return spec.numbers or torch_numbers(spec.ndim)


def _swap(spec: tuple[int, ...]) -> tuple[int, ...]:
    """Exchange the roles of a layout's first two axes (batch/feature or out/in)."""
    return (spec[1], spec[0]) + tuple(spec[2:])


def regroup(a, src: int, dst: int, groups: int):
    """Split axis ``src`` into (groups, rest) and merge ``groups`` into axis ``dst``
    as its major part."""
    shape = a.shape
    a = a.reshape(shape[:src] + (groups, shape[src] // groups) + shape[src + 1:])
    a = jnp.moveaxis(a, src, dst)      # the group axis now sits right before axis dst
    new = list(shape)
    new[src] //= groups
    new[dst] *= groups
    return a.reshape(new)


def _spatial(shape, dims) -> tuple[int, ...]:
    return tuple(shape[i] for i in dims[2:])


def _layout_shape(dims, batch: int, feature: int, spatial) -> tuple[int, ...]:
    shape = [0] * len(dims)
    for dim, size in zip(dims, (batch, feature, *spatial)):
        shape[dim] = size
    return tuple(shape)


# --------------------------------------------------------------------------
# One lax convolution, and a grouped one that may run per group.


def _lax_conv(lhs, rhs, *, precision, preferred=None, out_sharding=None, **conv):
    """``lax.conv_general_dilated``, accumulating half types in float32.

    The result has dtype ``preferred`` if given, else the operands' (promoted)
    dtype; a backward call meets a cotangent wider than the other operand when
    ``preferred_element_type`` widened the forward.
    """
    if lhs.dtype != rhs.dtype:
        dtype = jnp.promote_types(lhs.dtype, rhs.dtype)
        lhs, rhs = lhs.astype(dtype), rhs.astype(dtype)
    out_dtype = lhs.dtype if preferred is None else preferred
    out = lax.conv_general_dilated(
        lhs, rhs, precision=precision,
        preferred_element_type=(preferred_element_type(out_dtype) if preferred is None
                                else preferred),
        out_sharding=out_sharding, **conv)
    return out.astype(out_dtype)


# A grouped convolution may run as its G independent dense convolutions,
#   y[n, γOg+o, p] = Σ_{c,k} x̂[n, γCg+c, p·s + k·d] · w[γOg+o, c, k],  γ < G,
# one per feature slice of lhs and kernel, concatenated along the features:
# the same sums. ``_plan.split_groups`` decides when (XLA's batch all-gather
# under sharding, its slow grouped path on CPU, its float64 depthwise NaN leak
# on CPU: rows of ``_plan.WORKAROUNDS``). Used by the forward and the textbook
# input gradient. An explicitly split feature dim is gathered whole before the
# slicing (``whole_along``).


def _loop_over_groups(lhs, rhs, positions_dims, channels: int) -> bool:
    """Whether a per-group weight gradient runs as one convolution in a loop
    (:func:`_scan_groups`): where nothing is placed on a mesh, each piece has
    at least ``per_group_loop_min_positions`` batch x spatial positions (the
    dims ``positions_dims`` of ``lhs``) and at most
    ``per_group_loop_max_group_channels`` input ``channels``; otherwise the
    pieces stay unrolled (looped, larger ones and every forward and input
    gradient ran 1.4-30x slower on CPU)."""
    positions = math.prod(lhs.shape[d] for d in positions_dims)
    return (positions >= THRESHOLDS["per_group_loop_min_positions"].value
            and channels <= THRESHOLDS["per_group_loop_max_group_channels"].value
            and Placement.of(lhs, rhs) == UNPLACED)


def _serial_pieces(lhs, rhs, preferred=None) -> bool:
    """Whether the pieces of a per-group split must run one after another
    (:func:`_scan_groups`): float64 operands or float64 sums (``preferred``)
    on CPU, nothing placed on a mesh (``cpu_f64_concurrent_conv_crash``:
    unrolled, XLA may run them at once, and a process died of SIGSEGV)."""
    wide = (jnp.promote_types(lhs.dtype, rhs.dtype) == jnp.float64
            or (preferred is not None and jnp.dtype(preferred) == jnp.float64))
    return (wide and jax.default_backend() == "cpu"
            and Placement.of(lhs, rhs) == UNPLACED)


def _scan_groups(piece, lhs, rhs, lhs_dim: int, rhs_dim: int, out_dim: int, groups: int):
    """concat_γ piece(lhs_γ, rhs_γ) along ``out_dim``, lhs_γ / rhs_γ the γ-th of
    ``groups`` equal slices along ``lhs_dim`` / ``rhs_dim``, as one
    ``lax.scan`` over the groups: the G pieces are one convolution in a loop,
    so XLA compiles one instead of G. The same sums as the unrolled split."""
    def stacked(a, dim):
        a = a.reshape(a.shape[:dim] + (groups, a.shape[dim] // groups) + a.shape[dim + 1:])
        return jnp.moveaxis(a, dim, 0)
    _, out = lax.scan(lambda carry, ab: (carry, piece(*ab)), None,
                      (stacked(lhs, lhs_dim), stacked(rhs, rhs_dim)))
    out = jnp.moveaxis(out, 0, out_dim)          # (.., G, piece's out_dim, ..)
    return out.reshape(out.shape[:out_dim] + (-1,) + out.shape[out_dim + 2:])


def _grouped_conv(lhs, rhs, numbers, groups: int, per_group: bool, **conv):
    lhs_spec, rhs_spec, out_spec = numbers
    out_sharding = conv.pop("out_sharding", None) or conv_sharding(
        lhs, rhs, numbers, spatial_kept=True)
    if not per_group:
        return _lax_conv(lhs, rhs, dimension_numbers=numbers, feature_group_count=groups,
                         out_sharding=out_sharding, **conv)
    if out_sharding is None and _serial_pieces(lhs, rhs, conv.get("preferred")):
        return _scan_groups(lambda a, b: _lax_conv(a, b, dimension_numbers=numbers, **conv),
                            lhs, rhs, lhs_spec[1], rhs_spec[0], out_spec[1], groups)
    lhs, rhs = whole_along(lhs, lhs_spec[1]), whole_along(rhs, rhs_spec[0])
    pieces = [_lax_conv(lhs_g, rhs_g, dimension_numbers=numbers,
                        out_sharding=conv_sharding(lhs_g, rhs_g, numbers, spatial_kept=True),
                        **conv)
              for lhs_g, rhs_g in zip(jnp.split(lhs, groups, axis=lhs_spec[1]),
                                      jnp.split(rhs, groups, axis=rhs_spec[0]))]
    return reshard_to(jnp.concatenate(pieces, axis=out_spec[1]), out_sharding)


def _result_dtype(spec: ConvSpec, g):
    return g.dtype if spec.preferred_element_type is None else spec.preferred_element_type


def _conv_args(spec: ConvSpec) -> dict:
    return {"precision": spec.precision, "preferred": spec.preferred_element_type}


# --------------------------------------------------------------------------
# The three maps.


def _conv_impl(x, w, spec: ConvSpec):
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return forward(x, w, spec, "lax")   # integers: the reference formulation, no plan
    choice = note("forward", forward_choice(
        spec, x.shape, w.shape, jnp.promote_types(x.dtype, w.dtype), Placement.of(x, w)),
        spec, x, w)
    return forward(x, w, spec, choice.formulation)


def _input_grad_impl(g, w, spec: ConvSpec, in_spatial):
    """x̄ for y = conv_core(x, w, spec), x of spatial shape ``in_spatial``."""
    x_shape = _input_shape(g, w, spec, in_spatial)
    if g.size == 0 or w.size == 0 or 0 in x_shape:
        # An empty sum or an empty result: lax cannot express every such case
        # (negative pads larger than the dim), and the answer is zeros.
        return jnp.zeros(x_shape, _result_dtype(spec, g))
    if not jnp.issubdtype(g.dtype, jnp.inexact):
        # an integer transposed convolution's forward: the textbook rule, no plan
        return input_grad_by(g, w, spec, in_spatial, "transpose")
    choice = note("input_grad", input_grad_choice(
        spec, x_shape, w.shape, g.shape, jnp.promote_types(g.dtype, w.dtype),
        Placement.of(g, w)), spec, g, w)
    return input_grad_by(g, w, spec, in_spatial, choice.formulation)


def _weight_grad_impl(x, g, spec: ConvSpec, kernel):
    """w̄ for y = conv_core(x, w, spec), w of spatial shape ``kernel``."""
    w_shape = _kernel_shape(x, g, spec, kernel)
    if g.size == 0 or x.size == 0 or 0 in w_shape:
        return jnp.zeros(w_shape, _result_dtype(spec, g))
    choice = note("weight_grad", weight_grad_choice(
        spec, x.shape, w_shape, g.shape, jnp.promote_types(x.dtype, g.dtype),
        Placement.of(x, g)), spec, x, g)
    return weight_grad_by(x, g, spec, kernel, choice.formulation)


def _input_shape(g, w, spec: ConvSpec, in_spatial) -> tuple[int, ...]:
    lhs_spec, rhs_spec, out_spec = numbers_of(spec)
    # lhs: N = N_out·B batch and C_in = (C_in/G)·G features (at most one of
    # G and B exceeds 1; w's input features are C_in/G, also under batch groups)
    return _layout_shape(lhs_spec, g.shape[out_spec[0]] * spec.batch_groups,
                         w.shape[rhs_spec[1]] * spec.groups, in_spatial)


def _kernel_shape(x, g, spec: ConvSpec, kernel) -> tuple[int, ...]:
    lhs_spec, rhs_spec, out_spec = numbers_of(spec)
    return _layout_shape(rhs_spec, g.shape[out_spec[1]],
                         x.shape[lhs_spec[1]] // spec.groups, kernel)


# Each map by a given formulation (``_plan.FORMULATIONS``): the impls above run
# the one ``_plan`` chooses; autotuning (``_autotune``) times each of them.


def _taps_in_halves(x, w, spec: ConvSpec) -> bool:
    """Whether the taps forward runs in halves (``_taps.forward``): where it is
    differentiated, on CPU (where it was measured), nothing is placed on a
    mesh, and the sum has at least ``taps_forward_halves_min_terms``
    multiply-adds."""
    # N·ΠO outputs per output channel, each a sum of C_in/G·ΠK products
    terms = (x.shape[0] * math.prod(w.shape)
             * math.prod(conv_output_shape(x.shape[2:], w.shape[2:], spec)))
    return (_rules.differentiated() and jax.default_backend() == "cpu"
            and terms >= THRESHOLDS["taps_forward_halves_min_terms"].value
            and Placement.of(x, w) == UNPLACED)


def _taps_input_grad_forward_form(w, spec: ConvSpec) -> bool:
    """Whether the taps input gradient runs as the taps forward of ḡ
    (``_taps.by_forward``): one output channel per group, stride 1, and no
    more than ``taps_forward_max_terms`` taps (the forward's own bound; past
    it the two forms were mixed, docs/performance.md); not where the user
    asked for ``algorithm="taps"``, which promises torch's NaN placement
    (docs/guarantees.md): the forward form multiplies ḡ's zero padding by
    every tap, so a NaN tap reaches every row, as in XLA's transposed
    convolution."""
    kernel = w.shape[2:]
    return (spec.algorithm != "taps"
            and _taps.by_forward(spec, kernel, w.shape[0] // spec.groups)
            and math.prod(kernel) <= THRESHOLDS["taps_forward_max_terms"].value)


def forward(x, w, spec: ConvSpec, formulation: str):
    """y = conv_core(x, w, spec) as "lax", "per_group", "taps" or "im2col"."""
    if formulation == "taps":
        return _taps_forward(x, w, spec, _taps_in_halves(x, w, spec))
    if formulation == "im2col":
        return _im2col_forward(x, w, spec)
    numbers = numbers_of(spec)
    conv = dict(window_strides=spec.stride, padding=spec.padding,
                lhs_dilation=spec.input_dilation, rhs_dilation=spec.dilation,
                out_sharding=spec.out_sharding, **_conv_args(spec))
    if spec.batch_groups > 1:
        return _lax_conv(x, w, dimension_numbers=numbers, batch_group_count=spec.batch_groups,
                         **conv)
    return _grouped_conv(x, w, numbers, spec.groups, formulation == "per_group", **conv)


def input_grad_by(g, w, spec: ConvSpec, in_spatial, formulation: str):
    """x̄ as "transpose", "transpose_per_group" or "taps"."""
    if formulation == "taps":
        return _taps_input_grad(g, w, spec, tuple(in_spatial),
                                _taps_input_grad_forward_form(w, spec))
    lhs_spec, rhs_spec, out_spec = numbers_of(spec)
    groups = spec.groups * spec.batch_groups
    kernel = lax.rev(w, rhs_spec[2:])
    if groups > 1:    # explicit axes: a split O cannot be cut into (G, Og)
        kernel = regroup(whole_along(kernel, rhs_spec[0]), rhs_spec[0], rhs_spec[1], groups)
    padding = input_grad_padding(in_spatial, _spatial(g.shape, out_spec),
                                 _spatial(w.shape, rhs_spec), spec)
    transposed = lax.ConvDimensionNumbers(out_spec, _swap(rhs_spec), lhs_spec)
    x_bar = _grouped_conv(g, kernel, transposed, groups,
                          formulation == "transpose_per_group",
                          window_strides=spec.input_dilation, padding=padding,
                          lhs_dilation=spec.stride, rhs_dilation=spec.dilation,
                          **_conv_args(spec))
    if spec.batch_groups > 1:
        x_bar = regroup(x_bar, lhs_spec[1], lhs_spec[0], spec.batch_groups)
    return x_bar


def weight_grad_by(x, g, spec: ConvSpec, kernel, formulation: str):
    """w̄ as "transpose", "transpose_per_group", "transpose_swapped" or "taps"."""
    if formulation == "taps":
        return _taps_weight_grad(x, g, spec, tuple(kernel))
    if formulation == "transpose_swapped":
        return _swapped_weight_grad(x, g, spec, tuple(kernel))
    lhs_spec, rhs_spec, out_spec = numbers_of(spec)
    swapped = lax.ConvDimensionNumbers(_swap(lhs_spec), _swap(out_spec), _swap(rhs_spec))
    conv = dict(window_strides=spec.dilation, lhs_dilation=spec.input_dilation,
                padding=weight_grad_padding(_spatial(x.shape, lhs_spec),
                                            _spatial(g.shape, out_spec), kernel, spec),
                rhs_dilation=spec.stride, dimension_numbers=swapped, **_conv_args(spec))
    if formulation == "transpose_per_group":
        return _per_group_weight_grad(x, g, spec.groups, **conv)
    return _lax_conv(x, g, feature_group_count=spec.batch_groups,
                     batch_group_count=spec.groups,
                     out_sharding=conv_sharding(x, g, swapped, spatial_kept=False,
                                                batch_grouped=spec.groups > 1), **conv)


# The weight gradient with the operands' roles swapped ("transpose_swapped",
# dense convolutions of PyTorch's geometry): the same sum as the textbook rule,
#
#   w̄[o, c, k] = Σ_{n,p} x̂[n, c, p·s + k·d] · g[n, o, p],
#
# read as a convolution of g dilated by s (lhs: batch o, features n) with x
# as the window (rhs: output features c, input features n). Substitute
# j = p·s + k·d - lo (x's own index, 0 <= j < I) and k̃ = K-1-k: with
# ĝ[n, o, m] = g[n, o, p] at m = p·s (zero between), padded by
# L = (K-1)·d - lo before and H = I - (P-1)·s - 1 + lo after (negative pads
# crop, and only drop entries that meet no element of x),
#
#   u[o, c, k̃] = Σ_{n,j} ĝ_pad[n, o, k̃·d + j] · x[n, c, j],   w̄[o, c, k] = u[o, c, K-1-k],
#
# one convolution with window strides d, lhs dilation s and an output of
# exactly K taps ((K-1)·d + I padded positions, a window of I). The textbook
# rule contracts the same products with O as the convolution's output
# features; this one has C there, which is what XLA CPU vectorises: for a
# transposed convolution (whose weight gradient is the core's with the roles
# of its channels swapped) it is the arrangement JAX's autodiff runs.


def _swapped_weight_grad(x, g, spec: ConvSpec, kernel):
    if not spec.torch_geometry or spec.groups != 1:
        raise ValueError("transpose_swapped: only dense convolutions of PyTorch's "
                         f"geometry, got groups={spec.groups}, numbers={spec.numbers}, "
                         f"lhs_dilation={spec.lhs_dilation}")
    nd = len(kernel)
    padding = swapped_weight_grad_padding(x.shape[2:], g.shape[2:], kernel, spec)
    dims = (1, 0) + tuple(range(2, nd + 2))
    numbers = lax.ConvDimensionNumbers(dims, dims, tuple(range(nd + 2)))
    u = _lax_conv(g, x, window_strides=spec.dilation, padding=padding,
                  lhs_dilation=spec.stride, rhs_dilation=(1,) * nd,
                  dimension_numbers=numbers, precision=spec.precision[::-1],
                  preferred=spec.preferred_element_type,
                  out_sharding=conv_sharding(g, x, numbers, spatial_kept=False))
    return lax.rev(u, tuple(range(2, nd + 2)))


# The grouped weight gradient may run as its G dense ones, w̄[γOg+o, c, k] from
# x[:, γCg+c] and g[:, γOg+o], concatenated (``_plan.weight_split``: XLA's
# wrong batch_group_count on meshes of several axes; its slow one on CPU, but
# not under a one-axis mesh, where G all-reduces would replace one).


def _per_group_weight_grad(x, g, groups: int, *, dimension_numbers, **conv):
    x_dim, g_dim = dimension_numbers.lhs_spec[0], dimension_numbers.rhs_spec[0]
    out_sharding = conv_sharding(x, g, dimension_numbers, spatial_kept=False,
                                 batch_grouped=groups > 1)
    # the swapped numbers read x's batch as lhs features and its channels as
    # lhs batch: count N x spatial positions, and C_in/G channels per piece
    lhs_spec = dimension_numbers.lhs_spec
    if out_sharding is None and (
            _serial_pieces(x, g, conv.get("preferred"))
            or _loop_over_groups(x, g, (lhs_spec[1], *lhs_spec[2:]), x.shape[x_dim] // groups)):
        return _scan_groups(
            lambda a, b: _lax_conv(a, b, dimension_numbers=dimension_numbers, **conv),
            x, g, x_dim, g_dim, dimension_numbers.out_spec[1], groups)
    x, g = whole_along(x, x_dim), whole_along(g, g_dim)
    pieces = [_lax_conv(x_g, g_g, dimension_numbers=dimension_numbers, **conv,
                        out_sharding=conv_sharding(x_g, g_g, dimension_numbers,
                                                   spatial_kept=False))
              for x_g, g_g in zip(jnp.split(x, groups, axis=x_dim),
                                  jnp.split(g, groups, axis=g_dim))]
    return reshard_to(jnp.concatenate(pieces, axis=dimension_numbers.out_spec[1]),
                      out_sharding)


conv_core, input_grad, weight_grad = _rules.bilinear(
    _conv_impl, _input_grad_impl, _weight_grad_impl,
    shape_a=lambda x, spec: _spatial(x.shape, numbers_of(spec).lhs_spec),
    shape_b=lambda w, spec: _spatial(w.shape, numbers_of(spec).rhs_spec))
conv_core.__doc__ = "y = x ⋆ w for the convolution ``spec``; explicit VJPs of every order."
input_grad.__doc__ = ("x̄ = (∂y/∂x)ᵀ g for y = conv_core(x, w, spec), x of spatial shape "
                      "``in_spatial``.")
weight_grad.__doc__ = ("w̄ = (∂y/∂w)ᵀ g for y = conv_core(x, w, spec), w of spatial shape "
                       "``kernel``.")


# --------------------------------------------------------------------------
# Bias: y[n, o, p] += b[o]. Its gradient is a sum over batch and space,
#   b̄[o] = Σ_{n,p} g[n, o, p],
# and the adjoint of that sum is the broadcast back: a linear pair.


def _channel_shape(ndim: int, channels: int) -> tuple[int, ...]:
    return (1, channels) + (1,) * (ndim - 2)


def _sum_impl(g, shape: tuple[int, ...]):
    axes = (0,) + tuple(range(2, g.ndim))
    return jnp.sum(g, axis=axes, dtype=accumulation_dtype(g.dtype)).astype(g.dtype)


def _broadcast_impl(b, shape: tuple[int, ...]):
    return jnp.broadcast_to(b.reshape(_channel_shape(len(shape), b.shape[0])), shape)


_sum_to_channels, broadcast_channels = _rules.linear_pair(_sum_impl, _broadcast_impl)


def sum_to_channels(g):
    """b̄[o] = Σ_{n,p} g[n, o, p] for g of layout (N, C, *spatial)."""
    return _sum_to_channels(g, g.shape)


def _add_bias_impl(y, b):
    """y + b[None, :, None, ...]; VJP (ȳ, b̄) = (g, Σ_{n,p} g)."""
    return y + b.reshape(_channel_shape(y.ndim, b.shape[0]))


add_bias = _rules.add_broadcast(_add_bias_impl, sum_to_channels)
