"""PyTorch's own OpInfo samples (``op_db``) as parity cases.

:func:`samples` picks an op's float64 sample inputs by ``op.name`` and
``op.variant_test_name``; :func:`check_cases` compares a list of (label,
jaxgrad function, torch function, input) cases: output, the VJP for a random
cotangent, and the gradient of ⟨VJP, u⟩ w.r.t. the input and the cotangent
(reverse-over-reverse in both frameworks), float64, with the JAX side of all
cases in one jitted program. Every case has one differentiable input; the
other arguments are bound into the two functions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.testing._internal.common_methods_invocations import op_db

from jaxgrad._checking._tolerance import max_errors, tolerance


def samples(name: str, variant: str = "") -> tuple:
    """(the OpInfo, its float64 samples with requires_grad) for ``name``/``variant``."""
    ops = [op for op in op_db if op.name == name and op.variant_test_name == variant]
    assert len(ops) == 1, (name, variant, len(ops))
    op = ops[0]
    return op, list(op.sample_inputs("cpu", torch.float64, requires_grad=True))


def _torch_side(fn, x, cot, u) -> tuple:
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(x)
    cot = torch.tensor(cot, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(y, x, cot, create_graph=True, allow_unused=True,
                               materialize_grads=True)
    second = (torch.autograd.grad((g * torch.tensor(u)).sum(), [x, cot], allow_unused=True,
                                  materialize_grads=True)
              if g.requires_grad else (torch.zeros_like(x), torch.zeros_like(cot)))
    return tuple(t.detach().numpy() for t in (y, g, *second))


def _jax_side(fns, xs, cots, us) -> list:
    out = []
    for fn, x, cot, u in zip(fns, xs, cots, us):
        y, vjp = jax.vjp(fn, x)

        def inner(x, cot, fn=fn, u=u):
            return jnp.sum(jax.vjp(fn, x)[1](cot)[0] * u)

        out.append((y, vjp(cot)[0], *jax.grad(inner, argnums=(0, 1))(x, cot)))
    return out


def check_cases(config: str, cases: list, *, seed: int = 0) -> None:
    """Assert each (label, jax_fn, torch_fn, x) matches torch to float64 tolerance."""
    rng = np.random.default_rng(seed)
    xs = [np.asarray(x, np.float64) for *_, x in cases]
    shapes = [tuple(torch_fn(torch.tensor(x)).shape) for (_, _, torch_fn, _), x
              in zip(cases, xs)]
    cots = [rng.standard_normal(s) for s in shapes]
    us = [rng.standard_normal(x.shape) for x in xs]
    fns = [jax_fn for _, jax_fn, _, _ in cases]
    ours = jax.jit(lambda *a: _jax_side(fns, *a))(xs, cots, us)
    problems = []
    for (label, _, torch_fn, _), x, cot, u, got in zip(cases, xs, cots, us, ours):
        want = _torch_side(torch_fn, x, cot, u)
        for name, a, b in zip(("output", "grad", "grad2_x", "grad2_cot"), got, want):
            if tuple(a.shape) != b.shape:
                problems.append(f"{label} {name}: shape {tuple(a.shape)}, torch {b.shape}")
            elif not max_errors(a, b)[1] <= tolerance("float64"):
                problems.append(f"{label} {name}: rel {max_errors(a, b)[1]:.2e}")
    assert not problems, f"[{config}] vs torch: " + "; ".join(problems)


# --------------------------------------------------------------------------
# Samples with several tensors (weights, targets, running statistics): every
# tensor with requires_grad is differentiated, the others are constants.


def distinct_samples(name: str, variant: str = "") -> list:
    """The float64 samples of op ``name``/``variant``, one per distinct call:
    samples differing only in their random values are kept once."""
    _, found = samples(name, variant)
    seen, kept = set(), []
    for sample in found:
        key = repr([(tuple(v.shape), v.dtype, v.requires_grad)
                    if isinstance(v, torch.Tensor) else v
                    for v in (sample.input, *sample.args, *sample.kwargs.items())])
        if key not in seen:
            seen.add(key)
            kept.append(sample)
    return kept


def rebuild(sample, diff: list, constant) -> tuple[list, dict]:
    """The sample's arguments with its differentiable tensors replaced by
    ``diff`` (in order) and the others (targets, statistics) by ``constant(t)``."""
    it = iter(diff)

    def leaf(v):
        if isinstance(v, torch.Tensor):
            return next(it) if v.requires_grad else constant(v)
        return v
    return ([leaf(v) for v in (sample.input, *sample.args)],
            {k: leaf(v) for k, v in sample.kwargs.items()})


def differentiable(sample) -> list[np.ndarray]:
    leaves = (sample.input, *sample.args, *sample.kwargs.values())
    return [t.detach().numpy() for t in leaves
            if isinstance(t, torch.Tensor) and t.requires_grad]


def as_jax(t: torch.Tensor):
    return jnp.asarray(t.detach().numpy())


def check_samples(config: str, ours, theirs, cases: list, *, atol=None,
                  second_order: bool = True) -> None:
    """Every sample in ``cases``: outputs, VJPs w.r.t. each differentiable
    tensor and (unless ``second_order`` is False) reverse-over-reverse second
    order with the cotangents, float64, all samples in one jitted program and
    one ``testing.check_parity`` call."""
    from jaxgrad import testing

    arrays, slices = [], []
    for sample in cases:
        diff = differentiable(sample)
        slices.append(slice(len(arrays), len(arrays) + len(diff)))
        arrays += diff

    def run(fn, constant, flat):
        return [fn(*a, **k) for a, k in (rebuild(s, flat[sl], constant)
                                         for s, sl in zip(cases, slices))]

    names = [f"s{i}.{k}" for i, sl in enumerate(slices) for k in range(sl.stop - sl.start)]
    try:
        testing.check_parity(lambda *flat: run(ours, as_jax, flat),
                             lambda *flat: run(theirs, torch.clone, flat), *arrays,
                             second_order=second_order, arg_names=names,
                             rtol=tolerance("float64"), atol=atol)
    except AssertionError as err:
        raise AssertionError(f"[{config}] vs torch:{err}") from None
