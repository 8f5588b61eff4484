"""Writing a run's record: the console table, results.json and results.md.

Speeds are never shown for a result that failed the correctness check: the
cell reads ``wrong`` and the ratios involving it are left empty.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable

from ._implementations import IMPLEMENTATIONS, JAX_IMPLEMENTATIONS, LABELS
from ._measure import FIRST_CALL_PHASES, MODES, compile_seconds

SCHEMA_VERSION = 1
MODE_LABELS = {"forward": "fwd", "backward": "bwd", "value_and_grad": "v&g"}


def format_ms(seconds: float) -> str:
    """Milliseconds with about three significant digits.

    >>> format_ms(0.0123456), format_ms(0.123456), format_ms(12.3456)
    ('12.3', '123', '12346')
    """
    ms = seconds * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def format_ratio(value: float | None) -> str:
    """A time ratio with three significant digits; "-" when there is none.

    >>> format_ratio(1.034), format_ratio(312.4), format_ratio(None)
    ('1.03x', '312x', '-')
    """
    return "-" if value is None else f"{value:.3g}x"


def _time_cell(case: dict, name: str, mode: str) -> str:
    """The median in ms; "-" not run, "failed" raised an error, "wrong" result."""
    if name not in case["correct"]:
        return "-"
    if name not in case["timings"]:
        return "failed"
    if not case["correct"][name]:
        return "wrong"
    return format_ms(case["timings"][name][mode]["median_s"])


def _max_error(case: dict, pair: str) -> str:
    errors = case["errors"].get(pair)
    return "-" if not errors else f"{max(errors.values()):.1e}"


def _speed_cells(case: dict, mode: str) -> tuple[str, str]:
    if not case["correct"].get("jaxgrad"):
        return "-", "-"
    timing = case["timings"]["jaxgrad"][mode]
    return f"{timing['gflops']:.1f}", f"{timing['percent_of_peak']:.1f}"


def compile_cell(case: dict, name: str) -> str:
    """Seconds before the first ``jit(value_and_grad)`` call of ``name`` ran
    (trace + lower + XLA compile); "-" when it did not run or is not JAX."""
    phases = case.get("first_call_s", {}).get(name)
    return "-" if phases is None else f"{compile_seconds(phases):.2f}"


_COLUMNS = (("case", 26, "<"), ("mode", 4, "<"), ("GFLOP", 7, ">"),
            ("jaxgrad ms", 10, ">"), ("jax.grad ms", 11, ">"), ("torch ms", 9, ">"),
            ("jaxgrad GF/s", 12, ">"), ("%peak", 6, ">"), ("jg/jax.grad", 11, ">"),
            ("jg/torch", 8, ">"), ("err jax.grad", 12, ">"), ("err torch", 9, ">"),
            ("compile jg s", 12, ">"), ("compile jax.grad s", 18, ">"))


def _line(cells, name_width: int = 26) -> str:
    widths = [name_width] + [width for _, width, _ in _COLUMNS[1:]]
    return "  ".join(f"{cell:{align}{width}}" for cell, width, (_, _, align)
                     in zip(cells, widths, _COLUMNS)).rstrip()


def _case_rows(case: dict, name_width: int) -> list[str]:
    rows = []
    for i, mode in enumerate(MODES):
        ratios = case["ratios"][mode]
        first = i == 0
        rows.append(_line((
            case["name"] if first else "", MODE_LABELS[mode],
            f"{case['flops'][mode] / 1e9:.3f}",
            *(_time_cell(case, name, mode) for name in IMPLEMENTATIONS),
            *_speed_cells(case, mode),
            format_ratio(ratios["vs_autodiff"]), format_ratio(ratios["vs_torch"]),
            _max_error(case, "jaxgrad_vs_autodiff") if first else "",
            _max_error(case, "jaxgrad_vs_torch") if first else "",
            *((compile_cell(case, name) if first else "")
              for name in JAX_IMPLEMENTATIONS)), name_width))
    return rows


def console_table(record: dict) -> str:
    """The per-case table printed at the end of a run (median times)."""
    width = max([_COLUMNS[0][1]] + [len(case["name"]) for case in record["cases"]])
    lines = [_line((name for name, _, _ in _COLUMNS), width)]
    for case in record["cases"]:
        lines += _case_rows(case, width)
    lines.append("median times; jg/X = jaxgrad time / X time (below 1: jaxgrad "
                 "faster); %peak: of the jax matmul's GFLOP/s; err X = max relative "
                 "difference of jaxgrad's output and gradients from X's; compile X s = "
                 "seconds to trace, lower and XLA-compile X's value-and-grad (its "
                 "first jit call, before it runs)")
    return "\n".join(lines)


def summary_line(record: dict) -> str:
    """One line naming what ran where, printed before the table."""
    opts, machine, peak = record["options"], record["machine"], record["peak"]
    device = machine["gpu_model"] or (f"{machine['cpu_model']}, "
                                      f"{machine['cpus_available']} CPUs")
    peaks = ", ".join(f"{k} {v['gflops']:.0f}" for k, v in peak.items()
                      if isinstance(v, dict))
    return (f"jaxgrad bench: {len(record['cases'])} cases ({opts['suite']}), "
            f"{opts['dtype']}, algorithm {opts.get('algorithm', 'auto')}, "
            f"{opts['backend']} ({device}), {opts['repeats']} "
            f"repeats; peak {peak['size']}^3 matmul GFLOP/s: {peaks}")


def write_atomically(path: pathlib.Path, write: Callable[[pathlib.Path], None]) -> None:
    """Call ``write(temporary)`` on a hidden name beside ``path``, then rename it.

    A run interrupted or failing while writing leaves ``path`` as it was (absent
    or the previous complete file) and no temporary behind: the rename is atomic
    on one file system, and the temporary is removed on any exception,
    KeyboardInterrupt included.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(record: dict, path: pathlib.Path) -> None:
    text = json.dumps(record, indent=1) + "\n"
    write_atomically(path, lambda tmp: tmp.write_text(text))


# --------------------------------------------------------------------------
# results.md


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _md_time(case: dict, name: str, mode: str) -> str:
    cell = _time_cell(case, name, mode)
    if cell in ("-", "failed", "wrong"):
        return cell
    return f"{cell} ({format_ms(case['timings'][name][mode]['min_s'])})"


def _md_speed(case: dict, name: str, mode: str) -> str:
    if not case["correct"].get(name):
        return "-"
    timing = case["timings"][name][mode]
    return f"{timing['gflops']:.1f} ({timing['percent_of_peak']:.0f}%)"


def _md_results(record: dict) -> list[str]:
    header = ["case", "mode", "GFLOP"]
    header += [f"{LABELS[n]} ms" for n in IMPLEMENTATIONS]
    header += [f"{LABELS[n]} GFLOP/s (% peak)" for n in IMPLEMENTATIONS]
    header += ["jaxgrad / jax.grad", "jaxgrad / torch"]
    rows = []
    for case in record["cases"]:
        for mode in MODES:
            ratios = case["ratios"][mode]
            rows.append([f"`{case['name']}`", MODE_LABELS[mode],
                         f"{case['flops'][mode] / 1e9:.3f}",
                         *(_md_time(case, n, mode) for n in IMPLEMENTATIONS),
                         *(_md_speed(case, n, mode) for n in IMPLEMENTATIONS),
                         format_ratio(ratios["vs_autodiff"]),
                         format_ratio(ratios["vs_torch"])])
    return _md_table(header, rows)


def _md_correctness(record: dict) -> list[str]:
    pairs = ("jaxgrad_vs_autodiff", "jaxgrad_vs_torch", "autodiff_vs_torch")
    header = ["case", "tolerance", *(p.replace("_vs_", " vs ").replace(
        "autodiff", "jax.grad") for p in pairs), "correct"]
    rows = []
    for case in record["cases"]:
        verdict = ", ".join(f"{LABELS[n]} {'yes' if ok else 'NO'}"
                            for n, ok in case["correct"].items())
        rows.append([f"`{case['name']}`", f"{case['tolerance']:.1e}",
                     *(_max_error(case, p) for p in pairs), verdict])
    return _md_table(header, rows)


def _md_compile(record: dict) -> list[str]:
    header = ["case"] + [f"{LABELS[n]} {MODE_LABELS[m]}"
                         for n in ("jaxgrad", "autodiff") for m in MODES]
    rows = []
    for case in record["cases"]:
        cells = [f"{case['compile_s'][n][m]:.2f}" if n in case["compile_s"] else "-"
                 for n in ("jaxgrad", "autodiff") for m in MODES]
        rows.append([f"`{case['name']}`", *cells])
    return _md_table(header, rows)


def _md_first_call(record: dict) -> list[str]:
    header = ["case"] + [f"{LABELS[n]} {phase}" for n in JAX_IMPLEMENTATIONS
                         for phase in FIRST_CALL_PHASES]
    header += ["jaxgrad / jax.grad compile"]
    rows = []
    for case in record["cases"]:
        first = case.get("first_call_s", {})
        cells = [f"{first[n][phase]:.3f}" if n in first else "-"
                 for n in JAX_IMPLEMENTATIONS for phase in FIRST_CALL_PHASES]
        both = all(n in first for n in JAX_IMPLEMENTATIONS)
        ratio = (compile_seconds(first["jaxgrad"]) / compile_seconds(first["autodiff"])
                 if both else None)
        rows.append([f"`{case['name']}`", *cells, format_ratio(ratio)])
    return _md_table(header, rows)


def _formulation_cell(entries: list[str]) -> str:
    """"taps" or "input_grad:taps"-style entries, repeated ones counted."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry] = counts.get(entry, 0) + 1
    return ", ".join(e if n == 1 else f"{e} x{n}" for e, n in counts.items()) or "-"


def _md_formulations(record: dict) -> list[str]:
    header = ["case", "forward", "input gradient", "weight gradient",
              "jaxgrad first call (s)", "jax.grad compile (s)"]
    rows = []
    for case in record["cases"]:
        chosen = case.get("formulations", {}).get("jaxgrad")
        if not chosen:
            continue
        first = case.get("first_call_s", {})
        mine = (f"{compile_seconds(first['jaxgrad']):.2f}" if "jaxgrad" in first
                else "-")
        theirs = (f"{compile_seconds(first['autodiff']):.2f}" if "autodiff" in first
                  else "-")
        rows.append([f"`{case['name']}`", *(_formulation_cell(chosen[role]) for role in
                                            ("forward", "input_grad", "weight_grad")),
                     mine, theirs])
    return _md_table(header, rows)


def _md_memory(record: dict) -> list[str]:
    header = ["case", "jaxgrad MB", "jax.grad MB", "jaxgrad / jax.grad"]
    rows = []
    for case in record["cases"]:
        saved = case.get("residual_bytes", {})
        if "jaxgrad" not in saved or "autodiff" not in saved:
            continue
        ours, theirs = saved["jaxgrad"], saved["autodiff"]
        ratio = f"{ours / theirs:.3g}x" if theirs else "-"
        rows.append([f"`{case['name']}`", f"{ours / 1e6:.2f}", f"{theirs / 1e6:.2f}", ratio])
    return _md_table(header, rows)


def _md_setup(record: dict) -> list[str]:
    machine, versions = record["machine"], record["versions"]
    env = ", ".join(f"`{k}={v}`" for k, v in record["environment"].items()
                    if v is not None) or "none"
    peaks = ", ".join(f"{k} {v['gflops']:.1f} GFLOP/s" for k, v in
                      record["peak"].items() if isinstance(v, dict))
    rows = [
        ["command", f"`{record['command']}`"],
        ["date (UTC)", record["created"]],
        ["machine", (f"{machine['cpu_model']}; {machine['cpus_available']} of "
                     f"{machine['cpu_count']} CPUs; GPU {machine['gpu_model']}; "
                     f"load average {machine['load_average']}; {machine['platform']}")],
        ["versions", ", ".join(f"{k} {v}" for k, v in versions.items())],
        ["environment", env],
        ["threads", ", ".join(f"{k} {v}" for k, v in record["threads"].items())],
        ["precision", ", ".join(f"{k} {v}" for k, v in record["precision"].items())],
        ["protocol", (f"AOT-compiled; {record['options']['warmup']} warm-up runs; "
                      f"{record['options']['repeats']} timed repetitions, "
                      "implementations interleaved; synchronised inside the timer")],
        ["peak", (f"{record['peak']['size']}^3 matmul, {record['options']['dtype']}: "
                  f"{peaks}")],
    ]
    return _md_table(["", ""], rows)


_RESULTS_NOTE = (
    "Times in ms, median (min). GFLOP/s from analytic FLOPs and the median; % of "
    "the matmul peak of the implementation's framework. Ratios are of median "
    "times (below 1: jaxgrad is faster). `wrong`: the result failed the "
    "correctness check, so no speed is shown.")
_MEMORY_NOTE = ("Bytes of the arrays `jax.vjp` keeps between the forward and the "
                "backward pass (the leaves of the function it returns).")
_FIRST_CALL_NOTE = (
    "The first `jax.jit(value_and_grad)` call of each case, compiled before any "
    "other program of the case: trace (Python to a jaxpr, every custom rule "
    "included), lower (to StableHLO), compile (XLA), run (the first execution). "
    "The ratio is of trace + lower + compile.")
_FORMULATIONS_NOTE = (
    "What each convolution of the case ran in jaxgrad, by role, as "
    "`<map of the core>:<formulation>` (a transposed convolution's forward is "
    "the core's input-gradient map; docs/performance.md lists the formulations). "
    "The first call is trace + lower + compile of value-and-grad; under "
    "`--algorithm autotune` its trace includes tuning any configuration not "
    "yet in the plan cache.")
_CORRECTNESS_NOTE = ("Max relative error (max |a - b| / max |b|) over the output "
                     "and every gradient.")


def markdown(record: dict) -> str:
    """results.md: set-up, results, correctness, compile times, cases, notes."""
    opts = record["options"]
    title = (f"# jaxgrad bench: {opts['suite']} suite, {opts['dtype']}, "
             f"algorithm {opts.get('algorithm', 'auto')}, {opts['backend']}")
    lines = [title, "", *_md_setup(record), "", "## Results", "", _RESULTS_NOTE, "",
             *_md_results(record), "", "## Correctness", "", _CORRECTNESS_NOTE, "",
             *_md_correctness(record), "",
             "## Residuals saved for the backward pass", "", _MEMORY_NOTE, "",
             *_md_memory(record), "", "## XLA compile times (s)", "",
             *_md_compile(record), "",
             "## First call of jit(value_and_grad) (s)", "", _FIRST_CALL_NOTE, "",
             *_md_first_call(record), "",
             "## Formulations run", "", _FORMULATIONS_NOTE, "",
             *_md_formulations(record), "", "## Cases", ""]
    lines += [f"- `{c['name']}`: {c['description']}; input {tuple(c['input'])}"
              for c in record["cases"]]
    notes = record["notes"] + [f"{c['name']}: {n}" for c in record["cases"]
                               for n in c["notes"]]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
