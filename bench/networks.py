"""Drawn networks: training steps of small CNNs outside the bench, "auto"
against the textbook rules and ``jax.grad``.

    python -m jaxgrad_bench.networks --kind plain --count 40 --seed 7 \\
        --out bench/results --name networks-cpu-2core-plain

The bench cases and the sweep time one convolution at a time; a network's
step is where formulations meet each other's layouts (docs/performance.md,
"Isolated timings and networks", "The depthwise input gradient in
networks"). Each network is a chain of 2-D convolutions, each followed by a
ReLU, drawn from the ranges of small real networks:

  plain       3-7 layers, 8-384 channels, kernels 1-7, some stride 2 and
              dilation 2, each layer after the first that is not 1x1
              depthwise with probability 0.15
  depthwise   a 3x3 stem, then 2-4 blocks: plain, depthwise-separable,
              inverted residual (expand 2-6) or ConvNeXt-style (7x7
              depthwise, 4x expansion), some at stride 2
  grouped     a 3x3 stem, then 2-4 ResNeXt/RegNet-like blocks: 1x1, a
              grouped 3x3 of 4, 8 or 16 channels per group (some at
              stride 2, which doubles the block's output channels), 1x1

with a batch of 1-32 at 14-128 px, redrawn until its forward is within
[--min-gflop, --max-gflop]. The step is ``value_and_grad`` of the mean
square of the last activation, then w - 0.01·w̄, compiled ahead of time
three ways: jaxgrad's convolutions with ``algorithm="auto"`` and with
``"transpose"`` (the textbook rules), and ``jax.lax.conv_general_dilated``
differentiated by JAX (``jax.grad``); a fourth mode is the step wrapped in
``jaxgrad.autotune_jit`` (the whole step timed under "auto" and
"transpose" on its first call, the faster kept: its choice and that first
call's time are recorded). The four are timed by the harness's protocol
(``_timing.time_interleaved``: warm-up, rounds in a random order, a 20 ms
pause before each call; medians). The float32 loss and weight gradients of "auto", "transpose"
and ``jax.grad`` are compared with a float64 reference (``jax.grad`` of the
same network on lax convolutions in float64; largest |a - b| / max |b| over
the loss and each gradient, recorded for all three); "auto" or "transpose"
beyond ``TOLERANCE`` and beyond twice ``jax.grad``'s own error is marked
wrong in the JSON and the summary, and the command exits with status 1.
(Float32 rounding can flip a ReLU whose input is near zero, and the
gradients then move by far more than rounding: on a 7-layer depthwise
stack one pre-activation of float32 ``jax.grad``'s forward had the other
sign than in float64, and its gradients were 1.8e-4 off, as were those of
"transpose", which runs the same convolutions, where "auto"'s were 1.4e-6.
So the float32 ``jax.grad`` is no reference, and its own error sets the
bar.) The
autotune_jit step's output must match that of the step it kept, compiled
apart (the same program), within ``TOLERANCE``; else it is marked wrong too. The JSON holds the
machine, the versions and one record per network with the formulations
"auto" chose; the markdown summary counts the networks where "auto" is
more than 5% slower than ``jax.grad``.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxgrad
from jaxgrad._conv import _plan

from . import _machine, _report, _timing
from ._options import file_stem, positive_int
from .sweep import _max_rel_error

KINDS = ("plain", "depthwise", "grouped")
MODES = ("auto", "transpose", "autotune_jit", "jax.grad")
CHECKED = ("auto", "transpose")     # autotune_jit runs one of these two programs
TUNING_REPEATS = 5
LEARNING_RATE = 0.01
TOLERANCE = 1e-4        # float32 sums in other orders stay near 1e-6
BASELINE_FACTOR = 2.0   # ... or within twice jax.grad's own float32 error


# --------------------------------------------------------------------------
# Drawing. A layer is (C_out, C_in, K, stride, dilation, groups), padded
# d(K-1)//2 on each side ("same" at stride 1 for odd K).


def _out_size(size: int, layer) -> int:
    _, _, k, stride, dilation, _ = layer
    return (size + 2 * (dilation * (k - 1) // 2) - dilation * (k - 1) - 1) // stride + 1


def forward_gflop(net: dict) -> float:
    """Multiply-adds of the forward, twice (one multiply and one add each)."""
    size, total = net["size"], 0
    for layer in net["layers"]:
        c_out, c_in, k, _, _, groups = layer
        size = _out_size(size, layer)
        total += 2 * net["batch"] * c_out * (c_in // groups) * k * k * size * size
    return total / 1e9


def _plain(rng) -> tuple[int, list]:
    c = int(rng.choice([1, 3, 3, 16]))
    width = int(rng.choice([8, 16, 24, 32, 48, 64, 96, 128]))
    layers, size = [], int(rng.choice([16, 24, 32, 48, 64, 96, 128]))
    start = size
    for i in range(int(rng.integers(3, 8))):
        k = int(rng.choice([1, 3, 3, 3, 5, 7]))
        stride = 2 if size >= 8 and rng.random() < 0.3 else 1
        dilation = 2 if k == 3 and stride == 1 and rng.random() < 0.1 else 1
        if i > 0 and k > 1 and rng.random() < 0.15:
            layer = (c, c, k, stride, dilation, c)                       # depthwise
        else:
            layer = (width, c, k, stride, dilation, 1)
        layers.append(layer)
        c, size = layer[0], _out_size(size, layer)
        if rng.random() < 0.3 and width < 256:
            width *= 2
    return start, layers


def _depthwise(rng) -> tuple[int, list]:
    size = int(rng.choice([14, 16, 28, 32, 56, 64, 112]))
    c = int(rng.choice([16, 24, 32, 48, 64, 96, 128, 192]))
    layers, start = [(c, 3, 3, 1, 1, 1)], size
    for _ in range(int(rng.integers(2, 5))):
        kind = rng.choice(["plain", "separable", "inverted", "convnext"])
        k = int(rng.choice([3, 3, 5, 7]))
        stride = 2 if size >= 14 and rng.random() < 0.25 else 1
        if kind == "plain":
            block = [(c, c, int(rng.choice([1, 3])), 1, 1, 1)]
        elif kind == "separable":
            block = [(c, c, k, stride, 1, c), (c, c, 1, 1, 1, 1)]
        elif kind == "inverted":
            e = c * int(rng.choice([2, 4, 6]))
            block = [(e, c, 1, 1, 1, 1), (e, e, k, stride, 1, e), (c, e, 1, 1, 1, 1)]
        else:
            block = [(c, c, 7, 1, 1, c), (4 * c, c, 1, 1, 1, 1), (c, 4 * c, 1, 1, 1, 1)]
        for layer in block:
            size = _out_size(size, layer)
        layers += block
    return start, layers


def _grouped(rng) -> tuple[int, list]:
    size = int(rng.choice([14, 28, 56, 112]))
    c = int(rng.choice([16, 24, 32, 48, 64]))
    layers, start = [(c, 3, 3, 1, 1, 1)], size
    for _ in range(int(rng.integers(2, 5))):
        per_group = int(rng.choice([4, 8, 8, 16]))
        width = max(2 * per_group, int(rng.choice([1, 2])) * c // per_group * per_group)
        stride = 2 if size >= 14 and rng.random() < 0.35 else 1
        out = c * stride
        block = [(width, c, 1, 1, 1, 1), (width, width, 3, stride, 1, width // per_group),
                 (out, width, 1, 1, 1, 1)]
        for layer in block:
            size = _out_size(size, layer)
        layers += block
        c = out
    return start, layers


DRAWERS = {"plain": _plain, "depthwise": _depthwise, "grouped": _grouped}


def draw(rng, kind: str, min_gflop: float, max_gflop: float) -> dict:
    """One network of ``kind`` whose forward is within [min_gflop, max_gflop]."""
    while True:     # strides only on maps of 8 px or more: no map shrinks to 0
        size, layers = DRAWERS[kind](rng)
        net = {"kind": kind, "batch": int(rng.choice([1, 2, 4, 8, 16, 32])),
               "size": size, "layers": [list(layer) for layer in layers]}
        net["forward_gflop"] = forward_gflop(net)
        if min_gflop <= net["forward_gflop"] <= max_gflop:
            return net


# --------------------------------------------------------------------------
# One network's step, four ways.


def _weights(net: dict) -> list:
    key, ws = jax.random.PRNGKey(0), []
    for c_out, c_in, k, _, _, groups in net["layers"]:
        key, sub = jax.random.split(key)
        fan_in = c_in // groups * k * k
        ws.append(jax.random.normal(sub, (c_out, c_in // groups, k, k)) * (2.0 / fan_in) ** 0.5)
    return ws


def loss_fn(net: dict, mode: str):
    """``(ws, x) -> mean(h²)`` of ``net``'s last activation, run by ``mode``."""
    def conv(h, w, layer):
        _, _, k, stride, dilation, groups = layer
        pad = dilation * (k - 1) // 2
        if mode == "jax.grad":
            return jax.lax.conv_general_dilated(
                h, w, (stride, stride), [(pad, pad)] * 2, rhs_dilation=(dilation, dilation),
                feature_group_count=groups)
        return jaxgrad.conv2d(h, w, stride=stride, padding=pad, dilation=dilation,
                              groups=groups,
                              algorithm=None if mode == "autotune_jit" else mode)

    def loss(ws, x):
        h = x
        for w, layer in zip(ws, net["layers"]):
            h = jax.nn.relu(conv(h, w, layer))
        return jnp.mean(h ** 2)
    return loss


def step(net: dict, mode: str):
    """The SGD step ``(ws, x) -> (loss, new ws)`` of ``net`` run by ``mode``."""
    loss = loss_fn(net, mode)

    def sgd(ws, x):
        value, grads = jax.value_and_grad(loss)(ws, x)
        return value, [w - LEARNING_RATE * g for w, g in zip(ws, grads)]
    return sgd


def wrong_modes(errors: dict, baseline: float = 0.0) -> list[str]:
    """The modes whose error is beyond both ``TOLERANCE`` and
    ``BASELINE_FACTOR`` times ``baseline`` (``jax.grad``'s own error), or NaN."""
    return [mode for mode, e in errors.items()
            if not (e <= TOLERANCE or e <= BASELINE_FACTOR * baseline)]


def measure(net: dict, repeats: int) -> dict:
    """Check the float32 gradients against a float64 reference, compile the
    steps (tune the autotune_jit one, and check that it runs the step it
    kept), then time them."""
    ws = _weights(net)
    x = jax.random.normal(jax.random.PRNGKey(1),
                          (net["batch"], net["layers"][0][1], net["size"], net["size"]))
    compiled, formulations = {}, []
    for mode in MODES:
        if mode == "autotune_jit":
            compiled[mode] = jaxgrad.autotune_jit(step(net, mode), repeats=TUNING_REPEATS)
            start = time.perf_counter()
            jax.block_until_ready(compiled[mode](ws, x))
            tuning_s = time.perf_counter() - start
            continue
        with _plan.recording() as made:
            compiled[mode] = jax.jit(step(net, mode)).lower(ws, x).compile()
        if mode == "auto":
            formulations = sorted({(m.kind, m.choice.formulation) for m in made})
    # the gradients themselves, from a program of their own: the step's
    # updated weights w - 0.01·w̄ would hide a gradient error below w's scale
    grads = {mode: jax.jit(jax.value_and_grad(loss_fn(net, mode)))(ws, x)
             for mode in (*CHECKED, "jax.grad")}
    with jax.enable_x64(True):
        ref_loss, ref_grads = jax.jit(jax.value_and_grad(loss_fn(net, "jax.grad")))(
            [jnp.asarray(w, jnp.float64) for w in ws], jnp.asarray(x, jnp.float64))
    errors = {mode: max([_max_rel_error(loss, ref_loss)] + [_max_rel_error(a, b) for a, b in zip(g, ref_grads)])
              for mode, (loss, g) in grads.items()}
    tuned = compiled["autotune_jit"]
    choice = tuned.records[0].algorithm
    kept = jax.tree.leaves(compiled[choice](ws, x))
    errors["autotune_jit"] = max(_max_rel_error(a, b) for a, b in
                                 zip(jax.tree.leaves(tuned(ws, x)), kept, strict=True))
    # the harness's protocol: warm-up, rounds in a random order, a pause before each call
    times = _timing.time_interleaved(
        {mode: (lambda f=f: jax.block_until_ready(f(ws, x))) for mode, f in compiled.items()},
        repeats=repeats)
    return {"median_ms": {m: float(np.median(t)) * 1e3 for m, t in times.items()},
            "times_s": times, "max_rel_error": errors,
            "wrong": (wrong_modes({m: errors[m] for m in CHECKED}, errors["jax.grad"])
                      + wrong_modes({"autotune_jit": errors["autotune_jit"]})),
            "autotune_jit": {"choice": choice, "first_call_s": tuning_s},
            "auto_formulations": [list(f) for f in formulations]}


# --------------------------------------------------------------------------
# The run and its summary.


def run(args: argparse.Namespace, argv: list[str], save=lambda result: None) -> dict:
    rng = np.random.default_rng(args.seed)
    result = {"command": " ".join(["python -m jaxgrad_bench.networks", *argv]),
              "machine": _machine.machine(None), "versions": _machine.versions(),
              "environment": _machine.environment(), "kind": args.kind, "seed": args.seed,
              "repeats": args.repeats, "min_gflop": args.min_gflop,
              "max_gflop": args.max_gflop, "records": []}
    for i in range(args.count):
        net = draw(rng, args.kind, args.min_gflop, args.max_gflop)
        net.update(measure(net, args.repeats))
        result["records"].append(net)
        save(result)
        med = net["median_ms"]
        print(f"{i + 1}/{args.count} batch {net['batch']} {net['size']} px, "
              f"{len(net['layers'])} layers: auto {med['auto']:.3g} ms, textbook "
              f"{med['transpose']:.3g}, autotune_jit {med['autotune_jit']:.3g} "
              f"({net['autotune_jit']['choice']}), jax.grad {med['jax.grad']:.3g}"
              + (f"; WRONG: {', '.join(net['wrong'])}" if net["wrong"] else ""), flush=True)
    return result


def _layers_label(layers) -> str:
    def one(layer):
        c_out, c_in, k, stride, dilation, groups = layer
        extra = (f"/{stride}" if stride > 1 else "") + (f" d{dilation}" if dilation > 1 else "")
        if groups > 1 and groups == c_in == c_out:
            return f"dw{k}x{k}{extra} {c_out}"
        grouped = f" g{groups}" if groups > 1 else ""
        return f"{k}x{k}{extra}{grouped} {c_in}->{c_out}"
    return ", ".join(one(layer) for layer in layers)


def summarize(result: dict) -> str:
    """Markdown: how often and how far "auto" is over ``jax.grad``, then one
    row per network."""
    records = result["records"]
    ratio = [r["median_ms"]["auto"] / r["median_ms"]["jax.grad"] for r in records]
    textbook = [r["median_ms"]["auto"] / r["median_ms"]["transpose"] for r in records]
    tuned = [r["median_ms"]["autotune_jit"] / r["median_ms"]["jax.grad"] for r in records]
    geo = (lambda v: math.exp(sum(map(math.log, v)) / len(v))) if records else (lambda v: 0.0)
    over = sum(v > 1.05 for v in ratio)
    kept = sum(r["autotune_jit"]["choice"] == "transpose" for r in records)
    lines = [f"# Drawn networks ({result['kind']}, seed {result['seed']})", "",
             f"`{result['command']}`", "",
             f"{len(records)} networks; auto / jax.grad: geometric mean {geo(ratio):.3f}, "
             f"over 1.05 in {over}" + (f" (worst {max(ratio):.2f})" if records else "")
             + f"; auto / textbook: geometric mean {geo(textbook):.3f}; autotune_jit / "
             f"jax.grad: geometric mean {geo(tuned):.3f}, over 1.05 in "
             f"{sum(v > 1.05 for v in tuned)}" + (f" (worst {max(tuned):.2f})" if records else "")
             + f", textbook kept in {kept}.", "",
             "| batch | px | layers | GFLOP | auto ms | textbook ms | autotune_jit ms (kept) "
             "| jax.grad ms | auto / jax.grad | autotune_jit / jax.grad "
             "| error vs float64: auto / textbook / jax.grad |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    wrong = [i + 1 for i, r in enumerate(records) if r.get("wrong")]
    if wrong:
        lines[4:4] = [f"**Wrong results** (beyond {TOLERANCE:g} and twice jax.grad's error "
                      f"against the float64 reference, or autotune_jit not running the "
                      f"step it kept) in "
                      f"networks {', '.join(map(str, wrong))}.", ""]
    for r, v, t in zip(records, ratio, tuned):
        med = r["median_ms"]
        lines.append(f"| {r['batch']} | {r['size']} | {_layers_label(r['layers'])} | "
                     f"{r['forward_gflop']:.3f} | {med['auto']:.3g} | {med['transpose']:.3g} | "
                     f"{med['autotune_jit']:.3g} ({r['autotune_jit']['choice']}) | "
                     f"{med['jax.grad']:.3g} | {v:.2f} | {t:.2f} | "
                     + " / ".join(f"{r['max_rel_error'][m]:.1e}"
                                  for m in ("auto", "transpose", "jax.grad"))
                     + (f" wrong: {', '.join(r['wrong'])}" if r.get("wrong") else "") + " |")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.networks",
                                description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=KINDS, default="plain")
    p.add_argument("--count", type=positive_int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=positive_int, default=11,
                   help="interleaved timing rounds per network (medians)")
    p.add_argument("--min-gflop", type=float, default=0.02)
    p.add_argument("--max-gflop", type=float, default=1.0,
                   help="forward GFLOP bound of a drawn network (redrawn above it)")
    p.add_argument("--out", default="results", metavar="DIR")
    p.add_argument("--name", type=file_stem, default="networks", metavar="STEM")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.min_gflop > args.max_gflop:
        raise SystemExit(f"networks: --min-gflop {args.min_gflop} exceeds --max-gflop "
                         f"{args.max_gflop}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    result = run(args, argv, save=lambda result: _report.write_json(result, path))
    _report.write_json(result, path)
    md = out / f"{args.name}.md"
    _report.write_atomically(md, lambda tmp: tmp.write_text(summarize(result)))
    print(f"networks: {len(result['records'])} networks -> {path}, {md}")
    wrong = sum(bool(r["wrong"]) for r in result["records"])
    if wrong:
        print(f"networks: {wrong} networks with wrong results (see {md})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
