"""Type aliases for jaxgrad's public signatures.

Arrays are annotated ``ArrayLike`` in (JAX or NumPy arrays) and
``jax.Array`` out; their layouts are given as shape strings in each
docstring's ``Args`` section, e.g. ``(N, C_in, *spatial)``.
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np
from jax import Array as Array
from jax import lax
from jax.typing import DTypeLike as DTypeLike

#: An array argument: a ``jax.Array``, a NumPy array or a NumPy scalar. Unlike
#: ``jax.typing.ArrayLike`` it has no Python scalars: jaxgrad takes its dtype
#: from the argument and refuses values that have none.
ArrayLike = Array | np.ndarray | np.generic

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
