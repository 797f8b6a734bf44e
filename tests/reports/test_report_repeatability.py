"""The repeatability section of the report leaves out the control explainers, whose maps ignore
the model (rows of such an explainer may sit in a folder written before the runner left them out)."""

from __future__ import annotations

import pandas as pd

from faithbench.reports.medical import repeatability_html
from faithbench.stats.repeatability import REPEATABILITY_COLUMNS


def test_control_rows_of_an_old_folder_are_not_shown():
    rows = [{"dataset": "d", "explainer": e, "kind": "reproducibility", "model": "", "a": "cnn", "b": "vit",
             "metric": "spearman", "mean": mean, "n": 8} for e, mean in (("random", 1.0), ("sobel", 1.0),
                                                                        ("saliency", 0.42))]
    page = repeatability_html(pd.DataFrame(rows, columns=REPEATABILITY_COLUMNS))
    body = page[page.index("<tbody>"):]
    assert body.count("<tr>") == 1 and "<td>saliency</td>" in body and "<td>1.000</td>" not in body
