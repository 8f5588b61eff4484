"""``conv_general_dilated``: a drop-in for ``jax.lax.conv_general_dilated`` with explicit VJPs.

This module is the lax-signature front of the convolution core: it checks and
normalises lax's arguments (any ``dimension_numbers``, lhs and rhs dilation,
feature or batch groups, ``precision``, ``preferred_element_type``,
``out_sharding``) into one :class:`ConvSpec` and runs ``_conv._core.conv_core``,
the bilinear triple every jaxgrad convolution runs on; the derivation of both
gradients for this general geometry is in ``_conv._core``' docstring. So the
drop-in has the same rules, dtype policy (half types accumulate in float32;
cotangents in the primal dtypes), sharding and ``shard_map`` handling and
formulation choice (``_plan``) as the torch-style ops.

Integer and bool operands run lax's convolution itself (they have no
gradient, and differentiating them fails as it does for lax); cotangents of
convolutions with an empty dimension are zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._args import _as_int, as_array, check_static, is_sequence
from .._precision import resolve_precision
from .._typing import ArrayLike, Precision
from ._algorithms import check_algorithm
from ._core import conv_core, numbers_of, torch_numbers
from ._spec import ConvSpec

_FN = "conv_general_dilated"
_PAD_STRINGS = ("SAME", "VALID", "SAME_LOWER")


class ArgumentError(ValueError, TypeError):
    """A bad argument that lax reports as one of ValueError and TypeError and
    jaxgrad's convention as the other (or that lax reports as either, by
    version or by path): a drop-in must be caught by whichever ``except`` the
    caller wrote for lax, so this error is both."""


def conv_general_dilated(
        lhs: ArrayLike, rhs: ArrayLike, window_strides: Sequence[int],
        padding: str | Sequence[tuple[int, int]],
        lhs_dilation: Sequence[int] | None = None,
        rhs_dilation: Sequence[int] | None = None,
        dimension_numbers: lax.ConvGeneralDilatedDimensionNumbers = None,
        feature_group_count: int = 1, batch_group_count: int = 1,
        precision: Precision = None, preferred_element_type: Any = None,
        out_sharding: Any = None) -> jax.Array:
    """``jax.lax.conv_general_dilated`` with explicit, hand-derived VJPs of every order.

    Same signature, arguments and result as the lax function; the gradients
    with respect to ``lhs`` and ``rhs`` are convolutions computed by this
    function again (see the module docstring for the derivation), so it can be
    handed to Flax's ``Conv(..., conv_general_dilated=...)``. It has no
    ``algorithm=`` (the signature is lax's): the gradients follow the default
    algorithm (:func:`jaxgrad.conv_algorithm`); in PyTorch's layouts without
    lhs dilation or batch groups "auto" and "taps" may run them as sums over
    kernel taps, elsewhere they are transposed convolutions.
    As a ``jax.custom_vjp`` it supports reverse mode to any order (and ``vmap``
    and ``jit``); its forward mode (``jax.jvp``, ``jax.jacfwd``,
    ``jax.hessian``) is the bilinear JVP conv(dlhs, rhs) + conv(lhs, drhs),
    also to any order, except through a ``jit`` (or ``scan``, ``checkpoint``)
    placed inside the ``jax.jvp`` (docs/higher-order.md).

    Args:
      lhs: input, rank n+2, layout given by ``dimension_numbers`` (default
        (N, C, *spatial)); a floating or complex dtype to be differentiated,
        or an integer or bool dtype for the forward alone (as lax). NumPy
        arrays are canonicalised as lax does (float64 is float32 while x64 is
        off).
      rhs: kernel, rank n+2, same dtype, layout given by ``dimension_numbers``
        (default (O, C/feature_group_count, *spatial)).
      window_strides: n positive ints.
      padding: ``"SAME"``, ``"SAME_LOWER"``, ``"VALID"`` (any case) or n
        ``(low, high)`` int pairs (negative values crop).
      lhs_dilation: None or n positive ints (string padding needs all ones).
      rhs_dilation: None or n positive ints.
      dimension_numbers: None, a ``lax.ConvDimensionNumbers`` or a triple of
        layout strings such as ``("NHWC", "HWIO", "NHWC")``.
      feature_group_count: positive int dividing the lhs feature size.
      batch_group_count: positive int dividing the lhs batch size; at most one
        of the two group counts may exceed 1.
      precision: as for lax (a ``lax.Precision``, its name or a per-operand
        pair; dot-algorithm presets, which lax's convolution ignores, are
        refused); used by every forward and backward convolution. Unlike lax,
        None means full float32 unless ``jax.default_matmul_precision`` is in
        effect, so TF32 is only used when asked for (``docs/precision.md``).
      preferred_element_type: as for lax; used by every convolution, the
        cotangents come back in the dtypes of ``lhs`` and ``rhs``.
      out_sharding: sharding of the forward result, as for lax; the backward
        convolutions name theirs under explicit mesh axes only.

    Returns:
      The convolution, rank n+2, in the layout of ``dimension_numbers``'s
      output spec.

    Raises:
      TypeError: an argument of the wrong type or dtype.
      ValueError: shapes, group counts, strides, dilations or padding that do
        not fit; the message names the argument and shows its value.
      Where lax raises the other of the two for a bad argument (ranks or
      sequence lengths that differ, non-positive strides or dilations,
      malformed padding, dimension numbers or precision) the error is both a
      ValueError and a TypeError, so an ``except`` written for lax catches it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxgrad
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 8, 1)    # N, W, C
      >>> w = jnp.ones((3, 1, 1), dtype=jnp.float32)               # W, I, O
      >>> y = jaxgrad.conv_general_dilated(
      ...     x, w, (2,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))
      >>> y[0, :, 0]
      Array([ 3.,  9., 15.], dtype=float32)
      >>> f = lambda x: jaxgrad.conv_general_dilated(
      ...     x, w, (2,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")).sum()
      >>> jax.grad(f)(x)[0, :, 0]
      Array([1., 1., 2., 1., 2., 1., 1., 0.], dtype=float32)
    """
    # NumPy operands are canonicalised as lax does (float64 becomes float32
    # while x64 is off) before their dtypes are compared; Python numbers and
    # lists become arrays (of the other operand's dtype if it is an array, else
    # of the dtype JAX infers), torch tensors are refused.
    like = next((a.dtype for a in (lhs, rhs) if isinstance(a, _ARRAYS)), None)
    lhs, rhs = (as_array(_FN, name, a, python_dtype=like)
                for name, a in (("lhs", lhs), ("rhs", rhs)))
    spec = _normalise(lhs, rhs, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count, precision, preferred_element_type,
                        out_sharding)
    if not jnp.issubdtype(lhs.dtype, jnp.inexact):
        # Integer and bool convolutions have no gradient: lax's own op, so that
        # differentiating one fails exactly as it does for lax.
        return _lax_forward(lhs, rhs, spec)
    return conv_core(lhs, rhs, spec)


_ARRAYS = (jax.Array, np.ndarray, np.generic)

# --------------------------------------------------------------------------
# Integer and bool operands: lax's own convolution, with every argument.


def _lax_forward(lhs, rhs, spec: ConvSpec):
    return lax.conv_general_dilated(
        lhs, rhs, spec.stride, spec.padding, lhs_dilation=spec.input_dilation,
        rhs_dilation=spec.dilation, dimension_numbers=numbers_of(spec),
        feature_group_count=spec.groups, batch_group_count=spec.batch_groups,
        precision=spec.precision, preferred_element_type=spec.preferred_element_type,
        out_sharding=spec.out_sharding)


# --------------------------------------------------------------------------
# Argument checking and normalisation: every error names conv_general_dilated
# and the argument, and is raised before lax sees the call.


def _normalise(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count,
               precision, preferred_element_type, out_sharding) -> ConvSpec:
    _check_operands(lhs, rhs)
    numbers = _parse_dimension_numbers(lhs, rhs, dimension_numbers)
    n = lhs.ndim - 2
    strides = _positive_ints("window_strides", window_strides, n)
    lhs_dil = (1,) * n if lhs_dilation is None else _positive_ints("lhs_dilation", lhs_dilation, n)
    rhs_dil = (1,) * n if rhs_dilation is None else _positive_ints("rhs_dilation", rhs_dilation, n)
    _check_groups(lhs, rhs, numbers, feature_group_count, batch_group_count)
    pads = _parse_padding(lhs, rhs, numbers, padding, strides, lhs_dil, rhs_dil)
    return ConvSpec(strides, pads, rhs_dil, int(feature_group_count),
                    algorithm=check_algorithm(_FN, None),
                    precision=_precision(precision),
                    lhs_dilation=None if all(a == 1 for a in lhs_dil) else lhs_dil,
                    batch_groups=int(batch_group_count),
                    numbers=None if numbers == torch_numbers(n) else numbers,
                    preferred_element_type=_parse_dtype(preferred_element_type),
                    out_sharding=out_sharding)


def _check_operands(lhs, rhs) -> None:
    for name, a in (("lhs", lhs), ("rhs", rhs)):
        dtype = getattr(a, "dtype", None)
        if dtype is None or not hasattr(a, "shape"):
            raise TypeError(f"{_FN}: `{name}` must be an array, got {type(a).__name__}")
        if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
            raise TypeError(f"{_FN}: `{name}` must have a numeric or bool dtype, "
                            f"got {dtype}")
        if a.ndim < 2:
            raise ValueError(f"{_FN}: `{name}` must have rank >= 2 (batch/feature "
                             f"axes and the spatial axes), got shape {tuple(a.shape)}")
    if lhs.ndim != rhs.ndim:
        # (lax's wording: JAX's own tests match it)
        raise ArgumentError(f"{_FN} lhs and rhs must have the same number of dimensions, "
                            f"got shapes {tuple(lhs.shape)} (`lhs`) and "
                            f"{tuple(rhs.shape)} (`rhs`)")
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"{_FN}: `lhs` and `rhs` must share one dtype, got "
                        f"{lhs.dtype} and {rhs.dtype}")


def _parse_dimension_numbers(lhs, rhs, dimension_numbers) -> lax.ConvDimensionNumbers:
    try:
        numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    except (TypeError, ValueError, AssertionError) as e:
        raise ArgumentError(f"{_FN}: invalid `dimension_numbers` {dimension_numbers!r} "
                            f"for shapes {tuple(lhs.shape)} and {tuple(rhs.shape)}: "
                            f"{e}") from None
    specs = tuple(tuple(int(i) for i in spec) for spec in numbers)
    for name, spec in zip(("lhs_spec", "rhs_spec", "out_spec"), specs):
        if sorted(spec) != list(range(lhs.ndim)):
            raise ArgumentError(f"{_FN}: `dimension_numbers` {name} must be a "
                                f"permutation of range({lhs.ndim}), got {spec!r}")
    return lax.ConvDimensionNumbers(*specs)


def _is_sequence(value) -> bool:
    """A list, tuple or 1-D+ numpy array (lax takes all three); not a string."""
    return is_sequence(value) or (isinstance(value, np.ndarray) and value.ndim > 0)


def _positive_ints(name: str, value, n: int) -> tuple[int, ...]:
    check_static(_FN, name, value, f"a sequence of {n} ints")
    if not _is_sequence(value):
        raise TypeError(f"{_FN}: `{name}` must be a sequence of {n} ints (one per "
                        f"spatial dim), got {_show(value)}")
    if len(value) != n:
        # (lax's wording for window_strides leads: JAX's own tests match it)
        lax_words = (f"{_FN} window and window_strides must have the same number of "
                     f"dimensions, but got {n} and {len(value)}: "
                     if name == "window_strides" else f"{_FN}: ")
        raise ArgumentError(f"{lax_words}`{name}` must be a sequence of {n} ints (one "
                            f"per spatial dim), got {_show(value)}")
    values = tuple(_as_int(_FN, name, v) for v in value)
    if any(v < 1 for v in values):
        raise ArgumentError(f"{_FN}: `{name}` must be positive, got {values!r}")
    return values


def _show(value) -> str:
    return repr(value.tolist()) if isinstance(value, np.ndarray) else repr(value)


def _check_groups(lhs, rhs, numbers, feature_group_count, batch_group_count) -> None:
    g = _as_int(_FN, "feature_group_count", feature_group_count)
    b = _as_int(_FN, "batch_group_count", batch_group_count)
    for name, v in (("feature_group_count", g), ("batch_group_count", b)):
        if v < 1:
            raise ValueError(f"{_FN}: `{name}` must be positive, got {v!r}")
    if g > 1 and b > 1:
        raise ValueError(f"{_FN}: at most one of `feature_group_count` (={g}) and "
                         f"`batch_group_count` (={b}) may exceed 1")
    batch, features = lhs.shape[numbers.lhs_spec[0]], lhs.shape[numbers.lhs_spec[1]]
    out_features, in_features = rhs.shape[numbers.rhs_spec[0]], rhs.shape[numbers.rhs_spec[1]]
    if features % g:
        raise ValueError(f"{_FN}: `feature_group_count` (={g}) must divide the lhs "
                         f"feature size (={features})")
    if out_features % (g * b):
        name, v = ("feature_group_count", g) if g > 1 else ("batch_group_count", b)
        raise ValueError(f"{_FN}: `{name}` (={v}) must divide the rhs output feature "
                         f"size (={out_features})")
    if batch % b:
        raise ValueError(f"{_FN}: `batch_group_count` (={b}) must divide the lhs batch "
                         f"size (={batch})")
    if in_features * g != features:
        raise ValueError(f"{_FN}: `rhs` input feature size (={in_features}) must be the "
                         f"lhs feature size (={features}) / `feature_group_count` (={g})")


def _parse_padding(lhs, rhs, numbers, padding, strides, lhs_dil, rhs_dil):
    n = lhs.ndim - 2
    check_static(_FN, "padding", padding, "a string or a sequence of (low, high) pairs")
    if isinstance(padding, str):
        if padding.upper() not in _PAD_STRINGS:
            raise ValueError(f"{_FN}: `padding` must be one of {_PAD_STRINGS} or a "
                             f"sequence of (low, high) pairs, got {padding!r}")
        if any(a != 1 for a in lhs_dil):
            raise ValueError(f"{_FN}: string `padding` {padding!r} needs `lhs_dilation` "
                             f"of ones, got {lhs_dil!r}; give explicit (low, high) pairs")
        spatial = [lhs.shape[i] for i in numbers.lhs_spec[2:]]
        window = [d * (rhs.shape[i] - 1) + 1 for i, d in zip(numbers.rhs_spec[2:], rhs_dil)]
        pads = lax.padtype_to_pads(spatial, window, strides, padding)
        return tuple((int(lo), int(hi)) for lo, hi in pads)
    if not _is_sequence(padding) or len(padding) != n or not all(
            _is_sequence(p) and len(p) == 2 for p in padding):
        # "padding argument ... got ...": lax's wording, which JAX's own tests match
        raise ArgumentError(f"{_FN}: the padding argument, `padding`, must be a string "
                            f"or a sequence of {n} (low, high) pairs, got {_show(padding)}")
    try:
        return tuple((_as_int(_FN, "padding", lo), _as_int(_FN, "padding", hi))
                     for lo, hi in padding)
    except TypeError as e:      # lax: a ValueError
        raise ArgumentError(str(e)) from None


def _precision(precision):
    try:
        return resolve_precision(_FN, precision)
    except (TypeError, ValueError) as e:    # lax: a ValueError for any bad value
        raise ArgumentError(str(e)) from None


def _parse_dtype(dtype):
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{_FN}: `preferred_element_type` must be a dtype or None, "
                        f"got {dtype!r}") from None
