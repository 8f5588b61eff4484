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
# The ops that take complex tensors too (the convolution family, linear, pad,
# pixel shuffle, fold/unfold, tanh, sigmoid, as torch's do) pass
# ``complex_ok=True``.
_INEXACT_DTYPES = _FLOAT_DTYPES + ("complex64", "complex128")
# Integer (``int_ok=True``) and bool (``bool_ok=True``) tensors: the ops whose
# torch counterparts compute them (forward only: they have no gradient). JAX
# sees torch's int64 as int32 while x64 is off, so every integer width is
# taken where torch takes one.
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _allowed(complex_ok: bool, int_ok: bool = False,
             bool_ok: bool = False) -> tuple[tuple[str, ...], str]:
    """The dtype names accepted, and how an error message says so."""
    names = ((_INEXACT_DTYPES if complex_ok else _FLOAT_DTYPES)
             + (_INT_DTYPES if int_ok else ()) + (("bool",) if bool_ok else ()))
    kinds = ["floating"] + ["complex"] * complex_ok + ["integer"] * int_ok + ["bool"] * bool_ok
    said = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
    return names, f"a {said} dtype (" + ", ".join(names) + ")"


def differentiable(value) -> bool:
    """Whether ``value`` (an array, tracer or Python number) has a floating or
    complex dtype: integer and bool values have no derivative."""
    return bool(jnp.issubdtype(jnp.result_type(value), jnp.inexact))


INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------
# Argument parsing. Each parser takes the public function's name, so errors
# name both the function and the argument and show the offending value.


def is_sequence(value) -> bool:
    """A tuple or list of entries; strings and bytes are not sequences of ints."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


# --------------------------------------------------------------------------
# Static arguments. Shapes, strides, dims and flags are read at trace time; a
# value that arrives as a tracer was passed through jax.jit (or another
# transform) as an array, and only the user can fix that.


def check_static(fn: str, name: str, value, what: str) -> None:
    """Refuse a traced ``value`` for a static argument, saying how to pass it.

    ``what`` describes the expected value ("an int", "a bool", ...). Every
    parser of a static argument calls this first, so the advice is the same
    everywhere.
    """
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value)):
        raise TypeError(
            f"{fn}: `{name}` must be {what} known at trace time (a static argument), "
            f"got a traced value {value!r}: it was passed through jax.jit (or another "
            f"transform) as an array. {_static_advice(fn, name.split('[')[0])}")


def _static_advice(fn: str, name: str) -> str:
    """How to keep ``name`` static, with the public function's path and the
    argument's position when ``fn`` is a public function."""
    import inspect

    import jaxgrad      # at error time only: jaxgrad imports this module
    found = [(f"{path}.{fn}", getattr(module, fn)) for path, module in
             (("jaxgrad", jaxgrad), ("jaxgrad.grad", jaxgrad.grad))
             if callable(getattr(module, fn, None))]
    target, position = "f", None
    if found:
        target, function = found[0]
        params = list(inspect.signature(function).parameters.values())
        position = next((i for i, p in enumerate(params) if p.name == name
                         and p.kind is p.POSITIONAL_OR_KEYWORD), None)
    numbers = "" if position is None else f" (or static_argnums={position})"
    return (f"Mark it static, jax.jit({target}, static_argnames='{name}'){numbers}, "
            f"or bind it before transforming, functools.partial({target}, "
            f"{name}=...)")


def _as_int(fn: str, name: str, value) -> int:
    check_static(fn, name, value, "an int")
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
    check_static(fn, name, value, f"an int or a tuple of {n} ints")
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


def _refuse_torch(fn: str, name: str, value) -> None:
    if _is_torch_tensor(value):
        raise TypeError(
            f"{fn}: `{name}` is a torch.Tensor ({getattr(value, 'dtype', '?')}, shape "
            f"{tuple(getattr(value, 'shape', ()))}); convert it first with "
            f"jaxgrad.interop.from_torch({name})")


def as_array(fn: str, name: str, value, *, python_dtype=None):
    """``value`` as a JAX array of its own dtype (tracers pass through unchanged).

    The boundary of every array argument: Python scalars and (nested) lists
    become arrays (of ``python_dtype`` if given, else the dtype JAX infers:
    ``[1, 2]`` is an integer array, ``[0.5]`` a float one), NumPy arrays keep
    their dtype, a torch tensor is refused with the conversion to use. The
    dtype is the caller's to check.
    """
    _refuse_torch(fn, name, value)
    if getattr(value, "dtype", None) is None:
        if isinstance(value, (bool, np.bool_)) or not (
                isinstance(value, (int, float, complex, np.number)) or is_sequence(value)):
            raise TypeError(f"{fn}: `{name}` must be an array, got "
                            f"{type(value).__name__} {value!r} (a Python number or a "
                            f"list of numbers is also accepted)")
        try:
            value = jnp.asarray(value, dtype=python_dtype)
        except (TypeError, ValueError, OverflowError) as err:
            raise TypeError(f"{fn}: `{name}` could not be read as an array "
                            f"({err}), got {value!r}") from None
        return value
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc":
        return jnp.asarray(value)
    return value


def float_array(fn: str, name: str, value, *, python_dtype=None, complex_ok: bool = False,
                int_ok: bool = False, bool_ok: bool = False):
    """``value`` as a floating JAX array (tracers pass through unchanged); with
    ``complex_ok``, ``int_ok`` or ``bool_ok`` complex, integer or bool arrays
    are taken too.

    Array-likes are accepted as the ``ArrayLike`` annotations promise: Python
    scalars and (nested) lists become arrays of ``python_dtype`` (default: JAX's
    default float dtype; an integer ``python_dtype`` applies only to Python
    ints and lists of them that fit it), NumPy arrays keep theirs. A torch tensor is
    refused with the conversion to use; any other dtype is refused with the
    dtypes allowed.
    """
    if getattr(value, "dtype", None) is None:
        if python_dtype is not None and not jnp.issubdtype(python_dtype, jnp.inexact):
            # an integer dtype (another argument's) takes Python integers that
            # fit it; a float is a float, and ints beyond the dtype JAX's default
            # int (either is then refused as another dtype)
            if _holds(value, "fc"):
                python_dtype = None
            elif not _fits(value, python_dtype):
                python_dtype = jnp.result_type(int)
        python_dtype = python_dtype or jnp.result_type(float)
        if _holds(value, "c"):   # the complex dtype of that precision (checked below)
            python_dtype = jnp.result_type(python_dtype, jnp.complex64)
        value = as_array(fn, name, value, python_dtype=python_dtype)
    # on NumPy's dtype, before JAX narrows it
    check_float(fn, name, value, complex_ok=complex_ok, int_ok=int_ok, bool_ok=bool_ok)
    return as_array(fn, name, value)


def _holds(value, kinds: str) -> bool:
    """Whether a Python number or (nested) list holds a number of a NumPy
    kind in ``kinds`` ("f" floating, "c" complex), NumPy and JAX scalars
    and 0-d arrays included."""
    if is_sequence(value):
        return any(_holds(v, kinds) for v in value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return np.dtype(dtype).kind in kinds
    return ("f" in kinds and isinstance(value, float)) or (
        "c" in kinds and isinstance(value, complex))


def _fits(value, dtype) -> bool:
    """Whether the integers of a Python number or (nested) list fit ``dtype``."""
    try:
        np.asarray(value, dtype)
    except (OverflowError, TypeError, ValueError):
        return False
    return True


def optional_float_array(fn: str, name: str, value, *, python_dtype=None, **kinds):
    """None, or :func:`float_array` of ``value`` (an optional bias or weight)."""
    return None if value is None else float_array(fn, name, value, python_dtype=python_dtype,
                                                  **kinds)


def float_arrays(fn: str, *, optional: tuple[str, ...] = (), complex_ok: bool = False,
                 int_ok: bool = False, bool_ok: bool = False, **arrays) -> tuple:
    """:func:`float_array` of each named value, in order (None stays None for
    the names in ``optional``).

    Python numbers and lists take the dtype of the first argument that is an
    array of an allowed dtype, as a Python scalar takes an array's dtype in
    ``jnp`` arithmetic: ``conv1d(x, w, bias=[0.5, 0.5])`` works for a float16
    ``x`` (and under ``jax_enable_x64``, for a float32 one), and
    ``bias=[1, 2]`` for an integer one. Without such an argument they get
    JAX's default float dtype.
    """
    kinds = {"complex_ok": complex_ok, "int_ok": int_ok, "bool_ok": bool_ok}
    dtype = next((a.dtype for a in arrays.values() if _is_float_array(a, **kinds)), None)
    if dtype is not None:
        dtype = jax.dtypes.canonicalize_dtype(dtype)
    return tuple(optional_float_array(fn, name, value, python_dtype=dtype, **kinds)
                 if name in optional else
                 float_array(fn, name, value, python_dtype=dtype, **kinds)
                 for name, value in arrays.items())


def _is_float_array(value, **kinds) -> bool:
    dtype = getattr(value, "dtype", None)
    return (dtype is not None and not _is_torch_tensor(value)
            and dtype_name(dtype) in _allowed(**kinds)[0])


def check_float(fn: str, name: str, array, *, complex_ok: bool = False, int_ok: bool = False,
                bool_ok: bool = False) -> None:
    _refuse_torch(fn, name, array)          # pointing at from_torch
    dtype = getattr(array, "dtype", None)
    if dtype is None:
        raise TypeError(f"{fn}: `{name}` must be an array, got "
                        f"{type(array).__name__}")
    names, wanted = _allowed(complex_ok, int_ok, bool_ok)
    if dtype_name(dtype) not in names:
        raise TypeError(f"{fn}: `{name}` must have {wanted}, got {dtype}")


def float_dtype(fn: str, name: str, dtype):
    """``dtype`` as a NumPy dtype, one of the floating ones; a torch dtype is
    refused with its JAX name. (Not canonicalised: casting to float64 while x64
    is off then gives float32 with JAX's own warning, as ``astype`` does.)"""
    shown = dtype_name(dtype)
    if shown.startswith("torch."):
        raise TypeError(f"{fn}: `{name}` must be a JAX/NumPy dtype, got the torch dtype "
                        f"{shown}; pass jnp.{shown[len('torch.'):]}")
    if shown not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: `{name}` must be a floating dtype (float16, bfloat16, "
                        f"float32, float64), got {shown}")
    return np.dtype(dtype)


def dtype_name(dtype) -> str:
    """numpy's name for ``dtype``, or its ``str`` when numpy cannot read it (a
    torch dtype, a JAX PRNG key type): error messages must not fail on those."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def check_same_dtype(fn: str, arrays: dict, **kinds) -> None:
    """Each non-None value is an array of a dtype :func:`check_float` takes
    with ``kinds``, and all share one dtype."""
    for name, a in arrays.items():
        if a is not None:
            check_float(fn, name, a, **kinds)
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
    check_static(fn, name, value, "a bool")
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: `{name}` must be a bool, got "
                        f"{type(value).__name__} {value!r}")
    return bool(value)


def check_inplace(fn: str, inplace) -> None:
    """torch's ``inplace`` flag: False only (JAX arrays are immutable)."""
    if parse_bool(fn, "inplace", inplace):
        raise ValueError(
            f"{fn}: `inplace` must be False: JAX arrays are immutable, so there is no "
            f"in-place {fn} (use the returned array; under jax.jit XLA reuses the "
            f"input's buffer where it can), got {inplace!r}")
