import re

import numpy as np
import pytest
from PIL import Image

from faithbench.datasets import DataError, FolderDataset
from faithbench.registry import datasets

KERMANY = "kermany_cxr40"
PATIENT = r"^(person\d+|NORMAL2-IM-\d+|IM-\d+)"


def test_kermany_class_folders_patient_split(real_data):
    real_data(f"{KERMANY}/NORMAL", f"{KERMANY}/PNEUMONIA")
    cls = datasets.get("folder")
    splits = {s: cls(s, path=KERMANY, size=64, patient_pattern=PATIENT) for s in ("train", "val", "test")}
    assert sum(len(d) for d in splits.values()) == 40
    assert splits["test"].classes == ("NORMAL", "PNEUMONIA")
    patients = {s: {d.entries[i][2] for i in range(len(d))} for s, d in splits.items()}
    assert not (patients["train"] & patients["val"] or patients["train"] & patients["test"]
                or patients["val"] & patients["test"])
    assert "person111" in set().union(*patients.values())  # two images of one patient stay together
    for d in splits.values():  # stratified: both classes in every split
        assert set(d.tensors()[1].tolist()) == {0, 1}
    x, y = splits["test"].tensors()
    assert x.shape == (len(y), 1, 64, 64) and 0 <= x.min() and x.max() <= 1
    # one size for all, whatever the source size (NORMAL sources are larger: a shortcut otherwise)
    s = splits["train"][0]
    assert s.image.shape == (1, 64, 64) and max(s.meta["source_shape"]) > 500
    again = cls("test", path=KERMANY, size=64, patient_pattern=PATIENT)
    assert [e[0] for e in again.entries] == [e[0] for e in splits["test"].entries]  # seeded
    other = cls("test", path=KERMANY, size=64, patient_pattern=PATIENT, seed=1)
    assert [e[0] for e in other.entries] != [e[0] for e in splits["test"].entries]


def _write(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "masks").mkdir()
    lines = ["path,label,patient_id"]
    for k in range(12):
        arr = rng.integers(0, 256, (40, 60), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / "img" / f"im{k}.png")
        mask = np.zeros((40, 60), dtype=np.uint8)
        mask[10:20, 30:40] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / f"im{k}.png")
        lines.append(f"im{k}.png,{'sick' if k % 2 else 'well'},p{k // 2}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")


def test_csv_labels_and_mask_alignment(tmp_path):
    _write(tmp_path)
    kw = dict(path="img", labels="labels.csv", masks="masks", classes=["well", "sick"], size=30, fit="squash",
              root=str(tmp_path))
    all_ids = []
    for split in ("train", "val", "test"):
        ds = FolderDataset(split, **kw)
        for i in range(len(ds)):
            s = ds[i]
            all_ids.append(s.id)
            # the 10x10 square at rows 10:20, cols 30:40 of 40x60 -> rows 7.5:15, cols 15:20 of 30x30
            m = s.masks["lesion"]
            assert m.shape == (30, 30) and m[8:15, 15:20].all() and m.sum() == m[7:15, 15:20].sum()
            assert s.label == int(s.id[2:-4]) % 2
    assert sorted(all_ids) == sorted(f"im{k}.png" for k in range(12))


def test_cache_key_follows_the_files_not_the_root(tmp_path):
    """The fingerprint (and so every checkpoint and result key) changes when an image is edited in
    place, a mask or the labels CSV changes, or another root holds other files under the same names;
    the same files under another root (copied with their times) keep it. Every split covers every
    file: a test image edited in place changes the train split's key (the checkpoint's test scores)."""
    import os
    import shutil

    (tmp_path / "a").mkdir()
    _write(tmp_path / "a")
    kw = dict(path="img", labels="labels.csv", masks="masks", classes=["well", "sick"], size=30, fit="squash")

    def key(root, split="train"):
        return FolderDataset(split, root=str(root), **kw).fingerprint()

    base = key(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "copy")  # copy2: times kept
    assert key(tmp_path / "copy") == base
    test_image = FolderDataset("test", root=str(tmp_path / "a"), **kw)[0].id
    for name in (f"img/{test_image}", "masks/im3.png", "labels.csv"):
        edited = tmp_path / "a" / name
        stat = edited.stat()
        edited.write_bytes(edited.read_bytes())  # same bytes, new time: a file edited in place
        os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert key(tmp_path / "a") != base, name
        os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert key(tmp_path / "a") == base
    os.utime(tmp_path / "copy" / "labels.csv", ns=(0, 0))
    assert key(tmp_path / "copy") != base  # another root, other files under the same names


def test_missing_folder_and_bad_label(tmp_path):
    with pytest.raises(DataError, match="image folder not found: .*nowhere"):
        FolderDataset("test", path="nowhere", root=str(tmp_path))
    _write(tmp_path)
    with pytest.raises(DataError, match="label 'sick' is not one of the classes"):
        FolderDataset("test", path="img", labels="labels.csv", classes=["well", "ill"], root=str(tmp_path))


def test_csv_paths_inside_the_folder_only(tmp_path, monkeypatch):
    """An absolute path inside the image folder is that image (also its real path under a linked or
    relative data root); one outside it (absolute or through ..) is refused with its line, not left
    to fail when the sample is read."""
    _write(tmp_path)
    csv = tmp_path / "labels.csv"
    lines = csv.read_text().splitlines()
    kw = dict(path="img", labels="labels.csv", classes=["well", "sick"], size=30, root=str(tmp_path))
    plain = {s.id: s.label for s in (FolderDataset("test", **kw)[i] for i in range(2))}
    csv.write_text("\n".join([lines[0]] + [f"{tmp_path / 'img'}/{line}" for line in lines[1:]]) + "\n")
    absolute = {s.id: s.label for s in (FolderDataset("test", **kw)[i] for i in range(2))}
    assert absolute == plain
    (tmp_path / "link").symlink_to(tmp_path)  # a data root through a link, the CSV giving real paths
    assert {s.id for s in (FolderDataset("test", **{**kw, "root": str(tmp_path / "link")})[i] for i in range(2))} \
        == set(plain)
    monkeypatch.chdir(tmp_path.parent)  # a relative data root, absolute paths in the CSV
    assert {s.id for s in (FolderDataset("test", **{**kw, "root": tmp_path.name})[i] for i in range(2))} == set(plain)
    (tmp_path / "outside.png").write_bytes((tmp_path / "img" / "im0.png").read_bytes())
    # a ".." after a linked folder is the parent of the link's target, as the OS opens it
    (tmp_path / "img" / "sub" / "inner").mkdir(parents=True)
    (tmp_path / "img" / "sub" / "im0.png").write_bytes((tmp_path / "img" / "im1.png").read_bytes())
    (tmp_path / "img" / "up").symlink_to(tmp_path / "img" / "sub" / "inner", target_is_directory=True)
    csv.write_text("\n".join([lines[0], *lines[1:5], "up/../im0.png,well,p9"]) + "\n")
    assert FolderDataset("test", **kw)._sources[-1] == tmp_path / "img" / "sub" / "im0.png"  # abspath: img/im0.png
    # ... and refused where that parent is outside the folder, though the lexical path is inside
    (tmp_path / "away" / "deep").mkdir(parents=True)
    (tmp_path / "away" / "im0.png").write_bytes((tmp_path / "img" / "im0.png").read_bytes())
    (tmp_path / "img" / "esc").symlink_to(tmp_path / "away" / "deep", target_is_directory=True)
    (tmp_path / "img" / "loop").symlink_to(tmp_path / "img" / "loop")
    for given, error in (("esc/../im0.png", "expected a path inside the image folder"),
                         ("loop/../im0.png", r"image not found: '.*loop/\.\./im0.png' \(.*\)"),
                         ("sub", r"image not found: '.*sub' \(a folder\)")):
        csv.write_text("\n".join([lines[0], *lines[1:5], f"{given},well,p9"]) + "\n")
        with pytest.raises(DataError, match=f"labels.csv: line 6: {error}"):
            FolderDataset("test", **kw)
    for given in (str(tmp_path / "outside.png"), "../outside.png"):
        csv.write_text("\n".join([lines[0], *lines[1:5], f"{given},well,p9"]) + "\n")
        with pytest.raises(DataError, match=f"labels.csv: line 6: expected a path inside the image folder .*img, "
                                            f"got '{re.escape(given)}'"):
            FolderDataset("test", **kw)


def test_resized_mask_stays_on_its_lesion(tmp_path):
    """A held-out review: masks were resized by "nearest", the image bilinearly, so a disc's mask sat
    (k - 1) / 2 source pixels off (+0.39 / +0.46 px at 512 -> 64). Its centroid is now the image's."""
    yy, xx = np.mgrid[:512, :512]
    disc = (yy - 201.3) ** 2 + (xx - 297.8) ** 2 <= 60**2
    for name in ("img", "masks"):
        for label in ("sick", "well"):  # two classes: one is refused
            (tmp_path / name / label).mkdir(parents=True)
            for k in range(3):
                Image.fromarray((disc * 255).astype(np.uint8)).save(tmp_path / name / label / f"im{k}.png")
    s = FolderDataset("train", path="img", masks="masks", size=64, fractions=[1.0, 0.0, 0.0], root=str(tmp_path))[0]
    grid = np.mgrid[:64, :64]
    image = s.image[0].numpy() / s.image[0].numpy().sum()
    image_centre = [(image * g).sum() for g in grid]
    mask_centre = [g[s.masks["lesion"].numpy()].mean() for g in grid]
    assert np.allclose(mask_centre, image_centre, atol=0.1), (mask_centre, image_centre)


def test_a_lesion_smaller_than_a_pixel_keeps_one(tmp_path):
    yy, xx = np.mgrid[:512, :512]
    for name, image in (("img", np.full((512, 512), 128)), ("masks", ((yy - 100) ** 2 + (xx - 300) ** 2 <= 9) * 255)):
        for label in ("sick", "well"):
            (tmp_path / name / label).mkdir(parents=True)
            for k in range(3):
                Image.fromarray(image.astype(np.uint8)).save(tmp_path / name / label / f"im{k}.png")
    s = FolderDataset("train", path="img", masks="masks", size=64, fractions=[1.0, 0.0, 0.0], root=str(tmp_path))[0]
    assert s.masks["lesion"].sum() == 1 and s.masks["lesion"][12, 37]  # (100, 300) / 8 px


def test_validate_refuses_a_first_test_sample_that_cannot_be_read(tmp_path, capsys):
    """A held-out review: a mask of another size than its image on test sample 0 passed validate
    (which read that sample and dropped the error); then every cell of the run failed, exit 1."""
    import yaml

    from faithbench.cli import main

    _write(tmp_path)
    kw = dict(path="img", labels="labels.csv", masks="masks", classes=["well", "sick"], size=30, root=str(tmp_path))
    first = FolderDataset("test", **kw).entries[0][0]
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "datasets": [{"name": "folder", "params": kw}],
                                     "models": [{"name": "small_cnn", "recipe": "default"}],
                                     "explainers": ["saliency"], "metrics": ["pointing_game"]}))
    assert main(["validate", str(suite)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "masks" / first.name)
    assert main(["validate", str(suite)]) == 2
    err = "\n".join(line for line in capsys.readouterr().err.strip().splitlines()
                    if "patients have images of different labels" not in line)  # _write's patients: both labels
    assert err.count("\n") == 0 and "datasets[0] 'folder': test sample 0 cannot be read: DataError: " in err
    assert f"{first.name}: mask shape (10, 10) differs from its image" in err


@pytest.mark.parametrize("damage, message", [
    ("mask", "mask shape (10, 10) differs from its image"),
    ("truncated", "cannot read image: "),
])
def test_run_raises_input_data_error_for_an_unreadable_first_test_sample(tmp_path, damage, message):
    """A held-out review: a mask of the wrong shape and a truncated PNG raised a SuiteError alone from
    `faithbench.run`, where docs/api.md names both an InputDataError (data that is there but unusable);
    validation raises SuiteDataError, both a SuiteError (validate, load_suite) and an InputDataError."""
    import faithbench

    _write(tmp_path)
    kw = dict(path="img", labels="labels.csv", masks="masks", classes=["well", "sick"], size=30, root=str(tmp_path))
    first = FolderDataset("test", **kw).entries[0][0]
    if damage == "mask":
        Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "masks" / first.name)
    else:
        first.write_bytes(first.read_bytes()[:60])  # the header and part of the first chunk
    suite = {"name": "s", "datasets": [{"name": "folder", "params": kw}], "models": [{"name": "small_cnn",
             "recipe": "default"}], "explainers": ["saliency"], "metrics": ["pointing_game"]}
    with pytest.raises(faithbench.InputDataError) as caught:
        faithbench.run(suite, out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False, report=False,
                       log=lambda _line: None)
    assert isinstance(caught.value, faithbench.SuiteError) and isinstance(caught.value, ValueError)
    text = str(caught.value)
    assert "\n" not in text and "datasets[0] 'folder': test sample 0 cannot be read: DataError: " in text
    assert f"{first.name}: {message}" in text and not (tmp_path / "out" / "results.csv").exists()


def test_mask_and_label_typos_are_warned_of(tmp_path):
    """A held-out review: a mask file named unlike its image left that image with an empty mask, and
    a label typo in the CSV made a class of its own, both silently."""
    import warnings

    _write(tmp_path)
    (tmp_path / "masks" / "im3.png").rename(tmp_path / "masks" / "img3.png")  # a typo in one mask's name
    kw = dict(path="img", labels="labels.csv", masks="masks", classes=["well", "sick"], size=30,
              fractions=[1.0, 0.0, 0.0], root=str(tmp_path))
    with pytest.warns(UserWarning, match=r"1 of 12 mask files are named like no image .*'img3.png'"):
        ds = FolderDataset("train", **kw)
    assert not ds[[e[0].name for e in ds.entries].index("im3.png")].masks["lesion"].any()  # empty, as documented
    (tmp_path / "none").mkdir()
    with pytest.warns(UserWarning, match="no image of split 'train' has a mask file: every 'lesion' mask is empty"):
        FolderDataset("train", **{**kw, "masks": "none"})
    (tmp_path / "masks" / "img3.png").rename(tmp_path / "masks" / "im3.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "(?s).*patients have images of different labels")  # _write's patients
        FolderDataset("train", **kw)  # every mask named like its image: no warning

    csv = tmp_path / "labels.csv"
    csv.write_text(csv.read_text().replace("im5.png,sick", "im5.png,sikc").replace("im7.png,sick", "im7.png,Well"))
    with pytest.warns(UserWarning) as caught:
        ds = FolderDataset("train", **{**kw, "classes": None})
    messages = sorted(str(w.message) for w in caught)
    assert ds.classes == ("Well", "sick", "sikc", "well")  # as found: the warning is the guard
    assert any("class 'sikc' (1 image) is named like 'sick' (4 images)" in m for m in messages)
    assert any("class 'Well' (1 image) is named like 'well' (6 images)" in m for m in messages)
    with pytest.raises(DataError, match="label 'sikc' is not one of the classes"):
        FolderDataset("train", **kw)  # with classes: refused


def test_cli_prints_a_data_warning_once_as_one_line(tmp_path, capsys, monkeypatch):
    """Each split's dataset warned again, as Python's two-line file:line warning: now one line, once."""
    from faithbench.cli import main

    _write(tmp_path)
    (tmp_path / "masks" / "im3.png").rename(tmp_path / "masks" / "img3.png")
    (tmp_path / "suite.yaml").write_text(
        "name: typo\ndatasets:\n  - {name: folder, params: {path: img, labels: labels.csv, masks: masks, size: 32}}\n"
        "models:\n  - {name: small_cnn, recipe: {epochs: 1}}\nexplainers: [random]\nmetrics: [pointing_game]\n")
    monkeypatch.setenv("FAITHBENCH_DATA", str(tmp_path))
    assert main(["validate", str(tmp_path / "suite.yaml")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "mask files" in line] == [
        f"faithbench: warning: {tmp_path}/masks: 1 of 12 mask files are named like no image of {tmp_path}/img "
        "(e.g. 'img3.png'); a mask has its image's relative path (any image suffix), and an image without one gets "
        "an empty mask"]


def test_prefixed_class_names_are_no_typo_and_dotted_mask_names_are_found(tmp_path):
    """A diff review: 'abnormal' beside 'normal' (a prefix, two classes) was warned of as a typo; a
    mask named like a DICOM UID (1.2.840.3.png) was never found by the loader (its suffix-swap cut
    '.3'), and a mask with an upper-case suffix neither, while the name check said they matched."""
    import warnings

    from faithbench.datasets.folder import near_labels

    names = ["normal"] * 3 + ["abnormal"] * 2 + ["healthy", "unhealthy", "cancer", "nocancer"]
    assert near_labels(names, tmp_path) == []
    assert len(near_labels(["tumour"] * 3 + ["tumor"], tmp_path)) == 1  # one letter: a typo, or two spellings
    (tmp_path / "img").mkdir()
    (tmp_path / "masks").mkdir()
    lines = ["path,label"]
    for k in range(6):
        name = f"1.2.840.{k}.png"
        Image.fromarray(np.full((20, 20), 100, np.uint8)).save(tmp_path / "img" / name)
        mask = np.zeros((20, 20), np.uint8)
        mask[5:10, 5:10] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / (name if k % 2 else name.replace(".png", ".PNG")))
        lines.append(f"{name},{'sick' if k % 2 else 'well'}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every mask is found: no warning
        ds = FolderDataset("train", path="img", labels="labels.csv", masks="masks", size=20,
                           fractions=[1.0, 0.0, 0.0], root=str(tmp_path))
    assert all(int(ds[i].masks["lesion"].sum()) == 25 for i in range(len(ds)))


def test_labels_that_look_like_lists_of_classes_are_warned_of(tmp_path):
    """A held-out review: a multi-label CSV (``nodule|cavity``) was read as a fourth softmax class
    without a word; folder is single-label, so such labels are warned of."""
    import warnings

    from faithbench.datasets.folder import list_labels

    assert list_labels(["a", "b", "a|b", "c; d", "a|b"], tmp_path) == [
        f"{tmp_path}: 2 labels look like lists of classes (e.g. 'a|b', 2 images): folder is single-label, so each is "
        "a class of its own; multi-label data needs a dataset plugin with multilabel = True and Sample.labels "
        "(docs/plugins.md)"]
    assert list_labels(["normal", "effusion", "class_2", "a|"], tmp_path) == []  # one part: no list
    (tmp_path / "img").mkdir()
    lines = ["path,label"]
    for i, label in enumerate(["normal", "nodule", "cavity", '"nodule,cavity"'] * 3):
        Image.fromarray(np.full((8, 8), 40 * (i % 4), np.uint8)).save(tmp_path / "img" / f"i{i}.png")
        lines.append(f"i{i}.png,{label}")
    (tmp_path / "img" / "labels.csv").write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FolderDataset("test", path=str(tmp_path / "img"), labels="labels.csv", size=8, fractions=[0, 0, 1])
    assert ds.classes == ("cavity", "nodule", "nodule,cavity", "normal")
    assert sum("1 label looks like a list of classes (e.g. 'nodule,cavity', 3 images)" in str(w.message)
               for w in caught) == 1


def test_a_dataset_plugins_code_enters_its_key(tmp_path, monkeypatch):
    """A held-out review: editing a dataset plugin's code (its mask moved off the lesion) reused every cached
    checkpoint, map and score, while explainer, metric and builder edits were detected. Built-ins keep their
    keys (faithbench's own datasets hold no package entry)."""
    import importlib
    import sys

    from faithbench.configurable import package_version
    from faithbench.datasets.phantoms import PhantomCXR

    (tmp_path / "my_ds_mod.py").write_text(
        "from faithbench.datasets.base import BaseDataset\nSHIFT = 0\n\n"
        "class Mine(BaseDataset):\n    classes = ('a', 'b')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_ds_mod")
    first = module.Mine("test", n=4).spec()
    assert first["package"].startswith("source:")
    (tmp_path / "my_ds_mod.py").write_text((tmp_path / "my_ds_mod.py").read_text().replace("SHIFT = 0", "SHIFT = 6"))
    package_version.cache_clear()
    assert module.Mine("test", n=4).spec()["package"] != first["package"]
    sys.modules.pop("my_ds_mod", None)
    assert "package" not in PhantomCXR("test", n=4, size=32).spec()


def test_an_image_without_its_channel_axis_is_named_as_the_datas_fault(tmp_path, capsys):
    """A held-out review: a dataset plugin returning (H, W) images got 'models[0].params: cannot build
    'small_cnn' ... (16 channels, size (16,))', blaming the model."""
    import torch

    from faithbench.cli import main
    from faithbench.datasets.base import BaseDataset, check_samples
    from faithbench.types import Sample

    @datasets.register("no_channel_axis")
    class NoChannel(BaseDataset):
        classes = ("a", "b")

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return Sample(id=f"s{i}", image=torch.rand(16, 16), label=i % 2)

    try:
        with pytest.raises(DataError, match=r"sample 's0' has an image of shape \(16, 16\): expected \(C, \*spatial\) "
                                            r"with 2 spatial axes"):
            check_samples([NoChannel()[0]], NoChannel(), "here")
        suite = tmp_path / "suite.yaml"
        suite.write_text("name: s\ndatasets: [no_channel_axis]\nmodels: [{name: small_cnn, recipe: default}]\n"
                         "explainers: [saliency]\nmetrics: [deletion_auc]\n")
        assert main(["validate", str(suite)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{suite}: datasets 'no_channel_axis': NoChannel (test split): sample 's0' has an image of shape " \
               "(16, 16): expected (C, *spatial) with 2 spatial axes (spatial_dims 2)" in err
        assert "models[0]" not in err
    finally:
        datasets.unregister("no_channel_axis")


@pytest.mark.parametrize("labels, warned", [(("alpha", "beta", "gamma"), True), (("normal", "sick"), False)])
def test_subset_positive_on_more_than_two_classes_warns_that_class_0_is_left_out(tmp_path, labels, warned):
    """A multi-class review: subset: positive dropped every 'alpha' image (class 0, a finding) without a word."""
    import warnings

    from faithbench.config import SuiteWarning, suite_from_dict

    for label in labels:
        (tmp_path / "img" / label).mkdir(parents=True)
        for k in range(4):
            Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(tmp_path / "img" / label / f"{label}{k}.png")
    suite = {"name": "s", "subset": "positive", "samples": 4,
             "datasets": [{"name": "folder", "params": {"path": "img", "size": 32, "root": str(tmp_path)}}],
             "models": [{"name": "small_cnn", "params": {"width": 4}, "recipe": "default"}], "explainers": ["saliency"],
             "metrics": [{"name": "deletion_auc", "params": {"steps": 4}}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suite_from_dict(suite)
    lines = [str(w.message) for w in caught if issubclass(w.category, SuiteWarning) and "subset" in str(w.message)]
    expected = ["<suite>: datasets[0] 'folder': subset: positive explains the samples whose label is not 0, so its "
                "class 0 'alpha' (of 3) is left out as if normal"]
    assert lines == (expected if warned else [])
