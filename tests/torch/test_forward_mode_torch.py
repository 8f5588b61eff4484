"""jax.jvp through jaxgrad against torch's forward-mode AD (``torch.func.jvp``).

Every ``jaxgrad check`` case with a torch reference (but the gradient tools,
identities whose torch references build the backward's scaling into the
forward formula; tests/test_forward_mode.py checks their JVP is ẋ): the
tangent of the output, float64, for a random tangent in every input; and for a few
compositions (convolutions, activations, pooling, softmax, normalisation, a
loss) also the second order, the JVP of the JVP.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad
from jaxgrad._checking import _check, _families

from ..test_forward_mode import GRADIENT_TOOLS

jax.config.update("jax_enable_x64", True)


def _torch_cases():
    return [case for name, family in _families.FAMILIES.items() if family.available()
            for case in family.build()
            if case.torch is not None and case.name.split(" ")[0] not in GRADIENT_TOOLS]


def _draw(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    xs, consts = _check._draw(case, rng, "float64"), _check._constants(case, rng, "float64")
    tangents = {k: rng.standard_normal(v.shape) for k, v in xs.items()}
    return xs, consts, tangents


def _torch_consts(consts):
    return {k: torch.tensor(v, dtype=torch.float64 if np.issubdtype(v.dtype, np.floating)
                            else torch.int64) for k, v in consts.items()}


@pytest.mark.parametrize("case", _torch_cases(), ids=lambda case: case.name)
def test_check_case_jvp_against_torch_forward_ad(case):
    xs, consts, tangents = _draw(case)
    keys = list(xs)
    jc = _check._as(consts, jnp.float64)
    y, y_dot = jax.jvp(lambda *a: case.ours(**dict(zip(keys, a)), **jc),
                       tuple(jnp.asarray(xs[k]) for k in keys),
                       tuple(jnp.asarray(tangents[k]) for k in keys))
    tc = _torch_consts(consts)
    ty, ty_dot = torch.func.jvp(lambda *a: case.torch(**dict(zip(keys, a)), **tc),
                                tuple(torch.tensor(xs[k]) for k in keys),
                                tuple(torch.tensor(tangents[k]) for k in keys))
    np.testing.assert_allclose(y, ty.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y_dot, ty_dot.numpy(), rtol=1e-10, atol=1e-10)


TARGET = np.arange(15).reshape(3, 5) % 4

SECOND_ORDER = {
    "conv2d s2 groups dilation": (
        lambda x, w: jaxgrad.conv2d(x, w, stride=2, padding=2, dilation=2, groups=2),
        lambda x, w: F.conv2d(x, w, stride=2, padding=2, dilation=2, groups=2),
        [(2, 4, 9, 8), (6, 2, 3, 3)]),
    "conv_transpose2d s2 op1": (
        lambda x, w: jaxgrad.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
        [(2, 3, 4, 5), (3, 2, 3, 3)]),
    "conv3d then gelu": (
        lambda x, w: jaxgrad.gelu(jaxgrad.conv3d(x, w, padding=1)),
        lambda x, w: F.gelu(F.conv3d(x, w, padding=1)),
        [(1, 2, 4, 4, 3), (3, 2, 3, 3, 3)]),
    "linear then silu then max_pool1d": (
        lambda x, w: jaxgrad.max_pool1d(jaxgrad.silu(jaxgrad.linear(x, w)), 2),
        lambda x, w: F.max_pool1d(F.silu(F.linear(x, w)), 2),
        [(2, 3, 5), (6, 5)]),
    "group_norm then log_softmax then nll": (
        lambda x, w: jaxgrad.nll_loss(jaxgrad.log_softmax(
            jaxgrad.group_norm(x, 2, w, None), dim=1), jnp.asarray(TARGET)),
        lambda x, w: F.nll_loss(F.log_softmax(F.group_norm(x, 2, w, None), dim=1),
                                torch.tensor(TARGET)),
        [(3, 4, 5), (4,)]),
    "group_norm then softmax then mse": (
        lambda x, w: jaxgrad.mse_loss(jaxgrad.softmax(jaxgrad.group_norm(x, 3, w), dim=1),
                                      jnp.full((2, 3, 4), 0.25)),
        lambda x, w: F.mse_loss(F.softmax(F.group_norm(x, 3, w), dim=1),
                                torch.full((2, 3, 4), 0.25, dtype=torch.float64)),
        [(2, 3, 4), (3,)]),
}
# Not here: batch_norm, instance_norm and layer_norm. torch 2.13's JVP of
# their JVP disagrees with central differences (e.g. Σ batch_norm(x, w)²,
# training: torch 6.01, central differences and jaxgrad 0.889);
# tests/test_forward_mode.py checks jaxgrad's against central differences.


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_forward_mode_against_torch(name):
    ours, theirs, shapes = SECOND_ORDER[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    args, t1, t2 = ([rng.standard_normal(s) for s in shapes] for _ in range(3))

    def jj(jvp, f, args, t1, t2):   # d/dε₂ [d/dε₁ f(a + ε₁ t1 + ε₂ t2)]
        return jvp(lambda *a: jvp(f, tuple(a), tuple(t1))[1], tuple(args), tuple(t2))[1]

    got = jj(jax.jvp, ours, [jnp.asarray(a) for a in args], [jnp.asarray(t) for t in t1],
             [jnp.asarray(t) for t in t2])
    want = jj(torch.func.jvp, theirs, [torch.tensor(a) for a in args],
              [torch.tensor(t) for t in t1], [torch.tensor(t) for t in t2])
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-10)


class _TorchScaledProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.save_for_forward(x, y)
        ctx.k = k
        return x * y * k, torch.sin(x)

    @staticmethod
    def backward(ctx, g, h):
        x, y = ctx.saved_tensors
        return g * y * ctx.k + h * torch.cos(x), g * x * ctx.k, None

    @staticmethod
    def jvp(ctx, x_t, y_t, k_t):
        x, y = ctx.saved_tensors
        return ctx.k * (y * x_t + x * y_t), torch.cos(x) * x_t


class _ScaledProduct(jaxgrad.Function):
    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.save_for_forward(x, y)
        ctx.k = k
        return x * y * k, jnp.sin(x)

    @staticmethod
    def backward(ctx, g, h):
        x, y = ctx.saved_tensors
        return g * y * ctx.k + h * jnp.cos(x), g * x * ctx.k, None

    @staticmethod
    def jvp(ctx, x_t, y_t, k_t):
        x, y = ctx.saved_tensors
        return ctx.k * (y * x_t + x * y_t), jnp.cos(x) * x_t


def test_function_jvp_against_torch_forward_ad():
    """torch's autograd.Function forward AD: jvp after forward on the same ctx,
    save_for_forward's tensors as saved_tensors, zeros for an input without a
    tangent (y here)."""
    import torch.autograd.forward_ad as fwad
    rng = np.random.default_rng(11)
    x, y, t = (rng.standard_normal(5) for _ in range(3))
    ours = jax.jvp(lambda x: _ScaledProduct.apply(x, jnp.asarray(y), 2.5), (jnp.asarray(x),),
                   (jnp.asarray(t),))[1]
    with fwad.dual_level():
        outs = _TorchScaledProduct.apply(fwad.make_dual(torch.tensor(x), torch.tensor(t)),
                                         torch.tensor(y), 2.5)
        theirs = [fwad.unpack_dual(o).tangent.numpy() for o in outs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-14)
