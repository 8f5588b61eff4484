"""``jaxgrad check``: run op configurations against independent references.

A :class:`Case` is one call of a jaxgrad op with fixed options and small
shapes, the same call written as a reference, and the arrays it
differentiates. :func:`run_case` computes, for jaxgrad (in the requested dtype)
and for each reference (in float64):

  output                  the forward value
  grad_<x>                the VJP w.r.t. each differentiated array x, with one
                          seeded cotangent ḡ of the output
  grad2_<x>, grad2_cotangent
                          the gradient of L2 = Σ_x ⟨grad_<x>, u_x⟩ (seeded u_x)
                          w.r.t. every x and w.r.t. ḡ: reverse over reverse

and compares every array with ``_tolerance``'s measure (max |a - b| over the
reference's largest magnitude) against the dtype's tolerance. The references
are JAX autodiff of a plain ``lax``/``jnp`` formula (``lax``, where a case
has one) and PyTorch autograd (``torch``, when torch is importable); both run
in float64, and every implementation sees the same inputs, rounded once to
the dtype under test. jaxgrad and the lax reference of a case run in one
jitted program.

The cases are registered by family in ``_families``; this module is the
engine and the console format.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._tolerance import max_errors, tolerance

Fn = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class Case:
    """One configuration of one op, with its references.

    Attributes:
      name: unique; ``--cases`` selects the cases whose name contains a
        given substring, so a name starts with the op (``max_pool2d k3 s2``).
      family: the key of its family in ``_families.FAMILIES``.
      inputs: ``(name, shape)`` of each differentiated float array, in order.
      ours: the jaxgrad call, taking every input and constant by keyword.
      lax: the same as a plain lax/jnp formula (JAX autodiff is the
        reference), or None.
      torch: the same with ``torch`` tensors (float64; integer constants as
        int64), or None.
      constants: ``rng -> {name: NumPy array}``, arguments that are not
        differentiated (class indices, fixed weights); float ones are rounded
        to the dtype under test like the inputs.
      draw: ``"normal"`` (standard normal inputs), ``"wide"`` (normal times 4,
        to reach the kinks of relu6), ``"unit"`` (uniform in [0.05, 0.95]:
        probabilities) or ``"distinct"`` (a permutation of
        consecutive integers: no ties, exact in every dtype, for max pooling).
      second_order: compare the second-order rows too.
    """

    name: str
    family: str
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    ours: Fn
    lax: Fn | None = None
    torch: Fn | None = None
    constants: Callable[[np.random.Generator], dict] | None = None
    draw: str = "normal"
    second_order: bool = True

    def references(self, use_torch: bool) -> list[str]:
        """The references this case compares with: "lax", "torch" or both."""
        return [name for name, fn in (("lax", self.lax), ("torch", self.torch))
                if fn is not None and (name != "torch" or use_torch)]


@dataclasses.dataclass(frozen=True)
class Row:
    """The worst array of one case against one reference."""

    case: str
    reference: str
    worst: str
    abs_err: float
    rel_err: float
    tol: float

    @property
    def ok(self) -> bool:
        return bool(self.rel_err <= self.tol)


@dataclasses.dataclass(frozen=True)
class Result:
    """A case's rows (one per reference), its wall time, why it was skipped, or
    the error that stopped it (a failure)."""

    case: Case
    rows: tuple[Row, ...]
    seconds: float
    skipped: str = ""
    error: str = ""

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIP"
        ok = not self.error and all(row.ok for row in self.rows)
        return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------
# Inputs: drawn once per case (seeded by the case name), rounded to the dtype.


def _rounded(array, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` once, held in float64."""
    return np.asarray(jnp.asarray(array, dtype), np.float64)


def _draw(case: Case, rng: np.random.Generator, dtype: str) -> dict[str, np.ndarray]:
    out = {}
    for name, shape in case.inputs:
        if case.draw == "distinct":
            size = int(np.prod(shape))
            values = rng.permutation(size) - size // 2
        elif case.draw == "unit":
            values = rng.uniform(0.05, 0.95, shape)
        else:
            values = rng.standard_normal(shape) * (4.0 if case.draw == "wide" else 1.0)
        out[name] = _rounded(np.reshape(values, shape), dtype)
    return out


def _constants(case: Case, rng: np.random.Generator, dtype: str) -> dict[str, np.ndarray]:
    raw = case.constants(rng) if case.constants else {}
    return {k: _rounded(v, dtype) if np.issubdtype(np.asarray(v).dtype, np.floating)
            else np.asarray(v) for k, v in raw.items()}


def _as(values: Mapping[str, np.ndarray], dtype) -> dict[str, jax.Array]:
    """Float arrays in ``dtype``; integer arrays unchanged."""
    return {k: jnp.asarray(v, dtype) if np.issubdtype(v.dtype, np.floating)
            else jnp.asarray(v) for k, v in values.items()}


# --------------------------------------------------------------------------
# Derivatives: the same computation for jaxgrad, the lax reference and torch.


def _derivatives(fn: Fn, xs: dict, consts: dict, cot, us: dict,
                 second_order: bool) -> dict:
    """Output, first-order and (if asked) second-order arrays of ``fn``."""
    names = list(xs)

    def call(*values):
        return fn(**dict(zip(names, values)), **consts)

    y, vjp = jax.vjp(call, *xs.values())
    out = {"output": y}
    out.update({f"grad_{n}": g for n, g in zip(names, vjp(cot))})
    if second_order:
        def l2(values, cot):
            grads = jax.vjp(call, *values)[1](cot)
            return sum(jnp.sum(g * us[n]) for n, g in zip(names, grads))

        g2, g2_cot = jax.grad(l2, (0, 1))(list(xs.values()), cot)
        out.update({f"grad2_{n}": g for n, g in zip(names, g2)})
        out["grad2_cotangent"] = g2_cot
    return out


def _torch_derivatives(case: Case, xs: dict, consts: dict, cot, us: dict) -> dict:
    import torch

    tx = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
          for k, v in xs.items()}
    tc = {k: torch.tensor(v, dtype=torch.float64 if np.issubdtype(v.dtype, np.floating)
                          else torch.int64) for k, v in consts.items()}
    tcot = torch.tensor(cot, dtype=torch.float64, requires_grad=case.second_order)
    y = case.torch(**tx, **tc)
    grads = torch.autograd.grad(y, list(tx.values()), tcot, create_graph=case.second_order,
                                allow_unused=True, materialize_grads=True)
    out = {"output": y}
    out.update({f"grad_{n}": g for n, g in zip(tx, grads)})
    if case.second_order:
        l2 = sum((g * torch.tensor(us[n])).sum() for n, g in zip(tx, grads))
        g2 = torch.autograd.grad(l2, [*tx.values(), tcot], allow_unused=True,
                                 materialize_grads=True)
        out.update({f"grad2_{n}": g for n, g in zip(tx, g2)})
        out["grad2_cotangent"] = g2[-1]
    return {k: v.detach().numpy(force=True) for k, v in out.items()}   # ZeroTensors too


def _float64(results: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64) for k, v in results.items()}


def _program(case: Case) -> Fn:
    """jaxgrad's arrays and the lax reference's, as one jitted program."""
    def run(ours, ref):
        out = {"ours": _derivatives(case.ours, *ours, case.second_order)}
        if case.lax is not None:
            out["lax"] = _derivatives(case.lax, *ref, case.second_order)
        return out

    return jax.jit(run)


def run_case(case: Case, dtype: str = "float64", use_torch: bool = True,
             seed: int = 0) -> Result:
    """Compare jaxgrad (in ``dtype``) with the float64 references of ``case``.

    An exception raised by any implementation is the case's failure (its
    first line is reported), not the end of the run.
    """
    start = time.perf_counter()
    references = case.references(use_torch)
    if not references:
        return Result(case, (), 0.0, skipped="its only reference is torch (--no-torch "
                      "or torch not importable)")
    try:
        rows = _compare(case, dtype, references, seed)
    except Exception as exc:  # noqa: BLE001 - reported as the case's failure
        first = (str(exc).splitlines() or [""])[0]
        return Result(case, (), time.perf_counter() - start,
                      error=f"{type(exc).__name__}: {first}")
    return Result(case, rows, time.perf_counter() - start)


def _compare(case: Case, dtype: str, references: list[str], seed: int) -> tuple[Row, ...]:
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    xs, consts = _draw(case, rng, dtype), _constants(case, rng, dtype)
    structure = jax.eval_shape(lambda xs, c: case.ours(**xs, **c), _as(xs, dtype),
                               _as(consts, dtype))
    cot = _rounded(rng.standard_normal(structure.shape), dtype)
    us = {k: _rounded(rng.standard_normal(v.shape), dtype) for k, v in xs.items()}
    ours = (_as(xs, dtype), _as(consts, dtype), jnp.asarray(cot, structure.dtype),
            _as(us, dtype))
    ref = (_as(xs, jnp.float64), _as(consts, jnp.float64), jnp.asarray(cot, jnp.float64),
           _as(us, jnp.float64))
    results = {k: _float64(v) for k, v in _program(case)(ours, ref).items()}
    if "torch" in references:
        results["torch"] = _float64(_torch_derivatives(case, xs, consts, cot, us))
    rows = []
    for name in references:
        errors = {k: max_errors(results["ours"][k], results[name][k])
                  for k in results[name]}
        worst = max(errors, key=lambda k: errors[k][1])
        rows.append(Row(case.name, name, worst, *errors[worst], tolerance(dtype)))
    return tuple(rows)


# --------------------------------------------------------------------------
# The console: one line per case as it finishes, details under a failure.


def format_result(result: Result, index: int, total: int, width: int) -> str:
    """``[ i/n] name  STATUS  seconds  ref worst-rel (array), ...`` (+ details)."""
    tag = f"[{index:>{len(str(total))}}/{total}]"
    head = (f"{tag} {result.case.name:<{width}} {result.status}  "
            f"{result.seconds:6.2f} s")
    if result.skipped or result.error:
        return f"{head}  {result.skipped or result.error}"
    worst = ", ".join(f"{row.reference} {row.rel_err:.1e} ({row.worst})"
                      for row in result.rows)
    lines = [f"{head}  {worst}"]
    lines += [f"{' ' * len(tag)}   {row.reference}: {row.worst} max abs {row.abs_err:.2e}, "
              f"max rel {row.rel_err:.2e} > tolerance {row.tol:.0e}"
              for row in result.rows if not row.ok]
    return "\n".join(lines)


def summary(results: list[Result], seconds: float) -> str:
    counts = {status: sum(r.status == status for r in results)
              for status in ("PASS", "FAIL", "SKIP")}
    comparisons = sum(len(r.rows) for r in results)
    skipped = f", {counts['SKIP']} skipped" if counts["SKIP"] else ""
    return (f"{len(results)} cases: {counts['PASS']} passed, {counts['FAIL']} failed"
            f"{skipped} ({comparisons} comparisons) in {seconds:.1f} s")
