"""A fourth held-out review of ``folder``: a numeric label of 100000 made 100001 classes and one
warning per empty class, and validate hung (F1); an image listed twice in the labels CSV passed
validate, and the run refused it without the CSV's lines (F2); a patient with images of different
labels was split by its first image's label without a word (F3)."""

import warnings

import numpy as np
import pytest
import yaml
from PIL import Image

from faithbench.datasets import DataError, DataWarning, FolderDataset


def _write(root, rows, header="path,label"):
    """Images ``im{k}.png`` under ``root/img`` and a labels CSV of ``rows`` (each a CSV line after the header)."""
    (root / "img").mkdir(exist_ok=True)
    for k in range(12):
        Image.fromarray(np.full((16, 16), 20 * k, np.uint8)).save(root / "img" / f"im{k}.png")
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return dict(path="img", labels="labels.csv", size=16, root=str(root))


def test_numeric_labels_far_beyond_their_count_are_refused(tmp_path):
    kw = _write(tmp_path, [f"im{k}.png,{100000 * (k % 2)}" for k in range(12)])
    with pytest.raises(DataError, match=r"labels.csv: column 'label': numeric labels are class indices from 0: "
                                        r"expected at most 4 classes \(0 to 3\) for 2 distinct labels, got labels up "
                                        r"to 100000 \(100001 classes, 99999 without an image\)"):
        FolderDataset("test", **kw)  # was 100001 classes and 99999 warnings: validate ran past 10 minutes
    _write(tmp_path, [f"im{k}.png,{4 * (k % 2)}" for k in range(12)])
    with pytest.raises(DataError, match=r"expected at most 4 classes \(0 to 3\) for 2 distinct labels, got labels "
                                        r"up to 4 \(5 classes, 3 without an image\)"):
        FolderDataset("test", **kw)
    _write(tmp_path, [f"im{k}.png,{1 + 2 * (k % 2)}" for k in range(12)])  # 1 and 3: as many empty as not
    with pytest.warns(DataWarning) as record:
        ds = FolderDataset("test", **kw)
    assert ds.classes == ("class_0", "class_1", "class_2", "class_3")
    empty = [str(w.message) for w in record if "no image" in str(w.message)]
    assert empty == [f"{tmp_path}/labels.csv: 2 classes have no image ('class_0', 'class_2') (numeric labels are "
                     "class indices from 0): the model gets an output for each that no image trains"]


def test_numeric_sub_folders_are_refused_naming_the_folder(tmp_path):
    for label in ("0", "250"):
        (tmp_path / label).mkdir()
        for k in range(4):
            Image.fromarray(np.full((16, 16), 9, np.uint8)).save(tmp_path / label / f"im{k}.png")
    with pytest.raises(DataError, match=rf"^{tmp_path}: sub-folder names: numeric labels are class indices from 0"):
        FolderDataset("test", path=str(tmp_path), size=16)


def test_many_empty_classes_are_one_warning(tmp_path):
    kw = _write(tmp_path, [f"im{k}.png,{('neg', 'pos')[k % 2]}" for k in range(12)])
    classes = ["neg", "pos"] + [f"c{k}" for k in range(200)]
    with pytest.warns(DataWarning) as record:
        FolderDataset("test", **kw, classes=classes)
    empty = [str(w.message) for w in record if "no image" in str(w.message)]
    assert empty == [f"{tmp_path}/labels.csv: 200 classes have no image ('c0', 'c1', 'c2', 'c3', 'c4', …) (they are "
                     "named in the dataset's classes): the model gets an output for each that no image trains"]


def test_an_image_listed_twice_is_refused_with_its_lines(tmp_path, capsys, monkeypatch):
    rows = [f"im{k}.png,{('neg', 'pos')[k % 2]}" for k in range(12)]
    kw = _write(tmp_path, rows + ["im0.png,neg"])
    with pytest.raises(DataError, match=r"labels.csv: line 14: the image of line 2 again \(im0.png\): expected one "
                                        r"row per image$"):
        FolderDataset("test", **kw)
    _write(tmp_path, rows[:3] + ["./im1.png,neg"] + rows[3:])  # another spelling, another label
    with pytest.raises(DataError, match=r"labels.csv: line 5: the image of line 3 again \(im1.png, labelled 'pos' "
                                        r"there and 'neg' here\): expected one row per image$"):
        FolderDataset("train", **kw, fractions=[1.0, 0.0, 0.0])
    from faithbench.cli import main

    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "datasets": [{"name": "folder", "params": kw}],
                                     "models": [{"name": "small_cnn", "recipe": "default"}],
                                     "explainers": ["saliency"], "metrics": ["pointing_game"]}))
    assert main(["validate", str(suite)]) == 2  # validate said ok; the run refused sample ids, not CSV lines
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "line 5: the image of line 3 again (im1.png, labelled 'pos' there and 'neg'" in err


def test_a_patient_with_images_of_different_labels_is_warned_of(tmp_path):
    rows = [f"im{k}.png,{('neg', 'pos')[k % 2]},p{k // 2 if k < 4 else k}" for k in range(12)]
    kw = _write(tmp_path, rows, header="path,label,patient_id")
    with pytest.warns(DataWarning, match=r"labels.csv: 2 of 10 patients have images of different labels \(e.g. "
                                         r"patient 'p0': 1 'neg', 1 'pos'\); such a patient goes to one split, "
                                         r"stratified by its first image's label \('neg' for 'p0'\)"):
        ds = FolderDataset("test", **kw)
    with pytest.warns(DataWarning, match="2 of 10 patients have images of different labels"):
        train = FolderDataset("train", **kw)
    assert {e[2] for e in ds.entries}.isdisjoint({e[2] for e in train.entries})  # still patient-disjoint
    from faithbench.datasets.folder_split import mixed_patients

    entries = [(None, 1, "a"), (None, 0, "a"), (None, 0, "a"), (None, 1, "b")]
    assert mixed_patients(entries, {"a": 1, "b": 1}, ("x", "y"), tmp_path) == (
        f"{tmp_path}: 1 of 2 patients have images of different labels (e.g. patient 'a': 2 'x', 1 'y'); such a "
        "patient goes to one split, stratified by its first image's label ('y' for 'a'), and each image keeps its "
        "own label")
    _write(tmp_path, [f"im{k}.png,{('neg', 'pos')[k % 2]},p{k % 2}{k // 4}" for k in range(12)],
           header="path,label,patient_id")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FolderDataset("test", **kw)  # one label per patient: quiet


def test_a_superscript_digit_label_is_a_class_name(tmp_path):
    """Diff review 15: '²' is a digit to str.isdigit but not to int(): validate printed "invalid literal
    for int() with base 10: '²'", naming neither the CSV nor its line."""
    kw = _write(tmp_path, [f"im{k}.png,{'²' if k % 2 else '1'}" for k in range(12)])
    dataset = FolderDataset("test", **kw)
    assert dataset.classes == ("1", "²")
    assert sorted({dataset[i].label for i in range(len(dataset))}) == [0, 1]
