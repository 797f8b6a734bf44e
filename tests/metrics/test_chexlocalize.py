"""The CheXlocalize protocol: Otsu against scikit-image, known-answer IoU/hit, gating, tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from faithbench.configurable import ParameterError
from faithbench.metrics.chexlocalize import CheXlocalizeHit, CheXlocalizeIoU
from faithbench.metrics.functional.chexlocalize import (binarize, chexlocalize_hit, chexlocalize_iou,
                                                        otsu_threshold, random_iou_chance, tune_gate,
                                                        tune_threshold)
from faithbench.metrics.functional.similarity import minmax


@pytest.mark.parametrize("shape", [(4, 16, 16), (3, 6, 8, 8)])
def test_otsu_matches_skimage(shape):
    g = torch.Generator().manual_seed(0)
    # bimodal maps so the threshold is not trivially at an end
    maps = torch.rand(shape, generator=g) ** 3 + (torch.rand(shape, generator=g) > 0.7) * 2.0
    ours = otsu_threshold(maps)
    for i in range(shape[0]):
        norm = minmax(maps[i : i + 1])[0].numpy()
        expected = threshold_otsu(norm, nbins=256)
        assert ours[i].item() == pytest.approx(expected, abs=1e-12)
        assert torch.equal(binarize(maps[i : i + 1])[0], torch.from_numpy(norm > expected))


def test_otsu_two_levels_and_constant():
    # a two-level map: every threshold between the levels separates them; the mask is the high level
    s = torch.zeros(1, 4, 4)
    s[0, :2] = 5.0
    seg = binarize(s)
    assert seg[0, :2].all() and not seg[0, 2:].any()
    assert not binarize(torch.full((1, 4, 4), 3.0)).any()  # constant map: empty segmentation
    assert otsu_threshold(torch.full((1, 4, 4), 3.0)).item() == 0.0


def test_iou_known_answer_fixed_threshold():
    # normalised map: values 0, 0.25, 0.5, 0.75, 1 ...; threshold 0.6 keeps the two top pixels
    s = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0]]])
    mask = torch.tensor([[[False, False, False, True, False]]])
    # S = {3, 4}, M = {3}: IoU = 1/2
    assert chexlocalize_iou(s, mask, threshold=0.6).item() == pytest.approx(0.5)
    # chance: k=2, |M|=1, N=5: E|A∩M| = 2/5; chance = 0.4 / (2 + 1 - 0.4) = 0.4 / 2.6
    seg = binarize(s, 0.6)
    assert random_iou_chance(seg, mask).item() == pytest.approx(0.4 / 2.6)
    # empty mask: undefined (CheXlocalize's calculate_iou)
    assert math.isnan(chexlocalize_iou(s, torch.zeros_like(mask), threshold=0.6).item())


def test_gating_empties_low_probability_maps():
    s = torch.tensor([[[0.0, 4.0]], [[0.0, 4.0]]])
    mask = torch.tensor([[[False, True]], [[False, True]]])
    prob = torch.tensor([0.9, 0.3])
    value = chexlocalize_iou(s, mask, threshold=0.5, prob=prob, gate=0.5)
    assert value.tolist() == [1.0, 0.0]
    hit = chexlocalize_hit(s, mask, prob=prob, gate=0.5)
    assert hit.tolist() == [1.0, 0.0]
    # p equal to the gate is gated (CheXlocalize keeps a map only when p > cutoff)
    assert chexlocalize_hit(s, mask, prob=torch.tensor([0.5, 0.51]), gate=0.5).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="needs the target probabilities"):
        chexlocalize_iou(s, mask, gate=0.5)


def test_hit_known_answer_and_nan():
    s = torch.tensor([[[0.1, 0.9, 0.2]], [[0.9, 0.1, 0.2]]])
    mask = torch.tensor([[[False, True, False]], [[False, True, False]]])
    assert chexlocalize_hit(s, mask).tolist() == [1.0, 0.0]
    assert math.isnan(chexlocalize_hit(s[:1], torch.zeros_like(mask[:1])).item())


def test_tune_threshold_picks_the_best_grid_value():
    # map = 0..9 along a row, mask = the top 3 pixels (normalised values 7/9, 8/9, 1)
    s = torch.arange(10.0).reshape(1, 1, 10).repeat(2, 1, 1)
    mask = torch.zeros(2, 1, 10, dtype=torch.bool)
    mask[:, 0, 7:] = True
    # t = 0.7 keeps > 0.7: pixels 7, 8, 9 -> IoU 1; t = 0.5 keeps 5..9 -> 3/5; t = 0.8 keeps 8, 9 -> 2/3
    assert tune_threshold(s, mask, grid=[0.5, 0.7, 0.8]) == 0.7
    assert tune_threshold(s, mask, grid=[0.8, 0.5]) == 0.8
    # ties go to the smallest threshold: 0.7 and 0.75 give the same segmentation
    assert tune_threshold(s, mask, grid=[0.75, 0.7]) == 0.7
    with pytest.raises(ValueError, match="non-empty mask"):
        tune_threshold(s, torch.zeros_like(mask))


def test_tune_gate_known_answer():
    probs = [0.1, 0.35, 0.6, 0.9, 0.2, 0.45]
    has = [False, False, True, True, False, True]
    # every finding IoU 1: mIoU = TP / (TP + FN + FP) (a gated negative is left out, a kept one scores 0)
    # g=0.3 -> kept {0.35, 0.6, 0.9, 0.45}: 3 / (3 + 1 kept negative) = 0.75; g=0.4 -> 3 / 3 = 1; g=0.5 -> 2 / 3
    assert tune_gate(probs, has) == pytest.approx(0.4)
    # with IoUs: g=0.4 scores (0.5 + 0.5 + 0.05) / 3 = 0.35; g=0.5 gates the weak positive (p=0.45):
    # (0.5 + 0.5 + 0) / 3 = 0.333 -> 0.4
    iou = [float("nan"), float("nan"), 0.5, 0.5, float("nan"), 0.05]
    assert tune_gate(probs, has, grid=[0.4, 0.5], val_iou=iou) == pytest.approx(0.4)
    probs2 = probs + [0.48]
    has2 = has + [False]
    iou2 = iou + [float("nan")]
    # a negative at p=0.48: g=0.4 keeps it, 1.05 / 4 = 0.2625; g=0.5 gates it, 1.0 / 3 = 0.333 -> 0.5
    assert tune_gate(probs2, has2, grid=[0.4, 0.5], val_iou=iou2) == pytest.approx(0.5)
    # ... unless its segmentation is empty: then it is never scored (NaN) and 0.4 wins again
    assert tune_gate(probs2, has2, grid=[0.4, 0.5], val_iou=iou2,
                     val_nonempty=[True] * 6 + [False]) == pytest.approx(0.4)


def test_metrics_through_the_context(make_ctx, tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn(classes=2)
    x = torch.rand(3, 1, 8, 8)
    s = torch.zeros(3, 8, 8)
    s[:, 2:4, 2:4] = 1.0
    mask = torch.zeros(3, 8, 8, dtype=torch.bool)
    mask[:, 2:4, 2:6] = True
    ctx = make_ctx(model, x, s, masks={"lesion": mask})
    out = CheXlocalizeIoU()(ctx)
    assert torch.allclose(out.value, torch.full((3,), 0.5))  # |S|=4, |M|=8, S ⊂ M
    chance = 4 * 8 / 64 / (4 + 8 - 4 * 8 / 64)
    assert torch.allclose(out.chance, torch.full((3,), chance))
    hit = CheXlocalizeHit()(ctx)
    assert hit.value.tolist() == [1.0, 1.0, 1.0]
    assert torch.allclose(hit.chance, torch.full((3,), 8 / 64))
    assert ctx.predict.passes == 0  # no gate: no forward pass
    # a gate above every probability (0.99 here; 1 is refused) empties every map
    gated = CheXlocalizeIoU(gate=0.99)(ctx)
    assert gated.value.tolist() == [0.0, 0.0, 0.0]
    assert ctx.predict.passes == 3
    gated_hit = CheXlocalizeHit(gate=0.99)(ctx)
    assert ctx.predict.passes == 3  # memoised probability
    # a gated map scores 0 whatever it shows, so its chance is 0 (a held-out review: |M| / N was written)
    assert gated_hit.value.tolist() == [0.0, 0.0, 0.0] and gated_hit.chance.tolist() == [0.0, 0.0, 0.0]
    from faithbench.metrics.functional.chexlocalize import hit_chance

    some = hit_chance(mask, prob=torch.tensor([0.2, 0.7, 0.9]), gate=0.5)
    assert torch.allclose(some, torch.tensor([0.0, 8 / 64, 8 / 64]))


def test_parameter_validation():
    assert CheXlocalizeIoU(threshold=0.4).params["threshold"] == 0.4
    with pytest.raises(ParameterError, match="threshold"):
        CheXlocalizeIoU(threshold="mean")
    with pytest.raises(ParameterError, match="threshold"):
        CheXlocalizeIoU(threshold=1.5)
    with pytest.raises(ParameterError, match="gate"):
        CheXlocalizeHit(gate=2)
    with pytest.raises(ParameterError, match="unknown parameter 'threshold'"):
        CheXlocalizeHit(threshold=0.5)
    assert np.isclose(CheXlocalizeHit(gate=0.3).spec()["params"]["gate"], 0.3)
    # numpy scalars as their float (a review: np.float32(0.3) was "expects a float in [0, 1), got 0.3")
    for value in (np.float32(0.3), np.float64(0.3), np.int64(0)):
        assert CheXlocalizeIoU(threshold=value, gate=value).params["threshold"] == float(value)
        assert type(CheXlocalizeHit(gate=value).params["gate"]) is float
    with pytest.raises(ParameterError, match="gate"):
        CheXlocalizeHit(gate=np.float32(1.0))


# -- threshold: val / gate: val (the calibration hook; the run is tested in tests/runner) ---------------


def _ramp_units(tops: list[int], n_pixels: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps 0..n-1 along a row (normalised k / (n-1)); unit i's mask: its ``tops[i]`` highest pixels."""
    s = torch.arange(float(n_pixels)).reshape(1, 1, n_pixels).repeat(len(tops), 1, 1)
    mask = torch.zeros(len(tops), 1, n_pixels, dtype=torch.bool)
    for i, k in enumerate(tops):
        mask[i, 0, n_pixels - k:] = True
    return s, mask


def test_val_threshold_is_tuned_per_class_and_scores_with_it(make_ctx, tiny_cnn):
    # class 0: masks = the top 3 pixels (normalised 7/9 .. 1): only t in [6/9, 7/9) = 0.7 gives IoU 1;
    # class 1: the top 6 (4/9 .. 1): t in [3/9, 4/9) = 0.4; class 2: no unit with a non-empty mask
    s, mask = _ramp_units([3, 3, 6, 6, 6, 0])
    target = torch.tensor([0, 0, 1, 1, 1, 2])
    metric = CheXlocalizeIoU(threshold="val")
    assert metric.needs_calibration and metric.calibration_samples == 64
    assert not CheXlocalizeIoU().needs_calibration and CheXlocalizeIoU().calibration_samples == 0
    model = tiny_cnn(classes=3)
    ctx = make_ctx(model, torch.rand(6, 1, 1, 10), s, target=target, masks={"lesion": mask})
    inputs = metric.calibration_inputs(ctx)
    assert ctx.predict.passes == 0  # no gate to tune: no forward pass
    rows = metric.calibrate(inputs, ("a", "b", "c"))
    assert [(r["class"], r["threshold"], r["gate"], r["n_val"], r["n_finding"]) for r in rows] == [
        ("a", 0.7, None, 2, 2), ("b", 0.4, None, 3, 3), ("c", "otsu", None, 1, 0)]
    assert rows[0]["note"] == "" and "no validation unit of class 'c'" in rows[2]["note"]
    for c, t in ((0, 0.7), (1, 0.4)):  # the same as tune_threshold run by hand on the class's units
        assert tune_threshold(s[target == c], mask[target == c]) == t
    # scoring: each map binarised at its class's threshold; class 2 (and any unseen class) by Otsu
    test_s, test_mask = _ramp_units([3, 6, 3, 2])
    test_target = torch.tensor([1, 0, 2, 5])
    out = metric(make_ctx(model, torch.rand(4, 1, 1, 10), test_s, target=test_target, masks={"lesion": test_mask}))
    per_map = torch.stack([otsu_threshold(test_s)[i] if c not in (0, 1) else torch.tensor(0.7 if c == 0 else 0.4,
                                                                                         dtype=torch.float64)
                           for i, c in enumerate(test_target.tolist())])
    expected = chexlocalize_iou(test_s, test_mask, threshold=per_map)
    assert torch.equal(out.value, expected)
    assert out.value[:2].tolist() == [pytest.approx(0.5), pytest.approx(0.5)]  # 0.4 keeps 6 pixels of a top-3 mask ...


def test_val_threshold_of_constant_maps_falls_back_to_otsu_and_says_so():
    """A held-out review: where no grid value segments any map (every validation map of the class
    constant), each t scored NaN and the smallest, 0.2, was recorded as tuned, with no note."""
    s, mask = _ramp_units([3, 3, 6, 6])
    s[2:] = 0.5  # class 1's maps constant: empty at every threshold
    assert tune_threshold(s[2:], mask[2:]) != tune_threshold(s[2:], mask[2:])  # NaN: nothing to tune
    assert tune_threshold(s[:2], mask[:2]) == 0.7
    inputs = {"target": torch.tensor([0, 0, 1, 1]), "has": mask.flatten(1).any(1), "maps": s, "masks": mask}
    rows = CheXlocalizeIoU(threshold="val").calibrate(inputs, ("a", "b"))
    assert [(r["class"], r["threshold"]) for r in rows] == [("a", 0.7), ("b", "otsu")]
    assert rows[0]["note"] == "" and rows[1]["note"].startswith("no threshold of the grid segments any validation map")


def test_val_settings_enter_the_spec():
    s, mask = _ramp_units([3, 6])
    a, b = CheXlocalizeIoU(threshold="val"), CheXlocalizeIoU(threshold="val")
    assert a.spec()["calibration"] is None and "calibration" not in CheXlocalizeIoU().spec()
    from faithbench.store import make_key
    inputs = {"target": torch.tensor([0, 1]), "has": torch.tensor([True, True]), "maps": s, "masks": mask}
    a.calibrate(inputs, ("a", "b"))
    b.calibrate({**inputs, "target": torch.tensor([1, 0])}, ("a", "b"))  # the classes swapped: other thresholds
    assert a.spec()["calibration"] == {"0": [0.7, None], "1": [0.4, None]}
    assert make_key(a.spec()) != make_key(b.spec())
    with pytest.raises(ValueError, match="not calibrated"):
        CheXlocalizeIoU(threshold="val").settings(None, s)


def test_val_gate_is_tuned_per_class(make_ctx, tiny_cnn):
    # class 1's probabilities and findings as test_tune_gate_known_answer: gate 0.4 when every finding
    # scores 1 (hit: the map's maximum, pixel 9, lies in each non-empty mask)
    probs = torch.tensor([0.1, 0.35, 0.6, 0.9, 0.2, 0.45])
    has = torch.tensor([False, False, True, True, False, True])
    s, mask = _ramp_units([3 if h else 0 for h in has.tolist()])
    inputs = {"target": torch.ones(6, dtype=torch.long), "has": has, "prob": probs,
              "hit": torch.where(has, 1.0, float("nan"))}
    hit = CheXlocalizeHit(gate="val")
    rows = hit.calibrate(inputs, ("normal", "lesion"))
    assert [(r["class"], r["threshold"], r["gate"]) for r in rows] == [("normal", None, None), ("lesion", None, 0.4)]
    assert rows[0]["note"].endswith(": no gate") and rows[0]["n_val"] == 0
    assert rows[1]["gate"] == tune_gate(probs, has)
    # the IoU gate is tuned on each finding's IoU at the class's tuned threshold (0.7: IoU 1 on these masks)
    iou_metric = CheXlocalizeIoU(threshold="val", gate="val")
    rows = iou_metric.calibrate({**inputs, "maps": s, "masks": mask}, ("normal", "lesion"))
    assert (rows[1]["threshold"], rows[1]["gate"]) == (0.7, 0.4)
    # scoring gates each map at its class's gate: p = 0.45 > 0.4 kept, p = 0.3 gated; a class-0 map is never gated
    model = tiny_cnn(classes=2)
    ctx = make_ctx(model, torch.rand(3, 1, 1, 10), s[:3], target=torch.tensor([1, 1, 0]),
                   masks={"lesion": mask[[2, 3, 5]]})
    ctx.memo[("target_probability", False)] = torch.tensor([0.45, 0.3, 0.01])
    assert hit(ctx).value.tolist() == [1.0, 0.0, 1.0]
    threshold, gate = iou_metric.settings(ctx, s[:3])
    assert threshold.tolist() == [0.7, 0.7, pytest.approx(otsu_threshold(s[:1]).item())]
    assert gate.tolist() == [0.4, 0.4, -math.inf]


def test_val_parameter_validation():
    assert CheXlocalizeIoU(threshold="val", gate="val").params["gate"] == "val"
    assert CheXlocalizeHit(gate="val", val_samples=8).calibration_samples == 8
    with pytest.raises(ParameterError, match="val_samples"):
        CheXlocalizeIoU(threshold="val", val_samples=0)
    with pytest.raises(ParameterError, match="'otsu', 'val' or a float"):
        CheXlocalizeIoU(threshold="validation")
    with pytest.raises(ParameterError, match="null, 'val' or a float"):
        CheXlocalizeHit(gate="otsu")
