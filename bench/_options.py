"""The options of ``jaxgrad bench``, shared by the command and its child process.

Parsing imports neither JAX nor torch, so usage errors come back at once
(exit status 2, one line, no traceback) before any measurement starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from . import _cases, _custom

DTYPES = ("float32", "bfloat16", "float16")
ALGORITHMS = ("auto", "transpose", "taps", "autotune")  # jaxgrad._conv._algorithms
BACKENDS = ("cpu", "gpu")
MODELS = "models"
DEFAULT_OUT = "results"
DEFAULT_NAME = "results"
DESCRIPTION = ("Time convolution gradients (or, with --suite models, whole "
               "training steps) three ways: jaxgrad's explicit VJPs, JAX autodiff "
               "of the plain lax forward, and PyTorch autograd.")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def xla_flags(text: str) -> str:
    """argparse type: whitespace-separated ``--xla_...`` flags (XLA aborts on others)."""
    bad = [flag for flag in text.split() if not flag.startswith("--xla_")]
    if bad:
        raise argparse.ArgumentTypeError(
            f"each flag must start with --xla_, got {' '.join(bad)!r} (write "
            "--xla-flags='--xla_a=1 --xla_b=2', with the = sign)")
    return text


def file_stem(text: str) -> str:
    """argparse type: a file name without directory, e.g. ``cpu-2core``."""
    if not text or "/" in text or "\\" in text or text.startswith("."):
        raise argparse.ArgumentTypeError(
            f"must be a plain file stem such as 'cpu-2core', got {text!r}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``jaxgrad bench`` options to ``parser``."""
    parser.add_argument("--suite", choices=(*_cases.SUITES, MODELS),
                        help="quick (under 3 minutes on 2 cores; the default when "
                             "neither --cases nor --conv is given), full, or models "
                             "(one training step of ResNet-18, MobileNetV2 and a "
                             "U-Net; alone, without --cases/--conv)")
    parser.add_argument("--cases", nargs="+", metavar="NAME",
                        help="run these cases (see --list): instead of the quick "
                             "suite, or after the --suite named")
    parser.add_argument("--conv", action="append", type=_custom.spec, metavar="SPEC",
                        help="add a case of your own, e.g. --conv 'conv2d "
                             "x=8,64,56,56 w=64,64,3,3 stride=1 padding=1' "
                             "(repeatable; fields x, w, stride, padding, dilation, "
                             "groups, output_padding; see bench/README.md): "
                             "instead of the quick suite, or after --suite/--cases")
    parser.add_argument("--list", action="store_true",
                        help="list the cases and their suites, then exit")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="dtype of every implementation (default float32)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="auto",
                        help="how jaxgrad computes convolution gradients "
                             "(default auto; see docs/performance.md)")
    parser.add_argument("--repeats", type=positive_int, default=10,
                        help="timed repetitions per measurement (default 10, "
                             "the protocol's minimum; fewer only for smoke runs)")
    parser.add_argument("--backend", choices=BACKENDS, default="cpu",
                        help="cpu (default) or gpu (an NVIDIA GPU visible to JAX)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch implementation")
    parser.add_argument("--tf32", action="store_true",
                        help="gpu only: allow TF32 for float32 (default: pinned "
                             "to full float32 precision in both frameworks)")
    parser.add_argument("--xla-flags", type=xla_flags, metavar="FLAGS",
                        help="XLA_FLAGS for the measuring process (with the =), "
                             "e.g. --xla-flags='--xla_cpu_experimental_ynn_"
                             "fusion_type=-individual_convolution'")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default {DEFAULT_OUT}/)")
    parser.add_argument("--name", type=file_stem, default=DEFAULT_NAME,
                        metavar="STEM",
                        help=f"output file stem: STEM.json, STEM.md, STEM.png "
                             f"(default {DEFAULT_NAME})")


def check(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> None:
    """Checks across options; ``error`` is the parser's usage-error exit."""
    if args.tf32 and args.backend != "gpu":
        error("--tf32 applies to --backend gpu only")
    if args.suite == MODELS:
        if args.cases or args.conv:
            error("--suite models runs whole networks; it takes no --cases or --conv")
        return
    try:
        _cases.select(args.suite, args.cases, args.conv)
    except ValueError as exc:
        error(str(exc))


def argv_of(args: argparse.Namespace) -> list[str]:
    """The options as a command line that parses back to ``args``."""
    argv = [] if args.suite is None else [f"--suite={args.suite}"]
    argv += [f"--dtype={args.dtype}", f"--algorithm={args.algorithm}",
            f"--repeats={args.repeats}", f"--backend={args.backend}",
            f"--out={args.out}", f"--name={args.name}"]
    if args.cases:
        argv += ["--cases", *args.cases]
    argv += [f"--conv={spec}" for spec in args.conv or ()]
    if args.no_torch:
        argv.append("--no-torch")
    if args.tf32:
        argv.append("--tf32")
    if args.xla_flags is not None:
        argv.append(f"--xla-flags={args.xla_flags}")
    return argv


class UsageParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> UsageParser:
    """The stand-alone parser of ``jaxgrad bench`` (used by the child process)."""
    bench = UsageParser(prog="jaxgrad bench", description=DESCRIPTION)
    add_arguments(bench)
    return bench


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse and check ``jaxgrad bench`` options; exit 2 on a usage error."""
    bench = parser()
    args = bench.parse_args(argv)
    check(args, bench.error)
    return args
