"""jaxgrad: convolutional-network ops for JAX with explicit, hand-derived, differentiable VJPs.

Module map (all private; the public names are re-exported here):

  _conv/          the convolution family (its __init__ has the full map):
    _ops, _transpose, _grad   conv*, conv_transpose*, jaxgrad.grad.*
    _general                  conv_general_dilated (lax's signature)
    _core                     the one bilinear triple all of them run on
    _taps, _plan, _algorithms formulations; which one runs and why; the setting
    _spec                     ConvSpec and shape arithmetic
  _pool/          pooling: _ops (window maps, rules, N-d ops), _docs, _spec
  _linear, _activation, _loss (+ _loss_args)   the other op families
  _rules          how a rule is declared: linear_pair, bilinear, explicit,
                  add_broadcast, identity_with_backward, the cotangent epilogue
  _sharding       every sharding rule (contraction shardings, gathers)
  _args, _precision, _typing      shared argument checks; dtype and precision
                  policy; type aliases
  _variants, _ranked, _stubgen    one generator for the rank variants (conv,
                  conv1d, ..., max_pool3d, grad.*), compiled into _ranked with
                  real signatures; _ranked.pyi for IDEs
  _hooks, _function               gradient tools
  _interop        torch <-> JAX arrays
  _checking/      jaxgrad.testing, tolerances, references, ``jaxgrad check``
                  and the command line
"""

from . import grad as grad
from . import interop as interop
from . import testing as testing
from ._conv._algorithms import conv_algorithm as conv_algorithm
from ._conv._algorithms import get_conv_algorithm as get_conv_algorithm
from ._conv._algorithms import set_conv_algorithm as set_conv_algorithm
from ._ranked import conv as conv
from ._ranked import conv1d as conv1d
from ._ranked import conv2d as conv2d
from ._ranked import conv3d as conv3d
from ._ranked import conv_transpose as conv_transpose
from ._ranked import conv_transpose1d as conv_transpose1d
from ._ranked import conv_transpose2d as conv_transpose2d
from ._ranked import conv_transpose3d as conv_transpose3d
from ._conv._general import conv_general_dilated as conv_general_dilated

# --- linear, activation and loss exports ---
from ._activation import gelu as gelu
from ._activation import leaky_relu as leaky_relu
from ._activation import log_softmax as log_softmax
from ._activation import relu as relu
from ._activation import sigmoid as sigmoid
from ._activation import softmax as softmax
from ._activation import tanh as tanh
from ._linear import linear as linear
from ._loss import cross_entropy as cross_entropy
from ._loss import mse_loss as mse_loss
from ._loss import nll_loss as nll_loss
# --- pooling exports ---
from ._ranked import max_pool1d as max_pool1d
from ._ranked import max_pool2d as max_pool2d
from ._ranked import max_pool3d as max_pool3d
from ._ranked import avg_pool1d as avg_pool1d
from ._ranked import avg_pool2d as avg_pool2d
from ._ranked import avg_pool3d as avg_pool3d
from ._ranked import adaptive_max_pool1d as adaptive_max_pool1d
from ._ranked import adaptive_max_pool2d as adaptive_max_pool2d
from ._ranked import adaptive_max_pool3d as adaptive_max_pool3d
from ._ranked import adaptive_avg_pool1d as adaptive_avg_pool1d
from ._ranked import adaptive_avg_pool2d as adaptive_avg_pool2d
from ._ranked import adaptive_avg_pool3d as adaptive_avg_pool3d
# --- gradient tool exports ---
from ._function import Function as Function
from ._function import FunctionCtx as FunctionCtx
from ._hooks import hook as hook
from ._hooks import print_grad as print_grad
from ._hooks import reverse_grad as reverse_grad
from ._hooks import scale_grad as scale_grad

__all__ = [
    "conv", "conv1d", "conv2d", "conv3d",
    "conv_transpose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_general_dilated",
    "conv_algorithm", "get_conv_algorithm", "set_conv_algorithm",
    "grad",
    "interop", "testing",
    # --- linear, activation and loss names ---
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
    "mse_loss", "nll_loss", "cross_entropy",
    # --- pooling names ---
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    # --- gradient tool names ---
    "Function", "FunctionCtx", "hook", "print_grad", "reverse_grad", "scale_grad",
]
__version__ = "0.1.0"
