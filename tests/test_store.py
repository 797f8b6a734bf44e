"""The content-addressed store: entries bound to their keys, file modes, the per-key lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from faithbench.store import Cache, CacheCorruptionWarning, CacheLockBusy, CacheLockWait, atomic_write_bytes


def test_swapped_json_entries_are_detected_and_recomputed(tmp_path):
    cache = Cache(tmp_path)
    a, b = cache.put_json("scores", "aa11", {"value": 1.0}), cache.put_json("scores", "bb22", {"value": 2.0})
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b), b.write_bytes(blob_a)  # two valid entries, swapped
    with pytest.warns(CacheCorruptionWarning, match="scores/bb22 where scores/aa11 was expected"):
        assert cache.get_json("scores", "aa11") is None
    assert not a.exists() and cache.misses == 1


def test_swapped_tensor_entries_are_detected_and_recomputed(tmp_path):
    cache = Cache(tmp_path)
    a = cache.put_tensors("saliency", "aa11", {"s": torch.zeros(2)})
    b = cache.put_tensors("saliency", "bb22", {"s": torch.ones(2)})
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b), b.write_bytes(blob_a)
    with pytest.warns(CacheCorruptionWarning, match="saliency/aa11 was expected"):
        assert cache.get_tensors("saliency", "aa11") is None
    cache.put_tensors("saliency", "aa11", {"s": torch.zeros(2)})  # recomputed
    assert torch.equal(cache.get_tensors("saliency", "aa11")["s"], torch.zeros(2))


def test_a_tensor_entry_without_its_checksum_is_recomputed(tmp_path):
    # helper 113: an entry rewritten with other data and no sha256 in its metadata was read as a hit
    from safetensors.torch import save_file

    cache = Cache(tmp_path)
    path = cache.put_tensors("saliency", "ff11", {"s": torch.ones(3)})
    save_file({"s": 2 * torch.ones(3)}, str(path), metadata={"key": "saliency/ff11"})
    with pytest.warns(CacheCorruptionWarning, match="no checksum in its metadata"):
        assert cache.get_tensors("saliency", "ff11") is None
    assert not path.exists() and cache.misses == 1


def test_entry_read_back_under_its_key(tmp_path):
    cache = Cache(tmp_path)
    cache.put_json("scores", "cc33", [1, 2])
    assert cache.get_json("scores", "cc33") == [1, 2] and cache.hits == 1


def test_written_files_are_world_readable(tmp_path):
    path = tmp_path / "x.csv"
    atomic_write_bytes(path, b"a\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


_HOLDER = textwrap.dedent("""
    import sys
    from faithbench.store import Cache
    with Cache(sys.argv[1]).lock("checkpoints", "k1"):
        print("held", flush=True)
        sys.stdin.readline()  # hold until the parent says
""")

_PRODUCER = textwrap.dedent("""
    import sys, time
    from faithbench.store import Cache
    cache = Cache(sys.argv[1])
    with cache.lock("checkpoints", "k2"):
        if cache.get_json("checkpoints", "k2") is None:
            with open(sys.argv[2], "a") as f:
                f.write("trained\\n")
            time.sleep(0.3)  # long enough for the other process to reach the lock
            cache.put_json("checkpoints", "k2", {"done": True})
""")


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}


def test_lock_excludes_another_process(tmp_path):
    cache = Cache(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CacheLockBusy, match="checkpoints/k1"):
            with cache.lock("checkpoints", "k1", wait=False):
                pass
        with cache.lock("checkpoints", "other", wait=False):  # other keys are free
            pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with cache.lock("checkpoints", "k1", wait=False):  # released when the holder ended
        pass


def test_a_wait_on_another_process_is_announced(tmp_path):
    """A held-out review waited 15 minutes on another run's training of the same checkpoint with
    nothing but a 0 % bar: a wait for a held lock is warned of (once, naming the lock file); a
    lock that is free says nothing."""
    import threading

    cache = Cache(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a free lock warns of nothing
        with cache.lock("checkpoints", "k1", waiting="model 'm' is being trained elsewhere"):
            pass
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        threading.Timer(0.5, holder.stdin.close).start()  # the holder lets go while this one waits
        with pytest.warns(CacheLockWait) as caught:
            with cache.lock("checkpoints", "k1", waiting="model 'm' is being trained elsewhere"):
                assert holder.wait(timeout=30) == 0  # acquired only once the holder had ended
    finally:
        holder.kill()
    assert len(caught) == 1
    assert str(caught[0].message).startswith("model 'm' is being trained elsewhere; waiting for it to release ")
    assert str(caught[0].message).endswith(".k1.lock")


def test_two_processes_sharing_a_cache_compute_an_entry_once(tmp_path):
    log = tmp_path / "log.txt"
    procs = [subprocess.Popen([sys.executable, "-c", _PRODUCER, str(tmp_path / "cache"), str(log)], env=_env())
             for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert log.read_text() == "trained\n"


def test_a_full_or_read_only_cache_stops_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    """A held-out review: "No space left on device" failed each cell on its own; the run went on
    computing work it could not keep and published a partial leaderboard (exit 3). Now the first
    write that cannot be made stops the run: exit 2, one line naming the cache; a rerun resumes."""
    import errno

    import faithbench.store as store
    from faithbench.cli import main
    from faithbench.store import CacheWriteError

    cache = Cache(tmp_path / "cache")
    real = store.atomic_write_bytes

    def full(path, data):
        if str(path).startswith(str(tmp_path / "cache")):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full)
    with pytest.raises(CacheWriteError, match=r"cannot write to the cache .*cache: No space left on device"):
        cache.put_json("scores", "abc", {"v": 1})
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: full\nsamples: 4\nbatch_size: 4\nreliability: 0\n"
                     "datasets: [{name: phantom_cxr, params: {n: 40, size: 32}}]\n"
                     "models: [{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}]\n"
                     "explainers: [random, sobel]\nmetrics: [sparseness]\n")
    code = main(["run", str(suite), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("faithbench: error: cannot write to the cache ")
    assert not (tmp_path / "out" / "leaderboard.csv").exists()
    monkeypatch.setattr(store, "atomic_write_bytes", real)
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
                 "--quiet"]) == 0


def test_another_users_lock_file_is_locked_read_only(tmp_path, monkeypatch):
    """A held-out review: in a cache shared by two users, the second could not open the first's
    lock files for appending, so every cell failed; flock needs no write access."""
    import builtins

    import faithbench.store as store

    cache = Cache(tmp_path)
    with cache.lock("checkpoints", "k1") as path:
        pass
    modes = []

    def no_append(file, mode="r", *args, **kwargs):
        modes.append(mode)
        if mode == "a":
            raise PermissionError(13, "Permission denied")
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(store, "open", no_append, raising=False)
    with cache.lock("checkpoints", "k1") as again:
        assert again == path
    assert modes == ["a", "r"]
    with pytest.raises(store.CacheWriteError, match="Permission denied .*group-writable"):
        with cache.lock("checkpoints", "k2"):  # no lock file yet, and none can be made
            pass


def test_a_lock_file_on_a_full_file_system_stops_the_run(tmp_path, monkeypatch):
    """A diff review: a lock file that cannot be created because the file system is full or
    read-only escaped as a plain OSError, which failed every cell of the group."""
    import errno

    import faithbench.store as store

    def full(file, mode="r", *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "open", full, raising=False)
    with pytest.raises(store.CacheWriteError, match="cannot write to the cache .*No space left on device") as info:
        with Cache(tmp_path).lock("checkpoints", "k"):
            pass
    assert info.value.errno == errno.ENOSPC and not str(info.value).startswith("[Errno")


def _fdopen_failing_with(error: OSError):  # noqa: ANN202 - os.fdopen's stand-in
    """An ``os.fdopen`` whose file raises ``error`` on write (the descriptor is closed)."""
    class Failing:
        def __init__(self, fd, mode):
            os.close(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise error

    return Failing


def test_a_full_disk_while_writing_names_the_file(tmp_path, monkeypatch):
    """Review resume9: a full --out gave "cannot write the run's tables: No space left on device", naming no
    file, as a write()'s OSError carries none; atomic_write_bytes and the figures add the path."""
    import errno

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from faithbench.reports.figure import save

    monkeypatch.setattr(os, "fdopen", _fdopen_failing_with(OSError(errno.ENOSPC, "No space left on device")))
    target = tmp_path / "leaderboard.csv"
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"x")
    assert (info.value.errno, info.value.strerror, info.value.filename) == (errno.ENOSPC, "No space left on device",
                                                                           str(target))
    assert list(tmp_path.iterdir()) == []  # the temporary file removed
    monkeypatch.undo()

    def full(self, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    with pytest.raises(OSError) as info:
        save(Figure(), tmp_path / "plots" / "cost")
    assert info.value.filename == str(tmp_path / "plots" / "cost.png") and info.value.errno == errno.ENOSPC


def test_an_error_without_errno_is_not_renamed(tmp_path, monkeypatch):
    """Diff review 35: named_os_error made OSError("msg") '[Errno None] msg: <path>'; an errno's subclass
    (TimeoutError) keeps its type."""
    import errno
    from pathlib import Path

    from faithbench.store import named_os_error

    plain = OSError("msg")
    assert named_os_error(plain, Path("/x")) is plain
    timeout = named_os_error(OSError(errno.ETIMEDOUT, "timed out"), Path("/x/y"))
    assert isinstance(timeout, TimeoutError) and timeout.filename == "/x/y"

    monkeypatch.setattr(os, "fdopen", _fdopen_failing_with(plain))
    with pytest.raises(OSError) as info:
        atomic_write_bytes(tmp_path / "t.csv", b"x")
    assert info.value is plain and list(tmp_path.iterdir()) == []
