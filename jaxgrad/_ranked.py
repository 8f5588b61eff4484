"""The public rank variants of every op family, generated in one place.

``conv``, ``conv1d`` ... ``adaptive_avg_pool3d`` and the ``jaxgrad.grad``
functions live here, compiled by :func:`jaxgrad._variants.define` from the
``VARIANTS`` each family module declares next to its N-d implementation.
Static analysers read ``_ranked.pyi``, rendered from the same declarations.
"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401 - in the generated annotations

from ._conv import _grad, _transpose
from ._conv import _ops as _conv_ops
from ._pool import _ops as _pool_ops
from ._typing import (Array, ArrayLike, ConvPadding, Precision,  # noqa: F401
                      Shape, Size)
from ._variants import define

VARIANTS = (_conv_ops.VARIANTS + _transpose.VARIANTS + _pool_ops.VARIANTS
            + _grad.VARIANTS)

define(globals(), VARIANTS)
