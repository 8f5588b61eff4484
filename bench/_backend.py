"""Setting up the measuring process: device, precision, threads, torch.

On an NVIDIA GPU both frameworks may silently run float32 convolutions and
matmuls in TF32. Unless ``--tf32`` is given, precision is pinned to full
float32 in both: JAX's ``jax_default_matmul_precision`` set to ``highest``
(it governs every ``conv_general_dilated`` and ``dot_general`` without an
explicit precision, jaxgrad's included) and torch's
``backends.cuda.matmul.allow_tf32`` / ``backends.cudnn.allow_tf32`` off. On
the CPU neither framework uses TF32; nothing is changed. On the GPU torch
also autotunes its cuDNN algorithms (``cudnn.benchmark``, during warm-up), as
XLA does when it compiles.
"""

from __future__ import annotations

import dataclasses


class BackendUnavailable(Exception):
    """The requested backend cannot run here; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Backend:
    """The configured measuring process.

    Attributes:
      name: "cpu" or "gpu".
      gpu_model: the GPU's name, or None.
      use_torch: whether the torch implementation runs.
      threads: thread counts as set (see results.json ``threads``).
      precision: precision settings as set (see results.json ``precision``).
      notes: why torch is skipped, if it is.
    """

    name: str
    gpu_model: str | None
    use_torch: bool
    threads: dict
    precision: dict
    notes: tuple[str, ...] = ()


def _jax_gpu_model() -> str:
    import jax
    try:
        devices = jax.devices("gpu")
    except RuntimeError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackendUnavailable(f"--backend gpu: JAX sees no GPU ({first_line})") \
            from None
    return devices[0].device_kind


def _torch_status(backend: str, wanted: bool) -> tuple[bool, str | None]:
    if not wanted:
        return False, "torch skipped (--no-torch)"
    try:
        import torch
    except ImportError:
        return False, "torch is not importable: the torch columns are empty"
    if backend == "gpu" and not torch.cuda.is_available():
        return False, "torch has no CUDA device: the torch columns are empty"
    return True, None


def _pin_precision(backend: str, tf32: bool, use_torch: bool) -> dict:
    import jax
    if backend == "gpu":
        jax.config.update("jax_default_matmul_precision",
                          "tensorfloat32" if tf32 else "highest")
    record = {"jax_default_matmul_precision":
              jax.config.jax_default_matmul_precision,
              "torch_allow_tf32": None, "torch_cudnn_allow_tf32": None,
              "torch_cudnn_benchmark": None}
    if use_torch:
        import torch
        if backend == "gpu":
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
        record["torch_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        record["torch_cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        record["torch_cudnn_benchmark"] = torch.backends.cudnn.benchmark
    return record


def _fix_threads(cpus: int, use_torch: bool) -> dict:
    # XLA's CPU client sizes its thread pool from the affinity mask: `cpus`.
    threads = {"xla_cpu": cpus, "torch_intra_op": None, "torch_inter_op": None}
    if use_torch:
        import torch
        torch.set_num_threads(cpus)
        threads["torch_intra_op"] = torch.get_num_threads()
        threads["torch_inter_op"] = torch.get_num_interop_threads()
    return threads


def configure(backend: str, tf32: bool, want_torch: bool, cpus: int) -> Backend:
    """Check the device and fix precision and threads, before any measurement.

    Raises:
      BackendUnavailable: ``backend`` is "gpu" and JAX sees no GPU.
    """
    gpu_model = _jax_gpu_model() if backend == "gpu" else None
    use_torch, note = _torch_status(backend, want_torch)
    return Backend(backend, gpu_model, use_torch, _fix_threads(cpus, use_torch),
                   _pin_precision(backend, tf32, use_torch),
                   (note,) if note else ())
