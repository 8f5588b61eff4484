"""Flax with ``conv_general_dilated=jaxgrad.conv_general_dilated`` against stock Flax.

Each module is built twice with the same parameters, once with Flax's default
(``lax.conv_general_dilated``, differentiated by JAX) and once with jaxgrad's
drop-in; outputs and gradients (parameters and input, and one second-order
gradient) must agree in float32 (relative tolerance from ``jaxgrad._checking._tolerance``).
``nnx.ConvTranspose`` and ``linen.ConvTranspose`` take no convolution hook in
the installed Flax, so only ``Conv`` is covered.
"""

import jax
import jax.numpy as jnp
import pytest
from flax import linen, nnx

import jaxgrad
from jaxgrad._checking._tolerance import max_errors, tolerance

# (input shape (N, *spatial, C), nnx.Conv keyword arguments)
CONFIGS = [
    ((2, 9, 8, 3), dict(in_features=3, out_features=4, kernel_size=(3, 3), strides=2,
                        padding="SAME")),
    ((2, 7, 8, 4), dict(in_features=4, out_features=6, kernel_size=(3, 2), strides=(1, 2),
                        padding=((1, 0), (2, 1)), kernel_dilation=(2, 1),
                        feature_group_count=2)),
    ((1, 5, 6, 2), dict(in_features=2, out_features=3, kernel_size=(2, 3),
                        padding=((1, 1), (0, 2)), input_dilation=(2, 1))),
    ((2, 10, 4), dict(in_features=4, out_features=4, kernel_size=3, padding="CAUSAL",
                      kernel_dilation=2, feature_group_count=4)),        # depthwise 1-D
    ((1, 4, 5, 4, 2), dict(in_features=2, out_features=3, kernel_size=(2, 3, 2), strides=2,
                           padding="VALID")),
    ((2, 7, 7, 2), dict(in_features=2, out_features=4, kernel_size=3, padding="REFLECT")),
]


def _assert_close(actual, expected, what):
    abs_err, rel_err = max_errors(actual, expected)
    assert rel_err <= tolerance(jnp.float32), (
        f"{what}: max abs {abs_err:.3e}, rel {rel_err:.3e}")


def _jit(f):
    # Compile time dominates these small cases: compile without backend
    # optimisation (the same operations and sums) in one program per case.
    return jax.jit(f, compiler_options={"xla_backend_optimization_level": 0})


def _value_and_grads(model, x):
    """(y, ∂L/∂params, ∂L/∂x) for L = Σ sin(model(x)), by nnx.grad."""
    def loss(model, x):
        return jnp.sum(jnp.sin(model(x)))

    grads, x_bar = nnx.grad(loss, argnums=(0, 1))(model, x)
    return model(x), nnx.state(grads, nnx.Param), x_bar


def _both(function, ours, stock, x):
    """``function`` of each module (rebuilt from its state) and x, as one jitted program."""
    (ours_def, ours_state), (stock_def, stock_state) = nnx.split(ours), nnx.split(stock)
    return _jit(lambda a, b, x: (function(nnx.merge(ours_def, a), x),
                                 function(nnx.merge(stock_def, b), x)))(
        ours_state, stock_state, x)


def _pair(rng, kwargs):
    """(ours, stock): the same nnx.Conv, parameters drawn once from ``rng``.

    Zero initialisers keep construction cheap (Flax's random initialisers
    compile several programs per shape); both modules then get the same
    random kernel and non-zero bias.
    """
    cheap = dict(kernel_init=nnx.initializers.zeros_init(), rngs=nnx.Rngs(0))
    ours = nnx.Conv(**kwargs, conv_general_dilated=jaxgrad.conv_general_dilated, **cheap)
    stock = nnx.Conv(**kwargs, **cheap)
    for name in ("kernel", "bias"):
        value = jnp.asarray(rng.standard_normal(getattr(ours, name).shape), jnp.float32)
        getattr(ours, name)[...] = value
        getattr(stock, name)[...] = value
    return ours, stock


@pytest.mark.parametrize("shape, kwargs", CONFIGS)
def test_nnx_conv_matches_stock_flax(rng, shape, kwargs):
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    ours, stock = _pair(rng, kwargs)
    (y, grads, x_bar), (y_ref, grads_ref, x_bar_ref) = _both(_value_and_grads, ours, stock, x)
    assert y.dtype == jnp.float32 and x_bar.dtype == jnp.float32
    _assert_close(y, y_ref, "output")
    _assert_close(x_bar, x_bar_ref, "input gradient")
    for name in ("kernel", "bias"):
        assert grads[name][...].dtype == jnp.float32
        _assert_close(grads[name][...], grads_ref[name][...], f"{name} gradient")


@pytest.mark.parametrize("shape, kwargs", [CONFIGS[1], CONFIGS[3]])
def test_linen_conv_matches_stock_flax(rng, shape, kwargs):
    kwargs = dict(kwargs)
    kwargs["features"] = kwargs.pop("out_features")
    del kwargs["in_features"]
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    kwargs["kernel_init"] = linen.initializers.zeros_init()    # cheap; replaced below
    stock = linen.Conv(**kwargs)
    ours = linen.Conv(**kwargs, conv_general_dilated=jaxgrad.conv_general_dilated)
    shapes = jax.eval_shape(ours.init, jax.random.key(0), x)
    params = jax.tree.map(
        lambda p: jnp.asarray(rng.standard_normal(p.shape), jnp.float32), shapes)

    def value_and_grads(module, params, x):
        loss = lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))  # noqa: E731
        return module.apply(params, x), jax.grad(loss, argnums=(0, 1))(params, x)

    (y, (grads, x_bar)), (y_ref, (grads_ref, x_bar_ref)) = _jit(
        lambda p, x: (value_and_grads(ours, p, x), value_and_grads(stock, p, x)))(params, x)
    _assert_close(y, y_ref, "output")
    _assert_close(x_bar, x_bar_ref, "input gradient")
    for (path, g), g_ref in zip(jax.tree_util.tree_leaves_with_path(grads),
                                jax.tree.leaves(grads_ref), strict=True):
        _assert_close(g, g_ref, jax.tree_util.keystr(path))


def test_nnx_conv_second_order_matches_stock_flax(rng):
    """A gradient penalty: the gradient of a function of ∂L/∂x w.r.t. the kernel."""
    shape, kwargs = CONFIGS[1]
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)

    def penalty_grad(model, x):
        def penalty(model, x):
            x_bar = jax.grad(lambda x: jnp.sum(jnp.sin(model(x))))(x)
            return jnp.sum(x_bar ** 2)
        return nnx.state(nnx.grad(penalty)(model, x), nnx.Param)["kernel"][...]

    got, expected = _both(penalty_grad, *_pair(rng, kwargs), x)
    _assert_close(got, expected, "kernel gradient of the penalty")
