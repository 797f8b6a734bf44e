"""Where a group computed, as the run records it (review gpuread F4: a Ray task given a GPU computes on
CUDA, and manifest.json named the driver's device), and the caller's TF32 switches around a CUDA group
(F5: they were turned off for good). No GPU here: the Ray worker is a stand-in module and a group's
computation a recorder."""

import dataclasses
import json
import sys
import types

import pytest
import torch

import faithbench
from faithbench.device import full_float32
from faithbench.runner import group as group_module
from faithbench.runner.executors import _group_task
from faithbench.runner.group import GroupOutput
from faithbench.runner.plan import plan
from faithbench.runner.run import computed_on
from faithbench.runner.settings import RunSettings

TINY = {"name": "tiny_where", "samples": 4, "batch_size": 4, "device": "cpu",
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
        "explainers": ["saliency", "random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}


def _outputs(*devices):
    group = plan(faithbench.load_suite(TINY))[0]
    return [GroupOutput(group, device=d) for d in devices]


def test_the_run_names_the_device_its_groups_computed_on():
    assert computed_on(_outputs("cuda", "cuda"), "cpu") == "cuda"  # Ray tasks with a GPU, a CPU driver
    assert computed_on(_outputs("cpu", "cuda", "cuda"), "cpu") == "mixed: cpu (1 group), cuda (2 groups)"
    assert computed_on(_outputs(""), "cuda:1") == "cuda:1"  # a task that died says nothing: the setting
    assert computed_on([], "cpu") == "cpu"


def test_a_ray_task_given_a_gpu_reports_cuda_whatever_the_driver_says(monkeypatch, tmp_path):
    """The worker replaces the driver's device by cuda (executors._group_task); its output says so. Here
    CUDA is absent, so the checkpoint fails on it, as a recorded failure of the group's cells."""
    suite = faithbench.load_suite(TINY)
    settings = RunSettings.from_suite(suite)
    assert settings.device == "cpu"
    fake_ray = types.ModuleType("ray")
    fake_ray.is_initialized = lambda: True
    fake_ray.get_gpu_ids = lambda: [0]
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the driver's count: this process's stays
    answer = _group_task(plan(suite)[0], settings, str(tmp_path / "cache"), (), {})
    assert answer.input_error is None and answer.output is not None
    assert answer.output.device == "cuda"
    assert computed_on([answer.output], settings.device) == "cuda"


def test_a_local_run_records_its_device_from_its_groups(tmp_path):
    from faithbench.store import Cache

    result = faithbench.run(faithbench.load_suite(TINY), out_dir=tmp_path / "out", cache=Cache(tmp_path / "cache"),
                            progress=False, log=lambda m: None, report=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["device"] == result.device == "cpu"


@pytest.fixture
def tf32_on():
    """The caller's switches both on (cuDNN's default; matmul's is off), put back as they were after the test."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("device, inside", [("cuda", False), ("cuda:1", False), ("cpu", True)])
def test_tf32_is_off_inside_a_cuda_block_and_the_callers_switches_come_back(tf32_on, device, inside):
    with full_float32(device):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (inside, inside)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    with pytest.raises(KeyError), full_float32(device):  # restored when the group raises, too
        raise KeyError("boom")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)


def test_a_cuda_group_computes_without_tf32_and_gives_the_switches_back(monkeypatch, tf32_on):
    seen = []

    def compute_group(group, settings, store, splits, progress=None):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return GroupOutput(group, device=settings.device)

    monkeypatch.setattr(group_module, "compute_group", compute_group)
    monkeypatch.setattr(group_module, "build_splits", lambda spec, splits: {})
    suite = faithbench.load_suite(TINY)
    settings = dataclasses.replace(RunSettings.from_suite(suite), device="cuda")
    out = group_module.run_group(plan(suite)[0], settings, store=None)
    assert seen == [(False, False)] and out.device == "cuda"
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
