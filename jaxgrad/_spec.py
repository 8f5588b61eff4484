"""Argument normalisation and shape arithmetic for the convolution family.

Everything here works on Python ints and tuples, never on arrays, so it runs at
trace time and is tested without JAX. PyTorch-style arguments (ints, tuples,
``"same"``) are turned into one frozen :class:`ConvSpec` at the public
boundary; the differentiable kernels in ``_conv.py`` only ever see a spec.

Notation (per spatial dimension), used throughout the package:
  I   input size             K   kernel size          s   stride
  d   kernel dilation        K'  = d(K-1)+1 (effective kernel)
  lo, hi  zero padding before / after the input
  O   output size = floor((I + lo + hi - K') / s) + 1
  r   leftover = (I + lo + hi - K') mod s: trailing input rows no window reaches
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ._precision import HIGHEST, PrecisionPair

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT64_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A normalised convolution configuration (hashable, static under jit).

    Attributes:
      stride: ``s`` per spatial dim, each >= 1.
      padding: ``(lo, hi)`` per spatial dim. Internal specs may carry a
        negative ``hi`` (a crop); user-facing ones never do.
      dilation: ``d`` per spatial dim, each >= 1.
      groups: ``G``, the number of channel groups.
      algorithm: how the gradients are computed: "auto", "transpose" or
        "taps" (``_algorithms``); the values are the same.
      precision: the ``(lhs, rhs)`` ``lax.Precision`` pair of every contraction,
        forward and backward (``_precision``); full float32 unless asked.
      lhs_dilation: ``a`` per spatial dim (lax's lhs dilation), None for ones.
      batch_groups: ``B``, lax's ``batch_group_count``.
      numbers: the ``lax.ConvDimensionNumbers`` of the layouts; None for
        PyTorch's (N, C, *spatial), (O, I, *K), (N, O, *P).
      preferred_element_type: lax's; None for the operands' dtype (half types
        accumulate in float32 either way).
      out_sharding: the forward result's sharding (lax's argument).
    """

    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int
    algorithm: str = "auto"
    precision: PrecisionPair = HIGHEST
    lhs_dilation: tuple[int, ...] | None = None
    batch_groups: int = 1
    numbers: Any = None
    preferred_element_type: Any = None
    out_sharding: Any = None

    @property
    def ndim(self) -> int:
        return len(self.stride)

    @property
    def input_dilation(self) -> tuple[int, ...]:
        """``a`` per spatial dim: the lhs dilation (ones unless given)."""
        return self.lhs_dilation or (1,) * self.ndim

    @property
    def torch_geometry(self) -> bool:
        """PyTorch's convolution: (N, C, *spatial) layout, no lhs dilation, no
        batch groups, the operands' own dtype. Only these have taps formulations."""
        return (self.numbers is None and self.batch_groups == 1
                and self.preferred_element_type is None
                and all(a == 1 for a in self.input_dilation))


# --------------------------------------------------------------------------
# Pure shape arithmetic.


def effective_kernel(kernel: int, dilation: int) -> int:
    """K' = d(K-1)+1, the extent of a dilated kernel."""
    return dilation * (kernel - 1) + 1


def conv_output_size(size: int, kernel: int, stride: int, pad: tuple[int, int],
                     dilation: int) -> int:
    """O = floor((I + lo + hi - K') / s) + 1."""
    lo, hi = pad
    return (size + lo + hi - effective_kernel(kernel, dilation)) // stride + 1


def conv_output_shape(spatial: Sequence[int], kernel: Sequence[int],
                      spec: ConvSpec) -> tuple[int, ...]:
    return tuple(
        conv_output_size(i, k, s, p, d)
        for i, k, s, p, d in zip(spatial, kernel, spec.stride, spec.padding,
                                 spec.dilation))


def input_grad_padding(in_spatial, out_spatial, kernel, spec: ConvSpec):
    """Pads (K'-1-lo, (I-1)·a - (O-1)·s + lo) of the input-gradient convolution."""
    return tuple(
        (effective_kernel(k, d) - 1 - lo, (i - 1) * a - (o - 1) * s + lo)
        for i, o, k, s, a, d, (lo, _) in zip(
            in_spatial, out_spatial, kernel, spec.stride, spec.input_dilation,
            spec.dilation, spec.padding))


def weight_grad_padding(in_spatial, out_spatial, kernel, spec: ConvSpec):
    """Pads (lo, (K'-1) + (O-1)·s - (I-1)·a - lo) of the weight-gradient convolution."""
    return tuple(
        (lo, effective_kernel(k, d) - 1 + (o - 1) * s - (i - 1) * a - lo)
        for i, o, k, s, a, d, (lo, _) in zip(
            in_spatial, out_spatial, kernel, spec.stride, spec.input_dilation,
            spec.dilation, spec.padding))


def leftover(size: int, kernel: int, stride: int, pad: tuple[int, int],
             dilation: int) -> int:
    """r = (I + lo + hi - K') mod s: trailing rows that no window reaches."""
    lo, hi = pad
    return (size + lo + hi - effective_kernel(kernel, dilation)) % stride


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int,
                               output_padding: int, dilation: int) -> int:
    """(I-1)s - 2p + d(K-1) + output_padding + 1, as in torch."""
    return ((size - 1) * stride - 2 * padding + dilation * (kernel - 1)
            + output_padding + 1)


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """torch's ``padding="same"``: total d(K-1), the odd extra on the high side."""
    total = dilation * (kernel - 1)
    return (total // 2, total - total // 2)


def pad_source_index(mode: str, size: int, pad: tuple[int, int]) -> tuple[int, ...]:
    """For each position of the padded axis, the input index it copies.

    Position ``j`` of the padded axis holds input index ``j - lo`` when that is
    inside ``[0, size)``; outside, ``mode`` decides: ``reflect`` mirrors about
    the edge without repeating it, ``replicate`` repeats the edge, ``circular``
    wraps around.
    """
    lo, hi = pad
    positions = np.arange(-lo, size + hi)
    if mode == "reflect":
        period = 2 * (size - 1)
        folded = np.mod(positions, period) if period else np.zeros_like(positions)
        index = np.where(folded < size, folded, period - folded)
    elif mode == "replicate":
        index = np.clip(positions, 0, size - 1)
    elif mode == "circular":
        index = np.mod(positions, size)
    else:
        raise ValueError(f"pad_source_index: unknown `mode` {mode!r}")
    return tuple(int(i) for i in index)


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


def parse_padding(fn: str, padding, n: int, kernel: Sequence[int],
                  stride: Sequence[int], dilation: Sequence[int]
                  ) -> tuple[tuple[int, int], ...]:
    """torch-style ``padding`` -> ``((lo, hi), ...)``.

    Accepts an int, a tuple of ``n`` ints (symmetric), a tuple of ``n`` (lo, hi)
    pairs, ``"valid"`` and ``"same"`` (stride 1 only, odd extra on the high side).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{fn}: padding='same' is not supported for strided "
                    f"convolutions (`stride`={tuple(stride)!r}); use an explicit "
                    "padding")
            return tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
        raise ValueError(f"{fn}: `padding` must be an int, a tuple, 'valid' or "
                         f"'same', got {padding!r}")
    is_pairs = (is_sequence(padding) and len(padding) == n
                and all(is_sequence(p) for p in padding))
    if is_pairs:
        pairs = []
        for p in padding:
            if len(p) != 2:
                raise ValueError(f"{fn}: `padding` pairs must be (lo, hi), got "
                                 f"{tuple(map(tuple, padding))!r}")
            pairs.append(tuple(_as_int(fn, "padding", v) for v in p))
        if any(v < 0 for pair in pairs for v in pair):
            raise ValueError(f"{fn}: `padding` must be non-negative, got "
                             f"{tuple(pairs)!r}")
        return tuple(pairs)
    values = int_tuple(fn, "padding", padding, n, minimum=0)
    return tuple((p, p) for p in values)


def parse_padding_mode(fn: str, padding_mode) -> str:
    # isinstance first: `in` would compare an array elementwise
    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(f"{fn}: `padding_mode` must be one of {PADDING_MODES}, "
                         f"got {padding_mode!r}")
    return padding_mode


# --------------------------------------------------------------------------
# Array-argument checks (shapes and dtypes are static at trace time).


def check_float(fn: str, name: str, array) -> None:
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


def parse_groups(fn: str, groups) -> int:
    groups = _as_int(fn, "groups", groups)
    if groups < 1:
        raise ValueError(f"{fn}: `groups` must be positive, got {groups}")
    return groups


def check_groups(fn: str, groups, in_channels: int, out_channels: int,
                 weight_in: int, *, in_name: str = "input",
                 weight_name: str = "weight") -> int:
    """groups | C_in, groups | C_out and weight.shape[1] * groups == C_in."""
    groups = parse_groups(fn, groups)
    if in_channels % groups:
        raise ValueError(f"{fn}: `groups` (={groups}) must divide the {in_name} "
                         f"channels (={in_channels})")
    if out_channels % groups:
        raise ValueError(f"{fn}: `groups` (={groups}) must divide the output "
                         f"channels (={out_channels})")
    if weight_in * groups != in_channels:
        raise ValueError(
            f"{fn}: `{weight_name}` expects {weight_in} channels per group x {groups} "
            f"groups = {weight_in * groups} {in_name} channels, but `{in_name}` "
            f"has {in_channels}")
    return groups


def check_kernel_fits(fn: str, spatial: Sequence[int], kernel: Sequence[int],
                      padding: Sequence[tuple[int, int]], dilation: Sequence[int],
                      *, in_name: str = "input", weight_name: str = "weight") -> None:
    padded = tuple(i + lo + hi for i, (lo, hi) in zip(spatial, padding))
    extent = tuple(effective_kernel(k, d) for k, d in zip(kernel, dilation))
    if any(e > p for e, p in zip(extent, padded)):
        raise ValueError(
            f"{fn}: the (dilated) kernel {extent} of `{weight_name}` is larger than "
            f"the padded `{in_name}` {padded} (input {tuple(spatial)}, padding "
            f"{tuple(padding)}, kernel {tuple(kernel)}, dilation {tuple(dilation)})")


def check_rank(fn: str, name: str, array, ranks: Sequence[int], what: str) -> None:
    if array.ndim not in ranks:
        allowed = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{fn}: `{name}` must be {allowed} {what}, got shape "
                         f"{tuple(array.shape)}")


def check_weight_extent(fn: str, name: str, shape: Sequence[int], layout: str,
                        channels: Sequence[str]) -> None:
    """torch's rules: the leading dims labelled ``channels`` and the kernel are >= 1.

    ``shape`` is a weight's full shape in ``layout``; an empty kernel would
    reach XLA as a zero-size window, no output channels give an empty result.
    """
    shape = tuple(shape)
    if min(shape[:len(channels)] + shape[2:], default=1) < 1:
        raise ValueError(f"{fn}: `{name}` (layout {layout}) must have "
                         f"{' >= 1, '.join(channels)} >= 1 and every kernel size "
                         f">= 1, got shape {shape}")


def check_bias(fn: str, bias, out_channels: int) -> None:
    if bias is None:
        return
    check_float(fn, "bias", bias)
    if tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{fn}: `bias` must have shape ({out_channels},) to match "
                         f"the output channels, got {tuple(bias.shape)}")


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


# --------------------------------------------------------------------------
# Pooling argument parsing and checks (errors name the public function).


def parse_bool(fn: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: `{name}` must be a bool, got "
                        f"{type(value).__name__} {value!r}")
    return bool(value)


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
    if allow_none and is_sequence(output_size):
        if len(output_size) != n:
            raise ValueError(f"{fn}: `output_size` must be an int or a tuple of {n} "
                             f"ints or Nones, got {tuple(output_size)!r}")
        values = tuple(size if v is None else v
                       for v, size in zip(output_size, spatial))
        return int_tuple(fn, "output_size", values, n, minimum=0)
    return int_tuple(fn, "output_size", output_size, n, minimum=0)
