"""The public API's hygiene: where each name lives, annotations, docstrings, examples.

Every name in ``jaxgrad.__all__`` and in the ``__all__`` of the public
submodules ``jaxgrad.grad``, ``jaxgrad.interop`` and ``jaxgrad.testing`` is
checked, parametrized by its qualified name:

* it is defined in a private module (``jaxgrad._*``) or is one of the public
  submodules, and no other public name shows in ``dir()`` of a namespace;
* ``typing.get_type_hints`` resolves and covers every parameter and the return
  (for classes: the methods listed in ``CLASS_API``);
* its docstring has Google sections: ``Args:`` naming every parameter,
  ``Returns:`` (``Yields:`` for a context manager), and ``Example:`` /
  ``Examples:`` with ``>>>`` lines (classes: ``Attributes:`` for a
  dataclass's fields, and the example);
* every ``>>>`` example runs and prints what the docstring says.

The examples run with JAX's 64-bit mode off, as in a fresh session (the
test-suite turns it on in ``conftest.py``); an example that needs float64
turns it on itself with ``with jax.enable_x64(True):``.
"""

from __future__ import annotations

import dataclasses
import doctest
import inspect
import re
import typing
from collections.abc import Callable

import jax
import pytest

import jaxgrad

PUBLIC_SUBMODULES = ("jaxgrad.grad", "jaxgrad.interop", "jaxgrad.testing")
NAMESPACES = {
    "jaxgrad": jaxgrad,
    "jaxgrad.grad": jaxgrad.grad,
    "jaxgrad.interop": jaxgrad.interop,
    "jaxgrad.testing": jaxgrad.testing,
}
PUBLIC = {f"{prefix}.{name}": getattr(module, name)
          for prefix, module in NAMESPACES.items() for name in module.__all__}
CALLABLES = {name: obj for name, obj in PUBLIC.items() if not inspect.ismodule(obj)}
FUNCTIONS = {name: obj for name, obj in CALLABLES.items() if not inspect.isclass(obj)}
CLASSES = {name: obj for name, obj in CALLABLES.items() if inspect.isclass(obj)}

# The methods (and properties) of each public class that are API: each must be
# annotated and documented. A new public class must be added here.
CLASS_API = {
    "jaxgrad.Function": ("forward", "backward", "apply"),
    "jaxgrad.FunctionCtx": ("save_for_backward", "mark_non_differentiable",
                            "needs_input_grad", "saved_tensors"),
    "jaxgrad.testing.Report": ("passed", "failures", "raise_if_failed",
                               "__getitem__", "__str__"),
    "jaxgrad.testing.Comparison": (),
    "jaxgrad.BatchNormStats": (),
    "jaxgrad.testing.ModelReport": ("passed", "failures", "first_forward",
                                    "first_gradient", "diagnosis", "parameter",
                                    "layer", "raise_if_failed", "__str__"),
    "jaxgrad.testing.LayerComparison": ("passed",),
}

_SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


# --------------------------------------------------------------------------
# The checkers, plain functions returning a list of problems (empty: fine) so
# that the negative controls at the end can run them on bad objects.


def _parameters(fn: Callable) -> list[inspect.Parameter]:
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params


def hint_problems(fn: Callable) -> list[str]:
    """What ``typing.get_type_hints`` cannot resolve or does not cover."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        return [f"get_type_hints fails: {type(error).__name__}: {error}"]
    missing = [p.name for p in _parameters(fn) if p.name not in hints]
    if "return" not in hints:
        missing.append("return")
    return [f"no annotation for {', '.join(missing)}"] if missing else []


def sections(doc: str | None) -> dict[str, str]:
    """A Google-style docstring's sections, by header, each with its text."""
    found: dict[str, list[str]] = {}
    current = None
    for line in inspect.cleandoc(doc or "").splitlines():
        header = _SECTION.match(line)
        if header:
            current = found.setdefault(header.group(1), [])
        elif current is not None:
            if line and not line[0].isspace():
                current = None   # unindented text ends the section
            else:
                current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def documented(section: str) -> set[str]:
    """The names an ``Args:``/``Attributes:`` section has entries for.

    An entry is a line at the section's own indent, ``name: text``; one entry
    may document several names (``stride, padding: as for conv``) and star
    them (``*args:``).
    """
    lines = [line for line in section.splitlines() if line.strip()]
    if not lines:
        return set()
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    names = set()
    for line in lines:
        if len(line) - len(line.lstrip()) == indent and ":" in line:
            key = line.split(":", 1)[0]
            names.update(part.strip().lstrip("*").split(" ")[0]
                         for part in key.split(","))
    return names


def _example_problems(found: dict[str, str]) -> list[str]:
    examples = found.get("Example", "") + found.get("Examples", "")
    return [] if ">>>" in examples else ["no `Example:` section with `>>>` lines"]


def function_doc_problems(fn: Callable) -> list[str]:
    """Missing Google sections, or parameters the ``Args:`` section never names."""
    found = sections(fn.__doc__)
    problems = []
    if not inspect.cleandoc(fn.__doc__ or "").strip():
        return ["no docstring"]
    names = [p.name for p in _parameters(fn)]
    if names and "Args" not in found:
        problems.append("no `Args:` section")
    unnamed = [n for n in names if n not in documented(found.get("Args", ""))]
    if names and "Args" in found and unnamed:
        problems.append(f"`Args:` does not name {', '.join(unnamed)}")
    if "Returns" not in found and "Yields" not in found:
        problems.append("no `Returns:` section")
    return problems + _example_problems(found)


def class_doc_problems(cls: type) -> list[str]:
    """A class: ``Attributes:`` naming a dataclass's fields, and an example."""
    found = sections(cls.__doc__)
    problems = []
    if dataclasses.is_dataclass(cls):
        named = documented(found.get("Attributes", ""))
        unnamed = [f.name for f in dataclasses.fields(cls) if f.name not in named]
        if unnamed:
            problems.append(f"`Attributes:` does not name {', '.join(unnamed)}")
    return problems + _example_problems(found)


def run_examples(obj: object, name: str) -> tuple[int, int, str]:
    """Run the ``>>>`` examples of ``obj`` (and of its methods, for a class).

    Returns ``(failed, attempted, report)``. The examples get empty globals:
    each must import what it uses, as a reader copying it would.
    """
    tests = doctest.DocTestFinder().find(obj, name, globs={})
    runner = doctest.DocTestRunner(optionflags=_DOCTEST_FLAGS, verbose=False)
    out: list[str] = []
    failed = attempted = 0
    # x64 off, a fresh session's default. (The same examples also run with x64
    # on, as module doctests: pyproject's --doctest-modules collects jaxgrad/
    # after tests/conftest.py has switched x64 on for the process.)
    with jax.enable_x64(False):
        for test in tests:
            result = runner.run(test, out=out.append, clear_globs=True)
            failed += result.failed
            attempted += result.attempted
    return failed, attempted, "".join(out)


def _api_members(name: str) -> list[tuple[str, Callable]]:
    cls = CLASSES[name]
    members = []
    for member in CLASS_API[name]:
        raw = inspect.getattr_static(cls, member)
        if isinstance(raw, property):
            members.append((member, raw.fget))
        else:
            members.append((member, getattr(cls, member)))
    return members


# --------------------------------------------------------------------------
# The checks, one test per public name.


def test_namespaces_are_complete():
    for prefix, module in NAMESPACES.items():
        assert len(module.__all__) == len(set(module.__all__)), prefix
        for name in module.__all__:
            assert hasattr(module, name), f"{prefix}.__all__ names missing {name!r}"


@pytest.mark.parametrize("prefix", list(NAMESPACES))
def test_dir_shows_only_all(prefix):
    module = NAMESPACES[prefix]
    extra = sorted(n for n in dir(module) if not n.startswith("_")
                   and n not in module.__all__)
    assert not extra, f"{prefix} shows public names outside __all__: {extra}"


@pytest.mark.parametrize("name", list(PUBLIC))
def test_defined_in_private_module(name):
    obj = PUBLIC[name]
    if inspect.ismodule(obj):
        assert obj.__name__ in PUBLIC_SUBMODULES, f"{name} is {obj.__name__}"
        assert obj.__doc__, f"{name} has no docstring"
        return
    module = getattr(obj, "__module__", "")
    assert module.startswith("jaxgrad._"), f"{name} is defined in {module!r}"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_annotations(name):
    problems = hint_problems(FUNCTIONS[name])
    assert not problems, f"{name}: {'; '.join(problems)}"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_docstring(name):
    problems = function_doc_problems(FUNCTIONS[name])
    assert not problems, f"{name}: {'; '.join(problems)}"


def test_every_class_has_its_api_listed():
    assert set(CLASSES) == set(CLASS_API)


@pytest.mark.parametrize("name", list(CLASSES))
def test_class_annotations(name):
    cls = CLASSES[name]
    problems = []
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        problems += [f"field {f.name} unannotated" for f in dataclasses.fields(cls)
                     if f.name not in hints]
    for member, fn in _api_members(name):
        problems += [f"{member}: {p}" for p in hint_problems(fn)]
        if not inspect.cleandoc(fn.__doc__ or "").strip():
            problems.append(f"{member}: no docstring")
    assert not problems, f"{name}: {'; '.join(problems)}"


@pytest.mark.parametrize("name", list(CLASSES))
def test_class_docstring(name):
    problems = class_doc_problems(CLASSES[name])
    assert not problems, f"{name}: {'; '.join(problems)}"


@pytest.mark.parametrize("name", list(CALLABLES))
def test_examples_run(name):
    failed, attempted, report = run_examples(CALLABLES[name], name)
    assert attempted > 0, f"{name}: no >>> example ran"
    assert failed == 0, f"{name}: {failed} of {attempted} example lines failed:\n{report}"


# --------------------------------------------------------------------------
# Negative controls: the checkers catch what they are meant to.


def _make_bad_example() -> Callable[[int], int]:
    # Made by a factory so that pytest's --doctest-modules does not collect
    # (and fail on) the deliberately wrong example.
    def double(x: int) -> int:
        """Double ``x``.

        Args:
          x: an int.

        Returns:
          ``2 * x``.

        Example:
          >>> x = 2
          >>> 2 * x
          5
        """
        return 2 * x
    return double


def _unannotated(x, y: int):
    """Add.

    Args:
      x: a number.

    Example:
      >>> 1 + 1
      2
    """
    return x + y


def test_run_examples_reports_a_wrong_output():
    failed, attempted, report = run_examples(_make_bad_example(), "double")
    assert (failed, attempted) == (1, 2)
    assert "Expected:\n    5\nGot:\n    4" in report


def test_run_examples_counts_a_missing_example():
    # _parameters has a docstring but no example: nothing is attempted, which
    # test_examples_run reports as a failure
    assert run_examples(_parameters, "_parameters")[:2] == (0, 0)


def test_hint_problems_names_the_gaps():
    assert hint_problems(_unannotated) == ["no annotation for x, return"]
    assert hint_problems(_make_bad_example()) == []


def test_hint_problems_reports_an_unresolvable_name():
    def fn(x: NotDefinedAnywhere) -> int:  # noqa: F821 - the point of the test
        return 0
    (problem,) = hint_problems(fn)
    assert problem.startswith("get_type_hints fails: NameError")


def test_doc_problems_names_the_gaps():
    assert function_doc_problems(_unannotated) == [
        "`Args:` does not name y", "no `Returns:` section"]
    assert function_doc_problems(_make_bad_example()) == []
    assert function_doc_problems(lambda: None) == ["no docstring"]


def test_documented_reads_entries_not_prose():
    section = """
      input: (N, C), like ``weight``.
      stride, padding: as for conv.
      *args: the rest.
        weight_decay: an indented line is prose, not an entry.
    """
    assert documented(section) == {"input", "stride", "padding", "args"}


def test_class_doc_problems_names_missing_fields():
    @dataclasses.dataclass
    class Point:
        """A point.

        Attributes:
          x: the abscissa.
        """
        x: float
        y: float

    assert class_doc_problems(Point) == ["`Attributes:` does not name y",
                                         "no `Example:` section with `>>>` lines"]
