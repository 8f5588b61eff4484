"""Time each formulation of drawn convolutions in both layout contexts.

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

The configurations (``--family``), PyTorch's layout, padding (K-1)//2 on the
low side and K-1 in all:

  dense            stride and dilation 1; N, C_in, C_out = C_in · r, K and
                   the spatial size drawn from the lists below
  grouped-one-out  G groups of C_in/G input channels and one output channel
                   each (C_out = G), kernel 3, stride 1 or 2
  dense-few-out    dense, stride 1, few output channels (4-32) from many
                   inputs (24-256), K 3 or 5, batch 1-16 (odd and even):
                   the class of _plan's swapped_weight_max_out_channels row
                   (weight gradients as "transpose_swapped")
  dense-strided    dense, stride 2, 4-256 channels each way drawn apart,
                   K 3, 5 or 7, batch 1-16: the class of the stride-2 input
                   gradient row, of the aligned weight-gradient row and of
                   strided_weight_taps_max_out_channels
  dense-stride34   dense, stride 3 or 4, 4-384 channels each way drawn
                   apart, K 3, 5 or 7, batch 1-64, a taps buffer within
                   twice dense_taps_max_elements: the class of the dense
                   input gradients at strides 3-4 that held-out run 24
                   found slow under the textbook rule (its worst regrets)
  dense-thin       dense, 1-4 input channels (a network's stem), 8-128
                   outputs, K 3, 5 or 7, stride 1 or 2, batch 1-64, 28-224
                   px, 2-D only, a taps buffer above
                   dense_taps_small_elements and within twice
                   dense_taps_max_elements: the class of
                   held-out run 25's worst point (a weight gradient; a
                   row fitted on it lost in network steps, not shipped)

  grouped          1 < G < C_in with at least two input channels per group
                   (not depthwise): G 2-32, C_in/G 2-24, C_out/G 1-32, K 1-7,
                   stride 1-4 (a 1x1 kernel at stride 2-4), batch 1-32, 2-D
                   only, no kernel dilation (as every family here), 3 MFLOP
                   to 0.4 GFLOP per forward: the class of the
                   grouped forward's taps bounds
                   (taps_forward_max_group_products) and of the grouped
                   strided input-gradient row
  grouped-wide     as grouped, but with many input channels per group
                   (C_in/G 12-96, beyond the taps forward's 8), C_out/G
                   1-32, K 3-7, batch 1-8, sizes 7-112: the class of
                   im2col_forward_max_batch (one sample) and of
                   grouped_weight_taps_few_samples_max_batch (the core of a
                   grouped transposed convolution that widens its channels)
  grouped-strided-few-out
                   grouped (G 2-32, not depthwise) at stride 2, C_in/G 8-128,
                   few outputs per group (C_out/G 2-8), K 3, 5 or 7, batch
                   1-48, sizes 7-112, a taps buffer N·C_in·ΠK·P of 2^20-2^26
                   elements: the class of held-out run 31's worst point, a
                   stride-2 input gradient whose taps GEMM contracts only
                   C_out/G channels over a buffer of 48.8M elements

Writes ``NAME.json`` (one record per configuration) and prints one line per
configuration: taps' time (and, where it is a candidate, the swapped weight
gradient's) over the textbook rule's in each context for the map ``--map``.
"""

from __future__ import annotations

import argparse
import math
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
GROUPS = (4, 8, 16, 32)
GROUP_CHANNELS = (4, 8, 12, 16, 24, 32, 49, 64, 96)
GROUPED_BATCHES = (1, 2, 4, 8, 22)
GROUPED_SIZES = {1: (64, 256, 1024), 2: (12, 28, 56), 3: (7, 8, 12, 16)}
MAX_GROUPED_INPUT = 30_000_000   # N·C_in·ΠI
FEW_OUT_CHANNELS = (4, 8, 12, 16, 20, 24, 32)
FEW_OUT_IN_CHANNELS = (24, 32, 48, 64, 80, 96, 128, 192, 256)
FEW_OUT_BATCHES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 16)
FEW_OUT_KERNELS = (3, 5)
FEW_OUT_SIZES = {1: (64, 200, 500, 1000), 2: (14, 20, 28, 36, 44, 56)}
MAX_FEW_OUT_PRODUCT = 42_000_000   # N·(N·C_in·ΠI): twice _plan's bound
STRIDED_CHANNELS = (4, 8, 16, 24, 32, 48, 64, 80, 96, 128, 192, 256)
STRIDED_BATCHES = (1, 1, 2, 3, 4, 8, 16)
STRIDED_KERNELS = (3, 5, 7)
STRIDED_SIZES = {1: (64, 200, 500, 1000), 2: (14, 20, 28, 36, 44, 56, 62)}
STRIDE34_CHANNELS = (4, 8, 16, 24, 32, 40, 48, 64, 96, 112, 128, 192, 256, 384)
STRIDE34_BATCHES = (1, 2, 4, 8, 16, 28, 32, 64)
STRIDE34_KERNELS = (3, 5, 7)
STRIDE34_SIZES = {1: (32, 64, 200, 500, 1000), 2: (8, 9, 12, 14, 20, 28, 36, 56)}
THIN_CHANNELS = (1, 2, 3, 3, 4)
THIN_OUT_CHANNELS = (8, 16, 24, 32, 38, 48, 64, 96, 128)
THIN_KERNELS = (3, 5, 7)
THIN_STRIDES = (1, 1, 2)
THIN_BATCHES = (1, 2, 4, 8, 16, 17, 32, 64)
THIN_SIZES = (28, 32, 56, 64, 112, 128, 224)
MIN_THIN_BUFFER = 1 << 20    # _plan's dense_taps_small_elements
PARTIAL_GROUPS = (2, 2, 3, 4, 4, 6, 8, 8, 16, 32)
PARTIAL_IN_CHANNELS = (2, 3, 4, 6, 8, 12, 16, 24)      # per group
PARTIAL_OUT_CHANNELS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
PARTIAL_KERNELS = (1, 3, 3, 5, 7)
PARTIAL_STRIDES = (1, 1, 2, 2, 3, 4)
PARTIAL_BATCHES = (1, 2, 4, 8, 16, 32)
PARTIAL_SIZES = (7, 14, 28, 56, 112, 160, 224)
PARTIAL_FLOP = (3e6, 4e8)   # 2·N·C_out·C_in/G·ΠK·ΠO of the forward
WIDE_GROUPS = (2, 3, 4, 4, 6, 8, 16, 32)
WIDE_IN_CHANNELS = (12, 16, 24, 32, 44, 64, 96)        # per group
WIDE_OUT_CHANNELS = (1, 2, 3, 4, 6, 8, 12, 16, 32)
WIDE_KERNELS = (3, 3, 5, 7)
WIDE_BATCHES = (1, 1, 1, 2, 4, 8)
WIDE_SIZES = (7, 14, 19, 28, 41, 56, 112)
S2_GROUPS = (2, 3, 4, 6, 8, 8, 16, 32)
S2_IN_CHANNELS = (8, 12, 16, 24, 32, 48, 64, 93, 128)   # per group
S2_OUT_CHANNELS = (2, 3, 4, 5, 6, 8)                    # per group
S2_KERNELS = (3, 5, 7)
S2_BATCHES = (1, 2, 4, 8, 16, 32, 41, 48)
S2_SIZES = (7, 14, 16, 28, 41, 56, 112)
S2_BUFFER = (1 << 20, 1 << 26)      # N·C_in·ΠK·P


def draw(ndim: int, count: int, seed: int, family: str = "dense") -> list[tuple]:
    """``count`` (x_shape, w_shape, stride) triples, reproducible from ``seed``."""
    rng = random.Random(seed)
    out = []
    while family == "grouped-one-out" and len(out) < count:
        g, cg, n = rng.choice(GROUPS), rng.choice(GROUP_CHANNELS), rng.choice(GROUPED_BATCHES)
        s, size = rng.choice((1, 2)), rng.choice(GROUPED_SIZES[ndim])
        if n * g * cg * size ** ndim <= MAX_GROUPED_INPUT:
            out.append(((n, g * cg) + (size,) * ndim, (g, cg) + (3,) * ndim, s))
    while family == "dense-few-out" and len(out) < count:
        n, c, o = (rng.choice(FEW_OUT_BATCHES), rng.choice(FEW_OUT_IN_CHANNELS),
                   rng.choice(FEW_OUT_CHANNELS))
        k, size = rng.choice(FEW_OUT_KERNELS), rng.choice(FEW_OUT_SIZES[ndim])
        if n * n * c * size ** ndim <= MAX_FEW_OUT_PRODUCT:
            out.append(((n, c) + (size,) * ndim, (o, c) + (k,) * ndim, 1))
    while family == "dense-strided" and len(out) < count:
        n, c, o = (rng.choice(STRIDED_BATCHES), rng.choice(STRIDED_CHANNELS),
                   rng.choice(STRIDED_CHANNELS))
        k, size = rng.choice(STRIDED_KERNELS), rng.choice(STRIDED_SIZES[ndim])
        positions = math.prod(_output((size,) * ndim, k, 2))
        if n * c * k ** ndim * positions <= MAX_BUFFER:
            out.append(((n, c) + (size,) * ndim, (o, c) + (k,) * ndim, 2))
    dense = {"dense-stride34": (STRIDE34_BATCHES, STRIDE34_CHANNELS, STRIDE34_CHANNELS,
                                STRIDE34_KERNELS, (3, 4), STRIDE34_SIZES, 0),
             "dense-thin": (THIN_BATCHES, THIN_CHANNELS, THIN_OUT_CHANNELS, THIN_KERNELS,
                            THIN_STRIDES, {2: THIN_SIZES}, MIN_THIN_BUFFER)}.get(family)
    while dense and len(out) < count:   # B = N·C_in·ΠK·P within (least, 2·MAX_BUFFER]
        batches, ins, outs, kernels, strides, sizes, least = dense
        n, c, o = rng.choice(batches), rng.choice(ins), rng.choice(outs)
        k, s, size = rng.choice(kernels), rng.choice(strides), rng.choice(sizes[ndim])
        positions = math.prod(_output((size,) * ndim, k, s))
        if size >= k and least < n * c * k ** ndim * positions <= 2 * MAX_BUFFER:
            out.append(((n, c) + (size,) * ndim, (o, c) + (k,) * ndim, s))
    lists = {"grouped": (PARTIAL_GROUPS, PARTIAL_IN_CHANNELS, PARTIAL_OUT_CHANNELS,
                         PARTIAL_KERNELS, PARTIAL_BATCHES, PARTIAL_SIZES),
             "grouped-wide": (WIDE_GROUPS, WIDE_IN_CHANNELS, WIDE_OUT_CHANNELS,
                              WIDE_KERNELS, WIDE_BATCHES, WIDE_SIZES)}.get(family)
    while lists and len(out) < count:
        groups, ins, outs, kernels, batches, sizes = lists
        g, cg, og = rng.choice(groups), rng.choice(ins), rng.choice(outs)
        k, s, n = rng.choice(kernels), rng.choice(PARTIAL_STRIDES), rng.choice(batches)
        size = rng.choice(sizes)
        s = max(s, 2) if k == 1 else s     # a 1x1 kernel at stride 1 is a GEMM
        if size < k:
            continue
        flop = 2 * n * g * og * cg * k * k * math.prod(_output((size, size), k, s))
        if PARTIAL_FLOP[0] <= flop <= PARTIAL_FLOP[1]:
            out.append(((n, g * cg, size, size), (g * og, cg, k, k), s))
    while family == "grouped-strided-few-out" and len(out) < count:
        g, cg, og = rng.choice(S2_GROUPS), rng.choice(S2_IN_CHANNELS), rng.choice(S2_OUT_CHANNELS)
        k, n, size = rng.choice(S2_KERNELS), rng.choice(S2_BATCHES), rng.choice(S2_SIZES)
        buffer = n * g * cg * k * k * math.prod(_output((size, size), k, 2))
        if size >= k and S2_BUFFER[0] <= buffer <= S2_BUFFER[1]:
            out.append(((n, g * cg, size, size), (g * og, cg, k, k), 2))
    while family == "dense" and len(out) < count:
        n, c, r = rng.choice(BATCHES), rng.choice(CHANNELS), rng.choice(RATIOS)
        k, size = rng.choice(KERNELS), rng.choice(SIZES[ndim])
        if not 16 <= c * r <= MAX_OUT_CHANNELS or size < k:
            continue
        if n * c * k ** ndim * size ** ndim > MAX_BUFFER:
            continue
        out.append(((n, c) + (size,) * ndim, (c * r, c) + (k,) * ndim, 1))
    return out


def _spec(ndim: int, k: int, stride: int, groups: int, algorithm: str):
    """The drawn geometry: padding (K-1)//2 low and K-1 in all, dilation 1."""
    from jaxgrad._conv._spec import ConvSpec
    lo = (k - 1) // 2
    return ConvSpec((stride,) * ndim, ((lo, k - 1 - lo),) * ndim, (1,) * ndim, groups,
                    algorithm)


def _output(spatial, k: int, stride: int) -> tuple[int, ...]:
    from jaxgrad._conv._spec import conv_output_shape
    return tuple(conv_output_shape(spatial, (k,) * len(spatial),
                                   _spec(len(spatial), k, stride, 1, "auto")))


def measure(x_shape, w_shape, stride: int = 1) -> dict:
    """autotune's times of every map's candidates, and auto's choices."""
    import jax
    import jax.numpy as jnp

    from jaxgrad._conv import _autotune, _plan
    ndim = len(x_shape) - 2
    k = w_shape[2]
    groups = x_shape[1] // w_shape[1]
    spec = _spec(ndim, k, stride, groups, "autotune")
    g_shape = (x_shape[0], w_shape[0]) + _output(tuple(x_shape[2:]), k, stride)
    auto = _plan.plan(_spec(ndim, k, stride, groups, "auto"),
                      x_shape, w_shape, g_shape, jnp.float32, backend="cpu")
    device = jax.devices("cpu")[0]
    entry = _autotune._tune(spec, tuple(x_shape), tuple(w_shape), jnp.float32, "cpu",
                            device)
    return {"x": list(x_shape), "w": list(w_shape), "stride": stride, "groups": groups,
            "auto": {kind: [choice.formulation, choice.reason] for kind, choice in
                     zip(_autotune.MAPS, (auto.forward, auto.input_grad, auto.weight_grad))},
            "maps": {kind: entry[kind] for kind in _autotune.MAPS}}


def line(record: dict, kind: str) -> str:
    part = record["maps"][kind]
    given, moved = part["times_s"], part["moved_s"]
    c, o = record["x"][1], record["w"][0]
    head = (f"x={tuple(record['x'])} w={tuple(record['w'])} s={record.get('stride', 1)} "
            f"g={record.get('groups', 1)} r={o / c:g} "
            f"auto={':'.join(record['auto'][kind])}")
    textbook = next(iter(given), None)     # candidates list the textbook one first
    ratios = "".join(
        f" {label}/textbook {given[name] / given[textbook]:.2f} as given, "
        f"{moved[name] / moved[textbook]:.2f} moved;"
        for name, label in (("taps", "taps"), ("transpose_swapped", "swapped"),
                            ("per_group", "per group"), ("transpose_per_group", "per group"),
                            ("im2col", "im2col"))
        if name in given)
    if not ratios:
        return head + " (no taps candidate)"
    return head + ratios + f" textbook {given[textbook] * 1e3:.3g} ms"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.contexts",
                                description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=("dense", "grouped-one-out", "dense-few-out",
                                        "dense-strided", "dense-stride34", "dense-thin", "grouped",
                                        "grouped-wide", "grouped-strided-few-out"),
                   default="dense")
    p.add_argument("--ndim", type=int, choices=(1, 2, 3), default=1)
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--map", choices=("forward", "input_grad", "weight_grad"),
                   default="input_grad")
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name", default="contexts")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.family != "grouped-one-out" and args.ndim == 3:
        raise SystemExit(f"contexts: --family {args.family} draws 1-D and 2-D shapes only")
    if (args.family in ("grouped", "grouped-wide", "dense-thin", "grouped-strided-few-out")
            and args.ndim != 2):
        raise SystemExit(f"contexts: --family {args.family} draws 2-D shapes only (--ndim 2)")
    import jax
    jax.config.update("jax_platforms", "cpu")
    from . import _machine, _report
    records = []
    for x_shape, w_shape, stride in draw(args.ndim, args.count, args.seed, args.family):
        records.append(measure(x_shape, w_shape, stride))
        print(line(records[-1], args.map), flush=True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    _report.write_json({"command": "python -m jaxgrad_bench.contexts " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": _machine.machine(None),
        "versions": _machine.versions(), "family": args.family, "ndim": args.ndim,
        "seed": args.seed, "records": records}, path)
    print(f"contexts: {len(records)} configurations -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
