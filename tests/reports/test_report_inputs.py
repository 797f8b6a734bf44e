"""``faithbench report`` refuses a run folder with an input missing or unreadable, before it
changes any file (exit code 2, one line); a file the run legitimately did not write is fine."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from faithbench.cli import main
from faithbench.reports import build_report
from faithbench.reports.writer import RunFolderError
from tests.reports.conftest import folder_files


def _refused(run: Path, capsys) -> str:
    """Run ``faithbench report`` on ``run``; assert exit 2, one stderr line, no file changed; return the line."""
    before = folder_files(run)
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert captured.out == ""  # no path printed: nothing written
    assert folder_files(run) == before  # nothing written, nothing deleted
    assert "run failed" not in lines[0]
    return lines[0]


def test_a_missing_models_csv_is_refused_and_nothing_changes(run, capsys):
    assert (run / "models_summary.csv").exists() and (run / "plots" / "models.png").exists()
    (run / "models.csv").unlink()
    line = _refused(run, capsys)
    assert line.startswith("faithbench: error: ") and "models.csv is missing" in line
    assert "incomplete run folder" in line and "faithbench run" in line
    assert (run / "models_summary.csv").exists() and (run / "plots" / "models.png").exists()


@pytest.mark.parametrize("name", ["curves.parquet", "samples.csv", "manifest.json", "cost.csv", "skipped.csv"])
def test_every_input_the_run_always_writes_is_required(run, capsys, name):
    (run / name).unlink()
    line = _refused(run, capsys)
    assert f"{name} is missing" in line and "incomplete run folder" in line


def _edit_manifest(run: Path, **entries) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    for key, value in entries.items():
        if key == "regions":
            manifest["suite"]["regions"] = value
        else:
            manifest[key] = value
    (run / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name, entries", [
    ("regions.csv", {"regions": {"scores": ["share"], "alpha": 0.05}}),  # the suite had a regions: block
    ("failures.csv", {"status": "partial", "failed_cells": 1}),
    ("reliability.csv", {"reliability": {"samples": 8, "status": "computed", "note": "", "skipped": {}}}),
])
def test_a_file_the_manifest_says_was_written_is_required(run, capsys, name, entries):
    _edit_manifest(run, **entries)
    line = _refused(run, capsys)
    assert f"{name} is missing" in line and "manifest.json" in line


def test_a_deleted_or_stale_results_csv_is_rewritten_from_the_parquet(run):
    """A held-out review: a deleted results.csv stayed deleted after `faithbench report`, and a stale
    one was never compared with results.parquet."""
    parquet = pd.read_parquet(run / "results.parquet")
    (run / "results.csv").unlink()
    assert main(["report", str(run), "--format", "md"]) == 0
    written = pd.read_csv(run / "results.csv")
    assert len(written) == len(parquet) and written["value"].tolist() == pytest.approx(parquet["value"].tolist())
    (run / "results.csv").write_text("stale\n")
    assert main(["report", str(run), "--format", "md"]) == 0
    assert len(pd.read_csv(run / "results.csv")) == len(parquet)


def test_files_the_run_did_not_write_are_not_required(run, capsys):
    # no regions: block, no failed cell, reliability not computed: none of their files
    _edit_manifest(run, regions=None, status="ok", failed_cells=0,
                   reliability={"samples": 0, "status": "off", "note": "", "skipped": {}})
    assert main(["report", str(run), "--format", "md"]) == 0
    assert not (run / "region_tests.csv").exists()


@pytest.mark.parametrize("name, content, error", [
    ("results.parquet", b"PAR1 not a parquet file", "ArrowInvalid"),
    ("curves.parquet", b"garbage", "ArrowInvalid"),
    ("models.csv", b'model,dataset\n"cnn,x\n', "ParserError"),
    ("manifest.json", b"{not json", "JSONDecodeError"),
])
def test_an_unreadable_input_is_refused_and_nothing_changes(run, capsys, name, content, error):
    (run / name).write_bytes(content)
    line = _refused(run, capsys)
    assert line.startswith(f"faithbench: error: cannot read {run / name}: {error}")


def test_build_report_raises_before_writing(run):
    (run / "models.csv").unlink()
    before = folder_files(run)
    with pytest.raises(RunFolderError, match="models.csv is missing"):
        build_report(run)
    assert folder_files(run) == before


def test_a_failing_metric_has_its_own_mark_in_every_document(run, names):
    """‡ (failed the metric reliability check) on the failing metric's header and its footnote; † stays
    the model at chance, which no model here is."""
    from faithbench.reports import write_reliability

    write_reliability(run, pd.DataFrame([
        {"metric": names["down"], "nr": 0.35, "ar": 0.8, "agreement_tau": 0.1, "passed": False},
        {"metric": names["up"], "nr": 0.9, "ar": 0.8, "agreement_tau": 0.1, "passed": True}]))
    _edit_manifest(run, reliability={"samples": 8, "status": "computed", "note": "", "skipped": {}})
    build_report(run)
    md, tex, page = ((run / n).read_text() for n in ("leaderboard.md", "leaderboard.tex", "index.html"))
    # two seeds of the same 8 images: n counts samples
    assert "| explainer | deletion\\_auc ↓ ‡ (n = 8) |" in md
    assert "| explainer | hit\\_rate&amp;co ↑ (n = 8) |" in md  # the passing metric: no mark
    assert "\n‡ Failed the metric reliability check" in md
    assert r"\downarrow$$^{\ddagger}$" in tex and r"$^{\ddagger}$Failed the metric reliability check" in tex
    assert "<th>deletion_auc ↓ ‡<br>" in page and "<th>hit_rate&amp;co ↑<br>" in page
    assert '<p class="note">‡ Failed the metric reliability check' in page
    for text in (md, tex, page):
        assert "†" not in text and r"{\dagger}" not in text
    assert "metric_unreliable" not in pd.read_csv(run / "leaderboard.csv").columns


def test_a_run_stopped_while_writing_its_tables_is_refused(run, capsys):
    """A held-out review: a run killed while writing left results, a leaderboard and a manifest that
    said "ok", without index.html or agreement.csv; the manifest now says "writing" until the tables
    are written."""
    _edit_manifest(run, status="writing")
    line = _refused(run, capsys)
    assert "the run stopped while writing its tables" in line and "rerun `faithbench run`" in line


def test_a_folder_from_before_the_outputs_list_needs_no_samples_csv(run, capsys):
    """A review: folders written before samples.csv existed were refused; the run now lists its tidy
    files in manifest.json's outputs, and a folder without that list needs only ALWAYS_WRITTEN."""
    manifest = json.loads((run / "manifest.json").read_text())
    assert "samples.csv" in manifest.pop("outputs")
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "samples.csv").unlink()
    assert main(["report", str(run), "--format", "md"]) == 0


def test_an_empty_reliance_csv_is_no_error_after_the_checks(run, capsys):
    """A review: an empty reliance.csv passed read_inputs, then the page's reader raised EmptyDataError
    after files were written."""
    (run / "reliance.csv").write_text("")
    assert main(["report", str(run)]) == 0
    assert "Measured reliance" not in (run / "index.html").read_text()


def test_a_reliability_or_samples_table_without_a_column_the_report_reads_is_refused(run, capsys, names):
    """A held-out review: a reliability.csv cut to a few columns gave exit 0 and lost every ‡ (the
    leaderboard said the check was not computed); a samples.csv without lesion_area lost the
    lesion-size strata."""
    from faithbench.reports import write_reliability

    row = {"metric": names["down"], "nr": 0.35, "ar": 0.8, "agreement_tau": 0.1, "passed": False}
    write_reliability(run, pd.DataFrame([row]))
    _edit_manifest(run, reliability={"samples": 8, "status": "computed", "note": "", "skipped": {}})
    assert main(["report", str(run), "--format", "md"]) == 0
    pd.read_csv(run / "reliability.csv").drop(columns=["passed"]).to_csv(run / "reliability.csv", index=False)
    assert _refused(run, capsys).endswith("reliability.csv lacks the columns passed the report reads; rerun "
                                          "`faithbench run` into this folder to rebuild it")
    (run / "reliability.csv").write_text("metric,nr,ar,passed,agreement_tau\n")  # header only, check computed
    assert "reliability.csv has no rows where the run computed the check" in _refused(run, capsys)
    write_reliability(run, pd.DataFrame([row]))
    samples = pd.read_csv(run / "samples.csv")
    for column in ("lesion_area", "target"):
        samples.drop(columns=[column]).to_csv(run / "samples.csv", index=False)
        assert f"samples.csv lacks the columns {column} the report reads" in _refused(run, capsys)


def test_an_older_reliability_pass_on_too_few_samples_is_no_pass(run, names):
    """A diff review: a reliability.csv written before MIN_RANKED said passed on 3 ranked samples;
    the report now gives it the ‡ and the reason."""
    from faithbench.reports import write_reliability

    write_reliability(run, pd.DataFrame([{"metric": names["down"], "nr": 0.9, "ar": 0.9, "agreement_tau": 0.1,
                                          "passed": True, "n_ranked": 3}]))
    _edit_manifest(run, reliability={"samples": 8, "status": "computed", "note": "", "skipped": {}})
    build_report(run)
    md = (run / "leaderboard.md").read_text()
    assert "| explainer | deletion\\_auc ↓ ‡ (n = 8) |" in md
    assert "too few samples for a verdict: 3 ranked the explainers" in md  # an older table: no n_samples
    # no verdict either way: not called a failure
    assert "‡ Failed the metric reliability check or had too few samples for its verdict (MetaQuantus" in md
    assert "| deletion\\_auc | 0.900 | 0.900 | 0.100 | no verdict |" in md
    page = (run / "index.html").read_text()
    section = page[page.index('id="reliability"'):]
    assert "<th>verdict</th>" in section and "<td>no verdict</td>" in section  # the table's verdict, too
    assert "<td>pass</td>" not in section and "<td>True</td>" not in section


def test_a_folder_without_results_but_with_a_manifest_says_what_happened(run, capsys):
    """A held-out review: a run interrupted before results.parquet was written got "not a faithbench
    run folder"; with its manifest there the report says the run stopped and how to finish it."""
    _edit_manifest(run, status="writing")
    (run / "results.parquet").unlink()
    assert "the run stopped while writing its tables" in _refused(run, capsys)
    _edit_manifest(run, status="ok")
    assert "incomplete run folder: results.parquet is missing" in _refused(run, capsys)
    (run / "manifest.json").write_text('{"name": "another tool"}')
    assert "not a faithbench run folder (no results.parquet, nor the manifest.json of a run)" in _refused(run, capsys)
    (run / "manifest.json").unlink()
    assert "not a faithbench run folder" in _refused(run, capsys)


@pytest.mark.parametrize("name, damage", [
    ("models.csv", "header"), ("models.csv", "columns"), ("samples.csv", "header"), ("curves.parquet", "rows"),
    ("skipped.csv", "header"), ("skipped.csv", "columns")])
def test_a_readable_but_truncated_or_relabelled_table_is_refused(run, capsys, name, damage):
    """A held-out review: models.csv cut to its header gave exit 0 and dropped the at-chance marks;
    a header-only samples.csv or an empty curves.parquet deleted the strata and curve plots; another:
    a skipped.csv cut to its header, or with other columns, rebuilt a report with no skipped cell."""
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["rows"] = {"results.parquet": len(pd.read_parquet(run / "results.parquet")),
                        "curves.parquet": len(pd.read_parquet(run / "curves.parquet")),
                        "models.csv": len(pd.read_csv(run / "models.csv")),
                        "samples.csv": len(pd.read_csv(run / "samples.csv")),
                        "skipped.csv": len(pd.read_csv(run / "skipped.csv"))}
    assert manifest["rows"]["skipped.csv"] > 0
    (run / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["report", str(run), "--format", "md"]) == 0  # the counts as written: fine
    if damage == "rows":
        pd.read_parquet(run / name).iloc[:0].to_parquet(run / name, index=False)
    elif damage == "header":
        table = pd.read_csv(run / name)
        table.iloc[:0].to_csv(run / name, index=False)
    else:
        table = pd.read_csv(run / name)
        table.rename(columns={"dataset": "a", "model": "b", "cell": "a", "reason": "b"}).to_csv(run / name, index=False)
    line = _refused(run, capsys)
    assert name in line and ("rows where the run wrote" in line or "lacks the columns dataset, model" in line
                             or "lacks the columns cell, reason" in line)


def test_an_infinite_value_in_the_results_is_refused(run, capsys):
    """A held-out review: an inf in a hand-edited results.parquet was ranked 1, tied with the best
    finite mean (the tie tolerance became inf), both bold, exit 0; a run never writes one."""
    results = pd.read_parquet(run / "results.parquet")
    results.loc[results.index[3], "value"] = float("inf")
    results.to_parquet(run / "results.parquet", index=False)
    row = results.iloc[3]
    line = _refused(run, capsys)
    assert (f"results.parquet holds 1 infinite value(s) (explainer {row['explainer']}, metric {row['metric']}, "
            f"sample_id {row['sample_id']}), which a run never writes") in line


def test_a_report_on_a_folder_a_run_is_writing_is_refused(run, capsys):
    """A held-out review: `faithbench report` took no lock, and a report overlapping a run of another
    suite left the old suite's leaderboard beside the new run's results, exit 0 both."""
    from faithbench.runner.lock import lock_output

    with lock_output(run):
        line = _refused(run, capsys)
    assert "another faithbench run" in line and "is writing to this output folder" in line
    assert line.startswith(f"faithbench: error: {run}: ")  # report's folder, not run's --out
    assert main(["report", str(run), "--format", "md"]) == 0  # the lock released: fine


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root writes into read-only folders")
def test_a_report_that_cannot_write_says_where(run, capsys):
    run.chmod(0o555)
    try:
        assert main(["report", str(run), "--format", "md"]) == 2
        assert f"{run}: cannot write the report" in capsys.readouterr().err
    finally:
        run.chmod(0o755)


def test_a_full_disk_during_a_report_is_exit_2_naming_the_folder(run, capsys, monkeypatch):
    """A held-out review: a report on a read-only folder exited 1 with a raw OSError."""
    import errno

    import faithbench.reports.writer as writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(run / ".leaderboard.csv.x1.tmp"))

    monkeypatch.setattr(writer, "build_report", full)
    assert main(["report", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (f"faithbench: error: {run}: cannot write the report: No space left "
                                               f"on device ({run}/.leaderboard.csv.x1.tmp)")


def test_failed_cells_are_named_in_the_markdown_and_latex_too(run):
    """A held-out review: a partial run's index.html had a Failures table, but leaderboard.md and .tex (the
    files that go into a paper) never named the explainer that crashed."""
    pd.DataFrame([{"cell": "d/cnn/boom/seed0", "dataset": "d", "model": "cnn", "explainer": "boom", "seed": 0,
                   "stage": "explain", "metric": "", "error_type": "RuntimeError",
                   "message": "boom: simulated crash\nsecond line"}]).to_csv(run / "failures.csv", index=False)
    _edit_manifest(run, status="partial", failed_cells=1)
    build_report(run, formats=("md", "latex"))
    md, tex = (run / "leaderboard.md").read_text(), (run / "leaderboard.tex").read_text()
    assert "## Failed cells: 1 (failures.csv; their rows are missing)\n\n- d/cnn/boom/seed0 (explain): RuntimeError: " \
           "boom: simulated crash\n" in md
    assert tex.startswith("% FAILED (failures.csv, rows missing from these tables): d/cnn/boom/seed0 (explain): "
                          "RuntimeError: boom: simulated crash\n")
    (run / "failures.csv").unlink()
    _edit_manifest(run, status="ok", failed_cells=0)
    build_report(run, formats=("md", "latex"))
    assert "Failed cells" not in (run / "leaderboard.md").read_text()
    assert "FAILED" not in (run / "leaderboard.tex").read_text()


def test_a_failed_cell_is_named_in_its_latex_caption_and_above_the_html_leaderboard(run, names):
    """A held-out review: a partial run's failed explainer had no row in the HTML leaderboard and the typeset
    LaTeX table, and only a % comment (never in the PDF) named it. Its table's caption now names it, and a
    warning above the HTML tables; a failure of another (dataset, model) stays out of this caption."""
    rows = [(names["alias"], "cnn", "bo_om<&>", 0, "explain", ""),
            (names["alias"], "cnn", "bo_om<&>", 1, "metric", "deletion_auc"), ("other", "x", "late", 0, "task", "")]
    pd.DataFrame([{"cell": f"{d}/{m}/{e}/seed{s}", "dataset": d, "model": m, "explainer": e, "seed": s, "stage": st,
                   "metric": me, "error_type": "RuntimeError", "message": "boom"} for d, m, e, s, st, me in rows]
                 ).to_csv(run / "failures.csv", index=False)
    _edit_manifest(run, status="partial", failed_cells=3)
    build_report(run, formats=("latex", "html"))
    tex = (run / "leaderboard.tex").read_text()
    caption = tex.split("\\caption{")[1].split("\n")[0]
    assert caption.endswith(r" Failed, no rows (failures.csv): bo\_om\textless{}\&\textgreater{} (seed 0, explain); "
                            r"bo\_om\textless{}\&\textgreater{} (seed 1, metric deletion\_auc).}")
    assert "late" not in caption and tex.count("% FAILED") == 3  # the comments stay, one per failure
    page = (run / "index.html").read_text()
    cell = "cxr &quot;&amp;&lt;&gt;&#x27; v1 / cnn / bo_om&lt;&amp;&gt;"
    warning = ('<p class="warn">failed cells, missing from these tables (no rows; see <a href="#skipped">'
               f"Failures</a>): {cell} (seed 0, explain); {cell} (seed 1, metric deletion_auc); other / x / late "
               "(seed 0, task).</p>")
    assert warning in page and page.index(warning) < page.index("<table><thead><tr><th rowspan")


def test_a_results_table_of_an_older_layout_is_refused_naming_it(run, capsys):
    """A held-out review: a results.parquet without `category` and `chance` (an older layout) gave exit 1 and
    a bare ValueError from the statistics."""
    table = pd.read_parquet(run / "results.parquet")
    table.drop(columns=["category", "chance"]).to_parquet(run / "results.parquet", index=False)
    assert _refused(run, capsys).endswith(
        f"{run}: results.parquet lacks the columns category, chance the report reads; rerun `faithbench run` into this "
        "folder to rebuild it")


def test_build_report_and_the_docs_say_what_faithbench_report_says_of_a_folder_that_is_no_run(tmp_path, capsys):
    """A docs review: build_report said "no results.parquet; is this a faithbench run folder?", the CLI
    "not a faithbench run folder (…)", and docs/outputs.md a third wording."""
    message = f"{tmp_path}: not a faithbench run folder (no results.parquet, nor the manifest.json of a run)"
    with pytest.raises(FileNotFoundError) as info:
        build_report(tmp_path)
    assert str(info.value) == message
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"faithbench: error: {message}\n"
    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "outputs.md").read_text().split())
    assert '"RUN: not a faithbench run folder (no results.parquet, nor the manifest.json of a run)"' in doc


def test_a_failed_metric_is_not_called_a_failed_cell(run):
    """A held-out review: "Failed cells: 2 (failures.csv; their rows are missing)" where one metric had failed in
    each of two cells and the cells' other metrics' rows were in the tables."""
    row = {"dataset": "d", "model": "cnn", "seed": 0, "error_type": "ValueError", "message": "bad curve"}
    bad = [{**row, "cell": f"d/cnn/{e}/seed0", "explainer": e, "stage": "metric", "metric": "lp7_badcurve"}
           for e in ("random", "sobel")]
    pd.DataFrame(bad).to_csv(run / "failures.csv", index=False)
    _edit_manifest(run, status="partial", failed_cells=2)
    build_report(run, formats=("md",))
    assert "\n## Failed metrics: 2 in 2 cells (failures.csv; only the failed metrics' rows are missing, the cells' " \
           "other rows are in the tables)\n\n- d/cnn/random/seed0 (metric, lp7\\_badcurve): ValueError: bad curve\n" \
           in (run / "leaderboard.md").read_text()
    crash = {**row, "cell": "d/cnn/boom/seed0", "explainer": "boom", "stage": "explain", "metric": ""}
    pd.DataFrame([crash, *bad[:1]]).to_csv(run / "failures.csv", index=False)
    build_report(run, formats=("md",))
    assert "\n## Failures: 2 (failures.csv): 1 cell failed (no rows); 1 metric failed in 1 cell (only the failed " \
           "metrics' rows are missing)\n\n- d/cnn/boom/seed0 (explain): ValueError: bad curve\n" \
           in (run / "leaderboard.md").read_text()
