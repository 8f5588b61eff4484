"""``python -m jaxgrad_bench.regret``: auto's regret on a sweep, by hand.

The times below are made up; the expected regrets are worked out from them by
hand. Where a record has no timed "auto", the formulation auto picks comes
from tracing jaxgrad's rules (on CPU a depthwise gradient is taps: the
``docs/performance.md`` table), and the sweep's time of that formulation is
auto's.
"""

import pytest

from jaxgrad_bench import regret

DEPTHWISE = {"op": "conv", "input": [2, 8, 10, 10], "weight": [8, 1, 3, 3],
             "output": [2, 8, 10, 10], "stride": [1, 1], "padding": [1, 1],
             "dilation": [1, 1], "groups": 8, "output_padding": None,
             "forward_gflop": 0.0}


def _times(part, **medians):
    return {f"{part}:{f}": {"median_s": t} for f, t in medians.items()}


def test_timed_auto_is_divided_by_the_fastest_candidate_and_by_autodiff():
    record = {"name": "a", "config": DEPTHWISE,
              "candidates": _times("bwd", transpose=4.0, taps=1.0, autodiff=5.0, auto=1.2)}
    rows = regret.regrets({"parts": ["bwd"], "records": [record]})["bwd"]
    assert rows[0]["regret"] == pytest.approx(1.2)
    assert rows[0]["vs_autodiff"] == pytest.approx(0.24)
    assert rows[0]["best"] == "taps" and rows[0]["how"] == "timed"


def test_untimed_auto_is_read_off_the_formulation_the_rules_pick():
    assert regret.timed_label(DEPTHWISE, "input") == "taps"
    records = [{"name": "b", "config": DEPTHWISE,
                "candidates": {**_times("input", transpose=3.0, taps=2.0, autodiff=1.6),
                               **_times("weight", transpose=1.0, taps=2.0, autodiff=1.0)}},
               {"name": "failed", "config": DEPTHWISE, "timeout": "no result"}]
    table = regret.regrets({"parts": ["input", "weight"], "records": records})
    (row,) = table["input"]
    assert (row["how"], row["best"]) == ("taps", "autodiff")
    assert row["regret"] == pytest.approx(2.0 / 1.6)
    assert table["weight"][0]["regret"] == pytest.approx(2.0)
    summary = regret.summary(table).splitlines()
    assert summary[2] == "| input | 1 | 1.250 | 1.250 | 1.250 | 1.250 | 1 |"
    assert summary[3] == "| weight | 1 | 2.000 | 2.000 | 2.000 | 2.000 | 1 |"


def test_each_gradient_is_labelled_by_its_own_map():
    # dense 3x3 stride 2, 64 -> 8 channels, batch 8 at 64x64: buffer
    # 8·64·9·32·32 = 4.7M elements. The input gradient is stride 2: taps; the
    # weight gradient, with a batch above strided_weight_taps_max_batch,
    # aligned channels and a buffer above 2^20: the textbook rule. (A custom
    # VJP traces both cotangents; only the part's map may decide its label.)
    config = {"op": "conv", "input": [8, 64, 64, 64], "weight": [8, 64, 3, 3],
              "output": [8, 8, 32, 32], "stride": [2, 2], "padding": [1, 1],
              "dilation": [1, 1], "groups": 1, "output_padding": None}
    assert 8 * 64 * 9 * 32 * 32 > 2 ** 20
    made = regret.auto_choices(config, "input")
    assert [(m.kind, m.choice.formulation) for m in made] == [("input_grad", "taps")]
    made = regret.auto_choices(config, "weight")
    assert [(m.kind, m.choice.formulation) for m in made] == [("weight_grad", "transpose")]
    # a transposed convolution's input gradient is the core's forward
    convt = {**config, "op": "conv_transpose", "weight": [64, 8, 3, 3],
             "output": [8, 8, 128, 128],
             "output_padding": [1, 1]}
    assert [m.kind for m in regret.auto_choices(convt, "input")] == ["forward"]


# --------------------------------------------------------------------------
# --confirm: the rows that miss a target are timed again, with a control.

TINY = {"op": "conv", "input": [1, 2, 9], "weight": [3, 2, 3], "output": [1, 3, 7],
        "stride": [1], "padding": [0], "dilation": [1], "groups": 1,
        "output_padding": None, "forward_gflop": 0.0}


def test_flagged_rows_are_those_over_either_target():
    table = {"bwd": [{"name": "fine", "regret": 1.5, "vs_autodiff": 1.05},
                     {"name": "slow", "regret": 1.0, "vs_autodiff": 1.06},
                     {"name": "regret", "regret": 1.51, "vs_autodiff": 0.2},
                     {"name": "failed", "skipped": "no time"}],
             "vag": [{"name": "both", "regret": 3.0, "vs_autodiff": 2.0}]}
    assert [(part, row["name"]) for part, row in regret.flagged(table)] == [
        ("bwd", "slow"), ("bwd", "regret"), ("vag", "both")]


def _fake_timing(seconds, ran):
    """A stand-in for _timing.time_interleaved: runs each call once (the
    compiled programs must work) and returns the given time for its label."""
    def time_interleaved(calls, repeats, **_):
        out = {}
        for key, call in calls.items():
            ran.append(key)
            call()
            out[key] = [seconds[key.split(":", 1)[1]]] * repeats
        return out
    return time_interleaved


SECONDS = {"transpose": 4.0, "taps": 2.0, "autodiff": 5.0, "auto": 2.5,
           "autodiff again": 5.5}


def test_confirm_times_every_formulation_auto_and_the_control(monkeypatch):
    from jaxgrad_bench import _timing
    ran = []
    monkeypatch.setattr(_timing, "time_interleaved", _fake_timing(SECONDS, ran))
    got = regret.confirm(TINY, "vag", repeats=3)
    assert sorted(ran) == sorted(f"vag:{f}" for f in SECONDS)
    # regret 2.5 / 2 (taps fastest; the control is not a candidate), 2.5 / 5,
    # control 5.5 / 5
    assert got["regret"] == pytest.approx(1.25)
    assert got["vs_autodiff"] == pytest.approx(0.5)
    assert got["control"] == pytest.approx(1.1)
    assert got["best"] == "taps" and got["auto_ms"] == pytest.approx(2500.0)


def test_confirm_cli_reports_sweep_and_confirmed_ratios(monkeypatch, tmp_path, capsys):
    from jaxgrad_bench import _timing
    monkeypatch.setattr(_timing, "time_interleaved", _fake_timing(SECONDS, []))
    fine = {"name": "fine", "config": TINY,
            "candidates": _times("bwd", transpose=1.0, taps=1.0, autodiff=1.0, auto=1.0)}
    slow = {"name": "slow", "config": TINY,
            "candidates": _times("bwd", transpose=1.0, taps=1.0, autodiff=1.0, auto=1.2)}
    path = tmp_path / "sweep.json"
    path.write_text(__import__("json").dumps({"parts": ["bwd"], "records": [fine, slow]}))
    assert regret.main([str(path), "--confirm", "2"]) == 0
    out = capsys.readouterr().out
    assert "| bwd | conv x=(1, 2, 9) w=(3, 2, 3) | 1.20 | 1.20 | 1.25 | 0.50 | 1.10 | taps |" in out
    assert ("1 rows timed again: 0 still above 1.05x jax.grad, 0 still above a "
            "regret of 1.5; the control (the same program twice) differed by up to 10%.") in out


def test_confirm_rejects_a_count_that_is_not_positive(capsys):
    with pytest.raises(SystemExit):
        regret.main(["x.json", "--confirm", "0"])
    assert "must be a positive integer, got '0'" in capsys.readouterr().err


def test_confirm_refuses_a_gpu_sweep(tmp_path, capsys):
    path = tmp_path / "gpu.json"
    path.write_text(__import__("json").dumps(
        {"machine": {"gpu_model": "NVIDIA H200"}, "parts": ["bwd"], "records": []}))
    with pytest.raises(SystemExit):
        regret.main([str(path), "--confirm", "3"])
    assert ("--confirm times again on this machine's CPU; "
            f"{path} was measured on NVIDIA H200") in capsys.readouterr().err
