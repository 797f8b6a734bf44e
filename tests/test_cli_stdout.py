"""Standard output in one write (a held-out review, F1): with ``PYTHONUNBUFFERED=1`` each ``print`` was a
write(2), its newline another, and ``faithbench list datasets | head -1`` exited 141 at random although
README's "Exit codes" says output that fits the pipe's buffer is written whole and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from faithbench.cli import main


class _ReaderQuitsAfterOneWrite:
    """A pipe whose reader (``head -1``) took the first write and quit: each later write is EPIPE."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        if self.writes:
            raise BrokenPipeError(32, "Broken pipe")
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return os.open(os.devnull, os.O_WRONLY)


@pytest.mark.parametrize("argv, first", [
    (["list", "datasets"], "folder "),
    (["list", "suites"], None),
    (["list", "explainers", "--params", "grad"], "fullgrad "),
    (["list", "metrics", "*auc"], None),
])
def test_list_is_one_write(argv, first, monkeypatch):
    out = _ReaderQuitsAfterOneWrite()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(argv) == 0  # the old code: 141 at its second write (the first line's "\n")
    assert len(out.writes) == 1
    lines = out.writes[0].splitlines()
    assert len(lines) >= 2 and out.writes[0].endswith("\n")
    if first:
        assert lines[0].startswith(first)
    if "--params" in argv:
        assert lines[1].strip().startswith("parameters:")


def test_validate_is_one_write(monkeypatch):
    out = _ReaderQuitsAfterOneWrite()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["validate", "quick"]) == 0
    assert len(out.writes) == 1 and out.writes[0].startswith("quick: ok — suite 'quick': ")


@pytest.mark.slow
def test_list_piped_into_head_exits_0_unbuffered():
    """The review's loop, `faithbench list datasets | head -1` 20 times with PYTHONUNBUFFERED=1: each exits 0."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    codes = []
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-m", "faithbench.cli", "list", "datasets"], stdout=subprocess.PIPE,
                                env=env)
        assert proc.stdout.readline().startswith(b"folder ")
        proc.stdout.close()  # head -1 quits after its first line
        codes.append(proc.wait(timeout=300))
    assert codes == [0] * 20
