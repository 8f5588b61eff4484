"""Transposed convolutions with PyTorch's signatures.

A transposed convolution is, by definition, the input gradient of a
convolution: torch's ``conv_transpose(x, w, s, p, output_padding=a, G, d)`` is
the adjoint of ``conv(·, w, s, p, d, G)`` applied to ``x``, for a convolution
whose input has the size

  O = (I-1)s - 2p + d(K-1) + a + 1.

With output_padding ``a`` the convolution is padded by (p, p - a) rather than
(p, p): then O + p + (p - a) - K' = (I-1)s exactly, so that convolution maps
an O-sized input to exactly I outputs, with no leftover. The transposed
convolution is ``_kernels.input_grad`` of that spec and needs no rule of its
own: its VJP w.r.t. x is the convolution ``conv_core(ḡ, w)`` and w.r.t. w the
correlation ``weight_grad(ḡ, x)``. The ``a`` extra rows are computed values
(the windows that straddle them are real), not zeros, exactly as in torch.
"""

from __future__ import annotations

from . import _kernels
from ._algorithms import check_algorithm
from ._conv import batch_input
from ._spec import (ConvSpec, check_bias, check_float, check_rank,
                    check_same_dtype, check_weight_extent,
                    conv_transpose_output_size, int_tuple, parse_groups)

WEIGHT_LAYOUT = "(C_in, C_out/groups, *kernel)"
WEIGHT_CHANNELS = ("C_in", "C_out/groups")   # torch wants a non-empty weight


def transpose_spec(fn: str, spatial, kernel, stride, padding, output_padding,
                   groups, dilation, in_channels: int, weight_shape, *,
                   in_name: str = "input", weight_name: str = "weight",
                   algorithm=None) -> tuple[ConvSpec, tuple[int, ...]]:
    """Check torch conv_transpose arguments; return (conv spec, output spatial shape)."""
    n = len(kernel)
    stride = int_tuple(fn, "stride", stride, n, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, n, minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"{fn}: `padding` must be an int or a tuple of {n} ints "
                         f"(strings are not supported for transposed "
                         f"convolutions), got {padding!r}")
    pads = int_tuple(fn, "padding", padding, n, minimum=0)
    extra = int_tuple(fn, "output_padding", output_padding, n, minimum=0)
    for a, s, d in zip(extra, stride, dilation):
        if a >= max(s, d):
            raise ValueError(
                f"{fn}: `output_padding` must be smaller than either `stride` or "
                f"`dilation`, got output_padding={extra}, stride={stride}, "
                f"dilation={dilation}")
    groups = parse_groups(fn, groups)
    if in_channels % groups:
        raise ValueError(f"{fn}: `groups` (={groups}) must divide the input "
                         f"channels (={in_channels})")
    if weight_shape[0] != in_channels:
        raise ValueError(
            f"{fn}: `{weight_name}` (layout (C_in, C_out/groups, *kernel)) has "
            f"{weight_shape[0]} input channels, but `{in_name}` has {in_channels}")
    out = tuple(conv_transpose_output_size(i, k, s, p, a, d)
                for i, k, s, p, a, d in zip(spatial, kernel, stride, pads, extra,
                                            dilation))
    if any(o < 1 for o in out):
        # (I-1)s + d(K-1) + a >= 0, so only the padding can make out < 1
        raise ValueError(
            f"{fn}: the output size {out} is not positive: `padding` {pads} is too "
            f"large (input {tuple(spatial)}, kernel {tuple(kernel)}, stride "
            f"{stride}, padding {pads}, output_padding {extra}, dilation "
            f"{dilation})")
    spec = ConvSpec(stride, tuple((p, p - a) for p, a in zip(pads, extra)),
                    dilation, groups, check_algorithm(fn, algorithm))
    return spec, out


def check_transpose_weight(fn: str, weight, n: int | None) -> int:
    """Check the weight's dtype, rank and extent; return its spatial rank n."""
    check_float(fn, "weight", weight)
    if n is None:
        if weight.ndim < 3:
            raise ValueError(f"{fn}: `weight` must have layout {WEIGHT_LAYOUT} with at "
                             f"least one spatial dim, got shape "
                             f"{tuple(weight.shape)}")
        n = weight.ndim - 2
    check_rank(fn, "weight", weight, (n + 2,), f"{WEIGHT_LAYOUT} for a {n}-D "
               "transposed convolution")
    check_weight_extent(fn, "weight", weight.shape, WEIGHT_LAYOUT, WEIGHT_CHANNELS)
    return n


def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                   groups=1, dilation=1, *, algorithm=None):
    """N-d transposed convolution, torch's ``conv_transpose{1,2,3}d`` semantics.

    Note torch's argument order: ``groups`` comes before ``dilation``.

    Args:
      input: (N, C_in, *spatial) or unbatched (C_in, *spatial).
      weight: (C_in, C_out/groups, *kernel).
      bias: optional (C_out,).
      stride, padding, output_padding, dilation: ints or tuples of ints;
        ``output_padding`` < max(stride, dilation) per dim.
      groups: divides C_in.
      algorithm: keyword-only; how the output and gradients are computed:
        ``"auto"``, ``"transpose"`` or ``"taps"`` (see :func:`jaxgrad.conv`).

    Returns:
      (N, C_out, *out) with out = (I-1)s - 2p + d(K-1) + output_padding + 1.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> ones = jnp.ones((1, 1, 2), jnp.float32)
      >>> jaxgrad.conv_transpose(ones, ones, stride=2)
      Array([[[1., 1., 1., 1.]]], dtype=float32)
    """
    return _conv_transpose("conv_transpose", None, input, weight, bias, stride,
                           padding, output_padding, groups, dilation, algorithm)


def _conv_transpose(fn, n, input, weight, bias, stride, padding, output_padding,
                    groups, dilation, algorithm):
    n = check_transpose_weight(fn, weight, n)
    x, unbatched = batch_input(fn, input, n)
    check_same_dtype(fn, {"input": input, "weight": weight, "bias": bias})
    spec, out = transpose_spec(fn, x.shape[2:], weight.shape[2:], stride, padding,
                               output_padding, groups, dilation, x.shape[1],
                               weight.shape, algorithm=algorithm)
    check_bias(fn, bias, weight.shape[1] * spec.groups)
    y = _kernels.input_grad(x, weight, spec, out)
    if bias is not None:
        y = _kernels.add_bias(y, bias)
    return y[0] if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, algorithm=None):
    """1-D transposed convolution: input (N, C_in, L), weight (C_in, C_out/groups, K).

    Same semantics as :func:`conv_transpose` and ``torch.nn.functional.conv_transpose1d``.
    """
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride,
                           padding, output_padding, groups, dilation, algorithm)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, algorithm=None):
    """2-D transposed convolution: input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW).

    Same semantics as :func:`conv_transpose` and ``torch.nn.functional.conv_transpose2d``.
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride,
                           padding, output_padding, groups, dilation, algorithm)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1, *, algorithm=None):
    """3-D transposed convolution: input (N, C_in, D, H, W), weight (C_in, C_out/groups, kD, kH, kW).

    Same semantics as :func:`conv_transpose` and ``torch.nn.functional.conv_transpose3d``.
    """
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride,
                           padding, output_padding, groups, dilation, algorithm)
