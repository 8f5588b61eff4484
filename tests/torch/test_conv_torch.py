"""jaxgrad.conv{1,2,3}d vs PyTorch: forward, first- and second-order gradients.

Every configuration is compared in float64 to ``_tolerance.RTOL['float64']``
(relative to the largest magnitude of torch's result): the output, the VJP
w.r.t. input / weight / bias for a random cotangent, and the gradient of
L2 = ⟨x̄, u⟩ + ⟨w̄, v⟩ + ⟨b̄, t⟩ w.r.t. input, weight, bias and cotangent
(torch: ``autograd.grad(..., create_graph=True)`` then ``autograd.grad``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxgrad

from ._parity import check_parity, torch_conv_ref

CONV = {1: jaxgrad.conv1d, 2: jaxgrad.conv2d, 3: jaxgrad.conv3d}
MODES = ("zeros", "reflect", "replicate", "circular")


def case(name, x_shape, w_shape, bias=True, **kwargs):
    return pytest.param(x_shape, w_shape, bias, kwargs, id=name)


def run_conv(config, x_shape, w_shape, bias, kwargs, *, dtype="float64",
             double=True, generic=False, jit=True, seed=0):
    n = len(w_shape) - 2
    fn = jaxgrad.conv if generic else CONV[n]
    shapes = {"x": x_shape, "w": w_shape}
    if bias:
        shapes["b"] = (w_shape[0],)

    def jax_fn(x, w, b=None):
        return fn(x, w, b, **kwargs)

    def torch_fn(x, w, b=None):
        return torch_conv_ref(x, w, b, **kwargs)

    label = f"{config}: x{x_shape} w{w_shape} bias={bias} {kwargs}"
    return check_parity(label, jax_fn, torch_fn, shapes, dtype=dtype,
                        double=double, jit=jit, seed=seed)


# Input sizes are chosen so that many configurations leave leftover rows,
# (I + lo + hi - K') % s != 0, which no window reads.
CONV_CASES = [
    # ---- 1-D
    case("1d k3 p1", (2, 3, 7), (4, 3, 3), padding=1),
    case("1d k1", (2, 3, 5), (2, 3, 1)),
    case("1d s2 leftover", (2, 2, 8), (3, 2, 3), stride=2),
    case("1d s3 p1 leftover", (1, 2, 8), (2, 2, 2), stride=3, padding=1),
    case("1d pairs (2,0) s2", (2, 2, 7), (3, 2, 3), stride=2, padding=((2, 0),)),
    case("1d pairs (0,3)", (1, 2, 6), (2, 2, 3), padding=((0, 3),)),
    case("1d pairs lo>K'", (1, 2, 5), (2, 2, 2), padding=((4, 1),), stride=2),
    case("1d same odd k", (1, 2, 7), (2, 2, 3), padding="same"),
    case("1d same even k", (2, 2, 8), (3, 2, 4), padding="same"),
    case("1d same even k d2", (1, 2, 9), (2, 2, 4), padding="same", dilation=2),
    case("1d same odd k d3", (1, 2, 9), (2, 2, 3), padding="same", dilation=3),
    case("1d valid no bias", (2, 3, 6), (2, 3, 3), bias=False, padding="valid"),
    case("1d d3", (1, 2, 9), (2, 2, 3), dilation=3),
    case("1d d2 s2 p1 leftover", (2, 2, 9), (2, 2, 3), dilation=2, stride=2,
         padding=1),
    case("1d groups2", (2, 4, 7), (6, 2, 3), groups=2, padding=1),
    case("1d depthwise", (2, 3, 7), (3, 1, 3), groups=3),
    case("1d multiplier x2 s2", (1, 3, 8), (6, 1, 3), groups=3, stride=2),
    case("1d stride>kernel", (2, 2, 9), (2, 2, 2), stride=3),
    case("1d batch1 no bias", (1, 2, 6), (3, 2, 2), bias=False, padding=1),
    case("1d unbatched", (3, 7), (2, 3, 3), padding=1),
    case("1d unbatched s2 groups", (4, 7), (2, 2, 3), stride=2, groups=2),
    # ---- 2-D
    case("2d 3x3 p1", (2, 3, 6, 6), (4, 3, 3, 3), padding=1),
    case("2d s2 p1 leftover", (2, 2, 6, 7), (3, 2, 3, 3), stride=2, padding=1),
    case("2d s3 leftover", (1, 2, 8, 7), (2, 2, 3, 2), stride=3),
    case("2d stride (1,3)", (1, 2, 5, 8), (3, 2, 2, 3), stride=(1, 3)),
    case("2d stride (2,3) pad (1,0) d(1,2)", (2, 2, 7, 9), (2, 2, 3, 2),
         stride=(2, 3), padding=(1, 0), dilation=(1, 2)),
    case("2d pairs ((0,2),(1,0)) s(2,1)", (2, 2, 6, 5), (2, 2, 3, 3),
         stride=(2, 1), padding=((0, 2), (1, 0))),
    case("2d pairs ((3,1),(0,2)) s(3,2) no bias", (1, 2, 5, 6), (3, 2, 2, 3),
         bias=False, stride=(3, 2), padding=((3, 1), (0, 2))),
    case("2d same (2,4) d(1,2)", (1, 2, 6, 9), (2, 2, 2, 4), padding="same",
         dilation=(1, 2)),
    case("2d same 3x3 d2", (2, 2, 7, 7), (3, 2, 3, 3), padding="same", dilation=2),
    case("2d valid no bias", (2, 3, 5, 6), (2, 3, 2, 2), bias=False,
         padding="valid"),
    case("2d d(2,3)", (1, 2, 7, 9), (2, 2, 3, 3), dilation=(2, 3)),
    case("2d groups2", (2, 4, 5, 5), (6, 2, 3, 3), groups=2, padding=1),
    case("2d groups3 s2", (1, 6, 7, 6), (3, 2, 2, 3), groups=3, stride=2),
    case("2d depthwise", (2, 4, 6, 6), (4, 1, 3, 3), groups=4, padding=1),
    case("2d multiplier x2 s2", (1, 3, 7, 7), (6, 1, 3, 3), groups=3, stride=2),
    case("2d stride>kernel (3,4)", (2, 2, 8, 9), (3, 2, 2, 2), stride=(3, 4)),
    case("2d 1x1 s2", (2, 4, 5, 5), (3, 4, 1, 1), stride=2),
    case("2d unbatched", (3, 6, 6), (2, 3, 3, 3), padding=1),
    case("2d unbatched depthwise s2", (2, 7, 6), (2, 1, 3, 3), groups=2, stride=2),
    # ---- 3-D
    case("3d 3x3x3 p1", (1, 2, 4, 5, 4), (3, 2, 3, 3, 3), padding=1),
    case("3d stride (1,2,3) leftover", (2, 2, 5, 6, 7), (2, 2, 2, 2, 2),
         stride=(1, 2, 3)),
    case("3d pairs s2", (1, 2, 5, 4, 5), (2, 2, 2, 3, 2), stride=2,
         padding=((1, 0), (0, 2), (2, 1))),
    case("3d same even d2", (1, 2, 5, 5, 6), (2, 2, 2, 3, 2), padding="same",
         dilation=(2, 1, 2)),
    case("3d groups2 s2", (2, 4, 5, 6, 4), (4, 2, 2, 3, 2), stride=2, groups=2),
    case("3d depthwise x2 no bias", (1, 2, 4, 4, 5), (4, 1, 2, 2, 2), bias=False,
         groups=2, padding=(1, 0, 1)),
    case("3d d2 stride>kernel", (1, 2, 7, 6, 8), (2, 2, 2, 2, 2), dilation=2,
         stride=(3, 3, 4)),
    case("3d unbatched", (2, 4, 5, 4), (3, 2, 2, 3, 2), padding=1),
]


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_CASES)
def test_conv_matches_torch(request, x_shape, w_shape, bias, kwargs):
    run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs)


# ---- every padding_mode, per dimensionality, with int / tuple / pairs / 'same'
# padding, strides with leftover rows, groups and unbatched inputs.

def _mode_cases():
    out = []
    for mode in MODES:
        out += [
            case(f"1d {mode} p2 s2", (2, 2, 7), (3, 2, 3), padding=2, stride=2,
                 padding_mode=mode),
            case(f"1d {mode} same even d2 no bias", (1, 2, 8), (2, 2, 4),
                 bias=False, padding="same", dilation=2, padding_mode=mode),
            case(f"1d {mode} pairs (3,1)", (1, 2, 6), (2, 2, 3),
                 padding=((3, 1),), padding_mode=mode),
            case(f"1d {mode} unbatched groups2", (4, 6), (2, 2, 3), padding=1,
                 groups=2, padding_mode=mode),
            case(f"2d {mode} p1", (2, 2, 5, 6), (3, 2, 3, 3), padding=1,
                 padding_mode=mode),
            case(f"2d {mode} p(2,1) s(2,3) depthwise", (1, 3, 6, 7), (3, 1, 3, 2),
                 padding=(2, 1), stride=(2, 3), groups=3, padding_mode=mode),
            case(f"2d {mode} pairs ((0,2),(2,1))", (1, 2, 5, 5), (2, 2, 3, 2),
                 padding=((0, 2), (2, 1)), padding_mode=mode),
            case(f"2d {mode} same unbatched no bias", (2, 5, 6), (2, 2, 4, 3),
                 bias=False, padding="same", padding_mode=mode),
            case(f"3d {mode} p(1,2,1) s2", (1, 2, 4, 5, 4), (2, 2, 2, 3, 2),
                 padding=(1, 2, 1), stride=2, padding_mode=mode),
        ]
    return out


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", _mode_cases())
def test_conv_padding_mode_matches_torch(request, x_shape, w_shape, bias, kwargs):
    run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs)


# ---- the dimension-generic entry point jaxgrad.conv

@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", [
    case("conv 1d s2 reflect", (2, 2, 7), (2, 2, 3), stride=2, padding=1,
         padding_mode="reflect"),
    case("conv 2d groups2 same", (1, 4, 5, 6), (2, 2, 3, 2), groups=2,
         padding="same"),
    case("conv 3d unbatched", (2, 3, 4, 4), (2, 2, 2, 2, 2), stride=(1, 2, 1)),
])
def test_generic_conv_matches_torch(request, x_shape, w_shape, bias, kwargs):
    run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs, generic=True)


# ---- op-by-op (no jit) execution of the same rules

@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", [
    case("eager 2d s2 pairs groups2", (1, 4, 6, 5), (4, 2, 3, 2), stride=2,
         padding=((1, 0), (2, 1)), groups=2),
    case("eager 1d circular unbatched", (2, 6), (3, 2, 3), padding=2,
         padding_mode="circular"),
])
def test_conv_eager_matches_torch(request, x_shape, w_shape, bias, kwargs):
    run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs, jit=False)


# ---- a hand-checked padding_mode case.
#
# 1-D, 6 inputs, K=3 all-ones weight, padding=1: the gradient of sum(output)
# w.r.t. the input counts how often each input is read, border copies
# included. Padded positions are read 1,2,3,3,3,3,2,1 times; the two border
# copies fold back onto the rows they copy:
#   zeros:     the copies are constants                 -> [2,3,3,3,3,2]
#   reflect:   x̂ = [x1, x0..x5, x4]                     -> [2,4,3,3,4,2]
#   replicate: x̂ = [x0, x0..x5, x5]                     -> [3,3,3,3,3,3]
#   circular:  x̂ = [x5, x0..x5, x0]                     -> [3,3,3,3,3,3]

HAND_CHECKED = {
    "zeros": [2, 3, 3, 3, 3, 2],
    "reflect": [2, 4, 3, 3, 4, 2],
    "replicate": [3, 3, 3, 3, 3, 3],
    "circular": [3, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
def test_padding_mode_gradient_hand_checked(mode, dtype):
    x = jnp.asarray(np.arange(6.0).reshape(1, 1, 6), dtype)
    w = jnp.ones((1, 1, 3), dtype)
    grad = jax.grad(lambda x: jnp.sum(jaxgrad.conv1d(x, w, padding=1,
                                                     padding_mode=mode)))(x)
    expected = np.array(HAND_CHECKED[mode], dtype=np.float64).reshape(1, 1, 6)
    np.testing.assert_array_equal(np.asarray(grad, np.float64), expected,
                                  err_msg=f"padding_mode={mode!r}")
    # ... and torch agrees with the hand count.
    tx = torch.arange(6.0, dtype=torch.float64).reshape(1, 1, 6).requires_grad_()
    y = torch_conv_ref(tx, torch.ones(1, 1, 3, dtype=torch.float64), None,
                       padding=1, padding_mode=mode)
    (tgrad,) = torch.autograd.grad(y.sum(), tx)
    np.testing.assert_array_equal(tgrad.numpy(), expected)
