"""A held-out review (perturbexp): occlusion's forward passes held batch x batch_size inputs (D1); lime with a
small kernel_width gave all-zero or 1e-33 maps on few patches where 64 patches gave the documented error (D3),
and with n_samples 2 an all-zero map whenever its two coalitions coincided (D5); kernel_shap said nothing of a
regression with fewer samples than patches (D4)."""

from __future__ import annotations

import pytest
import torch
from captum.attr import Occlusion
from torch import nn

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
