"""A fuzzing review of dataset, model and top-level keys (clifuzz5 F8): refusals that named no key, or the
wrong one: a capitalised key gave an empty location (``: unknown key 'Samples'``) or lost its own name
(``models[0].preprocess: Input should be 'auto' or 'none'``), a model entry's ``epochs`` was told "did you mean
'preprocess'?", and ``weights: ''`` was read as the suite's folder."""

from __future__ import annotations

import pytest

from faithbench.cli import main

SUITE = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [MODEL]
explainers: [random]
metrics: [relevance_mass]
"""
MODEL = "{name: small_cnn, params: {width: 4}, recipe: {epochs: 1}}"


@pytest.mark.parametrize("model, top, expected", [
    (MODEL, "Samples: 3", "Samples: unknown key 'Samples'; did you mean 'samples'?"),
    ("{name: small_cnn, preprocess: {Size: [32, 32]}, recipe: {epochs: 1}}", "",
     "models[0].preprocess.Size: unknown key 'Size'; did you mean 'size'?"),
    ("{name: small_cnn, epochs: 1, recipe: {lr: 0.01}}", "",
     "models[0].epochs: unknown key 'epochs'; it belongs under 'recipe': write recipe: {epochs: ...}"),
    ("{name: small_cnn, weights: ''}", "", "models[0].weights: expected the path of a weights file, got an empty "
                                          "string"),
    ("{name: small_cnn, weights: '  '}", "", "models[0].weights: expected the path of a weights file, got an "
                                            "empty string"),
])
def test_the_refusal_names_the_key(tmp_path, capsys, model, top, expected):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("MODEL", model) + top + "\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"faithbench: error: {path}: {expected}"


@pytest.mark.parametrize("dataset, expected", [
    ("{name: folder, params: {path: imgs, patient_pattern: '('}}",
     "folder: patient_pattern '(' is not a regular expression (missing ), unterminated subpattern at position 0)"),
    ("{name: folder, params: {path: imgs, classes: NORMAL}}",
     "folder: expected classes a list of class names, got 'NORMAL'"),  # was iterated as 'N', 'O', 'R', ...
    ("{name: mni_lesion, params: {dims: 2.0}}", "mni_lesion: expected dims 2 or 3, got 2.0"),
    ("{name: volume, params: {items: [{image: a.nii.gz}], size: [16.5, 16, 16]}}",
     "volume: expected size [D, H, W] of positive ints, got [16.5, 16, 16]"),
    ("{name: volume, params: {items: [{image: a.nii.gz}], size: 16}}",
     "volume: expected size [D, H, W] of positive ints, got 16"),
])
def test_a_dataset_parameter_of_the_wrong_type_is_named(tmp_path, capsys, dataset, expected):
    """mni_lesion dims 2.0 failed with "can't multiply sequence by non-int", a float volume size with torch's
    interpolate error, an invalid patient_pattern with re's message alone (clifuzz5 F8)."""
    path = tmp_path / "suite.yaml"
    text = SUITE.replace("MODEL", MODEL).replace("[{name: phantom_cxr, params: {size: 32, n: 8}}]", f"[{dataset}]")
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"faithbench: error: {path}: datasets[0].params: {expected}"


def test_numpy_integers_are_ints_for_dataset_parameters(tmp_path):
    """A diff review: after the type checks above, volume size as np.array([16, 16, 16]) or a tuple of np.int64
    and mni_lesion dims np.int64(3) were refused; phantom n np.int64(5) was refused as outside [1, 1000000]."""
    import nibabel as nib
    import numpy as np

    from faithbench.registry import datasets

    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8)).astype(np.float32), np.eye(4)),
             tmp_path / "a.nii.gz")
    volume = datasets.get("volume")
    items = [{"image": str(tmp_path / "a.nii.gz"), "label": 1}]
    for size in (np.array([16, 16, 16]), (np.int64(16),) * 3):
        assert volume("test", items=items, size=size).size is not None
    with pytest.raises(ValueError, match=r"expected size \[D, H, W\] of positive ints, got \[True, 16, 16\]"):
        volume("test", items=items, size=[True, 16, 16])
    assert datasets.get("mni_lesion")("test", dims=np.int64(3), n=2)[0].image.ndim == 4
    assert len(datasets.get("phantom_cxr")("test", n=np.int64(5))) == 5
