"""The gradient formulations of the convolution family, against each other and lax.

``algorithm="transpose"`` (the textbook rules of ``_kernels``) and
``algorithm="taps"`` (``_taps``: kernel-tap GEMMs, slices and padded adds)
must compute the same sums. For every configuration of the grids below, in
float64, one jitted program computes with each formulation and with JAX's own
autodiff of plain ``lax.conv_general_dilated`` (``_reference``, which never
touches jaxgrad's rules):

  output, x̄, w̄          the forward and its VJP for a random cotangent ḡ
  grad2_x, grad2_w,       the gradient of ⟨x̄, u⟩ + ⟨w̄, v⟩ w.r.t. x, w and ḡ
  grad2_cot               (reverse over reverse)
  grad_fn_x, grad_fn_w    ``jaxgrad.grad.conv{n}d_input / _weight`` (or the
                          ``conv_transpose{n}d_*`` ones) with the same algorithm

and each of taps and transpose must equal lax autodiff (and each other) to
``_tolerance.RTOL['float64']``. The grids cover every branch of ``_taps``:
the tiled path (stride = kernel, dilation 1, 1x1 kernels at stride 1), the
depthwise elementwise products, and the GEMM orders chosen by the ratio of
channels to output positions.

"taps" also runs the forward of the grouped and depthwise cases as a sum
over taps (``_taps.forward``), so the same grid checks it at every order.

Also here: half precision, the selection API (per call, global, context
manager, jit), ``_plan.choose``, error wording, and a proof that no
order of differentiation runs JAX autodiff through either formulation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import jaxgrad
import jaxgrad.grad as jg
from jaxgrad._checking import _reference
from jaxgrad._conv import _core, _plan, _taps
from jaxgrad._conv._spec import ConvSpec
from jaxgrad._conv._spec import conv_output_shape as _conv_output_shape
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._autodiff import forbid_autodiff

ALGORITHMS = ("transpose", "taps")
CONV = {1: jaxgrad.conv1d, 2: jaxgrad.conv2d, 3: jaxgrad.conv3d}
CONV_TRANSPOSE = {1: jaxgrad.conv_transpose1d, 2: jaxgrad.conv_transpose2d,
                  3: jaxgrad.conv_transpose3d}


def case(name, x_shape, w_shape, **kwargs):
    return pytest.param(x_shape, w_shape, kwargs, id=name)


def _per_dim(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _lax_pads(padding, kernel, dilation) -> tuple[tuple[int, int], ...]:
    """torch-style conv padding -> (lo, hi) pairs, worked out here from torch's rules."""
    n = len(kernel)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":   # total d(K-1), the odd extra on the high side
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple(p if isinstance(p, tuple) else (p, p) for p in _per_dim(padding, n))


def _batched(fn, unbatched: bool):
    """fn of batched (x, w), applied to an unbatched x when ``unbatched``."""
    return (lambda x, w: fn(x[None], w)[0]) if unbatched else fn


def _results(fn, x, w, cot, u, v) -> dict:
    """Output, VJP for ``cot``, and the gradient of ⟨x̄, u⟩ + ⟨w̄, v⟩ w.r.t. (x, w, cot).

    One reverse pass over the first-order function gives the second order, with
    the output and the first-order VJP carried along (no second trace).
    """
    def first_order(x, w, cot):
        y, vjp = jax.vjp(fn, x, w)
        return vjp(cot), y

    (gx, gw), second_order, y = jax.vjp(first_order, x, w, cot, has_aux=True)
    g2 = second_order((u, v))
    return dict(output=y, grad_x=gx, grad_w=gw, grad2_x=g2[0], grad2_w=g2[1],
                grad2_cot=g2[2])


def _random(seed: int, *shapes):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.standard_normal(s), jnp.float64) for s in shapes]


def _assert_close(actual, expected, what: str, dtype=np.float64) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    abs_err, rel_err = max_errors(actual, expected)
    assert rel_err <= tolerance(dtype), (
        f"{what}: max abs {abs_err:.3e}, rel {rel_err:.3e} > {tolerance(dtype):.0e}")


def _check_formulations(label: str, out: dict) -> None:
    """Each formulation equals lax autodiff, and taps equals transpose."""
    ref = out["lax"]
    for algorithm in ALGORITHMS:
        for key, value in out[algorithm].items():
            expected = ref[key.replace("grad_fn", "grad")]
            _assert_close(value, expected, f"[{label}] {algorithm} {key} vs lax autodiff")
    for key, value in out["taps"].items():
        _assert_close(value, out["transpose"][key], f"[{label}] taps vs transpose {key}")


# --------------------------------------------------------------------------
# Stride 1, one output channel per group: configurations of both the grid and
# the forward form's own test (test_one_output_per_group_input_gradient_...).

ONE_OUT_PER_GROUP = {   # name: (x shape, w shape, kwargs)
    "1d groups2 C_out/G=1 C_in/G=2 s1 same": ((2, 4, 9), (2, 2, 3),
                                               dict(groups=2, padding="same")),
    # a low pad beyond d(K-1) (the forward form crops ḡ), none on one side
    "2d depthwise s1 d2 p((5,1),(0,2))": ((2, 3, 7, 8), (3, 1, 3, 3),
                                          dict(groups=3, dilation=2, padding=((5, 1), (0, 2)))),
    "3d depthwise s1 p1": ((1, 2, 4, 5, 4), (2, 1, 3, 2, 3), dict(groups=2, padding=1)),
}

# --------------------------------------------------------------------------
# Convolutions: the grid. Comments name the _taps branch a case reaches
# (weight grad: depthwise / "batch (n, γ)" GEMM / "few positions" GEMM;
# input grad: C_out/G = 1 products / C_out/G <= positions / C_out/G > positions).

CONV_CASES = [
    # ---- 1-D
    case("1d s3 leftover (few positions)", (2, 2, 11), (2, 2, 4), stride=3),
    case("1d tiled k3 s3 pairs (1,2) leftover", (2, 2, 7), (3, 2, 3), stride=3,
         padding=((1, 2),)),
    case("1d same even k d2 groups2", (2, 4, 8), (4, 2, 4), padding="same", dilation=2,
         groups=2),
    case("1d d3 s2 pairs lo>K'-1", (1, 2, 10), (3, 2, 2), dilation=3, stride=2,
         padding=((5, 1),)),
    case("1d stride>kernel k2 s5 batch2", (2, 2, 12), (2, 2, 2), stride=5),
    case("1d depthwise s2", (2, 4, 12), (4, 1, 3), groups=4, stride=2),
    case("1d 1x1 s1 unbatched (tiled)", (3, 7), (2, 3, 1)),
    case("1d one position, C_out > positions", (1, 2, 5), (6, 2, 5)),
    case("1d unbatched reflect s2", (2, 9), (3, 2, 3), stride=2, padding=2,
         padding_mode="reflect"),
    # ---- 2-D
    case("2d 3x3 p1 batch2", (2, 3, 5, 5), (4, 3, 3, 3), padding=1),
    case("2d s2 p1 leftover", (2, 3, 8, 7), (4, 3, 3, 3), stride=2, padding=1),
    case("2d tiled k2 s2 leftover", (2, 3, 6, 7), (4, 3, 2, 2), stride=2),
    case("2d tiled k(2,3) s(2,3) pairs", (1, 2, 7, 8), (3, 2, 2, 3), stride=(2, 3),
         padding=((1, 0), (0, 2))),
    case("2d k2 s2 d2 (not tiled)", (1, 2, 9, 9), (2, 2, 2, 2), stride=2, dilation=2),
    case("2d 1x1 s2", (2, 4, 5, 6), (3, 4, 1, 1), stride=2),
    case("2d groups3 s2 (C_out/G = 1)", (1, 6, 7, 6), (3, 2, 2, 3), groups=3,
         stride=2),
    case("2d depthwise s2 p1", (2, 3, 7, 7), (3, 1, 3, 3), groups=3, stride=2,
         padding=1),
    # one output channel per group on tiled windows: Q = w·g built at once
    case("2d groups2 C_out/G=1 tiled k2 s2 leftover", (2, 4, 7, 6), (2, 2, 2, 2),
         groups=2, stride=2),
    case("2d d(2,3) s(1,3) p(2,1) leftover", (1, 2, 9, 11), (2, 2, 3, 2),
         dilation=(2, 3), stride=(1, 3), padding=(2, 1)),
    # ---- 3-D
    case("3d k(2,2,3) p1 s(1,2,1)", (1, 2, 4, 5, 4), (3, 2, 2, 2, 3), padding=1,
         stride=(1, 2, 1)),
    case("3d tiled k2 s2 leftover", (1, 2, 5, 4, 6), (2, 2, 2, 2, 2), stride=2),
    case("3d groups2 s(2,1,3)", (2, 4, 5, 6, 4), (4, 2, 2, 3, 2), stride=(2, 1, 3),
         groups=2),
    case("3d depthwise x2 pairs", (1, 2, 4, 4, 5), (4, 1, 2, 2, 2), groups=2,
         padding=((1, 0), (0, 1), (2, 1))),
    # C_out/G = 1 at stride 1 (under "taps" the slab form)
    *(case(name, *config[:2], **config[2]) for name, config in ONE_OUT_PER_GROUP.items()),
]


def _conv_reference(x_shape, w_shape, kwargs):
    n = len(w_shape) - 2
    dilation = _per_dim(kwargs.get("dilation", 1), n)
    pads = _lax_pads(kwargs.get("padding", 0), w_shape[2:], dilation)

    def ref(x, w):
        return _reference.lax_conv(x, w, None, _per_dim(kwargs.get("stride", 1), n),
                                   pads, dilation, kwargs.get("groups", 1),
                                   kwargs.get("padding_mode", "zeros"))

    return _batched(ref, len(x_shape) == n + 1)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_CASES)
def test_conv_formulations_equal_lax_autodiff(request, x_shape, w_shape, kwargs):
    n = len(w_shape) - 2
    x, w = _random(0, x_shape, w_shape)
    y_shape = jax.eval_shape(_conv_reference(x_shape, w_shape, kwargs), x, w).shape
    cot, u, v = _random(1, y_shape, x_shape, w_shape)
    has_grad_fns = "padding_mode" not in kwargs   # jaxgrad.grad takes no padding_mode

    def program(x, w, cot, u, v):
        out = {"lax": _results(_conv_reference(x_shape, w_shape, kwargs), x, w, cot, u, v)}
        for a in ALGORITHMS:
            out[a] = _results(lambda x, w, a=a: CONV[n](x, w, algorithm=a, **kwargs),
                              x, w, cot, u, v)
            if has_grad_fns:
                out[a]["grad_fn_x"] = getattr(jg, f"conv{n}d_input")(
                    x.shape, w, cot, algorithm=a, **kwargs)
                out[a]["grad_fn_w"] = getattr(jg, f"conv{n}d_weight")(
                    x, w.shape, cot, algorithm=a, **kwargs)
        return out

    _check_formulations(request.node.callspec.id, jax.jit(program)(x, w, cot, u, v))


# --------------------------------------------------------------------------
# Transposed convolutions: the forward itself is an input gradient, so it
# follows the algorithm too. Weight (C_in, C_out/G, *K).

CONV_TRANSPOSE_CASES = [
    case("1d tiled k3 s3 p3 (p > K-1)", (1, 2, 4), (2, 3, 3), stride=3, padding=3),
    case("1d s1 d3 op2 (op >= s)", (1, 2, 4), (2, 2, 3), dilation=3, output_padding=2),
    case("2d 4x4 s2 p1 decoder", (2, 3, 4, 4), (3, 2, 4, 4), stride=2, padding=1),
    case("2d groups2 s(2,1) d2 op(1,0)", (1, 4, 3, 4), (4, 1, 3, 2), groups=2,
         stride=(2, 1), dilation=2, output_padding=(1, 0)),
    case("2d depthwise multiplier s2 op1", (1, 3, 4, 3), (3, 2, 3, 3), groups=3,
         stride=2, output_padding=1),
    case("2d tiled k2 s2 unbatched", (2, 3, 4), (2, 3, 2, 2), stride=2),
    case("2d 1x1 s2 op1", (2, 3, 3, 3), (3, 2, 1, 1), stride=2, output_padding=1),
    case("3d groups2 s2 p1 op1", (1, 4, 2, 3, 2), (4, 1, 2, 3, 2), groups=2,
         stride=2, padding=1, output_padding=1),
]


def _conv_transpose_reference(x_shape, w_shape, kwargs):
    n = len(w_shape) - 2

    def ref(x, w):
        return _reference.lax_conv_transpose(
            x, w, None, _per_dim(kwargs.get("stride", 1), n),
            _per_dim(kwargs.get("padding", 0), n),
            _per_dim(kwargs.get("output_padding", 0), n), kwargs.get("groups", 1),
            _per_dim(kwargs.get("dilation", 1), n))

    return _batched(ref, len(x_shape) == n + 1)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_TRANSPOSE_CASES)
def test_conv_transpose_formulations_equal_lax_autodiff(request, x_shape, w_shape,
                                                        kwargs):
    n = len(w_shape) - 2
    x, w = _random(0, x_shape, w_shape)
    ref_fn = _conv_transpose_reference(x_shape, w_shape, kwargs)
    y_shape = jax.eval_shape(ref_fn, x, w).shape
    cot, u, v = _random(1, y_shape, x_shape, w_shape)

    def program(x, w, cot, u, v):
        out = {"lax": _results(ref_fn, x, w, cot, u, v)}
        for a in ALGORITHMS:
            out[a] = _results(lambda x, w, a=a: CONV_TRANSPOSE[n](
                x, w, algorithm=a, **kwargs), x, w, cot, u, v)
            out[a]["grad_fn_x"] = getattr(jg, f"conv_transpose{n}d_input")(
                x.shape, w, cot, algorithm=a, **kwargs)
            out[a]["grad_fn_w"] = getattr(jg, f"conv_transpose{n}d_weight")(
                x, w.shape, cot, algorithm=a, **kwargs)
        return out

    _check_formulations(request.node.callspec.id, jax.jit(program)(x, w, cot, u, v))


# --------------------------------------------------------------------------
# The gradient functions are differentiable with either formulation: the
# gradient of ⟨conv_input(ḡ, w), u⟩ w.r.t. (w, ḡ) and of ⟨conv_weight(x, ḡ), v⟩
# w.r.t. (x, ḡ) against lax autodiff of lax's VJP.


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradient_functions_second_order(algorithm):
    x_shape, w_shape = (1, 4, 7, 6), (4, 2, 3, 2)
    opts = dict(stride=2, padding=((1, 0), (0, 1)), groups=2)
    ref_conv = lambda x, w: _reference.lax_conv(
        x, w, None, (2, 2), ((1, 0), (0, 1)), (1, 1), 2)
    x, w = _random(2, x_shape, w_shape)
    g_shape = jax.eval_shape(ref_conv, x, w).shape
    g, u, v = _random(3, g_shape, x_shape, w_shape)

    def program(x, w, g):
        def ours_input(w, g):
            return jnp.sum(jg.conv2d_input(x_shape, w, g, algorithm=algorithm,
                                           **opts) * u)

        def ref_input(w, g):
            return jnp.sum(jax.vjp(lambda x: ref_conv(x, w), x)[1](g)[0] * u)

        def ours_weight(x, g):
            return jnp.sum(jg.conv2d_weight(x, w_shape, g, algorithm=algorithm,
                                            **opts) * v)

        def ref_weight(x, g):
            return jnp.sum(jax.vjp(lambda w: ref_conv(x, w), w)[1](g)[0] * v)

        return (jax.grad(ours_input, (0, 1))(w, g), jax.grad(ref_input, (0, 1))(w, g),
                jax.grad(ours_weight, (0, 1))(x, g), jax.grad(ref_weight, (0, 1))(x, g))

    oi, ri, ow, rw = jax.jit(program)(x, w, g)
    for name, a, e in zip(("input/w", "input/g", "weight/x", "weight/g"),
                          (*oi, *ow), (*ri, *rw)):
        _assert_close(a, e, f"{algorithm} d conv2d_{name}")


# --------------------------------------------------------------------------
# Large depthwise weight gradients run their taps in a loop
# (``_taps.DEPTHWISE_LOOP_MIN_ELEMENTS``); forced here on small shapes, the
# loop must give lax autodiff's numbers, also under vmap and in half types
# (float32 sums, one rounding), and the unrolled form must stay below the bound.

DEPTHWISE_LOOP_CASES = [
    case("1d k4 s3 d2", (3, 4, 17), (4, 1, 4), stride=3, dilation=2, padding=((2, 1),)),
    case("2d 3x2 s(2,1) d(1,2)", (2, 5, 9, 10), (5, 1, 3, 2), stride=(2, 1),
         dilation=(1, 2), padding=((1, 0), (2, 2))),
    case("3d 2x3x2 s(1,2,1)", (2, 3, 5, 6, 7), (3, 1, 2, 3, 2), stride=(1, 2, 1),
         padding=((1, 1), (0, 1), (1, 0))),
]


def _loop_spec(w_shape, kwargs):
    n = len(w_shape) - 2
    return ConvSpec(_per_dim(kwargs.get("stride", 1), n), kwargs.get("padding"),
                    _per_dim(kwargs.get("dilation", 1), n), w_shape[0], "taps")


def _lax_depthwise_weight_grad(x, g, w_shape, spec):
    ref = lambda w: _reference.lax_conv(x, w, None, spec.stride, spec.padding,
                                        spec.dilation, spec.groups)
    return jax.vjp(ref, jnp.zeros(w_shape, x.dtype))[1](g)[0]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", DEPTHWISE_LOOP_CASES)
def test_depthwise_weight_grad_loop_equals_lax_autodiff(monkeypatch, x_shape, w_shape,
                                                        kwargs):
    spec, kernel = _loop_spec(w_shape, kwargs), w_shape[2:]
    x, = _random(4, x_shape)
    g_shape = jax.eval_shape(lambda x: _reference.lax_conv(
        x, jnp.zeros(w_shape, x.dtype), None, spec.stride, spec.padding, spec.dilation,
        spec.groups), x).shape
    g, = _random(5, g_shape)
    def ours(x, g):   # a new function each time: no trace cached across the patch
        return _taps.weight_grad(x, g, spec, kernel)

    unrolled = jax.make_jaxpr(lambda x, g: ours(x, g))(x, g)
    monkeypatch.setattr(_taps, "DEPTHWISE_LOOP_MIN_ELEMENTS", 0)
    looped = jax.make_jaxpr(lambda x, g: ours(x, g))(x, g)
    assert "scan" in str(looped) and "scan" not in str(unrolled)
    expected = _lax_depthwise_weight_grad(x, g, w_shape, spec)
    _assert_close(jax.jit(ours)(x, g), expected, "loop vs lax autodiff")
    # vmap over a leading axis of both operands
    xs, gs = jnp.stack([x, 2 * x]), jnp.stack([g, -g])
    _assert_close(jax.jit(jax.vmap(ours))(xs, gs), jnp.stack([expected, -2 * expected]),
                  "loop under vmap")
    # half types: float32 products and sums, one rounding (compared with the
    # float64 sums of the same half inputs)
    xh, gh = x.astype(jnp.bfloat16), g.astype(jnp.bfloat16)
    half = jax.jit(ours)(xh, gh)
    assert half.dtype == jnp.bfloat16
    exact = _lax_depthwise_weight_grad(xh.astype(jnp.float64), gh.astype(jnp.float64),
                                       w_shape, spec)
    np.testing.assert_allclose(np.asarray(half, np.float64), np.asarray(exact),
                               rtol=2 ** -8, atol=2 ** -8 * float(jnp.max(jnp.abs(exact))))


def test_depthwise_weight_grad_loops_past_the_tree_reduction_width(monkeypatch):
    """On CPU an output spatial dim wider than TREE_REDUCTION_WIDTH takes the
    loop (XLA would otherwise write every tap's product out) from
    WIDE_LOOP_MIN_ELEMENTS products up; at the width itself, or below that
    size, the taps stay unrolled. All give lax autodiff's numbers."""
    width, least = _taps.TREE_REDUCTION_WIDTH, _taps.WIDE_LOOP_MIN_ELEMENTS
    assert (width, least) == (32, 1 << 20)
    spec = ConvSpec((1,), ((1, 1),), (1,), 3, "taps")
    # 2·3·3 taps·33 = 594 products: below the size bound, unrolled
    x, g = _random(6, (2, 3, width + 1), (2, 3, width + 1))
    assert "scan" not in str(jax.make_jaxpr(
        lambda x, g: _taps.weight_grad(x, g, spec, (3,)))(x, g))
    monkeypatch.setattr(_taps, "WIDE_LOOP_MIN_ELEMENTS", 2 * 3 * 3 * width)
    for length, looped in ((width, False), (width + 1, True)):
        x, g = _random(6, (2, 3, length), (2, 3, length))
        jaxpr = str(jax.make_jaxpr(lambda x, g: _taps.weight_grad(x, g, spec, (3,)))(x, g))
        assert ("scan" in jaxpr) == (looped and jax.default_backend() == "cpu"), length
        _assert_close(jax.jit(_taps.weight_grad, static_argnums=(2, 3))(x, g, spec, (3,)),
                      _lax_depthwise_weight_grad(x, g, (3, 1, 3), spec), f"L = {length}")


@pytest.mark.parametrize("x_shape, kernel, stride, dilation, padding", [
    ((2, 3, 1024), (1024,), (1,), (1,), ((0, 0),)),          # one output, 1 slice
    ((2, 3, 40), (17,), (3,), (2,), ((1, 2),)),              # 2 outputs < 17 taps
    ((1, 2, 9, 30), (7, 3), (2, 1), (1, 2), ((1, 0), (2, 2))),   # O < K in dim 0 only
    ((1, 2, 30, 9), (3, 7), (1, 2), (2, 1), ((2, 2), (1, 0))),   # ... in dim 1 only
    ((1, 2, 5, 6, 12), (4, 2, 6), (1, 3, 2), (2, 1, 1), ((2, 1), (0, 0), (1, 1))),
])
def test_patches_equal_lax_patches(x_shape, kernel, stride, dilation, padding):
    """``_taps.patches`` (sliced per output where a dim has fewer outputs than
    taps) against lax.conv_general_dilated_patches, whose feature order is
    (C, *K): the same elements in the same order."""
    spec = ConvSpec(stride, padding, dilation, 1)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(x_shape))
    out = _conv_output_shape(x_shape[2:], kernel, spec)
    ours = jax.jit(_taps.patches, static_argnums=(1, 2, 3))(x, spec, kernel, out)
    theirs = jax.lax.conv_general_dilated_patches(
        x, kernel, stride, padding, rhs_dilation=dilation,
        precision=jax.lax.Precision.HIGHEST)
    assert ours.shape == x_shape[:2] + (int(np.prod(kernel)),) + out
    np.testing.assert_array_equal(np.asarray(ours).reshape(theirs.shape), theirs)


# --------------------------------------------------------------------------
# The taps forward in halves (``_taps.forward(..., halves=True)``, what
# ``_core`` runs on CPU for unplaced operands when the forward is
# differentiated, ``_rules.differentiated``): a two-iteration loop over
# halves of the groups, or of the batch for odd G, so XLA writes y once
# instead of fusing the whole sum into each of y's consumers. The same sums
# in the same order: equal to the one-piece sum bit for bit, and to lax.

FORWARD_HALVES_CASES = [
    # (x shape, w shape, groups, stride, loop expected)
    ((4, 6, 9, 9), (6, 1, 3, 3), 6, 1, True),          # group halves, depthwise
    ((3, 6, 9, 9), (12, 1, 3, 3), 6, 2, True),         # group halves, multiplier 2
    ((3, 8, 9, 9), (4, 4, 3, 3), 2, 1, True),          # group halves, grouped Cᵢ = 4
    ((4, 3, 9, 9), (6, 1, 3, 3), 3, 1, True),          # odd groups: batch halves
    ((3, 3, 11), (3, 1, 5), 3, 1, False),              # odd batch, odd groups: one piece
    ((2, 4, 5, 6, 5), (4, 1, 3, 2, 3), 4, 1, True),    # 3-D
]


@pytest.mark.parametrize("x_shape, w_shape, groups, stride, loop", FORWARD_HALVES_CASES)
def test_taps_forward_in_halves_is_the_same_sum(monkeypatch, x_shape, w_shape, groups,
                                                stride, loop):
    # small shapes: lower the bound on the sum's size (the bound has its own test)
    monkeypatch.setitem(_plan.THRESHOLDS, "taps_forward_halves_min_terms",
                        _plan.Threshold(0, "", ""))
    nd = len(x_shape) - 2
    spec = ConvSpec((stride,) * nd, ((1, 1),) * nd, (1,) * nd, groups, "taps")
    x, w = _random(7, x_shape, w_shape)
    halves = jax.jit(_taps.forward, static_argnums=(2, 3))
    jaxpr = str(jax.make_jaxpr(_taps.forward, static_argnums=(2, 3))(x, w, spec, True))
    assert ("scan" in jaxpr) == loop
    for dtype in (jnp.float32, jnp.bfloat16):
        a, b = halves(x.astype(dtype), w.astype(dtype), spec, True), halves(
            x.astype(dtype), w.astype(dtype), spec, False)
        assert a.dtype == dtype and bool(jnp.all(a == b)), dtype
    expected = _reference.lax_conv(x, w, None, spec.stride, spec.padding, spec.dilation, groups)
    _assert_close(halves(x, w, spec, True), expected, "halves vs lax")
    # under vmap, and as the forward of jaxgrad.conv with its gradients
    xs = jnp.stack([x, -x])
    _assert_close(jax.vmap(lambda x: halves(x, w, spec, True))(xs),
                  jnp.stack([expected, -expected]), "halves under vmap")
    conv = lambda x, w: jaxgrad.conv(x, w, stride=stride, padding=1, groups=groups,
                                     algorithm="taps")
    # what _core runs: halves where the forward is differentiated (on CPU),
    # one fused sum for a plain evaluation
    on_cpu = jax.default_backend() == "cpu"
    assert "scan" not in str(jax.make_jaxpr(conv)(x, w))
    assert ("scan" in str(jax.make_jaxpr(lambda x, w: jax.vjp(conv, x, w)[0])(x, w))) == (
        loop and on_cpu)
    ours = lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
    ref = lambda x, w: jnp.sum(jnp.sin(_reference.lax_conv(
        x, w, None, spec.stride, spec.padding, spec.dilation, groups)))
    for a, e, name in zip(jax.grad(ours, (0, 1))(x, w), jax.grad(ref, (0, 1))(x, w), "xw"):
        _assert_close(a, e, f"d/d{name} through the halves forward")


def test_taps_forward_halves_only_for_large_sums():
    """Below taps_forward_halves_min_terms (N·ΠO·|w| multiply-adds) the
    differentiated forward stays one fused sum; at the bound it runs in halves."""
    bound = _plan.THRESHOLDS["taps_forward_halves_min_terms"].value
    assert bound == 1 << 20
    w = jnp.ones((64, 1, 4, 4))                  # |w| = 2^10
    conv = lambda x, w: jaxgrad.conv2d(x, w, padding=((2, 1), (2, 1)), groups=64)
    for n, halves in ((31, False), (32, True)):  # N·ΠO·|w| = n·2^5·2^10
        x = jnp.ones((n, 64, 4, 8))
        assert n * 32 * w.size < bound or halves
        jaxpr = str(jax.make_jaxpr(lambda x, w: jax.vjp(conv, x, w)[0])(x, w))
        assert ("scan" in jaxpr) == (halves and jax.default_backend() == "cpu"), n


# The input gradient with one output channel per group at stride 1, as taps,
# runs as the taps forward of ḡ with the flipped kernel (``_taps.by_forward``):
# one pad of ḡ and ΠK slices of it, where the slab form pads each of the ΠK
# products. Under "auto" and "autotune" only: ``algorithm="taps"`` keeps the
# slabs, which place a NaN tap's NaN as torch does (the forward form
# multiplies ḡ's padding by every tap). Past ``taps_forward_max_terms`` taps
# (the forward's own bound) the slabs stay too.

def _input_grad_spec(w_shape, kwargs, algorithm):
    n = len(w_shape) - 2
    dilation = _per_dim(kwargs.get("dilation", 1), n)
    return ConvSpec((1,) * n, _lax_pads(kwargs.get("padding", 0), w_shape[2:], dilation),
                    dilation, kwargs["groups"], algorithm)


@pytest.mark.parametrize("x_shape, w_shape, kwargs",
                         [pytest.param(*config, id=name) for name, config in ONE_OUT_PER_GROUP.items()])
def test_one_output_per_group_input_gradient_as_a_taps_forward(monkeypatch, x_shape,
                                                               w_shape, kwargs):
    x, w = _random(3, x_shape, w_shape)
    y_shape = jax.eval_shape(_conv_reference(x_shape, w_shape, kwargs), x, w).shape
    cot, u, v = _random(4, y_shape, x_shape, w_shape)
    kernel_taps = int(np.prod(w_shape[2:]))

    def ours(algorithm):
        spec = _input_grad_spec(w_shape, kwargs, algorithm)
        return lambda cot, w: _core.input_grad_by(cot, w, spec, x_shape[2:], "taps")

    ref = lambda cot, w: jax.vjp(_conv_reference(x_shape, w_shape, kwargs), x, w)[1](cot)[0]
    expected = ref(cot, w)
    for algorithm, bound, pads in (("auto", kernel_taps, 1), ("autotune", kernel_taps, 1),
                                   ("taps", kernel_taps, kernel_taps),
                                   ("auto", kernel_taps - 1, kernel_taps)):
        monkeypatch.setitem(_plan.THRESHOLDS, "taps_forward_max_terms",
                            _plan.Threshold(bound, "", ""))
        jaxpr = str(jax.make_jaxpr(ours(algorithm))(cot, w))
        assert jaxpr.count(" pad[") == pads, (algorithm, bound, jaxpr)
        _assert_close(jax.jit(ours(algorithm))(cot, w), expected,
                      f"x̄ under {algorithm}, bound {bound}")
    # the public functions under "auto" on CPU (taps for these groups) to
    # second order: x̄'s own VJP, and the conv's grad-of-grad, whose ∂/∂x of
    # ⟨w̄, v⟩ is this input gradient
    monkeypatch.setitem(_plan.THRESHOLDS, "taps_forward_max_terms",
                        _plan.Threshold(216, "", ""))
    n = len(w_shape) - 2
    got = _results(lambda x, w: CONV[n](x, w, algorithm="auto", **kwargs), x, w, cot, u, v)
    want = _results(_conv_reference(x_shape, w_shape, kwargs), x, w, cot, u, v)
    for key in want:
        _assert_close(got[key], want[key], f"{key} under auto")


def test_the_nan_of_a_tap_stays_in_its_rows_under_taps_only():
    # depthwise K = 3 at stride 1, no padding: ḡ ones, w[0] NaN. x̄[i] =
    # Σ_{p+k=i} w[k]·ḡ[p]: tap 0 reaches rows 0..2 only under "taps" (torch's
    # placement); the forward form of "auto" multiplies ḡ's padding by it.
    w = jnp.asarray([[[np.nan, 1.0, 1.0]], [[1.0, 2.0, 3.0]]])
    cot = jnp.ones((1, 2, 3))
    taps = jg.conv1d_input((1, 2, 5), w, cot, groups=2, algorithm="taps")
    np.testing.assert_array_equal(taps[0], [[np.nan, np.nan, np.nan, 2.0, 1.0],
                                            [1.0, 3.0, 6.0, 5.0, 3.0]])
    if jax.default_backend() == "cpu":    # "auto" takes taps here on CPU only
        auto = jg.conv1d_input((1, 2, 5), w, cot, groups=2, algorithm="auto")
        assert bool(jnp.all(jnp.isnan(auto[0, 0])))
        np.testing.assert_array_equal(auto[0, 1], [1.0, 3.0, 6.0, 5.0, 3.0])


# --------------------------------------------------------------------------
# Edge shapes: an empty batch and empty input channels (both allowed, as in
# torch) give empty / all-zero gradients, on the tiled path too.


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    case("empty batch", (0, 2, 6, 6), (3, 2, 3, 3), stride=2),
    case("empty batch tiled k2 s2", (0, 2, 6, 6), (3, 2, 2, 2), stride=2),
    case("no input channels tiled k2 s2", (2, 0, 6, 6), (3, 0, 2, 2), stride=2),
    case("empty batch tiled 1x1", (0, 2, 5), (3, 2, 1)),
])
def test_empty_shapes(algorithm, x_shape, w_shape, kwargs):
    x, w = jnp.ones(x_shape), jnp.ones(w_shape)
    ref = _conv_reference(x_shape, w_shape, kwargs)
    y_ref, vjp_ref = jax.vjp(ref, x, w)
    y, vjp = jax.vjp(lambda x, w: jaxgrad.conv(x, w, algorithm=algorithm, **kwargs),
                     x, w)
    cot = jnp.ones(y_ref.shape)
    for name, a, e in zip(("output", "grad_x", "grad_w"), (y, *vjp(cot)),
                          (y_ref, *vjp_ref(cot))):
        assert a.shape == e.shape, name
        np.testing.assert_array_equal(a, e, err_msg=f"{algorithm} {name}")


# --------------------------------------------------------------------------
# Half precision: each formulation against float64 lax autodiff of the same
# (rounded) inputs, to the dtype's tolerance; results keep the input dtype.

HALF_CASES = [
    ("conv", (2, 4, 7, 7), (6, 4, 3, 3), dict(stride=2, padding=1)),
    ("conv", (2, 4, 6, 6), (4, 1, 3, 3), dict(groups=4, padding=1)),     # depthwise
]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision(dtype):
    def program(args):
        out = []
        for (op, x_shape, w_shape, kwargs), (x, w, cot) in zip(HALF_CASES, args):
            fns = {a: (lambda x, w, a=a, op=op, kwargs=kwargs: getattr(jaxgrad, op)(
                x, w, algorithm=a, **kwargs)) for a in ALGORITHMS}
            ref = (_conv_reference if op == "conv" else _conv_transpose_reference)(
                x_shape, w_shape, kwargs)
            as64 = lambda a: a.astype(jnp.float64)
            y_ref, vjp_ref = jax.vjp(ref, as64(x), as64(w))
            row = {"lax": (y_ref, *vjp_ref(as64(cot)))}
            for a, f in fns.items():
                y, vjp = jax.vjp(f, x, w)
                row[a] = (y, *vjp(cot))
            out.append(row)
        return out

    args = []
    for i, (op, x_shape, w_shape, kwargs) in enumerate(HALF_CASES):
        ref = (_conv_reference if op == "conv" else _conv_transpose_reference)(
            x_shape, w_shape, kwargs)
        x, w = _random(10 + i, x_shape, w_shape)
        (cot,) = _random(20 + i, jax.eval_shape(ref, x, w).shape)
        args.append(tuple(a.astype(dtype) for a in (x, w, cot)))
    for (op, x_shape, w_shape, kwargs), row in zip(HALF_CASES, jax.jit(program)(args)):
        for a in ALGORITHMS:
            for name, value, expected in zip(("output", "grad_x", "grad_w"), row[a],
                                             row["lax"]):
                assert value.dtype == jnp.dtype(dtype), (a, name, value.dtype)
                _assert_close(value, expected, f"{dtype} {a} {op} {kwargs} {name}",
                              dtype)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_input_gradient_accumulates_in_float32(dtype, algorithm):
    """docs/precision.md: half types accumulate in float32, one rounding at the end.

    conv1d with K = 9 taps w = [B, 1, ..., 1], B = 2^8 (bfloat16) or 2^11
    (float16): the spacing of the half type at B is 2, so a running half sum
    B + 1 rounds back to B. Row i of x̄ for ḡ = ones (I = 17, O = 9) sums the
    taps k <= i: B + i for i < 9, exactly representable for even i, and the
    float32 sum rounded once gives exactly that. Summing tap by tap in half
    precision would stall at B.
    """
    big = 2 ** 8 if dtype == "bfloat16" else 2 ** 11
    w = jnp.asarray([[[big] + [1] * 8]], dtype)
    x_bar = jg.conv1d_input((1, 1, 17), w, jnp.ones((1, 1, 9), dtype),
                            algorithm=algorithm)
    rows = np.asarray(x_bar, np.float64)[0, 0]
    even = np.arange(0, 9, 2)
    np.testing.assert_array_equal(rows[even], big + even,
                                  err_msg=f"{dtype} {algorithm}: x̄ rows {rows[:9]}")
    np.testing.assert_array_equal(rows[9:], np.arange(8, 0, -1))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_forward_taps_accumulates_in_float32(dtype):
    """The forward's taps sum (depthwise, two channels) in float32, rounded once.

    w = [B, 1, ..., 1] (9 taps), x = ones: each output is B + 8, exactly
    representable; a running half sum would stall at B (spacing 2 there).
    """
    big = 2 ** 8 if dtype == "bfloat16" else 2 ** 11
    w = jnp.asarray([[[big] + [1] * 8]] * 2, dtype)
    x = jnp.ones((1, 2, 12), dtype)
    assert _plan.forward_choice(ConvSpec((1,), ((0, 0),), (1,), 2, "taps"), x.shape,
                                w.shape, x.dtype).formulation == "taps"
    y = jaxgrad.conv1d(x, w, groups=2, algorithm="taps")
    assert y.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(y, np.float64), np.full((1, 2, 4), big + 8))


# --------------------------------------------------------------------------
# Selection API.


def _count_convs_and_dots(fn, *args) -> tuple[int, int]:
    text = str(jax.make_jaxpr(fn)(*args))
    return text.count("conv_general_dilated"), text.count("dot_general")


def _loss_grad(algorithm=None):
    def loss(x, w):
        return jnp.sum(jaxgrad.conv2d(x, w, stride=2, padding=1, algorithm=algorithm) ** 2)
    return jax.grad(loss, argnums=(0, 1))


@pytest.fixture
def default_algorithm():
    """Restores the global default however a test leaves it."""
    previous = jaxgrad.get_conv_algorithm()
    yield previous
    jaxgrad.set_conv_algorithm(previous)


def test_per_call_algorithm_selects_the_formulation(rng):
    """transpose: three convolutions (forward, x̄, w̄); taps: one, plus GEMMs."""
    x, w = jnp.asarray(rng.standard_normal((2, 3, 8, 8))), jnp.asarray(
        rng.standard_normal((4, 3, 3, 3)))
    assert _count_convs_and_dots(_loss_grad("transpose"), x, w) == (3, 0)
    convs, dots = _count_convs_and_dots(_loss_grad("taps"), x, w)
    assert convs == 1 and dots >= 2


def test_conv_transpose_forward_follows_the_algorithm():
    x, w = jnp.ones((1, 3, 4, 4)), jnp.ones((3, 2, 3, 3))
    f = lambda a: lambda x, w: jaxgrad.conv_transpose2d(x, w, stride=2, algorithm=a)
    assert _count_convs_and_dots(f("transpose"), x, w) == (1, 0)
    assert _count_convs_and_dots(f("taps"), x, w)[0] == 0
    # and so do the gradient functions
    g = jnp.ones((1, 2, 4, 4))
    weight = lambda a: lambda x, g: jg.conv2d_weight(x, (2, 3, 3, 3), g, padding=1,
                                                     algorithm=a)
    assert _count_convs_and_dots(weight("transpose"), x, g) == (1, 0)
    assert _count_convs_and_dots(weight("taps"), x, g)[0] == 0


def test_set_conv_algorithm_returns_previous_and_sets_default(rng, default_algorithm):
    assert default_algorithm == "auto"
    x, w = jnp.ones((2, 3, 8, 8)), jnp.ones((4, 3, 3, 3))
    assert jaxgrad.set_conv_algorithm("transpose") == "auto"
    assert jaxgrad.get_conv_algorithm() == "transpose"
    assert _count_convs_and_dots(_loss_grad(), x, w) == (3, 0)
    assert jaxgrad.set_conv_algorithm("taps") == "transpose"
    assert _count_convs_and_dots(_loss_grad(), x, w)[0] == 1
    # an explicit per-call choice wins over the default
    assert _count_convs_and_dots(_loss_grad("transpose"), x, w) == (3, 0)
    assert jaxgrad.set_conv_algorithm("auto") == "taps"
    assert jaxgrad.get_conv_algorithm() == "auto"


def test_conv_algorithm_context_restores_on_exit_and_on_exception(default_algorithm):
    x, w = jnp.ones((2, 3, 8, 8)), jnp.ones((4, 3, 3, 3))
    with jaxgrad.conv_algorithm("transpose") as value:
        assert value == "transpose" and jaxgrad.get_conv_algorithm() == "transpose"
        assert _count_convs_and_dots(_loss_grad(), x, w) == (3, 0)
        with jaxgrad.conv_algorithm("taps"):
            assert _count_convs_and_dots(_loss_grad(), x, w)[0] == 1
        assert jaxgrad.get_conv_algorithm() == "transpose"
    assert jaxgrad.get_conv_algorithm() == default_algorithm
    with pytest.raises(RuntimeError, match="inside"), jaxgrad.conv_algorithm("taps"):
        raise RuntimeError("inside")
    assert jaxgrad.get_conv_algorithm() == default_algorithm


def test_one_jitted_function_is_traced_again_under_each_new_default(rng, default_algorithm):
    """The default is part of jax.jit's cache key: calling the same jitted
    function under another default traces it again with that formulation,
    and a default seen before reuses its trace (no fresh function needed)."""
    x = jnp.asarray(rng.standard_normal((2, 3, 8, 8)))
    w = jnp.asarray(rng.standard_normal((4, 3, 3, 3)))
    traces = []

    @jax.jit
    def loss_grad(x, w):
        traces.append(jaxgrad.get_conv_algorithm())    # runs only while tracing
        return _loss_grad()(x, w)

    got = {}
    for a in ("transpose", "taps", "transpose"):
        with jaxgrad.conv_algorithm(a):
            got[a] = loss_grad(x, w)
            text = loss_grad.lower(x, w).as_text()
        # transpose: forward, x̄ and w̄ are each a convolution; taps: one
        assert text.count("convolution(") == (3 if a == "transpose" else 1), (a, text)
    assert traces == ["transpose", "taps"]
    previous = jaxgrad.set_conv_algorithm("taps")
    loss_grad(x, w)
    with jaxgrad.conv_algorithm("transpose"):
        loss_grad(x, w)
    # the block restored "taps" (set outside it), and its trace is reused
    assert jaxgrad.get_conv_algorithm() == "taps"
    loss_grad(x, w)
    assert loss_grad.lower(x, w).as_text().count("convolution(") == 1
    assert traces == ["transpose", "taps"]
    jaxgrad.set_conv_algorithm(previous)
    loss_grad(x, w)
    assert previous == "auto" and traces == ["transpose", "taps", "auto"]
    ref = jax.grad(lambda x, w: jnp.sum(_reference.lax_conv(
        x, w, None, (2, 2), ((1, 1), (1, 1)), (1, 1), 1) ** 2), argnums=(0, 1))(x, w)
    for a, pair in got.items():
        for name, value, expected in zip("xw", pair, ref):
            _assert_close(value, expected, f"{a} grad {name}")


def test_a_thread_traces_a_shared_jitted_function_under_its_own_default(default_algorithm):
    """A block in one thread does not change what another thread traces
    with: two threads calling one jitted function under different defaults at
    the same time each get their own formulation; a new thread starts from
    "auto" whatever the caller set (a block or set_conv_algorithm)."""
    import threading
    x, w = jnp.ones((2, 3, 8, 8)), jnp.ones((4, 3, 3, 3))
    loss_grad = jax.jit(_loss_grad())
    seen, entered, release = {}, threading.Event(), threading.Event()

    def worker():
        try:
            with jaxgrad.conv_algorithm("transpose"):
                seen["worker default"] = jaxgrad.get_conv_algorithm()
                loss_grad(x, w)
                seen["worker"] = loss_grad.lower(x, w).as_text().count("convolution(")
                entered.set()
                release.wait(60)
        except BaseException as e:      # reported by the main thread
            seen["error"] = e
            entered.set()

    with jaxgrad.conv_algorithm("taps"):
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        try:
            assert entered.wait(60)
            # the worker's block is open: this thread still sees and traces
            # with its own "taps"
            assert jaxgrad.get_conv_algorithm() == "taps"
            assert _count_convs_and_dots(_loss_grad(), x, w)[0] == 1
            loss_grad(x, w)
            seen["main"] = loss_grad.lower(x, w).as_text().count("convolution(")
        finally:
            release.set()
        thread.join(60)
        fresh = _in_a_new_thread(lambda: jaxgrad.get_conv_algorithm())
    if "error" in seen:
        raise seen["error"]
    assert not thread.is_alive()
    assert seen == {"worker default": "transpose", "worker": 3, "main": 1}
    assert fresh == "auto"      # not the caller's block
    jaxgrad.set_conv_algorithm("transpose")
    default, text = _in_a_new_thread(lambda: (
        jaxgrad.get_conv_algorithm(), jax.jit(_loss_grad()).lower(x, w).as_text()))
    # a new thread: "auto", the same program as "auto" asked for per call
    auto = jax.jit(_loss_grad("auto")).lower(x, w).as_text()
    assert default == "auto"
    assert text.count("convolution(") == auto.count("convolution(")


def _in_a_new_thread(fn):
    """fn() run in a new (daemon) thread; its result."""
    import threading
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(60)
    assert len(out) == 1, "the new thread did not finish"
    return out[0]


def test_the_default_is_per_thread_not_per_contextvars_context(default_algorithm):
    """Set inside a copied contextvars context, the default is still this
    thread's (as JAX's own configuration): what a trace reads and what
    jax.jit's cache is keyed on cannot disagree."""
    import contextvars
    x, w = jnp.ones((2, 3, 8, 8)), jnp.ones((4, 3, 3, 3))
    contextvars.copy_context().run(jaxgrad.set_conv_algorithm, "transpose")
    assert jaxgrad.get_conv_algorithm() == "transpose"
    assert jax.jit(_loss_grad()).lower(x, w).as_text().count("convolution(") == 3


def test_jit_traced_under_each_algorithm_gives_the_same_numbers(rng, default_algorithm):
    x = jnp.asarray(rng.standard_normal((2, 4, 9, 8)))
    w = jnp.asarray(rng.standard_normal((6, 2, 3, 3)))

    def make_loss_grads():
        # a fresh function per algorithm (one function traced again under
        # each default is test_one_jitted_function_is_traced_again_...)
        def loss_grads(x, w):
            def loss(x, w):
                y = jaxgrad.conv2d(x, w, stride=2, padding=1, groups=2)
                return jnp.sum(jnp.tanh(jaxgrad.conv_transpose2d(y, w, stride=2,
                                                                 groups=2)))
            return jax.grad(loss, argnums=(0, 1))(x, w)
        return loss_grads

    traced = {}
    for a in ALGORITHMS:
        loss_grads = make_loss_grads()
        with jaxgrad.conv_algorithm(a):
            traced[a] = jax.jit(loss_grads)(x, w)
            counts = _count_convs_and_dots(loss_grads, x, w)
        # transpose: every kernel a convolution; taps: only conv_core forwards.
        assert counts[1] == 0 if a == "transpose" else counts[1] > 0, (a, counts)

    def ref_loss(x, w):
        y = _reference.lax_conv(x, w, None, (2, 2), ((1, 1), (1, 1)), (1, 1), 2)
        return jnp.sum(jnp.tanh(_reference.lax_conv_transpose(
            y, w, None, (2, 2), (0, 0), (0, 0), 2, (1, 1))))

    ref = jax.jit(jax.grad(ref_loss, argnums=(0, 1)))(x, w)
    for name, t, p, e in zip("xw", traced["taps"], traced["transpose"], ref):
        _assert_close(t, p, f"jit taps vs transpose grad {name}")
        _assert_close(t, e, f"jit taps vs lax grad {name}")


# --------------------------------------------------------------------------
# Error wording: the function and the argument named, the value shown.

CHOICES = r"\('auto', 'transpose', 'taps', 'autotune'\)"


@pytest.mark.parametrize("call, fn", [
    (lambda a: jaxgrad.conv2d(jnp.ones((1, 1, 4, 4)), jnp.ones((1, 1, 2, 2)),
                              algorithm=a), "conv2d"),
    (lambda a: jaxgrad.conv(jnp.ones((1, 1, 4)), jnp.ones((1, 1, 2)), algorithm=a),
     "conv"),
    (lambda a: jaxgrad.conv_transpose1d(jnp.ones((1, 1, 4)), jnp.ones((1, 1, 2)),
                                        algorithm=a), "conv_transpose1d"),
    (lambda a: jg.conv2d_input((1, 1, 4, 4), jnp.ones((1, 1, 2, 2)),
                               jnp.ones((1, 1, 3, 3)), algorithm=a), "conv2d_input"),
    (lambda a: jg.conv3d_weight(jnp.ones((1, 1, 3, 3, 3)), (1, 1, 2, 2, 2),
                                jnp.ones((1, 1, 2, 2, 2)), algorithm=a),
     "conv3d_weight"),
    (lambda a: jg.conv_transpose2d_input((1, 1, 2, 2), jnp.ones((1, 1, 2, 2)),
                                         jnp.ones((1, 1, 3, 3)), algorithm=a),
     "conv_transpose2d_input"),
])
def test_bad_algorithm_names_function_and_value(call, fn):
    with pytest.raises(ValueError, match=rf"^{fn}: `algorithm` must be one of "
                                         rf"{CHOICES} or None, got 'fft'$"):
        call("fft")
    with pytest.raises(TypeError, match=rf"^{fn}: `algorithm` must be one of "
                                        rf"{CHOICES} or None, got 3 of type int$"):
        call(3)


def test_bad_default_algorithm_errors(default_algorithm):
    with pytest.raises(ValueError, match=rf"^set_conv_algorithm: `algorithm` must be "
                                         rf"one of {CHOICES}.*, got 'x'$"):
        jaxgrad.set_conv_algorithm("x")
    with pytest.raises(TypeError, match=rf"^set_conv_algorithm: `algorithm` must be "
                                        rf"one of {CHOICES}, got None of type NoneType$"):
        jaxgrad.set_conv_algorithm(None)
    for value, error, shown in (("x", ValueError, "'x'"), (None, TypeError, "None of type NoneType"),
                                (1.5, TypeError, "1.5 of type float")):
        with pytest.raises(error, match=rf"^conv_algorithm: `algorithm` must be one "
                                        rf"of {CHOICES}.*, got {shown}$"), \
                jaxgrad.conv_algorithm(value):
            pass
    assert jaxgrad.get_conv_algorithm() == default_algorithm


# --------------------------------------------------------------------------
# "auto": _plan.choose, by hand.


def _spec(n, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    return ConvSpec((stride,) * n, ((padding, padding),) * n, (dilation,) * n, groups,
                    algorithm)


def _out(i, k, s, p, d=1):
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


_UNPLACED = np.ones(2)   # an operand without mesh axes (numpy: no device work)


def _choose(kind, spec, x_shape, w_shape):
    """choose() for a conv of these shapes; the output shape worked out here."""
    out = tuple(_out(i, k, s, lo, d) for i, k, s, (lo, _), d in zip(
        x_shape[2:], w_shape[2:], spec.stride, spec.padding, spec.dilation))
    g_shape = (x_shape[0], w_shape[0]) + out
    return _plan.choose(kind, spec, x_shape, w_shape, g_shape, _UNPLACED)


def test_choose_explicit_algorithm_passes_through():
    huge = ((64, 512, 256, 256), (512, 512, 3, 3))  # far above TAPS_MAX_ELEMENTS
    for algorithm in ALGORITHMS:
        for kind in ("input", "weight"):
            assert _choose(kind, _spec(2, padding=1, algorithm=algorithm), *huge) == algorithm
            assert _choose(kind, _spec(2, stride=2, algorithm=algorithm),
                           (8, 64, 16, 16), (128, 64, 4, 4)) == algorithm


@pytest.mark.parametrize("kind", ["input", "weight"])
@pytest.mark.parametrize("name, spec, x_shape, w_shape", [
    # a 3x3 map (9 positions: dense_taps_input_grad_max_positions), batch 128,
    # buffer 128·15·9·9 = 0.16M elements (above the small row's batch), 65
    # output channels (odd counts: the aligned weight-gradient row does not apply)
    ("dense 3x3 p1", _spec(2, padding=1), (128, 15, 3, 3), (65, 15, 3, 3)),
    # 15 channels per group, buffer 2·60·16·64 = 0.12M, batch 2
    ("grouped strided", _spec(2, stride=2, padding=1, groups=4), (2, 60, 16, 16),
     (132, 15, 4, 4)),
    ("depthwise strided", _spec(2, stride=2, padding=1, groups=64), (8, 64, 16, 16),
     (64, 1, 3, 3)),
    ("1x1 strided", _spec(2, stride=2), (8, 64, 16, 16), (128, 64, 1, 1)),
    # stride = kernel: the patches are a reshape, whatever the positions
    ("tiled 4x4 s4", _spec(2, stride=4), (8, 64, 16, 16), (128, 64, 4, 4)),
    # 3-D, few output channels and a large buffer: XLA CPU's 3-D path is slower
    # (batch 16: above swapped_weight_max_batch_input_product, the weight
    # gradient too)
    ("3-D 3x3x3", _spec(3, padding=1), (16, 64, 16, 16, 16), (8, 64, 3, 3, 3)),
    ("many groups", _spec(2, padding=1, groups=64), (8, 512, 28, 28), (512, 8, 3, 3)),
])
def test_choose_auto_on_cpu_picks_taps(kind, name, spec, x_shape, w_shape):
    assert jax.default_backend() == "cpu"
    assert _choose(kind, spec, x_shape, w_shape) == "taps", name


def _threshold(name):
    return _plan.THRESHOLDS[name].value


@pytest.mark.parametrize("kind", ["input", "weight"])
def test_choose_auto_dense_taps_needs_output_channels_and_a_buffer_in_bounds(kind):
    """Dense 3x3 stride 1 'same' convs, buffer B = N·C_in·9·H·W, worked out from
    the table's rows: taps iff B <= small, or C_out >= min_out and B <= max."""
    small, most = _threshold("dense_taps_small_elements"), _threshold("dense_taps_max_elements")
    min_out = _threshold("dense_taps_min_out_channels")
    spec = _spec(2, padding=1)

    def choose(n, c_in, c_out, side):
        return _choose(kind, spec, (n, c_in, side, side), (c_out, c_in, 3, 3))
    # the ResNet-50 3x3 layer of the bench, batch 8: B = 8·64·9·3136 = 14.5M
    assert 8 * 64 * 9 * 56 * 56 > most
    assert choose(8, 64, 64, 56) == "transpose"
    # a buffer within `small`: taps whatever the channels; twice it: not
    side = 16
    per_sample = 9 * side * side
    c_in = small // per_sample
    # (17 output channels: more than the swapped weight-gradient row takes)
    thin = _threshold("swapped_weight_max_out_channels") + 1
    assert c_in * per_sample <= small < 2 * c_in * per_sample and min_out > thin
    assert choose(1, c_in, thin, side) == "taps"
    assert choose(2, c_in, thin, side) == "transpose"
    # ... and only up to dense_taps_small_max_batch samples: the same buffer
    # split over one more sample than that is the textbook rule's
    batch = _threshold("dense_taps_small_max_batch")
    few = c_in // (batch + 1)
    assert (batch + 1) * few * per_sample <= small
    assert choose(batch, few, thin, side) == "taps"
    assert choose(batch + 1, few, thin, side) == "transpose"
    # ... except with at most dense_taps_small_thin_channels input channels
    # (an RGB stem): any batch
    rgb = _threshold("dense_taps_small_thin_channels")
    assert rgb >= 3 and 16 * rgb * per_sample <= small
    assert choose(16, rgb, thin, side) == "taps"
    assert choose(16, rgb + 1, thin, side) == "transpose"
    # between small and max: the output channels decide (the input gradient:
    # only on maps of at most dense_taps_input_grad_max_positions positions)
    n = 2
    assert small < n * c_in * per_sample <= most
    assert choose(n, c_in, min_out, side) == ("taps" if kind == "weight" else "transpose")
    assert choose(n, c_in, min_out - 1, side) == "transpose"
    if kind == "input":
        tiny = small // (n * 9 * 9) + 1     # 3x3 px, buffer just above small
        assert _threshold("dense_taps_input_grad_max_positions") == 9
        assert choose(n, tiny, min_out, 3) == "taps"
        assert choose(n, tiny, min_out - 1, 3) == "transpose"
    # above max: the textbook rule whatever the channels
    n = most // (c_in * per_sample) + 1
    assert choose(n, c_in, 4 * min_out, side) == "transpose"
    # grouped convs split per group count channels per group
    grouped = _spec(2, padding=1, groups=2)
    assert _choose(kind, grouped, (2, 2 * c_in, side, side),
                   (2 * min_out, c_in, 3, 3)) == "taps"
    assert _choose(kind, grouped, (2, 2 * c_in, side, side),
                   (2 * min_out - 2, c_in, 3, 3)) == "transpose"


def test_choose_auto_aligned_dense_weight_gradients_keep_the_convolution():
    """Dense, channel counts multiples of 8, at least
    dense_taps_aligned_min_in_channels inputs: the weight gradient keeps XLA's
    convolution below dense_taps_aligned_weight_min_out_channels output
    channels, whatever the buffer; the input gradient is not affected; one odd
    count, too few inputs or groups lift it."""
    limit = _threshold("dense_taps_aligned_weight_min_out_channels")
    min_in = _threshold("dense_taps_aligned_min_in_channels")
    assert min_in % 8 == 0 and min_in >= 16
    spec = _spec(2, padding=1)
    x = (1, 2 * min_in, 8, 8)          # buffer 2·min_in·9·64: small
    assert 2 * min_in * 9 * 64 <= _threshold("dense_taps_small_elements")
    w = lambda c_out, c_in=2 * min_in: (c_out, c_in, 3, 3)
    assert _choose("weight", spec, x, w(limit - 8)) == "transpose"
    assert _choose("weight", spec, x, w(limit)) == "taps"
    assert _choose("input", spec, x, w(limit - 8)) == "taps"
    assert _choose("weight", spec, x, w(limit - 7)) == "taps"
    odd = (1, 2 * min_in - 1, 8, 8)
    assert _choose("weight", spec, odd, w(limit - 8, 2 * min_in - 1)) == "taps"
    few = (1, min_in - 8, 8, 8)
    assert _choose("weight", spec, few, w(limit - 8, min_in - 8)) == "taps"
    assert _choose("weight", spec, (1, min_in, 8, 8), w(limit - 8, min_in)) == "transpose"
    # grouped convolutions: the row is for dense ones only
    grouped = _spec(2, padding=1, groups=2)
    assert _choose("weight", grouped, x, (limit - 16, min_in, 3, 3)) == "taps"


def test_choose_auto_above_taps_max_elements_is_transpose_but_for_depthwise():
    # N * C_in * taps * positions: 1 * 128 * 1 * 1024^2 = 2^27 is the limit itself
    limit = _plan.TAPS_MAX_ELEMENTS
    assert limit == 2 ** 27
    spec = _spec(2)
    for kind in ("input", "weight"):
        assert _choose(kind, spec, (1, 128, 1024, 1024), (8, 128, 1, 1)) == "taps"
        assert _choose(kind, spec, (1, 129, 1024, 1024), (8, 129, 1, 1)) == "transpose"
        # depthwise gradients build no buffer (one fused slab per tap; the
        # weight gradient loops over its taps): taps at any size ...
        assert _choose(kind, _spec(2, padding=1, groups=512), (64, 512, 64, 64),
                       (512, 1, 3, 3)) == "taps"
        assert _choose(kind, _spec(3, padding=1, groups=32), (16, 32, 32, 32, 32),
                       (32, 1, 3, 3, 3)) == "taps"
        # ... but a channel multiplier's input gradient builds one (a GEMM per
        # group); its weight gradient no longer does (the input repeated m
        # times), but was not measured at this size: the textbook rule too
        assert _choose(kind, _spec(2, padding=1, groups=512), (64, 512, 64, 64),
                       (1024, 1, 3, 3)) == "transpose"
    # and a 2-D depthwise weight gradient with few channels keeps the
    # convolution (depthwise_weight_few_channels), its input gradient does not
    few = (_spec(2, padding=1, groups=16), (64, 16, 256, 256), (16, 1, 3, 3))
    assert _choose("weight", *few) == "transpose"
    assert _choose("input", *few) == "taps"
    # above the bound the same holds in 1-D (measured: 1.9x), not in 3-D (0.28x)
    few_1d = (_spec(1, padding=4, groups=16), (64, 16, 16384), (16, 1, 9))
    assert _choose("weight", *few_1d) == "transpose"
    assert _choose("weight", _spec(1, padding=4, groups=16), (32, 16, 16384),
                   (16, 1, 9)) == "taps"     # within the bound: as fitted
    assert _choose("weight", _spec(3, padding=1, groups=16), (32, 16, 32, 32, 32),
                   (16, 1, 3, 3, 3)) == "taps"


def test_choose_auto_off_cpu_and_under_explicit_mesh_axes_is_transpose(monkeypatch):
    spec, x_shape, w_shape = _spec(2, padding=1, groups=4), (2, 8, 8, 8), (8, 2, 3, 3)
    mesh = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Explicit,))
    x = jax.device_put(jnp.ones(x_shape), NamedSharding(mesh, PartitionSpec("data")))
    g_shape = (2, 8, 8, 8)
    for kind in ("input", "weight"):
        assert _plan.choose(kind, spec, x_shape, w_shape, g_shape, x) == "transpose"
        assert _plan.choose(kind, spec, x_shape, w_shape, g_shape,
                            jnp.ones(x_shape)) == "taps"
        # explicit axes win even over an explicit "taps" (its reshapes cannot
        # name the sharding of a regrouped batch-split array)
        taps_spec = _spec(2, padding=1, groups=4, algorithm="taps")
        assert _plan.choose(kind, taps_spec, x_shape, w_shape, g_shape,
                            x) == "transpose"
    monkeypatch.setattr(_plan.jax, "default_backend", lambda: "gpu")
    for kind in ("input", "weight"):
        assert _choose(kind, spec, x_shape, w_shape) == "transpose"
        assert _choose(kind, _spec(2, padding=1, groups=4, algorithm="taps"),
                       x_shape, w_shape) == "taps"


# --------------------------------------------------------------------------
# No order of differentiation runs JAX autodiff: not of lax's convolution
# (its JVP / transpose rules refuse), and not of either formulation's body
# (the impls of _core and _taps poison any JVP through them). The custom
# rules call those bodies only on primal values.


def _refuse(*args, **kwargs):
    raise AssertionError("lax's own autodiff rule for conv_general_dilated was used")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_no_order_uses_autodiff(monkeypatch, algorithm, order):
    from jax._src.interpreters import ad
    from jax._src.lax.convolution import conv_general_dilated_p as conv_p

    for table in (ad.primitive_jvps, ad.primitive_transposes, ad.fancy_transposes):
        if conv_p in table:
            monkeypatch.setitem(table, conv_p, _refuse)
    forbid_autodiff(monkeypatch, _core, ("_conv_impl", "_input_grad_impl",
                                            "_weight_grad_impl"))
    forbid_autodiff(monkeypatch, _taps, ("forward", "input_grad", "weight_grad",
                                         "patches", "col2im"))
    x, w, b = jnp.ones((2, 2, 7, 6)), jnp.ones((4, 1, 3, 2)), jnp.ones(4)
    w_tiled = jnp.ones((4, 1, 2, 2))

    def f(x, w, b):  # strided grouped conv, tiled conv, transposed conv, depthwise
        y = jaxgrad.conv2d(x, w, b, stride=2, padding=1, groups=2, algorithm=algorithm)
        y = y[..., :3, :3] + jaxgrad.conv2d(x, w_tiled, stride=2, groups=2,
                                            algorithm=algorithm)
        z = jaxgrad.conv_transpose2d(y, w, None, stride=2, groups=2, algorithm=algorithm)
        return jnp.sum(jnp.sin(z)) + jnp.sum(jaxgrad.conv1d(
            z[:, :, 0], jnp.ones((2, 1, 3)), groups=2, algorithm=algorithm) ** 2)

    for _ in range(order):
        f = (lambda g: lambda x, w, b: jnp.sum(
            jnp.cos(jnp.concatenate([a.ravel() for a in g(x, w, b)]))))(
                jax.grad(f, argnums=(0, 1, 2)))
    assert jax.eval_shape(f, x, w, b).shape == ()  # tracing is where autodiff happens


def test_autodiff_guard_catches_autodiff_of_the_forward_taps_body(monkeypatch):
    """The guard is live for the forward's taps too: autodiff straight through raises."""
    forbid_autodiff(monkeypatch, _taps, ("forward",))
    spec = ConvSpec((1,), ((1, 1),), (1,), 2, "taps")
    x, w = jnp.ones((1, 2, 7)), jnp.ones((4, 1, 3))
    with pytest.raises(AssertionError, match="JAX autodiff reached a primal"):
        jax.eval_shape(jax.grad(lambda x: jnp.sum(_taps.forward(x, w, spec))), x)


def test_autodiff_guard_catches_autodiff_of_the_taps_body(monkeypatch):
    """The guard above is live: JAX autodiff straight through _taps raises."""
    forbid_autodiff(monkeypatch, _taps, ("weight_grad", "patches"))
    spec = ConvSpec((2,), ((1, 1),), (1,), 1, "taps")
    x, g = jnp.ones((1, 2, 7)), jnp.ones((1, 3, 4))
    with pytest.raises(AssertionError, match="JAX autodiff reached a primal"):
        jax.eval_shape(jax.grad(lambda x: jnp.sum(_taps.weight_grad(x, g, spec, (3,)))), x)


@pytest.mark.parametrize("x_shape, multiplier, kernel, stride, dilation", [
    ((2, 3, 9, 8), 2, (3, 3), 1, 1),
    ((1, 4, 11, 10), 3, (5, 3), 2, 2),
    # products N·Cₒ·ΠK·P = 4·32·9·1018 >= 2^20 with an output dim above 32:
    # the loop over taps on CPU
    ((4, 8, 1024), 4, (9,), 1, 1),
])
def test_channel_multiplier_weight_gradient_as_a_depthwise_sum(x_shape, multiplier, kernel,
                                                               stride, dilation):
    # w̄[γm+j, 0, k] = Σ_{n,p} x̂[n, γ, k·d + p·s] · ḡ[n, γm+j, p]: taps sums it
    # over the input repeated m times, with no GEMM (on CPU; elsewhere the
    # GEMM), and it equals JAX autodiff of lax's grouped convolution in float64
    n, groups = len(kernel), x_shape[1]
    spec = ConvSpec((stride,) * n, tuple((1, 1) for _ in kernel), (dilation,) * n, groups,
                    "taps")
    x = jax.random.normal(jax.random.PRNGKey(0), x_shape, jnp.float64)
    w_shape = (groups * multiplier, 1) + kernel
    out = _conv_output_shape(x_shape[2:], kernel, spec)
    g = jax.random.normal(jax.random.PRNGKey(1), (x_shape[0], groups * multiplier) + tuple(out),
                          jnp.float64)
    text = str(jax.make_jaxpr(lambda x, g: _taps.weight_grad(x, g, spec, kernel))(x, g))
    assert "conv_general_dilated" not in text
    assert ("dot_general" in text) == (jax.default_backend() != "cpu")
    got = _taps.weight_grad(x, g, spec, kernel)

    def lax_forward(w):
        return jax.lax.conv_general_dilated(
            x, w, (stride,) * n, [(1, 1)] * n, rhs_dilation=(dilation,) * n,
            feature_group_count=groups, precision=jax.lax.Precision.HIGHEST)
    want = jax.vjp(lax_forward, jnp.zeros(w_shape, jnp.float64))[1](g)[0]
    assert got.shape == w_shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_one_input_channel_dense_weight_gradient_stays_a_gemm():
    # C_in = 1, G = 1 has one input channel per group too, but it is a dense
    # layer: its taps weight gradient is one product, not the channel
    # multiplier's depthwise sum over the input repeated C_out times (the
    # bench's unrolled case, 512 outputs of a 32x32 kernel at stride 32, took
    # 21 s to compile that way)
    spec = ConvSpec((32, 32), ((0, 0), (0, 0)), (1, 1), 1, "taps")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 1, 64, 64), jnp.float64)
    g = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 2, 2), jnp.float64)
    text = str(jax.make_jaxpr(lambda x, g: _taps.weight_grad(x, g, spec, (32, 32)))(x, g))
    assert text.count("dot_general") == 1 and "repeat" not in text
    want = jax.vjp(lambda w: jax.lax.conv_general_dilated(
        x, w, (32, 32), [(0, 0), (0, 0)], precision=jax.lax.Precision.HIGHEST),
        jnp.zeros((8, 1, 32, 32), jnp.float64))[1](g)[0]
    np.testing.assert_allclose(_taps.weight_grad(x, g, spec, (32, 32)), want,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((41, 14, 74, 74), (96, 14, 5, 5), 4, 2),    # held-out run 26's point
    ((65, 14, 74, 74), (96, 14, 5, 5), 4, 2),
    ((33, 32, 74, 74), (128, 32, 3, 3), 4, 1),
])
def test_taps_weight_gradient_past_a_batch_of_32_equals_lax_autodiff(x_shape, w_shape,
                                                                      stride, padding):
    # float32 on CPU: XLA fused the batched GEMM, its sum over a batch past 32
    # (not a multiple of 32) and the reshape into one YNNPACK fusion, and the
    # program died with a segmentation fault when it ran (_taps.py,
    # SUM_FUSION_MAX_BATCH); a crash here takes the test process down. Each
    # shape has at least as many output positions as Cₒ and Cᵢ·ΠK, so it
    # takes the batched GEMM and the sum over N (the branch with the barrier)
    spec = ConvSpec((stride,) * 2, ((padding, padding),) * 2, (1, 1), 1, "taps")
    x = jax.random.normal(jax.random.PRNGKey(0), x_shape, jnp.float32)
    out = _conv_output_shape(x_shape[2:], w_shape[2:], spec)
    g = jax.random.normal(jax.random.PRNGKey(1), (x_shape[0], w_shape[0]) + tuple(out),
                          jnp.float32)
    got = jax.jit(lambda x, g: _taps.weight_grad(x, g, spec, w_shape[2:]))(x, g)
    want = jax.vjp(lambda w: jax.lax.conv_general_dilated(
        x, w, (stride,) * 2, [(padding, padding)] * 2, precision=jax.lax.Precision.HIGHEST),
        jnp.zeros(w_shape, jnp.float32))[1](g)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * float(jnp.max(abs(want))))
    # and "auto" runs the whole step of the first (its choice is taps here)
    if x_shape[0] == 41 and stride == 4:
        w = jax.random.normal(jax.random.PRNGKey(2), w_shape, jnp.float32) * 0.05
        got = jax.grad(lambda w: jnp.vdot(jaxgrad.conv2d(x, w, None, stride, padding), g))(w)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * float(jnp.max(abs(want))))
