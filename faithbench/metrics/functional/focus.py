"""Focus (Arias-Duart et al. 2022, "Focus! Rating XAI methods and finding biases"): explain a
2 x 2 mosaic of four images, two of the target class and two of other classes, for the target
class; a faithful map puts its positive relevance on the two target-class tiles.

Layout: tiles 0..3 = top-left, top-right, bottom-left, bottom-right, tiled along the last two
spatial axes (H, W) of ``x (B, C, *spatial)``; a 3D volume keeps its depth. The mosaic of sample i
holds two samples of its target class (x_i itself among them when x_i belongs to that class, as
it does unless the model mispredicts it) and two samples of other classes, drawn from the batch
with a seeded generator, at seeded positions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mosaic_plan(member: Tensor, generator: torch.Generator | None = None,
                same_sample: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Which samples fill each mosaic. ``member (B, B)`` bool: member[i, j] = sample j belongs to
    sample i's target class. Returns ``tiles (B, 4)`` sample indices per tile, ``is_target (B, 4)``
    bool, and ``valid (B,)``: False where the batch lacks two target-class samples or two others
    (the tiles of such a row are placeholders). x_i fills a target tile of its own mosaic when it
    belongs to its target class, and is left out of it when not (a sample explained for a class the
    model predicts but its label is not: as a distractor tile, the model's own reading of it as the
    target class would count against the map; a held-out review saw it placed there 50 times in 50).
    ``same_sample (B, B)`` bool: rows of one sample (a multi-label batch's class rows; default: the
    diagonal): the other tiles are other samples than x_i's, each sample drawn by its first row, so no
    image fills two tiles of a mosaic."""
    b = member.shape[0]
    member = member.cpu().bool()
    same_sample = torch.eye(b, dtype=torch.bool) if same_sample is None else same_sample.cpu().bool()
    first = same_sample.int().argmax(1) == torch.arange(b)  # the first row of each sample
    tiles = torch.zeros((b, 4), dtype=torch.long)
    is_target = torch.zeros((b, 4), dtype=torch.bool)
    valid = torch.zeros(b, dtype=torch.bool)
    for i in range(b):
        keys = torch.rand(b, generator=generator)
        keys[i] = 2.0  # x_i first, when it belongs to its target class
        eligible = first & ~same_sample[i]
        eligible[i] = True
        same, other = member[i] & eligible, ~member[i] & eligible
        other[i] = False  # not a distractor: x_i outside its target class (mispredicted) is left out
        slots = torch.randperm(4, generator=generator)
        if same.sum() < 2 or other.sum() < 2:
            continue
        pair = torch.where(same, keys, torch.full_like(keys, -1.0)).topk(2).indices
        others = torch.where(other, keys, torch.full_like(keys, -1.0)).topk(2).indices
        chosen = torch.cat([pair, others])
        tiles[i, slots] = chosen
        is_target[i, slots] = torch.tensor([True, True, False, False])
        valid[i] = True
    return tiles, is_target, valid


def build_mosaic(x: Tensor, tiles: Tensor) -> Tensor:
    """``x (B, C, *lead, H, W)``, ``tiles (B, 4)`` -> mosaics ``(B, C, *lead, 2H, 2W)``."""
    t = tiles.to(x.device)
    top = torch.cat([x[t[:, 0]], x[t[:, 1]]], dim=-1)
    bottom = torch.cat([x[t[:, 2]], x[t[:, 3]]], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def tile_mask(shape: tuple[int, ...], is_target: Tensor) -> Tensor:
    """Bool mask of the target tiles over mosaic maps of ``shape (B, *lead, 2H, 2W)``."""
    h, w = shape[-2] // 2, shape[-1] // 2
    mask = torch.zeros(shape, dtype=torch.bool, device=is_target.device)
    corners = [(slice(0, h), slice(0, w)), (slice(0, h), slice(w, None)),
               (slice(h, None), slice(0, w)), (slice(h, None), slice(w, None))]
    for k, (rows, cols) in enumerate(corners):
        mask[..., rows, cols] |= is_target[:, k].reshape(-1, *[1] * (len(shape) - 1))
    return mask


def focus(saliency: Tensor, is_target: Tensor) -> Tensor:
    """Focus of mosaic maps ``(B, *lead, 2H, 2W)``: positive relevance on the target tiles over
    all positive relevance, Σ_{target tiles} max(s, 0) / Σ max(s, 0) ``(B,)``; chance 0.5. NaN
    where no relevance is positive."""
    pos = saliency.double().clamp(min=0)
    mask = tile_mask(tuple(saliency.shape), is_target.to(saliency.device))
    total = pos.flatten(1).sum(1)
    inside = (pos * mask).flatten(1).sum(1)
    value = inside / torch.where(total > 0, total, torch.ones_like(total))
    return value.masked_fill(total <= 0, float("nan")).float()


__all__ = ["build_mosaic", "focus", "mosaic_plan", "tile_mask"]
