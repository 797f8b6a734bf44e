"""What every figure of the report shares: resolution, rc settings, how it is saved, how long names are
shortened and which colour each explainer gets."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faithbench.names import safe_name
from faithbench.reports.notes import DAGGER
from faithbench.reports.tables import is_true
from faithbench.stats.chance import MIN_CI_PER_CLASS
from faithbench.store import FILE_MODE, named_os_error

__all__ = ["CHANCE_TITLE", "DPI", "LABEL_WIDTH", "LINE_STYLES", "MARKERS", "RC", "at_chance", "block_labels",
           "blocks_at_chance", "explainer_colours", "model_marks", "save", "short_labels", "stem", "subplots", "titled",
           "with_blocks"]

DPI = 110
# Labels come from user configs: no mathtext; fixed SVG ids so a rebuild gives the same file.
RC = {"text.parse_math": False, "svg.hashsalt": "faithbench", "svg.fonttype": "path"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "p", "h")  # explainer i's: MARKERS[i % 12]
LINE_STYLES = ("-", "--", "-.", ":")
LABEL_WIDTH = 24  # characters of a name in a plot (tick label, legend, column title); the tables give it whole
# The tables' † (docs/outputs.md, "Models at chance"), on the figures of such a block; no significance wording.
CHANCE_TITLE = ("† model at chance: test AUC 95% CI not above 0.5, or AUC undefined,\n"
                f"or < {MIN_CI_PER_CLASS} test samples of a class and exact p ≥ 0.05; no significance shown")


def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: a figure on its own Agg canvas, so a report never switches the
    process's backend and no figure joins pyplot's (a held-out review: ``faithbench.run`` in a notebook
    set ``matplotlib.use("Agg")`` and the user's own plots stopped showing)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*args, **kwargs)


def save(fig: Figure, stem: Path, tight: bool = True) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` (no dates or software in their metadata, so a rebuild
    gives the same files) and return the two paths. ``tight`` (default): the image is
    cropped or grown to hold every label and legend (a held-out review: tick labels and legends of long
    names were cut at the figure's edge)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    extra = {"bbox_inches": "tight"} if tight else {}
    for ext, metadata in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = stem.parent / f"{stem.name}.{ext}"
        try:
            fig.savefig(path, dpi=DPI, metadata=metadata, **extra)
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            raise named_os_error(exc, path) from exc  # a full disk's write names no file (a review)
        os.chmod(path, FILE_MODE)  # readable by others as the tables, whatever the umask (a review: 0600)
        written.append(path)
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


def titled(fig: Figure, title: str, **kwargs: object) -> None:
    """A figure title a fixed distance (in inches) from the top, and the panels laid out below it.
    ``suptitle``'s default height is a fraction of the figure: in a tall grid of panels (the ``metrics``
    suite's 48) it fell inside the first row. ``tight_layout`` keeps the panels below the title's box
    itself (matplotlib >= 3.3), so no band is reserved for it: a band of 0.2 inch per line on top of that
    left the panels of a one-row figure with the three-line :data:`CHANCE_TITLE` 0.3 inch high (a
    held-out review: the distribution plots of a model at chance were unreadable)."""
    height = fig.get_figheight()
    fig.suptitle(title, y=1 - 0.08 / height, va="top", **kwargs)
    fig.tight_layout()


def blocks_at_chance(board: pd.DataFrame | None) -> set[tuple[str, ...]]:
    """The plot blocks (:func:`with_blocks`: (dataset, model), and (dataset, model, class) on multi-label
    rows, as text) of which the leaderboard marks some row ``model_at_chance``, as the tables decide their †
    (a held-out review: a model at chance had † in every table and none on its figures, whose CD diagram
    read "Friedman p = 9.8e-05")."""
    if board is None or board.empty or "model_at_chance" not in board.columns:
        return set()
    rows = board[board["model_at_chance"].map(is_true)]
    if "class" not in rows.columns:
        return {(str(d), str(m)) for d, m in zip(rows["dataset"], rows["model"])}
    classes = rows["class"].fillna("").astype(str)
    return {(str(d), str(m), c) for d, m, c in zip(rows["dataset"], rows["model"], classes)}


def model_marks(chance_blocks: Iterable[tuple[str, ...]], whole: Iterable[tuple[str, str]] = ()
                ) -> dict[tuple[str, str], str]:
    """The mark of each (dataset, model) in a table of models: "†" when the model itself is at chance (a block of
    ``chance_blocks`` without a class, or a pair of ``whole``: the models of
    :func:`faithbench.stats.chance.models_at_chance` with a macro AUC at chance), "† (class c)" or
    "† (classes a, b)" when only those multi-label classes are (a held-out review: a model with its macro CI
    [0.519, 0.606] above 0.5 was marked whole, while only class nodule was at chance)."""
    whole_models = {(str(d), str(m)) for d, m in whole}
    classes: dict[tuple[str, str], set[str]] = {}
    for block in chance_blocks:
        pair = (str(block[0]), str(block[1]))
        if len(block) < 3 or not str(block[2]):
            whole_models.add(pair)
        else:
            classes.setdefault(pair, set()).add(str(block[2]))
    marks = {pair: DAGGER for pair in whole_models}
    for pair, names in classes.items():
        if pair not in marks:
            marks[pair] = f"{DAGGER} (class{'es' if len(names) > 1 else ''} {', '.join(sorted(names))})"
    return marks


def at_chance(key: object, chance_blocks: set[tuple[str, ...]] | None) -> bool:
    """Whether the group ``key`` (a block, or a block and its metric) starts with a block of ``chance_blocks``."""
    key = tuple(str(k) for k in (key if isinstance(key, tuple) else (key,)))
    return any(key[:len(block)] == block for block in chance_blocks or ())


def short_labels(names: Iterable[object], width: int = LABEL_WIDTH) -> dict[str, str]:
    """Each name (as text) -> its plot label: itself up to ``width`` characters, else its start and end
    around an ellipsis (``a_very_long_exp…re_words``: aliases that differ at the end, ``_n32``/``_n64``,
    stay apart); a name whose label another name's would equal keeps its whole. A held-out review: a
    64-character alias ran over the neighbouring panels, legends and gallery titles."""
    names = list(dict.fromkeys(str(n) for n in names))
    tail = width // 3
    cut = {n: n if len(n) <= width else f"{n[:width - tail - 1]}…{n[-tail:]}" for n in names}
    clash = {label for label in cut.values() if list(cut.values()).count(label) > 1}
    return {n: n if cut[n] in clash else cut[n] for n in names}


def explainer_colours(names: Iterable[object]) -> dict[str, tuple[float, float, float]]:
    """One colour per explainer of ``names``, by sorted name: seaborn's colour-blind-safe "colorblind" palette
    up to 10 (a held-out review: tab10 put green and red, the deuteranopia pair, side by side), else evenly
    spaced husl hues, so no two explainers share one and the curves, sanity and strata plots of a (dataset,
    model) agree (another review: the strata plots cycled tab10, three colours twice over with 13 explainers).
    The line plots also give each explainer its marker and line style (:data:`MARKERS`, :data:`LINE_STYLES`),
    so no reader depends on colour alone."""
    names = sorted({str(n) for n in names})
    palette = sns.color_palette("colorblind" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, palette))
