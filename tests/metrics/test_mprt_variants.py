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
from faithbench.metrics.functional.perturbation import seeded
from faithbench.registry import explainers

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
    assert ctx.predict.passes == 3 * 2 * 2 + 2  # sMPRT: 2 models x 3 draws x 2 images; eMPRT: 2 images


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
    raw = torch.randn((4, *x.shape), generator=seeded(0, SALT_SMOOTH)).numpy().astype(np.float64)
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
