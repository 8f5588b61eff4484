"""The ``jaxgrad`` command and ``jaxgrad check``: table rows, exit codes, usage errors.

``jaxgrad bench`` is tested in ``test_bench_cli.py``.
"""

import re

import pytest

from jaxgrad._checking import _check, _cli


def test_check_passes_and_prints_one_row_per_reference(capsys):
    assert _cli.main(["check", "--cases", "conv1d k3 p1", "conv_transpose2d 2x2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.rstrip().endswith("PASS")]
    assert len(rows) == 4  # two cases x (lax, torch)
    assert rows[0].startswith("conv1d k3 p1") and " lax " in rows[0]
    assert " torch " in rows[1]
    assert "4 passed, 0 failed" in out


def test_check_in_float32_compares_with_float64_references(capsys):
    assert _cli.main(["check", "--dtype", "float32", "--no-torch",
                      "--cases", "conv2d groups=2"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("conv2d groups=2")]
    rel = float(row.split()[-3])
    assert 0 < rel <= 1e-5  # float32 rounding is visible, and within tolerance


def test_check_fails_loudly(monkeypatch, capsys):
    monkeypatch.setattr(_check, "tolerance", lambda dtype: -1.0)
    assert _cli.main(["check", "--no-torch", "--cases", "conv1d k3 p1"]) == 1
    assert re.search(r"FAIL\s*$", capsys.readouterr().out, re.MULTILINE)


@pytest.mark.parametrize("argv,message", [
    (["check", "--dtype", "int8"], "invalid choice: 'int8'"),
    (["check", "--cases", "no such case"], "no case name contains"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required: command"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        _cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("jaxgrad")


def test_every_case_is_listed(capsys):
    assert _cli.main(["check", "--list"]) == 0
    assert capsys.readouterr().out.split("\n")[:-1] == [c.name for c in _check.CASES]


def test_importing_jaxgrad_does_not_load_the_benchmark_harness():
    import subprocess
    import sys
    code = ("import sys, jaxgrad, jaxgrad._checking._cli; "
            "print(sorted(m for m in sys.modules if m.startswith('jaxgrad_bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
