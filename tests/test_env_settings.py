"""Environment settings read as documented (a held-out review: FAITHBENCH_OFFLINE=maybe or tru silently meant
online, and FAITHBENCH_CACHE=" " made a cache folder named by a space in the working directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faithbench.cli import main
from faithbench.datasets.paths import downloads_allowed
from faithbench.store import default_cache_dir


@pytest.mark.parametrize("value", ["maybe", "tru", "2", "offline"])
def test_an_unknown_offline_value_is_refused_in_one_line(monkeypatch, capsys, value):
    monkeypatch.setenv("FAITHBENCH_OFFLINE", value)
    assert main(["validate", "quick"]) == 2
    err = capsys.readouterr().err
    assert err == (f"faithbench: error: $FAITHBENCH_OFFLINE: expected 1, true, yes or on (or 0, false, no, off, "
                   f"empty: unset), got {value!r}\n")
    with pytest.raises(ValueError, match=r"^\$FAITHBENCH_OFFLINE: expected 1, true, yes or on"):
        downloads_allowed()  # the API reads it deep in the loaders: the same line


def test_the_api_run_refuses_an_unknown_offline_value_first(monkeypatch, tmp_path):
    """faithbench.run names its own check, not a dataset's params where a loader happened to read it (a review)."""
    import faithbench

    monkeypatch.setenv("FAITHBENCH_OFFLINE", "maybe")
    with pytest.raises(faithbench.UsageError, match=r"^run: \$FAITHBENCH_OFFLINE: expected 1, true, yes or on .*"
                                                    r"got 'maybe'$"):
        faithbench.run("quick", out_dir=tmp_path / "out", cache=tmp_path / "cache")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(("value", "allowed"), [("1", False), (" On ", False), ("yes", False), ("0", True),
                                                ("off", True), ("", True), (" False", True)])
def test_true_and_false_words_are_read(monkeypatch, value, allowed):
    monkeypatch.setenv("FAITHBENCH_OFFLINE", value)
    assert downloads_allowed() is allowed


def test_a_blank_or_padded_cache_variable_is_stripped(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FAITHBENCH_CACHE", "   ")
    assert default_cache_dir() == tmp_path / "xdg" / "faithbench"
    monkeypatch.setenv("FAITHBENCH_CACHE", f"  {tmp_path / 'c'}\t")
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("FAITHBENCH_CACHE", "~/fb")
    assert default_cache_dir() == Path.home() / "fb"
