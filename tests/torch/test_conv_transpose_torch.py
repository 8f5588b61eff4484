"""jaxgrad.conv_transpose{1,2,3}d vs torch's F.conv_transpose{1,2,3}d.

float64, to ``_tolerance.RTOL['float64']``: output, VJP w.r.t. input / weight /
bias for a random cotangent, and the gradient of ⟨x̄, u⟩ + ⟨w̄, v⟩ + ⟨b̄, t⟩
w.r.t. input, weight, bias and cotangent (double backward).
"""

from __future__ import annotations

import pytest

import jaxgrad

from ._parity import check_parity, torch_conv_transpose_ref

CONV_TRANSPOSE = {1: jaxgrad.conv_transpose1d, 2: jaxgrad.conv_transpose2d,
                  3: jaxgrad.conv_transpose3d}


def case(name, x_shape, w_shape, bias=True, **kwargs):
    return pytest.param(x_shape, w_shape, bias, kwargs, id=name)


def run_conv_transpose(config, x_shape, w_shape, bias, kwargs, *, dtype="float64",
                       double=True, generic=False, seed=0):
    n = len(w_shape) - 2
    fn = jaxgrad.conv_transpose if generic else CONV_TRANSPOSE[n]
    shapes = {"x": x_shape, "w": w_shape}
    if bias:
        shapes["b"] = (w_shape[1] * kwargs.get("groups", 1),)

    def jax_fn(x, w, b=None):
        return fn(x, w, b, **kwargs)

    def torch_fn(x, w, b=None):
        return torch_conv_transpose_ref(x, w, b, **kwargs)

    label = f"{config}: x{x_shape} w{w_shape} bias={bias} {kwargs}"
    return check_parity(label, jax_fn, torch_fn, shapes, dtype=dtype,
                        double=double, seed=seed)


# weight layout: (C_in, C_out/groups, *kernel)
CONV_TRANSPOSE_CASES = [
    # ---- 1-D
    case("1d k3", (2, 3, 5), (3, 2, 3)),
    case("1d s2 p1 op1", (2, 3, 5), (3, 2, 3), stride=2, padding=1,
         output_padding=1),
    case("1d s3 p1 op2", (1, 2, 4), (2, 3, 2), stride=3, padding=1,
         output_padding=2),
    case("1d s2 p2 k4 no bias", (2, 2, 5), (2, 2, 4), bias=False, stride=2,
         padding=2),
    case("1d stride>kernel s3 k2", (1, 2, 4), (2, 3, 2), stride=3),
    case("1d groups2 d2", (2, 4, 5), (4, 1, 3), groups=2, dilation=2),
    case("1d groups2 multiplier s2 op1", (1, 2, 4), (2, 3, 3), groups=2, stride=2,
         output_padding=1),
    case("1d op>=s: s1 d3 op2", (1, 2, 4), (2, 2, 3), output_padding=2,
         dilation=3),
    case("1d op>=s: s2 d3 op2 p1", (2, 2, 4), (2, 2, 2), stride=2, dilation=3,
         padding=1, output_padding=2),
    case("1d unbatched s2 op1", (3, 5), (3, 2, 3), stride=2, output_padding=1),
    # ---- 2-D
    case("2d 4x4 s2 p1 decoder", (2, 3, 4, 4), (3, 2, 4, 4), stride=2, padding=1),
    case("2d s(2,1) p(1,0) op(1,0)", (1, 2, 4, 5), (2, 3, 3, 2), stride=(2, 1),
         padding=(1, 0), output_padding=(1, 0)),
    case("2d s(3,2) op(2,1) p1", (1, 2, 3, 4), (2, 2, 3, 3), stride=(3, 2),
         padding=1, output_padding=(2, 1)),
    case("2d depthwise p1", (2, 4, 4, 4), (4, 1, 3, 3), groups=4, padding=1),
    case("2d depthwise multiplier s2 op1", (1, 3, 4, 3), (3, 2, 3, 3), groups=3,
         stride=2, output_padding=1),
    case("2d groups2 d2 s(2,1)", (2, 4, 4, 5), (4, 1, 3, 3), stride=(2, 1),
         padding=1, groups=2, dilation=2),
    case("2d d(2,3) s(2,1) op(1,2)", (1, 2, 3, 4), (2, 2, 2, 3), stride=(2, 1),
         dilation=(2, 3), output_padding=(1, 2)),
    case("2d 1x1 s2 op1 no bias", (2, 3, 3, 3), (3, 2, 1, 1), bias=False,
         stride=2, output_padding=1),
    case("2d unbatched s2 no bias", (2, 3, 4), (2, 3, 3, 2), bias=False, stride=2),
    # ---- 3-D
    case("3d s2 p1 op1", (1, 2, 3, 3, 3), (2, 2, 3, 3, 3), stride=2, padding=1,
         output_padding=1),
    case("3d groups2 s(1,2,3) op(0,1,2)", (1, 4, 3, 3, 2), (4, 1, 2, 2, 2),
         stride=(1, 2, 3), groups=2, output_padding=(0, 1, 2)),
    case("3d unbatched s1 d3 op2", (2, 3, 2, 3), (2, 2, 2, 2, 2), dilation=3,
         output_padding=2),
]


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_TRANSPOSE_CASES)
def test_conv_transpose_matches_torch(request, x_shape, w_shape, bias, kwargs):
    run_conv_transpose(request.node.callspec.id, x_shape, w_shape, bias, kwargs)


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", [
    case("conv_transpose 1d s2 op1", (2, 2, 4), (2, 3, 3), stride=2,
         output_padding=1),
    case("conv_transpose 2d groups2 unbatched", (4, 3, 3), (4, 1, 2, 2), groups=2,
         stride=2, padding=1),
])
def test_generic_conv_transpose_matches_torch(request, x_shape, w_shape, bias,
                                              kwargs):
    run_conv_transpose(request.node.callspec.id, x_shape, w_shape, bias, kwargs,
                       generic=True)
