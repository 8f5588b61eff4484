"""Hypothesis strategies drawing random VALID configurations of jaxgrad's ops.

One strategy per op family; each draws a small frozen dataclass whose repr
is what hypothesis prints for a failing example:

  conv_configs             conv / conv{1,2,3}d: rank, batch, groups, per-dim
                           stride / dilation, padding (int, tuple, (lo, hi)
                           pairs, 'same', 'valid'), padding_mode, bias
  conv_transpose_configs   conv_transpose*: output_padding < max(stride, dilation)
  grad_configs             jaxgrad.grad.*: one of the four gradient kinds
  max_pool_configs, avg_pool_configs, adaptive_pool_configs
  elementwise_configs, softmax_configs, loss_configs, linear_configs
  interpolate_configs      every mode of its rank, size or scale factor
                           (recomputed or not), align_corners, antialias;
                           uint8=True: torch's fixed-point modes

Shapes stay tiny: every example compiles a program (forward, VJP and second
order), and compiling, not running, is what costs. Validity is computed here
from torch's documented rules, independently of jaxgrad's own checks.

Notation per spatial dim: I input size, K kernel, s stride, d dilation,
K' = d(K-1)+1 the dilated kernel, (lo, hi) padding, O output size.
"""

from __future__ import annotations

import dataclasses

from hypothesis import settings
from hypothesis import strategies as st

MODES = ("zeros", "reflect", "replicate", "circular")
MAX_KERNEL = {1: 3, 2: 3, 3: 2}      # 3-D programs compile slowest: smaller
MAX_DILATION = {1: 3, 2: 3, 3: 2}
MAX_EXTRA = {1: 4, 2: 3, 3: 2}       # input rows beyond the minimum that fits
INPUT_KINDS = ("normal", "ties", "special", "const")   # see test_pool_torch.make_input
seeds = st.integers(0, 2**16)


def fuzz(cost: float) -> settings:
    """Settings with ``cost`` x the loaded profile's ``max_examples`` (at least 1).

    ``cost`` weighs a family's share of the budget: more for cheap programs
    (activations, pooling) and for wide option spaces (convolutions), so
    that the CI profile stays within its time.
    """
    return settings(max_examples=max(1, round(settings.default.max_examples * cost)))


# --------------------------------------------------------------------------
# Arguments as torch takes them.


def torch_arg(draw, values: tuple):
    """One int when all dims agree (half the time), else the tuple itself."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def per_dim(draw, values: st.SearchStrategy, n: int) -> tuple:
    return tuple(draw(values) for _ in range(n))


def batch_shape(draw) -> tuple[int, ...]:
    """() for an unbatched input, else (N,) with N in {1, 2}."""
    return draw(st.sampled_from([(), (1,), (2,)]))


def effective(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


# --------------------------------------------------------------------------
# Convolutions.


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    x_shape: tuple
    w_shape: tuple
    bias: bool
    kwargs: dict
    generic: bool        # jaxgrad.conv rather than conv{n}d


def _conv_padding(draw, n: int, kernel, dilation):
    """(padding as passed, ((lo, hi), ...)); 'same' needs stride 1 (the caller's job)."""
    kind = draw(st.sampled_from(["int", "tuple", "pairs", "same", "valid"]))
    if kind == "same":    # total d(K-1), the odd extra on the high side
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return "same", tuple((t // 2, t - t // 2) for t in totals)
    if kind == "valid":
        return "valid", ((0, 0),) * n
    if kind == "pairs":
        pairs = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3)))
                      for _ in range(n))
        return pairs, pairs
    if kind == "int":
        pad = draw(st.integers(0, 3))
        return pad, ((pad, pad),) * n
    pads = per_dim(draw, st.integers(0, 3), n)
    return pads, tuple((p, p) for p in pads)


def _conv_input_size(draw, n: int, kernel: int, dilation: int, pad, mode: str) -> int:
    """I with I + lo + hi >= K', and torch's F.pad limits for the border modes."""
    lo, hi = pad
    low = max(1, effective(kernel, dilation) - lo - hi)
    if mode == "reflect":      # reflect needs pad < I
        low = max(low, lo + 1, hi + 1)
    elif mode == "circular":   # circular needs pad <= I
        low = max(low, lo, hi)
    return draw(st.integers(low, low + MAX_EXTRA[n]))


@st.composite
def conv_configs(draw, *, padding_modes: bool = True, bias: bool = True):
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))          # 2: channel multiplier
    kernel = per_dim(draw, st.integers(1, MAX_KERNEL[n]), n)
    dilation = per_dim(draw, st.integers(1, MAX_DILATION[n]), n)
    padding, pads = _conv_padding(draw, n, kernel, dilation)
    stride = (1,) * n if padding == "same" else per_dim(draw, st.integers(1, 3), n)
    mode = draw(st.sampled_from(MODES)) if padding_modes else "zeros"
    spatial = tuple(_conv_input_size(draw, n, k, d, p, mode)
                    for k, d, p in zip(kernel, dilation, pads))
    kwargs = dict(stride=torch_arg(draw, stride), padding=padding,
                  dilation=torch_arg(draw, dilation), groups=groups)
    if mode != "zeros" or (padding_modes and draw(st.booleans())):
        kwargs["padding_mode"] = mode
    return ConvConfig(batch_shape(draw) + (c_in,) + spatial,
                      (c_out, c_in // groups) + kernel,
                      bias and draw(st.booleans()), kwargs, draw(st.booleans()))


def _transpose_output_size(i, k, s, p, a, d) -> int:
    return (i - 1) * s - 2 * p + d * (k - 1) + a + 1


@st.composite
def conv_transpose_configs(draw, *, bias: bool = True):
    """Weight (C_in, C_out/G, *K); output_padding a < max(s, d); every O >= 1."""
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out_per_group = draw(st.integers(1, 2))
    kernel = per_dim(draw, st.integers(1, MAX_KERNEL[n]), n)
    stride = per_dim(draw, st.integers(1, 3), n)
    dilation = per_dim(draw, st.integers(1, MAX_DILATION[n]), n)
    extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    spatial = per_dim(draw, st.integers(1, 4 if n < 3 else 3), n)
    # O = T - 2p + 1 with T = (I-1)s + d(K-1) + a: O >= 1 iff p <= T // 2
    padding = tuple(
        draw(st.integers(0, min(3, (_transpose_output_size(i, k, s, 0, a, d) - 1) // 2)))
        for i, k, s, a, d in zip(spatial, kernel, stride, extra, dilation))
    kwargs = dict(stride=torch_arg(draw, stride), padding=torch_arg(draw, padding),
                  output_padding=torch_arg(draw, extra), groups=groups,
                  dilation=torch_arg(draw, dilation))
    return ConvConfig(batch_shape(draw) + (c_in,) + spatial,
                      (c_in, c_out_per_group) + kernel,
                      bias and draw(st.booleans()), kwargs, draw(st.booleans()))


@dataclasses.dataclass(frozen=True)
class GradConfig:
    kind: str            # input, weight, transpose_input, transpose_weight
    conv: ConvConfig


@st.composite
def grad_configs(draw):
    """A jaxgrad.grad function and the convolution it differentiates (no bias)."""
    kind = draw(st.sampled_from(["input", "weight", "transpose_input",
                                 "transpose_weight"]))
    if kind.startswith("transpose"):
        return GradConfig(kind, draw(conv_transpose_configs(bias=False)))
    return GradConfig(kind, draw(conv_configs(padding_modes=False, bias=False)))


# --------------------------------------------------------------------------
# Pooling. torch's output size (Pool.h): O = ⌊(I + 2p - K' + (s-1 if ceil)) / s⌋ + 1,
# minus one with ceil_mode when the last window would start past I + p.


def pool_output_size(i, k, s, p, d, ceil: bool) -> int:
    span = i + 2 * p - effective(k, d)
    out = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= i + p:
        out -= 1
    return out


def windows_reach_input(i, k, s, p, d, out) -> bool:
    """Every window o (rows o·s - p + j·d, j < K) holds at least one input row."""
    return all(any(0 <= o * s - p + j * d < i for j in range(k)) for o in range(out))


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    op: str              # e.g. "max_pool2d", "adaptive_avg_pool3d"
    shape: tuple
    kwargs: dict
    kind: str            # input values, see INPUT_KINDS
    seed: int


def _pool_dims(draw, n: int, *, dilated: bool, default_stride: bool):
    """Per-dim (K, s, p, d); s = K when the stride is left to its default."""
    dims = []
    for _ in range(n):
        k = draw(st.integers(1, MAX_KERNEL[n]))
        s = k if default_stride else draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))             # torch: 2p <= K
        d = draw(st.integers(1, MAX_DILATION[n])) if dilated else 1
        dims.append((k, s, p, d))
    return dims


def _pool_input_sizes(draw, n: int, dims, ceil: bool, *,
                      at_least_kernel: bool = False) -> tuple[int, ...]:
    """Per-dim I with O >= 1 and no window made of padding only.

    A window of only padding (a dilated kernel skipping a tiny input) is a
    deliberate deviation: torch's max pooling returns -inf there with an
    out-of-range index, jaxgrad raises. Such sizes are never drawn.
    ``at_least_kernel``: I >= K, for torch's avg_pool3d alone (see there).
    """
    sizes = []
    for k, s, p, d in dims:
        low = k if at_least_kernel else 1
        fits = [i for i in range(low, effective(k, d) + MAX_EXTRA[n] + 1)
                if (out := pool_output_size(i, k, s, p, d, ceil)) >= 1
                and windows_reach_input(i, k, s, p, d, out)]
        sizes.append(draw(st.sampled_from(fits)))
    return tuple(sizes)


def _pool_config(draw, op: str, spatial, kwargs) -> PoolConfig:
    shape = batch_shape(draw) + (draw(st.integers(1, 2)),) + spatial
    return PoolConfig(op, shape, kwargs, draw(st.sampled_from(INPUT_KINDS)), draw(seeds))


def _window_kwargs(draw, dims, default_stride: bool) -> dict:
    kernel, stride, padding, _ = zip(*dims)
    return dict(kernel_size=torch_arg(draw, kernel),
                stride=None if default_stride else torch_arg(draw, stride),
                padding=torch_arg(draw, padding))


@st.composite
def max_pool_configs(draw):
    n = draw(st.integers(1, 3))
    default_stride, ceil = draw(st.booleans()), draw(st.booleans())
    dims = _pool_dims(draw, n, dilated=True, default_stride=default_stride)
    spatial = _pool_input_sizes(draw, n, dims, ceil)
    kwargs = _window_kwargs(draw, dims, default_stride)
    kwargs.update(dilation=torch_arg(draw, tuple(d for *_, d in dims)), ceil_mode=ceil)
    return _pool_config(draw, f"max_pool{n}d", spatial, kwargs)


@st.composite
def avg_pool_configs(draw):
    n = draw(st.integers(1, 3))
    default_stride, ceil = draw(st.booleans()), draw(st.booleans())
    dims = _pool_dims(draw, n, dilated=False, default_stride=default_stride)
    # torch's avg_pool3d (only) rejects an input smaller than the kernel even
    # when the padding makes room ("input image ... smaller than kernel
    # size"); jaxgrad takes it, like torch's avg_pool1d / 2d and max_pool3d.
    spatial = _pool_input_sizes(draw, n, dims, ceil, at_least_kernel=n == 3)
    kwargs = _window_kwargs(draw, dims, default_stride)
    kwargs.update(ceil_mode=ceil, count_include_pad=draw(st.booleans()))
    if n > 1:                      # torch's avg_pool1d has no divisor_override
        kwargs["divisor_override"] = draw(st.one_of(
            st.none(), st.integers(-3, 7).filter(bool)))
    return _pool_config(draw, f"avg_pool{n}d", spatial, kwargs)


@st.composite
def adaptive_pool_configs(draw):
    """output_size per dim in [1, I + 2] (bins overlap when O does not divide I).

    ``None`` entries (keep that dim) for 2-D and 3-D, as torch allows.
    """
    n = draw(st.integers(1, 3))
    spatial = per_dim(draw, st.integers(1, 7 if n < 3 else 4), n)
    out = tuple(draw(st.integers(1, i + 2)) for i in spatial)
    if n > 1:
        out = tuple(None if draw(st.integers(0, 4)) == 0 else o for o in out)
    kind = draw(st.sampled_from(["max", "avg"]))
    return _pool_config(draw, f"adaptive_{kind}_pool{n}d", spatial,
                        dict(output_size=out if None in out else torch_arg(draw, out)))


# --------------------------------------------------------------------------
# Activations, losses and linear.


@dataclasses.dataclass(frozen=True)
class ValueConfig:
    """An op with keyword arguments, applied to inputs of ``shape`` of one kind."""
    op: str
    shape: tuple
    kwargs: dict
    kind: str            # see test_fuzz_torch.value_input
    seed: int


def small_shapes(min_rank: int = 0, max_rank: int = 4, max_side: int = 4):
    return st.integers(min_rank, max_rank).flatmap(
        lambda r: st.tuples(*[st.integers(1, max_side)] * r))


@st.composite
def elementwise_configs(draw):
    op = draw(st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu",
                               "mish", "softplus", "logsigmoid", "hardsigmoid",
                               "hardswish", "elu", "celu", "selu"]))
    kwargs = {}
    if op == "leaky_relu":
        kwargs["negative_slope"] = draw(st.one_of(
            st.just(0.01), st.floats(-2.0, 2.0, allow_subnormal=False)))
    elif op == "gelu":
        kwargs["approximate"] = draw(st.sampled_from(["none", "tanh"]))
    elif op == "softplus":
        kwargs["beta"] = draw(st.sampled_from([1.0, 2.0, 0.5, -1.0, 3]))
        kwargs["threshold"] = draw(st.sampled_from([20.0, 1.0, 0.2, 5]))
    elif op in ("elu", "celu"):
        kwargs["alpha"] = draw(st.one_of(st.just(1.0), st.sampled_from([0.5, -0.7, 2.0])))
    return ValueConfig(op, draw(small_shapes()), kwargs,
                       draw(st.sampled_from(["normal", "wide", "ties"])), draw(seeds))


@st.composite
def softmax_configs(draw):
    shape = draw(small_shapes())
    rank = max(len(shape), 1)                  # a 0-d input takes dim 0 or -1
    return ValueConfig(draw(st.sampled_from(["softmax", "log_softmax"])), shape,
                       dict(dim=draw(st.integers(-rank, rank - 1))),
                       draw(st.sampled_from(["normal", "wide", "offset", "ties"])),
                       draw(seeds))


@dataclasses.dataclass(frozen=True)
class LossConfig:
    op: str              # mse_loss, nll_loss, cross_entropy, cross_entropy_prob
    shape: tuple         # input (N, C, *d) or unbatched (C,); any shape for mse
    weight: bool
    ignore_index: int
    ignored: float       # fraction of index targets set to ignore_index
    label_smoothing: float
    seed: int


def _classified_shape(draw) -> tuple[int, ...]:
    classes = draw(st.integers(1, 5))
    if draw(st.integers(0, 3)) == 0:
        return (classes,)
    return (draw(st.integers(1, 4)), classes) + draw(small_shapes(0, 2, 3))


@st.composite
def loss_configs(draw):
    """Index targets are valid classes or ignore_index.

    Out-of-range class indices are a deliberate deviation (torch raises at
    run time, jaxgrad cannot see values at trace time and gives NaN): never drawn.
    """
    op = draw(st.sampled_from(["mse_loss", "nll_loss", "cross_entropy",
                               "cross_entropy_prob"]))
    if op == "mse_loss":
        return LossConfig(op, draw(small_shapes(0, 3)), False, -100, 0.0, 0.0,
                          draw(seeds))
    shape = _classified_shape(draw)
    classes = shape[0] if len(shape) == 1 else shape[1]
    ignore_index = draw(st.sampled_from([-100, draw(st.integers(0, classes - 1)),
                                         draw(st.integers(-5, 9))]))
    smoothing = 0.0
    if op != "nll_loss" and draw(st.booleans()):
        smoothing = draw(st.sampled_from([1.0, draw(st.floats(0.0, 1.0))]))
    return LossConfig(op, shape, draw(st.booleans()), ignore_index,
                      draw(st.sampled_from([0.0, 0.3, 1.0])), smoothing, draw(seeds))


@dataclasses.dataclass(frozen=True)
class LinearConfig:
    x_shape: tuple       # (*, in_features)
    w_shape: tuple       # (out_features, in_features)
    bias: bool
    seed: int


@st.composite
def linear_configs(draw):
    in_features, out_features = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return LinearConfig(draw(small_shapes(0, 3, 3)) + (in_features,),
                        (out_features, in_features), draw(st.booleans()), draw(seeds))


# --------------------------------------------------------------------------
# interpolate: every mode of every rank, sizes and scale factors, anti-aliasing.

_INTERPOLATE_MODES = {1: ("nearest", "nearest-exact", "linear", "area"),
                      2: ("nearest", "nearest-exact", "bilinear", "bicubic", "lanczos",
                          "area"),
                      3: ("nearest", "nearest-exact", "trilinear", "area")}
_SCALES = (0.3, 0.5, 0.6, 1.0, 1.05, 1.7, 2.0, 2.5)


@dataclasses.dataclass(frozen=True)
class InterpolateConfig:
    shape: tuple         # (N, C, *spatial)
    kwargs: dict
    out_spatial: tuple   # ⌊I·scale⌋ or the size
    seed: int


def interpolate_output(spatial, kwargs) -> tuple:
    size, scale = kwargs.get("size"), kwargs.get("scale_factor")
    if size is not None:
        return tuple(size) if isinstance(size, tuple) else (size,) * len(spatial)
    scale = scale if isinstance(scale, tuple) else (scale,) * len(spatial)
    return tuple(int(i * s) for i, s in zip(spatial, scale))


def _at_least_one_output(size: int, scale: float) -> int:
    """``size``, grown until ⌊size·scale⌋ >= 1."""
    while int(size * scale) < 1:
        size += 1
    return size


@st.composite
def interpolate_configs(draw, *, uint8: bool = False):
    """A valid ``F.interpolate`` call. ``uint8``: the modes torch computes on
    uint8 beyond the nearest ones (bilinear, bicubic, lanczos), with up to 6
    channels (torch's vectorised kernel takes at most 4, its generic one more)."""
    n = 2 if uint8 else draw(st.integers(1, 3))
    modes = ("bilinear", "bicubic", "lanczos") if uint8 else _INTERPOLATE_MODES[n]
    mode = draw(st.sampled_from(modes))
    kwargs = {"mode": mode}
    if mode in ("bilinear", "bicubic"):
        kwargs["antialias"] = draw(st.booleans())
    elif mode == "lanczos":
        kwargs["antialias"] = True
    if mode in ("linear", "bilinear", "bicubic", "trilinear"):
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    spatial = per_dim(draw, st.integers(1, 9), n)
    if draw(st.booleans()):
        kwargs["size"] = torch_arg(draw, per_dim(draw, st.integers(1, 12), n))
    else:
        scales = per_dim(draw, st.sampled_from(_SCALES), n)
        spatial = tuple(_at_least_one_output(i, s) for i, s in zip(spatial, scales))
        kwargs["scale_factor"] = scales[0] if len(set(scales)) == 1 and draw(
            st.booleans()) else scales
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    shape = (draw(st.sampled_from([1, 2])), draw(st.integers(1, 6 if uint8 else 3))) + spatial
    return InterpolateConfig(shape, kwargs, interpolate_output(spatial, kwargs), draw(seeds))
