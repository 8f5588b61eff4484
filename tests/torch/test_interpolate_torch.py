"""jaxgrad's ``interpolate`` vs PyTorch: forward, first- and second-order gradients.

Each grid configuration stacks every mode of its rank (and ``align_corners``
both ways) into one function, compared by ``check_parity`` in float64 to
second order (output, VJP for a random cotangent, the gradient of ⟨x̄, u⟩
w.r.t. the input and the cotangent): scale factors that do not divide (1.7,
0.6), ``recompute_scale_factor`` both ways, up- and downsampling, 1-D/2-D/3-D,
odd sizes, size-1 axes, an empty batch. Then float32 and bfloat16, PyTorch's
own OpInfo samples, and the two corners where torch's CPU backward is not the
gradient of torch's own forward (jaxgrad matches the forward there and
differentiates it exactly).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing._internal.common_methods_invocations import op_db

import jaxgrad
from jaxgrad import testing
from jaxgrad._checking._tolerance import tolerance

from ._parity import check_parity, check_values

MODES = {1: [("nearest", None), ("nearest-exact", None), ("linear", False),
             ("linear", True), ("area", None)],
         2: [("nearest", None), ("nearest-exact", None), ("bilinear", False),
             ("bilinear", True), ("bicubic", False), ("bicubic", True), ("area", None)],
         3: [("nearest", None), ("nearest-exact", None), ("trilinear", False),
             ("trilinear", True), ("area", None)]}


def every_mode(interpolate, rank: int, kwargs: dict):
    """All modes of ``rank`` on one input, stacked."""
    def run(x):
        outs = [interpolate(x, mode=mode, align_corners=align, **kwargs)
                for mode, align in MODES[rank]]
        return (torch.stack if isinstance(x, torch.Tensor) else jnp.stack)(outs)
    return run


def every_config(interpolate, configs):
    """Every mode of every (shape, kwargs) configuration: one program, one
    output per configuration (argument ``x<i>``)."""
    fns = [every_mode(interpolate, len(shape) - 2, kwargs) for shape, kwargs in configs]
    return lambda *xs: tuple(fn(x) for fn, x in zip(fns, xs))


def _shapes(configs) -> dict:
    return {f"x{i}": shape for i, (shape, _) in enumerate(configs)}


# PyTorch's OpInfo samples (below) cover every mode with the scale factors
# 1.7 and 0.6, recomputed or not, on 4- and 5-sized inputs; the grid adds
# odd sizes, per-dim scales, size-1 inputs and outputs, unchanged and doubled
# axes (torch's 2-D nearest copies / halves there), and empty batches.
GRID = [
    ((2, 3, 7), {"size": 12}),
    ((0, 2, 9), {"scale_factor": 0.6}),
    ((2, 2, 5, 7), {"size": (9, 4)}),
    ((1, 1, 9, 5), {"scale_factor": (2.5, 1.05), "recompute_scale_factor": False}),
    ((1, 2, 3, 5), {"size": (6, 5)}),
    ((1, 1, 1, 9), {"size": (4, 1)}),
    ((0, 1, 5, 4, 3), {"scale_factor": (0.6, 1.7, 2.0), "recompute_scale_factor": True}),
    ((1, 1, 5, 4, 3), {"size": (2, 7, 3)}),
]


def test_every_mode_float64_second_order():
    check_parity(f"interpolate, x<i> = {GRID}", every_config(jaxgrad.interpolate, GRID),
                 every_config(F.interpolate, GRID), _shapes(GRID))


REDUCED = [((2, 3, 6, 5), {"scale_factor": 1.7}), ((1, 2, 4, 3, 5), {"size": (3, 5, 7)})]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_reduced_precision(dtype):
    check_parity(f"interpolate, x<i> = {REDUCED}", every_config(jaxgrad.interpolate, REDUCED),
                 every_config(F.interpolate, REDUCED), _shapes(REDUCED), dtype=dtype,
                 double=dtype == "float32")


@pytest.mark.parametrize("name", ["interpolate", "upsample", "upsample_nearest",
                                  "upsample_bilinear"])
def test_signature_matches_torch(name):
    ours = inspect.signature(getattr(jaxgrad, name)).parameters
    theirs = inspect.signature(getattr(F, name)).parameters
    assert [(p.name, p.default) for p in ours.values()] == [
        (p.name, p.default) for p in theirs.values()]


@pytest.mark.parametrize("name", ["upsample_nearest", "upsample_bilinear"])
def test_deprecated_spellings_on_opinfo_samples(name):
    """torch's deprecated upsample_nearest / upsample_bilinear (OpInfo has
    them): every float64 sample to second order, as one program."""
    (op,) = [op for op in op_db if op.name == f"nn.functional.{name}"]
    samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=True))
    assert samples
    calls = [(s.args, {k: tuple(v) if isinstance(v, torch.Size) else v
                       for k, v in s.kwargs.items()}) for s in samples]

    def apply(fn):
        return lambda *xs: tuple(fn(x, *a, **k) for x, (a, k) in zip(xs, calls))

    inputs = [s.input.detach().numpy() for s in samples]
    testing.check_parity(apply(getattr(jaxgrad, name)), apply(getattr(F, name)),
                         *(jnp.asarray(a) for a in inputs), rtol=tolerance("float64"),
                         second_order=True)


def test_upsample_is_interpolate():
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 4))
    for kwargs in ({"size": (7, 3), "mode": "bicubic", "align_corners": True},
                   {"scale_factor": 1.5, "mode": "nearest"}):
        with pytest.warns(UserWarning, match="deprecated"):
            want = F.upsample(torch.tensor(x), **kwargs).numpy()
        np.testing.assert_allclose(np.asarray(jaxgrad.upsample(x, **kwargs)), want,
                                   rtol=1e-12, atol=1e-14)


def test_special_values_propagate_as_in_torch():
    # NaN and ±inf in the input and the cotangent: zero-weight taps and the
    # clamped border taps multiply them as torch does (0·inf = NaN), and the
    # adjoint's padding adds exact zeros.
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 5))
    x[0, 0, 1, 2], x[0, 0, 3, 0], x[0, 0, 0, 4] = np.nan, np.inf, -np.inf
    kwargs = {"size": (7, 3)}
    cot = np.random.default_rng(1).standard_normal((3, 1, 1, 7, 3))
    cot[0, 0, 0, 2, 1], cot[2, 0, 0, 6, 2] = np.inf, np.nan
    modes = [("nearest", None), ("bilinear", False), ("bicubic", True)]

    def stacked(interpolate):
        def run(x):
            outs = [interpolate(x, mode=m, align_corners=a, **kwargs) for m, a in modes]
            return (torch.stack if isinstance(x, torch.Tensor) else jnp.stack)(outs)
        return run

    check_values("interpolate special values", stacked(jaxgrad.interpolate),
                 stacked(F.interpolate), {"x": x}, cot=cot, double=False)


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples: every sample of a variant in one program.


VARIANTS = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic",
            "area")


def op_samples(variant: str) -> list:
    (op,) = [op for op in op_db if op.name == "nn.functional.interpolate"
             and op.variant_test_name == variant]
    return list(op.sample_inputs("cpu", torch.float64, requires_grad=True))


def test_op_db_has_every_variant():
    names = {op.variant_test_name for op in op_db if op.name == "nn.functional.interpolate"}
    assert set(VARIANTS) <= names


@pytest.mark.parametrize("variant", VARIANTS)
def test_op_db_samples(variant):
    samples = op_samples(variant)
    assert samples                  # every sample is supported: none is skipped
    calls = [(s.args, s.kwargs) for s in samples]

    def apply(interpolate):
        def run(*xs):
            return tuple(interpolate(x, *args, **kwargs) for x, (args, kwargs)
                         in zip(xs, calls))
        return run

    inputs = {f"sample{i}": s.input.detach().numpy() for i, s in enumerate(samples)}
    testing.check_parity(apply(jaxgrad.interpolate), apply(F.interpolate),
                         *(jnp.asarray(a) for a in inputs.values()),
                         rtol=tolerance("float64"), second_order=True,
                         arg_names=list(inputs))


# --------------------------------------------------------------------------
# Where torch's backward is not its forward's gradient.


def torch_forward_jacobian(fn, shape) -> np.ndarray:
    """J[out, in] of torch's *forward* (a linear map), one basis vector at a time."""
    size = int(np.prod(shape))
    basis = torch.eye(size, dtype=torch.float64).reshape((size,) + tuple(shape[1:]))
    return fn(basis).reshape(size, -1).T.numpy()


@pytest.mark.parametrize("shape, kwargs", [
    # nearest, 1-D / 3-D, a scale that is not 1 or 2 but gives O = 2I or O = I
    ((1, 1, 5), {"scale_factor": 2.1, "mode": "nearest"}),
    ((1, 1, 2, 3, 5), {"scale_factor": (1.0, 1.05, 2.1), "mode": "nearest"}),
    # bicubic, a scale other than 1 that leaves every size unchanged
    ((1, 1, 7, 6), {"scale_factor": 1.05, "mode": "bicubic"}),
], ids=str)
def test_gradient_is_the_transpose_of_torchs_forward(shape, kwargs):
    check_transpose_of_torchs_forward(shape, kwargs)


def check_transpose_of_torchs_forward(shape, kwargs, seed: int = 0) -> None:
    """jaxgrad's forward is torch's, its VJP the exact transpose of torch's
    forward (a Jacobian built one basis vector at a time), and torch's own
    backward is not that transpose (if that fails, torch fixed it)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    want = F.interpolate(torch.tensor(x), **kwargs).numpy()
    got, vjp = jax.vjp(lambda x: jaxgrad.interpolate(x, **kwargs), jnp.asarray(x))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)   # the forward agrees
    cot = np.random.default_rng(seed + 1).standard_normal(want.shape)
    jacobian = torch_forward_jacobian(lambda b: F.interpolate(b, **kwargs), shape)
    exact = (jacobian.T @ cot.ravel()).reshape(shape)
    np.testing.assert_allclose(vjp(jnp.asarray(cot))[0], exact, rtol=1e-12, atol=1e-14)
    xt = torch.tensor(x, requires_grad=True)
    (torch_grad,) = torch.autograd.grad(F.interpolate(xt, **kwargs), xt, torch.tensor(cot))
    assert not np.allclose(torch_grad.numpy(), exact)


# --------------------------------------------------------------------------
# float32 in torch's arithmetic: its float32 kernels compute coordinates and
# weights in float32 (with fused multiply-adds); a float64 table is more
# exact but differs from torch by more than the tolerance on large images.


LARGE = [((1, 1, 2048), {"size": 2000, "mode": "linear"}),
         ((1, 1, 3, 2048), {"size": (2, 2001), "mode": "bilinear"}),
         ((1, 1, 3, 2048), {"scale_factor": (0.7, 0.977), "mode": "bicubic",
                            "recompute_scale_factor": False}),
         ((1, 1, 3, 1500), {"size": (5, 1400), "mode": "bicubic", "align_corners": True}),
         ((1, 1, 3, 2048), {"size": (2, 1900), "mode": "bilinear", "antialias": True}),
         ((1, 1, 3, 2048), {"size": (2, 1700), "mode": "bicubic", "antialias": True}),
         ((1, 1, 3, 2048), {"size": (2, 1900), "mode": "lanczos", "antialias": True}),
         ((1, 1, 2, 3, 1024), {"size": (3, 2, 1000), "mode": "trilinear"})]


@pytest.mark.parametrize("shape, kwargs", LARGE, ids=str)
def test_float32_large_images_in_torchs_arithmetic(shape, kwargs):
    check_parity(f"interpolate float32 {shape} {kwargs}",
                 lambda x: jaxgrad.interpolate(x, **kwargs),
                 lambda x: F.interpolate(x, **kwargs), {"x": shape}, dtype="float32",
                 double=False)
