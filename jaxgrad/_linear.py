"""``linear`` (PyTorch's ``F.linear``) as a bilinear family with explicit VJPs.

  linear_core(x, w)     y = x wᵀ                     y[..., o] = Σ_i x[..., i] w[o, i]
  input_grad(g, w)      x̄ = g w                      x̄[..., i] = Σ_o g[..., o] w[o, i]
  weight_grad(x, g)     w̄ = Σ_batch gᵀ x             w̄[o, i]   = Σ_n g[n, o] x[n, i]
  add_bias(y, b)        y + b                        (VJP: g, Σ_n g[n, :])

Notation: x is the input (*, in_features), w the weight (out_features,
in_features), y and g (*, out_features); n runs over all leading dims of x
(none for a 1-D input). Each matmul is a ``jax.custom_vjp`` whose VJP is built
from the other two, like the convolution kernels in ``_kernels``, so every
order of reverse-mode differentiation runs these hand-written rules.
Half-precision arrays accumulate in float32 and are cast back.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from ._kernels import contraction_sharding, match_vma
from ._precision import (PrecisionPair, accumulation_dtype, preferred_element_type,
                         resolve_precision)
from ._spec import check_float, check_same_dtype
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
    return _dot(x, w, ((x.ndim - 1,), (1,)), precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def linear_core(x, w, precision: PrecisionPair):
    """y[..., o] = Σ_i x[..., i] w[o, i]; x (*, in), w (out, in)."""
    return _linear_impl(x, w, precision)


def _linear_core_fwd(x, w, precision):
    return linear_core(x, w, precision), (x, w)


def _linear_core_bwd(precision, residuals, g):
    x, w = residuals    # match_vma: shard_map's varying axes, see ``_kernels``
    return (match_vma(input_grad(g, w, precision), x),
            match_vma(weight_grad(x, g, precision), w))


linear_core.defvjp(_linear_core_fwd, _linear_core_bwd)


def _input_grad_impl(g, w, precision):
    # o is summed: under explicit mesh axes a split o (tensor parallelism)
    # leaves x̄ replicated along its axes; see ``_kernels.contraction_sharding``.
    g_spec, w_spec = jax.typeof(g).sharding.spec, jax.typeof(w).sharding.spec
    sharding = contraction_sharding(g, (*g_spec[:-1], w_spec[1]), (g_spec[-1], w_spec[0]))
    return _dot(g, w, ((g.ndim - 1,), (0,)), precision, sharding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def input_grad(g, w, precision: PrecisionPair):
    """x̄[..., i] = Σ_o g[..., o] w[o, i]; g (*, out), w (out, in)."""
    return _input_grad_impl(g, w, precision)


def _input_grad_fwd(g, w, precision):
    return input_grad(g, w, precision), (g, w)


def _input_grad_bwd(precision, residuals, ct):
    # ⟨input_grad(g, w), ct⟩ = ⟨linear_core(ct, w), g⟩ = ⟨w, weight_grad(ct, g)⟩.
    g, w = residuals
    return (match_vma(linear_core(ct, w, precision), g),
            match_vma(weight_grad(ct, g, precision), w))


input_grad.defvjp(_input_grad_fwd, _input_grad_bwd)


def _weight_grad_impl(x, g, precision):
    # Contract every leading dim; for 1-D x and g this is the outer product g xᵀ.
    # Under explicit mesh axes the sum over a sharded n has no inferable
    # sharding: w̄[o, i] is replicated along n's axes and keeps those of o
    # (from g) and i (from x); see ``_kernels.contraction_sharding``.
    x_spec, g_spec = jax.typeof(x).sharding.spec, jax.typeof(g).sharding.spec
    sharding = contraction_sharding(
        x, (g_spec[-1], x_spec[-1]), tuple(x_spec[:-1]) + tuple(g_spec[:-1]))
    return _dot(g, x, (_leading(g), _leading(x)), precision, sharding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def weight_grad(x, g, precision: PrecisionPair):
    """w̄[o, i] = Σ_n g[n, o] x[n, i] over all leading dims n of x and g."""
    return _weight_grad_impl(x, g, precision)


def _weight_grad_fwd(x, g, precision):
    return weight_grad(x, g, precision), (x, g)


def _weight_grad_bwd(precision, residuals, ct):
    # ⟨weight_grad(x, g), ct⟩ = ⟨input_grad(g, ct), x⟩ = ⟨linear_core(x, ct), g⟩.
    x, g = residuals
    return (match_vma(input_grad(g, ct, precision), x),
            match_vma(linear_core(x, ct, precision), g))


weight_grad.defvjp(_weight_grad_fwd, _weight_grad_bwd)


# --------------------------------------------------------------------------
# Bias: y[n, o] + b[o]. b̄[o] = Σ_n g[n, o], whose adjoint is the broadcast
# back along the leading dims; the pair (sum_leading, broadcast_leading) closes.


def _sum_leading_impl(g):
    return jnp.sum(g, axis=_leading(g), dtype=accumulation_dtype(g.dtype)).astype(g.dtype)


def sum_leading(g):
    """b̄[o] = Σ_n g[n, o] for g of layout (*, out)."""
    return _sum_leading(g, g.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _sum_leading(g, shape: tuple[int, ...]):
    return _sum_leading_impl(g)


def _sum_leading_fwd(g, shape):
    return _sum_leading(g, shape), None


def _sum_leading_bwd(shape, _, ct):
    return (broadcast_leading(ct, shape),)


_sum_leading.defvjp(_sum_leading_fwd, _sum_leading_bwd)


def _broadcast_leading_impl(b, shape):
    return jnp.broadcast_to(b, shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def broadcast_leading(b, shape: tuple[int, ...]):
    """b (out,) broadcast to ``shape`` = (*, out)."""
    return _broadcast_leading_impl(b, shape)


def _broadcast_leading_fwd(b, shape):
    return broadcast_leading(b, shape), None


def _broadcast_leading_bwd(shape, _, ct):
    return (sum_leading(ct),)


broadcast_leading.defvjp(_broadcast_leading_fwd, _broadcast_leading_bwd)


def _add_bias_impl(y, b):
    return y + b


@jax.custom_vjp
def add_bias(y, b):
    """y[..., o] + b[o]; VJP (ȳ, b̄) = (g, Σ_n g[n, o])."""
    return _add_bias_impl(y, b)


def _add_bias_fwd(y, b):
    return add_bias(y, b), b    # b only for its type (mesh axes it varies along)


def _add_bias_bwd(b, g):
    return g, match_vma(sum_leading(g), b)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


# --------------------------------------------------------------------------
# Public function.


def _check_linear(input, weight, bias) -> None:
    # input and weight are required: check_same_dtype would skip a None
    check_float("linear", "input", input)
    check_float("linear", "weight", weight)
    check_same_dtype("linear", {"input": input, "weight": weight, "bias": bias})
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
      input: (*, in_features), a float array with at least one dim.
      weight: (out_features, in_features), same dtype as ``input``.
      bias: optional (out_features,), same dtype.
      precision: keyword-only; the ``lax.Precision`` (or name, or per-operand
        pair) of the matmuls, forward and backward. None: full float32 unless
        ``jax.default_matmul_precision`` says otherwise (``docs/precision.md``).

    Returns:
      (*, out_features), ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array or the dtypes differ.
      ValueError: if the shapes do not fit together, naming both.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1.0, 2.0]], jnp.float32)
      >>> w = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]], jnp.float32)
      >>> jaxgrad.linear(x, w, jnp.array([0.5, 0.0, 0.0], jnp.float32)).tolist()
      [[1.5, 3.0, -2.0]]
    """
    _check_linear(input, weight, bias)
    y = linear_core(input, weight, resolve_precision("linear", precision))
    return y if bias is None else add_bias(y, bias)
