"""The regression losses, e = ρ(input - target) reduced, optionally weighted:
mse_loss, l1_loss (complex too), smooth_l1_loss, huber_loss."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable

import jax.numpy as jnp

from .. import _rules
from .._args import check_same_dtype, check_static, float_arrays
from .._typing import Array, ArrayLike
from ._args import check_reduction
from ._common import (_loss_scale, _grad_scale, _upcast, _reduce, _expand, _real_dtype,
                      _cotangent)


# --------------------------------------------------------------------------
# Pointwise regression losses: mse_loss, l1_loss, smooth_l1_loss, huber_loss.
# Elementwise e_i = ρ(d_i), d = x - t, reduced with scale s (1/n for "mean",
# else 1) and ĝ_i the cotangent broadcast to e's shape:
#   x̄_i = s·ĝ_i·ρ′(d_i),      t̄_i = -x̄_i.
# Second order: z = (z_x, z_t) = (s·ĝ·ρ′(d), -s·ĝ·ρ′(d)), with cotangents
# (h_x, h_t) and h = h_x - h_t:
#   ∂⟨z, h⟩/∂x = s·ĝ·ρ″(d)·h,   ∂/∂t = -s·ĝ·ρ″(d)·h,   ∂/∂g_i = s·Σ h·ρ′(d) over
# the positions g_i was broadcast to (itself for "none", all for "sum"/"mean").
# For "mean" over an empty array the value's s is 1/0 → NaN (torch), but each
# derivative is a sum of no terms, 0: they use s = 0 there (``_grad_scale``).
#
#   mse_loss          ρ = d²                              ρ′ = 2d                ρ″ = 2
#   l1_loss           ρ = |d|                             ρ′ = sign d (0 at 0, NaN)  ρ″ = 0
#   smooth_l1 (β > 0) ρ = ½d²/β (|d| < β), |d| - ½β       ρ′ = d/β, ±1 (|d| >= β)    ρ″ = 1/β (|d| < β), 0
#   huber (δ > 0)     ρ = ½d² (|d| < δ), δ(|d| - ½δ)      ρ′ = d, ±δ (|d| >= δ)      ρ″ = 1 (|d| < δ), 0
#
# each with torch's formula and tests, so a NaN difference gives ρ′ = 0 for
# l1 (torch's sign) and NaN for the other two, and ρ″ = 0 at NaN.
#
# Complex l1_loss (torch takes it): ρ = |d| is real, and so is the loss. In
# JAX's convention a cotangent c of z pairs as Re(c·dz), so with u = d/|d|
# (torch's sgn, 0 at d = 0) d|d| = Re(ū·dd) gives ρ′ = ū, x̄ = s·ĝ·ū, t̄ = -x̄.
# Second order: Φ = Re Σ h·x̄ (h = h_x - h_t) = s·ĝ·Re(h̄·u), and
# du = (dd - u·Re(ū·dd))/|d|, so
#   ∂Φ/∂x = s·ĝ·(h̄ - Re(h̄·u)·ū)/|d|  (0 at d = 0, as torch's),  ∂/∂t = -∂/∂x,
#   ∂Φ/∂g_i = s·Σ Re(h·ū)   (real: g is).
# For real d, u = ±1 and the first is 0: the real l1's ρ″ = 0.


@dataclasses.dataclass(frozen=True)
class Pointwise:
    """ρ, ρ′ and ρ″ of a pointwise loss, each called as ``fn(d, *params)``;
    ``d2=None`` declares ρ″ ≡ 0 (exact zeros, as torch's l1 double backward)."""

    name: str
    rho: Callable
    d1: Callable
    d2: Callable | None
    params: tuple = ()
    complex_ok: bool = False


def _pointwise_impl(x, t, reduction: str, loss: Pointwise):
    xc, tc = _upcast(x, t)
    e = loss.rho(xc - tc, *loss.params)
    loss_dtype = _real_dtype(jnp.result_type(x, t))
    return _reduce(e, reduction, _loss_scale(reduction, e.size)).astype(loss_dtype)


def _pointwise_bwd(residuals, g, reduction, loss):
    x, t = residuals
    return pointwise_grad(x, t, g, reduction, loss)


def _pointwise_grad_impl(x, t, g, reduction: str, loss: Pointwise):
    xc, tc, gc = _upcast(x, t, g)
    scaled = _expand(gc, x.shape, reduction, _grad_scale(reduction, x.size))
    z = scaled * loss.d1(xc - tc, *loss.params)
    return _cotangent(z, x), _cotangent(-z, t)


def _pointwise_grad_bwd(residuals, cts, reduction, loss):
    x, t, g = residuals
    with _rules.own_promotion():
        h, scale = cts[0] - cts[1], _grad_scale(reduction, x.size)
        d = x - t
        if jnp.iscomplexobj(d):
            x_bar = _expand(g, x.shape, reduction, scale) * _abs_curvature(d, h)
        elif loss.d2 is None:
            x_bar = jnp.zeros_like(x)
        else:
            x_bar = _expand(g, x.shape, reduction, scale) * loss.d2(d, *loss.params) * h
        g_bar = _reduce(jnp.real(h * loss.d1(d, *loss.params)), reduction, scale)
        return _cotangent(x_bar, x), _cotangent(-x_bar, t), g_bar


# pointwise(x, t, reduction, loss): reduce(ρ(x - t)), explicit VJP w.r.t. x and t;
# pointwise_grad(x, t, g, reduction, loss): (x̄, t̄) = (s·ĝ·ρ′(x - t), -s·ĝ·ρ′(x - t)).
pointwise = _rules.explicit(_pointwise_impl, _pointwise_bwd, static=2)


pointwise_grad = _rules.explicit(_pointwise_grad_impl, _pointwise_grad_bwd, static=2)


# Weighted pointwise losses: torch 2.13's `weight` of mse_loss, l1_loss and
# huber_loss, an array of x's shape, differentiated like x and t (torch composes
# these with autograd). e_i = w_i·ρ(d_i), reduced by "none", "sum", "mean" (Σe/n:
# huber_loss) or "wmean" (Σe/W, W = Σw: mse_loss and l1_loss). With s = 1, 1,
# 1/n for the first three and ĝ the cotangent broadcast to e's shape:
#
#   x̄ = s·ĝ·w·ρ′,  t̄ = -x̄,  w̄ = s·ĝ·ρ                 and for "wmean", L = Σe/W:
#   x̄ = ĝ·w·ρ′/W,  t̄ = -x̄,  w̄ = ĝ·(ρ - L)/W
#
# Second order, cotangents (h_x, h_t, h_w), h = h_x - h_t; ∂/∂x = ∂/∂d and
# ∂/∂t = -∂/∂d:
#
#   ∂/∂d = s·ĝ·(w·ρ″·h + ρ′·h_w),   ∂/∂w = s·ĝ·ρ′·h,   ∂/∂g = s·reduce(w·ρ′·h + ρ·h_w)
#
# and for "wmean", with A = Σ w·ρ′·h, B = Σ h_w·(ρ - L), H = Σ h_w:
#
#   ∂/∂g = (A + B)/W
#   ∂/∂d = (ĝ/W)·(w·ρ″·h + ρ′·h_w - H·w·ρ′/W)
#   ∂/∂w = (ĝ/W)·(ρ′·h - (A + B)/W - H·(ρ - L)/W)
#
# (∂L/∂d_i = w_i·ρ′_i/W and ∂L/∂w_i = (ρ_i - L)/W give the H terms.) For complex
# l1, ρ′ = ū as above, w·ρ″·h is w times ``_abs_curvature(d, h)``, and each
# product of ρ′ with a cotangent that pairs with a real quantity (A, ∂/∂w,
# ∂/∂g) is its real part.


def _real(v):
    return jnp.real(v) if jnp.iscomplexobj(v) else v


def _curvature(loss: Pointwise, d, h):
    """ρ″·h, the second-order term of ρ at d for a cotangent h of d."""
    if jnp.iscomplexobj(d):
        return _abs_curvature(d, h)
    if loss.d2 is None:
        return jnp.zeros_like(h)
    return loss.d2(d, *loss.params) * h


def _weighted_scale(reduction: str, w, grad: bool):
    """s for the linear reductions, 1/W for "wmean" (W = Σw, an array)."""
    if reduction == "wmean":
        return 1 / jnp.sum(w)
    return (_grad_scale if grad else _loss_scale)(reduction, w.size)


def _as_reduction(reduction: str) -> str:
    return "mean" if reduction == "wmean" else reduction


def _weighted_impl(x, t, w, reduction: str, loss: Pointwise):
    (xc, tc, wc) = _upcast(x, t, w)
    e = wc * loss.rho(xc - tc, *loss.params)
    out = _reduce(e, _as_reduction(reduction), _weighted_scale(reduction, wc, False))
    return out.astype(w.dtype)


def _weighted_bwd(residuals, g, reduction, loss):
    x, t, w = residuals
    return weighted_grad(x, t, w, g, reduction, loss)


def _weighted_grad_impl(x, t, w, g, reduction: str, loss: Pointwise):
    xc, tc, wc, gc = _upcast(x, t, w, g)
    d = xc - tc
    sg = _expand(gc, x.shape, _as_reduction(reduction), _weighted_scale(reduction, wc, True))
    rho, rho1 = loss.rho(d, *loss.params), loss.d1(d, *loss.params)
    z = sg * wc * rho1
    w_bar = sg * rho
    if reduction == "wmean":
        # ĝ·ρ/W - ĝ·S/W², the two terms torch's autograd adds (so a zero ρ at
        # W = 0 gives NaN there, as torch's, not -L/W)
        total = jnp.sum(wc)
        w_bar = w_bar - gc * jnp.sum(wc * rho) / (total * total)
    return _cotangent(z, x), _cotangent(-z, t), w_bar.astype(w.dtype)


def _weighted_grad_bwd(residuals, cts, reduction, loss):
    x, t, w, g = residuals
    with _rules.own_promotion():
        h, h_w = cts[0] - cts[1], cts[2]
        d = x - t
        rho, rho1 = loss.rho(d, *loss.params), loss.d1(d, *loss.params)
        by_w = _real(rho1 * h)                          # ρ′·h, paired with w and g
        if reduction != "wmean":
            scale = _grad_scale(reduction, x.size)
            sg = _expand(g, x.shape, reduction, scale)
            d_bar = sg * (w * _curvature(loss, d, h) + rho1 * h_w)
            w_bar = sg * by_w
            g_bar = _reduce(w * by_w + rho * h_w, reduction, scale)
        else:
            inv = 1 / jnp.sum(w)
            dev = rho - jnp.sum(w * rho) * inv            # ρ - L
            a_plus_b = jnp.sum(w * by_w) + jnp.sum(h_w * dev)
            big_h = jnp.sum(h_w)
            g_bar = a_plus_b * inv
            d_bar = g * inv * (w * _curvature(loss, d, h) + rho1 * h_w
                               - big_h * w * rho1 * inv)
            w_bar = g * inv * (by_w - a_plus_b * inv - big_h * dev * inv)
        return (_cotangent(d_bar, x), _cotangent(-d_bar, t), w_bar.astype(w.dtype),
                g_bar.astype(g.dtype))


# weighted(x, t, w, reduction, loss): reduce(w·ρ(x - t)), explicit VJP w.r.t. x, t, w;
# weighted_grad(x, t, w, g, reduction, loss): (x̄, t̄, w̄).
weighted = _rules.explicit(_weighted_impl, _weighted_bwd, static=2)


weighted_grad = _rules.explicit(_weighted_grad_impl, _weighted_grad_bwd, static=2)


def _sign(d):
    # torch's sign: 0 at ±0 and at NaN; for complex d, ū = conj(d)/|d| (torch's
    # sgn conjugated into JAX's convention), 0 at 0
    if jnp.iscomplexobj(d):
        size = jnp.abs(d)
        zero = size == 0
        return jnp.where(zero, 0, jnp.conj(d) / jnp.where(zero, 1, size).astype(d.dtype))
    one = jnp.ones_like(d)
    return jnp.where(d > 0, one, jnp.where(d < 0, -one, jnp.zeros_like(d)))


def _abs_curvature(d, h):
    """(h̄ - Re(h̄·u)·ū)/|d| for u = d/|d|: the second-order term of a complex |d|
    (0 at d = 0, as torch's)."""
    size = jnp.abs(d)
    zero = size == 0
    safe = jnp.where(zero, 1, size).astype(d.dtype)
    u, hb = d / safe, jnp.conj(h)
    out = (hb - jnp.real(hb * u).astype(d.dtype) * jnp.conj(u)) / safe
    return jnp.where(zero, 0, out)


def _smooth_l1(d, beta: float):
    z = jnp.abs(d)
    return jnp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def _smooth_l1_d1(d, beta: float):
    one = jnp.ones_like(d)
    return jnp.where(d <= -beta, -one, jnp.where(d >= beta, one, d / beta))


def _smooth_l1_d2(d, beta: float):
    return jnp.where(jnp.abs(d) < beta, jnp.full_like(d, 1 / beta), jnp.zeros_like(d))


def _huber(d, delta: float):
    z = jnp.abs(d)
    return jnp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))


def _huber_d1(d, delta: float):
    bound = jnp.full_like(d, delta)
    return jnp.where(d <= -delta, -bound, jnp.where(d >= delta, bound, d))


def _huber_d2(d, delta: float):
    return jnp.where(jnp.abs(d) < delta, jnp.ones_like(d), jnp.zeros_like(d))


SQUARED = Pointwise("mse_loss", lambda d: d ** 2, lambda d: 2 * d, lambda d: jnp.full_like(d, 2))


ABSOLUTE = Pointwise("l1_loss", jnp.abs, _sign, None, complex_ok=True)


def mse_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
             weight: ArrayLike | None = None) -> Array:
    """Mean squared error ``reduce((input - target)²)``, as torch's ``F.mse_loss``.

    Differentiable w.r.t. both ``input`` and ``target``. Unlike torch, the
    shapes must match exactly (torch broadcasts with a warning) and the dtypes
    must agree. ``reduction`` is keyword-only: torch's third positional
    parameter is the deprecated ``size_average``. ``weight`` is torch 2.13's:
    each element's loss is multiplied by it, "mean" becomes ``Σ w·d² / Σ w``,
    and it is differentiated too.

    Args:
      input: (*), a float array of any shape.
      target: (*), the shape and dtype of ``input``.
      reduction: ``"none"`` (elementwise, ``input``'s shape), ``"mean"`` or
        ``"sum"`` (scalars; the mean of an empty array is NaN).
      weight: optional weight of each element, ``input``'s shape and dtype
        (torch does not broadcast it either).

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array or the dtypes differ.
      ValueError: if the shapes differ or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([1.0, 2.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> float(jaxgrad.mse_loss(x, t)), jaxgrad.mse_loss(x, t, reduction="none").tolist()
      (2.5, [1.0, 4.0])
    """
    return _pointwise_loss("mse_loss", input, target, reduction, SQUARED, weight)


def _pointwise_loss(fn: str, input, target, reduction, loss: Pointwise, weight=None, *,
                    mean: str = "wmean"):
    """The checks of a pointwise loss, then its rule; with ``weight``, the
    weighted rule, whose "mean" is ``mean`` ("wmean": over Σ weight)."""
    # both are required: check_same_dtype would skip a None
    input, target = float_arrays(fn, input=input, target=target,
                                 complex_ok=loss.complex_ok)
    if not (loss.complex_ok and _complex_and_a_real(input, target)):
        check_same_dtype(fn, {"input": input, "target": target}, complex_ok=loss.complex_ok)
    check_reduction(fn, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{fn}: `target` must have the shape of `input` "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is None:
        return pointwise(input, target, reduction, loss)
    (weight,) = float_arrays(fn, weight=weight)
    real = _real_dtype(jnp.result_type(input, target))
    if jnp.dtype(weight.dtype) != real:
        raise TypeError(f"{fn}: `weight` must have the loss's dtype {jnp.dtype(real).name}, "
                        f"got {jnp.dtype(weight.dtype).name}")
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{fn}: `weight` must have the shape of `input` "
                         f"{tuple(input.shape)} (as torch requires), got "
                         f"{tuple(weight.shape)}")
    return weighted(input, target, weight, mean if reduction == "mean" else reduction, loss)


def _complex_and_a_real(a, b) -> bool:
    """Whether one of ``a``, ``b`` is complex and the other real, a pair torch's
    l1_loss takes, promoting both to their result type (complex64 with float64
    is complex128, as in JAX); each cotangent returns in its own dtype."""
    return {jnp.iscomplexobj(a), jnp.iscomplexobj(b)} == {True, False}


def _positive(fn: str, name: str, value, *, zero_ok: bool) -> float:
    check_static(fn, name, value, "a real number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: `{name}` must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    value = float(value)
    if not (value >= 0 if zero_ok else value > 0):
        raise ValueError(f"{fn}: `{name}` must be {'>= 0' if zero_ok else 'positive'} "
                         f"(as torch requires), got {value!r}")
    return value


def l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
            weight: ArrayLike | None = None) -> Array:
    """Mean absolute error ``reduce(|input - target|)``, as torch's ``F.l1_loss``.

    The gradient is sign(input - target): 0 where they are equal (and at NaN),
    as torch's; the second derivative is 0. Differentiable w.r.t. both
    arguments; shapes and dtypes must match, and ``reduction`` is
    keyword-only, as in :func:`mse_loss`; ``weight`` as there (torch 2.13's).
    Complex arguments are taken, as in torch: the loss is real, the gradient
    ĝ·conj(d)/|d| in JAX's convention (d = input - target), and a complex
    argument may meet a real one (both promoted to their result type, as in
    torch; the loss has its real dtype).

    Args:
      input: (*), a float or complex array of any shape.
      target: (*), the shape and dtype of ``input`` (or, with a complex
        ``input``, any float dtype; or the reverse).
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      weight: optional weight of each element, of ``input``'s shape and the
        loss's (real) dtype; differentiated. "mean" is then ``Σ w·|d| / Σ w``.

    Returns:
      The loss, ``input``'s dtype (the real dtype of a complex one).

    Raises:
      TypeError: if an argument is not a float or complex array or the dtypes
        differ.
      ValueError: if the shapes differ or ``reduction`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([1.0, -2.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> float(jaxgrad.l1_loss(x, t)), jaxgrad.l1_loss(x, t, reduction="none").tolist()
      (1.5, [1.0, 2.0])
    """
    return _pointwise_loss("l1_loss", input, target, reduction, ABSOLUTE, weight)


def smooth_l1_loss(input: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                   beta: float = 1.0) -> Array:
    """``½d²/β`` for ``|d| < β``, else ``|d| - ½β`` (d = input - target), reduced.

    As torch's ``F.smooth_l1_loss``; ``beta=0`` is :func:`l1_loss`. The
    gradient is d/β inside and ±1 from ``|d| = β`` on; the second derivative
    1/β strictly inside, 0 elsewhere (and at NaN).

    Args:
      input: (*), a float array of any shape.
      target: (*), the shape and dtype of ``input``.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      beta: β >= 0, where the quadratic piece ends.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array, the dtypes differ, or
        ``beta`` is not a real number.
      ValueError: if the shapes differ, ``reduction`` is unknown or ``beta``
        is negative.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([0.5, 3.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> jaxgrad.smooth_l1_loss(x, t, reduction="none").tolist()
      [0.125, 2.5]
    """
    beta = _positive("smooth_l1_loss", "beta", beta, zero_ok=True)
    loss = ABSOLUTE if beta == 0 else Pointwise(
        "smooth_l1_loss", _smooth_l1, _smooth_l1_d1, _smooth_l1_d2, (beta,))
    return _pointwise_loss("smooth_l1_loss", input, target, reduction, loss)


def huber_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean",
               delta: float = 1.0, weight: ArrayLike | None = None) -> Array:
    """``½d²`` for ``|d| < δ``, else ``δ(|d| - ½δ)`` (d = input - target), reduced.

    As torch's ``F.huber_loss`` (whose ``reduction`` is its third positional
    parameter, so it is here too). The gradient is d inside and ±δ from
    ``|d| = δ`` on; the second derivative 1 strictly inside, 0 elsewhere (and
    at NaN). ``weight`` is torch 2.13's, as in :func:`mse_loss`, except that
    "mean" divides by the number of elements, as torch's huber_loss does.

    Args:
      input: (*), a float array of any shape.
      target: (*), the shape and dtype of ``input``.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      delta: δ > 0, where the quadratic piece ends.
      weight: optional weight of each element, ``input``'s shape and dtype;
        differentiated. "mean" is then ``Σ w·ρ / n``.

    Returns:
      The loss, ``input``'s dtype.

    Raises:
      TypeError: if an argument is not a float array, the dtypes differ, or
        ``delta`` is not a real number.
      ValueError: if the shapes differ, ``reduction`` is unknown or ``delta``
        is not positive.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x, t = jnp.array([0.5, 3.0], jnp.float32), jnp.array([0.0, 0.0], jnp.float32)
      >>> jaxgrad.huber_loss(x, t, reduction="none", delta=2.0).tolist()
      [0.125, 4.0]
    """
    delta = _positive("huber_loss", "delta", delta, zero_ok=False)
    loss = Pointwise("huber_loss", _huber, _huber_d1, _huber_d2, (delta,))
    return _pointwise_loss("huber_loss", input, target, reduction, loss, weight, mean="mean")
