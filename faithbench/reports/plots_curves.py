"""Perturbation and sanity curves (``curves_*``, ``sanity_*``), apart from ``plots.py`` to keep each
module small. Same conventions: PNG and SVG, names through :func:`~faithbench.names.safe_name`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import matplotlib
import seaborn as sns

from faithbench.reports.figure import (CHANCE_TITLE, LINE_STYLES, MARKERS, RC, at_chance, block_labels,
                                       explainer_colours, save, short_labels, stem, subplots, titled, with_blocks)

__all__ = ["FEATURES_XLABEL", "SANITY_PREFIX", "TARGET_YLABEL", "curve_labels", "curve_xlabels", "curve_ylabels",
           "plot_perturbation_curves", "plot_sanity_curves", "seed_means"]

SANITY_PREFIX = "mprt"
FEATURES_XLABEL = "fraction of features perturbed"  # a curve's x label unless its metric class sets curve_xlabel
TARGET_YLABEL = "target score"  # a curve's y label unless its metric class sets curve_ylabel


def _class_labels(manifest: Mapping[str, Any] | None, attribute: str) -> dict[str, str]:
    """``{metric label (alias or name): the metric class's string ``attribute``}`` for the metrics of the
    manifest's suite whose class sets it; a metric whose plugin does not load is left out."""
    from faithbench.registry import RegistryError, metrics

    out = {}
    for entry in ((manifest or {}).get("suite") or {}).get("metrics") or []:
        name, alias = (entry, None) if isinstance(entry, str) else (entry.get("name"), entry.get("alias"))
        try:
            label = getattr(metrics.get(str(name)), attribute, None)
        except RegistryError:
            continue
        if isinstance(label, str) and label:
            out[str(alias or name)] = label
    return out


def curve_xlabels(manifest: Mapping[str, Any] | None) -> dict[str, str]:
    """``{metric label (alias or name): x label}`` for the metrics of the manifest's suite whose class sets
    ``curve_xlabel`` (:class:`~faithbench.metrics.temporal.TemporalPerturbation`: k / T visits; a held-out
    review found "fraction of features perturbed" under the temporal curves). A metric whose plugin does not
    load keeps :data:`FEATURES_XLABEL`."""
    return _class_labels(manifest, "curve_xlabel")


def curve_ylabels(manifest: Mapping[str, Any] | None) -> dict[str, str]:
    """``{metric label (alias or name): y label}`` for the metrics of the manifest's suite whose class sets
    ``curve_ylabel``: those whose curve is not the target score (a held-out review found "target score" over
    the score drops of morf_aopc/lerf_aopc, abpc's insertion − deletion, irof's f(x^(k)) / f(x) and
    sensitivity_n's correlations). The others, and a metric whose plugin does not load, keep
    :data:`TARGET_YLABEL`."""
    return _class_labels(manifest, "curve_ylabel")


def curve_labels(manifest: Mapping[str, Any] | None) -> tuple[dict[str, str], dict[str, str]]:
    """``(curve_xlabels(manifest), curve_ylabels(manifest))``, the ``xlabels`` and ``ylabels`` of
    :func:`plot_perturbation_curves`."""
    return curve_xlabels(manifest), curve_ylabels(manifest)


def _is_sanity(metric: pd.Series) -> pd.Series:
    return metric.astype(str).str.startswith(SANITY_PREFIX)


def seed_means(curves: pd.DataFrame) -> pd.DataFrame:
    """One curve per (block, metric, explainer, sample_id): each step's ``fraction`` and ``score``
    averaged over the sample's seeds, as the leaderboard averages a sample's values (the seeds of one
    image are not independent observations: a held-out review found the bands over (seed, sample)
    rows, too narrow). Without a ``seed`` column: ``curves`` as they are."""
    if "seed" not in curves.columns or curves.empty:
        return curves
    keys = [c for c in ("dataset", "model", "class", "metric", "explainer", "sample_id", "step") if c in curves]
    return curves.groupby(keys, sort=True, observed=True, dropna=False)[["fraction", "score"]].mean().reset_index()


def step_fractions(curves: pd.DataFrame) -> pd.DataFrame:
    """``curves`` with each step's ``fraction`` the mean over its block's samples and explainers (per metric):
    where a patch does not tile the image each sample removes the cut edge patches at its own steps, and
    seaborn, which averages each distinct x on its own, drew a jagged mean line over per-sample fractions."""
    if "step" not in curves.columns or curves.empty:
        return curves
    keys = [c for c in ("dataset", "model", "class", "metric", "step") if c in curves]
    mean = curves.groupby(keys, sort=False, observed=True, dropna=False)["fraction"].transform("mean")
    return curves.assign(fraction=mean)


def _line_panels(curves: pd.DataFrame, out_dir: Path, prefix: str, xlabel: Callable[[str], str],
                 ylabel: Callable[[str], str],
                 higher_is_better: Mapping[str, bool] | None, distinct: bool = False,
                 chance_blocks: set[tuple[str, ...]] | None = None) -> list[Path]:
    """One figure per block, one panel per metric (its title with ↑/↓ where ``higher_is_better``
    knows it, its x and y labels ``xlabel(metric)`` and ``ylabel(metric)``), the explainers' legend below the
    panel, out of the data;
    each explainer in its colour of :func:`~faithbench.reports.figure.explainer_colours`, its own line style
    and marker (at most about 8 markers a line, each explainer's at other steps), so curves that overlap or
    colours a reader cannot tell apart stay apart (a held-out review: solid tab10 lines hid one IG under
    another). ``distinct``: each line is also thinner than the one drawn before it, so a line lying exactly on
    another stays visible (the sanity checks' controls: sobel and random both at 1.0). A block of
    ``chance_blocks`` (:func:`~faithbench.reports.figure.blocks_at_chance`) gets
    :data:`~faithbench.reports.figure.CHANCE_TITLE` under its title and y axes that take in 0 and 1, so
    differences of 0.01 in the score of a model at chance do not fill the panel (a held-out review)."""
    written = []
    curves, blocks = with_blocks(step_fractions(seed_means(curves)))
    directions = dict(higher_is_better or {})
    for key, frame in curves.groupby(blocks, sort=True):
        metric_names = sorted(frame["metric"].unique())
        names = sorted(frame["explainer"].astype(str).unique())
        colours, labels = explainer_colours(names), short_labels(names)
        widths = np.linspace(3.0, 1.0, len(names)) if distinct and len(names) > 1 else [1.5] * len(names)
        marked = at_chance(key, chance_blocks)
        with matplotlib.rc_context(RC):  # 0.4 inch more for the two lines of CHANCE_TITLE
            fig, axes = subplots(1, len(metric_names), figsize=(5 * len(metric_names), 4.6 + 0.4 * marked),
                                     squeeze=False)
            for ax, metric in zip(axes[0], metric_names):
                sub = frame[frame["metric"] == metric]
                every = max(1, sub["fraction"].nunique() // 8)
                for i, name in enumerate(names):
                    part = sub[sub["explainer"].astype(str) == name]
                    style = dict(marker=MARKERS[i % len(MARKERS)], markersize=2 + 2 * widths[i],
                                 markevery=(i % every, every), linestyle=LINE_STYLES[i % len(LINE_STYLES)])
                    if not part.empty:
                        sns.lineplot(data=part, x="fraction", y="score", errorbar=("ci", 95), n_boot=200, seed=0, ax=ax,
                                     color=colours[name], linewidth=widths[i], label=labels[name], **style)
                arrow = {True: " ↑", False: " ↓"}.get(directions.get(str(metric)), "")
                ax.set_title(f"{metric}{arrow}")
                ax.set_xlabel(xlabel(str(metric)))
                ax.set_ylabel(ylabel(str(metric)))
                ax.set_xlim(0, 1)
                if marked:
                    low, high = ax.get_ylim()
                    ax.set_ylim(min(low, 0.0), max(high, 1.0))
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(3, len(names)), fontsize=7,
                          frameon=False)
            titled(fig, " / ".join(block_labels(key)) + ("\n" + CHANCE_TITLE if marked else ""))
            written += save(fig, stem(out_dir, prefix, *block_labels(key)))
    return written


def plot_perturbation_curves(curves: pd.DataFrame, out_dir: Path, higher_is_better: Mapping[str, bool] | None = None,
                             chance_blocks: set[tuple[str, ...]] | None = None,
                             xlabels: Mapping[str, str] | None = None,
                             ylabels: Mapping[str, str] | None = None) -> list[Path]:
    """One figure per (dataset, model), and per explained class on multi-label runs: mean score
    vs fraction perturbed, per explainer, with a 95% bootstrap confidence band over samples (each
    sample's seeds averaged first, :func:`seed_means`); one panel per perturbation metric, titled
    with ↑/↓ from ``higher_is_better`` (metric -> bool; none: no arrow). Sanity-check curves (metrics
    named ``mprt*``) are left to :func:`plot_sanity_curves`. ``chance_blocks``: the blocks of a model at
    chance, marked † (:func:`_line_panels`). ``xlabels``: a metric's x label (:func:`curve_xlabels`: the
    temporal curves' k / T visits), :data:`FEATURES_XLABEL` for the others. ``ylabels``: a metric's y label
    (:func:`curve_ylabels`: score drop, insertion − deletion, normalised score, correlation), :data:`TARGET_YLABEL`
    for the others."""
    curves, xlabels, ylabels = curves[~_is_sanity(curves["metric"])], dict(xlabels or {}), dict(ylabels or {})
    return _line_panels(curves, out_dir, "curves", lambda metric: xlabels.get(metric, FEATURES_XLABEL),
                        lambda metric: ylabels.get(metric, TARGET_YLABEL), higher_is_better,
                        chance_blocks=chance_blocks)


def plot_sanity_curves(curves: pd.DataFrame, out_dir: Path, higher_is_better: Mapping[str, bool] | None = None,
                       chance_blocks: set[tuple[str, ...]] | None = None) -> list[Path]:
    """Model-parameter randomisation (MPRT; Adebayo et al. 2018): similarity between the
    saliency of the trained and the progressively randomised model vs the fraction of layers
    randomised, per explainer, 95% band over samples (seeds averaged first); one figure per (dataset,
    model), one panel per ``mprt*`` metric (↑/↓ as :func:`plot_perturbation_curves`). A metric named
    ``*independent*`` (``mprt_independent``) randomises one block at a time, the rest intact: its x is
    that block's place from the output, and its panel says so. Each explainer has its own marker and line
    style and the lines thin in drawing order, so a control lying on another (sobel and random, both 1.0)
    shows. Nothing is written when the curves hold no such metric. ``chance_blocks``: as
    :func:`plot_perturbation_curves`."""
    curves = curves[_is_sanity(curves["metric"])]
    return _line_panels(curves, out_dir, "sanity", _sanity_xlabel, lambda metric: "similarity to the original saliency",
                        higher_is_better, distinct=True, chance_blocks=chance_blocks)


def _sanity_xlabel(metric: str) -> str:
    """A held-out review: "blocks randomised" was wrong under mprt_independent, where each point is one block
    randomised alone."""
    if "independent" in metric:
        return "block k of K randomised alone (k / K, from the output)"
    return "blocks randomised, from the output (fraction)"
