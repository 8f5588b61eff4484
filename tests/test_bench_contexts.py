"""``python -m jaxgrad_bench.contexts``: drawn shapes, both contexts, auto's pick."""

import json
import math

import jax.numpy as jnp
import pytest

from jaxgrad._conv import _plan
from jaxgrad._conv._spec import ConvSpec
from jaxgrad_bench import contexts


def test_draws_are_reproducible_and_within_their_bounds():
    for ndim in (1, 2):
        shapes = contexts.draw(ndim, 30, seed=5)
        assert shapes == contexts.draw(ndim, 30, seed=5)
        assert shapes != contexts.draw(ndim, 30, seed=6)
        for x, w, stride in shapes:
            assert len(x) == len(w) == ndim + 2 and stride == 1
            n, c, *spatial = x
            o, c_w, *kernel = w
            assert c_w == c and o % c == 0 and 16 <= o <= contexts.MAX_OUT_CHANNELS
            assert all(k <= i for k, i in zip(kernel, spatial))
            assert n * c * math.prod(kernel) * math.prod(spatial) <= contexts.MAX_BUFFER
    for ndim in (1, 2):
        shapes = contexts.draw(ndim, 30, seed=5, family="dense-few-out")
        assert shapes == contexts.draw(ndim, 30, seed=5, family="dense-few-out")
        assert {x[0] % 2 for x, _, _ in shapes} == {0, 1}    # odd and even batches
        for x, w, stride in shapes:
            n, c, *spatial = x
            o, c_w, *kernel = w
            assert stride == 1 and c_w == c and len(spatial) == len(kernel) == ndim
            assert o in contexts.FEW_OUT_CHANNELS and c in contexts.FEW_OUT_IN_CHANNELS
            assert n * n * c * math.prod(spatial) <= contexts.MAX_FEW_OUT_PRODUCT
    for ndim in (1, 2):
        shapes = contexts.draw(ndim, 30, seed=5, family="dense-strided")
        assert shapes == contexts.draw(ndim, 30, seed=5, family="dense-strided")
        for x, w, stride in shapes:
            n, c, *spatial = x
            o, c_w, *kernel = w
            assert stride == 2 and c_w == c and len(spatial) == len(kernel) == ndim
            # 'same' padding (K-1 in all) at stride 2: ceil(I / 2) positions
            positions = math.prod((i + 1) // 2 for i in spatial)
            assert n * c * math.prod(kernel) * positions <= contexts.MAX_BUFFER
    for ndim in (1, 2):
        shapes = contexts.draw(ndim, 30, seed=5, family="dense-stride34")
        assert shapes == contexts.draw(ndim, 30, seed=5, family="dense-stride34")
        assert {stride for *_, stride in shapes} == {3, 4}
        for x, w, stride in shapes:
            n, c, *spatial = x
            o, c_w, *kernel = w
            assert c_w == c and len(spatial) == len(kernel) == ndim
            assert c in contexts.STRIDE34_CHANNELS and o in contexts.STRIDE34_CHANNELS
            assert n in contexts.STRIDE34_BATCHES and kernel[0] in contexts.STRIDE34_KERNELS
            assert all(k <= i for k, i in zip(kernel, spatial))
            # padding K-1 in all: ceil(I / s) positions
            positions = math.prod(-(-i // stride) for i in spatial)
            assert n * c * math.prod(kernel) * positions <= 2 * contexts.MAX_BUFFER
    shapes = contexts.draw(2, 30, seed=5, family="dense-thin")
    assert shapes == contexts.draw(2, 30, seed=5, family="dense-thin")
    for x, w, stride in shapes:
        n, c, *spatial = x
        o, c_w, *kernel = w
        assert c_w == c and c in contexts.THIN_CHANNELS and o in contexts.THIN_OUT_CHANNELS
        assert stride in contexts.THIN_STRIDES and n in contexts.THIN_BATCHES
        positions = math.prod(-(-i // stride) for i in spatial)
        assert len(spatial) == len(kernel) == 2 and spatial[0] in contexts.THIN_SIZES
        assert kernel[0] in contexts.THIN_KERNELS
        assert (contexts.MIN_THIN_BUFFER < n * c * math.prod(kernel) * positions
                <= 2 * contexts.MAX_BUFFER)
    # 1-D stems have no buffer above dense_taps_small_elements in these lists
    with pytest.raises(SystemExit, match="--family dense-thin draws 2-D shapes only"):
        contexts.main(["--family", "dense-thin", "--ndim", "1"])
    shapes = contexts.draw(3, 30, seed=5, family="grouped-one-out")
    assert shapes == contexts.draw(3, 30, seed=5, family="grouped-one-out")
    assert {stride for *_, stride in shapes} == {1, 2}
    for x, w, _ in shapes:
        groups = w[0]
        assert w[2:] == (3, 3, 3) and x[1] == groups * w[1]
        assert math.prod(x) <= contexts.MAX_GROUPED_INPUT


def test_the_line_divides_taps_by_the_textbook_rule_in_each_context():
    record = {"x": [4, 8, 100], "w": [64, 8, 3],
              "auto": {"input_grad": ["taps", "some row"]},
              "maps": {"input_grad": {"choice": "taps",
                                      "times_s": {"transpose": 4e-3, "taps": 1e-3},
                                      "moved_s": {"transpose": 2e-3, "taps": 3e-3}}}}
    line = contexts.line(record, "input_grad")
    assert "r=8" in line and "auto=taps:some row" in line
    assert "taps/textbook 0.25 as given, 1.50 moved; textbook 4 ms" in line
    # a weight gradient with the swapped arrangement among its candidates
    record["maps"]["weight_grad"] = {
        "choice": "transpose_swapped",
        "times_s": {"transpose": 2e-3, "taps": 5e-3, "transpose_swapped": 1e-3},
        "moved_s": {"transpose": 4e-3, "taps": 4e-3, "transpose_swapped": 1e-2}}
    record["auto"]["weight_grad"] = ["transpose_swapped", "a row"]
    line = contexts.line(record, "weight_grad")
    assert ("taps/textbook 2.50 as given, 1.00 moved; swapped/textbook 0.50 as given, "
            "2.50 moved; textbook 2 ms") in line


def _check_grouped_draws(family, groups, ins, outs, kernels, batches, sizes):
    """The family's 60 draws of seed 5, reproducible, within its lists and the
    FLOP bounds; returns them."""
    shapes = contexts.draw(2, 60, seed=5, family=family)
    assert shapes == contexts.draw(2, 60, seed=5, family=family)
    assert shapes != contexts.draw(2, 60, seed=6, family=family)
    for (n, c, h, w_), (o, cg, k, k2), s in shapes:
        g = c // cg
        assert h == w_ and k == k2 and c == g * cg and o % g == 0
        assert g in groups and cg in ins and o // g in outs and n in batches
        assert k in kernels and h in sizes and h >= k
        assert s in contexts.PARTIAL_STRIDES and (k > 1 or s >= 2)
        out = contexts._output((h, w_), k, s)
        flop = 2 * n * o * cg * k * k * out[0] * out[1]
        assert contexts.PARTIAL_FLOP[0] <= flop <= contexts.PARTIAL_FLOP[1]
    assert {s for *_, s in shapes} >= {1, 2, 3, 4}
    with pytest.raises(SystemExit, match=f"--family {family} draws 2-D shapes only"):
        contexts.main(["--family", family, "--ndim", "1"])
    return shapes


def test_the_grouped_family_draws_partial_groups_within_its_bounds():
    shapes = _check_grouped_draws(
        "grouped", contexts.PARTIAL_GROUPS, contexts.PARTIAL_IN_CHANNELS,
        contexts.PARTIAL_OUT_CHANNELS, contexts.PARTIAL_KERNELS, contexts.PARTIAL_BATCHES,
        contexts.PARTIAL_SIZES)
    assert min(cg for _, (o, cg, *k), s in shapes) >= 2


def test_the_grouped_wide_family_draws_many_input_channels_per_group():
    shapes = _check_grouped_draws(
        "grouped-wide", contexts.WIDE_GROUPS, contexts.WIDE_IN_CHANNELS,
        contexts.WIDE_OUT_CHANNELS, contexts.WIDE_KERNELS, contexts.WIDE_BATCHES,
        contexts.WIDE_SIZES)
    # beyond the taps forward's 8 input channels per group, every one
    assert min(cg for _, (o, cg, *k), s in shapes) > 8
    assert {n for (n, *_), *_ in shapes} >= {1, 2, 4, 8}


def test_the_grouped_strided_few_out_family_draws_stride_2_within_its_buffer():
    shapes = contexts.draw(2, 40, seed=5, family="grouped-strided-few-out")
    assert shapes == contexts.draw(2, 40, seed=5, family="grouped-strided-few-out")
    assert shapes != contexts.draw(2, 40, seed=6, family="grouped-strided-few-out")
    for (n, c, h, w_), (o, cg, k, k2), s in shapes:
        g = c // cg
        assert s == 2 and h == w_ >= k == k2 and c == g * cg and o % g == 0
        assert g in contexts.S2_GROUPS and cg in contexts.S2_IN_CHANNELS
        assert o // g in contexts.S2_OUT_CHANNELS and k in contexts.S2_KERNELS
        assert n in contexts.S2_BATCHES and h in contexts.S2_SIZES
        # the taps buffer N·C_in·K²·P, with P = ceil(h / 2)² for this padding
        assert (1 << 20) <= n * c * k * k * ((h + 1) // 2) ** 2 <= (1 << 26)
    assert {o // (c // cg) for (_, c, *_), (o, cg, *_), _ in shapes} >= {2, 4, 8}
    with pytest.raises(SystemExit, match="--family grouped-strided-few-out draws 2-D"):
        contexts.main(["--family", "grouped-strided-few-out", "--ndim", "1"])


def test_a_forward_line_divides_by_the_convolution():
    record = {"x": [4, 8, 10, 10], "w": [16, 2, 3, 3], "stride": 2, "groups": 4,
              "auto": {"forward": ["taps", "a row"]},
              "maps": {"forward": {"choice": "taps",
                                   "times_s": {"lax": 4e-3, "per_group": 2e-3, "taps": 1e-3},
                                   "moved_s": {"lax": 2e-3, "per_group": 1e-3, "taps": 3e-3}}}}
    line = contexts.line(record, "forward")
    assert "s=2 g=4" in line
    assert ("taps/textbook 0.25 as given, 1.50 moved; per group/textbook 0.50 as given, "
            "0.50 moved; textbook 4 ms") in line


def test_main_times_every_map_in_both_contexts_and_records_autos_choice(
        tmp_path, monkeypatch, capsys):
    x, w = (2, 2, 16), (16, 2, 3)
    monkeypatch.setattr(contexts, "draw", lambda ndim, count, seed, family: [(x, w, 1)])
    assert contexts.main(["--count", "1", "--out", str(tmp_path), "--name", "t"]) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    (record,) = doc["records"]
    spec = ConvSpec((1,), ((1, 1),), (1,), 1, "auto")
    auto = _plan.plan(spec, x, w, (2, 16, 16), jnp.float32, backend="cpu")
    assert record["auto"]["input_grad"] == [auto.input_grad.formulation,
                                            auto.input_grad.reason]
    for kind in ("forward", "input_grad", "weight_grad"):
        part = record["maps"][kind]
        assert set(part["times_s"]) == set(part["moved_s"])
        assert all(t > 0 for t in (*part["times_s"].values(), *part["moved_s"].values()))
    assert {"transpose", "taps"} <= set(record["maps"]["input_grad"]["times_s"])
    assert "taps/textbook" in capsys.readouterr().out


def test_a_grouped_strided_record_has_autos_choice_for_its_output_shape(tmp_path):
    x, w = (1, 8, 5, 5, 5), (4, 2, 3, 3, 3)        # 4 groups of 2 -> 1, stride 2
    record = contexts.measure(x, w, 2)
    assert (record["stride"], record["groups"]) == (2, 4)
    spec = ConvSpec((2,) * 3, ((1, 1),) * 3, (1,) * 3, 4, "auto")
    auto = _plan.plan(spec, x, w, (1, 4, 3, 3, 3), jnp.float32, backend="cpu")
    assert record["auto"]["weight_grad"] == [auto.weight_grad.formulation,
                                             auto.weight_grad.reason]
    assert "transpose" in record["maps"]["weight_grad"]["times_s"]


def test_families_of_1d_and_2d_shapes_refuse_3d_before_timing_anything():
    for family in ("dense", "dense-few-out", "dense-strided", "dense-stride34"):
        with pytest.raises(SystemExit, match=f"--family {family} draws 1-D and 2-D"):
            contexts.main(["--family", family, "--ndim", "3"])
