"""A 2D NIfTI file in a ``volume`` dataset is refused in one line naming the file and the sample, in
every orientation, image or label map (a held-out review: under the default ``canonical`` orientation
nibabel's ``as_closest_canonical`` raised ``OrientationError: Data array has fewer dimensions than
orientation`` first, naming neither; validate printed it, and a run with the file at a later sample
exited 1, "every cell failed"; a 2D label map was first warned of as placed on its image's voxel
(0, 0, 0), a placement that never happens)."""

import re
import warnings

import numpy as np
import pytest
import torch
import yaml

nib = pytest.importorskip("nibabel")

from faithbench.cli import EXIT_BAD_INPUT, main  # noqa: E402
from faithbench.datasets import DataError, VolumeDataset  # noqa: E402
from faithbench.datasets.volume_files import canonical_array, check_3d, stored_array  # noqa: E402
from faithbench.models import build_model  # noqa: E402
from faithbench.store import save_tensors  # noqa: E402

LPS = np.diag([-1.5, -1.0, 2.5, 1.0])  # the review's affine: as_closest_canonical must flip two axes


def _save(path, shape, affine=LPS, seed=0, dtype=np.float32):
    data = np.random.default_rng(seed).normal(100, 10, shape).astype(dtype)
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _flat(path):
    return rf"{re.escape(str(path))}: expected a 3D volume, got shape \(8, 6\)$"


@pytest.mark.parametrize("shape, ok", [((8, 6, 4), True), ((8, 6, 4, 1), True), ((8, 6), False), ((8,), False),
                                       ((8, 6, 4, 2), False), ((8, 6, 4, 1, 1), False)])
def test_check_3d_takes_three_axes_or_one_frame_of_four(shape, ok):
    if ok:
        check_3d(shape, "a.nii.gz")
    else:
        with pytest.raises(DataError, match=rf"^a\.nii\.gz: expected a 3D volume, got shape {re.escape(str(shape))}$"):
            check_3d(shape, "a.nii.gz")


@pytest.mark.parametrize("affine", [LPS, np.eye(4)])
@pytest.mark.parametrize("arrange", [canonical_array, stored_array])
def test_both_orientations_refuse_a_2d_image_naming_the_file(tmp_path, arrange, affine):
    img = nib.load(str(_save(tmp_path / "flat.nii.gz", (8, 6), affine)))
    with pytest.raises(DataError, match="^" + _flat("flat.nii.gz")):
        arrange(img, "flat.nii.gz")  # canonical was nibabel's OrientationError, no file


def test_the_canonical_layout_of_a_3d_volume_is_unchanged(tmp_path):
    """Known answer: LPS-stored (i, j, k) -> RAS (flip i, j) -> (D, H, W) = (k reversed, j, i)."""
    data = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    img = nib.Nifti1Image(data, LPS)
    expected = data[::-1, ::-1, :].transpose(2, 1, 0)[::-1, ::-1, ::-1]
    assert np.array_equal(canonical_array(img), expected)
    assert np.array_equal(canonical_array(nib.Nifti1Image(data[..., None], LPS)), expected)  # one frame of 4D


@pytest.mark.parametrize("orientation", ["canonical", "as_stored"])
def test_a_2d_image_at_a_later_sample_names_the_file_and_the_sample(tmp_path, orientation):
    _save(tmp_path / "img0.nii.gz", (8, 6, 4))
    _save(tmp_path / "flat.nii.gz", (8, 6), seed=1)
    ds = VolumeDataset("test", items=[{"image": "img0.nii.gz"}, {"image": "flat.nii.gz"}], root=str(tmp_path),
                       orientation=orientation)
    assert ds[0].image.shape == ((1, 4, 6, 8) if orientation == "canonical" else (1, 8, 6, 4))
    with pytest.raises(DataError, match="^sample test-0001-flat: " + _flat(tmp_path / "flat.nii.gz")):
        ds[1]


def test_a_2d_label_map_is_refused_without_the_placement_warning(tmp_path):
    _save(tmp_path / "img.nii.gz", (8, 6, 4))
    _save(tmp_path / "seg2d.nii.gz", (8, 6), dtype=np.int16)  # same affine, other shape: the warning's case
    ds = VolumeDataset("test", items=[{"image": "img.nii.gz", "label_map": "seg2d.nii.gz", "label": 1}],
                       root=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="^sample test-0000-img: " + _flat(tmp_path / "seg2d.nii.gz")):
            ds[0]
    assert [str(w.message) for w in caught] == []  # was "... its voxel (0, 0, 0) is placed on the image's ..."
    assert ds.data_warnings == []


def _suite(tmp_path, datasets):
    torch.manual_seed(0)
    save_tensors(tmp_path / "w.safetensors", build_model("small_cnn", 1, 2, (4, 6, 8), width=4).state_dict())
    suite = {"name": "flat", "samples": 2, "batch_size": 1, "reliability": 0, "datasets": datasets,
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(tmp_path / "w.safetensors")}],
             "explainers": ["saliency"], "metrics": ["sparseness"]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path, suite


def test_validate_refuses_a_2d_first_sample_in_one_line_naming_the_file(tmp_path, capsys):
    _save(tmp_path / "flat.nii.gz", (8, 6))
    _save(tmp_path / "img1.nii.gz", (8, 6, 4), seed=1)
    path, _ = _suite(tmp_path, [{"name": "volume", "alias": "v", "params": {"root": str(tmp_path), "items": [
        {"image": "flat.nii.gz", "label": 0}, {"image": "img1.nii.gz", "label": 1}]}}])
    capsys.readouterr()
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].endswith(f"sample test-0000-flat: {tmp_path / 'flat.nii.gz'}: expected a 3D volume, got shape (8, 6)")
    assert "OrientationError" not in err[0]


def test_a_run_meeting_a_2d_later_sample_is_bad_input_and_keeps_finished_cells(tmp_path, capsys):
    for name, seed in (("a", 0), ("b", 1)):
        _save(tmp_path / f"{name}.nii.gz", (8, 6, 4), seed=seed)
    _save(tmp_path / "flat.nii.gz", (8, 6), seed=2)
    good = {"name": "volume", "alias": "good", "params": {"root": str(tmp_path), "items": [
        {"image": "a.nii.gz", "label": 1}]}}
    bad = {"name": "volume", "alias": "bad", "params": {"root": str(tmp_path), "items": [
        {"image": "b.nii.gz", "label": 1}, {"image": "flat.nii.gz", "label": 0}]}}
    path, suite = _suite(tmp_path, [good, bad])
    assert main(["validate", str(path)]) == 0  # validate reads the first test item only
    capsys.readouterr()
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT  # was 1, "every cell failed" at the checkpoint stage (OrientationError)
    assert err[-1] == (f"faithbench: error: {path}: dataset 'bad': sample test-0001-flat: {tmp_path / 'flat.nii.gz'}: "
                       "expected a 3D volume, got shape (8, 6) (finished cells are cached; a rerun resumes)")
    suite["datasets"] = [good]  # the good dataset's cell is in the cache: a rerun of it computes nothing
    path.write_text(yaml.safe_dump(suite))
    assert main(["run", str(path), "--out", str(tmp_path / "out2"), "--cache", str(tmp_path / "cache")]) == 0
    assert "computed 0 checkpoints, 0 saliency batches, 0 score batches" in capsys.readouterr().err
