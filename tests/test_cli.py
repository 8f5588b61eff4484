"""The ``jaxgrad`` command and ``jaxgrad check``: progress lines, filters, help,
exit codes, usage errors.

``jaxgrad bench`` is tested in ``test_bench_cli.py``. Each test runs a small
filtered subset of the cases (every case compiles one program).
"""

import re

import pytest

from jaxgrad._checking import _check, _cli, _families

# `[i/n] name  STATUS  seconds s  ref rel (array), ...`
LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] (.+?)\s+(PASS|FAIL|SKIP)\s+(\d+\.\d\d) s  (.*)$")


def _lines(out: str) -> list[re.Match]:
    return [m for m in map(LINE.match, out.splitlines()) if m]


def _worst(rest: str) -> dict[str, float]:
    """{reference: worst relative error} from the end of a progress line."""
    return {ref: float(rel) for ref, rel in re.findall(r"(lax|torch) (\S+) \(", rest)}


def test_check_prints_one_progress_line_per_case(capsys):
    names = ["conv1d k3 p1", "max_pool1d k3 s2 p1", "relu6", "mse_loss reduction=sum",
             "hook doubling the cotangent"]
    assert _cli.main(["check", "--cases", *names]) == 0
    out = capsys.readouterr().out
    lines = _lines(out)
    assert [m[3] for m in lines] == names          # registry order, one line each
    assert [(m[1], m[2]) for m in lines] == [(str(i), "5") for i in range(1, 6)]
    for m in lines:
        assert m[4] == "PASS" and float(m[5]) > 0
        worst = _worst(m[6])
        assert set(worst) == {"lax", "torch"} and max(worst.values()) <= 1e-10
    assert out.splitlines()[0].startswith(
        "jaxgrad check: 5 cases (conv, pool, activation, loss, gradient), dtype float64")
    assert re.search(r"^5 cases: 5 passed, 0 failed \(10 comparisons\) in \d+\.\d s$",
                     out, re.MULTILINE)


def test_check_in_float32_compares_with_float64_references(capsys):
    assert _cli.main(["check", "--dtype", "float32", "--no-torch",
                      "--cases", "conv2d groups=2", "softmax dim=-1"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == 2
    for m in lines:
        (rel,) = _worst(m[6]).values()
        assert 0 < rel <= 1e-5  # float32 rounding is visible, and within tolerance


def test_cases_filter_finds_every_max_pool(capsys):
    assert _cli.main(["check", "--list", "--cases", "max_pool"]) == 0
    listed = [line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines()]
    assert {family for family, _ in listed} == {"pool"}
    names = [name for _, name in listed]
    assert all("max_pool" in name for name in names)
    for n in (1, 2, 3):
        assert any(name.startswith(f"max_pool{n}d") for name in names)
        assert any(name.startswith(f"adaptive_max_pool{n}d") for name in names)


def test_families_filter_and_list(capsys):
    assert _cli.main(["check", "--list", "--families", "loss", "gradient"]) == 0
    listed = [line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines()]
    assert [name for _, name in listed] == [
        c.name for c in _families.cases(["loss", "gradient"])]
    assert {family for family, _ in listed} == {"loss", "gradient"}
    names = " ".join(name for _, name in listed)
    for op in ("mse_loss", "nll_loss", "cross_entropy", "probabilities", "scale_grad",
               "reverse_grad", "hook"):
        assert op in names


def test_every_case_is_listed_with_its_family(capsys):
    assert _cli.main(["check", "--list"]) == 0
    out = capsys.readouterr().out
    listed = [tuple(line.split(maxsplit=1)) for line in out.splitlines()]
    assert listed == [(c.family, c.name) for c in _families.cases()]
    assert {f for f, _ in listed} >= {"conv", "pool", "linear", "activation", "softmax",
                                      "loss", "gradient"}


def test_help_says_what_is_compared_and_lists_the_families(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli.main(["check", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for key, family in _families.available().items():
        assert f"{key} {' '.join(family.description.split())}" in text
    for phrase in ("second-order gradients", "reverse over reverse",
                   "JAX autodiff of a plain lax/jnp formula", "PyTorch autograd",
                   "float64 1e-10, float32 1e-5", "one line per case",
                   "--families FAMILY", "--cases SUBSTRING", "--dtype", "--no-torch",
                   "--list", "Exit status 0"):
        assert phrase in text, phrase


def test_check_fails_loudly(monkeypatch, capsys):
    monkeypatch.setattr(_check, "tolerance", lambda dtype: -1.0)
    assert _cli.main(["check", "--no-torch", "--cases", "linear 1-D"]) == 1
    out = capsys.readouterr().out
    (line,) = _lines(out)
    assert line[4] == "FAIL"
    assert re.search(r"^\s+lax: \S+ max abs \S+, max rel \S+ > tolerance -1e\+00$", out,
                     re.MULTILINE)
    assert "1 cases: 0 passed, 1 failed" in out


def _broken(**arrays):
    raise RuntimeError("broken op\nsecond line")


def test_a_new_family_is_registered_and_an_error_is_a_failure(monkeypatch, capsys):
    cases = [_families.case("extra", "extra broken", _broken, torch=_broken, x=(2,)),
             _families.case("extra", "extra relu", lambda x: x,
                            lax=lambda x: x, x=(2,))]
    monkeypatch.setitem(_families.FAMILIES, "extra",
                        _families.Family("a family added in a test", lambda: cases))
    monkeypatch.setitem(_families.FAMILIES, "missing", _families.Family(
        "needs an op jaxgrad lacks", lambda: cases, requires=("no_such_op",)))
    with pytest.raises(SystemExit):
        _cli.main(["check", "--help"])
    help_text = capsys.readouterr().out
    assert "extra       a family added in a test" in help_text
    assert "missing" not in help_text
    assert _cli.main(["check", "--families", "extra"]) == 1
    out = capsys.readouterr().out
    broken, fine = _lines(out)
    assert broken[4] == "FAIL" and broken[6] == "RuntimeError: broken op"
    assert fine[4] == "PASS"                       # the run went on
    assert "2 cases: 1 passed, 1 failed" in out


def test_a_case_without_a_reference_is_skipped_without_torch(capsys):
    assert _cli.main(["check", "--no-torch", "--cases", "max_pool2d k2 d2 ceil"]) == 0
    out = capsys.readouterr().out
    (line,) = _lines(out)
    assert line[4] == "SKIP" and "its only reference is torch" in line[6]
    assert "1 cases: 0 passed, 0 failed, 1 skipped (0 comparisons)" in out


@pytest.mark.parametrize("argv,message", [
    (["check", "--dtype", "int8"], "invalid choice: 'int8'"),
    (["check", "--cases", "no such case"], "no case name contains"),
    (["check", "--families", "pool", "norms"],
     "check: unknown family 'norms'; choose from conv, pool,"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required: command"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        _cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("jaxgrad")


def test_case_names_are_unique():
    names = [c.name for c in _families.cases()]
    assert len(names) == len(set(names))


def test_importing_jaxgrad_does_not_load_the_benchmark_harness():
    import subprocess
    import sys
    code = ("import sys, jaxgrad, jaxgrad._checking._cli; "
            "print(sorted(m for m in sys.modules if m.startswith('jaxgrad_bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
