"""jaxgrad's pooling vs PyTorch: signatures, shapes, forward, first and second order.

Parity configurations run through ``_parity``'s machinery in float64: the
output, the VJP for a random cotangent and the gradient of L2 = ⟨x̄, u⟩ w.r.t.
the input and the cotangent (torch: ``autograd.grad(create_graph=True)``),
compared with ``_tolerance.RTOL['float64']``. Unlike ``check_parity`` the input
is chosen per configuration: integer-valued (many windows with several
maxima), constant, NaN and -inf sprinkled in, or plain normal, so torch's
tie-breaking is tested, not just its values. Outputs that are ±inf on both
sides are equal and blanked before the comparison (inf - inf is NaN).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad
from jaxgrad._pool import _ops as _pool
from jaxgrad._pool import _spec as _pool_spec

from ._parity import _jax_results, _torch_results, compare, rounded

NAN, INF = float("nan"), float("inf")
NAMES = [f"{kind}{n}d" for kind in ("max_pool", "avg_pool", "adaptive_max_pool",
                                    "adaptive_avg_pool") for n in (1, 2, 3)]


# --------------------------------------------------------------------------
# Signatures: names, order and defaults as torch's.


def _torch_signature(name: str) -> list[tuple[str, object]]:
    """torch's parameters: from the Python wrapper, or the builtin's docstring."""
    if name.startswith("max_pool") or name.startswith("adaptive_max_pool"):
        params = inspect.signature(getattr(F, f"{name}_with_indices")).parameters
        return [(p.name, p.default) for p in params.values()]
    header = getattr(F, name).__doc__.strip().splitlines()[0]
    if not header.startswith(name):   # a Python wrapper with a real signature
        params = inspect.signature(getattr(F, name)).parameters
        return [(p.name, p.default) for p in params.values()]
    result = []
    for part in re.search(r"\((.*)\)", header).group(1).split(", "):
        key, _, default = part.partition("=")
        result.append((key, eval(default) if default else inspect.Parameter.empty))
    return result


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torch(name):
    """e.g. avg_pool1d has no divisor_override; adaptive_max takes return_indices."""
    ours = [(p.name, p.default)
            for p in inspect.signature(getattr(jaxgrad, name)).parameters.values()]
    assert ours == _torch_signature(name)


# --------------------------------------------------------------------------
# Shapes and tables, without arrays on the JAX side.


def _torch_raises(fn, *args, **kwargs) -> tuple[int, ...] | None:
    try:
        return tuple(fn(*args, **kwargs).shape)
    except RuntimeError:
        return None


def _our_raises(spec_fn, *args) -> tuple[int, ...] | None:
    try:
        return spec_fn(*args).out_spatial
    except ValueError:
        return None


def test_max_pool_output_sizes_and_rejections_match_torch():
    """Over a grid: the same output length, or both reject (padding > K/2, empty).

    The one difference: windows of only padding (a dilated kernel skipping a
    tiny input), where torch returns -inf with an out-of-range index and we
    raise; those are counted and excluded.
    """
    only_padding = 0
    for size, kernel, stride, padding, dilation, ceil in itertools.product(
            range(1, 8), range(1, 5), range(1, 4), range(0, 3), range(1, 4),
            (False, True)):
        args = (kernel, stride, padding, dilation, ceil)
        theirs = _torch_raises(F.max_pool1d, torch.zeros(1, 1, size), *args)
        ours = _our_raises(_pool._max_pool_spec, "max_pool1d", (size,), *args)
        if theirs is not None and ours is None and 2 * padding <= kernel and (
                _pool_spec.pool_output_size(size, *args) >= 1):
            only_padding += 1
            continue
        assert (None if theirs is None else theirs[2:]) == ours, (size, args)
    assert 0 < only_padding < 40


def _linear_map(spec: _pool_spec.PoolSpec) -> np.ndarray:
    """The (O, I) matrix of a 1-D average pooling spec, from our tables alone."""
    win = spec.windows[0]
    matrix = np.zeros((win.out, win.size))
    for o, row in enumerate(win.table()):
        for i in row[(row >= 0) & (row < win.size)]:
            matrix[o, i] += 1.0
    return matrix / spec.divisor()[:, None]


def _torch_linear_map(fn, size: int, **kwargs) -> np.ndarray:
    basis = torch.eye(size, dtype=torch.float64)[:, None, :]   # batch of unit rows
    return fn(basis, **kwargs)[:, 0, :].T.numpy()


def test_avg_pool_divisors_match_torch():
    """The whole linear map, incl. ceil_mode overhang and count_include_pad."""
    for size, kernel, stride, padding, ceil, include in itertools.product(
            (1, 2, 3, 5, 8), range(1, 5), range(1, 4), range(0, 3), (False, True),
            (False, True)):
        if 2 * padding > kernel:
            continue
        args = (kernel, stride, padding, ceil, include)
        spec = _our_raises(_pool._avg_pool_spec, "avg_pool1d", (size,), *args, None)
        if spec is None:
            assert _torch_raises(F.avg_pool1d, torch.zeros(1, 1, size), *args) is None
            continue
        spec = _pool._avg_pool_spec("avg_pool1d", (size,), *args, None)
        expected = _torch_linear_map(F.avg_pool1d, size, kernel_size=kernel,
                                     stride=stride, padding=padding, ceil_mode=ceil,
                                     count_include_pad=include)
        np.testing.assert_allclose(_linear_map(spec), expected, rtol=1e-15,
                                   err_msg=str((size, args)))


def test_adaptive_bins_match_torch():
    """Adaptive average pooling of unit rows reveals torch's (overlapping) bins."""
    for size, out in itertools.product(range(1, 12), range(1, 12)):
        spec = _pool._adaptive_spec("adaptive_avg_pool1d", (size,), out, mean=True)
        expected = _torch_linear_map(F.adaptive_avg_pool1d, size, output_size=out)
        np.testing.assert_allclose(_linear_map(spec), expected, rtol=1e-15,
                                   err_msg=str((size, out)))


# --------------------------------------------------------------------------
# Inputs that exercise torch's tie-breaking.


def make_input(kind: str, shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "const":
        return np.full(shape, 0.5)
    x = rng.integers(-2, 3, shape).astype(np.float64)     # "ties"
    if kind == "special":   # ties, NaN (several per window) and -inf runs
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, max(1, flat.size // 6), replace=False)] = NAN
        flat[rng.choice(flat.size, max(1, flat.size // 5), replace=False)] = -INF
        flat[:4] = -INF
    return x


def _blank_equal_infinities(ours: dict, ref: dict) -> tuple[dict, dict]:
    ours = {k: np.asarray(v, np.float64) for k, v in ours.items()}
    for key, expected in ref.items():
        same = np.isinf(expected) & (ours[key] == expected)
        ours[key], ref[key] = np.where(same, 0.0, ours[key]), np.where(same, 0.0, expected)
    return ours, ref


def check_on_input(config: str, jax_fn, torch_fn, x: np.ndarray) -> dict:
    """``check_parity`` in float64 on a chosen input (forward, VJP, second order)."""
    y_shape = jax.eval_shape(jax_fn, jax.ShapeDtypeStruct(x.shape, jnp.float64)).shape
    rng = np.random.default_rng(1000)
    cot = rounded(rng.standard_normal(y_shape), "float64")
    u = rounded(rng.standard_normal(x.shape), "float64")
    run = jax.jit(functools.partial(_jax_results, jax_fn, ["x"], double=True))
    ours = run([jnp.asarray(x)], jnp.asarray(cot), [jnp.asarray(u)])
    ref = _torch_results(config, torch_fn, {"x": x}, cot, {"x": u}, "float64", True)
    return compare(config, *_blank_equal_infinities(ours, ref), "float64")


def case(name: str, kind: str, shape, **kwargs):
    """A parity configuration; ``name`` starts with the rank ("1d", "2d", "3d")."""
    return pytest.param(int(name[0]), kind, shape, kwargs, id=name)


def run_case(request, op: str, n: int, kind, shape, kwargs):
    name = f"{op}{n}d"
    ours = functools.partial(getattr(jaxgrad, name), **kwargs)
    theirs = functools.partial(getattr(F, name), **kwargs)
    label = f"{request.node.callspec.id}: {name} {kind} x{shape} {kwargs}"
    return check_on_input(label, ours, theirs, make_input(kind, shape))


# --------------------------------------------------------------------------
# Max pooling.

MAX_CASES = [
    # ---- 1-D
    case("1d k3 s1 overlap", "ties", (2, 3, 9), kernel_size=3, stride=1),
    case("1d k3 s2 p1 ceil overhang", "special", (2, 3, 8), kernel_size=3, stride=2,
         padding=1, ceil_mode=True),
    case("1d k2 s2 p1 ceil drops start in right pad", "ties", (2, 2, 9), kernel_size=2,
         stride=2, padding=1, ceil_mode=True),
    case("1d k2 d3 p1", "special", (2, 3, 9), kernel_size=2, stride=1, padding=1,
         dilation=3),
    case("1d k3 d2 s2 p1 ceil", "ties", (2, 2, 10), kernel_size=3, stride=2, padding=1,
         dilation=2, ceil_mode=True),
    case("1d kernel > input, ceil", "ties", (2, 2, 3), kernel_size=4, stride=4,
         ceil_mode=True),
    case("1d unbatched", "special", (3, 9), kernel_size=3, stride=2, padding=1),
    # ---- 2-D
    case("2d k2 default stride", "special", (2, 3, 7, 8), kernel_size=2),
    case("2d k3 s2 p1 ceil", "ties", (2, 2, 8, 7), kernel_size=3, stride=2, padding=1,
         ceil_mode=True),
    case("2d k(2,3) s(1,2) p(1,1) d(2,1)", "special", (2, 2, 7, 8), kernel_size=(2, 3),
         stride=(1, 2), padding=(1, 1), dilation=(2, 1)),
    case("2d k2 s3 stride>kernel", "ties", (1, 2, 8, 9), kernel_size=2, stride=3),
    case("2d const d2 s2 p1 ceil", "const", (1, 2, 7, 6), kernel_size=3, stride=2,
         padding=1, dilation=2, ceil_mode=True),
    case("2d unbatched", "special", (2, 7, 6), kernel_size=(3, 2), stride=(2, 1),
         padding=(1, 0)),
    # ---- 3-D
    case("3d k(2,3,2) s2 p1 ceil", "special", (1, 2, 5, 6, 5), kernel_size=(2, 3, 2),
         stride=2, padding=1, ceil_mode=True),
    case("3d d2 p1", "normal", (1, 2, 5, 5, 6), kernel_size=2, stride=(1, 2, 1),
         padding=1, dilation=2),
    case("3d unbatched k2 s(1,2,2)", "ties", (2, 4, 5, 4), kernel_size=2,
         stride=(1, 2, 2)),
]


@pytest.mark.parametrize("n, kind, shape, kwargs", MAX_CASES)
def test_max_pool_matches_torch(request, n, kind, shape, kwargs):
    run_case(request, "max_pool", n, kind, shape, kwargs)


# --------------------------------------------------------------------------
# Average pooling.

AVG_CASES = [
    # ---- 1-D (no divisor_override in torch)
    case("1d k3 s1 p1", "normal", (2, 3, 9), kernel_size=3, stride=1, padding=1),
    case("1d k3 s2 p1 ceil no pad count", "special", (2, 2, 8), kernel_size=3, stride=2,
         padding=1, ceil_mode=True, count_include_pad=False),
    case("1d k4 s3 p2 ceil overhang", "normal", (2, 2, 8), kernel_size=4, stride=3,
         padding=2, ceil_mode=True),
    case("1d k2 s2 p1 ceil drops start in right pad", "ties", (1, 2, 9), kernel_size=2,
         stride=2, padding=1, ceil_mode=True),
    # ---- 2-D
    case("2d k3 s2 p1 ceil no pad count", "normal", (2, 2, 7, 8), kernel_size=3,
         stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    case("2d divisor_override ceil", "special", (1, 2, 7, 6), kernel_size=(3, 2),
         stride=2, padding=1, ceil_mode=True, divisor_override=5),
    case("2d k(2,3) s(3,1) p(1,1)", "normal", (2, 2, 8, 7), kernel_size=(2, 3),
         stride=(3, 1), padding=(1, 1)),
    case("2d unbatched negative divisor", "normal", (2, 6, 7), kernel_size=2,
         divisor_override=-3),
    # ---- 3-D
    case("3d k2 p1 ceil no pad count", "normal", (1, 2, 5, 4, 5), kernel_size=2,
         padding=1, ceil_mode=True, count_include_pad=False),
    case("3d unbatched k3 s2 p1 divisor_override", "normal", (2, 5, 6, 5),
         kernel_size=3, stride=2, padding=1, divisor_override=7),
]


@pytest.mark.parametrize("n, kind, shape, kwargs", AVG_CASES)
def test_avg_pool_matches_torch(request, n, kind, shape, kwargs):
    run_case(request, "avg_pool", n, kind, shape, kwargs)


# --------------------------------------------------------------------------
# Adaptive pooling: sizes that divide and that do not (overlapping bins).

ADAPTIVE_CASES = [
    case("1d 5->3", "ties", (2, 3, 5), output_size=3),
    case("1d 7->4", "special", (2, 2, 7), output_size=4),
    case("1d 1->4 unbatched", "normal", (2, 1), output_size=(4,)),
    case("2d (5,7)->(3,4)", "special", (2, 2, 5, 7), output_size=(3, 4)),
    case("2d (None,3) global rows", "ties", (2, 2, 6, 10), output_size=(None, 3)),
    case("2d 1 global (72 taps: one reduction)", "special", (2, 3, 9, 8), output_size=1),
    case("2d unbatched 6->(2,4)", "const", (2, 6, 6), output_size=(2, 4)),
    case("3d (5,4,6)->(3,None,4)", "special", (1, 2, 5, 4, 6), output_size=(3, None, 4)),
    case("3d unbatched (1,3,2)->(2,4,1)", "ties", (2, 1, 3, 2), output_size=(2, 4, 1)),
]


@pytest.mark.parametrize("n, kind, shape, kwargs", ADAPTIVE_CASES)
def test_adaptive_max_pool_matches_torch(request, n, kind, shape, kwargs):
    run_case(request, "adaptive_max_pool", n, kind, shape, kwargs)


@pytest.mark.parametrize("n, kind, shape, kwargs", ADAPTIVE_CASES)
def test_adaptive_avg_pool_matches_torch(request, n, kind, shape, kwargs):
    run_case(request, "adaptive_avg_pool", n, kind, shape, kwargs)


# --------------------------------------------------------------------------
# return_indices: torch's flat per-channel int64 index, exactly.

INDEX_CASES = [
    ("max_pool1d", (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, dilation=2,
                                    ceil_mode=True)),
    ("max_pool2d", (2, 2, 7, 8), dict(kernel_size=3, stride=(2, 1), padding=1,
                                      ceil_mode=True)),
    ("max_pool2d", (2, 7, 8), dict(kernel_size=2, dilation=(1, 2))),
    ("max_pool3d", (1, 2, 5, 4, 6), dict(kernel_size=(2, 3, 2), stride=1,
                                         padding=(1, 1, 0))),
    ("adaptive_max_pool1d", (2, 2, 10), dict(output_size=3)),
    ("adaptive_max_pool2d", (2, 2, 5, 7), dict(output_size=(3, None))),
    ("adaptive_max_pool3d", (2, 5, 4, 6), dict(output_size=(2, 3, 4))),
]


@pytest.mark.parametrize("name, shape, kwargs", INDEX_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(INDEX_CASES)])
@pytest.mark.parametrize("kind", ["ties", "special"])
def test_return_indices_match_torch(name, shape, kwargs, kind):
    x = make_input(kind, shape, seed=3)
    fn = functools.partial(getattr(jaxgrad, name), return_indices=True, **kwargs)
    y, index = jax.jit(fn)(jnp.asarray(x))
    y_ref, index_ref = getattr(F, name)(torch.tensor(x), return_indices=True, **kwargs)
    assert index.dtype == jnp.int64 and index_ref.dtype == torch.int64
    np.testing.assert_array_equal(index, index_ref.numpy())
    np.testing.assert_array_equal(y, y_ref.numpy())


ONE_ELEMENT_CASES = [
    ("avg_pool2d", dict(kernel_size=3, padding=(1,))),
    ("avg_pool2d", dict(kernel_size=(3,), stride=(2,))),
    ("max_pool2d", dict(kernel_size=(3,), stride=(2,), padding=(1,), dilation=(1,))),
    ("max_pool3d", dict(kernel_size=(2,))),
    ("avg_pool3d", dict(kernel_size=(3,), stride=(2,), padding=(1,))),
    ("max_pool1d", dict(kernel_size=(3,), stride=(2,))),
]


@pytest.mark.parametrize("name, kwargs", ONE_ELEMENT_CASES)
def test_one_element_tuples_broadcast_like_torch(name, kwargs):
    """torch reads kernel_size=(3,), stride=(2,), padding=(1,) as every dim's value."""
    n = int(name[-2])
    x = np.random.default_rng(0).standard_normal((2, 3) + (7,) * n)
    ours = getattr(jaxgrad, name)(jnp.asarray(x), **kwargs)
    theirs = getattr(F, name)(torch.from_numpy(x), **kwargs).numpy()
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-12, atol=0)
    g = jax.grad(lambda x: jnp.sum(getattr(jaxgrad, name)(x, **kwargs) ** 2))(
        jnp.asarray(x))
    t = torch.from_numpy(x).requires_grad_()
    (getattr(F, name)(t, **kwargs) ** 2).sum().backward()
    np.testing.assert_allclose(np.asarray(g), t.grad.numpy(), rtol=1e-12, atol=0)


def test_two_element_tuple_for_three_dims_is_refused_with_the_rule():
    with pytest.raises(ValueError, match=re.escape(
            "max_pool3d: `kernel_size` must be an int or a tuple of 3 ints (or of 1, "
            "for every dim), got (3, 3)")):
        jaxgrad.max_pool3d(jnp.ones((1, 1, 4, 4, 4)), (3, 3))
