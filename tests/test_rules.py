"""The rule declarations (``jaxgrad._rules``) against JAX autodiff of the plain maps.

Each declared rule must give the VJPs JAX's autodiff gives for the same
formula, at first and second order, and its adjoint identities must hold; the
convolution core declared with them must behave the same through the
lax-signature drop-in as through the torch-style ops (dtype policy, formulation
choice).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxgrad
from jaxgrad import _rules

jax.config.update("jax_enable_x64", True)

RNG = np.random.default_rng(0)
INDEX = (2, 0, 0, 3, 1, 2)


def _gather(x, index):
    return x[np.asarray(index)]


def _scatter(y, index):
    return jnp.zeros(4, y.dtype).at[np.asarray(index)].add(y)


def _scaled_gather(x, c, index):
    return c * x[np.asarray(index)]


def _scaled_scatter(y, c, index):
    return jnp.zeros(4, y.dtype).at[np.asarray(index)].add(c * y)


GATHER, SCATTER = _rules.linear_pair(_gather, _scatter)
SCALED_GATHER, SCALED_SCATTER = _rules.linear_pair(_scaled_gather, _scaled_scatter,
                                                   constants=1)


def _matmul(a, b):
    return a @ b


def _matmul_grad_a(g, b):
    return g @ b.T


def _matmul_grad_b(a, g):
    return a.T @ g


MATMUL, MATMUL_GRAD_A, MATMUL_GRAD_B = _rules.bilinear(_matmul, _matmul_grad_a,
                                                       _matmul_grad_b)


def test_linear_pair_is_adjoint_and_differentiates_like_autodiff():
    x, y = RNG.standard_normal(4), RNG.standard_normal(6)
    # ⟨A x, y⟩ = ⟨x, Aᵀ y⟩
    np.testing.assert_allclose(GATHER(x, INDEX) @ y, x @ SCATTER(y, INDEX), rtol=1e-12)
    for declared, plain, arg in ((GATHER, _gather, x), (SCATTER, _scatter, y)):
        f = lambda v: jnp.sum(jnp.sin(declared(v, INDEX)) ** 2)          # noqa: E731
        f_ref = lambda v: jnp.sum(jnp.sin(plain(v, INDEX)) ** 2)         # noqa: E731
        np.testing.assert_allclose(jax.grad(f)(arg), jax.grad(f_ref)(arg), rtol=1e-12)
        np.testing.assert_allclose(jax.hessian(f_ref)(arg) @ arg,
                                   jax.grad(lambda v: jax.grad(f)(v) @ arg)(arg),
                                   rtol=1e-10)


def test_linear_pair_constants_get_no_cotangent():
    x, c = RNG.standard_normal(4), jnp.asarray(RNG.standard_normal(6))
    f = lambda x, c: jnp.sum(SCALED_GATHER(x, c, INDEX) ** 2)            # noqa: E731
    f_ref = lambda x, c: jnp.sum(_scaled_gather(x, c, INDEX) ** 2)       # noqa: E731
    gx, gc = jax.grad(f, argnums=(0, 1))(x, c)
    np.testing.assert_allclose(gx, jax.grad(f_ref)(x, c), rtol=1e-12)
    np.testing.assert_array_equal(gc, np.zeros(6))


def test_bilinear_triple_first_and_second_order_match_autodiff():
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 5))
    t = RNG.standard_normal((3, 5))

    def loss(mm, a, b):
        return jnp.sum(jnp.tanh(mm(a, b)) * t)

    ours = jax.grad(loss, argnums=(1, 2))(MATMUL, a, b)
    ref = jax.grad(loss, argnums=(1, 2))(_matmul, a, b)
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o, r, rtol=1e-12)
    # reverse over reverse: the gradient of the squared norm of ∂L/∂a
    second = jax.grad(lambda a, b: jnp.sum(jax.grad(loss, argnums=1)(MATMUL, a, b) ** 2),
                      argnums=(0, 1))(a, b)
    second_ref = jax.grad(lambda a, b: jnp.sum(jax.grad(loss, argnums=1)(_matmul, a, b) ** 2),
                          argnums=(0, 1))(a, b)
    for o, r in zip(second, second_ref):
        np.testing.assert_allclose(o, r, rtol=1e-10)


def test_bilinear_adjoints_differentiate_like_autodiff():
    a, b, g = (RNG.standard_normal(s) for s in ((3, 4), (4, 5), (3, 5)))
    for declared, plain, args in ((MATMUL_GRAD_A, _matmul_grad_a, (g, b)),
                                  (MATMUL_GRAD_B, _matmul_grad_b, (a, g))):
        f = lambda u, v: jnp.sum(jnp.cos(declared(u, v)))                # noqa: E731
        f_ref = lambda u, v: jnp.sum(jnp.cos(plain(u, v)))               # noqa: E731
        for o, r in zip(jax.grad(f, argnums=(0, 1))(*args),
                        jax.grad(f_ref, argnums=(0, 1))(*args)):
            np.testing.assert_allclose(o, r, rtol=1e-12)


def test_epilogue_returns_cotangents_in_the_primal_dtype():
    # op widens: float32 operands, float64 result; the cotangents come back float32.
    widen = _rules.bilinear(lambda a, b: (a @ b).astype(jnp.float64),
                            lambda g, b: g @ b.T.astype(g.dtype),
                            lambda a, g: a.T.astype(g.dtype) @ g)[0]
    a = jnp.asarray(RNG.standard_normal((2, 3)), jnp.float32)
    b = jnp.asarray(RNG.standard_normal((3, 2)), jnp.float32)
    ga, gb = jax.grad(lambda a, b: jnp.sum(widen(a, b)), argnums=(0, 1))(a, b)
    assert (ga.dtype, gb.dtype) == (jnp.float32, jnp.float32)
    np.testing.assert_allclose(ga, np.ones((2, 2)) @ np.asarray(b).T, rtol=1e-6)


def test_explicit_rule_and_identity_with_backward():
    sin = _rules.explicit(jnp.sin, lambda x, g: (g * COS(x[0]),))
    COS = _rules.explicit(jnp.cos, lambda x, g: (-g * sin(x[0]),))
    x = RNG.standard_normal(5)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(sin(v)))(x), np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(jax.grad(
        lambda u: jnp.sum(sin(u)))(v)))(x), -np.sin(x), rtol=1e-12)
    double, _ = _rules.linear_pair(lambda v: 2 * v, lambda v: 2 * v)
    twice = _rules.identity_with_backward(double)
    np.testing.assert_allclose(twice(x), x)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(twice(v) * v))(x), 3 * x,
                               rtol=1e-12)


def test_declared_rules_keep_the_implementation_name():
    assert GATHER.__name__ == "_gather" and MATMUL_GRAD_B.__name__ == "_matmul_grad_b"
    assert jaxgrad.conv2d.__name__ == "conv2d"


# --------------------------------------------------------------------------
# The lax-signature drop-in runs on the same core as the torch-style ops.


def _convs(fn, *args) -> int:
    jaxpr = jax.make_jaxpr(fn)(*args)
    return str(jaxpr).count("conv_general_dilated[")


@pytest.mark.parametrize("layout, convs", [
    (("NCHW", "OIHW", "NCHW"), 1),     # PyTorch's layout: both gradients as taps
    (("NHWC", "HWIO", "NHWC"), 3),     # other layouts: transposed convolutions
])
def test_conv_general_dilated_gets_the_formulation_choice(layout, convs):
    x = RNG.standard_normal((2, 3, 8, 8))
    w = RNG.standard_normal((4, 3, 3, 3))
    if layout[0] == "NHWC":
        x, w = x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0)

    def loss(conv, x, w):
        return jnp.sum(conv(x, w, (1, 1), "SAME", dimension_numbers=layout) ** 2)

    with jaxgrad.conv_algorithm("taps"):
        grads = jax.grad(loss, argnums=(1, 2))(jaxgrad.conv_general_dilated, x, w)
        count = _convs(lambda x, w: jax.grad(loss, argnums=(1, 2))(
            jaxgrad.conv_general_dilated, x, w), x, w)
    assert count == convs
    for ours, ref in zip(grads, jax.grad(loss, argnums=(1, 2))(lax.conv_general_dilated, x, w)):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_conv_general_dilated_accumulates_half_types_in_float32():
    # 2048 products of ±1 per output: a bfloat16 running sum loses the low
    # bits; float32 accumulation then one rounding gives the float32 sum rounded.
    x = jnp.asarray(RNG.choice([-1.0, 1.0], (1, 2048, 1, 1)), jnp.bfloat16)
    w = jnp.asarray(RNG.choice([-1.0, 1.0], (1, 2048, 1, 1)) * 1.0078125, jnp.bfloat16)
    ours = jaxgrad.conv_general_dilated(x, w, (1, 1), "VALID")
    exact = lax.conv_general_dilated(x.astype(jnp.float32), w.astype(jnp.float32), (1, 1),
                                     "VALID", precision="highest").astype(jnp.bfloat16)
    assert ours.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(ours, np.float32), np.asarray(exact, np.float32))
    # and its gradient comes back in bfloat16, equal to the float32 rule rounded
    gw = jax.grad(lambda w: jnp.sum(jaxgrad.conv_general_dilated(
        x, w, (1, 1), "VALID").astype(jnp.float32)))(w)
    assert gw.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(gw, np.float32), np.asarray(x, np.float32))


def _pool(x, reduce, init, window, strides, pads):
    return lax.reduce_window(x, init, reduce, window, strides, pads)


# (name, jaxgrad's op, a reference written with jnp / lax and differentiated by
# JAX): each broadcasts an operand of lower rank inside its rules.
_W5, _B5 = RNG.standard_normal((5, 6)), RNG.standard_normal(5)
PROMOTION_CASES = [
    ("linear", lambda x: jaxgrad.linear(x, _W5, _B5), lambda x: x @ _W5.T + _B5),
    ("max_pool2d", lambda x: jaxgrad.max_pool2d(x, 2),
     lambda x: _pool(x, lax.max, -jnp.inf, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")),
    ("avg_pool2d", lambda x: jaxgrad.avg_pool2d(x, 3, 1, 1),
     lambda x: _pool(x, lax.add, 0.0, (1, 1, 3, 3), (1, 1, 1, 1),
                     ((0, 0), (0, 0), (1, 1), (1, 1))) / 9),
    ("adaptive_max_pool2d", lambda x: jaxgrad.adaptive_max_pool2d(x, 3),
     lambda x: _pool(x, lax.max, -jnp.inf, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")),
    ("interpolate bilinear", lambda x: jaxgrad.interpolate(x, scale_factor=0.5,
                                                           mode="bilinear"),
     # align_corners=False at scale 1/2: the mean of each 2x2 block
     lambda x: _pool(x, lax.add, 0.0, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4),
]


@pytest.mark.parametrize("name, op, reference", PROMOTION_CASES,
                         ids=[c[0] for c in PROMOTION_CASES])
def test_rules_ignore_the_callers_promotion_settings(name, op, reference):
    # A caller's jax_numpy_rank_promotion="raise" and dtype promotion "strict"
    # (JAX's own tests run under both) concern the caller's operands; the
    # broadcasting inside a rule is jaxgrad's and must still run.
    x = jnp.asarray(RNG.standard_normal((2, 3, 6, 6)))

    def first_and_second(f):
        loss = lambda x: jnp.sum(jnp.sin(f(x)))
        return f(x), jax.grad(loss)(x), jax.grad(lambda x: jnp.sum(jax.grad(loss)(x) ** 2))(x)

    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        got = first_and_second(op)
    expected = first_and_second(reference)
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
