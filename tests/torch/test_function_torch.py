"""torch.autograd.Function and Tensor.register_hook ports, against real torch.

Each case is written twice — as a ``torch.autograd.Function`` (or a torch hook)
and as a ``jaxgrad.Function`` (or a jaxgrad hook) — and the outputs, the
first-order gradients and the second-order gradients (torch with
``create_graph=True``) are compared in float64. The second order matters: both
frameworks must apply the user's rule again on the forward path, which shows
when the rule is not the true derivative (straight-through, doubled rules,
hooks).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxgrad
from jaxgrad._checking._tolerance import max_errors, tolerance

from ._parity import check_parity

TOL = tolerance("float64")


def _close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    _, rel = max_errors(ours, theirs)
    assert rel <= TOL, f"{what}: rel error {rel:.3e}"


def _torch_orders(loss_fn, x, u):
    """(∇L, ∇⟨∇L, u⟩) in torch, with create_graph=True for the second."""
    xt = torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad(loss_fn(xt), xt, create_graph=True)
    (g2,) = torch.autograd.grad((g1 * torch.tensor(np.asarray(u))).sum(), xt)
    return g1.detach().numpy(), g2.numpy()


def _jax_orders(loss_fn, x, u):
    first = jax.grad(loss_fn)
    second = jax.grad(lambda x: jnp.sum(first(x) * u))
    return first(x), second(x)


def _compare_orders(name, jax_loss, torch_loss, x, u):
    ours, theirs = _jax_orders(jax_loss, x, u), _torch_orders(torch_loss, x, u)
    _close(ours[0], theirs[0], f"{name} first order")
    _close(ours[1], theirs[1], f"{name} second order")


@pytest.fixture
def xu(rng):
    return jnp.asarray(rng.standard_normal(5)), jnp.asarray(rng.standard_normal(5))


# --------------------------------------------------------------------------
# torch's documented examples, ported line by line.


class TorchExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class JaxExp(jaxgrad.Function):
    @staticmethod
    def forward(ctx, x):
        y = jnp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class TorchLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w, b)
        return x.mm(w.t()) + b.unsqueeze(0).expand(x.shape[0], w.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, w, _ = ctx.saved_tensors
        gx = grad.mm(w) if ctx.needs_input_grad[0] else None
        gw = grad.t().mm(x) if ctx.needs_input_grad[1] else None
        gb = grad.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class JaxLinear(jaxgrad.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w, b)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, grad):
        x, w, _ = ctx.saved_tensors
        gx = grad @ w if ctx.needs_input_grad[0] else None
        gw = grad.T @ x if ctx.needs_input_grad[1] else None
        gb = grad.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


def test_exp_parity():
    check_parity("Exp", JaxExp.apply, TorchExp.apply, {"x": (3, 4)})


def test_linear_parity():
    check_parity("LinearFunction", JaxLinear.apply, TorchLinear.apply,
                 {"x": (4, 3), "w": (2, 3), "b": (2,)})


def test_mul_constant_parity():
    class TorchMulConstant(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, constant):
            ctx.constant = constant
            return x * constant

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.constant, None

    class JaxMulConstant(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x, constant):
            ctx.constant = constant
            return x * constant

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.constant, None

    check_parity("MulConstant", lambda x: JaxMulConstant.apply(x, -1.5),
                 lambda x: TorchMulConstant.apply(x, -1.5), {"x": (2, 5)})


def test_straight_through_and_doubled_rules_every_order(xu):
    class TorchSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.round(x) * x

        @staticmethod
        def backward(ctx, grad):  # pretends d(round(x)·x)/dx = 2x
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    class JaxSTE(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return jnp.round(x) * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x, u = 2 * xu[0], xu[1]
    _compare_orders("STE", lambda x: jnp.sum(jnp.sin(JaxSTE.apply(x))),
                    lambda x: torch.sin(TorchSTE.apply(x)).sum(), x, u)


def test_two_outputs_with_a_non_differentiable_one(xu):
    class TorchSort(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            values, order = torch.sort(x)
            ctx.mark_non_differentiable(order)
            ctx.save_for_backward(order)
            return values, order

        @staticmethod
        def backward(ctx, grad_values, grad_order):
            (order,) = ctx.saved_tensors
            return torch.zeros_like(grad_values).index_add(0, order, grad_values)

    class JaxSort(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            order = jnp.argsort(x)
            ctx.mark_non_differentiable(order)
            ctx.save_for_backward(order)
            return x[order], order

        @staticmethod
        def backward(ctx, grad_values, grad_order):
            (order,) = ctx.saved_tensors
            return jnp.zeros_like(grad_values).at[order].add(grad_values)

    weights = np.arange(1.0, 6.0)
    _compare_orders(
        "sort",
        lambda x: jnp.sum(weights * JaxSort.apply(x)[0] ** 3),
        lambda x: (torch.tensor(weights) * TorchSort.apply(x)[0] ** 3).sum(), *xu)


# --------------------------------------------------------------------------
# Tensor.register_hook vs jaxgrad.hook / scale_grad / reverse_grad.


def _torch_hooked(fn):
    """x -> Σ sin(h)·h² with h = x.clone() carrying the hook ``fn``."""
    def loss(x):
        h = x.clone()
        h.register_hook(fn)
        return (torch.sin(h) * h ** 2).sum()
    return loss


def _jax_hooked(wrap):
    def loss(x):
        h = wrap(x)
        return jnp.sum(jnp.sin(h) * h ** 2)
    return loss


@pytest.mark.parametrize("name, torch_fn, jax_wrap", [
    ("hook doubles", lambda g: 2 * g, lambda x: jaxgrad.hook(x, lambda g: 2 * g)),
    ("hook keeps", lambda g: None, lambda x: jaxgrad.hook(x, lambda g: None)),
    ("hook squares", lambda g: g ** 2, lambda x: jaxgrad.hook(x, lambda g: g ** 2)),
    ("scale_grad", lambda g: 0.25 * g, lambda x: jaxgrad.scale_grad(x, 0.25)),
    ("reverse_grad", lambda g: -g, jaxgrad.reverse_grad),
])
def test_register_hook_parity(xu, name, torch_fn, jax_wrap):
    _compare_orders(name, _jax_hooked(jax_wrap), _torch_hooked(torch_fn), *xu)


def test_hook_on_a_shared_weight(rng):
    # A weight used twice, with a hook on one use only: torch hooks on the
    # intermediate view, jaxgrad hooks on the same use; the sum must agree.
    w, x = rng.standard_normal((3, 3)), rng.standard_normal(3)

    def torch_loss(wt):
        first = wt.clone()
        first.register_hook(lambda g: 3 * g)
        return torch.tanh(wt @ torch.tanh(first @ torch.tensor(x))).sum()

    def jax_loss(w):
        first = jaxgrad.hook(w, lambda g: 3 * g)
        return jnp.sum(jnp.tanh(w @ jnp.tanh(first @ x)))

    _compare_orders("shared weight hook", jax_loss, torch_loss, jnp.asarray(w),
                    jnp.asarray(rng.standard_normal((3, 3))))


def test_saved_output_carries_the_rule_at_second_order(xu):
    # backward doubles exp's derivative and reads the saved *output*: at second
    # order torch differentiates that saved output through the doubled rule.
    class TorchDoubledExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return 2 * grad * y

    class JaxDoubledExp(jaxgrad.Function):
        @staticmethod
        def forward(ctx, x):
            y = jnp.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return 2 * grad * y

    _compare_orders("saved output", lambda x: jnp.sum(JaxDoubledExp.apply(x)),
                    lambda x: TorchDoubledExp.apply(x).sum(), *xu)
