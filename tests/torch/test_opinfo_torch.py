"""PyTorch's own OpInfo samples (``op_db``, float64) for the ops whose other
torch tests use grids of their own: pools with adaptive bins, ``max_pool1d``,
the activations and the losses. Each op's distinct samples run in one jitted
program: outputs, the VJP w.r.t. every tensor torch differentiates (inputs,
weights, probability targets) and reverse-over-reverse second order, against
torch autograd. Integer targets and other tensors without ``requires_grad``
are constants on both sides.

The OpInfo samples of the convolutions, norms, pads, interpolation, fold,
pixel shuffle, dropout and the other pools are run beside those ops' grids.
"""

from __future__ import annotations

import pytest
import torch.nn.functional as F

import jaxgrad

from ._opinfo import check_samples, distinct_samples, samples

# (op_db name, jaxgrad function, torch function, every n-th distinct sample)
OPS = [
    *[(f"nn.functional.adaptive_{kind}_pool{n}d", getattr(jaxgrad, f"adaptive_{kind}_pool{n}d"),
       getattr(F, f"adaptive_{kind}_pool{n}d"), 1) for kind in ("avg", "max") for n in (1, 2, 3)],
    # 864 samples (kernel, stride, padding, dilation, ceil_mode products): a
    # fixed stride through them keeps every option value and ~70 of the combinations
    ("nn.functional.max_pool1d", jaxgrad.max_pool1d, F.max_pool1d, 11),
    ("nn.functional.relu", jaxgrad.relu, F.relu, 1),
    ("nn.functional.leaky_relu", jaxgrad.leaky_relu, F.leaky_relu, 1),
    ("nn.functional.gelu", jaxgrad.gelu, F.gelu, 1),
    ("sigmoid", jaxgrad.sigmoid, F.sigmoid, 1),
    ("tanh", jaxgrad.tanh, F.tanh, 1),
    ("softmax", jaxgrad.softmax, F.softmax, 1),
    ("log_softmax", jaxgrad.log_softmax, F.log_softmax, 1),
    ("nn.functional.mse_loss", jaxgrad.mse_loss, F.mse_loss, 1),
    ("nn.functional.nll_loss", jaxgrad.nll_loss, F.nll_loss, 1),
    ("nn.functional.cross_entropy", jaxgrad.cross_entropy, F.cross_entropy, 1),
    *[(f"nn.functional.{name}", getattr(jaxgrad, name), getattr(F, name), 1)
      for name in ("silu", "mish", "softplus", "logsigmoid", "hardsigmoid", "hardswish",
                   "elu", "celu", "selu", "prelu", "l1_loss", "smooth_l1_loss",
                   "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                   "kl_div")],
]
# torch does not differentiate hardsigmoid twice
FIRST_ORDER_ONLY = ("nn.functional.hardsigmoid",)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")   # kl_div
@pytest.mark.parametrize("name, ours, theirs, every", OPS, ids=[op[0] for op in OPS])
def test_opinfo_samples(name, ours, theirs, every):
    cases = distinct_samples(name)[::every]
    assert cases, name
    check_samples(f"op_db {name}", ours, theirs, cases,
                  second_order=name not in FIRST_ORDER_ONLY)


def test_max_pool1d_stride_keeps_every_option():
    # the subsample above still holds each value of each option the full set has
    every = {}
    for sample in samples("nn.functional.max_pool1d")[1]:
        for k, v in sample.kwargs.items():
            every.setdefault(k, set()).add(repr(v))
    kept = {}
    for sample in distinct_samples("nn.functional.max_pool1d")[::11]:
        for k, v in sample.kwargs.items():
            kept.setdefault(k, set()).add(repr(v))
    assert kept == every
