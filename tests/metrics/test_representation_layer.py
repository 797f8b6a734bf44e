"""relative_representation_stability's ``layer``: a module the forward runs more than once (a shared
activation) has no single output; a held-out review saw validate pass, then every cell fail with
"The size of tensor a (110592) must match the size of tensor b (221184)"."""

import pytest
import torch
from torch import nn

from faithbench.metrics import RelativeRepresentationStability
from faithbench.metrics.base import ForwardCounter
from faithbench.metrics.functional.stability import representation_reader
from faithbench.registry import explainers
from tests.metrics.conftest import make_ctx


class Shared(nn.Module):
    """conv -> act -> conv -> act (the same module) -> pool -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.Softplus()
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.pool(self.act(self.c2(self.act(self.c1(x))))).flatten(1))


def _saliency(model, x):
    x = x.clone().requires_grad_(True)
    model(x)[:, 0].sum().backward()
    return x.grad[:, 0].detach()


def test_a_module_run_twice_per_forward_is_one_clear_error():
    torch.manual_seed(0)
    model, x = Shared().eval(), torch.rand(4, 1, 8, 8)
    metric = RelativeRepresentationStability(layer="act", nr_samples=2, zeros="skip")
    assert metric.check_model(model) is None  # validate cannot tell: it runs no forward
    with pytest.raises(ValueError, match=r"^relative_representation_stability: layer 'act' runs 2 times per forward "
                                         r"of Shared .*name a module that runs once"):
        metric(make_ctx(model, x, _saliency(model, x), target=torch.zeros(4, dtype=torch.long),
                        explainer=explainers.get("saliency")(seed=0)))
    # a module that runs once is read as before, chunked forwards included (4 forwards of 1 image each)
    read = representation_reader(model, x, "c2")
    counted = ForwardCounter(model, max_batch=1)
    features = read(counted, x)
    assert features.shape == (4, 4 * 8 * 8) and counted.passes == 4
    assert torch.allclose(features, model.c2(model.act(model.c1(x))).flatten(1).detach())


def test_resnet18_3d_shared_act_is_refused_and_its_block_is_read():
    pytest.importorskip("monai")
    from faithbench.models.architectures import build_model

    torch.manual_seed(0)
    model = build_model("resnet18_3d", 1, 2, (16,) * 3, widen_factor=0.25).eval()
    x = torch.rand(2, 1, 16, 16, 16)
    with pytest.raises(ValueError, match="layer 'layer1.0.act' runs 2 times per forward"):
        representation_reader(model, x, "layer1.0.act")(ForwardCounter(model), x)
    ctx = make_ctx(model, x, torch.rand(2, 16, 16, 16), target=torch.zeros(2, dtype=torch.long),
                   explainer=explainers.get("saliency")(seed=0))
    value = RelativeRepresentationStability(layer="layer1.0", nr_samples=2, zeros="skip",
                                            nan_if_prediction_changes=False)(ctx).value
    assert value.shape == (2,) and torch.isfinite(value).all()


def test_a_layer_outside_the_forward_is_named():
    model = Shared().eval()
    model.unused = nn.ReLU()
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="layer 'unused' did not run in the forward of Shared"):
        representation_reader(model, x, "unused")(ForwardCounter(model), x)
