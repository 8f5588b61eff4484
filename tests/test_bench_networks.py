"""The drawn-networks harness (bench/networks.py): its draws stay in their
ranges, its three modes compute jax.grad's gradients, a mode that does not
is reported, and the CLI writes the JSON and summary it promises."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxgrad_bench import networks


def _out(size, k, stride, dilation):
    # "same" padding d(K-1)//2 each side, worked out by hand from the conv
    # output formula floor((I + 2p - d(K-1) - 1) / s) + 1
    pad = dilation * (k - 1) // 2
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


@pytest.mark.parametrize("kind", networks.KINDS)
def test_draws_are_chains_within_their_bounds(kind):
    rng = np.random.default_rng(3)
    depthwise = partial = 0
    for _ in range(25):
        net = networks.draw(rng, kind, 0.02, 0.5)
        assert 0.02 <= net["forward_gflop"] <= 0.5
        assert net["batch"] in (1, 2, 4, 8, 16, 32) and 14 <= net["size"] <= 128
        assert 3 <= len(net["layers"]) <= (7 if kind == "plain" else 13)
        # the module docstring's ranges: channels (depthwise: an inverted
        # residual's 6x expansion of 192 channels the widest; grouped: a
        # 2x-wide block after four stride-2 doublings of 64), kernels
        widest = {"plain": 384, "depthwise": 6 * 192, "grouped": 2 * 64 * 2 ** 4}[kind]
        assert all(c <= widest for layer in net["layers"] for c in layer[:2])
        assert all(layer[2] in (1, 3, 5, 7) for layer in net["layers"])
        size, gflop = net["size"], 0.0
        for prev, layer in zip([None] + net["layers"][:-1], net["layers"]):
            c_out, c_in, k, stride, dilation, groups = layer
            if prev is not None:
                assert c_in == prev[0]              # each layer reads the last one's output
            assert c_in % groups == 0 and c_out % groups == 0
            depthwise += groups > 1 and groups == c_in == c_out
            partial += 1 < groups < c_in
            size = _out(size, k, stride, dilation)
            assert size >= 1
            gflop += 2 * net["batch"] * c_out * (c_in // groups) * k * k * size * size / 1e9
        assert net["forward_gflop"] == pytest.approx(gflop)
    # each kind has its kind of layer: depthwise ones, or grouped ones of
    # 4-16 channels per group
    assert (partial if kind == "grouped" else depthwise) > 0


def test_the_modes_compute_jax_grads_gradients():
    # a stride-1 and a stride-2 depthwise layer among dense ones, one dilated
    net = {"kind": "plain", "batch": 2, "size": 9,
           "layers": [[4, 3, 3, 1, 1, 1], [4, 4, 5, 1, 1, 4], [4, 4, 3, 2, 1, 4],
                      [6, 4, 5, 1, 2, 1]]}
    net["forward_gflop"] = networks.forward_gflop(net)
    with jax.enable_x64(False):         # float32, as the command runs (conftest turns x64 on)
        record = networks.measure(net, repeats=2)
    assert set(record["median_ms"]) == set(networks.MODES)
    assert all(len(t) == 2 for t in record["times_s"].values())
    # float32 loss and weight gradients against the float64 reference; the
    # autotune_jit step's output against the step it kept
    assert set(record["max_rel_error"]) == {"auto", "transpose", "jax.grad", "autotune_jit"}
    assert all(e < 1e-5 for e in record["max_rel_error"].values()), record["max_rel_error"]
    assert record["max_rel_error"]["autotune_jit"] == 0.0
    # the reference is float64: float32 jax.grad differs from it by rounding
    assert record["max_rel_error"]["jax.grad"] > 0
    assert record["wrong"] == []
    if jax.default_backend() == "cpu":      # "auto"'s CPU rule for the depthwise layer
        assert ["forward", "taps"] in record["auto_formulations"]
    assert record["autotune_jit"]["choice"] in ("auto", "transpose")
    assert record["autotune_jit"]["first_call_s"] > 0


def test_cli_writes_json_and_summary(tmp_path):
    code = networks.main(["--kind", "depthwise", "--count", "1", "--seed", "1",
                          "--repeats", "2", "--min-gflop", "0", "--max-gflop", "0.01",
                          "--out", str(tmp_path), "--name", "nets"])
    assert code == 0
    result = json.loads((tmp_path / "nets.json").read_text())
    assert result["kind"] == "depthwise" and len(result["records"]) == 1
    summary = (tmp_path / "nets.md").read_text()
    ratios = [r["median_ms"]["auto"] / r["median_ms"]["jax.grad"] for r in result["records"]]
    assert f"over 1.05 in {sum(v > 1.05 for v in ratios)}" in summary
    tuned = [r["median_ms"]["autotune_jit"] / r["median_ms"]["jax.grad"]
             for r in result["records"]]
    for r, t in zip(ratios, tuned):
        assert f"| {r:.2f} | {t:.2f} |" in summary


def test_errors_beyond_the_tolerance_or_nan_are_wrong():
    tol = networks.TOLERANCE
    assert networks.wrong_modes({"auto": tol, "transpose": tol * 1.01}) == ["transpose"]
    assert networks.wrong_modes({"auto": float("nan"), "transpose": 0.0}) == ["auto"]
    # beyond the tolerance but within twice jax.grad's own error: XLA's accuracy
    assert networks.wrong_modes({"auto": 2e-4, "transpose": 3e-4}, baseline=1.4e-4) \
        == ["transpose"]
    assert networks.wrong_modes({"auto": float("nan")}, baseline=1.0) == ["auto"]


def test_a_wrong_mode_is_reported(tmp_path, monkeypatch, capsys):
    # the reporting path on a canned measurement (the measurement itself is
    # tested above): JSON, summary and exit status
    def canned(net, repeats):
        return {"median_ms": {"auto": 2.0, "transpose": 1.0, "autotune_jit": 1.0,
                              "jax.grad": 1.0},
                "times_s": {m: [1e-3] * repeats for m in networks.MODES},
                "max_rel_error": {"auto": 0.5, "transpose": 1e-7, "jax.grad": 1e-6,
                                  "autotune_jit": 0.0},
                "wrong": networks.wrong_modes({"auto": 0.5, "transpose": 1e-7}),
                "autotune_jit": {"choice": "transpose", "first_call_s": 1.0},
                "auto_formulations": []}
    monkeypatch.setattr(networks, "measure", canned)
    code = networks.main(["--count", "2", "--seed", "2", "--repeats", "1",
                          "--out", str(tmp_path), "--name", "nets"])
    assert code == 1
    records = json.loads((tmp_path / "nets.json").read_text())["records"]
    assert [r["wrong"] for r in records] == [["auto"], ["auto"]]
    summary = (tmp_path / "nets.md").read_text()
    assert (f"**Wrong results** (beyond {networks.TOLERANCE:g} and twice jax.grad's error "
            "against the float64 reference, or autotune_jit not running the step it kept) "
            "in networks 1, 2.") in summary
    assert "| 5.0e-01 / 1.0e-07 / 1.0e-06 wrong: auto |" in summary
    assert "over 1.05 in 2 (worst 2.00)" in summary
    assert "autotune_jit / jax.grad: geometric mean 1.000, over 1.05 in 0 (worst 1.00), " \
        "textbook kept in 2." in summary
    assert "2 networks with wrong results" in capsys.readouterr().err


def test_cli_rejects_an_empty_gflop_range(tmp_path):
    with pytest.raises(SystemExit, match=r"--min-gflop 2.0 exceeds --max-gflop 1.0"):
        networks.main(["--min-gflop", "2", "--max-gflop", "1", "--out", str(tmp_path)])
