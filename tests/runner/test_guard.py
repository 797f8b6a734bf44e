"""ModelGuard: a change of the shared model is found (in place, through .data, by a train-mode
forward, by swapping a tensor), the model restored exactly; a weight written and put back is not a change."""

import pytest
import torch
from torch import nn

from faithbench.runner.guard import ModelGuard, ModelModified


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).eval()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("change", ["in_place", "data", "numpy", "train_forward", "swap"])
def test_a_change_is_found_and_undone(change):
    model = _model()
    before, guard = _state(model), ModelGuard(model)
    guard.check("nothing")  # unchanged: no error
    with torch.no_grad():
        if change == "in_place":
            model[4].bias.add_(1)
        elif change == "data":  # no version bump: the sampled values show it
            model[0].weight.data.mul_(0)
        elif change == "numpy":
            model[4].weight.detach().numpy()[:] = 7.0
        elif change == "train_forward":  # batch-norm running statistics move
            model.train()
            model(torch.rand(3, 1, 8, 8))
            model.eval()
        else:
            model[4].weight = nn.Parameter(torch.zeros_like(model[4].weight))
    with pytest.raises(ModelModified, match="explainer 'x' changed the model's weights or buffers in place"):
        guard.check("explainer 'x'")
    after = _state(model)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    guard.check("after the restore")


def test_a_weight_written_and_put_back_is_no_change():
    model = _model()
    guard = ModelGuard(model)
    with torch.no_grad():
        keep = model[0].weight.clone()
        model[0].weight.mul_(3)
        model[0].weight.copy_(keep)
    guard.check("put back")  # versions moved, values equal: no error
    guard.check("again")
