"""The one quiet switch: ``--quiet`` and ``run_suite(progress=False)`` silence the training bars too."""

from __future__ import annotations

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
