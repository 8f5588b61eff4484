"""Zero-copy conversion between JAX arrays and PyTorch tensors (DLPack).

  to_torch(array, *, copy=False)     jax.Array    -> torch.Tensor
  from_torch(tensor, *, copy=False)  torch.Tensor -> jax.Array

torch is optional: it is imported when a function is first called.
"""

from ._interop import from_torch as from_torch
from ._interop import to_torch as to_torch

__all__ = ["to_torch", "from_torch"]
