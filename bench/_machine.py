"""What a result was measured on: machine, versions, environment."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from ._launch import available_cpus

# Variables that change what is measured; recorded whether set or not (null).
ENV_KEYS = ("XLA_FLAGS", "JAX_PLATFORMS", "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "CUDA_VISIBLE_DEVICES",
            "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
            "TF_CPP_MIN_LOG_LEVEL", "LD_PRELOAD")
_PACKAGES = ("jax", "jaxlib", "numpy", "torch", "jaxgrad")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what platform says."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where unavailable."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def busy_note(load: list[float] | None, cpus: int) -> list[str]:
    """A note when other work was running at the start: timings are then noisy.

    >>> busy_note([1.7, 1.0, 0.5], 2)[0][:57]
    'the machine was busy at the start (load average 1.7 on 2 '
    >>> busy_note([0.1, 0.3, 0.5], 2)
    []
    """
    if load is None or load[0] < 0.5:
        return []
    return [(f"the machine was busy at the start (load average {load[0]} on "
             f"{cpus} CPUs): timings are noisy, torch's multi-threaded CPU "
             "timings most of all")]


def machine(gpu_model: str | None) -> dict:
    return {"platform": platform.platform(), "architecture": platform.machine(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "cpus_available": available_cpus(), "gpu_model": gpu_model,
            "load_average": load_average()}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    found = {name: _version(name) for name in _PACKAGES}
    return {"python": platform.python_version(), **found}


def environment() -> dict:
    return {key: os.environ.get(key) for key in ENV_KEYS}
