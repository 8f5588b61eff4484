"""Sharding and multi-device correctness on 8 simulated CPU devices.

The checks live in ``tests/multidevice/checks.py`` and run in one subprocess
started with ``--xla_force_host_platform_device_count=8``: the flag must be set
before jax initialises, and must not reach this process, whose other tests
run on one device. Each check below passes when the subprocess printed
``ok <name>``; a failure shows the subprocess's reason and traceback.

What is checked (see the module for details): jit over batch-sharded inputs
on meshes with Auto and with Explicit axes (values and gradients of conv2d
dense / grouped / depthwise, conv_transpose2d, linear, pooling and
cross_entropy equal the single-device ones, and second-order gradients under
explicit axes), on the 1-D mesh (8) and the 2-D mesh (2, 4) with the batch
split over both axes; tensor parallelism on the 2-D mesh (batch over "data",
conv output channels and linear out features over "model"); shard_map with
check_vma=True (gradients of replicated weights, inside and outside the map);
pmap with pmean; the collectives in the compiled data-parallel train step (one
all-reduce per parameter gradient, no all-gather, for dense, grouped and
depthwise convs and a grouped conv_transpose2d; grouped convs on Auto axes
too, forward and input gradient); ``conv_general_dilated`` and flax's
``nnx.Conv`` through it on explicit axes (1-D and 2-D meshes, second order);
``algorithm="autotune"`` timing nothing on a mesh or inside shard_map.
The subprocess runs twice, once with each
gradient formulation set as the default (``jaxgrad.set_conv_algorithm``);
arrays with explicit mesh axes always get the textbook one, so the checks
marked ``@check_explicit`` (explicit axes only) run in the first one only.
"""

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "multidevice" / "checks.py"
_DECORATED = re.findall(r"^@(check|check_explicit)\ndef (\w+)\(", SCRIPT.read_text(),
                        flags=re.MULTILINE)
CHECKS = [name for _, name in _DECORATED]
# Checks on explicit mesh axes only always get the "transpose" formulation
# (``_plan.choose``): they run in the first subprocess only.
FORMULATIONS = ("transpose", "taps")
RUNS = [(formulation, name) for formulation in FORMULATIONS
        for decorator, name in _DECORATED
        if decorator == "check" or formulation == FORMULATIONS[0]]
TIMEOUT_S = 600


# Run the script with a default formulation set first (runpy: as if run directly).
_RUN = ("import runpy, sys, jaxgrad; jaxgrad.set_conv_algorithm(sys.argv[1]); "
        "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@functools.cache
def _report(formulation: str) -> str:
    """The subprocess's output for the checks ``RUNS`` lists under ``formulation``."""
    names = [name for f, name in RUNS if f == formulation]
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _RUN, formulation, str(SCRIPT), *names],
                          env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TIMEOUT_S, cwd=SCRIPT.parent.parent.parent,
                          check=False)  # failures are reported per check below
    return done.stdout


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_subprocess_sees_8_devices(formulation):
    report = _report(formulation)
    assert "devices: 8" in report, report


def test_checks_found():
    assert len(CHECKS) >= 8 and "jit_explicit_axes" in CHECKS
    assert {name for _, name in RUNS} == set(CHECKS)


@pytest.mark.parametrize(("formulation", "name"), RUNS)
def test_check(formulation, name):
    report = _report(formulation)
    if f"\nok {name}\n" in report:
        return
    failure = re.search(rf"^FAIL {name}: .*?(?=^ok |^FAIL |^all checks|^FAILED:|\Z)",
                        report, flags=re.MULTILINE | re.DOTALL)
    pytest.fail(failure.group(0) if failure else f"{name} did not run:\n{report}")
