"""How a rule is declared: the recurring shapes of jaxgrad's explicit VJPs.

Every backward rule in jaxgrad is one of a few patterns, and each pattern is
declared here once, the ``custom_vjp`` counterpart of jax's ``defbilinear`` and
``deflinear``. A family states its forward maps, their adjoints and its
derivation; this module turns them into ``jax.custom_vjp`` functions that are
closed under differentiation (every order runs the family's own maps).

``linear_pair(forward, adjoint)``: a map A, linear in its first argument, and
its adjoint Aᵀ, ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for all x, y. Then

  VJP of A at x, cotangent ȳ:   x̄ = Aᵀ ȳ
  VJP of Aᵀ at y, cotangent x̄:  ȳ = A x̄

so each is the other's VJP, and neither depends on its input: every order
alternates A and Aᵀ. The maps may take constant arrays after the first
argument (indices, class weights, scale factors: no cotangent) and then
static, hashable arguments (shapes, specs).

``bilinear(op, grad_a, grad_b)``: a map y = op(a, b), linear in each argument,
with its two adjoints ā = grad_a(ȳ, b) and b̄ = grad_b(a, ȳ):

  ⟨op(a, b), ȳ⟩ = ⟨a, grad_a(ȳ, b)⟩ = ⟨b, grad_b(a, ȳ)⟩.

Each of the three is bilinear, and reading that identity with a different
argument held fixed gives every VJP from the same three maps:

  op(a, b)        ā = grad_a(ȳ, b)       b̄ = grad_b(a, ȳ)
  grad_a(g, b)    ḡ = op(ā', b)          b̄ = grad_b(ā', g)      (ā' its cotangent)
  grad_b(a, g)    ā = grad_a(g, b̄')      ḡ = op(a, b̄')          (b̄' its cotangent)

``explicit(impl, backward)``: any other op, y = impl(*arrays, *static), whose
VJP is ``backward(residuals, ȳ, *static)``, written with rules again (a
nonlinear op and its gradient op, e.g. softmax and softmax_grad). Its JVP
is the transpose of that backward in ȳ (see ``explicit``).

``add_broadcast(add, reduce)``: y + b with b broadcast, VJP (ȳ, reduce(ȳ)).

``identity_with_backward(backward)``: y = x, VJP x̄ = backward(ȳ, *constants).

Integer and bool operands have no derivative: where no operand a rule could
differentiate is floating or complex, each declared function runs its
implementation directly, without the custom_vjp, and JAX gives those operands
its own zero (float0) cotangents, as for any integer input. That is how the
ops whose torch counterparts compute integer tensors (the convolutions,
linear, pad, pooling, ...) run them.

Forward mode. A ``custom_vjp`` has no JVP, so ``jax.jvp`` of one fails. The
linear and bilinear families know theirs without differentiating anything: a
linear map's JVP is the map, A(x + ε dx) = A x + ε A dx, and a bilinear map's
is op(a + ε da, b + ε db) = op(a, b) + ε (op(da, b) + op(a, db)) + O(ε²). So
every function ``linear_pair``, ``bilinear``, ``add_broadcast`` and
``identity_with_backward`` declare also has a ``custom_jvp`` twin whose JVP
is that formula, written with the family's own functions; the twin runs where
forward mode will process the call (:func:`_forward_mode`), the ``custom_vjp``
everywhere else. An ``explicit`` op (nonlinear) gets its JVP from its
backward: ȳ ↦ backward(r, ȳ) is linear, with transpose J, ẏ = J ẋ.

The epilogue every rule applies to a cotangent: cast to its primal's dtype
(where a widened ``preferred_element_type`` or a promotion changed it) and,
inside ``shard_map``, summed over the mesh axes it varies along and its primal
does not (``match_vma``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from ._args import differentiable


# --------------------------------------------------------------------------
# The cotangent epilogue.
#
# Inside ``jax.shard_map(check_vma=True)`` each value's type records the mesh
# axes it varies along. A weight w that is the same on every device
# (invariant) meets a per-device x inside the forward; its cotangent there is
# per-device, w̄ = Σ_devices w̄_device, so the backward must sum the device
# contributions over exactly the axes the cotangent varies along and the primal
# does not (autodiff does the same: the transpose of the implicit broadcast to
# varying is ``psum``). Where both vary alike, or outside shard_map, the sum is
# empty and this is the identity, so no contribution is counted twice.


def match_vma(cotangent, primal):
    """``cotangent`` summed over the mesh axes it varies along but ``primal`` does not."""
    extra = _varying(cotangent) - _varying(primal)
    return lax.psum(cotangent, tuple(sorted(extra))) if extra else cotangent


def _varying(x) -> frozenset:
    return jax.typeof(x).manual_axis_type.varying


def epilogue(cotangent, primal):
    """The cotangent of ``primal`` in its dtype and with its varying mesh axes."""
    if cotangent.dtype != primal.dtype:
        cotangent = cotangent.astype(primal.dtype)
    return match_vma(cotangent, primal)


def _late(impl: Callable) -> Callable:
    """``impl``, looked up by name in its module at each call (when it is a
    module-level function there).

    A rule keeps the function it was declared with. Resolving the name at call
    time lets a test replace an implementation in its module
    (``tests/_autodiff.forbid_autodiff``) and see whether JAX ever
    differentiates it; without this the replacement would never be reached.
    The lookup happens at trace time only.
    """
    module = sys.modules.get(getattr(impl, "__module__", None) or "")
    name = getattr(impl, "__name__", "")
    if module is None or getattr(module, name, None) is not impl:
        return impl

    def call(*args):
        return getattr(module, name)(*args)
    return call


@contextlib.contextmanager
def own_promotion():
    """JAX's standard dtype promotion, with rank promotion allowed, for the
    body of a rule.

    Both promotions inside a rule are jaxgrad's own doing, not the caller's: a
    cotangent widened by ``preferred_element_type`` meets the narrower other
    operand in a backward, and the implementations broadcast a bias, a
    window's weights or a table of positions of lower rank. The public
    functions check their operands' dtypes and shapes themselves, so
    ``jax.numpy_dtype_promotion("strict")`` and
    ``jax.numpy_rank_promotion("raise")`` (JAX's own tests run under both)
    must not reach inside a rule. Every rule declared here runs under it; the
    few ``custom_vjp`` functions declared by hand (``_activation``'s elementwise pair,
    ``_loss``'s soft cross-entropy pair, ``_pool``'s window maximum) enter it
    themselves.
    """
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


def primal(value):
    """``value`` as an array where JAX hands a custom_vjp a Python scalar.

    Differentiating w.r.t. a Python float (``jax.grad(jaxgrad.sigmoid)(0.5)``)
    gives the rules a float subclass with a ``dtype`` but no array methods
    (``.astype``, ``.shape``); it becomes a (weakly typed) array. Everything
    else, NumPy scalars and static parameters included, passes unchanged."""
    if (isinstance(value, (bool, int, float, complex)) and hasattr(value, "dtype")
            and not isinstance(value, np.generic)):
        return jnp.asarray(value)
    return value


def _primals(values: tuple) -> tuple:
    """:func:`primal` of each: what a rule's forward saves for its backward."""
    return tuple(map(primal, values))


def _run(impl: Callable) -> Callable:
    """How a rule calls its implementation: looked up late (:func:`_late`),
    under :func:`own_promotion`, its Python-scalar operands as arrays
    (:func:`primal`)."""
    run = _late(impl)

    def call(*args):
        with own_promotion():
            return run(*map(primal, args))
    return call


def _differentiable(*values) -> bool:
    """Whether any of ``values`` (None skipped) has a floating or complex dtype."""
    return any(v is not None and differentiable(v) for v in values)


def _named(fn: Callable, impl: Callable) -> Callable:
    """``fn`` under the name, docstring and module of the ``impl`` it declares."""
    return functools.wraps(impl, assigned=("__module__", "__name__", "__qualname__",
                                           "__doc__"), updated=())(fn)


# --------------------------------------------------------------------------
# Forward mode: which twin runs.
#
# The choice is made at trace time, from the differentiation that will
# process the call: walking from the current trace to its parents, vmap's
# BatchTrace hands a custom_vjp or custom_jvp call on to its parent with
# batched rules (look through it at the unbatched operands), and a JVP or
# linearize trace that holds none of the operands hands it on unchanged. The
# first differentiating trace that holds an operand decides: ``jax.jvp``'s
# JVPTrace, the custom_jvp twin, whose rule evaluates the family's functions
# again at the parent trace, where they choose afresh (under ``jax.vjp`` of
# ``jax.jvp`` they are custom_vjps); ``jax.grad``'s LinearizeTrace, or none
# (plain calls, jit), the custom_vjp, as before: a custom_jvp there would be
# linearised by JAX and its tangent transposed, which a custom_vjp cannot be.
# What this cannot see: a call staged into a jaxpr (inside ``jit``, ``scan``,
# ``cond``, ``checkpoint``, ``shard_map``) that JAX differentiates in forward
# mode afterwards; there jax.jvp fails as for any custom_vjp (put the jit
# outside the jvp). With ``jax_use_direct_linearize`` off, jax.grad itself
# runs on a JVPTrace, so the twin is never chosen (forward mode then fails as
# before), and a JAX whose internals differ from these degrades the same way.

try:
    from jax._src import core as _jax_core
    from jax._src.interpreters import ad as _jax_ad
    from jax._src.interpreters import batching as _jax_batching
    _DIFFERENTIATING = (_jax_ad.JVPTrace, _jax_ad.LinearizeTrace)
except (ImportError, AttributeError):   # pragma: no cover - a jax without these internals
    _jax_core = None


def _direct_linearize() -> bool:
    """Whether jax.grad runs on its own LinearizeTrace (JAX's default since
    0.7; a JAX without the flag has only that path)."""
    return getattr(jax.config, "jax_use_direct_linearize", True)


def _forward_mode(*operands) -> bool:
    """Whether jax.jvp's trace is the first differentiation to process these operands."""
    if _jax_core is None or not _direct_linearize():
        return False
    try:
        trace = _jax_core.trace_ctx.trace
        operands = jax.tree.leaves(operands)
        while True:
            if isinstance(trace, _jax_batching.BatchTrace):
                operands = [v.val if isinstance(v, _jax_batching.BatchTracer)
                            and v._trace.tag is trace.tag else v for v in operands]
            elif isinstance(trace, _DIFFERENTIATING):
                if any(isinstance(v, _jax_core.Tracer) and v._trace.tag is trace.tag
                       for v in operands):
                    return isinstance(trace, _jax_ad.JVPTrace)
            else:
                return False
            trace = trace.parent_trace
    except AttributeError:   # pragma: no cover - JAX's internals changed
        return False


def forward_mode_in_stack() -> bool:
    """Whether a ``jax.jvp`` is being traced anywhere around this call: then a
    rule must not be staged into a jit of jaxgrad's own (its custom_vjp could
    not get its twin there)."""
    if _jax_core is None or not _direct_linearize():
        return False
    try:
        trace = _jax_core.trace_ctx.trace
        while trace is not None and not isinstance(trace, _jax_ad.JVPTrace):
            trace = getattr(trace, "parent_trace", None)
        return trace is not None
    except AttributeError:   # pragma: no cover - JAX's internals changed
        return False


def with_forward_mode(rule: Callable, tangent: Callable, *,
                       symbolic_zeros: bool = True) -> Callable:
    """``rule(static, *arrays)`` (a custom_vjp), or its custom_jvp twin where
    forward mode processes the call.

    ``tangent(choose, static, primals, tangents, out)`` is the twin's JVP at
    its output ``out``, written with ``choose`` (this function's result, so
    that each term picks its twin again) or other rules; a zero tangent
    arrives as ``SymbolicZero`` unless ``symbolic_zeros`` is False (then as
    zeros).
    """
    @functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
    def twin(static, *arrays):
        return rule(static, *arrays)

    def twin_jvp(static, primals, tangents):
        out = choose(static, *primals)
        return out, tangent(choose, static, primals, tangents, out)

    twin.defjvp(twin_jvp, symbolic_zeros=symbolic_zeros)

    def choose(static, *arrays):
        return (twin if _forward_mode(*arrays) else rule)(static, *arrays)
    return choose


def nonzero_tangent(tangent) -> bool:
    return not isinstance(tangent, SymbolicZero)


def _linear_tangent(choose, static, primals, tangents, out):
    """d A(x; c) = A(dx; c): linear in x; the constants c get no tangent (as
    they get no cotangent)."""
    if nonzero_tangent(tangents[0]):
        return choose(static, tangents[0], *primals[1:])
    return jnp.zeros_like(out)


def _bilinear_tangent(choose, static, primals, tangents, out):
    """d op(a, b) = op(da, b) + op(a, db)."""
    (a, b), (da, db) = primals, tangents
    terms = ([choose(static, da, b)] if nonzero_tangent(da) else []) + (
        [choose(static, a, db)] if nonzero_tangent(db) else [])
    return sum_terms(terms, out)


def transposed_backward(pullback: Callable, out, tangents):
    """ẏ = J ẋ for an op whose hand-written backward is ``pullback``, ȳ ↦ Jᵀ ȳ
    (one cotangent per input, None for an input without one).

    The pullback is linear in ȳ, and its transpose is J; JAX takes that
    transpose from the pullback's own rules (the op's hand-written
    second-order VJP w.r.t. ȳ), so no forward implementation is
    differentiated. The point ȳ = 0 is arbitrary: a linear map's transpose
    does not depend on it.
    """
    cts, transpose = jax.vjp(lambda ct: tuple(pullback(ct)),
                             jax.tree.map(jnp.zeros_like, out))
    dots = tuple(None if c is None else
                 jnp.zeros_like(c) if not nonzero_tangent(t) else t.astype(c.dtype)
                 for c, t in zip(cts, tangents))
    return transpose(dots)[0]


def sum_terms(terms: list, out):
    """The sum of a JVP's terms (zeros like ``out`` for none)."""
    if not terms:
        return jnp.zeros_like(out)
    return functools.reduce(lambda a, b: a + b, terms)


# --------------------------------------------------------------------------
# A linear map and its adjoint.


def linear_pair(forward: Callable, adjoint: Callable, *, constants: int = 0):
    """(A, Aᵀ): ``forward`` and ``adjoint`` as custom_vjps, each the other's VJP.

    Args:
      forward: ``forward(x, *constants, *static) -> A x``, linear in x.
      adjoint: ``adjoint(y, *constants, *static) -> Aᵀ y``, same constants and
        static arguments.
      constants: how many array arguments after the first are constants
        (no cotangent: indices, class weights, scale factors).

    Returns:
      Two functions with the signatures of ``forward`` and ``adjoint``.
    """
    def declare(impl):
        run = _run(impl)

        @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
        def rule(static, x, *consts):
            return run(x, *consts, *static)

        def rule_fwd(static, x, *consts):
            return chosen(static, x, *consts), _primals(consts)

        def rule_bwd(static, consts, ct):
            return (maps[impl is forward](static, ct, *consts),) + (None,) * len(consts)

        rule.defvjp(rule_fwd, rule_bwd)
        chosen = with_forward_mode(rule, _linear_tangent)
        return chosen

    # maps[True]: A's VJP, which is Aᵀ; maps[False]: Aᵀ's VJP, which is A.
    maps = {}
    maps[False], maps[True] = declare(forward), declare(adjoint)

    def call(rule, impl):
        run = _run(impl)

        def op(x, *args):
            if not _differentiable(x):
                return run(x, *args)
            return rule(tuple(args[constants:]), x, *args[:constants])
        return _named(op, impl)

    return call(maps[False], forward), call(maps[True], adjoint)


# --------------------------------------------------------------------------
# A bilinear map and its two adjoints.


# Set while a bilinear op's forward is traced as the forward of its VJP (its
# output will get a cotangent), so that an implementation may shape its
# output for the consumers a backward pass adds (``_conv._core``: the CPU
# taps forward computed in halves, written once for them).
_DIFFERENTIATED = contextvars.ContextVar("jaxgrad_differentiated", default=False)


def differentiated() -> bool:
    """Whether the op being traced is the forward of a VJP (True) or a plain
    evaluation (False)."""
    return _DIFFERENTIATED.get()


def bilinear(op: Callable, grad_a: Callable, grad_b: Callable, *,
             shape_a: Callable | None = None, shape_b: Callable | None = None):
    """(op, grad_a, grad_b) as custom_vjps whose VJPs are written in each other.

    Args:
      op: ``op(a, b, *static) -> y``, bilinear.
      grad_a: ``grad_a(g, b, *static[, shape_a(a)]) -> ā``, op's adjoint in a.
      grad_b: ``grad_b(a, g, *static[, shape_b(b)]) -> b̄``, op's adjoint in b.
      shape_a, shape_b: what the adjoints need to know about the argument they
        rebuild, ``shape_a(a, *static)`` (a static value such as its spatial
        shape); None when they need nothing.

    Returns:
      The three functions, with the signatures above. Every cotangent goes
      through :func:`epilogue`.
    """
    def extra(fn, array, static):
        return () if fn is None else (fn(array, *static),)

    run_op, run_grad_a, run_grad_b = _run(op), _run(grad_a), _run(grad_b)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def op_vjp(static, a, b):
        return run_op(a, b, *static)

    def op_fwd(static, a, b):
        token = _DIFFERENTIATED.set(True)
        try:
            y = op_rule(static, a, b)
        finally:
            _DIFFERENTIATED.reset(token)
        return y, _primals((a, b))

    def op_bwd(static, residuals, g):
        a, b = residuals
        return (epilogue(grad_a_rule(static + extra(shape_a, a, static), g, b), a),
                epilogue(grad_b_rule(static + extra(shape_b, b, static), a, g), b))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def grad_a_vjp(static, g, b):
        return run_grad_a(g, b, *static)

    def grad_a_fwd(static, g, b):
        return grad_a_rule(static, g, b), _primals((g, b))

    def grad_a_bwd(static, residuals, ct):
        # ⟨grad_a(g, b), ct⟩ = ⟨op(ct, b), g⟩ = ⟨b, grad_b(ct, g)⟩.
        g, b = residuals
        base = static[:len(static) - (shape_a is not None)]
        return (epilogue(op_rule(base, ct, b), g),
                epilogue(grad_b_rule(base + extra(shape_b, b, base), ct, g), b))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def grad_b_vjp(static, a, g):
        return run_grad_b(a, g, *static)

    def grad_b_fwd(static, a, g):
        return grad_b_rule(static, a, g), _primals((a, g))

    def grad_b_bwd(static, residuals, ct):
        # ⟨grad_b(a, g), ct⟩ = ⟨grad_a(g, ct), a⟩ = ⟨op(a, ct), g⟩.
        a, g = residuals
        base = static[:len(static) - (shape_b is not None)]
        return (epilogue(grad_a_rule(base + extra(shape_a, a, base), g, ct), a),
                epilogue(op_rule(base, a, ct), g))

    op_vjp.defvjp(op_fwd, op_bwd)
    grad_a_vjp.defvjp(grad_a_fwd, grad_a_bwd)
    grad_b_vjp.defvjp(grad_b_fwd, grad_b_bwd)
    # What the rules above and the public functions call: the custom_vjp, or
    # where forward mode processes the call its twin, d op = op(da, b) + op(a, db).
    op_rule = with_forward_mode(op_vjp, _bilinear_tangent)
    grad_a_rule = with_forward_mode(grad_a_vjp, _bilinear_tangent)
    grad_b_rule = with_forward_mode(grad_b_vjp, _bilinear_tangent)

    def call(rule, impl):
        run = _run(impl)

        def fn(a, b, *static):
            if not _differentiable(a, b):
                return run(a, b, *static)
            return rule(static, a, b)
        return _named(fn, impl)

    return call(op_rule, op), call(grad_a_rule, grad_a), call(grad_b_rule, grad_b)


# --------------------------------------------------------------------------
# Any other op: a forward and a backward written with rules.


def explicit(impl: Callable, backward: Callable, *, static: int = 0,
             save: Callable | None = None, symbolic_zeros: bool = False):
    """``impl`` as a custom_vjp whose VJP is ``backward``.

    Args:
      impl: ``impl(*arrays, *static) -> y``.
      backward: ``backward(residuals, ȳ, *static) -> (ā₁, ā₂, ...)``, one
        cotangent per array argument (None for none); written with rules, so
        that its own derivative is explicit too.
      static: how many trailing arguments are static (hashable).
      save: ``save(arrays, y) -> residuals``; default the array arguments.
      symbolic_zeros: ``impl`` returns a tuple, and ``backward`` gets None for
        each of its cotangents that is known to be zero (an output nobody
        differentiates), so that it can leave out that output's terms rather
        than multiply a materialised zero by a possibly infinite factor.

    Returns:
      A function with the signature of ``impl``.
    """
    run = _run(impl)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def rule(statics, *arrays):
        return run(*arrays, *statics)

    def rule_fwd(statics, *arrays):
        if symbolic_zeros:   # each array comes wrapped with its `perturbed` bit
            arrays = tuple(None if a is None else a.value for a in arrays)
        y = chosen(statics, *arrays)
        arrays = _primals(arrays)
        return y, (arrays if save is None else save(arrays, y))

    def rule_bwd(statics, residuals, ct):
        if symbolic_zeros:
            ct = tuple(None if isinstance(c, SymbolicZero) else c for c in ct)
        return tuple(backward(residuals, ct, *statics))

    rule.defvjp(rule_fwd, rule_bwd, symbolic_zeros=symbolic_zeros)

    def tangent(choose, statics, primals, tangents, out):
        arrays = _primals(primals)
        residuals = arrays if save is None else save(arrays, out)
        return transposed_backward(lambda ct: backward(residuals, ct, *statics),
                                   out, tangents)

    chosen = with_forward_mode(rule, tangent)

    def op(*args):
        split = len(args) - static
        if not _differentiable(*args[:split]):
            return run(*args)
        return chosen(tuple(args[split:]), *args[:split])

    return _named(op, impl)


# --------------------------------------------------------------------------
# Adding a broadcast operand, and an identity with a chosen backward.


def add_broadcast(add: Callable, reduce: Callable):
    """y = add(x, b) with b broadcast onto x; VJP (ȳ, reduce(ȳ)).

    ``reduce`` is the adjoint of the broadcast (a sum over the broadcast
    dims), itself a rule, so higher orders stay explicit.
    """
    run = _run(add)

    @jax.custom_vjp
    def rule(x, b):
        return run(x, b)

    def rule_fwd(x, b):
        return chosen((), x, b), primal(b)   # b only for its type (the mesh axes it varies along)

    def rule_bwd(b, g):
        return g, match_vma(reduce(g), b)

    rule.defvjp(rule_fwd, rule_bwd)
    # Forward mode: d add(x, b) = add(dx, db), zeros where a tangent is zero.
    chosen = with_forward_mode(lambda static, x, b: rule(x, b),
                                lambda choose, static, primals, tangents, out:
                                choose(static, *tangents), symbolic_zeros=False)

    def op(x, b):
        return chosen((), x, b) if _differentiable(x, b) else run(x, b)
    return _named(op, add)


def identity_with_backward(backward: Callable):
    """y = x; VJP x̄ = backward(ȳ, *constants), the constants getting none.

    ``backward`` must itself be a rule (e.g. one map of a ``linear_pair``), so
    that an outer differentiation of the backward runs hand-written rules too.
    The forward returns this op, so a second differentiation sees it again.
    """
    @jax.custom_vjp
    def rule(x, *constants):
        return x

    def rule_fwd(x, *constants):
        return chosen((), x, *constants), _primals(constants)

    def rule_bwd(constants, y_bar):
        return (backward(y_bar, *constants),) + (None,) * len(constants)

    rule.defvjp(rule_fwd, rule_bwd)
    # Forward mode: the identity's JVP is dx (the constants get none).
    chosen = with_forward_mode(lambda static, x, *constants: rule(x, *constants),
                                _linear_tangent)

    def op(x, *constants):
        return chosen((), x, *constants) if _differentiable(x) else x
    return op
