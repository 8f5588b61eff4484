"""``tap``: name an intermediate value so that a model check can compare it.

  tap(x, name)    the identity; under ``jaxgrad.testing.check_model_parity``
                  the value of ``x`` and the gradient flowing back into it
                  are recorded under ``name``

Outside a check ``tap`` returns ``x`` itself: no op is added to the program,
under ``jax.jit``, ``jax.vmap`` or ``jax.grad`` alike.

How a check records (no host callbacks; one compiled program). Notation: f
is the port, x_k the value at the k-th tap call, L = ⟨ḡ, f⟩ for the check's
seeded output cotangent ḡ.

  discovery   ``jax.eval_shape`` runs f once with a :class:`Recorder` that
              has no probes: each tap call notes its name and the shapes and
              dtypes of its leaves, and returns x.
  recording   f runs under ``jax.vjp`` with one zero probe p_k per floating
              leaf of every tap call, passed as an extra differentiable
              argument. The tap returns y_k = x_k + p_k and keeps x_k as an
              auxiliary output. As ∂y_k/∂p_k = I, the probe's gradient is

                  ∂L/∂p_k = ∂L/∂y_k        (the cotangent at the tap)

              and, the probe being zero, no value changes.

Calls are matched between the passes by their order, and must have the same
names in both (the port must be deterministic Python).

Both passes run the port under ``jax.disable_jit()``: a ``jax.jit`` inside
the port is then traced inline, so its taps run (a compiled function found
in jit's cache would skip the Python code of ``tap``). The check jits its own
program around everything, so this costs no speed. A tap inside ``jax.vmap``,
``lax.scan``/``fori_loop`` or ``jax.checkpoint`` within the port cannot be
recorded: its value lives in the inner transformation only.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

_FLOATS = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class TapCall:
    """One call of ``tap`` seen by the discovery pass.

    Attributes:
      name: the name given to ``tap``.
      tree: the pytree structure of its ``x``.
      leaves: one ``jax.ShapeDtypeStruct`` per leaf of ``x``.
    """

    name: str
    tree: Any
    leaves: tuple[jax.ShapeDtypeStruct, ...]

    @property
    def floating(self) -> tuple[bool, ...]:
        """Which leaves get a probe (and so a recorded gradient)."""
        return tuple(np.dtype(s.dtype).name in _FLOATS for s in self.leaves)


class Recorder:
    """What ``tap`` does while a check runs (see the module docstring).

    ``probes`` None is the discovery pass: calls are collected in ``calls``.
    Otherwise ``probes[k]`` holds the k-th call's probe per leaf (None for a
    non-floating leaf), and the values seen are collected in ``values``.
    """

    def __init__(self, probes: list | None = None,
                 expected: tuple[TapCall, ...] = ()):
        self.probes = probes
        self.expected = expected
        self.calls: list[TapCall] = []
        self.values: list[list] = []

    def tap(self, x, name: str):
        leaves, tree = jax.tree.flatten(x)
        for i, leaf in enumerate(leaves):
            if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
                raise TypeError(f"tap: `x` must be an array or a pytree of arrays, "
                                f"got leaf {i} of {name!r}: {type(leaf).__name__} "
                                f"{leaf!r}")
        k = len(self.values) if self.probes is not None else len(self.calls)
        if self.probes is None:
            structs = tuple(jax.ShapeDtypeStruct(leaf.shape, leaf.dtype)
                            for leaf in leaves)
            self.calls.append(TapCall(name, tree, structs))
            return x
        if k >= len(self.expected) or self.expected[k].name != name:
            seen = self.expected[k].name if k < len(self.expected) else "no call"
            raise RuntimeError(
                f"tap: call {k} is named {name!r} now but was {seen!r} when the "
                "check traced jax_fn first; jax_fn must tap the same names in the "
                "same order every time it is traced")
        self.values.append(list(leaves))
        tapped = [leaf if p is None else leaf + p
                  for leaf, p in zip(leaves, self.probes[k])]
        return jax.tree.unflatten(tree, tapped)


_RECORDER: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "jaxgrad_tap_recorder", default=None)


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """Make ``tap`` report to ``recorder``, with every ``jax.jit`` inlined."""
    token = _RECORDER.set(recorder)
    try:
        with jax.disable_jit():
            yield recorder
    finally:
        _RECORDER.reset(token)


def zero_probes(calls: tuple[TapCall, ...]) -> list[list]:
    """One zero array per floating leaf of every call (None for the others)."""
    return [[jax.numpy.zeros(s.shape, s.dtype) if is_float else None
             for s, is_float in zip(call.leaves, call.floating)] for call in calls]


def tap(x: Any, name: str) -> Any:
    """Name an intermediate value for ``jaxgrad.testing.check_model_parity``.

    The identity. Outside the check it returns ``x`` itself and adds nothing
    to the program (under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` too).
    While ``check_model_parity`` runs, the value of ``x`` and the gradient
    flowing back into it are recorded and compared with the output of the
    torch submodule of the same name, ``module.get_submodule(name)``, and with
    the gradient of that output.

    Name the output of each ported layer after its torch submodule, e.g.
    ``tap(y, "layer1.0.bn1")``. A name tapped several times matches the
    submodule's successive calls (a layer used twice, as torch's forward
    hooks see it), so tap a name exactly as often as the submodule runs; any
    other count is reported as unmatched by the check.

    Taps are recorded inside a ``jax.jit`` of the port (the check inlines
    it), but not inside ``jax.vmap``, ``lax.scan`` or ``jax.checkpoint``
    within the port: put the tap outside those.

    Args:
      x: (*), the value to name: an array, or a pytree of arrays (a layer
        with several outputs; they are matched leaf by leaf with the torch
        submodule's output tensors).
      name: the torch submodule's name, as in ``module.named_modules()``; a
        non-empty string.

    Returns:
      ``x`` unchanged.

    Raises:
      TypeError: ``name`` is not a non-empty string; or, during a check, a
        leaf of ``x`` is not an array.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> def layer(w, x):
      ...     return jaxgrad.tap(jnp.tanh(w * x), "act")
      >>> x = jnp.array([0.5, -1.0])
      >>> bool(jnp.all(jax.jit(layer)(2.0, x) == jnp.tanh(2.0 * x)))
      True
      >>> jax.make_jaxpr(lambda x: jaxgrad.tap(x, "id"))(x).eqns   # no op at all
      []
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"tap: `name` must be a non-empty string (a torch "
                        f"submodule name such as 'layer1.0.bn1'), got {name!r}")
    recorder = _RECORDER.get()
    if recorder is None:
        return x
    return recorder.tap(x, name)
