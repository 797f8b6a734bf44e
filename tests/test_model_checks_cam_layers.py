"""``faithbench validate`` refuses a CAM target layer of one cell, or one the forward pass calls twice, where the
meta forward shows it (held-out review cams4: timm resnet18's ``global_pool.pool`` validated, exit 0)."""

from __future__ import annotations

import sys
import textwrap

import pytest

from faithbench.cli import main

NETS = """
    from torch import nn


    class SharedBlock(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):  # one ReLU twice, as torchvision's BasicBlock
            return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


    def shared_net(in_chans, num_classes):
        return nn.Sequential(nn.Conv2d(in_chans, 4, 3, padding=1), SharedBlock(4), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(4, num_classes))
"""


@pytest.fixture
def nets(tmp_path, monkeypatch):
    (tmp_path / "cams4_nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cams4_nets", raising=False)
    return tmp_path


def _validate(tmp_path, capsys, model: str, explainer: str) -> tuple[int, str]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: own
        datasets: [phantom_cxr]
        models: [{{name: "{model}", recipe: default}}]
        explainers: [{explainer}]
        metrics: [deletion_auc]
    """))
    rc = main(["validate", str(suite)])
    return rc, capsys.readouterr().err.strip()


@pytest.mark.parametrize(("model", "layer", "shape"), [("resnet18", "global_pool.pool", "(1, 512, 1, 1)"),
                                                        ("small_cnn", "pool", "(1, 64, 1, 1)")])
def test_a_global_pool_is_refused(nets, capsys, model, layer, shape):
    rc, err = _validate(nets, capsys, model, f"{{name: gradcam, params: {{target_layer: {layer}}}}}")
    assert rc == 2 and "\n" not in err
    assert err.endswith(f"explainers[0].params.target_layer: {layer!r} outputs {shape}: a grid of one cell (1 x 1), "
                        "so every CAM of it would be one number per image upsampled, a constant map (model "
                        f"{model!r}, dataset 'phantom_cxr'); choose a layer before the pooling or striding that "
                        "leaves one cell (an earlier stage, e.g. 'layer4' before a ResNet's 'avgpool'), or give a "
                        "larger input")


def test_a_layer_called_twice_is_refused_and_its_block_taken(nets, capsys):
    rc, err = _validate(nets, capsys, "cams4_nets:shared_net", "{name: scorecam, params: {target_layer: 1.relu}}")
    assert rc == 2 and "\n" not in err
    assert err.endswith("explainers[0].params.target_layer: '1.relu' is called 2 times in one forward pass of "
                        "Sequential (one module reused), so its output is no one tensor (a CAM would read its first "
                        "call's, Guided Grad-CAM its last) (model 'cams4_nets:shared_net', dataset 'phantom_cxr'); "
                        "choose a module called once, e.g. the enclosing block '1'")
    for layer in ["1", "1.conv2"]:
        rc, err = _validate(nets, capsys, "cams4_nets:shared_net", f"{{name: scorecam, params: {{target_layer: "
                            f"'{layer}'}}}}")
        assert rc == 0, err


@pytest.mark.parametrize("layer", ["layer4", "layer3", "layer4.1.act1"])
def test_a_stage_or_a_relu_called_once_is_accepted(nets, capsys, layer):
    rc, err = _validate(nets, capsys, "resnet18", f"{{name: gradcam, params: {{target_layer: {layer}}}}}")
    assert rc == 0, err
