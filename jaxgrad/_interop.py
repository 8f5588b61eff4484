"""Moving arrays between JAX and PyTorch through DLPack.

  to_torch(array)      jax.Array    -> torch.Tensor
  from_torch(tensor)   torch.Tensor -> jax.Array

Both are zero-copy where DLPack allows it: the result shares the buffer of
its argument (same device, same memory), so writing into one shows in the
other; ``copy=True`` gives an independent buffer. Dtypes are preserved exactly
(float64/32/16, bfloat16, ints, bool). A 64-bit torch tensor is refused while
JAX's 64-bit mode is off: JAX would silently narrow it to 32 bits.

torch is an optional dependency: it is imported on first use, not when
jaxgrad is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from ._typing import Array

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from torch import Tensor
else:
    # torch is optional and imported on first use, so at run time (where
    # typing.get_type_hints resolves the annotations) a tensor is typed Any.
    Tensor = Any

_WIDE = {"float64": "float32", "int64": "int32", "uint64": "uint32",
         "complex128": "complex64"}


def require_torch(fn: str):
    """The ``torch`` module, or an ImportError naming ``fn``."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"{fn}: PyTorch is not installed; jaxgrad.interop and "
                          "jaxgrad.testing need it (pip install torch)") from None
    return torch


def x64_enabled() -> bool:
    """Whether JAX keeps float64 (``jax_enable_x64``, or inside ``jax.enable_x64``)."""
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def check_x64(fn: str, name: str, dtype) -> None:
    """Refuse a 64-bit dtype that JAX would silently narrow (x64 off)."""
    dtype = str(dtype).removeprefix("torch.")
    if dtype in _WIDE and not x64_enabled():
        raise TypeError(
            f"{fn}: `{name}` has dtype {dtype}, but JAX's 64-bit mode is off and "
            f"would silently narrow it to {_WIDE[dtype]}; enable it with "
            "jax.config.update('jax_enable_x64', True) (or inside `with "
            f"jax.enable_x64(True):`), or convert to {_WIDE[dtype]} first")


def _check_jax_array(fn: str, array) -> None:
    if isinstance(array, jax.core.Tracer):
        raise TypeError(f"{fn}: `array` is a traced value (inside jax.jit, jax.grad "
                        "or jax.vmap); DLPack needs a concrete array, so convert "
                        "outside the transformation")
    if not isinstance(array, jax.Array):
        hint = " (use torch.from_numpy for NumPy arrays)" if isinstance(
            array, np.ndarray) else ""
        raise TypeError(f"{fn}: `array` must be a jax.Array, got "
                        f"{type(array).__module__}.{type(array).__name__}{hint}")
    devices = array.sharding.device_set
    if len(devices) > 1:
        raise ValueError(f"{fn}: `array` is spread over {len(devices)} devices; "
                         "DLPack needs one buffer on one device (gather it first, "
                         "e.g. with jax.device_put(array, jax.devices()[0]))")


def to_torch(array: Array, *, copy: bool = False) -> Tensor:
    """A torch tensor holding ``array``'s values, sharing its buffer by default.

    The tensor lives on the array's device (DLPack never moves data: a GPU array
    needs a CUDA build of torch) and has the same dtype and shape.

    Args:
      array: (*), a concrete, single-device ``jax.Array`` of any shape.
      copy: if True, the tensor gets its own buffer. If False (the default) it
        aliases the array's buffer: JAX assumes its arrays never change, so do
        not write into the tensor unless you copied.

    Returns:
      (*), a ``torch.Tensor`` of ``array``'s shape and dtype, with
      ``requires_grad=False``.

    Raises:
      TypeError: ``array`` is not a jax.Array, or is a tracer under a transform.
      ValueError: ``array`` is sharded over several devices.
      ImportError: torch is not installed.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxgrad.interop import to_torch
      >>> t = to_torch(jnp.array([1.5, -2.0], jnp.bfloat16))
      >>> t.dtype, t.tolist()
      (torch.bfloat16, [1.5, -2.0])
    """
    torch = require_torch("to_torch")
    _check_jax_array("to_torch", array)
    tensor = torch.from_dlpack(array)
    return tensor.clone() if copy else tensor


def _is_compact(tensor) -> bool:
    """Whether the strides are a permutation of a dense layout (DLPack-importable)."""
    expected = 1
    for dim in sorted(range(tensor.ndim), key=tensor.stride):
        if tensor.shape[dim] != 1 and tensor.stride(dim) != expected:
            return False
        expected *= tensor.shape[dim]
    return True


def _check_tensor(fn: str, torch, tensor, copy: bool) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{fn}: `tensor` must be a torch.Tensor, got "
                        f"{type(tensor).__module__}.{type(tensor).__name__}")
    check_x64(fn, "tensor", tensor.dtype)
    if tensor.device.type != "cpu" and not _jax_has(tensor.device.type):
        raise ValueError(f"{fn}: `tensor` is on device {tensor.device}, which JAX "
                         f"cannot see here (JAX devices: {jax.devices()}); move it "
                         "with tensor.cpu() first")
    if not copy and not _is_compact(tensor):
        raise ValueError(f"{fn}: `tensor` is not contiguous (shape "
                         f"{tuple(tensor.shape)}, strides {tensor.stride()}), so it "
                         "cannot be shared; pass copy=True or call .contiguous()")


def _jax_has(device_type: str) -> bool:
    platform = "gpu" if device_type == "cuda" else device_type
    try:
        return bool(jax.devices(platform))
    except RuntimeError:
        return False


def from_torch(tensor: Tensor, *, copy: bool = False) -> Array:
    """A jax.Array holding ``tensor``'s values, sharing its buffer by default.

    Tensors that require grad are detached (gradients do not flow across the
    frameworks). Transposed views are shared as they are; other non-contiguous
    views (slices with steps, broadcasts) cannot be. JAX copies a buffer that
    is not 64-byte aligned (torch's own allocations are; a tensor made with
    ``torch.from_numpy`` may not be), so the result is then not shared.

    Args:
      tensor: (*), a ``torch.Tensor`` of any shape, on the CPU or on a device
        JAX also uses.
      copy: if True, the array gets its own buffer (any strided view is fine).
        If False (the default) the array aliases the tensor's memory: writes
        into the tensor show in the array, which JAX assumes never changes.

    Returns:
      (*), a ``jax.Array`` of ``tensor``'s shape and dtype, on its device.

    Raises:
      TypeError: ``tensor`` is not a tensor, or is 64-bit while JAX's 64-bit
        mode is off.
      ValueError: ``tensor`` is on a device JAX does not have, or is a
        non-contiguous view and ``copy`` is False.
      ImportError: torch is not installed.

    Example:
      >>> import torch
      >>> from jaxgrad.interop import from_torch
      >>> a = from_torch(torch.tensor([1.0, 2.0], requires_grad=True))
      >>> a.dtype, a.tolist()
      (dtype('float32'), [1.0, 2.0])
    """
    torch = require_torch("from_torch")
    _check_tensor("from_torch", torch, tensor, copy)
    # DLPack cannot carry torch's lazy conjugate / negative views: resolve them.
    tensor = tensor.detach().resolve_conj().resolve_neg()
    if copy:
        # jax.dlpack.from_dlpack(copy=True) still aliases CPU buffers (jax 0.10.2):
        # clone here, and let the new array own the clone.
        tensor = tensor.clone(memory_format=torch.contiguous_format)
    return jax.dlpack.from_dlpack(tensor)
