"""Critical-difference cliques and the saliency gallery."""

from __future__ import annotations

import matplotlib.image
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
    assert pixels.shape[1] == pytest.approx(3 * 2.2 * 110, rel=0.05)  # image + 2 explainers


def test_gallery_rejects_mismatched_saliency(tmp_path):
    with pytest.raises(ValueError, match=r"expected saliency of 'x' of shape \(2, 8, 8\).*got \(2, 4, 4\)"):
        plot_saliency_gallery(np.zeros((2, 3, 8, 8)), {"x": np.zeros((2, 4, 4))}, None, tmp_path / "g.png")
