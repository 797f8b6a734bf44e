"""Report pieces of the medical-imaging analyses: repeatability/reproducibility
(``repeatability.csv``), metric reliability (``reliability.csv``), the stratified analysis
(``strata.csv``) and saliency against the model's measured reliance on planted evidence
(``reliance_saliency.csv``, ``reliance_samples.csv``).

The runner computes ``repeatability.csv`` (it needs the saliency maps of several checkpoints;
:func:`faithbench.stats.repeatability.repeatability_table`) and ``reliability.csv`` (it needs
scores under perturbed conditions; :func:`faithbench.stats.reliability.metric_reliability`) and
writes them with :func:`write_repeatability` / :func:`write_reliability`; ``strata.csv`` is
derived from ``results.parquet`` by ``build_report`` when the results carry ``lesion_area``,
``confidence`` or ``correct``. :func:`medical_sections` turns them into sections of
``index.html`` (repeatability and reliability always, with a line saying why when their file is
absent; strata and reliance only with their files); every string is escaped by the table helpers
of ``html.py``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from faithbench.store import atomic_write_bytes
from faithbench.stats.reliability import AR_MIN, MIN_RANKED, NR_MIN, reliability_footnote, verdicts

__all__ = ["CALIBRATION_FILE", "RELIANCE_SALIENCY_FILE", "RELIANCE_SAMPLES_FILE", "REPEATABILITY_FILE",
           "RELIABILITY_FILE", "STRATA_FILE", "calibration_html", "control_reference", "mark_unreliable",
           "reliance_saliency_html", "write_reliance_saliency", "medical_sections", "reliability_footnote_text",
           "reliability_html", "reliability_markdown", "reliability_note", "reliability_status",
           "repeatability_html", "strata_html", "write_reliability", "write_repeatability", "write_strata"]

REPEATABILITY_FILE = "repeatability.csv"
RELIABILITY_FILE = "reliability.csv"
STRATA_FILE = "strata.csv"
RELIANCE_SALIENCY_FILE = "reliance_saliency.csv"
RELIANCE_SAMPLES_FILE = "reliance_samples.csv"
CALIBRATION_FILE = "calibration.csv"
Section = tuple[str, str, str]  # (anchor, heading, body html)


def _write(path: Path, frame: pd.DataFrame) -> Path:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())
    return path


def write_repeatability(out_dir: Path, table: pd.DataFrame) -> Path:
    """Write ``repeatability.csv`` (the table of ``repeatability_table``) into the run folder."""
    return _write(Path(out_dir) / REPEATABILITY_FILE, table)


def write_reliability(out_dir: Path, table: pd.DataFrame) -> Path:
    """Write ``reliability.csv`` (the table of ``metric_reliability``) into the run folder."""
    return _write(Path(out_dir) / RELIABILITY_FILE, table)


def write_strata(out_dir: Path, table: pd.DataFrame) -> Path:
    """Write ``strata.csv`` (the table of ``stratify``) into the run folder."""
    return _write(Path(out_dir) / STRATA_FILE, table)


def write_reliance_saliency(out_dir: Path, mass: pd.DataFrame, drops: pd.DataFrame, control: str = "random") -> Path:
    """Write ``reliance_samples.csv`` (each map's relevance mass on each evidence its sample holds,
    beside the model's drop and flip on that sample) and ``reliance_saliency.csv`` (the table of
    :func:`~faithbench.stats.reliance.reliance_saliency` with ``control_spearman`` after ``spearman``:
    the ``control`` explainer's ρ on the same (dataset, model, evidence), empty without its rows;
    :func:`control_reference`) into the run folder; returns the latter."""
    from faithbench.stats.reliance import reliance_saliency

    key = ["dataset", "model", "seed", "sample_id", "evidence"]
    _write(Path(out_dir) / RELIANCE_SAMPLES_FILE, mass.merge(drops, on=key, how="inner", validate="many_to_one"))
    table, _ = control_reference(reliance_saliency(mass, drops), control)
    if "control_spearman" not in table.columns:  # the column is there in every run (a review: documented, absent)
        at = list(table.columns).index("spearman") + 1
        table = table.reindex(columns=[*table.columns[:at], "control_spearman", *table.columns[at:]])
    return _write(Path(out_dir) / RELIANCE_SALIENCY_FILE, table)


def control_reference(table: pd.DataFrame, control: str = "random") -> tuple[pd.DataFrame, str]:
    """``table`` (``reliance_saliency.csv``) with ``control_spearman`` after ``spearman``: the ``control``
    explainer's ρ on the same (dataset, model, evidence), and a sentence giving it. A model-blind map can
    follow the drop through the evidence's size (a held-out review: random's lesion mass tracked the lesion's
    area, ρ 0.90, and so did the model's drop, so random came out at ρ 0.66, p 0.005): an explainer's ρ is
    evidence of following the model only above the control's. Without rows of the control the sentence says so."""
    key = ["dataset", "model", "evidence"]
    if table is not None and "control_spearman" in table.columns:  # the CSV's, computed again for ``control``
        table = table.drop(columns="control_spearman")
    if table is None or table.empty or not {*key, "explainer", "spearman"} <= set(table.columns):
        return table, ""
    own = table["explainer"].astype(str) == control
    reference = table.loc[own, key + ["spearman"]].drop_duplicates(key).rename(columns={"spearman": "control_spearman"})
    if reference.empty:
        return table, (f" No rows of the control {control} here, so no reference ρ: a model-blind map can correlate "
                       "with the drop through the evidence's size, so read no ρ alone as following the model.")
    out = table.merge(reference, on=key, how="left")
    columns = list(table.columns)
    out = out[columns[:columns.index("spearman") + 1] + ["control_spearman"] + columns[columns.index("spearman") + 1:]]
    values = [f"{r.evidence} ({r.dataset} / {r.model}) {r.control_spearman:.2f}" if pd.notna(r.control_spearman)
              else f"{r.evidence} ({r.dataset} / {r.model}) n/a" for r in reference.itertuples(index=False)]
    return out, (f" Reference: {control} control ρ = {'; '.join(values)}. The control's map ignores the model, yet "
                 "its mass can track the evidence's size, and so can the model's drop: an explainer's ρ is evidence "
                 "of following the model only above the control's (control_spearman), not by its p alone.")


def reliance_saliency_html(table: pd.DataFrame, control: str = "random") -> str:
    """Does each explainer point at what the model relies on? The table with how to read it, and the
    ``control`` explainer's ρ as the reference each explainer's ρ must beat (:func:`control_reference`)."""
    from faithbench.reports.markup import table_html

    table, reference = control_reference(table, control)
    return ('<p class="note">Saliency against what the model relies on (Adebayo et al. 2022): mass is the '
            "relevance mass (share of the positive saliency) on the evidence's mask, drop the model's measured "
            "reliance on it (the predicted class's probability lost when it is removed), both averaged over the "
            "samples holding it (each sample's seeds first). A faithful explainer ranks the evidence as the model "
            "does: mass_rank = reliance_rank (1: the most mass / the largest drop). spearman, p: rank correlation "
            "of mass and drop over those samples; compare it with the control's, control_spearman."
            + html.escape(reference) + " "
            f'<a href="{RELIANCE_SALIENCY_FILE}">{RELIANCE_SALIENCY_FILE}</a>, per sample: '
            f'<a href="{RELIANCE_SAMPLES_FILE}">{RELIANCE_SAMPLES_FILE}</a></p>'
            + table_html(table, "no explained sample holds planted evidence", max_rows=400))


def _read(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _without_controls(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of explainers that are not controls: a folder written before ``repeatability.csv``
    left them out may hold rows of a control explainer (``family == "control"``, named by its
    registry name), whose maps ignore the model; they are dropped."""
    from faithbench.registry import explainers

    if table is None or "explainer" not in table:
        return table
    labels = table["explainer"].astype(str)
    controls = {name for name in labels.unique() if name in explainers
                and getattr(explainers.get(name), "family", "") == "control"}
    return table[~labels.isin(controls)]


def repeatability_html(table: pd.DataFrame) -> str:
    """The repeatability section: the table (control explainers left out) with a note on how to
    read it."""
    from faithbench.reports.markup import table_html

    table = _without_controls(table)
    shown = table.fillna({"model": ""}) if table is not None and "model" in table else table
    return ('<p class="note">Similarity of the saliency maps of one sample under two checkpoints (Arun et al. '
            "2021): repeatability = two seeds of the same model (retrained per seed: a model loaded from a "
            "weights file, or pretrained without a recipe, is one checkpoint under every seed and has no such "
            "row), reproducibility = two models (same seed). "
            "ssim: structural similarity of the min-max normalised |maps|; spearman: rank correlation of "
            "|maps|. baseline_mean: the same similarity between maps of different samples explained for the "
            "same class (each sample against every other sample of its class under the other checkpoint, "
            "averaged: no random draw); "
            "p: one-sided Wilcoxon signed-rank test that the similarity exceeds that baseline. Maps are "
            "compared for the same class: n_target_differs counts the samples the two checkpoints explained "
            "for different classes (target: predicted), left out (reproducibility over several seeds: "
            "(seed, sample) pairs; a sample still counts in n through the seeds where the classes agree). "
            "Control explainers (random, sobel, center_prior) are left out: their maps ignore the model. "
            f'<a href="{REPEATABILITY_FILE}">{REPEATABILITY_FILE}</a></p>'
            + table_html(shown, "no pair of checkpoints to compare", max_rows=400))


def _passed(reliability: pd.DataFrame) -> pd.Series:
    """``passed`` as read (text), and not on fewer than ``MIN_RANKED`` ranked samples: a file
    written before that rule may say True on 3."""
    passed = reliability["passed"].astype(str).str.lower().isin(["true", "1"])
    if "n_ranked" in reliability:
        passed &= pd.to_numeric(reliability["n_ranked"], errors="coerce").fillna(0) >= MIN_RANKED
    return passed


def _verdicts(reliability: pd.DataFrame) -> pd.Series:
    """pass / fail / no verdict per row of ``reliability.csv`` as read (:func:`_passed`)."""
    return verdicts(reliability.assign(passed=_passed(reliability)))


def reliability_footnote_text(reliability: pd.DataFrame, board: pd.DataFrame) -> str:
    """:func:`~faithbench.stats.reliability.reliability_footnote` of ``reliability.csv`` as read
    (``passed`` as text): headed by ``RELIABILITY_MARK`` (‡), the mark the leaderboards put on
    the failing metrics' headers, not the † of a model at chance; "" when no metric of ``board``
    failed."""
    return reliability_footnote(reliability.assign(passed=_passed(reliability)), board)


def mark_unreliable(board: pd.DataFrame, reliability: pd.DataFrame | None) -> pd.DataFrame:
    """``board`` with ``metric_unreliable``: True on the rows of a metric that failed the check in
    ``reliability`` (``reliability.csv``), matched on dataset and model too when both tables have
    them, as the footnote matches (:func:`reliability_footnote_text`)."""
    if reliability is None or reliability.empty or board.empty or not {"passed", "metric"} <= set(reliability):
        return board.assign(metric_unreliable=False)
    failed = reliability[~_passed(reliability)]
    keys = [c for c in ("dataset", "model") if c in failed.columns and c in board.columns] + ["metric"]
    failing = set(failed[keys].astype(str).itertuples(index=False, name=None))
    return board.assign(metric_unreliable=[k in failing for k in board[keys].astype(str).itertuples(index=False,
                                                                                                    name=None)])


def reliability_note(root: Path, board: pd.DataFrame) -> str:
    """The leaderboard footnote (an HTML paragraph) when ``reliability.csv`` names failing metrics."""
    reliability = _read(Path(root) / RELIABILITY_FILE)
    if reliability is None or reliability.empty or "passed" not in reliability:
        return ""
    note = reliability_footnote_text(reliability, board)
    return f'<p class="note">{html.escape(note)}</p>' if note else ""


def reliability_status(root: Path, manifest: dict | None = None) -> dict:
    """The run's ``reliability`` entry of ``manifest.json`` (status, note, skipped metrics;
    :func:`faithbench.runner.reliability.reliability_summary`); for a folder written before the
    entry existed, inferred from the file and the suite's ``reliability`` key."""
    if manifest is None:
        path = Path(root) / "manifest.json"
        manifest = json.loads(path.read_text()) if path.exists() else {}
    info = dict(manifest.get("reliability") or {})
    if not info:
        samples = (manifest.get("suite") or {}).get("reliability")
        if (Path(root) / RELIABILITY_FILE).exists():
            info = {"status": "computed"}
        elif samples == 0:
            info = {"status": "off", "note": "Metric reliability is off (the suite sets reliability: 0)."}
        else:
            info = {"status": "not computed", "note": f"Metric reliability was not computed ({RELIABILITY_FILE} "
                    "is missing)."}
    info.setdefault("skipped", {})
    return info


def _skipped_line(info: dict) -> str:
    skipped = info.get("skipped") or {}
    return ("Not re-scored: " + "; ".join(f"{m} ({r})" for m, r in sorted(skipped.items())) + ".") if skipped else ""


def reliability_html(table: pd.DataFrame | None, info: dict | None = None) -> str:
    """The metric reliability section: nr, ar, agreement τ and passed per metric, with the
    thresholds and the metrics left out; one line when there is no table (off, or not computed)."""
    from faithbench.reports.markup import table_html

    info = info or {}
    skipped = _skipped_line(info)
    skipped = f'<p class="note">{html.escape(skipped)}</p>' if skipped else ""
    if table is None:
        note = info.get("note") or f"Metric reliability was not computed ({RELIABILITY_FILE} is missing)."
        return f'<p class="note">{html.escape(note)}</p>' + skipped
    return ('<p class="note">Is the metric itself reliable? (MetaQuantus idea, Hedström et al. 2023) '
            "nr (noise resilience): the explainers' ranking holds and their scores shift in no consistent "
            "direction under a minor perturbation (weights + small Gaussian noise); ar (adversary reactivity): "
            "the ranking changes and the scores shift consistently under a disruptive one (weights "
            f"re-initialised). verdict: pass when nr ≥ {NR_MIN} and ar ≥ {AR_MIN} on at least {MIN_RANKED} "
            f"samples that rank the explainers (n_ranked), no verdict on 0 to {MIN_RANKED - 1}, else fail. "
            f"agreement_tau: mean Kendall τ with the other metrics\' rankings. "
            f'<a href="{RELIABILITY_FILE}">{RELIABILITY_FILE}</a></p>'
            + table_html(_with_verdict(table), "no reliability scores") + skipped)


def _with_verdict(table: pd.DataFrame) -> pd.DataFrame:
    """``reliability.csv`` as shown: its ``passed`` column replaced, in place, by ``verdict``."""
    if "passed" not in table:
        return table
    shown = table.copy()
    shown["passed"] = _verdicts(table)
    return shown.rename(columns={"passed": "verdict"})


def reliability_markdown(root: Path, board: pd.DataFrame, manifest: dict | None = None) -> list[str]:
    """The leaderboard's reliability section in Markdown: per metric nr, ar, agreement τ and
    pass/fail, the footnote naming the failing metrics, and the metrics not re-scored; one line
    when the check is off or could not be computed."""
    from faithbench.reports.tables import format_number, markdown_escape

    info = reliability_status(root, manifest)
    table = _read(Path(root) / RELIABILITY_FILE)
    lines = ["## Metric reliability", ""]
    if table is None or table.empty or "passed" not in table:
        lines += [markdown_escape(info.get("note") or "Metric reliability was not computed."), ""]
    else:
        verdict = _verdicts(table)
        keys = [c for c in ("dataset", "model") if c in table.columns] + ["metric"]
        columns = keys + ["nr", "ar", "agreement_tau", "verdict"]
        lines += [f"Noise resilience (nr ≥ {NR_MIN}) and adversary reactivity (ar ≥ {AR_MIN}) of each metric "
                  f"(MetaQuantus idea, Hedström et al. 2023; a verdict needs {MIN_RANKED} samples that rank the "
                  f"explainers); agreement\\_tau: mean Kendall τ with the other "
                  f"metrics' rankings ({RELIABILITY_FILE}).", "",
                  "| " + " | ".join(markdown_escape(c) for c in columns) + " |",
                  "|---" * len(keys) + "|---:" * 3 + "|---|"]
        for row, word in zip(table.itertuples(index=False), verdict):
            cells = [markdown_escape(getattr(row, k)) for k in keys]
            cells += [format_number(float(getattr(row, c))) for c in ("nr", "ar", "agreement_tau")]
            lines.append("| " + " | ".join(cells + ["**fail**" if word == "fail" else word]) + " |")
        lines.append("")
        note = reliability_footnote_text(table, board)
        if note:
            lines += [markdown_escape(note), ""]
    skipped = _skipped_line(info)
    if skipped:
        lines += [markdown_escape(skipped), ""]
    return lines


def strata_html(table: pd.DataFrame, figures: str = "", target: Any = None) -> str:
    """The stratified-analysis section: the figures, then the table (first rows); a stratum of one map
    shows no CI ("–", where ``strata.csv`` keeps the bootstrap's zero-width [v, v]); mean and CI with the
    leaderboard's decimals per (dataset, model, metric) (:func:`~faithbench.reports.markup.fixed_columns`). The
    note explains the ``finding`` stratum where the table has it, and what ``target: predicted`` does unless the suite's
    ``target`` (None: not known) is another (a review: neither held for a multi-label class-target run)."""
    from faithbench.reports.markup import fixed_columns, table_html

    kinds = set(table["stratum_kind"].astype(str)) if "stratum_kind" in table.columns else set()
    finding = ("; on multi-label data, whether the image has the explained class's finding (present / absent: "
               "under a class target an absent class is explained too)" if "finding" in kinds else "")
    predicted = ("With target: predicted a wrong prediction explains the other class, so for localisation, wrong "
                 "against correct also compares maps of two classes against the same lesion mask (target: label "
                 "explains the true class). " if target in (None, "predicted") and "correctness" in kinds else "")

    if {"n", "ci_low", "ci_high"} <= set(table.columns):
        single = pd.to_numeric(table["n"], errors="coerce") == 1
        table = table.assign(ci_low=table["ci_low"].mask(single), ci_high=table["ci_high"].mask(single))
    table = fixed_columns(table, ("mean", "ci_low", "ci_high"))  # per metric, as the leaderboard (a review: 2.79e-09)
    return ('<p class="note">Localisation and faithfulness scores by lesion size (tertiles of the mask\'s area '
            "fraction, on datasets with a lesion mask; the edges come from the distinct values, so with one or "
            "two distinct areas a stratum is missing), model confidence (tertiles of the target probability), "
            "correctness of the prediction and, where maps explain several classes, the explained class (a pooled "
            f"score can hide opposite verdicts per class){finding}; mean and 95% bootstrap CI per stratum (none, –, "
            f"for a stratum of one map). {predicted}"
            f'<a href="{STRATA_FILE}">{STRATA_FILE}</a></p>' + figures
            + "<details><summary>table</summary>" + table_html(table, "no strata", max_rows=500) + "</details>")


def medical_sections(root: Path, figures: Callable[[str], str], manifest: dict | None = None,
                     control: str = "random") -> list[Section]:
    """The sections of this module's files in ``root``, in the order repeatability, reliability,
    strata, reliance, calibration; the repeatability and reliability sections are always there (one line
    when the table is absent: no two checkpoints to compare; the check off or not computed; ``manifest``:
    the run's, read from ``root`` when None), the others only with their files (``control``: the
    report's control explainer, the reliance section's reference ρ).
    ``figures(prefix)`` renders (and marks as used) the plots whose name starts with ``prefix``."""
    root = Path(root)
    sections: list[Section] = []
    repeatability = _read(root / REPEATABILITY_FILE)
    if repeatability is None:
        body = (f'<p class="note">Not computed (no {REPEATABILITY_FILE}): it needs two checkpoints to compare, '
                "2 seeds of a model (repeatability) or 2 models on a dataset (reproducibility), and an explainer "
                "that is not a control.</p>")
    else:
        body = repeatability_html(repeatability)
    sections.append(("repeatability", "Repeatability and reproducibility", body))
    sections.append(("reliability", "Metric reliability",
                     reliability_html(_read(root / RELIABILITY_FILE), reliability_status(root, manifest))))
    strata = _read(root / STRATA_FILE)
    if strata is not None:
        target = ((manifest or {}).get("suite") or {}).get("target")
        sections.append(("strata", "Stratified analysis", strata_html(strata, figures("strata_"), target)))
    reliance = _read(root / RELIANCE_SALIENCY_FILE)
    if reliance is not None:
        sections.append(("reliance", "Saliency vs measured reliance", reliance_saliency_html(reliance, control)))
    calibration = _read(root / CALIBRATION_FILE)
    if calibration is not None:  # a review: which threshold or gate a score used was in the CSV only
        sections.append(("calibration", "Thresholds tuned on the validation split", calibration_html(calibration)))
    return sections


def calibration_html(table: pd.DataFrame) -> str:
    """The ``calibration.csv`` section: per (dataset, model, seed, explainer, metric, class) the threshold and
    probability gate tuned on the validation split, and why a class fell back to Otsu / no gate."""
    from faithbench.reports.markup import format_number, table_html

    if "threshold" in table.columns:  # numbers and 'otsu' in one column: read as text, shown as the gates are
        number = pd.to_numeric(table["threshold"], errors="coerce")
        table = table.assign(threshold=[format_number(v) if pd.notna(v) else text
                                        for v, text in zip(number, table["threshold"])])
    return ('<p class="note">The CheXlocalize metrics tuned on the validation split (threshold: val, gate: val) '
            "scored the test split with these thresholds (on the min-max normalised map; otsu: a class fell back "
            "to Otsu's threshold) and probability gates (empty: no gate); n_finding: the validation units with a "
            f'non-empty mask, the ones tuned on. <a href="{CALIBRATION_FILE}">{CALIBRATION_FILE}</a></p>'
            + table_html(table, "no tuned thresholds", max_rows=500))
