"""``autotune_jit``: a whole jitted function timed under each formulation.

``algorithm="autotune"`` times one map (a forward, an input gradient, a weight
gradient) at a time, on its own. Inside a network XLA lays out the whole
program at once: CPU convolutions run channels-last, and a map computed by
taps between two XLA convolutions can cost transposing copies that no timing
of that map alone sees (docs/performance.md, "Isolated timings and
networks"). ``autotune_jit`` measures at the level where that shows: it
compiles the caller's function once per candidate default formulation (the
``conv_algorithm`` in force while it is traced), runs each on the caller's
own arguments, interleaved, and keeps the fastest for that argument
signature. With "transpose" among the candidates the textbook rules -- the
program ``jax.grad`` of plain ``lax`` convolutions builds -- are always one
of the programs timed.

Every candidate computes the same sums (``_conv._core``); what differs is
the program. The choice lives in memory, per ``AutotunedFunction`` and
argument signature (not on disk: a whole program has no configuration key
that another process could trust).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from ._algorithms import ALGORITHMS, _checked, default_set_to

logger = logging.getLogger("jaxgrad.autotune")

# One clock; tests replace it, or _measure altogether.
_clock = time.perf_counter


@dataclasses.dataclass(frozen=True)
class TuningRecord:
    """What ``autotune_jit`` measured for one argument signature.

    Attributes:
      signature: the arguments' shapes and dtypes (and static values), as text.
      algorithm: the formulation kept (the fastest median).
      median_s: each candidate's median time per call, in seconds.
      compile_s: each candidate's first call (trace, compile, run), in seconds.
    """

    signature: str
    algorithm: str
    median_s: dict[str, float]
    compile_s: dict[str, float]


class AutotunedFunction:
    """A function jitted once per candidate formulation; each argument
    signature runs the one measured fastest (see :func:`autotune_jit`).

    Attributes:
      algorithms: the candidates, in the order given.
      repeats: timed calls per candidate.
      records: one :class:`TuningRecord` per argument signature tuned so far.
    """

    def __init__(self, fn: Callable, algorithms: tuple[str, ...], repeats: int,
                 static_argnums: tuple[int, ...], static_argnames: tuple[str, ...]):
        self.algorithms = algorithms
        self.repeats = repeats
        self._fn = fn
        self._static_argnums = static_argnums
        self._static_argnames = static_argnames
        # One new function object per candidate, each with its own jit cache.
        # (The default formulation is in jax.jit's key, _algorithms._default,
        # so one function would also be traced once per candidate.)
        try:
            self._jitted = {a: jax.jit(_fresh(fn), static_argnums=static_argnums,
                                       static_argnames=static_argnames) for a in algorithms}
        except (TypeError, ValueError) as e:    # jax.jit's checks of the static arguments
            raise type(e)(f"autotune_jit: {e}") from e
        self._chosen: dict[Any, TuningRecord] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn, updated=())

    @property
    def records(self) -> list[TuningRecord]:
        """The signatures tuned so far, oldest first."""
        return list(self._chosen.values())

    def __call__(self, *args, **kwargs):
        """``fn(*args, **kwargs)``, compiled under the formulation measured
        fastest for these arguments' shapes, dtypes and static values (timed
        on the first call with them).

        Args:
          *args: ``fn``'s positional arguments.
          **kwargs: ``fn``'s keyword arguments.

        Returns:
          What ``fn`` returns.
        """
        key, leaves, traced = self._key(args, kwargs)
        try:
            record = self._chosen.get(key)
        except TypeError:
            raise TypeError(f"autotune_jit: static arguments must be hashable, as for "
                            f"jax.jit; got {key[2] + key[3]!r}") from None
        if record is None and not traced:
            with self._lock:
                record = self._chosen.get(key)
                if record is None:
                    record = self._tune(_signature(key, leaves), args, kwargs)
                    self._chosen[key] = record
        # Under an outer transformation (jit, vmap, grad) the arguments are
        # tracers and nothing can be timed: a signature tuned before keeps
        # its choice, any other runs the first candidate.
        algorithm = record.algorithm if record is not None else self.algorithms[0]
        return self._run(algorithm, args, kwargs)

    def _run(self, algorithm: str, args, kwargs):
        # conv_algorithm(algorithm) without its checks: this is every call's path
        with default_set_to(algorithm):
            return self._jitted[algorithm](*args, **kwargs)

    def _key(self, args, kwargs):
        """(hashable key, the dynamic leaves, whether any of them is traced).

        The key holds the argument tree, each dynamic leaf's shape, dtype
        and weak type, and the static values: the same for a concrete array
        and for a tracer of it (under an outer jit), so that a choice made
        outside holds inside. Shardings are not in it (one choice per shape)."""
        static_args = static_kwargs = ()
        if self._static_argnums or self._static_argnames:
            statics = {i + len(args) if i < 0 else i for i in self._static_argnums
                       if -len(args) <= i < len(args)}
            static_args = tuple((i, args[i]) for i in sorted(statics))
            static_kwargs = tuple(sorted((k, v) for k, v in kwargs.items()
                                         if k in self._static_argnames))
            args = [None if i in statics else a for i, a in enumerate(args)]
            kwargs = {k: v for k, v in kwargs.items() if k not in self._static_argnames}
        leaves, treedef = jax.tree.flatten((args, kwargs))
        traced = False
        types = []
        for leaf in leaves:
            if isinstance(leaf, jax.core.Tracer):
                traced = True
                types.append((leaf.shape, leaf.dtype, leaf.aval.weak_type))
            elif isinstance(leaf, jax.Array):
                types.append((leaf.shape, leaf.dtype, leaf.weak_type))
            else:
                aval = _abstract(leaf)
                types.append((aval.shape, aval.dtype, aval.weak_type)
                             if isinstance(aval, jax.core.ShapedArray) else aval)
        return (treedef, tuple(types), static_args, static_kwargs), leaves, traced

    def _tune(self, signature: str, args, kwargs) -> TuningRecord:
        compile_s = {}
        for algorithm in self.algorithms:
            start = _clock()
            jax.block_until_ready(self._run(algorithm, args, kwargs))
            compile_s[algorithm] = _clock() - start
        median_s = _measure({a: functools.partial(self._run, a, args, kwargs)
                             for a in self.algorithms}, self.repeats)
        best = min(self.algorithms, key=lambda a: median_s[a])   # ties: the first given
        record = TuningRecord(signature, best, median_s, compile_s)
        logger.info("autotune_jit %s(%s): %s -> %s", getattr(self._fn, "__name__", "fn"),
                    signature, ", ".join(f"{a} {median_s[a] * 1e3:.3g} ms (first call "
                                         f"{compile_s[a]:.3g} s)" for a in self.algorithms),
                    best)
        return record


def _fresh(fn: Callable) -> Callable:
    def call(*args, **kwargs):
        return fn(*args, **kwargs)
    return functools.wraps(fn)(call)


def _abstract(leaf):
    """A non-array leaf's abstract value (Python and NumPy scalars, NumPy
    arrays); anything else by its type, which ``jax.jit`` refuses when called."""
    try:
        return jax.typeof(leaf)
    except TypeError:
        return type(leaf)


def _signature(key, leaves) -> str:
    """The key as text: each dynamic leaf's type, then the static values."""
    text = ", ".join(str(leaf.aval if isinstance(leaf, jax.core.Tracer) else _abstract(leaf))
                     for leaf in leaves)
    _, _, static_args, static_kwargs = key
    statics = [f"{i}={v!r}" for i, v in static_args] + [f"{k}={v!r}" for k, v in static_kwargs]
    return text + ("; static " + ", ".join(statics) if statics else "")


def _measure(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each, the calls interleaved round by round
    so that a change of machine load reaches every candidate alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = _clock()
            jax.block_until_ready(call())
            times[name].append(_clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _static_arguments(fn: Callable, argnums: tuple[int, ...],
                      argnames: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Both spellings of the static arguments. As for ``jax.jit``, where only
    one is given the other follows from ``fn``'s signature: a static
    parameter can then be passed by position or by name."""
    if argnums and argnames:
        return argnums, argnames
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):         # no signature: as given
        return argnums, argnames
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if not any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        # a negative position counts from the last positional parameter
        argnums = tuple(i + len(positional) if -len(positional) <= i < 0 else i
                        for i in argnums)
    if argnums:
        argnames = tuple(positional[i].name for i in argnums
                         if -len(positional) <= i < len(positional)
                         and positional[i].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD)
    elif argnames:
        argnums = tuple(i for i, p in enumerate(positional) if p.name in argnames
                        and p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return argnums, argnames


def _argnums(value, name: str) -> tuple:
    element, kind = ((int, "an int or a sequence of ints") if name == "static_argnums"
                     else (str, "a str or a sequence of strs"))
    items = (value,) if isinstance(value, element) and not isinstance(value, bool) else value
    if (isinstance(items, (str, bytes)) or not isinstance(items, Sequence)
            or not all(isinstance(v, element) and not isinstance(v, bool) for v in items)):
        raise TypeError(f"autotune_jit: `{name}` must be {kind}, got {value!r}")
    return tuple(items)


def autotune_jit(fn: Callable, *, algorithms: Sequence[str] = ("auto", "transpose"),
                 repeats: int = 7, static_argnums: int | Sequence[int] = (),
                 static_argnames: str | Sequence[str] = ()) -> AutotunedFunction:
    """``jax.jit(fn)``, compiled under each formulation and timed as a whole.

    The first call with a new argument signature (the argument tree, each
    array's shape and dtype, the static values) traces and compiles ``fn`` once per candidate in
    ``algorithms`` (the default formulation of every jaxgrad convolution
    traced with ``algorithm=None``, as :func:`conv_algorithm` sets it), runs
    each on the given arguments ``repeats`` times, interleaved, and keeps the
    one with the smallest median; that call and later ones with the same
    signature run it. The times go to the ``"jaxgrad.autotune"`` logger (INFO)
    and to ``records``. Unlike ``algorithm="autotune"``, which times each
    convolution map alone, this sees the whole program as XLA lays it out
    (a formulation that wins alone can lose between two XLA convolutions);
    with "transpose" among the candidates, the program ``jax.grad`` of plain
    ``lax`` convolutions builds is one of those timed.

    ``fn`` must be a pure function of its arguments, as for ``jax.jit``: the
    first call runs it ``len(algorithms) * (repeats + 1) + 1`` times; an
    error in any candidate is raised. Called under an outer transformation
    (``jax.jit``, ``jax.vmap``, ``jax.grad``), nothing can be timed: a
    signature tuned before (the tracers' shapes) keeps its choice, another
    runs the first candidate. A ``fn`` wrapped in ``jax.jit`` is unwrapped
    (its jit options are dropped). Calls that pass their own ``algorithm=``
    are not affected. A function that ``fn`` calls through its own
    ``jax.jit`` is traced again under each candidate (the default formulation
    is part of ``jax.jit``'s cache key).

    Args:
      fn: the function to compile, e.g. a training step.
      algorithms: the candidate formulations, names from "auto",
        "transpose", "taps" and "autotune", at least one, no repeats; on a
        tie the earlier one is kept.
      repeats: timed calls per candidate (at least 1); the median is compared.
      static_argnums: as for ``jax.jit``; given alone, the names follow from
        ``fn``'s signature (a static parameter may be passed either way).
      static_argnames: as for ``jax.jit``; given alone, the positions follow.

    Returns:
      A callable with ``fn``'s signature; its ``records`` list what was timed.

    Raises:
      TypeError: ``fn`` is not callable, or an argument has the wrong type.
      ValueError: ``algorithms`` is empty, repeats a name or names an unknown
        formulation, or ``repeats`` is below 1.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad
      >>> x, w = jnp.ones((2, 3, 8, 8), jnp.float32), jnp.ones((4, 3, 3, 3), jnp.float32)
      >>> def step(w, x):
      ...     return jax.grad(lambda w: jaxgrad.conv2d(x, w, padding=1).sum())(w)
      >>> tuned = jaxgrad.autotune_jit(step, repeats=3)
      >>> tuned(w, x)[0, 0]
      Array([[ 98., 112.,  98.],
             [112., 128., 112.],
             [ 98., 112.,  98.]], dtype=float32)
      >>> record = tuned.records[0]
      >>> record.algorithm in ("auto", "transpose"), sorted(record.median_s)
      (True, ['auto', 'transpose'])
    """
    if not callable(fn):
        raise TypeError(f"autotune_jit: `fn` must be callable, got {fn!r} of type "
                        f"{type(fn).__name__}")
    if isinstance(algorithms, str) or not isinstance(algorithms, Sequence):
        raise TypeError(f"autotune_jit: `algorithms` must be a sequence of names from "
                        f"{ALGORITHMS}, got {algorithms!r}")
    names = tuple(algorithms)
    if not names:
        raise ValueError(f"autotune_jit: `algorithms` must name at least one of "
                         f"{ALGORITHMS}, got {algorithms!r}")
    for i, name in enumerate(names):
        _checked("autotune_jit", name, argument=f"algorithms[{i}]")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"autotune_jit: `algorithms` names {repeated} more than once: "
                         f"{algorithms!r}")
    if not isinstance(repeats, int) or isinstance(repeats, bool):
        raise TypeError(f"autotune_jit: `repeats` must be an int, got {repeats!r} of type "
                        f"{type(repeats).__name__}")
    if repeats < 1:
        raise ValueError(f"autotune_jit: `repeats` must be at least 1, got {repeats}")
    if isinstance(fn, AutotunedFunction):
        fn = fn._fn
    elif hasattr(fn, "lower") and hasattr(fn, "__wrapped__"):
        # a jax.jit-wrapped function: its trace would be shared by every
        # candidate, so the function it wraps is compiled instead
        fn = fn.__wrapped__
    argnums, argnames = _static_arguments(fn, _argnums(static_argnums, "static_argnums"),
                                          _argnums(static_argnames, "static_argnames"))
    return AutotunedFunction(fn, names, repeats, argnums, argnames)
