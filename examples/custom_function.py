"""Add, split and max written as ``jaxgrad.Function``s, the torch way.

Run: ``python examples/custom_function.py``. Prints each check and exits with
status 1 if any fails.

Each Function states its own backward rule, the way one would write a
``torch.autograd.Function``:

    Add:    c = a + b            ā = c̄,  b̄ = c̄
    Split:  (u, v) = (x, x)      x̄ = ū + v̄     (a value used twice: the sum)
    Max:    m = max(a, b)        ā = m̄·[a > b] + ½m̄·[a = b],  b̄ = m̄·[b > a] + ½m̄·[a = b]
            (elementwise; ties split evenly, as torch.maximum and jnp.maximum do)

They are composed into a small network and every gradient is compared with
JAX's own autodiff of the same network written in plain jnp — first order,
under ``jax.jit`` and ``jax.vmap``, and second order (the rules are applied
again and the jnp code inside them is differentiated, as torch does with
``create_graph=True``).
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxgrad  # noqa: E402

RTOL = 1e-12  # float64 throughout
FAILURES: list[str] = []


def check(name: str, actual, expected) -> bool:
    """Print one comparison; remember it if ``actual`` is not ``expected``."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    ok = actual.shape == expected.shape and np.allclose(actual, expected, rtol=RTOL,
                                                        atol=RTOL)
    error = np.max(np.abs(actual - expected)) if actual.shape == expected.shape else np.inf
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<46} max |difference| {error:.1e}")
    if not ok:
        FAILURES.append(name)
    return ok


class Add(jaxgrad.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Split(jaxgrad.Function):
    @staticmethod
    def forward(ctx, x):
        return x, x

    @staticmethod
    def backward(ctx, grad_u, grad_v):
        return grad_u + grad_v


class Max(jaxgrad.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return jnp.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = jnp.where(a > b, 1.0, jnp.where(a == b, 0.5, 0.0)).astype(grad.dtype)
        return grad * share_a, grad * (1 - share_a)


def network(add, split, maximum, x, y):
    """L = Σ max(u·y, sin(v) + y) with (u, v) = split(x + y)."""
    u, v = split(add(x, y))
    return jnp.sum(maximum(u * y, add(jnp.sin(v), y)))


def ours(x, y):
    return network(Add.apply, Split.apply, Max.apply, x, y)


def plain(x, y):
    return network(jnp.add, lambda s: (s, s), jnp.maximum, x, y)


def main() -> int:
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.standard_normal(6)), jnp.asarray(rng.standard_normal(6))
    y = y.at[0].set(0.0).at[1].set(1.0)  # a tie in max: at position 0 both sides are 0
    x = x.at[0].set(0.0)

    print("1. single Functions against their definitions")
    check("Add.apply gradients (c̄, c̄)", jax.grad(lambda a, b: jnp.sum(3 * Add.apply(a, b)),
                                               (0, 1))(x, y), (3 * jnp.ones(6),) * 2)
    split_grad = jax.grad(lambda x: jnp.sum(jnp.prod(jnp.stack(Split.apply(x)), 0)))(x)
    check("Split: x·x through split gives 2x", split_grad, 2 * x)
    check("Max at a tie splits ½ / ½", jax.grad(lambda a: jnp.sum(Max.apply(a, a * 0)))(x * 0),
          jnp.full(6, 0.5))

    print("2. L = Σ max(u·y, sin(v) + y), (u, v) = split(x + y), vs jnp autodiff")
    check("value", ours(x, y), plain(x, y))
    for name, f in [("dL/dx, dL/dy", jax.grad), ("dL/dx, dL/dy under jit",
                                                  lambda f, a: jax.jit(jax.grad(f, a)))]:
        got = f(ours, (0, 1))(x, y)
        want = jax.grad(plain, (0, 1))(x, y)
        check(name, jnp.stack(got), jnp.stack(want))
    batch = jnp.stack([x, 2 * x])
    check("dL/dx under vmap", jax.vmap(jax.grad(ours), (0, None))(batch, y),
          jax.vmap(jax.grad(plain), (0, None))(batch, y))
    u = jnp.asarray(rng.standard_normal(6))
    second = lambda f: jax.grad(lambda x: jnp.dot(jax.grad(f)(x, y), u))  # noqa: E731
    check("second order: ∇ₓ⟨∇ₓL, u⟩", second(ours)(x), second(plain)(x))

    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
