"""``algorithm="autotune"`` (``_conv._autotune``): the timed winner, its caches, its fallbacks.

No assertion here is about speed. Timing is replaced by a fake timer
(``_autotune._time_call``) that reads each candidate's "seconds" from a
table, so the winner is known in advance and every timing call is counted;
one test runs the real timer on a tiny convolution to show it works at trace
time, and asserts only that its choice is a candidate and the values are right.

References: JAX autodiff of a plain ``lax.conv_general_dilated``
(``_reference.lax_conv``) for values, first and second order, in float64;
for the caches, the file contents and the number of timer calls.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import jaxgrad
from jaxgrad._checking import _reference
from jaxgrad._checking._tolerance import max_errors, tolerance
from jaxgrad._conv import _autotune, _core, _plan, _taps
from jaxgrad._conv._ops import conv_spec
from jaxgrad._conv._plan import FORMULATIONS, MAPS, Placement
from jaxgrad._conv._spec import ConvSpec

from ._autodiff import forbid_autodiff, run_second_order


class FakeTimer:
    """``_time_call`` with made-up seconds: ``table[(map, formulation,
    context)]`` or ``table[(map, formulation)]`` if given, else 1 s for the
    map's ``winners`` entry and 2 s + its index in ``FORMULATIONS`` for the
    others. Counts its calls; runs nothing."""

    def __init__(self, winners=None, table=None):
        self.winners, self.table, self.calls = dict(winners or {}), table or {}, 0

    def __call__(self, kind, formulation, context, call):
        self.calls += 1
        for key in ((kind, formulation, context), (kind, formulation)):
            if key in self.table:
                return self.table[key]
        if self.winners.get(kind) == formulation:
            return 1.0
        return 2.0 + FORMULATIONS[kind].index(formulation)


def _refuse(kind, formulation, context, call):
    raise AssertionError(f"timed {kind} {formulation}: the cache should have answered")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory and in-memory state; jax's trace caches cleared
    (a function traced before would keep its earlier formulation)."""
    monkeypatch.setenv("JAXGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("JAXGRAD_AUTOTUNE_BUDGET_S", raising=False)
    _autotune.clear_cache()
    jax.clear_caches()
    yield tmp_path
    _autotune.clear_cache()


def _timer(monkeypatch, **kwargs) -> FakeTimer:
    timer = FakeTimer(**kwargs)
    monkeypatch.setattr(_autotune, "_time_call", timer)
    return timer


def _spec(n=2, stride=1, padding=1, dilation=1, groups=1, algorithm="autotune"):
    return ConvSpec((stride,) * n, ((padding, padding),) * n, (dilation,) * n, groups,
                    algorithm)


def _random(seed, *shapes, dtype=jnp.float64):
    """Standard normal arrays; complex ones with independent real and
    imaginary parts."""
    rng = np.random.default_rng(seed)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return [jnp.asarray(rng.standard_normal(s) + 1j * rng.standard_normal(s), dtype)
                for s in shapes]
    return [jnp.asarray(rng.standard_normal(s), dtype) for s in shapes]


def _assert_close(actual, expected, what):
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    _, rel = max_errors(actual, expected)
    assert rel <= tolerance(np.float64), f"{what}: rel {rel:.3e}"


def _cache_path():
    return _autotune.cache_file(jax.default_backend(), jax.devices()[0].device_kind)


# A grouped convolution: three candidates for every map.
GROUPED = (_spec(groups=4), (1, 8, 6, 6), (8, 2, 3, 3), (1, 8, 6, 6))


# --------------------------------------------------------------------------
# Every candidate of every map equals lax autodiff, first and second order.
# One jitted program per configuration: for each rank r the fake timer makes
# FORMULATIONS[map][r] win (textbook, per group, taps, and for the forward
# im2col) where it is a candidate, the in-memory cache is cleared, and the
# conv is traced again.

RANKS = max(len(names) for names in FORMULATIONS.values())

CASES = [
    ("1d depthwise s2 p1", (2, 4, 12), (4, 1, 3), dict(stride=2, padding=1, groups=4)),
    ("1d grouped d3 pairs", (1, 6, 13), (6, 2, 3),
     dict(dilation=3, padding=((2, 1),), groups=3)),
    ("2d depthwise x2 d2 p2", (2, 3, 7, 7), (6, 1, 3, 3),
     dict(dilation=2, padding=2, groups=3)),
    ("2d grouped s(2,1) pairs", (1, 6, 7, 6), (6, 2, 2, 3),
     dict(stride=(2, 1), padding=((1, 0), (0, 2)), groups=3)),
    ("3d grouped x2 s(1,2,1) p1", (1, 4, 4, 5, 4), (8, 2, 2, 2, 3),
     dict(stride=(1, 2, 1), padding=1, groups=2)),
    ("2d dense p1", (2, 3, 5, 5), (4, 3, 3, 3), dict(padding=1)),
    # the swapped weight gradient's pads: a negative low one (lo > (K-1)·d
    # crops the dilated cotangent), and windows that stop short of the input
    ("1d dense p(4,1) crop", (2, 3, 9), (2, 3, 2), dict(padding=((4, 1),))),
    ("3d dense d(1,2,1) pairs", (1, 2, 4, 7, 3), (3, 2, 2, 2, 2),
     dict(dilation=(1, 2, 1), padding=((1, 0), (0, 2), (2, 1)))),
]


def _per_dim(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _reference_conv(n, kwargs):
    pads = tuple(p if isinstance(p, tuple) else (p, p)
                 for p in _per_dim(kwargs.get("padding", 0), n))
    return lambda x, w: _reference.lax_conv(
        x, w, None, _per_dim(kwargs.get("stride", 1), n), pads,
        _per_dim(kwargs.get("dilation", 1), n), kwargs.get("groups", 1))


def _results(fn, x, w, cot, u, v):
    """Output, VJP of ``cot``, and the gradient of ⟨x̄, u⟩ + ⟨w̄, v⟩ w.r.t. (x, w, cot)."""
    def first_order(x, w, cot):
        y, vjp = jax.vjp(fn, x, w)
        return vjp(cot), y

    (gx, gw), second_order, y = jax.vjp(first_order, x, w, cot, has_aux=True)
    return (y, gx, gw) + tuple(second_order((u, v)))


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_every_candidate_equals_lax_autodiff(cache, monkeypatch, x_shape, w_shape, kwargs):
    _check_every_candidate(monkeypatch, x_shape, w_shape, kwargs, jnp.float64)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [CASES[i][1:] for i in (2, 3, 5)],
                         ids=[CASES[i][0] for i in (2, 3, 5)])
def test_every_candidate_equals_lax_autodiff_complex(cache, monkeypatch, x_shape, w_shape,
                                                     kwargs):
    """complex128: JAX's convention (VJP Aᵀḡ) for every candidate; the second
    order is the VJP of the (complex-linear) first-order map, as for floats."""
    _check_every_candidate(monkeypatch, x_shape, w_shape, kwargs, jnp.complex128)


def _check_every_candidate(monkeypatch, x_shape, w_shape, kwargs, dtype):
    n = len(w_shape) - 2
    monkeypatch.setattr(_autotune, "_write", lambda *args: None)    # memory only
    timer = _timer(monkeypatch)
    x, w = _random(0, x_shape, w_shape, dtype=dtype)
    ref = _reference_conv(n, kwargs)
    cot, u, v = _random(1, jax.eval_shape(ref, x, w).shape, x_shape, w_shape, dtype=dtype)
    chosen = {kind: set() for kind in MAPS}

    def program(x, w, cot, u, v):
        out = {"lax": _results(ref, x, w, cot, u, v)}
        for rank in range(RANKS):
            _autotune.clear_cache()
            timer.winners = {kind: FORMULATIONS[kind][min(rank, len(FORMULATIONS[kind]) - 1)]
                             for kind in MAPS}
            out[f"rank {rank}"] = _results(lambda x, w: jaxgrad.conv(
                x, w, algorithm="autotune", **kwargs), x, w, cot, u, v)
            (entry,) = _autotune._memory.values()
            for kind in MAPS:
                chosen[kind].add(entry[kind]["choice"])
        return out

    out = jax.jit(program)(x, w, cot, u, v)
    names = ("output", "grad_x", "grad_w", "grad2_x", "grad2_w", "grad2_cot")
    for rank in range(RANKS):
        for name, a, e in zip(names, out[f"rank {rank}"], out["lax"]):
            _assert_close(a, e, f"rank {rank} {name}")
    # every candidate of every map ran once
    y_shape = cot.shape
    spec = conv_spec(
        "conv", x_shape[2:], w_shape[2:], kwargs.get("stride", 1),
        kwargs.get("padding", 0), kwargs.get("dilation", 1), kwargs.get("groups", 1),
        x_shape[1], w_shape[0], w_shape[1], algorithm="autotune")
    for kind in MAPS:
        assert chosen[kind] == set(_plan.candidates(kind, spec, x_shape, w_shape, y_shape,
                                                    dtype)), kind
    if kwargs.get("groups", 1) > 1:
        assert {"taps", "im2col"} <= chosen["forward"]


@pytest.mark.parametrize("winners", [
    {"forward": "taps", "input_grad": "taps", "weight_grad": "taps"},
    {"forward": "per_group", "input_grad": "transpose_per_group",
     "weight_grad": "transpose_per_group"},
])
def test_no_order_uses_autodiff_under_autotune(cache, monkeypatch, winners):
    _timer(monkeypatch, winners=winners)
    forbid_autodiff(monkeypatch, _core, ("_conv_impl", "_input_grad_impl",
                                         "_weight_grad_impl"))
    forbid_autodiff(monkeypatch, _taps, ("forward", "input_grad", "weight_grad",
                                         "patches", "col2im"))
    x, w = jnp.ones((2, 4, 7, 6)), jnp.ones((8, 2, 3, 2))
    run_second_order(lambda x, w: jaxgrad.conv2d(x, w, stride=2, padding=1, groups=2,
                                                 algorithm="autotune"), x, w)
    (entry,) = _autotune._memory.values()
    assert {kind: entry[kind]["choice"] for kind in MAPS} == winners


# --------------------------------------------------------------------------
# The winner, the reasons, the log, and the kernels that follow.


def test_autotune_returns_the_timed_winner(cache, monkeypatch, caplog):
    monkeypatch.setenv("JAXGRAD_AUTOTUNE_BUDGET_S", "100")
    table = {("forward", "lax"): 0.2, ("forward", "per_group"): 0.01,
             ("forward", "taps"): 0.003, ("forward", "im2col"): 0.05,
             ("forward", "im2col", "moved"): 0.07,
             ("input_grad", "transpose"): 0.004, ("input_grad", "transpose_per_group"): 0.5,
             ("input_grad", "taps"): 0.006,
             ("weight_grad", "transpose"): 0.03, ("weight_grad", "transpose_per_group"): 0.02,
             ("weight_grad", "taps"): 0.04}
    timer = _timer(monkeypatch, table=table)
    with caplog.at_level(logging.INFO, logger="jaxgrad.autotune"):
        p = _plan.plan(*GROUPED, jnp.float32)
    assert (p.forward.formulation, p.input_grad.formulation, p.weight_grad.formulation) == (
        "taps", "transpose", "transpose_per_group")
    assert p.forward.reason == (
        "autotuned: taps 3 ms, moved 3 ms; per_group 10 ms, moved 10 ms; "
        "im2col 50 ms, moved 70 ms; lax 200 ms, moved 200 ms")
    assert p.input_grad.reason == (
        "autotuned: transpose 4 ms, moved 4 ms; taps 6 ms, moved 6 ms; "
        "transpose_per_group 500 ms, moved 500 ms")
    # 4 + 3 + 3 candidates x 2 contexts x (1 warm-up + REPEATS rounds) within
    # the budget, but the input gradient's transpose_per_group (125x the
    # textbook time) is timed in one round only (PRUNE)
    assert _autotune.PRUNE < 125
    calls = 9 * 2 * (1 + _autotune.REPEATS) + 2 * 2
    assert timer.calls == calls
    (record,) = [r for r in caplog.records if r.name == "jaxgrad.autotune"]
    for kind in MAPS:                      # every time, in both contexts
        choice = getattr(p, kind)
        times = choice.reason.removeprefix("autotuned: ")
        assert f"{kind} {choice.formulation} ({times})" in record.getMessage()
    for (kind, name, *_), seconds in table.items():
        assert f"{name} {seconds * 1e3:.3g} ms" in record.getMessage() or (
            f"moved {seconds * 1e3:.3g} ms" in record.getMessage())
    # asked again: the same plan, from memory
    assert _plan.plan(*GROUPED, jnp.float32) == p and timer.calls == calls


@pytest.mark.parametrize("ratios, expected", [
    # (given, moved) ratio to the textbook formulation, per candidate
    ({"per_group": (0.96, 0.96), "taps": (0.97, 0.5)}, "lax"),      # within the margin
    ({"taps": (0.5, 1.2), "im2col": (1.3, 0.4)}, "lax"),            # each loses somewhere
    ({"per_group": (0.5, 0.97), "taps": (0.9, 0.94)}, "taps"),      # both contexts
    ({"per_group": (0.9, 0.8), "taps": (0.3, 0.85)}, "taps"),       # the smaller worst
    ({"im2col": (0.95, 0.95)}, "im2col"),                           # the margin itself
])
def test_a_winner_saves_the_margin_in_both_contexts(cache, monkeypatch, ratios, expected):
    assert _autotune.MARGIN == 0.05 and _autotune.CONTEXTS == ("given", "moved")
    table = {("forward", "lax"): 1.0}
    for name in ("per_group", "taps", "im2col"):
        given, moved = ratios.get(name, (1.5, 1.5))
        table["forward", name, "given"] = given
        table["forward", name, "moved"] = moved
    _timer(monkeypatch, table=table)
    assert _plan.plan(*GROUPED, jnp.float32).forward.formulation == expected


def test_ratios_are_taken_round_by_round(cache, monkeypatch):
    """The machine gets busy after the first round: the textbook forward takes
    1 s in round 0 and 10 s after; taps takes 3.5 s in round 0 (over PRUNE
    times the textbook time: timed no more). Round by round taps was 3.5x
    slower, and the textbook forward stays; medians of times (taps 3.5 s
    against 10 s) or rounds paired from the end would elect taps."""
    monkeypatch.setenv("JAXGRAD_AUTOTUNE_BUDGET_S", "100")
    assert _autotune.PRUNE <= 3.5 and _autotune.REPEATS >= 3
    calls = {}

    def timer(kind, formulation, context, call):
        n = calls.get((kind, formulation, context), 0)     # calls so far
        calls[kind, formulation, context] = n + 1
        if kind != "forward":
            return 1.0
        round_ = n - 1                           # call 0 is the warm-up
        return {"lax": 1.0 if round_ <= 0 else 10.0, "taps": 3.5}.get(formulation, 50.0)
    monkeypatch.setattr(_autotune, "_time_call", timer)
    p = _plan.plan(*GROUPED, jnp.float32)
    assert p.forward.formulation == "lax"
    assert calls["forward", "taps", "moved"] == 1 + 1          # warm-up, round 0
    assert calls["forward", "lax", "given"] == 1 + _autotune.REPEATS
    (entry,) = _autotune._memory.values()
    assert entry["forward"]["times_s"]["taps"] == 3.5
    assert entry["forward"]["times_s"]["lax"] == 10.0


@pytest.mark.parametrize("numbers, x_shape, w_shape", [
    (None, (1, 8, 6, 5), (8, 2, 3, 3)),                      # NCHW: feature moved last
    (("NHWC", "HWIO", "NHWC"), (1, 6, 5, 8), (3, 3, 2, 8)),  # NHWC: feature moved to 1
])
def test_both_contexts_time_the_same_map(cache, monkeypatch, numbers, x_shape, w_shape):
    """The "moved" programs take the activations (x, g) with the feature axis
    moved and return the result so moved (the weight gradient as it comes):
    moved back, every candidate's values are the "given" program's."""
    results = {}

    def timer(kind, formulation, context, call):
        results[kind, formulation, context] = np.asarray(call())
        return 1.0
    monkeypatch.setattr(_autotune, "_time_call", timer)
    x, w = _random(3, x_shape, w_shape)
    with jaxgrad.conv_algorithm("autotune"):
        jax.make_jaxpr(lambda x, w: jaxgrad.conv_general_dilated(
            x, w, (1, 1), ((1, 1), (1, 1)), feature_group_count=4,
            dimension_numbers=numbers))(x, w)
    feature = 1 if numbers is None else 3
    kinds = {kind for kind, _, _ in results}
    assert kinds == set(MAPS)
    for (kind, name, context), given in results.items():
        if context != "given":
            continue
        moved = results[kind, name, "moved"]
        if kind != "weight_grad":
            given = np.moveaxis(given, feature, 3 if feature == 1 else 1)
        assert moved.shape == given.shape, (kind, name)
        np.testing.assert_allclose(moved, given, rtol=1e-12, atol=1e-12, err_msg=f"{kind} {name}")


@pytest.mark.parametrize("winners, x_shape, convs, scans", [
    (("lax", "transpose", "transpose"), (1, 8, 6, 6), 3, []),
    # per group, small pieces (1·36 positions): the G convolutions unrolled
    (("per_group", "transpose_per_group", "transpose_per_group"), (1, 8, 6, 6), 12, []),
    # per group, 4·16·16 = 1024 positions (per_group_loop_min_positions) and 2
    # input channels per group (per_group_loop_max_group_channels): the weight
    # gradient is one convolution in a loop over the 4 groups; the forward and
    # the input gradient stay unrolled (looped they were slower at every size)
    (("per_group", "transpose_per_group", "transpose_per_group"), (4, 8, 16, 16), 9, [4]),
    (("im2col", "transpose", "transpose"), (1, 8, 6, 6), 2, []),
    # the taps forward in a loop over two halves of the groups (one sample)
    (("taps", "taps", "taps"), (1, 8, 6, 6), 0, [2]),
])
def test_the_kernels_run_the_winners(cache, monkeypatch, winners, x_shape, convs, scans):
    _timer(monkeypatch, winners=dict(zip(MAPS, winners)))
    monkeypatch.setitem(_plan.THRESHOLDS, "taps_forward_halves_min_terms",
                        _plan.Threshold(0, "", ""))     # the taps forward in halves
    assert _plan.THRESHOLDS["per_group_loop_min_positions"].value == 1024
    assert _plan.THRESHOLDS["per_group_loop_max_group_channels"].value >= 2
    x, w = jnp.ones(x_shape, jnp.float32), jnp.ones((8, 2, 3, 3), jnp.float32)
    loss = lambda x, w: jnp.sum(jaxgrad.conv2d(x, w, padding=1, groups=4,
                                               algorithm="autotune") ** 2)
    jaxpr = jax.make_jaxpr(jax.grad(loss, (0, 1)))(x, w)
    text = str(jaxpr)
    assert text.count("conv_general_dilated[") == convs
    loops = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "scan":
                loops.append(eqn.params["length"])
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jaxpr.jaxpr)
    assert loops == scans


def test_budget_stops_the_rounds_but_times_every_candidate(cache, monkeypatch):
    """A fake clock that advances 1 s per reading: with a budget of 0 s each
    candidate gets its warm-up and one timed call; 10 s leaves room for more."""
    ticks = iter(range(10 ** 6))
    monkeypatch.setattr(_autotune, "_clock", lambda: float(next(ticks)))
    timer = _timer(monkeypatch)
    monkeypatch.setenv("JAXGRAD_AUTOTUNE_BUDGET_S", "0")
    _plan.plan(*GROUPED, jnp.float32)
    assert timer.calls == 10 * 2 * 2      # x 2 contexts
    monkeypatch.setenv("JAXGRAD_AUTOTUNE_BUDGET_S", "nonsense")
    with pytest.warns(UserWarning, match=r"JAXGRAD_AUTOTUNE_BUDGET_S must be a number "
                                         r"of seconds >= 0, got 'nonsense'; using 2.0"):
        assert _autotune.budget_s() == _autotune.DEFAULT_BUDGET_S
    monkeypatch.setenv("JAXGRAD_AUTOTUNE_BUDGET_S", "10")
    assert _autotune.budget_s() == 10.0


def test_real_timer_under_jit_and_grad(cache):
    """The real timer: compiles and runs each candidate at trace time, inside
    an outer jit; the choice is a candidate, every time positive."""
    x, w, y = _random(2, (1, 4, 6, 6), (4, 1, 3, 3), (1, 4, 6, 6))

    def loss(conv, x, w):
        return jnp.sum((conv(x, w) - y) ** 2)

    ours = jax.jit(jax.grad(lambda x, w: loss(lambda x, w: jaxgrad.conv2d(
        x, w, padding=1, groups=4, algorithm="autotune"), x, w), (0, 1)))(x, w)
    ref = jax.grad(lambda x, w: loss(lambda x, w: _reference.lax_conv(
        x, w, None, (1, 1), ((1, 1),) * 2, (1, 1), 4), x, w), (0, 1))(x, w)
    for a, e, name in zip(ours, ref, "xw"):
        _assert_close(a, e, f"grad {name}")
    (entry,) = _autotune._memory.values()
    spec = _spec(groups=4)
    for kind in MAPS:
        names = _plan.candidates(kind, spec, x.shape, w.shape, y.shape, jnp.float64)
        assert entry[kind]["choice"] in names
        for field in ("times_s", "moved_s"):
            assert set(entry[kind][field]) == set(names)
            assert all(t > 0 for t in entry[kind][field].values())


# --------------------------------------------------------------------------
# The cache on disk.


def test_cache_is_written_and_reused_without_timing(cache, monkeypatch):
    timer = _timer(monkeypatch, winners={"forward": "taps", "input_grad": "transpose",
                                         "weight_grad": "transpose_per_group"})
    first = _plan.plan(*GROUPED, jnp.float32)
    assert timer.calls > 0
    path = _cache_path()
    assert path.parent == cache and path.name.startswith("conv-plans-")
    doc = json.loads(path.read_text())
    assert doc["jax"] == jax.__version__ and doc["device_kind"] == jax.devices()[0].device_kind
    (key,) = doc["plans"]
    assert json.loads(key)["x"] == [1, 8, 6, 6] and "algorithm" not in json.loads(key)
    assert doc["plans"][key]["forward"]["choice"] == "taps"
    # a fresh process state reads it back: no timing at all
    _autotune.clear_cache()
    monkeypatch.setattr(_autotune, "_time_call", _refuse)
    assert _plan.plan(*GROUPED, jnp.float32) == first
    # and for a convolution traced under the block-wide setting
    _autotune.clear_cache()
    with jaxgrad.conv_algorithm("autotune"):
        assert jaxgrad.get_conv_algorithm() == "autotune"
        jax.make_jaxpr(lambda x, w: jaxgrad.conv2d(x, w, padding=1, groups=4))(
            jnp.ones((1, 8, 6, 6), jnp.float32), jnp.ones((8, 2, 3, 3), jnp.float32))
    # a different configuration is not in the file
    with pytest.raises(AssertionError, match="the cache should have answered"):
        _plan.plan(_spec(groups=2), (1, 8, 6, 6), (8, 4, 3, 3), (1, 8, 6, 6), jnp.float32)


def test_corrupt_cache_warns_and_is_rewritten(cache, monkeypatch):
    path = _cache_path()
    path.write_text("{not json")
    timer = _timer(monkeypatch, winners={"forward": "per_group"})
    with pytest.warns(UserWarning, match=r"ignoring the plan cache .*: not valid JSON"):
        p = _plan.plan(*GROUPED, jnp.float32)
    assert p.forward.formulation == "per_group" and timer.calls > 0
    assert len(json.loads(path.read_text())["plans"]) == 1
    # a JSON file of another shape, and an entry naming no candidate
    path.write_text("[1, 2]")
    _autotune.clear_cache()
    with pytest.warns(UserWarning, match=r"not a plan cache"):
        _plan.plan(*GROUPED, jnp.float32)
    doc = json.loads(path.read_text())
    (key,) = doc["plans"]
    doc["plans"][key]["forward"]["choice"] = "fft"
    path.write_text(json.dumps(doc))
    _autotune.clear_cache()
    calls = timer.calls
    assert _plan.plan(*GROUPED, jnp.float32).forward.formulation == "per_group"
    assert timer.calls > calls      # tuned again, silently


def test_stale_cache_is_ignored(cache, monkeypatch):
    _timer(monkeypatch, winners={"forward": "per_group"})
    first = _plan.plan(*GROUPED, jnp.float32)
    path = _cache_path()
    doc = json.loads(path.read_text())
    (key,) = doc["plans"]
    doc["plans"][key]["forward"]["choice"] = "lax"
    doc["jaxlib"] = "0.0.1"
    path.write_text(json.dumps(doc))
    _autotune.clear_cache()
    with pytest.warns(UserWarning, match=r"stale, written for jaxlib '0.0.1'"):
        assert _plan.plan(*GROUPED, jnp.float32) == first      # not the stale "lax"
    assert json.loads(path.read_text())["jaxlib"] != "0.0.1"


def test_format_1_cache_is_tuned_again(cache, monkeypatch):
    """A file of the one-context format (1: no "moved_s") is stale: warned
    about, tuned again, rewritten in today's format; an entry without
    "moved_s" in a file of today's format is tuned again silently."""
    timer = _timer(monkeypatch, winners={"forward": "per_group"})
    first = _plan.plan(*GROUPED, jnp.float32)
    path = _cache_path()
    doc = json.loads(path.read_text())
    (key,) = doc["plans"]
    old = {kind: {"choice": "lax" if kind == "forward" else part["choice"],
                  "times_s": part["times_s"]}
           for kind, part in doc["plans"][key].items() if kind in MAPS}
    path.write_text(json.dumps({**doc, "format": 1, "plans": {key: old}}))
    _autotune.clear_cache()
    calls = timer.calls
    with pytest.warns(UserWarning, match=r"stale, written for format 1 \(this process: 2\)"):
        assert _plan.plan(*GROUPED, jnp.float32) == first
    assert timer.calls > calls
    doc = json.loads(path.read_text())
    assert doc["format"] == _autotune.FORMAT == 2 and "moved_s" in doc["plans"][key]["forward"]
    path.write_text(json.dumps({**doc, "plans": {key: old}}))
    _autotune.clear_cache()
    calls = timer.calls
    assert _plan.plan(*GROUPED, jnp.float32) == first and timer.calls > calls


def test_unwritable_cache_dir_warns_and_keeps_memory(cache, monkeypatch):
    blocker = cache / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("JAXGRAD_CACHE_DIR", str(blocker / "sub"))
    timer = _timer(monkeypatch)
    with pytest.warns(UserWarning, match=r"cannot write the plan cache"):
        p = _plan.plan(*GROUPED, jnp.float32)
    calls = timer.calls
    assert _plan.plan(*GROUPED, jnp.float32) == p and timer.calls == calls


def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXGRAD_CACHE_DIR", str(tmp_path / "x"))
    assert _autotune.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("JAXGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _autotune.cache_dir() == tmp_path / "xdg" / "jaxgrad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _autotune.cache_dir() == tmp_path / "home" / ".cache" / "jaxgrad"


def _entry(choice="lax"):
    return {kind: {"choice": choice, "times_s": {}, "moved_s": {}} for kind in MAPS}


def test_concurrent_writer_threads_keep_every_entry(cache):
    path, header = _cache_path(), _autotune._header("cpu", "cpu")
    start = threading.Barrier(8)

    def writer(i):
        start.wait()
        for j in range(5):
            _autotune._write(path, header, {f"key-{i}-{j}": _entry()})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    plans = json.loads(path.read_text())["plans"]
    assert set(plans) == {f"key-{i}-{j}" for i in range(8) for j in range(5)}


# Each process waits for the same wall-clock moment, then merges 20 entries.
_WRITER = textwrap.dedent("""
    import pathlib, sys, time
    from jaxgrad._conv import _autotune
    name, go, path = sys.argv[1], float(sys.argv[2]), pathlib.Path(sys.argv[3])
    header = _autotune._header("cpu", "cpu")
    time.sleep(max(0.0, go - time.time()))
    for j in range(20):
        _autotune._write(path, header, {f"{name}-{j}": {"forward": {}}})
""")


def test_concurrent_writer_processes_keep_every_entry(cache):
    import time
    path = _cache_path()
    go = str(time.time() + 3)       # both start writing at the same moment
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, name, go, str(path)])
             for name in ("a", "b")]
    assert [p.wait(60) for p in procs] == [0, 0]
    plans = json.loads(path.read_text())["plans"]
    assert set(plans) == {f"{name}-{j}" for name in "ab" for j in range(20)}


# --------------------------------------------------------------------------
# Under transformations: correct values, the per-example key under vmap.


@pytest.mark.parametrize("transform", ["jit", "vmap", "checkpoint", "grad_of_grad"])
def test_autotune_under_transformations(cache, monkeypatch, transform):
    _timer(monkeypatch, winners={"forward": "taps", "input_grad": "transpose_per_group",
                                 "weight_grad": "taps"})
    x, w = _random(3, (3, 2, 4, 7, 6), (4, 2, 3, 2))

    def make(conv):
        def loss(x, w):
            return jnp.sum(jnp.sin(conv(x, w)))

        if transform == "jit":
            return jax.jit(lambda x, w: (conv(x[0], w), jax.grad(loss, (0, 1))(x[0], w)))
        if transform == "vmap":
            return jax.vmap(jax.grad(loss, (0, 1)), in_axes=(0, None))
        if transform == "checkpoint":
            return jax.grad(lambda x, w: loss(x[0], w) * jax.checkpoint(loss)(x[1], w),
                            (0, 1))
        return jax.grad(lambda x, w: jnp.sum(jax.grad(loss, 1)(x[0], w) ** 2), (0, 1))

    ours = make(lambda x, w: jaxgrad.conv2d(x, w, stride=2, padding=1, groups=2,
                                            algorithm="autotune"))(x, w)
    ref = make(lambda x, w: _reference.lax_conv(x, w, None, (2, 2), ((1, 1),) * 2,
                                                (1, 1), 2))(x, w)
    for i, (a, e) in enumerate(zip(jax.tree.leaves(ours), jax.tree.leaves(ref))):
        _assert_close(a, e, f"{transform} leaf {i}")
    (key,) = _autotune._memory
    assert json.loads(key)["x"] == [2, 4, 7, 6]      # the per-example shape


# --------------------------------------------------------------------------
# Where autotuning does not time: "auto"'s choice, saying why.


def test_placement_falls_back_to_auto(cache, monkeypatch):
    monkeypatch.setattr(_autotune, "_time_call", _refuse)
    spec, x_shape, w_shape, g_shape = GROUPED
    auto = ConvSpec(spec.stride, spec.padding, spec.dilation, spec.groups, "auto")
    for placement, why in ((Placement(auto_mesh=True, any_mesh=True),
                            "operands placed on a mesh"),
                           (Placement(explicit_axes=True), "operands placed on a mesh"),
                           (Placement(manual=True), "inside shard_map")):
        p = _plan.plan(spec, x_shape, w_shape, g_shape, jnp.float32, placement)
        expected = _plan.plan(auto, x_shape, w_shape, g_shape, jnp.float32, placement)
        for got, want in zip((p.forward, p.input_grad, p.weight_grad),
                             (expected.forward, expected.input_grad, expected.weight_grad)):
            assert got == _plan.Choice(want.formulation,
                                       f"autotune falls back to auto: {why}; {want.reason}")
    for args, why in (((spec, (0, 8, 6, 6), w_shape, (0, 8, 6, 6), jnp.float32),
                       _plan.EMPTY),
                      # a kernel wider than the padded input: an empty output
                      ((spec, (2, 8, 6, 1), (8, 2, 3, 5), (2, 8, 6, 0), jnp.float32),
                       _plan.EMPTY),
                      ((spec, x_shape, w_shape, g_shape, jnp.int32),
                       "dtype int32 is not floating or complex")):
        assert _plan.plan(*args).forward.reason.startswith(
            f"autotune falls back to auto: {why}; ")
    assert not _autotune._memory


def test_shard_map_and_explicit_axes_fall_back(cache, monkeypatch):
    """On a one-device mesh: inside shard_map, and with explicit mesh axes,
    nothing is timed and the values are right."""
    monkeypatch.setattr(_autotune, "_time_call", _refuse)
    x, w = _random(4, (2, 4, 6, 6), (4, 2, 3, 3))
    conv = lambda x, w: jaxgrad.conv2d(x, w, padding=1, groups=2, algorithm="autotune")
    ref = _reference.lax_conv(x, w, None, (1, 1), ((1, 1),) * 2, (1, 1), 2)
    auto_mesh = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Auto,))
    mapped = jax.shard_map(lambda x, w: jax.grad(lambda x: jnp.sum(conv(x, w)))(x),
                           mesh=auto_mesh, in_specs=(PartitionSpec("data"), PartitionSpec()),
                           out_specs=PartitionSpec("data"))
    expected = jax.grad(lambda x: jnp.sum(_reference.lax_conv(
        x, w, None, (1, 1), ((1, 1),) * 2, (1, 1), 2)))(x)
    _assert_close(jax.jit(mapped)(x, w), expected, "shard_map grad")
    explicit = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Explicit,))
    placed = jax.device_put(x, NamedSharding(explicit, PartitionSpec("data")))
    _assert_close(jax.jit(conv)(placed, w), ref, "explicit axes")
    assert not _autotune._memory
