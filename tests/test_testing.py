"""``jaxgrad.testing``: check_parity against torch and check_vjp against finite
differences must pass correct rules and catch wrong ones with a readable table.

The wrong rules are ``jax.custom_vjp`` functions whose backward is off by a
factor (first order) or is not differentiable correctly (second order only).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxgrad
from jaxgrad._checking._testing import compare
from jaxgrad.testing import Comparison, Report, check_parity, check_vjp


@jax.custom_vjp
def double_grad_tanh(x):
    """tanh whose backward is twice the true one."""
    return jnp.tanh(x)


double_grad_tanh.defvjp(lambda x: (jnp.tanh(x), x),
                        lambda x, g: (2.0 * g * (1 - jnp.tanh(x) ** 2),))


@jax.custom_vjp
def frozen_cube(x):
    """x³ with a correct first derivative 3x²·g, but x is frozen inside the
    backward, so its derivative (the second order) is missing 6x·g·u."""
    return x ** 3


frozen_cube.defvjp(lambda x: (x ** 3, x),
                   lambda x, g: (3 * jax.lax.stop_gradient(x) ** 2 * g,))


def _normal(rng, shape, dtype="float64"):
    return jnp.asarray(rng.standard_normal(shape), dtype)


# --------------------------------------------------------------------------
# check_parity: correct functions pass.


def test_conv2d_parity_all_orders(rng):
    x, w = _normal(rng, (2, 3, 6, 6)), _normal(rng, (4, 3, 3, 3))
    report = check_parity(lambda x, w: jaxgrad.conv2d(x, w, padding=1, stride=2),
                          lambda x, w: F.conv2d(x, w, padding=1, stride=2), x, w,
                          second_order=True, arg_names=["x", "w"])
    assert [r.name for r in report.rows] == [
        "output", "grad_x", "grad_w", "grad2_x", "grad2_w", "grad2_cot"]
    assert report.passed and isinstance(report, Report)
    assert all(r.max_rel < 1e-12 and r.rtol == 1e-10 for r in report.rows)
    assert report["grad_w"].shape == (4, 3, 3, 3) and report["output"].dtype == "float64"


def test_jit_and_eager_agree(rng):
    x = _normal(rng, (3, 4), "float32")
    a = check_parity(jaxgrad.sigmoid, torch.sigmoid, x, jit=True)
    b = check_parity(jaxgrad.sigmoid, torch.sigmoid, x, jit=False)
    assert a.passed and b.passed and [r.name for r in a.rows] == ["output", "grad_arg0"]
    assert a["output"].rtol == 1e-5 and a["output"].dtype == "float32"


def test_integer_targets_and_python_args_pass_through(rng):
    logits = _normal(rng, (4, 5))
    target = jnp.array([0, 4, 2, 2], jnp.int32)  # torch receives int64
    report = check_parity(lambda x, t, r: jaxgrad.cross_entropy(x, t, reduction=r),
                          lambda x, t, r: F.cross_entropy(x, t, reduction=r),
                          logits, target, "sum", second_order=True)
    assert [r.name for r in report.rows] == ["output", "grad_arg0", "grad2_arg0",
                                            "grad2_cot"]
    slope = check_parity(jaxgrad.leaky_relu, F.leaky_relu, _normal(rng, (5,)), 0.3)
    assert slope.passed


def test_pytree_outputs_with_integer_leaves(rng):
    x = _normal(rng, (3, 4))
    report = check_parity(lambda x: (jnp.max(x, 1), jnp.argmax(x, 1)),
                          lambda x: torch.max(x, 1), x)  # a torch.return_types
    assert [r.name for r in report.rows] == ["output[0]", "output[1]", "grad_arg0"]
    assert report["output[1]"].rtol == 0.0  # indices must match exactly
    dicts = check_parity(lambda x: {"a": jnp.sin(x), "b": 2 * x},
                         lambda x: {"a": torch.sin(x), "b": 2 * x}, x,
                         second_order=True)
    assert "output['a']" in [r.name for r in dicts.rows]
    assert "grad2_cot['b']" in [r.name for r in dicts.rows]


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-5), ("float16", 5e-3),
                                        ("bfloat16", 2e-2)])
def test_per_dtype_default_tolerances(rng, dtype, rtol):
    x, w = _normal(rng, (2, 3, 8), dtype), _normal(rng, (4, 3, 3), dtype)
    report = check_parity(jaxgrad.conv1d, F.conv1d, x, w, reference_dtype="float64")
    assert report.passed
    assert {r.rtol for r in report.rows} == {rtol}
    assert {r.dtype for r in report.rows} == {dtype}


def test_argnums_selects_gradients(rng):
    x, w = _normal(rng, (1, 2, 5)), _normal(rng, (3, 2, 2))
    report = check_parity(jaxgrad.conv1d, F.conv1d, x, w, argnums=1)
    assert [r.name for r in report.rows] == ["output", "grad_arg1"]


# --------------------------------------------------------------------------
# check_parity: wrong functions fail with a table.


def test_wrong_vjp_is_caught_with_a_table(rng):
    x = _normal(rng, (2, 3))
    with pytest.raises(AssertionError) as info:
        check_parity(double_grad_tanh, torch.tanh, x)
    lines = str(info.value).strip().splitlines()
    assert lines[0] == "check_parity(double_grad_tanh vs torch tanh): 1 of 2 failed"
    assert lines[1].split() == ["array", "dtype", "shape", "max", "abs", "max", "rel",
                                "rtol", "atol", "ok"]
    assert lines[2].split()[0] == "output" and lines[2].split()[-1] == "yes"
    grad = lines[3].split()
    assert grad[0] == "grad_arg0" and grad[-1] == "FAIL"
    assert float(grad[-4]) == pytest.approx(1.0, rel=1e-9)  # 2x off: rel error 1


def test_wrong_second_order_is_caught_only_at_second_order(rng):
    x = _normal(rng, (4,))
    assert check_parity(frozen_cube, lambda x: x ** 3, x).passed
    with pytest.raises(AssertionError, match=r"grad2_arg0 +float64 +\(4,\).*FAIL"):
        check_parity(frozen_cube, lambda x: x ** 3, x, second_order=True)


def test_dtype_and_shape_mismatches_are_reported(rng):
    x = _normal(rng, (2, 3), "float32")
    with pytest.raises(AssertionError, match=r"output: dtype float64, expected float32"):
        check_parity(lambda x: jnp.asarray(x, jnp.float64) * 2, lambda x: x * 2, x)
    with pytest.raises(AssertionError, match=r"output: shape \(3, 2\), reference \(2, 3\)"):
        check_parity(lambda x: x.T, lambda x: x, x, argnums=())
    with pytest.raises(AssertionError, match=r"check_parity: jax_fn returned 2 arrays .* "
                       r"but torch_fn returned 1"):
        check_parity(lambda x: (x, x), lambda x: x, x)


def test_rtol_and_atol_overrides(rng):
    x = _normal(rng, (3,))
    loose = check_parity(lambda x: x * (1 + 1e-6), lambda x: x, x, rtol=1e-5)
    assert loose.passed and loose["output"].rtol == 1e-5
    with pytest.raises(AssertionError, match="1 of 2 failed"):
        check_parity(lambda x: x + 1e-6, lambda x: x, x)
    assert check_parity(lambda x: x + 1e-6, lambda x: x, x, atol=1e-5).passed


def test_argument_errors(rng):
    x = _normal(rng, (3,))
    t = jnp.array([1, 2])
    with pytest.raises(TypeError, match=r"check_parity: `argnums` selects args\[1\] "
                       r"\(int.*\), but only floating-point or complex arrays can be "
                       r"differentiated"):
        check_parity(lambda x, t: x, lambda x, t: x, x, t, argnums=(0, 1))
    with pytest.raises(ValueError, match=r"check_parity: `argnums` must index the 1 "
                       r"arguments, got 3"):
        check_parity(jnp.sin, torch.sin, x, argnums=3)
    with pytest.raises(ValueError, match=r"check_parity: `arg_names` must name all 1"):
        check_parity(jnp.sin, torch.sin, x, arg_names=["a", "b"])
    with jax.enable_x64(False), pytest.raises(
            TypeError, match=r"check_parity: `args\[0\]` has dtype float64, but "
            r"JAX's 64-bit mode is off"):
        check_parity(jnp.sin, torch.sin, np.ones(3))


def test_cotangent_is_not_the_usual_draw_of_the_arguments():
    """An input drawn with np.random.default_rng(0), the usual idiom, is not
    also the cotangent of seed 0: with it, layer_norm's input gradient is
    about zero (the cotangent parallel to the input is projected out) and
    float32 rounding noise failed the 1e-5 tolerance."""
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    report = check_parity(lambda a: jaxgrad.layer_norm(a, (8, 8)),
                          lambda a: F.layer_norm(a, (8, 8)), x)
    assert report["grad_arg0"].max_rel < 1e-5


def _complex(rng, shape, dtype="complex128"):
    return jnp.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape), dtype)


@pytest.mark.parametrize("jax_fn, torch_fn", [
    (jnp.sin, torch.sin),                     # holomorphic: ḡ·cos x vs g·conj(cos x)
    (jnp.abs, torch.abs),                     # complex in, real out
    (lambda x: jnp.real(x) * x, lambda x: x.real * x),   # not holomorphic
])
def test_complex_arguments_in_jax_convention(rng, jax_fn, torch_fn):
    """Complex arguments are differentiated by default; torch's gradients are
    the conjugates of JAX's VJPs, at first and second order (plain jnp vs
    torch, both frameworks' own autodiff)."""
    x = _complex(rng, (2, 3))
    report = check_parity(jax_fn, torch_fn, x, second_order=True)
    assert [row.name for row in report.rows] == ["output", "grad_arg0", "grad2_arg0",
                                                 "grad2_cot"]
    assert report["grad_arg0"].dtype == "complex128" and report["grad_arg0"].max_rel < 1e-14
    low = check_parity(jax_fn, torch_fn, _complex(rng, (4,), "complex64"))
    assert low["grad_arg0"].dtype == "complex64" and low["grad_arg0"].rtol == 1e-5


def test_complex_catches_a_vjp_in_torch_convention(rng):
    """A VJP that conjugates its cotangent (torch's A^H instead of JAX's Aᵀ)
    fails, as does a forward that conjugates."""
    @jax.custom_vjp
    def twice(x):
        return 2 * x

    twice.defvjp(lambda x: (2 * x, None), lambda _, g: (2 * jnp.conj(g),))
    x = _complex(rng, (3,))
    with pytest.raises(AssertionError, match=r"grad_arg0 .* FAIL"):
        check_parity(twice, lambda x: 2 * x, x)
    with pytest.raises(AssertionError, match=r"output .* FAIL"):
        check_parity(jnp.conj, lambda x: x, x)


def test_complex_with_reference_dtype(rng):
    """reference_dtype="float64": complex64 arguments reach torch as
    complex128 (also with x64 off), a real output of complex arguments is
    expected in float32, a complex one in complex64."""
    z = _complex(rng, (2, 3), "complex64")
    seen = []

    def torch_twice(a):
        seen.append(a.dtype)
        return 2 * a

    for x64 in (True, False):
        with jax.enable_x64(x64):
            report = check_parity(lambda a: 2 * a, torch_twice, z, reference_dtype="float64")
        assert seen.pop() == torch.complex128 and report["output"].dtype == "complex64"
    report = check_parity(lambda a, b: (jnp.abs(a), a * b[0]),
                          lambda a, b: (torch.abs(a), a * b[0]),
                          z, np.ones(3, np.float32), reference_dtype="float64")
    assert [report[n].dtype for n in ("output[0]", "output[1]")] == ["float32", "complex64"]


@pytest.mark.parametrize("jax_fn, torch_fn, note", [
    (lambda a: a * 1.0, lambda a: a * (1 + 0j), "dtype float64, expected complex128"),
    (lambda a: a * (1 + 0j), lambda a: a * 1.0, "dtype complex128, expected float64"),
])
def test_real_against_complex_output_is_a_failed_row(rng, jax_fn, torch_fn, note):
    with pytest.raises(AssertionError, match=rf"output: {note}"):
        check_parity(jax_fn, torch_fn, _normal(rng, (3,)))


def test_check_vjp_checks_complex_rules_by_real_and_imaginary_parts(rng):
    """Complex arguments and outputs are compared as their real and imaginary
    parts against central differences: jaxgrad's complex convolution passes
    to second order, a hand-written rule with a wrong conjugation fails, and
    a real input with a complex output (an FFT) passes."""
    x, w = _complex(rng, (1, 2, 5, 5)), _complex(rng, (3, 2, 3, 3))
    with jax.enable_x64(True):
        report = check_vjp(lambda x, w: jaxgrad.conv2d(x, w, padding=1), x, w, order=2,
                           arg_names=["x", "w"])
        assert [r.name for r in report.rows] == [
            "grad_x.real", "grad_x.imag", "grad_w.real", "grad_w.imag",
            "grad2_x.real", "grad2_x.imag", "grad2_w.real", "grad2_w.imag",
            "grad2_cot[0]", "grad2_cot[1]"]
        assert all(r.dtype == "float64" for r in report.rows)
        c = 0.3 + 0.7j

        def scaled(conjugate):
            @jax.custom_vjp
            def f(z):
                return c * z
            # JAX's VJP of z -> c·z is ḡ -> c·ḡ (the transpose, not the adjoint)
            f.defvjp(lambda z: (c * z, None),
                     lambda _, g: (g * (np.conj(c) if conjugate else c),))
            return f

        assert check_vjp(scaled(False), x[0, 0]).passed
        with pytest.raises(AssertionError, match=r"grad_arg0.real .* FAIL"):
            check_vjp(scaled(True), x[0, 0])
        assert check_vjp(jnp.fft.fft, _normal(rng, (6,)), order=2).passed


def test_torch_fn_gets_its_tensors_on_torch_device(rng):
    """Every tensor torch_fn sees (and every cotangent) is on torch_device, the
    CPU by default, whatever device JAX computed on."""
    x = _normal(rng, (2, 3))
    seen = []

    def torch_fn(x):
        seen.append(x.device)
        y = torch.tanh(x)
        # a tensor torch makes itself lives on the CPU: mixing fails loudly
        return y + torch.zeros(y.shape, dtype=y.dtype)

    check_parity(jaxgrad.tanh, torch_fn, x, second_order=True)
    check_parity(jaxgrad.tanh, torch_fn, x, torch_device=torch.device("cpu"))
    assert [d.type for d in seen] == ["cpu", "cpu"]
    with pytest.raises(TypeError, match=r"^check_parity: `torch_device` must be a "
                                        r"device name or a torch.device, got int 0$"):
        check_parity(jaxgrad.tanh, torch_fn, x, torch_device=0)
    with pytest.raises(ValueError, match=r"^check_parity: `torch_device` 'gpu0' is "
                                         r"not a torch device"):
        check_parity(jaxgrad.tanh, torch_fn, x, torch_device="gpu0")


# --------------------------------------------------------------------------
# check_vjp.


def test_check_vjp_passes_hand_written_rules(rng):
    x, w = _normal(rng, (1, 2, 5, 5)), _normal(rng, (3, 2, 2, 2))
    report = check_vjp(lambda x, w: jaxgrad.conv2d(x, w, stride=2), x, w, order=2,
                       arg_names=["x", "w"])
    assert [r.name for r in report.rows] == [
        "grad_x", "grad_w", "grad2_x", "grad2_w", "grad2_cot"]
    assert all(r.max_rel < 1e-7 for r in report.rows)


def test_check_vjp_casts_to_float64(rng):
    report = check_vjp(jaxgrad.gelu, _normal(rng, (6,), "float32"), order=2)
    assert {r.dtype for r in report.rows} == {"float64"} and report.passed


def test_check_vjp_catches_a_wrong_factor(rng):
    with pytest.raises(AssertionError) as info:
        check_vjp(double_grad_tanh, _normal(rng, (3,)))
    text = str(info.value)
    assert "check_vjp(double_grad_tanh vs central differences, eps=1e-05): 1 of 1 failed" in text
    assert "grad_arg0" in text and "FAIL" in text


def test_check_vjp_catches_a_wrong_second_order(rng):
    x = _normal(rng, (3,))
    assert check_vjp(frozen_cube, x).passed
    with pytest.raises(AssertionError) as info:
        check_vjp(frozen_cube, x, order=2)
    rows = {line.split()[0]: line.split()[-1] for line in str(info.value).strip().splitlines()[2:]}
    assert rows == {"grad_arg0": "yes", "grad2_arg0": "FAIL", "grad2_cot": "yes"}


def test_check_vjp_integer_args_are_constants(rng):
    logits = _normal(rng, (3, 4))
    report = check_vjp(jaxgrad.cross_entropy, logits, jnp.array([0, 3, 1]), order=2)
    assert [r.name for r in report.rows] == ["grad_arg0", "grad2_arg0", "grad2_cot"]


def test_check_vjp_errors():
    with jax.enable_x64(False), pytest.raises(
            RuntimeError, match=r"check_vjp: finite differences need float64, but "
            r"JAX's 64-bit mode is off"):
        check_vjp(jnp.sin, jnp.ones(2, jnp.float32))
    with pytest.raises(ValueError, match=r"check_vjp: `order` must be 1 or 2, got 3"):
        check_vjp(jnp.sin, jnp.ones(2), order=3)
    with pytest.raises(ValueError, match=r"check_vjp: `eps` must be positive, got 0"):
        check_vjp(jnp.sin, jnp.ones(2), eps=0)


# --------------------------------------------------------------------------
# Rows and the report.


def test_compare_rules():
    inf = np.array([np.inf, -np.inf, 1.0])
    assert compare("a", inf, inf).passed  # matching infinities are equal
    assert not compare("a", np.array([np.nan, 1.0]), np.array([0.0, 1.0])).passed
    row = compare("a", np.array([1.0, 2.0], np.float32), np.array([1.0, 2.1]))
    assert (row.max_abs, row.rtol, row.passed) == (pytest.approx(0.1),
                                                   1e-5, False)
    assert row.max_rel == pytest.approx(0.1 / 2.1)
    zero = compare("z", np.array([1e-12]), np.array([0.0]))
    assert zero.max_rel == 1e-12 and zero.passed  # all-zero reference: rel = abs


def test_report_lookup_and_table():
    row = Comparison("output", "float32", (2,), 0.5, 0.25, 1e-5, 0.0, False,
                     "dtype float64, expected float32")
    report = Report("title", (row,))
    assert not report.passed and report.failures == (row,)
    assert report["output"] is row
    with pytest.raises(KeyError, match=r"Report: no row 'grad'; rows are \['output'\]"):
        report["grad"]
    assert str(report).splitlines() == [
        "title: 1 of 1 failed",
        "array   dtype    shape  max abs    max rel    rtol     atol     ok",
        "output  float32  (2,)   5.000e-01  2.500e-01  1.0e-05  0.0e+00  FAIL",
        "output: dtype float64, expected float32"]


def test_integer_ops_compare_their_output_only(rng):
    """An integer op has no gradient of any order: with second_order too, the
    report holds the output row alone, exact, and a wrong integer fails it."""
    x, w = rng.integers(-5, 6, (2, 4, 7, 7)), rng.integers(-3, 4, (6, 4, 3, 3))
    report = check_parity(jaxgrad.conv2d, F.conv2d, x, w, second_order=True)
    assert [row.name for row in report.rows] == ["output"]
    assert report["output"].dtype == "int64" and report["output"].rtol == 0
    with pytest.raises(AssertionError, match="output"):
        check_parity(lambda x, w: jaxgrad.conv2d(x, w) + 1, F.conv2d, x, w, second_order=True)
    # narrow integers reach torch in their own dtype: int8 sums wrap around in
    # both (compiled, not constant-folded, which saturates), and the dtype is checked
    x8 = np.array([[[-7, -4, 5, 8, -1, 2]]], np.int8)
    w8 = np.array([[[100, 100]]], np.int8)
    report = check_parity(jaxgrad.conv1d, F.conv1d, x8, w8)
    assert report["output"].dtype == "int8" and report["output"].max_abs == 0
    assert np.abs(F.conv1d(torch.from_numpy(x8).long(), torch.from_numpy(w8).long())).max() > 127
    with pytest.raises(AssertionError, match=r"dtype int16, expected int8"):
        check_parity(lambda x, w: jaxgrad.conv1d(x, w).astype(jnp.int16), F.conv1d, x8, w8)
    # int32 stands for torch's int64 (its index dtype): handed over and expected as such
    report = check_parity(jaxgrad.conv2d, F.conv2d, x.astype(np.int32), w.astype(np.int32))
    assert report["output"].dtype == "int32" and report["output"].max_abs == 0
    # check_vjp has nothing to differentiate
    with pytest.raises(TypeError, match=r"^check_vjp: no floating-point or complex argument "
                                        r"to differentiate, got dtypes \['int64', 'int64'\]"):
        check_vjp(jaxgrad.conv2d, x, w)
