"""A data warning raised while a run reads its samples (a label map placed from its image's first
voxel) went to stderr only; the run folder now records it: manifest.json and the report."""

import json

import numpy as np
import pytest

from faithbench.config import suite_from_dict
from faithbench.runner.run import run_suite
from faithbench.store import Cache


def test_a_data_warning_is_recorded_in_the_manifest_and_the_report(tmp_path):
    nib = pytest.importorskip("nibabel")
    from safetensors.torch import save_file

    from faithbench.models.architectures import build_model

    rng = np.random.default_rng(0)
    items = []
    for i in range(3):
        nib.save(nib.Nifti1Image(rng.random((16, 16, 16)).astype(np.float32), np.eye(4)), tmp_path / f"v{i}.nii.gz")
        seg = np.zeros((16, 16, 8), np.int16)  # 8 of the image's 16 slices, with the image's affine
        seg[4:8, 4:8, 2:6] = 1
        nib.save(nib.Nifti1Image(seg, np.eye(4)), tmp_path / f"s{i}.nii.gz")
        items.append({"image": f"v{i}.nii.gz", "label_map": f"s{i}.nii.gz"})
    model = build_model("small_cnn", 1, 2, (16, 16, 16))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "w.safetensors")
    suite = suite_from_dict({
        "name": "warned", "samples": 3, "batch_size": 3, "reliability": 0,
        "datasets": [{"name": "volume", "params": {"items": items, "root": str(tmp_path)}}],
        "models": [{"name": "small_cnn", "weights": str(tmp_path / "w.safetensors")}],
        "explainers": ["random", "sobel"], "metrics": [{"name": "relevance_mass", "params": {"mask": "label_1"}}]})
    with pytest.warns(UserWarning, match="has the same affine as its image"):
        run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    recorded = json.loads((tmp_path / "out" / "manifest.json").read_text())["data_warnings"]
    assert len(recorded) == 3  # one per label map, each once though every split and cell reads it again
    assert all(w.startswith(str(tmp_path / f"s{i}.nii.gz")) for i, w in enumerate(sorted(recorded)))
    assert "data and model warnings" in (tmp_path / "out" / "index.html").read_text()


def test_a_warning_raised_when_the_dataset_is_built_is_recorded_too(tmp_path, monkeypatch):
    """A diff review: the folder dataset warns when it is built, which validation and the preflight
    do before any group runs; the groups reuse those objects, so nothing reached the manifest."""
    import sys

    import faithbench

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "datasets"))
    try:
        from test_folder import _write
    finally:
        sys.path.pop(0)
    _write(tmp_path)
    (tmp_path / "masks" / "im3.png").rename(tmp_path / "masks" / "img3.png")  # a typo in a mask's name
    monkeypatch.setenv("FAITHBENCH_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="named like no image"):
        suite = faithbench.load_suite({
            "name": "typo", "samples": 4, "batch_size": 4, "reliability": 0,
            "datasets": [{"name": "folder", "params": {"path": "img", "labels": "labels.csv", "masks": "masks",
                                                       "size": 32}}],
            "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": {"epochs": 1}}],
            "explainers": ["random", "sobel"], "metrics": ["pointing_game"]})
        run_suite(suite, tmp_path / "out", cache=Cache(tmp_path / "cache"), progress=False, log=lambda m: None)
    recorded = json.loads((tmp_path / "out" / "manifest.json").read_text())["data_warnings"]
    assert [w for w in recorded if "named like no image" in w] == [
        f"{tmp_path}/masks: 1 of 12 mask files are named like no image of {tmp_path}/img (e.g. 'img3.png'); a mask "
        "has its image's relative path (any image suffix), and an image without one gets an empty mask"]
