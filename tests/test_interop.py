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
from jaxgrad.interop import from_torch, params_from_torch, params_to_torch, to_torch

DTYPES = ["float64", "float32", "float16", "bfloat16", "int32", "int64", "int8",
          "uint8", "bool"]


def _values(dtype: str) -> np.ndarray:
    return np.array([[0, 1, 2], [3, 4, 5]]).astype(jnp.dtype(dtype))


def test_public_namespaces():
    assert jaxgrad.interop.__all__ == ["to_torch", "from_torch", "params_from_torch",
                                       "params_to_torch"]
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


# --------------------------------------------------------------------------
# params_from_torch / params_to_torch: a module's state_dict as a JAX dict.


def _block() -> torch.nn.Module:
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3),
                                torch.nn.Linear(4, 5, bias=False))
    block[1].running_mean.uniform_()
    block[1].num_batches_tracked.fill_(7)
    return block


STATE = [("0.weight", (3, 2, 3, 3)), ("0.bias", (3,)), ("1.weight", (3,)),
         ("1.bias", (3,)), ("1.running_mean", (3,)), ("1.running_var", (3,)),
         ("1.num_batches_tracked", ()), ("2.weight", (5, 4))]


def test_params_from_torch_keeps_names_order_shapes_dtypes_and_values():
    block = _block()
    params = params_from_torch(block)
    assert [(k, v.shape) for k, v in params.items()] == STATE
    dtypes = {k: str(v.dtype) for k, v in params.items()}
    assert dtypes.pop("1.num_batches_tracked") == "int64"
    assert set(dtypes.values()) == {"float32"}
    for key, tensor in block.state_dict().items():
        assert np.array_equal(np.asarray(params[key]), tensor.numpy()), key


def test_params_from_torch_casts_floating_entries_only():
    for dtype, name in [("float64", "float64"), (jnp.float16, "float16"),
                        (torch.bfloat16, "bfloat16")]:
        params = params_from_torch(_block(), dtype=dtype)
        assert params["0.weight"].dtype == jnp.dtype(name)
        assert params["1.running_var"].dtype == params["0.weight"].dtype
        assert params["1.num_batches_tracked"].dtype == jnp.int64
        assert int(params["1.num_batches_tracked"]) == 7


def test_params_from_torch_copies():
    block = _block()
    params = params_from_torch(block)
    with torch.no_grad():
        block[0].weight.add_(1.0)
    block[1].running_mean.zero_()
    assert not np.array_equal(np.asarray(params["0.weight"]),
                              block[0].weight.detach().numpy())
    assert np.asarray(params["1.running_mean"]).any()


def test_params_from_torch_nested_and_state_dict_input():
    block = _block()
    nested = params_from_torch(block.state_dict(), nested=True)
    assert sorted(nested) == ["0", "1", "2"]
    assert sorted(nested["1"]) == ["bias", "num_batches_tracked", "running_mean",
                                   "running_var", "weight"]
    assert nested["2"]["weight"].shape == (5, 4)
    flat = params_from_torch(block)
    assert np.array_equal(nested["0"]["bias"], flat["0.bias"])


def test_params_from_torch_without_x64():
    with jax.enable_x64(False):
        params = params_from_torch(_block())
        assert params["1.num_batches_tracked"].dtype == jnp.int32   # exact: it fits
        assert int(params["1.num_batches_tracked"]) == 7
        with pytest.raises(TypeError, match=r"params_from_torch: `module_or_state_dict` "
                           r"entry 'w' is float64, but JAX's 64-bit mode is off.*"
                           r"dtype='float32'"):
            params_from_torch({"w": torch.ones(2, dtype=torch.float64)})
        cast = params_from_torch({"w": torch.ones(2, dtype=torch.float64)}, dtype="float32")
        assert cast["w"].dtype == jnp.float32
        with pytest.raises(TypeError, match=r"entry 'n' is int64 with values outside "
                           r"int32"):
            params_from_torch({"n": torch.tensor(2 ** 40)})


def test_params_from_torch_bad_arguments():
    with pytest.raises(TypeError, match=r"params_from_torch: `module_or_state_dict` "
                       r"must be a torch.nn.Module or a state_dict .*, got list"):
        params_from_torch([torch.ones(2)])
    with pytest.raises(TypeError, match=r"`module_or_state_dict` must map names \(str\) "
                       r"to tensors, got 'w': ndarray"):
        params_from_torch({"w": np.ones(2)})
    with pytest.raises(ValueError, match=r"params_from_torch: `dtype` must be None or a "
                       r"floating dtype .*, got 'int32'"):
        params_from_torch(_block(), dtype="int32")


def test_round_trip_through_a_jax_update():
    block, target = _block(), _block().double()
    params = params_from_torch(block, dtype="float64")
    updated = {k: v + 1 if jnp.issubdtype(v.dtype, jnp.floating) else v + 3
               for k, v in params.items()}
    assert params_to_torch(updated, target) is target
    for key, tensor in target.state_dict().items():
        assert tensor.dtype == (torch.int64 if "num_batches" in key else torch.float64)
        assert np.array_equal(tensor.numpy(), np.asarray(updated[key])), key
    assert isinstance(target[0].weight, torch.nn.Parameter)
    assert target[0].weight.grad_fn is None                # no autograd history
    # into a float32 module: values cast to the module's dtype
    params_to_torch(updated, block)
    assert block[0].weight.dtype == torch.float32
    np.testing.assert_allclose(block[0].weight.detach().numpy(),
                               np.asarray(updated["0.weight"]), rtol=1e-7)


def test_params_to_torch_new_state_dict_and_nested_params():
    params = params_from_torch(_block(), nested=True)
    state = params_to_torch(params)
    assert list(state) == [k for k, _ in STATE]
    assert state["1.num_batches_tracked"].dtype == torch.int64
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    fresh = _block()
    fresh.load_state_dict(state)      # a state_dict torch accepts as it is
    bf16 = params_to_torch({"w": jnp.ones(2, jnp.bfloat16), "n": np.arange(2)})
    assert bf16["w"].dtype == torch.bfloat16 and bf16["n"].tolist() == [0, 1]


def test_params_to_torch_into_a_state_dict_in_place():
    state = {"w": torch.zeros(2)}
    params_to_torch({"w": jnp.array([1.0, 2.0])}, state)
    assert state["w"].tolist() == [1.0, 2.0]


def test_params_to_torch_strict_names_and_shapes():
    block = _block()
    params = params_from_torch(block)
    del params["1.running_var"]
    params["extra"] = jnp.ones(1)
    with pytest.raises(ValueError, match=r"params_to_torch: `params` must have the names "
                       r"of the target's state_dict \(strict=True\); missing "
                       r"\['1.running_var'\], unexpected \['extra'\]"):
        params_to_torch(params, block)
    del params["extra"]
    params_to_torch(params, block, strict=False)      # the names both have
    params["0.bias"] = jnp.ones(4)
    with pytest.raises(ValueError, match=r"`params` entry '0.bias' has shape \(4,\), "
                       r"but the target's tensor has shape \(3,\)"):
        params_to_torch(params, block, strict=False)
    with pytest.raises(TypeError, match=r"params_to_torch: `params` must be a dict keyed "
                       r"by torch names"):
        params_to_torch([jnp.ones(2)], block)
    with pytest.raises(TypeError, match=r"`params` must hold arrays, got float at 'w'"):
        params_to_torch({"w": 1.0})
