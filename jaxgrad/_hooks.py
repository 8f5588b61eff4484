"""Gradient hooks: ``hook``, ``print_grad``, ``scale_grad``, ``reverse_grad``.

Each is the identity in the forward pass and acts on the cotangent (the
gradient flowing back into its output) in the backward pass, the JAX
counterpart of ``torch.Tensor.register_hook``.

Notation: x the argument, y = x the output, ȳ the output cotangent
(∂L/∂y), x̄ the cotangent returned for x. For every op here

  y_i = x_i,      x̄_i = T(ȳ)_i

with T the user's ``fn`` (``hook``), the identity plus a print (``print_grad``),
multiplication by c (``scale_grad``) or by -1 (``reverse_grad``).

Grad-of-grad. Each forward rule returns the op itself rather than a plain
copy, so an outer differentiation meets the op again and applies T again on
the forward path, as torch does with ``create_graph=True``. The backward of
``scale_grad``/``reverse_grad`` is the linear map v ↦ c·v, written as the
custom_vjp ``_scaled`` whose own VJP is that same map (it is self-adjoint),
so every order runs these hand-written rules. A ``hook``'s ``fn`` is user
code: a replacement cotangent it returns is differentiated by JAX, like a
torch hook under ``create_graph=True``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _rules
from ._args import _is_torch_tensor, check_static, dtype_name, float_array, is_sequence
from ._typing import ArrayLike


def _float_leaves(fn_name: str, x):
    """``x`` with every leaf a float array (``_args.float_array``: a Python
    number becomes one, a torch tensor is refused); at least one leaf."""
    if not jax.tree_util.tree_leaves(x):
        raise ValueError(f"{fn_name}: `x` must be an array or a pytree of arrays, "
                         f"got {x!r} (no array leaves)")
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: float_array(fn_name, "x" + jax.tree_util.keystr(path), leaf),
        x)


# --------------------------------------------------------------------------
# hook: y = x, x̄ = fn(ȳ) (or ȳ when fn returns None).


def _describe(leaf) -> str:
    shape = getattr(leaf, "shape", None)
    dtype = getattr(leaf, "dtype", None)
    if shape is None or dtype is None:
        return f"{type(leaf).__name__} {leaf!r}"
    return f"shape {tuple(shape)} {dtype_name(dtype)}"


def _checked_replacement(fn: Callable, cotangent, replacement):
    """``replacement`` if it matches ``cotangent`` leaf for leaf, else a clear error."""
    name = getattr(fn, "__name__", type(fn).__name__)
    want, want_tree = jax.tree_util.tree_flatten(cotangent)
    got, got_tree = jax.tree_util.tree_flatten(replacement)
    if got_tree != want_tree:
        raise TypeError(f"hook: `fn` ({name}) must return None or a cotangent with "
                        f"the structure of its argument {want_tree}, got {got_tree}")
    paths = [jax.tree_util.keystr(p)
             for p, _ in jax.tree_util.tree_leaves_with_path(cotangent)]
    for path, expected, leaf in zip(paths, want, got):
        if _describe(leaf) != _describe(expected):
            # A wrong dtype alone is a TypeError; anything else a ValueError.
            same_shape = getattr(leaf, "shape", None) == expected.shape
            error = TypeError if same_shape else ValueError
            raise error(
                f"hook: `fn` ({name}) must return None or a cotangent of the same "
                f"shape and dtype as its argument; for x{path} it returned "
                f"{_describe(leaf)}, expected {_describe(expected)}")
    return replacement


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _hooked(x, fn):
    return x


def _hooked_fwd(x, fn):
    # Returning the op itself (not x) lets an outer derivative see the hook again.
    return _chosen_hook((fn,), x), None


def _hooked_bwd(fn, _, cotangent):
    # x̄ = fn(ȳ), or ȳ when fn returns None.
    replacement = fn(cotangent)
    if replacement is None:
        return (cotangent,)
    return (_checked_replacement(fn, cotangent, replacement),)


_hooked.defvjp(_hooked_fwd, _hooked_bwd)

# Forward mode (see _rules.with_forward_mode): the identity's JVP is ẋ; a hook
# acts on cotangents only, as torch's forward-mode AD ignores tensor hooks.
_chosen_hook = _rules.with_forward_mode(lambda static, x: _hooked(x, *static),
                                        lambda choose, static, primals, tangents, out:
                                        tangents[0], symbolic_zeros=False)


def hook(x: Any, fn: Callable[[Any], Any]) -> Any:
    """Identity whose backward pass calls ``fn`` on the cotangent of ``x``.

    The JAX counterpart of ``y = x.clone(); y.register_hook(fn)``: in the
    backward pass ``fn(ȳ)`` receives the gradient flowing back into the output
    and may return a replacement for it (``None`` keeps it).

    What ``fn`` receives differs from torch. JAX traces the backward pass, so
    ``fn`` runs when the backward is *traced*, once per compilation, not once
    per step: under ``jax.jit``, ``jax.vmap`` or an outer ``jax.grad`` it gets
    a tracer (per example, without the batch axis, under ``vmap``), and only
    in an eager ``jax.grad`` a concrete array. So

    * to modify the gradient, return a ``jax.numpy`` expression of ``ȳ`` (it
      is differentiated by JAX in a second differentiation, like a torch hook
      under ``create_graph=True``);
    * to look at run-time values, call ``jax.debug.print`` /
      ``jax.debug.callback`` inside ``fn`` (or use :func:`print_grad`);
      Python side effects such as appending to a list run at trace time.

    ``fn`` fires on every reverse pass through ``x``, including the outer pass
    of a grad-of-grad, as a torch hook does with ``create_graph=True``.

    Args:
      x: (*), a float array, or a pytree of float arrays (``fn`` then
        receives and returns the matching pytree of cotangents).
      fn: ``fn(cotangent) -> None | replacement``; a replacement must have the
        structure, shapes and dtypes of ``cotangent``.

    Returns:
      ``x`` unchanged.

    Raises:
      TypeError, ValueError: ``x`` has a non-float leaf; or, in the backward
        pass, ``fn`` returns a replacement of the wrong structure, shape or
        dtype (the message names ``hook`` and ``fn``).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> f = lambda x: jnp.sum(jaxgrad.hook(x, lambda g: 2 * g) ** 2)
      >>> jax.grad(f)(jnp.array([1.0, 3.0], jnp.float32)).tolist()
      [4.0, 12.0]
    """
    if not callable(fn):
        raise TypeError(f"hook: `fn` must be callable, got {type(fn).__name__} "
                        f"{fn!r}")
    return _chosen_hook((fn,), _float_leaves("hook", x))


def _print_cotangent(label: str, cotangent) -> None:
    print(f"{label}: {cotangent}", flush=True)


def print_grad(x: Any, label: str = "grad") -> Any:
    """Identity whose backward pass prints the run-time cotangent of ``x``.

    Prints ``"{label}: {cotangent}"`` with ``jax.debug.callback``, so it works
    under ``jax.jit`` and prints actual values each time the backward pass runs
    (under ``jax.vmap``, once per example). Output of compiled code is
    asynchronous: call ``jax.effects_barrier()`` before reading it, and do not
    rely on the order of several ``print_grad`` outputs under ``jit``.

    Args:
      x: (*), a float array, or a pytree of float arrays.
      label: text printed before the cotangent.

    Returns:
      ``x`` unchanged.

    Raises:
      TypeError: ``label`` is not a string or ``x`` has a non-float leaf.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> f = lambda x: jnp.sum(3 * jaxgrad.print_grad(x, "dL/dx"))
      >>> _ = jax.grad(f)(jnp.array([1.0, 2.0], jnp.float32)); jax.effects_barrier()
      dL/dx: [3. 3.]
    """
    check_static("print_grad", "label", label, "a str")
    if not isinstance(label, str):
        raise TypeError(f"print_grad: `label` must be a str, got "
                        f"{type(label).__name__} {label!r}")
    x = _float_leaves("print_grad", x)

    def show(cotangent):
        jax.debug.callback(functools.partial(_print_cotangent, label), cotangent)

    return _chosen_hook((show,), x)


# --------------------------------------------------------------------------
# The backward of scale_grad / reverse_grad: a linear map and its adjoint.
#
#   v'_i = c_i v_i                       (c broadcast to the shape of v)
#   ⟨c·v, u⟩ = Σ_i c_i v_i u_i = ⟨v, c·u⟩   ⇒   v̄ = c·ū,  c̄ = 0
#
# The map is self-adjoint, so its VJP is itself. c is a constant by
# convention (a hyperparameter such as a DANN λ schedule): it gets a zero
# cotangent at every order.


def _scale_impl(v, c):
    """v'_i = c_i v_i, cast to v's dtype."""
    return (v * c).astype(v.dtype)


# Self-adjoint: the pair's two maps are the same formula, each the other's VJP.
_scaled, _ = _rules.linear_pair(_scale_impl, _scale_impl, constants=1)


# --------------------------------------------------------------------------
# scale_grad: y = x, x̄_i = c_i ȳ_i; reverse_grad is scale_grad with c = -1.

_grad_scaled = _rules.identity_with_backward(_scaled)


def _as_factor(c, leaf):
    """``c`` as an array that broadcasts onto ``leaf`` without changing its shape."""
    if isinstance(c, bool) or not (isinstance(c, (numbers.Real, np.ndarray, jax.Array))
                                   or is_sequence(c) or _is_torch_tensor(c)):
        raise TypeError(f"scale_grad: `c` must be a Python number, a list of numbers "
                        f"or a float array, got {type(c).__name__} {c!r}")
    if isinstance(c, numbers.Real):   # Python and NumPy scalars alike
        try:
            return jnp.asarray(float(c), leaf.dtype)
        except OverflowError:   # an int beyond the float range
            raise ValueError(f"scale_grad: `c` is too large for a float, got "
                             f"{c!r}") from None
    c = float_array("scale_grad", "c", c)
    shape = tuple(leaf.shape)
    try:
        broadcast = np.broadcast_shapes(tuple(c.shape), shape)
    except ValueError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(f"scale_grad: `c` of shape {tuple(c.shape)} must broadcast "
                         f"to the shape of `x` {shape}")
    return c


def scale_grad(x: Any, c: ArrayLike) -> Any:
    """Identity whose backward pass multiplies the cotangent by ``c``.

    ``x̄ = c · ȳ``. Use it to weight one branch's contribution to a shared
    parameter, to slow the learning of a sub-network, or with ``c < 0`` for
    adversarial objectives (see :func:`reverse_grad`).

    ``c`` is a constant: it never receives a gradient, at any order (the
    forward pass does not depend on it, and by convention the higher-order
    terms in which it would appear are dropped, as for a hyperparameter such
    as a learning-rate or a DANN λ schedule). The backward and all higher
    orders run the hand-written linear map v ↦ c·v, which is self-adjoint.

    Args:
      x: (*), a float array, or a pytree of float arrays.
      c: a real number (Python or NumPy scalar), or a float array (or a list
        of numbers) broadcastable to each leaf of ``x`` without changing its
        shape; the product is cast to ``x``'s dtype.

    Returns:
      ``x`` unchanged.

    Raises:
      TypeError: ``c`` is not a number or a float array, or ``x`` has a
        non-float leaf.
      ValueError: ``c`` does not broadcast to a leaf of ``x``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> f = lambda x: jnp.sum(jaxgrad.scale_grad(x, 0.5) ** 2)
      >>> jax.grad(f)(jnp.array([1.0, 3.0], jnp.float32)).tolist()
      [1.0, 3.0]
    """
    x = _float_leaves("scale_grad", x)
    factors = jax.tree_util.tree_map(lambda leaf: _as_factor(c, leaf), x)
    return jax.tree_util.tree_map(
        lambda leaf, factor: _grad_scaled(leaf, jax.lax.stop_gradient(factor)),
        x, factors)


def reverse_grad(x: Any) -> Any:
    """Gradient reversal layer: identity forward, negated cotangent backward.

    ``x̄ = -ȳ`` (Ganin & Lempitsky's gradient reversal). Placed between a
    feature extractor and a domain classifier, one ``jax.grad`` of the summed
    loss trains the classifier to minimise its loss and the features to
    maximise it: a min-max objective in a single backward pass. Compose with
    :func:`scale_grad` for a weight λ: ``scale_grad(reverse_grad(x), lam)``.
    Every order runs the hand-written map v ↦ -v.

    Args:
      x: (*), a float array, or a pytree of float arrays.

    Returns:
      ``x`` unchanged.

    Raises:
      TypeError: ``x`` has a non-float leaf.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> f = lambda x: jnp.sum(jaxgrad.reverse_grad(x) ** 2)
      >>> jax.grad(f)(jnp.array([1.0, 3.0], jnp.float32)).tolist()
      [-2.0, -6.0]
    """
    x = _float_leaves("reverse_grad", x)
    return jax.tree_util.tree_map(
        lambda leaf: _grad_scaled(leaf, jnp.asarray(-1, leaf.dtype)), x)
