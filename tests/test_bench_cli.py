"""``jaxgrad bench`` options: usage errors, --list, the child's command and env."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxgrad._checking import _cli
from jaxgrad_bench import _cases, _launch, _options


@pytest.mark.parametrize("argv,message", [
    (["--cases", "nope"], "unknown case name(s) 'nope'; see `jaxgrad bench --list`"),
    (["--cases", "resnet50-1x1", "c3d", "x"], "unknown case name(s) 'c3d', 'x'"),
    (["--suite", "huge"], "argument --suite: invalid choice: 'huge'"),
    (["--dtype", "float64"], "argument --dtype: invalid choice: 'float64'"),
    (["--algorithm", "fft"], "argument --algorithm: invalid choice: 'fft'"),
    (["--backend", "tpu"], "argument --backend: invalid choice: 'tpu'"),
    (["--repeats", "0"], "argument --repeats: must be a positive integer, got '0'"),
    (["--repeats", "ten"], "must be a positive integer, got 'ten'"),
    (["--tf32"], "--tf32 applies to --backend gpu only"),
    (["--xla-flags=--xla_a=1 fast"], "each flag must start with --xla_, got 'fast'"),
    (["--name", "a/b"], "argument --name: must be a plain file stem"),
    (["--out"], "argument --out: expected one argument"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_usage_errors_exit_2_with_one_line_and_no_traceback(capsys, argv, message):
    for run in (lambda: _cli.main(["bench", *argv]), lambda: _launch.main(argv)):
        with pytest.raises(SystemExit) as exc:
            run()
        assert exc.value.code == 2
        err = capsys.readouterr().err
        # (argparse reports unrecognized arguments from the top-level parser)
        assert re.match(r"jaxgrad( bench)?: error: ", err) and err.count("\n") == 1
        assert message in err


def test_list_prints_every_case_with_its_suites(capsys):
    assert _cli.main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(_cases.names())
    quick = {line.split()[0] for line in lines if "quick" in line.split()[1]}
    assert quick == {c.name for c in _cases.select("quick")}


def test_the_child_gets_the_options_back_unchanged():
    args = _options.parse(["--cases", "c3d-3x3x3", "unrolled-32x32-s32", "--dtype",
                           "bfloat16", "--repeats", "3", "--no-torch", "--algorithm", "taps",
                           "--xla-flags=--xla_a=1 --xla_b=2", "--out=-dir",
                           "--name", "cpu-2core"])
    command = _launch.child_command(args)
    assert command[:3] == [sys.executable, "-m", "jaxgrad_bench._child"]
    assert _options.parse(command[3:]) == args


def test_child_environment_sets_the_documented_variables():
    args = _options.parse(["--xla-flags=--xla_a=1"])
    env = _launch.child_environment(args, {"PATH": "/bin", "XLA_FLAGS": "--old"}, 3)
    assert env == {"PATH": "/bin", "XLA_FLAGS": "--xla_a=1", "JAX_PLATFORMS": "cpu",
                   "MALLOC_MMAP_THRESHOLD_": "4294967296",
                   "MALLOC_TRIM_THRESHOLD_": "17179869184",
                   "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    # Without --xla-flags the caller's XLA_FLAGS is kept (and recorded).
    gpu = _options.parse(["--backend", "gpu"])
    env = _launch.child_environment(gpu, {"XLA_FLAGS": "--old"}, 2)
    assert env["XLA_FLAGS"] == "--old" and env["JAX_PLATFORMS"] == "cuda,cpu"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def _jaxgrad_command() -> str:
    # The console script installed next to this interpreter.
    return str(Path(sys.executable).with_name("jaxgrad"))


def test_gpu_backend_without_a_visible_gpu_is_a_one_line_error(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # no GPU, even on a GPU host
    done = subprocess.run(
        [_jaxgrad_command(), "bench", "--backend", "gpu", "--cases",
         "unrolled-32x32-s32", "--out", str(tmp_path)],
        check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("jaxgrad bench: error: --backend gpu: JAX sees "
                                  "no GPU (") and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
