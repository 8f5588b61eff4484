"""Formulation sweep: convolutions drawn from real-network ranges, every gradient
formulation timed on this device.

    python -m jaxgrad_bench.sweep --backend cpu --count 200 --budget-s 3600 \\
        --out bench/results --name sweep-cpu-2core

Each configuration (one convolution or transposed convolution, float32) is
drawn from the ranges of ordinary networks: channels 3-1024 (multiples of 8
but for a fifth of the counts, as in real networks), spatial 7-224
(1-D sequences up to 4096, 3-D volumes 4-32), kernels 1-7, strides 1-4,
dilation, dense / grouped / depthwise (with channel multipliers), batch 1-64.
Draws whose work exceeds ``--max-gflop`` are redrawn, so the sweep stays
within its time budget on a small machine. For each configuration these
candidates are compiled ahead of time and timed with the bench protocol
(``_timing``: warm-up, interleaved rounds, medians):

  input:<f>   the input gradient alone, formulation f
  weight:<f>  the weight gradient alone, formulation f
  bwd:<f>     both gradients from one VJP (residuals computed), formulation f
  vag:<f>     value and both gradients, forward included, formulation f

with f in ``transpose``, ``taps`` (jaxgrad's explicit rules), ``autodiff``
(``jax.vjp`` of the plain ``lax`` forward, i.e. what ``jax.grad`` runs) and,
with ``--formulations``, ``auto`` (jaxgrad's default: how the held-out regret
of "auto" is measured). Every candidate's result is compared with autodiff's
(max relative error, recorded). The JSON written holds the machine, the
versions and one record per configuration; rules for ``algorithm="auto"`` are
fitted from it (``python -m jaxgrad_bench.fit``).

Each configuration is measured in a worker process with a time limit
(``--timeout-s``): XLA's CPU path for some grouped convolutions runs for
minutes (a grouped weight gradient costs G times the dense work), and one such
draw must not stall the sweep. A configuration over the limit is recorded as
a timeout and another is drawn in its place; one whose worker process dies
(a crash inside XLA) is recorded as a crash, with the exit code, and drawn
again the same way. A candidate whose first run takes
more than a second is timed with fewer repetitions (at least 3), so that one
configuration costs about ``--config-s`` seconds of timing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import pathlib
import sys
import time

import numpy as np

from . import _cases, _machine, _report, _timing
from ._options import BACKENDS, file_stem, positive_int

FORMULATIONS = ("transpose", "taps", "autodiff")
ALL_FORMULATIONS = FORMULATIONS + ("auto",)
CONTROL = "autodiff again"   # the A/A control of ``candidates(control=True)``


def _log_uniform(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def _channel_count(rng, aligned: bool) -> int:
    """A channel count in 3-1024, log-uniform; ``aligned``: a multiple of 8, as
    nearly every layer of real networks has (the odd ones: RGB inputs, class
    counts, a few bottlenecks). XLA's CPU convolutions are markedly faster on
    aligned counts, so the mix matters to the rules fitted."""
    c = _log_uniform(rng, 3, 1024)
    return max(8, round(c / 8) * 8) if aligned else c


def _channels(rng, groups_kind: str, odd_share: float = 0.2) -> tuple[int, int, int]:
    """(C_in, C_out, groups) for a dense, grouped or depthwise layer; each count
    a multiple of 8 except with probability ``odd_share``."""
    c_in = _channel_count(rng, rng.random() >= odd_share)
    if groups_kind == "depthwise":
        c_in = max(c_in, 8)
        return c_in, c_in * int(rng.choice([1, 1, 1, 2, 4])), c_in
    if groups_kind == "grouped":
        groups = int(rng.choice([2, 4, 8, 16, 32]))
        c_in = max(groups, c_in // groups * groups)
        c_out = max(groups, _channel_count(rng, rng.random() >= odd_share)
                    // groups * groups)
        return c_in, c_out, groups
    return c_in, _channel_count(rng, rng.random() >= odd_share), 1


def draw_layer(rng: np.random.Generator) -> tuple[tuple[int, ...], _cases.Layer]:
    """One (input shape, layer), not yet checked for size."""
    ndim = int(rng.choice([1, 2, 2, 2, 2, 2, 3]))
    transposed = rng.random() < 0.15
    groups_kind = str(rng.choice(["dense"] * 6 + ["grouped"] * 2 + ["depthwise"] * 2))
    c_in, c_out, groups = _channels(rng, groups_kind)
    kernel = int(rng.choice({1: [1, 2, 3, 3, 5, 7], 2: [1, 1, 3, 3, 3, 5, 7],
                             3: [1, 3, 3]}[ndim]))
    stride = int(rng.choice([1, 1, 1, 1, 2, 2, 3, 4]))
    dilation = 1
    if kernel > 1 and stride == 1 and rng.random() < 0.25:
        dilation = int(rng.choice([2, 4]))
    padding = dilation * (kernel - 1) // 2
    lo, hi = {1: (16, 4096), 2: (7, 224), 3: (4, 32)}[ndim]
    spatial = _log_uniform(rng, lo, hi)
    batch = _log_uniform(rng, 1, 64)
    if transposed:
        stride = min(stride, kernel) if kernel > 1 else 1
        out_pad = 1 if stride > 1 and rng.random() < 0.5 else 0
        layer = _cases.conv_transpose((c_in, c_out // groups) + (kernel,) * ndim,
                                      stride, padding, out_pad, groups, dilation)
    else:
        layer = _cases.conv((c_out, c_in // groups) + (kernel,) * ndim,
                            stride, padding, dilation, groups)
    return (batch, c_in) + (spatial,) * ndim, layer


def draw(count: int | None, seed: int, max_gflop: float,
         min_gflop: float = 0.0):
    """``count`` cases of one layer each (endless where ``count`` is None), of at
    most ``max_gflop`` forward GFLOP and at least ``min_gflop`` or 4M elements
    in the input or output (a GPU needs large problems to be measured beyond
    dispatch)."""
    cases = list(_draws(count, seed, max_gflop, min_gflop)) if count is not None else None
    return cases if cases is not None else _draws(None, seed, max_gflop, min_gflop)


def _draws(count, seed, max_gflop, min_gflop):
    rng = np.random.default_rng(seed)
    made = 0
    while count is None or made < count:
        shape, layer = draw_layer(rng)
        try:
            out = layer.output_shape(shape)
        except ValueError:
            continue
        if min(out[2:]) < 1:
            continue
        elements = max(math.prod(shape), math.prod(out))
        if layer.flops(shape) > max_gflop * 1e9 or elements > 1 << 26:
            continue
        if layer.flops(shape) < min_gflop * 1e9 and elements < 1 << 22:
            continue
        yield _cases.Case(f"sweep-{made:03d}", "drawn", shape, (layer,))
        made += 1


def _lax_forward(layer: _cases.Layer):
    from ._implementations import _lax_layer
    return lambda x, w: _lax_layer(layer, x, w)


def _jaxgrad_forward(layer: _cases.Layer, algorithm: str):
    import jaxgrad
    if layer.op == "conv":
        return lambda x, w: jaxgrad.conv(x, w, None, layer.stride, layer.padding,
                                         layer.dilation, layer.groups,
                                         algorithm=algorithm)
    return lambda x, w: jaxgrad.conv_transpose(
        x, w, None, layer.stride, layer.padding, layer.output_padding, layer.groups,
        layer.dilation, algorithm=algorithm)


def _bwd_call(forward, x, w, g, wrt: tuple[int, ...], inner: int = 1):
    """A compiled VJP of ``forward`` at (x, w) w.r.t. ``wrt``, residuals computed,
    run ``inner`` times back to back per call (the GPU queue stays full)."""
    import jax

    def partial(*free):
        args = [x, w]
        for i, a in zip(wrt, free):
            args[i] = a
        return forward(*args)

    _, vjp = jax.vjp(partial, *[(x, w)[i] for i in wrt])
    compiled = jax.jit(lambda vjp, g: vjp(g)).lower(vjp, g).compile()

    def call():
        for _ in range(inner - 1):
            compiled(vjp, g)
        return jax.block_until_ready(compiled(vjp, g))
    return call


def _vag_call(forward, x, w, g, inner: int = 1):
    """A compiled value-and-both-gradients of ``forward`` (forward included)."""
    import jax

    def vag(x, w, g):
        y, vjp = jax.vjp(forward, x, w)
        return (y,) + vjp(g)

    compiled = jax.jit(vag).lower(x, w, g).compile()

    def call():
        for _ in range(inner - 1):
            compiled(x, w, g)
        return jax.block_until_ready(compiled(x, w, g))[1:]
    return call


PARTS = {"input": (0,), "weight": (1,), "bwd": (0, 1), "vag": (0, 1)}


def candidates(case: _cases.Case, x, w, g, parts=tuple(PARTS), inner: int = 1,
               formulations=FORMULATIONS, control: bool = False) -> dict:
    """Every candidate of ``case`` as name -> (call, compile seconds). With
    ``control``, also ``<part>:autodiff again``: autodiff compiled a second
    time, the same program, whose ratio to autodiff is the timing's own noise."""
    layer = case.layers[0]
    forwards = {"autodiff": _lax_forward(layer)}
    if control:
        forwards[CONTROL] = _lax_forward(layer)
    for algorithm in formulations:
        if algorithm != "autodiff":
            forwards[algorithm] = _jaxgrad_forward(layer, algorithm)
    calls = {}
    for part in parts:
        for name, forward in forwards.items():
            start = time.perf_counter()
            call = (_vag_call(forward, x, w, g, inner) if part == "vag" else
                    _bwd_call(forward, x, w, g, PARTS[part], inner))
            calls[f"{part}:{name}"] = (call, time.perf_counter() - start)
    return calls


def _max_rel_error(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0


def adapted_repeats(first_s: float, repeats: int, config_s: float) -> tuple[int, int]:
    """(warm-up runs, timed rounds) for candidates whose first runs took
    ``first_s`` seconds together: the protocol's where a round is cheap, fewer
    (at least 3 rounds, 1 warm-up) where ``repeats`` rounds would cost more than
    ``config_s`` seconds.

    >>> adapted_repeats(0.01, 10, 30.0)
    (2, 10)
    >>> adapted_repeats(6.0, 10, 30.0)
    (1, 4)
    >>> adapted_repeats(60.0, 10, 30.0)
    (1, 3)
    """
    if first_s * (repeats + _timing.WARMUP) <= config_s:
        return _timing.WARMUP, repeats
    return 1, max(3, min(repeats, int(config_s / first_s) - 1))


def operands(case: _cases.Case, seed: int) -> tuple:
    """(x, w, g) of ``case``'s one layer, float32: standard normal input and
    cotangent, weights scaled by 1/sqrt(fan-in)."""
    import jax.numpy as jnp
    layer = case.layers[0]
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(case.input, np.float32))
    fan_in = math.prod(layer.weight[1:])
    w = jnp.asarray(rng.standard_normal(layer.weight, np.float32) / math.sqrt(fan_in))
    g = jnp.asarray(rng.standard_normal(case.output, np.float32))
    return x, w, g


def measure(case: _cases.Case, repeats: int, seed: int, parts=tuple(PARTS),
            inner: int = 1, formulations=FORMULATIONS, config_s: float = 30.0) -> dict:
    """Times (median, min, seconds), compile times and errors of every candidate."""
    x, w, g = operands(case, seed)
    calls = candidates(case, x, w, g, parts, inner, formulations)
    start = time.perf_counter()
    results = {name: call() for name, (call, _) in calls.items()}
    warmup, repeats = adapted_repeats(time.perf_counter() - start, repeats, config_s)
    samples = _timing.time_interleaved({k: c for k, (c, _) in calls.items()},
                                       warmup=warmup, repeats=repeats)
    errors = {name: max(_max_rel_error(a, b) for a, b in
                        zip(results[name], results[name.split(":")[0] + ":autodiff"]))
              for name in calls}
    return {name: {"median_s": float(np.median(samples[name])) / inner,
                   "min_s": float(np.min(samples[name])) / inner,
                   "compile_s": calls[name][1], "max_rel_error": errors[name],
                   "repeats": repeats}
            for name in calls}


def _worker(jobs, answers, backend: str) -> None:
    """The worker process: configure the backend, then measure each job."""
    import queue
    from . import _backend
    _backend.configure(backend, False, False, os.cpu_count() or 1)
    parent = os.getppid()
    while True:
        try:
            job = jobs.get(timeout=5)
        except queue.Empty:
            if os.getppid() != parent:    # the sweep was killed: do not linger
                return
            continue
        if job is None:
            return
        try:
            answers.put(("ok", measure(*job)))
        except Exception as exc:  # a failed candidate is data, not a crash
            answers.put(("error", repr(exc)[:500]))


MAX_CRASHES_IN_A_ROW = 3


class Worker:
    """Measures configurations in a child process that a time limit can kill."""

    def __init__(self, backend: str, target=None):
        import multiprocessing
        self._context = multiprocessing.get_context("spawn")
        self._backend = backend
        self._target = target or _worker    # tests pass one that dies
        self._process = None

    def _start(self):
        self._jobs, self._answers = self._context.Queue(), self._context.Queue()
        self._process = self._context.Process(
            target=self._target, args=(self._jobs, self._answers, self._backend),
            daemon=True)
        self._process.start()

    def measure(self, job: tuple, timeout_s: float) -> tuple[str, object]:
        """("ok", times), ("error", message), ("crash", message) or ("timeout", message).

        Waits in steps of at most a second, so that a worker that dies (a
        segmentation fault in XLA ends the process without an answer) is
        reported at once, as a crash with its exit code, and not after
        ``timeout_s`` as a timeout."""
        import queue
        import signal
        if self._process is None or not self._process.is_alive():
            self._start()
        self._jobs.put(job)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._answers.get(
                    timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                pass
            if not self._process.is_alive():
                code = self._process.exitcode
                self._process.join(10)
                self._process = None
                why = (f", signal {signal.Signals(-code).name}"
                       if code is not None and code < 0 and -code in signal.valid_signals()
                       else "")
                return "crash", f"the worker process died (exit code {code}{why})"
            if time.monotonic() >= deadline:
                self.close(kill=True)
                return "timeout", f"no result within {timeout_s:g} s"

    def close(self, kill: bool = False):
        if self._process is None:
            return
        if kill:
            self._process.kill()
        else:
            self._jobs.put(None)
        self._process.join(10)
        self._process = None


def describe(case: _cases.Case) -> dict:
    layer = case.layers[0]
    return {"op": layer.op, "input": list(case.input), "weight": list(layer.weight),
            "output": list(case.output), "stride": list(layer.stride),
            "padding": list(layer.padding), "dilation": list(layer.dilation),
            "groups": layer.groups,
            "output_padding": (list(layer.output_padding)
                               if layer.output_padding is not None else None),
            "forward_gflop": layer.flops(case.input) / 1e9}


def bench_cases() -> list[_cases.Case]:
    """The bench's single-layer cases (every case but the WaveNet stack)."""
    return [case for case in _cases.CASES if len(case.layers) == 1]


def dense_grid() -> list[_cases.Case]:
    """Dense 3x3 stride-1 'same' layers of CNN sizes (aligned channels 32-256,
    7-56 px, batch 1-16) up to 2 GFLOP: the most common layer of ordinary
    networks, where a random draw puts few points (``--dense-grid``)."""
    cases = []
    for c in (32, 64, 128, 256):
        for side in (7, 14, 28, 56):
            for n in (1, 4, 16):
                layer = _cases.conv((c, c, 3, 3), 1, 1)
                shape = (n, c, side, side)
                if 2e5 <= layer.flops(shape) <= 2e9:
                    cases.append(_cases.Case(f"grid-{c}c-{side}px-n{n}", "dense grid",
                                             shape, (layer,)))
    return cases


def run(args: argparse.Namespace, save=lambda result: None) -> dict:
    """Measure the configurations; ``save(result)`` after each one, so that an
    interrupted sweep keeps what it measured."""
    from . import _backend
    backend = _backend.configure(args.backend, False, False, os.cpu_count() or 1)
    records = []
    started = time.perf_counter()
    first = ((bench_cases() if args.bench_cases else [])
             + (dense_grid() if args.dense_grid else []))
    wanted = args.count + len(first)
    cases = itertools.chain(first, draw(None, args.seed, args.max_gflop, args.min_gflop))
    worker = Worker(args.backend)
    measured = crashes = 0
    for i, case in enumerate(cases):
        if measured >= wanted:
            break
        if time.perf_counter() - started > args.budget_s:
            print(f"sweep: time budget of {args.budget_s} s spent after {i} "
                  "configurations", flush=True)
            break
        status, times = worker.measure(
            (case, args.repeats, args.seed + i, tuple(args.parts), args.inner,
             tuple(args.formulations), args.config_s), args.timeout_s)
        if status != "ok":  # a failed or overlong configuration is data too
            records.append({"name": case.name, "config": describe(case), status: times})
            print(f"sweep {i}: {case.input} {case.layers[0]}: {status} {times}"[:300],
                  flush=True)
            save(_result(args, backend, records))
            crashes = crashes + 1 if status == "crash" else 0
            if crashes == MAX_CRASHES_IN_A_ROW:   # a worker that cannot start
                print(f"sweep: the worker died on {crashes} configurations in a row; "
                      "stopping", flush=True)
                break
            continue
        crashes = 0
        measured += 1
        records.append({"name": case.name, "config": describe(case),
                        "candidates": times})
        best = {part: min((k for k in times if k.startswith(part + ":")),
                          key=lambda k: times[k]["median_s"])
                for part in args.parts}
        print(f"sweep {i} {case.name}: {case.input} w={case.layers[0].weight} "
              f"s={case.layers[0].stride} g={case.layers[0].groups} "
              f"{case.layers[0].op}: best "
              + ", ".join(f"{b} {times[b]['median_s'] * 1e3:.3g} ms"
                          for b in best.values()), flush=True)
        save(_result(args, backend, records))
    worker.close()
    return _result(args, backend, records)


def _result(args: argparse.Namespace, backend, records: list) -> dict:
    return {"command": " ".join(["python -m jaxgrad_bench.sweep", *sys.argv[1:]]),
            "machine": _machine.machine(backend.gpu_model),
            "versions": _machine.versions(), "environment": _machine.environment(),
            "precision": backend.precision, "repeats": args.repeats,
            "formulations": list(args.formulations), "timeout_s": args.timeout_s,
            "config_s": args.config_s,
            "seed": args.seed, "parts": list(args.parts),
            "bench_cases": args.bench_cases, "dense_grid": args.dense_grid,
            "max_gflop": args.max_gflop,
            "min_gflop": args.min_gflop, "inner": args.inner, "records": records}


def _shape_label(config: dict) -> str:
    op = "convT" if config["op"] == "conv_transpose" else "conv"
    x, w = config["input"], config["weight"]
    extra = "".join(f" {k[0]}={config[k][0]}" for k in ("stride", "dilation")
                    if max(config[k]) > 1)
    groups = f" g={config['groups']}" if config["groups"] > 1 else ""
    return f"{op} x={tuple(x)} w={tuple(w)}{extra}{groups}"


def summarize(result: dict) -> str:
    """A markdown table: per configuration and gradient, each formulation's
    median time over autodiff's (below 1: faster than ``jax.grad``)."""
    parts = result.get("parts", list(PARTS))
    shown = [f for f in result.get("formulations", FORMULATIONS) if f != "autodiff"]
    head = ["configuration", "GFLOP"] + [f"{p} {f}" for p in parts for f in shown]
    head += [f"{p} autodiff ms" for p in parts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for record in result["records"]:
        times = record.get("candidates")
        if not times:
            why = next((f"{key}: {record[key]}" for key in ("timeout", "crash")
                        if key in record), None) or "failed: " + record["error"]
            lines.append(f"| {_shape_label(record['config'])} | {why[:90]} |")
            continue
        ref = {p: times[f"{p}:autodiff"]["median_s"] for p in parts}
        cells = [_shape_label(record["config"]),
                 f"{record['config']['forward_gflop']:.2f}"]
        cells += [f"{times[f'{p}:{f}']['median_s'] / ref[p]:.2f}" for p in parts
                  for f in shown]
        cells += [f"{ref[p] * 1e3:.3g}" for p in parts]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxgrad_bench.sweep",
                                description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=BACKENDS, default="cpu")
    p.add_argument("--count", type=positive_int, default=200,
                   help="configurations to draw (default 200)")
    p.add_argument("--budget-s", type=float, default=3600.0,
                   help="stop drawing after this many seconds (default 3600)")
    p.add_argument("--max-gflop", type=float, default=2.0,
                   help="largest forward GFLOP of a configuration (default 2)")
    p.add_argument("--parts", nargs="+", choices=tuple(PARTS),
                   default=("input", "weight", "bwd"),
                   help="what to time (default input weight bwd)")
    p.add_argument("--formulations", nargs="+", choices=ALL_FORMULATIONS,
                   default=FORMULATIONS,
                   help="formulations to time; autodiff is always one "
                        "(default transpose taps autodiff)")
    p.add_argument("--timeout-s", type=float, default=300.0,
                   help="give up a configuration after this many seconds, draw "
                        "another (default 300)")
    p.add_argument("--config-s", type=float, default=30.0,
                   help="timing budget of one configuration: slow candidates get "
                        "fewer repetitions (default 30)")
    p.add_argument("--bench-cases", action="store_true",
                   help="measure the bench's single-layer cases first")
    p.add_argument("--dense-grid", action="store_true",
                   help="measure a grid of dense 3x3 layers of CNN sizes first")
    p.add_argument("--min-gflop", type=float, default=0.0,
                   help="smallest forward GFLOP of a configuration (default 0)")
    p.add_argument("--inner", type=positive_int, default=1,
                   help="back-to-back runs per timed sample, time divided by it "
                        "(default 1; on a GPU ~20 keeps the queue full)")
    p.add_argument("--repeats", type=positive_int, default=_timing.MIN_REPEATS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--summarize", metavar="JSON",
                   help="print the ratio table of a sweep's results, then exit")
    p.add_argument("--out", default="results", metavar="DIR")
    p.add_argument("--name", type=file_stem, default="sweep", metavar="STEM")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.summarize:
        print(summarize(json.loads(pathlib.Path(args.summarize).read_text())))
        return 0
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    result = run(args, save=lambda result: _report.write_json(result, path))
    _report.write_json(result, path)
    print(f"sweep: {len(result['records'])} configurations -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
