"""The curve and strata plots: bands over samples (a sample's seeds averaged first), ↑/↓ in the panel
titles, a y-axis label, the legend out of the data (a held-out review)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest


def _capture(monkeypatch, module):
    figures = []
    real = module.save if hasattr(module, "save") else module._save
    name = "save" if hasattr(module, "save") else "_save"

    def keep(fig, stem, tight=False):
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
