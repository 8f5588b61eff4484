"""``linear`` (PyTorch's ``F.linear``) as a bilinear family with explicit VJPs.

  linear_core(x, w)     y = x wᵀ                     y[..., o] = Σ_i x[..., i] w[o, i]
  input_grad(g, w)      x̄ = g w                      x̄[..., i] = Σ_o g[..., o] w[o, i]
  weight_grad(x, g)     w̄ = Σ_batch gᵀ x             w̄[o, i]   = Σ_n g[n, o] x[n, i]
  add_bias(y, b)        y + b                        (VJP: g, Σ_n g[n, :])

Notation: x is the input (*, in_features), w the weight (out_features,
in_features), y and g (*, out_features); n runs over all leading dims of x
(none for a 1-D input). The three matmuls are one bilinear triple
(``_rules.bilinear``, as the convolution kernels in ``_conv._core``): each VJP is
built from the other two, so every order of reverse-mode differentiation runs
these hand-written rules.
Half-precision arrays accumulate in float32 and are cast back.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import _rules
from ._sharding import contraction_sharding
from ._precision import (HIGHEST, PrecisionPair, accumulation_dtype,
                         preferred_element_type, resolve_precision)
from ._args import check_float, check_same_dtype, float_arrays
from ._typing import Array, ArrayLike, Precision

def _dot(lhs, rhs, contract: tuple[tuple[int, ...], tuple[int, ...]],
         precision: PrecisionPair, out_sharding=None):
    """``lax.dot_general`` with no batch dims and float32 accumulation for half types."""
    out = lax.dot_general(lhs, rhs, (contract, ((), ())), precision=precision,
                          preferred_element_type=preferred_element_type(lhs.dtype),
                          out_sharding=out_sharding)
    return out.astype(lhs.dtype)


def _leading(a) -> tuple[int, ...]:
    return tuple(range(a.ndim - 1))


# --------------------------------------------------------------------------
# The three matmuls. Each is bilinear; its VJP w.r.t. one factor is the
# adjoint map applied to the cotangent, which is always one of the three:
#
#   ⟨linear_core(x, w), g⟩ = ⟨x, input_grad(g, w)⟩ = ⟨w, weight_grad(x, g)⟩
#
# (all three equal Σ_{n,o,i} g[n, o] x[n, i] w[o, i]). Reading each identity
# with a different argument held fixed gives every rule below. ``precision``
# (a ``lax.Precision`` pair, ``_precision``) goes unchanged to every matmul.


def _linear_impl(x, w, precision):
    """y[..., o] = Σ_i x[..., i] w[o, i]; x (*, in), w (out, in)."""
    return _dot(x, w, ((x.ndim - 1,), (1,)), precision)


def _input_grad_impl(g, w, precision):
    """x̄[..., i] = Σ_o g[..., o] w[o, i]; g (*, out), w (out, in)."""
    # o is summed: under explicit mesh axes a split o (tensor parallelism)
    # leaves x̄ replicated along its axes; see ``_sharding.contraction_sharding``.
    g_spec, w_spec = jax.typeof(g).sharding.spec, jax.typeof(w).sharding.spec
    sharding = contraction_sharding(g, (*g_spec[:-1], w_spec[1]), (g_spec[-1], w_spec[0]))
    return _dot(g, w, ((g.ndim - 1,), (0,)), precision, sharding)


def _weight_grad_impl(x, g, precision):
    """w̄[o, i] = Σ_n g[n, o] x[n, i] over all leading dims n of x and g."""
    # Contract every leading dim; for 1-D x and g this is the outer product g xᵀ.
    # Under explicit mesh axes the sum over a sharded n has no inferable
    # sharding: w̄[o, i] is replicated along n's axes and keeps those of o
    # (from g) and i (from x); see ``_sharding.contraction_sharding``.
    x_spec, g_spec = jax.typeof(x).sharding.spec, jax.typeof(g).sharding.spec
    sharding = contraction_sharding(
        x, (g_spec[-1], x_spec[-1]), tuple(x_spec[:-1]) + tuple(g_spec[:-1]))
    return _dot(g, x, (_leading(g), _leading(x)), precision, sharding)


linear_core, input_grad, weight_grad = _rules.bilinear(
    _linear_impl, _input_grad_impl, _weight_grad_impl)


# --------------------------------------------------------------------------
# Bias: y[n, o] + b[o]. b̄[o] = Σ_n g[n, o], whose adjoint is the broadcast
# back along the leading dims: a linear pair.


def _sum_leading_impl(g, shape: tuple[int, ...]):
    """b̄[o] = Σ_n g[n, o] for g of layout (*, out)."""
    if _sum_as_matvec(g):
        # The same sum as the matrix-vector product b̄[o] = Σ_n g[n, o]·1[n]. On
        # XLA CPU a reduction fuses with g's producer (e.g. ḡ·f′(x) of the
        # activation before it), which then runs twice: in the reduction and
        # for the matmuls that read g. A dot reads g once (docs/performance.md,
        # "GELU inside a ConvNeXt block").
        leading = _leading(g)
        return _dot(g, jnp.ones_like(g[..., 0]), (leading, leading), HIGHEST)
    return jnp.sum(g, axis=_leading(g), dtype=accumulation_dtype(g.dtype)).astype(g.dtype)


def _sum_as_matvec(g) -> bool:
    """Whether ``_sum_leading_impl`` runs its sum as a dot: on CPU, for g with
    leading dims and no explicit mesh axes (where the reduction's collectives
    are the tested ones)."""
    return (g.ndim > 1 and jax.default_backend() == "cpu"
            and not jax.typeof(g).sharding.mesh.explicit_axes)


def _broadcast_leading_impl(b, shape: tuple[int, ...]):
    """b (out,) broadcast to ``shape`` = (*, out)."""
    return jnp.broadcast_to(b, shape)


_sum_leading, broadcast_leading = _rules.linear_pair(_sum_leading_impl,
                                                     _broadcast_leading_impl)


def sum_leading(g):
    """b̄[o] = Σ_n g[n, o] for g of layout (*, out)."""
    return _sum_leading(g, g.shape)


def _add_bias_impl(y, b):
    """y[..., o] + b[o]; VJP (ȳ, b̄) = (g, Σ_n g[n, o])."""
    return y + b


add_bias = _rules.add_broadcast(_add_bias_impl, sum_leading)


# --------------------------------------------------------------------------
# Public function.


# torch's linear computes floating, complex and (no gradient) integer tensors.
_DTYPES = {"complex_ok": True, "int_ok": True}


def _check_linear(input, weight, bias) -> None:
    # input and weight are required: check_same_dtype would skip a None
    check_float("linear", "input", input, **_DTYPES)
    check_float("linear", "weight", weight, **_DTYPES)
    check_same_dtype("linear", {"input": input, "weight": weight, "bias": bias}, **_DTYPES)
    if input.ndim < 1:
        raise ValueError("linear: `input` must have layout (*, in_features) with at "
                         f"least 1 dim, got shape {tuple(input.shape)}")
    if weight.ndim != 2:
        raise ValueError("linear: `weight` must be 2-D (out_features, in_features), "
                         f"got shape {tuple(weight.shape)}")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: `input` has {input.shape[-1]} features (its last dim, shape "
            f"{tuple(input.shape)}) but `weight` expects in_features="
            f"{weight.shape[1]} (shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: `bias` must have shape ({weight.shape[0]},) to "
                         f"match out_features, got {tuple(bias.shape)}")


def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
           precision: Precision = None) -> Array:
    """Affine map ``y = x wᵀ + b`` over the last dim, as ``torch.nn.functional.linear``.

    ``y[..., o] = b[o] + Σ_i x[..., i] · w[o, i]``, for any number of leading
    dims (a 1-D input gives a 1-D output).

    Args:
      input: (*, in_features), a floating, complex or integer array (an
        integer one has no gradient) with at least one dim.
      weight: (out_features, in_features), same dtype as ``input``.
      bias: optional (out_features,), same dtype.
      precision: keyword-only; the ``lax.Precision`` (or name, or per-operand
        pair) of the matmuls, forward and backward. None: full float32 unless
        ``jax.default_matmul_precision`` says otherwise (``docs/precision.md``).

    Returns:
      (*, out_features), ``input``'s dtype.

    Raises:
      TypeError: if an argument has another dtype or the dtypes differ.
      ValueError: if the shapes do not fit together, naming both.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 2.0]], jnp.float32)
      >>> w = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]], jnp.float32)
      >>> jaxgrad.linear(x, w, jnp.array([0.5, 0.0, 0.0], jnp.float32)).tolist()
      [[1.5, 3.0, -2.0]]
    """
    input, weight, bias = float_arrays("linear", input=input, weight=weight, bias=bias,
                                       optional=("bias",), **_DTYPES)
    _check_linear(input, weight, bias)
    y = linear_core(input, weight, resolve_precision("linear", precision))
    return y if bias is None else add_bias(y, bias)
