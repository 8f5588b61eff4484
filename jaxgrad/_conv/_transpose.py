"""Transposed convolutions with PyTorch's signatures.

A transposed convolution is, by definition, the input gradient of a
convolution: torch's ``conv_transpose(x, w, s, p, output_padding=a, G, d)`` is
the adjoint of ``conv(·, w, s, p, d, G)`` applied to ``x``, for a convolution
whose input has the size

  O = (I-1)s - 2p + d(K-1) + a + 1.

With output_padding ``a`` the convolution is padded by (p, p - a) rather than
(p, p): then O + p + (p - a) - K' = (I-1)s exactly, so that convolution maps
an O-sized input to exactly I outputs, with no leftover. The transposed
convolution is ``_core.input_grad`` of that spec and needs no rule of its
own: its VJP w.r.t. x is the convolution ``conv_core(ḡ, w)`` and w.r.t. w the
correlation ``weight_grad(ḡ, x)``. The ``a`` extra rows are computed values
(the windows that straddle them are real), not zeros, exactly as in torch.

The public functions are ``VARIANTS`` of ``conv_transpose_nd``, made in ``_ranked``.
"""

from __future__ import annotations

from .._args import (_as_int, check_same_dtype, check_static, float_arrays, int_tuple,
                     is_sequence)
from .._precision import resolve_precision
from .._typing import Array, ArrayLike, Precision, Shape, Size
from .._variants import variants
from . import _core
from ._algorithms import check_algorithm
from ._ops import DTYPES, batch_input, check_weight_rank
from ._spec import ConvSpec, check_bias, conv_transpose_output_size, parse_groups

WEIGHT_LAYOUT = "(C_in, C_out/groups, *kernel)"
WEIGHT_CHANNELS = ("C_in", "C_out/groups")   # torch wants a non-empty weight


def transpose_spec(fn: str, spatial, kernel, stride, padding, output_padding,
                   groups, dilation, in_channels: int, weight_shape, *,
                   in_name: str = "input", weight_name: str = "weight",
                   algorithm=None, precision=None) -> tuple[ConvSpec, tuple[int, ...]]:
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
                    dilation, groups, check_algorithm(fn, algorithm),
                    resolve_precision(fn, precision))
    return spec, out


# torch's nn.ConvTranspose{1,2,3}d.forward(input, output_size): the output
# size is ambiguous by up to stride - 1 rows (the leftover r of the direct
# convolution it is the adjoint of), and output_size picks it. Per dim, with
# the smallest output O₀ = (I-1)s - 2p + d(K-1) + 1, the requested size must
# lie in [O₀, O₀ + s - 1] and output_padding = size - O₀.


def padding_for_output_size(fn: str, output_size, output_padding, spatial, kernel,
                            stride, padding, dilation, *, leading: int
                            ) -> tuple[int, ...]:
    """The output_padding that gives ``output_size`` (spatial sizes, or a full
    shape with ``leading`` non-spatial dims first, whose values are ignored)."""
    n = len(kernel)
    check_static(fn, "output_size", output_size, "a sequence of ints")
    if not is_sequence(output_size):
        raise TypeError(f"{fn}: `output_size` must be a sequence of ints (the "
                        f"output's spatial sizes or its full shape), got "
                        f"{type(output_size).__name__} {output_size!r}")
    sizes = tuple(output_size)
    sizes = sizes[leading:] if len(sizes) == n + leading else sizes
    if len(sizes) != n:
        raise ValueError(f"{fn}: `output_size` must have {n} entries (the spatial "
                         f"sizes) or {n + leading} (the full shape) for a "
                         f"{n + leading}-D `input`, got {tuple(output_size)!r}")
    sizes = tuple(_as_int(fn, "output_size", v) for v in sizes)
    extra = int_tuple(fn, "output_padding", output_padding, n, minimum=0)
    if any(extra):
        raise ValueError(f"{fn}: give `output_size` or a nonzero `output_padding`, "
                         f"not both (torch's nn.ConvTranspose ignores output_padding "
                         f"when output_size is given), got output_padding={extra} and "
                         f"output_size={tuple(output_size)!r}")
    if isinstance(padding, str):
        return extra                    # transpose_spec refuses it
    stride = int_tuple(fn, "stride", stride, n, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, n, minimum=1)
    pads = int_tuple(fn, "padding", padding, n, minimum=0)
    smallest = tuple(conv_transpose_output_size(i, k, s, p, 0, d) for i, k, s, p, d
                     in zip(spatial, kernel, stride, pads, dilation))
    largest = tuple(o + s - 1 for o, s in zip(smallest, stride))
    if any(not lo <= size <= hi for size, lo, hi in zip(sizes, smallest, largest)):
        raise ValueError(
            f"{fn}: `output_size` {sizes} is out of range: the valid sizes run from "
            f"{smallest} to {largest} (input {tuple(spatial)}, kernel {tuple(kernel)}, "
            f"stride {stride}, padding {pads}, dilation {dilation})")
    return tuple(size - lo for size, lo in zip(sizes, smallest))


def check_transpose_weight(fn: str, weight, n: int | None, int_ok: bool = False) -> int:
    """Check the weight's dtype, rank and extent; return its spatial rank n."""
    return check_weight_rank(fn, weight, n, WEIGHT_LAYOUT, WEIGHT_CHANNELS,
                             "transposed convolution", int_ok=int_ok)


_ARGS = """\
    Args:
      input: {input}, or unbatched without N; a floating, complex or
        integer array (an integer convolution has no gradient).
      weight: {weight}, same dtype as ``input``.
      bias: optional (C_out,), same dtype.
      stride: int or one int per spatial dim, >= 1.
      padding: int or one int per spatial dim, >= 0: the rows cropped from
        each side of the full output (``dilation·(K-1) - padding`` of zero
        padding in the equivalent direct convolution).
      output_padding: int or one int per spatial dim, smaller than ``stride`` or
        ``dilation``: extra rows computed at the high end of each output dim.
      groups: number of channel groups; divides C_in.
      dilation: int or one int per spatial dim, >= 1.
      output_size: keyword-only; the output's spatial sizes (or its full
        shape, whose leading N, C entries are ignored), as torch's
        ``nn.ConvTranspose{{1,2,3}}d.forward(input, output_size)``: each in
        ``[out₀, out₀ + stride - 1]``, ``out₀`` the size without output_padding;
        it sets output_padding (which must then be 0).
      algorithm: keyword-only; how the output and gradients are computed:
        ``"auto"``, ``"transpose"`` or ``"taps"`` (see :func:`jaxgrad.conv`).
      precision: keyword-only; the ``lax.Precision`` (or its name, or one per
        operand) of every contraction, forward and backward; None means full
        float32 unless ``jax.default_matmul_precision`` is in effect
        (``docs/precision.md``).

    Returns:
      {output} (without N for unbatched input), the input's dtype, where per
      dim ``out = (I-1)·stride - 2·padding + dilation·(K-1) + output_padding + 1``.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.
"""


def conv_transpose_nd(fn: str, n: int | None, input: ArrayLike, weight: ArrayLike,
                      bias: ArrayLike | None = None, stride: Size = 1, padding: Size = 0,
                      output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
                      output_size: Shape | None = None, algorithm: str | None = None,
                      precision: Precision = None) -> Array:
    """``conv_transpose`` (n None: the weight's rank) or ``conv_transpose{n}d``."""
    input, weight, bias = float_arrays(fn, input=input, weight=weight, bias=bias,
                                       optional=("bias",), **DTYPES)
    n = check_transpose_weight(fn, weight, n, int_ok=True)
    x, unbatched = batch_input(fn, input, n, int_ok=True)
    check_same_dtype(fn, {"input": input, "weight": weight, "bias": bias}, **DTYPES)
    if output_size is not None:
        output_padding = padding_for_output_size(
            fn, output_size, output_padding, x.shape[2:], weight.shape[2:], stride,
            padding, dilation, leading=1 if unbatched else 2)
    spec, out = transpose_spec(fn, x.shape[2:], weight.shape[2:], stride, padding,
                               output_padding, groups, dilation, x.shape[1],
                               weight.shape, algorithm=algorithm, precision=precision)
    check_bias(fn, bias, weight.shape[1] * spec.groups)
    y = _core.input_grad(x, weight, spec, out)
    if bias is not None:
        y = _core.add_bias(y, bias)
    return y[0] if unbatched else y


# The docstrings of the public variants, by rank (None: ``conv_transpose``).
DOCS = {
    None: """N-d transposed convolution, torch's ``conv_transpose{1,2,3}d`` semantics.

    The adjoint of :func:`jaxgrad.conv` with the same weight: each input
    pixel adds ``input[n, c, i] · w[c, o, k]`` at output row ``i·s + k·d - p``.
    Note torch's argument order: ``groups`` comes before ``dilation``.

""" + _ARGS.format(input="(N, C_in, *spatial)", weight="(C_in, C_out/groups, *kernel)",
                   output="(N, C_out, *out)") + """
    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> ones = jnp.ones((1, 1, 2), jnp.float32)
      >>> jaxgrad.conv_transpose(ones, ones, stride=2)
      Array([[[1., 1., 1., 1.]]], dtype=float32)
    """,
    1: """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d``.

""" + _ARGS.format(input="(N, C_in, L)", weight="(C_in, C_out/groups, K)",
                   output="(N, C_out, L_out)") + """
    Example:
      Each input value stamps the kernel (1, 1, 1) every 2 rows:

      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[[1.0, 2.0]]], jnp.float32)
      >>> jaxgrad.conv_transpose1d(x, jnp.ones((1, 1, 3), jnp.float32), stride=2)
      Array([[[1., 1., 3., 2., 2.]]], dtype=float32)
    """,
    2: """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

""" + _ARGS.format(input="(N, C_in, H, W)", weight="(C_in, C_out/groups, kH, kW)",
                   output="(N, C_out, H_out, W_out)") + """
    Example:
      Four overlapping 2x2 stamps of ones:

      >>> import jax.numpy as jnp, jaxgrad
      >>> ones = jnp.ones((1, 1, 2, 2), jnp.float32)
      >>> jaxgrad.conv_transpose2d(ones, ones)[0, 0]
      Array([[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]], dtype=float32)
    """,
    3: """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``.

""" + _ARGS.format(input="(N, C_in, D, H, W)", weight="(C_in, C_out/groups, kD, kH, kW)",
                   output="(N, C_out, D_out, H_out, W_out)") + """
    Example:
      One input voxel stamps the kernel 0..7 once; ``output_padding`` adds a
      row per dim that no stamp reaches:

      >>> import jax.numpy as jnp, jaxgrad
      >>> w = jnp.arange(8, dtype=jnp.float32).reshape(1, 1, 2, 2, 2)
      >>> y = jaxgrad.conv_transpose3d(jnp.ones((1, 1, 1, 1, 1), jnp.float32), w, stride=2,
      ...                              output_padding=1)
      >>> y.shape, float(y.sum()), float(y[0, 0, 1, 1, 1])
      ((1, 1, 3, 3, 3), 28.0, 7.0)
    """,
}

VARIANTS = variants(conv_transpose_nd, "conv_transpose{d}", DOCS)
