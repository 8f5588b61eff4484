"""The timing protocol, in one place.

Every measurement in the harness goes through :func:`time_interleaved`:

1. Each call is compiled before it gets here (JAX: ``jit(...).lower().compile()``).
2. Warm-up: every call runs ``warmup`` times untimed (caches, allocator pools,
   oneDNN primitive creation, lazy initialisation).
3. ``repeats`` rounds; in each round every call runs once, timed with
   ``time.perf_counter`` around the call, in a random order drawn afresh for
   each round (seeded, so reproducible): the implementations are interleaved,
   and no call always runs right after the same other call (a call's
   predecessor leaves caches and thread pools in its own state).
4. Each call synchronises before returning (``jax.block_until_ready``,
   ``torch.cuda.synchronize``), so the timer covers the work, not its dispatch.
5. Before each timed call the process sleeps ``SETTLE_S`` (untimed). Both
   frameworks' CPU thread pools spin for a while after their work (torch's
   OpenMP for milliseconds); without the pause, the call after a torch call
   shares the cores with spinning threads and runs up to 1.5x slower here.
6. Python's garbage collector is off while timing.

The caller summarises the samples (median and minimum, ``_stats``).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Hashable, Mapping

WARMUP = 2
MIN_REPEATS = 10  # the protocol's minimum; fewer are allowed for smoke runs
SETTLE_S = 0.02


def round_orders(keys: list, repeats: int, seed: int = 0) -> list[list]:
    """The order of the calls in each round: a seeded random permutation of ``keys``.

    >>> orders = round_orders(["a", "b", "c"], 4)
    >>> [sorted(order) for order in orders] == [["a", "b", "c"]] * 4
    True
    >>> orders == round_orders(["a", "b", "c"], 4)
    True
    """
    rng = random.Random(seed)
    return [rng.sample(keys, len(keys)) for _ in range(repeats)]


def time_interleaved(calls: Mapping[Hashable, Callable[[], object]], *,
                     warmup: int = WARMUP, repeats: int = MIN_REPEATS,
                     clock: Callable[[], float] = time.perf_counter,
                     settle: Callable[[], None] = lambda: time.sleep(SETTLE_S),
                     ) -> dict[Hashable, list[float]]:
    """Time every call ``repeats`` times, interleaved, after ``warmup`` runs each.

    Args:
      calls: zero-argument callables that run one computation to completion
        (synchronised).
      warmup: untimed runs of each call first.
      repeats: timed runs of each call.
      clock: a monotonic clock in seconds.
      settle: runs (untimed) before each timed call.

    Returns:
      For every key of ``calls``, its ``repeats`` durations in seconds.
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[Hashable, list[float]] = {key: [] for key in calls}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for order in round_orders(list(calls), repeats):
            for key in order:
                settle()
                start = clock()
                calls[key]()
                samples[key].append(clock() - start)
    finally:
        if was_enabled:
            gc.enable()
    return samples
