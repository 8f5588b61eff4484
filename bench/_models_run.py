"""The ``models`` suite: one training step of a whole network, three ways.

  jaxgrad   the port on jaxgrad's ops (explicit VJPs), ``jax.value_and_grad``
            of the loss, SGD update; one jitted program
  autodiff  the same port on plain ``lax``/``jax.nn`` ops (``models.LAX``),
            gradients by JAX autodiff; one jitted program
  torch     the ``torch.nn`` module: zero_grad, forward, cross-entropy,
            backward, ``torch.optim.SGD.step``

A step is forward, loss, backward and the SGD update, in train mode (batch
statistics, running-statistics update). Every implementation starts from the
same weights (the torch module's, through ``params_from_torch``) and batch.
Correctness is checked in float64 (the same networks, weights and batch):
the loss, every parameter's gradient (as the step applied it) and every
updated buffer after one step, max relative error within the float64
tolerance scaled by the network's depth. The errors in the timed dtype are
recorded too (``errors_<dtype>``); in float32 they are far above any per-op
tolerance for these deep train-mode networks, in XLA as in torch. Timing uses the bench protocol (``_timing``): compiled ahead,
warm-up, interleaved rounds, medians. Repeated calls reuse the same inputs
(the JAX steps are pure; torch's module drifts by its own updates, which does
not change the work).
"""

from __future__ import annotations

import copy
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrad._checking._tolerance import tolerance

from . import _measure, _stats, _timing, models

MODE = "train_step"
LR = 0.01


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """A network at one size: ``width`` channels in its first stage."""

    network: str
    width: int
    batch: int
    size: int
    classes: int

    @property
    def name(self) -> str:
        return f"{self.network}-b{self.batch}-{self.size}px"

    @property
    def description(self) -> str:
        return (f"{self.network} (width {self.width}, {self.classes} classes), batch "
                f"{self.batch} of 3x{self.size}x{self.size}: one SGD training step")


# Sizes a 2-core CPU times in seconds, with CIFAR-like images; the widths are
# the original networks' (ResNet-18's 64, MobileNetV2's 32; U-Net at 32).
MODEL_CASES = (
    ModelCase("resnet18", width=64, batch=16, size=32, classes=10),
    ModelCase("mobilenet_v2", width=32, batch=16, size=64, classes=10),
    ModelCase("unet", width=32, batch=4, size=64, classes=3),
)


def _depth(module) -> int:
    from torch import nn
    return sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.Linear))
               for m in module.modules())


def _jax_step(case: ModelCase, ops_name: str, params, buffers, x, target):
    step = models.sgd_step(case.network, models.op_set(ops_name), LR)
    compiled, compile_s = _measure.compile_ahead(step, params, buffers, x, target)

    def call():
        return jax.block_until_ready(compiled(params, buffers, x, target))

    loss, new_params, new_buffers = call()
    return call, compile_s, _results(loss, params, {**new_params, **new_buffers})


def _results(loss, old: dict, new: dict) -> dict[str, np.ndarray]:
    """The loss, each parameter's gradient as the step applied it, (old - new)/lr,
    and each updated buffer, as float64 arrays."""
    out = {"loss": np.asarray(loss, np.float64)}
    for key, value in new.items():
        value = np.asarray(value, np.float64)
        if key in old:
            out[f"grad {key}"] = (np.asarray(old[key], np.float64) - value) / LR
        else:
            out[key] = value
    return out


def compare(results: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Max relative error of every array, for each pair of implementations.

    Like the conv cases' comparison, relative to the reference array's largest
    entry, except that an array far smaller than the others of its kind (a
    gradient that is mathematically zero, e.g. a bias just before a
    train-mode batch norm, holds only rounding noise) is measured against
    1e-3 of its kind's largest entry instead of its own noise.
    """
    names = [i for i in ("jaxgrad", "autodiff", "torch") if i in results]
    errors = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ref = results[b]
            kind = lambda k: k.split(" ")[0] if " " in k else "buffer"
            scale: dict = {}
            for k, v in ref.items():
                scale[kind(k)] = max(scale.get(kind(k), 0.0), float(np.abs(v).max(initial=0)))
            errors[f"{a}_vs_{b}"] = {
                k: float(np.abs(results[a][k] - v).max(initial=0.0)
                         / max(float(np.abs(v).max(initial=0.0)),
                               1e-3 * scale[kind(k)], 1e-30))
                for k, v in ref.items()}
    return errors


def _torch_step(module, x, target):
    import torch
    import torch.nn.functional as F
    tx, tt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(target))
    optimizer = torch.optim.SGD(module.parameters(), lr=LR)

    def call():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(tx), tt)
        loss.backward()
        optimizer.step()
        return loss

    first = copy.deepcopy(module)
    before = {k: v.detach().numpy().copy() for k, v in first.named_parameters()}
    first_optimizer = torch.optim.SGD(first.parameters(), lr=LR)
    loss = F.cross_entropy(first(tx), tt)
    loss.backward()
    first_optimizer.step()
    state = {k: v.detach().numpy() for k, v in first.state_dict().items()}
    return call, _results(loss.detach().numpy(), before, state)


def _float64_results(case: ModelCase, module, x_np, target_np, use_torch: bool):
    """Each implementation's step in float64 (JAX's 64-bit mode for the call): the
    correctness check. In float32 a deep network's gradients hold rounding far
    above any per-op tolerance, and XLA's and torch's round differently, so
    float64 is where "the same function" can be checked tightly."""
    from jaxgrad.interop import params_from_torch
    reference = copy.deepcopy(module).double()
    results = {}
    with jax.enable_x64(True):
        params, buffers = models.split(params_from_torch(reference), reference)
        x, target = jnp.asarray(x_np, jnp.float64), jnp.asarray(target_np)
        for name, ops_name in (("jaxgrad", "jaxgrad"), ("autodiff", "lax")):
            results[name] = _jax_step(case, ops_name, params, buffers, x, target)[2]
    if use_torch:
        results["torch"] = _torch_step(reference, x_np.astype(np.float64),
                                       target_np)[1]
    return results


def run_model(case: ModelCase, *, dtype: str, repeats: int, seed: int,
              use_torch: bool, progress) -> dict:
    """Prepare, check and time one training step of ``case``; its record."""
    import torch
    from jaxgrad.interop import params_from_torch
    torch.manual_seed(seed)
    module = models.torch_network(case.network, width=case.width,
                                  classes=case.classes).train()
    params, buffers = models.split(params_from_torch(module), module)
    x_np, target_np = models.example_batch(case.network, case.batch, case.size,
                                           case.classes, seed)
    x, target = jnp.asarray(x_np, dtype), jnp.asarray(target_np)
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    buffers = {k: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v
               for k, v in buffers.items()}
    start = time.perf_counter()
    calls, compile_s, results = {}, {}, {}
    for name, ops_name in (("jaxgrad", "jaxgrad"), ("autodiff", "lax")):
        calls[name], compile_s[name], results[name] = _jax_step(
            case, ops_name, params, buffers, x, target)
    if use_torch:
        calls["torch"], results["torch"] = _torch_step(copy.deepcopy(module), x_np,
                                                       target_np)
    checked = _float64_results(case, module, x_np, target_np, use_torch)
    progress(f"compiled and checked in {time.perf_counter() - start:.1f} s; timing")
    tol = tolerance("float64") * _depth(module)
    errors = compare(checked)
    correct = _measure.agreeing(errors, list(checked), tol)
    samples = _timing.time_interleaved(calls, repeats=repeats)
    timings = {name: {MODE: _summary(s)} for name, s in samples.items()}

    def median(name):
        ok = correct.get(name) and name in timings
        return timings[name][MODE]["median_s"] if ok else None

    return {"name": case.name, "kind": "model", "description": case.description,
            "network": dataclasses.asdict(case),
            "parameters": int(sum(p.numel() for p in module.parameters())),
            "tolerance": tol, "compile_s": compile_s, "timings": timings,
            "ratios": {MODE: {"vs_autodiff": _stats.ratio(median("jaxgrad"),
                                                          median("autodiff")),
                              "vs_torch": _stats.ratio(median("jaxgrad"),
                                                       median("torch"))}},
            "errors": errors, f"errors_{dtype}": compare(results),
            "correct": correct, "notes": []}


def _summary(samples: list[float]) -> dict:
    summary = _stats.summarize(samples)
    return {"median_s": summary.median, "min_s": summary.min, "samples_s": samples}


_COLUMNS = (("model", 26), ("jaxgrad ms", 10), ("jax.grad ms", 11), ("torch ms", 9),
            ("jg/jax.grad", 11), ("jg/torch", 8), ("err jax.grad", 12),
            ("err torch", 9))
_FOOTNOTE = ("one training step (forward, loss, backward, SGD update), median times; "
             "jg/X = jaxgrad time / X time; err X = max relative difference of the "
             "loss, the gradients and the updated buffers from X's after one step, "
             "checked in float64")


def _row(r: dict) -> list[str]:
    def ms(name):
        if name not in r["timings"]:
            return "-"
        if not r["correct"].get(name):
            return "wrong"
        return f"{1e3 * r['timings'][name][MODE]['median_s']:.1f}"

    def err(pair):
        e = r["errors"].get(pair)
        return "-" if not e else f"{max(e.values()):.1e}"

    def ratio(v):
        return "-" if v is None else f"{v:.3g}x"

    return [r["name"], ms("jaxgrad"), ms("autodiff"), ms("torch"),
            ratio(r["ratios"][MODE]["vs_autodiff"]), ratio(r["ratios"][MODE]["vs_torch"]),
            err("jaxgrad_vs_autodiff"), err("jaxgrad_vs_torch")]


def console_table(records: list[dict]) -> str:
    """One row per network: median step times, ratios and agreement."""
    def line(cells):
        return "  ".join(f"{c:{'<' if i == 0 else '>'}{w}}"
                         for i, (c, (_, w)) in enumerate(zip(cells, _COLUMNS)))

    rows = [line([name for name, _ in _COLUMNS])] + [line(_row(r)) for r in records]
    return "\n".join(rows + [_FOOTNOTE])


def markdown_table(records: list[dict]) -> list[str]:
    """The same table as :func:`console_table`, as Markdown lines."""
    lines = ["| " + " | ".join(name for name, _ in _COLUMNS) + " |",
             "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in records]
    return lines + ["", _FOOTNOTE]


def markdown(record: dict) -> str:
    """The models run as a Markdown page: what ran where, then the table."""
    opts, machine = record["options"], record["machine"]
    device = machine.get("gpu_model") or (f"{machine.get('cpu_model')}, "
                                          f"{machine.get('cpus_available')} CPUs")
    lines = ["# jaxgrad bench: whole-network training steps", "",
             f"`{record['command']}` on {device}, {opts['dtype']}, algorithm "
             f"{opts['algorithm']}, {opts['repeats']} timed repetitions "
             f"(medians), created {record['created']}.", ""]
    lines += [f"- {m['description']}; {m['parameters']:,} parameters; first-call "
              f"compile " + ", ".join(f"{k} {v:.1f} s" for k, v in m["compile_s"].items())
              for m in record["models"]]
    lines += [""] + markdown_table(record["models"])
    lines += [""] + [f"- note: {n}" for n in record["notes"]]
    return "\n".join(lines) + "\n"
