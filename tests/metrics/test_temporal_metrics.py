"""Temporal metrics and the temporal occlusion explainer against a sequence model whose answer is
known: its target logit is a * (mean of visit 1), so only visit 1 matters."""

import math

import pytest
import torch
from torch import nn

from faithbench.explainers.temporal import visit_drops
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional.temporal import (temporal_deletion_auc, temporal_insertion_auc,
                                                    visit_importance, visit_pointing, visit_pointing_game,
                                                    visit_relevance_mass)
from faithbench.registry import explainers, metrics


class OneVisitModel(nn.Module):
    """Logits [0, a * mean(x[:, :, visit])]: the score depends on one visit only."""

    arch_family = "cnn"

    def __init__(self, visit: int = 1, a: float = 4.0) -> None:
        super().__init__()
        self.visit, self.a = visit, a
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        z = self.a * self.scale * x[:, :, self.visit].flatten(1).mean(1)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def sig(v):
    return 1 / (1 + math.exp(-v))


def _sequence(b=2, t=3, h=4, w=4):
    x = torch.full((b, 1, t, h, w), 0.5)
    x[:, :, 1] = 1.0
    return x


def _saliency_favouring(order, b=2, t=3, h=4, w=4):
    """Per-visit constant maps whose sums rank the visits in ``order`` (first = most important)."""
    s = torch.zeros(b, t, h, w)
    for rank, visit in enumerate(order):
        s[:, visit] = (t - rank) / (h * w)
    return s


def test_temporal_deletion_and_insertion_known_answer():
    model, x, target = OneVisitModel(), _sequence(), torch.ones(2, dtype=torch.long)
    p1, p0 = sig(4.0), 0.5  # with visit 1, and with visit 1 replaced by the padding frame (0)
    # visit 1 first: deletion curve p1, 0.5, 0.5, 0.5 over fractions 0, 1/3, 2/3, 1
    best = _saliency_favouring([1, 0, 2])
    expected_del = torch.tensor(((p1 + p0) / 2 + p0 + p0) / 3).double()  # the scores are float64
    assert torch.allclose(temporal_deletion_auc(model, x, target, best), expected_del, atol=1e-6)
    # visit 1 last: p1, p1, p1, 0.5
    worst = _saliency_favouring([0, 2, 1])
    expected_worst = torch.tensor((p1 + p1 + (p1 + p0) / 2) / 3).double()
    assert torch.allclose(temporal_deletion_auc(model, x, target, worst), expected_worst, atol=1e-6)
    # insertion from all padding: 0.5, then p1 once visit 1 is back
    assert torch.allclose(temporal_insertion_auc(model, x, target, best), expected_worst, atol=1e-6)
    assert torch.allclose(temporal_insertion_auc(model, x, target, worst), expected_del, atol=1e-6)


def test_padding_frames_are_ranked_last():
    model, x, target = OneVisitModel(visit=2), _sequence(), torch.ones(2, dtype=torch.long)
    x[:, :, 2] = 1.0
    x[:, :, 0] = 0.0  # visit 0 is padding
    valid = torch.tensor([[False, True, True]] * 2)
    s = _saliency_favouring([0, 2, 1])  # the padding frame looks most important
    p1 = sig(4.0)
    # with validity: visit 2 goes first -> p1, 0.5, 0.5, 0.5; without: padding first (a no-op) -> p1, p1, 0.5, 0.5
    with_valid = temporal_deletion_auc(model, x, target, s, valid=valid)
    without = temporal_deletion_auc(model, x, target, s)
    assert torch.allclose(with_valid, torch.tensor(((p1 + 0.5) / 2 + 0.5 + 0.5) / 3).double(), atol=1e-6)
    assert torch.allclose(without, torch.tensor((p1 + (p1 + 0.5) / 2 + 0.5) / 3).double(), atol=1e-6)


def _ctx(model, x, saliency, masks, target=None):
    target = torch.ones(x.shape[0], dtype=torch.long) if target is None else target
    return EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks=masks,
                       predict=ForwardCounter(model), background=0.0, seed=0)


def test_metric_classes_match_the_functions_and_share_one_ranking():
    model, x = OneVisitModel(), _sequence()
    s = _saliency_favouring([1, 2, 0])
    ctx = _ctx(model, x, s, {})
    deletion = metrics.get("temporal_deletion")()(ctx)
    insertion = metrics.get("temporal_insertion")()(ctx)
    assert torch.allclose(deletion["value"], temporal_deletion_auc(model, x, ctx.target, s))
    assert torch.allclose(insertion["value"], temporal_insertion_auc(model, x, ctx.target, s))
    assert deletion["curve"].shape == (2, 4)
    assert torch.allclose(deletion["fractions"], torch.tensor([0, 1 / 3, 2 / 3, 1]).double())
    assert ctx.predict.passes == 2 * 2 * 4  # two curves of 4 points for 2 samples
    assert metrics.get("temporal_deletion").info.higher_is_better is False
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        metrics.get("temporal_deletion")()(_ctx(model, x[:, :, 0], s[:, 0], {}))


def test_visit_pointing_known_answer():
    importance = torch.tensor([[0.1, 0.9, 0.3], [0.8, 0.2, 0.1], [5.0, 0.2, 0.1], [0.3, 0.2, 0.1]])
    change = torch.tensor([[False, True, False], [False, True, False], [False, True, False], [False, False, False]])
    valid = torch.tensor([[True, True, True], [True, True, True], [False, True, True], [True, True, True]])
    hit, chance = visit_pointing(importance, change, valid)
    assert hit[:3].tolist() == [1.0, 0.0, 1.0]  # row 2: the padding frame's 5.0 is ignored
    assert math.isnan(hit[3]) and math.isnan(chance[3])
    assert torch.allclose(chance[:3], torch.tensor([1 / 3, 1 / 3, 1 / 2]))
    # ties at the maximum: decided by the seeded permutation, the same for the same seed
    tied = torch.tensor([[1.0, 1.0, 0.0]] * 64)
    ch = torch.tensor([[True, False, False]] * 64)
    draws = visit_pointing(tied, ch, generator=torch.Generator().manual_seed(0))[0]
    again = visit_pointing(tied, ch, generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(draws, again) and 0.25 < draws.mean() < 0.75  # not always the first index


def test_visit_pointing_metric_reads_change_and_valid_masks():
    b, t, h, w = 2, 3, 4, 4
    change = torch.zeros(b, t, h, w, dtype=torch.bool)
    change[0, 2, 1, 1] = True
    change[1, 1, 0, 0] = True
    valid = torch.ones(b, t, h, w, dtype=torch.bool)
    valid[1, 0] = False
    s = torch.zeros(b, t, h, w)
    s[0, 2] = 1.0  # sample 0: visit 2 (the change) -> hit
    s[1, 0] = 9.0  # sample 1: padding ignored, then visit 2 (0.5) beats visit 1 (0.1) -> miss
    s[1, 2] = 0.5 / (h * w)
    s[1, 1] = 0.1 / (h * w)
    out = metrics.get("visit_pointing")()(_ctx(OneVisitModel(), torch.zeros(b, 1, t, h, w), s,
                                               {"change": change, "valid": valid}))
    assert out["value"].tolist() == [1.0, 0.0]
    assert torch.allclose(out["chance"], torch.tensor([1 / 3, 1 / 2]))
    assert metrics.get("visit_pointing")().required_masks() == ["change"]


def test_per_visit_localisation_known_answer():
    b, t, h, w = 1, 3, 4, 4
    lesion = torch.zeros(b, t, h, w, dtype=torch.bool)
    lesion[0, 1, :2, :2] = True  # 4 of 16 pixels in visit 1
    lesion[0, 2, 3, 3] = True  # 1 of 16 pixels in visit 2
    s = torch.zeros(b, t, h, w)
    s[0, 0, 3, 3] = 100.0  # a visit without lesion: ignored
    s[0, 1, 0, 0] = 3.0  # hit in visit 1, mass 3 of 4
    s[0, 1, 3, 0] = 1.0
    s[0, 2, 0, 0] = 2.0  # miss in visit 2, mass 0
    value, chance = visit_pointing_game(s, lesion)
    assert value.tolist() == [0.5] and torch.allclose(chance, torch.tensor([(4 / 16 + 1 / 16) / 2]))
    mass, _ = visit_relevance_mass(s, lesion)
    assert torch.allclose(mass, torch.tensor([(3 / 4 + 0.0) / 2]))
    assert visit_importance(s).tolist() == [[100.0, 4.0, 2.0]]
    empty, _ = visit_pointing_game(s, torch.zeros_like(lesion))
    assert math.isnan(empty[0])
    # a lesion visit without positive saliency leaves the value and its chance alike (a diff review: the
    # value averaged visit 1 alone, the chance visits 1 and 2)
    s[0, 2] = -1.0
    mass, chance = visit_relevance_mass(s, lesion)
    assert torch.allclose(mass, torch.tensor([3 / 4])) and torch.allclose(chance, torch.tensor([4 / 16]))


def test_temporal_occlusion_recovers_the_one_visit():
    model, x, target = OneVisitModel(), _sequence(), torch.ones(2, dtype=torch.long)
    drops = visit_drops(model, x, target)
    assert torch.allclose(drops, torch.tensor([[0.0, sig(4.0) - 0.5, 0.0]] * 2), atol=1e-6)
    s = explainers.get("temporal_occlusion")()(model, x, target)
    assert s.shape == (2, 3, 4, 4)
    assert torch.allclose(visit_importance(s).float(), drops, atol=1e-6)
    assert explainers.get("temporal_occlusion")().unsupported_reason(model, x[:, :, 0]) is not None
    hit, _ = visit_pointing(visit_importance(s), torch.tensor([[False, True, False]] * 2))
    assert hit.tolist() == [1.0, 1.0]


def test_temporal_occlusion_refuses_images_and_volumes():
    """A held-out review: called directly on 2D images it occluded image rows as visits, and on a 3D
    volume dataset (no mask 'valid') the run occluded depth slices as visits without a word."""
    occlusion = explainers.get("temporal_occlusion")()
    with pytest.raises(ValueError, match=r"expected x of shape \(B, C, D, H, W\), got \(2, 1, 4, 4\)"):
        occlusion(OneVisitModel(), torch.zeros(2, 1, 4, 4), torch.ones(2, dtype=torch.long))
    assert "a volume?" in occlusion.dataset_reason({"organ"}, 3)
    assert occlusion.dataset_reason({"valid", "change"}, 3) is None
    from faithbench.types import MaskRole  # a dataset that names its validity mask otherwise (mask_roles)

    assert occlusion.dataset_reason({"padding"}, 3, {"padding": MaskRole.VALIDITY}) is None
    assert explainers.get("gradcam")().dataset_reason({"organ"}, 3) is None  # volumes are its data


def test_padding_ranks_last_at_every_magnitude():
    """A held-out review: padding keyed as (lowest real importance - 1) in float32 tied with real visits
    from |importance| ~ 2^24 on, and came first when the real visits tied."""
    from faithbench.metrics.functional.temporal import visit_ranks

    valid = torch.tensor([[False, True, True, True]])
    for scale in (1.0, 3e7, 3e8, -3e8, -3e38, 3e38):
        ranks = visit_ranks(torch.tensor([[0.0, scale, scale + 64, scale + 128]]), valid,
                            generator=torch.Generator().manual_seed(0))
        assert ranks[0, 0] == 3 and (abs(scale) > 1e30 or ranks.tolist() == [[3, 2, 1, 0]])  # +64: no-op at 3e38
    for seed in range(8):
        ranks = visit_ranks(torch.full((1, 4), 3e8), valid, generator=torch.Generator().manual_seed(seed))
        assert ranks[0, 0] == 3


def test_padding_ranks_last_with_flush_denormal_and_an_all_zero_map():
    """A review: padding keyed as nextafter(0, -inf), a denormal, tied with all-zero real visits under
    torch.set_flush_denormal(True) and was ranked first in 59 of 200 draws."""
    from faithbench.metrics.functional.temporal import visit_ranks

    valid = torch.tensor([[False, True, True], [True, False, True]])
    torch.set_flush_denormal(True)  # False where the CPU lacks it: the ranks are checked all the same
    try:
        ranks = [visit_ranks(torch.zeros(2, 3), valid, generator=torch.Generator().manual_seed(seed))
                 for seed in range(100)]
    finally:
        torch.set_flush_denormal(False)
    assert all(r[0, 0] == 2 and r[1, 1] == 2 for r in ranks)  # padding last in every draw
    firsts = [int(r[0].argmin()) for r in ranks]
    assert 0 < firsts.count(1) < 100  # the real visits still tie, broken by the seed


def test_visit_importance_does_not_overflow_a_finite_map():
    """A review: |s| ~ 1e36 summed to inf in float32, and the ranking refused the finite map."""
    from faithbench.metrics.functional.temporal import visit_ranks

    s = torch.full((1, 3, 64, 64), 1e36)
    s[0, 2] = -1e36
    importance = visit_importance(s)
    assert importance.dtype == torch.float64 and importance[0].tolist() == pytest.approx([4096e36, 4096e36, -4096e36])
    ranks = visit_ranks(importance, torch.tensor([[False, True, True]]), generator=torch.Generator().manual_seed(0))
    assert ranks.tolist() == [[2, 0, 1]]


def test_a_temporal_metric_on_images_says_not_a_sequence():
    for name in ("visit_pointing", "temporal_deletion"):
        reason, _ = metrics.get(name)().applicability({"lesion"}, 2)
        assert reason.startswith("a temporal metric needs sequences") and "the dataset is 2D" in reason


class LastVisitModel(nn.Module):
    """Logits [0, 4 * mean(last visit)]: the score reads a position, not a visit."""

    arch_family = "cnn"

    def forward(self, x):
        z = 4.0 * x[:, :, -1].flatten(1).mean(1)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def _ramp():
    x = torch.zeros(1, 1, 3, 2, 2)
    for t, v in enumerate((0.2, 0.6, 1.0)):
        x[:, :, t] = v
    return x


def test_keep_visits_pads_at_the_beginning():
    from faithbench.metrics.functional.temporal import keep_visits

    out = keep_visits(_ramp(), torch.tensor([[True, False, True]]), pad_value=-1.0)
    assert out[0, 0, :, 0, 0].tolist() == pytest.approx([-1.0, 0.2, 1.0])
    out = keep_visits(_ramp(), torch.tensor([[False, False, False]]), pad_value=-1.0)
    assert (out == -1.0).all()


def test_remove_mode_shifts_the_history():
    from faithbench.metrics.functional.temporal import temporal_curve

    model, x, target = LastVisitModel(), _ramp(), torch.ones(1, dtype=torch.long)
    ranks = torch.tensor([[1, 2, 0]])  # visit 2 first, then 0, then 1
    removed, fractions = temporal_curve(model, x, target, ranks, insertion=False, mode="remove")
    # [0.2, 0.6, 1.0] -> [pad, 0.2, 0.6] -> [pad, pad, 0.6] -> all padding
    assert removed[0].tolist() == pytest.approx([sig(4.0), sig(2.4), sig(2.4), 0.5])
    replaced, _ = temporal_curve(model, x, target, ranks, insertion=False, mode="replace")
    assert replaced[0].tolist() == pytest.approx([sig(4.0), 0.5, 0.5, 0.5])
    inserted, _ = temporal_curve(model, x, target, ranks, insertion=True, mode="remove")
    # keep only visit 2 -> [pad, pad, 1.0]; then visits 0 and 2 -> [pad, 0.2, 1.0]; then all
    assert inserted[0].tolist() == pytest.approx([0.5, sig(4.0), sig(4.0), sig(4.0)])
    assert fractions.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    ctx = _ctx(model, x, _saliency_favouring([2, 0, 1], b=1, h=2, w=2), {})
    out = metrics.get("temporal_deletion")(mode="remove")(ctx)
    assert out["curve"][0].tolist() == pytest.approx([sig(4.0), sig(2.4), sig(2.4), 0.5])
    from faithbench.configurable import ParameterError
    with pytest.raises(ParameterError, match="mode"):
        metrics.get("temporal_deletion")(mode="drop")


def test_temporal_occlusion_remove_mode():
    model, x, target = LastVisitModel(), _ramp(), torch.ones(1, dtype=torch.long)
    assert visit_drops(model, x, target, mode="remove")[0].tolist() == pytest.approx([0, 0, sig(4.0) - sig(2.4)])
    assert visit_drops(model, x, target)[0].tolist() == pytest.approx([0, 0, sig(4.0) - 0.5])
    s = explainers.get("temporal_occlusion")(mode="remove")(model, x, target)
    assert visit_importance(s)[0].tolist() == pytest.approx([0, 0, sig(4.0) - sig(2.4)], abs=1e-6)
    from faithbench.configurable import ParameterError
    with pytest.raises(ParameterError, match="mode"):
        explainers.get("temporal_occlusion")(mode="drop")


def test_pointing_game_tolerance_stays_within_each_visit():
    """A held-out review: on a sequence the tolerance grew the lesion into the neighbouring visits
    (time as a distance), so a maximum in a visit without the lesion counted as a hit."""
    b, t, h, w = 1, 3, 9, 9
    change = torch.zeros(b, t, h, w, dtype=torch.bool)
    change[0, 2, 4, 4] = True  # the change only in the last visit
    s = torch.zeros(b, t, h, w)
    s[0, 1, 4, 4] = 1.0  # the maximum one visit earlier, at the same place
    valid = torch.ones(b, t, h, w, dtype=torch.bool)
    ctx = _ctx(OneVisitModel(), torch.zeros(b, 1, t, h, w), s, {"change": change, "valid": valid})
    out = metrics.get("pointing_game")(mask="change", tolerance=3)(ctx)
    assert out["value"].tolist() == [0.0]  # was 1: the visit-1 voxel is at distance 1 across time
    assert out["chance"].item() == pytest.approx(25 / (t * h * w))  # the disc of radius < 3 in one visit: 25 px
    s[0, 2, 6, 5] = 2.0  # in the change's visit, at distance sqrt(5) < 3: a hit
    assert metrics.get("pointing_game")(mask="change", tolerance=3)(ctx)["value"].tolist() == [1.0]
    volume = _ctx(OneVisitModel(), torch.zeros(b, 1, t, h, w), s, {"change": change})  # no validity: a volume
    assert metrics.get("pointing_game")(mask="change", tolerance=3)(volume)["chance"].item() > 25 / (t * h * w)
