"""The one quiet switch: ``--quiet`` and ``run_suite(progress=False)`` silence the training bars too."""

from __future__ import annotations

import io
import os

import pytest

from faithbench import config
from faithbench.progress import QUIET_ENV, bars_disabled, quiet
from faithbench.runner import run as run_module


@pytest.mark.parametrize("before", [None, "0", "1"])
def test_quiet_sets_and_restores(monkeypatch, before):
    if before is None:
        monkeypatch.delenv(QUIET_ENV, raising=False)
    else:
        monkeypatch.setenv(QUIET_ENV, before)
    with quiet():
        assert bars_disabled()
    assert os.environ.get(QUIET_ENV) == before
    with quiet(False):
        assert bars_disabled() == (before == "1")
    with pytest.raises(RuntimeError), quiet():
        raise RuntimeError("restored after an error too")
    assert os.environ.get(QUIET_ENV) == before


@pytest.mark.parametrize("progress", [True, False])
def test_run_suite_without_progress_silences_training_bars(monkeypatch, tmp_path, progress):
    """A review: faithbench.run(..., progress=False) still drew the training bars (only the CLI's
    --quiet reached them)."""
    monkeypatch.delenv(QUIET_ENV, raising=False)
    seen = {}

    def fake_run_locked(*args, **kwargs):
        seen["bars_disabled"] = bars_disabled()  # what a checkpoint's training bar reads
        return "done"

    monkeypatch.setattr(run_module, "_run_locked", fake_run_locked)
    suite = config.load_suite("quick")
    assert run_module.run_suite(suite, tmp_path / "out", progress=progress) == "done"
    assert seen["bars_disabled"] is (not progress)
    assert QUIET_ENV not in os.environ


def test_a_training_bar_inside_the_suite_bar_moves_no_cursor_in_a_redirected_log(monkeypatch, tmp_path):
    """A review: the nested training bar (tqdm's position 1) wrote ESC[A (cursor up) on every update
    into a log file; where stderr is not a terminal it now updates on the suite bar's line."""
    import io
    import sys

    import torch
    from tqdm.auto import tqdm

    from faithbench.models.architectures import small_cnn
    from faithbench.models.training import Recipe, train_model

    monkeypatch.delenv(QUIET_ENV, raising=False)
    err = io.StringIO()  # not a TTY
    monkeypatch.setattr(sys, "stderr", err)
    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 2
    with tqdm(total=2, desc="suite", file=sys.stderr, mininterval=0):
        train_model(small_cnn(1, 2, (8, 8), width=2, depth=1), x, y, x, y, Recipe(epochs=2, batch_size=8), seed=0)
    log = err.getvalue()
    assert "train" in log and "epoch" in log  # the bar was drawn
    assert "\x1b[A" not in log


def test_lines_written_while_a_bar_is_open_start_on_their_own_line(monkeypatch):
    """A review: "…[00:43<00:00, metric reliability …]trained small_cnn …": a log line glued to the
    bar's line. The run's log, Python's warnings and faithbench's logging go through tqdm."""
    import io
    import logging
    import sys

    from tqdm.auto import tqdm

    from faithbench.progress import lines_through_bars, write_line

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in the CLI: logging not configured (pytest does)
    with tqdm(total=2, desc="suite", file=sys.stderr, mininterval=0) as bar, lines_through_bars():
        bar.update()
        write_line("trained a model")
        logging.getLogger("faithbench.models.checkpoint").warning("a model warning")
        bar.update()
    lines = err.getvalue().replace("\r", "\n").splitlines()
    assert "trained a model" in lines and "a model warning" in lines


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_redirected_log_holds_each_line_after_a_bar_on_a_physical_line_of_its_own(monkeypatch):
    """Review cli12: in a file, tqdm's ``\\r`` frames and its clearing stay on one line, so
    ``…| 1/2 [00:00<?]\\r   \\rtrained small_cnn …`` was one line for grep and less, though the docs say log
    lines start on a line of their own. Lines split on ``\\n`` only here."""
    import logging
    import sys

    from tqdm.auto import tqdm

    from faithbench.progress import lines_through_bars, write_line

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    with lines_through_bars():
        with tqdm(total=2, desc="suite", mininterval=0) as bar:  # tqdm's default file: sys.stderr, read now
            bar.update()
            print("trained a model", file=sys.stderr)  # the CLI's log callable: a plain print
            write_line("a line through tqdm")
            logging.getLogger("faithbench.models.checkpoint").warning("a model warning")
            bar.update()
        print("after a kept bar", file=sys.stderr)  # leave=True ends its line itself: no empty line
        with tqdm(total=2, desc="report", leave=False, mininterval=0) as bar:
            bar.update(2)
        print("computed 1 checkpoints", file=sys.stderr)  # after a cleared bar (leave=False)
    assert sys.stderr is err  # put back
    lines = err.getvalue().split("\n")
    for message in ("trained a model", "a line through tqdm", "a model warning", "after a kept bar",
                    "computed 1 checkpoints"):
        assert message in lines, (message, lines)
    assert "" not in lines[:-1]  # no empty line
    assert sum("suite" in line for line in lines) >= 3 and any("report" in line for line in lines)  # bars drawn
    assert lines[-2:] == ["computed 1 checkpoints", ""]


def test_a_terminal_keeps_its_stream(monkeypatch):
    """On a terminal ``\\r`` returns to the line's start: stderr is not wrapped, nothing is added."""
    import sys

    from faithbench.progress import lines_through_bars

    tty = _Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    with lines_through_bars():
        assert sys.stderr is tty
        sys.stderr.write("\rframe")
        print("line", file=sys.stderr)
    assert tty.getvalue() == "\rframeline\n"
