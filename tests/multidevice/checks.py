"""Sharding and multi-device checks for jaxgrad, run on 8 simulated CPU devices.

Run as a script (``python tests/multidevice/checks.py``): it forces 8 host
devices before jax starts, runs every check, prints ``ok <name>`` or
``FAIL <name>: <reason>`` per check and exits 1 if any failed.
``tests/test_sharding.py`` runs it in a subprocess, so the device-count flag
never reaches the single-device test process.

Reference throughout: the same function run on one device without any mesh,
in float64, so sharded and unsharded results agree to rounding.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # before jax initialises its backends
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_force_host_platform_device_count=8").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import functools
import re
import time
import traceback
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxgrad
from jaxgrad._conv import _core, _plan

jax.config.update("jax_enable_x64", True)

DEVICES = 8
BATCH = 16
RTOL = 1e-10
CHECKS: dict[str, Callable[[], None]] = {}


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS[fn.__name__] = fn
    return fn


def check_explicit(fn: Callable[[], None]) -> Callable[[], None]:
    """A check whose sharded arrays all have explicit mesh axes: they always get
    the textbook gradient formulation, so ``tests/test_sharding.py`` runs it
    with one default formulation only."""
    return check(fn)


def assert_close(name: str, actual, expected, rtol: float = RTOL) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {actual.shape} != {expected.shape}")
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    if not error <= rtol * scale:
        raise AssertionError(f"{name}: max |difference| {error:.3e} > "
                             f"{rtol:.0e} x scale {scale:.3e}")


# --------------------------------------------------------------------------
# The ops under test: (name, loss(params, x, target), params, x, target).
# Each loss is a scalar sum of the op's output against a fixed random
# cotangent, so its gradient is the op's VJP of that cotangent.


def _rand(rng, *shape):
    return jnp.asarray(rng.normal(size=shape), jnp.float64)


@functools.cache
def _op_cases():
    rng = np.random.default_rng(0)
    x = _rand(rng, BATCH, 4, 6, 6)

    def conv(groups: int, c_out: int):
        def loss(p, x, t):
            return jnp.sum(jaxgrad.conv2d(x, p["w"], p["b"], padding=1,
                                          groups=groups) * t)
        params = {"w": _rand(rng, c_out, 4 // groups, 3, 3), "b": _rand(rng, c_out)}
        return loss, params, x, _rand(rng, BATCH, c_out, 6, 6)

    def transpose(p, x, t):
        return jnp.sum(jaxgrad.conv_transpose2d(x, p["w"], p["b"], stride=2,
                                                padding=1, groups=2) * t)

    def linear(p, x, t):
        return jnp.sum(jaxgrad.linear(x, p["w"], p["b"]) * t)

    def pools(p, x, t):
        y = jaxgrad.max_pool2d(x * p["s"], 2) + jaxgrad.avg_pool2d(x * p["s"], 3, 1, 1)[..., ::2, ::2]
        return jnp.sum(y * t)

    def xent(p, x, t):
        return jaxgrad.cross_entropy(jaxgrad.linear(x, p["w"]), t)

    return {
        "conv2d": conv(1, 6),
        "conv2d_grouped": conv(2, 6),
        "conv2d_depthwise": conv(4, 8),
        "conv_transpose2d": (transpose, {"w": _rand(rng, 4, 3, 3, 3), "b": _rand(rng, 6)},
                             x, _rand(rng, BATCH, 6, 11, 11)),
        "linear": (linear, {"w": _rand(rng, 5, 7), "b": _rand(rng, 5)},
                   _rand(rng, BATCH, 7), _rand(rng, BATCH, 5)),
        "pools": (pools, {"s": _rand(rng, 1, 4, 1, 1)}, x, _rand(rng, BATCH, 4, 3, 3)),
        "cross_entropy": (xent, {"w": _rand(rng, 5, 7)}, _rand(rng, BATCH, 7),
                          jnp.asarray(rng.integers(0, 5, BATCH))),
    }


_REFERENCES: dict = {}


def _reference(loss, params, x, t):
    """Value and (params, x) gradients on one device, computed once per case."""
    key = id(loss)    # the cases are built once, so each loss is one object
    if key not in _REFERENCES:
        _REFERENCES[key] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x, t)
    return _REFERENCES[key]


def _compare(name, actual, expected):
    (value, (gp, gx)), (value0, (gp0, gx0)) = actual, expected
    assert_close(f"{name} value", value, value0)
    assert_close(f"{name} d/dx", gx, gx0)
    for key in gp0:
        assert_close(f"{name} d/d{key}", gp[key], gp0[key])


def _assert_layout(name: str, gp: dict, gx, batch_entry="data") -> None:
    """Explicit axes: d/dx split like x, parameter gradients replicated like them."""
    if gx.sharding.spec[0] != batch_entry:
        raise AssertionError(f"{name}: d/dx is not batch-sharded: {gx.sharding.spec}")
    for key, g in gp.items():
        if any(entry is not None for entry in g.sharding.spec):
            raise AssertionError(f"{name}: d/d{key} is not replicated: {g.sharding.spec}")


def _jit_on_mesh(axis_type, mesh_shape=(DEVICES,), batch_entry="data",
                 names=None) -> None:
    axes = ("data", "model")[:len(mesh_shape)]
    mesh = jax.make_mesh(mesh_shape, axes, axis_types=(axis_type,) * len(axes))
    batch, whole = NamedSharding(mesh, P(batch_entry)), NamedSharding(mesh, P())
    for name, (loss, params, x, t) in _op_cases().items():
        if names is not None and name not in names:
            continue
        expected = _reference(loss, params, x, t)
        with jax.set_mesh(mesh):
            args = (jax.device_put(params, whole), jax.device_put(x, batch),
                    jax.device_put(t, batch))
            value, (gp, gx) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(*args)
        if axis_type == AxisType.Explicit:
            _assert_layout(name, gp, gx, batch_entry)
        _compare(f"{name} [{axis_type.name} {mesh_shape}]", (value, (gp, gx)), expected)


@check
def jit_auto_axes() -> None:
    _jit_on_mesh(AxisType.Auto)


@check_explicit
def jit_explicit_axes() -> None:
    _jit_on_mesh(AxisType.Explicit)


def _general_and_flax_cases():
    """conv_general_dilated (NHWC, strided, grouped, lhs-dilated) and flax's
    nnx.Conv with jaxgrad's drop-in, as losses of (params, x, t)."""
    from flax import nnx
    rng = np.random.default_rng(1)
    x = _rand(rng, BATCH, 7, 6, 4)                                   # N, H, W, C
    numbers = ("NHWC", "HWIO", "NHWC")

    def general(p, x, t):
        y = jaxgrad.conv_general_dilated(
            x, p["w"], (2, 1), ((1, 1), (0, 2)), lhs_dilation=(1, 2),
            rhs_dilation=(2, 1), dimension_numbers=numbers, feature_group_count=2)
        return jnp.sum(y * t)

    y_shape = jax.eval_shape(lambda x, w: lax.conv_general_dilated(
        x, w, (2, 1), ((1, 1), (0, 2)), lhs_dilation=(1, 2), rhs_dilation=(2, 1),
        dimension_numbers=numbers, feature_group_count=2), x,
        jnp.zeros((3, 2, 2, 6))).shape
    model = nnx.Conv(4, 5, kernel_size=(3, 3), strides=(1, 2), padding="SAME",
                     conv_general_dilated=jaxgrad.conv_general_dilated,
                     param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    graph, state = nnx.split(model)

    def flax_conv(p, x, t):
        module = nnx.merge(graph, nnx.State({"kernel": nnx.Param(p["kernel"]),
                                             "bias": nnx.Param(p["bias"])}))
        return jnp.sum(module(x) * t)

    flax_params = {"kernel": jnp.asarray(state["kernel"][...]),
                   "bias": jnp.asarray(state["bias"][...])}
    return {
        "conv_general_dilated": (general, {"w": _rand(rng, 3, 2, 2, 6)}, x,
                                 _rand(rng, *y_shape)),
        "nnx.Conv": (flax_conv, flax_params, x, _rand(rng, BATCH, 7, 3, 5)),
    }


def _general_on_mesh(mesh_shape, batch_entry) -> None:
    axes = ("data", "model")[:len(mesh_shape)]
    mesh = jax.make_mesh(mesh_shape, axes, axis_types=(AxisType.Explicit,) * len(axes))
    batch, whole = NamedSharding(mesh, P(batch_entry)), NamedSharding(mesh, P())
    for name, (loss, params, x, t) in _general_and_flax_cases().items():
        expected = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x, t)
        with jax.set_mesh(mesh):
            args = (jax.device_put(params, whole), jax.device_put(x, batch),
                    jax.device_put(t, batch))
            value, (gp, gx) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(*args)
            # and a second order: the gradient of the squared input gradient
            g2 = jax.jit(jax.grad(lambda p, x, t: jnp.sum(
                jax.grad(loss, argnums=1)(p, x, t) ** 2)))(*args)
        g2_expected = jax.jit(jax.grad(lambda p, x, t: jnp.sum(
            jax.grad(loss, argnums=1)(p, x, t) ** 2)))(params, x, t)
        _assert_layout(name, gp, gx, batch_entry)
        _compare(f"{name} [Explicit {mesh_shape}]", (value, (gp, gx)), expected)
        for key in g2_expected:
            assert_close(f"{name} second order d/d{key}", g2[key], g2_expected[key])


@check_explicit
def conv_general_dilated_and_nnx_conv_explicit_axes() -> None:
    """The lax-signature drop-in (and Flax through it) on batch-split arrays
    with explicit axes: the hand-written cotangents name their sharding."""
    _general_on_mesh((DEVICES,), "data")
    _general_on_mesh(_MESH_2D, ("data", "model"))


# A 2-D mesh (data 2, model 4) with the batch split over both axes: every
# sample still lives on one device, so the ops behave as on the 1-D mesh. The
# cases whose rules differ from a dense conv's (groups, transposed conv, a
# matmul) stand for the rest. Not yet checked: the batch on "data" only,
# replicated over "model": there XLA's partitioner (jaxlib 0.10.2) computes the
# grouped weight gradient (batch_group_count) wrong, autodiff's as well, and
# jaxgrad's "transpose" rule with it (the fix, a per-group weight gradient on
# meshes of several axes, is in ``_weight_grad_impl``'s hands).
_MESH_2D = (2, DEVICES // 2)
_BATCH_2D = ("data", "model")
_CASES_2D = {"conv2d_grouped", "conv2d_depthwise", "conv_transpose2d", "linear"}


@check
def jit_2d_mesh_auto_axes() -> None:
    _jit_on_mesh(AxisType.Auto, _MESH_2D, _BATCH_2D, _CASES_2D)


@check_explicit
def jit_2d_mesh_explicit_axes() -> None:
    _jit_on_mesh(AxisType.Explicit, _MESH_2D, _BATCH_2D, _CASES_2D)


# The batch split over "data" only, replicated over "model" (data parallelism
# beside a model axis): XLA's partitioner (jaxlib 0.10.2) gets the grouped
# weight gradient (batch_group_count) wrong here, autodiff's too; jaxgrad
# writes it per group (``_core._per_group_weight_grad``).


@check
def jit_2d_mesh_data_axis_auto_axes() -> None:
    _jit_on_mesh(AxisType.Auto, _MESH_2D, "data", {"conv2d_grouped"})


@check_explicit
def jit_2d_mesh_data_axis_explicit_axes() -> None:
    _jit_on_mesh(AxisType.Explicit, _MESH_2D, "data", {"conv2d_grouped"})


# Tensor parallelism on the 2-D mesh: the batch split over "data", the output
# channels of a conv (weight dim 0 and bias) and the out features of linear
# over "model", the target laid out like the output. Gradients keep their
# primal's layout. (With a batch_group_count weight gradient, XLA's
# partitioner aborts on the grouped case under Auto axes and autodiff's
# gradient; jaxgrad computes it per group on such meshes.)


@functools.cache
def _tensor_parallel_cases():
    rng = np.random.default_rng(4)
    x = _rand(rng, BATCH, 4, 6, 6)

    def conv(groups: int):
        def loss(p, x, t):
            return jnp.sum(jaxgrad.conv2d(x, p["w"], p["b"], padding=1,
                                          groups=groups) * t)
        params = {"w": _rand(rng, 8, 4 // groups, 3, 3), "b": _rand(rng, 8)}
        return loss, params, x, _rand(rng, BATCH, 8, 6, 6)

    def linear(p, x, t):
        return jnp.sum(jaxgrad.linear(x, p["w"], p["b"]) * t)

    return {"conv2d": conv(1), "conv2d_grouped": conv(2), "conv2d_depthwise": conv(4),
            "linear": (linear, {"w": _rand(rng, 8, 7), "b": _rand(rng, 8)},
                       _rand(rng, BATCH, 7), _rand(rng, BATCH, 8))}


def _full_spec(a) -> tuple:
    spec = tuple(a.sharding.spec)
    return spec + (None,) * (a.ndim - len(spec))


def _tensor_parallel(axis_type, names) -> None:
    mesh = jax.make_mesh(_MESH_2D, ("data", "model"), axis_types=(axis_type,) * 2)
    for name, (loss, params, x, t) in _tensor_parallel_cases().items():
        if name not in names:
            continue
        expected = _reference(loss, params, x, t)
        with jax.set_mesh(mesh):
            args = (jax.device_put(params, NamedSharding(mesh, P("model"))),
                    jax.device_put(x, NamedSharding(mesh, P("data"))),
                    jax.device_put(t, NamedSharding(mesh, P("data", "model"))))
            value, (gp, gx) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(*args)
        if axis_type == AxisType.Explicit:
            pairs = {"x": (gx, args[1]), **{k: (gp[k], args[0][k]) for k in gp}}
            for key, (grad, primal) in pairs.items():
                if _full_spec(grad) != _full_spec(primal):
                    raise AssertionError(f"{name} d/d{key}: laid out {_full_spec(grad)}, "
                                         f"its primal {_full_spec(primal)}")
        _compare(f"{name} [{axis_type.name} tensor parallel]", (value, (gp, gx)), expected)


@check
def tensor_parallel_auto_axes() -> None:
    _tensor_parallel(AxisType.Auto, set(_tensor_parallel_cases()))


@check_explicit
def tensor_parallel_explicit_axes() -> None:
    _tensor_parallel(AxisType.Explicit, set(_tensor_parallel_cases()))


def _second_order(case, mesh, specs: tuple, label: str) -> None:
    """Grad of a gradient norm (reverse over reverse), arguments laid out by ``specs``."""
    loss, params, x, t = case
    norm = lambda p, x, t: sum(jnp.sum(g ** 2) for g in jax.tree.leaves(jax.grad(loss)(p, x, t)))
    expected = jax.jit(jax.grad(norm))(params, x, t)
    with jax.set_mesh(mesh):
        args = [jax.device_put(a, NamedSharding(mesh, spec))
                for a, spec in zip((params, x, t), specs)]
        actual = jax.jit(jax.grad(norm))(*args)
    for key in expected:
        assert_close(f"second order d/d{key} [{label}]", actual[key], expected[key])


@check_explicit
def second_order_explicit_axes() -> None:
    """Under explicit batch sharding, on the 1-D and 2-D meshes, and tensor parallel."""
    grouped = _op_cases()["conv2d_grouped"]
    _second_order(grouped, jax.make_mesh((DEVICES,), ("data",)),
                  (P(), P("data"), P("data")), "batch")
    mesh = jax.make_mesh(_MESH_2D, ("data", "model"))
    _second_order(grouped, mesh, (P(), P(_BATCH_2D), P(_BATCH_2D)), "2-D batch")
    _second_order(_tensor_parallel_cases()["conv2d"], mesh,
                  (P("model"), P("data"), P("data", "model")), "tensor parallel")


# --------------------------------------------------------------------------
# shard_map with check_vma=True: replicated (invariant) weights, batch-split x.
# The hand-written backward sums the per-device weight cotangents itself
# (``_core.match_vma``); the gradient must equal the single-device one,
# whether taken outside the map (of the psum of the local losses) or inside
# it (of the local loss: the weights are invariant, so jax.grad already gives
# the sum over devices; an N-fold over-count would show here).


def _sum_of_chunks(loss):
    """Σ_d loss(chunk d of the batch): what the psum of per-device losses computes."""
    def total(p, x, t):
        size = x.shape[0] // DEVICES
        return sum(loss(p, x[d * size:(d + 1) * size], t[d * size:(d + 1) * size])
                   for d in range(DEVICES))
    return total


def _shard_map_case(mesh, name, loss, params, x, t):
    specs = (P(), P("data"), P("data"))
    # Each device's loss sees its own chunk (a "mean" is a per-chunk mean).
    expected = jax.jit(jax.grad(_sum_of_chunks(loss)))(params, x, t)

    def outside(p, x, t):
        local = lambda p, x, t: lax.psum(loss(p, x, t), "data")
        return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P(),
                             check_vma=True)(p, x, t)

    def inside(p, x, t):
        return jax.shard_map(jax.grad(loss), mesh=mesh, in_specs=specs,
                             out_specs=P(), check_vma=True)(p, x, t)

    with jax.set_mesh(mesh):
        args = (jax.device_put(params, NamedSharding(mesh, P())),
                jax.device_put(x, NamedSharding(mesh, P("data"))),
                jax.device_put(t, NamedSharding(mesh, P("data"))))
        both = jax.jit(lambda *a: (jax.grad(outside)(*a), inside(*a)))(*args)
    for where, grads in zip(("outside", "inside"), both):
        for key in expected:
            assert_close(f"{name} grad {where} d/d{key}", grads[key], expected[key])


def _shard_map_on_mesh(axis_type, names) -> None:
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(axis_type,))
    for name, case in _op_cases().items():
        if name in names:
            _shard_map_case(mesh, f"{name} [{axis_type.name}]", *case)


@check
def shard_map_auto_axes() -> None:
    _shard_map_on_mesh(AxisType.Auto, set(_op_cases()))


@check
def shard_map_explicit_axes() -> None:
    # Inside the map every axis is Manual whatever the mesh's type: the ops
    # with a mixed invariant / varying backward are enough here.
    _shard_map_on_mesh(AxisType.Explicit, {"conv2d_grouped", "linear"})


@check
def conv_general_dilated_and_nnx_conv_shard_map() -> None:
    """The lax-signature drop-in (and Flax through it) inside shard_map with
    check_vma=True: the invariant kernel's cotangent is summed over the devices
    (``_rules.match_vma``), as for the torch-style ops."""
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(AxisType.Auto,))
    for name, case in _general_and_flax_cases().items():
        _shard_map_case(mesh, f"{name} [shard_map]", *case)


@check
def pmap_with_pmean() -> None:
    """Per-device mean-loss gradients averaged by ``pmean`` = the full-batch mean's."""
    loss, params, x, t = _op_cases()["conv2d_grouped"]
    mean_loss = lambda p, x, t: loss(p, x, t) / x.shape[0]
    expected = jax.grad(mean_loss)(params, x, t)
    split = lambda a: a.reshape((DEVICES, -1) + a.shape[1:])
    step = jax.pmap(lambda p, x, t: lax.pmean(jax.grad(mean_loss)(p, x, t), "i"),
                    axis_name="i", in_axes=(None, 0, 0))
    grads = step(params, split(x), split(t))
    for key in expected:
        for device in range(DEVICES):
            assert_close(f"pmap d/d{key} on device {device}", grads[key][device],
                         expected[key])


# --------------------------------------------------------------------------
# Collectives in the compiled train step. Data parallelism needs exactly one
# all-reduce per parameter gradient (XLA may combine several, and the loss's
# scalar, into one tuple all-reduce) and no all-gather of activations.


def _cnn(conv2d, groups: int):
    def loss(p, x, t):
        h = jaxgrad.relu(conv2d(x, p["cw"], p["cb"], padding=1, groups=groups))
        h = jaxgrad.avg_pool2d(h, 2).reshape(x.shape[0], -1)
        return jaxgrad.cross_entropy(jaxgrad.linear(h, p["lw"], p["lb"]), t)
    return loss


def _autodiff_conv2d(x, w, b, padding, groups):
    pads = ((padding, padding),) * 2
    y = lax.conv_general_dilated(x, w, (1, 1), pads, feature_group_count=groups,
                                 out_sharding=jax.typeof(x).sharding)
    return y + b[:, None, None]


def _collectives(loss, groups: int, axis_type=AxisType.Explicit) -> tuple[list, list, dict]:
    """(all-reduce operand shapes, all-gather op names, params) of one SGD step."""
    rng = np.random.default_rng(1)
    params = {"cw": _rand(rng, 8, 8 // groups, 3, 3), "cb": _rand(rng, 8),
              "lw": _rand(rng, 3, 8 * 3 * 3), "lb": _rand(rng, 3)}
    x, t = _rand(rng, BATCH, 8, 6, 6), jnp.asarray(rng.integers(0, 3, BATCH))

    def step(p, x, t):
        value, grads = jax.value_and_grad(loss)(p, x, t)
        return value, jax.tree.map(lambda a, g: a - 0.1 * g, p, grads)

    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        args = (jax.device_put(params, NamedSharding(mesh, P())),
                jax.device_put(x, NamedSharding(mesh, P("data"))),
                jax.device_put(t, NamedSharding(mesh, P("data"))))
        hlo = jax.jit(step).lower(*args).compile().as_text()
    reduced, gathered = [], []
    for line in hlo.splitlines():
        if " all-reduce(" in line:
            result = line.split(" = ", 1)[1].split(" all-reduce(")[0]
            reduced += [tuple(int(d) for d in dims.split(",") if d)
                        for dims in re.findall(r"f64\[([\d,]*)\]", result)]
        if " all-gather(" in line:
            gathered.append(re.search(r'op_name="([^"]*)"', line).group(1))
    return reduced, gathered, params


def _assert_data_parallel(name: str, groups: int, forward_gathers: int,
                          axis_type=AxisType.Explicit) -> None:
    reduced, gathered, params = _collectives(_cnn(jaxgrad.conv2d, groups), groups, axis_type)
    auto_reduced, auto_gathered, _ = _collectives(_cnn(_autodiff_conv2d, groups), groups,
                                                  axis_type)
    name = f"{name} [{axis_type.name}]"
    print(f"  {name}: jaxgrad {len(gathered)} all-gather(s), all-reduced "
          f"{sorted(reduced)}; autodiff {len(auto_gathered)} all-gather(s), "
          f"all-reduced {sorted(auto_reduced)}")
    # Scalars are the loss's own sums (cross_entropy's "mean": Σ ℓ and Σ w_t).
    # Under Auto axes XLA may reduce a gradient in another shape of the same
    # size (the grouped weight gradient as (G, C_out/G, C_in/G·K)): compare sizes.
    shapes = sorted(tuple(a.shape) for a in params.values())
    sizes = sorted(int(np.prod(shape)) for shape in reduced if shape)
    if sizes != sorted(a.size for a in params.values()):
        raise AssertionError(f"{name}: all-reduced {sorted(reduced)}, expected each "
                             f"parameter gradient {shapes} once (+ scalars)")
    backward = [op for op in gathered if "transpose" in op]
    if backward or len(gathered) != forward_gathers:
        raise AssertionError(f"{name}: all-gathers {gathered}, expected "
                             f"{forward_gathers} in the forward and none in backward")


@check_explicit
def collectives_dense_conv() -> None:
    _assert_data_parallel("groups=1", 1, forward_gathers=0)


@check_explicit
def collectives_depthwise_conv() -> None:
    _assert_data_parallel("groups=C (depthwise)", 8, forward_gathers=0)


@check_explicit
def collectives_grouped_conv() -> None:
    # XLA's SPMD partitioner (jax 0.10.2) all-gathers the batch of a forward
    # conv with 1 < feature_group_count < C (autodiff's step shows it); jaxgrad
    # convolves group by group when the batch is split on explicit axes.
    _assert_data_parallel("groups=2", 2, forward_gathers=0)


@check
def collectives_grouped_conv_auto_axes() -> None:
    # Auto axes do not show the batch split in the types; jaxgrad splits per
    # group whenever a mesh of Auto axes with more than one device is in
    # effect (``_plan.Placement.auto_mesh``; here through jax.set_mesh
    # and the committed arguments). Autodiff all-gathers in the forward and
    # in the input gradient.
    _assert_data_parallel("groups=2", 2, forward_gathers=0, axis_type=AxisType.Auto)


@check
def grouped_input_grad_auto_axes_is_local() -> None:
    """d/dx of a grouped conv on Auto axes, with and without jax.set_mesh:
    committed batch-sharded arguments carry the mesh in their types."""
    rng = np.random.default_rng(5)
    x, w = _rand(rng, BATCH, 8, 6, 6), _rand(rng, 8, 2, 3, 3)
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(
        jaxgrad.conv2d(x, w, padding=1, groups=4) ** 2)))
    expected = grad(x, w)
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(AxisType.Auto,))
    args = (jax.device_put(x, NamedSharding(mesh, P("data"))),
            jax.device_put(w, NamedSharding(mesh, P())))
    for where in ("set_mesh", "committed arguments only"):
        if where == "set_mesh":
            with jax.set_mesh(mesh):
                hlo, actual = grad.lower(*args).compile().as_text(), grad(*args)
        else:
            hlo, actual = grad.lower(*args).compile().as_text(), grad(*args)
        if hlo.count(" all-gather(") != 0:
            raise AssertionError(f"grouped d/dx [{where}]: "
                                 f"{hlo.count(' all-gather(')} all-gather(s), expected 0")
        assert_close(f"grouped d/dx [{where}]", actual, expected)


@check
def depthwise_forward_unseen_mesh_is_local() -> None:
    """jit(in_shardings=...) on uncommitted arrays outside jax.set_mesh: jaxgrad
    sees no mesh, so the CPU taps forward runs in its two-iteration loop; over
    halves of the groups, the batch split stays local (a loop over halves of
    the batch had XLA gather y)."""
    rng = np.random.default_rng(6)
    # 16·32·16²·9 = 1.2e6 multiply-adds, above taps_forward_halves_min_terms
    x, w = _rand(rng, BATCH, 32, 16, 16), _rand(rng, 32, 1, 3, 3)
    assert BATCH * 32 * 16 * 16 * 9 >= _plan.THRESHOLDS["taps_forward_halves_min_terms"].value
    loss = lambda x, w: jnp.sum(jaxgrad.conv2d(x, w, padding=1, groups=32) ** 2)
    expected = jax.jit(jax.value_and_grad(loss, (0, 1)))(x, w)
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(AxisType.Auto,))
    step = jax.jit(jax.value_and_grad(loss, (0, 1)),
                   in_shardings=(NamedSharding(mesh, P("data")), NamedSharding(mesh, P())))
    hlo = step.lower(x, w).compile().as_text()
    if hlo.count(" all-gather(") != 0:
        raise AssertionError(f"depthwise v&g on an unseen mesh: "
                             f"{hlo.count(' all-gather(')} all-gather(s), expected 0")
    for name, a, e in zip(("value", "d/dx", "d/dw"), jax.tree.leaves(step(x, w)),
                          jax.tree.leaves(expected)):
        assert_close(f"depthwise {name} on an unseen mesh", a, e)


@check_explicit
def collectives_grouped_conv_transpose() -> None:
    """A grouped transposed conv (the input-gradient kernel) stays local too."""
    rng = np.random.default_rng(3)
    x, w = _rand(rng, BATCH, 8, 6, 6), _rand(rng, 8, 2, 3, 3)
    loss = lambda w, x: jnp.sum(jaxgrad.conv_transpose2d(x, w, stride=2, groups=2) ** 2)
    mesh = jax.make_mesh((DEVICES,), ("data",))
    with jax.set_mesh(mesh):
        args = (jax.device_put(w, NamedSharding(mesh, P())),
                jax.device_put(x, NamedSharding(mesh, P("data"))))
        hlo = jax.jit(jax.grad(loss)).lower(*args).compile().as_text()
        actual = jax.jit(jax.grad(loss))(*args)
    counts = {op: hlo.count(f" {op}(") for op in ("all-reduce", "all-gather")}
    if counts != {"all-reduce": 1, "all-gather": 0}:
        raise AssertionError(f"grouped conv_transpose2d step collectives: {counts}")
    assert_close("grouped conv_transpose2d d/dw", actual, jax.jit(jax.grad(loss))(w, x))


@check_explicit
def grouped_weight_grad_is_local() -> None:
    """The grouped weight-gradient kernel alone: one all-reduce, no all-gather."""
    rng = np.random.default_rng(2)
    x, g = _rand(rng, BATCH, 8, 6, 6), _rand(rng, BATCH, 8, 6, 6)
    spec = _core.ConvSpec((1, 1), ((1, 1), (1, 1)), (1, 1), 2)
    expected = _core.weight_grad(x, g, spec, (3, 3))
    mesh = jax.make_mesh((DEVICES,), ("data",))
    with jax.set_mesh(mesh):
        batch = NamedSharding(mesh, P("data"))
        args = (jax.device_put(x, batch), jax.device_put(g, batch))
        fn = jax.jit(lambda x, g: _core.weight_grad(x, g, spec, (3, 3)))
        hlo = fn.lower(*args).compile().as_text()
        actual = fn(*args)
    counts = {op: hlo.count(f" {op}(") for op in ("all-reduce", "all-gather")}
    if counts != {"all-reduce": 1, "all-gather": 0}:
        raise AssertionError(f"grouped weight gradient collectives: {counts}")
    assert_close("grouped weight gradient", actual, expected)


@check
def autotune_falls_back_on_meshes() -> None:
    """``algorithm="autotune"`` times nothing with Auto mesh axes or inside
    shard_map (it takes "auto"'s rules there), and the values are right."""
    from jaxgrad._conv import _autotune

    def refuse(kind, formulation, context, call):
        raise AssertionError(f"autotune timed {kind} {formulation} on a mesh")

    def loss(p, x, t):
        return jnp.sum(jaxgrad.conv2d(x, p["w"], padding=1, groups=2,
                                      algorithm="autotune") * t)

    def reference(p, x, t):
        return jnp.sum(lax.conv_general_dilated(
            x, p["w"], (1, 1), [(1, 1)] * 2, feature_group_count=2,
            precision=lax.Precision.HIGHEST) * t)

    rng = np.random.default_rng(1)
    params = {"w": _rand(rng, 8, 2, 3, 3)}
    x, t = _rand(rng, BATCH, 4, 6, 6), _rand(rng, BATCH, 8, 6, 6)
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(AxisType.Auto,))
    specs = (P(), P("data"), P("data"))
    saved, _autotune._time_call = _autotune._time_call, refuse
    try:
        with jax.set_mesh(mesh):
            args = [jax.device_put(a, NamedSharding(mesh, s))
                    for a, s in zip((params, x, t), specs)]
            on_mesh = jax.jit(jax.grad(loss, argnums=(0, 1)))(*args)
            inside = jax.jit(jax.shard_map(jax.grad(loss), mesh=mesh, in_specs=specs,
                                           out_specs=P(), check_vma=True))(*args)
    finally:
        _autotune._time_call = saved
    expected = jax.jit(jax.grad(reference, argnums=(0, 1)))(params, x, t)
    assert_close("autotune on a mesh d/dw", on_mesh[0]["w"], expected[0]["w"])
    assert_close("autotune on a mesh d/dx", on_mesh[1], expected[1])
    per_chunk = jax.jit(jax.grad(_sum_of_chunks(reference)))(params, x, t)
    assert_close("autotune inside shard_map d/dw", inside["w"], per_chunk["w"])
    if _autotune._memory:
        raise AssertionError(f"autotune cached a plan on a mesh: {list(_autotune._memory)}")


def main() -> int:
    names = sys.argv[1:] or list(CHECKS)
    print(f"devices: {jax.device_count()}")
    failed = []
    for name in names:
        start = time.perf_counter()
        try:
            CHECKS[name]()
            print(f"  ({time.perf_counter() - start:.1f} s)")
            print(f"ok {name}", flush=True)
        except Exception as error:  # noqa: BLE001 -- report every check, then fail
            failed.append(name)
            detail = "".join(traceback.format_exception_only(error)).strip()
            print(f"FAIL {name}: {detail}", flush=True)
            traceback.print_exc()
    print(f"FAILED: {', '.join(failed)}" if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
