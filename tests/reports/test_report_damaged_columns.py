"""``faithbench report`` checks the columns it computes with before it writes anything: a cell of
``models.csv``, ``cost.csv`` or ``results.parquet`` that is not a number, a ``manifest.json`` entry of
another shape, and a ``cost.csv`` or ``models.csv`` without a column it reads are refused (exit 2, one
line naming the file), where a held-out review saw exit 1 after half the folder was rewritten, or exit 0
with the cost plot deleted and "no cost.csv rows" on the page."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from faithbench.cli import main
from faithbench.reports import build_report
from tests.reports.conftest import folder_files


def _refused(run: Path, capsys) -> str:
    """``faithbench report`` on ``run``: exit 2, one stderr line, no file written or deleted; the line."""
    before = folder_files(run)
    capsys.readouterr()
    assert main(["report", str(run), "--format", "md"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert folder_files(run) == before
    return lines[0]


def _edit_csv(path: Path, **columns) -> None:
    table = pd.read_csv(path)
    table.assign(**columns).to_csv(path, index=False)


def test_a_models_csv_auc_that_is_not_a_number_is_refused(run, capsys):
    n = len(pd.read_csv(run / "models.csv"))
    _edit_csv(run / "models.csv", auc="abc")
    line = _refused(run, capsys)
    assert line == (f"faithbench: error: cannot read {run / 'models.csv'}: column auc holds {n} value(s) that are not "
                    f"numbers (e.g. 'abc'); rerun `faithbench run` into this folder to rebuild it")


@pytest.mark.parametrize("name, column", [("models.csv", "accuracy"), ("models.csv", "ovr_auc_x"),
                                          ("cost.csv", "seconds"), ("cost.csv", "passes")])
def test_any_score_or_cost_column_that_is_not_a_number_is_refused(run, capsys, name, column):
    table = pd.read_csv(run / name)
    table[column] = ["1.5"] * (len(table) - 1) + ["0.5?"]  # one bad cell among numbers
    table.to_csv(run / name, index=False)
    assert f"{name}: column {column} holds 1 value(s) that are not numbers (e.g. '0.5?')" in _refused(run, capsys)


def test_an_empty_cell_is_still_read_as_undefined(run):
    table = pd.read_csv(run / "models.csv")
    table.loc[0, "loss"] = None  # as a run writes a score it could not compute
    table.to_csv(run / "models.csv", index=False)
    build_report(run, formats=("md",), progress=False)
    assert pd.read_csv(run / "models_summary.csv")["loss_mean"].notna().all()


def test_a_results_value_that_is_a_string_is_refused(run, capsys):
    results = pd.read_parquet(run / "results.parquet")
    results["value"] = "abc"
    results.to_parquet(run / "results.parquet", index=False)
    line = _refused(run, capsys)
    assert f"results.parquet: column value holds {len(results)} value(s) that are not numbers (e.g. 'abc')" in line


@pytest.mark.parametrize("edit, said", [
    (lambda m: m["suite"].update(explainers=5), "suite.explainers is 5, expected a list"),
    (lambda m: m["suite"].update(metrics=[3]), "suite.metrics[0] is 3, expected a name or a mapping"),
    (lambda m: m.update(suite="quick"), "suite is 'quick', expected a mapping"),
    (lambda m: m.update(data_warnings="x"), "data_warnings is 'x', expected a list"),
    (lambda m: m.update(rows={"models.csv": "2"}), "rows.models.csv is '2', expected a whole number of rows"),
    (lambda m: m.update(reliability=[1]), "reliability is [1], expected a mapping")])
def test_a_manifest_entry_of_another_shape_is_refused(run, capsys, edit, said):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.setdefault("suite", {}).setdefault("explainers", ["random"])
    edit(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))
    line = _refused(run, capsys)
    assert line == f"faithbench: error: cannot read {run / 'manifest.json'}: {said}; rerun `faithbench run` into " \
                   "this folder to rebuild it"


def test_a_cost_csv_without_its_columns_is_refused_and_its_plot_kept(run, capsys):
    assert (run / "plots" / "cost.png").exists()
    (run / "cost.csv").write_text("x\n1\n")
    line = _refused(run, capsys)
    assert line == (f"faithbench: error: {run}: cost.csv lacks the columns dataset, model, explainer, stage, seconds "
                    "the report reads; rerun `faithbench run` into this folder to rebuild it")
    assert (run / "plots" / "cost.png").exists()


def test_a_models_csv_without_auc_is_refused(run, capsys):
    pd.read_csv(run / "models.csv").drop(columns=["auc"]).to_csv(run / "models.csv", index=False)
    assert "models.csv lacks the columns auc the report reads" in _refused(run, capsys)


def test_an_older_folder_with_empty_models_and_cost_tables_and_an_empty_manifest_still_builds(run, names):
    """A folder of an older or minimal writer (manifest ``{}``, empty models and cost tables, models without
    the newer columns) has nothing for the checks to refuse: the report builds as before."""
    for name in ("models.csv", "cost.csv"):
        (run / name).write_text("\n")
    (run / "manifest.json").write_text("{}")
    (run / "reliability.csv").unlink(missing_ok=True)
    build_report(run, formats=("md", "html"), progress=False)
    assert "no models.csv rows" in (run / "index.html").read_text()
    assert list(pd.read_csv(run / "models_summary.csv").columns) == ["dataset", "model", "seeds", "checkpoints"]
