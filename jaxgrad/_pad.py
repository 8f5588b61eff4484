"""``pad`` with PyTorch's semantics (``F.pad``) and explicit, twice-differentiable VJPs.

Every mode is affine in the input: y = P x + c, with P a 0/1 matrix fixed by
the pads and the mode, and c a constant (the fill ``value`` where P puts
nothing). So x̄ = Pᵀ ȳ, and the VJP of Pᵀ is P again: each mode is one
``_rules.linear_pair`` (or a chain of them), and every order alternates the
pair's two maps. Notation, one padded axis (the others are independent):
input size n, pads (lo, hi) (negative: a crop), output size m = n + lo + hi.

constant. P is a shift, y[j] = x[j - lo] for 0 <= j - lo < n, else 0:

  x̄[i] = Σ_j [j - lo = i] ȳ[j] = ȳ[i + lo]   for 0 <= i + lo < m, else 0,

i.e. Pᵀ is the same shift with the pads negated, (-lo, -hi): where P pads,
Pᵀ crops, and where P crops, Pᵀ pads with zeros (``lax.pad`` takes either
sign). The fill is the constant c = value·(1 - P 1): a border array added
outside the rule, whose interior holds -0.0 so that x + c = x exactly (also
for x = -0.0).

reflect / replicate / circular. P is a gather, y[j] = x[π(j)], π from
:func:`pad_source_index`; its adjoint is the scatter-add

  x̄[i] = Σ_{j : π(j) = i} ȳ[j],

which folds the gradient of every border copy back onto the element it copied
(torch's backward does the same). Several axes are a chain of such gathers, one
per axis, each a linear pair.

``pad_source_index`` and the gather pair are also the convolutions'
``padding_mode`` (``_conv._ops.pad_border``): torch's ``nn.ConvNd`` pads with
``F.pad`` there too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _rules
from ._args import _as_int, check_static, float_array, is_sequence
from ._precision import accumulation_dtype
from ._typing import Array, ArrayLike

MODES = ("constant", "reflect", "replicate", "circular")


# --------------------------------------------------------------------------
# Border arithmetic: which input element each output position copies.


def pad_source_index(mode: str, size: int, pad: tuple[int, int]) -> tuple[int, ...]:
    """For each position of the padded axis, the input index it copies.

    Position ``j`` of the padded axis holds input index ``j - lo`` when that is
    inside ``[0, size)``; outside, ``mode`` decides: ``reflect`` mirrors about
    the edge without repeating it, ``replicate`` repeats the edge, ``circular``
    wraps around. Negative pads crop. As in torch, ``circular`` wraps around
    what is left after the crop (pads (-1, 2) of [1, 2, 3, 4, 5] give
    [2, 3, 4, 5, 2, 3]), while ``reflect`` and ``replicate`` mirror or repeat
    the input's own edges.
    """
    lo, hi = pad
    if mode == "circular":
        start = max(-lo, 0)
        kept = size - start - max(-hi, 0)
        out = max(lo, 0) + kept + max(hi, 0)
        if out <= 0:
            return ()
        if kept <= 0:
            raise ValueError(f"pad_source_index: circular pads {pad} leave nothing of "
                             f"size {size} to wrap around")
        return tuple(int(i) for i in start + np.mod(np.arange(out) - max(lo, 0), kept))
    positions = np.arange(-lo, size + hi)
    if mode == "reflect":
        period = 2 * (size - 1)
        folded = np.mod(positions, period) if period else np.zeros_like(positions)
        index = np.where(folded < size, folded, period - folded)
    elif mode == "replicate":
        index = np.clip(positions, 0, size - 1)
    else:
        raise ValueError(f"pad_source_index: unknown `mode` {mode!r}")
    return tuple(int(i) for i in index)


# --------------------------------------------------------------------------
# A gather along one axis and its adjoint, a scatter-add.
#
#   x̂[.., j, ..] = x[.., π(j), ..]                 (gather_axis)
#   x̄[.., i, ..] = Σ_{j : π(j) = i} ḡ[.., j, ..]    (scatter_axis)


def _gather_impl(x, axis: int, index: tuple[int, ...], size: int):
    """x̂[.., j, ..] = x[.., index[j], ..] along ``axis``."""
    return jnp.take(x, np.asarray(index, np.int32), axis=axis)


def _scatter_impl(g, axis: int, index: tuple[int, ...], size: int):
    """x̄[.., i, ..] = Σ_{j : index[j] = i} g[.., j, ..]: the adjoint of the gather.

    Half types accumulate in float32 (an element may collect several copies).
    """
    moved = jnp.moveaxis(g, axis, 0)
    dtype = accumulation_dtype(g.dtype)
    out = jnp.zeros((size,) + moved.shape[1:], dtype)
    out = out.at[np.asarray(index, np.int32)].add(moved.astype(dtype))
    return jnp.moveaxis(out.astype(g.dtype), 0, axis)


_gather_axis, scatter_axis = _rules.linear_pair(_gather_impl, _scatter_impl)


def gather_axis(x, axis: int, index: tuple[int, ...]):
    """x̂[.., j, ..] = x[.., index[j], ..] along ``axis``."""
    return _gather_axis(x, axis, index, x.shape[axis])


# --------------------------------------------------------------------------
# Constant padding: a shift and its adjoint, the shift with the pads negated.


def _shift_impl(x, pads: tuple[tuple[int, int], ...], negative_zero: bool):
    """y = P x: x shifted by ``pads`` (one (lo, hi) per axis), ±0 where P adds."""
    fill = jnp.array(-0.0 if negative_zero else 0.0, x.dtype)
    return lax.pad(x, fill, [(lo, hi, 0) for lo, hi in pads])


def _shift_adjoint_impl(g, pads: tuple[tuple[int, int], ...], negative_zero: bool):
    """x̄ = Pᵀ g: g shifted by the negated pads (crop where P padded, 0 where it cropped)."""
    return lax.pad(g, jnp.zeros((), g.dtype), [(-lo, -hi, 0) for lo, hi in pads])


# ``negative_zero`` is a bool, not the fill itself: -0.0 == 0.0 as a static
# argument would share a cache entry with 0.0.
shift, shift_adjoint = _rules.linear_pair(_shift_impl, _shift_adjoint_impl)


def _constant(x, pads, value: float | int):
    if value == 0:
        return shift(x, pads, math.copysign(1.0, value) < 0)
    y = shift(x, pads, False)
    if all(lo <= 0 and hi <= 0 for lo, hi in pads):
        return y        # a pure crop: no border to fill
    # c = value·(1 - P 1), built without x: value on the border, -0.0 inside.
    border = lax.pad(jnp.full(x.shape, -0.0, x.dtype), jnp.array(value, x.dtype),
                     [(lo, hi, 0) for lo, hi in pads])
    return y + border


def pad_axes(x, pads: tuple[tuple[int, int], ...], mode: str):
    """x padded by ``pads`` (one (lo, hi) per axis) in a reflect / replicate /
    circular ``mode``: one gather per padded axis (arguments already checked)."""
    for axis, (lo, hi) in enumerate(pads):
        if lo or hi:
            x = gather_axis(x, axis, pad_source_index(mode, x.shape[axis], (lo, hi)))
    return x


# --------------------------------------------------------------------------
# Argument checks (torch's rules; the messages name ``pad`` and the argument).


def _parse_pad(pad, ndim: int) -> tuple[tuple[int, int], ...]:
    """torch's flat ``pad`` -> one (lo, hi) per axis of the input, (0, 0) for the rest."""
    check_static("pad", "pad", pad, "a sequence of ints")
    if not is_sequence(pad):
        raise TypeError(f"pad: `pad` must be a sequence of ints, (left, right) pairs "
                        f"from the last dim backwards, got {type(pad).__name__} {pad!r}")
    values = tuple(_as_int("pad", "pad", v) for v in pad)
    if len(values) % 2:
        raise ValueError(f"pad: `pad` must have an even length, one (left, right) pair "
                         f"per padded dim, got {tuple(pad)!r} of length {len(values)}")
    n = len(values) // 2
    if n > ndim:
        raise ValueError(f"pad: `pad` pads {n} dims, more than the {ndim}-D `input` "
                         f"has, got pad={tuple(pad)!r}")
    pairs = tuple((values[2 * k], values[2 * k + 1]) for k in reversed(range(n)))
    return ((0, 0),) * (ndim - n) + pairs


def _parse_value(mode: str, value, dtype) -> float | int:
    check_static("pad", "value", value, "None or a real number")
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"pad: `value` must be None or a real number, got "
                        f"{type(value).__name__} {value!r}")
    try:
        given, value = value, float(value)   # torch's fill is a double, for integers too
    except OverflowError:
        raise ValueError(f"pad: `value` is too large for a float, got {value!r}") from None
    if mode != "constant" and value != 0:
        raise ValueError(f"pad: `value` is only used by mode='constant'; mode={mode!r} "
                         f"takes value=None (or 0), got {value!r}")
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        # torch refuses a fill outside the type's range (127.5 for int8) and
        # converts the rest, truncating towards 0
        info = np.iinfo(dtype)
        overflows = not (math.isfinite(value) and info.min <= value <= info.max)
        if not overflows:
            return math.trunc(value)
    elif dtype.kind == "b":
        overflows = False
    else:
        with np.errstate(over="ignore"):
            overflows = math.isfinite(value) and not np.isfinite(np.asarray(value, dtype))
    if overflows:
        read = f" (read as a double, {value!r}, as torch reads it)" if value != given else ""
        raise ValueError(f"pad: `value` must fit in the {dtype.name} `input`, "
                         f"got {given!r}{read}")
    return value


def _output_sizes(shape, pads) -> tuple[int, ...]:
    sizes = tuple(s + lo + hi for s, (lo, hi) in zip(shape, pads))
    for axis, (size, out) in enumerate(zip(shape, sizes)):
        if out < 0:
            raise ValueError(f"pad: `pad` {pads[axis]} crops dim {axis - len(shape)} of "
                             f"`input` (size {size}) to a negative size {out}, for shape "
                             f"{tuple(shape)}")
    return sizes


def _check_border_mode(mode: str, shape, pads, n: int) -> None:
    """torch's rules for reflect / replicate / circular over the last ``n`` dims."""
    ndim = len(shape)
    ranks = "the last 1, 2 or 3 dims (`pad` of length 2, 4 or 6)"
    if not 1 <= n <= 3:
        raise ValueError(
            f"pad: mode={mode!r} pads {ranks} of an unbatched (C, *spatial) or batched "
            f"(N, C, *spatial) `input`, got `pad` of length {2 * n} for shape "
            f"{tuple(shape)}")
    if ndim not in (n + 1, n + 2):
        raise ValueError(
            f"pad: mode={mode!r} pads {ranks} of an unbatched (C, *spatial) or batched "
            f"(N, C, *spatial) `input`, so `pad` of length {2 * n} needs a "
            f"{n + 1}-D or {n + 2}-D `input`, got shape {tuple(shape)}")
    spatial = range(ndim - n, ndim)
    if mode != "circular" and 0 in shape[1 if ndim == n + 2 else 0:]:
        raise ValueError(f"pad: mode={mode!r} needs non-empty dims after the batch "
                         f"(only N may be 0), got `input` of shape {tuple(shape)}")
    for axis in spatial:
        size, (lo, hi) = shape[axis], pads[axis]
        where = f"for dim {axis - ndim} of size {size}"
        if mode == "reflect" and max(lo, hi) >= size:
            raise ValueError(f"pad: mode='reflect' needs each pad smaller than its dim, "
                             f"got `pad` {(lo, hi)} {where}")
        kept = size - max(-lo, 0) - max(-hi, 0)
        if mode == "circular" and max(lo, hi) > kept:
            raise ValueError(f"pad: mode='circular' wraps around at most once: each pad "
                             f"must be at most its dim's size (after negative pads crop "
                             f"it, {max(kept, 0)}), got `pad` {(lo, hi)} {where}")
    out = _output_sizes(shape, pads)
    if mode != "circular" and all(out[axis] < 1 for axis in spatial):
        raise ValueError(f"pad: mode={mode!r} must leave a padded dim non-empty, got "
                         f"output sizes {tuple(out[axis] for axis in spatial)} for "
                         f"`input` of shape {tuple(shape)} and `pad` "
                         f"{tuple(pads[ndim - n:])}")


def pad(input: ArrayLike, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Array:
    """Pad (or crop) the trailing dims of ``input``, as ``torch.nn.functional.pad``.

    ``pad`` lists (left, right) pairs starting from the last dim:
    ``(1, 2)`` pads the last dim by 1 before and 2 after, ``(1, 2, 0, 3)`` also
    the second-to-last by 0 and 3. A negative pad crops that many elements.

    - ``"constant"`` fills with ``value`` (default 0); any number of trailing dims.
    - ``"reflect"`` mirrors about the edge (not repeating it); each pad must be
      smaller than its dim.
    - ``"replicate"`` repeats the edge element.
    - ``"circular"`` wraps around (at most once); after a negative pad, around
      what the crop left, as torch does.

    The last three pad the last 1, 2 or 3 dims of an unbatched (C, *spatial) or
    batched (N, C, *spatial) input; ``pad`` then has length 2, 4 or 6. The
    gradient of every copied border element is added back onto the element it
    copies.

    Args:
      input: (*), a floating, complex, integer or bool array (integer and bool
        ones have no gradient). For the non-constant modes (C, *spatial) or
        (N, C, *spatial) with 1 to 3 spatial dims; only N may be 0 for
        ``"reflect"`` and ``"replicate"``.
      pad: a sequence of ints of even length, at most 2·``input.ndim``:
        ``(left_-1, right_-1, left_-2, right_-2, ...)``, dim -1 first.
      mode: ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
      value: the fill of ``"constant"`` padding (None means 0; rounded to the
        input's dtype, truncated towards 0 for an integer one, as torch); the
        other modes take None or 0.

    Returns:
      An array of ``input``'s dtype, each padded dim of size
      ``size + left + right``.

    Raises:
      TypeError: if ``input`` has another dtype, ``pad`` is not a sequence of
        ints or ``value`` is not a real number.
      ValueError: for an odd-length ``pad``, more pairs than dims, an unknown
        ``mode``, a non-zero ``value`` with a non-constant mode, a crop below
        size 0, and torch's limits of each mode (ranks; reflect pads smaller
        than the dim; circular pads at most the dim).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 2.0, 3.0]], jnp.float32)
      >>> jaxgrad.pad(x, (2, 1), mode="reflect").tolist()
      [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
      >>> jaxgrad.pad(x, (1, -1), value=9.0).tolist()
      [[9.0, 1.0, 2.0]]
    """
    x = float_array("pad", "input", input, complex_ok=True, int_ok=True, bool_ok=True)
    pads = _parse_pad(pad, x.ndim)
    check_static("pad", "mode", mode, "a string")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"pad: `mode` must be one of {', '.join(map(repr, MODES))}, "
                         f"got {mode!r}")
    fill = _parse_value(mode, value, x.dtype)
    if mode == "constant":
        _output_sizes(x.shape, pads)
        return _constant(x, pads, fill)
    _check_border_mode(mode, x.shape, pads, len(pad) // 2)
    return pad_axes(x, pads, mode)
