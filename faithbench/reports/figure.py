"""What every figure of the report shares: resolution, rc settings and how it is saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["DPI", "RC", "save"]

DPI = 110
# Labels come from user configs: no mathtext; fixed SVG ids so a rebuild gives the same file.
RC = {"text.parse_math": False, "svg.hashsalt": "faithbench", "svg.fonttype": "path"}


def save(fig: plt.Figure, stem: Path, tight: bool = False) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` (no dates or software in their metadata, so a rebuild
    gives the same files), close ``fig`` and return the two paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    extra = {"bbox_inches": "tight"} if tight else {}
    for ext, metadata in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = stem.parent / f"{stem.name}.{ext}"
        fig.savefig(path, dpi=DPI, metadata=metadata, **extra)
        written.append(path)
    plt.close(fig)
    return written
