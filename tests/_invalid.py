"""Hypothesis strategies drawing INVALID calls of every public jaxgrad op.

Each strategy draws a valid base call and then one mutation that breaks
exactly one argument (or one relation between two arguments), so the
argument an error must name is known. A drawn :class:`Call` carries

  name    the public function name every error message must start with
  kwargs  all arguments, by name
  names   the backticked argument names of which the message must show one
  shows   text (the repr of the offending value) the message must contain

The valid bases are drawn by the same strategies with ``mutate=False``; their
``expected`` output shape comes from torch's formulas written out here, not
from jaxgrad. Notation per spatial dim: I input size, K kernel, s stride,
d dilation, K' = d(K-1)+1, (lo, hi) padding, a output_padding, O output size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import jaxgrad
from jaxgrad import grad

F16, BF16, F32, F64 = jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64
FLOATS = (F32, F64, F16, BF16)
NON_FLOAT = (jnp.int32, jnp.int8, jnp.uint8, jnp.bool_, jnp.complex64)
KEY = jax.random.key(0)   # a typed PRNG key: an array whose dtype numpy cannot read


@dataclasses.dataclass
class Call:
    """One call of a public op, valid or with one mutation."""

    name: str
    fn: Callable
    kwargs: dict
    names: frozenset = frozenset()
    shows: str | None = None
    expected: tuple | None = None
    mutation: str = "none"
    through_grad: bool = False

    def __repr__(self):
        args = ", ".join(f"{k}={_brief(v)}" for k, v in self.kwargs.items())
        return (f"Call({self.name}({args}); mutation={self.mutation!r}, "
                f"names={sorted(self.names)}, shows={self.shows!r})")


def _brief(value) -> str:
    if isinstance(value, (jax.Array, np.ndarray)):
        return f"<{type(value).__name__} {tuple(value.shape)} {value.dtype}>"
    return repr(value)


class FakeTensor:
    """An array-like whose dtype numpy cannot read (like a torch tensor)."""

    dtype = "torch.float32"
    shape = (2, 3)
    ndim = 2

    def __repr__(self):
        return "FakeTensor()"


def zeros(shape, dtype=F32):
    """A JAX array of zeros; via NumPy, since ``jnp.zeros`` compiles per shape."""
    return jax.device_put(np.zeros(shape, dtype))


# --------------------------------------------------------------------------
# Generic bad values. Each helper returns (value, shows).


NOT_INTS = (1.5, 2.0, "2", True, False, 1j, b"\x02", {}, np.float32(1.0),
            np.array([1, 1]), FakeTensor())
NOT_BOOLS = (1, 0, None, "True", 1.0, np.array(True), (True,))
NOT_STRINGS = (None, 0, 1.5, True, b"mean", ("mean",), np.array(["mean", "sum"]))
HUGE_INTS = (2**63, 10**30, -(2**63) - 1)   # beyond int64, which XLA takes


def bad_int_arg(draw, valid: tuple, minimum: int, *, none_ok=False, empty_ok=False,
                tuple_ok=True):
    """A wrong value for an int-or-per-dim-ints argument whose good tuple is ``valid``.

    Below ``minimum``, not an int (bool, float, str, bytes, array, ...), beyond
    int64, or (with ``tuple_ok``) one such entry in a tuple, or a tuple of the
    wrong length. ``none_ok``/``empty_ok``: None / an empty tuple are valid.
    """
    kinds = ["small", "not_int", "huge"]
    kinds += ["entry", "length"] if tuple_ok else []
    kind = draw(st.sampled_from(kinds))
    if kind == "length":
        n = len(valid)
        lengths = [k for k in (0, n - 1, n + 1) if k != n and not (k == 0 and empty_ok)]
        value = valid[:1] * draw(st.sampled_from(lengths))
        return (list(value) if draw(st.booleans()) else value), repr(value)
    in_tuple = kind == "entry"
    if in_tuple:
        kind = draw(st.sampled_from(["small", "not_int", "huge"]))
    bad = draw({"small": st.integers(minimum - 50, minimum - 1),
                "huge": st.sampled_from(HUGE_INTS),
                "not_int": st.sampled_from(NOT_INTS + (() if none_ok else (None,)))}[kind])
    shows = None if isinstance(bad, FakeTensor) else repr(bad)
    if not in_tuple:
        return bad, shows
    i = draw(st.integers(0, len(valid) - 1))
    return valid[:i] + (bad,) + valid[i + 1:], shows


def not_an_array(draw, shape, *, none_ok=False, refused=NON_FLOAT):
    """Something that is not a float array: a Python value that is not a number
    (numbers and lists of numbers are array-likes, read as float arrays), a list
    of non-numbers, or a bad dtype: one of ``refused``, the non-float dtypes the
    op does not take (by default all of them; integer ones are taken where
    torch's op computes them, e.g. max/avg pooling, relu, tanh)."""
    options = ["python", "list", "fake", "key"] + (["dtype"] if refused else [])
    kind = draw(st.sampled_from(options))
    if kind == "python":
        values = ["x", True] + ([] if none_ok else [None])
        return draw(st.sampled_from(values))
    if kind == "list":
        return ["x"] * max(shape[0] if shape else 1, 1)   # never [], a float array
    if kind == "dtype":
        return zeros(shape, draw(st.sampled_from(refused)))
    if kind == "fake":
        return FakeTensor()
    return KEY


def other_float(draw, dtype):
    return draw(st.sampled_from([d for d in FLOATS if d != dtype]))


def bad_string(draw, valid: tuple[str, ...]):
    """A wrong string, or a non-string, for a string-valued option."""
    if draw(st.booleans()):
        bad = draw(st.sampled_from(NOT_STRINGS))
        return bad, None if isinstance(bad, np.ndarray) else repr(bad)
    word = draw(st.sampled_from(valid))
    bad = draw(st.sampled_from([word.upper(), word + " ", word[:-1], "", "full",
                                word.capitalize() + "s"]))
    return bad, repr(bad)


def mutation(names, shows=None, **updates):
    """(updates, names, shows) as the mutation functions return them."""
    return updates, frozenset([names] if isinstance(names, str) else names), shows


def spell(draw, values: tuple):
    """An int when all dims agree (sometimes), else the tuple, sometimes a list."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return list(values) if draw(st.integers(0, 3)) == 0 else tuple(values)


def per_dim(draw, n: int, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(draw(st.integers(lo, hi)) for _ in range(n))


def apply(draw, base: Call, mutations: dict) -> Call:
    """``base`` with one mutation drawn from ``mutations`` (name -> fn(draw))."""
    label = draw(st.sampled_from(sorted(mutations)))
    updates, names, shows = mutations[label](draw)
    return dataclasses.replace(base, kwargs={**base.kwargs, **updates}, names=names,
                               shows=shows, expected=None, mutation=label)


# --------------------------------------------------------------------------
# The convolution family: conv*, conv_transpose* and the 16 jaxgrad.grad.*.
#
# kind: conv, transpose, conv_input, conv_weight, transpose_input,
# transpose_weight. The *_input gradients take ``input_size`` (a shape), the
# *_weight gradients ``weight_size``; both take a ``grad_output``.


def _conv_fns(kind: str) -> list[tuple[str, Callable, int | None]]:
    prefix = "conv_transpose" if kind.startswith("transpose") else "conv"
    suffix = "" if kind in ("conv", "transpose") else "_" + kind.split("_")[-1]
    module = jaxgrad if suffix == "" else grad
    return [(f"{prefix}{tag}{suffix}", getattr(module, f"{prefix}{tag}{suffix}"), n)
            for tag, n in (("", None), ("1d", 1), ("2d", 2), ("3d", 3))]


CONV_KINDS = ("conv", "transpose", "conv_input", "conv_weight", "transpose_input",
              "transpose_weight")
CONV_FNS = {kind: _conv_fns(kind) for kind in CONV_KINDS}


@dataclasses.dataclass(frozen=True)
class ConvBase:
    """A valid convolution configuration (torch's rules), per spatial dim."""

    kind: str
    n: int
    batch: int | None          # None: unbatched
    groups: int
    cin_pg: int                # input channels per group
    cout_pg: int               # output channels per group
    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    output_padding: tuple[int, ...]
    padding_arg: object
    padding_mode: str
    dtype: object

    @property
    def transpose(self) -> bool:
        return self.kind.startswith("transpose")

    @property
    def c_in(self) -> int:
        return self.groups * self.cin_pg

    @property
    def c_out(self) -> int:
        return self.groups * self.cout_pg

    @property
    def lead(self) -> tuple[int, ...]:
        return () if self.batch is None else (self.batch,)

    def input_shape(self) -> tuple[int, ...]:
        return self.lead + (self.c_in,) + self.sizes

    def weight_shape(self) -> tuple[int, ...]:
        first = (self.c_in, self.cout_pg) if self.transpose else (self.c_out, self.cin_pg)
        return first + self.kernel

    def output_shape(self) -> tuple[int, ...]:
        """conv: O = (I + lo + hi - K') // s + 1; transposed: (I-1)s - 2p + d(K-1) + a + 1."""
        rows = zip(self.sizes, self.kernel, self.stride, self.dilation, self.pads,
                   self.output_padding)
        if self.transpose:
            out = tuple((i - 1) * s - 2 * lo + d * (k - 1) + a + 1
                        for i, k, s, d, (lo, _), a in rows)
        else:
            out = tuple((i + lo + hi - d * (k - 1) - 1) // s + 1
                        for i, k, s, d, (lo, hi), _ in rows)
        return self.lead + (self.c_out,) + out


def _conv_padding(draw, n, kernel, stride, dilation):
    """(pads, padding argument) for a convolution, in one of torch's spellings."""
    styles = ["int", "tuple", "pairs", "valid"] + (["same"] if set(stride) == {1} else [])
    style = draw(st.sampled_from(styles))
    if style == "same":   # total d(K-1), the odd extra on the high side
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals), "same"
    if style == "valid":
        return ((0, 0),) * n, "valid"
    if style == "pairs":
        pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n))
        return pads, pads
    ps = per_dim(draw, n, 0, 2)
    return tuple((p, p) for p in ps), spell(draw, ps)


@st.composite
def conv_bases(draw, kind: str, n: int | None) -> ConvBase:
    n = n or draw(st.integers(1, 3))
    transpose = kind.startswith("transpose")
    kernel, stride, dilation = (per_dim(draw, n, 1, 3), per_dim(draw, n, 1, 3),
                                per_dim(draw, n, 1, 2))
    mode, output_padding = "zeros", (0,) * n
    if transpose:
        ps = tuple(draw(st.integers(0, d * (k - 1) // 2)) for k, d in zip(kernel, dilation))
        pads, padding_arg = tuple((p, p) for p in ps), spell(draw, ps)
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                               for s, d in zip(stride, dilation))
        sizes = per_dim(draw, n, 1, 4)
    else:
        pads, padding_arg = _conv_padding(draw, n, kernel, stride, dilation)
        if kind == "conv":
            mode = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular")))
        sizes = tuple(_min_conv_size(k, d, p, mode) + draw(st.integers(0, 2))
                      for k, d, p in zip(kernel, dilation, pads))
    return ConvBase(kind, n, draw(st.sampled_from([None, 0, 1, 2])),
                    draw(st.integers(1, 3)), draw(st.integers(1, 2)),
                    draw(st.integers(1, 2)), sizes, kernel, stride, dilation, pads,
                    output_padding, padding_arg, mode, draw(st.sampled_from(FLOATS)))


def _min_conv_size(k: int, d: int, pad: tuple[int, int], mode: str) -> int:
    """The smallest I the kernel fits in; reflect needs pad < I, circular pad <= I."""
    need = max(1, d * (k - 1) + 1 - sum(pad))
    if mode == "reflect":
        need = max(need, max(pad) + 1)
    if mode == "circular":
        need = max(need, max(pad))
    return need


def conv_kwargs(draw, base: ConvBase) -> dict:
    """The base configuration as keyword arguments of its kind."""
    x, w = zeros(base.input_shape(), base.dtype), zeros(base.weight_shape(), base.dtype)
    kwargs = dict(stride=spell(draw, base.stride), padding=base.padding_arg,
                  dilation=spell(draw, base.dilation), groups=base.groups)
    if base.transpose:
        kwargs["output_padding"] = spell(draw, base.output_padding)
    g = zeros(base.output_shape(), base.dtype)
    if base.kind in ("conv", "transpose"):
        bias = zeros((base.c_out,), base.dtype) if draw(st.booleans()) else None
        kwargs.update(input=x, weight=w, bias=bias)
        if base.kind == "conv":
            kwargs["padding_mode"] = base.padding_mode
    elif base.kind.endswith("_input"):
        kwargs.update(input_size=base.input_shape(), weight=w, grad_output=g)
    else:
        kwargs.update(input=x, weight_size=base.weight_shape(), grad_output=g)
    return kwargs


def _conv_expected(base: ConvBase) -> tuple[int, ...]:
    if base.kind in ("conv", "transpose"):
        return base.output_shape()
    return base.input_shape() if base.kind.endswith("_input") else base.weight_shape()


@st.composite
def conv_calls(draw, kind: str, mutate: bool = True) -> Call:
    name, fn, n = draw(st.sampled_from(CONV_FNS[kind]))
    base = draw(conv_bases(kind, n))
    call = Call(name, fn, conv_kwargs(draw, base), expected=_conv_expected(base))
    if not mutate:
        return call
    return apply(draw, call, conv_mutations(base, call.kwargs, generic=n is None))


def conv_mutations(base: ConvBase, kwargs: dict, *, generic: bool) -> dict:
    """Mutation name -> fn(draw) -> (updates, names, shows), for one base."""
    in_arg = "input_size" if base.kind.endswith("_input") else "input"
    w_arg = "weight_size" if base.kind.endswith("_weight") else "weight"
    muts = {}
    for arg in ("input", "weight", "bias", "grad_output"):
        if arg in kwargs:
            muts.update(_array_mutations(base, arg, generic))
    for arg in ("input_size", "weight_size"):
        if arg in kwargs:
            muts.update(_shape_mutations(base, arg, generic))
    muts.update(_conv_relations(base, in_arg, w_arg))
    muts.update(_conv_config_mutations(base, kwargs))
    return muts


def _array_shape(base: ConvBase, arg: str) -> tuple[int, ...]:
    return {"input": base.input_shape(), "weight": base.weight_shape(),
            "bias": (base.c_out,), "grad_output": base.output_shape()}[arg]


def _array_mutations(base: ConvBase, arg: str, generic: bool) -> dict:
    shape = _array_shape(base, arg)
    muts = {
        f"{arg}:not_array": lambda draw: mutation(arg, None, **{
            arg: not_an_array(draw, shape, none_ok=arg == "bias")}),
        f"{arg}:dtype": lambda draw: mutation(arg, None, **{
            arg: zeros(shape, other_float(draw, base.dtype))}),
    }
    if arg == "input":
        muts["input:rank"] = lambda draw: mutation("input", None, input=zeros(
            draw(st.sampled_from([shape[-base.n:], (1, 1) + shape, ()])), base.dtype))
        muts["input:empty_spatial"] = lambda draw: mutation("input", None, input=zeros(
            _with_zero(draw, shape, len(shape) - base.n, len(shape)), base.dtype))
    if arg == "weight":
        ranks = [1, 2] if generic else [base.n + 1, base.n + 3, 2]
        muts["weight:rank"] = lambda draw: mutation("weight", None, weight=zeros(
            _resized(shape, draw(st.sampled_from(ranks))), base.dtype))
        muts["weight:empty"] = lambda draw: mutation("weight", None, weight=zeros(
            _empty_weight(draw, base), base.dtype))
    if arg == "bias":
        c = base.c_out
        muts["bias:shape"] = lambda draw: mutation("bias", None, bias=zeros(
            draw(st.sampled_from([(c + 1,), (c - 1,), (), (1, c), (c, 1)])), base.dtype))
    if arg == "grad_output":
        muts["grad_output:shape"] = lambda draw: mutation(
            "grad_output", None, grad_output=zeros(_off_shape(draw, shape), base.dtype))
    return muts


def _with_zero(draw, shape, start: int, stop: int) -> tuple[int, ...]:
    """``shape`` with one of the dims in [start, stop) set to 0."""
    return _zero_at(shape, draw(st.integers(start, stop - 1)))


def _resized(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return (shape + (3,) * rank)[:rank]


def _empty_weight(draw, base: ConvBase) -> tuple[int, ...]:
    """torch wants C_out >= 1 (and C_in, C_out/groups >= 1 when transposed), K >= 1."""
    lead = [0, 1] if base.transpose else [0]
    dims = lead + list(range(2, 2 + base.n))
    return _zero_at(base.weight_shape(), draw(st.sampled_from(dims)))


def _zero_at(shape: tuple[int, ...], i: int) -> tuple[int, ...]:
    return shape[:i] + (0,) + shape[i + 1:]


def _off_shape(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that differs from ``shape``: one dim off by one, or one dim more/less."""
    kind = draw(st.sampled_from(["dim", "drop", "add"] if shape else ["add"]))
    if kind == "drop":
        return shape[1:]
    if kind == "add":
        return (1,) + shape
    i = draw(st.integers(0, len(shape) - 1))
    size = shape[i] + draw(st.sampled_from([-1, 1] if shape[i] else [1]))
    return shape[:i] + (size,) + shape[i + 1:]


def _shape_mutations(base: ConvBase, arg: str, generic: bool) -> dict:
    shape = base.input_shape() if arg == "input_size" else base.weight_shape()
    if arg == "input_size":
        lengths = [base.n, base.n + 3, 1]
    else:
        lengths = [1, 2] if generic else [base.n + 1, base.n + 3, 2]

    def not_shape(draw):
        bad = draw(st.sampled_from([7, None, "2x4x7", 1.5, bytes(shape), {},
                                    np.array(shape)]))
        return mutation(arg, None if isinstance(bad, np.ndarray) else repr(bad),
                        **{arg: bad})

    def entry(draw):
        bad = draw(st.sampled_from([-1, -7, True, 2.0, "3", None, 2**63]))
        i = draw(st.integers(0, len(shape) - 1))
        return mutation(arg, repr(bad), **{arg: shape[:i] + (bad,) + shape[i + 1:]})

    def empty(draw):
        if arg == "input_size":
            return mutation(arg, None, input_size=_with_zero(
                draw, shape, len(shape) - base.n, len(shape)))
        return mutation(arg, None, weight_size=_empty_weight(draw, base))

    return {f"{arg}:not_shape": not_shape, f"{arg}:entry": entry,
            f"{arg}:empty": empty,
            f"{arg}:length": lambda draw: mutation(arg, None, **{
                arg: _resized(shape, draw(st.sampled_from(lengths)))})}


def _conv_relations(base: ConvBase, in_arg: str, w_arg: str) -> dict:
    """Channel counts, groups and kernel extent that do not fit together."""
    involved = frozenset([in_arg, w_arg, "groups"])

    def channels(draw):
        c_in = base.c_in + draw(st.sampled_from([d for d in (-2, -1, 1, 2, 3)
                                                 if base.c_in + d >= 0]))
        shape = base.lead + (c_in,) + base.sizes
        value = shape if in_arg == "input_size" else zeros(shape, base.dtype)
        return mutation(involved, None, **{in_arg: value})

    def groups(draw):
        if base.transpose:  # any divisor of C_in is valid: it sets C_out
            g = draw(st.sampled_from([g for g in range(2, 8) if base.c_in % g]))
        else:
            g = draw(st.sampled_from([g for g in range(1, 7) if g != base.groups]))
        return mutation(involved, repr(g), groups=g)

    muts = {"channels": channels, "groups:mismatch": groups}
    if not base.transpose and base.padding_arg != "same":
        muts["kernel_too_large"] = lambda draw: _kernel_too_large(draw, base, in_arg, w_arg)
    if not base.transpose and base.groups > 1:
        muts["groups:c_out"] = lambda draw: _c_out_not_divisible(draw, base, w_arg)
    return muts


def _kernel_too_large(draw, base: ConvBase, in_arg: str, w_arg: str):
    """One kernel dim with d(K-1)+1 > I + lo + hi."""
    i = draw(st.integers(0, base.n - 1))
    padded = base.sizes[i] + sum(base.pads[i])
    k = (padded - 1) // base.dilation[i] + 2 + draw(st.integers(0, 2))   # d(k-1)+1 > padded
    shape = base.weight_shape()
    shape = shape[:2 + i] + (k,) + shape[3 + i:]
    value = shape if w_arg == "weight_size" else zeros(shape, base.dtype)
    return mutation([in_arg, w_arg], None, **{w_arg: value})


def _c_out_not_divisible(draw, base: ConvBase, w_arg: str):
    c_out = draw(st.sampled_from([c for c in range(1, 8) if c % base.groups]))
    shape = (c_out,) + base.weight_shape()[1:]
    value = shape if w_arg == "weight_size" else zeros(shape, base.dtype)
    # no bias: a bias sized for the old C_out would be a second error
    extra = {"bias": None} if base.kind == "conv" else {}
    return mutation(["groups", w_arg], None, **{w_arg: value}, **extra)


def _conv_config_mutations(base: ConvBase, kwargs: dict) -> dict:
    lows = tuple(lo for lo, _ in base.pads)
    muts = {
        "stride": lambda draw: _int_mutation(draw, "stride", base.stride, 1),
        "dilation": lambda draw: _int_mutation(draw, "dilation", base.dilation, 1),
        "padding:int": lambda draw: _int_mutation(draw, "padding", lows, 0),
        "groups": lambda draw: _int_mutation(draw, "groups", (base.groups,), 1,
                                             tuple_ok=False),
    }
    if base.transpose:
        muts.update(_transpose_mutations(base))
    else:
        muts.update(_conv_padding_mutations(base))
    if "padding_mode" in kwargs:
        muts.update(_padding_mode_mutations(base))
    return muts


def _int_mutation(draw, arg: str, valid: tuple, minimum: int, **options):
    value, shows = bad_int_arg(draw, valid, minimum, **options)
    return mutation(arg, shows, **{arg: value})


def _transpose_mutations(base: ConvBase) -> dict:
    def too_large(draw):
        i = draw(st.integers(0, base.n - 1))
        limit = max(base.stride[i], base.dilation[i])
        value = list(base.output_padding)
        value[i] = limit + draw(st.integers(0, 3))
        return mutation("output_padding", repr(tuple(value)),
                        output_padding=tuple(value))

    def padding_too_large(draw):
        # O = (I-1)s - 2p + d(K-1) + a + 1 < 1  <=>  2p > (I-1)s + d(K-1) + a
        i = draw(st.integers(0, base.n - 1))
        room = ((base.sizes[i] - 1) * base.stride[i]
                + base.dilation[i] * (base.kernel[i] - 1) + base.output_padding[i])
        value = [lo for lo, _ in base.pads]
        value[i] = room // 2 + 1 + draw(st.integers(0, 3))
        return mutation("padding", None, padding=tuple(value))

    def strings(draw):
        bad = draw(st.sampled_from(["same", "valid", "full", "SAME"]))
        return mutation("padding", repr(bad), padding=bad)

    def pairs(draw):
        value = tuple((lo, hi) for lo, hi in base.pads)
        return mutation("padding", None, padding=value)

    return {
        "output_padding": lambda draw: _int_mutation(
            draw, "output_padding", base.output_padding, 0),
        "output_padding:too_large": too_large,
        "padding:too_large": padding_too_large,
        "padding:string": strings,
        "padding:pairs": pairs,
    }


def _conv_padding_mutations(base: ConvBase) -> dict:
    def strings(draw):
        bad = draw(st.sampled_from(["full", "SAME", "", "circular", "same ", "Valid"]))
        return mutation("padding", repr(bad), padding=bad)

    def same_strided(draw):
        i = draw(st.integers(0, base.n - 1))
        stride = tuple(draw(st.integers(2, 3)) if j == i else 1 for j in range(base.n))
        return mutation(["padding", "stride"], None, padding="same", stride=stride)

    def pair(draw):
        pads = [list(p) for p in base.pads]
        i, side = draw(st.integers(0, base.n - 1)), draw(st.integers(0, 1))
        kind = draw(st.sampled_from(["negative", "arity", "not_int"]))
        if kind == "negative":
            pads[i][side] = draw(st.integers(-5, -1))
        elif kind == "arity":
            pads[i] = pads[i] + [0] if draw(st.booleans()) else pads[i][:1]
        else:
            pads[i][side] = draw(st.sampled_from([1.5, True, None, "1"]))
        value = tuple(tuple(p) for p in pads)
        return mutation("padding", None, padding=value)

    return {"padding:string": strings, "padding:same_strided": same_strided,
            "padding:pair": pair}


def _padding_mode_mutations(base: ConvBase) -> dict:
    def mode(draw):
        bad, shows = bad_string(draw, ("zeros", "reflect", "replicate", "circular"))
        return mutation("padding_mode", shows, padding_mode=bad)

    def border(draw):
        # torch's F.pad: reflect needs pad < I, circular pad <= I
        mode = draw(st.sampled_from(["reflect", "circular"]))
        i = draw(st.integers(0, base.n - 1))
        pads = [max(p) for p in base.pads]
        pads[i] = base.sizes[i] + (0 if mode == "reflect" else 1) + draw(st.integers(0, 2))
        return mutation(["padding", "padding_mode"], None, padding=tuple(pads),
                        padding_mode=mode)

    return {"padding_mode": mode, "padding_mode:border": border}


# --------------------------------------------------------------------------
# Pooling: max_pool*, avg_pool*, adaptive_max_pool*, adaptive_avg_pool*.

POOL_KINDS = ("max_pool", "avg_pool", "adaptive_max_pool", "adaptive_avg_pool")


@dataclasses.dataclass(frozen=True)
class PoolBase:
    kind: str
    n: int
    batch: int | None
    channels: int
    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    output_size: tuple[int, ...]
    dtype: object

    def input_shape(self) -> tuple[int, ...]:
        lead = () if self.batch is None else (self.batch,)
        return lead + (self.channels,) + self.sizes

    def output_shape(self) -> tuple[int, ...]:
        if self.kind.startswith("adaptive"):
            out = self.output_size
        else:
            out = tuple(pool_output_size(*row, self.ceil_mode) for row in zip(
                self.sizes, self.kernel, self.stride, self.padding, self.dilation))
        return self.input_shape()[:-self.n] + out


def pool_output_size(i: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch: ⌊(I + 2p - K')/s⌋ + 1 (⌈·⌉ with ceil_mode, minus one if the last
    window would start in the right padding)."""
    span = i + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    return out - 1 if (out - 1) * s >= i + p else out


@st.composite
def pool_bases(draw, kind: str, n: int) -> PoolBase:
    """Every window reaches the input: I >= K' and p <= K/2 (see _spec)."""
    kernel = per_dim(draw, n, 1, 3)
    dilation = per_dim(draw, n, 1, 2) if kind == "max_pool" else (1,) * n
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    stride = per_dim(draw, n, 1, 3)
    sizes = tuple(d * (k - 1) + 1 + draw(st.integers(0, 3))
                  for k, d in zip(kernel, dilation))
    return PoolBase(kind, n, draw(st.sampled_from([None, 0, 1, 2])),
                    draw(st.integers(1, 3)), sizes, kernel, stride, padding, dilation,
                    draw(st.booleans()), per_dim(draw, n, 0, 4),
                    draw(st.sampled_from(FLOATS)))


def pool_kwargs(draw, base: PoolBase) -> dict:
    kwargs = dict(input=zeros(base.input_shape(), base.dtype))
    if base.kind.startswith("adaptive"):
        kwargs["output_size"] = spell(draw, base.output_size)
    else:
        stride = base.stride
        if stride == base.kernel and draw(st.booleans()):
            stride = draw(st.sampled_from([None, (), []]))   # torch's default
        else:
            stride = spell(draw, stride)
        kwargs.update(kernel_size=spell(draw, base.kernel), stride=stride,
                      padding=spell(draw, base.padding), ceil_mode=base.ceil_mode)
    if base.kind == "max_pool":
        kwargs["dilation"] = spell(draw, base.dilation)
    if base.kind == "avg_pool":
        kwargs["count_include_pad"] = draw(st.booleans())
        if base.n > 1:
            kwargs["divisor_override"] = draw(st.sampled_from([None, 1, 3, -2]))
    if base.kind.endswith("max_pool"):
        kwargs["return_indices"] = draw(st.sampled_from([False, True, np.bool_(True)]))
    return kwargs


@st.composite
def pool_calls(draw, mutate: bool = True) -> Call:
    kind, n = draw(st.sampled_from(POOL_KINDS)), draw(st.integers(1, 3))
    name = f"{kind}{n}d"
    base = draw(pool_bases(kind, n))
    call = Call(name, getattr(jaxgrad, name), pool_kwargs(draw, base),
                expected=base.output_shape())
    return apply(draw, call, pool_mutations(base, call.kwargs)) if mutate else call


def pool_mutations(base: PoolBase, kwargs: dict) -> dict:
    shape = base.input_shape()
    # max and average pooling take integers, as torch's do; the adaptive ones do not
    refused = NON_FLOAT if base.kind.startswith("adaptive") else (jnp.bool_, jnp.complex64)
    muts = {
        "input:not_array": lambda draw: mutation("input", None, input=not_an_array(
            draw, shape, refused=refused)),
        "input:rank": lambda draw: mutation("input", None, input=zeros(
            draw(st.sampled_from([shape[-base.n:], (1, 1) + shape, ()])), base.dtype)),
        "input:empty": lambda draw: mutation("input", None, input=zeros(
            _with_zero(draw, shape, len(shape) - base.n - 1, len(shape)), base.dtype)),
    }
    for arg in ("ceil_mode", "return_indices", "count_include_pad"):
        if arg in kwargs:
            muts[arg] = _bool_mutation(arg)
    if base.kind.startswith("adaptive"):
        muts["output_size"] = lambda draw: _int_mutation(
            draw, "output_size", base.output_size, 0, none_ok=base.n > 1)
        return muts
    muts.update(_window_mutations(base))
    if "divisor_override" in kwargs:
        muts["divisor_override"] = lambda draw: _divisor_mutation(draw)
    return muts


def _bool_mutation(arg: str):
    def mutate(draw):
        bad = draw(st.sampled_from(NOT_BOOLS))
        return mutation(arg, None if isinstance(bad, np.ndarray) else repr(bad),
                        **{arg: bad})
    return mutate


def _divisor_mutation(draw):
    bad = draw(st.sampled_from([0, 1.5, 2.0, True, "2", (2,), 2**63, 10**30]))
    return mutation("divisor_override", repr(bad), divisor_override=bad)


def _window_mutations(base: PoolBase) -> dict:
    def kernel_too_large(draw):
        # K' = d(K-1)+1 > I + 2p: not even one window (2p <= K still holds).
        # ceil_mode off: with it torch keeps one overhanging window when s > span.
        i = draw(st.integers(0, base.n - 1))
        padded = base.sizes[i] + 2 * base.padding[i]
        kernel = list(base.kernel)
        kernel[i] = (padded - 1) // base.dilation[i] + 2 + draw(st.integers(0, 2))
        return mutation(["kernel_size", "dilation", "padding"], None,
                        kernel_size=tuple(kernel), ceil_mode=False)

    def padding_too_large(draw):
        i = draw(st.integers(0, base.n - 1))
        padding = list(base.padding)
        padding[i] = base.kernel[i] // 2 + 1 + draw(st.integers(0, 2))
        return mutation(["padding", "kernel_size"], None, padding=tuple(padding))

    muts = {
        "kernel_size": lambda draw: _int_mutation(draw, "kernel_size", base.kernel, 1),
        "kernel_size:too_large": kernel_too_large,
        "stride": lambda draw: _int_mutation(draw, "stride", base.stride, 1,
                                             none_ok=True, empty_ok=True),
        "padding": lambda draw: _int_mutation(draw, "padding", base.padding, 0),
        "padding:too_large": padding_too_large,
    }
    if base.kind == "max_pool":
        muts["dilation"] = lambda draw: _int_mutation(draw, "dilation", base.dilation, 1)
        muts["dilation:padding_only"] = lambda draw: _padding_only_window(draw, base)
    return muts


def _padding_only_window(draw, base: PoolBase):
    """kernel 2, padding 1, dilation I+1: window 0 reads rows -1 and I, both padding."""
    i = draw(st.integers(0, base.n - 1))
    kernel, padding, dilation = list(base.kernel), list(base.padding), list(base.dilation)
    kernel[i], padding[i], dilation[i] = 2, 1, base.sizes[i] + 1
    return mutation(["padding", "dilation"], None, kernel_size=tuple(kernel),
                    padding=tuple(padding), dilation=tuple(dilation))


# --------------------------------------------------------------------------
# linear.


@st.composite
def linear_calls(draw, mutate: bool = True) -> Call:
    lead = per_dim(draw, draw(st.integers(0, 2)), 0, 3)
    fan_in, fan_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(FLOATS))
    bias = zeros((fan_out,), dtype) if draw(st.booleans()) else None
    call = Call("linear", jaxgrad.linear, dict(
        input=zeros(lead + (fan_in,), dtype), weight=zeros((fan_out, fan_in), dtype),
        bias=bias), expected=lead + (fan_out,))
    if not mutate:
        return call
    shapes = dict(input=lead + (fan_in,), weight=(fan_out, fan_in), bias=(fan_out,))
    muts = {f"{arg}:{kind}": fn for arg, shape in shapes.items()
            for kind, fn in _plain_array_mutations(arg, shape, dtype).items()}
    muts["input:scalar"] = lambda draw: mutation("input", None, input=zeros((), dtype))
    muts["weight:rank"] = lambda draw: mutation("weight", None, weight=zeros(
        draw(st.sampled_from([(fan_in,), (1, fan_out, fan_in), ()])), dtype))
    muts["features"] = lambda draw: mutation(["input", "weight"], None, weight=zeros(
        (fan_out, fan_in + draw(st.sampled_from([-1, 1, 2]))), dtype))
    muts["bias:shape"] = lambda draw: mutation("bias", None, bias=zeros(
        draw(st.sampled_from([(fan_out + 1,), (), (1, fan_out), (fan_in + fan_out,)])),
        dtype))
    return apply(draw, call, muts)


def _plain_array_mutations(arg: str, shape: tuple, dtype) -> dict:
    """Not an array / a non-float dtype, and a float dtype other than the others'."""
    return {
        "not_array": lambda draw: mutation(arg, None, **{
            arg: not_an_array(draw, shape, none_ok=arg in ("bias", "weight"))}),
        "dtype": lambda draw: mutation(arg, None, **{
            arg: zeros(shape, other_float(draw, dtype))}),
    }


# --------------------------------------------------------------------------
# Activations.

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "gelu", "softmax", "log_softmax",
               "silu", "mish", "softplus", "logsigmoid", "hardsigmoid", "hardswish", "elu",
               "celu", "selu")


@st.composite
def activation_calls(draw, mutate: bool = True) -> Call:
    name = draw(st.sampled_from(ACTIVATIONS))
    shape = per_dim(draw, draw(st.integers(0, 3)), 0, 3)
    kwargs = dict(input=zeros(shape, draw(st.sampled_from(FLOATS))))
    if name == "leaky_relu":
        kwargs["negative_slope"] = draw(st.sampled_from([0.01, -2.0, 0, 3, np.float32(0.5)]))
    if name == "gelu":
        kwargs["approximate"] = draw(st.sampled_from(["none", "tanh"]))
    if name.endswith("softmax"):
        rank = max(len(shape), 1)
        kwargs["dim"] = draw(st.integers(-rank, rank - 1))
    call = Call(name, getattr(jaxgrad, name), kwargs, expected=shape)
    if not mutate:
        return call
    # torch's relu takes integers; tanh and sigmoid integers, bool and complex
    refused = {"relu": (jnp.bool_, jnp.complex64), "sigmoid": (), "tanh": (),
               "silu": tuple(d for d in NON_FLOAT if d != jnp.complex64)}.get(name, NON_FLOAT)
    muts = {"input:not_array": lambda draw: mutation("input", None, input=not_an_array(
        draw, shape, refused=refused))}
    if name == "leaky_relu":
        muts["negative_slope"] = _negative_slope_mutation
    if name == "gelu":
        muts["approximate"] = lambda draw: _string_mutation(draw, "approximate",
                                                            ("none", "tanh"))
    if name.endswith("softmax"):
        muts["dim"] = lambda draw: _dim_mutation(draw, len(shape))
    return apply(draw, call, muts)


def _negative_slope_mutation(draw):
    bad = draw(st.sampled_from(["0.1", None, True, 1j, [0.1], zeros(()),
                                np.array([0.1]), 10**400]))
    shows = None if isinstance(bad, (np.ndarray, jax.Array)) else repr(bad)
    return mutation("negative_slope", shows, negative_slope=bad)


def _string_mutation(draw, arg: str, valid: tuple[str, ...]):
    bad, shows = bad_string(draw, valid)
    return mutation(arg, shows, **{arg: bad})


def _dim_mutation(draw, ndim: int):
    rank = max(ndim, 1)
    bad = draw(st.one_of(st.integers(rank, rank + 5), st.integers(-rank - 5, -rank - 1),
                         st.sampled_from([1.0, True, None, "0", (0,), 10**30,
                                          np.array(0)])))
    return mutation("dim", None if isinstance(bad, np.ndarray) else repr(bad), dim=bad)


# --------------------------------------------------------------------------
# Losses.

REDUCTIONS = ("none", "mean", "sum")


# Elementwise losses of (input, target) of one shape; the ones with a `weight`
# of input's shape (torch 2.13's), or broadcasting to it (binary cross-entropy,
# with `pos_weight` for logits).
POINTWISE_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")
WEIGHT_OF_INPUT_SHAPE = ("mse_loss", "l1_loss", "huber_loss")
BINARY_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits")
KL_REDUCTIONS = ("none", "mean", "batchmean", "sum")


@st.composite
def loss_calls(draw, mutate: bool = True) -> Call:
    name = draw(st.sampled_from([*POINTWISE_LOSSES, *BINARY_LOSSES, "kl_div", "nll_loss",
                                 "cross_entropy"]))
    dtype = draw(st.sampled_from(FLOATS))
    reduction = draw(st.sampled_from(KL_REDUCTIONS if name == "kl_div" else REDUCTIONS))
    if name in ("nll_loss", "cross_entropy"):
        return draw(_class_loss_calls(name, dtype, reduction, mutate))
    shape = per_dim(draw, draw(st.integers(0, 3)), 0, 3)
    kwargs = dict(input=zeros(shape, dtype), target=zeros(shape, dtype), reduction=reduction)
    weights = {}
    if name in WEIGHT_OF_INPUT_SHAPE and draw(st.booleans()):
        weights["weight"] = shape
    if name in BINARY_LOSSES:
        for arg in ("weight", "pos_weight")[:2 if name.endswith("logits") else 1]:
            if draw(st.booleans()):   # a suffix of input's shape, some dims 1
                suffix = shape[draw(st.integers(0, len(shape))):]
                weights[arg] = tuple(d if draw(st.booleans()) else 1 for d in suffix)
    if name == "kl_div":
        kwargs["log_target"] = draw(st.booleans())
    kwargs.update({arg: zeros(s, dtype) for arg, s in weights.items()})
    call = Call(name, getattr(jaxgrad, name), kwargs,
                expected=shape if reduction == "none" else ())
    if not mutate:
        return call
    muts = _elementwise_loss_mutations(name, shape, dtype, weights)
    return apply(draw, call, muts)


def _elementwise_loss_mutations(name, shape, dtype, weights: dict) -> dict:
    # complex arguments are valid for l1_loss (a complex64 input with a float32
    # target, too), so its bad dtypes are the others
    refused = tuple(d for d in NON_FLOAT if name != "l1_loss" or d != jnp.complex64)
    muts = {}
    for arg, s in (("input", shape), ("target", shape), *weights.items()):
        muts[f"{arg}:not_array"] = lambda draw, arg=arg, s=s: mutation(arg, None, **{
            arg: not_an_array(draw, s, none_ok=arg != "input" and arg != "target",
                              refused=refused)})
        muts[f"{arg}:dtype"] = lambda draw, arg=arg, s=s: mutation(arg, None, **{
            arg: zeros(s, other_float(draw, dtype))})
    muts["target:shape"] = lambda draw: mutation("target", None, target=zeros(
        _off_shape(draw, shape), dtype))
    for arg in weights:   # exactly input's shape, or one more leading dim of 2
        muts[f"{arg}:shape"] = lambda draw, arg=arg: mutation(arg, None, **{arg: zeros(
            _off_shape(draw, shape) if name in WEIGHT_OF_INPUT_SHAPE else (2,) + shape,
            dtype)})
    valid = KL_REDUCTIONS if name == "kl_div" else REDUCTIONS
    muts["reduction"] = lambda draw: _string_mutation(draw, "reduction", valid)
    if name == "kl_div":
        muts["log_target"] = lambda draw: (lambda bad: mutation(
            "log_target", None, log_target=bad))(draw(st.sampled_from(NOT_BOOLS)))
    return muts


@st.composite
def _class_loss_calls(draw, name, dtype, reduction, mutate):
    """nll_loss / cross_entropy: input (N, C, *d) or (C,), target (N, *d) or ()."""
    batched = draw(st.booleans())
    classes = draw(st.integers(1, 4))
    extra = per_dim(draw, draw(st.integers(0, 2)), 0, 3) if batched else ()
    shape = ((draw(st.integers(0, 3)), classes) + extra) if batched else (classes,)
    t_shape = shape[:1] + shape[2:] if batched else ()
    soft = name == "cross_entropy" and draw(st.booleans())
    target = zeros(shape, dtype) if soft else zeros(
        t_shape, draw(st.sampled_from([jnp.int32, jnp.int64, jnp.uint8])))
    kwargs = dict(input=zeros(shape, dtype), target=target,
                  weight=zeros((classes,), dtype) if draw(st.booleans()) else None,
                  # torch rejects ignore_index >= 0 with probability targets
                  ignore_index=draw(st.sampled_from(
                      [-100, -1] if soft else [-100, 0, np.int64(2)])),
                  reduction=reduction)
    if name == "cross_entropy":
        kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 0.25, 1, 0.5]))
    call = Call(name, getattr(jaxgrad, name), kwargs,
                expected=t_shape if reduction == "none" else ())
    if not mutate:
        return call
    return apply(draw, call, _class_loss_mutations(name, shape, t_shape, dtype, soft,
                                                   kwargs["weight"] is not None))


def _class_loss_mutations(name, shape, t_shape, dtype, soft, has_weight) -> dict:
    classes = (shape[1] if len(shape) > 1 else shape[0],)
    muts = {f"{arg}:{kind}": fn for arg, s in (("input", shape), ("weight", classes))
            for kind, fn in _plain_array_mutations(arg, s, dtype).items()}
    if not (has_weight or soft):   # then no other argument fixes input's dtype
        del muts["input:dtype"]
    muts.update({
        "input:scalar": lambda draw: mutation("input", None, input=zeros((), dtype)),
        "input:no_classes": lambda draw: _no_classes(shape, t_shape, dtype),
        "weight:shape": lambda draw: mutation("weight", None, weight=zeros(
            _off_shape(draw, classes), dtype)),
        "target:dtype": lambda draw: mutation("target", None, target=zeros(
            t_shape, draw(st.sampled_from([jnp.bool_, jnp.complex64] + (
                [F32, F64] if name == "nll_loss" else []))))),
        "target:not_array": lambda draw: mutation("target", None, target=draw(
            st.sampled_from([None, True, ["0"], "0", FakeTensor(), KEY]))),
        "target:shape": lambda draw: mutation("target", None, target=(
            zeros(_off_shape(draw, shape), dtype) if soft else
            zeros(_off_shape(draw, t_shape), jnp.int32))),
        "ignore_index": lambda draw: _ignore_index_mutation(draw),
        "reduction": lambda draw: _string_mutation(draw, "reduction", REDUCTIONS),
    })
    if soft:
        muts["target:float_dtype"] = lambda draw: mutation("target", None, target=zeros(
            shape, other_float(draw, dtype)))
    if name == "cross_entropy":
        muts["label_smoothing"] = _label_smoothing_mutation
    return muts


def _no_classes(shape, t_shape, dtype):
    bad = shape[:1] + (0,) + shape[2:] if len(shape) > 1 else (0,)
    return mutation("input", None, input=zeros(bad, dtype))


def _ignore_index_mutation(draw):
    bad = draw(st.sampled_from([1.0, True, "x", None, 1j, 2**63, -(2**63) - 1,
                                np.float32(1)]))
    return mutation("ignore_index", repr(bad), ignore_index=bad)


def _label_smoothing_mutation(draw):
    bad = draw(st.one_of(
        st.floats(1.0, 10.0, exclude_min=True), st.floats(-10.0, 0.0, exclude_max=True),
        st.sampled_from([float("nan"), float("inf"), "0.1", True, None, 1j, (0.1,)])))
    return mutation("label_smoothing", repr(bad), label_smoothing=bad)


# --------------------------------------------------------------------------
# Gradient tools: hook, print_grad, scale_grad, reverse_grad.

HOOKS = ("hook", "print_grad", "scale_grad", "reverse_grad")


@st.composite
def hook_calls(draw, mutate: bool = True) -> Call:
    name = draw(st.sampled_from(HOOKS))
    shape = per_dim(draw, draw(st.integers(0, 2)), 1, 3)
    dtype = draw(st.sampled_from(FLOATS))
    kwargs = dict(x=zeros(shape, dtype))
    if name == "hook":
        kwargs["fn"] = _identity
    if name == "print_grad":
        kwargs["label"] = draw(st.sampled_from(["grad", "", "dL/dx"]))
    if name == "scale_grad":
        kwargs["c"] = draw(st.sampled_from([0.5, -1, np.float64(2.0)]))
    call = Call(name, getattr(jaxgrad, name), kwargs, expected=shape)
    if not mutate:
        return call
    muts = {"x:not_array": lambda draw: _hook_x_mutation(draw, shape)}
    if name == "hook":
        muts["fn"] = lambda draw: mutation("fn", None, fn=draw(st.sampled_from(
            [None, 3, "g", [_identity]])))
        muts["fn:returns"] = _hook_return_mutation
    if name == "print_grad":
        muts["label"] = lambda draw: _label_mutation(draw)
    if name == "scale_grad":
        muts["c"] = lambda draw: _scale_mutation(draw, shape)
    call = apply(draw, call, muts)
    if call.mutation != "fn:returns":
        return call
    # fn runs in the backward pass: differentiate to reach it (one shape, so
    # the eager gradient's programs compile once, not per example)
    return dataclasses.replace(call, kwargs={**call.kwargs, "x": zeros((2,), F32)},
                               through_grad=True)


def _identity(g):
    return g


def _hook_x_mutation(draw, shape):
    if draw(st.booleans()):
        bad = draw(st.sampled_from([None, (), {}, {"a": "1.0"}, [zeros(2), "b"]]))
        return mutation("x", None, x=bad)
    return mutation("x", None, x=not_an_array(draw, shape))


def _label_mutation(draw):
    bad = draw(st.sampled_from([None, 3, b"grad", ["a"], 1.5]))
    return mutation("label", repr(bad), label=bad)


def _scale_mutation(draw, shape):
    bad = draw(st.sampled_from(["2", None, True, 1j, ["x"], 10**400, FakeTensor(),
                                "int", "bool", "wide", "key"]))
    arrays = {"int": zeros(shape, jnp.int32), "bool": zeros(shape, jnp.bool_),
              "wide": zeros((2,) + shape, F32), "key": KEY}
    bad = arrays.get(bad, bad) if isinstance(bad, str) else bad
    shows = None if isinstance(bad, (jax.Array, FakeTensor)) else repr(bad)
    return mutation("c", shows, c=bad)


def _hook_return_mutation(draw):
    """fn returns a cotangent of the wrong shape, dtype or structure (backward time)."""
    kind = draw(st.sampled_from(["shape", "dtype", "tuple", "list", "scalar", "key"]))
    fns = {
        "shape": lambda g: jnp.zeros(g.shape + (2,), g.dtype),
        "dtype": lambda g: g.astype(jnp.int32),
        "tuple": lambda g: (g, g),
        "list": lambda g: [g],
        "scalar": lambda g: 1.0,
        "key": lambda g: jax.random.split(KEY, g.shape[0]),
    }
    fns[kind].__name__ = f"returns_{kind}"
    return mutation("fn", None, fn=fns[kind])
