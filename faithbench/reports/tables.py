"""Human-readable tables of a run: the leaderboard in Markdown and LaTeX, summaries of the
models and of the cost. Pure functions of the tidy tables; no file I/O here.

The leaderboard layout is one table per (dataset, model): rows are explainers (best mean
rank across the metrics first), columns are metrics with ↑ (higher is better) or ↓ in the
header, cells ``mean [ci_low, ci_high]`` (95% percentile bootstrap CI of the mean). The
best mean of each column (oriented by ``higher_is_better``; ties all marked) is bold, and
``*`` marks an explainer better than the run's control explainer (the suite's ``control:``,
default ``random``; one-sided Wilcoxon signed-rank, Holm-adjusted p < 0.05; the ``beats_random``
column of ``leaderboard.csv``), which the notes name (:func:`significance_note`). Each metric's
header gives n, the samples with a defined value (a cell whose n is below the column's largest
shows its own). A model at chance (``model_at_chance``: its test AUC CI does not lie above 0.5, see
:mod:`faithbench.stats.chance`) gets ``†`` after its title and no ``*`` marks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "LeaderboardTable",
    "cost_summary",
    "format_number",
    "latex_escape",
    "leaderboard_latex",
    "leaderboard_markdown",
    "leaderboard_tables",
    "markdown_escape",
    "models_summary",
    "significance_note",
]

CHANCE_NOTE = ("† model at chance: the 95% bootstrap CI of its test AUC does not lie above 0.5 (or the AUC is "
               "undefined), so its saliency "
               "says nothing about the task; marks of significance withheld")
DAGGER = "†"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_MARKDOWN_SPECIAL = set("\\`*_[]<>#|~")


def control_phrase(control: str = "random") -> str:
    """How the notes name the control explainer: "the random control", or "the control sobel"."""
    return "the random control" if control == "random" else f"the control {control}"


def significance_note(control: str = "random") -> str:
    """The leaderboard's legend; ``*`` names ``control``, the explainer the one-sided tests compare with."""
    return (f"* better than {control_phrase(control)} (one-sided Wilcoxon signed-rank test, "
            "Holm-adjusted p < 0.05); bold: best mean of the column; "
            "↑ higher is better, ↓ lower is better; [95% bootstrap CI of the mean]; "
            "n: samples with a defined value")


def latex_escape(text: object) -> str:
    """``text`` as LaTeX text mode: the ten special characters and ``< > |`` escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def markdown_escape(text: object) -> str:
    """``text`` safe inside a Markdown table cell: punctuation backslash-escaped, newlines spaced."""
    text = " ".join(str(text).split())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)


def format_number(value: float, digits: int = 3) -> str:
    """Fixed ``digits`` decimals, or ``digits`` significant digits for very large/small values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value != 0 and (abs(value) >= 10 ** 4 or abs(value) < 10 ** -digits):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


@dataclass(frozen=True)
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    best: bool
    significant: bool
    n: int | None = None  # samples with a defined value

    def text(self) -> str:
        if math.isnan(self.mean):
            return "–"
        return f"{format_number(self.mean)} [{format_number(self.ci_low)}, {format_number(self.ci_high)}]"

    def interval(self) -> str:
        return f"[{format_number(self.ci_low)}, {format_number(self.ci_high)}]"


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

    @property
    def title(self) -> str:
        return " / ".join([self.dataset, self.model] + ([self.target_class] if self.target_class else []))

    def arrow(self, metric: str) -> str:
        return "↑" if self.higher_is_better[metric] else "↓"

    def n_max(self, metric: str) -> int | None:
        """The largest n of the column (the header's n), None without an ``n`` column."""
        ns = [c.n for e in self.explainers if (c := self.cells[e][metric]) is not None and c.n is not None]
        return max(ns) if ns else None

    def n_header(self, metric: str) -> str:
        """``n = 32``, or ``n ≤ 32`` when some explainer has fewer defined values; empty without n."""
        top = self.n_max(metric)
        if top is None:
            return ""
        short = any(c is not None and c.n is not None and c.n < top for c in self.cells_of(metric))
        return f"n {'≤' if short else '='} {top}"

    def n_note(self, explainer: str, metric: str) -> str:
        """``n = 29`` for a cell with fewer defined values than its column's largest, else empty."""
        cell, top = self.cells[explainer][metric], self.n_max(metric)
        return f"n = {cell.n}" if cell is not None and cell.n is not None and top is not None and cell.n < top else ""

    def cells_of(self, metric: str) -> list[Cell | None]:
        return [self.cells[e][metric] for e in self.explainers]

    def marked(self, cell: Cell) -> bool:
        """Show the "better than random" mark: significant, and the model not at chance."""
        return cell.significant and not self.at_chance


def _true(value: object) -> bool:
    return str(value) in ("True", "true", "1", "1.0")


def leaderboard_tables(board: pd.DataFrame) -> list[LeaderboardTable]:
    """Split ``leaderboard.csv`` into one :class:`LeaderboardTable` per (dataset, model), sorted.

    Best per column: the largest mean when ``higher_is_better`` else the smallest (all tied
    means marked). Explainer order: mean of their ranks over the metrics, then name.
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
        metrics = sorted(frame["metric"].unique())
        hib = {m: bool(frame.loc[frame["metric"] == m, "higher_is_better"].iloc[0]) for m in metrics}
        order = (frame.groupby("explainer")["rank"].mean().rename("r").reset_index()
                 .sort_values(["r", "explainer"], na_position="last", kind="stable"))
        explainers = [str(e) for e in order["explainer"]]
        cells: dict[str, dict[str, Cell | None]] = {e: dict.fromkeys(metrics) for e in explainers}
        for metric in metrics:
            sub = frame[frame["metric"] == metric]
            means = sub["mean"].astype(float)
            best = np.nan
            if means.notna().any():
                best = means.max() if hib[metric] else means.min()
            for row in sub.itertuples(index=False):
                mean = float(row.mean)
                cells[str(row.explainer)][metric] = Cell(
                    mean=mean, ci_low=float(row.ci_low), ci_high=float(row.ci_high),
                    best=bool(not math.isnan(mean) and mean == best),
                    significant=_true(row.beats_random),
                    n=int(row.n) if "n" in sub.columns and pd.notna(row.n) else None,
                )
        at_chance = "model_at_chance" in frame.columns and bool(frame["model_at_chance"].map(_true).any())
        tables.append(LeaderboardTable(str(dataset), str(model), metrics, hib, explainers, cells, target_class,
                                       at_chance))
    return tables


def leaderboard_markdown(board: pd.DataFrame, skipped: pd.DataFrame | None = None,
                         undefined: pd.DataFrame | None = None, after: list[str] | None = None,
                         control: str = "random") -> str:
    """The leaderboard as Markdown: one pipe table per (dataset, model), see the module doc;
    ``control`` is the explainer that ``*`` was tested against (named in the legend).

    ``after``: Markdown lines placed right after the tables (the metric reliability section and
    its footnote, :func:`faithbench.reports.medical.reliability_markdown`). ``skipped``
    (``skipped.csv``) and ``undefined`` (:func:`faithbench.stats.chance.undefined_counts`), when
    given and not empty, are listed after those: the skipped cells' count, and the count of
    undefined values (NaN rows, summed over the listed groups, as the HTML report counts them).
    """
    def escape_note(text: str) -> str:
        return "\\" + text.replace("[", "\\[").replace("]", "\\]").replace("<", "\\<")

    lines = ["# Leaderboard", "", escape_note(significance_note(markdown_escape(control))), ""]
    tables = leaderboard_tables(board)
    if any(t.at_chance for t in tables):
        lines += [CHANCE_NOTE, ""]
    for table in tables:
        lines += [f"## {markdown_escape(table.title)}" + (f" {DAGGER}" if table.at_chance else ""), ""]
        header = ["explainer"] + [f"{markdown_escape(m)} {table.arrow(m)}"
                                  + (f" ({table.n_header(m)})" if table.n_header(m) else "") for m in table.metrics]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---" + "|---:" * len(table.metrics) + "|")
        for explainer in table.explainers:
            row = [markdown_escape(explainer)]
            for metric in table.metrics:
                cell = table.cells[explainer][metric]
                if cell is None:
                    row.append("–")
                    continue
                text = cell.text()
                text = f"**{text}**" if cell.best else text
                note = table.n_note(explainer, metric)
                row.append(text + (" \\*" if table.marked(cell) else "") + (f" ({note})" if note else ""))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += after or []
    for title, frame in (("Skipped", skipped), ("Undefined values (NaN, left out of n)", undefined)):
        if frame is None or frame.empty:
            continue
        count = int(frame["undefined"].sum()) if frame is undefined else len(frame)
        lines += [f"## {title}: {count}", "", "| " + " | ".join(markdown_escape(c) for c in frame.columns) + " |",
                  "|---" * len(frame.columns) + "|"]
        lines += ["| " + " | ".join(markdown_escape("" if pd.isna(v) else v) for v in row) + " |"
                  for row in frame.itertuples(index=False)]
        lines.append("")
    return "\n".join(lines)


# Defined once per file with \providecommand, so a document can predefine them: \faithbenchfit
# shrinks a table wider than the line to the line's width (never enlarges it); \faithbenchcell
# stacks a cell's lines.
LATEX_PREAMBLE = [
    r"\providecommand{\faithbenchfit}[1]{\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{#1}}",
    r"\providecommand{\faithbenchcell}[2][r]{\begin{tabular}[t]{@{}#1@{}}#2\end{tabular}}",
]


def _latex_breakable(name: str) -> str:
    """An escaped name split into lines after its underscores (the underscore kept): narrow headers."""
    parts = str(name).split("_")
    return r"\_\\".join(latex_escape(p) for p in parts)


def leaderboard_latex(board: pd.DataFrame, control: str = "random") -> str:
    """The leaderboard as LaTeX (booktabs): one ``table`` per (dataset, model), see the module doc.

    Sized for one column of ``article`` (345 pt): ``\\footnotesize``, 2.5 pt column gaps, each cell
    two lines (the mean with its marks, then the CI in ``\\scriptsize``; a third, ``n=29``, for a cell
    with fewer samples than its column), names split after their
    underscores, n under each metric name. A table still wider than ``\\linewidth`` (many
    metrics) is scaled down to it by ``\\faithbenchfit``. Needs ``\\usepackage{booktabs}`` and
    ``\\usepackage{graphicx}``; every name is escaped with :func:`latex_escape`. ``control``: the
    explainer that ``*`` was tested against (named in the caption).
    """
    from faithbench.reports.plots import safe_name

    arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
    tables = leaderboard_tables(board)
    lines = ["% faithbench leaderboard; needs \\usepackage{booktabs} and \\usepackage{graphicx}",
             "% " + significance_note(control).replace("↑", "up").replace("↓", "down"), *LATEX_PREAMBLE, ""]
    for table in tables:
        dagger = r"$^{\dagger}$" if table.at_chance else ""
        chance = (r" $^{\dagger}$Model at chance: the 95\% bootstrap CI of its test AUC does not lie above 0.5; "
                  r"marks of significance withheld." if table.at_chance else "")
        lines += [r"\begin{table}[ht]", r"\centering",
                  r"\caption{" + latex_escape(table.title) + dagger
                  + r": mean [95\% bootstrap CI]; bold: best per column; "
                  r"$^{*}$: better than " + latex_escape(control_phrase(control))
                  + r" (one-sided Wilcoxon, Holm-adjusted $p<0.05$); "
                  r"n: samples with a defined value." + chance + "}",
                  r"\label{tab:faithbench-" + safe_name(table.title.replace(" / ", "-")) + "}",
                  r"\footnotesize", r"\setlength{\tabcolsep}{2.5pt}",
                  r"\faithbenchfit{%",
                  r"\begin{tabular}{l" + "r" * len(table.metrics) + "}", r"\toprule"]
        header = ["Explainer"]
        for m in table.metrics:
            n = table.n_header(m).replace("≤", r"$\leq$")
            header.append(r"\faithbenchcell[c]{" + _latex_breakable(m) + " " + arrows[table.higher_is_better[m]]
                          + (r"\\" + n if n else "") + "}")
        lines.append(" & ".join(header) + r" \\")
        lines.append(r"\midrule")
        for explainer in table.explainers:
            row = [r"\faithbenchcell[l]{" + _latex_breakable(explainer) + "}"]
            for metric in table.metrics:
                cell = table.cells[explainer][metric]
                if cell is None or math.isnan(cell.mean):
                    row.append("--")
                    continue
                mean = format_number(cell.mean)
                mean = r"\textbf{" + mean + "}" if cell.best else mean
                mean += r"$^{*}$" if table.marked(cell) else ""
                note = table.n_note(explainer, metric).replace(" ", "")
                note = r"\\{\scriptsize " + note + "}" if note else ""  # a third line: the column stays narrow
                row.append(r"\faithbenchcell{" + mean + r"\\{\scriptsize " + cell.interval().replace(" ", "") + "}"
                           + note + "}")
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


MODEL_SCORES = ["accuracy", "f1", "auc", "loss"]


def models_summary(models: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): ``seeds`` and mean and sd (ddof 1; NaN with one seed) of each score.

    Columns: dataset, model, seeds, then ``<score>_mean, <score>_sd`` for the scores of
    ``MODEL_SCORES`` present in ``models.csv``.
    """
    scores = [c for c in MODEL_SCORES if c in models.columns]
    if models.empty or not {"dataset", "model"} <= set(models.columns):
        return pd.DataFrame(columns=["dataset", "model", "seeds"])
    grouped = models.groupby(["dataset", "model"], sort=True)
    out = grouped.size().rename("seeds").to_frame()
    for score in scores:
        values = grouped[score]
        out[f"{score}_mean"] = values.mean()
        out[f"{score}_sd"] = values.std(ddof=1)
    return out.reset_index()


def cost_summary(cost: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, explainer), summed over seeds and metrics: seconds and passes.

    Columns: dataset, model, explainer, samples (summed over seeds), explain_seconds,
    metric_seconds, total_seconds, seconds_per_sample, explain_passes, metric_passes.
    """
    columns = ["dataset", "model", "explainer", "samples", "explain_seconds", "metric_seconds",
               "total_seconds", "seconds_per_sample", "explain_passes", "metric_passes"]
    needed = {"dataset", "model", "explainer", "stage", "seconds"}
    if cost.empty or not needed <= set(cost.columns):
        return pd.DataFrame(columns=columns)
    cost = cost.copy()
    if "passes" not in cost.columns:
        cost["passes"] = np.nan
    keys = ["dataset", "model", "explainer"]
    sums = cost.pivot_table(index=keys, columns="stage", values=["seconds", "passes"], aggfunc="sum",
                            fill_value=0.0)
    out = pd.DataFrame(index=sums.index)
    for stage in ("explain", "metric"):
        out[f"{stage}_seconds"] = sums["seconds"][stage] if stage in sums["seconds"] else 0.0
        out[f"{stage}_passes"] = sums["passes"][stage] if stage in sums["passes"] else 0.0
    if "samples" in cost.columns and "seed" in cost.columns:
        per_seed = cost[cost["stage"] == "explain"].groupby(keys + ["seed"])["samples"].max()
        out["samples"] = per_seed.groupby(level=keys).sum()
    else:
        out["samples"] = np.nan
    out["total_seconds"] = out["explain_seconds"] + out["metric_seconds"]
    out["seconds_per_sample"] = out["total_seconds"] / out["samples"]
    return out.reset_index()[columns].sort_values(keys, kind="stable").reset_index(drop=True)
