"""The three implementations of each case's forward pass.

  jaxgrad   ``jaxgrad.conv{1,2,3}d`` / ``jaxgrad.conv_transpose{1,2,3}d``:
            gradients by their explicit ``custom_vjp`` rules.
  autodiff  a plain ``lax.conv_general_dilated`` forward written here;
            gradients by JAX's autodiff (``jax.vjp``) of it.
  torch     ``torch.nn.functional.conv*`` with autograd.

Every forward takes ``(x, weights)``, ``weights`` a tuple with one array per
layer, and applies the case's layers in order. The three compute the same
function; the harness checks it on every run (the correctness columns).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import lax

import jaxgrad

from ._cases import Case, Layer

IMPLEMENTATIONS = ("jaxgrad", "autodiff", "torch")
LABELS = {"jaxgrad": "jaxgrad", "autodiff": "jax.grad", "torch": "torch"}
JAX_IMPLEMENTATIONS = ("jaxgrad", "autodiff")

Forward = Callable[[object, tuple], object]


def _stack(apply_layer: Callable, case: Case) -> Forward:
    def forward(x, weights):
        for layer, w in zip(case.layers, weights):
            x = apply_layer(layer, x, w)
        return x
    return forward


def _jaxgrad_layer(layer: Layer, x, w):
    n = layer.ndim
    if layer.op == "conv":
        fn = (jaxgrad.conv1d, jaxgrad.conv2d, jaxgrad.conv3d)[n - 1]
        return fn(x, w, None, layer.stride, layer.padding, layer.dilation,
                  layer.groups)
    fn = (jaxgrad.conv_transpose1d, jaxgrad.conv_transpose2d,
          jaxgrad.conv_transpose3d)[n - 1]
    return fn(x, w, None, layer.stride, layer.padding, layer.output_padding,
              layer.groups, layer.dilation)


def _transposed_kernel(w, groups: int):
    """(C_in, C_out/G, *K) -> (C_out, C_in/G, *K), flipped in every spatial dim."""
    c_in, c_out_g, *kernel = w.shape
    w = w.reshape(groups, c_in // groups, c_out_g, *kernel)
    w = jnp.swapaxes(w, 1, 2).reshape(groups * c_out_g, c_in // groups, *kernel)
    return jnp.flip(w, axis=tuple(range(2, w.ndim)))


def _lax_layer(layer: Layer, x, w):
    if layer.op == "conv":
        return lax.conv_general_dilated(
            x, w, layer.stride, [(p, p) for p in layer.padding],
            rhs_dilation=layer.dilation, feature_group_count=layer.groups)
    # torch's transposed convolution as a forward convolution: the input
    # dilated by the stride, padded by d(K-1) - p (plus output_padding at the
    # end), correlated with the flipped, channel-swapped kernel.
    pads = [(d * (k - 1) - p, d * (k - 1) - p + a) for k, p, a, d in
            zip(layer.kernel, layer.padding, layer.output_padding, layer.dilation)]
    return lax.conv_general_dilated(
        x, _transposed_kernel(w, layer.groups), (1,) * layer.ndim, pads,
        lhs_dilation=layer.stride, rhs_dilation=layer.dilation,
        feature_group_count=layer.groups)


def _torch_layer(layer: Layer, x, w):
    import torch.nn.functional as F
    n = layer.ndim
    if layer.op == "conv":
        fn = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
        return fn(x, w, None, layer.stride, layer.padding, layer.dilation,
                  layer.groups)
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
    return fn(x, w, None, layer.stride, layer.padding, layer.output_padding,
              layer.groups, layer.dilation)


def forward(implementation: str, case: Case) -> Forward:
    """The forward pass of ``case`` in ``implementation`` (one of IMPLEMENTATIONS)."""
    layer_fn = {"jaxgrad": _jaxgrad_layer, "autodiff": _lax_layer,
                "torch": _torch_layer}[implementation]
    return _stack(layer_fn, case)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
