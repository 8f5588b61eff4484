"""Fit the CPU rules of ``algorithm="auto"`` for the gradients on sweep results.

    python -m jaxgrad_bench.fit bench/results/sweep-cpu-2core-fit.json ...

For every configuration of the sweeps (``jaxgrad_bench.sweep``, parts
``input`` and ``weight``) the convolution map that computes the gradient is
found by tracing (``regret.auto_choices``: a transposed convolution's input
gradient is the core's forward, for example), with the shapes it sees. Each
such map is one point: its features (below) and the measured times of the
textbook rule ("transpose"), of taps and of autodiff.

The rule family fitted is ``_plan.gradient_choice`` itself (the script calls
it with trial values in its ``THRESHOLDS`` rows). For a dense gradient (or a
grouped one the textbook rule splits into G dense convolutions) with a kernel
of more than one tap that is not tiled (stride = kernel), taps needs a buffer
of B = N·C_in·ΠK·P elements (K copies of the input, or of the input gradient)
feeding a GEMM whose other dimension is C_out/G; it pays where the GEMM does
enough work per element copied, or where XLA's own convolution is on a slow
path:

  taps  if  ndim == 3                          (XLA CPU's 3-D convolutions)
        or  an input gradient at stride 2     (XLA's zero-inserted form)
  transpose if a dense 2-D weight gradient with C_in and C_out multiples of 8,
            C_in >= dense_taps_aligned_min_in_channels (not searched: the
            grid that showed it spans 32-256 channels) and
            C_out < dense_taps_aligned_weight_min_out_channels
  taps  if  B <= dense_taps_small_elements    (a small buffer stays in cache)
            and N <= dense_taps_small_max_batch (not searched: set with the
            others fixed at their fitted values)
        or  C_out/G >= dense_taps_min_out_channels
            and B <= dense_taps_max_elements  (enough work per element copied)
  else  transpose

Depthwise gradients, many groups, 1x1 and tiled kernels keep taps (the
sweep's points confirm it; the script reports their regret too). The script
searches the three thresholds on a grid, minimising the mean log regret
(time(rule) / time(fastest candidate)) with the worst regret as the tie
breaker, and prints the best values and the regret they give per family.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import pathlib
import sys

import numpy as np

from . import regret

GRID = {
    "dense_taps_aligned_weight_min_out_channels": (8, 64, 128, 256, 512, 10**9),
    "dense_taps_min_out_channels": (1, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 10**9),
    "dense_taps_max_elements": tuple(2 ** e for e in range(18, 28)) + (10**12,),
    "dense_taps_small_elements": (0,) + tuple(2 ** e for e in range(14, 23)),
}


def points(results: list[dict]) -> list[dict]:
    """One point per (configuration, gradient): features and times."""
    out = []
    for result in results:
        for record in result["records"]:
            times = record.get("candidates")
            if not times:
                continue
            for part in ("input", "weight"):
                t = {k.split(":", 1)[1]: v["median_s"] for k, v in times.items()
                     if k.startswith(part + ":")}
                if not {"transpose", "taps", "autodiff"} <= set(t):
                    continue
                made = regret.auto_choices(record["config"], part)
                if len(made) != 1:
                    continue
                out.append({"name": record["name"], "part": part,
                            "config": record["config"], "times": t,
                            "spec": made[0].spec, "shapes": made[0].shapes,
                            **features(made[0], record["config"])})
    return out


def features(made, config: dict) -> dict:
    """The map's features from the shapes it was traced with."""
    kind = made.kind
    if kind == "input_grad":           # (g, w): g (N, C_out, *P), w (C_out, C_in/G, *K)
        g, w = made.shapes
        n, c_out, p_shape = g[0], g[1], g[2:]
        c_in = w[1] * config["groups"]
        kernel = w[2:]
    elif kind == "weight_grad":        # (x, g)
        x, g = made.shapes
        n, c_in, c_out, p_shape = x[0], x[1], g[1], g[2:]
        kernel = tuple(config["weight"][2:])
    else:                              # forward (x, w)
        x, w = made.shapes
        n, c_in, c_out = x[0], x[1], w[0]
        kernel = w[2:]
        p_shape = ()
    taps = math.prod(kernel)
    positions = math.prod(p_shape) if p_shape else 0
    groups = config["groups"]
    tiled = all(s == k and d == 1 for s, k, d in
                zip(config["stride"], kernel, config["dilation"]))
    return {"map": kind, "ndim": len(kernel), "groups": groups,
            "depthwise": groups > 1 and groups == c_in, "n": n, "c_in": c_in,
            "c_out": c_out, "taps": taps, "positions": positions,
            "tiled": tiled or taps == 1, "buffer": n * c_in * taps * positions}


def family(point: dict) -> str:
    if point["map"] == "forward":
        return "conv_transpose input (core forward)"
    if point["groups"] > 1:
        return "depthwise" if point["depthwise"] else "grouped"
    if point["tiled"]:
        return "dense 1x1 / tiled"
    return f"dense {point['ndim']}-D"


@contextlib.contextmanager
def thresholds(th: dict):
    """``_plan.THRESHOLDS`` with the values ``th`` while open."""
    from jaxgrad._conv import _plan
    saved = {k: _plan.THRESHOLDS[k] for k in th}
    try:
        for k, v in th.items():
            _plan.THRESHOLDS[k] = dataclasses.replace(saved[k], value=v)
        yield
    finally:
        _plan.THRESHOLDS.update(saved)


def rule(point: dict) -> str:
    """The formulation jaxgrad's "auto" picks for ``point`` on CPU with the
    table as it is (see :func:`thresholds`): ``_plan`` itself decides, so the
    rule fitted is the rule shipped. (A transposed convolution's input
    gradient is the core's forward map, which "auto" may run as im2col for a
    one-sample grouped one; the sweeps do not time im2col, so such a pick is
    scored with the textbook time.)"""
    from jaxgrad._conv import _plan
    spec = dataclasses.replace(point["spec"], algorithm="auto")
    a, b = point["shapes"]
    if point["map"] == "forward":
        choice = _plan.forward_choice(spec, a, b, np.float32, backend="cpu")
    elif point["map"] == "input_grad":       # (g, w)
        x = (a[0], b[1] * spec.groups)
        choice = _plan.gradient_choice("input", spec, x, b, a, _plan.UNPLACED, "cpu")
    else:                                    # (x, g)
        choice = _plan.gradient_choice("weight", spec, a, tuple(point["config"]["weight"]),
                                       b, _plan.UNPLACED, "cpu")
    # "transpose_swapped" (a dense weight gradient with few output channels,
    # _plan's swapped_weight_max_out_channels) was not timed in the sweeps:
    # such a point is scored with the textbook rule's time
    return "taps" if choice.formulation == "taps" else "transpose"


def scores(pts: list[dict], th: dict) -> np.ndarray:
    with thresholds(th):
        return np.array([p["times"][rule(p)] / min(p["times"].values()) for p in pts])


def search(pts: list[dict]) -> dict:
    """The grid point of least mean log regret (ties: least worst regret)."""
    best, best_key = None, None
    for values in itertools.product(*GRID.values()):
        th = dict(zip(GRID, values))
        r = scores(pts, th)
        key = (round(float(np.mean(np.log(r))), 4), float(r.max()))
        if best_key is None or key < best_key:
            best, best_key = th, key
    return best


def report(pts: list[dict], th: dict) -> str:
    lines = ["| family | points | median regret | worst | > 1.05x autodiff |",
             "|---|---|---|---|---|"]
    groups: dict[str, list[dict]] = {}
    for p in pts:
        groups.setdefault(family(p), []).append(p)
    for name, members in sorted(groups.items()) + [("all", pts)]:
        r = scores(members, th)
        with thresholds(th):
            slow = sum(p["times"][rule(p)] > 1.05 * p["times"]["autodiff"]
                       for p in members)
        lines.append(f"| {name} | {len(members)} | {np.median(r):.3f} | "
                     f"{r.max():.2f} | {slow} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.fit",
                                description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="+", metavar="JSON")
    p.add_argument("--worst", type=int, default=0, metavar="N",
                   help="also list the N points of largest regret")
    args = p.parse_args(argv)
    import jax
    jax.config.update("jax_platforms", "cpu")
    pts = points([json.loads(pathlib.Path(s).read_text()) for s in args.sweeps])
    th = search(pts)
    print("fitted:", ", ".join(f"{k} = {v}" for k, v in th.items()))
    print(report(pts, th))
    if args.worst:
        r = scores(pts, th)
        with thresholds(th):
            chosen = [rule(p) for p in pts]
        for i in np.argsort(-r)[:args.worst]:
            p = pts[i]
            t = p["times"]
            print(f"{family(p):12s} {p['part']:6s} "
                  f"{p['config']['op']} x={p['config']['input']} w={p['config']['weight']} "
                  f"s={p['config']['stride'][0]} d={p['config']['dilation'][0]} "
                  f"g={p['groups']} B={p['buffer']:.3g} | " + " ".join(
                      f"{k} {v * 1e3:.3g}" for k, v in t.items()) + f" -> {chosen[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
