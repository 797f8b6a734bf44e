"""What ``folder`` makes of a user's layout (a held-out review): mask folders in or equal to the
image folder, labels that invented classes, a patient pattern that matched nothing, Excel's BOM,
macOS dot-files, images beside the class folders, a fraction of 0, the documented Kermany pattern."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faithbench.datasets import DataError, DataWarning, FolderDataset

DISC = ((np.mgrid[:32, :32][0] - 16) ** 2 + (np.mgrid[:32, :32][1] - 16) ** 2 < 36)  # 113 px


def _image(path, value=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32), value, np.uint8)).save(path)


def _mask(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((DISC * 255).astype(np.uint8)).save(path)


def _classes(root, k=4):
    for label in ("neg", "pos"):
        for i in range(k):
            _image(root / label / f"{label}{i}.png")


def _all(kw):
    return [e for split in ("train", "val", "test") for e in FolderDataset(split, **kw).entries]


def test_a_mask_folder_inside_the_image_folder_is_no_class(tmp_path):
    _classes(tmp_path / "img")
    for label in ("neg", "pos"):
        for i in range(4):
            _mask(tmp_path / "img" / "masks" / label / f"{label}{i}.png")
    kw = dict(path="img", masks="img/masks", size=32, root=str(tmp_path))
    ds = FolderDataset("test", **kw)
    assert ds.classes == ("neg", "pos")  # was ('masks', 'neg', 'pos')
    assert len(_all(kw)) == 8 and int(ds[0].masks["lesion"].sum()) == DISC.sum()


def test_masks_beside_the_images_need_mask_suffix(tmp_path):
    for label in ("benign", "malignant"):
        for i in range(1, 5):
            _image(tmp_path / label / f"{label} ({i}).png")
            _mask(tmp_path / label / f"{label} ({i})_mask.png")
    _mask(tmp_path / "benign" / "benign (1)_mask_1.png")  # BUSI's second mask of an image
    with pytest.raises(DataError, match=rf"the mask folder {tmp_path} is the image folder {tmp_path}: .*mask_suffix"):
        FolderDataset("test", path=str(tmp_path), masks=str(tmp_path))  # was each image its own mask (all inside)
    kw = dict(path=str(tmp_path), masks=str(tmp_path), mask_suffix="_mask", size=32)
    with pytest.warns(DataWarning, match=r"1 of 9 mask files are named like no image .*'benign/benign \(1\)_mask_1"):
        entries = _all(kw)
    assert sorted(e[0].name for e in entries) == sorted(f"{c} ({i}).png" for c in ("benign", "malignant")
                                                        for i in range(1, 5))  # no mask file among the images
    with pytest.warns(DataWarning, match="mask files are named like no image"):
        ds = FolderDataset("test", **kw)
    assert all(int(ds[i].masks["lesion"].sum()) == DISC.sum() for i in range(len(ds)))


def test_labels_that_invented_classes(tmp_path):
    _classes(tmp_path / "img")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nneg/neg0.png,neg\nneg/neg1.png, \npos/pos0.png,pos\n")
    with pytest.raises(DataError, match=r"labels.csv: line 3: empty label"):
        FolderDataset("test", path="img", labels="labels.csv", root=str(tmp_path))  # was a class ''
    csv.write_text("path,label\n" + "".join(f"neg/neg{i}.png,neg\n" for i in range(4)))
    with pytest.raises(DataError, match=r"images of one class only \('neg': 4 images\)"):
        FolderDataset("test", path="img", labels="labels.csv", root=str(tmp_path))  # was a one-output model
    csv.write_text("path,label\n" + "".join(f"{c}/{c}{i}.png,{1 + (c == 'pos')}\n" for c in ("neg", "pos")
                                            for i in range(4)))
    with pytest.warns(DataWarning, match=r"class 'class_0' has no image \(numeric labels are class indices from 0\)"):
        ds = FolderDataset("test", path="img", labels="labels.csv", root=str(tmp_path))
    assert ds.classes == ("class_0", "class_1", "class_2")
    with pytest.warns(DataWarning, match=r"class 'other' has no image \(it is named in the dataset's classes\)"):
        FolderDataset("test", path="img", classes=["neg", "pos", "other"], root=str(tmp_path))
    csv.write_text("path,label\n" + "".join(f"neg/neg{i}.png,neg\n" for i in range(4)))
    with pytest.warns(DataWarning, match=r"images of one class only \('neg': 4 images\); no image of 'pos'"):
        FolderDataset("test", path="img", labels="labels.csv", classes=["neg", "pos"], root=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FolderDataset("test", path="img", root=str(tmp_path))  # two classes with images: quiet


def test_patient_pattern_that_matches_no_or_some_names(tmp_path):
    for label in ("neg", "pos"):
        for i in range(4):
            _image(tmp_path / "img" / label / (f"person{i}_{label}.png" if i < 3 else f"other{i}_{label}.png"))
    kw = dict(path="img", size=32, root=str(tmp_path))
    with pytest.raises(DataError, match=r"patient_pattern '\^\(patient\\\\d\+\)' matches none of the 8 file names"):
        FolderDataset("test", patient_pattern=r"^(patient\d+)", **kw)  # was 8 patients, silently
    with pytest.warns(DataWarning, match=r"matches 6 of 8 file names; the other 2 \(e.g. 'other3_neg.png'\) are each a "
                                         r"patient of their own"):
        ds = FolderDataset("test", patient_pattern=r"^(person\d+)", **kw)
    assert {e[2] for e in ds.entries} <= {"person0", "person1", "person2", "neg/other3_neg.png", "pos/other3_pos.png"}


def test_bom_dot_files_and_loose_images(tmp_path):
    _classes(tmp_path / "img")
    rows = "".join(f"{c}/{c}{i}.png,{c}\n" for c in ("neg", "pos") for i in range(4))
    (tmp_path / "labels.csv").write_text("path,label\n" + rows, encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    assert len(_all(dict(path="img", labels="labels.csv", root=str(tmp_path)))) == 8  # was refused: '\ufeffpath'
    (tmp_path / "img" / "neg" / "._neg0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    _image(tmp_path / "img" / "pos" / ".ipynb_checkpoints" / "pos0-checkpoint.png")
    kw = dict(path="img", size=32, root=str(tmp_path))
    assert len(_all(kw)) == 8 and all(not e[0].name.startswith((".", "pos0-")) for e in _all(kw))  # ._ was read
    for i in range(3):
        _image(tmp_path / "img" / f"loose{i}.png")
    with pytest.warns(DataWarning, match=r"img: 3 images in the folder itself \(e.g. 'loose0.png'\) are left out"):
        FolderDataset("test", **kw)


def test_a_fraction_of_zero_leaves_its_split_empty(tmp_path):
    _classes(tmp_path / "img", k=10)
    kw = dict(path="img", size=32, fractions=[0.8, 0.0, 0.2], root=str(tmp_path))
    assert len(FolderDataset("train", **kw)) == 16 and len(FolderDataset("test", **kw)) == 4
    with pytest.raises(ValueError, match="split 'val' is empty"):
        FolderDataset("val", **kw)  # was 2 images, one of each class


def test_the_documented_kermany_pattern_copies_from_the_raw_file():
    text = (Path(__file__).parents[2] / "docs" / "datasets.md").read_text()
    found = re.findall(r"^patient_pattern: '(.+)'$", text, flags=re.M)
    assert len(found) == 1
    pattern = re.compile(found[0])  # as a YAML single-quoted string gives it: the raw text
    names = ["person111_bacteria_535.jpeg", "person111_bacteria_537.jpeg", "NORMAL2-IM-0033-0001.jpeg",
             "IM-0033-0001-0001.jpeg"]
    assert [pattern.search(n).group(1) for n in names] == ["person111", "person111", "NORMAL2-IM-0033", "IM-0033"]
