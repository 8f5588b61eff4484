"""A one-case smoke run of ``jaxgrad bench`` end to end, and what it writes.

The run goes through the installed console script in a subprocess (1 timed
repetition of the cheapest case), like a user's. results.json is validated
against the schema documented in ``bench/README.md``. No test asserts a timing.
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
XLA_FLAGS = "--xla_backend_optimization_level=3"  # XLA's default, stated


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    jaxgrad = str(Path(sys.executable).with_name("jaxgrad"))
    done = subprocess.run(
        [jaxgrad, "bench", "--cases", SMOKE_CASE, "--repeats", "1",
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
    assert record["options"]["cases"] == [SMOKE_CASE]
    assert record["options"]["repeats"] == 1 and record["options"]["torch"]
    env = record["environment"]
    assert env["XLA_FLAGS"] == XLA_FLAGS and env["JAX_PLATFORMS"] == "cpu"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "4294967296"
    assert set(env) == set(_machine.ENV_KEYS)
    assert record["threads"]["torch_intra_op"] == record["machine"]["cpus_available"]
    assert any("smoke run" in note for note in record["notes"])
    (case,) = record["cases"]
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


def test_smoke_run_console_output(smoke):
    done, out, _ = smoke
    lines = done.stdout.splitlines()
    assert lines[0].startswith("jaxgrad bench: 1 cases (custom), float32, algorithm auto, cpu")
    assert lines[1].split()[:4] == ["case", "mode", "GFLOP", "jaxgrad"]
    rows = [line.split() for line in lines[2:5]]
    assert rows[0][:3] == [SMOKE_CASE, "fwd", "0.134"]  # GFLOP, by hand above
    assert rows[1][:2] == ["bwd", "0.268"] and rows[2][:2] == ["v&g", "0.403"]
    assert len(rows[0]) == 12 and len(rows[1]) == 9  # errors on the first row
    assert f"[1/1] {SMOKE_CASE}: done in" in done.stderr  # progress
    assert f"wrote {out / 'smoke.json'}, {out / 'smoke.md'}" in done.stdout


def test_smoke_run_writes_markdown_and_chart(smoke):
    done, out, _ = smoke
    md = (out / "smoke.md").read_text()
    assert md.startswith("# jaxgrad bench: custom suite, float32, algorithm auto, cpu")
    assert re.search(rf"\| `{SMOKE_CASE}` \| v&g \| 0\.403 \| [0-9.]+ \([0-9.]+\) \|", md)
    assert "## Correctness" in md and "jaxgrad yes, jax.grad yes, torch yes" in md
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
    assert _chart.speedups(record, "forward") == {"vs_autodiff": [None],
                                                  "vs_torch": [None]}


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
