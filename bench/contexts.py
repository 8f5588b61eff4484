"""Time each formulation of drawn dense convolutions in both layout contexts.

    python -m jaxgrad_bench.contexts --ndim 1 --count 40 --seed 1 \\
        --out bench/results --name contexts-cpu-2core-1d

The sweep (``jaxgrad_bench.sweep``) times a gradient alone with its arguments
in NCHW. Inside a network XLA CPU keeps activations channels-last between two
of its own convolutions, so a formulation that wins alone in NCHW can lose
there (docs/performance.md, "Isolated timings and networks"). This script
times each map of a drawn configuration as ``algorithm="autotune"`` does
(``_autotune._tune``: a warm-up, then interleaved rounds of every candidate
with the activations as given and with their feature axis moved), and records
beside those times the formulation and reason that "auto"'s rules pick.

The configurations: dense, stride and dilation 1, "same" padding (the low
side (K-1)//2), PyTorch's layout; N, C_in, C_out = C_in · r, K and the
spatial size drawn from the lists below. Writes ``NAME.json`` (one record per
configuration) and prints one line per configuration: taps' time over the
textbook rule's in each context for the map ``--map``.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys

BATCHES = (1, 1, 2, 4, 8, 16, 31, 64)
CHANNELS = (1, 2, 3, 4, 8, 12, 16, 24, 32, 64)
RATIOS = (1, 2, 4, 6, 8, 12, 16, 32, 64)
KERNELS = (2, 3, 5, 7, 11)
SIZES = {1: (16, 40, 64, 100, 300, 500, 1000, 2000), 2: (4, 7, 14, 28, 56)}
MAX_OUT_CHANNELS = 1024
MAX_BUFFER = 1 << 23     # N·C_in·K·P: _plan's dense_taps_max_elements


def draw(ndim: int, count: int, seed: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``count`` (x_shape, w_shape) pairs, reproducible from ``seed``."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        n, c, r = rng.choice(BATCHES), rng.choice(CHANNELS), rng.choice(RATIOS)
        k, size = rng.choice(KERNELS), rng.choice(SIZES[ndim])
        if not 16 <= c * r <= MAX_OUT_CHANNELS or size < k:
            continue
        if n * c * k ** ndim * size ** ndim > MAX_BUFFER:
            continue
        out.append(((n, c) + (size,) * ndim, (c * r, c) + (k,) * ndim))
    return out


def measure(x_shape, w_shape) -> dict:
    """autotune's times of every map's candidates, and auto's choices."""
    import jax
    import jax.numpy as jnp

    from jaxgrad._conv import _autotune, _plan
    from jaxgrad._conv._spec import ConvSpec
    ndim = len(x_shape) - 2
    k = w_shape[2]
    lo = (k - 1) // 2
    spec = ConvSpec((1,) * ndim, ((lo, k - 1 - lo),) * ndim, (1,) * ndim, 1, "autotune")
    g_shape = (x_shape[0], w_shape[0]) + tuple(x_shape[2:])
    auto = _plan.plan(ConvSpec(spec.stride, spec.padding, spec.dilation, 1, "auto"),
                      x_shape, w_shape, g_shape, jnp.float32, backend="cpu")
    device = jax.devices("cpu")[0]
    entry = _autotune._tune(spec, tuple(x_shape), tuple(w_shape), jnp.float32, "cpu",
                            device)
    return {"x": list(x_shape), "w": list(w_shape),
            "auto": {kind: [choice.formulation, choice.reason] for kind, choice in
                     zip(_autotune.MAPS, (auto.forward, auto.input_grad, auto.weight_grad))},
            "maps": {kind: entry[kind] for kind in _autotune.MAPS}}


def line(record: dict, kind: str) -> str:
    part = record["maps"][kind]
    given, moved = part["times_s"], part["moved_s"]
    c, o = record["x"][1], record["w"][0]
    head = (f"x={tuple(record['x'])} w={tuple(record['w'])} r={o / c:g} "
            f"auto={':'.join(record['auto'][kind])}")
    if "taps" not in given:
        return head + " (no taps candidate)"
    return (head + f" taps/textbook {given['taps'] / given['transpose']:.2f} as given, "
            f"{moved['taps'] / moved['transpose']:.2f} moved; textbook "
            f"{given['transpose'] * 1e3:.3g} ms")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.contexts",
                                description=__doc__.splitlines()[0])
    p.add_argument("--ndim", type=int, choices=(1, 2), default=1)
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--map", choices=("forward", "input_grad", "weight_grad"),
                   default="input_grad")
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name", default="contexts")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import jax
    jax.config.update("jax_platforms", "cpu")
    from . import _machine, _report
    records = []
    for x_shape, w_shape in draw(args.ndim, args.count, args.seed):
        records.append(measure(x_shape, w_shape))
        print(line(records[-1], args.map), flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    _report.write_json({"command": "python -m jaxgrad_bench.contexts " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": _machine.machine(None),
        "versions": _machine.versions(), "ndim": args.ndim, "seed": args.seed, "records": records}, path)
    print(f"contexts: {len(records)} configurations -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
