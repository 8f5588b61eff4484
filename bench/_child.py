"""The measuring process of ``jaxgrad bench`` (started by ``_launch``).

  python -m jaxgrad_bench._child OPTIONS...

Configures the backend, measures the matmul peak and every case, prints the
table and writes STEM.json, STEM.md and STEM.png into ``--out``. Progress goes
to stderr, the table to stdout. Exit status: 0 when every jaxgrad result is
correct, 1 when one is not, 2 when the backend is unavailable.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import shlex
import sys
import time

from . import _backend, _cases, _machine, _options, _report, _run, _timing
from ._chart import write_chart
from ._launch import available_cpus

SEED = 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _header(args: argparse.Namespace, cases, backend: _backend.Backend) -> dict:
    return {
        "schema_version": _report.SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
        "command": shlex.join(["jaxgrad", "bench", *_options.argv_of(args)]),
        "wall_s": None,
        "options": {"suite": _cases.label(args.suite, args.cases, args.conv),
                    "cases": [c.name for c in cases], "conv": list(args.conv or ()),
                    "dtype": args.dtype,
                    "algorithm": args.algorithm, "repeats": args.repeats,
                    "warmup": _timing.WARMUP, "backend": args.backend,
                    "torch": backend.use_torch, "tf32": args.tf32, "seed": SEED},
        "machine": _machine.machine(backend.gpu_model),
        "versions": _machine.versions(),
        "environment": _machine.environment(),
        "threads": backend.threads,
        "precision": backend.precision,
        "notes": list(backend.notes),
    }


def _protocol_notes(args: argparse.Namespace) -> list[str]:
    if args.repeats < _timing.MIN_REPEATS:
        return [(f"{args.repeats} repetitions: fewer than the protocol's "
                 f"{_timing.MIN_REPEATS}; a smoke run, not a measurement")]
    return []


def _measure_all(args, cases, backend, record: dict) -> None:
    _progress(f"peak: timing a {_run.PEAK_SIZE[backend.name]}^3 matmul")
    record["peak"] = _run.measure_peak(backend, args.dtype, args.repeats)
    _progress("warm-up: compiling a tiny case, not reported")
    _run.warm_up(args.dtype)
    record["cases"] = []
    for i, case in enumerate(cases, 1):
        start = time.perf_counter()
        tag = f"[{i}/{len(cases)}] {case.name}"
        _progress(f"{tag}: compiling and checking")
        record["cases"].append(_run.run_case(
            case, dtype=args.dtype, repeats=args.repeats, seed=SEED,
            backend=backend, peak=record["peak"],
            progress=lambda message, tag=tag: _progress(f"{tag}: {message}")))
        _progress(f"{tag}: done in {time.perf_counter() - start:.1f} s")


def _write(record: dict, out: pathlib.Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _report.write_json(record, out / f"{stem}.json")
    markdown = _report.markdown(record)
    _report.write_atomically(out / f"{stem}.md", lambda tmp: tmp.write_text(markdown))
    message = write_chart(record, out / f"{stem}.png")
    written = [f"{stem}.json", f"{stem}.md"] + ([] if message else [f"{stem}.png"])
    if message:
        print(message)
    print(f"wrote {', '.join(str(out / name) for name in written)}")


def _run_models(args, backend, record: dict, start: float) -> int:
    """``--suite models``: one training step of each network, three ways."""
    from . import _models_run
    record["options"]["suite"] = _options.MODELS
    record["options"]["cases"] = [m.name for m in _models_run.MODEL_CASES]
    record["models"] = []
    for i, case in enumerate(_models_run.MODEL_CASES, 1):
        tag = f"[{i}/{len(_models_run.MODEL_CASES)}] {case.name}"
        _progress(f"{tag}: compiling and checking")
        record["models"].append(_models_run.run_model(
            case, dtype=args.dtype, repeats=args.repeats, seed=SEED,
            use_torch=backend.use_torch,
            progress=lambda message, tag=tag: _progress(f"{tag}: {message}")))
    record["wall_s"] = time.perf_counter() - start
    table = _models_run.console_table(record["models"])
    print(table)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _report.write_json(record, out / f"{args.name}.json")
    markdown = _models_run.markdown(record)
    _report.write_atomically(out / f"{args.name}.md",
                             lambda tmp: tmp.write_text(markdown))
    print(f"wrote {out / (args.name + '.json')}, {out / (args.name + '.md')}")
    wrong = [m["name"] for m in record["models"] if not m["correct"].get("jaxgrad")]
    if wrong:
        print(f"jaxgrad results wrong or unchecked in: {', '.join(wrong)}")
    return 1 if wrong else 0


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    args = _options.parse(argv)
    models = args.suite == _options.MODELS
    cases = () if models else _cases.select(args.suite, args.cases, args.conv)
    try:
        backend = _backend.configure(args.backend, args.tf32, not args.no_torch,
                                     available_cpus())
    except _backend.BackendUnavailable as exc:
        print(f"jaxgrad bench: error: {exc}", file=sys.stderr)
        return 2
    import jaxgrad
    jaxgrad.set_conv_algorithm(args.algorithm)
    record = _header(args, cases, backend)
    record["notes"] += _protocol_notes(args) + _machine.busy_note(
        record["machine"]["load_average"], record["machine"]["cpus_available"])
    if models:
        return _run_models(args, backend, record, start)
    _measure_all(args, cases, backend, record)
    record["wall_s"] = time.perf_counter() - start
    print(_report.summary_line(record))
    print(_report.console_table(record))
    for note in record["notes"] + [f"{c['name']}: {n}" for c in record["cases"]
                                   for n in c["notes"]]:
        print(f"note: {note}")
    _write(record, pathlib.Path(args.out), args.name)
    wrong = [c["name"] for c in record["cases"] if not c["correct"].get("jaxgrad")]
    if wrong:
        print(f"jaxgrad results wrong or unchecked in: {', '.join(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
