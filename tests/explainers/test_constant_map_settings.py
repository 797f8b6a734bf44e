"""A fuzzing review (clifuzz4 F2, F4): ``faithbench validate`` accepted explainer settings that make every map
constant or all zero (rise ``p: 1``, and ``grid: 1``, a held-out review's; lime ``n_samples: 1``; kernel_shap
``n_samples`` 1 or 2: the cells had no result row, exit 0) and guided_gradcam's ``min_grid: 1e9``, which silently
took the default's layer where every CAM refuses it. Each is refused in one line (exit 2); the value at the limit
gives a varying map."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faithbench.configurable import ParameterError
from faithbench.registry import explainers


@pytest.mark.parametrize("refused, accepted, expected", [
    ("{name: rise, params: {p: 1.0}}", "{name: rise, params: {p: 0.99}}",
     "explainers[0].params: rise: parameter 'p' must be in [5.9604645e-08, 0.99999994] (p is compared with float32 "
     "draws k * 2**-24, k = 0 .. 2**24 - 1: above 1 - 2**-24 every mask keeps the whole image (a constant map), "
     "below 2**-24 a cell is kept only on a draw of exactly 0, whatever p (masks empty: zero maps)), got 1.0"),
    ("{name: rise, params: {grid: 1}}", "{name: rise, params: {grid: 2}}",
     "explainers[0].params: rise: parameter 'grid' must be >= 2 (a 1-cell grid upsampled is all 0 or all 1, so every "
     "mask and every map is constant), got 1"),
    ("{name: lime, params: {n_samples: 1}}", "{name: lime, params: {n_samples: 2}}",
     "explainers[0].params: lime: parameter 'n_samples' must be >= 2 (a ridge fit on one coalition gives every "
     "patch 0, an all-zero map), got 1"),
    ("{name: kernel_shap, params: {n_samples: 2}}", "{name: kernel_shap, params: {n_samples: 3}}",
     "explainers[0].params: kernel_shap: parameter 'n_samples' must be >= 3 (captum's first two coalitions are "
     "every patch and none, which no regression tells apart: with 1 the map is all zero, with 2 constant), got 2"),
    ("{name: guided_gradcam, params: {min_grid: 1000000000}}", "{name: guided_gradcam, params: {min_grid: 32}}",
     "explainers[0].params: guided_gradcam: parameter 'min_grid' = 1000000000 is more than the input's largest "
     "side (32 x 32), so no layer's grid can reach it; expected min_grid <= 32"),
])
def test_validate_refuses_a_constant_map_setting_in_one_line(validate_entry, refused, accepted, expected):
    rc, err, _ = validate_entry(explainer=refused)
    assert (rc, err.count("\n")) == (2, 0) and err.startswith(expected), err
    assert validate_entry(explainer=accepted)[0] == 0


@pytest.mark.parametrize("name, refused, limit", [
    ("rise", {"p": 1.0}, {"p": 0.9, "n_masks": 50, "grid": 4}),
    ("rise", {"grid": 1}, {"grid": 2, "n_masks": 50}),  # a review: grid 1 gave (max - min) / max = 0 on every map
    ("lime", {"n_samples": 1}, {"n_samples": 2, "patch": 4}),
    ("kernel_shap", {"n_samples": 2}, {"n_samples": 3, "patch": 4}),
])
@pytest.mark.filterwarnings("ignore:kernel_shap. n_samples 3 is no more than the 16 patches")  # underdetermined
def test_refused_on_construction_and_the_limit_varies(name, refused, limit):
    with pytest.raises(ParameterError, match=rf"^{name}: parameter '{next(iter(refused))}' must be "):
        explainers.get(name)(**refused)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 2)).eval()
    maps = explainers.get(name)(**limit)(model, torch.rand(2, 1, 16, 16), torch.tensor([1, 0]))
    spread = maps.flatten(1).amax(1) - maps.flatten(1).amin(1)
    assert (spread > 1e-6).all(), spread  # not constant: the map tells patches apart


def test_guided_gradcam_checks_min_grid_as_the_cams_do():
    for name in ("guided_gradcam", "gradcam"):
        assert explainers.get(name)(min_grid=17).check_input((1, 16, 16)) == (
            f"{name}: parameter 'min_grid' = 17 is more than the input's largest side (16 x 16), so no layer's grid "
            "can reach it; expected min_grid <= 16")
        assert explainers.get(name)(min_grid=16).check_input((1, 16, 16)) is None
        assert explainers.get(name)(min_grid=17, target_layer="features").check_input((1, 16, 16)) is None


@pytest.mark.parametrize("name, params, reason", [
    ("occlusion", {"window": 100}, "occlusion: parameter 'window' = 100 covers the whole 48 x 80 input: one occlusion, "
     "so every map would be constant; set window below 80"),
    ("occlusion", {"window": 80}, "occlusion: parameter 'window' = 80 covers the whole 48 x 80 input"),
    ("lime", {"patch": 100}, "lime: parameter 'patch' = 100 gives 1 feature on the 48 x 80 input, so every map "
     "would be constant; set patch below 80"),
    ("kernel_shap", {"patch": 80}, "kernel_shap: parameter 'patch' = 80 gives 1 feature on the 48 x 80 input"),
    ("rise", {"grid": 200}, "rise: parameter 'grid' = 200 has more cells than the 48 x 80 input has pixels along "
     "its largest side; expected grid <= 80"),
    ("gradcam", {"min_grid": 81}, "gradcam: parameter 'min_grid' = 81 is more than the input's largest side (48 x 80)"),
])
def test_a_direct_call_checks_the_parameters_against_the_input_as_validate_does(name, params, reason):
    """A held-out review: called directly, occlusion window 80 / 100 on 48 x 80 and lime patch 100 returned constant
    maps, kernel_shap patch 80 raised torch's Categorical NaN error and rise grid 200 ran; validate refused each."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2)).eval()
    x, target = torch.rand(1, 3, 48, 80), torch.tensor([1])
    explainer = explainers.get(name)(**params)
    assert explainer.check_input((3, 48, 80)).startswith(reason)  # the reason validate gives
    with pytest.raises(ValueError) as caught:
        explainer(model, x, target)
    assert str(caught.value).startswith(reason)
    fitting = {k: v // 4 if k != "min_grid" else 4 for k, v in params.items()}  # a setting that fits
    assert explainers.get(name)(**fitting)(model, x, target).shape == (1, 48, 80)
