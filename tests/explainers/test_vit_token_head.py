"""A gradient CAM on a ViT layer whose patch tokens get no gradient is refused (a held-out review: on timm's
``vit_tiny_patch16_224``, whose head reads only the class token, ``target_layer: norm`` gave an all-zero Grad-CAM,
silently). Every layer after the last block's attention mixing is such a layer; the default ``blocks.-1.norm1``,
a head that pools the patch tokens and the gradient-free CAMs are not touched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from faithbench.registry import explainers

timm = pytest.importorskip("timm")

GRADIENT_CAMS = ["gradcam", "gradcam_pp", "xgradcam", "layercam", "hirescam"]


def _vit(pool: str) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2, num_classes=3,
                             global_pool=pool).eval()


@pytest.fixture(scope="module")
def token_vit():
    return _vit("token")


def _explain(model: nn.Module, name: str, layer: str | None) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    return explainers.get(name)(target_layer=layer)(model, x, torch.tensor([0, 2]))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def _grad_cam(model: nn.Module, layer: str) -> torch.Tensor:
    """Grad-CAM of the 2 x 2 patch grid of ``layer``'s tokens, by hand: ReLU(sum_c mean_ij(dS/dA_c) A_c), upsampled."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    saved = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: saved.update(tokens=out))
    logits = model(x)
    handle.remove()
    grads = torch.autograd.grad(logits[0, 0] + logits[1, 2], saved["tokens"])[0][:, 1:]
    cam = (grads.mean(1, keepdim=True) * saved["tokens"][:, 1:].detach()).sum(-1).clamp(min=0).view(2, 1, 2, 2)
    return F.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]


@pytest.mark.parametrize("name", GRADIENT_CAMS)
def test_the_final_norm_of_a_class_token_vit_is_refused(token_vit, name):
    with pytest.raises(ValueError) as err:
        _explain(token_vit, name, "norm")
    assert str(err.value) == (
        f"{name}: target_layer 'norm' receives no gradient on its patch tokens (sample 0 of the batch; its class "
        "token does): the head reads only the class token after it, so every map of the patch grid would be 0; "
        "choose a layer before the last block's attention, e.g. the default blocks.-1.norm1")
    assert _hooks(token_vit) == 0


@pytest.mark.parametrize("layer", ["blocks.1", "blocks.1.attn", "blocks.1.norm2", "blocks.1.mlp"])
def test_every_layer_after_the_last_attention_is_refused(token_vit, layer):
    with pytest.raises(ValueError, match=f"target_layer '{layer}' receives no gradient on its patch tokens"):
        _explain(token_vit, "gradcam", layer)


@pytest.mark.parametrize(("layer", "expected_layer"), [(None, "blocks.1.norm1"), ("blocks.0", "blocks.0")])
def test_the_default_layer_and_earlier_ones_keep_their_map(token_vit, layer, expected_layer):
    got = _explain(token_vit, "gradcam", layer)
    expected = _grad_cam(token_vit, expected_layer)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_a_head_that_pools_the_patch_tokens_accepts_norm():
    vit = _vit("avg")
    got = _explain(vit, "gradcam", "norm")
    expected = _grad_cam(vit, "norm")
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("name", ["scorecam", "ablationcam", "eigencam"])
def test_the_gradient_free_cams_still_run_on_norm(token_vit, name):
    assert _explain(token_vit, name, "norm").abs().max() > 1e-3


class _Constant(nn.Module):
    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled[:, :3] * 0.0 + 1.0


def test_a_score_that_does_not_depend_on_the_layer_is_not_refused():
    """No gradient anywhere (not the class token's either): nothing says the head reads the class token only."""
    vit = _vit("token")
    vit.head = _Constant()
    assert _explain(vit, "gradcam", "norm").abs().max() == 0


def test_a_run_records_the_refusal_as_a_failed_cell(tmp_path, capsys):
    import pandas as pd

    from faithbench.cli import EXIT_PARTIAL, main

    model = {"name": "timm:vit_tiny_patch16_224", "params": {"img_size": 32, "depth": 1},
             "recipe": {"epochs": 1, "batch_size": 16}}
    suite = {"name": "vit_norm", "samples": 4, "batch_size": 4, "models": [model],
             "datasets": [{"name": "phantom_cxr", "params": {"n": 16, "size": 32}}],
             "explainers": [{"name": "gradcam", "alias": "gradcam_norm", "params": {"target_layer": "norm"}},
                            "gradcam"],
             "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == EXIT_PARTIAL == 3
    assert "partial run: 1 failures in 1 cells" in capsys.readouterr().err
    failures = pd.read_csv(out / "failures.csv")
    assert failures[["explainer", "stage", "error_type"]].values.tolist() == [["gradcam_norm", "explain", "ValueError"]]
    assert failures["message"][0].startswith("gradcam: target_layer 'norm' receives no gradient on its patch tokens")
    results = pd.read_csv(out / "results.csv")
    assert results.groupby("explainer").size().to_dict() == {"gradcam": 4}
