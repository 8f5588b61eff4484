"""The pinned JAX is one that computes correctly what jaxgrad's formulas rely on.

jax/jaxlib 0.10.2 miscompile on CPU a vmapped matrix-vector product followed by
a reduction (upstream jax issue 39103): under ``jax.jit`` the last of 16,385
float64 rows gave 266342400.0 where eager evaluation and the exact value give
268435456.0 = 2**28. ``pyproject.toml`` excludes 0.10.2 and ``constraints.txt``
pins the newest release without the bug; this test fails on a JAX that has it.
"""

import importlib.metadata

import jax
import jax.numpy as jnp
import numpy as np


def test_jit_of_vmapped_matvec_and_reduction_is_exact():
    # Row i is (i, 0, 0): the squared norm of eye(3) @ row is i**2, exact in
    # float64 for every i here (i**2 < 2**53).
    eye3 = jnp.eye(3, dtype=jnp.float64)
    rows = jnp.zeros((16385, 3), jnp.float64).at[:, 0].set(jnp.arange(16385.0))
    per_row = jax.vmap(lambda row: jnp.sum((eye3 @ row) ** 2))
    expected = np.arange(16385.0) ** 2
    assert expected[-1] == 268435456.0
    np.testing.assert_array_equal(np.asarray(per_row(rows)), expected)
    np.testing.assert_array_equal(np.asarray(jax.jit(per_row)(rows)), expected)


def test_installed_jax_is_not_the_excluded_release():
    for package in ("jax", "jaxlib"):
        assert importlib.metadata.version(package) != "0.10.2", package
