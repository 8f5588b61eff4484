"""Explicit convolution gradients as public functions, mirroring ``torch.nn.grad``.

Each function returns one VJP of a convolution as a formula you can call and
compose (e.g. ∇ₓ ½‖k⋆x−y‖² = ``conv2d_input(x.shape, k, conv2d(x, k) - y)``),
and each is itself differentiable with explicit rules: the VJP of an input
gradient is a convolution and a weight gradient, and so on (see
``jaxgrad/_conv/_core.py``).

  conv{1,2,3}d_input / conv_input                      (∂y/∂x)ᵀ ḡ
  conv{1,2,3}d_weight / conv_weight                    (∂y/∂w)ᵀ ḡ
  conv_transpose{1,2,3}d_input / conv_transpose_input  the same for y = conv_transpose(x, w)
  conv_transpose{1,2,3}d_weight / conv_transpose_weight

``input_size`` and ``weight_size`` are full shapes, as in torch; the input
size settles the leftover rows that a strided convolution never reads.
"""

from ._ranked import conv_input as conv_input
from ._ranked import conv1d_input as conv1d_input
from ._ranked import conv2d_input as conv2d_input
from ._ranked import conv3d_input as conv3d_input
from ._ranked import conv_weight as conv_weight
from ._ranked import conv1d_weight as conv1d_weight
from ._ranked import conv2d_weight as conv2d_weight
from ._ranked import conv3d_weight as conv3d_weight
from ._ranked import conv_transpose_input as conv_transpose_input
from ._ranked import conv_transpose1d_input as conv_transpose1d_input
from ._ranked import conv_transpose2d_input as conv_transpose2d_input
from ._ranked import conv_transpose3d_input as conv_transpose3d_input
from ._ranked import conv_transpose_weight as conv_transpose_weight
from ._ranked import conv_transpose1d_weight as conv_transpose1d_weight
from ._ranked import conv_transpose2d_weight as conv_transpose2d_weight
from ._ranked import conv_transpose3d_weight as conv_transpose3d_weight

__all__ = [
    "conv_input", "conv1d_input", "conv2d_input", "conv3d_input",
    "conv_weight", "conv1d_weight", "conv2d_weight", "conv3d_weight",
    "conv_transpose_input", "conv_transpose1d_input", "conv_transpose2d_input",
    "conv_transpose3d_input",
    "conv_transpose_weight", "conv_transpose1d_weight", "conv_transpose2d_weight",
    "conv_transpose3d_weight",
]
