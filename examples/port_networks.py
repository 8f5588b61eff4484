"""Port ResNet-18, MobileNetV2 and a U-Net from PyTorch, and prove them equal.

Run: ``python examples/port_networks.py [resnet18 mobilenet_v2 unet]``. Prints
each check and exits with status 1 if any fails.

Each network is defined once in plain ``torch.nn`` and once as a JAX port on
jaxgrad's ops (both in ``jaxgrad_bench.models``, installed with jaxgrad; read
it for the ports). For each network, in float64:

  1. The weights move from torch with ``jaxgrad.interop.params_from_torch``:
     a flat dict keyed by the ``state_dict`` names, buffers included.
  2. ``jaxgrad.testing.check_model_parity`` compares, in eval and in train
     mode, the output, the gradient of every parameter and, block by block
     (the port names block outputs with ``jaxgrad.tap``), the values and
     their gradients.
  3. Three SGD steps in train mode run in lockstep with ``torch.optim.SGD``:
     the losses, the parameters and the BatchNorm running statistics
     (updated functionally by ``jaxgrad.batch_norm_stats``) stay equal.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from jaxgrad.interop import params_from_torch  # noqa: E402
from jaxgrad.testing import check_model_parity  # noqa: E402
from jaxgrad_bench import models  # noqa: E402

# (image size, classes) per network; narrow networks keep float64 quick.
SIZES = {"resnet18": (32, 10), "mobilenet_v2": (32, 10), "unet": (12, 3)}
WIDTH, BATCH, LR, STEPS = 4, 3, 0.01, 3
FAILURES: list[str] = []


def check(label: str, ok: bool, detail: str = "") -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}")
    if not ok:
        FAILURES.append(label)


def relative(a, b, scale: float = 0.0) -> float:
    """max|a - b| / max|b|; entries that are mathematically zero (a BatchNorm
    bias followed by a train-mode BatchNorm gets no gradient, so it keeps
    rounding noise) are compared with ``scale``, the largest entry overall."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    own = np.abs(b).max(initial=0.0)
    reference = own if own > 1e-8 * scale else scale
    return float(np.abs(a - b).max(initial=0.0) / max(reference, 1e-300))


def parity(name: str, module: torch.nn.Module, x: np.ndarray) -> None:
    """check_model_parity in eval and train mode (the module's mode decides)."""
    ops = models.op_set("jaxgrad")
    for train in (False, True):
        module.train(train)
        state = params_from_torch(module)
        params, buffers = models.split(state, module)

        def port(params, x):
            return models.forward(name, ops, params, buffers, x, train)[0]

        report = check_model_parity(port, module, x, params=params,
                                    raise_on_failure=False)
        mode = "train" if train else "eval"
        check(f"{name} {mode}: output, {len(report.parameters)} parameter gradients "
              f"and {len(report.layers)} tapped blocks match torch", report.passed,
              "" if report.passed else f"\n{report}")


def lockstep(name: str, module: torch.nn.Module) -> None:
    """SGD steps side by side: losses, parameters and running statistics."""
    size, classes = SIZES[name]
    module.train()
    params, buffers = models.split(params_from_torch(module), module)
    step = jax.jit(models.sgd_step(name, models.op_set("jaxgrad"), LR))
    optimizer = torch.optim.SGD(module.parameters(), lr=LR)
    losses = []
    for i in range(STEPS):
        x, target = models.example_batch(name, BATCH, size, classes, seed=100 + i,
                                          dtype=np.float64)
        optimizer.zero_grad()
        loss_t = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(target))
        loss_t.backward()
        optimizer.step()
        loss_j, params, buffers = step(params, buffers, jnp.asarray(x),
                                       jnp.asarray(target))
        losses.append(relative(loss_j, loss_t.detach()))
    check(f"{name}: {STEPS} SGD steps, losses equal", max(losses) <= 1e-10,
          f"max relative difference {max(losses):.1e}")
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    scale = max(np.abs(v).max(initial=0.0) for v in state.values())
    worst = max(relative(v, state[k], scale) for k, v in {**params, **buffers}.items())
    check(f"{name}: parameters and running statistics after {STEPS} steps equal",
          worst <= 1e-9, f"max relative difference {worst:.1e}")


def main(names: list[str]) -> int:
    for name in names:
        size, classes = SIZES[name]
        torch.manual_seed(0)
        module = models.torch_network(name, width=WIDTH, classes=classes).double()
        print(f"{name}: {sum(p.numel() for p in module.parameters())} parameters")
        x, _ = models.example_batch(name, BATCH, size, classes, seed=1,
                                    dtype=np.float64)
        parity(name, module, x)
        lockstep(name, module)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(models.NETWORKS)))
