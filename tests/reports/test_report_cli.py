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
