"""Complex inputs against PyTorch: the ops whose torch counterparts take them.

torch's convolutions, transposed convolutions, ``linear``, ``pad``, pixel
(un)shuffle, ``fold``/``unfold`` and ``l1_loss`` accept complex64 and
complex128 and differentiate them; so do jaxgrad's. Gradients follow JAX's convention (the
VJP of y = A·x is Aᵀḡ; torch's backward is A^H applied to its grad_output,
the conjugate): ``jaxgrad.testing.check_parity`` feeds torch conj(ḡ) and
compares the conjugate of torch's gradient, and at second order
differentiates the real function Re Σ⟨grad_i, u_i⟩ on both sides. Arguments
have independent standard normal real and imaginary parts.

Both formulations are run, the reference ("transpose") and "taps", on
grouped, depthwise, strided, dilated, tiled and 1x1 convolutions; the
complex64 cases run the default, "auto".
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing._internal.common_methods_invocations import op_db

import jaxgrad
from jaxgrad import testing

from .test_algorithms_torch import CONV_CASES, CONV_TRANSPOSE_CASES, case
from .test_conv_torch import run_conv
from .test_conv_transpose_torch import run_conv_transpose
from .test_fold_torch import GRID as FOLD_GRID
from .test_fold_torch import _cols_shape, unfold_then_fold
from .test_pad_torch import _grid_fns
from .test_pixel_shuffle_torch import SHUFFLE, UNSHUFFLE, _all
from ._parity import check_parity

# "auto" picks one of these two per map; the complex64 tests below run it
# (the default).
ALGORITHMS = ["transpose", "taps"]

MORE_CONV_CASES = [
    case("2d 3x3 same circular", (2, 3, 6, 7), (4, 3, 3, 3), padding="same",
         padding_mode="circular"),
    case("1d depthwise replicate", (2, 3, 9), (3, 1, 3), groups=3, padding=2,
         padding_mode="replicate"),
    case("3d 1x1x1 unbatched", (3, 2, 3, 4), (2, 3, 1, 1, 1)),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_CASES + MORE_CONV_CASES)
def test_conv_complex128(request, algorithm, x_shape, w_shape, bias, kwargs):
    with jaxgrad.conv_algorithm(algorithm):
        run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs,
                 dtype="complex128")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_TRANSPOSE_CASES)
def test_conv_transpose_complex128(request, algorithm, x_shape, w_shape, bias, kwargs):
    with jaxgrad.conv_algorithm(algorithm):
        run_conv_transpose(request.node.callspec.id, x_shape, w_shape, bias, kwargs,
                           dtype="complex128")


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", [
    CONV_CASES[0], CONV_CASES[1], MORE_CONV_CASES[0]])
def test_conv_complex64(request, x_shape, w_shape, bias, kwargs):
    run_conv(request.node.callspec.id, x_shape, w_shape, bias, kwargs,
             dtype="complex64")


def test_conv_transpose_complex64(request):
    x_shape, w_shape, bias, kwargs = CONV_TRANSPOSE_CASES[0].values
    run_conv_transpose("complex64", x_shape, w_shape, bias, kwargs, dtype="complex64")


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_linear_complex(dtype):
    check_parity(f"linear {dtype}", jaxgrad.linear, F.linear,
                 {"x": (2, 3, 5), "w": (4, 5), "b": (4,)}, dtype=dtype)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_complex128(mode):
    ours, theirs, shapes = _grid_fns(mode)
    check_parity(f"pad {mode} complex128", ours, theirs, shapes, dtype="complex128")


def test_pixel_shuffle_complex128():
    shapes = {f"x{i}": s for i, (s, _) in enumerate(SHUFFLE)}
    shapes.update({f"y{i}": s for i, (s, _) in enumerate(UNSHUFFLE)})
    check_parity("pixel_shuffle complex128",
                 _all(jaxgrad.pixel_shuffle, jaxgrad.pixel_unshuffle),
                 _all(F.pixel_shuffle, F.pixel_unshuffle), shapes, dtype="complex128")


@pytest.mark.parametrize("config", FOLD_GRID[:4], ids=str)
def test_fold_complex128(config):
    check_parity(f"unfold / fold {config} complex128",
                 unfold_then_fold(jaxgrad.unfold, jaxgrad.fold, config),
                 unfold_then_fold(F.unfold, F.fold, config),
                 {"x": config[0], "v": _cols_shape(config)}, dtype="complex128")


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("shape", [(), (2, 3, 4), (0, 3)], ids=str)
def test_l1_loss_complex(shape, dtype):
    # a real loss |x - t| of complex arguments, every reduction, second order
    def all_reductions(fn):
        def run(x, t):
            outs = [fn(x, t, reduction=r).reshape(-1) for r in ("none", "mean", "sum")]
            return (torch.cat if isinstance(x, torch.Tensor) else jnp.concatenate)(outs)
        return run
    check_parity(f"l1_loss {shape}", all_reductions(jaxgrad.l1_loss),
                 all_reductions(F.l1_loss), {"x": shape, "t": shape}, dtype=dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_l1_loss_complex_with_a_real_argument(reduction):
    # torch promotes the real one (OpInfo has both orders); its cotangent is the
    # real part, to second order; then with a weight
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    r = rng.standard_normal((3, 4))
    for a, b in ((z, r), (r, z)):
        testing.check_parity(lambda x, t: jaxgrad.l1_loss(x, t, reduction=reduction),
                             lambda x, t: F.l1_loss(x, t, reduction=reduction),
                             jnp.asarray(a), jnp.asarray(b), second_order=True)
    w = rng.uniform(0.5, 2.0, (3, 4))          # torch 2.13's weight: real, differentiated
    for a, b in ((z, z[::-1]), (z, r), (r, z)):
        testing.check_parity(
            lambda x, t, w: jaxgrad.l1_loss(x, t, reduction=reduction, weight=w),
            lambda x, t, w: F.l1_loss(x, t, reduction=reduction, weight=w),
            jnp.asarray(a), jnp.asarray(b), jnp.asarray(w), second_order=True)
    # mixed precision: complex64 with float64 is complex128 (torch's promotion,
    # OpInfo's complex64 samples); each gradient in its argument's dtype
    for a, b in ((z.astype(np.complex64), r), (r, z.astype(np.complex64))):
        testing.check_parity(lambda x, t: jaxgrad.l1_loss(x, t, reduction=reduction),
                             lambda x, t: F.l1_loss(x, t, reduction=reduction),
                             jnp.asarray(a), jnp.asarray(b), second_order=True,
                             rtol=1e-5)


def test_l1_loss_complex_special_values():
    # |d| = 0 (gradient 0, as torch's sgn), ±inf and NaN parts (NaN), extreme
    # magnitudes; the loss is real, the gradient the conjugate of torch's
    inf, nan = math.inf, math.nan
    d = np.array([0j, complex(-0.0, 0.0), complex(inf, 0), complex(1, -inf),
                  complex(nan, 1), 3 - 4j, complex(-1e-300, 1e-300), complex(1e200, 1e200)])
    g = np.random.default_rng(0).standard_normal(d.shape)
    y, vjp = jax.vjp(lambda x: jaxgrad.l1_loss(x, jnp.zeros_like(x), reduction="none"), d)
    x = torch.tensor(d, requires_grad=True)
    ref = F.l1_loss(x, torch.zeros_like(x), reduction="none")
    (ref_grad,) = torch.autograd.grad(ref, x, torch.tensor(g))
    assert y.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y), ref.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(vjp(g)[0]), ref_grad.conj().resolve_conj().numpy(),
                               rtol=1e-15, atol=0)


# --------------------------------------------------------------------------
# PyTorch's own OpInfo samples (op_db) in complex128.


def _opinfo_complex_samples(name: str) -> list:
    (op,) = [op for op in op_db if op.name == name and op.variant_test_name == ""]
    return list(op.sample_inputs("cpu", torch.complex128, requires_grad=False))


def _bind(sample):
    """(the sample's tensors as NumPy arrays, a function placing arrays back
    where the sample had tensors: input, positional args, keyword args)."""
    arrays, where = [], []
    for key, value in [("input", sample.input), *enumerate(sample.args),
                       *sample.kwargs.items()]:
        if isinstance(value, torch.Tensor):
            arrays.append(value.detach().numpy().copy())
            where.append(key)

    def place(leaves):
        filled = dict(zip(where, leaves))
        args = [filled.get(i, a) for i, a in enumerate(sample.args)]
        kwargs = {k: filled.get(k, v) for k, v in sample.kwargs.items()}
        return filled.get("input", sample.input), args, kwargs
    return arrays, place


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d", "linear", "l1_loss"])
def test_opinfo_samples_complex128(name):
    """Every complex128 OpInfo sample: output and VJP (the conjugate
    convention of ``check_parity``; the grids above check second order)."""
    ours, theirs = getattr(jaxgrad, name), getattr(F, name)
    cases = _opinfo_complex_samples(f"nn.functional.{name}")
    assert cases
    for i, sample in enumerate(cases):
        arrays, place = _bind(sample)

        def run(fn, *leaves):
            x, args, kwargs = place(leaves)
            return fn(x, *args, **kwargs)

        try:
            testing.check_parity(functools.partial(run, ours), functools.partial(run, theirs),
                                 *arrays)
        except AssertionError as err:
            raise AssertionError(f"{name} OpInfo sample {i}:{err}") from None


def _silu_formula(z):
    # torch's F.silu computes complex values but refuses to differentiate
    # them; z·σ(z) is the same map, which torch's autograd differentiates
    return z * torch.sigmoid(z)


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "silu"])
def test_holomorphic_activations_complex(name, dtype):
    """torch's tanh, sigmoid and silu take complex tensors (holomorphic: JAX's
    VJP is ḡ·f′(z)); the other activations refuse complex, as torch's relu,
    gelu, elu and hardtanh do."""
    ours = getattr(jaxgrad, name)
    theirs = _silu_formula if name == "silu" else getattr(torch, name)
    check_parity(f"{name} {dtype}", ours, theirs, {"z": (3, 7)}, dtype=dtype)


def test_opinfo_silu_complex128():
    """OpInfo's "complex" variant of silu: F.silu's values, and the VJP of
    z·σ(z) (torch's conjugated)."""
    (op,) = [op for op in op_db if op.name == "nn.functional.silu"
             and op.variant_test_name == "complex"]
    cases = list(op.sample_inputs("cpu", torch.complex128, requires_grad=False))
    assert cases
    for sample in cases:
        z = sample.input.numpy()
        np.testing.assert_allclose(np.asarray(jaxgrad.silu(z)), F.silu(sample.input).numpy(),
                                   rtol=1e-12, atol=1e-300)
        testing.check_parity(jaxgrad.silu, _silu_formula, z)
