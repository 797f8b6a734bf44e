"""validate builds your own model on the meta device and feeds it one image of the dataset's shape
(a held-out review: a Conv2d network on 3D volumes and a missing target_layer passed validate, and
the run failed after loading the data)."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from faithbench.cli import main
from faithbench.model_checks import _meta_failure

NETS = """
    import torch
    from torch import nn


    def flat_net(in_chans, num_classes, *, width=4, extra_outputs=0):
        return nn.Sequential(nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(width, num_classes + extra_outputs))


    class Pair(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):  # logits and features, as many research networks return
            return self.net(x), x.mean()


    def pair_net(in_chans, num_classes):
        return Pair(flat_net(in_chans, num_classes))


    class Sorting(nn.Module):
        def forward(self, x):  # data-dependent: the meta device cannot say
            return x.flatten(1)[:, :2] * 0 + torch.nonzero(x.flatten(1)[:1, :1] >= 0).shape[0]


    def sorting(in_chans, num_classes):
        return Sorting()


    class TinyAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x):  # attention between the positions of a (B, C, h, w) map
            t = x.flatten(2)
            weights = self.softmax((t.transpose(1, 2) @ t)[:, None])  # (B, 1, hw, hw): reads as a grid
            return x + (t @ weights[:, 0]).view_as(x)


    class Spare(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.spare = net, nn.Conv2d(4, 4, 1)

        def forward(self, x):  # never calls self.spare
            return self.net(x)


    def spare_net(in_chans, num_classes):
        return Spare(flat_net(in_chans, num_classes))


    def attention_net(in_chans, num_classes):
        return nn.Sequential(nn.Conv2d(in_chans, 4, 3, stride=4, padding=1), TinyAttention(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))
"""


@pytest.fixture
def nets(tmp_path, monkeypatch):
    (tmp_path / "review_nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "review_nets", raising=False)
    return tmp_path


def _validate(tmp_path, capsys, dataset: str, model: str, explainer: str = "saliency") -> tuple[int, str]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: own
        datasets: [{dataset}]
        models: [{{name: "{model}", recipe: default}}]
        explainers: [{explainer}]
        metrics: [deletion_auc]
    """))
    rc = main(["validate", str(suite)])
    return rc, capsys.readouterr().err.strip()


def test_a_2d_network_of_your_own_on_volumes_is_refused(nets, capsys):
    rc, err = _validate(nets, capsys, "phantom_organ3d", "review_nets:flat_net")
    assert rc == 2 and err.count("\n") == 0
    assert "models[0]: 'review_nets:flat_net' for dataset 'phantom_organ3d' (1 channel, size (32, 32, 32)) " \
           "fails on an image of that shape: RuntimeError: Expected 3D (unbatched) or 4D (batched) input to " \
           "conv2d" in err


def test_a_network_built_for_other_channels_says_what_it_takes(nets, capsys):
    """A held-out review: the meta device's "Invalid channel dimensions" never said the network takes
    another number of channels than the data has."""
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:flat_net")
    assert rc == 0, err
    suite = nets / "suite.yaml"
    suite.write_text(suite.read_text().replace('recipe: default', 'recipe: default, params: {in_chans: 3}'))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith(
        "(its first convolution takes 3 channels, the data has 1: give the dataset 3 channels where it has that "
        "parameter, pick 3 of the image's channels with preprocess: {channels: [...]}, or build the network for "
        "1 channel)")


def test_logits_of_the_wrong_shape_are_refused(nets, capsys):
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:flat_net", "saliency")
    assert rc == 0, err  # the same network on 2D images passes
    suite = nets / "suite.yaml"
    suite.write_text(suite.read_text().replace('recipe: default', 'recipe: default, params: {extra_outputs: 1}'))
    assert main(["validate", str(suite)]) == 2
    assert "expected logits of shape (batch, 2), got (1, 3) for a batch of 1" in capsys.readouterr().err
    # helper 129: a single-logit binary head (BCEWithLogits) got no hint
    suite.write_text(suite.read_text().replace('{extra_outputs: 1}', '{extra_outputs: -1}'))
    assert main(["validate", str(suite)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "got (1, 1) for a batch of 1 (a single-logit binary head: have its forward return "
        "torch.cat([torch.zeros_like(z), z], 1), whose softmax is [1 - sigmoid(z), sigmoid(z)]; docs/models.md)")


def test_a_network_that_returns_a_tuple_is_refused(nets, capsys):
    """A held-out review: a forward returning (logits, features) passed validate; then every cell
    failed with "AttributeError: 'tuple' object has no attribute 'to'", exit 1."""
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:pair_net", "saliency")
    assert rc == 2 and err.count("\n") == 0
    assert err.endswith("fails on an image of that shape: expected the network to return one logits tensor of shape "
                        "(batch, 2), got a tuple of 2 items (wrap it in a module whose forward returns the logits)")


def test_a_target_layer_your_model_lacks_is_refused(nets, capsys):
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:flat_net", "{name: gradcam, params: "
                        "{target_layer: layer4}}")
    assert rc == 2 and "explainers[0].params.target_layer: 'layer4' is not a module of model " \
                       "'review_nets:flat_net'; its top-level modules: 0, 1, 2, 3, 4" in err
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:flat_net", "{name: gradcam, params: "
                        "{target_layer: '0'}}")
    assert rc == 0, err


def test_a_target_layer_inside_an_attention_module_is_refused(nets, capsys):
    """A held-out review: Swin's attention softmax passed as a feature map (its weights read as a grid)."""
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:attention_net", "{name: gradcam, params: "
                        "{target_layer: '1.softmax'}}")
    assert rc == 2 and "explainers[0].params.target_layer: '1.softmax' is inside the attention module '1' " \
                       "(TinyAttention), whose parts output attention weights or tokens: not a (B, C, *grid) " \
                       "feature map (model 'review_nets:attention_net'" in err and "\n" not in err
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:attention_net", "{name: gradcam, params: "
                        "{target_layer: '1'}}")
    assert rc == 0, err  # the attention module's own output is the feature map


VIT_HINT = ("choose a block or its norm1 by index (e.g. 'blocks.0', 'blocks.-2.norm1'; default: the last block's, "
            "'blocks.-1.norm1')")


@pytest.mark.parametrize("layer", ["blocks.0.attn.qkv", "blocks.0.attn.attn_drop", "blocks.-4.attn.qkv"])
def test_a_vit_target_layer_inside_its_attention_module_is_refused(nets, capsys, layer):
    """A held-out review: timm's qkv passed validate and gave a map of q, k and v read as channels. Negative
    block indices are read as in Python (vit_tiny has 4 blocks), the attention part named as the model names it."""
    explainer = f"{{name: scorecam, params: {{target_layer: {layer}}}}}"
    rc, err = _validate(nets, capsys, "phantom_cxr", "vit_tiny", explainer)
    assert rc == 2 and "\n" not in err
    assert err.endswith(f"explainers[0].params.target_layer: {layer!r} is inside the attention module 'blocks.0.attn' "
                        "(Attention), whose parts output attention weights or tokens: not a block's (B, N, C) tokens "
                        f"(model 'vit_tiny', dataset 'phantom_cxr'); {VIT_HINT}")


def test_a_vit_target_layer_whose_output_is_no_tokens_is_refused(nets, capsys):
    """A held-out review: ``head`` passed validate; the run's cells failed with an IndexError in the reshape."""
    rc, err = _validate(nets, capsys, "phantom_cxr", "vit_tiny", "{name: gradcam, params: {target_layer: head}}")
    assert rc == 2 and "\n" not in err
    assert err.endswith("explainers[0].params.target_layer: 'head' outputs (1, 2) for a batch of 1: not (B, N, C) "
                        "tokens, N = 1 prefix + 8 x 8 grid cells = 65 (model 'vit_tiny', dataset 'phantom_cxr'); "
                        f"{VIT_HINT}")
    for layer in ["blocks.0", "blocks.3.norm1", "blocks.0.attn", "norm", "blocks.-2.norm1"]:  # tokens: accepted
        explainer = f"{{name: gradcam, params: {{target_layer: {layer}}}}}"
        rc, err = _validate(nets, capsys, "phantom_cxr", "vit_tiny", explainer)
        assert rc == 0, (layer, err)


def test_a_negative_block_index_past_the_first_block_is_not_a_module(nets, capsys):
    """Negative block indices count from the end (``blocks.-2.norm1`` is accepted above); one past the first block
    (vit_tiny has 4) names no module."""
    rc, err = _validate(nets, capsys, "phantom_cxr", "vit_tiny", "{name: gradcam, params: {target_layer: blocks.-5}}")
    assert rc == 2 and "\n" not in err
    assert "explainers[0].params.target_layer: 'blocks.-5' is not a module of model 'vit_tiny'" in err


def test_a_target_layer_the_forward_pass_never_calls_is_refused(nets, capsys):
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:spare_net", "{name: gradcam, params: "
                        "{target_layer: spare}}")
    assert rc == 2 and "\n" not in err
    assert err.endswith("explainers[0].params.target_layer: 'spare' is never called by Spare's forward pass, so it has "
                        "no output to read (model 'review_nets:spare_net', dataset 'phantom_cxr'); choose a "
                        "convolutional stage")
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:spare_net", "{name: gradcam, params: "
                        "{target_layer: net.0}}")
    assert rc == 0, err


def test_what_the_meta_device_cannot_run_is_not_an_error(nets):
    import review_nets

    assert _meta_failure(review_nets.sorting(1, 2), 1, (8, 8), 2) is None  # nonzero: data-dependent
    with pytest.raises(Exception):  # on meta it raises, so the check above had something to swallow
        with torch.no_grad():
            review_nets.Sorting()(torch.empty((1, 1, 8, 8), device="meta"))
    assert "conv2d" in _meta_failure(review_nets.flat_net(1, 2), 1, (8, 8, 8), 2)


def test_a_builder_the_meta_device_cannot_run_is_not_an_error(nets, capsys):
    """A review of the meta build: DeiT/Swin/ConvNeXt-style builders read a drop-path schedule with
    .item() while building, which the meta device refuses; that says nothing about real data."""
    (nets / "review_nets.py").write_text((nets / "review_nets.py").read_text() + textwrap.dedent("""

        def drop_path_net(in_chans, num_classes, *, depth=2, rate=0.1):
            rates = [r.item() for r in torch.linspace(0, rate, depth)]
            assert len(rates) == depth
            return flat_net(in_chans, num_classes)
    """))
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:drop_path_net")
    assert rc == 0, err


def test_explainers_that_support_no_model_are_refused(nets, capsys):
    """A held-out walkthrough: an attention explainer alone on a CNN validated, and the run trained
    the model, skipped the cell, and exited 2 with no result row."""
    rc, err = _validate(nets, capsys, "phantom_cxr", "small_cnn", "attention")
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 2
    assert lines[0].endswith("explainers[0] 'attention' does not support model 'small_cnn' on dataset 'phantom_cxr': "
                             "attention supports ['vit'] models, got cnn; the run skips that cell")
    assert lines[1].startswith("faithbench: error: ") and lines[1].endswith(
        "explainers: none supports any model of the suite, so the run would compute nothing (see the warnings "
        "above); add an explainer for these models or a model these explainers support")
    # with one explainer that runs, the cell skipped is a warning only
    rc, err = _validate(nets, capsys, "phantom_cxr", "small_cnn", "attention, saliency, random")
    assert rc == 0 and err.count("faithbench: warning: ") == 1 and "'attention' does not support" in err
    # a network of your own: its modules, not its name, tell (deeplift has no rule for GELU)
    (nets / "review_nets.py").write_text((nets / "review_nets.py").read_text() + textwrap.dedent("""

        def gelu_net(in_chans, num_classes):
            return nn.Sequential(nn.Conv2d(in_chans, 4, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, num_classes))
    """))
    rc, err = _validate(nets, capsys, "phantom_cxr", "review_nets:gelu_net", "deeplift")
    assert rc == 2 and "'deeplift' does not support model 'review_nets:gelu_net'" in err and "GELU" in err


def test_a_sequence_explainer_on_volumes_is_refused(nets, capsys):
    """A held-out review: temporal_occlusion on a 3D volume dataset validated and ran, occluding depth
    slices as visits; a volume has a sequence's shape, the mask 'valid' tells them apart."""
    rc, err = _validate(nets, capsys, "{name: phantom_organ3d, params: {n: 8}}", "small_cnn", "temporal_occlusion")
    assert rc == 2 and "'temporal_occlusion' does not support model 'small_cnn' on dataset 'phantom_organ3d'" in err
    assert "the dataset is 3D without it (a volume?)" in err
    rc, err = _validate(nets, capsys, "{name: phantom_organ3d, params: {n: 8}}", "small_cnn",
                        "temporal_occlusion, saliency, random")
    assert rc == 0 and err.count("faithbench: warning: ") == 1 and "'temporal_occlusion' does not support" in err


def test_validate_warns_of_pretrained_weights_the_run_cannot_have(nets, capsys, monkeypatch):
    """A held-out walkthrough: validate said ok for linear_probe offline, and its run stopped at once."""
    pytest.importorskip("timm")
    import faithbench.models.hub as hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "hf_cached", lambda *args, **kwargs: False)  # whatever this machine's cache holds
    suite = nets / "hub.yaml"
    suite.write_text(textwrap.dedent("""
        name: hub
        datasets: [phantom_cxr]
        models: [{name: "timm:resnet18", pretrained: true, replace_head: true, recipe: {linear_probe: true}}]
        explainers: [saliency, random]
        metrics: [deletion_auc]
    """))
    assert main(["validate", str(suite)]) == 0
    err = capsys.readouterr().err
    assert "models[0]: model 'timm:resnet18': pretrained weights hf-hub timm/resnet18" in err
    assert "are not available (offline" in err and "here the run stops before it computes anything" in err


@pytest.mark.parametrize("channels, also", [
    (3, ""),
    (1, " (its first convolution takes 3 channels, the data has 1: give the dataset 3 channels where it has that "
        "parameter, pick 3 of the image's channels with preprocess: {channels: [...]}, or build the network for "
        "1 channel)"),
])
def test_a_fixed_size_network_says_which_size_it_takes(tmp_path, capsys, channels, also):
    """A held-out review: a 224-px timm ViT with preprocess: none on 32-px images was told only of a channel
    fix (1-channel data) or nothing (3-channel data); the size fixes it names are ones that work."""
    import timm

    from faithbench.store import save_tensors

    save_tensors(tmp_path / "vit224.safetensors", timm.create_model("vit_tiny_patch16_224", num_classes=2).state_dict())
    save_tensors(tmp_path / "vit32.safetensors",
                 timm.create_model("vit_tiny_patch16_224", num_classes=2, img_size=32).state_dict())
    suite = tmp_path / "suite.yaml"

    def validate(model: str) -> tuple[int, str]:
        suite.write_text(textwrap.dedent(f"""
            name: vit
            datasets: [{{name: phantom_cxr, params: {{size: 32, channels: {channels}}}}}]
            models: [{model}]
            explainers: [saliency]
            metrics: [deletion_auc]
        """))
        rc = main(["validate", str(suite)])
        return rc, capsys.readouterr().err.strip()

    rc, err = validate('{name: "timm:vit_tiny_patch16_224", weights: vit224.safetensors, preprocess: none}')
    assert rc == 2 and err.count("\n") == 0
    assert err.endswith(
        "fails on an image of that shape: AssertionError: Input height (32) doesn't match model (224). (the network "
        "takes 224 x 224 images, it gets 32 x 32: preprocess: {size: [224, 224]} or preprocess: auto (the network's "
        "own input config) in the model entry resizes them, or, for weights trained at 32 x 32, build it for that "
        "size with params: {img_size: [32, 32]})" + also)
    if channels == 3:  # the fixes it names validate
        for model in ('{name: "timm:vit_tiny_patch16_224", weights: vit224.safetensors}',
                      '{name: "timm:vit_tiny_patch16_224", weights: vit224.safetensors, '
                      'preprocess: {size: [224, 224]}}',
                      '{name: "timm:vit_tiny_patch16_224", weights: vit32.safetensors, preprocess: none, '
                      'params: {img_size: [32, 32]}}'):
            assert validate(model)[0] == 0, model


def test_a_temporal_occlusion_baseline_other_than_the_padding_value_is_warned_of(nets, capsys):
    """A held-out review: ``baseline: -0.5`` on data padded with 0.0 put the largest score drop on a
    padding frame in 4 of 4 padded sequences, without a word; the dataset's own value passes quietly."""
    data = "{name: phantom_longitudinal, params: {n: 8}}"
    rc, err = _validate(nets, capsys, data, "temporal_gru", "{name: temporal_occlusion, params: {baseline: -0.5}}")
    assert rc == 0 and err.count("faithbench: warning: ") == 1, err
    assert ("'temporal_occlusion': baseline -0.5 is not dataset 'phantom_longitudinal''s padding value 0" in err
            and "set baseline: 0" in err)
    rc, err = _validate(nets, capsys, data, "temporal_gru", "{name: temporal_occlusion, params: {baseline: 0.0}}")
    assert rc == 0 and "warning" not in err, err


def test_a_wrong_kind_of_value_for_your_own_builders_parameter_is_refused(nets, capsys):
    """A plugins review: ``width: "a"`` failed inside the builder with its own message; the parameter's
    default (here 4, a number) says what kind it takes."""
    (nets / "review_kinds.py").write_text(textwrap.dedent("""
        from torch import nn
        def tiny(in_chans, num_classes, input_size, *, width=4):
            return nn.Sequential(nn.Conv2d(in_chans, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(width, num_classes))
    """))
    suite = nets / "kinds.yaml"
    suite.write_text('name: k\ndatasets: [phantom_cxr]\nmodels: [{name: "review_kinds:tiny", params: {width: "a"}, '
                     'recipe: default}]\nexplainers: [saliency]\nmetrics: [deletion_auc]\n')
    assert main(["validate", str(suite)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "models[0].params.width: expected a number (the default is 4), got str 'a' (annotate the parameter if it "
        "takes text)")
