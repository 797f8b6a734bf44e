"""ModelGuard: a change of the shared model is found (in place, through .data, by a train-mode
forward, by swapping a tensor, in a non-persistent buffer), the model restored exactly; a change
that cannot be undone (a module replaced, a hook left behind) breaks the guard for good; a weight
written and put back is not a change."""

import pytest
import torch
from torch import nn

from faithbench.runner.guard import ModelGuard, ModelModified


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model.register_buffer("scale", torch.ones(1), persistent=False)  # as the input transform's mean and std
    return model.eval()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]}


@pytest.mark.parametrize("change", ["in_place", "data", "numpy", "train_forward", "swap", "non_persistent"])
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
        elif change == "non_persistent":
            model.scale.mul_(2)
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


@pytest.mark.parametrize("change", ["head_replaced", "hook_left", "other_shape"])
def test_a_change_that_cannot_be_undone_breaks_the_guard_for_good(change):
    """A review of the guard: a head replaced by nn.Identity passed the second check (the state dict
    skipped the missing keys and the fingerprint took the new layout)."""
    model = _model()
    guard = ModelGuard(model)
    if change == "head_replaced":
        model[4] = nn.Identity()
    elif change == "hook_left":
        model[2].register_forward_hook(lambda m, i, o: o * 0)
    else:
        model[4].weight = nn.Parameter(torch.zeros(3, 4 * 6 * 6))
    with pytest.raises(ModelModified, match="beyond what can be restored"):
        guard.check("metric 'm'")
    for _ in range(2):  # and every later check, whoever runs
        with pytest.raises(ModelModified, match="metric 'm' changed the model's modules or tensors"):
            guard.check("explainer 'innocent'")
    assert guard.check("quiet", raise_error=False) is True


def test_the_input_guard_finds_and_undoes_a_change_of_the_batch():
    from faithbench.runner.guard import InputGuard, InputModified

    x = torch.rand(2, 1, 4, 4)
    x[0, 0, 0, 0] = float("nan")  # a NaN pixel equals itself: no change
    masks = {"lesion": torch.zeros(2, 4, 4, dtype=torch.bool)}
    before_x, before_mask = x.clone(), masks["lesion"].clone()
    guard = InputGuard(masks, x=x, target=torch.tensor([0, 1]), label=torch.tensor([0, 1]), labels=None)
    guard.check("nothing")
    x.numpy()[1] = 0.0  # no version bump
    masks["lesion"][0, 1, 1] = True
    masks["new"] = masks["lesion"]
    with pytest.raises(InputModified, match=r"metric 'm' changed its input in place \(masks, x, masks\['lesion'\]\)"):
        guard.check("metric 'm'")
    assert torch.equal(x.isnan(), before_x.isnan()) and torch.equal(x.nan_to_num(), before_x.nan_to_num())
    assert list(masks) == ["lesion"] and torch.equal(masks["lesion"], before_mask)
    guard.check("after the restore")
    error = RuntimeError("its own error")
    x.mul_(2)
    guard.check("explainer 'e'", error)  # the code's own error stays; the change is noted on it
    assert "explainer 'e' changed its input in place (x)" in error.__notes__[0]


@pytest.mark.parametrize("how", ["whole", "one_buffer"])
def test_a_model_moved_to_another_device_is_a_change_blamed_on_who_moved_it(how):
    """Review gpuread F2: the comparison with the CPU copy was device-blind, so a plugin's model.cpu()
    on a GPU run passed as "written back as it was" and every later cell failed with a device mismatch.
    Here the other device is 'meta' (no GPU on this machine): the guard moves the model back."""
    model = _model()
    before, guard = _state(model), ModelGuard(model)
    if how == "whole":
        model.to("meta")
    else:
        model[1].running_var = model[1].running_var.to("meta")
    with pytest.raises(ModelModified, match=r"^explainer 'mover' moved the model to another device \(cpu -> meta\)"):
        guard.check("explainer 'mover'")
    after = _state(model)
    assert {t.device.type for t in after.values()} == {"cpu"}
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert not guard.check("the next cell", raise_error=False)  # the next cell runs on the restored model
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 2)
