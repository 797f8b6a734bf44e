"""Region-based saliency: how a map's mass is spread over named regions (anatomy, a grid).

Pure tensor functions. ``regions`` is a bool tensor ``(B, R, *spatial)`` (R regions per
sample; regions may overlap and need not cover the image); ``saliency`` is ``(B, *spatial)``,
already post-processed by the caller (``none``, ``abs`` or ``relu``:
:func:`faithbench.metrics.base.postprocess`).
"""

from __future__ import annotations

import torch
from torch import Tensor

REGION_SCORES = ("mean", "sum", "max", "share")


def grid_names(grid: tuple[int, ...] | list[int]) -> list[str]:
    """Names of the cells of a grid, in row-major order: ``grid_r{i}_c{j}`` for ``[rows, cols]``,
    ``grid_d{k}_r{i}_c{j}`` for ``[depth, rows, cols]``. Row 0 is the top, column 0 the image left."""
    if len(grid) not in (2, 3):
        raise ValueError(f"expected a grid of 2 ([rows, cols]) or 3 ([depth, rows, cols]) sizes, got {list(grid)}")
    axes = ("r", "c") if len(grid) == 2 else ("d", "r", "c")
    names = []
    for index in torch.cartesian_prod(*[torch.arange(n) for n in grid]).reshape(-1, len(grid)).tolist():
        names.append("grid_" + "_".join(f"{a}{i}" for a, i in zip(axes, index)))
    return names


def grid_edges(n: int, k: int) -> list[int]:
    """The ``k + 1`` boundaries of ``k`` parts of an axis of ``n`` pixels: part j covers
    ``[floor(j n / k), floor((j+1) n / k))``, a partition (no overlap, no gap) whose parts differ in size by at
    most one (n = 10, k = 4: [0, 2, 5, 7, 10]). Shared by :func:`grid_masks` and
    :func:`faithbench.metrics.functional.argmax_cell`; ``1 <= k <= n``."""
    return [(j * n) // k for j in range(k + 1)]


def grid_masks(shape: tuple[int, ...] | torch.Size, grid: tuple[int, ...] | list[int]) -> Tensor:
    """Bool masks ``(prod(grid), *shape)`` of the cells of a regular grid over a spatial ``shape``
    (2D ``(H, W)`` with ``grid = [rows, cols]``, 3D ``(D, H, W)`` with ``[depth, rows, cols]``).

    Along an axis of n pixels cut into k parts, part j covers ``[floor(j n / k), floor((j+1) n / k))``,
    so the cells tile the image exactly (no overlap, no gap) and differ in size by at most one pixel
    per axis. ``grid = [1, 3]`` gives the three vertical strips (left, middle, right) of the
    region-based saliency study. Cells are in the order of :func:`grid_names`.
    """
    shape = tuple(int(s) for s in shape)
    grid = tuple(int(g) for g in grid)
    if len(grid) != len(shape):
        raise ValueError(f"expected a grid with one size per spatial axis ({len(shape)} for shape {shape}), "
                         f"got {list(grid)}")
    if any(g < 1 or g > n for g, n in zip(grid, shape)):
        raise ValueError(f"expected grid sizes between 1 and the image size {shape}, got {list(grid)}")
    parts = []
    for n, k in zip(shape, grid):
        edges = grid_edges(n, k)
        coord = torch.arange(n)
        parts.append(torch.stack([(coord >= edges[j]) & (coord < edges[j + 1]) for j in range(k)]))  # (k, n)
    masks = []
    for index in torch.cartesian_prod(*[torch.arange(k) for k in grid]).reshape(-1, len(grid)).tolist():
        cell = torch.ones(shape, dtype=torch.bool)
        for axis, j in enumerate(index):
            view = [1] * len(shape)
            view[axis] = shape[axis]
            cell = cell & parts[axis][j].reshape(view)
        masks.append(cell)
    return torch.stack(masks)


def _check(saliency: Tensor, regions: Tensor) -> None:
    if regions.ndim != saliency.ndim + 1 or regions.shape[0] != saliency.shape[0] \
            or regions.shape[2:] != saliency.shape[1:]:
        raise ValueError(f"expected regions of shape (B, R, *spatial) = ({saliency.shape[0]}, R, "
                         f"{', '.join(str(s) for s in saliency.shape[1:])}) for saliency of shape "
                         f"{tuple(saliency.shape)}, got {tuple(regions.shape)}")


def region_scores(saliency: Tensor, regions: Tensor) -> dict[str, Tensor]:
    """Per sample and region, for ``saliency (B, *spatial)`` and bool ``regions (B, R, *spatial)``:

    - ``mean``  = Σ_{i∈r} s_i / |r|  (NaN for an empty region),
    - ``sum``   = Σ_{i∈r} s_i        (0 for an empty region),
    - ``max``   = max_{i∈r} s_i      (NaN for an empty region),
    - ``share`` = Σ_{i∈r} max(s_i, 0) / Σ_i max(s_i, 0): the region's share of the map's positive
      mass (the energy-based pointing game of Wang et al. 2020 with the region as the mask;
      NaN when the map has no positive part),
    - ``area``  = |r| / n: the region's fraction of the image, the chance level of ``share`` (a
      map that is uniform, or random and independent of the image, has E[share] = area).

    Each a float64 ``(B, R)`` tensor (float64 so that sums of many pixels do not drift).
    """
    _check(saliency, regions)
    s = saliency.detach().double().flatten(1)[:, None, :]  # (B, 1, N)
    r = regions.bool().flatten(2)                            # (B, R, N)
    count = r.sum(dim=2).double()
    total = s.clamp(min=0).sum(dim=2)                        # (B, 1)
    inside = torch.where(r, s, torch.zeros((), dtype=s.dtype))
    sums = inside.sum(dim=2)
    positive = inside.clamp(min=0).sum(dim=2)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    mean = torch.where(count > 0, sums / count.clamp(min=1), nan)
    maxima = torch.where(r, s, torch.tensor(float("-inf"), dtype=s.dtype)).amax(dim=2)
    maxima = torch.where(count > 0, maxima, nan)
    share = torch.where(total > 0, positive / total.clamp(min=torch.finfo(torch.float64).tiny), nan)
    return {"mean": mean, "sum": sums, "max": maxima, "share": share, "area": count / r.shape[2]}


def stack_regions(masks: dict[str, Tensor], names: list[str] | tuple[str, ...], *,
                  grid: tuple[int, ...] | list[int] | None = None,
                  batch_shape: tuple[int, ...] | torch.Size) -> tuple[list[str], Tensor]:
    """The regions of a batch as one bool tensor ``(B, R, *spatial)``: the named ``masks``
    (each ``(B, *spatial)``) in the order of ``names``, then the cells of ``grid`` (if given) in the
    order of :func:`grid_names`. ``batch_shape`` is ``(B, *spatial)``. Returns (region names, regions)."""
    b, spatial = int(batch_shape[0]), tuple(int(s) for s in batch_shape[1:])
    out_names, parts = [], []
    for name in names:
        if name not in masks:
            raise ValueError(f"no mask {name!r}; available: {', '.join(sorted(masks)) or '(none)'}")
        mask = masks[name]
        if tuple(mask.shape) != (b, *spatial):
            raise ValueError(f"expected mask {name!r} of shape {(b, *spatial)}, got {tuple(mask.shape)}")
        out_names.append(name)
        parts.append(mask.bool()[:, None].cpu())
    if grid is not None:
        out_names += grid_names(grid)
        parts.append(grid_masks(spatial, grid)[None].expand(b, -1, *spatial))
    if not parts:
        raise ValueError("expected at least one region (a mask name or a grid)")
    return out_names, torch.cat(parts, dim=1)
