"""``reliability: N`` re-scores every metric under minor and disruptive perturbations (reliability.csv)."""

import pandas as pd

import faithbench
from faithbench.store import Cache

TINY = {"name": "tiny_reliability", "samples": 8, "batch_size": 8, "reliability": 6,
        "datasets": [{"name": "phantom_cxr", "params": {"n": 96, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 8}, "recipe": {"epochs": 2, "batch_size": 32}}],
        "explainers": ["saliency", "gradcam", "random"],
        "metrics": [{"name": "deletion_auc", "params": {"steps": 8}}, "relevance_mass"]}


def test_a_run_writes_reliability_per_metric(tmp_path):
    faithbench.run(faithbench.load_suite(TINY), out_dir=tmp_path / "out", cache=Cache(tmp_path / "cache"),
                   progress=False, log=lambda m: None)
    table = pd.read_csv(tmp_path / "out" / "reliability.csv")
    assert sorted(table["metric"]) == ["deletion_auc", "relevance_mass"]
    assert table[["nr", "ar"]].notna().all().all()
    assert ((table[["nr", "ar"]] >= 0) & (table[["nr", "ar"]] <= 1)).all().all()
    assert "reliab" in (tmp_path / "out" / "index.html").read_text().lower()


def test_reliability_is_off_by_default(tmp_path):
    faithbench.run(faithbench.load_suite({**TINY, "reliability": 0}), out_dir=tmp_path / "out",
                   cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None, report=False)
    assert not (tmp_path / "out" / "reliability.csv").exists()


def test_two_seeds_give_repeatability_and_samples_give_strata(tmp_path):
    faithbench.run(faithbench.load_suite({**TINY, "reliability": 0, "seeds": [0, 1]}), out_dir=tmp_path / "out",
                   cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    repeat = pd.read_csv(tmp_path / "out" / "repeatability.csv")
    assert set(repeat["kind"]) == {"repeatability"} and set(repeat["explainer"]) == {"saliency", "gradcam", "random"}
    assert (repeat["n"] == 8).all()  # the 8 explained samples of each seed, paired by sample
    samples = pd.read_csv(tmp_path / "out" / "samples.csv")
    assert len(samples) == 16 and samples["confidence"].between(0, 1).all()
    assert set(pd.read_csv(tmp_path / "out" / "strata.csv")["stratum_kind"]) >= {"confidence", "correctness"}
