"""The bench's ``models`` suite: options, the float64 correctness check, the tables.

One tiny network is prepared and checked end to end (no timing assertion:
the record's structure and its correctness verdicts are what is tested).
"""

import numpy as np
import pytest

from jaxgrad_bench import _models_run, _options


def test_models_suite_parses_and_refuses_cases_or_convs(capsys):
    assert _options.parse(["--suite", "models"]).suite == "models"
    for extra in (["--cases", "c3d-3x3x3"], ["--conv", "conv1d x=1,2,9 w=2,2,3"]):
        with pytest.raises(SystemExit) as exc:
            _options.parse(["--suite", "models", *extra])
        assert exc.value.code == 2
        assert "--suite models runs whole networks" in capsys.readouterr().err


def test_autotune_is_a_bench_algorithm():
    assert _options.parse(["--algorithm", "autotune"]).algorithm == "autotune"


def test_compare_measures_noise_level_gradients_against_their_kind():
    """A gradient that is rounding noise (mathematically zero) is measured
    against 1e-3 of the largest gradient; a real one against itself."""
    ref = {"loss": np.array(2.0), "grad a": np.array([1.0, -2.0]),
           "grad b": np.array([1e-17, -2e-17]), "a.running_mean": np.array([0.5])}
    other = {"loss": np.array(2.0), "grad a": np.array([1.0, -2.0 + 2e-6]),
             "grad b": np.array([-3e-17, 1e-17]), "a.running_mean": np.array([0.5])}
    errors = _models_run.compare({"jaxgrad": other, "autodiff": ref})
    e = errors["jaxgrad_vs_autodiff"]
    assert e["grad a"] == pytest.approx(1e-6)
    assert e["grad b"] == pytest.approx(4e-17 / 2e-3)   # not 2.0, noise vs noise
    assert e["loss"] == 0.0 and e["a.running_mean"] == 0.0


def test_a_tiny_network_is_checked_and_recorded():
    case = _models_run.ModelCase("unet", width=2, batch=2, size=8, classes=2)
    messages = []
    record = _models_run.run_model(case, dtype="float32", repeats=1, seed=0,
                                   use_torch=True, progress=messages.append)
    assert record["correct"] == {"jaxgrad": True, "autodiff": True, "torch": True}
    # float64 agreement of loss, gradients and buffers, all three ways
    assert max(max(e.values()) for e in record["errors"].values()) < 1e-10
    assert set(record["timings"]) == {"jaxgrad", "autodiff", "torch"}
    assert record["compile_s"]["jaxgrad"] > 0 and "errors_float32" in record
    names = {k for k in record["errors"]["jaxgrad_vs_torch"] if k.startswith("grad ")}
    assert "grad up2.weight" in names and "grad out.bias" in names
    table = _models_run.console_table([record])
    assert table.splitlines()[1].startswith(case.name)
    assert _models_run.markdown_table([record])[2].startswith(f"| {case.name} |")
