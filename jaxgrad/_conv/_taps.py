"""Convolutions and their gradients as sums over kernel taps ("shifted matmuls").

A convolution is a sum over its kernel taps k of one channel contraction each:

  y[n, γCₒ+o, p] = Σ_k Σ_c x̂[n, γCᵢ+c, p·s + k·d] · w[γCₒ+o, c, k]

(notation of ``_conv._core``; k and p are multi-indices over the spatial dims).

Forward (grouped and depthwise, few channels per group): read y as
(n, γ, o, p) and write the group's channels out. For each tap k and channel
c of the group, S_{k,c}[n, γ, p] = x̂[n, γCᵢ+c, p·s + k·d] is a strided slice
of the padded input, and

  y[n, γ, o, p] = Σ_k Σ_c S_{k,c}[n, γ, p] · w[γCₒ+o, c, k]

is ΠK·Cᵢ products of a slice (broadcast over o) with one kernel column
(broadcast over n and p), all elementwise in (n, γ, o, p): XLA fuses the sum
into one loop over the output, with no convolution and no stacked copy of x̂.
Depthwise (Cᵢ = 1) it is ΠK shifted multiply-adds, broadcast over the channel
multiplier Cₒ. It is the forward map of the same bilinear triple, so its VJPs
are the input and weight gradients below (or the textbook ones), whichever
formulation each of them runs. Beyond a few hundred terms XLA stops fusing
the sum (``_plan.THRESHOLDS``: ``taps_forward_max_group_channels``,
``taps_forward_max_terms``), so only such convolutions have this form.

Both gradients can be written as one batched matrix product (batch = the
group γ) plus data movement that XLA fuses into loops:

Weight gradient (im2col, then one product):

  P[n, γ, c, k, p]  = x̂[n, γCᵢ+c, k·d + p·s]                 (strided slices)
  w̄[γCₒ+o, c, k]   = Σ_{n,p} g[n, γCₒ+o, p] · P[n, γ, c, k, p]   (contract n, p)

Input gradient (one product, then col2im):

  Q[γ, c, k, n, p]  = Σ_o w[γCₒ+o, c, k] · g[n, γCₒ+o, p]          (contract o)
  x̄[n, γCᵢ+c, i]   = Σ_{k,p : p·s + k·d = i + lo} Q[γ, c, k, n, p]

The second sum places tap k's slab at rows i = p·s + k·d - lo: at stride 1 a
``lax.pad`` with low pad k·d - lo and the high pad that makes the length I
(negative pads crop); with a stride, per phase (``_col2im_by_phase``). Rows no
(k, p) reaches (the leftover r, and between taps when K·d < s) receive
nothing, i.e. exactly zero.

Why: the product runs as a plain GEMM (on CPU near the matmul peak), with no
zero-inserted (lhs-dilated) input, no ``batch_group_count`` expansion of a
grouped weight gradient into a dense one, and for 1×1 kernels no data
movement at all beyond a strided slice. The price is K copies of the input
(P) or of the input gradient (Q) in memory; ``_plan`` only picks this
when that is small. Depthwise convolutions (Cᵢ = Cₒ = 1) degenerate to
elementwise products, written as such so XLA fuses them into one loop.
Half types: products and sums in float32, one rounding at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._precision import preferred_element_type
from ._spec import ConvSpec, conv_output_shape

def _taps(kernel) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in kernel)))


def _padded_input(x, spec: ConvSpec, kernel, out_spatial):
    """x̂ cropped or padded to exactly the rows the windows read."""
    config = [(0, 0, 0), (0, 0, 0)]
    for i, o, k, s, d, (lo, _) in zip(x.shape[2:], out_spatial, kernel,
                                      spec.stride, spec.dilation, spec.padding):
        config.append((lo, (k - 1) * d + (o - 1) * s + 1 - i - lo, 0))
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def _tap_slice(xp, tap, spec: ConvSpec, out_spatial):
    """x̂[..., k·d + p·s] for p < O along every spatial dim."""
    start = [0, 0] + [k * d for k, d in zip(tap, spec.dilation)]
    limit = list(xp.shape[:2]) + [k * d + (o - 1) * s + 1 for k, d, o, s in
                                  zip(tap, spec.dilation, out_spatial, spec.stride)]
    return lax.slice(xp, start, limit, (1, 1) + tuple(spec.stride))


def _tiled(spec: ConvSpec, kernel) -> bool:
    """Windows tile the input (s = K, d = 1): taps are a reshape, not copies."""
    return all(s == k and d == 1 for s, k, d in zip(spec.stride, kernel, spec.dilation))


def _interleave(n: int) -> tuple[int, ...]:
    """Axis order (0, 1, n+2, 2, n+3, 3, ...): (.., *K, *O) -> (.., O1, K1, O2, K2, ..)."""
    return (0, 1) + tuple(a for j in range(n) for a in (2 + n + j, 2 + j))


def patches(x, spec: ConvSpec, kernel, out_spatial):
    """P[n, c, k, *p] = x̂[n, c, k·d + p·s], taps flattened: (N, C, ΠK, *O).

    Built one spatial dim at a time: for dim j, the K_j strided slices
    x̂[.., k_j·d_j + p_j·s_j, ..] stacked on a new tap axis, so the whole
    takes ΣK_j slices instead of ΠK_j. The same elements in the same order as
    stacking every tap at once, but XLA compiles and runs it faster (2-core
    CPU, weight gradient as taps: ResNet stem 7×7 stride 2, batch 2, compile
    0.61 → 0.20 s and 21.5 → 10.9 ms; 3×3 64 → 256 at 32×32, batch 8,
    42.3 → 34.5 ms). A dim with fewer outputs than taps is sliced once per
    output instead, min(K_j, O_j) slices: a 1-D kernel of 1024 taps over
    one output compiled in 6.7 s as 1024 slices."""
    xp = _padded_input(x, spec, kernel, out_spatial)
    nd = len(kernel)
    if _tiled(spec, kernel):
        split = xp.shape[:2] + tuple(a for o, k in zip(out_spatial, kernel) for a in (o, k))
        order = (0, 1) + tuple(3 + 2 * j for j in range(nd)) + tuple(2 + 2 * j for j in range(nd))
        tiles = xp.reshape(split).transpose(order)
        return tiles.reshape(xp.shape[:2] + (math.prod(kernel),) + tuple(out_spatial))
    # after j dims: (N, C, K_1..K_j, O_1..O_j, I_{j+1}..I_n); dim j's rows
    # are at axis 2 + 2j
    a = xp
    for j, (k_j, d, s, o) in enumerate(zip(kernel, spec.dilation, spec.stride, out_spatial)):
        axis = 2 + 2 * j
        if k_j <= o:   # one slice per tap k: rows k·d + p·s, p < O
            a = jnp.stack([lax.slice_in_dim(a, k * d, k * d + (o - 1) * s + 1, s, axis)
                           for k in range(k_j)], axis=2 + j)
        else:          # fewer outputs than taps: one slice per output p, rows
            # p·s + k·d, k < K (a long kernel over few outputs: 1 slice, not K)
            a = jnp.stack([lax.slice_in_dim(a, p * s, p * s + (k_j - 1) * d + 1, d, axis)
                           for p in range(o)], axis=axis + 1)
            a = jnp.moveaxis(a, axis, 2 + j)
    return a.reshape(xp.shape[:2] + (math.prod(kernel),) + tuple(out_spatial))


def col2im(cols, spec: ConvSpec, kernel, in_spatial):
    """x̄[n, c, i] = Σ_{k,p : p·s + k·d = i + lo} cols[n, c, k, p]: the adjoint of ``patches``."""
    return _col2im_slabs(lambda index: cols[:, :, index], cols.shape[:2], cols.dtype,
                         spec, kernel, cols.shape[3:], in_spatial, stacked=cols)


def _col2im_slabs(slab, lead, dtype, spec: ConvSpec, kernel, out_spatial, in_spatial,
                  stacked=None):
    """``col2im`` of the columns whose tap ``index`` is ``slab(index)``, (*lead, *O).

    The slabs are asked for one at a time and each is only padded and summed,
    so where they are cheap expressions (the depthwise input gradient's
    w[c, k]·g[n, c, p]) XLA fuses them into the sum and no (.., ΠK, *O) stack
    of them is ever built. Tiled windows (s = K, d = 1) take the columns as
    one (*lead, ΠK, *O) array instead, ``stacked`` (required there): they
    never overlap, so that is the size of x̄ itself, and a reshape places
    them."""
    zero = jnp.zeros((), dtype)
    if _tiled(spec, kernel):
        nd = len(kernel)
        tiles = stacked.reshape(tuple(lead) + tuple(kernel) + tuple(out_spatial))
        rows = tiles.transpose(_interleave(nd)).reshape(
            tuple(lead) + tuple(o * k for o, k in zip(out_spatial, kernel)))
        config = [(0, 0, 0), (0, 0, 0)] + [
            (-lo, i - (o * k - lo), 0)
            for o, k, i, (lo, _) in zip(out_spatial, kernel, in_spatial, spec.padding)]
        return lax.pad(rows, zero, config)
    if any(s > 1 for s in spec.stride):
        return _col2im_by_phase(slab, lead, dtype, spec, kernel, out_spatial, in_spatial)
    total = None
    for index, tap in enumerate(_taps(kernel)):
        config = [(0, 0, 0), (0, 0, 0)]
        for k, d, o, i, (lo, _) in zip(tap, spec.dilation, out_spatial, in_spatial,
                                       spec.padding):
            config.append((k * d - lo, i - (k * d - lo + o), 0))
        placed = lax.pad(slab(index), zero, config)
        total = placed if total is None else total + placed
    return total


# Strided col2im by phases (sub-pixel decomposition). Tap k's row for output
# position p is i = p·s + e with e = k·d - lo. Write e = q·s + r, 0 <= r < s:
# then i = (p + q)·s + r, so tap k only feeds the rows of phase r, and within
# the phase-r subgrid (rows m·s + r) it is an unstrided shift by q. Summing each
# phase's taps needs no interior (zero-inserted) padding; the s^n phase grids,
# each ceil(I/s) long, are then interleaved by one stack + transpose + reshape
# and cropped to I. On CPU this is 1.3-2.5x faster than interior pads (MobileNet
# depthwise stride 2, ResNet 3x3 and 1x1 stride 2, DCGAN). A phase no tap
# reaches (s > K'd) is zeros, as are the leftover rows.


def _col2im_by_phase(slab, lead, dtype, spec: ConvSpec, kernel, out_spatial, in_spatial):
    nd = len(kernel)
    zero = jnp.zeros((), dtype)
    grid = [-(-i // s) for i, s in zip(in_spatial, spec.stride)]      # ceil(I / s)
    phases: dict[tuple[int, ...], object] = {}
    for index, tap in enumerate(_taps(kernel)):
        phase, config = [], [(0, 0, 0), (0, 0, 0)]
        for k, d, s, o, m, (lo, _) in zip(tap, spec.dilation, spec.stride,
                                          out_spatial, grid, spec.padding):
            q, r = divmod(k * d - lo, s)
            phase.append(r)
            config.append((q, m - (q + o), 0))
        placed = lax.pad(slab(index), zero, config)
        key = tuple(phase)
        phases[key] = placed + phases[key] if key in phases else placed
    shape = tuple(lead) + tuple(grid)
    ordered = [phases[key] if key in phases else jnp.zeros(shape, dtype)
               for key in itertools.product(*(range(s) for s in spec.stride))]
    stacked = jnp.stack(ordered, axis=-1).reshape(shape + tuple(spec.stride))
    # (.., M1..Mn, s1..sn) -> (.., M1, s1, M2, s2, ..): row m·s + r of each dim
    order = (0, 1) + tuple(a for j in range(nd) for a in (2 + j, 2 + nd + j))
    rows = stacked.transpose(order).reshape(
        tuple(lead) + tuple(m * s for m, s in zip(grid, spec.stride)))
    return rows[(slice(None), slice(None)) + tuple(slice(0, i) for i in in_spatial)]


def _swapped(spec: ConvSpec):
    # Every GEMM here takes its operands in the other order than the textbook
    # rule's convolution (g before x, w before g); swapping the (lhs, rhs)
    # precision pair keeps each precision on the same array under both
    # formulations.
    return spec.precision[::-1]


# A depthwise weight gradient whose taps would together be large
# (N·C·ΠK·P above DEPTHWISE_LOOP_MIN_ELEMENTS) runs its taps in a loop.
# Unrolled, XLA CPU sometimes computes every tap's product x̂·g before the
# first sum (temporaries ΠK·N·C·P: 3x3 (26, 360, 44, 44): 629 MB; 7x7
# (8, 64, 64, 64): 394 MB), sometimes fuses them (3x3 (32, 64, 32, 32));
# looped (forced, for the measurement), one tap's product at a time (2-core
# Zen3, jaxlib 0.10.1: 145 and 18 MB, 183 against 306 ms and 105 against
# 173 ms), but where the unrolled form fuses the loop was up to 2x slower in
# one timing and level in another. The bound is _plan's taps_max_elements:
# below it "auto" accepts taps' buffer anyway (the 7x7 above, at B = 1.0e8,
# stays unrolled), above it depthwise taps now runs unbuffered.
DEPTHWISE_LOOP_MIN_ELEMENTS = 1 << 27
#
# On CPU the loop is also taken where an output spatial dim exceeds
# TREE_REDUCTION_WIDTH: there XLA CPU splits each tap's sum into a
# reduce-window of that width and a reduce, and the reduce-window does not
# take the product x̂·g into its loop, so the unrolled form writes all ΠK
# products out first (a reduced batch above 32 splits too, but the unrolled
# form stayed the faster there). Measured (2-core Zen3, jaxlib 0.10.1, f32,
# the weight gradient alone, unrolled against looped): output spatial > 32:
# 3x3 (8, 144, 56²) 84 → 29 ms, (32, 96, 56²) 208 → 99, (1, 32, 224²)
# 32 → 8, stride 2 (8, 96, 112²) 64 → 42, 7x7 (8, 96, 56²) 193 → 73, 3-D
# 3³ (2, 32, 40³) 200 → 99, 1-D (4, 64, 1024) 0.51 → 0.47; at ≤ 32 the
# unrolled form won: 7x7 (8, 192, 28²) 40 against 68, 5x5 (8, 240, 28²) 24
# against 43, (4, 256, 14²) 2.8 against 5.3, 3x3 (64, 32, 16²) 3.4 against
# 6.0, (16, 64, 14²) 1.7 against 2.1, 3-D (2, 64, 16³) 8.4 against 15.7.
# Below WIDE_LOOP_MIN_ELEMENTS taps' products (N·C·ΠK·P) the two were level
# ((4, 64, 1024) 3-tap, 7.9e5: 0.51 against 0.47 ms) and the unrolled form
# compiles faster, so it stays.
TREE_REDUCTION_WIDTH = 32
WIDE_LOOP_MIN_ELEMENTS = 1 << 20


def _depthwise_weight_grad_loop(xp, g, spec: ConvSpec, kernel):
    """w̄[c, k] = Σ_{n,p} x̂[n, c, k·d + p·s] · g[n, c, p], one tap k per iteration: (C, ΠK)."""
    nd = len(kernel)
    out_spatial = g.shape[2:]
    span = [(o - 1) * s + 1 for o, s in zip(out_spatial, spec.stride)]
    # tap index t -> its multi-index (row-major over the kernel dims)
    place = [math.prod(kernel[j + 1:]) for j in range(nd)]
    axes = (0,) + tuple(range(2, g.ndim))

    def one_tap(t, acc):
        start = [0, 0] + [(t // place[j]) % kernel[j] * spec.dilation[j] for j in range(nd)]
        window = lax.dynamic_slice(xp, start, list(xp.shape[:2]) + span)
        shifted = lax.slice(window, (0,) * (nd + 2), window.shape, (1, 1) + tuple(spec.stride))
        column = jnp.sum(shifted * g, axis=axes, dtype=acc.dtype)
        return lax.dynamic_update_slice(acc, column[:, None], (0, t))

    return lax.fori_loop(0, math.prod(kernel), one_tap,
                         jnp.zeros((xp.shape[1], math.prod(kernel)),
                                   jnp.result_type(xp.dtype, g.dtype)))


# XLA CPU (jaxlib 0.10.1) fuses the batched GEMM below, its sum over N and
# the reshape to w̄'s shape into one YNNPACK fusion; where N > 32 and is not
# a multiple of 32, the sum becomes a padded 32-wide reduce-window inside it,
# and for some shapes the compiled program dies with a segmentation fault
# when it runs: N = 33, 40, 41 and 65 with (Cₒ, Cᵢ, K, O) = (96, 14, 5×5,
# 19×19), not at N = 8, 32, 64 or 128 (nor, in the same GEMM and sum written
# in plain JAX, at (32, 14, 5×5) or (96, 4, 5×5)). Held-out run 26's
# (41, 14, 74²) → 96, 5×5 at stride 4 was one (its taps weight gradient,
# "auto"'s choice). Of 48 drawn dense layers (N 3-100, C 3-64, Cₒ 16-128,
# K 1-5, stride 1-4, 14-74 px), 3 of the 25 with such an N crashed without
# the barrier below: (100, 32, 40²) → 96, 5×5; (33, 32, 74²) and
# (41, 32, 74²) → 128, 3×3 at stride 4; none with it. The barrier between
# the GEMM and the sum keeps them in separate fusions: past a batch of 32
# the sum is never fused with the GEMM on CPU (in plain JAX the same time
# within noise at N = 64 and 128, and 8.6 ms where N = 41 had crashed).
SUM_FUSION_MAX_BATCH = 32


def weight_grad(x, g, spec: ConvSpec, kernel):
    """w̄ = Σ_{n,p} g ⊗ (strided slices of x̂), one GEMM per group."""
    n, c_in = x.shape[:2]
    c_out, out_spatial = g.shape[1], g.shape[2:]
    groups = spec.groups
    ci, co = c_in // groups, c_out // groups
    taps = _taps(kernel)
    npos = int(np.prod(out_spatial))
    acc = preferred_element_type(x.dtype)
    if groups > 1 and ci == 1 and co > 1 and jax.default_backend() == "cpu":
        # Depthwise with a channel multiplier m = Cₒ/G (on CPU, where it was
        # measured; elsewhere the GEMM below): output channel γm+j
        # reads input channel γ, so
        #   w̄[γm+j, 0, k] = Σ_{n,p} x̂[n, γ, k·d + p·s] · g[n, γm+j, p]
        #                 = Σ_{n,p} x̃[n, γm+j, k·d + p·s] · g[n, γm+j, p]
        # with x̃ = x repeated m times along channels (x̃[n, γm+j] = x[n, γ]):
        # the depthwise sum below over Cₒ channels, one fused multiply-reduce
        # per tap, instead of the batched GEMM further down, whose G·N
        # products have m rows each. Measured (2-core Zen3, jaxlib 0.10.1,
        # m = 2, the weight gradient alone, as given / channels-last): 5x5
        # (8, 32, 78²) 189 / 191 ms as the GEMM; 3x3 (8, 64, 56²) 72 / 76 ms
        # (docs/performance.md, the twenty-fourth held-out run, has the figures
        # after). Not for G = 1 (one input channel, Cₒ outputs: a dense
        # layer, where the GEMM below is one product; the bench's unrolled
        # case, 512 outputs of a 32x32 kernel, took 21 s to compile and 44 ms
        # to run this way against 0.13 s and 4 ms).
        x = jnp.repeat(x, co, axis=1)
        c_in, ci, co = c_out, 1, 1
    if ci == 1 and co == 1:
        # Depthwise: w̄[γ, 0, k] = Σ_{n,p} x̂[n, γ, k·d + p·s] · g[n, γ, p], one
        # fused multiply-reduce per tap straight from x̂ (no stacked copy; a
        # stacked (N, C, K, P) product makes XLA CPU pick a slow reduction).
        # (half types: products and sums in float32, one rounding at the end)
        xp = _padded_input(x, spec, kernel, out_spatial).astype(acc or x.dtype)
        g = g.astype(acc or g.dtype)
        products = n * c_in * len(taps) * npos
        if (products > DEPTHWISE_LOOP_MIN_ELEMENTS
                or (max(out_spatial, default=0) > TREE_REDUCTION_WIDTH
                    and products >= WIDE_LOOP_MIN_ELEMENTS
                    and jax.default_backend() == "cpu")):
            out = _depthwise_weight_grad_loop(xp, g, spec, kernel)
        else:
            sums = [jnp.sum(_tap_slice(xp, t, spec, out_spatial) * g, axis=(0,) + tuple(
                range(2, g.ndim)), dtype=acc) for t in taps]
            out = jnp.stack(sums, axis=1)
        return out.astype(x.dtype).reshape(c_out, 1, *kernel)
    if groups == 1 and n == 1 and len(kernel) <= 2:
        # One dense sample, 1-D/2-D: a plain 2-D GEMM (Cₒ, P)·(C·K, P)ᵀ without
        # batch dims. Measured on CPU (bench, DeepLab 3x3 at 33x33): 15-30%
        # faster than the batched form below; for N > 1 (the transposes it
        # would need) and 3-D (C3D) it was slower, so only here.
        cols = patches(x, spec, kernel, out_spatial).reshape(c_in * len(taps), npos)
        out = lax.dot_general(g.reshape(c_out, npos), cols, (((1,), (1,)), ((), ())),
                              precision=_swapped(spec), preferred_element_type=acc)
        return out.astype(x.dtype).reshape(c_out, c_in, *kernel)
    # P[n, γ, c, k, p]
    cols = patches(x, spec, kernel, out_spatial).reshape(n, groups, ci, len(taps), npos)
    gg = g.reshape(n, groups, co, npos)
    if npos >= max(co, ci * len(taps)):
        # batch (n, γ), contract p: no transposes; the N partial sums
        # (N·Cₒ·CᵢK) are smaller than the operands (N·(Cₒ + CᵢK)·P).
        out = lax.dot_general(
            gg, cols.reshape(n, groups, ci * len(taps), npos),
            (((3,), (3,)), ((0, 1), (0, 1))), precision=_swapped(spec),
            preferred_element_type=acc)
        if n > SUM_FUSION_MAX_BATCH and jax.default_backend() == "cpu":
            out = lax.optimization_barrier(out)     # SUM_FUSION_MAX_BATCH
        out = jnp.sum(out, axis=0, dtype=acc)
    else:
        # few positions: contract n and p together (XLA transposes the operands).
        out = lax.dot_general(
            gg, cols.reshape(n, groups, ci * len(taps), npos),
            (((0, 3), (0, 3)), ((1,), (1,))), precision=_swapped(spec),
            preferred_element_type=acc)
    return out.astype(x.dtype).reshape(c_out, ci, *kernel)


# With one output channel per group and stride 1, the input gradient is itself
# a taps forward: for tap k, the (p, k) with p + k·d = i + lo have
# p = i + lo − k·d, so with k' = K−1−k and ḡ padded by d(K−1) − lo below,
#
#   x̄[n, γCᵢ+c, i] = Σ_k' w[γ, c, K−1−k'] · ĝ[n, γ, i + k'·d],
#
# the forward of 1.8 (docs/derivations.md) applied to ḡ with G groups of one
# input channel, Cᵢ output channels each, the kernel flipped, stride 1,
# dilation d and padding (d(K−1) − lo, d(K−1) − hi) (negative: a crop). It
# reads ΠK slices of one padded ḡ, where the slab form below pads each of
# the ΠK products separately and adds them: each pad inside the fused sum
# tests its bounds, and where a consumer changes the layout (the next XLA
# convolution's transposing copy) XLA wrote the ΠK padded products out one
# by one. Alone the forward form took 0.14-0.78x the slab form's time on
# 13 depthwise layers (1-D to 3-D, kernels 3 to 63); in training steps of
# networks 0.33-1.06x (docs/performance.md, "The depthwise input gradient
# in networks"). ``_core`` asks for it within the forward's own bound,
# ``taps_forward_max_terms`` taps; past it the two were mixed (7x7x7: 1.16x
# the slabs' time).


def by_forward(spec: ConvSpec, kernel, out_channels_per_group: int) -> bool:
    """Whether ``input_grad`` can run as the taps forward of ḡ (above): one
    output channel per group, stride 1, windows that do not tile."""
    return (out_channels_per_group == 1 and all(s == 1 for s in spec.stride)
            and not _tiled(spec, kernel))


def _input_grad_by_forward(g, w, spec: ConvSpec):
    groups, ci = spec.groups, w.shape[1]
    kernel = w.shape[2:]
    spatial = tuple(range(2, 2 + len(kernel)))
    # w'[γCᵢ+c, 0, k'] = w[γ, c, K−1−k']: G groups of one input channel
    flipped = jnp.flip(w.reshape((groups * ci, 1) + tuple(kernel)), spatial)
    padding = tuple((d * (k - 1) - lo, d * (k - 1) - hi)
                    for k, d, (lo, hi) in zip(kernel, spec.dilation, spec.padding))
    return forward(g, flipped, dataclasses.replace(spec, padding=padding)).astype(g.dtype)


def input_grad(g, w, spec: ConvSpec, in_spatial, forward_form: bool = False):
    """x̄ = col2im(wᵀ g), one GEMM per group and a fused sum of padded slabs;
    with ``forward_form`` (only where ``by_forward`` holds) the taps forward
    of ḡ with the flipped kernel instead."""
    if forward_form:
        return _input_grad_by_forward(g, w, spec)
    n, c_out = g.shape[:2]
    out_spatial = g.shape[2:]
    kernel = w.shape[2:]
    groups = spec.groups
    co, ci = c_out // groups, w.shape[1]
    taps = _taps(kernel)
    npos = int(np.prod(out_spatial))
    gg = g.reshape(n, groups, co, npos)
    ww = w.reshape(groups, co, ci * len(taps))
    acc = preferred_element_type(g.dtype)
    work = acc or g.dtype     # half types: Q and its col2im sums stay in float32
    if co == 1:
        # Q[n, γ, c, k, p] = w[γ, 0, c, k] · g[n, γ, 0, p], one tap's slab at a
        # time: elementwise, so XLA fuses each into col2im's sum and the
        # (N, C, ΠK, P) buffer is never built (temporaries about the size of
        # x̄, whatever the kernel).
        wk = w.reshape(groups, ci, len(taps)).astype(work)
        gw = g.reshape(n, groups, 1, *out_spatial).astype(work)
        ones = (1,) * len(out_spatial)

        def slab(index):
            return (wk[None, :, :, index].reshape((1, groups, ci) + ones) * gw).reshape(
                (n, groups * ci) + tuple(out_spatial))

        stacked = None
        if _tiled(spec, kernel):   # x̄'s own size: one product, not ΠK slices
            stacked = (wk[None, :, :, :, None] * gg[:, :, :, None, :].astype(work)).reshape(
                (n, groups * ci, len(taps)) + tuple(out_spatial))
        return _col2im_slabs(slab, (n, groups * ci), work, spec, kernel, out_spatial,
                             in_spatial, stacked=stacked).astype(g.dtype)
    if co <= npos:
        # batch (n, γ) with w broadcast over n (N·Cₒ·CᵢK, no more than the
        # result N·CᵢK·P): the product lands in (n, γ, ck, p) order.
        wb = jnp.broadcast_to(ww, (n,) + ww.shape)
        cols = lax.dot_general(wb, gg, (((2,), (2,)), ((0, 1), (0, 1))),
                               precision=_swapped(spec), preferred_element_type=acc)
    else:
        cols = lax.dot_general(ww, gg, (((1,), (2,)), ((0,), (1,))),
                               precision=_swapped(spec), preferred_element_type=acc)
        cols = jnp.moveaxis(cols, 2, 0)     # (γ, ck, n, p) -> (n, γ, ck, p)
    cols = cols.reshape(n, groups * ci, len(taps), *out_spatial)
    return col2im(cols, spec, kernel, in_spatial).astype(g.dtype)



# --------------------------------------------------------------------------
# The forward by taps (module docstring): with x̂ regrouped as (N, G, Cᵢ, ..)
# and w as (G, Cₒ, Cᵢ, *K),
#
#   y[n, γ, o, p] = Σ_k Σ_c x̂[n, γ, c, p·s + k·d] · w[γ, o, c, k],
#
# one broadcast multiply-add per (k, c), all fused into one loop by XLA.


def _forward_shapes(x, w, spec: ConvSpec):
    """(N, C_out, Cᵢ, K, G, Cₒ, O, dtype) of a forward: the batch, output
    channels, input and output channels per group, kernel, groups, output
    spatial shape and the operands' promoted dtype."""
    c_out, ci = w.shape[:2]
    kernel = tuple(w.shape[2:])
    return (x.shape[0], c_out, ci, kernel, spec.groups, c_out // spec.groups,
            tuple(conv_output_shape(x.shape[2:], kernel, spec)),
            jnp.promote_types(x.dtype, w.dtype))


# The sum is one elementwise expression of x̂, so XLA CPU treats the whole
# forward as a cheap producer and fuses a copy of it into every consumer of
# y instead of writing y once. Where y's consumers are many and large that
# repeats the ΠK·Cᵢ-term sum many times: under value_and_grad of Σy² a 7x7
# depthwise weight gradient's 49 per-tap reductions each recomputed all 49
# taps (2-core Zen3, jaxlib 0.10.1, (8, 192, 28, 28): 231 ms against 62 in
# halves, and 6.6 ms for the forward alone). Computing y in a loop of two
# iterations, each one half of the groups (or, for an odd number of groups,
# of the batch), makes y the loop's output: written once, read by its
# consumers, and the same sums in the same order. Groups first: a batch
# split over devices that jaxgrad cannot see (``jit(in_shardings=...)`` on
# uncommitted arrays, docs/sharding.md) would be gathered by a loop over
# its halves. ``_core`` asks for it on CPU where nothing is placed on a mesh,
# the sum is large (``taps_forward_halves_min_terms``) and the forward is
# differentiated (``_rules.differentiated``): XLA CPU runs
# a loop's body on one core, so a plain evaluation, whose only consumer is
# the caller, keeps the one fused sum (alone, the forward in halves took
# 2-2.5x its time on 2 cores: (8, 144, 56, 56) 3x3 5.9 against 2.3 ms).


def forward(x, w, spec: ConvSpec, halves: bool = False):
    """y = Σ_{k,c} x̂[.., c, p·s + k·d] ⊙ w[.., c, k]: ΠK·Cᵢ fused multiply-adds.

    Args:
      x: (N, C_in, *I). w: (C_out, C_in/G, *K). ``spec``: PyTorch's geometry.
      halves: compute y in a two-iteration loop over halves of the groups
        (for odd G, of the batch; with both odd, in one piece), so that y
        is materialized once.

    Returns:
      (N, C_out, *O) in the operands' (promoted) dtype.
    """
    n, c_out, ci, kernel, groups, co, out_spatial, dtype = _forward_shapes(x, w, spec)
    if x.size == 0 or w.size == 0:
        return jnp.zeros((n, c_out) + out_spatial, dtype)
    if halves and (groups % 2 == 0 or n % 2 == 0):
        if groups % 2 == 0:
            # groups γ < G/2, then γ ≥ G/2: channel halves of x, w and y
            half, axis = dataclasses.replace(spec, groups=groups // 2), 1
            pieces = (x.shape[1] // 2, c_out // 2, c_out // 2)    # x, w, y
        else:
            # samples n < N/2, then n ≥ N/2
            half, axis = spec, 0
            pieces = (n // 2, None, n // 2)

        def one_half(i, y):
            xh = lax.dynamic_slice_in_dim(x, i * pieces[0], pieces[0], axis=axis)
            wh = w if pieces[1] is None else lax.dynamic_slice_in_dim(
                w, i * pieces[1], pieces[1], axis=0)
            return lax.dynamic_update_slice_in_dim(y, _forward_sum(xh, wh, half),
                                                   i * pieces[2], axis=axis)

        return lax.fori_loop(0, 2, one_half, jnp.zeros((n, c_out) + out_spatial, dtype))
    return _forward_sum(x, w, spec)


def _forward_sum(x, w, spec: ConvSpec):
    n, c_out, ci, kernel, groups, co, out_spatial, dtype = _forward_shapes(x, w, spec)
    work = preferred_element_type(dtype) or dtype
    xp = _padded_input(x.astype(work), spec, kernel, out_spatial)
    xp = xp.reshape((n, groups, ci) + xp.shape[2:])
    ww = w.astype(work).reshape((groups, co, ci) + kernel)
    ones = (1,) * len(kernel)
    total = None
    for tap in _taps(kernel):
        # x̂[n, γ, c, k·d + p·s] for every p: (N, G, Cᵢ, *O)
        start = (0, 0, 0) + tuple(k * d for k, d in zip(tap, spec.dilation))
        limit = xp.shape[:3] + tuple(k * d + (o - 1) * s + 1 for k, d, o, s in zip(
            tap, spec.dilation, out_spatial, spec.stride))
        shifted = lax.slice(xp, start, limit, (1, 1, 1) + tuple(spec.stride))
        for c in range(ci):
            term = (shifted[:, :, c:c + 1]
                    * ww[(None, slice(None), slice(None), c) + tap].reshape(
                        (1, groups, co) + ones))
            total = term if total is None else total + term
    return total.reshape((n, c_out) + out_spatial).astype(dtype)


# --------------------------------------------------------------------------
# The forward by im2col: the weight gradient's patches, contracted with w.
#
#   P[n, γ, (c,k), p] = x̂[n, γCᵢ+c, k·d + p·s]                    (``patches``)
#   y[n, γCₒ+o, p]    = Σ_{(c,k)} w[γCₒ+o, c, k] · P[n, γ, (c,k), p]
#
# one GEMM per group (batch γ, and n), with the ΠK strided copies of x̂ as the
# price; dense (G = 1), one GEMM whose columns are every sample's positions.
# Any number of channels per group; ``_plan`` picks it where XLA would
# otherwise run G small convolutions (``im2col_forward_max_batch``), and for
# dense convolutions with few output positions, where XLA CPU's convolution
# is up to 100x slower (``dense_im2col_forward_max_positions``).


def forward_im2col(x, w, spec: ConvSpec):
    """y = Σ_{(c,k)} w[.., (c,k)] · P[.., (c,k), p]: patches and one GEMM per group.

    Args:
      x: (N, C_in, *I). w: (C_out, C_in/G, *K). ``spec``: PyTorch's geometry.

    Returns:
      (N, C_out, *O) in the operands' (promoted) dtype.
    """
    n, c_out, ci, kernel, groups, co, out_spatial, dtype = _forward_shapes(x, w, spec)
    if x.size == 0 or w.size == 0:
        return jnp.zeros((n, c_out) + out_spatial, dtype)
    x, w = x.astype(dtype), w.astype(dtype)
    npos = int(np.prod(out_spatial))
    cols = patches(x, spec, kernel, out_spatial).reshape(
        n, groups, ci * math.prod(kernel), npos)
    ww = w.reshape(groups, co, ci * math.prod(kernel))
    acc = preferred_element_type(dtype)
    if groups == 1 and n > 1:
        # dense: one GEMM over every sample's positions, (Cₒ, CᵢK)·(CᵢK, N·P)
        # (XLA moves CᵢK ahead of N in the patches), then (Cₒ, N, P) -> (N, Cₒ, P)
        out = lax.dot_general(ww[0], cols[:, 0], (((1,), (1,)), ((), ())),
                              precision=_swapped(spec), preferred_element_type=acc)
        return out.astype(dtype).transpose(1, 0, 2).reshape((n, c_out) + out_spatial)
    if n == 1:     # batch γ: (G, Cₒ, CᵢK)·(G, CᵢK, P) -> (G, Cₒ, P)
        out = lax.dot_general(ww, cols[0], (((2,), (1,)), ((0,), (0,))),
                              precision=_swapped(spec), preferred_element_type=acc)
    else:          # batch (n, γ), w broadcast over n: (N, G, Cₒ, P)
        wb = jnp.broadcast_to(ww, (n,) + ww.shape)
        out = lax.dot_general(wb, cols, (((3,), (2,)), ((0, 1), (0, 1))),
                              precision=_swapped(spec), preferred_element_type=acc)
    return out.astype(dtype).reshape((n, c_out) + out_spatial)
