"""Reports: tables, plots and the HTML page, built from the tidy results alone."""

from faithbench.reports.plots import plot_saliency_gallery, safe_name
from faithbench.reports.tables import leaderboard_latex, leaderboard_markdown
from faithbench.reports.writer import FORMATS, build_report, is_run_folder, write_outputs

__all__ = [
    "FORMATS",
    "build_report",
    "is_run_folder",
    "leaderboard_latex",
    "leaderboard_markdown",
    "plot_saliency_gallery",
    "safe_name",
    "write_outputs",
]
