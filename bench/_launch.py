"""The parent side of ``jaxgrad bench``: one environment, one child process.

Measurements run in a fresh child process (``python -m jaxgrad_bench._child``)
so that everything read at start-up is set before JAX, XLA, torch or the C
library read it, and is the same for every implementation:

  XLA_FLAGS               from ``--xla-flags`` (else inherited unchanged)
  JAX_PLATFORMS           ``cpu`` or ``cuda,cpu``, from ``--backend``
  MALLOC_MMAP_THRESHOLD_  4 GiB: large buffers come from the heap and are
                          reused, instead of being mapped and unmapped (and
                          page-faulted in again) on every call
  MALLOC_TRIM_THRESHOLD_  16 GiB: freed memory is not returned to the kernel
  OMP_NUM_THREADS,        the number of CPUs this process may use
  MKL_NUM_THREADS
  XLA_PYTHON_CLIENT_PREALLOCATE  ``false`` on GPU: JAX allocates on demand
                          instead of taking 75% of the GPU's memory, which
                          torch shares

Without the two allocator settings glibc page faults inflate torch's CPU
timings (here 30% to several-fold), and they would affect XLA's buffers the
same way. The child records every one of these variables in results.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from . import _cases, _options

ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 << 30),
                 "MALLOC_TRIM_THRESHOLD_": str(16 << 30)}
# "cuda,cpu" rather than "cuda": with no CUDA plugin jax then starts on the CPU
# and `jax.devices("gpu")` says so in words (see _backend), instead of failing
# with a bare assertion.
JAX_PLATFORMS = {"cpu": "cpu", "gpu": "cuda,cpu"}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else all of them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def child_environment(args: argparse.Namespace, base: Mapping[str, str],
                      cpus: int) -> dict[str, str]:
    """The child's environment: ``base`` plus the documented settings."""
    env = dict(base)
    env.update(ALLOCATOR_ENV)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(cpus)
    env["JAX_PLATFORMS"] = JAX_PLATFORMS[args.backend]
    if args.backend == "gpu":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if args.xla_flags is not None:
        env["XLA_FLAGS"] = args.xla_flags
    return env


def child_command(args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "jaxgrad_bench._child", *_options.argv_of(args)]


def run(args: argparse.Namespace) -> int:
    """Run the measurements in a child process; return its exit status."""
    env = child_environment(args, os.environ, available_cpus())
    # SIGINT from a terminal reaches the whole process group; SIGTERM and
    # SIGHUP sent to this process alone (`kill`, `pkill -f 'jaxgrad bench'`)
    # are passed on, so the child never keeps measuring on its own. The
    # handlers go in before the child starts (a signal in between is passed
    # on once it has); an ignored signal (`nohup`) stays ignored.
    started: list[subprocess.Popen] = []
    pending: list[int] = []

    def pass_on(sig, frame):
        if started:
            started[0].send_signal(sig)
        else:
            pending.append(sig)

    previous = {sig: signal.signal(sig, pass_on)
                for sig in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        child = subprocess.Popen(child_command(args), env=env)
        started.append(child)
        for sig in pending:
            child.send_signal(sig)
        status = child.wait()
    except KeyboardInterrupt:
        # The child got the same SIGINT; let it finish and exit.
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if status < 0:
        # XLA aborts on an unknown flag in XLA_FLAGS (its own message above).
        print(f"jaxgrad bench: error: the measuring process died of "
              f"{signal.Signals(-status).name}", file=sys.stderr)
        return 1
    return status


def list_cases() -> str:
    """The ``--list`` text: one line per case with its suites and description."""
    lines = []
    for case in _cases.CASES:
        suites = "quick,full" if case.quick else "full"
        lines.append(f"{case.name:<26} {suites:<10} {case.description}")
    return "\n".join(lines)


def dispatch(args: argparse.Namespace) -> int:
    """Run parsed and checked options: ``--list``, or a benchmark run."""
    if args.list:
        print(list_cases())
        return 0
    return run(args)


def main(argv: list[str]) -> int:
    """``jaxgrad bench`` as a function of its options (``python -m jaxgrad_bench``)."""
    return dispatch(_options.parse(argv))
