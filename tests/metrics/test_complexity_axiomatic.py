"""Complexity and axiomatic metrics: hand-computed answers, and Quantus 0.6.0 on identical inputs.

Differences on purpose: Quantus' Sparseness adds 1e-7 to every value (a shift of ~1e-7 n / Σ a);
its Completeness returns the exact float equality Σ a == f(x) - f(x̄) (we report the gap; the test
compares the pieces); its NonSensitivity returns the count (ours / F) and, on RGB inputs, counts
channel-pixels (ours: pixels with all their channels); its ``normalise_by_max`` takes one maximum
over the batch, so its EffectiveComplexity differs from ours (per-sample maximum) unless the maps
share their maximum;
its InputInvariance moves the shift into the first conv's bias (wrong at zero-padded borders), and
shifts every feature but the first (``perturb_batch`` passes ``indices[i][1:]``), so even a
gradient map fails it; the cross-check gives Quantus a shift of every feature.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from faithbench.metrics import (Completeness, Complexity, EffectiveComplexity, InputInvariance, NonSensitivity,
                                Sparseness)
from faithbench.metrics.functional import complexity, effective_complexity, feature_ids, sparseness
from faithbench.registry import explainers

quantus = pytest.importorskip("quantus")


def test_sparseness_known_answers():
    one_hot = torch.tensor([[[0.0, 0.0], [0.0, 5.0]]])
    assert sparseness(one_hot).item() == pytest.approx(0.75)  # (n - 1) / n
    assert sparseness(torch.ones(1, 2, 2)).item() == pytest.approx(0.0)
    assert sparseness(torch.tensor([[[4.0, 1.0], [3.0, 2.0]]])).item() == pytest.approx(10 / 40)
    assert math.isnan(sparseness(torch.zeros(1, 2, 2)).item())
    with pytest.raises(ValueError, match="non-negative"):
        sparseness(-one_hot)


def test_complexity_known_answers():
    assert complexity(torch.ones(1, 2, 2)).item() == pytest.approx(math.log(4))
    one_feature = complexity(torch.tensor([[[0.0, 0.0], [0.0, 3.0]]])).item()
    assert one_feature == 0.0 and math.copysign(1, one_feature) == 1  # printed 0.0, not -0.0 (review complexity3)
    expected = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    assert complexity(torch.tensor([[[1.0, 1.0, 2.0]]])).item() == pytest.approx(expected)
    assert effective_complexity(torch.tensor([[[0.0, 1e-6, 0.5, 1.0]]]), 1e-5).item() == 2


def test_complexity_metrics_equal_quantus(make_ctx, tiny_cnn):
    torch.manual_seed(0)
    sal = torch.rand(3, 8, 8) - 0.3  # signed: both take abs
    sal = sal / sal.abs().flatten(1).amax(1)[:, None, None]  # per-sample max |s| = 1 (= the batch's)
    sal[0, :4] = 0.0  # exact zeros for effective complexity
    ctx = make_ctx(tiny_cnn(), torch.rand(3, 1, 8, 8), sal)
    kw = dict(model=None, x_batch=np.zeros((3, 1, 8, 8), np.float32), y_batch=np.zeros(3, int),
              a_batch=sal[:, None].numpy().copy())
    theirs = np.array(quantus.Sparseness(disable_warnings=True)(**kw))
    assert np.allclose(Sparseness()(ctx).value.numpy(), theirs, atol=1e-5)
    kw["a_batch"] = sal[:, None].numpy().copy()
    theirs = np.array(quantus.Complexity(disable_warnings=True)(**kw))
    assert np.allclose(Complexity()(ctx).value.numpy(), theirs, atol=1e-4)
    kw["a_batch"] = sal[:, None].numpy().copy()
    theirs = np.array(quantus.EffectiveComplexity(eps=0.1, disable_warnings=True)(**kw))
    ours = EffectiveComplexity(eps=0.1)(ctx).value.numpy()
    assert np.array_equal(ours, theirs) and ours[0] < 40


def test_effective_complexity_per_sample_maximum_not_quantus_batch_maximum(make_ctx, tiny_cnn):
    # one peaked map: Quantus divides every map by the batch's maximum 10, ours each by its own
    sal = torch.tensor([[[0.2, 0.6], [0.8, 1.0]], [[0.9, 0.7], [0.55, 1.0]], [[10.0, 0.0], [0.0, 0.0]]])
    ours = EffectiveComplexity(eps=0.5)(make_ctx(tiny_cnn(), torch.rand(3, 1, 2, 2), sal)).value
    assert ours.tolist() == [3.0, 4.0, 1.0]

    def theirs(maps):
        return [int(v) for v in quantus.EffectiveComplexity(eps=0.5, disable_warnings=True)(
            model=None, x_batch=np.zeros((len(maps), 1, 2, 2), np.float32), y_batch=np.zeros(len(maps), int),
            a_batch=maps[:, None].numpy().copy())]

    assert theirs(sal) == [0, 0, 1]  # a sample's count depends on its batchmates
    assert [theirs(sal[i: i + 1])[0] for i in range(3)] == [3, 4, 1]  # one sample per call: ours


def test_non_sensitivity_rgb_features_are_pixels_not_channel_pixels(linear_logit, make_ctx):
    # channel 1 has no weight: each of its channel-pixels is a Quantus feature without effect
    w = torch.ones(3, 5, 5)
    w[1] = 0.0
    model, x = linear_logit(w).eval(), torch.full((1, 3, 5, 5), 0.5)  # Quantus asks for eval mode
    sal = torch.ones(1, 5, 5)
    sal[0, :2] = 0.0  # 10 pixels without attribution
    ours = NonSensitivity(score="logit")(make_ctx(model, x, sal)).value.item()
    assert ours == pytest.approx(10 / 25)  # every pixel moves the output; the 10 unattributed ones break the rule
    theirs = quantus.NonSensitivity(perturb_baseline=0.0, normalise=False, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=np.ones(1, int), a_batch=sal[:, None].numpy(), softmax=False,
        device="cpu")
    assert int(theirs[0]) == 30 + 25 - 2 * 10  # {unattributed: 3 x 10} Δ {no effect: channel 1, 25}


def test_feature_ids_raster_patches():
    ids, n = feature_ids((3, 4), 2)
    assert n == 4 and ids.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3]]


def test_non_sensitivity_known_answer(linear_logit, make_ctx):
    # w = [[1, 0], [0, 1]]: replacing a w = 0 pixel never moves the output, the others do (x = 1)
    model = linear_logit(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
    x = torch.ones(1, 1, 2, 2)
    sal = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    # zero attribution at (1,0), (1,1); no effect at (0,1), (1,0): symmetric difference {(1,1), (0,1)}
    assert NonSensitivity()(make_ctx(model, x, sal)).value.item() == pytest.approx(2 / 4)
    exact = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # |w| itself: no violation
    assert NonSensitivity()(make_ctx(model, x, exact)).value.item() == 0.0
    # 2 x 2 patches of a 4 x 4 image: 4 forward passes
    # (x = 0.1: the softmax is not saturated, so every patch moves it by more than eps)
    ctx = make_ctx(linear_logit(torch.ones(1, 4, 4)), torch.full((1, 1, 4, 4), 0.1), torch.ones(1, 4, 4))
    assert NonSensitivity(patch=2)(ctx).value.item() == 0.0 and ctx.predict.passes == 1 + 4


def test_non_sensitivity_equals_quantus(tiny_cnn, make_ctx):
    torch.manual_seed(0)
    model = tiny_cnn(classes=3).eval()
    x = torch.rand(2, 1, 6, 6)
    sal = torch.rand(2, 6, 6)
    sal[sal < 0.4] = 0.0  # exact zeros: 'no attribution'
    sal = sal / sal.flatten(1).amax(1)[:, None, None]
    y = torch.tensor([0, 2])
    ours = NonSensitivity(eps=1e-3)(make_ctx(model, x, sal, target=y)).value.numpy()
    theirs = np.array(quantus.NonSensitivity(eps=1e-3, perturb_baseline=0.0, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=sal[:, None].numpy(), device="cpu"))
    assert np.allclose(ours * 36, theirs)


def test_completeness_known_answer_and_quantus_pieces(linear_logit, make_ctx):
    torch.manual_seed(0)
    w = torch.linspace(0.5, 2.0, 16).reshape(1, 4, 4)
    model = linear_logit(w).eval()  # Quantus asks for eval mode
    x = torch.rand(2, 1, 4, 4)
    target = torch.ones(2, dtype=torch.long)
    ig = explainers.get("integrated_gradients")(seed=0)
    ctx = make_ctx(model, x, ig(model, x, target), explainer=ig)
    assert torch.allclose(Completeness()(ctx).value, torch.zeros(2), atol=1e-5)  # IG is complete
    saliency = explainers.get("saliency")(seed=0)(model, x, target)  # |w|: Σ s = Σ w
    gap = Completeness()(make_ctx(model, x, saliency)).value
    assert torch.allclose(gap, (w.sum() - (w * x).flatten(1).sum(1)).abs(), atol=1e-5)
    seen = []
    theirs = quantus.Completeness(normalise=False, perturb_baseline=0.0, disable_warnings=True,
                                  output_func=lambda d: seen.append(d) or d)(
        model=model, x_batch=x.numpy(), y_batch=target.numpy(), a_batch=saliency[:, None].numpy(), device="cpu")
    assert theirs == [False, False]  # Quantus: exact equality, not a gap
    assert np.allclose(np.abs(saliency.flatten(1).sum(1).numpy() - seen[0]), gap.numpy(), atol=1e-5)


class _Unpadded(nn.Module):
    def __init__(self, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=padding)
        self.fc = nn.Linear(2 * (8 - 2 + 2 * padding) ** 2, 2)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


@pytest.mark.parametrize("name, invariant", [("saliency", 1.0), ("input_x_gradient", 0.0)])
def test_input_invariance_known_answer_and_quantus(make_ctx, name, invariant):
    torch.manual_seed(0)
    model = _Unpadded().eval()
    x = torch.rand(2, 1, 8, 8)
    target = torch.tensor([0, 1])
    explainer = explainers.get(name)(seed=0)
    ctx = make_ctx(model, x, explainer(model, x, target), target=target, explainer=explainer)
    ours = InputInvariance()(ctx).value
    assert ours.tolist() == [invariant] * 2

    def explain(model, inputs, targets, **_kw):
        return explainer(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None]

    def shift_all(arr, input_shift, **_kw):
        return arr + input_shift

    kw = dict(model=model, x_batch=x.numpy(), y_batch=target.numpy(), a_batch=ctx.saliency[:, None].numpy(),
              explain_func=explain, device="cpu")
    theirs = quantus.InputInvariance(perturb_func=shift_all, disable_warnings=True)(**kw)
    assert [float(v) for v in theirs] == ours.tolist()
    # Quantus' own shift leaves the first feature unshifted: every explainer fails
    assert [float(v) for v in quantus.InputInvariance(disable_warnings=True)(**kw)] == [0.0, 0.0]


def test_input_invariance_exact_with_zero_padding(tiny_cnn, make_ctx):
    # the pre-hook shift is exact at zero-padded borders too (a bias cannot be: the border sees zeros)
    torch.manual_seed(0)
    model, x = tiny_cnn(), torch.rand(2, 1, 8, 8)
    explainer = explainers.get("saliency")(seed=0)
    ctx = make_ctx(model, x, explainer(model, x, torch.ones(2, dtype=torch.long)), explainer=explainer)
    assert InputInvariance()(ctx).value.tolist() == [1.0, 1.0]
    assert ctx.predict.passes == 2  # the re-explanation's forward is counted


def test_input_invariance_draws_x_plus_c_at_the_noise_of_x(make_ctx):
    # helper 115: SmoothGrad seeded x + c from its own bytes and scored 0 on every sample, though at
    # equal noise its maps of x under f1 and of x + c under f2 are equal (Kindermans et al.: the
    # gradient is input invariant, so is its average over the same noise); random still fails
    torch.manual_seed(0)
    model, x, target = _Unpadded().eval(), torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 0])
    for name, invariant in (("smoothgrad", 1.0), ("random", 0.0)):
        explainer = explainers.get(name)(seed=0)
        ctx = make_ctx(model, x, explainer(model, x, target), target=target, explainer=explainer)
        assert InputInvariance()(ctx).value.tolist() == [invariant] * 3
        assert explainer._seed_aliases == {}  # restored after the re-explanation
    smoothgrad = explainers.get("smoothgrad")(seed=0)
    with smoothgrad.draws_of(x + 1.0, x):  # the same draws give the same map of another image's noise
        moved = smoothgrad(model, x + 1.0, target)
    assert not torch.equal(moved, smoothgrad(model, x + 1.0, target))


class _Kink(nn.Module):
    """Logit 0 = sum relu(x - kink) + w . x: its gradient is w + 1 where x > kink, so an ulp above the kink
    changes the map."""

    def __init__(self, kink):
        super().__init__()
        self.kink = nn.Parameter(kink.clone(), requires_grad=False)
        self.w = nn.Parameter(torch.linspace(0.1, 1.0, kink[0].numel()).view_as(kink[0]), requires_grad=False)

    def forward(self, x):
        logit = torch.relu(x - self.kink).flatten(1).sum(1) + (self.w * x).flatten(1).sum(1)
        return torch.stack([logit, -logit], 1)


def test_input_invariance_gives_the_model_x_itself_not_x_plus_c_minus_c(make_ctx):
    """A held-out review: (x + c) - c is not x in float32 (1977 of 4096 phantom pixels an ulp off); an ulp
    that crosses a ReLU's kink moved the gradient map by 1.7e-3 of its maximum, and the plain gradient,
    invariant in theory, scored 0 on 1 of 12 samples."""
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5
    assert not torch.equal((x - 1.0) + 1.0, x)  # the round trip moves some pixels across the kink at x
    model, target = _Kink(x).eval(), torch.zeros(3, dtype=torch.long)
    explainer = explainers.get("saliency")(seed=0)
    ctx = make_ctx(model, x, explainer(model, x, target), target=target, explainer=explainer)
    assert InputInvariance()(ctx).value.tolist() == [1.0, 1.0, 1.0]
    assert InputInvariance(shift=2.5)(ctx).value.tolist() == [1.0, 1.0, 1.0]
