"""The README's two commands: CI runs the test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)][:2]


def test_ci_runs_the_readme_test_command_verbatim():
    main, tests = readme_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert tests in ci_lines
    assert tests.endswith("python -m pytest -q")


def test_main_command_runs_the_benchmark_with_pinned_torch():
    main, _ = readme_commands()
    assert main.endswith(".venv/bin/jaxgrad bench")
    assert "-c constraints.txt" in main  # never an unpinned (CUDA) torch
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()


def test_check_case_count_is_the_registrys():
    # the README's "N small cases" of `jaxgrad check` is the registry's count
    from jaxgrad._checking import _families

    text = (ROOT / "README.md").read_text()
    (count,) = re.findall(r"(\d+) small cases", text)
    assert int(count) == len(_families.cases())


def test_the_opening_snippet_runs_and_equals_autodiff(capsys):
    # The first python block: the explicit gradient formula, jitted and
    # differentiated; it prints whether it equals JAX autodiff of plain lax.
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    assert "jaxgrad.grad.conv2d_input" in code
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    assert capsys.readouterr().out.split() == ["True"]
