"""Human-readable tables of a run: the leaderboard in Markdown and LaTeX, summaries of the
models and of the cost. Pure functions of the tidy tables; no file I/O here.

The leaderboard layout is one table per (dataset, model): rows are explainers (best mean
rank across the metrics first), columns are metrics with ↑ (higher is better) or ↓ in the
header, cells ``mean [ci_low, ci_high]`` (95% percentile bootstrap CI of the mean). The
best mean of each column (oriented by ``higher_is_better``; ties all marked) is bold, and
``*`` marks an explainer better than the random control (one-sided Wilcoxon signed-rank,
Holm-adjusted p < 0.05; the ``beats_random`` column of ``leaderboard.csv``).
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
]

SIGNIFICANCE_NOTE = ("* better than the random control (one-sided Wilcoxon signed-rank test, "
                     "Holm-adjusted p < 0.05); bold: best mean of the column; "
                     "↑ higher is better, ↓ lower is better; [95% bootstrap CI of the mean]")

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_MARKDOWN_SPECIAL = set("\\`*_[]<>#|~")


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

    def text(self) -> str:
        if math.isnan(self.mean):
            return "–"
        return f"{format_number(self.mean)} [{format_number(self.ci_low)}, {format_number(self.ci_high)}]"


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

    @property
    def title(self) -> str:
        return " / ".join([self.dataset, self.model] + ([self.target_class] if self.target_class else []))

    def arrow(self, metric: str) -> str:
        return "↑" if self.higher_is_better[metric] else "↓"


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
                    significant=str(row.beats_random) in ("True", "1", "1.0"),
                )
        tables.append(LeaderboardTable(str(dataset), str(model), metrics, hib, explainers, cells, target_class))
    return tables


def leaderboard_markdown(board: pd.DataFrame) -> str:
    """The leaderboard as Markdown: one pipe table per (dataset, model), see the module doc."""
    note = "\\" + SIGNIFICANCE_NOTE.replace("[", "\\[").replace("]", "\\]").replace("<", "\\<")
    lines = ["# Leaderboard", "", note, ""]
    for table in leaderboard_tables(board):
        lines += [f"## {markdown_escape(table.title)}", ""]
        header = ["explainer"] + [f"{markdown_escape(m)} {table.arrow(m)}" for m in table.metrics]
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
                row.append(text + (" \\*" if cell.significant else ""))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def leaderboard_latex(board: pd.DataFrame) -> str:
    """The leaderboard as LaTeX (booktabs): one ``table`` per (dataset, model), see the module doc.

    Needs ``\\usepackage{booktabs}``; every name is escaped with :func:`latex_escape`.
    """
    from faithbench.reports.plots import safe_name

    arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
    lines = ["% faithbench leaderboard; needs \\usepackage{booktabs}",
             "% " + SIGNIFICANCE_NOTE.replace("↑", "up").replace("↓", "down"), ""]
    for table in leaderboard_tables(board):
        lines += [r"\begin{table}[ht]", r"\centering", r"\small",
                  r"\caption{" + latex_escape(table.title)
                  + r": mean [95\% bootstrap CI]; bold: best per column; "
                  r"$^{*}$: better than the random control (one-sided Wilcoxon, Holm-adjusted $p<0.05$).}",
                  r"\label{tab:faithbench-" + safe_name(table.title.replace(" / ", "-")) + "}",
                  r"\begin{tabular}{l" + "r" * len(table.metrics) + "}", r"\toprule"]
        header = ["Explainer"] + [f"{latex_escape(m)} {arrows[table.higher_is_better[m]]}" for m in table.metrics]
        lines.append(" & ".join(header) + r" \\")
        lines.append(r"\midrule")
        for explainer in table.explainers:
            row = [latex_escape(explainer)]
            for metric in table.metrics:
                cell = table.cells[explainer][metric]
                if cell is None or math.isnan(cell.mean):
                    row.append("--")
                    continue
                text = cell.text()
                text = r"\textbf{" + text + "}" if cell.best else text
                row.append(text + (r"$^{*}$" if cell.significant else ""))
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
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
