"""Settings under which no map changes a metric's value (every explainer would score the same, or
every value is NaN) are refused, by ``faithbench validate`` (tests/test_metric_checks.py) and when a
metric is computed directly (Metric.refuse_unfit, called by Metric.__call__): held-out reviews found
monotonicity 1.0, its best value, for a random, a constant and an all-zero map alike with one patch,
and three explainers tied at 0.5504 (ranked 1/2/3) with deletion_auc ``steps: 1``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.configurable import ParameterError
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.registry import metrics

ONE_FEATURE = ["deletion_auc", "insertion_auc", "abpc", "morf_aopc", "lerf_aopc", "monotonicity", "irof",
               "selectivity", "non_sensitivity"]


def _ctx(spatial=(16, 16), saliency=None, b=3):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((b, 1, *spatial), generator=gen)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 2)).eval()
    torch.nn.init.normal_(model[1].weight, generator=gen)
    target = torch.ones(b, dtype=torch.long)
    sal = torch.randn((b, *spatial), generator=gen) if saliency is None else saliency
    return EvalContext(model=model, x=x, target=target, label=target, saliency=sal, masks={},
                       predict=ForwardCounter(model), classes=("a", "b"))


@pytest.mark.parametrize("name", ONE_FEATURE)
@pytest.mark.parametrize("spatial", [(16, 16), (4, 4, 4)])
def test_one_feature_is_refused_when_computed(name, spatial):
    """A patch as large as the image: one feature, the same ranking for every map."""
    ctx = _ctx(spatial)
    metric = metrics.get(name)(patch=max(spatial))
    shape = " x ".join(map(str, spatial))
    with pytest.raises(ValueError, match=rf"^{name}: parameter 'patch' = {max(spatial)} gives 1 feature on the "
                                         rf"{shape} images, so every explainer would score the same; expected "
                                         rf"patch < {max(spatial)}$"):
        metric(ctx)
    assert ctx.predict.passes == 0  # refused before any forward pass
    assert metric.check_dataset(spatial) is not None  # the message validate gives
    assert metrics.get(name)(patch=max(spatial) - 1).check_dataset(spatial) is None  # 2 features per side


@pytest.mark.parametrize("name", ["monotonicity", "selectivity", "morf_aopc"])
def test_two_features_still_score_and_tell_maps_apart(name):
    """Just below the limit the value depends on the map: a map and its negation differ."""
    params = {"patch": 8, **({"baseline": "zero"} if name == "morf_aopc" else {})}
    values = []
    for sign in (1, -1):
        ctx = _ctx((16, 16))
        ctx.saliency = sign * torch.arange(256.0).view(1, 16, 16).expand(3, 16, 16).contiguous()
        values.append(metrics.get(name)(**params, postprocess="none")(ctx)["curve"])
    assert not torch.equal(values[0], values[1])


@pytest.mark.parametrize("name, why", [
    ("deletion_auc", "its two end points, nothing and every feature replaced"),
    ("insertion_auc", "its two end points"),
    ("abpc", "its two end points"),
    ("monotonicity", "one point, every feature restored, so every map scores 1"),
])
def test_one_step_is_refused(name, why):
    with pytest.raises(ParameterError, match=rf"^{name}: parameter 'steps' must be >= 2 \(with 1 step the curve "
                                             rf"is {why}.*\), got 1$"):
        metrics.get(name)(steps=1)
    assert metrics.get(name)(steps=2).steps == 2


def test_one_step_of_aopc_still_depends_on_the_map():
    """AOPC's step removes one patch (the top-ranked one), not every feature: steps 1 stays allowed."""
    values = []
    for sign in (1, -1):
        ctx = _ctx((16, 16))
        ctx.saliency = sign * torch.arange(256.0).view(1, 16, 16).expand(3, 16, 16).contiguous()
        values.append(metrics.get("morf_aopc")(steps=1, patch=8, baseline="zero")(ctx)["value"])
    assert values[0].shape == (3,)
    assert not torch.equal(values[0], values[1])


@pytest.mark.parametrize("threshold", [1, 1.0, 2.0])
def test_sufficiency_threshold_of_one_or_more_is_refused(threshold):
    """Distances are divided by the batch's largest: at 1 every other sample is a neighbour."""
    with pytest.raises(ParameterError, match=r"^sufficiency: parameter 'threshold' must be in \(0, 1\) \(distances "
                                             r"are divided by the batch's largest, so a threshold of 1 or more makes "
                                             r"every other sample a neighbour.*\), got "):
        metrics.get("sufficiency")(threshold=threshold)
    assert metrics.get("sufficiency")(threshold=0.99).threshold == 0.99


def test_consistency_grid_of_one_cell_is_refused():
    """One cell is every map's top cell and singles out nothing: every value would be NaN."""
    with pytest.raises(ParameterError, match=r"^consistency: parameter 'grid' must be >= 2 \(with 1 cell every map "
                                             r"has all its mass in it.*every value would be NaN\), got 1$"):
        metrics.get("consistency")(grid=1)
    ctx = _ctx((16, 16), b=6)
    ctx.saliency = torch.zeros(6, 16, 16)
    ctx.saliency[:3, :8] = 1.0  # top half for three samples, bottom half for the others
    ctx.saliency[3:, 8:] = 1.0
    value = metrics.get("consistency")(grid=2)(ctx)["value"]
    assert torch.isfinite(value).all()  # two cells: each sample shares its cell with two others


@pytest.mark.parametrize("name", ["road_morf", "road_lerf"])
def test_road_levels_that_remove_no_pixel_are_refused(name):
    ctx = _ctx((4, 4))  # 16 pixels: 5 % removes int(0.8) = 0 of them
    for percentages in ([0], [0, 5]):
        with pytest.raises(ValueError, match=rf"^{name}: parameter 'percentages' = \[0(, 5)?\] removes no pixel of "
                                             r"the 16 of 4 x 4 images, so every explainer would score the same; "
                                             r"expected a percentage that removes one \(p >= 100 / 16\)$"):
            metrics.get(name)(percentages=percentages)(ctx)
    assert metrics.get(name)(percentages=[0, 10]).check_dataset((4, 4)) is None  # 10 % removes 1 pixel


def test_a_limit_of_validate_is_refused_when_computed_for_other_metrics_too():
    """Metric.__call__ applies check_dataset to every metric: consistency's grid above the image side
    and continuity's steps above 2W + 1 were scored when computed directly."""
    ctx = _ctx((8, 8), b=4)
    with pytest.raises(ValueError, match=r"^consistency: parameter 'grid' = 9 is more than the smallest image side 8"):
        metrics.get("consistency")(grid=9)(ctx)
    with pytest.raises(ValueError, match=r"^continuity: parameter 'steps' = 18 is more than the 2W \+ 1 = 17 shifts"):
        metrics.get("continuity")(steps=18)(ctx)
    with pytest.raises(ValueError, match=r"^class_sensitivity: parameter 'others' is 'positive'.*single-label"):
        metrics.get("class_sensitivity")()(ctx)


def test_a_batch_with_multilabel_vectors_is_multilabel_to_the_check():
    """Diff review 16: class_sensitivity called directly with the batch's multi-label vectors but
    ``multilabel`` left False was refused as "single-label" (it scored before the check moved into
    Metric.__call__)."""
    import dataclasses

    from faithbench.registry import explainers

    ctx = dataclasses.replace(_ctx((8, 8), b=4), labels=torch.tensor([[1, 1], [1, 1], [0, 1], [1, 1]]),
                              explainer=explainers.get("saliency")())
    value = metrics.get("class_sensitivity")()(ctx).value
    assert value.shape == (4,) and torch.isfinite(value).sum() == 3  # sample 2 has no other positive class


@pytest.mark.parametrize("shift", [0, 0.0, -0.0])
def test_input_invariance_without_a_shift_is_refused(shift):
    """A review: with shift 0, x + c is x bit for bit and f2 is f1, so every explainer, the random control
    too, scored 1 (its best value); refused on construction (validate, run) and when computed."""
    with pytest.raises(ParameterError, match=r"^input_invariance: parameter 'shift' must not be 0 \(x \+ 0 is x and "
                                             r"the shifted model is the model, so every explainer, the random control "
                                             r"too, would score 1\), got -?0(\.0)?$"):
        metrics.get("input_invariance")(shift=shift)
    from faithbench.registry import explainers

    ctx = _ctx((8, 8))
    ctx.explainer = explainers.get("random")()
    metric = metrics.get("input_invariance")(shift=-1.0)
    assert metric(ctx)["value"].tolist() == [0.0, 0.0, 0.0]  # the control fails a real shift
    metric.shift = shift  # set after construction: refused before any forward pass, not scored 1
    passes = ctx.predict.passes
    with pytest.raises(ValueError, match=r"^input_invariance: parameter 'shift' must not be 0"):
        metric(ctx)
    assert ctx.predict.passes == passes and metric.check_dataset((8, 8)) is not None


@pytest.mark.parametrize("shift, atol", [(1e-30, 1e-4), (1e-9, 1e-4), (1e-7, 1e-4), (-1e-4, 1e-4), (0.4, 0.5),
                                         (1e-7, 0.0), (-1e-30, 0.0)])
def test_input_invariance_refuses_a_shift_within_atol(shift, atol):
    """A held-out review: shift 1e-30 is below float32's resolution (x + c is x: every explainer passed, the random
    control too), and 1e-9 or 1e-7 passed input x gradient, which must fail; |shift| <= max(atol, 1.2e-7) is
    refused on construction and when computed."""
    floor = f"{max(atol, 1.1920928955078125e-07):.3g}"
    message = (rf"^input_invariance: parameter 'shift' must be above max\(atol, 1.2e-07\) = {floor} in magnitude "
               rf"\(a smaller shift .* would pass as invariant\), got {shift!r}$")
    with pytest.raises(ParameterError, match=message):
        metrics.get("input_invariance")(shift=shift, atol=atol)
    metric = metrics.get("input_invariance")(atol=atol)
    metric.shift = shift
    assert metric.check_dataset((8, 8)) is not None
    with pytest.raises(ValueError, match=message):
        metric(_ctx((8, 8)))


def test_input_invariance_fails_input_x_gradient_just_above_atol():
    """On inputs in [0, 1) a shift above atol moves input x gradient's map, c w on a linear model, by more than
    atol max |x w|: it fails at 2e-4 (atol 1e-4); the gradient passes; atol 0 takes a shift of 1e-6."""
    from faithbench.registry import explainers

    for name, expected in (("input_x_gradient", 0.0), ("saliency", 1.0)):
        ctx = _ctx((8, 8))
        ctx.explainer = explainers.get(name)(seed=0)
        ctx.saliency = ctx.explainer(ctx.model, ctx.x, ctx.target)
        assert metrics.get("input_invariance")(shift=2e-4)(ctx)["value"].tolist() == [expected] * 3
    assert metrics.get("input_invariance")(shift=1e-6, atol=0.0).shift == 1e-6
