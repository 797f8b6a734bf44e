"""A volume or label map that cannot be read (a partial copy or download) is a DataError naming the
file and the sample, wherever it sits in the split; a run stops with exit code 2 and keeps what it
finished (a held-out review of real data: a truncated second ``.nii.gz`` passed validate, and the
run exited 1, "every cell failed", with an un-wrapped ``EOFError`` naming no file)."""

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


def _volume(path, seed=0):
    data = np.random.default_rng(seed).random((8, 8, 8)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


def _truncate(path):
    """The first half of the file: a partial copy whose header is whole and whose voxels are not."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _unreadable(sample_id, path, error):
    return rf"^sample {sample_id}: {re.escape(str(path))}: cannot read volume: {error}"


def test_a_truncated_nifti_after_a_good_one_names_the_file_and_the_sample(tmp_path):
    _volume(tmp_path / "good.nii.gz")
    _truncate(_volume(tmp_path / "cut.nii.gz", seed=1))
    ds = VolumeDataset("test", items=[{"image": "good.nii.gz"}, {"image": "cut.nii.gz"}], root=str(tmp_path))
    assert ds[0].image.shape == (1, 8, 8, 8)
    with pytest.raises(DataError, match=_unreadable("test-0001-cut", tmp_path / "cut.nii.gz", "EOFError")):
        ds[1]


def test_a_truncated_nrrd_and_label_map_name_their_file(tmp_path):
    nrrd = pytest.importorskip("nrrd")
    data = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    nrrd.write(str(tmp_path / "cut.nrrd"), data, {"encoding": "raw"})
    _truncate(tmp_path / "cut.nrrd")
    with pytest.raises(DataError, match=_unreadable("test-0000-cut", tmp_path / "cut.nrrd", "NRRDError")):
        VolumeDataset("test", items=[{"image": "cut.nrrd"}], root=str(tmp_path))[0]
    _volume(tmp_path / "img.nii.gz")
    ids = np.random.default_rng(0).integers(0, 3, (8, 8, 8)).astype(np.int16)
    nib.save(nib.Nifti1Image(ids, np.eye(4)), tmp_path / "seg.nii.gz")
    _truncate(tmp_path / "seg.nii.gz")
    ds = VolumeDataset("test", items=[{"image": "img.nii.gz", "label_map": "seg.nii.gz", "label": 1}],
                       root=str(tmp_path))
    with pytest.raises(DataError, match=_unreadable("test-0000-img", tmp_path / "seg.nii.gz", "")):
        ds[0]


def test_a_truncated_volume_in_the_middle_of_a_run_is_bad_input_and_keeps_finished_cells(tmp_path, capsys):
    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        _volume(tmp_path / f"{name}.nii.gz", seed)
    _truncate(tmp_path / "c.nii.gz")
    torch.manual_seed(0)
    save_tensors(tmp_path / "w.safetensors", build_model("small_cnn", 1, 2, (8, 8, 8), width=4).state_dict())
    good = {"name": "volume", "alias": "good", "params": {"root": str(tmp_path), "items": [
        {"image": "a.nii.gz", "label": 1}]}}
    bad = {"name": "volume", "alias": "bad", "params": {"root": str(tmp_path), "items": [
        {"image": "b.nii.gz", "label": 1}, {"image": "c.nii.gz", "label": 0}]}}
    suite = {"name": "trunc", "samples": 2, "batch_size": 1, "reliability": 0, "datasets": [good, bad],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "weights": str(tmp_path / "w.safetensors")}],
             "explainers": ["saliency"], "metrics": ["sparseness"]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main(["validate", str(path)]) == 0  # validate reads the first test item only
    capsys.readouterr()
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT  # was 3, a partial run (1 where every cell failed), its EOFError unnamed
    assert err[-1] == (f"faithbench: error: {path}: dataset 'bad': sample test-0001-c: {tmp_path / 'c.nii.gz'}: "
                       "cannot read "
                       "volume: EOFError: Compressed file ended before the end-of-stream marker was reached "
                       "(finished cells are cached; a rerun resumes)")
    suite["datasets"] = [good]  # the good dataset's cell is in the cache: a rerun of it computes nothing
    path.write_text(yaml.safe_dump(suite))
    assert main(["run", str(path), "--out", str(tmp_path / "out2"), "--cache", str(tmp_path / "cache")]) == 0
    assert "computed 0 checkpoints, 0 saliency batches, 0 score batches" in capsys.readouterr().err
