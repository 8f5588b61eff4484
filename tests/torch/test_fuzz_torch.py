"""Property-based parity with PyTorch: random valid configurations of every op.

Hypothesis draws configurations (``_strategies``) that the hand-picked grids
of the other ``test_*_torch.py`` files did not think of; each is compared
with torch in float64 to ``_tolerance.RTOL['float64']``: the output, the VJP
w.r.t. every differentiable argument for a random cotangent, and the gradient
of L2 = Σ_i ⟨ā_i, u_i⟩ w.r.t. every argument and the cotangent (second
order), one jitted program per example.

Profiles (``tests/conftest.py``): ``ci`` by default, derandomised, a few
examples per test, weighted by compile cost (``_strategies.fuzz``);
``JAXGRAD_FUZZ=long`` draws 40x as many, freshly random.

Deviations from torch are not drawn (see the strategies and the comments
here): max-pooling windows made only of padding (torch: -inf and a bogus
index; jaxgrad raises), out-of-range class indices (torch raises at run
time; jaxgrad gives NaN), avg_pool3d inputs smaller than the kernel (torch's
avg_pool3d alone raises), ``ignore_index`` with probability targets (torch
raises; jaxgrad ignores it), the interpolations where torch's CPU kernels
disagree with themselves (``torch_interpolate_deviates``). Convolutions get normal inputs: non-finite
values are tested in ``test_special_values_torch.py``; pooling inputs include
ties, NaN and -inf. A failure found here becomes an explicit case in
``test_fuzz_regressions_torch.py``.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import assume, given

import jaxgrad

from ._parity import check_parity, check_values
from ._strategies import (adaptive_pool_configs, avg_pool_configs, conv_configs,
                          conv_transpose_configs, elementwise_configs, fuzz,
                          grad_configs, interpolate_configs, linear_configs,
                          loss_configs, max_pool_configs, softmax_configs)
from .test_conv_torch import run_conv
from .test_conv_transpose_torch import run_conv_transpose
from .test_grad_torch import run_grad
from .test_loss_torch import all_reductions, class_weight, index_target
from .test_pool_torch import make_input

# --------------------------------------------------------------------------
# Convolutions and their gradient functions.


@fuzz(1.2)
@given(config=conv_configs())
def test_conv_fuzz(config):
    run_conv(f"fuzz {config}", config.x_shape, config.w_shape, config.bias,
             config.kwargs, generic=config.generic)


@fuzz(1.0)
@given(config=conv_transpose_configs())
def test_conv_transpose_fuzz(config):
    run_conv_transpose(f"fuzz {config}", config.x_shape, config.w_shape, config.bias,
                       config.kwargs, generic=config.generic)


@fuzz(1.0)
@given(config=grad_configs())
def test_grad_functions_fuzz(config):
    conv = config.conv
    run_grad(f"fuzz {config}", config.kind, conv.x_shape, conv.w_shape, conv.kwargs,
             generic=conv.generic)


# --------------------------------------------------------------------------
# Pooling, on inputs with ties, constants, NaN and -inf (see make_input).


def run_pool(config) -> None:
    x = make_input(config.kind, config.shape, config.seed)
    ours = functools.partial(getattr(jaxgrad, config.op), **config.kwargs)
    theirs = functools.partial(getattr(F, config.op), **config.kwargs)
    check_values(f"fuzz {config}", ours, theirs, {"x": x}, seed=config.seed)
    if "max" in config.op:   # the picks themselves: torch's flat index, exactly
        _, index = ours(jnp.asarray(x), return_indices=True)
        _, expected = theirs(torch.tensor(x), return_indices=True)
        np.testing.assert_array_equal(index, expected.numpy(), err_msg=str(config))


@fuzz(1.0)
@given(config=max_pool_configs())
def test_max_pool_fuzz(config):
    run_pool(config)


@fuzz(1.5)
@given(config=avg_pool_configs())
def test_avg_pool_fuzz(config):
    run_pool(config)


@fuzz(1.0)
@given(config=adaptive_pool_configs())
def test_adaptive_pool_fuzz(config):
    run_pool(config)


# --------------------------------------------------------------------------
# Activations.

TORCH_ACTIVATION = {"relu": F.relu, "leaky_relu": F.leaky_relu,
                    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
                    "softmax": F.softmax, "log_softmax": F.log_softmax,
                    **{name: getattr(F, name) for name in (
                        "silu", "mish", "softplus", "logsigmoid", "hardsigmoid",
                        "hardswish", "elu", "celu", "selu")}}
# torch does not differentiate these twice
FIRST_ORDER_ONLY = ("hardsigmoid",)


def value_input(kind: str, shape, seed: int) -> np.ndarray:
    """Activation inputs of one kind.

    normal; ties (small integers: exact zeros and equal values); wide (x 30:
    saturated sigmoid / tanh / gelu, the first entry left at unit scale);
    offset (x 3 + 1000: softmax must subtract its max not to overflow).

    Saturated gradients are tiny and carry the rounding of a cancellation
    in torch's rules and ours alike: 1 - tanh²(10) ~ 1e-9 is computed as
    1 - y² to ~1e-16; gelu(tanh)'s 1 + tanh(z) at x = -6.5 is ~1e-13 and
    both lose 3-4 digits there. The unit entry sets the scale that the
    error is measured against (it is relative to the largest value).
    """
    rng = np.random.default_rng(seed)
    if kind == "ties":
        return rng.integers(-2, 3, shape).astype(np.float64)
    x = np.array(rng.standard_normal(shape), np.float64)
    if kind == "offset":
        return x * 3.0 + 1000.0
    if kind == "wide":
        x *= 30.0
        x.flat[0] /= 30.0
    return x


# At a tie softmax's second derivative vanishes, up to the ~1e-17 rounding
# of O(1) terms that cancel; a relative error means nothing against 0, so
# absolute differences below ROUNDING pass.
ROUNDING = 1e-14


def run_activation(config) -> None:
    ours = functools.partial(getattr(jaxgrad, config.op), **config.kwargs)
    theirs = functools.partial(TORCH_ACTIVATION[config.op], **config.kwargs)
    check_values(f"fuzz {config}", ours, theirs,
                 {"x": value_input(config.kind, config.shape, config.seed)},
                 seed=config.seed, atol=ROUNDING, double=config.op not in FIRST_ORDER_ONLY)


@fuzz(2.0)
@given(config=elementwise_configs())
def test_elementwise_fuzz(config):
    run_activation(config)


@fuzz(1.5)
@given(config=softmax_configs())
def test_softmax_fuzz(config):
    run_activation(config)


# --------------------------------------------------------------------------
# Losses (all three reductions in one program, see test_loss_torch) and linear.


def _index_loss_fns(config):
    """(jaxgrad fn, torch fn) of (x, reduction) for class-index targets."""
    shape = config.shape
    classes = shape[0] if len(shape) == 1 else shape[1]
    target = index_target(shape[:1] + shape[2:] if len(shape) > 1 else (), classes,
                          config.ignored, config.ignore_index, seed=config.seed)
    w = class_weight(classes, seed=config.seed + 1) if config.weight else None
    kwargs = dict(ignore_index=config.ignore_index)
    if config.op == "cross_entropy":
        kwargs["label_smoothing"] = config.label_smoothing
    op = config.op

    def ours(x, reduction):
        return getattr(jaxgrad, op)(x, jnp.asarray(target),
                                    None if w is None else jnp.asarray(w),
                                    reduction=reduction, **kwargs)

    def theirs(x, reduction):
        return getattr(F, op)(x, torch.tensor(target),
                              None if w is None else torch.tensor(w),
                              reduction=reduction, **kwargs)
    return ours, theirs


def _probability_loss_fns(config):
    # No ignore_index: torch raises for one other than -100 with probability
    # targets ("not supported for floating point target"); jaxgrad ignores it.
    kwargs = dict(label_smoothing=config.label_smoothing)

    def ours(x, q, w=None, *, reduction):
        return jaxgrad.cross_entropy(x, q, w, reduction=reduction, **kwargs)

    def theirs(x, q, w=None, *, reduction):
        return F.cross_entropy(x, q, w, reduction=reduction, **kwargs)
    return ours, theirs


@fuzz(1.0)
@given(config=loss_configs())
def test_loss_fuzz(config):
    shapes = {"x": config.shape}
    if config.op == "mse_loss":
        ours, theirs = jaxgrad.mse_loss, F.mse_loss
        shapes["t"] = config.shape
    elif config.op == "cross_entropy_prob":
        ours, theirs = _probability_loss_fns(config)
        shapes["q"] = config.shape
        if config.weight:   # differentiable for probability targets
            shapes["w"] = config.shape[:1] if len(config.shape) == 1 else config.shape[1:2]
    else:
        ours, theirs = _index_loss_fns(config)
    check_parity(f"fuzz {config}", all_reductions(ours), all_reductions(theirs), shapes,
                 seed=config.seed)


@fuzz(1.0)
@given(config=linear_configs())
def test_linear_fuzz(config):
    shapes = {"x": config.x_shape, "w": config.w_shape}
    if config.bias:
        shapes["b"] = config.w_shape[:1]
    check_parity(f"fuzz {config}", jaxgrad.linear, F.linear, shapes, seed=config.seed)


# --------------------------------------------------------------------------
# interpolate: float64 to second order, and uint8 byte for byte.


def torch_interpolate_deviates(config, uint8: bool = False) -> bool:
    """The calls where torch 2.13's CPU kernels are not the map its other
    kernels compute (each pinned down in test_interpolate_torch.py or
    test_interpolate_antialias_torch.py): nearest on 1-D/3-D with a scale
    factor (not 1 or 2, used as given) giving O = I or O = 2I (its backward);
    plain bicubic with a scale factor other than 1 leaving every size
    unchanged, and anti-aliasing with one leaving some size unchanged (its
    backward); an output one pixel wide whose height changes,
    in the anti-aliased float kernel and the generic uint8 kernel (its
    forward)."""
    kwargs, spatial, out = config.kwargs, config.shape[2:], config.out_spatial
    scales = kwargs.get("scale_factor")
    given = scales is not None and not kwargs.get("recompute_scale_factor")
    scales = scales if isinstance(scales, tuple) else (scales,) * len(spatial)
    if kwargs["mode"] == "nearest" and len(spatial) != 2 and given and any(
            o in (i, 2 * i) and s not in (1.0, 2.0) for i, o, s in zip(spatial, out, scales)):
        return True
    if (kwargs["mode"] == "bicubic" and not kwargs.get("antialias") and given
            and tuple(out) == tuple(spatial) and any(s != 1.0 for s in scales)):
        return True
    if kwargs.get("antialias") and not uint8 and given and any(
            o == i and s != 1.0 for i, o, s in zip(spatial, out, scales)):
        return True
    generic = config.shape[1] > 4 if uint8 else kwargs.get("antialias", False)
    return generic and out[-1] == 1 and out[-2] != spatial[-2]


@fuzz(1.0)
@given(config=interpolate_configs())
def test_interpolate_fuzz(config):
    assume(not torch_interpolate_deviates(config))
    check_parity(f"fuzz {config}", functools.partial(jaxgrad.interpolate, **config.kwargs),
                 functools.partial(F.interpolate, **config.kwargs), {"x": config.shape},
                 seed=config.seed)


@fuzz(1.0)
@given(config=interpolate_configs(uint8=True))
def test_interpolate_uint8_fuzz(config):
    assume(not torch_interpolate_deviates(config, uint8=True))
    x = np.random.default_rng(config.seed).integers(0, 256, config.shape, dtype=np.uint8)
    try:
        want = F.interpolate(torch.from_numpy(x), **config.kwargs).numpy()
    except RuntimeError:      # torch's vectorised kernel asserts on some 1-wide outputs
        assume(False)
    got = jaxgrad.interpolate(x, **config.kwargs)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(got), want)
