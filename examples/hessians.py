"""Second derivatives through jaxgrad: Hessian-vector products and a full Hessian.

Run: ``python examples/hessians.py``. Prints each check and exits with status
1 if any fails.

Every second derivative is reachable by reverse over reverse, which runs
jaxgrad's hand-written rules at both orders (docs/higher-order.md):

  Hessian-vector product  Hv = ∇ₓ⟨∇ₓL(x), v⟩   jax.grad(lambda x: vdot(jax.grad(L)(x), v))
  full Hessian            H  = ∂(∇L)/∂x        jax.jacrev(jax.grad(L))

and by forward over reverse too (``jax.jvp`` of ``jax.grad``,
``jax.hessian``): every op also carries a JVP made of hand-written formulas.

The loss is a two-layer convolutional net with a squared error,

  L(w1, w2) = ½ Σ (conv2d(tanh(conv2d(x, w1, padding=1)), w2) − t)²,

differentiated w.r.t. its weights. The reference is the same net on plain
``lax.conv_general_dilated`` and ``jnp.tanh``, which JAX differentiates
itself and which supports forward mode: its HVP is forward-over-reverse
(``jax.jvp`` of ``jax.grad``) and its Hessian ``jax.hessian``, so the two
sides share no derivative code.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import jaxgrad  # noqa: E402

RTOL = 1e-10  # float64 throughout
FAILURES: list[str] = []


def check(name: str, actual, expected) -> bool:
    """Print one comparison; remember it if ``actual`` is not ``expected``."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    same_shape = actual.shape == expected.shape
    error = np.max(np.abs(actual - expected)) if same_shape else np.inf
    scale = max(np.max(np.abs(expected)), 1e-300) if same_shape else 1.0
    ok = same_shape and error <= RTOL * scale
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<52} max |difference| {error:.1e}")
    if not ok:
        FAILURES.append(name)
    return ok


rng = np.random.default_rng(0)
X = jnp.asarray(rng.standard_normal((2, 3, 6, 6)))          # N, C, H, W
T = jnp.asarray(rng.standard_normal((2, 2, 6, 6)))
W1 = jnp.asarray(rng.standard_normal((4, 3, 3, 3)) / 5)      # C_out, C_in, kH, kW
W2 = jnp.asarray(rng.standard_normal((2, 4, 1, 1)) / 2)


def loss_jaxgrad(w1, w2):
    h = jaxgrad.tanh(jaxgrad.conv2d(X, w1, padding=1))
    return 0.5 * jnp.sum((jaxgrad.conv2d(h, w2) - T) ** 2)


def _lax_conv(x, w, pad):
    return lax.conv_general_dilated(x, w, (1, 1), ((pad, pad), (pad, pad)),
                                    precision=lax.Precision.HIGHEST)


def loss_lax(w1, w2):
    h = jnp.tanh(_lax_conv(X, w1, 1))
    return 0.5 * jnp.sum((_lax_conv(h, w2, 0) - T) ** 2)


def hessian_vector_products() -> None:
    print("1. Hessian-vector products w.r.t. both weights (reverse over reverse)")
    v1 = jnp.asarray(rng.standard_normal(W1.shape))
    v2 = jnp.asarray(rng.standard_normal(W2.shape))
    grad = jax.grad(loss_jaxgrad, argnums=(0, 1))

    @jax.jit
    def hvp(w1, w2):
        # ∇_w ⟨∇_w L(w), v⟩ = H v: two reverse passes, both through jaxgrad's rules.
        return jax.grad(lambda w1, w2: sum(jnp.vdot(g, v) for g, v in
                                           zip(grad(w1, w2), (v1, v2))),
                        argnums=(0, 1))(w1, w2)

    ours = hvp(W1, W2)
    # Reference: forward over reverse on the lax net.
    _, ref = jax.jvp(jax.grad(loss_lax, argnums=(0, 1)), (W1, W2), (v1, v2))
    check("H v, w1 block vs jax.jvp(jax.grad) of the lax net", ours[0], ref[0])
    check("H v, w2 block vs jax.jvp(jax.grad) of the lax net", ours[1], ref[1])


def full_hessian() -> None:
    print("2. the full Hessian w.r.t. w1 (108 x 108), as jax.jacrev(jax.grad(L))")
    ours = jax.jit(jax.jacrev(jax.grad(loss_jaxgrad)))(W1, W2)
    ref = jax.hessian(loss_lax)(W1, W2)
    size = W1.size
    ours, ref = ours.reshape(size, size), ref.reshape(size, size)
    check("H vs jax.hessian of the lax net", ours, ref)
    check("H is symmetric", ours, ours.T)
    v = rng.standard_normal(size)
    hv = jax.grad(lambda w: jnp.vdot(jax.grad(loss_jaxgrad)(w, W2),
                                     v.reshape(W1.shape)))(W1)
    check("H v by grad-of-grad = full Hessian @ v", hv.reshape(-1), ours @ v)


def forward_over_reverse() -> None:
    print("3. forward over reverse: jax.jvp(jax.grad(L)) and jax.hessian")
    v1 = jnp.asarray(rng.standard_normal(W1.shape))
    grad = jax.grad(loss_jaxgrad)
    ours = jax.jit(lambda w1, v: jax.jvp(lambda w: grad(w, W2), (w1,), (v,))[1])(W1, v1)
    ref = jax.grad(lambda w: jnp.vdot(jax.grad(loss_lax)(w, W2), v1))(W1)
    check("H v by jax.jvp(jax.grad) vs grad-of-grad of the lax net", ours, ref)
    size = W1.size
    ours = jax.jit(jax.hessian(loss_jaxgrad))(W1, W2).reshape(size, size)
    ref = jax.jacrev(jax.grad(loss_lax))(W1, W2).reshape(size, size)
    check("jax.hessian vs jax.jacrev(jax.grad) of the lax net", ours, ref)


def main() -> int:
    hessian_vector_products()
    full_hessian()
    forward_over_reverse()
    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
