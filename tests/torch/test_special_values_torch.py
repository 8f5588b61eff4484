"""Special values behave as in PyTorch: NaN, ±inf, exact zeros, empty batches.

Every comparison runs forward, VJP and second order in float64 at chosen
arguments (``_parity.check_values``): NaN, +inf and -inf must sit at exactly
the positions where torch has them, in the output and in every gradient;
finite values agree to ``_tolerance.RTOL['float64']``. Convolutions run
under ``algorithm="taps"``, the setting for which torch's NaN/inf placement
is promised (docs/guarantees.md; "auto" may take the textbook rule).

Deviations, steered around here:

* Non-finite values meeting the implicit zero padding of a convolution:
  torch multiplies them by explicit zeros (im2col, F.pad: 0·inf = NaN), XLA
  skips the padded taps (exactly 0). It shows for a non-finite *weight* or
  *cotangent* of a zero-padded convolution (forward and weight gradient) and
  of a padded transposed convolution (its gradients). Non-finite *inputs*
  never meet padding and are tested with every kind of padding; weights and
  cotangents with unpadded convolutions and with the border padding modes,
  whose padding is data.
* Infinite values in second-order rules of the losses: where torch's double
  backward adds s·a + s·b (inf - inf = NaN), jaxgrad's rule factors s·(a + b)
  (±inf). Those cases compare forward and first order only.
* A non-finite cotangent in group_norm and layer_norm: torch's backward
  makes the group NaN (inf - inf in its sums), jaxgrad keeps ±inf at some of
  those entries; the non-finite positions are compared.

Kept out of this file's cases: float64 convolutions with one input channel
per group (e.g. depthwise) leak NaN across groups in the forward, an XLA CPU
bug of ``lax.conv_general_dilated`` itself (open; docs/guarantees.md). Bugs
found here and fixed (float32 grouped weight gradients leaking NaN across
groups, a NaN weight tap reaching every input-gradient row, spurious NaN in
second-order loss rules) are pinned in ``test_fuzz_regressions_torch.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch.nn.grad

import jaxgrad
import jaxgrad.grad

from ._parity import check_values, torch_conv_ref, torch_conv_transpose_ref

NAN, INF = float("nan"), float("inf")


def sprinkle(array: np.ndarray, seed: int) -> np.ndarray:
    """A copy with one NaN, one +inf and one -inf at distinct random positions."""
    out = np.array(array, np.float64)
    rng = np.random.default_rng(seed)
    flat = out.reshape(-1)
    positions = rng.choice(flat.size, size=min(3, flat.size), replace=False)
    flat[positions] = [NAN, INF, -INF][:len(positions)]
    return out


@pytest.fixture(autouse=True)
def _taps_convolutions():
    previous = jaxgrad.set_conv_algorithm("taps")
    yield
    jaxgrad.set_conv_algorithm(previous)


def conv_args(x_shape, w_shape, bias, target: str, seed: int = 0) -> dict:
    """Random x, w, b; special values in ``target`` unless it is the cotangent."""
    rng = np.random.default_rng(seed)
    args = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape)}
    if bias:
        args["b"] = rng.standard_normal(bias)
    if target != "cot":
        args[target] = sprinkle(args[target], seed)
    return args


def _conv_fns(transpose: bool, kwargs: dict):
    if transpose:
        return (lambda x, w, b=None: jaxgrad.conv_transpose(x, w, b, **kwargs),
                lambda x, w, b=None: torch_conv_transpose_ref(x, w, b, **kwargs))
    return (lambda x, w, b=None: jaxgrad.conv(x, w, b, **kwargs),
            lambda x, w, b=None: torch_conv_ref(x, w, b, **kwargs))


def run_special_conv(label, x_shape, w_shape, kwargs, target, *, transpose=False,
                     seed=0):
    out_channels = w_shape[1] * kwargs.get("groups", 1) if transpose else w_shape[0]
    args = conv_args(x_shape, w_shape, (out_channels,), target, seed)
    ours, theirs = _conv_fns(transpose, kwargs)
    y_shape = jax.eval_shape(ours, *(jax.ShapeDtypeStruct(a.shape, jnp.float64)
                                     for a in args.values())).shape
    cot = np.random.default_rng(seed + 1).standard_normal(y_shape)
    if target == "cot":
        cot = sprinkle(cot, seed)
    check_values(f"{label} special values in {target}", ours, theirs, args, cot=cot,
                 seed=seed)


def conv_case(name, x_shape, w_shape, **kwargs):
    return pytest.param(x_shape, w_shape, kwargs, id=name)


# Non-finite inputs: any padding, strides with leftover rows, dilation, groups.
INPUT_CASES = [
    conv_case("1d p2 s2 leftover", (2, 2, 8), (3, 2, 3), padding=2, stride=2),
    conv_case("1d same even d2", (1, 2, 9), (2, 2, 4), padding="same", dilation=2),
    conv_case("2d pairs s(2,3) groups2", (2, 4, 6, 7), (4, 2, 3, 2), stride=(2, 3),
              padding=((2, 0), (1, 3)), groups=2),
    conv_case("2d reflect p1 groups3", (1, 6, 5, 6), (3, 2, 3, 3), padding=1,
              groups=3, padding_mode="reflect"),
    conv_case("3d p1 s2 unbatched", (2, 4, 5, 4), (2, 2, 2, 3, 2), padding=1, stride=2),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", INPUT_CASES)
def test_conv_nonfinite_input(request, x_shape, w_shape, kwargs):
    run_special_conv(request.node.callspec.id, x_shape, w_shape, kwargs, "x")


# Non-finite weights, biases and cotangents: no zero padding (see the module
# docstring), or border padding modes, whose padding holds input values.
UNPADDED_CASES = [
    conv_case("1d s2 leftover", (2, 2, 8), (3, 2, 3), stride=2),
    conv_case("1d circular p2 d2", (2, 2, 7), (2, 2, 3), padding=2, dilation=2,
              padding_mode="circular"),
    conv_case("2d valid s(2,1) d(1,2) groups2", (2, 4, 7, 8), (6, 2, 2, 3),
              padding="valid", stride=(2, 1), dilation=(1, 2), groups=2),
    conv_case("2d replicate same unbatched", (2, 5, 6), (3, 2, 3, 4), padding="same",
              padding_mode="replicate"),
    conv_case("3d s(1,2,3) depthwise x2", (1, 2, 4, 5, 7), (4, 1, 2, 2, 2), stride=(1, 2, 3),
              groups=2),
]


@pytest.mark.parametrize("target", ["w", "b", "cot"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", UNPADDED_CASES)
def test_conv_nonfinite_weight_bias_cotangent(request, x_shape, w_shape, kwargs,
                                              target):
    run_special_conv(request.node.callspec.id, x_shape, w_shape, kwargs, target)


# Transposed convolutions: padding 0 (its padding crops the output, which
# becomes zero padding of its gradient convolutions); any output_padding.
TRANSPOSE_CASES = [
    conv_case("1d s2 op1", (2, 2, 4), (2, 3, 3), stride=2, output_padding=1),
    conv_case("2d s(3,2) d(1,2) op(2,1) groups2", (1, 4, 3, 3), (4, 2, 2, 3),
              stride=(3, 2), dilation=(1, 2), output_padding=(2, 1), groups=2),
    conv_case("3d s1 d3 op2 unbatched", (2, 3, 2, 3), (2, 2, 2, 2, 2), dilation=3,
              output_padding=2),
]


@pytest.mark.parametrize("target", ["x", "w", "cot"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", TRANSPOSE_CASES)
def test_conv_transpose_nonfinite(request, x_shape, w_shape, kwargs, target):
    run_special_conv(request.node.callspec.id, x_shape, w_shape, kwargs, target,
                     transpose=True)


# --------------------------------------------------------------------------
# Pooling: max pooling routes to NaN (torch: the last NaN of a window, else the
# first maximum); ±inf and NaN in inputs and cotangents.


def test_max_pool_routes_to_nan_hand_checked():
    # windows: [nan, 1, nan] -> the last NaN (2); [2, nan, nan] -> 5;
    # [-inf]*3 -> the first (6); [0, 0, 0] -> the first (9).
    x = np.array([[[NAN, 1.0, NAN, 2.0, NAN, NAN, -INF, -INF, -INF, 0.0, 0.0, 0.0]]])
    y, index = jaxgrad.max_pool1d(x, 3, return_indices=True)
    grad = jax.grad(lambda x: jaxgrad.max_pool1d(x, 3).sum())(x)
    np.testing.assert_array_equal(y, [[[NAN, NAN, -INF, 0.0]]])
    assert np.asarray(index).tolist() == [[[2, 5, 6, 9]]]
    expected = np.zeros(12)
    expected[[2, 5, 6, 9]] = 1.0
    np.testing.assert_array_equal(np.asarray(grad).ravel(), expected)
    # ... and torch agrees with the hand count.
    tx = torch.tensor(x, requires_grad=True)
    ty, tindex = F.max_pool1d(tx, 3, return_indices=True)
    assert tindex.tolist() == [[[2, 5, 6, 9]]]
    np.testing.assert_array_equal(torch.autograd.grad(ty.sum(), tx)[0].numpy().ravel(),
                                  expected)


POOLS = {
    "max_pool2d k3 s2 p1 ceil": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "avg_pool2d k3 s2 p1 ceil no pad count": dict(kernel_size=3, stride=2, padding=1,
                                                  ceil_mode=True,
                                                  count_include_pad=False),
    "adaptive_max_pool2d (3,4)": dict(output_size=(3, 4)),
    "adaptive_avg_pool2d (3,4)": dict(output_size=(3, 4)),
    "max_pool3d k2 d2 p1": dict(kernel_size=2, dilation=2, padding=1),
    "avg_pool1d k2 s1 p1": dict(kernel_size=2, stride=1, padding=1),
}


def _pool_fns(name):
    op, kwargs = name.split()[0], POOLS[name]
    return (functools.partial(getattr(jaxgrad, op), **kwargs),
            functools.partial(getattr(F, op), **kwargs), int(op[-2]))


@pytest.mark.parametrize("target", ["x", "cot"])
@pytest.mark.parametrize("name", list(POOLS))
def test_pool_nonfinite(name, target):
    ours, theirs, n = _pool_fns(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2) + (7, 5, 6)[:n])
    if target == "x":   # several specials per window, some windows all special
        x = x.round()
        for seed in range(4):
            x = sprinkle(x, seed)
    y_shape = jax.eval_shape(ours, jax.ShapeDtypeStruct(x.shape, jnp.float64)).shape
    cot = rng.standard_normal(y_shape)
    if target == "cot":
        cot = sprinkle(cot, 1)
    check_values(f"{name} special values in {target}", ours, theirs, {"x": x}, cot=cot)


# --------------------------------------------------------------------------
# ReLU at exactly 0 (gradient 0, as torch), inside a network whose integer
# weights make many exact zeros and ties: conv -> relu -> max_pool -> linear.


def _network(lib, x, w, v):
    f = jaxgrad if lib == "jax" else F
    h = f.relu(f.conv2d(x, w, padding=1))
    h = f.leaky_relu(f.max_pool2d(h, 2), 0.2)
    return f.linear(h.reshape(h.shape[0], -1), v)


def test_relu_at_zero_in_a_network():
    rng = np.random.default_rng(0)
    args = {"x": rng.integers(-1, 2, (2, 2, 6, 6)).astype(np.float64),
            "w": rng.integers(-1, 2, (3, 2, 3, 3)).astype(np.float64),
            "v": rng.integers(-1, 2, (4, 27)).astype(np.float64)}
    conv = F.conv2d(torch.tensor(args["x"]), torch.tensor(args["w"]), padding=1)
    assert (conv == 0).sum() > 20, "the inputs must make exact zeros for the test"
    check_values("relu at 0", functools.partial(_network, "jax"),
                 functools.partial(_network, "torch"), args)


@pytest.mark.parametrize("op", ["relu", "leaky_relu"])
def test_relu_gradients_at_exact_zero_hand_checked(op):
    # torch: relu' = 1[x > 0]; leaky_relu' = 1 if x > 0 else slope (0 included)
    x = np.array([-0.0, 0.0, -1.0, 1.0])
    grad = jax.grad(lambda x: getattr(jaxgrad, op)(x).sum())(x)
    slope = 0.0 if op == "relu" else 0.01
    assert np.asarray(grad).tolist() == [slope, slope, slope, 1.0]
    tx = torch.tensor(x, requires_grad=True)
    (tgrad,) = torch.autograd.grad(getattr(F, op)(tx).sum(), tx)
    assert tgrad.tolist() == [slope, slope, slope, 1.0]


# Piecewise activations: torch's backward kernels select 0 where the
# derivative is 0 by a branch (relu: x <= 0 ? 0 : g), so an infinite or NaN
# cotangent there gives exactly 0, not 0·inf = NaN; the branches' boundaries
# (0, ±3, 6, the hardtanh bounds) are among the points. Second order too
# (hardswish″ selects as well).
_PIECEWISE_X = np.array([-7.0, -4.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 4.0, 6.0, 7.0])
_PIECEWISE = {
    "relu": ((), {}),
    "relu6": ((), {}),
    "hardtanh": ((), {}),
    "hardtanh(-0.5, 3)": ((), {"min_val": -0.5, "max_val": 3.0}),
    "hardsigmoid": ((), {}),      # first order: torch has no hardsigmoid″
    "hardswish": ((), {}),
    "leaky_relu": ((0.2,), {}),
}


@pytest.mark.parametrize("label", list(_PIECEWISE))
def test_piecewise_activations_nonfinite_cotangent(label):
    op = label.split("(")[0]
    args, kwargs = _PIECEWISE[label]
    # every point with each cotangent: +inf, -inf, NaN and a finite one
    x = np.repeat(_PIECEWISE_X, 4)
    cot = np.tile([INF, -INF, NAN, 1.5], _PIECEWISE_X.size)
    result = check_values(f"{label} with non-finite cotangents",
                          lambda v: getattr(jaxgrad, op)(v, *args, **kwargs),
                          lambda v: getattr(F, op)(v, *args, **kwargs), {"x": x}, cot=cot,
                          double=op != "hardsigmoid")
    assert "grad_x" in result


# Every `jaxgrad check` case (jaxgrad/_checking/_families.py) with a torch
# reference, outside the convolutions (their cases are above): a NaN, a +inf
# and a -inf in the cotangent, and the first-order arrays' NaN, +inf and -inf
# positions must be torch's. Two ops differ by the arrangement of torch's
# backward formula, not its value (finite entries agree to the tolerance):
# group_norm and layer_norm. torch forms dx = c1·dy + c2·x + c3 from the sums
# Σdy·γ and Σdy·γ·x, whose infinities meet as inf − inf and make every entry
# of the group NaN; jaxgrad's dx = (γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂))/σ
# keeps ±inf at some of them. For those the non-finite positions (NaN or
# ±inf) must be torch's.
_NONFINITE_AS_NAN = ("group_norm", "layer_norm")


def _check_cases():
    from jaxgrad._checking import _families
    return [case for name, family in _families.FAMILIES.items()
            if name != "conv" and family.available()
            for case in family.build() if case.torch is not None]


@pytest.mark.parametrize("case", _check_cases(), ids=lambda case: case.name)
def test_check_cases_nonfinite_cotangent(case):
    from jaxgrad._checking import _check
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    xs, consts = _check._draw(case, rng, "float64"), _check._constants(case, rng, "float64")
    args = {k: jnp.asarray(v) for k, v in xs.items()}, _check._as(consts, jnp.float64)
    shape = jax.eval_shape(lambda xs, c: case.ours(**xs, **c), *args).shape
    cot = sprinkle(rng.standard_normal(shape), 0)
    assert np.isnan(cot).any() or cot.size == 0
    no_second = dataclasses.replace(case, second_order=False)
    ours = _check._derivatives(case.ours, *args, jnp.asarray(cot), {}, False)
    theirs = _check._torch_derivatives(no_second, xs, consts, cot, {})
    for key in theirs:
        a, b = np.asarray(ours[key], np.float64), theirs[key]
        if case.name.startswith(_NONFINITE_AS_NAN):
            np.testing.assert_array_equal(~np.isfinite(a), ~np.isfinite(b), err_msg=key)
        else:
            for test in (np.isnan, np.isposinf, np.isneginf):
                np.testing.assert_array_equal(test(a), test(b), err_msg=f"{key} {test.__name__}")
        finite = np.isfinite(b) & np.isfinite(a)
        scale = max(np.abs(b[finite]).max(initial=0.0), 1e-300)
        assert np.abs(a[finite] - b[finite]).max(initial=0.0) <= 1e-10 * scale, key


# --------------------------------------------------------------------------
# linear and the losses.


def test_linear_nonfinite():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in [(3, 4), (2, 4), (2,)])
    x[1, 2], w[0, 1], b[1] = NAN, INF, -INF
    check_values("linear special values in x, w, b", jaxgrad.linear, F.linear,
                 {"x": x, "w": w, "b": b})
    cot = sprinkle(rng.standard_normal((3, 2)), 0)
    check_values("linear special values in cot", jaxgrad.linear, F.linear,
                 {"x": rng.standard_normal((3, 4)), "w": rng.standard_normal((2, 4))},
                 cot=cot)


# Logits with NaN / ±inf: in a target class, in other classes, at an ignored
# position (row 3).
LOGITS = np.array([[0.5, NAN, 1.0], [INF, 0.0, 2.0], [1.0, 3.0, -INF], [NAN, 1.0, 0.0],
                   [-INF, 0.2, 0.1]])
TARGET = np.array([0, 2, 1, -100, 1])


def _index_losses(lib, x):
    f, t = (jaxgrad, jnp.asarray(TARGET)) if lib == "jax" else (F, torch.tensor(TARGET))
    cat = jnp.concatenate if lib == "jax" else torch.cat
    return cat([loss.reshape(-1) for reduction in ("none", "mean", "sum") for loss in (
        f.cross_entropy(x, t, reduction=reduction),
        f.cross_entropy(x, t, reduction=reduction, label_smoothing=0.2),
        f.nll_loss(x, t, reduction=reduction))])


def test_index_losses_nonfinite_logits():
    check_values("cross_entropy / nll_loss special logits",
                 functools.partial(_index_losses, "jax"),
                 functools.partial(_index_losses, "torch"), {"x": LOGITS})


def _probability_loss(lib, x, q, w):
    f = jaxgrad if lib == "jax" else F
    cat = jnp.concatenate if lib == "jax" else torch.cat
    return cat([f.cross_entropy(x, q, w, reduction=reduction, label_smoothing=0.1)
                .reshape(-1) for reduction in ("none", "mean", "sum")])


@pytest.mark.parametrize("target", ["x", "q", "w", "cot"])
def test_probability_cross_entropy_nonfinite(target):
    # The class weight is an argument here (differentiable, as in torch).
    rng = np.random.default_rng(0)
    args = {"x": rng.standard_normal((4, 3)), "q": rng.standard_normal((4, 3)),
            "w": rng.random(3) + 0.5}
    if target != "cot":
        args[target] = sprinkle(args[target], 2)
    cot = rng.standard_normal(4 + 2)
    if target == "cot":
        cot = sprinkle(cot, 2)
    # An infinite cotangent s: jaxgrad's second-order rules factor s·(a + b)
    # (±inf) where torch's double backward adds s·a + s·b (inf - inf = NaN):
    # first order only there.
    check_values(f"cross_entropy (probabilities) special {target}",
                 functools.partial(_probability_loss, "jax"),
                 functools.partial(_probability_loss, "torch"), args, cot=cot,
                 double=target != "cot")


def _mse_losses(lib, x, t):
    f = jaxgrad if lib == "jax" else F
    cat = jnp.concatenate if lib == "jax" else torch.cat
    return cat([f.mse_loss(x, t, reduction=reduction).reshape(-1)
                for reduction in ("none", "mean", "sum")])


@pytest.mark.parametrize("target", ["x", "t", "cot"])
def test_mse_loss_nonfinite(target):
    # Forward and first order only. Second order deviates at infinities, by
    # formulation: torch's double backward adds 2(x-t)·u and -2(x-t)·v (inf -
    # inf = NaN), jaxgrad's rule computes 2(x-t)·(u-v) (±inf).
    rng = np.random.default_rng(0)
    args = {"x": rng.standard_normal((4, 3)), "t": rng.standard_normal((4, 3))}
    if target != "cot":
        args[target] = sprinkle(args[target], 2)
    cot = rng.standard_normal(12 + 2)
    if target == "cot":
        cot = sprinkle(cot, 2)
    check_values(f"mse_loss special {target}", functools.partial(_mse_losses, "jax"),
                 functools.partial(_mse_losses, "torch"), args, cot=cot, double=False)


# --------------------------------------------------------------------------
# Empty batches (N = 0) wherever torch takes them: the same output shape,
# empty gradients of the arguments' shapes, NaN for "mean" of nothing.


def _both(name: str, **kwargs):
    """(jaxgrad.<name>, torch's F.<name>) with the same keyword arguments."""
    theirs = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}.get(name) or getattr(F, name)
    return (functools.partial(getattr(jaxgrad, name), **kwargs),
            functools.partial(theirs, **kwargs))


def _grad_fns(kind: str, size, **kwargs):
    ours = getattr(jaxgrad.grad, f"conv2d_{kind}")
    theirs = getattr(torch.nn.grad, f"conv2d_{kind}")
    if kind == "input":
        return (lambda w, g: ours(size, w, g, **kwargs),
                lambda w, g: theirs(size, w, g, **kwargs))
    return (lambda x, g: ours(x, size, g, **kwargs),
            lambda x, g: theirs(x, size, g, **kwargs))


def _index_loss_fns(name: str, target_shape, **kwargs):
    target = np.zeros(target_shape, np.int64)
    return (lambda x: getattr(jaxgrad, name)(x, jnp.asarray(target), **kwargs),
            lambda x: getattr(F, name)(x, torch.tensor(target), **kwargs))


def empty(name, fns, double=True, **shapes):
    return pytest.param(fns, shapes, double, id=name)


EMPTY_CASES = [
    empty("conv1d s2 p1", _both("conv1d", stride=2, padding=1), x=(0, 2, 5), w=(3, 2, 3),
          b=(3,)),
    empty("conv2d groups2 same", _both("conv2d", groups=2, padding="same"),
          x=(0, 4, 4, 5), w=(2, 2, 3, 1)),
    empty("conv3d s(1,2,1)", _both("conv3d", stride=(1, 2, 1)), x=(0, 2, 3, 4, 3),
          w=(2, 2, 2, 2, 2), b=(2,)),
    empty("conv_transpose2d s2 op1", _both("conv_transpose2d", stride=2,
                                           output_padding=1),
          x=(0, 2, 3, 3), w=(2, 3, 3, 3), b=(3,)),
    empty("grad.conv2d_input s2", _grad_fns("input", (0, 2, 5, 5), stride=2),
          w=(3, 2, 3, 3), g=(0, 3, 2, 2)),
    empty("grad.conv2d_weight groups2", _grad_fns("weight", (4, 1, 2, 2), groups=2),
          x=(0, 2, 4, 4), g=(0, 4, 3, 3)),
    empty("linear", _both("linear"), x=(0, 3), w=(2, 3), b=(2,)),
    empty("max_pool1d k2 ceil", _both("max_pool1d", kernel_size=2, ceil_mode=True),
          x=(0, 2, 5)),
    empty("max_pool2d k3 s2 p1", _both("max_pool2d", kernel_size=3, stride=2, padding=1),
          x=(0, 2, 5, 4)),
    empty("max_pool3d k2", _both("max_pool3d", kernel_size=2), x=(0, 1, 3, 4, 2)),
    empty("avg_pool1d k3 p1", _both("avg_pool1d", kernel_size=3, padding=1), x=(0, 2, 5)),
    empty("avg_pool2d divisor_override", _both("avg_pool2d", kernel_size=2,
                                               divisor_override=3), x=(0, 2, 4, 5)),
    empty("avg_pool3d ceil", _both("avg_pool3d", kernel_size=2, ceil_mode=True),
          x=(0, 1, 3, 3, 3)),
    empty("adaptive_max_pool2d", _both("adaptive_max_pool2d", output_size=(2, 3)),
          x=(0, 2, 5, 4)),
    empty("adaptive_avg_pool1d", _both("adaptive_avg_pool1d", output_size=3), x=(0, 2, 5)),
    empty("adaptive_avg_pool3d", _both("adaptive_avg_pool3d", output_size=2),
          x=(0, 1, 3, 4, 3)),
    empty("relu", _both("relu"), x=(0, 3)),
    empty("leaky_relu", _both("leaky_relu", negative_slope=0.2), x=(0, 3)),
    empty("sigmoid", _both("sigmoid"), x=(0, 3)),
    empty("tanh", _both("tanh"), x=(0, 3)),
    empty("gelu tanh", _both("gelu", approximate="tanh"), x=(0, 3)),
    empty("softmax dim 1", _both("softmax", dim=1), x=(0, 3)),
    empty("softmax over the empty dim", _both("softmax", dim=0), x=(0, 3)),
    empty("log_softmax over the empty dim", _both("log_softmax", dim=-1), x=(3, 0)),
]
EMPTY_CASES += [
    empty(f"{name} {reduction}", _index_loss_fns(name, (0,), reduction=reduction),
          x=(0, 3))
    for name in ("cross_entropy", "nll_loss") for reduction in ("none", "mean", "sum")]
EMPTY_CASES += [
    empty(f"cross_entropy (N, C, 0) {reduction}",
          _index_loss_fns("cross_entropy", (2, 0), reduction=reduction,
                          label_smoothing=0.1), x=(2, 3, 0))
    for reduction in ("none", "mean", "sum")]
EMPTY_CASES += [
    empty(f"{name} (probabilities) {reduction}" if name == "cross_entropy" else
          f"{name} {reduction}", _both(name, reduction=reduction),
          double=True, x=(0, 3), t=(0, 3))
    for name in ("mse_loss", "cross_entropy") for reduction in ("none", "mean", "sum")]


@pytest.mark.parametrize("fns, shapes, double", EMPTY_CASES)
def test_empty_batch(request, fns, shapes, double):
    rng = np.random.default_rng(0)
    args = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    check_values(request.node.callspec.id, *fns, args, double=double)


@pytest.mark.parametrize("op", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_adaptive_pool_output_size_zero(op):
    # torch's forward takes output_size 0 (an empty output); its backward
    # raises. Ours: the same empty output, and a zero gradient.
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    expected = getattr(F, op)(torch.tensor(x), (0, 3))
    y, vjp = jax.vjp(lambda x: getattr(jaxgrad, op)(x, (0, 3)), x)
    assert y.shape == tuple(expected.shape) == (2, 3, 0, 3)
    np.testing.assert_array_equal(vjp(jnp.zeros(y.shape))[0], np.zeros(x.shape))
