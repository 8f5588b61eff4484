"""jaxgrad's normalisation ops vs PyTorch: outputs, gradients, running statistics.

* A lean grid (2-D, 1-D, 2-D spatial and 3-D spatial inputs, odd sizes, affine
  or not, training / eval, several group counts, unbatched and empty inputs):
  every op of one input shape runs in one jitted program through
  ``check_parity`` (output, VJP w.r.t. every array, and reverse-over-reverse
  w.r.t. every array and the cotangent), float64 to 1e-10; float32 to second
  order and bfloat16 to first order within the tolerance table.
* The running statistics of ``batch_norm_stats`` / ``instance_norm_stats``
  against the buffers of ``nn.BatchNorm1d/2d/3d`` and ``nn.InstanceNorm1d/2d``
  after several training steps (momentum=None included).
* PyTorch's own OpInfo samples for the four functions.
* The inputs torch refuses are refused here too, with jaxgrad's message; a
  negative eps, which torch's layer, group and instance norm take, is taken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad
from jaxgrad import testing
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._opinfo import as_jax, check_samples, distinct_samples
from ._parity import check_values, random_args


# --------------------------------------------------------------------------
# The grid: per input shape, a list of ops called as op(x, *params).


@dataclasses.dataclass(frozen=True)
class Op:
    """One call of a normalisation op, in jaxgrad and in torch.

    Attributes:
      name: the row label.
      ours: ``ours(x, *params)``.
      theirs: ``theirs(x, *params)``, same arguments as tensors.
      params: the shapes of the differentiable parameters after x.
    """

    name: str
    ours: Callable
    theirs: Callable
    params: tuple = ()


def stats(c: int):
    """Fixed running statistics for C channels (variance positive)."""
    rng = np.random.default_rng(c)
    return rng.standard_normal(c), 0.5 + rng.random(c)


def ours_constant(a, x):
    """A running statistic in the dtype of jaxgrad's input."""
    return None if a is None else jnp.asarray(a, x.dtype)


def theirs_constant(a, x):
    """A new tensor each call (torch updates running statistics in place), in
    the dtype of torch's input."""
    return None if a is None else torch.tensor(a, dtype=x.dtype)


def keywords(names, values, x, *, torch_side=False) -> dict:
    """weight / bias by name. torch 2.13's double backward fails for a bias
    without a weight (group_norm: "shape '[0]' is invalid"; batch and instance
    norm: "Expected a proper Tensor but got None"), so its reference for
    that case is the same call with a weight of ones, γ = 1."""
    out = dict(zip(names, values))
    if torch_side and "bias" in out and "weight" not in out:
        out["weight"] = torch.ones(out["bias"].shape, dtype=x.dtype)
    return out


def batch_norm(c, training, params, eps=1e-5, running=True):
    mean, var = stats(c) if running else (None, None)

    def ours(x, *p):
        return jaxgrad.batch_norm(x, ours_constant(mean, x), ours_constant(var, x),
                                  **keywords(params, p, x), training=training, eps=eps)

    def theirs(x, *p):
        return F.batch_norm(x, theirs_constant(mean, x), theirs_constant(var, x),
                            **keywords(params, p, x, torch_side=True), training=training,
                            eps=eps)
    return Op(f"bn train={training} {params}", ours, theirs, ((c,),) * len(params))


def instance_norm(c, use_input_stats, params, eps=1e-5):
    mean, var = stats(c) if not use_input_stats else (None, None)

    def ours(x, *p):
        return jaxgrad.instance_norm(x, ours_constant(mean, x), ours_constant(var, x),
                                     **keywords(params, p, x),
                                     use_input_stats=use_input_stats, eps=eps)

    def theirs(x, *p):
        return F.instance_norm(x, theirs_constant(mean, x), theirs_constant(var, x),
                               **keywords(params, p, x, torch_side=True),
                               use_input_stats=use_input_stats, eps=eps)
    return Op(f"in stats={use_input_stats} {params}", ours, theirs, ((c,),) * len(params))


def group_norm(c, groups, params, eps=1e-5):
    def ours(x, *p):
        return jaxgrad.group_norm(x, groups, **keywords(params, p, x), eps=eps)

    def theirs(x, *p):
        return F.group_norm(x, groups, **keywords(params, p, x, torch_side=True), eps=eps)
    return Op(f"gn G={groups} {params}", ours, theirs, ((c,),) * len(params))


def layer_norm(shape, params, eps=1e-5):
    def ours(x, *p):
        return jaxgrad.layer_norm(x, shape, **keywords(params, p, x), eps=eps)

    def theirs(x, *p):
        return F.layer_norm(x, shape, **keywords(params, p, x), eps=eps)
    return Op(f"ln {shape} {params}", ours, theirs, (shape,) * len(params))


WB, W, B, NONE = ("weight", "bias"), ("weight",), ("bias",), ()

GRID = {
    "2-D (5, 6)": ((5, 6), [
        batch_norm(6, True, WB), batch_norm(6, False, WB, eps=0.5),
        instance_norm(6, False, W), group_norm(6, 3, WB), group_norm(6, 2, W),
        layer_norm((6,), WB)]),
    "1-D (3, 6, 7)": ((3, 6, 7), [
        batch_norm(6, True, NONE), batch_norm(6, False, B),
        batch_norm(6, True, WB, eps=0.3, running=False),
        instance_norm(6, True, WB), instance_norm(6, False, W), group_norm(6, 2, WB),
        group_norm(6, 1, NONE, eps=0.2), layer_norm((7,), WB), layer_norm((6, 7), NONE)]),
    "2-D spatial (2, 4, 3, 5)": ((2, 4, 3, 5), [
        batch_norm(4, True, W), batch_norm(4, False, WB), instance_norm(4, True, NONE, eps=0.4),
        group_norm(4, 4, W), group_norm(4, 2, B), layer_norm((3, 5), WB)]),
    "3-D spatial (2, 3, 2, 3, 2)": ((2, 3, 2, 3, 2), [
        batch_norm(3, True, WB), batch_norm(3, False, NONE), instance_norm(3, True, B),
        instance_norm(3, False, WB), group_norm(3, 3, WB), layer_norm((2, 3, 2), WB)]),
}

# Inputs with no batch dim (layer_norm only, as in torch) and empty ones.
EDGE = [
    ("unbatched (7,)", (7,), layer_norm((7,), WB)),
    ("unbatched (3, 4)", (3, 4), layer_norm((3, 4), W)),
    ("empty batch bn train", (0, 3, 4), batch_norm(3, True, WB)),
    ("empty batch bn eval", (0, 3), batch_norm(3, False, WB)),
    ("empty batch in", (0, 3, 4), instance_norm(3, True, NONE)),  # torch fails with γ
    ("empty batch gn", (0, 6, 3), group_norm(6, 2, WB)),
    ("empty batch ln", (0, 3), layer_norm((3,), WB)),
]

# One value per group: x̂ = 0 and x̄ = 0 exactly (jaxgrad's are exact zeros;
# torch's come out of cancelling terms, ~1e-13).
ONE_VALUE = [
    ("one value per group", (2, 4), group_norm(4, 4, WB)),
    ("one element ln", (3, 1), layer_norm((1,), WB)),
]


def combined(ops: list[Op], x_shapes: list[tuple]):
    """(shapes, ours, theirs): all ops in one function with dict outputs, so the
    jaxgrad side is one compiled program; each op has its own arguments."""
    shapes, slices = {}, []
    labels = [f"{i}: {op.name}" for i, op in enumerate(ops)]    # unique
    for label, op, x_shape in zip(labels, ops, x_shapes):
        start = len(shapes)
        shapes[f"{label}.x"] = x_shape
        for k, p in enumerate(op.params):
            shapes[f"{label}.p{k}"] = p
        slices.append(slice(start, len(shapes)))

    def call(which):
        return lambda *args: {label: getattr(op, which)(*args[s])
                              for label, op, s in zip(labels, ops, slices)}
    return shapes, call("ours"), call("theirs")


def check_ops(config: str, x_shapes, ops: list[Op], dtype="float64", double=True):
    """``check_parity`` of ``combined(ops)``, the arguments drawn with a seed
    other than the cotangents' (``_parity.check_parity`` uses one seed for
    both, so a first cotangent equal to the first input x, an affine function
    of x̂ for which x̄ is only the ε term: a cancellation, not a test)."""
    if isinstance(x_shapes, tuple):
        x_shapes = [x_shapes] * len(ops)
    shapes, ours, theirs = combined(ops, x_shapes)
    args = random_args(1, shapes, dtype)
    try:
        testing.check_parity(
            ours, theirs, *(jnp.asarray(a, dtype) for a in args.values()),
            rtol=tolerance(dtype), second_order=double, arg_names=list(args),
            reference_dtype=None if dtype in ("float32", "float64") else "float64")
    except AssertionError as err:
        raise AssertionError(f"[{config}] {dtype} vs torch:{err}") from None


@pytest.mark.parametrize("config", list(GRID))
def test_grid(config):
    x_shape, ops = GRID[config]
    check_ops(config, x_shape, ops)


def test_unbatched_and_empty_inputs():
    check_ops("unbatched and empty", [s for _, s, _ in EDGE], [op for _, _, op in EDGE])


def test_empty_groups_give_zero_weight_gradient():
    # Σ over an empty group is 0; torch's weight gradient is NaN there (its
    # formula multiplies the NaN statistics of the empty group).
    x, w, b = torch.zeros((2, 4, 0), dtype=torch.float64, requires_grad=True), t(4), t(4)
    w.requires_grad_(), b.requires_grad_()
    y = F.group_norm(x, 2, w, b)
    assert torch.isnan(torch.autograd.grad(y, w, torch.ones_like(y))[0]).all()
    _, vjp = jax.vjp(lambda w, b: jaxgrad.group_norm(jnp.zeros((2, 4, 0)), 2, w, b),
                     jnp.ones(4), jnp.ones(4))
    w_bar, b_bar = vjp(jnp.ones((2, 4, 0)))
    assert w_bar.tolist() == [0.0] * 4 == b_bar.tolist()


def test_one_value_per_group():
    shapes, ours, theirs = combined([op for _, _, op in ONE_VALUE],
                                    [s for _, s, _ in ONE_VALUE])
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(shape) for shape in shapes.values()]
    testing.check_parity(ours, theirs, *args, second_order=True, atol=1e-12,
                         arg_names=list(shapes))
    # ... and jaxgrad's are exact: y = 0·γ + β.
    outputs = jax.jit(ours)(*args)
    named = dict(zip(shapes, args))
    for i, (_, shape, op) in enumerate(ONE_VALUE):
        label = f"{i}: {op.name}"
        expected = np.broadcast_to(named[f"{label}.p1"].reshape(shape[1:]), shape)
        np.testing.assert_array_equal(outputs[label], expected)


REDUCED = [batch_norm(6, True, WB), batch_norm(6, False, WB), instance_norm(6, True, WB),
           group_norm(6, 3, WB), layer_norm((6, 7), WB)]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_reduced_precision(dtype):
    check_ops(f"(3, 6, 7) {dtype}", (3, 6, 7), REDUCED, dtype=dtype,
              double=dtype == "float32")


# --------------------------------------------------------------------------
# Running statistics against the modules' buffers.


def close(ours, theirs, dtype="float64") -> bool:
    return max_errors(np.asarray(ours, np.float64),
                      theirs.detach().to(torch.float64).numpy())[1] <= tolerance(dtype)


@pytest.mark.parametrize("module, shape, momentum", [
    pytest.param(torch.nn.BatchNorm1d, (4, 3), 0.1, id="BatchNorm1d (N, C)"),
    pytest.param(torch.nn.BatchNorm1d, (2, 3, 5), None, id="BatchNorm1d (N, C, L) cumulative"),
    pytest.param(torch.nn.BatchNorm2d, (2, 3, 4, 3), 0.1, id="BatchNorm2d"),
    pytest.param(torch.nn.BatchNorm2d, (2, 3, 4, 3), None, id="BatchNorm2d cumulative"),
    pytest.param(torch.nn.BatchNorm3d, (2, 3, 2, 3, 2), 0.75, id="BatchNorm3d momentum 0.75"),
    pytest.param(torch.nn.BatchNorm3d, (2, 3, 2, 3, 2), None, id="BatchNorm3d cumulative"),
])
def test_batch_norm_stats_match_the_module_buffers(module, shape, momentum):
    torch.manual_seed(0)
    bn = module(shape[1], momentum=momentum, dtype=torch.float64).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    w, b = bn.weight.detach().numpy(), bn.bias.detach().numpy()

    @jax.jit
    def step(x, s):
        y = jaxgrad.batch_norm(x, s.running_mean, s.running_var, w, b, training=True,
                               momentum=0.0 if momentum is None else momentum)
        return y, jaxgrad.batch_norm_stats(x, s.running_mean, s.running_var, momentum,
                                           s.num_batches_tracked)

    state = jaxgrad.BatchNormStats(jnp.zeros(shape[1]), jnp.ones(shape[1]), jnp.asarray(0))
    rng = np.random.default_rng(1)
    for i in range(4):
        x = 3.0 + 2.0 * rng.standard_normal(shape)
        y, state = step(x, state)
        assert close(y, bn(torch.tensor(x))), f"output at step {i}"
        assert close(state.running_mean, bn.running_mean), f"running_mean at step {i}"
        assert close(state.running_var, bn.running_var), f"running_var at step {i}"
        assert int(state.num_batches_tracked) == int(bn.num_batches_tracked)
    # eval mode normalises with the statistics just computed
    x = rng.standard_normal(shape)
    assert close(jaxgrad.batch_norm(x, state.running_mean, state.running_var, w, b),
                 bn.eval()(torch.tensor(x)))


def test_batch_norm_stats_empty_batch_and_float32():
    bn = torch.nn.BatchNorm2d(3, momentum=None).train()          # float32
    state = jaxgrad.BatchNormStats(jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float32), 0)
    rng = np.random.default_rng(2)
    for shape in [(2, 3, 4, 4), (0, 3, 4, 4), (3, 3, 2, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        bn(torch.tensor(x))
        state = jaxgrad.batch_norm_stats(x, state.running_mean, state.running_var, None,
                                         state.num_batches_tracked)
    assert state.running_mean.dtype == jnp.float32
    assert close(state.running_mean, bn.running_mean, "float32")
    assert close(state.running_var, bn.running_var, "float32")
    assert int(state.num_batches_tracked) == int(bn.num_batches_tracked) == 3


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("module, shape", [
    pytest.param(torch.nn.InstanceNorm1d, (3, 2, 5), id="InstanceNorm1d"),
    pytest.param(torch.nn.InstanceNorm2d, (2, 3, 3, 4), id="InstanceNorm2d"),
])
def test_instance_norm_stats_match_the_module_buffers(module, shape, momentum):
    inn = module(shape[1], momentum=momentum, affine=True, track_running_stats=True,
                 dtype=torch.float64).train()
    w, b = inn.weight.detach().numpy(), inn.bias.detach().numpy()
    state = jaxgrad.BatchNormStats(jnp.zeros(shape[1]), jnp.ones(shape[1]), None)
    rng = np.random.default_rng(3)
    for i in range(3):
        x = 1.0 + rng.standard_normal(shape)
        y = jaxgrad.instance_norm(x, state.running_mean, state.running_var, w, b)
        assert close(y, inn(torch.tensor(x))), f"output at step {i}"
        state = jaxgrad.instance_norm_stats(x, state.running_mean, state.running_var,
                                            momentum)
        assert close(state.running_mean, inn.running_mean), f"running_mean at step {i}"
        assert close(state.running_var, inn.running_var), f"running_var at step {i}"
    x = rng.standard_normal(shape)
    assert close(jaxgrad.instance_norm(x, state.running_mean, state.running_var, w, b,
                                       use_input_stats=False), inn.eval()(torch.tensor(x)))


def test_instance_norm_stats_empty_inputs_like_torch():
    for shape in [(0, 2, 3), (2, 2, 0)]:
        mean, var = torch.full((2,), 0.5, dtype=torch.float64), torch.full((2,), 2.0,
                                                                           dtype=torch.float64)
        F.instance_norm(torch.zeros(shape, dtype=torch.float64), mean, var)
        state = jaxgrad.instance_norm_stats(jnp.zeros(shape), jnp.full(2, 0.5), jnp.full(2, 2.0))
        np.testing.assert_array_equal(state.running_mean, mean.numpy())   # NaN, NaN for N = 0
        np.testing.assert_array_equal(state.running_var, var.numpy())


# --------------------------------------------------------------------------
# PyTorch's OpInfo samples.


OPINFO = ("nn.functional.batch_norm", "nn.functional.instance_norm",
          "nn.functional.group_norm", "nn.functional.layer_norm")
OURS = {"nn.functional.batch_norm": jaxgrad.batch_norm,
        "nn.functional.instance_norm": jaxgrad.instance_norm,
        "nn.functional.group_norm": jaxgrad.group_norm,
        "nn.functional.layer_norm": jaxgrad.layer_norm}


def opinfo_samples(name: str) -> list:
    return distinct_samples(name)


@pytest.mark.parametrize("name", OPINFO)
def test_opinfo_samples(name):
    supported = opinfo_samples(name)   # batch_norm's include an empty 1-D input
    assert len(supported) >= 5, name
    # atol: in a group of two values with eps = 1e-5, x̄ = r·(ḡ - mean ḡ -
    # x̂·mean(ḡx̂)) is ~1e-6 out of O(1) terms that cancel; both sides' rounding
    # (1e-16 of those terms) is 1e-10 of the result there. In a group of one
    # value x̄ is exactly 0, and a side's rounding of ḡ - mean ḡ (1e-16·|ḡ|)
    # times r = 1/√eps ≈ 316 leaves up to ~1e-13 for the seeded |ḡ| of 1-3
    # (torch's 5.7e-14 here, jaxgrad's 0). The smallest other gradients, the
    # two-value groups' (~1e-6), are still held to 2e-7 relative by this atol.
    check_samples(f"op_db {name}", OURS[name], getattr(F, name.split(".")[-1]), supported,
                  atol=2e-13)


@pytest.mark.parametrize("name", ["nn.functional.batch_norm", "nn.functional.instance_norm"])
def test_opinfo_running_statistics(name):
    # The samples that train with running statistics: torch updates them in
    # place, jaxgrad returns the same values.
    checked = 0
    for sample in opinfo_samples(name):
        kwargs = dict(sample.kwargs)
        if name.endswith("batch_norm"):
            mean, var = sample.args[:2]
            training = kwargs.get("training", False)
        else:
            mean, var = kwargs.get("running_mean"), kwargs.get("running_var")
            training = kwargs.get("use_input_stats", True)
        if mean is None or not training or sample.input.ndim < 2:
            continue
        mean, var = mean.detach().clone(), var.detach().clone()
        momentum = kwargs.get("momentum", 0.1)
        x = sample.input.detach()
        if name.endswith("batch_norm"):
            F.batch_norm(x, mean, var, training=True, momentum=momentum)
            ours = jaxgrad.batch_norm_stats(as_jax(x), as_jax(sample.args[0]),
                                            as_jax(sample.args[1]), momentum)
        else:
            F.instance_norm(x, mean, var, momentum=momentum)
            ours = jaxgrad.instance_norm_stats(as_jax(x), as_jax(kwargs["running_mean"]),
                                               as_jax(kwargs["running_var"]), momentum)
        assert close(ours.running_mean, mean) and close(ours.running_var, var), sample
        checked += 1
    assert checked >= 2, name


# --------------------------------------------------------------------------
# What torch refuses, jaxgrad refuses, with its own message.


def t(shape):
    return torch.ones(shape, dtype=torch.float64)


REFUSED = [
    ("one value per channel", lambda: F.batch_norm(t((1, 3)), None, None, training=True),
     lambda: jaxgrad.batch_norm(jnp.ones((1, 3)), None, None, training=True),
     r"batch_norm: `input` must have more than 1 value per channel when training"),
    ("eval without stats", lambda: F.batch_norm(t((2, 3)), None, None),
     lambda: jaxgrad.batch_norm(jnp.ones((2, 3)), None, None),
     r"batch_norm: `running_mean` and `running_var` must be given"),
    ("wrong stats shape", lambda: F.batch_norm(t((2, 3)), t(4), t(4)),
     lambda: jaxgrad.batch_norm(jnp.ones((2, 3)), jnp.ones(4), jnp.ones(4)),
     r"batch_norm: `running_mean` must have shape \(3,\)"),
    ("eps 0 training", lambda: F.batch_norm(t((2, 3)), None, None, training=True, eps=0.0),
     lambda: jaxgrad.batch_norm(jnp.ones((2, 3)), None, None, training=True, eps=0.0),
     r"batch_norm: `eps` must be positive when `training` is True"),
    ("one spatial element", lambda: F.instance_norm(t((2, 3, 1))),
     lambda: jaxgrad.instance_norm(jnp.ones((2, 3, 1))),
     r"instance_norm: `input` must have more than 1 spatial element"),
    ("instance eval without stats", lambda: F.instance_norm(t((2, 3, 4)), use_input_stats=False),
     lambda: jaxgrad.instance_norm(jnp.ones((2, 3, 4)), use_input_stats=False),
     r"instance_norm: `running_mean` and `running_var` must be given"),
    ("groups do not divide", lambda: F.group_norm(t((2, 6, 3)), 4),
     lambda: jaxgrad.group_norm(jnp.ones((2, 6, 3)), 4),
     r"group_norm: the channels of `input` \(C=6, .*`num_groups` \(=4\)"),
    ("group_norm 1-D", lambda: F.group_norm(t(6), 2),
     lambda: jaxgrad.group_norm(jnp.ones(6), 2), r"group_norm: `input` must be at least 2-D"),
    ("a single value", lambda: F.group_norm(t((1, 2)), 2),
     lambda: jaxgrad.group_norm(jnp.ones((1, 2)), 2),
     r"group_norm: `input` must have more than 1 value to normalise"),
    ("normalized_shape mismatch", lambda: F.layer_norm(t((2, 3)), (4,)),
     lambda: jaxgrad.layer_norm(jnp.ones((2, 3)), (4,)),
     r"layer_norm: `input` must end in `normalized_shape` \(4,\)"),
    ("weight shape", lambda: F.layer_norm(t((2, 3)), (3,), t(4)),
     lambda: jaxgrad.layer_norm(jnp.ones((2, 3)), (3,), jnp.ones(4)),
     r"layer_norm: `weight` must have shape \(3,\)"),
]


@pytest.mark.parametrize("theirs, ours, message", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_refused_like_torch(theirs, ours, message):
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        theirs()
    with pytest.raises(ValueError, match=message):
        ours()


def test_negative_eps_like_torch():
    """torch's layer, group and instance norm take a negative eps (its OpInfo
    samples use -0.5): the groups whose variance exceeds -eps are normalised
    with 1/√(v + eps), the others are NaN, value and gradient, as torch's."""
    x = np.random.default_rng(3).standard_normal((2, 4, 5))
    x[0, :2] *= 0.3                                    # some groups' v + eps < 0
    x[1, 3] *= 0.2

    def every(fns):
        def run(x):
            outs = [fns["layer"](x, (5,), eps=-0.3), fns["group"](x, 2, eps=-0.3),
                    fns["instance"](x, eps=-0.3)]
            return (torch.stack if isinstance(x, torch.Tensor) else jnp.stack)(outs)
        return run

    ours = every({"layer": jaxgrad.layer_norm, "group": jaxgrad.group_norm,
                  "instance": jaxgrad.instance_norm})
    theirs = every({"layer": F.layer_norm, "group": F.group_norm,
                    "instance": F.instance_norm})
    y = np.asarray(ours(jnp.asarray(x)))
    assert np.isnan(y).any() and np.isfinite(y).any()      # both kinds of groups
    check_values("norms with eps = -0.3", ours, theirs, {"x": x}, double=False)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_instance_norm_zero_variance_zero_eps_like_torch(dtype):
    """torch's instance_norm runs its batch-norm kernel, whose 1/√(v + eps) is
    set to 0 when v = eps = 0: an instance of variance exactly 0 normalises to
    0 (not 0/0 = NaN) and passes no gradient. Layer and group norm, whose
    kernels have no such rule, stay NaN there, as torch's."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    x[0, 1], x[1, 2], x[1, 0] = 2.0, 0.0, -0.375      # exact means: v = 0 exactly
    w, b = (rng.standard_normal(3).astype(dtype) for _ in range(2))
    y = np.asarray(jaxgrad.instance_norm(jnp.asarray(x), weight=jnp.asarray(w),
                                         bias=jnp.asarray(b), eps=0.0))
    np.testing.assert_array_equal(y[0, 1], np.full((4, 4), b[1], dtype))
    testing.check_parity(lambda x, w, b: jaxgrad.instance_norm(x, weight=w, bias=b, eps=0.0),
                         lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=0.0),
                         x, w, b, second_order=True)
    # the other norms: NaN in the constant groups, as torch
    for ours, theirs in ((lambda x: jaxgrad.group_norm(x, 3, eps=0.0),
                          lambda x: F.group_norm(x, 3, eps=0.0)),
                         (lambda x: jaxgrad.layer_norm(x, (4, 4), eps=0.0),
                          lambda x: F.layer_norm(x, (4, 4), eps=0.0))):
        np.testing.assert_array_equal(np.isnan(np.asarray(ours(jnp.asarray(x)))),
                                      np.isnan(theirs(torch.from_numpy(x)).numpy()))
        assert np.isnan(np.asarray(ours(jnp.asarray(x)))[0, 1]).all()
