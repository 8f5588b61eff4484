"""Analytic floating-point operation counts (pure integer arithmetic).

A multiply-add counts as 2 FLOPs. Counts are of the dense computation every
implementation performs, not of what a particular kernel happens to run
(``cost_analysis`` reports the latter, nominally), so GFLOP/s figures are
comparable across implementations and frameworks.

Notation: batch N, channels C_in / C_out, groups G, kernel K (per spatial dim),
input size I and output size O (per spatial dim); Π is the product over the
spatial dims.

  convolution forward            2·N·C_out·(C_in/G)·ΠK·ΠO
  transposed convolution         2·N·C_in·(C_out/G)·ΠK·ΠI   (I: its input size)
  input gradient, weight gradient  each the same count as the forward
  bias gradient                  not counted (no benchmark case has a bias; it
                                 would add N·C_out·ΠO additions, < 1% here)

Both convolution counts include the products with padding zeros, and the
transposed count includes the products that land in the cropped border
(``padding``): they are part of the dense computation as written.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence


def conv_flops(batch: int, in_channels: int, out_channels: int, groups: int,
               kernel: Sequence[int], out_spatial: Sequence[int]) -> int:
    """2·N·C_out·(C_in/G)·ΠK·ΠO: the forward of ``F.convNd``.

    >>> conv_flops(1, 3, 64, 1, (7, 7), (112, 112))  # ResNet-50's stem
    236027904
    """
    return (2 * batch * out_channels * (in_channels // groups)
            * math.prod(kernel) * math.prod(out_spatial))


def conv_transpose_flops(batch: int, in_channels: int, out_channels: int,
                         groups: int, kernel: Sequence[int],
                         in_spatial: Sequence[int]) -> int:
    """2·N·C_in·(C_out/G)·ΠK·ΠI: the forward of ``F.conv_transposeNd``.

    Every input element meets every kernel tap of its group once: the count of
    the convolution whose input gradient this is.

    >>> conv_transpose_flops(1, 2, 3, 1, (2, 2), (4, 4))
    768
    """
    return (2 * batch * in_channels * (out_channels // groups)
            * math.prod(kernel) * math.prod(in_spatial))


def matmul_flops(m: int, n: int, k: int) -> int:
    """2·m·n·k for an (m, k) @ (k, n) product.

    >>> matmul_flops(2048, 2048, 2048)
    17179869184
    """
    return 2 * m * n * k


@dataclasses.dataclass(frozen=True)
class Flops:
    """FLOPs of the three timed computations of one case.

    Attributes:
      forward: the forward pass.
      backward: the input gradient and every weight gradient, 2 × forward.
      value_and_grad: forward and backward together, 3 × forward.
    """

    forward: int
    backward: int
    value_and_grad: int


def training_flops(forward: int) -> Flops:
    """The counts of the three timed computations from the forward's count.

    >>> training_flops(10)
    Flops(forward=10, backward=20, value_and_grad=30)
    """
    return Flops(forward, 2 * forward, 3 * forward)
