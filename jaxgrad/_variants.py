"""One generator for the rank variants: ``conv`` and ``conv1d/2d/3d``, and so on.

Each op family writes one N-d implementation ``impl(fn, n, *args)`` -- ``fn``
the public name its errors show, ``n`` the spatial rank or None to take it
from the weight -- and declares its public variants with :func:`variants`.
:func:`define` turns each declaration into a real function, compiled from
source: a ``def`` with the torch-style signature (names, defaults, kinds and
annotations, copied from ``impl`` without ``fn, n``) whose body is one call

    def conv2d(input: ArrayLike, ..., *, precision: Precision = None) -> Array:
        return _conv_ops.conv_nd('conv2d', 2, input=input, ..., precision=precision)

so ``help()``, ``inspect.signature``, argument errors ("conv2d() got an
unexpected keyword argument") and pickling all see the public function.

Static analysers cannot run this, so the module that holds the variants,
``_ranked``, ships a stub rendered from the same declarations by ``_stubgen``
(``python -m jaxgrad._stubgen``; ``tests/test_variants.py`` fails when the
committed stub is stale).
"""

from __future__ import annotations

import __future__
import dataclasses
import inspect
import linecache
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType

_WIDTH = 88
_EMPTY: Mapping = MappingProxyType({})
_LITERALS = (type(None), bool, int, float, str)


def rank_name(pattern: str, n: int | None) -> str:
    """The public name of rank ``n``: "conv{d}" -> "conv" (None), "conv2d" (2)."""
    return pattern.format(d="" if n is None else f"{n}d")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One public function: ``impl(name, n, *args)`` with the name and rank fixed.

    Attributes:
      name: the public name, also the one the errors show.
      impl: the N-d implementation, ``impl(fn, n, *args)``, annotated with
        strings (``from __future__ import annotations``).
      n: the spatial rank, or None for the rank-generic function.
      doc: the docstring, indented as in a function body.
      omit: parameters of ``impl`` the variant leaves at their default.
      retype: annotations that differ from ``impl``'s, by parameter name.
    """

    name: str
    impl: Callable
    n: int | None
    doc: str
    omit: tuple[str, ...] = ()
    retype: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        params = inspect.signature(self.impl).parameters
        names = list(params)
        if names[:2] != ["fn", "n"]:
            raise TypeError(f"{self.name}: the implementation {self.impl.__qualname__} "
                            f"must take (fn, n, ...) first, got {tuple(names[:2])}")
        unknown = (set(self.omit) | set(self.retype)) - set(names[2:])
        if unknown:
            raise TypeError(f"{self.name}: {self.impl.__qualname__} has no parameter "
                            f"{', '.join(sorted(unknown))}")
        required = [name for name in self.omit if params[name].default is params[name].empty]
        if required:
            raise TypeError(f"{self.name}: cannot omit {', '.join(required)}, which "
                            f"{self.impl.__qualname__} has no default for")

    def signature(self) -> inspect.Signature:
        """The public signature: ``impl``'s without ``fn, n`` and the omitted ones."""
        sig = inspect.signature(self.impl)
        params = [p.replace(annotation=self.retype.get(p.name, p.annotation))
                  for p in list(sig.parameters.values())[2:] if p.name not in self.omit]
        return sig.replace(parameters=params)


def variants(impl: Callable, pattern: str, docs: Mapping[int | None, str], *,
             omit: Mapping[int | None, tuple[str, ...]] = _EMPTY,
             retype: Mapping[int | None, Mapping[str, str]] = _EMPTY
             ) -> tuple[Variant, ...]:
    """One :class:`Variant` of ``impl`` per rank in ``docs``, named by ``pattern``.

    ``omit`` and ``retype`` give, per rank, the parameters that rank leaves out
    or annotates differently (torch's ``avg_pool1d`` has no ``divisor_override``).
    """
    return tuple(Variant(rank_name(pattern, n), impl, n, doc, omit.get(n, ()),
                         dict(retype.get(n, {}))) for n, doc in docs.items())


# --------------------------------------------------------------------------
# Rendering: the same ``def`` line serves the compiled function and the stub.


def _literal(value) -> str:
    if type(value) not in _LITERALS:
        raise TypeError(f"a default must be None, a bool, a number or a string, got "
                        f"{value!r}")
    plain = isinstance(value, str) and not set(value) & set("\"\\\n")
    return f'"{value}"' if plain else repr(value)


def _parameter(p: inspect.Parameter) -> str:
    if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
        raise TypeError(f"parameter {p.name}: only plain and keyword-only parameters "
                        f"can be rendered, got {p.kind.description}")
    if not isinstance(p.annotation, str):
        raise TypeError(f"parameter {p.name}: the annotation must be a string, got "
                        f"{p.annotation!r}")
    text = f"{p.name}: {p.annotation}"
    return text if p.default is p.empty else f"{text} = {_literal(p.default)}"


def _wrap(opening: str, parts: list[str], closing: str, indent: str = "") -> str:
    """``opening + ", ".join(parts) + closing``, wrapped at the open parenthesis."""
    lines, line = [], indent + opening
    for i, part in enumerate(parts):
        piece = part + (closing if i == len(parts) - 1 else ",")
        if i and len(line) + 1 + len(piece) > _WIDTH:
            lines.append(line)
            line = indent + " " * len(opening) + piece
        else:
            line += (" " if i else "") + piece
    return "\n".join(lines + [line if parts else line + closing])


def def_line(name: str, sig: inspect.Signature) -> str:
    """``def name(...) -> ...:`` for ``sig``, whose annotations are strings."""
    parts = []
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        parts.append(_parameter(p))
    if not isinstance(sig.return_annotation, str):
        raise TypeError(f"{name}: the return annotation must be a string, got "
                        f"{sig.return_annotation!r}")
    return _wrap(f"def {name}(", parts, f") -> {sig.return_annotation}:")


def source(variant: Variant) -> str:
    """The variant's source: its ``def`` line and one call of the implementation."""
    sig = variant.signature()
    impl = variant.impl
    arguments = [_literal(variant.name), _literal(variant.n)]
    arguments += [f"{name}={name}" for name in sig.parameters]
    call = _wrap(f"return {_module_alias(impl)}.{impl.__name__}(", arguments, ")",
                 indent="    ")
    return f"{def_line(variant.name, sig)}\n{call}\n"


def _module_alias(impl: Callable) -> str:
    """``jaxgrad._conv._ops`` -> ``_conv_ops``: the module's path below the package."""
    return "".join(impl.__module__.split(".")[1:])


def define(namespace: dict, declared: tuple[Variant, ...]) -> None:
    """Compile each variant into ``namespace`` (a module's globals).

    The implementations are called through their modules (``_conv_ops.conv_nd``),
    which are bound in ``namespace`` under their short names.
    """
    flags = __future__.annotations.compiler_flag   # string annotations, as the library
    for variant in declared:
        module = sys.modules[variant.impl.__module__]
        if getattr(module, variant.impl.__name__, None) is not variant.impl:
            raise TypeError(f"{variant.name}: {variant.impl.__qualname__} must be a "
                            f"module-level function of {module.__name__}")
        if namespace.setdefault(_module_alias(variant.impl), module) is not module:
            raise TypeError(f"{variant.name}: {_module_alias(variant.impl)} is bound "
                            f"to something other than {module.__name__}")
        text = source(variant)
        filename = f"<jaxgrad._variants: {namespace['__name__']}.{variant.name}>"
        # Registered so that tracebacks and inspect.getsource show the code.
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        exec(compile(text, filename, "exec", flags=flags, dont_inherit=True), namespace)
        namespace[variant.name].__doc__ = variant.doc
