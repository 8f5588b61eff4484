"""pixel_shuffle / pixel_unshuffle vs PyTorch: output, first- and second-order gradients.

float64 (exact: both only move values), float32 to second order, bfloat16 to
first order, leading batch dims of any count, and PyTorch's OpInfo samples.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad

from ._opinfo import check_cases, samples
from ._parity import check_parity

# (input shape, r) of each; leading dims of any count, r = 1. No empty batch:
# torch's pixel_unshuffle returns an empty input unchanged ((0, 1, 4, 4) where
# (0, 4, 2, 2) is due), which also breaks pixel_shuffle's backward there; the
# forward is compared below, the rest in tests/test_pixel_shuffle.py.
SHUFFLE = [((8, 2, 3), 2), ((2, 18, 2, 1), 3), ((2, 3, 4, 1, 2), 2), ((3, 4, 5), 1)]
UNSHUFFLE = [((2, 4, 6), 2), ((2, 2, 6, 3), 3), ((2, 3, 1, 4, 2), 2), ((3, 4, 5), 1)]


def _all(shuffle, unshuffle):
    def run(*xs):
        n = len(SHUFFLE)
        return (tuple(shuffle(x, r) for x, (_, r) in zip(xs[:n], SHUFFLE))
                + tuple(unshuffle(y, r) for y, (_, r) in zip(xs[n:], UNSHUFFLE)))
    return run


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_grid(dtype):
    shapes = {f"x{i}": s for i, (s, _) in enumerate(SHUFFLE)}
    shapes.update({f"y{i}": s for i, (s, _) in enumerate(UNSHUFFLE)})
    check_parity(f"pixel_shuffle {dtype}",
                 _all(jaxgrad.pixel_shuffle, jaxgrad.pixel_unshuffle),
                 _all(F.pixel_shuffle, F.pixel_unshuffle), shapes, dtype=dtype,
                 double=dtype != "bfloat16")


def test_empty_batch_forward():
    x = np.zeros((0, 2, 4, 2, 2))
    assert jaxgrad.pixel_shuffle(x, 2).shape == tuple(F.pixel_shuffle(torch.tensor(x), 2).shape)
    assert jaxgrad.pixel_unshuffle(x, 2).shape == (0, 2, 16, 1, 1)   # torch: (0, 2, 4, 2, 2)


@pytest.mark.parametrize("name, ours", [("pixel_shuffle", jaxgrad.pixel_shuffle),
                                        ("pixel_unshuffle", jaxgrad.pixel_unshuffle)])
def test_opinfo_samples(name, ours):
    op, inputs = samples(f"nn.functional.{name}")
    cases = [(f"#{i} {tuple(s.input.shape)} {s.kwargs}",
              lambda x, k=dict(s.kwargs): ours(x, **k),
              lambda x, k=dict(s.kwargs): op.op(x, **k), s.input.detach().numpy())
             for i, s in enumerate(inputs)]
    assert len(cases) == 5
    check_cases(f"op_db {name}", cases)
