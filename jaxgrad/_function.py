"""``jaxgrad.Function``: torch.autograd.Function's idiom, compiled to ``jax.custom_vjp``.

Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``
and call ``MyFn.apply(*args)``, exactly as in PyTorch. Each ``apply`` builds one
``jax.custom_vjp`` over the array arguments; everything else is static.

Notation: inputs a_1..a_n (the ``apply`` arguments), outputs y_1..y_m (what
``forward`` returns), ȳ_k the cotangent of y_k (``grad_outputs``), ā_i the
cotangent ``backward`` returns for a_i. The user's ``backward`` *is* the rule

  ā_i = backward(ctx, ȳ_1, ..., ȳ_m)[i]

with ``None`` meaning ā_i = 0, and with ȳ_k = 0 for an output that is marked
non-differentiable or has an integer dtype (as torch passes zeros there).

Residuals. ``ctx.save_for_backward`` arrays and any array stored as a ctx
attribute (also inside tuples, lists and dicts) travel from ``forward`` to
``backward`` as ``custom_vjp`` residuals; non-array attributes travel as static
Python data. ``ctx.needs_input_grad`` is exact: it comes from JAX's record of
which inputs are being differentiated (``symbolic_zeros``).

Higher order. The forward rule returns the ``custom_vjp`` itself and puts
saved outputs through it, so an outer differentiation applies the user's
``backward`` again on the forward path, as torch does; the jnp code inside
``backward`` is differentiated by JAX (torch's ``create_graph=True``). So
under differentiation ``forward`` runs twice at trace time, once in the
forward rule (``needs_input_grad`` as differentiated) and once inside the
``custom_vjp`` it returns (all False); keep Python side effects out of it,
as of any function JAX traces.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ._args import dtype_name
from ._rules import with_forward_mode
from ._typing import Array, ArrayLike

_PRIVATE = "_jaxgrad_"  # prefix of ctx's own state, kept apart from user attributes


def _is_array(value) -> bool:
    return isinstance(value, (jax.Array, np.ndarray))


def _is_float(array) -> bool:
    return jnp.issubdtype(array.dtype, jnp.inexact)


def _describe(value) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"an array of shape {tuple(value.shape)} and dtype {dtype_name(value.dtype)}"
    return f"{type(value).__name__} {value!r}"


class FunctionCtx:
    """The ``ctx`` object handed to ``forward`` and ``backward``.

    jaxgrad creates it; a :class:`Function` subclass only uses it. Any other
    attribute set on it in ``forward`` (``ctx.scale = 2.0``, ``ctx.mask = x > 0``)
    is readable in ``backward``.

    Attributes:
      needs_input_grad: one bool per ``apply`` argument: whether JAX is
        differentiating with respect to it (always False for non-array and
        integer arguments).
      saved_tensors: the arrays given to :meth:`save_for_backward`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> class Mul(jaxgrad.Function):
      ...     @staticmethod
      ...     def forward(ctx, x, y):
      ...         ctx.save_for_backward(x, y)
      ...         return x * y
      ...     @staticmethod
      ...     def backward(ctx, grad):
      ...         x, y = ctx.saved_tensors
      ...         print("needs_input_grad:", ctx.needs_input_grad)
      ...         return (grad * y if ctx.needs_input_grad[0] else None,
      ...                 grad * x if ctx.needs_input_grad[1] else None)
      >>> x = jnp.array([1.0, 2.0], jnp.float32)
      >>> y = jnp.array([3.0, 4.0], jnp.float32)
      >>> jax.grad(lambda y: Mul.apply(x, y).sum())(y).tolist()
      needs_input_grad: (False, True)
      [1.0, 2.0]
    """

    def __init__(self, name: str, needs_input_grad: tuple[bool, ...]):
        setattr(self, _PRIVATE + "name", name)
        setattr(self, _PRIVATE + "needs", needs_input_grad)
        setattr(self, _PRIVATE + "saved", ())
        setattr(self, _PRIVATE + "saved_for_forward", ())
        setattr(self, _PRIVATE + "non_differentiable", ())

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        """One bool per ``apply`` argument: whether JAX differentiates it."""
        return getattr(self, _PRIVATE + "needs")

    @property
    def saved_tensors(self) -> tuple[Array | None, ...]:
        """The arrays (or None) given to :meth:`save_for_backward`, in order;
        in ``jvp``, those given to :meth:`save_for_forward` (as torch)."""
        return getattr(self, _PRIVATE + "saved")

    def _checked_saves(self, method: str, arrays: tuple) -> tuple:
        name = getattr(self, _PRIVATE + "name")
        for position, value in enumerate(arrays):
            if value is not None and not _is_array(value):
                raise TypeError(
                    f"{name}: ctx.{method} accepts arrays or None, got "
                    f"{_describe(value)} at position {position}; keep non-array "
                    f"data as a ctx attribute (ctx.name = value)")
        return arrays

    def save_for_backward(self, *arrays: ArrayLike | None) -> None:
        """Keep arrays (or None) for ``backward``, which reads ``ctx.saved_tensors``."""
        setattr(self, _PRIVATE + "saved", self._checked_saves("save_for_backward", arrays))

    def save_for_forward(self, *arrays: ArrayLike | None) -> None:
        """Keep arrays (or None) for ``jvp``, which reads ``ctx.saved_tensors``."""
        setattr(self, _PRIVATE + "saved_for_forward",
                self._checked_saves("save_for_forward", arrays))

    def mark_non_differentiable(self, *outputs: Array) -> None:
        """Declare outputs (the very arrays ``forward`` returns) non-differentiable.

        ``backward`` then receives zeros as their gradient, whatever flows back.
        """
        setattr(self, _PRIVATE + "non_differentiable", outputs)

    def _user_attributes(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith(_PRIVATE)}


# --------------------------------------------------------------------------
# Checks on the subclass, the arguments and forward's outputs.


def _check_methods(cls) -> None:
    for method in ("forward", "backward", "jvp"):
        raw = inspect.getattr_static(cls, method, None)
        if method == "jvp" and raw is Function.__dict__[method]:
            continue   # optional: only forward mode needs it
        if raw is None or raw is Function.__dict__[method]:
            raise TypeError(
                f"{cls.__name__}: a jaxgrad.Function subclass must define `{method}` "
                f"as a @staticmethod, `{method}(ctx, ...)`")
        if not isinstance(raw, staticmethod):
            raise TypeError(
                f"{cls.__name__}.{method} must be a @staticmethod taking `ctx` first, "
                f"as in torch.autograd.Function; got {type(raw).__name__}")


def _has_jvp(cls) -> bool:
    return inspect.getattr_static(cls, "jvp", None) is not Function.__dict__["jvp"]


def _array_positions(name: str, args: tuple) -> tuple[int, ...]:
    """Positions of the array arguments; containers holding arrays are refused."""
    positions = []
    for i, value in enumerate(args):
        if _is_array(value):
            positions.append(i)
        elif any(_is_array(leaf) for leaf in jax.tree_util.tree_leaves(value)):
            raise TypeError(
                f"{name}.apply: input {i} is a {type(value).__name__} holding arrays; "
                f"pass each array as its own argument (containers are static, as "
                f"in torch, and a traced array cannot be static)")
    return tuple(positions)


def _check_outputs(name: str, outputs):
    """forward's result: an array or a tuple of arrays (numpy ones converted)."""
    items = outputs if isinstance(outputs, tuple) else (outputs,)
    for k, value in enumerate(items):
        if not _is_array(value):
            where = f" (output {k})" if isinstance(outputs, tuple) else ""
            raise TypeError(f"{name}.forward must return an array or a tuple of "
                            f"arrays, got {_describe(value)}{where}")
    converted = tuple(jnp.asarray(v) if isinstance(v, np.ndarray) else v
                      for v in items)
    return converted if isinstance(outputs, tuple) else converted[0]


# --------------------------------------------------------------------------
# Residuals: array leaves are residuals, everything static rides in the
# treedef's aux data (`_Plan`), one per forward-rule invocation.


@dataclasses.dataclass(eq=False)  # identity hash: aux data of a residual treedef
class _Plan:
    needs_input_grad: tuple[bool, ...]
    state_tree: Any                       # treedef of (saved, attributes)
    static_leaves: tuple                  # None where the leaf is a residual
    input_avals: tuple[jax.ShapeDtypeStruct, ...]
    output_avals: tuple[jax.ShapeDtypeStruct, ...]
    non_differentiable: tuple[bool, ...]  # per output


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(eq=False)
class _Residuals:
    arrays: list
    plan: _Plan

    def tree_flatten(self):
        return (self.arrays,), self.plan

    @classmethod
    def tree_unflatten(cls, plan, children):
        return cls(list(children[0]), plan)


def _aval(array) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(array.shape), array.dtype)


def _as_tuple(outputs) -> tuple:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def _pack(ctx: FunctionCtx, outputs, custom_outputs, needs, arrays) -> _Residuals:
    """ctx's state as residuals; saved outputs are routed through the custom op."""
    plain, custom = _as_tuple(outputs), _as_tuple(custom_outputs)
    state = (ctx.saved_tensors, ctx._user_attributes())
    leaves, tree = jax.tree_util.tree_flatten(state)
    residuals, statics = [], []
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            index = next((k for k, y in enumerate(plain) if y is leaf), None)
            residuals.append(leaf if index is None else custom[index])
            statics.append(None)
        else:
            statics.append(leaf)
    marked = getattr(ctx, _PRIVATE + "non_differentiable")
    plan = _Plan(needs, tree, tuple(statics), tuple(map(_aval, arrays)),
                 tuple(map(_aval, plain)),
                 tuple(any(y is m for m in marked) for y in plain))
    return _Residuals(residuals, plan)


def _unpack(name: str, residuals: _Residuals) -> FunctionCtx:
    plan = residuals.plan
    arrays = iter(residuals.arrays)
    leaves = [next(arrays) if s is None else s for s in plan.static_leaves]
    saved, attributes = jax.tree_util.tree_unflatten(plan.state_tree, leaves)
    ctx = FunctionCtx(name, plan.needs_input_grad)
    setattr(ctx, _PRIVATE + "saved", saved)
    for key, value in attributes.items():
        setattr(ctx, key, value)
    return ctx


# --------------------------------------------------------------------------
# backward's side: cotangents in, gradients out (checked).


def _output_grads(plan: _Plan, cotangents) -> tuple:
    """ȳ_k, with zeros (in y_k's dtype) for integer or non-differentiable outputs."""
    grads = []
    for ct, aval, frozen in zip(_as_tuple(cotangents), plan.output_avals,
                                plan.non_differentiable):
        usable = not (frozen or isinstance(ct, SymbolicZero)
                      or not jnp.issubdtype(aval.dtype, jnp.inexact))
        grads.append(ct if usable else jnp.zeros(aval.shape, aval.dtype))
    return tuple(grads)


def _gradient_list(name: str, grads, n_inputs: int) -> tuple:
    """backward's result as one entry per input; extra trailing Nones are allowed."""
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    if len(grads) > n_inputs and all(g is None for g in grads[n_inputs:]):
        grads = grads[:n_inputs]
    if len(grads) != n_inputs:
        raise ValueError(
            f"{name}.backward returned {len(grads)} gradient(s), but {name}.apply "
            f"received {n_inputs} input(s); return one per input (None for a "
            f"non-array input or a zero gradient)")
    return grads


def _checked_grad(name: str, position: int, grad, aval: jax.ShapeDtypeStruct):
    return _checked_array(f"{name}.backward: the gradient for input {position}",
                          f"input {position}", grad, aval)


def _checked_array(where: str, of: str, value, aval) -> Array:
    """``value`` (None: zeros) with ``aval``'s shape and dtype, or an error
    starting with ``where`` that names ``of``, the array it must match."""
    if value is None:
        return jnp.zeros(aval.shape, aval.dtype)
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{where} must be an array or None, got {_describe(value)}")
    if tuple(value.shape) != tuple(aval.shape):
        raise ValueError(f"{where} has shape {tuple(value.shape)}, expected "
                         f"{tuple(aval.shape)} (the shape of {of})")
    if dtype_name(value.dtype) != dtype_name(aval.dtype):
        raise TypeError(f"{where} has dtype {dtype_name(value.dtype)}, expected "
                        f"{dtype_name(aval.dtype)} (the dtype of {of})")
    return jnp.asarray(value)


def _input_grads(name: str, grads, args: tuple, positions, plan: _Plan) -> tuple:
    """The cotangent of each array input, in ``positions`` order."""
    grads = _gradient_list(name, grads, len(args))
    for i, value in enumerate(args):
        if i not in positions and grads[i] is not None:
            raise TypeError(
                f"{name}.backward returned a gradient for input {i}, which is not an "
                f"array ({_describe(value)}); return None for it")
    out = []
    for i, aval in zip(positions, plan.input_avals):
        if jnp.issubdtype(aval.dtype, jnp.inexact):
            out.append(_checked_grad(name, i, grads[i], aval))
        else:  # integer inputs are not differentiable; torch ignores their grads
            out.append(np.zeros(aval.shape, jax.dtypes.float0))
    return tuple(out)


# --------------------------------------------------------------------------
# apply: one custom_vjp per call, over the array arguments.


def _custom_vjp(cls, args: tuple, positions: tuple[int, ...]):
    name = cls.__name__

    def run_forward(arrays, needs):
        full = list(args)
        for i, array in zip(positions, arrays):
            full[i] = array
        ctx = FunctionCtx(name, needs)
        return _check_outputs(name, cls.forward(ctx, *full)), ctx

    @jax.custom_vjp
    def call(*arrays):
        return run_forward(arrays, (False,) * len(args))[0]

    def call_fwd(*primals):
        arrays = tuple(p.value for p in primals)
        needs = [False] * len(args)
        for i, p in zip(positions, primals):
            needs[i] = bool(p.perturbed) and _is_float(p.value)
        outputs, ctx = run_forward(arrays, tuple(needs))
        # The custom op again, not `outputs`: an outer derivative then meets
        # this rule on the forward path too, as torch's create_graph does.
        custom_outputs = chosen((), *arrays)
        return custom_outputs, _pack(ctx, outputs, custom_outputs, tuple(needs),
                                     arrays)

    def call_bwd(residuals, cotangents):
        ctx = _unpack(name, residuals)
        grads = cls.backward(ctx, *_output_grads(residuals.plan, cotangents))
        return _input_grads(name, grads, args, positions, residuals.plan)

    call.defvjp(call_fwd, call_bwd, symbolic_zeros=True)

    def tangent(choose, static, arrays, tangents, out):
        # torch's forward AD: jvp(ctx, *input tangents) after forward on the
        # same ctx; ctx.saved_tensors are those of save_for_forward, a floating
        # input without a tangent gets zeros, a static or integer input None.
        if not _has_jvp(cls):
            raise TypeError(
                f"{name}: forward-mode differentiation (jax.jvp, jax.jacfwd, "
                f"jax.hessian) needs a `jvp(ctx, *input_tangents)` @staticmethod, "
                f"as torch's forward AD does; {name} defines none")
        needs = [False] * len(args)
        for i, array, t in zip(positions, arrays, tangents):
            needs[i] = _is_float(array) and not isinstance(t, SymbolicZero)
        _, ctx = run_forward(arrays, tuple(needs))
        setattr(ctx, _PRIVATE + "saved", getattr(ctx, _PRIVATE + "saved_for_forward"))
        full = [None] * len(args)   # None for a static or integer input
        for i, array, t in zip(positions, arrays, tangents):
            if _is_float(array):
                full[i] = jnp.zeros_like(array) if isinstance(t, SymbolicZero) else t
        return _output_tangents(name, cls.jvp(ctx, *full), out)

    chosen = with_forward_mode(lambda static, *arrays: call(*arrays), tangent)
    return lambda *arrays: chosen((), *arrays)


def _output_tangents(name: str, tangents, out):
    """jvp's result: one tangent (or None, a zero) per output of forward."""
    outputs = _as_tuple(out)
    tangents = tuple(tangents) if isinstance(tangents, (tuple, list)) else (tangents,)
    if len(tangents) != len(outputs):
        raise ValueError(f"{name}.jvp returned {len(tangents)} tangent(s), but "
                         f"{name}.forward returned {len(outputs)} output(s); return "
                         f"one per output (None for a zero tangent)")
    result = tuple(
        _checked_array(f"{name}.jvp: the tangent for output {k}", f"output {k}", t, y)
        if jnp.issubdtype(y.dtype, jnp.inexact)
        else np.zeros(y.shape, jax.dtypes.float0)   # integer outputs have none
        for k, (t, y) in enumerate(zip(tangents, outputs)))
    return result if isinstance(out, tuple) else result[0]


class Function:
    """Base class for custom differentiable functions, written the torch way.

    Subclass it with two static methods and call ``apply``::

        class Exp(jaxgrad.Function):
            @staticmethod
            def forward(ctx, x):
                y = jnp.exp(x)
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, grad_y):
                (y,) = ctx.saved_tensors
                return grad_y * y

        Exp.apply(x)

    Semantics (torch's unless noted):

    * Array arguments (``jax.Array``, tracers, numpy arrays) are inputs;
      anything else (numbers, strings, tuples of ints, ...) is static, passed
      to ``forward`` as is, and must get ``None`` from ``backward``. A
      container holding arrays is an error (it cannot be static under jit).
    * ``forward`` returns an array or a tuple of arrays; ``backward`` receives
      one gradient per output (zeros for integer outputs and for those given
      to ``ctx.mark_non_differentiable``) and returns one per input, a single
      array or a tuple; ``None`` means zero, extra trailing ``None``\\ s are
      allowed. Gradients for integer inputs are ignored.
    * ``ctx.save_for_backward(*arrays)`` / ``ctx.saved_tensors``; plain ctx
      attributes for anything else. Arrays stored as attributes work too
      (they become residuals), so ``ctx.mask = x > 0`` is fine.
    * ``ctx.needs_input_grad`` says which inputs JAX differentiates.
    * Differences from torch: a gradient of the wrong shape or dtype is an
      error (torch sums a broadcast gradient down and casts dtypes silently);
      ``forward``/``backward`` must be ``@staticmethod`` (torch tolerates
      plain functions); ``apply`` takes no keyword arguments (as torch).
    * Works under ``jax.jit``, ``jax.vmap`` (``forward``/``backward`` see one
      example) and repeated differentiation: an outer ``jax.grad`` applies
      ``backward`` again on the forward path and differentiates the jnp code
      of ``backward`` itself, like torch's ``create_graph=True``.
    * Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) runs an
      optional ``jvp(ctx, *input_tangents)`` staticmethod, torch's forward-AD
      contract: after ``forward`` on the same ctx, with ``ctx.saved_tensors``
      the arrays given to ``ctx.save_for_forward``; zeros for a floating input
      without a tangent, None for a static or integer input; one tangent (or None) per
      output. Without ``jvp``, forward mode is a TypeError.
    * ``forward`` and ``backward`` run when JAX traces the program; use
      ``jax.debug.print`` to see run-time values inside them.

    Raises (from ``apply`` or when the backward pass is traced):
      TypeError, ValueError naming the subclass, ``forward``/``backward`` and
      the input position: methods missing or not static, a non-array output,
      the wrong number of gradients, a gradient for a static input, a
      gradient of the wrong shape or dtype.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> class Cube(jaxgrad.Function):
      ...     @staticmethod
      ...     def forward(ctx, x):
      ...         ctx.save_for_backward(x)
      ...         return x ** 3
      ...     @staticmethod
      ...     def backward(ctx, grad):
      ...         (x,) = ctx.saved_tensors
      ...         return 3 * x ** 2 * grad
      >>> jax.grad(lambda x: Cube.apply(x).sum())(jnp.array([1.0, 2.0], jnp.float32)).tolist()
      [3.0, 12.0]
    """

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any) -> Array | tuple[Array, ...]:
        """Compute the outputs from the inputs; save what ``backward`` needs on ctx."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Array
                 ) -> Array | None | tuple[Array | None, ...]:
        """Return one gradient (or None) per input of ``forward``."""
        raise NotImplementedError

    @staticmethod
    def jvp(ctx: FunctionCtx, *grad_inputs: Array | None
            ) -> Array | None | tuple[Array | None, ...]:
        """Optional, for forward mode: one tangent (or None) per output of
        ``forward``, from one tangent per input (None for a static input);
        ``ctx.saved_tensors`` holds what ``forward`` gave ``ctx.save_for_forward``."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Array | tuple[Array, ...]:
        """Run ``forward`` on ``args`` with ``backward`` as its VJP."""
        name = cls.__name__
        if kwargs:
            raise TypeError(f"{name}.apply takes positional arguments only (as in "
                            f"torch), got keyword(s) {sorted(kwargs)}")
        _check_methods(cls)
        positions = _array_positions(name, args)
        if not positions:  # nothing to differentiate
            ctx = FunctionCtx(name, (False,) * len(args))
            return _check_outputs(name, cls.forward(ctx, *args))
        arrays = [jnp.asarray(args[i]) for i in positions]
        # The closure keeps only static values: arrays flow through the custom_vjp.
        statics = tuple(None if i in positions else a for i, a in enumerate(args))
        return _custom_vjp(cls, statics, positions)(*arrays)
