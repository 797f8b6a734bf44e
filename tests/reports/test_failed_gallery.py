"""The saliency gallery marks the column of an explainer whose cell failed after its first batch (a held-out review,
report11 D3: flaky_grad's maps were shown like a scored explainer's, while failures.csv had the cell and no table a
row), in the PNG (its title) and in the HTML caption."""

from __future__ import annotations

import html
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from faithbench.reports.gallery import FAILED_TITLE, failed_explainers, gallery_failure_note
from faithbench.reports.html import render_html

FAILURES = pd.DataFrame([
    {"cell": "cxr/cnn/flaky/seed1", "dataset": "cxr", "model": "cnn", "explainer": "flaky", "seed": 1,
     "stage": "explain", "metric": np.nan, "error_type": "RuntimeError", "message": "boom"},
    {"cell": "cxr/cnn/saliency/seed0", "dataset": "cxr", "model": "cnn", "explainer": "saliency", "seed": 0,
     "stage": "metric", "metric": "deletion_auc", "error_type": "RuntimeError", "message": "boom"},
    {"cell": "ct/cnn/gradcam/seed0", "dataset": "ct", "model": "cnn", "explainer": "gradcam", "seed": 0,
     "stage": "explain", "metric": np.nan, "error_type": "RuntimeError", "message": "boom"},
])


def test_failed_explainers_are_the_explain_failures_of_the_pair():
    assert failed_explainers(FAILURES, "cxr", "cnn") == ["flaky"]  # under seed 1; saliency lost one metric only
    assert failed_explainers(FAILURES, "ct", "cnn") == ["gradcam"]
    assert failed_explainers(FAILURES, "cxr", "vit") == []
    assert failed_explainers(None, "cxr", "cnn") == [] and failed_explainers(pd.DataFrame(), "cxr", "cnn") == []


def test_the_caption_names_the_failed_cells_of_the_drawn_galleries():
    note = gallery_failure_note(FAILURES, ["gallery_cxr_cnn"])
    assert note == ('failed cells (failures.csv: cxr / cnn / flaky (seed 1, explain)): the column of such an '
                    f'explainer, titled "{FAILED_TITLE}", holds maps made before its cell failed; it has no rows in '
                    "any table")
    assert "ct / cnn / gradcam" in gallery_failure_note(FAILURES, ["gallery_cxr_cnn", "gallery_ct_cnn"])
    assert gallery_failure_note(FAILURES, ["gallery_mri_cnn"]) == ""
    assert gallery_failure_note(None, ["gallery_cxr_cnn"]) == ""


def test_the_png_titles_the_failed_column(tmp_path, monkeypatch):
    from faithbench.reports import gallery

    figures, real = [], gallery._save
    monkeypatch.setattr(gallery, "_save", lambda fig, stem, tight=True: figures.append(fig) or real(fig, stem, tight))
    rng = np.random.default_rng(0)
    maps = {name: rng.random((2, 8, 8)) for name in ("saliency", "flaky", "random")}
    gallery.plot_saliency_gallery(rng.random((2, 1, 8, 8)), maps, None, tmp_path / "g.png", failed=["flaky"])
    gallery.plot_saliency_gallery(rng.random((2, 1, 8, 8)), maps, None, tmp_path / "h.png")
    marked, plain = ([ax.get_title() for ax in fig.axes[:4]] for fig in figures)
    assert marked == ["image", "saliency", f"flaky\n{FAILED_TITLE}", "random"]
    assert plain == ["image", "saliency", "flaky", "random"]
    assert figures[0].axes[2].title.get_color() != figures[0].axes[1].title.get_color()


def test_the_run_passes_its_failures_to_the_gallery(tmp_path, monkeypatch):
    from faithbench.reports import gallery
    from faithbench.runner.run import write_galleries

    calls = []
    monkeypatch.setattr(gallery, "plot_saliency_gallery", lambda *args, **kwargs: calls.append(kwargs))
    shown = SimpleNamespace(dataset="cxr", model="cnn", previews={"flaky": torch.zeros(1, 8, 8)},
                            batch=SimpleNamespace(x=torch.zeros(1, 1, 8, 8), ids=["s0"]), outline=None, visits=None,
                            planes=(), labels=["lesion"], probs=[0.5])
    write_galleries(tmp_path, [SimpleNamespace(gallery=shown)], FAILURES)
    write_galleries(tmp_path, [SimpleNamespace(gallery=shown)])
    assert [c["failed"] for c in calls] == [["flaky"], []]


def test_the_html_gallery_caption_warns(tmp_path):
    (tmp_path / "plots").mkdir()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "plots" / "gallery_cxr_cnn.png")
    board = pd.DataFrame({"dataset": ["cxr"], "model": ["cnn"], "metric": ["x"], "explainer": ["saliency"],
                          "mean": [0.5], "ci_low": [0.4], "ci_high": [0.6], "median": [0.5], "n": [4],
                          "chance": [np.nan], "rank": [1.0], "n_common": [4], "higher_is_better": [True],
                          "category": ["faithfulness"], "p_vs_random": [np.nan], "beats_random": [pd.NA],
                          "p_worse_than_random": [np.nan], "worse_than_random": [pd.NA], "model_at_chance": [False]})
    empty = pd.DataFrame()
    page = render_html(root=tmp_path, manifest=None, board=board, models=empty, models_table=empty, cost_table=empty,
                       skipped=None, failures=FAILURES, friedman=empty, overall=empty, agreement=empty, pairwise=empty)
    section = html.unescape(page[page.index('<section id="gallery">'):])
    section = section[:section.index("</section>")]
    assert gallery_failure_note(FAILURES, ["gallery_cxr_cnn"]) + "." in section
    assert "gradcam" not in section  # ct / cnn has no gallery here


def test_only_a_failure_under_the_gallery_seed_marks_its_column(tmp_path, monkeypatch):
    """A diff review: the gallery is drawn for the suite's first seed, but a failure under seed 1 only titled the
    seed-0 column "failed" and the caption said it had no rows, while its seed-0 rows were in every table."""
    from faithbench.reports import gallery
    from faithbench.runner.run import write_galleries

    assert failed_explainers(FAILURES, "cxr", "cnn", seed=0) == [] and failed_explainers(FAILURES, "ct", "cnn", 0)
    assert failed_explainers(FAILURES, "cxr", "cnn", seed=1) == ["flaky"]
    assert gallery_failure_note(FAILURES, ["gallery_cxr_cnn"], seed=0) == ""
    assert "flaky (seed 1, explain)" in gallery_failure_note(FAILURES, ["gallery_cxr_cnn"], seed=1)
    calls = []
    monkeypatch.setattr(gallery, "plot_saliency_gallery", lambda *args, **kwargs: calls.append(kwargs))
    shown = SimpleNamespace(dataset="cxr", model="cnn", previews={"flaky": torch.zeros(1, 8, 8)},
                            batch=SimpleNamespace(x=torch.zeros(1, 1, 8, 8), ids=["s0"]), outline=None, visits=None,
                            planes=(), labels=["lesion"], probs=[0.5])
    write_galleries(tmp_path, [SimpleNamespace(gallery=shown)], FAILURES, 0)
    write_galleries(tmp_path, [SimpleNamespace(gallery=shown)], FAILURES, 1)
    assert [c["failed"] for c in calls] == [[], ["flaky"]]
    (tmp_path / "plots").mkdir()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "plots" / "gallery_cxr_cnn.png")
    empty = pd.DataFrame()
    for seeds, warned in (([0, 1], False), ([1, 0], True)):
        page = render_html(root=tmp_path, manifest={"seeds": seeds}, board=pd.DataFrame(), models=empty,
                           models_table=empty, cost_table=empty, skipped=None, failures=FAILURES, friedman=empty,
                           overall=empty, agreement=empty, pairwise=empty)
        section = html.unescape(page[page.index('<section id="gallery">'):])
        assert ("flaky (seed 1, explain)" in section[:section.index("</section>")]) == warned, seeds
