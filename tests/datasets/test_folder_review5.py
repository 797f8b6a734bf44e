"""A fifth held-out review of ``folder``: with ``fractions: [0, 0, 1]`` a class of 2 patients was
left out of the test split, and at the default fractions without a word (F1); class folders that
are symbolic links were not scanned (F2); a DecompressionBombError (F5) and a multi-page TIFF (F6)
were no one-line errors; a CSV path with a trailing space was "not found" with the space unseen
(F7); files of other image suffixes and empty class folders were skipped silently (F8)."""

import re
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from faithbench.datasets import DataError, DataWarning, FolderDataset
from faithbench.datasets.folder_split import patient_split


def _classes(root, sizes):
    """Class folders ``root/img/<class>`` of ``sizes[class]`` 16x16 PNGs each; the image folder."""
    for name, k in sizes.items():
        (root / "img" / name).mkdir(parents=True, exist_ok=True)
        for i in range(k):
            Image.fromarray(np.full((16, 16), 10 * i, np.uint8)).save(root / "img" / name / f"{name}{i}.png")
    return root / "img"


def _messages(record):
    return [str(w.message) for w in record if issubclass(w.category, DataWarning)]


def test_a_train_fraction_of_0_puts_every_patient_in_val_or_test():
    groups = {f"a{i}": 0 for i in range(8)} | {f"b{i}": 1 for i in range(5)} | {"r0": 2, "r1": 2, "s0": 3}
    assert set(patient_split(groups, (0, 0, 1), 0).values()) == {"test"}  # was: r0, r1 and s0 in train
    assert set(patient_split(groups, (0, 1, 0), 0).values()) == {"val"}
    halves = patient_split(groups, (0, 0.5, 0.5), 0)
    by_class = {c: Counter(halves[p] for p, k in groups.items() if k == c) for c in range(4)}
    # 5 patients: round(2.5) = 2 val and 2 test left one in train before
    assert by_class == {0: {"val": 4, "test": 4}, 1: {"val": 2, "test": 3}, 2: {"val": 1, "test": 1}, 3: {"test": 1}}
    # a positive train fraction is as before: a class of 1 or 2 patients all in train
    default = patient_split(groups, (0.7, 0.1, 0.2), 0)
    assert [default[p] for p in ("r0", "r1", "s0")] == ["train"] * 3
    assert Counter(default[p] for p, k in groups.items() if k == 0) == {"train": 5, "val": 1, "test": 2}


def test_fractions_0_0_1_evaluate_every_image_small_classes_included(tmp_path):
    folder = _classes(tmp_path, {"a": 8, "b": 8, "rare": 2})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = FolderDataset("test", path=str(folder), size=16, fractions=[0, 0, 1])
    assert len(ds) == 18 and sum(ds[i].id.startswith("rare/") for i in range(18)) == 2  # was 16 and 0
    assert _messages(record) == []


def test_a_class_too_small_for_the_test_split_is_warned_of_once(tmp_path):
    folder = _classes(tmp_path, {"a": 8, "b": 8, "rare": 2, "single": 1})
    with pytest.warns(DataWarning) as record:
        ds = FolderDataset("test", path=str(folder), size=16)
    assert not any(ds[i].id.startswith(("rare/", "single/")) for i in range(len(ds)))
    assert [m for m in _messages(record) if "too few patients" in m] == [
        f"{folder}: classes 'rare' (2 patients), 'single' (1 patient) have too few patients for one in each split "
        "(3 or more): all in train, so the test split holds no image of them; fractions [0, 0, 1] evaluate fixed "
        "weights on every image"]
    with warnings.catch_warnings(record=True) as record:  # 3 patients a class: one in each split, no warning
        warnings.simplefilter("always")
        FolderDataset("test", path=str(_classes(tmp_path, {"rare": 3, "single": 3})), size=16)
    assert not [m for m in _messages(record) if "too few patients" in m]


def test_sub_folders_that_are_symbolic_links_are_scanned_images_and_masks(tmp_path):
    folder = _classes(tmp_path, {"a": 4, "b": 3})
    store = _classes(tmp_path / "store", {"c": 5, "batch": 2, "mb": 0})  # real folders elsewhere
    (folder / "c").symlink_to(store / "c", target_is_directory=True)  # a linked class folder
    (folder / "b" / "batch2").symlink_to(store / "batch", target_is_directory=True)  # a linked folder in a class
    (tmp_path / "mask" / "b").mkdir(parents=True)
    (tmp_path / "mask" / "b" / "batch2").symlink_to(store / "mb", target_is_directory=True)
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(store / "mb" / "batch0.png")  # mask of b/batch2/batch0
    ds = FolderDataset("test", path=str(folder), masks=str(tmp_path / "mask"), size=16, fractions=[0, 0, 1])
    assert ds.classes == ("a", "b", "c")  # was ('a', 'b'): c's 5 images gone
    labels = Counter(ds.classes[ds[i].label] for i in range(len(ds)))
    assert labels == {"a": 4, "b": 5, "c": 5}  # b was 3 of 5
    masked = {ds[i].id: int(ds[i].masks["lesion"].sum()) for i in range(len(ds)) if ds[i].masks["lesion"].any()}
    assert masked == {"b/batch2/batch0.png": 256}  # the linked mask folder's mask, read (was empty)


def test_a_link_to_a_folder_that_holds_it_is_a_one_line_error(tmp_path):
    folder = _classes(tmp_path, {"a": 4, "b": 3})
    (folder / "a" / "up").symlink_to(folder, target_is_directory=True)
    with pytest.raises(DataError, match=f"^{re.escape(str(folder))}/a/up: a symbolic link to {re.escape(str(folder))}, "
                                        r"a folder that holds it \(a loop\)"):
        FolderDataset("test", path=str(folder), size=16, fractions=[0, 0, 1])
    (folder / "a" / "up").unlink()
    (folder / "a" / "self").symlink_to(folder / "a" / "self")  # a link to itself: broken, skipped as before
    assert len(FolderDataset("test", path=str(folder), size=16, fractions=[0, 0, 1])) == 7


def test_files_of_other_image_formats_and_empty_class_folders_are_warned_of(tmp_path):
    folder = _classes(tmp_path, {"a": 4, "b": 3})
    for name in ("a/x.webp", "a/y.gif", "b/z.jfif", "b/w.GIF"):
        Image.new("L", (16, 16)).save(folder / name, format="PNG")  # the content does not matter to the scan
    (folder / "b" / "1.2.840.5").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)  # a DICOM file without .dcm
    (folder / "b" / "notes.txt").write_text("not an image")
    (folder / "b" / "README").write_text("no suffix, no DICOM: no image either")
    (folder / "empty").mkdir()
    (folder / "only_webp").mkdir()
    Image.new("L", (16, 16)).save(folder / "only_webp" / "v.webp", format="PNG")
    (tmp_path / "mask" / "a").mkdir(parents=True)
    Image.new("L", (16, 16)).save(tmp_path / "mask" / "a" / "a0.webp", format="PNG")
    with pytest.warns(DataWarning) as record:
        ds = FolderDataset("test", path=str(folder), masks=str(tmp_path / "mask"), size=16, fractions=[0, 0, 1])
    assert len(ds) == 7
    messages = _messages(record)
    assert f"{folder}: 6 files of an image format that folder does not read are skipped (e.g. 'a/x.webp', " \
           "'a/y.gif', 'b/1.2.840.5'): expected .png, .jpg, .jpeg, .bmp, .tif, .tiff, .dcm; convert them (to PNG, " \
           "or DICOM files to .dcm) to include them" in messages
    assert f"{folder}: 2 sub-folders without an image are no class (e.g. 'empty', 'only_webp'): without a labels " \
           "CSV a class is a sub-folder holding images; name it in the dataset's classes to keep it as a class of " \
           "no image" in messages
    assert f"{tmp_path / 'mask'}: 1 file of an image format that folder does not read is skipped (e.g. " \
           "'a/a0.webp')" in " ".join(messages)
    assert len(messages) == 4  # the three above, and the mask folder's: no image has a mask file


def test_an_image_above_pillows_bomb_limit_is_a_one_line_error_naming_the_file(tmp_path, monkeypatch):
    from faithbench.datasets.images import read_image

    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 1200 pixels > 2 x 500: Pillow's error, not its warning
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}/big.png: cannot read image: Image size \(1200 "
                                        r"pixels\) exceeds limit of 1000 pixels.* \(Pillow's limit is 2 x "
                                        r"PIL.Image.MAX_IMAGE_PIXELS, 1000 pixels; a plugin may raise "
                                        r"Image.MAX_IMAGE_PIXELS for a trusted file, or save it smaller\)$"):
        read_image(tmp_path / "big.png")  # was DecompressionBombError: "every cell failed", exit 1


def test_a_multi_page_tiff_is_refused_naming_the_file_and_its_pages(tmp_path):
    from faithbench.datasets.images import read_image

    pages = [Image.fromarray(np.full((20, 24), 40 * k, np.uint8)) for k in range(5)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}/stack.tif: a multi-page TIFF \(5 pages of "
                                        r"24x20\): a 2D dataset takes one image per file; save the page you mean"):
        read_image(tmp_path / "stack.tif")  # was its first page, without a word
    pages[2].save(tmp_path / "one.tif")
    assert float(read_image(tmp_path / "one.tif").mean()) == pytest.approx(80 / 255)


def test_a_csv_path_not_found_is_shown_quoted_with_a_hint_for_blanks_and_backslashes(tmp_path):
    folder = _classes(tmp_path, {"a": 3, "b": 3})
    kw = dict(path=str(folder), labels="labels.csv", size=16, fractions=[0, 0, 1])
    for given, hint in (("a/a0.png ", "; it has leading or trailing whitespace, which is part of the path: remove it"),
                        ("a\\a0.png", "; a backslash is no folder separator here: write folders with '/'"),
                        ("a/nope.png", "")):
        (folder / "labels.csv").write_text(f"path,label\n{given},a\nb/b0.png,b\n")
        with pytest.raises(DataError) as err:
            FolderDataset("test", **kw)
        # was "image not found: .../a/a0.png " (the space unseen) and no hint
        assert str(err.value) == f"{folder}/labels.csv: line 2: image not found: {str(folder / given)!r}{hint}"
    (folder / "labels.csv").write_text("path,label\n a/a0.png,a\nb/b0.png,b\n")  # a leading blank
    with pytest.raises(DataError, match=r"image not found: '.*/img/ a/a0.png'; it has leading or trailing whitespace"):
        FolderDataset("test", **kw)


@pytest.mark.parametrize("name", ["a/scan.nii.gz", "a/head.nrrd", "a/drawing.svg"])
def test_a_csv_row_naming_a_file_of_another_format_is_refused_by_its_line(tmp_path, name):
    """A labels CSV row naming a NIfTI file passed validate and failed the run when it read it (a review of
    longitudinal_folder, whose CSV rows are checked alike): refused by name, with its line, as the scan skips it."""
    folder = _classes(tmp_path, {"a": 3, "b": 3})
    (folder / name).write_bytes(b"not read")
    (folder / "labels.csv").write_text(f"path,label\na/a0.png,a\n{name},a\nb/b0.png,b\n")
    with pytest.raises(DataError) as err:
        FolderDataset("test", path=str(folder), labels="labels.csv", size=16, fractions=[0, 0, 1])
    assert str(err.value).startswith(f"{folder}/labels.csv: line 3: {name!r} is of an image format that folder does "
                                     f"not read: expected .png, ")
    assert "\n" not in str(err.value)
