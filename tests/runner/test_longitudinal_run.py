"""End to end: a tiny longitudinal suite runs through the unchanged runner (5D sequences)."""

import pandas as pd

from faithbench.config import suite_from_dict
from faithbench.store import Cache
from faithbench.runner.run import run_suite

TINY = {
    "name": "tiny_longitudinal",
    "samples": 8,
    "batch_size": 8,
    "subset": "positive",
    "datasets": [{"name": "phantom_longitudinal",
                  "params": {"n": 40, "size": 32, "lesion_contrast": 0.6}}],
    "models": [{"name": "temporal_mlp",
                "params": {"backbone_params": {"width": 4, "depth": 2}, "backbone_recipe": {"epochs": 1}},
                "recipe": {"epochs": 2}}],
    "explainers": ["saliency", "temporal_occlusion", "random"],
    "metrics": ["visit_pointing", "temporal_deletion", "temporal_insertion", "visit_pointing_game",
                "pointing_game"],
}


def test_tiny_longitudinal_suite(tmp_path):
    result = run_suite(suite_from_dict(TINY), tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False,
                       log=lambda m: None, report=False)
    assert result.status == "ok"
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    per = results.groupby(["metric", "explainer"]).size()
    assert (per == 8).all() and len(per) == 15  # every sample has a change: all metrics defined
    pointing = results.query("metric == 'visit_pointing'")
    assert set(pointing["value"]) <= {0.0, 1.0}
    assert ((pointing["chance"] > 0) & (pointing["chance"] <= 1)).all()
    curves = pd.read_parquet(tmp_path / "out" / "curves.parquet")
    assert sorted(curves.query("metric == 'temporal_deletion'")["fraction"].round(4).unique()) == \
        [0.0, 0.3333, 0.6667, 1.0]
    assert (tmp_path / "out" / "reliance.csv").exists()
    models = pd.read_csv(tmp_path / "out" / "models.csv")
    assert models["architecture"].tolist() == ["temporal_mlp"]
