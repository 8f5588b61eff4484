"""Watching and changing gradients with hooks in a tiny CNN.

Run: ``python examples/hooks.py``. Prints each gradient and each check, and
exits with status 1 if any check fails.

The network (1 input channel → 4 output channels, chosen so that one input
pixel feeds four channels and its gradient is a sum over them):

    x (1, 1, 5, 5), all ones
    h = conv2d(x, w)            w (4, 1, 1, 1), all ones: h[c] = x, a 1×1 conv
    p = adaptive_avg_pool2d(h, 1)     p[c] = (1/25) Σ_ij h[c, i, j]
    z = flatten(p)              (1, 4) logits, all equal to 1
    L = cross_entropy(z, class 0)

Backward, by hand (N = 1, softmax of equal logits is ¼ each):

    z̄ = softmax(z) − onehot(0) = (−¾, ¼, ¼, ¼)
    p̄[c] = z̄[c]                             (flatten only reshapes)
    h̄[c, i, j] = p̄[c] / 25                  (each position's share of the mean)
    x̄[0, i, j] = Σ_c w[c] · h̄[c, i, j] = (Σ_c z̄[c]) / 25 = 0
    w̄[c] = Σ_ij x[i, j] · h̄[c, i, j] = p̄[c]

The input gradient is exactly zero: cross-entropy gradients sum to zero over
classes and a 1×1 all-ones conv adds the channels up. A second hook then
modifies the conv output's gradient (doubling channel 0), and the input
gradient becomes (2·(−¾) + ¾)/25 = −0.03 at every pixel; the same hook is
written with torch's ``register_hook`` for comparison when torch is installed.
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
CHANNEL_SCALE = jnp.array([2.0, 1.0, 1.0, 1.0])[None, :, None, None]  # doubles channel 0


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


def recorder(store: dict, name: str):
    """A hook that keeps the run-time cotangent under ``name`` (and changes nothing)."""
    def fn(cotangent):
        jax.debug.callback(lambda value: store.__setitem__(name, np.asarray(value)),
                           cotangent)
    return fn


def network(x, w, store: dict, modify: bool, show: bool = True):
    """The loss; hooks record (and, if ``show``, print) h̄, p̄ and z̄ on the way back.

    Hooks run in backward order: the one nearest the loss first. The modifying
    hook is applied last in the forward pass, so the recorder and the printer
    between it and the conv see the modified gradient, as the conv does.
    """
    show_grad = jaxgrad.print_grad if show else (lambda v, label: v)
    h = show_grad(jaxgrad.conv2d(x, w), "dL/dh (reaching the conv output, 1×4×5×5)")
    h = jaxgrad.hook(h, recorder(store, "h"))
    if modify:
        h = jaxgrad.hook(h, lambda g: g * CHANNEL_SCALE)
    p = show_grad(jaxgrad.adaptive_avg_pool2d(h, 1), "dL/dp (pooled, 1×4×1×1)")
    z = jaxgrad.hook(p.reshape(1, 4), recorder(store, "z"))
    return jaxgrad.cross_entropy(show_grad(z, "dL/dz (logits)"), jnp.array([0]))


def gradients(x, w, modify: bool):
    store: dict = {}
    gx, gw = jax.grad(network, argnums=(0, 1))(x, w, store, modify)
    jax.effects_barrier()  # the callbacks have run once this returns
    return gx, gw, store


def torch_modified_input_grad(x, w):
    """x̄ from torch autograd with the same modifying hook (None without torch)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    xt = torch.tensor(np.asarray(x), requires_grad=True)
    h = F.conv2d(xt, torch.tensor(np.asarray(w)))
    h.register_hook(lambda g: g * torch.tensor(np.asarray(CHANNEL_SCALE)))
    z = F.adaptive_avg_pool2d(h, 1).flatten(1)
    F.cross_entropy(z, torch.tensor([0])).backward()
    return xt.grad.numpy()


def main() -> int:
    np.set_printoptions(precision=4, threshold=20, edgeitems=2)  # corners of big arrays
    x, w = jnp.ones((1, 1, 5, 5)), jnp.ones((4, 1, 1, 1))
    z_bar = jnp.array([[-0.75, 0.25, 0.25, 0.25]])

    print("1. gradients as the backward pass meets them (printed by print_grad)")
    gx, gw, seen = gradients(x, w, modify=False)
    check("logits: softmax − onehot", seen["z"], z_bar)
    check("conv output: pooled gradient / 25 everywhere", seen["h"],
          jnp.broadcast_to(z_bar[:, :, None, None] / 25, (1, 4, 5, 5)))
    check("conv input = conv2d_input(x.shape, w, h̄)", gx,
          jaxgrad.grad.conv2d_input(x.shape, w, seen["h"]))
    check("conv input: Σ_c z̄_c / 25 = 0", gx, jnp.zeros((1, 1, 5, 5)))
    check("weight: w̄[c] = p̄[c]", gw.reshape(1, 4), z_bar)

    print("2. a hook doubling channel 0 of dL/dh changes what reaches the input")
    gx2, gw2, seen2 = gradients(x, w, modify=True)
    check("the conv now receives h̄ with channel 0 doubled", seen2["h"],
          seen["h"] * CHANNEL_SCALE)
    check("conv input: (2·(−¾) + ¾)/25 = −0.03", gx2, jnp.full((1, 1, 5, 5), -0.03))
    check("weight: channel 0 doubled", gw2.reshape(1, 4), z_bar * CHANNEL_SCALE.reshape(1, 4))
    jitted = jax.jit(lambda x, w: jax.grad(network, argnums=(0, 1))(x, w, {}, True,
                                                                     False))(x, w)
    jax.effects_barrier()
    check("same gradients under jax.jit", jnp.concatenate([g.ravel() for g in jitted]),
          jnp.concatenate([gx2.ravel(), gw2.ravel()]))
    reference = torch_modified_input_grad(x, w)
    if reference is None:
        print("     (torch not installed: torch comparison skipped)")
    else:
        check("conv input vs torch register_hook", gx2, reference)

    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
