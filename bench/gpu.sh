#!/usr/bin/env bash
# The GPU check, in one command, inside 10 minutes on one NVIDIA GPU.
#
#   bash bench/gpu.sh [OUT_DIR]          # on a machine with jax[cuda] and torch
#
# Run from the repository root on a machine that already has jax (with CUDA),
# torch, pytest and hypothesis installed. It
#   1. installs jaxgrad (and the bench, jaxgrad_bench) without dependencies
#      into a temporary folder put first on PYTHONPATH, so the machine's own
#      packages are untouched;
#   2. runs a smoke check, then the torch-parity tests of the convolutions
#      with JAX on the GPU (torch on the CPU, float64);
#   3. runs `jaxgrad bench --backend gpu --suite full --algorithm auto`;
#   4. runs the formulation sweep (python -m jaxgrad_bench.sweep), reduced:
#      the bench's single-layer cases, then drawn configurations, each
#      gradient timed as "transpose", "taps" and autodiff, for 150 s;
#   5. leaves every JSON/MD result, the logs and one tarball of them in OUT_DIR
#      (default gpu-results/).
# Each step has its own time limit and a failed step does not stop the next;
# the exit status is that of the first failed step.
#
# Dry run on the CPU (tested in CI): JAXGRAD_GPU_BACKEND=cpu with
# JAXGRAD_GPU_TINY=1 runs every step at smoke size, JAXGRAD_GPU_INSTALL=0
# uses the jaxgrad already importable.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-results}
backend=${JAXGRAD_GPU_BACKEND:-gpu}
py=${PYTHON:-python3}
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start))s"
  [ "$status" -ne 0 ] || status=$rc
}

if [ "${JAXGRAD_GPU_INSTALL:-1}" = 1 ]; then
  site=$(mktemp -d)
  "$py" -m pip install -q --no-deps --no-build-isolation --no-index --target "$site" . \
    || { echo "gpu.sh: installing jaxgrad failed"; exit 1; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

if [ "${JAXGRAD_GPU_TINY:-0}" = 1 ]; then
  tests=(-n 0 tests/torch/test_grad_torch.py -k "1d and k3")
  bench=(--cases resnet50-1x1 --repeats 1 --no-torch)
  sweep=(--count 2 --max-gflop 0.01 --repeats 1 --budget-s 60)
  limits=(120 120 120)
else
  tests=(-n 4 tests/torch/test_conv_torch.py tests/torch/test_conv_transpose_torch.py
         tests/torch/test_grad_torch.py tests/torch/test_algorithms_torch.py)
  bench=(--suite full)
  sweep=(--parts input weight --count 400 --min-gflop 2 --max-gflop 200 --inner 20
         --repeats 10 --budget-s 150)
  limits=(120 200 180)
fi

step smoke 40 "$py" -c "
import jax, jax.numpy as jnp, jaxgrad
print(jax.__version__, jax.devices())
x = jnp.ones((2, 3, 8, 8)); w = jnp.ones((4, 3, 3, 3))
print(jax.grad(lambda w: jaxgrad.conv2d(x, w, padding=1).sum())(w)[0, 0])"
step torch-parity "${limits[0]}" "$py" -m pytest -q --maxfail=10 -p no:cacheprovider \
  --no-header "${tests[@]}"
step bench "${limits[1]}" "$py" -m jaxgrad_bench --backend "$backend" \
  --algorithm auto "${bench[@]}" --out "$out" --name "$backend-auto"
step sweep "${limits[2]}" "$py" -m jaxgrad_bench.sweep --backend "$backend" \
  "${sweep[@]}" --out "$out" --name "sweep-$backend"

tar -czf "$out.tar.gz" -C "$out" . && mv "$out.tar.gz" "$out/all.tar.gz"
echo "gpu.sh: results in $out/ (exit $status)"
exit "$status"
