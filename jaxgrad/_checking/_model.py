"""check_model_parity: a ported model against its torch original, layer by layer.

  check_model_parity(jax_fn, torch_module, *inputs)   -> ModelReport
  ModelReport, LayerComparison                        what it returns

``jax_fn(params, *inputs)`` is the port; ``params`` is keyed by the torch
names (``jaxgrad.interop.params_from_torch``). Both models run on the same
inputs and parameters in one dtype, and with one seeded cotangent ḡ of the
output (L = ⟨ḡ, output⟩) the check compares

  output[...]       the output leaves
  <param name>      ∂L/∂p for every torch parameter p that requires grad
  input[i]          ∂L/∂x_i for every floating input
  layer rows        for every ``jaxgrad.tap(y, name)`` in the port: y against
                    the output of ``torch_module.get_submodule(name)`` (a
                    forward hook), and ∂L/∂y against torch's gradient of that
                    output (``torch.autograd.grad`` w.r.t. the hooked tensor)

Where a port goes wrong. A forward difference in layer k shows in the output
of k and of every layer after it, so the first tapped layer whose output
differs, in execution order, is where to look (``first_forward``). A
difference that exists only in the backward (a wrong custom VJP, a wrong
gradient formula) shows in the gradients at the outputs of the layers
*before* the broken one: ∂L/∂y_k is computed by the backward of the layers
after k. Walking back from the output, the first layer whose output gradient
differs (``first_gradient``) is then the input of the broken backward, which
is the next tapped layer. Fix forward differences first: they change every
gradient behind them.

The torch side runs on a deep copy of the module (cast to ``dtype``, loaded
with ``params``), in the module's own train/eval mode, so the module itself
(its BatchNorm running statistics, for one) is never changed. Forward hooks
return a clone of each hooked output, so an in-place op downstream
(``ReLU(inplace=True)``, ``out += identity``) cannot overwrite the recorded
value or redirect its gradient.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tap
from .._interop import check_x64, from_torch, require_torch, to_torch, x64_enabled
from .._params import float_dtype, param_names, params_from_torch, params_to_torch
from .._typing import DTypeLike
from ._testing import (Comparison, _cotangent_tree, _label, _normal, _numpy,
                       _torch_grads, _torch_leaves, compare, default_rtol, seeded)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from torch.nn import Module
else:
    Module = Any  # torch is optional: imported when the check runs

_FLOATS = ("float16", "bfloat16", "float32", "float64")
_FN = "check_model_parity"


# --------------------------------------------------------------------------
# The report.


@dataclasses.dataclass(frozen=True)
class LayerComparison:
    """One tapped layer output: its value and the gradient flowing into it.

    Attributes:
      name: the row's name: the tap name, ``#2``, ``#3``, ... for the later
        calls of a layer that runs several times, and the leaf's path for a
        layer with several outputs, e.g. ``block#2[1]``.
      module: the torch submodule name (the name given to ``tap``).
      call: which call of the submodule, 0 for the first.
      forward: the output value against torch's.
      gradient: ∂L/∂output against torch's; None for a non-floating output.

    Example:
      >>> from jaxgrad.testing import Comparison, LayerComparison
      >>> ok = Comparison("conv1", "float64", (2, 3), 1e-16, 1e-16, 1e-10, 0.0, True)
      >>> row = LayerComparison("conv1", "conv1", 0, forward=ok, gradient=ok)
      >>> row.passed
      True
    """

    name: str
    module: str
    call: int
    forward: Comparison
    gradient: Comparison | None

    @property
    def passed(self) -> bool:
        """Whether both the value and the gradient agree."""
        return self.forward.passed and (self.gradient is None or self.gradient.passed)


@dataclasses.dataclass(frozen=True)
class ModelReport:
    """What :func:`check_model_parity` found; ``str(report)`` is two tables.

    Attributes:
      title: what was compared with what (dtype and train/eval mode).
      outputs: one :class:`Comparison` per output leaf (``output``,
        ``output[0]``, ...).
      parameters: the gradient of every torch parameter that requires grad,
        one row named after it (tied weights: one row, names joined by ``=``).
      inputs: the gradient of every floating input, ``input[i]``.
      layers: one :class:`LayerComparison` per tapped output, in the order
        the port runs them.
      unmatched: tap names that could not be compared, with the reason.

    Example:
      >>> from jaxgrad.testing import Comparison, LayerComparison, ModelReport
      >>> ok = Comparison("x", "float64", (2,), 0.0, 0.0, 1e-10, 0.0, True)
      >>> bad = Comparison("x", "float64", (2,), 0.5, 0.5, 1e-10, 0.0, False)
      >>> report = ModelReport(
      ...     "demo", outputs=(bad,), parameters=(), inputs=(),
      ...     layers=(LayerComparison("conv", "conv", 0, ok, bad),
      ...             LayerComparison("bn", "bn", 0, bad, bad)), unmatched=())
      >>> report.passed, report.first_forward, report.first_gradient
      (False, 'bn', 'bn')
    """

    title: str
    outputs: tuple[Comparison, ...]
    parameters: tuple[Comparison, ...]
    inputs: tuple[Comparison, ...]
    layers: tuple[LayerComparison, ...]
    unmatched: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether every row passed and every tap was matched."""
        return not self.failures

    @property
    def failures(self) -> tuple[str, ...]:
        """What failed, in the tables' order, e.g. ``"layer conv1 (forward)"``."""
        out = [row.name for row in self.outputs if not row.passed]
        out += [f"{row.name} (gradient)" for row in self.parameters + self.inputs
                if not row.passed]
        for layer in self.layers:
            if not layer.forward.passed:
                out.append(f"layer {layer.name} (forward)")
            if layer.gradient is not None and not layer.gradient.passed:
                out.append(f"layer {layer.name} (gradient)")
        return tuple(out) + tuple(f"unmatched: {u}" for u in self.unmatched)

    @property
    def first_forward(self) -> str | None:
        """The first tapped layer, in execution order, whose output differs."""
        return next((row.name for row in self.layers if not row.forward.passed), None)

    @property
    def first_gradient(self) -> str | None:
        """Walking back from the output, the first layer whose output gradient
        differs (None if every layer gradient agrees)."""
        return next((row.name for row in reversed(self.layers)
                     if row.gradient is not None and not row.gradient.passed), None)

    @property
    def diagnosis(self) -> str:
        """Where to look first, in words."""
        if self.passed:
            return "all passed"
        lines = []
        names = [row.name for row in self.layers]
        if self.first_forward is not None:
            lines.append(f"forward first diverges at layer '{self.first_forward}' "
                         "(the tapped layers before it agree): look there first; a "
                         "forward difference changes every gradient behind it")
        elif not all(row.passed for row in self.outputs):
            where = (f"after the last tapped layer '{names[-1]}'" if names else
                     "somewhere: tap the port's layers (jaxgrad.tap) to localise it")
            lines.append(f"the output differs but no tapped layer does: {where}")
        elif self.first_gradient is not None:
            k = names.index(self.first_gradient)
            after = f"layer '{names[k + 1]}'" if k + 1 < len(names) else "the output"
            lines.append(f"forward agrees; walking back from the output, the gradient "
                         f"first diverges at the output of '{self.first_gradient}': "
                         f"look at the backward between it and {after}")
        bad = [row.name for row in self.parameters if not row.passed]
        if bad and self.first_forward is None:
            lines.append(f"parameter gradients differ: {', '.join(bad)}")
        if self.unmatched:
            lines.append(f"{len(self.unmatched)} tap(s) could not be matched (below)")
        return "\n".join(lines)

    def parameter(self, name: str) -> Comparison:
        """The gradient row of parameter ``name`` (or the row of an input or
        output, ``input[0]``, ``output``); KeyError listing the rows."""
        return _find("parameter", self.parameters + self.inputs + self.outputs, name)

    def layer(self, name: str) -> LayerComparison:
        """The layer row ``name``; KeyError listing the rows."""
        return _find("layer", self.layers, name)

    def __str__(self) -> str:
        """The title, the diagnosis, the output/gradient table, the layer table."""
        # counted as ``failures`` counts: a layer is one comparison of its
        # value and, where it has one, one of its gradient
        total = (len(self.outputs) + len(self.parameters) + len(self.inputs)
                 + sum(1 + (layer.gradient is not None) for layer in self.layers)
                 + len(self.unmatched))
        failed = len(self.failures)
        status = "all passed" if not failed else f"{failed} of {total} comparisons failed"
        lines = [f"{self.title}: {status}"]
        if failed:
            lines.append(self.diagnosis)
        lines += ["", "outputs and parameter/input gradients"]
        lines += _table(("name", "dtype", "shape", "max abs", "max rel", "rtol", "atol",
                         "ok"),
                        [_cells(r) for r in self.outputs + self.parameters + self.inputs])
        if self.layers:
            lines += ["", "tapped layers, in execution order (gradient: ∂L/∂output)"]
            lines += _table(("layer", "dtype", "shape", "fwd max rel", "ok",
                             "grad max rel", "ok", "rtol"),
                            [_layer_cells(layer) for layer in self.layers])
        notes = [f"{row.name}: {row.note}" for row in self._all_rows() if row.note]
        if notes:
            lines += ["", *notes]
        if self.unmatched:
            lines += ["", "unmatched taps:"] + [f"  {u}" for u in self.unmatched]
        return "\n".join(lines)

    def raise_if_failed(self) -> ModelReport:
        """Raise AssertionError with the report if anything failed; else return self."""
        if not self.passed:
            raise AssertionError("\n" + str(self))
        return self

    def _all_rows(self) -> list[Comparison]:
        rows = list(self.outputs + self.parameters + self.inputs)
        for layer in self.layers:
            rows += [layer.forward] + ([layer.gradient] if layer.gradient else [])
        return rows


def _find(kind: str, rows, name: str):
    for row in rows:
        if row.name == name:
            return row
    raise KeyError(f"ModelReport: no {kind} row {name!r}; rows are "
                   f"{[row.name for row in rows]}")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = [header] + rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
            for line in lines]


def _ok(row: Comparison) -> str:
    return "yes" if row.passed else "FAIL"


def _cells(row: Comparison) -> tuple[str, ...]:
    return (row.name, row.dtype, str(row.shape), f"{row.max_abs:.3e}",
            f"{row.max_rel:.3e}", f"{row.rtol:.1e}", f"{row.atol:.1e}", _ok(row))


def _layer_cells(layer: LayerComparison) -> tuple[str, ...]:
    f, g = layer.forward, layer.gradient
    grad = (f"{g.max_rel:.3e}", _ok(g)) if g is not None else ("-", "")
    return (layer.name, f.dtype, str(f.shape), f"{f.max_rel:.3e}", _ok(f), *grad,
            f"{f.rtol:.1e}")


# --------------------------------------------------------------------------
# Arguments.


def _check_arguments(jax_fn, torch, torch_module, dtype) -> np.dtype | None:
    if not callable(jax_fn):
        raise TypeError(f"{_FN}: `jax_fn` must be callable (the port, called as "
                        f"jax_fn(params, *inputs)), got {type(jax_fn).__name__} "
                        f"{jax_fn!r}")
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"{_FN}: `torch_module` must be a torch.nn.Module, got "
                        f"{type(torch_module).__name__}")
    dtype = float_dtype(_FN, dtype)
    for name, value in torch_module.state_dict().items():
        if isinstance(value, torch.Tensor) and value.is_complex():
            _refuse_complex(f"`torch_module`'s {name!r}", value.dtype)
    if dtype is not None and dtype.name == "float64" and not x64_enabled():
        raise TypeError(f"{_FN}: `dtype` is float64 (the default), but JAX's 64-bit "
                        "mode is off; enable it with jax.config.update("
                        "'jax_enable_x64', True) (or inside `with "
                        "jax.enable_x64(True):`), or pass dtype='float32' or None")
    return dtype


def _refuse_complex(what: str, dtype) -> None:
    raise TypeError(f"{_FN}: {what} is complex ({dtype}); complex models are not "
                    "supported here (their parameters and gradients would not all be "
                    "compared): check each complex op with "
                    "jaxgrad.testing.check_parity, which compares complex arguments")


def _as_jax(torch, value, i: int, dtype):
    """An input as a JAX array (floating ones cast to ``dtype``); others as given."""
    if getattr(value, "dtype", None) is not None and (
            value.is_complex() if isinstance(value, torch.Tensor)
            else np.dtype(value.dtype).kind == "c"):
        _refuse_complex(f"`inputs[{i}]`", value.dtype)
    if isinstance(value, torch.Tensor):
        check_x64(_FN, f"inputs[{i}]", value.dtype)
        value = from_torch(value.detach(), copy=True)
    elif isinstance(value, (jax.Array, np.ndarray, np.generic)):
        check_x64(_FN, f"inputs[{i}]", np.dtype(value.dtype).name)
        value = jnp.asarray(value)
    else:
        return value
    if dtype is not None and np.dtype(value.dtype).name in _FLOATS:
        value = value.astype(dtype)
    return value


def _is_float(value) -> bool:
    return isinstance(value, jax.Array) and np.dtype(value.dtype).name in _FLOATS


def _prepare_params(ref, params, dtype) -> dict:
    """The JAX params (default: from the reference copy); ``ref`` loaded with them."""
    if params is None:
        return params_from_torch(ref)
    names, leaves, tree = param_names(_FN, params)
    known = set(ref.state_dict())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{_FN}: `params` has names that are not in the torch "
                         f"module's state_dict: {unknown}")
    cast = []
    for name, leaf in zip(names, leaves):
        if not isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
            raise TypeError(f"{_FN}: `params` must hold arrays, got "
                            f"{type(leaf).__name__} at {name!r}")
        check_x64(_FN, f"params[{name!r}]", np.dtype(leaf.dtype).name)
        leaf = jnp.asarray(leaf)
        if dtype is not None and np.dtype(leaf.dtype).name in _FLOATS:
            leaf = leaf.astype(dtype)
        cast.append(leaf)
    params = jax.tree.unflatten(tree, cast)
    params_to_torch(params, ref, strict=False)
    return params


def _parameter_groups(ref) -> list[list[str]]:
    """Names of each torch parameter that requires grad (tied ones together)."""
    groups: dict[int, list[str]] = {}
    for name, p in ref.named_parameters(remove_duplicate=False):
        if p.requires_grad and p.is_floating_point():
            groups.setdefault(id(p), []).append(name)
    return list(groups.values())


# --------------------------------------------------------------------------
# The JAX side: discovery, then one jitted program.


@dataclasses.dataclass(frozen=True)
class _Port:
    """jax_fn as a function of its differentiated arguments only.

    ``groups`` lists the names of each torch parameter that requires grad
    (tied ones together); the params leaves named in them, and the floating
    inputs, are the differentiated arguments.
    """

    jax_fn: Callable
    names: list[str]
    leaves: list
    tree: Any
    inputs: list
    groups: list[list[str]]
    param_idx: tuple[int, ...]
    input_idx: tuple[int, ...]

    @property
    def diff_params(self) -> list:
        return [self.leaves[i] for i in self.param_idx]

    @property
    def diff_names(self) -> list[str]:
        return [self.names[i] for i in self.param_idx]

    @property
    def diff_inputs(self) -> list:
        return [self.inputs[i] for i in self.input_idx]

    def __call__(self, diff_params, diff_inputs):
        leaves = list(self.leaves)
        for i, x in zip(self.param_idx, diff_params):
            leaves[i] = x
        inputs = list(self.inputs)
        for i, x in zip(self.input_idx, diff_inputs):
            inputs[i] = x
        return self.jax_fn(jax.tree.unflatten(self.tree, leaves), *inputs)


def _make_port(jax_fn: Callable, ref, params, inputs: list) -> _Port:
    groups = _parameter_groups(ref)
    names, leaves, tree = param_names(_FN, params)
    absent = [g[0] for g in groups if not set(g) & set(names)]
    if absent:
        raise ValueError(f"{_FN}: `params` lacks the torch parameters {absent} "
                         "(buffers may be left out, parameters may not)")
    grouped = {n for g in groups for n in g}
    return _Port(jax_fn, names, leaves, tree, inputs, groups,
                 tuple(i for i, n in enumerate(names) if n in grouped),
                 tuple(i for i, x in enumerate(inputs) if _is_float(x)))


def _discover(port: _Port):
    """The output's shape and the tap calls, from one abstract trace."""
    recorder = _tap.Recorder()

    def run(dp, di):
        with _tap.recording(recorder):
            return port(dp, di)

    out_struct = jax.eval_shape(run, port.diff_params, port.diff_inputs)
    return out_struct, tuple(recorder.calls)


def _jax_results(port: _Port, calls, out_struct, diff_params, diff_inputs, probes,
                 cots):
    def forward(dp, di, probes):
        recorder = _tap.Recorder(probes, calls)
        with _tap.recording(recorder):
            out = port(dp, di)
        if len(recorder.values) != len(calls):
            raise RuntimeError(f"tap: jax_fn tapped {len(recorder.values)} values "
                               f"now but {len(calls)} when the check traced it first; "
                               "it must tap the same names every time it is traced")
        return out, recorder.values

    out, vjp, values = jax.vjp(forward, diff_params, diff_inputs, probes, has_aux=True)
    g_params, g_inputs, g_probes = vjp(_cotangent_tree(out_struct, cots))
    return {"output": jax.tree.leaves(out), "params": g_params, "inputs": g_inputs,
            "values": values, "probes": g_probes}


# --------------------------------------------------------------------------
# The torch side: forward hooks on the tapped submodules.


def _map_tensors(torch, fn: Callable, obj):
    """``obj`` with every tensor t replaced by fn(t) (tuples, lists, dicts)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        items = [_map_tensors(torch, fn, x) for x in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, list):
        return [_map_tensors(torch, fn, x) for x in obj]
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(torch, fn, v)) for k, v in obj.items())
    return obj


def _recording_hook(torch, calls: list):
    """A forward hook appending (values, grad targets) per call to ``calls``."""
    def hook(module, args, output):
        leaves = _torch_leaves(torch, output)
        targets, replacement = [], {}
        for t in leaves:
            if t.is_floating_point():
                # A grad leaf where nothing upstream requires grad, so that the
                # gradient at this output still exists; a clone goes downstream.
                target = t if t.requires_grad else t.detach().clone().requires_grad_()
                targets.append(target)
                replacement[id(t)] = target.clone()
            else:
                targets.append(None)
        calls.append(([_numpy(t) for t in leaves], targets,
                      [str(t.dtype).removeprefix("torch.") for t in leaves]))
        return _map_tensors(torch, lambda t: replacement.get(id(t), t), output)
    return hook


def _hooked_forward(torch, ref, tap_names: list[str], targs: list):
    """Run ``ref`` with a recording hook on every tapped submodule that exists.

    Returns the output leaves, {name: [per call: (values, grad targets,
    dtypes)]} and the tap names with no submodule.
    """
    records: dict[str, list] = {}
    handles, missing = [], []
    for name in tap_names:
        try:
            sub = ref.get_submodule(name)
        except AttributeError:
            missing.append(name)
            continue
        records[name] = []
        handles.append(sub.register_forward_hook(_recording_hook(torch, records[name])))
    try:
        return _torch_leaves(torch, ref(*targs)), records, missing
    finally:
        for handle in handles:
            handle.remove()


def _torch_results(torch, ref, tap_names: list[str], port: _Port, cots: list) -> dict:
    """The torch side: outputs, parameter and input gradients, the hooked calls
    (see _hooked_forward), and ``grad_of``: a grad target's id -> its gradient."""
    device = next(iter(ref.parameters()), torch.zeros(())).device
    targs = [_torch_input(torch, x, device) for x in port.inputs]
    xs = [targs[i].requires_grad_(True) for i in port.input_idx]
    leaves, records, missing = _hooked_forward(torch, ref, tap_names, targs)
    floats = [y for y in leaves if y.is_floating_point()]
    named = dict(ref.named_parameters(remove_duplicate=False))
    params = [named[names[0]] for names in port.groups]
    taps = [t for calls in records.values() for call in calls for t in call[1]
            if t is not None]
    tcots = [to_torch(c, copy=True).to(device=device, dtype=y.dtype)
             for c, y in zip(cots, floats)]
    grads = [_numpy(g) for g in _torch_grads(torch, floats, params + xs + taps, tcots,
                                             False)]
    n = len(params)
    return {"output": [_numpy(y) for y in leaves],
            "output_dtypes": [str(y.dtype).removeprefix("torch.") for y in leaves],
            "params": grads[:n], "inputs": grads[n:n + len(xs)],
            "grad_of": {id(t): g for t, g in zip(taps, grads[n + len(xs):])},
            "records": records, "missing": missing,
            "module_names": [name for name, _ in ref.named_modules() if name]}


def _torch_input(torch, value, device):
    if not isinstance(value, jax.Array):
        return value
    t = to_torch(value, copy=True).to(device)
    return t.to(torch.int64) if t.dtype in (torch.int8, torch.int16, torch.int32) else t


# --------------------------------------------------------------------------
# The rows.


def _largest(arrays) -> float:
    finite = [np.abs(np.where(np.isfinite(a), a, 0.0)).max() for a in arrays
              if a.size and a.dtype.kind == "f"]
    return float(max(finite, default=0.0))


@dataclasses.dataclass(frozen=True)
class _Tolerance:
    """The check's tolerances, with the noise floor of each kind of row.

    A row passes when max|a - b| <= rtol · max|b|, as everywhere in jaxgrad.
    A reference that is zero in exact arithmetic (the gradient of a conv bias
    followed by a train-mode batch norm) is rounding noise instead, of the
    size of rtol times the values it was summed from; so when ``atol`` is not
    given, a row whose reference lies entirely below the floor
    rtol · (largest magnitude among the check's references of the same kind,
    forward values or gradients) passes with an error below that floor.
    """

    rtol: float | None
    atol: float | None
    scale: dict

    def compare(self, name: str, actual, reference, kind: str,
                expected_dtype=None) -> Comparison:
        actual = np.asarray(actual)
        if (expected_dtype is not None and actual.dtype.kind in "iub"
                and np.dtype(expected_dtype).kind == actual.dtype.kind):
            expected_dtype = actual.dtype   # int32 vs torch's int64: same values
        rtol = default_rtol(actual.dtype) if self.rtol is None else float(self.rtol)
        atol = self.atol
        if atol is None:
            floor = rtol * self.scale[kind]
            atol = floor if _largest([np.asarray(reference)]) <= floor else 0.0
        return compare(name, actual, reference, rtol=rtol, atol=atol,
                       expected_dtype=expected_dtype)


def _layer_rows(calls, ours: dict, ref: dict, tol: _Tolerance):
    """LayerComparison rows in the port's order, and the unmatched messages."""
    rows, unmatched, seen = [], [], {}
    for k, call in enumerate(calls):
        c = seen[call.name] = seen.get(call.name, -1) + 1
        label = call.name if c == 0 else f"{call.name}#{c + 1}"
        if call.name in ref["missing"]:
            if c == 0:
                unmatched.append(_missing_message(call.name, ref))
            continue
        torch_calls = ref["records"][call.name]
        if c >= len(torch_calls):
            continue   # counted below
        rows += _call_rows(label, call, c, ours["values"][k], ours["probes"][k],
                           torch_calls[c], ref["grad_of"], tol)
    counts = {name: n + 1 for name, n in seen.items()}
    for name, n in counts.items():
        m = len(ref["records"].get(name, ()))
        if name not in ref["missing"] and m != n:
            unmatched.append(f"'{name}': tapped {n} time(s) in jax_fn, but the torch "
                             f"submodule ran {m} time(s); a name must be tapped once "
                             "per call of its submodule")
    return rows, unmatched


def _missing_message(name: str, ref: dict) -> str:
    known = ref["module_names"]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"'{name}': the torch module has no submodule of that name{hint}"


def _call_rows(label, call, c, values, grads, torch_call, grad_of, tol):
    t_values, t_targets, t_dtypes = torch_call
    if len(values) != len(t_values):
        note = (f"jax_fn tapped {len(values)} array(s), the torch submodule "
                f"returned {len(t_values)}")
        row = Comparison(label, "-", (), np.nan, np.nan, np.nan, np.nan, False, note)
        return [LayerComparison(label, call.name, c, row, None)]
    paths = [jax.tree_util.keystr(p) for p, _ in
             jax.tree_util.tree_flatten_with_path(
                 jax.tree.unflatten(call.tree, list(call.leaves)))[0]]
    rows = []
    for i, (path, value) in enumerate(zip(paths, values)):
        name = label + (path if len(values) > 1 else "")
        fwd = tol.compare(name, value, t_values[i], "forward",
                          expected_dtype=jnp.dtype(t_dtypes[i]))
        grad = None
        if grads[i] is not None and t_targets[i] is not None:
            grad = tol.compare(name, grads[i], grad_of[id(t_targets[i])], "gradient")
        rows.append(LayerComparison(name, call.name, c, fwd, grad))
    return rows


def _parameter_rows(groups, diff_names, g_params, ref_grads, tol: _Tolerance):
    by_name: dict[str, list] = {}
    for name, g in zip(diff_names, g_params):
        by_name[name] = np.asarray(g)
    rows = []
    for names, theirs in zip(groups, ref_grads):
        # A tied weight read under several names: the sum of their gradients.
        first, *more = [by_name[n] for n in names if n in by_name]
        rows.append(tol.compare("=".join(names), sum(more, first), theirs, "gradient"))
    return rows


# --------------------------------------------------------------------------
# check_model_parity.


def check_model_parity(jax_fn: Callable, torch_module: Module, *inputs: Any,
                       params: Mapping[str, Any] | None = None,
                       dtype: DTypeLike | None = "float64", seed: int = 0,
                       rtol: float | None = None, atol: float | None = None,
                       raise_on_failure: bool = True, jit: bool = True) -> ModelReport:
    """Compare a ported model with its torch original, layer by layer.

    ``jax_fn(params, *inputs)`` is the port and ``torch_module(*inputs)`` the
    original. Both run on the same inputs and parameters, in ``dtype``, and
    with one seeded random cotangent ḡ of the output (L = ⟨ḡ, output⟩) the
    check compares the output, ∂L/∂p for every torch parameter that requires
    grad, ∂L/∂x for every floating input and, for every
    ``jaxgrad.tap(y, name)`` in the port, the value y and ∂L/∂y against the
    output of ``torch_module.get_submodule(name)`` and its gradient. The
    report names the first layer whose forward differs and, walking back from
    the output, the first whose gradient differs (see :class:`ModelReport`).

    The torch module runs as a deep copy, in its current train/eval mode: the
    check never changes it (BatchNorm's running statistics included). The
    port must follow the same mode itself (e.g. batch statistics in train
    mode). Random layers (dropout in train mode) cannot match.

    Args:
      jax_fn: the port, ``jax_fn(params, *inputs)``, returning the
        structure the module returns (an array, or a tuple/dict of arrays). It
        may be jitted, or call jitted functions: the check inlines them so that
        their taps are recorded, and jits its own program.
      torch_module: the ``torch.nn.Module`` ported.
      *inputs: the module's positional inputs: torch tensors, NumPy or JAX
        arrays (integer ones, e.g. class targets, are not differentiated) or
        other values passed to both unchanged.
      params: what the port's ``params`` is, keyed by torch names (flat or
        nested, see ``jaxgrad.interop.params_from_torch``); the torch copy is
        loaded with the same values. Default: ``params_from_torch`` of the
        module. Buffers may be left out; parameters may not. For a port that
        keeps its parameters in another layout, wrap it:
        ``lambda p, x: port(to_my_layout(p), x)``.
      dtype: the floating dtype both sides run in (the torch copy, ``params``
        and floating inputs are cast to it); default "float64" for tight
        checks (needs JAX's 64-bit mode). None runs everything as given.
      seed: seeds the output cotangent (a stream of its own, as in
        ``check_parity``).
      rtol: relative tolerance, w.r.t. the reference's max magnitude, for
        every row. Default: ``jaxgrad._checking._tolerance.tolerance(dtype)`` (float64
        1e-10, float32 1e-5, float16 5e-3, bfloat16 2e-2); exact for integer
        arrays.
      atol: a row also passes when its max abs error is at most ``atol``.
        Default None: 0, except for a row whose reference lies entirely below
        ``rtol`` times the largest reference of its kind (forward values, or
        gradients) in the check — rounding noise where the exact value is 0,
        e.g. the gradient of a conv bias followed by a train-mode batch norm;
        such a row passes with an error below that floor. Pass ``atol=0.0``
        to compare every row relative to itself only.
      raise_on_failure: raise AssertionError carrying the report when anything
        fails (default); False returns the report either way.
      jit: run the JAX side (forward and backward) as one jitted program.

    Returns:
      The :class:`ModelReport`.

    Raises:
      AssertionError: with ``raise_on_failure``, a row failed or a tap could
        not be matched; the message is the report.
      TypeError: ``jax_fn`` is not callable, ``torch_module`` is not a module,
        ``params`` is not a dict keyed by names, a 64-bit array or ``dtype``
        while JAX's 64-bit mode is off; a complex parameter, buffer, input or
        output (compare complex ops with :func:`check_parity`).
      ValueError: ``dtype`` is not a floating dtype; ``params`` has names the
        module does not have, or lacks one of its parameters; the two outputs
        have a different number of arrays.
      RuntimeError: ``jax_fn`` taps different names when traced twice.

    Example:
      >>> import jax, torch, jaxgrad
      >>> from jaxgrad.testing import check_model_parity
      >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
      >>> def port(p, x):
      ...     h = jaxgrad.tap(jaxgrad.linear(x, p["0.weight"], p["0.bias"]), "0")
      ...     return jaxgrad.tap(jaxgrad.tanh(h), "1")
      >>> x = torch.randn(2, 3)
      >>> with jax.enable_x64(True):
      ...     report = check_model_parity(port, net, x)
      >>> report.passed, [row.name for row in report.layers]
      (True, ['0', '1'])
      >>> report.parameter("0.weight").max_rel < 1e-12
      True
    """
    torch = require_torch(_FN)
    dtype = _check_arguments(jax_fn, torch, torch_module, dtype)
    ref = copy.deepcopy(torch_module)       # never run (or cast) the module itself
    if dtype is not None:
        ref.to(getattr(torch, dtype.name))
    port = _make_port(jax_fn, ref, _prepare_params(ref, params, dtype),
                      [_as_jax(torch, x, i, dtype) for i, x in enumerate(inputs)])
    out_struct, calls = _discover(port)
    for leaf in jax.tree.leaves(out_struct):
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            _refuse_complex("`jax_fn`'s output", leaf.dtype)
    rng = seeded(seed)
    cots = [_normal(rng, s) for s in jax.tree.leaves(out_struct)
            if np.dtype(s.dtype).name in _FLOATS]
    ours = _run_jax(port, calls, out_struct, cots, jit)
    tap_names = list(dict.fromkeys(call.name for call in calls))
    theirs = _torch_results(torch, ref, tap_names, port, cots)
    _check_outputs(ours["output"], theirs["output"], out_struct)
    mode = "train" if torch_module.training else "eval"
    dt = dtype.name if dtype is not None else "dtypes as given"
    title = (f"{_FN}({_label(jax_fn)} vs torch {type(torch_module).__name__}; {dt}, "
             f"{mode} mode)")
    report = _report(title, port, calls, out_struct, ours, theirs,
                     _Tolerance(rtol, atol, _scales(theirs)))
    return report.raise_if_failed() if raise_on_failure else report


def _run_jax(port: _Port, calls, out_struct, cots, jit: bool) -> dict:
    run = functools.partial(_jax_results, port, calls, out_struct)
    try:
        return (jax.jit(run) if jit else run)(port.diff_params, port.diff_inputs,
                                              _tap.zero_probes(calls), cots)
    except jax.errors.UnexpectedTracerError as error:
        raise ValueError(
            f"{_FN}: a value tapped in jax_fn escaped an inner transformation, most "
            "likely a jaxgrad.tap inside jax.vmap, lax.scan/fori_loop or "
            "jax.checkpoint within jax_fn: its value exists only inside it, so it "
            "cannot be recorded; move the tap outside") from error


def _report(title: str, port: _Port, calls, out_struct, ours: dict, theirs: dict,
            tol: _Tolerance) -> ModelReport:
    outputs = [tol.compare(name, a, b, "forward", expected_dtype=jnp.dtype(dt))
               for name, a, b, dt in zip(_output_names(out_struct), ours["output"],
                                         theirs["output"], theirs["output_dtypes"])]
    parameters = _parameter_rows(port.groups, port.diff_names, ours["params"],
                                 theirs["params"], tol)
    grads_in = [tol.compare(f"input[{i}]", g, t, "gradient")
                for i, g, t in zip(port.input_idx, ours["inputs"], theirs["inputs"])]
    layers, unmatched = _layer_rows(calls, ours, theirs, tol)
    return ModelReport(title, tuple(outputs), tuple(parameters), tuple(grads_in),
                       tuple(layers), tuple(unmatched))


def _scales(theirs: dict) -> dict:
    """The largest reference magnitude of each kind of row (see _Tolerance)."""
    values = [v for calls in theirs["records"].values() for call in calls
              for v in call[0]]
    return {"forward": _largest(theirs["output"] + values),
            "gradient": _largest(theirs["params"] + theirs["inputs"]
                                 + list(theirs["grad_of"].values()))}


def _output_names(out_struct) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(out_struct)[0]
    return [f"output{jax.tree_util.keystr(p)}" for p, _ in paths]


def _check_outputs(ours: list, theirs: list, out_struct) -> None:
    if len(ours) != len(theirs):
        raise ValueError(f"{_FN}: jax_fn returned {len(ours)} array(s) "
                         f"({jax.tree.structure(out_struct)}) but the torch module "
                         f"returned {len(theirs)}; they must return the same "
                         "structure")
