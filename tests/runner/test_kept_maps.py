"""The maps kept for repeatability (``runner.group._keep_map``): each with its sample id and
explained class, up to ``MAPS_KEPT`` per cell; the control explainers (model-independent maps)
are not kept."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from faithbench.config import PluginSpec
from faithbench.models.checkpoint import ModelSpec
from faithbench.registry import explainers
from faithbench.runner.group import MAPS_KEPT, GroupOutput, _keep_map
from faithbench.runner.run import _write_samples
from faithbench.types import Batch


def _run(name: str, last: torch.Tensor) -> SimpleNamespace:
    """A stand-in for a CellRun that has just explained a batch (``last``: its raw maps)."""
    cell = SimpleNamespace(explainer=PluginSpec(name=name))
    return SimpleNamespace(cell=cell, explainer=explainers.get(name)(seed=0), stopped=False, last=last)


def _batch(start: int, n: int) -> Batch:
    return Batch([f"s{i}" for i in range(start, start + n)], torch.zeros(n, 1, 4, 4), torch.zeros(n, dtype=torch.long),
                 {})


def test_kept_maps_carry_their_targets_up_to_the_cap():
    out = GroupOutput(group=None)
    for start in (0, 20):  # two batches of 20: the cap keeps the first 32 units
        maps = torch.arange(start, start + 20, dtype=torch.float32)[:, None, None].expand(20, 4, 4)
        target = torch.tensor([i % 2 for i in range(start, start + 20)])
        _keep_map(out, _run("saliency", maps), _batch(start, 20), target)
    ids, targets, kept = out.maps["saliency"]
    assert MAPS_KEPT == 32 and ids == [f"s{i}" for i in range(32)]
    assert targets == [i % 2 for i in range(32)]
    assert kept[:, 0, 0].tolist() == [float(i) for i in range(32)]


def test_control_explainers_are_not_kept():
    out = GroupOutput(group=None)
    for name in ("random", "sobel", "center_prior", "saliency"):
        _keep_map(out, _run(name, torch.rand(3, 4, 4)), _batch(0, 3), torch.zeros(3, dtype=torch.long))
    assert list(out.maps) == ["saliency"]


def test_two_seeds_that_explain_a_sample_for_different_classes_leave_it_out(tmp_path):
    """The kept maps of two seeds go through the run's writer: sample s2 is explained for class 1
    under seed 1 only, so it is left out of repeatability.csv and counted there."""
    maps = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    outputs = []
    for seed, target in ((0, [0, 0, 0, 0]), (1, [0, 0, 1, 0])):
        group = SimpleNamespace(dataset=PluginSpec(name="d"), model=ModelSpec(name="m", recipe="default"), seed=seed)
        out = GroupOutput(group=group)
        _keep_map(out, _run("saliency", maps), _batch(0, 4), torch.tensor(target))
        outputs.append(out)
    _write_samples(tmp_path, pd.DataFrame(), outputs)
    table = pd.read_csv(tmp_path / "repeatability.csv")
    assert table[["metric", "n", "n_target_differs"]].values.tolist() == [["spearman", 3, 1], ["ssim", 3, 1]]
    assert table["mean"].tolist() == pytest.approx([1.0, 1.0])


def test_a_model_that_no_seed_retrains_gets_no_repeatability_row(tmp_path):
    """A model loaded from a weights file is one checkpoint under both seeds (a review: its seed pairs were
    listed as repeatability 1.000, p < 0.05): no row for it; the pair with a trained model stays."""
    maps = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    specs = [ModelSpec(name="m", alias="fixed", weights="w.safetensors"), ModelSpec(name="m", recipe="default")]
    outputs = []
    for seed in (0, 1):
        for spec in specs:
            out = GroupOutput(group=SimpleNamespace(dataset=PluginSpec(name="d"), model=spec, seed=seed))
            _keep_map(out, _run("saliency", maps), _batch(0, 4), torch.zeros(4, dtype=torch.long))
            outputs.append(out)
    _write_samples(tmp_path, pd.DataFrame(), outputs)
    table = pd.read_csv(tmp_path / "repeatability.csv", keep_default_na=False)
    assert table[["kind", "model", "a", "b", "metric"]].values.tolist() == [
        ["repeatability", "m", "0", "1", "spearman"], ["repeatability", "m", "0", "1", "ssim"],
        ["reproducibility", "", "fixed", "m", "spearman"], ["reproducibility", "", "fixed", "m", "ssim"]]


def test_one_fixed_model_with_two_seeds_writes_no_repeatability_file(tmp_path):
    maps = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    outputs = []
    for seed in (0, 1):
        spec = ModelSpec(name="m", weights="w.safetensors")
        out = GroupOutput(group=SimpleNamespace(dataset=PluginSpec(name="d"), model=spec, seed=seed))
        _keep_map(out, _run("saliency", maps), _batch(0, 4), torch.zeros(4, dtype=torch.long))
        outputs.append(out)
    _write_samples(tmp_path, pd.DataFrame(), outputs)
    assert not (tmp_path / "repeatability.csv").exists()
