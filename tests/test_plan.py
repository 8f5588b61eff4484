"""``_plan``: how a convolution runs, asked without running it.

Each expectation is worked out by hand from the rules in ``_plan``'s table
(the workaround or threshold named as the reason), and the kernels are shown
to follow the plan by counting the convolutions in the traced program.
"""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

import jaxgrad
from jaxgrad._conv import _plan
from jaxgrad._conv._plan import Placement, plan
from jaxgrad._conv._spec import ConvSpec


def _spec(n=2, stride=1, padding=1, groups=1, algorithm="auto"):
    return ConvSpec((stride,) * n, ((padding, padding),) * n, (1,) * n, groups, algorithm)


RESNEXT = (_spec(groups=32), (1, 128, 56, 56), (128, 4, 3, 3), (1, 128, 56, 56))


def test_resnext_grouped_conv_on_cpu():
    p = plan(*RESNEXT, jnp.float32, backend="cpu")
    assert (p.forward.formulation, p.forward.reason) == ("per_group", "cpu_slow_grouped")
    assert (p.input_grad.formulation, p.input_grad.reason) == ("taps", "cpu measured")
    assert p.weight_grad.formulation == "taps"
    assert str(p).splitlines()[0] == "forward: per_group (cpu_slow_grouped)"


def test_resnext_grouped_conv_on_gpu_is_textbook():
    p = plan(*RESNEXT, jnp.float32, backend="gpu")
    assert p.forward.formulation == "lax"
    assert p.input_grad == _plan.Choice("transpose", "not measured on this backend")
    assert p.weight_grad.formulation == "transpose"


def test_more_groups_than_the_split_threshold_stay_whole():
    limit = _plan.THRESHOLDS["cpu_split_max_groups"].value
    spec = _spec(groups=2 * limit, algorithm="transpose")
    c = 4 * limit
    p = plan(spec, (1, c, 8, 8), (c, 2, 3, 3), (1, c, 8, 8), jnp.float32, backend="cpu")
    assert (p.forward.formulation, p.input_grad.formulation,
            p.weight_grad.formulation) == ("lax", "transpose", "transpose")
    spec = _spec(groups=limit, algorithm="transpose")
    p = plan(spec, (1, c, 8, 8), (c, 4, 3, 3), (1, c, 8, 8), jnp.float32, backend="cpu")
    assert (p.forward.formulation, p.input_grad.formulation,
            p.weight_grad.formulation) == ("per_group", "transpose_per_group",
                                           "transpose_per_group")


def test_float64_depthwise_on_cpu_runs_per_group_for_nan_placement():
    spec = _spec(groups=8, algorithm="transpose")
    shapes = ((2, 8, 6, 6), (8, 1, 3, 3), (2, 8, 6, 6))
    assert plan(spec, *shapes, jnp.float64, backend="cpu").forward == _plan.Choice(
        "per_group", "cpu_f64_depthwise_nan_leak")
    assert plan(spec, *shapes, jnp.float32, backend="cpu").forward.formulation == "lax"
    # with a channel multiplier (C_out = 2 G) the input gradient's convolution
    # over g's 16 channels in 8 groups is partially grouped: split for speed
    p = plan(spec, (2, 8, 6, 6), (16, 1, 3, 3), (2, 16, 6, 6), jnp.float64, backend="cpu")
    assert p.forward.formulation == "per_group"
    assert p.input_grad == _plan.Choice("transpose_per_group", "asked for; cpu_slow_grouped")


def test_placement_decides_under_meshes():
    spec = _spec(groups=4, algorithm="transpose")
    shapes = ((8, 16, 6, 6), (16, 4, 3, 3), (8, 16, 6, 6))
    explicit = Placement(explicit_axes=True, batch_split_explicitly=True, any_mesh=True)
    p = plan(spec, *shapes, jnp.float32, explicit, backend="gpu")
    assert p.forward.reason == "grouped_batch_all_gather"
    assert p.input_grad == _plan.Choice("transpose_per_group",
                                        "explicit_axes_reshape; grouped_batch_all_gather")
    assert p.weight_grad.formulation == "transpose"        # one all-reduce, not G
    several = Placement(auto_mesh=True, any_mesh=True, several_axes=True)
    p = plan(spec, *shapes, jnp.float32, several, backend="gpu")
    assert p.weight_grad == _plan.Choice("transpose_per_group",
                                         "asked for; multi_axis_batch_group")
    # explicit axes refuse taps even when asked for
    p = plan(_spec(groups=4, algorithm="taps"), *shapes, jnp.float32, explicit,
             backend="cpu")
    assert p.input_grad.reason == "explicit_axes_reshape; grouped_batch_all_gather"
    assert p.weight_grad.reason == "explicit_axes_reshape"


def test_placement_of_real_operands():
    assert Placement.of(jnp.ones(3), np.ones(3)) == _plan.UNPLACED
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    x = jax.device_put(jnp.ones((2, 3)), jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec("data")))
    placed = Placement.of(x, jnp.ones(3))
    assert placed.explicit_axes and placed.batch_split_explicitly
    assert not placed.any_mesh            # one device: nothing is split


def test_every_reason_is_a_row_of_the_table_or_a_plain_word():
    plain = {"one convolution", "asked for", "cpu measured",
             "not measured on this backend", "short strided GEMM (P < C_in·K/2)"}
    rows = set(_plan.THRESHOLDS) | set(_plan.WORKAROUNDS)
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 2, 4, 8]))
        c_in = groups * int(rng.choice([1, 2, 8]))
        c_out = groups * int(rng.choice([1, 3]))
        k, s = int(rng.choice([1, 2, 3])), int(rng.choice([1, 2]))
        spec = ConvSpec((s,) * n, ((0, 0),) * n, (1,) * n, groups,
                        str(rng.choice(["auto", "transpose", "taps"])))
        size = int(rng.integers(k, 9))
        out = (size - k) // s + 1
        placement = Placement(*(bool(b) for b in rng.integers(0, 2, 5)))
        p = plan(spec, (2, c_in) + (size,) * n, (c_out, c_in // groups) + (k,) * n,
                 (2, c_out) + (out,) * n, rng.choice([jnp.float32, jnp.float64]),
                 placement, backend=str(rng.choice(["cpu", "gpu"])))
        for choice in (p.forward, p.input_grad, p.weight_grad):
            for reason in choice.reason.split("; "):
                assert reason in rows | plain, choice
                seen.add(reason)
    assert len(seen) >= 8
    for row in _plan.WORKAROUNDS.values():
        assert row.jaxlib and row.behaviour and row.remedy
    for row in _plan.THRESHOLDS.values():
        assert row.measured and row.decides


def _conv_count(f, *args) -> int:
    jaxpr = jax.make_jaxpr(f)(*args)
    count = 0

    def walk(jaxpr):
        nonlocal count
        for eqn in jaxpr.eqns:
            count += eqn.primitive.name == "conv_general_dilated"
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jaxpr.jaxpr)
    return count


def test_the_kernels_follow_the_plan():
    """A grouped conv under "transpose": each map runs as many convolutions as
    the plan of this backend says (on CPU: G each, the per-group forms)."""
    groups = 4
    x, w = jnp.ones((1, 8, 6, 6), jnp.float32), jnp.ones((8, 2, 3, 3), jnp.float32)
    spec = _spec(groups=groups, algorithm="transpose")
    p = plan(spec, x.shape, w.shape, (1, 8, 6, 6), x.dtype)
    count = {"lax": 1, "transpose": 1, "per_group": groups, "transpose_per_group": groups}
    if jax.default_backend() == "cpu":
        assert {p.forward.formulation, p.input_grad.formulation,
                p.weight_grad.formulation} == {"per_group", "transpose_per_group"}

    def loss(x, w):
        return jaxgrad.conv2d(x, w, padding=1, groups=groups, algorithm="transpose").sum()
    assert _conv_count(loss, x, w) == count[p.forward.formulation]
    assert _conv_count(jax.grad(loss, (0, 1)), x, w) == sum(
        count[c.formulation] for c in (p.forward, p.input_grad, p.weight_grad))
