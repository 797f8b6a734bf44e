"""Report pieces of the medical-imaging analyses: repeatability/reproducibility
(``repeatability.csv``), metric reliability (``reliability.csv``) and the stratified analysis
(``strata.csv``).

The runner computes ``repeatability.csv`` (it needs the saliency maps of several checkpoints;
:func:`faithbench.stats.repeatability.repeatability_table`) and ``reliability.csv`` (it needs
scores under perturbed conditions; :func:`faithbench.stats.reliability.metric_reliability`) and
writes them with :func:`write_repeatability` / :func:`write_reliability`; ``strata.csv`` is
derived from ``results.parquet`` by ``build_report`` when the results carry ``lesion_area``,
``confidence`` or ``correct``. :func:`medical_sections` turns whichever of the three files exist
into sections of ``index.html``; every string is escaped by the table helpers of ``html.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from faithbench.store import atomic_write_bytes
from faithbench.stats.reliability import AR_MIN, NR_MIN, reliability_footnote

__all__ = ["REPEATABILITY_FILE", "RELIABILITY_FILE", "STRATA_FILE", "medical_sections", "reliability_html",
           "reliability_note", "repeatability_html", "strata_html", "write_reliability", "write_repeatability",
           "write_strata"]

REPEATABILITY_FILE = "repeatability.csv"
RELIABILITY_FILE = "reliability.csv"
STRATA_FILE = "strata.csv"
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


def _read(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def repeatability_html(table: pd.DataFrame) -> str:
    """The repeatability section: the table with a note on how to read it."""
    from faithbench.reports.markup import table_html

    shown = table.fillna({"model": ""}) if table is not None and "model" in table else table
    return ('<p class="note">Similarity of the saliency maps of one sample under two checkpoints (Arun et al. '
            "2021): repeatability = two seeds of the same model, reproducibility = two models (same seed). "
            "ssim: structural similarity of the min-max normalised |maps|; spearman: rank correlation of "
            "|maps|. baseline_mean: the same similarity between maps of different samples (random pairs); "
            "p: one-sided Wilcoxon signed-rank test that the similarity exceeds that baseline. "
            f'<a href="{REPEATABILITY_FILE}">{REPEATABILITY_FILE}</a></p>'
            + table_html(shown, "no pair of checkpoints to compare", max_rows=400))


def reliability_note(root: Path, board: pd.DataFrame) -> str:
    """The leaderboard footnote (an HTML paragraph) when ``reliability.csv`` names failing metrics."""
    import html

    reliability = _read(Path(root) / RELIABILITY_FILE)
    if reliability is None or reliability.empty or "passed" not in reliability:
        return ""
    reliability = reliability.assign(passed=reliability["passed"].astype(str).str.lower().isin(["true", "1"]))
    note = reliability_footnote(reliability, board)
    return f'<p class="note">{html.escape(note)}</p>' if note else ""


def reliability_html(table: pd.DataFrame) -> str:
    """The metric reliability section: nr, ar, passed per metric, with the thresholds."""
    from faithbench.reports.markup import table_html

    return ('<p class="note">Is the metric itself reliable? (MetaQuantus idea, Hedström et al. 2023) '
            "nr (noise resilience): the explainers' ranking and scores stay put under a minor perturbation "
            "(weights + small Gaussian noise); ar (adversary reactivity): they change under a disruptive one "
            f"(weights re-initialised). passed: nr ≥ {NR_MIN} and ar ≥ {AR_MIN}. agreement_tau: mean Kendall τ "
            f'with the other metrics\' rankings. <a href="{RELIABILITY_FILE}">{RELIABILITY_FILE}</a></p>'
            + table_html(table, "no reliability scores"))


def strata_html(table: pd.DataFrame, figures: str = "") -> str:
    """The stratified-analysis section: the figures, then the table (first rows)."""
    from faithbench.reports.markup import table_html

    return ('<p class="note">Localisation and faithfulness scores by lesion size (tertiles of the mask\'s area '
            "fraction), model confidence (tertiles of the target probability) and correctness of the "
            "prediction; mean and 95% bootstrap CI per stratum. "
            f'<a href="{STRATA_FILE}">{STRATA_FILE}</a></p>' + figures
            + "<details><summary>table</summary>" + table_html(table, "no strata", max_rows=500) + "</details>")


def medical_sections(root: Path, figures: Callable[[str], str]) -> list[Section]:
    """The sections for the files of this module that exist in ``root``, in the order
    repeatability, reliability, strata. ``figures(prefix)`` renders (and marks as used) the
    plots whose name starts with ``prefix``."""
    root = Path(root)
    sections: list[Section] = []
    repeatability = _read(root / REPEATABILITY_FILE)
    if repeatability is not None:
        sections.append(("repeatability", "Repeatability and reproducibility", repeatability_html(repeatability)))
    reliability = _read(root / RELIABILITY_FILE)
    if reliability is not None:
        sections.append(("reliability", "Metric reliability", reliability_html(reliability)))
    strata = _read(root / STRATA_FILE)
    if strata is not None:
        sections.append(("strata", "Stratified analysis", strata_html(strata, figures("strata_"))))
    return sections
