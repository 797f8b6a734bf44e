"""index.html: self-contained, every config/table string escaped, every plot on the page."""

from __future__ import annotations

import html
import re
import shutil

import numpy as np

from faithbench.reports import build_report, plot_saliency_gallery


def test_page_escapes_every_config_string(built, names):
    page = (built / "index.html").read_text()
    assert "<script" not in page.lower()
    assert html.escape(names["script"]) in page
    assert html.escape(names["alias"], quote=True) in page  # "&<>' -> &quot;&amp;&lt;&gt;&#x27;
    assert "&quot;&amp;&lt;&gt;&#x27;" in page
    assert "<b>suite</b>" not in page and "&lt;b&gt;suite&lt;/b&gt;" in page
    assert "needs a &lt;ViT&gt; &amp; 3D" in page  # skipped.csv


def test_page_is_self_contained_with_every_plot(built):
    page = (built / "index.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no CDN, fonts or remote scripts
    pngs = sorted((built / "plots").glob("*.png"))
    assert len(sources) == len(pngs)
    stems = {p.stem for p in pngs}
    assert {"models", "cost"} <= stems
    for prefix in ("curves_", "sanity_", "distributions_", "cd_"):
        assert any(s.startswith(prefix) for s in stems), prefix
    # Suite, models, leaderboard with CI and marks, cost, skipped.
    for text in ("Suite", "Models", "Leaderboard", "Cost", "Skipped cells and metrics", "0.905 ± 0.007",
                 "hit_rate&amp;co ↑", "deletion_auc ↓", "<sup>*</sup>", 'class="best"'):
        assert text in page, text


def test_page_shows_gallery_and_failures_and_skips_missing_sanity(tmp_path, make_run, names):
    run = make_run(tmp_path / "run", mprt=False)
    rng = np.random.default_rng(0)
    plot_saliency_gallery(rng.random((2, 1, 16, 16)), {"good": rng.random((2, 16, 16))}, None,
                          run / "plots" / "gallery_x_cnn.png")
    (run / "failures.csv").write_text("cell,error\nc1,RuntimeError: <boom>\n")
    build_report(run, formats=("html",))
    page = (run / "index.html").read_text()
    assert "Saliency gallery" in page and "plots/gallery_x_cnn.png" in page
    assert "RuntimeError: &lt;boom&gt;" in page
    assert not list((run / "plots").glob("sanity_*")) and "Sanity checks" not in page
    assert not (run / "leaderboard.md").exists() and not (run / "leaderboard.tex").exists()
    # A rebuild keeps the runner's gallery (not derivable from the tables).
    shutil.rmtree(run / "plots" / "gallery_x_cnn.svg", ignore_errors=True)
    build_report(run, formats=("html",))
    assert (run / "plots" / "gallery_x_cnn.png").exists()


def test_empty_run_folder_still_gets_a_page(tmp_path, names):
    import pandas as pd

    from faithbench.reports.writer import RESULT_COLUMNS

    pd.DataFrame(columns=RESULT_COLUMNS).to_parquet(tmp_path / "results.parquet")
    names["complete"](tmp_path)  # what a run without any result writes: empty tables, no samples.csv
    assert not (tmp_path / "samples.csv").exists()
    build_report(tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert "no results" in page and "suite details unavailable" in page  # an empty manifest
    assert list(pd.read_csv(tmp_path / "pairwise.csv").columns)[:5] == ["dataset", "model", "metric", "explainer_a",
                                                                        "explainer_b"]


def test_statistics_legends_say_two_sided_the_effect_sign_and_alpha(built):
    page = (built / "index.html").read_text()
    assert ("<summary>pairwise Wilcoxon signed-rank tests (two-sided, Holm-adjusted; effect size: rank-biserial, "
            "positive when explainer_a scores higher, whatever the direction: on a ↓ metric a positive effect means "
            "a is worse)</summary>") in page
    assert "samples as blocks; cd: Nemenyi critical difference of mean ranks at α = 0.05 (" in page
    assert "Friedman test over the datasets; cd: Nemenyi critical difference of mean ranks at α = 0.05;" in page
