"""The regret of ``algorithm="auto"`` on a formulation sweep's configurations.

    python -m jaxgrad_bench.regret bench/results/sweep-cpu-2core-heldout.json

For each configuration of the sweep (``jaxgrad_bench.sweep``) and each part
timed there (input gradient, weight gradient, both from one VJP, value and
both gradients):

  regret          time(auto) / time(fastest candidate), the candidates being
                  every formulation timed (``transpose``, ``taps``,
                  ``autodiff`` = what ``jax.grad`` runs, and ``auto`` itself)
  vs jax.grad     time(auto) / time(autodiff)

Where the sweep timed ``auto`` itself (``--formulations ... auto``) its time
is used. Elsewhere "auto"'s time is read off the formulation it picks: the
rules of the jaxgrad installed are asked, by tracing the part with
``algorithm="auto"`` (nothing runs), which formulation each convolution map
gets; the sweep's time of that formulation is auto's. That is how rules are
fitted on one sweep before a held-out one measures them.

Prints a summary (median, 90th percentile and worst regret; how many
configurations are slower than ``jax.grad`` by more than 5%) and, with
``--rows``, one row per configuration.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from . import _cases

PART_WRT = {"input": (0,), "weight": (1,), "bwd": (0, 1), "vag": (0, 1)}
SLOWER = 1.05    # "slower than jax.grad" beyond this ratio


def layer_of(config: dict) -> _cases.Layer:
    """The bench layer a sweep record describes."""
    if config["op"] == "conv_transpose":
        return _cases.conv_transpose(tuple(config["weight"]), tuple(config["stride"]),
                                     tuple(config["padding"]),
                                     tuple(config["output_padding"]), config["groups"],
                                     tuple(config["dilation"]))
    return _cases.conv(tuple(config["weight"]), tuple(config["stride"]),
                       tuple(config["padding"]), tuple(config["dilation"]),
                       config["groups"])


# The core map that computes each gradient (a transposed convolution is the
# core's input-gradient map, so its input gradient is the core's forward).
ROLE_MAPS = {("conv", "input"): ("input_grad",), ("conv", "weight"): ("weight_grad",),
             ("conv_transpose", "input"): ("forward",),
             ("conv_transpose", "weight"): ("weight_grad",)}


def auto_choices(config: dict, part: str, algorithm: str = "auto") -> list:
    """The choices (``_plan.Made``) "auto" makes for ``part`` of ``config``:
    traced with abstract float32 operands, nothing runs. A custom VJP traces
    every cotangent, also the one a part does not ask for (XLA drops it from
    the compiled program), so for one gradient only its map is kept."""
    import jax
    import jaxgrad
    from jaxgrad._conv import _plan

    layer = layer_of(config)
    if layer.op == "conv":
        def forward(x, w):
            return jaxgrad.conv(x, w, None, layer.stride, layer.padding,
                                layer.dilation, layer.groups, algorithm=algorithm)
    else:
        def forward(x, w):
            return jaxgrad.conv_transpose(x, w, None, layer.stride, layer.padding,
                                          layer.output_padding, layer.groups,
                                          layer.dilation, algorithm=algorithm)
    wrt = PART_WRT[part]

    def run(x, w, g):
        args = [x, w]

        def partial(*free):
            for i, a in zip(wrt, free):
                args[i] = a
            return forward(*args)
        if part == "vag":
            with _plan.recording() as made:
                _, vjp = jax.vjp(partial, x, w)
                vjp(g)
            run.made = made
            return g
        _, vjp = jax.vjp(partial, *[(x, w)[i] for i in wrt])
        with _plan.recording() as made:
            vjp(g)
        run.made = made
        return g

    shapes = [jax.ShapeDtypeStruct(tuple(s), np.float32)
              for s in (config["input"], config["weight"], config["output"])]
    jax.make_jaxpr(run)(*shapes)
    kinds = ROLE_MAPS.get((layer.op, part))
    return [m for m in run.made if kinds is None or m.kind in kinds]


def timed_label(config: dict, part: str) -> str | None:
    """The sweep candidate ("taps" or "transpose") that runs the plan "auto"
    makes for ``part`` of ``config``: the one whose every map gets the same
    formulation; None where auto's plan is neither (it mixes them)."""
    def plan(algorithm):
        return [(m.kind, m.choice.formulation)
                for m in auto_choices(config, part, algorithm)]
    auto = plan("auto")
    return next((label for label in ("taps", "transpose") if plan(label) == auto), None)


def auto_time(record: dict, part: str) -> tuple[float, str]:
    """(auto's median seconds for ``part``, how it was obtained)."""
    times = record["candidates"]
    if f"{part}:auto" in times:
        return times[f"{part}:auto"]["median_s"], "timed"
    label = timed_label(record["config"], part)
    if label is None:
        raise LookupError("auto mixes formulations here and the sweep did not time it")
    return times[f"{part}:{label}"]["median_s"], label


def regrets(result: dict, parts=None) -> dict[str, list[dict]]:
    """Per part, one row per configuration: regret, ratio to autodiff, how."""
    parts = parts or result.get("parts", ["input", "weight"])
    table: dict[str, list[dict]] = {part: [] for part in parts}
    for record in result["records"]:
        times = record.get("candidates")
        if not times:
            continue
        for part in parts:
            mine = {k.split(":", 1)[1]: v["median_s"] for k, v in times.items()
                    if k.startswith(part + ":")}
            if not mine:
                continue
            try:
                auto, how = auto_time(record, part)
            except LookupError as exc:
                table[part].append({"name": record["name"], "config": record["config"],
                                    "skipped": str(exc)})
                continue
            table[part].append({"name": record["name"], "config": record["config"],
                                "regret": auto / min(mine.values()),
                                "vs_autodiff": auto / mine["autodiff"],
                                "best": min(mine, key=mine.get), "how": how,
                                "auto_ms": auto * 1e3})
    return table


def summary(table: dict[str, list[dict]]) -> str:
    """A markdown table: per part, regret median / p90 / worst and the count of
    configurations slower than jax.grad by more than 5%."""
    lines = ["| part | configurations | median regret | 90th pct | worst | "
             "worst vs jax.grad | > 1.05x jax.grad |", "|---|---|---|---|---|---|---|"]
    for part, rows in table.items():
        rows = [r for r in rows if "regret" in r]
        if not rows:
            continue
        r = np.array([row["regret"] for row in rows])
        a = np.array([row["vs_autodiff"] for row in rows])
        lines.append(f"| {part} | {len(rows)} | {np.median(r):.3f} | "
                     f"{np.percentile(r, 90):.3f} | {r.max():.3f} | {a.max():.3f} | "
                     f"{int((a > SLOWER).sum())} |")
    return "\n".join(lines)


def rows_table(table: dict[str, list[dict]], worst: int | None = None) -> str:
    from .sweep import _shape_label
    lines = ["| part | configuration | auto ms | regret | vs jax.grad | fastest | auto's |",
             "|---|---|---|---|---|---|---|"]
    for part, rows in table.items():
        rows = sorted((r for r in rows if "regret" in r), key=lambda r: -r["regret"])
        for row in rows[:worst]:
            lines.append(f"| {part} | {_shape_label(row['config'])} | "
                         f"{row['auto_ms']:.3g} | {row['regret']:.2f} | "
                         f"{row['vs_autodiff']:.2f} | {row['best']} | {row['how']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.regret",
                                description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="+", metavar="JSON")
    p.add_argument("--parts", nargs="+", choices=tuple(PART_WRT))
    p.add_argument("--rows", type=int, metavar="N", default=0,
                   help="also list the N worst configurations of each part")
    args = p.parse_args(argv)
    import jax
    jax.config.update("jax_platforms", "cpu")
    for path in args.sweeps:
        result = json.loads(pathlib.Path(path).read_text())
        table = regrets(result, args.parts)
        print(f"## {path}\n\n{summary(table)}\n")
        if args.rows:
            print(rows_table(table, args.rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
