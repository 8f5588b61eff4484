"""The explicit convolution gradients published as ``jaxgrad.grad`` (see that module).

The public functions are ``VARIANTS`` of one N-d implementation per kind
(``conv_input_nd``, ...), made in ``_ranked``.
"""

from __future__ import annotations

from .._args import (check_float, check_same_dtype, check_static, float_arrays,
                     int_tuple, is_sequence)
from .._typing import Array, ArrayLike, ConvPadding, Precision, Shape, Size
from .._variants import rank_name, variants
from . import _core, _ops, _transpose
from ._ops import check_weight_rank, batch_input, conv_spec
from ._spec import check_weight_extent, conv_output_shape
from ._transpose import check_transpose_weight, transpose_spec


def _shape(fn: str, name: str, value, ranks=None) -> tuple[int, ...]:
    """A full shape; its length in ``ranks``, or >= 3 when ``ranks`` is None."""
    check_static(fn, name, value, "a shape (a tuple of ints)")
    if not is_sequence(value):
        raise TypeError(f"{fn}: `{name}` must be a shape (a tuple of ints), got "
                        f"{value!r}")
    shape = int_tuple(fn, name, value, len(value), minimum=0)
    if ranks is None and len(shape) < 3:
        raise ValueError(f"{fn}: `{name}` must be a shape of length >= 3, got "
                         f"{shape!r}")
    if ranks is not None and len(shape) not in ranks:
        allowed = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{fn}: `{name}` must be a shape of length {allowed}, got "
                         f"{shape!r}")
    return shape


def _batched_grad_output(fn: str, grad_output, expected: tuple[int, ...],
                         unbatched: bool):
    """Check ``grad_output`` has the forward output's (batched) shape; return it batched."""
    check_float(fn, "grad_output", grad_output, complex_ok=True)
    if unbatched:
        expected = expected[1:]
    if tuple(grad_output.shape) != tuple(expected):
        raise ValueError(f"{fn}: `grad_output` must have shape {tuple(expected)} "
                         f"(the output of the forward op), got "
                         f"{tuple(grad_output.shape)}")
    return grad_output[None] if unbatched else grad_output


def _input_size(fn: str, input_size, n: int) -> tuple[tuple[int, ...], bool]:
    """``input_size`` as a batched shape (N, C, *spatial), and whether it was unbatched."""
    shape = _shape(fn, "input_size", input_size, (n + 1, n + 2))
    if min(shape[-n:]) < 1:
        # as for a forward input: torch rejects empty spatial dims
        raise ValueError(f"{fn}: `input_size` must have non-empty spatial dims, got "
                         f"{shape} (only the batch and channels may be empty)")
    return (shape, False) if len(shape) == n + 2 else ((1,) + shape, True)


def _weight_size(fn: str, weight_size, n: int | None, module) -> tuple[int, ...]:
    """``weight_size`` checked like a weight of ``module`` (_conv or _conv_transpose)."""
    if n is None:
        n = len(_shape(fn, "weight_size", weight_size)) - 2
    shape = _shape(fn, "weight_size", weight_size, (n + 2,))
    check_weight_extent(fn, "weight_size", shape, module.WEIGHT_LAYOUT,
                        module.WEIGHT_CHANNELS)
    return shape


def conv_input_nd(fn: str, n: int | None, input_size: Shape, weight: ArrayLike,
                  grad_output: ArrayLike, stride: Size = 1, padding: ConvPadding = 0,
                  dilation: Size = 1, groups: int = 1, *, algorithm: str | None = None,
                  precision: Precision = None) -> Array:
    weight, grad_output = float_arrays(fn, weight=weight, grad_output=grad_output,
                                       complex_ok=True)
    n = check_weight_rank(fn, weight, n)
    size, unbatched = _input_size(fn, input_size, n)
    check_same_dtype(fn, {"weight": weight, "grad_output": grad_output}, complex_ok=True)
    spec = conv_spec(fn, size[2:], weight.shape[2:], stride, padding, dilation,
                     groups, size[1], weight.shape[0], weight.shape[1],
                     in_name="input_size", algorithm=algorithm, precision=precision)
    out = _conv_out_shape(size, weight.shape, spec)
    g = _batched_grad_output(fn, grad_output, out, unbatched)
    x_bar = _core.input_grad(g, weight, spec, size[2:])
    return x_bar[0] if unbatched else x_bar


def _conv_out_shape(size, weight_size, spec) -> tuple[int, ...]:
    return (size[0], weight_size[0]) + conv_output_shape(size[2:], weight_size[2:],
                                                         spec)


def conv_weight_nd(fn: str, n: int | None, input: ArrayLike, weight_size: Shape,
                   grad_output: ArrayLike, stride: Size = 1, padding: ConvPadding = 0,
                   dilation: Size = 1, groups: int = 1, *, algorithm: str | None = None,
                   precision: Precision = None) -> Array:
    input, grad_output = float_arrays(fn, input=input, grad_output=grad_output,
                                      complex_ok=True)
    w_size = _weight_size(fn, weight_size, n, _ops)
    x, unbatched = batch_input(fn, input, len(w_size) - 2)
    check_same_dtype(fn, {"input": input, "grad_output": grad_output}, complex_ok=True)
    spec = conv_spec(fn, x.shape[2:], w_size[2:], stride, padding, dilation, groups,
                     x.shape[1], w_size[0], w_size[1], weight_name="weight_size",
                     algorithm=algorithm, precision=precision)
    out = _conv_out_shape(x.shape, w_size, spec)
    g = _batched_grad_output(fn, grad_output, out, unbatched)
    return _core.weight_grad(x, g, spec, w_size[2:])


def conv_transpose_input_nd(fn: str, n: int | None, input_size: Shape,
                            weight: ArrayLike, grad_output: ArrayLike, stride: Size = 1,
                            padding: Size = 0, output_padding: Size = 0, groups: int = 1,
                            dilation: Size = 1, *, algorithm: str | None = None,
                            precision: Precision = None) -> Array:
    weight, grad_output = float_arrays(fn, weight=weight, grad_output=grad_output,
                                       complex_ok=True)
    n = check_transpose_weight(fn, weight, n)
    size, unbatched = _input_size(fn, input_size, n)
    check_same_dtype(fn, {"weight": weight, "grad_output": grad_output}, complex_ok=True)
    spec, out = transpose_spec(fn, size[2:], weight.shape[2:], stride, padding,
                               output_padding, groups, dilation, size[1],
                               weight.shape, in_name="input_size",
                               algorithm=algorithm, precision=precision)
    expected = (size[0], weight.shape[1] * spec.groups) + out
    g = _batched_grad_output(fn, grad_output, expected, unbatched)
    x_bar = _core.conv_core(g, weight, spec)
    return x_bar[0] if unbatched else x_bar


def conv_transpose_weight_nd(fn: str, n: int | None, input: ArrayLike,
                             weight_size: Shape, grad_output: ArrayLike, stride: Size = 1,
                             padding: Size = 0, output_padding: Size = 0, groups: int = 1,
                             dilation: Size = 1, *, algorithm: str | None = None,
                             precision: Precision = None) -> Array:
    input, grad_output = float_arrays(fn, input=input, grad_output=grad_output,
                                      complex_ok=True)
    w_size = _weight_size(fn, weight_size, n, _transpose)
    x, unbatched = batch_input(fn, input, len(w_size) - 2)
    check_same_dtype(fn, {"input": input, "grad_output": grad_output}, complex_ok=True)
    spec, out = transpose_spec(fn, x.shape[2:], w_size[2:], stride, padding,
                               output_padding, groups, dilation, x.shape[1], w_size,
                               weight_name="weight_size", algorithm=algorithm,
                               precision=precision)
    expected = (x.shape[0], w_size[1] * spec.groups) + out
    g = _batched_grad_output(fn, grad_output, expected, unbatched)
    # y = conv_transpose(x, w) = input_grad(x, w): its weight VJP is weight_grad(ḡ, x).
    return _core.weight_grad(g, x, spec, w_size[2:])


_ALGORITHM = """\
      algorithm: keyword-only, "auto", "transpose" or "taps": how the result
        (and its own gradients) are computed; see :func:`jaxgrad.conv`.
      precision: keyword-only; the ``lax.Precision`` of every contraction, as
        for :func:`jaxgrad.conv` (None: full float32 unless asked otherwise)."""

_CONV_ARGS = """\
      stride: int or one int per spatial dim, as for the convolution.
      padding: int, per-dim ints or (lo, hi) pairs, "valid" or "same", as for
        the convolution.
      dilation: int or one int per spatial dim, as for the convolution.
      groups: number of channel groups, as for the convolution.
""" + _ALGORITHM

_TRANSPOSE_ARGS = """\
      stride: int or one int per spatial dim, as for the transposed convolution.
      padding: int or one int per spatial dim, as for the transposed convolution.
      output_padding: int or one int per spatial dim, as for the transposed
        convolution.
      groups: number of channel groups, as for the transposed convolution.
      dilation: int or one int per spatial dim, as for the transposed convolution.
""" + _ALGORITHM

_DOCS = {
    "input": """Gradient of ``conv{d}`` w.r.t. its input (torch.nn.grad.{torch}).

    x̄[n, c, i] = Σ_{{o,p,k: p·s + k·d = i + lo}} ḡ[n, o, p] · w[o, c, k]: a
    transposed convolution (flipped kernel, stride as input dilation).

    Args:
      input_size: the input's full shape (N, C_in, *spatial) or (C_in, *spatial).
      weight: (C_out, C_in/groups, *kernel).
      grad_output: (N, C_out, *out), the cotangent of the convolution's output.
{conv_args}

    Returns:
      An array of shape ``input_size``; rows no window reads get exactly 0.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      Under an all-ones cotangent, the input gradient of a box filter of width
      2 counts the windows that read each input row (1, 2, 2, 1 per dim):

      >>> import jax.numpy as jnp, jaxgrad
      >>> w, g = jnp.ones((1, 1) + (2,) * {n}, jnp.float32), jnp.ones((1, 1) + (3,) * {n}, jnp.float32)
      >>> x_bar = jaxgrad.grad.{name}((1, 1) + (4,) * {n}, w, g)
      >>> x_bar.reshape(-1)[:4]
      Array([1., 2., 2., 1.], dtype=float32)
    """,
    "weight": """Gradient of ``conv{d}`` w.r.t. its weight (torch.nn.grad.{torch}).

    w̄[o, c, k] = Σ_{{n,p}} x̂[n, c, p·s + k·d] · ḡ[n, o, p]: a correlation of the
    padded input with the output gradient.

    Args:
      input: (N, C_in, *spatial) or (C_in, *spatial).
      weight_size: the weight's full shape (C_out, C_in/groups, *kernel).
      grad_output: (N, C_out, *out).
{conv_args}

    Returns:
      An array of shape ``weight_size``.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      Each tap of a width-2 kernel over 4 rows meets 3 outputs per dim, so
      with all-ones input and cotangent every entry is 3 ** {n}:

      >>> import jax.numpy as jnp, jaxgrad
      >>> x, g = jnp.ones((1, 1) + (4,) * {n}, jnp.float32), jnp.ones((1, 1) + (3,) * {n}, jnp.float32)
      >>> jaxgrad.grad.{name}(x, (1, 1) + (2,) * {n}, g).reshape(-1)
      Array([{taps}], dtype=float32)
    """,
    "transpose_input": """Gradient of ``conv_transpose{d}`` w.r.t. its input.

    The transposed convolution is the adjoint of a convolution, so its input
    gradient is that convolution applied to ``grad_output``.

    Args:
      input_size: (N, C_in, *spatial) or (C_in, *spatial).
      weight: (C_in, C_out/groups, *kernel).
      grad_output: (N, C_out, *out).
{transpose_args}

    Returns:
      An array of shape ``input_size``.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      Each input pixel stamped a width-2 box, so under an all-ones cotangent
      its gradient is the box's sum, 2 ** {n}:

      >>> import jax.numpy as jnp, jaxgrad
      >>> w, g = jnp.ones((1, 1) + (2,) * {n}, jnp.float32), jnp.ones((1, 1) + (4,) * {n}, jnp.float32)
      >>> x_bar = jaxgrad.grad.{name}((1, 1) + (3,) * {n}, w, g)
      >>> x_bar.reshape(-1)[:3]
      Array([{stamp}], dtype=float32)
    """,
    "transpose_weight": """Gradient of ``conv_transpose{d}`` w.r.t. its weight.

    w̄[c, o, k] = Σ_{{n,p}} ĝ[n, o, p·s + k·d] · x[n, c, p]: the correlation of the
    output gradient with the input.

    Args:
      input: (N, C_in, *spatial) or (C_in, *spatial).
      weight_size: (C_in, C_out/groups, *kernel).
      grad_output: (N, C_out, *out).
{transpose_args}

    Returns:
      An array of shape ``weight_size``.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      Each kernel tap was stamped by all 3 ** {n} input pixels:

      >>> import jax.numpy as jnp, jaxgrad
      >>> x, g = jnp.ones((1, 1) + (3,) * {n}, jnp.float32), jnp.ones((1, 1) + (4,) * {n}, jnp.float32)
      >>> jaxgrad.grad.{name}(x, (1, 1) + (2,) * {n}, g).reshape(-1)
      Array([{taps}], dtype=float32)
    """,
}


def _docs(kind: str, pattern: str) -> dict[int | None, str]:
    """The docstring of each rank's ``kind`` function, from ``_DOCS[kind]``."""
    docs = {}
    for n in (None, 1, 2, 3):
        suffix = f"{n}d" if n else ""
        rank = n or 1           # the example of the rank-generic function is 1-D
        docs[n] = _DOCS[kind].format(
            d=suffix, torch=f"conv{suffix or '2d'}_{kind}", name=rank_name(pattern, n),
            n=rank, conv_args=_CONV_ARGS, transpose_args=_TRANSPOSE_ARGS,
            taps=", ".join([f"{3 ** rank}."] * 2 ** rank),
            stamp=", ".join([f"{2 ** rank}."] * 3))
    return docs


_KINDS = {   # kind: (N-d implementation, public name pattern)
    "input": (conv_input_nd, "conv{d}_input"),
    "weight": (conv_weight_nd, "conv{d}_weight"),
    "transpose_input": (conv_transpose_input_nd, "conv_transpose{d}_input"),
    "transpose_weight": (conv_transpose_weight_nd, "conv_transpose{d}_weight"),
}
VARIANTS = tuple(variant for kind, (impl, pattern) in _KINDS.items()
                 for variant in variants(impl, pattern, _docs(kind, pattern)))
