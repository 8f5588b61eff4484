"""A torch module's state as a JAX pytree, and back.

  params_from_torch(module_or_state_dict, *, dtype=None, nested=False)
                     state_dict (parameters and buffers) -> {name: jax.Array}
  params_to_torch(params, module_or_state_dict=None, *, strict=True)
                     {name: array} -> the module's tensors (in place), or a
                     new state_dict
  param_names(fn, params)
                     the torch name of each leaf of a flat or nested params dict

The pytree is keyed by torch's names, so a port reads ``p["conv1.weight"]``
(flat, the default) or ``p["conv1"]["weight"]`` (``nested=True``: one dict
level per ``.``), and checks and round trips need no name mapping. Values are
copies: torch updates its tensors in place (optimizer steps, BatchNorm's
running statistics) while JAX assumes its arrays never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from ._interop import require_torch, x64_enabled
from ._typing import DTypeLike

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from torch import Tensor
    from torch.nn import Module
else:
    Tensor = Module = Any  # torch is optional: imported on first use

_FLOATS = ("float16", "bfloat16", "float32", "float64")
_INT32 = np.iinfo(np.int32)


# --------------------------------------------------------------------------
# Arguments.


def state_dict_of(fn: str, torch, source, name: str) -> dict[str, Any]:
    """{name: tensor} of a module (its ``state_dict``) or of a mapping."""
    if isinstance(source, torch.nn.Module):
        return dict(source.state_dict(keep_vars=True))
    if isinstance(source, Mapping):
        for key, value in source.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise TypeError(f"{fn}: `{name}` must map names (str) to tensors, got "
                                f"{key!r}: {type(value).__name__}")
        return dict(source)
    raise TypeError(f"{fn}: `{name}` must be a torch.nn.Module or a state_dict "
                    f"(a mapping of names to tensors), got {type(source).__name__}")


def float_dtype(fn: str, dtype) -> np.dtype | None:
    """None, or ``dtype`` as a floating NumPy dtype."""
    if dtype is None:
        return None
    if type(dtype).__module__.split(".")[0] == "torch":   # torch.float64
        dtype = str(dtype).removeprefix("torch.")
    try:
        parsed = jnp.dtype(dtype)
    except TypeError:
        parsed = None
    if parsed is None or parsed.name not in _FLOATS:
        raise ValueError(f"{fn}: `dtype` must be None or a floating dtype "
                         f"(float16, bfloat16, float32, float64), got {dtype!r}")
    return parsed


def _check_x64(fn: str, dtype: str, hint: str) -> None:
    if dtype == "float64" and not x64_enabled():
        raise TypeError(f"{fn}: {hint} float64, but JAX's 64-bit mode is off and "
                        "would silently narrow it to float32; enable it with "
                        "jax.config.update('jax_enable_x64', True) (or inside `with "
                        "jax.enable_x64(True):`), or pass dtype='float32'")


def _to_jax(fn: str, torch, key: str, tensor, dtype):
    """A JAX copy of one state_dict entry (floating entries cast to ``dtype``)."""
    t = tensor.detach().cpu()
    if t.is_floating_point() and dtype is not None:
        t = t.to(getattr(torch, dtype.name))
    name = str(t.dtype).removeprefix("torch.")
    if t.is_floating_point():
        _check_x64(fn, name, f"`module_or_state_dict` entry {key!r} is")
    elif name in ("int64", "uint64") and not x64_enabled():
        # e.g. BatchNorm's num_batches_tracked: kept exact as int32 if it fits.
        if t.numel() and (t.min() < _INT32.min or t.max() > _INT32.max):
            raise TypeError(f"{fn}: `module_or_state_dict` entry {key!r} is {name} "
                            "with values outside int32, and "
                            "JAX's 64-bit mode is off; enable it with "
                            "jax.config.update('jax_enable_x64', True)")
        t = t.to(torch.int32)
    t = t.clone(memory_format=torch.contiguous_format)
    return jax.device_put(jax.dlpack.from_dlpack(t), jax.devices()[0])


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


def param_names(fn: str, params) -> tuple[list[str], list, Any]:
    """(torch names, leaves, treedef) of a flat or nested dict of arrays.

    A nested dict's keys are joined with ``.``: ``{"fc": {"weight": w}}`` is
    ``fc.weight``, as is the flat ``{"fc.weight": w}``.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"{fn}: `params` must be a dict keyed by torch names, flat "
                        "({'fc.weight': ...}) or nested ({'fc': {'weight': ...}}), "
                        f"got {type(params).__name__}")
    paths, tree = jax.tree_util.tree_flatten_with_path(params)
    names, leaves = [], []
    for path, leaf in paths:
        keys = [getattr(k, "key", None) for k in path]
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"{fn}: `params` must be a dict of dicts with str keys, "
                            f"got the entry at {jax.tree_util.keystr(path)}")
        names.append(".".join(keys))
        leaves.append(leaf)
    return names, leaves, tree


# --------------------------------------------------------------------------
# The two directions.


def params_from_torch(module_or_state_dict: Module | Mapping[str, Tensor], *,
                      dtype: DTypeLike | None = None,
                      nested: bool = False) -> dict[str, Any]:
    """A torch module's parameters and buffers as a dict of JAX arrays.

    Every entry of ``state_dict()`` is converted: parameters, and buffers such
    as BatchNorm's ``running_mean``, ``running_var`` and the integer
    ``num_batches_tracked``, keyed by torch's names in ``state_dict`` order.
    The arrays are copies (later in-place updates of the module do not show),
    on JAX's default device. Tied weights (one tensor under two names) give
    two entries.

    Integer and bool entries keep their dtype; with JAX's 64-bit mode off an
    int64 buffer becomes int32 (exactly: a value outside int32 is an error).

    Args:
      module_or_state_dict: a ``torch.nn.Module`` (its ``state_dict()`` is
        read), or a state_dict itself (a mapping of names to tensors).
      dtype: None keeps each entry's dtype; a floating dtype ("float32",
        ``jnp.float64``, ``torch.float64``, ...) casts every floating entry
        to it (integer buffers keep theirs).
      nested: False (default) gives a flat dict ``{"layer1.0.conv1.weight":
        array, ...}`` with torch's names exactly; True one dict level per
        ``.`` in the names, ``p["layer1"]["0"]["conv1"]["weight"]`` (keys
        stay strings). :func:`params_to_torch` and ``check_model_parity``
        accept both forms.

    Returns:
      The dict of ``jax.Array``, each of its tensor's shape.

    Raises:
      TypeError: the argument is neither a module nor a mapping of names to
        tensors; or an entry is float64 (after ``dtype``) while JAX's 64-bit
        mode is off.
      ValueError: ``dtype`` is not a floating dtype.
      ImportError: torch is not installed.

    Example:
      >>> import torch
      >>> from jaxgrad.interop import params_from_torch
      >>> bn = torch.nn.BatchNorm2d(3)
      >>> p = params_from_torch(bn)
      >>> [(k, v.dtype.kind, v.shape) for k, v in p.items()]   # doctest: +NORMALIZE_WHITESPACE
      [('weight', 'f', (3,)), ('bias', 'f', (3,)),
       ('running_mean', 'f', (3,)), ('running_var', 'f', (3,)),
       ('num_batches_tracked', 'i', ())]
      >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3))
      >>> params_from_torch(net, nested=True)["0"]["weight"].shape
      (3, 2)
    """
    fn = "params_from_torch"
    torch = require_torch(fn)
    state = state_dict_of(fn, torch, module_or_state_dict, "module_or_state_dict")
    dtype = float_dtype(fn, dtype)
    flat = {key: _to_jax(fn, torch, key, tensor, dtype) for key, tensor in state.items()}
    return _nest(flat) if nested else flat


def _check_names(fn: str, given: list[str], target: list[str]) -> None:
    missing = [k for k in target if k not in set(given)]
    unexpected = [k for k in given if k not in set(target)]
    if missing or unexpected:
        raise ValueError(f"{fn}: `params` must have the names of the target's "
                         f"state_dict (strict=True); missing {missing}, unexpected "
                         f"{unexpected}")


def params_to_torch(params: Mapping[str, Any],
                    module_or_state_dict: Module | Mapping[str, Tensor] | None = None,
                    *, strict: bool = True) -> Any:
    """Write a params dict back into a torch module, or make a state_dict of it.

    The reverse of :func:`params_from_torch`, for round trips (e.g. training
    a port in lockstep with the original).

    Args:
      params: a dict of arrays (JAX or NumPy) keyed by torch names, flat or
        nested (as :func:`params_from_torch` returns them).
      module_or_state_dict: where to write. A ``torch.nn.Module``: each value
        is copied in place into the module's parameter or buffer of that name,
        in that tensor's dtype and on its device (so a float64 port can load a
        float32 module), without recording autograd history. A state_dict (a
        mapping of names to tensors): the same, into its tensors. None: a new
        state_dict is made, each tensor of the array's dtype, on the CPU.
      strict: with a target, the names must be exactly the target's
        state_dict names (as ``load_state_dict(strict=True)``); False copies
        the names both have and ignores the others.

    Returns:
      The module or the state_dict written into; with no target, the new
      ``dict`` of ``torch.Tensor``.

    Raises:
      TypeError: ``params`` is not a dict of arrays keyed by str names, or the
        target is neither a module nor a mapping of names to tensors.
      ValueError: names differ with ``strict``, or a shape differs from its
        target tensor's.
      ImportError: torch is not installed.

    Example:
      >>> import jax.numpy as jnp, torch
      >>> from jaxgrad.interop import params_from_torch, params_to_torch
      >>> layer = torch.nn.Linear(2, 1)
      >>> p = params_from_torch(layer)
      >>> p = {k: jnp.zeros_like(v) for k, v in p.items()}   # e.g. an update in JAX
      >>> params_to_torch(p, layer).weight.tolist()
      [[0.0, 0.0]]
      >>> sorted(params_to_torch(p))
      ['bias', 'weight']
    """
    fn = "params_to_torch"
    torch = require_torch(fn)
    names, leaves, _ = param_names(fn, params)
    for name, leaf in zip(names, leaves):
        if not (isinstance(leaf, (jax.Array, np.ndarray, np.generic))):
            raise TypeError(f"{fn}: `params` must hold arrays, got "
                            f"{type(leaf).__name__} at {name!r}")
    values = _in_order(params)
    if module_or_state_dict is None:
        return {k: _tensor(torch, v) for k, v in values.items()}
    target = state_dict_of(fn, torch, module_or_state_dict, "module_or_state_dict")
    if strict:
        _check_names(fn, names, list(target))
    with torch.no_grad():
        for key, value in values.items():
            if key not in target:
                continue
            dest = target[key]
            if tuple(dest.shape) != tuple(value.shape):
                raise ValueError(f"{fn}: `params` entry {key!r} has shape "
                                 f"{tuple(value.shape)}, but the target's tensor has "
                                 f"shape {tuple(dest.shape)}")
            dest.copy_(_tensor(torch, value))
    return module_or_state_dict


def _in_order(params: Mapping, prefix: str = "") -> dict[str, Any]:
    """A flat or nested params dict as {torch name: leaf}, in insertion order."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(_in_order(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _tensor(torch, value):
    """A torch copy (on the CPU) of a JAX or NumPy array, bfloat16 included."""
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.name != "bfloat16":
        return torch.from_numpy(np.array(value))
    array = jax.device_put(jnp.asarray(value), jax.devices("cpu")[0])
    return torch.from_dlpack(array).clone()
