"""Reports: tables, plots and the HTML page, built from the tidy results alone."""

from faithbench.reports.medical import (medical_sections, reliability_html, repeatability_html, strata_html,
                                        write_reliability, write_repeatability, write_strata)
from faithbench.reports.plots import plot_saliency_gallery, safe_name
from faithbench.reports.plots_medical import plot_strata
from faithbench.reports.latex import leaderboard_latex
from faithbench.reports.tables import leaderboard_markdown
from faithbench.reports.writer import FORMATS, build_report, is_run_folder, write_outputs

__all__ = [
    "FORMATS",
    "build_report",
    "is_run_folder",
    "leaderboard_latex",
    "leaderboard_markdown",
    "medical_sections",
    "plot_strata",
    "plot_saliency_gallery",
    "reliability_html",
    "repeatability_html",
    "safe_name",
    "strata_html",
    "write_outputs",
    "write_reliability",
    "write_repeatability",
    "write_strata",
]
