"""Integer and bool tensors against PyTorch: the ops whose torch counterparts compute them.

torch's convolutions and transposed convolutions take int64, ``linear``,
``pad``, pixel (un)shuffle, relu, relu6, hardtanh and max pooling every
integer type, average pooling int64 (its mean is the integer sum divided
towards 0), ``tanh``/``sigmoid`` integers and bool (computed in the default
float dtype), softmax/log_softmax them with ``dtype=``, nearest
interpolation uint8, bilinear and bicubic interpolation uint8 (in 16-bit
fixed point) and ``unfold`` bool. None of them has a gradient. The
results must be torch's exactly, wraparound included; jaxgrad's gradient
machinery must step aside (JAX's float0 cotangents for integer inputs, as for
any JAX function of an integer).

The first test runs PyTorch's own OpInfo samples of every such op and dtype
(a fixed subset where an op has hundreds); the others pin down the rules the
samples do not reach.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing._internal.common_methods_invocations import op_db

import jaxgrad

# (op name, variant) -> the jaxgrad function the sample is run through.
OPS = {
    ("nn.functional.conv1d", ""): jaxgrad.conv1d,
    ("nn.functional.conv2d", ""): jaxgrad.conv2d,
    ("nn.functional.conv3d", ""): jaxgrad.conv3d,
    ("nn.functional.conv_transpose1d", ""): jaxgrad.conv_transpose1d,
    ("nn.functional.conv_transpose2d", ""): jaxgrad.conv_transpose2d,
    ("nn.functional.conv_transpose3d", ""): jaxgrad.conv_transpose3d,
    ("nn.functional.linear", ""): jaxgrad.linear,
    ("nn.functional.relu", ""): jaxgrad.relu,
    ("nn.functional.relu6", ""): jaxgrad.relu6,
    ("nn.functional.hardtanh", ""): jaxgrad.hardtanh,
    ("tanh", ""): jaxgrad.tanh,
    ("sigmoid", ""): jaxgrad.sigmoid,
    ("nn.functional.max_pool2d", ""): jaxgrad.max_pool2d,
    ("nn.functional.max_pool3d", ""): jaxgrad.max_pool3d,
    ("nn.functional.avg_pool1d", ""): jaxgrad.avg_pool1d,
    ("nn.functional.avg_pool2d", ""): jaxgrad.avg_pool2d,
    ("nn.functional.avg_pool3d", ""): jaxgrad.avg_pool3d,
    ("nn.functional.pixel_shuffle", ""): jaxgrad.pixel_shuffle,
    ("nn.functional.pixel_unshuffle", ""): jaxgrad.pixel_unshuffle,
    ("nn.functional.unfold", ""): jaxgrad.unfold,
    ("nn.functional.interpolate", "nearest"): jaxgrad.interpolate,
    ("nn.functional.interpolate", "nearest-exact"): jaxgrad.interpolate,
    ("nn.functional.interpolate", "bilinear"): jaxgrad.interpolate,
    ("nn.functional.interpolate", "bicubic"): jaxgrad.interpolate,
    ("nn.functional.upsample_nearest", ""): jaxgrad.upsample_nearest,
    ("nn.functional.upsample_bilinear", ""): jaxgrad.upsample_bilinear,
    ("softmax", "with_dtype"): jaxgrad.softmax,
    ("log_softmax", "with_dtype"): jaxgrad.log_softmax,
    **{("nn.functional.pad", mode): jaxgrad.pad
       for mode in ("constant", "reflect", "replicate", "circular", "replicate_negative")},
}

# Per op: int64 (torch's integer type), bool, and one 8-bit type, each where
# torch lists it; at most this many samples per (op, dtype), spread evenly
# over the op's list (max pooling has 1,440 per dtype). All 11,208 samples of
# every listed integer dtype took 6 minutes on two cores, and every one
# passed (2026-12-05).
SAMPLES_PER_DTYPE = 16
_TORCH_FLOATS = {torch.float16: "float16", torch.bfloat16: "bfloat16",
                 torch.float32: "float32", torch.float64: "float64"}


def _jax_args(value):
    """A sample's tensors as NumPy arrays, torch dtypes as JAX names, recursively."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, torch.dtype):
        return _TORCH_FLOATS[value]
    if isinstance(value, (list, tuple)):
        return type(value)(_jax_args(v) for v in value)
    return value


def _cases():
    for op in op_db:
        key = (op.name, op.variant_test_name)
        if key not in OPS:
            continue
        listed = op.supported_dtypes("cpu")
        narrow = [d for d in (torch.uint8, torch.int8) if d in listed][:1]
        for dtype in [d for d in (torch.int64, torch.bool) if d in listed] + narrow:
            yield pytest.param(op, dtype, id=f"{op.name}.{op.variant_test_name}-{dtype}")


@pytest.mark.parametrize("op, dtype", list(_cases()))
def test_opinfo_integer_samples(op, dtype):
    """Every op's integer and bool OpInfo samples equal torch's output, in
    torch's dtype (exactly for integer results; float results of tanh,
    sigmoid and softmax to float32 rounding)."""
    samples = list(op.sample_inputs("cpu", dtype))
    assert samples, op.name
    step = max(1, -(-len(samples) // SAMPLES_PER_DTYPE))
    jax_fn = OPS[(op.name, op.variant_test_name)]
    problems = []
    for index, sample in enumerate(samples[::step]):
        want = op(sample.input, *sample.args, **sample.kwargs)
        kwargs = {k: _jax_args(v) for k, v in sample.kwargs.items()}
        if op.name == "nn.functional.interpolate":
            kwargs["mode"] = op.variant_test_name
        got = jax_fn(_jax_args(sample.input), *_jax_args(sample.args), **kwargs)
        if isinstance(want, tuple):      # max pooling's return_indices
            want, got = want[0], got[0]
        want, got = want.numpy(), np.asarray(got)
        label = f"sample {index * step}: input {tuple(sample.input.shape)}"
        if want.dtype.kind in "biu":
            if got.dtype != want.dtype or not np.array_equal(got, want):
                problems.append(f"{label}: {got.dtype} vs {want.dtype}, "
                                f"equal={np.array_equal(got, want)}")
        else:     # torch's dtype: float32 for tanh and sigmoid, dtype= for softmax
            assert got.dtype == want.dtype, (label, got.dtype, want.dtype)
            if not np.allclose(got, want, rtol=2e-6, atol=1e-7):
                problems.append(f"{label}: max abs {np.max(np.abs(got - want)):.2e}")
    assert not problems, problems


# --------------------------------------------------------------------------
# The rules the samples do not reach.


@pytest.mark.parametrize("algorithm", ["auto", "transpose", "taps", "autotune"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.uint8])
def test_convolutions_wrap_around_as_torch(algorithm, dtype):
    """Grouped, strided, dilated, padded integer convolutions with a bias,
    in every algorithm, wrap around exactly as torch's (int8: values beyond
    ±127 in the sums)."""
    rng = np.random.default_rng(5)
    x = rng.integers(-40, 41, (2, 4, 9, 8)).astype(dtype)
    w = rng.integers(-40, 41, (6, 2, 3, 3)).astype(dtype)
    b = rng.integers(-40, 41, (6,)).astype(dtype)
    wt = rng.integers(-40, 41, (4, 3, 3, 2)).astype(dtype)
    got = jaxgrad.conv2d(x, w, b, stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2,
                         algorithm=algorithm)
    # torch's dilated convolution computes int64 only; the narrower types wrap
    # around the same sums (integer arithmetic modulo 2^bits)
    want = F.conv2d(*(torch.from_numpy(a).long() for a in (x, w, b)), stride=(2, 1),
                    padding=(2, 1), dilation=(1, 2), groups=2)
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got), want.numpy().astype(dtype))
    if dtype == np.int8:     # and the wraparound is torch's own at int8
        plain = F.conv2d(*map(torch.from_numpy, (x, w, b)), stride=(2, 1), padding=(2, 1),
                         groups=2)
        np.testing.assert_array_equal(
            np.asarray(jaxgrad.conv2d(x, w, b, stride=(2, 1), padding=(2, 1), groups=2,
                                      algorithm=algorithm)), plain.numpy())
        assert np.abs(F.conv2d(*(torch.from_numpy(a).long() for a in (x, w, b)),
                               stride=(2, 1), padding=(2, 1), groups=2)).max() > 127
    # the transposed convolution: torch computes int64 only; narrower types
    # wrap around the same sums
    got = jaxgrad.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=(1, 0),
                                   groups=2, dilation=(1, 2), algorithm=algorithm)
    want = F.conv_transpose2d(*(torch.from_numpy(a).long() for a in (x, wt)), stride=2,
                              padding=1, output_padding=(1, 0), groups=2, dilation=(1, 2))
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got), want.numpy().astype(dtype))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_integer_padding_mode(mode):
    """nn.Conv2d's padding_mode on an integer convolution."""
    rng = np.random.default_rng(6)
    x, w = rng.integers(-9, 10, (1, 2, 6, 5)), rng.integers(-9, 10, (3, 2, 3, 3))
    got = jaxgrad.conv2d(x, w, padding=(2, 1), padding_mode=mode)
    layer = torch.nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode=mode, bias=False)
    with torch.no_grad():
        layer.weight = torch.nn.Parameter(torch.from_numpy(w), requires_grad=False)
        want = layer(torch.from_numpy(x))
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


def test_integer_inputs_have_no_gradient():
    """jax.vjp gives integer inputs JAX's float0 cotangents (the rules are not
    entered), jax.grad refuses them with JAX's own error, and integer
    convolutions run under jit and vmap."""
    x = jnp.arange(2 * 4 * 5 * 5).reshape(2, 4, 5, 5) % 7
    w = jnp.ones((4, 2, 3, 3), x.dtype)
    y, vjp = jax.vjp(lambda x, w: jaxgrad.conv2d(x, w, groups=2), x, w)
    cotangents = vjp(np.zeros(y.shape, jax.dtypes.float0))
    assert [c.dtype for c in cotangents] == [jax.dtypes.float0] * 2
    with pytest.raises(TypeError, match="grad requires real- or complex-valued inputs"):
        jax.grad(lambda x: jaxgrad.conv2d(x, w, groups=2).sum())(x)
    want = F.conv2d(torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(w)),
                    groups=2).numpy()
    np.testing.assert_array_equal(np.asarray(jax.jit(
        lambda x: jaxgrad.conv2d(x, w, groups=2))(x)), want)
    np.testing.assert_array_equal(np.asarray(jax.vmap(
        lambda x: jaxgrad.conv2d(x, w, groups=2))(x[:, None]))[:, 0], want)
    for op in (jaxgrad.relu, lambda v: jaxgrad.max_pool2d(v, 2), jaxgrad.tanh,
               lambda v: jaxgrad.pad(v, (1, 1, 1, 1), mode="reflect")):
        _, vjp = jax.vjp(op, x)
        assert vjp(np.zeros(jax.eval_shape(op, x).shape,
                            jax.eval_shape(op, x).dtype if op is jaxgrad.tanh
                            else jax.dtypes.float0))[0].dtype == jax.dtypes.float0


def test_float_and_integer_do_not_mix():
    """torch refuses an int64 input with a float weight or bias; so does jaxgrad."""
    x, w = np.ones((1, 2, 4), np.int64), np.ones((3, 2, 2), np.int64)
    with pytest.raises(RuntimeError):
        F.conv1d(torch.from_numpy(x), torch.from_numpy(w), torch.ones(3))
    with pytest.raises(TypeError, match=r"^conv1d: arguments must share one dtype, but "
                                        r"`input` is int64, `weight` is int64, `bias` is "
                                        r"float(32|64)$"):
        jaxgrad.conv1d(x, w, [0.5, 0.5, 0.5])
    # Python ints take the integer dtype
    np.testing.assert_array_equal(
        np.asarray(jaxgrad.conv1d(x, w, [1, 2, 3])),
        F.conv1d(*map(torch.from_numpy, (x, w)), torch.tensor([1, 2, 3])).numpy())
    # a list holding a NumPy or JAX float scalar is a float array, never truncated
    for half in (np.float32(0.5), jnp.float32(0.5), np.array(0.5, np.float16)):
        with pytest.raises(TypeError, match=r"^conv1d: arguments must share one dtype, "
                                            r"but .*`bias` is float(16|32|64)$"):
            jaxgrad.conv1d(x, w, [half] * 3)
    with pytest.raises(TypeError, match=r"^linear: arguments must share one dtype, but "
                                        r"`input` is float(32|64), `weight` is int64$"):
        jaxgrad.linear([[np.float32(1.9), 2]], np.ones((3, 2), np.int64))
    # ints that do not fit the integer dtype: JAX's default int, so a mismatch
    # (torch's Python ints are int64 too)
    u8 = x.astype(np.uint8), w.astype(np.uint8)
    with pytest.raises(RuntimeError):
        F.conv1d(*map(torch.from_numpy, u8), torch.tensor([-1, 1, 2]))
    with pytest.raises(TypeError, match=r"^conv1d: arguments must share one dtype, but "
                                        r"`input` is uint8, `weight` is uint8, `bias` is "
                                        r"int(32|64)$"):
        jaxgrad.conv1d(*u8, [-1, 1, 2])


def test_pad_value_is_truncated_and_must_fit():
    """torch converts the fill to the integer type towards 0 and refuses one
    that does not fit; a bool fill is its truth value."""
    x = np.arange(-3, 3, dtype=np.int16).reshape(2, 3)
    for value in (-2.7, 2.7, 7, -0.5):
        np.testing.assert_array_equal(
            np.asarray(jaxgrad.pad(x, (2, 1), value=value)),
            F.pad(torch.from_numpy(x), (2, 1), value=value).numpy())
    xb = x > 0
    np.testing.assert_array_equal(np.asarray(jaxgrad.pad(xb, (1, 1), value=2.5)),
                                  F.pad(torch.from_numpy(xb), (1, 1), value=2.5).numpy())
    with pytest.raises(RuntimeError, match="overflow"):
        F.pad(torch.from_numpy(x.astype(np.uint8)), (1, 1), value=300.0)
    with pytest.raises(ValueError, match=r"^pad: `value` must fit in the uint8 `input`, "
                                         r"got 300.0$"):
        jaxgrad.pad(x.astype(np.uint8), (1, 1), value=300.0)
    with pytest.raises(ValueError, match=r"^pad: `value` must fit in the int16 `input`, "
                                         r"got inf$"):
        jaxgrad.pad(x, (1, 1), value=float("inf"))
    # the range is checked before the truncation, on the double torch reads
    for dtype, value in ((np.int8, 127.5), (np.int8, -128.5), (np.uint8, -0.5),
                         (np.uint8, 255.9)):
        with pytest.raises(RuntimeError, match="overflow"):
            F.pad(torch.from_numpy(x.astype(dtype)), (1, 1), value=value)
        with pytest.raises(ValueError, match=rf"^pad: `value` must fit in the "
                                             rf"{np.dtype(dtype).name} `input`, got {value}$"):
            jaxgrad.pad(x.astype(dtype), (1, 1), value=value)
    for dtype, value in ((np.int8, 127), (np.uint8, 255), (np.int64, 2**62 + 3)):
        np.testing.assert_array_equal(
            np.asarray(jaxgrad.pad(x.astype(dtype), (1, 1), value=value)),
            F.pad(torch.from_numpy(x.astype(dtype)), (1, 1), value=value).numpy())


def test_hardtanh_bounds_on_integers():
    """Bounds are truncated towards 0 (so -2.5 clamps to -2), must fit the
    dtype, and an unsigned input takes no negative bound, as in torch."""
    x = np.arange(-8, 9, dtype=np.int8)
    for lo, hi in ((-2.5, 3.7), (-6.9, 6.9), (0.5, 2.5), (-3, -1.5)):
        np.testing.assert_array_equal(np.asarray(jaxgrad.hardtanh(x, lo, hi)),
                                      F.hardtanh(torch.from_numpy(x), lo, hi).numpy())
    np.testing.assert_array_equal(np.asarray(jaxgrad.relu6(x.astype(np.uint8))),
                                  F.relu6(torch.from_numpy(x.astype(np.uint8))).numpy())
    with pytest.raises(RuntimeError, match="overflow"):
        F.hardtanh(torch.from_numpy(x), -1000.0, 3.0)
    with pytest.raises(ValueError, match=r"^hardtanh: `min_val` must fit in the int8 "
                                         r"`input` \(\[-128, 127\]\), got -1000.0$"):
        jaxgrad.hardtanh(x, -1000.0, 3.0)
    with pytest.raises(RuntimeError, match="unsigned type with negative limits"):
        F.hardtanh(torch.from_numpy(x.astype(np.uint8)))
    # -0.5 truncates to 0: torch takes it for an unsigned input
    np.testing.assert_array_equal(
        np.asarray(jaxgrad.hardtanh(x.astype(np.uint8), -0.5, 3)),
        F.hardtanh(torch.from_numpy(x.astype(np.uint8)), -0.5, 3).numpy())
    # integer bounds keep every digit (no float conversion), up to the type's limits
    big = np.array([2**62 + 1, -3, 2**63 - 1])
    for lo, hi in ((0, 2**62 + 1), (-5, 2**63 - 1)):
        np.testing.assert_array_equal(np.asarray(jaxgrad.hardtanh(big, lo, hi)),
                                      F.hardtanh(torch.from_numpy(big), lo, hi).numpy())
    top = np.array([2**64 - 1, 3], np.uint64)
    assert np.asarray(jaxgrad.hardtanh(top, 0, 2**63 + 1)).tolist() == [2**63 + 1, 3]
    with pytest.raises(ValueError, match=r"^hardtanh: `max_val` must fit in the int32 "
                                         r"`input` \(\[-2147483648, 2147483647\]\), got "
                                         r"2147483648$"):
        jaxgrad.hardtanh(big.astype(np.int32), 0, 2**31)
    with pytest.raises(ValueError, match=r"^hardtanh: an unsigned \(uint8\) `input` takes "
                                         r"no negative bound, got min_val=-1.0$"):
        jaxgrad.hardtanh(x.astype(np.uint8))


def test_integer_pooling_rules():
    """Average pooling divides the integer sum towards 0 (-11/2 is -5), with
    every divisor rule; max pooling picks torch's first maximum, also of
    windows holding only the dtype's smallest value."""
    x = np.array([[[-7, -4, 5, 8, -1, 2, -3]]], np.int64)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, padding=1),
                   dict(kernel_size=3, padding=1, count_include_pad=False),
                   dict(kernel_size=2, ceil_mode=True)):
        np.testing.assert_array_equal(np.asarray(jaxgrad.avg_pool1d(x, **kwargs)),
                                      F.avg_pool1d(torch.from_numpy(x), **kwargs).numpy())
    for dtype in (np.int32, np.int8):    # torch: int64 only; the same quotients
        np.testing.assert_array_equal(
            np.asarray(jaxgrad.avg_pool1d(x.astype(dtype), 3, padding=1)),
            F.avg_pool1d(torch.from_numpy(x), 3, padding=1).numpy().astype(dtype))
        assert jaxgrad.avg_pool1d(x.astype(dtype), 3).dtype == dtype
    x2 = x[None].repeat(2, axis=2)
    np.testing.assert_array_equal(
        np.asarray(jaxgrad.avg_pool2d(x2, 2, padding=1, divisor_override=3)),
        F.avg_pool2d(torch.from_numpy(x2), 2, padding=1, divisor_override=3).numpy())
    low = np.full((1, 1, 2, 4), np.iinfo(np.int32).min, np.int32)
    low[0, 0, 1, 3] = 5
    got, index = jaxgrad.max_pool2d(low, 2, return_indices=True)
    want, want_index = F.max_pool2d(torch.from_numpy(low), 2, return_indices=True)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
    np.testing.assert_array_equal(np.asarray(index), want_index.numpy())
    # max_pool1d: torch's kernel takes no integers; the same windows as 2-D
    got = jaxgrad.max_pool1d(x, 3, stride=2, padding=1)
    want = F.max_pool2d(torch.from_numpy(x)[:, None], (1, 3), (1, 2), (0, 1))[:, 0]
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


def test_fold_of_bool_is_or():
    """torch folds bool columns, a sum of bools being their "or"; so does jaxgrad."""
    cols = np.random.default_rng(8).random((2, 8, 9)) > 0.6
    got = jaxgrad.fold(cols, 4, 2)
    want = F.fold(torch.from_numpy(cols), 4, 2).numpy()
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(np.asarray(got), want)


def test_integer_refusals_name_the_rule():
    """Where torch computes no integers, neither does jaxgrad: the error names
    the op, the argument and the dtypes it takes."""
    xi = np.ones((1, 1, 4, 4), np.int64)
    with pytest.raises(TypeError, match=r"^interpolate: mode='bilinear' takes a floating "
                                        r"or uint8 `input`, got int64 \(integer and bool "
                                        r"inputs are taken by the nearest modes, uint8 also "
                                        r"by bilinear, bicubic and lanczos, as torch's\)$"):
        jaxgrad.interpolate(xi, size=3, mode="bilinear")
    with pytest.raises(TypeError, match=r"^adaptive_avg_pool2d: `input` must have a "
                                        r"floating dtype .*got int64$"):
        jaxgrad.adaptive_avg_pool2d(xi, 2)
    with pytest.raises(TypeError, match=r"^conv2d: `input` must have a floating, complex or "
                                        r"integer dtype .*got bool$"):
        jaxgrad.conv2d(xi > 0, xi)
    for conv in (jaxgrad.conv2d, jaxgrad.conv_transpose2d):   # the input is named first
        with pytest.raises(TypeError, match=r"^conv(_transpose)?2d: `input` must have a "
                                            r"floating, complex or integer dtype .*got bool$"):
            conv(xi > 0, xi > 0)
    with pytest.raises(TypeError, match=r"^softmax: `input` must have a floating dtype, "
                                        r"got int64 \(an integer or bool input takes "
                                        r"`dtype=`, the floating dtype to compute in, as "
                                        r"torch's\)$"):
        jaxgrad.softmax(xi, 0)
