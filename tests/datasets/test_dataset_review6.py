"""A held-out review of the built-in datasets (round 6): ranges the docs promise and validate's checks."""

import textwrap

import pytest

from faithbench.cli import main
from faithbench.configurable import ParameterError
from faithbench.registry import datasets


def _suite(tmp_path, dataset: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""
        name: s
        samples: 4
        datasets: [{dataset}]
        models: [{{name: small_cnn, recipe: {{epochs: 1}}}}]
        explainers: [random]
        metrics: [deletion_auc]
    """))
    return str(path)


@pytest.mark.parametrize("name, params, message", [
    # F1: the longitudinal phantom has phantom_cxr's lungs, so phantom_cxr's largest radius
    ("phantom_longitudinal", {"lesion_radius": [20, 30]}, r"phantom_longitudinal: expected lesion_radius \[min, max\] "
     r"with max <= 8 \(the narrowest lung is 16 px wide at size 64: .*\), got \[20, 30\]$"),
    ("phantom_longitudinal", {"lesion_radius": [2, 8.5]}, r"with max <= 8 .*, got \[2, 8.5\]$"),
    # F2: mni_lesion shrank any radius until the ball fitted the white matter, silently
    ("mni_lesion", {"lesion_radius": [20, 30]}, r"mni_lesion: expected lesion_radius \[min, max\] with max <= 8 "
     r"\(pixels at size 64, .* shrunk until it fits in the white matter\), got \[20, 30\]$"),
    ("mni_lesion", {"dims": 3, "lesion_radius": [1, 5]}, r"mni_lesion: expected lesion_radius \[min, max\] with "
     r"max <= 4.5 \(voxels at size 32, .*\), got \[1, 5\]$"),
])
def test_a_lesion_radius_above_the_documented_max_is_refused(name, params, message):
    with pytest.raises(ParameterError, match=message):
        datasets.get(name)(split="test", **params)


def test_the_largest_documented_radius_still_builds():
    longitudinal = datasets.get("phantom_longitudinal")(split="test", n=2, lesion_radius=[2, 8])
    assert longitudinal.lesion_radius == (2.0, 8.0)
    mni = datasets.get("mni_lesion")(split="test", n=2, size=16, lesion_radius=[2, 8])
    assert mni.lesion_radius == (0.5, 2.0)  # scaled with size: 16 / 64
    assert datasets.get("mni_lesion")(split="test", n=2, dims=3, size=16, lesion_radius=[4, 4]).lesion_radius == (2, 2)


def test_validate_refuses_a_longitudinal_radius_in_one_line(tmp_path, capsys):
    bad = _suite(tmp_path, "{name: phantom_longitudinal, params: {lesion_radius: [20, 30]}}")
    assert main(["validate", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "datasets[0].params: phantom_longitudinal: expected lesion_radius" in err


@pytest.mark.parametrize("name", ["phantom_cxr", "phantom_organ3d", "phantom_cxr_multilabel", "phantom_longitudinal",
                                  "mni_lesion"])
@pytest.mark.parametrize("seed", [2**70, 900_000_000_001, -900_000_000_001])
def test_a_seed_beyond_64_bit_generator_seeds_is_refused_naming_it(name, seed):
    """F4: seed 2**70 was 'test sample 0 cannot be read: ValueError: Overflow when unpacking long long'."""
    with pytest.raises(ParameterError, match=rf"^{name}: expected seed in \[-900000000000, 900000000000\] "
                                             rf"\(.*64 bits\), got {seed}$"):
        datasets.get(name)(split="test", n=2, seed=seed)


@pytest.mark.parametrize("name", ["phantom_cxr", "phantom_organ3d", "phantom_cxr_multilabel", "phantom_longitudinal",
                                  "mni_lesion"])
def test_the_extreme_seeds_generate(name):
    for seed in (900_000_000_000, -900_000_000_000):
        small = {"size": 16} if name == "mni_lesion" else {}
        dataset = datasets.get(name)(split="test", n=1_000_000, seed=seed, **small)
        assert dataset[999_999].image.max() > 0  # the last sample's generator seed fits too


def test_small_seeds_keep_their_images():
    """The check changes no seed that worked: the generator's seed is still seed * 10000019 + offset + i."""
    from faithbench.datasets import PhantomCXR

    assert PhantomCXR("val", n=3, seed=7).generator(2).initial_seed() == 7 * 10_000_019 + 1_000_003 + 2


@pytest.mark.parametrize("name, params, message", [
    ("medmnist", {"size": 32}, r"medmnist: expected size in \(28, 64, 128, 224\), got 32"),
    ("medmnist", {"n": 0}, "medmnist: expected n >= 1, got 0"),
    ("medmnist", {"flag": "pneumonimnist"}, "did you mean 'pneumoniamnist'"),
    ("phantom_cxr", {"noise": -1.0}, "phantom_cxr: expected noise >= 0, got -1.0"),
    ("phantom_cxr", {"lesion_radius": [3, 2]}, r"phantom_cxr: expected lesion_radius \[min, max\] with 0 < min"),
    ("mni_lesion", {"polarity": "x"}, "mni_lesion: expected polarity dark, bright or both, got 'x'"),
    ("folder", {"path": "images", "fit": "zoom"}, "folder: expected fit crop, pad or squash, got 'zoom'"),
    ("volume", {"items": [], "orientation": "ras"}, "volume: expected orientation one of"),
])
def test_create_dataset_raises_parameter_error_for_a_range(name, params, message):
    """F5: docs/api.md promises ParameterError for a value of the wrong range; it was a plain ValueError."""
    from faithbench import create_dataset

    with pytest.raises(ParameterError, match=message):
        create_dataset(name, **params)


def test_a_missing_file_is_a_data_error_not_a_parameter_error(tmp_path):
    from faithbench import create_dataset
    from faithbench.datasets import DataError

    with pytest.raises(DataError, match="bloodmnist.npz is not in") as caught:
        create_dataset("medmnist", flag="bloodmnist", root=str(tmp_path))
    assert not isinstance(caught.value, ParameterError)


def test_validate_refuses_a_medmnist_train_split_of_one_class(real_data, tmp_path, capsys):
    """F3: validate said ok to n: 1 (one class in the train split) and the run refused it (exit 2)."""
    real_data("medmnist/pneumoniamnist.npz")
    one = _suite(tmp_path, "{name: medmnist, params: {flag: pneumoniamnist, n: 1}}")
    assert main(["validate", one]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "datasets[0].params: dataset 'medmnist': model 'small_cnn': the train split " \
        "holds one class only ('normal': 1)" in err
    two = _suite(tmp_path, "{name: medmnist, params: {flag: pneumoniamnist, n: 3}}")
    assert main(["validate", two]) == 0  # 'normal' and 'pneumonia' interleaved: n 3 holds both


def test_a_medmnist_labels_split_reads_no_image(tmp_path, monkeypatch):
    import numpy as np

    folder = tmp_path / "medmnist"
    folder.mkdir()
    arrays = {f"{split}_labels": np.array([[0], [0], [0]], np.uint8) for split in ("train", "val", "test")}
    arrays.update({f"{split}_images": np.zeros((3, 28, 28), np.uint8) for split in ("val", "test")})
    np.savez(folder / "breastmnist.npz", **arrays)  # no train_images: building the split itself fails
    with pytest.raises(ValueError, match="has no arrays 'train_images'"):
        datasets.get("medmnist")("train", flag="breastmnist", root=str(tmp_path))
    # the labels split reads the images' .npy header (their count and side), so it refuses this file too
    with pytest.raises(ValueError, match="has no arrays 'train_images'"):
        datasets.get("medmnist").labels_split("train", flag="breastmnist", root=str(tmp_path))
    arrays["train_images"] = np.zeros((3, 28, 28), np.uint8)
    np.savez(folder / "breastmnist.npz", **arrays)
    read = []
    getitem = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, key: read.append(key) or getitem(self, key))
    train = datasets.get("medmnist").labels_split("train", flag="breastmnist", root=str(tmp_path))
    assert read == ["train_labels"]  # no image array read
    assert train._images is None and len(train) == 3 and train.labels() == [0, 0, 0]
    assert train.classes == ("malignant", "normal, benign")


def test_list_datasets_params_shows_medmnist_root(capsys):
    """F6: `root` overrides the data root (docs/datasets.md) but `list datasets --params` left it out."""
    assert main(["list", "datasets", "medmnist", "--params"]) == 0
    out = capsys.readouterr().out
    assert "parameters: flag='pneumoniamnist', size=28, root=None, n=None, finding=None, seed=0" in out
