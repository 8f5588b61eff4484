"""Dropout with PyTorch's semantics, an explicit ``jax.random`` key and explicit VJPs.

  dropout, alpha_dropout                     one mask entry per element
  dropout1d, dropout2d, dropout3d,           one mask entry per (sample, channel):
  feature_alpha_dropout                      whole channels are dropped

A keep mask k ∈ {0, 1} is drawn once per call, k ~ Bernoulli(1 - p), from the
caller's ``key``; the op is then affine in x with constants m and b:

  dropout:        y_i = m_i·x_i,          m = k / (1 - p)
  alpha dropout:  y_i = m_i·x_i + b_i,    m = a·k,   b = α·a·(k - 1 + p)
                  α = 1.7580993408473766 (-λα of SELU),  a = ((α²p + 1)(1 - p))^(-1/2)

(a dropped alpha unit is α·a·(p - 1) = a·α′ + b with α′ = -α, the SELU
saturation, scaled and shifted to keep zero mean and unit variance). The
linear part is M = diag(m), symmetric, so

  x̄_i = m_i·ȳ_i          and the VJP of x̄ in ȳ is M again:

one ``_rules.linear_pair`` whose two maps are both ``x ↦ m ⊙ x``, with m a
constant (it gets no cotangent); every order alternates them. b is added
outside the rule (its derivative is zero). The mask is computed once in the
forward and is the same constant in every backward, as torch saves it.

Like torch, the product is a real multiplication: a dropped NaN or ±inf input
gives NaN (0·inf), and p = 1 gives ``x·0``. ``training=False``, p = 0 and an
empty input return ``input`` unchanged (no key needed; nothing is drawn).

Complex inputs are taken: m and b stay real, so the real and imaginary parts
are dropped together by one mask, and M = diag(m) is real and symmetric, so
x̄ = m ⊙ ȳ is the VJP in JAX's convention too. (torch takes complex where it
draws no mask; its Bernoulli sampler refuses complex otherwise.)
"""

from __future__ import annotations

import math
import numbers
import warnings

import jax
import jax.numpy as jnp

from . import _rules
from ._args import check_inplace, check_static, dtype_name, float_array, parse_bool
from ._precision import accumulation_dtype
from ._typing import Array, ArrayLike

ALPHA = 1.7580993408473766      # -λα of SELU: a dropped alpha unit is pushed towards it


# --------------------------------------------------------------------------
# The masked product and its adjoint (the same diagonal map).


def _product(x, m):
    """m ⊙ x (m broadcast to x) in x's dtype, computed in float32 for half types."""
    return (x.astype(accumulation_dtype(x.dtype)) * m).astype(x.dtype)


def _scale_impl(x, m):
    """y = M x = m ⊙ x."""
    return _product(x, m)


def _scale_adjoint_impl(g, m):
    """x̄ = Mᵀ g = m ⊙ g: M = diag(m) is symmetric, its own adjoint."""
    return _product(g, m)


scale, scale_adjoint = _rules.linear_pair(_scale_impl, _scale_adjoint_impl, constants=1)


def dropout_given_mask(input, keep, p: float, alpha: bool = False):
    """Dropout of ``input`` with the keep mask ``keep`` (1 keep, 0 drop) given.

    ``keep`` has the mask's shape (broadcastable to ``input``); ``p`` in [0, 1)
    is the drop probability it was drawn with (p = 1: ``keep`` is ignored and
    the result is ``input·0``, as torch). The public functions draw ``keep``
    and call this; tests call it with the mask torch drew.
    """
    dtype = jnp.finfo(accumulation_dtype(input.dtype)).dtype     # real for complex input
    if p == 1:
        return scale(input, jnp.zeros((), dtype))
    k = jnp.asarray(keep).astype(dtype)
    if not alpha:
        return scale(input, k * (1 / (1 - p)))
    a = 1 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
    b = (k - 1) * (ALPHA * a) + ALPHA * a * p
    return scale(input, k * a) + b.astype(input.dtype)


# --------------------------------------------------------------------------
# Arguments.


def _probability(fn: str, p) -> float:
    check_static(fn, "p", p, "a real number")
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{fn}: `p` must be a real number, got {type(p).__name__} {p!r}")
    if not 0 <= p <= 1:        # NaN too
        raise ValueError(f"{fn}: `p` (the drop probability) must be in [0, 1], got {p!r}")
    return float(p)


def _check_key(fn: str, key) -> None:
    """None, or one key: a typed key (``jax.random.key``) or a raw uint32 one."""
    if key is None:
        return
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype is not None and dtype_name(dtype) == "uint32" and key.ndim == 1
    if not (typed and key.ndim == 0) and not raw:
        shown = (f"an array of dtype {dtype_name(dtype)} and shape {tuple(key.shape)}"
                 if dtype is not None else f"{type(key).__name__} {key!r}")
        raise TypeError(f"{fn}: `key` must be one jax.random key (jax.random.key(seed), "
                        f"or split one per call), got {shown}")


def _draw(fn: str, key, p: float, shape: tuple[int, ...]):
    if key is None:
        raise ValueError(
            f"{fn}: `key` is required when training with 0 < `p` < 1 (the mask is "
            f"random): pass key=jax.random.key(seed), a fresh one per call, or "
            f"training=False; got key=None with p={p!r}")
    return jax.random.bernoulli(key, 1 - p, shape)


def _channel_mask_shape(fn: str, shape, batched: bool) -> tuple[int, ...]:
    """(N, C, 1, ..., 1): one entry per sample and channel (no N when unbatched)."""
    full = tuple(shape) if batched else (1,) + tuple(shape)
    if len(full) < 2:
        raise ValueError(f"{fn}: `input` must be at least 2-D (N, C, ...) to drop whole "
                         f"channels when training, got shape {tuple(shape)}")
    mask = full[:2] + (1,) * (len(full) - 2)
    return mask if batched else mask[1:]


def _dropout(fn: str, input, p, training, inplace, key, *, alpha: bool,
             channels: bool, batched: bool = True) -> Array:
    """The shared body: checks, then draw a mask (elementwise or per channel)."""
    x = float_array(fn, "input", input, complex_ok=True)
    p = _probability(fn, p)
    training = parse_bool(fn, "training", training)
    check_inplace(fn, inplace)
    _check_key(fn, key)
    if not training or p == 0 or x.size == 0:
        return x
    if p == 1:
        return dropout_given_mask(x, None, p, alpha)
    shape = _channel_mask_shape(fn, x.shape, batched) if channels else x.shape
    return dropout_given_mask(x, _draw(fn, key, p, shape), p, alpha)


def _rank_warning(fn: str, ndim: int, ranks: str, spatial: int) -> None:
    warnings.warn(
        f"{fn}: received a {ndim}-D input; {fn} drops whole channels of inputs with "
        f"{spatial} spatial dim{'s' if spatial > 1 else ''}, a channel dim and an "
        f"optional batch dim ({ranks} inputs). Like torch (which deprecates this), "
        f"the input is still processed; use jaxgrad.dropout for elementwise dropout.",
        UserWarning, stacklevel=3)


_ARGS = """\
      p: the probability of {what} being dropped, a Python float in [0, 1].
      training: apply dropout if True; if False ``input`` is returned as is.
      inplace: must be False (JAX arrays are immutable; kept for torch's
        signature, True raises).
      key: keyword-only, a ``jax.random`` key (``jax.random.key(seed)``):
        required when ``training`` and 0 < p < 1. The same key gives the same
        mask; split a fresh one per call (per step)."""


# --------------------------------------------------------------------------
# Public functions.


def dropout(input: ArrayLike, p: float = 0.5, training: bool = True,
            inplace: bool = False, *, key: jax.Array | None = None) -> Array:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    As ``torch.nn.functional.dropout``, with the randomness explicit: the mask
    is ``jax.random.bernoulli(key, 1 - p, input.shape)``. The gradient reuses
    that mask: ``x̄ = ȳ·mask/(1-p)``. A dropped NaN or ±inf gives NaN, as in
    torch (the mask is multiplied in); p = 1 gives ``input·0``.

    Args:
      input: (*), a float or complex array of any shape.
{args}

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: if ``input`` is not a float or complex array, ``p`` is not a real number,
        ``training``/``inplace`` are not bools or ``key`` is not a key.
      ValueError: if ``p`` is outside [0, 1], ``inplace`` is True, or ``key`` is
        None while a mask must be drawn.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x = jnp.ones(8, jnp.float32)
      >>> y = jaxgrad.dropout(x, 0.5, key=jax.random.key(0))
      >>> sorted(set(y.tolist()))
      [0.0, 2.0]
      >>> jaxgrad.dropout(x, 0.5, training=False).tolist() == x.tolist()
      True
    """
    return _dropout("dropout", input, p, training, inplace, key, alpha=False,
                    channels=False)


def alpha_dropout(input: ArrayLike, p: float = 0.5, training: bool = False,
                  inplace: bool = False, *, key: jax.Array | None = None) -> Array:
    """Alpha dropout for SELU networks: keeps zero mean and unit variance.

    As ``torch.nn.functional.alpha_dropout`` (note ``training=False`` by
    default, as there). With k the keep mask, α = 1.7580993408473766 and
    a = ((α²p + 1)(1 - p))^(-1/2): ``y = a·k·x + α·a·(k - 1 + p)``, so a dropped
    element becomes α·a·(p - 1). The gradient is ``x̄ = a·k·ȳ``. p = 1 gives
    ``input·0``, as torch.

    Args:
      input: (*), a float or complex array of any shape.
{args}

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: as :func:`dropout`.
      ValueError: as :func:`dropout`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> y = jaxgrad.alpha_dropout(jnp.zeros(1000, jnp.float32), 0.2, True,
      ...                           key=jax.random.key(0))
      >>> sorted(round(v, 4) for v in set(y.tolist()))
      [-1.2362, 0.309]
    """
    return _dropout("alpha_dropout", input, p, training, inplace, key, alpha=True,
                    channels=False)


def dropout1d(input: ArrayLike, p: float = 0.5, training: bool = True,
              inplace: bool = False, *, key: jax.Array | None = None) -> Array:
    """Zero whole channels with probability ``p``; scale the rest by 1/(1-p).

    As ``torch.nn.functional.dropout1d``: one mask entry per (sample, channel),
    shape (N, C, 1) (or (C, 1) unbatched), broadcast along L.

    Args:
      input: (N, C, L) or unbatched (C, L), a float or complex array.
{args}

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: as :func:`dropout`.
      ValueError: as :func:`dropout`, and if ``input`` is not 2-D or 3-D.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> y = jaxgrad.dropout1d(jnp.ones((2, 8, 5), jnp.float32), 0.5,
      ...                       key=jax.random.key(0))
      >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())   # whole channels
      True
    """
    x = float_array("dropout1d", "input", input, complex_ok=True)
    if x.ndim not in (2, 3):
        raise ValueError(f"dropout1d: `input` must be 2-D (C, L) or 3-D (N, C, L), got "
                         f"shape {tuple(x.shape)}")
    return _dropout("dropout1d", x, p, training, inplace, key, alpha=False,
                    channels=True, batched=x.ndim == 3)


def dropout2d(input: ArrayLike, p: float = 0.5, training: bool = True,
              inplace: bool = False, *, key: jax.Array | None = None) -> Array:
    """Zero whole channels with probability ``p``; scale the rest by 1/(1-p).

    As ``torch.nn.functional.dropout2d``: one mask entry per (sample, channel),
    shape (N, C, 1, 1), broadcast over H and W. Torch's handling of other
    ranks is kept, with its warnings: dim 0 is always N and dim 1 is C (a 3-D
    input is read as (N, C, L), not as unbatched (C, H, W); a 2-D one is
    dropped elementwise), and an input below 2-D cannot be dropped while
    training.

    Args:
      input: (N, C, H, W), a float or complex array (other ranks: see above).
{args}

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: as :func:`dropout`.
      ValueError: as :func:`dropout`, and for an input below 2-D when a mask
        must be drawn.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> y = jaxgrad.dropout2d(jnp.ones((2, 8, 3, 3), jnp.float32), 0.5,
      ...                       key=jax.random.key(0))
      >>> bool(((y == 0).all((2, 3)) | (y == 2).all((2, 3))).all())   # whole channels
      True
    """
    x = float_array("dropout2d", "input", input, complex_ok=True)
    if x.ndim not in (3, 4):
        _rank_warning("dropout2d", x.ndim, "3-D or 4-D", 2)
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: received a 3-D input; like torch, it is read as (N, C, L) and "
            "whole 1-D channels are dropped (not as an unbatched (C, H, W) image); use "
            "jaxgrad.dropout1d for that behaviour, or add the batch dim",
            UserWarning, stacklevel=2)
    return _dropout("dropout2d", x, p, training, inplace, key, alpha=False,
                    channels=True)


def dropout3d(input: ArrayLike, p: float = 0.5, training: bool = True,
              inplace: bool = False, *, key: jax.Array | None = None) -> Array:
    """Zero whole channels with probability ``p``; scale the rest by 1/(1-p).

    As ``torch.nn.functional.dropout3d``: one mask entry per (sample, channel),
    shape (N, C, 1, 1, 1), broadcast over D, H and W. An input that is not 5-D
    is read as unbatched, its dim 0 as C (with torch's warning unless it is
    4-D).

    Args:
      input: (N, C, D, H, W) or unbatched (C, D, H, W), a float or complex array.
{args}

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: as :func:`dropout`.
      ValueError: as :func:`dropout`, and for a 0-D input when a mask must be
        drawn.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> y = jaxgrad.dropout3d(jnp.ones((8, 2, 2, 2), jnp.float32), 0.5,
      ...                       key=jax.random.key(0))
      >>> bool(((y == 0).all((1, 2, 3)) | (y == 2).all((1, 2, 3))).all())
      True
    """
    x = float_array("dropout3d", "input", input, complex_ok=True)
    if x.ndim not in (4, 5):
        _rank_warning("dropout3d", x.ndim, "4-D or 5-D", 3)
    return _dropout("dropout3d", x, p, training, inplace, key, alpha=False,
                    channels=True, batched=x.ndim == 5)


def feature_alpha_dropout(input: ArrayLike, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *,
                          key: jax.Array | None = None) -> Array:
    """Alpha dropout of whole channels (see :func:`alpha_dropout`).

    As ``torch.nn.functional.feature_alpha_dropout`` (``training=False`` by
    default, as there): one mask entry per (sample, channel), shape
    (N, C, 1, ..., 1); dim 0 is N and dim 1 is C for any rank >= 2.

    Args:
      input: (N, C, *), a float or complex array, at least 2-D when a mask is drawn.
{args}

    Returns:
      An array of ``input``'s shape and dtype.

    Raises:
      TypeError: as :func:`dropout`.
      ValueError: as :func:`dropout`, and for an input below 2-D when a mask
        must be drawn.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> y = jaxgrad.feature_alpha_dropout(jnp.zeros((2, 6, 4), jnp.float32), 0.2,
      ...                                   True, key=jax.random.key(0))
      >>> bool((y == y[..., :1]).all())   # constant along each channel
      True
    """
    return _dropout("feature_alpha_dropout", input, p, training, inplace, key,
                    alpha=True, channels=True)


for _fn, _what in ((dropout, "an element"), (alpha_dropout, "an element"),
                   (dropout1d, "a channel"), (dropout2d, "a channel"),
                   (dropout3d, "a channel"), (feature_alpha_dropout, "a channel")):
    _fn.__doc__ = _fn.__doc__.replace("{args}", _ARGS.format(what=_what))
del _fn, _what
