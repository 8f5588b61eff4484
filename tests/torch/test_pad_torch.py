"""jaxgrad.pad vs torch.nn.functional.pad: output, first- and second-order gradients.

Every mode on 1-, 2- and 3-D padding, batched and unbatched, with negative
pads (crops), odd sizes and an empty batch, in float64 (tolerance 1e-10; the
map only copies, so the agreement is exact), float32 (to second order) and
bfloat16 (first order, reference in float64). Then PyTorch's own OpInfo
samples for ``nn.functional.pad`` (constant, reflect, replicate, circular,
replicate_negative), and NaN / inf inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch.nn.functional as F

import jaxgrad

from ._opinfo import check_cases, samples
from ._parity import check_parity, check_values

# mode -> [(input shape, [pad, ...], value)]: one check_parity (one program) per mode.
GRID = {
    "constant": [((2, 3, 5), [(1, 2), (-1, 2, 0, 1), (2, -3, 1, 1, 1, 0)], 1.5),
                 ((5,), [(2, -1), (-5, 0)], None),
                 ((3, 7), [(0, 0, -3, 2), (1, 1, 1, 1)], -0.5),
                 ((0, 3, 4), [(1, 1, 1, 1)], 2.0)],
    "reflect": [((2, 7), [(3, 2), (-2, 4)], None),               # unbatched (C, W)
                ((2, 3, 7), [(1, 1), (6, -3)], None),            # batched (N, C, W)
                ((3, 5, 7), [(2, 1, -1, 3)], None),              # unbatched (C, H, W)
                ((2, 3, 4, 5), [(1, 2, 3, 1, 1, 0)], None),      # unbatched (C, D, H, W)
                ((1, 2, 3, 4, 5), [(2, -1, 1, 1, -1, 2)], None),
                ((0, 3, 5), [(1, 2)], None)],                    # empty batch
    "replicate": [((2, 7), [(6, 9), (-4, 2)], None),
                  ((3, 5, 7), [(2, 1, -1, 3)], None),
                  ((2, 3, 5, 7), [(4, -1, 2, 5)], None),
                  ((1, 2, 3, 4, 5), [(-4, 5, 0, -2, 2, 1)], None),
                  ((0, 2, 3, 5), [(1, 2, 1, 1)], None)],
    "circular": [((2, 7), [(7, 7), (-2, 4)], None),
                 ((2, 3, 7), [(1, 1), (3, -3)], None),
                 ((3, 5, 7), [(2, 1, -1, 3)], None),
                 ((2, 3, 4, 5), [(1, 2, 3, 1, 1, 0)], None),
                 ((1, 2, 3, 4, 5), [(-2, 2, 0, -1, 3, 0)], None),
                 ((0, 3, 5), [(1, 2)], None)],
}


def _grid_fns(mode):
    rows = GRID[mode]

    def make(fn):
        def run(*xs):
            return tuple(fn(x, p, mode, value) for x, (_, pads, value) in zip(xs, rows)
                         for p in pads)
        return run

    shapes = {f"x{i}": shape for i, (shape, _, _) in enumerate(rows)}
    return make(jaxgrad.pad), make(F.pad), shapes


@pytest.mark.parametrize("mode", list(GRID))
def test_grid_float64(mode):
    ours, theirs, shapes = _grid_fns(mode)
    check_parity(f"pad {mode}", ours, theirs, shapes)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_reduced_precision(dtype):
    def make(fn):
        def run(x, y):
            return (fn(x, (2, -1, 1, 1), value=0.3), fn(x, (3, 3, 1, 0), "reflect"),
                    fn(y, (2, 5), "replicate"), fn(x, (-1, 3, 2, 1), "circular"))
        return run

    check_parity(f"pad {dtype}", make(jaxgrad.pad), make(F.pad),
                 {"x": (2, 3, 4, 5), "y": (3, 6)}, dtype=dtype,
                 double=dtype == "float32")


def test_special_values():
    # NaN, ±inf and signed zeros are copied as they are; their gradients too.
    x = np.array([[[math.nan, 1.0, -math.inf, 0.0, -0.0, math.inf]]])
    for mode, p, value in [("reflect", (2, 3), None), ("replicate", (4, 1), None),
                           ("circular", (-1, 2), None), ("constant", (1, 1), math.nan)]:
        check_values(f"pad special {mode}", lambda x: jaxgrad.pad(x, p, mode, value),
                     lambda x: F.pad(x, p, mode, value), {"x": x})


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples.


@pytest.mark.parametrize("variant", ["constant", "reflect", "replicate", "circular",
                                     "replicate_negative"])
def test_opinfo_samples(variant):
    op, inputs = samples("nn.functional.pad", variant)
    cases = []
    for i, s in enumerate(inputs):
        args, kwargs = tuple(s.args), dict(s.kwargs)
        cases.append((f"#{i} {tuple(s.input.shape)} {args} {kwargs}",
                      lambda x, a=args, k=kwargs: jaxgrad.pad(x, *a, **k),
                      lambda x, a=args, k=kwargs: op.op(x, *a, **k),
                      s.input.detach().numpy()))
    assert len(cases) >= 6
    check_cases(f"op_db pad.{variant}", cases)
