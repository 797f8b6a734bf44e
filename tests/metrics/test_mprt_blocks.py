"""The MPRT blocks: within an ``nn.Sequential`` a conv/linear layer and the norm (and parameterised activation)
after it are one block (review sanity7 D1: ``small_cnn`` depth 2 made the batch-norm ``features.1.1`` its own
step, a redraw of gammas 1 +- 0.003 that moved the logits by 0.0065 and scored ~0.99 on every explainer); the
models whose blocks did not change keep their values bit for bit."""

import copy

import pytest
import torch
import torchvision
from torch import nn

import faithbench
from faithbench.metrics import EfficientMPRT, MPRTCascading, MPRTIndependent, RandomLogit, SmoothMPRT
from faithbench.metrics.base import postprocess
from faithbench.metrics.functional import (block_logit_changes, independent_randomization_curve, parameter_blocks,
                                           randomize_block, seeded, similarity)
from faithbench.registry import explainers


def _names(model, x):
    return [n for n, _ in parameter_blocks(model, x)]


def _covers_each_parameter_once(model, x):
    ids = [id(p) for _, ps in parameter_blocks(model, x) for p in ps]
    return sorted(ids) == sorted(id(p) for p in model.parameters())


@pytest.mark.parametrize("size", [(32, 32), (16, 16, 16)])
def test_small_cnn_blocks_keep_each_batch_norm_with_its_conv(size):
    x = torch.rand(1, 1, *size)
    for depth, expected in ((1, ["features.0", "head"]), (2, ["features.0", "features.1", "head"]),
                            (3, ["features.0", "features.1", "features.2", "head"])):
        model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=size, width=4, depth=depth)
        assert _names(model, x) == expected, depth
        assert _covers_each_parameter_once(model, x)
    blocks = dict(parameter_blocks(model, x))
    conv, bn = model.features[1][0], model.features[1][1]
    assert [id(p) for p in blocks["features.1"]] == [id(conv.weight), id(conv.bias), id(bn.weight), id(bn.bias)]


def test_conv_batch_norm_sequential_known_blocks():
    seq = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                        nn.BatchNorm2d(4), nn.PReLU(), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    x = torch.rand(1, 1, 16, 16)
    # a norm after an activation still normalises the conv; a norm first in line (nothing to follow) stays alone
    assert _names(seq, x) == ["0+1", "3+5+6+7", "10+11", "12"]
    assert _covers_each_parameter_once(seq, x)
    lead = nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(2))
    lead(x)
    assert _names(lead, x) == ["0", "1", "3"]
    # a Sequential child of a module is grouped the same way, named with its prefix
    assert _names(nn.ModuleDict({"body": seq}), None) == ["body.0+body.1", "body.3+body.5+body.6+body.7",
                                                         "body.10+body.11", "body.12"]


def test_monai_convolution_with_its_adn_is_one_block():
    blocks = pytest.importorskip("monai.networks.blocks")
    net = nn.Sequential(blocks.Convolution(2, 1, 4, act="PRELU", norm="BATCH"),
                        blocks.Convolution(2, 4, 4, act="PRELU", norm="INSTANCE"), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(1, 1, 16, 16)
    assert _names(net, x) == ["0.conv+0.adn", "1.conv+1.adn", "4"]
    assert _covers_each_parameter_once(net, x)


def test_resnets_and_vits_keep_their_blocks():
    """Outside an nn.Sequential nothing is joined: a ResNet's stem is still `conv1`, `bn1`."""
    tv = torchvision.models.resnet18(num_classes=2)
    expected = ["fc", *[f"layer{i}.{j}" for i in (4, 3, 2, 1) for j in (1, 0)], "bn1", "conv1"]
    assert _names(tv, torch.rand(1, 3, 32, 32))[::-1] == expected
    for name in ("resnet18", "resnet18_3d"):
        size = (32, 32) if name == "resnet18" else (16, 16, 16)
        model = faithbench.create_model(name, in_chans=1, num_classes=2, input_size=size)
        assert _names(model, torch.rand(1, 1, *size))[::-1] == expected
    vit = faithbench.create_model("vit_tiny", in_chans=1, num_classes=2, input_size=(32, 32))
    assert _names(vit, torch.rand(1, 1, 32, 32)) == ["patch_embed+cls_token,pos_embed", "blocks.0", "blocks.1",
                                                     "blocks.2", "blocks.3", "fc_norm", "head"]


def test_unchanged_blocks_give_the_same_values_bit_for_bit():
    """A torchvision ResNet-18's independent curve equals one built by hand from its fixed block list (block i
    drawn from seeded(seed, 100 + i)), exactly: its values did not change with the grouping."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2).eval()
    with torch.no_grad():  # as if trained: norms spread
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    x, target = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    saliency = explainers.get("saliency")(seed=0)
    original = saliency(model, x, target)
    curve, names = independent_randomization_curve(model, x, target, original, saliency, seed=3)
    order = ["conv1", "bn1", *[f"layer{i}.{j}" for i in (1, 2, 3, 4) for j in (0, 1)], "fc"]
    assert names == order[::-1]
    for step, index in enumerate(reversed(range(len(order)))):
        work = copy.deepcopy(model)
        randomize_block(list(work.get_submodule(order[index]).parameters()), seeded(3, 100 + index))
        redrawn = postprocess(saliency(work, x, target), "abs")
        expected = similarity(postprocess(original, "abs"), redrawn, "spearman_abs")
        assert torch.equal(curve[:, step], expected), order[index]


def test_a_split_small_cnn_step_randomises_conv_and_norm_together():
    torch.manual_seed(0)
    model = faithbench.create_model("small_cnn", in_chans=1, num_classes=2, input_size=(16, 16), width=4, depth=2)
    x = torch.rand(2, 1, 16, 16)
    work = copy.deepcopy(model)
    with torch.no_grad():
        work.features[1][1].weight.uniform_(0.9, 1.1)
        work.features[1][1].bias.uniform_(-0.1, 0.1)  # an untrained norm's zeros have no spread: kept
    before = copy.deepcopy(work)
    randomize_block(dict(parameter_blocks(work, x))["features.1"], seeded(0, 101))
    changed = [n for n, p in work.named_parameters() if not torch.equal(p, before.get_parameter(n))]
    assert changed == ["features.1.0.weight", "features.1.0.bias", "features.1.1.weight", "features.1.1.bias"]


def test_the_block_metrics_are_version_3():
    """The four metrics whose blocks can change recompute (cache keys); random_logit's blocks do not exist."""
    # smooth_mprt 4 and random_logit 3: their noise / other class drawn per image since (test_row_draws.py)
    assert [m.version for m in (MPRTCascading, MPRTIndependent, SmoothMPRT, EfficientMPRT)] == ["3", "3", "4", "3"]
    assert RandomLogit.version == "3"


def test_block_logit_changes_known_answers():
    """A block of one linear layer is the whole model: relative 1; a scalar PReLU slope is never redrawn: change 0;
    a block's change is that of redrawing it alone with mprt_independent's generator."""
    torch.manual_seed(0)
    x = torch.rand(3, 4)
    linear = nn.Linear(4, 2)
    [(name, change, relative)] = block_logit_changes(linear, x)
    with torch.no_grad():
        work = copy.deepcopy(linear)
        randomize_block(list(work.parameters()), seeded(0, 100))
        assert (name, change, relative) == ("weight,bias", (work(x) - linear(x)).abs().max().item(), 1.0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(4, 8), nn.PReLU(), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    net = Net()
    before = copy.deepcopy(net.state_dict())
    changes = block_logit_changes(net, x, seed=2)
    assert [n for n, _, _ in changes] == ["fc2", "act", "fc1"]
    assert changes[1][1:] == (0.0, 0.0)  # one slope: nothing to redraw
    assert all(change > 0 and 0 < relative for n, change, relative in changes if n != "act")
    with torch.no_grad():
        work = copy.deepcopy(net)
        randomize_block(list(work.fc1.parameters()), seeded(2, 100 + 0))
        assert changes[2][1] == (work(x) - net(x)).abs().max().item()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # the model is not modified


def test_block_logit_changes_flag_a_near_constant_batch_norm():
    """The review's case: a lone batch-norm of gammas 1 +- 0.003 (the old split of small_cnn) moves the logits by
    a small fraction of what its conv does."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    x = torch.rand(4, 1, 8, 8)
    net(x)
    with torch.no_grad():
        net[2].weight.copy_(1 + 0.003 * torch.randn(4))
        net[2].bias.copy_(0.003 * torch.randn(4))
    net.eval()
    class Split(nn.Module):  # not a Sequential: the norm is its own block
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.fc = net[0], net[2], net[4]

        def forward(self, x):
            return self.fc(self.bn(torch.relu(self.conv(x))).flatten(1))

    changes = dict((n, r) for n, _, r in block_logit_changes(Split(), x))
    assert changes["bn"] < 0.05 < changes["conv"]
    assert [n for n, _, _ in block_logit_changes(net, x)] == ["4", "0+2"]
