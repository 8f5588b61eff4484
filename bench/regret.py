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

With ``--confirm R``, every configuration that misses a held-out target
(regret above 1.5, or slower than ``jax.grad`` by more than 5%) is timed again
here, R interleaved rounds (at least 3, fewer than R where R would take over
a minute) of every formulation, "auto" and a control:
autodiff compiled a second time. The control runs the same program as
autodiff, so its ratio to autodiff is the noise of that measurement. A sweep
times each configuration once with few repetitions, and on a shared 2-core
machine, of two identical programs measured that way, the one read as slower
by more than 5% in 14-38% of the pairs in the sweeps committed
(docs/performance.md, "Held-out regret"):
a single sweep row is not evidence of a miss; the confirmed ratio is.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

from . import _cases
from ._options import positive_int

PART_WRT = {"input": (0,), "weight": (1,), "bwd": (0, 1), "vag": (0, 1)}
SLOWER = 1.05    # "slower than jax.grad" beyond this ratio
WORST = 1.5      # the held-out target on the worst regret


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
                                **_scores(auto, mine), "how": how})
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


def flagged(table: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """(part, row) of every row that misses a held-out target: a regret above
    ``WORST`` or a time above ``SLOWER`` x jax.grad's."""
    return [(part, row) for part, rows in table.items() for row in rows
            if "regret" in row and (row["regret"] > WORST or row["vs_autodiff"] > SLOWER)]


def _scores(auto: float, times: dict[str, float]) -> dict:
    """"auto"'s regret and ratio to autodiff against ``times`` (formulation ->
    seconds), the fastest of them and "auto"'s time in ms."""
    return {"regret": auto / min(times.values()), "vs_autodiff": auto / times["autodiff"],
            "best": min(times, key=times.get), "auto_ms": auto * 1e3}


def ratios(medians: dict[str, float]) -> dict:
    """Regret, ratio to autodiff and the control's ratio to autodiff from one
    re-timing's medians (formulation -> seconds, with the control)."""
    from .sweep import CONTROL
    candidates = {k: v for k, v in medians.items() if k != CONTROL}
    return {**_scores(medians["auto"], candidates),
            "control": medians[CONTROL] / medians["autodiff"]}


def confirm(config: dict, part: str, repeats: int, seed: int = 0,
            budget_s: float = 60.0) -> dict:
    """Time ``part`` of ``config`` again in this process: every formulation,
    "auto" and the control (autodiff compiled twice), ``repeats`` interleaved
    rounds after the protocol's warm-up, fewer (at least 3) where the rounds
    would take more than ``budget_s`` (``sweep.adapted_repeats``);
    :func:`ratios` of the medians."""
    import time

    from . import _timing, sweep
    case = _cases.Case("confirm", "timed again", tuple(config["input"]),
                       (layer_of(config),))
    x, w, g = sweep.operands(case, seed)
    calls = {k: c for k, (c, _) in sweep.candidates(
        case, x, w, g, (part,), formulations=sweep.ALL_FORMULATIONS, control=True).items()}
    start = time.perf_counter()
    for call in calls.values():
        call()
    warmup, repeats = sweep.adapted_repeats(time.perf_counter() - start, repeats, budget_s)
    samples = _timing.time_interleaved(calls, warmup=warmup, repeats=repeats)
    return ratios({k.split(":", 1)[1]: float(np.median(v)) for k, v in samples.items()})


def confirmed_table(checked: list[tuple[str, dict, dict]]) -> str:
    """Markdown: each flagged row's sweep ratios beside the confirmed ones,
    then how many still miss each target."""
    from .sweep import _shape_label
    lines = ["| part | configuration | sweep regret | sweep vs jax.grad | "
             "confirmed regret | confirmed vs jax.grad | control | fastest |",
             "|---|---|---|---|---|---|---|---|"]
    for part, row, again in checked:
        lines.append(f"| {part} | {_shape_label(row['config'])} | {row['regret']:.2f} | "
                     f"{row['vs_autodiff']:.2f} | {again['regret']:.2f} | "
                     f"{again['vs_autodiff']:.2f} | {again['control']:.2f} | "
                     f"{again['best']} |")
    slow = sum(again["vs_autodiff"] > SLOWER for _, _, again in checked)
    worst = sum(again["regret"] > WORST for _, _, again in checked)
    control = max((abs(np.log(again["control"])) for _, _, again in checked), default=0.0)
    lines += ["", f"{len(checked)} rows timed again: {slow} still above {SLOWER}x "
              f"jax.grad, {worst} still above a regret of {WORST}; the control "
              f"(the same program twice) differed by up to {np.exp(control) - 1:.0%}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.regret",
                                description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="+", metavar="JSON")
    p.add_argument("--parts", nargs="+", choices=tuple(PART_WRT))
    p.add_argument("--rows", type=int, metavar="N", default=0,
                   help="also list the N worst configurations of each part")
    p.add_argument("--confirm", type=positive_int, metavar="R", default=None,
                   help="time every row that misses a target again, R interleaved "
                        "rounds with a control (this machine, CPU)")
    args = p.parse_args(argv)
    import jax
    jax.config.update("jax_platforms", "cpu")
    if args.confirm:
        from . import _backend
        _backend.configure("cpu", False, False, os.cpu_count() or 1)
    for path in args.sweeps:
        result = json.loads(pathlib.Path(path).read_text())
        gpu = result.get("machine", {}).get("gpu_model")
        if args.confirm and gpu:
            p.error(f"--confirm times again on this machine's CPU; {path} was "
                    f"measured on {gpu}")
        table = regrets(result, args.parts)
        print(f"## {path}\n\n{summary(table)}\n", flush=True)
        if args.rows:
            print(rows_table(table, args.rows) + "\n", flush=True)
        if args.confirm:
            checked = [(part, row, confirm(row["config"], part, args.confirm))
                       for part, row in flagged(table)]
            print(confirmed_table(checked) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
