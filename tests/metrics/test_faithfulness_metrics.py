import math

import pytest
import torch

from faithbench.configurable import ParameterError
from faithbench.metrics import ABPC, DeletionAUC, InsertionAUC, LeRFAOPC, MoRFAOPC, RegionDeletionCorrelation
from faithbench.metrics.functional import (abpc, aopc, deletion_curve, make_baseline, perturbation_curve,
                                           region_deletion_correlation)

W = torch.tensor([[4.0, 3.0], [2.0, 1.0]]).reshape(1, 1, 2, 2)


def test_abpc_known_answer(linear_logit):
    # deletion curve 10, 6, 3, 1, 0 (AUC 3.75); insertion 0, 4, 7, 9, 10 (AUC 6.25)
    model, x = linear_logit(W), torch.ones(1, 1, 2, 2)
    value = abpc(model, x, torch.tensor([1]), W[:, 0], steps=4, deletion_baseline="zero",
                 insertion_baseline="zero", score="logit")
    assert value.item() == pytest.approx(2.5)


def test_abpc_memoised_costs_no_passes(linear_logit, make_ctx):
    torch.manual_seed(0)
    model = linear_logit(torch.randn(1, 1, 6, 6))
    ctx = make_ctx(model, torch.rand(3, 1, 6, 6), torch.randn(3, 6, 6))
    d = DeletionAUC(steps=9)(ctx)
    passes = ctx.predict.passes
    i = InsertionAUC(steps=9)(ctx)
    assert ctx.predict.passes - passes == 3 * 10  # insertion re-used the ranking, ran its own curve
    passes = ctx.predict.passes
    a = ABPC(steps=9)(ctx)
    assert ctx.predict.passes == passes  # both curves came from the memo
    assert torch.allclose(a["value"], i["value"] - d["value"])
    assert torch.allclose(a["curve"], i["curve"] - d["curve"])
    # a different option (steps) is a different curve, never a stale memo hit
    ABPC(steps=5)(ctx)
    assert ctx.predict.passes == passes + 2 * 3 * 6


def test_class_matches_functional_seeded(linear_logit, make_ctx):
    torch.manual_seed(1)
    model = linear_logit(torch.randn(1, 1, 6, 6))
    x, sal = torch.rand(2, 1, 6, 6), torch.zeros(2, 6, 6)  # all tied: the seeded tie-break decides
    ctx = make_ctx(model, x, sal, seed=5)
    out = DeletionAUC(steps=6, baseline="noise")(ctx)
    curve, _ = deletion_curve(model, x, ctx.target, sal, steps=6, baseline="noise", seed=5)
    assert torch.allclose(out["curve"], curve)


def test_aopc_known_answer_morf_lerf(linear_logit):
    model, x, target = linear_logit(W), torch.ones(1, 1, 2, 2), torch.tensor([1])
    kw = dict(steps=4, patch=1, baseline="zero", score="logit")
    # MoRF: remaining logit 10, 6, 3, 1, 0 -> drops 0, 4, 7, 9, 10 -> mean 6
    assert aopc(model, x, target, W[:, 0], order="morf", **kw).item() == pytest.approx(6.0)
    # LeRF: remaining 10, 9, 7, 4, 0 -> drops 0, 1, 3, 6, 10 -> mean 4
    assert aopc(model, x, target, W[:, 0], order="lerf", **kw).item() == pytest.approx(4.0)
    # L = min(steps, #patches): 2 steps -> drops 0, 4, 7 -> 11/3
    assert aopc(model, x, target, W[:, 0], **{**kw, "steps": 2}).item() == pytest.approx(11 / 3)


def test_aopc_patches_2d_3d(linear_logit, make_ctx):
    w = torch.zeros(1, 1, 4, 4)
    w[0, 0, :2, 2:] = 1.0  # the top-right 2x2 patch carries the logit
    model = linear_logit(w)
    ctx = make_ctx(model, torch.ones(1, 1, 4, 4), w[:, 0].clone())
    out = MoRFAOPC(patch=2, steps=100, baseline="zero", score="logit")(ctx)
    # 4 patches: removing the salient one first drops 4 at once -> (0 + 4 + 4 + 4 + 4) / 5
    assert out["value"].item() == pytest.approx(16 / 5)
    assert out["fractions"][0].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])  # (B, K): each sample's own
    lerf = LeRFAOPC(patch=2, baseline="zero", score="logit")(ctx)
    assert lerf["value"].item() == pytest.approx(4 / 5)  # the salient patch goes last
    w3 = torch.zeros(1, 1, 4, 4, 4)
    w3[0, 0, 2:, :2, 2:] = 1.0
    ctx3 = make_ctx(linear_logit(w3), torch.ones(1, 1, 4, 4, 4), w3[:, 0].clone())
    assert MoRFAOPC(patch=2, steps=3, baseline="zero", score="logit")(ctx3)["value"].item() == pytest.approx(6.0)


def test_uniform_baseline_range_and_seed():
    x = torch.rand(2, 3, 8, 8) * 4 - 1
    u = make_baseline(x, "uniform", generator=torch.Generator().manual_seed(0))
    lo, hi = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
    assert ((u >= lo) & (u <= hi)).all()
    assert torch.equal(u, make_baseline(x, "uniform", generator=torch.Generator().manual_seed(0)))


def test_region_deletion_correlation_known_answer(linear_logit, make_ctx):
    w = torch.zeros(1, 1, 4, 4)
    w[0, 0, 0, :] = 3.0  # region a: drop 12
    w[0, 0, 1, :] = 2.0  # region b: drop 8
    w[0, 0, 2, :] = 1.0  # region c: drop 4
    model = linear_logit(w)
    x = torch.ones(2, 1, 4, 4)
    masks = {n: torch.zeros(2, 4, 4, dtype=torch.bool) for n in ("a", "b", "c", "lesion")}
    for row, n in enumerate("abc"):
        masks[n][:, row] = True
    masks["lesion"][:, 3] = True
    sal = torch.stack([w[0, 0], -w[0, 0]])  # sample 0 ranks regions right, sample 1 reversed
    ctx = make_ctx(model, x, sal, target=torch.ones(2, dtype=torch.long), masks=masks)
    out = RegionDeletionCorrelation(score="logit")(ctx)  # lesion excluded by default
    assert out["value"].tolist() == pytest.approx([1.0, -1.0])
    assert ctx.predict.passes == 2 + 2 * 3  # one clean pass per sample + one per region
    fn = region_deletion_correlation(model, x, ctx.target, sal, torch.stack([masks[n] for n in "abc"], 1),
                                     score="logit")
    assert fn.tolist() == pytest.approx([1.0, -1.0])
    # fewer than 3 non-empty regions: undefined
    masks["c"][1] = False
    ctx2 = make_ctx(model, x, sal, masks=masks)
    v = RegionDeletionCorrelation(score="logit")(ctx2)["value"]
    assert v[0].item() == pytest.approx(1.0) and math.isnan(v[1].item())
    with pytest.raises(ValueError, match="no mask 'lung'"):
        RegionDeletionCorrelation(regions=["a", "lung", "b"])(ctx2)


def test_region_deletion_correlation_chance_is_the_rank_correlation_of_area_and_drop(linear_logit, make_ctx):
    """A held-out review (F1): the summed mass carries the region's area, so a constant map scores
    ρ(area, Δ), not 0; ``chance`` reports it for every map."""
    w, masks = torch.zeros(1, 1, 6, 6), {n: torch.zeros(2, 6, 6, dtype=torch.bool) for n in "abcd"}
    for name, rows, cols, weight in (("a", 0, slice(0, 2), 3.0), ("b", 0, slice(2, 6), 1.0),  # areas 2, 4
                                     ("c", 1, slice(0, 6), 1.5), ("d", slice(2, 3), slice(0, 6), 0.25)):
        masks[name][:, rows, cols] = True
        w[0, 0, rows, cols] = weight
    masks["d"][:, 3, :2] = True  # area 8
    w[0, 0, 3, :2] = 0.25
    # drops (x = 1, zero baseline) 6, 4, 9, 2 against areas 2, 4, 6, 8: ranks (3, 2, 4, 1) vs (1, 2, 3, 4),
    # ρ = 1 - 6 (4 + 0 + 1 + 9) / (4 * 15) = -0.4
    model, x = linear_logit(w), torch.ones(2, 1, 6, 6)
    constant = make_ctx(model, x, torch.ones(2, 6, 6), masks=masks)
    out = RegionDeletionCorrelation(score="logit")(constant)
    assert out.chance.tolist() == pytest.approx([-0.4, -0.4])
    assert out.value.tolist() == pytest.approx(out.chance.tolist())  # a constant map scores its chance
    exact = make_ctx(model, x, torch.cat([w[:, 0], torch.rand(1, 6, 6)]), masks=masks)  # I_r = Δ_r; random
    out = RegionDeletionCorrelation(score="logit")(exact)
    assert out.value[0].item() == pytest.approx(1.0) and out.chance.tolist() == pytest.approx([-0.4, -0.4])
    two = make_ctx(model, x, torch.ones(2, 6, 6), masks={n: masks[n] for n in "ac"})  # fewer than 3 regions
    assert math.isnan(RegionDeletionCorrelation(score="logit")(two).chance[0].item())


def test_region_deletion_correlation_leaves_out_ground_truth_and_containers(linear_logit, make_ctx):
    x = torch.ones(1, 1, 4, 4)
    names = ("heart", "lung_left", "spine", "target", "change", "valid", "nodule", "cavity")
    masks = {n: torch.ones(1, 4, 4, dtype=torch.bool) for n in names}
    ctx = make_ctx(linear_logit(torch.ones(1, 1, 4, 4)), x, torch.ones(1, 4, 4), masks=masks)
    metric = RegionDeletionCorrelation()
    # single-label: a mask called "nodule" is just a region
    assert metric.region_names(ctx) == ["cavity", "heart", "lung_left", "nodule", "spine"]
    ml = make_ctx(linear_logit(torch.ones(1, 1, 4, 4)), x, torch.ones(1, 4, 4), masks=masks, multilabel=True,
                  classes=("nodule", "cavity"))
    assert metric.region_names(ml) == ["heart", "lung_left", "spine"]  # the classes' findings are ground truth


def test_scorecam_3d_protocol_runs(tiny_cnn, make_ctx):
    # SCIENCE.md seed: RISE AUC over 129 points with a 0/1 correctness score, on a 3D volume
    torch.manual_seed(0)
    model = tiny_cnn(dims=3, classes=3)
    x = torch.rand(2, 1, 8, 8, 8)
    target = model(x).argmax(1)
    ctx = make_ctx(model, x, torch.rand(2, 8, 8, 8), target=target)
    for metric in (DeletionAUC(steps=128, score="correct"), InsertionAUC(steps=128, score="correct")):
        out = metric(ctx)
        assert out["curve"].shape == (2, 129) and out["fractions"].shape == (129,)
        assert set(out["curve"].unique().tolist()) <= {0.0, 1.0}
        assert ((out["value"] >= 0) & (out["value"] <= 1)).all()
    assert (DeletionAUC(steps=128, score="correct")(ctx)["curve"][:, 0] == 1).all()  # x itself is correct


def test_perturbation_chunks_do_not_change_curve(tiny_cnn):
    torch.manual_seed(0)
    model = tiny_cnn()
    x, sal = torch.rand(3, 1, 8, 8), torch.rand(3, 8, 8)
    a, _ = deletion_curve(model, x, torch.zeros(3, dtype=torch.long), sal, steps=7, max_batch=5)
    b, _ = deletion_curve(model, x, torch.zeros(3, dtype=torch.long), sal, steps=7, max_batch=1000)
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="max_batch"):
        perturbation_curve(model, x, torch.zeros(3, dtype=torch.long), torch.zeros(3, 8, 8, dtype=torch.long),
                           x, steps=2, insertion=False, max_batch=0)


def test_eager_parameter_errors():
    with pytest.raises(ParameterError, match="'baseline' expects one of zero, blur"):
        DeletionAUC(baseline="black")
    with pytest.raises(ParameterError, match="'score'"):
        ABPC(score="probability")
    with pytest.raises(ParameterError, match="'steps' must be >= 1"):
        MoRFAOPC(steps=0)


def test_patch_ranking_metrics_are_version_6():
    """Patch sums in float64 (feature_ranks, a held-out review's F1; version 4), then tie-breaks drawn per image
    (version 5; ROAD 6) change the values of every metric that ranks patches, so their cached scores are not
    reused; the metrics that rank no patch keep theirs."""
    from faithbench import create_metric
    ranking = ["deletion_auc", "insertion_auc", "abpc", "morf_aopc", "lerf_aopc", "monotonicity", "irof",
               "selectivity", "temporal_deletion", "temporal_insertion"]
    # the random baselines (noise, uniform) and subsets/draws moved to per image since (tests/metrics/
    # test_row_draws.py): the metrics that draw them went one version up; the temporal curves draw no baseline
    per_image = dict.fromkeys(ranking, "6") | {"temporal_deletion": "5", "temporal_insertion": "5"}
    assert {name: create_metric(name).version for name in ranking} == per_image
    assert RegionDeletionCorrelation.version == "4" and create_metric("road_morf").version == "7"
    assert {name: create_metric(name).version for name in ("faithfulness_correlation", "faithfulness_estimate",
                                                           "monotonicity_correlation", "sensitivity_n")} == \
        {"faithfulness_correlation": "3", "faithfulness_estimate": "4", "monotonicity_correlation": "4",
         "sensitivity_n": "5"}
