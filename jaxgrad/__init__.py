"""jaxgrad: convolutional-network ops for JAX with explicit, hand-derived, differentiable VJPs.

Module map (all private; the public names are re-exported here):

  _conv/          the convolution family (its __init__ has the full map):
    _ops, _transpose, _grad   conv*, conv_transpose*, jaxgrad.grad.*
    _general                  conv_general_dilated (lax's signature)
    _core                     the one bilinear triple all of them run on
    _taps, _plan, _autotune,  formulations; which one runs and why (or which
    _algorithms, _tuned       measured); the setting; autotune_jit (a whole
                              jitted function timed per formulation)
    _spec                     ConvSpec and shape arithmetic
  _pool/          pooling: _ops (window maps, rules, N-d ops), _docs, _spec
  _loss/          losses: _regression, _binary, _kl, _classes (nll, cross
                  entropy), _common (reductions, scales), _args (checks)
  _linear, _activation            linear layers, activations and softmax
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
  _dropout, _pad, _pixel_shuffle  dropout (explicit jax.random key), F.pad
                  (also the convolutions' padding_mode), pixel (un)shuffle
  _params         torch state_dict <-> JAX params dict (jaxgrad.interop)
  _tap            tap: name a layer output for check_model_parity
  _interpolate, _fold             interpolate (separable resampling tables);
                  unfold / fold (im2col and its adjoint col2im)
  _norm           batch_norm, instance_norm, group_norm, layer_norm (one
                  normalisation rule) and the running-statistics updates
  _checking/      jaxgrad.testing, tolerances, references, ``jaxgrad check``
                  and the command line
"""

from . import grad as grad
from . import interop as interop
from . import testing as testing
from ._conv._algorithms import conv_algorithm as conv_algorithm
from ._conv._algorithms import get_conv_algorithm as get_conv_algorithm
from ._conv._algorithms import set_conv_algorithm as set_conv_algorithm
from ._conv._tuned import autotune_jit as autotune_jit
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
from ._loss import binary_cross_entropy as binary_cross_entropy
from ._loss import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._loss import cross_entropy as cross_entropy
from ._loss import huber_loss as huber_loss
from ._loss import kl_div as kl_div
from ._loss import l1_loss as l1_loss
from ._loss import mse_loss as mse_loss
from ._loss import nll_loss as nll_loss
from ._loss import smooth_l1_loss as smooth_l1_loss
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
# --- dropout, pad, pixel shuffle, relu6/hardtanh exports ---
from ._activation import hardtanh as hardtanh
from ._activation import relu6 as relu6
# --- activations of newer CNNs ---
from ._activation import celu as celu
from ._activation import elu as elu
from ._activation import hardsigmoid as hardsigmoid
from ._activation import hardswish as hardswish
from ._activation import logsigmoid as logsigmoid
from ._activation import mish as mish
from ._activation import prelu as prelu
from ._activation import selu as selu
from ._activation import silu as silu
from ._activation import softplus as softplus
from ._dropout import alpha_dropout as alpha_dropout
from ._dropout import dropout as dropout
from ._dropout import dropout1d as dropout1d
from ._dropout import dropout2d as dropout2d
from ._dropout import dropout3d as dropout3d
from ._dropout import feature_alpha_dropout as feature_alpha_dropout
from ._pad import pad as pad
from ._pixel_shuffle import pixel_shuffle as pixel_shuffle
from ._pixel_shuffle import pixel_unshuffle as pixel_unshuffle
# --- model parity exports ---
from ._tap import tap as tap
# --- interpolation and fold exports ---
from ._fold import fold as fold
from ._fold import unfold as unfold
from ._interpolate import interpolate as interpolate
from ._interpolate import upsample as upsample
from ._interpolate import upsample_bilinear as upsample_bilinear
from ._interpolate import upsample_nearest as upsample_nearest
# --- normalisation exports ---
from ._norm import BatchNormStats as BatchNormStats
from ._norm import batch_norm as batch_norm
from ._norm import batch_norm_stats as batch_norm_stats
from ._norm import group_norm as group_norm
from ._norm import instance_norm as instance_norm
from ._norm import instance_norm_stats as instance_norm_stats
from ._norm import layer_norm as layer_norm

__all__ = [
    "conv", "conv1d", "conv2d", "conv3d",
    "conv_transpose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_general_dilated",
    "conv_algorithm", "get_conv_algorithm", "set_conv_algorithm", "autotune_jit",
    "grad",
    "interop", "testing",
    # --- linear, activation and loss names ---
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
    "mse_loss", "nll_loss", "cross_entropy", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    # --- pooling names ---
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    # --- gradient tool names ---
    "Function", "FunctionCtx", "hook", "print_grad", "reverse_grad", "scale_grad",
    # --- dropout, pad, pixel shuffle, relu6/hardtanh names ---
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "relu6", "hardtanh", "pad", "pixel_shuffle",
    "pixel_unshuffle",
    # --- activations of newer CNNs ---
    "silu", "mish", "softplus", "logsigmoid", "hardsigmoid", "hardswish", "elu", "celu",
    "selu", "prelu",
    # --- model parity names ---
    "tap",
    # --- interpolation and fold names ---
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "unfold", "fold",
    # --- normalisation names ---
    "batch_norm", "batch_norm_stats", "BatchNormStats", "instance_norm",
    "instance_norm_stats", "group_norm", "layer_norm",
]
__version__ = "0.1.0"
