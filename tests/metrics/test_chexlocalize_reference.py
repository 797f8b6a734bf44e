"""CheXlocalize's tuning criteria and full-dataset scoring, against the reference (rajpurkarlab/cheXlocalize).

The reference loops are re-implemented here from its scripts: ``tune_probability_threshold.py``
(``compute_miou`` / ``find_threshold``), ``tune_heatmap_threshold.py`` and ``eval.py``'s
``calculate_iou``. The segmentations use a fixed map threshold (the reference's Otsu runs through
OpenCV, which is not installed; the criteria are what is compared).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faithbench.configurable import ParameterError
from faithbench.metrics.chexlocalize import CheXlocalizeHit, CheXlocalizeIoU
from faithbench.metrics.functional.chexlocalize import (binarize, chexlocalize_hit, chexlocalize_iou, iou,
                                                        random_iou_chance, tune_gate, tune_threshold)

NAN = float("nan")


# -- the reference, re-implemented ------------------------------------------------------------------------


def _ref_calculate_iou(pred_mask: np.ndarray, gt_mask: np.ndarray, true_pos_only: bool) -> float:
    """eval.py: true_pos_only -> NaN unless both are non-empty; else NaN only for an empty union."""
    intersection = np.logical_and(pred_mask, gt_mask)
    union = np.logical_or(pred_mask, gt_mask)
    if true_pos_only:
        if np.sum(pred_mask) == 0 or np.sum(gt_mask) == 0:
            return np.nan
        return np.sum(intersection) / np.sum(union)
    if np.sum(union) == 0:
        return np.nan
    return np.sum(intersection) / np.sum(union)


def _ref_segment(heatmap: np.ndarray, threshold: float) -> np.ndarray:
    """cam_to_segmentation with a threshold: (m - min) / max(m - min) > threshold (a constant map: empty)."""
    mask = heatmap - heatmap.min()
    with np.errstate(invalid="ignore", divide="ignore"):
        mask = mask / mask.max()
    return np.array(mask > threshold, dtype="int")


def _ref_probability_cutoff(maps: np.ndarray, gts: np.ndarray, probs: np.ndarray, threshold: float) -> float:
    """tune_probability_threshold.py: find_threshold over np.arange(0, .9, .1) with compute_miou."""
    cutoffs = np.arange(0, .9, .1)
    mious = []
    for cutoff in cutoffs:
        ious = []
        for heatmap, gt_mask, pred_prob in zip(maps, gts, probs):
            if pred_prob > cutoff:
                pred_mask = _ref_segment(heatmap, threshold)
            else:
                pred_mask = np.zeros(gt_mask.shape)
            ious.append(_ref_calculate_iou(pred_mask, gt_mask, true_pos_only=False))
        mious.append(round(np.nanmean(np.array(ious)), 3))
    return cutoffs[mious.index(max(mious))]


def _ref_heatmap_threshold(maps: np.ndarray, gts: np.ndarray) -> float:
    """tune_heatmap_threshold.py: np.arange(0.2, .8, .1), true-positive-slice mIoU, first maximum."""
    thresholds = np.arange(0.2, .8, .1)
    mious = [np.nanmean(np.array([_ref_calculate_iou(_ref_segment(m, t), g, true_pos_only=True)
                                  for m, g in zip(maps, gts)])) for t in thresholds]
    return thresholds[mious.index(max(mious))]


def _random_units(seed: int, n: int = 24, size: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps (a noisy bump on a rectangle), masks (about a third empty) and probabilities (findings
    higher on average); a few maps are constant (an empty segmentation at every threshold)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    maps = rng.random((n, size, size)).astype(np.float32)
    has = rng.random(n) > 0.35
    has[0], has[-1] = True, False
    for i in range(n):
        r, c = rng.integers(0, size - 4, 2)
        h, w = rng.integers(2, 6, 2)
        region = np.zeros((size, size), dtype=bool)
        region[r:r + h, c:c + w] = True
        masks[i] = region & has[i]
        maps[i] += rng.uniform(0.0, 1.5) * region  # the map lights up the region, a finding or not
    constant = rng.random(n) < 0.1
    maps[constant] = 0.25
    probs = np.clip(rng.normal(np.where(has, 0.55, 0.35), 0.2), 0.0, 1.0)
    return torch.from_numpy(maps), torch.from_numpy(masks), torch.from_numpy(probs)


# -- the gate -----------------------------------------------------------------------------------------------


def test_tune_gate_does_not_trade_findings_for_gated_negatives():
    # 21 findings at p = 0.55 with a modest IoU 0.08, 2 false positives at p = 0.58, 0.57 (a reviewer's run).
    # Scoring a gated negative 1 (the old criterion) preferred g = 0.6, which gates all 23: 2 / 23 = 0.087 >
    # 21 * 0.08 / 23 = 0.073, and emptied every map of the class on the test split. CheXlocalize leaves a
    # gated negative out (both masks empty: NaN): g <= 0.5 scores 1.68 / 23 = 0.073, g = 0.6 scores 0 / 21.
    probs = [0.55] * 21 + [0.58, 0.57]
    has = [True] * 21 + [False] * 2
    value = [0.08] * 21 + [NAN] * 2
    assert tune_gate(probs, has, val_iou=value) == 0.0


def test_tune_gate_hand_computed():
    # findings p = 0.7, 0.9 (IoU 0.5 each); false positives p = 0.3, 0.35, 0.4 (non-empty segmentations)
    probs = [0.7, 0.9, 0.3, 0.35, 0.4]
    has = [True, True, False, False, False]
    value = [0.5, 0.5, NAN, NAN, NAN]
    # g <= 0.2: 1.0 / 5 = 0.2; g = 0.3: 1.0 / 4 = 0.25; g = 0.4 .. 0.6: 1.0 / 2 = 0.5; g = 0.7: 0.5 / 2 = 0.25
    assert tune_gate(probs, has, val_iou=value) == pytest.approx(0.4)
    # the false positives' segmentations empty (a constant map): never scored, every g <= 0.6 ties at 0.5
    assert tune_gate(probs, has, val_iou=value, val_nonempty=[True, True, False, False, False]) == 0.0
    # no finding at all: only kept negatives are scored (0); a g that gates every one is NaN and ranks last
    assert tune_gate([0.3, 0.9], [False, False], grid=[0.0, 0.95]) == 0.0


def test_tune_gate_rounds_the_miou_to_three_decimals():
    # g = 0.0: (a + 0.6 + 0) / 3; g = 0.1 gates the weak finding and the negative: (0 + 0.6) / 2 = 0.3
    probs, has = [0.05, 0.9, 0.05], [True, True, False]
    # a = 0.2994: 0.2998 rounds to 0.3, a tie -> the smaller gate (as the reference's first maximum)
    assert tune_gate(probs, has, grid=[0.0, 0.1], val_iou=[0.2994, 0.6, NAN]) == 0.0
    # a = 0.29: 0.2967 -> 0.297 < 0.3
    assert tune_gate(probs, has, grid=[0.0, 0.1], val_iou=[0.29, 0.6, NAN]) == pytest.approx(0.1)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_tune_gate_matches_the_reference_loop(threshold):
    picked = []
    for seed in range(12):
        maps, masks, probs = _random_units(seed)
        expected = _ref_probability_cutoff(maps.numpy(), masks.numpy(), probs.numpy(), threshold)
        seg = binarize(maps, threshold)
        has = masks.flatten(1).any(1)
        ours = tune_gate(probs, has, val_iou=iou(seg, masks), val_nonempty=seg.flatten(1).any(1))
        assert ours == pytest.approx(expected, abs=1e-9), seed
        # through the metric's calibration (one class)
        metric = CheXlocalizeIoU(threshold=threshold, gate="val")
        rows = metric.calibrate({"target": torch.zeros(len(probs), dtype=torch.long), "has": has, "prob": probs,
                                 "maps": maps, "masks": masks}, ("lesion",))
        assert rows[0]["gate"] == pytest.approx(expected, abs=1e-9)
        picked.append(round(float(expected), 1))
    assert len(set(picked)) > 1  # the draws exercise more than one gate


def test_calibrated_gate_skips_negatives_with_empty_segmentations():
    # class 0: findings (p 0.7, 0.9) whose maps are their masks; negatives at p 0.3, 0.35
    s = torch.zeros(4, 1, 10)
    mask = torch.zeros(4, 1, 10, dtype=torch.bool)
    s[:2, 0, 7:] = 1.0
    mask[:2, 0, 7:] = True
    s[2:, 0, :3] = 1.0  # false positives: non-empty segmentations
    inputs = {"target": torch.zeros(4, dtype=torch.long), "has": mask.flatten(1).any(1),
              "prob": torch.tensor([0.7, 0.9, 0.3, 0.35]), "masks": mask}
    metric = CheXlocalizeIoU(threshold=0.5, gate="val")
    # g = 0.3: 2 / 3 (p = 0.35 kept, scores 0); g = 0.4: 2 / 2
    assert metric.calibrate({**inputs, "maps": s}, ("lesion",))[0]["gate"] == pytest.approx(0.4)
    constant = s.clone()
    constant[2:] = 0.0  # constant maps: empty segmentations, never scored -> every gate ties, the smallest wins
    assert metric.calibrate({**inputs, "maps": constant}, ("lesion",))[0]["gate"] == 0.0
    # the hit: a kept map always points somewhere, so a kept negative scores 0 whatever its map
    hit = CheXlocalizeHit(gate="val")
    rows = hit.calibrate({**inputs, "hit": torch.tensor([1.0, 1.0, NAN, NAN])}, ("lesion",))
    assert rows[0]["gate"] == pytest.approx(0.4)


# -- the map threshold --------------------------------------------------------------------------------------


def test_tune_threshold_matches_the_reference_loop():
    for seed in range(12):
        maps, masks, _ = _random_units(100 + seed)
        expected = _ref_heatmap_threshold(maps.numpy(), masks.numpy())
        assert tune_threshold(maps, masks) == pytest.approx(expected, abs=1e-9), seed
        rows = CheXlocalizeIoU(threshold="val").calibrate(
            {"target": torch.zeros(len(maps), dtype=torch.long), "has": masks.flatten(1).any(1), "maps": maps,
             "masks": masks}, ("lesion",))
        assert rows[0]["threshold"] == pytest.approx(expected, abs=1e-9)


def test_tune_threshold_default_grid_and_true_positive_slice():
    # map 0..9 along a row (normalised k / 9), mask = its top pixel: t = 0.9 keeps it alone (IoU 1), but the
    # reference's grid stops at 0.8 (keeps 8/9 and 1: IoU 1/2)
    s = torch.arange(10.0).reshape(1, 1, 10)
    mask = torch.zeros(1, 1, 10, dtype=torch.bool)
    mask[0, 0, 9] = True
    assert tune_threshold(s, mask) == pytest.approx(0.8)
    assert tune_threshold(s, mask, grid=[0.8, 0.9]) == pytest.approx(0.9)
    # t = 1.0 segments nothing: no sample is scored (NaN), which ranks below the IoU 1/9 at t = 0.0
    assert tune_threshold(s, mask, grid=[1.0, 0.0]) == 0.0


# -- full-dataset scoring -----------------------------------------------------------------------------------


def test_full_dataset_scores_kept_negatives_zero():
    # 0: a finding, kept (IoU 1/2); 1: a finding, gated (0); 2: no finding, kept (0 / NaN);
    # 3: no finding, gated (NaN); 4: no finding, kept, constant map -> empty segmentation (NaN)
    s = torch.tensor([[[0.0, 1.0, 1.0]]] * 4 + [[[2.0, 2.0, 2.0]]])
    mask = torch.tensor([[[False, True, False]]] * 2 + [[[False, False, False]]] * 3)
    prob = torch.tensor([0.9, 0.1, 0.9, 0.1, 0.9])
    default = chexlocalize_iou(s, mask, threshold=0.5, prob=prob, gate=0.5)
    full = chexlocalize_iou(s, mask, threshold=0.5, prob=prob, gate=0.5, full_dataset=True)
    assert default[:2].tolist() == [0.5, 0.0] and default[2:].isnan().all()
    assert full[:3].tolist() == [0.5, 0.0, 0.0] and full[3:].isnan().all()
    seg = binarize(s, 0.5) & (prob > 0.5)[:, None, None]
    chance = random_iou_chance(seg, mask, full_dataset=True)
    assert chance[2].item() == 0.0 and chance[3:].isnan().all() and chance[0].item() == pytest.approx(
        (2 / 3) / (2 + 1 - 2 / 3))
    assert random_iou_chance(seg, mask)[2:].isnan().all()
    # the hit: a kept negative points at nothing there (0), a gated one is left out
    hit = chexlocalize_hit(s[:4], mask[:4], prob=prob[:4], gate=0.5, full_dataset=True,
                           generator=torch.Generator().manual_seed(0))
    assert hit[1:3].tolist() == [0.0, 0.0] and math.isnan(hit[3].item())
    assert chexlocalize_hit(s[:4], mask[:4], prob=prob[:4], gate=0.5)[2:].isnan().all()


def test_full_dataset_parameter(make_ctx, tiny_cnn):
    s = torch.zeros(2, 8, 8)
    s[:, 2:4, 2:4] = 1.0
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0, 2:4, 2:6] = True  # sample 1 has no finding
    ctx = make_ctx(tiny_cnn(classes=2), torch.rand(2, 1, 8, 8), s, masks={"lesion": mask})
    out = CheXlocalizeIoU(full_dataset=True)(ctx)
    assert out.value.tolist() == [0.5, 0.0] and out.chance[1].item() == 0.0
    assert math.isnan(CheXlocalizeIoU()(ctx).value[1].item())
    hit = CheXlocalizeHit(full_dataset=True)(ctx)
    assert hit.value.tolist() == [1.0, 0.0] and hit.chance[1].item() == 0.0
    assert CheXlocalizeIoU().params["full_dataset"] is False
    assert CheXlocalizeIoU(full_dataset=True).spec() != CheXlocalizeIoU().spec()
    with pytest.raises(ParameterError, match="full_dataset"):
        CheXlocalizeIoU(full_dataset="yes")
    with pytest.raises(ParameterError, match="full_dataset"):
        CheXlocalizeHit(full_dataset=1)
