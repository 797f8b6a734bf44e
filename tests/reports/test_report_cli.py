"""``faithbench report RUN_DIR`` rebuilds everything from the tidy tables."""

from __future__ import annotations

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
        assert len(err.splitlines()) == 1 and "not a faithbench run folder" in err
