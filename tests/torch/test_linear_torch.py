"""jaxgrad.linear vs PyTorch: forward, first- and second-order gradients.

``check_parity`` compares, in float64 (and float32 / bfloat16 for dtype
preservation), the output, the VJP w.r.t. input, weight and bias, and the
gradient of L2 = ⟨x̄, u⟩ + ⟨w̄, v⟩ + ⟨b̄, t⟩ w.r.t. all three and the cotangent.
"""

from __future__ import annotations

import pytest
import torch.nn.functional as F

import jaxgrad

from ._parity import check_parity

# (input shape, weight shape, bias): 1-D input, a batch, several leading dims,
# a size-1 leading dim, out_features = 1, odd sizes, an empty batch.
LINEAR_CASES = [
    pytest.param((3,), (4, 3), True, id="1-D input"),
    pytest.param((5,), (2, 5), False, id="1-D input no bias"),
    pytest.param((6, 3), (5, 3), True, id="batch"),
    pytest.param((2, 3, 1, 7), (5, 7), True, id="three leading dims"),
    pytest.param((4, 1, 3), (1, 3), False, id="out_features 1 no bias"),
    pytest.param((0, 3), (2, 3), True, id="empty batch"),
]


@pytest.mark.parametrize("x_shape, w_shape, bias", LINEAR_CASES)
def test_linear(x_shape, w_shape, bias):
    shapes = {"x": x_shape, "w": w_shape}
    if bias:
        shapes["b"] = (w_shape[0],)
    check_parity(f"linear x{x_shape} w{w_shape} bias={bias}", jaxgrad.linear, F.linear,
                 shapes)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_linear_reduced_precision(dtype):
    check_parity(f"linear {dtype}", jaxgrad.linear, F.linear,
                 {"x": (3, 2, 8), "w": (5, 8), "b": (5,)}, dtype=dtype,
                 double=dtype == "float32")
