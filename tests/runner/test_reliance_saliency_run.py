"""A run on the shortcut phantom writes each explainer's mass on the marker and the lesion beside
the model's measured reliance (reliance_samples.csv, reliance_saliency.csv, the report's section)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from faithbench.config import suite_from_dict
from faithbench.runner.run import run_suite
from faithbench.store import Cache

SHORTCUT = {
    "name": "tiny_shortcut", "samples": 24, "batch_size": 12, "reliability": 0,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 400, "size": 32, "shortcut": 0.9}}],
    "models": [{"name": "small_cnn", "params": {"width": 8}, "recipe": {"epochs": 6, "batch_size": 32, "lr": 0.003}}],
    "explainers": ["saliency", "gradcam", "random"],
    "metrics": ["relevance_mass", {"name": "relevance_mass", "alias": "mass_on_marker", "params": {"mask": "marker"}}],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliance")
    suite = suite_from_dict(SHORTCUT)
    for out in ("a", "b"):  # b: every map from the cache
        run_suite(suite, root / out, cache=Cache(root / "cache"), progress=False, log=lambda m: None)
    return root


def test_mass_is_the_relevance_mass_metric_and_drops_are_reliance_csv(runs):
    out = runs / "a"
    samples = pd.read_csv(out / "reliance_samples.csv", dtype={"sample_id": str})
    results = pd.read_csv(out / "results.csv", dtype={"sample_id": str})
    for metric, evidence in (("relevance_mass", "lesion"), ("mass_on_marker", "marker")):
        metric_values = results[results["metric"] == metric].set_index(["explainer", "sample_id"])["value"]
        mass = samples[samples["evidence"] == evidence].set_index(["explainer", "sample_id"])["mass"]
        assert len(mass) > 0 and mass.sort_index().equals(metric_values.sort_index()), metric
    reliance = pd.read_csv(out / "reliance.csv").set_index("evidence")
    one = samples[samples["explainer"] == "saliency"].groupby("evidence")["drop"]
    assert one.mean().to_numpy() == pytest.approx(reliance.loc[one.mean().index, "mean_drop"].to_numpy(), abs=1e-7)
    assert (one.size() == reliance.loc[one.size().index, "n"]).all()


def test_the_summary_reads_the_samples_and_the_shortcut_model_relies_on_the_marker(runs):
    out = runs / "a"
    samples = pd.read_csv(out / "reliance_samples.csv", dtype={"sample_id": str})
    table = pd.read_csv(out / "reliance_saliency.csv").set_index(["explainer", "evidence"])
    assert (table.xs("marker", level="evidence")["reliance_rank"] == 1).all()  # the model uses the shortcut
    for (explainer, evidence), row in table.iterrows():
        part = samples[(samples["explainer"] == explainer) & (samples["evidence"] == evidence)].dropna(subset="mass")
        assert row["n"] == len(part) and row["mass"] == pytest.approx(part["mass"].mean())
        rho = stats.spearmanr(part["mass"], part["drop"]).statistic
        assert row["spearman"] == pytest.approx(rho) or (np.isnan(row["spearman"]) and np.isnan(rho))
    # the suite's control (random) gives each row its reference ρ in the CSV too (a docs review: only the HTML had it)
    control = table.xs("random", level="explainer")["spearman"]
    for (explainer, evidence), row in table.iterrows():
        assert row["control_spearman"] == pytest.approx(control[evidence], nan_ok=True)
    page = (out / "index.html").read_text()
    assert "Saliency vs measured reliance" in page and "reliance_saliency.csv" in page


def test_a_rerun_from_the_cache_writes_the_same_tables(runs):
    for name in ("reliance_samples.csv", "reliance_saliency.csv"):
        assert (runs / "a" / name).read_bytes() == (runs / "b" / name).read_bytes(), name
