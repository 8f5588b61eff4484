"""``pixel_shuffle`` and ``pixel_unshuffle`` (PyTorch's), each the other's VJP.

With r the factor, the shuffle S moves channel blocks of r² into r×r pixels:

  y[.., c, h·r + i, w·r + j] = x[.., c·r² + i·r + j, h, w]
  x (*, C·r², H, W)  ->  y (*, C, H·r, W·r)

S only moves entries: it is a permutation, so its adjoint is its inverse,
Sᵀ = S⁻¹ = the unshuffle U with the same r, and

  VJP of S:  x̄ = U ȳ          VJP of U:  ȳ = S x̄.

One ``_rules.linear_pair`` declares both; every order alternates them. Each is
a reshape, a transpose of the two r axes past H and W, and a reshape.
"""

from __future__ import annotations

from . import _rules
from ._args import _as_int, float_array
from ._typing import Array, ArrayLike


def _shuffle_impl(x, r: int):
    """(*, C·r², H, W) -> (*, C, H·r, W·r): y[.., c, h·r+i, w·r+j] = x[.., c·r²+i·r+j, h, w]."""
    *lead, channels, h, w = x.shape
    c, n = channels // (r * r), len(lead)
    blocks = x.reshape(*lead, c, r, r, h, w)          # (.., c, i, j, h, w)
    perm = tuple(range(n)) + tuple(n + k for k in (0, 3, 1, 4, 2))
    return blocks.transpose(perm).reshape(*lead, c, h * r, w * r)   # (.., c, h, i, w, j)


def _unshuffle_impl(y, r: int):
    """(*, C, H·r, W·r) -> (*, C·r², H, W): the inverse (and adjoint) of the shuffle."""
    *lead, c, hr, wr = y.shape
    h, w, n = hr // r, wr // r, len(lead)
    pixels = y.reshape(*lead, c, h, r, w, r)          # (.., c, h, i, w, j)
    perm = tuple(range(n)) + tuple(n + k for k in (0, 2, 4, 1, 3))
    return pixels.transpose(perm).reshape(*lead, c * r * r, h, w)   # (.., c, i, j, h, w)


shuffle, unshuffle = _rules.linear_pair(_shuffle_impl, _unshuffle_impl)


def _factor(fn: str, name: str, value) -> int:
    factor = _as_int(fn, name, value)
    if factor < 1:
        raise ValueError(f"{fn}: `{name}` must be positive, got {factor!r}")
    return factor


def _at_least_3d(fn: str, x, layout: str) -> None:
    if x.ndim < 3:
        raise ValueError(f"{fn}: `input` must be at least 3-D, {layout}, got shape "
                         f"{tuple(x.shape)}")


def pixel_shuffle(input: ArrayLike, upscale_factor: int) -> Array:
    """Rearrange (*, C·r², H, W) into (*, C, H·r, W·r), r = ``upscale_factor``.

    ``y[..., c, h·r + i, w·r + j] = x[..., c·r² + i·r + j, h, w]``, as
    ``torch.nn.functional.pixel_shuffle``. A permutation: its gradient is
    :func:`pixel_unshuffle` of the output gradient.

    Args:
      input: (*, C·r², H, W), a floating, complex, integer or bool array
        (integer and bool ones have no gradient) with any number of leading dims
        (at least 3-D).
      upscale_factor: r, a positive int.

    Returns:
      An array (*, C, H·r, W·r) of ``input``'s dtype.

    Raises:
      TypeError: if ``input`` has another dtype or ``upscale_factor`` not an int.
      ValueError: if ``input`` is below 3-D, ``upscale_factor`` < 1 or the
        channel dim is not divisible by r².

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(4.0, dtype=jnp.float32).reshape(4, 1, 1)
      >>> jaxgrad.pixel_shuffle(x, 2).tolist()
      [[[0.0, 1.0], [2.0, 3.0]]]
    """
    x = float_array("pixel_shuffle", "input", input, complex_ok=True, int_ok=True,
                    bool_ok=True)
    r = _factor("pixel_shuffle", "upscale_factor", upscale_factor)
    _at_least_3d("pixel_shuffle", x, "(*, C·r², H, W)")
    if x.shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle: the channel dim of `input` (dim -3, size "
                         f"{x.shape[-3]}) must be divisible by `upscale_factor`² = "
                         f"{r * r}, got shape {tuple(x.shape)}")
    return shuffle(x, r)


def pixel_unshuffle(input: ArrayLike, downscale_factor: int) -> Array:
    """Rearrange (*, C, H·r, W·r) into (*, C·r², H, W), r = ``downscale_factor``.

    The inverse of :func:`pixel_shuffle`, as
    ``torch.nn.functional.pixel_unshuffle``:
    ``y[..., c·r² + i·r + j, h, w] = x[..., c, h·r + i, w·r + j]``. Its
    gradient is :func:`pixel_shuffle` of the output gradient.

    Args:
      input: (*, C, H·r, W·r), a floating, complex, integer or bool array
        (integer and bool ones have no gradient) with any number of leading dims
        (at least 3-D).
      downscale_factor: r, a positive int dividing H·r and W·r.

    Returns:
      An array (*, C·r², H, W) of ``input``'s dtype.

    Raises:
      TypeError: if ``input`` has another dtype or ``downscale_factor`` not an int.
      ValueError: if ``input`` is below 3-D, ``downscale_factor`` < 1 or does
        not divide the height and width.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(4.0, dtype=jnp.float32).reshape(1, 2, 2)
      >>> jaxgrad.pixel_unshuffle(x, 2)[:, 0, 0].tolist()
      [0.0, 1.0, 2.0, 3.0]
    """
    fn = "pixel_unshuffle"
    x = float_array(fn, "input", input, complex_ok=True, int_ok=True, bool_ok=True)
    r = _factor(fn, "downscale_factor", downscale_factor)
    _at_least_3d(fn, x, "(*, C, H·r, W·r)")
    for what, dim in (("height", -2), ("width", -1)):
        if x.shape[dim] % r:
            raise ValueError(f"{fn}: the {what} of `input` (dim {dim}, size "
                             f"{x.shape[dim]}) must be divisible by `downscale_factor` "
                             f"= {r}, got shape {tuple(x.shape)}")
    return unshuffle(x, r)
