"""Run every examples/*.py as a script; each must pass all the checks it prints.

The scripts are started together (they spend much of their time importing and
compiling, single-threaded) and run with this interpreter. A further run
breaks an op on purpose and expects the example to fail loudly.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT_S = 300
PARALLEL = 2  # scripts at a time: two cores in CI
# Arguments per script. port_networks.py runs the checks of
# tests/torch/test_models_torch.py (float64 parity, SGD in lockstep) on three
# networks, which that file already runs: here one network (the cheapest, 14
# of the script's 48 s) shows that the script works.
ARGS = {"port_networks.py": ["unet"]}

# shared_layer.py with a broken jaxgrad.linear whose weight gets no gradient:
# its weight-gradient checks must fail and the script must exit non-zero.
BROKEN_LINEAR = """
import runpy, sys
import jax, jaxgrad
correct = jaxgrad.linear
jaxgrad.linear = lambda x, w, b=None: correct(x, jax.lax.stop_gradient(w), b)
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs() -> dict:
    """{name: (exit code, output)} for every example and the broken run."""
    # Longest scripts (roughly, the largest files) first, to finish together.
    ordered = sorted(EXAMPLES, key=lambda path: -path.stat().st_size)
    jobs = {path.name: [str(path), *ARGS.get(path.name, [])] for path in ordered}
    jobs["broken"] = ["-c", BROKEN_LINEAR, str(ROOT / "examples" / "shared_layer.py")]
    queue, running, results = list(jobs.items()), {}, {}
    while queue or running:
        while queue and len(running) < PARALLEL:
            name, args = queue.pop(0)
            running[name] = _start(args)
        name, process = next(iter(running.items()))  # oldest first
        output, _ = process.communicate(timeout=TIMEOUT_S)
        results[name] = (process.returncode, output)
        del running[name]
    return results


def test_examples_found():
    names = {path.name for path in EXAMPLES}
    assert {"shared_layer.py", "custom_function.py", "hooks.py"} <= names
    assert set(ARGS) <= names


@pytest.mark.parametrize("example", [path.name for path in EXAMPLES])
def test_example_passes_its_checks(runs, example):
    code, output = runs[example]
    assert code == 0, f"{example} exited with {code}:\n{output}"
    checks = [line for line in output.splitlines() if line.strip().startswith("ok ")]
    assert checks, f"{example} reported no checks:\n{output}"
    assert "FAIL" not in output and output.rstrip().endswith("all checks passed"), output


def test_a_broken_op_fails_loudly(runs):
    code, output = runs["broken"]
    assert code == 1, output
    failed = [line for line in output.splitlines() if line.strip().startswith("FAIL ")]
    assert any("dL/dW" in line for line in failed), output
    assert any("shared gradient" in line for line in failed), output
    assert "FAILED:" in output and "all checks passed" not in output
