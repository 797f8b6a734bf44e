"""The plot of the stratified analysis (:func:`faithbench.stats.strata.stratify`), apart from
``plots.py`` to keep each module small. Same conventions: PNG and SVG, names through
:func:`~faithbench.reports.plots.safe_name`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

import matplotlib

from faithbench.reports.figure import (CHANCE_TITLE, LINE_STYLES, MARKERS, at_chance, explainer_colours, short_labels,
                                       subplots)
from faithbench.reports.plots import _RC, _labels, _save, _stem, titled
from faithbench.stats.strata import STRATA_LABELS

__all__ = ["STRATA_PREFIX", "plot_strata"]

STRATA_PREFIX = "strata"


def plot_strata(strata: pd.DataFrame, out_dir: Path, higher_is_better: Mapping[str, bool] | None = None,
                chance_blocks: set[tuple[str, ...]] | None = None) -> list[Path]:
    """One figure per (dataset, model[, class]) and stratum kind, ``strata_<dataset>_<model>[_<class>]
    _<kind>``: one panel per metric (titled with ↑/↓ where ``higher_is_better``, metric -> bool, knows
    it), the strata on the x axis in their order (small -> large, low -> high, correct, wrong), the mean
    value of the stratum's samples on the y axis, one line per explainer with its 95% bootstrap CI as
    error bars, in the explainer's colour, marker and line style of the curves plot
    (:func:`~faithbench.reports.figure.explainer_colours`),
    one legend right of the panels (a held-out review: tab10 gave three colours to two explainers each, and the
    legend inside the first panel hid a point). A block of ``chance_blocks``
    (:func:`~faithbench.reports.figure.blocks_at_chance`) gets :data:`~faithbench.reports.figure.CHANCE_TITLE`
    under its title, as the curves and CD diagrams do."""
    if strata is None or strata.empty:
        return []
    blocks = ["dataset", "model"] + (["class"] if "class" in strata.columns else [])
    frame = strata.assign(**{"class": strata["class"].fillna("").astype(str)}) if "class" in strata else strata
    written: list[Path] = []
    arrows = {m: " ↑" if up else " ↓" for m, up in (higher_is_better or {}).items()}
    for key, block in frame.groupby(blocks + ["stratum_kind"], sort=True):
        kind = key[-1]
        order = list(STRATA_LABELS.get(kind, ((), sorted(block["stratum"].unique())))[1])
        metrics = sorted(block["metric"].unique())
        ncols = min(3, len(metrics))
        nrows = int(np.ceil(len(metrics) / ncols))
        explainers = sorted(block["explainer"].astype(str).unique())
        colours, labels = explainer_colours(explainers), short_labels(explainers)
        with matplotlib.rc_context(_RC):
            fig, axes = subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
            for ax in axes.flat[len(metrics):]:
                ax.set_visible(False)
            for ax, metric in zip(axes.flat, metrics):
                sub = block[block["metric"] == metric]
                for i, explainer in enumerate(explainers):
                    rows = sub[sub["explainer"].astype(str) == explainer].set_index("stratum").reindex(order)
                    # a small offset per explainer so the error bars do not hide each other
                    x = np.arange(len(order)) + (i - (len(explainers) - 1) / 2) * 0.06
                    mean = rows["mean"].to_numpy(float)
                    err = np.vstack([mean - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - mean])
                    ax.errorbar(x, mean, yerr=np.clip(np.nan_to_num(err), 0, None), marker=MARKERS[i % len(MARKERS)],
                                markersize=3, capsize=2, linewidth=1, linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                                label=labels[explainer], color=colours[explainer])
                ax.set_xticks(range(len(order)), order)
                ax.set_title(f"{metric}{arrows.get(str(metric), '')}")
                ax.set_xlabel(kind.replace("_", " "))
                ax.set_ylabel("mean value (95% CI)")
            titled(fig, " / ".join(_labels(key[:-1])) + f": by {kind.replace('_', ' ')}"
                   + ("\n" + CHANCE_TITLE if at_chance(key[:-1], chance_blocks) else ""))
            top = axes.flat[ncols - 1].get_position()  # after the layout: beside the first row, out of the data
            fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="upper left",
                       bbox_to_anchor=(top.x1 + 0.01, top.y1), fontsize=7, frameon=False)
            written += _save(fig, _stem(out_dir, STRATA_PREFIX, *_labels(key)))
    return written
