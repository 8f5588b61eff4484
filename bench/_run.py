"""One benchmark run: the peak, then every case, as JSON-ready records.

Figures derived from the timings (all from the same run):

  gflops            analytic FLOPs (``_flops``) / median time
  percent_of_peak   gflops / the peak of the implementation's own framework
                    (a large matmul timed with the same protocol)
  ratios            jaxgrad's median time / the other implementation's; only
                    when both results are correct (below 1: jaxgrad is faster)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _implementations as impls
from . import _measure, _stats, _timing
from ._backend import Backend
from ._cases import Case, conv
from ._flops import matmul_flops

PEAK_SIZE = {"cpu": 2048, "gpu": 8192}
FRAMEWORK = {"jaxgrad": "jax", "autodiff": "jax", "torch": "torch"}

Progress = Callable[[str], None]


def _torch_sync(tensor) -> None:
    import torch
    if tensor.is_cuda:
        torch.cuda.synchronize()


def measure_peak(backend: Backend, dtype: str, repeats: int) -> dict:
    """GFLOP/s of an n x n x n matmul in each framework, timed interleaved."""
    n = PEAK_SIZE[backend.name]
    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.standard_normal((n, n), np.float32), dtype)
            for _ in range(2))
    matmul, _ = _measure.compile_ahead(jnp.matmul, a, b)
    calls = {"jax": lambda: jax.block_until_ready(matmul(a, b))}
    if backend.use_torch:
        import torch
        ta, tb = torch.from_dlpack(a), torch.from_dlpack(b)
        calls["torch"] = lambda: _torch_sync(torch.matmul(ta, tb))
    samples = _timing.time_interleaved(calls, repeats=repeats)
    record: dict = {"size": n}
    for framework, times in samples.items():
        summary = _stats.summarize(times)
        record[framework] = {"gflops": _stats.gflops(matmul_flops(n, n, n),
                                                     summary.median),
                             "median_s": summary.median, "min_s": summary.min}
    return record


# A tiny case compiled once before the first measured one, by every JAX
# implementation, so that no case's first-call time includes the process's
# one-time costs (first traces of the custom_vjp machinery, jaxgrad's and
# jax's lazily built tables): without it the suite's first case showed a
# first call 1.6x its own time when run later.
WARM_UP = Case("warm-up", "not reported: pays one-time start-up costs",
               (1, 4, 8, 8), (conv((4, 4, 3, 3), padding=1),))


def warm_up(dtype: str) -> None:
    """Compile :data:`WARM_UP` in every JAX implementation; nothing is kept."""
    _prepare_all(WARM_UP, dtype, 0, [n for n in impls.IMPLEMENTATIONS if n != "torch"], [])


def _prepare_all(case: Case, dtype: str, seed: int, names: list[str],
                 notes: list[str]) -> dict[str, _measure.Prepared]:
    """Every implementation in ``names`` that can run ``case``; notes for the rest."""
    x, weights, cot = _measure.make_inputs(case, dtype, seed)
    prepared = {}
    for name in names:
        prepare = _measure.prepare_torch if name == "torch" else _measure.prepare_jax
        try:
            prepared[name] = prepare(case, impls.forward(name, case), x, weights, cot)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            # e.g. a dtype torch's CPU kernels do not implement
            first_line = (str(exc).splitlines() or [""])[0]
            notes.append(f"{impls.LABELS[name]} failed: {type(exc).__name__}: "
                         f"{first_line}")
    return prepared


def _timing_record(samples: list[float], flops: int, peak_gflops: float) -> dict:
    summary = _stats.summarize(samples)
    achieved = _stats.gflops(flops, summary.median)
    return {"median_s": summary.median, "min_s": summary.min, "samples_s": samples,
            "gflops": achieved, "percent_of_peak": 100 * achieved / peak_gflops}


def _ratios(timings: dict, correct: dict) -> dict:
    def median(name, mode):
        ok = correct.get(name) and name in timings
        return timings[name][mode]["median_s"] if ok else None

    return {mode: {"vs_autodiff": _stats.ratio(median("jaxgrad", mode),
                                               median("autodiff", mode)),
                   "vs_torch": _stats.ratio(median("jaxgrad", mode),
                                            median("torch", mode))}
            for mode in _measure.MODES}


def _layer_record(layer) -> dict:
    return {"op": layer.op, "weight": list(layer.weight), "stride": list(layer.stride),
            "padding": list(layer.padding), "dilation": list(layer.dilation),
            "groups": layer.groups,
            "output_padding": None if layer.output_padding is None
            else list(layer.output_padding)}


def _case_header(case: Case, dtype: str) -> dict:
    flops = case.flops()
    return {"name": case.name, "description": case.description,
            "input": list(case.input), "output": list(case.output),
            "layers": [_layer_record(layer) for layer in case.layers],
            "flops": {"forward": flops.forward, "backward": flops.backward,
                      "value_and_grad": flops.value_and_grad},
            "tolerance": _measure.case_tolerance(case, dtype)}


def run_case(case: Case, *, dtype: str, repeats: int, seed: int,
             backend: Backend, peak: dict, progress: Progress) -> dict:
    """Prepare, check and time ``case`` in every implementation; its record."""
    record, notes = _case_header(case, dtype), []
    names = [n for n in impls.IMPLEMENTATIONS if n != "torch" or backend.use_torch]
    start = time.perf_counter()
    prepared = _prepare_all(case, dtype, seed, names, notes)
    errors = _measure.compare({k: p.results for k, p in prepared.items()})
    correct = dict.fromkeys(names, False)  # failed to run: not correct
    correct.update(_measure.agreeing(errors, list(prepared), record["tolerance"]))
    progress(f"prepared in {time.perf_counter() - start:.1f} s; timing")
    calls = {(name, mode): p.calls[mode] for name, p in prepared.items()
             for mode in _measure.MODES}
    samples = _timing.time_interleaved(calls, repeats=repeats)
    timings = {name: {mode: _timing_record(samples[(name, mode)],
                                           record["flops"][mode],
                                           peak[FRAMEWORK[name]]["gflops"])
                      for mode in _measure.MODES} for name in prepared}
    record.update(
        compile_s={name: p.compile_s for name, p in prepared.items() if p.compile_s},
        residual_bytes={name: p.residual_bytes for name, p in prepared.items()
                        if p.residual_bytes is not None},
        first_call_s={name: p.first_call_s for name, p in prepared.items()
                      if p.first_call_s is not None},
        formulations={name: p.formulations for name, p in prepared.items()
                      if p.formulations is not None},
        timings=timings, ratios=_ratios(timings, correct), errors=errors,
        correct=correct, notes=notes)
    return record
