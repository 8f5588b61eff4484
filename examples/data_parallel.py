"""Data-parallel training of a small CNN across 8 devices with jaxgrad ops.

Run: ``python examples/data_parallel.py``. It simulates 8 CPU devices (unless
``XLA_FLAGS`` already says otherwise), prints each check and exits with
status 1 if any fails.

Data parallelism is plain JAX here: a mesh with one ``"data"`` axis, the
batch split across it with ``NamedSharding``, the parameters replicated, and
one ``jax.jit`` train step. Nothing in the model knows about devices; XLA
inserts one all-reduce per parameter gradient. The model is

    x (N, 3, 8, 8) → conv2d 3→8, 3×3, pad 1 → relu → max_pool2d 2
      → flatten (N, 128) → linear 128→4 → cross_entropy with labels t

trained with plain SGD, θ ← θ − η ∇L(θ), on synthetic data whose labels come
from a fixed random "teacher", so there is something to learn. Checks: the
gradients of every step equal those of the same step on one device, the
parameters stay replicated, and the loss falls.
"""

from __future__ import annotations

import os
import sys

# Before jax starts: 8 simulated CPU devices, keeping any other XLA flags.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)   # float64: sharded == unsharded to rounding

import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxgrad

DEVICES, BATCH, STEPS, LEARNING_RATE = 8, 64, 25, 0.1
RTOL = 1e-10
FAILURES: list[str] = []


def check(name: str, ok: bool, detail: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<52} {detail}")
    if not ok:
        FAILURES.append(name)


def init_params(rng: np.random.Generator) -> dict:
    normal = lambda *shape, fan_in: jnp.asarray(rng.normal(size=shape) / np.sqrt(fan_in))
    return {"conv_w": normal(8, 3, 3, 3, fan_in=27), "conv_b": jnp.zeros(8),
            "lin_w": normal(4, 128, fan_in=128), "lin_b": jnp.zeros(4)}


def loss_fn(params: dict, x, t):
    """Mean cross entropy of the CNN on images x (N, 3, 8, 8), labels t (N,)."""
    h = jaxgrad.conv2d(x, params["conv_w"], params["conv_b"], padding=1)
    h = jaxgrad.max_pool2d(jaxgrad.relu(h), 2)
    logits = jaxgrad.linear(h.reshape(x.shape[0], -1), params["lin_w"], params["lin_b"])
    return jaxgrad.cross_entropy(logits, t)


@jax.jit
def train_step(params: dict, x, t):
    """One SGD step; returns (loss, gradients, new parameters)."""
    loss, grads = jax.value_and_grad(loss_fn)(params, x, t)
    new = jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads)
    return loss, grads, new


def synthetic_data(rng: np.random.Generator):
    """Images and labels from a random linear teacher on the pooled image."""
    x = rng.normal(size=(BATCH, 3, 8, 8))
    teacher = rng.normal(size=(3 * 4 * 4, 4))
    pooled = x.reshape(BATCH, 3, 4, 2, 4, 2).mean(axis=(3, 5)).reshape(BATCH, -1)
    return jnp.asarray(x), jnp.asarray(np.argmax(pooled @ teacher, axis=1))


def max_relative_error(a: dict, b: dict) -> float:
    return max(float(jnp.max(jnp.abs(a[k] - b[k])) / max(1.0, float(jnp.max(jnp.abs(b[k])))))
               for k in b)


def train() -> list[float]:
    rng = np.random.default_rng(0)
    params, (x, t) = init_params(rng), synthetic_data(rng)
    mesh = jax.make_mesh((DEVICES,), ("data",))     # Explicit axes, the default
    batch, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    with jax.set_mesh(mesh):
        sharded = jax.device_put(params, replicated)
        xs, ts = jax.device_put(x, batch), jax.device_put(t, batch)
    losses, worst = [], 0.0
    for _ in range(STEPS):
        # The same step on one device, from the same parameters, is the reference.
        _, single_grads, _ = train_step(jax.device_get(sharded), x, t)
        with jax.set_mesh(mesh):
            loss, grads, sharded = train_step(sharded, xs, ts)
        worst = max(worst, max_relative_error(grads, single_grads))
        losses.append(float(loss))
    check(f"gradients of all {STEPS} steps equal the 1-device ones", worst <= RTOL,
          f"max relative difference {worst:.1e}")
    specs = [leaf.sharding.spec for leaf in jax.tree.leaves(sharded)]
    check("parameters stay replicated", all(all(e is None for e in spec) for spec in specs),
          f"specs {sorted(set(map(str, specs)))}")
    return losses


def main() -> int:
    print(f"{jax.device_count()} devices; batch {BATCH} split {BATCH // DEVICES} per device")
    check("8 devices", jax.device_count() == DEVICES, f"found {jax.device_count()}")
    losses = train()
    print("  loss per step: " + " ".join(f"{v:.3f}" for v in losses))
    check("loss falls", losses[-1] < 0.7 * losses[0],
          f"{losses[0]:.3f} -> {losses[-1]:.3f}")
    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
