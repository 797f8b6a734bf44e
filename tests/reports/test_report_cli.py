"""``faithbench report RUN_DIR`` rebuilds everything from the tidy tables."""

from __future__ import annotations

import re

from faithbench.cli import main

DERIVED = ["leaderboard.csv", "pairwise.csv", "friedman.csv", "nemenyi.csv", "overall_ranks.csv",
           "overall_nemenyi.csv", "agreement.csv"]


def test_report_rebuilds_identical_tables(built, tmp_path, names, capsys):
    run = names["copy_inputs"](built, tmp_path / "copy")
    assert main(["report", str(run)]) == 0
    first = {name: (run / name).read_bytes() for name in DERIVED + ["leaderboard.md", "leaderboard.tex"]}
    assert main(["report", str(run)]) == 0
    for name, data in first.items():
        assert (run / name).read_bytes() == data, name
        assert (built / name).read_bytes() == data, name  # same as the original build
    assert (run / "index.html").exists() and (run / "plots" / "models.png").exists()
    printed = capsys.readouterr().out.splitlines()
    assert str(run / "index.html") in printed


def test_report_format_picks_the_document(built, tmp_path, names):
    run = names["copy_inputs"](built, tmp_path / "copy")
    assert main(["report", str(run), "--format", "latex"]) == 0
    assert (run / "leaderboard.tex").exists() and (run / "leaderboard.csv").exists()
    assert not (run / "leaderboard.md").exists() and not (run / "index.html").exists()


def test_report_rejects_non_run_folders(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    for path in (tmp_path, tmp_path / "missing", tmp_path / "file.txt"):
        assert main(["report", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        why = "no such folder" if path.name == "missing" else "not a faithbench run folder"
        assert len(err.splitlines()) == 1 and why in err


def test_report_shows_its_progress_unless_quiet(built, tmp_path, names, capsys, monkeypatch):
    """A held-out walkthrough: `faithbench report` was silent for a minute while it drew the plots."""
    run = names["copy_inputs"](built, tmp_path / "copy")
    monkeypatch.delenv("FAITHBENCH_QUIET", raising=False)
    assert main(["report", str(run), "--format", "md"]) == 0
    err = capsys.readouterr().err
    assert "report copy: " in err
    for step in ("perturbation curves", "distributions", "critical differences", "model performance", "strata"):
        assert step in err, step
    counts = re.findall(r"\| (\d+)/(\d+) \[", err)
    assert counts[-1][0] == counts[-1][1] and int(counts[-1][1]) >= 5  # it ends at its total: every group counted
    assert main(["report", str(run), "--format", "md", "--quiet"]) == 0
    assert "report copy" not in capsys.readouterr().err
    monkeypatch.setenv("FAITHBENCH_QUIET", "1")
    assert main(["report", str(run), "--format", "md"]) == 0
    assert "report copy" not in capsys.readouterr().err


def test_a_report_without_the_runs_gallery_says_it_cannot_redraw_it(built, tmp_path, names, capsys):
    """A held-out review: `faithbench report` after plots/ was deleted dropped the saliency gallery from
    index.html, its nav link too, and said nothing; the gallery is drawn by `faithbench run` alone."""
    import numpy as np

    from faithbench.reports import plot_saliency_gallery
    from faithbench.reports.gallery import gallery_stem

    run = names["copy_inputs"](built, tmp_path / "copy")  # no plots/: as after `rm -r plots`
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    pair = f"{names['alias']} / cnn"
    assert (f"faithbench: warning: no saliency gallery for {pair}: the saliency gallery is drawn by `faithbench "
            "run` from the maps, which the tables do not hold, and is not rebuilt by `faithbench report`; rerun the "
            "suite into this folder (its cached maps make it quick)\n") in err
    page = (run / "index.html").read_text()
    assert '<a href="#gallery">Saliency gallery</a>' in page
    assert '<section id="gallery"><h2>Saliency gallery</h2><p class="note">none for cxr &quot;&amp;&lt;&gt;&#x27; ' \
           "v1 / cnn: the saliency gallery is drawn by `faithbench run`" in page
    rng = np.random.default_rng(0)  # the run's gallery there: no warning, no note
    plot_saliency_gallery(rng.random((2, 1, 8, 8)), {"good": rng.random((2, 8, 8))}, None,
                          run / "plots" / f"{gallery_stem(names['alias'], 'cnn')}.png")
    assert main(["report", str(run), "--format", "html"]) == 0
    assert "gallery" not in capsys.readouterr().err
    page = (run / "index.html").read_text()
    assert "none for" not in page and f"plots/{gallery_stem(names['alias'], 'cnn')}.png" in page


def test_the_manifest_says_whether_the_report_is_complete(built, tmp_path, names, monkeypatch):
    """A held-out review (helper 122): a run killed while its plots were drawn kept ``status: ok`` with
    index.html and leaderboard.md missing, so a pipeline gating on the status could not tell."""
    import json

    from faithbench.reports import plots

    run = names["copy_inputs"](built, tmp_path / "copy")
    assert json.loads((run / "manifest.json").read_text())["report"] == "complete"  # built's

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands for a kill while the plots are drawn

    monkeypatch.setattr(plots, "plot_cost", killed)
    assert main(["report", str(run)]) == 130  # interrupted
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["report"] == "pending" and not (run / "index.html").exists()
    monkeypatch.undo()
    assert main(["report", str(run)]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["report"] == "complete" and (run / "index.html").exists()
    assert manifest == json.loads((built / "manifest.json").read_text())  # nothing else changed


def test_a_report_of_some_formats_removes_the_older_documents_of_the_others(built, tmp_path, names, caplog):
    """Held-out review stats9 (L2): ``--format md`` rebuilt the tables and plots but left an older index.html and
    leaderboard.tex that contradicted them (an edited results.parquet: agreement's τ gone, index.html still citing
    it). They are removed, in one line naming them; files the run does not own stay."""
    import pandas as pd

    run = names["copy_inputs"](built, tmp_path / "copy")
    assert main(["report", str(run)]) == 0
    old_html = (run / "index.html").read_text()
    results = pd.read_parquet(run / "results.parquet")
    results["value"] = 0.5  # every explainer tied: another leaderboard
    results.to_parquet(run / "results.parquet")
    (run / "notes.txt").write_text("mine")
    (run / "index_old.html").write_text(old_html)
    caplog.clear()
    assert main(["report", str(run), "--format", "md"]) == 0  # the CLI prints faithbench's log lines on stderr
    assert (run / "leaderboard.md").exists() and (run / "leaderboard.csv").exists()
    assert not (run / "index.html").exists() and not (run / "leaderboard.tex").exists()
    assert (run / "notes.txt").read_text() == "mine" and (run / "index_old.html").read_text() == old_html
    line, = [r.getMessage() for r in caplog.records if r.getMessage().startswith("removed ")]
    assert line == (f"removed leaderboard.tex, index.html of an earlier report: not rebuilt (formats: md), they no "
                    f"longer matched the rebuilt tables and plots; faithbench report {run} rebuilds every format")
    caplog.clear()
    assert main(["report", str(run), "--format", "html"]) == 0  # the page links no removed document
    page = (run / "index.html").read_text()
    assert not (run / "leaderboard.md").exists() and 'href="leaderboard.md"' not in page
    assert "removed leaderboard.md of an earlier report: not rebuilt (formats: html), it no longer" in caplog.text
    caplog.clear()
    assert main(["report", str(run), "--format", "html"]) == 0  # nothing left to remove: no line
    assert "removed" not in caplog.text
