"""``bench/gpu.sh``'s dry run on the CPU: every step runs and leaves its results.

On an NVIDIA machine the same script runs the torch-parity tests with JAX on
the GPU, the full bench and the formulation sweep (``bench/results/gpu-*``);
here each step runs at smoke size with ``--backend cpu``, so a broken step is
found before a GPU session spends its minutes on it.
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_script_dry_run_on_cpu(tmp_path):
    out = tmp_path / "gpu-results"
    env = {**os.environ, "JAXGRAD_GPU_BACKEND": "cpu", "JAXGRAD_GPU_TINY": "1",
           "JAXGRAD_GPU_INSTALL": "0", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for step in ("smoke", "torch-parity", "bench", "sweep"):
        assert f"== {step}: exit 0" in done.stdout, step
    bench = json.loads((out / "cpu-auto.json").read_text())
    assert [case["name"] for case in bench["cases"]] == ["resnet50-1x1"]
    sweep = json.loads((out / "sweep-cpu.json").read_text())
    assert len(sweep["records"]) == 2
    for record in sweep["records"]:
        # every candidate ran and agrees with autodiff (float32)
        assert record["candidates"], record
        for name, row in record["candidates"].items():
            assert row["median_s"] > 0 and row["max_rel_error"] < 1e-4, (name, row)
    with tarfile.open(out / "all.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"cpu-auto.json", "sweep-cpu.json", "torch-parity.log"} <= names
