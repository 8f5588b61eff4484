"""Argument checks of the losses: reductions, targets, class weights, smoothing.

Errors name the public function and the argument and show the value; every
check runs at trace time on shapes and dtypes.
"""

from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np

from .._args import (_is_torch_tensor, as_array, check_float, check_same_dtype, check_static,
                    float_arrays)

REDUCTIONS = ("none", "mean", "sum")


# --------------------------------------------------------------------------
# Argument checks.


def check_reduction(fn: str, reduction) -> str:
    check_static(fn, "reduction", reduction, "'none', 'mean' or 'sum'")
    # isinstance first: `in` would compare an array elementwise
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: `reduction` must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    return reduction


def _check_ignore_index(fn: str, ignore_index) -> int:
    check_static(fn, "ignore_index", ignore_index, "an int")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{fn}: `ignore_index` must be an int, got "
                        f"{type(ignore_index).__name__} {ignore_index!r}")
    if not -2**63 <= ignore_index < 2**63:   # torch's int64; jnp would overflow
        raise ValueError(f"{fn}: `ignore_index` must fit in a 64-bit int, got "
                         f"{ignore_index!r}")
    return int(ignore_index)


def _check_label_smoothing(fn: str, value) -> float:
    check_static(fn, "label_smoothing", value, "a float")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: `label_smoothing` must be a float, got "
                        f"{type(value).__name__} {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{fn}: `label_smoothing` must be in [0, 1], got {value!r}")
    return float(value)


def loss_arrays(fn: str, input, target, weight=None):
    """The boundary of a class loss: ``input`` and ``weight`` as float arrays
    (see ``_args.float_arrays``), ``target`` as an array of the dtype its
    values give (a Python list of ints holds class indices, of floats class
    probabilities, in ``input``'s dtype). Dtypes and shapes are checked after."""
    input, weight = float_arrays(fn, input=input, weight=weight, optional=("weight",))
    if getattr(target, "dtype", None) is not None or _is_torch_tensor(target):
        return input, as_array(fn, "target", target), weight
    try:
        target = as_array(fn, "target", target)
    except TypeError:   # not numbers: the target checks say what a target must be
        return input, target, weight
    if jnp.issubdtype(target.dtype, jnp.floating):
        target = target.astype(input.dtype)
    return input, target, weight


def _numpy_dtype(array):
    """``array``'s numpy dtype; None for a non-array or a dtype numpy cannot read
    (a torch tensor's, a PRNG key's), which are neither indices nor probabilities."""
    try:
        return np.dtype(array.dtype)
    except (AttributeError, TypeError):
        return None


def _is_integer(array) -> bool:
    dtype = _numpy_dtype(array)
    return dtype is not None and np.issubdtype(dtype, np.integer)


def _describe_dtype(array) -> str:
    dtype = getattr(array, "dtype", None)
    return f"dtype {dtype}" if dtype is not None else type(array).__name__


def _num_classes(input) -> int:
    """C: axis 1 of (N, C, *d), axis 0 of an unbatched (C,) input."""
    return input.shape[1] if input.ndim > 1 else input.shape[0]


def _check_input(fn: str, input) -> None:
    check_float(fn, "input", input)
    if input.ndim < 1:
        raise ValueError(f"{fn}: `input` must be (N, C, *d) or unbatched (C,), got "
                         f"shape {tuple(input.shape)}")


def _check_index_target(fn: str, input, target) -> None:
    if not _is_integer(target):
        raise TypeError(f"{fn}: `target` must hold integer class indices, got "
                        f"{_describe_dtype(target)}")
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: `target` must have shape {expected} (`input` {tuple(input.shape)} "
            f"without its class dim), got {tuple(target.shape)}")
    if _num_classes(input) == 0:
        raise ValueError(f"{fn}: `input` must have at least one class, got shape "
                         f"{tuple(input.shape)}")


def _check_weight(fn: str, input, weight) -> None:
    if weight is None:
        return
    check_same_dtype(fn, {"input": input, "weight": weight})
    classes = _num_classes(input)
    if tuple(weight.shape) != (classes,):
        raise ValueError(f"{fn}: `weight` must have shape ({classes},), one entry per "
                         f"class of `input` {tuple(input.shape)}, got "
                         f"{tuple(weight.shape)}")


