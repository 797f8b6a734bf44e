"""The leaderboard of a run in Markdown (and its cells, which the HTML page and :mod:`faithbench.reports.latex` share).
Pure functions of the tidy tables; no file I/O here.

The leaderboard layout is one table per (dataset, model): rows are explainers (best mean
rank across the metrics first), columns are metrics with ↑ (higher is better) or ↓ in the
header, grouped by category (:data:`CATEGORY_ORDER`, then any other category alphabetically,
metrics alphabetical within one; Markdown: one table per category, LaTeX and HTML: a category
header row), cells ``mean [ci_low, ci_high]`` (95% percentile bootstrap CI of the mean). The
best of each column (``rank`` 1 of ``leaderboard.csv``: oriented by ``higher_is_better``, by the
means over the samples on which every explainer with a value is defined, so it can differ from the best
``mean`` only where the n differ; ties all marked, none where every explainer ties, none where the csv has no
rank: one explainer of several with a value) is bold, and
``*`` marks an explainer better than the run's control explainer (the suite's ``control:``,
default ``random``; one-sided Wilcoxon signed-rank, Holm-adjusted p < 0.05; the ``beats_random``
column of ``leaderboard.csv``; none without a control), ``°`` one worse than it (``worse_than_random``,
the other side of that test), which the notes name (:func:`significance_note`). A
column's numbers share one number of decimals (:func:`~faithbench.reports.markup.column_decimals`). Each metric's
header gives n, the samples with a defined value (a cell whose n is below the column's largest
shows its own). A last row, "chance", gives the chance level of the metrics that have one (the
``chance`` column: localisation metrics). A model at chance (``model_at_chance``: its test AUC CI
does not lie above 0.5, see :mod:`faithbench.stats.chance`) gets ``†`` after its title and no
``*`` or ``°`` marks. A metric that failed the metric reliability check (the ``metric_unreliable`` column,
:func:`faithbench.reports.medical.mark_unreliable`) gets ``‡`` in its header, the mark of the
reliability footnote.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from faithbench.names import counted
from faithbench.reports.markup import format_fixed, format_number, latex_escape, markdown_escape, ranked_decimals
from faithbench.reports.notes import (CHANCE_LEVEL_NOTE, CHANCE_NOTE, DAGGER,  # re-exported
                                      control_alone, control_tested, present_controls, significance_note,
                                      split_skipped)
from faithbench.stats.reliability import RELIABILITY_MARK
from faithbench.types import CATEGORY_ORDER, OTHER, category_key

__all__ = ["CATEGORY_ORDER", "CHANCE_LEVEL_NOTE", "LeaderboardTable", "OTHER", "RELIABILITY_MARK", "category_key",
           "chance_text", "format_number", "latex_escape", "leaderboard_markdown",
           "leaderboard_tables", "markdown_escape", "metric_order", "significance_note", "split_skipped"]

@dataclass(frozen=True)
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    best: bool
    significant: bool
    worse: bool = False  # worse than the control (``worse_than_random``)
    n: int | None = None  # samples with a defined value
    decimals: int = 3  # the column's (:func:`~faithbench.reports.markup.column_decimals`; -k: scientific)
    n_common: int | None = None  # the samples every explainer with a value has, which the rank was taken on

    def number(self) -> str:
        return format_fixed(self.mean, self.decimals)

    def text(self) -> str:
        return "–" if math.isnan(self.mean) else f"{self.number()} {self.interval()}"

    def interval(self, dash: str = "–") -> str:
        """``[low, high]``; ``[–]`` for a single sample (n = 1), whose bootstrap gives the zero-width [v, v]
        that a review read as a 95% CI without uncertainty (``leaderboard.csv`` keeps [v, v])."""
        if self.n == 1:
            return f"[{dash}]"
        return f"[{format_fixed(self.ci_low, self.decimals)}, {format_fixed(self.ci_high, self.decimals)}]"


@dataclass(frozen=True)
class LeaderboardTable:
    """One (dataset, model) of the leaderboard, or (dataset, model, class) for multi-label
    results: ``cells[explainer][metric]`` (None: no value)."""

    dataset: str
    model: str
    metrics: list[str]
    higher_is_better: dict[str, bool]
    explainers: list[str]
    cells: dict[str, dict[str, Cell | None]]
    target_class: str = ""  # the explained class (multi-label results), else empty
    at_chance: bool = False  # the model's test AUC CI does not lie above 0.5: no significance marks
    categories: dict[str, str] = field(default_factory=dict)  # metric -> category; empty: none given
    chance: dict[str, float] = field(default_factory=dict)  # metric -> chance level (absent or NaN: none)
    unreliable: frozenset[str] = frozenset()  # metrics that failed the reliability check: ‡ in their header
    decimals: dict[str, int] = field(default_factory=dict)  # metric -> its column's decimals (absent: 3)

    @property
    def title(self) -> str:
        return " / ".join([self.dataset, self.model] + ([self.target_class] if self.target_class else []))

    def arrow(self, metric: str) -> str:
        return "↑" if self.higher_is_better[metric] else "↓"

    def mark(self, metric: str) -> str:
        """`` ‡`` after the arrow of a metric that failed the reliability check, else empty."""
        return f" {RELIABILITY_MARK}" if metric in self.unreliable else ""

    def n_max(self, metric: str) -> int | None:
        """The largest n of the column (the header's n), None without an ``n`` column."""
        ns = [c.n for e in self.explainers if (c := self.cells[e][metric]) is not None and c.n is not None]
        return max(ns) if ns else None

    def n_header(self, metric: str) -> str:
        """``n = 32``, or ``n ≤ 32`` when some explainer has fewer defined values (or none: "–");
        empty without n."""
        top = self.n_max(metric)
        if top is None:
            return ""
        short = any(c is None or (c.n is not None and c.n < top) for c in self.cells_of(metric))
        return f"n {'≤' if short else '='} {top}"

    def n_note(self, explainer: str, metric: str) -> str:
        """``n = 29`` for a cell with fewer defined values than its column's largest, ``n = 0`` for one with no
        value (no row in ``leaderboard.csv`` or a row with n 0: a review found `–` and `– (n = 0)` for the same
        case in one run, under an "n ≤ 3" header whose every printed n was 3), else empty (a column without n)."""
        cell, top = self.cells[explainer][metric], self.n_max(metric)
        if top is None:
            return ""
        if cell is None:
            return "n = 0"
        return f"n = {cell.n}" if cell.n is not None and cell.n < top else ""

    def rank_note(self, metric: str) -> str:
        """"rank 1: on the 1 sample every explainer with a value has" where the column's rank came from fewer
        samples (``n_common`` of ``leaderboard.csv``) than some of its cells' means, so bold can differ from the best
        printed mean; else empty (a held-out review: bold went to an n = 1 cell below a higher mean, n = 8, on a ↑
        column, ranked on the one sample they shared, with no word of it)."""
        cells = [c for c in self.cells_of(metric) if c is not None and c.n]
        common = {c.n_common for c in cells} - {None}
        most = max((c.n for c in cells), default=0)
        if len(common) != 1 or not min(common) or min(common) >= most or not any(c.best for c in cells):
            return ""
        return f"rank 1: on the {counted(min(common), 'sample')} every explainer with a value has"

    def head_note(self, metric: str) -> str:
        """What a column's header says under its name: :meth:`n_header`, then :meth:`rank_note`."""
        return "; ".join(text for text in (self.n_header(metric), self.rank_note(metric)) if text)

    def groups(self) -> list[tuple[str, list[str]]]:
        """The metrics in column order, by category: ``[(category, metrics)]``; one group named ""
        when no metric has a category."""
        groups: list[tuple[str, list[str]]] = []
        for metric in self.metrics:
            category = self.categories.get(metric, OTHER) if self.categories else ""
            if groups and groups[-1][0] == category:
                groups[-1][1].append(metric)
            else:
                groups.append((category, [metric]))
        return groups

    def chance_level(self, metric: str) -> float:
        return float(self.chance.get(metric, math.nan))

    def has_chance(self, metrics: list[str] | None = None) -> bool:
        """Some metric (of ``metrics``, default all) has a chance level: the table gets a chance row."""
        return any(math.isfinite(self.chance_level(m)) for m in (self.metrics if metrics is None else metrics))

    def cells_of(self, metric: str) -> list[Cell | None]:
        return [self.cells[e][metric] for e in self.explainers]

    def mark_of(self, cell: Cell) -> str:
        """``*`` better than the control, ``°`` worse, else (or with the model at chance) empty."""
        return "" if self.at_chance else "*" if cell.significant else "°" if cell.worse else ""


def is_true(value: object) -> bool:
    """A flag of a table read back from CSV (True, 'True', 1, '1.0', ...) as a bool."""
    return str(value) in ("True", "true", "1", "1.0")


def _categories(frame: pd.DataFrame) -> dict[str, str]:
    """Each metric's category (the first given; :data:`OTHER` when none); empty when no row has one."""
    if "category" not in frame.columns:
        return {}
    given = frame[frame["category"].notna() & (frame["category"].astype(str).str.strip() != "")]
    if given.empty:
        return {}
    first = given.groupby("metric", sort=False, observed=True)["category"].first().dropna().astype(str).str.strip()
    return {str(m): first.get(m, OTHER) for m in frame["metric"].unique()}


def metric_order(frame: pd.DataFrame, categories: dict[str, str] | None = None) -> list[str]:
    """The metrics of ``frame`` in the leaderboard's column order (the distribution plots' too): by
    :func:`category_key` of their category (``categories``, default from the ``category`` column),
    then by name."""
    categories = _categories(frame) if categories is None else categories
    return sorted(frame["metric"].unique(), key=lambda m: (category_key(categories.get(m, "")), str(m)))


def _chance_level(rows: pd.DataFrame) -> float:
    """The mean chance level over the samples with a defined value: the explainers' ``chance``
    weighted by their ``n`` (unweighted without n); NaN when no row has one."""
    if "chance" not in rows.columns:
        return math.nan
    chance = pd.to_numeric(rows["chance"], errors="coerce").astype(float)
    weight = pd.to_numeric(rows["n"], errors="coerce") if "n" in rows.columns else pd.Series(1.0, rows.index)
    ok = np.isfinite(chance)
    if not ok.any():
        return math.nan
    w = weight[ok].fillna(0).astype(float)
    return float(np.average(chance[ok], weights=w)) if w.sum() > 0 else float(chance[ok].mean())


def _decimals(sub: pd.DataFrame, ranks: np.ndarray, best: float) -> int:
    """A column's decimals (:func:`~faithbench.reports.markup.ranked_decimals`): its means, those ranked ``best``
    (bold) against the mean of the best-ranked cell below them."""
    return ranked_decimals(pd.to_numeric(sub["mean"], errors="coerce").to_numpy(dtype=float), ranks, best)


def leaderboard_tables(board: pd.DataFrame) -> list[LeaderboardTable]:
    """Split ``leaderboard.csv`` into one :class:`LeaderboardTable` per (dataset, model), sorted.

    Best per column: the lowest ``rank`` (1; all tied explainers marked). Metric order: by
    :func:`category_key` of the ``category`` column, then name. Explainer order: mean of their ranks
    over the metrics, then name. Chance level per metric: :func:`_chance_level`.
    """
    tables = []
    if board.empty:
        return tables
    blocks = ["dataset", "model"]
    if "class" in board.columns:  # multi-label: one table per explained class
        board = board.assign(**{"class": board["class"].fillna("").astype(str)})
        blocks.append("class")
    for key, frame in board.groupby(blocks, sort=True):
        dataset, model = key[0], key[1]
        target_class = str(key[2]) if len(key) > 2 else ""
        categories = _categories(frame)
        metrics = metric_order(frame, categories)
        hib = {m: bool(frame.loc[frame["metric"] == m, "higher_is_better"].iloc[0]) for m in metrics}
        order = (frame.groupby("explainer")["rank"].mean().rename("r").reset_index()
                 .sort_values(["r", "explainer"], na_position="last", kind="stable"))
        explainers = [str(e) for e in order["explainer"]]
        cells: dict[str, dict[str, Cell | None]] = {e: dict.fromkeys(metrics) for e in explainers}
        decimals = {}
        for metric in metrics:
            sub = frame[frame["metric"] == metric]
            ranks = pd.to_numeric(sub["rank"]).to_numpy(dtype=float)
            # no bold where one explainer alone has a value (a review: a control, bold among "–"), nor where every
            # explainer with a value ties (a review: random and sobel bold, all four at 0.000 on pointing_game)
            defined = ranks[~np.isnan(ranks)]
            compared = len(explainers) < 2 or np.unique(defined).size >= 2
            best = np.nanmin(ranks) if compared and not np.isnan(ranks).all() else np.nan
            decimals[metric] = _decimals(sub, ranks, best)
            for row, rank in zip(sub.itertuples(index=False), ranks):
                mean = float(row.mean)
                cells[str(row.explainer)][metric] = Cell(
                    mean=mean, ci_low=float(row.ci_low), ci_high=float(row.ci_high),
                    best=bool(not math.isnan(mean) and rank == best),
                    significant=is_true(row.beats_random), worse=is_true(getattr(row, "worse_than_random", False)),
                    n=int(row.n) if "n" in sub.columns and pd.notna(row.n) else None, decimals=decimals[metric],
                    n_common=int(row.n_common) if "n_common" in sub.columns and pd.notna(row.n_common) else None,
                )
        at_chance = "model_at_chance" in frame.columns and bool(frame["model_at_chance"].map(is_true).any())
        chance = {m: _chance_level(frame[frame["metric"] == m]) for m in metrics}
        unreliable = frozenset(str(m) for m in frame.loc[frame["metric_unreliable"].map(is_true), "metric"]) if (
            "metric_unreliable" in frame.columns) else frozenset()
        tables.append(LeaderboardTable(str(dataset), str(model), metrics, hib, explainers, cells, target_class,
                                       at_chance, categories, chance, unreliable, decimals))
    return tables


def _markdown_table(table: LeaderboardTable, metrics: list[str]) -> list[str]:
    """One pipe table of ``table`` over ``metrics``: the explainers' rows, then the chance row."""
    header = ["explainer"] + [f"{markdown_escape(m)} {table.arrow(m)}{table.mark(m)}"
                              + (f" ({table.head_note(m)})" if table.head_note(m) else "") for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(metrics) + "|"]
    for explainer in table.explainers:
        row = [markdown_escape(explainer)]
        for metric in metrics:
            cell, note = table.cells[explainer][metric], table.n_note(explainer, metric)
            if cell is None:
                row.append("–" + (f" ({note})" if note else ""))
                continue
            text = f"**{cell.text()}**" if cell.best else cell.text()
            mark = table.mark_of(cell).replace("*", "\\*")
            row.append(text + (f" {mark}" if mark else "") + (f" ({note})" if note else ""))
        lines.append("| " + " | ".join(row) + " |")
    if table.has_chance(metrics):
        lines.append("| " + " | ".join(["*chance*"] + [chance_text(table, m) for m in metrics]) + " |")
    return lines + [""]


def chance_text(table: LeaderboardTable, metric: str) -> str:
    """A cell of the chance row: the chance level, empty for a metric without one."""
    level = table.chance_level(metric)
    return format_fixed(level, table.decimals.get(metric, 3)) if math.isfinite(level) else ""


def leaderboard_markdown(board: pd.DataFrame, skipped: pd.DataFrame | None = None,
                         undefined: pd.DataFrame | None = None, after: list[str] | None = None,
                         control: str = "random", controls: dict[str, list[str]] | None = None) -> str:
    """The leaderboard as Markdown: per (dataset, model) a ``##`` heading, then per category (in
    column order, see the module doc) a ``###`` heading and its pipe table, the explainers' rows in
    the same order in each (one table, no category heading, when no metric has a category); a table
    with a chance level ends with a "*chance*" row. ``control`` is the explainer that ``*`` was
    tested against (named in the legend); ``controls``: the labels of the suite's control explainers
    (:func:`~faithbench.reports.notes.control_labels`), which the legend names them by.

    ``after``: Markdown lines placed right after the tables (the metric reliability section and
    its footnote, :func:`faithbench.reports.medical.reliability_markdown`). ``skipped``
    (``skipped.csv``) and ``undefined`` (:func:`faithbench.stats.chance.undefined_counts`), when
    given and not empty, are listed after those: the skipped cells' count, and the count of
    undefined values (NaN rows, summed over the listed groups, as the HTML report counts them).
    """
    def escape_note(text: str) -> str:  # the control's name is escaped already: leave its escapes alone
        return re.sub(r"(?<!\\)([*\[\]<])", r"\\\1", text)

    shown = {name: [markdown_escape(label) for label in labels]
             for name, labels in present_controls(board, controls).items()}
    note = significance_note(markdown_escape(control), control_tested(board), control_alone(board, control), shown)
    lines = ["# Leaderboard", "", escape_note(note), ""]
    tables = leaderboard_tables(board)
    if any(t.has_chance() for t in tables):
        lines += [markdown_escape(CHANCE_LEVEL_NOTE), ""]
    if any(t.at_chance for t in tables):
        lines += [CHANCE_NOTE, ""]
    for table in tables:
        lines += [f"## {markdown_escape(table.title)}" + (f" {DAGGER}" if table.at_chance else ""), ""]
        for category, metrics in table.groups():
            lines += [f"### {markdown_escape(category)}", ""] if category else []
            lines += _markdown_table(table, metrics)
    lines += after or []
    skips, partly = split_skipped(skipped)
    for title, frame in (("Skipped", skips), ("Metrics with undefined samples (no row)", partly),
                         ("NaN values held in results.parquet (left out of n)", undefined)):
        if frame is None or frame.empty:
            continue
        count = int(frame["undefined"].sum()) if frame is undefined else len(frame)
        lines += [f"## {title}: {count}", "", "| " + " | ".join(markdown_escape(c) for c in frame.columns) + " |",
                  "|---" * len(frame.columns) + "|"]
        lines += ["| " + " | ".join(markdown_escape("" if pd.isna(v) else v) for v in row) + " |"
                  for row in frame.itertuples(index=False)]
        lines.append("")
    return "\n".join(lines)
