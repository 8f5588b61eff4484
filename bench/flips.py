"""One network's SGD step with each of "auto"'s choices flipped, one at a time.

    python -m jaxgrad_bench.flips \\
        --net '{"batch": 8, "size": 28, "layers": [[192, 3, 3, 1, 1, 1], [64, 192, 3, 4, 1, 1]]}' \\
        --out bench/results --name flips-cpu-2core-example

A rule fitted on maps timed alone can lose inside a network, where XLA picks
the activations' layouts for the whole step (docs/performance.md,
"Isolated timings and networks"). This script shows where a step's time
goes: it compiles the step of ``jaxgrad_bench.networks`` (``--net``: the
batch, the square input size and the layers ``[C_out, C_in, K, stride,
dilation, groups]``, as in that script's records) under "auto", then once
more for each map that "auto" does not run as XLA's own convolution (a
forward that is not "lax", a gradient that is not "transpose"), with that one
map flipped to XLA's convolution ("lax" for a forward, "transpose" for a
gradient; where the rules split a grouped convolution into G dense ones on
this backend, that split follows, as under "transpose"), and also under
"transpose" (every map flipped) and ``jax.grad``. All are timed by the harness's protocol
(``_timing.time_interleaved``, medians) in one process. Each flipped step's
loss and updated weights must match "auto"'s within ``TOLERANCE`` (the same
sums in another order), else the script exits with status 1.

Prints each program's median and its ratio to "auto"'s, and writes
``NAME.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys

TOLERANCE = 1e-4
FLIPPED = "flipped by jaxgrad_bench.flips"


def _key(kind: str, *shapes) -> tuple:
    return kind, tuple(tuple(s) for s in shapes)


@contextlib.contextmanager
def flipped(target: tuple):
    """Within the block, the map ``target`` (``(kind, shapes)`` as recorded by
    ``_plan.recording``) runs as XLA's own convolution; every other map as
    "auto" picks it."""
    from jaxgrad._conv import _core, _plan
    gradient, forward = _plan.gradient_choice, _plan.forward_choice

    def gradient_choice(kind, spec, x_shape, w_shape, g_shape, placement, backend=None):
        choice = gradient(kind, spec, x_shape, w_shape, g_shape, placement, backend)
        key = (_key("input_grad", g_shape, w_shape) if kind == "input"
               else _key("weight_grad", x_shape, g_shape))
        return _plan.Choice("transpose", FLIPPED) if key == target else choice

    def forward_choice(spec, x_shape, w_shape, dtype, placement=_plan.UNPLACED, backend=None):
        choice = forward(spec, x_shape, w_shape, dtype, placement, backend)
        if _key("forward", x_shape, w_shape) == target:
            return _plan.Choice("lax", FLIPPED)
        return choice

    _plan.gradient_choice = gradient_choice
    _plan.forward_choice = _core.forward_choice = forward_choice
    try:
        yield
    finally:
        _plan.gradient_choice = gradient
        _plan.forward_choice = _core.forward_choice = forward


def measure(net: dict, repeats: int) -> dict:
    """The step's median time under "auto", each single flip, "transpose" and
    ``jax.grad``, and each flipped step's largest difference from "auto"'s."""
    import jax
    import numpy as np

    from jaxgrad._conv import _plan

    from . import _timing, networks
    from .sweep import _max_rel_error
    net = {"kind": "plain", **net}
    ws = networks._weights(net)
    x = jax.random.normal(jax.random.PRNGKey(1),
                          (net["batch"], net["layers"][0][1], net["size"], net["size"]))
    compiled = {}
    with _plan.recording() as made:
        compiled["auto"] = jax.jit(networks.step(net, "auto")).lower(ws, x).compile()
    targets = []
    for m in made:
        native = "lax" if m.kind == "forward" else "transpose"
        key = _key(m.kind, *m.shapes)
        if m.choice.formulation != native and key not in targets:
            targets.append(key)
    choices = {f"{m.kind} {list(map(list, m.shapes))}": [m.choice.formulation, m.choice.reason]
               for m in made}
    differences = {}
    want = jax.tree.leaves(compiled["auto"](ws, x))
    for target in targets:
        label = f"flip {target[0]} {[list(s) for s in target[1]]}"
        with flipped(target), _plan.recording() as again:
            compiled[label] = jax.jit(networks.step(net, "auto")).lower(ws, x).compile()
        if not any(FLIPPED in m.choice.reason for m in again):
            raise RuntimeError(f"flips: {label} was not traced")
        differences[label] = max(_max_rel_error(a, b) for a, b in
                                 zip(jax.tree.leaves(compiled[label](ws, x)), want,
                                     strict=True))
    for mode in ("transpose", "jax.grad"):
        compiled[mode] = jax.jit(networks.step(net, mode)).lower(ws, x).compile()
    times = _timing.time_interleaved(
        {name: (lambda f=f: jax.block_until_ready(f(ws, x))) for name, f in compiled.items()},
        repeats=repeats)
    return {"net": net, "auto_choices": choices,
            "median_ms": {name: float(np.median(t)) * 1e3 for name, t in times.items()},
            "max_rel_difference_from_auto": differences,
            "wrong": [name for name, d in differences.items() if not d <= TOLERANCE]}


def parser() -> argparse.ArgumentParser:
    from ._options import positive_int
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.flips",
                                description=__doc__.splitlines()[0])
    p.add_argument("--net", required=True,
                   help='JSON: {"batch": N, "size": P, "layers": [[C_out, C_in, K, '
                        'stride, dilation, groups], ...]}')
    p.add_argument("--repeats", type=positive_int, default=21)
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name", default="flips")
    return p


def _net(text: str) -> dict:
    try:
        net = json.loads(text)
        layers = [[int(v) for v in layer] for layer in net["layers"]]
        batch, size = int(net["batch"]), int(net["size"])
    except (ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"flips: --net must be JSON with batch, size and layers of six "
                         f"integers, got {text!r} ({err})") from None
    if not layers or any(len(layer) != 6 for layer in layers):
        raise SystemExit(f"flips: --net layers must each be [C_out, C_in, K, stride, "
                         f"dilation, groups], got {net['layers']!r}")
    return {"batch": batch, "size": size, "layers": layers}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    net = _net(args.net)
    import jax
    jax.config.update("jax_platforms", "cpu")
    from . import _machine, _report
    result = measure(net, args.repeats)
    auto = result["median_ms"]["auto"]
    for name, ms in result["median_ms"].items():
        print(f"{ms:9.3f} ms  {ms / auto:5.2f}x auto  {name}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    _report.write_json({"command": "python -m jaxgrad_bench.flips " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": _machine.machine(None),
        "versions": _machine.versions(), **result}, path)
    print(f"flips: {len(result['median_ms'])} programs -> {path}")
    if result["wrong"]:
        print(f"flips: WRONG (differ from auto beyond {TOLERANCE}): "
              + ", ".join(result["wrong"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
