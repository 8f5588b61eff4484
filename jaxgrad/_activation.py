"""Activations with PyTorch's semantics and explicit, twice-differentiable VJPs.

  relu, leaky_relu, sigmoid, tanh, gelu     elementwise:  y = f(x)
  silu, mish, softplus, logsigmoid,
  hardswish, elu, celu, selu
  relu6, hardtanh, hardsigmoid              (piecewise linear: f″ = 0)
  prelu                                     x, or weight·x (a learnable slope)
  softmax, log_softmax                      along one axis ``dim``

Elementwise notation: f is the activation, f′ and f″ its first and second
derivatives, g the output cotangent, ḡ the cotangent of the backward's output.
Every elementwise op is one instance of a two-op family:

  apply(x)            = f(x)           VJP:  x̄ = scale(x, g) = g·f′(x)
  scale(x, g)         = g·f′(x)        VJP:  (x̄, ḡ̄) = (ḡ·g·f″(x), scale(x, ḡ))

so grad-of-grad runs only these hand-written rules. The derivative at the
kinks follows torch: relu′(0) = 0, leaky_relu′(0) = negative_slope, and a NaN
input has relu′ = 1, leaky_relu′ = negative_slope (torch tests ``y <= 0`` /
``x > 0``); hardtanh′ (relu6 = hardtanh(0, 6)) is 1 strictly between both
bounds and 0 at and beyond them and at NaN (torch's vectorized CPU kernel,
which every element of a tensor runs but a few in its scalar tail).
Half-precision inputs are computed in float32 and cast back.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _rules
from ._precision import accumulation_dtype
from ._args import (_INT_DTYPES, as_array, check_inplace, check_static, differentiable,
                    dtype_name, float_array, float_dtype)
from ._typing import Array, ArrayLike, DTypeLike

def compute_dtype(x):
    """float32 for half types (their math is done in float32), else x's dtype."""
    return accumulation_dtype(x.dtype)


# --------------------------------------------------------------------------
# The generic elementwise family.


@dataclasses.dataclass(frozen=True)
class Elementwise:
    """An activation f with f′ and f″, each called as ``fn(x, *params)``.

    ``d2f=None`` declares f″ ≡ 0 (piecewise linear f): the second-order rule
    then returns exact zeros, as torch does, even where g·ḡ is not finite.

    ``dead`` (and ``dead2`` for f″), called as ``dead(x, *params)``, marks
    where the derivative is 0 by a branch of torch's backward kernel (a select,
    not a product: ``x <= 0 ? 0 : g`` for relu). There the result is exactly
    0 whatever the cotangent, an infinite or NaN one included, as in torch;
    elsewhere it is the product g·f′(x).
    """

    name: str
    f: Callable
    df: Callable
    d2f: Callable | None
    dead: Callable | None = None
    dead2: Callable | None = None


def _call(fn: Callable, x, params: tuple):
    x = _rules.primal(x)
    return fn(x.astype(compute_dtype(x)), *params).astype(x.dtype)


def _times(fn: Callable, x, params: tuple, *factors, dead: Callable | None = None):
    """Π factors · fn(x), computed in float32 for half types and rounded once to
    the promoted dtype (as torch's kernels compute g·f′(x) in their opmath type);
    exactly 0 where ``dead(x, *params)`` holds (see :class:`Elementwise`)."""
    x = _rules.primal(x)
    result = jnp.result_type(x, *factors)
    work = accumulation_dtype(result)
    xw = x.astype(work)
    out = fn(xw, *params)
    for factor in factors:
        out = factor.astype(work) * out
    if dead is not None:
        out = jnp.where(dead(xw, *params), jnp.zeros_like(out), out)
    return out.astype(result)


def elementwise(fn: Elementwise, params: tuple, x):
    """y = f(x, *params): through the rule below for floating and complex x;
    an integer x (no derivative) runs f itself, in its own dtype."""
    if not differentiable(x):
        return fn.f(x, *params)
    return apply_elementwise(fn, params, x)


def _integer_bounds(fn: str, x, bounds: dict) -> tuple[int, ...]:
    """Real clamp bounds as integers of x's dtype, as torch converts them:
    truncated towards 0, refused where they do not fit (or are negative for
    an unsigned x)."""
    info = jnp.iinfo(x.dtype)
    out = []
    for name, value in bounds.items():    # as given: an int keeps every digit
        if info.min == 0 and math.trunc(value) < 0:
            raise ValueError(f"{fn}: an unsigned ({x.dtype}) `input` takes no negative "
                             f"bound, got {name}={value!r}")
        if not info.min <= math.trunc(value) <= info.max:
            raise ValueError(f"{fn}: `{name}` must fit in the {x.dtype} `input` "
                             f"([{info.min}, {info.max}]), got {value!r}")
        # a NumPy scalar of x's dtype: JAX reads a Python int above int64 as an overflow
        out.append(np.asarray(math.trunc(value), x.dtype)[()])
    return tuple(out)


def _as_float(x):
    """An integer or bool x as float32, torch's default dtype, in which its
    tanh and sigmoid compute them (also under JAX's 64-bit mode, so the
    results compare with torch's dtype included); no derivative reaches x."""
    return x if differentiable(x) else x.astype(jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _apply_vjp(fn: Elementwise, params: tuple, x):
    with _rules.own_promotion():
        return _call(fn.f, x, params)


def _apply_fwd(fn, params, x):
    return apply_elementwise(fn, params, x), x


def _apply_bwd(fn, params, x, g):
    return (scale_derivative(fn, params, x, g),)


_apply_vjp.defvjp(_apply_fwd, _apply_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _scale_vjp(fn: Elementwise, params: tuple, x, g):
    with _rules.own_promotion():
        return _times(fn.df, x, params, g, dead=fn.dead)


def _scale_fwd(fn, params, x, g):
    return scale_derivative(fn, params, x, g), (x, g)


def _d2_term(fn, params, x, g, t):
    """t·g·f″(x): the x-term of z = g·f′(x)'s derivative (0 without an f″)."""
    if fn.d2f is None:
        return jnp.zeros_like(x)
    with _rules.own_promotion():
        return _times(fn.d2f, x, params, g, t, dead=fn.dead2)


def _scale_bwd(fn, params, residuals, ct):
    # z_i = g_i·f′(x_i):  ∂z_i/∂x_i = g_i·f″(x_i),  ∂z_i/∂g_i = f′(x_i).
    x, g = residuals
    return _d2_term(fn, params, x, g, ct), scale_derivative(fn, params, x, ct)


_scale_vjp.defvjp(_scale_fwd, _scale_bwd)


# Forward mode (see _rules.with_forward_mode). The Jacobians are diagonal, so
# the JVPs are the same products as the VJPs, with the tangent for the
# cotangent:  d f(x) = f′(x)·dx = scale_derivative(x, dx), and
# d (g·f′(x)) = dg·f′(x) + g·f″(x)·dx.
def _apply_tangent(choose, static, primals, tangents, out):
    return scale_derivative(*static, primals[0], tangents[0])


def _scale_tangent(choose, static, primals, tangents, out):
    (x, g), (dx, dg) = primals, tangents
    terms = ([scale_derivative(*static, x, dg)] if _rules.nonzero_tangent(dg) else []) + (
        [_d2_term(*static, x, g, dx)] if _rules.nonzero_tangent(dx) else [])
    return _rules.sum_terms(terms, out)


_apply = _rules.with_forward_mode(lambda static, x: _apply_vjp(*static, x),
                                   _apply_tangent)
_scale = _rules.with_forward_mode(lambda static, x, g: _scale_vjp(*static, x, g),
                                   _scale_tangent)


def apply_elementwise(fn: Elementwise, params: tuple, x):
    """y = f(x, *params) with VJP x̄ = g·f′(x) (and JVP ẏ = f′(x)·ẋ)."""
    return _apply((fn, params), x)


def scale_derivative(fn: Elementwise, params: tuple, x, g):
    """z = g·f′(x): the backward of ``apply_elementwise``."""
    return _scale((fn, params), x, g)


# --------------------------------------------------------------------------
# The activations: f, f′, f″ written out.


def _relu(x):
    # x < 0 (not x <= 0) keeps -0.0 and NaN as they are, like torch.
    return jnp.where(x < 0, jnp.zeros_like(x), x)


def _relu_dead(x):
    return x <= 0


def _relu_grad(x):
    # 0 at x <= 0, 1 elsewhere: exactly 0 at 0, and 1 at NaN (NaN <= 0 is false).
    return jnp.where(_relu_dead(x), jnp.zeros_like(x), jnp.ones_like(x))


def _leaky_relu(x, slope: float):
    return jnp.where(x > 0, x, x * slope)


def _leaky_relu_grad(x, slope: float):
    return jnp.where(x > 0, jnp.ones_like(x), jnp.full_like(x, slope))


# hardtanh: f = x clamped to [lo, hi]. f′ = 1 for lo < x < hi, 0 elsewhere,
# exactly 0 at the bounds themselves; f″ = 0.
def _hardtanh(x, lo: float, hi: float):
    # x < lo / x > hi (not <=) keep a bound, -0.0 and NaN as they are, like torch.
    return jnp.where(x < lo, jnp.full_like(x, lo), jnp.where(x > hi, jnp.full_like(x, hi), x))


def _hardtanh_grad(x, lo: float, hi: float):
    # 1 strictly inside; 0 at and beyond the bounds and at NaN (both tests
    # false), as torch's vectorized CPU kernel (its scalar tail gives 1).
    return jnp.where(_hardtanh_inside(x, lo, hi), jnp.ones_like(x), jnp.zeros_like(x))


def _hardtanh_inside(x, lo: float, hi: float):
    return (x > lo) & (x < hi)


def _sigmoid(x):
    # σ(x) = 1/(1+e^{-x}) for x >= 0 and e^{x}/(1+e^{x}) for x < 0: both use
    # e^{-|x|} <= 1, so nothing overflows. Complex z: 1/(1+e^{-z}) itself, as
    # torch computes it (it has poles at z = iπ(2k+1); no branch avoids them).
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return 1 / (1 + jnp.exp(-x))
    e = jnp.exp(-jnp.abs(x))
    return jnp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_grad(x):
    s = _sigmoid(x)
    return s * (1 - s)            # σ′ = σ(1-σ), as torch computes it from σ


def _sigmoid_grad2(x):
    s = _sigmoid(x)
    return s * (1 - s) * (1 - 2 * s)


def _tanh_grad(x):
    t = jnp.tanh(x)
    return 1 - t * t


def _tanh_grad2(x):
    t = jnp.tanh(x)
    return -2 * t * (1 - t * t)


# Exact GELU: f = x·Φ(x), Φ the standard normal CDF, φ its density.
#   f′ = Φ + x·φ            f″ = 2φ + x·φ′ = (2 - x²)·φ      (φ′ = -x·φ)
# Φ via erfc so that Φ(x) is accurate (not 1 - 1) for very negative x.
_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _normal_cdf(x):
    return 0.5 * jax.scipy.special.erfc(-x * _INV_SQRT2)


def _normal_pdf(x):
    return _INV_SQRT_2PI * jnp.exp(-0.5 * x * x)


def _gelu(x):
    return x * _normal_cdf(x)


def _gelu_grad(x):
    return _normal_cdf(x) + x * _normal_pdf(x)


def _gelu_grad2(x):
    return (2 - x * x) * _normal_pdf(x)


# Tanh GELU: f = ½x(1 + T), T = tanh(u), u = k(x + a·x³), k = √(2/π), a = 0.044715.
# With S = 1 - T² (so T′ = S·u′, S′ = -2T·S·u′), u′ = k(1 + 3a·x²), u″ = 6k·a·x:
#   f′ = ½(1 + T) + ½x·S·u′
#   f″ = ½S·u′ + ½S·u′ + ½x·(-2T·S·u′)·u′ + ½x·S·u″ = S·(u′ - x·T·u′² + ½x·u″)
_K = math.sqrt(2 / math.pi)
_A = 0.044715


def _gelu_tanh_terms(x):
    t = jnp.tanh(_K * (x + _A * x * x * x))
    du = _K * (1 + 3 * _A * x * x)
    return t, 1 - t * t, du


def _gelu_tanh(x):
    return 0.5 * x * (1 + jnp.tanh(_K * (x + _A * x * x * x)))


def _gelu_tanh_grad(x):
    t, s, du = _gelu_tanh_terms(x)
    return 0.5 * (1 + t) + 0.5 * x * s * du


def _gelu_tanh_grad2(x):
    t, s, du = _gelu_tanh_terms(x)
    return s * (du - x * t * du * du + 0.5 * x * (6 * _K * _A * x))


def _hardtanh_dead(x, lo: float, hi: float):
    return ~_hardtanh_inside(x, lo, hi)


RELU = Elementwise("relu", _relu, _relu_grad, None, dead=_relu_dead)
LEAKY_RELU = Elementwise("leaky_relu", _leaky_relu, _leaky_relu_grad, None)
HARDTANH = Elementwise("hardtanh", _hardtanh, _hardtanh_grad, None, dead=_hardtanh_dead)
SIGMOID = Elementwise("sigmoid", _sigmoid, _sigmoid_grad, _sigmoid_grad2)
TANH = Elementwise("tanh", jnp.tanh, _tanh_grad, _tanh_grad2)
GELU = Elementwise("gelu", _gelu, _gelu_grad, _gelu_grad2)
GELU_TANH = Elementwise("gelu", _gelu_tanh, _gelu_tanh_grad, _gelu_tanh_grad2)


# --------------------------------------------------------------------------
# Public elementwise activations.


def relu(input: ArrayLike, inplace: bool = False) -> Array:
    """Rectified linear unit, ``max(x, 0)``, with torch's gradient at 0.

    The gradient is exactly 0 at ``x == 0`` (not ½ as ``jnp.maximum`` gives);
    NaN propagates (relu(NaN) = NaN, with gradient 1 there, like torch).

    Args:
      input: (*), a floating or integer array of any shape (an integer one
        has no gradient).
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` has another dtype.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-1.0, 0.0, 2.0], jnp.float32)
      >>> jaxgrad.relu(x).tolist(), jax.grad(lambda x: jaxgrad.relu(x).sum())(x).tolist()
      ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0])
    """
    input = float_array("relu", "input", input, int_ok=True)
    check_inplace("relu", inplace)
    return elementwise(RELU, (), input)


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01,
               inplace: bool = False) -> Array:
    """``x`` for ``x > 0``, else ``negative_slope·x``; gradient ``negative_slope`` at 0.

    Args:
      input: (*), a float array of any shape.
      negative_slope: a real number (any sign), the slope for ``x <= 0``.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array or ``negative_slope`` is not
        a real number.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> jaxgrad.leaky_relu(jnp.array([-2.0, 3.0], jnp.float32), 0.5).tolist()
      [-1.0, 3.0]
    """
    input = float_array("leaky_relu", "input", input)
    check_inplace("leaky_relu", inplace)
    slope = _real("leaky_relu", "negative_slope", negative_slope)
    return apply_elementwise(LEAKY_RELU, (slope,), input)


def _real(fn: str, name: str, value) -> float:
    check_static(fn, name, value, "a real number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: `{name}` must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    try:
        return float(value)
    except OverflowError:   # an int beyond the float range
        raise ValueError(f"{fn}: `{name}` is too large for a float, got "
                         f"{value!r}") from None


def hardtanh(input: ArrayLike, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Array:
    """``input`` clamped to [``min_val``, ``max_val``], with torch's gradient at the bounds.

    The gradient is 1 strictly between the bounds and exactly 0 at and beyond
    them (as ``torch.nn.functional.hardtanh``); NaN propagates, with gradient
    0 (torch's vectorized CPU kernel, which every element of a tensor runs
    but a few in its scalar tail, where torch gives 1).

    Args:
      input: (*), a floating or integer array of any shape (an integer one
        has no gradient; as torch, the bounds are then truncated towards 0
        and must fit its dtype).
      min_val: the lower bound, a real number.
      max_val: the upper bound, a real number >= ``min_val``.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` has another dtype or a bound is not a real number.
      ValueError: if ``min_val`` > ``max_val`` or a bound is NaN (for an integer
        input: does not fit its dtype, or is negative for an unsigned one).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-2.0, -1.0, 0.5, 1.0], jnp.float32)
      >>> jaxgrad.hardtanh(x).tolist()
      [-1.0, -1.0, 0.5, 1.0]
      >>> jax.grad(lambda x: jaxgrad.hardtanh(x).sum())(x).tolist()
      [0.0, 0.0, 1.0, 0.0]
    """
    input = float_array("hardtanh", "input", input, int_ok=True)
    check_inplace("hardtanh", inplace)
    lo, hi = (_real("hardtanh", name, value) for name, value in
              (("min_val", min_val), ("max_val", max_val)))
    for name, value in (("min_val", lo), ("max_val", hi)):
        if math.isnan(value):
            raise ValueError(f"hardtanh: `{name}` must not be NaN, got {value!r}")
    if lo > hi:
        raise ValueError(f"hardtanh: `min_val` must be <= `max_val`, got "
                         f"min_val={min_val!r}, max_val={max_val!r}")
    if not differentiable(input):
        lo, hi = _integer_bounds("hardtanh", input, {"min_val": min_val, "max_val": max_val})
    return elementwise(HARDTANH, (lo, hi), input)


def relu6(input: ArrayLike, inplace: bool = False) -> Array:
    """``min(max(x, 0), 6)``: :func:`hardtanh` with bounds 0 and 6, as torch.

    The gradient is exactly 0 at x = 0 and x = 6 (torch's rule) and at NaN
    (as :func:`hardtanh`), 1 between them.

    Args:
      input: (*), a floating or integer array of any shape (an integer one
        has no gradient).
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype, in [0, 6] (NaN stays NaN).

    Raises:
      TypeError: if ``input`` has another dtype.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-1.0, 0.0, 3.0, 6.0, 8.0], jnp.float32)
      >>> jaxgrad.relu6(x).tolist()
      [0.0, 0.0, 3.0, 6.0, 6.0]
      >>> jax.grad(lambda x: jaxgrad.relu6(x).sum())(x).tolist()
      [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    input = float_array("relu6", "input", input, int_ok=True)
    check_inplace("relu6", inplace)
    bounds = (0.0, 6.0) if differentiable(input) else (0, 6)
    return elementwise(HARDTANH, bounds, input)


def sigmoid(input: ArrayLike) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow.

    Args:
      input: (*), a float or complex array of any shape (complex: 1/(1+e^{-z}),
        as torch's; the VJP is ḡ·σ′(z), JAX's convention),
        or an integer or bool one, computed in float32 as torch's (in its
        default dtype; no gradient reaches it).

    Returns:
      An array of ``input``'s shape and dtype (float32 for an integer or bool
      input), in [0, 1] for real input.

    Raises:
      TypeError: if ``input`` has another dtype.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-100.0, -1.0, 0.0, 100.0], jnp.float32)
      >>> [round(v, 4) for v in jaxgrad.sigmoid(x).tolist()]
      [0.0, 0.2689, 0.5, 1.0]
    """
    input = float_array("sigmoid", "input", input, complex_ok=True, int_ok=True,
                        bool_ok=True)
    return apply_elementwise(SIGMOID, (), _as_float(input))


def tanh(input: ArrayLike) -> Array:
    """Hyperbolic tangent; f′ = 1 - tanh², f″ = -2·tanh·(1 - tanh²).

    Args:
      input: (*), a float or complex array of any shape (complex: the VJP is
        ḡ·tanh′(z), JAX's convention),
        or an integer or bool one, computed in float32 as torch's (in its
        default dtype; no gradient reaches it).

    Returns:
      An array of ``input``'s shape and dtype (float32 for an integer or bool
      input), in [-1, 1] for real input.

    Raises:
      TypeError: if ``input`` has another dtype.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> [round(v, 4) for v in jaxgrad.tanh(jnp.array([0.0, 1.0], jnp.float32)).tolist()]
      [0.0, 0.7616]
    """
    input = float_array("tanh", "input", input, complex_ok=True, int_ok=True, bool_ok=True)
    return apply_elementwise(TANH, (), _as_float(input))


def gelu(input: ArrayLike, approximate: str = "none") -> Array:
    """Gaussian error linear unit ``x·Φ(x)``, exact or with torch's tanh form.

    ``approximate="tanh"`` computes ``½x(1 + tanh(√(2/π)(x + 0.044715x³)))``.
    Like torch, ±inf inputs give NaN where the formula multiplies inf by 0.

    Args:
      input: (*), a float array of any shape.
      approximate: ``"none"`` (exact, via erfc) or ``"tanh"``.

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array.
      ValueError: if ``approximate`` is neither ``"none"`` nor ``"tanh"``.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-1.0, 0.0, 1.0], jnp.float32)
      >>> [round(v, 4) for v in jaxgrad.gelu(x).tolist()]
      [-0.1587, 0.0, 0.8413]
      >>> [round(v, 4) for v in jaxgrad.gelu(x, approximate="tanh").tolist()]
      [-0.1588, 0.0, 0.8412]
    """
    input = float_array("gelu", "input", input)
    check_static("gelu", "approximate", approximate, "'none' or 'tanh'")
    if not isinstance(approximate, str) or approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: `approximate` must be 'none' or 'tanh', got "
                         f"{approximate!r}")
    return apply_elementwise(GELU if approximate == "none" else GELU_TANH, (), input)


# --------------------------------------------------------------------------
# The activations of newer CNNs (EfficientNet, MobileNetV3, YOLO, self-
# normalising nets): f, f′, f″ written out, each with torch's formula, so that
# its NaN and inf placement and its choice at every kink are torch's.
#
# silu:        f = x·σ(x)              f′ = σ·(1 + x(1 - σ))
#                                      f″ = σ(1 - σ)·(2 + x(1 - 2σ))
# mish:        f = x·t, t = tanh(sp(x)), sp(x) = log(1 + eˣ), sp′ = σ,
#              t′ = (1 - t²)·σ:        f′ = t + x·σ·(1 - t²)
#              f″ = t′ + σ(1 - t²) + x·σ(1 - σ)(1 - t²) - 2x·σ·t·t′
#                 = σ(1 - t²)·(2 + x(1 - σ) - 2x·σ·t)
# softplus:    f = log(1 + e^{βx})/β, or x where βx > threshold (torch's switch)
#              z = e^{βx}: f′ = z/(z + 1) (1 past the switch), and f″ = β·s(1 - s),
#              s = σ(βx) (0 from the switch on), each as torch computes it
# logsigmoid:  f = min(x, 0) - log(1 + e^{-|x|}) = -sp(-x)
#              z = e^{-|x|}: f′ = σ(-x) = 1 - z/(1 + z) for x < 0, z/(1 + z) else
#              f″ = -σ(x)σ(-x) = -z/(1 + z)²
# hardsigmoid: f = clamp(x + 3, 0, 6)/6   f′ = 1/6 on -3 < x < 3, else 0;  f″ = 0
#              (torch's 1/6 there is float32's, also for float64)
# hardswish:   f = x·clamp(x + 3, 0, 6)/6 f′ = 0 (x <= -3), x/3 + ½ (x < 3), 1 (else)
#              f″ = 1/3 on -3 < x < 3, else 0
# elu family:  f = c·x for x > 0, a·(e^{s·x} - 1) for x <= 0 (torch's expm1), with
#              (a, c, s) = (α, 1, 1) elu, (α, 1, 1/α) celu, (λα, λ, 1) selu:
#              f′ = c (x > 0), a·s·e^{s·x} (x <= 0)
#              f″ = s·f′ for x < 0 (strictly: torch's second order is 0 at 0), else 0
# At a NaN input the derivatives are those of torch's vectorised CPU kernels
# (which every tensor of more than a few elements runs): NaN for silu, mish,
# softplus, logsigmoid, hardswish′ and the elu family, 0 for hardsigmoid′ and
# hardswish″. (Its scalar kernels, run on the last few elements, give
# hardswish′ = 1 and elu′ = c instead.)


def _silu(x):
    return x * _sigmoid(x)


def _silu_grad(x):
    s = _sigmoid(x)
    return s * (1 + x * (1 - s))


def _silu_grad2(x):
    s = _sigmoid(x)
    return s * (1 - s) * (2 + x * (1 - 2 * s))


def _mish_terms(x):
    s = _sigmoid(x)
    t = jnp.tanh(jnp.log1p(jnp.exp(x)))
    return s, t


def _mish(x):
    return x * jnp.tanh(jnp.log1p(jnp.exp(x)))


def _mish_grad(x):
    s, t = _mish_terms(x)
    return t + x * s * (1 - t * t)


def _mish_grad2(x):
    # 1 - t² = sech²(sp) = 4q/(1 + q)² with q = e^{-2·sp} = (1 + eˣ)^{-2} in
    # (0, 1]: no cancellation where t rounds to 1 (x ≳ 5 in float32), which
    # scales every term here (f′ only adds it to t, so it keeps torch's 1 - t²)
    s, t = _mish_terms(x)
    q = jnp.exp(-2 * jnp.log1p(jnp.exp(x)))
    sech2 = 4 * q / ((1 + q) * (1 + q))
    value = s * sech2 * (2 + x * (1 - s) - 2 * x * s * t)
    # torch's second order (autograd through its backward) is NaN where eˣ
    # overflows (x > 709.78 in float64, 88.72 in float32): inf·0 in its graph
    return jnp.where(jnp.exp(x) == jnp.inf, jnp.full_like(x, jnp.nan), value)


def _softplus(x, beta: float, threshold: float):
    bx = x * beta
    return jnp.where(bx > threshold, x, jnp.log1p(jnp.exp(bx)) / beta)


def _softplus_grad(x, beta: float, threshold: float):
    bx = x * beta
    z = jnp.exp(bx)
    return jnp.where(bx > threshold, jnp.ones_like(x), z / (z + 1))


def _softplus_grad2(x, beta: float, threshold: float):
    # torch's second order: β·s(1 - s) with s = σ(βx), and 0 from the
    # threshold on (at βx = threshold too, where f′ is still z/(z + 1))
    # torch multiplies by the 0/1 mask of βx < threshold: NaN stays NaN, and a
    # NaN threshold masks everything else (0·value, not a select, which XLA
    # would also make of a product with the converted mask)
    bx = x * beta
    s = _sigmoid(bx)
    value = beta * s * (1 - s)
    return jnp.where(bx < threshold, value, 0 * value)


def _logsigmoid(x):
    return jnp.minimum(x, 0) - jnp.log1p(jnp.exp(-jnp.abs(x)))


def _logsigmoid_grad(x):
    z = jnp.exp(-jnp.abs(x))
    q = z / (1 + z)
    return jnp.where(x < 0, 1 - q, q)


def _logsigmoid_grad2(x):
    z = jnp.exp(-jnp.abs(x))
    return -z / ((1 + z) * (1 + z))


def _clamp6(x):
    """clamp(x + 3, 0, 6), NaN kept (both tests false)."""
    t = x + 3
    return jnp.where(t < 0, jnp.zeros_like(t), jnp.where(t > 6, jnp.full_like(t, 6), t))


def _hardsigmoid(x):
    return _clamp6(x) / 6


# torch's hardsigmoid backward multiplies by 1/6 rounded to float32, in every dtype
_SIXTH_FLOAT32 = float(np.float32(1 / 6))


def _inside3(x):
    """Strictly inside (-3, 3), NaN excluded: where hardsigmoid′ and hardswish″
    are not 0 in torch's kernels."""
    return (x > -3) & (x < 3)


def _outside3(x):
    return ~_inside3(x)


def _hardsigmoid_grad(x):
    return jnp.where(_inside3(x), jnp.full_like(x, _SIXTH_FLOAT32), jnp.zeros_like(x))


def _hardswish(x):
    return x * _clamp6(x) / 6


def _hardswish_dead(x):
    return x <= -3


def _hardswish_grad(x):
    return jnp.where(_hardswish_dead(x), jnp.zeros_like(x),
                     jnp.where(x >= 3, jnp.ones_like(x), x / 3 + 0.5))


def _hardswish_grad2(x):
    return jnp.where(_inside3(x), jnp.full_like(x, 1 / 3), jnp.zeros_like(x))


# ``r`` is the s of the derivatives: s itself, except for celu, where torch's
# backward takes s = 1/α with α rounded to float32 (``alpha.toFloat()`` in its
# derivative formulas) while its forward divides by α itself.
def _elu(x, a: float, c: float, s: float, r: float):
    return jnp.where(x <= 0, jnp.expm1(x * s) * a, x * c)


def _elu_grad(x, a: float, c: float, s: float, r: float):
    return jnp.where(x > 0, jnp.full_like(x, c), jnp.exp(x * r) * (a * r))


def _elu_grad2(x, a: float, c: float, s: float, r: float):
    return jnp.where(x >= 0, jnp.zeros_like(x), jnp.exp(x * r) * (a * r * r))


SILU = Elementwise("silu", _silu, _silu_grad, _silu_grad2)
MISH = Elementwise("mish", _mish, _mish_grad, _mish_grad2)
SOFTPLUS = Elementwise("softplus", _softplus, _softplus_grad, _softplus_grad2)
LOGSIGMOID = Elementwise("logsigmoid", _logsigmoid, _logsigmoid_grad, _logsigmoid_grad2)
HARDSIGMOID = Elementwise("hardsigmoid", _hardsigmoid, _hardsigmoid_grad, None,
                          dead=_outside3)
HARDSWISH = Elementwise("hardswish", _hardswish, _hardswish_grad, _hardswish_grad2,
                        dead=_hardswish_dead, dead2=_outside3)
ELU = Elementwise("elu", _elu, _elu_grad, _elu_grad2)

# SELU's constants (Klambauer et al. 2017), as torch's: λ and α.
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _plain(fn: str, input, inplace=False, *, complex_ok: bool = False):
    """The checks of an activation with no parameters: a float array, no inplace."""
    x = float_array(fn, "input", input, complex_ok=complex_ok)
    check_inplace(fn, inplace)
    return x


def silu(input: ArrayLike, inplace: bool = False) -> Array:
    """SiLU (swish) ``x·σ(x)``, as ``torch.nn.functional.silu``.

    Like torch, ±inf give NaN gradients (inf·0), and -inf a NaN value.

    Args:
      input: (*), a float or complex array of any shape (complex: x/(1+e^{-x})
        as torch's; the VJP is ḡ·f′(z), JAX's convention).
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float or complex array.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-1.0, 0.0, 2.0], jnp.float32)
      >>> [round(v, 4) for v in jaxgrad.silu(x).tolist()]
      [-0.2689, 0.0, 1.7616]
      >>> [round(v, 4) for v in jax.grad(lambda x: jaxgrad.silu(x).sum())(x).tolist()]
      [0.0723, 0.5, 1.0908]
    """
    return apply_elementwise(SILU, (), _plain("silu", input, inplace, complex_ok=True))


def mish(input: ArrayLike, inplace: bool = False) -> Array:
    """Mish ``x·tanh(softplus(x))``, as ``torch.nn.functional.mish``.

    Args:
      input: (*), a float array of any shape.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> [round(v, 4) for v in jaxgrad.mish(jnp.array([-1.0, 0.0, 2.0], jnp.float32)).tolist()]
      [-0.3034, 0.0, 1.944]
    """
    return apply_elementwise(MISH, (), _plain("mish", input, inplace))


def softplus(input: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """``log(1 + exp(β·x))/β``, and ``x`` where ``β·x > threshold``, as torch.

    Past the threshold the gradient is exactly 1 and the second derivative 0
    (torch's switch to the linear function).

    Args:
      input: (*), a float array of any shape.
      beta: β, a real number (any sign; 0 gives inf, as torch).
      threshold: a real number, where the linear function takes over.

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array or ``beta``/``threshold``
        is not a real number.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-1.0, 0.0, 30.0], jnp.float32)
      >>> [round(v, 4) for v in jaxgrad.softplus(x).tolist()]
      [0.3133, 0.6931, 30.0]
      >>> [round(v, 4) for v in jaxgrad.softplus(x, beta=2.0).tolist()]
      [0.0635, 0.3466, 30.0]
    """
    x = float_array("softplus", "input", input)
    beta, threshold = (_real("softplus", name, value) for name, value in
                       (("beta", beta), ("threshold", threshold)))
    return apply_elementwise(SOFTPLUS, (beta, threshold), x)


def logsigmoid(input: ArrayLike) -> Array:
    """``log σ(x) = min(x, 0) - log(1 + exp(-|x|))``, without overflow, as torch.

    Args:
      input: (*), a float array of any shape.

    Returns:
      An array of ``input``'s shape and dtype, <= 0.

    Raises:
      TypeError: if ``input`` is not a float array.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-1000.0, 0.0, 1000.0], jnp.float32)
      >>> [round(v, 4) for v in jaxgrad.logsigmoid(x).tolist()]
      [-1000.0, -0.6931, 0.0]
    """
    return apply_elementwise(LOGSIGMOID, (), _plain("logsigmoid", input))


def hardsigmoid(input: ArrayLike, inplace: bool = False) -> Array:
    """``clamp(x + 3, 0, 6)/6``, as ``torch.nn.functional.hardsigmoid``.

    The gradient is 1/6 strictly inside (-3, 3) and 0 elsewhere, NaN included
    (torch's rule); the second derivative is 0 (torch does not differentiate
    this op twice; its true second derivative is 0).

    Args:
      input: (*), a float array of any shape.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype, in [0, 1] (NaN stays NaN).

    Raises:
      TypeError: if ``input`` is not a float array.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> jaxgrad.hardsigmoid(jnp.array([-4.0, 0.0, 1.5, 3.0], jnp.float32)).tolist()
      [0.0, 0.5, 0.75, 1.0]
    """
    return apply_elementwise(HARDSIGMOID, (), _plain("hardsigmoid", input, inplace))


def hardswish(input: ArrayLike, inplace: bool = False) -> Array:
    """``x·clamp(x + 3, 0, 6)/6`` (MobileNetV3), as ``torch.nn.functional.hardswish``.

    The gradient is 0 for x <= -3, x/3 + ½ for -3 < x < 3 and 1 from 3 on,
    torch's rule (NaN at NaN, as torch's vectorized CPU kernel); the second derivative is 1/3 strictly inside
    (-3, 3) and 0 elsewhere.

    Args:
      input: (*), a float array of any shape.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([-4.0, 0.0, 1.5, 3.0], jnp.float32)
      >>> jaxgrad.hardswish(x).tolist()
      [-0.0, 0.0, 1.125, 3.0]
      >>> jax.grad(lambda x: jaxgrad.hardswish(x).sum())(x).tolist()
      [0.0, 0.5, 1.0, 1.0]
    """
    return apply_elementwise(HARDSWISH, (), _plain("hardswish", input, inplace))


def _elu_family(fn: str, input, inplace, a: float, c: float, s: float,
                r: float | None = None):
    return apply_elementwise(ELU, (a, c, s, s if r is None else r), _plain(fn, input, inplace))


def elu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``x`` for x > 0, ``α·(exp(x) - 1)`` for x <= 0, as ``torch.nn.functional.elu``.

    The gradient at 0 is α (the x <= 0 branch, torch's), the second derivative
    there 0 (torch's).

    Args:
      input: (*), a float array of any shape.
      alpha: α, a real number (any sign, as torch).
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array or ``alpha`` is not a real
        number.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> [round(v, 4) for v in jaxgrad.elu(jnp.array([-1.0, 2.0], jnp.float32)).tolist()]
      [-0.6321, 2.0]
    """
    alpha = _real("elu", "alpha", alpha)
    return _elu_family("elu", input, inplace, alpha, 1.0, 1.0)


def celu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``max(0, x) + min(0, α·(exp(x/α) - 1))``, as ``torch.nn.functional.celu``.

    Args:
      input: (*), a float array of any shape.
      alpha: α, a nonzero real number.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array or ``alpha`` is not a real
        number.
      ValueError: if ``alpha`` is 0 (torch: "alpha cannot be 0 for CELU").

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> [round(v, 4) for v in jaxgrad.celu(jnp.array([-1.0, 2.0], jnp.float32), 2.0).tolist()]
      [-0.7869, 2.0]
    """
    value = _real("celu", "alpha", alpha)
    if value == 0:
        raise ValueError(f"celu: `alpha` must not be 0 (the input is divided by it), "
                         f"got {alpha!r}")
    alpha = value
    rounded = float(np.float32(alpha))      # 0 or ±inf past float32's range
    return _elu_family("celu", input, inplace, alpha, 1.0, 1 / alpha,
                       1 / rounded if rounded else math.copysign(math.inf, alpha))


def selu(input: ArrayLike, inplace: bool = False) -> Array:
    """``λ·elu(x, α)`` with SELU's fixed λ ≈ 1.0507 and α ≈ 1.6733, as torch.

    Pairs with :func:`alpha_dropout`, which keeps SELU's fixed point.

    Args:
      input: (*), a float array of any shape.
      inplace: must be False, as torch's default (JAX arrays are immutable).

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float array.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> [round(v, 4) for v in jaxgrad.selu(jnp.array([-1.0, 2.0], jnp.float32)).tolist()]
      [-1.1113, 2.1014]
    """
    return _elu_family("selu", input, inplace, SELU_SCALE * SELU_ALPHA, SELU_SCALE, 1.0)


# --------------------------------------------------------------------------
# prelu: y = x for x > 0, w·x elsewhere (NaN too: torch's test is x > 0), one
# w per channel (axis 1) or one for all, broadcast along the other axes.
# With P = [x > 0] and Σ over the axes w is broadcast along:
#
#   y = where(P, x, w·x)
#   x̄ = where(P, ḡ, w·ḡ)                 w̄ = Σ where(P, 0, x·ḡ)
#
# The backward (x, w, ḡ) ↦ (x̄, w̄) is linear in ḡ. For cotangents (h_x, h_w)
# of (x̄, w̄), with Q = [x >= 0] (torch's double backward tests x >= 0, so at
# x = 0 its second order takes the x piece while its first takes w·x):
#
#   ḡ̄ = where(Q, h_x, w·h_x + x·h_w)    x̄̄ = where(Q, 0, ḡ·h_w)    w̄̄ = Σ where(Q, 0, ḡ·h_x)
#
# Every branch is a select after the products, never a product with a masked
# zero, so an inf weight or cotangent stays where torch keeps it. Orders
# beyond the second differentiate these formulas with JAX (as for the losses).


def _prelu_impl(x, w, axes: tuple[int, ...]):
    return jnp.where(x > 0, x, w * x)


def _prelu_bwd(residuals, g, axes):
    x, w = residuals
    return prelu_grad(x, w, g, axes)


def _prelu_grad_impl(x, w, g, axes: tuple[int, ...]):
    positive = x > 0
    zero = jnp.zeros((), g.dtype)
    return (jnp.where(positive, g, w * g),
            jnp.sum(jnp.where(positive, zero, x * g), axis=axes, keepdims=True))


def _prelu_grad_bwd(residuals, cts, axes):
    x, w, g = residuals
    h_x, h_w = cts
    nonnegative = x >= 0
    zero = jnp.zeros((), g.dtype)
    return (jnp.where(nonnegative, zero, g * h_w),
            jnp.sum(jnp.where(nonnegative, zero, g * h_x), axis=axes, keepdims=True),
            jnp.where(nonnegative, h_x, w * h_x + x * h_w))


prelu_core = _rules.explicit(_prelu_impl, _prelu_bwd, static=1)
prelu_grad = _rules.explicit(_prelu_grad_impl, _prelu_grad_bwd, static=1)


def _prelu_weight(input, weight):
    """The weight, checked as torch checks it: 0-d or 1-D, one value or one per
    channel (axis 1; a 0-d or 1-D input has one channel), input's dtype."""
    x = float_array("prelu", "input", input)
    w = float_array("prelu", "weight", weight, python_dtype=jax.dtypes.canonicalize_dtype(
        x.dtype))
    if w.ndim > 1:
        raise ValueError(f"prelu: `weight` must be 0-D or 1-D (one value, or one per "
                         f"channel), got shape {tuple(w.shape)}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.size not in (1, channels):
        raise ValueError(f"prelu: `weight` must hold 1 value or one per channel of "
                         f"`input` (C={channels}, shape {tuple(x.shape)}), got "
                         f"{w.size} (shape {tuple(w.shape)})")
    if dtype_name(w.dtype) != dtype_name(x.dtype):
        raise TypeError(f"prelu: `weight` must have the dtype of `input`, "
                        f"{dtype_name(x.dtype)}, got {dtype_name(w.dtype)}")
    return x, w


def prelu(input: ArrayLike, weight: ArrayLike) -> Array:
    """Parametric ReLU: ``x`` for x > 0, ``weight·x`` elsewhere, as ``F.prelu``.

    ``weight`` holds one slope, or one per channel (axis 1 of ``input``). Both
    ``input`` and ``weight`` are differentiated; at x = 0 (and at NaN) the
    gradient is that of the ``weight·x`` piece, as torch's (its test is
    x > 0), and the second order at x = 0 that of the ``x`` piece, as
    torch's (its double backward tests x >= 0).

    Args:
      input: (N, C, *) or any shape with one ``weight`` value; a float array.
      weight: 0-D or 1-D with 1 or C values, ``input``'s dtype.

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if an argument is not a float array, or their dtypes differ.
      ValueError: if ``weight`` is not 0-D or 1-D, or holds neither 1 nor C
        values.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[-2.0, 3.0], [4.0, -1.0]], jnp.float32)   # (N, C) = (2, 2)
      >>> w = jnp.array([0.25, 0.5], jnp.float32)
      >>> jaxgrad.prelu(x, w).tolist()
      [[-0.5, 3.0], [4.0, -0.5]]
      >>> jax.grad(lambda w: jaxgrad.prelu(x, w).sum())(w).tolist()   # Σ of x <= 0
      [-2.0, -1.0]
    """
    x, w = _prelu_weight(input, weight)
    xc, wc = (a.astype(compute_dtype(a)) for a in (x, w))
    if x.ndim >= 2 and w.size != 1:            # one per channel (C = 0 included)
        shape = (1, w.size) + (1,) * (x.ndim - 2)
        axes = tuple(a for a in range(x.ndim) if a != 1)
    else:
        shape, axes = (1,) * x.ndim, tuple(range(x.ndim))
    # the reshape is a view of w (JAX transposes it, as it does the casts)
    return prelu_core(xc, wc.reshape(shape), axes).astype(x.dtype)


# --------------------------------------------------------------------------
# softmax and log_softmax along axis a; sums Σ run over that axis, per slice.
#
# softmax:  y_a = e^{x_a - m} / Σ_b e^{x_b - m}   (m = max_b x_b, for stability)
#   ∂y_a/∂x_b = y_a(δ_ab - y_b)   =>   x̄ = softmax_grad(y, g) = y ⊙ (g - ⟨g, y⟩)
# softmax_grad(y, g) = z, z_a = y_a(g_a - s), s = Σ_b g_b y_b. With cotangent h:
#   ∂z_a/∂y_b = δ_ab(g_a - s) - y_a g_b   =>  ȳ = h ⊙ (g - s) - g·⟨h, y⟩
#   ∂z_a/∂g_b = y_a(δ_ab - y_b)           =>  ḡ = y ⊙ (h - ⟨h, y⟩) = softmax_grad(y, h)
# The x-dependence of the backward runs through y = softmax(x), whose VJP is
# the rule above again, so the family closes.
#
# log_softmax:  y_a = x_a - m - log Σ_b e^{x_b - m}
#   ∂y_a/∂x_b = δ_ab - p_b, p = e^y   =>   x̄ = log_softmax_grad(y, g) = g - p·Σ_b g_b
# log_softmax_grad(y, g) = z, z_a = g_a - p_a·S, S = Σ_b g_b. With cotangent h:
#   ∂z_a/∂y_b = -δ_ab p_a S             =>  ȳ = -h ⊙ p · S
#   ∂z_a/∂g_b = δ_ab - p_a              =>  ḡ = h - ⟨h, p⟩


def _shifted(x, axis: int):
    # A row of all -inf has max -inf and gives NaN, as in torch; an empty
    # axis (initial -inf) gives an empty result, as in torch.
    return x - jnp.max(x, axis=axis, keepdims=True, initial=-jnp.inf)


def _softmax_impl(x, axis: int):
    xc = x.astype(compute_dtype(x))
    e = jnp.exp(_shifted(xc, axis))
    return (e / jnp.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


def _log_softmax_impl(x, axis: int):
    z = _shifted(x.astype(compute_dtype(x)), axis)
    return (z - jnp.log(jnp.sum(jnp.exp(z), axis=axis, keepdims=True))).astype(x.dtype)


def _dot(a, b, axis: int):
    return jnp.sum(a * b, axis=axis, keepdims=True)


def _softmax_grad_impl(y, g, axis: int):
    yc, gc = y.astype(compute_dtype(y)), g.astype(compute_dtype(g))
    return (yc * (gc - _dot(gc, yc, axis))).astype(y.dtype)


def _log_softmax_grad_impl(y, g, axis: int):
    yc, gc = y.astype(compute_dtype(y)), g.astype(compute_dtype(g))
    return (gc - jnp.exp(yc) * jnp.sum(gc, axis=axis, keepdims=True)).astype(y.dtype)


def _output(arrays, y):
    return y


def _softmax_bwd(y, g, axis):
    return (softmax_grad(y, g, axis),)


def _softmax_grad_bwd(residuals, h, axis):
    y, g = residuals
    y_bar = h * (g - _dot(g, y, axis)) - g * _dot(h, y, axis)
    return y_bar, softmax_grad(y, h, axis)


def _log_softmax_bwd(y, g, axis):
    return (log_softmax_grad(y, g, axis),)


def _log_softmax_grad_bwd(residuals, h, axis):
    y, g = residuals
    p = jnp.exp(y)
    y_bar = -h * p * jnp.sum(g, axis=axis, keepdims=True)
    return y_bar, h - _dot(h, p, axis)


# softmax_core(x, axis): y = softmax(x) along ``axis`` (a non-negative axis of x);
# softmax_grad(y, g, axis): x̄ = y ⊙ (g - ⟨g, y⟩), the backward given the output y.
softmax_core = _rules.explicit(_softmax_impl, _softmax_bwd, static=1, save=_output)
softmax_grad = _rules.explicit(_softmax_grad_impl, _softmax_grad_bwd, static=1)
# log_softmax_core(x, axis): y = log_softmax(x); log_softmax_grad(y, g, axis):
# x̄ = g - e^y·Σg, the backward given the output y.
log_softmax_core = _rules.explicit(_log_softmax_impl, _log_softmax_bwd, static=1,
                                   save=_output)
log_softmax_grad = _rules.explicit(_log_softmax_grad_impl, _log_softmax_grad_bwd, static=1)


def normalize_dim(fn: str, dim, ndim: int) -> int:
    """torch's dim rule: an int in [-max(ndim, 1), max(ndim, 1) - 1] -> axis >= 0."""
    check_static(fn, "dim", dim, "an int")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{fn}: `dim` must be an int, got {type(dim).__name__} "
                        f"{dim!r}")
    rank = max(ndim, 1)  # a 0-d array has one valid dim, 0 (or -1)
    if not -rank <= dim < rank:
        raise ValueError(f"{fn}: `dim` must be in [{-rank}, {rank - 1}] for a "
                         f"{ndim}-D `input`, got {dim}")
    return int(dim) % rank


_INT_OR_BOOL = _INT_DTYPES + ("bool",)


def _along(core, fn: str, input, dim, dtype):
    if dtype is not None:
        # torch: the input (an integer one too) is cast before the op, and
        # its gradient cast back
        dtype = float_dtype(fn, "dtype", dtype)
        input = as_array(fn, "input", input)
        if not (jnp.issubdtype(input.dtype, jnp.number)
                or jnp.issubdtype(input.dtype, jnp.bool_)):
            raise TypeError(f"{fn}: `input` must have a numeric or bool dtype, got "
                            f"{input.dtype}")
        input = input.astype(dtype)
    elif dtype_name(getattr(input, "dtype", None)) in _INT_OR_BOOL:
        raise TypeError(f"{fn}: `input` must have a floating dtype, got {input.dtype} "
                        f"(an integer or bool input takes `dtype=`, the floating dtype "
                        f"to compute in, as torch's)")
    input = float_array(fn, "input", input)
    axis = normalize_dim(fn, dim, input.ndim)
    if input.ndim == 0:  # one element: softmax 1, log_softmax 0
        return core(input.reshape(1), 0).reshape(())
    return core(input, axis)


def softmax(input: ArrayLike, dim: int, *, dtype: DTypeLike | None = None) -> Array:
    """Softmax along ``dim``: ``exp(x - max) / sum(exp(x - max))``.

    Unlike torch, ``dim`` is required (torch's implicit choice is deprecated).

    Args:
      input: (*), a float array of any shape (0-d included).
      dim: the axis to normalise over; negative values count from the end.
      dtype: as torch's: a floating dtype ``input`` (then also an integer
        or bool array) is cast to before the operation (the result has it; the
        gradient is cast back to ``input``'s dtype); None keeps ``input``'s.
        With x64 off, float64 gives float32 and JAX's warning, as ``astype``.

    Returns:
      An array of ``input``'s shape, of dtype ``dtype`` (default ``input``'s),
      whose slices along ``dim`` sum to 1.

    Raises:
      TypeError: if ``input`` is not a float array, ``dim`` is not an int or
        ``dtype`` is not a floating dtype.
      ValueError: if ``dim`` is out of range for ``input.ndim``.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> jaxgrad.softmax(jnp.array([[0.0, 1000.0], [1.0, 1.0]], jnp.float32), dim=-1).tolist()
      [[0.0, 1.0], [0.5, 0.5]]
    """
    return _along(softmax_core, "softmax", input, dim, dtype)


def log_softmax(input: ArrayLike, dim: int, *, dtype: DTypeLike | None = None) -> Array:
    """Log-softmax along ``dim``: ``x - max - log(sum(exp(x - max)))``.

    Same arguments and rules as :func:`softmax`.

    Args:
      input: (*), a float array of any shape (0-d included).
      dim: the axis to normalise over; negative values count from the end.
      dtype: a floating dtype ``input`` is cast to first, as in torch; None
        keeps ``input``'s.

    Returns:
      An array of ``input``'s shape, of dtype ``dtype`` (default ``input``'s).

    Raises:
      TypeError: if ``input`` is not a float array, ``dim`` is not an int or
        ``dtype`` is not a floating dtype.
      ValueError: if ``dim`` is out of range for ``input.ndim``.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> [round(v, 4) for v in jaxgrad.log_softmax(jnp.zeros(2, jnp.float32), dim=0).tolist()]
      [-0.6931, -0.6931]
    """
    return _along(log_softmax_core, "log_softmax", input, dim, dtype)
