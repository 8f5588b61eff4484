"""``conv_general_dilated``: a drop-in for ``jax.lax.conv_general_dilated`` with explicit VJPs.

The forward pass is lax's own convolution with every argument passed through.
The backward pass writes both cotangents as convolutions that are again calls
of this op, so every order of reverse-mode differentiation runs the rules
below and never lax's autodiff of the convolution.

Notation (one spatial dim shown; every spatial dim is independent). Arrays are
read through ``dimension_numbers`` normalised to index tuples
``(lhs_spec, rhs_spec, out_spec)``: lhs x as (N, C, I), rhs w as (O, C/G, K)
-- (O, C, K) with batch groups --, output y as (N/B, O, P). Window stride s,
lhs dilation a, rhs dilation d, padding (lo, hi), K' = d(K-1)+1, feature
groups G (C = G·Cg, O = G·Og), batch groups B (N = B·Nb, O = B·Ob); at most one
of G, B exceeds 1. With x̌ the lhs dilated by a (x̌[i·a] = x[i], zeros
elsewhere):

  y[n, γOg+o, p] = Σ_{c,k} x̌[n, γCg+c, p·s + k·d - lo] · w[γOg+o, c, k]       (G)
  y[n, βOb+o, p] = Σ_{c,k} x̌[βNb+n, c, p·s + k·d - lo] · w[βOb+o, c, k]       (B)

Lhs cotangent. From the first line,

  x̄[n, γCg+c, i] = Σ_{o,p,k : p·s + k·d = i·a + lo} ḡ[n, γOg+o, p] · w[γOg+o, c, k].

Dilate ḡ by s (ǧ[p·s] = ḡ[p]) and flip the kernel, k = K-1-k̃: the condition
reads p·s = i·a - (K'-1-lo) + k̃·d, a convolution of ǧ with the flipped kernel
at window stride a, rhs dilation d and low pad K'-1-lo. Asking for exactly I
outputs fixes the high pad at (I-1)·a - (O-1)·s + lo. Either pad may be
negative (a crop). So stride and lhs dilation swap roles. Within group γ the
kernel's channel roles swap: it becomes w̃[γCg+c, o, k̃] = w[γOg+o, c, K-1-k̃],
i.e. the output-feature axis of w is split into (G, Og) and G moves, as the
major part, into the input-feature axis; read with rhs_spec's O and I
exchanged, it is a G-grouped kernel of C output and Og input features. For
batch groups the same kernel regrouping with B gives a B-grouped convolution
whose output feature βC+c is x̄[βNb+n, c]: its feature axis is split into
(B, C) and B moves, as the major part, into the batch axis.

Rhs cotangent. From the same lines,

  w̄[γOg+o, c, k] = Σ_{n,p} x̌[n, γCg+c, k·d + p·s - lo] · ḡ[n, γOg+o, p]      (G)
  w̄[βOb+o, c, k] = Σ_{n,p} x̌[βNb+n, c, k·d + p·s - lo] · ḡ[n, βOb+o, p]      (B)

a convolution over k in which x plays the lhs with its batch and feature axes
exchanged (C is the batch, N is contracted), ḡ plays the kernel with its batch
as input features, window stride d, rhs dilation s, lhs dilation a, low pad
lo and the high pad that gives exactly K outputs, (K'-1) + (O-1)·s - (I-1)·a - lo.
Group γ pairs lhs "batch" block γ with kernel output block γ: lax's
``batch_group_count = G``; batch group β pairs lhs feature block β with kernel
output block β: ``feature_group_count = B``. The two group counts exchange
roles. The result, batch c and feature o, is w̄ in rhs layout.

Every array stays in its own layout: only the index tuples of
``dimension_numbers`` are permuted; the kernel regrouping (for G or B > 1) and
the batch regrouping (for B > 1) are the only reshapes.

``precision`` (resolved once by ``_precision.resolve_precision``: full float32
unless asked) and ``preferred_element_type`` go to every convolution of every
order; cotangents are cast back to the primal dtypes (an operand is first
promoted to the cotangent's dtype when ``preferred_element_type`` widened it).
``out_sharding`` applies to the forward only. The backward convolutions name
their result's sharding only under explicit mesh axes, where jax cannot infer
it for a contraction over a split batch (``_kernels.contraction_sharding``);
elsewhere the partitioner decides.

Integer and bool operands run lax's convolution itself (they have no
gradient, and differentiating them fails as it does for lax); cotangents of
convolutions with an empty dimension are zeros.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._kernels import contraction_sharding
from ._precision import PrecisionPair, resolve_precision
from ._spec import _as_int, is_sequence
from ._typing import ArrayLike, Precision

_FN = "conv_general_dilated"
_PAD_STRINGS = ("SAME", "VALID", "SAME_LOWER")


@dataclasses.dataclass(frozen=True)
class _Config:
    """Every static argument of one convolution, normalised (hashable)."""
    window_strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    lhs_dilation: tuple[int, ...]
    rhs_dilation: tuple[int, ...]
    dimension_numbers: lax.ConvDimensionNumbers
    feature_group_count: int
    batch_group_count: int
    precision: PrecisionPair
    preferred_element_type: Any
    out_sharding: Any


def conv_general_dilated(
        lhs: ArrayLike, rhs: ArrayLike, window_strides: Sequence[int],
        padding: str | Sequence[tuple[int, int]],
        lhs_dilation: Sequence[int] | None = None,
        rhs_dilation: Sequence[int] | None = None,
        dimension_numbers: lax.ConvGeneralDilatedDimensionNumbers = None,
        feature_group_count: int = 1, batch_group_count: int = 1,
        precision: Precision = None, preferred_element_type: Any = None,
        out_sharding: Any = None) -> jax.Array:
    """``jax.lax.conv_general_dilated`` with explicit, hand-derived VJPs of every order.

    Same signature, arguments and result as the lax function; the gradients
    with respect to ``lhs`` and ``rhs`` are convolutions computed by this
    function again (see the module docstring for the derivation), so it can be
    handed to Flax's ``Conv(..., conv_general_dilated=...)``. Unlike the
    rest of jaxgrad it has no ``algorithm=``: every rule is one lax convolution.
    As a ``jax.custom_vjp`` it supports reverse mode to any order (and ``vmap``
    and ``jit``), not forward mode (``jax.jvp``, ``jax.hessian``).

    Args:
      lhs: input, rank n+2, layout given by ``dimension_numbers`` (default
        (N, C, *spatial)); a floating or complex dtype to be differentiated,
        or an integer or bool dtype for the forward alone (as lax). NumPy
        arrays are canonicalised as lax does (float64 is float32 while x64 is
        off).
      rhs: kernel, rank n+2, same dtype, layout given by ``dimension_numbers``
        (default (O, C/feature_group_count, *spatial)).
      window_strides: n positive ints.
      padding: ``"SAME"``, ``"SAME_LOWER"``, ``"VALID"`` (any case) or n
        ``(low, high)`` int pairs (negative values crop).
      lhs_dilation: None or n positive ints (string padding needs all ones).
      rhs_dilation: None or n positive ints.
      dimension_numbers: None, a ``lax.ConvDimensionNumbers`` or a triple of
        layout strings such as ``("NHWC", "HWIO", "NHWC")``.
      feature_group_count: positive int dividing the lhs feature size.
      batch_group_count: positive int dividing the lhs batch size; at most one
        of the two group counts may exceed 1.
      precision: as for lax (a ``lax.Precision``, its name or a per-operand
        pair; dot-algorithm presets, which lax's convolution ignores, are
        refused); used by every forward and backward convolution. Unlike lax,
        None means full float32 unless ``jax.default_matmul_precision`` is in
        effect, so TF32 is only used when asked for (``docs/precision.md``).
      preferred_element_type: as for lax; used by every convolution, the
        cotangents come back in the dtypes of ``lhs`` and ``rhs``.
      out_sharding: sharding of the forward result, as for lax; the backward
        convolutions name theirs under explicit mesh axes only.

    Returns:
      The convolution, rank n+2, in the layout of ``dimension_numbers``'s
      output spec.

    Raises:
      TypeError: an argument of the wrong type or dtype.
      ValueError: shapes, group counts, strides, dilations or padding that do
        not fit; the message names the argument and shows its value.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxgrad
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 8, 1)    # N, W, C
      >>> w = jnp.ones((3, 1, 1), dtype=jnp.float32)               # W, I, O
      >>> y = jaxgrad.conv_general_dilated(
      ...     x, w, (2,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))
      >>> y[0, :, 0]
      Array([ 3.,  9., 15.], dtype=float32)
      >>> f = lambda x: jaxgrad.conv_general_dilated(
      ...     x, w, (2,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")).sum()
      >>> jax.grad(f)(x)[0, :, 0]
      Array([1., 1., 2., 1., 2., 1., 1., 0.], dtype=float32)
    """
    # NumPy operands are canonicalised as lax does (float64 becomes float32
    # while x64 is off) before their dtypes are compared.
    lhs, rhs = (jnp.asarray(a) if isinstance(a, (np.ndarray, np.generic))
                and a.dtype.kind in "biufc" else a for a in (lhs, rhs))
    config = _normalise(lhs, rhs, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count, precision, preferred_element_type,
                        out_sharding)
    if not jnp.issubdtype(lhs.dtype, jnp.inexact):
        # Integer and bool convolutions have no gradient: lax's own op, so that
        # differentiating one fails exactly as it does for lax.
        return _lax_conv(lhs, rhs, config)
    return _conv(lhs, rhs, config)


# --------------------------------------------------------------------------
# The op and its VJP.


def _lax_conv(lhs, rhs, config: _Config):
    return lax.conv_general_dilated(
        lhs, rhs, config.window_strides, config.padding,
        lhs_dilation=config.lhs_dilation, rhs_dilation=config.rhs_dilation,
        dimension_numbers=config.dimension_numbers,
        feature_group_count=config.feature_group_count,
        batch_group_count=config.batch_group_count,
        precision=config.precision,
        preferred_element_type=config.preferred_element_type,
        out_sharding=config.out_sharding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(lhs, rhs, config: _Config):
    return _lax_conv(lhs, rhs, config)


def _conv_fwd(lhs, rhs, config):
    # The primal is the custom op itself, so an outer differentiation of this
    # rule sees _conv (and its rules), never lax's convolution.
    return _conv(lhs, rhs, config), (lhs, rhs)


def _conv_bwd(config, residuals, g):
    lhs, rhs = residuals
    return (lhs_cotangent(g, rhs, config, lhs.shape).astype(lhs.dtype),
            rhs_cotangent(lhs, g, config, rhs.shape).astype(rhs.dtype))


_conv.defvjp(_conv_fwd, _conv_bwd)


def lhs_cotangent(g, rhs, config: _Config, lhs_shape: Sequence[int]):
    """x̄ for y = _conv(x, rhs, config), x of shape ``lhs_shape``, ḡ = ``g`` (out layout)."""
    if g.size == 0 or rhs.size == 0 or 0 in lhs_shape:
        # An empty sum (no output, or an empty kernel) or an empty result: lax's
        # convolution cannot express every such case (negative pads larger than
        # the dim), and the answer is zeros.
        return jnp.zeros(lhs_shape, g.dtype)
    lhs_spec, rhs_spec, out_spec = config.dimension_numbers
    groups = config.feature_group_count * config.batch_group_count
    kernel = lax.rev(rhs.astype(g.dtype), tuple(rhs_spec[2:]))
    if groups > 1:
        kernel = _move_group(kernel, rhs_spec[0], rhs_spec[1], groups)
    kernel_spatial = [rhs.shape[i] for i in rhs_spec[2:]]
    padding = lhs_cotangent_padding(
        [lhs_shape[i] for i in lhs_spec[2:]], [g.shape[i] for i in out_spec[2:]],
        kernel_spatial, config)
    numbers = lax.ConvDimensionNumbers(lhs_spec=out_spec, rhs_spec=_swap(rhs_spec),
                                       out_spec=lhs_spec)
    x_bar = _conv(g, kernel, dataclasses.replace(
        config, window_strides=config.lhs_dilation, padding=padding,
        lhs_dilation=config.window_strides, dimension_numbers=numbers,
        feature_group_count=groups, batch_group_count=1,
        out_sharding=_contraction_sharding(g, kernel, numbers, spatial_kept=True)))
    if config.batch_group_count > 1:
        x_bar = _move_group(x_bar, lhs_spec[1], lhs_spec[0], config.batch_group_count)
    return x_bar


def rhs_cotangent(lhs, g, config: _Config, rhs_shape: Sequence[int]):
    """w̄ for y = _conv(lhs, w, config), w of shape ``rhs_shape``, ḡ = ``g`` (out layout)."""
    if g.size == 0 or lhs.size == 0 or 0 in rhs_shape:
        return jnp.zeros(rhs_shape, g.dtype)     # an empty sum or an empty result
    lhs_spec, rhs_spec, out_spec = config.dimension_numbers
    padding = rhs_cotangent_padding(
        [lhs.shape[i] for i in lhs_spec[2:]], [g.shape[i] for i in out_spec[2:]],
        [rhs_shape[i] for i in rhs_spec[2:]], config)
    numbers = lax.ConvDimensionNumbers(lhs_spec=_swap(lhs_spec), rhs_spec=_swap(out_spec),
                                       out_spec=_swap(rhs_spec))
    lhs = lhs.astype(g.dtype)
    return _conv(lhs, g, dataclasses.replace(
        config, window_strides=config.rhs_dilation, padding=padding,
        rhs_dilation=config.window_strides, dimension_numbers=numbers,
        feature_group_count=config.batch_group_count,
        batch_group_count=config.feature_group_count,
        out_sharding=_contraction_sharding(lhs, g, numbers, spatial_kept=False)))


def _contraction_sharding(lhs, rhs, numbers: lax.ConvDimensionNumbers, *,
                          spatial_kept: bool):
    """The result's sharding under explicit mesh axes (None otherwise).

    Output batch and feature dims come from the lhs batch and the rhs output
    features; the lhs features and the rhs input features and taps are summed.
    The output's spatial dims follow the lhs's (``spatial_kept``: a
    convolution's windows) or, for the kernel cotangent, whose spatial dims are
    kernel taps summed over the lhs positions, are whole.
    """
    lhs_spec, rhs_spec, out_spec = numbers
    lhs_entries = jax.typeof(lhs).sharding.spec
    rhs_entries = jax.typeof(rhs).sharding.spec
    lhs_at = lambda i: lhs_entries[i] if i < len(lhs_entries) else None  # noqa: E731
    rhs_at = lambda i: rhs_entries[i] if i < len(rhs_entries) else None  # noqa: E731
    kept = [None] * len(out_spec)
    kept[out_spec[0]] = lhs_at(lhs_spec[0])
    kept[out_spec[1]] = rhs_at(rhs_spec[0])
    summed = [lhs_at(lhs_spec[1]), rhs_at(rhs_spec[1])] + [rhs_at(i) for i in rhs_spec[2:]]
    for out_dim, lhs_dim in zip(out_spec[2:], lhs_spec[2:]):
        if spatial_kept:
            kept[out_dim] = lhs_at(lhs_dim)
        else:
            summed.append(lhs_at(lhs_dim))
    return contraction_sharding(lhs, kept, summed)


def _swap(spec: tuple[int, ...]) -> tuple[int, ...]:
    """Exchange the roles of a spec's first two axes (batch/feature or out/in)."""
    return (spec[1], spec[0]) + tuple(spec[2:])


def _move_group(a, src: int, dst: int, groups: int):
    """Split axis ``src`` into (groups, rest) and merge ``groups`` into axis ``dst`` as its major part."""
    shape = a.shape
    a = a.reshape(shape[:src] + (groups, shape[src] // groups) + shape[src + 1:])
    a = jnp.moveaxis(a, src, dst)      # the group axis now sits right before axis dst
    new = list(shape)
    new[src] //= groups
    new[dst] *= groups
    return a.reshape(new)


# --------------------------------------------------------------------------
# Shape arithmetic (pure, per spatial dim; notation of the module docstring).


def lhs_cotangent_padding(in_spatial, out_spatial, kernel, config: _Config):
    """Pads (K'-1-lo, (I-1)·a - (O-1)·s + lo) of the lhs-cotangent convolution."""
    return tuple(
        (d * (k - 1) - lo, (i - 1) * a - (o - 1) * s + lo)
        for i, o, k, s, a, d, (lo, _) in zip(
            in_spatial, out_spatial, kernel, config.window_strides,
            config.lhs_dilation, config.rhs_dilation, config.padding))


def rhs_cotangent_padding(in_spatial, out_spatial, kernel, config: _Config):
    """Pads (lo, (K'-1) + (O-1)·s - (I-1)·a - lo) of the rhs-cotangent convolution."""
    return tuple(
        (lo, d * (k - 1) + (o - 1) * s - (i - 1) * a - lo)
        for i, o, k, s, a, d, (lo, _) in zip(
            in_spatial, out_spatial, kernel, config.window_strides,
            config.lhs_dilation, config.rhs_dilation, config.padding))


# --------------------------------------------------------------------------
# Argument checking and normalisation: every error names conv_general_dilated
# and the argument, and is raised before lax sees the call.


def _normalise(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count,
               precision, preferred_element_type, out_sharding) -> _Config:
    _check_operands(lhs, rhs)
    numbers = _parse_dimension_numbers(lhs, rhs, dimension_numbers)
    n = lhs.ndim - 2
    strides = _positive_ints("window_strides", window_strides, n)
    lhs_dil = (1,) * n if lhs_dilation is None else _positive_ints("lhs_dilation", lhs_dilation, n)
    rhs_dil = (1,) * n if rhs_dilation is None else _positive_ints("rhs_dilation", rhs_dilation, n)
    _check_groups(lhs, rhs, numbers, feature_group_count, batch_group_count)
    pads = _parse_padding(lhs, rhs, numbers, padding, strides, lhs_dil, rhs_dil)
    return _Config(strides, pads, lhs_dil, rhs_dil, numbers,
                   int(feature_group_count), int(batch_group_count),
                   resolve_precision("conv_general_dilated", precision),
                   _parse_dtype(preferred_element_type),
                   out_sharding)


def _check_operands(lhs, rhs) -> None:
    for name, a in (("lhs", lhs), ("rhs", rhs)):
        dtype = getattr(a, "dtype", None)
        if dtype is None or not hasattr(a, "shape"):
            raise TypeError(f"{_FN}: `{name}` must be an array, got {type(a).__name__}")
        if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
            raise TypeError(f"{_FN}: `{name}` must have a numeric or bool dtype, "
                            f"got {dtype}")
        if a.ndim < 2:
            raise ValueError(f"{_FN}: `{name}` must have rank >= 2 (batch/feature "
                             f"axes and the spatial axes), got shape {tuple(a.shape)}")
    if lhs.ndim != rhs.ndim:
        raise ValueError(f"{_FN}: `lhs` and `rhs` must have the same rank, got shapes "
                         f"{tuple(lhs.shape)} and {tuple(rhs.shape)}")
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"{_FN}: `lhs` and `rhs` must share one dtype, got "
                        f"{lhs.dtype} and {rhs.dtype}")


def _parse_dimension_numbers(lhs, rhs, dimension_numbers) -> lax.ConvDimensionNumbers:
    try:
        numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    except (TypeError, ValueError, AssertionError) as e:
        raise ValueError(f"{_FN}: invalid `dimension_numbers` {dimension_numbers!r} for "
                         f"shapes {tuple(lhs.shape)} and {tuple(rhs.shape)}: {e}") from None
    specs = tuple(tuple(int(i) for i in spec) for spec in numbers)
    for name, spec in zip(("lhs_spec", "rhs_spec", "out_spec"), specs):
        if sorted(spec) != list(range(lhs.ndim)):
            raise ValueError(f"{_FN}: `dimension_numbers` {name} must be a permutation "
                             f"of range({lhs.ndim}), got {spec!r}")
    return lax.ConvDimensionNumbers(*specs)


def _is_sequence(value) -> bool:
    """A list, tuple or 1-D+ numpy array (lax takes all three); not a string."""
    return is_sequence(value) or (isinstance(value, np.ndarray) and value.ndim > 0)


def _positive_ints(name: str, value, n: int) -> tuple[int, ...]:
    if not _is_sequence(value) or len(value) != n:
        raise TypeError(f"{_FN}: `{name}` must be a sequence of {n} ints (one per "
                        f"spatial dim), got {_show(value)}")
    values = tuple(_as_int(_FN, name, v) for v in value)
    if any(v < 1 for v in values):
        raise ValueError(f"{_FN}: `{name}` must be positive, got {values!r}")
    return values


def _show(value) -> str:
    return repr(value.tolist()) if isinstance(value, np.ndarray) else repr(value)


def _check_groups(lhs, rhs, numbers, feature_group_count, batch_group_count) -> None:
    g = _as_int(_FN, "feature_group_count", feature_group_count)
    b = _as_int(_FN, "batch_group_count", batch_group_count)
    for name, v in (("feature_group_count", g), ("batch_group_count", b)):
        if v < 1:
            raise ValueError(f"{_FN}: `{name}` must be positive, got {v!r}")
    if g > 1 and b > 1:
        raise ValueError(f"{_FN}: at most one of `feature_group_count` (={g}) and "
                         f"`batch_group_count` (={b}) may exceed 1")
    batch, features = lhs.shape[numbers.lhs_spec[0]], lhs.shape[numbers.lhs_spec[1]]
    out_features, in_features = rhs.shape[numbers.rhs_spec[0]], rhs.shape[numbers.rhs_spec[1]]
    if features % g:
        raise ValueError(f"{_FN}: `feature_group_count` (={g}) must divide the lhs "
                         f"feature size (={features})")
    if out_features % (g * b):
        name, v = ("feature_group_count", g) if g > 1 else ("batch_group_count", b)
        raise ValueError(f"{_FN}: `{name}` (={v}) must divide the rhs output feature "
                         f"size (={out_features})")
    if batch % b:
        raise ValueError(f"{_FN}: `batch_group_count` (={b}) must divide the lhs batch "
                         f"size (={batch})")
    if in_features * g != features:
        raise ValueError(f"{_FN}: `rhs` input feature size (={in_features}) must be the "
                         f"lhs feature size (={features}) / `feature_group_count` (={g})")


def _parse_padding(lhs, rhs, numbers, padding, strides, lhs_dil, rhs_dil):
    n = lhs.ndim - 2
    if isinstance(padding, str):
        if padding.upper() not in _PAD_STRINGS:
            raise ValueError(f"{_FN}: `padding` must be one of {_PAD_STRINGS} or a "
                             f"sequence of (low, high) pairs, got {padding!r}")
        if any(a != 1 for a in lhs_dil):
            raise ValueError(f"{_FN}: string `padding` {padding!r} needs `lhs_dilation` "
                             f"of ones, got {lhs_dil!r}; give explicit (low, high) pairs")
        spatial = [lhs.shape[i] for i in numbers.lhs_spec[2:]]
        window = [d * (rhs.shape[i] - 1) + 1 for i, d in zip(numbers.rhs_spec[2:], rhs_dil)]
        pads = lax.padtype_to_pads(spatial, window, strides, padding)
        return tuple((int(lo), int(hi)) for lo, hi in pads)
    if not _is_sequence(padding) or len(padding) != n or not all(
            _is_sequence(p) and len(p) == 2 for p in padding):
        raise ValueError(f"{_FN}: `padding` must be a string or a sequence of {n} "
                         f"(low, high) pairs, got {_show(padding)}")
    return tuple((_as_int(_FN, "padding", lo), _as_int(_FN, "padding", hi))
                 for lo, hi in padding)


def _parse_dtype(dtype):
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{_FN}: `preferred_element_type` must be a dtype or None, "
                        f"got {dtype!r}") from None
