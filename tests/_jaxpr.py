"""Which primitives a traced function runs outside jaxgrad's rules.

``forbid_autodiff`` poisons implementations by their module attribute, which a
rule declared with a ``_rules`` helper has already captured. This check looks
at the result instead: trace grad-of-grad (as ``run_second_order`` does) and
list the primitives that run *outside* every ``custom_vjp_call``. A
hand-written rule keeps an op's data movement (gathers, scatters, pads,
transposes, reshapes) inside its custom_vjp calls, at every order; JAX
autodiff of an implementation puts the JVP / transpose of those primitives at
the top level, where they show up here.
"""

from __future__ import annotations

import jax
import jax.extend.core as jex
import jax.numpy as jnp

# Primitives that move data around: an op's implementation uses them, the
# second-order harness below does not.
DATA_MOVEMENT = frozenset({"gather", "scatter-add", "scatter", "pad", "slice",
                           "dynamic_slice", "dynamic_update_slice", "transpose",
                           "reshape", "concatenate", "rev", "select_n", "squeeze",
                           "expand_dims"})


def _names(jaxpr) -> set[str]:
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name.startswith("custom_vjp_call"):
            continue            # a rule: its body is hand-written, at every order
        found.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, jex.ClosedJaxpr):
                    found |= _names(sub.jaxpr)
                elif isinstance(sub, jex.Jaxpr):
                    found |= _names(sub)
    return found


def second_order_outside_rules(fn, *args) -> set[str]:
    """The primitives of grad-of-grad of ``fn`` (both forms of ``run_second_order``)
    that run outside any custom_vjp call, nested jit bodies included."""
    def penalty(*args):
        y, vjp = jax.vjp(fn, *args)
        return sum(jnp.sum(g * g) for g in vjp(jnp.ones_like(y)))

    def vjp_of_output(*args):
        y, vjp = jax.vjp(fn, *args)
        return vjp(y)

    def both(*args):
        out, vjp = jax.vjp(vjp_of_output, *args)
        return jax.grad(penalty, argnums=tuple(range(len(args))))(*args), vjp(out)

    return _names(jax.make_jaxpr(both)(*args).jaxpr)
