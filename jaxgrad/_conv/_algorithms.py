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
conv_algorithm("transpose"):``) or for the current thread
(``set_conv_algorithm``). The default is a JAX user context
(``jax.make_user_context``), per thread like JAX's own configuration
contexts, and part of ``jax.jit``'s cache key: a jitted function called under
a new default is traced again with it. Arrays typed with explicit
mesh axes (``jax.sharding.AxisType.Explicit``) always get "transpose"; inside
``shard_map`` and with Auto axes every setting but "autotune" applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

from .._args import check_static

ALGORITHMS = ("auto", "transpose", "taps", "autotune")

# The default: a JAX user context, whose value is part of jax.jit's cache key
# (a change of default is a cache miss, so a trace always ran under the
# default its cache entry is keyed on) and of JAX's trace context. JAX keeps it
# per thread (a block or set_conv_algorithm sets this thread's value; a thread
# that set none sees the global "auto"), not per asyncio task or copied
# contextvars context: JAX's own configuration contexts behave the same way.
_default = jax.make_user_context("auto")


def default_set_to(value: str):
    """A context manager: ``value`` as this thread's default within the block
    (unchecked)."""
    return _default(value)


def check_algorithm(fn: str, value) -> str:
    """``value`` checked; None means the current default."""
    if value is None:
        return _default.value
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
    """The formulation this thread uses when a call passes ``algorithm=None``
    (initially "auto").

    Returns:
      "auto", "transpose", "taps" or "autotune": the value last set by
      :func:`set_conv_algorithm` or the innermost :func:`conv_algorithm` block.

    Example:
      >>> import jaxgrad
      >>> with jaxgrad.conv_algorithm("taps"):
      ...     jaxgrad.get_conv_algorithm()
      'taps'
    """
    return _default.value


def set_conv_algorithm(algorithm: str) -> str:
    """Set the default formulation of convolutions; return the previous one.

    The default is per thread, like JAX's own configuration contexts: this
    sets it for the calling thread (not per asyncio task); other threads keep
    their own (a thread that set none sees "auto"). It is part of
    ``jax.jit``'s cache key, so jitted functions are traced again under it.
    In async code, pass ``algorithm=`` per call rather than holding a
    :func:`conv_algorithm` block across an ``await``: tasks of one thread
    share the default, and blocks that close out of order leave the one
    opened first in place.

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
    previous = _default.value
    # entered and never left: this thread's value until the next change (an
    # enclosing block restores its own on exit)
    _default(value).__enter__()
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
