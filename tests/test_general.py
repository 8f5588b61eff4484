"""``jaxgrad.conv_general_dilated`` against JAX autodiff of ``lax.conv_general_dilated``.

The reference is lax's own function differentiated by JAX (float64); ours runs
its hand-written rules only (checked by refusing lax's convolution rules).
"""

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

import jaxgrad
from jaxgrad._conv import _core, _general, _spec
from jaxgrad._checking._tolerance import max_errors, tolerance

NCHW = ("NCHW", "OIHW", "NCHW")
NHWC = ("NHWC", "HWIO", "NHWC")

# (lhs shape, rhs shape, kwargs): layouts (default, NCHW, NHWC, 1-D, 3-D and a
# mixed in/out layout), strides, string and explicit pads (asymmetric,
# negative), lhs and rhs dilation, feature groups (incl. depthwise and a
# channel multiplier) and batch groups.
GRID = [
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(window_strides=(2, 1), padding=((1, 2), (0, 1)))),
    ((2, 4, 7, 6), (6, 2, 3, 2), dict(window_strides=(2, 3), padding="SAME",
                                      rhs_dilation=(2, 1), feature_group_count=2,
                                      dimension_numbers=NCHW)),
    ((2, 7, 6, 4), (3, 2, 2, 6), dict(window_strides=(2, 3), padding=((2, -1), (1, 3)),
                                      lhs_dilation=(2, 3), rhs_dilation=(1, 2),
                                      feature_group_count=2, dimension_numbers=NHWC)),
    ((1, 6, 5, 3), (3, 3, 1, 6), dict(window_strides=(1, 2), padding="same_lower",
                                      feature_group_count=3, dimension_numbers=NHWC)),
    ((2, 4, 6, 5), (4, 1, 3, 3), dict(window_strides=(1, 1), padding="VALID",
                                      feature_group_count=4)),            # depthwise
    ((4, 3, 7), (6, 3, 3), dict(window_strides=(2,), padding="VALID",
                                batch_group_count=2)),
    ((4, 7, 3), (3, 3, 6), dict(window_strides=(1,), padding=((1, 1),),
                                lhs_dilation=(2,), rhs_dilation=(2,), batch_group_count=2,
                                dimension_numbers=("NWC", "WIO", "NWC"))),
    ((3, 6, 8), (6, 6, 2), dict(window_strides=(3,), padding=((-1, 2),), lhs_dilation=(3,),
                                batch_group_count=3, dimension_numbers=("NCW", "OIW", "NWC"))),
    ((2, 3, 5, 4, 4), (3, 1, 2, 3, 2), dict(window_strides=(1, 2, 1), padding="SAME",
                                            feature_group_count=3)),
    ((2, 5, 4, 3, 6), (4, 6, 2, 3, 2), dict(window_strides=(1, 2, 2),
                                            padding=((0, 1), (1, 0), (2, 2)),
                                            lhs_dilation=(1, 2, 1),
                                            dimension_numbers=("NDHWC", "OIDHW", "NCDHW"))),
    # no spatial dims (a grouped matrix product), as in JAX's own tests
    ((3, 4), (6, 2), dict(window_strides=(), padding=(), feature_group_count=2)),
    ((4, 6), (4, 6), dict(window_strides=(), padding=(), batch_group_count=2,
                          dimension_numbers=("CN", "IO", "NC"))),
]


def _assert_close(actual, expected, dtype=np.float64, what=""):
    assert np.shape(actual) == np.shape(expected), what
    abs_err, rel_err = max_errors(actual, expected)
    assert rel_err <= tolerance(dtype), (
        f"{what}: max abs {abs_err:.3e}, rel {rel_err:.3e} > {tolerance(dtype):.0e}")


# These tests are dominated by XLA's compile time, not by running: compile
# without backend optimisation (same operations, same float64 sums).
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _jit(f):
    return jax.jit(f, compiler_options=_FAST_COMPILE)


def _first_and_second_order(conv):
    """(y, (x̄, w̄), grad of Σ sin(x̄, w̄) w.r.t. (x, w, ḡ)) for ḡ = ``ct``."""
    def vjp(x, w, ct):
        return jax.vjp(conv, x, w)[1](ct)

    def scalar(x, w, ct):
        return sum(jnp.sum(jnp.sin(a)) for a in vjp(x, w, ct))

    return lambda x, w, ct: (conv(x, w), vjp(x, w, ct),
                             jax.grad(scalar, argnums=(0, 1, 2))(x, w, ct))


@pytest.mark.parametrize("lhs_shape, rhs_shape, kwargs", GRID)
def test_matches_lax_autodiff_to_second_order(rng, lhs_shape, rhs_shape, kwargs):
    x = jnp.asarray(rng.standard_normal(lhs_shape))
    w = jnp.asarray(rng.standard_normal(rhs_shape))
    ct = jnp.asarray(rng.standard_normal(
        jax.eval_shape(lambda x, w: lax.conv_general_dilated(x, w, **kwargs), x, w).shape))
    ours = _first_and_second_order(lambda x, w: jaxgrad.conv_general_dilated(x, w, **kwargs))
    ref = _first_and_second_order(lambda x, w: lax.conv_general_dilated(x, w, **kwargs))
    got, expected = _jit(lambda *a: (ours(*a), ref(*a)))(x, w, ct)    # one compile
    names = ("y", "x̄", "w̄", "∂/∂x", "∂/∂w", "∂/∂ḡ")
    for name, a, e in zip(names, jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        _assert_close(a, e, what=name)


def test_complex_operands_and_numpy_arguments(rng):
    def draw(shape):
        return jnp.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))

    x, w = draw((2, 4, 6)), draw((6, 2, 3))
    kwargs = dict(window_strides=np.array([2]), padding=np.array([[1, 0]]),
                  feature_group_count=2)            # lax takes numpy arrays too
    ct = draw((2, 6, 3))

    def value_and_vjp(conv):
        y, vjp = jax.vjp(lambda x, w: conv(x, w, **kwargs), x, w)
        return y, vjp(ct)

    got, expected = _jit(lambda: (value_and_vjp(jaxgrad.conv_general_dilated),
                                  value_and_vjp(lax.conv_general_dilated)))()
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert a.dtype == jnp.complex128
        _assert_close(np.stack([a.real, a.imag]), np.stack([e.real, e.imag]))


def test_vmap_of_the_gradient(rng):
    x = jnp.asarray(rng.standard_normal((3, 2, 4, 6)))      # vmapped over axis 0
    w = jnp.asarray(rng.standard_normal((5, 4, 3)))

    def per_example_grads(conv):
        loss = lambda x, w: jnp.sum(jnp.sin(conv(x, w, (1,), "SAME")))  # noqa: E731
        return jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, None))(x, w)

    got, expected = _jit(lambda: (per_example_grads(jaxgrad.conv_general_dilated),
                                  per_example_grads(lax.conv_general_dilated)))()
    for a, e in zip(got, expected, strict=True):
        _assert_close(a, e)


def test_signature_is_lax_signature():
    ours = inspect.signature(jaxgrad.conv_general_dilated)
    theirs = inspect.signature(lax.conv_general_dilated)
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
           [(p.name, p.kind, p.default) for p in theirs.parameters.values()]


def test_hand_computed_values_and_gradients():
    # x = 0..7 (NWC), kernel of ones (width 3), stride 2, VALID: windows start
    # at 0, 2, 4 -> sums 0+1+2, 2+3+4, 4+5+6. x̄ counts the windows covering
    # each position (7 is in none); w̄[k] = Σ_p x[2p + k].
    x = jnp.arange(8.0).reshape(1, 8, 1)
    w = jnp.ones((3, 1, 1))
    conv = lambda x, w: jaxgrad.conv_general_dilated(  # noqa: E731
        x, w, (2,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))
    y, vjp = jax.vjp(conv, x, w)
    x_bar, w_bar = vjp(jnp.ones_like(y))
    np.testing.assert_array_equal(np.ravel(y), [3, 9, 15])
    np.testing.assert_array_equal(np.ravel(x_bar), [1, 1, 2, 1, 2, 1, 1, 0])
    np.testing.assert_array_equal(np.ravel(w_bar), [0 + 2 + 4, 1 + 3 + 5, 2 + 4 + 6])


def _refuse(*args, **kwargs):
    raise AssertionError("lax's own autodiff rule for conv_general_dilated was used")


def test_no_order_uses_lax_autodiff_of_the_convolution(rng, monkeypatch):
    """Third order, which traces the first and second orders inside it."""
    from jax._src.interpreters import ad
    from jax._src.lax.convolution import conv_general_dilated_p as conv_p

    for table in (ad.primitive_jvps, ad.primitive_transposes, ad.fancy_transposes):
        if conv_p in table:
            monkeypatch.setitem(table, conv_p, _refuse)
    x = jnp.asarray(rng.standard_normal((4, 5, 3)))
    w = jnp.asarray(rng.standard_normal((2, 6, 1)))

    def f(x, w):  # feature groups, then batch groups; strides, dilations, layouts
        y = jaxgrad.conv_general_dilated(x, w, (2,), ((1, 2),), (2,), (1,),
                                         ("NWC", "WOI", "NCW"), feature_group_count=3)
        z = jaxgrad.conv_general_dilated(y, jnp.reshape(w, (2, 6, 1)), (1,), "SAME",
                                         batch_group_count=2)
        return jnp.sum(jnp.sin(z))

    def next_order(f):
        grads = jax.grad(f, argnums=(0, 1))
        return lambda x, w: jnp.sum(jnp.cos(jnp.concatenate([a.ravel() for a in grads(x, w)])))

    for _ in range(3):
        f = next_order(f)
    assert np.isfinite(float(_jit(f)(x, w)))


def _conv_params(jaxpr):
    """Params of every conv_general_dilated in ``jaxpr`` and its sub-jaxprs."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            found.append(eqn.params)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    found += _conv_params(sub)
    return found


def test_precision_and_preferred_type_reach_every_order(rng):
    x = jnp.asarray(rng.standard_normal((2, 3, 6)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 3, 3)), jnp.float32)
    kwargs = dict(window_strides=(2,), padding=((1, 0),),
                  precision=lax.Precision.HIGHEST, preferred_element_type=jnp.float64)

    def scalar(conv):
        first = jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w, **kwargs))), argnums=(0, 1))
        return lambda x, w: sum(jnp.sum(jnp.cos(a)) for a in first(x, w))

    second = jax.grad(scalar(jaxgrad.conv_general_dilated), argnums=(0, 1))
    params = _conv_params(jax.make_jaxpr(second)(x, w))
    assert len(params) >= 5     # forward, two first-order and their derivatives
    for p in params:
        assert p["precision"] == (lax.Precision.HIGHEST, lax.Precision.HIGHEST)
        assert p["preferred_element_type"] == jnp.float64
    reference = jax.grad(scalar(lax.conv_general_dilated), argnums=(0, 1))
    got, expected = _jit(lambda x, w: (second(x, w), reference(x, w)))(x, w)
    for a, e in zip(got, expected):
        assert a.dtype == jnp.float32
        _assert_close(a, e, jnp.float32)


def test_bfloat16_with_float32_accumulation(rng):
    x = jnp.asarray(rng.standard_normal((2, 6, 4)), jnp.bfloat16)
    w = jnp.asarray(rng.standard_normal((3, 2, 4)), jnp.bfloat16)
    kwargs = dict(window_strides=(1,), padding="SAME", feature_group_count=2,
                  preferred_element_type=jnp.float32,
                  dimension_numbers=("NWC", "WIO", "NWC"))
    ct = jnp.asarray(rng.standard_normal((2, 6, 4)), jnp.float32)

    def value_and_vjp(conv):
        y, vjp = jax.vjp(lambda x, w: conv(x, w, **kwargs), x, w)
        return y, vjp(ct)

    (y, got), (y_ref, expected) = _jit(lambda: (
        value_and_vjp(jaxgrad.conv_general_dilated), value_and_vjp(lax.conv_general_dilated)))()
    assert y.dtype == jnp.float32
    _assert_close(y, y_ref, jnp.float32, "y")
    for a, e in zip(got, expected):
        assert a.dtype == jnp.bfloat16
        _assert_close(a, e, jnp.bfloat16)


def test_out_sharding_applies_to_the_forward_only(rng):
    mesh = jax.make_mesh((1,), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec("batch"))
    x = jnp.asarray(rng.standard_normal((2, 3, 5)))
    w = jnp.asarray(rng.standard_normal((4, 3, 2)))

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w, (1,), "SAME", out_sharding=sharding)))

    grad = jax.grad(loss(jaxgrad.conv_general_dilated), argnums=(0, 1))
    # the textbook rule, so that both gradients are convolutions to inspect
    with jaxgrad.conv_algorithm("transpose"):
        jaxpr = jax.make_jaxpr(grad)(x, w)
    shardings = [p["out_sharding"] for p in _conv_params(jaxpr)]
    assert shardings[0] is not None and shardings[0].spec == PartitionSpec("batch")
    assert shardings[1:] and all(s is None for s in shardings[1:])
    reference = jax.grad(loss(lax.conv_general_dilated), argnums=(0, 1))
    got, expected = _jit(lambda x, w: (grad(x, w), reference(x, w)))(x, w)
    for a, e in zip(got, expected):
        _assert_close(a, e)


# ---------------------------------------------------------------------------
# Pure shape arithmetic: the cotangent convolutions' pads.


# ---------------------------------------------------------------------------
# Drop-in corners that other projects' conv tests reach (Flax's ConvLocal and
# circular-conv tests, JAX's own): each is compared with lax itself.


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.bool_])
def test_integer_and_bool_inputs_run_the_forward_like_lax(dtype):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.integers(-3, 4, (2, 3, 6, 5)).astype(dtype))
    w = jnp.asarray(rng.integers(-2, 3, (4, 3, 3, 2)).astype(dtype))
    kwargs = dict(window_strides=(2, 1), padding=((1, 0), (1, 1)), rhs_dilation=(1, 2))
    ours = jaxgrad.conv_general_dilated(x, w, **kwargs)
    theirs = lax.conv_general_dilated(x, w, **kwargs)
    assert ours.dtype == theirs.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    np.testing.assert_array_equal(np.asarray(jax.jit(
        lambda x, w: jaxgrad.conv_general_dilated(x, w, **kwargs))(x, w)),
        np.asarray(theirs))


def test_differentiating_an_integer_input_fails_as_it_does_for_lax():
    x, w = jnp.ones((1, 2, 4, 4), jnp.int32), jnp.ones((3, 2, 3, 3), jnp.int32)
    errors = []
    for conv in (lax.conv_general_dilated, jaxgrad.conv_general_dilated):
        with pytest.raises(TypeError) as info:
            jax.grad(lambda x: conv(x, w, (1, 1), "SAME").sum())(x)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert "int32" in errors[0]


def test_non_numeric_operand_is_named():
    with pytest.raises(TypeError, match=r"^conv_general_dilated: `lhs` must have a "
                                        r"numeric or bool dtype, got <U3$"):
        jaxgrad.conv_general_dilated(np.zeros((1, 1, 3, 3), "U3"),
                                     np.zeros((1, 1, 1, 1), "U3"), (1, 1), "VALID")


EMPTY = [
    ((1, 2, 0, 4), (3, 2, 2, 2), dict(padding=((1, 1), (1, 1)), lhs_dilation=(2, 1))),
    ((2, 1, 0, 4), (4, 1, 1, 2), dict(padding="VALID", batch_group_count=2)),
    ((4, 2, 3, 0), (4, 2, 1, 1), dict(padding="VALID", batch_group_count=2)),
    # grouped, the output empty: a kernel wider than the input, or an empty input
    ((1, 4, 5, 3), (4, 2, 1, 5), dict(padding="VALID", feature_group_count=2)),
    ((2, 4, 9, 0), (6, 2, 4, 5), dict(window_strides=(2, 1), padding=((1, 2), (2, 0)),
                                      rhs_dilation=(1, 2), feature_group_count=2)),
    ((2, 3, 4, 4), (3, 1, 3, 9), dict(padding=((0, 0), (1, 1)), feature_group_count=3)),
    # ... in other layouts, input-dilated, with a preferred type (autotune
    # must not time them)
    ((2, 2, 6, 4), (3, 3, 2, 4), dict(padding="VALID", feature_group_count=2,
                                      dimension_numbers=NHWC)),
    ((2, 4, 2, 5), (4, 2, 5, 3), dict(padding=((0, 0), (0, 0)), lhs_dilation=(2, 1),
                                      feature_group_count=2)),
    ((2, 4, 2, 5), (4, 2, 3, 3), dict(padding="VALID", feature_group_count=2,
                                      preferred_element_type=jnp.float64)),
    ((1, 2, 0, 4), (3, 2, 2, 2), dict(padding=((0, 0), (0, 0)))),
    ((0, 2, 5, 4), (3, 2, 2, 2), dict(padding="SAME")),
    ((2, 2, 5, 4), (0, 2, 2, 2), dict(padding="VALID")),
    ((2, 0, 5, 4), (3, 0, 2, 2), dict(padding=((1, 0), (0, 1)), window_strides=(2, 1))),
]


@pytest.mark.parametrize("algorithm", ["auto", "taps", "autotune"])
@pytest.mark.parametrize("lhs_shape, rhs_shape, kwargs", EMPTY)
def test_empty_dimensions_give_zero_gradients_like_lax(rng, tmp_path, monkeypatch,
                                                       lhs_shape, rhs_shape, kwargs, algorithm):
    monkeypatch.setenv("JAXGRAD_CACHE_DIR", str(tmp_path))
    x = jnp.asarray(rng.standard_normal(lhs_shape))
    w = jnp.asarray(rng.standard_normal(rhs_shape))
    kwargs = {"window_strides": (1, 1), **kwargs}
    outs = {}
    for name, conv in (("lax", lax.conv_general_dilated),
                       ("ours", jaxgrad.conv_general_dilated)):
        if name == "ours":
            conv = _under(algorithm, conv)
        def loss(x, w, conv=conv):
            y = conv(x, w, **kwargs)
            return jnp.sum(jnp.sin(y))
        first = jax.grad(loss, (0, 1))(x, w)
        second = jax.grad(lambda x, w: sum(jnp.sum(g ** 2) for g in
                                           jax.grad(loss, (0, 1))(x, w)), (0, 1))(x, w)
        outs[name] = (conv(x, w, **kwargs), first, second)
    # value, first and second order: the same pytree, shapes, dtypes and zeros
    chex.assert_trees_all_equal_shapes_and_dtypes(outs["ours"], outs["lax"])
    chex.assert_trees_all_equal(outs["ours"], outs["lax"])


def _under(algorithm, conv):
    def run(*args, **kwargs):
        with jaxgrad.conv_algorithm(algorithm):
            return conv(*args, **kwargs)
    return run


@pytest.mark.parametrize("dtype, preferred", [(jnp.float16, jnp.float32),
                                              (jnp.bfloat16, jnp.float32),
                                              (jnp.float32, jnp.float64)])
def test_strict_dtype_promotion_with_a_wider_preferred_type(rng, dtype, preferred):
    # JAX's own tests run under jax_numpy_dtype_promotion="strict": the
    # backward meets a cotangent of the preferred type and an operand of the
    # narrower one, which must not be the caller's concern (lax's VJP is fine).
    x = jnp.asarray(rng.standard_normal((2, 4, 7, 6)), dtype)
    w = jnp.asarray(rng.standard_normal((4, 2, 3, 2)), dtype)
    ct = jnp.asarray(rng.standard_normal((2, 4, 7, 6)), preferred)
    kwargs = dict(window_strides=(1, 1), padding="SAME", feature_group_count=2,
                  preferred_element_type=preferred)

    def first_and_second(conv):
        def vjp(x, w):
            return jax.vjp(lambda x, w: conv(x, w, **kwargs), x, w)[1](ct)
        second = jax.grad(lambda x, w: sum(jnp.sum(jnp.sin(g.astype(preferred)))
                                           for g in vjp(x, w)), argnums=(0, 1))
        return vjp(x, w), second(x, w)

    with jax.numpy_dtype_promotion("strict"):
        got = first_and_second(jaxgrad.conv_general_dilated)
        expected = first_and_second(lax.conv_general_dilated)
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert a.dtype == e.dtype == dtype
        _assert_close(a, e, dtype)


def test_numpy_float64_operand_is_narrowed_like_lax_when_x64_is_off():
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5) / 50
    w = np.linspace(-1, 1, 4 * 3 * 3 * 3).reshape(4, 3, 3, 3)      # float64
    with jax.enable_x64(False):
        theirs = lax.conv_general_dilated(jnp.asarray(x), w, (1, 1), "SAME")
        ours = jaxgrad.conv_general_dilated(jnp.asarray(x), w, (1, 1), "SAME")
        g_theirs = jax.grad(lambda x: jnp.sum(lax.conv_general_dilated(
            x, w, (1, 1), "SAME") ** 2))(jnp.asarray(x))
        g_ours = jax.grad(lambda x: jnp.sum(jaxgrad.conv_general_dilated(
            x, w, (1, 1), "SAME") ** 2))(jnp.asarray(x))
    assert ours.dtype == theirs.dtype == jnp.float32
    chex.assert_trees_all_close((ours, g_ours), (theirs, g_theirs), rtol=1e-5)


def test_cotangent_padding_arithmetic():
    # I = 7, K = 3, s = 2, d = 1, a = 1, pads (1, 2): O = (7 + 3 - 3) // 2 + 1 = 4,
    # leftover r = 1. x̄ pads (K'-1-lo, K'-1-hi+r) = (1, 1); w̄ pads (lo, hi-r) = (1, 1).
    spec = _spec.ConvSpec((2,), ((1, 2),), (1,), 1, lhs_dilation=(1,))
    assert _spec.input_grad_padding((7,), (4,), (3,), spec) == ((1, 1),)
    assert _spec.weight_grad_padding((7,), (4,), (3,), spec) == ((1, 1),)
    # lhs dilation 3 on I = 2 (dilated extent 4), K = 2, d = 2 (K' = 3), s = 1,
    # pads (0, 0): O = 4 - 3 + 1 = 2. x̄: (2, (2-1)·3 - 1 + 0) = (2, 2); w̄: (0, 2 + 1 - 3) = (0, 0).
    spec = _spec.ConvSpec((1,), ((0, 0),), (2,), 1, lhs_dilation=(3,))
    assert _spec.input_grad_padding((2,), (2,), (2,), spec) == ((2, 2),)
    assert _spec.weight_grad_padding((2,), (2,), (2,), spec) == ((0, 0),)


# ---------------------------------------------------------------------------
# Errors: raised before lax sees the call, naming the function and argument.

_X = np.zeros((2, 4, 6, 6), np.float32)
_W = np.zeros((6, 2, 3, 3), np.float32)
_BASE = dict(window_strides=(1, 1), padding="SAME", feature_group_count=2)

ERRORS = [
    (dict(lhs=_X[0]), ValueError, r"conv_general_dilated lhs and rhs must have the same "
                                  r"number of dimensions, got shapes \(4, 6, 6\) \(`lhs`\) "
                                  r"and \(6, 2, 3, 3\) \(`rhs`\)"),
    (dict(lhs=_X.astype(np.int32)), TypeError,
     r"conv_general_dilated: `lhs` and `rhs` must share one dtype, got int32 and float32"),
    (dict(rhs=_W.astype(np.float64)), TypeError,
     r"conv_general_dilated: `lhs` and `rhs` must share one dtype, got float32 and float64"),
    (dict(rhs="w"), TypeError, r"conv_general_dilated: `rhs` must be an array, got str 'w'"),
    (dict(window_strides=(1, 0)), ValueError,
     r"conv_general_dilated: `window_strides` must be positive, got \(1, 0\)"),
    (dict(window_strides=(1,)), TypeError,
     r"conv_general_dilated window and window_strides must have the same number of "
     r"dimensions, but got 2 and 1: `window_strides` must be a sequence of 2 ints .*got \(1,\)"),
    (dict(rhs_dilation=(1, 1, 1)), ValueError,
     r"^conv_general_dilated: `rhs_dilation` must be a sequence of 2 ints .*got \(1, 1, 1\)"),
    (dict(window_strides=2), TypeError,
     r"conv_general_dilated: `window_strides` must be a sequence of 2 ints .*got 2"),
    (dict(rhs_dilation=(0, 1)), ValueError,
     r"conv_general_dilated: `rhs_dilation` must be positive, got \(0, 1\)"),
    (dict(lhs_dilation=(1, -2), padding=((0, 0), (0, 0))), ValueError,
     r"conv_general_dilated: `lhs_dilation` must be positive, got \(1, -2\)"),
    (dict(lhs_dilation=(2, 1)), ValueError,
     r"conv_general_dilated: string `padding` 'SAME' needs `lhs_dilation` of ones, "
     r"got \(2, 1\)"),
    (dict(padding="FULL"), ValueError,
     r"conv_general_dilated: `padding` must be one of .*got 'FULL'"),
    (dict(padding=((1, 1),)), ValueError,
     r"conv_general_dilated: the padding argument, `padding`, must be a string or a "
     r"sequence of 2 \(low, high\) pairs, got \(\(1, 1\),\)"),
    (dict(padding=np.array([[1, 1]])), ValueError,
     r"conv_general_dilated: the padding argument, `padding`, must be a string or a "
     r"sequence of 2 \(low, high\) pairs, got \[\[1, 1\]\]"),
    (dict(padding=((1, 1), (1.5, 0))), TypeError,
     r"conv_general_dilated: `padding` must be an int, got float 1.5"),
    (dict(feature_group_count=3), ValueError,
     r"conv_general_dilated: `feature_group_count` \(=3\) must divide the lhs feature "
     r"size \(=4\)"),
    (dict(feature_group_count=0), ValueError,
     r"conv_general_dilated: `feature_group_count` must be positive, got 0"),
    (dict(feature_group_count=1), ValueError,
     r"conv_general_dilated: `rhs` input feature size \(=2\) must be the lhs feature "
     r"size \(=4\) / `feature_group_count` \(=1\)"),
    (dict(batch_group_count=2), ValueError,
     r"conv_general_dilated: at most one of `feature_group_count` \(=2\) and "
     r"`batch_group_count` \(=2\) may exceed 1"),
    (dict(feature_group_count=1, batch_group_count=4, rhs=np.zeros((8, 4, 3, 3), np.float32)),
     ValueError, r"conv_general_dilated: `batch_group_count` \(=4\) must divide the lhs "
                 r"batch size \(=2\)"),
    (dict(rhs=np.zeros((5, 2, 3, 3), np.float32)), ValueError,
     r"conv_general_dilated: `feature_group_count` \(=2\) must divide the rhs output "
     r"feature size \(=5\)"),
    (dict(batch_group_count=True, feature_group_count=1), TypeError,
     r"conv_general_dilated: `batch_group_count` must be an int, got bool True"),
    (dict(dimension_numbers=("NCHW", "OIHW")), ValueError,
     r"conv_general_dilated: invalid `dimension_numbers` \('NCHW', 'OIHW'\)"),
    (dict(dimension_numbers=("NCHW", "OIHX", "NCHW")), ValueError,
     r"conv_general_dilated: invalid `dimension_numbers` \('NCHW', 'OIHX', 'NCHW'\)"),
    (dict(preferred_element_type="notatype"), TypeError,
     r"conv_general_dilated: `preferred_element_type` must be a dtype or None, "
     r"got 'notatype'"),
]


# Bad calls that lax itself refuses with a ValueError or a TypeError: the
# drop-in's error must be caught by the same ``except`` (some are both).
LAX_ERRORS = [
    dict(lhs=_X[0]),                                     # ranks differ
    dict(window_strides=(1,)), dict(window_strides=2), dict(window_strides=(1.5, 1)),
    dict(padding=((1, 1),)), dict(padding=((1, 1, 1), (1, 1))), dict(padding=((1, 1), (1.5, 0))),
    dict(padding=((-7, -7), (0, 0))),
    dict(rhs_dilation=(0, 1)), dict(lhs_dilation=(0, 1), padding=((0, 0), (0, 0))),
    dict(lhs_dilation=(2, 1)),
    dict(feature_group_count=3), dict(feature_group_count=0), dict(feature_group_count=1),
    dict(batch_group_count=2),
    dict(rhs=_W.astype(np.float16)),
    dict(dimension_numbers=("NCHW", "OIHW")), dict(dimension_numbers=("NCHW", "OIHX", "NCHW")),
    dict(preferred_element_type="notatype"), dict(precision="bogus"), dict(precision=3),
    dict(dimension_numbers=lax.ConvDimensionNumbers((0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3))),
]


@pytest.mark.parametrize("change", LAX_ERRORS)
def test_errors_are_caught_as_lax_raises_them(change):
    kwargs = dict(lhs=jnp.asarray(_X), rhs=jnp.asarray(_W), **_BASE)
    kwargs.update(change)
    with pytest.raises((ValueError, TypeError)) as theirs:
        lax.conv_general_dilated(**kwargs)
    with pytest.raises(type(theirs.value)):
        jaxgrad.conv_general_dilated(**kwargs)


def test_lax_wording_that_jax_tests_match():
    # JAX's tests test_conv_general_dilated_different_input_ranks_error and
    # test_window_strides_dimension_shape_rule (tests/lax_test.py)
    numbers = lax.ConvDimensionNumbers((0, 1, 2), (0, 1, 2), (0, 1, 2))
    with pytest.raises(ValueError, match="conv_general_dilated lhs and rhs must have the "
                                         "same number of dimensions"):
        jaxgrad.conv_general_dilated(np.ones((1, 1, 1)), np.ones((1, 1, 1, 1)), (1,),
                                     ((0, 0),), (1,), (1,), numbers)
    with pytest.raises(ValueError, match="conv_general_dilated window and window_strides "
                                         "must have the same number of dimensions"):
        jaxgrad.conv_general_dilated(jnp.zeros((1, 1, 3, 3)), np.zeros((1, 1, 1, 1)), [1],
                                     "SAME")


@pytest.mark.parametrize("change, error, match", ERRORS)
def test_bad_arguments_are_named(monkeypatch, change, error, match):
    for module in (_general, _core):    # raised before lax convolves
        monkeypatch.setattr(module, "lax", _NoConv(lax))
    kwargs = dict(lhs=jnp.asarray(_X), rhs=jnp.asarray(_W), **_BASE)
    kwargs.update({k: jnp.asarray(v) if k in ("lhs", "rhs") and isinstance(v, np.ndarray) else v
                   for k, v in change.items()})
    with pytest.raises(error, match=match):
        jaxgrad.conv_general_dilated(**kwargs)


class _NoConv:
    """``lax`` with its convolution refused."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        if name == "conv_general_dilated":
            raise AssertionError("lax.conv_general_dilated reached with bad arguments")
        return getattr(self._module, name)


def test_invalid_padding_has_lax_wording():
    # JAX's own testConvInvalidPadding matches this pattern against lax's message
    x, w = jnp.ones((1, 5, 10, 10), jnp.float32), jnp.ones((5, 5, 3, 3), jnp.float32)
    for fn in (lax.conv_general_dilated, jaxgrad.conv_general_dilated):
        with pytest.raises(ValueError, match=r"padding argument.*, got \(3, 3\)"):
            fn(x, w, (1, 1), padding=(3, 3))
