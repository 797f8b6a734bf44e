"""The suite's ``control:`` is the reference of ``p_vs_random`` and ``beats_random`` in the report."""

import json

import numpy as np
import pandas as pd

from faithbench.reports.writer import build_report
from faithbench.stats import leaderboard


def _results(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    means = {"gradcam": 0.8, "random": 0.1, "sobel": 0.5}
    for explainer, mean in means.items():
        for i in range(20):
            rows.append({"dataset": "d", "model": "m", "explainer": explainer, "metric": "pointing_game", "seed": 0,
                         "sample_id": f"s{i}", "value": float(np.clip(mean + rng.normal(0, 0.1), 0, 1)),
                         "chance": 0.1, "higher_is_better": True, "category": "localization", "label": 1,
                         "target": 1})
    return pd.DataFrame(rows)


def _run(path, results: pd.DataFrame, control: str, complete_run_folder, formats=("md", "latex", "html")):
    """A run folder of ``results`` whose manifest names ``control``, with its report built."""
    path.mkdir()
    results.to_parquet(path / "results.parquet")
    (path / "manifest.json").write_text(json.dumps({"control": control, "suite": {"control": control}}))
    complete_run_folder(path)
    build_report(path, formats=formats)
    return path


def test_control_in_the_manifest_sets_the_reference(tmp_path, names):
    results = _results(np.random.default_rng(0))
    for control in ("random", "sobel"):
        _run(tmp_path / control, results, control, names["complete"], formats=("md",))
    by = {c: pd.read_csv(tmp_path / c / "leaderboard.csv").set_index("explainer") for c in ("random", "sobel")}
    assert np.isnan(by["random"].loc["random", "p_vs_random"]) and np.isnan(by["sobel"].loc["sobel", "p_vs_random"])
    assert not np.isnan(by["sobel"].loc["random", "p_vs_random"])  # random is now tested against sobel
    assert by["sobel"].loc["random", "beats_random"] == False  # noqa: E712  (0.1 is not better than 0.5)
    assert by["random"].loc["sobel", "beats_random"] == True  # noqa: E712  (0.5 beats the random control)
    expected = leaderboard(results, control="sobel").set_index("explainer")["p_vs_random"]
    assert np.allclose(by["sobel"]["p_vs_random"].sort_index(), expected.sort_index(), equal_nan=True)


def test_the_legend_names_the_control(tmp_path, names):
    results = _results(np.random.default_rng(0))
    for control in ("random", "sobel"):
        run = _run(tmp_path / control, results, control, names["complete"])
        md, tex, page = ((run / name).read_text() for name in ("leaderboard.md", "leaderboard.tex", "index.html"))
        phrase = "the random control" if control == "random" else "the control sobel"
        other = "the control sobel" if control == "random" else "the random control"
        assert f"better than {phrase}" in md and f"better than {phrase}" in page
        assert tex.count(f"better than {phrase}") == 2  # the comment and the caption
        assert other not in md + tex + page
        assert "<dt>control</dt><dd>" + control + "</dd>" in page
        assert "<dt>subset</dt><dd>–</dd>" in page  # a review: `subset: positive` was only in the collapsed JSON
    (run / "manifest.json").write_text(json.dumps({"control": "random", "suite": {"subset": "positive"}}))
    build_report(run, formats=("html",))
    assert "<dt>subset</dt><dd>positive</dd>" in (run / "index.html").read_text()


def test_a_table_whose_maps_explain_other_classes_says_so(tmp_path, names):
    """Helper 130: 10 of a shortcut model's 16 maps explained 'normal' on lesion images, and the pooled
    leaderboard reversed the verdict of the lesion maps alone, with no word at the table."""
    from faithbench.reports.notes import mixed_classes_note

    results = _results(np.random.default_rng(0))
    results.loc[results["sample_id"].isin(["s0", "s1", "s2"]), "target"] = 0  # explained: another class
    run = _run(tmp_path / "mixed", results, "random", names["complete"], formats=("html",))
    page = (run / "index.html").read_text()
    note = "3 of 20 maps (samples x seeds) explain a class other than their sample&#x27;s label"
    assert note in page and page.index(note) > page.index("<h3>d / m</h3>")
    plain = (_run(tmp_path / "plain", _results(np.random.default_rng(0)), "random", names["complete"],
                  formats=("html",)) / "index.html").read_text()
    assert "explain a class other than" not in plain
    assert mixed_classes_note(None, "d", "m") == "" and mixed_classes_note(pd.DataFrame(), "d", "m") == ""


def test_a_multilabel_table_that_explains_a_class_on_images_without_it_says_so():
    """Helper 138: with target {classes: [...]}, a class's cell pooled images with and without it."""
    from faithbench.reports.notes import mixed_classes_note

    samples = pd.DataFrame({"dataset": "d", "model": "m", "seed": 0, "sample_id": [f"s{i}" for i in range(6)] * 2,
                            "target": [0] * 6 + [1] * 6, "class": ["a"] * 6 + ["b"] * 6,
                            "label": [1, 1, 0, 0, 0, 1] + [1] * 6})
    assert mixed_classes_note(samples, "d", "m", "a") == (
        "3 of 6 maps (samples x seeds) explain a on images without it: each cell mixes images with and without "
        "the finding; strata.csv's finding (present / absent) breaks the scores down")
    assert mixed_classes_note(samples, "d", "m", "b") == ""  # present on every image
    assert mixed_classes_note(samples.drop(columns="class"), "d", "m", "a") == ""  # a run before the column
    # a review: a localisation metric has no value without the finding (empty mask), so its cells do not mix
    board = pd.DataFrame({"metric": ["deletion_auc", "deletion_auc", "pointing_game", "relevance_mass"],
                          "n": [6, 6, 3, 3]})
    assert mixed_classes_note(samples, "d", "m", "a", board) == (
        "3 of 6 maps (samples x seeds) explain a on images without it: each cell of deletion_auc (the others have "
        "no value without the finding) mixes images with and without the finding; strata.csv's finding (present / "
        "absent) breaks the scores down")
    assert mixed_classes_note(samples, "d", "m", "a", board[board["metric"] != "deletion_auc"]) == ""
    assert "each cell of deletion_auc mixes" in mixed_classes_note(samples, "d", "m", "a", board.iloc[:2])


def test_the_legend_names_aliased_controls_as_the_tables_do(tmp_path, names):
    # review report6 F5: "the controls ignore the model (random: noise, sobel: ...)" where no row was named so
    results = _results(np.random.default_rng(0))
    results["explainer"] = results["explainer"].replace({"random": "1e3", "sobel": "é中文 <b>x</b>"})
    run = tmp_path / "aliased"
    run.mkdir()
    results.to_parquet(run / "results.parquet")
    explainers = ["gradcam", {"name": "random", "alias": "1e3"}, {"name": "sobel", "alias": "é中文 <b>x</b>"}]
    (run / "manifest.json").write_text(json.dumps({"control": "1e3", "suite": {"control": "1e3",
                                                                               "explainers": explainers}}))
    names["complete"](run)
    build_report(run, formats=("md", "html"))
    md, page = ((run / name).read_text() for name in ("leaderboard.md", "index.html"))
    # review paper4 F3: center_prior did not run, so it is not named
    assert ("the controls ignore the model (1e3 (random): noise, é中文 \\<b\\>x\\</b\\> (sobel): the image's "
            "edges); ") in md
    assert ("the controls ignore the model (1e3 (random): noise, é中文 &lt;b&gt;x&lt;/b&gt; (sobel): the "
            "image&#x27;s edges); ") in page and "center_prior" not in md + page
    assert "(random: noise" not in md + page


def test_the_legend_names_unaliased_controls_by_their_names():
    from faithbench.reports.notes import control_labels, significance_note

    plain = "the controls ignore the model (random: noise, sobel: the image's edges, center_prior: a centred Gaussian)"
    assert plain in significance_note("random", controls=None)  # nothing known: the three built-in ones
    only = significance_note("random", controls=control_labels({"suite": {"explainers": ["random"]}}))
    assert "the controls ignore the model (random: noise); " in only and "sobel" not in only  # review paper4 F3
    twice = control_labels({"suite": {"explainers": ["random", {"name": "random", "alias": "r2", "params": {}}]}})
    assert twice == {"random": ["random", "r2"]}
    assert "(random, r2 (random): noise); " in significance_note("random", controls=twice)


def test_no_mixed_classes_note_when_every_map_explains_one_class():
    """Review 8 (F1): every map of both seeds explained class 0 on images labelled 1, and the note said
    "12 of 12 maps ... each cell mixes the classes" where no cell mixed anything; it says which class every map
    explains instead (a diff review: the first fix dropped the whole note, so a model explaining 'normal' on every
    lesion image went unsaid)."""
    from faithbench.reports.notes import mixed_classes_note

    ids = [f"s{i}" for i in range(6)] * 2
    one = pd.DataFrame({"dataset": "d", "model": "m", "seed": [0] * 6 + [1] * 6, "sample_id": ids,
                        "target": 0, "label": 1})
    assert mixed_classes_note(one, "d", "m") == (
        "12 of 12 maps (samples x seeds) explain a class other than their sample's label (the model's prediction "
        "under target: predicted): every map explains class 0")
    assert mixed_classes_note(one.assign(target=1), "d", "m") == ""  # every map explains its label
    two = one.assign(target=[1] * 6 + [0] * 6)  # seed 0 explains class 1, seed 1 class 0: cells mix
    assert mixed_classes_note(two, "d", "m") == (
        "6 of 12 maps (samples x seeds) explain a class other than their sample's label (the model's prediction "
        "under target: predicted): each cell mixes the classes; strata.csv's explained class breaks the scores down")
