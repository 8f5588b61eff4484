"""Both gradient formulations against PyTorch: ``algorithm="transpose"`` and ``"taps"``.

The other torch parity files run the default ("auto", which picks "taps" on
CPU for nearly everything); here each formulation is selected explicitly, by
``jaxgrad.conv_algorithm`` around the existing runners (a fresh jitted program
per call, traced inside the block), on a representative grid: grouped and
depthwise strided convolutions, the tiled path (stride = kernel), 1x1 strided,
dilated with per-side padding, transposed convolutions with groups / stride /
output_padding / dilation, 1-D and 3-D. ``check_parity`` compares the output,
the VJP and the gradient of ⟨VJP, u⟩ (second order) with torch, in float64
and float32, to ``_tolerance.RTOL``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxgrad

from ._strategies import conv_configs, conv_transpose_configs, fuzz
from .test_conv_torch import run_conv
from .test_conv_transpose_torch import run_conv_transpose
from .test_grad_torch import run_grad

ALGORITHMS = ["transpose", "taps"]


def case(name, x_shape, w_shape, bias=True, **kwargs):
    return pytest.param(x_shape, w_shape, bias, kwargs, id=name)


CONV_CASES = [
    case("2d groups2 s2 p1 leftover", (2, 4, 7, 6), (6, 2, 3, 3), groups=2, stride=2,
         padding=1),
    case("2d depthwise s2 p1", (2, 3, 7, 6), (3, 1, 3, 3), groups=3, stride=2,
         padding=1),
    case("2d tiled k2 s2 leftover", (2, 3, 7, 6), (4, 3, 2, 2), stride=2),
    case("2d 1x1 s2 no bias", (2, 4, 5, 5), (3, 4, 1, 1), bias=False, stride=2),
    case("2d d(2,3) pairs ((2,0),(1,3))", (1, 2, 8, 9), (2, 2, 3, 2), dilation=(2, 3),
         padding=((2, 0), (1, 3))),
    case("1d multiplier x2 s3 leftover", (2, 3, 11), (6, 1, 3), groups=3, stride=3),
    case("3d groups2 s(1,2,3) reflect", (1, 4, 4, 5, 6), (4, 2, 2, 2, 2), groups=2,
         stride=(1, 2, 3), padding=1, padding_mode="reflect"),
]

# weight layout (C_in, C_out/groups, *kernel)
CONV_TRANSPOSE_CASES = [
    case("2d groups2 s2 op1 d2", (1, 4, 3, 4), (4, 1, 3, 3), groups=2, stride=2,
         output_padding=1, dilation=2),
    case("1d s3 p1 op2", (2, 2, 4), (2, 3, 2), stride=3, padding=1, output_padding=2),
    case("3d s2 p1 op1 unbatched", (2, 2, 3, 3), (2, 2, 3, 3, 2), stride=2, padding=1,
         output_padding=1),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_CASES)
def test_conv_matches_torch(request, algorithm, x_shape, w_shape, bias, kwargs):
    with jaxgrad.conv_algorithm(algorithm):
        run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_TRANSPOSE_CASES)
def test_conv_transpose_matches_torch(request, algorithm, x_shape, w_shape, bias,
                                      kwargs):
    with jaxgrad.conv_algorithm(algorithm):
        run_conv_transpose(request.node.callspec.id, x_shape, w_shape, bias, kwargs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op, x_shape, w_shape, bias, kwargs", [
    pytest.param("conv", (2, 4, 7, 6), (6, 2, 3, 3), True,
                 dict(groups=2, stride=2, padding=1), id="conv2d groups2 s2"),
    pytest.param("conv_transpose", (2, 3, 3, 3), (3, 1, 2, 2), True,
                 dict(groups=3, stride=2), id="conv_transpose2d tiled depthwise"),
])
def test_float32_matches_torch(request, algorithm, op, x_shape, w_shape, bias, kwargs):
    runner = run_conv if op == "conv" else run_conv_transpose
    with jaxgrad.conv_algorithm(algorithm):
        runner(request.node.callspec.id, x_shape, w_shape, bias, kwargs,
               dtype="float32")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kind, x_shape, w_shape, kwargs", [
    pytest.param("weight", (2, 4, 7, 8), (4, 2, 3, 2), dict(groups=2, stride=(2, 3)),
                 id="conv2d_weight groups2 s(2,3)"),
    pytest.param("transpose_input", (1, 4, 3, 4), (4, 1, 2, 3),
                 dict(groups=2, stride=2, padding=1), id="conv_transpose2d_input"),
])
def test_grad_functions_match_torch(request, algorithm, kind, x_shape, w_shape, kwargs):
    with jaxgrad.conv_algorithm(algorithm):
        run_grad(request.node.callspec.id, kind, x_shape, w_shape, kwargs)


@fuzz(0.3)
@given(op_config=st.one_of(conv_configs().map(lambda c: ("conv", c)),
                           conv_transpose_configs().map(lambda c: ("conv_transpose", c))),
       algorithm=st.sampled_from(ALGORITHMS))
def test_algorithms_fuzz(op_config, algorithm):
    op, config = op_config
    runner = run_conv if op == "conv" else run_conv_transpose
    with jaxgrad.conv_algorithm(algorithm):
        runner(f"fuzz {algorithm} {op} {config}", config.x_shape, config.w_shape,
               config.bias, config.kwargs, generic=config.generic)
