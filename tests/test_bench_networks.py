"""The drawn-networks harness (bench/networks.py): its draws stay in their
ranges, its three steps compute jax.grad's numbers, and the CLI writes the
JSON and summary it promises."""

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
    depthwise = 0
    for _ in range(25):
        net = networks.draw(rng, kind, 0.02, 0.5)
        assert 0.02 <= net["forward_gflop"] <= 0.5
        size, gflop = net["size"], 0.0
        for prev, layer in zip([None] + net["layers"][:-1], net["layers"]):
            c_out, c_in, k, stride, dilation, groups = layer
            if prev is not None:
                assert c_in == prev[0]              # each layer reads the last one's output
            assert c_in % groups == 0 and c_out % groups == 0
            depthwise += groups > 1 and groups == c_in == c_out
            size = _out(size, k, stride, dilation)
            assert size >= 1
            gflop += 2 * net["batch"] * c_out * (c_in // groups) * k * k * size * size / 1e9
        assert net["forward_gflop"] == pytest.approx(gflop)
    assert depthwise > 0


def test_three_steps_compute_the_same_update():
    net = {"kind": "plain", "batch": 2, "size": 9,
           "layers": [[4, 3, 3, 1, 1, 1], [4, 4, 3, 2, 1, 4], [6, 4, 5, 1, 2, 1]]}
    net["forward_gflop"] = networks.forward_gflop(net)
    record = networks.measure(net, repeats=2)
    assert set(record["median_ms"]) == set(networks.MODES)
    assert all(len(t) == 2 for t in record["times_s"].values())
    # float32 steps against jax.grad's: loss and every updated weight
    assert set(record["max_rel_error"]) == {"auto", "transpose"}
    assert all(e < 1e-5 for e in record["max_rel_error"].values()), record["max_rel_error"]
    if jax.default_backend() == "cpu":      # "auto"'s CPU rule for the depthwise layer
        assert ["forward", "taps"] in record["auto_formulations"]


def test_cli_writes_json_and_summary(tmp_path):
    code = networks.main(["--kind", "depthwise", "--count", "2", "--seed", "1",
                          "--repeats", "2", "--min-gflop", "0", "--max-gflop", "0.01",
                          "--out", str(tmp_path), "--name", "nets"])
    assert code == 0
    result = json.loads((tmp_path / "nets.json").read_text())
    assert result["kind"] == "depthwise" and len(result["records"]) == 2
    summary = (tmp_path / "nets.md").read_text()
    ratios = [r["median_ms"]["auto"] / r["median_ms"]["jax.grad"] for r in result["records"]]
    assert f"over 1.05 in {sum(v > 1.05 for v in ratios)}" in summary
    for r in ratios:
        assert f"| {r:.2f} |" in summary


def test_cli_rejects_an_empty_gflop_range(tmp_path):
    with pytest.raises(SystemExit, match=r"--min-gflop 2.0 exceeds --max-gflop 1.0"):
        networks.main(["--min-gflop", "2", "--max-gflop", "1", "--out", str(tmp_path)])
