"""jaxgrad's ``unfold`` / ``fold`` vs PyTorch: forward, first- and second-order gradients.

A grid of kernel sizes, dilations, paddings and strides (leftover rows,
tiled windows, taps wider than the stride, empty batches, unbatched input)
runs through ``check_parity`` in float64 to second order, both ops in one
program per configuration; float32 and bfloat16; PyTorch's OpInfo samples of
``nn.functional.unfold`` (there is none for fold: torch's unfold gradient is
its fold, compared with every sample's VJP).
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

from ._parity import check_parity

# (input shape, kernel_size, dilation, padding, stride)
GRID = [
    ((2, 3, 7, 6), 3, 1, 1, 2),
    ((1, 2, 9, 8), (2, 3), (2, 1), (0, 2), (3, 2)),     # leftover rows and columns
    ((2, 1, 6, 6), 2, 1, 0, 2),                          # tiled windows
    ((1, 2, 5, 7), (3, 1), (1, 3), 1, (1, 2)),           # taps wider than the stride
    ((0, 2, 5, 5), 2, 1, 1, 1),                          # empty batch
    ((3, 5, 4), 2, 1, 0, 1),                             # unbatched
]


def unfold_then_fold(unfold, fold, config):
    """(unfold(x), fold(v)) for the configuration: both ops, one program."""
    shape, k, d, p, s = config

    def run(x, v):
        return unfold(x, k, d, p, s), fold(v, shape[-2:], k, d, p, s)
    return run


def _cols_shape(config):
    shape, k, d, p, s = config
    return tuple(F.unfold(torch.zeros(shape), k, d, p, s).shape)


@pytest.mark.parametrize("config", GRID, ids=str)
def test_grid_float64_second_order(config):
    check_parity(f"unfold / fold {config}",
                 unfold_then_fold(jaxgrad.unfold, jaxgrad.fold, config),
                 unfold_then_fold(F.unfold, F.fold, config),
                 {"x": config[0], "v": _cols_shape(config)})


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_reduced_precision(dtype):
    config = GRID[1]
    check_parity(f"unfold / fold {config}",
                 unfold_then_fold(jaxgrad.unfold, jaxgrad.fold, config),
                 unfold_then_fold(F.unfold, F.fold, config),
                 {"x": config[0], "v": _cols_shape(config)}, dtype=dtype,
                 double=dtype == "float32")


@pytest.mark.parametrize("name", ["unfold", "fold"])
def test_signature_matches_torch(name):
    ours = inspect.signature(getattr(jaxgrad, name)).parameters
    theirs = inspect.signature(getattr(F, name)).parameters
    assert [(p.name, p.default) for p in ours.values()] == [
        (p.name, p.default) for p in theirs.values()]


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples.


def op_samples() -> list:
    (op,) = [op for op in op_db if op.name == "nn.functional.unfold"]
    return list(op.sample_inputs("cpu", torch.float64, requires_grad=True))


def test_op_db_samples():
    # Every non-empty sample in one program: output, VJP (torch's fold) and
    # second order against torch.
    samples = [s for s in op_samples() if s.input.numel()]
    assert len(samples) > 50

    def apply(unfold):
        return lambda *xs: tuple(unfold(x, *s.args, **s.kwargs)
                                 for x, s in zip(xs, samples))

    inputs = [jnp.asarray(s.input.detach().numpy()) for s in samples]
    testing.check_parity(apply(jaxgrad.unfold), apply(F.unfold), *inputs,
                         rtol=tolerance("float64"), second_order=True,
                         arg_names=[f"sample{i}" for i in range(len(samples))])


def test_op_db_empty_batch_samples():
    # Samples with an empty batch hold no values: their outputs and gradients
    # (traced, not run) must have torch's shapes.
    samples = [s for s in op_samples() if not s.input.numel()]
    assert len(samples) > 50
    for s in samples:
        x = jax.ShapeDtypeStruct(tuple(s.input.shape), jnp.float64)
        fn = lambda x, s=s: jaxgrad.unfold(x, *s.args, **s.kwargs)  # noqa: E731

        def second(x, cot, fn=fn):
            grad = jax.vjp(fn, x)[1](cot)[0]
            return grad, jax.grad(lambda x, c: jnp.sum(jax.vjp(fn, x)[1](c)[0]),
                                  argnums=(0, 1))(x, cot)

        want = F.unfold(s.input, *s.args, **s.kwargs)
        got = jax.eval_shape(fn, x)
        assert got.shape == tuple(want.shape), (s.args, got.shape, want.shape)
        cot = jax.ShapeDtypeStruct(got.shape, jnp.float64)
        grad, (grad2_x, grad2_cot) = jax.eval_shape(second, x, cot)
        assert grad.shape == grad2_x.shape == x.shape and grad2_cot.shape == got.shape


def test_fold_inverts_unfold_on_tiled_windows():
    # stride = kernel, no padding: every pixel in exactly one block.
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 8))
    cols = jaxgrad.unfold(jnp.asarray(x), (3, 2), stride=(3, 2))
    np.testing.assert_array_equal(jaxgrad.fold(cols, (6, 8), (3, 2), stride=(3, 2)), x)
    np.testing.assert_array_equal(cols, F.unfold(torch.tensor(x), (3, 2),
                                                 stride=(3, 2)).numpy())
