"""Scores of a nearly saturated model (a held-out review, F2): the softmax of the target is taken
from float64 logits and kept in float64, so single-patch effects of ~1e-7 below 1 are resolved
(a float32 softmax resolves 6e-8 there: monotonicity_correlation was NaN for 4 of 5 samples).
The references below score one image at a time, with numpy's float64 softmax of the logits."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.metrics.functional import faithfulness_extra as fx
from faithbench.metrics.functional.perturbation import aopc_curve, feature_ranks, seeded

H, W, P = 48, 80, 8  # 6 x 10 whole patches


class Net(nn.Module):
    """The review's 3-class CNN; ``scale`` 2 on the head: f(x) of the target about 0.9999998."""

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = nn.Linear(6, 3)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.5
        self.fc.weight.data *= scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(h.flatten(2).mean(-1))


@pytest.fixture(scope="module")
def saturated():
    torch.manual_seed(1)
    x = torch.rand(5, 1, H, W)
    n = H * W
    saliency = torch.stack([((torch.randperm(n).double() + 0.5 * torch.rand(n, dtype=torch.float64)) / n).float()
                            for _ in range(5)]).view(5, H, W)
    model = Net().eval()
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, saliency, target


def prob64(model: nn.Module, image: np.ndarray, t: int) -> float:
    """The target's softmax in float64 of one image's logits (in the model's dtype)."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        logits = model(torch.as_tensor(image, dtype=dtype)[None])[0].double().numpy()
    z = logits - logits.max()
    return float(np.exp(z[t]) / np.exp(z).sum())


def patch_of(j: int) -> tuple[slice, slice]:
    r, c = divmod(j, W // P)
    return slice(r * P, (r + 1) * P), slice(c * P, (c + 1) * P)


def test_the_model_is_saturated(saturated):
    model, x, _, target = saturated
    with torch.no_grad():
        f0 = model(x).double().softmax(1).gather(1, target[:, None])
    assert 0.999999 < float(f0.min()) and float(f0.max()) < 1 - 1e-8


def test_monotonicity_correlation_of_a_saturated_model_matches_a_float64_reference(saturated):
    """In float64 throughout (the model too: a float32 model's logits differ by batch size at 1e-7,
    which reorders near-equal variances); the old code cast the scores to float32 all the same."""
    model, x, saliency, target = saturated
    model, x = copy.deepcopy(model).double(), x.double()
    draws = 3
    g = torch.Generator().manual_seed(7)
    lo, hi = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
    replacements = torch.stack([lo + (hi - lo) * torch.rand(x.shape, generator=g) for _ in range(draws)])
    ours = fx.monotonicity_correlation(fx.Scorer(ForwardCounter(model), "prob"), x, target, saliency, replacements,
                                       patch=P).double().numpy()
    xn, rn = x.numpy(), replacements.numpy()
    reference = []
    for i in range(5):
        t = int(target[i])
        f0 = prob64(model, xn[i], t)
        attribution, variance = [], []
        for j in range((H // P) * (W // P)):
            rows, cols = patch_of(j)
            attribution.append(float(saliency[i, rows, cols].double().sum()))
            drops = []
            for d in range(draws):
                image = xn[i].copy()
                image[:, rows, cols] = rn[d, i, :, rows, cols]
                drops.append((prob64(model, image, t) - f0) ** 2)
            variance.append(np.mean(drops) / f0 ** 2)
        reference.append(stats.spearmanr(attribution, variance)[0])
    # float32 scores: NaN for most samples (every drop rounded to one of a few values)
    assert not np.isnan(ours).any()
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_aopc_drops_of_a_saturated_model_match_a_float64_reference(saturated):
    """f(x) - f(x^(k)) is of the order of 1e-7: a float32 softmax rounds it to multiples of 6e-8."""
    model, x, saliency, target = saturated
    ranks = feature_ranks(saliency, patch=P, generator=seeded(0, 1))
    background = torch.zeros_like(x)
    curve, _ = aopc_curve(ForwardCounter(model), x, target, ranks, background, steps=6, patch=P)
    xn = x.numpy()
    for i in range(5):
        t = int(target[i])
        image = xn[i].copy()
        f0 = prob64(model, image, t)
        order = [int(ranks[i][patch_of(j)].flatten()[0]) for j in range(60)]
        expected = [0.0]
        for k in range(6):
            rows, cols = patch_of(order.index(k))
            image[:, rows, cols] = 0.0
            expected.append(f0 - prob64(model, image, t))
        assert max(abs(e) for e in expected) > 1e-8  # the drops are not all 0
        np.testing.assert_allclose(curve[i].double().numpy(), expected, rtol=1e-4, atol=1e-12)


def test_metric_classes_return_float64_curves(saturated):
    """The curves of the registered classes stay float64 (curves.parquet stores them so)."""
    from faithbench import create_metric

    model, x, saliency, target = saturated
    ctx = EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                      predict=ForwardCounter(model), explainer=None, seed=0)
    out = create_metric("deletion_auc", steps=4, patch=P)(ctx)
    assert out.curve.dtype == torch.float64 and out.value.dtype == torch.float64
