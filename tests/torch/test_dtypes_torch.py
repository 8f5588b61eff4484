"""Reduced-precision parity with torch, to the tolerances of ``_tolerance.RTOL``.

float32: jaxgrad in float32 vs torch in float32 (output, first- and
second-order gradients). float16 / bfloat16: jaxgrad in the half type vs
torch in float64 on the same (rounded) inputs (output and first-order
gradients). Every result must also keep the input's dtype.
"""

from __future__ import annotations

import pytest

from .test_conv_torch import case, run_conv
from .test_conv_transpose_torch import run_conv_transpose
from .test_grad_torch import run_grad

REDUCED_CONV_CASES = [
    case("1d k3 p1", (2, 3, 9), (4, 3, 3), padding=1),
    case("1d s2 pairs reflect", (1, 2, 8), (3, 2, 3), stride=2,
         padding=((2, 1),), padding_mode="reflect"),
    case("2d s2 p1 leftover groups2", (2, 4, 7, 6), (4, 2, 3, 3), stride=2,
         padding=1, groups=2),
    case("2d same even d2 circular", (1, 2, 6, 7), (3, 2, 2, 4), padding="same",
         dilation=(2, 1), padding_mode="circular"),
    case("2d depthwise x2 replicate unbatched", (3, 6, 6), (6, 1, 3, 3), groups=3,
         padding=(1, 2), padding_mode="replicate"),
    case("3d s(1,2,2) p1", (1, 2, 4, 5, 5), (3, 2, 3, 3, 2), stride=(1, 2, 2),
         padding=1),
]

REDUCED_CONV_TRANSPOSE_CASES = [
    case("1d s2 op1", (2, 3, 5), (3, 2, 3), stride=2, output_padding=1),
    case("2d s2 p1 groups2", (1, 4, 4, 3), (4, 2, 4, 4), stride=2, padding=1,
         groups=2),
    case("3d s1 d3 op2 unbatched", (2, 2, 3, 2), (2, 2, 2, 2, 2), dilation=3,
         output_padding=2),
]

REDUCED_GRAD_CASES = [
    pytest.param("input", (2, 3, 7, 6), (4, 3, 3, 2), dict(stride=2, padding=1),
                 id="conv2d_input s2"),
    pytest.param("weight", (2, 4, 7, 6), (4, 2, 3, 2), dict(stride=(1, 2),
                                                            groups=2),
                 id="conv2d_weight groups2"),
    pytest.param("transpose_input", (1, 2, 4), (2, 3, 3),
                 dict(stride=2, output_padding=1), id="conv_transpose1d_input"),
    pytest.param("transpose_weight", (1, 2, 3, 3), (2, 2, 3, 3),
                 dict(stride=2, padding=1), id="conv_transpose2d_weight"),
]

DTYPES = [pytest.param("float32", id="float32"), pytest.param("float16", id="float16"),
          pytest.param("bfloat16", id="bfloat16")]


def _double(dtype):
    # second order in float32 only; the half types check output and gradients
    return dtype == "float32"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", REDUCED_CONV_CASES)
def test_conv_reduced_precision(request, dtype, x_shape, w_shape, bias, kwargs):
    run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs, dtype=dtype,
             double=_double(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs",
                         REDUCED_CONV_TRANSPOSE_CASES)
def test_conv_transpose_reduced_precision(request, dtype, x_shape, w_shape, bias,
                                          kwargs):
    run_conv_transpose(request.node.callspec.id, x_shape, w_shape, bias, kwargs,
                       dtype=dtype, double=_double(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, x_shape, w_shape, kwargs", REDUCED_GRAD_CASES)
def test_grad_functions_reduced_precision(request, dtype, kind, x_shape, w_shape,
                                          kwargs):
    run_grad(request.node.callspec.id, kind, x_shape, w_shape, kwargs, dtype=dtype,
             double=_double(dtype))
