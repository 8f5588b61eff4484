"""``interpolate`` with PyTorch's semantics: resampling as a separable linear map.

Every mode but ``"area"`` is linear in the input and acts on each spatial axis
k on its own, through a sparse O_k × I_k matrix with at most T taps per row
(T = 1 nearest, 2 linear, 4 bicubic):

  (A_k x)[.., j, ..] = Σ_t w_k[j, t] · x[.., idx_k[j, t], ..]

and the op is their product A = A_1 ∘ ... ∘ A_d (maps on different axes
commute). The adjoint of a gather is the scatter-add of the same table,

  (A_kᵀ g)[.., i, ..] = Σ_{j, t : idx_k[j, t] = i} w_k[j, t] · g[.., j, ..]
  Aᵀ = A_1ᵀ ∘ ... ∘ A_dᵀ

(⟨A_k x, g⟩ = Σ_j Σ_t w[j, t] x[idx[j, t]] g[j] = ⟨x, A_kᵀ g⟩, regrouping the
sum by i = idx[j, t]). Aᵀ is stored by rows as well (for each i, its pairs
(j, w[j, t])), so both directions run as gathers of the same products; the
scatter-add is never formed. A and Aᵀ are declared as one ``_rules.linear_pair``:
each is the other's VJP, so every order of differentiation alternates the
two. The tables (idx, w) depend only on the shapes and the arguments: they
are computed here in NumPy, in float64, at trace time, and enter the program
as constants in the compute dtype (float32 for half types, which are
computed in float32 across all axes and rounded once).

torch's source coordinates, per axis (I input size, O output size, j output
index, ``scale`` the user's factor when it is given and not recomputed):

  r = 1/scale if given, else I/O                 (align_corners=False)
  r = (I-1)/(O-1), or 0 when O = 1               (align_corners=True)

  nearest          idx = min(⌊j·r⌋, I-1)                 r and j·r in float32
  nearest-exact    idx = min(⌊(j+½)·r⌋, I-1)             (float32, as torch)
  linear           s = r·j (aligned) or max(r·(j+½) - ½, 0)
                   i₀ = min(⌊s⌋, I-1), λ = clip(s - i₀, 0, 1)
                   y = (1-λ)·x[i₀] + λ·x[min(i₀+1, I-1)]; identity when O = I
  cubic            s = r·j (aligned) or r·(j+½) - ½ (not clipped at 0)
                   i₀, t as above; taps x[clip(i₀-1+m, 0, I-1)], m = 0..3, with
                   Keys' weights (A = -0.75): W₂(t+1), W₁(t), W₁(1-t), W₂(2-t),
                   W₁(z) = (A+2)z³ - (A+3)z² + 1, W₂(z) = Az³ - 5Az² + 8Az - 4A

``area`` is adaptive average pooling (``jaxgrad.adaptive_avg_pool{1,2,3}d``,
torch's overlapping bins), with its own explicit rules. Where torch's own
kernels disagree with themselves (see :func:`interpolate`'s notes), jaxgrad
follows torch's forward and differentiates it exactly.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _rules
from ._args import (check_rank, check_static, differentiable, float_array, int_tuple,
                    is_sequence, parse_bool)
from ._pool import _ops as _pool_ops
from ._precision import accumulation_dtype
from ._typing import Array, ArrayLike

FN = "interpolate"
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear",
         "area")
# The modes that need one input rank (spatial dims), as torch's dispatch.
_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_NEAREST = ("nearest", "nearest-exact", "area")
_CUBIC_A = -0.75


# --------------------------------------------------------------------------
# One axis of a resampling: a static gather table.


@dataclasses.dataclass(frozen=True)
class Taps:
    """A sparse matrix by rows: row r is Σ_t weight[r][t] · v[index[r][t]].

    Attributes:
      index: R rows of T indices.
      weight: R rows of T float64 weights; None when every weight is 1.
    """

    index: tuple[tuple[int, ...], ...]
    weight: tuple[tuple[float, ...], ...] | None = None

    @staticmethod
    def of(index: np.ndarray, weight: np.ndarray | None) -> Taps:
        rows = tuple(tuple(int(i) for i in row) for row in index)
        if weight is None:
            return Taps(rows)
        return Taps(rows, tuple(tuple(float(w) for w in row) for row in weight))


@dataclasses.dataclass(frozen=True)
class AxisTable:
    """One axis of a resampling, A (O × I), by rows both ways.

    Attributes:
      size: I, the input length of the axis.
      forward: A by rows: O rows of T taps into [0, I), torch's taps exactly
        (zero weights and repeated border indices included, so that NaN and
        inf propagate as in torch).
      adjoint: Aᵀ by rows: for each input i, the (j, w[j, t]) with
        idx[j, t] = i, padded with index O, which reads a zero row appended
        to the cotangent (so the padding adds an exact 0, never 0·inf).
    """

    size: int
    forward: Taps
    adjoint: Taps

    @staticmethod
    def of(size: int, index, weight=None) -> AxisTable | None:
        """The table of torch's (O, T) taps; None for the identity (y = x)."""
        index = np.asarray(index, np.int64).reshape(len(index), -1)
        if weight is None and index.shape == (size, 1) and (
                index[:, 0] == np.arange(size)).all():
            return None
        if weight is not None:
            weight = np.asarray(weight, np.float64).reshape(index.shape)
        adjoint_index, adjoint_weight = _transpose(size, index, weight)
        return AxisTable(size, Taps.of(index, weight),
                         Taps.of(adjoint_index, adjoint_weight))


def _transpose(size: int, index: np.ndarray, weight: np.ndarray | None):
    """The rows of Aᵀ from those of A: (I, T') indices into [0, O] and weights."""
    rows, taps = index.shape
    flat = index.ravel()
    order = np.argsort(flat, kind="stable")        # by input i, then by (j, t)
    counts = np.bincount(flat, minlength=size)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    slot = np.arange(flat.size) - starts           # place within row i
    out_index = np.full((size, counts.max()), rows)
    out_index[flat[order], slot] = np.repeat(np.arange(rows), taps)[order]
    if weight is None:
        return out_index, None
    out_weight = np.zeros(out_index.shape)
    out_weight[flat[order], slot] = weight.ravel()[order]
    return out_index, out_weight


def _gather(x, axis: int, taps: Taps):
    """y[.., r, ..] = Σ_t w[r, t] · x[.., idx[r, t], ..]: one gather of all taps."""
    index = np.asarray(taps.index)
    rows, width = index.shape
    taken = jnp.take(x, index.reshape(-1), axis=axis)
    if width == 1 and taps.weight is None:
        return taken
    taken = taken.reshape(x.shape[:axis] + (rows, width) + x.shape[axis + 1:])
    if taps.weight is not None:
        weight = np.asarray(taps.weight).astype(x.dtype)
        taken = taken * weight.reshape(weight.shape + (1,) * (x.ndim - axis - 1))
    return jnp.sum(taken, axis=axis + 1)


def _scatter(g, axis: int, table: AxisTable):
    """x̄[.., i, ..] = Σ_{j,t : idx[j, t] = i} w[j, t] · g[.., j, ..], ``_gather``'s adjoint.

    A scatter-add, computed as a gather of Aᵀ's rows: no scatter (which is
    slow to compile, and nondeterministic on GPUs), the same products.
    """
    if (np.asarray(table.adjoint.index) == g.shape[axis]).any():
        pad = [(0, 0, 0)] * g.ndim
        pad[axis] = (0, 1, 0)                       # the zero row the padding reads
        g = lax.pad(g, jnp.zeros((), g.dtype), pad)
    return _gather(g, axis, table.adjoint)


# The separable map over all spatial axes of (N, C, *spatial), axis by axis;
# ``tables`` has one AxisTable (or None: identity) per spatial dim. Half types
# are widened once and rounded once, so every sum runs in float32.


def _resample_impl(x, tables: tuple[AxisTable | None, ...]):
    """y = A_d ∘ ... ∘ A_1 x."""
    work = x.astype(accumulation_dtype(x.dtype))
    for axis, table in enumerate(tables, start=2):
        if table is not None:
            work = _gather(work, axis, table.forward)
    return work.astype(x.dtype)


def _resample_adjoint_impl(g, tables: tuple[AxisTable | None, ...]):
    """x̄ = A_1ᵀ ∘ ... ∘ A_dᵀ g."""
    work = g.astype(accumulation_dtype(g.dtype))
    for axis, table in reversed(tuple(enumerate(tables, start=2))):
        if table is not None:
            work = _scatter(work, axis, table)
    return work.astype(g.dtype)


resample, resample_adjoint = _rules.linear_pair(_resample_impl, _resample_adjoint_impl)

# Called eagerly, one compiled program per (tables, shape); under a trace
# (jit, grad, vmap) the rule itself, so that no nested jit is differentiated.
_jitted_resample = jax.jit(resample, static_argnums=1)


def _run(fn: Callable, jitted: Callable, x, *static):
    return (fn if isinstance(x, jax.core.Tracer) else jitted)(x, *static)


# --------------------------------------------------------------------------
# The tables of each mode (NumPy, float64 unless torch computes in float32).


def source_scale(in_size: int, out_size: int, align_corners: bool,
                 scale: float | None) -> float:
    """r: output index -> input coordinate, torch's ``area_pixel_compute_scale``."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale is not None else in_size / out_size


def nearest_table(in_size: int, out_size: int, scale: float | None, *,
                  exact: bool, shortcut: bool) -> AxisTable | None:
    """idx = min(⌊j·r⌋, I-1) (``exact``: ⌊(j+½)·r⌋), in torch's float32 arithmetic.

    ``shortcut``: torch's 2-D "nearest" kernel copies when O = I and takes
    j // 2 when O = 2I, whatever the scale (its 1-D and 3-D forward kernels,
    and "nearest-exact", do not).
    """
    j = np.arange(out_size)
    if shortcut and out_size == in_size:
        return None
    if shortcut and out_size == 2 * in_size:
        return AxisTable.of(in_size, j // 2)
    r = (np.float32(1.0 / scale) if scale is not None
         else np.float32(in_size) / np.float32(out_size))
    if exact:       # (j + 0.5) is a double in torch; the product is rounded to float
        coordinate = np.float32((j + 0.5) * np.float64(r))
    else:
        coordinate = j.astype(np.float32) * r
    return AxisTable.of(in_size, np.minimum(np.floor(coordinate), in_size - 1))


def _index_and_fraction(coordinate: np.ndarray, in_size: int):
    """i₀ = min(⌊s⌋, I-1) and clip(s - i₀, 0, 1), torch's ``guard_index_and_lambda``.

    torch floors the coordinate rounded to float32 (``floorf``); a coordinate
    just below an integer then gets that integer with fraction 0, which is the
    same interpolated value to within the rounding.
    """
    index = np.minimum(np.floor(coordinate.astype(np.float32)), in_size - 1)
    return index.astype(np.int64), np.clip(coordinate - index, 0.0, 1.0)


def linear_table(in_size: int, out_size: int, align_corners: bool,
                 scale: float | None) -> AxisTable | None:
    """(1-λ)·x[i₀] + λ·x[i₁], i₁ = min(i₀+1, I-1); the identity when O = I (as torch)."""
    if out_size == in_size:
        return None
    r = source_scale(in_size, out_size, align_corners, scale)
    j = np.arange(out_size, dtype=np.float64)
    coordinate = r * j if align_corners else np.maximum(r * (j + 0.5) - 0.5, 0.0)
    i0, lam = _index_and_fraction(coordinate, in_size)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return AxisTable.of(in_size, np.stack([i0, i1], 1), np.stack([1 - lam, lam], 1))


def _keys_near(z, a=_CUBIC_A):
    """W₁(z) for |z| <= 1."""
    return ((a + 2) * z - (a + 3)) * z * z + 1


def _keys_far(z, a=_CUBIC_A):
    """W₂(z) for 1 < |z| < 2."""
    return ((a * z - 5 * a) * z + 8 * a) * z - 4 * a


def cubic_table(in_size: int, out_size: int, align_corners: bool,
                scale: float | None) -> AxisTable:
    """Four taps x[clip(i₀-1+m, 0, I-1)] with Keys' weights (A = -0.75)."""
    r = source_scale(in_size, out_size, align_corners, scale)
    j = np.arange(out_size, dtype=np.float64)
    coordinate = r * j if align_corners else r * (j + 0.5) - 0.5
    i0, t = _index_and_fraction(coordinate, in_size)
    index = np.clip(i0[:, None] + np.arange(-1, 3), 0, in_size - 1)
    weight = np.stack([_keys_far(t + 1), _keys_near(t), _keys_near(1 - t),
                       _keys_far(2 - t)], 1)
    return AxisTable.of(in_size, index, weight)


def axis_tables(mode: str, in_spatial: Sequence[int], out_spatial: Sequence[int],
                align_corners: bool, scales: Sequence[float | None]
                ) -> tuple[AxisTable | None, ...]:
    """One table per spatial dim for ``mode`` (not "area")."""
    tables = []
    for i, o, s in zip(in_spatial, out_spatial, scales):
        if mode in ("nearest", "nearest-exact"):
            exact = mode == "nearest-exact"
            tables.append(nearest_table(i, o, s, exact=exact,
                                        shortcut=not exact and len(in_spatial) == 2))
        elif mode == "bicubic":
            tables.append(cubic_table(i, o, align_corners, s))
        else:
            tables.append(linear_table(i, o, align_corners, s))
    return tuple(tables)


# --------------------------------------------------------------------------
# Argument parsing (torch's order of checks, jaxgrad's messages).


def _parse_mode(mode) -> str:
    check_static(FN, "mode", mode, "a mode name")
    if isinstance(mode, str) and mode == "lanczos":
        raise ValueError(f"{FN}: `mode` 'lanczos' needs antialias=True, which jaxgrad "
                         f"does not support; use one of {MODES}, got {mode!r}")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{FN}: `mode` must be one of {MODES}, got {mode!r}")
    return mode


def _parse_align_corners(mode: str, align_corners) -> bool:
    check_static(FN, "align_corners", align_corners, "None or a bool")
    if mode in _NEAREST:
        if align_corners is not None:
            raise ValueError(f"{FN}: `align_corners` can only be set for the modes "
                             f"linear, bilinear, bicubic and trilinear, got "
                             f"align_corners={align_corners!r} with mode={mode!r}")
        return False
    return False if align_corners is None else parse_bool(FN, "align_corners",
                                                          align_corners)


def _parse_scale(value, n: int) -> tuple[float, ...]:
    check_static(FN, "scale_factor", value, f"a number or a tuple of {n} numbers")
    values = tuple(value) if is_sequence(value) else (value,) * n
    if len(values) != n:
        raise ValueError(f"{FN}: `scale_factor` must be a number or a tuple of {n} "
                         f"numbers (one per spatial dim), got {tuple(value)!r}")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{FN}: `scale_factor` must be a positive number or a "
                            f"tuple of {n}, got {type(v).__name__} {v!r}")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{FN}: `scale_factor` must be positive and finite, "
                             f"got {value!r}")
    return tuple(float(v) for v in values)


def output_geometry(spatial: Sequence[int], size, scale_factor,
                    recompute_scale_factor, mode: str
                    ) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """(output spatial size, the scale each axis interpolates with, or None).

    With ``scale_factor`` the size is ⌊I·scale⌋ per dim; the scale itself is
    used (as 1/scale) unless ``recompute_scale_factor`` (always for "area"),
    when it is recomputed from the sizes as I/O.
    """
    n = len(spatial)
    recompute = None if recompute_scale_factor is None else parse_bool(
        FN, "recompute_scale_factor", recompute_scale_factor)
    if size is not None and scale_factor is not None:
        raise ValueError(f"{FN}: give only one of `size` and `scale_factor`, got "
                         f"size={size!r} and scale_factor={scale_factor!r}")
    if size is None and scale_factor is None:
        raise ValueError(f"{FN}: one of `size` and `scale_factor` must be given, "
                         f"got neither")
    if size is not None:
        if recompute:
            raise ValueError(f"{FN}: `recompute_scale_factor`=True needs "
                             f"`scale_factor`, not an explicit size; got "
                             f"size={size!r}")
        return int_tuple(FN, "size", size, n, minimum=1), (None,) * n
    scales = _parse_scale(scale_factor, n)
    out = tuple(int(i * s) for i, s in zip(spatial, scales))     # ⌊I·scale⌋
    if any(o < 1 for o in out):
        raise ValueError(
            f"{FN}: `scale_factor` {scale_factor!r} gives an empty output: "
            f"⌊input size × scale⌋ = {out} for the spatial input {tuple(spatial)}")
    keep = not recompute and mode != "area"
    return out, (scales if keep else (None,) * n)


def _check_input(x, mode: str):
    check_rank(FN, "input", x, (3, 4, 5), "(N, C, *spatial) with 1 to 3 spatial dims")
    n = x.ndim - 2
    if mode in _MODE_RANK and _MODE_RANK[mode] != n:
        want = _MODE_RANK[mode] + 2
        raise ValueError(f"{FN}: mode={mode!r} needs a {want}-D `input` "
                         f"(N, C, {_SPATIAL[_MODE_RANK[mode]]}), got shape "
                         f"{tuple(x.shape)}")
    if min(x.shape[1:]) < 1:
        raise ValueError(f"{FN}: `input` must have non-empty channel and spatial dims, "
                         f"got shape {tuple(x.shape)} (only the batch may be empty)")


_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _check_antialias(antialias, mode: str) -> None:
    check_static(FN, "antialias", antialias, "a bool")
    if parse_bool(FN, "antialias", antialias):
        raise ValueError(
            f"{FN}: `antialias`=True (torch's anti-aliased bilinear/bicubic "
            f"downsampling) is not supported by jaxgrad; got antialias=True with "
            f"mode={mode!r}")


# --------------------------------------------------------------------------
# The public function.


def interpolate(input: ArrayLike, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None,
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Array:
    """Resample the spatial dims of ``input``, as ``torch.nn.functional.interpolate``.

    Every mode but ``"area"`` is a separable linear map: per spatial dim,
    output j is ``Σ_t w[j, t] · x[idx[j, t]]`` with torch's source indices and
    weights (see the module docstring of ``jaxgrad._interpolate``); the
    gradient is the scatter-add of the same table, and the gradient's
    gradient the gather again. ``"area"`` is
    :func:`jaxgrad.adaptive_avg_pool2d` (and its 1-D and 3-D variants).

    Two corners where torch's CPU backward is not the gradient of its
    forward, and jaxgrad's is: ``"nearest"`` on 3-D or 5-D input with a
    ``scale_factor`` (not recomputed) that yields an output size equal to
    or twice the input size but is not 1 or 2 (torch's backward assumes
    scale 1 or 2 there), and ``"bicubic"`` with a ``scale_factor`` other
    than 1 that leaves every spatial size unchanged (torch's backward copies
    the gradient). jaxgrad's outputs match torch's forward in both.

    Args:
      input: (N, C, L), (N, C, H, W) or (N, C, D, H, W), a float array (the
        nearest modes also take integer and bool arrays, which have no
        gradient); the batch may be empty.
      size: the output spatial size, an int for every dim or one per dim.
      scale_factor: a positive number for every dim or one per dim; the
        output size is ``floor(input size * scale_factor)``. Exactly one of
        ``size`` and ``scale_factor`` is given.
      mode: ``"nearest"`` (torch's legacy rule ``floor(j * in/out)``),
        ``"nearest-exact"`` (``floor((j + 0.5) * in/out)``), ``"linear"`` (3-D
        input), ``"bilinear"`` (4-D), ``"bicubic"`` (4-D, Keys' cubic with
        A = -0.75 and clamped borders; it can overshoot), ``"trilinear"``
        (5-D) or ``"area"`` (adaptive average pooling).
      align_corners: for the linear and cubic modes: True maps the centres
        of the corner pixels onto each other, False (the default, None) the
        outer edges, clamping source coordinates at the border. Must be
        None for the other modes.
      recompute_scale_factor: with ``scale_factor``: True interpolates with
        the scale ``in/out`` of the rounded output size, False or None with
        ``scale_factor`` itself. Must not be True with ``size``.
      antialias: must be False; torch's anti-aliased downsampling is not
        supported.

    Returns:
      (N, C, *out) in the input's dtype (half types are computed in float32).

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value
        (``size`` and ``scale_factor`` both or neither given, ``align_corners``
        with a nearest mode, a mode for another input rank, ``antialias``).

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[[1.0, 2.0, 4.0]]], jnp.float32)
      >>> jaxgrad.interpolate(x, size=5, mode="linear", align_corners=True).tolist()
      [[[1.0, 1.5, 2.0, 3.0, 4.0]]]
      >>> jaxgrad.interpolate(x, scale_factor=2, mode="nearest").tolist()
      [[[1.0, 1.0, 2.0, 2.0, 4.0, 4.0]]]
    """
    mode = _parse_mode(mode)
    # the nearest modes copy entries: integer and bool inputs too (no gradient)
    x = float_array(FN, "input", input, int_ok=True, bool_ok=True)
    if mode not in ("nearest", "nearest-exact") and not differentiable(x):
        raise TypeError(f"{FN}: mode={mode!r} takes a floating `input`, got {x.dtype} "
                        f"(integer and bool inputs are taken by the nearest modes)")
    align = _parse_align_corners(mode, align_corners)
    _check_input(x, mode)
    spatial = x.shape[2:]
    out, scales = output_geometry(spatial, size, scale_factor, recompute_scale_factor,
                                  mode)
    _check_antialias(antialias, mode)
    if mode == "area":
        return _pool_ops.adaptive_avg_pool_nd(FN, len(spatial), x, out)
    tables = axis_tables(mode, spatial, out, align, scales)
    if all(table is None for table in tables):
        return x
    return _run(resample, _jitted_resample, x, tables)
