"""Gradients of convolutional least-squares problems, written out by hand.

Run: ``python examples/unrolled_gradients.py``. Every explicit gradient below is
built from ``jaxgrad.grad.*`` (the VJPs of a convolution as callable formulas)
and the chain rule, then compared with ``jax.grad`` of the same loss written
with plain ``lax.conv_general_dilated`` (XLA's autodiff, an independent
reference) and, when torch is installed, with torch autograd. The script
prints the mean squared difference of each comparison and exits with status 1
if any of them is above its threshold.

1. L(x) = ½‖k ⋆ x − y‖²  with 512 kernels of 32×32 at stride 32 (the kernels
   tile the 128×128 image without overlap):

       ∇ₓL = kᵀ ⋆ (k ⋆ x − y)            = conv2d_input(x.shape, k, r, stride=32)

2. z = w1 ⋆ x (3×3, padding 1), L = ½‖z − y‖², r = z − y:

       ∇ₓL  = conv2d_input(x.shape, w1, r, padding=1)
       ∇w1L = conv2d_weight(x, w1.shape, r, padding=1)

3. z = w2 ⋆ ReLU(w1 ⋆ x), h = w1 ⋆ x, a = ReLU(h), r = z − y:

       ā    = conv2d_input(a.shape, w2, r, padding=1)       ∇w2L = conv2d_weight(a, w2.shape, r, 1)
       h̄    = ā ⊙ [h > 0]
       ∇ₓL  = conv2d_input(x.shape, w1, h̄, padding=1)      ∇w1L = conv2d_weight(x, w1.shape, h̄, 1)

4. One unrolled gradient step x₁ = x − η ∇ₓL(x; w1, w2) (the formula of 3)
   inside an outer loss M(w1) = ½‖x₁ − x★‖², differentiated w.r.t. w1 by
   ``jax.grad``. The explicit gradient is itself differentiable: every
   ``jaxgrad.grad`` function has hand-written VJPs, so this runs no autodiff of
   a convolution at all. The reference is grad-of-grad of the plain lax loss.

Everything runs in float64 so that the comparisons are tight (a mismatch of
the formulas shows up as an error of order 1, not 1e-7).
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import jaxgrad  # noqa: E402
from jaxgrad import grad as G  # noqa: E402

THRESHOLD = 1e-20  # mean squared difference allowed in float64
FAILURES: list[str] = []


def lax_conv(x, w, stride=1, padding=0):
    """The plain XLA convolution (NCHW / OIHW), differentiated by XLA's autodiff."""
    pads = [(padding, padding)] * 2
    return lax.conv_general_dilated(x, w, (stride, stride), pads,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"))


def report(name: str, ours, reference, source: str) -> None:
    ours, reference = np.asarray(ours), np.asarray(reference)
    scale = float(np.mean(reference ** 2))
    mse = float(np.mean((ours - reference) ** 2))
    ok = ours.shape == reference.shape and mse <= THRESHOLD * max(scale, 1.0)
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<34} vs {source:<8} "
          f"mean squared difference {mse:.3e}  (mean square of value {scale:.3e})")
    if not ok:
        FAILURES.append(f"{name} vs {source}")


def torch_grads(loss_fn, *arrays, create_graph=False):
    """torch autograd of ``loss_fn`` w.r.t. every array (None when torch is absent)."""
    try:
        import torch
    except ImportError:
        return None
    ts = [torch.tensor(np.asarray(a), requires_grad=True) for a in arrays]
    return [g.detach().numpy() for g in
            torch.autograd.grad(loss_fn(torch, *ts), ts, create_graph=create_graph)]


# --------------------------------------------------------------------------
# 1. Tiled 32×32 kernels at stride 32.


def part1(key) -> None:
    print("1. L = ½‖k ⋆ x − y‖², k: 512 kernels 32×32, stride 32, x: 8×1×128×128")
    kk, kx, ky = jax.random.split(key, 3)
    k = jax.random.normal(kk, (512, 1, 32, 32)) / 32
    x = jax.random.normal(kx, (8, 1, 128, 128))
    y = jax.random.normal(ky, (8, 512, 4, 4))

    @jax.jit
    def explicit(x, k, y):
        r = jaxgrad.conv2d(x, k, stride=32) - y
        return G.conv2d_input(x.shape, k, r, stride=32)

    def loss(x):
        return 0.5 * jnp.sum((lax_conv(x, k, stride=32) - y) ** 2)

    ours = explicit(x, k, y)
    report("∇ₓL", ours, jax.grad(loss)(x), "jax.grad")
    ref = torch_grads(lambda t, x_: 0.5 * ((t.nn.functional.conv2d(
        x_, t.tensor(np.asarray(k)), stride=32) - t.tensor(np.asarray(y))) ** 2).sum(), x)
    if ref is not None:
        report("∇ₓL", ours, ref[0], "torch")


# --------------------------------------------------------------------------
# 2. and 3. 3×3 convolutions with padding 1.


def two_layer_grads(x, w1, w2, y):
    """Explicit ∇ₓ, ∇w1, ∇w2 of ½‖w2 ⋆ ReLU(w1 ⋆ x) − y‖² (part 3)."""
    h = jaxgrad.conv2d(x, w1, padding=1)
    a = jaxgrad.relu(h)
    r = jaxgrad.conv2d(a, w2, padding=1) - y
    a_bar = G.conv2d_input(a.shape, w2, r, padding=1)
    h_bar = jnp.where(h > 0, a_bar, 0)  # ReLU'(h) = [h > 0], 0 at h = 0 as in torch
    return (G.conv2d_input(x.shape, w1, h_bar, padding=1),
            G.conv2d_weight(x, w1.shape, h_bar, padding=1),
            G.conv2d_weight(a, w2.shape, r, padding=1))


def lax_two_layer_loss(x, w1, w2, y):
    a = jnp.maximum(lax_conv(x, w1, padding=1), 0)
    return 0.5 * jnp.sum((lax_conv(a, w2, padding=1) - y) ** 2)


def torch_two_layer_loss(t, x, w1, w2, y):
    a = t.relu(t.nn.functional.conv2d(x, w1, padding=1))
    return 0.5 * ((t.nn.functional.conv2d(a, w2, padding=1) - y) ** 2).sum()


def part2(x, w1, y) -> None:
    print("2. z = w1 ⋆ x (3×3, padding 1), L = ½‖z − y‖²")

    @jax.jit
    def explicit(x, w1, y):
        r = jaxgrad.conv2d(x, w1, padding=1) - y
        return (G.conv2d_input(x.shape, w1, r, padding=1),
                G.conv2d_weight(x, w1.shape, r, padding=1))

    def loss(x, w1):
        return 0.5 * jnp.sum((lax_conv(x, w1, padding=1) - y) ** 2)

    gx, gw1 = explicit(x, w1, y)
    rx, rw1 = jax.grad(loss, argnums=(0, 1))(x, w1)
    report("∇ₓL", gx, rx, "jax.grad")
    report("∇w1L", gw1, rw1, "jax.grad")
    ref = torch_grads(lambda t, x_, w_: 0.5 * ((t.nn.functional.conv2d(
        x_, w_, padding=1) - t.tensor(np.asarray(y))) ** 2).sum(), x, w1)
    if ref is not None:
        report("∇ₓL", gx, ref[0], "torch")
        report("∇w1L", gw1, ref[1], "torch")


def part3(x, w1, w2, y) -> None:
    print("3. z = w2 ⋆ ReLU(w1 ⋆ x), L = ½‖z − y‖²")
    ours = jax.jit(two_layer_grads)(x, w1, w2, y)
    refs = jax.grad(lax_two_layer_loss, argnums=(0, 1, 2))(x, w1, w2, y)
    names = ("∇ₓL", "∇w1L", "∇w2L")
    for name, g, r in zip(names, ours, refs):
        report(name, g, r, "jax.grad")
    ref = torch_grads(lambda t, *a: torch_two_layer_loss(t, *a, t.tensor(np.asarray(y))),
                      x, w1, w2)
    if ref is not None:
        for name, g, r in zip(names, ours, ref):
            report(name, g, r, "torch")


# --------------------------------------------------------------------------
# 4. An unrolled gradient step, differentiated.


def part4(x, w1, w2, y, x_star, eta=0.05) -> None:
    print("4. x₁ = x − η∇ₓL(x; w1, w2), M(w1) = ½‖x₁ − x★‖², ∇w1 M by jax.grad")

    def outer_explicit(w1):
        x1 = x - eta * two_layer_grads(x, w1, w2, y)[0]
        return 0.5 * jnp.sum((x1 - x_star) ** 2)

    def outer_lax(w1):
        x1 = x - eta * jax.grad(lax_two_layer_loss)(x, w1, w2, y)
        return 0.5 * jnp.sum((x1 - x_star) ** 2)

    ours = jax.jit(jax.grad(outer_explicit))(w1)
    report("∇w1 M (grad of explicit grad)", ours, jax.grad(outer_lax)(w1),
           "jax.grad")
    try:
        import torch
    except ImportError:
        return
    tx, tw2, ty, ts = (torch.tensor(np.asarray(a)) for a in (x, w2, y, x_star))
    tw1 = torch.tensor(np.asarray(w1), requires_grad=True)
    txg = tx.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(torch_two_layer_loss(torch, txg, tw1, tw2, ty), txg,
                                create_graph=True)
    m = 0.5 * ((tx - eta * gx - ts) ** 2).sum()
    (ref,) = torch.autograd.grad(m, tw1)
    report("∇w1 M (grad of explicit grad)", ours, ref.numpy(), "torch")


def main() -> int:
    key = jax.random.PRNGKey(0)
    k1, k2, kx, kw1, kw2, ky, ks = jax.random.split(key, 7)
    part1(k1)
    x = jax.random.normal(kx, (8, 1, 128, 128))
    w1 = jax.random.normal(kw1, (16, 1, 3, 3)) / 3
    w2 = jax.random.normal(kw2, (1, 16, 3, 3)) / 12
    y = jax.random.normal(ky, (8, 1, 128, 128))
    part2(x, jax.random.normal(k2, (1, 1, 3, 3)) / 3, y)
    part3(x, w1, w2, y)
    part4(x, w1, w2, y, jax.random.normal(ks, x.shape))
    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
