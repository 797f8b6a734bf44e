"""The checkpoint key records the CPU thread count (training results differ across it, issue 17) and torch's version."""

from __future__ import annotations

import torch

from faithbench.models.checkpoint import ModelSpec, checkpoint_key


def test_checkpoint_key_depends_on_thread_count():
    spec = ModelSpec(name="small_cnn", recipe={"epochs": 1})
    before = torch.get_num_threads()
    try:
        keys = {}
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            keys.setdefault(threads, set()).add(checkpoint_key(spec, {"d": 1}, 1, 2, (16, 16), seed=0))
    finally:
        torch.set_num_threads(before)
    assert len(keys[1]) == 1 and len(keys[2]) == 1 and keys[1] != keys[2]


def test_checkpoint_key_depends_on_torch_version(monkeypatch):
    spec = ModelSpec(name="small_cnn", recipe={"epochs": 1})
    key = checkpoint_key(spec, {"d": 1}, 1, 2, (16, 16), seed=0)
    assert checkpoint_key(spec, {"d": 1}, 1, 2, (16, 16), seed=0) == key
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert checkpoint_key(spec, {"d": 1}, 1, 2, (16, 16), seed=0) != key
