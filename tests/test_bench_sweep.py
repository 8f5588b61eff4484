"""``python -m jaxgrad_bench.sweep``: the drawn configurations and the ratio table."""

import math
import os
import signal

from jaxgrad_bench import sweep


def test_draws_are_reproducible_valid_and_within_the_work_bounds():
    cases = sweep.draw(60, seed=7, max_gflop=0.5, min_gflop=0.05)
    again = sweep.draw(60, seed=7, max_gflop=0.5, min_gflop=0.05)
    assert cases == again
    kinds = set()
    for case in cases:
        layer = case.layers[0]
        out = case.output
        assert min(out[2:]) >= 1
        flops = layer.flops(case.input)
        elements = max(math.prod(case.input), math.prod(out))
        assert flops <= 0.5e9 and (flops >= 0.05e9 or elements >= 1 << 22)
        assert case.input[1] % layer.groups == 0 and out[1] % layer.groups == 0
        kinds.add((layer.op, layer.ndim, layer.groups == case.input[1], layer.groups > 1))
    # the draw covers transposed convs, 1-D/2-D/3-D, grouped and depthwise layers
    assert {op for op, *_ in kinds} == {"conv", "conv_transpose"}
    assert {n for _, n, *_ in kinds} == {1, 2, 3}
    assert any(depthwise for *_, depthwise, _ in kinds)
    assert any(grouped and not depthwise for *_, depthwise, grouped in kinds)


def test_summary_divides_each_formulation_by_autodiff():
    config = {"op": "conv", "input": [2, 4, 8, 8], "weight": [6, 2, 3, 3],
              "stride": [2, 2], "dilation": [1, 1], "groups": 2, "forward_gflop": 0.25}
    times = {f"{part}:{f}": {"median_s": t} for part, row in
             (("input", {"autodiff": 4e-3, "transpose": 4e-3, "taps": 1e-3}),
              ("weight", {"autodiff": 2e-3, "transpose": 3e-3, "taps": 5e-3}))
             for f, t in row.items()}
    table = sweep.summarize({"parts": ["input", "weight"], "records": [
        {"config": config, "candidates": times},
        {"config": config, "error": "RuntimeError('out of memory')"},
        {"config": config, "crash": "the worker process died (exit code -11)"}]})
    lines = table.splitlines()
    assert lines[0].startswith("| configuration | GFLOP | input transpose | input taps")
    assert lines[2] == ("| conv x=(2, 4, 8, 8) w=(6, 2, 3, 3) s=2 g=2 | 0.25 | 1.00 | "
                        "0.25 | 1.50 | 2.50 | 4 | 2 |")
    assert "failed: RuntimeError('out of memory')" in lines[3]
    assert "| crash: the worker process died (exit code -11) |" in lines[4]


def _tiny_case():
    from jaxgrad_bench import _cases
    return _cases.Case("tiny", "drawn", (2, 4, 9, 9), (_cases.conv((6, 2, 3, 3), 2, 1,
                                                                   1, 2),))


def test_measure_times_every_part_and_formulation_against_autodiff():
    times = sweep.measure(_tiny_case(), repeats=3, seed=0, parts=("input", "vag"),
                          formulations=("transpose", "taps", "auto"))
    assert set(times) == {f"{p}:{f}" for p in ("input", "vag")
                          for f in ("transpose", "taps", "auto", "autodiff")}
    for name, row in times.items():
        # each candidate's gradients equal jax.vjp of the plain lax conv's
        assert row["max_rel_error"] < 1e-5, name
        assert row["repeats"] == 3 and row["min_s"] <= row["median_s"]


def _dying_worker(jobs, answers, backend):
    """Dies on its first job as a segmentation fault inside XLA would: no answer."""
    jobs.get()
    os.kill(os.getpid(), signal.SIGSEGV)


def test_a_worker_that_dies_is_recorded_as_a_crash_not_a_timeout():
    # a segmentation fault in XLA (the taps weight gradient of held-out run
    # 26's (41, 14, 74²) -> 96 at stride 4, before _taps.SUM_FUSION_MAX_BATCH)
    # used to wait out the time limit and be recorded as a timeout
    worker = sweep.Worker("cpu", target=_dying_worker)
    try:
        for _ in range(2):      # and a new worker is started for the next job
            assert worker.measure(("job",), timeout_s=300) == (
                "crash", "the worker process died (exit code -11, signal SIGSEGV)")
    finally:
        worker.close()


def test_the_sweep_records_crashes_and_stops_after_a_few_in_a_row(monkeypatch):
    class Dying:     # every configuration kills the worker
        def __init__(self, backend):
            self.jobs = 0

        def measure(self, job, timeout_s):
            self.jobs += 1
            return "crash", "the worker process died (exit code -11, signal SIGSEGV)"

        def close(self):
            pass

    monkeypatch.setattr(sweep, "Worker", Dying)
    args = sweep.parser().parse_args(["--count", "10", "--backend", "cpu"])
    records = sweep.run(args)["records"]
    assert len(records) == sweep.MAX_CRASHES_IN_A_ROW == 3
    assert all(r["crash"] == "the worker process died (exit code -11, signal SIGSEGV)"
               and "candidates" not in r for r in records)


def test_a_configuration_over_the_time_limit_is_recorded_and_the_worker_restarts():
    worker = sweep.Worker("cpu")
    try:
        job = (_tiny_case(), 1, 0, ("input",), 1, ("transpose",), 5.0)
        # far too short for a fresh process to even import jax: given up, killed
        assert worker.measure(job, timeout_s=0.01) == ("timeout", "no result within 0.01 s")
        status, times = worker.measure(job, timeout_s=120)
        assert status == "ok" and set(times) == {"input:transpose", "input:autodiff"}
    finally:
        worker.close()
