"""One tolerance table, keyed by dtype, for every numerical comparison.

Errors are measured relative to the largest magnitude of the reference:
``max|a - b| / max|b|``. Element-wise relative error is meaningless for sums
with cancellation (a convolution output near zero), and the largest magnitude
is what accumulation-order differences scale with.

| dtype    | rel. tol | why                                                |
|----------|----------|----------------------------------------------------|
| float64  | 1e-10    | different summation orders, ~1e-16 per term        |
| float32  | 1e-5     | ~1e-7 per term, sums of up to a few thousand terms |
| float16  | 5e-3     | 10-bit mantissa, accumulated in float32            |
| bfloat16 | 2e-2     | 7-bit mantissa, accumulated in float32             |

complex64 and complex128 take the tolerance of their parts' dtype (float32,
float64), the error being the modulus of the complex difference.
"""

from __future__ import annotations

import numpy as np

RTOL = {"float64": 1e-10, "float32": 1e-5, "float16": 5e-3, "bfloat16": 2e-2}
_PARTS = {"complex64": "float32", "complex128": "float64"}


def tolerance(dtype) -> float:
    """The relative tolerance for results computed in ``dtype``."""
    name = np.dtype(dtype).name
    return RTOL[_PARTS.get(name, name)]


def max_errors(actual, expected) -> tuple[float, float]:
    """(max abs error, max abs error / max |expected|), both in float64 (moduli
    of complex128 differences where either side is complex)."""
    wide = (np.complex128 if np.iscomplexobj(actual) or np.iscomplexobj(expected)
            else np.float64)
    a = np.asarray(actual, dtype=wide)
    b = np.asarray(expected, dtype=wide)
    if a.shape != b.shape:
        raise ValueError(f"max_errors: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0, 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    abs_err = float(np.max(diff))
    scale = float(np.max(np.abs(np.where(np.isfinite(b), b, 0.0))))
    return abs_err, abs_err / scale if scale > 0 else abs_err
