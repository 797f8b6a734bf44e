"""A held-out review (perturbexp): occlusion's forward passes held batch x batch_size inputs (D1); lime with a
small kernel_width gave all-zero or 1e-33 maps on few patches where 64 patches gave the documented error (D3),
and with n_samples 2 an all-zero map whenever its two coalitions coincided (D5); kernel_shap said nothing of a
regression with fewer samples than patches (D4)."""

from __future__ import annotations

import warnings

import pytest
import torch
from captum.attr import Occlusion
from torch import nn

from faithbench.explainers.perturbation import coalition_spread
from faithbench.registry import explainers


def _tiny_cnn(dims: int) -> nn.Module:
    torch.manual_seed(0)
    conv, pool = (nn.Conv2d, nn.AdaptiveAvgPool2d) if dims == 2 else (nn.Conv3d, nn.AdaptiveAvgPool3d)
    return nn.Sequential(conv(1, 6, 3, padding=1), nn.ReLU(), conv(6, 8, 3, padding=1, stride=2), nn.ReLU(),
                         pool(1), nn.Flatten(), nn.Linear(8, 3)).eval()


def _images(b: int, spatial: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.rand((b, 1, *spatial), generator=torch.Generator().manual_seed(seed))


def _forward_sizes(model: nn.Module, call) -> list[int]:
    sizes: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    try:
        call()
    finally:
        handle.remove()
    return sizes


@pytest.mark.parametrize("spatial, batch_size, positions, sizes", [
    # 32 px, window 8, stride 4: 7 x 7 = 49 positions; 10 a pass: one image at a time, 1 + 10 + ... + 9 each
    ((32, 32), 10, 49, [1, 10, 10, 10, 10, 9] * 4),
    # 16^3: 3^3 = 27 positions
    ((16, 16, 16), 10, 27, [1, 10, 10, 7] * 4),
    # 16 px: 3 x 3 = 9 positions; 64 a pass: 7 images a group (63 occluded copies), then the 4th... the 8th alone
    ((16, 16), 64, 9, [7, 63, 1, 9]),
])
def test_occlusion_forward_passes_hold_at_most_batch_size(spatial, batch_size, positions, sizes):
    """Captum's perturbations_per_eval counts copies per image: the old code sent B x batch_size (40 for 4 images
    and 10) through one pass. The passes still add up to B x (positions + 1) and the map is captum's on the batch."""
    b = 8 if len(sizes) == 4 else 4
    model, x, target = _tiny_cnn(len(spatial)), _images(b, spatial), torch.arange(b) % 3
    explainer = explainers.get("occlusion")(batch_size=batch_size)
    maps: list[torch.Tensor] = []
    got = _forward_sizes(model, lambda: maps.append(explainer(model, x, target)))
    assert got == sizes and max(got) <= batch_size and sum(got) == b * (positions + 1)
    with torch.no_grad():  # the old call: the whole batch at once
        reference = Occlusion(model).attribute(x, sliding_window_shapes=(1, *[8] * len(spatial)),
                                               strides=(1, *[4] * len(spatial)), baselines=0.0, target=target,
                                               perturbations_per_eval=batch_size).mean(1)
    assert reference.abs().max() > 1e-3
    # float rounding of the batched passes: a few float32 steps of the logits (~0.2, 1.5e-8 apart), not of the map
    assert (maps[0] - reference).abs().max() <= 1e-7


def test_coalition_spread_known_answers():
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert coalition_spread(same, torch.tensor([1.0, 2.0, 3.0])) == 0.0
    two = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert coalition_spread(two, torch.tensor([1.0, 1.0])) == pytest.approx(1.0)  # centre (0.5, 0.5): 2 x 0.5
    assert coalition_spread(two, torch.tensor([1.0, 3.0])) == pytest.approx(1.5)  # w1 w2 / (w1 + w2) |z1 - z2|^2
    assert coalition_spread(two, torch.tensor([0.0, 0.0])) == 0.0
    assert coalition_spread(two, torch.tensor([1.0, 1e-31])) == pytest.approx(2e-31)


WEIGHTS_ERROR = (r"^lime: every coalition's weight exp\(-d\^2 / \(2 kernel_width\^2\)\) is 0 with kernel_width {} "
                 r"\(d: the cosine distance to the image\), or all but one coalition's \(the image's own, d = 0\) to "
                 r"float32's resolution, so the fit would give every patch 0; raise kernel_width \(default 0.25\)$")


@pytest.mark.parametrize("kernel_width", [1e-4, 1e-3, 1e-2])
@pytest.mark.parametrize("patch", [8, 2])
def test_lime_refuses_weights_that_leave_one_coalition_whatever_the_patch_count(kernel_width, patch):
    """16 px: 4 patches (the all-kept coalition drawn 5 times of 50, weight 1, the others 0 or ~1e-31: the old code
    returned all-zero and 1e-33 maps) and 64 patches (no coalition weighted: scikit-learn's error, as before)."""
    model, x, target = _tiny_cnn(2), _images(3, (16, 16)), torch.tensor([0, 1, 2])
    lime = explainers.get("lime")(kernel_width=kernel_width, n_samples=50, patch=patch)
    with pytest.raises(ValueError, match=WEIGHTS_ERROR.format(kernel_width)):
        lime(model, x, target)


def test_lime_with_a_kernel_width_that_weights_the_patches_still_fits():
    model, x, target = _tiny_cnn(2), _images(3, (16, 16)), torch.tensor([0, 1, 2])
    maps = explainers.get("lime")(kernel_width=0.05, n_samples=50)(model, x, target)
    assert (maps.flatten(1).abs().amax(1) > 1e-5).all()  # the review saw 2-3.5e-4


def test_lime_draws_again_where_its_coalitions_coincide():
    """n_samples 2 on 4 patches: both coalitions the same for 1 image of these 40 (p = 1/16 each): the old code
    gave it an all-zero map. Drawn again, from the generator's state, so the map is the image's whatever its batch."""
    model, x, target = _tiny_cnn(2), _images(40, (16, 16), seed=7), torch.zeros(40, dtype=torch.long)
    lime = explainers.get("lime")(n_samples=2)
    maps = lime(model, x, target)
    spread = maps.flatten(1).amax(1) - maps.flatten(1).amin(1)
    assert (spread > 0).all(), spread
    assert torch.equal(lime(model, x[5:], target[5:]), maps[5:])
    assert torch.equal(lime(model, x, target), maps)


def test_kernel_shap_warns_once_of_fewer_samples_than_patches():
    model, x, target = _tiny_cnn(2), _images(2, (16, 16)), torch.tensor([0, 1])
    shap = explainers.get("kernel_shap")(n_samples=10, patch=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shap(model, x, target)
        shap(model, x, target)
    assert [str(w.message) for w in caught] == [
        "kernel_shap: n_samples 10 is no more than the 64 patches of the 16 x 16 input, so the regression is "
        "underdetermined (captum's least squares returns one of many fits, not a Shapley estimate); set n_samples "
        "above 64 or a larger patch"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explainers.get("kernel_shap")(n_samples=5, patch=8)(model, x, target)  # 4 patches: determined
