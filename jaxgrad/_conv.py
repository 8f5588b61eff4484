"""Convolutions with PyTorch's signatures: ``conv``, ``conv1d``, ``conv2d``, ``conv3d``.

Arguments are checked and normalised once, here, into a ``ConvSpec``; the
differentiable work happens in ``_kernels``, whose every rule is explicit.
"""

from __future__ import annotations

import dataclasses

from . import _kernels
from ._algorithms import check_algorithm
from ._spec import (ConvSpec, check_bias, check_float, check_groups,
                    check_kernel_fits, check_rank, check_same_dtype,
                    check_weight_extent, int_tuple, pad_source_index,
                    parse_padding, parse_padding_mode)

WEIGHT_LAYOUT = "(C_out, C_in/groups, *kernel)"
WEIGHT_CHANNELS = ("C_out",)   # torch allows C_in = 0, but not C_out = 0


def check_weight_rank(fn: str, weight, n: int | None) -> int:
    """Check the weight's dtype, rank and extent; return its spatial rank n."""
    check_float(fn, "weight", weight)
    if n is None:
        if weight.ndim < 3:
            raise ValueError(f"{fn}: `weight` must have layout {WEIGHT_LAYOUT} with at "
                             f"least one spatial dim, got shape "
                             f"{tuple(weight.shape)}")
        n = weight.ndim - 2
    check_rank(fn, "weight", weight, (n + 2,), f"{WEIGHT_LAYOUT} for a "
               f"{n}-D convolution")
    check_weight_extent(fn, "weight", weight.shape, WEIGHT_LAYOUT, WEIGHT_CHANNELS)
    return n


def batch_input(fn: str, x, n: int):
    """Check x is (N, C, *spatial) or unbatched (C, *spatial); return it batched."""
    check_float(fn, "input", x)
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
              algorithm=None) -> ConvSpec:
    """Normalise torch-style conv arguments and check them against the shapes."""
    n = len(kernel)
    stride = int_tuple(fn, "stride", stride, n, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, n, minimum=1)
    pads = parse_padding(fn, padding, n, kernel, stride, dilation)
    groups = check_groups(fn, groups, in_channels, out_channels, weight_in,
                          in_name=in_name, weight_name=weight_name)
    check_kernel_fits(fn, spatial, kernel, pads, dilation, in_name=in_name,
                      weight_name=weight_name)
    return ConvSpec(stride, pads, dilation, groups, check_algorithm(fn, algorithm))


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
    """Pad the spatial axes of x (N, C, *spatial) with a torch ``padding_mode``."""
    for axis, (lo, hi) in enumerate(pads, start=2):
        if lo or hi:
            index = pad_source_index(mode, x.shape[axis], (lo, hi))
            x = _kernels.gather_axis(x, axis, index)
    return x


def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
         padding_mode="zeros", *, algorithm=None):
    """N-d convolution (cross-correlation) with explicit, differentiable VJPs.

    ``y[n, o, p] = b[o] + Σ_{c,k} x̂[n, γ(o)·C_in/G + c, p·s + k·d] · w[o, c, k]``
    where x̂ is the padded input; the number of spatial dims is ``weight.ndim - 2``.

    Args:
      input: (N, C_in, *spatial) or unbatched (C_in, *spatial), a float array.
      weight: (C_out, C_in/groups, *kernel), same dtype as ``input``.
      bias: optional (C_out,).
      stride: int or tuple of ints, >= 1.
      padding: int, tuple of ints, tuple of (lo, hi) pairs, ``"valid"`` or
        ``"same"`` (stride 1 only; an odd total puts the extra on the high side).
      dilation: int or tuple of ints, >= 1.
      groups: number of channel groups; divides C_in and C_out.
      padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``,
        as torch's ``nn.ConvNd``; the gradient of border copies folds back.
      algorithm: keyword-only; how the gradients are computed: ``"auto"``,
        ``"transpose"`` (the textbook rules) or ``"taps"``; None uses the
        default (:func:`jaxgrad.set_conv_algorithm`). Values are the same;
        see ``docs/performance.md``.

    Returns:
      (N, C_out, *out) (or (C_out, *out) for unbatched input), the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(6, dtype=jnp.float32).reshape(1, 1, 6)
      >>> jaxgrad.conv(x, jnp.ones((1, 1, 3), jnp.float32), padding=1)
      Array([[[ 1.,  3.,  6.,  9., 12.,  9.]]], dtype=float32)
    """
    return _convolve("conv", None, input, weight, bias, stride, padding, dilation,
                     groups, padding_mode, algorithm)


def _convolve(fn: str, n: int | None, input, weight, bias, stride, padding,
              dilation, groups, padding_mode, algorithm):
    n = check_weight_rank(fn, weight, n)
    x, unbatched = batch_input(fn, input, n)
    check_same_dtype(fn, {"input": input, "weight": weight, "bias": bias})
    check_bias(fn, bias, weight.shape[0])
    mode = parse_padding_mode(fn, padding_mode)
    spec = conv_spec(fn, x.shape[2:], weight.shape[2:], stride, padding, dilation,
                     groups, x.shape[1], weight.shape[0], weight.shape[1],
                     algorithm=algorithm)
    if mode != "zeros":
        _check_border_padding(fn, mode, x.shape[2:], spec.padding)
        x = pad_border(x, spec.padding, mode)
        spec = dataclasses.replace(spec, padding=((0, 0),) * n)
    y = _kernels.conv_core(x, weight, spec)
    if bias is not None:
        y = _kernels.add_bias(y, bias)
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", *, algorithm=None):
    """1-D convolution: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, K).

    Same arguments and semantics as :func:`conv` and ``torch.nn.functional.conv1d``.
    """
    return _convolve("conv1d", 1, input, weight, bias, stride, padding,
                     dilation, groups, padding_mode, algorithm)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", *, algorithm=None):
    """2-D convolution: input (N, C_in, H, W) or (C_in, H, W), weight (C_out, C_in/groups, kH, kW).

    Same arguments and semantics as :func:`conv` and ``torch.nn.functional.conv2d``.
    """
    return _convolve("conv2d", 2, input, weight, bias, stride, padding,
                     dilation, groups, padding_mode, algorithm)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", *, algorithm=None):
    """3-D convolution: input (N, C_in, D, H, W) or (C_in, D, H, W), weight (C_out, C_in/groups, kD, kH, kW).

    Same arguments and semantics as :func:`conv` and ``torch.nn.functional.conv3d``.
    """
    return _convolve("conv3d", 3, input, weight, bias, stride, padding,
                     dilation, groups, padding_mode, algorithm)

