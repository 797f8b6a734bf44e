"""Saliency galleries of sequences: one row per visit, not three orthogonal slices."""

from types import SimpleNamespace

import numpy as np
import pytest
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


def _drawn(monkeypatch, *args, **kwargs):
    """The figure a gallery call draws (kept instead of only saved)."""
    from faithbench.reports import gallery

    figures, real = [], gallery._save
    monkeypatch.setattr(gallery, "_save", lambda fig, stem, tight=True: figures.append(fig) or real(fig, stem, tight))
    gallery.plot_saliency_gallery(*args, **kwargs)
    (fig,) = figures
    return fig


def _sequence():
    """One sequence of 4 slots: padding (zeros), then 3 visits, the last one visit 1 made brighter."""
    rng = np.random.default_rng(1)
    x = np.zeros((1, 1, 4, 10, 10))
    x[0, 0, 1] = 0.2 + 0.15 * rng.random((10, 10))
    x[0, 0, 2] = 0.25 + 0.15 * rng.random((10, 10))
    x[0, 0, 3] = 0.5 * x[0, 0, 1] + 0.4  # a review's case: median 0.54 against 0.28, drawn identically
    return x


def test_sequence_images_share_one_grey_scale_from_their_real_visits(tmp_path, monkeypatch):
    x = _sequence()
    sal = {"a": np.random.default_rng(2).random((1, 4, 10, 10))}
    fig = _drawn(monkeypatch, x, sal, None, tmp_path / "g.png", time_axis=True, visits=[[False, True, True, True]])
    shown = [fig.axes[2 * t].images[0].get_array().data for t in range(4)]  # the image column, one row per slot
    lo, hi = np.percentile(x[0, :, 1:], [1, 99])  # the real visits only, padding left out
    for t in range(4):
        np.testing.assert_allclose(shown[t], np.clip((x[0, 0, t] - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert np.median(shown[3]) - np.median(shown[1]) > 0.4  # the brighter visit is drawn brighter
    assert np.abs(shown[3] - shown[1]).max() > 0.1
    assert shown[1].min() < 0.02  # the padding's zeros did not set the dark end of the scale
    assert np.all(shown[0] == 0)


def test_sequence_rows_are_titled_padding_and_visits_from_one(tmp_path, monkeypatch):
    x = _sequence()
    sal = {"a": np.ones((1, 4, 10, 10))}
    fig = _drawn(monkeypatch, x, sal, None, tmp_path / "g.png", time_axis=True, ids=["P06/v1.png"],
                 visits=np.array([[False, True, True, True]]))
    rows = [fig.axes[2 * t].get_ylabel().split("\n") for t in range(4)]
    assert [r[1] for r in rows] == ["padding", "visit 1", "visit 2", "visit 3"]
    assert all(r[0] == "P06/v1.png" for r in rows)
    fig = _drawn(monkeypatch, x, sal, None, tmp_path / "h.png", time_axis=True)  # no visits given: all real
    assert [fig.axes[2 * t].get_ylabel().split("\n")[1] for t in range(4)] == [f"visit {t}" for t in (1, 2, 3, 4)]
    with pytest.raises(ValueError, match=r"expected visits of shape \(1, 4\) \(N, T\), got \(1, 3\)"):
        plot_saliency_gallery(x, sal, None, tmp_path / "b.png", time_axis=True, visits=[[True] * 3])


def test_an_all_zero_map_shows_the_image_alone(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.random((1, 1, 8, 8))
    fig = _drawn(monkeypatch, x, {"zeros": np.zeros((1, 8, 8)), "a": rng.random((1, 8, 8))}, None, tmp_path / "g.png")
    image, zeros, a = fig.axes[:3]
    assert len(zeros.images) == 1 and len(a.images) == 2  # no overlay darkens the image under the zero map
    np.testing.assert_array_equal(zeros.images[0].get_array(), image.images[0].get_array())


def test_the_run_hands_a_sequences_real_visits_to_the_gallery(tmp_path, monkeypatch):
    """The runner's gallery of phantom_longitudinal: its padding frames (the ``valid`` mask) reach the drawing."""
    import torch

    from faithbench.datasets.longitudinal import PhantomLongitudinal
    from faithbench.reports import gallery
    from faithbench.runner.gallery import gallery_rows, make_gallery
    from faithbench.runner.run import write_galleries
    from faithbench.types import Batch

    data = PhantomLongitudinal("test", n=12, size=32, seq_len=4, max_visits=3)
    batch = Batch.collate([data[i] for i in range(12)])
    valid = torch.tensor([data[i].meta["valid"] for i in range(12)])
    assert not valid[:4].all()  # some sequences of the gallery (its first 4) are padded
    spec = SimpleNamespace(label="d")
    info = SimpleNamespace(classes=data.classes, multilabel=False, planes=(), mask_roles=data.mask_roles)
    run = SimpleNamespace(cell=SimpleNamespace(explainer=spec), preview=torch.zeros(12, 4, 32, 32))
    k = gallery_rows(batch, "label", data.classes, multilabel=False)
    assert k == 4  # one row per sequence: the first 4
    shown = make_gallery(SimpleNamespace(dataset=spec, model=spec), info, (batch, batch.label), torch.full((12,), 0.5),
                         [run], k)
    assert shown.visits.tolist() == valid[:len(shown.batch)].tolist()
    calls = []
    monkeypatch.setattr(gallery, "plot_saliency_gallery", lambda *args, **kwargs: calls.append(kwargs))
    write_galleries(tmp_path, [SimpleNamespace(gallery=shown)])
    assert calls[0]["time_axis"] is True and calls[0]["visits"].tolist() == valid[:len(shown.batch)].tolist()
