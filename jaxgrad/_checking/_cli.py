"""The ``jaxgrad`` console command.

  jaxgrad check [--dtype DTYPE] [--no-torch] [--cases SUBSTRING ...] [--list]
  jaxgrad bench [--suite quick|full] [--cases NAME ...] [--dtype DTYPE] ...

``check`` compares every op and gradient with lax autodiff and torch; exit
status 0 when every row passes, 1 when any fails. ``bench`` times gradients
(jaxgrad, lax autodiff, torch) in a child process; see ``bench/README.md``;
exit status 0, or 1 when a jaxgrad result is wrong. Usage errors exit with
status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``jaxgrad`` parser and its ``bench`` subparser (for its usage errors)."""
    # The harness is imported here, not at module level: `import jaxgrad`
    # (and this module) must not load the benchmark package.
    from jaxgrad_bench import _options as bench_options
    parser = bench_options.UsageParser(
        prog="jaxgrad", description="Explicit convolution VJPs for JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="compare every op and gradient with lax autodiff and torch")
    check.add_argument("--dtype", default="float64",
                       choices=["float64", "float32", "bfloat16", "float16"],
                       help="dtype jaxgrad runs in (references run in float64)")
    check.add_argument("--no-torch", action="store_true",
                       help="skip the PyTorch comparison")
    check.add_argument("--cases", nargs="+", metavar="SUBSTRING",
                       help="run only cases whose name contains one of these")
    check.add_argument("--list", action="store_true", help="list the cases and exit")
    bench = commands.add_parser(
        "bench", help="time gradients: jaxgrad vs jax.grad vs torch",
        description=bench_options.DESCRIPTION)
    bench_options.add_arguments(bench)
    return parser, bench


def _check(args, parser) -> int:
    import jax
    jax.config.update("jax_enable_x64", True)
    from . import _check as check
    from ._reference import torch_available

    cases = check.CASES
    if args.cases:
        cases = tuple(c for c in cases if any(s in c.name for s in args.cases))
        if not cases:
            parser.error(f"check: no case name contains any of {args.cases}; "
                         "see `jaxgrad check --list`")
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    use_torch = not args.no_torch and torch_available()
    if not args.no_torch and not use_torch:
        print("note: torch is not importable; comparing with lax autodiff only")
    print(f"jaxgrad check: {len(cases)} cases, dtype {args.dtype}, references in "
          f"float64 ({'lax autodiff and torch' if use_torch else 'lax autodiff'})")
    print(check.HEADER)
    failures = 0
    for case in cases:
        rows = check.run_case(case, args.dtype, use_torch)
        for i, row in enumerate(rows):
            print(check.format_row(row, show_case=i == 0), flush=True)
            failures += not row.ok
    total = len(cases) * (2 if use_torch else 1)
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser, bench = _parsers()
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args, parser)
    if args.command == "bench":
        from jaxgrad_bench import _launch as bench_launch
        from jaxgrad_bench import _options as bench_options
        bench_options.check(args, bench.error)
        return bench_launch.dispatch(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":
    sys.exit(main())
