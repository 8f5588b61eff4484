"""Gradient hooks against hand-computed gradients (float64 unless stated).

The loss used throughout is L(x) = Σ h(x)³ with h one of the hooks: h is the
identity, so ȳ = 3x² reaches the hook and the hook's rule T gives x̄ = T(3x²).
For grad-of-grad, M(x) = Σ ∂L/∂x: torch (create_graph=True) applies T again
on the forward path, so M'(x) = T(T'(3x²) · 6x) with T' the derivative of the
replacement — for T = c·(.) that is c²·6x.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad

X = jnp.array([1.0, -2.0, 0.5])


def _cube_loss(wrap):
    return lambda x: jnp.sum(wrap(x) ** 3)


def _second(f):
    """x -> ∇ Σ ∇f(x): a grad-of-grad."""
    return jax.grad(lambda x: jnp.sum(jax.grad(f)(x)))


def _assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected),
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# hook


def test_hook_is_identity_forward():
    y = jaxgrad.hook(X, lambda g: 2 * g)
    _assert_close(y, X)


@pytest.mark.parametrize("jit", [False, True])
def test_hook_replacement_and_none(jit):
    doubled = jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, lambda g: 2 * g)))
    kept = jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, lambda g: None)))
    if jit:
        doubled, kept = jax.jit(doubled), jax.jit(kept)
    _assert_close(doubled(X), 2 * 3 * X ** 2)
    _assert_close(kept(X), 3 * X ** 2)


def test_hook_fn_sees_the_cotangent():
    seen = []
    jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, seen.append)))(X)
    # eager grad: a concrete array, the cotangent of the hook's output
    _assert_close(seen[0], 3 * X ** 2)


def test_hook_fn_runs_at_trace_time_under_jit():
    seen = []
    f = jax.jit(jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, seen.append))))
    f(X)
    f(X + 1)  # cached: fn does not run again
    assert len(seen) == 1 and isinstance(seen[0], jax.core.Tracer)


def test_hook_under_vmap_sees_one_example():
    shapes = []

    def fn(g):
        shapes.append(g.shape)
        return g * jnp.arange(1.0, 4.0)

    xs = jnp.stack([X, 2 * X])
    grads = jax.vmap(jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, fn))))(xs)
    assert shapes == [(3,)]
    _assert_close(grads, 3 * xs ** 2 * jnp.arange(1.0, 4.0))


def test_hook_on_pytree():
    params = {"w": X, "b": jnp.array(2.0)}

    def fn(g):
        return {"w": g["w"] * 10, "b": g["b"] * 0}

    def loss(p):
        hooked = jaxgrad.hook(p, fn)
        return jnp.sum(hooked["w"] ** 2) + hooked["b"]

    grads = jax.grad(loss)(params)
    _assert_close(grads["w"], 10 * 2 * X)
    _assert_close(grads["b"], 0.0)


def test_nested_hooks_run_outermost_first():
    order = []

    def inner(g):
        order.append("inner")
        return g + 1

    def outer(g):
        order.append("outer")
        return 2 * g

    grad = jax.grad(_cube_loss(lambda x: jaxgrad.hook(jaxgrad.hook(x, inner), outer)))(X)
    assert order == ["outer", "inner"]
    _assert_close(grad, 2 * 3 * X ** 2 + 1)


def test_hook_inside_hook_fn():
    # fn itself uses a hook: its own backward is a second-order pass.
    def fn(g):
        return jaxgrad.hook(g, lambda h: 5 * h) * 2

    f = _cube_loss(lambda x: jaxgrad.hook(x, fn))
    _assert_close(jax.grad(f)(X), 2 * 3 * X ** 2)
    # M'(x): outer cotangent 1 → fn' = 2·(hook 5) = 10 → ·6x → fn again ×2
    _assert_close(_second(f)(X), 2 * (10 * 6 * X))


def test_hook_grad_of_grad_fires_on_both_passes():
    calls = []

    def fn(g):
        calls.append(g)
        return 2 * g

    f = _cube_loss(lambda x: jaxgrad.hook(x, fn))
    _assert_close(_second(f)(X), 2 * 2 * 6 * X)  # as torch with create_graph=True
    assert len(calls) == 2


def test_hook_nonlinear_replacement_is_differentiated():
    # x̄ = (ȳ)², ȳ = 3h²: first order 9x⁴; second order: d/dȳ = 2ȳ, ·6x, then
    # the outer cotangent 2·3x²·6x = 36x³ is squared by fn again.
    f = _cube_loss(lambda x: jaxgrad.hook(x, lambda g: g ** 2))
    _assert_close(jax.grad(f)(X), 9 * X ** 4)
    _assert_close(_second(f)(X), (36 * X ** 3) ** 2)


def test_hook_preserves_float32():
    x = X.astype(jnp.float32)
    g = jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, lambda g: g * 2)))(x)
    assert g.dtype == jnp.float32


def test_hook_wrong_shape_is_a_clear_error():
    f = _cube_loss(lambda x: jaxgrad.hook(x, lambda g: g[:2]))
    with pytest.raises(ValueError, match=re.escape(
            "hook: `fn` (<lambda>) must return None or a cotangent of the same shape "
            "and dtype as its argument; for x it returned shape (2,) float64, "
            "expected shape (3,) float64")):
        jax.grad(f)(X)


def test_hook_wrong_dtype_is_a_clear_error():
    def halve(g):
        return g.astype(jnp.float32)

    with pytest.raises(TypeError, match=r"hook: `fn` \(halve\) .* returned shape "
                       r"\(3,\) float32, expected shape \(3,\) float64"):
        jax.jit(jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, halve))))(X)


def test_hook_wrong_structure_is_a_clear_error():
    with pytest.raises(TypeError, match=r"hook: `fn` \(<lambda>\) must return None or "
                       r"a cotangent with the structure of its argument"):
        jax.grad(_cube_loss(lambda x: jaxgrad.hook(x, lambda g: (g, g))))(X)


def test_hook_argument_errors():
    with pytest.raises(TypeError, match=r"hook: `fn` must be callable, got int 3"):
        jaxgrad.hook(X, 3)
    with pytest.raises(TypeError, match=r"hook: `x` must have a floating dtype"):
        jaxgrad.hook(jnp.arange(3), lambda g: g)
    with pytest.raises(TypeError, match=r"hook: `x\['a'\]` must be an array, got str"):
        jaxgrad.hook({"a": "text"}, lambda g: g)
    with pytest.raises(ValueError, match=r"hook: `x` must be an array or a pytree of "
                       r"arrays, got \(\) \(no array leaves\)"):
        jaxgrad.hook((), lambda g: g)


# --------------------------------------------------------------------------
# print_grad


def test_print_grad_eager(capsys):
    jax.grad(_cube_loss(lambda x: jaxgrad.print_grad(x, "dL/dx")))(X)
    jax.effects_barrier()
    assert capsys.readouterr().out == f"dL/dx: {np.asarray(3 * X ** 2)}\n"


def test_print_grad_under_jit_prints_every_run(capsys):
    f = jax.jit(jax.grad(_cube_loss(lambda x: jaxgrad.print_grad(x, "g"))))
    f(X)
    f(2 * X)
    jax.effects_barrier()
    out = capsys.readouterr().out
    assert out == f"g: {np.asarray(3 * X ** 2)}\ng: {np.asarray(12 * X ** 2)}\n"


def test_print_grad_under_vmap_prints_each_example(capsys):
    xs = jnp.array([1.0, 2.0])
    grads = jax.vmap(jax.grad(lambda x: jaxgrad.print_grad(x, "v") ** 3))(xs)
    jax.effects_barrier()
    _assert_close(grads, 3 * xs ** 2)
    assert sorted(capsys.readouterr().out.splitlines()) == ["v: 12.0", "v: 3.0"]


def test_print_grad_keeps_value_and_gradient():
    f = _cube_loss(lambda x: jaxgrad.print_grad(x, "quiet"))
    _assert_close(jax.grad(f)(X), 3 * X ** 2)
    _assert_close(_second(f)(X), 6 * X)


def test_print_grad_label_must_be_str():
    with pytest.raises(TypeError, match=r"print_grad: `label` must be a str, got int 3"):
        jaxgrad.print_grad(X, 3)


# --------------------------------------------------------------------------
# scale_grad and reverse_grad


@pytest.mark.parametrize("jit", [False, True])
def test_scale_grad_first_and_second_order(jit):
    f = _cube_loss(lambda x: jaxgrad.scale_grad(x, 3.0))
    first, second = jax.grad(f), _second(f)
    if jit:
        first, second = jax.jit(first), jax.jit(second)
    _assert_close(jaxgrad.scale_grad(X, 3.0), X)
    _assert_close(first(X), 3 * 3 * X ** 2)
    _assert_close(second(X), 3 * 3 * 6 * X)


def test_scale_grad_array_factor_is_constant():
    c = jnp.array([1.0, 10.0, -1.0])

    def loss(x, c):
        return jnp.sum(jaxgrad.scale_grad(x, c) ** 3)

    gx, gc = jax.jit(jax.grad(loss, argnums=(0, 1)))(X, c)
    _assert_close(gx, c * 3 * X ** 2)
    _assert_close(gc, jnp.zeros(3))
    # c stays a constant at second order too
    second_c = jax.grad(lambda x, c: jnp.sum(jax.grad(loss)(x, c)), argnums=1)(X, c)
    _assert_close(second_c, jnp.zeros(3))


def test_scale_grad_broadcast_factor_under_vmap():
    xs = jnp.stack([X, 2 * X])
    cs = jnp.array([2.0, -0.5])
    grads = jax.vmap(jax.grad(lambda x, c: jnp.sum(jaxgrad.scale_grad(x, c) ** 3)))(xs, cs)
    _assert_close(grads, cs[:, None] * 3 * xs ** 2)


def test_scale_grad_backward_is_self_adjoint():
    # The backward v ↦ c·v, differentiated w.r.t. its cotangent input, is c·(.) again.
    c = jnp.array([2.0, 3.0, 4.0])
    u = jnp.array([1.0, -1.0, 0.5])

    def backward(g):
        return jax.vjp(lambda x: jaxgrad.scale_grad(x, c), X)[1](g)[0]

    _, vjp_of_backward = jax.vjp(backward, jnp.ones(3))
    _assert_close(vjp_of_backward(u)[0], c * u)


def test_scale_grad_pytree_and_float32():
    params = (X.astype(jnp.float32), jnp.ones((2, 3), jnp.float32))
    grads = jax.grad(lambda p: sum(jnp.sum(v ** 2) for v in jaxgrad.scale_grad(p, 0.5)))(params)
    assert all(g.dtype == jnp.float32 for g in grads)
    _assert_close(grads[0], 0.5 * 2 * params[0])
    _assert_close(grads[1], jnp.ones((2, 3)))


def test_scale_grad_float64_factor_keeps_float32_gradient():
    x = X.astype(jnp.float32)
    g = jax.grad(lambda x: jnp.sum(jaxgrad.scale_grad(x, jnp.float64(2.0) * jnp.ones(3))))(x)
    assert g.dtype == jnp.float32
    _assert_close(g, 2 * np.ones(3))


def test_scale_grad_errors():
    with pytest.raises(TypeError, match=r"scale_grad: `c` must be a Python number, a "
                       r"list of numbers or a float array, got str 'x'"):
        jaxgrad.scale_grad(X, "x")
    with pytest.raises(TypeError, match=r"scale_grad: `c` must be a Python number, a "
                       r"list of numbers or a float array, got bool True"):
        jaxgrad.scale_grad(X, True)
    with pytest.raises(ValueError, match=re.escape(
            "scale_grad: `c` of shape (2,) must broadcast to the shape of `x` (3,)")):
        jaxgrad.scale_grad(X, jnp.ones(2))
    with pytest.raises(ValueError, match=re.escape(
            "scale_grad: `c` of shape (2, 3) must broadcast to the shape of `x` (3,)")):
        jaxgrad.scale_grad(X, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"scale_grad: `c` must have a floating dtype"):
        jaxgrad.scale_grad(X, jnp.ones(3, jnp.int32))


@pytest.mark.parametrize("jit", [False, True])
def test_reverse_grad_first_and_second_order(jit):
    f = _cube_loss(jaxgrad.reverse_grad)
    first, second = jax.grad(f), _second(f)
    if jit:
        first, second = jax.jit(first), jax.jit(second)
    _assert_close(jaxgrad.reverse_grad(X), X)
    _assert_close(first(X), -3 * X ** 2)
    _assert_close(second(X), 6 * X)  # (-1)·(-1): reversed on both passes


def test_reverse_grad_min_max():
    # Domain-adversarial toy: features f = a·x, classifier loss ℓ = (b·f - t)².
    # With the reversal layer one gradient descends ℓ in b and ascends it in a.
    x, t = 2.0, 1.0

    def loss(a, b, reverse):
        f = a * jnp.asarray(x)
        f = jaxgrad.reverse_grad(f) if reverse else f
        return (b * f - t) ** 2

    ga, gb = jax.grad(loss, argnums=(0, 1))(0.3, 0.7, True)
    pa, pb = jax.grad(loss, argnums=(0, 1))(0.3, 0.7, False)
    _assert_close(gb, pb)
    _assert_close(ga, -pa)
    _assert_close(pa, 2 * (0.7 * 0.3 * x - t) * 0.7 * x)


def test_reverse_grad_vmap_pytree_float32():
    xs = jnp.ones((4, 3), jnp.float32)
    grads = jax.vmap(jax.grad(lambda x: jnp.sum(jaxgrad.reverse_grad({"a": x})["a"])))(xs)
    assert grads.dtype == jnp.float32
    _assert_close(grads, -np.ones((4, 3)))


def test_reverse_grad_rejects_integers():
    with pytest.raises(TypeError, match=r"reverse_grad: `x` must have a floating dtype"):
        jaxgrad.reverse_grad(jnp.arange(3))
