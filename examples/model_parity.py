"""Port a small CNN from torch.nn to jaxgrad, and find the layer that differs.

Run: ``python examples/model_parity.py``. Prints each check and exits with
status 1 if any fails.

The network, once in plain ``torch.nn`` and once as a function of a params
dict keyed by torch's names (``jaxgrad.interop.params_from_torch``):

    conv 3→8, 3×3, padding 1  →  BatchNorm2d (train mode)  →  ReLU
      →  max pool 2×2  →  flatten  →  linear 128→10

Each layer output of the port is named after its torch submodule with
``jaxgrad.tap``. ``jaxgrad.testing.check_model_parity`` runs both on the same
batch in float64, compares the output, every parameter gradient and, layer
by layer, each tapped value and the gradient flowing into it, and names the
first layer whose forward differs.

The correct port passes. Then three ports with a classic porting mistake
each, which all still run and give outputs of the right shape:

  padding   ``((0, 2), (1, 1))`` instead of 1: the same output size, every
            window one row lower (lax's "SAME" split vs torch's)
  eps       batch norm with ``eps=1e-3`` instead of torch's 1e-5
  kernel    the conv weight transposed in its spatial dims (kh ↔ kw)

For each, the report must name the broken layer as the first that differs.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import jaxgrad  # noqa: E402
from jaxgrad import tap  # noqa: E402
from jaxgrad.testing import check_model_parity  # noqa: E402

FAILURES: list[str] = []


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU(inplace=True)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc(h.flatten(1))


def port(p, x, *, padding=1, eps=1e-5, transpose_kernel=False):
    """SmallCNN in jaxgrad ops; the keywords inject the mistakes."""
    w = p["conv.weight"]                       # (C_out, C_in, kh, kw)
    if transpose_kernel:
        w = jnp.swapaxes(w, 2, 3)
    h = tap(jaxgrad.conv2d(x, w, p["conv.bias"], padding=padding), "conv")
    h = tap(jaxgrad.batch_norm(h, p["bn.running_mean"], p["bn.running_var"],
                               p["bn.weight"], p["bn.bias"], training=True, eps=eps),
            "bn")
    h = tap(jaxgrad.relu(h), "relu")
    h = tap(jaxgrad.max_pool2d(h, 2), "pool")
    return tap(jaxgrad.linear(h.reshape(h.shape[0], -1), p["fc.weight"], p["fc.bias"]),
               "fc")


BROKEN = {
    "padding": (dict(padding=((0, 2), (1, 1))), "conv"),
    "eps": (dict(eps=1e-3), "bn"),
    "kernel": (dict(transpose_kernel=True), "conv"),
}


def check(name: str, ok: bool, detail: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<44} {detail}")
    if not ok:
        FAILURES.append(name)


def main() -> int:
    torch.manual_seed(0)
    model = SmallCNN().train()
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    running_mean = model.bn.running_mean.clone()

    print("1. the correct port")
    report = check_model_parity(jax.jit(port), model, x, raise_on_failure=False)
    print("\n".join("     " + line for line in str(report).splitlines()))
    check("correct port: every row passes", report.passed,
          f"{len(report.parameters)} parameters, {len(report.layers)} layers")
    check("the module itself is unchanged (running_mean)",
          torch.equal(model.bn.running_mean, running_mean), "")

    print("2. three broken ports: the first layer that differs")
    for name, (mistake, layer) in BROKEN.items():
        broken = jax.jit(lambda p, x, mistake=mistake: port(p, x, **mistake))
        report = check_model_parity(broken, model, x, raise_on_failure=False)
        first = report.first_forward
        print(f"     {name}: {report.diagnosis.splitlines()[0]}")
        check(f"{name}: the report fails", not report.passed,
              f"{len(report.failures)} rows differ")
        check(f"{name}: first forward divergence is '{layer}'", first == layer,
              f"named {first!r}")
        try:
            report.raise_if_failed()
            message = ""
        except AssertionError as error:  # what a test would show
            message = str(error)
        check(f"{name}: the AssertionError names '{layer}' first",
              f"forward first diverges at layer '{layer}'" in message,
              f"{len(message.splitlines())} lines")

    if FAILURES:
        print(f"FAILED: {len(FAILURES)} check(s): " + ", ".join(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
