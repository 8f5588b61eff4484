"""Summary statistics of timing samples (pure Python)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Summary:
    """Median and minimum of ``count`` samples, in seconds."""

    median: float
    min: float
    count: int


def summarize(samples: Sequence[float]) -> Summary:
    """The median and minimum of a non-empty list of samples.

    The median is robust to the occasional preempted run; the minimum is the
    closest to the machine's undisturbed speed. Both are reported.

    >>> summarize([3.0, 1.0, 2.0, 10.0])
    Summary(median=2.5, min=1.0, count=4)
    """
    if not samples:
        raise ValueError("summarize: `samples` must be non-empty")
    return Summary(statistics.median(samples), min(samples), len(samples))


def gflops(flops: int, seconds: float) -> float:
    """Achieved GFLOP/s.

    >>> gflops(3_000_000_000, 0.5)
    6.0
    """
    return flops / seconds / 1e9


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing.

    >>> ratio(1.0, 4.0), ratio(None, 4.0)
    (0.25, None)
    """
    if numerator is None or denominator is None:
        return None
    return numerator / denominator
