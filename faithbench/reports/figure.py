"""What every figure of the report shares: resolution, rc settings and how it is saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from faithbench.names import safe_name  # noqa: E402

__all__ = ["DPI", "RC", "block_labels", "save", "stem", "titled", "with_blocks"]

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


def stem(out_dir: Path, prefix: str, *labels: object) -> Path:
    """``out_dir / <prefix>_<label>_...``, each label through :func:`~faithbench.names.safe_name`."""
    return out_dir / "_".join([prefix] + [safe_name(str(label)) for label in labels])


def with_blocks(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The plot blocks: (dataset, model), and the explained class for multi-label results."""
    if "class" not in results.columns:
        return results, ["dataset", "model"]
    return results.assign(**{"class": results["class"].fillna("").astype(str)}), ["dataset", "model", "class"]


def block_labels(key: tuple) -> list[str]:
    """A group key as file-name/title labels, without an empty class (single-label rows)."""
    return [str(k) for k in key if str(k) != ""]


def titled(fig: plt.Figure, title: str, **kwargs: object) -> None:
    """A figure title a fixed distance (in inches) from the top, and the panels laid out below it.
    ``suptitle``'s default height is a fraction of the figure: in a tall grid of panels (the
    ``metrics`` suite's 48) it fell inside the first row."""
    height = fig.get_figheight()
    fig.suptitle(title, y=1 - 0.08 / height, va="top", **kwargs)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height))
