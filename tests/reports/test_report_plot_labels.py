"""The curve and strata plots: bands over samples (a sample's seeds averaged first), ↑/↓ in the panel
titles, a y-axis label, the legend out of the data, one colour per explainer, long names shortened so
labels stay in their panels (held-out reviews)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest


def _capture(monkeypatch, module):
    figures = []
    real = module.save if hasattr(module, "save") else module._save
    name = "save" if hasattr(module, "save") else "_save"

    def keep(fig, stem, tight=True):
        figures.append(fig)
        return real(fig, stem, tight)

    monkeypatch.setattr(module, name, keep)
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    return figures


def _curves(seed_scores: dict[int, float]) -> pd.DataFrame:
    """Every sample's curve scores seed_scores[seed] at each of 3 steps, for explainers a and b."""
    return pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "metric": "deletion_auc", "seed": seed,
                          "sample_id": f"s{i}", "step": step, "fraction": step / 2, "score": score}
                         for e in ("a", "b") for seed, score in seed_scores.items() for i in range(6)
                         for step in range(3)])


def test_curve_bands_are_over_samples_with_their_seeds_averaged(tmp_path, monkeypatch):
    """Seeds 0.2 and 0.8 on every sample: each sample's mean is 0.5, so the band over samples has no
    width (pooling the (seed, sample) rows drew a band from about 0.2 to 0.8)."""
    from faithbench.reports import plots_curves

    means = plots_curves.seed_means(_curves({0: 0.2, 1: 0.8}))
    assert len(means) == 2 * 6 * 3 and means["score"].tolist() == pytest.approx([0.5] * 36)
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_perturbation_curves(_curves({0: 0.2, 1: 0.8}), tmp_path, {"deletion_auc": False})
    (fig,) = figures
    (ax,) = fig.axes
    bands = [c for c in ax.collections if len(c.get_paths())]
    assert bands and all(np.ptp(p.vertices[:, 1]) == pytest.approx(0.0, abs=1e-12)
                         for c in bands for p in c.get_paths())
    assert ax.get_title() == "deletion_auc ↓"
    fig.canvas.draw()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.y1 < frame.y0  # below the panel, off the curves


def test_curves_with_each_samples_own_fractions_plot_one_point_per_step(tmp_path, monkeypatch):
    """A patch that does not tile the image gives each sample its own fractions (aopc_curve): the mean line
    is drawn at each step's mean fraction, 3 points, not one point per distinct sample fraction (18, jagged)."""
    from faithbench.reports import plots_curves

    curves = _curves({0: 0.5})
    curves["fraction"] += curves["sample_id"].str[1:].astype(int) * 0.01 * (curves["step"] > 0)
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_perturbation_curves(curves, tmp_path, {"deletion_auc": False})
    (fig,) = figures
    (ax,) = fig.axes
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert len(lines) == 2
    for line in lines:
        assert np.asarray(line.get_xdata()).tolist() == pytest.approx([0.0, 0.525, 1.025])


def test_strata_panels_have_a_y_label_and_an_arrow(tmp_path, monkeypatch):
    from faithbench.reports import plots_medical

    rows = [{"dataset": "d", "model": "m", "metric": metric, "explainer": "a", "stratum_kind": "confidence",
             "stratum": stratum, "n": 4, "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "lower": 0.0, "upper": 1.0}
            for metric in ("deletion_auc", "pointing_game") for stratum in ("low", "medium", "high")]
    figures = _capture(monkeypatch, plots_medical)
    plots_medical.plot_strata(pd.DataFrame(rows), tmp_path, {"deletion_auc": False, "pointing_game": True})
    (fig,) = figures
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["deletion_auc ↓", "pointing_game ↑"]
    assert all(ax.get_ylabel() == "mean value (95% CI)" for ax in axes)


LONG = "a_very_long_explainer_name_with_many_underscores_and_more_words"  # a held-out review's 64-character alias
MANY = ["gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "eigencam", LONG, "input_x_gradient",
        "guided_backprop", "IG & co 50% #1", "random", "sobel", "center_prior"]


def _extents(fig, artists):
    fig.canvas.draw()
    return [a.get_window_extent() for a in artists]


def test_long_names_are_shortened_and_stay_in_their_panels(tmp_path, monkeypatch):
    """A held-out review (13 explainers, one alias of 64 characters): the right panel's tick labels lay over the
    left panel's boxes, the cost plot's labels were cut at the figure's edge, the two curve legends overlapped,
    and gallery column titles ran into each other. Plots now print at most 24 characters of a name."""
    from faithbench.reports import gallery, plots, plots_curves
    from faithbench.reports.figure import short_labels

    assert short_labels([LONG, "integrated_gradients_n32_blur", "integrated_gradients_n64_blur", "gradcam"]) == {
        LONG: "a_very_long_exp…re_words", "integrated_gradients_n32_blur": "integrated_grad…n32_blur",
        "integrated_gradients_n64_blur": "integrated_grad…n64_blur", "gradcam": "gradcam"}
    assert list(short_labels(["x" * 30 + "a", "x" * 30 + "b"]).values()) == ["x" * 15 + "…" + "x" * 7 + "a",
                                                                            "x" * 15 + "…" + "x" * 7 + "b"]
    clash = ["x" * 40 + "end", "x" * 41 + "end"]  # one label for both: each keeps its whole name
    assert short_labels(clash) == {n: n for n in clash}
    rng = np.random.default_rng(0)
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": m, "seed": 0, "sample_id": i,
             "value": rng.random(), "chance": np.nan, "higher_is_better": True, "category": "c"}
            for e in MANY for m in ("deletion_auc", "insertion_auc") for i in range(5)]
    figures = _capture(monkeypatch, plots)
    plots.plot_distributions(pd.DataFrame(rows), tmp_path)
    (fig,) = figures
    left, right = fig.axes[:2]
    assert "a_very_long_exp…re_words" in [t.get_text() for t in right.get_yticklabels()]
    labels = _extents(fig, right.get_yticklabels())
    assert min(b.x0 for b in labels) > left.get_window_extent().x1  # not over the left panel's boxes
    cost = pd.DataFrame({"dataset": "d", "model": "m", "explainer": MANY, "explain_seconds": 1.0,
                         "metric_seconds": 1.0, "total_seconds": np.arange(13.0)})
    plots.plot_cost(cost, tmp_path)
    (ax,) = figures[1].axes
    assert min(b.x0 for b in _extents(figures[1], ax.get_yticklabels())) >= 0  # inside the figure
    curves = pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "metric": m, "seed": 0, "sample_id": i,
                            "step": s, "fraction": s / 2, "score": rng.random()}
                           for e in MANY for m in ("deletion_auc", "insertion_auc") for i in range(3)
                           for s in range(3)])
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_perturbation_curves(curves, tmp_path)
    first, second = _extents(figures[0], [ax.get_legend() for ax in figures[0].axes])
    assert first.x1 < second.x0  # the two legends side by side, not over each other
    figures = _capture(monkeypatch, gallery)
    gallery.plot_saliency_gallery(rng.random((1, 1, 8, 8)), {e: rng.random((1, 8, 8)) for e in MANY[5:8]}, None,
                                  tmp_path / "gallery_d_m.png")
    row = figures[0].axes[:4]
    assert [ax.get_title() for ax in row] == ["image", "eigencam", "a_very_long_exp…re_words", "input_x_gradient"]
    titles = _extents(figures[0], [ax.title for ax in row])
    assert all(a.x1 < b.x0 for a, b in zip(titles, titles[1:]))


def test_strata_colours_are_the_curves_and_their_legend_is_off_the_panels(tmp_path, monkeypatch):
    """A held-out review: the strata plots cycled matplotlib's 10 colours, so 13 explainers shared three, unlike
    the curves plot; and the legend sat in the first panel over a point. One colour per explainer, the curves'
    own, and the legend beside the panels."""
    from faithbench.reports import plots_curves, plots_medical
    from faithbench.reports.figure import explainer_colours

    rows = [{"dataset": "d", "model": "m", "metric": metric, "explainer": e, "stratum_kind": "confidence",
             "stratum": stratum, "n": 4, "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "lower": 0.0, "upper": 1.0}
            for metric in ("deletion_auc", "insertion_auc", "pointing_game", "relevance_mass") for e in MANY
            for stratum in ("low", "medium", "high")]
    figures = _capture(monkeypatch, plots_medical)
    plots_medical.plot_strata(pd.DataFrame(rows), tmp_path)
    (fig,) = figures
    first = fig.axes[0]
    strata = {c.get_label(): c.lines[0].get_color() for c in first.containers}  # the error bars' lines
    shown = ["a_very_long_exp…re_words" if name == LONG else name for name in sorted(MANY)]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == shown == list(strata)
    assert len(set(map(str, strata.values()))) == 13
    curves = pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "metric": "deletion_auc", "seed": 0,
                            "sample_id": "s", "step": s, "fraction": s / 2, "score": 0.5}
                           for e in MANY for s in range(3)])
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_perturbation_curves(curves, tmp_path)
    legend = figures[0].axes[0].get_legend()
    drawn = {t.get_text(): h.get_color() for h, t in zip(legend.legend_handles, legend.get_texts())}
    assert {k: tuple(v) for k, v in strata.items()} == {k: tuple(v) for k, v in drawn.items()}
    assert strata["sobel"] == explainer_colours(MANY)["sobel"]
    box = _extents(fig, [fig.legends[0]])[0]
    assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes if ax.get_visible())
    assert first.get_legend() is None


def test_sanity_panels_name_their_randomisation_and_show_lines_on_top_of_each_other(tmp_path, monkeypatch):
    """A held-out review: mprt_independent's x label said "blocks randomised" (each point is one block alone),
    and random lay exactly under sobel (both 1.0), out of sight."""
    from faithbench.reports import plots_curves

    curves = pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "metric": m, "seed": 0, "sample_id": "s",
                            "step": k, "fraction": k / 4, "score": 1.0 if e in ("random", "sobel") else 1 - k / 4}
                           for e in ("gradcam", "random", "sobel") for m in ("mprt_cascading", "mprt_independent")
                           for k in range(5)])
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_sanity_curves(curves, tmp_path)
    (fig,) = figures
    cascading, independent = fig.axes
    assert cascading.get_xlabel() == "blocks randomised, from the output (fraction)"
    assert independent.get_xlabel() == "block k of K randomised alone (k / K, from the output)"
    lines = [line for line in cascading.get_lines() if len(line.get_xdata()) == 5]  # the data, not the legend's
    assert [line.get_linewidth() for line in lines] == [3.0, 2.0, 1.0]  # each thinner than the one below it
    assert len({(line.get_marker(), line.get_linestyle()) for line in lines}) == 3


def test_curves_use_colour_blind_colours_and_a_line_style_and_marker_each(tmp_path, monkeypatch):
    """A held-out review: tab10 with solid lines only: green and red (the deuteranopia pair) side by side, and one
    IG's curve hidden under another's."""
    import seaborn as sns

    from faithbench.reports import plots_curves
    from faithbench.reports.figure import explainer_colours

    assert list(explainer_colours(["b", "a", "c"]).values()) == sns.color_palette("colorblind", 3)
    figures = _capture(monkeypatch, plots_curves)
    curves = pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "metric": "deletion_auc", "seed": 0,
                            "sample_id": "s", "step": s, "fraction": s / 40, "score": 0.5}
                           for e in ("a", "b", "c") for s in range(41)])
    plots_curves.plot_perturbation_curves(curves, tmp_path)
    lines = [line for line in figures[0].axes[0].get_lines() if line.get_label() in ("a", "b", "c")]
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-."]
    assert [line.get_marker() for line in lines] == ["o", "s", "^"]
    assert [line.get_markevery() for line in lines] == [(0, 5), (1, 5), (2, 5)]  # 41 steps: 8 or 9 markers each


def test_temporal_curves_are_labelled_in_visits_not_features(tmp_path, monkeypatch):
    """A held-out review: temporal_deletion/insertion, whose x is k / T visits (padding slots included), were
    labelled "fraction of features perturbed"; the labels follow the manifest's metrics, aliases included."""
    from faithbench.reports import plots_curves

    manifest = {"suite": {"metrics": [{"name": "deletion_auc", "alias": None},
                                      {"name": "temporal_deletion", "alias": "temporal_deletion_remove"},
                                      "temporal_insertion", {"name": "no_such_plugin_metric", "alias": None}]}}
    visits = "fraction of visits perturbed (k / T, padding slots included)"
    xlabels = plots_curves.curve_xlabels(manifest)
    assert xlabels == {"temporal_deletion_remove": visits, "temporal_insertion": visits}
    curves = pd.concat([_curves({0: 0.5}).assign(metric=m)
                        for m in ("deletion_auc", "temporal_deletion_remove", "temporal_insertion")])
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_perturbation_curves(curves, tmp_path, xlabels=xlabels)
    (fig,) = figures
    assert {ax.get_title(): ax.get_xlabel() for ax in fig.axes} == {
        "deletion_auc": "fraction of features perturbed", "temporal_deletion_remove": visits,
        "temporal_insertion": visits}


def test_curves_not_of_the_target_score_have_their_own_y_label(tmp_path, monkeypatch):
    """A held-out review: every curves_* panel read "target score", also morf_aopc/lerf_aopc's score drops,
    abpc's insertion − deletion, irof's f(x^(k)) / f(x) and sensitivity_n's correlations (negative values
    under "target score"); each metric's class now names its curve's y, aliases included."""
    from faithbench.reports import plots_curves

    drop = "score drop f(x) − f(x^(k))"
    manifest = {"suite": {"metrics": ["deletion_auc", {"name": "morf_aopc", "alias": None},
                                      {"name": "lerf_aopc", "alias": "lerf_fine"}, "abpc", "irof", "sensitivity_n",
                                      "insertion_auc", {"name": "no_such_plugin_metric", "alias": None}]}}
    xlabels, ylabels = plots_curves.curve_labels(manifest)
    assert xlabels == {}
    assert ylabels == {"morf_aopc": drop, "lerf_fine": drop, "abpc": "insertion − deletion (target score)",
                       "irof": "normalised score f(x^(k)) / f(x)",
                       "sensitivity_n": "correlation ρ_n (Σ saliency vs score drop)"}
    curves = pd.concat([_curves({0: 0.5}).assign(metric=m) for m in ("deletion_auc", "morf_aopc")])
    figures = _capture(monkeypatch, plots_curves)
    plots_curves.plot_perturbation_curves(curves, tmp_path, xlabels=xlabels, ylabels=ylabels)
    (fig,) = figures
    assert {ax.get_title(): ax.get_ylabel() for ax in fig.axes} == {"deletion_auc": "target score",
                                                                    "morf_aopc": drop}


def test_the_report_passes_each_metrics_curve_labels(tmp_path, monkeypatch, make_run):
    """build_report reads the y labels (and x labels) from the manifest's metrics for the curves figure."""
    import json

    from faithbench.reports import build_report, plots_curves

    run = make_run(tmp_path / "run", mprt=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["suite"]["metrics"].append({"name": "morf_aopc", "alias": None})
    (run / "manifest.json").write_text(json.dumps(manifest))
    curves = pd.read_parquet(run / "curves.parquet")
    pd.concat([curves, curves.assign(metric="morf_aopc")]).to_parquet(run / "curves.parquet", index=False)
    figures = _capture(monkeypatch, plots_curves)
    build_report(run, formats=("md",))
    (fig,) = figures
    assert {ax.get_title().rstrip(" ↑↓"): ax.get_ylabel() for ax in fig.axes} == {
        "deletion_auc": "target score", "morf_aopc": "score drop f(x) − f(x^(k))"}
