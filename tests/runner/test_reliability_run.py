"""Metric reliability is on by default (``reliability: 8``): every metric re-scored under a minor
and a disruptive perturbation, ``reliability.csv`` and a report section; ``reliability: 0`` turns
it off and the report says so."""

import json

import pandas as pd
import pytest

import faithbench
import faithbench.runner.group as group_module
from faithbench.runner.reliability import reliability_rows
from faithbench.stats.reliability import RELIABILITY_COLUMNS
from faithbench.store import Cache

# no ``reliability`` key: the default (8). 8 samples in one batch: the 8 re-scored are the cell's
# whole first batch, so the original condition is reused from it. 6 epochs: the CNN learns a little.
TINY = {"name": "tiny_reliability", "samples": 8, "batch_size": 8, "subset": "positive",
        "datasets": [{"name": "phantom_cxr", "params": {"n": 160, "size": 32}}],
        "models": [{"name": "small_cnn", "params": {"width": 8},
                    "recipe": {"epochs": 6, "batch_size": 32, "lr": 0.003}}],
        "explainers": ["saliency", "gradcam", "random", "sobel"],
        "metrics": [{"name": "deletion_auc", "params": {"steps": 8}}, "relevance_mass", "sparseness", "random_logit"]}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default run, with each group's reliability scores computed twice: reusing the cell's
    rows for the original condition (what the runner does) and re-explaining and re-scoring it."""
    root = tmp_path_factory.mktemp("reliability")
    captured = {}

    def both(store, group, data, runs, first, samples, progress=None):
        captured["reused"] = reliability_rows(group, data, runs, first, samples)
        captured["fresh"] = reliability_rows(group, data, runs, first, samples, recompute_original=True)
        batch, target = first
        k = min(samples, len(batch))
        captured["maps"] = {run.cell.explainer.label: (run.preview, run.explainer(data.model, batch.x[:k], target[:k]))
                            for run in runs}
        return captured["reused"]

    logged = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(group_module, "cached_reliability_rows", both)
        faithbench.run(faithbench.load_suite(TINY), out_dir=root / "out", cache=Cache(root / "cache"),
                       progress=False, log=logged.append)
    return root / "out", captured, logged


def _means(rows):
    frame = pd.DataFrame(rows)
    return frame.groupby(["metric", "condition", "explainer"])["value"].mean()


def test_a_default_run_writes_reliability_per_metric(default_run):
    out, captured, logged = default_run
    table = pd.read_csv(out / "reliability.csv")
    assert list(table.columns) == ["dataset", "model"] + RELIABILITY_COLUMNS
    # random_logit is a randomisation check: left out, and said so in the log and the manifest
    assert sorted(table["metric"]) == ["deletion_auc", "relevance_mass", "sparseness"]
    # random and sobel are controls: left out (a map that ignores the model cannot react to its randomisation)
    assert (table["n_samples"] == 8).all() and (table["n_explainers"] == 2).all()
    assert {r["explainer"] for r in captured["reused"].rows} == {"saliency", "gradcam"}
    assert ((table[["nr", "ar"]] >= 0) & (table[["nr", "ar"]] <= 1)).all().all()
    info = json.loads((out / "manifest.json").read_text())["reliability"]
    assert info["status"] == "computed" and info["samples"] == 8 and list(info["skipped"]) == ["random_logit"]
    assert any(line.startswith("reliability: not re-scored (a randomisation check") and line.endswith(": random_logit")
               for line in logged)
    page = (out / "index.html").read_text()
    assert "Metric reliability" in page and "Not re-scored: random_logit" in page
    markdown = (out / "leaderboard.md").read_text()
    assert "## Metric reliability" in markdown and "| phantom\\_cxr | small\\_cnn | sparseness |" in markdown


def test_the_original_condition_reproduces_the_main_results(default_run):
    """Reusing the cell's rows is exact: the re-explained maps equal the cell's, the re-scored
    values equal the reused ones, and the reused ones are the rows of results.csv."""
    out, captured, _ = default_run
    for explainer, (preview, again) in captured["maps"].items():  # every cell's, the controls' too
        assert preview.shape[0] == 4 and (again[:4].cpu() == preview).all(), explainer
    key = ["explainer", "metric", "sample_id"]

    def original(scores):
        frame = pd.DataFrame(scores.rows)
        return frame[frame["condition"] == "original"].set_index(key)["value"].sort_index()

    reused, fresh = original(captured["reused"]), original(captured["fresh"])
    assert len(reused) == 2 * 3 * 8
    pd.testing.assert_series_equal(reused, fresh, check_exact=True)
    results = pd.read_csv(out / "results.csv", dtype={"sample_id": str}).set_index(key)["value"]
    both = reused.dropna()
    assert (results.loc[both.index] == both).all()


def test_a_reinitialised_model_flips_a_ranking(default_run):
    _, captured, _ = default_run
    means = _means(captured["reused"].rows)
    # Grad-CAM of the trained CNN is the sparsest map; of the re-initialised one, the least sparse
    sparse = means.loc["sparseness"].unstack("explainer")
    assert sparse.loc["original"].idxmax() == "gradcam" and sparse.loc["minor"].idxmax() == "gradcam"
    assert sparse.loc["disruptive"].idxmin() == "gradcam"


def test_reliability_off_writes_none_and_the_report_says_so(tmp_path):
    faithbench.run(faithbench.load_suite({**TINY, "reliability": 0}), out_dir=tmp_path / "out",
                   cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    assert not (tmp_path / "out" / "reliability.csv").exists()
    line = "Metric reliability is off (the suite sets reliability: 0)."
    assert line in (tmp_path / "out" / "index.html").read_text()
    assert line in (tmp_path / "out" / "leaderboard.md").read_text()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["reliability"]["status"] == "off"


def test_one_explainer_cannot_rank_and_the_report_says_so(tmp_path):
    suite = {**TINY, "samples": 4, "batch_size": 4, "explainers": ["saliency", "random"], "metrics": ["sparseness"]}
    faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "out", cache=Cache(tmp_path / "cache"),
                   progress=False, log=lambda m: None)
    assert not (tmp_path / "out" / "reliability.csv").exists()
    note = json.loads((tmp_path / "out" / "manifest.json").read_text())["reliability"]["note"]
    assert note == ("Metric reliability could not be computed: a ranking needs at least 2 explainers besides the "
                    "controls; phantom_cxr / small_cnn has 1.")
    assert note in (tmp_path / "out" / "index.html").read_text()


def test_two_seeds_give_repeatability_and_samples_give_strata(tmp_path):
    suite = {**TINY, "reliability": 0, "seeds": [0, 1], "samples": 8, "batch_size": 8, "subset": "all",
             "explainers": ["saliency", "gradcam", "random"], "metrics": ["relevance_mass"],
             "models": [{"name": "small_cnn", "params": {"width": 8}, "recipe": {"epochs": 2, "batch_size": 32}}]}
    faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "out",
                   cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    repeat = pd.read_csv(tmp_path / "out" / "repeatability.csv")
    # the random control ignores the model: its agreement across seeds means nothing, so it is left out
    assert set(repeat["kind"]) == {"repeatability"} and set(repeat["explainer"]) == {"saliency", "gradcam"}
    samples = pd.read_csv(tmp_path / "out" / "samples.csv")
    # target: predicted: a sample the two seeds predict differently is explained for different
    # classes, left out and counted; the others are paired by sample
    targets = samples.pivot(index="sample_id", columns="seed", values="target")
    differs = int((targets[0] != targets[1]).sum())
    assert (repeat["n_target_differs"] == differs).all() and (repeat["n"] == 8 - differs).all()
    assert len(samples) == 16 and samples["confidence"].between(0, 1).all()
    assert set(pd.read_csv(tmp_path / "out" / "strata.csv")["stratum_kind"]) >= {"confidence", "correctness"}


def test_a_rerun_reads_the_reliability_scores_from_the_cache(tmp_path, monkeypatch, capsys):
    """A held-out review: the re-scoring was never cached, so every resume redid it (5.9 s of a fully
    cached rerun that took 0.74 s without it). Now a rerun reads it, also with the explainers and
    metrics in another order or under other aliases (a review: either re-scored every cell and the
    closing line said "computed 0"); a change of an explainer's parameters re-scores."""
    import yaml

    import faithbench.runner.reliability as reliability_module
    from faithbench.cli import main

    ig = {"name": "integrated_gradients", "params": {"n_steps": 4}}
    suite = {**TINY, "samples": 4, "batch_size": 4, "explainers": ["saliency", ig],
             "metrics": ["sparseness", {"name": "deletion_auc", "params": {"steps": 4}}]}
    cache = Cache(tmp_path / "cache")
    quiet = {"cache": cache, "progress": False, "log": lambda m: None}
    first = faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "a", **quiet)
    assert first.computed["reliability"] == 1 and first.cached["reliability"] == 0
    reordered = {**suite, "explainers": suite["explainers"][::-1], "metrics": suite["metrics"][::-1]}
    # the same values computed in the other order (every draw seeded from the seed, not a cell's position)
    faithbench.run(faithbench.load_suite(reordered), out_dir=tmp_path / "fresh", cache=Cache(tmp_path / "fresh_cache"),
                   progress=False, log=lambda m: None)
    table = (tmp_path / "a" / "reliability.csv").read_bytes()
    assert (tmp_path / "fresh" / "reliability.csv").read_bytes() == table

    def refuse(*args, **kwargs):
        raise AssertionError("re-scored, not read from the cache")

    entries = sorted((tmp_path / "cache" / "reliability").iterdir())
    with monkeypatch.context() as patch:
        patch.setattr(reliability_module, "reliability_rows", refuse)
        faithbench.run(faithbench.load_suite(suite), out_dir=tmp_path / "b", **quiet)
        assert (tmp_path / "b" / "reliability.csv").read_bytes() == table
        (tmp_path / "reordered.yaml").write_text(yaml.safe_dump(reordered))
        capsys.readouterr()
        assert main(["run", str(tmp_path / "reordered.yaml"), "--out", str(tmp_path / "c"), "--cache",
                     str(tmp_path / "cache"), "--quiet"]) == 0
        assert (tmp_path / "c" / "reliability.csv").read_bytes() == table
        err = capsys.readouterr().err
        assert ("computed 0 checkpoints, 0 saliency batches, 0 score batches, 0 reliability groups (2 saliency and "
                "4 score batches, 1 reliability group read from the cache)") in err
        manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
        assert manifest["computed"]["reliability"] == 0 and manifest["cached"]["reliability"] == 1
        # other aliases: the rows read carry the new labels (the dataset's too: a review found a renamed
        # dataset's old label in reliability.csv)
        renamed = {**suite, "datasets": [{**TINY["datasets"][0], "alias": "ph"}],
                   "explainers": [{"name": "saliency", "alias": "grad"}, ig],
                   "metrics": [{"name": "sparseness", "alias": "sparse2"}, suite["metrics"][1]]}
        faithbench.run(faithbench.load_suite(renamed), out_dir=tmp_path / "d", **quiet)
    assert sorted((tmp_path / "cache" / "reliability").iterdir()) == entries  # no new entry
    before = pd.read_csv(tmp_path / "a" / "reliability.csv")
    after = pd.read_csv(tmp_path / "d" / "reliability.csv")
    assert set(after["dataset"]) == {"ph"} and sorted(after["metric"]) == ["deletion_auc", "sparse2"]
    before = before.assign(dataset="ph", metric=before["metric"].replace({"sparseness": "sparse2"}))
    pd.testing.assert_frame_equal(after.sort_values("metric", ignore_index=True),
                                  before.sort_values("metric", ignore_index=True), check_exact=True)
    calls = []
    real = reliability_module.reliability_rows
    monkeypatch.setattr(reliability_module, "reliability_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    changed = {**suite, "explainers": ["saliency", {**ig, "params": {"n_steps": 5}}]}  # another cell: another key
    again = faithbench.run(faithbench.load_suite(changed), out_dir=tmp_path / "e", **quiet)
    assert calls == [1] and again.computed["reliability"] == 1 and again.cached["reliability"] == 0
