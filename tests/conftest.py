"""Test-wide set-up: float64 is available (arrays created as float32 stay float32)."""

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
