"""The CAM family beyond Grad-CAM: equal to pytorch-grad-cam up to its ReLU and scaling, full
depth in 3D, Score-CAM batched (and equal to the library's in 2D), Ablation-CAM and FullGrad tidy."""

import math

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from faithbench.explainers.cam import raw_cam_class
from faithbench.models import build_model
from faithbench.registry import explainers

CAMS_3D = ["gradcam", "gradcam_pp", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam"]


def _full_res_model():
    """A CNN whose layer "2" is at input resolution, so no resizing happens in the comparison."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)).eval()
    model.arch_family = "cnn"
    return model


@pytest.mark.parametrize("name,cls", [("gradcam_pp", GradCAMPlusPlus), ("xgradcam", XGradCAM),
                                      ("hirescam", HiResCAM), ("layercam", LayerCAM)])
def test_equals_library_up_to_relu_and_minmax(name, cls):
    model = _full_res_model()
    x = torch.rand(2, 1, 12, 12)
    ours = explainers.get(name)(target_layer="2")(model, x, torch.tensor([1, 0]))
    lib = cls(model=model, target_layers=[model[2]])
    theirs = lib(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(0)])
    lib.activations_and_grads.release()
    assert np.allclose(scale_cam_image(scale_cam_image(ours.clamp(min=0).numpy())), theirs, atol=1e-5)


def test_hirescam_sums_to_the_logit_minus_bias():
    """Head = global average pool + linear: sum_ij sum_c (w_c / HW) A_cij = logit - b."""
    model = _full_res_model()
    x = torch.rand(2, 1, 12, 12)
    t = torch.tensor([1, 0])
    cam = explainers.get("hirescam")(target_layer="3", relu=False)(model, x, t)  # the signed map sums up
    with torch.no_grad():
        logit = model(x).gather(1, t[:, None])[:, 0] - model[6].bias[t]
    assert torch.allclose(cam.flatten(1).sum(1), logit, atol=1e-5)


def test_scorecam_equals_library_in_2d():
    model = _full_res_model()
    x = torch.rand(2, 1, 12, 12)
    ours = explainers.get("scorecam")(target_layer="2", batch_size=4, relu=False)(model, x, torch.tensor([1, 0]))
    lib = raw_cam_class(ScoreCAM)(model=model, target_layers=[model[2]])
    lib.batch_size = 4
    theirs = lib(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(0)])
    lib.activations_and_grads.release()
    assert np.allclose(ours.numpy(), theirs, atol=1e-5)


def test_scorecam_batches_its_forward_passes():
    model = build_model("small_cnn", 1, 2, (16, 16), width=4)  # 16 channels in the CAM layer
    calls = []
    handle = model.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    try:
        scorecam = explainers.get("scorecam")(batch_size=5)
        scorecam.vetted = True  # as in a run: no support check (its own probe) in the call
        scorecam(model, torch.rand(2, 1, 16, 16), torch.tensor([0, 1]))
    finally:
        handle.remove()
    # find_target_layer's probe, the CAM forward, then per image ceil(16 / 5) masked batches
    assert calls == [1, 2] + [5, 5, 5, 1] * 2
    assert len(calls) == 2 + 2 * math.ceil(16 / 5)


@pytest.mark.parametrize("name", CAMS_3D)
def test_3d_cams_are_full_depth(name):
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 2, (8, 16, 12), width=4).eval()
    x = torch.rand(2, 1, 8, 16, 12)
    cam = explainers.get(name)(batch_size=8) if name == "scorecam" else explainers.get(name)()
    out = cam(model, x, torch.tensor([0, 1]))
    assert out.shape == (2, 8, 16, 12)
    # features ends on 2 x 4 x 3: the last stage inside it with every axis >= 4
    assert cam.last_info == {"target_layer": "features.0", "grid": [4, 8, 6]}
    assert out.mean(dim=(2, 3)).std(dim=1).min() > 0  # varies along depth


def test_ablationcam_weights_are_relative_score_drops():
    """One channel feeding a linear head through global pooling: ablating it removes the whole
    score, so the weight is 1 and the CAM is that channel's activation."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(1, 2, bias=False)).eval()
    with torch.no_grad():
        model[0].bias.fill_(0.1)
        model[4].weight.fill_(1.0)
    model.arch_family = "cnn"
    x = torch.rand(1, 1, 8, 8)
    out = explainers.get("ablationcam")(target_layer="1")(model, x, torch.tensor([1]))
    with torch.no_grad():
        act = model[1](model[0](x))[:, 0]
    assert torch.allclose(out, act, atol=1e-5)


def test_fullgrad_needs_biases_and_is_nonnegative():
    no_bias = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(2, 2))
    no_bias.arch_family = "cnn"
    assert "bias" in explainers.get("fullgrad")().unsupported_reason(no_bias, torch.rand(1, 1, 8, 8))
    model = build_model("small_cnn", 1, 2, (16, 16), width=4).eval()
    fg = explainers.get("fullgrad")()
    out = fg(model, torch.rand(2, 1, 16, 16), torch.tensor([0, 1]))
    assert out.min() >= 0 and out.max() > 1  # raw: a sum of per-map [0, 1] terms, not rescaled
    assert fg.last_info["n_layers"] == 6  # 3 convs + 3 batch norms
