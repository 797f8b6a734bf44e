"""The content-addressed store: entries bound to their keys, file modes, the per-key lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest
import torch

from faithbench.store import Cache, CacheCorruptionWarning, CacheLockBusy, atomic_write_bytes


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


def test_two_processes_sharing_a_cache_compute_an_entry_once(tmp_path):
    log = tmp_path / "log.txt"
    procs = [subprocess.Popen([sys.executable, "-c", _PRODUCER, str(tmp_path / "cache"), str(log)], env=_env())
             for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert log.read_text() == "trained\n"
