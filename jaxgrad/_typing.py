"""Type aliases for jaxgrad's public signatures.

Arrays are annotated ``ArrayLike`` in (JAX or NumPy arrays, Python numbers or
lists of numbers) and ``jax.Array`` out; their layouts are given as shape
strings in each docstring's ``Args`` section, e.g. ``(N, C_in, *spatial)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jax import Array as Array
from jax import lax
from jax.typing import DTypeLike as DTypeLike

#: An array argument: a ``jax.Array``, a NumPy array or scalar, a Python number
#: or a (nested) list of numbers. Python values become arrays of the dtype of
#: the call's other float arrays (else JAX's default float), as Python scalars
#: do in ``jnp`` arithmetic; a torch tensor is refused with a pointer to
#: ``jaxgrad.interop.from_torch`` (``_args.float_array``).
ArrayLike = Array | np.ndarray | np.generic | float | Sequence[Any]

#: One int for every spatial dim, or one per dim.
Size = int | Sequence[int]
#: An int, one int per dim, one ``(lo, hi)`` pair per dim, or "valid"/"same".
ConvPadding = int | str | Sequence[int] | Sequence[tuple[int, int]]
#: A full array shape.
Shape = Sequence[int]
#: None (jaxgrad's default: full float32, see ``docs/precision.md``), a
#: ``lax.Precision`` or its name, or one per operand.
Precision = (None | str | lax.Precision
             | tuple[str | lax.Precision, str | lax.Precision])

__all__ = ["Array", "ArrayLike", "ConvPadding", "DTypeLike", "Precision", "Shape", "Size"]
