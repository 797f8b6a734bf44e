"""Critical-difference cliques and the saliency gallery."""

from __future__ import annotations

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from faithbench.reports.plots import cd_cliques, plot_saliency_gallery, safe_name


def test_cd_cliques_are_maximal_runs_of_non_significant_pairs():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 2.2, "d": 3.9})
    significant = {frozenset(p) for p in [("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]}
    p = {frozenset(pair): (0.01 if frozenset(pair) in significant else 0.5)
         for pair in [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]}
    assert cd_cliques(ranks, p) == [["a", "b"], ["b", "c"]]
    assert cd_cliques(ranks, {k: 0.9 for k in p}) == [["a", "b", "c", "d"]]
    assert cd_cliques(ranks, {k: 0.001 for k in p}) == []


def test_safe_name_is_never_a_path():
    assert safe_name("../a b/<c>") == "_a_b_c_"
    assert safe_name("...") == "_"


@pytest.mark.parametrize("spatial", [(12, 12), (6, 10, 8)])
def test_gallery_2d_and_3d(tmp_path, spatial):
    rng = np.random.default_rng(0)
    images = rng.random((2, 1, *spatial))
    masks = np.zeros((2, *spatial))
    masks[(slice(None),) + tuple(slice(s // 4, s // 2) for s in spatial)] = 1
    saliency = {"good": masks + 0.1 * rng.random(masks.shape), "signed": rng.normal(size=masks.shape)}
    written = plot_saliency_gallery(images, saliency, masks, tmp_path / "gallery_d_m.png")
    assert [p.name for p in written] == ["gallery_d_m.png", "gallery_d_m.svg"]
    pixels = matplotlib.image.imread(written[0])
    rows = 2 * (3 if len(spatial) == 3 else 1)
    assert pixels.shape[0] == pytest.approx(rows * 2.2 * 110, rel=0.05)  # one row per sample (and plane)
    # image + 2 explainers + two colour bars (one map is signed)
    assert pixels.shape[1] == pytest.approx((3 * 2.2 + 2 * 0.9) * 110, rel=0.05)


def test_gallery_rejects_mismatched_saliency(tmp_path):
    with pytest.raises(ValueError, match=r"expected saliency of 'x' of shape \(2, 8, 8\).*got \(2, 4, 4\)"):
        plot_saliency_gallery(np.zeros((2, 3, 8, 8)), {"x": np.zeros((2, 4, 4))}, None, tmp_path / "g.png")


def _capture(monkeypatch):
    """Keep the figures that plots would save and close."""
    from faithbench.reports import gallery, plots

    figures = []
    real = plots._save

    def keep(fig, stem, tight=False):
        figures.append(fig)
        return real(fig, stem, tight)

    monkeypatch.setattr(plots, "_save", keep)
    monkeypatch.setattr(gallery, "_save", keep)
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    return figures


def test_gallery_has_a_colour_bar_and_each_row_its_label_and_probability(tmp_path, monkeypatch):
    figures = _capture(monkeypatch)
    rng = np.random.default_rng(0)
    plot_saliency_gallery(rng.random((2, 1, 8, 8)), {"gradcam": rng.random((2, 8, 8))}, None, tmp_path / "g.png",
                          labels=["normal", "pneumonia"], probs=[0.12, 0.934])
    (fig,) = figures
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert "sample 0\nlabel: normal\np = 0.12" in ylabels and "sample 1\nlabel: pneumonia\np = 0.93" in ylabels
    bars = [ax for ax in fig.axes if "p99" in ax.get_ylabel()]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, 1.0)  # non-negative map: one bar from 0 to 1
    with pytest.raises(ValueError, match=r"expected probs with one entry per sample \(2\), got 1"):
        plot_saliency_gallery(np.zeros((2, 1, 8, 8)), {"x": np.zeros((2, 8, 8))}, None, tmp_path / "h.png",
                              probs=[0.5])


def test_gallery_rows_are_headed_by_their_sample_ids(tmp_path, monkeypatch):
    """A multi-label image explained for two classes fills two rows: the same id heads both (a review
    read "sample 0" and "sample 1" as two images)."""
    figures = _capture(monkeypatch)
    rng = np.random.default_rng(0)
    plot_saliency_gallery(rng.random((2, 1, 8, 8)), {"gradcam": rng.random((2, 8, 8))}, None, tmp_path / "g.png",
                          labels=["nodule present", "cavity absent"], probs=[0.81, 0.07], ids=["test-004"] * 2)
    ylabels = [ax.get_ylabel() for ax in figures[0].axes if ax.get_ylabel()]
    assert "test-004\nlabel: nodule present\np = 0.81" in ylabels and "test-004\nlabel: cavity absent\np = 0.07" in ylabels
    with pytest.raises(ValueError, match=r"expected ids with one entry per sample \(2\), got 1"):
        plot_saliency_gallery(np.zeros((2, 1, 8, 8)), {"x": np.zeros((2, 8, 8))}, None, tmp_path / "h.png", ids=["a"])


def test_volume_gallery_names_its_planes(tmp_path, monkeypatch):
    """Slices through axes 0, 1, 2 of a volume are titled "axial z", "coronal y", "sagittal x" (the
    canonical layout) or by the planes given: an array as stored (``orientation: as_stored``) got the
    anatomical names, and a RAS file's "axial" panel was a sagittal cut (a held-out review)."""
    from faithbench.types import STORED_PLANES

    figures = _capture(monkeypatch)
    rng = np.random.default_rng(0)
    x, sal = rng.random((1, 1, 6, 8, 10)), {"gradcam": rng.random((1, 6, 8, 10))}
    mask = np.zeros((1, 6, 8, 10), dtype=bool)
    mask[0, 1, 2, 3] = True
    plot_saliency_gallery(x, sal, mask, tmp_path / "c.png")
    plot_saliency_gallery(x, sal, mask, tmp_path / "s.png", planes=STORED_PLANES)
    canonical, stored = ([ax.get_ylabel().split("\n")[1] for ax in fig.axes if ax.get_ylabel().startswith("sample")]
                         for fig in figures)
    assert canonical == ["axial z=1", "coronal y=2", "sagittal x=3"]
    assert stored == ["stored i=1", "stored j=2", "stored k=3"]
    with pytest.raises(ValueError, match="expected planes the names of 3 slices"):
        plot_saliency_gallery(x, sal, mask, tmp_path / "b.png", planes=("a", "b"))


def test_the_run_draws_a_datasets_planes(tmp_path, monkeypatch):
    """The runner hands the dataset's ``planes`` to the gallery (``as_stored`` volumes: stored axes)."""
    import torch

    from faithbench.reports import gallery
    from faithbench.runner.group import Gallery
    from faithbench.runner.run import write_galleries
    from faithbench.types import STORED_PLANES, Batch

    calls = []
    monkeypatch.setattr(gallery, "plot_saliency_gallery", lambda *args, **kwargs: calls.append(kwargs))
    batch = Batch(["a"], torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, dtype=torch.long), {})
    shown = [Gallery("d", "m", batch, {"e": torch.zeros(1, 4, 4, 4)}, planes=planes) for planes in ((), STORED_PLANES)]
    write_galleries(tmp_path, [type("Out", (), {"gallery": g})() for g in shown])
    assert [c["planes"] for c in calls] == [None, STORED_PLANES]


def test_binary_metric_is_drawn_as_proportions_with_wilson_intervals(tmp_path, monkeypatch):
    from faithbench.reports.plots import plot_distributions
    from faithbench.stats.proportions import wilson_ci

    figures = _capture(monkeypatch)
    hits = {"gradcam": [1] * 9 + [0] * 3, "random": [1] * 2 + [0] * 10}
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "pointing_game", "seed": 0, "sample_id": i,
             "value": float(v), "chance": 0.1, "higher_is_better": True} for e, vs in hits.items()
            for i, v in enumerate(vs)]
    rows += [{**r, "metric": "relevance_mass", "value": 0.3 + 0.01 * r["sample_id"]} for r in rows]
    plot_distributions(pd.DataFrame(rows), tmp_path)
    (fig,) = figures
    ax = next(a for a in fig.axes if a.get_title().startswith("pointing_game"))
    widths = sorted(round(p.get_width(), 6) for p in ax.patches if p.get_width() > 0)
    assert widths == [round(2 / 12, 6), 0.75]  # bars at the proportions, not boxes
    ends = sorted(x for line in ax.collections for seg in line.get_segments() for x in (seg[0][0], seg[1][0]))
    expected = sorted([*wilson_ci(9, 12), *wilson_ci(2, 12)])
    assert ends == pytest.approx(expected)
    assert "9/12" in [t.get_text() for t in ax.texts]
    other = next(a for a in fig.axes if a.get_title().startswith("relevance_mass"))
    assert "Wilson" not in other.get_title()  # continuous values keep the box plot


def test_proportion_bars_count_the_maps_of_the_leaderboards_samples(tmp_path, monkeypatch):
    """A held-out review: an explainer whose cell failed under seed 1 (n = 0 on the leaderboard) kept a
    bar of its seed-0 hits (18/24) beside empty box plots."""
    from faithbench.reports.plots import plot_distributions

    figures = _capture(monkeypatch)
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "pointing_game", "seed": seed, "sample_id": i,
             "value": float(i % 4 != 0), "chance": 0.1, "higher_is_better": True}
            for e in ("ok", "failed") for seed in (0, 1) for i in range(8) if not (e == "failed" and seed == 1)]
    rows += [{**r, "metric": "relevance_mass", "value": 0.3 + 0.01 * r["sample_id"]} for r in rows]
    plot_distributions(pd.DataFrame(rows), tmp_path)
    (fig,) = figures
    ax = next(a for a in fig.axes if a.get_title().startswith("pointing_game"))
    assert [t.get_text() for t in ax.texts] == ["12/16"]  # ok's maps over both seeds; none of failed's


def test_box_plots_draw_the_leaderboards_per_sample_values(tmp_path, monkeypatch):
    """A held-out review: with 2 seeds the box plot drew every (seed, sample) map, and its median
    (0.702) was not the leaderboard's (0.600, over the seed-averaged samples)."""
    from faithbench.reports.plots import plot_distributions
    from faithbench.stats import leaderboard

    figures = _capture(monkeypatch)
    seeds = {0: [0.1, 0.2, 0.9, 0.4, 0.5], 1: [0.5, 0.2, 0.1, 0.8, np.nan]}  # sample 4: undefined under seed 1
    rows = [{"dataset": "d", "model": "m", "explainer": e, "metric": "deletion_auc", "seed": seed, "sample_id": i,
             "value": v + (0.05 if e == "b" else 0.0), "chance": np.nan, "higher_is_better": False,
             "category": "faithfulness"}
            for e in ("a", "b") for seed, vs in seeds.items() for i, v in enumerate(vs)]
    plot_distributions(pd.DataFrame(rows), tmp_path)
    (fig,) = figures
    (ax,) = [a for a in fig.axes if a.get_visible()]
    (points,) = ax.collections
    offsets = np.asarray(points.get_offsets())
    a = sorted(offsets[offsets[:, 1] < 0.5, 0])  # explainer a is the first row (y = 0 +- the jitter)
    b = sorted(offsets[offsets[:, 1] > 0.5, 0])
    assert a == pytest.approx([0.2, 0.3, 0.5, 0.6]) and b == pytest.approx([0.25, 0.35, 0.55, 0.65])
    board = leaderboard(pd.DataFrame(rows), control="a", n_resamples=10).set_index("explainer")
    assert np.median(a) == pytest.approx(board.loc["a", "median"])
    assert np.median(b) == pytest.approx(board.loc["b", "median"])


@pytest.mark.parametrize("rows", [1, 16])
def test_the_figure_title_stays_above_the_first_row_of_panels(rows):
    from faithbench.reports.figure import subplots, titled

    fig, axes = subplots(rows, 3, figsize=(14, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_title("panel")
    titled(fig, "phantom_cxr / small_cnn")
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    top = max(ax.get_tightbbox(renderer).y1 for ax in axes[0])  # panels with their titles
    assert title.y0 > top and title.y1 <= fig.bbox.y1  # with suptitle's default y = 0.98 it fell inside row 1


@pytest.mark.parametrize("lines", [1, 3])
def test_a_title_of_several_lines_leaves_a_short_figure_its_panels(lines):
    """A one-row figure 2.76 inches high (the distribution plot of 3 explainers) with the three-line † title of a
    model at chance: the panels keep more than 1 inch (a held-out review: 0.31 inch, the box plots unreadable,
    when a band per title line was reserved besides the one tight_layout keeps), below the title."""
    from faithbench.reports.figure import CHANCE_TITLE, subplots, titled

    fig, axes = subplots(1, 3, figsize=(13.8, 2.76), squeeze=False)
    for ax in axes.flat:
        ax.barh([0, 1, 2], [1, 2, 3])
        ax.set_title("deletion_auc")
        ax.set_xlabel("value")
    titled(fig, "phantom / small_cnn" + ("\n" + CHANCE_TITLE if lines == 3 else ""))
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    assert fig._suptitle.get_text().count("\n") == lines - 1
    assert min(ax.get_position().height for ax in axes.flat) * fig.get_figheight() > 1.0
    assert title.y0 > max(ax.get_tightbbox(renderer).y1 for ax in axes.flat) and title.y1 <= fig.bbox.y1


def test_distribution_panels_follow_the_leaderboard_order():
    from faithbench.reports.tables import metric_order

    frame = pd.DataFrame({"metric": ["sparseness", "pointing_game", "max_sensitivity", "deletion_auc", "mine",
                                     "abpc"],
                          "category": ["complexity", "localization", "robustness", "faithfulness", "custom",
                                       "faithfulness"]})
    assert metric_order(frame) == ["abpc", "deletion_auc", "pointing_game", "max_sensitivity", "sparseness", "mine"]
    assert metric_order(frame.drop(columns="category")) == sorted(frame["metric"])


def test_a_cd_diagram_says_when_its_friedman_test_is_not_significant(tmp_path, monkeypatch):
    """Helper 130: the diagrams drew groups under a Friedman p of 0.16 and 0.41, and a reader placed random 2nd
    from a diagram whose table put it last (the diagram ranks per sample, the table means)."""
    import faithbench.reports.plots as plots

    titles = []
    monkeypatch.setattr(plots, "plot_cd_diagram", lambda ranks, cd, cliques, title, stem: titles.append(title) or [])
    rng = np.random.default_rng(0)
    rows = [{"dataset": "d", "model": "m", "metric": metric, "explainer": e, "seed": 0, "sample_id": f"s{i}",
             "value": float(rng.normal()), "higher_is_better": True, "chance": np.nan, "label": 1, "target": 1}
            for metric in ("a", "b") for e in ("x", "y", "z") for i in range(8)]
    friedman = pd.DataFrame({"dataset": "d", "model": "m", "metric": ["a", "b"], "p": [0.16, 0.01], "cd": 1.2,
                             "n_blocks": 8, "k": 3})
    plots.plot_cd_diagrams(pd.DataFrame(rows), friedman, pd.DataFrame(columns=["dataset", "model", "metric",
                                                                             "explainer_a", "explainer_b", "p"]),
                           tmp_path)
    assert titles[0].endswith("mean rank per sample; Friedman p = 0.16, 8 samples, k = 3\nnot significant "
                              "(p ≥ 0.05): the test finds no difference")
    assert titles[1].endswith("Friedman p = 0.01, 8 samples, k = 3")


def test_plots_are_readable_by_others_whatever_the_umask(tmp_path):
    """Helper 136: under umask 077 the plots were 0600, the tables 0644 as documented."""
    import os

    import matplotlib.pyplot as plt

    from faithbench.reports.figure import save

    old = os.umask(0o077)
    try:
        written = save(plt.figure(), tmp_path / "p")
    finally:
        os.umask(old)
    assert [p.stat().st_mode & 0o777 for p in written] == [0o644, 0o644]
