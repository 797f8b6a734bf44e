"""The leaderboard of a run in LaTeX: one booktabs ``table`` per (dataset, model) over the cells of
:func:`faithbench.reports.tables.leaderboard_tables` (the layout and marks: that module's doc). Pure text; no
file I/O here."""

from __future__ import annotations

import math
import re

import pandas as pd

from faithbench.reports.markup import LATEX_PREAMBLE, latex_breakable, latex_escape
from faithbench.reports.notes import (CHANCE_LEVEL_NOTE, CHANCE_REASONS, FAILED_NOTE, control_alone, control_phrase,
                                      control_tested, failed_cells, present_controls, significance_note)
from faithbench.reports.tables import LeaderboardTable, chance_text, leaderboard_tables

__all__ = ["leaderboard_latex"]


def _latex_categories(table: LeaderboardTable) -> list[str]:
    """The category row of a LaTeX table (one ``\\multicolumn`` per category, a ``\\cmidrule`` under
    each), or nothing when no metric has a category."""
    if not table.categories:
        return []
    spans, rules, first = [""], [], 2
    for category, metrics in table.groups():
        last = first + len(metrics) - 1
        spans.append(rf"\multicolumn{{{len(metrics)}}}{{c}}{{{latex_escape(category)}}}")
        rules.append(rf"\cmidrule(lr){{{first}-{last}}}")
        first = last + 1
    return [" & ".join(spans) + r" \\", " ".join(rules)]


SMALL_N = 30  # below it the percentile bootstrap CI covers less than 95% (notes.py's legend)


def _ns(table: LeaderboardTable) -> set[int]:
    """The n (samples with a defined value) of the cells of ``table`` that give one."""
    return {c.n for cells in table.cells.values() for c in cells.values() if c is not None and c.n is not None}


def _smallest_n(table: LeaderboardTable) -> int | None:
    """The fewest samples of a cell of ``table`` that has a CI (n ≥ 2; None: none). A held-out review: the
    caption said "here n = 0" of a cell with no value, which has no CI to cover anything."""
    return min((n for n in _ns(table) if n >= 2), default=None)


def _minus(number: str) -> str:
    """A number's minus signs (leading, or of an exponent: 5.13e-07) as math minus: text mode sets a hyphen."""
    return re.sub(r"-(?=\d)", "$-$", number)


def _label(table: LeaderboardTable, used: set[str]) -> str:
    """The ``\\label`` of ``table``, with ``-2``, ``-3``... on one already ``used`` in the file (a held-out review:
    dataset ``x-y`` with model ``z`` and dataset ``x`` with model ``y-z`` both gave ``tab:faithbench-x-y-z``)."""
    from faithbench.names import safe_name

    base = "tab:faithbench-" + safe_name(table.title.replace(" / ", "-"))
    label, k = base, 1
    while label in used:
        k += 1
        label = f"{base}-{k}"
    used.add(label)
    return label


def _rank_notes(table: LeaderboardTable) -> str:
    """``; deletion\\_auc: on the 1 sample every explainer with a value has`` for each column whose rank 1 came
    from fewer samples than any of its cells has (:meth:`LeaderboardTable.rank_note`)."""
    return "".join(f"; {latex_escape(m)}: {table.rank_note(m).removeprefix('rank 1: ')}"
                   for m in table.metrics if table.rank_note(m))


def _warnings_of(table: LeaderboardTable, warnings: list[str] | None) -> str:
    """The checkpoint warnings (:func:`faithbench.stats.chance.model_warnings`) of ``table``'s (dataset, model)
    as caption sentences; "model at chance" is left to the † footnote."""
    where = f": {table.dataset} / {table.model} (seed "
    own = [w for w in warnings or [] if where in w and not w.startswith("model at chance")]
    return "".join(f" Warning: {latex_escape(w)}." for w in own)


def leaderboard_latex(board: pd.DataFrame, control: str = "random", failures: pd.DataFrame | None = None,
                      warnings: list[str] | None = None, controls: dict[str, list[str]] | None = None) -> str:
    """The leaderboard as LaTeX (booktabs): one ``table`` per (dataset, model), see the module doc.

    Sized for one column of ``article`` (345 pt): ``\\footnotesize``, 2.5 pt column gaps, each cell
    two lines (the mean with its marks, then the CI in ``\\scriptsize``; a third, ``n=29``, for a cell
    with fewer samples than its column), names split after underscores (:func:`latex_breakable`), n under
    each metric name. Above the metric names, a row of their categories (``\\multicolumn`` with a ``\\cmidrule``
    under each; none when no metric has a category); below the explainers, after a ``\\midrule``,
    the "chance" row when a metric has a chance level. A table still wider than ``\\linewidth``
    (many metrics) is scaled down to it by ``\\faithbenchfit``. Needs ``\\usepackage{booktabs}`` and
    ``\\usepackage{graphicx}``; every name is escaped with :func:`latex_escape`. ``control``: the explainer that
    ``*`` was tested against (named in the caption). ``failures`` (``failures.csv``): a caption names the failed
    cells of its (dataset, model), which have no rows (:func:`~faithbench.reports.notes.failed_cells`).
    ``warnings`` (:func:`faithbench.stats.chance.model_warnings`): a caption gives those of its (dataset, model),
    e.g. "model predicts one class", and a table with a cell of fewer than :data:`SMALL_N` samples says that its
    CIs cover less than 95%: a caption is what goes into a paper (a held-out review: both were only ``%`` comments).
    ``controls``: the labels of the run's control explainers (:func:`~faithbench.reports.notes.control_labels`),
    which the legend comment names (a diff review: an aliased ``random`` was left out of it).
    """
    arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
    tables = leaderboard_tables(board)
    lines = ["% faithbench leaderboard; needs \\usepackage{booktabs} and \\usepackage{graphicx}",
             "% " + significance_note(control, control_tested(board), control_alone(board, control),
                                      present_controls(board, controls)).replace("↑ h", "h").replace("↓ l", "l"),
             *LATEX_PREAMBLE, ""]
    stars = (r"$^{*}$: better than " + latex_escape(control_phrase(control)) + r" (one-sided Wilcoxon, Holm-adjusted "
             r"$p<0.05$), $^{\circ}$: worse; " if control_tested(board) else
             "nothing was tested against the control: no $^{*}$ marks; " if control_alone(board, control) else
             "no control explainer in this suite: no $^{*}$ marks; ")
    labels: set[str] = set()
    for table in tables:
        dagger = r"$^{\dagger}$" if table.at_chance else ""
        at_chance = (r" $^{\dagger}$Model at chance: " + latex_escape(CHANCE_REASONS) + r"; marks of significance "
                     r"withheld." if table.at_chance else "")
        at_chance += (r" $^{\ddagger}$Failed the metric reliability check or had too few samples for its verdict "
                      r"(reliability.csv): read with caution." if table.unreliable else "")
        failed = failed_cells(failures, table.dataset, table.model)  # a review: only a % comment named them
        at_chance += f" {FAILED_NOTE}: {latex_escape('; '.join(failed))}." if failed else ""
        at_chance += _warnings_of(table, warnings)
        fewest = _smallest_n(table)
        small = (rf" With fewer than about {SMALL_N} samples (here n = {fewest}) the 95\% CI covers less than 95\% "
                 r"(about 89\% at n = 8, 92\% at n = 16 to 20)." if fewest is not None and fewest < SMALL_N else "")
        small += " [--]: a single sample, no interval." if 1 in _ns(table) else ""
        lines += [r"\begin{table}[ht]", r"\centering",
                  r"\caption{" + latex_escape(table.title) + dagger
                  + r": mean [95\% bootstrap CI]; bold: best per column (rank 1: on the samples every explainer with a "
                  + r"value has"
                  + _rank_notes(table) + "); "
                  + r"rows in order of their mean rank; " + stars + r"n: samples with a defined value." + small
                  + (" " + latex_escape(CHANCE_LEVEL_NOTE[0].upper() + CHANCE_LEVEL_NOTE[1:]) + "."
                     if table.has_chance() else "") + at_chance + "}",
                  r"\label{" + _label(table, labels) + "}",
                  r"\footnotesize", r"\setlength{\tabcolsep}{2.5pt}",
                  r"\faithbenchfit{%",
                  r"\begin{tabular}{l" + "r" * len(table.metrics) + "}", r"\toprule"]
        lines += _latex_categories(table)
        header = ["Explainer"]
        for m in table.metrics:
            n = table.n_header(m).replace("≤", r"$\leq$")
            header.append(r"\faithbenchcell[c]{" + latex_breakable(m) + " " + arrows[table.higher_is_better[m]]
                          + (r"$^{\ddagger}$" if m in table.unreliable else "")
                          + (r"\\" + n if n else "") + "}")
        lines.append(" & ".join(header) + r" \\")
        lines.append(r"\midrule")
        for explainer in table.explainers:
            row = [r"\faithbenchcell[l]{" + latex_breakable(explainer) + "}"]
            for metric in table.metrics:
                cell = table.cells[explainer][metric]
                if cell is None or math.isnan(cell.mean):  # n = 0 said, as the Markdown does (a review)
                    none = table.n_note(explainer, metric).replace(" ", "")
                    row.append(r"\faithbenchcell{--\\{\scriptsize " + none + "}}" if none else "--")
                    continue
                mean = _minus(cell.number())
                mean = r"\textbf{" + mean + "}" if cell.best else mean
                mean += {"*": r"$^{*}$", "°": r"$^{\circ}$"}.get(table.mark_of(cell), "")
                note = table.n_note(explainer, metric).replace(" ", "")
                note = r"\\{\scriptsize " + note + "}" if note else ""  # a third line: the column stays narrow
                interval = _minus(cell.interval("--").replace(" ", ""))
                row.append(r"\faithbenchcell{" + mean + r"\\{\scriptsize " + interval + "}" + note + "}")
            lines.append(" & ".join(row) + r" \\")
        if table.has_chance():
            chance = [_minus(chance_text(table, m)) for m in table.metrics]
            lines += [r"\midrule", " & ".join([r"\textit{chance}"] + chance) + r" \\"]
        lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)
