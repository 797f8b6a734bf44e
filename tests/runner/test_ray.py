"""The Ray executor on a real local Ray instance: the same values as the local executor."""

import pandas as pd
import pytest
import yaml

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'faithbench[ray]'); Ray executor untested")

from faithbench.cli import main  # noqa: E402
from faithbench.config import suite_from_dict  # noqa: E402
from faithbench.store import Cache  # noqa: E402
from faithbench.runner.run import run_suite  # noqa: E402

TINY = {
    "name": "tiny_ray",
    "samples": 12,
    "batch_size": 8,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 96, "size": 32}}],
    "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": ["gradcam", {"name": "integrated_gradients", "params": {"n_steps": 8}}, "random", "sobel"],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 8}}, "pointing_game"],
    "seeds": [0, 1],
    "regions": {"masks": ["lung_lesion_side", "heart"], "grid": [1, 3]},
}


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _entries(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_ray_gives_the_same_values_as_local(tmp_path, ray_instance):
    suite = suite_from_dict(TINY)
    local = run_suite(suite, tmp_path / "local", cache=Cache(tmp_path / "c_local"), progress=False,
                      log=lambda m: None)
    remote = run_suite(suite, tmp_path / "ray", cache=Cache(tmp_path / "c_ray"), progress=False,
                       log=lambda m: None, executor="ray")
    assert remote.computed == local.computed and remote.computed["saliency"] == 2 * 4 * 2
    assert (tmp_path / "ray" / "results.csv").read_bytes() == (tmp_path / "local" / "results.csv").read_bytes()
    assert remote.computed["regions"] == 2 * 4 * 2 and len(remote.regions) == 2 * 4 * 12 * 5
    assert (tmp_path / "ray" / "regions.csv").read_bytes() == (tmp_path / "local" / "regions.csv").read_bytes()
    pd.testing.assert_frame_equal(local.curves, remote.curves)
    pd.testing.assert_frame_equal(local.models, remote.models)
    # the driver wrote every entry the tasks computed, under the same keys
    assert _entries(tmp_path / "c_ray") == _entries(tmp_path / "c_local")
    cost_cols = ["dataset", "model", "explainer", "seed", "samples", "stage", "metric", "passes"]
    pd.testing.assert_frame_equal(local.cost[cost_cols], remote.cost[cost_cols])

    again = run_suite(suite, tmp_path / "ray2", cache=Cache(tmp_path / "c_ray"), progress=False,
                      log=lambda m: None, executor="ray")
    assert again.computed == {"checkpoints": 0, "saliency": 0, "scores": 0, "reliability": 0}
    pd.testing.assert_frame_equal(remote.results, again.results)


def test_suite_key_executor_ray_through_the_cli(tmp_path, ray_instance, capsys):
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(yaml.safe_dump({**TINY, "executor": "ray", "seeds": [0], "explainers": ["random"]}))
    out = tmp_path / "out"
    assert main(["run", str(suite_file), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    import json

    assert json.loads((out / "manifest.json").read_text())["executor"] == "ray"
    assert len(pd.read_csv(out / "results.csv").query("metric == 'deletion_auc'")) == 12


SHORTCUT = {**TINY, "name": "tiny_ray_shortcut", "seeds": [0],
            "datasets": [{"name": "phantom_cxr", "params": {"n": 96, "size": 32, "shortcut": 0.9}}],
            "explainers": ["gradcam", "random"]}


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_ray_output_folder_is_byte_identical_to_local(tmp_path, ray_instance):
    """Every file of a Ray run's folder (tables, reliance.csv, galleries, plots, index.html) equals
    the local run's byte for byte; only manifest.json differs, in the executor, its override of the suite's
    and the wall time it records.
    Both read one cache that a first run filled, so models.csv says "cache" for both and cost.csv
    carries the same recorded seconds."""
    import json

    suite = suite_from_dict(SHORTCUT)
    cache = Cache(tmp_path / "cache")
    run_suite(suite, tmp_path / "first", cache=cache, progress=False, log=lambda m: None)  # trains the checkpoint
    run_suite(suite, tmp_path / "local", cache=cache, progress=False, log=lambda m: None)
    run_suite(suite, tmp_path / "ray", cache=cache, progress=False, log=lambda m: None, executor="ray")
    local, remote = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert "reliance.csv" in remote and "index.html" in remote
    assert any(name.startswith("plots/gallery_") for name in remote)
    assert sorted(local) == sorted(remote)
    differ = sorted(name for name in local if local[name] != remote[name])
    assert differ == ["manifest.json"]
    a, b = (json.loads(x["manifest.json"]) for x in (local, remote))
    assert {k for k in a if a[k] != b[k]} <= {"executor", "seconds", "overrides"}
    assert (a["executor"], b["executor"]) == ("local", "ray")
    assert (a["overrides"], b["overrides"]) == ({}, {"executor": {"suite": "local", "run": "ray"}})


def test_a_fractional_cpu_share_reads_what_a_local_run_cached(tmp_path, ray_instance):
    """A review saw a --cpus-per-task 0.5 run recompute every map, score and reliability group that a local run
    had cached: the checkout's explainers/base.py was edited between the two runs (an editable install keys the
    built-ins by their source), not the CPU share. A task's share enters no key: the fractional run reads every
    entry and writes none."""
    from faithbench.runner.executors import RayOptions

    suite = suite_from_dict({**TINY, "seeds": [0, 1], "samples": 8, "explainers": ["gradcam", "saliency", "random"],
                             "reliability": 4})
    cache = Cache(tmp_path / "cache")
    local = run_suite(suite, tmp_path / "local", cache=cache, progress=False, log=lambda m: None)
    assert local.computed["saliency"] == 2 * 3 and local.computed["reliability"] == 2
    before = _entries(tmp_path / "cache")
    half = run_suite(suite, tmp_path / "half", cache=cache, progress=False, log=lambda m: None,
                     executor=RayOptions(cpus_per_task=0.5))
    assert half.computed == {"checkpoints": 0, "saliency": 0, "scores": 0, "reliability": 0}
    assert half.cached["saliency"] == 2 * 3 and _entries(tmp_path / "cache") == before
    pd.testing.assert_frame_equal(local.results, half.results)
