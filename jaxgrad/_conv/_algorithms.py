"""Which formulation computes a convolution and its gradients.

Every formulation computes the same sums (``_conv._core`` derives them); they
differ in how XLA executes them:

  "transpose"  the textbook rules: the forward is ``lax.conv_general_dilated``,
               the input gradient a transposed convolution (the output
               gradient dilated by the stride, correlated with the flipped
               kernel), the weight gradient a convolution with batch and
               channels swapped (``batch_group_count = groups``). One XLA
               convolution each.
  "taps"       a sum over kernel taps (``_taps``): for the gradients one
               batched GEMM plus strided slices (weight gradient) or padded
               adds (input gradient), which XLA fuses into loops -- no
               zero-inserted input and no dense expansion of grouped or
               depthwise weight gradients; for the forward of a grouped or
               depthwise convolution with few channels per group, one fused
               multiply-add per tap and channel.
  "auto"       chosen per backend, shape and placement by ``_plan`` (the
               default), which also holds every threshold it uses.
  "autotune"   measured: the first time a configuration is traced, every
               applicable formulation of each map is compiled and timed on
               this device, with the activations as laid out and with their
               feature dim moved; the textbook one is kept unless another is
               at least 5% faster in both, in memory and in a JSON cache on
               disk (``_autotune``); "auto"'s rules where timing is
               meaningless (meshes, ``shard_map``).

The choice is read when a function is traced: set it per call
(``conv2d(..., algorithm="taps")``), for a block (``with
conv_algorithm("transpose"):``) or for the current thread or task
(``set_conv_algorithm``; the default lives in a ``contextvars.ContextVar``). The
default is also part of ``jax.jit``'s cache key (``_jit_key``), so a jitted
function called under a new default is traced again with it, as under JAX's own
configuration contexts. Arrays typed with explicit
mesh axes (``jax.sharding.AxisType.Explicit``) always get "transpose"; inside
``shard_map`` and with Auto axes every setting but "autotune" applies.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import jax

from .._args import check_static

ALGORITHMS = ("auto", "transpose", "taps", "autotune")

# The default is context-local (threads and asyncio tasks each see their own;
# a new thread starts from "auto"), like jax's own configuration contexts.
_default: contextvars.ContextVar[str] = contextvars.ContextVar(
    "jaxgrad_conv_algorithm", default="auto")

# jax.jit caches a trace by the function, its arguments and the configuration
# values JAX puts in its key; a ContextVar is not one of them, and alone it
# would let a function traced under one default run that trace under every
# later one. A JAX user context is such a value: set beside the ContextVar
# (default_set_to, set_conv_algorithm), it makes a change of default a cache
# miss. JAX keeps it per thread, not per asyncio task: tasks of one thread
# that set different defaults share the thread's last value in the key (each
# trace still reads its task's ContextVar).
# (A JAX without make_user_context, none of the supported versions, would get
# the ContextVar alone: traces then keep their first formulation.)
_jit_key = (jax.make_user_context("auto") if hasattr(jax, "make_user_context")
            else lambda value: contextlib.nullcontext())


@contextlib.contextmanager
def default_set_to(value: str) -> Iterator[None]:
    """``value`` as the default and in jax.jit's key within the block (unchecked)."""
    token = _default.set(value)
    try:
        with _jit_key(value):
            yield
    finally:
        _default.reset(token)


def check_algorithm(fn: str, value) -> str:
    """``value`` checked; None means the current default."""
    if value is None:
        return _default.get()
    return _checked(fn, value, " or None")


def _checked(fn: str, value, alternatives: str = "", argument: str = "algorithm") -> str:
    check_static(fn, argument, value, f"one of {ALGORITHMS}{alternatives}")
    if not isinstance(value, str):
        raise TypeError(f"{fn}: `{argument}` must be one of {ALGORITHMS}{alternatives}, "
                        f"got {value!r} of type {type(value).__name__}")
    if value not in ALGORITHMS:
        raise ValueError(f"{fn}: `{argument}` must be one of {ALGORITHMS}{alternatives}, "
                         f"got {value!r}")
    return value


def get_conv_algorithm() -> str:
    """The formulation used when a call passes ``algorithm=None`` (initially "auto").

    Returns:
      "auto", "transpose", "taps" or "autotune": the value last set by
      :func:`set_conv_algorithm` or the innermost :func:`conv_algorithm` block.

    Example:
      >>> import jaxgrad
      >>> with jaxgrad.conv_algorithm("taps"):
      ...     jaxgrad.get_conv_algorithm()
      'taps'
    """
    return _default.get()


def set_conv_algorithm(algorithm: str) -> str:
    """Set the default formulation of convolutions; return the previous one.

    The default is context-local (a ``contextvars.ContextVar``): this sets it
    for the calling thread or asyncio task and the contexts copied from it
    later; other threads keep their own (a new thread starts with "auto").

    Args:
      algorithm: "auto", "transpose", "taps" or "autotune" (see
        ``docs/performance.md``).

    Returns:
      The default before this call, to restore it later.

    Raises:
      TypeError: ``algorithm`` is not a string.
      ValueError: ``algorithm`` is not one of the four names.

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
    # entered and never left: this thread's key keeps the value until the next
    # change, as the ContextVar does (an enclosing block restores both)
    _jit_key(value).__enter__()
    return previous


@contextlib.contextmanager
def conv_algorithm(algorithm: str) -> Iterator[str]:
    """Within the block, convolutions traced with ``algorithm=None`` use ``algorithm``.

    The previous default comes back when the block exits, also on an error.

    Args:
      algorithm: "auto", "transpose", "taps" or "autotune" (see
        ``docs/performance.md``).

    Yields:
      ``algorithm``, the default inside the block.

    Raises:
      TypeError: ``algorithm`` is not a string.
      ValueError: ``algorithm`` is not one of the four names.

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
    with default_set_to(value):
        yield value
