"""Text pieces shared by the reports: escaping for HTML, Markdown and LaTeX, number format, plain
HTML tables. Imports nothing of the reports, so every report module may use it."""

from __future__ import annotations

import html
import math
import re
import unicodedata

import numpy as np
import pandas as pd

__all__ = ["LATEX_PREAMBLE", "column_decimals", "disagreement_html", "fixed_columns", "format_fixed", "format_number",
           "latex_breakable", "latex_escape", "markdown_escape", "ranked_decimals", "table_html"]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    '"': r"\textquotedbl{}",  # a plain " is a closing curly quote in OT1 (a held-out review); see LATEX_PREAMBLE
}
_MARKDOWN_SPECIAL = set("\\`*_[]<>#|~$")  # $: GitHub renders $...$ as math
# Math symbols that pdflatex's default UTF-8 input cannot set in text (a held-out review: "Unicode character
# not set up for use with LaTeX" stops the compile); Latin accents, arrows, ±, ×, µ and ° it sets itself.
_LATEX_MATH = {"≤": r"\leq", "≥": r"\geq", "≠": r"\neq", "≈": r"\approx", "∞": r"\infty", "∑": r"\sum",
               "∏": r"\prod", "∫": r"\int", "√": r"\surd", "∂": r"\partial", "∇": r"\nabla", "∈": r"\in",
               "·": r"\cdot", "−": "-", "∆": r"\Delta", "∼": r"\sim", "⊥": r"\perp", "∓": r"\mp", "∝": r"\propto"}
# Greek capitals that look like Latin ones have no LaTeX command: \mathrm{A}, as LaTeX writes them.
_GREEK_LATIN = {"ALPHA": "A", "BETA": "B", "EPSILON": "E", "ZETA": "Z", "ETA": "H", "IOTA": "I", "KAPPA": "K",
                "MU": "M", "NU": "N", "OMICRON": "O", "RHO": "P", "TAU": "T", "CHI": "X"}
_GREEK_LOWER = set("alpha beta gamma delta zeta eta theta iota kappa mu nu xi pi rho sigma tau upsilon chi psi "
                   "omega".split())
_GREEK_UPPER = set("Gamma Delta Theta Xi Pi Sigma Upsilon Phi Psi Omega".split())
_GREEK_OTHER = {"SMALL LETTER FINAL SIGMA": r"\varsigma", "SMALL LETTER OMICRON": "o", "SMALL LETTER LAMDA": r"\lambda",
                "CAPITAL LETTER LAMDA": r"\Lambda", "SMALL LETTER PHI": r"\varphi", "PHI SYMBOL": r"\phi",
                "SMALL LETTER EPSILON": r"\varepsilon", "LUNATE EPSILON SYMBOL": r"\epsilon",
                "THETA SYMBOL": r"\vartheta", "PI SYMBOL": r"\varpi", "RHO SYMBOL": r"\varrho"}
_GREEK = re.compile(r"GREEK ((?:(SMALL|CAPITAL) LETTER )?([A-Z ]+?))(?: WITH .*)?$")


def _latex_greek(ch: str) -> str | None:
    """A Greek letter as math (α -> ``\\ensuremath{\\alpha}``), accents dropped (ά -> α); None if ``ch`` is
    no Greek letter LaTeX has. pdflatex's default input sets no Greek (it would need the LGR font encoding)."""
    found = _GREEK.match(unicodedata.name(ch, ""))
    if found is None:
        return None
    key, case, letter = found.groups()
    command = _GREEK_OTHER.get(key)
    if command is None and case == "SMALL" and letter.lower() in _GREEK_LOWER:
        command = "\\" + letter.lower()
    elif command is None and case == "CAPITAL":
        command = (rf"\mathrm{{{_GREEK_LATIN[letter]}}}" if letter in _GREEK_LATIN
                   else "\\" + letter.capitalize() if letter.capitalize() in _GREEK_UPPER else None)
    return None if command is None else rf"\ensuremath{{{command}}}"


def _latex_char(ch: str) -> str:
    if ch in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[ch]
    if ch in _LATEX_MATH:
        return rf"\ensuremath{{{_LATEX_MATH[ch]}}}"
    return (_latex_greek(ch) or ch) if ord(ch) > 127 else ch


def latex_escape(text: object) -> str:
    """``text`` as LaTeX text mode: the ten special characters and ``< > | "`` escaped; Greek letters and a few
    math symbols (≤ ≥ ≠ ≈ ∞ ∑ ...) as ``\\ensuremath`` math (α -> ``\\ensuremath{\\alpha}``), since pdflatex's
    default UTF-8 input cannot set them. Other non-Latin scripts (Cyrillic, CJK) pass unchanged: they need
    XeLaTeX/LuaLaTeX or their own font packages (docs/outputs.md)."""
    return "".join(_latex_char(ch) for ch in str(text))


def markdown_escape(text: object) -> str:
    """``text`` safe inside a Markdown table cell: punctuation backslash-escaped (``$`` too: GitHub renders
    ``$...$`` as math), ``&`` as ``&amp;`` (a held-out review: ``&amp;`` in a name rendered as ``&``; a
    backslash before ``&`` is not an escape in python-markdown), newlines spaced."""
    text = " ".join(str(text).split())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else "&amp;" if ch == "&" else ch for ch in text)


def format_number(value: float, digits: int = 3) -> str:
    """Fixed ``digits`` decimals, or ``digits`` significant digits for very large/small values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value != 0 and (abs(value) >= 10 ** 4 or abs(value) < 10 ** -digits):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def format_fixed(value: float, decimals: int = 3) -> str:
    """``decimals`` fixed decimals (a column of the leaderboard, :func:`column_decimals`); negative ``decimals``
    (-k): k significant digits in scientific notation (7.69e-07); "–" for NaN. Never a minus on a zero."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{float(value):.{-decimals - 1}e}" if decimals < 0 else f"{float(value):.{decimals}f}"
    zero = float(value) == 0 or (decimals >= 0 and not text.strip("-0."))
    return text[1:] if text.startswith("-") and zero else text  # -1e-17 is 0.000, not -0.000


def column_decimals(means: list[float], best: list[float], runner_up: float, decimals: int = 3,
                    most: int = 6) -> int:
    """The decimals of one leaderboard column, every cell alike: ``decimals`` (3) unless more are needed,
    up to ``most`` (6), so that a nonzero value of ``means`` below 10^-decimals shows two significant digits
    (0.000551 -> 0.00055, not 0.001; :func:`format_number` switched such a value to 3 significant digits,
    which mixed 0.000551 with 0.011 in one column), and each of ``best`` (the bold, rank-1 means) prints
    apart from ``runner_up`` (the mean of the best cell not ranked 1; NaN: none) where the two differ (a
    held-out review: five cells read 0.525, one of them bold). Example: means [0.01049, 0.0102], the first
    bold -> 4 (0.0105, 0.0102; with 3 both read 0.010).

    Float noise (a mean below 10^-most times the column's largest |mean|, at most 1: e.g. 1e-17 beside 0.4;
    4.2e-4 beside 1234.5 is no noise, a diff review) asks for
    no more decimals. A column whose other nonzero means need more than ``most`` decimals is scientific:
    -k, k significant digits (:func:`format_fixed`), 3 or more, up to ``most``, until the bold cell prints
    apart from the runner-up (a held-out review: means of 1e-7 printed 0.000 [0.000, 0.000] in every cell,
    one bold, four with ``*``; the 10^-6 cut was absolute, so it took a column of real 1e-7 values for
    noise). Example: means [7.69e-07, 9.16e-08] -> -3 (7.69e-07, 9.16e-08)."""
    finite = [abs(float(m)) for m in means if m is not None and math.isfinite(m)]
    top = max(finite, default=0.0)
    small = [m for m in finite if min(top, 1.0) * 10 ** -most <= m < 10 ** -decimals and m > 0]  # 4.2e-4 by 1234
    need = max([1 - math.floor(math.log10(m)) for m in small], default=decimals)
    pairs = [(b, runner_up) for b in best if math.isfinite(b) and math.isfinite(runner_up)]
    if need > most:
        out = -decimals
        while -out < most and any(abs(b - r) > top * 10 ** -most and format_fixed(b, out) == format_fixed(r, out)
                                  for b, r in pairs):
            out -= 1
        return out
    out = max(decimals, need)
    while out < most and any(abs(b - r) >= 10 ** -most  # a smaller difference is float noise
                             and format_fixed(b, out) == format_fixed(r, out) for b, r in pairs):
        out += 1
    return out


def ranked_decimals(means: np.ndarray, ranks: np.ndarray, best: float) -> int:
    """:func:`column_decimals` of a leaderboard column: ``means`` with their ``ranks``; the cells ranked ``best``
    (NaN: none is bold) against the mean of the best-ranked cell below them."""
    below = ~np.isnan(ranks) & (ranks != best) & ~np.isnan(means)
    runner_up = float(means[below][np.argmin(ranks[below])]) if below.any() else math.nan
    return column_decimals(list(means), list(means[ranks == best]), runner_up)


def fixed_columns(frame: pd.DataFrame, columns: tuple[str, ...] = ("mean", "ci_low", "ci_high", "chance"),
                  by: tuple[str, ...] = ("dataset", "model", "class", "metric")) -> pd.DataFrame:
    """``frame`` with its ``columns`` (those it has) as text, printed as the leaderboard prints a metric's column:
    one number of decimals per group of ``by`` (those it has), :func:`ranked_decimals` of the group's ``mean``
    and ``rank`` (no rank column: no bold cell), then :func:`format_fixed`. So a mean that is float noise
    (below 10^-6 of the group's largest |mean|: 2.79e-09 beside 0.275) prints 0.000 as in ``leaderboard.md``, where
    :func:`format_number` gave 2.79e-09 (a review of the HTML region deletion correlation and strata tables)."""
    shown = [] if frame is None else [c for c in columns if c in frame.columns]
    if not shown or frame.empty or "mean" not in frame.columns:
        return frame
    keys = [c for c in by if c in frame.columns]
    groups = frame.groupby(keys, sort=False, dropna=False).indices.values() if keys else [np.arange(len(frame))]
    out = frame.astype({c: object for c in shown})
    for rows in groups:
        part = frame.iloc[rows]
        means = pd.to_numeric(part["mean"], errors="coerce").to_numpy(dtype=float)
        ranks = (pd.to_numeric(part["rank"], errors="coerce").to_numpy(dtype=float) if "rank" in part.columns
                 else np.full(len(part), np.nan))
        defined = ranks[~np.isnan(ranks)]
        best = float(defined.min()) if np.unique(defined).size >= 2 else math.nan  # as the leaderboard bolds
        decimals = ranked_decimals(means, ranks, best)
        for column in shown:
            values = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
            out.iloc[rows, out.columns.get_loc(column)] = [format_fixed(v, decimals) for v in values]
    return out


def is_p_value(column: object) -> bool:
    """Whether a table column holds p-values: ``p``, ``p_holm``, ``friedman_p``, ``shapiro_p_negative``..."""
    parts = str(column).split("_")
    return "p" in parts


def format_p(value: float) -> str:
    """A p-value with 3 significant digits (0.0496, 0.05, 0.0504: three decimals showed all three as 0.050)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.3g}"


# Defined once per file with \providecommand, so a document can predefine them: \faithbenchfit
# shrinks a table wider than the line to the line's width (never enlarges it); \faithbenchcell
# stacks a cell's lines. \textquotedbl exists in the T1 encoding only: in OT1, LaTeX's default, it falls
# back to the typewriter font's straight quote (always installed, unlike T1's fonts).
LATEX_PREAMBLE = [
    r"\ProvideTextCommandDefault{\textquotedbl}{\texttt{\char34}}",
    r"\providecommand{\faithbenchfit}[1]{\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{#1}}",
    r"\providecommand{\faithbenchcell}[2][r]{\begin{tabular}[t]{@{}#1@{}}#2\end{tabular}}",
]


def latex_breakable(name: str, width: int = 10) -> str:
    """An escaped name split into lines after its underscores (the underscore kept): narrow headers. Parts
    share a line up to ``width`` characters (a CI's width), so ``input_x_`` / ``gradient`` takes two lines,
    not three (a held-out review: a 64-character alias took 11, one word each)."""
    lines: list[str] = []
    for part in str(name).split("_"):
        if lines and len(lines[-1]) + len(part) + 1 <= width:
            lines[-1] += "_" + part
        else:
            lines.append(part)
    return r"\_\\".join(latex_escape(line) for line in lines)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return _e(format_number(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return _e(value)


def table_html(frame: pd.DataFrame, empty: str = "none", max_rows: int | None = None) -> str:
    """A plain HTML table of ``frame`` (numbers formatted, every value escaped)."""
    if frame is None or frame.empty:
        return f'<p class="empty">{_e(empty)}</p>'
    shown = frame if max_rows is None else frame.head(max_rows)
    head = "".join(f"<th>{_e(c)}</th>" for c in shown.columns)
    p_columns = [is_p_value(c) for c in shown.columns]
    rows = []
    for row in shown.itertuples(index=False):
        cells = []
        for value, p in zip(row, p_columns):
            if value is pd.NA or (isinstance(value, float) and math.isnan(value)):  # pd.NA: an Int64 count
                cells.append("<td>–</td>")
            elif p and isinstance(value, float):
                cells.append(f"<td>{_e(format_p(value))}</td>")
            else:
                cells.append(f"<td>{_cell(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="note">first {max_rows} of {len(frame)} rows; all in the CSV file</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def disagreement_html(agreement: pd.DataFrame) -> str:
    """A line naming the metric pairs whose explainer rankings disagree (τ ≤ 0), or nothing (a review: the
    report ranked one explainer first on deletion and another on insertion, τ = 0, with no word on it)."""
    if agreement.empty or "tau" not in agreement.columns:
        return ""
    rows = agreement[pd.to_numeric(agreement["tau"], errors="coerce") <= 0]
    pairs = [f"{r['metric_a']} and {r['metric_b']} on {r['dataset']} / {r['model']}"  # a review: say each τ's p
             + (f" / {r['class']}" if "class" in r else "") + f" (τ = {r['tau']:.2f}, {_p(r.get('p'))}, "
             f"{r.get('n_explainers', '?')} explainers)" for r in rows.to_dict("records")]
    return (f'<p class="note"><b>Rankings that do not agree</b> (Kendall τ ≤ 0: the two metrics order the '
            f'explainers in unrelated or reversed ways): {_e("; ".join(pairs))}. Over few explainers a τ is weak '
            'evidence: with p ≥ 0.05 the data show no agreement, not a proven disagreement.</p>') if pairs else ""


def _p(value: object) -> str:
    p = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return "p n/a" if pd.isna(p) else f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"
