"""A 2D ``local-dir:`` network on 3D volumes (review newuser15 D3): validate said ok and every cell of the run
failed (exit code 1). Validate now reads the folder's config.json; the run's first image is a one-line error."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from faithbench.config import SuiteError, suite_from_dict
from faithbench.models.errors import CheckpointError, InputShapeError
from faithbench.models.training import check_logits


def _folder(tmp_path, input_size):
    folder = tmp_path / "net"
    folder.mkdir()
    config = {"architecture": "resnet18", "num_classes": 2, "model_args": {"num_classes": 2, "in_chans": 1},
              "pretrained_cfg": {"input_size": input_size, "mean": [0.5], "std": [0.25], "num_classes": 2}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _suite(folder, dataset):
    return {"name": "t", "datasets": [dataset], "models": [{"name": f"local-dir:{folder}", "alias": "l3"}],
            "explainers": ["gradcam"], "metrics": ["deletion_auc"]}


def test_validate_refuses_a_2d_local_dir_network_on_volumes(tmp_path):
    folder = _folder(tmp_path, [1, 224, 224])
    with pytest.raises(SuiteError) as info:
        suite_from_dict(_suite(folder, {"name": "phantom_organ3d", "params": {"n": 4}}))
    assert str(info.value) == ("<suite>: models[0]: 'l3' is a 2D network (input_size [1, 224, 224] in its config.json) "
                               "and dataset 'phantom_organ3d' holds 3D images: expected a 3D network for it")


def test_validate_keeps_a_local_dir_network_of_the_datasets_dimensions(tmp_path):
    suite_from_dict(_suite(_folder(tmp_path, [1, 224, 224]), {"name": "phantom_cxr", "params": {"n": 4}}))
    (tmp_path / "net" / "config.json").write_text(json.dumps({"architecture": "resnet18"}))  # no input_size: the run's
    suite_from_dict(_suite(tmp_path / "net", {"name": "phantom_organ3d", "params": {"n": 4}}))


class _Flat(nn.Module):
    def forward(self, x):
        raise InputShapeError("input transform: size [224, 224] resizes 2D images\nsecond line")


class _Raises(nn.Module):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def forward(self, x):
        raise self.exc


def test_an_input_transform_that_cannot_take_the_first_image_is_bad_input():
    x = torch.zeros(3, 1, 4, 8, 8)
    with pytest.raises(CheckpointError) as info:
        check_logits(_Flat(), x, 2, "l3")
    assert str(info.value) == ("model 'l3': fails on the first image, of shape (1, 1, 4, 8, 8): InputShapeError: "
                               "input transform: size [224, 224] resizes 2D images")


@pytest.mark.parametrize("exc", [torch.cuda.OutOfMemoryError("CUDA out of memory"), MemoryError(),
                                 RuntimeError("DefaultCPUAllocator: not enough memory"), ValueError("a bug")])
def test_any_other_error_of_the_first_forward_stays_the_cells_failure(exc):
    """A diff review: every exception but CUDA's out-of-memory was turned into bad input (exit 2), so a CPU allocator
    error or a bug in a model's code stopped a two-model run and lost the other model's results."""
    with pytest.raises(type(exc)):
        check_logits(_Raises(exc), torch.zeros(3, 1, 4, 8, 8), 2, "l3")


def test_a_2d_hub_folder_on_volumes_is_a_checkpoint_error_in_the_run(tmp_path):
    """The run's path (validate could not tell: an hf-hub: repo's config is not read there)."""
    timm = pytest.importorskip("timm")
    from timm.models import save_for_hf

    from faithbench.datasets.phantoms import PhantomOrgan3D
    from faithbench.models.checkpoint import ModelSpec, load_checkpoint
    from faithbench.store import Cache

    net = timm.create_model("resnet18", pretrained=False, num_classes=2, in_chans=1)
    save_for_hf(net, str(tmp_path / "hub"), safe_serialization=True)
    splits = [PhantomOrgan3D(s, n=4) for s in ("train", "val", "test")]
    spec = ModelSpec.model_validate({"name": f"local-dir:{tmp_path / 'hub'}", "alias": "l3"})
    with pytest.raises(CheckpointError, match=r"^model 'l3': fails on the first image, of shape \(1, 1, 32, 32, 32\)"):
        load_checkpoint(spec, *splits, seed=0, cache=Cache(tmp_path / "c"))
