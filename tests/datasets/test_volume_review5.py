"""A fifth held-out review of ``volume``: a 4D label map of one frame on another grid than its image
failed in the resampling with numpy's error, naming no file (F3); a volume holding NaN voxels passed
validate, and the run refused its sample without naming the file (F4)."""

import re

import numpy as np
import pytest
import torch
import yaml

nib = pytest.importorskip("nibabel")

from faithbench.cli import EXIT_BAD_INPUT, main  # noqa: E402
from faithbench.datasets import DataError, VolumeDataset  # noqa: E402
from faithbench.models import build_model  # noqa: E402
from faithbench.store import save_tensors  # noqa: E402


def _scene(tmp_path):
    """An image (20, 22, 24) and a label map (10, 22, 24) of its first 10 slices with one box of 3^3 voxels."""
    image = np.random.default_rng(0).normal(100, 20, (20, 22, 24)).astype(np.float32)
    nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / "img.nii.gz")
    ids = np.zeros((10, 22, 24), np.int16)
    ids[2:5, 5:8, 5:8] = 1
    return ids


def test_a_one_frame_4d_label_map_on_another_grid_is_read_as_3d(tmp_path):
    ids = _scene(tmp_path)
    nib.save(nib.Nifti1Image(ids, np.eye(4)), tmp_path / "lab3d.nii.gz")
    nib.save(nib.Nifti1Image(ids[..., None], np.eye(4)), tmp_path / "lab4d1.nii.gz")
    masks = {}
    for name in ("lab3d", "lab4d1"):
        ds = VolumeDataset("test", items=[{"image": "img.nii.gz", "label_map": f"{name}.nii.gz", "label": 1}],
                           root=str(tmp_path))
        with pytest.warns(UserWarning, match="has the same affine as its image of shape"):
            masks[name] = ds[0].masks["label_1"]  # was ValueError: shapes (5,5) and (4,4) not aligned
    assert int(masks["lab4d1"].sum()) == 27 and torch.equal(masks["lab4d1"], masks["lab3d"])


def test_a_multi_frame_label_map_on_another_grid_is_refused_as_on_the_images(tmp_path):
    ids = _scene(tmp_path)
    nib.save(nib.Nifti1Image(np.stack([ids, ids], -1), np.eye(4)), tmp_path / "lab4d2.nii.gz")
    ds = VolumeDataset("test", items=[{"image": "img.nii.gz", "label_map": "lab4d2.nii.gz", "label": 1}],
                       root=str(tmp_path))
    with pytest.raises(DataError, match=(
            rf"^sample test-0000-img: {re.escape(str(tmp_path / 'lab4d2.nii.gz'))}: expected a 3D volume, got shape "
            r"\(10, 22, 24, 2\)$")):
        ds[0]
    assert ds.data_warnings == []  # refused where it is read, before the warning of its placement (voxel (0, 0, 0))


def test_a_volume_holding_nan_is_refused_where_it_is_read_and_by_validate(tmp_path, capsys):
    data = np.random.default_rng(0).normal(100, 20, (8, 8, 8)).astype(np.float32)
    data[:2] = np.nan
    data[7, 7, 7] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii.gz")
    ds = VolumeDataset("test", items=[{"image": "nan.nii.gz", "label": 1}], root=str(tmp_path))
    message = (f"sample test-0000-nan: {tmp_path / 'nan.nii.gz'}: the file holds NaN/Inf voxels (128 NaN, 1 infinite "
               "of 512): expected finite values; replace them (np.nan_to_num, or the background value) and save it "
               "again")
    with pytest.raises(DataError) as err:
        ds[0]  # was read, every voxel NaN after the percentile window
    assert str(err.value) == message
    torch.manual_seed(0)
    save_tensors(tmp_path / "w.safetensors", build_model("small_cnn", 1, 2, (8, 8, 8), width=4).state_dict())
    suite = {"name": "nan", "samples": 1, "batch_size": 1, "datasets": [
        {"name": "volume", "params": {"root": str(tmp_path), "items": [{"image": "nan.nii.gz", "label": 1}]}}],
        "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(tmp_path / "w.safetensors")}],
        "explainers": ["saliency"], "metrics": ["sparseness"]}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "suite.yaml")]) == EXIT_BAD_INPUT  # was 0, "ok"
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].endswith(message)
