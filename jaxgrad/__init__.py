"""jaxgrad: convolutional-network ops for JAX with explicit, hand-derived, differentiable VJPs."""

from . import grad as grad
from ._conv import conv as conv
from ._conv import conv1d as conv1d
from ._conv import conv2d as conv2d
from ._conv import conv3d as conv3d
from ._conv_transpose import conv_transpose as conv_transpose
from ._conv_transpose import conv_transpose1d as conv_transpose1d
from ._conv_transpose import conv_transpose2d as conv_transpose2d
from ._conv_transpose import conv_transpose3d as conv_transpose3d

# --- linear, activation and loss exports ---
# --- pooling exports ---
# --- gradient tool exports ---

__all__ = [
    "conv", "conv1d", "conv2d", "conv3d",
    "conv_transpose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "grad",
    # --- linear, activation and loss names ---
    # --- pooling names ---
    # --- gradient tool names ---
]
__version__ = "0.1.0"
