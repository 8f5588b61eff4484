"""Shared machinery for the torch parity tests.

One runner, :func:`check_parity` (a thin wrapper of the public
:func:`jaxgrad.testing.check_parity`), takes a jaxgrad function and a torch function
of the same differentiable arguments and compares, with ``max_errors`` against
``tolerance(dtype)`` from ``jaxgrad._checking._tolerance``:

  output                      f(*args)
  grad_<arg>                  the VJP of f with a random cotangent ``cot``
  grad2_<arg>, grad2_cot      the gradient of L2 = Σ_i ⟨grad_<arg_i>, u_i⟩
                              w.r.t. every argument and the cotangent
                              (reverse-over-reverse), when ``double``.

jaxgrad runs in ``dtype``. The torch reference runs in the same dtype for
float64 / float32 and in float64 for the half types; every array (arguments,
cotangent, u_i) is rounded to ``dtype`` once, so both sides see the same
numbers.

By default the JAX side (forward, VJP and second order) runs as one jitted
program per configuration: compiling one program is several times cheaper
than op-by-op execution, which compiles every primitive separately.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from jaxgrad import testing
from jaxgrad._checking._reference import torch_conv
from jaxgrad._checking._tolerance import max_errors, tolerance

_TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32,
                "complex128": torch.complex128, "complex64": torch.complex64}


def rounded(array, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype``, held in float64 (complex128 for a
    complex ``dtype``)."""
    wide = np.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else np.float64
    return np.asarray(jnp.asarray(np.asarray(array, wide), dtype), wide)


def random_args(seed: int, shapes: dict, dtype: str) -> dict:
    """Standard normal arguments rounded to ``dtype``; a complex ``dtype``
    gets independent standard normal real and imaginary parts."""
    rng = np.random.default_rng(seed)
    complex_ = jnp.issubdtype(dtype, jnp.complexfloating)

    def draw(shape):
        real = rng.standard_normal(shape)
        return real + 1j * rng.standard_normal(shape) if complex_ else real
    return {name: rounded(draw(shape), dtype) for name, shape in shapes.items()}


def _jax_results(fn, names, xs, cot, us, double: bool) -> dict:
    """Output, VJP and (if ``double``) second-order gradients; xs / us are lists."""
    y, vjp = jax.vjp(fn, *xs)
    grads = vjp(cot)
    out = {"output": y}
    out.update({f"grad_{k}": g for k, g in zip(names, grads)})
    if double:
        def second(*primals_and_cot):
            *primals, c = primals_and_cot
            gs = jax.vjp(fn, *primals)[1](c)
            return sum(jnp.sum(g * u) for g, u in zip(gs, us))

        g2 = jax.grad(second, argnums=tuple(range(len(names) + 1)))(*xs, cot)
        out.update({f"grad2_{k}": g for k, g in zip(names + ["cot"], g2)})
    return out


def _torch_results(config: str, fn, args: dict, cot, us: dict, dtype: str,
                   double: bool) -> dict:
    tdtype = _TORCH_DTYPE.get(dtype, torch.float64)
    names = list(args)
    t = lambda a, req=False: torch.tensor(a, dtype=tdtype, requires_grad=req)  # noqa: E731
    xs = [t(args[k], True) for k in names]
    y = fn(*xs)
    assert tuple(y.shape) == cot.shape, (
        f"[{config}] output shape: jaxgrad {cot.shape}, torch {tuple(y.shape)}")
    tcot = t(cot, double)
    grads = torch.autograd.grad(y, xs, tcot, create_graph=double, allow_unused=True,
                                materialize_grads=True)
    out = {"output": y}
    out.update({f"grad_{k}": g for k, g in zip(names, grads)})
    if double:
        l2 = sum((g * t(us[k])).sum() for k, g in zip(names, grads))
        g2 = torch.autograd.grad(l2, xs + [tcot], allow_unused=True,
                                 materialize_grads=True)
        out.update({f"grad2_{k}": g for k, g in zip(names + ["cot"], g2)})
    return {k: v.detach().to(torch.float64).numpy(force=True)   # ZeroTensors too
            for k, v in out.items()}


def check_parity(config: str, jax_fn, torch_fn, shapes: dict, *, dtype="float64",
                 double=True, jit=True, seed=0) -> dict:
    """Compare jaxgrad and torch on random arguments of ``shapes`` (name -> shape).

    Delegates to the public :func:`jaxgrad.testing.check_parity` (outputs,
    dtypes, shapes, VJPs and, when ``double``, second order w.r.t. the
    arguments and the cotangent), with the torch reference in float64 for the
    half types. Returns the errors {array name: (abs, rel)}; raises
    AssertionError naming the config and the dtype, with the report's table.
    """
    args = random_args(seed, shapes, dtype)
    names = list(args)
    reference = None if dtype in _TORCH_DTYPE else "float64"
    try:
        report = testing.check_parity(
            jax_fn, torch_fn, *(jnp.asarray(args[k], dtype) for k in names),
            argnums=tuple(range(len(names))), rtol=tolerance(dtype),
            second_order=double, jit=jit, reference_dtype=reference, seed=seed,
            arg_names=names)
    except AssertionError as err:
        raise AssertionError(f"[{config}] {dtype} vs torch:{err}") from None
    return {row.name: (row.max_abs, row.max_rel) for row in report.rows}


def compare(config: str, ours: dict, ref: dict, dtype: str) -> dict:
    """Assert every array of ``ref`` is matched by ``ours`` within tolerance(dtype)."""
    tol = tolerance(dtype)
    problems, errors = [], {}
    for key, expected in ref.items():
        actual = ours[key]
        if jnp.dtype(actual.dtype) != jnp.dtype(dtype):
            problems.append(f"{key}: dtype {actual.dtype}, expected {dtype}")
        if tuple(actual.shape) != tuple(expected.shape):
            problems.append(f"{key}: shape {tuple(actual.shape)}, torch "
                            f"{tuple(expected.shape)}")
            continue
        abs_err, rel_err = max_errors(actual, expected)
        errors[key] = (abs_err, rel_err)
        if not rel_err <= tol:  # also catches NaN
            problems.append(f"{key}: abs {abs_err:.3e} rel {rel_err:.3e}")
    assert not problems, (f"[{config}] {dtype} (rel tol {tol:g}) vs torch: "
                          + "; ".join(problems))
    return errors


# --------------------------------------------------------------------------
# Torch references for the ops.


def _is_pairs(padding) -> bool:
    return (isinstance(padding, (tuple, list))
            and all(isinstance(p, (tuple, list)) for p in padding))


def torch_conv_ref(x, w, b, stride=1, padding=0, dilation=1, groups=1,
                   padding_mode="zeros"):
    """torch's nn.ConvNd semantics, plus per-side (lo, hi) pairs for every mode.

    zeros / int / tuple / 'same' / 'valid' go through ``_reference.torch_conv``
    (``F.convNd`` or ``nn.ConvNd`` with ``padding_mode``); pairs with a non-zero
    mode are padded with ``F.pad(mode=...)`` and convolved unpadded.
    """
    if padding_mode != "zeros" and _is_pairs(padding):
        pad = [v for pair in reversed(padding) for v in pair]
        x = F.pad(x, pad, mode=padding_mode)
        padding, padding_mode = 0, "zeros"
    with warnings.catch_warnings():
        # "Using padding='same' with even kernel lengths and odd dilation may
        # require a zero-padded copy of the input": a performance note.
        warnings.filterwarnings("ignore", "Using padding='same'", UserWarning)
        return torch_conv(x, w, b, stride, padding, dilation, groups, padding_mode)


def torch_conv_transpose_ref(x, w, b, stride=1, padding=0, output_padding=0,
                             groups=1, dilation=1):
    n = w.ndim - 2
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
    return fn(x, w, b, stride, padding, output_padding, groups, dilation)


# --------------------------------------------------------------------------
# Chosen arguments (special values included): NaN and ±inf must coincide.


def check_values(config: str, jax_fn, torch_fn, args: dict, *, cot=None,
                 double=True, seed=0, atol=0.0) -> dict:
    """Like :func:`check_parity`, but on the given float64 ``args`` (name -> array).

    ``cot`` is the cotangent (random normal when None); the second-order
    directions u_i are random normal. Arrays may hold NaN and ±inf: see
    :func:`compare_special` (and ``atol`` there). Returns {array name: (abs,
    rel)} of the finite part.
    """
    names = list(args)
    args = {k: np.asarray(a, np.float64) for k, a in args.items()}
    y_shape = jax.eval_shape(jax_fn, *(jax.ShapeDtypeStruct(a.shape, jnp.float64)
                                       for a in args.values())).shape
    rng = np.random.default_rng(seed + 1000)
    if cot is None:
        cot = rng.standard_normal(y_shape)
    cot = np.asarray(cot, np.float64)
    us = {k: rng.standard_normal(a.shape) for k, a in args.items()}
    run = jax.jit(functools.partial(_jax_results, jax_fn, names, double=double))
    ours = run([jnp.asarray(args[k]) for k in names], jnp.asarray(cot),
               [jnp.asarray(us[k]) for k in names])
    ref = _torch_results(config, torch_fn, args, cot, us, "float64", double)
    return compare_special(config, ours, ref, "float64", atol=atol)


def compare_special(config: str, ours: dict, ref: dict, dtype: str, *,
                    atol: float = 0.0) -> dict:
    """NaN, +inf and -inf masks equal exactly; finite values within tolerance(dtype).

    The finite error is relative to the largest finite magnitude of torch's
    array (``_tolerance.max_errors`` cannot compare matching infinities).
    An absolute error up to ``atol`` also passes: for results that are tiny
    or exactly 0 only through cancellation of O(1) terms, whose rounding
    (~1e-16 in float64) is all either side can resolve.
    """
    tol = tolerance(dtype)
    problems, errors = [], {}
    for key, expected in ref.items():
        if jnp.dtype(ours[key].dtype) != jnp.dtype(dtype):
            problems.append(f"{key}: dtype {ours[key].dtype}, expected {dtype}")
        actual = np.asarray(ours[key], np.float64)
        if tuple(actual.shape) != tuple(expected.shape):
            problems.append(f"{key}: shape {actual.shape}, torch {expected.shape}")
            continue
        problems += _mask_problems(key, actual, expected)
        finite = np.isfinite(actual) & np.isfinite(expected)
        errors[key] = max_errors(actual[finite], expected[finite])
        if not (errors[key][1] <= tol or errors[key][0] <= atol):
            problems.append(f"{key}: finite abs {errors[key][0]:.3e} "
                            f"rel {errors[key][1]:.3e}")
    assert not problems, (f"[{config}] {dtype} (rel tol {tol:g}) vs torch: "
                          + "; ".join(problems))
    return errors


_SPECIAL_MASKS = {"NaN": np.isnan, "+inf": np.isposinf, "-inf": np.isneginf}


def _mask_problems(key: str, actual: np.ndarray, expected: np.ndarray) -> list[str]:
    """One line per special value whose positions differ (the first few shown)."""
    out = []
    for what, test in _SPECIAL_MASKS.items():
        mine, theirs = test(actual), test(expected)
        if (mine != theirs).any():
            out.append(f"{key}: {what} differs at {np.argwhere(mine != theirs)[:4].tolist()}"
                       f" (ours {int(mine.sum())}, torch {int(theirs.sum())})")
    return out
