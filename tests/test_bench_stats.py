"""Statistics, the timing protocol, the correctness check and the harness's forwards.

No test here asserts a timing: the protocol is driven by a fake clock.
"""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgrad_bench import (_cases, _chart, _flops, _implementations, _machine,
                           _measure, _report, _stats, _timing)
from jaxgrad_bench._cases import Case, conv, conv_transpose


@pytest.mark.parametrize("module", [_cases, _chart, _flops, _machine, _measure,
                                    _report, _stats, _timing])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("samples,median,minimum", [
    ([5.0], 5.0, 5.0),
    ([3.0, 1.0, 2.0], 2.0, 1.0),
    ([4.0, 1.0, 3.0, 100.0], 3.5, 1.0),  # one preempted run barely moves the median
    ([0.2, 0.2, 0.1, 0.3, 0.2], 0.2, 0.1),
])
def test_summarize(samples, median, minimum):
    assert _stats.summarize(samples) == _stats.Summary(median, minimum, len(samples))


def test_summarize_rejects_no_samples():
    with pytest.raises(ValueError, match="non-empty"):
        _stats.summarize([])


def test_gflops_and_ratio():
    assert _stats.gflops(236_027_904, 0.002) == pytest.approx(118.013952)
    assert _stats.ratio(3.0, 1.5) == 2.0
    assert _stats.ratio(None, 1.0) is None and _stats.ratio(1.0, None) is None


class FakeClock:
    """Advances by 1 s per reading, so each timed call lasts exactly 1 s."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_time_interleaved_warms_up_then_runs_rounds_in_varying_orders():
    log = []
    calls = {k: (lambda k=k: log.append(k)) for k in ("a", "b", "c")}
    samples = _timing.time_interleaved(calls, warmup=2, repeats=30, clock=FakeClock(),
                                       settle=lambda: log.append("."))
    assert log[:6] == ["a", "b", "c", "a", "b", "c"]  # warm-up, untimed
    timed = "".join(log[6:])
    rounds = [timed[i:i + 6] for i in range(0, len(timed), 6)]
    assert all(sorted(r[1::2]) == ["a", "b", "c"] and r[::2] == "..." for r in rounds)
    # Every call follows each of the others at some point, not always the same one.
    pairs = {(r[i], r[i + 2]) for r in rounds for i in (1, 3)}
    assert pairs == {(p, q) for p in "abc" for q in "abc" if p != q}
    assert samples == {k: [1.0] * 30 for k in "abc"}


def test_time_interleaved_turns_gc_off_only_while_timing():
    import gc
    seen = []
    _timing.time_interleaved({"a": lambda: seen.append(gc.isenabled())},
                             warmup=1, repeats=2, clock=FakeClock(),
                             settle=lambda: None)
    assert seen == [True, False, False] and gc.isenabled()


def test_protocol_defaults():
    assert _timing.MIN_REPEATS >= 10 and _timing.WARMUP >= 1


def test_compare_and_agreeing():
    ref = {"output": np.array([1.0, -2.0]), "grad_input": np.array([4.0, 0.0])}
    near = {k: v * (1 + 1e-7) for k, v in ref.items()}
    off = dict(ref, grad_input=np.array([4.0, 0.4]))  # 10% of max |grad_input|
    errors = _measure.compare({"torch": ref, "jaxgrad": near, "autodiff": off})
    assert list(errors) == ["jaxgrad_vs_autodiff", "jaxgrad_vs_torch",
                            "autodiff_vs_torch"]
    assert errors["autodiff_vs_torch"]["grad_input"] == pytest.approx(0.1)
    assert errors["jaxgrad_vs_torch"]["output"] == pytest.approx(1e-7)
    verdict = _measure.agreeing(errors, ["jaxgrad", "autodiff", "torch"], 1e-5)
    assert verdict == {"jaxgrad": True, "autodiff": False, "torch": True}
    # Two implementations that disagree: neither can be trusted.
    two = _measure.compare({"jaxgrad": near, "autodiff": off})
    assert _measure.agreeing(two, ["jaxgrad", "autodiff"], 1e-5) == \
        {"jaxgrad": False, "autodiff": False}


def test_inputs_are_seeded_by_case_name_and_cast_once():
    case = Case("c", "", (2, 3, 8), (conv((4, 3, 3)), conv((2, 4, 1))))
    x, weights, cot = _measure.make_inputs(case, "bfloat16", 0)
    again = _measure.make_inputs(case, "bfloat16", 0)
    other = _measure.make_inputs(Case("d", "", case.input, case.layers), "bfloat16", 0)
    assert x.dtype == jnp.bfloat16 and cot.shape == case.output == (2, 2, 6)
    assert [w.shape for w in weights] == [(4, 3, 3), (2, 4, 1)]
    assert np.array_equal(x, again[0]) and not np.array_equal(x, other[0])


_SMALL_CASES = (
    Case("grouped dilated strided conv", "", (2, 4, 9, 8),
         (conv((6, 2, 3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1),
               groups=2),)),
    Case("grouped transposed, output_padding, dilation", "", (2, 4, 5, 4),
         (conv_transpose((4, 3, 3, 2), stride=(2, 3), padding=1,
                         output_padding=(1, 2), groups=2, dilation=(1, 2)),)),
    Case("1-D stack", "", (1, 2, 12), (conv((3, 2, 2), dilation=2),
                                       conv((2, 3, 2), dilation=4))),
)


@pytest.mark.parametrize("case", _SMALL_CASES, ids=lambda c: c.name)
def test_jaxgrad_and_plain_lax_forwards_agree_with_their_gradients(case):
    # The harness's lax forward is independent code (the transposed one is a
    # convolution of the stride-dilated input with the flipped, channel-swapped
    # kernel); in float64 both must give the same values and VJPs.
    x, weights, cot = (jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), t)
                       for t in _measure.make_inputs(case, "float32", 0))
    results = {}
    for name in ("jaxgrad", "autodiff"):
        y, vjp = jax.vjp(_implementations.forward(name, case), x, weights)
        assert y.shape == case.output
        gx, gw = vjp(cot)
        results[name] = [y, gx, *gw]
    for ours, plain in zip(*results.values()):
        np.testing.assert_allclose(ours, plain, rtol=1e-10, atol=1e-10)
