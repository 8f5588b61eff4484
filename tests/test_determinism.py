"""Determinism on CPU: repeated calls give bitwise-identical results.

For one configuration per op family, in float32 (the dtype where a changed
summation order shows first), on inputs large enough for XLA's CPU backend
to split convolutions, reductions and scatter-adds across threads:

  results = (output, VJP w.r.t. every argument for a fixed cotangent,
             gradient of Σ_i ⟨ā_i, u_i⟩ w.r.t. every argument and the cotangent)

must be bit for bit the same (compared as bytes)
  * eagerly (op by op), called twice (output and first order);
  * jitted, compiled twice as separate executables, each called twice.

Eager and jitted results are not compared with each other: XLA may fuse
and reorder differently per program, which is allowed to change the last bit.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad
import jaxgrad.grad as jg


def results(fn, args: tuple, cot, us: tuple, *, double: bool = True) -> tuple:
    """(output, first-order VJPs[, second-order gradients]) of ``fn`` at ``args``."""
    y, vjp = jax.vjp(fn, *args)
    if not double:
        return (y, *vjp(cot))

    def second(*args_and_cot):
        *primals, c = args_and_cot
        grads = jax.vjp(fn, *primals)[1](c)
        return sum(jnp.vdot(g, u) for g, u in zip(grads, us))

    order2 = jax.grad(second, argnums=tuple(range(len(args) + 1)))(*args, cot)
    return (y, *vjp(cot), *order2)


def assert_bitwise_equal(first: tuple, second: tuple, what: str) -> None:
    assert len(first) == len(second)
    for i, (a, b) in enumerate(zip(first, second)):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{what}: result {i}"
        assert a.tobytes() == b.tobytes(), (
            f"{what}: result {i} differs in {np.sum(a != b)} of {a.size} entries, "
            f"max |diff| {np.max(np.abs(a.astype(np.float64) - b)):.3g}")


def _random(shape, seed: int):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


TARGET = np.random.default_rng(7).integers(0, 5, (8, 6, 6))   # classes of (8, 5, 6, 6)


def family(name, fn, *shapes):
    return pytest.param(fn, shapes, id=name)


FAMILIES = [
    family("conv2d groups2 s2 p1", functools.partial(jaxgrad.conv2d, stride=2, padding=1,
                                                     groups=2),
           (4, 8, 24, 24), (16, 4, 3, 3), (16,)),
    family("conv2d reflect same", functools.partial(jaxgrad.conv2d, padding="same",
                                                    padding_mode="reflect"),
           (2, 4, 20, 20), (8, 4, 3, 3)),
    family("conv1d depthwise d2", functools.partial(jaxgrad.conv1d, groups=6, dilation=2,
                                                    padding=2),
           (4, 6, 64), (12, 1, 5)),
    family("conv3d s(1,2,2)", functools.partial(jaxgrad.conv3d, stride=(1, 2, 2),
                                                padding=1),
           (2, 4, 8, 10, 10), (6, 4, 3, 3, 3)),
    family("conv_transpose2d s2 op1", functools.partial(jaxgrad.conv_transpose2d,
                                                        stride=2, padding=1,
                                                        output_padding=1),
           (4, 8, 12, 12), (8, 6, 3, 3), (6,)),
    family("grad.conv2d_weight s2", lambda x, g: jg.conv2d_weight(x, (8, 4, 3, 3), g,
                                                                  stride=2),
           (4, 4, 21, 21), (4, 8, 10, 10)),
    family("max_pool2d k3 s2 p1 ceil", functools.partial(jaxgrad.max_pool2d, kernel_size=3,
                                                         stride=2, padding=1,
                                                         ceil_mode=True),
           (4, 8, 25, 25)),
    family("max_pool1d k4 s1 overlapping", functools.partial(jaxgrad.max_pool1d,
                                                             kernel_size=4, stride=1),
           (4, 8, 200)),
    family("avg_pool2d k3 s1 p1", functools.partial(jaxgrad.avg_pool2d, kernel_size=3,
                                                    stride=1, padding=1,
                                                    count_include_pad=False),
           (4, 8, 25, 25)),
    family("adaptive_max_pool2d 7", functools.partial(jaxgrad.adaptive_max_pool2d,
                                                      output_size=7),
           (4, 8, 25, 23)),
    family("adaptive_avg_pool3d", functools.partial(jaxgrad.adaptive_avg_pool3d,
                                                    output_size=(3, 5, 4)),
           (2, 4, 9, 11, 10)),
    family("linear", jaxgrad.linear, (64, 96), (48, 96), (48,)),
    family("gelu", jaxgrad.gelu, (64, 512)),
    family("softmax", functools.partial(jaxgrad.softmax, dim=1), (64, 512)),
    family("log_softmax", functools.partial(jaxgrad.log_softmax, dim=-1), (64, 512)),
    family("cross_entropy smoothing", lambda x: jaxgrad.cross_entropy(
        x, jnp.asarray(TARGET), label_smoothing=0.1), (8, 5, 6, 6)),
    family("cross_entropy probabilities", lambda x, q: jaxgrad.cross_entropy(
        x, q, reduction="sum"), (16, 300), (16, 300)),
    family("mse_loss", jaxgrad.mse_loss, (64, 512), (64, 512)),
]


def _arguments(fn, shapes) -> tuple:
    """(args, cotangent, second-order directions), float32, fixed seeds."""
    args = tuple(_random(shape, seed) for seed, shape in enumerate(shapes))
    cot = _random(jax.eval_shape(fn, *args).shape, 100)
    return args, cot, tuple(_random(a.shape, 200 + i) for i, a in enumerate(args))


@pytest.mark.parametrize("fn, shapes", FAMILIES)
def test_eager_repeats_bitwise(request, fn, shapes):
    args, cot, us = _arguments(fn, shapes)
    # Op by op, every primitive compiles on its own: second order is left to
    # the jitted test, where it costs one program.
    first = results(fn, args, cot, us, double=False)
    assert_bitwise_equal(first, results(fn, args, cot, us, double=False),
                         f"{request.node.callspec.id} eager")


@pytest.mark.parametrize("fn, shapes", FAMILIES)
def test_jit_compiled_twice_bitwise(request, fn, shapes):
    args, cot, us = _arguments(fn, shapes)
    # Two distinct Python functions: two traces, two separate compilations.
    compiled = [jax.jit(lambda a, c, u: results(fn, a, c, u)).lower(args, cot, us).compile(),
                jax.jit(lambda a, c, u: results(fn, a, c, u)).lower(args, cot, us).compile()]
    runs = [executable(args, cot, us) for executable in compiled for _ in range(2)]
    for i, run in enumerate(runs[1:], start=1):
        assert_bitwise_equal(runs[0], run, f"{request.node.callspec.id} jit run {i}")
    # the dtype is kept: float32 in, float32 out, for every result
    assert all(np.asarray(r).dtype == np.float32 for r in runs[0])
