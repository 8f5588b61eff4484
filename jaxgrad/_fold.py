"""``unfold`` (im2col) and ``fold`` (col2im) with PyTorch's semantics.

``unfold`` cuts every sliding block of a (N, C, H, W) image out as a column:

  U[n, c·K + k, l] = x̂[n, c, p·s + k·d]        K = k_h·k_w, l = p_h·P_w + p_w

with k = (k_h, k_w) and p = (p_h, p_w) row-major multi-indices (taps and
block positions), x̂ the input zero-padded by ``padding`` on both sides, s
the stride, d the dilation (torch's layout: channel-major, then taps). It is
the ``patches`` map of the convolution family (``_conv._taps``), whose shape
arithmetic (``_conv._spec.conv_output_size``) gives the number of blocks
P = ⌊(H + 2·pad - d(k-1) - 1) / s⌋ + 1 per dim.

``fold`` sums columns back into an image, overlapping blocks adding up:

  F[n, c, i] = Σ_{k, p : p·s + k·d = i + pad} V[n, c·K + k, l(p)]

which is exactly the adjoint of ``unfold``: ⟨U x, V⟩ = Σ x̂[p·s + k·d]·V[k, p]
= ⟨x, F V⟩, grouping the sum by the input position i (padding positions
have no input, so they drop out). So fold = unfoldᵀ, and the two are
declared as one ``_rules.linear_pair``: each is the other's VJP, and every
order of differentiation alternates them. Half types sum in float32.
"""

from __future__ import annotations

import dataclasses
import math

import jax

from . import _rules
from ._args import check_rank, float_array, int_tuple
from ._conv._spec import ConvSpec, conv_output_size
from ._conv._taps import col2im, patches
from ._precision import accumulation_dtype
from ._typing import Array, ArrayLike, Size


@dataclasses.dataclass(frozen=True)
class Blocks:
    """The sliding blocks of an image: the static part of unfold and fold.

    Attributes:
      spec: stride, symmetric padding and dilation, as a convolution's.
      kernel: (k_h, k_w), the block size.
      image: (H, W), the (unpadded) image size.
      blocks: (P_h, P_w), the number of block positions per dim (L = P_h·P_w).
    """

    spec: ConvSpec
    kernel: tuple[int, int]
    image: tuple[int, int]
    blocks: tuple[int, int]


def _unfold_impl(x, geometry: Blocks):
    """U (N, C·K, L) from x (N, C, H, W)."""
    cols = patches(x, geometry.spec, geometry.kernel, geometry.blocks)
    return cols.reshape(x.shape[0], x.shape[1] * math.prod(geometry.kernel),
                        math.prod(geometry.blocks))


def _fold_impl(cols, geometry: Blocks):
    """F (N, C, H, W) from V (N, C·K, L): the adjoint of ``_unfold_impl``."""
    taps = math.prod(geometry.kernel)
    blocks = cols.reshape((cols.shape[0], cols.shape[1] // taps, taps)
                          + geometry.blocks)
    work = blocks.astype(accumulation_dtype(cols.dtype))
    return col2im(work, geometry.spec, geometry.kernel,
                  geometry.image).astype(cols.dtype)


unfold_blocks, fold_blocks = _rules.linear_pair(_unfold_impl, _fold_impl)

# Called eagerly, one compiled program per geometry and shape; under a trace
# (jit, grad, vmap) the rules themselves, so that no nested jit is differentiated.
_JITTED = {unfold_blocks: jax.jit(unfold_blocks, static_argnums=1),
           fold_blocks: jax.jit(fold_blocks, static_argnums=1)}


def _run(rule, x, geometry: Blocks):
    return (rule if isinstance(x, jax.core.Tracer) else _JITTED[rule])(x, geometry)


# --------------------------------------------------------------------------
# Argument parsing.


def _geometry(fn: str, image, kernel_size, dilation, padding, stride) -> Blocks:
    kernel = int_tuple(fn, "kernel_size", kernel_size, 2, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, 2, minimum=1)
    pads = int_tuple(fn, "padding", padding, 2, minimum=0)
    stride = int_tuple(fn, "stride", stride, 2, minimum=1)
    spec = ConvSpec(stride, tuple((p, p) for p in pads), dilation, 1)
    blocks = tuple(conv_output_size(i, k, s, (p, p), d) for i, k, s, p, d in
                   zip(image, kernel, stride, pads, dilation))
    if min(blocks) < 1:
        raise ValueError(
            f"{fn}: no block fits: the image {tuple(image)} padded by {pads} holds "
            f"{blocks} blocks of kernel_size={kernel} with dilation={dilation} and "
            f"stride={stride}; each count must be at least 1")
    return Blocks(spec, kernel, tuple(image), blocks)


def unfold(input: ArrayLike, kernel_size: Size, dilation: Size = 1, padding: Size = 0,
           stride: Size = 1) -> Array:
    """Extract sliding blocks as columns, as ``torch.nn.functional.unfold`` (im2col).

    ``out[n, c·K + k, l] = x̂[n, c, p·stride + k·dilation]`` with K = k_h·k_w,
    k = (k_h, k_w) and p = (p_h, p_w) row-major, l = p_h·P_w + p_w, x̂ the
    input zero-padded by ``padding``. Its gradient is :func:`fold`.

    Args:
      input: (N, C, H, W), or unbatched (C, H, W); a floating, complex,
        integer or bool array (integer and bool ones have no gradient). Only
        the batch may be empty.
      kernel_size: the block size (k_h, k_w), an int or a pair, >= 1.
      dilation: the spacing of a block's taps, an int or a pair, >= 1.
      padding: zeros added on both sides of each spatial dim, >= 0.
      stride: the step between blocks, an int or a pair, >= 1.

    Returns:
      (N, C·k_h·k_w, L) (or (C·k_h·k_w, L) unbatched) in the input's dtype,
      L = P_h·P_w, P = ⌊(size + 2·padding - dilation·(k-1) - 1) / stride⌋ + 1.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value
        (including when no block fits in the padded image).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(9.0, dtype=jnp.float32).reshape(1, 1, 3, 3)
      >>> jaxgrad.unfold(x, 2)[0].tolist()
      [[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]
    """
    fn = "unfold"
    x = float_array(fn, "input", input, complex_ok=True, int_ok=True, bool_ok=True)
    check_rank(fn, "input", x, (3, 4), "(unbatched (C, H, W) or batched (N, C, H, W))")
    if min(x.shape[-3:]) < 1:
        raise ValueError(f"{fn}: `input` must have non-empty channel and spatial dims, "
                         f"got shape {tuple(x.shape)} (only the batch may be empty)")
    batched = x if x.ndim == 4 else x[None]
    geometry = _geometry(fn, batched.shape[2:], kernel_size, dilation, padding, stride)
    out = _run(unfold_blocks, batched, geometry)
    return out if x.ndim == 4 else out[0]


def fold(input: ArrayLike, output_size: Size, kernel_size: Size, dilation: Size = 1,
         padding: Size = 0, stride: Size = 1) -> Array:
    """Sum columns of blocks into an image, as ``torch.nn.functional.fold`` (col2im).

    The adjoint of :func:`unfold` with the same arguments:
    ``out[n, c, i] = Σ_{k, p : p·stride + k·dilation = i + padding} input[n, c·K + k, l(p)]``,
    overlapping blocks adding up and positions in the padding dropped. Its
    gradient is :func:`unfold`.

    Args:
      input: (N, C·k_h·k_w, L), or unbatched (C·k_h·k_w, L); a floating,
        complex, integer or bool array (integer and bool ones have no
        gradient; bool sums are "or", as torch's). Only the batch may be
        empty; L must be the number of blocks that fit.
      output_size: the image size (H, W), an int or a pair, >= 1.
      kernel_size: the block size (k_h, k_w), an int or a pair, >= 1.
      dilation: the spacing of a block's taps, an int or a pair, >= 1.
      padding: zeros around the image that blocks may cover, >= 0.
      stride: the step between blocks, an int or a pair, >= 1.

    Returns:
      (N, C, H, W) (or (C, H, W) unbatched) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value
        (a channel dim not divisible by k_h·k_w, or an L that is not the
        number of blocks).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> cols = jnp.ones((1, 4, 4), jnp.float32)    # 2x2 blocks of a 3x3 image
      >>> jaxgrad.fold(cols, 3, 2)[0, 0].tolist()
      [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    fn = "fold"
    cols = float_array(fn, "input", input, complex_ok=True, int_ok=True, bool_ok=True)
    check_rank(fn, "input", cols, (2, 3),
               "(unbatched (C·k_h·k_w, L) or batched (N, C·k_h·k_w, L))")
    if min(cols.shape[-2:]) < 1:
        raise ValueError(f"{fn}: `input` must have non-empty column and block dims, "
                         f"got shape {tuple(cols.shape)} (only the batch may be empty)")
    image = int_tuple(fn, "output_size", output_size, 2, minimum=1)
    geometry = _geometry(fn, image, kernel_size, dilation, padding, stride)
    batched = cols if cols.ndim == 3 else cols[None]
    taps = math.prod(geometry.kernel)
    if batched.shape[1] % taps:
        raise ValueError(
            f"{fn}: the column dim of `input` (={batched.shape[1]}) must be divisible "
            f"by k_h·k_w = {taps} (kernel_size={geometry.kernel}), got shape "
            f"{tuple(cols.shape)}")
    blocks = math.prod(geometry.blocks)
    if batched.shape[2] != blocks:
        spec = geometry.spec
        raise ValueError(
            f"{fn}: the last dim of `input` (={batched.shape[2]}) must be the number of "
            f"blocks, {geometry.blocks[0]}·{geometry.blocks[1]} = {blocks}, for "
            f"output_size={image}, kernel_size={geometry.kernel}, dilation="
            f"{spec.dilation}, padding={tuple(p for p, _ in spec.padding)}, "
            f"stride={spec.stride}")
    out = _run(fold_blocks, batched, geometry)
    return out if cols.ndim == 3 else out[0]
