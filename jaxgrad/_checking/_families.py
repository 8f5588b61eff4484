"""The cases of ``jaxgrad check``, registered by op family.

``FAMILIES`` maps a family key (``--families KEY``) to a :class:`Family`: a
one-line description (shown by ``--help`` and ``--list``), the public names it
needs (``requires``; a family whose ops are absent from ``jaxgrad`` is left
out) and a function building its cases. To add a family:

  1. write ``def _my_cases() -> list[Case]`` below, one :func:`case` per
     configuration (small shapes: every case compiles one program), each with
     a torch reference and, where a plain jnp/lax formula is short, a lax one;
  2. add ``"my": Family("...", _my_cases, requires=("my_op",))`` to FAMILIES.

References take the inputs and constants by the names the case gives them.
torch is imported only when a torch reference runs (``_torch()``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxgrad

from .._conv._spec import parse_padding
from . import _reference
from ._check import Case

HIGHEST = lax.Precision.HIGHEST


def _torch():
    """torch.nn.functional, imported when a torch reference runs."""
    import torch.nn.functional as F
    return F


def case(family: str, name: str, ours, *, torch=None, lax=None, constants=None,
         draw: str = "normal", second_order: bool = True, **inputs) -> Case:
    """A :class:`Case`; ``inputs`` are the differentiated arrays' shapes, by name."""
    return Case(name, family, tuple((k, tuple(v)) for k, v in inputs.items()), ours,
                lax, torch, constants, draw, second_order)


@dataclasses.dataclass(frozen=True)
class Family:
    """A group of cases: what it covers, which public names it needs, its cases."""

    description: str
    build: Callable[[], list[Case]]
    requires: tuple[str, ...] = ()

    def available(self) -> bool:
        return all(hasattr(jaxgrad, name) for name in self.requires)


# --------------------------------------------------------------------------
# conv: convolutions, transposed convolutions, jaxgrad.grad.*, conv_general_dilated.


def _per_dim(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _conv(name, x, w, bias=True, **kwargs) -> Case:
    """``jaxgrad.conv`` (rank from the weight) with torch's keyword arguments."""
    n = len(w) - 2
    stride, dilation = _per_dim(kwargs.get("stride", 1), n), _per_dim(
        kwargs.get("dilation", 1), n)
    groups, mode = kwargs.get("groups", 1), kwargs.get("padding_mode", "zeros")
    pads = parse_padding("check", kwargs.get("padding", 0), n, w[2:], stride, dilation)
    unbatched = len(x) == n + 1

    def lax_ref(input, weight, bias=None):
        x = input[None] if unbatched else input
        y = _reference.lax_conv(x, weight, bias, stride, pads, dilation, groups, mode)
        return y[0] if unbatched else y

    def torch_ref(input, weight, bias=None):
        return _reference.torch_conv(input, weight, bias, kwargs.get("stride", 1),
                                     kwargs.get("padding", 0), kwargs.get("dilation", 1),
                                     groups, mode)

    shapes = dict(input=x, weight=w) | ({"bias": (w[0],)} if bias else {})
    return case("conv", name, lambda **a: jaxgrad.conv(**a, **kwargs), lax=lax_ref,
                torch=torch_ref, **shapes)


def _conv_transpose(name, x, w, bias=True, **kwargs) -> Case:
    n = len(w) - 2
    opts = {k: _per_dim(kwargs.get(k, d), n) for k, d in
            (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1))}
    groups = kwargs.get("groups", 1)

    def lax_ref(input, weight, bias=None):
        return _reference.lax_conv_transpose(input, weight, bias, opts["stride"],
                                             opts["padding"], opts["output_padding"],
                                             groups, opts["dilation"])

    def torch_ref(input, weight, bias=None):
        return _reference.torch_conv_transpose(
            input, weight, bias, opts["stride"], opts["padding"],
            opts["output_padding"], groups, opts["dilation"])

    shapes = dict(input=x, weight=w) | ({"bias": (w[1] * groups,)} if bias else {})
    return case("conv", name, lambda **a: jaxgrad.conv_transpose(**a, **kwargs),
                lax=lax_ref, torch=torch_ref, **shapes)


def _conv_grad_cases() -> list[Case]:
    """``jaxgrad.grad.*`` and ``conv_general_dilated`` as ops of their own."""
    x_shape, w_shape, g_shape = (2, 4, 7, 6), (6, 2, 3, 3), (2, 6, 4, 3)
    opts = dict(stride=2, padding=1, groups=2)
    pads, stride, dil = ((1, 1), (1, 1)), (2, 2), (1, 1)

    def lax_conv(x, w):
        return _reference.lax_conv(x, w, None, stride, pads, dil, 2)

    def torch_grad():
        import torch
        return torch.nn.grad

    def general_lax(lhs, rhs):
        return lax.conv_general_dilated(lhs, rhs, (2, 1), ((1, 0), (2, 2)),
                                        rhs_dilation=(1, 2), feature_group_count=2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=HIGHEST)

    def general_torch(lhs, rhs):
        x = _torch().pad(lhs.permute(0, 3, 1, 2), (2, 2, 1, 0))
        y = _torch().conv2d(x, rhs.permute(3, 2, 0, 1), stride=(2, 1), dilation=(1, 2),
                            groups=2)
        return y.permute(0, 2, 3, 1)

    return [
        case("conv", "grad.conv2d_input s2 p1 groups=2",
             lambda weight, grad_output: jaxgrad.grad.conv2d_input(
                 x_shape, weight, grad_output, **opts),
             lax=lambda weight, grad_output: jax.vjp(
                 lambda x: lax_conv(x, weight), jnp.zeros(x_shape, weight.dtype))[1](
                 grad_output)[0],
             torch=lambda weight, grad_output: torch_grad().conv2d_input(
                 x_shape, weight, grad_output, **opts),
             weight=w_shape, grad_output=g_shape),
        case("conv", "grad.conv2d_weight s2 p1 groups=2",
             lambda input, grad_output: jaxgrad.grad.conv2d_weight(
                 input, w_shape, grad_output, **opts),
             lax=lambda input, grad_output: jax.vjp(
                 lambda w: lax_conv(input, w), jnp.zeros(w_shape, input.dtype))[1](
                 grad_output)[0],
             torch=lambda input, grad_output: torch_grad().conv2d_weight(
                 input, w_shape, grad_output, **opts),
             input=x_shape, grad_output=g_shape),
        case("conv", "conv_general_dilated NHWC groups d2",
             lambda lhs, rhs: jaxgrad.conv_general_dilated(
                 lhs, rhs, (2, 1), ((1, 0), (2, 2)), rhs_dilation=(1, 2),
                 feature_group_count=2, dimension_numbers=("NHWC", "HWIO", "NHWC")),
             lax=general_lax, torch=general_torch, lhs=(2, 6, 7, 4), rhs=(3, 2, 2, 4)),
    ]


def _conv_cases() -> list[Case]:
    c, t = _conv, _conv_transpose
    return [
        c("conv1d k3 p1", (2, 3, 9), (4, 3, 3), padding=1),
        c("conv1d k4 s3 leftover", (2, 2, 11), (3, 2, 4), stride=3),
        c("conv1d same even k d2", (1, 2, 8), (2, 2, 4), padding="same", dilation=2),
        c("conv1d dilated wavenet d4", (1, 4, 16), (4, 4, 2), dilation=4),
        c("conv2d 3x3 s1 p1", (2, 4, 8, 8), (6, 4, 3, 3), padding=1),
        c("conv2d 3x3 s2 p1 leftover", (2, 3, 8, 7), (4, 3, 3, 3), stride=2, padding=1),
        c("conv2d per-dim stride (1,3)", (1, 2, 7, 9), (3, 2, 2, 3), stride=(1, 3)),
        c("conv2d asymmetric pads", (2, 2, 6, 6), (2, 2, 3, 3), padding=((0, 2), (1, 0))),
        c("conv2d valid no bias", (2, 3, 6, 5), (2, 3, 2, 2), bias=False, padding="valid"),
        c("conv2d groups=2", (2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2),
        c("conv2d depthwise", (2, 4, 7, 7), (4, 1, 3, 3), padding=1, groups=4),
        c("conv2d depthwise x2 s2", (1, 3, 8, 8), (6, 1, 3, 3), stride=2, groups=3),
        c("conv2d stride > kernel", (2, 2, 9, 10), (3, 2, 2, 2), stride=(4, 3)),
        c("conv2d dilation 2 same", (1, 2, 8, 8), (2, 2, 3, 3), padding="same",
          dilation=2),
        c("conv2d 1x1", (2, 5, 4, 4), (3, 5, 1, 1)),
        c("conv2d reflect", (2, 2, 6, 6), (3, 2, 3, 3), padding=1, padding_mode="reflect"),
        c("conv2d replicate s2", (1, 2, 7, 6), (2, 2, 3, 3), stride=2, padding=2,
          padding_mode="replicate"),
        c("conv2d circular same", (1, 2, 5, 6), (2, 2, 4, 3), padding="same",
          padding_mode="circular"),
        c("conv3d 3x3x3 p1", (1, 2, 5, 5, 5), (3, 2, 3, 3, 3), padding=1),
        c("conv3d s2 groups", (2, 4, 5, 6, 4), (4, 2, 2, 3, 2), stride=2, groups=2),
        c("conv2d unbatched", (3, 6, 6), (2, 3, 3, 3), padding=1),
        t("conv_transpose1d s2 op1", (2, 3, 5), (3, 2, 3), stride=2, padding=1,
          output_padding=1),
        t("conv_transpose2d 4x4 s2 decoder", (2, 4, 4, 4), (4, 3, 4, 4), stride=2,
          padding=1),
        t("conv_transpose2d 2x2 s2", (1, 3, 5, 4), (3, 2, 2, 2), stride=2),
        t("conv_transpose2d groups d2", (2, 4, 4, 5), (4, 1, 3, 3), stride=(2, 1),
          padding=1, groups=2, dilation=2),
        t("conv_transpose1d op>=s via d3", (1, 2, 4), (2, 2, 3), output_padding=2,
          dilation=3),
        t("conv_transpose3d s2", (1, 2, 3, 3, 3), (2, 2, 3, 3, 3), stride=2, padding=1,
          output_padding=1),
        *_conv_grad_cases(),
    ]


# --------------------------------------------------------------------------
# pool: max, average and adaptive pooling, 1-D to 3-D.


def _reduce_window(x, init, op, kernel, stride, padding):
    n = len(kernel)
    return lax.reduce_window(x, init, op, (1, 1) + kernel, (1, 1) + stride,
                             ((0, 0), (0, 0)) + tuple((p, p) for p in padding[-n:]))


def _lax_max_pool(kernel, stride, padding):
    """Max pooling as ``lax.reduce_window`` (no dilation, no ceil_mode)."""
    return lambda input: _reduce_window(input, -jnp.inf, lax.max, kernel, stride,
                                        padding)


def _lax_avg_pool(kernel, stride, padding):
    """torch's default average pooling: zero padding counted in the divisor."""
    return lambda input: _reduce_window(input, 0.0, lax.add, kernel, stride,
                                        padding) / math.prod(kernel)


def _lax_adaptive(reduce, out):
    """Adaptive pooling over torch's bins [⌊o·I/O⌋, ⌈(o+1)·I/O⌉), bin by bin."""
    def pool(input):
        spatial = input.shape[2:]
        bins = [[(o * i // k, -(-(o + 1) * i // k)) for o in range(k)]
                for i, k in zip(spatial, out)]
        values = [reduce(input[(..., *(slice(a, b) for a, b in cell))],
                         axis=tuple(range(2, 2 + len(out))))
                  for cell in itertools.product(*bins)]
        return jnp.stack(values, axis=-1).reshape(input.shape[:2] + tuple(out))
    return pool


def _pool(name, op, shape, args: dict, lax_ref=None, second_order=True) -> Case:
    """``jaxgrad.<op>(input, **args)`` against ``F.<op>`` (and ``lax_ref``)."""
    ours = getattr(jaxgrad, op)
    distinct = "max" in op
    return case("pool", name, lambda input: ours(input, **args), lax=lax_ref,
                torch=lambda input: getattr(_torch(), op)(input, **args),
                draw="distinct" if distinct else "normal", second_order=second_order,
                input=shape)


def _pool_cases() -> list[Case]:
    p = _pool
    return [
        p("max_pool1d k3 s2 p1", "max_pool1d", (2, 3, 9),
          dict(kernel_size=3, stride=2, padding=1), _lax_max_pool((3,), (2,), (1,))),
        p("max_pool2d k3 s2 p1", "max_pool2d", (2, 2, 7, 6),
          dict(kernel_size=3, stride=2, padding=1), _lax_max_pool((3, 3), (2, 2), (1, 1))),
        p("max_pool2d k2 d2 ceil", "max_pool2d", (1, 3, 7, 8),
          dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True)),
        p("max_pool2d overlapping (3,2) s1", "max_pool2d", (2, 2, 5, 5),
          dict(kernel_size=(3, 2), stride=1)),
        p("max_pool3d k2", "max_pool3d", (1, 2, 4, 4, 4), dict(kernel_size=2),
          _lax_max_pool((2, 2, 2), (2, 2, 2), (0, 0, 0))),
        p("avg_pool1d k3 s2 p1", "avg_pool1d", (2, 3, 9),
          dict(kernel_size=3, stride=2, padding=1), _lax_avg_pool((3,), (2,), (1,))),
        p("avg_pool2d k3 s2 ceil exclude pad", "avg_pool2d", (2, 2, 8, 7),
          dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
               count_include_pad=False)),
        p("avg_pool2d divisor_override", "avg_pool2d", (1, 2, 6, 6),
          dict(kernel_size=2, divisor_override=3)),
        p("avg_pool3d k2 s1", "avg_pool3d", (1, 2, 4, 4, 3), dict(kernel_size=2, stride=1),
          _lax_avg_pool((2, 2, 2), (1, 1, 1), (0, 0, 0))),
        p("adaptive_max_pool1d 7->3", "adaptive_max_pool1d", (2, 3, 7),
          dict(output_size=3), _lax_adaptive(jnp.max, (3,))),
        p("adaptive_max_pool2d 5x6->(3,4)", "adaptive_max_pool2d", (1, 2, 5, 6),
          dict(output_size=(3, 4)), _lax_adaptive(jnp.max, (3, 4))),
        p("adaptive_max_pool3d 4x5x3->2", "adaptive_max_pool3d", (1, 2, 4, 5, 3),
          dict(output_size=2)),
        p("adaptive_avg_pool1d 7->3", "adaptive_avg_pool1d", (2, 3, 7),
          dict(output_size=3), _lax_adaptive(jnp.mean, (3,))),
        p("adaptive_avg_pool2d 5x6->(3,4)", "adaptive_avg_pool2d", (1, 2, 5, 6),
          dict(output_size=(3, 4)), _lax_adaptive(jnp.mean, (3, 4))),
        p("adaptive_avg_pool3d 4x5x3->2", "adaptive_avg_pool3d", (1, 2, 4, 5, 3),
          dict(output_size=2)),
    ]


# --------------------------------------------------------------------------
# linear.


def _lax_linear(input, weight, bias=None):
    y = jnp.matmul(input, weight.T, precision=HIGHEST)
    return y if bias is None else y + bias


def _linear_cases() -> list[Case]:
    def linear(name, **shapes):
        return case("linear", name, jaxgrad.linear, lax=_lax_linear,
                    torch=lambda **a: _torch().linear(**a), **shapes)

    return [
        linear("linear (4,5)->3 bias", input=(4, 5), weight=(3, 5), bias=(3,)),
        linear("linear leading dims (2,3,5)->4", input=(2, 3, 5), weight=(4, 5)),
        linear("linear 1-D input bias", input=(6,), weight=(2, 6), bias=(2,)),
    ]


# --------------------------------------------------------------------------
# activation: elementwise nonlinearities.


def _lax_gelu(approximate):
    def gelu(input):
        if approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input ** 3)
            return 0.5 * input * (1 + jnp.tanh(inner))
        return 0.5 * input * jax.scipy.special.erfc(-input / math.sqrt(2))
    return gelu


def _activation_cases() -> list[Case]:
    shape = (3, 4, 5)

    def act(name, ours, lax_ref, torch_name, **kwargs):
        return case("activation", name, lambda input: ours(input, **kwargs), lax=lax_ref,
                    torch=lambda input: getattr(_torch(), torch_name)(input, **kwargs),
                    input=shape)

    return [
        act("relu", jaxgrad.relu, lambda input: jnp.where(input > 0, input, 0.0), "relu"),
        act("leaky_relu slope 0.2", jaxgrad.leaky_relu,
            lambda input: jnp.where(input > 0, input, 0.2 * input), "leaky_relu",
            negative_slope=0.2),
        act("sigmoid", jaxgrad.sigmoid, lambda input: jax.nn.sigmoid(input), "sigmoid"),
        act("tanh", jaxgrad.tanh, lambda input: jnp.tanh(input), "tanh"),
        act("gelu exact", jaxgrad.gelu, _lax_gelu("none"), "gelu"),
        act("gelu tanh", jaxgrad.gelu, _lax_gelu("tanh"), "gelu", approximate="tanh"),
        *_clamp_cases(),
        *_newer_activation_cases(shape),
    ]


def _newer_activation_cases(shape) -> list[Case]:
    """silu, mish, softplus, logsigmoid, hardswish, hardsigmoid and the elu
    family, against plain jnp formulas and torch; inputs spread over [-8, 8]
    so that the clamps and the softplus switch are reached."""
    if not hasattr(jaxgrad, "silu"):
        return []

    def act(name, ours, lax_ref, torch_name, second_order=True, **kwargs):
        return case("activation", name, lambda input: ours(input, **kwargs), lax=lax_ref,
                    torch=lambda input: getattr(_torch(), torch_name)(input, **kwargs),
                    draw="wide", second_order=second_order, input=shape)

    def elu(a, c, s):
        return lambda input: jnp.where(input > 0, c * input, a * jnp.expm1(s * input))

    def clamp6(input):
        return jnp.clip(input + 3, 0, 6)

    lam, alpha = 1.0507009873554805, 1.6732632423543772
    return [
        act("silu", jaxgrad.silu, lambda input: input * jax.nn.sigmoid(input), "silu"),
        act("mish", jaxgrad.mish,
            lambda input: input * jnp.tanh(jnp.logaddexp(input, 0.0)), "mish"),
        act("softplus beta 2 threshold 6", jaxgrad.softplus,
            lambda input: jnp.where(2 * input > 6, input, jnp.logaddexp(2 * input, 0.0) / 2),
            "softplus", beta=2.0, threshold=6.0),
        act("logsigmoid", jaxgrad.logsigmoid, lambda input: jax.nn.log_sigmoid(input),
            "logsigmoid"),
        act("hardswish", jaxgrad.hardswish, lambda input: input * clamp6(input) / 6,
            "hardswish"),
        # torch only: its gradient is a float32 1/6 in every dtype (a plain
        # formula's 1/6 differs by 3e-8), and it does not differentiate twice
        act("hardsigmoid", jaxgrad.hardsigmoid, None, "hardsigmoid", second_order=False),
        act("elu alpha 0.5", jaxgrad.elu, elu(0.5, 1.0, 1.0), "elu", alpha=0.5),
        act("celu alpha 2", jaxgrad.celu, elu(2.0, 1.0, 0.5), "celu", alpha=2.0),
        act("selu", jaxgrad.selu, elu(lam * alpha, lam, 1.0), "selu"),
    ]


def _lax_clamp(lo, hi):
    """clip(x, lo, hi) with torch's gradient: 1 strictly inside, 0 on and past the
    bounds (jnp.clip gives 0.5 at a bound, which a rounded input can hit)."""
    def clamp(input):
        inside = (input > lo) & (input < hi)
        return jnp.where(inside, input, lax.stop_gradient(jnp.clip(input, lo, hi)))
    return clamp


def _clamp_cases() -> list[Case]:
    """relu6 and hardtanh, where jaxgrad has them; inputs spread over [-8, 8]."""
    cases = []
    if hasattr(jaxgrad, "relu6"):
        cases.append(case("activation", "relu6", lambda input: jaxgrad.relu6(input),
                          lax=_lax_clamp(0.0, 6.0),
                          torch=lambda input: _torch().relu6(input), draw="wide",
                          input=(3, 4, 5)))
    if hasattr(jaxgrad, "hardtanh"):
        cases.append(case("activation", "hardtanh (-0.5, 2)",
                          lambda input: jaxgrad.hardtanh(input, -0.5, 2.0),
                          lax=_lax_clamp(-0.5, 2.0),
                          torch=lambda input: _torch().hardtanh(input, -0.5, 2.0),
                          input=(3, 4, 5)))
    return cases


# --------------------------------------------------------------------------
# softmax: softmax and log_softmax along a dim.


def _softmax_cases() -> list[Case]:
    def along(name, op, dim, shape):
        ref = {"softmax": jax.nn.softmax, "log_softmax": jax.nn.log_softmax}[op]
        return case("softmax", name, lambda input: getattr(jaxgrad, op)(input, dim),
                    lax=lambda input: ref(input, axis=dim),
                    torch=lambda input: getattr(_torch(), op)(input, dim), input=shape)

    return [
        along("softmax dim=1", "softmax", 1, (3, 5, 2)),
        along("softmax dim=-1", "softmax", -1, (2, 3, 6)),
        along("log_softmax dim=1", "log_softmax", 1, (3, 5, 2)),
        along("log_softmax dim=0 1-D", "log_softmax", 0, (7,)),
    ]


# --------------------------------------------------------------------------
# loss: mse_loss, l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy(_with_logits),
# kl_div, nll_loss, cross_entropy (class indices and probabilities).


def _reduce(loss, reduction, denominator=None):
    if reduction == "none":
        return loss
    total = jnp.sum(loss)
    if reduction == "sum":
        return total
    return total / (loss.size if denominator is None else denominator)


def _lax_nll(reduction, ignore_index=-100):
    """-w[t]·x[n, t, ...], "mean" over the summed weight of non-ignored targets."""
    def nll(input, target, weight=None):
        w = jnp.ones(input.shape[1], input.dtype) if weight is None else weight
        keep = target != ignore_index
        t = jnp.where(keep, target, 0)
        picked = jnp.take_along_axis(input, t[:, None], axis=1)[:, 0]
        wt = jnp.where(keep, w[t], 0.0)
        return _reduce(-wt * picked, reduction, jnp.sum(wt))
    return nll


def _indices(shape, classes, ignore=None):
    """Class-index constants: ``rng -> {"target": ints in [0, classes)}``, with
    every third position set to ``ignore`` if given."""
    def draw(rng):
        t = rng.integers(0, classes, shape)
        if ignore is not None:
            t.reshape(-1)[::3] = ignore
        return {"target": t}
    return draw


def _with(draw, **extra):
    """``draw`` plus float constants of the given shapes (standard normal)."""
    def both(rng):
        return draw(rng) | {k: np.abs(rng.standard_normal(s)) + 0.5
                            for k, s in extra.items()}
    return both


def _lax_huber(d, delta):
    return jnp.where(jnp.abs(d) < delta, 0.5 * d * d, delta * (jnp.abs(d) - 0.5 * delta))


def _loss_cases() -> list[Case]:
    F = _torch
    mse = [
        case("loss", f"mse_loss reduction={r}",
             lambda input, target, r=r: jaxgrad.mse_loss(input, target, reduction=r),
             lax=lambda input, target, r=r: _reduce((input - target) ** 2, r),
             torch=lambda input, target, r=r: F().mse_loss(input, target, reduction=r),
             input=(3, 4), target=(3, 4))
        for r in ("mean", "sum", "none")]
    if hasattr(jaxgrad, "huber_loss"):
        mse += [
            case("loss", "l1_loss",
                 lambda input, target: jaxgrad.l1_loss(input, target),
                 lax=lambda input, target: jnp.mean(jnp.abs(input - target)),
                 torch=lambda input, target: F().l1_loss(input, target),
                 input=(3, 4), target=(3, 4)),
            case("loss", "smooth_l1_loss beta=0.5 sum",
                 lambda input, target: jaxgrad.smooth_l1_loss(input, target, reduction="sum",
                                                              beta=0.5),
                 lax=lambda input, target: jnp.sum(_lax_huber(input - target, 0.5)) / 0.5,
                 torch=lambda input, target: F().smooth_l1_loss(input, target,
                                                                reduction="sum", beta=0.5),
                 input=(3, 4), target=(3, 4)),
            case("loss", "mse_loss weight",
                 lambda input, target, weight: jaxgrad.mse_loss(input, target, weight=weight),
                 lax=lambda input, target, weight: (jnp.sum(weight * (input - target) ** 2)
                                                    / jnp.sum(weight)),
                 torch=lambda input, target, weight: F().mse_loss(input, target,
                                                                  weight=weight),
                 draw="unit", input=(3, 4), target=(3, 4), weight=(3, 4)),
            case("loss", "huber_loss delta=0.5 none",
                 lambda input, target: jaxgrad.huber_loss(input, target, "none", 0.5),
                 lax=lambda input, target: _lax_huber(input - target, 0.5),
                 torch=lambda input, target: F().huber_loss(input, target, "none", 0.5),
                 input=(3, 4), target=(3, 4)),
        ]
    if hasattr(jaxgrad, "binary_cross_entropy"):
        mse += [
            case("loss", "binary_cross_entropy weight",
                 lambda input, target, weight: jaxgrad.binary_cross_entropy(input, target,
                                                                            weight),
                 lax=lambda input, target, weight: jnp.mean(
                     -weight * (target * jnp.log(input) + (1 - target) * jnp.log1p(-input))),
                 torch=lambda input, target, weight: F().binary_cross_entropy(input, target,
                                                                              weight),
                 constants=_with(lambda rng: {}, weight=(4,)), draw="unit", input=(3, 4),
                 target=(3, 4)),
            case("loss", "binary_cross_entropy_with_logits pos_weight sum",
                 lambda input, target, pos_weight: jaxgrad.binary_cross_entropy_with_logits(
                     input, target, reduction="sum", pos_weight=pos_weight),
                 lax=lambda input, target, pos_weight: jnp.sum(
                     (1 - target) * input
                     + ((pos_weight - 1) * target + 1) * jax.nn.softplus(-input)),
                 torch=lambda input, target, pos_weight: F().binary_cross_entropy_with_logits(
                     input, target, reduction="sum", pos_weight=pos_weight),
                 constants=_with(lambda rng: {}, pos_weight=(4,)), input=(3, 4), target=(3, 4)),
            case("loss", "kl_div batchmean",
                 lambda input, target: jaxgrad.kl_div(input, target, reduction="batchmean"),
                 lax=lambda input, target: jnp.sum(target * (jnp.log(target) - input)) / 3,
                 torch=lambda input, target: F().kl_div(input, target, reduction="batchmean"),
                 draw="unit", input=(3, 4), target=(3, 4)),
            case("loss", "kl_div log_target none",
                 lambda input, target: jaxgrad.kl_div(input, target, reduction="none",
                                                      log_target=True),
                 lax=lambda input, target: jnp.exp(target) * (target - input),
                 torch=lambda input, target: F().kl_div(input, target, reduction="none",
                                                        log_target=True),
                 input=(3, 4), target=(3, 4)),
        ]
    nll = [
        case("loss", "nll_loss weight ignore_index",
             lambda input, target, weight: jaxgrad.nll_loss(input, target, weight,
                                                            ignore_index=1),
             lax=_lax_nll("mean", ignore_index=1),
             torch=lambda input, target, weight: F().nll_loss(input, target, weight,
                                                              ignore_index=1),
             constants=_with(_indices((5,), 4), weight=(4,)), input=(5, 4)),
        case("loss", "nll_loss (N,C,d) sum",
             lambda input, target: jaxgrad.nll_loss(input, target, reduction="sum"),
             lax=_lax_nll("sum"),
             torch=lambda input, target: F().nll_loss(input, target, reduction="sum"),
             constants=_indices((2, 3), 4), input=(2, 4, 3)),
        case("loss", "nll_loss unbatched none",
             lambda input, target: jaxgrad.nll_loss(input, target, reduction="none"),
             torch=lambda input, target: F().nll_loss(input, target, reduction="none"),
             constants=_indices((), 5), input=(5,)),
    ]
    ce = [
        case("loss", "cross_entropy indices mean",
             lambda input, target: jaxgrad.cross_entropy(input, target),
             lax=lambda input, target: _lax_nll("mean")(jax.nn.log_softmax(input, 1),
                                                        target),
             torch=lambda input, target: F().cross_entropy(input, target),
             constants=_indices((4,), 3), input=(4, 3)),
        case("loss", "cross_entropy indices weight smoothing ignore",
             lambda input, target, weight: jaxgrad.cross_entropy(
                 input, target, weight, ignore_index=0, label_smoothing=0.1),
             torch=lambda input, target, weight: F().cross_entropy(
                 input, target, weight, ignore_index=0, label_smoothing=0.1),
             constants=_with(_indices((3, 2), 4, ignore=0), weight=(4,)),
             input=(3, 4, 2)),
        case("loss", "cross_entropy probabilities mean",
             lambda input, target: jaxgrad.cross_entropy(input, target),
             lax=lambda input, target: -jnp.sum(target * jax.nn.log_softmax(input, 1))
             / (input.size // input.shape[1]),
             torch=lambda input, target: F().cross_entropy(input, target),
             input=(4, 3), target=(4, 3)),
        case("loss", "cross_entropy probabilities weight smoothing",
             lambda input, target, weight: jaxgrad.cross_entropy(
                 input, target, weight, reduction="none", label_smoothing=0.2),
             torch=lambda input, target, weight: F().cross_entropy(
                 input, target, weight, reduction="none", label_smoothing=0.2),
             input=(2, 3, 4), target=(2, 3, 4), weight=(3,)),
    ]
    return mse + nll + ce


# --------------------------------------------------------------------------
# gradient: the gradient tools (identity forward, a rule for the backward).


def _scaled_identity(c):
    """y = x with x̄ = c·ȳ, written with stop_gradient (torch: detach)."""
    return lambda x: x * c + lax.stop_gradient(x - x * c)


def _torch_scaled(c):
    return lambda x: x * c + (x - x * c).detach()


def _torch_hook(x):
    y = x.clone()
    y.register_hook(lambda g: 2 * g)
    return y


def _gradient_cases() -> list[Case]:
    shape = (3, 4)

    def c_of(rng):
        return {"c": rng.standard_normal((4,))}

    return [
        case("gradient", "scale_grad c=0.5", lambda x: jaxgrad.scale_grad(x, 0.5),
             lax=_scaled_identity(0.5), torch=_torch_scaled(0.5), x=shape),
        case("gradient", "scale_grad broadcast array c",
             lambda x, c: jaxgrad.scale_grad(x, c),
             lax=lambda x, c: _scaled_identity(c)(x),
             torch=lambda x, c: _torch_scaled(c)(x), constants=c_of, x=shape),
        case("gradient", "reverse_grad", jaxgrad.reverse_grad,
             lax=_scaled_identity(-1.0), torch=_torch_scaled(-1.0), x=shape),
        case("gradient", "hook doubling the cotangent",
             lambda x: jaxgrad.hook(x, lambda g: 2 * g),
             lax=_scaled_identity(2.0), torch=_torch_hook, x=shape),
    ]


# --------------------------------------------------------------------------
# norm: batch, group, layer and instance normalisation.


def _lax_normalise(x, axes, eps):
    """(x - mean) / sqrt(biased var + eps) over ``axes``."""
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=axes, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps)


def _affine(y, weight, bias, channel_axis=1):
    shape = [1] * y.ndim
    shape[channel_axis] = -1
    if weight is not None:
        y = y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


def _running_stats(channels):
    def draw(rng):
        return {"running_mean": rng.standard_normal(channels),
                "running_var": np.abs(rng.standard_normal(channels)) + 0.5}
    return draw


def _norm_cases() -> list[Case]:
    F = _torch
    x = (4, 3, 5, 2)
    return [
        case("norm", "batch_norm training weight bias",
             lambda input, weight, bias: jaxgrad.batch_norm(
                 input, None, None, weight, bias, training=True, eps=1e-3),
             lax=lambda input, weight, bias: _affine(
                 _lax_normalise(input, (0, 2, 3), 1e-3), weight, bias),
             torch=lambda input, weight, bias: F().batch_norm(
                 input, None, None, weight, bias, training=True, eps=1e-3),
             input=x, weight=(3,), bias=(3,)),
        case("norm", "batch_norm eval running stats",
             lambda input, weight, running_mean, running_var: jaxgrad.batch_norm(
                 input, running_mean, running_var, weight),
             lax=lambda input, weight, running_mean, running_var: _affine(
                 (input - running_mean[:, None]) / jnp.sqrt(running_var[:, None] + 1e-5),
                 weight, None),
             torch=lambda input, weight, running_mean, running_var: F().batch_norm(
                 input, running_mean, running_var, weight),
             constants=_running_stats(3), input=(4, 3, 6), weight=(3,)),
        case("norm", "group_norm 2 groups",
             lambda input, weight, bias: jaxgrad.group_norm(input, 2, weight, bias),
             lax=lambda input, weight, bias: _affine(_lax_normalise(
                 input.reshape(2, 2, -1), (2,), 1e-5).reshape(input.shape), weight, bias),
             torch=lambda input, weight, bias: F().group_norm(input, 2, weight, bias),
             input=(2, 4, 3, 3), weight=(4,), bias=(4,)),
        case("norm", "layer_norm last two dims",
             lambda input, weight, bias: jaxgrad.layer_norm(input, (3, 4), weight, bias),
             lax=lambda input, weight, bias: _lax_normalise(input, (1, 2), 1e-5) * weight
             + bias,
             torch=lambda input, weight, bias: F().layer_norm(input, (3, 4), weight, bias),
             input=(2, 3, 4), weight=(3, 4), bias=(3, 4)),
        case("norm", "instance_norm weight bias",
             lambda input, weight, bias: jaxgrad.instance_norm(input, weight=weight,
                                                               bias=bias),
             lax=lambda input, weight, bias: _affine(_lax_normalise(input, (2, 3), 1e-5),
                                                     weight, bias),
             torch=lambda input, weight, bias: F().instance_norm(input, weight=weight,
                                                                 bias=bias),
             input=(2, 3, 4, 3), weight=(3,), bias=(3,)),
    ]


# --------------------------------------------------------------------------
# dropout: the masked maps, given the keep mask (torch draws its own).

ALPHA = 1.7580993408473766


def _keep(shape, p=0.3):
    """The keep mask as 0.0/1.0 (a float constant: every reference computes in float64)."""
    return lambda rng: {"keep": (rng.random(shape) >= p).astype(np.float64)}


def _alpha_reference(input, keep, p):
    """torch's alpha dropout for a given keep mask: a·(x·k + α'(1 - k)) + shift."""
    a = 1 / math.sqrt((ALPHA ** 2 * p + 1) * (1 - p))
    return input * (keep * a) + (keep - 1) * (ALPHA * a) + ALPHA * a * p


def _dropout_cases() -> list[Case]:
    from .._dropout import dropout_given_mask   # the public ops draw the mask
    p = 0.3

    def masked(name, shape, mask_shape, alpha):
        def ref(input, keep):
            return _alpha_reference(input, keep, p) if alpha else input * keep / (1 - p)

        return case("dropout", name,
                    lambda input, keep: dropout_given_mask(input, keep, p, alpha),
                    lax=ref, torch=ref, constants=_keep(mask_shape, p), input=shape)

    return [
        masked("dropout given a mask", (3, 4, 5), (3, 4, 5), False),
        masked("dropout2d given a channel mask", (2, 3, 4, 4), (2, 3, 1, 1), False),
        masked("alpha_dropout given a mask", (3, 4, 5), (3, 4, 5), True),
        masked("feature_alpha_dropout given a channel mask", (2, 3, 4, 4),
               (2, 3, 1, 1), True),
    ]


# --------------------------------------------------------------------------
# pad: F.pad's four modes.

_NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
            "circular": "wrap"}


def _pad_case(name, shape, pad, mode, value=None) -> Case:
    widths = [(0, 0)] * (len(shape) - len(pad) // 2) + [
        (pad[i], pad[i + 1]) for i in reversed(range(0, len(pad), 2))]

    def lax_ref(input):
        if mode == "constant":
            return jnp.pad(input, widths, constant_values=value or 0.0)
        return jnp.pad(input, widths, mode=_NP_MODE[mode])

    lax_ok = all(lo >= 0 and hi >= 0 for lo, hi in widths)
    return case("pad", name, lambda input: jaxgrad.pad(input, pad, mode, value),
                lax=lax_ref if lax_ok else None,
                torch=lambda input: _torch().pad(input, pad, mode, value), input=shape)


def _pad_cases() -> list[Case]:
    return [
        _pad_case("pad constant value 1.5", (2, 3, 4), (1, 2, 0, 1), "constant", 1.5),
        _pad_case("pad constant crop", (2, 3, 5), (-1, 2), "constant"),
        _pad_case("pad reflect 2-D", (1, 2, 4, 5), (2, 1, 1, 3), "reflect"),
        _pad_case("pad replicate 3-D", (1, 2, 3, 3, 4), (1, 1, 2, 0, 0, 1), "replicate"),
        _pad_case("pad circular 1-D", (2, 3, 5), (2, 3), "circular"),
    ]


# --------------------------------------------------------------------------
# interpolate: every mode, against torch.


def _interpolate_cases() -> list[Case]:
    def resize(name, shape, **kwargs):
        return case("interpolate", f"interpolate {name}",
                    lambda input: jaxgrad.interpolate(input, **kwargs),
                    torch=lambda input: _torch().interpolate(input, **kwargs),
                    input=shape)

    return [
        resize("nearest x2", (1, 2, 3, 4), scale_factor=2, mode="nearest"),
        resize("nearest-exact 5->3", (2, 2, 5), size=3, mode="nearest-exact"),
        resize("linear align_corners", (2, 3, 5), size=8, mode="linear",
               align_corners=True),
        resize("bilinear x1.5", (1, 2, 4, 5), scale_factor=1.5, mode="bilinear"),
        resize("bicubic (5,6)->(7,4)", (1, 2, 5, 6), size=(7, 4), mode="bicubic"),
        resize("trilinear", (1, 2, 3, 3, 4), size=(4, 5, 3), mode="trilinear"),
        resize("area 6x7->(4,3)", (1, 2, 6, 7), size=(4, 3), mode="area"),
        resize("bilinear antialias 9x11->(4,5)", (1, 2, 9, 11), size=(4, 5),
               mode="bilinear", antialias=True),
        resize("bicubic antialias x0.4", (1, 2, 10, 8), scale_factor=0.4, mode="bicubic",
               antialias=True),
        resize("lanczos antialias 12x7->(5,3)", (1, 2, 12, 7), size=(5, 3), mode="lanczos",
               antialias=True),
    ]


# --------------------------------------------------------------------------
# pixel_shuffle: pixel_shuffle and pixel_unshuffle.


def _lax_pixel_shuffle(r):
    def shuffle(input):
        n, c, h, w = input.shape
        y = input.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
        return y.reshape(n, c // (r * r), h * r, w * r)
    return shuffle


def _lax_pixel_unshuffle(r):
    def unshuffle(input):
        n, c, h, w = input.shape
        y = input.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4)
        return y.reshape(n, c * r * r, h // r, w // r)
    return unshuffle


def _pixel_shuffle_cases() -> list[Case]:
    return [
        case("pixel_shuffle", "pixel_shuffle r=2",
             lambda input: jaxgrad.pixel_shuffle(input, 2), lax=_lax_pixel_shuffle(2),
             torch=lambda input: _torch().pixel_shuffle(input, 2), input=(2, 8, 3, 2)),
        case("pixel_shuffle", "pixel_unshuffle r=3",
             lambda input: jaxgrad.pixel_unshuffle(input, 3), lax=_lax_pixel_unshuffle(3),
             torch=lambda input: _torch().pixel_unshuffle(input, 3), input=(1, 2, 6, 3)),
    ]


# --------------------------------------------------------------------------
# fold: unfold (im2col) and fold (col2im).


def _fold_cases() -> list[Case]:
    unfold = dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))
    fold = dict(output_size=(5, 4), kernel_size=2, padding=1, stride=2)
    return [
        case("fold", "unfold k(2,3) d(1,2) p1 s(2,1)",
             lambda input: jaxgrad.unfold(input, **unfold),
             torch=lambda input: _torch().unfold(input, **unfold), input=(2, 3, 5, 6)),
        case("fold", "fold (5,4) k2 p1 s2",
             lambda input: jaxgrad.fold(input, **fold),
             torch=lambda input: _torch().fold(input, **fold), input=(2, 3 * 4, 9)),
    ]


# --------------------------------------------------------------------------
# The registry.

FAMILIES: dict[str, Family] = {
    "conv": Family("convolutions 1-D to 3-D, transposed convolutions, jaxgrad.grad.*, "
                   "conv_general_dilated", _conv_cases),
    "pool": Family("max, average and adaptive pooling, 1-D to 3-D", _pool_cases),
    "linear": Family("linear layers", _linear_cases),
    "activation": Family("relu, leaky_relu, sigmoid, tanh, gelu (and relu6, hardtanh, silu, "
                         "mish, softplus, logsigmoid, hardswish, hardsigmoid, elu, celu, "
                         "selu)",
                         _activation_cases),
    "softmax": Family("softmax and log_softmax", _softmax_cases),
    "loss": Family("mse_loss, l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy, "
                   "binary_cross_entropy_with_logits, kl_div, nll_loss, "
                   "cross_entropy (class indices and "
                   "probabilities)", _loss_cases),
    "gradient": Family("gradient tools: scale_grad, reverse_grad, hook",
                       _gradient_cases),
    "norm": Family("batch_norm (training and eval), group_norm, layer_norm, "
                   "instance_norm", _norm_cases,
                   requires=("batch_norm", "group_norm", "layer_norm", "instance_norm")),
    "dropout": Family("dropout, dropout2d, alpha_dropout, feature_alpha_dropout, "
                      "given the keep mask", _dropout_cases,
                      requires=("dropout", "alpha_dropout")),
    "pad": Family("pad: constant (and cropping), reflect, replicate, circular",
                  _pad_cases, requires=("pad",)),
    "interpolate": Family("interpolate: nearest, nearest-exact, linear, bilinear, "
                          "bicubic, trilinear, area; anti-aliased bilinear, bicubic, "
                          "lanczos", _interpolate_cases,
                          requires=("interpolate",)),
    "pixel_shuffle": Family("pixel_shuffle, pixel_unshuffle", _pixel_shuffle_cases,
                            requires=("pixel_shuffle", "pixel_unshuffle")),
    "fold": Family("unfold (im2col), fold (col2im)", _fold_cases,
                   requires=("unfold", "fold")),
}


def available() -> dict[str, Family]:
    """The families whose ops exist in this jaxgrad, in registry order."""
    return {key: family for key, family in FAMILIES.items() if family.available()}


def cases(families=None) -> tuple[Case, ...]:
    """Every case of the given family keys (default: every available family)."""
    chosen = available() if families is None else {k: FAMILIES[k] for k in families}
    built = tuple(c for family in chosen.values() for c in family.build())
    names = [c.name for c in built]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"jaxgrad check: duplicate case names {duplicates}")
    return built
