"""Ablation-CAM zeroes each channel, as Desai & Ramaswamy 2020 (a held-out review: pytorch-grad-cam sets it to
min - 1e7 on a layer with negative values, and MobileNetV3's map came out up to 9e9, uncorrelated with the paper's)."""

import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import AblationCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from faithbench.explainers import ablation
from faithbench.explainers.cam import raw_cam_class
from faithbench.models import build_model
from faithbench.registry import explainers


def _by_hand(model, layer, x, target, channel_axis=1):
    """Ablation-CAM as the paper: w_c = (S - S_c) / S with channel c zeroed, grid sum_c w_c A_c (B, *grid)."""
    grids = []
    for xi, ti in zip(x, target):
        kept = []
        handle = layer.register_forward_hook(lambda _m, _i, out: kept.append(out.detach().clone()))
        with torch.no_grad():
            score = float(model(xi[None])[0, ti])
        handle.remove()
        acts = kept[0][0].movedim(channel_axis - 1 if channel_axis > 0 else -1, 0)
        weights = []
        for c in range(acts.shape[0]):
            def zero(_m, _i, out, c=c):
                out = out.clone()
                out[(slice(None), c) if channel_axis == 1 else (..., c)] = 0
                return out
            handle = layer.register_forward_hook(zero)
            with torch.no_grad():
                weights.append((score - float(model(xi[None])[0, ti])) / score)
            handle.remove()
        grids.append((torch.tensor(weights).view(-1, *[1] * (acts.ndim - 1)) * acts).sum(0))
    return torch.stack(grids)


def _linear_bottleneck():
    """A conv + BatchNorm with no activation after it (MobileNetV3's linear bottleneck): negative activations."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2, padding=1),
                          nn.BatchNorm2d(5), nn.Conv2d(5, 8, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[3].running_mean.fill_(0.3)
        model[3].bias.copy_(torch.tensor([0.5, -0.4, 0.2, -0.1, 0.3]))
    model.arch_family = "cnn"
    return model


def test_zeroes_channels_on_a_layer_with_negative_values():
    model = _linear_bottleneck()
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = model(x).argmax(1)
        assert model[:4](x).min() < -0.1  # the layer holds negative values
    ours = explainers.get("ablationcam")(target_layer="3", relu=False, batch_size=2)(model, x, target)
    expected = F.interpolate(_by_hand(model, model[3], x, target)[:, None], size=(16, 16), mode="bilinear",
                             align_corners=False)[:, 0]
    assert (ours - expected).abs().max() < 1e-5 * expected.abs().max()
    # pytorch-grad-cam's min - 1e7 is another map here (so the check above can fail): its raw grid, not ours
    library = raw_cam_class(AblationCAM)(model=model, target_layers=[model[3]])
    theirs = torch.as_tensor(library(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target]))
    grid = _by_hand(model, model[3], x, target)
    assert (theirs - grid).abs().max() > 10 * grid.abs().max()


def test_a_vits_channel_is_zeroed_on_every_token():
    torch.manual_seed(0)
    model = build_model("vit_tiny", 1, 3, (24, 24), stem="patch", patch_size=8, embed_dim=24, depth=2,
                        num_heads=2).eval()
    x, target = torch.rand(2, 1, 24, 24, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2])
    ours = explainers.get("ablationcam")(relu=False)(model, x, target)
    tokens = _by_hand(model, model.blocks[-1].norm1, x, target, channel_axis=-1)  # (B, tokens) summed over C
    grid = tokens[:, model.num_prefix_tokens:].reshape(2, 1, 3, 3)
    expected = F.interpolate(grid, size=(24, 24), mode="bilinear", align_corners=False)[:, 0]
    assert (ours - expected).abs().max() < 1e-5 * expected.abs().max()


def test_ablates_batch_size_channels_per_forward_pass():
    model = _linear_bottleneck()
    calls = []
    handle = model.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    try:
        explainers.get("ablationcam")(target_layer="3", batch_size=2)(model, torch.rand(2, 1, 16, 16),
                                                                      torch.tensor([0, 1]))
    finally:
        handle.remove()
    # the CAM's forward, the one for the scores, then per image ceil(5 / 2) ablated batches
    assert calls == [2, 2] + [2, 2, 1] * 2


def test_restores_the_model_when_it_fails(monkeypatch):
    model = build_model("small_cnn", 1, 2, (16, 16), width=4)
    layer = model.features

    def boom(*_a, **_k):
        raise RuntimeError("ablation failed")

    monkeypatch.setattr(ablation.np, "empty", boom)  # inside the ablation loop's setup, hooks registered
    with pytest.raises(RuntimeError, match="ablation failed"):
        explainers.get("ablationcam")()(model, torch.rand(1, 1, 16, 16), torch.tensor([1]))
    assert model.features is layer
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_draws_no_progress_bar(capsys):
    model = _linear_bottleneck()
    explainers.get("ablationcam")(target_layer="3", batch_size=2)(model, torch.rand(1, 1, 16, 16), torch.tensor([0]))
    captured = capsys.readouterr()
    assert "it/s" not in captured.err and "%|" not in captured.err
