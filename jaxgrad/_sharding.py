"""Sharding of jaxgrad's contractions: every sharding rule of the library.

With ``AxisType.Explicit`` mesh axes every array's type carries its sharding,
and a contraction over a dim that is split across devices (the batch n in
w̄ = Σ_n ...) has no sharding jax can infer: each device holds a partial sum.
The summed result is replicated along every mesh axis a summed dim was split
on (XLA inserts the all-reduce); each kept output dim inherits the axes of the
operand dim it comes from unless they were summed over or already used.
Without explicit axes (no mesh, Auto, or Manual inside shard_map) every
function here returns None (or its input) and the partitioner decides.

The matching of cotangents to their primals' varying axes inside ``shard_map``
is part of every rule's epilogue (``_rules.match_vma``).
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec


def _mesh_axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def contraction_sharding(operand, kept, summed):
    """Explicit output sharding of a contraction, or None without explicit axes.

    ``kept`` holds, per output dim, the ``PartitionSpec`` entry of the operand dim
    it comes from (None for a dim with no source); ``summed`` the entries of the
    contracted dims of both operands. ``operand`` supplies the mesh.
    """
    mesh = jax.typeof(operand).sharding.mesh
    if not mesh.explicit_axes:
        return None
    used = {axis for entry in summed for axis in _mesh_axes(entry)}
    out = []
    for entry in kept:
        axes = _mesh_axes(entry)
        out.append(None if not axes or used & set(axes) else entry)
        used |= set(axes)
    return NamedSharding(mesh, PartitionSpec(*out))


def conv_sharding(lhs, rhs, numbers, *, spatial_kept: bool, batch_grouped: bool = False):
    """The sharding of ``lax.conv_general_dilated(lhs, rhs, ...)`` under explicit axes.

    ``numbers`` is the convolution's ``lax.ConvDimensionNumbers``. Output batch
    and feature dims come from the lhs batch and the rhs output features; the
    lhs features and the rhs input features and taps are summed. The output's
    spatial dims follow the lhs's (``spatial_kept``: a convolution's windows)
    or, for a weight gradient, whose spatial dims are kernel taps summed over
    the lhs positions, are whole. With ``batch_grouped`` (lax's
    ``batch_group_count`` > 1) the output batch is one group's slice of the lhs
    batch, so it is left unsharded.
    """
    lhs_spec, rhs_spec, out_spec = numbers
    lhs_entries = jax.typeof(lhs).sharding.spec
    rhs_entries = jax.typeof(rhs).sharding.spec
    lhs_at = lambda i: lhs_entries[i] if i < len(lhs_entries) else None  # noqa: E731
    rhs_at = lambda i: rhs_entries[i] if i < len(rhs_entries) else None  # noqa: E731
    kept = [None] * len(out_spec)
    kept[out_spec[0]] = None if batch_grouped else lhs_at(lhs_spec[0])
    kept[out_spec[1]] = rhs_at(rhs_spec[0])
    summed = [lhs_at(lhs_spec[1]), rhs_at(rhs_spec[1])] + [rhs_at(i) for i in rhs_spec[2:]]
    for out_dim, lhs_dim in zip(out_spec[2:], lhs_spec[2:]):
        if spatial_kept:
            kept[out_dim] = lhs_at(lhs_dim)
        else:
            summed.append(lhs_at(lhs_dim))
    return contraction_sharding(lhs, kept, summed)


def whole_along(a, dim: int):
    """``a`` gathered whole along ``dim`` where an explicit mesh axis splits it.

    Before a per-group slicing or a reshape that cuts ``dim`` (jax cannot slice
    it where the slices do not divide among the axis's devices).
    """
    sharding = jax.typeof(a).sharding
    if not sharding.mesh.explicit_axes or sharding.spec[dim] is None:
        return a
    spec = list(sharding.spec)
    spec[dim] = None
    return jax.sharding.reshard(a, PartitionSpec(*spec))


def reshard_to(a, sharding):
    """``a`` resharded to ``sharding`` (None: unchanged)."""
    return a if sharding is None else jax.sharding.reshard(a, sharding)
