"""Suite paths that exist but are not regular files (a held-out review, F3: all were "no such suite
file"), and read errors of an included file (F4: the including file and its ``include:`` were not named)."""

from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path

import pytest

from faithbench.config import SuiteError, load_suite

SUITE = textwrap.dedent("""
    name: piped
    datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
    models: [{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}]
    explainers: [random]
    metrics: [pointing_game]
    """)


def _write_later(path_or_fd, text: str) -> threading.Thread:
    def write() -> None:
        if isinstance(path_or_fd, int):
            with os.fdopen(path_or_fd, "w") as f:
                f.write(text)
        else:
            Path(path_or_fd).write_text(text)  # blocks until the reader opens the FIFO
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_named_fifo_is_read_once_as_a_suite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    thread = _write_later(fifo, SUITE)
    assert load_suite(str(fifo)).name == "piped"
    thread.join(5)


def test_process_substitution_reads_the_pipe_and_includes_from_the_working_directory(tmp_path, monkeypatch):
    """``faithbench validate <(cat s.yaml)`` passes ``/dev/fd/N``; a relative include is read from the
    working directory, not from /dev/fd."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(SUITE)
    read, write = os.pipe()
    try:
        thread = _write_later(write, "include: base.yaml\nname: through_a_pipe\n")
        suite = load_suite(f"/dev/fd/{read}")
        thread.join(5)
    finally:
        os.close(read)
    assert (suite.name, suite.metrics[0].name) == ("through_a_pipe", "pointing_game")


@pytest.mark.parametrize("make, what", [
    (lambda d: Path("/dev/zero"), "/dev/zero: a character device, not a suite file, and not a built-in suite"),
    (lambda d: (d / "loop.yaml").symlink_to("loop.yaml") or d / "loop.yaml",
     "loop.yaml: a symbolic link that loops (too many levels of symbolic links), not a suite file"),
    (lambda d: (d / "dangling.yaml").symlink_to("gone.yaml") or d / "dangling.yaml",
     "dangling.yaml: a symbolic link to gone.yaml, which does not exist, not a suite file"),
])
def test_a_path_that_exists_but_is_no_suite_says_what_it_is(tmp_path, monkeypatch, make, what):
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert what in message and "no such suite file" not in message and "\n" not in message


def test_the_cli_refuses_a_device_in_one_line(capsys):
    from faithbench.cli import main

    assert main(["validate", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("faithbench: error: /dev/zero: a character device, not a suite file") and err.count("\n") == 1


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc")
def test_an_include_that_cannot_be_read_names_the_including_file_and_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("include: /proc/self/mem\nname: s\n")
    with pytest.raises(SuiteError, match=r"^s\.yaml: include: /proc/self/mem: cannot read suite \(Input/output "
                                         r"error\)$"):
        load_suite("s.yaml")
