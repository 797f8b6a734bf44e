"""Every numeric parameter of a built-in dataset outside its range is refused on construction, so by
``faithbench validate`` (exit 2, one line naming the parameter, its range and the value)."""

import math
import textwrap

import pytest

from faithbench.cli import main
from faithbench.registry import datasets

FILES = {"path": "images", "labels": "labels.csv"}  # never read: the ranges are checked first


@pytest.mark.parametrize("name, params, message", [
    ("phantom_cxr", {"prevalence": 1.5}, r"phantom_cxr: expected prevalence in \(0, 1\) \(.*undefined\), got 1.5"),
    ("phantom_cxr", {"prevalence": 1.0}, r"expected prevalence in \(0, 1\)"),  # every label 1: no test AUC
    ("phantom_cxr", {"prevalence": 0.0}, r"expected prevalence in \(0, 1\)"),
    ("phantom_cxr", {"channels": 0}, "expected channels >= 1, got 0"),
    ("phantom_cxr", {"lesion_contrast": 0.0}, "expected lesion_contrast > 0, got 0.0"),
    ("phantom_cxr", {"noise": -0.1}, "expected noise >= 0, got -0.1"),
    ("phantom_cxr", {"noise": math.inf}, "expected noise >= 0, got inf"),
    ("phantom_cxr", {"lesion_radius": [0.0, 3.0]}, r"expected lesion_radius \[min, max\] with 0 < min <= max"),
    ("phantom_cxr", {"lesion_radius": [4.0, 2.0]}, r"expected lesion_radius \[min, max\] with 0 < min <= max"),
    ("phantom_cxr", {"lesion_radius": 3}, r"expected lesion_radius \[min, max\] .*, got 3"),
    ("phantom_cxr", {"size": 16}, "expected size in [32, 4096], got 16"),
    ("phantom_cxr", {"n": -5}, r"expected n in [1, 1000000] \(sample i of a split is seeded from \(seed, split, i\); "
     r"more samples would reach another split's seeds and repeat its images\), got -5"),
    ("phantom_cxr", {"shortcut": 1.5}, r"expected shortcut in \[0, 1\], got 1.5"),
    ("phantom_organ3d", {"prevalence": 1.0}, r"phantom_organ3d: expected prevalence in \(0, 1\)"),
    ("phantom_organ3d", {"size": 16}, "expected size in [24, 128], got 16"),
    ("phantom_cxr_multilabel", {"prevalence": 0.0}, r"phantom_cxr_multilabel: expected prevalence in \(0, 1\)"),
    ("phantom_cxr_multilabel", {"n": 0}, "phantom_cxr_multilabel: expected n in [1, 1000000]"),  # was phantom_cxr's
    ("phantom_cxr_multilabel", {"size": 16}, "phantom_cxr_multilabel: expected size in [32, 4096], got 16"),
    ("phantom_cxr_multilabel", {"channels": 0}, "expected channels >= 1, got 0"),
    ("phantom_cxr_multilabel", {"contrast": -0.2}, "expected contrast > 0, got -0.2"),
    ("phantom_cxr_multilabel", {"noise": -1.0}, "expected noise >= 0, got -1.0"),
    ("phantom_longitudinal", {"prevalence": 1.0}, r"phantom_longitudinal: expected prevalence in \(0, 1\)"),
    ("phantom_longitudinal", {"channels": 0}, "expected channels >= 1, got 0"),
    ("phantom_longitudinal", {"lesion_contrast": 0.0}, "expected lesion_contrast > 0"),
    ("phantom_longitudinal", {"noise": -0.5}, "expected noise >= 0, got -0.5"),
    ("phantom_longitudinal", {"lesion_radius": [3.0, 1.0]}, r"expected lesion_radius \[min, max\]"),
    ("phantom_longitudinal", {"max_visits": 0}, "expected max_visits in [1, 1000], got 0"),
    # upper bounds (a fuzzing review: size 1e12 was an allocation error, exit 1; max_visits 1e12 hung validate)
    ("phantom_cxr", {"size": 10**12}, "phantom_cxr: expected size in [32, 4096], got 1000000000000"),
    ("phantom_organ3d", {"size": 300}, "phantom_organ3d: expected size in [24, 128], got 300"),
    ("phantom_longitudinal", {"max_visits": 10**12}, "expected max_visits in [1, 1000], got 1000000000000"),
    ("phantom_longitudinal", {"growth": 0.0}, "expected growth > 0, got 0.0"),
    ("longitudinal_folder", {**FILES, "size": 0}, "longitudinal_folder: expected size in [8, 8192], got 0"),
    ("longitudinal_folder", {**FILES, "n": -5}, "longitudinal_folder: expected n >= 1, got -5"),
    ("longitudinal_folder", {**FILES, "seq_len": 0}, "expected seq_len >= 1, got 0"),
    ("folder", {"path": "images", "n": 0}, "folder: expected n >= 1, got 0"),  # n: -5 dropped 5 images
    ("folder", {"path": "images", "size": 4}, "folder: expected size in [8, 8192], got 4"),
    ("mni_lesion", {"prevalence": 1.0}, r"mni_lesion: expected prevalence in \(0, 1\)"),
    ("mni_lesion", {"channels": 0}, "expected channels >= 1, got 0"),
    ("mni_lesion", {"lesion_contrast": 0.0}, "expected lesion_contrast > 0"),  # polarity gives the sign
    ("mni_lesion", {"scale": 1.0}, r"expected scale in \[0, 1\), got 1.0"),  # zoom 1 - scale = 0
    ("mni_lesion", {"shift": 0.5}, r"expected shift in \[0, 0.5\), got 0.5"),
    ("mni_lesion", {"rotation": -5.0}, r"expected rotation in \[0, 180\], got -5.0"),
    ("mni_lesion", {"noise": -0.1}, "expected noise >= 0"),
    ("mni_lesion", {"lesion_radius": [0.0, 2.0]}, r"expected lesion_radius \[min, max\]"),
    ("mni_lesion", {"n": 0}, "mni_lesion: expected n in [1, 1000000]"),
    # a fuzzing review (clifuzz5 F1, F9): n 1e12 hung validate, and train[1_000_003] was val[0]
    # a fuzzing review (clifuzz5 F7): [100, 200] at size 32 made the lesion mask every pixel
    ("phantom_cxr", {"lesion_radius": [100, 200]}, r"phantom_cxr: expected lesion_radius \[min, max\] with max <= 8 "
     r"\(the narrowest lung is 16 px wide at size 64: a larger lesion leaves its organ, and a far larger one covers "
     r"the body, where every map scores the same against the lesion mask\), got \[100, 200\]$"),
    ("phantom_cxr", {"lesion_radius": [2, 8.5]}, r"with max <= 8 .*, got \[2, 8.5\]$"),
    ("phantom_organ3d", {"lesion_radius": [1, 4.5]}, r"phantom_organ3d: expected lesion_radius \[min, max\] with "
     r"max <= 4 \(the spleen is at least 8 voxels across at size 32: .*, got \[1, 4.5\]$"),
    ("phantom_cxr", {"n": 1_000_001}, r"phantom_cxr: expected n in [1, 1000000] \(sample i .*\), got 1000001"),
    ("phantom_cxr", {"n": 10**12}, r"phantom_cxr: expected n in [1, 1000000] .*, got 1000000000000"),
    ("phantom_cxr", {"n": 2**64}, r"phantom_cxr: expected n in [1, 1000000] .*, got 18446744073709551616"),
    ("phantom_organ3d", {"n": 1_000_004}, r"phantom_organ3d: expected n in [1, 1000000]"),
    ("phantom_cxr_multilabel", {"n": 1_000_004}, r"phantom_cxr_multilabel: expected n in [1, 1000000]"),
    ("phantom_longitudinal", {"n": 1_000_004}, r"phantom_longitudinal: expected n in [1, 1000000]"),
    ("mni_lesion", {"n": 1_000_004}, r"mni_lesion: expected n in [1, 1000000]"),
    ("mni_lesion", {"size": 8}, "mni_lesion: expected size in [16, 512], got 8"),
    ("medmnist", {"n": 0}, "medmnist: expected n >= 1, got 0"),
])
def test_out_of_range_dataset_parameter(name, params, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[") if " in [" in message else message):
        datasets.get(name)(split="test", **params)


def test_in_range_values_still_build():
    from faithbench.datasets import MNILesion, PhantomCXR, PhantomCXRMultiLabel, PhantomLongitudinal

    assert PhantomCXR(n=2, size=32, prevalence=0.01, lesion_radius=[3, 3], noise=0.0)[1].image.shape == (1, 32, 32)
    assert PhantomCXR(n=2, size=32, lesion_radius=[8, 8]).lesion_radius == (8.0, 8.0)
    assert len(PhantomCXRMultiLabel(n=2, size=32, prevalence=0.99)) == 2
    assert len(PhantomLongitudinal(n=2, size=32, growth=0.5)) == 2
    assert MNILesion(n=2, size=16, scale=0.0, shift=0.0, rotation=180.0).n == 2


@pytest.mark.parametrize("params, message", [
    ("{prevalence: 1.5}", r"datasets[0].params: phantom_cxr: expected prevalence in (0, 1)"),
    ("{prevalence: 1.0}", r"datasets[0].params: phantom_cxr: expected prevalence in (0, 1)"),
    ("{noise: -0.1}", "datasets[0].params: phantom_cxr: expected noise >= 0, got -0.1"),
])
def test_validate_refuses_an_out_of_range_dataset_parameter(tmp_path, capsys, params, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(f"""
        name: bad
        datasets: [{{name: phantom_cxr, params: {params}}}]
        models: [{{name: small_cnn, recipe: default}}]
        explainers: [saliency]
        metrics: [deletion_auc]
    """))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_the_largest_phantom_split_stays_clear_of_the_next_split():
    from faithbench.datasets import PhantomCXR

    last = PhantomCXR("train", n=1_000_000, size=32).generator(999_999).initial_seed()
    assert last < PhantomCXR("val", n=1, size=32).generator(0).initial_seed() == 1_000_003


def test_the_train_split_check_stops_at_the_second_class(monkeypatch):
    """A fuzzing review (clifuzz5 F1): validate built one generator per sample (51 µs each), so n 1e6 took
    about a minute a split; the check stops once both classes are seen."""
    from faithbench.datasets import PhantomCXR
    from faithbench.model_checks import train_class_problem

    calls = []
    original = PhantomCXR.generator
    monkeypatch.setattr(PhantomCXR, "generator", lambda self, i: calls.append(i) or original(self, i))
    train = PhantomCXR("train", n=20_000, size=32)
    model = type("Entry", (), {"recipe": None, "label": "m"})()
    assert train_class_problem("phantom_cxr", [model], train) is None
    assert 2 <= len(calls) < 50
    calls.clear()
    one_class = PhantomCXR("train", n=30, size=32, prevalence=1e-9)
    assert "holds one class only ('normal': 30)" in train_class_problem("phantom_cxr", [model], one_class)
    assert len(calls) == 30
