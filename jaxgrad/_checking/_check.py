"""``jaxgrad check``: a sweep of op configurations against independent references.

For every configuration the forward value, the first-order gradients (input,
weight, bias) and the second-order gradients (of ⟨x̄, u⟩ + ⟨w̄, v⟩ w.r.t. the
input, the weight and the cotangent) are compared with JAX autodiff of the
plain ``lax`` op and, when torch is importable, with PyTorch autograd. The
references always run in float64; jaxgrad runs in the requested dtype.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import _ranked
from .._conv._spec import parse_padding
from . import _reference
from ._tolerance import max_errors, tolerance


@dataclasses.dataclass(frozen=True)
class Case:
    """One configuration: ``op`` is "conv" or "conv_transpose", kwargs as torch's."""

    name: str
    op: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    kwargs: tuple[tuple[str, object], ...] = ()
    bias: bool = True

    @property
    def options(self) -> dict:
        return dict(self.kwargs)


def _c(name, x, w, bias=True, **kwargs):
    return Case(name, "conv", x, w, tuple(kwargs.items()), bias)


def _t(name, x, w, bias=True, **kwargs):
    return Case(name, "conv_transpose", x, w, tuple(kwargs.items()), bias)


CASES: tuple[Case, ...] = (
    _c("conv1d k3 p1", (2, 3, 9), (4, 3, 3), padding=1),
    _c("conv1d k4 s3 leftover", (2, 2, 11), (3, 2, 4), stride=3),
    _c("conv1d same even k d2", (1, 2, 8), (2, 2, 4), padding="same", dilation=2),
    _c("conv1d dilated wavenet d4", (1, 4, 16), (4, 4, 2), dilation=4),
    _c("conv2d 3x3 s1 p1", (2, 4, 8, 8), (6, 4, 3, 3), padding=1),
    _c("conv2d 3x3 s2 p1 leftover", (2, 3, 8, 7), (4, 3, 3, 3), stride=2, padding=1),
    _c("conv2d per-dim stride (1,3)", (1, 2, 7, 9), (3, 2, 2, 3), stride=(1, 3)),
    _c("conv2d asymmetric pads", (2, 2, 6, 6), (2, 2, 3, 3),
       padding=((0, 2), (1, 0))),
    _c("conv2d valid no bias", (2, 3, 6, 5), (2, 3, 2, 2), bias=False,
       padding="valid"),
    _c("conv2d groups=2", (2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2),
    _c("conv2d depthwise", (2, 4, 7, 7), (4, 1, 3, 3), padding=1, groups=4),
    _c("conv2d depthwise x2 s2", (1, 3, 8, 8), (6, 1, 3, 3), stride=2, groups=3),
    _c("conv2d stride > kernel", (2, 2, 9, 10), (3, 2, 2, 2), stride=(4, 3)),
    _c("conv2d dilation 2 same", (1, 2, 8, 8), (2, 2, 3, 3), padding="same",
       dilation=2),
    _c("conv2d 1x1", (2, 5, 4, 4), (3, 5, 1, 1)),
    _c("conv2d reflect", (2, 2, 6, 6), (3, 2, 3, 3), padding=1, padding_mode="reflect"),
    _c("conv2d replicate s2", (1, 2, 7, 6), (2, 2, 3, 3), stride=2, padding=2,
       padding_mode="replicate"),
    _c("conv2d circular same", (1, 2, 5, 6), (2, 2, 4, 3), padding="same",
       padding_mode="circular"),
    _c("conv3d 3x3x3 p1", (1, 2, 5, 5, 5), (3, 2, 3, 3, 3), padding=1),
    _c("conv3d s2 groups", (2, 4, 5, 6, 4), (4, 2, 2, 3, 2), stride=2, groups=2),
    _c("conv2d unbatched", (3, 6, 6), (2, 3, 3, 3), padding=1),
    _t("conv_transpose1d s2 op1", (2, 3, 5), (3, 2, 3), stride=2, padding=1,
       output_padding=1),
    _t("conv_transpose2d 4x4 s2 decoder", (2, 4, 4, 4), (4, 3, 4, 4), stride=2,
       padding=1),
    _t("conv_transpose2d 2x2 s2", (1, 3, 5, 4), (3, 2, 2, 2), stride=2),
    _t("conv_transpose2d groups d2", (2, 4, 4, 5), (4, 1, 3, 3), stride=(2, 1),
       padding=1, groups=2, dilation=2),
    _t("conv_transpose1d op>=s via d3", (1, 2, 4), (2, 2, 3), output_padding=2,
       dilation=3),
    _t("conv_transpose3d s2", (1, 2, 3, 3, 3), (2, 2, 3, 3, 3), stride=2,
       padding=1, output_padding=1),
)


@dataclasses.dataclass(frozen=True)
class Row:
    case: str
    reference: str
    worst: str
    abs_err: float
    rel_err: float
    tol: float

    @property
    def ok(self) -> bool:
        return bool(self.rel_err <= self.tol)


def _inputs(case: Case, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    return x, w


def _jaxgrad_fn(case: Case) -> Callable:
    opts = case.options
    if case.op == "conv":
        return lambda x, w, b: _ranked.conv(x, w, b, **opts)
    return lambda x, w, b: _ranked.conv_transpose(x, w, b, **opts)


def _as_tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _lax_fn(case: Case) -> Callable:
    opts = case.options
    n = len(case.w_shape) - 2
    stride = _as_tuple(opts.get("stride", 1), n)
    dilation = _as_tuple(opts.get("dilation", 1), n)
    groups = opts.get("groups", 1)

    def batched(f):
        unbatched = len(case.x_shape) == n + 1
        return (lambda x, w, b: f(x[None], w, b)[0]) if unbatched else f

    if case.op == "conv":
        pads = parse_padding("check", opts.get("padding", 0), n, case.w_shape[2:],
                             stride, dilation)
        mode = opts.get("padding_mode", "zeros")
        return batched(lambda x, w, b: _reference.lax_conv(
            x, w, b, stride, pads, dilation, groups, mode))
    padding = _as_tuple(opts.get("padding", 0), n)
    extra = _as_tuple(opts.get("output_padding", 0), n)
    return batched(lambda x, w, b: _reference.lax_conv_transpose(
        x, w, b, stride, padding, extra, groups, dilation))


def _jax_results(f, x, w, b, cot, u, v) -> dict:
    y, vjp = jax.vjp(f, x, w, b)
    gx, gw, gb = vjp(cot)

    def inner(x, w, cot):
        gx, gw, _ = jax.vjp(f, x, w, b)[1](cot)
        return jnp.sum(gx * u) + jnp.sum(gw * v)

    g2 = jax.grad(inner, argnums=(0, 1, 2))(x, w, cot)
    out = {"output": y, "grad_input": gx, "grad_weight": gw}
    if b is not None:
        out["grad_bias"] = gb
    out.update(zip(("grad2_input", "grad2_weight", "grad2_cotangent"), g2))
    return {k: np.asarray(val, dtype=np.float64) for k, val in out.items()}


def _torch_results(case: Case, x, w, b, cot, u, v) -> dict:
    import torch
    T = _reference.to_torch
    tx, tw = T(x, True), T(w, True)
    tb = None if b is None else T(b, True)
    tcot = T(cot, True)
    opts = case.options
    if case.op == "conv":
        y = _reference.torch_conv(tx, tw, tb, opts.get("stride", 1),
                                  opts.get("padding", 0), opts.get("dilation", 1),
                                  opts.get("groups", 1),
                                  opts.get("padding_mode", "zeros"))
    else:
        y = _reference.torch_conv_transpose(
            tx, tw, tb, opts.get("stride", 1), opts.get("padding", 0),
            opts.get("output_padding", 0), opts.get("groups", 1),
            opts.get("dilation", 1))
    params = [tx, tw] + ([tb] if tb is not None else [])
    grads = torch.autograd.grad(y, params, tcot, create_graph=True)
    inner = (grads[0] * T(u)).sum() + (grads[1] * T(v)).sum()
    g2 = torch.autograd.grad(inner, [tx, tw, tcot])
    out = {"output": y, "grad_input": grads[0], "grad_weight": grads[1]}
    if tb is not None:
        out["grad_bias"] = grads[2]
    out.update(zip(("grad2_input", "grad2_weight", "grad2_cotangent"), g2))
    return {k: val.detach().numpy() for k, val in out.items()}


def run_case(case: Case, dtype: str = "float64", use_torch: bool = True,
             seed: int = 0) -> list[Row]:
    """Compare jaxgrad (in ``dtype``) with the float64 references for one case."""
    x, w = _inputs(case, seed)
    rng = np.random.default_rng(seed + 1)
    c_out = case.w_shape[0] if case.op == "conv" else case.w_shape[1] * \
        case.options.get("groups", 1)
    b = rng.standard_normal(c_out) if case.bias else None
    # Round the inputs to `dtype` once so every implementation sees the same numbers.
    cast = lambda a: None if a is None else np.asarray(jnp.asarray(a, dtype), np.float64)  # noqa: E731
    x, w, b = cast(x), cast(w), cast(b)
    y_shape = jax.eval_shape(_jaxgrad_fn(case), x, w, b).shape
    cot, u, v = (cast(rng.standard_normal(s)) for s in (y_shape, x.shape, w.shape))
    as_dtype = lambda a: None if a is None else jnp.asarray(a, dtype)  # noqa: E731
    ours = _jax_results(_jaxgrad_fn(case), *map(as_dtype, (x, w, b, cot, u, v)))
    refs = {"lax": _jax_results(_lax_fn(case), *map(jnp.asarray, (x, w)),
                                None if b is None else jnp.asarray(b),
                                *map(jnp.asarray, (cot, u, v)))}
    if use_torch:
        refs["torch"] = _torch_results(case, x, w, b, cot, u, v)
    rows = []
    for ref_name, ref in refs.items():
        errors = {k: max_errors(ours[k], ref[k]) for k in ref}
        worst = max(errors, key=lambda k: errors[k][1])
        rows.append(Row(case.name, ref_name, worst, *errors[worst], tolerance(dtype)))
    return rows


def format_row(row: Row, show_case: bool) -> str:
    status = "PASS" if row.ok else "FAIL"
    case = row.case if show_case else ""
    return (f"{case:<34} {row.reference:<6} {row.worst:<16} {row.abs_err:>9.2e} "
            f"{row.rel_err:>9.2e} {row.tol:>8.0e}  {status}")


HEADER = (f"{'case':<34} {'ref':<6} {'worst array':<16} {'max abs':>9} "
          f"{'max rel':>9} {'tol':>8}  status")
