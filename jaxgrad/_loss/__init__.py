"""Losses with PyTorch's semantics and explicit, twice-differentiable VJPs.

  _regression   mse_loss, l1_loss, smooth_l1_loss, huber_loss
                e = ρ(x - t) (d², |d| and its smoothed forms), optionally
                weighted; l1_loss of complex arguments too
  _binary       binary_cross_entropy(_with_logits): e = w·ρ(x, t), a pointwise
                loss of two arguments, with pos_weight for logits
  _kl           kl_div: xlogy(p, p) - p·x, or e^t·(t - x) with log_target
  _classes      nll_loss(x, t): ℓ_i = -w_{t_i}·x[i, t_i] (log-probabilities x);
                cross_entropy(x, t): nll_loss(log_softmax(x, 1), t), with label
                smoothing, or ℓ_i = -Σ_c w_c q̃[i, c]·log_softmax(x)[i, c] for
                class-probability targets q
  _common       reductions, scales, upcasts, the constant-weight guard
  _args         the argument checks

Reductions follow torch exactly: "none" keeps the per-element loss, "sum" adds
it up, "mean" divides by a normaliser that differs between the losses (the
number of elements; the summed weight of the non-ignored class-index targets;
the summed `weight` of mse_loss and l1_loss; N for kl_div's "batchmean"). An
empty input's "mean" is NaN (0/0) with gradient 0, as in torch. Each module
derives its rules beside the code; every rule that runs is written out here or
in ``_activation``. Half-precision arrays are computed in float32 and cast
back.
"""

from ._binary import binary_cross_entropy as binary_cross_entropy
from ._binary import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._classes import cross_entropy as cross_entropy
from ._classes import nll_loss as nll_loss
from ._kl import kl_div as kl_div
from ._regression import huber_loss as huber_loss
from ._regression import l1_loss as l1_loss
from ._regression import mse_loss as mse_loss
from ._regression import smooth_l1_loss as smooth_l1_loss
