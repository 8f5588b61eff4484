"""How a convolution runs: one function decides, one table holds the numbers.

A convolution of the family (``_conv._core``) has three bilinear maps, and each
can be computed in more than one way; every way is an explicit formula of the
same sums (``docs/derivations.md``):

  forward       "lax"            one ``lax.conv_general_dilated``
                "per_group"      G dense convolutions, concatenated on channels
  input grad    "transpose"      the textbook rule: one transposed convolution
                "transpose_per_group"   the same as G dense pieces
                "taps"           a sum over kernel taps (``_taps``)
  weight grad   "transpose"      the textbook rule: one convolution with batch
                                 and channels swapped (``batch_group_count``)
                "transpose_per_group"   the same as G dense pieces
                "taps"

:func:`plan` returns the three choices of one call, each with its reason, from
the backend, the shapes, the dtype, the :class:`ConvSpec` (which carries the
user's ``algorithm``) and the :class:`Placement` of the operands, without
running anything; the kernels ask the same functions at trace time. Every
number it uses is a row of :data:`THRESHOLDS`, and every rule that works
around an XLA behaviour is a row of :data:`WORKAROUNDS`, naming the behaviour
and the jaxlib version it was seen on. A plan is a frozen, hashable record, so
a later measured choice (autotuning) can be cached and replayed as one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import numpy as np

from ._spec import ConvSpec

# --------------------------------------------------------------------------
# The table. Each threshold: its value, what it decides, where it was measured.


@dataclasses.dataclass(frozen=True)
class Threshold:
    value: int
    decides: str
    measured: str


THRESHOLDS = {
    "taps_max_elements": Threshold(
        1 << 27,
        "largest taps buffer (N·C_in·ΠK·ΠO elements) for which 'auto' picks taps; "
        "above it the textbook rule needs no such buffer",
        "2-core Zen3 CPU, jaxlib 0.10.2 (docs/performance.md)"),
    "short_patch_row": Threshold(
        128,
        "dense weight gradients with C_in·ΠK below this keep the textbook rule "
        "(the taps GEMM is too short to pay: WaveNet stack 1.3-1.8x slower)",
        "2-core Zen3 CPU, jaxlib 0.10.2, bench wavenet-1d-stack"),
    "cpu_split_max_groups": Threshold(
        32,
        "largest G for which a grouped conv (1 < G < C_in) is split into G dense "
        "ones on CPU (each piece is one more convolution to compile)",
        "2-core Zen3 CPU, jaxlib 0.10.2: ResNeXt G=32 forward 16.2 -> 8.5 ms"),
}
TAPS_MAX_ELEMENTS = THRESHOLDS["taps_max_elements"].value


@dataclasses.dataclass(frozen=True)
class Workaround:
    behaviour: str
    jaxlib: str
    remedy: str


WORKAROUNDS = {
    "grouped_batch_all_gather": Workaround(
        "the SPMD partitioner all-gathers the whole batch of a conv with "
        "1 < feature_group_count < C_in (autodiff: one all-gather in the forward, "
        "one in the input gradient)",
        "0.10.2",
        "where the batch may be split, the grouped conv runs as G dense ones"),
    "multi_axis_batch_group": Workaround(
        "a batch_group_count convolution is computed wrong on a mesh of several "
        "axes when the batch is split over some of them only",
        "0.10.2",
        "on such meshes the grouped weight gradient runs as G dense ones"),
    "cpu_slow_grouped": Workaround(
        "CPU runs a conv with 1 < G < C_in at about the dense cost, and a grouped "
        "weight gradient (batch_group_count) at G times it",
        "0.10.2",
        "split into G dense convs on CPU up to cpu_split_max_groups (not under a "
        "mesh, where G all-reduces would replace one)"),
    "cpu_f64_depthwise_nan_leak": Workaround(
        "CPU runs a float64 depthwise conv as a dense one with a zero-masked "
        "kernel, so 0·NaN carries one channel's NaN into every channel",
        "0.10.2",
        "float64 depthwise convolutions on CPU run per group"),
    "explicit_axes_reshape": Workaround(
        "arrays typed with explicit mesh axes reject the reshapes of the taps "
        "formulation (a batch-split (N, C, *O) cannot be regrouped without naming "
        "the result's sharding)",
        "0.10.2",
        "explicitly placed operands get the textbook rules, which name it"),
}

# --------------------------------------------------------------------------
# Placement: what the partitioner will do with the operands, read off their
# types at trace time (and off ``jax.set_mesh``).


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the operands live, as far as the choices care.

    Attributes:
      explicit_axes: an operand is typed with explicit mesh axes.
      batch_split_explicitly: the first operand's batch is split on explicit axes.
      auto_mesh: a mesh with Auto axes of more than one device is in effect
        (Auto types do not say which dims are split, so any such mesh counts).
      any_mesh: any visible mesh has an axis of more than one device.
      several_axes: a visible mesh has more than one axis of size > 1.
    """

    explicit_axes: bool = False
    batch_split_explicitly: bool = False
    auto_mesh: bool = False
    any_mesh: bool = False
    several_axes: bool = False

    @classmethod
    def of(cls, *operands) -> Placement:
        """The placement of ``operands`` (arrays, tracers or ShapeDtypeStructs).

        The meshes seen are the operands' types' and ``jax.set_mesh``'s; the
        uncommitted arguments of ``jax.jit(f, in_shardings=...)`` outside
        ``jax.set_mesh`` name no mesh, and count as unplaced.
        """
        types = [jax.typeof(a) if not isinstance(a, jax.ShapeDtypeStruct) else a
                 for a in operands]
        shardings = [t.sharding for t in types if getattr(t, "sharding", None) is not None]
        meshes = [s.mesh for s in shardings] + [jax.sharding.get_abstract_mesh()]
        first = shardings[0] if shardings else None
        return cls(
            explicit_axes=any(bool(s.mesh.explicit_axes) for s in shardings),
            batch_split_explicitly=bool(
                first is not None and first.mesh.explicit_axes
                and len(first.spec) > 0 and first.spec[0] is not None),
            auto_mesh=any(m.shape[a] > 1 for m in meshes for a in m.auto_axes),
            any_mesh=any(size > 1 for m in meshes for size in m.shape.values()),
            several_axes=any(sum(size > 1 for size in m.shape.values()) > 1
                             for m in meshes))


UNPLACED = Placement()

# --------------------------------------------------------------------------
# The choices.


@dataclasses.dataclass(frozen=True)
class Choice:
    formulation: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """The formulation of each map of one convolution, with the reasons."""
    forward: Choice
    input_grad: Choice
    weight_grad: Choice

    def __str__(self) -> str:
        return "\n".join(f"{name}: {c.formulation} ({c.reason})" for name, c in (
            ("forward", self.forward), ("input grad", self.input_grad),
            ("weight grad", self.weight_grad)))


def _cpu(backend: str | None) -> bool:
    return (backend or jax.default_backend()) == "cpu"


def split_groups(groups: int, channels: int, dtype, placement: Placement,
                 backend: str | None = None) -> Choice:
    """Whether a convolution with ``feature_group_count=groups`` over ``channels``
    input channels runs as one ("lax") or as G dense ones ("per_group")."""
    partial = 1 < groups < channels
    if partial and (placement.batch_split_explicitly or placement.auto_mesh):
        return Choice("per_group", "grouped_batch_all_gather")
    if partial and groups <= THRESHOLDS["cpu_split_max_groups"].value and _cpu(backend):
        return Choice("per_group", "cpu_slow_grouped")
    if 1 < groups == channels and np.dtype(dtype) == np.float64 and _cpu(backend):
        return Choice("per_group", "cpu_f64_depthwise_nan_leak")
    return Choice("lax", "one convolution")


def _tiled(spec: ConvSpec, kernel: Sequence[int]) -> bool:
    return all(s == k and d == 1 for s, k, d in zip(spec.stride, kernel, spec.dilation))


def choose(kind: str, spec: ConvSpec, x_shape, w_shape, g_shape, *arrays,
           placement: Placement | None = None, backend: str | None = None) -> str:
    """The formulation, "transpose" or "taps", of one gradient (``kind`` "input"
    or "weight"); see :func:`gradient_choice` for the reason."""
    if placement is None:
        placement = Placement.of(*arrays) if arrays else UNPLACED
    return gradient_choice(kind, spec, x_shape, w_shape, g_shape, placement,
                           backend).formulation


def gradient_choice(kind: str, spec: ConvSpec, x_shape, w_shape, g_shape,
                    placement: Placement, backend: str | None = None) -> Choice:
    """"transpose" or "taps" for one gradient, with the reason.

    "auto", measured on a 2-core CPU (docs/performance.md has the table):
    taps wins every grouped and depthwise gradient by 3-200x (XLA CPU runs a
    grouped weight gradient at G times the dense work and depthwise input
    gradients through its slow grouped path); 1x1 and stride-equals-kernel
    ("tiled") convolutions are single GEMMs; dense gradients are 1-2.5x
    faster as taps, strided input gradients summed per phase. Exceptions: a
    strided, non-tiled dense weight gradient with P < C_in·ΠK/2 positions per
    sample (the strided slices cost more than the short GEMM saves), and dense
    weight gradients with short patch rows (``short_patch_row``). Input
    gradients stay on taps: XLA's transposed convolution multiplies the zero
    padding of g by every kernel tap, so one NaN tap turns every row NaN,
    while taps (like torch's col2im) adds it only to the rows it reaches.
    Elsewhere than on CPU nothing is set from measurements yet ("transpose").
    """
    if not spec.torch_geometry:
        return Choice("transpose", "taps needs PyTorch's geometry")
    if placement.explicit_axes:
        return Choice("transpose", "explicit_axes_reshape")
    if spec.algorithm != "auto":
        return Choice(spec.algorithm, "asked for")
    if not _cpu(backend):
        return Choice("transpose", "not measured on this backend")
    n, c_in = x_shape[:2]
    kernel = tuple(w_shape[2:])
    taps = math.prod(kernel)
    positions = math.prod(g_shape[2:])
    if n * c_in * taps * positions > TAPS_MAX_ELEMENTS:
        return Choice("transpose", "taps_max_elements")
    if spec.groups == 1 and taps > 1 and not _tiled(spec, kernel) and kind == "weight":
        if any(s > 1 for s in spec.stride) and 2 * positions < c_in * taps:
            return Choice("transpose", "short strided GEMM (P < C_in·K/2)")
        if c_in * taps < THRESHOLDS["short_patch_row"].value:
            return Choice("transpose", "short_patch_row")
    return Choice("taps", "cpu measured")


def weight_split(spec: ConvSpec, channels: int, placement: Placement,
                 backend: str | None = None) -> Choice:
    """Whether the textbook weight gradient runs as one batch-grouped conv or
    as G dense ones."""
    if spec.groups > 1 and placement.several_axes:
        return Choice("transpose_per_group", "multi_axis_batch_group")
    if (1 < spec.groups < channels and spec.groups
            <= THRESHOLDS["cpu_split_max_groups"].value and _cpu(backend)
            and not placement.any_mesh):
        return Choice("transpose_per_group", "cpu_slow_grouped")
    return Choice("transpose", "one convolution")


def plan(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
         g_shape: Sequence[int], dtype, placement: Placement = UNPLACED,
         backend: str | None = None) -> Plan:
    """The formulations of ``conv_core(x, w, spec)`` and its two gradients.

    Args:
      spec: the convolution (its ``algorithm`` is the user's choice).
      x_shape, w_shape, g_shape: (N, C_in, *I), (C_out, C_in/G, *K), (N, C_out, *O).
      dtype: the operands' dtype.
      placement: of the operands (``Placement.of(x, w)``); unplaced by default.
      backend: "cpu", "gpu", "tpu"; default ``jax.default_backend()``.
    """
    c_in, c_out = x_shape[1], g_shape[1]
    forward = split_groups(spec.groups, c_in, dtype, placement, backend)
    input_grad = gradient_choice("input", spec, x_shape, w_shape, g_shape, placement,
                                 backend)
    if input_grad.formulation == "transpose":
        split = split_groups(spec.groups, c_out, dtype, placement, backend)
        if split.formulation == "per_group":
            input_grad = Choice("transpose_per_group", f"{input_grad.reason}; {split.reason}")
    weight_grad = gradient_choice("weight", spec, x_shape, w_shape, g_shape, placement,
                                  backend)
    if weight_grad.formulation == "transpose":
        split = weight_split(spec, c_in, placement, backend)
        if split.formulation == "transpose_per_group":
            weight_grad = Choice(split.formulation, f"{weight_grad.reason}; {split.reason}")
    return Plan(forward, input_grad, weight_grad)
