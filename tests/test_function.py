"""jaxgrad.Function against JAX autodiff of plain jnp and hand-computed values.

Functions whose ``backward`` is the exact derivative must agree with
``jax.grad`` of the same forward written in jnp, at first and second order
(``check_grads`` checks the second order against finite differences too).
Functions whose ``backward`` is deliberately not the derivative (a
straight-through estimator, a doubled rule) show that every order runs the
user's rule, as torch does; their expected values are computed by hand.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxgrad

X = jnp.array([0.5, -1.0, 2.0])


def _assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected),
                               rtol=1e-12, atol=1e-12)


class Exp(jaxgrad.Function):
    @staticmethod
    def forward(ctx, x):
        y = jnp.exp(x)
        ctx.save_for_backward(y)  # a saved output
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Linear(jaxgrad.Function):
    """torch's documented LinearFunction: y = x wᵀ + b."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        gx = grad @ w if ctx.needs_input_grad[0] else None
        gw = grad.T @ x if ctx.needs_input_grad[1] else None
        gb = grad.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class MulConstant(jaxgrad.Function):
    """A static Python number, kept as a plain ctx attribute."""

    @staticmethod
    def forward(ctx, x, constant):
        ctx.constant = constant
        return x * constant

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.constant, None


class RoundSTE(jaxgrad.Function):
    """Straight-through estimator: round forward, identity backward."""

    @staticmethod
    def forward(ctx, x):
        return jnp.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class TopAndIndex(jaxgrad.Function):
    """Two outputs: the max (differentiable) and its index (integer)."""

    @staticmethod
    def forward(ctx, x):
        index = jnp.argmax(x)
        ctx.index = index  # an array attribute: travels as a residual
        ctx.size = x.shape[0]
        return x[index], index

    @staticmethod
    def backward(ctx, grad_top, grad_index):
        assert grad_index.dtype == ctx.index.dtype and grad_index.shape == ()
        return jnp.zeros(ctx.size, grad_top.dtype).at[ctx.index].set(grad_top)


def _linear_args(rng):
    return (jnp.asarray(rng.standard_normal((4, 3))), jnp.asarray(rng.standard_normal((2, 3))),
            jnp.asarray(rng.standard_normal(2)))


# --------------------------------------------------------------------------
# Values against autodiff of plain jnp.


def test_exp_matches_autodiff_first_and_second_order():
    plain = lambda x: jnp.sum(jnp.sin(jnp.exp(x)))  # noqa: E731
    ours = lambda x: jnp.sum(jnp.sin(Exp.apply(x)))  # noqa: E731
    _assert_close(ours(X), plain(X))
    _assert_close(jax.grad(ours)(X), jax.grad(plain)(X))
    second = lambda f: jax.grad(lambda x: jnp.sum(jax.grad(f)(x) ** 2))  # noqa: E731
    _assert_close(second(ours)(X), second(plain)(X))
    check_grads(ours, (X,), order=2, modes=["rev"])


def test_linear_matches_autodiff(rng):
    args = _linear_args(rng)
    plain = lambda x, w, b: jnp.sum(jnp.tanh(x @ w.T + b))  # noqa: E731
    ours = lambda x, w, b: jnp.sum(jnp.tanh(Linear.apply(x, w, b)))  # noqa: E731
    for got, want in zip(jax.grad(ours, (0, 1, 2))(*args), jax.grad(plain, (0, 1, 2))(*args)):
        _assert_close(got, want)
    check_grads(ours, args, order=2, modes=["rev"])


def test_needs_input_grad_follows_argnums(rng):
    seen = []

    class Spy(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x, w, k):
            return x * w * k

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.needs_input_grad)
            return None, None, None

    x, w = jnp.ones(2), jnp.ones(2)
    jax.grad(lambda w: jnp.sum(Spy.apply(x, w, 3.0)))(w)
    jax.grad(lambda x, w: jnp.sum(Spy.apply(x, w, 3.0)), (0, 1))(x, w)
    assert seen == [(False, True, False), (True, True, False)]


def test_linear_under_jit_and_vmap(rng):
    x, w, b = _linear_args(rng)
    grad_w = jax.grad(lambda w, x: jnp.sum(Linear.apply(x, w, b) ** 2))
    plain = jax.grad(lambda w, x: jnp.sum((x @ w.T + b) ** 2))
    _assert_close(jax.jit(grad_w)(w, x), plain(w, x))
    # vmap over examples: forward/backward see x of shape (1, 3)
    per_example = jax.vmap(grad_w, in_axes=(None, 0))(w, x[:, None])
    _assert_close(per_example, jax.vmap(plain, in_axes=(None, 0))(w, x[:, None]))


def test_static_arguments_get_none():
    grad = jax.grad(lambda x: jnp.sum(MulConstant.apply(x, 2.5) ** 2))(X)
    _assert_close(grad, 2 * 2.5 * X * 2.5)
    assert MulConstant.apply(X, 2.5).dtype == X.dtype


def test_static_strings_and_tuples_pass_through():
    class Reduce(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x, how, axes):
            ctx.how, ctx.shape = how, x.shape
            return jnp.sum(x, axes) if how == "sum" else jnp.mean(x, axes)

        @staticmethod
        def backward(ctx, grad):
            scale = 1.0 if ctx.how == "sum" else 1.0 / ctx.shape[0]
            return jnp.broadcast_to(grad * scale, ctx.shape), None, None

    m = jnp.arange(6.0).reshape(3, 2)
    _assert_close(jax.grad(lambda m: jnp.sum(Reduce.apply(m, "mean", (0,))))(m),
                  jnp.full((3, 2), 1 / 3))
    _assert_close(jax.grad(lambda m: jnp.sum(Reduce.apply(m, "sum", (0,))))(m),
                  jnp.ones((3, 2)))


def test_none_gradient_means_zero():
    class Half(jaxgrad.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    ga, gb = jax.grad(lambda a, b: jnp.sum(Half.apply(a, b)), (0, 1))(X, X)
    _assert_close(ga, jnp.ones(3))
    _assert_close(gb, jnp.zeros(3))


def test_extra_trailing_none_is_allowed():
    class Extra(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad, None, None

    _assert_close(jax.grad(lambda x: jnp.sum(Extra.apply(x)))(X), 2 * jnp.ones(3))


def test_multiple_outputs_and_integer_output():
    top, index = TopAndIndex.apply(X)
    assert int(index) == 2 and float(top) == 2.0
    grad = jax.jit(jax.grad(lambda x: TopAndIndex.apply(x)[0] * 3))(X)
    _assert_close(grad, jnp.array([0.0, 0.0, 3.0]))


def test_grad_of_each_output():
    class SinCos(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return jnp.sin(x), jnp.cos(x)

        @staticmethod
        def backward(ctx, grad_sin, grad_cos):
            (x,) = ctx.saved_tensors
            return grad_sin * jnp.cos(x) - grad_cos * jnp.sin(x)

    def ours(x):
        s, c = SinCos.apply(x)
        return jnp.sum(2 * s + c ** 2)

    plain = lambda x: jnp.sum(2 * jnp.sin(x) + jnp.cos(x) ** 2)  # noqa: E731
    _assert_close(jax.grad(ours)(X), jax.grad(plain)(X))
    # only one output used: the other's gradient arrives as zeros
    _assert_close(jax.grad(lambda x: jnp.sum(SinCos.apply(x)[1]))(X), -jnp.sin(X))


def test_mark_non_differentiable_gives_zero_gradient():
    received = []

    class Sorted(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            order = jnp.argsort(x)
            ranks = order.astype(x.dtype)  # a float output, marked
            ctx.mark_non_differentiable(ranks)
            ctx.order = order
            return x[order], ranks

        @staticmethod
        def backward(ctx, grad_values, grad_ranks):
            received.append(grad_ranks)
            return jnp.zeros_like(grad_values).at[ctx.order].set(grad_values)

    grad = jax.grad(lambda x: jnp.sum(jnp.arange(1.0, 4.0) * sum(Sorted.apply(x))))(X)
    _assert_close(received[0], jnp.zeros(3))  # the ranks' real cotangent is ignored
    _assert_close(grad, jnp.array([2.0, 1.0, 3.0]))  # order of X is [1, 0, 2]


def test_array_attributes_in_containers_are_residuals():
    class Masked(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.state = {"mask": x > 0, "scale": (2 * x, "why")}
            return jnp.where(x > 0, x, 0.0)

        @staticmethod
        def backward(ctx, grad):
            assert ctx.state["scale"][1] == "why"
            return jnp.where(ctx.state["mask"], grad, 0.0) + 0 * ctx.state["scale"][0]

    f = jax.jit(jax.grad(lambda x: jnp.sum(Masked.apply(x) * 3)))
    _assert_close(f(X), jnp.array([3.0, 0.0, 3.0]))


def test_integer_input_gradient_is_ignored():
    class Gather(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x, index):
            ctx.save_for_backward(index)
            ctx.size = x.shape[0]
            return x[index]

        @staticmethod
        def backward(ctx, grad):
            (index,) = ctx.saved_tensors
            return jnp.zeros(ctx.size).at[index].add(grad), jnp.ones(7)  # ignored

    index = jnp.array([2, 2, 0])
    _assert_close(jax.grad(lambda x: jnp.sum(Gather.apply(x, index)))(X),
                  jnp.array([1.0, 0.0, 2.0]))


def test_numpy_inputs_and_float32():
    x = np.array([1.0, 2.0], np.float32)
    y = Exp.apply(x)
    assert isinstance(y, jax.Array) and y.dtype == jnp.float32
    g = jax.grad(lambda x: jnp.sum(Exp.apply(x)))(jnp.asarray(x))
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, np.exp(x), rtol=1e-6)


def test_no_array_arguments_runs_forward():
    class Const(jaxgrad.Function):
        @staticmethod
        def forward(ctx, n):
            return jnp.arange(float(n))

        @staticmethod
        def backward(ctx, grad):
            return None

    _assert_close(Const.apply(3), jnp.array([0.0, 1.0, 2.0]))


# --------------------------------------------------------------------------
# The user's rule at every order (torch's create_graph=True semantics).


def test_straight_through_estimator_every_order():
    # L = Σ q², q = round(x) with backward = identity.
    # ∂L/∂x = 2q (STE); outer pass: d(2q)/dx through the STE again = 2.
    x = jnp.array([0.4, 1.6, -2.2])
    f = lambda x: jnp.sum(RoundSTE.apply(x) ** 2)  # noqa: E731
    _assert_close(jax.grad(f)(x), 2 * jnp.round(x))
    _assert_close(jax.grad(lambda x: jnp.sum(jax.grad(f)(x)))(x), 2 * jnp.ones(3))


def test_doubled_rule_on_saved_output_every_order():
    # Cube with a doubled backward 6x²ḡ; L = Σ y², y = Cube(x).
    # ∂L/∂x = 2y·6x² = 12x⁵. M = Σ 12·y·x²: dM/dx = 12·(dy/dx)·x² + 24·y·x
    # with dy/dx the doubled rule 6x²: 72x⁴ + 24x⁴ = 96x⁴ (torch gives the same).
    class DoubledCube(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 6 * x ** 2 * grad

    f = lambda x: jnp.sum(DoubledCube.apply(x) ** 2)  # noqa: E731
    _assert_close(jax.grad(f)(X), 12 * X ** 5)
    gg = jax.jit(jax.grad(lambda x: jnp.sum(jax.grad(f)(x))))
    _assert_close(gg(X), 96 * X ** 4)


def test_vmap_of_grad_of_grad():
    xs = jnp.stack([X, X + 1])
    gg = jax.vmap(jax.grad(lambda x: jnp.sum(jax.grad(lambda x: jnp.sum(Exp.apply(x) ** 2))(x))))
    _assert_close(gg(xs), 4 * jnp.exp(2 * xs))


# --------------------------------------------------------------------------
# Errors and their wording.


def _good_backward(ctx, grad):
    return grad


def _make(name, forward=None, backward=None):
    body = {}
    if forward is not None:
        body["forward"] = forward
    if backward is not None:
        body["backward"] = backward
    return type(name, (jaxgrad.Function,), body)


def _grad_of(cls, *args):
    return jax.grad(lambda x: jnp.sum(cls.apply(x, *args)))(X)


def test_missing_methods():
    with pytest.raises(TypeError, match=re.escape(
            "NoForward: a jaxgrad.Function subclass must define `forward` as a "
            "@staticmethod, `forward(ctx, ...)`")):
        _make("NoForward", backward=staticmethod(_good_backward)).apply(X)
    with pytest.raises(TypeError, match=r"NoBackward: a jaxgrad.Function subclass must "
                       r"define `backward`"):
        _make("NoBackward", forward=staticmethod(lambda ctx, x: x)).apply(X)
    with pytest.raises(TypeError, match=r"Function: a jaxgrad.Function subclass must "
                       r"define `forward`"):
        jaxgrad.Function.apply(X)


def test_methods_must_be_static():
    plain = _make("PlainForward", forward=lambda ctx, x: x,
                  backward=staticmethod(_good_backward))
    with pytest.raises(TypeError, match=re.escape(
            "PlainForward.forward must be a @staticmethod taking `ctx` first, as in "
            "torch.autograd.Function; got function")):
        plain.apply(X)
    klass = _make("ClassBackward", forward=staticmethod(lambda ctx, x: x),
                  backward=classmethod(_good_backward))
    with pytest.raises(TypeError, match=r"ClassBackward.backward must be a "
                       r"@staticmethod .* got classmethod"):
        klass.apply(X)


def test_wrong_number_of_gradients():
    too_few = _make("TooFew", forward=staticmethod(lambda ctx, x, y: x * y),
                    backward=staticmethod(lambda ctx, g: g))
    with pytest.raises(ValueError, match=re.escape(
            "TooFew.backward returned 1 gradient(s), but TooFew.apply received 2 "
            "input(s); return one per input (None for a non-array input or a zero "
            "gradient)")):
        _grad_of(too_few, X)
    too_many = _make("TooMany", forward=staticmethod(lambda ctx, x: 2 * x),
                     backward=staticmethod(lambda ctx, g: (g, g)))
    with pytest.raises(ValueError, match=r"TooMany.backward returned 2 gradient\(s\), "
                       r"but TooMany.apply received 1 input\(s\)"):
        _grad_of(too_many)


def test_gradient_for_static_input():
    cls = _make("StaticGrad", forward=staticmethod(lambda ctx, x, k: x * k),
                backward=staticmethod(lambda ctx, g: (g, g)))
    with pytest.raises(TypeError, match=re.escape(
            "StaticGrad.backward returned a gradient for input 1, which is not an "
            "array (float 2.0); return None for it")):
        _grad_of(cls, 2.0)


def test_gradient_of_wrong_shape_dtype_or_type():
    shape = _make("BadShape", forward=staticmethod(lambda ctx, x, y: x * y),
                  backward=staticmethod(lambda ctx, g: (g, g[:2])))
    with pytest.raises(ValueError, match=re.escape(
            "BadShape.backward: the gradient for input 1 has shape (2,), expected "
            "(3,) (the shape of input 1)")):
        jax.grad(lambda y: jnp.sum(shape.apply(X, y)))(X)
    dtype = _make("BadDtype", forward=staticmethod(lambda ctx, x: 2 * x),
                  backward=staticmethod(lambda ctx, g: g.astype(jnp.float32)))
    with pytest.raises(TypeError, match=re.escape(
            "BadDtype.backward: the gradient for input 0 has dtype float32, expected "
            "float64 (the dtype of input 0)")):
        jax.jit(lambda x: _grad_of(dtype))(X)
    kind = _make("BadType", forward=staticmethod(lambda ctx, x: 2 * x),
                 backward=staticmethod(lambda ctx, g: [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"BadType.backward returned 3 gradient"):
        _grad_of(kind)
    scalar = _make("BadScalar", forward=staticmethod(lambda ctx, x: 2 * x),
                   backward=staticmethod(lambda ctx, g: (2.0,)))
    with pytest.raises(TypeError, match=re.escape(
            "BadScalar.backward: the gradient for input 0 must be an array or None, "
            "got float 2.0")):
        _grad_of(scalar)


def test_forward_must_return_arrays():
    listing = _make("ListOut", forward=staticmethod(lambda ctx, x: [x, x]),
                    backward=staticmethod(_good_backward))
    with pytest.raises(TypeError, match=re.escape(
            "ListOut.forward must return an array or a tuple of arrays, got list")):
        listing.apply(X)
    number = _make("NumberOut", forward=staticmethod(lambda ctx, x: (x, 3)),
                   backward=staticmethod(_good_backward))
    with pytest.raises(TypeError, match=r"NumberOut.forward must return an array or a "
                       r"tuple of arrays, got int 3 \(output 1\)"):
        number.apply(X)


def test_argument_errors():
    with pytest.raises(TypeError, match=re.escape(
            "Exp.apply: input 0 is a tuple holding arrays; pass each array as its own "
            "argument")):
        Exp.apply((X, X))
    with pytest.raises(TypeError, match=re.escape(
            "Exp.apply takes positional arguments only (as in torch), got keyword(s) "
            "['x']")):
        Exp.apply(x=X)


def test_save_for_backward_rejects_non_arrays():
    def forward(ctx, x):
        ctx.save_for_backward(x, 3)
        return x

    cls = _make("SavesInt", forward=staticmethod(forward),
                backward=staticmethod(_good_backward))
    with pytest.raises(TypeError, match=re.escape(
            "SavesInt: ctx.save_for_backward accepts arrays or None, got int 3 at "
            "position 1; keep non-array data as a ctx attribute")):
        cls.apply(X)
