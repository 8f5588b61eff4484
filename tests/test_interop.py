"""``jaxgrad.interop``: DLPack conversion between JAX and torch.

Aliasing is checked by writing into one side and reading the other, and by
comparing buffer addresses; dtypes must round-trip exactly; 64-bit tensors
are refused while x64 is off (the test session has it on, so those tests
switch it off locally with ``jax.enable_x64(False)``).
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxgrad
from jaxgrad.interop import from_torch, to_torch

DTYPES = ["float64", "float32", "float16", "bfloat16", "int32", "int64", "int8",
          "uint8", "bool"]


def _values(dtype: str) -> np.ndarray:
    return np.array([[0, 1, 2], [3, 4, 5]]).astype(jnp.dtype(dtype))


def test_public_namespaces():
    assert jaxgrad.interop.__all__ == ["to_torch", "from_torch"]
    assert "interop" in jaxgrad.__all__ and "testing" in jaxgrad.__all__


def test_importing_jaxgrad_does_not_import_torch():
    code = "import sys, jaxgrad, jaxgrad.interop, jaxgrad.testing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_torch_preserves_dtype_values_and_aliases(dtype):
    a = jnp.asarray(_values(dtype))
    t = to_torch(a)
    assert str(t.dtype) == f"torch.{dtype}"
    assert t.shape == a.shape and t.requires_grad is False
    assert t.data_ptr() == a.unsafe_buffer_pointer()  # zero-copy
    assert t.to(torch.float64).tolist() == np.asarray(a, np.float64).tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_torch_preserves_dtype_values_and_aliases(dtype):
    # clone(): torch's allocator aligns buffers to 64 bytes; a NumPy buffer
    # (torch.from_numpy) may not be, and JAX copies unaligned buffers.
    t = (torch.from_numpy(_values(dtype)) if dtype != "bfloat16" else
         torch.arange(6.0).reshape(2, 3).to(torch.bfloat16)).clone()
    a = from_torch(t)
    assert a.dtype == jnp.dtype(dtype) and a.shape == (2, 3)
    assert a.unsafe_buffer_pointer() == t.data_ptr()
    assert np.asarray(a, np.float64).tolist() == t.to(torch.float64).tolist()


def test_writes_show_through_unless_copied():
    t = torch.zeros(4)
    shared, copied = from_torch(t), from_torch(t, copy=True)
    t.add_(1.5)
    assert shared.tolist() == [1.5] * 4
    assert copied.tolist() == [0.0] * 4
    a = jnp.zeros(3, jnp.float32)
    alias, own = to_torch(a), to_torch(a, copy=True)
    own.add_(2.0)
    assert a.tolist() == [0.0] * 3 and alias.tolist() == [0.0] * 3
    assert own.data_ptr() != a.unsafe_buffer_pointer()


def test_round_trip_is_exact_in_every_float_dtype(rng):
    for dtype in ["float64", "float32", "float16", "bfloat16"]:
        a = jnp.asarray(rng.standard_normal((3, 5)), dtype)
        back = from_torch(to_torch(a))
        assert back.dtype == a.dtype
        assert np.array_equal(np.asarray(back, np.float64), np.asarray(a, np.float64))


def test_requires_grad_tensors_are_detached():
    t = torch.tensor([1.0, -2.0], requires_grad=True)
    a = from_torch(t)
    assert a.tolist() == [1.0, -2.0] and t.requires_grad


def test_scalars_and_empty_arrays():
    assert from_torch(torch.tensor(3.0)).shape == ()
    assert from_torch(torch.ones(0, 3)).shape == (0, 3)
    assert tuple(to_torch(jnp.ones((0, 2))).shape) == (0, 2)
    assert to_torch(jnp.float32(2.5)).item() == 2.5


def test_transposed_views_are_shared_strided_views_need_copy():
    base = torch.arange(12.0).reshape(3, 4)
    a = from_torch(base.t())  # a permutation of a dense layout: shared
    assert a.tolist() == base.t().tolist()
    base.add_(100.0)
    assert a[0].tolist() == [100.0, 104.0, 108.0]
    with pytest.raises(ValueError, match=r"from_torch: `tensor` is not contiguous "
                       r"\(shape \(3, 2\), strides \(4, 2\)\).*copy=True"):
        from_torch(base[:, ::2])
    assert from_torch(base[:, ::2], copy=True).tolist() == base[:, ::2].tolist()
    assert from_torch(torch.ones(1, 3).expand(2, 3), copy=True).tolist() == [[1.0] * 3] * 2


def test_conjugate_and_negative_views_are_resolved():
    z = torch.tensor([1 + 2j], dtype=torch.complex64).conj()
    assert from_torch(z).tolist() == [1 - 2j]


def test_float64_without_x64_is_an_error_not_a_downcast():
    with jax.enable_x64(False):
        with pytest.raises(TypeError, match=r"from_torch: `tensor` has dtype float64, "
                           r"but JAX's 64-bit mode is off and would silently narrow "
                           r"it to float32; enable it with jax.config.update"):
            from_torch(torch.ones(2, dtype=torch.float64))
        with pytest.raises(TypeError, match=r"from_torch: `tensor` has dtype int64.*int32"):
            from_torch(torch.arange(3))
        assert from_torch(torch.ones(2, dtype=torch.float32)).dtype == jnp.float32
    assert from_torch(torch.ones(2, dtype=torch.float64)).dtype == jnp.float64


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match=r"to_torch: `array` must be a jax.Array, got "
                       r"numpy.ndarray \(use torch.from_numpy"):
        to_torch(np.ones(2))
    with pytest.raises(TypeError, match=r"to_torch: `array` must be a jax.Array, got "
                       r"builtins.list"):
        to_torch([1.0])
    with pytest.raises(TypeError, match=r"from_torch: `tensor` must be a torch.Tensor, "
                       r"got numpy.ndarray"):
        from_torch(np.ones(2))


def test_tracers_are_refused():
    with pytest.raises(TypeError, match=r"to_torch: `array` is a traced value"):
        jax.jit(to_torch)(jnp.ones(2))


def test_devices_jax_cannot_see_are_refused():
    # No GPU here: the `meta` device stands in for any device JAX lacks.
    with pytest.raises(ValueError, match=r"from_torch: `tensor` is on device meta, "
                       r"which JAX cannot see here .*tensor.cpu\(\)"):
        from_torch(torch.empty(2, device="meta"))


def test_missing_torch_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"to_torch: PyTorch is not installed"):
        to_torch(jnp.ones(1))
    with pytest.raises(ImportError, match=r"from_torch: PyTorch is not installed"):
        from_torch(None)


def test_converted_arrays_work_under_jit_and_vmap():
    a = from_torch(torch.arange(6.0, dtype=torch.float32).reshape(2, 3))
    out = jax.jit(jax.vmap(jaxgrad.relu))(a - 2.0)
    assert out.dtype == jnp.float32
    assert out.tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
