"""``python -m jaxgrad_bench.flips``: a step with each of auto's choices flipped."""

import json

import pytest

from jaxgrad_bench import flips


def test_each_non_native_choice_is_flipped_once_and_the_step_is_unchanged(tmp_path, capsys):
    # a 3x3 stem, then a depthwise 3x3 (auto's forward: taps, not lax) and a
    # 1x1: every kind of map has a choice to flip
    net = {"batch": 2, "size": 8, "layers": [[8, 3, 3, 1, 1, 1], [8, 8, 3, 1, 1, 8],
                                             [4, 8, 1, 1, 1, 1]]}
    assert flips.main(["--net", json.dumps(net), "--repeats", "1", "--out", str(tmp_path),
                       "--name", "f"]) == 0
    doc = json.loads((tmp_path / "f.json").read_text())
    non_native = {name for name, (formulation, _) in doc["auto_choices"].items()
                  if formulation not in ("lax", "transpose")}
    assert non_native and any(name.startswith("forward") for name in non_native)
    flipped = {name.removeprefix("flip ") for name in doc["median_ms"]
               if name.startswith("flip ")}
    assert flipped == non_native
    assert {"auto", "transpose", "jax.grad"} <= set(doc["median_ms"])
    assert all(t > 0 for t in doc["median_ms"].values())
    # the same sums in another order: float32 rounding, not a different step
    assert set(doc["max_rel_difference_from_auto"]) == {f"flip {n}" for n in non_native}
    assert all(d <= flips.TOLERANCE for d in doc["max_rel_difference_from_auto"].values())
    assert doc["wrong"] == []
    assert "x auto  transpose" in capsys.readouterr().out


def test_flipping_restores_the_rules_afterwards():
    from jaxgrad._conv import _core, _plan
    before = (_plan.gradient_choice, _plan.forward_choice, _core.forward_choice)
    with flips.flipped(("forward", ((1, 2, 3, 3), (2, 1, 3, 3)))):
        assert _plan.forward_choice is not before[1]
        assert _core.forward_choice is _plan.forward_choice
    assert (_plan.gradient_choice, _plan.forward_choice, _core.forward_choice) == before


@pytest.mark.parametrize("text, words", [
    ("not json", "--net must be JSON with batch, size and layers"),
    ('{"batch": 2, "size": 8}', "--net must be JSON with batch, size and layers"),
    ('{"batch": 2, "size": 8, "layers": [[8, 3, 3]]}',
     "--net layers must each be [C_out, C_in, K, stride, dilation, groups]"),
])
def test_a_bad_net_is_refused_before_anything_is_timed(text, words):
    with pytest.raises(SystemExit, match=words.replace("[", r"\[").replace("]", r"\]")):
        flips.main(["--net", text])
