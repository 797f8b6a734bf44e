"""Saliency galleries of sequences: one row per visit, not three orthogonal slices."""

import numpy as np
from PIL import Image

from faithbench.reports.plots import plot_saliency_gallery


def test_sequence_gallery_has_a_row_per_visit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 5, 12, 12))  # 5 visits
    sal = {"a": rng.random((2, 5, 12, 12)) - 0.5}
    mask = np.zeros((2, 5, 12, 12), dtype=bool)
    mask[:, 2, 4:7, 4:7] = True
    seq = plot_saliency_gallery(x, sal, mask, tmp_path / "seq.png", time_axis=True)[0]
    vol = plot_saliency_gallery(x, sal, mask, tmp_path / "vol.png")[0]
    h_seq, h_vol = Image.open(seq).size[1], Image.open(vol).size[1]
    assert abs(h_seq / h_vol - 5 / 3) < 0.1  # 2 samples x 5 visits vs 2 samples x 3 planes
