"""HTML pieces shared by the report page and its sections: escaping and plain tables."""

from __future__ import annotations

import html
import math

import pandas as pd

from faithbench.reports.tables import format_number

__all__ = ["table_html"]


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
    rows = []
    for row in shown.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float) and math.isnan(value):
                cells.append("<td>–</td>")
            else:
                cells.append(f"<td>{_cell(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="note">first {max_rows} of {len(frame)} rows; all in the CSV file</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
