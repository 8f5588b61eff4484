"""``conv_transpose*(..., output_size=...)`` vs torch's ``nn.ConvTranspose{1,2,3}d.forward``.

torch's module picks output_padding from a requested output size; jaxgrad's
keyword does the same. Compared: every admissible size of a configuration
(spatial sizes and full shapes, batched and unbatched) to second order in
float64 against the module's forward, PyTorch's OpInfo samples of
``nn.functional.conv_transpose{1,2,3}d`` restated with the output size (output
and first order), and the error wording.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.testing._internal.common_methods_invocations import op_db

import jaxgrad
from jaxgrad import testing
from jaxgrad._checking._tolerance import tolerance

from ._parity import check_parity

MODULES = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
           3: torch.nn.ConvTranspose3d}


def every_size(n: int, input_shape, kernel, stride, padding, dilation, groups, forms):
    """jaxgrad's and the torch module's outputs for each requested size in ``forms``."""
    module = MODULES[n](input_shape[-n - 1], 2 * groups, kernel, stride, padding,
                        groups=groups, dilation=dilation).double()

    def ours(x, w, b):
        return tuple(jaxgrad.conv_transpose(x, w, b, stride, padding, groups=groups,
                                            dilation=dilation, output_size=size)
                     for size in forms)

    def theirs(x, w, b):
        return tuple(functional_call(module, {"weight": w, "bias": b}, (x,),
                                     {"output_size": list(size)}) for size in forms)

    return ours, theirs, {"x": input_shape, "w": tuple(module.weight.shape),
                          "b": (2 * groups,)}


@pytest.mark.parametrize("n, input_shape, kernel, stride, padding, dilation, groups", [
    (1, (2, 2, 5), 3, 3, 1, 2, 1),
    (2, (1, 4, 3, 4), (2, 3), (2, 3), (1, 0), (1, 2), 2),
    (2, (2, 3, 4), 3, 2, 1, 1, 1),                       # unbatched
    (3, (1, 2, 2, 3, 2), 2, (2, 1, 3), 0, 1, 1),
])
def test_every_admissible_size(n, input_shape, kernel, stride, padding, dilation, groups):
    def per_dim(v):
        return (v,) * n if isinstance(v, int) else v
    spatial = input_shape[-n:]
    smallest = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, k, s, p, d in zip(
        spatial, per_dim(kernel), per_dim(stride), per_dim(padding), per_dim(dilation))]
    # each extra row per dim up to stride - 1, as spatial sizes; the largest
    # also as a full shape (whose leading entries are ignored, as in torch)
    forms = [tuple(o + min(extra, s - 1) for o, s in zip(smallest, per_dim(stride)))
             for extra in range(max(per_dim(stride)))]
    forms.append((7,) * (len(input_shape) - n) + forms[-1])
    ours, theirs, shapes = every_size(n, input_shape, kernel, stride, padding, dilation,
                                      groups, forms)
    check_parity(f"conv_transpose{n}d output_size {forms}", ours, theirs, shapes)


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples, restated with output_size.


def _samples(n: int) -> list:
    (op,) = [op for op in op_db if op.name == f"nn.functional.conv_transpose{n}d"]
    return list(op.sample_inputs("cpu", torch.float64, requires_grad=True))


def _admissible(sample, n: int) -> bool:
    """output_padding below the stride in every dim: a size torch's module accepts."""
    def per_dim(name, default):
        value = sample.kwargs.get(name, default)
        return (value,) * n if isinstance(value, int) else tuple(value)
    return all(a < s for a, s in zip(per_dim("output_padding", 0), per_dim("stride", 1)))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_op_db_samples_with_output_size(n):
    samples = _samples(n)
    fits = [s for s in samples if _admissible(s, n)]
    assert len(fits) >= len(samples) - 2
    sizes = [tuple(getattr(F, f"conv_transpose{n}d")(s.input, *s.args, **s.kwargs).shape)
             for s in fits]

    def call(s, size):
        kwargs = {k: v for k, v in s.kwargs.items() if k != "output_padding"}
        return s.args, kwargs, size

    calls = [call(s, size) for s, size in zip(fits, sizes)]

    def ours(*arrays):
        return tuple(jaxgrad.conv_transpose(x, w, b, **kwargs, output_size=size)
                     for (x, w, b), (_, kwargs, size) in zip(_triples(arrays, fits), calls))

    def theirs(*arrays):
        out = []
        for (x, w, b), s in zip(_triples(arrays, fits), fits):
            out.append(getattr(F, f"conv_transpose{n}d")(x, w, b, **s.kwargs))
        return tuple(out)

    arrays = [jnp.asarray(a.detach().numpy()) for s in fits
              for a in (s.input, s.args[0], s.args[1]) if a is not None]
    # First order: output_size only picks output_padding, and the second order
    # with output_size is compared above (test_every_admissible_size); the
    # transposed convolution's own second order has its own tests.
    testing.check_parity(ours, theirs, *arrays, rtol=tolerance("float64"),
                         second_order=False)
    # The others ask for output_padding >= stride, which no output_size can
    # express: the size they produce is refused, with the valid range.
    for s in samples:
        if not _admissible(s, n):
            size = tuple(getattr(F, f"conv_transpose{n}d")(s.input, *s.args,
                                                           **s.kwargs).shape)
            kwargs = {k: v for k, v in s.kwargs.items() if k != "output_padding"}
            with pytest.raises(ValueError, match=r"`output_size` .* is out of range"):
                jaxgrad.conv_transpose(jnp.asarray(s.input.detach().numpy()),
                                       jnp.asarray(s.args[0].detach().numpy()),
                                       output_size=size, **kwargs)


def _triples(arrays, samples):
    """(input, weight, bias or None) per sample from the flat argument list."""
    it = iter(arrays)
    return [(next(it), next(it), next(it) if s.args[1] is not None else None)
            for s in samples]


# --------------------------------------------------------------------------
# Errors.


X, W = jnp.ones((1, 2, 4, 4)), jnp.ones((2, 3, 3, 3))


@pytest.mark.parametrize("call, error, message", [
    (lambda: jaxgrad.conv_transpose2d(X, W, stride=2, output_size=(12, 9)), ValueError,
     r"conv_transpose2d: `output_size` \(12, 9\) is out of range: the valid sizes run "
     r"from \(9, 9\) to \(10, 10\) \(input \(4, 4\), kernel \(3, 3\), stride \(2, 2\), "
     r"padding \(0, 0\), dilation \(1, 1\)\)"),
    (lambda: jaxgrad.conv_transpose2d(X, W, stride=2, output_size=(8, 9)), ValueError,
     r"`output_size` \(8, 9\) is out of range"),
    (lambda: jaxgrad.conv_transpose2d(X, W, output_size=(6, 6, 6)), ValueError,
     r"conv_transpose2d: `output_size` must have 2 entries \(the spatial sizes\) or 4 "
     r"\(the full shape\) for a 4-D `input`, got \(6, 6, 6\)"),
    (lambda: jaxgrad.conv_transpose2d(X[0], W, output_size=(1, 3, 6, 6)), ValueError,
     r"must have 2 entries \(the spatial sizes\) or 3 \(the full shape\) for a 3-D `input`"),
    (lambda: jaxgrad.conv_transpose2d(X, W, output_size=6), TypeError,
     r"conv_transpose2d: `output_size` must be a sequence of ints .* got int 6"),
    (lambda: jaxgrad.conv_transpose2d(X, W, output_size=(6.0, 6)), TypeError,
     r"conv_transpose2d: `output_size` must be an int, got float 6.0"),
    (lambda: jaxgrad.conv_transpose2d(X, W, stride=2, output_padding=1,
                                      output_size=(10, 10)), ValueError,
     r"conv_transpose2d: give `output_size` or a nonzero `output_padding`, not both "
     r"\(torch's nn.ConvTranspose ignores output_padding when output_size is given\), "
     r"got output_padding=\(1, 1\) and output_size=\(10, 10\)"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_output_size_picks_the_extra_rows_with_zero_output_padding():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 2, 4, 4)))
    w = jnp.asarray(np.random.default_rng(1).standard_normal((2, 3, 3, 3)))
    for extra in range(2):
        np.testing.assert_array_equal(
            jaxgrad.conv_transpose2d(x, w, stride=2, output_size=(9 + extra, 9)),
            jaxgrad.conv_transpose2d(x, w, stride=2, output_padding=(extra, 0)))
    # output_padding=0 is not "given": it may accompany output_size, as in torch
    assert jaxgrad.conv_transpose2d(x, w, stride=2, output_padding=0,
                                    output_size=(10, 10)).shape == (1, 3, 10, 10)


def test_traced_output_size_is_refused():
    with pytest.raises(TypeError, match=r"`output_size` must be a sequence of ints known "
                                        r"at trace time"):
        jax.jit(lambda x, s: jaxgrad.conv_transpose2d(x, W, output_size=s))(
            X, jnp.array([6, 6]))
