"""The ``jaxgrad`` console command.

  jaxgrad check [--dtype DTYPE] [--no-torch] [--families FAMILY ...]
                [--cases SUBSTRING ...] [--list]
  jaxgrad bench [--suite quick|full] [--cases NAME ...] [--dtype DTYPE] ...

``check`` compares every op family, its gradients and its second-order
gradients with lax autodiff and torch (cases registered in ``_families``);
exit status 0 when every case passes, 1 when any fails. ``bench`` times gradients
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
        prog="jaxgrad", description="Conv-net ops for JAX with explicit, hand-derived "
                        "VJPs: check them against torch, benchmark them.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="compare every op family and its first and second derivatives "
                      "with lax autodiff and torch",
        description=_check_description(), epilog=_CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("--dtype", default="float64",
                       choices=["float64", "float32", "bfloat16", "float16"],
                       help="dtype jaxgrad runs in (default float64; the references "
                            "always run in float64)")
    check.add_argument("--no-torch", action="store_true",
                       help="skip the PyTorch comparison (cases with no lax reference "
                            "are then skipped)")
    check.add_argument("--families", nargs="+", metavar="FAMILY",
                       help="run only these families (listed above)")
    check.add_argument("--cases", nargs="+", metavar="SUBSTRING",
                       help="run only cases whose name contains one of these, e.g. "
                            "max_pool (within --families, if given)")
    check.add_argument("--list", action="store_true",
                       help="list the selected cases with their families and exit")
    bench = commands.add_parser(
        "bench", help="time gradients: jaxgrad vs jax.grad vs torch",
        description=bench_options.DESCRIPTION)
    bench_options.add_arguments(bench)
    return parser, bench


_CHECK_EXAMPLES = """examples:
  jaxgrad check                               every family, float64
  jaxgrad check --families pool loss          two families
  jaxgrad check --cases max_pool --dtype float32
  jaxgrad check --list --families conv"""


def _check_description() -> str:
    from ._families import available
    families = "\n".join(f"  {key:<11} {family.description}"
                          for key, family in available().items())
    return (
        "Compare jaxgrad's ops with independent references, case by case (one op, "
        "fixed options, small shapes).\n\n"
        "For every case jaxgrad (in --dtype) and each reference (in float64, on the "
        "same inputs\nrounded to --dtype) compute: the output; the gradient w.r.t. "
        "every differentiated\ninput (a VJP with a seeded cotangent); and the "
        "second-order gradients, reverse over\nreverse, of L2 = sum_x <grad_x, u_x> "
        "w.r.t. the inputs and the cotangent. References:\nJAX autodiff of a plain "
        "lax/jnp formula (where the case has one) and PyTorch\nautograd. An array "
        "passes when max|error| / max|reference| is within the dtype's\ntolerance "
        "(float64 1e-10, float32 1e-5, float16 5e-3, bfloat16 2e-2).\n\n"
        "Prints one line per case as it finishes: name, PASS/FAIL/SKIP, seconds "
        "(compilation\nincluded), the worst relative error against each reference "
        "and in which array;\na failure adds its details. Exit status 0 when no "
        "case fails, 1 otherwise, 2 for a\nusage error.\n\n"
        f"families (--families):\n{families}")


def _select_cases(args, parser) -> tuple:
    from . import _families
    known = _families.available()
    unknown = [f for f in args.families or () if f not in known]
    if unknown:
        parser.error(f"check: unknown famil{'ies' if len(unknown) > 1 else 'y'} "
                     f"{', '.join(map(repr, unknown))}; choose from "
                     f"{', '.join(known)}")
    cases = _families.cases(list(dict.fromkeys(args.families)) if args.families
                            else None)
    if args.cases:
        cases = tuple(c for c in cases if any(s in c.name for s in args.cases))
        if not cases:
            parser.error(f"check: no case name contains any of {args.cases}; "
                         "see `jaxgrad check --list`")
    return cases


def _check(args, parser) -> int:
    import time

    import jax
    jax.config.update("jax_enable_x64", True)
    from . import _check as check
    from ._reference import torch_available

    cases = _select_cases(args, parser)
    if args.list:
        width = max(len(c.family) for c in cases)
        print("\n".join(f"{c.family:<{width}}  {c.name}" for c in cases))
        return 0
    use_torch = not args.no_torch and torch_available()
    if not args.no_torch and not use_torch:
        print("note: torch is not importable; comparing with lax autodiff only")
    families = list(dict.fromkeys(c.family for c in cases))
    refs = "lax autodiff and torch" if use_torch else "lax autodiff"
    print(f"jaxgrad check: {len(cases)} cases ({', '.join(families)}), dtype "
          f"{args.dtype}, references in float64 ({refs}), tolerance "
          f"{check.tolerance(args.dtype):.0e} relative", flush=True)
    start, results = time.perf_counter(), []
    width = max(len(c.name) for c in cases)
    for i, case in enumerate(cases, 1):
        results.append(check.run_case(case, args.dtype, use_torch))
        print(check.format_result(results[-1], i, len(cases), width), flush=True)
    print(check.summary(results, time.perf_counter() - start))
    return 1 if any(r.status == "FAIL" for r in results) else 0


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
