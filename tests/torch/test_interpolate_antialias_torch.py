"""Anti-aliased interpolation and uint8 bilinear/bicubic against PyTorch.

``antialias=True`` ("bilinear", "bicubic", "lanczos" on 4-D input) resamples
each axis with a window of the filter, widened by the downsampling factor
(Pillow's resampling, as torch's ``_upsample_*2d_aa``): compared in float64
to second order, in float32, with NaN/inf placement, and on the two kinds of
shapes where torch's kernels disagree with each other: an output one pixel
wide (torch's forward is wrong, its backward differentiates the true map,
which is jaxgrad's forward), and an axis a scale factor leaves the same size
(torch's forward skips it, its backward resamples it; jaxgrad follows the
forward and differentiates it exactly).

uint8 inputs to "bilinear"/"bicubic"/"lanczos" run torch's 16-bit fixed-point
passes (the last axis first, each rounded and clipped to [0, 255]); they must
equal torch's bytes exactly, for both of torch's uint8 kernels (the
vectorised one for at most 4 channels, the generic one above).
"""

from __future__ import annotations

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad

from ._parity import check_parity, check_values
from .test_interpolate_torch import check_transpose_of_torchs_forward

AA_MODES = [("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True),
            ("lanczos", False)]


def every_aa_mode(interpolate, kwargs: dict):
    def run(x):
        outs = [interpolate(x, mode=mode, align_corners=align, antialias=True, **kwargs)
                for mode, align in AA_MODES]
        return (torch.stack if isinstance(x, torch.Tensor) else jnp.stack)(outs)
    return run


def every_config(interpolate, configs):
    fns = [every_aa_mode(interpolate, kwargs) for _, kwargs in configs]
    return lambda *xs: tuple(fn(x) for fn, x in zip(fns, xs))


def _shapes(configs) -> dict:
    return {f"x{i}": shape for i, (shape, _) in enumerate(configs)}


# Downsampling by factors that do not divide (the windows widen and differ in
# width from row to row), upsampling (the plain filter, normalised at the
# borders), one axis each way, an axis left as it is, size-1 input axes,
# scale factors used as given or recomputed, and an empty batch. No output is
# one pixel wide while its height changes: torch's forward is wrong there
# (test_one_pixel_wide_output_where_torch_is_wrong).
GRID = [
    ((2, 2, 17, 13), {"size": (5, 4)}),
    ((1, 2, 9, 11), {"scale_factor": 0.37, "recompute_scale_factor": False}),
    ((1, 1, 23, 7), {"scale_factor": (0.3, 1.6), "recompute_scale_factor": True}),
    ((1, 1, 5, 6), {"size": (11, 13)}),
    ((1, 2, 8, 30), {"size": (8, 7)}),
    ((1, 1, 1, 9), {"size": (3, 2)}),
    ((1, 1, 12, 1), {"size": (5, 3)}),
    ((0, 2, 9, 9), {"size": (4, 6)}),
]


def test_antialias_float64_second_order():
    check_parity(f"interpolate antialias, x<i> = {GRID}", every_config(jaxgrad.interpolate, GRID),
                 every_config(F.interpolate, GRID), _shapes(GRID))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_antialias_reduced_precision(dtype):
    """float32 against torch's float32; bfloat16 (torch's CPU refuses half
    types anti-aliased; jaxgrad computes them in float32 and rounds once)
    against torch's float64, to bfloat16 rounding."""
    configs = GRID[:3]
    check_parity(f"interpolate antialias {dtype}, x<i> = {configs}",
                 every_config(jaxgrad.interpolate, configs),
                 every_config(F.interpolate, configs), _shapes(configs), dtype=dtype,
                 double=False)


def test_antialias_special_values_propagate_as_in_torch():
    # NaN and ±inf reach only the outputs whose window holds them (the
    # padding taps of shorter windows add exact zeros), and the cotangent's
    # reach only the inputs those outputs read.
    x = np.random.default_rng(0).standard_normal((1, 1, 9, 11))
    x[0, 0, 1, 2], x[0, 0, 7, 0], x[0, 0, 4, 10] = np.nan, np.inf, -np.inf
    cot = np.random.default_rng(1).standard_normal((5, 1, 1, 4, 3))
    cot[0, 0, 0, 2, 1], cot[3, 0, 0, 0, 2] = np.inf, np.nan
    check_values("interpolate antialias special values",
                 every_aa_mode(jaxgrad.interpolate, {"size": (4, 3)}),
                 every_aa_mode(F.interpolate, {"size": (4, 3)}), {"x": x}, cot=cot,
                 double=False)


@pytest.mark.parametrize("mode, align", AA_MODES)
def test_one_pixel_wide_output_where_torch_is_wrong(mode, align):
    """An output one pixel wide whose height changes: torch's (2.13) forward
    repeats one row's value down the column; its backward is the gradient of
    the true resampling, which is jaxgrad's forward (checked against torch's
    forward on the transposed image, where the filter is the same per axis)."""
    x = np.random.default_rng(2).standard_normal((2, 3, 25, 18))
    kwargs = {"mode": mode, "align_corners": align, "antialias": True}
    got, vjp = jax.vjp(lambda x: jaxgrad.interpolate(x, size=(4, 1), **kwargs),
                       jnp.asarray(x))
    transposed = F.interpolate(torch.tensor(x).transpose(2, 3), size=(1, 4), **kwargs)
    np.testing.assert_allclose(got, transposed.transpose(2, 3).numpy(), rtol=1e-12,
                               atol=1e-13)
    xt = torch.tensor(x, requires_grad=True)
    theirs = F.interpolate(xt, size=(4, 1), **kwargs)
    cot = np.random.default_rng(3).standard_normal(theirs.shape)
    (torch_grad,) = torch.autograd.grad(theirs, xt, torch.tensor(cot))
    np.testing.assert_allclose(vjp(jnp.asarray(cot))[0], torch_grad.numpy(), rtol=1e-12,
                               atol=1e-13)
    # ... and torch's forward is not that map (if this fails, torch fixed it)
    assert not np.allclose(got, theirs.detach().numpy())


# --------------------------------------------------------------------------
# uint8: torch's fixed point, byte for byte.


def _uint8_configs(count: int, seed: int = 0):
    """(shape, kwargs) drawn once: every mode with and without anti-aliasing,
    align_corners both ways, sizes and scale factors (as given, or
    recomputed) down and up, 1, 3 (torch's vectorised kernel) and 5 channels
    (its generic kernel)."""
    rng = random.Random(seed)
    configs = []
    while len(configs) < count:
        mode = rng.choice(["bilinear", "bicubic", "lanczos"])
        antialias = mode == "lanczos" or rng.random() < 0.5
        align = mode != "lanczos" and rng.random() < 0.4
        h, w = rng.randint(1, 36), rng.randint(1, 36)
        if rng.random() < 0.5:
            size = {"size": (rng.randint(1, 50), rng.randint(1, 50))}
        else:
            factors = (rng.choice([0.13, 0.3, 0.5, 0.7, 1.3, 2.0, 3.1]),
                       rng.choice([0.11, 0.25, 0.4, 1.0, 1.5, 2.0]))
            if min(int(h * factors[0]), int(w * factors[1])) < 1:
                continue
            size = {"scale_factor": factors,
                    "recompute_scale_factor": rng.choice([False, None, True])}
        configs.append(((2, rng.choice([1, 3, 5]), h, w),
                        dict(mode=mode, antialias=antialias, align_corners=align, **size)))
    return configs


@pytest.mark.parametrize("index_and_config", list(enumerate(_uint8_configs(48))),
                         ids=lambda c: f"{c[0]}-{c[1][1]['mode']}")
def test_uint8_is_torchs_fixed_point(index_and_config):
    index, (shape, kwargs) = index_and_config
    x = np.random.default_rng(index).integers(0, 256, shape, dtype=np.uint8)
    got = jaxgrad.interpolate(x, **kwargs)
    want = F.interpolate(torch.from_numpy(x), **kwargs).numpy()
    if shape[1] > 4 and want.shape[-1] == 1 and want.shape[-2] != shape[-2]:
        # torch's generic uint8 kernel has the one-pixel-wide bug of its float
        # kernel: compare with its vectorised kernel, channels a few at a time
        want = np.concatenate([F.interpolate(torch.from_numpy(x[:, c:c + 3].copy()),
                                             **kwargs).numpy()
                               for c in range(0, shape[1], 3)], axis=1)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(got), want)


def test_uint8_generic_kernel_one_pixel_wide():
    """torch's generic uint8 kernel (more than 4 channels) is wrong for an
    output one pixel wide; jaxgrad gives its vectorised kernel's bytes."""
    x = np.random.default_rng(4).integers(0, 256, (1, 5, 19, 7), dtype=np.uint8)
    kwargs = {"size": (38, 1), "mode": "bilinear"}
    got = np.asarray(jaxgrad.interpolate(x, **kwargs))
    want = np.concatenate([F.interpolate(torch.from_numpy(x[:, c:c + 1].copy()),
                                         **kwargs).numpy() for c in range(5)], axis=1)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, F.interpolate(torch.from_numpy(x), **kwargs).numpy())


def test_uint8_under_jit_and_vmap_and_without_gradient():
    x = np.random.default_rng(5).integers(0, 256, (3, 2, 3, 11, 9), dtype=np.uint8)
    kwargs = {"size": (4, 5), "mode": "bicubic", "antialias": True}
    want = np.stack([F.interpolate(torch.from_numpy(b), **kwargs).numpy() for b in x])
    got = jax.jit(jax.vmap(lambda b: jaxgrad.interpolate(b, **kwargs)))(x)
    np.testing.assert_array_equal(np.asarray(got), want)
    _, vjp = jax.vjp(lambda b: jaxgrad.interpolate(b, **kwargs), x[0])
    (cot,) = vjp(jnp.zeros(want.shape[1:], jnp.uint8))
    assert cot.dtype == jax.dtypes.float0


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
def test_unchanged_axis_gradient_is_the_transpose_of_torchs_forward(mode):
    """A scale factor other than 1 that leaves one axis' size unchanged: torch's
    anti-aliased forward skips that axis (the identity), its backward
    resamples it with the scale. jaxgrad's forward is torch's, and its
    gradient that forward's exact transpose."""
    check_transpose_of_torchs_forward(
        (1, 2, 3, 7), {"scale_factor": (1.05, 0.3), "mode": mode, "antialias": True}, seed=6)


def test_float32_special_values_at_zero_weights():
    """float32 tables in torch's float32 arithmetic: the weights torch makes
    exactly 0 are 0 here too, so an inf meets them where it meets them in
    torch (0·inf = NaN, or no NaN), with the same signs."""
    a = np.array([[[[0.0, 0.0, np.inf]]]], np.float32)
    b = np.zeros((1, 1, 5, 6), np.float32)
    b[0, 0, 0, 0] = np.inf
    for x, kwargs in ((a, {"size": (1, 21), "mode": "bilinear"}),
                      (b, {"size": (11, 13), "mode": "lanczos"}),
                      (b, {"size": (3, 4), "mode": "bicubic"})):
        got = np.asarray(jaxgrad.interpolate(x, antialias=True, **kwargs))
        want = F.interpolate(torch.from_numpy(x), antialias=True, **kwargs).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.sign(got), np.sign(want))
