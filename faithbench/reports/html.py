"""``index.html``: one self-contained static page for a run (no server, CDN, fonts or JS).

Images are embedded as base64 ``data:`` URIs; links to the CSV/SVG files beside the page are
relative. Every string from a config or a table goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from faithbench.reports.markup import _e, table_html
from faithbench.reports.notes import (DISTRIBUTION_NOTE, control_alone, control_labels, failed_cells,
                                      mixed_classes_note)
from faithbench.reports.stats_html import statistics_html
from faithbench.reports.summaries import integer_counts
from faithbench.reports.tables import (CHANCE_LEVEL_NOTE, CHANCE_NOTE, DAGGER, LeaderboardTable, chance_text,
                                       control_tested, format_number, leaderboard_tables, significance_note,
                                       split_skipped)
from faithbench.stats.chance import ci_text, majority_messages, shared_checkpoint_messages, weak_class_messages

__all__ = ["render_html"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;
background:#fff;line-height:1.45}
header{background:#1f3b63;color:#fff;padding:18px 32px}header h1{margin:0 0 4px;font-size:26px}
header p{margin:0;opacity:.9;max-width:1100px}
nav{background:#eef2f7;padding:8px 32px;border-bottom:1px solid #d5dbe5;font-size:14px}
nav a{margin-right:14px;color:#1f3b63;text-decoration:none}
main{padding:8px 32px 40px;max-width:1400px}
h2{border-bottom:2px solid #1f3b63;padding-bottom:4px;margin-top:34px}h3{margin:22px 0 8px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border:1px solid #d5dbe5;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#f8fafc}
td.best{font-weight:700;background:#e3f1e0 !important}
th.category{text-align:center}tr.metrics th{text-align:right}
tr.chance td{font-style:italic;color:#5a6475;border-top:2px solid #d5dbe5}
.note{color:#5a6475;font-size:13px}
.warn{background:#fff4d6;border-left:4px solid #d49a00;padding:6px 10px}
.empty{color:#5a6475;font-style:italic}
figure{margin:10px 0 18px;display:inline-block;vertical-align:top}
figure img{max-width:100%;border:1px solid #e1e5ec}
figcaption{font-size:12px;color:#5a6475}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:14px}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
details{margin:8px 0}summary{cursor:pointer;color:#1f3b63}
pre{background:#f4f6f9;padding:8px;font-size:12px;overflow:auto}
"""


def _figure(png: Path, root: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    rel = png.relative_to(root).as_posix()
    svg = png.with_suffix(".svg")
    link = f' · <a href="{_e(svg.relative_to(root).as_posix())}">SVG</a>' if svg.exists() else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(png.stem)}">'
            f"<figcaption>{_e(rel)}{link}</figcaption></figure>")


def _figures(pngs: Iterable[Path], root: Path, used: set[Path]) -> str:
    parts = []
    for png in pngs:
        used.add(png)
        parts.append(_figure(png, root))
    return "".join(parts)


def _leaderboard_head(table: LeaderboardTable) -> str:
    """The header: a row of categories (``colspan`` over their metrics) above the metric names,
    when some metric has a category."""
    names = "".join(f"<th>{_e(m)} {table.arrow(m)}{_e(table.mark(m))}"
                    + (f"<br><small>{_e(table.head_note(m))}</small>" if table.head_note(m) else "") + "</th>"
                    for m in table.metrics)
    if not table.categories:
        return f"<tr><th>explainer</th>{names}</tr>"
    categories = "".join(f'<th class="category" colspan="{len(ms)}">{_e(c)}</th>' for c, ms in table.groups())
    return f'<tr><th rowspan="2">explainer</th>{categories}</tr><tr class="metrics">{names}</tr>'


def _leaderboard_html(board: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    out = {}
    for table in leaderboard_tables(board):
        rows = []
        for explainer in table.explainers:
            cells = [f"<td>{_e(explainer)}</td>"]
            for metric in table.metrics:
                cell, note = table.cells[explainer][metric], table.n_note(explainer, metric)
                note = f" <small>({_e(note)})</small>" if note else ""
                if cell is None:
                    cells.append(f"<td>–{note}</td>")
                    continue
                mark = f"<sup>{table.mark_of(cell)}</sup>" if table.mark_of(cell) else ""
                cls = ' class="best"' if cell.best else ""
                cells.append(f"<td{cls}>{_e(cell.text())}{mark}{note}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        foot = ""
        if table.has_chance():
            foot = ('<tfoot><tr class="chance"><td>chance</td>'
                    + "".join(f"<td>{_e(chance_text(table, m))}</td>" for m in table.metrics) + "</tr></tfoot>")
        out[(table.dataset, table.model, table.target_class)] = (
            f"<table><thead>{_leaderboard_head(table)}</thead><tbody>{''.join(rows)}</tbody>{foot}</table>")
    return out


def _suite_html(manifest: dict | None) -> tuple[str, str, str]:
    """(title, description, facts html) from manifest.json."""
    if not manifest:
        return "faithbench run", "", '<p class="empty">manifest.json not found: suite details unavailable</p>'
    suite = manifest.get("suite") or {}
    name = suite.get("name", "faithbench run")

    def labels(kind: str) -> str:
        items = suite.get(kind) or []
        return ", ".join(_e(s.get("alias") or s.get("name")) + (f" ({_e(s.get('name'))})" if s.get("alias") else "")
                         for s in items if isinstance(s, dict)) or "–"

    facts = [
        ("seeds", _e(", ".join(str(s) for s in manifest.get("seeds", suite.get("seeds", []))))),
        ("samples per dataset", _e(manifest.get("samples_per_dataset", suite.get("samples", "–")))),
        ("cells", _e(manifest.get("cells", "–"))),
        ("target", _e(suite.get("target", "–"))), ("subset", _e(suite.get("subset", "–"))),  # a review: only in JSON
        ("datasets", labels("datasets")), ("models", labels("models")),
        ("explainers", labels("explainers")), ("metrics", labels("metrics")),
        ("git", _e(manifest.get("git") or "–")), ("device", _e(manifest.get("device", "–"))),
        ("control", _e(manifest.get("control", suite.get("control", "random")))),
    ]  # the wall time stays in manifest.json: the page is the same for the same results
    versions = manifest.get("versions") or {}
    if versions:
        facts.append(("versions", _e(", ".join(f"{k} {v}" for k, v in versions.items()))))
    if manifest.get("data_warnings"):  # a label map placed from its first voxel, a model returning probabilities
        facts.append(("data and model warnings", "<br>".join(_e(w) for w in manifest["data_warnings"])))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    raw = _e(json.dumps(manifest.get("suite", {}), indent=2, default=str))
    return (str(name), str(suite.get("description") or "").strip(),
            f'<dl class="facts">{body}</dl><details><summary>resolved suite (JSON)</summary><pre>{raw}</pre></details>')


def _models_html(models: pd.DataFrame, summary: pd.DataFrame) -> str:
    if summary.empty:
        return '<p class="empty">no models.csv rows</p>'
    frame = summary[[c for c in ("dataset", "model", "seeds", "checkpoints") if c in summary.columns]].copy()
    for column in summary.columns:
        if column.endswith("_mean"):
            score = column[: -len("_mean")]
            sd = summary.get(f"{score}_sd")
            sds = sd if sd is not None else [math.nan] * len(summary)
            frame[score] = [format_number(m) + ("" if math.isnan(s) else f" ± {format_number(s)}")
                            for m, s in zip(summary[column], sds)]
    per_seed = table_html(integer_counts(models))
    shared = "".join(f'<p class="note">{_e(m)}.</p>' for m in shared_checkpoint_messages(models))
    return (table_html(frame) + '<p class="note">test split; mean ± sd over the seeds\' distinct checkpoints '
            "(checkpoints: a model no seed retrains loads one under every seed, and has no sd)</p>" + shared
            + f"<details><summary>per checkpoint (models.csv)</summary>{per_seed}</details>")


def _reliance_html(table: pd.DataFrame | None) -> str:
    """What each model relies on, by intervention (``reliance.csv`` as read; None: not written):
    set this beside the saliency mass on the lesion and on the marker (relevance_mass with
    ``mask: marker``)."""
    if table is None or table.empty:
        return ""
    return ("<h3>Measured reliance (intervention)</h3>" + table_html(table)
            + '<p class="note">mean_drop: drop in the predicted class\'s probability when the evidence '
              "is removed from the image (the same sample regenerated without it); flip_rate: how often "
              "the prediction changes. Compare with each explainer's relevance mass on that evidence.</p>")


def _chance_item(row: object) -> str:
    """A model of the at-chance warning: each flagged checkpoint's own test AUC CI (never one interval over
    the seeds), and the seeds whose AUC is undefined."""
    cis = tuple(getattr(row, "cis", ()) or ())
    parts = [f"test AUC 95% CI {ci_text(cis)}"] if cis else []
    if getattr(row, "auc_undefined", ""):
        parts.append(f"AUC undefined for seed {row.auc_undefined}")
    if getattr(row, "ci_too_few", ""):
        parts.append(f"too few test samples of a class for an AUC CI ({row.ci_too_few})")
    return f"{_e(row.dataset)} / {_e(row.model)} ({_e('; '.join(parts))})"


def render_html(
    *,
    root: Path,
    manifest: dict | None,
    board: pd.DataFrame,
    models: pd.DataFrame,
    models_table: pd.DataFrame, cost_table: pd.DataFrame,
    skipped: pd.DataFrame | None,
    failures: pd.DataFrame | None,
    friedman: pd.DataFrame,
    overall: pd.DataFrame,
    agreement: pd.DataFrame,
    pairwise: pd.DataFrame,
    region_tests: pd.DataFrame | None = None,
    region_pairwise: pd.DataFrame | None = None,
    undefined: pd.DataFrame | None = None,
    at_chance: pd.DataFrame | None = None,
    single_class: pd.DataFrame | None = None,
    control: str = "random",
    reliance: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
) -> str:
    """The page as a string. Plots are every ``plots/*.png`` under ``root``, placed by name:
    ``curves_``, ``distributions_``, ``cd_`` per (dataset, model); ``models``, ``cost``,
    ``sanity_``, ``gallery_``, ``strata_`` in their sections; anything else under "Other plots". ``undefined``
    (:func:`faithbench.stats.chance.undefined_counts`) is shown with the skipped cells; ``at_chance``
    (:func:`faithbench.stats.chance.models_at_chance`) as a warning above the leaderboard, each checkpoint with its
    own CI; so are ``single_class`` (:func:`faithbench.stats.chance.single_class_models`) and the failed cells
    of ``failures`` (:func:`~faithbench.reports.notes.failed_cells`), also listed in "Skipped and failed".
    ``control``: the explainer that the leaderboard's ``*`` was tested against (named in its legend);
    ``samples`` (``samples.csv`` as read): a table whose maps explain other classes says how many. The
    sections of :mod:`faithbench.reports.medical` appear when their CSV files exist in ``root``."""
    from faithbench.reports.plots import safe_name

    plots = root / "plots"
    pngs = sorted(plots.glob("*.png")) if plots.is_dir() else []
    used: set[Path] = set()

    def matching(prefix: str) -> list[Path]:
        return [p for p in pngs if p.stem.startswith(prefix) and p not in used]

    def named(stem: str) -> list[Path]:
        return [p for p in pngs if p.stem == stem and p not in used]

    title, description, facts = _suite_html(manifest)
    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)
    sections.append(("suite", "Suite", facts))

    from faithbench.reports.figure import at_chance as in_chance_block, blocks_at_chance, model_marks

    chance_pairs = set() if at_chance is None else set(zip(at_chance["dataset"].astype(str),
                                                           at_chance["model"].astype(str)))
    # the leaderboard's own flag, per (dataset, model[, class]) as the tables decide their †: a multi-label
    # model's class at chance is named "model (class c)" in at_chance (a held-out review: no † on its heading)
    chance_blocks = blocks_at_chance(board) | chance_pairs
    # a model's row names the classes at chance when only they are (a held-out review: † on a macro CI above 0.5)
    marks = model_marks(chance_blocks, chance_pairs)
    if marks and not models_table.empty:
        models_table = models_table.assign(model=[f"{m} {marks[(str(d), str(m))]}" if (str(d), str(m)) in marks
                                                  else m for d, m in zip(models_table["dataset"],
                                                                         models_table["model"])])
    sections.append(("models", "Models", _models_html(models, models_table)
                     + _reliance_html(reliance)
                     + _figures([p for p in pngs if p.stem == "models"], root, used)))

    boards = _leaderboard_html(board)
    also = [f'<a href="{n}">{label}</a>' for n, label in (("leaderboard.md", "Markdown"), ("leaderboard.tex", "LaTeX"))
            if (root / n).exists()]
    parts = []
    if at_chance is not None and not at_chance.empty:
        parts.append(f'<p class="warn">{_e(CHANCE_NOTE)}: '
                     + "; ".join(_chance_item(r) for r in at_chance.itertuples(index=False)) + ".</p>")
    if single_class is not None and not single_class.empty:
        parts.append('<p class="warn">model predicts one class for every test sample, so its maps explain that '
                     "class whatever the image; read its rows with caution: " + "; ".join(
                         f"{_e(r.dataset)} / {_e(r.model)} (seed {_e(r.seeds)}; test accuracy {_e(r.accuracy)})"
                         for r in single_class.itertuples(index=False)) + ".</p>")
    parts += [f'<p class="warn">{_e(m)}.</p>' for m in weak_class_messages(models, samples=samples)
              + majority_messages(models)]
    if failed := failed_cells(failures):  # a held-out review: a failed explainer left no trace above the tables
        parts.append('<p class="warn">failed cells, missing from these tables (no rows; see <a href="#skipped">'
                     "Failures</a>): " + _e("; ".join(failed)) + ".</p>")
    with_chance = "chance" in board.columns and pd.to_numeric(board["chance"], errors="coerce").notna().any()
    chance_level = "; " + CHANCE_LEVEL_NOTE if with_chance else ""
    note = significance_note(control, control_tested(board), control_alone(board, control),
                             control_labels(manifest, board))  # the controls with rows only (a review)
    parts += [f'<p class="note">{_e(note + chance_level)}. '
              'Full table: <a href="leaderboard.csv">leaderboard.csv</a>'
              + (f" (also {', '.join(also)})" if also else "") + ".</p>"]
    if not boards:
        parts.append('<p class="empty">no results</p>')
    for (dataset, model, target_class), table in boards.items():
        stem = f"{safe_name(dataset)}_{safe_name(model)}"
        heading = " / ".join([dataset, model] + ([target_class] if target_class else []))
        if in_chance_block((dataset, model, target_class or ""), chance_blocks):
            heading += f" {DAGGER} (model at chance)"
        in_block = (board["dataset"].astype(str) == dataset) & (board["model"].astype(str) == model)
        if target_class:  # multi-label: plots per explained class
            stem += f"_{safe_name(target_class)}"
            in_block &= board["class"].fillna("").astype(str) == target_class
        mixed = mixed_classes_note(samples, dataset, model, target_class, board[in_block])
        parts.append(f"<h3>{_e(heading)}</h3>{table}" + (f'<p class="warn">{_e(mixed)}</p>' if mixed else ""))
        parts.append(_figures(named(f"curves_{stem}"), root, used))
        distributions = _figures(named(f"distributions_{stem}"), root, used)
        parts.append(distributions + (f'<p class="note">{_e(DISTRIBUTION_NOTE)}</p>' if distributions else ""))
        metrics = sorted(board.loc[in_block, "metric"].astype(str).unique())
        cds = [p for m in metrics for p in named(f"cd_{stem}_{safe_name(m)}")]
        if cds:
            parts.append("<details open><summary>critical-difference diagrams (Nemenyi, α = 0.05)</summary>"
                         + _figures(cds, root, used) + "</details>")
    from faithbench.reports.medical import medical_sections, reliability_note

    parts.append(reliability_note(root, board))
    sections.append(("leaderboard", "Leaderboard", "".join(parts)))

    sections.append(("statistics", "Statistics", statistics_html(friedman, overall, agreement, pairwise,
                                                                 chance_blocks)))

    if region_tests is not None:
        from faithbench.reports.regions import regions_html

        sections.append(("regions", "Regions", regions_html(board, region_tests, region_pairwise, chance_blocks,
                                                              failures)
                         + _figures(matching("regions_"), root, used)))

    sections += medical_sections(root, lambda prefix: _figures(matching(prefix), root, used), manifest, control)

    sanity = matching("sanity_")
    if sanity:
        sections.append(("sanity", "Sanity checks",
                         '<p class="note">model-parameter randomisation: similarity of the saliency to the '
                         "original as layers are randomised (a faithful explainer drops)</p>"
                         + _figures(sanity, root, used)))
    gallery = matching("gallery_")
    from faithbench.reports.gallery import GALLERY_NOTE, gallery_failure_note, missing_galleries

    missing = missing_galleries(root, zip(board["dataset"], board["model"])) if "model" in board else []
    if gallery or missing:  # none after plots/ was deleted: say why rather than drop the section
        note = f'<p class="note">none for {_e(", ".join(missing))}: {_e(GALLERY_NOTE)}.</p>' if missing else ""
        seeds = (manifest or {}).get("seeds") or ((manifest or {}).get("suite") or {}).get("seeds") or [None]
        failed = gallery_failure_note(failures, (p.stem for p in gallery), seeds[0])  # a review: a column unmarked
        note += f'<p class="warn">{_e(failed)}.</p>' if failed else ""
        sections.append(("gallery", "Saliency gallery", note + _figures(gallery, root, used)))

    sections.append(("cost", "Cost", table_html(cost_table, "no cost.csv rows")
                     + '<p class="note">seconds and passes (images forwarded) summed over seeds and metrics; '
                     '<a href="cost.csv">cost.csv</a></p>'
                     + _figures([p for p in pngs if p.stem == "cost"], root, used)))

    skips, partly = split_skipped(skipped)
    skip_parts = [f"<h3>Skipped cells and metrics ({len(skips)})</h3>", table_html(skips, "none")]
    if not partly.empty:
        skip_parts += [f"<h3>Metrics with undefined samples ({len(partly)} cell–metric pairs)</h3>",
                       '<p class="note">the metric ran; these samples have no value (NaN, e.g. an image without '
                       "the mask the metric needs) and no row: left out of the leaderboard's n</p>",
                       table_html(partly, "none")]
    if undefined is not None:
        total = int(undefined["undefined"].sum()) if not undefined.empty else 0
        skip_parts += [f"<h3>NaN values held in results.parquet ({total})</h3>",
                       '<p class="note">metric values that results.parquet holds as NaN (written by another writer: '
                       "a run writes no row for an undefined value, counted above), per cell: left out of "
                       "the leaderboard's n, mean and tests</p>", table_html(undefined, "none")]
    if failures is not None:
        skip_parts += ["<h3>Failures</h3>", table_html(failures, "none")]
    sections.append(("skipped", "Skipped and failed", "".join(skip_parts)))

    rest = [p for p in pngs if p not in used]
    if rest:
        sections.append(("other", "Other plots", _figures(rest, root, used)))

    nav = "".join(f'<a href="#{a}">{_e(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{_e(h)}</h2>{b}</section>' for a, h, b in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>faithbench: {_e(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>faithbench: {_e(title)}</h1><p>{_e(description)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")
