"""Analytic FLOP counts, case shapes and the correctness tolerance of the harness."""

import math
import re

import pytest

from jaxgrad_bench import _cases, _flops, _measure
from jaxgrad_bench._cases import Case, conv, conv_transpose


def test_conv_flops_by_hand():
    # ResNet-50 stem: 64 x 3 x 7 x 7 MACs at each of 112 x 112 outputs, x2.
    assert _flops.conv_flops(1, 3, 64, 1, (7, 7), (112, 112)) == \
        2 * 64 * 3 * 49 * 12544 == 236_027_904
    # Depthwise: each output channel sees one input channel.
    assert _flops.conv_flops(2, 8, 8, 8, (3, 3), (4, 4)) == 2 * 2 * 8 * 1 * 9 * 16
    # Grouped 1-D: C_in/G = 2 channels per group.
    assert _flops.conv_flops(3, 4, 6, 2, (5,), (7,)) == 2 * 3 * 6 * 2 * 5 * 7 == 2520


def test_conv_transpose_flops_by_hand():
    # 2 x 2 stride 2: each of the 4 x 4 inputs meets 2 x 2 taps for 3 outputs.
    assert _flops.conv_transpose_flops(1, 2, 3, 1, (2, 2), (4, 4)) == \
        2 * 2 * 3 * 4 * 16 == 768
    assert _flops.conv_transpose_flops(2, 4, 6, 2, (3, 3, 3), (2, 2, 2)) == \
        2 * 2 * 4 * 3 * 27 * 8


def test_transposed_count_equals_the_count_of_the_convolution_it_is_the_gradient_of():
    # conv_transpose(x, w) is the input gradient of conv(., w) from 9 to 4.
    forward = _flops.conv_flops(2, 5, 3, 1, (3,), (4,))
    assert _flops.conv_transpose_flops(2, 3, 5, 1, (3,), (4,)) == forward


def test_matmul_and_training_flops():
    assert _flops.matmul_flops(2, 3, 4) == 48
    assert _flops.training_flops(7) == _flops.Flops(7, 14, 21)


def test_case_shapes_and_flops_by_hand():
    case = Case("t", "test", (2, 4, 10, 10),
                (conv((6, 2, 3, 3), stride=2, padding=1, groups=2),
                 conv_transpose((6, 3, 4, 4), stride=2, padding=1)))
    # conv: floor((10 + 2 - 3) / 2) + 1 = 5; transposed: (5-1)*2 - 2 + 3 + 1 = 10.
    assert case.shapes() == [(2, 4, 10, 10), (2, 6, 5, 5), (2, 3, 10, 10)]
    conv_part = 2 * 2 * 6 * 2 * 9 * 25
    transpose_part = 2 * 2 * 6 * 3 * 16 * 25
    assert case.flops() == _flops.Flops(conv_part + transpose_part,
                                        2 * (conv_part + transpose_part),
                                        3 * (conv_part + transpose_part))


def test_wavenet_stack_keeps_4096_outputs_and_sums_its_layers():
    case = {c.name: c for c in _cases.CASES}["wavenet-1d-stack"]
    assert case.output == (4, 32, 4096)
    lengths = [shape[2] for shape in case.shapes()[1:]]
    assert lengths[0] == 4096 + 1023 - 1 and lengths[-1] == 4096
    assert case.flops().forward == sum(2 * 4 * 32 * 32 * 2 * n for n in lengths)


def test_unrolled_case_is_the_stride_equals_kernel_problem():
    case = {c.name: c for c in _cases.CASES}["unrolled-32x32-s32"]
    assert case.input == (8, 1, 128, 128) and case.output == (8, 512, 4, 4)
    (layer,) = case.layers
    assert layer.weight == (512, 1, 32, 32) and layer.stride == (32, 32)


def test_longest_sum_by_hand():
    # forward 64*9 = 576; input grad 64 * ceil(3/1)^2 = 576; weight grad 4*56*56.
    layer = conv((64, 64, 3, 3), padding=1)
    assert layer.longest_sum((4, 64, 56, 56)) == 4 * 56 * 56
    # stride 32 = kernel: each input position is reached by one tap per dim.
    unrolled = conv((512, 1, 32, 32), stride=32)
    assert unrolled.longest_sum((8, 1, 128, 128)) == max(1024, 512, 8 * 16)
    # transposed 4x4 s2 from (4, 128, 16, 16): forward of the underlying conv
    # sums 64*16, its input gradient 128 * 2*2, its weight gradient 4 * 16*16.
    up = conv_transpose((128, 64, 4, 4), stride=2, padding=1)
    assert up.longest_sum((4, 128, 16, 16)) == max(64 * 16, 128 * 4, 4 * 256)


@pytest.mark.parametrize("dtype,base", [("float32", 1e-5), ("bfloat16", 2e-2)])
def test_tolerance_grows_with_the_square_root_of_the_longest_sum(dtype, base):
    short = Case("s", "", (1, 2, 8), (conv((2, 2, 3)),))
    long = Case("l", "", (4, 64, 128, 128), (conv((64, 64, 3, 3), padding=1),))
    assert _measure.case_tolerance(short, dtype) == base
    assert _measure.case_tolerance(long, dtype) == pytest.approx(
        base * math.sqrt(4 * 128 * 128 / 4096))


def test_suites_and_selection():
    quick = _cases.select("quick")
    assert 0 < len(quick) < len(_cases.select("full")) == len(_cases.CASES)
    assert all(c.quick for c in quick)
    picked = _cases.select(None, ["c3d-3x3x3", "resnet50-1x1", "c3d-3x3x3"])
    assert [c.name for c in picked] == ["c3d-3x3x3", "resnet50-1x1"]
    # a suite and named cases: the suite's first, a case named twice runs once
    both = [c.name for c in _cases.select("quick", ["c3d-3x3x3", "resnet50-1x1"])]
    assert both[:len(quick)] == [c.name for c in quick]
    assert len(both) == len(set(both)) and {"c3d-3x3x3", "resnet50-1x1"} <= set(both)
    with pytest.raises(ValueError, match=r"unknown case name\(s\) 'nope'"):
        _cases.select("full", ["resnet50-1x1", "nope"])


def test_every_case_names_its_source_and_has_a_unique_cli_friendly_name():
    names = _cases.names()
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9][A-Za-z0-9-]*", n) for n in names)
    sources = ("ResNet", "MobileNet", "ResNeXt", "DeepLab", "WaveNet", "C3D",
               "DCGAN", "U-Net", "examples/")
    assert all(any(s in c.description for s in sources) for c in _cases.CASES)
