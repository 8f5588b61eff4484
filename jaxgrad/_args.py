"""Argument checks shared by every op family.

Each parser takes the public function's name, so errors name both the function
and the argument and show the offending value. Pure Python on ints, tuples and
dtypes: it runs at trace time.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------
# Argument parsing. Each parser takes the public function's name, so errors
# name both the function and the argument and show the offending value.


def is_sequence(value) -> bool:
    """A tuple or list of entries; strings and bytes are not sequences of ints."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _as_int(fn: str, name: str, value) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{fn}: `{name}` must be an int, got bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{fn}: `{name}` must be an int, got {type(value).__name__} {value!r}"
        ) from None
    # XLA takes sizes, strides and pads as int64; a larger int would overflow
    # deep inside the lowering instead of failing here.
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError(f"{fn}: `{name}` must fit in a 64-bit int, got {value!r}")
    return value


def int_tuple(fn: str, name: str, value, n: int, *, minimum: int,
              broadcast_one: bool = False) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, each >= ``minimum``.

    With ``broadcast_one`` a one-element sequence stands for every dim, as
    torch's pooling functions read ``kernel_size=(3,)``.
    """
    if is_sequence(value):
        if broadcast_one and len(value) == 1:
            value = tuple(value) * n
        if len(value) != n:
            also = " (or of 1, for every dim)" if broadcast_one and n > 1 else ""
            raise ValueError(
                f"{fn}: `{name}` must be an int or a tuple of {n} ints{also}, got "
                f"{tuple(value)!r}")
        values = tuple(_as_int(fn, name, v) for v in value)
    elif isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{fn}: `{name}` must be an int or a tuple of {n} ints, "
                        f"got {value!r}")
    else:
        values = (_as_int(fn, name, value),) * n
    if any(v < minimum for v in values):
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{fn}: `{name}` must be {rule}, got {_show(value)}")
    return values


def _show(value) -> str:
    return repr(tuple(value)) if is_sequence(value) else repr(value)


# --------------------------------------------------------------------------
# Array-argument checks (shapes and dtypes are static at trace time).


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def float_array(fn: str, name: str, value):
    """``value`` as a floating JAX array (tracers pass through unchanged).

    Array-likes are accepted as the ``ArrayLike`` annotations promise: Python
    scalars and (nested) lists become arrays of JAX's default float dtype, NumPy
    arrays keep theirs. A torch tensor is refused with the conversion to use;
    any non-float dtype is refused with the dtypes allowed.
    """
    if _is_torch_tensor(value):
        raise TypeError(
            f"{fn}: `{name}` is a torch.Tensor ({getattr(value, 'dtype', '?')}, shape "
            f"{tuple(getattr(value, 'shape', ()))}); convert it first with "
            f"jaxgrad.interop.from_torch({name})")
    if getattr(value, "dtype", None) is None:
        if isinstance(value, (bool, np.bool_)) or not (
                isinstance(value, (int, float, np.number)) or is_sequence(value)):
            raise TypeError(f"{fn}: `{name}` must be an array (or a Python float or "
                            f"list of floats), got {type(value).__name__} {value!r}")
        try:
            value = jnp.asarray(value, dtype=jnp.result_type(float))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{fn}: `{name}` could not be read as a float array "
                            f"({err}), got {value!r}") from None
    check_float(fn, name, value)
    return value if isinstance(value, jax.Array) else jnp.asarray(value)


def check_float(fn: str, name: str, array) -> None:
    if _is_torch_tensor(array):
        float_array(fn, name, array)        # raises, pointing at from_torch
    dtype = getattr(array, "dtype", None)
    if dtype is None:
        raise TypeError(f"{fn}: `{name}` must be an array, got "
                        f"{type(array).__name__}")
    if dtype_name(dtype) not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: `{name}` must have a floating dtype "
                        f"(float16, bfloat16, float32, float64), got {dtype}")


def dtype_name(dtype) -> str:
    """numpy's name for ``dtype``, or its ``str`` when numpy cannot read it (a
    torch dtype, a JAX PRNG key type): error messages must not fail on those."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def check_same_dtype(fn: str, arrays: dict) -> None:
    """Each non-None value is a float array, and all share one dtype."""
    for name, a in arrays.items():
        if a is not None:
            check_float(fn, name, a)
    # As JAX sees them: with x64 off a NumPy float64 array is float32 to JAX
    # (every jnp function narrows it), so it matches a float32 jax.Array.
    dtypes = {name: np.dtype(jax.dtypes.canonicalize_dtype(a.dtype)).name
              for name, a in arrays.items() if a is not None}
    if len(set(dtypes.values())) > 1:
        shown = ", ".join(f"`{k}` is {v}" for k, v in dtypes.items())
        raise TypeError(f"{fn}: arguments must share one dtype, but {shown}")


def check_rank(fn: str, name: str, array, ranks: Sequence[int], what: str) -> None:
    if array.ndim not in ranks:
        allowed = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{fn}: `{name}` must be {allowed} {what}, got shape "
                         f"{tuple(array.shape)}")


# --------------------------------------------------------------------------
# Pooling argument parsing and checks (errors name the public function).


def parse_bool(fn: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: `{name}` must be a bool, got "
                        f"{type(value).__name__} {value!r}")
    return bool(value)
