"""Smooth and efficient MPRT: known answers, the sobel control fails, and Quantus 0.6.0 on
identical inputs. For the cross-check Quantus gets our fully randomised model (its own
re-initialisation differs: it resets layers with their initialisers; ours draws N(mean, std²) of
each tensor's trained values, as mprt_cascading), our explainer and our noise draws."""

import math

import numpy as np
import pytest
import torch

from faithbench.metrics import EfficientMPRT, SmoothMPRT
from faithbench.metrics.functional import discrete_entropy, randomized_copy, smoothing_noise, spearman_abs
from faithbench.metrics.functional.mprt import SALT_SMOOTH
from faithbench.registry import explainers
from faithbench.seeds import seeded_rows

quantus = pytest.importorskip("quantus")


def _explainer(name):
    return explainers.get(name)(seed=0)


def test_discrete_entropy_known_answers():
    assert discrete_entropy(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]), n_bins=2).item() == pytest.approx(math.log(2))
    assert discrete_entropy(torch.full((1, 2, 2), 3.0)).item() == 0.0  # one bin
    # 4 distinct values in 4 bins (the maximum closes the last bin): ln 4
    assert discrete_entropy(torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]), n_bins=4).item() == pytest.approx(math.log(4))
    from quantus.functions.complexity_func import discrete_entropy as theirs

    a = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(0))
    ours = discrete_entropy(a, n_bins=37).numpy()
    assert np.allclose(ours, [theirs(a=m.numpy(), x=None, n_bins=37) for m in a], atol=1e-6)


def test_smoothing_noise_scale_and_last_draw():
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 0, 0] = 10.0  # span 10 for sample 0, 0 for sample 1
    eps = smoothing_noise(x, 5, 0.1, torch.Generator().manual_seed(0))
    assert eps.shape == (5, 2, 1, 8, 8) and torch.equal(eps[-1], torch.zeros_like(eps[-1]))
    assert eps[:, 1].abs().max() == 0 and 0.5 < eps[:-1, 0].std() < 1.5  # σ = 0.1 x 10


def test_sobel_control_fails_both(tiny_cnn, make_ctx):
    torch.manual_seed(0)
    model, x = tiny_cnn(), torch.rand(2, 1, 16, 16)
    target = torch.ones(2, dtype=torch.long)
    sobel, saliency = _explainer("sobel"), _explainer("saliency")
    ctx = make_ctx(model, x, sobel(model, x, target), explainer=sobel)
    assert torch.allclose(SmoothMPRT(nr_samples=3)(ctx).value, torch.ones(2), atol=1e-6)  # unchanged: fails
    assert torch.equal(EfficientMPRT()(ctx).value, torch.zeros(2))  # no rise in complexity: fails
    ctx = make_ctx(model, x, saliency(model, x, target), explainer=saliency)
    assert (SmoothMPRT(nr_samples=3)(ctx).value < 0.9).all()
    assert (EfficientMPRT()(ctx).value != 0).all()
    # sMPRT: 2 models x 3 draws x 2 images; eMPRT: 2 images; each: the 1-image trace of the copy's blocks (review
    # random4 F3: not counted)
    assert ctx.predict.passes == 3 * 2 * 2 + 2 + 2 * 1


def test_smooth_mprt_linear_model_known_answer(linear_logit, make_ctx):
    # a linear model's gradient is its weight for every noisy copy: sMPRT = ρ(|w|, |w_random|)
    torch.manual_seed(0)
    model, x = linear_logit(torch.randn(1, 8, 8)), torch.rand(2, 1, 8, 8)
    saliency = _explainer("saliency")
    ctx = make_ctx(model, x, saliency(model, x, torch.ones(2, dtype=torch.long)), explainer=saliency)
    expected = spearman_abs(model.w.detach().expand(2, 8, 8), randomized_copy(model, x).w.detach().expand(2, 8, 8))
    assert torch.allclose(SmoothMPRT(nr_samples=4)(ctx).value, expected, atol=1e-6)


def _patch_quantus(monkeypatch, random_model, raw_draws):
    from quantus.helpers.model.pytorch_model import PyTorchModel

    monkeypatch.setattr(PyTorchModel, "get_random_layer_generator",
                        lambda self, order="top_down", seed=42: iter([("all", random_model)]))
    monkeypatch.setattr(PyTorchModel, "random_layer_generator_length", property(lambda self: 1))
    if raw_draws is not None:
        calls = iter(range(10_000))
        monkeypatch.setattr(np.random, "randn", lambda *shape: raw_draws[next(calls) % len(raw_draws)])


def test_smooth_mprt_equals_quantus(tiny_cnn, make_ctx, monkeypatch):
    torch.manual_seed(0)
    model, x = tiny_cnn(classes=3).eval(), torch.rand(3, 1, 8, 8)
    y = torch.tensor([0, 1, 2])
    saliency = _explainer("input_x_gradient")
    ctx = make_ctx(model, x, saliency(model, x, y), target=y, explainer=saliency)
    ours = SmoothMPRT(nr_samples=4)(ctx).value.numpy()
    # the metric draws each image's noise from its own generator (smooth_mprt 4): Quantus gets the same draws
    raw = torch.cat([torch.randn((4, 1, *x.shape[1:]), generator=g) for g in seeded_rows(0, SALT_SMOOTH, x)], dim=1)
    raw = raw.numpy().astype(np.float64)
    _patch_quantus(monkeypatch, randomized_copy(model, x), list(raw[:-1]))

    def explain(model, inputs, targets, **_kw):
        return saliency(model, torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(targets)).numpy()[:, None]

    monkeypatch.setattr(quantus, "explain", explain)  # SmoothMPRT calls quantus.explain, not explain_func
    theirs = quantus.SmoothMPRT(nr_samples=4, return_last_correlation=True, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None, explain_func=explain, device="cpu")
    assert np.allclose(ours, theirs, atol=1e-4)


def test_efficient_mprt_equals_quantus(tiny_cnn, make_ctx, monkeypatch):
    torch.manual_seed(0)
    model, x = tiny_cnn(classes=3).eval(), torch.rand(3, 1, 8, 8)
    y = torch.tensor([0, 1, 2])
    saliency = _explainer("input_x_gradient")
    ctx = make_ctx(model, x, saliency(model, x, y), target=y, explainer=saliency)
    ours = EfficientMPRT(n_bins=20)(ctx).value.numpy()
    _patch_quantus(monkeypatch, randomized_copy(model, x), None)

    def explain(model, inputs, targets, **_kw):
        return saliency(model, torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(targets)).numpy()[:, None]

    theirs = quantus.EfficientMPRT(complexity_func_kwargs={"n_bins": 20}, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None, explain_func=explain, device="cpu")
    assert np.allclose(ours, theirs, atol=1e-4)


def test_a_constant_map_is_undefined_in_every_randomisation_check(tiny_cnn, make_ctx):
    """Helper 131: an all-zero Grad-CAM (vit_tiny: 8 of 8 maps) scored 0, the best value, bold and starred,
    on mprt_cascading and smooth_mprt, and 1 on random_logit; an all-zero re-explanation scored -1 on
    efficient_mprt. Quantus refuses such maps; each pair with a constant side is now NaN."""
    from faithbench.metrics import MPRTCascading, MPRTIndependent, RandomLogit
    from faithbench.metrics.functional import similarity

    a = torch.rand(3, 8, 8)
    b = torch.stack([torch.rand(8, 8), torch.zeros(8, 8), torch.full((8, 8), -2.0)])
    for name in ("spearman_abs", "ssim", "hog_pearson"):
        value = similarity(a, b, name) if name != "hog_pearson" else similarity(a.repeat(1, 2, 2), b.repeat(1, 2, 2),
                                                                                    name)
        assert not torch.isnan(value[0]) and torch.isnan(value[1:]).all(), name
        assert torch.isnan(similarity(b, a, name) if name != "hog_pearson" else
                           similarity(b.repeat(1, 2, 2), a.repeat(1, 2, 2), name))[1:].all()
    assert spearman_abs(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)).item() == 1  # repeatability keeps its convention

    class Empty:  # an explainer whose maps are all zero, as a Grad-CAM whose ReLU removed everything
        name = "empty"

        def __call__(self, model, x, target):
            return torch.zeros(x.shape[0], *x.shape[2:])

    model, x = tiny_cnn(), torch.rand(2, 1, 8, 8)
    target = torch.zeros(2, dtype=torch.long)
    ctx = make_ctx(model, x, torch.zeros(2, 8, 8), target=target, explainer=Empty())
    for metric in (MPRTCascading(), MPRTIndependent(), RandomLogit(), SmoothMPRT(nr_samples=2), EfficientMPRT()):
        assert torch.isnan(metric(ctx)["value"]).all(), metric.name
    sobel = explainers.get("sobel")()
    ctx = make_ctx(model, x, torch.rand(2, 8, 8) + 0.1, target=target, explainer=Empty())  # varying, then empty
    assert torch.isnan(EfficientMPRT()(ctx)["value"]).all() and torch.isnan(MPRTCascading()(ctx)["value"]).all()
    ctx = make_ctx(model, x, sobel(model, x, target), target=target, explainer=sobel)
    assert MPRTCascading()(ctx)["value"].tolist() == pytest.approx([1.0, 1.0])  # a varying control still fails


def test_mprt_independent_averages_the_blocks_whose_comparison_is_defined(tiny_cnn, make_ctx, monkeypatch):
    """A block whose randomisation leaves a constant map is undefined: the mean is over the other blocks
    (all undefined: NaN), as class_sensitivity's over the other classes."""
    import faithbench.metrics.randomization as randomization
    from faithbench.metrics import MPRTIndependent

    nan = float("nan")
    curve = torch.tensor([[0.2, nan, 0.4], [nan, nan, nan]])
    monkeypatch.setattr(randomization, "independent_randomization_curve", lambda *a, **k: (curve, ["a", "b", "c"]))
    model, x = tiny_cnn(), torch.rand(2, 1, 8, 8)
    sobel = explainers.get("sobel")()
    ctx = make_ctx(model, x, torch.rand(2, 8, 8), target=torch.zeros(2, dtype=torch.long), explainer=sobel)
    value = MPRTIndependent()(ctx)["value"]
    assert value[0].item() == pytest.approx(0.3) and math.isnan(value[1])
