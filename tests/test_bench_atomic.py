"""Result files are written atomically: an interrupted write leaves no half file."""

import pathlib

import pytest

from jaxgrad_bench import _report


def _leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_complete_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old\n")
    _report.write_atomically(target, lambda tmp: tmp.write_text("new\n"))
    assert target.read_text() == "new\n"
    assert _leftovers(tmp_path) == ["results.json"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_an_interrupted_write_keeps_the_previous_file(tmp_path, error):
    target = tmp_path / "results.md"
    target.write_text("previous complete run\n")

    def half_then_interrupted(tmp):
        tmp.write_text("| half a tab")
        raise error("interrupted while writing")

    with pytest.raises(error, match="interrupted while writing"):
        _report.write_atomically(target, half_then_interrupted)
    assert target.read_text() == "previous complete run\n"
    assert _leftovers(tmp_path) == ["results.md"]


def test_an_interrupted_first_write_leaves_nothing(tmp_path):
    def interrupted(tmp):
        tmp.write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _report.write_atomically(tmp_path / "results.png", interrupted)
    assert _leftovers(tmp_path) == []


def test_write_json_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    _report.write_json({"a": 1}, target)
    assert target.read_text() == '{\n "a": 1\n}\n'

    def fail(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(_report.os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        _report.write_json({"a": 2}, target)
    assert target.read_text() == '{\n "a": 1\n}\n'
    assert _leftovers(tmp_path) == ["r.json"]
