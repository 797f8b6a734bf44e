"""A model that runs its network twice per forward pass (test-time augmentation) has no CAM layer: every module
of the network is called twice (diff review 35, finding 1). The one-line refusal says when the layer was the
automatic choice and names what can be explained instead, not "choose a module the forward pass calls once"."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from faithbench.registry import explainers


class _TTA(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torchvision.models.resnet18(weights=None, num_classes=2)

    def forward(self, x):
        return (self.net(x) + self.net(x.flip(-1))) / 2


NO_LAYER = ("'net', which holds it, runs 2 times too, so no layer inside it is called once (a model that runs its "
            "network more than once per forward pass, as test-time augmentation, has no CAM layer); explain a model "
            "that runs the network once per forward pass (e.g. 'net' itself)")


@pytest.mark.parametrize("name", ["gradcam", "scorecam", "guided_gradcam"])
def test_the_automatic_layer_of_a_reused_network_is_refused_saying_so(name):
    model, x = _TTA().eval(), torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError) as err:
        explainers.get(name)()(model, x, torch.tensor([0, 1]))
    message = str(err.value)
    assert message == (f"{name}: target_layer 'net.layer3' (the automatic choice: no target_layer set) is called 2 "
                       "times in one forward pass of _TTA (one module reused), so its output is no one tensor (a CAM "
                       f"would read its first call's, Guided Grad-CAM its last); {NO_LAYER}")
    assert "\n" not in message


def test_a_hand_set_layer_of_a_reused_network_is_named_as_set():
    model, x = _TTA().eval(), torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError, match=re.escape("gradcam: target_layer 'net.layer4' is called 2 times")) as err:
        explainers.get("gradcam")(target_layer="net.layer4")(model, x, torch.tensor([0, 1]))
    assert str(err.value).endswith(NO_LAYER)


def test_the_network_itself_gives_the_map_of_one_pass():
    """The fix the line names: explaining ``net`` itself works (its layer3 is called once)."""
    model, x = _TTA().eval(), torch.randn(2, 3, 64, 64)
    explainer = explainers.get("gradcam")()
    out = explainer(model.net, x, torch.tensor([0, 1]))
    assert out.shape == (2, 64, 64) and explainer.last_info["target_layer"] == "layer3"


class _PartsTTA(_TTA):
    def forward(self, x):  # the network's parts, not the network: its own hook never fires
        return (self.net.fc(torch.flatten(self.net.avgpool(self._features(x)), 1))
                + self.net.fc(torch.flatten(self.net.avgpool(self._features(x.flip(-1))), 1))) / 2

    def _features(self, x):
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


def test_a_network_whose_parts_run_twice_is_not_said_to_run_0_times():
    """Diff review 36: a wrapper calling the network's parts twice read "'net', which holds it, runs 0 times too"."""
    model, x = _PartsTTA().eval(), torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError) as err:
        explainers.get("gradcam")(target_layer="net.layer4")(model, x, torch.tensor([0, 1]))
    assert "'net', which holds it, is not called itself (the forward runs its parts), so no layer inside it is " \
           "called once" in str(err.value) and "0 times" not in str(err.value)
