"""Test-wide set-up: XLA's backend compiles at -O0 (below), float64 is
available (arrays created as float32 stay float32), and
``algorithm="autotune"``'s plan cache lives in a temporary directory.

Hypothesis profiles for the property-based tests: ``ci`` (the default) is
bounded and derandomised, so every run draws the same examples;
``JAXGRAD_FUZZ=long`` selects ``long``, 40x the examples, freshly random each
run (a failure prints the blob to reproduce it with ``@reproduce_failure``).
Tests scale ``settings.default.max_examples`` by their own cost (see
``tests/torch/_strategies.fuzz``).
"""

import atexit
import os
import shutil
import tempfile

# XLA's LLVM backend at -O0 while testing: the same HLO (what jaxgrad emits
# and XLA fuses), compiled ~30% faster (MobileNetV2's value-and-grad: 6.7 ->
# 4.7 s), which took the suite from 904 to 703 s on the 2-core CI machine.
# Only instruction selection changes (no fused multiply-adds), hence the last
# bit of some operations' results, which cancellation can amplify (the tanh
# GELU's f′ at x = -4 by JAX autodiff: 1.6e-12 relative in float64), below
# every tolerance. Set before jax starts its backend; subprocesses inherit it.
# JAXGRAD_TEST_XLA_DEFAULT=1 (or an XLA_FLAGS that sets the level) tests at
# XLA's default level instead.
if (os.environ.get("JAXGRAD_TEST_XLA_DEFAULT") != "1"
        and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", "")):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402 - after XLA_FLAGS
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

# algorithm="autotune" keeps its plans on disk: during the tests in a fresh
# directory of this process (and of the subprocesses it starts), never in the
# home directory. Tests that look at the cache point it at their own tmp_path.
os.environ["JAXGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxgrad-test-cache-")
atexit.register(shutil.rmtree, os.environ["JAXGRAD_CACHE_DIR"], ignore_errors=True)

# Every example jits (compiles) at least one program: the deadline and the
# "slow data generation" checks would flag that, not a problem of the test.
_FUZZ_COMMON = dict(deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=10, derandomize=True, **_FUZZ_COMMON)
settings.register_profile("long", max_examples=400, derandomize=False,
                          print_blob=True, **_FUZZ_COMMON)
settings.load_profile("long" if os.environ.get("JAXGRAD_FUZZ") == "long" else "ci")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# The longest files first. pytest-xdist (``--dist loadfile``) hands each worker
# whole files in collection order; a long file collected last (tests/torch/
# comes after tests/) kept one worker busy for minutes after the other ran out
# of files. Longest first (and the rest, each under 60 s, after them), the two
# finish together. Seconds per file (sum of its tests' durations) in a full
# run on the 2-core CI machine (2026-12-06, `pytest --durations=0`).
LONGEST_FIRST = (
    "tests/torch/test_models_torch.py",     # ~155 s
    "tests/test_sharding.py",               # ~100 s, two subprocesses
    "tests/test_forward_mode.py",           # ~95 s
    "tests/test_examples.py",               # ~80 s, eight scripts
    "tests/torch/test_complex_torch.py",    # ~75 s
    "tests/torch/test_integer_torch.py",    # ~70 s
    "tests/test_algorithms.py",             # ~65 s
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    root = config.rootpath

    def order(item):
        try:
            path = item.path.relative_to(root).as_posix()
        except ValueError:
            path = ""
        return rank.get(path, len(rank))

    items.sort(key=order)   # stable: every file keeps its own order
