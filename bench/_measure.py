"""Preparing one case: inputs, compiled calls, correctness (timing is ``_timing``).

For each implementation three calls are prepared, each returning only when
its work is done:

  forward         y = f(x, weights)
  backward        the VJP applied to a cotangent, residuals already computed:
                  JAX: ``jax.vjp`` once, then its returned function compiled
                  (``jit(lambda vjp, ct: vjp(ct)).lower().compile()``);
                  torch: ``torch.autograd.grad(y, inputs, ct, retain_graph=True)``
  value_and_grad  forward and VJP together, end to end

JAX calls are compiled ahead of time, outside every timer. The first thing
compiled for a case is value-and-grad, phase by phase as its first
``jax.jit`` call would (``first_call``): tracing (Python, jaxgrad's rules
included), lowering to StableHLO, XLA compilation, the first run. The same
arrays feed all three implementations: one generator draws them once, and
torch receives them through DLPack (no copy, no regeneration).
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgrad._checking._tolerance import max_errors, tolerance

from . import _implementations as impls
from ._cases import Case

MODES = ("forward", "backward", "value_and_grad")


@dataclasses.dataclass
class Prepared:
    """One implementation of one case, ready to time.

    Attributes:
      calls: mode -> a zero-argument call that runs to completion.
      compile_s: mode -> compile time in seconds (JAX only).
      residual_bytes: bytes of the arrays ``jax.vjp`` keeps for the backward
        pass (the leaves of its returned function; JAX only, else None).
      first_call_s: the first ``jit(value_and_grad)`` call of the case by
        phase, {"trace", "lower", "compile", "run"} in seconds (JAX only, else
        None); see :func:`first_call`.
      results: the output and every gradient from one ``value_and_grad`` call,
        as float64 NumPy arrays keyed by :func:`result_names`.
      formulations: what each convolution map of the case ran, by role
        (:func:`formulations`; JAX only, else None).
    """

    calls: dict[str, Callable[[], object]]
    compile_s: dict[str, float]
    results: dict[str, np.ndarray]
    residual_bytes: int | None = None
    first_call_s: dict[str, float] | None = None
    formulations: dict[str, list[str]] | None = None


ROLES = ("forward", "input_grad", "weight_grad")


def formulations(forward, x, weights, cot) -> dict[str, list[str]]:
    """What jaxgrad's kernels chose for ``forward`` at these operands, by the
    user's role: the forward, the input gradient and the weight gradient,
    one entry per convolution map reached, "<map>:<formulation>" (a transposed
    convolution's forward is the ``input_grad`` map of the core, its input
    gradient the core's ``forward``). The backward's ``weight_grad`` maps are
    the weight gradients; its other maps carry input gradients. Traced, not
    run (under "autotune" the configuration is tuned first if it is not yet).
    """
    from jaxgrad._conv import _plan
    made = {}

    def value_and_grad(x, weights, cot):
        with _plan.recording() as made["forward"]:
            _, vjp = jax.vjp(forward, x, weights)
        with _plan.recording() as made["backward"]:
            vjp(cot)
        return cot

    jax.make_jaxpr(value_and_grad)(x, weights, cot)
    roles = {"forward": made["forward"],
             "input_grad": [m for m in made["backward"] if m.kind != "weight_grad"],
             "weight_grad": [m for m in made["backward"] if m.kind == "weight_grad"]}
    return {role: [f"{m.kind}:{m.choice.formulation}" for m in maps]
            for role, maps in roles.items()}


def result_names(case: Case) -> list[str]:
    """"output", "grad_input" and one "grad_weight" (indexed for a stack)."""
    if len(case.layers) == 1:
        weights = ["grad_weight"]
    else:
        weights = [f"grad_weight[{i}]" for i in range(len(case.layers))]
    return ["output", "grad_input", *weights]


def make_inputs(case: Case, dtype: str, seed: int):
    """(x, weights, cotangent) as JAX arrays of ``dtype``, drawn from one generator.

    Weights are scaled by 1/sqrt(fan-in), so a stack of layers keeps its
    activations of order one. The generator is seeded by ``seed`` and the case
    name: a case gets the same inputs whichever other cases run.
    """
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    x = rng.standard_normal(case.input, np.float32)
    weights = []
    for layer in case.layers:
        fan_in = int(np.prod(layer.weight[1:]))
        weights.append(rng.standard_normal(layer.weight, np.float32) / np.sqrt(fan_in))
    cot = rng.standard_normal(case.output, np.float32)
    x, cot = jnp.asarray(x, dtype), jnp.asarray(cot, dtype)
    return x, tuple(jnp.asarray(w, dtype) for w in weights), cot


def _as_float64(array) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().float().cpu().numpy()
    return np.asarray(array).astype(np.float64)


def _results(case: Case, arrays: list) -> dict[str, np.ndarray]:
    """[output, input gradient, *weight gradients] keyed by ``result_names``."""
    return dict(zip(result_names(case), map(_as_float64, arrays), strict=True))


def compile_ahead(fn, *args) -> tuple[Callable, float]:
    """``jax.jit(fn)`` compiled for ``args`` ahead of time, and the seconds it took."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


FIRST_CALL_PHASES = ("trace", "lower", "compile", "run")


def first_call(fn, *args) -> tuple[Callable, dict[str, float]]:
    """Compile ``fn`` for ``args`` as its first ``jax.jit`` call does, and run it.

    Returns the compiled function and the seconds of each phase: ``trace``
    (Python to a jaxpr: the user's code and every custom rule it reaches),
    ``lower`` (jaxpr to StableHLO), ``compile`` (XLA) and ``run`` (the first
    execution, synchronised). Their sum is what the first call of
    ``jax.jit(fn)`` costs; the first three are its compile time.
    """
    marks = [time.perf_counter()]
    traced = jax.jit(fn).trace(*args)
    marks.append(time.perf_counter())
    lowered = traced.lower()
    marks.append(time.perf_counter())
    compiled = lowered.compile()
    marks.append(time.perf_counter())
    jax.block_until_ready(compiled(*args))
    marks.append(time.perf_counter())
    return compiled, {phase: b - a for phase, a, b in
                      zip(FIRST_CALL_PHASES, marks, marks[1:])}


def compile_seconds(phases: dict[str, float]) -> float:
    """Trace + lower + compile: a first call's time before it runs."""
    return phases["trace"] + phases["lower"] + phases["compile"]


def prepare_jax(case: Case, forward, x, weights, cot) -> Prepared:
    """Compile forward, backward (VJP with residuals ready) and value-and-grad.

    Value-and-grad is compiled first (:func:`first_call`), so that no cache
    warmed by the other programs of the case shortens its compile time.
    """
    def value_and_grad(x, weights, cot):
        y, vjp = jax.vjp(forward, x, weights)
        return y, vjp(cot)

    vag, phases = first_call(value_and_grad, x, weights, cot)
    chosen = formulations(forward, x, weights, cot)
    fwd, fwd_s = compile_ahead(forward, x, weights)
    # The residuals are computed once, here; the timed backward only applies
    # the VJP. Its function is a pytree, so it can be a jit argument.
    residuals, res_s = compile_ahead(lambda x, w: jax.vjp(forward, x, w)[1], x, weights)
    vjp = residuals(x, weights)
    bwd, bwd_s = compile_ahead(lambda vjp, ct: vjp(ct), vjp, cot)
    sync = jax.block_until_ready
    calls = {"forward": lambda: sync(fwd(x, weights)),
             "backward": lambda: sync(bwd(vjp, cot)),
             "value_and_grad": lambda: sync(vag(x, weights, cot))}
    y, (gx, gw) = calls["value_and_grad"]()
    return Prepared(calls, {"forward": fwd_s, "backward": res_s + bwd_s,
                            "value_and_grad": compile_seconds(phases)},
                    _results(case, [y, gx, *gw]),
                    residual_bytes=sum(leaf.nbytes for leaf in jax.tree.leaves(vjp)),
                    first_call_s=phases,
                    formulations=chosen if any(chosen.values()) else None)


def prepare_torch(case: Case, forward, x, weights, cot) -> Prepared:
    """Eager forward (no graph), autograd backward (graph retained), end to end."""
    import torch
    tx, *tw = (torch.from_dlpack(a).requires_grad_() for a in (x, *weights))
    tcot = torch.from_dlpack(cot)
    inputs = [tx, *tw]
    sync = torch.cuda.synchronize if tx.is_cuda else (lambda: None)

    def run_forward():
        with torch.no_grad():
            y = forward(tx, tuple(tw))
        sync()
        return y

    graph_output = forward(tx, tuple(tw))

    def run_backward():
        grads = torch.autograd.grad(graph_output, inputs, tcot, retain_graph=True)
        sync()
        return grads

    def run_value_and_grad():
        y = forward(tx, tuple(tw))
        grads = torch.autograd.grad(y, inputs, tcot)
        sync()
        return y, grads

    calls = {"forward": run_forward, "backward": run_backward,
             "value_and_grad": run_value_and_grad}
    y, grads = run_value_and_grad()
    return Prepared(calls, {}, _results(case, [y, *grads]))


def case_tolerance(case: Case, dtype: str) -> float:
    """The relative tolerance for comparing implementations on ``case``.

    ``jaxgrad._checking._tolerance`` gives the tolerance for sums of up to a few thousand
    terms. The rounding error of a sum of n terms, relative to its largest
    value, grows like sqrt(n)·eps, and a weight gradient here sums up to
    N·ΠO ~ 10⁵ terms: the table's value is scaled by sqrt(n / 4096) beyond 4096.

    >>> from jaxgrad_bench._cases import CASES
    >>> stem = CASES[0]
    >>> stem.longest_sum(), round(case_tolerance(stem, "float32"), 7)
    (25088, 2.47e-05)
    """
    return tolerance(dtype) * max(1.0, math.sqrt(case.longest_sum() / 4096))


def compare(results: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Max relative error of every array, for each pair of implementations.

    Keys are "A_vs_B" with A before B in ``IMPLEMENTATIONS`` order; the error
    is ``max|A - B| / max|B|`` (``jaxgrad._checking._tolerance.max_errors``).
    """
    names = [i for i in impls.IMPLEMENTATIONS if i in results]
    errors = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            errors[f"{a}_vs_{b}"] = {k: max_errors(results[a][k], results[b][k])[1]
                                     for k in results[b]}
    return errors


def agreeing(errors: dict[str, dict[str, float]], present: list[str],
             tol: float) -> dict[str, bool]:
    """Whether each implementation agrees, within ``tol``, with another one.

    An implementation whose results match no other's is wrong (or the only
    one); its speed is not reported.

    >>> agreeing({"jaxgrad_vs_autodiff": {"output": 0.5},
    ...           "jaxgrad_vs_torch": {"output": 1e-7},
    ...           "autodiff_vs_torch": {"output": 0.5}},
    ...          ["jaxgrad", "autodiff", "torch"], 1e-5)
    {'jaxgrad': True, 'autodiff': False, 'torch': True}
    """
    ok = {name: False for name in present}
    for pair, per_array in errors.items():
        a, b = pair.split("_vs_")
        if max(per_array.values()) <= tol:
            ok[a] = ok[b] = True
    return ok
