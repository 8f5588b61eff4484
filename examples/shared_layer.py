"""One layer applied twice: its weight gradient is the sum over both uses.

Run: ``python examples/shared_layer.py``. Prints each check and exits with
status 1 if any fails.

In PyTorch a module called twice accumulates both uses into ``weight.grad``.
In JAX the same weight appears twice in one function, and the chain rule adds
the two paths. For the scalar case

    L(w) = (w·(w·x) − t)²,   u = w·x,   r = w·u − t
    ∂L/∂w = 2r·u          (outer use, w multiplies u)
          + 2r·w·x        (inner use, through u = w·x)
          = 4(w²x − t)·w·x

(the two uses contribute equally here, because u = w·x).

The vector case y = W·relu(W·x + b) + b, L = Σ(y − t)², is compared with
``jax.grad`` of the same forward written in plain jnp and, when torch is
installed, with torch autograd of ``nn.Linear`` called twice.
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


def scalar_case() -> None:
    print("1. scalar: L = (w·(w·x) − t)², one 1×1 jaxgrad.linear used twice")
    w, x, t = 1.5, 2.0, 1.0
    x_in, target = jnp.array([[x]]), jnp.array([[t]])

    def loss(w_inner, w_outer):
        return jnp.sum((jaxgrad.linear(jaxgrad.linear(x_in, w_inner), w_outer) - target) ** 2)

    weight = jnp.array([[w]])
    shared = jax.grad(lambda w: loss(w, w))(weight)
    inner, outer = jax.grad(loss, argnums=(0, 1))(weight, weight)
    print(f"     inner use {float(inner[0, 0]):+.4f}, outer use {float(outer[0, 0]):+.4f}, "
          f"shared {float(shared[0, 0]):+.4f}")
    r, u = w * w * x - t, w * x
    check("outer use = 2r·u", outer, [[2 * r * u]])
    check("inner use = 2r·w·x", inner, [[2 * r * w * x]])
    check("shared gradient = sum of both uses", shared, inner + outer)
    check("shared gradient = 4(w²x − t)·w·x", shared, [[4 * (w * w * x - t) * w * x]])


def two_uses(linear, relu, x, w, b):
    return linear(relu(linear(x, w, b)), w, b)


def vector_case() -> None:
    print("2. vector: y = W·relu(W·x + b) + b, L = Σ(y − t)², W 4×4, batch 3")
    rng = np.random.default_rng(0)
    x, w, b, t = (rng.standard_normal(s) for s in [(3, 4), (4, 4), (4,), (3, 4)])

    def ours(w, b):
        return jnp.sum((two_uses(jaxgrad.linear, jaxgrad.relu, x, w, b) - t) ** 2)

    def plain(w, b):
        dense = lambda v, w, b: v @ w.T + b  # noqa: E731
        return jnp.sum((two_uses(dense, lambda v: jnp.maximum(v, 0), x, w, b) - t) ** 2)

    gw, gb = jax.jit(jax.grad(ours, argnums=(0, 1)))(jnp.asarray(w), jnp.asarray(b))
    pw, pb = jax.grad(plain, argnums=(0, 1))(jnp.asarray(w), jnp.asarray(b))
    check("dL/dW vs jax.grad of plain jnp", gw, pw)
    check("dL/db vs jax.grad of plain jnp", gb, pb)
    torch_grads = torch_reference(x, w, b, t)
    if torch_grads is None:
        print("     (torch not installed: torch comparison skipped)")
        return
    check("dL/dW vs torch (.grad accumulated twice)", gw, torch_grads[0])
    check("dL/db vs torch (.grad accumulated twice)", gb, torch_grads[1])


def torch_reference(x, w, b, t):
    """``weight.grad`` and ``bias.grad`` of one ``nn.Linear`` called twice."""
    try:
        import torch
    except ImportError:
        return None
    layer = torch.nn.Linear(4, 4).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w))
        layer.bias.copy_(torch.tensor(b))
    y = layer(torch.relu(layer(torch.tensor(x))))
    ((y - torch.tensor(t)) ** 2).sum().backward()
    return layer.weight.grad.numpy(), layer.bias.grad.numpy()


def main() -> int:
    scalar_case()
    vector_case()
    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
