"""Conversion between JAX and PyTorch: arrays (zero-copy, DLPack) and model state.

  to_torch(array, *, copy=False)     jax.Array    -> torch.Tensor
  from_torch(tensor, *, copy=False)  torch.Tensor -> jax.Array
  params_from_torch(module_or_state_dict, *, dtype=None, nested=False)
                                     a module's state_dict (parameters and
                                     buffers) -> {torch name: jax.Array}
  params_to_torch(params, module_or_state_dict=None, *, strict=True)
                                     that dict -> the module's tensors (in
                                     place) or a new state_dict

torch is optional: it is imported when a function is first called.
"""

from ._interop import from_torch as from_torch
from ._interop import to_torch as to_torch
from ._params import params_from_torch as params_from_torch
from ._params import params_to_torch as params_to_torch

__all__ = ["to_torch", "from_torch", "params_from_torch", "params_to_torch"]
