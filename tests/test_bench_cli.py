"""``jaxgrad bench`` options: usage errors, --list, --conv SPEC, which cases run,
the child's command and env. (A --conv case runs end to end in the smoke run of
``test_bench_outputs.py``.)"""

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxgrad._checking import _cli
from jaxgrad_bench import _cases, _custom, _launch, _options


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
    (["--conv", "conv4d x=1"], "argument --conv: unknown op 'conv4d': a SPEC starts "
                               "with one of conv1d, conv2d, conv3d, conv_transpose1d"),
    (["--conv"], "argument --conv: expected one argument"),
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


SPEC = "conv2d x=1,4,8,8 w=6,2,3,3"
BAD_SPECS = [
    ("conv2d w=6,2,3,3", "field x= is required: the input shape (N, C_in, H, W)"),
    ("conv2d x=1,4,8,8", "field w= is required: the weight shape (C_out, C_in/groups, "
                         "*kernel)"),
    ("conv_transpose1d x=1,4,8", "field w= is required: the weight shape (C_in, "
                                 "C_out/groups, *kernel)"),
    (f"{SPEC} strides=2", "unknown field strides=2; fields are x, w, stride, padding, "
                          "dilation, groups, output_padding"),
    (f"{SPEC} stride", "field 'stride' must be KEY=VALUE"),
    (f"{SPEC} stride=", "field 'stride=' must be KEY=VALUE"),
    (f"{SPEC} stride=2 stride=1", "field stride is given twice (stride=2, stride=1)"),
    (f"{SPEC} stride=two", "stride=two must be an int or comma-separated ints"),
    (f"{SPEC} stride=0", "stride=0 must be >= 1"),
    (f"{SPEC} padding=-1", "padding=-1 must be >= 0"),
    (f"{SPEC} dilation=1,2,3", "dilation=1,2,3 must be one int or 2 comma-separated ints"),
    (f"{SPEC} groups=2,2", "groups=2,2 must be one int >= 1"),
    ("conv2d x=1,4,8 w=6,2,3,3", "x=1,4,8 must have 4 entries (N, C_in, H, W)"),
    ("conv2d x=1,4,8,8 w=6,2,3", "w=6,2,3 must have 4 entries (C_out, C_in/groups, "
                                 "*kernel)"),
    ("conv1d x=0,4,8 w=6,4,3", "x=0,4,8 must have every entry >= 1"),
    (SPEC, "w=6,2,3,3 does not fit x=1,4,8,8 with groups=1: C_in = 4 must be "
           "w[1]·groups = 2"),
    (f"{SPEC} output_padding=1", "output_padding=1 applies to conv_transpose* only"),
    ("conv_transpose2d x=1,4,8,8 w=4,2,3,3 stride=2 output_padding=2",
     "output_padding=2 must be smaller than stride or dilation in every dim"),
    ("conv_transpose2d x=1,3,8,8 w=4,2,3,3", "w=4,2,3,3 does not fit x=1,3,8,8 with "
                                            "groups=1: C_in = 3 must be w[0] = 4"),
    ("conv2d x=1,4,2,2 w=6,4,3,3", "the output (1, 6, 0, 0) would be empty"),
]


@pytest.mark.parametrize("spec, message", BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_a_malformed_conv_spec_is_a_usage_error_naming_the_field(capsys, spec, message):
    with pytest.raises(SystemExit) as exc:
        _cli.main(["bench", "--conv", spec])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxgrad bench: error: argument --conv: {message}")
    assert err.count("\n") == 1 and err.endswith(f" (in {spec!r})\n")


@pytest.mark.parametrize("spec, name, layer, output", [
    ("conv2d x=8,64,56,56 w=64,64,3,3 stride=1 padding=1",
     "conv2d_x8,64,56,56_w64,64,3,3_s1_p1",
     dict(op="conv", weight=(64, 64, 3, 3), stride=(1, 1), padding=(1, 1),
          dilation=(1, 1), groups=1, output_padding=None), (8, 64, 56, 56)),
    ("conv_transpose2d x=4,128,16,16 w=128,64,4,4 stride=2 padding=1 groups=1",
     "conv_transpose2d_x4,128,16,16_w128,64,4,4_s2_p1_g1",
     dict(op="conv_transpose", weight=(128, 64, 4, 4), stride=(2, 2), padding=(1, 1),
          dilation=(1, 1), groups=1, output_padding=(0, 0)), (4, 64, 32, 32)),
    ("conv1d x=4,64,16000 w=64,64,2 dilation=256", "conv1d_x4,64,16000_w64,64,2_d256",
     dict(op="conv", weight=(64, 64, 2), stride=(1,), padding=(0,), dilation=(256,),
          groups=1, output_padding=None), (4, 64, 15744)),
    ("conv3d  padding=1,0,2 w=8,2,3,3,3 groups=2 stride=2,1,1 x=1,4,5,6,7",
     "conv3d_x1,4,5,6,7_w8,2,3,3,3_s2,1,1_p1,0,2_g2",
     dict(op="conv", weight=(8, 2, 3, 3, 3), stride=(2, 1, 1), padding=(1, 0, 2),
          dilation=(1, 1, 1), groups=2, output_padding=None), (1, 8, 3, 4, 9)),
    ("conv_transpose1d x=2,4,5 w=4,3,3 stride=3 output_padding=2",
     "conv_transpose1d_x2,4,5_w4,3,3_s3_op2",
     dict(op="conv_transpose", weight=(4, 3, 3), stride=(3,), padding=(0,),
          dilation=(1,), groups=1, output_padding=(2,)), (2, 3, 17)),
])
def test_conv_specs_parse_into_cases(spec, name, layer, output):
    case = _custom.parse(spec)
    assert case.name == name
    assert case.description == f"--conv '{_options.parse(['--conv', spec]).conv[0]}'"
    (parsed,) = case.layers
    assert dataclasses.asdict(parsed) == layer
    assert case.output == output and case.input[0] == output[0]


def test_a_conv_spec_is_kept_in_canonical_order():
    args = _options.parse(["--conv", "conv1d  dilation=2 w=4,4,3   x=1,4,20"])
    assert args.conv == ["conv1d x=1,4,20 w=4,4,3 dilation=2"]


@pytest.mark.parametrize("argv, names, label", [
    ([], [c.name for c in _cases.CASES if c.quick], "quick"),
    (["--conv", SPEC.replace("w=6,2", "w=6,4")], ["conv2d_x1,4,8,8_w6,4,3,3"], "custom"),
    (["--cases", "c3d-3x3x3", "--conv", "conv1d x=1,2,9 w=2,2,3"],
     ["c3d-3x3x3", "conv1d_x1,2,9_w2,2,3"], "custom"),
    (["--suite", "quick", "--conv", "conv1d x=1,2,9 w=2,2,3"],
     [c.name for c in _cases.CASES if c.quick] + ["conv1d_x1,2,9_w2,2,3"],
     "quick+custom"),
    (["--suite", "full", "--cases", "resnet50-1x1"], list(_cases.names()), "full+custom"),
    (["--conv", "conv1d x=1,2,9 w=2,2,3", "--conv", "conv1d  x=1,2,9 w=2,2,3"],
     ["conv1d_x1,2,9_w2,2,3"], "custom"),
])
def test_which_cases_run(argv, names, label):
    args = _options.parse(argv)
    assert [c.name for c in _cases.select(args.suite, args.cases, args.conv)] == names
    assert _cases.label(args.suite, args.cases, args.conv) == label


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
                           "--name", "cpu-2core", "--conv", "conv1d w=2,2,3 x=1,2,9",
                           "--conv", "conv_transpose2d x=1,2,4,4 w=2,2,2,2 stride=2"])
    command = _launch.child_command(args)
    assert command[:3] == [sys.executable, "-m", "jaxgrad_bench._child"]
    assert _options.parse(command[3:]) == args
    assert "--suite=quick" not in command       # the default stays implicit
    suite = _options.parse(["--suite", "full", "--conv", "conv1d x=1,2,9 w=2,2,3"])
    assert _options.parse(_launch.child_command(suite)[3:]) == suite


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


def test_a_terminated_bench_takes_its_measuring_child_with_it(tmp_path):
    """SIGTERM to `jaxgrad bench` alone (not its process group) reaches the
    child: it must not go on measuring by itself. The child here is a sleeper
    that writes its pid; the parent is `_launch.run` in its own process."""
    pid_file = tmp_path / "child.pid"
    driver = f"""
import sys
from jaxgrad_bench import _launch, _options
_launch.child_command = lambda args: [sys.executable, "-c",
    "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"]
args = _options.parse(["--suite", "quick"])
sys.exit(_launch.run(args))
"""
    parent = subprocess.Popen([sys.executable, "-c", driver])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and parent.poll() is None, "no child started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.terminate()
    assert parent.wait(timeout=30) == 1          # "the measuring process died of SIGTERM"
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break                                # gone
        # a zombie until reaped by init counts as gone: check its state
        try:
            state = Path(f"/proc/{child}/stat").read_text().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
