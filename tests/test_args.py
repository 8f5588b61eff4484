"""The argument boundary (``jaxgrad/_args.py``) as every public op sees it.

* Array arguments are array-likes: a Python float or a (nested) list gives the
  same result as the array it spells (lists take the dtype of the call's other
  float arrays, as Python scalars do in ``jnp``); a torch tensor is refused
  with a TypeError pointing at ``jaxgrad.interop.from_torch``.
* A static argument (a shape, a stride, a dim) that arrives traced, because it
  was passed through ``jax.jit`` as an array, is a TypeError saying that it is
  static and how to keep it so (``static_argnames``/``static_argnums`` or
  ``functools.partial``).
"""

from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxgrad
from jaxgrad import grad

F64 = jnp.float64


def _array(*shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), F64)


@dataclasses.dataclass(frozen=True)
class Call:
    """``fn(**args)``; ``arrays`` names the array arguments to vary.

    ``direct``, for a gradient tool: the tool itself, which ``fn`` differentiates
    (``jax.grad`` would refuse a torch tensor before the tool sees it).
    """

    name: str
    fn: object
    args: dict
    arrays: tuple[str, ...]
    direct: object = None

    def __call__(self, **changed):
        return self.fn(**{**self.args, **changed})


def _conv_calls(n: int, suffix: str) -> list[Call]:
    x, w, b = _array(1, 2, *(5,) * n), _array(3, 2, *(2,) * n, seed=1), _array(3, seed=2)
    g = _array(1, 3, *(4,) * n, seed=3)
    wt = _array(2, 3, *(2,) * n, seed=4)                 # (C_in, C_out, *k)
    gt = _array(1, 3, *(6,) * n, seed=5)
    ns = getattr(grad, f"conv{suffix}_input")
    return [
        Call(f"conv{suffix}", getattr(jaxgrad, f"conv{suffix}"),
             dict(input=x, weight=w, bias=b), ("input", "weight", "bias")),
        Call(f"conv_transpose{suffix}", getattr(jaxgrad, f"conv_transpose{suffix}"),
             dict(input=x, weight=wt, bias=b), ("input", "weight", "bias")),
        Call(f"grad.conv{suffix}_input", ns,
             dict(input_size=x.shape, weight=w, grad_output=g), ("weight", "grad_output")),
        Call(f"grad.conv{suffix}_weight", getattr(grad, f"conv{suffix}_weight"),
             dict(input=x, weight_size=w.shape, grad_output=g), ("input", "grad_output")),
        Call(f"grad.conv_transpose{suffix}_input",
             getattr(grad, f"conv_transpose{suffix}_input"),
             dict(input_size=x.shape, weight=wt, grad_output=gt),
             ("weight", "grad_output")),
        Call(f"grad.conv_transpose{suffix}_weight",
             getattr(grad, f"conv_transpose{suffix}_weight"),
             dict(input=x, weight_size=wt.shape, grad_output=gt),
             ("input", "grad_output")),
    ]


def _pool_calls() -> list[Call]:
    calls = []
    for n in (1, 2, 3):
        x = _array(1, 2, *(4,) * n)
        for kind, extra in (("max_pool", dict(kernel_size=2)),
                            ("avg_pool", dict(kernel_size=2)),
                            ("adaptive_max_pool", dict(output_size=3)),
                            ("adaptive_avg_pool", dict(output_size=3))):
            name = f"{kind}{n}d"
            calls.append(Call(name, getattr(jaxgrad, name), dict(input=x, **extra),
                              ("input",)))
    return calls


def _calls() -> list[Call]:
    x = _array(3, 4)
    t_index = jnp.asarray([0, 3, 1])
    t_prob = jax.nn.softmax(_array(3, 4, seed=6), axis=1)
    calls = [c for n in (1, 2, 3) for c in _conv_calls(n, f"{n}d")]
    calls += [c for c in _conv_calls(2, "")]           # conv, conv_transpose, grad.conv_*
    calls += _pool_calls()
    calls += [
        Call("conv_general_dilated", jaxgrad.conv_general_dilated,
             dict(lhs=_array(1, 2, 5), rhs=_array(3, 2, 2, seed=1), window_strides=(1,),
                  padding="VALID"), ("lhs", "rhs")),
        Call("linear", jaxgrad.linear,
             dict(input=x, weight=_array(2, 4, seed=1), bias=_array(2, seed=2)),
             ("input", "weight", "bias")),
        *(Call(name, getattr(jaxgrad, name), dict(input=x), ("input",))
          for name in ("relu", "leaky_relu", "sigmoid", "tanh", "gelu")),
        *(Call(name, getattr(jaxgrad, name), dict(input=x, dim=1), ("input",))
          for name in ("softmax", "log_softmax")),
        *(Call(name, getattr(jaxgrad, name), dict(input=x, target=_array(3, 4, seed=1)),
               ("input", "target"))
          for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")),
        Call("binary_cross_entropy", jaxgrad.binary_cross_entropy,
             dict(input=t_prob, target=jax.nn.sigmoid(_array(3, 4, seed=1)),
                  weight=_array(4, seed=2)), ("input", "target", "weight")),
        Call("binary_cross_entropy_with_logits", jaxgrad.binary_cross_entropy_with_logits,
             dict(input=x, target=t_prob, weight=_array(3, 1, seed=2),
                  pos_weight=_array(4, seed=3)), ("input", "target", "weight", "pos_weight")),
        Call("kl_div", jaxgrad.kl_div, dict(input=x, target=t_prob), ("input", "target")),
        Call("nll_loss", jaxgrad.nll_loss,
             dict(input=x, target=t_index, weight=_array(4, seed=2)),
             ("input", "target", "weight")),
        Call("cross_entropy", jaxgrad.cross_entropy,
             dict(input=x, target=t_index, weight=_array(4, seed=2)),
             ("input", "target", "weight")),
        Call("cross_entropy probabilities", jaxgrad.cross_entropy,
             dict(input=x, target=t_prob), ("input", "target")),
        Call("scale_grad", lambda x, c: jax.grad(
            lambda x: jnp.sum(jaxgrad.scale_grad(x, c) ** 2))(x),
             dict(x=_array(3), c=_array(3, seed=1)), ("c",)),
    ]
    # The gradient tools take a pytree `x`; a Python number is a leaf.
    tools = {"hook": lambda x: jaxgrad.hook(x, lambda g: 2 * g),
             "print_grad": lambda x: jaxgrad.print_grad(x, "g"),
             "reverse_grad": jaxgrad.reverse_grad,
             "scale_grad x": lambda x: jaxgrad.scale_grad(x, 0.5)}
    calls += [Call(name, lambda x, f=f: jax.grad(lambda x: jnp.sum(f(x) ** 2))(x),
                   dict(x=jnp.asarray(1.5, F64)), ("x",), direct=f)
              for name, f in tools.items()]
    return calls


def _newer_calls() -> list[Call]:
    """The ops added with issue 16 (normalisation, dropout, pad, interpolate,
    pixel shuffle, fold, relu6/hardtanh): their array arguments, where they exist."""
    x, c = _array(2, 4, 4, 4), _array(4, seed=1)
    key = jax.random.key(0)
    table = {
        "batch_norm": (lambda input, weight: jaxgrad.batch_norm(
            input, None, None, weight, training=True), dict(weight=c)),
        "batch_norm_stats": (lambda input, running_mean: jaxgrad.batch_norm_stats(
            input, running_mean, jnp.ones(4, F64)), dict(running_mean=c)),
        "instance_norm_stats": (lambda input, running_mean: jaxgrad.instance_norm_stats(
            input, running_mean, jnp.ones(4, F64)), dict(running_mean=c)),
        "group_norm": (lambda input, bias: jaxgrad.group_norm(input, 2, None, bias),
                       dict(bias=c)),
        "layer_norm": (lambda input, weight: jaxgrad.layer_norm(input, 4, weight),
                       dict(weight=c)),
        "instance_norm": (lambda input, weight: jaxgrad.instance_norm(input,
                                                                      weight=weight),
                          dict(weight=c)),
        **{name: (lambda input, name=name: getattr(jaxgrad, name)(
            input, 0.5, True, key=key), {})
           for name in ("dropout", "dropout2d", "dropout3d", "alpha_dropout",
                        "feature_alpha_dropout")},
        "dropout1d": (lambda input: jaxgrad.dropout1d(input, 0.5, key=key), {}),
        "pad": (lambda input: jaxgrad.pad(input, (1, 2, 1, 1), "reflect"), {}),
        "interpolate": (lambda input: jaxgrad.interpolate(input, scale_factor=2,
                                                          mode="bilinear"), {}),
        "upsample": (lambda input: jaxgrad.upsample(input, scale_factor=2, mode="bicubic"),
                     {}),
        "upsample_nearest": (lambda input: jaxgrad.upsample_nearest(input, size=(5, 3)), {}),
        "upsample_bilinear": (lambda input: jaxgrad.upsample_bilinear(input, scale_factor=2),
                              {}),
        "pixel_shuffle": (lambda input: jaxgrad.pixel_shuffle(input, 2), {}),
        "pixel_unshuffle": (lambda input: jaxgrad.pixel_unshuffle(input, 2), {}),
        "unfold": (lambda input: jaxgrad.unfold(input, 2), {}),
        "relu6": (jaxgrad.relu6 if hasattr(jaxgrad, "relu6") else None, {}),
        "hardtanh": (jaxgrad.hardtanh if hasattr(jaxgrad, "hardtanh") else None, {}),
        "prelu": (lambda input, weight: jaxgrad.prelu(input, weight), dict(weight=c)),
        **{name: (getattr(jaxgrad, name, None), {})
           for name in ("silu", "mish", "softplus", "logsigmoid", "hardsigmoid",
                        "hardswish", "elu", "celu", "selu")},
    }
    calls = [Call(name, fn, dict(input=x[0] if name == "dropout1d" else x, **more),
                  ("input", *more))
             for name, (fn, more) in table.items() if hasattr(jaxgrad, name)]
    if hasattr(jaxgrad, "fold"):
        calls.append(Call("fold", lambda input: jaxgrad.fold(input, 3, 2),
                          dict(input=_array(2, 16, 4)), ("input",)))
    return calls


CALLS = _calls() + _newer_calls()
IDS = [c.name for c in CALLS]
# Public names that take no array argument, or are not functions of arrays.
NOT_OPS = {"conv_algorithm", "get_conv_algorithm", "set_conv_algorithm", "autotune_jit",
           "Function",
           "FunctionCtx", "grad", "interop", "testing", "BatchNormStats",
           # tap(x, name) is an identity on any pytree (a probe for
           # check_model_parity), not an op on float arrays.
           "tap"}


def test_every_public_op_is_covered():
    covered = {c.name.split(" ")[0] for c in CALLS}
    public = {n for n in jaxgrad.__all__ if n not in NOT_OPS}
    public |= {f"grad.{n}" for n in grad.__all__}
    assert sorted(public - covered) == []


def _pythonic(value):
    """The Python spelling of an array: a float, or nested lists (ints stay ints)."""
    return np.asarray(value).tolist()


def _same(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_python_values_give_the_same_result_as_arrays(call):
    expected = call()
    _same(call(**{n: _pythonic(call.args[n]) for n in call.arrays}), expected)
    if len(call.arrays) > 1:    # one list among arrays takes their dtype
        first = call.arrays[0]
        _same(call(**{first: _pythonic(call.args[first])}), expected)


def test_python_lists_take_the_dtype_of_the_other_arrays():
    x32 = _array(1, 2, 5).astype(jnp.float32)
    y = jaxgrad.conv1d(x32, [[[1.0, 0.0]], [[0.0, 1.0]]], bias=[0.5, -0.5], groups=2)
    assert y.dtype == jnp.float32       # not float64, although x64 is on
    assert jaxgrad.relu([1.0, -2.0]).dtype == jnp.float64   # JAX's default float


def test_python_complex_values():
    """Python complex numbers and lists: arrays of the complex dtype of the
    call's precision where the op takes complex (the same numbers as arrays
    give), a TypeError naming the dtype where it does not."""
    x64 = jnp.asarray([[1 + 2j, 3j]])
    _same(jaxgrad.pad([[1 + 2j, 3j]], (1, 1)), jaxgrad.pad(x64, (1, 1)))
    xc = jnp.ones((2, 2), jnp.complex64)
    _same(jaxgrad.linear(xc, [[1 + 2j, 1j]], [1j]),
          jaxgrad.linear(xc, jnp.asarray([[1 + 2j, 1j]], jnp.complex64),
                         jnp.asarray([1j], jnp.complex64)))
    with pytest.raises(TypeError, match=r"relu: `input` must have a floating or integer dtype "
                       r"\(float16, bfloat16, float32, float64, int8, .*uint64\), got "
                       r"complex128"):
        jaxgrad.relu([1, 2j])
    with pytest.raises(TypeError, match=r"linear: arguments must share one dtype, but "
                       r"`input` is float32, `weight` is float32, `bias` is complex64"):
        jaxgrad.linear(jnp.ones((2, 2), jnp.float32), jnp.ones((2, 2), jnp.float32), [1j, 1])


@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_torch_tensors_are_refused_with_the_conversion_to_use(call):
    for name in call.arrays:
        tensor = torch.from_numpy(np.array(call.args[name]))
        with pytest.raises(TypeError, match=re.escape(
                f"`{name}` is a torch.Tensor ({tensor.dtype}, shape "
                f"{tuple(tensor.shape)}); convert it first with "
                f"jaxgrad.interop.from_torch({name})")):
            if call.direct is not None:
                call.direct(tensor)
            else:
                call(**{name: tensor})


def test_a_torch_tensor_inside_a_pytree_is_refused():
    with pytest.raises(TypeError, match=re.escape(
            "hook: `x['w']` is a torch.Tensor (torch.float32, shape (2,)); convert it "
            "first with jaxgrad.interop.from_torch(x['w'])")):
        jaxgrad.hook({"w": torch.ones(2)}, lambda g: g)


# --------------------------------------------------------------------------
# Static arguments passed through jax.jit.

X2 = _array(1, 3, 6, 6)
W2 = _array(2, 3, 3, 3, seed=1)
G2 = _array(1, 2, 4, 4, seed=2)


def _static_message(fn: str, name: str, what: str, target: str, position) -> str:
    numbers = "" if position is None else rf" \(or static_argnums={position}\)"
    return (rf"(?s)^{fn}: `{name}` must be {re.escape(what)} known at trace time "
            rf"\(a static argument\), got a traced value .*JitTracer.*: it was passed through "
            rf"jax.jit \(or another transform\) as an array. Mark it static, "
            rf"jax.jit\({re.escape(target)}, static_argnames='{name}'\){numbers}, or "
            rf"bind it before transforming, functools.partial\({re.escape(target)}, "
            rf"{name}=...\)")


def test_traced_input_size_says_it_is_static():
    with pytest.raises(TypeError, match=_static_message(
            "conv2d_input", "input_size", "a shape (a tuple of ints)",
            "jaxgrad.grad.conv2d_input", 0)):
        jax.jit(grad.conv2d_input)(X2.shape, W2, G2)
    # ... and the advice works, both ways.
    fixed = jax.jit(grad.conv2d_input, static_argnames="input_size")(X2.shape, W2, G2)
    partial = jax.jit(functools.partial(grad.conv2d_input, X2.shape))(W2, G2)
    _same(fixed, grad.conv2d_input(X2.shape, W2, G2))
    _same(partial, fixed)


def test_traced_stride_says_it_is_static():
    with pytest.raises(TypeError, match=_static_message(
            "conv2d", "stride", "an int or a tuple of 2 ints", "jaxgrad.conv2d", 3)):
        jax.jit(jaxgrad.conv2d)(X2, W2, None, 2)
    with pytest.raises(TypeError, match=_static_message(
            "conv2d", "stride", "an int or a tuple of 2 ints", "jaxgrad.conv2d", 3)):
        jax.jit(lambda x, s: jaxgrad.conv2d(x, W2, stride=(1, s)))(X2, 2)
    y = jax.jit(jaxgrad.conv2d, static_argnums=3)(X2, W2, None, 2)
    _same(y, jaxgrad.conv2d(X2, W2, None, 2))


def test_traced_kernel_size_says_it_is_static():
    with pytest.raises(TypeError, match=_static_message(
            "max_pool2d", "kernel_size", "an int or a tuple of 2 ints",
            "jaxgrad.max_pool2d", 1)):
        jax.jit(jaxgrad.max_pool2d)(X2, 2)


@pytest.mark.parametrize("fn, name, what, position, value", [
    ("softmax", "dim", "an int", 1, 1),
    ("max_pool2d", "return_indices", "a bool", 6, True),
    ("mse_loss", "reduction", "'none', 'mean' or 'sum'", None, 0),
    ("leaky_relu", "negative_slope", "a real number", 1, 0.1),
    ("avg_pool2d", "ceil_mode", "a bool", 4, False),
    ("adaptive_avg_pool2d", "output_size", "an int or a tuple of 2 ints", 1, 2),
])
def test_every_kind_of_static_argument_says_it(fn, name, what, position, value):
    args = {"mse_loss": (X2, X2), "max_pool2d": (X2, 2), "avg_pool2d": (X2, 2)}.get(
        fn, (X2,))
    call = lambda v: getattr(jaxgrad, fn)(*args, **{name: v})   # noqa: E731
    with pytest.raises(TypeError, match=_static_message(fn, name, what,
                                                        f"jaxgrad.{fn}", position)):
        jax.jit(call)(value)
