"""A smoke run of ``jaxgrad bench`` end to end, and what it writes.

The run goes through the installed console script in a subprocess (1 timed
repetition of the cheapest named case and of a tiny ``--conv`` case), like a
user's. results.json is validated against the schema documented in
``bench/README.md``. No test asserts a timing, only that each is recorded.
"""

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxgrad_bench import _chart, _machine, _report, _run

README = Path(__file__).parents[1] / "bench" / "README.md"
SMOKE_CASE = "unrolled-32x32-s32"
SMOKE_CONV = "conv1d x=2,4,32 w=4,2,3 padding=1 groups=2"
SMOKE_CONV_NAME = "conv1d_x2,4,32_w4,2,3_p1_g2"
XLA_FLAGS = "--xla_backend_optimization_level=3"  # XLA's default, stated


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    jaxgrad = str(Path(sys.executable).with_name("jaxgrad"))
    done = subprocess.run(
        [jaxgrad, "bench", "--cases", SMOKE_CASE, "--conv", SMOKE_CONV,
         "--repeats", "1",
         f"--xla-flags={XLA_FLAGS}", "--out", str(out), "--name", "smoke"],
        check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done, out, json.loads((out / "smoke.json").read_text())


# --------------------------------------------------------------------------
# The documented schema: `path type description` lines in the README block.


def documented_schema() -> dict[tuple[str, ...], str]:
    text = README.read_text()
    block = text.split("<!-- results.json schema")[1].split("```text\n")[1]
    block = block.split("```")[0]
    return {tuple(line.split()[0].replace("[]", ".[]").split(".")): line.split()[1]
            for line in block.splitlines() if line.strip()}


_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool,
          "null": type(None)}


def _type_ok(value, spec: str) -> bool:
    for option in spec.split("|"):
        if option.startswith("list["):
            item = _TYPES[option[5:-1]]
            if isinstance(value, list) and all(isinstance(v, item) and
                                               not isinstance(v, bool) or
                                               item is bool for v in value):
                return True
        elif isinstance(value, _TYPES[option]) and not (
                isinstance(value, bool) and option in ("int", "float")):
            return True
    return False


def _segment_for(key: str, depth: int, patterns) -> str | None:
    # A literal documented key wins; otherwise a documented <wildcard> here.
    here = {p[depth] for p in patterns if len(p) > depth}
    if key in here:
        return key
    return next((s for s in here if s.startswith("<")), None)


def schema_violations(value, schema, prefix=()) -> list[str]:
    """Every key of ``value`` documented (with its type), every documented key present."""
    patterns = [p for p in schema if p[:len(prefix)] == prefix]
    if prefix in schema:
        return [] if _type_ok(value, schema[prefix]) else \
            [f"{'.'.join(prefix)}: {value!r} is not {schema[prefix]}"]
    if isinstance(value, list):
        return [v for item in value
                for v in schema_violations(item, schema, prefix + ("[]",))]
    if not isinstance(value, dict):
        return [f"{'.'.join(prefix)}: undocumented leaf {value!r}"]
    problems = []
    depth = len(prefix)
    required = {p[depth] for p in patterns if len(p) > depth
                and not p[depth].startswith("<")}
    problems += [f"{'.'.join(prefix + (k,))}: missing" for k in required - set(value)]
    for key, item in value.items():
        segment = _segment_for(key, depth, patterns)
        if segment is None:
            problems.append(f"{'.'.join(prefix + (key,))}: undocumented")
        else:
            problems += schema_violations(item, schema, prefix + (segment,))
    return problems


def test_the_schema_block_parses():
    schema = documented_schema()
    assert schema[("schema_version",)] == "int"
    assert schema[("cases", "[]", "timings", "<impl>", "<mode>", "median_s")] == "float"
    assert len(schema) > 50


def test_results_json_follows_the_documented_schema(smoke):
    _, _, record = smoke
    assert record["schema_version"] == _report.SCHEMA_VERSION == 1
    assert schema_violations(record, documented_schema()) == []


def test_the_validator_catches_missing_extra_and_mistyped_keys(smoke):
    record = copy.deepcopy(smoke[2])
    del record["machine"]["cpu_model"]
    record["cases"][0]["timings"]["torch"]["forward"]["p99_s"] = 1.0
    record["peak"]["size"] = "2048"
    assert sorted(schema_violations(record, documented_schema())) == [
        "cases.[].timings.<impl>.<mode>.p99_s: undocumented",
        "machine.cpu_model: missing",
        "peak.size: '2048' is not int"]


def test_smoke_run_records_the_run(smoke):
    _, _, record = smoke
    assert record["options"]["cases"] == [SMOKE_CASE, SMOKE_CONV_NAME]
    assert record["options"]["suite"] == "custom"
    assert record["options"]["conv"] == [SMOKE_CONV]
    assert record["options"]["repeats"] == 1 and record["options"]["torch"]
    env = record["environment"]
    assert env["XLA_FLAGS"] == XLA_FLAGS and env["JAX_PLATFORMS"] == "cpu"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "4294967296"
    assert set(env) == set(_machine.ENV_KEYS)
    assert record["threads"]["torch_intra_op"] == record["machine"]["cpus_available"]
    assert any("smoke run" in note for note in record["notes"])
    case, custom = record["cases"]
    assert case["correct"] == {"jaxgrad": True, "autodiff": True, "torch": True}
    assert case["flops"]["forward"] == 2 * 8 * 512 * 1024 * 16
    # jaxgrad's conv keeps exactly x (8, 1, 128, 128) and w (512, 1, 32, 32), float32
    assert case["residual_bytes"]["jaxgrad"] == 4 * (8 * 128 * 128 + 512 * 32 * 32)
    assert case["residual_bytes"]["autodiff"] > 0 and "torch" not in case["residual_bytes"]
    assert set(case["errors"]["jaxgrad_vs_torch"]) == {"output", "grad_input",
                                                       "grad_weight"}
    for impl in ("jaxgrad", "autodiff", "torch"):
        for timing in case["timings"][impl].values():
            assert len(timing["samples_s"]) == 1
            assert timing["median_s"] == timing["min_s"] == timing["samples_s"][0]


def test_smoke_run_records_the_first_calls_compile_time(smoke):
    _, _, record = smoke
    for case in record["cases"]:
        first = case["first_call_s"]
        assert set(first) == {"jaxgrad", "autodiff"}        # JAX only
        for impl, phases in first.items():
            assert list(phases) == ["trace", "lower", "compile", "run"]
            assert all(isinstance(v, float) and v > 0 for v in phases.values())
            # value-and-grad's compile time is the first call's
            assert case["compile_s"][impl]["value_and_grad"] == pytest.approx(
                phases["trace"] + phases["lower"] + phases["compile"])


def test_smoke_run_names_the_formulation_each_case_ran(smoke):
    """Worked out from _plan's CPU rules: the unrolled case (32x32 kernel at
    stride 32) is tiled, so both gradients are one GEMM (taps) and the dense
    forward is lax; the grouped 1-D conv (2 channels per group, 3 taps) has a
    taps forward, and gradients with a 768-element buffer (2·4·3·32, below
    dense_taps_small_elements): taps."""
    done, out, record = smoke
    unrolled, custom = record["cases"]
    assert unrolled["formulations"] == {"jaxgrad": {
        "forward": ["forward:lax"], "input_grad": ["input_grad:taps"],
        "weight_grad": ["weight_grad:taps"]}}
    assert custom["formulations"]["jaxgrad"] == {
        "forward": ["forward:taps"], "input_grad": ["input_grad:taps"],
        "weight_grad": ["weight_grad:taps"]}
    md = (out / "smoke.md").read_text()
    assert "## Formulations run" in md
    assert re.search(rf"\| `{SMOKE_CASE}` \| forward:lax \| input_grad:taps \| "
                     r"weight_grad:taps \| [0-9.]+ \| [0-9.]+ \|", md)


def test_smoke_run_of_a_conv_spec(smoke):
    _, _, record = smoke
    custom = record["cases"][1]
    assert custom["name"] == SMOKE_CONV_NAME
    assert custom["description"] == f"--conv '{SMOKE_CONV}'"
    assert custom["input"] == [2, 4, 32] and custom["output"] == [2, 4, 32]
    assert custom["layers"] == [{"op": "conv", "weight": [4, 2, 3], "stride": [1],
                                 "padding": [1], "dilation": [1], "groups": 2,
                                 "output_padding": None}]
    assert custom["correct"] == {"jaxgrad": True, "autodiff": True, "torch": True}
    assert custom["flops"]["forward"] == 2 * 2 * 4 * 2 * 3 * 32
    assert all(len(t["samples_s"]) == 1 for impl in custom["timings"].values()
               for t in impl.values())


def test_smoke_run_console_output(smoke):
    done, out, _ = smoke
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "jaxgrad bench: 2 cases (custom), float32, algorithm auto, cpu")
    header = lines[1].split()
    assert header[:4] == ["case", "mode", "GFLOP", "jaxgrad"]
    assert lines[1].rstrip().endswith("compile jg s  compile jax.grad s")
    rows = [line.split() for line in lines[2:8]]
    assert rows[0][:3] == [SMOKE_CASE, "fwd", "0.134"]  # GFLOP, by hand above
    assert rows[1][:2] == ["bwd", "0.268"] and rows[2][:2] == ["v&g", "0.403"]
    # errors and compile times on the first row only
    assert len(rows[0]) == 14 and len(rows[1]) == 9
    compile_jg, compile_autodiff = map(float, rows[0][-2:])
    assert compile_jg > 0 and compile_autodiff > 0
    assert rows[3][0] == SMOKE_CONV_NAME and len(rows[3]) == 14
    # the name column is as wide as the longest name
    assert lines[5].index(" fwd ") == lines[2].index(" fwd ")
    assert f"[1/2] {SMOKE_CASE}: done in" in done.stderr  # progress
    assert f"[2/2] {SMOKE_CONV_NAME}: done in" in done.stderr
    assert f"wrote {out / 'smoke.json'}, {out / 'smoke.md'}" in done.stdout


def test_smoke_run_writes_markdown_and_chart(smoke):
    done, out, _ = smoke
    md = (out / "smoke.md").read_text()
    assert md.startswith("# jaxgrad bench: custom suite, float32, algorithm auto, cpu")
    assert re.search(rf"\| `{SMOKE_CASE}` \| v&g \| 0\.403 \| [0-9.]+ \([0-9.]+\) \|", md)
    assert "## Correctness" in md and "jaxgrad yes, jax.grad yes, torch yes" in md
    assert re.search(r"## First call of jit\(value_and_grad\) \(s\)\n\n.*\n\n"
                     r"\| case \| jaxgrad trace \| jaxgrad lower \| jaxgrad compile \| "
                     r"jaxgrad run \| jax.grad trace \| jax.grad lower \| jax.grad "
                     r"compile \| jax.grad run \| jaxgrad / jax.grad compile \|\n", md)
    assert re.search(rf"\| `{SMOKE_CASE}` (\| [0-9.]+ ){{8}}\| [0-9.]+x \|", md)
    if importlib.util.find_spec("matplotlib"):
        assert (out / "smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert _chart.MISSING_MATPLOTLIB in done.stdout


def test_no_speed_is_reported_for_a_wrong_result(smoke):
    record = copy.deepcopy(smoke[2])
    case = record["cases"][0]
    case["correct"]["jaxgrad"] = False
    case["ratios"] = _run._ratios(case["timings"], case["correct"])
    assert all(r == {"vs_autodiff": None, "vs_torch": None}
               for r in case["ratios"].values())
    row = _report.console_table(record).splitlines()[1].split()
    assert row[3] == "wrong" and row[4] != "wrong"  # jaxgrad's cell only
    assert f"| `{SMOKE_CASE}` | fwd | 0.134 | wrong | " in _report.markdown(record)
    speedups = _chart.speedups(record, "forward")
    assert speedups["vs_autodiff"][0] is None and speedups["vs_torch"][0] is None


def test_chart_is_skipped_with_a_message_without_matplotlib(smoke, tmp_path,
                                                           monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    assert _chart.write_chart(smoke[2], tmp_path / "c.png") == \
        _chart.MISSING_MATPLOTLIB
    assert not (tmp_path / "c.png").exists()


def test_readme_lists_every_case():
    from jaxgrad_bench import _cases
    text = README.read_text()
    assert all(f"`{name}`" in text for name in _cases.names())
