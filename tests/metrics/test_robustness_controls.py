"""The controls on a trained model: the ``random`` control (an independent U[0, 1) map per call)
must be the least robust explainer on every robustness metric whose definition makes that claim
(max/avg sensitivity, local Lipschitz, continuity), at the ``metrics`` suite's settings.

A small_cnn is trained briefly on phantom_cxr (the suite's dataset and architecture: narrower, on
480 images, with a lesion contrast of 0.6 instead of 0.35 so that 6 epochs learn it). The claim
rests on a small perturbation (Yeh et al. 2019): an explainer that is continuous in x has a
sensitivity that goes to 0 with the radius, while the random control's stays at sqrt(1/2) ≈ 0.71
(E||u - u'||² / E||u||² = (1/6) / (1/3)) at any radius. At Quantus' radius 0.2 (noise of std
0.115 on images in [0, 1], ~4x the phantoms' own pixel noise) Grad-CAM moved more than the
random control on the suite's model (docs/results.md).
"""

import math

import pytest
import torch

from faithbench.metrics import (AvgSensitivity, Continuity, LocalLipschitz, MaxSensitivity, RelativeInputStability,
                                RelativeOutputStability)
from faithbench.metrics.base import EvalContext, ForwardCounter
from faithbench.models.architectures import small_cnn
from faithbench.models.training import Recipe, train_model
from faithbench.registry import datasets, explainers

# the metrics suite's robustness settings (faithbench/suites/metrics.yaml)
SUITE = {
    "max_sensitivity": MaxSensitivity(nr_samples=4, radius=0.02, nan_if_prediction_changes=True),
    "avg_sensitivity": AvgSensitivity(nr_samples=4, radius=0.02, nan_if_prediction_changes=True),
    "local_lipschitz": LocalLipschitz(nr_samples=4, std=0.01, nan_if_prediction_changes=True),
    "continuity": Continuity(steps=8),
}


@pytest.fixture(scope="module")
def trained():
    data = {split: datasets.get("phantom_cxr")(split=split, n=n, lesion_contrast=0.6)
            for split, n in (("train", 480), ("val", 96), ("test", 16))}
    torch.manual_seed(0)
    model = small_cnn(1, 2, (64, 64), width=8, depth=3)
    x_train, y_train = data["train"].tensors()
    x_val, y_val = data["val"].tensors()
    train_model(model, x_train, y_train, x_val, y_val, Recipe(epochs=6, lr=0.003, batch_size=32), seed=0)
    model.eval()
    x, y = data["test"].tensors()
    with torch.no_grad():
        target = model(x).argmax(1)
    assert (target == y).float().mean() >= 0.85  # the model must have learnt the lesion for the claim to mean much
    return model, x, target


def _ctx(model, x, target, name):
    explainer = explainers.get(name)(seed=0)
    saliency = explainer(model, x, target).detach().float()
    return EvalContext(model=model, x=x, target=target, label=target, saliency=saliency, masks={},
                       predict=ForwardCounter(model), explainer=explainer, seed=0)


def _mean(value):
    value = value[torch.isfinite(value)]
    assert len(value) > 0
    return float(value.mean())


@pytest.mark.parametrize("metric", list(SUITE))
def test_random_control_is_least_robust_at_the_suite_settings(trained, metric):
    model, x, target = trained
    scores = {name: _mean(SUITE[metric](_ctx(model, x, target, name)).value) for name in ("gradcam", "random")}
    assert scores["random"] > scores["gradcam"], scores


def test_sensitivity_shrinks_with_the_radius_except_for_random(trained):
    model, x, target = trained
    for name in ("gradcam", "random"):
        ctx = _ctx(model, x, target, name)
        small = _mean(MaxSensitivity(nr_samples=4, radius=0.02)(ctx).value)
        large = _mean(MaxSensitivity(nr_samples=4, radius=0.2)(ctx).value)
        if name == "random":  # independent noise: the same ≈ sqrt(1/2) at every radius
            assert small == pytest.approx(math.sqrt(0.5), abs=0.03) and large == pytest.approx(math.sqrt(0.5), abs=0.03)
        else:
            assert small < 0.5 * large


def test_relative_stability_is_undefined_for_maps_with_zeros(trained):
    # Grad-CAM maps (ReLU) have exact zeros: NaN by default, a number of order 1 / eps_min with
    # Quantus' convention; the random control's maps have none: a value either way
    model, x, target = trained
    gradcam, random = _ctx(model, x, target, "gradcam"), _ctx(model, x, target, "random")
    assert (gradcam.saliency.flatten(1) == 0).any(1).all()
    assert torch.isnan(RelativeOutputStability(nr_samples=2)(gradcam).value).all()
    quantus_like = RelativeOutputStability(nr_samples=2, zeros="eps_min")(gradcam).value
    assert (quantus_like[torch.isfinite(quantus_like)] > 1e3).all()
    assert torch.isfinite(RelativeOutputStability(nr_samples=2, nan_if_prediction_changes=False)(random).value).all()
    # the phantom's background is exactly 0: (x - x') / x is undefined, RIS too
    assert torch.isnan(RelativeInputStability(nr_samples=2, nan_if_prediction_changes=False)(random).value).all()
    # zeros: skip (the metrics suite's): over the defined entries, a finite value for both
    for ctx in (gradcam, random):
        skip = RelativeInputStability(nr_samples=2, nan_if_prediction_changes=False, zeros="skip")(ctx).value
        assert torch.isfinite(skip).all() and (skip > 0).all()
