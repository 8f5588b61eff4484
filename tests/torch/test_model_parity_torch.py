"""``check_model_parity``: a port against its torch original, layer by layer.

The model is a small CNN (conv → batch norm → ReLU(inplace) → max pool →
linear), once in ``torch.nn`` and once as a function of the params dict. The
port's batch norm is written here in plain jnp, so these tests do not depend
on jaxgrad's own. A correct port must pass; each deliberate mistake must be
named first (the forward of the layer it is in, or for a mistake in a
backward only, the gradient at the layer feeding it). Bad arguments must be
refused with the house wording.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxgrad
from jaxgrad import _tap, tap
from jaxgrad.interop import params_from_torch
from jaxgrad.testing import LayerComparison, ModelReport, check_model_parity


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.relu = torch.nn.ReLU(inplace=True)   # in place: the hooks must cope
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 3 * 3, 5)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.bn(self.conv(x)))).flatten(1))


def batch_norm(x, p, prefix, *, training, eps=1e-5):
    """BatchNorm2d in plain jnp: batch (biased) or running statistics."""
    if training:
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    else:
        mean, var = p[f"{prefix}.running_mean"], p[f"{prefix}.running_var"]
    shape = (1, -1, 1, 1)
    scale = p[f"{prefix}.weight"] / jnp.sqrt(var + eps)
    return (x - mean.reshape(shape)) * scale.reshape(shape) + p[f"{prefix}.bias"].reshape(
        shape)


def port(p, x, *, training=True, padding=1, eps=1e-5, transpose_kernel=False,
         bn_backward=1.0):
    w = jnp.swapaxes(p["conv.weight"], 2, 3) if transpose_kernel else p["conv.weight"]
    h = tap(jaxgrad.conv2d(x, w, p["conv.bias"], padding=padding), "conv")
    h = tap(batch_norm(h, p, "bn", training=training, eps=eps), "bn")
    # bn_backward != 1 scales only the gradient entering the ReLU's input: a
    # port whose forward is right and whose backward (of relu) is not
    h = tap(jaxgrad.relu(jaxgrad.scale_grad(h, bn_backward)), "relu")
    h = tap(jaxgrad.max_pool2d(h, 2), "pool")
    return tap(jaxgrad.linear(h.reshape(h.shape[0], -1), p["fc.weight"], p["fc.bias"]),
               "fc")


LAYERS = ["conv", "bn", "relu", "pool", "fc"]
PARAMETERS = ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = SmallCNN()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((3, 2, 6, 6))


def _mistake(**mistake):
    return jax.jit(lambda p, x: port(p, x, **mistake))


# --------------------------------------------------------------------------
# A correct port.


def test_correct_port_passes_in_train_mode_and_leaves_the_module_alone(model, x):
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = check_model_parity(jax.jit(port), model, x)
    assert isinstance(report, ModelReport) and report.passed
    assert [row.name for row in report.outputs] == ["output"]
    assert [row.name for row in report.parameters] == PARAMETERS
    assert [row.name for row in report.inputs] == ["input[0]"]
    assert [row.name for row in report.layers] == LAYERS
    assert all(isinstance(row, LayerComparison) and row.gradient is not None
               for row in report.layers)
    assert report.first_forward is None and report.first_gradient is None
    assert all(row.dtype == "float64" and row.max_rel < 1e-13
               for row in report.outputs + report.inputs + report.parameters[:1])
    # the module: same buffers (num_batches_tracked too), dtype and mode
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training and model.conv.weight.dtype == torch.float32
    text = str(report)
    assert "all passed" in text and "FAIL" not in text
    assert "tapped layers, in execution order" in text


def test_correct_port_passes_in_eval_mode(model, x):
    model.eval()
    try:
        report = check_model_parity(lambda p, x: port(p, x, training=False), model,
                                    torch.tensor(x))
    finally:
        model.train()
    assert report.passed and "eval mode" in report.title


def test_a_train_mode_port_of_an_eval_module_fails_at_bn(model, x):
    model.eval()
    try:
        report = check_model_parity(port, model, x, raise_on_failure=False)
    finally:
        model.train()
    assert report.first_forward == "bn"


# --------------------------------------------------------------------------
# Mistakes, each named first.


@pytest.mark.parametrize("mistake, layer", [
    (dict(padding=((0, 2), (1, 1))), "conv"),       # same shape, shifted windows
    (dict(transpose_kernel=True), "conv"),
    (dict(eps=1e-3), "bn"),
])
def test_a_forward_mistake_is_named_first(model, x, mistake, layer):
    report = check_model_parity(_mistake(**mistake), model, x, raise_on_failure=False)
    assert not report.passed and report.first_forward == layer
    k = LAYERS.index(layer)
    assert all(row.forward.passed for row in report.layers[:k])
    assert all(not row.forward.passed for row in report.layers[k:])
    assert f"forward first diverges at layer '{layer}'" in report.diagnosis
    assert f"layer {layer} (forward)" in report.failures
    # the summary counts comparisons as ``failures`` does: each layer's
    # value and gradient, every output, parameter and input gradient
    total = (len(report.outputs) + len(report.parameters) + len(report.inputs)
             + 2 * len(report.layers))
    assert str(report).startswith(f"{report.title}: {len(report.failures)} of {total} "
                                  "comparisons failed")


def test_wrong_eps_changes_the_gradients_too(model, x):
    report = check_model_parity(_mistake(eps=1e-3), model, x, raise_on_failure=False)
    assert not report.parameter("bn.weight").passed
    assert not report.layer("conv").gradient.passed   # through bn's backward
    assert report.parameter("bn.bias").passed          # Σ ḡ: independent of eps


def test_a_backward_mistake_is_named_by_the_gradients(model, x):
    report = check_model_parity(_mistake(bn_backward=2.0), model, x,
                                raise_on_failure=False)
    assert report.first_forward is None and all(row.passed for row in report.outputs)
    assert [row.name for row in report.layers if not row.gradient.passed] == ["conv", "bn"]
    assert report.first_gradient == "bn"
    assert ("the gradient first diverges at the output of 'bn': look at the backward "
            "between it and layer 'relu'") in report.diagnosis
    assert report.parameter("fc.weight").passed and not report.parameter(
        "conv.weight").passed


def test_failure_raises_an_assertion_error_carrying_the_report(model, x):
    with pytest.raises(AssertionError, match=r"(?s)\d+ of \d+ comparisons failed\nforward "
                       r"first diverges at layer 'conv'.*conv .*FAIL"):
        check_model_parity(_mistake(transpose_kernel=True), model, x)


# --------------------------------------------------------------------------
# Structure: several outputs, integer inputs, shared and tied layers.


class Pair(torch.nn.Module):
    """A submodule with two outputs."""

    def forward(self, h):
        return torch.tanh(h), h.argmax(-1)


class Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
        self.pair = Pair()
        self.out = torch.nn.Linear(3, 3)
        self.out.weight = self.lin.weight          # tied: one parameter, two names

    def forward(self, x, target):
        h = self.lin(torch.sin(self.lin(x)))       # a layer used twice
        a, idx = self.pair(h)
        logits = self.out(a)
        return torch.nn.functional.cross_entropy(logits, target), (logits, idx)


def head_port(p, x, target):
    lin = lambda h: tap(jaxgrad.linear(h, p["lin.weight"], p["lin.bias"]), "lin")  # noqa: E731
    h = lin(jnp.sin(lin(x)))
    a, idx = tap((jnp.tanh(h), jnp.argmax(h, -1)), "pair")
    logits = tap(jaxgrad.linear(a, p["out.weight"], p["out.bias"]), "out")
    return jaxgrad.cross_entropy(logits, target), (logits, idx)


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(1)
    return Head()


def test_several_outputs_integer_targets_shared_and_tied_layers(head):
    x = np.random.default_rng(1).standard_normal((4, 3))
    target = np.array([0, 2, 1, 1])
    report = check_model_parity(head_port, head, x, target)
    assert [row.name for row in report.outputs] == ["output[0]", "output[1][0]",
                                                    "output[1][1]"]
    assert report.outputs[2].dtype == "int64"
    assert [row.name for row in report.inputs] == ["input[0]"]    # not the target
    assert [row.name for row in report.parameters] == [
        "lin.weight=out.weight", "lin.bias", "out.bias"]
    assert [row.name for row in report.layers] == ["lin", "lin#2", "pair[0]", "pair[1]",
                                                   "out"]
    assert report.layer("lin#2").call == 1 and report.layer("pair[1]").gradient is None


def test_a_tied_weight_used_under_one_name_only_is_still_summed(head):
    # the port reads the tied weight as "lin.weight" twice: its gradient is
    # then the whole sum, as torch's
    def port(p, x, target):
        return head_port({**p, "out.weight": p["lin.weight"]}, x, target)

    x = np.random.default_rng(1).standard_normal((4, 3))
    report = check_model_parity(port, head, x, np.array([0, 2, 1, 1]))
    assert report.parameter("lin.weight=out.weight").passed


# --------------------------------------------------------------------------
# params, dtype, jit.


def test_given_params_nested_are_loaded_into_the_torch_copy(model, x):
    nested = params_from_torch(model, nested=True)
    nested["fc"]["weight"] = 2 * nested["fc"]["weight"]

    def nested_port(p, x):
        flat = {f"{k}.{n}": v for k, d in p.items() for n, v in d.items()}
        return port(flat, x)

    report = check_model_parity(nested_port, model, x, params=nested)
    assert report.passed
    assert not torch.equal(model.fc.weight, 2 * model.fc.weight)    # module untouched


def test_dtype_none_keeps_float32(model, x):
    report = check_model_parity(port, model, x.astype(np.float32), dtype=None,
                                jit=False)
    assert report.passed and report.outputs[0].dtype == "float32"
    assert report.outputs[0].rtol == 1e-5 and "dtypes as given" in report.title


def test_taps_inside_a_jit_compiled_before_the_check_are_recorded(model, x):
    jitted = jax.jit(port)
    jitted(params_from_torch(model, dtype="float64"), x)    # cached, no taps recorded
    report = check_model_parity(jitted, model, x)
    assert [row.name for row in report.layers] == LAYERS


def test_tap_records_nothing_after_the_check(model, x):
    check_model_parity(port, model, x)
    assert _tap._RECORDER.get() is None
    assert jax.make_jaxpr(lambda v: tap(v, "conv"))(jnp.ones(2)).eqns == []


# --------------------------------------------------------------------------
# Errors.


def test_unmatched_and_duplicate_tap_names_fail_with_the_reason(model, x):
    def typo(p, x):
        return tap(port(p, x), "fcc")

    with pytest.raises(AssertionError, match=r"unmatched taps:\n  'fcc': the torch "
                       r"module has no submodule of that name; did you mean 'fc'\?"):
        check_model_parity(typo, model, x)

    def twice(p, x):
        return tap(port(p, x), "fc")

    report = check_model_parity(twice, model, x, raise_on_failure=False)
    assert report.unmatched == ("'fc': tapped 2 time(s) in jax_fn, but the torch "
                                "submodule ran 1 time(s); a name must be tapped once "
                                "per call of its submodule",)
    assert not report.passed and all(row.passed for row in report.layers)


def test_bad_arguments_are_refused(model, x):
    with pytest.raises(TypeError, match=r"check_model_parity: `jax_fn` must be callable "
                       r"\(the port, called as jax_fn\(params, \*inputs\)\), got str 'port'"):
        check_model_parity("port", model, x)
    with pytest.raises(TypeError, match=r"check_model_parity: `torch_module` must be a "
                       r"torch.nn.Module, got function"):
        check_model_parity(port, port, x)
    with pytest.raises(ValueError, match=r"check_model_parity: `dtype` must be None or a "
                       r"floating dtype .*, got 'int8'"):
        check_model_parity(port, model, x, dtype="int8")
    with jax.enable_x64(False), pytest.raises(
            TypeError, match=r"check_model_parity: `dtype` is float64 \(the default\), "
                             r"but JAX's 64-bit mode is off"):
        check_model_parity(port, model, x)


def test_bad_params_are_refused(model, x):
    params = params_from_torch(model)
    with pytest.raises(ValueError, match=r"`params` has names that are not in the torch "
                       r"module's state_dict: \['conv.kernel'\]"):
        check_model_parity(port, model, x, params={**params, "conv.kernel": params[
            "conv.weight"]})
    without = {k: v for k, v in params.items() if k != "fc.bias"}
    with pytest.raises(ValueError, match=r"`params` lacks the torch parameters "
                       r"\['fc.bias'\] \(buffers may be left out"):
        check_model_parity(port, model, x, params=without)
    with pytest.raises(TypeError, match=r"check_model_parity: `params` must be a dict "
                       r"keyed by torch names"):
        check_model_parity(port, model, x, params=list(params.values()))


def test_different_output_structures_are_refused(model, x):
    with pytest.raises(ValueError, match=r"check_model_parity: jax_fn returned 2 "
                       r"array\(s\) .* but the torch module returned 1"):
        check_model_parity(lambda p, x: (port(p, x), port(p, x)), model, x)


def test_a_tap_inside_vmap_is_refused_with_the_reason(model, x):
    def per_example(p, x):
        jax.vmap(lambda xi: tap(jnp.sin(xi), "conv"))(x)
        return port(p, x)

    with pytest.raises(ValueError, match=r"check_model_parity: a value tapped in jax_fn "
                       r"escaped an inner transformation, most likely a jaxgrad.tap "
                       r"inside jax.vmap"):
        check_model_parity(per_example, model, x)


def test_the_readme_snippet_runs(capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Port a model and find the layer that differs"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    assert "all passed" in capsys.readouterr().out


def test_complex_models_are_refused():
    """Complex parameters, inputs or outputs: a TypeError pointing at
    check_parity (a complex parameter's gradient would not be compared, and
    dtype="float64" would drop its imaginary part)."""
    def port(p, x):
        return jaxgrad.conv1d(x, p["0.weight"], p["0.bias"])

    real = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3)).double()
    x = torch.randn(2, 2, 7, dtype=torch.float64)
    calls = [
        (port, torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3, dtype=torch.complex128)),
         x.to(torch.complex128), r"`torch_module`'s '0.weight' is complex \(torch.complex128\)"),
        (port, real, x.to(torch.complex128), r"`inputs\[0\]` is complex"),
        (lambda p, x: port(p, x) * (1 + 0j), real, x, r"`jax_fn`'s output is complex"),
    ]
    for fn, module, inp, message in calls:
        with pytest.raises(TypeError, match=rf"check_model_parity: {message}.*"
                           r"jaxgrad.testing.check_parity"):
            check_model_parity(fn, module, inp, dtype=None)
