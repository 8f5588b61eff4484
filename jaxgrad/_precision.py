"""The ``precision`` of jaxgrad's convolutions and matmuls (see ``docs/precision.md``).

Every contraction jaxgrad runs for an op (its forward and every order of its
gradient) gets the same ``(lhs, rhs)`` pair of ``lax.Precision`` values,
resolved once, at trace time, by :func:`resolve_precision`:

- an explicit ``precision=`` argument wins;
- else JAX's ``jax_default_matmul_precision`` option, when it is set to a
  precision name (``jax.default_matmul_precision("tensorfloat32")`` around the
  code, or the global option): that is the user asking for it;
- else ``HIGHEST``: full float32 products, so TF32 (or bfloat16 passes on TPU)
  is never used unless asked for. (``lax``'s own default leaves the choice to
  the backend, which on Ampere-and-later NVIDIA GPUs means TF32.)

The pair is applied unchanged to every contraction, forward and backward, as
JAX's own convolution transpose rules do. lax ignores ``DotAlgorithm`` presets
in convolutions (it runs them at DEFAULT), so jaxgrad refuses them rather than
silently dropping to a lower precision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

PrecisionPair = tuple[lax.Precision, lax.Precision]

HIGHEST: PrecisionPair = (lax.Precision.HIGHEST, lax.Precision.HIGHEST)

# lax's accepted names (jax 0.10.2) and the level each stands for.
_NAMES = {
    "default": lax.Precision.DEFAULT, "fastest": lax.Precision.DEFAULT,
    "bfloat16": lax.Precision.DEFAULT,
    "high": lax.Precision.HIGH, "tensorfloat32": lax.Precision.HIGH,
    "bfloat16_3x": lax.Precision.HIGH,
    "highest": lax.Precision.HIGHEST, "float32": lax.Precision.HIGHEST,
}
_ACCEPTED = ("None, a lax.Precision, one of " + ", ".join(repr(n) for n in _NAMES)
             + ", or a pair of these (one per operand)")


def _dot_algorithm(fn: str, value) -> TypeError:
    label = (f"lax.DotAlgorithmPreset.{value.name}"
             if isinstance(value, lax.DotAlgorithmPreset) else repr(value))
    return TypeError(
        f"{fn}: `precision` {label} is a dot algorithm; jaxgrad takes precision "
        f"levels only (lax's convolution ignores dot algorithms and would run at "
        f"DEFAULT precision); pass a lax.Precision such as 'highest'")


def _one(fn: str, value, pair=None) -> lax.Precision:
    if isinstance(value, lax.Precision):
        return value
    got = repr(value) if pair is None else f"{pair!r}, whose element {value!r}"
    if isinstance(value, str):
        if value in _NAMES:
            return _NAMES[value]
        raise ValueError(f"{fn}: `precision` must be {_ACCEPTED}, got {got}"
                         + ("" if pair is None else " is not a precision name"))
    if isinstance(value, (lax.DotAlgorithm, lax.DotAlgorithmPreset)):
        raise _dot_algorithm(fn, value)
    raise TypeError(f"{fn}: `precision` must be {_ACCEPTED}, got {got}"
                    f"{'' if pair is None else ' is'} of type {type(value).__name__}")


def resolve_precision(fn: str, precision) -> PrecisionPair:
    """The ``(lhs, rhs)`` precisions of every contraction of ``fn`` (see module doc)."""
    if precision is None:
        configured = jax.config.jax_default_matmul_precision
        if isinstance(configured, str) and configured in _NAMES:
            level = _NAMES[configured]
            return level, level
        return HIGHEST      # unset, or a dot-algorithm name: not a level
    if isinstance(precision, (lax.DotAlgorithm, lax.DotAlgorithmPreset)):
        raise _dot_algorithm(fn, precision)     # (a DotAlgorithm is a tuple)
    if isinstance(precision, (tuple, list)):
        if len(precision) != 2:
            raise ValueError(f"{fn}: `precision` must be {_ACCEPTED}, got a "
                             f"{type(precision).__name__} of length {len(precision)}: "
                             f"{precision!r}")
        return _one(fn, precision[0], precision), _one(fn, precision[1], precision)
    level = _one(fn, precision)
    return level, level


# --------------------------------------------------------------------------
# Half types (float16, bfloat16) accumulate in float32: every sum and
# contraction of theirs is computed in float32 and rounded once at the end.

HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def accumulation_dtype(dtype):
    """float32 for a half type, else ``dtype`` itself: the dtype sums run in."""
    return jnp.dtype(jnp.float32) if jnp.dtype(dtype) in HALF else jnp.dtype(dtype)


def preferred_element_type(dtype):
    """float32 for a half type, else None: lax's ``preferred_element_type``."""
    return jnp.dtype(jnp.float32) if jnp.dtype(dtype) in HALF else None
