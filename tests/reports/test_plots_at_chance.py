"""The figures of a model at chance carry the tables' † and no significance wording (a held-out review: the CD
diagram of a model at chance read "Friedman p = 9.8e-05" with Nemenyi groups, and its curves plot zoomed its y
axis to 0.5025-0.52, while every table marked it † and withheld its marks)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faithbench.reports.figure import CHANCE_TITLE, blocks_at_chance


def _board(at_chance: bool) -> pd.DataFrame:
    return pd.DataFrame({"dataset": ["d", "d", "e"], "model": ["m", "m", "m"], "metric": "a",
                         "explainer": ["x", "y", "x"], "model_at_chance": [at_chance, at_chance, False]})


def test_the_blocks_at_chance_are_those_the_tables_mark():
    assert blocks_at_chance(_board(True)) == {("d", "m")}
    assert blocks_at_chance(_board(False)) == set() and blocks_at_chance(None) == set()
    by_class = _board(True).assign(**{"class": ["c1", "c1", "c2"]})
    assert blocks_at_chance(by_class) == {("d", "m", "c1")}
    assert blocks_at_chance(_board(True).astype({"model_at_chance": str})) == {("d", "m")}  # read from a CSV


def test_a_cd_diagram_of_a_model_at_chance_shows_no_significance(tmp_path, monkeypatch):
    import faithbench.reports.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "plot_cd_diagram", lambda ranks, cd, cliques, title, stem: drawn.append(
        (cd, cliques, title)) or [])
    rows = [{"dataset": d, "model": "m", "metric": "a", "explainer": e, "seed": 0, "sample_id": f"s{i}",
             "value": float(i * (k + 1)), "higher_is_better": True, "chance": np.nan}
            for d in ("d", "e") for k, e in enumerate(("x", "y", "z")) for i in range(8)]
    friedman = pd.DataFrame({"dataset": ["d", "e"], "model": "m", "metric": "a", "p": 9.8e-05, "cd": 1.2,
                             "n_blocks": 8, "k": 3})
    nemenyi = pd.DataFrame({"dataset": "d", "model": "m", "metric": "a", "explainer_a": ["x", "x", "y"],
                            "explainer_b": ["y", "z", "z"], "p": [0.5, 0.001, 0.5]})
    plots.plot_cd_diagrams(pd.DataFrame(rows), friedman, nemenyi, tmp_path, chance_blocks={("d", "m")})
    (cd, cliques, title), (cd_e, _, title_e) = drawn
    assert np.isnan(cd) and cliques == [] and "Friedman" not in title and title.endswith("\n" + CHANCE_TITLE)
    assert "mean rank per sample, 8 samples" in title
    assert cd_e == 1.2 and "Friedman p = 9.8e-05" in title_e and "†" not in title_e  # the other model: as before


def test_curves_and_distributions_of_a_model_at_chance_say_so_and_do_not_zoom(tmp_path, monkeypatch):
    from faithbench.reports import plots, plots_curves

    figures = []
    for module, name in ((plots_curves, "save"), (plots, "_save")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda fig, stem, tight=True, real=real: figures.append(fig) or
                            real(fig, stem, tight))
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    curves = pd.DataFrame([{"dataset": "d", "model": "m", "explainer": e, "metric": "deletion_auc", "seed": 0,
                            "sample_id": f"s{i}", "step": step, "fraction": step / 2,
                            "score": 0.51 + 0.005 * step * (e == "a")} for e in ("a", "b") for i in range(4)
                           for step in range(3)])
    plots_curves.plot_perturbation_curves(curves, tmp_path, {"deletion_auc": False}, {("d", "m")})
    plots_curves.plot_perturbation_curves(curves, tmp_path, {"deletion_auc": False})
    results = curves[curves["step"] == 0].assign(value=curves["score"], higher_is_better=False, chance=np.nan)
    plots.plot_distributions(results, tmp_path, {("d", "m")})
    marked, plain, boxes = figures
    assert marked._suptitle.get_text() == "d / m\n" + CHANCE_TITLE and plain._suptitle.get_text() == "d / m"
    assert marked.axes[0].get_ylim()[0] <= 0 and marked.axes[0].get_ylim()[1] >= 1  # 0.51 to 0.52 was the axis
    assert plain.axes[0].get_ylim()[1] < 0.6
    assert boxes._suptitle.get_text().endswith(CHANCE_TITLE)


def test_strata_and_region_figures_of_a_model_at_chance_say_so(tmp_path, monkeypatch):
    from faithbench.reports import plots, plots_medical

    figures = []
    for module in (plots, plots_medical):
        monkeypatch.setattr(module, "_save", lambda fig, stem, tight=True: figures.append(fig) or [])
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    strata = pd.DataFrame([{"dataset": d, "model": "m", "metric": "deletion_auc", "explainer": "a",
                            "stratum_kind": "confidence", "stratum": s, "n": 4, "mean": 0.5, "ci_low": 0.4,
                            "ci_high": 0.6} for d in ("d", "e") for s in ("low", "high")])
    plots_medical.plot_strata(strata, tmp_path, chance_blocks={("d", "m")})
    regions = pd.DataFrame([{"dataset": d, "model": "m", "explainer": "a", "region": "r", "label": label,
                             "seed": 0, "sample_id": f"s{label}", "share": 0.3, "area": 0.2}
                            for d in ("d", "e") for label in (0, 1)])
    plots.plot_region_shares(regions, tmp_path, {("d", "m")})
    strata_d, strata_e, regions_d, regions_e = (fig._suptitle.get_text() for fig in figures)
    assert strata_d == "d / m: by confidence\n" + CHANCE_TITLE and strata_e == "e / m: by confidence"
    assert regions_d.endswith("(mean over samples)\n" + CHANCE_TITLE) and "†" not in regions_e
