"""Plots (matplotlib/seaborn, PNG and SVG). Only read the tidy tables (and, for the gallery,
arrays handed over by the runner).

Every ``plot_*`` function writes ``<stem>.png`` and ``<stem>.svg`` into ``out_dir`` and returns
the paths written; file names come from config labels through :func:`safe_name`. Text is
never parsed as mathtext, so a label with ``$`` prints as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

__all__ = [
    "ANNOTATED_REGIONS",
    "SANITY_PREFIX",
    "cd_cliques",
    "plot_cd_diagram",
    "plot_cd_diagrams",
    "plot_cost",
    "plot_distributions",
    "plot_model_performance",
    "plot_perturbation_curves",
    "plot_region_shares",
    "plot_saliency_gallery",
    "plot_sanity_curves",
    "safe_name",
]

from faithbench.reports.figure import CHANCE_TITLE, RC as _RC, at_chance, save as _save, titled  # noqa: E402
from faithbench.reports.figure import block_labels as _labels, stem as _stem, with_blocks as _with_blocks  # noqa: E402
from faithbench.reports.figure import short_labels, subplots  # noqa: E402
from faithbench.names import safe_name  # noqa: E402  (re-exported: one mapping of labels to file names)
from faithbench.reports.gallery import plot_saliency_gallery  # noqa: E402  (re-exported)
from faithbench.reports.plots_curves import (SANITY_PREFIX, plot_perturbation_curves,  # noqa: E402  (re-exported)
                                             plot_sanity_curves)
from faithbench.reports.tables import metric_order  # noqa: E402
from faithbench.stats.tables import explained_units, per_sample  # noqa: E402

def _arrow(frame: pd.DataFrame) -> str:
    if "higher_is_better" not in frame.columns or frame.empty:
        return ""
    return " ↑" if bool(frame["higher_is_better"].iloc[0]) else " ↓"


def _proportion_bars(ax: Axes, sub: pd.DataFrame, order: list[str]) -> None:
    """Per explainer, the proportion of 1s as a bar with its 95% Wilson interval, ``k/n`` beside it."""
    from faithbench.stats.proportions import wilson_ci

    for i, name in enumerate(order):
        values = sub.loc[sub["explainer"] == name, "value"]
        if values.empty:
            continue
        k, n = int(values.sum()), int(values.size)
        p, (low, high) = k / n, wilson_ci(k, n)
        ax.barh(i, p, height=0.6, color="#c6dbef", edgecolor="#08306b", linewidth=0.6)
        ax.errorbar(p, i, xerr=[[max(p - low, 0.0)], [max(high - p, 0.0)]], fmt="none", ecolor="#08306b", capsize=3,
                    linewidth=1)
        ax.text(1.02, i, f"{k}/{n}", va="center", ha="left", fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    chance = sub["chance"].astype(float).mean() if "chance" in sub else np.nan
    if np.isfinite(chance):
        ax.axvline(chance, color="0.4", linestyle="--", linewidth=1, label="chance")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_title(f"{sub['metric'].iloc[0]}{_arrow(sub)} (proportion, 95% Wilson CI)", fontsize=9)
    ax.set_xlabel("proportion of hits")
    ax.set_ylabel("")


def plot_distributions(results: pd.DataFrame, out_dir: Path,
                       chance_blocks: set[tuple[str, ...]] | None = None) -> list[Path]:
    """One figure per (dataset, model): per metric (in the leaderboard's order, by category), a box
    plot (quartiles, 1.5 IQR whiskers) with every sample's value as a point, per explainer, the
    values under several seeds averaged first as in the leaderboard (:func:`per_sample`), so the
    box's median is the leaderboard's (a held-out review found the seeds' maps drawn apart); a
    dashed line marks the chance level where the metric has one. A metric whose values are all 0
    or 1 (the pointing game's hits) is drawn as the proportion of 1s per explainer, a bar with its 95% Wilson interval
    (:func:`faithbench.stats.proportions.wilson_ci`) and ``k/n``; n counts the maps of the samples the
    leaderboard has (a review found the bar of an explainer with n = 0 there, a failed cell under one seed),
    so with several seeds a sample counts once per seed and the interval treats its maps as independent
    (the leaderboard's CI does not). A block of ``chance_blocks`` (a model at chance,
    :func:`~faithbench.reports.figure.blocks_at_chance`) gets :data:`~faithbench.reports.figure.CHANCE_TITLE`."""
    written = []
    results, blocks = _with_blocks(results)
    for key, frame in results.groupby(blocks, sort=True):
        units = explained_units(frame, [])
        metric_names = metric_order(frame)
        ncols = 2 if len(metric_names) == 4 else min(3, len(metric_names))
        nrows = int(np.ceil(len(metric_names) / ncols))
        order = sorted(frame["explainer"].unique())
        ticks = list(short_labels(order).values())  # long names shortened, as in every plot
        height = max(2.5, 0.45 * len(order) + 1.2)
        with matplotlib.rc_context(_RC):
            fig, axes = subplots(nrows, ncols, figsize=(4.6 * ncols, height * nrows), squeeze=False)
            for ax in axes.flat[len(metric_names):]:
                ax.set_visible(False)
            for ax, metric in zip(axes.flat, metric_names):
                rows = frame[frame["metric"] == metric]
                sub = rows[rows["value"].notna()]
                if sub.empty:
                    ax.set_visible(False)
                    continue
                samples = per_sample(rows, ["explainer", "sample_id"], units=units).dropna(subset=["value"])
                if sub["value"].isin([0.0, 1.0]).all():  # hit or miss (pointing game): a proportion
                    maps = sub.merge(samples[["explainer", "sample_id"]])
                    if maps.empty:
                        ax.set_visible(False)
                    else:
                        _proportion_bars(ax, maps, order)
                        ax.set_yticks(range(len(order)), ticks)
                    continue
                sub = samples.assign(metric=metric, higher_is_better=rows["higher_is_better"].iloc[0])
                sns.boxplot(data=sub, x="value", y="explainer", order=order, ax=ax, showfliers=False,
                            color="#c6dbef", width=0.6)
                # Own jitter (seaborn's uses the global RNG): the same tables give the same plot.
                rng = np.random.default_rng(0)
                position = sub["explainer"].map({name: i for i, name in enumerate(order)}).to_numpy(float)
                ax.scatter(sub["value"], position + rng.uniform(-0.2, 0.2, len(sub)), s=6, color="#08306b",
                           alpha=0.5, linewidths=0, zorder=3)
                chance = sub["chance"].astype(float).mean() if "chance" in sub else np.nan
                if np.isfinite(chance):
                    ax.axvline(chance, color="0.4", linestyle="--", linewidth=1, label="chance")
                    ax.legend(loc="best", fontsize=7)
                ax.set_title(f"{metric}{_arrow(sub)}")
                ax.set_xlabel("value")
                ax.set_ylabel("")
                ax.set_yticks(range(len(order)), ticks)
            titled(fig, " / ".join(_labels(key)) + ("\n" + CHANCE_TITLE if at_chance(key, chance_blocks) else ""))
            written += _save(fig, _stem(out_dir, "distributions", *_labels(key)))
    return written


def cd_cliques(ranks: pd.Series, nemenyi_p: Mapping[frozenset, float], alpha: float = 0.05) -> list[list[str]]:
    """Maximal runs of explainers (sorted by mean rank) with no significant Nemenyi pair.

    ``nemenyi_p[frozenset({a, b})]`` is the pair's p-value; a run [i..j] is a clique when every
    pair inside has p >= alpha (a missing or NaN p counts as not significant). Only runs of
    two or more that are not inside a longer one are returned (Demšar 2006, fig. 1).
    """
    names = list(ranks.sort_values(kind="stable").index)

    def not_different(a: str, b: str) -> bool:
        p = nemenyi_p.get(frozenset((a, b)), np.nan)
        return not (p < alpha)

    runs = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and all(not_different(names[m], names[j + 1]) for m in range(i, j + 1)):
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return [names[a:b + 1] for a, b in runs]


def plot_cd_diagram(ranks: pd.Series, cd: float, cliques: list[list[str]], title: str, stem: Path) -> list[Path]:
    """Critical-difference diagram (Demšar 2006): explainers on an axis of mean ranks (1 = best,
    on the left), the critical difference as a bar above it, and a thick line joining each
    group of explainers not significantly different (Nemenyi, alpha = 0.05)."""
    ranks = ranks.dropna().sort_values(kind="stable")
    k = len(ranks)
    lo, hi = 1, max(k, 2)
    half = (k + 1) // 2
    n_lines = max(half, k - half)
    with matplotlib.rc_context(_RC):
        fig_height = 1.4 + 0.28 * (n_lines + len(cliques))
        fig, ax = subplots(figsize=(8, fig_height))
        ax.set_xlim(lo - 0.15 * (hi - lo) - 0.3, hi + 0.15 * (hi - lo) + 0.3)
        bottom = -(n_lines + 1.5 + 0.6 * len(cliques))
        ax.set_ylim(bottom, 2.2)
        ax.axis("off")
        ax.hlines(0, lo, hi, color="black", linewidth=1)
        for tick in range(lo, hi + 1):
            ax.vlines(tick, 0, 0.25, color="black", linewidth=1)
            ax.text(tick, 0.4, str(tick), ha="center", va="bottom", fontsize=9)
        for tick in np.arange(lo + 0.5, hi, 1.0):
            ax.vlines(tick, 0, 0.12, color="black", linewidth=0.7)
        if np.isfinite(cd):
            ax.hlines(1.4, lo, lo + cd, color="black", linewidth=1.5)
            for end in (lo, lo + cd):
                ax.vlines(end, 1.25, 1.55, color="black", linewidth=1.5)
            ax.text(lo + cd / 2, 1.62, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
        # Clique bars just below the axis; labels below them.
        for row, clique in enumerate(cliques):
            y = -0.45 - 0.6 * row
            ax.hlines(y, ranks[clique[0]] - 0.03, ranks[clique[-1]] + 0.03, color="black", linewidth=3.5)
        top = -0.45 - 0.6 * len(cliques) - 0.3
        left_x, right_x = lo - 0.15 * (hi - lo) - 0.2, hi + 0.15 * (hi - lo) + 0.2
        for i, (name, rank) in enumerate(ranks.items()):
            if i < half:
                y = top - i
                ax.plot([rank, rank, left_x], [0, y, y], color="black", linewidth=0.8)
                ax.text(left_x - 0.05, y, f"{name} ({rank:.2f})", ha="right", va="center", fontsize=9)
            else:
                y = top - (k - 1 - i)
                ax.plot([rank, rank, right_x], [0, y, y], color="black", linewidth=0.8)
                ax.text(right_x + 0.05, y, f"({rank:.2f}) {name}", ha="left", va="center", fontsize=9)
        ax.set_title(title, fontsize=10)
        return _save(fig, stem, tight=True)


def plot_cd_diagrams(results: pd.DataFrame, friedman: pd.DataFrame, nemenyi: pd.DataFrame, out_dir: Path,
                     alpha: float = 0.05, chance_blocks: set[tuple[str, ...]] | None = None) -> list[Path]:
    """A critical-difference diagram per (dataset, model, metric) with at least 3 explainers
    ranked on complete samples; mean ranks as in :func:`faithbench.stats.mean_ranks`, CD and
    Friedman p from ``friedman.csv``, cliques from ``nemenyi.csv``. A block of ``chance_blocks`` (a model at
    chance, :func:`~faithbench.reports.figure.blocks_at_chance`) keeps its mean ranks only: no CD bar, no
    cliques, no Friedman p, and :data:`~faithbench.reports.figure.CHANCE_TITLE` in its title, as the tables
    withhold their marks (a held-out review: "Friedman p = 9.8e-05" and Nemenyi groups on a model at chance)."""
    from faithbench.stats import mean_ranks

    written = []
    results, blocks = _with_blocks(results)
    if "class" in friedman.columns:
        friedman = friedman.assign(**{"class": friedman["class"].fillna("").astype(str)})
    if "class" in nemenyi.columns:
        nemenyi = nemenyi.assign(**{"class": nemenyi["class"].fillna("").astype(str)})
    friedman = friedman.set_index(blocks + ["metric"]) if len(friedman) else friedman
    units = explained_units(results, blocks)
    for key, frame in results.groupby(blocks + ["metric"], sort=True):
        dataset, model, metric = key[0], key[1], key[-1]
        samples = per_sample(frame, blocks + ["explainer", "sample_id"], units=units)  # friedman.csv's blocks
        wide = samples.pivot(index="sample_id", columns="explainer", values="value")
        wide = wide.dropna(axis=1, how="all").sort_index(axis=1)
        if wide.shape[1] < 3 or wide.dropna().shape[0] < 2:
            continue
        ranks = mean_ranks(wide, bool(frame["higher_is_better"].iloc[0]))
        info = friedman.loc[key] if len(friedman) and key in friedman.index else None
        cd = float(info["cd"]) if info is not None else np.nan
        in_cell = (nemenyi["dataset"] == dataset) & (nemenyi["model"] == model) & (nemenyi["metric"] == metric)
        if len(key) == 4 and "class" in nemenyi.columns:
            in_cell &= nemenyi["class"] == key[2]
        pairs = nemenyi[in_cell]
        p_of = {frozenset((r.explainer_a, r.explainer_b)): float(r.p) for r in pairs.itertuples(index=False)}
        cliques = cd_cliques(ranks, p_of, alpha)
        subtitle = ""
        if at_chance(key, chance_blocks):
            cd, cliques = np.nan, []
            subtitle = "\nmean rank per sample" + (f", {int(info['n_blocks'])} samples" if info is not None else "")
            subtitle += "\n" + CHANCE_TITLE
        elif info is not None:  # a review: a reader took the groups of a non-significant test as findings
            p = float(info["p"])
            subtitle = (f"\nmean rank per sample; Friedman p = {p:.2g}, {int(info['n_blocks'])} samples, "
                        f"k = {int(info['k'])}" + (f"\nnot significant (p ≥ {alpha:g}): the test finds no difference"
                                                  if not p < alpha else ""))
        title = f"{' / '.join(_labels(key))}{_arrow(frame)}{subtitle}"
        written += plot_cd_diagram(ranks, cd, cliques, title, _stem(out_dir, "cd", *_labels(key)))
    return written


def plot_model_performance(models: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Grouped bars of test accuracy, F1 and AUC per (dataset, model): mean over seeds, with
    error bars of one standard deviation where there are several seeds."""
    scores = [c for c in ("accuracy", "f1", "auc") if c in models.columns]
    if models.empty or not scores:
        return []
    grouped = models.groupby(["dataset", "model"], sort=True)[scores]
    means, sds, counts = grouped.mean(), grouped.std(ddof=1), grouped.size()
    labels = [f"{d} / {m}" for d, m in means.index]
    x = np.arange(len(labels))
    width = 0.8 / len(scores)
    with matplotlib.rc_context(_RC):
        fig, ax = subplots(figsize=(max(5, 1.6 * len(labels) + 2), 4))
        for i, score in enumerate(scores):
            err = sds[score].where(counts > 1).to_numpy()
            bars = ax.bar(x + (i - (len(scores) - 1) / 2) * width, means[score].to_numpy(), width, label=score,
                          yerr=None if np.all(np.isnan(err)) else np.nan_to_num(err), capsize=3)
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        ax.set_xticks(x, labels, rotation=15 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center")
        ax.set_ylim(0, 1.25)
        ax.set_ylabel("test score")
        n_seeds = int(counts.max())
        ax.set_title("model performance" + (f" (mean ± sd over up to {n_seeds} seeds)" if n_seeds > 1 else ""))
        ax.legend(loc="upper right", fontsize=8, ncol=len(scores))
        fig.tight_layout()
        return _save(fig, out_dir / "models")


def plot_cost(cost_table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Seconds per explainer, stacked: computing the saliency (explain) and scoring it
    (metrics), summed over seeds and metrics; one panel per (dataset, model). Takes the
    table of :func:`faithbench.reports.summaries.cost_summary`."""
    if cost_table.empty:
        return []
    groups = list(cost_table.groupby(["dataset", "model"], sort=True))
    with matplotlib.rc_context(_RC):
        n_rows = max(len(g) for _, g in groups)
        fig, axes = subplots(1, len(groups), figsize=(5.5 * len(groups), 0.45 * n_rows + 1.8), squeeze=False)
        for ax, ((dataset, model), frame) in zip(axes[0], groups):
            frame = frame.sort_values("total_seconds", kind="stable")
            y = np.arange(len(frame))
            ax.barh(y, frame["explain_seconds"], color="#4c72b0", label="explain")
            ax.barh(y, frame["metric_seconds"], left=frame["explain_seconds"], color="#dd8452", label="metrics")
            labels = short_labels(frame["explainer"])
            ax.set_yticks(y, [labels[str(e)] for e in frame["explainer"]])
            ax.set_xlabel("seconds")
            ax.set_title(f"{dataset} / {model}")
            ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        return _save(fig, out_dir / "cost")


ANNOTATED_REGIONS = 40  # regions of a heat-map panel whose cells print their share; more: none, the width capped


def plot_region_shares(regions: pd.DataFrame, out_dir: Path,
                       chance_blocks: set[tuple[str, ...]] | None = None) -> list[Path]:
    """Heat maps of the mean share of positive saliency mass per explainer (rows) and region
    (columns), one panel per class (negative: label 0; positive: the others), one figure
    ``regions_<dataset>_<model>`` per (dataset, model). The last row, ``area (chance)``, is the
    regions' mean area fraction: the share a map independent of the image would get. A (dataset,
    model) of ``chance_blocks`` gets :data:`~faithbench.reports.figure.CHANCE_TITLE`, as on the other figures.
    Up to :data:`ANNOTATED_REGIONS` regions each cell prints its share (2 decimals, 0.75 in a column); past them
    (a fine grid: 32 x 32 on 32 px made a 156,762-pixel-wide image, every cell "0.00", a review) the cells carry
    no numbers, a panel is that many columns wide at most (seaborn then labels some regions only), the cells are
    raster in the SVG too, and the title says so: ``regions.csv`` has every value."""
    if regions.empty:
        return []
    written = []
    frame = regions.assign(samples=np.where(regions["label"].astype(int) != 0, "positive", "negative"))
    for (dataset, model), group in frame.groupby(["dataset", "model"], sort=True):
        order = list(dict.fromkeys(group["region"].astype(str)))  # the run's region order
        panels = sorted(group["samples"].unique())
        annotated = len(order) <= ANNOTATED_REGIONS
        with matplotlib.rc_context(_RC):
            n_rows = group["explainer"].nunique() + 1
            width = 0.75 * min(len(order), ANNOTATED_REGIONS)
            fig, axes = subplots(1, len(panels), squeeze=False,
                                 figsize=(1.0 + width * len(panels) + 1.5 * len(panels), 1.6 + 0.42 * n_rows))
            tables = {}
            for samples in panels:
                part = group[group["samples"] == samples]
                table = part.pivot_table(index="explainer", columns="region", values="share", aggfunc="mean")
                table = table.reindex(columns=order)
                table.loc["area (chance)"] = part.groupby("region")["area"].mean().reindex(order)
                table.index = [str(i) for i in table.index]
                tables[samples] = (table, part.drop_duplicates(["seed", "sample_id"]).shape[0])
            top = max([1e-9] + [float(np.nanmax(t.to_numpy())) for t, _ in tables.values() if t.notna().any().any()])
            for ax, samples in zip(axes[0], panels):
                table, n = tables[samples]
                sns.heatmap(table, ax=ax, annot=annotated, fmt=".2f", cmap="viridis", vmin=0.0, vmax=top,
                            cbar=ax is axes[0][-1], annot_kws={"fontsize": 7}, rasterized=not annotated)
                ax.axhline(len(table) - 1, color="white", linewidth=2)
                ax.set_title(f"{dataset} / {model}: {samples} (n = {n})", fontsize=9)
                ax.set_xlabel("region")
                ax.set_ylabel("")
                ax.tick_params(axis="x", labelrotation=45, labelsize=8)
                ax.tick_params(axis="y", labelsize=8)
            titled(fig, "share of positive saliency mass per region (mean over samples)"
                   + ("" if annotated else f"\n{len(order)} regions: no values in the cells (regions.csv has them)")
                   + ("\n" + CHANCE_TITLE if at_chance((dataset, model), chance_blocks) else ""), fontsize=10)
            written += _save(fig, _stem(out_dir, "regions", dataset, model))
    return written
