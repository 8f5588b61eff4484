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


def _one(fn: str, value, shown) -> lax.Precision:
    if isinstance(value, lax.Precision):
        return value
    if isinstance(value, str):
        if value in _NAMES:
            return _NAMES[value]
        raise ValueError(f"{fn}: `precision` must be {_ACCEPTED}, got {shown!r}")
    if isinstance(value, (lax.DotAlgorithm, lax.DotAlgorithmPreset)):
        label = (f"lax.DotAlgorithmPreset.{value.name}"
                 if isinstance(value, lax.DotAlgorithmPreset) else repr(value))
        raise TypeError(
            f"{fn}: `precision` {label} is a dot algorithm; jaxgrad takes precision "
            f"levels only, since lax's convolution ignores dot algorithms (it would "
            f"run at DEFAULT precision); pass a lax.Precision such as 'highest'")
    raise TypeError(f"{fn}: `precision` must be {_ACCEPTED}, got {shown!r} of type "
                    f"{type(shown).__name__}")


def resolve_precision(fn: str, precision) -> PrecisionPair:
    """The ``(lhs, rhs)`` precisions of every contraction of ``fn`` (see module doc)."""
    if precision is None:
        configured = jax.config.jax_default_matmul_precision
        if isinstance(configured, str) and configured in _NAMES:
            level = _NAMES[configured]
            return level, level
        return HIGHEST
    if isinstance(precision, (tuple, list)):
        if len(precision) != 2:
            raise ValueError(f"{fn}: `precision` must be {_ACCEPTED}, got a "
                             f"{type(precision).__name__} of length {len(precision)}: "
                             f"{precision!r}")
        return _one(fn, precision[0], precision), _one(fn, precision[1], precision)
    level = _one(fn, precision, precision)
    return level, level
