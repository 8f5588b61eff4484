"""``_plan``: how a convolution runs, asked without running it.

Each expectation is worked out by hand from the rules in ``_plan``'s table
(the workaround or threshold named as the reason), and the kernels are shown
to follow the plan by counting the convolutions in the traced program.
"""

import functools
import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxgrad
from jaxgrad._conv import _plan
from jaxgrad._conv._plan import Placement, plan
from jaxgrad._conv._spec import ConvSpec, conv_output_shape


def _spec(n=2, stride=1, padding=1, groups=1, algorithm="auto"):
    return ConvSpec((stride,) * n, ((padding, padding),) * n, (1,) * n, groups, algorithm)


def _weight_grad(spec, x_shape, c_out, kernel):
    """auto's CPU choice for the weight gradient of ``spec`` on these shapes."""
    g_shape = (x_shape[0], c_out) + tuple(conv_output_shape(x_shape[2:], kernel, spec))
    w_shape = (c_out, x_shape[1] // spec.groups) + tuple(kernel)
    return plan(spec, x_shape, w_shape, g_shape, jnp.float32, backend="cpu").weight_grad


def _input_grad(spec, x_shape, c_out, kernel):
    """auto's CPU choice for the input gradient of ``spec`` on these shapes."""
    g_shape = (x_shape[0], c_out) + tuple(conv_output_shape(x_shape[2:], kernel, spec))
    w_shape = (c_out, x_shape[1] // spec.groups) + tuple(kernel)
    return plan(spec, x_shape, w_shape, g_shape, jnp.float32, backend="cpu").input_grad


def _padded_spec(n, k, stride=1, dilation=1, groups=1):
    """A k-per-dim kernel padded d(K-1)//2 on each side (the drawn layers')."""
    pad = dilation * (k - 1) // 2
    return ConvSpec((stride,) * n, ((pad, pad),) * n, (dilation,) * n, groups, "auto")


def _padded_input_grad(x_shape, c_out, k, stride=1, dilation=1, groups=1):
    n = len(x_shape) - 2
    return _input_grad(_padded_spec(n, k, stride, dilation, groups), x_shape, c_out, (k,) * n)


def _padded_weight_grad(x_shape, c_out, k, stride=1, dilation=1, groups=1):
    n = len(x_shape) - 2
    return _weight_grad(_padded_spec(n, k, stride, dilation, groups), x_shape, c_out, (k,) * n)


RESNEXT = (_spec(groups=32), (1, 128, 56, 56), (128, 4, 3, 3), (1, 128, 56, 56))


def test_resnext_grouped_conv_on_cpu():
    # 4 channels per group, 9 taps: 36 terms, within both forward-taps bounds
    p = plan(*RESNEXT, jnp.float32, backend="cpu")
    assert (p.forward.formulation, p.forward.reason) == ("taps", "cpu_slow_grouped_forward")
    # the input gradient: 32 groups (not above cpu_split_max_groups) of 4
    # output channels (<= taps_input_grad_max_group_out_channels): taps
    assert 4 <= _plan.THRESHOLDS["taps_input_grad_max_group_out_channels"].value
    assert (p.input_grad.formulation, p.input_grad.reason) == (
        "taps", "taps_input_grad_max_group_out_channels")
    # the weight gradient: the dense rule per group, 4 output channels per
    # group (< dense_taps_min_out_channels) and a buffer of 1·128·9·3136 = 3.6M
    # elements (> dense_taps_small_elements): the textbook rule, split into G
    # dense convolutions on CPU (XLA's batch-grouped one is the slow path)
    assert 128 * 9 * 56 * 56 > _plan.THRESHOLDS["dense_taps_small_elements"].value
    assert 4 < _plan.THRESHOLDS["dense_taps_min_out_channels"].value
    # (a grouped conv: the aligned row, for dense ones, is silent)
    assert (p.weight_grad.formulation, p.weight_grad.reason) == (
        "transpose_per_group", "dense_taps_min_out_channels; cpu_slow_grouped")
    assert str(p).splitlines()[0] == "forward: taps (cpu_slow_grouped_forward)"
    # at 28x28 the weight gradient's buffer is 0.9M elements: taps
    p = plan(RESNEXT[0], (1, 128, 28, 28), (128, 4, 3, 3), (1, 128, 28, 28),
             jnp.float32, backend="cpu")
    assert (p.weight_grad.formulation, p.weight_grad.reason) == (
        "taps", "dense_taps_small_elements")
    # "transpose" keeps the convolution: 4 channels per group are fewer than
    # cpu_split_min_group_channels, so one grouped convolution even on CPU
    assert 4 < _plan.THRESHOLDS["cpu_split_min_group_channels"].value
    p = plan(_spec(groups=32, algorithm="transpose"), *RESNEXT[1:], jnp.float32,
             backend="cpu")
    assert (p.forward.formulation, p.forward.reason) == ("lax", "one convolution")
    assert p.weight_grad.formulation == "transpose_per_group"


def test_resnext_conv5_forward_is_im2col_at_batch_one():
    # 32 input channels per group (> taps_forward_max_group_channels): no fused
    # taps forward; batch 1 (<= im2col_forward_max_batch): im2col on CPU
    shapes = ((1, 1024, 7, 7), (1024, 32, 3, 3), (1, 1024, 7, 7))
    im2col = _plan.Choice("im2col", "taps_forward_max_group_channels; im2col_forward_max_batch")
    p = plan(_spec(groups=32), *shapes, jnp.float32, backend="cpu")
    assert p.forward == im2col
    pieces = _plan.Choice("per_group", "cpu_slow_grouped")
    # with few outputs per group too (G pieces won alone, not in networks):
    # held-out run 23's worst point, the core of a transposed convolution
    # widening 8 channels to 176, G = 4: 44 inputs and 2 outputs per group
    s2 = _spec(stride=2, padding=0, groups=4)
    assert _forward(s2, (1, 176, 41, 41), (8, 44, 5, 5)) == im2col
    # 9 inputs and 1 output per group (one grouped convolution the alternative)
    assert _forward(_spec(groups=4), (1, 36, 8, 8), (4, 9, 3, 3)) == im2col
    # 3-D: im2col with few outputs per group too (16 inputs, 1 output)
    s3 = _spec(n=3, groups=4)
    shapes3 = ((1, 64, 8, 8, 8), (4, 16, 3, 3, 3), (1, 4, 8, 8, 8))
    assert plan(s3, *shapes3, jnp.float32, backend="cpu").forward == im2col
    # outside im2col's measured range at batch 1: 64 groups (> cpu_split_max_groups),
    # or depthwise (15x15: no fused taps form either): the convolution
    p = plan(_spec(groups=64), (1, 2048, 7, 7), (2048, 32, 3, 3), (1, 2048, 7, 7),
             jnp.float32, backend="cpu")
    assert p.forward == _plan.Choice("lax", "one convolution")
    p = plan(_spec(groups=16, padding=7), (1, 16, 20, 20), (16, 1, 15, 15), (1, 16, 20, 20),
             jnp.float32, backend="cpu")
    assert p.forward.formulation == "lax"
    # patches beyond the bounds: none for autotune past taps_max_elements
    # (8·1024·9·128² = 1.2G elements), and not auto's past dense_taps_max_elements
    huge = (8, 1024, 128, 128)
    assert _plan.forward_im2col(_spec(groups=32), huge, shapes[1]) == "patches above the bound"
    big = (1, 1024, 32, 32)             # 1024·9·32² = 9.4M > 2^23
    assert plan(_spec(groups=32), big, shapes[1], big, jnp.float32,
                backend="cpu").forward.formulation == "per_group"
    # batch 2: G dense convolutions (32 channels per group >= cpu_split_min_group_channels)
    p = plan(_spec(groups=32), (2,) + shapes[0][1:], shapes[1], (2,) + shapes[2][1:],
             jnp.float32, backend="cpu")
    assert p.forward == pieces
    # "transpose" and "taps" never run im2col; nor does another backend
    for algorithm in ("transpose", "taps"):
        assert plan(_spec(groups=32, algorithm=algorithm), *shapes, jnp.float32,
                    backend="cpu").forward.formulation == "per_group"
    assert plan(_spec(groups=32), *shapes, jnp.float32, backend="gpu").forward.formulation \
        == "lax"
    # the kernels follow: one dot_general per group batch, no convolution (2-D
    # and 3-D)
    for x_shape, w_shape, conv in ((shapes[0], shapes[1], jaxgrad.conv2d),
                                   (shapes3[0], shapes3[1], jaxgrad.conv3d)):
        x, w = jnp.ones(x_shape), jnp.ones(w_shape)
        groups = x_shape[1] // w_shape[1]
        text = str(jax.make_jaxpr(lambda x, w: conv(x, w, padding=1, groups=groups))(x, w))
        assert text.count("conv_general_dilated[") == 0 and text.count("dot_general[") == 1


def test_resnext_grouped_conv_on_gpu_is_textbook():
    p = plan(*RESNEXT, jnp.float32, backend="gpu")
    assert p.forward.formulation == "lax"
    assert p.input_grad == _plan.Choice("transpose", "not measured on this backend")
    assert p.weight_grad.formulation == "transpose"


def test_on_gpu_only_depthwise_weight_gradients_take_taps():
    # MobileNetV2's depthwise 3x3 (and a channel multiplier of 2): the weight
    # gradient is taps, the input gradient and the forward the textbook rule
    for w_shape, g_shape in (((144, 1, 3, 3), (2, 144, 56, 56)),
                             ((288, 1, 3, 3), (2, 288, 56, 56))):
        p = plan(_spec(groups=144), (2, 144, 56, 56), w_shape, g_shape, jnp.float32,
                 backend="gpu")
        assert p.weight_grad == _plan.Choice("taps", _plan.GPU_DEPTHWISE_WEIGHT)
        assert p.input_grad == _plan.Choice("transpose", "not measured on this backend")
        assert p.forward.formulation == "lax"
    # grouped with 4 channels per group (ResNeXt): textbook, as above; on TPU
    # nothing is measured
    assert plan(*RESNEXT, jnp.float32, backend="gpu").weight_grad.formulation == "transpose"
    p = plan(_spec(groups=144), (2, 144, 56, 56), (144, 1, 3, 3), (2, 144, 56, 56),
             jnp.float32, backend="tpu")
    assert p.weight_grad == _plan.Choice("transpose", "not measured on this backend")
    # a buffer above taps_max_elements: N·C·ΠK·P = 64·256·9·112² > 2^27
    assert 64 * 256 * 9 * 112 * 112 > _plan.TAPS_MAX_ELEMENTS
    p = plan(_spec(groups=256), (64, 256, 112, 112), (256, 1, 3, 3), (64, 256, 112, 112),
             jnp.float32, backend="gpu")
    assert p.weight_grad.formulation == "transpose"
    # "transpose" asked for is kept
    p = plan(_spec(groups=144, algorithm="transpose"), (2, 144, 56, 56), (144, 1, 3, 3),
             (2, 144, 56, 56), jnp.float32, backend="gpu")
    assert p.weight_grad.formulation == "transpose"


def test_more_groups_than_the_split_threshold_stay_whole():
    limit = _plan.THRESHOLDS["cpu_split_max_groups"].value
    spec = _spec(groups=2 * limit, algorithm="transpose")
    c = 4 * limit
    p = plan(spec, (1, c, 8, 8), (c, 2, 3, 3), (1, c, 8, 8), jnp.float32, backend="cpu")
    assert (p.forward.formulation, p.input_grad.formulation,
            p.weight_grad.formulation) == ("lax", "transpose", "transpose")
    spec = _spec(groups=limit, algorithm="transpose")
    c = limit * _plan.THRESHOLDS["cpu_split_min_group_channels"].value
    w = (c, c // limit, 3, 3)
    p = plan(spec, (1, c, 8, 8), w, (1, c, 8, 8), jnp.float32, backend="cpu")
    assert (p.forward.formulation, p.input_grad.formulation,
            p.weight_grad.formulation) == ("per_group", "transpose_per_group",
                                           "transpose_per_group")


def test_float64_depthwise_on_cpu_runs_per_group_for_nan_placement():
    spec = _spec(groups=8, algorithm="transpose")
    shapes = ((2, 8, 6, 6), (8, 1, 3, 3), (2, 8, 6, 6))
    assert plan(spec, *shapes, jnp.float64, backend="cpu").forward == _plan.Choice(
        "per_group", "cpu_f64_depthwise_nan_leak")
    assert plan(spec, *shapes, jnp.float32, backend="cpu").forward.formulation == "lax"
    # with a channel multiplier (C_out = 2 G) the input gradient's convolution
    # over g's 16 channels in 8 groups is partially grouped, not depthwise (no
    # NaN leak): 2 channels per group (< cpu_split_min_group_channels) stay
    # one convolution; with 16 per group it is split for speed
    p = plan(spec, (2, 8, 6, 6), (16, 1, 3, 3), (2, 16, 6, 6), jnp.float64, backend="cpu")
    assert p.forward.formulation == "per_group"
    assert p.input_grad == _plan.Choice("transpose", "asked for")
    p = plan(spec, (2, 8, 6, 6), (128, 1, 3, 3), (2, 128, 6, 6), jnp.float64,
             backend="cpu")
    assert p.input_grad == _plan.Choice("transpose_per_group", "asked for; cpu_slow_grouped")


_F64_PIECES = """
import sys
import jax, jax.numpy as jnp, numpy as np
from jax import lax
jax.config.update("jax_enable_x64", True)
from jaxgrad._conv import _core
from jaxgrad._conv._spec import ConvSpec
# float64 operands, or float32 ones summed in float64 (preferred_element_type)
preferred = jnp.float64 if sys.argv[1] == "preferred" else None
dtype = jnp.float32 if preferred else jnp.float64
spec = ConvSpec((1, 1), ((1, 1), (1, 1)), (1, 1), 32, "transpose",
                preferred_element_type=preferred)
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((4, 32, 32, 32)), dtype)
w = jnp.asarray(rng.standard_normal((32, 1, 3, 3)), dtype)
y = jax.jit(lambda x, w: _core.forward(x, w, spec, "per_group"))(x, w).block_until_ready()
# (after: with a grouped convolution run first, the unrolled split did not crash)
ref = lax.conv_general_dilated(x.astype(jnp.float64), w.astype(jnp.float64), (1, 1),
                               ((1, 1), (1, 1)), feature_group_count=32,
                               precision=lax.Precision.HIGHEST)
assert y.dtype == jnp.float64, y.dtype
print(float(jnp.max(jnp.abs(y - ref)) / jnp.max(jnp.abs(ref))))
"""


@pytest.mark.parametrize("case", ["float64", "preferred"])
def test_float64_per_group_pieces_run_one_after_another_on_cpu(case):
    """cpu_f64_concurrent_conv_crash: the unrolled float64 split of this
    depthwise forward, jitted alone, died of SIGSEGV in jaxlib 0.10.1 (run in
    a child process, so a crash fails this test, not the worker). As a loop
    over the groups it runs, and gives lax's grouped convolution's values."""
    import os
    import subprocess
    import sys
    # as users run it: XLA's default optimisation level (conftest sets -O0,
    # under which it did not crash), glibc's default allocator
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                if "xla_backend_optimization_level" not in f)
    out = subprocess.run([sys.executable, "-c", _F64_PIECES, case], capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, (out.returncode, out.stderr[-3000:])
    assert float(out.stdout.split()[-1]) <= 1e-12
    # the pieces are one convolution in a scan over the groups, on CPU
    spec = _spec(groups=4, algorithm="transpose")
    x, w = jnp.ones((1, 4, 5, 5), jnp.float64), jnp.ones((4, 1, 3, 3), jnp.float64)
    from jaxgrad._conv import _core
    for dtype, scans in ((jnp.float64, [4]), (jnp.float32, [])):
        jaxpr = jax.make_jaxpr(lambda x, w: _core.forward(x, w, spec, "per_group"))(
            x.astype(dtype), w.astype(dtype))
        assert [e.params["length"] for e in jaxpr.eqns if e.primitive.name == "scan"] == scans


# --------------------------------------------------------------------------
# The forward's taps formulation: where it exists, and where "auto" takes it.


def _forward(spec, x_shape, w_shape, dtype=jnp.float32, placement=_plan.UNPLACED,
             backend="cpu"):
    return _plan.forward_choice(spec, x_shape, w_shape, dtype, placement, backend)


def test_forward_taps_for_depthwise_and_small_groups_on_cpu():
    taps = _plan.Choice("taps", "cpu_slow_grouped_forward")
    # depthwise 3x3 and 7x7, with a channel multiplier, 1-D to 3-D, float64 too
    assert _forward(_spec(groups=144), (8, 144, 56, 56), (144, 1, 3, 3)) == taps
    assert _forward(_spec(groups=192), (8, 192, 28, 28), (192, 1, 7, 7)) == taps
    assert _forward(_spec(groups=8), (2, 8, 9, 9), (16, 1, 3, 3), jnp.float64) == taps
    assert _forward(_spec(n=1, groups=4), (2, 4, 30), (4, 1, 9)) == taps
    assert _forward(_spec(n=3, groups=8), (1, 64, 8, 8, 8), (64, 8, 3, 3, 3)) == taps
    # 9 channels per group: above taps_forward_max_group_channels (8)
    bound = _plan.THRESHOLDS["taps_forward_max_group_channels"].value
    assert bound == 8
    # at batch 1 (im2col_forward_max_batch) im2col; at batch 2 one grouped
    # convolution (9 < cpu_split_min_group_channels)
    assert _forward(_spec(groups=4), (1, 36, 8, 8), (36, 9, 3, 3)) == _plan.Choice(
        "im2col", "taps_forward_max_group_channels; im2col_forward_max_batch")
    assert _forward(_spec(groups=4), (2, 36, 8, 8), (36, 9, 3, 3)) == _plan.Choice(
        "lax", "one convolution")
    # 8 channels x 5x5x2 = 400 terms > taps_forward_max_terms (216): no taps;
    # 8 x 3x3x3 = 216 is the bound itself
    assert _plan.THRESHOLDS["taps_forward_max_terms"].value == 216
    assert _forward(_spec(n=3, groups=2), (2, 16, 8, 8, 8), (16, 8, 5, 5, 2)) == (
        _plan.Choice("lax", "one convolution"))
    assert _forward(_spec(n=3, groups=2), (2, 32, 8, 8, 8), (32, 16, 3, 3, 3)) == (
        _plan.Choice("per_group", "cpu_slow_grouped"))
    assert _plan.forward_taps(_spec(n=3, groups=2), (16, 8, 5, 5, 2)) == (
        "taps_forward_max_terms")
    # dense convolutions have none (this one has 100 output positions: no im2col)
    assert _forward(_spec(), (1, 8, 10, 10), (8, 8, 3, 3)) == _plan.Choice(
        "lax", "one convolution")


def test_grouped_forward_taps_within_the_product_bounds():
    taps = _plan.Choice("taps", "cpu_slow_grouped_forward")
    strided = _plan.THRESHOLDS["taps_forward_max_group_products"].value
    stride_one = _plan.THRESHOLDS["taps_forward_stride_one_max_group_products"].value
    assert (strided, stride_one) == (384, 1536)
    # 4 groups of 6 inputs, 4x4 kernel (96 terms): C_out/G·96 products
    s2 = _spec(stride=2, groups=4)
    assert 4 * 6 * 16 == strided
    assert _forward(s2, (8, 24, 28, 28), (16, 6, 4, 4)) == taps         # 4 per group
    assert _forward(s2, (8, 24, 28, 28), (20, 6, 4, 4)) == _plan.Choice(
        "lax", "taps_forward_max_group_products; one convolution")     # 5: 480
    # at batch 1 the im2col row comes next
    assert _forward(s2, (1, 24, 28, 28), (20, 6, 4, 4)) == _plan.Choice(
        "im2col", "taps_forward_max_group_products; im2col_forward_max_batch")
    # stride 1 has its own bound: 16 outputs per group is 1536
    s1 = _spec(groups=4)
    assert _forward(s1, (8, 24, 28, 28), (64, 6, 4, 4)) == taps
    assert _forward(s1, (8, 24, 28, 28), (68, 6, 4, 4)) == _plan.Choice(
        "lax", "taps_forward_stride_one_max_group_products; one convolution")
    # strided in one dim only is strided
    s12 = ConvSpec((1, 2), ((1, 1),) * 2, (1, 1), 4, "auto")
    assert _forward(s12, (8, 24, 28, 28), (20, 6, 4, 4)).formulation == "lax"
    # one input channel per group (depthwise, channel multipliers) and 3-D
    # kernels keep taps: not measured against the bound
    assert _forward(_spec(stride=2, groups=8), (4, 8, 56, 56), (512, 1, 7, 7)) == taps
    assert _forward(_spec(n=3, stride=2, groups=8), (1, 64, 8, 8, 8),
                    (512, 8, 3, 3, 3)) == taps
    # "taps" asked for by name takes it above the bound
    assert _forward(_spec(stride=2, groups=4, algorithm="taps"), (8, 24, 28, 28),
                    (20, 6, 4, 4)) == _plan.Choice("taps", "asked for")
    # beyond cpu_split_max_groups (32) and under a mesh: not measured, taps
    # stays (576 products: 8 in and out per group, 3x3)
    assert _forward(_spec(stride=2, groups=64), (8, 512, 28, 28), (512, 8, 3, 3)) == taps
    assert _forward(_spec(stride=2, groups=32), (8, 256, 28, 28),
                    (256, 8, 3, 3)).formulation == "lax"
    assert _forward(_spec(stride=2, groups=4), (8, 24, 28, 28), (20, 6, 4, 4),
                    placement=Placement(auto_mesh=True, any_mesh=True)) == taps


def test_dense_forward_with_few_positions_is_im2col_on_cpu():
    # XLA CPU's dense convolution with an output smaller than its kernel:
    # ResNet-18's last stage at 32 px, 3x3 at 2x2 (4 positions)
    rule = _plan.THRESHOLDS["dense_im2col_forward_max_positions"]
    one = _plan.THRESHOLDS["dense_im2col_forward_one_sample_max_positions"]
    assert (rule.value, one.value) == (9, 64)
    im2col = _plan.Choice("im2col", "dense_im2col_forward_max_positions")
    assert _forward(_spec(), (16, 512, 2, 2), (512, 512, 3, 3)) == im2col
    # 3x3 output (9 positions) is the bound, 3x4 (12) is beyond it
    assert _forward(_spec(stride=2), (4, 64, 6, 6), (64, 64, 3, 3)) == im2col
    assert _forward(_spec(stride=2), (4, 64, 6, 7), (64, 64, 3, 3)).formulation == "lax"
    # one sample: up to 64 positions (8x8), not 9x8
    assert _forward(_spec(), (1, 64, 8, 8), (64, 64, 3, 3)) == _plan.Choice(
        "im2col", "dense_im2col_forward_one_sample_max_positions")
    assert _forward(_spec(), (1, 64, 9, 8), (64, 64, 3, 3)).formulation == "lax"
    # 1-D and 3-D too; patches above dense_taps_max_elements (2^23) keep lax
    assert _forward(_spec(n=1), (8, 32, 3), (32, 32, 3)) == im2col
    assert _forward(_spec(n=3), (2, 16, 2, 2, 2), (16, 16, 3, 3, 3)) == im2col
    bound = _plan.THRESHOLDS["dense_taps_max_elements"].value
    assert 4096 * 256 * 9 * 4 > bound
    assert _forward(_spec(), (4096, 256, 2, 2), (256, 256, 3, 3)).formulation == "lax"
    # not on GPU, not by name, not under a mesh, not for lax's own layouts
    assert _forward(_spec(), (16, 512, 2, 2), (512, 512, 3, 3),
                    backend="gpu").formulation == "lax"
    assert _forward(_spec(algorithm="transpose"), (16, 512, 2, 2),
                    (512, 512, 3, 3)).formulation == "lax"
    assert _forward(_spec(), (16, 512, 2, 2), (512, 512, 3, 3),
                    placement=_plan.Placement(any_mesh=True)).formulation == "lax"


def test_forward_taps_off_cpu_and_by_algorithm():
    shapes = ((8, 32, 16, 16), (32, 1, 3, 3))
    assert _forward(_spec(groups=32), *shapes, backend="gpu") == _plan.Choice(
        "lax", "one convolution")
    assert _forward(_spec(groups=32, algorithm="taps"), *shapes,
                    backend="gpu") == _plan.Choice("taps", "asked for")
    assert _forward(_spec(groups=32, algorithm="transpose"), *shapes).formulation == "lax"
    # asked for where there is none: the convolution, saying why
    assert _forward(_spec(groups=4, algorithm="taps"), (1, 64, 8, 8),
                    (64, 16, 3, 3)) == _plan.Choice(
        "per_group", "taps_forward_max_group_channels; cpu_slow_grouped")
    explicit = Placement(explicit_axes=True, any_mesh=True)
    assert _forward(_spec(groups=32, algorithm="taps"), *shapes, placement=explicit) == (
        _plan.Choice("lax", "explicit_axes_reshape; one convolution"))
    # only PyTorch's geometry (here: an lhs dilation, as conv_transpose's forward would)
    dilated = ConvSpec((1, 1), ((1, 1),) * 2, (1, 1), 32, "taps", lhs_dilation=(2, 2))
    assert _plan.forward_taps(dilated, shapes[1]) == "taps needs PyTorch's geometry"


def test_placement_decides_under_meshes():
    spec = _spec(groups=4, algorithm="transpose")
    shapes = ((8, 16, 6, 6), (16, 4, 3, 3), (8, 16, 6, 6))
    explicit = Placement(explicit_axes=True, batch_split_explicitly=True, any_mesh=True)
    p = plan(spec, *shapes, jnp.float32, explicit, backend="gpu")
    assert p.forward.reason == "grouped_batch_all_gather"
    assert p.input_grad == _plan.Choice("transpose_per_group",
                                        "explicit_axes_reshape; grouped_batch_all_gather")
    assert p.weight_grad.formulation == "transpose"        # one all-reduce, not G
    several = Placement(auto_mesh=True, any_mesh=True, several_axes=True)
    p = plan(spec, *shapes, jnp.float32, several, backend="gpu")
    assert p.weight_grad == _plan.Choice("transpose_per_group",
                                         "asked for; multi_axis_batch_group")
    # explicit axes refuse taps even when asked for
    p = plan(_spec(groups=4, algorithm="taps"), *shapes, jnp.float32, explicit,
             backend="cpu")
    assert p.input_grad.reason == "explicit_axes_reshape; grouped_batch_all_gather"
    assert p.weight_grad.reason == "explicit_axes_reshape"


def test_placement_of_real_operands():
    assert Placement.of(jnp.ones(3), np.ones(3)) == _plan.UNPLACED
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    x = jax.device_put(jnp.ones((2, 3)), jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec("data")))
    placed = Placement.of(x, jnp.ones(3))
    assert placed.explicit_axes and placed.batch_split_explicitly
    assert not placed.any_mesh            # one device: nothing is split


def test_every_reason_is_a_row_of_the_table_or_a_plain_word():
    plain = {"one convolution", "asked for", "cpu measured",
             "not measured on this backend", "cpu measured: depthwise or many groups",
             "cpu measured: one GEMM (1x1 or tiled)", "cpu measured: 3-D",
             "cpu measured: stride-2 input gradient", _plan.ONE_GROUPED_3D,
             _plan.GPU_DEPTHWISE_WEIGHT, _plan.DEPTHWISE_UNBUFFERED}
    rows = set(_plan.THRESHOLDS) | set(_plan.WORKAROUNDS)
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 2, 4, 8]))
        c_in = groups * int(rng.choice([1, 2, 8]))
        c_out = groups * int(rng.choice([1, 3]))
        k, s = int(rng.choice([1, 2, 3])), int(rng.choice([1, 2]))
        spec = ConvSpec((s,) * n, ((0, 0),) * n, (1,) * n, groups,
                        str(rng.choice(["auto", "transpose", "taps"])))
        size = int(rng.integers(k, 9))
        out = (size - k) // s + 1
        placement = Placement(*(bool(b) for b in rng.integers(0, 2, 5)))
        p = plan(spec, (2, c_in) + (size,) * n, (c_out, c_in // groups) + (k,) * n,
                 (2, c_out) + (out,) * n, rng.choice([jnp.float32, jnp.float64]),
                 placement, backend=str(rng.choice(["cpu", "gpu"])))
        for choice in (p.forward, p.input_grad, p.weight_grad):
            for reason in choice.reason.split("; "):
                assert reason in rows | plain, choice
                seen.add(reason)
    assert len(seen) >= 9 and "cpu_slow_grouped_forward" in seen
    for row in _plan.WORKAROUNDS.values():
        assert row.jaxlib and row.behaviour and row.remedy
    for row in _plan.THRESHOLDS.values():
        assert row.measured and row.decides


def _conv_count(f, *args) -> int:
    """Convolutions the program runs: a scan's body counts once per iteration
    (the per-group forms loop over the groups)."""
    jaxpr = jax.make_jaxpr(f)(*args)
    count = 0

    def walk(jaxpr, times):
        nonlocal count
        for eqn in jaxpr.eqns:
            count += times * (eqn.primitive.name == "conv_general_dilated")
            inner = times * eqn.params["length"] if eqn.primitive.name == "scan" else times
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub, inner)
    walk(jaxpr.jaxpr, 1)
    return count


def test_the_kernels_follow_the_plan():
    """A grouped conv under "transpose": each map runs as many convolutions as
    the plan of this backend says (on CPU: one for the forward and the input
    gradient, 2 channels per group being fewer than
    cpu_split_min_group_channels; G for the weight gradient)."""
    groups = 4
    x, w = jnp.ones((1, 8, 6, 6), jnp.float32), jnp.ones((8, 2, 3, 3), jnp.float32)
    spec = _spec(groups=groups, algorithm="transpose")
    p = plan(spec, x.shape, w.shape, (1, 8, 6, 6), x.dtype)
    count = {"lax": 1, "transpose": 1, "per_group": groups, "transpose_per_group": groups}
    if jax.default_backend() == "cpu":
        assert (p.forward.formulation, p.input_grad.formulation,
                p.weight_grad.formulation) == ("lax", "transpose", "transpose_per_group")

    def loss(x, w):
        return jaxgrad.conv2d(x, w, padding=1, groups=groups, algorithm="transpose").sum()
    assert _conv_count(loss, x, w) == count[p.forward.formulation]
    assert _conv_count(jax.grad(loss, (0, 1)), x, w) == sum(
        count[c.formulation] for c in (p.forward, p.input_grad, p.weight_grad))


def test_auto_runs_a_grouped_forward_without_a_convolution_on_cpu():
    """The forward of a small-group conv under "auto" on CPU is taps: no
    convolution in the forward program; under "transpose", as many as planned."""
    x, w = jnp.ones((1, 8, 6, 6), jnp.float32), jnp.ones((8, 2, 3, 3), jnp.float32)
    assert jax.default_backend() == "cpu"
    forward = lambda a: lambda x, w: jaxgrad.conv2d(x, w, padding=1, groups=4, algorithm=a)
    assert plan(_spec(groups=4), x.shape, w.shape, (1, 8, 6, 6),
                x.dtype).forward.formulation == "taps"
    assert _conv_count(forward("auto"), x, w) == 0
    assert _conv_count(forward("taps"), x, w) == 0
    # one grouped convolution (2 channels per group: not split)
    assert _conv_count(forward("transpose"), x, w) == 1


# --------------------------------------------------------------------------
# What autotuning times (worked out by hand from the rules in the docstring).


def _candidates(spec, x_shape, w_shape, g_shape, dtype=jnp.float32, backend="cpu"):
    return tuple(_plan.candidates(kind, spec, x_shape, w_shape, g_shape, dtype, backend)
                 for kind in _plan.MAPS)


def test_autotune_candidates():
    both = ("transpose", "taps")
    every = ("transpose", "transpose_per_group", "taps")
    # dense: the forward as lax or im2col; each gradient textbook or taps, and
    # at stride 1 the weight gradient with its operands swapped too
    assert _candidates(_spec(), (2, 8, 8, 8), (16, 8, 3, 3), (2, 16, 8, 8)) == (
        ("lax", "im2col"), both, ("transpose", "transpose_swapped", "taps"))
    assert _candidates(_spec(stride=2), (2, 8, 8, 8), (16, 8, 3, 3), (2, 16, 4, 4)) == (
        ("lax", "im2col"), both, both)
    # ResNeXt: every formulation of every map
    assert _candidates(*RESNEXT) == (("lax", "per_group", "taps", "im2col"), every, every)
    # 64 groups > autotune_max_pieces (32): no per-group forms
    assert _plan.THRESHOLDS["autotune_max_pieces"].value == 32
    assert _candidates(_spec(groups=64), (2, 64, 8, 8), (64, 1, 3, 3), (2, 64, 8, 8)) == (
        ("lax", "taps", "im2col"), both, both)
    # float64 depthwise on CPU: the whole convolution leaks NaN across channels,
    # its per-group form replaces it (forward, and the input gradient's
    # convolution over 8 channels in 8 groups); not on GPU
    depthwise = (_spec(groups=8), (2, 8, 6, 6), (8, 1, 3, 3), (2, 8, 6, 6))
    assert _candidates(*depthwise, jnp.float64) == (
        ("per_group", "taps", "im2col"), ("transpose_per_group", "taps"), every)
    assert _candidates(*depthwise, jnp.float64, backend="gpu") == (
        ("lax", "per_group", "taps", "im2col"), every, every)
    # 9 channels per group: no forward taps, im2col
    assert _candidates(_spec(groups=4), (1, 36, 8, 8), (36, 9, 3, 3), (1, 36, 8, 8))[0] == (
        "lax", "per_group", "im2col")
    # lax's own layouts: no taps at all
    nhwc = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    spec = ConvSpec((1, 1), ((1, 1),) * 2, (1, 1), 4, numbers=nhwc)
    assert _candidates(spec, (2, 8, 8, 16), (3, 3, 4, 16), (2, 8, 8, 16)) == (
        ("lax", "per_group"), ("transpose", "transpose_per_group"),
        ("transpose", "transpose_per_group"))
    # taps' buffer above taps_max_elements (129 * 1024^2 > 2^27): no gradient taps
    assert _candidates(_spec(padding=0), (1, 129, 1024, 1024), (8, 129, 1, 1),
                       (1, 8, 1024, 1024))[1:] == (("transpose",),
                                                   ("transpose", "transpose_swapped"))
    # ... but depthwise gradients build none: taps at 64·256·9·112² > 2^27
    # (im2col's patches are such a buffer: not for the forward)
    assert _candidates(_spec(groups=256), (64, 256, 112, 112), (256, 1, 3, 3),
                       (64, 256, 112, 112)) == (("lax", "taps"), both, both)
    # with a channel multiplier of 2 they do again
    assert _candidates(_spec(groups=256), (64, 256, 112, 112), (512, 1, 3, 3),
                       (64, 512, 112, 112))[1:] == (("transpose",), ("transpose",))
    # nor does the input gradient of one output channel per group (2 inputs
    # each, 32·64·9·112² > 2^27); its weight gradient builds one
    assert _candidates(_spec(groups=32), (32, 64, 112, 112), (32, 2, 3, 3),
                       (32, 32, 112, 112))[1:] == (every, ("transpose", "transpose_per_group"))


def test_large_kernels_keep_the_textbook_gradients():
    """Above taps_max_taps (128) taps, "auto" keeps the textbook gradients on
    every backend (taps' compile time grows with the kernel), except for a
    tiled kernel (its taps are a reshape) and for 3-D kernels up to
    autotune_max_taps (343) taps, the bound of what autotuning times."""
    assert (_plan.THRESHOLDS["taps_max_taps"].value,
            _plan.THRESHOLDS["autotune_max_taps"].value) == (128, 343)
    # depthwise 11x11 (121 taps) and 13x13 (169): same sizes otherwise
    for k, expected in ((11, "taps"), (13, "transpose")):
        case = (_spec(groups=64, padding=k // 2), (4, 64, 32, 32), (64, 1, k, k),
                (4, 64, 32, 32))
        p = plan(*case, jnp.float32, backend="cpu")
        assert (p.input_grad.formulation, p.weight_grad.formulation) == (expected,) * 2, k
        if expected == "transpose":
            assert p.input_grad.reason == p.weight_grad.reason == "taps_max_taps"
            # ... and on GPU, where depthwise weight gradients otherwise take taps
            assert plan(*case, jnp.float32, backend="gpu").weight_grad.reason == (
                "taps_max_taps")
    # a 1-D kernel of 1024 taps over one output (dense: taps at any size before)
    p = plan(_spec(1, padding=0), (1, 1, 1024), (1, 1, 1024), (1, 1, 1), jnp.float32,
             backend="cpu")
    assert (p.input_grad.reason, p.weight_grad.reason) == ("taps_max_taps",) * 2
    # 3-D kernels up to autotune_max_taps: 7x7x7 (343) taps, 8x8x7 (448) not
    for shape, expected in (((7, 7, 7), "taps"), ((8, 8, 7), "transpose")):
        case = (_spec(3, padding=3, groups=16), (2, 16, 16, 16, 16), (16, 1) + shape,
                (2, 16) + tuple(16 + 2 * 3 - k + 1 for k in shape))
        p = plan(*case, jnp.float32, backend="cpu")
        assert p.input_grad.formulation == p.weight_grad.formulation == expected, shape
        if expected == "transpose":    # the row that decided it is the 3-D bound
            assert p.weight_grad.reason == "autotune_max_taps"
    # tiled: 32x32 at stride 32 (1024 taps) is one GEMM
    p = plan(_spec(stride=32, padding=0), (8, 1, 128, 128), (512, 1, 32, 32),
             (8, 512, 4, 4), jnp.float32, backend="cpu")
    assert p.input_grad.formulation == p.weight_grad.formulation == "taps"
    # autotuning: 3-D depthwise 7x7x7 (343 taps) times taps, 2-D 19x19 (361) not
    for k, shape, taps in ((7, (7, 7, 7), True), (19, (19, 19), False)):
        n = len(shape)
        spec = _spec(n, padding=k // 2, groups=16)
        x = (2, 16) + (16,) * n
        names = _candidates(spec, x, (16, 1) + shape, x)
        assert [("taps" in m) for m in names[1:]] == [taps, taps], (k, names)
    assert "taps" in _candidates(_spec(stride=32, padding=0), (8, 1, 128, 128),
                                 (512, 1, 32, 32), (8, 512, 4, 4))[2]


# --------------------------------------------------------------------------
# What ran: the kernels report their choices to ``_plan.recording``.


def test_recording_reports_each_map_as_the_kernels_choose_it():
    """Each map of a conv and of a transposed conv, traced: the forward of a
    transposed convolution is the core's input-gradient map, its input
    gradient the core's forward. Expected formulations from the rules by hand
    (explicit algorithms: what they ask for; grouped forward under "taps":
    taps, dense: lax)."""
    x, w = jnp.ones((1, 8, 6, 6), jnp.float32), jnp.ones((8, 2, 3, 3), jnp.float32)

    def traced(f, *args):
        with _plan.recording() as made:
            jax.make_jaxpr(f)(*args)
        return [(m.kind, m.choice.formulation, m.shapes) for m in made]

    conv = lambda x, w: jaxgrad.conv2d(x, w, padding=1, groups=4, algorithm="taps")
    assert traced(conv, x, w) == [("forward", "taps", ((1, 8, 6, 6), (8, 2, 3, 3)))]
    assert [m[:2] for m in traced(jax.grad(lambda x, w: conv(x, w).sum(), (0, 1)),
                                  x, w)] == [("forward", "taps"), ("input_grad", "taps"),
                                             ("weight_grad", "taps")]
    dense = jnp.ones((8, 8, 3, 3), jnp.float32)
    convt = lambda x, w: jaxgrad.conv_transpose2d(x, w, stride=2, algorithm="transpose")
    assert [m[:2] for m in traced(jax.grad(lambda x, w: convt(x, w).sum(), (0, 1)),
                                  x, dense)] == [("input_grad", "transpose"),
                                                 ("forward", "lax"),
                                                 ("weight_grad", "transpose")]
    # nested recorders both see a choice (a fresh function: JAX caches traces)
    with _plan.recording() as outer:
        inner = traced(lambda x, w: conv(x, w), x, w)
    assert len(outer) == len(inner) == 1
    assert traced(lambda x: x * 2, x) == []


def test_the_looped_per_group_form_equals_lax_autodiff_to_second_order():
    """A weight gradient with large enough pieces (4·16·16 = 1024 positions)
    of few channels (2 per group) runs per group as one convolution in a loop;
    float64, first and second order, against JAX autodiff of one grouped lax
    convolution."""
    groups = 4
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((4, 8, 16, 16)))
    w = jnp.asarray(rng.standard_normal((12, 2, 3, 3)))
    v = jnp.asarray(rng.standard_normal((12, 2, 3, 3)))

    def ours(x, w):
        return jnp.sum(jnp.sin(jaxgrad.conv2d(x, w, padding=1, groups=groups,
                                              algorithm="transpose")))

    def ref(x, w):
        return jnp.sum(jnp.sin(lax.conv_general_dilated(
            x, w, (1, 1), ((1, 1), (1, 1)), feature_group_count=groups,
            precision=lax.Precision.HIGHEST)))

    with jax.enable_x64():
        x, w, v = x.astype(jnp.float64), w.astype(jnp.float64), v.astype(jnp.float64)
        assert _conv_count(ours, x, w) == 1      # the forward: one grouped conv
        assert "scan[" in str(jax.make_jaxpr(jax.grad(ours, (0, 1)))(x, w))
        for got, want in zip(jax.grad(ours, (0, 1))(x, w), jax.grad(ref, (0, 1))(x, w)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
        # second order: the gradient of <grad_w, v> w.r.t. x and w
        hvp = lambda f: jax.grad(lambda x, w: jnp.vdot(jax.grad(f, 1)(x, w), v), (0, 1))
        for got, want in zip(hvp(ours)(x, w), hvp(ref)(x, w)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_few_channel_depthwise_weight_gradient_with_a_large_buffer_is_textbook():
    # 16 channels (<= depthwise_weight_few_channels), B = 4·16·9·187² = 20.1M
    # elements (> depthwise_weight_taps_max_elements = 2^23): the textbook rule
    few, limit = (_plan.THRESHOLDS[k].value for k in (
        "depthwise_weight_few_channels", "depthwise_weight_taps_max_elements"))
    assert 16 <= few and 4 * 16 * 9 * 187 * 187 > limit
    shapes = ((4, 16, 187, 187), (16, 1, 3, 3), (4, 16, 187, 187))
    p = plan(_spec(groups=16), *shapes, jnp.float32, backend="cpu")
    assert p.weight_grad == _plan.Choice("transpose", "depthwise_weight_taps_max_elements")
    assert p.input_grad.formulation == "taps"        # only the weight gradient
    # 32 channels: taps (more channels: XLA's C-fold expansion costs more)
    shapes32 = ((4, 32, 187, 187), (32, 1, 3, 3), (4, 32, 187, 187))
    assert plan(_spec(groups=32), *shapes32, jnp.float32,
                backend="cpu").weight_grad.formulation == "taps"
    # a smaller map (B = 4·16·9·64² = 2.4M): taps
    small = ((4, 16, 64, 64), (16, 1, 3, 3), (4, 16, 64, 64))
    assert plan(_spec(groups=16), *small, jnp.float32,
                backend="cpu").weight_grad.formulation == "taps"
    # with a channel multiplier (C_out = 2C) the GEMM path: taps
    mult = ((4, 16, 187, 187), (32, 1, 3, 3), (4, 32, 187, 187))
    assert plan(_spec(groups=16), *mult, jnp.float32,
                backend="cpu").weight_grad.formulation == "taps"
    # 3-D: taps (XLA's 3-D convolutions are the slow path)
    cube = ((4, 16, 40, 40, 40), (16, 1, 3, 3, 3), (4, 16, 40, 40, 40))
    assert plan(_spec(n=3, groups=16), *cube, jnp.float32,
                backend="cpu").weight_grad.formulation == "taps"
    # one sample (below depthwise_weight_few_channels_min_batch): taps, at the
    # same buffer size (1·16·9·374² = 20.1M) as the 4-sample map above
    assert _plan.THRESHOLDS["depthwise_weight_few_channels_min_batch"].value == 2
    one = ((1, 16, 374, 374), (16, 1, 3, 3), (1, 16, 374, 374))
    assert plan(_spec(groups=16), *one, jnp.float32,
                backend="cpu").weight_grad.formulation == "taps"
    two = ((2, 16, 265, 265), (16, 1, 3, 3), (2, 16, 265, 265))
    assert plan(_spec(groups=16), *two, jnp.float32, backend="cpu").weight_grad == \
        _plan.Choice("transpose", "depthwise_weight_taps_max_elements")


def test_a_1x1_depthwise_weight_gradient_takes_taps_at_any_buffer():
    # held-out run 14's transposed conv: 8 channels, batch 59, 147² px,
    # B = 59·8·147² = 10.2M > depthwise_weight_taps_max_elements; with a 3x3
    # kernel that row keeps the textbook rule, with a 1x1 taps (a product and
    # a sum over the input: 0.39x the textbook rule's time there)
    limit = _plan.THRESHOLDS["depthwise_weight_taps_max_elements"].value
    assert 59 * 8 * 147 * 147 > limit
    for padding, kernel, want in ((0, (1, 1), "taps"), (1, (3, 3), "transpose")):
        shapes = ((59, 8, 147, 147), (8, 1) + kernel, (59, 8, 147, 147))
        got = plan(_spec(groups=8, padding=padding), *shapes, jnp.float32,
                   backend="cpu").weight_grad
        assert got.formulation == want, (kernel, got)
    # through the public transposed convolution, as traced
    x, w = (jax.ShapeDtypeStruct(s, jnp.float32) for s in ((59, 8, 147, 147), (8, 1, 1, 1)))
    with _plan.recording() as made:
        jax.make_jaxpr(jax.grad(lambda x, w: jaxgrad.conv_transpose2d(
            x, w, groups=8).sum(), (0, 1)))(x, w)
    assert {m.kind: m.choice.formulation for m in made}["weight_grad"] == "taps"


def test_the_aligned_weight_row_is_for_2d_kernels():
    # 192 -> 104 channels (multiples of 8, C_in >= 32, C_out < 256): a 2-D
    # weight gradient keeps the textbook rule; the same counts in 1-D take
    # the dense rule, here taps (B = 1·192·7·932 = 1.25M <= 2^23, C_out >= 64)
    p2 = plan(_spec(stride=2, padding=0), (1, 192, 40, 40), (104, 192, 3, 3),
              (1, 104, 19, 19), jnp.float32, backend="cpu")
    assert p2.weight_grad == _plan.Choice(
        "transpose", "dense_taps_aligned_weight_min_out_channels")
    p1 = plan(_spec(n=1, stride=2, padding=0), (1, 192, 1869), (104, 192, 7),
              (1, 104, 932), jnp.float32, backend="cpu")
    assert p1.weight_grad == _plan.Choice("taps", "cpu measured")


def test_dense_input_gradients_take_taps_only_on_tiny_maps():
    # A dense stride-1 input gradient is a stride-1 convolution with ΠI
    # outputs: XLA CPU's is pathologically slow only below the kernel's size
    rows = _plan.THRESHOLDS
    assert (rows["dense_taps_input_grad_max_positions"].value,
            rows["dense_taps_input_grad_one_sample_max_positions"].value) == (9, 64)
    taps = _plan.Choice("taps", "cpu measured")

    def input_grad(x_shape, c_out):
        return _input_grad(_spec(), x_shape, c_out, (3, 3))

    # ResNet-18's last stage at 32 px (2x2 maps): taps, 20x faster in a step
    # (the maps are smaller than the kernel: KERNEL_OVER_INPUT, below)
    assert input_grad((16, 512, 2, 2), 512) == _plan.Choice("taps", _plan.KERNEL_OVER_INPUT)
    # 3x3 (9 positions) is the bound; 3x4 and the U-Net's 32x32 are beyond it
    assert input_grad((16, 128, 3, 3), 128) == taps
    beyond = _plan.Choice("transpose", "dense_taps_input_grad_max_positions")
    assert input_grad((16, 128, 3, 4), 128) == beyond
    assert input_grad((4, 64, 32, 32), 64) == beyond
    # one sample, beyond dense_taps_small_elements: up to 64 positions
    assert input_grad((1, 2048, 8, 8), 128) == taps
    assert input_grad((1, 2048, 8, 9), 128) == _plan.Choice(
        "transpose", "dense_taps_input_grad_one_sample_max_positions")
    # 2-D dilated ones at stride 1 are (below); strided ones are not
    strided = plan(_spec(stride=2), (4, 64, 32, 32), (64, 64, 3, 3), (4, 64, 16, 16),
                   jnp.float32, backend="cpu").input_grad
    assert strided.reason != beyond.reason
    # nor the weight gradient, nor the GPU's rules
    x, w, g = (4, 64, 32, 32), (128, 64, 3, 3), (4, 128, 32, 32)
    assert plan(_spec(), x, w, g, jnp.float32, backend="cpu").weight_grad.reason != (
        beyond.reason)
    assert plan(_spec(), x, w, g, jnp.float32, backend="gpu").input_grad.reason != (
        beyond.reason)


def test_stride_one_input_gradients_by_kernel_size_and_dilation():
    # The positions rows cover 2-D input gradients with kernel dilation at
    # stride 1; an input smaller than the kernel in some dim takes taps
    rows = _plan.THRESHOLDS
    beyond = _plan.Choice("transpose", "dense_taps_input_grad_max_positions")
    one = _plan.Choice("transpose", "dense_taps_input_grad_one_sample_max_positions")
    over = _plan.Choice("taps", _plan.KERNEL_OVER_INPUT)

    input_grad = _padded_input_grad

    # a DeepLab-style ASPP branch, 33x33 at rate 6: the textbook rule
    assert input_grad((2, 256, 33, 33), 256, 3, dilation=6) == beyond
    # one sample: the bound is 64 positions
    assert rows["dense_taps_input_grad_one_sample_max_positions"].value == 64
    assert input_grad((1, 256, 33, 33), 256, 3, dilation=6) == one
    assert input_grad((1, 2048, 8, 8), 128, 3, dilation=2) == _plan.Choice(
        "taps", "cpu measured")
    assert input_grad((1, 2048, 8, 9), 128, 3, dilation=2) == one
    # I < K in some dim: taps, plain or dilated, however many positions
    # (x (8, 512, 6, 6), 7x7: the textbook rule took 2,812 ms, taps 49)
    assert input_grad((8, 512, 6, 6), 256, 7) == over
    assert input_grad((8, 512, 5, 5), 256, 7, dilation=2) == over
    assert input_grad((16, 512, 7, 6), 256, 7) == over
    assert input_grad((4, 512, 7, 7), 256, 7) == beyond       # I = K
    assert input_grad((8, 512, 5, 5), 256, 5, dilation=2) == beyond
    # ahead of the buffer and output-channel rows (5,611 against 136 ms at
    # the first; 30.7 against 2.7 at the second), not of taps_max_elements
    most = rows["dense_taps_max_elements"].value
    assert 16 * 512 * 49 * 36 > most and input_grad((16, 512, 6, 6), 256, 7) == over
    assert rows["dense_taps_min_out_channels"].value > 32
    assert input_grad((8, 512, 4, 4), 32, 5) == over
    assert input_grad((16, 512, 3, 3), 16, 5, dilation=2) == over   # 0.22x
    # (the two losses measured, 1.1-1.4x, are 7x7 dilation 2 on 5x5 maps with
    # 8 and 32 outputs: (16, 512, 5, 5) -> 8 takes taps by this clause too)
    # 1-D inputs shorter than the kernel were not measured: not this clause's
    assert input_grad((32, 1024, 8), 256, 9) == _plan.Choice("taps", "cpu measured")
    assert input_grad((512, 1024, 6, 6), 256, 7) == _plan.Choice(
        "transpose", "taps_max_elements")
    # not the weight gradient's, nor a grouped input gradient's
    spec = _spec(padding=3)
    assert plan(spec, (8, 512, 6, 6), (256, 512, 7, 7), (8, 256, 6, 6), jnp.float32,
                backend="cpu").weight_grad.reason != over.reason
    grouped = plan(_spec(padding=3, groups=2), (8, 512, 6, 6), (256, 256, 7, 7),
                   (8, 256, 6, 6), jnp.float32, backend="cpu").input_grad
    assert grouped.reason != over.reason
    # within the positions bound the row is not reached: taps
    assert input_grad((16, 512, 3, 3), 512, 3) == _plan.Choice("taps", "cpu measured")
    # 1-D dilated input gradients keep taps (a TCN's steps: no difference);
    # stride 3 is no row's
    assert input_grad((8, 64, 1000), 64, 3, dilation=4) == _plan.Choice(
        "taps", "cpu measured")
    assert input_grad((4, 64, 1000), 64, 3) == beyond
    assert input_grad((4, 64, 30, 30), 64, 3, dilation=2, stride=3) == _plan.Choice(
        "taps", "cpu measured")


def test_stride_two_input_gradients_of_wide_layers_on_small_maps_keep_the_textbook_rule():
    # A dense 2-D stride-2 input gradient with >= 64 channels each way, an
    # input of at most 32 x 32 positions and more than twice the kernel in
    # every dim: the textbook rule (SGD steps of DCGAN discriminators and
    # All-CNN-C ran 4-11% faster so); elsewhere the stride-2 row's taps
    row = _plan.Choice("transpose", "strided_input_grad_textbook_min_channels")
    phases = _plan.Choice("taps", "cpu measured: stride-2 input gradient")
    fewest = _plan.THRESHOLDS["strided_input_grad_textbook_min_channels"].value
    most = _plan.THRESHOLDS["strided_input_grad_textbook_max_positions"].value
    assert (fewest, most) == (64, 1024)

    input_grad = functools.partial(_padded_input_grad, stride=2)

    # a DCGAN discriminator's 4x4 layers at 64 px, All-CNN-C's 3x3 at 32 px
    assert input_grad((16, 128, 16, 16), 256, 4) == row
    assert input_grad((32, 96, 32, 32), 96, 3) == row
    assert input_grad((16, 256, 7, 7), 512, 3) == row                 # 7 > 2·3
    # both channel counts at least 64
    assert input_grad((16, 64, 16, 16), 64, 3) == row
    assert input_grad((16, 63, 16, 16), 128, 3) == phases
    assert input_grad((16, 128, 16, 16), 63, 3) == phases
    # inputs of at most twice the kernel in some dim keep taps (XLA's
    # transposed convolution: 64 against 3.8 ms at (16, 256, 4, 4) 4x4)
    assert input_grad((16, 256, 8, 8), 512, 4) == phases
    assert input_grad((16, 256, 9, 8), 512, 4) == phases
    assert input_grad((16, 256, 9, 9), 512, 4) == row
    # at most 1024 input positions, whatever the aspect (ResNet-50's 56 x 56
    # keeps taps, 0.65x the textbook rule's time there as given)
    assert input_grad((8, 64, 16, 64), 128, 3) == row
    assert input_grad((8, 64, 16, 65), 128, 3) == phases
    assert input_grad((4, 128, 56, 56), 128, 3) == phases
    # not with kernel dilation, grouped, 1-D or at stride 3 (not measured)
    assert input_grad((16, 128, 16, 16), 256, 3, dilation=2) == phases
    assert input_grad((16, 128, 16, 16), 256, 3, groups=2) == phases
    assert input_grad((16, 128, 64), 256, 3) == phases
    assert input_grad((16, 128, 16, 16), 256, 3, stride=3) != row
    # nor the weight gradient; a transposed convolution's forward is this map
    # (DCGAN's generator: 4x4 stride 2, 128 -> 64 channels, 16 -> 32 px)
    spec = _spec(stride=2)
    assert plan(spec, (16, 128, 16, 16), (256, 128, 4, 4), (16, 256, 8, 8), jnp.float32,
                backend="cpu").weight_grad.reason != row.reason
    x, w = jnp.ones((4, 128, 16, 16)), jnp.ones((128, 64, 4, 4))
    with _plan.recording() as made:
        jax.make_jaxpr(lambda x, w: jaxgrad.conv_transpose2d(x, w, stride=2, padding=1))(x, w)
    assert [(m.kind, m.choice) for m in made] == [("input_grad", row)]


def test_one_sample_weight_gradients_of_thin_layers_take_taps():
    # One sample, stride 1, at most 16 input and 16 output channels: taps
    # within dense_taps_max_elements, ahead of dense_taps_min_out_channels
    row = _plan.Choice("taps", "one_sample_weight_taps_max_in_channels")
    few = _plan.Choice("transpose", "dense_taps_min_out_channels")
    rows = _plan.THRESHOLDS
    assert (rows["one_sample_weight_taps_max_in_channels"].value,
            rows["one_sample_weight_taps_max_out_channels"].value) == (16, 16)

    weight_grad = _padded_weight_grad

    # held-out run 20's worst layer (the core of a transposed convolution):
    # B = 4·25·171² = 2.9M, above dense_taps_small_elements
    assert 4 * 25 * 171 * 171 > rows["dense_taps_small_elements"].value
    assert weight_grad((1, 4, 171, 171), 16, 5) == row
    assert weight_grad((1, 12, 160, 160), 16, 3, dilation=2) == row
    assert weight_grad((1, 16, 112, 112), 16, 5) == row
    # 17 inputs, 32 outputs, two samples, stride 2: the rows as before
    assert weight_grad((1, 17, 112, 112), 16, 5) == few
    assert weight_grad((1, 3, 256, 256), 32, 3) == few     # U-Net's first layer
    assert weight_grad((2, 4, 171, 171), 16, 5) == few
    assert weight_grad((1, 16, 171, 171), 16, 5, stride=2, dilation=2) == few
    # beyond dense_taps_max_elements, 1-D or grouped: not this row
    assert rows["dense_taps_max_elements"].value < 16 * 49 * 256 * 256 <= (
        rows["taps_max_elements"].value)
    assert weight_grad((1, 16, 256, 256), 16, 7) == few
    assert 16 * 5 * 20000 > rows["dense_taps_small_elements"].value
    assert weight_grad((1, 16, 20000), 16, 5) == few
    assert weight_grad((1, 16, 112, 112), 16, 5, groups=2) != row
    # its input gradient is another map
    spec = _spec(padding=2)
    assert plan(spec, (1, 4, 171, 171), (16, 4, 5, 5), (1, 16, 171, 171), jnp.float32,
                backend="cpu").input_grad.reason != row.reason


def test_one_d_input_gradients_with_many_more_outputs_take_taps():
    # 1-D, dense, stride 1: with O >= 8·C_in the textbook input gradient is a
    # convolution with few output features, slow in XLA CPU's 1-D path; taps
    # at any number of positions
    ratio = _plan.THRESHOLDS["one_d_taps_input_grad_min_channel_ratio"].value
    most_in = _plan.THRESHOLDS["one_d_taps_input_grad_max_in_channels"].value
    most = _plan.THRESHOLDS["dense_taps_max_elements"].value
    row = _plan.Choice("taps", "one_d_taps_input_grad_min_channel_ratio")

    input_grad = functools.partial(_padded_input_grad, k=5)

    assert (ratio, most_in) == (8, 12)
    # held-out run 12's worst point (284 = 35.5 x 8 output channels): before
    # this row dense_taps_input_grad_max_positions, 1.64x the fastest
    assert input_grad((31, 8, 61), 284) == row
    assert input_grad((31, most_in, 500), most_in * ratio) == row
    assert input_grad((31, most_in, 500), most_in * ratio - 1) == _plan.Choice(
        "transpose", "dense_taps_input_grad_max_positions")
    # more input channels than one_d_taps_input_grad_max_in_channels
    assert input_grad((31, most_in + 1, 500), (most_in + 1) * ratio) == _plan.Choice(
        "transpose", "dense_taps_input_grad_max_positions")
    # only where the positions row would decide: not below
    # dense_taps_min_out_channels (64) output channels, nor for one sample
    # (neither was measured)
    assert input_grad((8, 6, 500), 48) == _plan.Choice(
        "transpose", "dense_taps_min_out_channels")
    assert input_grad((1, 8, 30000), 512) == _plan.Choice(
        "transpose", "dense_taps_input_grad_one_sample_max_positions")
    assert input_grad((2, 8, 30000), 512) == row
    # the buffer bound: N·C·K·I past dense_taps_max_elements keeps the textbook rule
    n = most // (8 * 5 * 1000) + 1
    assert input_grad((n, 8, 1000), 512) == _plan.Choice(
        "transpose", "dense_taps_max_elements")
    # not in 2-D, not strided or dilated, not grouped, not the weight gradient
    assert input_grad((31, 8, 20, 20), 256, k=3).reason != row.reason
    strided = ConvSpec((3,), ((2, 2),), (1,), 1, "auto")
    assert plan(strided, (31, 8, 61), (284, 8, 5), (31, 284, 21), jnp.float32,
                backend="cpu").input_grad.reason != row.reason
    dilated = ConvSpec((1,), ((4, 4),), (2,), 1, "auto")
    assert plan(dilated, (31, 8, 61), (284, 8, 5), (31, 284, 61), jnp.float32,
                backend="cpu").input_grad.reason != row.reason
    grouped = ConvSpec((1,), ((2, 2),), (1,), 2, "auto")
    assert plan(grouped, (31, 8, 61), (288, 4, 5), (31, 288, 61), jnp.float32,
                backend="cpu").input_grad.reason != row.reason
    p = plan(_spec(n=1, padding=2), (31, 8, 61), (284, 8, 5), (31, 284, 61),
             jnp.float32, backend="cpu")
    assert p.weight_grad.reason != row.reason
    assert plan(_spec(n=1, padding=2), (31, 8, 61), (284, 8, 5), (31, 284, 61),
                jnp.float32, backend="gpu").input_grad.reason != row.reason


def test_thin_grouped_input_gradients_take_taps_within_their_bounds():
    bound = _plan.THRESHOLDS["taps_input_grad_max_group_out_channels"].value
    big = _plan.THRESHOLDS["dense_taps_max_elements"].value
    assert bound == 4
    # 2 output channels per group, B = 4·64·9·56² = 7.2M <= 2^23: taps
    p = plan(_spec(groups=32), (4, 64, 56, 56), (64, 2, 3, 3), (4, 64, 56, 56),
             jnp.float32, backend="cpu")
    assert p.input_grad == _plan.Choice("taps", "taps_input_grad_max_group_out_channels")
    # B = 4·224·9·42² = 14.2M > 2^23 (the held-out point, 2 per group): not taps
    assert 4 * 224 * 9 * 42 * 42 > big
    p = plan(_spec(groups=32), (4, 224, 42, 42), (64, 7, 3, 3), (4, 64, 42, 42),
             jnp.float32, backend="cpu")
    assert p.input_grad.formulation == "transpose"
    # at most 8 input channels per group (its measured range): 24 per group,
    # 7x7 (a held-out point, 6.2x slower as taps) runs the grouped convolution
    assert _plan.THRESHOLDS["taps_input_grad_max_group_in_channels"].value == 8
    p = plan(_spec(groups=4), (4, 32, 28, 28), (8, 8, 3, 3), (4, 8, 28, 28),
             jnp.float32, backend="cpu")
    assert p.input_grad == _plan.Choice("taps", "taps_input_grad_max_group_out_channels")
    p = plan(_spec(groups=4), (4, 36, 28, 28), (8, 9, 3, 3), (4, 8, 28, 28),
             jnp.float32, backend="cpu")
    assert p.input_grad.formulation == "transpose"
    p = plan(_spec(groups=3, padding=3), (1, 72, 28, 28), (6, 24, 7, 7), (1, 6, 28, 28),
             jnp.float32, backend="cpu")
    assert p.input_grad.formulation == "transpose"
    # one output channel per group: not this row but its own
    # (taps_input_grad_one_out_max_terms): 5 channels x 25 taps = 125 terms
    most = _plan.THRESHOLDS["taps_input_grad_one_out_max_terms"].value
    assert 5 * 25 <= most == 144
    p = plan(_spec(groups=8, padding=0), (15, 40, 22, 22), (8, 5, 5, 5),
             (15, 8, 18, 18), jnp.float32, backend="cpu")
    assert p.input_grad == _plan.Choice("taps", "taps_input_grad_one_out_max_terms")


def test_grouped_input_gradients_strided_in_every_dim_take_taps():
    row = _plan.Choice("taps", _plan.GROUPED_STRIDED_INPUT)
    most = _plan.THRESHOLDS["grouped_strided_input_taps_max_elements"].value
    assert most == 1 << 25
    # 2 groups of 8 -> 12, 3x3 at stride 4 (held-out run 21's worst point,
    # batch 4 here); stride 3 with 32 outputs per group (a split before)
    assert _padded_input_grad((4, 16, 174, 174), 24, 3, stride=4, groups=2) == row
    assert _padded_input_grad((4, 32, 56, 56), 64, 5, stride=3, groups=2) == row
    # kernel dilation too, and strides 3 and 4 mixed
    assert _padded_input_grad((4, 8, 160, 160), 64, 7, stride=4, dilation=2,
                              groups=4) == row
    mixed = ConvSpec((3, 4), ((1, 1),) * 2, (1, 1), 4, "auto")
    assert _input_grad(mixed, (4, 32, 56, 56), 64, (3, 3)) == row
    # stride 2 keeps its own row; strides 2 and 3 mixed, stride 1 or 5 in
    # a dim, 1-D, dense and depthwise convolutions are not this row's
    assert _padded_input_grad((4, 32, 56, 56), 64, 3, stride=2, groups=2) == _plan.Choice(
        "taps", "cpu measured: stride-2 input gradient")
    for strides in ((2, 3), (1, 3), (3, 5)):
        other = ConvSpec(strides, ((1, 1),) * 2, (1, 1), 4, "auto")
        assert _input_grad(other, (4, 32, 56, 56), 64, (3, 3)) != row
    assert _padded_input_grad((4, 32, 900), 64, 3, stride=3, groups=2) != row
    assert _padded_input_grad((4, 32, 56, 56), 64, 3, stride=3) != row
    assert _padded_input_grad((4, 32, 56, 56), 32, 3, stride=3, groups=32) != row
    # the buffer N·C_in·ΠK·P at 36² output positions is within, at 37² above
    assert 32 * 16 * 49 * 36 * 36 <= most < 32 * 16 * 49 * 37 * 37
    assert _padded_input_grad((32, 16, 108, 108), 64, 7, stride=3, groups=2) == row
    assert _padded_input_grad((32, 16, 111, 111), 64, 7, stride=3, groups=2) != row


def test_grouped_stride_2_input_gradients_that_narrow_the_channels_keep_the_textbook_rule():
    row = "grouped_strided_input_taps_few_out_max_elements"
    textbook, taps = (_plan.Choice("transpose", row),
                      _plan.Choice("taps", "cpu measured: stride-2 input gradient"))
    most = _plan.THRESHOLDS[row].value
    assert most == 1 << 23
    assert _plan.THRESHOLDS["grouped_strided_input_few_out_max_group_out_channels"].value == 8
    assert _plan.THRESHOLDS["grouped_strided_input_few_out_min_channel_ratio"].value == 8
    assert _plan.THRESHOLDS["grouped_strided_input_few_out_min_taps_per_output"].value == 4
    # held-out run 31's worst point: 8 groups of 93 -> 4, 5x5, B = 48.8M
    assert 41 * 744 * 25 * 8 * 8 > most
    assert _padded_input_grad((41, 744, 16, 16), 32, 5, stride=2, groups=8) == textbook
    # the buffer N·C_in·K²·P, 16² output positions: within at N = 5, above at 6
    assert 5 * 128 * 49 * 256 <= most < 6 * 128 * 49 * 256
    assert _padded_input_grad((5, 128, 32, 32), 16, 7, stride=2, groups=2) == taps
    assert _padded_input_grad((6, 128, 32, 32), 16, 7, stride=2, groups=2) == textbook
    # C_in/G >= 8·C_out/G: 64 inputs for 8 outputs per group, not 63
    assert _padded_input_grad((40, 126, 32, 32), 16, 7, stride=2, groups=2) == taps
    # 2-8 outputs per group: 1 (its own slab sum) and 9 keep taps
    assert _padded_input_grad((40, 256, 32, 32), 18, 7, stride=2, groups=2) == taps
    assert _padded_input_grad((40, 256, 32, 32), 2, 7, stride=2, groups=2) == taps
    assert _padded_input_grad((40, 256, 32, 32), 4, 7, stride=2, groups=2) == textbook
    # and at most ΠK/4 of them: 2 for a 3x3 kernel, 6 for a 5x5
    for k, fewest_for_taps in ((3, 3), (5, 7)):
        assert _padded_input_grad((40, 256, 32, 32), 2 * (fewest_for_taps - 1), k,
                                  stride=2, groups=2) == textbook
        assert _padded_input_grad((40, 256, 32, 32), 2 * fewest_for_taps, k,
                                  stride=2, groups=2) == taps
    # dense, 1-D, dilated and stride-3 input gradients are not this row's
    # (each within its other bounds: 2 outputs per group, ΠK >= 8, B > 2^23)
    assert 40 * 128 * 25 * 256 > most and 40 * 256 * 9 * 512 > most
    assert _padded_input_grad((40, 128, 32, 32), 2, 5, stride=2).reason != row
    assert _padded_input_grad((40, 256, 1024), 4, 9, stride=2, groups=2).reason != row
    assert _padded_input_grad((40, 256, 32, 32), 4, 5, stride=2, dilation=2,
                              groups=2).reason != row
    assert _padded_input_grad((40, 256, 48, 48), 4, 5, stride=3, groups=2).reason != row


def test_grouped_input_gradients_of_one_output_channel_per_group_take_taps():
    most = _plan.THRESHOLDS["taps_input_grad_one_out_max_terms"].value
    # 16 input channels per group x 3x3 = 144 terms: taps; G = 16
    p = plan(_spec(groups=16), (8, 256, 28, 28), (16, 16, 3, 3), (8, 16, 28, 28),
             jnp.float32, backend="cpu")
    assert 16 * 9 == most
    assert p.input_grad == _plan.Choice("taps", "taps_input_grad_one_out_max_terms")
    # 1-D, 8 per group, kernel 5: 40 terms
    p = plan(_spec(n=1, groups=8, padding=2), (8, 64, 1024), (8, 8, 5), (8, 8, 1024),
             jnp.float32, backend="cpu")
    assert p.input_grad == _plan.Choice("taps", "taps_input_grad_one_out_max_terms")
    # 16 per group x 5x5 = 400 terms (measured 2.4x slower as taps): the
    # dense rules, one output channel per group, B = 4·128·25·28² = 10M: textbook
    p = plan(_spec(groups=8, padding=2), (4, 128, 28, 28), (8, 16, 5, 5), (4, 8, 28, 28),
             jnp.float32, backend="cpu")
    assert p.input_grad.formulation == "transpose"
    # 32 per group x 3x3 = 288: not this row either
    p = plan(_spec(groups=8), (4, 256, 28, 28), (8, 32, 3, 3), (4, 8, 28, 28),
             jnp.float32, backend="cpu")
    assert p.input_grad.reason != "taps_input_grad_one_out_max_terms"
    # the weight gradient of the same layers is another map: not this row
    p = plan(_spec(groups=16), (8, 256, 28, 28), (16, 16, 3, 3), (8, 16, 28, 28),
             jnp.float32, backend="cpu")
    assert p.weight_grad.reason != "taps_input_grad_one_out_max_terms"
    # a dense convolution with one output channel: not this row (grouped only)
    p = plan(_spec(), (8, 16, 56, 56), (1, 16, 3, 3), (8, 1, 56, 56),
             jnp.float32, backend="cpu")
    assert p.input_grad.reason != "taps_input_grad_one_out_max_terms"


def test_one_output_per_group_input_gradients_pass_taps_max_elements():
    # taps' input gradient of one output channel per group sums slabs w·ḡ and
    # builds no (N, C_in, ΠK, P) buffer, so past taps_max_elements the rows
    # decide as within it (not the textbook rule outright, as for a buffer)
    bound = _plan.THRESHOLDS["taps_max_elements"].value
    # held-out run 26's worst point, conv_transpose2d((24, 16, 60²), (16, 2, 7, 7),
    # stride 2, groups 16): its forward is this core's input gradient, 32
    # channels in 16 groups -> 16, B = 24·32·49·60² just past 2^27
    assert 24 * 32 * 49 * 60 * 60 > bound
    core = ConvSpec((2, 2), ((0, 0),) * 2, (1, 1), 16, "auto")
    assert _input_grad(core, (24, 32, 125, 125), 16, (7, 7)) == _plan.Choice(
        "taps", "cpu measured: stride-2 input gradient")
    # stride 1 (taps_input_grad_one_out_max_terms), 1-D, 3-D, more groups than
    # cpu_split_max_groups, and a dense layer of one output channel at stride 2
    for x_shape, c_out, k, stride, groups, reason in (
            ((32, 64, 112, 112), 32, 3, 1, 32, "taps_input_grad_one_out_max_terms"),
            ((32, 64, 16000), 32, 7, 1, 32, "taps_input_grad_one_out_max_terms"),
            ((8, 32, 32, 32, 32), 16, 3, 1, 16, "cpu measured: 3-D"),
            ((32, 128, 64, 64), 64, 3, 1, 64, "cpu measured: depthwise or many groups"),
            ((16, 64, 256, 256), 1, 3, 2, 1, "cpu measured: stride-2 input gradient")):
        n = len(x_shape) - 2
        buffer = x_shape[0] * x_shape[1] * k ** n * math.prod(
            -(-i // stride) for i in x_shape[2:])
        assert buffer > bound, x_shape
        assert _padded_input_grad(x_shape, c_out, k, stride, groups=groups) == _plan.Choice(
            "taps", reason), x_shape
        # the weight gradient builds its buffer: the textbook rule
        weight = _padded_weight_grad(x_shape, c_out, k, stride, groups=groups)
        assert weight.formulation.startswith("transpose"), x_shape
        assert "taps_max_elements" in weight.reason, x_shape
    # past the bound the dense rules still apply: one output channel at
    # stride 1 is below dense_taps_min_out_channels
    assert _padded_input_grad((16, 64, 128, 128), 1, 3) == _plan.Choice(
        "transpose", "dense_taps_min_out_channels")
    # two output channels per group, or a depthwise layer of channel
    # multiplier 2, build the buffer: the textbook rule past the bound
    assert _padded_input_grad((32, 64, 112, 112), 64, 3, groups=32) == _plan.Choice(
        "transpose", "taps_max_elements")
    assert _padded_input_grad((64, 256, 112, 112), 512, 3, groups=256) == _plan.Choice(
        "transpose", "taps_max_elements")
    # and off CPU nothing moves
    g_shape = (32, 32, 112, 112)
    assert plan(_padded_spec(2, 3, groups=32), (32, 64, 112, 112), (32, 2, 3, 3), g_shape,
                jnp.float32, backend="gpu").input_grad.formulation == "transpose"
    if jax.default_backend() != "cpu":
        return
    # the held-out layer itself: its forward follows the plan and equals its
    # definition (zero-insert, flip, correlate by groups)
    x = jax.random.normal(jax.random.PRNGKey(0), (24, 16, 60, 60), jnp.float32)
    w = jax.random.normal(jax.random.PRNGKey(1), (16, 2, 7, 7), jnp.float32)
    with _plan.recording() as made:
        y = jax.jit(lambda x, w: jaxgrad.conv_transpose2d(x, w, stride=2, groups=16))(x, w)
    assert [(m.kind, m.choice) for m in made] == [
        ("input_grad", _plan.Choice("taps", "cpu measured: stride-2 input gradient"))]
    flipped = w.reshape(16, 1, 2, 7, 7).swapaxes(1, 2).reshape(32, 1, 7, 7)[:, :, ::-1, ::-1]
    want = lax.conv_general_dilated(x, flipped, (1, 1), [(6, 6)] * 2, lhs_dilation=(2, 2),
                                    feature_group_count=16,
                                    precision=lax.Precision.HIGHEST)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5 * float(jnp.max(abs(want))))


def test_grouped_weight_gradients_of_few_samples_take_taps_within_bounds():
    row = "grouped_weight_taps_few_samples_max_batch"
    batch = _plan.THRESHOLDS[row].value
    fewest_in = _plan.THRESHOLDS["grouped_weight_taps_few_samples_min_group_channels"].value
    most_out = _plan.THRESHOLDS["grouped_weight_taps_few_samples_max_group_out_channels"].value
    big = _plan.THRESHOLDS["dense_taps_max_elements"].value
    assert (batch, fewest_in, most_out) == (1, 8, 16)
    taps = _plan.Choice("taps", row)
    s2 = _spec(stride=2, padding=0, groups=4)
    # held-out run 23's worst point: conv_transpose2d of (1, 8, 19, 19) with a
    # (8, 44, 5, 5) weight, G = 4, stride 2; its core convolution has 44 input
    # and 2 output channels per group, B = 176·25·19² = 1.6M
    assert _weight_grad(s2, (1, 176, 41, 41), 8, (5, 5)) == taps
    # 8 inputs and 16 outputs per group (the bounds), stride 1
    s1 = _spec(groups=8)
    assert _weight_grad(s1, (1, 64, 56, 56), 128, (3, 3)) == taps
    assert 64 * 9 * 56 * 56 > _plan.THRESHOLDS["dense_taps_small_elements"].value
    # one past each bound: 2 samples (in two-sample networks taps' isolated
    # gain turned into a 1.29x loss at one of four), 7 inputs or 17 outputs
    # per group: the textbook pieces (B = 3.6M, 1.6M, 1.8M: past
    # dense_taps_small_elements)
    pieces = _plan.Choice("transpose_per_group",
                          "dense_taps_min_out_channels; cpu_slow_grouped")
    assert _weight_grad(s1, (2, 64, 56, 56), 128, (3, 3)) == pieces
    assert _weight_grad(s1, (1, 56, 56, 56), 128, (3, 3)) == pieces
    assert _weight_grad(s1, (1, 64, 56, 56), 136, (3, 3)) == pieces
    # B just within 2^23 and just past it (64·9·P: P = 14563 and 14564)
    assert 64 * 9 * 14563 <= big < 64 * 9 * 14564
    assert _weight_grad(_spec(padding=0, groups=8), (1, 64, 3, 14565), 128, (3, 3)) == taps
    assert _weight_grad(_spec(padding=0, groups=8), (1, 64, 3, 14566), 128,
                        (3, 3)).formulation == "transpose_per_group"
    # 1-D: not this row (measured in 2-D only); B = 64·5·3996 = 1.28M, past
    # dense_taps_small_elements, so the row's own dimension test decides
    assert 64 * 5 * 3996 > _plan.THRESHOLDS["dense_taps_small_elements"].value
    assert _weight_grad(_spec(n=1, padding=0, groups=4), (1, 64, 4000), 16, (5,)) == pieces
    # a dense one: not this row (B = 64·9·54² = 1.68M; 12 outputs: not the
    # aligned row; unpadded: not the swapped one)
    assert _weight_grad(_spec(padding=0), (1, 64, 56, 56), 12, (3, 3)) == _plan.Choice(
        "transpose", "dense_taps_min_out_channels")
    # on another backend: the textbook rule
    assert plan(s2, (1, 176, 41, 41), (8, 44, 5, 5), (1, 8, 19, 19), jnp.float32,
                backend="gpu").weight_grad.formulation == "transpose"
    # the kernel follows the plan, and the transposed convolution's weight
    # gradient equals lax autodiff's
    if jax.default_backend() != "cpu":
        return
    xs = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 19, 19), jnp.float32)
    ws = jax.random.normal(jax.random.PRNGKey(1), (8, 44, 5, 5), jnp.float32)
    cot = jax.random.normal(jax.random.PRNGKey(2), (1, 176, 41, 41), jnp.float32)

    def loss(w):
        return jnp.vdot(jaxgrad.conv_transpose2d(xs, w, None, 2, 0, 0, 4), cot)
    with _plan.recording() as made:
        got = jax.grad(loss)(ws)
    assert [(m.kind, m.choice.reason) for m in made if m.kind == "weight_grad"] == [
        ("weight_grad", row)]

    def lax_loss(w):     # the transposed convolution as lax's, from its definition
        wt = w.reshape(4, 2, 44, 5, 5).swapaxes(1, 2).reshape(176, 2, 5, 5)[:, :, ::-1, ::-1]
        y = lax.conv_general_dilated(xs, wt, (1, 1), [(4, 4), (4, 4)], lhs_dilation=(2, 2),
                                     feature_group_count=4,
                                     precision=lax.Precision.HIGHEST)
        return jnp.vdot(y, cot)
    want = jax.grad(lax_loss)(ws)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_strided_input_gradients_with_outputs_below_the_kernel_take_taps_within_bounds():
    row = "strided_input_grad_taps_min_out_channels"
    fewest = _plan.THRESHOLDS[row].value
    most = _plan.THRESHOLDS["strided_input_grad_taps_max_elements"].value
    assert (fewest, most) == (12, 1 << 24)
    taps = _plan.Choice("taps", row)
    textbook = _plan.Choice("transpose", "dense_taps_min_out_channels")
    s3, s4 = _spec(stride=3, padding=3), _spec(stride=4, padding=1)
    # held-out run 24's two worst points: 3x3 cotangents under a 7x7 kernel
    # at stride 3, 2x2 under a 3x3 one at stride 4
    assert _input_grad(s3, (28, 112, 9, 9), 40, (7, 7)) == taps
    assert _input_grad(s4, (59, 275, 8, 8), 14, (3, 3)) == taps
    # the channel bound and one below it (B = 28·112·49·9 = 1.38M, past
    # dense_taps_small_elements)
    assert _input_grad(s3, (28, 112, 9, 9), fewest, (7, 7)) == taps
    assert _input_grad(s3, (28, 112, 9, 9), fewest - 1, (7, 7)) == textbook
    # an output as large as the kernel in one dim or in both: not this row
    s4_7 = _spec(stride=4, padding=3)
    assert conv_output_shape((9, 28), (7, 7), s4_7) == (3, 7)
    assert _input_grad(s4_7, (16, 96, 9, 28), 32, (7, 7)) == textbook
    assert _input_grad(s4_7, (16, 96, 28, 28), 32, (7, 7)) == textbook
    # the buffer bound: 384·49·16 elements a sample (O = 4), 55 and 56 samples
    assert 55 * 384 * 49 * 16 <= most < 56 * 384 * 49 * 16
    assert _input_grad(s4_7, (55, 384, 14, 14), 128, (7, 7)) == taps
    assert _input_grad(s4_7, (56, 384, 14, 14), 128, (7, 7)) == _plan.Choice(
        "transpose", "dense_taps_max_elements")
    # exactly 2^24: 64·4096·16·4 (a 4x4 kernel at stride 3, not tiled, O = 2)
    s3_4 = _spec(stride=3, padding=1)
    assert 64 * 4096 * 16 * 4 == most
    assert _input_grad(s3_4, (64, 4096, 6, 6), 64, (4, 4)) == taps
    assert _input_grad(s3_4, (65, 4096, 6, 6), 64, (4, 4)) == _plan.Choice(
        "transpose", "dense_taps_max_elements")
    # grouped: its own row
    assert _input_grad(_spec(stride=3, padding=3, groups=2), (28, 112, 9, 9), 40,
                       (7, 7)) == _plan.Choice("taps", _plan.GROUPED_STRIDED_INPUT)
    # stride 5, kernel dilation 2 and 1-D: not this row (not measured)
    assert _input_grad(_spec(stride=5, padding=3), (28, 112, 14, 14), 40, (7, 7)) == textbook
    dilated = ConvSpec((3, 3), ((3, 3),) * 2, (2, 2), 1, "auto")     # O = 3 < K = 4
    assert conv_output_shape((9, 9), (4, 4), dilated) == (3, 3)
    assert _input_grad(dilated, (28, 112, 9, 9), 40, (4, 4)) == textbook
    assert _input_grad(_spec(n=1, stride=3, padding=3), (28, 112, 9), 40, (7,)) == textbook
    # on another backend: the textbook rule
    assert plan(s3, (28, 112, 9, 9), (40, 112, 7, 7), (28, 40, 3, 3), jnp.float32,
                backend="gpu").input_grad.formulation == "transpose"
    # the kernel follows the plan, and its input gradient equals lax autodiff's
    if jax.default_backend() != "cpu":
        return
    xs = jax.random.normal(jax.random.PRNGKey(0), (4, 16, 9, 9), jnp.float32)
    ws = jax.random.normal(jax.random.PRNGKey(1), (12, 16, 7, 7), jnp.float32)
    cot = jax.random.normal(jax.random.PRNGKey(2), (4, 12, 3, 3), jnp.float32)
    with _plan.recording() as made:
        got = jax.grad(lambda x: jnp.vdot(jaxgrad.conv2d(x, ws, None, 3, 3), cot))(xs)
    assert [(m.kind, m.choice.reason) for m in made if m.kind == "input_grad"] == [
        ("input_grad", row)]
    want = jax.grad(lambda x: jnp.vdot(lax.conv_general_dilated(
        x, ws, (3, 3), [(3, 3)] * 2, precision=lax.Precision.HIGHEST), cot))(xs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # a transposed convolution's forward is this map: 12 inputs, 3x3 -> 7x7
    wt = jax.random.normal(jax.random.PRNGKey(3), (12, 16, 7, 7), jnp.float32)
    with _plan.recording() as made:
        y = jaxgrad.conv_transpose2d(cot, wt, None, 3, 3)
    assert [(m.kind, m.choice.reason) for m in made] == [("input_grad", row)]
    y_lax = lax.conv_general_dilated(        # its definition: zero-insert, flip, correlate
        cot, wt.swapaxes(0, 1)[:, :, ::-1, ::-1], (1, 1), [(3, 3)] * 2, lhs_dilation=(3, 3),
        precision=lax.Precision.HIGHEST)
    np.testing.assert_allclose(y, y_lax, rtol=1e-4, atol=1e-4)


def test_grouped_weight_gradients_of_few_input_channels_take_taps_within_bounds():
    most = _plan.THRESHOLDS["grouped_weight_taps_max_group_channels"].value
    fewest_out = _plan.THRESHOLDS["grouped_weight_taps_min_group_out_channels"].value
    big = _plan.THRESHOLDS["dense_taps_max_elements"].value
    assert (most, fewest_out) == (4, 6)
    # 3 input and 6 output channels per group, G = 16, stride 2:
    # B = 4·48·9·32² = 1.77M, above dense_taps_small_elements, at most 2^23
    args = ((4, 48, 64, 64), (96, 3, 3, 3), (4, 96, 32, 32))
    assert _plan.THRESHOLDS["dense_taps_small_elements"].value < 4 * 48 * 9 * 32 * 32 <= big
    p = plan(_spec(stride=2, groups=16), *args, jnp.float32, backend="cpu")
    assert p.weight_grad == _plan.Choice("taps", "grouped_weight_taps_max_group_channels")
    # its input gradient is another map: stride 2, taps by phases
    assert p.input_grad.reason == "cpu measured: stride-2 input gradient"
    # 4 output channels per group (fewer than 6): the dense rules, here the
    # textbook pieces (B = 2·128·9·32² = 2.4M, 4 < dense_taps_min_out_channels)
    p = plan(_spec(groups=32), (2, 128, 32, 32), (128, 4, 3, 3), (2, 128, 32, 32),
             jnp.float32, backend="cpu")
    assert p.weight_grad == _plan.Choice(
        "transpose_per_group", "dense_taps_min_out_channels; cpu_slow_grouped")
    # 8 input channels per group (more than 4): not this row
    p = plan(_spec(groups=8), (4, 64, 40, 40), (64, 8, 3, 3), (4, 64, 40, 40),
             jnp.float32, backend="cpu")
    assert p.weight_grad.reason.startswith("dense_taps_min_out_channels")
    # B = 16·64·9·56² = 28.9M > 2^23: not this row
    assert 16 * 64 * 9 * 56 * 56 > big
    p = plan(_spec(groups=16), (16, 64, 56, 56), (128, 4, 3, 3), (16, 128, 56, 56),
             jnp.float32, backend="cpu")
    assert p.weight_grad.formulation == "transpose_per_group"
    # 5 output channels per group (fewer than 6), or 5 input channels per
    # group (more than 4): not this row
    for w_shape, g_shape in (((80, 3, 3, 3), (4, 80, 32, 32)), ((96, 5, 3, 3),
                                                               (4, 96, 32, 32))):
        x_shape = (4, 16 * w_shape[1], 64, 64)
        p = plan(_spec(stride=2, groups=16), x_shape, w_shape, g_shape, jnp.float32,
                 backend="cpu")
        assert p.weight_grad.reason != "grouped_weight_taps_max_group_channels"
    # the kernel follows the plan, and its gradient equals lax autodiff's
    if jax.default_backend() != "cpu":
        return
    xs = jax.random.normal(jax.random.PRNGKey(0), args[0], jnp.float32)
    ws = jax.random.normal(jax.random.PRNGKey(1), args[1], jnp.float32)

    def loss(x, w):
        return jaxgrad.conv2d(x, w, None, 2, 1, 1, 16).sum()
    with _plan.recording() as made:
        got = jax.grad(loss, 1)(xs, ws)
    assert [(m.kind, m.choice.reason) for m in made if m.kind == "weight_grad"] == [
        ("weight_grad", "grouped_weight_taps_max_group_channels")]
    want = jax.grad(lambda w: lax.conv_general_dilated(
        xs, w, (2, 2), [(1, 1), (1, 1)], feature_group_count=16,
        precision=lax.Precision.HIGHEST).sum())(ws)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_a_3d_grouped_weight_gradient_with_one_output_per_group_is_one_convolution():
    # 12 input channels and 1 output channel per group, G = 8, 3-D: the
    # batch-grouped convolution autodiff runs, neither taps nor G pieces
    args = ((4, 96, 6, 14, 14), (8, 12, 3, 3, 3), (4, 8, 6, 14, 14))
    p = plan(_spec(n=3, groups=8), *args, jnp.float32, backend="cpu")
    assert p.weight_grad == _plan.Choice("transpose", _plan.ONE_GROUPED_3D)
    # two output channels per group: the 3-D row, taps
    p = plan(_spec(n=3, groups=8), args[0], (16, 12, 3, 3, 3), (4, 16, 6, 14, 14),
             jnp.float32, backend="cpu")
    assert p.weight_grad == _plan.Choice("taps", "cpu measured: 3-D")
    # more than 12 input channels per group: one convolution from a batch of
    # ONE_GROUPED_3D_MIN_BATCH (4) on, taps below it
    assert _plan.ONE_GROUPED_3D_MIN_BATCH == 4
    for n, formulation, reason in ((4, "transpose", _plan.ONE_GROUPED_3D),
                                   (3, "taps", "cpu measured: 3-D")):
        p = plan(_spec(n=3, groups=8), (n, 128, 6, 14, 14), (8, 16, 3, 3, 3),
                 (n, 8, 6, 14, 14), jnp.float32, backend="cpu")
        assert p.weight_grad == _plan.Choice(formulation, reason)
    # held-out run 13's worst point: 49 channels per group, batch 22, stride 2
    p = plan(ConvSpec((2,) * 3, ((1, 1),) * 3, (1,) * 3, 16, "auto"),
             (22, 784, 7, 7, 7), (16, 49, 3, 3, 3), (22, 16, 4, 4, 4), jnp.float32,
             backend="cpu")
    assert p.weight_grad == _plan.Choice("transpose", _plan.ONE_GROUPED_3D)
    # the same layer in 2-D (batch 2) is not this row (the dense rules:
    # B = 2·96·9·14² = 0.34M <= dense_taps_small_elements, taps)
    p = plan(_spec(groups=8), (2, 96, 14, 14), (8, 12, 3, 3), (2, 8, 14, 14),
             jnp.float32, backend="cpu")
    assert p.weight_grad == _plan.Choice("taps", "dense_taps_small_elements")
    # "transpose" asked for still splits it into G pieces on CPU
    p = plan(_spec(n=3, groups=8, algorithm="transpose"), *args, jnp.float32,
             backend="cpu")
    assert p.weight_grad.formulation == "transpose_per_group"
    # on a mesh of several axes the batch-grouped convolution is wrong
    # (multi_axis_batch_group): still split
    several = Placement(auto_mesh=True, any_mesh=True, several_axes=True)
    p = plan(_spec(n=3, groups=8), *args, jnp.float32, several, backend="cpu")
    assert p.weight_grad == _plan.Choice(
        "transpose_per_group", f"{_plan.ONE_GROUPED_3D}; multi_axis_batch_group")
    # the kernel follows the plan: one convolution for the weight gradient,
    # whose value equals lax autodiff's
    if jax.default_backend() != "cpu":
        return
    xs = jax.random.normal(jax.random.PRNGKey(0), args[0], jnp.float32)
    ws = jax.random.normal(jax.random.PRNGKey(1), args[1], jnp.float32)

    def loss(w):
        return jaxgrad.conv3d(xs, w, None, 1, 1, 1, 8).sum()
    forward = _conv_count(loss, ws)
    assert _conv_count(jax.grad(loss), ws) == forward + 1
    want = jax.grad(lambda w: lax.conv_general_dilated(
        xs, w, (1, 1, 1), [(1, 1)] * 3, feature_group_count=8,
        precision=lax.Precision.HIGHEST).sum())(ws)
    np.testing.assert_allclose(jax.grad(loss)(ws), want, rtol=1e-4, atol=1e-3)



# --------------------------------------------------------------------------
# The swapped weight gradient ("transpose_swapped"): the same sums as lax
# autodiff's weight gradient, and the row that picks it.

SWAPPED_CASES = [
    # (x, w, stride, padding pairs, dilation)
    ((2, 3, 9, 10), (4, 3, 3, 2), (1, 1), ((1, 2), (0, 1)), (1, 2)),
    ((3, 4, 11), (5, 4, 4), (1,), ((2, 0),), (2,)),
    # lo > (K-1)·d: the dilated cotangent's low pad is negative (a crop)
    ((2, 2, 9), (3, 2, 2), (1,), ((4, 1),), (1,)),
    # windows that stop short of the input, and a stride (not what "auto" picks)
    ((2, 3, 5, 6, 7), (2, 3, 2, 3, 2), (1, 2, 1), ((1, 1), (0, 1), (2, 0)), (1, 1, 2)),
    ((1, 2, 7), (3, 2, 3), (4,), ((0, 0),), (1,)),
    # a kernel wider than the padded input's windows need
    ((1, 1, 4), (1, 1, 5), (1,), ((4, 4),), (1,)),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", SWAPPED_CASES)
def test_swapped_weight_gradient_equals_lax_autodiff(x_shape, w_shape, stride, padding,
                                                     dilation):
    from jaxgrad._conv import _core
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.standard_normal(x_shape))
    w = jnp.asarray(rng.standard_normal(w_shape))
    conv = lambda w: lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation)
    y, vjp = jax.vjp(conv, w)
    g = jnp.asarray(rng.standard_normal(y.shape))
    expected = vjp(g)[0]
    spec = ConvSpec(stride, padding, dilation, 1)
    got = jax.jit(lambda x, g: _core.weight_grad_by(x, g, spec, w_shape[2:],
                                                    "transpose_swapped"))(x, g)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-12,
                               atol=1e-12 * float(jnp.max(jnp.abs(expected))))
    # bfloat16 operands: float32 sums, one rounding (against the float64 sums
    # of the same rounded operands)
    xh, gh = x.astype(jnp.bfloat16), g.astype(jnp.bfloat16)
    half = _core.weight_grad_by(xh, gh, spec, w_shape[2:], "transpose_swapped")
    exact = jax.vjp(lambda w: lax.conv_general_dilated(
        xh.astype(jnp.float64), w, stride, padding, rhs_dilation=dilation), w)[1](
        gh.astype(jnp.float64))[0]
    assert half.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(half, np.float64), np.asarray(exact),
                               rtol=2 ** -8, atol=2 ** -8 * float(jnp.max(jnp.abs(exact))))


def test_swapped_weight_gradient_row():
    most = _plan.THRESHOLDS["swapped_weight_max_out_channels"].value
    fewest = _plan.THRESHOLDS["swapped_weight_min_in_channels"].value
    product = _plan.THRESHOLDS["swapped_weight_max_batch_input_product"].value
    assert (most, fewest, product) == (24, 32, 5 * 2 ** 22)

    def weight(x_shape, c_out, spec=None, kernel=(3, 3)):
        return _weight_grad(spec or _spec(n=len(kernel)), x_shape, c_out, kernel)

    swapped = _plan.Choice("transpose_swapped", "swapped_weight_max_out_channels")
    # 256 -> 24 at 32x32, batch 8: x = 2^21 elements, N·x = 2^24
    assert weight((8, 256, 32, 32), most) == swapped
    assert weight((8, 256, 32, 32), most + 1) != swapped          # 25 outputs
    assert weight((8, fewest, 32, 32), 8) == swapped
    assert weight((8, fewest - 1, 32, 32), 16) != swapped         # 31 inputs, 16 outputs
    # fewer inputs in 2-D: at least 8 and at least twice the outputs
    ratio = _plan.THRESHOLDS["swapped_weight_thin_min_channel_ratio"].value
    thinnest = _plan.THRESHOLDS["swapped_weight_thin_min_in_channels"].value
    assert (ratio, thinnest) == (2, 8)
    # (where the textbook rule would run: the row measured against it only)
    thin = _plan.Choice("transpose_swapped", "swapped_weight_thin_min_channel_ratio")
    textbook = _plan.Choice("transpose", "dense_taps_min_out_channels")
    assert weight((8, fewest - 1, 32, 32), 15) == thin             # 31 >= 2·15
    assert weight((5, 16, 112, 112), 8, _spec(padding=2), (5, 5)) == thin
    assert weight((5, 16, 112, 112), 9, _spec(padding=2), (5, 5)) == textbook
    assert weight((4, 8, 32, 32), 4) == thin
    assert weight((4, 6, 32, 32), 3) == textbook                   # below 8 inputs
    assert weight((4, 16, 17), 8, _spec(n=1), (3,)) != thin        # 1-D: not measured
    # the swapped row's other bounds hold here too
    assert weight((32, 16, 48, 48), 8) == textbook                 # N·N·C_in·ΠI above
    assert weight((32, 16, 40, 40), 8) == textbook                 # even from batch 16
    assert weight((4, 16, 32, 32), 8, _spec(stride=2)) != thin     # strided
    assert weight((4, 16, 32, 32), 8, _spec(padding=0)) != thin    # less than "same"
    dilated = ConvSpec((1, 1), ((2, 2),) * 2, (2, 2), 1)
    assert _weight_grad(dilated, (4, 16, 32, 32), 8, (3, 3)) != thin
    # a taps row ahead of it keeps its shapes (one sample, few channels)
    assert weight((1, 16, 96, 96), 8).formulation == "taps"
    # N·(N·C_in·H·W) at the bound (4·4·256·64·80 = 5·2^22) and above it
    assert weight((4, 256, 64, 80), 8) == swapped
    assert weight((4, 256, 64, 81), 8) != swapped
    assert weight((1, 512, 128, 128), 8) == swapped               # 8.4M elements
    assert weight((16, 64, 16, 16), 8) == swapped                 # batch 16, N·x = 2^22
    # from batch 16 with at least 32 inputs: at most 2^22 input elements,
    # whatever N·x (batch 32: N·x = 2^25)
    large = _plan.THRESHOLDS["swapped_weight_large_batch_max_elements"].value
    assert large == 2 ** 22
    assert _plan.THRESHOLDS["swapped_weight_large_batch_min_batch"].value == 16
    assert weight((32, 32, 32, 32), 8) == swapped
    assert weight((16, 64, 64, 64), 8) == swapped                 # x = 2^22, N·x = 2^26
    assert weight((16, 64, 64, 65), 8) != swapped                 # x above 2^22
    assert weight((15, 64, 64, 64), 8) != swapped                 # batch 15
    assert weight((16, 64, 4096), 8, _spec(n=1), (3,)) != swapped  # 1-D: not measured
    assert weight((22, 528, 10, 10), 16, _spec(padding=2), (5, 5)) == swapped
    dilated_large = ConvSpec((1, 1), ((2, 2),) * 2, (2, 2), 1)
    assert _weight_grad(dilated_large, (32, 32, 32, 32), 8, (3, 3)) != swapped
    assert weight((4, 64, 32, 32), 8, _spec(stride=2)) != swapped  # strided
    # 1-D and 3-D too (3-D ahead of its taps row)
    assert weight((4, 328, 17), 16, _spec(n=1, padding=3), (7,)) == swapped
    # padded less than a "same" convolution (the swapped convolution would pad
    # its cotangent by more than (K-1)·d/2: measured 3-8.6x slower): not taken;
    # padded more: taken
    assert weight((4, 328, 17), 16, _spec(n=1, padding=2), (7,)) != swapped
    assert weight((4, 328, 17), 16, _spec(n=1, padding=4), (7,)) == swapped
    valid = _spec(padding=0)
    assert plan(valid, (4, 64, 16, 16), (8, 64, 3, 3), (4, 8, 14, 14), jnp.float32,
                backend="cpu").weight_grad != swapped
    # asymmetric pads: each side must be at least (K-1)·d/2
    for pads, ok in ((((1, 1), (2, 2)), True), (((2, 0), (1, 1)), False),
                     (((0, 2), (1, 1)), False)):
        spec = ConvSpec((1, 1), pads, (1, 1), 1)
        out = (16 + sum(pads[0]) - 2, 16 + sum(pads[1]) - 2)
        got = plan(spec, (4, 64, 16, 16), (8, 64, 3, 3), (4, 8) + out, jnp.float32,
                   backend="cpu").weight_grad
        assert (got == swapped) is ok, pads
    assert weight((2, 64, 12, 12, 12), 8, _spec(n=3), (3, 3, 3)) == swapped
    # 1x1 kernels stay one GEMM (taps); grouped convolutions are not this row
    assert weight((8, 256, 32, 32), 8, kernel=(1, 1)).formulation == "taps"
    assert plan(_spec(groups=2), (8, 256, 32, 32), (16, 128, 3, 3), (8, 16, 32, 32),
                jnp.float32, backend="cpu").weight_grad != swapped
    # "transpose" asked for is the textbook rule; off CPU nothing changes
    assert weight((8, 256, 32, 32), 8, _spec(algorithm="transpose")).formulation == "transpose"
    assert plan(_spec(), (8, 256, 32, 32), (8, 256, 3, 3), (8, 8, 32, 32), jnp.float32,
                backend="gpu").weight_grad.formulation == "transpose"
    # a transposed convolution with few input channels: its weight gradient is
    # the core's with the channel roles swapped (x̄ of 16 -> 128 is 128 -> 16)
    with _plan.recording() as made:
        jax.make_jaxpr(jax.grad(lambda w: jnp.sum(jaxgrad.conv_transpose2d(
            jnp.ones((4, 16, 32, 32)), w, padding=1))))(jnp.ones((16, 128, 3, 3)))
    assert [m.choice for m in made if m.kind == "weight_grad"] == [swapped]


def _strided_weight(x, o, k=3, stride=2, dilation=1, groups=1):
    """auto's CPU choice for the weight gradient of x's shape -> o outputs, a
    k-wide kernel padded (k-1)//2 on each side, at this stride everywhere."""
    n = len(x) - 2
    spec = ConvSpec((stride,) * n, (((k - 1) // 2,) * 2,) * n, (dilation,) * n, groups,
                    "auto")
    return _weight_grad(spec, x, o, (k,) * n)


def test_strided_few_output_weight_gradients_take_taps_at_small_batches():
    # held-out run 15's worst point: (1, 80, 62²) -> 8, 3x3 stride 2; the
    # aligned row (channels multiples of 8) kept the textbook rule, taps 0.36x
    most, batch = (_plan.THRESHOLDS[k].value for k in (
        "strided_weight_taps_max_out_channels", "strided_weight_taps_max_batch"))
    row = _plan.Choice("taps", "strided_weight_taps_max_out_channels")

    weight = _strided_weight

    assert weight((1, 80, 62, 62), 8) == row
    assert weight((batch, 80, 62, 62), most) == row          # both bounds inclusive
    assert weight((batch + 1, 80, 62, 62), most) != row      # batch 5
    assert weight((batch, 80, 62, 62), most + 8) != row      # 24 outputs
    assert weight((2, 48, 1000), 8, k=7, stride=3) == row    # 1-D, stride 3
    assert weight((1, 128, 80, 80), 8, stride=4) == row      # stride 4
    # input channels: 512 in the row, more not (run 7's 672 -> 8 was slower)
    widest = _plan.THRESHOLDS["strided_weight_taps_max_in_channels"].value
    assert weight((2, widest, 28, 28), 8) == row
    assert weight((2, widest + 8, 28, 28), 8) != row
    assert weight((3, 672, 32, 32), 8) != row
    # batch 3 exactly: up to 32 outputs (held-out run 16's worst point), not 48;
    # at batch 2 and 4 the bound stays 16
    three = _plan.Choice("taps", "strided_weight_taps_three_sample_max_out_channels")
    assert _plan.THRESHOLDS["strided_weight_taps_three_sample_max_out_channels"].value == 32
    assert weight((3, 24, 152, 152), 32) == three
    assert weight((3, 24, 152, 152), 16) == three
    assert weight((3, 24, 152, 152), 40).formulation == "transpose"
    for n in (2, 4):
        assert weight((n, 24, 152, 152), 24).formulation == "transpose", n
    # stride 1 (24 input channels: below the swapped row, which would come first)
    assert weight((2, 24, 62, 62), 8, stride=2) == row
    assert weight((2, 24, 62, 62), 8, stride=1) != row
    assert weight((2, 80, 62, 62), 8, dilation=2) != row
    assert weight((2, 80, 62, 62), 8, groups=2) != row
    # a buffer just above dense_taps_max_elements (4·64·49·31² = 12.1M): textbook
    assert 4 * 64 * 49 * 31 * 31 > _plan.THRESHOLDS["dense_taps_max_elements"].value
    assert weight((4, 64, 62, 62), 8, k=7).formulation == "transpose"
    assert weight((4, 64, 50, 50), 8, k=7) == row            # 4·64·49·25² = 7.8M
    # one strided dim only: not this row
    spec = ConvSpec((2, 1), ((1, 1), (1, 1)), (1, 1), 1, "auto")
    assert plan(spec, (1, 80, 62, 62), (8, 80, 3, 3), (1, 8, 31, 62), jnp.float32,
                backend="cpu").weight_grad != row


def test_strided_few_output_weight_gradients_take_taps_below_a_batch_of_8():
    # held-out run 26: (5, 8, 92²) -> 8, 3x3 stride 2, regret 1.85 with the
    # textbook rule (batch 5, past strided_weight_taps_max_batch)
    rows = {k: _plan.THRESHOLDS[k].value for k in (
        "strided_weight_taps_max_batch", "strided_weight_taps_few_samples_max_batch",
        "strided_weight_taps_few_samples_max_in_channels",
        "strided_weight_taps_few_samples_max_elements")}
    assert (rows["strided_weight_taps_max_batch"],
            rows["strided_weight_taps_few_samples_max_batch"]) == (4, 7)
    row = _plan.Choice("taps", "strided_weight_taps_few_samples_max_batch")

    weight = _strided_weight

    assert weight((5, 8, 92, 92), 8) == row
    for n in (5, 6, 7):
        assert weight((n, 8, 92, 92), 16) == row, n
    assert weight((4, 8, 92, 92), 8).reason == "strided_weight_taps_max_out_channels"
    assert weight((8, 8, 92, 92), 8).formulation == "transpose"    # batch 8: XLA's
    assert weight((5, 8, 92, 92), 24).formulation == "transpose"   # 24 outputs
    assert weight((6, 8, 56, 56), 8, k=7, stride=3) == row        # stride 3, 7x7
    # 2-D: at most 48 input channels (5x5 stride 2 with 64 and 128 lost in networks)
    assert weight((6, 48, 28, 28), 6, k=5) == row
    assert weight((6, 64, 28, 28), 6, k=5).formulation == "transpose"
    assert weight((6, 128, 28, 28), 6, k=5).formulation == "transpose"
    # 1-D: up to 32 outputs (2-D stays at 16, above), and up to
    # strided_weight_taps_max_in_channels (512) inputs
    assert _plan.THRESHOLDS["strided_weight_taps_few_samples_one_d_max_out_channels"].value == 32
    assert weight((6, 64, 500), 32, k=7) == row
    assert weight((6, 64, 500), 40, k=7) != row
    assert weight((6, 16, 56, 56), 24) != row
    assert weight((6, 256, 1000), 8, k=5) == row
    assert weight((6, 512, 200), 8, k=5) == row
    assert weight((6, 640, 200), 8, k=5) != row
    # the buffer: 7·48·9·46² = 6.4M > 2^22 (the networks were drawn within 2^22)
    assert 7 * 48 * 9 * 46 * 46 > rows["strided_weight_taps_few_samples_max_elements"]
    assert weight((7, 48, 92, 92), 8).formulation == "transpose"
    assert 7 * 16 * 49 * 31 * 31 > rows["strided_weight_taps_few_samples_max_elements"]
    assert weight((7, 16, 92, 92), 16, k=7, stride=3) != row    # 5.3M
    # not 3-D, not dilated, not grouped, not stride 1
    assert weight((5, 8, 16, 16, 16), 8) != row
    assert weight((5, 8, 92, 92), 8, dilation=2) != row
    assert weight((5, 8, 92, 92), 8, groups=2) != row
    assert weight((5, 8, 92, 92), 8, stride=1) != row
    spec = ConvSpec((2, 1), ((1, 1), (1, 1)), (1, 1), 1, "auto")   # one strided dim
    assert plan(spec, (5, 8, 92, 92), (8, 8, 3, 3), (5, 8, 46, 92), jnp.float32,
                backend="cpu").weight_grad != row
    spec = ConvSpec((2, 2), ((1, 1), (1, 1)), (1, 1), 1, "auto")   # CPU only
    assert plan(spec, (5, 8, 92, 92), (8, 8, 3, 3), (5, 8, 46, 46), jnp.float32,
                backend="gpu").weight_grad.formulation == "transpose"


def test_held_out_26_strided_weight_gradient_equals_lax_autodiff():
    # the shape of held-out run 26's point, smaller: auto's gradient (on CPU
    # taps under the row above) against lax's, to float64 tolerance
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 8, 30, 30), jnp.float64)
    w = jax.random.normal(jax.random.PRNGKey(1), (8, 8, 3, 3), jnp.float64)
    with _plan.recording() as made:
        got = jax.grad(lambda w: jnp.sum(jnp.sin(jaxgrad.conv2d(x, w, stride=2, padding=1))))(w)
    if jax.default_backend() == "cpu":    # the row is CPU's; elsewhere the textbook rule
        assert [m.choice.reason for m in made if m.kind == "weight_grad"] == [
            "strided_weight_taps_few_samples_max_batch"]
    want = jax.grad(lambda w: jnp.sum(jnp.sin(lax.conv_general_dilated(
        x, w, (2, 2), ((1, 1), (1, 1))))))(w)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
