"""jaxgrad's dropout family vs PyTorch, given the same mask.

Torch's random numbers cannot be reproduced, so each comparison takes the
mask torch drew: torch runs its own op under a fixed seed, the mask is read
off its gradient (∂y/∂x = keep·scale), reduced to the shape jaxgrad draws for
that op (N, C, 1, ... for the channel variants: if torch's mask were not
constant there, the outputs would differ), and jaxgrad's op is run with it.
Compared: output, VJP and second order (float64, torch autograd through its
real op), the same in float32 / bfloat16 against torch's formula on the same
mask, and PyTorch's OpInfo samples. The masks' statistics are tested in
tests/test_dropout.py.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing._internal.common_methods_invocations import op_db

import jaxgrad
from jaxgrad import _dropout, testing

from ._opinfo import check_cases, samples
from ._parity import check_parity

# Both frameworks warn for dropout2d / dropout3d's unusual ranks, on purpose here.
pytestmark = pytest.mark.filterwarnings("ignore:dropout[23]d:UserWarning")

# name -> (jaxgrad function, torch function, alpha, channels-per-sample: batched?)
OPS = {
    "dropout": (jaxgrad.dropout, F.dropout, False, None),
    "alpha_dropout": (jaxgrad.alpha_dropout, F.alpha_dropout, True, None),
    "dropout1d": (jaxgrad.dropout1d, F.dropout1d, False, lambda ndim: ndim == 3),
    "dropout2d": (jaxgrad.dropout2d, F.dropout2d, False, lambda ndim: True),
    "dropout3d": (jaxgrad.dropout3d, F.dropout3d, False, lambda ndim: ndim == 5),
    "feature_alpha_dropout": (jaxgrad.feature_alpha_dropout, F.feature_alpha_dropout,
                              True, lambda ndim: True),
}


def torch_keep(torch_fn, x: np.ndarray) -> np.ndarray:
    """The keep mask (1 kept, 0 dropped) torch_fn draws for x, read off its gradient."""
    t = torch.tensor(x, requires_grad=True)
    (grad,) = torch.autograd.grad(torch_fn(t).sum(), t)
    return (grad.numpy() != 0).astype(np.float64)


def reduced(name: str, keep: np.ndarray) -> np.ndarray:
    """keep at the mask shape jaxgrad draws for ``name`` (one entry per channel).

    Both ways round: jaxgrad's coarser axes are where torch's mask is constant
    (else the outputs differ, downstream), and along every axis where jaxgrad
    draws separate entries torch's mask varies somewhere.
    """
    batched = OPS[name][3]
    shape = (keep.shape if batched is None else
             _dropout._channel_mask_shape(name, keep.shape, batched(keep.ndim)))
    for axis, (m, s) in enumerate(zip(shape, keep.shape)):
        if m == s > 1:
            assert np.ptp(keep, axis=axis).any(), (name, keep.shape, axis)
    return keep[tuple(slice(None) if m == s else slice(0, 1)
                      for m, s in zip(shape, keep.shape))]


def case(name: str, x: np.ndarray, kwargs: dict, torch_fn=None, label: str = "") -> tuple:
    """(label, jaxgrad given torch's mask, torch's op, x).

    ``torch_fn(t)`` must draw the same mask on every call: by default torch's op
    with ``kwargs``, reseeded each time.
    """
    ours, theirs, alpha, _ = OPS[name]
    p = kwargs.get("p", 0.5)
    training = kwargs.get("training", inspect.signature(ours).parameters["training"].default)

    if torch_fn is None:
        def torch_fn(t):
            torch.manual_seed(0)
            return theirs(t, **kwargs)

    if not training or p in (0, 1) or x.size == 0:   # nothing drawn: the public op
        jax_fn = lambda x: ours(x, **kwargs)  # noqa: E731
    else:
        keep = reduced(name, torch_keep(torch_fn, x))
        jax_fn = lambda x: _dropout.dropout_given_mask(x, keep, p, alpha)  # noqa: E731
    return (f"{name} {label}{x.shape} {kwargs}", jax_fn, torch_fn, x)


GRID = [
    ("dropout", (3, 4, 5), 0.2), ("dropout", (7,), 0.5), ("dropout", (), 0.5),
    ("dropout", (200,), 0.9),
    ("alpha_dropout", (3, 4, 5), 0.3), ("alpha_dropout", (40,), 0.7),
    ("dropout1d", (2, 8, 6), 0.5), ("dropout1d", (8, 6), 0.4),          # unbatched
    ("dropout2d", (2, 8, 3, 3), 0.5), ("dropout2d", (2, 8, 5), 0.5),     # 3-D: (N, C, L)
    ("dropout2d", (8, 6), 0.5),                                          # 2-D: elementwise
    ("dropout3d", (2, 8, 2, 2, 2), 0.5), ("dropout3d", (8, 2, 3, 2), 0.5),  # unbatched
    ("dropout3d", (8, 3, 3), 0.5), ("dropout3d", (8,), 0.5),   # other ranks: dim 0 is C
    ("feature_alpha_dropout", (2, 8, 3, 3), 0.5), ("feature_alpha_dropout", (8, 6), 0.2),
]


def test_given_torch_mask_float64():
    rng = np.random.default_rng(0)
    cases = [case(name, rng.standard_normal(shape) + 0.1, {"p": p, "training": True})
             for name, shape, p in GRID]
    check_cases("dropout given torch's mask", cases)


def test_nothing_drawn_float64():
    # training=False, p = 0 and p = 1 (x·0: a NaN stays NaN), empty inputs.
    x = np.array([[1.5, -2.0, np.nan], [np.inf, 0.0, -0.5]])
    cases = [case(name, x, kwargs) for name in OPS
             for kwargs in ({"p": 0.5, "training": False}, {"p": 0.0, "training": True},
                            {"p": 1.0, "training": True})]
    cases += [case(name, np.zeros((0, 3, 4)), {"p": 0.5, "training": True})
              for name in OPS]
    for label, jax_fn, torch_fn, x_ in cases:
        got = np.asarray(jax_fn(x_))
        want = torch_fn(torch.tensor(x_)).numpy()
        np.testing.assert_array_equal(got, want, err_msg=label)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "complex128", "complex64"])
def test_formulas_given_mask(dtype):
    # Torch's formulas on the same (real) mask: x·k/(1-p) and a·k·x + α·a·(k - 1 + p);
    # second order in float32 and complex128. torch's own dropout refuses
    # complex when it draws a mask, so its formulas are the reference there.
    rng = np.random.default_rng(1)
    keep = (rng.random((2, 4, 5)) > 0.3).astype(np.float64)
    channel_keep = (rng.random((2, 4, 1)) > 0.3).astype(np.float64)
    a = 1 / np.sqrt((_dropout.ALPHA ** 2 * 0.3 + 1) * 0.7)

    def ours(x):
        return (_dropout.dropout_given_mask(x, keep, 0.3),
                _dropout.dropout_given_mask(x, channel_keep, 0.3, alpha=True))

    def theirs(x):
        real = x.real.dtype          # the mask's dtype: x's, or its parts' for complex
        k, c = torch.tensor(keep, dtype=real), torch.tensor(channel_keep, dtype=real)
        return (x * k / 0.7, a * c * x + _dropout.ALPHA * a * (c - 1 + 0.3))

    check_parity(f"dropout {dtype}", ours, theirs, {"x": (2, 4, 5)}, dtype=dtype,
                 double=dtype in ("float32", "complex128"))


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples (masks read off torch's gradient where one is drawn).


@pytest.mark.parametrize("name, variant", [
    ("dropout", ""), ("dropout2d", ""), ("dropout3d", ""), ("alpha_dropout", ""),
    ("feature_alpha_dropout", "with_train"), ("feature_alpha_dropout", "without_train"),
])
def test_opinfo_samples(name, variant):
    op, inputs = samples(f"nn.functional.{name}", variant)
    cases = []
    for i, s in enumerate(inputs):
        assert not s.args, s.args
        kwargs = dict(s.kwargs)
        # op.op reseeds torch on every call (wrapper_set_seed): the same mask each time.
        cases.append(case(name, s.input.detach().numpy(), kwargs,
                          lambda t, k=kwargs: op.op(t, **k), f"#{i} "))
    check_cases(f"op_db {name}{'.' + variant if variant else ''}", cases)


# --------------------------------------------------------------------------
# Complex input. torch takes it where no mask is drawn (its Bernoulli sampler
# refuses complex); jaxgrad also draws masks for it, one real mask for both
# parts.


def test_complex_nothing_drawn_like_torch():
    # training=False, p = 0 and p = 1, as torch computes them for complex
    x = np.array([[1.5 - 1j, -2.0 + 0.5j, np.nan], [np.inf * 1j, 0.0, -0.5 + 2j]])
    for name, (ours, theirs, _, _) in OPS.items():
        for kwargs in ({"p": 0.5, "training": False}, {"p": 0.0, "training": True},
                       {"p": 1.0, "training": True}):
            got = np.asarray(ours(jnp.asarray(x), **kwargs))
            want = theirs(torch.tensor(x), **kwargs).numpy()
            assert got.dtype == want.dtype == np.complex128
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {kwargs}")


def test_opinfo_complex_samples():
    """op_db's complex128 samples (feature_alpha_dropout without training):
    value and VJP, torch's gradient conjugated (JAX's convention)."""
    op = [o for o in op_db if o.name == "nn.functional.feature_alpha_dropout"
          and o.variant_test_name == "without_train"][0]
    inputs = list(op.sample_inputs("cpu", torch.complex128, requires_grad=False))
    assert len(inputs) >= 6
    for s in inputs:
        testing.check_parity(lambda x, k=s.kwargs: jaxgrad.feature_alpha_dropout(x, **k),
                             lambda t, k=s.kwargs: op.op(t, **k),
                             s.input.detach().numpy())


def test_complex_draws_one_mask_for_both_parts():
    """A drawn mask: the real and imaginary parts are dropped together, as the
    real op drops each with the same key; the gradient is the real mask
    (check_vjp, the real map of both parts, to second order)."""
    rng = np.random.default_rng(3)
    z0 = rng.standard_normal((2, 6, 3, 3)) + 1j * rng.standard_normal((2, 6, 3, 3))
    shapes = {"dropout1d": (2, 6, 9), "dropout3d": (2, 6, 3, 3, 1)}
    key = jax.random.key(7)
    for name, (ours, _, alpha, _) in OPS.items():
        x = z0.reshape(shapes.get(name, z0.shape))
        run = functools.partial(ours, p=0.4, training=True, key=key)
        z = np.asarray(run(jnp.asarray(x)))
        shift = np.asarray(run(jnp.zeros(x.shape))) if alpha else 0.0   # b, real
        np.testing.assert_allclose(z.real, np.asarray(run(jnp.asarray(x.real))), rtol=1e-15,
                                   err_msg=name)
        np.testing.assert_allclose(z.imag, np.asarray(run(jnp.asarray(x.imag))) - shift,
                                   rtol=1e-15, atol=1e-15, err_msg=name)
        assert 0 < np.mean(z == shift) < 1, name                 # both kinds of units
        testing.check_vjp(run, jnp.asarray(x), order=2)
