"""User-defined benchmark cases: ``jaxgrad bench --conv SPEC``.

A SPEC is an op name and ``key=value`` fields separated by spaces::

  conv2d x=8,64,56,56 w=64,64,3,3 stride=1 padding=1
  conv_transpose2d x=4,128,16,16 w=128,64,4,4 stride=2 padding=1 groups=1
  conv1d x=4,64,16000 w=64,64,2 dilation=256

  op              conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
                  conv_transpose3d
  x               the input shape (N, C_in, *spatial), required
  w               the weight shape in torch's layout, required: (C_out, C_in/G,
                  *kernel) for a convolution, (C_in, C_out/G, *kernel) for a
                  transposed one
  stride, padding, dilation, output_padding
                  an int for every spatial dim, or one int per dim separated by
                  commas (``stride=2,1``); output_padding only for conv_transpose*
  groups          an int

Parsing is pure Python on the shapes: a malformed SPEC is a usage error (exit
status 2) naming the field and its value, reported before anything is
measured. The case runs through the same protocol as the named cases.
"""

from __future__ import annotations

import argparse

from ._cases import Case, Layer, conv, conv_transpose

OPS = {f"{op}{n}d": (op, n) for op in ("conv", "conv_transpose") for n in (1, 2, 3)}
FIELDS = ("x", "w", "stride", "padding", "dilation", "groups", "output_padding")
_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "output_padding": 0}
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


class SpecError(ValueError):
    """A malformed SPEC; the message names the field and its value."""


def _ints(key: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SpecError(f"{key}={text} must be an int or comma-separated ints") from None
    return values


def _fields(spec: str) -> tuple[str, dict[str, str]]:
    op, *tokens = spec.split() or [""]
    if op not in OPS:
        raise SpecError(f"unknown op {op!r}: a SPEC starts with one of "
                        f"{', '.join(OPS)}")
    fields: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not value:
            raise SpecError(f"field {token!r} must be KEY=VALUE")
        if key not in FIELDS:
            raise SpecError(f"unknown field {key}={value}; fields are "
                            f"{', '.join(FIELDS)}")
        if key in fields:
            raise SpecError(f"field {key} is given twice ({key}={fields[key]}, "
                            f"{key}={value})")
        fields[key] = value
    return op, fields


def _shape(key: str, fields: dict, n: int, layout: str) -> tuple[int, ...]:
    if key not in fields:
        what = "input" if key == "x" else "weight"
        raise SpecError(f"field {key}= is required: the {what} shape {layout}")
    shape = _ints(key, fields[key])
    if len(shape) != n + 2:
        raise SpecError(f"{key}={fields[key]} must have {n + 2} entries {layout}")
    if min(shape) < 1:
        raise SpecError(f"{key}={fields[key]} must have every entry >= 1")
    return shape


def _per_dim(key: str, fields: dict, n: int, minimum: int) -> tuple[int, ...]:
    text = fields.get(key, str(_DEFAULTS[key]))
    values = _ints(key, text)
    if len(values) == 1:
        values *= n
    if len(values) != n:
        raise SpecError(f"{key}={text} must be one int or {n} comma-separated ints")
    if min(values) < minimum:
        raise SpecError(f"{key}={text} must be >= {minimum}")
    return values


def _groups(fields: dict) -> int:
    text = fields.get("groups", "1")
    values = _ints("groups", text)
    if len(values) != 1 or values[0] < 1:
        raise SpecError(f"groups={text} must be one int >= 1")
    return values[0]


def _layer(op: str, n: int, fields: dict, x: tuple, w: tuple) -> Layer:
    stride = _per_dim("stride", fields, n, 1)
    padding = _per_dim("padding", fields, n, 0)
    dilation = _per_dim("dilation", fields, n, 1)
    groups = _groups(fields)
    if op == "conv":
        if "output_padding" in fields:
            raise SpecError(f"output_padding={fields['output_padding']} applies to "
                            "conv_transpose* only")
        if x[1] != w[1] * groups or w[0] % groups:
            raise SpecError(f"w={fields['w']} does not fit x={fields['x']} with "
                            f"groups={groups}: C_in = {x[1]} must be w[1]·groups = "
                            f"{w[1] * groups}, and groups must divide C_out = {w[0]}")
        return conv(w, stride, padding, dilation, groups)
    extra = _per_dim("output_padding", fields, n, 0)
    if any(a >= max(s, d) for a, s, d in zip(extra, stride, dilation)):
        raise SpecError(f"output_padding={fields['output_padding']} must be smaller "
                        f"than stride or dilation in every dim")
    if x[1] != w[0] or w[0] % groups:
        raise SpecError(f"w={fields['w']} does not fit x={fields['x']} with "
                        f"groups={groups}: C_in = {x[1]} must be w[0] = {w[0]}, and "
                        f"groups must divide it")
    return conv_transpose(w, stride, padding, extra, groups, dilation)


def canonical(op: str, fields: dict[str, str]) -> str:
    """The SPEC with its fields in the documented order (what ``argv_of`` repeats)."""
    return " ".join([op] + [f"{k}={fields[k]}" for k in FIELDS if k in fields])


def name_of(op: str, fields: dict[str, str]) -> str:
    """A space-free case name: ``conv2d_x8,64,56,56_w64,64,3,3_s1_p1``."""
    short = {"stride": "s", "padding": "p", "dilation": "d", "groups": "g",
             "output_padding": "op"}
    return "_".join([op] + [f"{short.get(k, k)}{fields[k]}" for k in FIELDS
                            if k in fields])


def parse(spec: str) -> Case:
    """The :class:`Case` of a SPEC; SpecError when it is malformed."""
    name, fields = _fields(spec)
    op, n = OPS[name]
    x = _shape("x", fields, n, f"(N, C_in, {_SPATIAL[n]})")
    w_layout = "(C_out, C_in/groups, *kernel)" if op == "conv" else \
        "(C_in, C_out/groups, *kernel)"
    w = _shape("w", fields, n, w_layout)
    layer = _layer(op, n, fields, x, w)
    out = layer.output_shape(x)
    if min(out[2:]) < 1:
        raise SpecError(f"the output {out} would be empty: the kernel does not fit "
                        f"the padded input")
    return Case(name_of(name, fields), f"--conv '{canonical(name, fields)}'", x,
                (layer,))


def spec(text: str) -> str:
    """argparse type of ``--conv``: the SPEC, checked and in canonical form."""
    try:
        parse(text)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (in {text!r})") from None
    return canonical(*_fields(text))
