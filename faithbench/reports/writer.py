"""Write the tidy tables of a run, and rebuild every derived table and plot from them.

Derived files (statistics tables, leaderboard in Markdown/LaTeX, plots, ``index.html``) are
functions of ``results.parquet``, ``curves.parquet``, ``models.csv``, ``cost.csv``,
``skipped.csv``, ``manifest.json`` and, where the run wrote them, ``samples.csv``, ``regions.csv``,
``failures.csv`` and ``reliability.csv`` alone, so ``faithbench report RUN_DIR`` rebuilds them
without recomputing anything. Images the tidy tables cannot hold (``plots/gallery_*.png``) are kept.

Every input is read before any file is written (:func:`read_inputs`). A run writes
:data:`ALWAYS_WRITTEN` and lists the tidy files it wrote in the manifest's ``outputs``; also
required: ``regions.csv`` / ``failures.csv`` / ``reliability.csv`` where the manifest has a
``regions:`` block / failed cells / reliability ``computed``. One missing, an input that does not
parse, or a manifest at status :data:`WRITING` raises :class:`RunFolderError` (exit code 2). A ``regions.csv``
beside a manifest whose suite has no ``regions:`` block (copied from another run) is ignored with a warning,
and the region tables of an earlier run are removed, as a run removes them.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from faithbench.progress import bars_disabled, missing_glyphs_noted
from faithbench.reports.arguments import FORMATS, check_control, check_report_arguments, run_control
from faithbench.reports.integrity import (NOT_A_RUN, is_run_folder, manifest_problem, mark_report,
                                         remove_unbuilt_documents, table_problem)
from faithbench.reports.markup import markdown_escape
from faithbench.reports.regions import region_tables
from faithbench.reports.summaries import cost_summary, models_file, models_summary
from faithbench.store import atomic_write_bytes
from faithbench.stats import (agreement_table, friedman_table, leaderboard, nemenyi_table, overall_nemenyi,
                              overall_ranks, pairwise_table)
from faithbench.stats.chance import (AT_CHANCE, mark_models_at_chance, model_warnings, models_at_chance,
                                     single_class_models, undefined_counts)
from faithbench.stats.tables import (AGREEMENT_COLUMNS, FRIEDMAN_COLUMNS, LEADERBOARD_COLUMNS, NEMENYI_COLUMNS,
                                     PAIRWISE_TABLE_COLUMNS)
from faithbench.stats.overall import OVERALL_COLUMNS, OVERALL_NEMENYI_COLUMNS, failed_pairs

__all__ = ["ALWAYS_WRITTEN", "FORMATS", "RESULT_COLUMNS", "CURVE_COLUMNS", "RUN_OUTPUTS", "RunFolderError", "WRITING",
           "build_report", "cost_summary", "expected_files", "is_run_folder", "log_model_warnings", "models_summary",
           "read_inputs", "write_outputs"]

RESULT_COLUMNS = ["dataset", "model", "explainer", "metric", "seed", "sample_id", "value", "chance",
                  "higher_is_better", "category", "label", "target"]
# multi-label runs add ``class`` (the explained class), as in results
CURVE_COLUMNS = ["dataset", "model", "explainer", "metric", "seed", "sample_id", "step", "fraction", "score"]
_DERIVED_PLOTS = ("curves_", "sanity_", "distributions_", "cd_", "models.", "cost.", "regions_", "strata_")  # rewritten
log = logging.getLogger(__name__)
# per-sample columns of samples.csv that the stratified analysis reads (faithbench.stats.strata)
_STRATA_SOURCES = ("lesion_area", "confidence", "correct")
WRITING = "writing"  # manifest.json's status while a run writes its tables (the final status replaces it)
ALWAYS_WRITTEN = ("results.parquet", "curves.parquet", "models.csv", "cost.csv", "skipped.csv", "manifest.json")
_READ_IF_PRESENT = ("reliance.csv", "repeatability.csv")  # required where the manifest's outputs list them
RUN_OUTPUTS = (*ALWAYS_WRITTEN, "samples.csv", "regions.csv", "failures.csv", "reliability.csv", *_READ_IF_PRESENT)
_UNREADABLE = (ValueError, OSError, pa.ArrowException)  # ArrowInvalid, ParserError, JSONDecodeError, UnicodeError


class RunFolderError(ValueError):
    """A run folder the report cannot be rebuilt from: an input missing or unreadable."""


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def _write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def write_outputs(out_dir: Path, results: pd.DataFrame, curves: pd.DataFrame, models: pd.DataFrame,
                  cost: pd.DataFrame, skipped: pd.DataFrame, *, report: bool = False) -> None:
    results = results.reindex(columns=RESULT_COLUMNS) if results.empty else results
    curves = curves.reindex(columns=CURVE_COLUMNS) if curves.empty else curves
    _write_parquet(out_dir / "results.parquet", results)
    _write_csv(out_dir / "results.csv", results)
    _write_parquet(out_dir / "curves.parquet", curves)
    _write_csv(out_dir / "models.csv", models_file(models))  # 8, not 8.0; the auc_exact_p columns
    _write_csv(out_dir / "cost.csv", cost)
    _write_csv(out_dir / "skipped.csv", skipped)
    if report:
        build_report(out_dir)


def read_optional_csv(path: Path) -> pd.DataFrame | None:
    """``path`` as a table; None when it does not exist, an empty table for an empty file."""
    if not path.exists():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _read(out_dir: Path, name: str, reader: Callable[[Path], Any]) -> Any:
    try:
        return reader(out_dir / name)
    except _UNREADABLE as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RunFolderError(f"cannot read {out_dir / name}: {type(exc).__name__}: {reason}".rstrip(": ")) from exc


def expected_files(manifest: dict[str, Any]) -> dict[str, str]:
    """``{name: why}``: the files the run wrote beyond :data:`ALWAYS_WRITTEN`, as its manifest says
    (module doc)."""
    expected = {name: "manifest.json lists it among the run's outputs" for name in manifest.get("outputs") or []
                if name not in ALWAYS_WRITTEN}
    if (manifest.get("suite") or {}).get("regions") is not None:
        expected["regions.csv"] = "the suite in manifest.json has a regions: block"
    if manifest.get("status") == "partial" or (manifest.get("failed_cells") or 0) != 0:
        expected["failures.csv"] = "manifest.json says some cells failed"
    if (manifest.get("reliability") or {}).get("status") == "computed":
        expected["reliability.csv"] = "manifest.json says metric reliability was computed"
    return expected


def read_inputs(out_dir: Path) -> dict[str, Any]:
    """Every input of ``out_dir``, parsed, by file name (a table, the manifest's dict, or None for a
    file the run did not write); raises :class:`RunFolderError` naming the first one that is
    missing or unreadable (module doc)."""
    out_dir = Path(out_dir)

    def require(name: str, why: str) -> None:
        if not (out_dir / name).is_file():
            raise RunFolderError(f"{out_dir}: incomplete run folder: {name} is missing ({why}); rerun "
                                 f"`faithbench run` into this folder to rebuild it")

    require("manifest.json", "a run always writes it")
    manifest = _read(out_dir, "manifest.json", _read_json)
    if problem := manifest_problem(out_dir, manifest):  # entries of another shape (reports/integrity.py)
        raise RunFolderError(problem)
    if manifest.get("status") == WRITING:
        raise RunFolderError(f"{out_dir}: incomplete run folder: the run stopped while writing its tables "
                             f"(manifest.json status {WRITING!r}); rerun `faithbench run` into this folder: it "
                             f"reads every result from the cache")
    for name in ALWAYS_WRITTEN:
        require(name, "a run always writes it")
    results = _read(out_dir, "results.parquet", pd.read_parquet)
    expected = expected_files(manifest)
    for name, why in expected.items():
        require(name, why)
    inputs = {"results.parquet": results, "manifest.json": manifest,
              "curves.parquet": _read(out_dir, "curves.parquet", pd.read_parquet)}
    for name in ("models.csv", "cost.csv", "skipped.csv", "regions.csv", "samples.csv", "failures.csv",
                 "reliability.csv", *_READ_IF_PRESENT):
        stray = name == "regions.csv" and name not in expected  # not this suite's (module doc)
        inputs[name] = None if stray else _read(out_dir, name, read_optional_csv)
    if "regions.csv" not in expected and (out_dir / "regions.csv").exists():
        log.warning("%s", f"{out_dir / 'regions.csv'} ignored: the suite in manifest.json has no regions: block, so "
                    f"this run did not write it (another run's?); no region tables")
    if problem := table_problem(out_dir, manifest, inputs):  # truncated or other columns (reports/integrity.py)
        raise RunFolderError(problem)
    return inputs


def _strata(out_dir: Path, results: pd.DataFrame, samples: pd.DataFrame | None, plot_dir: Path, blocks=()) -> list:
    """``strata.csv`` and its plots from the results joined with ``samples.csv`` (one row per
    explained (sample, target) of each checkpoint); a stale ``strata.csv`` of an earlier run in
    this folder is removed when there is nothing to stratify; the plots of ``blocks`` at chance carry †."""
    from faithbench.reports.medical import write_strata
    from faithbench.reports.plots_medical import plot_strata
    from faithbench.stats.strata import stratify

    if results.empty or samples is None or samples.empty:
        (out_dir / "strata.csv").unlink(missing_ok=True)
        return []
    keys = ["dataset", "model", "seed", "sample_id", "target"]
    samples = samples[keys + [c for c in _STRATA_SOURCES if c in samples.columns]]
    joined = results.astype({"sample_id": str}).merge(samples.astype({"sample_id": str}), on=keys, how="left")
    table = stratify(joined)
    return [write_strata(out_dir, table)] + plot_strata(table, plot_dir, metric_directions(results), blocks)


def _failed_cells(failures: pd.DataFrame | None) -> list[str]:
    """One line per failed (cell, stage, metric) of ``failures.csv``: ``cell (stage[, metric]): error``."""
    if failures is None or failures.empty:
        return []
    return [f"{r.cell} ({r.stage}{', ' + str(r.metric) if isinstance(r.metric, str) and r.metric else ''}): "
            f"{r.error_type}: {str(r.message).splitlines()[0] if str(r.message) else ''}"
            for r in failures.itertuples(index=False)]


def _failed_markdown(failures: pd.DataFrame | None) -> str:
    """The failed cells after the leaderboard.md tables (a review: a partial run's markdown and LaTeX never
    named the explainer that crashed, while index.html did)."""
    from faithbench.reports.notes import failures_heading

    lines = _failed_cells(failures)
    return ("" if not lines else f"\n## {failures_heading(failures)}\n\n"
            + "".join(f"- {markdown_escape(line)}\n" for line in lines))


def _failed_latex(failures: pd.DataFrame | None) -> str:
    lines = _failed_cells(failures)
    return "".join(f"% FAILED (failures.csv, rows missing from these tables): {line}\n" for line in lines)


def _models_markdown(lines: list[str]) -> str:
    """The checkpoints' warnings (:func:`~faithbench.stats.chance.model_warnings`) after the tables (helper
    114: a model predicting one class kept its marks and was warned of in the log and the HTML only)."""
    return "" if not lines else "\n## Model warnings\n\n" + "".join(f"- {markdown_escape(m)}\n" for m in lines)


def metric_directions(results: pd.DataFrame) -> dict[str, bool]:
    """Each metric's ``higher_is_better`` (its first row's), for the ↑/↓ of plots whose tables lack it."""
    if results.empty or not {"metric", "higher_is_better"} <= set(results.columns):
        return {}
    first = results.groupby("metric", sort=True, observed=True)["higher_is_better"].first()
    return {str(m): bool(v) for m, v in first.items()}


def log_model_warnings(models: pd.DataFrame | None, samples: pd.DataFrame | None) -> list[str]:
    """Log (and return) the checkpoints' warnings (:func:`~faithbench.stats.chance.model_warnings`: at chance, one
    class predicted, a class at chance) from a run's ``models.csv`` and ``samples.csv`` as read: :func:`build_report`
    does, from the tables it checked, and a run that builds no report (a held-out review: none reached ``log``)."""
    warned = model_warnings(models, samples)
    for message in warned:
        log.warning("%s", message)
    return warned


def build_report(out_dir: Path, control: str | None = None, formats: Iterable[str] = FORMATS, *,
                 progress: bool = True) -> list[Path]:
    """Rebuild the statistics tables, plots and the chosen ``formats`` of the report of ``out_dir``.

    Always writes ``results.csv`` (the CSV copy of ``results.parquet``, which it reads),
    ``leaderboard.csv, pairwise.csv, friedman.csv, nemenyi.csv,
    overall_ranks.csv, overall_nemenyi.csv, agreement.csv`` (see :mod:`faithbench.stats`), ``models_summary.csv`` (mean
    and sd over the seeds' distinct checkpoints), ``region_tests.csv`` and
    ``region_pairwise.csv`` when the run wrote ``regions.csv`` (:mod:`faithbench.stats.regions`),
    ``strata.csv`` when the run wrote ``samples.csv`` (each sample's ``lesion_area``, ``confidence``
    and ``correct``; :mod:`faithbench.stats.strata`), and the plots in ``plots/``; ``formats`` picks
    among ``leaderboard.md`` ("md"), ``leaderboard.tex`` ("latex") and ``index.html`` ("html").
    ``formats`` may be one of them as a str (``"md"``); the documents of the others that an earlier report
    wrote are removed, with one logged line (:func:`~faithbench.reports.integrity.remove_unbuilt_documents`).
    ``control`` is the label of the explainer tested against in ``p_vs_random`` and ``beats_random`` (default:
    the run's, from its manifest). ``leaderboard.csv`` gains ``model_at_chance``
    (:mod:`faithbench.stats.chance`; each such model is logged as a warning). A progress bar counts
    the groups of plots (``progress`` False or ``FAITHBENCH_QUIET=1``: none). Returns the paths written.

    Raises :class:`TypeError` naming the parameter for an ``out_dir`` that is not a str or a path, a ``control``
    that is not a str or None, ``formats`` that are not a str or a list, a ``progress`` not True or False;
    :class:`ValueError` for an unknown format, a blank ``control`` or one that names no explainer with rows in the
    run ("did you mean", the run's explainers); :class:`FileNotFoundError` for a folder that is not a run's
    (:func:`is_run_folder`), and
    :class:`RunFolderError` before writing anything when an input the run wrote is missing (also
    ``results.parquet`` beside a run's manifest), unreadable or damaged (:func:`read_inputs`).
    """
    from faithbench.reports import plots
    from faithbench.reports.figure import blocks_at_chance
    from faithbench.reports.latex import leaderboard_latex
    from faithbench.reports.notes import control_labels
    from faithbench.reports.plots_curves import curve_labels
    from faithbench.reports.tables import leaderboard_markdown

    out_dir, formats = check_report_arguments(out_dir, control, formats, progress)
    if not is_run_folder(out_dir):
        raise FileNotFoundError(f"{out_dir}: {NOT_A_RUN}")  # the words of `faithbench report` (a docs review)
    inputs = read_inputs(out_dir)
    results, manifest = inputs["results.parquet"], inputs["manifest.json"]
    check_control(control, results)  # given and absent: every significance test would be dropped
    control = control or run_control(manifest)
    written: list[Path] = []
    mark_report(out_dir, manifest, "pending")  # "complete" once every file below is written

    def csv(name: str, frame: pd.DataFrame) -> None:
        _write_csv(out_dir / name, frame)
        written.append(out_dir / name)

    models, at_chance = inputs["models.csv"], models_at_chance(inputs["models.csv"])
    if results.empty:
        board, pairwise, friedman, nemenyi, overall, overall_pairs, agreement = (
            pd.DataFrame(columns=c) for c in (LEADERBOARD_COLUMNS + [AT_CHANCE], PAIRWISE_TABLE_COLUMNS,
                                              FRIEDMAN_COLUMNS, NEMENYI_COLUMNS, OVERALL_COLUMNS,
                                              OVERALL_NEMENYI_COLUMNS, AGREEMENT_COLUMNS))
    else:
        board = mark_models_at_chance(leaderboard(results, control=control, failures=inputs["failures.csv"]), models)
        pairwise = pairwise_table(results, failures=inputs["failures.csv"])  # failed: still in the Holm family
        friedman = friedman_table(results)
        nemenyi = nemenyi_table(results)
        chance = list(board.loc[board[AT_CHANCE], [c for c in ("dataset", "model", "class") if c in board]]
                      .drop_duplicates().itertuples(index=False, name=None))  # groups at chance: left out
        overall = overall_ranks(results, chance, failed_pairs(inputs["failures.csv"]))
        overall_pairs, agreement = overall_nemenyi(results, chance), agreement_table(board)
    warned = log_model_warnings(models, inputs["samples.csv"])  # at chance, one class predicted, a class at chance
    csv("results.csv", results)  # the CSV copy of results.parquet (a review: a deleted one stayed deleted)
    csv("leaderboard.csv", board)
    csv("pairwise.csv", pairwise)
    csv("friedman.csv", friedman)
    csv("nemenyi.csv", nemenyi)
    csv("overall_ranks.csv", overall)
    csv("overall_nemenyi.csv", overall_pairs)
    csv("agreement.csv", agreement)

    models_table, cost_table = models_summary(models), cost_summary(inputs["cost.csv"])
    csv("models_summary.csv", models_table)

    plot_dir = out_dir / "plots"
    if plot_dir.is_dir():
        # A rebuild must not leave plots of cells that are no longer in the tables.
        for old in plot_dir.iterdir():
            if old.suffix in (".png", ".svg") and old.name.startswith(_DERIVED_PLOTS):
                old.unlink()
    curves = inputs["curves.parquet"]
    region_tests, region_pairs = region_tables(out_dir, inputs, written)
    directions = metric_directions(results)  # the ↑/↓ of the curves' and strata's panels
    blocks = blocks_at_chance(board)  # the tables' †, on the figures too
    steps: list[tuple[str, Callable[[], list[Path]]]] = [  # (what, plot it): the bar's steps
        ("perturbation curves", lambda: plots.plot_perturbation_curves(curves, plot_dir, directions, blocks,
                                                                       *curve_labels(manifest))),
        ("sanity curves", lambda: plots.plot_sanity_curves(curves, plot_dir, directions, blocks))
    ] if not curves.empty else []
    if not results.empty:
        steps += [("distributions", lambda: plots.plot_distributions(results, plot_dir, blocks)),
                  ("critical differences", lambda: plots.plot_cd_diagrams(results, friedman, nemenyi, plot_dir,
                                                                          chance_blocks=blocks))]
    steps.append(("model performance", lambda: plots.plot_model_performance(models, plot_dir)))
    if region_tests is not None:
        steps.append(("regions", lambda: plots.plot_region_shares(inputs["regions.csv"], plot_dir, blocks)))
    steps += [("cost", lambda: plots.plot_cost(cost_table, plot_dir)),
              ("strata", lambda: _strata(out_dir, results, inputs["samples.csv"], plot_dir, blocks))]
    with tqdm(total=len(steps), desc=f"report {out_dir.name}", unit="plot group", leave=False,
              disable=not progress or bars_disabled()) as bar, missing_glyphs_noted():  # one line, not 50
        for label, plot in steps:
            bar.set_postfix_str(label)
            written += plot()
            bar.update()
        bar.refresh()  # its last count, however fast the last group was

    skipped, failures = inputs["skipped.csv"], inputs["failures.csv"]
    undefined = undefined_counts(results)
    from faithbench.reports.medical import mark_unreliable

    board = mark_unreliable(board, inputs["reliability.csv"])  # the ‡ of the documents
    remove_unbuilt_documents(out_dir, formats)  # first: index.html links only the documents there
    if "md" in formats:
        from faithbench.reports.medical import reliability_markdown

        markdown = leaderboard_markdown(board, skipped, undefined, reliability_markdown(out_dir, board, manifest),
                                        control=control, controls=control_labels(manifest))
        _write_text(out_dir / "leaderboard.md", markdown + _failed_markdown(failures) + _models_markdown(warned))
        written.append(out_dir / "leaderboard.md")
    if "latex" in formats:
        tex = leaderboard_latex(board, control=control, failures=failures, warnings=warned,  # captions name them too
                                controls=control_labels(manifest))
        comments = "".join(f"% WARNING: {m}\n" for m in warned)
        _write_text(out_dir / "leaderboard.tex", _failed_latex(failures) + comments + tex)
        written.append(out_dir / "leaderboard.tex")
    if "html" in formats:
        from faithbench.reports.html import render_html

        page = render_html(
            root=out_dir, manifest=manifest, board=board, models=models, models_table=models_table,
            cost_table=cost_table, skipped=skipped, undefined=undefined, at_chance=at_chance,
            single_class=single_class_models(models),
            failures=failures, friedman=friedman, overall=overall,
            agreement=agreement, pairwise=pairwise, region_tests=region_tests, region_pairwise=region_pairs,
            control=control, reliance=inputs["reliance.csv"], samples=inputs["samples.csv"],
        )
        _write_text(out_dir / "index.html", page)
        written.append(out_dir / "index.html")
    mark_report(out_dir, manifest, "complete")
    return written
