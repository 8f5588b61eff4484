"""The rank-variant generator (``_variants``), its output (``_ranked``) and its stub."""

from __future__ import annotations

import doctest
import inspect
import pickle
import re
from pathlib import Path

import jax.numpy as jnp
import pytest

import jaxgrad
from jaxgrad import _ranked, _stubgen, _variants


def _plain(fn) -> str:
    """The signature without annotations: the text torch's docs show."""
    sig = inspect.signature(fn)
    params = [p.replace(annotation=p.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=sig.empty))


PUBLIC = {variant.name: getattr(_ranked, variant.name) for variant in _ranked.VARIANTS}


# --------------------------------------------------------------------------
# The generated functions.


@pytest.mark.parametrize("fn,expected", [
    (jaxgrad.conv2d, "(input, weight, bias=None, stride=1, padding=0, dilation=1, "
                     "groups=1, padding_mode='zeros', *, algorithm=None, precision=None)"),
    (jaxgrad.conv_transpose3d, "(input, weight, bias=None, stride=1, padding=0, "
                               "output_padding=0, groups=1, dilation=1, *, "
                               "output_size=None, algorithm=None, precision=None)"),
    (jaxgrad.max_pool1d, "(input, kernel_size, stride=None, padding=0, dilation=1, "
                         "ceil_mode=False, return_indices=False)"),
    (jaxgrad.avg_pool1d, "(input, kernel_size, stride=None, padding=0, ceil_mode=False, "
                         "count_include_pad=True)"),
    (jaxgrad.avg_pool3d, "(input, kernel_size, stride=None, padding=0, ceil_mode=False, "
                         "count_include_pad=True, divisor_override=None)"),
    (jaxgrad.adaptive_max_pool2d, "(input, output_size, return_indices=False)"),
    (jaxgrad.grad.conv2d_input, "(input_size, weight, grad_output, stride=1, padding=0, "
                                "dilation=1, groups=1, *, algorithm=None, precision=None)"),
], ids=lambda value: getattr(value, "__name__", ""))
def test_torch_style_signature(fn, expected):
    assert _plain(fn) == expected


def test_signatures_keep_their_annotations():
    assert str(inspect.signature(jaxgrad.conv2d)) == (
        "(input: 'ArrayLike', weight: 'ArrayLike', bias: 'ArrayLike | None' = None, "
        "stride: 'Size' = 1, padding: 'ConvPadding' = 0, dilation: 'Size' = 1, "
        "groups: 'int' = 1, padding_mode: 'str' = 'zeros', *, "
        "algorithm: 'str | None' = None, precision: 'Precision' = None) -> 'Array'")
    assert str(inspect.signature(jaxgrad.adaptive_max_pool2d)) == (
        "(input: 'ArrayLike', output_size: 'int | Sequence[int | None]', "
        "return_indices: 'bool' = False) -> 'Array | tuple[Array, Array]'")
    # torch's 1-D adaptive pools take no None entries
    output_size = inspect.signature(jaxgrad.adaptive_avg_pool1d).parameters["output_size"]
    assert output_size.annotation == "Size"


@pytest.mark.parametrize("name", list(PUBLIC))
def test_identity(name):
    fn = PUBLIC[name]
    assert (fn.__name__, fn.__qualname__, fn.__module__) == (name, name, "jaxgrad._ranked")
    assert inspect.signature(fn) == next(v for v in _ranked.VARIANTS
                                         if v.name == name).signature()
    assert pickle.loads(pickle.dumps(fn)) is fn
    assert f"def {name}(" in inspect.getsource(fn)


@pytest.mark.parametrize("name", [name for name in PUBLIC if name[-2:] in ("1d", "2d", "3d")])
def test_doc_names_the_torch_counterpart(name):
    assert f"torch.nn.functional.{name}``" in PUBLIC[name].__doc__


@pytest.mark.parametrize("name", [f"conv{n}d_{kind}" for n in (1, 2, 3)
                                  for kind in ("input", "weight")])
def test_grad_doc_names_the_torch_counterpart(name):
    assert f"(torch.nn.grad.{name})" in getattr(jaxgrad.grad, name).__doc__


def test_every_variant_keeps_a_doctest():
    found = {test.name.rpartition(".")[2]: test for test in
             doctest.DocTestFinder().find(_ranked, "jaxgrad._ranked")}
    missing = [name for name in PUBLIC if name not in found or not found[name].examples]
    assert not missing


def test_argument_errors_name_the_public_function():
    x, w = jnp.ones((1, 1, 4, 4), jnp.float32), jnp.ones((1, 1, 2, 2), jnp.float32)
    with pytest.raises(TypeError, match=r"^conv2d\(\) got an unexpected keyword "
                                        r"argument 'bogus'"):
        jaxgrad.conv2d(x, w, bogus=1)
    with pytest.raises(TypeError, match=r"^conv2d\(\) takes from 2 to 8 positional"):
        jaxgrad.conv2d(x, w, None, 1, 0, 1, 1, "zeros", "taps")   # algorithm is keyword-only
    with pytest.raises(TypeError, match=r"^conv2d_input\(\) missing 1 required"):
        jaxgrad.grad.conv2d_input((1, 1, 4, 4), w)


def test_value_errors_name_the_rank_variant():
    x = jnp.ones((1, 1, 4, 4), jnp.float32)
    with pytest.raises(ValueError, match=r"^avg_pool2d: "):
        jaxgrad.avg_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"^conv3d: "):
        jaxgrad.conv3d(x, jnp.ones((1, 1, 2, 2), jnp.float32))


# --------------------------------------------------------------------------
# The stub.


def test_committed_stub_is_current():
    committed = (Path(_ranked.__file__).with_suffix(".pyi")).read_text(encoding="utf-8")
    assert committed == _stubgen.render(_ranked), (
        "jaxgrad/_ranked.pyi is stale: run `python -m jaxgrad._stubgen`")


def test_stub_declares_every_variant_and_compiles():
    text = _stubgen.render(_ranked)
    compile(text, "_ranked.pyi", "exec")
    assert [line.split("(")[0][4:] for line in text.splitlines()
            if line.startswith("def ")] == list(PUBLIC)


def test_stub_is_package_data():
    # Read as text (tomllib is Python 3.11+, the project supports 3.10): the
    # package-data table's jaxgrad entry names the stub.
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    table = re.search(r"^\[tool\.setuptools\.package-data\]\n(.*?)(?=^\[|\Z)",
                      pyproject.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert table is not None, "pyproject.toml has no [tool.setuptools.package-data]"
    entry = re.search(r"^jaxgrad\s*=\s*\[(.*?)\]", table.group(1), flags=re.MULTILINE)
    assert entry is not None and '"_ranked.pyi"' in entry.group(1), table.group(1)


# --------------------------------------------------------------------------
# The generator, on a toy implementation.


def toy_nd(fn: str, n: int | None, x: int, scale: float = 2.0, bias: int | None = None,
           *, label: str = "y") -> str:
    return f"{fn}:{n}:{x}:{scale}:{bias}:{label}"


def test_define_compiles_one_call_per_variant():
    namespace = {"__name__": "toy"}
    declared = _variants.variants(toy_nd, "toy{d}", {None: "Generic.", 2: "Two."},
                                  omit={2: ("bias",)}, retype={2: {"x": "bool"}})
    _variants.define(namespace, declared)
    toy, toy2d = namespace["toy"], namespace["toy2d"]
    assert toy(1, bias=3) == "toy:None:1:2.0:3:y"
    assert toy2d(1, 0.5, label="z") == "toy2d:2:1:0.5:None:z"
    assert (toy.__doc__, toy2d.__doc__) == ("Generic.", "Two.")
    assert str(inspect.signature(toy2d)) == (
        "(x: 'bool', scale: 'float' = 2.0, *, label: 'str' = 'y') -> 'str'")
    assert _variants.source(declared[1]) == (
        'def toy2d(x: bool, scale: float = 2.0, *, label: str = "y") -> str:\n'
        '    return test_variants.toy_nd("toy2d", 2, x=x, scale=scale, label=label)\n')


def test_rank_name():
    assert [_variants.rank_name("conv_transpose{d}_weight", n) for n in (None, 3)] == [
        "conv_transpose_weight", "conv_transpose3d_weight"]


def test_variant_rejects_a_bad_implementation():
    with pytest.raises(TypeError, match=r"must take \(fn, n, \.\.\.\) first"):
        _variants.Variant("bad", lambda x, n: x, 1, "")
    with pytest.raises(TypeError, match=r"toy_nd has no parameter nope"):
        _variants.Variant("toy1d", toy_nd, 1, "", omit=("nope",))
    with pytest.raises(TypeError, match=r"cannot omit x, which toy_nd has no default"):
        _variants.Variant("toy1d", toy_nd, 1, "", omit=("x",))
    with pytest.raises(TypeError, match=r"must be a module-level function"):
        _variants.define({"__name__": "toy"}, (_variants.Variant("t", lambda fn, n: 0,
                                                                 1, ""),))
