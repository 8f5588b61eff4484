"""Type aliases for jaxgrad's public signatures.

Arrays are annotated with JAX's own types (``jax.typing.ArrayLike`` in,
``jax.Array`` out); their layouts are given as shape strings in each
docstring's ``Args`` section, e.g. ``(N, C_in, *spatial)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from jax import Array as Array
from jax import lax
from jax.typing import ArrayLike as ArrayLike
from jax.typing import DTypeLike as DTypeLike

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
