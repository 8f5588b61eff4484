"""Bad input is loud: every public function rejects it at trace time.

Each error must be a plain ValueError or TypeError (never an XLA or JAX
runtime error) whose message starts with the function's name, names the
offending argument in backticks and shows the offending value. Every
backticked name must be a real parameter of the function that raised.

The functions are exercised through :class:`Family`, which maps a forward-style
call ``(x, w, **kwargs)`` onto each public signature: the ``*_input``
gradients receive ``x.shape`` as ``input_size``, the ``*_weight`` gradients
receive ``w.shape`` as ``weight_size``, and both receive a ``grad_output``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad
from jaxgrad import grad

F32, F64 = jnp.float32, jnp.float64
C_IN, C_OUT, T_OUT_PER_GROUP = 4, 6, 3   # base channel counts
SIZE, KERNEL = 7, 3                       # base spatial and kernel size


# --------------------------------------------------------------------------
# The public functions, grouped by kind.


@dataclasses.dataclass(frozen=True)
class Family:
    """One public function, called with a forward-style ``(x, w, **kwargs)``.

    Attributes:
      name: the public name the error messages must start with.
      fn: the function.
      n: spatial dims used for its test arrays.
      kind: one of ``conv``, ``transpose``, ``conv_input``, ``conv_weight``,
        ``transpose_input``, ``transpose_weight``.
    """

    name: str
    fn: object
    n: int
    kind: str

    def __str__(self):
        return self.name

    @property
    def transpose(self) -> bool:
        return self.kind.startswith("transpose")

    @property
    def is_grad(self) -> bool:
        return "_" in self.kind

    @property
    def input_arg(self) -> str:
        return "input_size" if self.kind.endswith("_input") else "input"

    @property
    def weight_arg(self) -> str:
        return "weight_size" if self.kind.endswith("_weight") else "weight"

    def base_weight(self, dtype=F32, k=KERNEL):
        """A valid weight for a :func:`base_input` with groups=1."""
        lead = (C_IN, T_OUT_PER_GROUP) if self.transpose else (C_OUT, C_IN)
        return jnp.zeros(lead + (k,) * self.n, dtype)

    def base_input(self, dtype=F32, size=SIZE, channels=C_IN, batch=2):
        return jnp.zeros((batch, channels) + (size,) * self.n, dtype)

    def __call__(self, x, w, grad_output=None, **kwargs):
        if not self.is_grad:
            return self.fn(x, w, **kwargs)
        if grad_output is None:
            grad_output = _plausible_grad_output(self, x, w, kwargs)
        if self.kind.endswith("_input"):
            return self.fn(tuple(x.shape), w, grad_output, **kwargs)
        return self.fn(x, tuple(w.shape), grad_output, **kwargs)


def _plausible_grad_output(fam: Family, x, w, kwargs):
    """A ``grad_output`` such that the argument under test is the only bad one.

    Its shape follows the torch formulas where the arguments make sense, and
    is a dummy otherwise (then another argument is the one being rejected).
    """
    try:
        dtype = x.dtype if fam.kind.endswith("_weight") else w.dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = F32
    except AttributeError:
        dtype = F32
    try:
        shape = _forward_shape(fam, x, w, kwargs)
    except (AttributeError, TypeError, ValueError, ZeroDivisionError):
        shape = (1,)
    return jnp.zeros(shape, dtype)


def _ints(v, n: int) -> tuple[int, ...]:
    """An int or a length-n sequence of ints, as n ints (test-side parsing)."""
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError
        return tuple(_ints(e, 1)[0] for e in v)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError
    return (int(v),) * n


def _forward_shape(fam: Family, x, w, kwargs) -> tuple[int, ...]:
    """Output shape of the forward op by the torch formulas (raises if invalid).

    conv:      O = floor((I + lo + hi - d(K-1) - 1) / s) + 1, C_out = w.shape[0]
    transpose: O = (I-1)s - 2p + d(K-1) + a + 1,           C_out = w.shape[1] * G
    """
    n = w.ndim - 2
    sizes, kernel = x.shape[-n:], w.shape[2:]
    s = _ints(kwargs.get("stride", 1), n)
    d = _ints(kwargs.get("dilation", 1), n)
    g = _ints(kwargs.get("groups", 1), 1)[0]
    padding = kwargs.get("padding", 0)
    if fam.transpose:
        p = _ints(padding, n)
        a = _ints(kwargs.get("output_padding", 0), n)
        out = tuple((i - 1) * si - 2 * pi + di * (k - 1) + ai + 1
                    for i, k, si, pi, ai, di in zip(sizes, kernel, s, p, a, d))
        c_out = w.shape[1] * g
    else:
        if padding == "valid":
            pads = ((0, 0),) * n
        elif padding == "same":
            pads = tuple((0, di * (k - 1)) for k, di in zip(kernel, d))
        elif (isinstance(padding, (tuple, list)) and len(padding) == n
              and all(isinstance(e, (tuple, list)) for e in padding)):
            pads = tuple(_ints(e, 2) for e in padding)
        else:
            pads = tuple((pi, pi) for pi in _ints(padding, n))
        out = tuple((i + lo + hi - di * (k - 1) - 1) // si + 1
                    for i, k, si, (lo, hi), di in zip(sizes, kernel, s, pads, d))
        c_out = w.shape[0]
    if min(out + (c_out,)) < 1:
        raise ValueError
    return tuple(x.shape[:-n - 1]) + (c_out,) + out


def _families(kind: str, fns: dict) -> list[Family]:
    return [Family(name, fn, n, kind) for name, (fn, n) in fns.items()]


def _set(prefix: str, mod, suffix: str = "") -> dict:
    """{name: (fn, n)} for the 1d/2d/3d variants and the generic one (used as 2-D)."""
    out = {}
    for tag, n in (("1d", 1), ("2d", 2), ("3d", 3), ("", 2)):
        name = f"{prefix}{tag}{suffix}"
        out[name] = (getattr(mod, name), n)
    return out


CONV = _families("conv", _set("conv", jaxgrad))
TRANSPOSE = _families("transpose", _set("conv_transpose", jaxgrad))
CONV_INPUT = _families("conv_input", _set("conv", grad, "_input"))
CONV_WEIGHT = _families("conv_weight", _set("conv", grad, "_weight"))
T_INPUT = _families("transpose_input", _set("conv_transpose", grad, "_input"))
T_WEIGHT = _families("transpose_weight", _set("conv_transpose", grad, "_weight"))

FORWARD = CONV + TRANSPOSE
GRADS = CONV_INPUT + CONV_WEIGHT + T_INPUT + T_WEIGHT
CONV_LIKE = CONV + CONV_INPUT + CONV_WEIGHT          # conv arithmetic, string padding
TRANSPOSE_LIKE = TRANSPOSE + T_INPUT + T_WEIGHT
ALL = FORWARD + GRADS
TAKES_INPUT_ARRAY = FORWARD + CONV_WEIGHT + T_WEIGHT  # `input` is an array
TAKES_WEIGHT_ARRAY = FORWARD + CONV_INPUT + T_INPUT   # `weight` is an array
INPUT_GRADS = CONV_INPUT + T_INPUT                    # take `input_size`
WEIGHT_GRADS = CONV_WEIGHT + T_WEIGHT                 # take `weight_size`
ONE_D = [f for f in ALL if "1d" in f.name]            # one function per kind


def _ids(families):
    return [f.name for f in families]


def families(group):
    return pytest.mark.parametrize("fam", group, ids=_ids(group))


# --------------------------------------------------------------------------
# Message checks.


def arg(name: str) -> str:
    """Regex for a backticked argument name."""
    return re.escape(f"`{name}`")


def val(value) -> str:
    """Regex for a value's repr, not glued to a neighbouring word or number."""
    return rf"(?<![\w.]){re.escape(repr(value))}(?![\w.])"


def lit(text: str) -> str:
    return re.escape(text)


def pattern(fn_name: str, *pieces: str) -> str:
    """``fn_name:`` at the start, then every piece somewhere (any order)."""
    ahead = "".join(f"(?=.*{p})" for p in pieces)
    return rf"(?s)^{re.escape(fn_name)}: {ahead}"


def check_error(exc_type, fam: Family, pieces, *args, named=True, **kwargs):
    """Call ``fam(*args, **kwargs)`` and check the error and its message."""
    with pytest.raises(exc_type, match=pattern(fam.name, *pieces)) as info:
        fam(*args, **kwargs)
    check_plain(info, exc_type, fam, named=named)
    return info


def check_plain(info, exc_type, fam: Family, named: bool = True) -> None:
    """Exactly ``exc_type`` (no XLA/JAX subclass), naming only real parameters.

    ``named=False`` is for errors about a relation between several arguments
    (kernel vs padded input), whose messages show all the values instead.
    """
    assert info.type is exc_type, f"{info.type.__name__}: {info.value}"
    assert not isinstance(info.value, jax.errors.JaxRuntimeError)
    message = str(info.value)
    assert "XLA" not in message and "Traceback" not in message
    params = set(inspect.signature(fam.fn).parameters)
    names = set(re.findall(r"`(\w+)`", message))
    assert names or not named, f"no argument named in {message!r}"
    assert names <= params, (
        f"{fam.name} names {sorted(names - params)}, which are not among its "
        f"parameters {sorted(params)}: {message!r}")


def fill(fam: Family, v):
    """A tuple of ``fam.n`` copies of ``v``."""
    return (v,) * fam.n


# --------------------------------------------------------------------------
# The base configuration is valid for every function (so each test below
# changes exactly one thing).


@families(ALL)
def test_base_configuration_is_valid(fam):
    """The unchanged base arguments run and give the torch output shape."""
    x, w = fam.base_input(), fam.base_weight()
    out = fam(x, w)
    if fam.kind in ("conv", "transpose"):
        assert out.shape == _forward_shape(fam, x, w, {})
    elif fam.kind.endswith("_input"):
        assert out.shape == x.shape
    else:
        assert out.shape == w.shape


# --------------------------------------------------------------------------
# Ranks and sizes of the array / shape arguments.


@families(TAKES_INPUT_ARRAY)
@pytest.mark.parametrize("delta", [-2, 1], ids=["spatial-only", "extra-dim"])
def test_input_rank(fam, delta):
    """An input that is neither (C, *spatial) nor (N, C, *spatial)."""
    shape = (2, C_IN) + (SIZE,) * fam.n
    shape = shape[-delta:] if delta < 0 else (1,) * delta + shape
    x = jnp.zeros(shape, F32)
    check_error(ValueError, fam, [arg("input"), val(shape)], x, fam.base_weight())


@families(INPUT_GRADS)
@pytest.mark.parametrize("delta", [-2, 1], ids=["spatial-only", "extra-dim"])
def test_input_size_length(fam, delta):
    """``input_size`` must have n+1 or n+2 entries."""
    shape = (2, C_IN) + (SIZE,) * fam.n
    shape = shape[-delta:] if delta < 0 else (1,) * delta + shape
    x = jnp.zeros(shape, F32)
    check_error(ValueError, fam, [arg("input_size"), val(shape)], x,
                fam.base_weight())


@families(INPUT_GRADS)
@pytest.mark.parametrize("input_size", [7, None, "2x4x7"])
def test_input_size_not_a_shape(fam, input_size):
    """``input_size`` must be a tuple of ints."""
    w = fam.base_weight()
    g = jnp.zeros((2, C_OUT) + (SIZE - 2,) * fam.n, F32)
    with pytest.raises(TypeError, match=pattern(fam.name, arg("input_size"),
                                                val(input_size))) as info:
        fam.fn(input_size, w, g)
    check_plain(info, TypeError, fam)


@families(INPUT_GRADS)
def test_input_size_negative(fam):
    """``input_size`` entries must be non-negative."""
    shape = (2, C_IN) + fill(fam, -SIZE)
    w = fam.base_weight()
    g = jnp.zeros((2, C_OUT) + (SIZE - 2,) * fam.n, F32)
    with pytest.raises(ValueError, match=pattern(fam.name, arg("input_size"),
                                                 val(-SIZE))) as info:
        fam.fn(shape, w, g)
    check_plain(info, ValueError, fam)


def _weight_ranks(fam):
    # The generic functions infer n from the weight, so only ranks < 3 are wrong.
    return (2,) if fam.name in ("conv", "conv_transpose", "conv_input",
                                "conv_transpose_input") else (fam.n + 1, fam.n + 3)


@pytest.mark.parametrize("fam,rank", [(f, r) for f in TAKES_WEIGHT_ARRAY
                                      for r in _weight_ranks(f)],
                         ids=[f"{f.name}-rank{r}" for f in TAKES_WEIGHT_ARRAY
                              for r in _weight_ranks(f)])
def test_weight_rank(fam, rank):
    """A weight without exactly n spatial dims after (C_out, C_in/groups)."""
    shape = ((C_IN, T_OUT_PER_GROUP) if fam.transpose else (C_OUT, C_IN))
    shape = (shape + (KERNEL,) * rank)[:rank]
    w = jnp.zeros(shape, F32)
    check_error(ValueError, fam, [arg("weight"), val(shape)], fam.base_input(), w)


def _weight_size_ranks(fam):
    generic = fam.name in ("conv_weight", "conv_transpose_weight")
    return (2,) if generic else (fam.n + 1, fam.n + 3)


@pytest.mark.parametrize("fam,rank", [(f, r) for f in WEIGHT_GRADS
                                      for r in _weight_size_ranks(f)],
                         ids=[f"{f.name}-len{r}" for f in WEIGHT_GRADS
                              for r in _weight_size_ranks(f)])
def test_weight_size_length(fam, rank):
    """``weight_size`` must be (C_out, C_in/groups, *kernel) with n kernel dims."""
    shape = ((C_IN, T_OUT_PER_GROUP) if fam.transpose else (C_OUT, C_IN))
    shape = (shape + (KERNEL,) * rank)[:rank]
    x = fam.base_input()
    g = jnp.zeros((2, C_OUT) + (SIZE - 2,) * fam.n, F32)
    with pytest.raises(ValueError, match=pattern(fam.name, arg("weight_size"),
                                                 val(shape))) as info:
        fam.fn(x, shape, g)
    check_plain(info, ValueError, fam)


@families([f for f in WEIGHT_GRADS if f.name in ("conv_weight",
                                                  "conv_transpose_weight")])
def test_generic_weight_size_message_is_concise(fam):
    """The generic weight gradients state the rule, not a list of 61 lengths."""
    x = fam.base_input()
    g = jnp.zeros((2, C_OUT, SIZE - 2, SIZE - 2), F32)
    with pytest.raises(ValueError, match=pattern(fam.name, arg("weight_size"),
                                                 val((6, 4)))) as info:
        fam.fn(x, (6, 4), g)
    check_plain(info, ValueError, fam)
    assert len(str(info.value)) < 200, str(info.value)


# --------------------------------------------------------------------------
# Channels and groups.


@families(ALL)
def test_groups_must_divide_input_channels(fam):
    """C_in = 4 is not divisible by groups = 3."""
    check_error(ValueError, fam, [arg("groups"), val(3), val(C_IN)],
                fam.base_input(), fam.base_weight(), groups=3)


@families(CONV_LIKE)
def test_groups_must_divide_output_channels(fam):
    """C_in = 4 splits into 2 groups but C_out = 5 does not."""
    w = jnp.zeros((5, C_IN // 2) + (KERNEL,) * fam.n, F32)
    check_error(ValueError, fam, [arg("groups"), val(2), val(5)],
                fam.base_input(), w, groups=2)


@families(CONV_LIKE)
@pytest.mark.parametrize("groups,per_group", [(1, 5), (1, 2), (2, 1), (2, 4)])
def test_conv_weight_input_channel_mismatch(fam, groups, per_group):
    """weight.shape[1] * groups must equal the input channels (4)."""
    w = jnp.zeros((C_OUT, per_group) + (KERNEL,) * fam.n, F32)
    check_error(ValueError, fam,
                [arg(fam.weight_arg), arg(fam.input_arg), val(per_group),
                 val(C_IN)],
                fam.base_input(), w, groups=groups)


@families(TRANSPOSE_LIKE)
@pytest.mark.parametrize("c_in", [2, 5, 8])
def test_transpose_weight_input_channel_mismatch(fam, c_in):
    """A transposed weight's first dim must equal the input channels (4)."""
    w = jnp.zeros((c_in, T_OUT_PER_GROUP) + (KERNEL,) * fam.n, F32)
    check_error(ValueError, fam,
                [arg(fam.weight_arg), arg(fam.input_arg), val(c_in), val(C_IN)],
                fam.base_input(), w)


@families(ALL)
@pytest.mark.parametrize("groups", [0, -1, -4])
def test_groups_must_be_positive(fam, groups):
    """groups = 0 or negative."""
    check_error(ValueError, fam, [arg("groups"), val(groups)],
                fam.base_input(), fam.base_weight(), groups=groups)


# --------------------------------------------------------------------------
# Kernel extent (convolutions only: a transposed convolution grows its input).


@families(CONV_LIKE)
@pytest.mark.parametrize(
    "kernel,dilation,padding,extent,padded",
    [(8, 1, 0, 8, 7),    # K' = 8 > 7
     (5, 2, 0, 9, 7),    # K' = 2*4+1 = 9 > 7
     (4, 3, 1, 10, 9),   # K' = 3*3+1 = 10 > 7+2 = 9
     (12, 1, 2, 12, 11)],  # K' = 12 > 7+4 = 11
    ids=["kernel", "dilated", "dilated-padded", "padded"])
def test_kernel_larger_than_padded_input(fam, kernel, dilation, padding, extent,
                                         padded):
    """The dilated kernel d(K-1)+1 exceeds the padded input I + 2p."""
    w = fam.base_weight(k=kernel)
    check_error(ValueError, fam,
                [lit("kernel"), val(extent), val(padded), lit("dilation")],
                fam.base_input(), w, dilation=dilation, padding=padding,
                named=False)


@families([f for f in ONE_D if not f.transpose])
def test_kernel_exactly_fitting_is_accepted(fam):
    """K' = 2*2+1 = 5 equals 3 + 2*1 = 5: one output position, no error."""
    x, w = fam.base_input(size=3), fam.base_weight()
    out = fam(x, w, dilation=2, padding=1)
    expected = {"conv": (2, C_OUT) + fill(fam, 1), "conv_input": x.shape,
                "conv_weight": w.shape}[fam.kind]
    assert out.shape == expected


# --------------------------------------------------------------------------
# stride, dilation, padding, output_padding values.


@families(ALL)
@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, "tuple-with-0", "tuple-with-neg"])
def test_stride_dilation_must_be_positive(fam, name, value):
    """stride and dilation are >= 1 in every dim."""
    if value == "tuple-with-0":
        value = fill(fam, 1)[:-1] + (0,)
    elif value == "tuple-with-neg":
        value = (-2,) + fill(fam, 1)[1:]
    check_error(ValueError, fam, [arg(name), val(value)],
                fam.base_input(), fam.base_weight(), **{name: value})


@families(ALL)
@pytest.mark.parametrize("value", [-1, "tuple", "list"])
def test_padding_must_be_non_negative(fam, value):
    """Negative padding as an int or a tuple of ints."""
    if value == "tuple":
        value = fill(fam, 0)[:-1] + (-3,)
    elif value == "list":
        value = [-2] * fam.n
    check_error(ValueError, fam, [arg("padding"), val(tuple(value) if
                                                       isinstance(value, list)
                                                       else value)],
                fam.base_input(), fam.base_weight(), padding=value)


@families(CONV_LIKE)
@pytest.mark.parametrize("where", ["lo", "hi"])
def test_padding_pairs_must_be_non_negative(fam, where):
    """Negative lo or hi in a tuple of (lo, hi) pairs."""
    bad = (-1, 0) if where == "lo" else (0, -2)
    value = ((1, 1),) * (fam.n - 1) + (bad,)
    check_error(ValueError, fam, [arg("padding"), val(value)],
                fam.base_input(), fam.base_weight(), padding=value)


@families(CONV_LIKE)
def test_padding_pairs_must_be_pairs(fam):
    """Each (lo, hi) entry has exactly two numbers."""
    value = ((1, 1),) * (fam.n - 1) + ((1, 2, 3),)
    check_error(ValueError, fam, [arg("padding"), val(value)],
                fam.base_input(), fam.base_weight(), padding=value)


@families(TRANSPOSE_LIKE)
def test_transpose_padding_pairs_are_rejected(fam):
    """conv_transpose has symmetric padding only, as in torch."""
    value = ((1, 0),) * fam.n
    check_error(TypeError, fam, [arg("padding"), val((1, 0))],
                fam.base_input(), fam.base_weight(), padding=value)


def _length_cases(group, names):
    cases = []
    for fam in group:
        for name in names:
            for length in {0, fam.n - 1, fam.n + 1} - {fam.n}:
                cases.append((fam, name, length))
    return cases


_TUPLE_ARGS = ["stride", "dilation", "padding"]
_LENGTH_CASES = (_length_cases(ALL, _TUPLE_ARGS)
                 + _length_cases(TRANSPOSE_LIKE, ["output_padding"]))


@pytest.mark.parametrize("fam,name,length", _LENGTH_CASES,
                         ids=[f"{f.name}-{a}-len{k}" for f, a, k in _LENGTH_CASES])
def test_tuple_argument_of_wrong_length(fam, name, length):
    """A tuple argument needs exactly one entry per spatial dim."""
    value = (1,) * length
    check_error(ValueError, fam, [arg(name), val(value)],
                fam.base_input(), fam.base_weight(), **{name: value})


@families(TRANSPOSE_LIKE)
@pytest.mark.parametrize("output_padding,stride,dilation",
                         [(1, 1, 1), (2, 2, 1), (3, 2, 3), (4, 3, 2), (-1, 2, 1)],
                         ids=["1-s1d1", "2-s2d1", "3-s2d3", "4-s3d2", "negative"])
def test_output_padding_too_large(fam, output_padding, stride, dilation):
    """output_padding must be in [0, max(stride, dilation))."""
    check_error(ValueError, fam, [arg("output_padding"), val(output_padding)],
                fam.base_input(), fam.base_weight(), stride=stride,
                dilation=dilation, output_padding=output_padding)


@families(TRANSPOSE_LIKE)
def test_output_padding_in_one_dim_only(fam):
    """Only the last dim is out of range (stride 2 there): still an error."""
    stride = fill(fam, 3)[:-1] + (2,)
    op = fill(fam, 2)
    check_error(ValueError, fam, [arg("output_padding"), val(op), val(stride)],
                fam.base_input(), fam.base_weight(), stride=stride,
                output_padding=op)


@families([f for f in ONE_D if f.transpose])
@pytest.mark.parametrize("output_padding,stride,dilation",
                         [(1, 2, 1), (2, 1, 3), (2, 3, 3)])
def test_output_padding_just_below_limit_is_accepted(fam, output_padding, stride,
                                                     dilation):
    """output_padding = max(stride, dilation) - 1 is the largest legal value."""
    fam(fam.base_input(size=2), fam.base_weight(), stride=stride,
        dilation=dilation, output_padding=output_padding)


@families(TRANSPOSE_LIKE)
def test_transpose_output_size_not_positive(fam):
    """(7-1)*1 - 2*5 + (3-1) + 1 = -1 output positions."""
    check_error(ValueError, fam, [lit("output size"), val(-1), lit("padding"),
                                  val(5)],
                fam.base_input(), fam.base_weight(), padding=5, named=False)


# --------------------------------------------------------------------------
# String padding and padding modes.


@families(CONV_LIKE)
@pytest.mark.parametrize("padding", ["full", "SAME", "", "circular"])
def test_unknown_padding_string(fam, padding):
    """Only 'valid' and 'same' are padding strings."""
    check_error(ValueError, fam, [arg("padding"), val(padding)],
                fam.base_input(), fam.base_weight(), padding=padding)


@families(CONV_LIKE)
@pytest.mark.parametrize("stride", [2, "last-dim"])
def test_same_padding_with_stride(fam, stride):
    """padding='same' needs stride 1 in every dim, as in torch."""
    if stride == "last-dim":
        stride = fill(fam, 1)[:-1] + (3,)
    shown = fill(fam, stride) if isinstance(stride, int) else stride
    check_error(ValueError, fam, [lit("'same'"), arg("stride"), val(shown)],
                fam.base_input(), fam.base_weight(), padding="same",
                stride=stride)


@families(TRANSPOSE_LIKE)
@pytest.mark.parametrize("padding", ["same", "valid", "full"])
def test_transpose_rejects_string_padding(fam, padding):
    """Transposed convolutions take numeric padding only."""
    check_error(ValueError, fam, [arg("padding"), val(padding)],
                fam.base_input(), fam.base_weight(), padding=padding)


@families(CONV)
@pytest.mark.parametrize("mode", ["zero", "reflection", "Reflect", "wrap", None, ""])
def test_unknown_padding_mode(fam, mode):
    """padding_mode is one of zeros/reflect/replicate/circular."""
    check_error(ValueError, fam, [arg("padding_mode"), val(mode)],
                fam.base_input(), fam.base_weight(), padding=1, padding_mode=mode)


def _border_cases():
    # (mode, padding as a function of n, offending pad). Input size is 7.
    return [
        ("reflect", lambda n: 7, 7),                       # needs pad <= 6
        ("reflect", lambda n: 9, 9),
        ("reflect", lambda n: ((0, 0),) * (n - 1) + ((0, 7),), 7),
        ("reflect", lambda n: ((7, 1),) + ((1, 1),) * (n - 1), 7),
        ("circular", lambda n: 8, 8),                      # needs pad <= 7
        ("circular", lambda n: (1,) * (n - 1) + (8,), 8),
        ("circular", lambda n: ((8, 0),) + ((0, 0),) * (n - 1), 8),
    ]


@families(CONV)
@pytest.mark.parametrize("mode,make_padding,bad", _border_cases(),
                         ids=[f"{m}-{i}" for i, (m, _, _) in
                              enumerate(_border_cases())])
def test_border_padding_larger_than_input(fam, mode, make_padding, bad):
    """reflect needs pad < size, circular pad <= size (torch's F.pad rules)."""
    check_error(ValueError, fam, [val(mode), arg("padding"), val(bad), val(SIZE)],
                fam.base_input(), fam.base_weight(), padding=make_padding(fam.n),
                padding_mode=mode)


@families(CONV[:2])
@pytest.mark.parametrize("mode,pad", [("reflect", 6), ("circular", 7),
                                      ("replicate", 12)])
def test_border_padding_at_limit_is_accepted(fam, mode, pad):
    """The largest legal pads (6 for reflect, 7 for circular; replicate: any)."""
    out = fam(fam.base_input(), fam.base_weight(), padding=pad, padding_mode=mode)
    assert out.shape[2:] == fill(fam, SIZE + 2 * pad - KERNEL + 1)


# --------------------------------------------------------------------------
# dtypes.


_NON_FLOAT = [jnp.int32, jnp.int8, jnp.uint8, jnp.bool_]
_INTEGER = [jnp.int32, jnp.int8, jnp.uint8]


@families(CONV_WEIGHT + T_WEIGHT)
@pytest.mark.parametrize("dtype", _NON_FLOAT, ids=lambda d: np.dtype(d).name)
def test_non_float_input(fam, dtype):
    """The gradient functions refuse integer and bool inputs, listing the
    dtypes taken (the complex ones too, as torch's convolutions take them)."""
    x = fam.base_input(dtype=dtype)
    check_error(TypeError, fam, [arg("input"), lit(np.dtype(dtype).name),
                                 lit("floating or complex dtype"), lit("complex128")],
                x, fam.base_weight())


@families(FORWARD)
def test_bool_input(fam):
    """The convolutions refuse bool inputs (as torch's), listing the dtypes
    they take: floating, complex and integer."""
    x = fam.base_input(dtype=jnp.bool_)
    check_error(TypeError, fam, [arg("input"), lit("bool"),
                                 lit("floating, complex or integer dtype"), lit("int64")],
                x, fam.base_weight())


@families(FORWARD)
@pytest.mark.parametrize("dtype", _INTEGER, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_integer_with_float_forward(fam, dtype, which):
    """The convolutions take integer tensors (forward only, as torch's int64
    ones), but not mixed with floating ones: one dtype for all three."""
    c_out = C_OUT if fam.kind == "conv" else T_OUT_PER_GROUP
    dt = {k: (dtype if k == which else F32) for k in ("input", "weight", "bias")}
    check_error(TypeError, fam,
                [lit("must share one dtype"), arg(which), lit(np.dtype(dtype).name),
                 lit("float32")],
                fam.base_input(dtype=dt["input"]), fam.base_weight(dtype=dt["weight"]),
                bias=jnp.zeros((c_out,), dt["bias"]))


@families(CONV_INPUT + T_INPUT)
@pytest.mark.parametrize("dtype", _NON_FLOAT, ids=lambda d: np.dtype(d).name)
def test_non_float_weight(fam, dtype):
    """The gradient functions refuse integer and bool weights."""
    w = fam.base_weight(dtype=dtype)
    check_error(TypeError, fam, [arg("weight"), lit(np.dtype(dtype).name)],
                fam.base_input(), w)


@families(GRADS)
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_non_float_grad_output(fam, dtype):
    """Integer and bool cotangents are TypeErrors."""
    x, w = fam.base_input(), fam.base_weight()
    g = jnp.zeros(_forward_shape(fam, x, w, {}), dtype)
    check_error(TypeError, fam, [arg("grad_output"), lit(np.dtype(dtype).name)],
                x, w, grad_output=g)


@families(FORWARD)
def test_bool_bias(fam):
    """A bool bias is a TypeError."""
    c_out = C_OUT if fam.kind == "conv" else T_OUT_PER_GROUP
    check_error(TypeError, fam, [arg("bias"), lit("bool")],
                fam.base_input(), fam.base_weight(), bias=jnp.zeros((c_out,), jnp.bool_))


@families(FORWARD)
@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_complex_with_real_forward(fam, which):
    """A complex argument with real ones is a TypeError (torch refuses the mix
    too): one dtype for input, weight and bias."""
    c_out = C_OUT if fam.kind == "conv" else T_OUT_PER_GROUP
    dt = {k: (jnp.complex64 if k == which else F32) for k in ("input", "weight", "bias")}
    check_error(TypeError, fam,
                [lit("must share one dtype"), arg(which), lit("complex64"), lit("float32")],
                fam.base_input(dtype=dt["input"]),
                fam.base_weight(dtype=dt["weight"]),
                bias=jnp.zeros((c_out,), dt["bias"]))


@families(FORWARD)
@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_dtype_mismatch_forward(fam, which):
    """input, weight and bias must share one dtype."""
    c_out = C_OUT if fam.kind == "conv" else T_OUT_PER_GROUP
    dt = {k: (F64 if k == which else F32) for k in ("input", "weight", "bias")}
    check_error(TypeError, fam,
                [arg(which), lit("float64"), lit("float32")],
                fam.base_input(dtype=dt["input"]),
                fam.base_weight(dtype=dt["weight"]),
                bias=jnp.zeros((c_out,), dt["bias"]))


@families(FORWARD)
def test_dtype_mismatch_half_precisions(fam):
    """float16 and bfloat16 are different dtypes too."""
    check_error(TypeError, fam, [arg("input"), arg("weight"), lit("float16"),
                                 lit("bfloat16")],
                fam.base_input(dtype=jnp.float16),
                fam.base_weight(dtype=jnp.bfloat16))


@families(GRADS)
def test_dtype_mismatch_grads(fam):
    """The array argument and grad_output must share one dtype."""
    x, w = fam.base_input(), fam.base_weight()
    g = jnp.zeros(_forward_shape(fam, x, w, {}), F64)
    array_arg = "weight" if fam.kind.endswith("_input") else "input"
    check_error(TypeError, fam,
                [arg(array_arg), arg("grad_output"), lit("float32"),
                 lit("float64")],
                x, w, grad_output=g)


@families(TAKES_INPUT_ARRAY)
@pytest.mark.parametrize("value", [None, "x"], ids=["None", "str"])
def test_input_not_an_array(fam, value):
    """A non-array input is a TypeError naming `input`."""
    check_error(TypeError, fam, [arg("input")], value, fam.base_weight())


@families(TAKES_INPUT_ARRAY)
def test_python_float_input_is_read_as_a_0d_array(fam):
    """A Python float is an array-like: it becomes a 0-d array, whose rank is wrong."""
    check_error(ValueError, fam, [arg("input"), lit("got shape ()")], 1.0,
                fam.base_weight())


@families(FORWARD)
@pytest.mark.parametrize("value", ["b", [None] * C_OUT], ids=["str", "list-of-None"])
def test_bias_not_an_array(fam, value):
    """A bias that is not an array (nor numbers) is a TypeError naming `bias`."""
    check_error(TypeError, fam, [arg("bias")], fam.base_input(), fam.base_weight(),
                bias=value)


@families(FORWARD)
@pytest.mark.parametrize("value", [[0.0] * (C_OUT + 1), 0.5], ids=["list", "float"])
def test_python_bias_is_read_as_an_array_of_the_input_dtype(fam, value):
    """A list or float bias becomes an array of the input's dtype; its shape is checked."""
    check_error(ValueError, fam, [arg("bias"), lit("must have shape")],
                fam.base_input(), fam.base_weight(), bias=value)


@families(GRADS)
@pytest.mark.parametrize("value", ["g", None], ids=["str", "None"])
def test_grad_output_not_an_array(fam, value):
    """A grad_output that is not an array is a TypeError naming `grad_output`."""
    x, w = fam.base_input(), fam.base_weight()
    if fam.kind.endswith("_input"):
        call = lambda: fam.fn(tuple(x.shape), w, value)   # noqa: E731
    else:
        call = lambda: fam.fn(x, tuple(w.shape), value)   # noqa: E731
    with pytest.raises(TypeError, match=pattern(fam.name,
                                                arg("grad_output"))) as info:
        call()
    check_plain(info, TypeError, fam)


# --------------------------------------------------------------------------
# bias shape.


@families(FORWARD)
@pytest.mark.parametrize("shape", ["fewer", "more", "2-D", "scalar"])
def test_bias_wrong_shape(fam, shape):
    """bias must be (C_out,)."""
    c_out = C_OUT if fam.kind == "conv" else T_OUT_PER_GROUP
    shape = {"fewer": (c_out - 1,), "more": (c_out + 2,), "2-D": (1, c_out),
             "scalar": ()}[shape]
    check_error(ValueError, fam, [arg("bias"), val((c_out,)), val(shape)],
                fam.base_input(), fam.base_weight(), bias=jnp.zeros(shape, F32))


@families(TRANSPOSE)
def test_transpose_bias_counts_groups(fam):
    """With groups=2 a transposed conv has 2 * 3 = 6 outputs, not 3."""
    check_error(ValueError, fam, [arg("bias"), val((6,)), val((3,))],
                fam.base_input(), fam.base_weight(), groups=2,
                bias=jnp.zeros((3,), F32))


# --------------------------------------------------------------------------
# Non-int scalars.


def _int_args(fam):
    names = ["stride", "dilation", "padding", "groups"]
    return names + (["output_padding"] if fam.transpose else [])


_BOOL_CASES = [(f, name, v) for f in ALL for name in _int_args(f)
               for v in (True, False, "tuple")
               if not (name == "groups" and v == "tuple")]


@pytest.mark.parametrize("fam,name,value", _BOOL_CASES,
                         ids=[f"{f.name}-{n}-{v}" for f, n, v in _BOOL_CASES])
def test_bool_is_not_an_int(fam, name, value):
    """stride=True (or inside a tuple) is a TypeError, not a silent 1."""
    if value == "tuple":
        value = fill(fam, 1)[:-1] + (True,)
    check_error(TypeError, fam, [arg(name), lit("bool")],
                fam.base_input(), fam.base_weight(), **{name: value})


@families(ALL)
@pytest.mark.parametrize("name", ["stride", "dilation", "padding", "groups"])
@pytest.mark.parametrize("value", [1.0, 2.5], ids=["1.0", "2.5"])
def test_float_is_not_an_int(fam, name, value):
    """stride=1.0 is a TypeError (torch also rejects floats)."""
    check_error(TypeError, fam, [arg(name), lit("float"), val(value)],
                fam.base_input(), fam.base_weight(), **{name: value})


@families(ONE_D)
def test_numpy_ints_are_accepted(fam):
    """numpy integers are ints (operator.index), not errors."""
    i = np.int64
    fam(fam.base_input(), fam.base_weight(), stride=i(1), padding=(i(1),) * fam.n,
        dilation=i(1), groups=i(1))


# --------------------------------------------------------------------------
# grad_output shape.


def _grad_output_shapes(fam):
    """(x batched?, expected, bad) grad_output shapes for the base config."""
    # conv:      out = 7 - 3 + 1 = 5,            C_out = 6
    # transpose: out = (7 - 1) + (3 - 1) + 1 = 9, C_out = 3 * groups = 3
    c, o = (T_OUT_PER_GROUP, 9) if fam.transpose else (C_OUT, 5)
    good = (2, c) + (o,) * fam.n
    return [
        ("batched", good, (2, c) + (o,) * (fam.n - 1) + (o + 1,)),   # spatial
        ("batched", good, (2, c + 1) + (o,) * fam.n),                # channels
        ("batched", good, (3, c) + (o,) * fam.n),                    # batch
        ("batched", good, good[1:]),                                 # unbatched
        ("unbatched", good[1:], good),                               # batched
        ("unbatched", good[1:], (c,) + (o,) * fam.n + (1,)),          # rank
    ]


_GO_CASES = [(f, *c) for f in GRADS for c in _grad_output_shapes(f)]


@pytest.mark.parametrize("fam,mode,expected,bad", _GO_CASES,
                         ids=[f"{f.name}-{m}-{b}" for f, m, _, b in _GO_CASES])
def test_grad_output_wrong_shape(fam, mode, expected, bad):
    """grad_output must have the forward op's output shape."""
    x = fam.base_input()
    if mode == "unbatched":
        x = x[0]
    g = jnp.zeros(bad, F32)
    check_error(ValueError, fam, [arg("grad_output"), val(expected), val(bad)],
                x, fam.base_weight(), grad_output=g)


# --------------------------------------------------------------------------
# Trace time: the same errors under jax.jit and jax.eval_shape.


def _jit_cases():
    """(family, kwargs, exception, pieces, arrays) with arrays built lazily."""
    c2, t2 = CONV[1], TRANSPOSE[1]
    ci2, cw2, ti2, tw2 = CONV_INPUT[1], CONV_WEIGHT[1], T_INPUT[1], T_WEIGHT[1]
    return [
        ("groups", c2, dict(groups=3), ValueError, [arg("groups"), val(3)], {}),
        ("stride", t2, dict(stride=0), ValueError, [arg("stride"), val(0)], {}),
        ("same-strided", ci2, dict(padding="same", stride=2), ValueError,
         [lit("'same'"), arg("stride")], {}),
        ("kernel", cw2, dict(padding=0), ValueError, [lit("kernel"), val(9)],
         dict(k=9)),
        ("output_padding", ti2, dict(stride=2, output_padding=2), ValueError,
         [arg("output_padding"), val(2)], {}),
        ("reflect", c2, dict(padding=7, padding_mode="reflect"), ValueError,
         [val("reflect"), arg("padding"), val(7)], {}),
        ("dtype", c2, {}, TypeError, [arg("weight"), lit("float64")],
         dict(wdtype=F64)),
        ("int-input", tw2, {}, TypeError, [arg("input"), lit("int32")],
         dict(xdtype=jnp.int32)),
        ("bool-stride", c2, dict(stride=True), TypeError,
         [arg("stride"), lit("bool")], {}),
    ]


_JIT = _jit_cases()


def _jit_arrays(fam, extra):
    x = fam.base_input(dtype=extra.get("xdtype", F32))
    w = fam.base_weight(dtype=extra.get("wdtype", F32), k=extra.get("k", KERNEL))
    return x, w


@pytest.mark.parametrize("case", _JIT, ids=[c[0] for c in _JIT])
@pytest.mark.parametrize("transform", ["jit", "eval_shape", "jit-lower"])
def test_errors_are_raised_at_trace_time(case, transform):
    """Under jit the error comes from tracing, as the same plain exception."""
    _, fam, kwargs, exc, pieces, extra = case
    x, w = _jit_arrays(fam, extra)
    # Arrays are traced; the configuration is static (closed over).
    f = lambda x, w: fam(x, w, **kwargs)   # noqa: E731
    with pytest.raises(exc, match=pattern(fam.name, *pieces)) as info:
        if transform == "jit":
            jax.jit(f)(x, w)
        elif transform == "eval_shape":
            jax.eval_shape(f, x, w)
        else:
            jax.jit(f).lower(x, w)
    check_plain(info, exc, fam, named=case[0] != "kernel")


@families([CONV[1], TRANSPOSE[1]])
def test_errors_are_raised_under_grad(fam):
    """Differentiating a bad call raises the same error while tracing."""
    x, w = fam.base_input(), fam.base_weight()
    loss = lambda x, w: fam(x, w, groups=3).sum()   # noqa: E731
    with pytest.raises(ValueError, match=pattern(fam.name, arg("groups"),
                                                 val(3))) as info:
        jax.grad(loss, argnums=(0, 1))(x, w)
    check_plain(info, ValueError, fam)


@families([CONV_INPUT[1], T_WEIGHT[1]])
def test_grad_output_shape_checked_under_jit(fam):
    """A wrong grad_output shape is a trace-time ValueError under jit."""
    x, w = fam.base_input(), fam.base_weight()
    good = _forward_shape(fam, x, w, {})
    bad = good[:-1] + (good[-1] + 1,)
    g = jnp.zeros(bad, F32)
    f = jax.jit(lambda x, w, g: fam(x, w, grad_output=g))
    with pytest.raises(ValueError, match=pattern(fam.name, arg("grad_output"),
                                                 val(good), val(bad))) as info:
        f(x, w, g)
    check_plain(info, ValueError, fam)
