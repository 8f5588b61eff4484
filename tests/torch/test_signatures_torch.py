"""The torch-style ops take torch.nn.functional's arguments: names, order, defaults.

A port passes arguments positionally as often as by name, so every parameter
torch has must be at the same position with the same default. jaxgrad may add
keyword-only parameters after them (``key``, ``algorithm``, ``precision``).
torch's builtins without an introspectable signature are compared with the
signature torch documents for them.
"""

import inspect
import math

import jax.numpy as jnp
import pytest
import torch.nn.functional as F

import jaxgrad

INTROSPECTABLE = [
    "batch_norm", "group_norm", "layer_norm", "instance_norm",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "pad", "interpolate", "unfold", "fold",
    "relu", "leaky_relu", "relu6", "hardtanh", "adaptive_avg_pool2d", "nll_loss",
    "cross_entropy", "silu", "mish", "hardsigmoid", "hardswish", "elu", "celu", "selu",
    "binary_cross_entropy",
]
# torch's builtins whose documented signature has defaults: (jaxgrad's
# positional parameters, the signature line in torch's docstring)
DOCUMENTED_WITH_DEFAULTS = {
    "softplus": ([("input", None), ("beta", 1.0), ("threshold", 20.0)],
                 "softplus(input, beta=1, threshold=20)"),
    "logsigmoid": ([("input", None)], "logsigmoid(input)"),
}
# torch's documented signatures of builtins inspect cannot read.
DOCUMENTED = {
    "pixel_shuffle": [("input", None), ("upscale_factor", None)],
    "pixel_unshuffle": [("input", None), ("downscale_factor", None)],
    "prelu": [("input", None), ("weight", None)],
}
# Deliberate, documented differences (README "Where jaxgrad deliberately differs").
KEYWORD_ONLY_IN_JAXGRAD = {"reduction", "ignore_index", "label_smoothing",
                           "size_average", "reduce"}


def _positional(fn) -> list[tuple[str, object]]:
    params = inspect.signature(fn).parameters.values()
    return [(p.name, None if p.default is p.empty else p.default) for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _same_default(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b) or (a is None and b is None)


@pytest.mark.parametrize("name", INTROSPECTABLE)
def test_positional_parameters_match_torch(name):
    theirs = [(n, d) for n, d in _positional(getattr(F, name))
              if n not in KEYWORD_ONLY_IN_JAXGRAD]
    ours = _positional(getattr(jaxgrad, name))
    assert [n for n, _ in ours] == [n for n, _ in theirs]
    for (n, mine), (_, torch_default) in zip(ours, theirs):
        assert _same_default(mine, torch_default), (n, mine, torch_default)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_builtins_match_torchs_documented_signature(name):
    assert _positional(getattr(jaxgrad, name)) == DOCUMENTED[name]
    assert f"{name}({DOCUMENTED[name][0][0]}, {DOCUMENTED[name][1][0]})" in (
        getattr(F, name).__doc__ or "")


def test_pointwise_loss_parameters():
    # reduction keyword-only where torch's third positional slot is the
    # deprecated size_average (mse, l1, smooth l1), and so is torch's `weight`
    # after it; positional for huber_loss (torch's huber has no deprecated slot)
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss"):
        assert _positional(getattr(jaxgrad, name)) == [("input", None), ("target", None)]
        assert [n for n, _ in _positional(getattr(F, name))][2:4] == ["size_average", "reduce"]
    assert _positional(jaxgrad.huber_loss) == _positional(F.huber_loss)
    for name in ("mse_loss", "l1_loss"):
        ours = inspect.signature(getattr(jaxgrad, name)).parameters["weight"]
        assert ours.kind is inspect.Parameter.KEYWORD_ONLY and ours.default is None
        assert "weight" in inspect.signature(getattr(F, name)).parameters
    assert inspect.signature(jaxgrad.smooth_l1_loss).parameters["beta"].default == 1.0


def test_binary_cross_entropy_with_logits_parameters():
    # torch's pos_weight comes after the deprecated size_average/reduce and
    # reduction; here reduction and pos_weight are keyword-only, same defaults
    theirs = inspect.signature(F.binary_cross_entropy_with_logits).parameters
    ours = inspect.signature(jaxgrad.binary_cross_entropy_with_logits).parameters
    assert _positional(jaxgrad.binary_cross_entropy_with_logits) == \
        _positional(F.binary_cross_entropy_with_logits)[:3]
    for name in ("reduction", "pos_weight"):
        assert ours[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert ours[name].default == theirs[name].default


def test_kl_div_parameters():
    # reduction and log_target keyword-only (torch's third positional slot is
    # the deprecated size_average), same defaults
    theirs = inspect.signature(F.kl_div).parameters
    ours = inspect.signature(jaxgrad.kl_div).parameters
    assert _positional(jaxgrad.kl_div) == [("input", None), ("target", None)]
    assert [n for n, _ in _positional(F.kl_div)][2:4] == ["size_average", "reduce"]
    for name in ("reduction", "log_target"):
        assert ours[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert ours[name].default == theirs[name].default


@pytest.mark.parametrize("name", sorted(DOCUMENTED_WITH_DEFAULTS))
def test_builtins_with_defaults_match_torchs_documented_signature(name):
    params, line = DOCUMENTED_WITH_DEFAULTS[name]
    assert _positional(getattr(jaxgrad, name)) == params
    assert line in (getattr(F, name).__doc__ or "")


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "relu6", "hardtanh", "dropout",
                                  "silu", "mish", "hardsigmoid", "hardswish", "elu",
                                  "celu", "selu"])
def test_inplace_false_is_accepted_and_true_refused(name):
    x = jnp.linspace(-2.0, 8.0, 6)
    kwargs = {"p": 0.0} if name == "dropout" else {}
    assert jnp.array_equal(getattr(jaxgrad, name)(x, inplace=False, **kwargs),
                           getattr(jaxgrad, name)(x, **kwargs))
    with pytest.raises(ValueError, match=rf"{name}: `inplace` must be False: JAX "
                                         r"arrays are immutable.*got True"):
        getattr(jaxgrad, name)(x, inplace=True, **kwargs)
