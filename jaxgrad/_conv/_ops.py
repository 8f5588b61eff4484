"""Convolutions with PyTorch's signatures: ``conv``, ``conv1d``, ``conv2d``, ``conv3d``.

Arguments are checked and normalised once, here, into a ``ConvSpec``; the
differentiable work happens in ``_conv._core``, whose every rule is explicit.
The public functions are ``VARIANTS`` of ``conv_nd``, made in ``_ranked``.
"""

from __future__ import annotations

import dataclasses

from .._args import check_float, check_rank, check_same_dtype, float_arrays, int_tuple
from .._precision import resolve_precision
from .._typing import Array, ArrayLike, ConvPadding, Precision, Size
from .._pad import pad_axes
from .._variants import variants
from . import _core
from ._algorithms import check_algorithm
from ._spec import (ConvSpec, check_bias, check_groups, check_kernel_fits,
                    check_weight_extent, parse_padding, parse_padding_mode)

WEIGHT_LAYOUT = "(C_out, C_in/groups, *kernel)"
WEIGHT_CHANNELS = ("C_out",)   # torch allows C_in = 0, but not C_out = 0


# The dtypes torch's convolutions compute: floating, complex and (forward
# only, as torch's int64) integer tensors. The gradient functions (grad.*)
# take floating and complex ones.
DTYPES = {"complex_ok": True, "int_ok": True}


def check_weight_rank(fn: str, weight, n: int | None, layout: str = WEIGHT_LAYOUT,
                      channels: tuple[str, ...] = WEIGHT_CHANNELS,
                      what: str = "convolution", int_ok: bool = False) -> int:
    """Check the weight's dtype, rank and extent; return its spatial rank n."""
    check_float(fn, "weight", weight, complex_ok=True, int_ok=int_ok)
    if n is None:
        if weight.ndim < 3:
            raise ValueError(f"{fn}: `weight` must have layout {layout} with at "
                             f"least one spatial dim, got shape "
                             f"{tuple(weight.shape)}")
        n = weight.ndim - 2
    check_rank(fn, "weight", weight, (n + 2,), f"{layout} for a {n}-D {what}")
    check_weight_extent(fn, "weight", weight.shape, layout, channels)
    return n


def batch_input(fn: str, x, n: int, int_ok: bool = False):
    """Check x is (N, C, *spatial) or unbatched (C, *spatial); return it batched."""
    check_float(fn, "input", x, complex_ok=True, int_ok=int_ok)
    check_rank(fn, "input", x, (n + 1, n + 2),
               f"(unbatched (C, *spatial) or batched (N, C, *spatial)) input for a "
               f"{n}-D convolution")
    if any(size < 1 for size in x.shape[-n:]):
        raise ValueError(f"{fn}: `input` must have non-empty spatial dims, got shape "
                         f"{tuple(x.shape)} (only the batch may be empty)")
    return (x, False) if x.ndim == n + 2 else (x[None], True)


def conv_spec(fn: str, spatial, kernel, stride, padding, dilation, groups,
              in_channels: int, out_channels: int, weight_in: int,
              *, in_name: str = "input", weight_name: str = "weight",
              algorithm=None, precision=None) -> ConvSpec:
    """Normalise torch-style conv arguments and check them against the shapes."""
    n = len(kernel)
    stride = int_tuple(fn, "stride", stride, n, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, n, minimum=1)
    pads = parse_padding(fn, padding, n, kernel, stride, dilation)
    groups = check_groups(fn, groups, in_channels, out_channels, weight_in,
                          in_name=in_name, weight_name=weight_name)
    check_kernel_fits(fn, spatial, kernel, pads, dilation, in_name=in_name,
                      weight_name=weight_name)
    return ConvSpec(stride, pads, dilation, groups, check_algorithm(fn, algorithm),
                    resolve_precision(fn, precision))


def _check_border_padding(fn: str, mode: str, spatial, pads) -> None:
    # torch's F.pad: reflect needs pad < size, circular needs pad <= size.
    for size, (lo, hi) in zip(spatial, pads):
        limit = size - 1 if mode == "reflect" else size
        if mode != "replicate" and max(lo, hi) > limit:
            rule = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"{fn}: padding_mode={mode!r}: each `padding` must be {rule} the input "
                f"size, got padding {tuple(pads)} for input {tuple(spatial)}")


def pad_border(x, pads, mode: str):
    """Pad the spatial axes of x (N, C, *spatial) with a torch ``padding_mode``
    (``F.pad``'s gathers, whose gradient folds the border copies back)."""
    return pad_axes(x, ((0, 0), (0, 0)) + tuple(pads), mode)


_ARGS = """\
    Args:
      input: {input}, or unbatched without N; a floating, complex or
        integer array (an integer convolution has no gradient).
      weight: {weight}, same dtype as ``input``.
      bias: optional (C_out,), same dtype.
      stride: int or one int per spatial dim, >= 1.
      padding: int, one int per spatial dim, one ``(lo, hi)`` pair per spatial
        dim, ``"valid"`` or ``"same"`` (stride 1 only; an odd total puts the
        extra on the high side).
      dilation: int or one int per spatial dim, >= 1.
      groups: number of channel groups; divides C_in and C_out.
      padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``,
        as torch's ``nn.ConvNd``; the gradient of border copies folds back.
      algorithm: keyword-only; how the gradients are computed: ``"auto"``,
        ``"transpose"`` (the textbook rules) or ``"taps"``; None uses the
        default (:func:`jaxgrad.set_conv_algorithm`). Values are the same;
        see ``docs/performance.md``.
      precision: keyword-only; the ``lax.Precision`` (or its name, or one per
        operand) of every convolution and matmul of the op and of its
        gradients. None means full float32 (``"highest"``) unless
        ``jax.default_matmul_precision`` is in effect, so TF32 is only used
        when asked for (``docs/precision.md``).

    Returns:
      {output} (without N for unbatched input), the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.
"""


def conv_nd(fn: str, n: int | None, input: ArrayLike, weight: ArrayLike,
            bias: ArrayLike | None = None, stride: Size = 1, padding: ConvPadding = 0,
            dilation: Size = 1, groups: int = 1, padding_mode: str = "zeros", *,
            algorithm: str | None = None, precision: Precision = None) -> Array:
    """``conv`` (n None: the weight's rank) or ``conv{n}d``; errors name ``fn``."""
    input, weight, bias = float_arrays(fn, input=input, weight=weight, bias=bias,
                                       optional=("bias",), **DTYPES)
    n = check_weight_rank(fn, weight, n, int_ok=True)
    x, unbatched = batch_input(fn, input, n, int_ok=True)
    check_same_dtype(fn, {"input": input, "weight": weight, "bias": bias}, **DTYPES)
    check_bias(fn, bias, weight.shape[0])
    mode = parse_padding_mode(fn, padding_mode)
    spec = conv_spec(fn, x.shape[2:], weight.shape[2:], stride, padding, dilation,
                     groups, x.shape[1], weight.shape[0], weight.shape[1],
                     algorithm=algorithm, precision=precision)
    if mode != "zeros":
        _check_border_padding(fn, mode, x.shape[2:], spec.padding)
        x = pad_border(x, spec.padding, mode)
        spec = dataclasses.replace(spec, padding=((0, 0),) * n)
    y = _core.conv_core(x, weight, spec)
    if bias is not None:
        y = _core.add_bias(y, bias)
    return y[0] if unbatched else y


# The docstrings of the public variants, by rank (None: ``conv``).
DOCS = {
    None: """N-d convolution (cross-correlation) with explicit, differentiable VJPs.

    ``y[n, o, p] = b[o] + Σ_{c,k} x̂[n, γ(o)·C_in/G + c, p·s + k·d] · w[o, c, k]``
    where x̂ is the padded input; the number of spatial dims is ``weight.ndim - 2``.

""" + _ARGS.format(input="(N, C_in, *spatial)", weight="(C_out, C_in/groups, *kernel)",
                   output="(N, C_out, *out)") + """
    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(6, dtype=jnp.float32).reshape(1, 1, 6)
      >>> jaxgrad.conv(x, jnp.ones((1, 1, 3), jnp.float32), padding=1)
      Array([[[ 1.,  3.,  6.,  9., 12.,  9.]]], dtype=float32)
    """,
    1: """1-D convolution, as ``torch.nn.functional.conv1d`` (see :func:`conv`).

""" + _ARGS.format(input="(N, C_in, L)", weight="(C_out, C_in/groups, K)",
                   output="(N, C_out, L_out)") + """
    Example:
      A difference filter at stride 2 on the squares 0, 1, 4, ..., 49:

      >>> import jax.numpy as jnp, jaxgrad
      >>> x = (jnp.arange(8, dtype=jnp.float32) ** 2).reshape(1, 1, 8)
      >>> jaxgrad.conv1d(x, jnp.array([[[1.0, -1.0]]], jnp.float32), stride=2)
      Array([[[ -1.,  -5.,  -9., -13.]]], dtype=float32)
    """,
    2: """2-D convolution, as ``torch.nn.functional.conv2d`` (see :func:`conv`).

""" + _ARGS.format(input="(N, C_in, H, W)", weight="(C_out, C_in/groups, kH, kW)",
                   output="(N, C_out, H_out, W_out)") + """
    Example:
      Sums over 2x2 blocks; then the gradient of a padded 3x3 box filter's
      sum, which counts the windows that cover each pixel:

      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 1, 4, 4)
      >>> jaxgrad.conv2d(x, jnp.ones((1, 1, 2, 2), jnp.float32), stride=2)
      Array([[[[10., 18.],
               [42., 50.]]]], dtype=float32)
      >>> box = jnp.ones((1, 1, 3, 3), jnp.float32)
      >>> jax.grad(lambda x: jaxgrad.conv2d(x, box, padding=1).sum())(x)[0, 0]
      Array([[4., 6., 6., 4.],
             [6., 9., 9., 6.],
             [6., 9., 9., 6.],
             [4., 6., 6., 4.]], dtype=float32)
    """,
    3: """3-D convolution, as ``torch.nn.functional.conv3d`` (see :func:`conv`).

""" + _ARGS.format(input="(N, C_in, D, H, W)", weight="(C_out, C_in/groups, kD, kH, kW)",
                   output="(N, C_out, D_out, H_out, W_out)") + """
    Example:
      A depthwise (groups = channels) 2x2x2 box sum over two channels:

      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.ones((1, 2, 2, 2, 2), jnp.float32).at[:, 1].set(2.0)
      >>> jaxgrad.conv3d(x, jnp.ones((2, 1, 2, 2, 2), jnp.float32), groups=2).reshape(-1)
      Array([ 8., 16.], dtype=float32)
    """,
}

VARIANTS = variants(conv_nd, "conv{d}", DOCS)
