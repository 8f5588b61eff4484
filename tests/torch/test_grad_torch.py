"""jaxgrad.grad.* vs torch: the explicit gradient functions and their derivatives.

``conv{1,2,3}d_input`` / ``_weight`` are compared with ``torch.nn.grad``'s
functions of the same names (which take padding as int / tuple, batched
input); per-side pairs, 'same' and unbatched shapes, which torch.nn.grad does
not take, and the ``conv_transpose*`` gradients, which torch has no function
for, are compared with torch autograd through ``F.conv*`` (with
``create_graph=True``, so that the result is differentiable).

Each gradient function is bilinear; :func:`check_parity` compares its value,
its VJP w.r.t. both arguments (the double backward of the convolution) and
the gradient of ⟨VJP, u⟩ (one order higher, except for conv_transpose with
output_padding > 0, which torch cannot differentiate that often), all in
float64.
"""

from __future__ import annotations

import jax
import pytest
import torch
import torch.nn.grad

import jaxgrad
import jaxgrad.grad as jg

from ._parity import (check_parity, torch_conv_ref, torch_conv_transpose_ref,
                      _is_pairs)

CONV = {1: jaxgrad.conv1d, 2: jaxgrad.conv2d, 3: jaxgrad.conv3d}
CONV_TRANSPOSE = {1: jaxgrad.conv_transpose1d, 2: jaxgrad.conv_transpose2d,
                  3: jaxgrad.conv_transpose3d}
JAX_GRAD = {
    (n, kind): getattr(jg, f"conv{n}d_{kind}")
    for n in (1, 2, 3) for kind in ("input", "weight")}
JAX_GRAD.update({
    (n, "transpose_" + kind): getattr(jg, f"conv_transpose{n}d_{kind}")
    for n in (1, 2, 3) for kind in ("input", "weight")})
TORCH_GRAD = {(n, kind): getattr(torch.nn.grad, f"conv{n}d_{kind}")
              for n in (1, 2, 3) for kind in ("input", "weight")}


def case(name, x_shape, w_shape, **kwargs):
    return pytest.param(x_shape, w_shape, kwargs, id=name)


def _leaf_zeros(shape, like):
    return torch.zeros(shape, dtype=like.dtype, requires_grad=True)


def torch_autograd_input(forward, size, w, g):
    """x̄ = (∂forward/∂x)ᵀ g via autograd, differentiable in (w, g)."""
    x = _leaf_zeros(size, w)
    (gx,) = torch.autograd.grad(forward(x, w), x, g, create_graph=True)
    return gx


def torch_autograd_weight(forward, x, size, g):
    """w̄ = (∂forward/∂w)ᵀ g via autograd, differentiable in (x, g)."""
    w = _leaf_zeros(size, x)
    (gw,) = torch.autograd.grad(forward(x, w), w, g, create_graph=True)
    return gw


def _generic_fn(kind, n):
    """jaxgrad.grad's dimension-generic function for ``kind``."""
    return getattr(jg, {"input": "conv_input", "weight": "conv_weight",
                        "transpose_input": "conv_transpose_input",
                        "transpose_weight": "conv_transpose_weight"}[kind])


def run_grad(config, kind, x_shape, w_shape, kwargs, *, dtype="float64",
             double=True, generic=False):
    """Compare jaxgrad.grad.<kind> with torch for the op on x_shape / w_shape."""
    n = len(w_shape) - 2
    transpose = kind.startswith("transpose")
    op = (CONV_TRANSPOSE if transpose else CONV)[n]
    y_shape = jax.eval_shape(
        lambda x, w: op(x, w, **kwargs),
        jax.ShapeDtypeStruct(x_shape, dtype), jax.ShapeDtypeStruct(w_shape, dtype),
    ).shape
    jfn = _generic_fn(kind, n) if generic else JAX_GRAD[(n, kind)]

    def torch_forward(x, w):
        if transpose:
            return torch_conv_transpose_ref(x, w, None, **kwargs)
        return torch_conv_ref(x, w, None, **kwargs)

    padding = kwargs.get("padding", 0)
    use_nn_grad = (not transpose and len(x_shape) == n + 2
                   and not isinstance(padding, str) and not _is_pairs(padding))
    if kind.endswith("input"):
        shapes = {"w": w_shape, "g": y_shape}

        def jax_fn(w, g):
            return jfn(x_shape, w, g, **kwargs)

        def torch_fn(w, g):
            if use_nn_grad:
                return TORCH_GRAD[(n, "input")](x_shape, w, g, **kwargs)
            return torch_autograd_input(torch_forward, x_shape, w, g)
    else:
        shapes = {"x": x_shape, "g": y_shape}

        def jax_fn(x, g):
            return jfn(x, w_shape, g, **kwargs)

        def torch_fn(x, g):
            if use_nn_grad:
                return TORCH_GRAD[(n, "weight")](x, w_shape, g, **kwargs)
            return torch_autograd_weight(torch_forward, x, w_shape, g)

    # torch cannot differentiate conv_transpose three times when output_padding
    # > 0 ("output_padding is not supported for non-transposed convolutions"
    # from convolution_backward's double backward): there, compare the value
    # and its VJP (the double backward of conv_transpose) only.
    output_padding = kwargs.get("output_padding", 0)
    if transpose and any(a > 0 for a in (output_padding if isinstance(
            output_padding, tuple) else (output_padding,))):
        double = False
    label = (f"{config} [grad.{kind}, torch {'nn.grad' if use_nn_grad else 'autograd'}]"
             f": x{x_shape} w{w_shape} {kwargs}")
    return check_parity(label, jax_fn, torch_fn, shapes, dtype=dtype,
                        double=double)


CONV_GRAD_CASES = [
    case("1d k3 p1", (2, 3, 7), (4, 3, 3), padding=1),
    case("1d s2 leftover", (2, 2, 8), (3, 2, 3), stride=2),
    case("1d s3 d2 leftover p1", (1, 2, 10), (2, 2, 2), stride=3, dilation=2,
         padding=1),
    case("1d groups2 s2", (2, 4, 7), (6, 2, 3), stride=2, groups=2),
    case("1d depthwise x2", (1, 3, 6), (6, 1, 2), groups=3, padding=1),
    case("1d pairs (3,0) s2", (1, 2, 6), (2, 2, 3), stride=2, padding=((3, 0),)),
    case("1d unbatched", (3, 6), (2, 3, 3), padding=1),
    case("2d 3x3 p1", (2, 3, 5, 5), (4, 3, 3, 3), padding=1),
    case("2d s(2,3) leftover p(1,0)", (2, 2, 7, 8), (3, 2, 3, 2), stride=(2, 3),
         padding=(1, 0)),
    case("2d groups2 d2 s2 leftover", (1, 4, 8, 7), (4, 2, 2, 3), groups=2,
         dilation=2, stride=2),
    case("2d stride>kernel", (2, 2, 7, 8), (2, 2, 2, 2), stride=(3, 4)),
    case("2d same even", (1, 2, 5, 6), (2, 2, 2, 4), padding="same"),
    case("2d unbatched groups2", (4, 5, 5), (2, 2, 3, 3), groups=2, stride=2),
    case("3d s2 p1 leftover", (1, 2, 5, 4, 6), (2, 2, 3, 2, 3), stride=2,
         padding=1),
    case("3d groups2 s(1,2,3)", (2, 4, 4, 5, 7), (2, 2, 2, 2, 2), groups=2,
         stride=(1, 2, 3)),
]


@pytest.mark.parametrize("kind", ["input", "weight"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_GRAD_CASES)
def test_conv_grad_functions_match_torch(request, kind, x_shape, w_shape, kwargs):
    run_grad(request.node.callspec.id, kind, x_shape, w_shape, kwargs)


CONV_TRANSPOSE_GRAD_CASES = [
    case("1d s2 p1 op1", (2, 3, 5), (3, 2, 3), stride=2, padding=1,
         output_padding=1),
    case("1d s1 d3 op2", (1, 2, 4), (2, 2, 3), dilation=3, output_padding=2),
    case("1d unbatched groups2 s3", (4, 3), (4, 1, 2), groups=2, stride=3),
    case("2d 4x4 s2 p1", (2, 2, 3, 3), (2, 3, 4, 4), stride=2, padding=1),
    case("2d groups2 s(2,1) op(1,0) d2", (1, 4, 3, 4), (4, 1, 3, 2), groups=2,
         stride=(2, 1), output_padding=(1, 0), dilation=2),
    case("3d s2 op1", (1, 2, 2, 3, 2), (2, 2, 2, 2, 3), stride=2,
         output_padding=1),
]


@pytest.mark.parametrize("kind", ["transpose_input", "transpose_weight"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_TRANSPOSE_GRAD_CASES)
def test_conv_transpose_grad_functions_match_torch(request, kind, x_shape, w_shape,
                                                   kwargs):
    run_grad(request.node.callspec.id, kind, x_shape, w_shape, kwargs)


@pytest.mark.parametrize("kind, x_shape, w_shape, kwargs", [
    pytest.param("input", (2, 2, 7, 6), (3, 2, 3, 2), dict(stride=2, padding=1),
                 id="conv_input 2d s2"),
    pytest.param("weight", (1, 2, 5, 5, 4), (2, 1, 2, 2, 2), dict(groups=2),
                 id="conv_weight 3d groups2"),
    pytest.param("transpose_input", (2, 2, 4), (2, 2, 3),
                 dict(stride=2, output_padding=1), id="conv_transpose_input 1d"),
    pytest.param("transpose_weight", (1, 2, 3, 3), (2, 2, 2, 2),
                 dict(stride=2, padding=1), id="conv_transpose_weight 2d"),
])
def test_generic_grad_functions_match_torch(request, kind, x_shape, w_shape, kwargs):
    run_grad(request.node.callspec.id, kind, x_shape, w_shape, kwargs, generic=True)
