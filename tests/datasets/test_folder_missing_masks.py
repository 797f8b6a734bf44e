"""An image without a mask file in a class whose other images have one (held-out review newuser13,
D2): it gets an empty mask, as documented, and its localisation scores are undefined; that was
silent, and is now one warning naming the count and up to 3 files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from faithbench.datasets import DataWarning
from faithbench.datasets.folder import FolderDataset
from faithbench.datasets.folder_labels import unmasked_images


def _write(root, missing=("img05.png", "img13.png"), labels_of=lambda i: "lesion" if i % 2 else "normal"):
    """24 16x16 PNGs, odd ones ``lesion`` with a 4x4 mask each but ``missing``, even ones ``normal``
    without masks; labels.csv."""
    (root / "img").mkdir()
    (root / "masks").mkdir()
    rows = ["path,label"]
    for i in range(24):
        name = f"img{i:02d}.png"
        Image.fromarray(np.full((16, 16), 5 * i, np.uint8)).save(root / "img" / name)
        rows.append(f"{name},{labels_of(i)}")
        if labels_of(i) == "lesion" and name not in missing:
            mask = np.zeros((16, 16), np.uint8)
            mask[4:8, 4:8] = 255
            Image.fromarray(mask).save(root / "masks" / name)
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def _dataset(root, split="test", **kw):
    return FolderDataset(split, path="img", labels="labels.csv", masks="masks", size=16, root=str(root),
                         fractions=(0.5, 0.17, 0.33), **kw)


def test_unmasked_images_names_count_and_files_per_class():
    images = [("a.png", 1, True), ("b.png", 1, False), ("c.png", 0, False), ("d.png", 1, False), ("e.png", 1, True)]
    assert unmasked_images(images, ("normal", "lesion"), "M", "lesion") == (
        "M: 2 of 4 images of class 'lesion' have no mask file (e.g. 'b.png', 'd.png') while other images of its "
        "class have one: each gets an empty 'lesion' mask (no finding; its localisation scores are undefined); a "
        "mask has its image's relative path (any image suffix)")
    # class 0 has no mask at all (normal images): not warned of; every lesion image masked: nothing
    assert unmasked_images([("a.png", 1, True), ("c.png", 0, False)], ("normal", "lesion"), "M", "lesion") is None
    two = unmasked_images(images + [("f.png", 0, True)], ("normal", "lesion"), "M", "x")
    assert two is not None and two.startswith(
        "M: 1 of 2 images of class 'normal' and 2 of 4 images of class 'lesion' have no mask file (e.g. 'c.png', "
        "'b.png', 'd.png') while other images of their class have one")
    one = unmasked_images([("a.png", 1, True), ("b.png", 1, False)], ("normal", "lesion"), "M", "x")
    assert one is not None and "1 of 2 images of class 'lesion' has no mask file (e.g. 'b.png')" in one
    assert "it gets an empty 'x' mask" in one


def test_a_lesion_image_without_its_mask_is_warned_of_once_in_every_split(tmp_path):
    _write(tmp_path)
    with pytest.warns(DataWarning) as record:
        test = _dataset(tmp_path)
    expected = (f"{tmp_path}/masks: 2 of 12 images of class 'lesion' have no mask file (e.g. 'img05.png', "
                "'img13.png') while other images of its class have one: each gets an empty 'lesion' mask (no "
                "finding; its localisation scores are undefined); a mask has its image's relative path (any image "
                "suffix)")
    assert [str(w.message) for w in record if "no mask file" in str(w.message)] == [expected]
    assert test.data_warnings == [expected]  # kept for the manifest
    with pytest.warns(DataWarning):
        train = _dataset(tmp_path, "train")
    assert train.data_warnings == [expected]  # the same line: the manifest keeps it once
    ids = [test.entries[i][0].name for i in range(len(test))]  # img13 is a test image, img05 a train one
    assert not test[ids.index("img13.png")].masks["lesion"].any()  # the behaviour stays: an empty mask
    assert int(test[ids.index("img01.png")].masks["lesion"].sum()) == 16  # its 4x4 mask


def test_no_warning_when_every_image_of_a_masked_class_has_its_mask(tmp_path):
    _write(tmp_path, missing=())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = _dataset(tmp_path)  # normal images without masks: no finding, not warned of
    assert ds.data_warnings == []
