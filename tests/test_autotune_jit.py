"""``jaxgrad.autotune_jit``: a whole jitted function timed per formulation.

No timed assertions: the choice is checked on canned times (``_measure``
replaced), the values against JAX autodiff of plain ``lax`` convolutions,
and which program runs by spying on the candidate each call dispatches to.
"""

import concurrent.futures
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxgrad
from jaxgrad._conv import _tuned

HIGHEST = lax.Precision.HIGHEST


def _net(x, ws, conv):
    """A 3x3 conv, a depthwise 3x3 at stride 2, a 1x1, each with a ReLU."""
    h = jax.nn.relu(conv(x, ws[0], 1, 1, 1))
    h = jax.nn.relu(conv(h, ws[1], 2, 1, h.shape[1]))
    return jnp.mean(conv(h, ws[2], 1, 0, 1) ** 2)


def _jaxgrad_conv(h, w, stride, pad, groups):
    return jaxgrad.conv2d(h, w, stride=stride, padding=pad, groups=groups)


def _lax_conv(h, w, stride, pad, groups):
    return lax.conv_general_dilated(h, w, (stride, stride), [(pad, pad)] * 2,
                                    feature_group_count=groups, precision=HIGHEST)


def _step(conv):
    def step(ws, x):
        loss, grads = jax.value_and_grad(lambda ws: _net(x, ws, conv))(ws)
        return loss, [w - 0.1 * g for w, g in zip(ws, grads)]
    return step


def _arrays(batch=2, size=9, dtype=jnp.float64):
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    ws = [jax.random.normal(keys[0], (6, 3, 3, 3), dtype),
          jax.random.normal(keys[1], (6, 1, 3, 3), dtype),
          jax.random.normal(keys[2], (4, 6, 1, 1), dtype)]
    return ws, jax.random.normal(keys[3], (batch, 3, size, size), dtype)


def _depthwise_weight_grad(w, x):
    return jax.grad(lambda w: jaxgrad.conv2d(x, w, groups=4).sum())(w)


def _canned(times):
    """A ``_measure`` returning ``times`` (ms) and counting its calls."""
    calls = []

    def measure(fns, repeats):
        calls.append((tuple(fns), repeats))
        return {name: times[name] * 1e-3 for name in fns}
    return measure, calls


def _spy(monkeypatch):
    """The candidate each dispatch runs, in order."""
    ran = []
    original = _tuned.AutotunedFunction._run

    def run(self, algorithm, args, kwargs):
        ran.append(algorithm)
        return original(self, algorithm, args, kwargs)
    monkeypatch.setattr(_tuned.AutotunedFunction, "_run", run)
    return ran


def test_values_are_jax_grads_of_lax_convolutions_under_every_candidate():
    ws, x = _arrays()
    expected = jax.jit(_step(_lax_conv))(ws, x)
    # ("autotune" as a candidate is one more default setting; its own
    # formulations are checked in test_autotune.py)
    for algorithms in [("auto", "transpose", "taps"), ("taps",)]:
        tuned = jaxgrad.autotune_jit(_step(_jaxgrad_conv), algorithms=algorithms, repeats=1)
        results = [tuned(ws, x)] + [tuned._run(a, (ws, x), {}) for a in algorithms]
        for result in results:      # the kept program's, then each candidate's
            for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(expected), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        (record,) = tuned.records
        assert record.algorithm in algorithms
        assert set(record.median_s) == set(record.compile_s) == set(algorithms)
        assert all(t > 0 for t in [*record.median_s.values(), *record.compile_s.values()])


@pytest.mark.parametrize("times,kept", [
    ({"auto": 3.0, "transpose": 2.0, "taps": 1.0}, "taps"),
    ({"auto": 1.0, "transpose": 2.0, "taps": 3.0}, "auto"),
    ({"auto": 2.0, "transpose": 1.0, "taps": 3.0}, "transpose"),
    ({"auto": 2.0, "transpose": 2.0, "taps": 2.0}, "auto"),     # a tie: the first given
])
def test_the_fastest_median_is_kept_and_run(monkeypatch, times, kept):
    measure, calls = _canned(times)
    monkeypatch.setattr(_tuned, "_measure", measure)
    ran = _spy(monkeypatch)
    w, x = jnp.ones((4, 1, 3, 3)), jnp.ones((2, 4, 8, 8))
    tuned = jaxgrad.autotune_jit(_depthwise_weight_grad, algorithms=("auto", "transpose", "taps"),
                                 repeats=4)
    np.testing.assert_allclose(tuned(w, x), 2 * 6 * 6 * np.ones((4, 1, 3, 3)))
    assert calls == [(("auto", "transpose", "taps"), 4)]
    # one first call per candidate (traced and compiled), then the kept one
    assert ran == ["auto", "transpose", "taps", kept]
    assert tuned.records[0].algorithm == kept
    assert tuned.records[0].median_s == {a: t * 1e-3 for a, t in times.items()}
    ran.clear()
    tuned(w, x)
    assert ran == [kept] and len(calls) == 1


@pytest.mark.parametrize("wrap", ["plain", "jax.jit", "autotune_jit", "inner jax.jit"])
def test_each_candidate_is_its_own_program(wrap):
    # Each candidate is traced under its own default, also when fn is already
    # jitted (autotune_jit unwraps it) and when fn calls a jitted function
    # traced before (the default is in jax.jit's cache key). A depthwise
    # weight gradient under "taps" has no XLA convolution; under "transpose"
    # it has.
    w, x = jnp.ones((4, 1, 3, 3)), jnp.ones((2, 4, 8, 8))
    traced_under = []       # the default each time the weight gradient is traced

    def recording(w, x):
        traced_under.append(jaxgrad.get_conv_algorithm())
        return _depthwise_weight_grad(w, x)

    inner = jax.jit(recording)
    fn = {"plain": recording, "jax.jit": jax.jit(recording),
          "autotune_jit": jaxgrad.autotune_jit(recording),
          "inner jax.jit": lambda w, x: inner(w, x)}[wrap]
    if wrap in ("jax.jit", "inner jax.jit"):
        fn(w, x)                            # its own trace, under "auto"
    tuned = jaxgrad.autotune_jit(fn, algorithms=("transpose", "taps"), repeats=1)
    tuned(w, x)
    # tuning traced the weight gradient once under each candidate; the
    # earlier trace under "auto" served neither
    prior = ["auto"] if wrap in ("jax.jit", "inner jax.jit") else []
    assert traced_under == prior + ["transpose", "taps"]
    convolutions = {}
    for algorithm in tuned.algorithms:
        with jaxgrad.conv_algorithm(algorithm):
            text = tuned._jitted[algorithm].lower(w, x).as_text()
        convolutions[algorithm] = text.count("convolution(")
    assert convolutions["taps"] == 0 and convolutions["transpose"] >= 1, convolutions
    assert tuned.__wrapped__ is (fn if wrap == "inner jax.jit" else recording)


def test_one_tuning_per_signature(monkeypatch):
    measure, calls = _canned({"auto": 1.0, "transpose": 2.0})
    monkeypatch.setattr(_tuned, "_measure", measure)
    ws, x = _arrays()
    tuned = jaxgrad.autotune_jit(_step(_jaxgrad_conv))
    tuned(ws, x)
    tuned(ws, x + 1.0)                      # same shapes and dtypes: no new tuning
    assert len(calls) == 1
    ws5, x5 = _arrays(batch=5)
    tuned(ws5, x5)                          # a new batch
    ws32, x32 = _arrays(dtype=jnp.float32)
    tuned(ws32, x32)                        # a new dtype
    assert len(calls) == 3
    signatures = [r.signature for r in tuned.records]
    assert "float64[2,3,9,9]" in signatures[0] and "float64[5,3,9,9]" in signatures[1]
    assert "float32[2,3,9,9]" in signatures[2]


def test_static_arguments_key_the_tuning(monkeypatch):
    measure, calls = _canned({"auto": 2.0, "transpose": 1.0})
    monkeypatch.setattr(_tuned, "_measure", measure)
    x, w = jnp.ones((1, 2, 8, 8)), jnp.ones((3, 2, 3, 3))

    def conv(x, w, stride, *, padding):
        return jaxgrad.conv2d(x, w, stride=stride, padding=padding)
    tuned = jaxgrad.autotune_jit(conv, static_argnums=2, static_argnames="padding")
    for stride, padding in [(1, 0), (2, 0), (2, 1), (2, 1)]:
        got = tuned(x, w, stride, padding=padding)
        np.testing.assert_allclose(got, _lax_conv(x, w, stride, padding, 1), rtol=1e-12)
    assert len(calls) == 3
    assert [r.signature.split("; ")[1] for r in tuned.records] == [
        "static 2=1, padding=0", "static 2=2, padding=0", "static 2=2, padding=1"]


@pytest.mark.parametrize("how", [{"static_argnums": 1}, {"static_argnums": -1},
                                 {"static_argnames": "mode"}])
def test_a_static_argument_given_one_way_may_be_passed_either_way(monkeypatch, how):
    measure, calls = _canned({"auto": 2.0, "transpose": 1.0})
    monkeypatch.setattr(_tuned, "_measure", measure)

    def f(x, mode):
        return x * (2.0 if mode == "double" else 3.0)
    tuned = jaxgrad.autotune_jit(f, **how)
    x = jnp.ones(3, jnp.float32)
    np.testing.assert_array_equal(tuned(x, "double"), 2 * x)
    np.testing.assert_array_equal(tuned(x, mode="triple"), 3 * x)
    np.testing.assert_array_equal(tuned(x, "double"), 2 * x)
    assert len(calls) == 2
    assert [r.signature for r in tuned.records] == [
        "float32[3]; static 1='double'", "float32[3]; static mode='triple'"]


def test_concurrent_first_calls_tune_once(monkeypatch):
    measure, calls = _canned({"auto": 2.0, "transpose": 1.0})
    monkeypatch.setattr(_tuned, "_measure", measure)
    ws, x = _arrays()
    tuned = jaxgrad.autotune_jit(_step(_jaxgrad_conv))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        losses = list(pool.map(lambda _: tuned(ws, x)[0], range(4)))
    assert len(calls) == 1 and len(tuned.records) == 1
    assert len({float(v) for v in losses}) == 1


def test_under_an_outer_transformation_nothing_is_timed(monkeypatch):
    measure, calls = _canned({"auto": 2.0, "transpose": 1.0})
    monkeypatch.setattr(_tuned, "_measure", measure)
    ran = _spy(monkeypatch)
    ws, x = _arrays()
    expected = jax.jit(_step(_lax_conv))(ws, x)
    tuned = jaxgrad.autotune_jit(_step(_jaxgrad_conv))
    # not tuned yet: the first candidate, traced inside the outer jit
    got = jax.jit(tuned)(ws, x)
    assert calls == [] and ran == ["auto"]
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    # tuned outside, the choice holds inside too (same signature)
    tuned(ws, x)
    ran.clear()
    jax.jit(lambda ws, x: tuned(ws, x))(ws, x)
    assert ran == ["transpose"] and len(calls) == 1
    # vmap over a stack of inputs: the rule sees the per-example signature,
    # (2, 3, 9, 9), tuned above: its choice runs
    ran.clear()
    xs = jnp.stack([x, 2 * x])
    losses, _ = jax.vmap(tuned, in_axes=(None, 0))(ws, xs)
    for loss, xi in zip(losses, xs):
        np.testing.assert_allclose(loss, jax.jit(_step(_lax_conv))(ws, xi)[0], rtol=1e-12)
    assert ran == ["transpose"] and len(calls) == 1


def test_the_times_are_logged(caplog):
    ws, x = _arrays()
    tuned = jaxgrad.autotune_jit(_step(_jaxgrad_conv), repeats=1)
    with caplog.at_level(logging.INFO, logger="jaxgrad.autotune"):
        tuned(ws, x)
    (message,) = [r.getMessage() for r in caplog.records if "autotune_jit" in r.getMessage()]
    assert message.startswith("autotune_jit step(float64[6,3,3,3], float64[6,1,3,3], "
                              "float64[4,6,1,1], float64[2,3,9,9]): auto ")
    assert " ms (first call " in message and ", transpose " in message
    assert message.endswith(f"-> {tuned.records[0].algorithm}")


def test_an_unhashable_static_value_is_named():
    tuned = jaxgrad.autotune_jit(lambda x, sizes: x, static_argnums=1)
    with pytest.raises(TypeError, match=r"autotune_jit: static arguments must be hashable, "
                                        r"as for jax.jit; got \(\(1, \[2, 3\]\),\)"):
        tuned(jnp.ones(2), [2, 3])


def test_the_wrapper_looks_like_the_function():
    def step(ws, x):
        """Doc."""
        return x
    step.repeats = "an attribute of the function"
    tuned = jaxgrad.autotune_jit(step)
    assert tuned.__name__ == "step" and tuned.__doc__ == "Doc." and tuned.__wrapped__ is step
    assert tuned.algorithms == ("auto", "transpose") and tuned.repeats == 7
    assert tuned.records == []


@pytest.mark.parametrize("kwargs,error,match", [
    ({"fn": 3}, TypeError, r"autotune_jit: `fn` must be callable, got 3 of type int"),
    ({"algorithms": "auto"}, TypeError,
     r"autotune_jit: `algorithms` must be a sequence of names from \('auto', 'transpose', "
     r"'taps', 'autotune'\), got 'auto'"),
    ({"algorithms": ()}, ValueError, r"autotune_jit: `algorithms` must name at least one of"),
    ({"algorithms": ("auto", "fast")}, ValueError,
     r"autotune_jit: `algorithms\[1\]` must be one of \('auto', 'transpose', 'taps', "
     r"'autotune'\), got 'fast'$"),
    ({"algorithms": ["auto", 1]}, TypeError,
     r"autotune_jit: `algorithms\[1\]` must be one of .*, got 1 of type int$"),
    ({"algorithms": ("taps", "auto", "taps")}, ValueError,
     r"autotune_jit: `algorithms` names \['taps'\] more than once: \('taps', 'auto', 'taps'\)"),
    ({"repeats": 0}, ValueError, r"autotune_jit: `repeats` must be at least 1, got 0"),
    ({"repeats": 2.5}, TypeError, r"autotune_jit: `repeats` must be an int, got 2.5 of type float"),
    ({"repeats": True}, TypeError, r"autotune_jit: `repeats` must be an int, got True of type bool"),
    ({"static_argnums": "0"}, TypeError,
     r"autotune_jit: `static_argnums` must be an int or a sequence of ints, got '0'"),
    ({"static_argnames": [1]}, TypeError,
     r"autotune_jit: `static_argnames` must be a str or a sequence of strs, got \[1\]"),
    ({"static_argnums": 3}, ValueError,
     r"autotune_jit: .*static_argnums=\(3,\).* 1 positional argument"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    kwargs = {"fn": lambda x: x, **kwargs}
    with pytest.raises(error, match=match):
        jaxgrad.autotune_jit(kwargs.pop("fn"), **kwargs)
