"""``preprocess`` on volumes (review newuser11 L3): ``size`` is (H, W), refused in one line for a 3D
network with the fix (the dataset's own size); ``channels``, ``mean`` and ``std`` apply per channel on
every spatial axis of a volume."""

from __future__ import annotations

import re

import pytest
import torch
from pydantic import ValidationError

from faithbench.config import SuiteError, load_suite
from faithbench.models.preprocess import InputConfig, InputTransform, PreprocessSpec

SUITE = """name: t
datasets: [{name: phantom_organ3d, params: {size: 24, n: 4}}]
models: [{name: "monai:DenseNet121", recipe: {epochs: 1}, preprocess: {size: SIZE, mean: [0], std: [1]}}]
explainers: [gradcam]
metrics: [deletion_auc]
"""


def test_a_3d_size_is_one_line_naming_the_datasets_size(tmp_path):
    """The review's suite: pydantic said "Tuple should have at most 2 items after validation, not 3"."""
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("SIZE", "[64, 64, 64]"))
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value) == (
        f"{path}: models[0].preprocess.size: expected [H, W], got 3 sides [64, 64, 64]: the input transform "
        "resizes 2D images, not volumes; for a 3D network give the dataset the size it takes (medmnist: size: 64; "
        "volume: size: [D, H, W]) and leave size out here")


@pytest.mark.parametrize("size, sides", [([64], "1 side [64]"), ([8, 8, 8, 8], "4 sides [8, 8, 8, 8]")])
def test_other_side_counts_are_refused_as_not_h_w(size, sides):
    with pytest.raises(ValidationError, match=re.escape(f"expected [H, W], got {sides}")):
        PreprocessSpec(size=size)
    assert PreprocessSpec(size=[64, 32]).size == (64, 32)  # two sides as before


def test_a_2d_size_in_front_of_a_volume_names_the_fix():
    transform = InputTransform(InputConfig(in_chans=1, size=(8, 8)))
    with pytest.raises(ValueError, match=re.escape(
            "input transform: size [8, 8] resizes 2D images, got an input of shape (1, 1, 6, 6, 6); for a volume "
            "leave size out of preprocess and give the dataset the size the network takes")):
        transform(torch.rand(1, 1, 6, 6, 6))


@pytest.mark.parametrize("depth", [2, 5])  # 2 = the channel count: the old view broadcast the means along depth
def test_volume_normalisation_is_per_channel(depth):
    """The means were viewed as (1, C, 1, 1): on a volume (B, C, D, H, W) they lay along the depth axis,
    an error where D != C and each depth slice normalised by another channel's values where D == C."""
    torch.manual_seed(0)
    x = torch.rand(3, 2, depth, 4, 5)
    got = InputTransform(InputConfig(in_chans=2, mean=(0.1, 0.7), std=(0.5, 2.0)))(x)
    expected = torch.stack([(x[:, 0] - 0.1) / 0.5, (x[:, 1] - 0.7) / 2.0], 1)
    assert got.shape == x.shape and torch.allclose(got, expected, atol=1e-6)
    grey = x[:, :1]  # a 1-channel volume replicated to the network's 2 channels, each normalised by its own values
    got = InputTransform(InputConfig(in_chans=2, mean=(0.1, 0.7), std=(0.5, 2.0)))(grey)
    assert torch.allclose(got[:, 1], (grey[:, 0] - 0.7) / 2.0, atol=1e-6)
    assert torch.allclose(got[:, 0], (grey[:, 0] - 0.1) / 0.5, atol=1e-6)


def test_2d_normalisation_unchanged():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 7, 9)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    got = InputTransform(InputConfig(in_chans=3, mean=tuple(mean.tolist()), std=tuple(std.tolist())))(x)
    assert torch.allclose(got, (x - mean[:, None, None]) / std[:, None, None], atol=1e-6)
