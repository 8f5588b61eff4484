"""Argument normalisation and shape arithmetic of the convolution family.

Everything here works on Python ints and tuples, never on arrays, so it runs at
trace time and is tested without JAX. PyTorch-style arguments (ints, tuples,
``"same"``) are turned into one frozen :class:`ConvSpec` at the public
boundary; the core (``_core``) only ever sees a spec.

Notation (per spatial dimension), used throughout the package:
  I   input size             K   kernel size          s   stride
  d   kernel dilation        K'  = d(K-1)+1 (effective kernel)
  a   lhs (input) dilation
  lo, hi  zero padding before / after the input
  O   output size = floor((I + lo + hi - K') / s) + 1
  r   leftover = (I + lo + hi - K') mod s: trailing input rows no window reaches
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .._args import _as_int, check_float, check_static, int_tuple, is_sequence
from .._precision import HIGHEST, PrecisionPair

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


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
    """O per spatial dim, of the input dilated by spec's input dilation a
    (I becomes (I-1)·a + 1; PyTorch's geometry has a = 1)."""
    return tuple(
        conv_output_size(i and (i - 1) * a + 1, k, s, p, d)
        for i, k, s, p, d, a in zip(spatial, kernel, spec.stride, spec.padding,
                                    spec.dilation, spec.input_dilation))


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


def swapped_weight_grad_padding(in_spatial, out_spatial, kernel, spec: ConvSpec):
    """Pads (L, H) = ((K-1)·d - lo, I - (P-1)·s - 1 + lo) of the cotangent in the
    weight gradient with its operands swapped (``_core._swapped_weight_grad``;
    PyTorch's geometry: no lhs dilation)."""
    return tuple(((k - 1) * d - lo, i - (o - 1) * s - 1 + lo) for i, o, k, s, d, (lo, _)
                 in zip(in_spatial, out_spatial, kernel, spec.stride, spec.dilation,
                        spec.padding))


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


def parse_padding(fn: str, padding, n: int, kernel: Sequence[int],
                  stride: Sequence[int], dilation: Sequence[int]
                  ) -> tuple[tuple[int, int], ...]:
    """torch-style ``padding`` -> ``((lo, hi), ...)``.

    Accepts an int, a tuple of ``n`` ints (symmetric), a tuple of ``n`` (lo, hi)
    pairs, ``"valid"`` and ``"same"`` (stride 1 only, odd extra on the high side).
    """
    check_static(fn, "padding", padding, "an int, a tuple, 'valid' or 'same'")
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
    check_static(fn, "padding_mode", padding_mode, f"one of {PADDING_MODES}")
    # isinstance first: `in` would compare an array elementwise
    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(f"{fn}: `padding_mode` must be one of {PADDING_MODES}, "
                         f"got {padding_mode!r}")
    return padding_mode


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
    given = "" if in_name == "input" else f", given by `{in_name}`"
    if in_channels % groups:
        raise ValueError(f"{fn}: `groups` (={groups}) must divide the input "
                         f"channels (={in_channels}{given})")
    if out_channels % groups:
        raise ValueError(f"{fn}: `groups` (={groups}) must divide the output "
                         f"channels (={out_channels})")
    if weight_in * groups != in_channels:
        raise ValueError(
            f"{fn}: `{weight_name}` expects {weight_in} channels per group x {groups} "
            f"groups = {weight_in * groups} input channels, but `{in_name}` "
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
    check_float(fn, "bias", bias, complex_ok=True, int_ok=True)
    if tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{fn}: `bias` must have shape ({out_channels},) to match "
                         f"the output channels, got {tuple(bias.shape)}")
