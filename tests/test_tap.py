"""``jaxgrad.tap``: the identity outside a check, a recorder inside one.

Outside ``check_model_parity`` a tap must be invisible (no op in the jaxpr,
same values and gradients under jit, vmap and grad). Inside, the recorder
must give each tap's value and the cotangent at it; those are compared with
hand-computed values. The comparison with torch is in
``tests/torch/test_model_parity_torch.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad
from jaxgrad import _tap


def _f(x):
    """sin(tap(2x, "a"))², with a = 2x; dL/da = 2 sin a cos a · ḡ."""
    return jnp.sin(jaxgrad.tap(2.0 * x, "a")) ** 2


X = jnp.array([0.3, -1.2, 2.0])


def test_tap_returns_its_argument_itself():
    tree = {"a": X, "b": (X, jnp.arange(3))}
    assert jaxgrad.tap(X, "x") is X
    assert jaxgrad.tap(tree, "t") is tree


@pytest.mark.parametrize("transform", ["none", "jit", "vmap", "grad", "jit-grad"])
def test_tap_is_the_identity_under_transforms(transform):
    plain = lambda x: jnp.sin(2.0 * x) ** 2  # noqa: E731
    wrap = {"none": lambda f: f, "jit": jax.jit, "vmap": jax.vmap,
            "grad": lambda f: jax.vmap(jax.grad(f)),
            "jit-grad": lambda f: jax.jit(jax.vmap(jax.grad(f)))}[transform]
    np.testing.assert_array_equal(wrap(_f)(X), wrap(plain)(X))


def test_tap_adds_nothing_to_the_program():
    assert jax.make_jaxpr(lambda x: jaxgrad.tap(x, "x"))(X).eqns == []
    plain = jax.make_jaxpr(lambda x: jnp.sin(2.0 * x) ** 2)(X)
    assert str(jax.make_jaxpr(_f)(X)) == str(plain)


@pytest.mark.parametrize("name", ["", 3, None, ("a",)])
def test_tap_name_must_be_a_non_empty_string(name):
    with pytest.raises(TypeError, match=r"tap: `name` must be a non-empty string .*"
                                        + repr(name).replace("(", r"\(")
                                        .replace(")", r"\)")):
        jaxgrad.tap(X, name)


def test_nothing_is_recorded_outside_a_recording():
    recorder = _tap.Recorder()
    jaxgrad.tap(X, "before")
    with _tap.recording(recorder):
        jaxgrad.tap(X, "inside")
    jaxgrad.tap(X, "after")
    assert [call.name for call in recorder.calls] == ["inside"]
    assert _tap._RECORDER.get() is None


def test_discovery_notes_names_shapes_and_which_leaves_get_probes():
    recorder = _tap.Recorder()

    def f(x):
        jaxgrad.tap({"v": x, "i": jnp.argmax(x)}, "pair")
        return jaxgrad.tap(x[:2], "head")

    with _tap.recording(recorder):
        jax.eval_shape(f, X)
    pair, head = recorder.calls
    assert (pair.name, head.name) == ("pair", "head")
    assert [s.shape for s in pair.leaves] == [(), (3,)]     # dict keys sorted: i, v
    assert pair.floating == (False, True) and head.floating == (True,)
    probes = _tap.zero_probes(recorder.calls)
    assert probes[0][0] is None and probes[1][0].shape == (2,)


def _record(f, x, cot):
    """(output, tapped values, cotangents at the taps) as check_model_parity gets them."""
    discovery = _tap.Recorder()
    with _tap.recording(discovery):
        jax.eval_shape(f, x)
    calls = tuple(discovery.calls)

    def forward(x, probes):
        recorder = _tap.Recorder(probes, calls)
        with _tap.recording(recorder):
            return f(x), recorder.values

    out, vjp, values = jax.vjp(forward, x, _tap.zero_probes(calls), has_aux=True)
    return out, values, vjp(cot)[1]


def test_recording_gives_values_and_cotangents_at_the_taps():
    cot = jnp.array([1.0, -2.0, 0.5])
    out, values, probe_grads = _record(_f, X, cot)
    a = 2.0 * X
    np.testing.assert_allclose(out, jnp.sin(a) ** 2, rtol=1e-15)   # values unchanged
    np.testing.assert_allclose(values[0][0], a, rtol=1e-15)
    np.testing.assert_allclose(probe_grads[0][0], 2 * jnp.sin(a) * jnp.cos(a) * cot,
                               rtol=1e-14)


def test_recording_sees_taps_inside_a_jit_already_compiled():
    inner = jax.jit(lambda x: jnp.tanh(jaxgrad.tap(3.0 * x, "inner")))
    inner(X)                                  # cached without any recording
    out, values, grads = _record(lambda x: inner(x) * 2.0, X, jnp.ones(3))
    np.testing.assert_allclose(values[0][0], 3.0 * X, rtol=1e-15)
    np.testing.assert_allclose(grads[0][0], 2.0 / jnp.cosh(3.0 * X) ** 2, rtol=1e-10)


def test_recording_refuses_taps_that_change_between_traces():
    calls = (_tap.TapCall("a", jax.tree.structure(0), (jax.ShapeDtypeStruct((3,),
                                                                           X.dtype),)),)
    recorder = _tap.Recorder(_tap.zero_probes(calls), calls)
    with _tap.recording(recorder), pytest.raises(
            RuntimeError, match=r"tap: call 0 is named 'b' now but was 'a'"):
        jaxgrad.tap(X, "b")


def test_recording_refuses_non_array_leaves():
    with _tap.recording(_tap.Recorder()), pytest.raises(
            TypeError, match=r"tap: `x` must be an array or a pytree of arrays, got "
                             r"leaf 1 of 'mixed': str 'label'"):
        jaxgrad.tap([X, "label"], "mixed")
