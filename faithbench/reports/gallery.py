"""The saliency gallery: images, their saliency maps and masks, one row per sample (and plane).

Arrays handed over by the runner (the tidy tables cannot hold them); written beside the plots of
:mod:`faithbench.reports.plots`, with the same conventions (PNG and SVG, no mathtext).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from faithbench.names import safe_name
from faithbench.reports.figure import RC as _RC, save as _save, short_labels, subplots
from faithbench.types import CANONICAL_PLANES

__all__ = ["FAILED_TITLE", "GALLERY_NOTE", "failed_explainers", "gallery_failure_note", "gallery_stem",
           "missing_galleries", "plot_saliency_gallery"]

CBAR_INCHES = 0.9  # figure width added per colour bar
GALLERY_NOTE = ("the saliency gallery is drawn by `faithbench run` from the maps, which the tables do not hold, and "
                "is not rebuilt by `faithbench report`; rerun the suite into this folder (its cached maps make it "
                "quick)")
# under the column title of an explainer whose cell failed after its first batch had maps (a held-out review: its
# column read as a scored explainer, while failures.csv had it and no table a row)
FAILED_TITLE = "failed: not scored"


def gallery_stem(dataset: str, model: str) -> str:
    """The file stem of a (dataset, model)'s gallery in ``plots/``: ``gallery_<dataset>_<model>``."""
    return f"gallery_{safe_name(str(dataset))}_{safe_name(str(model))}"


def missing_galleries(run_dir: Path, pairs: Iterable[tuple[object, object]] | None = None) -> list[str]:
    """``dataset / model`` of each (dataset, model) of ``pairs`` (default: those of the run's ``leaderboard.csv``;
    once each, in order) without its gallery PNG in ``run_dir / "plots"``: a report rebuilt after ``plots/`` was
    deleted cannot draw it (:data:`GALLERY_NOTE`; a held-out review: it vanished from index.html unsaid)."""
    if pairs is None:
        import pandas as pd

        board = pd.read_csv(Path(run_dir) / "leaderboard.csv", usecols=["dataset", "model"], dtype=str)
        pairs = zip(board["dataset"], board["model"])
    pairs = list(dict.fromkeys((str(d), str(m)) for d, m in pairs))
    return [f"{d} / {m}" for d, m in pairs if not (Path(run_dir) / "plots" / f"{gallery_stem(d, m)}.png").is_file()]


def _explain_failures(failures, seed: object = None):
    """The explain-stage rows of ``failures`` (None where it has none), under ``seed`` where given: the gallery's,
    the suite's first (a diff review: a failure under seed 1 only marked the seed-0 column, whose rows exist)."""
    if failures is None or failures.empty or not {"dataset", "model", "explainer", "stage"} <= set(failures.columns):
        return None
    rows = failures[failures["stage"].astype(str) == "explain"]
    return rows[rows["seed"].astype(str) == str(seed)] if seed is not None and "seed" in rows.columns else rows


def failed_explainers(failures, dataset: object, model: object, seed: object = None) -> list[str]:
    """The explainers of ``failures`` (``failures.csv`` as read, or None) whose cell failed in its explain stage
    for (``dataset``, ``model``) under ``seed`` (the gallery's; None: any seed): they have no rows there, so their
    gallery column says :data:`FAILED_TITLE`. A failed metric leaves the explainer's other rows, and no mark."""
    if (rows := _explain_failures(failures, seed)) is None:
        return []
    rows = rows[(rows["dataset"].astype(str) == str(dataset)) & (rows["model"].astype(str) == str(model))]
    return list(dict.fromkeys(rows["explainer"].astype(str)))


def gallery_failure_note(failures, drawn: Iterable[str], seed: object = None) -> str:
    """The gallery's caption sentence on the failed explainers (:func:`failed_explainers`) of each (dataset, model)
    whose gallery stem (:func:`gallery_stem`) is in ``drawn``, under ``seed`` (the gallery's), each failed cell
    named as :func:`~faithbench.reports.notes.failed_cells` does; "" when none failed."""
    from faithbench.reports.notes import failed_cells

    if (explain := _explain_failures(failures, seed)) is None:
        return ""
    drawn = set(drawn)
    pairs = dict.fromkeys((str(d), str(m)) for d, m in zip(explain["dataset"], explain["model"]))
    named = [f"{d} / {m} / {c}" for d, m in pairs if gallery_stem(d, m) in drawn
             for c in failed_cells(explain, d, m)]
    if not named:
        return ""
    return (f"failed cells (failures.csv: {'; '.join(named)}): the column of such an explainer, titled "
            f'"{FAILED_TITLE}", holds maps made before its cell failed; it has no rows in any table')


def _numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=float)


def _display_image(image: np.ndarray, limits: tuple[float, float] | None = None) -> tuple[np.ndarray, str | None]:
    """(C, *spatial) -> something imshow can show: RGB for 3 channels, else the channel mean; grey levels
    stretched from ``limits`` (default: the image's own 1st and 99th percentiles) to 0 and 1."""
    lo, hi = np.nanpercentile(image, [1, 99]) if limits is None else limits
    scaled = np.clip((image - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(image)
    if image.shape[0] == 3:
        return np.moveaxis(scaled, 0, -1), None
    return scaled.mean(axis=0), "gray"


def _slices(volume: np.ndarray, centre: tuple[int, int, int],
            planes: Sequence[str] = CANONICAL_PLANES) -> list[tuple[str, np.ndarray]]:
    """Three orthogonal slices of (..., D, H, W) through ``centre`` (indices along axes 0, 1, 2),
    each titled ``<its plane's name>=<index>`` ("axial z=4")."""
    a, b, c = centre
    return [(f"{planes[0]}={a}", volume[..., a, :, :]), (f"{planes[1]}={b}", volume[..., :, b, :]),
            (f"{planes[2]}={c}", volume[..., :, :, c])]


def _centre(mask: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    if mask is not None and np.nansum(np.abs(mask)) > 0:
        weights = np.abs(np.nan_to_num(mask))
        grids = np.indices(mask.shape)
        return tuple(int(round(float((g * weights).sum() / weights.sum()))) for g in grids)
    return tuple(s // 2 for s in shape)


def plot_saliency_gallery(images, saliency: Mapping[str, object], masks, path: Path, *,
                          time_axis: bool = False, labels: Sequence[str] | None = None,
                          probs: Sequence[float] | None = None, ids: Sequence[str] | None = None,
                          planes: Sequence[str] | None = None, visits=None,
                          failed: Iterable[str] = ()) -> list[Path]:
    """A grid of saliency maps: rows = samples, columns = the image then one per explainer.

    ``images`` (N, C, H, W) or (N, C, D, H, W); ``saliency[explainer]`` (N, *spatial);
    ``masks`` (N, *spatial) or None, drawn as an outline. Volumes show three orthogonal
    slices (one row each) through the mask's centre of mass, or the volume's centre without
    a mask; with ``time_axis`` (sequences (N, C, T, H, W) of a longitudinal dataset) one row per
    visit instead, titled ``visit 1`` (the first real visit), ``visit 2``, … or ``padding`` by
    ``visits`` ((N, T) bools, False on a padding frame; default: every frame a visit); a sequence's
    images share one grey scale, its real visits' 1st to 99th percentile, so a change of brightness
    between visits shows. Maps are scaled for display only (to the 99th percentile of |saliency| per
    map, diverging colours when a map has negative values; an all-zero map is not drawn: the image
    alone); colour bars on the right give that scale
    (0 to 1 × the map's 99th percentile; −1 to 1 for signed maps). ``labels`` (N class names, the
    sample's label) and ``probs`` (N, the predicted probability of the explained class) are
    written beside each sample's row, headed by its id from ``ids`` (N; default its row number: a
    multi-label image explained for several classes fills several rows). ``planes``: the names of a
    volume's slices through axes 0, 1, 2 (default :data:`~faithbench.types.CANONICAL_PLANES`, "axial z",
    "coronal y", "sagittal x", true of the canonical layout only; a dataset's ``planes``). Slice
    indices count voxels of the array as given (a resized volume's), each voxel drawn square.
    The column of an explainer of ``failed`` (:func:`failed_explainers`: its cell failed after these maps, it has no
    rows) is titled in red with :data:`FAILED_TITLE` under its name.
    Writes ``path`` (PNG) and the same stem as SVG; returns both.
    """

    x = _numpy(images)
    planes = tuple(CANONICAL_PLANES if planes is None else planes)
    if len(planes) != 3:
        raise ValueError(f"expected planes the names of 3 slices (axes 0, 1, 2), got {planes!r}")
    if x.ndim not in (4, 5):
        raise ValueError(f"expected images of shape (N, C, H, W) or (N, C, D, H, W), got {tuple(x.shape)}")
    spatial = x.shape[2:]
    maps = {str(name): _numpy(s) for name, s in saliency.items()}
    for name, s in maps.items():
        if s.shape != (x.shape[0],) + spatial:
            raise ValueError(f"expected saliency of {name!r} of shape {(x.shape[0],) + spatial} to match the "
                             f"images' (N, *spatial), got {tuple(s.shape)}")
    m = None if masks is None else _numpy(masks)
    if m is not None and m.shape != (x.shape[0],) + spatial:
        if m.ndim == x.ndim and m.shape[1] == 1:
            m = m[:, 0]
        if m.shape != (x.shape[0],) + spatial:
            raise ValueError(f"expected masks of shape {(x.shape[0],) + spatial}, got {tuple(m.shape)}")
    real = np.ones((x.shape[0], x.shape[2] if x.ndim == 5 else 1), dtype=bool) if visits is None else _numpy(visits)
    if x.ndim == 5 and time_axis and real.shape != x.shape[:1] + x.shape[2:3]:
        raise ValueError(f"expected visits of shape {x.shape[:1] + x.shape[2:3]} (N, T), got {tuple(real.shape)}")
    names = list(maps)
    failed = {str(name) for name in failed}
    titles = short_labels(names)  # a long alias overlapped its neighbours' titles (a held-out review)
    id_labels = short_labels(ids or [])
    n = x.shape[0]
    for given, what in ((labels, "labels"), (probs, "probs"), (ids, "ids")):
        if given is not None and len(given) != n:
            raise ValueError(f"expected {what} with one entry per sample ({n}), got {len(given)}")
    signed = {k: bool(np.isfinite(v).any() and np.nanmin(v) < -0.01 * _scale(v)) for k, v in maps.items()}
    bars = [c for c, used in (("inferno", not all(signed.values()) if signed else False),
                              ("RdBu_r", any(signed.values()))) if used]
    rows_per_sample = (x.shape[2] if time_axis else 3) if x.ndim == 5 else 1
    n_rows, n_cols = n * rows_per_sample, 1 + len(names)
    path = Path(path)
    with matplotlib.rc_context(_RC):
        width = 2.2 * n_cols + CBAR_INCHES * len(bars)
        fig, axes = subplots(n_rows, n_cols, figsize=(width, 2.2 * n_rows), squeeze=False)
        for i in range(n):
            mask_i = None if m is None else m[i]
            limits = None
            if x.ndim == 5 and time_axis:
                # one grey scale per sequence, from its real visits only (a review: each visit stretched on its
                # own hid a visit made brighter); padding rows say so and real visits count from 1
                seen = real[i] > 0
                limits = tuple(np.nanpercentile(x[i][:, seen] if seen.any() else x[i], [1, 99]))
                rows = [f"visit {int(seen[:t + 1].sum())}" if seen[t] else "padding" for t in range(rows_per_sample)]
                views = [((rows[t], x[i][:, t]), ("", np.stack([maps[k][i][t] for k in names])),
                          (None, None if mask_i is None else mask_i[t])) for t in range(rows_per_sample)]
            elif rows_per_sample == 3:
                centre = _centre(mask_i, spatial)
                views = list(zip(_slices(x[i], centre, planes), _slices(np.stack([maps[k][i] for k in names]), centre),
                                 _slices(mask_i, centre) if mask_i is not None else [(None, None)] * 3))
            else:
                views = [(("", x[i]), ("", np.stack([maps[k][i] for k in names])), (None, mask_i))]
            for p, ((plane, img), (_, sal), (_, msk)) in enumerate(views):
                row = axes[i * rows_per_sample + p]
                shown, cmap = _display_image(img, limits)
                for c, ax in enumerate(row):
                    ax.imshow(shown, cmap=cmap, interpolation="nearest")
                    # an all-zero map (a control's, or nothing found) leaves the image alone, not darkened
                    if c > 0 and np.nan_to_num(maps[names[c - 1]][i]).any():
                        s = sal[c - 1]
                        # sequences: one scale for all visits of a map, so rows compare across visits
                        whole = maps[names[c - 1]][i] if time_axis and x.ndim == 5 else s
                        scale = _scale(whole)
                        if signed[names[c - 1]]:
                            ax.imshow(s, cmap="RdBu_r", vmin=-scale, vmax=scale, alpha=0.6, interpolation="nearest")
                        else:
                            ax.imshow(s, cmap="inferno", vmin=0, vmax=scale, alpha=0.6, interpolation="nearest")
                    if msk is not None and np.nanmax(msk) > np.nanmin(msk):
                        ax.contour(msk, levels=[0.5], colors="lime", linewidths=0.8)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if i == 0 and p == 0 and (c == 0 or names[c - 1] not in failed):
                        ax.set_title("image" if c == 0 else titles[names[c - 1]], fontsize=9)
                    elif i == 0 and p == 0:
                        ax.set_title(f"{titles[names[c - 1]]}\n{FAILED_TITLE}", fontsize=9, color="#b00020")
                    if c == 0:
                        facts = [f"sample {i}" if ids is None else id_labels[str(ids[i])]]
                        facts += [plane] if plane else []
                        if p == 0 and labels is not None:
                            facts.append(f"label: {labels[i]}")
                        if p == 0 and probs is not None:
                            facts.append(f"p = {float(probs[i]):.2f}")
                        ax.set_ylabel("\n".join(facts), fontsize=8)
        right = 1 - CBAR_INCHES * len(bars) / width
        fig.tight_layout(rect=(0, 0, right, 1))
        for b, cmap in enumerate(bars):
            cax = fig.add_axes((right + (b + 0.08) * CBAR_INCHES / width, 0.15, 0.13 * CBAR_INCHES / width, 0.7))
            low = -1.0 if cmap == "RdBu_r" else 0.0
            bar = fig.colorbar(ScalarMappable(Normalize(low, 1.0), cmap=cmap), cax=cax)
            bar.set_label("saliency ÷ p99 of |map|" if low == 0 else "signed saliency ÷ p99 of |map|", fontsize=7)
            bar.ax.tick_params(labelsize=7)
        return _save(fig, path.parent / path.stem, tight=False)  # laid out in inches (colour bars); names shortened


def _scale(saliency: np.ndarray) -> float:
    """The display scale of a map: the 99th percentile of |saliency| (1 when that is 0 or undefined)."""
    scale = np.nanpercentile(np.abs(saliency), 99) if np.isfinite(saliency).any() else 0
    return float(scale) if scale > 0 else 1.0
