"""Robustness metrics: hand-computed known answers, controls, 2D/3D, cost counting."""

import math

import pytest
import torch

from faithbench.metrics import (AvgSensitivity, Consistency, Continuity, LocalLipschitz, MaxSensitivity,
                                RelativeInputStability, RelativeOutputStability, RelativeRepresentationStability)
from faithbench.metrics.functional import (argmax_cell, consistency, continuity_ratio, lipschitz_ratio, reduce_draws,
                                           relative_input_stability, relative_output_stability,
                                           relative_representation_stability,
                                           representation_reader, sensitivity, translations, uniform_noise)
from faithbench.registry import explainers


def _explainer(name):
    return explainers.get(name)(seed=0)


def test_sensitivity_known_answer():
    a = torch.tensor([[[3.0, 4.0]]])  # ||a|| = 5
    perturbed = torch.tensor([[[[3.0, 0.0]]], [[[0.0, 4.0]]]])  # diffs of norm 4 and 3
    values = sensitivity(a, perturbed)
    assert values[:, 0].tolist() == pytest.approx([0.8, 0.6])
    assert reduce_draws(values, "max").item() == pytest.approx(0.8)
    assert reduce_draws(values, "mean").item() == pytest.approx(0.7)
    # a changed prediction leaves the draw out; no draw left -> NaN
    changed = torch.tensor([[True], [False]])
    assert reduce_draws(values, "max", changed).item() == pytest.approx(0.6)
    assert math.isnan(reduce_draws(values, "max", torch.ones(2, 1, dtype=torch.bool)).item())


def test_lipschitz_and_continuity_known_answers():
    a = torch.tensor([[[1.0, -1.0]]])
    pa = torch.zeros(1, 1, 1, 2)
    x = torch.zeros(1, 1, 1, 2)
    px = torch.tensor([[[[[0.0, 2.0]]]]])
    assert lipschitz_ratio(a, pa, x, px).item() == pytest.approx(math.sqrt(2) / 2)  # ||(1,-1)||_2 / 2
    assert continuity_ratio(a, pa, x, px).item() == pytest.approx(2 / 2)  # ||(1,-1)||_1 / 2
    assert math.isnan(continuity_ratio(a, pa, x, x[None]).item())  # x' = x is no neighbour


def test_translations_like_quantus():
    x = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    # W = 4, 4 steps: dx = 9 // 4 = 2, shifts -2, 0, 2, 4; fill = the sample's minimum (1)
    out = translations(x, 4)[:, 0, 0, 0]
    assert out.tolist() == [[3, 4, 1, 1], [1, 2, 3, 4], [1, 1, 1, 2], [1, 1, 1, 1]]
    assert translations(x, 4, fill=0.0)[2, 0, 0, 0].tolist() == [0, 0, 1, 2]


def test_relative_stability_known_answers():
    e, pe = torch.tensor([[2.0, 4.0]]), torch.tensor([[[1.0, 4.0]]])  # ||(e - e') / e|| = 0.5
    x, px = torch.tensor([[1.0, 2.0]]), torch.tensor([[[1.5, 2.0]]])  # ||(x - x') / x|| = 0.5
    assert relative_input_stability(x, px, e, pe).item() == pytest.approx(1.0)
    features, pfeatures = torch.tensor([[1.0, 4.0]]), torch.tensor([[[1.0, 3.0]]])  # ||(L - L') / L|| = 0.25
    assert relative_representation_stability(features, pfeatures, e, pe).item() == pytest.approx(2.0)
    logits, plogits = torch.tensor([[0.0, 1.0]]), torch.tensor([[[0.0, 3.0]]])  # ||h - h'|| = 2
    assert relative_output_stability(logits, plogits, e, pe).item() == pytest.approx(0.25)
    # a zero in e: (0 - 1) / 0 is undefined, the sample is NaN for every draw (zeros="nan", the
    # default); Quantus' convention (zeros="eps_min") divides by eps_min = 1e-6 instead
    e0, pe0 = torch.tensor([[0.0, 4.0], [2.0, 4.0]]), torch.tensor([[[1.0, 4.0], [1.0, 4.0]]])
    two_logits, two_plogits = logits.repeat(2, 1), plogits.repeat(1, 2, 1)
    default = relative_output_stability(two_logits, two_plogits, e0, pe0)
    assert math.isnan(default[0, 0].item()) and default[0, 1].item() == pytest.approx(0.25)
    assert relative_output_stability(two_logits, two_plogits, e0, pe0, zeros="eps_min")[0, 0].item() == pytest.approx(
        1e6 / 2, rel=1e-6)
    # RIS is undefined for a zero in x, RRS for a zero in L_x, whatever e is
    assert math.isnan(relative_input_stability(torch.tensor([[0.0, 2.0]]), px, e, pe).item())
    assert math.isnan(relative_representation_stability(torch.tensor([[0.0, 4.0]]), pfeatures, e, pe).item())
    # zeros="skip": the relative changes over the defined entries only: e0's first sample keeps
    # its second entry, (4 - 4) / 4 = 0; x's zero entry leaves the input norm, (2 - 2) / 2 = 0 and
    # the draw's ratio is 0 / max(0, eps_min) = 0; a divisor zero everywhere stays undefined
    skip = relative_output_stability(two_logits, two_plogits, e0, pe0, zeros="skip")
    assert skip[0].tolist() == pytest.approx([0.0, 0.25])
    e2, pe2 = torch.tensor([[0.0, 2.0]]), torch.tensor([[[1.0, 1.0]]])  # ||(2 - 1) / 2|| = 0.5 over entry 2
    x2, px2 = torch.tensor([[0.0, 2.0]]), torch.tensor([[[0.5, 1.5]]])  # ||(2 - 1.5) / 2|| = 0.25 over entry 2
    assert relative_input_stability(x2, px2, e2, pe2, zeros="skip").item() == pytest.approx(2.0)
    assert math.isnan(relative_input_stability(torch.zeros(1, 2), px2, e2, pe2, zeros="skip").item())
    assert math.isnan(relative_output_stability(logits, plogits, torch.zeros(1, 2), pe, zeros="skip").item())


def test_relative_stability_subnormal_divisors_are_zeros():
    """A held-out review: background pixels of 1e-45 (a Gaussian's underflowed tail) gave (x - x') / x of
    about 1e43, and RIS with zeros: skip about 1e-41 for every explainer; a subnormal entry is a zero."""
    e2, pe2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[[1.0, 1.0]]])  # ||(2 - 1) / 2|| = 0.5 over entry 2
    sub = torch.tensor([[1e-45, 2.0]])
    assert 0 < sub[0, 0] < torch.finfo(torch.float32).tiny  # a float32 subnormal, not an exact 0
    px2 = torch.tensor([[[0.01, 1.5]]])  # ||(2 - 1.5) / 2|| = 0.25 over entry 2 (entry 1 skipped: 1e43 before)
    assert relative_input_stability(sub, px2, e2, pe2, zeros="skip").item() == pytest.approx(2.0)
    assert math.isnan(relative_input_stability(sub, px2, e2, pe2).item())  # zeros="nan": undefined
    normal = torch.tensor([[1e-30, 2.0]])  # a normal value is not a zero: it dominates the input norm
    assert relative_input_stability(normal, px2, e2, pe2, zeros="skip").item() == pytest.approx(0.5 / 1e28, rel=1e-5)
    e_sub = torch.tensor([[1e-45, 2.0]])  # in e_x too: the explanation's entry leaves the norm
    logits, plogits = torch.tensor([[0.0, 1.0]]), torch.tensor([[[0.0, 3.0]]])  # ||h - h'|| = 2
    assert relative_output_stability(logits, plogits, e_sub, pe2, zeros="skip").item() == pytest.approx(0.25)


def test_relative_stability_denominator_is_at_least_eps_min():
    # the paper's max(||.||, eps_min): logits that move by 1e-9 (0 < norm < eps_min = 1e-6) divide
    # by eps_min, not by 1e-9 (Quantus 0.6.0 guards only a zero norm: it would give 0.5 / 1e-9)
    e, pe = torch.tensor([[2.0, 4.0]]), torch.tensor([[[1.0, 4.0]]])  # ||(e - e') / e|| = 0.5
    logits = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    plogits = logits[None] + torch.tensor([0.0, 1e-9], dtype=torch.float64)
    assert relative_output_stability(logits, plogits, e, pe).item() == pytest.approx(0.5 / 1e-6, rel=1e-6)
    assert relative_output_stability(logits, plogits, e, pe, eps_min=1e-12).item() == pytest.approx(0.5 / 1e-9,
                                                                                                    rel=1e-6)
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert relative_input_stability(x, x[None] * (1 + 1e-10), e, pe).item() == pytest.approx(0.5 / 1e-6, rel=1e-6)
    with pytest.raises(ValueError, match="zeros must be one of"):
        relative_output_stability(logits, plogits, e, pe, zeros="drop")


def test_consistency_known_answer():
    value = consistency(torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 0, 1, 0, 1]))
    assert value[:4].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert math.isnan(value[4].item())  # nobody else shares its explanation
    sal = torch.zeros(2, 4, 4)
    sal[0, 3, 3] = 1.0  # bottom-right cell of a 2 x 2 grid
    sal[1, 0, 2] = 1.0  # top-right
    assert argmax_cell(sal, 2).tolist() == [3, 1]
    assert argmax_cell(torch.zeros(1, 4, 4, 4).index_put_((torch.tensor([0]),) * 4, torch.tensor([1.0])), 2).item() == 0


def test_consistency_gives_a_map_whose_cells_all_tie_no_explanation(tiny_cnn, make_ctx):
    # a held-out review: ties went to the first cell, so all-zero maps all 'agreed' on cell 0 and scored 1.0;
    # a diff review: a patch-wise map (LIME, patch 32 on 64 px) ties the cells of its best patch, one explanation
    assert argmax_cell(torch.zeros(2, 4, 4), 2).tolist() == [-1, -1]
    sal = torch.zeros(4, 4, 4)
    sal[0, 0, 0] = sal[0, 3, 3] = 1.0  # cells 0 and 3 share the largest mean
    sal[1] = sal[2] = 0.5
    sal[1, 3, 3] = sal[2, 3, 3] = 1.0  # cell 3 alone
    sal[3, :2, :] = 1.0  # cells 0 and 1: another set
    assert argmax_cell(sal, 2).tolist() == [4, 3, 3, 5]  # sets labelled 4 + k, in torch.unique's order
    assert argmax_cell(sal * 1e38, 2).tolist() == [4, 3, 3, 5]  # float64 cells: no overflow to tied inf
    blocky = torch.zeros(3, 8, 8)
    blocky[:2, :4, :4] = 2.0  # one 4 x 4 patch spans four cells of a 4-per-axis grid
    blocky[2, 4:, 4:] = 2.0
    labels = argmax_cell(blocky, 4)
    assert labels[0] == labels[1] != labels[2] and (labels >= 16).all()
    value = consistency(torch.tensor([-1, -1, 3, 3, -7, -7]), torch.tensor([0, 0, 1, 1, 0, 1]))
    assert value[:2].isnan().all() and value[2:].tolist() == [1.0, 1.0, 0.0, 0.0]  # any other label counts
    model, x = tiny_cnn().eval(), torch.rand(4, 1, 8, 8)
    assert Consistency()(make_ctx(model, x, torch.zeros(4, 8, 8))).value.isnan().all()
    assert not Consistency(grid=2)(make_ctx(model, x, blocky[[0, 1, 0, 1]])).value.isnan().any()

def test_max_sensitivity_random_control_is_worst(linear_logit, make_ctx):
    # a linear model's gradient is its weight, whatever the input: saliency is perfectly stable;
    # the random control re-drawn per call changes completely: E||u - u'||² / E||u||² = (2/12) / (1/3)
    torch.manual_seed(0)
    model = linear_logit(torch.randn(1, 16, 16))
    x = torch.rand(3, 1, 16, 16)
    values = {}
    for name in ("saliency", "random", "sobel"):
        explainer = _explainer(name)
        ctx = make_ctx(model, x, explainer(model, x, torch.ones(3, dtype=torch.long)), explainer=explainer)
        values[name] = MaxSensitivity(nr_samples=4)(ctx).value
        if name == "random":
            avg = AvgSensitivity(nr_samples=4)(ctx).value
            assert torch.allclose(avg, torch.full((3,), math.sqrt(0.5)), atol=0.06)
    assert torch.allclose(values["saliency"], torch.zeros(3), atol=1e-6)
    assert (values["random"] > values["sobel"]).all() and (values["sobel"] > values["saliency"]).all()


def test_reexplanations_counted_shared_and_chunk_free(tiny_cnn, make_ctx):
    torch.manual_seed(0)
    model, x = tiny_cnn(), torch.rand(2, 1, 8, 8)
    saliency = _explainer("saliency")
    ctx = make_ctx(model, x, saliency(model, x, torch.ones(2, dtype=torch.long)), explainer=saliency)
    one = MaxSensitivity(nr_samples=3)(ctx).value
    assert ctx.predict.passes == 3 * 2  # one forward per re-explained image
    AvgSensitivity(nr_samples=3)(ctx)  # same noise: re-explanations shared through ctx.memo
    assert ctx.predict.passes == 3 * 2
    ctx2 = make_ctx(model, x, ctx.saliency, explainer=saliency)
    assert torch.allclose(MaxSensitivity(nr_samples=3, draws_per_call=2)(ctx2).value, one)


def test_originals_go_forward_once_for_the_prediction_check_and_ros(tiny_cnn, make_ctx):
    """A held-out review counted 2B passes of the originals in ROS (the prediction check and the
    logits h(x) each ran them): they share one now, as the RIS/RRS/ROS family shares its copies."""
    torch.manual_seed(0)
    model, x = tiny_cnn(), torch.rand(2, 1, 8, 8)
    saliency = _explainer("saliency")
    ctx = make_ctx(model, x, saliency(model, x, torch.ones(2, dtype=torch.long)), explainer=saliency)
    RelativeOutputStability(nr_samples=3)(ctx)
    assert ctx.predict.passes == 3 * 2 + 3 * 2 + 2  # re-explanations, the copies' logits, the originals once
    RelativeInputStability(nr_samples=3)(ctx)  # shares all three
    assert ctx.predict.passes == 3 * 2 + 3 * 2 + 2


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_non_finite_reexplanation_is_an_error_not_a_dropped_draw(tiny_cnn, make_ctx, bad):
    calls = []

    def explain(model, x, target):  # saliency = x; the first re-explanation is broken at one pixel
        calls.append(1)
        out = x.sum(1).clone()
        if len(calls) == 2:
            out[:, 0, 0] = bad
        return out

    torch.manual_seed(0)
    model, x = tiny_cnn(), torch.rand(3, 1, 8, 8) + 0.05
    for metric in (MaxSensitivity(nr_samples=3), LocalLipschitz(nr_samples=3)):
        calls.clear()
        ctx = make_ctx(model, x, explain(model, x, None), explainer=explain)  # call 1: the original map
        with pytest.raises(FloatingPointError, match=r"NaN or Inf for a perturbed copy \(draws 0 to 0\)"):
            metric(ctx)  # before: the broken draw left out, max-sensitivity 0.0197


def test_local_lipschitz_linear_model_known_answer(linear_logit, make_ctx):
    # input x gradient of w.x with w = 2 everywhere is 2x: ||2x - 2x'|| / ||x - x'|| = 2 for every draw
    model = linear_logit(torch.full((1, 8, 8), 2.0))
    x = torch.rand(2, 1, 8, 8)
    explainer = _explainer("input_x_gradient")
    ctx = make_ctx(model, x, explainer(model, x, torch.ones(2, dtype=torch.long)), explainer=explainer)
    assert torch.allclose(LocalLipschitz(nr_samples=3, normalise=False)(ctx).value, torch.full((2,), 2.0), atol=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
def test_all_robustness_metrics_run_2d_3d(tiny_cnn, make_ctx, dims):
    torch.manual_seed(0)
    model = tiny_cnn(dims=dims)
    x = torch.rand(4, 1, *[8] * dims)
    saliency = _explainer("saliency")
    ctx = make_ctx(model, x, saliency(model, x, torch.ones(4, dtype=torch.long)), explainer=saliency)
    for metric in (MaxSensitivity(nr_samples=2), AvgSensitivity(nr_samples=2), LocalLipschitz(nr_samples=2),
                   Continuity(steps=4), RelativeInputStability(nr_samples=2, nan_if_prediction_changes=False),
                   RelativeOutputStability(nr_samples=2, nan_if_prediction_changes=False),
                   # the ReLU'd, pooled features of the tiny CNN have exact zeros: NaN by default
                   RelativeRepresentationStability(nr_samples=2, nan_if_prediction_changes=False, zeros="eps_min")):
        value = metric(ctx).value
        assert value.shape == (4,) and torch.isfinite(value).all() and (value >= 0).all(), metric.name
    assert Consistency()(ctx).value.shape == (4,)


def test_representation_default_is_pre_logits(tiny_cnn):
    import timm

    from faithbench.models.architectures import build_model

    model = tiny_cnn(width=4)
    x = torch.rand(3, 1, 8, 8)
    read = representation_reader(model, x)
    features = read(model, x)
    assert torch.allclose(features, model.pool(model.act(model.conv(x))).flatten(1))
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=2, in_chans=1).eval()
    assert representation_reader(resnet, x)(resnet, x).shape == (3, 512)
    cnn = build_model("small_cnn", 1, 2, (8, 8), width=4, depth=2).eval()
    assert representation_reader(cnn, x)(cnn, x).shape == (3, 8)
    named = representation_reader(cnn, x, "features.0")(cnn, x)
    assert named.shape == (3, 4 * 4 * 4)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        representation_reader(cnn, x, "nope")


def test_uniform_noise_bounded_and_seeded():
    x = torch.zeros(2, 1, 4, 4)
    a = uniform_noise(x, 3, 0.2, torch.Generator().manual_seed(1))
    b = uniform_noise(x, 3, 0.2, torch.Generator().manual_seed(1))
    assert a.shape == (3, 2, 1, 4, 4) and torch.equal(a, b) and a.abs().max() <= 0.2
