"""Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) through jaxgrad.

Every op carries a ``custom_jvp`` twin (``_rules.with_forward_mode``) whose
JVP is written with hand-written rules: the family's own maps for the linear
and bilinear ops, f′·ẋ for the activations, the transposed backward for the
rest. References, all independent of that code: float64 central differences
(``jax.test_util.check_jvp``), the adjoint identity against jaxgrad's reverse
mode (which the torch tests pin), and JAX autodiff of the same computation on
plain ``lax`` ops. tests/torch/test_forward_mode_torch.py compares with torch's
forward AD.
"""

import functools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads, check_jvp

import jaxgrad
from jaxgrad._checking import _check, _families

jax.config.update("jax_enable_x64", True)

HIGHEST = lax.Precision.HIGHEST

# Identities whose backward is deliberately not the transpose of their
# forward (it scales, reverses or hooks the cotangent): their JVP is ẋ.
GRADIENT_TOOLS = ("scale_grad", "reverse_grad", "hook")


def _cases():
    return [case for name, family in _families.FAMILIES.items() if family.available()
            for case in family.build()]


def _case_function(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    xs = _check._draw(case, rng, "float64")
    consts = _check._as(_check._constants(case, rng, "float64"), jnp.float64)
    keys = list(xs)

    def f(*arrays):
        return case.ours(**dict(zip(keys, arrays)), **consts)
    return f, tuple(jnp.asarray(xs[k]) for k in keys), rng


SECOND_ORDER_FAMILIES = ("batch_norm", "group_norm", "layer_norm", "instance_norm",
                         "softmax", "log_softmax", "cross_entropy", "kl_div", "prelu", "gelu",
                         "binary_cross_entropy_with_logits", "huber_loss", "conv_transpose2d",
                         "max_pool2d", "interpolate")


@pytest.mark.parametrize("case", [c for c in _cases()
                                  if c.name.split(" ")[0] in SECOND_ORDER_FAMILIES],
                         ids=lambda case: case.name)
def test_check_case_second_order_forward(case):
    """The JVP of the JVP (and the VJP of the JVP) against central differences."""
    f, args, _ = _case_function(case)
    check_grads(f, args, 2, modes=["fwd"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.name)
def test_check_case_jvp(case):
    """Every ``jaxgrad check`` case: the JVP against central differences, and
    ⟨J ẋ, ȳ⟩ = ⟨ẋ, Jᵀ ȳ⟩ against jaxgrad's VJP (for the gradient tools,
    ẏ = ẋ exactly)."""
    f, args, rng = _case_function(case)
    tangents = tuple(jnp.asarray(rng.standard_normal(a.shape)) for a in args)
    y_bar = jnp.asarray(rng.standard_normal(jax.eval_shape(f, *args).shape))

    @jax.jit   # outside the jvp, one program per case
    def run(args, tangents, y_bar):
        y, y_dot = jax.jvp(f, args, tangents)
        return y, y_dot, f(*args), jax.vjp(f, *args)[1](y_bar)

    y, y_dot, y_ref, x_bar = run(args, tangents, y_bar)
    np.testing.assert_array_equal(y, y_ref)
    check_jvp(jax.jit(f), lambda p, t: run(p, t, y_bar)[:2], args, atol=1e-6, rtol=1e-6)
    if case.name.split(" ")[0] in GRADIENT_TOOLS:
        np.testing.assert_array_equal(y_dot, tangents[0])
        return
    lhs = jnp.vdot(y_dot, y_bar)
    rhs = sum(jnp.vdot(t, c) for t, c in zip(tangents, x_bar))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


class Cube(jaxgrad.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * g


def test_function_without_jvp_refuses_forward_mode():
    """Like torch's forward AD, a Function needs its own ``jvp``."""
    x = jnp.arange(3.0)
    np.testing.assert_allclose(jax.grad(lambda x: Cube.apply(x).sum())(x), 3 * x ** 2)
    with pytest.raises(TypeError, match=r"Cube: forward-mode differentiation .* needs a "
                                        r"`jvp\(ctx, \*input_tangents\)` @staticmethod"):
        jax.jvp(Cube.apply, (x,), (x,))


class ScaledProduct(jaxgrad.Function):
    """(x·y·k, x > 0): torch's save_for_forward example, with an integer
    output and a static k."""

    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.save_for_forward(x, y)
        ctx.k = k
        return x * y * k, (x > 0).astype(jnp.int32)

    @staticmethod
    def backward(ctx, g, _):
        x, y = ctx.saved_tensors
        return g * y * ctx.k, g * x * ctx.k, None

    @staticmethod
    def jvp(ctx, x_t, y_t, k_t):
        assert k_t is None
        x, y = ctx.saved_tensors
        return ctx.k * (y * x_t + x * y_t), None


def test_function_jvp_every_composition():
    rng = np.random.default_rng(8)
    x, y, tx, ty = (jnp.asarray(rng.standard_normal(4)) for _ in range(4))
    (z, positive), (z_dot, p_dot) = jax.jvp(lambda x, y: ScaledProduct.apply(x, y, 3.0),
                                            (x, y), (tx, ty))
    np.testing.assert_allclose(z, 3 * x * y)
    np.testing.assert_array_equal(positive, x > 0)
    np.testing.assert_allclose(z_dot, 3 * (y * tx + x * ty), rtol=1e-14)
    assert p_dot.dtype == jax.dtypes.float0
    # y without a tangent gets zeros; jvp of grad and grad of jvp run jvp and backward.
    only_x = jax.jvp(lambda x: ScaledProduct.apply(x, y, 3.0)[0], (x,), (tx,))[1]
    np.testing.assert_allclose(only_x, 3 * y * tx, rtol=1e-14)
    f = lambda x: jnp.sum(ScaledProduct.apply(x, x, 2.0)[0] ** 2)   # 2 Σ x⁴·2 = 4 Σ x⁴
    np.testing.assert_allclose(jax.jvp(jax.grad(f), (x,), (tx,))[1], 48 * x ** 2 * tx,
                               rtol=1e-12)
    np.testing.assert_allclose(jax.hessian(f)(x), jnp.diag(48 * x ** 2), rtol=1e-12)


def test_function_jvp_wrong_tangent_is_loud():
    class Bad(ScaledProduct):
        @staticmethod
        def jvp(ctx, x_t, y_t, k_t):
            return x_t[:2], None

    x = jnp.ones(4)
    with pytest.raises(ValueError, match=r"Bad.jvp: the tangent for output 0 has shape "
                                         r"\(2,\), expected \(4,\) \(the shape of output 0\)"):
        jax.jvp(lambda x: Bad.apply(x, x, 1.0), (x,), (x,))

    class Short(ScaledProduct):
        @staticmethod
        def jvp(ctx, x_t, y_t, k_t):
            return x_t

    with pytest.raises(ValueError, match=r"Short.jvp returned 1 tangent\(s\), but "
                                         r"Short.forward returned 2 output\(s\)"):
        jax.jvp(lambda x: Short.apply(x, x, 1.0), (x,), (x,))

    class NotStatic(ScaledProduct):
        def jvp(ctx, x_t, y_t, k_t):
            return x_t, None

    with pytest.raises(TypeError, match=r"NotStatic.jvp must be a @staticmethod"):
        NotStatic.apply(x, x, 1.0)


# --------------------------------------------------------------------------
# The lax-signature drop-in, as JAX's own conv tests use it: check_grads at
# second order in both modes (jvp of jvp, vjp of jvp, jvp of vjp, vjp of vjp).

DROP_IN_CASES = {
    "strided dilated NCHW": dict(lhs=(2, 3, 7, 6), rhs=(4, 3, 3, 2), window_strides=(2, 1),
                                 padding=((1, 0), (2, 1)), rhs_dilation=(1, 2)),
    "transposed (lhs dilation) NHWC": dict(
        lhs=(1, 5, 4, 4), rhs=(3, 3, 4, 2), window_strides=(1, 1), padding=((2, 1), (1, 1)),
        lhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC")),
    "grouped": dict(lhs=(2, 4, 6, 5), rhs=(6, 2, 3, 3), window_strides=(1, 2),
                    padding="VALID", feature_group_count=2),
    "batch groups": dict(lhs=(4, 2, 5, 5), rhs=(4, 2, 2, 2), window_strides=(1, 1),
                         padding=((0, 1), (1, 0)), batch_group_count=2),
    "1-D": dict(lhs=(2, 3, 9), rhs=(2, 3, 4), window_strides=(3,), padding=((2, 2),)),
}


@pytest.mark.parametrize("name", DROP_IN_CASES)
def test_conv_general_dilated_check_grads_both_modes(name):
    params = dict(DROP_IN_CASES[name])
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    lhs, rhs = (jnp.asarray(rng.standard_normal(params.pop(k))) for k in ("lhs", "rhs"))
    conv = functools.partial(jaxgrad.conv_general_dilated, precision=HIGHEST, **params)
    check_grads(conv, (lhs, rhs), 2, modes=["fwd", "rev"], atol=1e-6, rtol=1e-6)
    ref = functools.partial(lax.conv_general_dilated, precision=HIGHEST, **params)
    dl, dr = (jnp.asarray(rng.standard_normal(a.shape)) for a in (lhs, rhs))
    for got, want in zip(jax.jvp(conv, (lhs, rhs), (dl, dr)), jax.jvp(ref, (lhs, rhs), (dl, dr))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# A small network (conv, bias, activation, max pool, linear): every forward-mode
# composition against the same network on plain lax / jax.nn ops.

X = jnp.asarray(np.random.default_rng(1).standard_normal((2, 2, 6, 6)))


def _net(ops, w, x=X):
    conv, act, pool, lin = ops
    h = act(conv(x, w["conv"]) + w["bias"][:, None, None])
    return lin(pool(h).reshape(x.shape[0], -1), w["lin"])


JAXGRAD_OPS = (lambda x, w: jaxgrad.conv2d(x, w, padding=1), jaxgrad.silu,
               lambda h: jaxgrad.max_pool2d(h, 2), jaxgrad.linear)
LAX_OPS = (lambda x, w: lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                                 precision=HIGHEST),
           jax.nn.silu,
           lambda h: lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"),
           lambda x, w: jnp.dot(x, w.T, precision=HIGHEST))


def _weights(seed):
    rng = np.random.default_rng(seed)
    return {"conv": jnp.asarray(rng.standard_normal((3, 2, 3, 3)) / 3),
            "bias": jnp.asarray(rng.standard_normal(3)),
            "lin": jnp.asarray(rng.standard_normal((4, 27)) / 5)}


def _loss(ops, w):
    return jnp.sum(jnp.tanh(_net(ops, w)) ** 2)


TRANSFORMS = {
    "jvp": lambda f, w, v: jax.jvp(f, (w,), (v,))[1],
    "jit(jvp)": lambda f, w, v: jax.jit(lambda w, v: jax.jvp(f, (w,), (v,))[1])(w, v),
    "jvp(vmap)": lambda f, w, v: jax.jvp(lambda w: jax.vmap(lambda x: f(w, x[None]))(X),
                                         (w,), (v,))[1],
    "vmap(jvp)": lambda f, w, v: jax.vmap(lambda s: jax.jvp(f, (w,), (jax.tree.map(
        lambda t: s * t, v),))[1])(jnp.arange(1.0, 3.0)),
    "jvp(grad)": lambda f, w, v: jax.jvp(jax.grad(lambda w: jnp.sum(jnp.tanh(f(w)) ** 2)),
                                         (w,), (v,))[1],
    "grad(jvp)": lambda f, w, v: jax.grad(lambda w: jnp.sum(
        jax.jvp(f, (w,), (v,))[1] ** 2))(w),
    "jvp(jvp)": lambda f, w, v: jax.jvp(lambda w: jax.jvp(f, (w,), (v,))[1], (w,), (v,))[1],
}


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_network_forward_mode_compositions(transform):
    w, v = _weights(2), _weights(3)

    def net(ops):
        return lambda w, x=X: _net(ops, w, x)
    got = TRANSFORMS[transform](net(JAXGRAD_OPS), w, v)
    want = TRANSFORMS[transform](net(LAX_OPS), w, v)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_network_hessian_and_jacfwd():
    w = _weights(4)
    h = jax.jit(jax.hessian(functools.partial(_loss, JAXGRAD_OPS)))(w)
    h_ref = jax.hessian(functools.partial(_loss, LAX_OPS))(w)
    for a, b in zip(jax.tree.leaves(h), jax.tree.leaves(h_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    j = jax.jacfwd(lambda w: _net(JAXGRAD_OPS, w))(w)
    j_ref = jax.jacrev(lambda w: _net(LAX_OPS, w))(w)
    for a, b in zip(jax.tree.leaves(j), jax.tree.leaves(j_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _refuse(*args, **kwargs):
    raise AssertionError("lax's own autodiff rule for conv_general_dilated was used")


FORWARD_COMPOSITIONS = {
    "jvp": lambda f, a: jax.jvp(f, a, a),
    "jvp(jvp)": lambda f, a: jax.jvp(lambda *p: jax.jvp(f, p, a)[1], a, a),
    "jvp(grad)": lambda f, a: jax.jvp(jax.grad(lambda *p: jnp.sum(jnp.sin(f(*p))),
                                               argnums=(0, 1)), a, a),
    "grad(jvp)": lambda f, a: jax.grad(lambda *p: jnp.sum(jnp.sin(jax.jvp(f, p, a)[1])),
                                       argnums=(0, 1))(*a),
}


@pytest.mark.parametrize("algorithm", ["transpose", "taps", "auto"])
@pytest.mark.parametrize("composition", FORWARD_COMPOSITIONS)
def test_forward_mode_runs_only_hand_written_rules(monkeypatch, algorithm, composition):
    """No JVP or transpose rule of lax's convolution, and no JAX autodiff of
    jaxgrad's implementations, in any forward-mode composition."""
    from jax._src.interpreters import ad
    from jax._src.lax.convolution import conv_general_dilated_p as conv_p

    from jaxgrad._conv import _core, _taps
    from ._autodiff import forbid_autodiff

    for table in (ad.primitive_jvps, ad.primitive_transposes, ad.fancy_transposes):
        if conv_p in table:
            monkeypatch.setitem(table, conv_p, _refuse)
    forbid_autodiff(monkeypatch, _core, ("_conv_impl", "_input_grad_impl", "_weight_grad_impl"))
    forbid_autodiff(monkeypatch, _taps, ("forward", "input_grad", "weight_grad",
                                         "patches", "col2im"))

    def f(x, w):   # strided grouped conv, transposed conv, depthwise
        y = jaxgrad.conv2d(x, w, stride=2, padding=1, groups=2, algorithm=algorithm)
        z = jaxgrad.conv_transpose2d(y, w, None, stride=2, groups=2, algorithm=algorithm)
        return jaxgrad.conv2d(z, jnp.ones((2, 1, 3, 3)), groups=2, algorithm=algorithm)

    args = (jnp.ones((2, 2, 7, 6)), jnp.ones((4, 1, 3, 2)))
    jax.eval_shape(lambda *a: FORWARD_COMPOSITIONS[composition](f, a), *args)
    with pytest.raises(AssertionError, match="lax's own autodiff rule"):   # the guard can fail
        jax.eval_shape(lambda x: jax.jvp(lambda x: lax.conv_general_dilated(
            x, args[1], (1, 1), "SAME", feature_group_count=2), (x,), (x,)), args[0])


NORM_IMPLS = ("_sum_over_impl", "_broadcast_over_impl", "_scale_impl", "_scale_input_grad_impl",
              "_scale_weight_grad_impl", "_add_bias_impl", "_scale_by_impl", "_shift_scale_impl",
              "_normalize_impl", "_rstd_impl", "_normalize_grad_impl")


@pytest.mark.parametrize("composition", FORWARD_COMPOSITIONS)
def test_forward_mode_of_nonlinear_ops_runs_only_hand_written_rules(monkeypatch, composition):
    """Activations, prelu, softmax and the normalisations: their JVPs (f′·ẋ,
    the transposed backward) never differentiate an implementation."""
    from jaxgrad import _activation, _norm
    from ._autodiff import forbid_autodiff

    forbid_autodiff(monkeypatch, _activation, ("_call", "_softmax_impl", "_log_softmax_impl",
                                               "_softmax_grad_impl", "_log_softmax_grad_impl",
                                               "_prelu_impl", "_prelu_grad_impl"))
    forbid_autodiff(monkeypatch, _norm, NORM_IMPLS)

    def f(x, w):
        h = jaxgrad.group_norm(x, 2, w, w) + jaxgrad.batch_norm(x, None, None, w, None,
                                                                 training=True)
        return jaxgrad.log_softmax(jaxgrad.prelu(jaxgrad.gelu(h), w[:1]), dim=1) + \
            jaxgrad.softmax(jaxgrad.layer_norm(h, (5,)), dim=2)

    args = (jnp.ones((2, 4, 5)) + jnp.arange(5.0), jnp.ones(4))
    jax.eval_shape(lambda *a: FORWARD_COMPOSITIONS[composition](f, a), *args)
    with pytest.raises(AssertionError, match="JAX autodiff reached"):   # the guard can fail
        jax.eval_shape(lambda x: jax.jvp(lambda x: _activation._call(
            _activation.SILU, x, ()), (x,), (x,)), args[0])


def test_jit_inside_jvp_is_refused_loudly():
    """The documented limit: a jaxgrad call staged inside jit (or scan,
    checkpoint) and then differentiated in forward mode is a custom_vjp there."""
    w = _weights(6)
    f = jax.jit(lambda w: _net(JAXGRAD_OPS, w))
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        jax.jvp(f, (w,), (w,))


def test_hook_forward_mode_is_the_identity_tangent():
    x = jnp.asarray(np.random.default_rng(7).standard_normal((3, 4)))
    f = lambda x: jaxgrad.hook(jnp.sin(x), lambda g: 2 * g) ** 2
    y_dot = jax.jvp(f, (x,), (jnp.ones_like(x),))[1]
    np.testing.assert_allclose(y_dot, 2 * jnp.sin(x) * jnp.cos(x), rtol=1e-14)
    # the hook still acts on the reverse pass, also under forward-over-reverse
    hvp = jax.jvp(jax.grad(lambda x: jnp.sum(f(x))), (x,), (jnp.ones_like(x),))[1]
    np.testing.assert_allclose(hvp, 2 * 2 * jnp.cos(2 * x), rtol=1e-12, atol=1e-12)


def test_cross_hessian_blocks_and_operands_held_by_an_outer_jvp():
    """The JVP is the first differentiation holding an operand, wherever it is
    in the stack: a grad inside a jvp that differentiates a different argument
    (the off-diagonal Hessian blocks), a jvp nested in a jvp over another
    variable, and a third forward order of a normalisation."""
    w = _weights(9)
    loss_ours = lambda c, l: _loss(JAXGRAD_OPS, dict(w, conv=c, lin=l))
    loss_ref = lambda c, l: _loss(LAX_OPS, dict(w, conv=c, lin=l))
    for argnums in [(1, 0), (0, 1)]:
        got = jax.jacfwd(jax.grad(loss_ours, argnums=argnums[0]), argnums=argnums[1])(
            w["conv"], w["lin"])
        want = jax.jacrev(jax.grad(loss_ref, argnums=argnums[0]), argnums=argnums[1])(
            w["conv"], w["lin"])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    a = jnp.asarray(np.random.default_rng(10).standard_normal((3, 4)))
    nested = jax.jvp(lambda a: jax.jvp(lambda s: s * jaxgrad.relu(a), (1.0,), (1.0,))[1],
                     (a,), (a,))[1]
    np.testing.assert_allclose(nested, jnp.where(a > 0, a, 0.0))

    def third(f):
        d1 = lambda x: jax.jvp(f, (x,), (jnp.ones_like(x),))[1]
        d2 = lambda x: jax.jvp(d1, (x,), (jnp.ones_like(x),))[1]
        return jax.jvp(d2, (a,), (a,))[1]

    def layer_norm_ref(x):
        mean = x.mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(third(lambda x: jaxgrad.layer_norm(x, (4,))),
                               third(layer_norm_ref), rtol=1e-8, atol=1e-8)


def test_non_differentiable_loss_weight_refuses_forward_mode_too():
    logits = jnp.asarray(np.random.default_rng(12).standard_normal((3, 4)))
    target, weight = jnp.array([0, 3, 1]), jnp.arange(1.0, 5.0)
    f = lambda weight: jaxgrad.cross_entropy(logits, target, weight)
    with pytest.raises(ValueError, match=r"cross_entropy: `weight` .*not differentiable"):
        jax.jvp(f, (weight,), (weight,))
    with pytest.raises(ValueError, match=r"cross_entropy: `weight` .*not differentiable"):
        jax.grad(f)(weight)


def test_without_direct_linearize_reverse_mode_is_unchanged():
    """jax_use_direct_linearize=False runs jax.grad on a JVPTrace: the twin is
    never chosen there, reverse mode works as before and forward mode is
    refused with JAX's message."""
    w = _weights(13)
    want = jax.grad(functools.partial(_loss, JAXGRAD_OPS))(w)
    jax.config.update("jax_use_direct_linearize", False)
    try:
        got = jax.grad(functools.partial(_loss, JAXGRAD_OPS))(w)
        with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
            jax.jvp(lambda w: _net(JAXGRAD_OPS, w), (w,), (w,))
    finally:
        jax.config.update("jax_use_direct_linearize", True)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)


def test_function_jvp_integer_input_gets_none_and_needs_input_grad():
    seen = {}

    class Shift(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x, n):
            seen["needs"] = ctx.needs_input_grad
            return x + n

        @staticmethod
        def backward(ctx, g):
            return g, None

        @staticmethod
        def jvp(ctx, x_t, n_t):
            seen["n_t"] = n_t
            return x_t

    x, n = jnp.arange(3.0), jnp.arange(3)
    np.testing.assert_array_equal(jax.jvp(lambda x: Shift.apply(x, n), (x,), (x,))[1], x)
    assert seen == {"needs": (True, False), "n_t": None}
