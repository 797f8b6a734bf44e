"""The legends and notes that the Markdown, LaTeX and HTML leaderboards share, apart from
``tables.py`` to keep it small. Pure text; imports nothing of the reports."""

from __future__ import annotations

import pandas as pd

from faithbench.names import counted
from faithbench.stats.chance import MIN_CI_PER_CLASS
from faithbench.types import UNDEFINED_REASONS

__all__ = ["CD_NOTE", "CHANCE_LEVEL_NOTE", "CHANCE_NOTE", "CHANCE_REASONS", "DAGGER", "DISTRIBUTION_NOTE",
           "FAILED_NOTE", "WILCOXON_NOTE", "control_alone", "control_labels", "control_phrase", "control_tested",
           "failed_cells", "failures_heading", "mixed_classes_note", "present_controls", "significance_note",
           "split_skipped"]

# The three reasons of faithbench.stats.chance (a review: the exact-p case, AUC 1.0 with no CI, was said to
# have a CI not above 0.5); the model warnings give each model's own.
CHANCE_REASONS = ("the 95% bootstrap CI of its test AUC does not lie above 0.5, or the AUC is undefined, or with "
                  f"fewer than {MIN_CI_PER_CLASS} test samples of a class (no CI) an exact test of the AUC gives p ≥ 0.05")
CHANCE_NOTE = (f"† model at chance: {CHANCE_REASONS}, so its saliency says nothing sure about the task; marks of "
               "significance withheld")
DAGGER = "†"
CHANCE_LEVEL_NOTE = ("chance: the metric's chance level (its expected value for a map placed at random, e.g. "
                     "the mask's share of the image for the pointing game; mean over the samples with a defined "
                     "value, pooled over the explainers where it depends on the map, as chexlocalize_iou's on "
                     "the size of each segmentation)")
DISTRIBUTION_NOTE = ("Box plots: each sample's value, its seeds averaged, as in the leaderboard. Bars of a 0/1 metric: "
                     "k/n counts maps, one per seed and sample, and their 95% Wilson interval takes the maps as "
                     "independent, so with several seeds it is narrower than the leaderboard's interval, which "
                     "counts samples")
FAILED_NOTE = "Failed, no rows (failures.csv)"  # before the failed cells of a table, which it lacks
# The HTML legends of the pairwise tables and the cd columns (a review: the sign of effect_size could not be
# oriented from the HTML alone, and α was not said)
WILCOXON_NOTE = ("two-sided, Holm-adjusted; effect size: rank-biserial, positive when explainer_a scores higher, "
                 "whatever the direction: on a ↓ metric a positive effect means a is worse")
CD_NOTE = "cd: Nemenyi critical difference of mean ranks at α = 0.05"
_REST = ("bold: best mean of the column (over the samples every explainer with a value has), a description, not a "
         "test; rows in "
         "order of their mean rank over the columns; ↑ higher is better, ↓ lower is better; [95% percentile "
         "bootstrap CI of the mean: with fewer than about 30 samples it covers less than 95%, about 89% at n = 8, "
         "92% at n = 16 to 20 and the range of the values at n = 3; [–]: a single sample, no interval]; n: samples "
         "with a defined value; {controls}localisation columns measure "
         "agreement with the mask, not faithfulness to the model; on randomisation checks a map that ignores the "
         "model fails: 1 on the similarity checks (their worst; the aim is about 0), 0 on efficient_mprt ↑ (no rise "
         "in complexity; the aim is above 0), so * there says a map is not wholly model-blind, not that it passes")


_CONTROL_MAPS = {"random": "noise", "sobel": "the image's edges", "center_prior": "a centred Gaussian"}


def control_labels(manifest: dict | None, board: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """The labels the tables give the run's control explainers (their aliases, else their names), by registry
    name, from its manifest's suite: ``{"random": ["1e3"]}``; with ``board`` (``leaderboard.csv``) only those
    with rows there (:func:`present_controls`)."""
    labels: dict[str, list[str]] = {}
    for entry in ((manifest or {}).get("suite") or {}).get("explainers") or []:
        spec = {"name": entry} if isinstance(entry, str) else entry
        if isinstance(spec, dict) and spec.get("name") in _CONTROL_MAPS:
            labels.setdefault(spec["name"], []).append(str(spec.get("alias") or spec["name"]))
    return labels if board is None else present_controls(board, labels)


def present_controls(board: pd.DataFrame, controls: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The control explainers with rows in ``board``, by registry name: their labels (``controls``,
    :func:`control_labels`; a control not there by its registry name) that name rows of ``board``. A held-out
    review: a suite with only ``random`` had a legend naming sobel and center_prior as its controls."""
    rows = set(board["explainer"].astype(str)) if "explainer" in board.columns else set()
    present = {name: [label for label in (controls or {}).get(name, [name]) if label in rows] for name in _CONTROL_MAPS}
    return {name: labels for name, labels in present.items() if labels}


def _rest(controls: dict[str, list[str]] | None) -> str:
    """The legend after its first clause; each control named as the tables name it (``controls``,
    :func:`control_labels`: a review's legend said "random" and "sobel" of rows named "1e3" and "é中文🙂"),
    only those of ``controls`` when given (:func:`present_controls`; none given: no word of them), all three when
    None."""
    def named(name: str) -> str:
        shown = (controls or {}).get(name, [name])
        return name if shown == [name] else f"{', '.join(shown)} ({name})"

    which = [name for name in _CONTROL_MAPS if controls is None or name in controls]
    listed = ", ".join(f"{named(name)}: {_CONTROL_MAPS[name]}" for name in which)
    return _REST.format(controls=f"the controls ignore the model ({listed}); " if which else "")


def control_phrase(control: str = "random") -> str:
    """How the notes name the control explainer: "the random control", or "the control sobel"."""
    return "the random control" if control == "random" else f"the control {control}"


def control_tested(board: pd.DataFrame) -> bool:
    """Whether some row of ``board`` (``leaderboard.csv``) was tested against the control: a
    ``p_vs_random``. False in a suite without the control explainer (every ``p_vs_random`` empty)."""
    return "p_vs_random" in board.columns and bool(pd.to_numeric(board["p_vs_random"], errors="coerce").notna().any())


def control_alone(board: pd.DataFrame, control: str = "random") -> bool:
    """Whether the ``control`` explainer is the only one with rows in ``board``: every other explainer
    failed or gave no value (a review: a partial run's legend said the suite had no control)."""
    return "explainer" in board.columns and set(board["explainer"].astype(str)) == {control}


def significance_note(control: str = "random", tested: bool = True, alone: bool = False,
                      controls: dict[str, list[str]] | None = None) -> str:
    """The leaderboard's legend; ``*`` names ``control``, the explainer the one-sided tests compare with.
    ``tested`` False (no test against the control was run, :func:`control_tested`): the legend says so
    and promises no ``*`` (a held-out review: a suite without ``random`` still read "* better than the
    random control"). ``alone`` (:func:`control_alone`): the control ran, nothing else was tested.
    ``controls``: the labels of the suite's control explainers (:func:`control_labels`), as escaped as ``control``."""
    rest = _rest(controls)
    if not tested and alone:
        return f"nothing was tested against the control {control} (no other explainer has rows): no * marks; " + rest
    if not tested:
        return f"no control explainer ({control}) in this suite: no * marks; " + rest
    return (f"* better than {control_phrase(control)} (one-sided Wilcoxon signed-rank test, "
            "Holm-adjusted over the explainers of the cell, p < 0.05; no * is no evidence of no difference, and "
            "another explainer in the suite can change it), ° worse than it (the other side of that test); " + rest)


def failed_cells(failures: pd.DataFrame | None, dataset: str | None = None, model: str | None = None) -> list[str]:
    """The failed cells of ``failures.csv`` (unescaped): ``boom (seed 0, explain)``, ``boom (seed 0, metric
    deletion_auc)`` for a failed metric; only those of (``dataset``, ``model``) when given, else each
    prefixed with ``dataset / model / ``. A table lacking these columns gives its ``cell`` column. A
    held-out review: a failed explainer had no row in the HTML and typeset LaTeX tables and no word there."""
    if failures is None or failures.empty:
        return []
    if not {"dataset", "model", "explainer"} <= set(failures.columns):
        return [] if dataset is not None else [str(c) for c in failures.get("cell", pd.Series(dtype=str))]
    rows = failures.astype({"dataset": str, "model": str})
    if dataset is not None:
        rows = rows[(rows["dataset"] == str(dataset)) & (rows["model"] == str(model))]
    out = []
    for row in rows.to_dict("records"):
        seed, stage, metric = row.get("seed"), row.get("stage"), row.get("metric")
        whole = pd.api.types.is_number(seed) and float(seed).is_integer()  # 0, not 0.0 beside a NaN seed
        what = [] if pd.isna(seed) else [f"seed {int(seed) if whole else seed}"]
        what += [] if pd.isna(stage) else [f"{stage} {metric}" if isinstance(metric, str) and metric else str(stage)]
        where = "" if dataset is not None else f"{row['dataset']} / {row['model']} / "
        out.append(f"{where}{row['explainer']}" + (f" ({', '.join(what)})" if what else ""))
    return list(dict.fromkeys(out))  # once each: a cell whose metric failed under two batches


def failures_heading(failures: pd.DataFrame) -> str:
    """The heading of ``leaderboard.md``'s failures section, one line per row of ``failures``: a failed cell (an
    explainer) has no rows, a metric that failed in a cell lacks only its own (a review: "Failed cells: 2 …; their
    rows are missing" where one metric had failed in each cell and the cells' other rows were in the tables)."""
    metric = failures["stage"].astype(str).eq("metric") if "stage" in failures.columns else \
        pd.Series(False, index=failures.index)
    whole, parts = int((~metric).sum()), int(metric.sum())
    cells = counted(failures.loc[metric, "cell"].nunique() if "cell" in failures.columns else parts, "cell")
    if not parts:
        return f"Failed cells: {whole} (failures.csv; their rows are missing)"
    if not whole:
        return (f"Failed metrics: {parts} in {cells} (failures.csv; only the failed metrics' rows are missing, "
                f"the cells' other rows are in the tables)")
    return (f"Failures: {whole + parts} (failures.csv): {counted(whole, 'cell')} failed (no rows); "
            f"{counted(parts, 'metric')} failed in {cells} (only the failed metrics' rows are missing)")


def split_skipped(skipped: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``skipped.csv`` as (skips: cells and metrics that did not run, the (cell, metric) pairs that
    ran with undefined samples, :data:`~faithbench.types.UNDEFINED_REASONS`)."""
    if skipped is None or skipped.empty or "reason" not in skipped.columns:
        empty = pd.DataFrame() if skipped is None else skipped
        return empty, empty.iloc[0:0]
    partly = skipped["reason"].astype(str).str.endswith(UNDEFINED_REASONS)
    return skipped[~partly], skipped[partly]


def mixed_classes_note(samples: pd.DataFrame | None, dataset: str, model: str, target_class: str = "",
                       board: pd.DataFrame | None = None) -> str:
    """"k of n maps explain a class other than their sample's label ..." for a (dataset, model) of
    single-label ``samples.csv`` rows (one per explained sample and seed), or "" when every map explains
    its label; where every map explains one and the same class it says so instead of "each cell mixes the
    classes" (a review's model explained class 0 on all 12 (sample, seed) maps of lesion images).
    A held-out review: 10 of a shortcut model's 16 maps explained 'normal' on lesion images,
    and pooling them reversed the leaderboard's verdict of the lesion maps alone (``strata.csv``).
    With ``target_class`` (a multi-label table): "k of n maps explain it on images without it ..."
    where the table mixes images with and without the class (another review: 0.522 present, 0.264
    absent, 0.393 pooled); with ``board`` (the table's leaderboard rows) it names the metrics whose cells hold
    more samples than have the class, the only ones that mix (a review: a localisation metric has no mask, so no
    value, on an image without the finding, and the note said its cells mixed)."""
    if samples is None or samples.empty or not {"dataset", "model", "target", "label"} <= set(samples.columns):
        return ""
    rows = samples[(samples["dataset"].astype(str) == dataset) & (samples["model"].astype(str) == model)]
    if target_class:
        if "class" not in rows.columns:  # a run before samples.csv named the class
            return ""
        of_class = rows[rows["class"].astype(str) == target_class]
        present = pd.to_numeric(of_class["label"], errors="coerce")
        absent = int((present == 0).sum())
        if not absent or absent == len(present):
            return ""
        which = "each cell"
        if board is not None and {"metric", "n"} <= set(board.columns) and "sample_id" in of_class.columns:
            with_it = of_class.loc[present == 1, "sample_id"].nunique()
            n = pd.to_numeric(board["n"], errors="coerce").groupby(board["metric"].astype(str)).max()
            mixing = sorted(n.index[n > with_it])
            if not mixing:
                return ""
            which = f"each cell of {', '.join(mixing)}" + ("" if len(mixing) == n.size else
                                                          " (the others have no value without the finding)")
        return (f"{absent} of {len(present)} maps (samples x seeds) explain {target_class} on images without it: "
                f"{which} mixes images with and without the finding; strata.csv's finding (present / absent) "
                "breaks the scores down")
    target, label = (pd.to_numeric(rows[c], errors="coerce") for c in ("target", "label"))
    other = int((target != label)[target.notna() & label.notna()].sum())
    if not other:
        return ""
    if target.nunique() == 1:  # every map explains one class: nothing mixed, but still another class (a review)
        return (f"{other} of {len(rows)} maps (samples x seeds) explain a class other than their sample's label (the "
                f"model's prediction under target: predicted): every map explains class {int(target.iloc[0])}")
    return (f"{other} of {len(rows)} maps (samples x seeds) explain a class other than their sample's label (the "
            "model's prediction under target: predicted): each cell mixes the classes; strata.csv's explained "
            "class breaks the scores down")

