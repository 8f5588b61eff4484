"""Checking gradients: against PyTorch, and against finite differences.

  check_parity(jax_fn, torch_fn, *args)   outputs and VJPs vs torch autograd
  check_vjp(fn, *args)                    a custom VJP vs central differences

Both return a :class:`Report`, one :class:`Comparison` row per array, and
raise AssertionError with the report's table when a row fails.

Notation. f is the function under test, x_i its differentiated arguments, ḡ a
cotangent of f's output (seeded standard normal, rounded to the output
dtype), u_i seeded directions shaped like x_i:

  grad_<x_i>   = (∂f/∂x_i)ᵀ ḡ                          (first order)
  L2           = Σ_i ⟨grad_<x_i>, u_i⟩
  grad2_<x_i>  = ∂L2/∂x_i,  grad2_cot = ∂L2/∂ḡ = Σ_i (∂f/∂x_i) u_i  (second order)

Errors are measured as in ``_tolerance``: max |a - b| and that divided by the
reference's largest finite magnitude (max_abs itself when the reference is
all zero). A row passes when ``max_rel <= rtol`` or ``max_abs <= atol``;
``rtol`` defaults to ``_tolerance.tolerance(dtype)`` of the array under test,
``atol`` to 0 (so it only loosens the check where asked).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._args import _FLOAT_DTYPES, _INEXACT_DTYPES
from .._interop import check_x64, require_torch, to_torch, x64_enabled
from ._tolerance import max_errors, tolerance

# check_parity and check_vjp differentiate complex arrays too (_INEXACT);
# check_vjp as their real and imaginary parts (_realified).
_FLOATS, _INEXACT = _FLOAT_DTYPES, _INEXACT_DTYPES


# --------------------------------------------------------------------------
# The report.


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One compared array.

    Attributes:
      name: e.g. ``output``, ``output[1]``, ``grad_x``, ``grad2_cot``.
      dtype: the dtype of the array under test.
      shape: its shape.
      max_abs: max |actual - reference| (NaN when the shapes differ).
      max_rel: ``max_abs / max|reference|``.
      rtol, atol: the tolerance applied.
      passed: whether the row is within tolerance (and dtype and shape match).
      note: why a row failed besides its numbers (dtype or shape mismatch).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxgrad.testing import check_vjp
      >>> with jax.enable_x64(True):
      ...     row = check_vjp(jnp.sin, jnp.array([0.5, 1.0]))["grad_arg0"]
      >>> row.name, row.dtype, row.shape, row.passed, row.max_rel < 1e-8
      ('grad_arg0', 'float64', (2,), True, True)
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    passed: bool
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Report:
    """The rows of one check; ``str(report)`` is a readable table.

    Attributes:
      title: what was compared with what.
      rows: one :class:`Comparison` per array.

    Example:
      >>> from jaxgrad.testing import Comparison, Report
      >>> row = Comparison("grad_x", "float32", (2,), max_abs=3e-7, max_rel=1.5e-7,
      ...                  rtol=1e-5, atol=0.0, passed=True)
      >>> report = Report("my check", (row,))
      >>> report.passed, report.failures, report["grad_x"].max_rel
      (True, (), 1.5e-07)
      >>> print(report)
      my check: all passed
      array   dtype    shape  max abs    max rel    rtol     atol     ok
      grad_x  float32  (2,)   3.000e-07  1.500e-07  1.0e-05  0.0e+00  yes
    """

    title: str
    rows: tuple[Comparison, ...]

    @property
    def passed(self) -> bool:
        """Whether every row passed."""
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> tuple[Comparison, ...]:
        """The rows that failed, in order."""
        return tuple(row for row in self.rows if not row.passed)

    def __getitem__(self, name: str) -> Comparison:
        """The row called ``name``; KeyError listing the rows if there is none."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"Report: no row {name!r}; rows are "
                       f"{[row.name for row in self.rows]}")

    def __str__(self) -> str:
        """The title, a table with one line per row, and the rows' notes."""
        header = ("array", "dtype", "shape", "max abs", "max rel", "rtol", "atol",
                  "ok")
        lines = [header] + [_cells(row) for row in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        table = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                 for line in lines]
        status = ("all passed" if self.passed else
                  f"{len(self.failures)} of {len(self.rows)} failed")
        notes = [f"{row.name}: {row.note}" for row in self.rows if row.note]
        return "\n".join([f"{self.title}: {status}"] + table + notes)

    def raise_if_failed(self) -> Report:
        """Raise AssertionError with the table if any row failed; else return self."""
        if not self.passed:
            raise AssertionError("\n" + str(self))
        return self


def _cells(row: Comparison) -> tuple[str, ...]:
    return (row.name, row.dtype, str(row.shape), f"{row.max_abs:.3e}",
            f"{row.max_rel:.3e}", f"{row.rtol:.1e}", f"{row.atol:.1e}",
            "yes" if row.passed else "FAIL")


def default_rtol(dtype) -> float:
    """``_tolerance.tolerance(dtype)`` for floats and complex; 0 (exact) for
    ints and bools."""
    return tolerance(dtype) if np.dtype(dtype).name in _INEXACT else 0.0


def compare(name: str, actual, reference, *, rtol: float | None = None,
            atol: float | None = None, expected_dtype=None) -> Comparison:
    """One :class:`Comparison` of ``actual`` (under test) with ``reference``.

    Matching infinities and matching NaNs count as equal.
    """
    dtype = np.dtype(actual.dtype)
    rtol = default_rtol(dtype) if rtol is None else float(rtol)
    atol = 0.0 if atol is None else float(atol)
    shape = tuple(actual.shape)
    if shape != tuple(reference.shape):
        return Comparison(name, dtype.name, shape, np.nan, np.nan, rtol, atol,
                          False, f"shape {shape}, reference {tuple(reference.shape)}")
    wide = (np.complex128 if np.iscomplexobj(actual) or np.iscomplexobj(reference)
            else np.float64)
    a = np.asarray(actual, wide)
    b = np.asarray(reference, wide)
    same_inf = np.isinf(a) & (a == b)
    a, b = np.where(same_inf, 0.0, a), np.where(same_inf, 0.0, b)
    max_abs, max_rel = max_errors(a, b)
    ok = bool(max_rel <= rtol or max_abs <= atol)  # False for NaN
    note = ""
    if expected_dtype is not None and dtype != np.dtype(expected_dtype):
        ok, note = False, f"dtype {dtype.name}, expected {np.dtype(expected_dtype).name}"
    return Comparison(name, dtype.name, shape, max_abs, max_rel, rtol, atol, ok, note)


# --------------------------------------------------------------------------
# Arguments: arrays are converted once; anything else is passed through.


def _is_array(value) -> bool:
    return isinstance(value, (jax.Array, np.ndarray, np.generic))


def _as_jax(fn: str, args: Sequence) -> list:
    out = []
    for i, value in enumerate(args):
        if _is_array(value):
            check_x64(fn, f"args[{i}]", np.dtype(value.dtype).name)
            value = jnp.asarray(value)
        out.append(value)
    return out


def _is_float(value, complex_ok: bool = False) -> bool:
    return _is_array(value) and np.dtype(value.dtype).name in (
        _INEXACT if complex_ok else _FLOATS)


def parse_argnums(fn: str, args: Sequence, argnums, complex_ok: bool = False
                  ) -> tuple[int, ...]:
    """Normalise ``argnums``; None means every floating-point (with
    ``complex_ok``, also complex) array argument."""
    if argnums is None:
        return tuple(i for i, a in enumerate(args) if _is_float(a, complex_ok))
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if isinstance(i, bool) or not isinstance(i, int) or not -len(args) <= i < len(args):
            raise ValueError(f"{fn}: `argnums` must index the {len(args)} "
                             f"arguments, got {argnums!r}")
        if not _is_float(args[i], complex_ok):
            kind = getattr(args[i], "dtype", type(args[i]).__name__)
            what = "floating-point or complex" if complex_ok else "floating-point"
            raise TypeError(f"{fn}: `argnums` selects args[{i}] ({kind}), but only "
                            f"{what} arrays can be differentiated")
    return tuple(sorted({i % len(args) for i in nums}))


def _names(fn: str, args: Sequence, arg_names) -> list[str]:
    if arg_names is None:
        return [f"arg{i}" for i in range(len(args))]
    if len(arg_names) != len(args):
        raise ValueError(f"{fn}: `arg_names` must name all {len(args)} arguments, "
                         f"got {list(arg_names)!r}")
    return list(arg_names)


def _partial_call(fn: Callable, args: Sequence, argnums: tuple[int, ...]) -> Callable:
    """``fn`` as a function of the differentiated arguments only."""
    def call(*diff):
        full = list(args)
        for i, x in zip(argnums, diff):
            full[i] = x
        return fn(*full)
    return call


# The stream the cotangents and directions are drawn from: one of its own, so
# that arguments drawn the usual way (np.random.default_rng(seed)) are never
# the cotangent too (for layer_norm, an input equal to its cotangent has an
# input gradient of about zero, and comparing rounding noise fails).
_STREAM = 0x6A67


def seeded(seed: int) -> np.random.Generator:
    """The generator of the cotangents and directions for ``seed``."""
    return np.random.default_rng([_STREAM, seed])


def _normal(rng: np.random.Generator, struct) -> jax.Array:
    """Seeded standard normal values rounded to ``struct``'s dtype (for a
    complex dtype, independent real and imaginary parts)."""
    values = rng.standard_normal(struct.shape)
    if jnp.issubdtype(struct.dtype, jnp.complexfloating):
        values = values + 1j * rng.standard_normal(struct.shape)
    return jnp.asarray(values, struct.dtype)


# --------------------------------------------------------------------------
# check_parity: JAX side.


def _cotangent_tree(out_struct, float_cots: list):
    """The full cotangent pytree: ``float_cots`` for float (and complex)
    leaves, float0 zeros else."""
    leaves, tree = jax.tree.flatten(out_struct)
    it = iter(float_cots)
    full = [next(it) if np.dtype(s.dtype).name in _INEXACT
            else np.zeros(s.shape, jax.dtypes.float0) for s in leaves]
    return jax.tree.unflatten(tree, full)


def _jax_results(call, out_struct, diff, cots, us, second_order: bool) -> dict:
    """Output leaves, VJPs and (if asked) second-order gradients, as lists."""
    y, vjp = jax.vjp(call, *diff)
    res = {"output": jax.tree.leaves(y),
           "grad": list(vjp(_cotangent_tree(out_struct, cots)))}
    if second_order:
        def l2(diff, cots):
            gs = jax.vjp(call, *diff)[1](_cotangent_tree(out_struct, cots))
            return jnp.real(sum(jnp.sum(g * u) for g, u in zip(gs, us)))

        res["grad2"], res["grad2_cot"] = map(list, jax.grad(l2, (0, 1))(diff, cots))
    return res


# --------------------------------------------------------------------------
# check_parity: torch side.


def _to_reference(torch, value, reference_dtype, device):
    """A torch copy of a JAX argument on ``device``: floats in ``reference_dtype``
    if given; integers in their own dtype (int8 data wraps around as in JAX),
    but int32 as int64, torch's index dtype (JAX's stand-in for it: class
    targets, indices); other values unchanged."""
    if not isinstance(value, jax.Array):
        return value
    t = to_torch(value, copy=True).to(device)
    if t.is_floating_point() and reference_dtype is not None:
        return t.to(getattr(torch, jnp.dtype(reference_dtype).name))
    if t.is_complex() and reference_dtype is not None:   # complex of that precision
        wide = jnp.dtype(reference_dtype) == jnp.float64   # (not narrowed with x64 off)
        return t.to(torch.complex128 if wide else torch.complex64)
    if t.dtype == torch.int32:
        return t.to(torch.int64)
    return t


def _like(cot, y):
    """A cotangent torch accepts for its output ``y``: real or complex as ``y``
    is. They differ only where jax_fn's output and torch_fn's do, which the
    output row reports as a dtype mismatch."""
    if y.is_complex() and not cot.is_complex():
        return cot.to(y.dtype)
    if cot.is_complex() and not y.is_complex():
        return cot.real.contiguous()
    return cot


def _numpy(t) -> np.ndarray:
    t = t.detach().cpu().resolve_conj()
    # force: torch returns a ZeroTensor for a gradient it knows is zero (the
    # second derivative of l1_loss), which plain .numpy() refuses
    return (t.double() if t.is_floating_point() else t).numpy(force=True)


def _torch_grads(torch, outputs, inputs, grad_outputs, create_graph: bool) -> list:
    live = [(y, g) for y, g in zip(outputs, grad_outputs) if y.requires_grad]
    if not live:
        return [torch.zeros_like(x) for x in inputs]
    ys, gs = zip(*live)
    return list(torch.autograd.grad(ys, inputs, gs, create_graph=create_graph,
                                    allow_unused=True, materialize_grads=True))


def _torch_leaves(torch, y) -> list:
    """The leaves of torch_fn's output; torch's named return tuples (e.g. of
    ``torch.max(x, dim)``), which are pytree leaves to JAX, count as tuples."""
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, tuple):
        return [leaf for item in y for leaf in _torch_leaves(torch, item)]
    return jax.tree.leaves(y)


def _parse_device(fn: str, device):
    """A ``torch.device`` from a name such as "cpu" or "cuda:0", or a device."""
    torch = require_torch(fn)
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{fn}: `torch_device` must be a device name or a torch.device, "
                        f"got {type(device).__name__} {device!r}")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"{fn}: `torch_device` {device!r} is not a torch device: "
                         f"{e}") from None


def _torch_results(torch_fn, args, argnums, cots, us, second_order,
                   reference_dtype, device) -> dict:
    torch = require_torch("check_parity")
    to_reference = functools.partial(_to_reference, torch,
                                     reference_dtype=reference_dtype, device=device)
    targs = [to_reference(a) for a in args]
    xs = [targs[i].requires_grad_(True) for i in argnums]
    leaves = _torch_leaves(torch, torch_fn(*targs))
    floats = [y for y in leaves if y.is_floating_point() or y.is_complex()]
    # Complex: for y = A x, JAX's VJP is Aᵀḡ and torch's backward A^H ḡ, so
    # torch gets conj(ḡ) and its gradient conj(Aᵀḡ) is conjugated back. At
    # second order L2 = Re Σ⟨grad_i, u_i⟩ is the same real function on both
    # sides; torch's gradient of a real function is the conjugate of JAX's,
    # w.r.t. x, and equal to it w.r.t. torch's cotangent conj(ḡ).
    tcots = [_like(to_reference(jnp.conj(c)), y).requires_grad_(second_order)
             for c, y in zip(cots, floats)]
    grads = _torch_grads(torch, floats, xs, tcots, second_order)
    res = {"output": [_numpy(y) for y in leaves],
           "grad": [np.conj(_numpy(g)) for g in grads],
           "output_dtypes": [jnp.dtype(str(y.dtype).removeprefix("torch."))
                             for y in leaves]}
    if second_order:
        tus = [to_reference(jnp.conj(u)) for u in us]
        l2 = sum((g * u).sum() for g, u in zip(grads, tus))
        if l2.is_complex():
            l2 = l2.real
        g2 = torch.autograd.grad(l2, xs + tcots, allow_unused=True,
                                 materialize_grads=True)
        res["grad2"] = [np.conj(_numpy(g)) for g in g2[:len(xs)]]
        res["grad2_cot"] = [_numpy(g) for g in g2[len(xs):]]
    return res


# --------------------------------------------------------------------------
# check_parity: the rows.


def _output_names(out_struct) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(out_struct)[0]
    return [f"output{jax.tree_util.keystr(p)}" for p, _ in paths]


def _rows(ours: dict, ref: dict, names: dict, expected: dict, rtol, atol) -> list:
    rows = []
    for kind in ("output", "grad", "grad2", "grad2_cot"):
        if kind not in ours:
            continue
        for name, a, b, dt in zip(names[kind], ours[kind], ref[kind], expected[kind]):
            rows.append(compare(name, a, b, rtol=rtol, atol=atol, expected_dtype=dt))
    return rows


def _expected_output_dtypes(out_leaves, ref_dtypes, reference_dtype, work_dtype,
                            widened: bool):
    """Floats: torch's dtype, or when torch ran in ``reference_dtype`` the
    inputs' precision (``work_dtype``, real), as a complex dtype where torch's
    output is complex. Integers: torch's dtype as JAX holds it (int64 is
    int32 while JAX's 64-bit mode is off, and where an int32 argument reached
    torch as int64, ``widened``); bools: bool."""
    out = []
    for ours, theirs in zip(out_leaves, ref_dtypes):
        if widened and theirs == np.int64 and ours.dtype == np.int32:
            theirs = np.dtype(np.int32)
        if np.dtype(ours.dtype).name in _INEXACT:
            if reference_dtype is None:
                out.append(theirs)
            elif jnp.issubdtype(theirs, jnp.complexfloating):
                out.append(jnp.result_type(work_dtype, jnp.complex64))
            else:
                out.append(work_dtype)
        elif theirs.kind in "iu":
            out.append(np.dtype(jax.dtypes.canonicalize_dtype(theirs)))
        else:
            out.append(theirs)
    return out


def _row_names(names: list, argnums: tuple[int, ...], out_struct) -> dict:
    out_names = _output_names(out_struct)
    floats = [np.dtype(s.dtype).name in _INEXACT for s in jax.tree.leaves(out_struct)]
    return {"output": out_names,
            "grad": [f"grad_{names[i]}" for i in argnums],
            "grad2": [f"grad2_{names[i]}" for i in argnums],
            "grad2_cot": [f"grad2_cot{n.removeprefix('output')}"
                          for n, is_float in zip(out_names, floats) if is_float]}


def _expected_dtypes(ours: dict, ref: dict, args: list, diff: list, cots: list,
                     reference_dtype) -> dict:
    """Gradients in their primal's dtype; outputs as ``_expected_output_dtypes``."""
    # the arguments' precision: a complex argument counts as its parts' dtype
    parts = [jnp.finfo(a.dtype).dtype for a in args if _is_float(a, complex_ok=True)]
    work = jnp.result_type(*parts) if parts else None
    widened = any(isinstance(a, jax.Array) and a.dtype == np.int32 for a in args)
    return {"output": _expected_output_dtypes(ours["output"], ref["output_dtypes"],
                                              reference_dtype, work, widened),
            "grad": [x.dtype for x in diff], "grad2": [x.dtype for x in diff],
            "grad2_cot": [c.dtype for c in cots]}


def check_parity(jax_fn: Callable, torch_fn: Callable, *args: Any,
                 argnums: int | Sequence[int] | None = None,
                 rtol: float | None = None, atol: float | None = None,
                 second_order: bool = False, jit: bool = True,
                 reference_dtype: str | None = None, seed: int = 0,
                 arg_names: Sequence[str] | None = None,
                 torch_device: str = "cpu") -> Report:
    """Compare a JAX function with a PyTorch one: outputs and gradients.

    Both functions get the same arguments: arrays (NumPy or JAX) are converted
    once to JAX arrays for ``jax_fn`` and copied to torch tensors for
    ``torch_fn`` (integer arrays in their dtype, but int32 as int64, torch's
    index dtype; an int32 result then stands for torch's int64 one); other
    values (Python numbers, strings) are passed to both unchanged. Compared:

      output[...]   every leaf of the output pytree (value, dtype, shape)
      grad_<arg>    the VJP w.r.t. each differentiated argument, with one seeded
                    random cotangent for every floating output leaf
      grad2_<arg>, grad2_cot[...]
                    with ``second_order``: the gradient of Σ_i ⟨grad_<arg_i>, u_i⟩
                    (seeded u_i) w.r.t. the arguments and the cotangents, i.e.
                    reverse-over-reverse through both frameworks

    Complex arrays are differentiated too, in JAX's convention: for y = A·x
    the VJP is Aᵀḡ, and torch's backward, A^H applied to its grad_output, is
    its conjugate. So torch gets conj(ḡ) and the conjugate of its gradient is
    compared; at second order the function is Re Σ_i ⟨grad_<arg_i>, u_i⟩ on
    both sides.

    Args:
      jax_fn: the function under test; returns an array or a pytree of arrays.
      torch_fn: the reference, same arguments; returns tensors in the same
        structure (tuples, lists, dicts).
      *args: the arguments, positional.
      argnums: the arguments to differentiate (int or ints). Default: every
        floating-point or complex array. Integer arrays (class targets) are
        never differentiated.
      rtol: relative tolerance, w.r.t. the reference's max magnitude. Default:
        ``jaxgrad._checking._tolerance.tolerance(dtype)`` of each array under test
        (float64 1e-10, float32 1e-5, float16 5e-3, bfloat16 2e-2; complex128
        and complex64 as float64 and float32); exact for integer outputs.
      atol: a row also passes when its max abs error is at most ``atol``
        (useful where the reference is near zero); default 0.
      second_order: also compare second-order gradients (see above); where
        nothing is differentiable (integer arguments or outputs only) there
        are none, and the output alone is compared.
      jit: run the JAX side (forward, VJP, second order) as one jitted program.
      reference_dtype: run torch with its floating arguments cast to this
        dtype, e.g. "float64" for a precise reference of half-precision code;
        jaxgrad's floating outputs must then have their inputs' dtype.
      seed: seeds the cotangents and directions (drawn from a stream of
        their own: arguments drawn with ``np.random.default_rng(seed)`` do
        not coincide with them).
      arg_names: names for the rows (``grad_<name>``); default ``arg0``, ...
      torch_device: the device of the tensors ``torch_fn`` receives (default
        "cpu", where torch creates tensors unless told otherwise, also when
        JAX runs on a GPU).

    Returns:
      The :class:`Report` (all rows passed).

    Raises:
      AssertionError: a row failed; the message is the report's table. Also when
        the two outputs have a different number of leaves.
      TypeError, ValueError: bad ``argnums`` or ``arg_names``; a float64 array
        while JAX's 64-bit mode is off.

    Example:
      >>> import numpy as np, jax.numpy as jnp, torch, jaxgrad
      >>> from jaxgrad.testing import check_parity
      >>> x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
      >>> report = check_parity(jaxgrad.relu, torch.relu, x)
      >>> [row.name for row in report.rows], report.passed
      (['output', 'grad_arg0'], True)
    """
    fn = "check_parity"
    torch_device = _parse_device(fn, torch_device)
    args = _as_jax(fn, args)
    argnums = parse_argnums(fn, args, argnums, complex_ok=True)
    names = _names(fn, args, arg_names)
    diff = [args[i] for i in argnums]
    static = [a if i not in argnums else None for i, a in enumerate(args)]
    call = _partial_call(jax_fn, static, argnums)
    out_struct = jax.eval_shape(call, *diff)
    rng = seeded(seed)
    cots = [_normal(rng, s) for s in jax.tree.leaves(out_struct)
            if np.dtype(s.dtype).name in _INEXACT]
    us = [_normal(rng, x) for x in diff]
    # an integer op (no floating argument, or no floating output) has no
    # gradient of any order: its output alone is compared
    second_order = second_order and bool(diff) and bool(cots)
    # the other arrays enter the jitted program as its arguments, not as
    # constants: XLA's constant folding of an integer convolution saturates
    # where the compiled one wraps around (as torch's does)
    held = [i for i, a in enumerate(static) if isinstance(a, jax.Array)]

    def run(diff, cots, us, consts):
        full = list(static)
        for i, c in zip(held, consts):
            full[i] = c
        return _jax_results(_partial_call(jax_fn, full, argnums), out_struct, diff, cots,
                            us, second_order)
    ours = (jax.jit(run) if jit else run)(diff, cots, us, [static[i] for i in held])
    ref = _torch_results(torch_fn, args, argnums, cots, us, second_order,
                         reference_dtype, torch_device)
    _check_structure(fn, ours["output"], ref["output"], out_struct)
    row_names = _row_names(names, argnums, out_struct)
    expected = _expected_dtypes(ours, ref, args, diff, cots, reference_dtype)
    rows = _rows(ours, ref, row_names, expected, rtol, atol)
    return Report(f"{fn}({_label(jax_fn)} vs torch {_label(torch_fn)})",
                  tuple(rows)).raise_if_failed()


def _label(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _check_structure(fn: str, ours: list, ref: list, out_struct) -> None:
    if len(ours) != len(ref):
        raise AssertionError(f"{fn}: jax_fn returned {len(ours)} arrays "
                             f"({jax.tree.structure(out_struct)}) but torch_fn "
                             f"returned {len(ref)}")


# --------------------------------------------------------------------------
# check_vjp: finite differences in float64.


def _central_difference(h: Callable, x: jax.Array, eps: float) -> jax.Array:
    """∂h/∂x[j] ≈ (h(x + ε e_j) - h(x - ε e_j)) / 2ε for every element j."""
    basis = jnp.eye(x.size, dtype=x.dtype).reshape((x.size,) + x.shape)
    hv = jax.vmap(lambda e: h(x + eps * e) - h(x - eps * e))(basis)
    return (hv / (2 * eps)).reshape(x.shape)


def _vjp_rows(call, diff, cot, names, eps) -> tuple[list, list]:
    """First order: the VJP vs central differences of ⟨ḡ, f(x)⟩."""
    grads = jax.vjp(call, *diff)[1](cot)
    fds = []
    for k, x in enumerate(diff):
        def h(xk, k=k):
            xs = list(diff)
            xs[k] = xk
            return _inner(call(*xs), cot)
        fds.append(_central_difference(h, x, eps))
    return [f"grad_{n}" for n in names], list(zip(grads, fds))


def _inner(a, b) -> jax.Array:
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _second_order_rows(call, diff, cot, us, names, eps) -> tuple[list, list]:
    """Second order: ∇ of L2 = Σ⟨(∂f/∂x_i)ᵀḡ, u_i⟩ (reverse-over-reverse) vs
    central differences of L2 in x, and of f along u in ḡ."""
    def l2(diff, cot):
        return _inner(jax.vjp(call, *diff)[1](cot), us)

    g_diff, g_cot = jax.grad(l2, (0, 1))(list(diff), cot)
    pairs = []
    for k, x in enumerate(diff):
        def h(xk, k=k):
            xs = list(diff)
            xs[k] = xk
            return l2(xs, cot)
        pairs.append((g_diff[k], _central_difference(h, x, eps)))
    # L2 is linear in ḡ: ∂L2/∂ḡ = Σ_i (∂f/∂x_i) u_i, a directional derivative of f.
    plus = call(*(x + eps * u for x, u in zip(diff, us)))
    minus = call(*(x - eps * u for x, u in zip(diff, us)))
    fd_cot = jax.tree.map(lambda p, m: (p - m) / (2 * eps), plus, minus)
    pairs += list(zip(jax.tree.leaves(g_cot), jax.tree.leaves(fd_cot)))
    cot_names = [f"grad2_cot{n.removeprefix('output')}" for n in _output_names(cot)]
    return [f"grad2_{n}" for n in names] + cot_names, pairs


def check_vjp(fn: Callable, *args: Any, argnums: int | Sequence[int] | None = None,
              order: int = 1, eps: float = 1e-5, rtol: float = 1e-6,
              atol: float | None = None, seed: int = 0,
              arg_names: Sequence[str] | None = None) -> Report:
    """Compare ``fn``'s VJP (e.g. a ``jax.custom_vjp``) with finite differences.

    Runs in float64: floating arguments are cast to float64, so JAX's 64-bit
    mode must be on. With a seeded cotangent ḡ (and directions u_i):

      order=1   grad_<arg>   (∂f/∂x)ᵀ ḡ vs central differences of ⟨ḡ, f(x)⟩
      order=2   also grad2_<arg> = ∇ₓ Σ_i ⟨(∂f/∂x_i)ᵀ ḡ, u_i⟩ (reverse-over-
                reverse, so the backward's own VJP) vs central differences, and
                grad2_cot[...] = Σ_i (∂f/∂x_i) u_i vs central differences of f
                along u.

    Each element costs two evaluations of ``fn`` (batched with vmap), so keep
    the arguments small. Central differences assume ``fn`` is smooth near the
    arguments: keep them away from kinks (relu at 0, ties in max pooling).

    Args:
      fn: a JAX function of the arguments; returns an array or a pytree of
        floating or complex arrays.
      *args: the arguments; floating arrays are cast to float64, complex ones
        to complex128. A complex argument is checked as its real and
        imaginary parts (rows ``grad_<arg>.real`` and ``grad_<arg>.imag``),
        a complex output as its real and imaginary parts: fn is compared as
        a real map, whose gradients JAX computes with fn's complex VJP
        rules, so those rules are what is checked (JAX's convention).
      argnums: the arguments to differentiate; default every floating or
        complex array.
      order: 1 or 2.
      eps: the finite-difference step (truncation error ~eps², rounding error
        ~1e-16/eps).
      rtol: relative tolerance w.r.t. the finite difference's max magnitude.
      atol: a row also passes when its max abs error is at most ``atol``.
      seed: seeds the cotangent and the directions (a stream of their own,
        as in :func:`check_parity`).
      arg_names: names for the rows; default ``arg0``, ...

    Returns:
      The :class:`Report` (all rows passed).

    Raises:
      AssertionError: a row failed; the message is the report's table.
      RuntimeError: JAX's 64-bit mode is off.
      TypeError: no argument is floating-point or complex (nothing to
        differentiate).
      ValueError: ``order`` is not 1 or 2, or ``eps`` is not positive.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> from jaxgrad.testing import check_vjp
      >>> with jax.enable_x64(True):
      ...     report = check_vjp(jaxgrad.tanh, jnp.array([0.5, -1.0]), order=2)
      >>> [row.name for row in report.rows], report.passed
      (['grad_arg0', 'grad2_arg0', 'grad2_cot'], True)
    """
    name = "check_vjp"
    _check_vjp_options(name, order, eps)
    args = [_widened(a) if _is_float(a, complex_ok=True) else a
            for a in _as_jax(name, args)]
    argnums = parse_argnums(name, args, argnums, complex_ok=True)
    if not argnums:
        raise TypeError(f"{name}: no floating-point or complex argument to differentiate, "
                        f"got dtypes {[str(getattr(a, 'dtype', type(a).__name__)) for a in args]} "
                        f"(integer and bool arguments have no derivative; compare an "
                        f"integer op's output with check_parity)")
    names = [_names(name, args, arg_names)[i] for i in argnums]
    call, diff, names = _realified(_partial_call(fn, args, argnums),
                                   [args[i] for i in argnums], names)
    rng = seeded(seed)
    cot = jax.tree.map(lambda s: _normal(rng, s), jax.eval_shape(call, *diff))
    us = [_normal(rng, x) for x in diff]
    row_names, pairs = _vjp_rows(call, diff, cot, names, eps)
    if order == 2:
        more_names, more = _second_order_rows(call, diff, cot, us, names, eps)
        row_names, pairs = row_names + more_names, pairs + more
    rows = [compare(n, a, b, rtol=rtol, atol=atol) for n, (a, b) in zip(row_names, pairs)]
    return Report(f"{name}({_label(fn)} vs central differences, eps={eps:g})",
                  tuple(rows)).raise_if_failed()


def _widened(a):
    """float64, or complex128 for a complex array."""
    return jnp.asarray(a, jnp.complex128 if jnp.iscomplexobj(a) else jnp.float64)


def _realified(call: Callable, diff: list, names: list[str]):
    """``call`` as a real function: each complex argument z = x + iy enters as
    the two real arrays x and y (rows ``<name>.real``, ``<name>.imag``), and
    each complex output leaf w leaves as (Re w, Im w). Finite differences then
    see a real map of real variables, and JAX's autodiff of it runs ``call``'s
    own complex VJP rules (splitting and joining real and imaginary parts are
    JAX's), so the comparison checks those rules: a wrong conjugation fails."""
    def real_parts(tree):
        return jax.tree.map(
            lambda y: (jnp.real(y), jnp.imag(y)) if jnp.iscomplexobj(y) else y, tree)

    complex_args = [jnp.iscomplexobj(x) for x in diff]
    parts, part_names = [], []
    for x, n, c in zip(diff, names, complex_args):
        parts += [jnp.real(x), jnp.imag(x)] if c else [x]
        part_names += [f"{n}.real", f"{n}.imag"] if c else [n]

    def real_call(*flat):
        it, args = iter(flat), []
        for c in complex_args:
            args.append(lax.complex(next(it), next(it)) if c else next(it))
        return real_parts(call(*args))
    return real_call, parts, part_names


def _check_vjp_options(fn: str, order, eps) -> None:
    if not x64_enabled():
        raise RuntimeError(f"{fn}: finite differences need float64, but JAX's "
                           "64-bit mode is off; enable it with "
                           "jax.config.update('jax_enable_x64', True) or run inside "
                           "`with jax.enable_x64(True):`")
    if order not in (1, 2) or isinstance(order, bool):
        raise ValueError(f"{fn}: `order` must be 1 or 2, got {order!r}")
    if not eps > 0:
        raise ValueError(f"{fn}: `eps` must be positive, got {eps!r}")
