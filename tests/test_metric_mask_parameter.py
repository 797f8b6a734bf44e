"""A plugin metric that takes its mask as a ``mask`` parameter (declared in ``defaults``), as the built-in
localisation metrics do, needs that mask: validate warns of one no dataset has and the run skips the metric
there (a held-out review: ``mask: blobb`` passed validate and every cell failed with a bare KeyError)."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
import pytest
import yaml
from torch import Tensor

from faithbench.cli import main
from faithbench.metrics.base import EvalContext, Metric, MetricOutput
from faithbench.registry import metrics
from faithbench.types import Category, MetricInfo


class MaskShare(Metric):
    """The share of the saliency inside the mask named by ``mask``."""

    info = MetricInfo("test_mask_share", higher_is_better=True, category=Category.LOCALIZATION, postprocess="relu")
    defaults: ClassVar[dict[str, Any]] = {"mask": "lesion"}

    def compute(self, ctx: EvalContext, saliency: Tensor) -> MetricOutput:
        inside = ctx.masks[self.params["mask"]].flatten(1)
        s = saliency.flatten(1)
        return MetricOutput(value=(s * inside).sum(1) / s.sum(1).clamp_min(1e-12))


class Declared(MaskShare):
    info = MetricInfo("test_mask_declared", higher_is_better=True, category=Category.LOCALIZATION,
                      requires=("mask:lung_left",), postprocess="relu")


class OtherMeaning(MaskShare):
    """A ``mask`` parameter that is no mask name (a flag): not required."""

    info = MetricInfo("test_mask_flag", higher_is_better=True, category=Category.LOCALIZATION)
    defaults: ClassVar[dict[str, Any]] = {"mask": True}


@pytest.fixture
def mask_metric():
    metrics.register("test_mask_share")(MaskShare)
    try:
        yield
    finally:
        metrics.unregister("test_mask_share")


def test_the_mask_parameter_is_a_required_mask():
    assert MaskShare().required_masks() == ["lesion"]
    assert MaskShare(mask="blobb").required_masks() == ["blobb"]
    assert Declared().required_masks() == ["lung_left", "lesion"]
    assert Declared(mask="lung_left").required_masks() == ["lung_left"]
    assert OtherMeaning().required_masks() == []
    reason, _ = MaskShare(mask="blobb").applicability({"lesion", "spine"}, 2)
    assert reason == "the dataset has no mask 'blobb' (masks: lesion, spine)"


def test_a_mask_no_dataset_has_is_warned_and_skipped_not_a_failure(tmp_path, capsys, mask_metric):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "maskparam", "samples": 8, "batch_size": 8, "reliability": 0,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
        "explainers": ["random"],
        "metrics": [{"name": "test_mask_share", "alias": "typo", "params": {"mask": "lesionn"}}, "test_mask_share"]}))
    main(["validate", str(suite)])
    err = capsys.readouterr().err
    assert "metrics[0] 'typo' needs mask 'lesionn', which dataset 'phantom_cxr' lacks" in err, err
    out = tmp_path / "out"
    code = main(["run", str(suite), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert not (out / "failures.csv").exists()
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped["metric"]) == ["typo"]
    assert skipped["reason"].iloc[0].startswith("the dataset has no mask 'lesionn' (masks: ")
    results = pd.read_csv(out / "results.csv")
    assert set(results["metric"]) == {"test_mask_share"} and len(results) == 8
    assert results["value"].between(0, 1).all()
