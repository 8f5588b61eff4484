"""The precision policy: full float32 unless asked, passed to every contraction.

Every conv and matmul that jaxgrad emits, in the forward and in the first and
second-order gradients, is read off the jaxpr (nested jaxprs included) and its
``precision`` parameter compared with the policy of ``docs/precision.md``:
an explicit ``precision=`` wins; else ``jax.default_matmul_precision`` when it
names a precision; else ``HIGHEST`` (so no TF32 on GPUs unless asked).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxgrad
from jaxgrad import grad as G

HIGHEST, HIGH, DEFAULT = lax.Precision.HIGHEST, lax.Precision.HIGH, lax.Precision.DEFAULT
CONTRACTIONS = ("conv_general_dilated", "dot_general")


def contraction_precisions(fn, *args) -> list[tuple[str, object]]:
    """(primitive, precision) of every conv/matmul in fn's jaxpr, nested ones too."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in CONTRACTIONS:
                found.append((eqn.primitive.name, eqn.params["precision"]))
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    sub = getattr(sub, "jaxpr", sub)
                    if hasattr(sub, "eqns"):
                        walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def _rand(seed, *shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


# Each case: (name, op taking two differentiable arrays and keyword arguments,
# the two arrays). The ops cover every public function that contracts.
def _cases():
    x1, x2, x3 = _rand(0, 2, 3, 9), _rand(1, 2, 3, 7, 6), _rand(2, 1, 2, 5, 4, 4)
    w1, w2, w3 = _rand(3, 4, 3, 3), _rand(4, 4, 3, 3, 2), _rand(5, 2, 2, 2, 2, 2)
    y2 = jaxgrad.conv2d(x2, w2, stride=2)
    t2 = _rand(6, 2, 4, 4, 4)      # input of conv_transpose2d with weight (4, 3, 3, 2)
    yt = jaxgrad.conv_transpose2d(t2, w2, stride=2)
    return {
        "conv": (lambda x, w, **k: jaxgrad.conv(x, w, padding=1, **k), x1, w1),
        "conv1d": (lambda x, w, **k: jaxgrad.conv1d(x, w, stride=2, **k), x1, w1),
        "conv2d": (lambda x, w, **k: jaxgrad.conv2d(x, w, stride=2, **k), x2, w2),
        "conv3d": (lambda x, w, **k: jaxgrad.conv3d(x, w, dilation=2, **k), x3, w3),
        # two input channels per group: a depthwise layer (one per group, with
        # or without a channel multiplier) computes its taps weight gradient
        # and forward as elementwise sums, with no contraction to carry a precision
        "conv2d_groups": (lambda x, w, **k: jaxgrad.conv2d(x, w, groups=3, **k),
                          _rand(12, 2, 6, 7, 6), _rand(7, 6, 2, 3, 3)),
        "conv_transpose2d": (lambda x, w, **k: jaxgrad.conv_transpose2d(
            x, w, stride=2, **k), t2, w2),
        "conv_transpose": (lambda x, w, **k: jaxgrad.conv_transpose(x, w, **k),
                           _rand(8, 2, 4, 5), _rand(9, 4, 2, 3)),
        "grad.conv2d_input": (lambda w, g, **k: G.conv2d_input(
            x2.shape, w, g, stride=2, **k), w2, y2),
        "grad.conv2d_weight": (lambda x, g, **k: G.conv2d_weight(
            x, w2.shape, g, stride=2, **k), x2, y2),
        "grad.conv_transpose2d_input": (lambda w, g, **k: G.conv_transpose2d_input(
            t2.shape, w, g, stride=2, **k), w2, yt),
        "grad.conv_transpose2d_weight": (lambda x, g, **k: G.conv_transpose2d_weight(
            x, w2.shape, g, stride=2, **k), t2, yt),
        # taps: one dense sample (the plain 2-D GEMM of the weight gradient) and
        # more output channels than output positions (the input gradient's
        # other GEMM order)
        "conv2d_one_sample": (lambda x, w, **k: jaxgrad.conv2d(x, w, padding=1, **k),
                              x2[:1], w2),
        "conv2d_wide": (lambda x, w, **k: jaxgrad.conv2d(x, w, stride=3, **k),
                        x2, _rand(12, 16, 3, 3, 3)),
        "linear": (lambda x, w, **k: jaxgrad.linear(x, w, **k), _rand(10, 5, 3, 6),
                   _rand(11, 4, 6)),
        "conv_general_dilated": (lambda x, w, **k: jaxgrad.conv_general_dilated(
            x, w, (2, 1), ((1, 1), (0, 2)), lhs_dilation=(1, 2), **k), x2, w2),
    }


CASES = _cases()


def _first_and_second_order(op, **kw):
    """The forward value, both first-order gradients and a second-order one, as one fn."""
    def loss(a, b):
        return jnp.sum(op(a, b, **kw) ** 2)

    def everything(a, b):
        ga, gb = jax.grad(loss, argnums=(0, 1))(a, b)
        hvp = jax.grad(lambda a: jnp.sum(jax.grad(loss)(a, b) * ga))(a)
        return op(a, b, **kw), ga, gb, hvp

    return everything


def _levels(name, kw=None, algorithm="transpose"):
    kw = dict(kw or {})
    if not name.startswith(("linear", "conv_general")):
        kw["algorithm"] = algorithm
    op, a, b = CASES[name]
    found = contraction_precisions(_first_and_second_order(op, **kw), a, b)
    assert len(found) >= 4, found     # forward, two gradients, second order
    return found


@pytest.mark.parametrize("algorithm", ["transpose", "taps"])
@pytest.mark.parametrize("name", list(CASES))
def test_default_is_highest_everywhere(name, algorithm):
    assert jax.config.jax_default_matmul_precision is None
    assert {p for _, p in _levels(name, algorithm=algorithm)} == {(HIGHEST, HIGHEST)}


@pytest.mark.parametrize("algorithm", ["transpose", "taps"])
@pytest.mark.parametrize("name", list(CASES))
def test_explicit_precision_reaches_every_contraction(name, algorithm):
    for given, level in (("tensorfloat32", HIGH), (DEFAULT, DEFAULT),
                         ("float32", HIGHEST)):
        found = _levels(name, {"precision": given}, algorithm)
        assert {p for _, p in found} == {(level, level)}, (given, found)


@pytest.mark.parametrize("name", list(CASES))
def test_default_matmul_precision_is_honoured_and_an_argument_wins(name):
    with jax.default_matmul_precision("tensorfloat32"):
        assert {p for _, p in _levels(name)} == {(HIGH, HIGH)}
        assert {p for _, p in _levels(name, {"precision": "highest"})} == {
            (HIGHEST, HIGHEST)}
    with jax.default_matmul_precision("bfloat16"):
        assert {p for _, p in _levels(name)} == {(DEFAULT, DEFAULT)}


def test_a_dot_algorithm_as_the_global_option_leaves_the_default():
    # a preset name in jax's option is not a precision level: jaxgrad keeps HIGHEST
    with jax.default_matmul_precision("F32_F32_F32"):
        assert {p for _, p in _levels("conv2d")} == {(HIGHEST, HIGHEST)}
        assert {p for _, p in _levels("linear")} == {(HIGHEST, HIGHEST)}


@pytest.mark.parametrize("name", ["conv2d", "linear", "conv_general_dilated"])
def test_gradient_traced_after_the_block_keeps_the_forward_precision(name):
    op, a, b = CASES[name]
    with jax.default_matmul_precision("tensorfloat32"):
        y, vjp = jax.vjp(op, a, b)
    assert jax.config.jax_default_matmul_precision is None
    found = contraction_precisions(vjp, jnp.ones_like(y))
    assert found and {p for _, p in found} == {(HIGH, HIGH)}


@pytest.mark.parametrize("algorithm", ["transpose", "taps"])
def test_a_pair_keeps_each_precision_on_its_operand(algorithm):
    # The textbook rules pass the pair unchanged (as JAX's transpose rules do);
    # taps' GEMMs take their operands in the other order and swap it.
    found = _levels("conv2d", {"precision": ("highest", "default")}, algorithm)
    for primitive, pair in found:
        swapped = algorithm == "taps" and primitive == "dot_general"
        assert pair == ((DEFAULT, HIGHEST) if swapped else (HIGHEST, DEFAULT)), found


@pytest.mark.parametrize("given", [None, "highest", "default", (HIGH, HIGHEST)])
def test_values_match_lax_given_the_same_precision(given):
    # jaxgrad's value at each precision is lax's at the precision it resolves to.
    x, w = CASES["conv2d"][1:]
    level = HIGHEST if given is None else given
    expected = lax.conv_general_dilated(x, w, (2, 2), "VALID", precision=level)
    np.testing.assert_allclose(np.asarray(jaxgrad.conv2d(x, w, stride=2, precision=given)),
                               np.asarray(expected), rtol=1e-6, atol=1e-5)
    a, b = CASES["linear"][1:]
    expected = lax.dot_general(a, b, (((2,), (1,)), ((), ())), precision=level)
    np.testing.assert_allclose(np.asarray(jaxgrad.linear(a, b, precision=given)),
                               np.asarray(expected), rtol=1e-6, atol=1e-5)


BAD = [
    ("medium", ValueError, "`precision` must be None, a lax.Precision, one of "
     "'default', 'fastest', 'bfloat16', 'high', 'tensorfloat32', 'bfloat16_3x', "
     "'highest', 'float32', or a pair of these (one per operand), got 'medium'"),
    (3, TypeError, "`precision` must be None, a lax.Precision, one of 'default', "),
    (3, TypeError, "or a pair of these (one per operand), got 3 of type int"),
    (("highest",) * 3, ValueError, "got a tuple of length 3: ('highest', 'highest', "
     "'highest')"),
    (("highest", 1.5), TypeError, "got ('highest', 1.5), whose element 1.5 is of type "
     "float"),
    (("medium", "highest"), ValueError, "got ('medium', 'highest'), whose element "
     "'medium' is not a precision name"),
    (lax.DotAlgorithmPreset.F32_F32_F32, TypeError,
     "`precision` lax.DotAlgorithmPreset.F32_F32_F32 is a dot algorithm; jaxgrad takes "
     "precision levels only"),
    (lax.DotAlgorithm(jnp.float32, jnp.float32, jnp.float32), TypeError,
     "`precision` DotAlgorithm(lhs_precision_type="),
]


@pytest.mark.parametrize("bad,error,message", BAD)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_precision_is_loud(name, bad, error, message):
    op, a, b = CASES[name]
    fn = name.split(".")[-1]
    fn = "conv2d" if name.startswith("conv2d_") else fn    # the conv2d variants
    with pytest.raises(error) as info:
        op(a, b, precision=bad)
    text = str(info.value)
    assert text.startswith(f"{fn}: "), text
    assert message in text, text


def test_dot_algorithm_message_says_why():
    with pytest.raises(TypeError, match=r"^conv2d: `precision` lax\.DotAlgorithmPreset\.F32_F32_F32 is a dot algorithm; "
                       r"jaxgrad takes precision levels only \(lax's convolution "
                       r"ignores dot algorithms and would run at DEFAULT precision\); "
                       r"pass a lax.Precision such as 'highest'$"):
        jaxgrad.conv2d(*CASES["conv2d"][1:], precision=lax.DotAlgorithmPreset.F32_F32_F32)


def _compiled_without_precision(op, a, b, precision) -> str:
    def grads(a, b):
        return jax.grad(lambda a, b: jnp.sum(op(a, b, precision=precision) ** 2),
                        argnums=(0, 1))(a, b)
    text = jax.jit(grads).lower(a, b).compile().as_text()
    text = re.sub(r",? operand_precision=\{[^}]*\}", "", text)
    text = re.sub(r", metadata=\{[^}]*\}", "", text)
    # the instructions only (not the tables of source lines that follow them)
    return "\n".join(line for line in text.splitlines()
                     if line.lstrip().startswith(("%", "ROOT", "ENTRY")))


@pytest.mark.parametrize("name", ["conv2d", "conv2d_groups", "conv_transpose2d", "linear"])
def test_highest_compiles_to_the_same_cpu_program(name):
    # The suite runs on CPU: there HIGHEST is plain float32, and XLA's CPU
    # program for it is the one for DEFAULT, operation for operation, so the
    # default costs no speed there (the GPU, where it rules out TF32, is unmeasured).
    assert jax.default_backend() == "cpu"
    op, a, b = CASES[name]
    highest = _compiled_without_precision(op, a, b, "highest")
    default = _compiled_without_precision(op, a, b, "default")
    assert highest.count(" convolution(") + highest.count(" dot(") >= 2
    assert highest == default


def test_numpy_float64_with_x64_off_is_float32_as_in_jax():
    # JAX narrows NumPy float64 data to float32 when x64 is off; jaxgrad's dtype
    # checks see the same dtypes JAX does, so such data mixes with float32 arrays.
    x, w = np.arange(6.0).reshape(1, 1, 6), np.array([[[1.0, -2.0, 1.0]]])
    assert x.dtype == np.float64
    with jax.enable_x64(False):
        y = jaxgrad.conv1d(x, jnp.asarray(w))
        z = jaxgrad.linear(x[0], jnp.ones((2, 6)))
    assert y.dtype == jnp.float32 and z.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y), [[[0.0, 0.0, 0.0, 0.0]]])  # x'' = 0
    np.testing.assert_array_equal(np.asarray(z), [[15.0, 15.0]])
    with jax.enable_x64(True), pytest.raises(
            TypeError, match=r"^conv1d: arguments must share one dtype, but `input` is "
                             r"float64, `weight` is float32$"):
        jaxgrad.conv1d(x, jnp.asarray(w, jnp.float32))
