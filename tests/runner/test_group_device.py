"""Where a group computed, as the run records it (review gpuread F4: a Ray task given a GPU computes on
CUDA, and manifest.json named the driver's device). No GPU here: the Ray worker is a stand-in module."""

import json
import sys
import types

import torch

import faithbench
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
    answer = _group_task(plan(suite)[0], settings, str(tmp_path / "cache"), ())
    assert answer.input_error is None and answer.output is not None
    assert answer.output.device == "cuda"
    assert computed_on([answer.output], settings.device) == "cuda"


def test_a_local_run_records_its_device_from_its_groups(tmp_path):
    from faithbench.store import Cache

    result = faithbench.run(faithbench.load_suite(TINY), out_dir=tmp_path / "out", cache=Cache(tmp_path / "cache"),
                            progress=False, log=lambda m: None, report=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["device"] == result.device == "cpu"
