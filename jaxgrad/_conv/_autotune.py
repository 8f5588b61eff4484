"""``algorithm="autotune"``: each formulation timed on this device; a faster one kept.

The first time a convolution configuration is traced with "autotune", every
formulation that ``_plan.candidates`` lists for its forward, its input
gradient and its weight gradient is compiled as a standalone jitted function
of that one map (``_core.forward``, ``input_grad_by``, ``weight_grad_by``) on
concrete random arrays of the traced shapes and dtype, on the first device of
the backend, and timed in two contexts (``CONTEXTS``):

  "given"   the activations (x, g, and the map's result) laid out as the
            convolution's dimension numbers say (NCHW for PyTorch's), as
            where the neighbouring ops produce and read them that way;
  "moved"   the same arrays stored with the feature dimension moved (to the
            last axis; to axis 1 where it is already last), the timed
            program moving them into place and its result back, as between
            two of XLA's convolutions, which run channels-last on CPU and
            whose layout transposes cancel there but not around taps or
            im2col (docs/performance.md, "Isolated timings and networks").

One warm-up call each, then up to ``REPEATS`` interleaved rounds (every
program once per round, each call blocking on its result; after the first,
a formulation that took ``PRUNE`` times the textbook one's time in either
context is timed no more: it is all but sure to lose, and its one round
counts as its median). A formulation
other than the textbook one (the first candidate: what ``jax.grad`` runs) is
chosen only where, in *both* contexts, the median over rounds of its time
divided by the textbook one's in the same round is at most ``1 - MARGIN``;
of those, the one with the smallest larger ratio wins. A timing alone cannot
know which context a network gives a layer, so a formulation that wins in
one and loses in the other keeps the textbook rule, and a tie (within
``MARGIN``: noise, and the bias of timing one map alone) goes to it too.

Once the configuration's budget (``JAXGRAD_AUTOTUNE_BUDGET_S`` seconds,
default ``DEFAULT_BUDGET_S``, counted from the start of its tuning,
compilation included) is spent no further round starts, but every program
is always compiled, warmed up and timed at least once. The timing runs at
trace time, outside the user's trace (``jax.ensure_compile_time_eval``), so
it works the same under ``jit``, ``vmap``, ``checkpoint`` and any order of
``grad``; the key holds the shapes the rule sees there (under ``vmap``, the
per-example ones).

Key: backend, device kind, dtype, the full shapes of x and w (in their
layouts), and every field of the ``ConvSpec`` but its algorithm (the output
shape follows from these). The winners are kept

  in memory   for the process (:func:`clear_cache` forgets them), and
  on disk     in one JSON file per (jax, jaxlib) version pair, backend and
              device kind, in :func:`cache_dir`: ``$JAXGRAD_CACHE_DIR``, else
              ``$XDG_CACHE_HOME/jaxgrad``, else ``~/.cache/jaxgrad``.

so later traces and later processes reuse them without timing. The file is
rewritten atomically (a temporary file, then ``os.replace``) under an
exclusive lock on a sibling ``.lock`` file, merged with what is on disk at
that moment, so concurrent writers keep each other's entries. A file that is
not valid JSON, has an unexpected structure, or was written by another
format or version of jax, jaxlib or jaxgrad (stale) is ignored with a warning and
replaced on the next write; a cache directory that cannot be written warns
and leaves the plans in memory only. Every tuned configuration is logged
(logger ``"jaxgrad.autotune"``, level INFO) with every candidate's time.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import pathlib
import re
import tempfile
import threading
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from . import _plan
from ._plan import MAPS, Choice, Plan
from ._spec import ConvSpec

FORMAT = 2              # 2: times in both contexts, the margin rule
DEFAULT_BUDGET_S = 2.0
REPEATS = 7
MARGIN = 0.05           # a non-textbook formulation must save 5% in both contexts
CONTEXTS = ("given", "moved")
PRUNE = 3.0             # after the first round, slower than this ratio: no more rounds

logger = logging.getLogger("jaxgrad.autotune")

_lock = threading.RLock()          # the in-memory cache, and one tuning at a time
_memory: dict[str, dict] = {}      # configuration key -> entry (see _tune)

# One timing clock; tests replace it, or replace _time_call altogether.
_clock = time.perf_counter


def clear_cache() -> None:
    """Forget every configuration tuned or read in this process (the disk cache stays)."""
    with _lock:
        _memory.clear()


def cache_dir() -> pathlib.Path:
    """``$JAXGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxgrad``, else ``~/.cache/jaxgrad``."""
    if os.environ.get("JAXGRAD_CACHE_DIR"):
        return pathlib.Path(os.environ["JAXGRAD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jaxgrad"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "device"


def _versions() -> dict:
    import jaxlib

    import jaxgrad     # fully imported by the time anything is tuned
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "jaxgrad": jaxgrad.__version__}


def _header(backend: str, device_kind: str) -> dict:
    return {"format": FORMAT, **_versions(), "backend": backend, "device_kind": device_kind}


def cache_file(backend: str, device_kind: str) -> pathlib.Path:
    """The JSON file holding the plans of one backend and device kind."""
    v = _versions()
    return cache_dir() / (f"conv-plans-{_slug(backend)}-{_slug(device_kind)}"
                          f"-jax{v['jax']}-jaxlib{v['jaxlib']}.json")


def budget_s() -> float:
    """Seconds per configuration: ``$JAXGRAD_AUTOTUNE_BUDGET_S`` or the default."""
    text = os.environ.get("JAXGRAD_AUTOTUNE_BUDGET_S")
    if not text:
        return DEFAULT_BUDGET_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        warnings.warn(f"jaxgrad autotune: JAXGRAD_AUTOTUNE_BUDGET_S must be a number of "
                      f"seconds >= 0, got {text!r}; using {DEFAULT_BUDGET_S}", stacklevel=2)
        return DEFAULT_BUDGET_S
    return value


def config_key(backend: str, device_kind: str, dtype, x_shape, w_shape,
               spec: ConvSpec) -> str:
    """The configuration as canonical JSON: everything that decides the timings."""
    numbers = spec.numbers
    fields = {
        "backend": backend, "device_kind": device_kind, "dtype": jnp.dtype(dtype).name,
        "x": list(x_shape), "w": list(w_shape), "stride": list(spec.stride),
        "padding": [list(p) for p in spec.padding], "dilation": list(spec.dilation),
        "groups": spec.groups, "lhs_dilation": list(spec.input_dilation),
        "batch_groups": spec.batch_groups,
        "numbers": None if numbers is None else [list(d) for d in numbers],
        "precision": [getattr(p, "name", str(p)) for p in spec.precision],
        "preferred": (None if spec.preferred_element_type is None
                      else jnp.dtype(spec.preferred_element_type).name)}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------
# The one entry point: the plan of a configuration, tuned if need be.


def tuned_plan(spec: ConvSpec, x_shape, w_shape, dtype, backend: str | None = None) -> Plan:
    """The measured plan of ``conv_core`` on (x_shape, w_shape) in ``dtype``.

    From memory, else from the disk cache, else timed now (and then stored
    in both). ``spec`` must be unplaced (``_plan.autotune_fallback``).
    """
    backend = backend or jax.default_backend()
    device = jax.devices(backend)[0]
    key = config_key(backend, device.device_kind, dtype, x_shape, w_shape, spec)
    with _lock:
        entry = _memory.get(key)
        if entry is None:
            path = cache_file(backend, device.device_kind)
            header = _header(backend, device.device_kind)
            entry = _read(path, header).get(key)
            if not _usable(entry, spec, x_shape, w_shape, dtype, backend):
                entry = _tune(spec, tuple(x_shape), tuple(w_shape), dtype, backend, device)
                _log(key, entry)
                _write(path, header, {key: entry})
            _memory[key] = entry
    return _as_plan(entry)


def _as_plan(entry: dict) -> Plan:
    return Plan(*(Choice(entry[kind]["choice"], "autotuned: " + _times(entry[kind]))
                  for kind in MAPS))


def _times(part: dict) -> str:
    """A map's candidates, fastest first (as given): "name given-ms, moved-ms"."""
    given, moved = part["times_s"], part["moved_s"]
    if not given:
        return "the only candidate"
    return "; ".join(f"{name} {_ms(t)}, moved {_ms(moved[name])}" for name, t in
                     sorted(given.items(), key=lambda item: item[1]))


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _usable(entry, spec: ConvSpec, x_shape, w_shape, dtype, backend: str) -> bool:
    """An entry read from disk names, for every map, one of today's candidates,
    with a time in both contexts for each candidate it timed."""
    if not isinstance(entry, dict):
        return False
    g_shape = _output_shape(spec, x_shape, w_shape, dtype)[0]
    for kind in MAPS:
        part = entry.get(kind)
        names = _plan.candidates(kind, spec, x_shape, w_shape, g_shape, dtype, backend)
        if not (isinstance(part, dict) and part.get("choice") in names
                and all(isinstance(part.get(t), dict)
                        and all(isinstance(v, (int, float)) for v in part[t].values())
                        for t in ("times_s", "moved_s"))
                and set(part["times_s"]) == set(part["moved_s"])):
            return False
    return True


def _log(key: str, entry: dict) -> None:
    logger.info("autotuned %s: %s", key, "; ".join(
        f"{kind} {entry[kind]['choice']} ({_times(entry[kind])})" for kind in MAPS))


# --------------------------------------------------------------------------
# Timing.


def _output_shape(spec: ConvSpec, x_shape, w_shape, dtype):
    from . import _core
    out = jax.eval_shape(functools.partial(_core.forward, spec=spec, formulation="lax"),
                         jax.ShapeDtypeStruct(tuple(x_shape), dtype),
                         jax.ShapeDtypeStruct(tuple(w_shape), dtype))
    return out.shape, out.dtype


def _random(shape, dtype, seed: int, device):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        values = values + 1j * rng.standard_normal(shape)
    return jax.device_put(values.astype(jnp.dtype(dtype)), device)


def _time_call(kind: str, formulation: str, context: str, call) -> float:
    """Seconds of one ``call()`` of ``formulation`` of map ``kind`` in
    ``context`` (one of :data:`CONTEXTS`), to its result."""
    start = _clock()
    jax.block_until_ready(call())
    return _clock() - start


def _compiled(fn, args):
    """A call of ``fn(*args)`` that compiles on first use."""
    compiled = []

    def call():
        if not compiled:
            compiled.append(jax.jit(fn).lower(*args).compile())
        return compiled[0](*args)
    return call


def _to_moved(a, axis: int):
    """``a`` with its feature axis ``axis`` where the "moved" context keeps it:
    last, or at 1 if it is last."""
    return jnp.moveaxis(a, axis, 1 if axis == a.ndim - 1 else a.ndim - 1)


def _from_moved(a, axis: int):
    """The inverse of :func:`_to_moved`."""
    return jnp.moveaxis(a, 1 if axis == a.ndim - 1 else a.ndim - 1, axis)


def _moved(fn, in_axes, out_axis):
    """``fn`` taking its arguments with the feature axes ``in_axes`` (None:
    not an activation, as given) moved, and returning its result so moved
    (``out_axis`` None: as it comes)."""
    def moved_fn(*args):
        out = fn(*(a if ax is None else _from_moved(a, ax) for a, ax in zip(args, in_axes)))
        return out if out_axis is None else _to_moved(out, out_axis)
    return moved_fn


def _time_map(kind: str, names, make, args, in_axes, out_axis,
              deadline: float) -> dict[tuple[str, str], list[float]]:
    """{(context, formulation): seconds of each round}: warm-up, then rounds."""
    moved_args = tuple(a if ax is None else _to_moved(a, ax) for a, ax in zip(args, in_axes))
    calls = {}
    for context, context_args in zip(CONTEXTS, (args, moved_args)):
        for name in names:
            fn = make(name) if context == "given" else _moved(make(name), in_axes, out_axis)
            calls[context, name] = _compiled(fn, context_args)
    for (context, name), call in calls.items():
        _time_call(kind, name, context, call)       # compiles, and warms up
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    for round_ in range(REPEATS):
        if round_ and _clock() > deadline:
            break
        for (context, name), call in calls.items():
            samples[context, name].append(_time_call(kind, name, context, call))
        if not round_:    # one sample decides, so PRUNE is wide
            for name in names[1:]:
                if any(samples[c, name][0] >= PRUNE * samples[c, names[0]][0]
                       for c in CONTEXTS):
                    for c in CONTEXTS:
                        del calls[c, name]
    return samples


def _elect(names, samples: dict[tuple[str, str], list[float]]) -> str:
    """The formulation of ``names`` (the textbook one first) that ``samples``
    (see :func:`_time_map`) elect: the textbook one, unless another's median
    per-round time ratio to it is at most ``1 - MARGIN`` in every context
    (then the one whose larger ratio is smallest)."""
    reference, worst = names[0], {}
    for name in names[1:]:
        worst[name] = max(float(np.median(np.divide(  # the rounds both ran (PRUNE)
            samples[context, name], samples[context, reference][:len(samples[context, name])])))
            for context in CONTEXTS)
    best = min(worst, key=worst.get, default=None)
    return best if best is not None and worst[best] <= 1 - MARGIN else reference


def _tune(spec: ConvSpec, x_shape, w_shape, dtype, backend: str, device) -> dict:
    """{map: {"choice": formulation, "times_s": {formulation: median seconds as
    given}, "moved_s": {formulation: median seconds moved}}, "tuned_s": s}."""
    from . import _core
    lhs, rhs, out = _plan._layouts(spec)
    in_spatial = tuple(x_shape[i] for i in lhs[2:])
    kernel = tuple(w_shape[i] for i in rhs[2:])
    start = _clock()
    deadline = start + budget_s()
    with jax.ensure_compile_time_eval():   # concrete arrays, outside any trace
        g_shape, g_dtype = _output_shape(spec, x_shape, w_shape, dtype)
        x, w = _random(x_shape, dtype, 0, device), _random(w_shape, dtype, 1, device)
        g = _random(g_shape, g_dtype, 2, device)
        # per map: the kernel of a formulation, its arguments, the feature axes
        # of those that are activations, and of its result if it is one
        maps = {
            "forward": (lambda f: lambda x, w: _core.forward(x, w, spec, f), (x, w),
                        (lhs[1], None), out[1]),
            "input_grad": (lambda f: lambda g, w: _core.input_grad_by(
                g, w, spec, in_spatial, f), (g, w), (out[1], None), lhs[1]),
            "weight_grad": (lambda f: lambda x, g: _core.weight_grad_by(
                x, g, spec, kernel, f), (x, g), (lhs[1], out[1]), None)}
        entry = {}
        for kind in MAPS:
            names = _plan.candidates(kind, spec, x_shape, w_shape, g_shape, dtype, backend)
            if len(names) == 1:
                entry[kind] = {"choice": names[0], "times_s": {}, "moved_s": {}}
                continue
            make, args, in_axes, out_axis = maps[kind]
            samples = _time_map(kind, names, make, args, in_axes, out_axis, deadline)
            entry[kind] = {"choice": _elect(names, samples), **{
                field: {name: float(np.median(samples[context, name])) for name in names}
                for field, context in zip(("times_s", "moved_s"), CONTEXTS)}}
    entry["tuned_s"] = _clock() - start
    return entry


# --------------------------------------------------------------------------
# The disk cache.


def _warn(path: pathlib.Path, why: str) -> None:
    warnings.warn(f"jaxgrad autotune: ignoring the plan cache {path}: {why}; it is "
                  "replaced on the next write", stacklevel=3)


def _problem(doc, header: dict) -> str | None:
    """What is wrong with a parsed cache file; None if nothing."""
    if not isinstance(doc, dict) or not isinstance(doc.get("plans"), dict):
        return "not a plan cache (no 'plans' table)"
    stale = [f"{name} {doc.get(name)!r} (this process: {value!r})"
             for name, value in header.items() if doc.get(name) != value]
    if stale:
        return "stale, written for " + ", ".join(stale)
    return None


def _read(path: pathlib.Path, header: dict, warn: bool = True) -> dict:
    """The plans of the cache file at ``path``; {} if absent, corrupt or stale."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError) as error:
        problem = f"unreadable ({error})"
    else:
        try:
            doc = json.loads(text)
        except ValueError as error:
            problem = f"not valid JSON ({error})"
        else:
            problem = _problem(doc, header)
            if problem is None:
                return doc["plans"]
    if warn:
        _warn(path, problem)
    return {}


@contextlib.contextmanager
def _file_lock(path: pathlib.Path):
    """An exclusive lock on ``<path>.lock`` (POSIX); no lock where fcntl is missing."""
    try:
        import fcntl
    except ImportError:    # Windows: os.replace still keeps the file whole
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: pathlib.Path, header: dict, entries: dict) -> None:
    """Merge ``entries`` into the cache file, atomically; warn if it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path):
            plans = dict(_read(path, header, warn=False))
            plans.update(entries)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                                 suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump({**header, "plans": plans}, out, indent=1, sort_keys=True)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
    except OSError as error:
        warnings.warn(f"jaxgrad autotune: cannot write the plan cache {path} ({error}); "
                      "the tuned plans stay in this process's memory only", stacklevel=3)
