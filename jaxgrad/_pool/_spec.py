"""Pooling's static description: window tables, output sizes, divisors, arguments.

Everything here works on Python ints and tuples, never on arrays, so it runs at
trace time and is tested without JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .._args import _as_int, check_static, int_tuple, is_sequence
from .._conv._spec import effective_kernel

# ==========================================================================
# Pooling: window tables, output sizes and divisors for ``_pool.py``.
#
# Per spatial dim: I input size, K kernel, s stride, p padding (the same on
# both sides), d dilation, O output size. Window o of a pooling op reads the
# input rows  o·s - p + j·d  for the taps j < K; rows outside [0, I) are
# padding. Adaptive pooling has one bin per output, [⌊o·I/O⌋, ⌈(o+1)·I/O⌉);
# neighbouring bins overlap when O does not divide I.
#
# Every op is described by one static table per dim (a :class:`Windows`), so
# the array code in ``_pool.py`` never does window arithmetic itself.


@dataclasses.dataclass(frozen=True)
class Windows:
    """The windows of one spatial dim: output ``o`` reads rows ``index[o][j]``.

    Attributes:
      size: ``I``, the input size along this dim.
      index: an ``(O, J)`` table of input rows, one row of ``J`` taps per
        output, taps in increasing order. An entry outside ``[0, I)`` is no
        input row: padding, or (adaptive bins shorter than ``J``) filler.
    """

    size: int
    index: tuple[tuple[int, ...], ...]

    @property
    def out(self) -> int:
        """O, the number of windows."""
        return len(self.index)

    @property
    def taps(self) -> int:
        """J, the taps per window (1 for an empty table)."""
        return len(self.index[0]) if self.index else 1

    def table(self) -> np.ndarray:
        """``index`` as an int64 array of shape (O, J)."""
        return np.asarray(self.index, np.int64).reshape(self.out, self.taps)

    def valid(self) -> np.ndarray:
        """(O, J) bool: which taps read an input row."""
        table = self.table()
        return (table >= 0) & (table < self.size)

    @property
    def pad(self) -> tuple[int, int]:
        """(lo, hi): zero rows to add so that every entry of ``index`` is a row."""
        table = self.table()
        if table.size == 0:
            return (0, 0)
        return (max(0, -int(table.min())), max(0, int(table.max()) + 1 - self.size))

    @property
    def progression(self) -> tuple[int, int, int] | None:
        """(first, step, gap) if index[o][j] = first + o·step + j·gap, step, gap >= 1.

        Such a table is J strided slices of the padded input (cheaper than a
        gather); adaptive bins that overlap unevenly are not.
        """
        table = self.table()
        if table.size == 0:
            return None
        first = int(table[0, 0])
        gap = int(table[0, 1] - first) if self.taps > 1 else 1
        # A single window has no step; call it J·gap, as if windows tiled.
        step = int(table[1, 0] - first) if self.out > 1 else self.taps * gap
        o, j = np.indices(table.shape)
        if step < 1 or gap < 1 or np.any(table != first + o * step + j * gap):
            return None
        return first, step, gap


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """A normalised pooling configuration (hashable, static under jit).

    Attributes:
      windows: one :class:`Windows` per spatial dim.
      divisors: for average pooling, per dim, the divisor of each window; the
        divisor of an output is their product. Empty for max pooling.
      divisor_override: replaces that product when set (torch's
        ``divisor_override``).
    """

    windows: tuple[Windows, ...]
    divisors: tuple[tuple[int, ...], ...] = ()
    divisor_override: int | None = None

    @property
    def in_spatial(self) -> tuple[int, ...]:
        return tuple(w.size for w in self.windows)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        return tuple(w.out for w in self.windows)

    def divisor(self) -> np.ndarray:
        """D[o_1, ..., o_n] = Π_k divisors[k][o_k] (or the override), float64."""
        if self.divisor_override is not None:
            return np.full(self.out_spatial, float(self.divisor_override))
        table = np.ones((), np.float64)
        for divisors in self.divisors:
            table = np.multiply.outer(table, np.asarray(divisors, np.float64))
        return table.reshape(self.out_spatial)


def pool_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int, ceil_mode: bool) -> int:
    """torch's pooling output size O (may be < 1 for a kernel that does not fit).

    O = ⌊(I + 2p - K') / s⌋ + 1, or with ``ceil_mode`` ⌈(I + 2p - K') / s⌉ + 1,
    minus one if that last window would start in the right padding
    ((O-1)·s >= I + p): every window starts inside the input or the left padding.
    """
    span = size + 2 * padding - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pool_windows(size: int, kernel: int, stride: int, padding: int, dilation: int,
                 out: int) -> Windows:
    """Window o reads rows o·s - p + j·d, j < K (a ceil_mode window may overhang)."""
    return Windows(size, tuple(
        tuple(o * stride - padding + j * dilation for j in range(kernel))
        for o in range(out)))


def avg_pool_divisors(size: int, kernel: int, stride: int, padding: int, out: int,
                      count_include_pad: bool) -> tuple[int, ...]:
    """torch's per-dim divisor of each average-pooling window.

    A window spans [a, a + K) with a = o·s - p. With ``count_include_pad`` it
    counts the padding but not what a ceil_mode window overhangs past the
    padded end: min(a + K, I + p) - a. Without, only the input rows:
    min(a + K, I) - max(a, 0).
    """
    divisors = []
    for o in range(out):
        start = o * stride - padding
        if count_include_pad:
            divisors.append(min(start + kernel, size + padding) - start)
        else:
            divisors.append(min(start + kernel, size) - max(start, 0))
    return tuple(divisors)


def adaptive_bins(size: int, out: int) -> tuple[tuple[int, int], ...]:
    """[⌊o·I/O⌋, ⌈(o+1)·I/O⌉) for each output o, in integer arithmetic."""
    return tuple((o * size // out, -(-(o + 1) * size // out)) for o in range(out))


def adaptive_windows(size: int, out: int) -> Windows:
    """The bins of :func:`adaptive_bins` as a table; short bins are filled with I."""
    bins = adaptive_bins(size, out)
    taps = max((end - start for start, end in bins), default=1)
    return Windows(size, tuple(
        tuple(start + j if start + j < end else size for j in range(taps))
        for start, end in bins))


def parse_pool_stride(fn: str, stride, kernel: Sequence[int]) -> tuple[int, ...]:
    """``None`` (or torch's empty default ``()``) means stride = kernel_size."""
    if stride is None or (is_sequence(stride) and len(stride) == 0):
        return tuple(kernel)
    return int_tuple(fn, "stride", stride, len(kernel), minimum=1, broadcast_one=True)


def check_pool_padding(fn: str, padding: Sequence[int], kernel: Sequence[int]) -> None:
    """torch's rule: each padding at most half of its kernel size (2p <= K)."""
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{fn}: `padding` must be at most half of `kernel_size`, "
                         f"got padding {tuple(padding)} and kernel_size "
                         f"{tuple(kernel)}")


def parse_divisor_override(fn: str, value) -> int | None:
    """``None`` or a non-zero int (torch accepts negative divisors)."""
    if value is None:
        return None
    value = _as_int(fn, "divisor_override", value)
    if value == 0:
        raise ValueError(f"{fn}: `divisor_override` must be non-zero, got 0")
    return value


def check_pool_output(fn: str, spatial: Sequence[int], out: Sequence[int],
                      settings: str, *, dilated: bool = False) -> None:
    """Every output size >= 1; ``settings`` describes the arguments for the message.

    An output size < 1 means the (dilated) kernel exceeds the padded input,
    since 2p <= K has been checked: that is what the message tells the user.
    """
    if any(o < 1 for o in out):
        knobs = "`kernel_size` or `dilation`" if dilated else "`kernel_size`"
        raise ValueError(f"{fn}: the output would be empty: input {tuple(spatial)} "
                         f"with {settings} gives output size {tuple(out)}; the window "
                         f"must fit in the padded input (reduce {knobs})")


def check_windows_reach_input(fn: str, windows: Sequence[Windows],
                              settings: str) -> None:
    """Max pooling needs an input row in every window (torch returns a bogus index)."""
    for dim, w in enumerate(windows):
        empty = np.flatnonzero(~w.valid().any(axis=1))
        if empty.size:
            raise ValueError(
                f"{fn}: window {int(empty[0])} of spatial dim {dim} holds only "
                f"padding (input {w.size} with {settings}); reduce `padding` or "
                f"`dilation`")


def parse_output_size(fn: str, output_size, spatial: Sequence[int], *,
                      allow_none: bool) -> tuple[int, ...]:
    """Adaptive ``output_size``: an int or a tuple of len(spatial) ints >= 0.

    With ``allow_none`` (2-D and 3-D, as torch), a ``None`` entry keeps that
    dim's input size.
    """
    n = len(spatial)
    check_static(fn, "output_size", output_size, f"an int or a tuple of {n} ints")
    if allow_none and is_sequence(output_size):
        if len(output_size) != n:
            raise ValueError(f"{fn}: `output_size` must be an int or a tuple of {n} "
                             f"ints or Nones, got {tuple(output_size)!r}")
        values = tuple(size if v is None else v
                       for v, size in zip(output_size, spatial))
        return int_tuple(fn, "output_size", values, n, minimum=0)
    return int_tuple(fn, "output_size", output_size, n, minimum=0)
