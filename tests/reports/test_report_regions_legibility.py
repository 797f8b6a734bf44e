"""The Regions section as a reader sees it (review regions7): float noise prints 0.000 as in leaderboard.md (D1),
the region-share heat map of a fine grid stays a usable figure (D2), and the paired tests' legend says that
Holm's m counts the pairs of a failed explainer that have no row."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faithbench.reports.medical import strata_html
from faithbench.reports.regions import regions_html
from faithbench.reports.tables import leaderboard_markdown

RDC = "region_deletion_correlation"
# review run t2d: random's 16 values {-1, -0.8, ..., 0.8} have mean 0, 2.79e-09 after float32 storage
MEANS = {"sobel": 0.2750000022351742, "saliency": 0.1375000039115548, "gradcam": 0.01250000111758709,
         "random": 2.7939677238464355e-09}
LOWS = {"sobel": 0.075, "saliency": -0.18749999911524357, "gradcam": -0.2625, "random": -0.2750000013038516}


def _board() -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "model": "m", "metric": RDC, "explainer": e, "mean": mean,
                          "ci_low": LOWS[e], "ci_high": 0.2378125099698078, "n": 16, "chance": -0.024999997578561306,
                          "rank": rank, "higher_is_better": True, "beats_random": False, "category": "faithfulness",
                          "p_vs_random": 0.3 if e != "random" else np.nan}
                         for rank, (e, mean) in enumerate(MEANS.items(), start=1)])


def _rows(page: str, header: str) -> list[list[str]]:
    table = page[page.index(header):]
    table = table[table.index("<tbody>"):table.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("</tr>") if "<td" in row]


# -- D1 ---------------------------------------------------------------------------------------------------------------

def test_fixed_columns_prints_float_noise_as_zero_and_keeps_each_metric_its_decimals():
    from faithbench.reports.markup import fixed_columns

    frame = pd.concat([_board()[["dataset", "model", "metric", "explainer", "mean", "ci_low", "rank"]],
                       pd.DataFrame({"dataset": "d", "model": "m", "metric": "small", "explainer": ["a", "b"],
                                     "mean": [0.000551, 0.0102], "ci_low": [0.0001, 0.009], "rank": [2, 1]})])
    out = fixed_columns(frame)
    assert list(out["mean"]) == ["0.275", "0.138", "0.013", "0.000", "0.00055", "0.01020"]
    assert list(out["ci_low"]) == ["0.075", "-0.187", "-0.263", "-0.275", "0.00010", "0.00900"]
    assert list(out["rank"]) == [1, 2, 3, 4, 2, 1]  # other columns as they were
    assert fixed_columns(frame.assign(mean=[1e-9, -2e-9, 0.0, 3e-9, 1e-9, 2e-9]))["mean"].iloc[0] == "1.00e-09"


def test_region_deletion_correlation_table_prints_the_leaderboard_cells():
    board = _board()
    rows = _rows(regions_html(board, pd.DataFrame(), None), "Region deletion correlation")
    assert [row[2:6] for row in rows] == [["sobel", "0.275", "0.075", "0.238"],
                                          ["saliency", "0.138", "-0.187", "0.238"],
                                          ["gradcam", "0.013", "-0.263", "0.238"],
                                          ["random", "0.000", "-0.275", "0.238"]]
    assert {row[6] for row in rows} == {"-0.025"} and "e-09" not in regions_html(board, pd.DataFrame(), None)
    markdown = leaderboard_markdown(board)
    for row in rows:  # the same text as leaderboard.md's cell "mean [ci_low, ci_high]"
        assert f"{row[3]} [{row[4]}, {row[5]}]" in markdown


def test_strata_table_prints_float_noise_as_zero():
    table = pd.DataFrame({"dataset": "d", "model": "m", "metric": RDC, "explainer": "saliency",
                          "stratum_kind": "confidence", "stratum": ["low", "medium", "high"], "n": [6, 5, 5],
                          "mean": [0.4666666666, -0.2, 2.9802322387695312e-09], "ci_low": [0.1, -0.6, -0.64],
                          "ci_high": [0.8, 0.2, 0.68], "lower": [0.837, 0.967, 0.983], "upper": [0.964, 0.983, 0.995]})
    rows = _rows(strata_html(table), "<table")
    assert [row[7:10] for row in rows] == [["0.467", "0.100", "0.800"], ["-0.200", "-0.600", "0.200"],
                                           ["0.000", "-0.640", "0.680"]]
    assert [row[10] for row in rows] == ["0.837", "0.967", "0.983"]  # the strata's edges are no means


# -- D2 ---------------------------------------------------------------------------------------------------------------

def _regions(n_regions: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "region": f"grid_r{r // 8}_c{r % 8}",
                          "label": label, "seed": 0, "sample_id": f"s{label}{i}", "share": rng.random() / n_regions,
                          "area": 1 / n_regions}
                         for e in ("saliency", "random") for label in (0, 1) for i in range(2)
                         for r in range(n_regions)])


def _figure(regions: pd.DataFrame, tmp_path, monkeypatch):
    from faithbench.reports import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, stem, tight=True: figures.append(fig) or [])
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    plots.plot_region_shares(regions, tmp_path)
    (fig,) = figures
    return fig


def test_a_fine_grid_gives_a_capped_figure_without_cell_numbers(tmp_path, monkeypatch):
    fig = _figure(_regions(64), tmp_path, monkeypatch)  # 8 x 8: the old figure was 1 + 0.75 * 64 * 2 + 3 = 100 in
    assert fig.get_size_inches()[0] == 64.0  # 1 + 0.75 in x 40 regions x 2 panels + 3
    assert not any(ax.texts for ax in fig.axes)  # no "0.00" in every cell
    assert "64 regions: no values in the cells (regions.csv has them)" in fig._suptitle.get_text()
    assert all(mesh.get_rasterized() for ax in fig.axes[:2] for mesh in ax.collections)
    from faithbench.reports.plots import ANNOTATED_REGIONS

    assert ANNOTATED_REGIONS == 40


def test_a_small_grid_keeps_its_numbers_and_width(tmp_path, monkeypatch):
    fig = _figure(_regions(12), tmp_path, monkeypatch)
    assert fig.get_size_inches()[0] == 1.0 + 0.75 * 12 * 2 + 3.0
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 3 * 12 and set(texts[-12:]) == {"0.08"}  # 3 rows (2 explainers, area) x 12; area 1/12
    assert "regions:" not in fig._suptitle.get_text()


# -- Holm's family with a failed explainer ----------------------------------------------------------------------------

def _pairwise() -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "model": "m", "score": "share", "region": "heart", "samples": "negative",
                          "explainer_a": a, "explainer_b": b, "statistic": 0.0, "p": 0.0625, "p_holm": 0.625,
                          "effect_size": -1.0, "n": 5} for a, b in (("gradcam", "random"), ("random", "saliency"))])


def test_the_pairwise_legend_names_the_failed_explainers_that_count_in_holm():
    failures = pd.DataFrame([{"cell": "d/m/boom/seed0", "dataset": "d", "model": "m", "explainer": "boom", "seed": 0,
                              "stage": "explain", "metric": np.nan},
                             {"cell": "e/m/x/seed0", "dataset": "e", "model": "m", "explainer": "other", "seed": 0,
                              "stage": "explain", "metric": np.nan}])
    page = regions_html(_board(), pd.DataFrame(), _pairwise(), failures=failures)
    legend = page[page.index('href="region_pairwise.csv"'):]
    legend = legend[:legend.index("</p>")]
    assert "Holm&#x27;s m counts the planned pairs" in legend and "(d / m: boom)" in legend and "other" not in legend
    assert "Holm&#x27;s m" not in regions_html(_board(), pd.DataFrame(), _pairwise())
    other_metric = failures.assign(stage="metric", metric="deletion_auc")  # not in region_pairwise's family
    assert "Holm&#x27;s m" not in regions_html(_board(), pd.DataFrame(), _pairwise(), failures=other_metric)
    in_regions = failures.assign(stage="metric", metric="regions")
    assert "(d / m: boom)" in regions_html(_board(), pd.DataFrame(), _pairwise(), failures=in_regions)
