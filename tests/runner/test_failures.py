"""Failure isolation: a failing explainer or metric is recorded and the sweep goes on (exit 3)."""

import json

import pandas as pd
import yaml

from faithbench.cli import EXIT_PARTIAL, main

SUITE = {
    "name": "failing",
    "samples": 8,
    "batch_size": 4,
    "datasets": [{"name": "phantom_cxr", "params": {"n": 32, "size": 32}}],
    "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1, "batch_size": 32}}],
    "explainers": ["test_boom", "random", "test_nan_map", "test_oom", "sobel"],
    "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}, "test_inf_metric"],
}


def test_failing_cells_are_recorded_and_the_sweep_goes_on(tmp_path, capsys, failing_plugins):
    suite = tmp_path / "failing.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    out = tmp_path / "out"
    code = main(["run", str(suite), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL == 3
    assert "partial run: 5 failures in 5 cells" in err

    failures = pd.read_csv(out / "failures.csv").set_index(["explainer", "stage"])
    assert list(pd.read_csv(out / "failures.csv").columns) == [
        "cell", "dataset", "model", "explainer", "seed", "stage", "metric", "error_type", "message"]
    boom = failures.loc[("test_boom", "explain")]
    assert boom["error_type"] == "RuntimeError" and "always fails" in boom["message"]
    assert boom["cell"] == "phantom_cxr/small_cnn/test_boom/seed0" and boom["seed"] == 0
    nan = failures.loc[("test_nan_map", "explain")]
    assert nan["error_type"] == "FloatingPointError" and "NaN or Inf saliency" in nan["message"]
    oom = failures.loc[("test_oom", "explain")]
    assert oom["error_type"] == "OutOfMemory" and "Tried to allocate" in oom["message"]
    # the Inf metric fails in every cell that got as far as metrics, and only that metric
    for explainer in ("random", "sobel"):
        row = failures.loc[(explainer, "metric")]
        assert row["metric"] == "test_inf_metric" and row["error_type"] == "FloatingPointError"
        assert "returned Inf for sample" in row["message"]
    assert len(failures) == 5

    results = pd.read_csv(out / "results.csv")
    # the healthy (explainer, metric) pairs are complete; nothing of a failed one is left half-written
    assert results.groupby(["explainer", "metric"]).size().to_dict() == {
        ("random", "deletion_auc"): 8, ("sobel", "deletion_auc"): 8}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["failed_cells"] == 5
    assert (out / "leaderboard.csv").exists()


def test_a_clean_rerun_removes_failures_csv(tmp_path, capsys, failing_plugins):
    out, cache = tmp_path / "out", tmp_path / "cache"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SUITE, "explainers": ["test_boom", "random"],
                                   "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}))
    assert main(["run", str(bad), "--out", str(out), "--cache", str(cache), "--quiet"]) == 3
    assert (out / "failures.csv").exists()
    assert "partial run: 1 failures in 1 cells" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({**SUITE, "explainers": ["random"],
                                    "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}))
    assert main(["run", str(good), "--out", str(out), "--cache", str(cache), "--quiet"]) == 0
    assert not (out / "failures.csv").exists()
    assert "partial" not in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"


def _mutating_and_clean(tmp_path, capsys, mutating: dict, clean: dict) -> list:
    """Run both suites (each with its own cache): the output folders; the first exits 3, the second 0."""
    outs = []
    for name, suite in (("mutating", mutating), ("clean", clean)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(suite))
        outs.append(tmp_path / name)
        code = main(["run", str(path), "--out", str(outs[-1]), "--cache", str(tmp_path / f"cache_{name}"), "--quiet"])
        assert code == (3 if name == "mutating" else 0)
    capsys.readouterr()
    return outs


def test_a_plugin_that_changes_the_model_fails_its_cell_and_the_others_score_the_original(tmp_path, capsys,
                                                                                         failing_plugins):
    """A held-out review: an explainer that zeroed the weights in place left every later cell of the
    group scored (and cached) on the zeroed model. Now the change is found after the explain (or
    score), the model restored and that cell (or metric) fails; the others equal a run without it."""
    mutating = {**SUITE, "explainers": ["test_mutator", "random"],
                "metrics": ["test_mutating_metric", {"name": "deletion_auc", "params": {"steps": 4}}]}
    clean = {**SUITE, "explainers": ["random"], "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    outs = _mutating_and_clean(tmp_path, capsys, mutating, clean)
    failures = pd.read_csv(outs[0] / "failures.csv")
    assert sorted(zip(failures["explainer"], failures["stage"], failures["metric"].fillna(""))) == [
        ("random", "metric", "test_mutating_metric"), ("test_mutator", "explain", "")]
    assert failures["error_type"].tolist() == ["ModelModified"] * 2
    assert all("changed the model's weights or buffers in place" in m for m in failures["message"])
    got, want = (pd.read_csv(out / "results.csv").query("metric == 'deletion_auc'") for out in outs)
    assert len(got) == 8 and got["value"].tolist() == want["value"].tolist()


def test_a_plugin_that_changes_its_input_fails_and_the_others_score_the_original(tmp_path, capsys, failing_plugins):
    """A held-out review: an explainer that zeroed the shared batch, or a metric that filled the
    masks or the saliency, changed every later cell's and metric's scores (pointing game 1.0 -> 0.0)
    and cached them, exit 0. Now the change is found, undone, and that cell (or metric) fails."""
    metrics = [{"name": "deletion_auc", "params": {"steps": 4}}, "relevance_mass"]
    mutating = {**SUITE, "explainers": ["test_input_mutator", "sobel"],
                "metrics": ["test_input_mutating_metric", *metrics]}
    clean = {**SUITE, "explainers": ["sobel"], "metrics": metrics}
    outs = _mutating_and_clean(tmp_path, capsys, mutating, clean)
    failures = pd.read_csv(outs[0] / "failures.csv")
    assert sorted(zip(failures["explainer"], failures["stage"], failures["metric"].fillna(""))) == [
        ("sobel", "metric", "test_input_mutating_metric"), ("test_input_mutator", "explain", "")]
    assert failures["error_type"].tolist() == ["InputModified"] * 2
    messages = dict(zip(failures["stage"], failures["message"]))
    assert "explainer 'test_input_mutator' changed its input in place (x)" in messages["explain"]
    assert "changed its input in place (masks, ctx.x, " in messages["metric"]
    assert "masks['lesion']" in messages["metric"] and "saliency" in messages["metric"]
    got, want = (pd.read_csv(out / "results.csv").sort_values(["metric", "seed", "sample_id"]) for out in outs)
    assert set(got["metric"]) == {"deletion_auc", "relevance_mass"} and len(got) == len(want) > 8
    assert got["value"].tolist() == want["value"].tolist()


def test_a_plugin_that_changes_the_model_and_its_input_leaves_neither_changed(tmp_path, capsys, failing_plugins):
    """A diff review: the model's check raised first and the input's never ran, so the next cells were
    scored on the zeroed batch. A metric that changes x and then raises (also in the reliability
    re-scoring, which runs on the first batch) leaves it restored too."""
    metrics = [{"name": "deletion_auc", "params": {"steps": 4}}]
    explainers = ["saliency", "gradcam"]  # not controls: the reliability check leaves those out
    mutating = {**SUITE, "explainers": ["test_double_mutator", *explainers],
                "metrics": ["test_raising_input_metric", *metrics]}
    clean = {**SUITE, "explainers": explainers, "metrics": metrics}
    outs = _mutating_and_clean(tmp_path, capsys, mutating, clean)
    failures = pd.read_csv(outs[0] / "failures.csv")
    explain = failures[failures["stage"] == "explain"]
    assert explain["error_type"].tolist() == ["ModelModified"]  # the input's restore is a note on it
    raised = failures[failures["stage"] == "metric"]
    assert set(raised["explainer"]) == set(explainers) and set(raised["error_type"]) == {"RuntimeError"}
    got, want = (pd.read_csv(out / "results.csv").sort_values(["explainer", "seed", "sample_id"]) for out in outs)
    assert len(got) == 16 and got["value"].tolist() == want["value"].tolist()
    got, want = (pd.read_csv(out / "reliability.csv") for out in outs)
    assert len(got) == 1 and got["nr"].tolist() == want["nr"].tolist() and got["ar"].tolist() == want["ar"].tolist()


def test_an_api_run_in_which_every_cell_failed_has_status_failed(tmp_path, failing_plugins):
    """A review: every cell failed and `faithbench.run` said "partial" (0 rows), where the CLI exits 1, not 3."""
    import faithbench

    suite = {**SUITE, "samples": 4, "explainers": ["test_boom"], "metrics": [{"name": "deletion_auc",
                                                                              "params": {"steps": 4}}]}
    result = faithbench.run(suite, out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False,
                            log=lambda _line: None)
    assert result.status == "failed" and result.results.empty and len(result.failures) == 1
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["status"] == "failed"
    partial = faithbench.run({**suite, "explainers": ["test_boom", "random"]}, out_dir=tmp_path / "out2",
                             cache=tmp_path / "cache", progress=False, log=lambda _line: None)
    assert partial.status == "partial" and len(partial.results) == 4


def test_a_malformed_map_is_named_by_the_suites_alias(tmp_path, failing_plugins):
    """Review plugins5 F2: a malformed map's message named the registry name only (`lp_bad: expected saliency
    of shape ...`), so with several aliases of one plugin only the `explainer` column told which one failed."""
    import faithbench

    entries = [{"name": "test_half_map", "alias": "half_a"}, {"name": "test_nan_map", "alias": "nan_a"}, "random"]
    suite = {**SUITE, "samples": 4, "explainers": entries,
             "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    result = faithbench.run(suite, out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False,
                            log=lambda _line: None)
    failures = pd.read_csv(tmp_path / "out" / "failures.csv").set_index("explainer")["message"]
    assert failures["half_a"] == "half_a (test_half_map): expected saliency of shape (4, 32, 32), got (4, 16, 16)"
    assert failures["nan_a"].startswith("nan_a (test_nan_map) returned NaN or Inf saliency for the batch starting")
    assert len(result.failures) == 2 and len(result.results) == 4


def test_a_multi_line_message_is_kept_whole_on_one_csv_line():
    # review report6 F7: failures.csv kept "kaboom <b>bad</b>, "quoted"" and lost "second line"
    import io

    from faithbench.runner.errors import error_summary

    exc = RuntimeError('kaboom <b>bad</b>, "quoted"\nsecond line\r\n\n  third, indented  \n')
    kind, message = error_summary(exc)
    assert (kind, message) == ("RuntimeError", 'kaboom <b>bad</b>, "quoted" | second line | third, indented')
    text = pd.DataFrame([{"error_type": kind, "message": message}]).to_csv(index=False)
    assert text.count("\n") == 2  # the header and one row
    assert pd.read_csv(io.StringIO(text))["message"].tolist() == [message]
    assert error_summary(ValueError("a\n" + "b" * 600))[1] == "a | " + "b" * 495 + "…"  # 500 characters at most
