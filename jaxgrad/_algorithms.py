"""Which formulation computes a convolution's gradients.

Every formulation computes the same sums (``_kernels`` derives them); they
differ in how XLA executes them:

  "transpose"  the textbook rules: the input gradient is a transposed
               convolution (the output gradient dilated by the stride,
               correlated with the flipped kernel), the weight gradient a
               convolution with batch and channels swapped
               (``batch_group_count = groups``). One XLA convolution each.
  "taps"       a sum over kernel taps of channel contractions (``_taps``):
               one batched GEMM plus strided slices (weight gradient) or
               padded adds (input gradient), which XLA fuses into loops. No
               zero-inserted input and no dense expansion of grouped or
               depthwise weight gradients.
  "auto"       chosen per backend and shape by :func:`choose` (the default).

The choice is read when a function is traced: set it per call
(``conv2d(..., algorithm="taps")``), for a block (``with
conv_algorithm("transpose"):``) or for the current thread or task
(``set_conv_algorithm``; the default lives in a ``contextvars.ContextVar``). JAX
caches a function's trace (per function, across new ``jax.jit`` wrappers too),
so a function traced before the default changed keeps its formulation until
``jax.clear_caches()``; the values are the same either way. Arrays typed with explicit
mesh axes (``jax.sharding.AxisType.Explicit``) always get "transpose"; inside
``shard_map`` and with Auto axes every setting applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import jax

from ._spec import ConvSpec

ALGORITHMS = ("auto", "transpose", "taps")

# "taps" materialises one copy of the input (weight gradient) or of the input
# gradient (input gradient) per kernel tap; above this many elements "auto"
# keeps the textbook rule, whose convolution needs no such buffer.
TAPS_MAX_ELEMENTS = 1 << 27

# The default is context-local (threads and asyncio tasks each see their own;
# a new thread starts from "auto"), like jax's own configuration contexts.
_default: contextvars.ContextVar[str] = contextvars.ContextVar(
    "jaxgrad_conv_algorithm", default="auto")


def check_algorithm(fn: str, value) -> str:
    """``value`` checked; None means the current default."""
    if value is None:
        return _default.get()
    return _checked(fn, value, " or None")


def _checked(fn: str, value, alternatives: str = "") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{fn}: `algorithm` must be one of {ALGORITHMS}{alternatives}, "
                        f"got {value!r} of type {type(value).__name__}")
    if value not in ALGORITHMS:
        raise ValueError(f"{fn}: `algorithm` must be one of {ALGORITHMS}{alternatives}, "
                         f"got {value!r}")
    return value


def get_conv_algorithm() -> str:
    """The formulation used when a call passes ``algorithm=None`` (initially "auto").

    Returns:
      "auto", "transpose" or "taps": the value last set by
      :func:`set_conv_algorithm` or the innermost :func:`conv_algorithm` block.

    Example:
      >>> import jaxgrad
      >>> with jaxgrad.conv_algorithm("taps"):
      ...     jaxgrad.get_conv_algorithm()
      'taps'
    """
    return _default.get()


def set_conv_algorithm(algorithm: str) -> str:
    """Set the default formulation of convolution gradients; return the previous one.

    The default is context-local (a ``contextvars.ContextVar``): this sets it
    for the calling thread or asyncio task and the contexts copied from it
    later; other threads keep their own (a new thread starts with "auto").

    Args:
      algorithm: "auto", "transpose" or "taps" (see ``docs/performance.md``).

    Returns:
      The default before this call, to restore it later.

    Raises:
      TypeError: ``algorithm`` is not a string.
      ValueError: ``algorithm`` is not one of the three names.

    Example:
      >>> import jaxgrad
      >>> previous = jaxgrad.set_conv_algorithm("transpose")
      >>> jaxgrad.get_conv_algorithm(), previous
      ('transpose', 'auto')
      >>> _ = jaxgrad.set_conv_algorithm(previous)
    """
    value = _checked("set_conv_algorithm", algorithm)
    previous = _default.get()
    _default.set(value)
    return previous


@contextlib.contextmanager
def conv_algorithm(algorithm: str) -> Iterator[str]:
    """Within the block, convolutions traced with ``algorithm=None`` use ``algorithm``.

    The previous default comes back when the block exits, also on an error.

    Args:
      algorithm: "auto", "transpose" or "taps" (see ``docs/performance.md``).

    Yields:
      ``algorithm``, the default inside the block.

    Raises:
      TypeError: ``algorithm`` is not a string.
      ValueError: ``algorithm`` is not one of the three names.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x, w = jnp.ones((1, 2, 5), jnp.float32), jnp.ones((3, 2, 3), jnp.float32)
      >>> loss = lambda w: jaxgrad.conv1d(x, w).sum()
      >>> with jaxgrad.conv_algorithm("taps"):
      ...     g = jax.grad(loss)(w)
      >>> g[0]
      Array([[3., 3., 3.],
             [3., 3., 3.]], dtype=float32)
    """
    value = _checked("conv_algorithm", algorithm)
    token = _default.set(value)
    try:
        yield value
    finally:
        _default.reset(token)


# --------------------------------------------------------------------------
# "auto". Measured on a 2-core CPU (docs/performance.md has the table):
#
#  * taps wins every grouped and depthwise gradient by 3-200x: XLA CPU turns
#    a grouped weight gradient (batch_group_count) into a dense convolution
#    doing G times the work, and runs depthwise input gradients through its
#    slow grouped path; the taps GEMM / fused multiply-add does neither.
#  * 1x1 and stride-equals-kernel ("tiled") convolutions are single GEMMs.
#  * dense gradients: taps (one GEMM + fused im2col / col2im) is 1-2.5x
#    faster; strided input gradients sum their taps per phase (no
#    zero-inserted rows). For the weight gradient of a strided, non-tiled
#    kernel with P < C_in·K/2 positions per sample (DCGAN's 4x4 stride 2 at
#    16x16: P = 256, C_in·K = 1024) the strided slices cost more than the
#    short GEMM saves, and "auto" keeps XLA's convolution.
#  * dense weight gradients with short patch rows (C_in·K < 128: WaveNet's 32
#    channels x 2 taps) gain nothing from the GEMM; taps cost 1.3-1.8x in the
#    10-layer WaveNet stack, so "auto" keeps the textbook rule there.
#  * input gradients are never sent back to the textbook rule for speed
#    alone: XLA's transposed convolution multiplies the zero padding of g by
#    every kernel tap, so one NaN/inf tap turns every row NaN, while taps
#    (like torch's col2im) adds it only to the rows it reaches.
# Elsewhere (GPU, TPU) there are no measurements yet, so "auto" keeps the
# textbook rules, which XLA hands to cuDNN.


def _explicitly_placed(*arrays) -> bool:
    """Arrays typed with explicit mesh axes (their sharding is part of the type)."""
    return any(jax.typeof(a).sharding.mesh.explicit_axes for a in arrays)


def _tiled(spec: ConvSpec, kernel) -> bool:
    return all(s == k and d == 1 for s, k, d in zip(spec.stride, kernel, spec.dilation))


def choose(kind: str, spec: ConvSpec, x_shape, w_shape, g_shape, *arrays) -> str:
    """The formulation for ``kind`` ("input" or "weight") of one gradient.

    ``x_shape``, ``w_shape``, ``g_shape`` are the shapes of the convolution's
    input, weight and output (gradient); ``arrays`` the operands (for their
    placement).
    """
    if _explicitly_placed(*arrays):
        # Arrays typed with explicit mesh axes reject the reshapes of "taps"
        # (a batch-split (N, C, *O) cannot be regrouped without naming the
        # result's sharding); the textbook rules name it (``_kernels``).
        return "transpose"
    if spec.algorithm != "auto":
        return spec.algorithm
    if jax.default_backend() != "cpu":
        return "transpose"
    n, c_in = x_shape[:2]
    kernel = tuple(w_shape[2:])
    taps = math.prod(kernel)
    positions = math.prod(g_shape[2:])
    if n * c_in * taps * positions > TAPS_MAX_ELEMENTS:
        return "transpose"
    if spec.groups == 1 and taps > 1 and not _tiled(spec, kernel):
        strided = any(s > 1 for s in spec.stride)
        if kind == "weight" and strided and 2 * positions < c_in * taps:
            return "transpose"
        if kind == "weight" and c_in * taps < 128:
            return "transpose"
    return "taps"
