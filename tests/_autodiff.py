"""Guards proving that derivatives run hand-written rules only.

``forbid_autodiff`` wraps an op's primal implementations so that any JVP
through them (JAX autodiff of a forward) raises; ``run_second_order`` traces
grad-of-grad in the two forms used in practice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_jvp
def _poison(x):
    return x


@_poison.defjvp
def _poison_jvp(primals, tangents):
    raise AssertionError("JAX autodiff reached a primal implementation")


def forbid_autodiff(monkeypatch, module, names):
    """Make each ``module.<name>`` raise if JAX ever differentiates through it.

    Each function's float array arguments pass through an identity whose JVP
    rule raises: hand-written rules call these implementations only on
    unperturbed values, so any JVP through them is autodiff of a forward.
    """
    def is_float(a):
        return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating)

    for name in names:
        impl = getattr(module, name)

        def guarded(*args, _impl=impl):
            return _impl(*(_poison(a) if is_float(a) else a for a in args))

        monkeypatch.setattr(module, name, guarded)


def run_second_order(fn, *args):
    """grad-of-grad in both forms used in practice: a penalty on the VJP and
    ``check_grads``'s, which reuses the primal output as the cotangent."""
    def penalty(*args):
        y, vjp = jax.vjp(fn, *args)
        return sum(jnp.sum(g * g) for g in vjp(jnp.ones_like(y)))

    def vjp_of_output(*args):
        y, vjp = jax.vjp(fn, *args)
        return vjp(y)

    def both(*args):
        out, vjp = jax.vjp(vjp_of_output, *args)
        return jax.grad(penalty, argnums=tuple(range(len(args))))(*args), vjp(out)

    jax.eval_shape(both, *args)  # tracing is where autodiff would happen
